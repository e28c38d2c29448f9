//! A stranger can slow himself but cannot lock an owner out, tried against the real
//! `rekeyd serve` behind a trusted proxy, so each request can come from a client of its choice.

mod common;

use common::server::{Server, Setup};
use rekey_testkit::SmtpCapture;
use reqwest::blocking::Client;
use serde_json::{json, Value};

const PASSWORD: &str = "quiet river under the old mill";

fn start(setup: Setup) -> (tempfile::TempDir, SmtpCapture, Server) {
    let smtp = SmtpCapture::start();
    let dir = tempfile::tempdir().unwrap();
    let setup = setup.with("REKEY_TRUSTED_PROXIES", "127.0.0.1");
    let server = Server::start(&dir.path().join("data"), Some(&smtp), setup);
    (dir, smtp, server)
}

/// A request "from" `client` (the proxy's `X-Forwarded-For`).
fn post_from(server: &Server, client: &str, path: &str, body: Value) -> (u16, Value) {
    let r = Client::new()
        .post(server.url(path))
        .header("X-Forwarded-For", client)
        .json(&body)
        .send()
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

fn sign_in(server: &Server, client: &str, email: &str, password: &str) -> (u16, Option<String>) {
    let (status, body) = post_from(
        server,
        client,
        "/sessions",
        json!({"email": email, "password": password}),
    );
    (status, body["code"].as_str().map(str::to_string))
}

#[test]
fn a_stranger_flooding_wrong_passwords_is_held_and_the_owner_signs_in_at_once() {
    let (_dir, smtp, server) = start(Setup::default());
    server.create_account(&smtp, "owner@example.com", PASSWORD);
    let stranger = "203.0.113.66";
    let mut held_after = None;
    for n in 1..=30 {
        match sign_in(&server, stranger, "owner@example.com", "guess number one two three") {
            (401, _) => {}
            (429, Some(code)) if code == "rate_limited" => {
                held_after = Some(n);
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    let held_after = held_after.expect("the stranger was never held");
    assert!(held_after <= 11, "held only after {held_after} tries");
    // The owner, from her own machine, gets in at once...
    assert_eq!(sign_in(&server, "198.51.100.10", "owner@example.com", PASSWORD).0, 200);
    // ...and again, and again: successes are not failures.
    for _ in 0..12 {
        assert_eq!(sign_in(&server, "198.51.100.10", "owner@example.com", PASSWORD).0, 200);
    }
    // The stranger is still held, even with the right password: being held is not an oracle.
    assert_eq!(sign_in(&server, stranger, "owner@example.com", PASSWORD).0, 429);
}

#[test]
fn many_strangers_reach_the_account_ceiling_but_the_owners_own_machine_still_gets_in() {
    let setup = Setup::default()
        .with("REKEY_LIMIT_SIGNIN_CLIENT", "4/15m")
        .with("REKEY_LIMIT_SIGNIN_ACCOUNT", "12/15m");
    let (_dir, smtp, server) = start(setup);
    server.create_account(&smtp, "owner@example.com", PASSWORD);
    let owner = "198.51.100.10";
    assert_eq!(sign_in(&server, owner, "owner@example.com", PASSWORD).0, 200);
    // Ten strangers, four guesses each: forty failures against a ceiling of twelve.
    let mut held = 0;
    for s in 0..10 {
        for _ in 0..4 {
            let (status, _) = sign_in(
                &server,
                &format!("203.0.113.{s}"),
                "owner@example.com",
                "a wrong guess here",
            );
            held += usize::from(status == 429);
        }
    }
    assert!(held >= 25, "the ceiling held back only {held} of 40 guesses");
    // The owner's machine signed in before, so the ceiling does not hold it.
    assert_eq!(sign_in(&server, owner, "owner@example.com", PASSWORD).0, 200);
    // A machine the account has never seen waits for the ceiling like everyone else.
    assert_eq!(sign_in(&server, "198.51.100.99", "owner@example.com", PASSWORD).0, 429);
    // An unknown address is counted the same way: the ceiling says nothing about accounts.
    let mut unknown_held = 0;
    for s in 0..10 {
        for _ in 0..4 {
            let (status, _) = sign_in(
                &server,
                &format!("192.0.2.{s}"),
                "nobody@example.com",
                "a wrong guess here",
            );
            unknown_held += usize::from(status == 429);
        }
    }
    assert_eq!(unknown_held, held);
}

/// The owner's reset mail: asks for it and waits for it to arrive.
fn reset_mail(server: &Server, smtp: &SmtpCapture, email: &str) -> rekey_testkit::CapturedMail {
    let is_reset = |m: &rekey_testkit::CapturedMail| {
        m.rcpt_to.iter().any(|r| r == email) && m.header("Subject").is_some_and(|s| s.starts_with("Reset"))
    };
    let before = smtp.messages().iter().filter(|m| is_reset(m)).count();
    assert_eq!(
        post_from(
            server,
            "198.51.100.10",
            "/users/password/forgot",
            json!({ "email": email })
        )
        .0,
        202
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let resets: Vec<_> = smtp.messages().into_iter().filter(is_reset).collect();
        if resets.len() > before {
            return resets.into_iter().last().unwrap();
        }
        assert!(std::time::Instant::now() < deadline, "no reset mail for {email}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn by_code(server: &Server, client: &str, email: &str, code: &str) -> (u16, Value) {
    post_from(
        server,
        client,
        "/users/password/reset",
        json!({"email": email, "code": code, "new_password": "lanterns drift past the harbour wall"}),
    )
}

#[test]
fn wrong_codes_retire_the_code_never_the_link_and_every_refusal_reads_the_same() {
    let (_dir, smtp, server) = start(Setup::default());
    server.create_account(&smtp, "owner@example.com", PASSWORD);
    server.create_account(&smtp, "quiet@example.com", PASSWORD); // an account with no reset
    let mail = reset_mail(&server, &smtp, "owner@example.com");
    let right = mail.reset_code();
    let wrong = if right == "AAAA-AAAA" { "BBBB-BBBB" } else { "AAAA-AAAA" };
    // Five strangers, one wrong code each.
    let mut refusals = Vec::new();
    for s in 0..5 {
        refusals.push(by_code(&server, &format!("203.0.113.{s}"), "owner@example.com", wrong));
    }
    // The right code, now retired; an unknown address; an account without a reset.
    refusals.push(by_code(&server, "203.0.113.9", "owner@example.com", &right));
    refusals.push(by_code(&server, "203.0.113.9", "nobody@example.com", &right));
    refusals.push(by_code(&server, "203.0.113.9", "quiet@example.com", &right));
    for refusal in &refusals {
        assert_eq!(refusal, &refusals[0], "refusals differ");
    }
    assert_eq!(refusals[0].0, 400);
    assert_eq!(refusals[0].1["code"], "code_invalid");
    // The link in the same mail still says whose it is, and still resets.
    let (status, target) = post_from(
        &server,
        "198.51.100.10",
        "/users/password/inspect",
        json!({"token": mail.reset_token()}),
    );
    assert_eq!((status, target["email"].as_str()), (200, Some("owner@example.com")));
    let (status, body) = post_from(
        &server,
        "198.51.100.10",
        "/users/password/reset",
        json!({"token": mail.reset_token(), "new_password": "lanterns drift past the harbour wall"}),
    );
    assert_eq!(status, 204, "{body}");
    // A new reset brings a code that works, whatever strangers typed before.
    let mail = reset_mail(&server, &smtp, "owner@example.com");
    assert_eq!(
        by_code(&server, "198.51.100.10", "owner@example.com", &mail.reset_code()).0,
        204
    );
}

#[test]
fn code_attempts_are_limited_per_client_and_per_address() {
    let setup = Setup::default()
        .with("REKEY_LIMIT_CODE_CLIENT", "3/1h")
        .with("REKEY_LIMIT_CODE_ADDRESS", "6/1h");
    let (_dir, smtp, server) = start(setup);
    server.create_account(&smtp, "owner@example.com", PASSWORD);
    let mail = reset_mail(&server, &smtp, "owner@example.com");
    // One client: three tries, whatever the addresses, then it waits.
    for email in ["a@example.com", "b@example.com", "c@example.com"] {
        assert_eq!(by_code(&server, "203.0.113.1", email, "AAAA-AAAA").0, 400);
    }
    let (status, body) = by_code(&server, "203.0.113.1", "d@example.com", "AAAA-AAAA");
    assert_eq!((status, body["code"].as_str()), (429, Some("rate_limited")));
    // One address: six tries from any clients, then it waits, known or not.
    for email in ["owner@example.com", "nobody@example.com"] {
        for s in 0..6 {
            assert_eq!(by_code(&server, &format!("192.0.2.{s}"), email, "AAAA-AAAA").0, 400);
        }
        assert_eq!(by_code(&server, "192.0.2.99", email, "AAAA-AAAA").0, 429);
    }
    // The owner still has the link.
    let (status, _) = post_from(
        &server,
        "198.51.100.10",
        "/users/password/reset",
        json!({"token": mail.reset_token(), "new_password": "lanterns drift past the harbour wall"}),
    );
    assert_eq!(status, 204);
}
