//! Nothing is lost: SMTP down, refusing or silent; the process stopped mid-way; limits that
//! survive a restart; a second opener told who holds the data.

mod common;

use std::time::Duration;

use common::*;
use rekey_core::{Error, Rekey};
use rekey_testkit::{free_port, Fault, SmtpCapture};

#[tokio::test(flavor = "multi_thread")]
async fn smtp_down_at_request_time_then_up_later() {
    let mut smtp = SmtpCapture::start();
    smtp.stop();
    let dir = tempfile::tempdir().unwrap();
    let (rekey, clock) = open_with_smtp(dir.path(), &smtp, &[]);
    rekey.register("ann@example.com", PASSWORD, "test").await.unwrap();
    rekey.request_reset("ann@example.com", "test").await.unwrap();
    let report = rekey.drain().await.unwrap();
    assert_eq!((report.sent, report.deferred), (0, 1));
    let status = rekey.outbox().status().unwrap();
    assert_eq!(status.depth, 1);
    let why = status.last_error.expect("the status says what went wrong");
    assert!(why.contains("could not reach the mail server"), "{why}");
    let item = &rekey.outbox().list().unwrap()[0];
    assert_eq!(item.attempts, 1);
    assert!(item.next_attempt_at > clock_now(&rekey));

    smtp.restart();
    // Not due yet: backoff holds it back.
    assert_eq!(rekey.drain().await.unwrap().sent, 0);
    clock.advance(11);
    assert_eq!(rekey.drain().await.unwrap().sent, 1);
    mails_to(&smtp, "ann@example.com", RESET_SUBJECT, 1);
    let status = rekey.outbox().status().unwrap();
    assert_eq!((status.depth, status.last_error, status.delivered), (0, None, 1));
}

