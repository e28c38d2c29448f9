//! The intake in sled: requests under sequence keys, in the order they came. One process
//! holds a sled store, so a claim needs no lease here.
//!
//! The intake has a sled database of its own (`DATA_DIR/intake`). An answer waits for its
//! request to be durable, and a flush of the main database carries whatever the worker wrote
//! meanwhile: with one database, an account's request (a reset, its mail, and the mail's
//! delivery, all written by the worker) made every answer's flush heavier, and each of the
//! worker's transactions waited out the answers' flushes (sled takes its lock exclusively
//! for a transaction's commit and shared for the whole of a flush). Measured on 2 cores, 16
//! connections, mail to the local mailbox: forgot for known addresses ran at 0.13× the rate
//! for unknown ones.
//!
//! A step that handles a request cannot take it off the intake in its own transaction any
//! more (sled's transactions span one database). It writes a mark under the request's key in
//! the main database instead, in that transaction: a marked request is handled, whatever
//! the intake still holds. The intake lets go of the request only once the main database's
//! flush has made the step durable (so a crash never keeps the request's removal and loses
//! its step), and the mark goes at pruning, once the removal is durable too.

use async_trait::async_trait;
use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use sled::Transactional;

use std::sync::Mutex;

use super::flush::GroupCommit;
use super::{Store, StoreError};
use crate::audit::AuditEvent;
use crate::error::Error;
use crate::service::tx;
use crate::store::steps::Waiting;
use crate::store::{decode, encode, seq_key, Intake, IntakeSteps};

/// Marks request `id` handled, inside the step's transaction; false when it was handled
/// already (the step then does nothing: each request is handled once).
pub(super) fn mark_handled<E>(
    handled: &TransactionalTree,
    id: u64,
    now: i64,
) -> Result<bool, ConflictableTransactionError<E>> {
    Ok(handled.insert(&seq_key(id), &now.to_be_bytes())?.is_none())
}

/// The intake's database, its flushes, and the requests handled since the main database's
/// last flush.
pub(super) struct IntakeDb {
    db: sled::Db,
    commit: GroupCommit,
    to_forget: Mutex<Vec<u64>>,
}

impl IntakeDb {
    pub(super) fn new(db: sled::Db) -> IntakeDb {
        IntakeDb {
            db,
            commit: GroupCommit::default(),
            to_forget: Mutex::default(),
        }
    }

    /// The requests handled so far, for the intake to let go of after the next flush.
    pub(super) fn handled_so_far(&self) -> Vec<u64> {
        std::mem::take(&mut *self.to_forget.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Requests whose steps a failed flush did not make durable: let go of after another.
    pub(super) fn handled_later(&self, ids: Vec<u64>) {
        self.to_forget.lock().unwrap_or_else(|e| e.into_inner()).extend(ids);
    }
}

impl Store {
    /// After a step that marked request `id` handled has committed: the intake lets go of it
    /// after the next flush of the main database.
    pub(super) fn forget_after_flush(&self, id: u64) {
        self.intake_db.handled_later(vec![id]);
    }

    /// Takes handled requests off the intake (their steps are durable).
    pub(super) fn forget_requests(&self, ids: &[u64]) -> Result<(), StoreError> {
        for id in ids {
            self.intake.remove(seq_key(*id))?;
        }
        Ok(())
    }

    /// Drops the marks of requests the intake has durably let go of.
    pub(super) fn prune_handled(&self) -> Result<(), StoreError> {
        // Marks whose request is gone now; the flush after makes those removals durable
        // before their marks go (a removal after this look waits for the next pruning).
        let mut gone = Vec::new();
        for entry in self.handled.iter() {
            let (key, _) = entry?;
            if !self.intake.contains_key(&key)? {
                gone.push(key);
            }
        }
        self.intake_db.db.flush()?;
        for key in &gone {
            self.handled.remove(key)?;
        }
        Ok(())
    }
}

/// Tidies the intake at open: requests an older version kept in the main database move
/// into the intake's own (their keys stay, so a move cut short and done again changes
/// nothing), and requests marked handled go (a crash kept them after their steps, which
/// are durable now: what sled recovers was on disk).
pub(super) fn tidy_at_open(store: &Store) -> Result<(), StoreError> {
    if store.db.tree_names().iter().any(|name| name.as_ref() == b"intake") {
        let old = store.db.open_tree("intake")?;
        for entry in old.iter() {
            let (key, value) = entry?;
            store.intake.insert(key, value)?;
        }
        store.intake_db.db.flush()?;
        store.db.drop_tree("intake")?;
    }
    for entry in store.handled.iter() {
        store.intake.remove(entry?.0)?;
    }
    Ok(())
}

#[async_trait]
impl IntakeSteps for Store {
    async fn queue_request(&self, request: &Intake) -> Result<(), Error> {
        // Numbered by the main database: its ids never go back, even after a crash, so a
        // request never takes the key of one handled before (whose mark may remain).
        let id = self.db.generate_id()?;
        self.intake.insert(seq_key(id), encode(request))?;
        Ok(self.intake_db.commit.flush(&self.intake_db.db).await?)
    }

    async fn waiting_requests(&self) -> Result<usize, Error> {
        // Not those handled whose removal waits for the next flush.
        let mut n = 0;
        for key in self.intake.iter().keys() {
            n += usize::from(!self.handled.contains_key(key?)?);
        }
        Ok(n)
    }

    async fn claim_requests(&self, n: usize, _now: i64, _lease_until: i64) -> Result<Vec<Waiting>, Error> {
        let mut waiting = Vec::new();
        for entry in self.intake.iter() {
            if waiting.len() == n {
                break;
            }
            let (key, value) = entry?;
            let id = u64::from_be_bytes(
                key.as_ref()
                    .try_into()
                    .map_err(|_| crate::error::internal("intake", "a request's key is not a sequence number"))?,
            );
            // Handled, and let go of after the next flush.
            if self.handled.contains_key(&key)? {
                continue;
            }
            match decode::<Intake>(&value) {
                Ok(request) => waiting.push(Waiting { id, request }),
                // Kept for a look; the ones behind it go on.
                Err(e) => tracing::error!(error = %e, "a request could not be read; it stays queued"),
            }
        }
        Ok(waiting)
    }

    async fn drop_requests(&self, ids: &[u64], counted_as: Option<&str>) -> Result<(), Error> {
        // Nothing was done for them, so nothing is lost if a crash brings one back.
        for id in ids {
            if let (Some(_), Some(counter)) = (self.intake.remove(seq_key(*id))?, counted_as) {
                self.bump(counter)?;
            }
        }
        Ok(())
    }

    async fn refuse_request(&self, id: u64, event: &AuditEvent) -> Result<(), Error> {
        tx((&self.handled, &self.audit).transaction(|(handled, audit)| {
            if mark_handled(handled, id, event.at)? {
                event.append_tx(audit)?;
            }
            Ok(())
        }))?;
        self.forget_after_flush(id);
        Ok(())
    }
}
