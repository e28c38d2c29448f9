//! Accounts: register, sign in, sign out, change password, disable. Sessions are opaque
//! random tokens stored by hash, and die when the account's security stamp rotates.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sled::transaction::ConflictableTransactionError::Abort;
use sled::Transactional;

use super::{tx, Rekey};
use crate::audit::AuditEvent;
use crate::email::Email;
use crate::error::{internal, Error};
use crate::letters;
use crate::limits::RateLimit;
use crate::outbox::{enqueue_tx, MailKind};
use crate::store::{decode, encode, LiveReset, Retired, RetiredToken, Session, Store, StoreError, User};
use crate::token::random_id;

/// A session token handed to a signed-in client. Shown once; stored only as a hash.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken(pub String);

impl std::fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionToken(<redacted>)")
    }
}

/// An account as fronts may show it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct UserInfo {
    /// The id.
    pub id: String,
    /// The normalised address.
    pub email: String,
    /// Whether it is disabled.
    pub disabled: bool,
    /// Unix seconds.
    pub created_at: i64,
}

impl From<&User> for UserInfo {
    fn from(u: &User) -> Self {
        UserInfo {
            id: u.id.clone(),
            email: u.email.clone(),
            disabled: u.disabled,
            created_at: u.created_at,
        }
    }
}

/// How long a client that signed in to an account stays one the account knows (and is not
/// held by the account's ceiling on failures).
const KNOWN_CLIENT_SECS: i64 = 30 * 24 * 3600;

/// The limit keys of one sign-in: by address as typed (normalised), never by whether an
/// account has it.
struct SignInKeys {
    pair: String,
    client: String,
    account: String,
    known: String,
}

impl SignInKeys {
    fn new(email: &Email, client: &str) -> Self {
        Self {
            pair: format!("signin:pair:{email}|{client}"),
            client: format!("signin:client:{client}"),
            account: format!("signin:account:{email}"),
            known: format!("signin:known:{email}|{client}"),
        }
    }
}

fn session_key(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn new_session_token() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!("rks_{}", URL_SAFE_NO_PAD.encode(b))
}

impl Rekey {
    /// Looks an account up by address.
    pub fn find_user(&self, email: &Email) -> Result<Option<User>, Error> {
        let Some(id) = self.store.emails.get(email.as_str())? else {
            return Ok(None);
        };
        Ok(Store::get(&self.store.users, &id)?)
    }

    /// Creates an account at once, its address taken as verified: for an administrator
    /// (`rekeyd users add`) and for the desktop app's own store, where the person at the
    /// keyboard owns the store and its mailbox. Says [`Error::EmailTaken`] for an address that
    /// has an account; open services use [`Rekey::request_account`] instead, which says
    /// nothing. `client` is who asked, for the audit trail.
    pub async fn create_account(&self, email: &str, password: &str, client: &str) -> Result<UserInfo, Error> {
        let email = Email::parse(email)?;
        self.policy.check(password, Some(email.as_str()))?;
        if self.store.emails.contains_key(email.as_str())? {
            return Err(Error::EmailTaken);
        }
        let hash = self.hasher.hash(password).await?;
        let now = self.now();
        let user = User {
            id: random_id(),
            email: email.to_string(),
            password_hash: hash,
            stamp: random_id(),
            disabled: false,
            created_at: now,
        };
        let event = AuditEvent::new(now, "account_created", Some(&user.id), Some(client), email.masked());
        let s = &self.store;
        tx((&s.users, &s.emails, &s.audit).transaction(|(users, emails, audit)| {
            if emails.get(email.as_str())?.is_some() {
                return Err(Abort(Error::EmailTaken));
            }
            users.insert(user.id.as_bytes(), encode(&user))?;
            emails.insert(email.as_str().as_bytes(), user.id.as_bytes())?;
            event.append_tx(audit)?;
            Ok(())
        }))?;
        self.population.moved(None, Some(&user.password_hash));
        // A registration waiting for its mail is moot now.
        self.drop_pending(&email)?;
        self.store.flush().await?;
        tracing::info!(user = %user.id, "account created");
        Ok(UserInfo::from(&user))
    }

