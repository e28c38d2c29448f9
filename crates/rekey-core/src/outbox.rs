//! The durable outbox: mail is written into sled in the same transaction as the change that
//! caused it, and a worker delivers it at least once. A message leaves the queue only after
//! the server accepted it; 4xx and network trouble back off exponentially with jitter; a 5xx
//! sends it to the dead letters with the server's words; a reset mail whose token has
//! expired is dropped there with that reason, since its link could no longer work.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, Transactional, TransactionalTree};
use tokio::sync::{watch, Notify};

use crate::audit::AuditEvent;
use crate::clock::Clock;
use crate::letters::Letter;
use crate::mailer::{Mailer, SendError};
use crate::store::{decode, encode, seq_key, Store, StoreError};

/// What a queued mail is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MailKind {
    /// A reset link and code.
    Reset,
    /// The "your password was changed" notice.
    PasswordChanged,
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
    /// The formatted message (7-bit: lettre encodes the bodies).
    pub raw: String,
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
}

/// What one pass of the worker did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Accepted by the server.
    pub sent: usize,
    /// Failed, will be tried again.
    pub deferred: usize,
    /// Refused for good, now in the dead letters.
    pub rejected: usize,
    /// Reset mail whose link expired before it could go out.
    pub expired: usize,
}

const BACKOFF_BASE: i64 = 10;
const BACKOFF_CAP: i64 = 30 * 60;
const BATCH: usize = 64;

/// Seconds to wait after the `attempts`-th failure: 10 s doubling to 30 min, with jitter
/// (a random point in the upper half) so a recovered server is not hit by every mail at once.
pub fn backoff(attempts: u32) -> i64 {
    let full = BACKOFF_BASE
        .saturating_mul(1 << attempts.min(20).saturating_sub(1))
        .min(BACKOFF_CAP);
    rand::thread_rng().gen_range(full / 2..=full)
}

/// Puts a letter in the outbox inside a transaction.
pub fn enqueue_tx<E>(
    tree: &TransactionalTree,
    letter: &Letter,
    kind: MailKind,
    now: i64,
    expires_at: Option<i64>,
) -> Result<(), ConflictableTransactionError<E>> {
    let id = tree.generate_id()?;
    let item = OutboxItem {
        id,
        kind,
        from: letter.from.clone(),
        to: letter.to.clone(),
        raw: String::from_utf8_lossy(&letter.raw).into_owned(),
        created_at: now,
        attempts: 0,
        next_attempt_at: now,
        last_error: None,
        expires_at,
    };
    tree.insert(&seq_key(id), encode(&item))?;
    Ok(())
}

/// The delivery side of the outbox.
#[derive(Clone)]
pub struct Outbox {
    store: Store,
    mailer: Mailer,
    clock: Arc<dyn Clock>,
    concurrency: usize,
    /// Woken when mail is queued.
    pub wake: Arc<Notify>,
}

impl Outbox {
    /// An outbox over `store` that delivers through `mailer`, `concurrency` sends at a time.
    pub fn new(store: Store, mailer: Mailer, clock: Arc<dyn Clock>, concurrency: usize) -> Self {
        Self {
            store,
            mailer,
            clock,
            concurrency: concurrency.max(1),
            wake: Arc::new(Notify::new()),
        }
    }

    /// The transport in use.
    pub fn mailer(&self) -> &Mailer {
        &self.mailer
    }

    /// All waiting mail, oldest first.
    pub fn list(&self) -> Result<Vec<OutboxItem>, StoreError> {
        self.store.outbox.iter().map(|r| decode(&r?.1)).collect()
    }

    /// All dead letters, oldest first.
    pub fn dead(&self) -> Result<Vec<DeadItem>, StoreError> {
        self.store.dead.iter().map(|r| decode(&r?.1)).collect()
    }

