//! SMTP faults, with the real capture server driven into each (implicit TLS, AUTH, the test
//! CA) and a queue of several reset mails, so "nothing lost" and "no retry storm" mean
//! something: connection refused, 421 at the banner and to RCPT, 451, 550, a silent server,
//! an untrusted certificate, a refused login. While the fault lasts the status names it in
//! words; once it is lifted every address gets its one mail and its link works.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use rekey_core::outbox::OutboxStatus;
use rekey_core::service::ResetProof;
use rekey_core::{ManualClock, Rekey};
use rekey_testkit::{Fault, SmtpCapture};

/// Rekey on `dir`, mailing through the capture server's implicit-TLS port with the test CA.
fn open_implicit(dir: &std::path::Path, smtp: &SmtpCapture, extra: &[(&str, &str)]) -> (Arc<Rekey>, ManualClock) {
    open(config(dir, Some(&smtp.implicit_url()), Some(smtp.ca_pem()), extra))
}

/// `n` registered accounts, each with a reset asked for (not yet looked at by the worker).
async fn ask_for_resets(rekey: &Rekey, name: &str, n: usize) -> Vec<String> {
    let mut people = Vec::new();
    for i in 0..n {
        let email = format!("{name}{i}@example.com");
        rekey.create_account(&email, PASSWORD, None, "test").await.unwrap();
        rekey.request_reset(&email, "test").await.unwrap();
        people.push(email);
    }
    people
}

/// A counter of the capture server's, on the implicit port.
fn stat(smtp: &SmtpCapture, what: &str) -> u64 {
    smtp.stats()[what]["implicit"].as_u64().unwrap_or(0)
}

async fn status(rekey: &Rekey) -> OutboxStatus {
    rekey.outbox().status().await.unwrap()
}

/// The problem the status names, in words.
async fn last_error(rekey: &Rekey) -> String {
    status(rekey).await.last_error.expect("the status says what went wrong")
}

/// Moves the clock to the moment the held queue may try the server again.
async fn wait_out_the_hold(rekey: &Rekey, clock: &ManualClock) {
    let at = status(rekey)
        .await
        .server_retry_at
        .expect("the queue waits for the server");
    clock.advance(at - rekey.now());
}

