//! The desktop app end to end: the real window under Xvfb through tauri-driver and
//! WebKitWebDriver, mail through the real SMTP capture server (or the local mailbox), and
//! links handed over the way the system does it. Screenshots land in target/screenshots/.

mod common;

use std::sync::Mutex;
use std::time::Duration;

use common::desktop::{Desktop, Window};
use rekey_testkit::{Fault, SmtpCapture};

const PASSWORD: &str = "quiet river under the old mill";
const NEW_PASSWORD: &str = "lanterns drift past the harbour wall";

/// One window at a time: each brings its own X server and WebKit, and this machine has two cores.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn with_smtp(desktop: &mut Desktop, smtp: &SmtpCapture) {
    desktop.set("REKEY_SMTP_URL", smtp.implicit_url());
    desktop.set("REKEY_SMTP_CA_FILE", smtp.ca_pem().display().to_string());
}

fn create_account(w: &Window, email: &str) {
    w.wait_page("page-signin");
    w.click("#to-register");
    w.wait_page("page-register");
    w.type_into("#register-email", email);
    w.type_into("#register-password", PASSWORD);
    w.wait_text("#register-strength", "strong");
    w.screenshot("create-account");
    w.click("#register-submit");
    w.wait_page("page-signin");
    w.wait_text("#status", "Account created");
}

fn ask_for_reset(w: &Window, email: &str) {
    w.click("#to-forgot");
    w.wait_page("page-forgot");
    w.screenshot("forgot-password");
    w.type_into("#forgot-email", email);
    w.click("#forgot-submit");
    w.wait_page("page-check");
}

fn sign_in(w: &Window, email: &str, password: &str) {
    w.wait_page("page-signin");
    w.type_into("#signin-email", email);
    w.type_into("#signin-password", password);
    w.click("#signin-submit");
}

fn set_new_password(w: &Window, prefix: &str) {
    w.type_into(&format!("#{prefix}-password"), "password1234567");
    w.wait_text(&format!("#{prefix}-strength"), "common");
    w.type_into(&format!("#{prefix}-password"), NEW_PASSWORD);
    w.type_into(&format!("#{prefix}-confirm"), NEW_PASSWORD);
    w.wait_text(&format!("#{prefix}-strength"), "strong");
    w.screenshot(&format!("{prefix}-typed"));
    w.click(&format!("#{prefix}-submit"));
    w.wait_page("page-done");
}

#[test]
fn a_link_opened_while_the_app_runs_fills_in_the_reset_page() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let smtp = SmtpCapture::start();
    let mut desktop = Desktop::start();
    with_smtp(&mut desktop, &smtp);
    let w = desktop.open_app(&[]);
    w.wait_page("page-signin");
    w.screenshot("sign-in");
    create_account(&w, "zoe@example.com");
    ask_for_reset(&w, "zoe@example.com");
    w.screenshot("check-your-mail");
    let mail = smtp.wait_for_messages(1, Duration::from_secs(20)).remove(0);
    let link = format!("rekey://reset?token={}", mail.reset_token());

    // The system opens the link: the scheme was registered at first run, and the second
    // launch hands the URL to the running window over D-Bus, then exits.
    let apps = desktop.home.path().join("data/applications");
    let registered = std::fs::read_dir(&apps)
        .map(|d| {
            d.filter_map(|e| std::fs::read_to_string(e.unwrap().path()).ok())
                .any(|t| t.contains("x-scheme-handler/rekey"))
        })
        .unwrap_or(false);
    assert!(registered, "no desktop file for rekey:// in {}", apps.display());
    // `gio open` asks the desktop's URL handler database, as a mail program does.
    let opened = desktop.command("gio").args(["open", &link]).output().unwrap();
    assert!(opened.status.success(), "{opened:?}");
    w.wait_page("page-reset");
    w.wait_text("#reset-target", "zoe@example.com");
    w.screenshot("reset");
    set_new_password(&w, "reset");
    w.screenshot("done");

    w.click("#done-signin");
    sign_in(&w, "zoe@example.com", PASSWORD);
    w.wait_text("#signin-error", "do not match");
    sign_in(&w, "zoe@example.com", NEW_PASSWORD);
    w.wait_page("page-home");
    w.wait_text("#home-email", "zoe@example.com");
    w.screenshot("signed-in");

    // Nothing takes the window to a web page, not even the page's own script.
    let home = w.js("return location.href", serde_json::json!([]));
    w.js(
        "location.href = 'https://example.com/login'; return true",
        serde_json::json!([]),
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(w.js("return location.href", serde_json::json!([])), home);
    w.wait_text("#home-email", "zoe@example.com");

    // The same link again, launched directly: the page says so before anyone types.
    let again = desktop.launch(&[&link]);
    assert!(again.status.success());
    w.wait_page("page-reset");
    w.wait_text("#reset-target", "already used");
    w.screenshot("reset-link-used");
    assert!(
        w.js(
            "return document.querySelector('#reset-fields').disabled || document.querySelector('#reset-fields').hidden",
            serde_json::json!([])
        ) == serde_json::json!(true)
    );
}

