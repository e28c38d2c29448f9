//! Pruning in sled: a walk over each tree, dropping what has run out. Each record goes only
//! if unchanged since it was read, so a record written meanwhile stays.

use super::Store;
use crate::error::Error;
use crate::store::{decode, CodeState, LiveReset, RetiredToken, Session};
use crate::token::LEEWAY;

/// A record for pruning, or `None` (logged) when it cannot be read: one bad record must not
/// stop the pruning of every other.
fn readable<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    decode(bytes)
        .map_err(|e| tracing::error!(error = %e, "a record could not be read while pruning; it is kept"))
        .ok()
}

/// Drops from `tree` every record that `gone` says has run out; returns how many went.
fn prune_tree<T: serde::de::DeserializeOwned>(tree: &sled::Tree, gone: impl Fn(&T) -> bool) -> Result<usize, Error> {
    let mut n = 0;
    for entry in tree.iter() {
        let (k, v) = entry?;
        if readable::<T>(&v).is_some_and(|r| gone(&r)) {
            let _ = tree.compare_and_swap(k, Some(v), None::<&[u8]>)?;
            n += 1;
        }
    }
    Ok(n)
}

impl Store {
    /// See [`crate::store::StoreSteps::prune`]. One process holds a sled store, so there is
    /// no other instance to leave the work to.
    pub(super) fn prune_expired(&self, now: i64, audit_keep: usize) -> Result<usize, Error> {
        let mut n = prune_tree::<LiveReset>(&self.resets, |r| r.expires_at < now - LEEWAY)?;
        n += prune_tree::<CodeState>(&self.codes, |r| r.until < now)?;
        n += prune_tree::<RetiredToken>(&self.retired, |r| r.expires_at < now - LEEWAY)?;
        n += prune_tree::<Session>(&self.sessions, |r| r.expires_at < now)?;
        n += self.prune_pending(now)?;
        // Bookkeeping, not records that ran out: not counted.
        self.prune_handled()?;
        // The audit trail keeps the most recent events: a flood of requests for strangers'
        // addresses must not fill the disk.
        let excess = self.audit.len().saturating_sub(audit_keep);
        for entry in self.audit.iter().take(excess) {
            self.audit.remove(entry?.0)?;
            n += 1;
        }
        for entry in self.limits.iter() {
            let (k, v) = entry?;
            let tat = v.as_ref().try_into().map(i64::from_be_bytes).unwrap_or(0);
            // A key whose arrival time has passed allows a full burst again: same as absent.
            if tat < now * 1000 {
                let _ = self.limits.compare_and_swap(k, Some(v), None::<&[u8]>)?;
                n += 1;
            }
        }
        Ok(n)
    }
}
