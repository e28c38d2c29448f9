//! Side channels, measured: does anything in the answer to "forgot password" or to a failed
//! sign-in tell a stranger whether an account exists (or that an address is over its limit)?
//!
//! Each test sends at least 1000 requests of each kind to the real `rekeyd serve`, one at a
//! time over one keep-alive connection, in a shuffled order (so drift in the machine's load
//! falls on every kind alike). It then checks that status, headers (but `Date`) and body
//! are identical, and compares the latency distributions pairwise with a two-sample
//! Kolmogorov–Smirnov test. Each test also measures a pair that *does* differ in work, and
//! requires the same statistic to see that difference: a test that could not see a real
//! difference would prove nothing by seeing none.
//!
//! `cargo test -p rekeyd --test side_channels -- --nocapture` prints the figures;
//! `... -- --ignored` runs the longer version (5000 of each).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::server::{gauge, Server, Setup};
use rekey_testkit::PgCluster;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

const PASSWORD: &str = "quiet river under the old mill";
/// Reject "no difference" below this p-value (three comparisons at most per test, so the
/// chance of a false alarm on a fair server stays under 0.3 %).
const ALPHA: f64 = 0.001;

/// One kind of request in a measurement.
struct Kind {
    name: &'static str,
    path: &'static str,
    /// The body of the `i`th request of this kind.
    body: Box<dyn Fn(usize) -> Value>,
}

/// What a client sees of one answer, timing aside.
type Seen = (StatusCode, Vec<(String, String)>, String);

/// Latencies (ms) and the distinct answers seen, per kind.
struct Sample {
    ms: Vec<f64>,
    answers: BTreeSet<String>,
}

async fn send(http: &Client, url: &str, body: &Value) -> (f64, Seen) {
    let started = Instant::now();
    let r = http.post(url).json(body).send().await.unwrap();
    let status = r.status();
    let mut headers: Vec<(String, String)> = r
        .headers()
        .iter()
        .filter(|(k, _)| *k != "date")
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let text = r.text().await.unwrap();
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    headers.sort();
    (ms, (status, headers, text))
}

/// A small xorshift generator: the order only has to be unpredictable to the server's
/// load, not to an attacker.
struct Shuffle(u64);

impl Shuffle {
    fn new() -> Shuffle {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        Shuffle(seed | 1)
    }

    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }

    fn order(&mut self, kinds: usize, each: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..kinds).flat_map(|k| std::iter::repeat_n(k, each)).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, self.below(i + 1));
        }
        order
    }
}

/// Requests of each kind sent before the measurement, to warm connections and caches.
const WARM_UP: usize = 20;

/// Sends `each` requests of every kind, shuffled, one at a time, after a warm-up. Returns
/// the samples and how many requests of each kind were sent in all.
async fn measure(server: &Server, kinds: &[Kind], each: usize) -> (Vec<Sample>, Vec<usize>) {
    let http = Client::builder().pool_max_idle_per_host(1).build().unwrap();
    let mut samples: Vec<Sample> = kinds
        .iter()
        .map(|_| Sample {
            ms: Vec::with_capacity(each),
            answers: BTreeSet::new(),
        })
        .collect();
    let mut counters = vec![0usize; kinds.len()];
    let mut shuffle = Shuffle::new();
    let warm = shuffle.order(kinds.len(), WARM_UP);
    let order = shuffle.order(kinds.len(), each);
    for (step, &k) in warm.iter().chain(&order).enumerate() {
        let kind = &kinds[k];
        let i = counters[k];
        counters[k] += 1;
        let (ms, seen) = send(&http, &server.url(kind.path), &(kind.body)(i)).await;
        if step >= warm.len() {
            samples[k].ms.push(ms);
            samples[k].answers.insert(format!("{seen:?}"));
        }
    }
    (samples, counters)
}

