//! `cargo bench -p rekeyd --bench postgres`: rekeyd on PostgreSQL against rekeyd on sled,
//! measured in one run on this machine (shared and noisy: the ratios are the figures).
//!
//! A throwaway PostgreSQL cluster and the loopback SMTP capture server; release `rekeyd serve`
//! with the production argon2id parameters and the rate limits off:
//!
//! 1. `POST /users/password/forgot` (16 connections, 1 in 8 for an account) and
//!    `POST /users/password/reset` (tokens from real mail, 16 connections) on sled with one
//!    instance, and on PostgreSQL with one, two and three instances (requests spread over
//!    them round robin). All instances share this machine's two cores with the database.
//! 2. An acknowledged forgot on PostgreSQL against a bare `INSERT …; COMMIT` through sqlx
//!    at the same concurrency: what the database itself costs.
//! 3. Known addresses only against unknown addresses only, on PostgreSQL.
//!
//! No assertions on speed: it prints a table.

#[path = "common/flood.rs"]
mod flood;
#[path = "../tests/common/server.rs"]
mod server;

use std::sync::Arc;
use std::time::{Duration, Instant};

use flood::{batch, flood, Run, Table};
use rekey_testkit::{PgCluster, SmtpCapture};
use reqwest::Client;
use serde_json::json;
use server::{Server, Setup};

const WARMUP: Duration = Duration::from_secs(1);
const MEASURE: Duration = Duration::from_secs(5);
const CONNS: usize = 16;
const KNOWN: usize = 40;
const RESETS: usize = 48;
const PASSWORD: &str = "quiet river under the old mill";
const RESET: &str = "Reset your Rekey password";

/// Where the records are.
#[derive(Clone, Copy)]
enum Store {
    Sled,
    Postgres(usize),
}

impl Store {
    fn name(self) -> String {
        match self {
            Store::Sled => "sled, 1 instance".into(),
            Store::Postgres(1) => "PostgreSQL, 1 instance".into(),
            Store::Postgres(n) => format!("PostgreSQL, {n} instances"),
        }
    }
}

struct Site {
    servers: Vec<Server>,
    _dir: tempfile::TempDir,
}

impl Site {
    fn start(store: Store, cluster: &PgCluster, smtp: &SmtpCapture, db: &str) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let mut setup = Setup {
            binary: Some(server::rekeyd_binary()),
            ..Setup::default()
        }
        .with("REKEY_ARGON2_MEMORY_KIB", "19456")
        .with("REKEY_ARGON2_ITERATIONS", "2")
        .with("REKEY_LIMIT_CLIENT", "off")
        .with("REKEY_LIMIT_ADDRESS", "off")
        .with("REKEY_LIMIT_REGISTER_CLIENT", "off")
        .with("REKEY_LIMIT_CODE_CLIENT", "off")
        .with("REKEY_PUBLIC_URL", "https://rekey.example.com")
        .with("REKEY_MAX_CONNECTIONS_PER_CLIENT", "256")
        // The answer's own cost, not "busy" once the worker falls behind the flood.
        .with("REKEY_INTAKE_LIMIT", "10000000");
        let n = match store {
            Store::Sled => 1,
            Store::Postgres(n) => {
                setup = setup.with("REKEY_DATABASE_URL", cluster.database(db));
                n
            }
        };
        let servers = (0..n)
            .map(|i| Server::start(&dir.path().join(format!("node{i}")), Some(smtp), setup.clone()))
            .collect();
        Site { servers, _dir: dir }
    }

    fn url(&self, i: u64, path: &str) -> String {
        self.servers[i as usize % self.servers.len()].url(path)
    }
}

