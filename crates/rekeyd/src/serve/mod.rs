//! `rekeyd serve`: the reset flow over HTTP. A thin front: every handler parses its input,
//! calls `rekey-core`, and maps the core's error to a status and `{code, message}`.

mod api;
mod body;
mod client;
mod connections;
mod landing;
mod metrics;
pub mod openapi;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use axum::Router;
use rekey_core::smtp_url::SmtpTarget;
use rekey_core::{Config, Rekey};
use tokio::sync::watch;

use body::MAX_BODY_BYTES;

/// How long requests in flight may take to finish once shutdown starts.
const DRAIN: Duration = Duration::from_secs(20);

/// What every handler shares.
pub struct App {
    rekey: Arc<Rekey>,
    metrics: metrics::Metrics,
    trusted_proxies: Vec<std::net::IpAddr>,
    registration: bool,
    tls: bool,
    connections: connections::Capped,
}

/// The public routes, with limits and request counting around them. Metrics are not among
/// them: their counters tell known addresses from unknown ones (see [`metrics_router`]).
fn router(app: Arc<App>, request_timeout: Duration) -> Router {
    Router::new()
        .route("/users", post(api::register))
        .route("/users/verify", post(api::verify))
        .route("/users/verify/inspect", post(api::inspect_verify))
        .route("/sessions", post(api::sign_in))
        .route("/sessions/current", get(api::whoami).delete(api::sign_out))
        .route("/sessions/current/password", post(api::change_password))
        .route("/sessions/current/locale", put(api::set_locale))
        .route("/sessions/current/time_zone", put(api::set_time_zone))
        .route("/info", get(api::info))
        .route("/users/password/forgot", post(api::forgot))
        .route("/users/password/reset", post(api::reset))
        .route("/users/password/inspect", post(api::inspect))
        .route("/users/password/strength", post(api::strength))
        .route("/reset", get(landing::page))
        .route("/reset.js", get(landing::script))
        .route("/reset.css", get(landing::style))
        .route("/landing.js", get(landing::common_script))
        .route("/verify", get(landing::verify_page))
        .route("/verify.js", get(landing::verify_script))
        .route("/healthz", get(api::health))
        .route("/openapi.json", get(openapi::document))
        .fallback(api::not_found)
        .method_not_allowed_fallback(api::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(app.clone(), metrics::count))
        .layer(axum::middleware::from_fn(move |req, next| {
            api::deadline(request_timeout, req, next)
        }))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(app.clone(), body::speak))
        .layer(axum::middleware::from_fn_with_state(app.clone(), api::headers))
        .with_state(app)
}

/// `/metrics` and `/healthz` for the operator, on `metrics_listen` only.
fn metrics_router(app: Arc<App>) -> Router {
    Router::new()
        .route("/metrics", get(metrics::render))
        .route("/healthz", get(api::health))
        .fallback(api::not_found)
        .with_state(app)
}

/// Serves until SIGTERM or Ctrl-C: then stops accepting, lets requests in flight finish,
/// stops the workers between mails, and flushes the store.
/// A relay on this machine shares its CPUs with rekeyd, and its work on a real mail then
/// shows in a requester's next requests (SECURITY.md, "Known and accepted"); a sink for the
/// stand-ins' mail makes it work alike for strangers.
fn warn_of_a_relay_on_this_machine(config: &Config) {
    let relay = config
        .smtp_url
        .as_ref()
        .and_then(|u| SmtpTarget::parse(u.expose(), true).ok());
    if relay.is_some_and(|r| r.on_this_machine()) && config.stand_in_mail_to.is_none() {
        tracing::warn!("the mail server is on this machine and stand_in_mail_to is unset: its work on a reset mail can show in a requester's next requests; set stand_in_mail_to to an address it throws away");
    }
}

pub async fn run(config: Config) -> Result<(), String> {
    let tls = match (&config.tls_cert_file, &config.tls_key_file) {
        (Some(cert), Some(key)) => Some(tls_config(cert, key)?),
        _ => None,
    };
    let listen = config.listen;
    let request_timeout = Duration::from_secs(config.request_timeout_secs);
    let capped = connections::Capped::new(
        config.max_connections,
        config.max_connections_per_client,
        config.trusted_proxies.clone(),
    );
    let bind =
        |addr: SocketAddr| std::net::TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"));
    let listener = bind(listen)?;
    let metrics_listener = config.metrics_listen.map(bind).transpose()?;
    warn_of_a_relay_on_this_machine(&config);
    let app = Arc::new(App {
        metrics: metrics::Metrics::default(),
        trusted_proxies: config.trusted_proxies.clone(),
        registration: config.registration,
        tls: tls.is_some(),
        connections: capped.clone(),
        rekey: Arc::new(Rekey::connect(config, "rekeyd serve").await.map_err(|e| e.message())?),
    });
    let rekey = app.rekey.clone();

    let (stop_workers, workers_stopped) = watch::channel(false);
    let workers = tokio::spawn(rekey.clone().run_workers(workers_stopped));
    let (stop, stopping) = watch::channel(false);
    tokio::spawn(shutdown_on_signal(stop));

    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(%listen, scheme, "serving");
    eprintln!(
        "rekeyd: serving {scheme}://{listen} (mail to {})",
        rekey.outbox().mailer().describe()
    );
    // A client that trickles its headers (slowloris), or keeps a connection idle, is cut off.
    let header_timeout = request_timeout.min(Duration::from_secs(10));
    let metrics = metrics_listener.map(|listener| {
        let shown = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
        eprintln!("rekeyd: metrics on http://{shown}/metrics");
        let serving = connections::Serving {
            tls: None,
            capped: connections::Capped::new(64, 64, Vec::new()),
            header_timeout,
            drain: Duration::from_secs(1),
        };
        tokio::spawn(connections::serve(
            listener,
            metrics_router(app.clone()),
            serving,
            stopping.clone(),
        ))
    });
    let serving = connections::Serving {
        tls,
        capped,
        header_timeout,
        drain: DRAIN,
    };
    let served = connections::serve(listener, router(app, request_timeout), serving, stopping).await;
    if let Some(metrics) = metrics {
        let _ = metrics.await;
    }
    let _ = stop_workers.send(true);
    let _ = workers.await;
    rekey.steps().flush().await.map_err(|e| e.message())?;
    eprintln!("rekeyd: stopped; every answered request is on disk");
    served.map_err(|e| format!("the server failed: {e}"))
}

async fn shutdown_on_signal(stop: watch::Sender<bool>) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("a SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    eprintln!("rekeyd: stopping: finishing requests in flight");
    let _ = stop.send(true);
}

fn tls_config(cert: &std::path::Path, key: &std::path::Path) -> Result<Arc<rustls::ServerConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("tls_cert_file {}: not a PEM certificate chain: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("tls_cert_file {}: holds no certificate", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("tls_key_file {}: not a PEM private key: {e}", key.display()))?;
    let mut server = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("tls_cert_file and tls_key_file do not go together: {e}"))?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(server))
}
