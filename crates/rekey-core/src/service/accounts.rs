//! Accounts: register, sign in, sign out, change password, disable. Sessions are opaque
//! random tokens stored by hash, and die when the account's security stamp rotates.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::Rekey;
use crate::audit::AuditEvent;
use crate::email::Email;
use crate::error::{internal, Error};
use crate::letters;
use crate::limits::RateLimit;
use crate::store::steps::NewPassword;
use crate::store::{decode, LiveReset, MailSetting, Session, User};
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
    /// The language of the account's mail; `None`: the install's.
    pub locale: Option<String>,
    /// The time zone of the account's mail (IANA name); `None`: UTC.
    pub time_zone: Option<String>,
}

impl From<&User> for UserInfo {
    fn from(u: &User) -> Self {
        UserInfo {
            id: u.id.clone(),
            email: u.email.clone(),
            disabled: u.disabled,
            created_at: u.created_at,
            locale: u.locale.clone(),
            time_zone: u.time_zone.clone(),
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
    pub async fn find_user(&self, email: &Email) -> Result<Option<User>, Error> {
        self.accounts().user_by_email(email.as_str()).await
    }

    /// Creates an account at once, its address taken as verified: for an administrator
    /// (`rekeyd users add`) and for the desktop app's own store, where the person at the
    /// keyboard owns the store and its mailbox. Says [`Error::EmailTaken`] for an address that
    /// has an account; open services use [`Rekey::request_account`] instead, which says
    /// nothing. `client` is who asked, for the audit trail.
    pub async fn create_account(
        &self,
        email: &str,
        password: &str,
        locale: Option<&str>,
        client: &str,
    ) -> Result<UserInfo, Error> {
        let email = Email::parse(email)?;
        let locale = locale.map(crate::words::locale).transpose()?;
        self.policy.check(password, Some(email.as_str()))?;
        if self.find_user(&email).await?.is_some() {
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
            locale,
            time_zone: None,
        };
        let event = AuditEvent::new(now, "account_created", Some(&user.id), Some(client), email.masked());
        self.accounts().create_user(&user, &event).await?;
        self.population.moved(None, Some(&user.password_hash));
        // A registration waiting for its mail is moot now.
        self.drop_pending(&email).await?;
        self.steps().flush().await?;
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
        if !self.limits().remembered(&keys.known, now).await? {
            checks.push((c.limit_signin_account, &keys.account));
        }
        self.take_limits(&checks, now).await?;
        let user = self.find_user(&email).await?;
        if user.is_none() {
            // What a known address costs here: a record decoded (the lookup costs the same
            // either way, see `AccountSteps::user_by_email`).
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
                self.refund_limits(&checks, now).await;
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
        self.refund_limits(&checks[1..], now).await;
        self.limits().clear(&keys.pair).await?;
        self.limits().remember(&keys.known, now + KNOWN_CLIENT_SECS).await?;
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
        self.accounts().put_session(&session_key(&token), &session).await?;
        let event = AuditEvent::new(now, "signed_in", Some(&user.id), Some(client), "");
        self.accounts().append_event(&event).await?;
        Ok(SessionToken(token))
    }

    /// Redoes a hash made with older parameters, unless the password changed meanwhile.
    async fn rehash(&self, user: &User, password: &str) -> Result<(), Error> {
        let hash = self.hasher.hash(password).await?;
        if self
            .accounts()
            .replace_hash(&user.id, &user.password_hash, &hash)
            .await?
        {
            self.population.moved(Some(&user.password_hash), Some(&hash));
            tracing::info!(user = %user.id, "password rehashed with current parameters");
        }
        Ok(())
    }

    /// The account behind a session, if the session is still good.
    pub async fn session_user(&self, token: &str) -> Result<UserInfo, Error> {
        let key = session_key(token);
        let session = self.accounts().session(&key).await?.ok_or(Error::SessionInvalid)?;
        let user = self
            .accounts()
            .user(&session.user_id)
            .await?
            .ok_or(Error::SessionInvalid)?;
        if session.stamp != user.stamp || session.expires_at <= self.now() || user.disabled {
            self.accounts().end_session(&key).await?;
            return Err(Error::SessionInvalid);
        }
        Ok(UserInfo::from(&user))
    }

    /// Ends a session. Ending an unknown session is not an error.
    pub async fn sign_out(&self, token: &str) -> Result<(), Error> {
        self.accounts().end_session(&session_key(token)).await
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
        let info = self.session_user(session).await?;
        let user = self.accounts().user(&info.id).await?.ok_or(Error::SessionInvalid)?;
        // Wrong current passwords count as failed sign-ins of this account from this client:
        // a session is no licence to guess the password.
        let pair = SignInKeys::new(&Email::parse(&user.email)?, client).pair;
        let checks = [(self.config.limit_signin_client, pair.as_str())];
        let now = self.now();
        self.take_limits(&checks, now).await?;
        let ok = self
            .hasher
            .verify(current, Some(&user.password_hash), self.hasher.params())
            .await;
        match ok {
            Ok(true) => self.refund_limits(&checks, now).await,
            Ok(false) => return Err(Error::BadCredentials),
            Err(e) => {
                self.refund_limits(&checks, now).await;
                return Err(e.into());
            }
        }
        self.policy.check(new_password, Some(&user.email))?;
        let hash = self.hasher.hash(new_password).await?;
        let now = self.now();
        let updated = self
            .set_password(&user, hash, None, client, "password_changed", letters::ChangedBy::Owner)
            .await;
        // Another change of the password won the race: this session ended with it (the stamp
        // moved), which is what the caller is told, not a word about links.
        let updated = updated.map_err(|e| {
            if e == Error::TokenStale {
                Error::SessionInvalid
            } else {
                e
            }
        })?;
        self.steps().flush().await?;
        self.outbox.wake.notify_one();
        let token = new_session_token();
        let session = Session {
            user_id: user.id.clone(),
            stamp: updated.stamp,
            expires_at: now + self.config.session_ttl_secs,
        };
        self.accounts().put_session(&session_key(&token), &session).await?;
        Ok(SessionToken(token))
    }

    /// The one place a password is set, in one step of the store: the new hash, a rotated
    /// stamp (ending sessions and outstanding links), any live reset dropped, the notice
    /// queued, the audit event written. With `consume`, that reset must still be the
    /// account's live one and is retired as used, so of two confirms racing exactly one
    /// wins. Fails with [`Error::TokenStale`] if the stamp moved since `user` was read.
    pub(crate) async fn set_password(
        &self,
        user: &User,
        hash: String,
        consume: Option<&LiveReset>,
        client: &str,
        event: &str,
        how: letters::ChangedBy,
    ) -> Result<User, Error> {
        let now = self.now();
        let notice = letters::password_changed(&self.sender_for(user), &user.email, now, how)
            .map_err(|e| internal("letter", e))?;
        let event = AuditEvent::new(now, event, Some(&user.id), Some(client), how.audit_words());
        let set = self
            .accounts()
            .set_password(NewPassword {
                user_id: &user.id,
                expected_stamp: &user.stamp,
                hash,
                stamp: random_id(),
                consume,
                notice: &notice,
                event: &event,
                now,
            })
            .await?;
        self.population
            .moved(Some(&set.old_hash), Some(&set.user.password_hash));
        Ok(set.user)
    }

    /// Every account, oldest first.
    pub async fn list_users(&self) -> Result<Vec<UserInfo>, Error> {
        let mut users: Vec<UserInfo> = self.accounts().users().await?.iter().map(UserInfo::from).collect();
        users.sort_by_key(|u| u.created_at);
        Ok(users)
    }

    /// Sets the language of the signed-in account's mail (`None`: the install's).
    pub async fn set_own_locale(&self, session: &str, locale: Option<&str>, client: &str) -> Result<UserInfo, Error> {
        let locale = locale.map(crate::words::locale).transpose()?;
        let info = self.session_user(session).await?;
        self.change_mail_setting(&info.id, MailSetting::Locale(locale.as_deref()), client)
            .await
    }

    /// Sets the language of an account's mail, for an administrator (`rekeyd users locale`).
    pub async fn set_locale(&self, email: &str, locale: Option<&str>, client: &str) -> Result<UserInfo, Error> {
        let locale = locale.map(crate::words::locale).transpose()?;
        let user = self.existing_account(email).await?;
        self.change_mail_setting(&user.id, MailSetting::Locale(locale.as_deref()), client)
            .await
    }

    /// Sets the time zone of the signed-in account's mail (`None`: UTC); the app sets its
    /// computer's.
    pub async fn set_own_time_zone(&self, session: &str, zone: Option<&str>, client: &str) -> Result<UserInfo, Error> {
        let zone = zone.map(crate::words::time_zone).transpose()?;
        let info = self.session_user(session).await?;
        self.change_mail_setting(&info.id, MailSetting::TimeZone(zone.as_deref()), client)
            .await
    }

    /// Sets the time zone of an account's mail, for an administrator (`rekeyd users time-zone`).
    pub async fn set_time_zone(&self, email: &str, zone: Option<&str>, client: &str) -> Result<UserInfo, Error> {
        let zone = zone.map(crate::words::time_zone).transpose()?;
        let user = self.existing_account(email).await?;
        self.change_mail_setting(&user.id, MailSetting::TimeZone(zone.as_deref()), client)
            .await
    }

    /// The account of `email`, for an administrator's command (which may name its address).
    async fn existing_account(&self, email: &str) -> Result<User, Error> {
        let email = Email::parse(email)?;
        self.find_user(&email)
            .await?
            .ok_or_else(|| Error::Setup(format!("there is no account for {email}")))
    }

    /// Changes one setting of how the account's mail is written (already checked), with its
    /// audit event.
    async fn change_mail_setting(
        &self,
        user_id: &str,
        setting: MailSetting<'_>,
        client: &str,
    ) -> Result<UserInfo, Error> {
        let (kind, detail) = match setting {
            MailSetting::Locale(locale) => ("locale_changed", locale.unwrap_or("the install's")),
            MailSetting::TimeZone(zone) => ("time_zone_changed", zone.unwrap_or("UTC")),
        };
        let event = AuditEvent::new(self.now(), kind, Some(user_id), Some(client), detail);
        if !self.accounts().set_mail_setting(user_id, setting, &event).await? {
            return Err(Error::SessionInvalid);
        }
        self.steps().flush().await?;
        let user = self.accounts().user(user_id).await?.ok_or(Error::SessionInvalid)?;
        Ok(UserInfo::from(&user))
    }

    /// Disables (or re-enables) an account; disabling ends its sessions and resets.
    pub async fn set_disabled(&self, email: &str, disabled: bool, client: &str) -> Result<UserInfo, Error> {
        let user = self.existing_account(email).await?;
        let kind = if disabled {
            "account_disabled"
        } else {
            "account_enabled"
        };
        let event = AuditEvent::new(self.now(), kind, Some(&user.id), Some(client), "");
        // Disabling ends the sessions and links the account has (a new stamp).
        let stamp = disabled.then(random_id);
        let updated = self
            .accounts()
            .set_disabled(&user.id, disabled, stamp, &event)
            .await?
            .ok_or_else(|| Error::Setup(format!("there is no account for {email}")))?;
        self.steps().flush().await?;
        Ok(UserInfo::from(&updated))
    }

    /// The strength verdict for a meter that updates as the user types, limited per client
    /// (`limit_strength`), with its inputs bounded: an open endpoint that hashes nothing is
    /// still a way to make the server work for every keystroke of anyone.
    pub async fn rate_strength(
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
        self.take_limits(&[(self.config.limit_strength, &key)], self.now())
            .await?;
        Ok(self.policy.strength(password, email))
    }

    /// Gives back one event to each limit (attempts that were no failure).
    async fn refund_limits(&self, checks: &[(RateLimit, &str)], now: i64) {
        for (limit, key) in checks {
            if let Err(e) = self.limits().refund(*limit, key, now).await {
                tracing::error!(error = %e, "a rate-limit count could not be given back");
            }
        }
    }

    /// Counts one event against each limit in turn, stopping at the first refusal (so a
    /// refused address still counts against the client that asked).
    pub(crate) async fn take_limits(&self, checks: &[(RateLimit, &str)], now: i64) -> Result<(), Error> {
        for (limit, key) in checks {
            if let Err(retry_after) = self.limits().take(*limit, key, now).await? {
                let _ = self.steps().bump(super::reset::LIMIT_REFUSED_COUNTER).await;
                return Err(Error::RateLimited { retry_after });
            }
        }
        Ok(())
    }
}
