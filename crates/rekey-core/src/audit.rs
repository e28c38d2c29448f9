//! The audit trail: what happened to which account, when, from where. Never a secret.

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionalTree};

use crate::store::{decode, encode, seq_key, Store, StoreError};

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
