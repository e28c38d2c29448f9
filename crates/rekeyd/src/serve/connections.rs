//! Accepting connections, and what one may hold: HTTP/1.1 only (HTTP/2 prior knowledge would
//! bypass the header timeout and buffer limits below), at most `max_connections` open at once
//! and `max_connections_per_client` from one client (so one cannot take every slot),
//! a TLS handshake and every request head within the header timeout, which also ends idle
//! keep-alive connections (hyper starts it whenever the connection waits for a request head,
//! the first or the next). On shutdown: stop accepting, let requests in flight finish.
//!
//! Our own accept loop rather than a server crate's: the one used before served HTTP/2 to any
//! client that asked in its first bytes, and had no cap on connections.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// How many connections may be open, in all and per client, and how many were turned away.
#[derive(Clone)]
pub struct Capped {
    slots: Arc<Semaphore>,
    max: usize,
    per_client: usize,
    /// Open connections by client (an IPv4 address, an IPv6 /64).
    clients: Arc<Mutex<HashMap<IpAddr, usize>>>,
    /// Peers not held to `per_client`: every client behind them shares their address.
    trusted: Arc<Vec<IpAddr>>,
    refused: Arc<AtomicU64>,
}

impl Capped {
    pub fn new(max: usize, per_client: usize, trusted: Vec<IpAddr>) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(max)),
            max,
            per_client,
            clients: Arc::default(),
            trusted: Arc::new(trusted),
            refused: Arc::default(),
        }
    }

    /// The client a peer counts as: itself, or its /64 for IPv6 (one host holds a /64).
    fn client_of(peer: IpAddr) -> IpAddr {
        match peer {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
            },
            v4 => v4,
        }
    }

    /// Counts one more connection for `peer`'s client; `None` when it has `per_client` open.
    fn take_client(&self, peer: IpAddr) -> Option<ClientSlot> {
        let client = Self::client_of(peer);
        if self.trusted.contains(&client) {
            return Some(ClientSlot {
                client: None,
                clients: self.clients.clone(),
            });
        }
        let mut clients = self.clients.lock().ok()?;
        let open = clients.entry(client).or_insert(0);
        if *open >= self.per_client {
            return None;
        }
        *open += 1;
        Some(ClientSlot {
            client: Some(client),
            clients: self.clients.clone(),
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.max - self.slots.available_permits()
    }

    /// Connections closed at once because `max` were open.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// A slot for a new connection from `peer`; `None` (and the connection is to be closed at
    /// once, rather than left waiting in the kernel's queue, where it looks like a hung
    /// server) when every slot, or every slot of its client, is taken.
    fn take(&self, peer: IpAddr) -> Option<(OwnedSemaphorePermit, ClientSlot)> {
        let slot = self
            .take_client(peer)
            .and_then(|client| Some((self.slots.clone().try_acquire_owned().ok()?, client)));
        if slot.is_none() {
            let refused = self.refused.fetch_add(1, Ordering::Relaxed);
            // One line per thousand, not one per connection: this happens under floods.
            if refused.is_multiple_of(1000) {
                tracing::warn!(
                    max = self.max,
                    per_client = self.per_client,
                    "connection refused: max_connections, or max_connections_per_client from one client, are open"
                );
            }
        }
        slot
    }
}

/// How one listener serves.
pub struct Serving {
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub capped: Capped,
    /// For the TLS handshake and for each request head (and so for idleness).
    pub header_timeout: Duration,
    /// How long requests in flight may take once shutdown starts.
    pub drain: Duration,
}

/// Serves `router` on `listener` until `shutdown` turns true, then lets the connections
/// finish the requests they are in (up to `drain`).
pub async fn serve(
    listener: std::net::TcpListener,
    router: Router,
    serving: Serving,
    mut shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = TcpListener::from_std(listener)?;
    let tls = serving.tls.map(TlsAcceptor::from);
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: wait a moment rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped(&mut shutdown) => break,
        };
        let Some((slot, client)) = serving.capped.take(peer.ip()) else {
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let stream = Slot {
            stream,
            _slot: slot,
            _client: client,
        };
        let service = router
            .clone()
            .map_request(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            });
        let service = TowerToHyperService::new(service);
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(serving.header_timeout)
            .max_buf_size(64 * 1024);
        match &tls {
            None => {
                let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
                tokio::spawn(async move {
                    let _ = connection.await;
                });
            }
            Some(tls) => {
                let (tls, watcher) = (tls.clone(), graceful.watcher());
                // A handshake that stalls holds a slot: it gets less time than a request head.
                let handshake_timeout = serving.header_timeout.min(Duration::from_secs(5));
                tokio::spawn(async move {
                    let stream = match tokio::time::timeout(handshake_timeout, tls.accept(stream)).await {
                        Ok(Ok(stream)) => stream,
                        _ => return,
                    };
                    let _ = watcher
                        .watch(http.serve_connection(TokioIo::new(stream), service))
                        .await;
                });
            }
        }
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(serving.drain) => {
            tracing::warn!("requests still in flight when the drain time ran out");
        }
    }
    Ok(())
}

/// Returns once `shutdown` turns true (or its sender is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// An accepted connection holding one of the slots, and one of its client's, until it closes.
struct Slot {
    stream: TcpStream,
    _slot: OwnedSemaphorePermit,
    _client: ClientSlot,
}

/// One open connection counted for its client; given back when dropped.
struct ClientSlot {
    client: Option<IpAddr>,
    clients: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let (Some(client), Ok(mut clients)) = (self.client, self.clients.lock()) else {
            return;
        };
        if let Some(open) = clients.get_mut(&client) {
            *open -= 1;
            if *open == 0 {
                clients.remove(&client);
            }
        }
    }
}

impl AsyncRead for Slot {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Slot {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
