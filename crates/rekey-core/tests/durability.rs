//! Nothing is lost: the process stopped mid-way, mail queued across a restart; limits that
//! survive a restart; a second opener told who holds the data. Each SMTP fault has its own
//! test in `smtp_faults.rs`.

mod common;

use common::*;
use rekey_core::{Error, Rekey};
use rekey_testkit::{free_port, SmtpCapture};

/// An account `email` whose reset request was answered, and a store stopped right after
/// answering: no worker ran.
async fn stop_with_a_reset_waiting(dir: &std::path::Path, smtp: &SmtpCapture, email: &str) {
    let (rekey, _) = open_with_smtp(dir, smtp, &[]);
    rekey.create_account(email, PASSWORD, None, "test").await.unwrap();
    rekey.request_reset(email, "test").await.unwrap();
}

/// Runs the worker, and sets a new password with the link it mailed to `email`.
async fn reset_with_the_mailed_link(rekey: &Rekey, smtp: &SmtpCapture, email: &str) {
    rekey.drain().await.unwrap();
    let mail = &mails_to(smtp, email, RESET_SUBJECT, 1)[0];
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
async fn a_request_survives_the_process_stopping_before_delivery() {
    let smtp = SmtpCapture::start();
    let dir = tempfile::tempdir().unwrap();
    stop_with_a_reset_waiting(dir.path(), &smtp, "bea@example.com").await;
    assert!(smtp.messages().is_empty());
    let (rekey, _) = open_with_smtp(dir.path(), &smtp, &[]);
    reset_with_the_mailed_link(&rekey, &smtp, "bea@example.com").await;
}

/// What sled leaves when the process is killed while it writes a snapshot (it writes one
/// at every open, after replaying its log): `snap.<newer lsn>.generating`, empty if the kill
/// came before the first write, else cut short. sled 0.34 takes that file for the newest
/// snapshot and refuses to open ("empty/corrupt snapshot file found"). The crash harness
/// met it once in a CI run: killed during a restart, rekeyd never started again.
fn leave_an_unfinished_snapshot(db_dir: &std::path::Path, empty: bool) {
    let snapshot = std::fs::read_dir(db_dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().into_string().unwrap())
        .filter(|name| name.starts_with("snap.") && !name.ends_with(".generating"))
        .max()
        .unwrap_or_else(|| panic!("no snapshot in {}", db_dir.display()));
    let lsn = u64::from_str_radix(snapshot.trim_start_matches("snap."), 16).unwrap();
    let bytes = std::fs::read(db_dir.join(&snapshot)).unwrap();
    let written = if empty { 0 } else { bytes.len() / 2 };
    std::fs::write(
        db_dir.join(format!("snap.{:016X}.generating", lsn + 1)),
        &bytes[..written],
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_cut_short_by_a_kill_does_not_keep_the_data_from_opening() {
    let smtp = SmtpCapture::start();
    let dir = tempfile::tempdir().unwrap();
    stop_with_a_reset_waiting(dir.path(), &smtp, "dee@example.com").await;
    // Opened again, so each database has written a snapshot of what it holds.
    drop(open_with_smtp(dir.path(), &smtp, &[]));
    leave_an_unfinished_snapshot(&dir.path().join("db"), false);
    leave_an_unfinished_snapshot(&dir.path().join("intake"), true);
    // Opens, with the account and the waiting request as they were.
    let (rekey, _) = open_with_smtp(dir.path(), &smtp, &[]);
    reset_with_the_mailed_link(&rekey, &smtp, "dee@example.com").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn queued_mail_survives_a_restart() {
    let mut smtp = SmtpCapture::start();
    smtp.stop();
    let dir = tempfile::tempdir().unwrap();
    {
        let (rekey, _) = open_with_smtp(dir.path(), &smtp, &[]);
        rekey
            .create_account("cal@example.com", PASSWORD, None, "test")
            .await
            .unwrap();
        rekey.request_reset("cal@example.com", "test").await.unwrap();
        rekey.drain().await.unwrap(); // minted and queued; delivery failed
        assert_eq!(rekey.outbox().status().await.unwrap().depth, 1);
    }
    smtp.restart();
    let (rekey, clock) = open_with_smtp(dir.path(), &smtp, &[]);
    clock.advance(60);
    assert_eq!(rekey.drain().await.unwrap().sent, 1);
    mails_to(&smtp, "cal@example.com", RESET_SUBJECT, 1);
}

/// Reset mails in the local mailbox addressed to `to`.
fn mailbox_count(dir: &std::path::Path, to: &str) -> usize {
    let Ok(entries) = std::fs::read_dir(dir.join("mailbox")) else {
        return 0;
    };
    entries
        .filter_map(|e| std::fs::read_to_string(e.unwrap().path()).ok())
        .filter(|m| m.contains(&format!("To: {to}")) && m.contains(RESET_SUBJECT))
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_hold_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let limits = [("limit_address", "3/15m"), ("limit_client", "8/1h")];
    let cfg = || config(dir.path(), None, None, &limits);
    {
        let (rekey, _) = open(cfg());
        rekey
            .create_account("dee@example.com", PASSWORD, None, "test")
            .await
            .unwrap();
        // Over the address's limit the answer stays the same; only the mail stops.
        for _ in 0..4 {
            rekey.request_reset("dee@example.com", "laptop").await.unwrap();
        }
        rekey.drain().await.unwrap();
        assert_eq!(mailbox_count(dir.path(), "dee@example.com"), 3);
        let audit = rekey_core::audit::tail(rekey.sled().unwrap(), 10).unwrap();
        assert!(audit.iter().any(|e| e.kind == "reset_rate_limited"), "{audit:?}");
    }
    let (rekey, clock) = open(cfg());
    rekey.request_reset("dee@example.com", "laptop").await.unwrap();
    rekey.drain().await.unwrap();
    assert_eq!(
        mailbox_count(dir.path(), "dee@example.com"),
        3,
        "the limit survived the restart"
    );
    // The per-client limit (8/1h) is told to the caller: 5 so far, 3 more pass, then the
    // client is refused whatever the address, and another client is not.
    for i in 1..=3 {
        rekey
            .request_reset(&format!("x{i}@example.com"), "laptop")
            .await
            .unwrap();
    }
    let err = rekey.request_reset("x4@example.com", "laptop").await.unwrap_err();
    assert!(matches!(err, Error::RateLimited { retry_after } if retry_after > 0 && retry_after <= 450));
    assert_eq!(err.code(), "rate_limited");
    rekey.request_reset("x4@example.com", "other-client").await.unwrap();
    // One interval (5 min) later the address may have one more mail.
    clock.advance(300);
    rekey.request_reset("dee@example.com", "other-client").await.unwrap();
    rekey.drain().await.unwrap();
    assert_eq!(mailbox_count(dir.path(), "dee@example.com"), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_failures_are_limited_alike_and_successes_do_not_count() {
    let dir = tempfile::tempdir().unwrap();
    let (rekey, _) = open(config(dir.path(), None, None, &[("limit_signin_client", "3/15m")]));
    rekey
        .create_account("eve@example.com", PASSWORD, None, "test")
        .await
        .unwrap();
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
    // Successes are not failures: the owner signs in as often as she likes.
    for _ in 0..5 {
        rekey.sign_in("eve@example.com", PASSWORD, "c").await.unwrap();
    }
    // Three failures from one client, known account or not, and that client waits (eve's
    // first failure was cleared by her successes; nobody's was not).
    for (email, more) in [("eve@example.com", 3), ("nobody@example.com", 2)] {
        for _ in 0..more {
            let e = rekey.sign_in(email, "not the password at all", "c").await.unwrap_err();
            assert_eq!(e, Error::BadCredentials);
        }
        assert!(matches!(
            rekey.sign_in(email, "not the password at all", "c").await,
            Err(Error::RateLimited { .. })
        ));
    }
    // Another client is not held.
    rekey
        .sign_in("eve@example.com", PASSWORD, "owner's laptop")
        .await
        .unwrap();
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
async fn a_reset_mail_whose_link_expired_is_dropped_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("smtp+plain://127.0.0.1:{}", free_port());
    let (rekey, clock) = open(config(dir.path(), Some(&url), None, &[("reset_ttl", "5m")]));
    rekey
        .create_account("hu@example.com", PASSWORD, None, "test")
        .await
        .unwrap();
    rekey.request_reset("hu@example.com", "test").await.unwrap();
    assert_eq!(rekey.drain().await.unwrap().deferred, 1);
    clock.advance(6 * 60);
    assert_eq!(rekey.drain().await.unwrap().expired, 1);
    let dead = rekey.outbox().dead().await.unwrap();
    assert!(dead[0].reason.contains("expired before the mail could be delivered"));
    assert_eq!(
        rekey.retry_dead(None).await.unwrap(),
        0,
        "an expired link is not resent"
    );
    // A dead reset mail keeps no message (it held a link), and dead letters go after a week.
    assert!(dead[0].item.sealed.is_none() && dead[0].item.raw.is_none());
    clock.advance(6 * 24 * 3600);
    rekey.prune().await.unwrap();
    assert_eq!(rekey.outbox().dead().await.unwrap().len(), 1);
    clock.advance(2 * 24 * 3600);
    rekey.prune().await.unwrap();
    assert!(rekey.outbox().dead().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn local_mailbox_when_no_smtp_is_configured() {
    let dir = tempfile::tempdir().unwrap();
    let (rekey, _) = open(config(dir.path(), None, None, &[]));
    rekey
        .create_account("kim@example.com", PASSWORD, None, "test")
        .await
        .unwrap();
    rekey.request_reset("kim@example.com", "test").await.unwrap();
    assert_eq!(rekey.drain().await.unwrap().sent, 1);
    let files: Vec<_> = std::fs::read_dir(dir.path().join("mailbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    let raw = std::fs::read_to_string(&files[0]).unwrap();
    assert!(raw.contains("Subject: Reset your Rekey password"));
    assert!(rekey
        .outbox()
        .status()
        .await
        .unwrap()
        .destination
        .contains("local mailbox"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_request_does_not_hold_up_the_others() {
    let scene = Scene::new(&[]);
    scene
        .rekey
        .sled()
        .unwrap()
        .intake
        .insert(0u64.to_be_bytes(), &b"not json"[..])
        .unwrap();
    let mail = scene.reset_mail_for_new_account("quinn@example.com").await;
    assert!(mail.text.unwrap().contains("rekey://reset?token="));
    assert_eq!(
        scene.rekey.sled().unwrap().intake.len(),
        1,
        "the unreadable record stays for a look"
    );
}

/// The requests waiting in the intake, as (key, record).
fn waiting(rekey: &Rekey) -> Vec<(sled::IVec, sled::IVec)> {
    rekey.sled().unwrap().intake.iter().map(Result::unwrap).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_a_crash_kept_after_it_was_handled_is_not_handled_again() {
    let smtp = SmtpCapture::start();
    let dir = tempfile::tempdir().unwrap();
    let request = {
        let (rekey, _) = open_with_smtp(dir.path(), &smtp, &[]);
        rekey
            .create_account("rue@example.com", PASSWORD, None, "test")
            .await
            .unwrap();
        rekey.request_reset("rue@example.com", "test").await.unwrap();
        let request = waiting(&rekey);
        assert_eq!(request.len(), 1, "the request waits in the intake");
        rekey.drain().await.unwrap();
        mails_to(&smtp, "rue@example.com", RESET_SUBJECT, 1);
        assert!(waiting(&rekey).is_empty(), "the intake let go of it");
        // The intake's removal lost, its step kept: what a crash between the two leaves.
        let (key, record) = &request[0];
        let intake = &rekey.sled().unwrap().intake;
        intake.insert(key, record).unwrap();
        intake.flush().unwrap();
        request
    };
    {
        // sled lets go of its lock a moment after the last handle drops.
        let started = std::time::Instant::now();
        let intake = loop {
            match sled::open(dir.path().join("intake")) {
                Ok(db) => break db.open_tree("intake").unwrap(),
                Err(e) if started.elapsed() < std::time::Duration::from_secs(3) => {
                    let _ = e;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(e) => panic!("the intake opens: {e}"),
            }
        };
        assert_eq!(
            intake.iter().collect::<Result<Vec<_>, _>>().unwrap(),
            request,
            "kept on disk"
        );
    }
    let (rekey, _) = open_with_smtp(dir.path(), &smtp, &[]);
    assert!(waiting(&rekey).is_empty(), "let go of at open");
    assert_eq!(rekey.drain().await.unwrap().sent, 0, "nothing handled twice");
    assert_eq!(mails_to(&smtp, "rue@example.com", RESET_SUBJECT, 1).len(), 1);
    // The marks of handled requests go once their requests are gone for good.
    let marks = rekey.sled().unwrap().db.open_tree("intake_handled").unwrap();
    assert_eq!(marks.len(), 1);
    rekey.prune().await.unwrap();
    assert_eq!(marks.len(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_an_older_version_queued_in_the_main_database_still_go_out() {
    let smtp = SmtpCapture::start();
    let dir = tempfile::tempdir().unwrap();
    {
        let (rekey, _) = open_with_smtp(dir.path(), &smtp, &[]);
        rekey
            .create_account("ode@example.com", PASSWORD, None, "test")
            .await
            .unwrap();
        rekey.request_reset("ode@example.com", "test").await.unwrap();
        // Where versions before the intake's own database kept it.
        let store = rekey.sled().unwrap();
        let old = store.db.open_tree("intake").unwrap();
        for (key, record) in waiting(&rekey) {
            old.insert(&key, record).unwrap();
            store.intake.remove(key).unwrap();
        }
        store.db.flush().unwrap();
        store.intake.flush().unwrap();
    }
    let (rekey, _) = open_with_smtp(dir.path(), &smtp, &[]);
    assert_eq!(waiting(&rekey).len(), 1, "moved at open");
    assert!(!rekey
        .sled()
        .unwrap()
        .db
        .tree_names()
        .iter()
        .any(|n| n.as_ref() == b"intake"));
    rekey.drain().await.unwrap();
    mails_to(&smtp, "ode@example.com", RESET_SUBJECT, 1);
}

/// Drops the outbox's own index and count (the keys after all mail), as in data made before
/// the outbox kept them.
fn forget_the_outbox_index(rekey: &Rekey) {
    let outbox = &rekey.sled().unwrap().outbox;
    let own: Vec<_> = outbox.range(&[0xffu8][..]..).keys().map(Result::unwrap).collect();
    assert!(!own.is_empty(), "the outbox keeps an index");
    for key in own {
        outbox.remove(key).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn mail_queued_before_the_outbox_kept_an_index_still_goes_out() {
    let mut smtp = SmtpCapture::start();
    smtp.stop();
    let dir = tempfile::tempdir().unwrap();
    let people: Vec<String> = (0..5).map(|i| format!("old{i}@example.com")).collect();
    {
        let (rekey, _) = open_with_smtp(dir.path(), &smtp, &[]);
        for email in &people {
            rekey.create_account(email, PASSWORD, None, "test").await.unwrap();
            rekey.request_reset(email, "test").await.unwrap();
        }
        rekey.drain().await.unwrap(); // queued; the server is down
        forget_the_outbox_index(&rekey);
    }
    smtp.restart();
    let (rekey, clock) = open_with_smtp(dir.path(), &smtp, &[]);
    assert_eq!(rekey.outbox().status().await.unwrap().depth, 5, "counted again at open");
    clock.advance(60);
    assert_eq!(rekey.drain().await.unwrap().sent, 5);
    for email in &people {
        mails_to(&smtp, email, RESET_SUBJECT, 1);
    }
    assert_eq!(rekey.outbox().status().await.unwrap().depth, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_backlog_is_counted_not_walked() {
    use rekey_core::outbox::{enqueue_tx, MailKind};
    use sled::transaction::ConflictableTransactionError;

    let dir = tempfile::tempdir().unwrap();
    let url = format!("smtp+plain://127.0.0.1:{}", free_port());
    let (rekey, _) = open(config(dir.path(), Some(&url), None, &[]));
    let now = rekey.now();
    let letter = rekey_core::letters::test(
        &rekey_core::letters::Sender::plain("Rekey <no-reply@rekey.test>").unwrap(),
        "many@example.com",
        now,
    )
    .unwrap();
    let key = rekey.mail_key().clone();
    let started = std::time::Instant::now();
    for _ in 0..20 {
        rekey
            .sled()
            .unwrap()
            .outbox
            .transaction(|t| {
                for _ in 0..500 {
                    enqueue_tx(t, &key, &letter, MailKind::Test, now, None)?;
                }
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .unwrap();
    }
    let queued = started.elapsed();
    let started = std::time::Instant::now();
    let status = rekey.outbox().status().await.unwrap();
    let counted = started.elapsed();
    assert_eq!(status.depth, 10_000);
    // What the status used to do: walk the whole tree.
    let started = std::time::Instant::now();
    let _ = rekey.sled().unwrap().outbox.len();
    let walked = started.elapsed();

    // A pass against a server that is down looks at one batch, not the backlog, and holds it.
    let started = std::time::Instant::now();
    let report = rekey.drain().await.unwrap();
    let pass = started.elapsed();
    assert!(report.deferred > 0 && report.deferred <= 64, "{report:?}");
    let started = std::time::Instant::now();
    assert_eq!(rekey.drain().await.unwrap().deferred, 0, "held");
    let held = started.elapsed();
    let status = rekey.outbox().status().await.unwrap();
    assert_eq!((status.depth, status.failures), (10_000, 1));
    assert_eq!(rekey.outbox().list().await.unwrap().len(), 10_000);
    eprintln!(
        "10k backlog: queued in {queued:?}; status {counted:?} (a walk of the tree: {walked:?}); \
         failing pass {pass:?}; held pass {held:?}"
    );
}
