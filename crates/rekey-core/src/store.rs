//! The sled store: one directory, one tree per kind of record, JSON values.
//!
//! sled takes an exclusive lock on its directory. Beside it we keep `holder.json`
//! (which process opened it, and when), so a second process can say in words who
//! holds the data and what to do, instead of showing a raw lock error.

use std::io;
use std::path::{Path, PathBuf};

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
#[derive(Debug, Clone, Serialize, Deserialize)]
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
}

/// All trees of the store.
#[derive(Clone)]
pub struct Store {
    /// The database.
    pub db: sled::Db,
    /// user id → [`User`].
    pub users: sled::Tree,
    /// normalised email → user id.
    pub emails: sled::Tree,
    /// sha256(session token) → [`Session`].
    pub sessions: sled::Tree,
    /// user id → [`LiveReset`].
    pub resets: sled::Tree,
    /// `reset/<address>`, `verify/<address>` → [`CodeState`].
    pub codes: sled::Tree,
    /// jti → [`RetiredToken`].
    pub retired: sled::Tree,
    /// sequence → [`Intake`].
    pub intake: sled::Tree,
    /// `id/<id>` → [`Pending`]; `email/<address>` → id.
    pub pending: sled::Tree,
    /// sequence → outbox item; after them (keys from 0xFF on) the outbox's due index and
    /// count, kept by `outbox.rs` in the same transactions as the mail.
    pub outbox: sled::Tree,
    /// sequence → dead outbox item.
    pub dead: sled::Tree,
    /// sequence → audit event.
    pub audit: sled::Tree,
    /// limit key → GCRA arrival time.
    pub limits: sled::Tree,
    /// small named values (install id, counters, last mail error).
    pub meta: sled::Tree,
    /// What a reset request that gets no mail writes in place of a reset and its mail, so
    /// that the worker's work does not tell it from one that does: fixed keys, and the
    /// outbox's layout for its mail, which the outbox takes out again.
    pub stand_ins: sled::Tree,
    dir: PathBuf,
}

/// Who holds the data directory (written to `holder.json`).
#[derive(Debug, Serialize, Deserialize)]
struct Holder {
    pid: u32,
    program: String,
    since: i64,
}

/// sled's page cache. Its default (1 GiB) lets a flood of requests grow the process to a
/// gigabyte; Rekey's working set (users, live resets, the queues' heads) fits in far less.
const CACHE_BYTES: u64 = 64 * 1024 * 1024;

impl Store {
    /// Opens (or creates) the store in `data_dir/db`. `program` names the opener in
    /// the message another process shows while this one holds the lock.
    pub fn open(data_dir: &Path, program: &str, now: i64) -> Result<Store, StoreError> {
        ensure_private_dir(data_dir)?;
        let path = data_dir.join("db");
        // A process that just closed the store may still be releasing sled's lock (its
        // background threads let go of the file a moment after the last handle drops), so a
        // held lock is retried for a second before it is reported.
        let started = std::time::Instant::now();
        let db = loop {
            match sled::Config::new().path(&path).cache_capacity(CACHE_BYTES).open() {
                Ok(db) => break db,
                Err(sled::Error::Io(e)) if is_lock_error(&e) => {
                    if started.elapsed() > std::time::Duration::from_secs(1) {
                        return Err(StoreError::Locked(locked_message(data_dir)));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(e) => return Err(e.into()),
            }
        };
        let holder = Holder {
            pid: std::process::id(),
            program: program.to_string(),
            since: now,
        };
        let _ = std::fs::write(
            data_dir.join("holder.json"),
            serde_json::to_vec(&holder).unwrap_or_default(),
        );
        let tree = |name: &str| db.open_tree(name);
        Ok(Store {
            users: tree("users")?,
            emails: tree("emails")?,
            sessions: tree("sessions")?,
            resets: tree("resets")?,
            codes: tree("codes")?,
            retired: tree("retired")?,
            intake: tree("intake")?,
            pending: tree("pending")?,
            outbox: tree("outbox")?,
            dead: tree("dead")?,
            audit: tree("audit")?,
            limits: tree("limits")?,
            meta: tree("meta")?,
            stand_ins: tree("stand_ins")?,
            db,
            dir: data_dir.to_path_buf(),
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Makes everything written so far durable.
    ///
    /// A blocking flush on tokio's blocking pool, not sled's `flush_async`: the latter
    /// deadlocks when many callers flush at once (seen here with 16). Concurrent blocking
    /// flushes share sled's work: a caller whose write is already stable returns at once.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(|_| StoreError::Corrupt("the flush was interrupted".into()))??;
        Ok(())
    }

    /// Reads and decodes one record.
    pub fn get<T: DeserializeOwned>(tree: &sled::Tree, key: impl AsRef<[u8]>) -> Result<Option<T>, StoreError> {
        match tree.get(key)? {
            Some(bytes) => decode(&bytes).map(Some),
            None => Ok(None),
        }
    }

    /// A small named counter in the meta tree, incremented atomically.
    pub fn bump(&self, name: &str) -> Result<u64, StoreError> {
        let v = self.meta.update_and_fetch(name, |old| {
            let n = old.and_then(|b| b.try_into().ok()).map(u64::from_be_bytes).unwrap_or(0);
            Some((n + 1).to_be_bytes().to_vec())
        })?;
        Ok(v.and_then(|b| b.as_ref().try_into().ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0))
    }

    /// Reads a counter made by [`Store::bump`].
    pub fn counter(&self, name: &str) -> u64 {
        self.meta
            .get(name)
            .ok()
            .flatten()
            .and_then(|b| b.as_ref().try_into().ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0)
    }
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

fn ensure_private_dir(dir: &Path) -> Result<(), StoreError> {
    let fail = |e: io::Error| StoreError::Directory {
        path: dir.to_path_buf(),
        reason: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(fail)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(fail)?;
    }
    Ok(())
}

fn is_lock_error(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
        || e.raw_os_error() == Some(11)
        || e.to_string().contains("could not acquire lock")
}

fn locked_message(dir: &Path) -> String {
    let holder: Option<Holder> = std::fs::read(dir.join("holder.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let who = match holder {
        Some(h) if Path::new(&format!("/proc/{}", h.pid)).exists() || !cfg!(target_os = "linux") => {
            format!("{} (process {})", h.program, h.pid)
        }
        _ => "another Rekey process".to_string(),
    };
    format!(
        "The Rekey data in {} is in use by {who}. Only one process can open it at a time: \
         stop that process (or close the Rekey app) and try again, or point this command \
         at another data directory with --data-dir.",
        dir.display()
    )
}
