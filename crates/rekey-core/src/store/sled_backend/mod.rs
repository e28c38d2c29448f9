//! The sled store: one directory, one tree per kind of record, JSON values; and beside it
//! a second, small sled database for the intake alone (see `intake.rs` for why).
//!
//! sled takes an exclusive lock on its directory. Beside it we keep `holder.json`
//! (which process opened it, and when), so a second process can say in words who
//! holds the data and what to do, instead of showing a raw lock error.

mod accounts;
mod copy;
mod flush;
mod intake;
mod limits;
mod outbox;
mod prune;
mod queue;
mod registration;
mod resets;

use std::io;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{decode, StoreError};
use crate::sealed::MailKey;

pub use limits::{refund, take};
pub use queue::enqueue_tx;

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
    /// sequence → [`Intake`], in the intake's own database (`intake.rs`).
    pub intake: sled::Tree,
    /// sequence → when: the requests handled, written in the step that handled each (so it
    /// is never handled twice), until the intake has let go of them (`intake.rs`).
    handled: sled::Tree,
    /// `id/<id>` → [`Pending`]; `email/<address>` → id.
    pub pending: sled::Tree,
    /// sequence → outbox item; after them (keys from 0xFF on) the outbox's due index and
    /// count, kept by `queue.rs` in the same transactions as the mail.
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
    /// Seals the mail that steps queue (a password change's notice).
    mail_key: MailKey,
    /// The outbox's claims (see `outbox.rs`), shared by every handle on the store.
    claims: std::sync::Arc<outbox::Claims>,
    /// One flush at a time, shared by every handle on the store.
    group_commit: std::sync::Arc<flush::GroupCommit>,
    /// The intake's own database (`intake.rs`).
    intake_db: std::sync::Arc<intake::IntakeDb>,
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

/// The intake database's page cache: it holds at most `intake_limit` small requests.
const INTAKE_CACHE_BYTES: u64 = 8 * 1024 * 1024;