    /// Signs in. A wrong password, an unknown account and a disabled account all get
    /// [`Error::BadCredentials`] after the same argon2 work.
    ///
    /// Failures are what the limits count, not attempts: each attempt is counted up front
    /// (so parallel guesses cannot slip past) and given back when it succeeds. Three counts,
    /// all keyed by the address as typed, so an unknown address is counted like a known one:
    /// this client on this account (`limit_signin_client`, cleared when the owner signs in
    /// from it), this client on every account (`limit_signin_spray`), and the account from
    /// every client (`limit_signin_account`, a much higher ceiling that clients which signed
    /// in to the account before do not count against, so a stranger can slow himself but not
    /// lock the owner out).
    pub async fn sign_in(&self, email: &str, password: &str, client: &str) -> Result<SessionToken, Error> {
        let email = Email::parse(email)?;
        let now = self.now();
        let keys = SignInKeys::new(&email, client);
        let c = &self.config;
        let mut checks = vec![
            (c.limit_signin_client, keys.pair.as_str()),
            (c.limit_signin_spray, &keys.client),
        ];
        let known_client = self
            .store
            .limits
            .get(&keys.known)?
            .is_some_and(|until| until.as_ref().try_into().map(i64::from_be_bytes).unwrap_or(0) > now * 1000);
        if !known_client {
            checks.push((c.limit_signin_account, &keys.account));
        }
        self.take_limits(&checks, now)?;
        let user = self.find_user(&email)?;
        if user.is_none() {
            // What a known address costs here: a second read, and a record decoded.
            let _ = self.store.users.get(b"stand-in")?;
            let _: User = decode(&self.user_stand_in)?;
        }
        let verified = self
            .hasher
            .verify(
                password,
                user.as_ref().map(|u| u.password_hash.as_str()),
                self.population.pick(&email, self.hasher.params()),
            )
            .await;
        let ok = match verified {
            Ok(ok) => ok,
            Err(e) => {
                // Not a failure of the password: give the attempt back.
                self.refund_limits(&checks, now);
                return Err(e.into());
            }
        };
        let user = match user {
            Some(u) if ok && !u.disabled => u,
            Some(u) => {
                self.tally("sign_in_failed", &u.id, client);
                return Err(Error::BadCredentials);
            }
            None => return Err(Error::BadCredentials),
        };
        // The owner got in: this client's count on the account starts again, the attempt is
        // given back to the wider counts, and the client is one the account knows.
        self.refund_limits(&checks[1..], now);
        self.store.limits.remove(&keys.pair)?;
        let until = (now + KNOWN_CLIENT_SECS) * 1000;
        self.store.limits.insert(&keys.known, &until.to_be_bytes())?;
        if self.hasher.needs_rehash(&user.password_hash) {
            // Best effort: a busy hasher must not turn a right password into a refusal.
            if let Err(e) = self.rehash(&user, password).await {
                tracing::warn!(code = e.code(), "the password was not rehashed this time");
            }
        }
        let token = new_session_token();
        let session = Session {
            user_id: user.id.clone(),
            stamp: user.stamp.clone(),
            expires_at: now + self.config.session_ttl_secs,
        };
        self.store.sessions.insert(session_key(&token), encode(&session))?;
        AuditEvent::new(now, "signed_in", Some(&user.id), Some(client), "").append(&self.store)?;
        Ok(SessionToken(token))
    }

    /// Redoes a hash made with older parameters, unless the password changed meanwhile.
    async fn rehash(&self, user: &User, password: &str) -> Result<(), Error> {
        let hash = self.hasher.hash(password).await?;
        let old = self.store.users.get(user.id.as_bytes())?;
        let Some(old_bytes) = old else { return Ok(()) };
        let mut current: User = decode(&old_bytes)?;
        if current.password_hash != user.password_hash {
            return Ok(());
        }
        current.password_hash = hash;
        let swapped = self
            .store
            .users
            .compare_and_swap(user.id.as_bytes(), Some(old_bytes), Some(encode(&current)))?;
        if swapped.is_ok() {
            self.population
                .moved(Some(&user.password_hash), Some(&current.password_hash));
            tracing::info!(user = %user.id, "password rehashed with current parameters");
        }
        Ok(())
    }

