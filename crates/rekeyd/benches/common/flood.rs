//! What the HTTP benches share: floods and batches of requests over keep-alive connections,
//! their latencies, and the table of figures they print.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rekey_testkit::figures::record;
use reqwest::{Client, RequestBuilder};

/// What one flood saw: latencies of the requests started inside the measured window.
pub struct Run {
    pub latencies: Vec<Duration>,
    pub statuses: BTreeMap<u16, u64>,
    pub secs: f64,
    /// Every request a flood sent, warm-up included: (request number, status).
    pub sent: Vec<(u64, u16)>,
}

impl Run {
    pub fn rps(&self) -> f64 {
        self.latencies.len() as f64 / self.secs
    }

    pub fn pct(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let mut d = self.latencies.clone();
        d.sort();
        d[((d.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0
    }

    pub fn count(&self, status: u16) -> u64 {
        self.statuses.get(&status).copied().unwrap_or(0)
    }

    /// `202×1234` plus anything else (`0` = transport error).
    pub fn statuses(&self) -> String {
        let parts: Vec<String> = self.statuses.iter().map(|(s, n)| format!("{s}×{n}")).collect();
        parts.join(" ")
    }

    pub fn print(&self, name: &str) {
        println!(
            "  {name:<44} {:>8.1} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>8.2} ms  [{}]",
            self.rps(),
            self.pct(0.5),
            self.pct(0.99),
            self.pct(1.0),
            self.statuses()
        );
    }
}

/// A client that keeps one connection open (each flood task has its own).
pub fn client() -> Client {
    Client::builder()
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// Sends the request and reads the whole answer; transport errors count as status 0.
pub async fn send(req: RequestBuilder) -> u16 {
    match req.send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            let _ = r.bytes().await;
            status
        }
        Err(_) => 0,
    }
}

/// `conns` tasks, one connection each, send `make(client, n)` back to back for `warmup` +
/// `measure`; only requests started after the warm-up are recorded. `n` counts requests
/// across all tasks, so each one can pick a different address.
pub async fn flood<F>(conns: usize, warmup: Duration, measure: Duration, make: F) -> Run
where
    F: Fn(&Client, u64) -> RequestBuilder + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let seq = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let (warm_end, end) = (start + warmup, start + warmup + measure);
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (make, seq) = (make.clone(), seq.clone());
        tasks.push(tokio::spawn(async move {
            let http = client();
            let mut out = Vec::new();
            loop {
                let n = seq.fetch_add(1, Ordering::Relaxed);
                let req = make(&http, n);
                let t = Instant::now();
                if t >= end {
                    return out;
                }
                let status = send(req).await;
                out.push((t >= warm_end, t.elapsed(), n, status));
            }
        }));
    }
    let mut run = Run {
        latencies: Vec::new(),
        statuses: BTreeMap::new(),
        secs: measure.as_secs_f64(),
        sent: Vec::new(),
    };
    for t in tasks {
        for (measured, latency, n, status) in t.await.unwrap() {
            run.sent.push((n, status));
            if measured {
                run.latencies.push(latency);
                *run.statuses.entry(status).or_default() += 1;
            }
        }
    }
    run
}

/// Runs `jobs` (one request each) over `conns` connections; latency of every one.
pub async fn batch<F>(conns: usize, jobs: Vec<F>) -> (Run, Vec<u16>)
where
    F: FnOnce(&Client) -> RequestBuilder + Send + 'static,
{
    let n = jobs.len();
    let queue = Arc::new(Mutex::new(jobs.into_iter().enumerate().collect::<Vec<_>>()));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let queue = queue.clone();
        tasks.push(tokio::spawn(async move {
            let http = client();
            let mut out = Vec::new();
            loop {
                let Some((i, job)) = queue.lock().unwrap().pop() else {
                    return out;
                };
                let t = Instant::now();
                let status = send(job(&http)).await;
                out.push((i, t.elapsed(), status));
            }
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.extend(t.await.unwrap());
    }
    let secs = start.elapsed().as_secs_f64();
    let mut by_index = vec![0u16; n];
    let mut run = Run {
        latencies: Vec::new(),
        statuses: BTreeMap::new(),
        secs,
        sent: Vec::new(),
    };
    for (i, latency, status) in results {
        by_index[i] = status;
        run.latencies.push(latency);
        *run.statuses.entry(status).or_default() += 1;
    }
    (run, by_index)
}

/// The final table. Each row is also recorded for `scripts/bench` as it is added, so a run
/// that stops half-way still leaves the figures it measured.
pub struct Table {
    /// The figures file's group (`rekey_testkit::figures`).
    group: &'static str,
    rows: Vec<[String; 4]>,
}

impl Table {
    pub fn new(group: &'static str) -> Table {
        Table {
            group,
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, figure: &str, value: f64, baseline: f64, unit: &str, base_name: &str) {
        record(
            self.group,
            figure,
            &format!("{value:.2} {unit}"),
            &format!("{base_name} {baseline:.2} {unit}"),
            Some(value / baseline),
        );
        self.rows.push([
            figure.to_string(),
            format!("{value:.2} {unit}"),
            format!("{baseline:.2} {unit} ({base_name})"),
            format!("{:.2}×", value / baseline),
        ]);
    }

    pub fn note(&mut self, figure: &str, value: String) {
        record(self.group, figure, &value, "", None);
        self.rows
            .push([figure.to_string(), value, String::new(), String::new()]);
    }

    pub fn print(&self) {
        let w: Vec<usize> = (0..4)
            .map(|c| self.rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0).max(8))
            .collect();
        let line = |r: &[String; 4]| {
            let cells: Vec<String> = (0..4).map(|c| format!("{:<1$}", r[c], w[c])).collect();
            println!("| {} |", cells.join(" | "));
        };
        line(&["figure".into(), "value".into(), "baseline".into(), "ratio".into()]);
        println!(
            "|{}|",
            w.iter().map(|n| "-".repeat(n + 2)).collect::<Vec<_>>().join("|")
        );
        for r in &self.rows {
            line(r);
        }
    }
}
