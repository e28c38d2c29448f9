//! The durable outbox: mail is written into the store in the same step as the change that
//! caused it, and a worker delivers it at least once. A message leaves the queue only after
//! the server accepted it; 4xx and network trouble back off exponentially with jitter; a 5xx
//! sends it to the dead letters with the server's words; a reset mail whose token has
//! expired is dropped there with that reason, since its link could no longer work.
//!
//! Trouble with the server itself (unreachable, silent, untrusted certificate, login
//! refused, 421) is no message's fault: the pass stops at the first sign of it and the whole
//! queue waits behind one shared backoff, kept in the store so it survives a restart and
//! holds every instance. Without that, every queued mail would open its own failing
//! connection on every pass.
//!
//! The queue itself is the store's ([`OutboxSteps`]): a pass claims due mail for a lease, so
//! several instances on one database never send the same mail, and one that dies leaves its
//! mail to the others once the lease ends. Here: what is queued and the outbox itself;
//! `delivery` is the worker, `admin` the operator's commands.

mod admin;
mod delivery;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Notify};

use crate::audit::AuditEvent;
use crate::clock::Clock;
use crate::error::Error;
use crate::mailer::{Mailer, SendError};
use crate::sealed::MailKey;
use crate::store::{seq_key, OutboxSteps};

/// Queues mail inside a sled transaction (the sled steps that queue mail with their change).
pub use crate::store::sled_backend::enqueue_tx;
pub use delivery::backoff;

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
    /// Queue position; the sealed message's associated data.
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

/// What one batch of sends came to.
#[derive(Debug, Default)]
struct Batch {
    /// Some mail left the queue (sent or refused for good).
    progressed: bool,
    /// Server-level trouble stopped the batch; the queue waits until then.
    held_until: Option<i64>,
    /// Mail of the claim not tried (given back, still due).
    untouched: usize,
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

/// Stand-ins' mail one rehearsal pass claims.
const BATCH: usize = 64;

/// Rounds of `concurrency` sends one delivery pass claims.
const CLAIM_ROUNDS: usize = 2;

/// The delivery side of the outbox.
#[derive(Clone)]
pub struct Outbox {
    store: Arc<dyn OutboxSteps>,
    key: MailKey,
    mailer: Mailer,
    clock: Arc<dyn Clock>,
    concurrency: usize,
    /// Longest sleep between passes with nothing due (mail another instance queued is found
    /// by looking).
    idle_secs: i64,
    /// Woken when mail is queued.
    pub wake: Arc<Notify>,
}

impl Outbox {
    /// An outbox over `store`'s queue that delivers through `mailer`, `concurrency` sends at
    /// a time, opening mail sealed with `key`.
    pub fn new(
        store: Arc<dyn OutboxSteps>,
        key: MailKey,
        mailer: Mailer,
        clock: Arc<dyn Clock>,
        concurrency: usize,
    ) -> Self {
        Self {
            store,
            key,
            mailer,
            clock,
            concurrency: concurrency.max(1),
            idle_secs: 30,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Looks for due mail at least every `secs` seconds (a shared queue fills from other
    /// instances too, and their wake-ups do not reach this one).
    pub fn idle_at_most(mut self, secs: i64) -> Self {
        self.idle_secs = secs.max(1);
        self
    }

    /// Mail one pass claims: two rounds of sends. A small claim keeps its lease short, so
    /// what an instance had claimed when it died goes out soon after (the pass loops while
    /// mail is due, so the size does not bound the rate).
    pub(super) fn claim_size(&self) -> usize {
        self.concurrency * CLAIM_ROUNDS
    }

    /// How long a claim keeps other workers off its mail: long enough for the server check
    /// and the claim's rounds of sends, each cut off at the mailer's hard timeout, and the
    /// store's writes. A lease that ran out mid-claim would let another instance send the
    /// same mail again; a long one only delays the mail of an instance that died, until it
    /// ends. (A local mailbox's send is a file write: ten seconds is ample.)
    pub(super) fn lease_secs(&self) -> i64 {
        (CLAIM_ROUNDS as i64 + 1) * self.send_secs() + 15
    }

    /// The same for the stand-ins' mail, whose rehearsals go one by one.
    pub(super) fn stand_in_lease_secs(&self) -> i64 {
        (BATCH as i64 + 1) * self.send_secs() + 15
    }

    fn send_secs(&self) -> i64 {
        match &self.mailer {
            Mailer::Smtp { timeout, .. } => timeout.as_secs() as i64,
            Mailer::Mailbox(_) => 10,
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
