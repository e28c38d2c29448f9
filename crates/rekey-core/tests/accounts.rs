//! Accounts on a real sled directory: sessions, password changes, disabling, rehashing, and
//! the service's workers delivering on their own.

mod common;

use std::time::Duration;

use common::*;
use rekey_core::{Error, Rekey};

#[tokio::test(flavor = "multi_thread")]
async fn change_password_ends_every_session_and_sends_a_notice() {
    let scene = Scene::new(&[]);
    let (rekey, smtp) = (&scene.rekey, &scene.smtp);
    rekey
        .create_account("lee@example.com", PASSWORD, None, "test")
        .await
        .unwrap();
    assert_eq!(
        rekey
            .create_account("LEE@example.com", PASSWORD, None, "test")
            .await
            .unwrap_err(),
        Error::EmailTaken
    );
    let laptop = rekey.sign_in("lee@example.com", PASSWORD, "laptop").await.unwrap();
    let phone = rekey.sign_in("lee@example.com", PASSWORD, "phone").await.unwrap();
    assert_eq!(rekey.session_user(&phone.0).await.unwrap().email, "lee@example.com");

    let wrong = rekey
        .change_password(&laptop.0, "not my password at all", NEW_PASSWORD, "laptop")
        .await;
    assert_eq!(wrong.unwrap_err(), Error::BadCredentials);
    let weak = rekey
        .change_password(&laptop.0, PASSWORD, "lee@example.com", "laptop")
        .await;
    assert_eq!(weak.unwrap_err().code(), "password_context");

    let fresh = rekey
        .change_password(&laptop.0, PASSWORD, NEW_PASSWORD, "laptop")
        .await
        .unwrap();
    assert_eq!(rekey.session_user(&laptop.0).await, Err(Error::SessionInvalid));
    assert_eq!(rekey.session_user(&phone.0).await, Err(Error::SessionInvalid));
    assert_eq!(rekey.session_user(&fresh.0).await.unwrap().email, "lee@example.com");
    rekey.drain().await.unwrap();
    mails_to(smtp, "lee@example.com", CHANGED_SUBJECT, 1);

    rekey.sign_out(&fresh.0).await.unwrap();
    assert_eq!(rekey.session_user(&fresh.0).await, Err(Error::SessionInvalid));
    // The token is never stored as is: only its hash is a key.
    let raw_keys: Vec<Vec<u8>> = rekey
        .sled()
        .unwrap()
        .sessions
        .iter()
        .keys()
        .map(|k| k.unwrap().to_vec())
        .collect();
    assert!(raw_keys
        .iter()
        .all(|k| k.len() == 32 && !String::from_utf8_lossy(k).contains("rks_")));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_disabled_account_cannot_sign_in_and_gets_no_reset_mail() {
    let scene = Scene::new(&[]);
    let (rekey, smtp) = (&scene.rekey, &scene.smtp);
    rekey
        .create_account("max@example.com", PASSWORD, None, "test")
        .await
        .unwrap();
    let session = rekey.sign_in("max@example.com", PASSWORD, "test").await.unwrap();
    rekey.set_disabled("max@example.com", true, "admin").await.unwrap();
    assert_eq!(rekey.session_user(&session.0).await, Err(Error::SessionInvalid));
    assert_eq!(
        rekey.sign_in("max@example.com", PASSWORD, "test").await,
        Err(Error::BadCredentials)
    );
    assert_eq!(rekey.request_reset("max@example.com", "test").await, Ok(()));
    rekey.drain().await.unwrap();
    assert!(smtp.messages().is_empty());
    rekey.set_disabled("max@example.com", false, "admin").await.unwrap();
    rekey.sign_in("max@example.com", PASSWORD, "test").await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn hashes_are_redone_when_the_parameters_change() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (rekey, _) = open(config(dir.path(), None, None, &[]));
        rekey
            .create_account("ned@example.com", PASSWORD, None, "test")
            .await
            .unwrap();
    }
    async fn stored(rekey: &Rekey) -> String {
        let email = rekey_core::Email::parse("ned@example.com").unwrap();
        rekey.find_user(&email).await.unwrap().unwrap().password_hash
    }
    let stronger = [("argon2_memory_kib", "12288"), ("argon2_iterations", "2")];
    let (rekey, _) = open(config(dir.path(), None, None, &stronger));
    assert!(stored(&rekey).await.starts_with("$argon2id$v=19$m=8192,t=1,p=1$"));
    rekey.sign_in("ned@example.com", PASSWORD, "test").await.unwrap();
    let after = stored(&rekey).await;
    assert!(after.starts_with("$argon2id$v=19$m=12288,t=2,p=1$"), "{after}");
    rekey.sign_in("ned@example.com", PASSWORD, "test").await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_workers_deliver_without_being_asked() {
    let scene = Scene::new(&[]);
    let (rekey, smtp) = (&scene.rekey, &scene.smtp);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let workers = tokio::spawn(rekey.clone().run_workers(stopped));
    rekey
        .create_account("ola@example.com", PASSWORD, None, "test")
        .await
        .unwrap();
    rekey.request_reset("ola@example.com", "test").await.unwrap();
    let found = tokio::task::block_in_place(|| mails_to(smtp, "ola@example.com", RESET_SUBJECT, 1));
    assert_eq!(found.len(), 1);
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), workers)
        .await
        .expect("workers stop")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn smtp_connections_are_pooled() {
    let scene = Scene::new(&[("smtp_pool_size", "2")]);
    let (rekey, smtp) = (&scene.rekey, &scene.smtp);
    for i in 0..6 {
        let email = format!("p{i}@example.com");
        rekey.create_account(&email, PASSWORD, None, "test").await.unwrap();
        rekey.request_reset(&email, "test").await.unwrap();
    }
    assert_eq!(rekey.drain().await.unwrap().sent, 6);
    smtp.wait_for_messages(6, Duration::from_secs(10));
    let connections = smtp.stats()["connections"]["starttls"].as_u64().unwrap();
    // lettre returns a connection to the pool asynchronously, so a send can open one more
    // than the pool keeps; reuse shows as fewer connections than mails.
    assert!(connections < 6, "6 mails over {connections} connections: not pooled");
}

