//! The app connected to an organisation's `rekeyd`: its commands through Tauri's mock
//! runtime, against a real `rekeyd serve` over HTTPS (a test CA), mail through the real SMTP
//! capture server. The same commands the page calls in this computer's own mode.

mod common;

use std::time::Duration;

use common::app::{config, App, NEW_PASSWORD, PASSWORD};
use common::server::{Server, Setup};
use rekey_testkit::{SmtpCapture, TestCa};
use serde_json::{json, Value};

/// A server over HTTPS with a test CA, its mail, and its data.
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
        let setup = Setup {
            tls: Some((ca.server_cert().to_path_buf(), ca.server_key().to_path_buf())),
            ..Setup::default()
        };
        let server = Server::start(&dir.path().join("data"), Some(&smtp), setup);
        Org {
            smtp,
            ca,
            server,
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        self.server.url("")
    }

    /// The newest mail to `to` whose subject starts with `subject`.
    fn mail(&self, to: &str, subject: &str, n: usize) -> rekey_testkit::CapturedMail {
        self.smtp
            .wait_for_mail(to, subject, n, Duration::from_secs(20))
            .remove(n - 1)
    }
}

/// The app, connected to `org` (`ca`: the CA file it is told to trust).
fn connected(org: &Org, ca: Option<&std::path::Path>) -> App {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&dir.path().join("data"), None);
    config.server_url = Some(org.url().parse().unwrap());
    config.server_ca_file = ca.map(std::path::Path::to_path_buf);
    App::with_shell(dir, |_| Ok(config))
}

#[test]
fn every_command_goes_to_the_server() {
    let org = Org::start();
    let app = connected(&org, Some(org.ca.ca_pem()));
    let info = app.ok("app_info", json!({}));
    assert_eq!(info["place"], json!({"mode": "server", "url": org.url()}));
    assert_eq!(info["minLength"], 15);

    // A new account: the server finishes it by mail.
    let registered = app.ok("register", json!({"email": "ida@example.com", "password": PASSWORD}));
    assert_eq!(registered, json!({"email": "ida@example.com", "verifyByMail": true}));
    assert_eq!(
        app.refused("sign_in", json!({"email": "ida@example.com", "password": PASSWORD})),
        "bad_credentials"
    );
    let welcome = org.mail("ida@example.com", "Finish creating", 1);
    let target = app.ok("inspect_verify_link", json!({"token": welcome.verify_token()}));
    assert_eq!(target["email"], "ida@example.com");
    assert_eq!(
        app.ok(
            "verify_account",
            json!({"token": welcome.verify_token(), "password": PASSWORD})
        ),
        json!({"email": "ida@example.com"})
    );
    assert_eq!(
        app.ok("sign_in", json!({"email": "ida@example.com", "password": PASSWORD})),
        json!({"email": "ida@example.com"})
    );
    assert_eq!(
        app.ok("app_info", json!({}))["signedIn"],
        json!({"email": "ida@example.com"})
    );
    app.ok(
        "change_password",
        json!({"current": PASSWORD, "newPassword": NEW_PASSWORD}),
    );
    assert_eq!(
        app.ok("app_info", json!({}))["signedIn"],
        json!({"email": "ida@example.com"})
    );
    app.ok("sign_out", json!({}));
    assert_eq!(app.ok("app_info", json!({}))["signedIn"], Value::Null);

    // Forgot, through the server's mail; the link's owner, then a new password.
    app.ok("request_reset", json!({"email": "ida@example.com"}));
    let reset = org.mail("ida@example.com", "Reset your", 1);
    let target = app.ok("inspect_link", json!({"token": reset.reset_token()}));
    assert_eq!(target["email"], "ida@example.com");
    app.ok(
        "confirm_reset",
        json!({"token": reset.reset_token(), "newPassword": "a third passphrase ida chose"}),
    );
    assert_eq!(
        app.refused("inspect_link", json!({"token": reset.reset_token()})),
        "token_used"
    );
    assert_eq!(
        app.refused("sign_in", json!({"email": "ida@example.com", "password": NEW_PASSWORD})),
        "bad_credentials"
    );
    app.ok(
        "sign_in",
        json!({"email": "ida@example.com", "password": "a third passphrase ida chose"}),
    );
    // The typed code too.
    app.ok("request_reset", json!({"email": "ida@example.com"}));
    let reset = org.mail("ida@example.com", "Reset your", 2);
    app.ok(
        "confirm_reset",
        json!({"email": "ida@example.com", "code": reset.reset_code(), "newPassword": PASSWORD}),
    );
    app.ok("sign_in", json!({"email": "ida@example.com", "password": PASSWORD}));
    // The strength meter asks the server; the server's queue stays the operator's.
    let strength = app.ok("password_strength", json!({"password": "lantern orbit meadow crisp"}));
    assert!(strength["score"].as_u64().unwrap() >= 3);
    let mail = app.ok("mail_status", json!({}));
    assert_eq!(
        (mail["mode"].as_str(), mail["depth"].as_u64()),
        (Some("server"), Some(0))
    );
    assert_eq!(mail["lastError"], Value::Null);
    assert_eq!(app.refused("mailbox_list", json!({})), "mailbox_off");
}

