//! Crash safety: `rekeyd serve` under a mixed load (register, sign in, forgot, reset), killed
//! with SIGKILL at random moments and restarted on the same data directory, with one real SMTP
//! capture server for the whole run.
//!
//! Client threads each own their accounts, so every account's password history is known
//! without races. Each thread keeps a ledger of what the server *answered*; a request whose
//! answer never arrived is "in flight" (its outcome is settled after the restart). After every
//! restart the ledger is checked against the server and the captured mail:
//!
//! * every registered account signs in with its latest confirmed password (or, when a reset was
//!   in flight at the kill, with the old or the new one, and the ledger learns which);
//! * every token that got 204 is refused when used again; no token gets 204 twice in the run;
//! * every forgot answered 202 for a known address has its own mail (distinct reset tokens
//!   delivered to an address ≥ forgots answered for it); forgots for unknown addresses never
//!   produce mail; mail delivered twice is counted as a duplicate, not a failure;
//! * the server comes back up each time.
//!
//! At the end: a clean restart, a full check, a bounded wait for every expected mail, SIGTERM,
//! and offline admin commands on the data directory; then a table of counts.
//!
//! `REKEY_CRASH_KILLS` (default 25) sets the number of kills, `REKEY_CRASH_SEED` replays a run
//! (the seed is printed), `REKEY_CRASH_BINARY` runs it against another `rekeyd`. The full run:
//! `REKEY_CRASH_KILLS=200 cargo test --release -p rekeyd --test crash -- --nocapture`.

mod common;

// The harness's parts live in tests/crash/ (not test targets of their own). A crate root looks
// for `mod x;` next to itself (tests/x.rs), hence the paths.
#[path = "crash/check.rs"]
mod check;
#[path = "crash/http.rs"]
mod http;
#[path = "crash/ledger.rs"]
mod ledger;
#[path = "crash/load.rs"]
mod load;
#[path = "crash/mailbox.rs"]
mod mailbox;
#[path = "crash/proc.rs"]
mod proc;
#[path = "crash/rng.rs"]
mod rng;

use std::collections::HashMap;
use std::fs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use check::wait_for_mail;
use ledger::{Account, Registered, Shared, Stats, Tally, KINDS};
use load::Client;
use mailbox::Mailbox;
use proc::{admin, tail, Fleet, Site};
use rekey_testkit::SmtpCapture;
use rng::Rng;
use serde_json::Value;

/// Client threads running the load.
const THREADS: usize = 4;
/// How long, after a restart, every answered forgot may take to have its mail.
const MAIL_WAIT: Duration = Duration::from_secs(30);
/// The same after the final clean restart.
const FINAL_MAIL_WAIT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// The run