#[tokio::test(flavor = "multi_thread")]
async fn records_that_ran_out_are_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let (rekey, clock) = open(config(dir.path(), None, None, &[("limit_address", "3/15m")]));
    rekey
        .create_account("pam@example.com", PASSWORD, None, "test")
        .await
        .unwrap();
    rekey.sign_in("pam@example.com", PASSWORD, "test").await.unwrap();
    rekey.request_reset("pam@example.com", "test").await.unwrap();
    rekey.drain().await.unwrap();
    rekey.request_reset("pam@example.com", "test").await.unwrap();
    rekey.drain().await.unwrap(); // the first link is now a "replaced" record
    assert_eq!(rekey.prune().await.unwrap(), 0, "nothing has run out yet");
    let s = rekey.sled().unwrap();
    // A session; the replaced link; the live reset and its code; the sign-in counts (per
    // account, per client) and the client the account now knows; the address's reset limit.
    let counts = (
        s.sessions.len(),
        s.retired.len(),
        s.resets.len(),
        s.codes.len(),
        s.limits.len(),
    );
    assert_eq!(counts, (1, 1, 1, 1, 4));
    clock.advance(13 * 3600);
    assert_eq!(
        rekey.prune().await.unwrap(),
        7,
        "all but the known client, kept 30 days"
    );
    clock.advance(30 * 24 * 3600);
    assert_eq!(rekey.prune().await.unwrap(), 1);
    assert!(s.resets.is_empty());
    assert_eq!((s.sessions.len(), s.retired.len(), s.limits.len()), (0, 0, 0));
}