impl Store {
    /// Opens (or creates) the store in `data_dir/db` and its intake in `data_dir/intake`,
    /// sealing the mail its steps queue with `mail_key`. `program` names the opener in the
    /// message another process shows while this one holds the lock.
    pub fn open(data_dir: &Path, program: &str, now: i64, mail_key: MailKey) -> Result<Store, StoreError> {
        ensure_private_dir(data_dir)?;
        let db = open_db(&data_dir.join("db"), CACHE_BYTES, data_dir)?;
        let holder = Holder {
            pid: std::process::id(),
            program: program.to_string(),
            since: now,
        };
        let _ = std::fs::write(
            data_dir.join("holder.json"),
            serde_json::to_vec(&holder).unwrap_or_default(),
        );
        let intake_db = open_db(&data_dir.join("intake"), INTAKE_CACHE_BYTES, data_dir)?;
        let tree = |name: &str| db.open_tree(name);
        let store = Store {
            users: tree("users")?,
            emails: tree("emails")?,
            sessions: tree("sessions")?,
            resets: tree("resets")?,
            codes: tree("codes")?,
            retired: tree("retired")?,
            intake: intake_db.open_tree("intake")?,
            handled: tree("intake_handled")?,
            pending: tree("pending")?,
            outbox: tree("outbox")?,
            dead: tree("dead")?,
            audit: tree("audit")?,
            limits: tree("limits")?,
            meta: tree("meta")?,
            stand_ins: tree("stand_ins")?,
            db,
            dir: data_dir.to_path_buf(),
            mail_key,
            claims: Default::default(),
            group_commit: Default::default(),
            intake_db: std::sync::Arc::new(intake::IntakeDb::new(intake_db)),
        };
        intake::tidy_at_open(&store)?;
        queue::prepare(&store);
        Ok(store)
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Makes everything written so far durable (the intake's new requests are durable
    /// already: `queue_request` flushes them), then lets the intake go of the requests
    /// handled before.
    ///
    /// A blocking flush on tokio's blocking pool, not sled's `flush_async`: the latter
    /// deadlocks when many callers flush at once (seen here with 16). One flush runs at a
    /// time and serves every caller waiting (see `flush.rs`).
    pub async fn flush(&self) -> Result<(), StoreError> {
        // Taken before the flush is asked for, so the flush covers the steps that handled them.
        let handled = self.intake_db.handled_so_far();
        if let Err(e) = self.group_commit.flush(&self.db).await {
            self.intake_db.handled_later(handled); // for the next flush that succeeds
            return Err(e);
        }
        self.forget_requests(&handled)
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

/// Opens a sled database at `path`. A process that just closed it may still be releasing
/// sled's lock (its background threads let go of the file a moment after the last handle
/// drops), so a held lock is retried for a second before it is reported (in words naming
/// the holder of `data_dir`).
fn open_db(path: &Path, cache_bytes: u64, data_dir: &Path) -> Result<sled::Db, StoreError> {
    let started = std::time::Instant::now();
    let mut unfinished_removed = false;
    loop {
        match sled::Config::new().path(path).cache_capacity(cache_bytes).open() {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(e)) if is_lock_error(&e) => {
                if started.elapsed() > std::time::Duration::from_secs(1) {
                    return Err(StoreError::Locked(locked_message(data_dir)));
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(sled::Error::Corruption { .. }) if !unfinished_removed && remove_unfinished_snapshots(path)? => {
                unfinished_removed = true;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Removes the snapshots sled had begun and not finished (`snap.<lsn>.generating`), and says
/// whether there were any. sled writes a snapshot at every open, then renames it into place;
/// a process killed before the rename leaves the file, and sled 0.34 reads it as the newest
/// snapshot and calls the database corrupt (sled#1527). The snapshot is only a shortcut: the
/// finished one before it and the log hold everything, so without the unfinished file sled
/// opens as it did before that open. Called only after sled refused to open for corruption,
/// which it tells after taking its lock: no live process was writing the file.
fn remove_unfinished_snapshots(path: &Path) -> Result<bool, StoreError> {
    let fail = |e: io::Error| StoreError::Directory {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let mut removed = false;
    for entry in std::fs::read_dir(path).map_err(fail)? {
        let name = entry.map_err(fail)?.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap.") && name.ends_with(".generating") {
            std::fs::remove_file(path.join(name.as_ref())).map_err(fail)?;
            tracing::warn!(file = %name, dir = %path.display(), "removed a snapshot the database had not finished writing when its process stopped");
            removed = true;
        }
    }
    Ok(removed)
}

/// Makes the data directory, readable by its owner alone.
pub(crate) fn ensure_private_dir(dir: &Path) -> Result<(), StoreError> {
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

#[async_trait::async_trait]
impl super::StoreSteps for Store {
    async fn flush(&self) -> Result<(), crate::error::Error> {
        Ok(Store::flush(self).await?)
    }

    async fn bump(&self, name: &str) -> Result<u64, crate::error::Error> {
        Ok(Store::bump(self, name)?)
    }

    async fn counter(&self, name: &str) -> Result<u64, crate::error::Error> {
        // A read error is an error here (the health check asks through this).
        let bytes = self.meta.get(name)?;
        Ok(bytes
            .and_then(|b| b.as_ref().try_into().ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0))
    }

    async fn install_id(&self, fresh_id: &str) -> Result<String, crate::error::Error> {
        Ok(
            match self
                .meta
                .compare_and_swap("install_id", None::<&[u8]>, Some(fresh_id.as_bytes()))?
            {
                Ok(()) => fresh_id.to_string(),
                Err(e) => String::from_utf8_lossy(&e.current.unwrap_or_default()).into_owned(),
            },
        )
    }

    async fn issuers(&self, issuer: &str) -> Result<Vec<String>, crate::error::Error> {
        let mut issuers: Vec<String> = self
            .meta
            .get("issuers")?
            .and_then(|v| serde_json::from_slice(&v).ok())
            .unwrap_or_default();
        if !issuers.iter().any(|i| i == issuer) {
            issuers.push(issuer.to_string());
            self.meta.insert("issuers", super::encode(&issuers))?;
        }
        Ok(issuers)
    }

    async fn prune(&self, now: i64, audit_keep: usize) -> Result<usize, crate::error::Error> {
        self.prune_expired(now, audit_keep)
    }
}
