//! Pending accounts in sled: `id/<id>` → the pending account and `email/<address>` → its
//! id, in the `pending` tree; a registration's steps also touch `retired`, `codes`, the
//! outbox, the intake and the audit trail, in one transaction.

use async_trait::async_trait;
use sled::transaction::ConflictableTransactionError::Abort;
use sled::Transactional;

use super::intake::mark_handled;
use super::Store;
use crate::audit::AuditEvent;
use crate::error::{internal, Error};
use crate::letters::Letter;
use crate::outbox::{enqueue_tx, MailKind};
use crate::service::tx;
use crate::store::steps::NewPending;
use crate::store::{decode, encode, Pending, RegistrationSteps, Retired, RetiredToken, User};

pub(crate) fn pending_id_key(id: &str) -> String {
    format!("id/{id}")
}

pub(crate) fn pending_email_key(email: &str) -> String {
    format!("email/{email}")
}

#[async_trait]
impl RegistrationSteps for Store {
    async fn tell_owner(&self, request: u64, notice: &Letter, event: &AuditEvent, now: i64) -> Result<(), Error> {
        tx(
            (&self.handled, &self.outbox, &self.audit).transaction(|(handled, outbox, audit)| {
                if !mark_handled(handled, request, now)? {
                    return Ok(());
                }
                enqueue_tx(outbox, &self.mail_key, notice, MailKind::AccountExists, now, None)?;
                event.append_tx(audit)?;
                Ok(())
            }),
        )?;
        self.forget_after_flush(request);
        Ok(())
    }

    async fn start_pending(&self, new: NewPending<'_>) -> Result<(), Error> {
        let pending = new.pending;
        let code = encode(new.code);
        tx((
            &self.handled,
            &self.pending,
            &self.retired,
            &self.codes,
            &self.outbox,
            &self.audit,
        )
            .transaction(|(handled, pendings, retired, codes, outbox, audit)| {
                if !mark_handled(handled, new.request, new.now)? {
                    return Ok(());
                }
                let email_key = pending_email_key(&pending.email);
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
                pendings.insert(pending_id_key(&pending.id).as_bytes(), encode(pending))?;
                pendings.insert(email_key.as_bytes(), pending.id.as_bytes())?;
                codes.insert(new.code_key.as_bytes(), code.as_slice())?;
                enqueue_tx(
                    outbox,
                    &self.mail_key,
                    new.letter,
                    MailKind::Verify,
                    new.now,
                    Some(pending.expires_at),
                )?;
                new.event.append_tx(audit)?;
                Ok(())
            }))?;
        self.forget_after_flush(new.request);
        Ok(())
    }

    async fn pending(&self, id: &str) -> Result<Option<Pending>, Error> {
        Ok(Store::get(&self.pending, pending_id_key(id))?)
    }

    async fn finish_pending(&self, pending: &Pending, user: &User, event: &AuditEvent) -> Result<(), Error> {
        let used = RetiredToken {
            why: Retired::Used,
            expires_at: pending.expires_at,
        };
        tx(
            (&self.users, &self.emails, &self.pending, &self.retired, &self.audit).transaction(
                |(users, emails, pendings, retired, audit)| {
                    // Still this registration (not replaced, not used by a racing request)?
                    let current = pendings
                        .get(pending_id_key(&pending.id).as_bytes())?
                        .map(|b| decode::<Pending>(&b))
                        .transpose()
                        .map_err(|e| Abort(internal("pending", e)))?;
                    if current.is_none_or(|c| c.jti != pending.jti) {
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
                    users.insert(user.id.as_bytes(), encode(user))?;
                    emails.insert(user.email.as_bytes(), user.id.as_bytes())?;
                    pendings.remove(pending_id_key(&pending.id).as_bytes())?;
                    pendings.remove(pending_email_key(&user.email).as_bytes())?;
                    retired.insert(pending.jti.as_bytes(), encode(&used))?;
                    event.append_tx(audit)?;
                    Ok(())
                },
            ),
        )
    }

    async fn drop_pending(&self, email: &str) -> Result<(), Error> {
        tx(self.pending.transaction(|t| {
            if let Some(id) = t.remove(pending_email_key(email).as_bytes())? {
                t.remove(pending_id_key(&String::from_utf8_lossy(&id)).as_bytes())?;
            }
            Ok(())
        }))
    }
}

impl Store {
    /// Drops pending accounts whose link expired. Returns how many went.
    pub(crate) fn prune_pending(&self, now: i64) -> Result<usize, Error> {
        let mut n = 0;
        for entry in self.pending.scan_prefix("id/") {
            let (k, v) = entry?;
            let Ok(pending) = decode::<Pending>(&v) else {
                tracing::error!("a pending account could not be read while pruning; it is kept");
                continue;
            };
            if pending.expires_at < now - crate::token::LEEWAY {
                tx(self.pending.transaction(|t| {
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
}
