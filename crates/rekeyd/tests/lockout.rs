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