/// The two-sample Kolmogorov–Smirnov statistic D and its asymptotic p-value.
fn ks(a: &[f64], b: &[f64]) -> (f64, f64) {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (n, m) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j, mut d) = (0, 0, 0.0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / n - j as f64 / m).abs());
    }
    let ne = (n * m / (n + m)).sqrt();
    // Stephens' approximation to the Kolmogorov distribution's tail.
    let lambda = (ne + 0.12 + 0.11 / ne) * d;
    let mut p = 0.0;
    for k in 1..=100 {
        let k = k as f64;
        let term = 2.0 * (-1f64).powf(k - 1.0) * (-2.0 * k * k * lambda * lambda).exp();
        p += term;
        if term.abs() < 1e-12 {
            break;
        }
    }
    (d, p.clamp(0.0, 1.0))
}

fn quantile(ms: &[f64], q: f64) -> f64 {
    let mut v = ms.to_vec();
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// Prints each kind's latency and each pair's KS result; returns the p-value per pair.
fn report(title: &str, kinds: &[Kind], samples: &[Sample], pairs: &[(usize, usize)]) -> BTreeMap<String, f64> {
    println!("\n{title}");
    println!("| kind | n | p10 ms | p50 ms | p90 ms | p99 ms |");
    println!("|---|---|---|---|---|---|");
    for (kind, s) in kinds.iter().zip(samples) {
        println!(
            "| {} | {} | {:.3} | {:.3} | {:.3} | {:.3} |",
            kind.name,
            s.ms.len(),
            quantile(&s.ms, 0.1),
            quantile(&s.ms, 0.5),
            quantile(&s.ms, 0.9),
            quantile(&s.ms, 0.99)
        );
    }
    println!("| pair | KS D | p-value | p50 ratio |");
    println!("|---|---|---|---|");
    let mut out = BTreeMap::new();
    for &(x, y) in pairs {
        let (d, p) = ks(&samples[x].ms, &samples[y].ms);
        let ratio = quantile(&samples[x].ms, 0.5) / quantile(&samples[y].ms, 0.5);
        let pair = format!("{} vs {}", kinds[x].name, kinds[y].name);
        println!("| {pair} | {d:.4} | {p:.4} | {ratio:.3}× |");
        rekey_testkit::figures::record(
            "side channels",
            &format!("{title}: {pair} (n={})", samples[x].ms.len()),
            &format!("KS D {d:.4}, p {p:.3}"),
            &format!("p50 {:.3} ms", quantile(&samples[y].ms, 0.5)),
            Some(ratio),
        );
        out.insert(pair, p);
    }
    out
}

/// Creates the accounts as their owners would (ask, then open the mailed link).
async fn register(server: &Server, emails: &[String]) {
    tokio::task::block_in_place(|| server.create_accounts(None, emails, PASSWORD));
}

async fn metric(http: &Client, server: &Server, name: &str) -> u64 {
    let text = http
        .get(server.metrics_url())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    gauge(&text, name)
}

/// Reset mails in the local mailbox, by recipient.
fn mailbox(data: &std::path::Path) -> BTreeMap<String, usize> {
    let mut by_to = BTreeMap::new();
    for entry in std::fs::read_dir(data.join("mailbox")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        if !text.contains("Subject: Reset your Rekey password") {
            continue;
        }
        let to = text
            .lines()
            .find_map(|l| l.strip_prefix("To: "))
            .unwrap_or("")
            .to_string();
        *by_to.entry(to).or_default() += 1;
    }
    by_to
}

/// Where the measured server keeps its records: sled in its data directory, or a
/// PostgreSQL cluster made for the test.
#[derive(Clone, Copy, PartialEq)]
enum Store {
    Sled,
    Postgres,
}

async fn forgot_is_alike(each: usize, store: Store) {
    const LIMITED: usize = 10;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Mail goes to the local mailbox: the worker's cost is a file write, and the test can
    // count exactly who got mail. The client limit is off so every request is measured.
    let mut setup = Setup::default()
        .with("REKEY_LIMIT_ADDRESS", "2/1h")
        .with("REKEY_LIMIT_CLIENT", "off")
        .with("REKEY_LIMIT_REGISTER_CLIENT", "off")
        .with("REKEY_INTAKE_LIMIT", "1000000");
    let cluster = (store == Store::Postgres).then(PgCluster::start);
    if let Some(cluster) = &cluster {
        setup = setup.with("REKEY_DATABASE_URL", cluster.database("side_channels"));
    }
    let server = Server::start(&data, None, setup);
    let http = Client::new();
    let known: Vec<String> = (0..each + WARM_UP).map(|i| format!("known{i}@example.com")).collect();
    let limited: Vec<String> = (0..LIMITED).map(|i| format!("limited{i}@example.com")).collect();
    register(&server, &known).await;
    register(&server, &limited).await;
    // Each "limited" address uses up its limit (2 per hour) before the measurement.
    for email in limited.iter().chain(&limited) {
        let (_, seen) = send(&http, &server.url("/users/password/forgot"), &json!({ "email": email })).await;
        assert_eq!(seen.0, StatusCode::ACCEPTED);
    }
    let limited_for_kind = limited.clone();
    let kinds = [
        Kind {
            name: "known",
            path: "/users/password/forgot",
            // A fresh account each time, so every one is within its limit.
            body: Box::new(move |i| json!({ "email": format!("known{i}@example.com") })),
        },
        Kind {
            name: "unknown",
            path: "/users/password/forgot",
            body: Box::new(|i| json!({ "email": format!("nobody{i}@example.com") })),
        },
        Kind {
            name: "over its limit",
            path: "/users/password/forgot",
            body: Box::new(move |i| json!({ "email": limited_for_kind[i % LIMITED] })),
        },
        Kind {
            // The control: a malformed address skips the queue write and its flush.
            name: "malformed",
            path: "/users/password/forgot",
            body: Box::new(|i| json!({ "email": format!("nobody{i}-at-example.com") })),
        },
    ];
    let (samples, sent) = measure(&server, &kinds, each).await;
    let on = if store == Store::Postgres { ", PostgreSQL" } else { "" };
    let p = report(
        &format!("forgot, {each} of each{on}"),
        &kinds,
        &samples,
        &[(0, 1), (0, 2), (1, 2), (0, 3)],
    );

    // Identical answers: one distinct (status, headers, body) for the three, the same one.
    for s in &samples[..3] {
        assert_eq!(s.answers.len(), 1, "answers vary within a kind: {:?}", s.answers);
    }
    assert_eq!(
        samples[0].answers, samples[1].answers,
        "known vs unknown answers differ"
    );
    assert_eq!(
        samples[0].answers, samples[2].answers,
        "known vs limited answers differ"
    );
    assert!(samples[0].answers.iter().next().unwrap().starts_with("(202,"));
    // The measurement can see one flush's worth of difference...
    assert!(
        p["known vs malformed"] < ALPHA,
        "the test cannot tell a queued request from a malformed one (p = {}); it has no power here",
        p["known vs malformed"]
    );
    // ...and sees none between the three that must look alike.
    for pair in [
        "known vs unknown",
        "known vs over its limit",
        "unknown vs over its limit",
    ] {
        assert!(
            p[pair] >= ALPHA,
            "{pair}: latency distributions differ (p = {})",
            p[pair]
        );
    }

    // The worker did what the answers did not say: mail for each known account once, none
    // for strangers, none beyond the limit.
    let deadline = Instant::now() + Duration::from_secs(120);
    while metric(&http, &server, "rekey_intake_depth").await + metric(&http, &server, "rekey_outbox_depth").await > 0 {
        assert!(Instant::now() < deadline, "the queues did not drain");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mail = mailbox(&data);
    for (i, email) in known.iter().enumerate() {
        let expected = usize::from(i < sent[0]);
        assert_eq!(mail.get(email).copied().unwrap_or(0), expected, "{email}");
    }
    assert_eq!(
        mail.keys().filter(|k| k.starts_with("nobody")).count(),
        0,
        "a stranger got mail"
    );
    for email in &limited {
        assert_eq!(mail.get(email), Some(&2), "{email}: the limit let more through");
    }
}

async fn sign_in_is_alike(each: usize, store: Store) {
    let dir = tempfile::tempdir().unwrap();
    // The production argon2 parameters: the unknown account's stand-in hash must cost what
    // a real one costs at the settings people run with.
    let mut setup = Setup::default()
        .with("REKEY_ARGON2_MEMORY_KIB", "19456")
        .with("REKEY_ARGON2_ITERATIONS", "2")
        .with("REKEY_LIMIT_SIGNIN_ACCOUNT", "off")
        .with("REKEY_LIMIT_SIGNIN_CLIENT", "off")
        .with("REKEY_LIMIT_SIGNIN_SPRAY", "off")
        .with("REKEY_LIMIT_REGISTER_CLIENT", "off");
    let cluster = (store == Store::Postgres).then(PgCluster::start);
    if let Some(cluster) = &cluster {
        setup = setup.with("REKEY_DATABASE_URL", cluster.database("side_channels"));
    }
    let server = Server::start(&dir.path().join("data"), None, setup);
    register(&server, &["someone@example.com".to_string()]).await;
    let kinds = [
        Kind {
            name: "wrong password",
            path: "/sessions",
            body: Box::new(|i| json!({"email": "someone@example.com", "password": format!("not the password {i}")})),
        },
        Kind {
            name: "unknown account",
            path: "/sessions",
            body: Box::new(
                |i| json!({"email": format!("nobody{i}@example.com"), "password": format!("not the password {i}")}),
            ),
        },
        Kind {
            // The control: a malformed address is refused before any hash.
            name: "malformed",
            path: "/sessions",
            body: Box::new(|i| json!({"email": format!("nobody{i}"), "password": "whatever it is"})),
        },
    ];
    let (samples, _) = measure(&server, &kinds, each).await;
    let on = if store == Store::Postgres { ", PostgreSQL" } else { "" };
    let p = report(
        &format!("sign-in, {each} of each{on}"),
        &kinds,
        &samples,
        &[(0, 1), (0, 2)],
    );
    assert_eq!(samples[0].answers.len(), 1, "{:?}", samples[0].answers);
    assert_eq!(
        samples[0].answers, samples[1].answers,
        "wrong password vs unknown account answers differ"
    );
    assert!(samples[0].answers.iter().next().unwrap().starts_with("(401,"));
    assert!(p["wrong password vs malformed"] < ALPHA, "no power: {p:?}");
    assert!(
        p["wrong password vs unknown account"] >= ALPHA,
        "latency differs (p = {})",
        p["wrong password vs unknown account"]
    );
}

async fn wrong_codes_are_alike(each: usize) {
    const ACCOUNTS: usize = 30;
    let dir = tempfile::tempdir().unwrap();
    // Limits that never refuse but still count, so every request does its production writes.
    let setup = Setup::default()
        .with("REKEY_LIMIT_CODE_CLIENT", "100000000/1m")
        .with("REKEY_LIMIT_CODE_ADDRESS", "100000000/1m")
        .with("REKEY_LIMIT_CLIENT", "off")
        .with("REKEY_LIMIT_REGISTER_CLIENT", "off");
    let server = Server::start(&dir.path().join("data"), None, setup);
    let http = Client::new();
    let with_reset: Vec<String> = (0..ACCOUNTS).map(|i| format!("reset{i}@example.com")).collect();
    let without: Vec<String> = (0..ACCOUNTS).map(|i| format!("plain{i}@example.com")).collect();
    register(&server, &with_reset).await;
    register(&server, &without).await;
    for email in &with_reset {
        let (_, seen) = send(&http, &server.url("/users/password/forgot"), &json!({ "email": email })).await;
        assert_eq!(seen.0, StatusCode::ACCEPTED);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while metric(&http, &server, "rekey_intake_depth").await + metric(&http, &server, "rekey_outbox_depth").await > 0 {
        assert!(Instant::now() < deadline, "the queues did not drain");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        mailbox(&dir.path().join("data")).len(),
        ACCOUNTS,
        "one reset mail per account"
    );
    let body =
        |email: String| json!({"email": email, "code": "AAAA-AAAA", "new_password": "a new passphrase nobody uses"});
    let (a, b) = (with_reset.clone(), without.clone());
    let kinds = [
        Kind {
            name: "known, live reset",
            path: "/users/password/reset",
            body: Box::new(move |i| body(a[i % ACCOUNTS].clone())),
        },
        Kind {
            name: "known, no reset",
            path: "/users/password/reset",
            body: Box::new(move |i| body(b[i % ACCOUNTS].clone())),
        },
        Kind {
            // As many distinct addresses as the known kinds: the first code typed for any
            // address writes a new record (for a known address without a reset too), later
            // ones change it, and those two writes differ in cost.
            name: "unknown",
            path: "/users/password/reset",
            body: Box::new(move |i| body(format!("nobody{}@example.com", i % ACCOUNTS))),
        },
        Kind {
            // The control: a malformed address is refused before any limit, look-up or write.
            name: "malformed",
            path: "/users/password/reset",
            body: Box::new(move |i| body(format!("nobody{i}-at-example.com"))),
        },
    ];
    let (samples, _) = measure(&server, &kinds, each).await;
    let p = report(
        &format!("wrong codes, {each} of each"),
        &kinds,
        &samples,
        &[(0, 1), (0, 2), (1, 2), (0, 3)],
    );
    for s in &samples[..3] {
        assert_eq!(s.answers.len(), 1, "answers vary within a kind: {:?}", s.answers);
        assert_eq!(s.answers, samples[0].answers, "answers differ between kinds");
    }
    assert!(samples[0].answers.iter().next().unwrap().contains("code_invalid"));
    assert!(p["known, live reset vs malformed"] < ALPHA, "no power: {p:?}");
    for pair in [
        "known, live reset vs known, no reset",
        "known, live reset vs unknown",
        "known, no reset vs unknown",
    ] {
        assert!(
            p[pair] >= ALPHA,
            "{pair}: latency distributions differ (p = {})",
            p[pair]
        );
    }
}

async fn registration_is_alike(each: usize) {
    const ACCOUNTS: usize = 30;
    let dir = tempfile::tempdir().unwrap();
    // The client's limit still counts (it writes) but never refuses.
    let setup = Setup::default()
        .with("REKEY_LIMIT_REGISTER_CLIENT", "100000000/1m")
        .with("REKEY_INTAKE_LIMIT", "1000000");
    let server = Server::start(&dir.path().join("data"), None, setup);
    let existing: Vec<String> = (0..ACCOUNTS).map(|i| format!("owner{i}@example.com")).collect();
    register(&server, &existing).await;
    let asked = |email: String| json!({"email": email, "password": "a passphrase for the new account"});
    let owners = existing.clone();
    let kinds = [
        Kind {
            name: "has an account",
            path: "/users",
            body: Box::new(move |i| asked(owners[i % ACCOUNTS].clone())),
        },
        Kind {
            name: "new address",
            path: "/users",
            body: Box::new(move |i| asked(format!("newcomer{i}@example.com"))),
        },
        Kind {
            // The control: a malformed address is refused before the hash and the write.
            name: "malformed",
            path: "/users",
            body: Box::new(move |i| asked(format!("newcomer{i}-at-example.com"))),
        },
    ];
    let (samples, _) = measure(&server, &kinds, each).await;
    let p = report(
        &format!("registration, {each} of each"),
        &kinds,
        &samples,
        &[(0, 1), (0, 2)],
    );
    assert_eq!(samples[0].answers.len(), 1, "{:?}", samples[0].answers);
    assert_eq!(samples[0].answers, samples[1].answers, "the answers differ");
    assert!(samples[0].answers.iter().next().unwrap().starts_with("(202,"));
    assert!(p["has an account vs malformed"] < ALPHA, "no power: {p:?}");
    assert!(
        p["has an account vs new address"] >= ALPHA,
        "latency differs (p = {})",
        p["has an account vs new address"]
    );
}

/// After the `argon2_*` settings change, accounts keep their old hashes until they sign in: a
/// stranger must not be told apart from such an account by the cost of the hash.
async fn settings_change_is_alike(each: usize) {
    const ACCOUNTS: usize = 30;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let limits_off = |setup: Setup| {
        setup
            .with("REKEY_LIMIT_SIGNIN_ACCOUNT", "off")
            .with("REKEY_LIMIT_SIGNIN_CLIENT", "off")
            .with("REKEY_LIMIT_SIGNIN_SPRAY", "off")
            .with("REKEY_LIMIT_REGISTER_CLIENT", "off")
    };
    // The old settings (cheap), then the new ones (the production parameters).
    let mut old_server = Server::start(&data, None, limits_off(Setup::default()));
    let old: Vec<String> = (0..ACCOUNTS).map(|i| format!("old{i}@example.com")).collect();
    register(&old_server, &old).await;
    tokio::task::block_in_place(|| assert!(old_server.terminate().success()));
    let new_settings = limits_off(Setup::default())
        .with("REKEY_ARGON2_MEMORY_KIB", "19456")
        .with("REKEY_ARGON2_ITERATIONS", "2");
    let server = Server::start(&data, None, new_settings);
    register(&server, &["fresh@example.com".to_string()]).await;
    let wrong = |email: String, i: usize| json!({"email": email, "password": format!("not the password {i}")});
    let kinds = [
        Kind {
            name: "account with old settings",
            path: "/sessions",
            body: Box::new(move |i| wrong(old[i % ACCOUNTS].clone(), i)),
        },
        Kind {
            name: "unknown",
            path: "/sessions",
            body: Box::new(move |i| wrong(format!("nobody{i}@example.com"), i)),
        },
        Kind {
            // The control: an account hashed with the new settings costs what they cost.
            name: "account with new settings",
            path: "/sessions",
            body: Box::new(move |i| wrong("fresh@example.com".to_string(), i)),
        },
    ];
    let (samples, _) = measure(&server, &kinds, each).await;
    let p = report(
        &format!("sign-in after a settings change, {each} of each"),
        &kinds,
        &samples,
        &[(0, 1), (0, 2)],
    );
    assert_eq!(samples[0].answers, samples[1].answers, "the answers differ");
    assert!(
        p["account with old settings vs account with new settings"] < ALPHA,
        "no power: {p:?}"
    );
    assert!(
        p["account with old settings vs unknown"] >= ALPHA,
        "latency differs (p = {})",
        p["account with old settings vs unknown"]
    );
}

/// The worker's work for a real account (a token, a letter, a transaction, then a mail sent
/// over TLS) runs 100–300 ms after the answer. Does it show in the requester's *own next*
/// requests? Each trial sends one forgot (for an account, for a stranger, or none at all: the
/// control, which skips the intake, its flush and the worker), then probes `/healthz` every
/// few milliseconds from 100 to 450 ms after it; a trial's figures are its probes' mean and
/// slowest latency (work elsewhere shows as a few slow probes more than as a shift of all).
/// Where the mail server runs, as the worker test sees it.
#[derive(Clone, Copy, Debug)]
enum Relay {
    /// On a machine of its own: here, on a CPU of its own, while rekeyd and the prober share
    /// the other, so what the probes see is rekeyd's own work.
    Elsewhere,
    /// On rekeyd's machine, sharing its CPUs, with `stand_in_mail_to` naming a sink.
    HereWithSink,
}

/// Pins every thread of `pid` to `cpus` (a `taskset` list like "0" or "0-1").
fn pin(pid: u32, cpus: &str) {
    let status = std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", cpus, &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("taskset runs");
    assert!(status.success(), "taskset could not pin {pid} to {cpus}");
}

async fn worker_work_is_not_seen(each: usize, relay: Relay) {
    const ACCOUNTS: usize = 30;
    let smtp = rekey_testkit::SmtpCapture::start();
    let dir = tempfile::tempdir().unwrap();
    let mut setup = Setup::default()
        .with("REKEY_LIMIT_ADDRESS", "off")
        .with("REKEY_LIMIT_CLIENT", "off")
        .with("REKEY_LIMIT_REGISTER_CLIENT", "off");
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    match relay {
        Relay::Elsewhere => {
            assert!(
                cpus >= 2,
                "this test needs two CPUs: one for the mail server, one for the rest"
            );
            pin(smtp.pid().expect("the capture server runs"), &format!("1-{}", cpus - 1));
            // rekeyd, started below, inherits the prober's CPU.
            pin(std::process::id(), "0");
        }
        Relay::HereWithSink => setup = setup.with("REKEY_STAND_IN_MAIL_TO", "discard@sink.test"),
    }
    let server = Server::start(&dir.path().join("data"), Some(&smtp), setup);
    let accounts: Vec<String> = (0..ACCOUNTS).map(|i| format!("worker{i}@example.com")).collect();
    tokio::task::block_in_place(|| server.create_accounts(Some(&smtp), &accounts, PASSWORD));
    let http = Client::builder().pool_max_idle_per_host(2).build().unwrap();
    let (forgot, health) = (server.url("/users/password/forgot"), server.url("/healthz"));
    let names = ["forgot for an account", "forgot for a stranger", "no forgot"];
    let mut shuffle = Shuffle::new();
    let order = shuffle.order(3, each);
    let mut slowest: Vec<Vec<f64>> = vec![Vec::new(); 3];
    let mut figures: Vec<Vec<f64>> = vec![Vec::new(); 3];
    for (n, &k) in order.iter().enumerate() {
        let started = Instant::now();
        let email = match k {
            0 => Some(accounts[n % ACCOUNTS].clone()),
            1 => Some(format!("stranger{n}@example.com")),
            _ => None,
        };
        if let Some(email) = email {
            let r = http
                .post(&forgot)
                .json(&json!({ "email": email }))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::ACCEPTED);
        }
        tokio::time::sleep_until((started + Duration::from_millis(100)).into()).await;
        let mut probes = Vec::new();
        while started.elapsed() < Duration::from_millis(450) {
            let t = Instant::now();
            http.get(&health).send().await.unwrap().bytes().await.unwrap();
            probes.push(t.elapsed().as_secs_f64() * 1000.0);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        figures[k].push(probes.iter().sum::<f64>() / probes.len() as f64);
        slowest[k].push(probes.iter().copied().fold(0.0, f64::max));
        // Let this trial's mail go before the next one starts.
        tokio::time::sleep_until((started + Duration::from_millis(650)).into()).await;
    }
    let mut p = BTreeMap::new();
    for (label, data) in [("mean", &figures), ("slowest", &slowest)] {
        println!("\nthe requester's own next requests, {each} trials of each: {label} probe latency");
        println!("| kind | n | p10 ms | p50 ms | p90 ms |");
        println!("|---|---|---|---|---|");
        for (name, f) in names.iter().zip(data) {
            println!(
                "| {name} | {} | {:.3} | {:.3} | {:.3} |",
                f.len(),
                quantile(f, 0.1),
                quantile(f, 0.5),
                quantile(f, 0.9)
            );
        }
        for (x, y) in [(0, 1), (0, 2)] {
            let (d, pv) = ks(&data[x], &data[y]);
            let ratio = quantile(&data[x], 0.5) / quantile(&data[y], 0.5);
            println!(
                "| {} vs {} | KS D {d:.4} | p {pv:.4} | p50 {ratio:.3}× |",
                names[x], names[y]
            );
            rekey_testkit::figures::record(
                "side channels",
                &format!(
                    "next requests after a forgot, {label} probe: {} vs {} (n={each})",
                    names[x], names[y]
                ),
                &format!("KS D {d:.4}, p {pv:.3}"),
                &format!("p50 {:.3} ms", quantile(&data[y], 0.5)),
                Some(ratio),
            );
            p.insert((label, x, y), pv);
        }
    }
    if let Relay::Elsewhere = relay {
        pin(std::process::id(), &format!("0-{}", cpus - 1));
    }
    // The stand-ins' mail went to the sink, never to a stranger.
    let mails = smtp.messages();
    assert!(mails
        .iter()
        .all(|m| !m.rcpt_to.iter().any(|to| to.starts_with("stranger"))));
    if let Relay::HereWithSink = relay {
        let sunk = mails.iter().filter(|m| m.rcpt_to == ["discard@sink.test"]).count();
        assert!(
            sunk >= each / 2,
            "only {sunk} of {each} strangers' requests sent mail to the sink"
        );
    }
    let seen = p[&("mean", 0, 2)] < ALPHA || p[&("slowest", 0, 2)] < ALPHA;
    assert!(seen, "the probes cannot see the work a forgot causes: {p:?}");
    for label in ["mean", "slowest"] {
        let pv = p[&(label, 0, 1)];
        assert!(
            pv >= ALPHA,
            "an account's forgot shows in the next requests ({label}: p = {pv}, relay {relay:?})"
        );
    }
}

/// One measurement at a time: two at once would time each other.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread")]
async fn forgot_answers_and_timing_do_not_tell_known_unknown_or_limited_apart() {
    let _turn = ONE_AT_A_TIME.lock().await;
    forgot_is_alike(1000, Store::Sled).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn on_postgresql_forgot_answers_and_timing_do_not_tell_known_unknown_or_limited_apart() {
    let _turn = ONE_AT_A_TIME.lock().await;
    forgot_is_alike(1000, Store::Postgres).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_failures_do_not_tell_a_wrong_password_from_an_unknown_account() {
    let _turn = ONE_AT_A_TIME.lock().await;
    sign_in_is_alike(1000, Store::Sled).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn on_postgresql_sign_in_failures_do_not_tell_a_wrong_password_from_an_unknown_account() {
    let _turn = ONE_AT_A_TIME.lock().await;
    sign_in_is_alike(1000, Store::Postgres).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_codes_do_not_tell_a_live_reset_no_reset_or_no_account_apart() {
    let _turn = ONE_AT_A_TIME.lock().await;
    wrong_codes_are_alike(1000).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn registration_does_not_tell_a_new_address_from_one_with_an_account() {
    let _turn = ONE_AT_A_TIME.lock().await;
    registration_is_alike(1000).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn after_a_settings_change_a_stranger_costs_what_an_old_account_costs() {
    let _turn = ONE_AT_A_TIME.lock().await;
    settings_change_is_alike(1000).await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "long run: 3 × 1000 trials of 650 ms each (about 35 minutes)"]
async fn long_run_worker_work_after_the_answer() {
    let _turn = ONE_AT_A_TIME.lock().await;
    worker_work_is_not_seen(trials(), Relay::Elsewhere).await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "long run: 3 × 1000 trials of 650 ms (about 33 minutes)"]
async fn long_run_worker_work_with_the_relay_on_this_machine() {
    let _turn = ONE_AT_A_TIME.lock().await;
    worker_work_is_not_seen(trials(), Relay::HereWithSink).await;
}

/// Trials of each kind for the worker's long runs: `REKEY_WORKER_TRIALS`, else 1000.
fn trials() -> usize {
    std::env::var("REKEY_WORKER_TRIALS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "long run: 5000 of each kind (a few minutes)"]
async fn long_run_forgot_and_sign_in() {
    let _turn = ONE_AT_A_TIME.lock().await;
    forgot_is_alike(5000, Store::Sled).await;
    forgot_is_alike(5000, Store::Postgres).await;
    sign_in_is_alike(5000, Store::Sled).await;
    sign_in_is_alike(5000, Store::Postgres).await;
    wrong_codes_are_alike(5000).await;
    registration_is_alike(5000).await;
    settings_change_is_alike(5000).await;
}
