//! The desktop shell's commands through Tauri's mock runtime (no display needed), over a
//! real sled directory and, where mail matters, the real SMTP capture server.

use std::sync::mpsc;
use std::time::Duration;

mod common;

use common::app::{config, App};
use rekey_desktop::Shell;
use rekey_testkit::{Fault, SmtpCapture};
use serde_json::{json, Value};
use tauri::{Listener, Manager};

use common::app::{NEW_PASSWORD, PASSWORD};

fn token_from(letter: &Value) -> String {
    let link = letter["links"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|l| l["url"].as_str().filter(|u| u.starts_with("rekey://")))
        .expect("a rekey:// link in the message");
    rekey_desktop::reset_token(link).unwrap()
}

#[test]
fn accounts_sign_in_change_password_and_sign_out() {
    let app = App::start(None);
    assert_eq!(
        app.ok("register", json!({"email": "Zoe@Example.com", "password": PASSWORD})),
        json!({"email": "zoe@example.com", "verifyByMail": false}),
        "this computer's own store makes the account at once"
    );
    assert_eq!(
        app.refused("register", json!({"email": "zoe@example.com", "password": PASSWORD})),
        "email_taken"
    );
    assert_eq!(
        app.refused(
            "sign_in",
            json!({"email": "zoe@example.com", "password": "wrong guess of a password"})
        ),
        "bad_credentials"
    );
    app.ok("sign_in", json!({"email": "zoe@example.com", "password": PASSWORD}));
    let info = app.ok("app_info", json!({}));
    assert_eq!(info["signedIn"]["email"], "zoe@example.com");
    assert_eq!(info["mail"]["mode"], "mailbox");
    assert_eq!(info["minLength"], 15);

    assert_eq!(
        app.refused(
            "change_password",
            json!({"current": "not my password at all", "newPassword": NEW_PASSWORD})
        ),
        "bad_credentials"
    );
    app.ok(
        "change_password",
        json!({"current": PASSWORD, "newPassword": NEW_PASSWORD}),
    );
    // Still signed in with the fresh session; the notice went to the mailbox.
    assert_eq!(app.ok("app_info", json!({}))["signedIn"]["email"], "zoe@example.com");
    let list = app.wait_for_mailbox(1);
    assert!(list[0]["subject"].as_str().unwrap().contains("changed"), "{list:?}");

    app.ok("sign_out", json!({}));
    assert_eq!(app.ok("app_info", json!({}))["signedIn"], Value::Null);
    assert_eq!(
        app.refused(
            "change_password",
            json!({"current": NEW_PASSWORD, "newPassword": PASSWORD})
        ),
        "session_invalid"
    );
}

#[test]
fn a_reset_through_the_local_mailbox_and_its_link() {
    let app = App::start(None);
    app.ok("register", json!({"email": "amy@example.com", "password": PASSWORD}));
    let known = app.ok("request_reset", json!({"email": "amy@example.com"}));
    let unknown = app.ok("request_reset", json!({"email": "nobody@example.com"}));
    assert_eq!(known, unknown, "the same answer for an account and a stranger");
    assert_eq!(known["resendAfterSecs"], 60);

    let list = app.wait_for_mailbox(1);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        app.ok("mailbox_list", json!({})).as_array().unwrap().len(),
        1,
        "no mail for the stranger"
    );
    assert_eq!(list[0]["to"], "amy@example.com");
    let letter = app.ok("mailbox_open", json!({"id": list[0]["id"]}));
    assert!(letter["text"].as_str().unwrap().contains("ignore"), "{letter}");
    let token = token_from(&letter);

    // A link clicked in the mailbox comes back as an event with the token.
    let (tx, rx) = mpsc::channel();
    app.app
        .listen("reset-link", move |e| tx.send(e.payload().to_string()).unwrap());
    app.ok("open_link", json!({"url": format!("rekey://reset?token={token}")}));
    let payload: Value = serde_json::from_str(&rx.recv_timeout(Duration::from_secs(5)).unwrap()).unwrap();
    assert_eq!(payload["token"], token.as_str());

    // Looking at the link consumes nothing; the policy speaks before the reset does.
    for _ in 0..2 {
        assert_eq!(
            app.ok("inspect_link", json!({"token": token}))["email"],
            "amy@example.com"
        );
    }
    let weak = app.ok(
        "password_strength",
        json!({"password": "amy@example.com1", "email": "amy@example.com"}),
    );
    assert_eq!(weak["acceptable"], false);
    assert!(weak["problem"].as_str().is_some());
    assert_eq!(
        app.refused("confirm_reset", json!({"token": token, "newPassword": "short"})),
        "password_too_short"
    );
    app.ok("confirm_reset", json!({"token": token, "newPassword": NEW_PASSWORD}));
    assert_eq!(app.refused("inspect_link", json!({"token": token})), "token_used");
    assert_eq!(
        app.refused("confirm_reset", json!({"token": token, "newPassword": NEW_PASSWORD})),
        "token_used"
    );
    assert_eq!(
        app.refused("sign_in", json!({"email": "amy@example.com", "password": PASSWORD})),
        "bad_credentials"
    );
    app.ok("sign_in", json!({"email": "amy@example.com", "password": NEW_PASSWORD}));
    assert!(app.ok("mail_status", json!({}))["delivered"].as_u64().unwrap() >= 2);
}

