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

/// Puts a letter in the outbox inside a transaction (with the outbox's index and count, so
/// they change together with the mail), sealed with `key`.
pub fn enqueue_tx<E>(
    tree: &TransactionalTree,
    key: &MailKey,
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
        sealed: Some(key.seal(&letter.raw, &seq_key(id))),
        raw: None,
        created_at: now,
        attempts: 0,
        next_attempt_at: now,
        last_error: None,
        expires_at,
    };
    put_tx(tree, &item)?;
    Ok(())
}

// The outbox tree holds the mail under 8-byte sequence keys and, after all of them (keys
// starting 0xFF), two things of its own: an index of the mail by (next attempt, id), so a pass
// reads only what is due, and the number of mails waiting, so the status need not count.
// They live in the same tree as the mail because mail is queued inside the callers'
// transactions, which name only this tree: index, count and mail change in one transaction,
// so a process killed at any moment leaves them agreeing.
const ITEMS_END: &[u8] = b"\xff";
const DUE_PREFIX: &[u8] = b"\xffdue/";
const DUE_END: &[u8] = b"\xffdue0";
const DEPTH: &[u8] = b"\xffdepth";
/// Set once the index and count cover every mail (data made before them get them at open).
const INDEXED: &[u8] = b"\xffindexed";

/// The index key of a mail due at `at`: times sort as numbers (the sign bit flipped).
fn due_key(at: i64, id: u64) -> Vec<u8> {
    let mut key = DUE_PREFIX.to_vec();
    key.extend_from_slice(&((at as u64) ^ (1 << 63)).to_be_bytes());
    key.extend_from_slice(&seq_key(id));
    key
}

/// (next attempt, id) from an index key.
fn parse_due_key(key: &[u8]) -> Result<(i64, u64), StoreError> {
    let rest = key
        .strip_prefix(DUE_PREFIX)
        .filter(|r| r.len() == 16)
        .ok_or_else(|| StoreError::Corrupt("a broken key in the outbox index".into()))?;
    let number = |b: &[u8]| u64::from_be_bytes(b.try_into().expect("8 bytes"));
    Ok(((number(&rest[..8]) ^ (1 << 63)) as i64, number(&rest[8..])))
}

fn read_depth(bytes: Option<&[u8]>) -> u64 {
    bytes
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0)
}

fn add_depth_tx(tree: &TransactionalTree, delta: i64) -> Result<(), UnabortableTransactionError> {
    let depth = read_depth(tree.get(DEPTH)?.as_deref()).saturating_add_signed(delta);
    tree.insert(DEPTH, &depth.to_be_bytes())?;
    Ok(())
}

/// Writes `item` into the queue (new, or in place of its earlier self) with its index entry,
/// keeping the count.
fn put_tx(tree: &TransactionalTree, item: &OutboxItem) -> Result<(), UnabortableTransactionError> {
    match tree.insert(&seq_key(item.id), encode(item))? {
        Some(before) => {
            if let Ok(before) = decode::<OutboxItem>(&before) {
                tree.remove(due_key(before.next_attempt_at, item.id))?;
            }
        }
        None => add_depth_tx(tree, 1)?,
    }
    tree.insert(due_key(item.next_attempt_at, item.id), &[][..])?;
    Ok(())
}

/// Takes mail `id` out of the queue with its index entry, keeping the count. Returns it, if
/// it was still there.
fn take_tx(tree: &TransactionalTree, id: u64) -> Result<Option<OutboxItem>, UnabortableTransactionError> {
    let Some(before) = tree.remove(&seq_key(id))? else {
        return Ok(None);
    };
    add_depth_tx(tree, -1)?;
    let before = decode::<OutboxItem>(&before).ok();
    if let Some(item) = &before {
        tree.remove(due_key(item.next_attempt_at, id))?;
    }
    Ok(before)
}

