//! Resetting a forgotten password.
//!
//! The request path does the same work whatever the address: normalise, count the request
//! against its client's limit, write an intake record and flush. It never looks the address
//! up, so neither the answer nor its timing says whether an account exists. A worker then
//! takes each intake record, counts it against the address's limit, and only if the address
//! is within its limit and has an account mints the reset and queues its mail, in one
//! transaction that also retires the older link.
//!
//! The per-address limit lives in the worker, not in the answer: an address over its limit
//! gets the same 202 and simply no further mail. A 429 there would tell a stranger that
//! someone has been asking for that address, and its cheaper path would show in the timing.
//! The per-client limit stays in the answer: it is about the caller's own behaviour.

use std::time::Duration;

use rand::Rng;

use sled::transaction::ConflictableTransactionError::Abort;
use sled::Transactional;
use tokio::sync::watch;

use super::codes::{code_key, fresh_code};
use super::{tx, Rekey};
use crate::audit::AuditEvent;
use crate::email::Email;
use crate::error::{internal, Error};
use crate::letters::{self, LinkLetter};
use crate::outbox::{enqueue_tx, MailKind};
use crate::store::{
    decode, encode, seq_key, CodeState, Intake, IntakeKind, LiveReset, Retired, RetiredToken, Store, User,
};
use crate::token::{Purpose, TokenError};

/// The meta counter of reset requests for addresses with no account.
pub const NO_ACCOUNT_COUNTER: &str = "reset.no_account";

/// The meta counter of resets minted for accounts.
pub const MINTED_COUNTER: &str = "reset.minted";

/// Keys in the stand-in tree (see [`Rekey::mint_reset`]). Its mail takes the outbox's own
/// layout there, from sequence keys to its index.
const STAND_IN_LIMIT: &str = "stand-in/limit";
const STAND_IN_RESET: &[u8] = b"stand-in/reset";
const STAND_IN_CODE: &[u8] = b"stand-in/code";
const STAND_IN_EVENT: &[u8] = b"stand-in/event";
const STAND_IN_RETIRED: &[u8] = b"stand-in/retired";

/// Requests waiting for the worker beyond which it takes no stand-ins, and stand-ins waiting
/// for the outbox beyond which it makes no more (see [`Rekey::stand_in_affordable`]).
const STAND_INS_WHILE_BEHIND: usize = 16;
const STAND_INS_WAITING: u64 = 64;

/// For whom a reset is minted: an account, or a stand-in for a request that gets no mail
/// (with the audit event an account over its limit gets).
enum Minted<'a> {
    ForAccount(&'a User),
    StandIn(Option<AuditEvent>),
}

/// Audit events kept; `prune` drops the oldest beyond this.
pub const AUDIT_KEEP: usize = 200_000;

/// What proves the right to reset: the link's token, or the address plus the typed code.
pub type ResetProof = super::codes::Proof;

/// What a valid link leads to, for the reset page (shown before any password is typed).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ResetTarget {
    /// The account's address, so the page can say whose password is being set.
    pub email: String,
    /// When the link stops working (Unix seconds).
    pub expires_at: i64,
}

/// A record for pruning, or `None` (logged) when it cannot be read: one bad record must not
/// stop the pruning of every other.
fn readable<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    decode(bytes)
        .map_err(|e| tracing::error!(error = %e, "a record could not be read while pruning; it is kept"))
        .ok()
}

impl Rekey {
    /// Asks for a reset mail for `email`, on behalf of `client` (peer IP, install id).
    /// The answer is the same whether or not the account exists, and whether or not the
    /// address is over its limit; the request is on disk before this returns.
    pub async fn request_reset(&self, email: &str, client: &str) -> Result<(), Error> {
        let email = Email::parse(email)?;
        let client_key = format!("reset:client:{client}");
        self.take_limits(&[(self.config.limit_client, &client_key)], self.now())?;
        self.queue_reset_request(&email, client).await
    }

