//! Rekey's domain: accounts in sled, argon2id hashes, single-use JWT reset tokens,
//! a password policy after NIST SP 800-63B-4, and reset mail through a durable outbox.
//!
//! No GUI and no HTTP live here: the desktop app and `rekeyd` are thin fronts over
//! [`Rekey`], the service object. Every failure a front shows comes out as an
//! [`Error`] with a stable snake_case [`Error::code`] and plain words in [`Error::message`].
#![deny(missing_docs)]

pub mod audit;
pub mod clock;
pub mod config;
pub mod dkim;
pub mod duration;
pub mod email;
pub mod error;
pub mod hasher;
pub mod letters;
pub mod limits;
pub mod mailer;
pub mod outbox;
pub mod password;
pub mod sealed;
pub mod service;
pub mod smtp_url;
pub mod store;
pub mod token;
pub mod words;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::Config;
pub use email::Email;
pub use error::Error;
pub use service::Rekey;