#[test]
fn a_cold_start_with_a_link_opens_the_reset_page() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let smtp = SmtpCapture::start();
    let mut desktop = Desktop::start();
    with_smtp(&mut desktop, &smtp);
    {
        let w = desktop.open_app(&[]);
        create_account(&w, "amy@example.com");
        ask_for_reset(&w, "amy@example.com");
        smtp.wait_for_messages(1, Duration::from_secs(20));
    }
    let token = smtp.messages()[0].reset_token();
    // The first window is gone; the app starts with the link on its command line.
    let w = desktop.open_app(&[&format!("rekey://reset?token={token}")]);
    w.wait_page("page-reset");
    w.wait_text("#reset-target", "amy@example.com");
    set_new_password(&w, "reset");
    w.click("#done-signin");
    sign_in(&w, "amy@example.com", NEW_PASSWORD);
    w.wait_page("page-home");
}

#[test]
fn the_typed_code_works_and_stuck_mail_is_explained() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let smtp = SmtpCapture::start();
    let mut desktop = Desktop::start();
    with_smtp(&mut desktop, &smtp);
    let w = desktop.open_app(&[]);
    create_account(&w, "bo@example.com");
    smtp.set_fault(Fault::Reject(451, "4.3.0 mailbox busy, try later".into()));
    ask_for_reset(&w, "bo@example.com");
    w.wait_text("#check-mail-status", "451");
    w.screenshot("check-your-mail-stuck");
    smtp.set_fault(Fault::Accept);
    // The outbox retries after its backoff (10 s with jitter).
    let mail = smtp.wait_for_messages(1, Duration::from_secs(40)).remove(0);
    w.click("#check-enter-code");
    w.wait_page("page-code");
    w.type_into("#code-email", "bo@example.com");
    w.type_into("#code-value", &mail.reset_code().to_lowercase().replace('-', " "));
    w.type_into("#code-password", NEW_PASSWORD);
    w.type_into("#code-confirm", NEW_PASSWORD);
    w.screenshot("enter-code");
    w.click("#code-submit");
    w.wait_page("page-done");
    w.click("#done-signin");
    sign_in(&w, "bo@example.com", NEW_PASSWORD);
    w.wait_page("page-home");
}

#[test]
fn mail_queued_when_the_app_closes_goes_out_at_the_next_start() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut smtp = SmtpCapture::start();
    let mut desktop = Desktop::start();
    with_smtp(&mut desktop, &smtp);
    {
        let w = desktop.open_app(&[]);
        create_account(&w, "eve@example.com");
        smtp.stop();
        ask_for_reset(&w, "eve@example.com");
        w.wait_text("#check-mail-status", "waiting");
    } // the window closes, the app exits with the mail queued
    smtp.restart();
    let _w = desktop.open_app(&[]);
    // The retry is due after the outbox's backoff (10 s with jitter).
    let mail = smtp.wait_for_messages(1, Duration::from_secs(45)).remove(0);
    assert_eq!(mail.rcpt_to, vec!["eve@example.com"]);
}

#[test]
fn with_no_mail_server_the_local_mailbox_carries_the_link() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let desktop = Desktop::start();
    let w = desktop.open_app(&[]);
    create_account(&w, "cy@example.com");
    ask_for_reset(&w, "cy@example.com");
    w.click("#check-open-mailbox");
    w.wait_page("page-mailbox");
    w.wait_visible("#mailbox-list .mailbox-item");
    w.click("#mailbox-list .mailbox-item");
    w.wait_text("#mailbox-message", "Reset your Rekey password");
    w.screenshot("local-mailbox");
    w.click("#mailbox-message a.mailbox-link[href^='rekey:']");
    w.wait_page("page-reset");
    w.wait_text("#reset-target", "cy@example.com");
    set_new_password(&w, "reset");
    w.click("#done-signin");
    sign_in(&w, "cy@example.com", NEW_PASSWORD);
    w.wait_page("page-home");
}