    /// Writes a reset request for the worker and makes it durable; the client's limit has
    /// been counted already (or does not apply: an administrator's `outbox retry`).
    pub(crate) async fn queue_reset_request(&self, email: &Email, client: &str) -> Result<(), Error> {
        self.queue_intake(Intake {
            kind: IntakeKind::Reset,
            email: email.to_string(),
            client: client.to_string(),
            at: self.now(),
            password_hash: None,
        })
        .await
    }

    /// Writes a request for the worker and makes it durable (the answer's path: the same for
    /// every address, since nothing here looks the address up).
    pub(crate) async fn queue_intake(&self, request: Intake) -> Result<(), Error> {
        let record = encode(&request);
        if !self.intake_depth.try_add(self.config.intake_limit) {
            let _ = self.store.bump("intake.refused");
            return Err(Error::Busy { retry_after: 5 });
        }
        let id = self.store.db.generate_id()?;
        if let Err(e) = self.store.intake.insert(seq_key(id), record) {
            self.intake_depth.remove();
            return Err(e.into());
        }
        self.store.flush().await?;
        self.intake_wake.notify_one();
        Ok(())
    }

    /// Turns waiting intake records into resets and mail. Returns how many it handled.
    /// A record that cannot be handled stays queued (and is logged) without holding up
    /// the ones behind it.
    pub async fn process_intake(&self) -> Result<usize, Error> {
        let mut handled = 0;
        for entry in self.store.intake.iter() {
            let (key, value) = entry?;
            match self.handle_intake(&key, &value) {
                Ok(()) => {
                    self.intake_depth.remove();
                    handled += 1
                }
                Err(e) => tracing::error!(error = %e, "a request could not be handled; it stays queued"),
            }
        }
        if handled > 0 {
            self.store.flush().await?;
            self.outbox.wake.notify_one();
        }
        Ok(handled)
    }

    fn handle_intake(&self, key: &[u8], value: &[u8]) -> Result<(), Error> {
        let request: Intake = decode(value)?;
        if request.kind == IntakeKind::Register {
            return self.handle_registration(key, &request);
        }
        let email = Email::parse(&request.email);
        let user = match &email {
            Ok(email) => self.find_user(email)?.filter(|u| !u.disabled),
            Err(_) => None,
        };
        // Counted at the time of the request, so a worker that falls behind (or a restart)
        // does not change which requests were within the limit. Only an account's mailbox
        // needs the limit, so a stranger's address (a flood's worth of them) leaves no limit
        // record behind: it is counted, at the same cost, under one stand-in key.
        let (limits, addr_key) = match &user {
            Some(_) => (&self.store.limits, format!("reset:address:{}", request.email)),
            None => (&self.store.stand_ins, STAND_IN_LIMIT.to_string()),
        };
        let within_limit = self.config.limit_address.take(limits, &addr_key, request.at)?.is_ok();
        match user {
            Some(user) if within_limit => {
                let _ = self.store.bump(MINTED_COUNTER);
                self.mint_reset(key, &request, Minted::ForAccount(&user))
            }
            Some(user) => {
                let _ = self.store.bump("limits.refused");
                let event = AuditEvent::new(
                    request.at,
                    "reset_rate_limited",
                    Some(&user.id),
                    Some(&request.client),
                    "over the address's limit; no mail sent",
                );
                if self.stand_in_affordable() {
                    return self.mint_reset(key, &request, Minted::StandIn(Some(event)));
                }
                let s = &self.store;
                tx((&s.intake, &s.audit).transaction(|(intake, audit)| {
                    intake.remove(key)?;
                    event.append_tx(audit)?;
                    Ok(())
                }))
            }
            None => {
                // No account: counted, not logged one by one. A flood of strangers' addresses
                // would otherwise add an audit record per request, and sled keeps a share of
                // every record in memory: measured, memory grew with the flood without bound.
                let _ = self.store.bump(NO_ACCOUNT_COUNTER);
                let _: User = decode(&self.user_stand_in)?;
                if self.stand_in_affordable() {
                    return self.mint_reset(key, &request, Minted::StandIn(None));
                }
                self.store.intake.remove(key)?;
                Ok(())
            }
        }
    }

