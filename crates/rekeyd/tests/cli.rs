//! The admin command line against a real data directory and the real SMTP capture server.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use rekey_testkit::SmtpCapture;

fn rekeyd(data: &Path, smtp: Option<&SmtpCapture>, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rekeyd"));
    c.arg("--data-dir").arg(data).args(args);
    c.env("REKEY_ARGON2_MEMORY_KIB", "8192")
        .env("REKEY_ARGON2_ITERATIONS", "1");
    c.env("REKEY_MAIL_FROM", "Rekey <no-reply@rekey.test>");
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("REKEY_") && !k.starts_with("REKEY_TEST")) {
        if !["REKEY_ARGON2_MEMORY_KIB", "REKEY_ARGON2_ITERATIONS", "REKEY_MAIL_FROM"].contains(&k.as_str()) {
            c.env_remove(k);
        }
    }
    if let Some(smtp) = smtp {
        c.env("REKEY_SMTP_URL", smtp.implicit_url())
            .env("REKEY_SMTP_CA_FILE", smtp.ca_pem());
    }
    c
}

fn run(mut c: Command, stdin: &str) -> Output {
    c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().expect("rekeyd runs");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ok(c: Command, stdin: &str) -> String {
    let o = run(c, stdin);
    assert!(o.status.success(), "rekeyd failed: {}", text(&o));
    text(&o)
}

#[test]
fn reset_from_the_command_line_over_smtp() {
    let smtp = SmtpCapture::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let add = rekeyd(d, Some(&smtp), &["users", "add", "Zoe@Example.com"]);
    assert!(ok(add, "first of many passphrases\n").contains("Created the account zoe@example.com"));

    let req = rekeyd(d, Some(&smtp), &["reset", "request", "zoe@example.com"]);
    let out = ok(req, "");
    assert!(out.contains("If an account exists for zoe@example.com"), "{out}");
    let mail = smtp.wait_for_messages(1, Duration::from_secs(10)).remove(0);
    assert!(mail.tls && mail.auth_user.as_deref() == Some("rekey"));

    let code = mail.reset_code();
    let confirm_args = ["reset", "confirm", "--email", "zoe@example.com", "--code", &code];
    let weak = rekeyd(d, Some(&smtp), &confirm_args);
    let o = run(weak, "password\n");
    assert!(!o.status.success());
    assert!(text(&o).contains("Use at least 15 characters"), "{}", text(&o));

    let confirm = rekeyd(d, Some(&smtp), &confirm_args);
    assert!(ok(confirm, "second and better passphrase\n").contains("Password changed"));
    smtp.wait_for_messages(2, Duration::from_secs(10));

    let audit = rekeyd(d, None, &["audit", "tail"]);
    let out = ok(audit, "");
    assert!(
        out.contains("password_reset") && out.contains("reset_requested"),
        "{out}"
    );
    assert!(!out.contains("second and better"), "no password in the audit trail");

    let status = rekeyd(d, Some(&smtp), &["outbox", "status", "--json"]);
    let s: serde_json::Value = serde_json::from_str(&ok(status, "")).unwrap();
    assert_eq!((s["depth"].as_u64(), s["delivered"].as_u64()), (Some(0), Some(2)));
}

#[test]
fn a_locked_data_directory_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    // `users add` waits for the password on stdin while holding the data directory.
    let mut holder = rekeyd(dir.path(), None, &[]);
    holder
        .args(["users", "add", "lock@example.com"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = holder.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let list = || rekeyd(dir.path(), None, &["users", "list"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let o = loop {
        let o = run(list(), "");
        if !o.status.success() || std::time::Instant::now() > deadline {
            break o;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let msg = text(&o);
    assert!(!o.status.success());
    assert!(
        msg.contains("in use by rekeyd users add") && msg.contains(&format!("process {}", child.id())),
        "{msg}"
    );
    assert!(msg.contains("stop that process"), "{msg}");
    assert!(
        !msg.contains("WouldBlock") && !msg.contains("os error"),
        "no raw error: {msg}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(ok(list(), "").contains("No accounts yet"));
}

#[test]
fn killed_right_after_answering_the_mail_still_goes_out() {
    let smtp = SmtpCapture::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let add = rekeyd(d, Some(&smtp), &["users", "add", "kai@example.com"]);
    ok(add, "a long enough passphrase\n");
    smtp.set_fault(rekey_testkit::Fault::Silent); // delivery hangs, so the kill lands before it
    let mut req = rekeyd(d, Some(&smtp), &[]);
    req.args(["reset", "request", "kai@example.com"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = req.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("on its way"));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(smtp.messages().is_empty());
    smtp.set_fault(rekey_testkit::Fault::Accept);
    let deliver = rekeyd(d, Some(&smtp), &["outbox", "deliver"]);
    ok(deliver, "");
    let mails = smtp.wait_for_messages(1, Duration::from_secs(10));
    assert_eq!(mails[0].rcpt_to, vec!["kai@example.com".to_string()]);
}

#[test]
fn broken_config_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rekey.toml");
    std::fs::write(&file, "reset_ttl = \"30m\"\nlimit_adress = \"3/15m\"\n").unwrap();
    let mut c = rekeyd(dir.path(), None, &[]);
    c.arg("--config").arg(&file).args(["config", "check"]);
    let o = run(c, "");
    assert_eq!(o.status.code(), Some(2));
    let msg = text(&o);
    assert!(
        msg.contains("unknown setting `limit_adress`") && msg.contains("limit_address"),
        "{msg}"
    );

    let mut c = rekeyd(dir.path(), None, &[]);
    c.env("REKEY_SMTP_URL", "smtp+plain://mail.example.com")
        .args(["config", "check"]);
    let msg = text(&run(c, ""));
    assert!(msg.contains("unencrypted") && msg.contains("smtp_allow_plain"), "{msg}");

    let mut c = rekeyd(dir.path(), None, &[]);
    c.env("REKEY_SMTP_URL", "smtps://me:topsecret@mail.example.com")
        .args(["config", "check"]);
    let out = ok(c, "");
    assert!(
        out.contains("mail.example.com:465") && !out.contains("topsecret"),
        "{out}"
    );
}

#[test]
fn mail_test_and_key_rotation() {
    let smtp = SmtpCapture::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let t = rekeyd(d, Some(&smtp), &["mail", "test", "ops@example.com"]);
    assert!(ok(t, "").contains("Test mail delivered"));
    let m = smtp.wait_for_messages(1, Duration::from_secs(10)).remove(0);
    assert_eq!(m.header("Subject"), Some("Rekey test message"));

    let add = rekeyd(d, Some(&smtp), &["users", "add", "rot@example.com"]);
    ok(add, "a long enough passphrase\n");
    let req = rekeyd(d, Some(&smtp), &["reset", "request", "rot@example.com"]);
    ok(req, "");
    let mail = smtp.wait_for_messages(2, Duration::from_secs(10)).remove(1);
    let t = mail.text.as_deref().unwrap();
    let token = t[t.find("token=").unwrap() + 6..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let rot = rekeyd(d, None, &["keys", "rotate"]);
    assert!(ok(rot, "").contains("New signing key"));
    // The link sent before the rotation still works.
    let confirm = rekeyd(d, Some(&smtp), &["reset", "confirm", "--token", &token]);
    ok(confirm, "rotated keys keep old links\n");

    let mut down = rekeyd(d, None, &[]);
    down.env(
        "REKEY_SMTP_URL",
        format!("smtp+plain://127.0.0.1:{}", rekey_testkit::free_port()),
    );
    down.args(["mail", "test", "ops@example.com"]);
    let o = run(down, "");
    assert!(
        !o.status.success() && text(&o).contains("could not reach the mail server"),
        "{}",
        text(&o)
    );
}

#[test]
fn dead_letters_are_listed_retried_and_purged() {
    let smtp = SmtpCapture::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cmd = |args: &[&str]| rekeyd(d, Some(&smtp), args);
    ok(cmd(&["users", "add", "dl@example.com"]), "a long enough passphrase\n");
    smtp.set_fault(rekey_testkit::Fault::Reject(550, "5.1.1 mailbox unavailable".into()));
    let out = ok(cmd(&["reset", "request", "dl@example.com"]), "");
    assert!(!out.contains("Delivered"), "{out}");
    let list = ok(cmd(&["outbox", "list"]), "");
    assert!(
        list.contains("dead") && list.contains("dl@example.com") && list.contains("550"),
        "{list}"
    );
    let status = ok(cmd(&["outbox", "status"]), "");
    assert!(
        status.contains("Dead letters: 1") && status.contains("refused the message for good"),
        "{status}"
    );

    smtp.set_fault(rekey_testkit::Fault::Accept);
    assert!(ok(cmd(&["outbox", "retry"]), "").contains("1 mail(s) queued"));
    assert!(ok(cmd(&["outbox", "deliver"]), "").contains("Delivered 1"));
    smtp.wait_for_messages(1, Duration::from_secs(10));

    smtp.set_fault(rekey_testkit::Fault::Reject(550, "5.1.1 mailbox unavailable".into()));
    ok(cmd(&["reset", "request", "dl@example.com"]), "");
    assert!(ok(cmd(&["outbox", "purge-dead"]), "").contains("Deleted 1 dead letter"));
    assert!(ok(cmd(&["outbox", "list"]), "").contains("The outbox is empty"));
}

#[test]
fn users_are_listed_and_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cmd = |args: &[&str]| rekeyd(d, None, args);
    ok(cmd(&["users", "add", "one@example.com"]), "a long enough passphrase\n");
    let o = run(cmd(&["users", "add", "two@example.com"]), "short\n");
    assert!(
        !o.status.success() && text(&o).contains("at least 15 characters"),
        "{}",
        text(&o)
    );
    let o = run(cmd(&["users", "add", "not-an-address"]), "a long enough passphrase\n");
    assert!(
        !o.status.success() && text(&o).contains("name@example.com"),
        "{}",
        text(&o)
    );
    assert!(ok(cmd(&["users", "disable", "ONE@example.com"]), "").contains("Disabled one@example.com"));
    let users: serde_json::Value = serde_json::from_str(&ok(cmd(&["users", "list", "--json"]), "")).unwrap();
    assert_eq!(users.as_array().unwrap().len(), 1);
    assert_eq!(users[0]["disabled"], true);
    let o = run(cmd(&["users", "disable", "ghost@example.com"]), "");
    assert!(
        !o.status.success() && text(&o).contains("no account for ghost@example.com"),
        "{}",
        text(&o)
    );
}

#[test]
fn a_refused_login_holds_the_whole_queue_and_the_status_says_until_when() {
    let smtp = SmtpCapture::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cmd = |args: &[&str]| rekeyd(d, Some(&smtp), args);
    for who in ["h1@example.com", "h2@example.com"] {
        ok(cmd(&["users", "add", who]), "a long enough passphrase\n");
    }
    smtp.set_fault(rekey_testkit::Fault::AuthFail);
    ok(cmd(&["reset", "request", "h1@example.com"]), "");
    ok(cmd(&["reset", "request", "h2@example.com"]), "");
    let status = ok(cmd(&["outbox", "status"]), "");
    assert!(
        status.contains("Waiting: 2")
            && status.contains("refused Rekey's login")
            && status.contains("The mail server is tried again in"),
        "{status}"
    );
    // Both mails wait for the server, so neither says "next in 0 s".
    let list = ok(cmd(&["outbox", "list"]), "");
    assert_eq!(list.matches("waiting").count(), 2, "{list}");
    assert!(!list.contains("next in 0 s"), "{list}");
}