/// The reset tokens mailed to `emails`, one each (the first of each). They queue behind the
/// flood's mail, which the loopback SMTP capture server takes slowly (well under 100 a
/// second, the http bench found): the faster the flood, the longer the wait. A sled flood
/// of 10 680 a second (about 8 000 of its requests for accounts) once went past an earlier
/// 120 s limit and left no resets to time.
fn tokens(smtp: &SmtpCapture, emails: &[String]) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let mails = smtp.messages();
        let found: Vec<String> = emails
            .iter()
            .filter_map(|e| {
                mails
                    .iter()
                    .find(|m| m.rcpt_to[0].eq_ignore_ascii_case(e) && m.header("Subject") == Some(RESET))
                    .map(|m| m.reset_token())
            })
            .collect();
        if found.len() == emails.len() {
            return found;
        }
        if Instant::now() > deadline {
            println!(
                "  only {} of {} reset mails arrived within 600 s",
                found.len(),
                emails.len()
            );
            return found;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// forgot (1 in 8 for an account) and reset, on a fresh site.
async fn forgot_and_reset(store: Store, cluster: &PgCluster, smtp: &SmtpCapture, tag: &str) -> (Run, Run) {
    let site = Arc::new(Site::start(store, cluster, smtp, tag));
    let known: Vec<String> = (0..KNOWN).map(|i| format!("known{i}@{tag}.test")).collect();
    let resets: Vec<String> = (0..RESETS).map(|i| format!("reset{i}@{tag}.test")).collect();
    let all: Vec<String> = known.iter().chain(&resets).cloned().collect();
    tokio::task::block_in_place(|| site.servers[0].create_accounts(Some(smtp), &all, PASSWORD));

    let forgot = {
        let (site, known) = (site.clone(), known.clone());
        flood(CONNS, WARMUP, MEASURE, move |c, n| {
            let email = if n % 8 == 0 {
                known[(n / 8) as usize % KNOWN].clone()
            } else {
                format!("stranger{n}@{}", "bench.test")
            };
            c.post(site.url(n, "/users/password/forgot"))
                .json(&json!({ "email": email }))
        })
        .await
    };

    // The flood may have filled the intake (503 busy) faster than the worker empties it:
    // these wait for room.
    let http = Client::new();
    for (i, email) in resets.iter().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let r = match http
                .post(site.url(i as u64, "/users/password/forgot"))
                .json(&json!({ "email": email }))
                .send()
                .await
            {
                Ok(r) => r,
                Err(e) => {
                    for server in &site.servers {
                        eprintln!("{}:\n{}", server.url(""), server.log_text());
                    }
                    panic!("forgot for {email}: {e}");
                }
            };
            match r.status().as_u16() {
                202 => break,
                503 if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(500)).await,
                other => panic!("forgot for {email}: {other}"),
            }
        }
    }
    let tokens = tokio::task::block_in_place(|| tokens(smtp, &resets));
    let jobs: Vec<_> = tokens
        .into_iter()
        .enumerate()
        .map(|(i, token)| {
            let url = site.url(i as u64, "/users/password/reset");
            move |c: &Client| {
                c.post(url)
                    .json(&json!({ "token": token, "new_password": format!("{PASSWORD} {i}") }))
            }
        })
        .collect();
    let (reset, _) = batch(CONNS, jobs).await;
    (forgot, reset)
}