/// Runs a transaction over the outbox tree alone.
fn in_queue<T>(
    tree: &sled::Tree,
    f: impl Fn(&TransactionalTree) -> Result<T, UnabortableTransactionError>,
) -> Result<T, StoreError> {
    tree.transaction(|t| f(t).map_err(ConflictableTransactionError::<()>::from))
        .map_err(|e| match e {
            TransactionError::Storage(e) => StoreError::Sled(e),
            TransactionError::Abort(()) => StoreError::Corrupt("an outbox change was abandoned".into()),
        })
}

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

    /// Builds the due index and the count from the mail, once. Runs at open, before this
    /// process queues anything; the transaction also checks the count it started from, so a
    /// mail queued meanwhile makes it start over rather than be missed.
    fn index_if_needed(&self) -> Result<(), StoreError> {
        let tree = &self.store.outbox;
        while tree.get(INDEXED)?.is_none() {
            let depth_seen = tree.get(DEPTH)?;
            let mut waiting = 0u64;
            let mut items = Vec::new();
            for entry in tree.range(..ITEMS_END) {
                waiting += 1;
                // An unreadable mail is counted but cannot be scheduled; it stays for a look.
                match decode::<OutboxItem>(&entry?.1) {
                    Ok(item) => items.push(item),
                    Err(e) => tracing::error!(error = %e, "an outbox mail cannot be read"),
                }
            }
            let stale: Vec<sled::IVec> = tree.range(DUE_PREFIX..DUE_END).keys().collect::<Result<_, _>>()?;
            let done = in_queue(tree, |t| {
                if t.get(DEPTH)? != depth_seen {
                    return Ok(false);
                }
                for key in &stale {
                    t.remove(key.as_ref())?;
                }
                for item in &items {
                    t.insert(due_key(item.next_attempt_at, item.id), &[][..])?;
                }
                t.insert(DEPTH, &waiting.to_be_bytes())?;
                t.insert(INDEXED, &[1u8][..])?;
                Ok(true)
            })?;
            if done {
                tracing::info!(waiting, "outbox index built");
            }
        }
        Ok(())
    }

    /// The transport in use.
    pub fn mailer(&self) -> &Mailer {
        &self.mailer
    }

    /// All waiting mail, oldest first.
    pub fn list(&self) -> Result<Vec<OutboxItem>, StoreError> {
        self.store.outbox.range(..ITEMS_END).map(|r| decode(&r?.1)).collect()
    }

    /// All dead letters, oldest first.
    pub fn dead(&self) -> Result<Vec<DeadItem>, StoreError> {
        self.store.dead.iter().map(|r| decode(&r?.1)).collect()
    }

    /// Moves every dead letter (or just `id`) back into the queue, due now. Dead reset mail
    /// stays dead: its message was dropped when it died. Returns how many were requeued.
    pub fn retry_dead(&self, id: Option<u64>) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let mut n = 0;
        for dead in self.dead()? {
            let dropped = dead.item.sealed.is_none() && dead.item.raw.is_none();
            if id.is_some_and(|i| i != dead.item.id) || dropped || dead.item.expires_at.is_some_and(|e| e <= now) {
                continue;
            }
            let mut item = dead.item;
            item.next_attempt_at = now;
            (&self.store.outbox, &self.store.dead)
                .transaction(|(o, d)| {
                    d.remove(&seq_key(item.id))?;
                    put_tx(o, &item)?;
                    Ok::<_, ConflictableTransactionError<()>>(())
                })
                .map_err(|e| StoreError::Corrupt(format!("{e:?}")))?;
            n += 1;
        }
        // Also make waiting mail due now, the server included: "retry" means "try now".
        self.store.meta.remove(SERVER_HOLD)?;
        for item in self.list()? {
            if id.is_none_or(|i| i == item.id) && item.next_attempt_at > now {
                let mut item = item;
                item.next_attempt_at = now;
                // Only if it is still queued: never bring back a mail delivered meanwhile.
                let moved = in_queue(&self.store.outbox, |t| {
                    let queued = t.get(seq_key(item.id))?.is_some();
                    if queued {
                        put_tx(t, &item)?;
                    }
                    Ok(queued)
                })?;
                n += usize::from(moved);
            }
        }
        self.wake.notify_one();
        Ok(n)
    }

    /// The dead reset mail (all, or just `id`) that died while its link still worked, as
    /// (dead-letter key, address): their messages were dropped when they died, so a retry asks
    /// for a fresh reset instead ([`crate::Rekey::retry_dead`]), then [`Outbox::forget_dead`]s it.
    pub fn dead_resets(&self, id: Option<u64>) -> Result<Vec<(sled::IVec, String)>, StoreError> {
        let now = self.clock.now();
        let mut found = Vec::new();
        for entry in self.store.dead.iter() {
            let (k, v) = entry?;
            let dead: DeadItem = decode(&v)?;
            let item = &dead.item;
            let dropped = item.sealed.is_none() && item.raw.is_none();
            let live = item.expires_at.is_some_and(|e| e > now);
            if item.kind == MailKind::Reset && dropped && live && id.is_none_or(|i| i == item.id) {
                found.push((k, dead.item.to));
            }
        }
        Ok(found)
    }

    /// Deletes one dead letter; false if it was gone already (another retry took it).
    pub fn forget_dead(&self, key: &[u8]) -> Result<bool, StoreError> {
        Ok(self.store.dead.remove(key)?.is_some())
    }

    /// Deletes dead letters older than [`DEAD_KEEP_SECS`]; returns how many.
    pub fn prune_dead(&self) -> Result<usize, StoreError> {
        let cutoff = self.clock.now() - DEAD_KEEP_SECS;
        let mut n = 0;
        for entry in self.store.dead.iter() {
            let (k, v) = entry?;
            if decode::<DeadItem>(&v).is_ok_and(|d| d.at < cutoff) {
                self.store.dead.remove(k)?;
                n += 1;
            }
        }
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
        let oldest = match self.store.outbox.range(..ITEMS_END).next().transpose()? {
            Some((_, v)) => Some(now - decode::<OutboxItem>(&v)?.created_at),
            None => None,
        };
        let last_error = self
            .store
            .meta
            .get(LAST_ERROR)?
            .map(|v| String::from_utf8_lossy(&v).into_owned());
        Ok(OutboxStatus {
            depth: read_depth(self.store.outbox.get(DEPTH)?.as_deref()) as usize,
            oldest_age_secs: oldest,
            last_error,
            dead: self.store.dead.len(),
            delivered: self.store.counter("outbox.delivered"),
            failures: self.store.counter("outbox.failures"),
            destination: self.mailer.describe(),
            server_retry_at: self.server_hold()?.map(|h| h.until).filter(|until| *until > now),
        })
    }

    fn server_hold(&self) -> Result<Option<ServerHold>, StoreError> {
        Store::get(&self.store.meta, SERVER_HOLD)
    }

    /// Server-level trouble: the whole queue waits, longer after every failure in a row.
    /// One record for the queue, so a long backlog costs one write, not one per mail.
    fn hold_for_server(&self, why: &str, now: i64) -> Result<i64, StoreError> {
        let failures = self.server_hold()?.unwrap_or_default().failures.saturating_add(1);
        let wait = backoff(failures);
        let hold = ServerHold {
            failures,
            until: now + wait,
        };
        let mut batch = sled::Batch::default();
        batch.insert(SERVER_HOLD, encode(&hold));
        batch.insert(LAST_ERROR, why.as_bytes());
        self.store.meta.apply_batch(batch)?;
        self.store.bump("outbox.failures")?;
        tracing::warn!(failures, retry_in = wait, reason = %why, "mail server unavailable; the queue waits");
        Ok(hold.until)
    }

    /// Up to a batch of mail due by `now`, soonest first, read from the index; and when the
    /// mail after them is due (which may be now already, when more than a batch is due).
    fn due(&self, now: i64) -> Result<(Vec<OutboxItem>, Option<i64>), StoreError> {
        let mut due = Vec::new();
        let mut next = None;
        for key in self.store.outbox.range(DUE_PREFIX..DUE_END).keys() {
            let (at, id) = parse_due_key(&key?)?;
            if at > now || due.len() == BATCH {
                next = Some(at);
                break;
            }
            if let Some(item) = self.indexed(at, id)? {
                due.push(item);
            }
        }
        Ok((due, next))
    }

    /// The mail an index entry points at; an entry that no longer matches its mail (left by
    /// an older version that did not keep the index) is dropped.
    fn indexed(&self, at: i64, id: u64) -> Result<Option<OutboxItem>, StoreError> {
        if let Some(item) = Store::get::<OutboxItem>(&self.store.outbox, seq_key(id))? {
            if item.next_attempt_at == at {
                return Ok(Some(item));
            }
        }
        in_queue(&self.store.outbox, |t| {
            let current = t.get(seq_key(id))?.and_then(|v| decode::<OutboxItem>(&v).ok());
            if current.is_none_or(|item| item.next_attempt_at != at) {
                t.remove(due_key(at, id))?;
            }
            Ok(())
        })?;
        Ok(None)
    }

    /// One pass: sends every mail that is due. Returns what happened and, when mail remains
    /// that is not due yet, the time it will be.
    pub async fn deliver_due(&self) -> Result<(DeliveryReport, Option<i64>), StoreError> {
        self.index_if_needed()?;
        let mut report = DeliveryReport::default();
        loop {
            let now = self.clock.now();
            let (due, next) = self.due(now)?;
            let expired_before = report.expired;
            let due = self.bury_expired(due, now, &mut report)?;
            if due.is_empty() && report.expired > expired_before {
                continue; // a batch of expired mail may hide live mail behind it
            }
            if due.is_empty() {
                return Ok((report, next));
            }
            if let Some(hold) = self.server_hold()?.filter(|h| h.until > now) {
                return Ok((report, Some(hold.until)));
            }
            if let Err(trouble) = self.mailer.check().await {
                report.deferred += due.len();
                let until = self.hold_for_server(&trouble.to_string(), self.clock.now())?;
                return Ok((report, Some(until)));
            }
            let batch = self.send_batch(due, &mut report).await?;
            if let Some(until) = batch.held_until {
                return Ok((report, Some(until)));
            }
            if !batch.progressed {
                return Ok((report, self.due(self.clock.now())?.1));
            }
        }
    }

    /// Dead-letters the reset mail whose link expired (no server needed for that) and
    /// returns the rest.
    fn bury_expired(
        &self,
        due: Vec<OutboxItem>,
        now: i64,
        report: &mut DeliveryReport,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        let mut live = Vec::with_capacity(due.len());
        for item in due {
            if item.expires_at.is_some_and(|e| e <= now) {
                self.bury(item, "the reset link expired before the mail could be delivered", now)?;
                report.expired += 1;
            } else {
                live.push(item);
            }
        }
        Ok(live)
    }

    /// Sends `due`, `concurrency` at a time. At the first sign of server-level trouble no
    /// further send starts (those in flight finish) and the queue is held for the server.
    async fn send_batch(&self, due: Vec<OutboxItem>, report: &mut DeliveryReport) -> Result<Batch, StoreError> {
        let stop = Arc::new(AtomicBool::new(false));
        let gate = Arc::new(tokio::sync::Semaphore::new(self.concurrency));
        let mut sends = tokio::task::JoinSet::new();
        for item in due {
            let (mailer, gate, stop) = (self.mailer.clone(), gate.clone(), stop.clone());
            let message = self.message(&item);
            sends.spawn(async move {
                let _permit = gate.acquire_owned().await;
                if stop.load(Ordering::SeqCst) {
                    return (item, None);
                }
                let message = match message {
                    Ok(message) => message,
                    Err(why) => return (item, Some(Err(SendError::Rejected(why)))),
                };
                let result = mailer.send(&item.from, std::slice::from_ref(&item.to), &message).await;
                if matches!(result, Err(SendError::ServerUnavailable(_))) {
                    stop.store(true, Ordering::SeqCst);
                }
                (item, Some(result))
            });
        }
        let mut batch = Batch::default();
        let mut trouble: Option<String> = None;
        while let Some(joined) = sends.join_next().await {
            let Ok((item, result)) = joined else { continue };
            match result {
                // Not tried, or the server failed it: the mail stays as it is, due.
                None => report.deferred += 1,
                Some(Err(SendError::ServerUnavailable(why))) => {
                    report.deferred += 1;
                    trouble.get_or_insert(why);
                }
                Some(result) => {
                    if self.record(item, result, report)? {
                        batch.progressed = true;
                        // Make "sent" stable at once: a process killed before sled's own
                        // flush (every half second) would send this mail again. At least once
                        // is the promise; this keeps "more than once" rare.
                        self.store.flush().await?;
                    }
                }
            }
        }
        if let Some(why) = trouble {
            batch.held_until = Some(self.hold_for_server(&why, self.clock.now())?);
        }
        Ok(batch)
    }

    /// Writes down what the server said about one message. Returns whether it left the queue.
    fn record(
        &self,
        item: OutboxItem,
        result: Result<(), SendError>,
        report: &mut DeliveryReport,
    ) -> Result<bool, StoreError> {
        let now = self.clock.now();
        match result {
            Ok(()) => {
                in_queue(&self.store.outbox, |t| take_tx(t, item.id))?;
                self.store.bump("outbox.delivered")?;
                // The server works again: the last problem and the shared backoff are over.
                let mut batch = sled::Batch::default();
                batch.remove(LAST_ERROR);
                batch.remove(SERVER_HOLD);
                self.store.meta.apply_batch(batch)?;
                tracing::info!(id = item.id, kind = ?item.kind, "mail delivered");
                report.sent += 1;
                Ok(true)
            }
            Err(SendError::Rejected(why)) => {
                tracing::warn!(id = item.id, reason = %why, "mail refused for good");
                self.store.meta.insert(LAST_ERROR, why.as_bytes())?;
                self.store.bump("outbox.failures")?;
                self.bury(item, &why, now)?;
                report.rejected += 1;
                Ok(true)
            }
            // (Server trouble holds the whole queue before it gets here; were it to come
            // here, putting off this one mail is still safe.)
            Err(SendError::Retry(why) | SendError::ServerUnavailable(why)) => {
                let mut item = item;
                item.attempts += 1;
                let wait = backoff(item.attempts);
                item.next_attempt_at = now + wait;
                tracing::warn!(id = item.id, attempts = item.attempts, retry_in = wait, reason = %why, "mail deferred");
                item.last_error = Some(why.clone());
                self.store.meta.insert(LAST_ERROR, why.as_bytes())?;
                self.store.bump("outbox.failures")?;
                // Only update it if it is still queued: never bring back a removed mail.
                in_queue(&self.store.outbox, |t| {
                    if t.get(seq_key(item.id))?.is_some() {
                        put_tx(t, &item)?;
                    }
                    Ok(())
                })?;
                report.deferred += 1;
                Ok(false)
            }
        }
    }

    fn bury(&self, mut item: OutboxItem, reason: &str, now: i64) -> Result<(), StoreError> {
        let key = seq_key(item.id);
        let id = item.id;
        // A dead reset or verification mail keeps no link: nobody will receive it, and whoever
        // needs one asks again. Other mail keeps its sealed message, for `outbox retry`.
        if matches!(item.kind, MailKind::Reset | MailKind::Verify) {
            item.sealed = None;
            item.raw = None;
        }
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
                take_tx(o, id)?;
                d.insert(&key, encode(&dead))?;
                event.append_tx(a)?;
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(|e| StoreError::Corrupt(format!("{e:?}")))
    }

    /// Stand-ins' mail waiting to be rehearsed.
    pub fn stand_ins_waiting(&self) -> u64 {
        read_depth(self.store.stand_ins.get(DEPTH).ok().flatten().as_deref())
    }

    /// Goes through the motions of delivering the stand-ins' mail, which reset requests that
    /// get no mail leave in the stand-in tree (see `Rekey::mint_reset`): as a pass does, it
    /// checks the server, opens each message, rehearses its send, takes it out of the queue
    /// and flushes. Nothing is sent: the server sees only the checks. While the server is
    /// held or cannot be reached they wait, as mail does, until their link would expire.
    /// Returns how many went.
    pub async fn rehearse(&self) -> Result<usize, StoreError> {
        let tree = &self.store.stand_ins;
        let now = self.clock.now();
        let mut due = Vec::new();
        for key in tree.range(DUE_PREFIX..DUE_END).keys() {
            let (_, id) = parse_due_key(&key?)?;
            if let Some(item) = Store::get::<OutboxItem>(tree, seq_key(id))? {
                due.push(item);
            }
            if due.len() == BATCH {
                break;
            }
        }
        if due.is_empty() {
            return Ok(0);
        }
        let held = self.server_hold()?.is_some_and(|h| h.until > now);
        let reachable = !held && self.mailer.check().await.is_ok();
        let mut n = 0;
        for item in due {
            let expired = item.expires_at.is_some_and(|e| e <= now);
            if !expired {
                if !reachable {
                    continue;
                }
                if let Ok(message) = self.message(&item) {
                    self.mailer.rehearse(&message).await;
                }
            }
            in_queue(tree, |t| take_tx(t, item.id))?;
            self.store.bump("outbox.stand_ins")?;
            self.store.flush().await?;
            n += 1;
        }
        Ok(n)
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
            if let Err(e) = self.rehearse().await {
                tracing::error!(error = %e, "the stand-ins' pass failed");
            }
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

    #[test]
    fn index_keys_sort_by_time_then_id_and_after_all_mail() {
        let times = [i64::MIN, -5, 0, 7, 1_700_000_000, i64::MAX];
        let keys: Vec<Vec<u8>> = times.iter().flat_map(|t| [due_key(*t, 1), due_key(*t, 2)]).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        for (t, key) in times.iter().flat_map(|t| [(*t, 1), (*t, 2)]).zip(&keys) {
            assert_eq!(parse_due_key(key).unwrap(), t);
            assert!(key.as_slice() >= DUE_PREFIX && key.as_slice() < DUE_END);
        }
        assert!(seq_key(u64::MAX >> 8).as_slice() < ITEMS_END && ITEMS_END <= DUE_PREFIX);
        assert!(ITEMS_END <= DEPTH && ITEMS_END <= INDEXED);
    }
}
