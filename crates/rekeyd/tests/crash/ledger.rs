//! The ledger: what the server answered, per account, and the counts of the run.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use crate::mailbox::Mailbox;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Registered {
    Yes,
    /// Asked for (202): the mailed link finishes it.
    Asked,
    /// The request that asks for it was in flight at a kill: it may or may not have been
    /// taken; the load leaves it alone.
    Abandoned,
    /// The request with the mailed link was in flight at a kill.
    Unknown,
    /// Settled after a restart: the account does not exist.
    No,
}

/// A password change whose answer was lost.
pub(crate) struct Pending {
    pub(crate) new_password: String,
    pub(crate) token: String,
    /// It was a second use of a token that already got 204 (must never apply).
    pub(crate) reuse: bool,
}

pub(crate) struct Account {
    pub(crate) email: String,
    pub(crate) registered: Registered,
    pub(crate) password: String,
    pub(crate) pending: Option<Pending>,
    pub(crate) forgots_answered: u32,
    pub(crate) forgots_in_flight: u32,
    /// Tokens tried for this account (each is tried once by the load).
    pub(crate) tried: HashSet<String>,
    /// Tokens that changed this account's password.
    pub(crate) used: Vec<String>,
    /// Touched since the last check.
    pub(crate) dirty: bool,
}

#[derive(Default, Clone, Copy)]
pub(crate) struct Tally {
    pub(crate) sent: u64,
    pub(crate) answered: u64,
    pub(crate) in_flight: u64,
}

pub(crate) const KINDS: [&str; 8] = [
    "register",
    "verify",
    "sign-in",
    "forgot (known)",
    "forgot (unknown)",
    "reset (token)",
    "reset (code)",
    "token reuse",
];

#[derive(Default)]
pub(crate) struct Stats {
    pub(crate) kinds: BTreeMap<&'static str, Tally>,
    /// Refusals of first-time resets, by code.
    pub(crate) reset_refusals: BTreeMap<String, u64>,
    /// Refusals of reused tokens, by code.
    pub(crate) reuse_refusals: BTreeMap<String, u64>,
    pub(crate) resets_confirmed: u64,
    pub(crate) resets_applied_in_flight: u64,
    pub(crate) resets_not_applied_in_flight: u64,
    pub(crate) registers_settled_yes: u64,
    pub(crate) registers_settled_no: u64,
    pub(crate) check_sign_ins: u64,
}

impl Stats {
    pub(crate) fn merge(&mut self, other: &Stats) {
        for (k, t) in &other.kinds {
            let mine = self.kinds.entry(k).or_default();
            mine.sent += t.sent;
            mine.answered += t.answered;
            mine.in_flight += t.in_flight;
        }
        for (k, n) in &other.reset_refusals {
            *self.reset_refusals.entry(k.clone()).or_default() += n;
        }
        for (k, n) in &other.reuse_refusals {
            *self.reuse_refusals.entry(k.clone()).or_default() += n;
        }
        self.resets_confirmed += other.resets_confirmed;
        self.resets_applied_in_flight += other.resets_applied_in_flight;
        self.resets_not_applied_in_flight += other.resets_not_applied_in_flight;
        self.registers_settled_yes += other.registers_settled_yes;
        self.registers_settled_no += other.registers_settled_no;
        self.check_sign_ins += other.check_sign_ins;
    }
}

/// What every thread shares.
pub(crate) struct Shared {
    pub(crate) mailbox: Mailbox,
    /// 204 answers per token, over the whole run.
    pub(crate) accepted: Mutex<HashMap<String, u32>>,
}

impl Shared {
    /// Records a 204 for `token`; false if it had one already.
    pub(crate) fn accept(&self, token: &str) -> bool {
        let mut accepted = self.accepted.lock().unwrap();
        let n = accepted.entry(token.to_string()).or_default();
        *n += 1;
        *n == 1
    }
}