    /// Whether a request that gets no mail gets a stand-in: not while the worker is behind
    /// or stand-ins wait for the outbox. A stand-in costs an account's work, and under a
    /// flood of strangers' addresses that work slowed the worker until the intake filled and
    /// everyone got `busy`, and grew the store (measured by the load bench: 503 for 55% of a
    /// 15 s flood, RSS 904 MiB). A flood is its own noise to anyone timing his requests;
    /// a prober who sends his own burst to get past this pays for it in that noise.
    fn stand_in_affordable(&self) -> bool {
        self.intake_depth() <= STAND_INS_WHILE_BEHIND && self.outbox.stand_ins_waiting() < STAND_INS_WAITING
    }

    /// Mints a reset and queues its mail, in one transaction that also retires the older
    /// link and takes the request off the intake. For a request that gets no mail (no
    /// account, or over the address's limit) it does the same work for a stand-in account
    /// and keeps the result in the stand-in tree, whose mail the outbox goes through the
    /// motions of delivering ([`crate::outbox::Outbox::rehearse`]): this runs after the
    /// answer, but a requester who times his own next requests would see the extra work of
    /// a real account in them (measured: a slowest probe 1.3× as slow, KS D 0.4 over 1000
    /// trials).
    fn mint_reset(&self, intake_key: &[u8], request: &Intake, minted_for: Minted<'_>) -> Result<(), Error> {
        let now = self.now();
        let ttl = self.config.reset_ttl_secs;
        let stand_in;
        let user = match &minted_for {
            Minted::ForAccount(user) => *user,
            Minted::StandIn(_) => {
                stand_in = User {
                    id: crate::token::random_id(),
                    email: request.email.clone(),
                    password_hash: String::new(),
                    stamp: crate::token::random_id(),
                    disabled: false,
                    created_at: now,
                };
                &stand_in
            }
        };
        let minted = self
            .keys
            .read()
            .map_err(|e| internal("keys", e))?
            .mint(&user.id, &user.stamp, now, ttl);
        let letter = letters::reset(
            &self.config.mail_from,
            &LinkLetter {
                to: &user.email,
                token: &minted.token,
                code: &minted.code,
                expires_at: minted.claims.exp,
                ttl,
                public_url: self.config.public_url.as_ref(),
            },
        )
        .map_err(|e| internal("letter", e))?;
        let live = LiveReset {
            jti: minted.claims.jti.clone(),
            kid: minted.kid.clone(),
            issued_at: now,
            expires_at: minted.claims.exp,
        };
        // A new code: the wrong ones typed before do not count against it.
        let code = encode(&fresh_code(&user.id, &minted));
        let code_key = match Email::parse(&user.email) {
            Ok(email) => code_key(Purpose::Reset, &email),
            Err(_) => code_key(Purpose::Reset, &Email::parse("stand-in@rekey.invalid")?),
        };
        // An account's event goes to the audit trail, and so does a refusal over the limit;
        // a stranger's, made all the same, to the stand-in tree.
        let (event, audited) = match &minted_for {
            Minted::ForAccount(_) => (None, true),
            Minted::StandIn(refused) => (refused.clone(), refused.is_some()),
        };
        let event = event.unwrap_or_else(|| {
            AuditEvent::new(
                now,
                "reset_requested",
                Some(&user.id),
                Some(&request.client),
                "reset mail queued",
            )
        });
        let s = &self.store;
        tx((
            &s.intake,
            &s.resets,
            &s.retired,
            &s.codes,
            &s.outbox,
            &s.audit,
            &s.stand_ins,
        )
            .transaction(|(intake, resets, retired, codes, outbox, audit, stand_ins)| {
                // A stand-in writes what an account's reset writes, to the stand-in tree
                // under fixed keys (its own older reset included), so it never grows.
                let real = matches!(minted_for, Minted::ForAccount(_));
                let (reset_key, code_key) = if real {
                    (user.id.as_bytes(), code_key.as_bytes())
                } else {
                    (STAND_IN_RESET, STAND_IN_CODE)
                };
                let (resets, retired, codes, outbox) = if real {
                    (resets, retired, codes, outbox)
                } else {
                    (stand_ins, stand_ins, stand_ins, stand_ins)
                };
                // The newer request replaces the older link, which then says so.
                if let Some(old) = resets.get(reset_key)? {
                    let old: LiveReset = decode(&old).map_err(|e| Abort(internal("reset record", e)))?;
                    let why = RetiredToken {
                        why: Retired::Replaced,
                        expires_at: old.expires_at,
                    };
                    let retired_key = if real { old.jti.as_bytes() } else { STAND_IN_RETIRED };
                    retired.insert(retired_key, encode(&why))?;
                }
                resets.insert(reset_key, encode(&live))?;
                codes.insert(code_key, code.as_slice())?;
                enqueue_tx(
                    outbox,
                    &self.mail_key,
                    &letter,
                    MailKind::Reset,
                    now,
                    Some(minted.claims.exp),
                )?;
                intake.remove(intake_key)?;
                if audited {
                    event.append_tx(audit)?;
                } else {
                    stand_ins.insert(STAND_IN_EVENT, encode(&event))?;
                }
                Ok(())
            }))
    }

