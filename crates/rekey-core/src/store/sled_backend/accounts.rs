//! Accounts in sled: `users` (id → account), `emails` (address → id), `sessions`, and the
//! `audit` trail; a password change also touches `resets`, `retired` and the outbox, in one
//! transaction over all of them.

use async_trait::async_trait;
use sled::transaction::ConflictableTransactionError::Abort;
use sled::Transactional;

use super::Store;
use crate::audit::AuditEvent;
use crate::error::{internal, Error};
use crate::outbox::{enqueue_tx, MailKind};
use crate::service::tx;
use crate::store::steps::{NewPassword, PasswordSet};
use crate::store::{
    decode, encode, AccountSteps, LiveReset, MailSetting, Retired, RetiredToken, Session, StoreError, User,
};

fn corrupt(what: &str, e: StoreError) -> sled::transaction::ConflictableTransactionError<Error> {
    Abort(internal(what, e))
}

#[async_trait]
impl AccountSteps for Store {
    async fn user_by_email(&self, email: &str) -> Result<Option<User>, Error> {
        // Two reads either way: an address with no account reads a key no account has.
        let id = self.emails.get(email)?;
        let user = self.users.get(id.as_deref().unwrap_or(b"stand-in"))?;
        match (id, user) {
            (Some(_), Some(bytes)) => Ok(Some(decode(&bytes)?)),
            _ => Ok(None),
        }
    }

    async fn user(&self, id: &str) -> Result<Option<User>, Error> {
        Ok(Store::get(&self.users, id.as_bytes())?)
    }

    async fn users(&self) -> Result<Vec<User>, Error> {
        let mut users = Vec::new();
        for entry in self.users.iter() {
            users.push(decode::<User>(&entry?.1)?);
        }
        Ok(users)
    }

    async fn create_user(&self, user: &User, event: &AuditEvent) -> Result<(), Error> {
        tx(
            (&self.users, &self.emails, &self.audit).transaction(|(users, emails, audit)| {
                if emails.get(user.email.as_bytes())?.is_some() {
                    return Err(Abort(Error::EmailTaken));
                }
                users.insert(user.id.as_bytes(), encode(user))?;
                emails.insert(user.email.as_bytes(), user.id.as_bytes())?;
                event.append_tx(audit)?;
                Ok(())
            }),
        )
    }

    async fn replace_hash(&self, user_id: &str, old: &str, new: &str) -> Result<bool, Error> {
        let Some(before) = self.users.get(user_id.as_bytes())? else {
            return Ok(false);
        };
        let mut current: User = decode(&before)?;
        if current.password_hash != old {
            return Ok(false);
        }
        current.password_hash = new.to_string();
        let swapped = self
            .users
            .compare_and_swap(user_id.as_bytes(), Some(before), Some(encode(&current)))?;
        Ok(swapped.is_ok())
    }

    async fn set_password(&self, change: NewPassword<'_>) -> Result<PasswordSet, Error> {
        let id = change.user_id.as_bytes();
        tx(
            (&self.users, &self.resets, &self.retired, &self.outbox, &self.audit).transaction(
                |(users, resets, retired, outbox, audit)| {
                    if let Some(live) = change.consume {
                        if let Some(r) = retired.get(live.jti.as_bytes())? {
                            let r: RetiredToken = decode(&r).map_err(|e| corrupt("retired record", e))?;
                            return Err(Abort(r.why.into()));
                        }
                        let current: Option<LiveReset> = resets
                            .get(id)?
                            .map(|b| decode(&b))
                            .transpose()
                            .map_err(|e| corrupt("reset record", e))?;
                        if current.as_ref().is_none_or(|c| c.jti != live.jti) {
                            // Gone with a password change or a disable (the stamp moved),
                            // or replaced by a newer link.
                            let stamp = users
                                .get(id)?
                                .map(|b| decode::<User>(&b))
                                .transpose()
                                .map_err(|e| corrupt("user record", e))?
                                .map(|u| u.stamp);
                            let moved = current.is_none() && stamp.as_deref() != Some(change.expected_stamp);
                            return Err(Abort(if moved { Error::TokenStale } else { Error::TokenReplaced }));
                        }
                        let used = RetiredToken {
                            why: Retired::Used,
                            expires_at: live.expires_at,
                        };
                        retired.insert(live.jti.as_bytes(), encode(&used))?;
                    }
                    let Some(bytes) = users.get(id)? else {
                        return Err(Abort(Error::TokenStale));
                    };
                    let mut user: User = decode(&bytes).map_err(|e| corrupt("user record", e))?;
                    if user.stamp != change.expected_stamp {
                        return Err(Abort(Error::TokenStale));
                    }
                    let old_hash = std::mem::replace(&mut user.password_hash, change.hash.clone());
                    user.stamp = change.stamp.clone();
                    users.insert(id, encode(&user))?;
                    resets.remove(id)?;
                    enqueue_tx(
                        outbox,
                        &self.mail_key,
                        change.notice,
                        MailKind::PasswordChanged,
                        change.now,
                        None,
                    )?;
                    change.event.append_tx(audit)?;
                    Ok(PasswordSet { user, old_hash })
                },
            ),
        )
    }

    async fn set_mail_setting(
        &self,
        user_id: &str,
        setting: MailSetting<'_>,
        event: &AuditEvent,
    ) -> Result<bool, Error> {
        tx((&self.users, &self.audit).transaction(|(users, audit)| {
            let Some(bytes) = users.get(user_id.as_bytes())? else {
                return Ok(false);
            };
            let mut user: User = decode(&bytes).map_err(|e| corrupt("user record", e))?;
            match setting {
                MailSetting::Locale(locale) => user.locale = locale.map(str::to_string),
                MailSetting::TimeZone(zone) => user.time_zone = zone.map(str::to_string),
            }
            users.insert(user_id.as_bytes(), encode(&user))?;
            event.append_tx(audit)?;
            Ok(true)
        }))
    }

    async fn set_disabled(
        &self,
        user_id: &str,
        disabled: bool,
        new_stamp: Option<String>,
        event: &AuditEvent,
    ) -> Result<Option<User>, Error> {
        tx(
            (&self.users, &self.resets, &self.audit).transaction(|(users, resets, audit)| {
                let Some(bytes) = users.get(user_id.as_bytes())? else {
                    return Ok(None);
                };
                let mut user: User = decode(&bytes).map_err(|e| corrupt("user record", e))?;
                user.disabled = disabled;
                if let Some(stamp) = &new_stamp {
                    user.stamp = stamp.clone();
                    resets.remove(user_id.as_bytes())?;
                }
                users.insert(user_id.as_bytes(), encode(&user))?;
                event.append_tx(audit)?;
                Ok(Some(user))
            }),
        )
    }

    async fn put_session(&self, key: &[u8], session: &Session) -> Result<(), Error> {
        self.sessions.insert(key, encode(session))?;
        Ok(())
    }

    async fn session(&self, key: &[u8]) -> Result<Option<Session>, Error> {
        Ok(Store::get(&self.sessions, key)?)
    }

    async fn end_session(&self, key: &[u8]) -> Result<(), Error> {
        self.sessions.remove(key)?;
        Ok(())
    }

    async fn append_event(&self, event: &AuditEvent) -> Result<(), Error> {
        Ok(event.append(self)?)
    }

    async fn recent_events(&self, n: usize) -> Result<Vec<AuditEvent>, Error> {
        Ok(crate::audit::tail(self, n)?)
    }
}
