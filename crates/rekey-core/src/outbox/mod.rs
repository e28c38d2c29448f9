//! The durable outbox: mail is written into sled in the same transaction as the change that
//! caused it, and a worker delivers it at least once. A message leaves the queue only after
//! the server accepted it; 4xx and network trouble back off exponentially with jitter; a 5xx
//! sends it to the dead letters with the server's words; a reset mail whose token has
//! expired is dropped there with that reason, since its link could no longer work.
//!
//! Trouble with the server itself (unreachable, silent, untrusted certificate, login
//! refused, 421) is no message's fault: the pass stops at the first sign of it and the whole
//! queue waits behind one shared backoff, kept in the meta tree so it survives a restart.
//! Without that, every queued mail would open its own failing connection on every pass.
//!
//! Here: what is queued and the outbox itself; `queue` keeps the tree's layout (mail, its
//! index by due time, its count), `delivery` is the worker, `admin` the operator's commands.

mod admin;
mod delivery;
mod queue;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};
use sled::transaction::{
    ConflictableTransactionError, TransactionError, Transactional, TransactionalTree, UnabortableTransactionError,
};
use tokio::sync::{watch, Notify};

use crate::audit::AuditEvent;
use crate::clock::Clock;
use crate::letters::Letter;
use crate::mailer::{Mailer, SendError};
use crate::sealed::MailKey;
use crate::store::{decode, encode, seq_key, Store, StoreError};

pub use delivery::backoff;
pub use queue::enqueue_tx;
use queue::ITEMS_END;

/// What a queued mail is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MailKind {
    /// A reset link and code.
    Reset,
    /// The "your password was changed" notice.
    PasswordChanged,
    /// The link and code that finish a new account.
    Verify,
    /// "Someone tried to create an account with this address."
    AccountExists,
    /// `rekeyd mail test`.
    Test,
}

/// A queued mail.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutboxItem {
    /// Queue position (sled id).
    pub id: u64,
    /// What it is.
    pub kind: MailKind,
    /// Envelope sender.
    pub from: String,
    /// Envelope recipient.
    pub to: String,
    /// The formatted message, sealed with the mail key ([`crate::sealed`]); `None` once
    /// dropped (a reset mail that died: nobody will ever get its link).
    #[serde(default)]
    pub sealed: Option<String>,
    /// The message in the clear, only in records queued by versions before sealing; sealed
    /// when the outbox opens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// Not before this (Unix seconds).
    pub next_attempt_at: i64,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// For reset mail: when the link stops working.
    pub expires_at: Option<i64>,
}

/// A mail that will not be delivered, and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeadItem {
    /// The mail.
    pub item: OutboxItem,
    /// Why, in words.
    pub reason: String,
    /// Unix seconds.
    pub at: i64,
}

/// The outbox as a person checking on it sees it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct OutboxStatus {
    /// Mails waiting.
    pub depth: usize,
    /// Age of the oldest waiting mail, in seconds.
    pub oldest_age_secs: Option<i64>,
    /// The most recent delivery problem, in words; cleared by the next success.
    pub last_error: Option<String>,
    /// Mails in the dead letters.
    pub dead: usize,
    /// Mails delivered since the data directory was made.
    pub delivered: u64,
    /// Failed delivery attempts since the data directory was made (deferred or refused).
    pub failures: u64,
    /// Where mail goes, in words.
    pub destination: String,
    /// When trouble with the mail server holds the whole queue back: when the server will be
    /// tried again (Unix seconds).
    pub server_retry_at: Option<i64>,
}

/// The shared backoff after server-level trouble (meta key [`SERVER_HOLD`]).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct ServerHold {
    /// Server-level failures in a row; a delivery starts the count again.
    failures: u32,
    /// Nothing is tried before this (Unix seconds).
    until: i64,
}

const SERVER_HOLD: &str = "outbox.server_hold";
const LAST_ERROR: &str = "outbox.last_error";

/// What one batch of sends came to.
#[derive(Debug, Default)]
struct Batch {
    /// Some mail left the queue (sent or refused for good).
    progressed: bool,
    /// Server-level trouble stopped the batch; the queue waits until then.
    held_until: Option<i64>,
}

/// What one pass of the worker did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Accepted by the server.
    pub sent: usize,
    /// Failed, or held back by trouble with the server; will be tried again.
    pub deferred: usize,
    /// Refused for good, now in the dead letters.
    pub rejected: usize,
    /// Reset mail whose link expired before it could go out.
    pub expired: usize,
}

/// How long a dead letter is kept for a look (and `outbox retry`) before it is deleted.
pub const DEAD_KEEP_SECS: i64 = 7 * 24 * 3600;

const BATCH: usize = 64;

/// The delivery side of the outbox.
#[derive(Clone)]
pub struct Outbox {
    store: Store,
    key: MailKey,
    mailer: Mailer,
    clock: Arc<dyn Clock>,
    concurrency: usize,
    /// Woken when mail is queued.
    pub wake: Arc<Notify>,
}

impl Outbox {
    /// An outbox over `store` that delivers through `mailer`, `concurrency` sends at a time,
    /// opening mail sealed with `key`. Data made before the outbox kept its index and count
    /// get them here, and mail queued in the clear by older versions is sealed.
    pub fn new(store: Store, key: MailKey, mailer: Mailer, clock: Arc<dyn Clock>, concurrency: usize) -> Self {
        let outbox = Self {
            store,
            key,
            mailer,
            clock,
            concurrency: concurrency.max(1),
            wake: Arc::new(Notify::new()),
        };
        if let Err(e) = outbox.index_if_needed() {
            // Delivery still works from the mail itself; the next start tries again.
            tracing::error!(error = %e, "the outbox index could not be built");
        }
        if let Err(e) = outbox.seal_clear_mail() {
            tracing::error!(error = %e, "mail queued in the clear could not be sealed");
        }
        outbox
    }

    /// Seals mail that older versions queued (or buried) in the clear. Runs at open.
    fn seal_clear_mail(&self) -> Result<(), StoreError> {
        let in_clear = |v: &sled::IVec| String::from_utf8_lossy(v).contains("\"raw\"");
        for entry in self.store.outbox.range(..ITEMS_END) {
            let (k, v) = entry?;
            if in_clear(&v) {
                let mut item: OutboxItem = decode(&v)?;
                self.seal_item(&mut item);
                // Only if unchanged meanwhile; otherwise the next open tries again.
                let _ = self.store.outbox.compare_and_swap(k, Some(v), Some(encode(&item)))?;
            }
        }
        for entry in self.store.dead.iter() {
            let (k, v) = entry?;
            if in_clear(&v) {
                let mut dead: DeadItem = decode(&v)?;
                self.seal_item(&mut dead.item);
                let _ = self.store.dead.compare_and_swap(k, Some(v), Some(encode(&dead)))?;
            }
        }
        Ok(())
    }

    fn seal_item(&self, item: &mut OutboxItem) {
        if let Some(raw) = item.raw.take() {
            item.sealed = Some(self.key.seal(raw.as_bytes(), &seq_key(item.id)));
        }
    }

    /// The message of a queued mail, opened (the outbox does this just before sending).
    pub fn message(&self, item: &OutboxItem) -> Result<Vec<u8>, String> {
        match (&item.sealed, &item.raw) {
            (Some(sealed), _) => self.key.open(sealed, &seq_key(item.id)).map_err(|e| e.to_string()),
            (None, Some(raw)) => Ok(raw.clone().into_bytes()),
            (None, None) => Err("the message was dropped".into()),
        }
    }

    /// The transport in use.
    pub fn mailer(&self) -> &Mailer {
        &self.mailer
    }
}