/// Nothing lost: the queue is empty, nothing is dead, the status is clear, every address got
/// exactly one reset mail, and every link in them works.
async fn assert_everyone_got_a_working_link(rekey: &Rekey, smtp: &SmtpCapture, people: &[String]) {
    let s = status(rekey).await;
    assert_eq!((s.depth, s.dead, s.last_error, s.server_retry_at), (0, 0, None, None));
    for email in people {
        let mails = mails_to(smtp, email, RESET_SUBJECT, 1);
        assert_eq!(mails.len(), 1, "{email} got one mail, not {}", mails.len());
        rekey
            .confirm_reset(ResetProof::Token(mails[0].reset_token()), NEW_PASSWORD, "test")
            .await
            .unwrap_or_else(|e| panic!("{email}'s link works: {e:?}"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn connection_refused_holds_the_queue_then_everything_arrives() {
    let mut smtp = SmtpCapture::start();
    smtp.stop();
    let dir = tempfile::tempdir().unwrap();
    let (rekey, _) = open_implicit(dir.path(), &smtp, &[]);
    let people = ask_for_resets(&rekey, "ann", 8).await;
    let report = rekey.drain().await.unwrap();
    assert_eq!((report.sent, report.deferred, report.rejected), (0, 8, 0));
    let s = status(&rekey).await;
    assert_eq!(
        (s.depth, s.dead, s.failures),
        (8, 0, 1),
        "one failure for the queue, not one per mail"
    );
    assert!(s.server_retry_at.is_some_and(|at| at > rekey.now()), "{s:?}");
    let why = last_error(&rekey).await;
    assert!(why.contains("could not reach the mail server"), "{why}");
    assert!(!why.contains("s3cret"), "no password in the status: {why}");
    // The shared backoff lives on disk: a restart does not bring a storm either.
    drop(rekey);
    let (rekey, clock) = open_implicit(dir.path(), &smtp, &[]);
    assert!(
        status(&rekey).await.server_retry_at.is_some(),
        "the hold survived a restart"
    );

    smtp.restart();
    assert_eq!(rekey.drain().await.unwrap().sent, 0, "not before the backoff ends");
    assert_eq!(stat(&smtp, "connections"), 0);
    wait_out_the_hold(&rekey, &clock).await;
    assert_eq!(rekey.drain().await.unwrap().sent, 8);
    assert_everyone_got_a_working_link(&rekey, &smtp, &people).await;
    assert_eq!(status(&rekey).await.delivered, 8);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_421_at_the_banner_holds_the_queue_then_everything_arrives() {
    let smtp = SmtpCapture::start();
    smtp.set_fault(Fault::Greeting(421, "4.3.2 too busy, try later".into()));
    let dir = tempfile::tempdir().unwrap();
    let (rekey, clock) = open_implicit(dir.path(), &smtp, &[]);
    let people = ask_for_resets(&rekey, "bea", 8).await;
    assert_eq!(rekey.drain().await.unwrap().deferred, 8);
    assert_eq!(stat(&smtp, "connections"), 1, "one connection for the whole queue");
    let why = last_error(&rekey).await;
    assert!(why.contains("421") && why.contains("try again later"), "{why}");
    assert_eq!((status(&rekey).await.depth, status(&rekey).await.dead), (8, 0));

    smtp.set_fault(Fault::Accept);
    wait_out_the_hold(&rekey, &clock).await;
    assert_eq!(rekey.drain().await.unwrap().sent, 8);
    assert_everyone_got_a_working_link(&rekey, &smtp, &people).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_421_to_rcpt_stops_the_pass_then_everything_arrives() {
    let smtp = SmtpCapture::start();
    smtp.set_fault(Fault::Reject(421, "4.3.2 service shutting down".into()));
    let dir = tempfile::tempdir().unwrap();
    let (rekey, clock) = open_implicit(dir.path(), &smtp, &[("smtp_pool_size", "2")]);
    let people = ask_for_resets(&rekey, "cal", 12).await;
    let report = rekey.drain().await.unwrap();
    assert_eq!((report.sent, report.deferred, report.rejected), (0, 12, 0));
    // 421 means the whole session: no new send starts once one has seen it (at most the
    // two already in flight with a pool of two).
    let refused = stat(&smtp, "rejected");
    assert!((1..=2).contains(&refused), "{refused} RCPTs refused, not one per mail");
    let why = last_error(&rekey).await;
    assert!(why.contains("421") && why.contains("try again later"), "{why}");
    assert_eq!(status(&rekey).await.dead, 0);

    smtp.set_fault(Fault::Accept);
    wait_out_the_hold(&rekey, &clock).await;
    assert_eq!(rekey.drain().await.unwrap().sent, 12);
    assert_everyone_got_a_working_link(&rekey, &smtp, &people).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_451_puts_each_mail_off_then_everything_arrives() {
    let smtp = SmtpCapture::start();
    smtp.set_fault(Fault::Reject(451, "4.3.0 mailbox busy, try later".into()));
    let dir = tempfile::tempdir().unwrap();
    let (rekey, clock) = open_implicit(dir.path(), &smtp, &[]);
    let people = ask_for_resets(&rekey, "dee", 8).await;
    let report = rekey.drain().await.unwrap();
    assert_eq!((report.sent, report.deferred, report.rejected), (0, 8, 0));
    let why = last_error(&rekey).await;
    assert!(why.contains("451") && why.contains("try again later"), "{why}");
    // A 451 is about a message, not the server: each mail keeps its own count and backoff.
    let s = status(&rekey).await;
    assert_eq!((s.depth, s.dead, s.server_retry_at), (8, 0, None));
    for item in rekey.outbox().list().await.unwrap() {
        assert_eq!(item.attempts, 1);
        assert!(item.next_attempt_at > rekey.now());
        assert!(item.last_error.as_deref().is_some_and(|e| e.contains("451")));
    }
    assert_eq!(rekey.drain().await.unwrap().sent, 0, "not before the backoff ends");

    smtp.set_fault(Fault::Accept);
    clock.advance(11);
    assert_eq!(rekey.drain().await.unwrap().sent, 8);
    assert_everyone_got_a_working_link(&rekey, &smtp, &people).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_550_dead_letters_that_mail_and_the_others_go_out() {
    let smtp = SmtpCapture::start();
    let dir = tempfile::tempdir().unwrap();
    let (rekey, _) = open_implicit(dir.path(), &smtp, &[]);
    let people = ask_for_resets(&rekey, "eve", 8).await;
    let gone = people[3].clone();
    smtp.set_fault(Fault::RejectRecipient(
        gone.clone(),
        550,
        "5.1.1 no such mailbox".into(),
    ));
    let report = rekey.drain().await.unwrap();
    assert_eq!((report.sent, report.deferred, report.rejected), (7, 0, 1));
    let dead = rekey.outbox().dead().await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].item.to, gone);
    let why = &dead[0].reason;
    assert!(
        why.contains("550") && why.contains("refused the message for good"),
        "{why}"
    );
    let s = status(&rekey).await;
    assert_eq!((s.depth, s.dead, s.delivered, s.failures), (0, 1, 7, 1));
    assert!(smtp.messages().iter().all(|m| m.rcpt_to != [gone.clone()]));
    let audit = rekey_core::audit::tail(rekey.sled().unwrap(), 50).unwrap();
    assert!(
        audit.iter().any(|e| e.kind == "mail_dead" && e.detail.contains("550")),
        "{audit:?}"
    );

    // An admin sends it again once the mailbox exists: nothing was lost.
    smtp.set_fault(Fault::Accept);
    assert_eq!(rekey.retry_dead(None).await.unwrap(), 1);
    assert_eq!(rekey.drain().await.unwrap().sent, 1);
    assert_everyone_got_a_working_link(&rekey, &smtp, &people).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_server_costs_one_timeout_per_pass_then_everything_arrives() {
    let smtp = SmtpCapture::start();
    smtp.set_fault(Fault::Silent);
    let dir = tempfile::tempdir().unwrap();
    let (rekey, clock) = open_implicit(dir.path(), &smtp, &[("smtp_timeout", "2s")]);
    let people = ask_for_resets(&rekey, "fay", 8).await;
    let started = Instant::now();
    assert_eq!(rekey.drain().await.unwrap().deferred, 8);
    let took = started.elapsed();
    // One connection waits out the 2 s limit; eight mails do not wait in turn.
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert_eq!(stat(&smtp, "connections"), 1);
    let why = last_error(&rekey).await;
    assert!(why.contains("did not answer"), "{why}");
    assert_eq!((status(&rekey).await.depth, status(&rekey).await.dead), (8, 0));

    smtp.set_fault(Fault::Accept);
    wait_out_the_hold(&rekey, &clock).await;
    assert_eq!(rekey.drain().await.unwrap().sent, 8);
    assert_everyone_got_a_working_link(&rekey, &smtp, &people).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_untrusted_certificate_keeps_the_mail_and_names_the_ca_setting() {
    let smtp = SmtpCapture::start();
    let dir = tempfile::tempdir().unwrap();
    let untrusted = config(
        dir.path(),
        Some(&smtp.implicit_url()),
        Some(smtp.untrusted_ca_pem()),
        &[],
    );
    let (rekey, clock) = open(untrusted);
    let people = ask_for_resets(&rekey, "gil", 8).await;
    assert_eq!(rekey.drain().await.unwrap().deferred, 8);
    let why = last_error(&rekey).await;
    assert!(
        why.contains("secure connection") && why.contains("REKEY_SMTP_CA_FILE"),
        "{why}"
    );
    let s = status(&rekey).await;
    assert_eq!((s.depth, s.dead, s.failures), (8, 0, 1));
    // A second pass while held tries nothing; one after the backoff tries once more.
    assert_eq!(rekey.drain().await.unwrap().deferred, 0);
    wait_out_the_hold(&rekey, &clock).await;
    assert_eq!(rekey.drain().await.unwrap().deferred, 8);
    assert_eq!(status(&rekey).await.failures, 2);
    assert!(smtp.messages().is_empty());
    drop(rekey);

    // The admin sets the right CA file: the kept mail goes out.
    let (rekey, clock) = open_implicit(dir.path(), &smtp, &[]);
    clock.advance(60);
    assert_eq!(rekey.drain().await.unwrap().sent, 8);
    assert_everyone_got_a_working_link(&rekey, &smtp, &people).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_login_is_one_attempt_per_pass_not_a_storm() {
    let smtp = SmtpCapture::start();
    smtp.set_fault(Fault::AuthFail);
    let dir = tempfile::tempdir().unwrap();
    let (rekey, clock) = open_implicit(dir.path(), &smtp, &[]);
    let people = ask_for_resets(&rekey, "hu", 12).await;
    let mut waits = Vec::new();
    for pass in 1..=5u64 {
        assert_eq!(rekey.drain().await.unwrap().deferred, 12, "pass {pass}");
        assert_eq!(
            stat(&smtp, "auth_failures"),
            pass,
            "one login per pass, not one per mail"
        );
        assert_eq!(stat(&smtp, "connections"), pass);
        let s = status(&rekey).await;
        assert_eq!((s.depth, s.dead, s.failures), (12, 0, pass));
        assert!(
            s.last_error.as_deref().unwrap().contains("refused Rekey's login"),
            "{s:?}"
        );
        // Passes while held (the worker wakes for new mail, say) try nothing.
        assert_eq!(rekey.drain().await.unwrap().deferred, 0);
        assert_eq!(stat(&smtp, "auth_failures"), pass);
        waits.push(s.server_retry_at.unwrap() - rekey.now());
        wait_out_the_hold(&rekey, &clock).await;
    }
    // Backed off: every wait at least as long as the one before, and growing.
    assert!(waits.windows(2).all(|w| w[1] >= w[0]), "{waits:?}");
    assert!(waits[4] >= 80, "{waits:?}");
    assert_eq!(smtp.stats()["messages"]["implicit"], 0);

    smtp.set_fault(Fault::Accept);
    assert_eq!(rekey.drain().await.unwrap().sent, 12);
    assert_everyone_got_a_working_link(&rekey, &smtp, &people).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn over_starttls_too_a_bad_certificate_or_login_keeps_the_mail_and_says_why() {
    let smtp = SmtpCapture::start();
    let dir = tempfile::tempdir().unwrap();
    let (rekey, _) = open(config(
        dir.path(),
        Some(&smtp.starttls_url()),
        Some(smtp.untrusted_ca_pem()),
        &[],
    ));
    let people = ask_for_resets(&rekey, "ivy", 3).await;
    assert_eq!(rekey.drain().await.unwrap().deferred, 3);
    let why = last_error(&rekey).await;
    assert!(
        why.contains("secure connection") && why.contains("REKEY_SMTP_CA_FILE"),
        "{why}"
    );
    drop(rekey);

    smtp.set_fault(Fault::AuthFail);
    let (rekey, clock) = open_with_smtp(dir.path(), &smtp, &[]);
    clock.advance(60);
    assert_eq!(rekey.drain().await.unwrap().deferred, 3);
    assert_eq!(smtp.stats()["auth_failures"]["starttls"], 1);
    let why = last_error(&rekey).await;
    assert!(
        why.contains("refused Rekey's login") && why.contains("REKEY_SMTP_URL"),
        "{why}"
    );
    assert!(!why.contains(smtp.password()), "{why}");
    let s = status(&rekey).await;
    assert_eq!((s.depth, s.dead), (3, 0), "a login problem is not the messages' fault");

    smtp.set_fault(Fault::Accept);
    wait_out_the_hold(&rekey, &clock).await;
    assert_eq!(rekey.drain().await.unwrap().sent, 3);
    assert_everyone_got_a_working_link(&rekey, &smtp, &people).await;
}