#[test]
fn the_typed_code_over_smtp_and_stuck_mail_in_words() {
    let smtp = SmtpCapture::start();
    let app = App::start(Some(&smtp));
    app.ok("register", json!({"email": "bo@example.com", "password": PASSWORD}));
    assert_eq!(app.refused("mailbox_list", json!({})), "mailbox_off");

    smtp.set_fault(Fault::Reject(451, "4.3.0 mailbox busy, try later".into()));
    app.ok("request_reset", json!({"email": "bo@example.com"}));
    let mut status = Value::Null;
    for _ in 0..200 {
        status = app.ok("mail_status", json!({}));
        if status["lastError"].is_string() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(status["mode"], "smtp");
    assert_eq!(status["depth"], 1);
    assert!(status["lastError"].as_str().unwrap().contains("451"), "{status}");

    smtp.set_fault(Fault::Accept);
    let mail = smtp.wait_for_messages(1, Duration::from_secs(40)).remove(0);
    let code = mail
        .text
        .as_deref()
        .unwrap()
        .split_whitespace()
        .find(|w| w.len() == 9 && w.as_bytes()[4] == b'-')
        .unwrap()
        .to_string();
    assert_eq!(
        app.refused(
            "confirm_reset",
            json!({"email": "bo@example.com", "code": "ZZZZ-ZZZZ", "newPassword": NEW_PASSWORD})
        ),
        "code_invalid"
    );
    app.ok(
        "confirm_reset",
        json!({"email": "bo@example.com", "code": code, "newPassword": NEW_PASSWORD}),
    );
    app.ok("sign_in", json!({"email": "bo@example.com", "password": NEW_PASSWORD}));
}

#[test]
fn bad_input_gets_a_code_and_plain_words() {
    let app = App::start(None);
    assert_eq!(
        app.refused("request_reset", json!({"email": "not an address"})),
        "email_invalid"
    );
    assert_eq!(
        app.refused("confirm_reset", json!({"newPassword": NEW_PASSWORD})),
        "proof_missing"
    );
    assert_eq!(
        app.refused("inspect_link", json!({"token": "a.b.c"})),
        "token_malformed"
    );
    assert_eq!(
        app.refused("open_link", json!({"url": "rekey://reset?token=a.b.c&next=x"})),
        "link_invalid"
    );
    assert_eq!(
        app.refused("mailbox_open", json!({"id": "../keys.json"})),
        "mailbox_unreadable"
    );
    assert_eq!(app.ok("take_pending_link", json!({})), Value::Null);
}

#[test]
fn a_data_directory_held_by_another_program_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let holder = rekey_core::Rekey::open(config(&data, None), "rekeyd serve").unwrap();
    let app = App::with_shell(dir, |_| Ok(config(&data, None)));
    let e = app.call("app_info", json!({})).unwrap_err();
    assert_eq!(e["code"], "data_locked");
    assert!(e["message"].as_str().unwrap().contains("rekeyd serve"), "{e}");
    drop(holder);

    let broken = App::with_shell(tempfile::tempdir().unwrap(), |_| {
        Err("REKEY_LISTEN: 'x' is not an address".into())
    });
    let e = broken
        .call("register", json!({"email": "a@example.com", "password": PASSWORD}))
        .unwrap_err();
    assert_eq!(e["code"], "setup_error");
    assert!(e["message"].as_str().unwrap().contains("REKEY_LISTEN"), "{e}");
}