    /// The account behind a session, if the session is still good.
    pub fn session_user(&self, token: &str) -> Result<UserInfo, Error> {
        let session: Session = Store::get(&self.store.sessions, session_key(token))?.ok_or(Error::SessionInvalid)?;
        let user: User = Store::get(&self.store.users, session.user_id.as_bytes())?.ok_or(Error::SessionInvalid)?;
        if session.stamp != user.stamp || session.expires_at <= self.now() || user.disabled {
            self.store.sessions.remove(session_key(token))?;
            return Err(Error::SessionInvalid);
        }
        Ok(UserInfo::from(&user))
    }

    /// Ends a session. Ending an unknown session is not an error.
    pub fn sign_out(&self, token: &str) -> Result<(), Error> {
        self.store.sessions.remove(session_key(token))?;
        Ok(())
    }

    /// Changes the password of a signed-in account. Every session ends (the stamp rotates)
    /// and a fresh one is returned for the caller; a notice goes to the account's address.
    pub async fn change_password(
        &self,
        session: &str,
        current: &str,
        new_password: &str,
        client: &str,
    ) -> Result<SessionToken, Error> {
        let info = self.session_user(session)?;
        let user: User = Store::get(&self.store.users, info.id.as_bytes())?.ok_or(Error::SessionInvalid)?;
        // Wrong current passwords count as failed sign-ins of this account from this client:
        // a session is no licence to guess the password.
        let pair = SignInKeys::new(&Email::parse(&user.email)?, client).pair;
        let checks = [(self.config.limit_signin_client, pair.as_str())];
        let now = self.now();
        self.take_limits(&checks, now)?;
        let ok = self
            .hasher
            .verify(current, Some(&user.password_hash), self.hasher.params())
            .await;
        match ok {
            Ok(true) => self.refund_limits(&checks, now),
            Ok(false) => return Err(Error::BadCredentials),
            Err(e) => {
                self.refund_limits(&checks, now);
                return Err(e.into());
            }
        }
        self.policy.check(new_password, Some(&user.email))?;
        let hash = self.hasher.hash(new_password).await?;
        let now = self.now();
        let updated = self.set_password(
            &user.id,
            &user.stamp,
            hash,
            None,
            client,
            "password_changed",
            "changed in Rekey",
        )?;
        self.store.flush().await?;
        self.outbox.wake.notify_one();
        let token = new_session_token();
        let session = Session {
            user_id: user.id.clone(),
            stamp: updated.stamp,
            expires_at: now + self.config.session_ttl_secs,
        };
        self.store.sessions.insert(session_key(&token), encode(&session))?;
        Ok(SessionToken(token))
    }

