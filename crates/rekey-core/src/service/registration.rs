//! New accounts, asked for by anyone: one answer for every well-formed address, and a mail
//! that finishes the job. Like "forgot password", the answer's path does the same work
//! whatever the address (check the password, count the client, hash, write an intake record,
//! flush) and never looks the address up; the worker does that afterwards:
//!
//! * a new address gets a verification mail (deep link `rekey://verify?token=…`, the landing
//!   link when `public_url` is set, a typed code); the account exists only as a pending one,
//!   which signs nothing in, until the link or the code is used, and goes when it expires;
//! * an address that has an account gets a notice ("someone tried to create an account with
//!   this address") instead, and nothing changes.
//!
//! So the answer tells a stranger nothing, and nobody can hold an address they cannot read
//! mail for: a later registration of the same address replaces the pending one.

use super::codes::{code_key, fresh_code};
use super::Rekey;
use crate::audit::AuditEvent;
use crate::email::Email;
use crate::error::{internal, Error};
use crate::letters::{self, LinkLetter};
use crate::store::steps::NewPending;
use crate::store::{Intake, IntakeKind, Pending, Retired, User};
use crate::token::{random_id, Purpose, TokenError};

use super::accounts::UserInfo;

/// What proves that an address is the person's: the mailed link's token, or the address and
/// the mailed code.
pub type VerifyProof = super::codes::Proof;

/// Whose account a verification link finishes, and until when, for the page that opens it.
pub type VerifyTarget = super::reset::ResetTarget;

impl Rekey {
    /// Asks for an account for `email` with `password`, on behalf of `client`. The answer is
    /// the same for every well-formed address, known or not, and the request is on disk
    /// before this returns; the mail that follows finishes the account (or, for an address
    /// that has one, says so to its owner).
    /// `locale`: the language the account's mail is to be in (`None`: the install's).
    pub async fn request_account(
        &self,
        email: &str,
        password: &str,
        locale: Option<&str>,
        client: &str,
    ) -> Result<(), Error> {
        let email = Email::parse(email)?;
        let locale = locale.map(crate::words::locale).transpose()?;
        self.policy.check(password, Some(email.as_str()))?;
        let client_key = format!("register:client:{client}");
        self.take_limits(&[(self.config.limit_register_client, &client_key)], self.now())
            .await?;
        // Hashed now, for every address: the new account needs it, and a known address must
        // cost the same.
        let hash = self.hasher.hash(password).await?;
        self.queue_intake(Intake {
            kind: IntakeKind::Register,
            email: email.to_string(),
            client: client.to_string(),
            at: self.now(),
            password_hash: Some(hash),
            locale,
        })
        .await
    }

    /// The worker's half of [`Rekey::request_account`], for one intake record.
    pub(crate) async fn handle_registration(&self, id: u64, request: &Intake) -> Result<(), Error> {
        let email = match Email::parse(&request.email) {
            Ok(email) => email,
            Err(_) => {
                return self.intake().drop_requests(&[id], None).await;
            }
        };
        let limit_key = format!("register:address:{email}");
        let within = self
            .limits()
            .take(self.config.limit_address, &limit_key, request.at)
            .await?;
        if within.is_err() {
            let refused = Some(super::reset::LIMIT_REFUSED_COUNTER);
            return self.intake().drop_requests(&[id], refused).await;
        }
        match self.find_user(&email).await? {
            Some(user) => self.tell_owner(id, request, &user).await,
            None => self.start_pending(id, request, &email).await,
        }
    }

    /// Someone asked for an account with an address that has one: its owner is told.
    async fn tell_owner(&self, id: u64, request: &Intake, user: &User) -> Result<(), Error> {
        let now = self.now();
        let notice = letters::account_exists(&self.sender_for(user), &user.email, request.at)
            .map_err(|e| internal("letter", e))?;
        let event = AuditEvent::new(
            now,
            "registration_for_existing_account",
            Some(&user.id),
            Some(&request.client),
            "the owner was told",
        );
        self.registrations().tell_owner(id, &notice, &event, now).await
    }

