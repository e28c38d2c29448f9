//! Mail transports: SMTP through lettre with rustls, or the local mailbox (files in the
//! data directory) when no server is configured.
//!
//! TLS is never downgraded: `smtps://` is TLS from the first byte, `smtp://` requires
//! STARTTLS, and only `smtp+plain://` talks in the clear, to a loopback relay or with an
//! explicit opt-in. Every send has a hard timeout of its own, because lettre's socket
//! timeout does not fire on a server that accepts and then stays silent.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::PoolConfig;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::config::Config;

pub use crate::smtp_url::{redact, Security, SetupError, SmtpTarget};

/// What became of one send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The server put this message off (a 4xx reply to it): try it again later.
    #[error("{0}")]
    Retry(String),
    /// The server refused this message for good (5xx): dead-letter it.
    #[error("{0}")]
    Rejected(String),
    /// The mail server cannot take any mail right now: nothing listens, it stays silent, its
    /// certificate is not trusted, it refuses Rekey's login, or it says "421 service not
    /// available". No message is to blame, so the outbox stops the pass and the whole queue
    /// waits together: one attempt per pass instead of one per queued mail.
    #[error("{0}")]
    ServerUnavailable(String),
}

/// Where mail goes.
#[derive(Clone)]
pub enum Mailer {
    /// A real SMTP server.
    Smtp {
        /// The pooled transport.
        transport: AsyncSmtpTransport<Tokio1Executor>,
        /// `host:port`, for messages.
        server: String,
        /// Hard limit on one send.
        timeout: Duration,
        /// Where a stand-in's mail really goes, when the operator named a sink
        /// (`stand_in_mail_to`); `None`: it is only rehearsed.
        stand_in_sink: Option<String>,
    },
    /// The local mailbox: one `.eml` file per message in this folder.
    Mailbox(PathBuf),
}

impl Mailer {
    /// Builds the transport the configuration asks for.
    pub fn from_config(config: &Config) -> Result<Mailer, SetupError> {
        let Some(url) = &config.smtp_url else {
            let dir = config.data_dir.join("mailbox");
            std::fs::create_dir_all(&dir).map_err(|e| SetupError::Mailbox {
                path: dir.clone(),
                reason: e.to_string(),
            })?;
            return Ok(Mailer::Mailbox(dir));
        };
        let target = SmtpTarget::parse(url.expose(), config.smtp_allow_plain)?;
        let timeout = Duration::from_secs(config.smtp_timeout_secs);
        let tls_params = || -> Result<TlsParameters, SetupError> {
            let mut b = TlsParameters::builder(target.host.clone());
            if let Some(path) = &config.smtp_ca_file {
                let fail = |reason: String| SetupError::CaFile {
                    path: path.clone(),
                    reason,
                };
                let pem = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
                let cert = Certificate::from_pem(&pem).map_err(|e| fail(e.to_string()))?;
                b = b.add_root_certificate(cert);
            }
            b.build_rustls().map_err(|e| SetupError::CaFile {
                path: config.smtp_ca_file.clone().unwrap_or_default(),
                reason: e.to_string(),
            })
        };
        let tls = match target.security {
            Security::ImplicitTls => Tls::Wrapper(tls_params()?),
            Security::StartTls => Tls::Required(tls_params()?),
            Security::Plain => Tls::None,
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(target.host.clone())
            .port(target.port)
            .tls(tls)
            .timeout(Some(timeout))
            .pool_config(PoolConfig::new().max_size(config.smtp_pool_size));
        if let Some((user, pass)) = &target.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), pass.clone()));
        }
        Ok(Mailer::Smtp {
            transport: builder.build(),
            server: format!("{}:{}", target.host, target.port),
            timeout,
            stand_in_sink: config.stand_in_mail_to.clone(),
        })
    }

    /// Where mail goes, in words ("the mail server mail.example.com:465", "the local mailbox …").
    pub fn describe(&self) -> String {
        match self {
            Mailer::Smtp { server, .. } => format!("the mail server {server}"),
            Mailer::Mailbox(dir) => format!("the local mailbox {}", dir.display()),
        }
    }

    /// Makes sure the server can take mail at all (connects, secures, logs in, or reuses a
    /// pooled connection that did), before a pass sends anything. When it cannot, that is
    /// one connection and one login attempt for the whole queue rather than one per mail.
    pub async fn check(&self) -> Result<(), SendError> {
        let Mailer::Smtp {
            transport,
            server,
            timeout,
            ..
        } = self
        else {
            return Ok(());
        };
        match tokio::time::timeout(*timeout, transport.test_connection()).await {
            Err(_) => Err(silent(server, *timeout)),
            Ok(Ok(true)) => Ok(()),
            Ok(Ok(false)) => Err(SendError::ServerUnavailable(format!(
                "the mail server {server} dropped the connection right after it was made"
            ))),
            Ok(Err(e)) => Err(match classify(&e, server) {
                unavailable @ SendError::ServerUnavailable(_) => unavailable,
                // A refusal before any message was sent (a 554 banner, a 4xx to EHLO) is
                // about the server, never about a mail: no message may be dead-lettered for it.
                _ => {
                    SendError::ServerUnavailable(format!("the mail server {server} is not taking mail right now ({e})"))
                }
            }),
        }
    }

    /// Sends one formatted message. Returns only once the server accepted it (or it is on disk).
    pub async fn send(&self, from: &str, to: &[String], raw: &[u8]) -> Result<(), SendError> {
        match self {
            Mailer::Mailbox(dir) => write_to_mailbox(dir, raw)
                .map_err(|e| SendError::Retry(format!("could not write to the local mailbox {}: {e}", dir.display()))),
            Mailer::Smtp {
                transport,
                server,
                timeout,
                ..
            } => {
                let envelope = envelope(from, to)
                    .map_err(|e| SendError::Rejected(format!("the message has an unusable address: {e}")))?;
                match tokio::time::timeout(*timeout, transport.send_raw(&envelope, raw)).await {
                    Err(_) => Err(silent(server, *timeout)),
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(classify(&e, server)),
                }
            }
        }
    }

    /// What sending `raw` costs here, for a stand-in's mail (see
    /// [`crate::outbox::Outbox::rehearse`]). With a sink (`stand_in_mail_to`) the message
    /// really goes, to the sink alone: the mail server then does for a stranger what it does
    /// for an account (takes, parses and queues a message), which matters when it shares
    /// rekeyd's machine. Without one, the round trips of a send on a pooled connection
    /// (lettre's is a NOOP at checkout, then MAIL, RCPT, DATA and the message: here three
    /// tests of two NOOPs each, as its payload costs a little more than a NOOP), or a message
    /// written and synced into the mailbox's own temporary file, then removed. Failures do
    /// not matter: nothing was to be delivered.
    pub async fn rehearse(&self, from: &str, raw: &[u8]) {
        match self {
            Mailer::Smtp {
                stand_in_sink: Some(sink),
                ..
            } => {
                let _ = self.send(from, std::slice::from_ref(sink), raw).await;
            }
            Mailer::Smtp { transport, timeout, .. } => {
                for _ in 0..3 {
                    let _ = tokio::time::timeout(*timeout, transport.test_connection()).await;
                }
            }
            Mailer::Mailbox(dir) => {
                let rehearsal = dir.join(".stand-in.tmp");
                let written = std::fs::File::create(&rehearsal).and_then(|mut f| {
                    std::io::Write::write_all(&mut f, raw)?;
                    f.sync_all()
                });
                if written.is_ok() {
                    let _ = std::fs::remove_file(&rehearsal);
                }
            }
        }
    }
}

