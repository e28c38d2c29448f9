//! The steps the flows take on a store. Each is atomic in every backend: what it reads and
//! what it writes happen as one, whatever else runs at the same time (in this process or,
//! on a shared database, in another). The flows call these and nothing else for accounts,
//! sessions and limits; how records are laid out stays in the backend.

use async_trait::async_trait;

use super::{CodeState, Intake, LiveReset, MailSetting, Pending, RetiredToken, Session, User};
use crate::audit::AuditEvent;
use crate::error::Error;
use crate::letters::Letter;
use crate::limits::RateLimit;

/// A password being set, by a reset or by the signed-in owner.
pub struct NewPassword<'a> {
    /// The account.
    pub user_id: &'a str,
    /// The stamp read when the change began. If it moved since (another reset, a change, a
    /// disable), nothing is written and the step says [`Error::TokenStale`].
    pub expected_stamp: &'a str,
    /// The new argon2id PHC string.
    pub hash: String,
    /// The new stamp: it ends every session and outstanding link.
    pub stamp: String,
    /// The reset that allows it. It must still be the account's live reset and not retired;
    /// it is retired as used in the same step, so of two confirms racing exactly one wins.
    pub consume: Option<&'a LiveReset>,
    /// The "your password was changed" notice, queued in the same step.
    pub notice: &'a Letter,
    /// The audit event, written in the same step.
    pub event: &'a AuditEvent,
    /// Unix seconds.
    pub now: i64,
}

/// What [`AccountSteps::set_password`] did.
pub struct PasswordSet {
    /// The account as it is now.
    pub user: User,
    /// The hash it had before (the decoys follow the accounts' hash parameters).
    pub old_hash: String,
}

/// Accounts, their sessions and their audit trail.
#[async_trait]
pub trait AccountSteps: Send + Sync {
    /// The account with this normalised address, found or not at the same cost (a stranger
    /// must not learn from the time it takes: sled reads twice either way, PostgreSQL asks
    /// one indexed query).
    async fn user_by_email(&self, email: &str) -> Result<Option<User>, Error>;

    /// The accounts with these normalised addresses (those that have one), in one look-up
    /// where the store is across a network: a worker asks for a whole claim at once.
    async fn users_by_email(&self, emails: &[String]) -> Result<Vec<User>, Error> {
        let mut found = Vec::new();
        for email in emails {
            found.extend(self.user_by_email(email).await?);
        }
        Ok(found)
    }

    /// The account with this id.
    async fn user(&self, id: &str) -> Result<Option<User>, Error>;

    /// Every account, in no particular order.
    async fn users(&self) -> Result<Vec<User>, Error>;

    /// Creates the account and writes its event, unless its address has an account already
    /// ([`Error::EmailTaken`], nothing written).
    async fn create_user(&self, user: &User, event: &AuditEvent) -> Result<(), Error>;

    /// Replaces the account's hash with `new` if it is still `old` (a rehash with current
    /// parameters must not undo a password change that happened meanwhile). Says whether it
    /// did.
    async fn replace_hash(&self, user_id: &str, old: &str, new: &str) -> Result<bool, Error>;

    /// Sets a password: the hash, the stamp, the reset consumed, the live reset dropped, the
    /// notice queued and the event written, all or nothing (see [`NewPassword`]).
    async fn set_password(&self, change: NewPassword<'_>) -> Result<PasswordSet, Error>;

    /// Sets the language or the time zone of the account's mail, with its event. `false`
    /// when there is no such account.
    async fn set_mail_setting(
        &self,
        user_id: &str,
        setting: MailSetting<'_>,
        event: &AuditEvent,
    ) -> Result<bool, Error>;

    /// Disables or re-enables the account, with its event. `new_stamp` (given when
    /// disabling) replaces the stamp, and the live reset goes with it. `None` when there is
    /// no such account.
    async fn set_disabled(
        &self,
        user_id: &str,
        disabled: bool,
        new_stamp: Option<String>,
        event: &AuditEvent,
    ) -> Result<Option<User>, Error>;

    /// Keeps a session under `key` (the SHA-256 of its token).
    async fn put_session(&self, key: &[u8], session: &Session) -> Result<(), Error>;

    /// The session under `key`.
    async fn session(&self, key: &[u8]) -> Result<Option<Session>, Error>;

    /// Ends the session under `key`; ending one that is not there is no error.
    async fn end_session(&self, key: &[u8]) -> Result<(), Error>;

    /// Writes an audit event.
    async fn append_event(&self, event: &AuditEvent) -> Result<(), Error>;

    /// The last `n` audit events, oldest first.
    async fn recent_events(&self, n: usize) -> Result<Vec<AuditEvent>, Error>;
}

/// Rate limits: one number per key (GCRA's arrival time), changed atomically.
#[async_trait]
pub trait LimitSteps: Send + Sync {
    /// Counts one event for `key` at `now`. `Ok(Err(retry_after))` when over the limit;
    /// nothing is counted then.
    async fn take(&self, limit: RateLimit, key: &str, now: i64) -> Result<Result<(), i64>, Error>;

