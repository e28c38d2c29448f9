//! `cargo bench -p rekeyd --bench load`: a forgot-password flood against a release
//! `rekeyd serve` with its production settings (argon2id 19 MiB t=2, the default rate
//! limits), while other users go on resetting their passwords.
//!
//! - **The flood**: 64 keep-alive connections for 60 s (`REKEY_LOAD_SECS` to change), each
//!   request `POST /users/password/forgot` as if from a different machine behind the
//!   trusted proxy (a new `X-Forwarded-For` address every 25 requests, so each address
//!   crosses the 20-per-15-minutes client limit). Nine in ten ask for strangers' addresses;
//!   one in ten for 20 real accounts (the victims), whose mailboxes the address limit
//!   (3 per 15 minutes) must protect.
//! - **Meanwhile**: 4 users at a time ask for a reset from their own machine, wait for the
//!   mail, set a new password with the mailed token, and sign in with it.
//! - **Measured** every second: the server's memory (RSS), the intake queue and the outbox.
//!
//! It prints a table and checks, at the end, what a user would: every reset meanwhile
//! worked, no victim got more than its limit of mail, no client address got more than its
//! limit of answers, memory and queues stayed bounded. The same resets are first timed on
//! a quiet server for 10 s, so the flood's cost is a ratio measured in the same run.

#[path = "../tests/common/server.rs"]
mod server;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rekey_testkit::figures::record;
use rekey_testkit::SmtpCapture;
use reqwest::Client;
use serde_json::json;
use server::{read_gauge, Server, Setup};

const CONNECTIONS: usize = 64;
const VICTIMS: usize = 20;
/// Forgot requests sent from one client address before the flood moves to the next.
const PER_CLIENT: u64 = 25;
const CLIENT_LIMIT: u64 = 20;
const ADDRESS_LIMIT: usize = 3;
const RESETTERS: usize = 4;
const QUIET: Duration = Duration::from_secs(10);
const PASSWORD: &str = "quiet river under the old mill";

fn victim(i: usize) -> String {
    format!("victim-{i}@load.test")
}

fn resetter(i: usize) -> String {
    format!("user-{i}@load.test")
}

/// Reset tokens by recipient, read from the capture server by one watcher task.
type Tokens = Arc<Mutex<HashMap<String, Vec<String>>>>;

