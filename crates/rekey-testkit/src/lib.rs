//! Test harness for Rekey: a real SMTP capture server on loopback.
//!
//! [`SmtpCapture::start`] launches `tests/smtp/capture.py` (Python +
//! aiosmtpd) listening on three 127.0.0.1 ports:
//!
//! * **STARTTLS** ([`SmtpCapture::starttls_port`]): STARTTLS is required before
//!   `MAIL`, AUTH (PLAIN/LOGIN) is required and only offered after TLS.
//! * **implicit TLS** ([`SmtpCapture::implicit_port`]): TLS from the first
//!   byte (smtps/465 style), AUTH required.
//! * **plain** ([`SmtpCapture::plain_port`]): no TLS, no AUTH (a loopback relay).
//!
//! The server certificate is issued by a CA generated for the test
//! ([`TestCa`]); point the client at [`SmtpCapture::ca_pem`] to trust it, or
//! at [`SmtpCapture::untrusted_ca_pem`] to see verification fail.  Every
//! accepted message can be read back as a [`CapturedMail`]; failures are
//! injected with [`SmtpCapture::set_fault`].
//!
//! ```no_run
//! use rekey_testkit::{Fault, SmtpCapture};
//! use std::time::Duration;
//!
//! let smtp = SmtpCapture::start();
//! // ... point the code under test at smtp.starttls_url() and smtp.ca_pem() ...
//! let mails = smtp.wait_for_messages(1, Duration::from_secs(5));
//! assert!(mails[0].tls);
//! smtp.set_fault(Fault::Reject(451, "4.3.0 try later".into()));
//! ```
//!
//! On-disk layout of [`SmtpCapture::dir`]: `mail/NNNNNN.json` (messages),
//! `fault` (control file), `stats.json`, `ports.json`, `capture.log` (server
//! stderr), `ca/` and `untrusted-ca/` (PEM files).

pub mod figures;
pub mod postgres;
pub mod webdriver;
pub use postgres::PgCluster;
pub use webdriver::WebDriver;

mod ca;
mod mail;
mod smtp;
mod util;
pub use ca::TestCa;
pub use mail::{link_token, link_token_in_raw, CapturedMail};
pub use smtp::{Fault, SmtpCapture};
pub use util::free_port;
// Crate-internal: `postgres` writes its files with it (`crate::write_file`).
use util::write_file;