    /// Checks a link before the user types a password, so the page can say at once that it
    /// expired, was used or was replaced. Consumes nothing (mail scanners open links too).
    pub fn inspect_reset_link(&self, token: &str) -> Result<ResetTarget, Error> {
        let (user, live) = self.check_token(token)?;
        Ok(ResetTarget {
            email: user.email,
            expires_at: live.expires_at,
        })
    }

    fn check_token(&self, token: &str) -> Result<(User, LiveReset), Error> {
        // Before trimming: a good token wrapped in megabytes of spaces is not a good token,
        // and trimming them would cost a scan of all of it.
        if token.len() > crate::token::MAX_TOKEN_LEN + 64 {
            return Err(Error::Token(TokenError::Malformed));
        }
        let claims = self
            .keys
            .read()
            .map_err(|e| internal("keys", e))?
            .verify(token.trim(), self.now())?;
        if let Some(retired) = Store::get::<RetiredToken>(&self.store.retired, claims.jti.as_bytes())? {
            return Err(retired.why.into());
        }
        let user: User = Store::get(&self.store.users, claims.sub.as_bytes())?.ok_or(Error::TokenStale)?;
        if user.stamp != claims.stamp {
            return Err(Error::TokenStale);
        }
        let live: LiveReset = Store::get(&self.store.resets, user.id.as_bytes())?.ok_or(Error::TokenUsed)?;
        if live.jti != claims.jti {
            return Err(Error::TokenReplaced);
        }
        Ok((user, live))
    }

    /// Checks an address + typed code (see [`super::codes`]) and returns the account and
    /// the live reset it is for.
    fn check_reset_code(&self, email: &str, code: &str, client: &str) -> Result<(User, LiveReset), Error> {
        let state = self.check_code(Purpose::Reset, email, code, client)?;
        match self.code_target(&state)? {
            Some(found) => Ok(found),
            None => Err(self.code_failed(&state, client)),
        }
    }

    /// The account and live reset a right code is for, if that reset is still live.
    fn code_target(&self, state: &CodeState) -> Result<Option<(User, LiveReset)>, Error> {
        let Some(user) = Store::get::<User>(&self.store.users, state.user_id.as_bytes())? else {
            return Ok(None);
        };
        let live: Option<LiveReset> = Store::get(&self.store.resets, user.id.as_bytes())?;
        Ok(live
            .filter(|live| live.jti == state.jti && !user.disabled)
            .map(|live| (user, live)))
    }

    /// Sets a new password with a link's token or an address + code. On success the stamp
    /// rotates (every session and other token dies), the reset is consumed, a notice is
    /// queued and an audit event written, all at once. Nobody is signed in.
    pub async fn confirm_reset(&self, proof: ResetProof, new_password: &str, client: &str) -> Result<(), Error> {
        let (user, live) = match &proof {
            ResetProof::Token(token) => self.check_token(token)?,
            ResetProof::Code { email, code } => self.check_reset_code(email, code, client)?,
        };
        self.policy.check(new_password, Some(&user.email))?;
        let hash = self.hasher.hash(new_password).await?;
        let how = match proof {
            ResetProof::Token(_) => "reset with the mailed link",
            ResetProof::Code { .. } => "reset with the mailed code",
        };
        self.set_password(&user.id, &user.stamp, hash, Some(&live), client, "password_reset", how)?;
        self.store.flush().await?;
        self.outbox.wake.notify_one();
        tracing::info!(user = %user.id, "password reset");
        Ok(())
    }

