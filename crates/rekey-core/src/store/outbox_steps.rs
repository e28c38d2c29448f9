//! The outbox's steps: mail that other steps queued, claimed by a worker and written down as
//! the server answered; the shared hold after trouble with the server; the dead letters; the
//! stand-ins' mail; the figures an operator sees. Each step is atomic in every backend.
//!
//! A worker claims due mail for a lease. Until the lease ends no other claim (another task,
//! or on a shared database another instance) gets that mail, so in normal running each mail
//! goes out once. A worker that dies leaves its claims to run out, and the mail is claimed
//! again after: at least once, never lost.

use async_trait::async_trait;

use super::StoreSteps;
use crate::audit::AuditEvent;
use crate::error::Error;
use crate::letters::Letter;
use crate::outbox::{DeadItem, MailKind, OutboxItem};

/// The outbox as the store counts it (the status adds where mail goes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueFigures {
    /// Mails waiting.
    pub depth: usize,
    /// When the oldest waiting mail was queued (Unix seconds).
    pub oldest_created_at: Option<i64>,
    /// The most recent delivery problem, in words.
    pub last_error: Option<String>,
    /// Mails in the dead letters.
    pub dead: usize,
    /// Mails delivered, ever.
    pub delivered: u64,
    /// Failed delivery attempts, ever.
    pub failures: u64,
    /// The end of the hold after trouble with the server (Unix seconds), if one was set; it
    /// may have passed.
    pub server_hold_until: Option<i64>,
}

/// The durable mail queue. Changes are durable once [`StoreSteps::flush`] returns.
#[async_trait]
pub trait OutboxSteps: StoreSteps {
    /// Queues a letter, due at once, sealed with the store's mail key (as the steps that
    /// queue mail with their change do).
    async fn queue_mail(&self, letter: &Letter, kind: MailKind, now: i64, expires_at: Option<i64>)
        -> Result<(), Error>;

    /// Up to `n` mails due by `now` and not claimed by another worker, soonest first, for
    /// this worker alone until `lease_until`. Each claimed mail is then written down
    /// ([`OutboxSteps::delivered`], [`OutboxSteps::deferred`], [`OutboxSteps::bury`]) or
    /// given back ([`OutboxSteps::release_mail`]); one left alone is claimed again once its
    /// lease ends.
    async fn claim_mail(&self, n: usize, now: i64, lease_until: i64) -> Result<Vec<OutboxItem>, Error>;

    /// When the next mail a claim could take is due: now or earlier when more is due than
    /// was claimed. Mail claimed by a worker is left out until its lease ends.
    async fn next_mail_due(&self, now: i64) -> Result<Option<i64>, Error>;

    /// How many mails are due by `now` and claimed by no one, counting no further than
    /// `at_most` (what a pass that trouble with the server stopped leaves waiting; a long
    /// backlog is not walked).
    async fn due_mail(&self, now: i64, at_most: usize) -> Result<usize, Error>;

    /// Ends the claims on these mails, unchanged: they are due again at once.
    async fn release_mail(&self, ids: &[u64]) -> Result<(), Error>;

    /// The server accepted mail `id`: it leaves the queue and is counted (`outbox.delivered`),
    /// and the last problem and the hold after trouble with the server are over.
    async fn delivered(&self, id: u64) -> Result<(), Error>;

    /// Delivery of `item` failed for now: its attempts, next attempt and last error are
    /// written (only if it is still queued: a mail taken out meanwhile never comes back) and
    /// its claim ends. Its last error becomes the outbox's, and the failure is counted
    /// (`outbox.failures`).
    async fn deferred(&self, item: &OutboxItem) -> Result<(), Error>;

    /// Moves a mail from the queue to the dead letters, with `event` (`mail_dead`), if it is
    /// still queued. `dead.item` is kept as given (a reset or verification mail comes without
    /// its message). `refused`: the server refused it, so its reason becomes the last error
    /// and counts as a failure.
    async fn bury(&self, dead: &DeadItem, event: &AuditEvent, refused: bool) -> Result<(), Error>;

    /// The end of the hold after trouble with the server, if one was set (it may have
    /// passed).
    async fn server_hold(&self) -> Result<Option<i64>, Error>;

    /// Trouble with the server (not with one mail): the whole queue waits, longer after each
    /// such failure in a row ([`crate::outbox::backoff`]), and `why` becomes the last error.
    /// Counted as a failure. Returns when the server is tried again.
    async fn hold_for_server(&self, why: &str, now: i64) -> Result<i64, Error>;

    /// The stand-ins' mail waiting to be rehearsed (see [`crate::outbox::Outbox::rehearse`]).
    async fn stand_ins_waiting(&self) -> Result<u64, Error>;

    /// Up to `n` of the stand-ins' mails, oldest first, claimed as [`OutboxSteps::claim_mail`]
    /// claims mail.
    async fn claim_stand_ins(&self, n: usize, now: i64, lease_until: i64) -> Result<Vec<OutboxItem>, Error>;

    /// Ends the claims on these stand-ins' mails, unchanged.
    async fn release_stand_ins(&self, ids: &[u64]) -> Result<(), Error>;

    /// A stand-in's mail went through the motions: it goes, and is counted
    /// (`outbox.stand_ins`).
    async fn stand_in_done(&self, id: u64) -> Result<(), Error>;

    /// All waiting mail, oldest first.
    async fn queued_mail(&self) -> Result<Vec<OutboxItem>, Error>;

    /// All dead letters, oldest first.
    async fn dead_letters(&self) -> Result<Vec<DeadItem>, Error>;

    /// Moves the dead letters (all, or just `id`) that kept their message and whose link (if
    /// any) still works back into the queue, due `now`; makes waiting mail (all, or `id`) due
    /// `now`; lifts the hold after trouble with the server. Returns how many mails moved.
    async fn retry_dead(&self, id: Option<u64>, now: i64) -> Result<usize, Error>;

    /// The dead reset mails (all, or just `id`) whose message was dropped while their link
    /// still worked at `now`, as (id, address).
    async fn dead_resets(&self, id: Option<u64>, now: i64) -> Result<Vec<(u64, String)>, Error>;

    /// Deletes dead letter `id`; false if it was gone already.
    async fn forget_dead(&self, id: u64) -> Result<bool, Error>;

    /// Deletes the dead letters that died before `before`; returns how many.
    async fn prune_dead(&self, before: i64) -> Result<usize, Error>;

    /// Deletes every dead letter; returns how many.
    async fn purge_dead(&self) -> Result<usize, Error>;

    /// The queue's figures.
    async fn outbox_figures(&self) -> Result<QueueFigures, Error>;
}