#[test]
fn the_window_carries_the_operators_product_name() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut desktop = Desktop::start();
    desktop.set("REKEY_PRODUCT_NAME", "Example Corp Login");
    let w = desktop.open_app(&[]);
    w.wait_page("page-signin");
    w.wait_until("the page takes the product's name", || {
        w.js("return document.title", serde_json::json!([])) == serde_json::json!("Example Corp Login")
    });
    assert_eq!(w.text(".app-name"), "Example Corp Login");
    assert!(
        w.text("#app-footer").starts_with("Example Corp Login "),
        "{}",
        w.text("#app-footer")
    );
    let said_rekey = w.js(
        "return [...document.querySelectorAll('.product-name')].some((e) => e.textContent !== 'Example Corp Login')",
        serde_json::json!([]),
    );
    assert_eq!(
        said_rekey,
        serde_json::json!(false),
        "every place the page names the product"
    );
}

/// Picks `value` in the `<select>` `css`, as a person choosing from the list does.
fn choose(w: &Window, css: &str, value: &str) {
    w.js(
        "const s = document.querySelector(arguments[0]); s.value = arguments[1]; \
         s.dispatchEvent(new Event('change', { bubbles: true }));",
        serde_json::json!([css, value]),
    );
}

#[test]
fn under_a_german_locale_the_window_speaks_german_and_the_settings_change_it() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let smtp = SmtpCapture::start();
    let mut desktop = Desktop::start();
    with_smtp(&mut desktop, &smtp);
    // A German desktop session: LANG, with no LC_ALL above it.
    desktop.set("LC_ALL", "");
    desktop.set("LANG", "de_DE.UTF-8");
    // In Kolkata (no summer time): signing in tells the account, and its mail's times follow.
    desktop.set("TZ", "Asia/Kolkata");
    let w = desktop.open_app(&[]);
    w.wait_page("page-signin");
    w.wait_until("the sign-in page in German", || w.text("#signin-title") == "Anmelden");
    assert_eq!(
        w.js("return document.documentElement.lang", serde_json::json!([])),
        "de"
    );
    assert_eq!(w.text("label[for=signin-email]"), "E-Mail");
    assert_eq!(w.text("#to-forgot"), "Passwort vergessen?");
    assert!(
        w.text("#app-footer").contains("Dieser Computer"),
        "{}",
        w.text("#app-footer")
    );
    w.screenshot("sign-in-german");

    // The window's own checks, and the core's refusals, in German too.
    w.type_into("#signin-email", "niemand@example.com");
    w.click("#signin-submit");
    w.wait_text("#signin-password-msg", "Geben Sie Ihr Passwort ein.");
    w.type_into("#signin-password", PASSWORD);
    w.click("#signin-submit");
    w.wait_text("#signin-error", "passen zu keinem Konto");

    // An account made here writes its mail in German; the signed-in page can change that.
    w.click("#to-register");
    w.wait_page("page-register");
    w.type_into("#register-email", "dora@example.com");
    w.type_into("#register-password", PASSWORD);
    w.wait_text("#register-strength", "Sehr stark");
    w.click("#register-submit");
    w.wait_page("page-signin");
    w.wait_text("#status", "Konto angelegt");
    sign_in(&w, "dora@example.com", PASSWORD);
    w.wait_page("page-home");
    w.wait_until("the mail's language is the account's", || {
        w.js(
            "return document.getElementById('mail-language').value",
            serde_json::json!([]),
        ) == "de"
    });
    choose(&w, "#mail-language", "es");
    w.click("#mail-language-submit");
    w.wait_text("#status", "Español");
    w.click("#signout");
    w.wait_page("page-signin");
    ask_for_reset(&w, "dora@example.com");
    let mail = smtp.wait_for_messages(1, Duration::from_secs(20));
    assert_eq!(mail[0].header("Content-Language"), Some("es"));
    assert!(
        mail[0].header("Subject").unwrap_or_default().starts_with("Restablezca"),
        "{:?}",
        mail[0].header("Subject")
    );
    let text = mail[0].text.as_deref().unwrap_or_default();
    assert!(
        text.contains(" IST del "),
        "the link's expiry in Kolkata's time: {text}"
    );
    w.click("#check-to-signin");

    // Settings: French at once, kept for the next start; then back to the system's.
    w.click("#to-settings");
    w.wait_page("page-settings");
    let first_choice = || {
        w.js(
            "return document.querySelector('#settings-language option').textContent",
            serde_json::json!([]),
        )
    };
    w.wait_until("the language choices", || first_choice() == "Wie das System (Deutsch)");
    choose(&w, "#settings-language", "fr");
    w.wait_until("the settings page in French", || {
        w.text("#settings-title") == "Paramètres"
    });
    assert_eq!(
        w.js("return document.documentElement.lang", serde_json::json!([])),
        "fr"
    );
    assert!(
        w.text("#app-footer").contains("Cet ordinateur"),
        "{}",
        w.text("#app-footer")
    );
    w.screenshot("settings-french");
    let saved = std::fs::read_to_string(desktop.config_file()).unwrap();
    assert!(saved.contains("app_language = \"fr\""), "{saved}");
    drop(w);
    let w = desktop.open_app(&[]);
    w.wait_page("page-signin");
    w.wait_until("French after a restart", || w.text("#signin-title") == "Se connecter");
    w.click("#to-settings");
    w.wait_page("page-settings");
    choose(&w, "#settings-language", "");
    w.wait_until("German again, as the system", || {
        w.text("#settings-title") == "Einstellungen"
    });
}

