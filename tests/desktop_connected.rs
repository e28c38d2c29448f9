//! The app's real window (Xvfb, tauri-driver, WebKitWebDriver) connected to an organisation's
//! `rekeyd serve` over HTTPS with a test CA, mail through the real SMTP capture server, links
//! handed over the way the system does it (`gio open`).

mod common;

use std::sync::Mutex;
use std::time::Duration;

use common::desktop::{Desktop, Window};
use common::server::{Server, Setup};
use rekey_testkit::{SmtpCapture, TestCa};

const PASSWORD: &str = "quiet river under the old mill";
const NEW_PASSWORD: &str = "lanterns drift past the harbour wall";

/// One window at a time: each brings its own X server and WebKit, and this machine has two cores.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// An organisation's server over HTTPS, its mail, and its data.
struct Org {
    smtp: SmtpCapture,
    ca: TestCa,
    server: Server,
    _dir: tempfile::TempDir,
}

impl Org {
    fn start() -> Org {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new(&dir.path().join("tls"));
        let smtp = SmtpCapture::start();
        let server = Server::start(&dir.path().join("data"), Some(&smtp), Self::setup(&ca, None));
        Org {
            smtp,
            ca,
            server,
            _dir: dir,
        }
    }

    fn setup(ca: &TestCa, port: Option<u16>) -> Setup {
        Setup {
            tls: Some((ca.server_cert().to_path_buf(), ca.server_key().to_path_buf())),
            port,
            ..Setup::default()
        }
    }

    fn url(&self) -> String {
        self.server.url("")
    }

    fn mail(&self, to: &str, subject: &str, n: usize) -> rekey_testkit::CapturedMail {
        self.smtp
            .wait_for_mail(to, subject, n, Duration::from_secs(20))
            .remove(n - 1)
    }
}

/// A desktop whose app is connected to `org` by an administrator's preset: the system-wide
/// file (`/etc/rekey/config.toml` on a real machine) names the server and its CA.
fn desktop_for(org: &Org) -> Desktop {
    let mut desktop = Desktop::start();
    let system = desktop.home.path().join("etc-rekey-config.toml");
    let preset = format!(
        "server_url = \"{}\"\nserver_ca_file = \"{}\"\n",
        org.url(),
        org.ca.ca_pem().display()
    );
    std::fs::write(&system, preset).unwrap();
    desktop.set("REKEY_SYSTEM_CONFIG", system.display().to_string());
    desktop
}

fn sign_in(w: &Window, email: &str, password: &str) {
    w.wait_page("page-signin");
    w.type_into("#signin-email", email);
    w.type_into("#signin-password", password);
    w.click("#signin-submit");
}

fn set_new_password(w: &Window, prefix: &str) {
    w.type_into(&format!("#{prefix}-password"), NEW_PASSWORD);
    w.type_into(&format!("#{prefix}-confirm"), NEW_PASSWORD);
    w.wait_text(&format!("#{prefix}-strength"), "strong");
    w.click(&format!("#{prefix}-submit"));
    w.wait_page("page-done");
}

fn ask_for_reset(w: &Window, email: &str) {
    w.click("#to-forgot");
    w.wait_page("page-forgot");
    w.type_into("#forgot-email", email);
    w.click("#forgot-submit");
}

#[test]
fn the_mailed_link_opens_the_connected_app_and_resets_at_the_server() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let org = Org::start();
    org.server.create_account(&org.smtp, "zoe@example.com", PASSWORD);
    let desktop = desktop_for(&org);
    let w = desktop.open_app(&[]);
    w.wait_page("page-signin");
    w.wait_text("#app-footer", &format!("Connected to {}", org.url()));
    ask_for_reset(&w, "zoe@example.com");
    w.wait_page("page-check");
    w.wait_text("#check-mail-status", "organisation's server");
    assert!(
        !w.text("#check-mail-status").contains("waiting"),
        "nothing of the server's queue"
    );
    w.screenshot("connected-check-your-mail");
    let link = format!(
        "rekey://reset?token={}",
        org.mail("zoe@example.com", "Reset your", 1).reset_token()
    );
    let opened = desktop.command("gio").args(["open", &link]).output().unwrap();
    assert!(opened.status.success(), "{opened:?}");
    w.wait_page("page-reset");
    w.wait_text("#reset-target", "zoe@example.com");
    set_new_password(&w, "reset");
    w.click("#done-signin");
    sign_in(&w, "zoe@example.com", PASSWORD);
    w.wait_text("#signin-error", "do not match");
    sign_in(&w, "zoe@example.com", NEW_PASSWORD);
    w.wait_page("page-home");
    w.wait_text("#home-email", "zoe@example.com");
    w.screenshot("connected-signed-in");

    // The user goes back to this computer, and it stays so, the administrator's preset
    // notwithstanding.
    w.click("#home-settings");
    w.wait_page("page-settings");
    w.click("#settings-local");
    w.wait_page("page-signin");
    w.wait_text("#app-footer", "This computer");
    drop(w);
    let w = desktop.open_app(&[]);
    w.wait_page("page-signin");
    w.wait_text("#app-footer", "This computer");
}