fn clock_now(rekey: &Rekey) -> i64 {
    rekey.now()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_survives_the_process_stopping_before_delivery() {
    let smtp = SmtpCapture::start();
    let dir = tempfile::tempdir().unwrap();
    {
        let (rekey, _) = open_with_smtp(dir.path(), &smtp, &[]);
        rekey.register("bea@example.com", PASSWORD, "test").await.unwrap();
        rekey.request_reset("bea@example.com", "test").await.unwrap();
        // Stopped right after answering: no worker ran.
    }
    assert!(smtp.messages().is_empty());
    let (rekey, _) = open_with_smtp(dir.path(), &smtp, &[]);
    rekey.drain().await.unwrap();
    let mail = &mails_to(&smtp, "bea@example.com", RESET_SUBJECT, 1)[0];
    rekey
        .confirm_reset(
            rekey_core::service::ResetProof::Token(mail.reset_token()),
            NEW_PASSWORD,
            "test",
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn queued_mail_survives_a_restart() {
    let mut smtp = SmtpCapture::start();
    smtp.stop();
    let dir = tempfile::tempdir().unwrap();
    {
        let (rekey, _) = open_with_smtp(dir.path(), &smtp, &[]);
        rekey.register("cal@example.com", PASSWORD, "test").await.unwrap();
        rekey.request_reset("cal@example.com", "test").await.unwrap();
        rekey.drain().await.unwrap(); // minted and queued; delivery failed
        assert_eq!(rekey.outbox().status().unwrap().depth, 1);
    }
    smtp.restart();
    let (rekey, clock) = open_with_smtp(dir.path(), &smtp, &[]);
    clock.advance(60);
    assert_eq!(rekey.drain().await.unwrap().sent, 1);
    mails_to(&smtp, "cal@example.com", RESET_SUBJECT, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_hold_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let limits = [("limit_address", "3/15m"), ("limit_client", "8/1h")];
    let cfg = || config(dir.path(), None, None, &limits);
    {
        let (rekey, _) = open(cfg());
        for _ in 0..3 {
            rekey.request_reset("dee@example.com", "laptop").await.unwrap();
        }
        let err = rekey.request_reset("dee@example.com", "laptop").await.unwrap_err();
        assert_eq!(err, Error::RateLimited { retry_after: 300 });
        assert_eq!(err.code(), "rate_limited");
    }
    let (rekey, clock) = open(cfg());
    // Same limit for an address with no account: the refusal says nothing about accounts.
    let err = rekey.request_reset("dee@example.com", "laptop").await.unwrap_err();
    assert!(matches!(err, Error::RateLimited { retry_after } if retry_after > 0 && retry_after <= 300));
    // The per-client limit (8/1h) counts every attempt, refused ones too: 5 so far,
    // 3 more pass on other addresses, then the client is refused whatever the address.
    for i in 1..=3 {
        let email = format!("x{i}@example.com");
        rekey.request_reset(&email, "laptop").await.unwrap();
    }
    let refused = rekey.request_reset("x4@example.com", "laptop").await;
    assert!(matches!(refused, Err(Error::RateLimited { .. })));
    let other = rekey.request_reset("x4@example.com", "other-client").await;
    assert!(other.is_ok());
    clock.advance(300);
    rekey.request_reset("dee@example.com", "other-client").await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_is_rate_limited_and_failures_look_alike() {
    let dir = tempfile::tempdir().unwrap();
    let (rekey, _) = open(config(dir.path(), None, None, &[("limit_signin_account", "3/15m")]));
    rekey.register("eve@example.com", PASSWORD, "test").await.unwrap();
    let wrong = rekey
        .sign_in("eve@example.com", "not the password at all", "c")
        .await
        .unwrap_err();
    let unknown = rekey
        .sign_in("nobody@example.com", "not the password at all", "c")
        .await
        .unwrap_err();
    assert_eq!(wrong, unknown);
    assert_eq!(wrong.message(), unknown.message());
    rekey
        .sign_in("eve@example.com", "not the password at all", "c")
        .await
        .unwrap_err();
    rekey.sign_in("eve@example.com", PASSWORD, "c").await.unwrap();
    assert!(matches!(
        rekey.sign_in("eve@example.com", PASSWORD, "c").await,
        Err(Error::RateLimited { .. })
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_opener_is_told_who_holds_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let (_rekey, _) = open(config(dir.path(), None, None, &[]));
    let err = Rekey::open(config(dir.path(), None, None, &[]), "rekeyd users list")
        .err()
        .unwrap();
    assert_eq!(err.code(), "data_locked");
    let msg = err.message();
    assert!(
        msg.contains("in use by a test") && msg.contains(&std::process::id().to_string()),
        "{msg}"
    );
    assert!(msg.contains("stop that process"), "{msg}");
}

#[tokio::test(flavor = "multi_thread")]
async fn temporary_refusals_are_retried_then_delivered() {
    let smtp = SmtpCapture::start();
    smtp.set_fault(Fault::Reject(451, "4.3.0 mailbox busy, try later".into()));
    let dir = tempfile::tempdir().unwrap();
    let (rekey, clock) = open_with_smtp(dir.path(), &smtp, &[]);
    rekey.register("fay@example.com", PASSWORD, "test").await.unwrap();
    rekey.request_reset("fay@example.com", "test").await.unwrap();
    assert_eq!(rekey.drain().await.unwrap().deferred, 1);
    let why = rekey.outbox().status().unwrap().last_error.unwrap();
    assert!(why.contains("451") && why.contains("try again later"), "{why}");
    smtp.set_fault(Fault::Accept);
    clock.advance(11);
    assert_eq!(rekey.drain().await.unwrap().sent, 1);
    mails_to(&smtp, "fay@example.com", RESET_SUBJECT, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn permanent_refusals_are_dead_lettered_with_the_reason() {
    let smtp = SmtpCapture::start();
    smtp.set_fault(Fault::Reject(550, "5.1.1 no such mailbox".into()));
    let dir = tempfile::tempdir().unwrap();
    let (rekey, _) = open_with_smtp(dir.path(), &smtp, &[]);
    rekey.register("gil@example.com", PASSWORD, "test").await.unwrap();
    rekey.request_reset("gil@example.com", "test").await.unwrap();
    assert_eq!(rekey.drain().await.unwrap().rejected, 1);
    let dead = rekey.outbox().dead().unwrap();
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0].reason.contains("550") && dead[0].reason.contains("refused the message for good"),
        "{}",
        dead[0].reason
    );
    assert_eq!(rekey.outbox().status().unwrap().dead, 1);
    // An admin retries it once the mailbox exists.
    smtp.set_fault(Fault::Accept);
    assert_eq!(rekey.outbox().retry_dead(None).unwrap(), 1);
    assert_eq!(rekey.drain().await.unwrap().sent, 1);
    mails_to(&smtp, "gil@example.com", RESET_SUBJECT, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reset_mail_whose_link_expired_is_dropped_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("smtp+plain://127.0.0.1:{}", free_port());
    let (rekey, clock) = open(config(dir.path(), Some(&url), None, &[("reset_ttl", "5m")]));
    rekey.register("hu@example.com", PASSWORD, "test").await.unwrap();
    rekey.request_reset("hu@example.com", "test").await.unwrap();
    assert_eq!(rekey.drain().await.unwrap().deferred, 1);
    clock.advance(6 * 60);
    assert_eq!(rekey.drain().await.unwrap().expired, 1);
    let dead = rekey.outbox().dead().unwrap();
    assert!(dead[0].reason.contains("expired before the mail could be delivered"));
    assert_eq!(
        rekey.outbox().retry_dead(None).unwrap(),
        0,
        "an expired link is not resent"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_server_times_out_and_is_retried() {
    let smtp = SmtpCapture::start();
    smtp.set_fault(Fault::Silent);
    let dir = tempfile::tempdir().unwrap();
    let (rekey, clock) = open_with_smtp(dir.path(), &smtp, &[("smtp_timeout", "2s")]);
    rekey.register("ivy@example.com", PASSWORD, "test").await.unwrap();
    rekey.request_reset("ivy@example.com", "test").await.unwrap();
    let started = std::time::Instant::now();
    assert_eq!(rekey.drain().await.unwrap().deferred, 1);
    assert!(started.elapsed() < Duration::from_secs(20));
    let why = rekey.outbox().status().unwrap().last_error.unwrap();
    assert!(why.contains("did not answer"), "{why}");
    smtp.set_fault(Fault::Accept);
    clock.advance(11);
    assert_eq!(rekey.drain().await.unwrap().sent, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn untrusted_certificate_and_refused_login_keep_the_mail_and_say_why() {
    let smtp = SmtpCapture::start();
    let dir = tempfile::tempdir().unwrap();
    let (rekey, _) = open(config(
        dir.path(),
        Some(&smtp.implicit_url()),
        Some(smtp.untrusted_ca_pem()),
        &[],
    ));
    rekey.register("jo@example.com", PASSWORD, "test").await.unwrap();
    rekey.request_reset("jo@example.com", "test").await.unwrap();
    assert_eq!(rekey.drain().await.unwrap().deferred, 1);
    let why = rekey.outbox().status().unwrap().last_error.unwrap();
    assert!(
        why.contains("secure connection") && why.contains("REKEY_SMTP_CA_FILE"),
        "{why}"
    );
    assert!(smtp.messages().is_empty());
    drop(rekey);

    let dir = tempfile::tempdir().unwrap();
    smtp.set_fault(Fault::AuthFail);
    let (rekey, _) = open_with_smtp(dir.path(), &smtp, &[]);
    rekey.register("jo@example.com", PASSWORD, "test").await.unwrap();
    rekey.request_reset("jo@example.com", "test").await.unwrap();
    assert_eq!(rekey.drain().await.unwrap().deferred, 1);
    let status = rekey.outbox().status().unwrap();
    assert!(status.last_error.unwrap().contains("refused Rekey's login"));
    assert_eq!(
        (status.depth, status.dead),
        (1, 0),
        "a login problem is not the message's fault"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn local_mailbox_when_no_smtp_is_configured() {
    let dir = tempfile::tempdir().unwrap();
    let (rekey, _) = open(config(dir.path(), None, None, &[]));
    rekey.register("kim@example.com", PASSWORD, "test").await.unwrap();
    rekey.request_reset("kim@example.com", "test").await.unwrap();
    assert_eq!(rekey.drain().await.unwrap().sent, 1);
    let files: Vec<_> = std::fs::read_dir(dir.path().join("mailbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    let raw = std::fs::read_to_string(&files[0]).unwrap();
    assert!(raw.contains("Subject: Reset your Rekey password"));
    assert!(rekey.outbox().status().unwrap().destination.contains("local mailbox"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_request_does_not_hold_up_the_others() {
    let scene = Scene::new(&[]);
    scene
        .rekey
        .store()
        .intake
        .insert(0u64.to_be_bytes(), &b"not json"[..])
        .unwrap();
    let mail = scene.reset_mail_for_new_account("quinn@example.com").await;
    assert!(mail.text.unwrap().contains("rekey://reset?token="));
    assert_eq!(
        scene.rekey.store().intake.len(),
        1,
        "the unreadable record stays for a look"
    );
}