/// Runs `f` on every client in its own thread; returns them in order.
fn in_threads(clients: Vec<Client>, f: impl Fn(&mut Client) + Send + Sync + Clone + 'static) -> Vec<Client> {
    let handles: Vec<_> = clients
        .into_iter()
        .map(|mut c| {
            let f = f.clone();
            thread::spawn(move || {
                f(&mut c);
                c
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("a client thread"))
        .collect()
}

fn env_u64(key: &str) -> Option<u64> {
    std::env::var(key).ok().map(|v| {
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{key}={v:?} is not a number"))
    })
}

fn millis(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

#[test]
fn answered_requests_survive_sigkill_at_random_moments() {
    let dir = tempfile::Builder::new().prefix("rekey-crash-").tempdir().unwrap();
    let site = Site {
        data: vec![dir.path().join("data")],
        database: None,
    };
    run_harness(dir.path(), &site, 25, 1, MAIL_WAIT);
}

/// The same against three instances on one PostgreSQL, every one killed at once (a power
/// cut). After a restart, what the dead instances had claimed waits for its leases (requests
/// 15 s, mail 30 s with the harness's 5 s mail timeout): a longer wait for mail, fewer kills,
/// longer load between them.
#[test]
fn answered_requests_survive_sigkill_of_three_instances_on_postgresql() {
    let dir = tempfile::Builder::new().prefix("rekey-crash-pg-").tempdir().unwrap();
    let cluster = rekey_testkit::PgCluster::start();
    let site = Site {
        data: (0..3).map(|i| dir.path().join(format!("node{i}"))).collect(),
        database: Some(cluster.database("rekey")),
    };
    run_harness(dir.path(), &site, 10, 4, Duration::from_secs(75));
}

/// `load_scale` stretches each round's load before its kill: three instances sharing a
/// database and two cores answer more slowly, and the run must still get as far as resets.
fn run_harness(dir: &std::path::Path, site: &Site, default_kills: u64, load_scale: u64, mail_wait: Duration) {
    let run_started = Instant::now();
    let kills = env_u64("REKEY_CRASH_KILLS").unwrap_or(default_kills);
    let seed = env_u64("REKEY_CRASH_SEED").unwrap_or_else(|| {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64;
        Rng(nanos ^ u64::from(std::process::id())).next()
    });
    println!("crash: {kills} kills, seed {seed} (replay the choices with REKEY_CRASH_SEED={seed})");

    let smtp = SmtpCapture::start();
    let log = dir.join("rekeyd.log");
    let shared = Arc::new(Shared {
        mailbox: Mailbox::new(&smtp),
        accepted: Mutex::new(HashMap::new()),
    });
    let mut rng = Rng(seed);
    let mut clients: Vec<Client> = (0..THREADS).map(|i| Client::new(i, seed)).collect();
    let mut done = 0u64;
    let mut startup_kills = 0u64;
    let mut startups: Vec<Duration> = Vec::new();

    let problems = |clients: &mut Vec<Client>, extra: Vec<String>, when: &str| {
        let mut all: Vec<String> = clients.iter_mut().flat_map(|c| c.failures.drain(..)).collect();
        all.extend(extra);
        if !all.is_empty() {
            panic!(
                "crash harness (seed {seed}) {when}: {} problem(s):\n  {}\nrekeyd log (tail):\n{}",
                all.len(),
                all.join("\n  "),
                tail(&log)
            );
        }
    };

    while done < kills {
        let mut proc = Fleet::spawn(site, &smtp, &log);
        if done > 0 && rng.chance(0.15) {
            // A kill while the server is still starting (opening sled, recovering).
            thread::sleep(Duration::from_millis(rng.range(0, 60)));
            proc.kill();
            done += 1;
            startup_kills += 1;
            continue;
        }
        let up = proc.wait_healthy(&log);
        if done > 0 {
            startups.push(up);
        }
        // Check the ledger against the restarted server.
        let bases: Vec<String> = (0..THREADS).map(|i| proc.base(i)).collect();
        let sh = shared.clone();
        clients = in_threads(clients, move |c| c.check(&bases[c.id()], false, &sh));
        let short = wait_for_mail(&clients, &shared, mail_wait);
        problems(&mut clients, short, &format!("after restart {done}"));

        // Load, then SIGKILL at a random moment.
        let delay = load_scale
            * if rng.chance(0.25) {
                rng.range(20, 100)
            } else {
                rng.range(100, 800)
            };
        let stop = Arc::new(AtomicBool::new(false));
        let handles: Vec<_> = clients
            .into_iter()
            .map(|mut c| {
                let (base, stop, sh) = (proc.base(c.id()), stop.clone(), shared.clone());
                thread::spawn(move || {
                    c.load(&base, &stop, &sh);
                    c
                })
            })
            .collect();
        thread::sleep(Duration::from_millis(delay));
        proc.kill();
        stop.store(true, Ordering::SeqCst);
        clients = handles
            .into_iter()
            .map(|h| h.join().expect("a client thread"))
            .collect();
        done += 1;
        if done.is_multiple_of(25) {
            println!("crash: {done} kills, {:.0?}", run_started.elapsed());
        }
    }

    // A clean restart: settle everything, check every account and every used token.
    let mut proc = Fleet::spawn(site, &smtp, &log);
    startups.push(proc.wait_healthy(&log));
    let bases: Vec<String> = (0..THREADS).map(|i| proc.base(i)).collect();
    let sh = shared.clone();
    clients = in_threads(clients, move |c| c.check(&bases[c.id()], true, &sh));
    let short = wait_for_mail(&clients, &shared, FINAL_MAIL_WAIT.max(mail_wait));
    problems(&mut clients, short, "after the final restart");
    if site.database.is_some() {
        // Mail a killed instance had sent but not yet written down stays claimed until its
        // lease ends, then goes again (a duplicate, as at-least-once allows): the queue is
        // empty once those leases are over. (A sled store is locked while it serves.)
        let deadline = Instant::now() + mail_wait;
        let depth = || {
            let status: Value = serde_json::from_str(&admin(site, &["outbox", "status", "--json"])).unwrap();
            status["depth"].as_u64().unwrap_or(u64::MAX)
        };
        while depth() > 0 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(500));
        }
    }
    let status = proc.terminate();
    assert!(status.success(), "rekeyd serve stopped with {status}:\n{}", tail(&log));

    // The data directory opens offline, without repair, and holds what the ledger says.
    let users: Value = serde_json::from_str(&admin(site, &["users", "list", "--json"])).unwrap();
    let listed = users.as_array().map_or(0, Vec::len) as u64;
    let outbox: Value = serde_json::from_str(&admin(site, &["outbox", "status", "--json"])).unwrap();

    let mut stats = Stats::default();
    for c in &clients {
        stats.merge(&c.stats);
    }
    let registered = clients
        .iter()
        .flat_map(|c| c.accounts.iter())
        .filter(|a| a.registered == Registered::Yes)
        .count() as u64;
    let log_text = fs::read_to_string(&log).unwrap_or_default();
    let log_errors = log_text.lines().filter(|l| l.contains("ERROR")).count();
    let log_warnings = log_text.lines().filter(|l| l.contains("WARN")).count();
    let mut extra_problems = Vec::new();
    if log_text.contains("panicked") {
        extra_problems.push("rekeyd panicked (see the log below)".to_string());
    }
    if listed != registered {
        extra_problems.push(format!(
            "`rekeyd users list` shows {listed} accounts, the ledger {registered}"
        ));
    }
    if outbox["depth"].as_u64() != Some(0) || outbox["dead"].as_u64() != Some(0) {
        extra_problems.push(format!("the outbox is not empty after the drain: {outbox}"));
    }
    problems(&mut clients, extra_problems, "at the end");
    let accounts: Vec<&Account> = clients.iter().flat_map(|c| c.accounts.iter()).collect();

    let index = shared.mailbox.refresh();
    let expected: u64 = accounts.iter().map(|a| u64::from(a.forgots_answered)).sum();
    let in_flight_forgots: u64 = accounts.iter().map(|a| u64::from(a.forgots_in_flight)).sum();
    let delivered: u64 = index.resets.values().map(|v| v.len() as u64).sum();
    let lost: u64 = accounts
        .iter()
        .map(|a| u64::from(a.forgots_answered).saturating_sub(index.distinct_tokens(&a.email) as u64))
        .sum();
    let extra: u64 = accounts
        .iter()
        .map(|a| (index.distinct_tokens(&a.email) as u64).saturating_sub(u64::from(a.forgots_answered)))
        .sum();
    let twice = shared.accepted.lock().unwrap().values().filter(|&&n| n > 1).count();
    let reused: u64 = stats.kinds.get("token reuse").map_or(0, |t| t.answered);
    let reuse_refused: u64 = stats.reuse_refusals.values().sum();
    startups.sort();
    let median = startups[startups.len() / 2];
    let max = *startups.last().unwrap();
    let elapsed = run_started.elapsed();

    let mut table = String::new();
    let mut line = |s: String| {
        table.push_str(&s);
        table.push('\n');
    };
    line(format!(
        "crash harness: seed {seed}, {THREADS} client threads, {} on {}, run time {elapsed:.1?}",
        if site.data.len() == 1 {
            "one rekeyd".to_string()
        } else {
            format!("{} rekeyd", site.data.len())
        },
        if site.database.is_some() { "PostgreSQL" } else { "sled" }
    ));
    line(format!(
        "  kills (SIGKILL)          {done} ({startup_kills} during startup), restarts {}",
        done + 1
    ));
    line(format!(
        "  {:<22} {:>8} {:>9} {:>10}",
        "request", "sent", "answered", "in flight"
    ));
    let mut totals = Tally::default();
    for kind in KINDS {
        let t = stats.kinds.get(kind).copied().unwrap_or_default();
        totals.sent += t.sent;
        totals.answered += t.answered;
        totals.in_flight += t.in_flight;
        line(format!(
            "  {kind:<22} {:>8} {:>9} {:>10}",
            t.sent, t.answered, t.in_flight
        ));
    }
    line(format!(
        "  {:<22} {:>8} {:>9} {:>10}",
        "total", totals.sent, totals.answered, totals.in_flight
    ));
    line(format!(
        "  accounts                 {registered} registered ({} settled after an in-flight register, {} not created); `users list` shows {listed}",
        stats.registers_settled_yes, stats.registers_settled_no
    ));
    line(format!(
        "  reset mail               expected {expected}, delivered {delivered} distinct, extra {extra} (forgots in flight: {in_flight_forgots}), lost {lost}"
    ));
    line(format!(
        "  duplicates               {} mail(s) with a Message-ID seen before ({} reset tokens delivered twice)",
        index.duplicate_messages(),
        index.duplicate_tokens()
    ));
    line(format!(
        "  other mail               {} password-changed notices, {} to addresses without an account; {} messages in all",
        index.notices,
        index.strays.len(),
        index.total()
    ));
    line(format!(
        "  resets                   {} confirmed (204), {} applied while in flight, {} in flight not applied; refused {:?}",
        stats.resets_confirmed, stats.resets_applied_in_flight, stats.resets_not_applied_in_flight, stats.reset_refusals
    ));
    line(format!(
        "  tokens reused            {reused}, refused {reuse_refused} {:?}, accepted twice {twice}",
        stats.reuse_refusals
    ));
    line(format!(
        "  startup after kill       median {}, max {} ({} restarts measured)",
        millis(median),
        millis(max),
        startups.len()
    ));
    line(format!(
        "  ledger checks            {} sign-ins after restarts",
        stats.check_sign_ins
    ));
    line(format!(
        "  server log               {log_errors} ERROR and {log_warnings} WARN lines over all runs, no panic"
    ));
    print!("{table}");

    use rekey_testkit::figures::record;
    let g = if site.database.is_some() {
        "crash (PostgreSQL, 3 instances)"
    } else {
        "crash"
    };
    record(
        g,
        "kills",
        &format!("{done}"),
        &format!("{startup_kills} during startup"),
        None,
    );
    record(
        g,
        "requests answered",
        &format!("{}", totals.answered),
        &format!("{} sent, {} in flight at a kill", totals.sent, totals.in_flight),
        Some(totals.answered as f64 / totals.sent.max(1) as f64),
    );
    record(
        g,
        "reset mail delivered",
        &format!("{delivered}"),
        &format!("{expected} expected"),
        Some(delivered as f64 / expected.max(1) as f64),
    );
    record(
        g,
        "duplicate mail",
        &format!("{}", index.duplicate_messages()),
        "",
        None,
    );
    record(g, "extra reset mail", &format!("{extra}"), "forgots in flight", None);
    record(g, "resets confirmed", &format!("{}", stats.resets_confirmed), "", None);
    record(
        g,
        "tokens reused and refused",
        &format!("{reuse_refused}"),
        &format!("{reused} reused"),
        None,
    );
    record(g, "tokens accepted twice", &format!("{twice}"), "", None);
    record(g, "startup after kill (median)", &millis(median), "", None);
    record(g, "startup after kill (max)", &millis(max), "", None);
    record(g, "run time", &format!("{:.1} s", elapsed.as_secs_f64()), "", None);

    // What a user would check.
    assert!(
        expected > 0 && stats.resets_confirmed > 0,
        "the load did little:\n{table}"
    );
    assert!(delivered >= expected, "answered forgots lost their mail:\n{table}");
    assert_eq!(twice, 0, "a token was accepted twice:\n{table}");
    assert_eq!(reuse_refused, reused, "a reused token was not refused:\n{table}");
}