fn envelope(from: &str, to: &[String]) -> Result<Envelope, String> {
    let from: Address = from.parse().map_err(|e| format!("{e}"))?;
    let to = to
        .iter()
        .map(|t| t.parse::<Address>().map_err(|e| format!("{e}")))
        .collect::<Result<Vec<_>, _>>()?;
    Envelope::new(Some(from), to).map_err(|e| e.to_string())
}

/// A server that accepted the connection and then said nothing within the hard limit.
fn silent(server: &str, timeout: Duration) -> SendError {
    SendError::ServerUnavailable(format!(
        "the mail server {server} did not answer within {} seconds",
        timeout.as_secs()
    ))
}

/// Turns lettre's error into words and a verdict. Login failures (530/534/535/538), a 421
/// ("service not available", which RFC 5321 means for the whole session), and trouble below
/// SMTP (unreachable, TLS, timeout) are the server's, not this message's: the queue waits
/// for the server, nothing is dead-lettered. Other 4xx put this message off, 5xx refuse it.
fn classify(e: &lettre::transport::smtp::Error, server: &str) -> SendError {
    let code: Option<u16> = e.status().and_then(|c| c.to_string().parse().ok());
    let detail = e.to_string();
    match code {
        Some(530 | 534 | 535 | 538) => SendError::ServerUnavailable(format!(
            "the mail server {server} refused Rekey's login ({detail}); check the user and password in REKEY_SMTP_URL"
        )),
        Some(421) => SendError::ServerUnavailable(format!(
            "the mail server {server} is not taking mail right now and asked to try again later ({detail})"
        )),
        Some(c) if (500..600).contains(&c) => {
            SendError::Rejected(format!("the mail server {server} refused the message for good ({detail})"))
        }
        Some(_) => SendError::Retry(format!("the mail server {server} asked to try again later ({detail})")),
        None if e.is_tls() || detail.to_lowercase().contains("certificate") => SendError::ServerUnavailable(format!(
            "could not set up a secure connection to {server}: {detail}; if the server uses its own CA, set REKEY_SMTP_CA_FILE"
        )),
        None if e.is_timeout() => {
            SendError::ServerUnavailable(format!("the mail server {server} did not answer in time ({detail})"))
        }
        None => SendError::ServerUnavailable(format!("could not reach the mail server {server}: {detail}")),
    }
}

fn write_to_mailbox(dir: &Path, raw: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let name = format!("{stamp:015}-{}.eml", crate::token::random_id());
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(raw)?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(name))
}
