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

use sled::transaction::ConflictableTransactionError::Abort;
use sled::Transactional;

use super::codes::{code_key, fresh_code};
use super::{tx, Rekey};
use crate::audit::AuditEvent;
use crate::email::Email;
use crate::error::{internal, Error};
use crate::letters::{self, LinkLetter};
use crate::outbox::{enqueue_tx, MailKind};
use crate::store::{decode, encode, Intake, IntakeKind, Pending, Retired, RetiredToken, Store, User};
use crate::token::{random_id, Purpose, TokenError};

use super::accounts::UserInfo;

/// What proves that an address is the person's: the mailed link's token, or the address and
/// the mailed code.
pub type VerifyProof = super::codes::Proof;

/// Whose account a verification link finishes, and until when, for the page that opens it.
pub type VerifyTarget = super::reset::ResetTarget;

fn pending_id_key(id: &str) -> String {
    format!("id/{id}")
}

fn pending_email_key(email: &str) -> String {
    format!("email/{email}")
}

impl Rekey {
    /// Asks for an account for `email` with `password`, on behalf of `client`. The answer is
    /// the same for every well-formed address, known or not, and the request is on disk
    /// before this returns; the mail that follows finishes the account (or, for an address
    /// that has one, says so to its owner).
    pub async fn request_account(&self, email: &str, password: &str, client: &str) -> Result<(), Error> {
        let email = Email::parse(email)?;
        self.policy.check(password, Some(email.as_str()))?;
        let client_key = format!("register:client:{client}");
        self.take_limits(&[(self.config.limit_register_client, &client_key)], self.now())?;
        // Hashed now, for every address: the new account needs it, and a known address must
        // cost the same.
        let hash = self.hasher.hash(password).await?;
        self.queue_intake(Intake {
            kind: IntakeKind::Register,
            email: email.to_string(),
            client: client.to_string(),
            at: self.now(),
            password_hash: Some(hash),
        })
        .await
    }

    /// The worker's half of [`Rekey::request_account`], for one intake record.
    pub(crate) fn handle_registration(&self, key: &[u8], request: &Intake) -> Result<(), Error> {
        let email = match Email::parse(&request.email) {
            Ok(email) => email,
            Err(_) => {
                self.store.intake.remove(key)?;
                return Ok(());
            }
        };
        let limit_key = format!("register:address:{email}");
        let within = self
            .config
            .limit_address
            .take(&self.store.limits, &limit_key, request.at)?;
        if within.is_err() {
            let _ = self.store.bump("limits.refused");
            self.store.intake.remove(key)?;
            return Ok(());
        }
        match self.find_user(&email)? {
            Some(user) => self.tell_owner(key, request, &user),
            None => self.start_pending(key, request, &email),
        }
    }

    /// Someone asked for an account with an address that has one: its owner is told.
    fn tell_owner(&self, key: &[u8], request: &Intake, user: &User) -> Result<(), Error> {
        let now = self.now();
        let notice = letters::account_exists(&self.config.mail_from, &user.email, request.at)
            .map_err(|e| internal("letter", e))?;
        let event = AuditEvent::new(
            now,
            "registration_for_existing_account",
            Some(&user.id),
            Some(&request.client),
            "the owner was told",
        );
        let s = &self.store;
        tx((&s.intake, &s.outbox, &s.audit).transaction(|(intake, outbox, audit)| {
            enqueue_tx(outbox, &self.mail_key, &notice, MailKind::AccountExists, now, None)?;
            intake.remove(key)?;
            event.append_tx(audit)?;
            Ok(())
        }))
    }

