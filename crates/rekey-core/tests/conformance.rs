//! One suite, every backend: the store's steps for accounts, sessions, limits, counters and
//! the outbox behave the same on sled (a temporary directory) and on PostgreSQL (a throwaway
//! cluster), including when many callers take the same step at once.

use std::sync::Arc;

use rekey_core::audit::AuditEvent;
use rekey_core::letters::Letter;
use rekey_core::limits::RateLimit;
use rekey_core::mailer::Mailer;
use rekey_core::outbox::{DeadItem, MailKind, Outbox, OutboxItem};
use rekey_core::sealed::MailKey;
use rekey_core::store::postgres::PgStore;
use rekey_core::store::steps::{NewPassword, NewPending, NewReset};
use rekey_core::store::{
    seq_key, AccountSteps, CodeState, Intake, IntakeKind, LiveReset, MailSetting, OutboxSteps, Pending, Retired,
    Session, Steps, Store, StoreSteps, User,
};
use rekey_core::{Clock, Error, ManualClock};
use rekey_testkit::PgCluster;

/// A backend under test, with what it lives in.
struct Backend {
    name: &'static str,
    steps: Arc<dyn Steps>,
    /// Another instance on the same data: on sled the same store (one process holds it), on
    /// PostgreSQL a second pool, as another rekeyd has.
    twin: Arc<dyn Steps>,
    /// The key the store seals mail with.
    key: MailKey,
    _home: Home,
}