    /// Moves every dead letter (or just `id`) back into the queue, due now. Expired reset
    /// mail stays dead: its link could not work. Returns how many were requeued.
    pub fn retry_dead(&self, id: Option<u64>) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let mut n = 0;
        for dead in self.dead()? {
            if id.is_some_and(|i| i != dead.item.id) || dead.item.expires_at.is_some_and(|e| e <= now) {
                continue;
            }
            let mut item = dead.item;
            item.next_attempt_at = now;
            (&self.store.outbox, &self.store.dead)
                .transaction(|(o, d)| {
                    d.remove(&seq_key(item.id))?;
                    o.insert(&seq_key(item.id), encode(&item))?;
                    Ok::<_, ConflictableTransactionError<()>>(())
                })
                .map_err(|e| StoreError::Corrupt(format!("{e:?}")))?;
            n += 1;
        }
        // Also make waiting mail due now: "retry" means "try now".
        for item in self.list()? {
            if id.is_none_or(|i| i == item.id) && item.next_attempt_at > now {
                let mut item = item;
                item.next_attempt_at = now;
                self.store.outbox.insert(seq_key(item.id), encode(&item))?;
                n += 1;
            }
        }
        self.wake.notify_one();
        Ok(n)
    }

    /// Deletes all dead letters; returns how many.
    pub fn purge_dead(&self) -> Result<usize, StoreError> {
        let n = self.store.dead.len();
        self.store.dead.clear()?;
        Ok(n)
    }

    /// Queue depth, oldest age, last error, dead count.
    pub fn status(&self) -> Result<OutboxStatus, StoreError> {
        let now = self.clock.now();
        let oldest = match self.store.outbox.first()? {
            Some((_, v)) => Some(now - decode::<OutboxItem>(&v)?.created_at),
            None => None,
        };
        let last_error = self
            .store
            .meta
            .get("outbox.last_error")?
            .map(|v| String::from_utf8_lossy(&v).into_owned());
        Ok(OutboxStatus {
            depth: self.store.outbox.len(),
            oldest_age_secs: oldest,
            last_error,
            dead: self.store.dead.len(),
            delivered: self.store.counter("outbox.delivered"),
            failures: self.store.counter("outbox.failures"),
            destination: self.mailer.describe(),
        })
    }

    fn due(&self, now: i64) -> Result<(Vec<OutboxItem>, Option<i64>), StoreError> {
        let mut due = Vec::new();
        let mut next: Option<i64> = None;
        for entry in self.store.outbox.iter() {
            let item: OutboxItem = decode(&entry?.1)?;
            if item.next_attempt_at <= now {
                if due.len() < BATCH {
                    due.push(item);
                }
            } else {
                next = Some(next.map_or(item.next_attempt_at, |n| n.min(item.next_attempt_at)));
            }
        }
        Ok((due, next))
    }

    /// One pass: sends every mail that is due. Returns what happened and, when mail remains
    /// that is not due yet, the time it will be.
    pub async fn deliver_due(&self) -> Result<(DeliveryReport, Option<i64>), StoreError> {
        let mut report = DeliveryReport::default();
        loop {
            let now = self.clock.now();
            let (due, next) = self.due(now)?;
            if due.is_empty() {
                return Ok((report, next));
            }
            let mut sends = tokio::task::JoinSet::new();
            let gate = Arc::new(tokio::sync::Semaphore::new(self.concurrency));
            for item in due {
                if item.expires_at.is_some_and(|e| e <= now) {
                    self.bury(item, "the reset link expired before the mail could be delivered", now)?;
                    report.expired += 1;
                    continue;
                }
                let mailer = self.mailer.clone();
                let gate = gate.clone();
                sends.spawn(async move {
                    let _permit = gate.acquire_owned().await;
                    let result = mailer
                        .send(&item.from, std::slice::from_ref(&item.to), item.raw.as_bytes())
                        .await;
                    (item, result)
                });
            }
            let mut progressed = false;
            while let Some(joined) = sends.join_next().await {
                let Ok((item, result)) = joined else { continue };
                let now = self.clock.now();
                match result {
                    Ok(()) => {
                        self.store.outbox.remove(seq_key(item.id))?;
                        self.store.bump("outbox.delivered")?;
                        self.store.meta.remove("outbox.last_error")?;
                        tracing::info!(id = item.id, kind = ?item.kind, "mail delivered");
                        report.sent += 1;
                        progressed = true;
                    }
                    Err(SendError::Rejected(why)) => {
                        tracing::warn!(id = item.id, reason = %why, "mail refused for good");
                        self.store.meta.insert("outbox.last_error", why.as_bytes())?;
                        self.store.bump("outbox.failures")?;
                        self.bury(item, &why, now)?;
                        report.rejected += 1;
                        progressed = true;
                    }
                    Err(SendError::Retry(why)) => {
                        let mut item = item;
                        item.attempts += 1;
                        let wait = backoff(item.attempts);
                        item.next_attempt_at = now + wait;
                        tracing::warn!(id = item.id, attempts = item.attempts, retry_in = wait, reason = %why, "mail deferred");
                        item.last_error = Some(why.clone());
                        self.store.meta.insert("outbox.last_error", why.as_bytes())?;
                        self.store.bump("outbox.failures")?;
                        // Only update it if it is still queued: never bring back a removed mail.
                        let key = seq_key(item.id);
                        if let Some(current) = self.store.outbox.get(key)? {
                            let _ = self
                                .store
                                .outbox
                                .compare_and_swap(key, Some(current), Some(encode(&item)))?;
                        }
                        report.deferred += 1;
                    }
                }
            }
            if !progressed {
                return Ok((report, self.due(self.clock.now())?.1));
            }
        }
    }

    fn bury(&self, item: OutboxItem, reason: &str, now: i64) -> Result<(), StoreError> {
        let key = seq_key(item.id);
        let dead = DeadItem {
            item,
            reason: reason.to_string(),
            at: now,
        };
        let event = AuditEvent::new(
            now,
            "mail_dead",
            None,
            None,
            format!("mail {} not delivered: {reason}", dead.item.id),
        );
        (&self.store.outbox, &self.store.dead, &self.store.audit)
            .transaction(|(o, d, a)| {
                o.remove(&key)?;
                d.insert(&key, encode(&dead))?;
                event.append_tx(a)?;
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(|e| StoreError::Corrupt(format!("{e:?}")))
    }

    /// Delivers until `shutdown` turns true: after every pass it sleeps until the next mail
    /// is due, new mail is queued, or 30 seconds pass (a clock moved by tests is seen then).
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            let wait = match self.deliver_due().await {
                Ok((_, Some(next))) => (next - self.clock.now()).clamp(0, 30),
                Ok((_, None)) => 30,
                Err(e) => {
                    tracing::error!(error = %e, "outbox pass failed");
                    5
                }
            };
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(wait as u64)) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_a_cap() {
        for attempt in 1..30 {
            let b = backoff(attempt);
            let full = (10i64 << (attempt - 1).min(20)).min(1800);
            assert!(b >= full / 2 && b <= full, "attempt {attempt}: {b}");
        }
        assert!(backoff(1) <= 10);
        assert!(backoff(25) >= 900);
    }
}