fn watch_mail(smtp: Arc<SmtpCapture>, tokens: Tokens, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<()> {
    tokio::task::spawn_blocking(move || {
        let mut seen = 0;
        while !stop.load(Ordering::Relaxed) {
            let mails = smtp.messages();
            for mail in mails.iter().skip(seen) {
                let text = mail.text.as_deref().unwrap_or("");
                if let Some(at) = text.find("rekey://reset?token=") {
                    let token = text[at + 20..].split_whitespace().next().unwrap_or("").to_string();
                    let to = mail.rcpt_to.first().cloned().unwrap_or_default();
                    tokens.lock().unwrap().entry(to).or_default().push(token);
                }
            }
            seen = mails.len();
            std::thread::sleep(Duration::from_millis(250));
        }
    })
}

/// What the resetting users saw.
#[derive(Default)]
struct Resets {
    done: u64,
    failed: Vec<String>,
    /// From the forgot request to the mail's arrival.
    mail_ms: Vec<f64>,
    /// The reset request itself (argon2 of the new password included).
    confirm_ms: Vec<f64>,
}

/// Users reset their passwords, `RESETTERS` at a time, until `stop`; each user once.
async fn reset_users(server: Arc<Server>, tokens: Tokens, next_user: Arc<AtomicU64>, stop: Arc<AtomicBool>) -> Resets {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..RESETTERS {
        let (server, tokens, next_user, stop) = (server.clone(), tokens.clone(), next_user.clone(), stop.clone());
        tasks.spawn(async move {
            let http = Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
            let mut seen = Resets::default();
            while !stop.load(Ordering::Relaxed) {
                let i = next_user.fetch_add(1, Ordering::Relaxed) as usize;
                match reset_one(&http, &server, &tokens, i, &mut seen).await {
                    Ok(()) => seen.done += 1,
                    Err(why) => seen.failed.push(format!("{}: {why}", resetter(i))),
                }
            }
            seen
        });
    }
    let mut all = Resets::default();
    while let Some(r) = tasks.join_next().await {
        let r = r.unwrap();
        all.done += r.done;
        all.failed.extend(r.failed);
        all.mail_ms.extend(r.mail_ms);
        all.confirm_ms.extend(r.confirm_ms);
    }
    all
}

async fn reset_one(http: &Client, server: &Server, tokens: &Tokens, i: usize, seen: &mut Resets) -> Result<(), String> {
    let email = resetter(i);
    let me = format!("192.0.2.{}", i % 250 + 1);
    let started = Instant::now();
    let r = http
        .post(server.url("/users/password/forgot"))
        .header("x-forwarded-for", &me)
        .json(&json!({ "email": email }))
        .send()
        .await
        .map_err(|e| format!("forgot: {e}"))?;
    if r.status() != 202 {
        return Err(format!("forgot answered {}", r.status()));
    }
    let token = loop {
        if let Some(t) = tokens.lock().unwrap().get(&email).and_then(|t| t.last().cloned()) {
            break t;
        }
        if started.elapsed() > Duration::from_secs(45) {
            return Err("no mail within 45 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    seen.mail_ms.push(started.elapsed().as_secs_f64() * 1000.0);
    let new_password = format!("a fresh passphrase for user {i}");
    let confirm = Instant::now();
    let r = http
        .post(server.url("/users/password/reset"))
        .header("x-forwarded-for", &me)
        .json(&json!({ "token": token, "new_password": new_password }))
        .send()
        .await
        .map_err(|e| format!("reset: {e}"))?;
    if r.status() != 204 {
        return Err(format!(
            "reset answered {}: {}",
            r.status(),
            r.text().await.unwrap_or_default()
        ));
    }
    seen.confirm_ms.push(confirm.elapsed().as_secs_f64() * 1000.0);
    let r = http
        .post(server.url("/sessions"))
        .header("x-forwarded-for", &me)
        .json(&json!({ "email": email, "password": new_password }))
        .send()
        .await
        .map_err(|e| format!("sign-in: {e}"))?;
    if r.status() != 200 {
        return Err(format!("sign-in with the new password answered {}", r.status()));
    }
    Ok(())
}

/// What the flood saw: answers by status, and 202s per client address.
#[derive(Default)]
struct Flood {
    statuses: BTreeMap<u16, u64>,
    accepted_per_client: HashMap<String, u64>,
    latencies_ms: Vec<f64>,
}

async fn flood(server: Arc<Server>, stop: Arc<AtomicBool>) -> Flood {
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..CONNECTIONS {
        let (server, stop) = (server.clone(), stop.clone());
        tasks.spawn(async move {
            let http = Client::builder()
                .pool_max_idle_per_host(1)
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap();
            let mut seen = Flood::default();
            let mut n: u64 = 0;
            while !stop.load(Ordering::Relaxed) {
                let client_no = n / PER_CLIENT;
                let client = format!("10.{}.{}.{}", c, client_no / 250, client_no % 250 + 1);
                let email = if n.is_multiple_of(10) {
                    victim((n as usize / 10 + c) % VICTIMS)
                } else {
                    format!("stranger-{c}-{n}@load.test")
                };
                let started = Instant::now();
                let status = match http
                    .post(server.url("/users/password/forgot"))
                    .header("x-forwarded-for", &client)
                    .json(&json!({ "email": email }))
                    .send()
                    .await
                {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let _ = r.bytes().await;
                        status
                    }
                    Err(_) => 0,
                };
                seen.latencies_ms.push(started.elapsed().as_secs_f64() * 1000.0);
                *seen.statuses.entry(status).or_default() += 1;
                if status == 202 {
                    *seen.accepted_per_client.entry(client).or_default() += 1;
                }
                n += 1;
            }
            seen
        });
    }
    let mut all = Flood::default();
    while let Some(f) = tasks.join_next().await {
        let f = f.unwrap();
        for (s, n) in f.statuses {
            *all.statuses.entry(s).or_default() += n;
        }
        for (c, n) in f.accepted_per_client {
            *all.accepted_per_client.entry(c).or_default() += n;
        }
        all.latencies_ms.extend(f.latencies_ms);
    }
    all
}

/// One reading of the server's memory and queues.
#[derive(Clone, Copy, Default)]
struct Reading {
    at_s: f64,
    rss_mib: f64,
    intake: u64,
    outbox: u64,
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

async fn read(http: &Client, server: &Server, t0: Instant) -> Reading {
    Reading {
        at_s: t0.elapsed().as_secs_f64(),
        rss_mib: rss_mib(server.pid().unwrap()),
        intake: read_gauge(http, server, "rekey_intake_depth").await,
        outbox: read_gauge(http, server, "rekey_outbox_depth").await,
    }
}

fn pct(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// Creates the accounts as their owners would: ask, then open the mailed link.
fn register_all(server: &Server, smtp: &SmtpCapture, emails: Vec<String>) {
    tokio::task::block_in_place(|| server.create_accounts(Some(smtp), &emails, PASSWORD));
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let flood_for = Duration::from_secs(
        std::env::var("REKEY_LOAD_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60),
    );
    let started = Instant::now();
    let smtp = Arc::new(SmtpCapture::start());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let setup = Setup {
        binary: Some(env!("CARGO_BIN_EXE_rekeyd").into()),
        ..Setup::default()
    }
    .with("REKEY_ARGON2_MEMORY_KIB", "19456")
    .with("REKEY_ARGON2_ITERATIONS", "2")
    .with("REKEY_TRUSTED_PROXIES", "127.0.0.1")
    .with("REKEY_LIMIT_ADDRESS", "3/15m")
    .with("REKEY_LIMIT_CLIENT", "20/15m")
    .with("REKEY_LIMIT_REGISTER_CLIENT", "off")
    .with("REKEY_SMTP_POOL_SIZE", "4");
    let setup = match std::env::var("LOAD_ARENAS") {
        Ok(n) => setup.with("MALLOC_ARENA_MAX", n),
        Err(_) => setup,
    };
    let server = Arc::new(Server::start(&data, Some(&smtp), setup));
    println!(
        "rekeyd load bench: {CONNECTIONS} connections for {} s; argon2id m=19456 KiB t=2; limits 3/15m per address, 20/15m per client",
        flood_for.as_secs()
    );
    // More users than the run can reach (about 7 resets a second when quiet, fewer during
    // the flood), each used once: the address limit is per user.
    let users = 150 + 12 * flood_for.as_secs() as usize;
    register_all(
        &server,
        &smtp,
        (0..VICTIMS).map(victim).chain((0..users).map(resetter)).collect(),
    );
    println!(
        "registered {} accounts in {:.1} s",
        VICTIMS + users,
        started.elapsed().as_secs_f64()
    );

    let tokens: Tokens = Arc::default();
    let stop_watch = Arc::new(AtomicBool::new(false));
    let watcher = watch_mail(smtp.clone(), tokens.clone(), stop_watch.clone());
    let next_user = Arc::new(AtomicU64::new(0));
    let http = Client::new();

    // 1. The same resets on a quiet server: the baseline.
    let stop = Arc::new(AtomicBool::new(false));
    let quiet = tokio::spawn(reset_users(
        server.clone(),
        tokens.clone(),
        next_user.clone(),
        stop.clone(),
    ));
    tokio::time::sleep(QUIET).await;
    stop.store(true, Ordering::Relaxed);
    let quiet = quiet.await.unwrap();
    let t0 = Instant::now();
    let before = read(&http, &server, t0).await;

    // 2. The flood, with the resets going on and a reading every second.
    let stop = Arc::new(AtomicBool::new(false));
    let flooding = tokio::spawn(flood(server.clone(), stop.clone()));
    let resetting = tokio::spawn(reset_users(
        server.clone(),
        tokens.clone(),
        next_user.clone(),
        stop.clone(),
    ));
    let mut readings = vec![before];
    let t0 = Instant::now();
    while t0.elapsed() < flood_for {
        tokio::time::sleep(Duration::from_secs(1)).await;
        readings.push(read(&http, &server, t0).await);
    }
    stop.store(true, Ordering::Relaxed);
    let flood = flooding.await.unwrap();
    let during = resetting.await.unwrap();
    let flood_secs = t0.elapsed().as_secs_f64();

    // 3. The queues drain.
    let drain_started = Instant::now();
    let mut drained = read(&http, &server, t0).await;
    while (drained.intake > 0 || drained.outbox > 0) && drain_started.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        drained = read(&http, &server, t0).await;
    }
    let drain_secs = drain_started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop_watch.store(true, Ordering::Relaxed);
    watcher.await.unwrap();

    // What a user would check.
    let tokens = tokens.lock().unwrap();
    let victim_mail: Vec<usize> = (0..VICTIMS)
        .map(|i| tokens.get(&victim(i)).map_or(0, Vec::len))
        .collect();
    let stranger_mail = tokens.keys().filter(|k| k.starts_with("stranger")).count();
    let most_per_client = flood.accepted_per_client.values().copied().max().unwrap_or(0);
    let total: u64 = flood.statuses.values().sum();
    let statuses: Vec<String> = flood.statuses.iter().map(|(s, n)| format!("{s}×{n}")).collect();
    let rss: Vec<f64> = readings.iter().map(|r| r.rss_mib).collect();
    let max_rss = rss.iter().copied().fold(0.0, f64::max);
    let half = readings.len() / 2;
    let rss_first_half = readings[..half].iter().map(|r| r.rss_mib).fold(0.0, f64::max);
    let max_intake = readings.iter().map(|r| r.intake).max().unwrap_or(0);
    let max_outbox = readings.iter().map(|r| r.outbox).max().unwrap_or(0);

    println!("\nreadings (every 5 s): t, RSS MiB, intake, outbox");
    for r in readings.iter().step_by(5) {
        println!(
            "  {:>5.1} s  {:>7.1}  {:>6}  {:>6}",
            r.at_s, r.rss_mib, r.intake, r.outbox
        );
    }
    println!("\n| figure | value | baseline | ratio |");
    println!("|---|---|---|---|");
    let row = |figure: &str, value: String, baseline: String, ratio: Option<f64>| {
        let r = ratio.map(|r| format!("{r:.2}×")).unwrap_or_default();
        println!("| {figure} | {value} | {baseline} | {r} |");
        record("load", figure, &value, &baseline, ratio);
    };
    row(
        "forgot flood, 64 connections",
        format!("{:.0} req/s ({})", total as f64 / flood_secs, statuses.join(" ")),
        String::new(),
        None,
    );
    row(
        "forgot flood latency p50 / p99",
        format!(
            "{:.1} / {:.1} ms",
            pct(&flood.latencies_ms, 0.5),
            pct(&flood.latencies_ms, 0.99)
        ),
        String::new(),
        None,
    );
    row(
        "resets completed meanwhile",
        format!(
            "{} ({:.2}/s), {} failed",
            during.done,
            during.done as f64 / flood_secs,
            during.failed.len()
        ),
        format!(
            "quiet {} ({:.2}/s)",
            quiet.done,
            quiet.done as f64 / QUIET.as_secs_f64()
        ),
        Some((during.done as f64 / flood_secs) / (quiet.done as f64 / QUIET.as_secs_f64())),
    );
    row(
        "reset confirm p50 during the flood",
        format!("{:.0} ms", pct(&during.confirm_ms, 0.5)),
        format!("quiet {:.0} ms", pct(&quiet.confirm_ms, 0.5)),
        Some(pct(&during.confirm_ms, 0.5) / pct(&quiet.confirm_ms, 0.5)),
    );
    row(
        "forgot → mail arrives, p50 / max, during the flood",
        format!("{:.0} / {:.0} ms", pct(&during.mail_ms, 0.5), pct(&during.mail_ms, 1.0)),
        format!(
            "quiet {:.0} / {:.0} ms",
            pct(&quiet.mail_ms, 0.5),
            pct(&quiet.mail_ms, 1.0)
        ),
        Some(pct(&during.mail_ms, 0.5) / pct(&quiet.mail_ms, 0.5)),
    );
    row(
        "server RSS: start / max in first half / max",
        format!("{:.0} / {rss_first_half:.0} / {max_rss:.0} MiB", before.rss_mib),
        String::new(),
        Some(max_rss / rss_first_half),
    );
    row(
        "queue high-water: intake / outbox",
        format!("{max_intake} / {max_outbox}; drained in {drain_secs:.1} s"),
        String::new(),
        None,
    );
    row(
        "mail per victim (limit 3)",
        format!(
            "max {}, total {}",
            victim_mail.iter().max().unwrap(),
            victim_mail.iter().sum::<usize>()
        ),
        String::new(),
        None,
    );
    row(
        "202s per client address (limit 20)",
        format!(
            "max {most_per_client} over {} addresses",
            flood.accepted_per_client.len()
        ),
        String::new(),
        None,
    );
    println!("\n(total {:.0} s)", started.elapsed().as_secs_f64());

    let mut problems = Vec::new();
    if !during.failed.is_empty() || !quiet.failed.is_empty() {
        problems.push(format!(
            "resets failed: {:?}",
            during.failed.iter().chain(&quiet.failed).take(5).collect::<Vec<_>>()
        ));
    }
    if during.done == 0 {
        problems.push("no reset completed during the flood".into());
    }
    if victim_mail.iter().any(|&n| n > ADDRESS_LIMIT) {
        problems.push(format!("a victim got more than {ADDRESS_LIMIT} mails: {victim_mail:?}"));
    }
    if stranger_mail > 0 {
        problems.push(format!("{stranger_mail} strangers' addresses got mail"));
    }
    if most_per_client > CLIENT_LIMIT {
        problems.push(format!(
            "a client address got {most_per_client} answers past its limit of {CLIENT_LIMIT}"
        ));
    }
    if flood.statuses.keys().any(|s| ![202, 429, 503].contains(s)) {
        problems.push(format!("unexpected answers: {}", statuses.join(" ")));
    }
    if drained.intake > 0 || drained.outbox > 0 {
        problems.push(format!(
            "queues did not drain: intake {}, outbox {}",
            drained.intake, drained.outbox
        ));
    }
    // Bounded memory: the second half of the run may not keep growing past the first's peak
    // by more than the page cache's size (64 MiB) plus a margin.
    if max_rss > rss_first_half + 96.0 {
        problems.push(format!(
            "memory kept growing: {rss_first_half:.0} MiB → {max_rss:.0} MiB"
        ));
    }
    if problems.is_empty() {
        println!("all checks held");
    } else {
        for p in &problems {
            println!("!! {p}");
        }
        std::process::exit(1);
    }
}