/// `conns` tasks doing `INSERT …; COMMIT` through sqlx for `measure` after a warm-up.
async fn bare_inserts(url: &str, conns: usize) -> Run {
    use sqlx::postgres::PgPoolOptions;
    let pool = PgPoolOptions::new()
        .max_connections(conns as u32)
        .connect(url)
        .await
        .unwrap();
    sqlx::query("CREATE TABLE IF NOT EXISTS bare (id bigserial PRIMARY KEY, record text NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    let start = Instant::now();
    let (warm_end, end) = (start + WARMUP, start + WARMUP + MEASURE);
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            loop {
                let t = Instant::now();
                if t >= end {
                    return out;
                }
                let mut tx = pool.begin().await.unwrap();
                sqlx::query("INSERT INTO bare (record) VALUES ($1)")
                    .bind(r#"{"kind":"reset","email":"someone@example.com","client":"ip:127.0.0.1","at":1700000000}"#)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
                out.push((t >= warm_end, t.elapsed()));
            }
        }));
    }
    let mut run = Run {
        latencies: Vec::new(),
        statuses: Default::default(),
        secs: MEASURE.as_secs_f64(),
        sent: Vec::new(),
    };
    for t in tasks {
        for (measured, latency) in t.await.unwrap() {
            if measured {
                run.latencies.push(latency);
            }
        }
    }
    run
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let started = Instant::now();
    let cluster = PgCluster::start();
    let smtp = SmtpCapture::start();
    println!(
        "rekeyd PostgreSQL bench: {CONNS} connections, {WARMUP:?} warm-up, {MEASURE:?} measured; \
         PostgreSQL {} on this machine",
        cluster.psql("postgres", "SHOW server_version").trim()
    );
    let mut table = Table::new("postgres");

    // REKEY_BENCH_ONLY=insert runs parts 2 and 3 only (to profile the answer's cost).
    let stores = match std::env::var("REKEY_BENCH_ONLY").as_deref() {
        Ok("insert") => vec![],
        _ => vec![Store::Sled, Store::Postgres(1), Store::Postgres(2), Store::Postgres(3)],
    };
    // 1. sled against PostgreSQL with 1, 2 and 3 instances.
    let mut sled_figures = None;
    for (i, store) in stores.into_iter().enumerate() {
        let (forgot, reset) = forgot_and_reset(store, &cluster, &smtp, &format!("site{i}")).await;
        forgot.print(&format!("forgot, {}", store.name()));
        reset.print(&format!("reset, {}", store.name()));
        let (f, r) = *sled_figures.get_or_insert((forgot.rps(), reset.rps()));
        if i > 0 {
            table.row(&format!("forgot/s, {}", store.name()), forgot.rps(), f, "req/s", "sled");
            table.row(&format!("reset/s, {}", store.name()), reset.rps(), r, "req/s", "sled");
        }
        table.note(
            &format!("forgot p50/p99, {}", store.name()),
            format!("{:.2} / {:.2} ms", forgot.pct(0.5), forgot.pct(0.99)),
        );
        table.note(
            &format!("reset p50/p99, {}", store.name()),
            format!("{:.2} / {:.2} ms", reset.pct(0.5), reset.pct(0.99)),
        );
    }

    // 2. An acknowledged forgot against a bare INSERT; COMMIT, same concurrency, same cluster.
    let bare = bare_inserts(&cluster.database("bare"), CONNS).await;
    bare.print("bare INSERT; COMMIT through sqlx");
    let site = Site::start(Store::Postgres(1), &cluster, &smtp, "strangers");
    let url = site.url(0, "/users/password/forgot");
    let forgot = flood(CONNS, WARMUP, MEASURE, move |c, n| {
        c.post(&url).json(&json!({ "email": format!("nobody{n}@bench.test") }))
    })
    .await;
    forgot.print("forgot (unknown addresses), PostgreSQL, 1 instance");
    table.row(
        "bare INSERT+COMMIT per forgot (time ratio)",
        bare.rps(),
        forgot.rps(),
        "op/s",
        "forgot",
    );

    // 3. Known addresses only against unknown ones only, on PostgreSQL.
    let known: Vec<String> = (0..KNOWN).map(|i| format!("only{i}@known.test")).collect();
    tokio::task::block_in_place(|| site.servers[0].create_accounts(Some(&smtp), &known, PASSWORD));
    let url = site.url(0, "/users/password/forgot");
    let known_only = flood(CONNS, WARMUP, MEASURE, move |c, n| {
        c.post(&url).json(&json!({ "email": known[n as usize % KNOWN] }))
    })
    .await;
    known_only.print("forgot, known addresses only, PostgreSQL");
    table.row(
        "forgot/s, known only (PostgreSQL)",
        known_only.rps(),
        forgot.rps(),
        "req/s",
        "unknown only",
    );

    println!();
    table.print();
    println!("\n(total {:.0} s)", started.elapsed().as_secs_f64());
}