    /// A new address: a pending account (replacing any earlier one for the address, whose
    /// link then says it was replaced) and its verification mail, in one transaction.
    async fn start_pending(&self, id: u64, request: &Intake, email: &Email) -> Result<(), Error> {
        let now = self.now();
        let ttl = self.config.reset_ttl_secs;
        let Some(password_hash) = request.password_hash.clone() else {
            return self.intake().drop_requests(&[id], None).await;
        };
        let pending = Pending {
            id: random_id(),
            email: email.to_string(),
            password_hash,
            stamp: random_id(),
            jti: String::new(),
            created_at: now,
            expires_at: now + ttl,
            locale: request.locale.clone(),
        };
        let minted = self.keys.read().map_err(|e| internal("keys", e))?.mint_for(
            Purpose::Verify,
            &pending.id,
            &pending.stamp,
            now,
            ttl,
        );
        let pending = Pending {
            jti: minted.claims.jti.clone(),
            expires_at: minted.claims.exp,
            ..pending
        };
        let letter = letters::verify(
            &self.sender_in(pending.locale.as_deref()),
            &LinkLetter {
                to: email.as_str(),
                token: &minted.token,
                code: &minted.code,
                expires_at: minted.claims.exp,
                ttl,
                public_url: self.config.public_url.as_ref(),
            },
        )
        .map_err(|e| internal("letter", e))?;
        let code = fresh_code(&pending.id, &minted);
        let code_key = code_key(Purpose::Verify, email);
        let event = AuditEvent::new(
            now,
            "registration_requested",
            Some(&pending.id),
            Some(&request.client),
            "verification mail queued",
        );
        self.registrations()
            .start_pending(NewPending {
                request: id,
                pending: &pending,
                code_key: &code_key,
                code: &code,
                letter: &letter,
                event: &event,
                now,
            })
            .await
    }

    /// Whose account a verification link finishes, and until when. Consumes nothing (mail
    /// scanners open links too).
    pub async fn inspect_verify_link(&self, token: &str) -> Result<VerifyTarget, Error> {
        let pending = self.check_verify_token(token).await?;
        Ok(VerifyTarget {
            email: pending.email,
            expires_at: pending.expires_at,
        })
    }

    async fn check_verify_token(&self, token: &str) -> Result<Pending, Error> {
        if token.len() > crate::token::MAX_TOKEN_LEN + 64 {
            return Err(Error::Token(TokenError::Malformed));
        }
        let claims = self.verify_token(Purpose::Verify, token.trim()).await?;
        if let Some(retired) = self.resets().retired(&claims.jti).await? {
            return Err(match retired.why {
                Retired::Used => Error::AccountVerified,
                why => why.into(),
            });
        }
        let pending = self
            .registrations()
            .pending(&claims.sub)
            .await?
            .ok_or(Error::Token(TokenError::Expired))?;
        if pending.jti != claims.jti || pending.stamp != claims.stamp {
            return Err(Error::TokenReplaced);
        }
        Ok(pending)
    }

    /// Finishes an account with the mailed link or code **and the password chosen when it
    /// was asked for**: the pending account becomes a real one, which can sign in. The link
    /// and code then stop working. Nobody is signed in.
    ///
    /// Why the password: anyone may ask for an account for any address, with a password of
    /// their choosing, and a later request replaces the earlier one. Were the mailed link
    /// enough, a stranger could ask for the victim's address with his own password and wait
    /// for the victim to click "finish": the victim's account, the stranger's password. With
    /// the password asked again, finishing takes the mailbox *and* the password.
    pub async fn verify_account(&self, proof: VerifyProof, password: &str, client: &str) -> Result<UserInfo, Error> {
        let pending = match &proof {
            VerifyProof::Token(token) => self.check_verify_token(token).await?,
            VerifyProof::Code { email, code } => {
                let state = self.check_code(Purpose::Verify, email, code, client).await?;
                let found = self.registrations().pending(&state.user_id).await?;
                match found.filter(|p| p.jti == state.jti) {
                    Some(pending) => pending,
                    None => return Err(self.code_failed(&state, client)),
                }
            }
        };
        if !self
            .hasher
            .verify(password, Some(&pending.password_hash), self.hasher.params())
            .await?
        {
            return Err(Error::PasswordMismatch);
        }
        let now = self.now();
        let user = User {
            id: pending.id.clone(),
            email: pending.email.clone(),
            password_hash: pending.password_hash.clone(),
            stamp: random_id(),
            disabled: false,
            created_at: now,
            locale: pending.locale.clone(),
            time_zone: None,
        };
        let event = AuditEvent::new(now, "account_created", Some(&user.id), Some(client), "address verified");
        self.registrations().finish_pending(&pending, &user, &event).await?;
        self.population.moved(None, Some(&user.password_hash));
        self.steps().flush().await?;
        tracing::info!(user = %user.id, "account created (address verified)");
        Ok(UserInfo::from(&user))
    }

    /// Drops a pending registration for `email` (an administrator made the account).
    pub(crate) async fn drop_pending(&self, email: &Email) -> Result<(), Error> {
        self.registrations().drop_pending(email.as_str()).await
    }
}
