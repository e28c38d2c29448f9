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

use std::collections::HashMap;
use std::time::Duration;

use rand::Rng;

use futures_util::StreamExt;
use tokio::sync::watch;

use super::codes::{code_key, fresh_code};
use super::{Backend, Rekey};
use crate::audit::AuditEvent;
use crate::email::Email;
use crate::error::{internal, Error};
use crate::letters::{self, LinkLetter};
use crate::store::steps::{NewReset, Waiting, PRUNE_EVERY_SECS};
use crate::store::{decode, CodeState, Intake, IntakeKind, LiveReset, User};
use crate::token::{Purpose, TokenError};

/// The meta counter of reset requests for addresses with no account.
pub const NO_ACCOUNT_COUNTER: &str = "reset.no_account";

/// The meta counter of resets minted for accounts.
pub const MINTED_COUNTER: &str = "reset.minted";

/// The meta counter of reset requests over their address's limit.
pub const LIMIT_REFUSED_COUNTER: &str = "limits.refused";

/// Requests waiting for the worker beyond which it takes no stand-ins, and stand-ins waiting
/// for the outbox beyond which it makes no more (see [`Rekey::stand_in_affordable`]).
const STAND_INS_WHILE_BEHIND: usize = 16;
const STAND_INS_WAITING: u64 = 64;

/// What handling a request came to: done (its step took it off the queue), or nothing to
/// do, so it is taken off with the rest of its batch.
enum Handled {
    Done,
    Dropped,
}

/// For whom a reset is minted: an account, or a stand-in for a request that gets no mail
/// (with the audit event an account over its limit gets).
enum Minted<'a> {
    ForAccount(&'a User),
    StandIn(Option<AuditEvent>),
}

/// How long a worker has a claimed request to itself (see [`crate::store::IntakeSteps`]):
/// many times what a batch takes, and short enough that requests a dead instance had
/// claimed are soon taken by another.
const INTAKE_LEASE_SECS: i64 = 15;

/// Requests a worker on a shared database claims at a time.
const INTAKE_CLAIM: usize = 64;

/// How often a worker on a shared database counts the requests waiting there (every
/// instance's). Counting walks them all (1.5 ms for 20 000 here): once a claim of 64, a
/// backlog cost about a tenth of a core at 4000 requests a second. Between counts the
/// instance's own answers and handled requests move its count.
const INTAKE_COUNT_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// Requests of a claim a worker on a shared database handles at once.
const INTAKE_AT_ONCE: usize = 8;

/// How often the worker reads the signing keys that instances share on a database.
const KEYS_REFRESH_SECS: i64 = 10;

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

