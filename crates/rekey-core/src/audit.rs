//! The audit trail: what happened to which account, when, from where. Never a secret.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionalTree};

use crate::error::Error;
use crate::store::{decode, encode, seq_key, AccountSteps, Store, StoreError};

/// One audit event.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuditEvent {
    /// Unix seconds.
    pub at: i64,
    /// What happened, snake_case (`password_reset`, `reset_code_burned`, …).
    pub kind: String,
    /// The account's id, when one is involved.
    pub user_id: Option<String>,
    /// Who did it (peer IP, desktop install, `admin`).
    pub client: Option<String>,
    /// Details in words.
    pub detail: String,
}

impl AuditEvent {
    /// A new event.
    pub fn new(at: i64, kind: &str, user_id: Option<&str>, client: Option<&str>, detail: impl Into<String>) -> Self {
        Self {
            at,
            kind: kind.into(),
            user_id: user_id.map(Into::into),
            client: client.map(Into::into),
            detail: detail.into(),
        }
    }

    /// Appends the event inside a transaction on the audit tree.
    pub fn append_tx<E>(&self, tree: &TransactionalTree) -> Result<(), ConflictableTransactionError<E>> {
        let id = tree.generate_id()?;
        tree.insert(&seq_key(id), encode(self))?;
        Ok(())
    }

    /// Appends the event outside any transaction.
    pub fn append(&self, store: &Store) -> Result<(), StoreError> {
        let id = store.db.generate_id()?;
        store.audit.insert(seq_key(id), encode(self))?;
        Ok(())
    }
}

/// The last `n` events, oldest first.
pub fn tail(store: &Store, n: usize) -> Result<Vec<AuditEvent>, StoreError> {
    let mut events = store
        .audit
        .iter()
        .rev()
        .take(n)
        .map(|r| r.map_err(StoreError::from).and_then(|(_, v)| decode(&v)))
        .collect::<Result<Vec<AuditEvent>, _>>()?;
    events.reverse();
    Ok(events)
}

/// Events that only a real account causes on a path a stranger can time (a wrong password, a
/// code retired by wrong tries), counted in memory and written to the trail in one batch by
/// the worker, on its own schedule. Written on the answer's path, or even a moment after it,
/// such a write made a known account's refusal measurably slower than a stranger's; a count
/// in memory costs the same nanoseconds as nothing.
#[derive(Default)]
pub struct Tally {
    counts: Mutex<HashMap<(String, String, String), u64>>,
    /// Events beyond [`Tally::MAX_KEYS`] distinct (kind, account, client), counted only.
    overflow: AtomicU64,
}

impl Tally {
    /// Distinct (kind, account, client) kept between two writes; a flood beyond it is
    /// counted in one number, so memory stays bounded.
    pub const MAX_KEYS: usize = 10_000;

    /// Counts one `kind` event for account `user_id` from `client`.
    pub fn add(&self, kind: &str, user_id: &str, client: &str) {
        let Ok(mut counts) = self.counts.lock() else { return };
        let key = (kind.to_string(), user_id.to_string(), client.to_string());
        if counts.len() >= Self::MAX_KEYS && !counts.contains_key(&key) {
            self.overflow.fetch_add(1, Ordering::Relaxed);
            return;
        }
        *counts.entry(key).or_default() += 1;
    }

    /// Writes what was counted as audit events at `now` (one per kind, account and client,
    /// "N times"), and starts counting again.
    pub async fn write(&self, store: &dyn AccountSteps, now: i64) -> Result<usize, Error> {
        let counts = match self.counts.lock() {
            Ok(mut counts) => std::mem::take(&mut *counts),
            Err(_) => return Ok(0),
        };
        let overflow = self.overflow.swap(0, Ordering::Relaxed);
        let mut written = 0;
        let mut counts = counts.into_iter();
        while let Some(((kind, user_id, client), n)) = counts.next() {
            let detail = format!("{n} time{} since the last entry", if n == 1 { "" } else { "s" });
            if let Err(e) = store
                .append_event(&AuditEvent::new(now, &kind, Some(&user_id), Some(&client), detail))
                .await
            {
                // Counted again for the next write, with what is left.
                if let Ok(mut kept) = self.counts.lock() {
                    *kept.entry((kind, user_id, client)).or_default() += n;
                    for (key, n) in counts {
                        *kept.entry(key).or_default() += n;
                    }
                }
                return Err(e);
            }
            written += 1;
        }
        if overflow > 0 {
            let detail = format!("{overflow} more events from too many accounts and clients to list");
            store
                .append_event(&AuditEvent::new(now, "events_not_listed", None, None, detail))
                .await?;
            written += 1;
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_tally_writes_one_event_per_account_and_client_and_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let key = crate::sealed::MailKey::load_or_create(dir.path()).unwrap();
        let store = Store::open(dir.path(), "test", 0, key).unwrap();
        let tally = Tally::default();
        for _ in 0..3 {
            tally.add("sign_in_failed", "u1", "ip:203.0.113.1");
        }
        tally.add("sign_in_failed", "u1", "ip:203.0.113.2");
        assert_eq!(tally.write(&store, 100).await.unwrap(), 2);
        let events = tail(&store, 10).unwrap();
        assert!(events
            .iter()
            .any(|e| e.detail.starts_with("3 times") && e.client.as_deref() == Some("ip:203.0.113.1")));
        assert_eq!(tally.write(&store, 200).await.unwrap(), 0, "counting starts again");
        for i in 0..Tally::MAX_KEYS + 5 {
            tally.add("sign_in_failed", "u1", &format!("c{i}"));
        }
        assert_eq!(tally.write(&store, 300).await.unwrap(), Tally::MAX_KEYS + 1);
    }
}
