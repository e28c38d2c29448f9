//! Moving an install from sled to PostgreSQL (`rekeyd db copy`): every record the sled
//! store holds, read as [`Records`] and written into an empty database in one transaction.
//! Queued mail is opened with the data directory's mail key and sealed again with the
//! database's; the signing keys go along, so links already mailed keep working.

use std::fmt;

use super::{CodeState, Intake, LiveReset, Pending, RetiredToken, Session, User};
use crate::audit::AuditEvent;
use crate::outbox::{DeadItem, OutboxItem};

/// Everything an install keeps, as plain records.
#[derive(Default)]
pub struct Records {
    /// The accounts.
    pub users: Vec<User>,
    /// (account id, its live reset).
    pub resets: Vec<(String, LiveReset)>,
    /// (`jti`, why it no longer works).
    pub retired: Vec<(String, RetiredToken)>,
    /// (`reset/<address>` or `verify/<address>`, the code's record).
    pub codes: Vec<(String, CodeState)>,
    /// (SHA-256 of the token, the session).
    pub sessions: Vec<(Vec<u8>, Session)>,
    /// Accounts waiting for their address to be verified.
    pub pending: Vec<Pending>,
    /// Requests acknowledged and not yet handled.
    pub intake: Vec<Intake>,
    /// (limit key, GCRA arrival time in milliseconds).
    pub limits: Vec<(String, i64)>,
    /// Queued mail, with its message opened.
    pub mail: Vec<(OutboxItem, Vec<u8>)>,
    /// The dead letters, with the message opened where one was kept (a dead reset or
    /// verification mail keeps none).
    pub dead: Vec<(DeadItem, Option<Vec<u8>>)>,
    /// The named counters (mail delivered, failures, requests refused, …).
    pub counters: Vec<(String, u64)>,
    /// The audit trail, oldest first.
    pub audit: Vec<AuditEvent>,
    /// The install's id.
    pub install_id: Option<String>,
    /// Every issuer the install's links have carried.
    pub issuers: Vec<String>,
}

impl fmt::Display for Records {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} accounts, {} live resets, {} retired links, {} typed codes, {} sessions, {} pending accounts, \
             {} waiting requests, {} rate-limit entries, {} queued mails, {} dead letters, {} audit events",
            self.users.len(),
            self.resets.len(),
            self.retired.len(),
            self.codes.len(),
            self.sessions.len(),
            self.pending.len(),
            self.intake.len(),
            self.limits.len(),
            self.mail.len(),
            self.dead.len(),
            self.audit.len()
        )
    }
}