#[test]
fn keyboard_alone_signs_in_in_the_dark_theme() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut desktop = Desktop::start();
    // GTK's dark variant makes WebKit report prefers-color-scheme: dark.
    desktop.set("GTK_THEME", "Adwaita:dark");
    let w = desktop.open_app(&[]);
    let dark = w.js(
        "return matchMedia('(prefers-color-scheme: dark)').matches",
        serde_json::json!([]),
    );
    assert_eq!(dark, serde_json::json!(true));
    w.wait_page("page-signin");
    w.screenshot("sign-in-dark");
    create_account(&w, "dee@example.com");
    // From the email field: type, Tab to the password, type, Enter submits.
    w.type_into("#signin-email", "dee@example.com");
    w.press("\u{E004}");
    assert_eq!(w.focused(), "signin-password");
    w.press(PASSWORD);
    w.press("\u{E007}");
    w.wait_page("page-home");
    // The new page takes focus at its heading, and Tab goes on to its first field.
    w.wait_until("focus on the signed-in page's heading", || w.focused() == "home-title");
    w.press("\u{E004}");
    assert_eq!(w.focused(), "change-current");
}

#[test]
fn a_verification_link_at_a_cold_start_finishes_the_account() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let desktop = Desktop::start();
    // A registration asked for the open way (as a server does), through the core, before the
    // app holds the data: its mail goes to the local mailbox.
    let token = {
        let flags = [
            ("data_dir", desktop.data_dir().display().to_string()),
            ("argon2_memory_kib", "8192".to_string()),
            ("argon2_iterations", "1".to_string()),
        ];
        let config = rekey_core::Config::from_layers(None, None, &[], &flags).unwrap();
        let core = rekey_core::Rekey::open(config, "a test").unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            core.request_account("cleo@example.com", PASSWORD, None, "test")
                .await
                .unwrap();
            core.drain().await.unwrap();
        });
        let mail = std::fs::read_dir(desktop.data_dir().join("mailbox"))
            .unwrap()
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
            .next()
            .expect("the verification mail");
        rekey_testkit::link_token_in_raw(&mail, "rekey://verify?token=").expect("a verify link")
    };
    let w = desktop.open_app(&[&format!("rekey://verify?token={token}")]);
    w.wait_page("page-verify");
    w.wait_text("#verify-target", "cleo@example.com");
    w.type_into("#verify-password", PASSWORD);
    w.screenshot("verify");
    w.click("#verify-submit");
    w.wait_page("page-signin");
    w.wait_text("#status", "account is ready");
    sign_in(&w, "cleo@example.com", PASSWORD);
    w.wait_page("page-home");
}