    /// The one place a password is set. In one transaction: the new hash, a rotated stamp
    /// (ending sessions and outstanding links), any live reset dropped, the notice queued,
    /// the audit event written. With `consume`, that reset must still be the account's live
    /// one and is retired as used, so of two confirms racing exactly one wins. Fails with
    /// [`Error::TokenStale`] if the stamp moved since `expected_stamp` was read.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn set_password(
        &self,
        user_id: &str,
        expected_stamp: &str,
        hash: String,
        consume: Option<&LiveReset>,
        client: &str,
        event: &str,
        how: &str,
    ) -> Result<User, Error> {
        let now = self.now();
        let s = &self.store;
        let from = &self.config.mail_from;
        let corrupt = |what: &str, e: StoreError| Abort(internal(what, e));
        tx((&s.users, &s.resets, &s.retired, &s.outbox, &s.audit).transaction(
            |(users, resets, retired, outbox, audit)| {
                if let Some(live) = consume {
                    if let Some(r) = retired.get(live.jti.as_bytes())? {
                        let r: RetiredToken = decode(&r).map_err(|e| corrupt("retired record", e))?;
                        return Err(Abort(r.why.into()));
                    }
                    let current: Option<LiveReset> = resets
                        .get(user_id.as_bytes())?
                        .map(|b| decode(&b))
                        .transpose()
                        .map_err(|e| corrupt("reset record", e))?;
                    if current.is_none_or(|c| c.jti != live.jti) {
                        return Err(Abort(Error::TokenReplaced));
                    }
                    let used = RetiredToken {
                        why: Retired::Used,
                        expires_at: live.expires_at,
                    };
                    retired.insert(live.jti.as_bytes(), encode(&used))?;
                }
                let Some(bytes) = users.get(user_id.as_bytes())? else {
                    return Err(Abort(Error::TokenStale));
                };
                let mut user: User = decode(&bytes).map_err(|e| corrupt("user record", e))?;
                if user.stamp != expected_stamp {
                    return Err(Abort(Error::TokenStale));
                }
                let old_hash = std::mem::replace(&mut user.password_hash, hash.clone());
                user.stamp = random_id();
                users.insert(user_id.as_bytes(), encode(&user))?;
                resets.remove(user_id.as_bytes())?;
                let notice =
                    letters::password_changed(from, &user.email, now, how).map_err(|e| Abort(internal("letter", e)))?;
                enqueue_tx(outbox, &self.mail_key, &notice, MailKind::PasswordChanged, now, None)?;
                AuditEvent::new(now, event, Some(user_id), Some(client), how).append_tx(audit)?;
                Ok((user, old_hash))
            },
        ))
        .map(|(user, old_hash)| {
            self.population.moved(Some(&old_hash), Some(&user.password_hash));
            user
        })
    }

    /// Every account, oldest first.
    pub fn list_users(&self) -> Result<Vec<UserInfo>, Error> {
        let mut users = Vec::new();
        for entry in self.store.users.iter() {
            users.push(UserInfo::from(&decode::<User>(&entry?.1)?));
        }
        users.sort_by_key(|u| u.created_at);
        Ok(users)
    }

    /// Disables (or re-enables) an account; disabling ends its sessions and resets.
    pub async fn set_disabled(&self, email: &str, disabled: bool, client: &str) -> Result<UserInfo, Error> {
        let email = Email::parse(email)?;
        let user = self
            .find_user(&email)?
            .ok_or_else(|| Error::Setup(format!("there is no account for {email}")))?;
        let now = self.now();
        let s = &self.store;
        let kind = if disabled {
            "account_disabled"
        } else {
            "account_enabled"
        };
        let updated = tx((&s.users, &s.resets, &s.audit).transaction(|(users, resets, audit)| {
            let mut u: User = users
                .get(user.id.as_bytes())?
                .map(|b| decode(&b))
                .transpose()
                .map_err(|e| Abort(internal("user record", e)))?
                .ok_or(Abort(Error::Internal))?;
            u.disabled = disabled;
            if disabled {
                u.stamp = random_id();
                resets.remove(u.id.as_bytes())?;
            }
            users.insert(u.id.as_bytes(), encode(&u))?;
            AuditEvent::new(now, kind, Some(&u.id), Some(client), "").append_tx(audit)?;
            Ok(u)
        }))?;
        self.store.flush().await?;
        Ok(UserInfo::from(&updated))
    }

    /// The strength verdict for a meter that updates as the user types, limited per client
    /// (`limit_strength`), with its inputs bounded: an open endpoint that hashes nothing is
    /// still a way to make the server work for every keystroke of anyone.
    pub fn rate_strength(
        &self,
        password: &str,
        email: Option<&str>,
        client: &str,
    ) -> Result<crate::password::Strength, Error> {
        if password.len() > 4 * crate::password::MAX_BYTES {
            return Err(crate::password::PolicyError::TooLong.into());
        }
        if email.is_some_and(|e| e.len() > 320) {
            return Err(crate::email::EmailError::TooLong.into());
        }
        let key = format!("strength:client:{client}");
        self.take_limits(&[(self.config.limit_strength, &key)], self.now())?;
        Ok(self.policy.strength(password, email))
    }

    /// Gives back one event to each limit (attempts that were no failure).
    fn refund_limits(&self, checks: &[(RateLimit, &str)], now: i64) {
        for (limit, key) in checks {
            if let Err(e) = limit.refund(&self.store.limits, key, now) {
                tracing::error!(error = %e, "a rate-limit count could not be given back");
            }
        }
    }

    /// Counts one event against each limit in turn, stopping at the first refusal (so a
    /// refused address still counts against the client that asked).
    pub(crate) fn take_limits(&self, checks: &[(RateLimit, &str)], now: i64) -> Result<(), Error> {
        for (limit, key) in checks {
            if let Err(retry_after) = limit.take(&self.store.limits, key, now)? {
                let _ = self.store.bump("limits.refused");
                return Err(Error::RateLimited { retry_after });
            }
        }
        Ok(())
    }
}