    /// Drops what has run out: retired-token records past their expiry, resets whose link
    /// and code expired, counts of wrong codes past their reset's life, expired sessions,
    /// dead letters older than [`crate::outbox::DEAD_KEEP_SECS`],
    /// rate-limit entries whose window has passed, and audit events beyond the newest
    /// [`AUDIT_KEEP`]. Returns how many records went.
    pub fn prune(&self) -> Result<usize, Error> {
        let now = self.now();
        let mut n = 0;
        for entry in self.store.resets.iter() {
            let (k, v) = entry?;
            if readable::<LiveReset>(&v).is_some_and(|r| r.expires_at < now - crate::token::LEEWAY) {
                // Only if unchanged: a new reset written meanwhile stays.
                let _ = self.store.resets.compare_and_swap(k, Some(v), None::<&[u8]>)?;
                n += 1;
            }
        }
        for entry in self.store.codes.iter() {
            let (k, v) = entry?;
            if readable::<CodeState>(&v).is_some_and(|r| r.until < now) {
                let _ = self.store.codes.compare_and_swap(k, Some(v), None::<&[u8]>)?;
                n += 1;
            }
        }
        for entry in self.store.retired.iter() {
            let (k, v) = entry?;
            if readable::<RetiredToken>(&v).is_some_and(|r| r.expires_at < now - crate::token::LEEWAY) {
                self.store.retired.remove(k)?;
                n += 1;
            }
        }
        for entry in self.store.sessions.iter() {
            let (k, v) = entry?;
            if readable::<crate::store::Session>(&v).is_some_and(|r| r.expires_at < now) {
                self.store.sessions.remove(k)?;
                n += 1;
            }
        }
        n += self.outbox.prune_dead()?;
        n += self.prune_pending(now)?;
        // The audit trail keeps the most recent events: a flood of requests for strangers'
        // addresses must not fill the disk.
        let excess = self.store.audit.len().saturating_sub(AUDIT_KEEP);
        for entry in self.store.audit.iter().take(excess) {
            self.store.audit.remove(entry?.0)?;
            n += 1;
        }
        for entry in self.store.limits.iter() {
            let (k, v) = entry?;
            let tat = v.as_ref().try_into().map(i64::from_be_bytes).unwrap_or(0);
            // A key whose arrival time has passed allows a full burst again: same as absent.
            if tat < now * 1000 {
                let _ = self.store.limits.compare_and_swap(k, Some(v), None::<&[u8]>)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// The intake worker: handles requests as they arrive, until `shutdown` turns true.
    pub async fn run_intake(&self, mut shutdown: watch::Receiver<bool>) {
        let (mut last_prune, mut last_tally) = (0, self.now());
        loop {
            if *shutdown.borrow() {
                return;
            }
            if let Err(e) = self.process_intake().await {
                tracing::error!(error = %e, "intake pass failed");
            }
            if self.now() - last_prune > 600 {
                last_prune = self.now();
                if let Err(e) = self.prune() {
                    tracing::error!(error = %e, "pruning failed; it is tried again in 10 minutes");
                }
            }
            if self.now() - last_tally >= 60 {
                last_tally = self.now();
                if let Err(e) = self.tally.write(&self.store, last_tally) {
                    tracing::error!(error = %e, "audit events could not be written");
                }
            }
            tokio::select! {
                _ = self.intake_wake.notified() => {
                    // Let the answer leave first. Handling a request for a real account costs
                    // more (a token, a letter, a larger transaction) than one for a stranger;
                    // started at once, that work competes with the answer still being written
                    // and shows in its timing. After a pause it falls on whatever request
                    // happens to come next, and is shared by every request in the batch.
                    let pause = rand::thread_rng().gen_range(super::AFTER_ANSWER_MS);
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(pause)) => {}
                        _ = shutdown.changed() => {}
                    }
                }
                _ = tokio::time::sleep(Duration::from_secs(30)) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}