    /// Gives back one event counted by [`LimitSteps::take`], never below "nothing counted".
    async fn refund(&self, limit: RateLimit, key: &str, now: i64) -> Result<(), Error>;

    /// Forgets every event counted for `key`.
    async fn clear(&self, key: &str) -> Result<(), Error>;

    /// Remembers `key` (a client that signed in to an account) until `until` (Unix seconds).
    async fn remember(&self, key: &str, until: i64) -> Result<(), Error>;

    /// Whether `key` is remembered at `now`.
    async fn remembered(&self, key: &str, now: i64) -> Result<bool, Error>;
}

/// What every flow needs of a store besides its records: durability and counters.
#[async_trait]
pub trait StoreSteps: Send + Sync {
    /// Makes every step taken so far durable. Backends whose steps commit durably one by one
    /// return at once; sled groups the flushes of concurrent callers into one.
    async fn flush(&self) -> Result<(), Error>;

    /// Adds one to the named counter (figures for the operator: refusals, mail delivered).
    async fn bump(&self, name: &str) -> Result<u64, Error>;

    /// The named counter.
    async fn counter(&self, name: &str) -> Result<u64, Error>;

    /// This install's id: `fresh_id` the first time it is asked, the same for every instance
    /// after.
    async fn install_id(&self, fresh_id: &str) -> Result<String, Error>;

    /// Every issuer this install's links have carried, `issuer` added (a link mailed before
    /// `public_url` changed still works).
    async fn issuers(&self, issuer: &str) -> Result<Vec<String>, Error>;

    /// Drops what has run out at `now`: retired links past their expiry, resets whose link
    /// and code expired, counts of wrong codes past their reset's life, expired sessions and
    /// pending accounts, rate-limit entries whose window has passed, and audit events beyond
    /// the newest `audit_keep`. (Dead letters are the outbox's.) Returns how many records
    /// went; on a shared database it does the work once however many instances ask within
    /// [`PRUNE_EVERY_SECS`], the others get 0.
    async fn prune(&self, now: i64, audit_keep: usize) -> Result<usize, Error>;
}

/// How often the worker prunes; on a shared database, how long after one instance pruned
/// the others' turns are skipped.
pub const PRUNE_EVERY_SECS: i64 = 600;

/// A request waiting for the worker, with its place in the queue.
#[derive(Debug, Clone)]
pub struct Waiting {
    /// Its place in the queue; the step that handles it takes it off by this.
    pub id: u64,
    /// What was asked.
    pub request: Intake,
}

/// The requests acknowledged to callers (reset mail, new accounts) and waiting for the
/// worker. Every step that handles one takes it off the queue in the same step, and does
/// nothing when another worker (another instance) took it off first: so each request is
/// handled once.
#[async_trait]
pub trait IntakeSteps: Send + Sync {
    /// Queues a request, durable when this returns (the answer's whole write: it waits for
    /// nothing else).
    async fn queue_request(&self, request: &Intake) -> Result<(), Error>;

    /// How many requests wait.
    async fn waiting_requests(&self) -> Result<usize, Error>;

    /// Up to `n` waiting requests, oldest first, for this worker alone until `lease_until`
    /// (Unix seconds): another instance's worker skips them until then, and takes them after
    /// it, should this one die before handling them.
    async fn claim_requests(&self, n: usize, now: i64, lease_until: i64) -> Result<Vec<Waiting>, Error>;

    /// Takes requests off the queue without doing anything for them, counting those this
    /// step took off under the named counter if one is given, in one step (one commit on a
    /// database: a flood of strangers' addresses comes this way, a batch at a time).
    async fn drop_requests(&self, ids: &[u64], counted_as: Option<&str>) -> Result<(), Error>;

    /// Takes a request off the queue and writes why nothing was done for it (an address over
    /// its limit), in one step; nothing when another worker took it off first.
    async fn refuse_request(&self, id: u64, event: &AuditEvent) -> Result<(), Error>;
}

/// A new address's registration: the pending account, its code and its mail.
pub struct NewPending<'a> {
    /// The request it answers.
    pub request: u64,
    /// The pending account; an earlier one for the address is replaced (its link then says
    /// so).
    pub pending: &'a Pending,
    /// Where its code is kept, and the code.
    pub code_key: &'a str,
    /// The code's record.
    pub code: &'a CodeState,
    /// The verification mail.
    pub letter: &'a Letter,
    /// The audit event.
    pub event: &'a AuditEvent,
    /// Unix seconds.
    pub now: i64,
}

