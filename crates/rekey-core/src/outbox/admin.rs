//! What the operator's commands see and do: the queue, the dead letters, retries, pruning,
//! the status.

use super::queue::{in_queue, put_tx, read_depth, DEPTH, ITEMS_END};
use super::*;

impl Outbox {
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
}
