//! `cargo bench -p rekeyd --bench http`: the HTTP service under load, as figures next to
//! the bare operation each one is built on, measured in the same run (the machine is shared
//! and noisy, so absolute numbers mean little; ratios measured side by side do).
//!
//! A release `rekeyd serve` with the production argon2id parameters (19 MiB, t=2, p=1) and
//! the rate limits raised out of the way, delivering mail to the loopback SMTP capture server:
//!
//! 1. `POST /users/password/forgot` with 16 and 64 keep-alive connections (known and unknown
//!    addresses mixed) against `GET /healthz` with the same connections: the bare HTTP round
//!    trip. forgot writes an intake record and flushes sled (fsync); healthz writes nothing.
//!    Mail goes out meanwhile; the bench counts it and times the outbox drain.
//! 2. `POST /users/password/reset` with tokens taken from real reset mail, against one bare
//!    argon2id hash in this process (single, and one per core in parallel).
//! 3. forgot at 16 connections while 64 connections flood sign-ins with wrong passwords:
//!    argon2 runs off the async threads, so forgot should stay fast.
//!
//! No assertions on speed: it prints a table.

#[path = "common/flood.rs"]
mod flood;
#[path = "../tests/common/server.rs"]
mod server;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use flood::{batch, client, flood, Run, Table};
use rekey_testkit::SmtpCapture;
use reqwest::{Client, RequestBuilder};
use serde_json::json;
use server::{Server, Setup};

const WARMUP: Duration = Duration::from_secs(1);
const MEASURE: Duration = Duration::from_secs(8);
const MIXED_MEASURE: Duration = Duration::from_secs(5);
/// Accounts the forgot flood asks for (the other addresses are unknown).
const KNOWN: usize = 50;
/// One forgot in this many is for a known account (and so becomes a mail). The loopback
/// SMTP server takes well under 100 mails/s, so more known addresses would leave a backlog
/// that cannot drain within the bench's time.
const KNOWN_EVERY: u64 = 32;
/// Accounts reset with 16 connections, and reset one at a time.
const RESETS: usize = 128;
const RESETS_SERIAL: usize = 16;
const PASSWORD: &str = "quiet river under the old mill";
const DRAIN_LIMIT: Duration = Duration::from_secs(30);

/// Mails the capture server stored so far. Counts the files instead of parsing them all
/// (what `messages().len()` would do), since thousands pile up.
fn mail_count(smtp: &SmtpCapture) -> usize {
    std::fs::read_dir(smtp.dir().join("mail"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_str().is_some_and(|n| n.ends_with(".json")))
                .count()
        })
        .unwrap_or(0)
}

/// `rekey_outbox_depth` from `/metrics`.
async fn outbox_depth(http: &Client, server: &Server) -> Option<u64> {
    let text = http.get(server.metrics_url()).send().await.ok()?.text().await.ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("rekey_outbox_depth "))
        .and_then(|v| v.trim().parse().ok())
}