#[test]
fn a_link_from_elsewhere_is_refused_in_words_and_nothing_is_sent_there() {
    let org = Org::start();
    let other = Org::start();
    other.server.create_account(&other.smtp, "eve@example.com", PASSWORD);
    let base = |o: &Org| -> u64 {
        let text = reqwest::blocking::get(o.server.metrics_url()).unwrap().text().unwrap();
        text.lines()
            .filter(|l| l.starts_with("rekey_http_requests_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    other
        .server
        .http()
        .post(other.server.url("/users/password/forgot"))
        .json(&json!({"email": "eve@example.com"}))
        .send()
        .unwrap();
    let foreign = other.mail("eve@example.com", "Reset your", 1).reset_token();
    let before = base(&other);
    let app = connected(&org, Some(org.ca.ca_pem()));
    let e = app.call("inspect_link", json!({"token": foreign})).unwrap_err();
    assert_eq!(e["code"], "link_other_server", "{e}");
    let message = e["message"].as_str().unwrap();
    assert!(
        message.contains(&other.url()) && message.contains(&org.url()),
        "{message}"
    );
    assert_eq!(
        app.refused("confirm_reset", json!({"token": foreign, "newPassword": NEW_PASSWORD})),
        "link_other_server"
    );
    assert_eq!(base(&other), before, "the other server was contacted");

    // A link from this computer's own store, while connected: the same refusal.
    let local = App::start(None);
    local.ok("register", json!({"email": "lo@example.com", "password": PASSWORD}));
    local.ok("request_reset", json!({"email": "lo@example.com"}));
    let letter = local.ok("mailbox_open", json!({"id": local.wait_for_mailbox(1)[0]["id"]}));
    let link = letter["links"][0]["url"].as_str().unwrap().to_string();
    let token = rekey_desktop::reset_token(&link).unwrap();
    let e = app.call("inspect_link", json!({ "token": token })).unwrap_err();
    assert_eq!(e["code"], "link_other_server");
    assert!(
        e["message"].as_str().unwrap().contains("own store on a computer"),
        "{e}"
    );
    // ...and a server's link in this computer's own mode.
    let e = local.call("inspect_link", json!({ "token": foreign })).unwrap_err();
    assert_eq!(e["code"], "link_other_server");
    assert!(e["message"].as_str().unwrap().contains("Settings"), "{e}");
}

#[test]
fn a_server_that_is_down_or_untrusted_is_said_in_words_and_nothing_is_lost() {
    let mut org = Org::start();
    org.server.create_account(&org.smtp, "max@example.com", PASSWORD);
    // Not told to trust the organisation's CA.
    let untrusting = connected(&org, None);
    let e = untrusting
        .call("sign_in", json!({"email": "max@example.com", "password": PASSWORD}))
        .unwrap_err();
    assert_eq!(e["code"], "server_untrusted", "{e}");
    assert!(e["message"].as_str().unwrap().contains("server_ca_file"), "{e}");

    let app = connected(&org, Some(org.ca.ca_pem()));
    app.ok("sign_in", json!({"email": "max@example.com", "password": PASSWORD}));
    assert!(org.server.terminate().success());
    let e = app
        .call("request_reset", json!({"email": "max@example.com"}))
        .unwrap_err();
    assert_eq!(e["code"], "server_unreachable", "{e}");
    assert!(e["message"].as_str().unwrap().contains(&org.url()), "{e}");
    // The page still draws, and the session is kept for when the server is back.
    let info = app.ok("app_info", json!({}));
    assert_eq!(
        (info["place"]["mode"].as_str(), &info["signedIn"]),
        (Some("server"), &Value::Null)
    );
    // Back up on the same address: the same request goes through, nothing to retype.
    let data = org.server.data.clone();
    let setup = Setup {
        tls: Some((org.ca.server_cert().to_path_buf(), org.ca.server_key().to_path_buf())),
        port: Some(org.server.port),
        ..Setup::default()
    };
    org.server = Server::start(&data, Some(&org.smtp), setup);
    app.ok("request_reset", json!({"email": "max@example.com"}));
    org.mail("max@example.com", "Reset your", 1);
    assert_eq!(
        app.ok("app_info", json!({}))["signedIn"],
        json!({"email": "max@example.com"})
    );
}

#[test]
fn a_limit_a_silent_server_and_an_administrators_preset() {
    // The server's own limit reaches the app in the server's words, with the wait.
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(&dir.path().join("tls"));
    let smtp = SmtpCapture::start();
    let setup = Setup {
        tls: Some((ca.server_cert().to_path_buf(), ca.server_key().to_path_buf())),
        ..Setup::default()
    }
    .with("REKEY_LIMIT_CLIENT", "1/1h");
    let server = Server::start(&dir.path().join("data"), Some(&smtp), setup);
    let app_dir = tempfile::tempdir().unwrap();
    let mut c = config(&app_dir.path().join("data"), None);
    c.server_url = Some(server.url("").parse().unwrap());
    c.server_ca_file = Some(ca.ca_pem().to_path_buf());
    let app = App::with_shell(app_dir, |_| Ok(c));
    app.ok("request_reset", json!({"email": "any@example.com"}));
    let e = app
        .call("request_reset", json!({"email": "any@example.com"}))
        .unwrap_err();
    assert_eq!(e["code"], "rate_limited");
    assert!(e["message"].as_str().unwrap().contains("try again in"), "{e}");

    // A server that takes the connection and says nothing: the app gives up in bounded time.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = std::thread::spawn(move || silent.accept().map(|(socket, _)| socket));
    let app_dir = tempfile::tempdir().unwrap();
    let mut c = config(&app_dir.path().join("data"), None);
    c.server_url = Some(format!("http://127.0.0.1:{port}").parse().unwrap());
    c.server_timeout_secs = 2;
    let app = App::with_shell(app_dir, |_| Ok(c));
    let started = std::time::Instant::now();
    let e = app
        .call("request_reset", json!({"email": "any@example.com"}))
        .unwrap_err();
    assert_eq!(e["code"], "server_slow", "{e}");
    assert!(started.elapsed() < Duration::from_secs(6), "{:?}", started.elapsed());
    drop(held);

    // An administrator's file presets the server for every user; the user's own is above it.
    let files = tempfile::tempdir().unwrap();
    let system = files.path().join("system.toml");
    std::fs::write(
        &system,
        format!(
            "server_url = \"{}\"\nserver_ca_file = \"{}\"\n",
            server.url(""),
            ca.ca_pem().display()
        ),
    )
    .unwrap();
    let preset = rekey_core::Config::load_layered(&system, Some(&files.path().join("none.toml")), &[]).unwrap();
    assert_eq!(
        preset.server_url.as_ref().map(|u| u.as_str().trim_end_matches('/')),
        Some(server.url("").as_str())
    );
    let user = files.path().join("user.toml");
    std::fs::write(&user, "server_url = \"\"\n").unwrap();
    let mine = rekey_core::Config::load_layered(&system, Some(&user), &[]).unwrap();
    assert_eq!(mine.server_url, None, "the user chose this computer");
}
