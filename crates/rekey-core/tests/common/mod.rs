//! Shared set-up for the core's integration tests: a real sled directory, the real SMTP
//! capture server, and helpers that read a mail the way a person would.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rekey_core::{Config, ManualClock, Rekey};
use rekey_testkit::{CapturedMail, SmtpCapture};

/// A config for a test: cheap argon2 so the suite stays fast, plus extra flags.
pub fn config(dir: &Path, smtp_url: Option<&str>, ca: Option<&Path>, extra: &[(&str, &str)]) -> Config {
    let mut flags: Vec<(&str, String)> = vec![
        ("data_dir", dir.display().to_string()),
        ("argon2_memory_kib", "8192".into()),
        ("argon2_iterations", "1".into()),
        ("smtp_timeout", "3s".into()),
        ("mail_from", "Rekey <no-reply@rekey.test>".into()),
        ("limit_address", "off".into()),
        ("limit_client", "off".into()),
    ];
    if let Some(url) = smtp_url {
        flags.push(("smtp_url", url.to_string()));
    }
    if let Some(ca) = ca {
        flags.push(("smtp_ca_file", ca.display().to_string()));
    }
    for (k, v) in extra {
        flags.retain(|(key, _)| key != k);
        flags.push((k, v.to_string()));
    }
    Config::from_layers(None, None, &[], &flags).expect("test config is valid")
}

/// Rekey on `config` with a clock the test can move.
pub fn open(config: Config) -> (Arc<Rekey>, ManualClock) {
    let clock = ManualClock::new();
    let rekey = Rekey::open_with_clock(config, "a test", Arc::new(clock.clone()))
        .unwrap_or_else(|e| panic!("Rekey opens: {e:?}"));
    (Arc::new(rekey), clock)
}

/// Opens Rekey on `dir` mailing through the capture server's STARTTLS port.
pub fn open_with_smtp(dir: &Path, smtp: &SmtpCapture, extra: &[(&str, &str)]) -> (Arc<Rekey>, ManualClock) {
    open(config(dir, Some(&smtp.starttls_url()), Some(smtp.ca_pem()), extra))
}

pub const PASSWORD: &str = "quiet harbour lanterns glow";
pub const NEW_PASSWORD: &str = "amber kites over the marsh";

/// Mails to `to` with `subject`, waiting up to 10 s for `n` of them.
pub fn mails_to(smtp: &SmtpCapture, to: &str, subject: &str, n: usize) -> Vec<CapturedMail> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let found: Vec<CapturedMail> = smtp
            .messages()
            .into_iter()
            .filter(|m| m.rcpt_to.iter().any(|r| r == to) && m.header("Subject") == Some(subject))
            .collect();
        if found.len() >= n || std::time::Instant::now() > deadline {
            assert!(
                found.len() >= n,
                "expected {n} mail(s) '{subject}' to {to}, got {}",
                found.len()
            );
            return found;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub const RESET_SUBJECT: &str = "Reset your Rekey password";
pub const CHANGED_SUBJECT: &str = "Your Rekey password was changed";

/// One test's world: the capture server, a data directory on disk, Rekey mailing through
/// the server's STARTTLS port, and the clock the test moves.
pub struct Scene {
    pub smtp: SmtpCapture,
    pub dir: tempfile::TempDir,
    pub rekey: Arc<Rekey>,
    pub clock: ManualClock,
}

impl Scene {
    pub fn new(extra: &[(&str, &str)]) -> Scene {
        let smtp = SmtpCapture::start();
        let dir = tempfile::tempdir().unwrap();
        let (rekey, clock) = open_with_smtp(dir.path(), &smtp, extra);
        Scene {
            smtp,
            dir,
            rekey,
            clock,
        }
    }

    /// Creates the account `email` (with [`PASSWORD`]), asks for a reset, delivers it, and
    /// returns the reset mail as it arrived at the SMTP server.
    pub async fn reset_mail_for_new_account(&self, email: &str) -> CapturedMail {
        self.rekey.create_account(email, PASSWORD, None, "test").await.unwrap();
        self.rekey.request_reset(email, "test").await.unwrap();
        self.rekey.drain().await.unwrap();
        mails_to(&self.smtp, email, RESET_SUBJECT, 1).remove(0)
    }

    /// Asks for another reset of an existing account and returns its mail (the newest).
    pub async fn next_reset_mail(&self, email: &str) -> CapturedMail {
        let before = mails_to(&self.smtp, email, RESET_SUBJECT, 0).len();
        self.rekey.request_reset(email, "test").await.unwrap();
        self.rekey.drain().await.unwrap();
        mails_to(&self.smtp, email, RESET_SUBJECT, before + 1).pop().unwrap()
    }
}