enum Home {
    Dir(#[allow(dead_code)] tempfile::TempDir),
    Cluster(#[allow(dead_code)] Arc<PgCluster>),
}

fn sled_backend() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let key = MailKey::load_or_create(dir.path()).unwrap();
    let store = Store::open(dir.path(), "conformance", 0, key.clone()).unwrap();
    Backend {
        name: "sled",
        steps: Arc::new(store.clone()),
        twin: Arc::new(store),
        key,
        _home: Home::Dir(dir),
    }
}

async fn postgres_backend(cluster: &Arc<PgCluster>) -> Backend {
    let url = cluster.database("conformance");
    let store = PgStore::connect(&url, 8).await.unwrap();
    let twin = PgStore::connect(&url, 8).await.unwrap();
    Backend {
        name: "postgres",
        key: store.mail_key().clone(),
        steps: Arc::new(store),
        twin: Arc::new(twin),
        _home: Home::Cluster(Arc::clone(cluster)),
    }
}

/// sled, then PostgreSQL on a cluster of the test's own.
async fn backends() -> Vec<Backend> {
    let cluster = Arc::new(PgCluster::start());
    vec![sled_backend(), postgres_backend(&cluster).await]
}

fn account(id: &str, email: &str) -> User {
    User {
        id: id.into(),
        email: email.into(),
        password_hash: format!("hash-of-{id}"),
        stamp: format!("stamp-of-{id}"),
        disabled: false,
        created_at: 1_700_000_000,
        locale: None,
        time_zone: None,
    }
}

fn event(kind: &str) -> AuditEvent {
    AuditEvent::new(1_700_000_000, kind, None, Some("test"), "")
}

fn notice(to: &str) -> Letter {
    Letter {
        from: "rekey@example.com".into(),
        to: to.into(),
        raw: b"Subject: changed\r\n\r\nYour password was changed.\r\n".to_vec(),
    }
}

/// Mints `live` for `user_id` (`None`: a stand-in) the worker's way: a request queued,
/// claimed, and answered by the mint step. Returns the request's id.
async fn mint(s: &Arc<dyn Steps>, user_id: Option<&str>, live: &LiveReset) -> u64 {
    let mut asked = request("ada@example.com");
    asked.kind = IntakeKind::Reset;
    s.queue_request(&asked).await.unwrap();
    let id = s
        .claim_requests(100, 1_700_000_000, 1_700_000_060)
        .await
        .unwrap()
        .last()
        .unwrap()
        .id;
    let (letter, ev) = (notice("ada@example.com"), event("reset_requested"));
    let code = code(user_id.unwrap_or("stand-in"), &live.jti);
    s.mint_reset(NewReset {
        request: id,
        user_id,
        live,
        code_key: "reset/ada@example.com",
        code: &code,
        letter: &letter,
        event: &ev,
        audited: user_id.is_some(),
        counted_as: "reset.minted",
        now: 1_700_000_000,
    })
    .await
    .unwrap();
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_address_has_one_account_however_many_ask_at_once() {
    for b in backends().await {
        let s = &b.steps;
        s.create_user(&account("u1", "ada@example.com"), &event("account_created"))
            .await
            .unwrap();
        let asked = ["nobody@example.com", "ada@example.com"].map(String::from);
        let found = s.users_by_email(&asked).await.unwrap();
        assert_eq!(found.len(), 1, "{}: the accounts among the addresses", b.name);
        assert_eq!(found[0].id, "u1", "{}", b.name);
        assert_eq!(
            s.create_user(&account("u2", "ada@example.com"), &event("account_created"))
                .await,
            Err(Error::EmailTaken),
            "{}",
            b.name
        );
        assert_eq!(s.user_by_email("ada@example.com").await.unwrap().unwrap().id, "u1");
        assert_eq!(s.user("u1").await.unwrap().unwrap().email, "ada@example.com");
        assert!(
            s.user("u2").await.unwrap().is_none(),
            "{}: the refused account is not there",
            b.name
        );

        let racers = (0..8).map(|i| {
            let s = Arc::clone(s);
            tokio::spawn(async move {
                s.create_user(&account(&format!("r{i}"), "bo@example.com"), &event("account_created"))
                    .await
            })
        });
        let results = futures_join(racers).await;
        let created = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(created, 1, "{}: {results:?}", b.name);
        assert!(results.iter().all(|r| r.is_ok() || *r == Err(Error::EmailTaken)));
        assert_eq!(s.users().await.unwrap().len(), 2, "{}", b.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_twelve_confirms_of_one_reset_exactly_one_sets_the_password() {
    for b in backends().await {
        let s = &b.steps;
        let ada = account("u1", "ada@example.com");
        s.create_user(&ada, &event("account_created")).await.unwrap();
        let live = LiveReset {
            jti: "jti-1".into(),
            kid: "k1".into(),
            issued_at: 1_700_000_000,
            expires_at: 1_700_001_800,
        };
        mint(s, Some("u1"), &live).await;

        let racers = (0..12).map(|i| {
            let (s, live) = (Arc::clone(s), live.clone());
            tokio::spawn(async move {
                let letter = notice("ada@example.com");
                let event = event("password_reset");
                s.set_password(NewPassword {
                    user_id: "u1",
                    expected_stamp: "stamp-of-u1",
                    hash: format!("new-hash-{i}"),
                    stamp: format!("new-stamp-{i}"),
                    consume: Some(&live),
                    notice: &letter,
                    event: &event,
                    now: 1_700_000_100,
                })
                .await
                .map(|set| (i, set.user, set.old_hash))
            })
        });
        let results = futures_join(racers).await;
        let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(
            winners.len(),
            1,
            "{}: {:?}",
            b.name,
            results.iter().map(|r| r.as_ref().err()).collect::<Vec<_>>()
        );
        for lost in results.iter().filter_map(|r| r.as_ref().err()) {
            assert!(
                matches!(lost, Error::TokenUsed | Error::TokenReplaced | Error::TokenStale),
                "{}: a losing confirm says {lost:?}",
                b.name
            );
        }
        let (i, user, old_hash) = winners[0].clone();
        assert_eq!(old_hash, "hash-of-u1");
        assert_eq!(user.password_hash, format!("new-hash-{i}"));
        let stored = s.user("u1").await.unwrap().unwrap();
        assert_eq!(
            (stored.password_hash, stored.stamp),
            (format!("new-hash-{i}"), format!("new-stamp-{i}"))
        );

        // The link is spent, and says so; a stale stamp changes nothing.
        let letter = notice("ada@example.com");
        let event = event("password_reset");
        let again = |consume, expected_stamp| NewPassword {
            user_id: "u1",
            expected_stamp,
            hash: "late".into(),
            stamp: "late".into(),
            consume,
            notice: &letter,
            event: &event,
            now: 1_700_000_200,
        };
        let fresh_stamp = format!("new-stamp-{i}");
        assert_eq!(
            s.set_password(again(Some(&live), &fresh_stamp)).await.err(),
            Some(Error::TokenUsed),
            "{}",
            b.name
        );
        assert_eq!(
            s.set_password(again(None, "stamp-of-u1")).await.err(),
            Some(Error::TokenStale),
            "{}",
            b.name
        );
        assert_eq!(
            s.user("u1").await.unwrap().unwrap().password_hash,
            format!("new-hash-{i}")
        );
        // The owner's own change (no reset) with the right stamp goes through.
        let changed = s.set_password(again(None, &fresh_stamp)).await.unwrap();
        assert_eq!(changed.user.password_hash, "late");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sessions_hashes_disabling_and_the_audit_trail() {
    for b in backends().await {
        let s = &b.steps;
        s.create_user(&account("u1", "ada@example.com"), &event("account_created"))
            .await
            .unwrap();
        let session = Session {
            user_id: "u1".into(),
            stamp: "stamp-of-u1".into(),
            expires_at: 1_700_086_400,
        };
        s.put_session(b"k1", &session).await.unwrap();
        assert_eq!(s.session(b"k1").await.unwrap().unwrap().user_id, "u1", "{}", b.name);
        s.end_session(b"k1").await.unwrap();
        s.end_session(b"k1").await.unwrap();
        assert!(s.session(b"k1").await.unwrap().is_none(), "{}", b.name);

        assert!(!s.replace_hash("u1", "not-the-hash", "x").await.unwrap(), "{}", b.name);
        assert!(
            s.replace_hash("u1", "hash-of-u1", "rehashed").await.unwrap(),
            "{}",
            b.name
        );
        assert_eq!(s.user("u1").await.unwrap().unwrap().password_hash, "rehashed");

        let live = LiveReset {
            jti: "jti-9".into(),
            kid: "k1".into(),
            issued_at: 1_700_000_000,
            expires_at: 1_700_001_800,
        };
        mint(s, Some("u1"), &live).await;
        let off = s
            .set_disabled("u1", true, Some("disabled-stamp".into()), &event("account_disabled"))
            .await
            .unwrap()
            .unwrap();
        assert!(off.disabled && off.stamp == "disabled-stamp", "{}", b.name);
        // Disabling dropped the live reset: it can no longer set a password.
        let (letter, ev) = (notice("ada@example.com"), event("password_reset"));
        let tried = s
            .set_password(NewPassword {
                user_id: "u1",
                expected_stamp: "disabled-stamp",
                hash: "x".into(),
                stamp: "y".into(),
                consume: Some(&live),
                notice: &letter,
                event: &ev,
                now: 1_700_000_100,
            })
            .await;
        assert_eq!(tried.err(), Some(Error::TokenReplaced), "{}", b.name);
        let on = s
            .set_disabled("u1", false, None, &event("account_enabled"))
            .await
            .unwrap()
            .unwrap();
        assert!(!on.disabled && on.stamp == "disabled-stamp", "{}", b.name);
        assert!(s
            .set_disabled("nobody", true, None, &event("x"))
            .await
            .unwrap()
            .is_none());

        let kinds: Vec<String> = s.recent_events(3).await.unwrap().into_iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            ["reset_requested", "account_disabled", "account_enabled"],
            "{}",
            b.name
        );
        s.append_event(&event("signed_in")).await.unwrap();
        let last = s.recent_events(1).await.unwrap();
        assert_eq!(last.len(), 1);
        assert_eq!(last[0].kind, "signed_in", "{}", b.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn limits_hold_under_concurrent_takes_and_counters_count_every_bump() {
    for b in backends().await {
        let s = &b.steps;
        let limit: RateLimit = "3/15m".parse().unwrap();
        let t0 = 1_700_000_000;
        for _ in 0..3 {
            assert_eq!(s.take(limit, "k", t0).await.unwrap(), Ok(()), "{}", b.name);
        }
        assert_eq!(s.take(limit, "k", t0).await.unwrap(), Err(300), "{}", b.name);
        assert_eq!(s.take(limit, "k", t0 + 299).await.unwrap(), Err(1), "{}", b.name);
        assert_eq!(s.take(limit, "k", t0 + 300).await.unwrap(), Ok(()), "{}", b.name);
        s.refund(limit, "k", t0 + 300).await.unwrap();
        assert_eq!(
            s.take(limit, "k", t0 + 300).await.unwrap(),
            Ok(()),
            "{}: the refund gave one back",
            b.name
        );
        for _ in 0..5 {
            s.refund(limit, "k", t0 + 300).await.unwrap();
        }
        let passed = futures_join((0..5).map(|_| {
            let s = Arc::clone(s);
            tokio::spawn(async move { s.take(limit, "k", t0 + 300).await.unwrap() })
        }))
        .await;
        assert_eq!(
            passed.iter().filter(|r| r.is_ok()).count(),
            3,
            "{}: refunds stop at nothing counted",
            b.name
        );
        s.clear("k").await.unwrap();
        assert_eq!(s.take(limit, "k", t0 + 300).await.unwrap(), Ok(()), "{}", b.name);
        assert_eq!(s.take(RateLimit::Off, "k", t0).await.unwrap(), Ok(()));

        // Forty callers at once on a limit of ten: ten pass, whoever they are.
        let ten: RateLimit = "10/1h".parse().unwrap();
        let results = futures_join((0..40).map(|_| {
            let s = Arc::clone(s);
            tokio::spawn(async move { s.take(ten, "flood", t0).await.unwrap() })
        }))
        .await;
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 10, "{}", b.name);

        assert!(!s.remembered("known", t0).await.unwrap());
        s.remember("known", t0 + 60).await.unwrap();
        assert!(s.remembered("known", t0 + 59).await.unwrap(), "{}", b.name);
        assert!(!s.remembered("known", t0 + 60).await.unwrap(), "{}", b.name);

        futures_join((0..50).map(|_| {
            let s = Arc::clone(s);
            tokio::spawn(async move { s.bump("things").await.unwrap() })
        }))
        .await;
        assert_eq!(s.counter("things").await.unwrap(), 50, "{}", b.name);
        assert_eq!(s.counter("nothing").await.unwrap(), 0);
        s.flush().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_account_keeps_its_language_from_registration_through_changes() {
    for b in backends().await {
        let s = &b.steps;
        // Asked for in German: the request, the pending account and the account keep it.
        s.queue_request(&Intake {
            locale: Some("de-AT".into()),
            ..request("lena@example.com")
        })
        .await
        .unwrap();
        let waiting = s.claim_requests(10, 1_700_000_000, 1_700_000_060).await.unwrap();
        assert_eq!(waiting[0].request.locale.as_deref(), Some("de-AT"), "{}", b.name);
        let pending = Pending {
            locale: waiting[0].request.locale.clone(),
            ..pending_for("p1", "lena@example.com", "jti-p1")
        };
        start(s, waiting[0].id, &pending).await.unwrap();
        let kept = s.pending("p1").await.unwrap().unwrap();
        assert_eq!(kept.locale.as_deref(), Some("de-AT"), "{}", b.name);
        let user = User {
            locale: kept.locale.clone(),
            time_zone: None,
            ..account("p1", "lena@example.com")
        };
        s.finish_pending(&kept, &user, &event("account_created")).await.unwrap();
        assert_eq!(
            s.user("p1").await.unwrap().unwrap().locale.as_deref(),
            Some("de-AT"),
            "{}",
            b.name
        );

        // Changed by its owner, then back to the install's; an unknown account is said to be.
        assert!(s
            .set_mail_setting("p1", MailSetting::Locale(Some("fr")), &event("locale_changed"))
            .await
            .unwrap());
        let found = s.user_by_email("lena@example.com").await.unwrap().unwrap();
        assert_eq!(found.locale.as_deref(), Some("fr"), "{}", b.name);
        assert!(s
            .set_mail_setting("p1", MailSetting::Locale(None), &event("locale_changed"))
            .await
            .unwrap());
        assert_eq!(s.user("p1").await.unwrap().unwrap().locale, None, "{}", b.name);
        assert!(!s
            .set_mail_setting("nobody", MailSetting::Locale(Some("es")), &event("locale_changed"))
            .await
            .unwrap());
        let kinds: Vec<String> = s.recent_events(2).await.unwrap().into_iter().map(|e| e.kind).collect();
        assert_eq!(kinds, ["locale_changed", "locale_changed"], "{}", b.name);

        // Its time zone, the same way (the list of accounts shows it too).
        assert!(s
            .set_mail_setting(
                "p1",
                MailSetting::TimeZone(Some("Europe/Vienna")),
                &event("time_zone_changed")
            )
            .await
            .unwrap());
        let found = s.user_by_email("lena@example.com").await.unwrap().unwrap();
        assert_eq!(found.time_zone.as_deref(), Some("Europe/Vienna"), "{}", b.name);
        let listed = s.users().await.unwrap().into_iter().find(|u| u.id == "p1").unwrap();
        assert_eq!(listed.time_zone.as_deref(), Some("Europe/Vienna"), "{}", b.name);
        assert!(!s
            .set_mail_setting(
                "nobody",
                MailSetting::TimeZone(Some("Europe/Vienna")),
                &event("time_zone_changed")
            )
            .await
            .unwrap());
        assert!(s
            .set_mail_setting("p1", MailSetting::TimeZone(None), &event("time_zone_changed"))
            .await
            .unwrap());
        assert_eq!(s.user("p1").await.unwrap().unwrap().time_zone, None, "{}", b.name);
    }
}

fn request(email: &str) -> Intake {
    Intake {
        kind: IntakeKind::Register,
        email: email.into(),
        client: "test".into(),
        at: 1_700_000_000,
        password_hash: Some("chosen-hash".into()),
        locale: None,
    }
}

fn pending_for(id: &str, email: &str, jti: &str) -> Pending {
    Pending {
        id: id.into(),
        email: email.into(),
        password_hash: "chosen-hash".into(),
        stamp: format!("stamp-{id}"),
        jti: jti.into(),
        created_at: 1_700_000_000,
        expires_at: 1_700_001_800,
        locale: None,
    }
}

fn code(user_id: &str, jti: &str) -> CodeState {
    CodeState {
        failures: 0,
        until: 1_700_003_600,
        user_id: user_id.into(),
        kid: "k1".into(),
        jti: jti.into(),
        code_mac: format!("mac-of-{jti}"),
        expires_at: 1_700_001_800,
    }
}

async fn start(s: &Arc<dyn Steps>, request: u64, pending: &Pending) -> Result<(), Error> {
    let (letter, ev) = (notice(&pending.email), event("registration_requested"));
    let key = format!("verify/{}", pending.email);
    s.start_pending(NewPending {
        request,
        pending,
        code_key: &key,
        code: &code(&pending.id, &pending.jti),
        letter: &letter,
        event: &ev,
        now: 1_700_000_000,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_request_is_handled_once_and_a_newer_registration_replaces_the_older() {
    for b in backends().await {
        let s = &b.steps;
        for email in ["ada@example.com", "ada@example.com", "bo@example.com"] {
            s.queue_request(&request(email)).await.unwrap();
        }
        assert_eq!(s.waiting_requests().await.unwrap(), 3, "{}", b.name);
        let claimed = s.claim_requests(10, 1_700_000_000, 1_700_000_060).await.unwrap();
        let emails: Vec<&str> = claimed.iter().map(|w| w.request.email.as_str()).collect();
        assert_eq!(
            emails,
            ["ada@example.com", "ada@example.com", "bo@example.com"],
            "{}: oldest first",
            b.name
        );
        let ids: Vec<u64> = claimed.iter().map(|w| w.id).collect();

        // Eight workers handle the first request at once: one pending account, one request gone.
        let first = pending_for("p1", "ada@example.com", "jti-p1");
        let racers = (0..8).map(|_| {
            let (s, first, id) = (Arc::clone(s), first.clone(), ids[0]);
            tokio::spawn(async move { start(&s, id, &first).await })
        });
        assert!(futures_join(racers).await.iter().all(Result::is_ok), "{}", b.name);
        assert_eq!(s.waiting_requests().await.unwrap(), 2, "{}", b.name);
        assert_eq!(s.pending("p1").await.unwrap().unwrap().email, "ada@example.com");

        // The second registration of the address replaces the first, whose link says so.
        let second = pending_for("p2", "ada@example.com", "jti-p2");
        start(s, ids[1], &second).await.unwrap();
        assert!(s.pending("p1").await.unwrap().is_none(), "{}", b.name);
        assert_eq!(
            s.retired("jti-p1").await.unwrap().unwrap().why,
            Retired::Replaced,
            "{}",
            b.name
        );
        let ev = event("account_created");
        let ada = account("p2", "ada@example.com");
        assert_eq!(
            s.finish_pending(&first, &account("p1", "ada@example.com"), &ev).await,
            Err(Error::TokenReplaced)
        );
        s.finish_pending(&second, &ada, &ev).await.unwrap();
        assert_eq!(
            s.user_by_email("ada@example.com").await.unwrap().unwrap().id,
            "p2",
            "{}",
            b.name
        );
        assert_eq!(
            s.finish_pending(&second, &ada, &ev).await,
            Err(Error::AccountVerified),
            "{}",
            b.name
        );
        assert_eq!(s.retired("jti-p2").await.unwrap().unwrap().why, Retired::Used);

        // An address that got an account meanwhile (an administrator made it) keeps it.
        let third = pending_for("p3", "bo@example.com", "jti-p3");
        start(s, ids[2], &third).await.unwrap();
        s.create_user(&account("admin-made", "bo@example.com"), &ev)
            .await
            .unwrap();
        assert_eq!(
            s.finish_pending(&third, &account("p3", "bo@example.com"), &ev).await,
            Err(Error::EmailTaken)
        );
        assert_eq!(
            s.user_by_email("bo@example.com").await.unwrap().unwrap().id,
            "admin-made"
        );
        s.drop_pending("bo@example.com").await.unwrap();
        assert!(s.pending("p3").await.unwrap().is_none(), "{}", b.name);

        // The owner is told once, however often the request is handled.
        s.queue_request(&request("ada@example.com")).await.unwrap();
        let told = s.claim_requests(10, 1_700_000_000, 1_700_000_060).await.unwrap();
        let told: Vec<u64> = told.iter().filter(|w| !ids.contains(&w.id)).map(|w| w.id).collect();
        assert_eq!(told.len(), 1, "{}", b.name);
        for _ in 0..2 {
            let (letter, ev) = (notice("ada@example.com"), event("registration_for_existing_account"));
            s.tell_owner(told[0], &letter, &ev, 1_700_000_000).await.unwrap();
        }
        let told_events = s.recent_events(20).await.unwrap();
        let told_events = told_events
            .iter()
            .filter(|e| e.kind == "registration_for_existing_account")
            .count();
        assert_eq!(told_events, 1, "{}", b.name);
        assert_eq!(s.waiting_requests().await.unwrap(), 0, "{}", b.name);
        s.queue_request(&request("cy@example.com")).await.unwrap();
        s.queue_request(&request("dee@example.com")).await.unwrap();
        let dropped = s.claim_requests(10, 1_700_000_000, 1_700_000_060).await.unwrap();
        assert_eq!(dropped.len(), 2, "{}", b.name);
        let ids: Vec<u64> = dropped.iter().map(|w| w.id).collect();
        s.drop_requests(&ids, Some("dropped.here")).await.unwrap();
        // Counted once, even when a second worker drops the same requests.
        s.drop_requests(&ids, Some("dropped.here")).await.unwrap();
        s.drop_requests(&ids, None).await.unwrap();
        assert_eq!(s.counter("dropped.here").await.unwrap(), 2, "{}", b.name);
        assert_eq!(s.waiting_requests().await.unwrap(), 0, "{}", b.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_code_try_is_counted_for_known_and_unknown_addresses() {
    for b in backends().await {
        let s = &b.steps;
        let stand_in = code("stand-in", "stand-in-jti");
        let until = 1_700_005_000;
        let first = s
            .count_code_try("verify/nobody@example.com", &stand_in, until)
            .await
            .unwrap();
        assert_eq!((first.failures, first.jti.as_str()), (0, "stand-in-jti"), "{}", b.name);
        let second = s
            .count_code_try("verify/nobody@example.com", &stand_in, until)
            .await
            .unwrap();
        assert_eq!(
            (second.failures, second.jti.as_str()),
            (1, "stand-in-jti"),
            "{}",
            b.name
        );

        s.queue_request(&request("ada@example.com")).await.unwrap();
        let id = s.claim_requests(1, 1_700_000_000, 1_700_000_060).await.unwrap()[0].id;
        start(s, id, &pending_for("p1", "ada@example.com", "jti-p1"))
            .await
            .unwrap();
        let real = s
            .count_code_try("verify/ada@example.com", &stand_in, until)
            .await
            .unwrap();
        assert_eq!(
            (real.failures, real.jti.as_str(), real.code_mac.as_str()),
            (0, "jti-p1", "mac-of-jti-p1")
        );
        // Twenty tries at once are twenty tries.
        let tries = futures_join((0..20).map(|_| {
            let (s, stand_in) = (Arc::clone(s), stand_in.clone());
            tokio::spawn(async move {
                s.count_code_try("verify/ada@example.com", &stand_in, until)
                    .await
                    .unwrap()
            })
        }))
        .await;
        let mut seen: Vec<u32> = tries.iter().map(|t| t.failures).collect();
        seen.sort();
        assert_eq!(
            seen,
            (1..=20).collect::<Vec<u32>>(),
            "{}: each try saw the count before it",
            b.name
        );
        assert!(s.live_reset("nobody").await.unwrap().is_none());
        let live = LiveReset {
            jti: "jti-r".into(),
            kid: "k1".into(),
            issued_at: 1,
            expires_at: 2,
        };
        mint(s, Some("u9"), &live).await;
        assert_eq!(s.live_reset("u9").await.unwrap().unwrap().jti, "jti-r", "{}", b.name);
    }
}

/// PostgreSQL's claims are leases: another instance's worker skips a claimed request until
/// its lease ends, and takes it after (its first claimant may have died).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_claims_are_leases() {
    let cluster = Arc::new(PgCluster::start());
    let b = postgres_backend(&cluster).await;
    let s = &b.steps;
    for email in ["a@example.com", "b@example.com"] {
        s.queue_request(&request(email)).await.unwrap();
    }
    let mine = s.claim_requests(1, 100, 160).await.unwrap();
    assert_eq!(mine.len(), 1);
    let theirs = s.claim_requests(10, 100, 160).await.unwrap();
    assert_eq!(theirs.len(), 1, "the other instance gets only the unclaimed one");
    assert_ne!(mine[0].id, theirs[0].id);
    assert!(s.claim_requests(10, 150, 210).await.unwrap().is_empty(), "both held");
    let after = s.claim_requests(10, 161, 221).await.unwrap();
    assert_eq!(after.len(), 2, "both leases ended: taken again");
}

/// A PostgreSQL that is not there, refuses the login or lacks the database is named in
/// words; one that goes away while in use makes steps say "unavailable", and they work again
/// once it is back, without reconnecting by hand.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_trouble_is_told_in_words_and_passes() {
    let cluster = PgCluster::start();
    let url = cluster.database("trouble");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let words = |r: Result<PgStore, rekey_core::store::StoreError>| r.err().expect("should fail").to_string();
    let nowhere = words(PgStore::connect(&format!("postgres://rekey:x@127.0.0.1:{port}/rekey"), 2).await);
    assert!(
        nowhere.contains(&format!("cannot reach the database at 127.0.0.1:{port}/rekey")),
        "{nowhere}"
    );
    let wrong_password = url.replace(cluster.password(), "not-the-password");
    let refused = words(PgStore::connect(&wrong_password, 2).await);
    assert!(
        refused.contains("refused the login") && !refused.contains("not-the-password"),
        "{refused}"
    );
    let missing = url.replace("/trouble", "/nothing_here");
    let no_db = words(PgStore::connect(&missing, 2).await);
    assert!(no_db.contains("no such database"), "{no_db}");
    let not_a_url = words(PgStore::connect("mysql://x", 2).await);
    assert!(not_a_url.contains("not a PostgreSQL address"), "{not_a_url}");

    let store = PgStore::connect(&url, 4).await.unwrap();
    let applied = store.applied_migrations().await.unwrap();
    assert_eq!(applied, PgStore::known_migrations(), "every migration, in order");
    store
        .create_user(&account("u1", "ada@example.com"), &event("account_created"))
        .await
        .unwrap();
    cluster.stop_immediate();
    assert_eq!(store.user("u1").await.err(), Some(Error::StoreUnavailable));
    assert_eq!(store.bump("x").await.err(), Some(Error::StoreUnavailable));
    cluster.start_again();
    let mut back = None;
    for _ in 0..50 {
        if let Ok(user) = store.user("u1").await {
            back = user;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        back.expect("steps work again once the database is back").email,
        "ada@example.com"
    );

    // A second connect finds the schema in place and changes nothing.
    let again = PgStore::connect(&url, 2).await.unwrap();
    assert_eq!(again.applied_migrations().await.unwrap(), applied);
    assert_eq!(
        again.mail_key().derive(b"x"),
        store.mail_key().derive(b"x"),
        "one mail key for every instance"
    );
    assert_eq!(again.users().await.unwrap().len(), 1);
}

const T0: i64 = 1_700_000_000;

fn mail_to(to: &str) -> Letter {
    Letter {
        from: "rekey@example.com".into(),
        to: to.into(),
        raw: format!("Subject: test\r\n\r\nFor {to}.\r\n").into_bytes(),
    }
}

fn ids(items: &[OutboxItem]) -> Vec<u64> {
    items.iter().map(|item| item.id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queued_mail_is_claimed_once_until_written_down_or_its_lease_ends() {
    for b in backends().await {
        let (s, twin) = (&b.steps, &b.twin);
        for to in ["a@example.com", "b@example.com", "c@example.com"] {
            s.queue_mail(&mail_to(to), MailKind::Test, T0, None).await.unwrap();
        }
        s.flush().await.unwrap();
        let mine = s.claim_mail(2, T0, T0 + 300).await.unwrap();
        let to: Vec<&str> = mine.iter().map(|m| m.to.as_str()).collect();
        assert_eq!(to, ["a@example.com", "b@example.com"], "{}: soonest first", b.name);
        let theirs = twin.claim_mail(10, T0, T0 + 300).await.unwrap();
        assert_eq!(
            theirs.len(),
            1,
            "{}: the other instance gets only the unclaimed one",
            b.name
        );
        assert_eq!(theirs[0].to, "c@example.com");
        assert!(
            twin.claim_mail(10, T0 + 299, T0 + 599).await.unwrap().is_empty(),
            "{}: all held",
            b.name
        );
        assert_eq!(s.next_mail_due(T0 + 299).await.unwrap(), None, "{}", b.name);

        // Delivered: gone, and counted once however often it is written down (a worker whose
        // lease ran out may write it down late).
        s.delivered(mine[0].id).await.unwrap();
        twin.delivered(mine[0].id).await.unwrap();
        // Given back: due again at once, for anyone.
        s.release_mail(&[mine[1].id]).await.unwrap();
        assert_eq!(s.next_mail_due(T0 + 1).await.unwrap(), Some(T0), "{}", b.name);
        let again = twin.claim_mail(10, T0 + 1, T0 + 301).await.unwrap();
        assert_eq!(ids(&again), [mine[1].id], "{}", b.name);
        // The instance that claimed "c" died: once its lease ends the mail goes to another.
        let after = s.claim_mail(10, T0 + 300, T0 + 600).await.unwrap();
        assert_eq!(ids(&after), [theirs[0].id], "{}", b.name);

        let left: Vec<String> = s.queued_mail().await.unwrap().into_iter().map(|m| m.to).collect();
        assert_eq!(left, ["b@example.com", "c@example.com"], "{}", b.name);
        let f = s.outbox_figures().await.unwrap();
        assert_eq!(
            (f.depth, f.delivered, f.dead, f.failures, f.oldest_created_at),
            (2, 1, 0, 0, Some(T0)),
            "{}",
            b.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workers_of_two_instances_claiming_at_once_never_get_the_same_mail() {
    for b in backends().await {
        for i in 0..60 {
            let to = format!("p{i}@example.com");
            b.steps
                .queue_mail(&mail_to(&to), MailKind::Test, T0, None)
                .await
                .unwrap();
        }
        let workers = (0..8).map(|w| {
            let s = Arc::clone(if w % 2 == 0 { &b.steps } else { &b.twin });
            tokio::spawn(async move {
                let mut got = Vec::new();
                loop {
                    let batch = s.claim_mail(3, T0, T0 + 300).await.unwrap();
                    if batch.is_empty() {
                        return got;
                    }
                    got.extend(ids(&batch));
                }
            })
        });
        let claimed: Vec<u64> = futures_join(workers).await.concat();
        let mut unique = claimed.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(
            (claimed.len(), unique.len()),
            (60, 60),
            "{}: each mail claimed once",
            b.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deferred_mail_waits_with_one_more_attempt_and_says_why() {
    for b in backends().await {
        let s = &b.steps;
        s.queue_mail(&mail_to("d@example.com"), MailKind::PasswordChanged, T0, None)
            .await
            .unwrap();
        let mut item = s.claim_mail(1, T0, T0 + 300).await.unwrap().remove(0);
        item.attempts += 1;
        item.next_attempt_at = T0 + 60;
        item.last_error = Some("451 try again later".into());
        s.deferred(&item).await.unwrap();

        let queued = s.queued_mail().await.unwrap();
        assert_eq!(queued.len(), 1, "{}", b.name);
        assert_eq!(
            (
                queued[0].attempts,
                queued[0].next_attempt_at,
                queued[0].last_error.as_deref()
            ),
            (1, T0 + 60, Some("451 try again later")),
            "{}",
            b.name
        );
        assert!(queued[0].sealed.is_some(), "{}: the message stays", b.name);
        assert!(
            s.claim_mail(1, T0 + 59, T0 + 359).await.unwrap().is_empty(),
            "{}: not before its time",
            b.name
        );
        assert_eq!(s.next_mail_due(T0).await.unwrap(), Some(T0 + 60), "{}", b.name);
        let f = s.outbox_figures().await.unwrap();
        assert_eq!(
            (f.depth, f.failures, f.last_error.as_deref()),
            (1, 1, Some("451 try again later")),
            "{}",
            b.name
        );
        // The deferral ended the claim: at its time another worker takes it.
        let again = b.twin.claim_mail(1, T0 + 60, T0 + 360).await.unwrap();
        assert_eq!(ids(&again), [item.id], "{}", b.name);

        // A mail taken out meanwhile is not brought back by a late deferral.
        b.twin.delivered(item.id).await.unwrap();
        s.deferred(&item).await.unwrap();
        assert!(s.queued_mail().await.unwrap().is_empty(), "{}", b.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn buried_mail_is_a_dead_letter_with_its_reason_and_a_retry_brings_it_back() {
    for b in backends().await {
        let s = &b.steps;
        s.queue_mail(&mail_to("gone@example.com"), MailKind::AccountExists, T0, None)
            .await
            .unwrap();
        s.queue_mail(&mail_to("reset@example.com"), MailKind::Reset, T0, Some(T0 + 1800))
            .await
            .unwrap();
        let claimed = s.claim_mail(10, T0, T0 + 300).await.unwrap();
        let refused = DeadItem {
            item: claimed[0].clone(),
            reason: "550 no such mailbox".into(),
            at: T0 + 5,
        };
        s.bury(&refused, &event("mail_dead"), true).await.unwrap();
        // A reset mail is buried without its message (it held a live link).
        let mut reset = claimed[1].clone();
        reset.sealed = None;
        let reset = DeadItem {
            item: reset,
            reason: "421 the server closed the connection".into(),
            at: T0 + 5,
        };
        s.bury(&reset, &event("mail_dead"), false).await.unwrap();
        // Once, however often.
        b.twin.bury(&refused, &event("mail_dead"), true).await.unwrap();

        let dead = s.dead_letters().await.unwrap();
        let seen: Vec<(&str, &str, bool)> = dead
            .iter()
            .map(|d| (d.item.to.as_str(), d.reason.as_str(), d.item.sealed.is_some()))
            .collect();
        assert_eq!(
            seen,
            [
                ("gone@example.com", "550 no such mailbox", true),
                ("reset@example.com", "421 the server closed the connection", false)
            ],
            "{}",
            b.name
        );
        assert_eq!((dead[0].at, dead[0].item.kind), (T0 + 5, MailKind::AccountExists));
        let f = s.outbox_figures().await.unwrap();
        assert_eq!(
            (f.depth, f.dead, f.failures, f.last_error.as_deref()),
            (0, 2, 1, Some("550 no such mailbox")),
            "{}: a refusal is a failure, a burial for other reasons is not",
            b.name
        );
        let events = s.recent_events(10).await.unwrap();
        assert_eq!(events.iter().filter(|e| e.kind == "mail_dead").count(), 2, "{}", b.name);

        // A retry sends the mail that kept its message; the reset is asked for afresh.
        let resets = s.dead_resets(None, T0 + 10).await.unwrap();
        assert_eq!(resets, [(reset.item.id, "reset@example.com".to_string())], "{}", b.name);
        assert!(
            s.dead_resets(None, T0 + 1800).await.unwrap().is_empty(),
            "{}: expired",
            b.name
        );
        assert_eq!(s.retry_dead(None, T0 + 10).await.unwrap(), 1, "{}", b.name);
        let back = s.queued_mail().await.unwrap();
        assert_eq!(
            (back.len(), back[0].id, back[0].next_attempt_at),
            (1, refused.item.id, T0 + 10),
            "{}",
            b.name
        );
        assert_eq!(s.dead_letters().await.unwrap().len(), 1, "{}", b.name);
        assert!(s.forget_dead(reset.item.id).await.unwrap(), "{}", b.name);
        assert!(!s.forget_dead(reset.item.id).await.unwrap(), "{}", b.name);

        // Old dead letters are pruned; a purge takes them all.
        let again = s.claim_mail(10, T0 + 10, T0 + 310).await.unwrap();
        assert_eq!(ids(&again), [refused.item.id], "{}", b.name);
        let refused_again = DeadItem {
            item: again[0].clone(),
            reason: "550 no such mailbox".into(),
            at: T0 + 20,
        };
        s.bury(&refused_again, &event("mail_dead"), true).await.unwrap();
        assert_eq!(s.prune_dead(T0 + 20).await.unwrap(), 0, "{}", b.name);
        assert_eq!(s.prune_dead(T0 + 21).await.unwrap(), 1, "{}", b.name);
        s.queue_mail(&mail_to("x@example.com"), MailKind::Test, T0, None)
            .await
            .unwrap();
        let x = s.claim_mail(1, T0 + 30, T0 + 330).await.unwrap().remove(0);
        let dead_x = DeadItem {
            item: x,
            reason: "550".into(),
            at: T0 + 30,
        };
        s.bury(&dead_x, &event("mail_dead"), true).await.unwrap();
        assert_eq!(s.purge_dead().await.unwrap(), 1, "{}", b.name);
        assert_eq!(s.outbox_figures().await.unwrap().dead, 0, "{}", b.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn trouble_with_the_server_holds_the_queue_until_a_delivery_or_a_retry() {
    for b in backends().await {
        let s = &b.steps;
        assert_eq!(s.server_hold().await.unwrap(), None, "{}", b.name);
        let first = s.hold_for_server("connection refused", T0).await.unwrap();
        assert!((T0 + 5..=T0 + 10).contains(&first), "{}: {first}", b.name);
        let second = b.twin.hold_for_server("connection refused", T0).await.unwrap();
        assert!(
            (T0 + 10..=T0 + 20).contains(&second),
            "{}: longer after each failure in a row: {second}",
            b.name
        );
        assert_eq!(s.server_hold().await.unwrap(), Some(second), "{}", b.name);
        let f = s.outbox_figures().await.unwrap();
        assert_eq!(
            (f.failures, f.last_error.as_deref(), f.server_hold_until),
            (2, Some("connection refused"), Some(second)),
            "{}",
            b.name
        );

        // A delivery ends the hold and the last problem, and the count starts again.
        s.queue_mail(&mail_to("e@example.com"), MailKind::Test, T0, None)
            .await
            .unwrap();
        let item = s.claim_mail(1, second, second + 300).await.unwrap().remove(0);
        s.delivered(item.id).await.unwrap();
        assert_eq!(s.server_hold().await.unwrap(), None, "{}", b.name);
        assert_eq!(s.outbox_figures().await.unwrap().last_error, None, "{}", b.name);
        let fresh = s.hold_for_server("connection refused", T0).await.unwrap();
        assert!((T0 + 5..=T0 + 10).contains(&fresh), "{}: {fresh}", b.name);
        // "Retry" means "try now", the server included.
        s.retry_dead(None, T0).await.unwrap();
        assert_eq!(s.server_hold().await.unwrap(), None, "{}", b.name);
    }
}

/// Files in a local mailbox.
fn delivered_to(mailbox: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(mailbox)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

fn outbox_over(b: &Backend, s: &Arc<dyn Steps>, mailbox: &std::path::Path, clock: &ManualClock) -> Outbox {
    Outbox::new(
        Arc::clone(s) as Arc<dyn OutboxSteps>,
        b.key.clone(),
        Mailer::Mailbox(mailbox.to_path_buf()),
        Arc::new(clock.clone()),
        2,
    )
}

/// The outbox itself over each backend: it delivers, drops a reset mail whose link expired
/// (with its message), and two outboxes on one queue (two instances) send each mail once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn outboxes_of_two_instances_deliver_each_mail_once() {
    for b in backends().await {
        let mailbox = tempfile::tempdir().unwrap();
        let clock = ManualClock::new();
        let (one, two) = (
            outbox_over(&b, &b.steps, mailbox.path(), &clock),
            outbox_over(&b, &b.twin, mailbox.path(), &clock),
        );
        let now = clock.now();
        b.steps
            .queue_mail(&mail_to("late@example.com"), MailKind::Reset, now, Some(now + 60))
            .await
            .unwrap();
        let people: Vec<String> = (0..150).map(|i| format!("p{i}@example.com")).collect();
        for to in &people {
            b.steps
                .queue_mail(&mail_to(to), MailKind::PasswordChanged, now, None)
                .await
                .unwrap();
        }
        clock.advance(61);
        let (a, b_) = tokio::join!(one.deliver_due(), two.deliver_due());
        let (a, b_) = (a.unwrap().0, b_.unwrap().0);
        assert_eq!(
            (a.sent + b_.sent, a.expired + b_.expired),
            (150, 1),
            "{}: {a:?} {b_:?}",
            b.name
        );
        let mut got = delivered_to(mailbox.path());
        got.sort();
        let mut wanted: Vec<String> = people
            .iter()
            .map(|to| String::from_utf8(mail_to(to).raw).unwrap())
            .collect();
        wanted.sort();
        assert_eq!(got, wanted, "{}: each mail once", b.name);

        let dead = one.dead().await.unwrap();
        assert_eq!(dead.len(), 1, "{}", b.name);
        assert!(
            dead[0].reason.contains("expired") && dead[0].item.sealed.is_none(),
            "{}",
            b.name
        );
        let status = two.status().await.unwrap();
        assert_eq!(
            (
                status.depth,
                status.dead,
                status.delivered,
                status.failures,
                status.last_error
            ),
            (0, 1, 150, 0, None),
            "{}",
            b.name
        );
        assert_eq!(
            one.retry_dead(None).await.unwrap(),
            0,
            "{}: an expired link is not resent",
            b.name
        );
    }
}

/// The stand-ins' mail on PostgreSQL, as a reset request that gets no mail queues it (the
/// outbox's columns, an id from `outbox_ids`, sealed with it): claimed like mail, rehearsed
/// and gone, counted once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_stand_ins_mail_is_claimed_rehearsed_and_gone() {
    let cluster = Arc::new(PgCluster::start());
    let b = postgres_backend(&cluster).await;
    let plant = |now: i64| {
        let id: u64 = cluster
            .psql("conformance", "SELECT nextval('outbox_ids')")
            .trim()
            .parse()
            .unwrap();
        let sealed = b.key.seal(&mail_to("stranger@example.com").raw, &seq_key(id));
        cluster.psql(
            "conformance",
            &format!(
                "INSERT INTO stand_in_mail (id, kind, sender, recipient, sealed, created_at, next_attempt_at, \
                 expires_at) VALUES ({id}, 'reset', 'rekey@example.com', 'stranger@example.com', '{sealed}', \
                 {now}, {now}, {})",
                now + 1800
            ),
        );
    };
    plant(T0);
    plant(T0);
    let s = &b.steps;
    assert_eq!(s.stand_ins_waiting().await.unwrap(), 2);
    let mine = s.claim_stand_ins(1, T0, T0 + 300).await.unwrap();
    let theirs = b.twin.claim_stand_ins(10, T0, T0 + 300).await.unwrap();
    assert_eq!((mine.len(), theirs.len()), (1, 1));
    assert_ne!(mine[0].id, theirs[0].id);
    s.release_stand_ins(&ids(&mine)).await.unwrap();
    assert_eq!(
        ids(&b.twin.claim_stand_ins(10, T0, T0 + 300).await.unwrap()),
        ids(&mine)
    );
    for id in [mine[0].id, theirs[0].id, mine[0].id] {
        s.stand_in_done(id).await.unwrap();
    }
    assert_eq!(s.stand_ins_waiting().await.unwrap(), 0);
    assert_eq!(s.counter("outbox.stand_ins").await.unwrap(), 2);

    let mailbox = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    plant(clock.now());
    let outbox = outbox_over(&b, &b.steps, mailbox.path(), &clock);
    assert_eq!(outbox.rehearse().await.unwrap(), 1);
    assert!(delivered_to(mailbox.path()).is_empty(), "nothing reaches the stranger");
    assert_eq!(s.counter("outbox.stand_ins").await.unwrap(), 3);
}

/// Waits for spawned tasks, in order.
async fn futures_join<T: Send + 'static>(tasks: impl IntoIterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}

fn live(jti: &str, expires_at: i64) -> LiveReset {
    LiveReset {
        jti: jti.into(),
        kid: "k1".into(),
        issued_at: 1_700_000_000,
        expires_at,
    }
}

fn kinds(events: Vec<AuditEvent>, kind: &str) -> usize {
    events.into_iter().filter(|e| e.kind == kind).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reset_is_minted_once_replaces_the_older_link_and_a_stand_in_leaves_no_trace() {
    for b in backends().await {
        let s = &b.steps;
        s.create_user(&account("u1", "ada@example.com"), &event("account_created"))
            .await
            .unwrap();
        let first = live("jti-a", 1_700_001_800);
        mint(s, Some("u1"), &first).await;
        assert_eq!(s.live_reset("u1").await.unwrap(), Some(first.clone()), "{}", b.name);
        let second = live("jti-b", 1_700_001_900);
        let request = mint(s, Some("u1"), &second).await;
        assert_eq!(s.live_reset("u1").await.unwrap(), Some(second.clone()), "{}", b.name);
        let why = s.retired("jti-a").await.unwrap().expect("the older link is retired");
        assert_eq!(why.why, Retired::Replaced, "{}", b.name);

        // The same request handled again (another instance, a lease run out) does nothing.
        let (letter, ev) = (notice("ada@example.com"), event("reset_requested"));
        let late = live("jti-late", 1_700_002_000);
        let late_code = code("u1", "jti-late");
        let minted = s.counter("reset.minted").await.unwrap();
        assert!(minted >= 2, "{}: each mint counted ({minted})", b.name);
        s.mint_reset(NewReset {
            request,
            user_id: Some("u1"),
            live: &late,
            code_key: "reset/ada@example.com",
            code: &late_code,
            letter: &letter,
            event: &ev,
            audited: true,
            counted_as: "reset.minted",
            now: 1_700_000_000,
        })
        .await
        .unwrap();
        assert_eq!(s.counter("reset.minted").await.unwrap(), minted, "{}", b.name);
        assert_eq!(s.live_reset("u1").await.unwrap(), Some(second.clone()), "{}", b.name);
        assert!(s.retired("jti-b").await.unwrap().is_none(), "{}", b.name);

        // A stand-in (no account, or over its limit) touches no account's records and writes
        // no audit event.
        let requested = kinds(s.recent_events(100).await.unwrap(), "reset_requested");
        assert_eq!(requested, 2, "{}", b.name);
        mint(s, None, &live("jti-s1", 1_700_001_800)).await;
        mint(s, None, &live("jti-s2", 1_700_001_800)).await;
        assert_eq!(s.live_reset("u1").await.unwrap(), Some(second), "{}", b.name);
        assert!(s.retired("jti-s1").await.unwrap().is_none(), "{}", b.name);
        assert_eq!(
            kinds(s.recent_events(100).await.unwrap(), "reset_requested"),
            2,
            "{}",
            b.name
        );
        assert_eq!(
            s.waiting_requests().await.unwrap(),
            0,
            "{}: every request handled",
            b.name
        );

        // An address over its limit: taken off with one event, once.
        s.queue_request(&request_for_reset()).await.unwrap();
        let id = s.claim_requests(10, 1_700_000_000, 1_700_000_060).await.unwrap()[0].id;
        let refused = event("reset_rate_limited");
        s.refuse_request(id, &refused).await.unwrap();
        s.refuse_request(id, &refused).await.unwrap();
        assert_eq!(
            kinds(s.recent_events(100).await.unwrap(), "reset_rate_limited"),
            1,
            "{}",
            b.name
        );
    }
}

fn request_for_reset() -> Intake {
    Intake {
        kind: IntakeKind::Reset,
        password_hash: None,
        ..request("ada@example.com")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reset_requests_count_against_their_address_and_strangers_share_the_stand_in() {
    for b in backends().await {
        let s = &b.steps;
        let limit: RateLimit = "2/1h".parse().unwrap();
        let t0 = 1_700_000_000;
        let ada = Some("reset:address:ada@example.com");
        let counts = [
            s.count_reset_request(limit, ada, t0).await.unwrap(),
            s.count_reset_request(limit, ada, t0).await.unwrap(),
            s.count_reset_request(limit, ada, t0).await.unwrap(),
        ];
        assert_eq!(counts, [true, true, false], "{}", b.name);
        // Strangers' addresses are counted under keys of their own, as limited as an
        // account's: one (sled), or a few that workers do not queue on (PostgreSQL, 16).
        let mut allowed = 0;
        for _ in 0..33 {
            allowed += usize::from(s.count_reset_request(limit, None, t0).await.unwrap());
        }
        assert!((2..=32).contains(&allowed), "{}: {allowed} of 33 let through", b.name);
        let bob = Some("reset:address:bob@example.com");
        assert!(s.count_reset_request(limit, bob, t0).await.unwrap(), "{}", b.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_install_keeps_one_id_and_every_issuer_and_pruning_drops_what_ran_out() {
    for b in backends().await {
        let s = &b.steps;
        assert_eq!(s.install_id("install-a").await.unwrap(), "install-a", "{}", b.name);
        assert_eq!(s.install_id("install-b").await.unwrap(), "install-a", "{}", b.name);
        assert_eq!(s.issuers("https://old.example").await.unwrap(), ["https://old.example"]);
        let both = ["https://old.example", "https://new.example"];
        assert_eq!(s.issuers("https://new.example").await.unwrap(), both, "{}", b.name);
        assert_eq!(s.issuers("https://old.example").await.unwrap(), both, "{}", b.name);

        let t0 = 1_700_000_000;
        s.create_user(&account("u1", "ada@example.com"), &event("account_created"))
            .await
            .unwrap();
        mint(s, Some("u1"), &live("jti-old", t0 + 100)).await;
        mint(s, Some("u1"), &live("jti-new", t0 + 10_000)).await;
        let session = |expires_at| Session {
            user_id: "u1".into(),
            stamp: "stamp-of-u1".into(),
            expires_at,
        };
        s.put_session(b"gone", &session(t0 + 10)).await.unwrap();
        s.put_session(b"kept", &session(t0 + 10_000)).await.unwrap();
        s.take("10/1m".parse().unwrap(), "limit:short", t0)
            .await
            .unwrap()
            .unwrap();
        s.take("1/1d".parse().unwrap(), "limit:long", t0)
            .await
            .unwrap()
            .unwrap();
        for _ in 0..5 {
            s.append_event(&event("signed_in")).await.unwrap();
        }

        let now = t0 + 200;
        let pruned = s.prune(now, 3).await.unwrap();
        // The retired link, the session, the short limit, and 5 of the 8 audit events.
        assert_eq!(pruned, 1 + 1 + 1 + 5, "{}", b.name);
        assert!(s.retired("jti-old").await.unwrap().is_none(), "{}", b.name);
        assert_eq!(s.live_reset("u1").await.unwrap().unwrap().jti, "jti-new", "{}", b.name);
        assert!(s.session(b"gone").await.unwrap().is_none(), "{}", b.name);
        assert!(s.session(b"kept").await.unwrap().is_some(), "{}", b.name);
        assert_eq!(s.recent_events(100).await.unwrap().len(), 3, "{}", b.name);
        let long: RateLimit = "1/1d".parse().unwrap();
        assert!(
            s.take(long, "limit:long", now).await.unwrap().is_err(),
            "{}: kept",
            b.name
        );

        // Soon after, another prune (another instance's) on a shared database leaves the work
        // to the first; a single sled process prunes what has run out since.
        s.put_session(b"gone-too", &session(now + 5)).await.unwrap();
        let again = s.prune(now + 10, 3).await.unwrap();
        match b.name {
            "postgres" => assert_eq!(again, 0, "pruned once per round, not once per instance"),
            _ => assert_eq!(again, 1, "{}", b.name),
        }
    }
}

/// Rekey's own connection to PostgreSQL over TLS: `verify-full` against the operator's CA
/// works (the server says the connection is encrypted), and a server whose certificate another
/// CA signed is refused in words that point at the setting to check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_over_tls_checks_the_server_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = rekey_testkit::TestCa::new(&dir.path().join("ca"));
    let stranger = rekey_testkit::TestCa::new(&dir.path().join("other"));
    let cluster = PgCluster::start_with_tls(&ca);
    let url = cluster.database("secure");
    let with_root =
        |ca: &rekey_testkit::TestCa| format!("{url}?sslmode=verify-full&sslrootcert={}", ca.ca_pem().display());

    let store = PgStore::connect(&with_root(&ca), 2).await.unwrap();
    store
        .create_user(&account("u1", "ada@example.com"), &event("account_created"))
        .await
        .unwrap();
    let encrypted = cluster.psql(
        "postgres",
        "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
         WHERE a.datname = 'secure' AND s.ssl",
    );
    assert!(encrypted.trim().parse::<u32>().unwrap() >= 1, "{encrypted}");

    let refused = PgStore::connect(&with_root(&stranger), 2).await.err().expect("refused");
    let words = refused.to_string();
    assert!(words.contains("TLS") && words.contains("sslrootcert"), "{words}");
    assert!(!words.contains(cluster.password()), "{words}");
}

/// Instances starting at the same moment on a fresh database agree: one schema, one mail
/// key, one install id, one set of signing keys (each writes its own if it finds none, and
/// all but one lose the race; the losers read the winner's).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_instances_starting_together_agree_on_one_identity() {
    let cluster = PgCluster::start();
    let url = cluster.database("together");
    let start = |i: usize| {
        let url = url.clone();
        async move {
            let store = PgStore::connect(&url, 2).await.unwrap();
            let id = store.install_id(&format!("install-{i}")).await.unwrap();
            (store, id)
        }
    };
    // (A connect's future is not one to spawn: six at once in this task.)
    let (a, b, c, d, e, f) = tokio::join!(start(0), start(1), start(2), start(3), start(4), start(5));
    let stores = [a, b, c, d, e, f];
    assert!(
        stores
            .windows(2)
            .all(|w| w[0].1 == w[1].1 && w[0].0.mail_key().derive(b"k") == w[1].0.mail_key().derive(b"k")),
        "one install id and one mail key"
    );
    // The race itself, many times: every instance writes a first value at once.
    for round in 0..40 {
        let name = format!("race-{round}");
        let values: Vec<String> = (0..6).map(|i| format!("value-{i}")).collect();
        let write = |i: usize| stores[i].0.secret(&name, &values[i]);
        let (a, b, c, d, e, f) = tokio::join!(write(0), write(1), write(2), write(3), write(4), write(5));
        let seen = [a.unwrap(), b.unwrap(), c.unwrap(), d.unwrap(), e.unwrap(), f.unwrap()];
        assert!(seen.windows(2).all(|w| w[0] == w[1]), "round {round}: {seen:?}");
    }
}
