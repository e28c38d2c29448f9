//! `smtp_url`, read: where the SMTP server is, how to secure the connection, and the login.
//! Its own module so that the settings can check the URL without the transport.

use std::net::IpAddr;
use std::path::PathBuf;

use url::Url;

/// How to reach the SMTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// `smtps://`: TLS from the first byte (port 465).
    ImplicitTls,
    /// `smtp://`: STARTTLS, required (port 587).
    StartTls,
    /// `smtp+plain://`: no TLS (loopback relay, or opted in).
    Plain,
}

/// A parsed `REKEY_SMTP_URL`.
#[derive(Clone)]
pub struct SmtpTarget {
    /// Server host name (also the name its certificate must carry).
    pub host: String,
    /// Port.
    pub port: u16,
    /// TLS mode.
    pub security: Security,
    /// Login, if the URL has one.
    pub credentials: Option<(String, String)>,
}

/// Why the SMTP settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The URL does not parse or uses an unknown scheme.
    #[error(
        "'{0}' is not an SMTP URL like smtps://user:pass@mail.example.com:465 or smtp://user:pass@mail.example.com:587"
    )]
    BadUrl(String),
    /// Plain SMTP to a host that is not this machine, without opting in.
    #[error("smtp+plain:// sends mail unencrypted; it is only allowed to a relay on this machine (127.0.0.1, ::1, localhost) unless smtp_allow_plain is set")]
    PlainNotAllowed,
    /// The CA file is not PEM.
    #[error("cannot use the CA file {path}: {reason}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The local mailbox folder cannot be created.
    #[error("cannot create the local mailbox {path}: {reason}")]
    Mailbox {
        /// The folder.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

impl SmtpTarget {
    /// Parses an SMTP URL. The password never appears in the error.
    pub fn parse(text: &str, allow_plain: bool) -> Result<SmtpTarget, SetupError> {
        let url = Url::parse(text).map_err(|_| SetupError::BadUrl(redact(text)))?;
        let (security, default_port) = match url.scheme() {
            "smtps" => (Security::ImplicitTls, 465),
            "smtp" => (Security::StartTls, 587),
            "smtp+plain" => (Security::Plain, 25),
            _ => return Err(SetupError::BadUrl(redact(text))),
        };
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| SetupError::BadUrl(redact(text)))?
            .trim_matches(['[', ']'])
            .to_string();
        let loopback = on_this_machine(&host);
        // The config check passes allow_plain = true; the real decision happens at start.
        if security == Security::Plain && !loopback && !allow_plain {
            return Err(SetupError::PlainNotAllowed);
        }
        let decode = |s: &str| percent_decode(s).ok_or_else(|| SetupError::BadUrl(redact(text)));
        let credentials = if url.username().is_empty() {
            None
        } else {
            Some((decode(url.username())?, decode(url.password().unwrap_or(""))?))
        };
        Ok(SmtpTarget {
            host,
            port: url.port().unwrap_or(default_port),
            security,
            credentials,
        })
    }

    /// Whether the server is a relay on this machine (127.0.0.1, ::1, localhost).
    pub fn on_this_machine(&self) -> bool {
        on_this_machine(&self.host)
    }
}

fn on_this_machine(host: &str) -> bool {
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// An SMTP URL with its password replaced, for messages.
pub fn redact(text: &str) -> String {
    match Url::parse(text) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "<unparseable URL>".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_schemes() {
        let t = SmtpTarget::parse("smtps://me:p%40ss@mail.example.com", false).unwrap();
        assert_eq!((t.security, t.port), (Security::ImplicitTls, 465));
        assert_eq!(t.credentials, Some(("me".into(), "p@ss".into())));
        let t = SmtpTarget::parse("smtp://mail.example.com:2525", false).unwrap();
        assert_eq!((t.security, t.port, t.credentials), (Security::StartTls, 2525, None));
        let t = SmtpTarget::parse("smtp+plain://127.0.0.1:25", false).unwrap();
        assert_eq!(t.security, Security::Plain);
    }

    #[test]
    fn plain_only_to_loopback_unless_opted_in() {
        assert!(matches!(
            SmtpTarget::parse("smtp+plain://mail.example.com", false),
            Err(SetupError::PlainNotAllowed)
        ));
        assert!(SmtpTarget::parse("smtp+plain://mail.example.com", true).is_ok());
        assert!(SmtpTarget::parse("smtp+plain://[::1]:25", false).is_ok());
    }

    #[test]
    fn errors_never_show_the_password() {
        let err = SmtpTarget::parse("http://me:hunter2@x", false)
            .err()
            .unwrap()
            .to_string();
        assert!(!err.contains("hunter2") && err.contains("***"), "{err}");
    }
}