/// Waits (up to `DRAIN_LIMIT`) until `expected` mails have arrived and the outbox is empty;
/// returns the time it took, or `None` if it did not drain.
async fn drain(http: &Client, server: &Server, smtp: &SmtpCapture, expected: usize) -> Option<Duration> {
    let start = Instant::now();
    loop {
        let depth = outbox_depth(http, server).await;
        if mail_count(smtp) >= expected && depth == Some(0) {
            return Some(start.elapsed());
        }
        if start.elapsed() > DRAIN_LIMIT {
            println!(
                "  outbox did not drain in {DRAIN_LIMIT:?}: {} of {expected} mails, depth {depth:?}",
                mail_count(smtp)
            );
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The release `rekeyd` next to this bench (`target/release/deps/http-…` → `target/release/rekeyd`),
/// built first if it is missing.
fn rekeyd_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let binary = exe.parent().unwrap().parent().unwrap().join("rekeyd");
    if !binary.exists() {
        let status = std::process::Command::new(env!("CARGO"))
            .args(["build", "--release", "-p", "rekeyd"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cargo runs");
        assert!(status.success(), "cargo build --release -p rekeyd failed");
    }
    binary
}

/// The token from the mail's deep link (as in tests/serve.rs).
fn token_in(text: &str) -> Option<String> {
    let at = text.find("rekey://reset?token=")? + "rekey://reset?token=".len();
    text[at..].split_whitespace().next().map(str::to_string)
}

fn known(i: usize) -> String {
    format!("known-{i}@bench.test")
}

fn to_reset(i: usize) -> String {
    format!("reset-{i}@bench.test")
}

/// A forgot for a known account every `KNOWN_EVERY` requests, otherwise a never-seen address.
fn forgot(http: &Client, url: &str, n: u64) -> RequestBuilder {
    let email = if n.is_multiple_of(KNOWN_EVERY) {
        known((n / KNOWN_EVERY) as usize % KNOWN)
    } else {
        format!("nobody-{n}@bench.test")
    };
    http.post(url).json(&json!({ "email": email }))
}

/// Known-address forgots answered 202 in a run, warm-up included: each one becomes a mail.
fn known_accepted(run: &Run) -> usize {
    run.sent
        .iter()
        .filter(|(n, s)| n % KNOWN_EVERY == 0 && *s == 202)
        .count()
}

/// One bare argon2id hash at the server's parameters (what `rekey-core` computes, without
/// the PHC string around it).
fn argon2_hash() {
    use argon2::{Algorithm, Argon2, Params, Version};
    let params = Params::new(19456, 2, 1, None).unwrap();
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let mut out = [0u8; 32];
    argon
        .hash_password_into(b"benchmark passphrase number 0 ok", b"sixteen byte salt", &mut out)
        .unwrap();
    std::hint::black_box(out);
}

/// Seconds taken by each of `n` single hashes, one after another.
fn bare_single(n: usize) -> Vec<f64> {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            argon2_hash();
            t.elapsed().as_secs_f64()
        })
        .collect()
}

/// Hashes per second with `threads` threads hashing `per_thread` each at once.
fn bare_parallel(threads: usize, per_thread: usize) -> f64 {
    let t = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| (0..per_thread).for_each(|_| argon2_hash()));
        }
    });
    (threads * per_thread) as f64 / t.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let started = Instant::now();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let binary = rekeyd_binary();
    let smtp = SmtpCapture::start();
    let dir = tempfile::tempdir().unwrap();
    // The harness sets cheap argon2 for tests: put the production parameters back, and lift
    // the rate limits so the flood measures the server, not the limiter.
    let setup = Setup {
        binary: Some(binary.clone()),
        ..Setup::default()
    }
    .with("REKEY_ARGON2_MEMORY_KIB", "19456")
    .with("REKEY_ARGON2_ITERATIONS", "2")
    .with("REKEY_LIMIT_CLIENT", "1000000/1m")
    .with("REKEY_LIMIT_ADDRESS", "1000000/1m")
    .with("REKEY_LIMIT_SIGNIN_CLIENT", "1000000/1m")
    .with("REKEY_LIMIT_SIGNIN_SPRAY", "1000000/1m")
    .with("REKEY_LIMIT_REGISTER_CLIENT", "off")
    .with("REKEY_LIMIT_SIGNIN_ACCOUNT", "1000000/1m")
    // Every flood comes from this one machine: its 64 connections are one client's.
    .with("REKEY_MAX_CONNECTIONS_PER_CLIENT", "256");
    // REKEY_BENCH_ONLY=known runs only the known-against-unknown phase (to profile it).
    let only_known = std::env::var("REKEY_BENCH_ONLY").is_ok_and(|v| v == "known");
    let server = Server::start(&dir.path().join("data"), Some(&smtp), setup);
    let http = client();
    println!(
        "rekeyd http bench: {} on {cores} cores; argon2id m=19456 KiB t=2 p=1; mail to the loopback SMTP capture server",
        binary.display()
    );

    let mut table = Table::new("http");
    if !only_known {
        // Accounts: 50 the forgot flood asks for, and fresh ones for the reset phase (so no
        // earlier reset mail for them is in flight).
        let users = server.url("/users");
        let jobs: Vec<_> = (0..KNOWN)
            .map(known)
            .chain((0..RESETS + RESETS_SERIAL).map(to_reset))
            .map(|email| {
                let users = users.clone();
                move |c: &Client| c.post(users).json(&json!({ "email": email, "password": PASSWORD }))
            })
            .collect();
        let (run, _) = batch(16, jobs).await;
        run.print("POST /users (register, one argon2 hash each)");
        // Each account is finished by the link in its mail.
        let emails: Vec<String> = (0..KNOWN)
            .map(known)
            .chain((0..RESETS + RESETS_SERIAL).map(to_reset))
            .collect();
        tokio::task::block_in_place(|| server.verify_all(Some(&smtp), &emails, PASSWORD));

        // 1. forgot vs healthz, 16 then 64 connections.
        println!("\nforgot vs healthz ({WARMUP:?} warm-up, {MEASURE:?} measured; 1 in {KNOWN_EVERY} forgots is for a known account)");
        let mut forgot16 = None;
        for conns in [16, 64] {
            let url = server.url("/healthz");
            let health = flood(conns, WARMUP, MEASURE, move |c, _| c.get(&url)).await;
            health.print(&format!("GET /healthz, {conns} conns (no disk write)"));

            let before = mail_count(&smtp);
            let url = server.url("/users/password/forgot");
            let run = flood(conns, WARMUP, MEASURE, move |c, n| forgot(c, &url, n)).await;
            let during = mail_count(&smtp) - before;
            let depth = outbox_depth(&http, &server).await;
            run.print(&format!("POST forgot, {conns} conns (sled insert + fsync)"));
            if run.statuses.keys().any(|s| *s != 202) {
                println!("  !! forgot answered something other than 202: {}", run.statuses());
            }
            let expected_new = known_accepted(&run);
            let drained = drain(&http, &server, &smtp, before + expected_new).await;
            let after = mail_count(&smtp) - before;
            println!(
                "  mail: {during} delivered during the flood (outbox depth {depth:?} at its end), {after} in all after the drain ({expected_new} expected); drain took {}",
                drained.map_or("over 30 s".to_string(), |d| format!("{:.1} s", d.as_secs_f64()))
            );

            table.row(
                &format!("forgot req/s, {conns} conns"),
                run.rps(),
                health.rps(),
                "req/s",
                "healthz",
            );
            table.row(
                &format!("forgot p50, {conns} conns"),
                run.pct(0.5),
                health.pct(0.5),
                "ms",
                "healthz",
            );
            table.row(
                &format!("forgot p99, {conns} conns"),
                run.pct(0.99),
                health.pct(0.99),
                "ms",
                "healthz",
            );
            table.note(
                &format!("mail after forgot, {conns} conns"),
                format!(
                    "{during} during + {} after; drain {}",
                    after - during,
                    drained.map_or("> 30 s".to_string(), |d| format!("{:.1} s", d.as_secs_f64()))
                ),
            );
            if conns == 16 {
                forgot16 = Some(run);
            }
        }
        let forgot16 = forgot16.unwrap();

        // 2. reset with tokens from real mail vs bare argon2id.
        println!("\nreset vs bare argon2id");
        let before = mail_count(&smtp);
        let url = server.url("/users/password/forgot");
        let jobs: Vec<_> = (0..RESETS + RESETS_SERIAL)
            .map(|i| {
                let url = url.clone();
                move |c: &Client| c.post(url).json(&json!({ "email": to_reset(i) }))
            })
            .collect();
        let (run, _) = batch(16, jobs).await;
        if run.count(202) != (RESETS + RESETS_SERIAL) as u64 {
            println!("  !! forgot for the reset accounts: {}", run.statuses());
        }
        let wait = Instant::now();
        let mut tokens: BTreeMap<String, String> = BTreeMap::new();
        while tokens.len() < RESETS + RESETS_SERIAL && wait.elapsed() < DRAIN_LIMIT {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if mail_count(&smtp) < before + RESETS + RESETS_SERIAL {
                continue;
            }
            // Parse only once they are all in: messages() reads every mail stored.
            for mail in smtp.messages().into_iter().skip(before) {
                let to = mail.rcpt_to.first().cloned().unwrap_or_default();
                if let (true, Some(token)) = (to.starts_with("reset-"), mail.text.as_deref().and_then(token_in)) {
                    tokens.insert(to, token);
                }
            }
        }
        println!(
            "  {} reset mails with a token in {:.1} s",
            tokens.len(),
            wait.elapsed().as_secs_f64()
        );
        let reset_url = server.url("/users/password/reset");
        let job = |i: usize, token: String| {
            let url = reset_url.clone();
            move |c: &Client| {
                c.post(url)
                    .bearer_auth(token)
                    .json(&json!({ "new_password": format!("benchmark passphrase number {i} ok") }))
            }
        };
        let mut tokens: Vec<String> = tokens.into_values().collect();
        let serial_tokens = tokens.split_off(tokens.len().saturating_sub(RESETS_SERIAL));
        // The bare baseline is measured on both sides of the resets (server idle: its mail is
        // out) and combined, so a drift in the machine's load hits both figures alike.
        let mut singles = tokio::task::block_in_place(|| bare_single(11));
        let mut parallel = tokio::task::block_in_place(|| bare_parallel(cores, 20));
        let (reset16, _) = batch(16, tokens.into_iter().enumerate().map(|(i, t)| job(i, t)).collect()).await;
        reset16.print("POST reset, 16 conns");
        let (reset1, _) = batch(
            1,
            serial_tokens.into_iter().enumerate().map(|(i, t)| job(i, t)).collect(),
        )
        .await;
        reset1.print("POST reset, 1 conn");
        for run in [&reset16, &reset1] {
            if run.statuses.keys().any(|s| *s != 204) {
                println!("  !! reset answered something other than 204: {}", run.statuses());
            }
        }
        singles.extend(tokio::task::block_in_place(|| bare_single(11)));
        parallel = (parallel + tokio::task::block_in_place(|| bare_parallel(cores, 20))) / 2.0;
        singles.sort_by(f64::total_cmp);
        let single = singles[singles.len() / 2];
        println!(
            "  bare argon2id: {:.2} ms single (median of {}), {parallel:.1} hashes/s with {cores} threads",
            single * 1000.0,
            singles.len()
        );
        table.row(
            "reset/s, 16 conns",
            reset16.rps(),
            parallel,
            "/s",
            &format!("bare argon2, {cores} threads"),
        );
        table.row(
            "reset p50, 16 conns",
            reset16.pct(0.5),
            single * 1000.0,
            "ms",
            "one bare hash",
        );
        table.row(
            "reset p99, 16 conns",
            reset16.pct(0.99),
            single * 1000.0,
            "ms",
            "one bare hash",
        );
        // 16 requests share `hash_concurrency` (= cores) permits, so each waits for about 16
        // hashes at the parallel rate (Little's law): the fair baseline for the p50 under load.
        table.row(
            "reset p50, 16 conns (queued)",
            reset16.pct(0.5),
            16.0 / parallel * 1000.0,
            "ms",
            "16 / bare parallel rate",
        );
        table.row(
            "reset p50, 1 conn",
            reset1.pct(0.5),
            single * 1000.0,
            "ms",
            "one bare hash",
        );

        // 3. forgot at 16 connections while 64 connections flood sign-ins (wrong passwords).
        println!("\nforgot during a sign-in flood ({WARMUP:?} warm-up, {MIXED_MEASURE:?} measured)");
        let url = server.url("/sessions");
        let signins = flood(64, WARMUP, MIXED_MEASURE, move |c, n| {
            c.post(&url)
                .json(&json!({ "email": known(n as usize % KNOWN), "password": "not the password at all" }))
        });
        let url = server.url("/users/password/forgot");
        let forgots = flood(16, WARMUP, MIXED_MEASURE, move |c, n| forgot(c, &url, n));
        let (signins, forgots) = tokio::join!(signins, forgots);
        signins.print("POST /sessions (wrong password), 64 conns");
        forgots.print("POST forgot, 16 conns, during the flood");
        println!(
            "  sign-ins: {} answered 401, {} answered 503 (request_timeout), others: {}",
            signins.count(401),
            signins.count(503),
            signins
                .statuses
                .iter()
                .filter(|(s, _)| !matches!(s, 401 | 503))
                .map(|(s, n)| format!("{s}×{n}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        table.row(
            "forgot p50 during sign-in flood",
            forgots.pct(0.5),
            forgot16.pct(0.5),
            "ms",
            "forgot alone",
        );
        table.row(
            "forgot p99 during sign-in flood",
            forgots.pct(0.99),
            forgot16.pct(0.99),
            "ms",
            "forgot alone",
        );
        table.row(
            "forgot req/s during sign-in flood",
            forgots.rps(),
            forgot16.rps(),
            "req/s",
            "forgot alone",
        );
        table.row(
            "sign-ins/s (wrong password)",
            signins.rps(),
            parallel,
            "/s",
            &format!("bare argon2, {cores} threads"),
        );
    }
    drop(server); // kills rekeyd

    // 4. forgot for known addresses only against unknown addresses only (issue 12 asked why
    //    known ran 2.3× slower), each on a fresh server: mail to the SMTP capture server, and
    //    mail to the local mailbox (no SMTP), to tell rekeyd's own work from the relay's.
    for (label, relay, domain) in [
        ("SMTP", Some(&smtp), "smtp.test"),
        ("local mailbox", None, "mailbox.test"),
    ] {
        let (unknown, known_only) = known_against_unknown(&binary, relay, domain).await;
        unknown.print(&format!("forgot, unknown addresses only ({label})"));
        known_only.print(&format!("forgot, known addresses only ({label})"));
        table.row(
            &format!("forgot/s, known only ({label}, 16 conns)"),
            known_only.rps(),
            unknown.rps(),
            "req/s",
            "unknown only",
        );
    }

    println!();
    table.print();
    println!("\n(total {:.0} s)", started.elapsed().as_secs_f64());
}

/// Bytes process `pid` has had written to storage so far (`write_bytes` in /proc/PID/io).
fn disk_writes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/io"))
        .ok()
        .and_then(|io| {
            io.lines()
                .find_map(|l| l.strip_prefix("write_bytes: ")?.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// A fresh server with `KNOWN` accounts at `domain` (addresses no earlier phase used, so
/// their verification mail is this server's): a forgot flood (16 connections) for unknown
/// addresses only, then one for the accounts only. Mail goes to `relay`, or to the local
/// mailbox.
async fn known_against_unknown(binary: &std::path::Path, relay: Option<&SmtpCapture>, domain: &str) -> (Run, Run) {
    let emails: Vec<String> = (0..KNOWN).map(|i| format!("account-{i}@{domain}")).collect();
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup {
        binary: Some(binary.to_path_buf()),
        ..Setup::default()
    }
    .with("REKEY_LIMIT_CLIENT", "off")
    .with("REKEY_LIMIT_ADDRESS", "off")
    .with("REKEY_LIMIT_REGISTER_CLIENT", "off")
    // The answer's own cost, not "busy" once the worker falls behind the flood (as in the
    // PostgreSQL bench); the worker's own rate is measured after the flood.
    .with("REKEY_INTAKE_LIMIT", "10000000");
    let server = Server::start(&dir.path().join("data"), relay, setup);
    let users = server.url("/users");
    let jobs: Vec<_> = emails
        .iter()
        .cloned()
        .map(|email| {
            let users = users.clone();
            move |c: &Client| c.post(users).json(&json!({ "email": email, "password": PASSWORD }))
        })
        .collect();
    batch(16, jobs).await;
    tokio::task::block_in_place(|| server.verify_all(relay, &emails, PASSWORD));
    let url = server.url("/users/password/forgot");
    let pid = server.pid().unwrap();
    let written = disk_writes(pid);
    let unknown = {
        let url = url.clone();
        flood(16, WARMUP, MIXED_MEASURE, move |c, n| {
            c.post(&url)
                .json(&json!({ "email": format!("stranger-{n}@bench.test") }))
        })
        .await
    };
    let after_unknown = disk_writes(pid);
    let known_only = flood(16, WARMUP, MIXED_MEASURE, move |c, n| {
        c.post(&url).json(&json!({ "email": emails[n as usize % KNOWN] }))
    })
    .await;
    let after_known = disk_writes(pid);
    // The worker's rate: every known request becomes a reset and its mail; those it had not
    // handled when the flood ended wait in the intake.
    let http = client();
    let intake = || server::read_gauge(&http, &server, "rekey_intake_depth");
    let (backlog, flood_ended) = (intake().await, Instant::now());
    while intake().await > 0 && flood_ended.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let flood_secs = (WARMUP + MIXED_MEASURE).as_secs_f64();
    println!(
        "  worker: {backlog} known requests waiting when the flood ended, handled within {:.1} s more: {:.0} resets minted and queued per second",
        flood_ended.elapsed().as_secs_f64(),
        known_only.sent.len() as f64 / (flood_secs + flood_ended.elapsed().as_secs_f64())
    );
    let per = |bytes: u64, run: &Run| bytes as f64 / run.sent.len().max(1) as f64 / 1024.0;
    println!(
        "  disk writes per request: unknown {:.1} KiB, known {:.1} KiB (rekeyd's write_bytes, warm-up included)",
        per(after_unknown - written, &unknown),
        per(after_known - after_unknown, &known_only)
    );
    (unknown, known_only)
}