#[test]
fn the_bundle_and_the_first_run_register_the_scheme_the_app_reads() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let conf: Value = serde_json::from_str(&std::fs::read_to_string(root.join("tauri.conf.json")).unwrap()).unwrap();
    assert_eq!(conf["plugins"]["deep-link"]["desktop"]["schemes"], json!(["rekey"]));
    let template = conf["bundle"]["linux"]["deb"]["desktopTemplate"].as_str().unwrap();
    let desktop_file = std::fs::read_to_string(root.join(template)).unwrap();
    assert!(
        desktop_file.contains("MimeType=x-scheme-handler/rekey;"),
        "{desktop_file}"
    );
    // The URL is passed as the argument the app looks for.
    assert!(desktop_file.contains("Exec={{exec}} %u"), "{desktop_file}");
    assert!(rekey_desktop::is_rekey_url("rekey://reset?token=a.b.c"));
}

#[test]
fn a_verification_link_opens_the_verify_page_and_finishes_the_account() {
    let app = App::start(None);
    // This computer's own store makes accounts at once; a verification link comes from a
    // registration asked for the open way (as a server does), here through the core itself.
    let core = app.app.state::<Shell>().core().unwrap().clone();
    tauri::async_runtime::block_on(core.request_account("Vi@Example.com", PASSWORD, None, "test")).unwrap();
    let list = app.wait_for_mailbox(1);
    let letter = app.ok("mailbox_open", json!({"id": list[0]["id"]}));
    let link = letter["links"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|l| l["url"].as_str().filter(|u| u.starts_with("rekey://verify")))
        .expect("a rekey://verify link in the message")
        .to_string();
    let (tx, rx) = mpsc::channel();
    app.app
        .listen("verify-link", move |e| tx.send(e.payload().to_string()).unwrap());
    app.ok("open_link", json!({ "url": link }));
    let payload: Value = serde_json::from_str(&rx.recv_timeout(Duration::from_secs(5)).unwrap()).unwrap();
    let token = payload["token"].as_str().unwrap().to_string();
    assert_eq!(
        (rekey_desktop::LinkAction::Verify, token.clone()),
        rekey_desktop::parse_link(&link).unwrap()
    );
    // Opening it says whose account it is, and changes nothing.
    let target = app.ok("inspect_verify_link", json!({ "token": token }));
    assert_eq!(target["email"], "vi@example.com");
    assert_eq!(
        app.refused("sign_in", json!({"email": "vi@example.com", "password": PASSWORD})),
        "bad_credentials"
    );
    // A verification link is not a reset link.
    assert_eq!(
        app.refused("inspect_link", json!({ "token": token })),
        "token_wrong_audience"
    );
    assert_eq!(
        app.refused("verify_account", json!({ "token": token, "password": NEW_PASSWORD })),
        "password_mismatch"
    );
    assert_eq!(
        app.ok("verify_account", json!({ "token": token, "password": PASSWORD })),
        json!({"email": "vi@example.com"})
    );
    assert_eq!(
        app.refused("verify_account", json!({ "token": token, "password": PASSWORD })),
        "account_verified"
    );
    app.ok("sign_in", json!({"email": "vi@example.com", "password": PASSWORD}));
}

#[test]
fn the_operators_product_name_reaches_the_app_and_its_mail() {
    let dir = tempfile::tempdir().unwrap();
    let app = App::with_shell(dir, |d| {
        let mut config = config(&d.join("data"), None);
        config.product_name = "Example Corp Login".into();
        Ok(config)
    });
    assert_eq!(app.ok("app_info", json!({}))["productName"], "Example Corp Login");
    app.ok("register", json!({"email": "ute@example.com", "password": PASSWORD}));
    app.ok("request_reset", json!({"email": "ute@example.com"}));
    let mail = app.wait_for_mailbox(1);
    assert_eq!(mail[0]["subject"], "Reset your Example Corp Login password", "{mail:?}");
}