/// New accounts that wait for their address to be verified.
#[async_trait]
pub trait RegistrationSteps: Send + Sync {
    /// Someone asked for an account with an address that has one: the notice to its owner is
    /// queued, the event written and the request taken off, in one step.
    async fn tell_owner(&self, request: u64, notice: &Letter, event: &AuditEvent, now: i64) -> Result<(), Error>;

    /// Starts a pending account (see [`NewPending`]), in one step with its mail.
    async fn start_pending(&self, new: NewPending<'_>) -> Result<(), Error>;

    /// The pending account with this id.
    async fn pending(&self, id: &str) -> Result<Option<Pending>, Error>;

    /// Turns a pending account into `user`: only if it is still the address's pending account
    /// with the same link ([`Error::TokenReplaced`] when a newer one replaced it,
    /// [`Error::AccountVerified`] when it was finished already) and the address has no
    /// account ([`Error::EmailTaken`]). Its link is retired as used.
    async fn finish_pending(&self, pending: &Pending, user: &User, event: &AuditEvent) -> Result<(), Error>;

    /// Drops the address's pending account, if any (an administrator made the account).
    async fn drop_pending(&self, email: &str) -> Result<(), Error>;
}

/// A reset minted for a request (see [`ResetSteps::mint_reset`]).
pub struct NewReset<'a> {
    /// The request it answers, taken off the queue in the same step.
    pub request: u64,
    /// The account it is for, or `None` for a stand-in: a request that gets no mail (no
    /// account, or over its address's limit) does the same work, and its records go where
    /// the backend keeps stand-ins, under fixed keys so they never grow. Its mail is
    /// rehearsed, not sent.
    pub user_id: Option<&'a str>,
    /// The reset; it replaces the account's older one, whose link then says so.
    pub live: &'a LiveReset,
    /// Where its typed code is kept, and the code's record (fresh: earlier wrong tries do not
    /// count against it).
    pub code_key: &'a str,
    /// The code's record.
    pub code: &'a CodeState,
    /// The mail with the link and code.
    pub letter: &'a Letter,
    /// The event: appended to the trail when `audited`, else kept with the stand-in.
    pub event: &'a AuditEvent,
    /// Whether `event` goes to the audit trail.
    pub audited: bool,
    /// The named counter it moves (resets minted, requests for no account, …), in the
    /// same step: one commit on a database, and the same work for a stand-in.
    pub counted_as: &'a str,
    /// Unix seconds.
    pub now: i64,
}

/// Resets and the typed codes of resets and registrations, as a link or a code is checked.
#[async_trait]
pub trait ResetSteps: Send + Sync {
    /// Why the link with this `jti` no longer works, if it was retired.
    async fn retired(&self, jti: &str) -> Result<Option<RetiredToken>, Error>;

    /// The account's live reset.
    async fn live_reset(&self, user_id: &str) -> Result<Option<LiveReset>, Error>;

    /// Counts one try of a typed code for `key`, in one atomic step, and returns the record
    /// as it was before the try: `stand_in` when the address had none (which is then kept, as
    /// an address with a reset keeps its own, so every address costs the same). The record
    /// is kept at least until `until`.
    async fn count_code_try(&self, key: &str, stand_in: &CodeState, until: i64) -> Result<CodeState, Error>;

    /// Counts a reset request against its address's limit at the time it was made (`at`),
    /// under `key`; `None` (an address with no account) counts under the stand-in's key, at
    /// the same cost, so a stranger's address leaves no record behind. Says whether it was
    /// within the limit (nothing is counted when it was not).
    async fn count_reset_request(&self, limit: RateLimit, key: Option<&str>, at: i64) -> Result<bool, Error>;

    /// Mints a reset (see [`NewReset`]): the older link retired as replaced, the reset and
    /// its code kept, its mail queued, the request taken off and the event written, all in
    /// one step. Nothing happens when another worker took the request off first.
    async fn mint_reset(&self, reset: NewReset<'_>) -> Result<(), Error>;
}

/// Every step of every flow: what a backend is.
pub trait Steps:
    AccountSteps + LimitSteps + StoreSteps + IntakeSteps + RegistrationSteps + ResetSteps + super::OutboxSteps
{
}

impl<T> Steps for T where
    T: AccountSteps + LimitSteps + StoreSteps + IntakeSteps + RegistrationSteps + ResetSteps + super::OutboxSteps
{
}
