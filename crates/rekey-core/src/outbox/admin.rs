//! What the operator's commands see and do: the queue, the dead letters, retries, pruning,
//! the status.

use super::*;

impl Outbox {
    /// All waiting mail, oldest first.
    pub async fn list(&self) -> Result<Vec<OutboxItem>, Error> {
        self.store.queued_mail().await
    }

    /// All dead letters, oldest first.
    pub async fn dead(&self) -> Result<Vec<DeadItem>, Error> {
        self.store.dead_letters().await
    }

    /// Moves every dead letter (or just `id`) back into the queue, due now, and makes waiting
    /// mail due now, the server included: "retry" means "try now". Dead reset mail stays
    /// dead: its message was dropped when it died. Returns how many were requeued.
    pub async fn retry_dead(&self, id: Option<u64>) -> Result<usize, Error> {
        let n = self.store.retry_dead(id, self.clock.now()).await?;
        self.wake.notify_one();
        Ok(n)
    }

    /// The dead reset mail (all, or just `id`) that died while its link still worked, as
    /// (id, address): their messages were dropped when they died, so a retry asks for a fresh
    /// reset instead ([`crate::Rekey::retry_dead`]), then [`Outbox::forget_dead`]s it.
    pub async fn dead_resets(&self, id: Option<u64>) -> Result<Vec<(u64, String)>, Error> {
        self.store.dead_resets(id, self.clock.now()).await
    }

    /// Deletes one dead letter; false if it was gone already (another retry took it).
    pub async fn forget_dead(&self, id: u64) -> Result<bool, Error> {
        self.store.forget_dead(id).await
    }

    /// Deletes dead letters older than [`DEAD_KEEP_SECS`]; returns how many.
    pub async fn prune_dead(&self) -> Result<usize, Error> {
        self.store.prune_dead(self.clock.now() - DEAD_KEEP_SECS).await
    }

    /// Deletes all dead letters; returns how many.
    pub async fn purge_dead(&self) -> Result<usize, Error> {
        self.store.purge_dead().await
    }

    /// Queue depth, oldest age, last error, dead count.
    pub async fn status(&self) -> Result<OutboxStatus, Error> {
        let now = self.clock.now();
        let figures = self.store.outbox_figures().await?;
        Ok(OutboxStatus {
            depth: figures.depth,
            oldest_age_secs: figures.oldest_created_at.map(|at| now - at),
            last_error: figures.last_error,
            dead: figures.dead,
            delivered: figures.delivered,
            failures: figures.failures,
            destination: self.mailer.describe(),
            server_retry_at: figures.server_hold_until.filter(|until| *until > now),
        })
    }
}