impl Rekey {
    /// Asks for a reset mail for `email`, on behalf of `client` (peer IP, install id).
    /// The answer is the same whether or not the account exists, and whether or not the
    /// address is over its limit; the request is on disk before this returns.
    pub async fn request_reset(&self, email: &str, client: &str) -> Result<(), Error> {
        let email = Email::parse(email)?;
        let client_key = format!("reset:client:{client}");
        self.take_limits(&[(self.config.limit_client, &client_key)], self.now())
            .await?;
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
            locale: None,
        })
        .await
    }

    /// Writes a request for the worker and makes it durable (the answer's path: the same for
    /// every address, since nothing here looks the address up).
    pub(crate) async fn queue_intake(&self, request: Intake) -> Result<(), Error> {
        if !self.intake_depth.try_add(self.config.intake_limit) {
            let _ = self.steps().bump("intake.refused").await;
            return Err(Error::Busy { retry_after: 5 });
        }
        if let Err(e) = self.intake().queue_request(&request).await {
            self.intake_depth.remove();
            return Err(e);
        }
        self.intake_wake.notify_one();
        Ok(())
    }

    /// Turns waiting intake records into resets and mail. Returns how many it handled.
    /// A record that cannot be handled stays queued (and is logged) without holding up
    /// the ones behind it.
    pub async fn process_intake(&self) -> Result<usize, Error> {
        let mut handled = 0;
        // Claimed first, handled after. On sled (one process) a pass takes every waiting
        // record; on a shared database it takes a small batch at a time, for a short lease:
        // a worker that dies leaves them to another soon, and one that is slow is not
        // overtaken (a request handled twice would count twice against its address's limit;
        // the step that answers it takes it off, so the mail still goes once).
        let shared = matches!(self.backend(), Backend::Postgres(_));
        let claim = if shared { INTAKE_CLAIM } else { self.config.intake_limit };
        loop {
            let now = self.now();
            if shared && self.intake_depth.due_for_count(INTAKE_COUNT_EVERY) {
                // Instances handle each other's requests: the count is the database's, read
                // now and then (sled's count walks the whole tree, so sled keeps its own).
                let waiting = self.intake().waiting_requests().await?;
                self.intake_depth.0.store(waiting, std::sync::atomic::Ordering::Release);
            }
            let waiting = self
                .intake()
                .claim_requests(claim, now, now + INTAKE_LEASE_SECS)
                .await?;
            let claimed = waiting.len();
            // A database's round trips wait on the network, so a shared store's batch is
            // handled several requests at a time (every step is atomic on its own), its
            // accounts looked up in one query; sled's steps are local and one by one keeps
            // its timing plain.
            let (at_once, accounts) = if shared {
                (INTAKE_AT_ONCE, Some(self.accounts_asked_for(&waiting).await?))
            } else {
                (1, None)
            };
            let accounts = accounts.as_ref();
            let outcomes: Vec<(u64, Result<Handled, Error>)> = futures_util::stream::iter(waiting)
                .map(|Waiting { id, request }| async move { (id, self.handle_intake(id, request, accounts).await) })
                .buffer_unordered(at_once)
                .collect()
                .await;
            let mut dropped = Vec::new();
            for (id, outcome) in outcomes {
                match outcome {
                    Ok(Handled::Done) => {
                        self.intake_depth.remove();
                        handled += 1
                    }
                    Ok(Handled::Dropped) => dropped.push(id),
                    // Kept, and claimed again once the lease ends (sled: the next pass).
                    Err(e) => tracing::error!(error = %e, "a request could not be handled; it stays queued"),
                }
            }
            // Strangers' requests under a flood leave together, counted together: one commit
            // for the batch instead of one each, on the same database the answers commit to.
            if !dropped.is_empty() {
                match self.intake().drop_requests(&dropped, Some(NO_ACCOUNT_COUNTER)).await {
                    Ok(()) => {
                        for _ in &dropped {
                            self.intake_depth.remove();
                        }
                        handled += dropped.len();
                    }
                    Err(e) => tracing::error!(error = %e, "requests could not be taken off; they stay queued"),
                }
            }
            if !shared || claimed < claim {
                break;
            }
        }
        if handled > 0 {
            self.steps().flush().await?;
            self.outbox.wake.notify_one();
        }
        Ok(handled)
    }

    /// The accounts of the reset requests in a claim, by address, in one look-up.
    async fn accounts_asked_for(&self, waiting: &[Waiting]) -> Result<HashMap<String, User>, Error> {
        let emails: Vec<String> = waiting
            .iter()
            .filter(|w| w.request.kind == IntakeKind::Reset)
            .filter_map(|w| Email::parse(&w.request.email).ok())
            .map(|email| email.to_string())
            .collect();
        let found = self.accounts().users_by_email(&emails).await?;
        Ok(found.into_iter().map(|user| (user.email.clone(), user)).collect())
    }

    /// Handles one request; a reset request's account is taken from `accounts` when the
    /// claim's were looked up at once, else looked up here.
    async fn handle_intake(
        &self,
        id: u64,
        request: Intake,
        accounts: Option<&HashMap<String, User>>,
    ) -> Result<Handled, Error> {
        if request.kind == IntakeKind::Register {
            return self.handle_registration(id, &request).await.map(|()| Handled::Done);
        }
        let email = Email::parse(&request.email);
        let user = match (&email, accounts) {
            (Ok(email), Some(accounts)) => accounts.get(email.as_str()).cloned(),
            (Ok(email), None) => self.find_user(email).await?,
            (Err(_), _) => None,
        }
        .filter(|u| !u.disabled);
        // Counted at the time of the request, so a worker that falls behind (or a restart)
        // does not change which requests were within the limit. Only an account's mailbox
        // needs the limit, so a stranger's address (a flood's worth of them) leaves no limit
        // record behind: it is counted, at the same cost, under one stand-in key.
        let addr_key = format!("reset:address:{}", request.email);
        let counted_as = user.as_ref().map(|_| addr_key.as_str());
        let within_limit = self
            .resets()
            .count_reset_request(self.config.limit_address, counted_as, request.at)
            .await?;
        match user {
            Some(user) if within_limit => self
                .mint_reset(id, &request, Minted::ForAccount(&user))
                .await
                .map(|()| Handled::Done),
            Some(user) => {
                let event = AuditEvent::new(
                    request.at,
                    "reset_rate_limited",
                    Some(&user.id),
                    Some(&request.client),
                    "over the address's limit; no mail sent",
                );
                if self.stand_in_affordable().await? {
                    self.mint_reset(id, &request, Minted::StandIn(Some(event))).await?;
                } else {
                    let _ = self.steps().bump(LIMIT_REFUSED_COUNTER).await;
                    self.intake().refuse_request(id, &event).await?;
                }
                Ok(Handled::Done)
            }
            None => {
                // No account: counted, not logged one by one. A flood of strangers' addresses
                // would otherwise add an audit record per request, and sled keeps a share of
                // every record in memory: measured, memory grew with the flood without bound.
                let _: User = decode(&self.user_stand_in)?;
                if self.stand_in_affordable().await? {
                    self.mint_reset(id, &request, Minted::StandIn(None)).await?;
                    return Ok(Handled::Done);
                }
                // Taken off with the rest of the batch (see `process_intake`).
                Ok(Handled::Dropped)
            }
        }
    }

    /// Whether a request that gets no mail gets a stand-in: not while the worker is behind
    /// or stand-ins wait for the outbox. A stand-in costs an account's work, and under a
    /// flood of strangers' addresses that work slowed the worker until the intake filled and
    /// everyone got `busy`, and grew the store (measured by the load bench: 503 for 55% of a
    /// 15 s flood, RSS 904 MiB). A flood is its own noise to anyone timing his requests;
    /// a prober who sends his own burst to get past this pays for it in that noise.
    async fn stand_in_affordable(&self) -> Result<bool, Error> {
        Ok(self.intake_depth() <= STAND_INS_WHILE_BEHIND && self.outbox.stand_ins_waiting().await? < STAND_INS_WAITING)
    }

    /// Mints a reset and queues its mail, in one transaction that also retires the older
    /// link and takes the request off the intake. For a request that gets no mail (no
    /// account, or over the address's limit) it does the same work for a stand-in account
    /// and keeps the result in the stand-in tree, whose mail the outbox goes through the
    /// motions of delivering ([`crate::outbox::Outbox::rehearse`]): this runs after the
    /// answer, but a requester who times his own next requests would see the extra work of
    /// a real account in them (measured: a slowest probe 1.3× as slow, KS D 0.4 over 1000
    /// trials).
    async fn mint_reset(&self, request_id: u64, request: &Intake, minted_for: Minted<'_>) -> Result<(), Error> {
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
                    locale: None,
                    time_zone: None,
                };
                &stand_in
            }
        };
        let minted = self
            .keys
            .read()
            .map_err(|e| internal("keys", e))?
            .mint(&user.id, &user.stamp, now, ttl);
        // The account's language, whoever asked and in whatever language: the mail goes to
        // the owner. A stand-in writes in the install's.
        let letter = letters::reset(
            &self.sender_for(user),
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
        let code = fresh_code(&user.id, &minted);
        let code_key = match Email::parse(&user.email) {
            Ok(email) => code_key(Purpose::Reset, &email),
            Err(_) => code_key(Purpose::Reset, &Email::parse("stand-in@rekey.invalid")?),
        };
        // An account's event goes to the audit trail, and so does a refusal over the limit;
        // a stranger's, made all the same, goes with the stand-in.
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
        let (user_id, counted_as) = match minted_for {
            Minted::ForAccount(user) => (Some(user.id.as_str()), MINTED_COUNTER),
            Minted::StandIn(Some(_)) => (None, LIMIT_REFUSED_COUNTER),
            Minted::StandIn(None) => (None, NO_ACCOUNT_COUNTER),
        };
        self.resets()
            .mint_reset(NewReset {
                request: request_id,
                user_id,
                live: &live,
                code_key: &code_key,
                code: &code,
                letter: &letter,
                event: &event,
                audited,
                counted_as,
                now,
            })
            .await
    }

    /// Checks a link before the user types a password, so the page can say at once that it
    /// expired, was used or was replaced. Consumes nothing (mail scanners open links too).
    pub async fn inspect_reset_link(&self, token: &str) -> Result<ResetTarget, Error> {
        let (user, live) = self.check_token(token).await?;
        Ok(ResetTarget {
            email: user.email,
            expires_at: live.expires_at,
        })
    }

    async fn check_token(&self, token: &str) -> Result<(User, LiveReset), Error> {
        // Before trimming: a good token wrapped in megabytes of spaces is not a good token,
        // and trimming them would cost a scan of all of it.
        if token.len() > crate::token::MAX_TOKEN_LEN + 64 {
            return Err(Error::Token(TokenError::Malformed));
        }
        let claims = self.verify_token(Purpose::Reset, token.trim()).await?;
        if let Some(retired) = self.resets().retired(&claims.jti).await? {
            return Err(retired.why.into());
        }
        let user = self.accounts().user(&claims.sub).await?.ok_or(Error::TokenStale)?;
        if user.stamp != claims.stamp {
            return Err(Error::TokenStale);
        }
        let live = self.resets().live_reset(&user.id).await?.ok_or(Error::TokenUsed)?;
        if live.jti != claims.jti {
            return Err(Error::TokenReplaced);
        }
        Ok((user, live))
    }

    /// Checks an address + typed code (see [`super::codes`]) and returns the account and
    /// the live reset it is for.
    async fn check_reset_code(&self, email: &str, code: &str, client: &str) -> Result<(User, LiveReset), Error> {
        let state = self.check_code(Purpose::Reset, email, code, client).await?;
        match self.code_target(&state).await? {
            Some(found) => Ok(found),
            None => Err(self.code_failed(&state, client)),
        }
    }

    /// The account and live reset a right code is for, if that reset is still live.
    async fn code_target(&self, state: &CodeState) -> Result<Option<(User, LiveReset)>, Error> {
        let Some(user) = self.accounts().user(&state.user_id).await? else {
            return Ok(None);
        };
        let live = self.resets().live_reset(&user.id).await?;
        Ok(live
            .filter(|live| live.jti == state.jti && !user.disabled)
            .map(|live| (user, live)))
    }

    /// Sets a new password with a link's token or an address + code. On success the stamp
    /// rotates (every session and other token dies), the reset is consumed, a notice is
    /// queued and an audit event written, all at once. Nobody is signed in.
    pub async fn confirm_reset(&self, proof: ResetProof, new_password: &str, client: &str) -> Result<(), Error> {
        let (user, live) = match &proof {
            ResetProof::Token(token) => self.check_token(token).await?,
            ResetProof::Code { email, code } => self.check_reset_code(email, code, client).await?,
        };
        self.policy.check(new_password, Some(&user.email))?;
        let hash = self.hasher.hash(new_password).await?;
        let how = match proof {
            ResetProof::Token(_) => letters::ChangedBy::MailedLink,
            ResetProof::Code { .. } => letters::ChangedBy::MailedCode,
        };
        self.set_password(&user, hash, Some(&live), client, "password_reset", how)
            .await?;
        self.steps().flush().await?;
        self.outbox.wake.notify_one();
        tracing::info!(user = %user.id, "password reset");
        Ok(())
    }

    /// Drops what has run out: retired links, expired resets, codes and sessions, pending
    /// accounts, passed rate-limit windows, dead letters older than
    /// [`crate::outbox::DEAD_KEEP_SECS`], and audit events beyond the newest [`AUDIT_KEEP`]
    /// (see [`crate::store::StoreSteps::prune`]). Returns how many records went.
    pub async fn prune(&self) -> Result<usize, Error> {
        let n = self.steps().prune(self.now(), AUDIT_KEEP).await?;
        Ok(n + self.outbox.prune_dead().await?)
    }

    /// The intake worker: handles requests as they arrive, until `shutdown` turns true.
    pub async fn run_intake(&self, mut shutdown: watch::Receiver<bool>) {
        let (mut last_prune, mut last_tally, mut last_keys) = (0, self.now(), self.now());
        loop {
            if *shutdown.borrow() {
                return;
            }
            // Another instance's rotation: the new key signs this one's links too, soon.
            if self.now() - last_keys >= KEYS_REFRESH_SECS {
                last_keys = self.now();
                if let Err(e) = self.refresh_keys().await {
                    tracing::error!(error = %e, "the shared signing keys could not be read");
                }
            }
            if let Err(e) = self.process_intake().await {
                tracing::error!(error = %e, "intake pass failed");
            }
            if self.now() - last_prune > PRUNE_EVERY_SECS {
                last_prune = self.now();
                if let Err(e) = self.prune().await {
                    tracing::error!(error = %e, "pruning failed; it is tried again in 10 minutes");
                }
            }
            if self.now() - last_tally >= 60 {
                last_tally = self.now();
                if let Err(e) = self.tally.write(self.accounts(), last_tally).await {
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
                _ = tokio::time::sleep(Duration::from_secs(super::idle_secs(self.backend()))) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}