#[test]
fn a_new_account_a_cold_start_and_the_typed_code_all_go_through_the_server() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let org = Org::start();
    let desktop = desktop_for(&org);
    {
        let w = desktop.open_app(&[]);
        w.wait_page("page-signin");
        w.click("#to-register");
        w.wait_page("page-register");
        w.type_into("#register-email", "amy@example.com");
        w.type_into("#register-password", PASSWORD);
        w.wait_text("#register-strength", "strong");
        w.click("#register-submit");
        w.wait_page("page-check-register");
        w.wait_text("#check-register-email", "amy@example.com");
        w.screenshot("connected-check-register");
        // The mailed link, opened by the system: the running app finishes the account.
        let verify = org.mail("amy@example.com", "Finish creating", 1).verify_token();
        let opened = desktop
            .command("gio")
            .args(["open", &format!("rekey://verify?token={verify}")])
            .output()
            .unwrap();
        assert!(opened.status.success(), "{opened:?}");
        w.wait_page("page-verify");
        w.wait_text("#verify-target", "amy@example.com");
        w.type_into("#verify-password", PASSWORD);
        w.click("#verify-submit");
        w.wait_page("page-signin");
        w.wait_text("#status", "account is ready");
        sign_in(&w, "amy@example.com", PASSWORD);
        w.wait_page("page-home");
        // The typed code, from a second reset.
        w.click("#signout");
        ask_for_reset(&w, "amy@example.com");
        w.wait_page("page-check");
        let code = org.mail("amy@example.com", "Reset your", 1).reset_code();
        w.click("#check-enter-code");
        w.wait_page("page-code");
        w.type_into("#code-email", "amy@example.com");
        w.type_into("#code-value", &code);
        set_new_password(&w, "code");
    }
    // A cold start with a link: the first window is gone; the app starts with it.
    org.server
        .http()
        .post(org.server.url("/users/password/forgot"))
        .json(&serde_json::json!({"email": "amy@example.com"}))
        .send()
        .unwrap();
    let token = org.mail("amy@example.com", "Reset your", 2).reset_token();
    let w = desktop.open_app(&[&format!("rekey://reset?token={token}")]);
    w.wait_page("page-reset");
    w.wait_text("#reset-target", "amy@example.com");
}

#[test]
fn faults_are_said_in_words_and_a_link_from_elsewhere_is_refused() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut org = Org::start();
    let other = Org::start();
    org.server.create_account(&org.smtp, "max@example.com", PASSWORD);
    other.server.create_account(&other.smtp, "max@example.com", PASSWORD);
    other
        .server
        .http()
        .post(other.server.url("/users/password/forgot"))
        .json(&serde_json::json!({"email": "max@example.com"}))
        .send()
        .unwrap();
    let foreign = other.mail("max@example.com", "Reset your", 1).reset_token();
    let requests = |o: &Org| -> u64 {
        let text = reqwest::blocking::get(o.server.metrics_url()).unwrap().text().unwrap();
        text.lines()
            .filter(|l| l.starts_with("rekey_http_requests_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    let before = requests(&other);

    // The settings page: no CA file, so the organisation's certificate is not trusted.
    let desktop = Desktop::start();
    let w = desktop.open_app(&[]);
    w.wait_page("page-signin");
    w.wait_text("#app-footer", "This computer");
    w.click("#to-settings");
    w.wait_page("page-settings");
    w.type_into("#settings-url", &org.url());
    w.click("#settings-test");
    w.wait_text("#settings-error", "CA file");
    w.screenshot("settings-untrusted");
    w.type_into("#settings-ca", &org.ca.ca_pem().display().to_string());
    w.click("#settings-test");
    w.wait_text("#settings-result", "The server answers");
    w.click("#settings-connect");
    w.wait_page("page-signin");
    w.wait_text("#app-footer", &format!("Connected to {}", org.url()));
    let saved = std::fs::read_to_string(desktop.home.path().join("config/rekey/config.toml")).unwrap();
    assert!(saved.contains(&org.url()), "{saved}");

    // A link from another server: refused in words, and that server hears nothing.
    let opened = desktop
        .command("gio")
        .args(["open", &format!("rekey://reset?token={foreign}")])
        .output()
        .unwrap();
    assert!(opened.status.success(), "{opened:?}");
    w.wait_page("page-reset");
    w.wait_text("#reset-target", "another Rekey server");
    assert_eq!(requests(&other), before, "the other server was contacted");

    // The server stops mid-flow: words; back up: the same request goes through.
    w.click("#reset-new-link");
    w.wait_page("page-forgot");
    let data = org.server.data.clone();
    let port = org.server.port;
    assert!(org.server.terminate().success());
    w.type_into("#forgot-email", "max@example.com");
    w.click("#forgot-submit");
    w.wait_text("#forgot-error", "cannot be reached");
    w.screenshot("connected-server-down");
    org.server = Server::start(&data, Some(&org.smtp), Org::setup(&org.ca, Some(port)));
    w.click("#forgot-submit");
    w.wait_page("page-check");
    org.mail("max@example.com", "Reset your", 1);
}