    /// A new address: a pending account (replacing any earlier one for the address, whose
    /// link then says it was replaced) and its verification mail, in one transaction.
    fn start_pending(&self, key: &[u8], request: &Intake, email: &Email) -> Result<(), Error> {
        let now = self.now();
        let ttl = self.config.reset_ttl_secs;
        let Some(password_hash) = request.password_hash.clone() else {
            self.store.intake.remove(key)?;
            return Ok(());
        };
        let pending = Pending {
            id: random_id(),
            email: email.to_string(),
            password_hash,
            stamp: random_id(),
            jti: String::new(),
            created_at: now,
            expires_at: now + ttl,
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
            &self.config.mail_from,
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
        let code = encode(&fresh_code(&pending.id, &minted));
        let code_key = code_key(Purpose::Verify, email);
        let event = AuditEvent::new(
            now,
            "registration_requested",
            Some(&pending.id),
            Some(&request.client),
            "verification mail queued",
        );
        let s = &self.store;
        tx(
            (&s.intake, &s.pending, &s.retired, &s.codes, &s.outbox, &s.audit).transaction(
                |(intake, pendings, retired, codes, outbox, audit)| {
                    let email_key = pending_email_key(email.as_str());
                    if let Some(old_id) = pendings.get(email_key.as_bytes())? {
                        let old_key = pending_id_key(&String::from_utf8_lossy(&old_id));
                        if let Some(old) = pendings.remove(old_key.as_bytes())? {
                            let old: Pending = decode(&old).map_err(|e| Abort(internal("pending", e)))?;
                            let why = RetiredToken {
                                why: Retired::Replaced,
                                expires_at: old.expires_at,
                            };
                            retired.insert(old.jti.as_bytes(), encode(&why))?;
                        }
                    }
                    pendings.insert(pending_id_key(&pending.id).as_bytes(), encode(&pending))?;
                    pendings.insert(email_key.as_bytes(), pending.id.as_bytes())?;
                    codes.insert(code_key.as_bytes(), code.as_slice())?;
                    enqueue_tx(
                        outbox,
                        &self.mail_key,
                        &letter,
                        MailKind::Verify,
                        now,
                        Some(minted.claims.exp),
                    )?;
                    intake.remove(key)?;
                    event.append_tx(audit)?;
                    Ok(())
                },
            ),
        )
    }

    /// Whose account a verification link finishes, and until when. Consumes nothing (mail
    /// scanners open links too).
    pub fn inspect_verify_link(&self, token: &str) -> Result<VerifyTarget, Error> {
        let pending = self.check_verify_token(token)?;
        Ok(VerifyTarget {
            email: pending.email,
            expires_at: pending.expires_at,
        })
    }

    fn check_verify_token(&self, token: &str) -> Result<Pending, Error> {
        if token.len() > crate::token::MAX_TOKEN_LEN + 64 {
            return Err(Error::Token(TokenError::Malformed));
        }
        let claims =
            self.keys
                .read()
                .map_err(|e| internal("keys", e))?
                .verify_for(Purpose::Verify, token.trim(), self.now())?;
        if let Some(retired) = Store::get::<RetiredToken>(&self.store.retired, claims.jti.as_bytes())? {
            return Err(match retired.why {
                Retired::Used => Error::AccountVerified,
                why => why.into(),
            });
        }
        let pending: Pending =
            Store::get(&self.store.pending, pending_id_key(&claims.sub))?.ok_or(Error::Token(TokenError::Expired))?;
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
            VerifyProof::Token(token) => self.check_verify_token(token)?,
            VerifyProof::Code { email, code } => {
                let state = self.check_code(Purpose::Verify, email, code, client)?;
                let found: Option<Pending> = Store::get(&self.store.pending, pending_id_key(&state.user_id))?;
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
        };
        let used = RetiredToken {
            why: Retired::Used,
            expires_at: pending.expires_at,
        };
        let event = AuditEvent::new(now, "account_created", Some(&user.id), Some(client), "address verified");
        let s = &self.store;
        tx((&s.users, &s.emails, &s.pending, &s.retired, &s.audit).transaction(
            |(users, emails, pendings, retired, audit)| {
                // Still this registration (not replaced, not used by a racing request)?
                let current = pendings
                    .get(pending_id_key(&pending.id).as_bytes())?
                    .map(|b| decode::<Pending>(&b))
                    .transpose()
                    .map_err(|e| Abort(internal("pending", e)))?;
                if current.is_none_or(|c| c.jti != pending.jti) {
                    // Used by a racing request, or replaced by a newer one meanwhile.
                    let why = retired
                        .get(pending.jti.as_bytes())?
                        .and_then(|r| decode::<RetiredToken>(&r).ok())
                        .map(|r| r.why);
                    return Err(Abort(match why {
                        Some(Retired::Replaced) => Error::TokenReplaced,
                        _ => Error::AccountVerified,
                    }));
                }
                // An administrator may have made the account meanwhile.
                if emails.get(user.email.as_bytes())?.is_some() {
                    return Err(Abort(Error::EmailTaken));
                }
                users.insert(user.id.as_bytes(), encode(&user))?;
                emails.insert(user.email.as_bytes(), user.id.as_bytes())?;
                pendings.remove(pending_id_key(&pending.id).as_bytes())?;
                pendings.remove(pending_email_key(&user.email).as_bytes())?;
                retired.insert(pending.jti.as_bytes(), encode(&used))?;
                event.append_tx(audit)?;
                Ok(())
            },
        ))?;
        self.population.moved(None, Some(&user.password_hash));
        self.store.flush().await?;
        tracing::info!(user = %user.id, "account created (address verified)");
        Ok(UserInfo::from(&user))
    }

    /// Drops pending accounts whose link expired. Returns how many went.
    pub(crate) fn prune_pending(&self, now: i64) -> Result<usize, Error> {
        let mut n = 0;
        for entry in self.store.pending.scan_prefix("id/") {
            let (k, v) = entry?;
            let Ok(pending) = decode::<Pending>(&v) else {
                tracing::error!("a pending account could not be read while pruning; it is kept");
                continue;
            };
            if pending.expires_at < now - crate::token::LEEWAY {
                let s = &self.store;
                tx(s.pending.transaction(|t| {
                    if t.get(&k)?.as_deref() == Some(v.as_ref()) {
                        t.remove(&k)?;
                        let email_key = pending_email_key(&pending.email);
                        if t.get(email_key.as_bytes())?.as_deref() == Some(pending.id.as_bytes()) {
                            t.remove(email_key.as_bytes())?;
                        }
                    }
                    Ok(())
                }))?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Drops a pending registration for `email` (an administrator made the account).
    pub(crate) fn drop_pending(&self, email: &Email) -> Result<(), Error> {
        let s = &self.store;
        tx(s.pending.transaction(|t| {
            if let Some(id) = t.remove(pending_email_key(email.as_str()).as_bytes())? {
                t.remove(pending_id_key(&String::from_utf8_lossy(&id)).as_bytes())?;
            }
            Ok(())
        }))
    }
}
