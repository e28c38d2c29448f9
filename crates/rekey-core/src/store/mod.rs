//! What Rekey keeps: the records, and the steps the flows take on them.
//!
//! The flows ask a store for the domain's steps ([`steps`]): take a rate-limit token,
//! create an account unless its address has one, set a password and retire the reset that
//! allowed it, each atomic whatever the backend. How a backend lays the records out (sled
//! trees, tables) stays inside it. [`sled_backend`] is the embedded store, one directory
//! for one process; [`postgres`] is shared by every rekeyd that names the database. The
//! outbox has its own steps ([`outbox_steps`]).

pub mod copy;
pub mod outbox_steps;
pub mod postgres;
pub mod sled_backend;
pub mod steps;

use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Why the store could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process has the data directory open.
    #[error("{0}")]
    Locked(String),
    /// The data directory could not be created or read.
    #[error("cannot use the data directory {path}: {reason}")]
    Directory {
        /// The directory.
        path: PathBuf,
        /// What the system said.
        reason: String,
    },
    /// sled failed (disk full, I/O error, corruption).
    #[error("database error: {0}")]
    Sled(#[from] sled::Error),
    /// The database could not be reached, refused the login, or is of a version Rekey does
    /// not run on. The words name the database (never its password) and what to do.
    #[error("{0}")]
    Database(String),
    /// The database stopped answering while in use (it may come back: the pool reconnects).
    #[error("{0}")]
    Unreachable(String),
    /// A record could not be decoded: the data was written by an incompatible version.
    #[error("a stored record could not be read: {0}")]
    Corrupt(String),
}

/// An account.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    /// Random id; the JWT `sub`. Never the email, since links leak.
    pub id: String,
    /// The normalised address.
    pub email: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Rotated on every password change: kills outstanding reset tokens and sessions.
    pub stamp: String,
    /// A disabled account cannot sign in and gets no reset mail.
    pub disabled: bool,
    /// Unix seconds.
    pub created_at: i64,
    /// The language of the account's mail (a BCP 47 tag like `de-AT`); `None`: the
    /// install's `locale`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// The time zone times in the account's mail are written in (an IANA name like
    /// `Europe/Berlin`); `None`: UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

/// One of the settings of how an account's mail is written, with its new value (`None`: the
/// install's language, or UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailSetting<'a> {
    /// The language (a BCP 47 tag).
    Locale(Option<&'a str>),
    /// The time zone (an IANA name).
    TimeZone(Option<&'a str>),
}

/// A signed-in session. Stored under the SHA-256 of its token, so a copy of the
/// database does not hand out sessions.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    /// The account.
    pub user_id: String,
    /// The account's stamp when the session began; a rotated stamp ends it.
    pub stamp: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// The one live reset of an account (key: user id).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LiveReset {
    /// The token's `jti`.
    pub jti: String,
    /// The signing key that signed it.
    pub kid: String,
    /// Unix seconds.
    pub issued_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
}

/// Why a reset token no longer works, kept until it would have expired anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Retired {
    /// It reset the password.
    Used,
    /// A newer request replaced it.
    Replaced,
    /// Its code was entered wrong too many times. Only in data from versions where wrong
    /// codes retired the link too; now they retire the code alone.
    Burned,
}

/// A retired token (key: jti).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RetiredToken {
    /// Why.
    pub why: Retired,
    /// When the token would have expired; after that the record can go.
    pub expires_at: i64,
}

/// The typed code of an address's reset or verification, and the wrong codes typed for the
/// address since (key: `reset/<address>` or `verify/<address>`). Kept for every address a code is typed for, with or
/// without an account: an address with no reset holds a stand-in of the same shape, which
/// matches no code. So a wrong code costs the same read, HMAC and write whoever it is for.
/// At [`crate::service::codes::MAX_CODE_FAILURES`] wrong codes the code is retired; the link
/// keeps working.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodeState {
    /// Wrong codes so far.
    pub failures: u32,
    /// After this (Unix seconds) the record can go.
    pub until: i64,
    /// The account the reset is for (a random stand-in when there is none).
    pub user_id: String,
    /// The key whose HMAC the code is checked with.
    pub kid: String,
    /// The reset's `jti`: it must still be the account's live reset.
    pub jti: String,
    /// HMAC of the code (never the code itself).
    pub code_mac: String,
    /// When the code stops working (Unix seconds); 0 for a stand-in.
    pub expires_at: i64,
}

/// What an intake record asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntakeKind {
    /// A reset mail ("forgot password").
    #[default]
    Reset,
    /// A new account: a verification mail, or a notice when the address has an account.
    Register,
}

/// A request as acknowledged to the caller, before anyone looked the address up.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Intake {
    /// What is asked for.
    #[serde(default)]
    pub kind: IntakeKind,
    /// The normalised address asked for.
    pub email: String,
    /// Who asked (peer IP or desktop install), for the audit trail.
    pub client: String,
    /// Unix seconds.
    pub at: i64,
    /// For a registration: the argon2id hash of the chosen password (hashed before the
    /// answer, whatever the address, so the answer costs the same for all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
    /// For a registration: the language the new account's mail is to be written in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
}

/// An account waiting for its address to be verified (key `id/<id>`, and `email/<address>`
/// naming the id). It signs nothing in and receives no reset mail; it becomes a [`User`] when
/// the mailed link or code is used, and goes when its link expires.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    /// The id the account will have; the verification token's `sub`.
    pub id: String,
    /// The normalised address.
    pub email: String,
    /// Argon2id PHC string of the chosen password.
    pub password_hash: String,
    /// The token's `stamp`: a registration that replaces this one changes it.
    pub stamp: String,
    /// The live verification token's `jti`.
    pub jti: String,
    /// Unix seconds.
    pub created_at: i64,
    /// When the link and code stop working, and the record goes (Unix seconds).
    pub expires_at: i64,
    /// The language asked for at registration, which the account keeps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
}

/// Encodes a record.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("records are plain data")
}

/// Decodes a record.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// A big-endian sequence key, so trees iterate in insertion order.
pub fn seq_key(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

pub use outbox_steps::{OutboxSteps, QueueFigures};
pub use postgres::PgStore;
pub use sled_backend::Store;
pub use steps::{AccountSteps, IntakeSteps, LimitSteps, RegistrationSteps, ResetSteps, Steps, StoreSteps};
