//! `GET /metrics` in Prometheus text, and the middleware that counts requests.
//! Labels are the route pattern and the status, never anything a client typed.
//!
//! Served only on `metrics_listen`, never on the public listener: some of these counters
//! (requests for addresses with no account, mail delivered) move differently for known and
//! unknown addresses, which is exactly what the public answers keep to themselves.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::App;

/// Request counters since start.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
}

/// Counts every answer by route and status, and logs it (without bodies or queries).
pub async fn count(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = req.method().clone();
    let started = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16();
    tracing::info!(%method, %route, status, ms = started.elapsed().as_millis() as u64, "request");
    if let Ok(mut requests) = app.metrics.requests.lock() {
        *requests.entry((route, status)).or_default() += 1;
    }
    response
}

/// Renders the counters and the outbox's state.
pub async fn render(State(app): State<Arc<App>>) -> Response {
    let mut out = String::new();
    let requests = app.metrics.requests.lock().map(|r| r.clone()).unwrap_or_default();
    family(
        &mut out,
        "rekey_http_requests_total",
        "counter",
        "HTTP requests answered, by route and status.",
    );
    for ((route, status), n) in &requests {
        let _ = writeln!(
            out,
            "rekey_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
        );
    }
    family(
        &mut out,
        "rekey_rate_limited_total",
        "counter",
        "Requests refused by a rate limit, by route.",
    );
    let mut limited: BTreeMap<&str, u64> = BTreeMap::new();
    for ((route, status), n) in &requests {
        if *status == StatusCode::TOO_MANY_REQUESTS.as_u16() {
            *limited.entry(route).or_default() += n;
        }
    }
    for (route, n) in limited {
        let _ = writeln!(out, "rekey_rate_limited_total{{route=\"{route}\"}} {n}");
    }
    family(
        &mut out,
        "rekey_connections_open",
        "gauge",
        "Connections open on the public listener.",
    );
    let _ = writeln!(out, "rekey_connections_open {}", app.connections.open());
    family(
        &mut out,
        "rekey_connections_refused_total",
        "counter",
        "Connections closed at once because max_connections were open.",
    );
    let _ = writeln!(out, "rekey_connections_refused_total {}", app.connections.refused());
    family(
        &mut out,
        "rekey_intake_depth",
        "gauge",
        "Reset requests answered and waiting for the worker.",
    );
    let _ = writeln!(out, "rekey_intake_depth {}", app.rekey.intake_depth());
    family(
        &mut out,
        "rekey_reset_requests_no_account_total",
        "counter",
        "Reset requests for addresses with no account (answered like any other, no mail).",
    );
    let no_account = app
        .rekey
        .steps()
        .counter(rekey_core::service::reset::NO_ACCOUNT_COUNTER)
        .await
        .unwrap_or(0);
    let _ = writeln!(out, "rekey_reset_requests_no_account_total {no_account}");
    if let Ok(status) = app.rekey.outbox().status().await {
        let gauges: [(&str, &str, &str, u64); 5] = [
            (
                "rekey_outbox_depth",
                "gauge",
                "Mails waiting to be delivered.",
                status.depth as u64,
            ),
            (
                "rekey_outbox_oldest_age_seconds",
                "gauge",
                "Age of the oldest waiting mail.",
                status.oldest_age_secs.unwrap_or(0).max(0) as u64,
            ),
            (
                "rekey_outbox_dead",
                "gauge",
                "Mails refused for good (dead letters).",
                status.dead as u64,
            ),
            (
                "rekey_mail_delivered_total",
                "counter",
                "Mails the server accepted.",
                status.delivered,
            ),
            (
                "rekey_mail_failures_total",
                "counter",
                "Delivery attempts that failed (deferred or refused).",
                status.failures,
            ),
        ];
        for (name, kind, help, value) in gauges {
            family(&mut out, name, kind, help);
            let _ = writeln!(out, "{name} {value}");
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}
