//! The outbox in sled: the mail in the `outbox` tree and the stand-ins' mail in the
//! `stand_ins` tree, each in the layout of [`super::queue`]; dead letters in `dead` under the
//! mail's key; the hold after trouble with the server, the last error and the counters in
//! `meta`.
//!
//! One process holds a sled store, so claims live in its memory: they keep two tasks of the
//! process off the same mail, and a process that dies takes its claims with it, which is what
//! a lease running out means.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sled::transaction::ConflictableTransactionError;
use sled::Transactional;

use super::queue::{
    enqueue_tx, in_queue, index_if_needed, indexed, parse_due_key, put_tx, read_depth, take_tx, DEPTH, DUE_END,
    DUE_PREFIX, ITEMS_END,
};
use super::Store;
use crate::audit::AuditEvent;
use crate::error::Error;
use crate::letters::Letter;
use crate::outbox::{backoff, DeadItem, MailKind, OutboxItem};
use crate::service::tx;
use crate::store::{decode, encode, seq_key, OutboxSteps, QueueFigures, StoreError};

/// The hold after trouble with the server (meta key [`SERVER_HOLD`]).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct ServerHold {
    /// Server-level failures in a row; a delivery starts the count again.
    failures: u32,
    /// Nothing is tried before this (Unix seconds).
    until: i64,
}

const SERVER_HOLD: &str = "outbox.server_hold";
const LAST_ERROR: &str = "outbox.last_error";

/// The mails claimed by this process's workers, each with the end of its lease.
#[derive(Default)]
pub(super) struct Claims {
    mail: Mutex<HashMap<u64, i64>>,
    stand_ins: Mutex<HashMap<u64, i64>>,
}

/// Claims up to `n` mails of a queue tree (due by `due_by`, if given), skipping those whose
/// lease has not ended.
fn claim(
    tree: &sled::Tree,
    claims: &Mutex<HashMap<u64, i64>>,
    n: usize,
    now: i64,
    due_by: Option<i64>,
    lease_until: i64,
) -> Result<Vec<OutboxItem>, StoreError> {
    let mut claims = claims.lock().unwrap_or_else(|e| e.into_inner());
    claims.retain(|_, until| *until > now);
    let mut claimed = Vec::new();
    for key in tree.range(DUE_PREFIX..DUE_END).keys() {
        if claimed.len() == n {
            break;
        }
        let (at, id) = parse_due_key(&key?)?;
        if due_by.is_some_and(|due_by| at > due_by) {
            break;
        }
        if claims.contains_key(&id) {
            continue;
        }
        if let Some(item) = indexed(tree, at, id)? {
            claims.insert(id, lease_until);
            claimed.push(item);
        }
    }
    Ok(claimed)
}

fn release(claims: &Mutex<HashMap<u64, i64>>, ids: &[u64]) {
    let mut claims = claims.lock().unwrap_or_else(|e| e.into_inner());
    for id in ids {
        claims.remove(id);
    }
}

impl Store {
    fn set_last_error(&self, why: &str) -> Result<(), StoreError> {
        self.meta.insert(LAST_ERROR, why.as_bytes())?;
        Ok(())
    }
}

#[async_trait]
impl OutboxSteps for Store {
    async fn queue_mail(
        &self,
        letter: &Letter,
        kind: MailKind,
        now: i64,
        expires_at: Option<i64>,
    ) -> Result<(), Error> {
        tx(self
            .outbox
            .transaction(|t| enqueue_tx(t, &self.mail_key, letter, kind, now, expires_at)))
    }

    async fn claim_mail(&self, n: usize, now: i64, lease_until: i64) -> Result<Vec<OutboxItem>, Error> {
        // Cheap once built; a store whose index could not be built at open tries again.
        index_if_needed(&self.outbox)?;
        Ok(claim(&self.outbox, &self.claims.mail, n, now, Some(now), lease_until)?)
    }

    async fn next_mail_due(&self, now: i64) -> Result<Option<i64>, Error> {
        let claims = self.claims.mail.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for key in self.outbox.range(DUE_PREFIX..DUE_END).keys() {
            let (at, id) = parse_due_key(&key?)?;
            if claims.get(&id).is_none_or(|until| *until <= now) {
                return Ok(Some(at));
            }
        }
        Ok(None)
    }

    async fn due_mail(&self, now: i64, at_most: usize) -> Result<usize, Error> {
        let claims = self.claims.mail.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut n = 0;
        for key in self.outbox.range(DUE_PREFIX..DUE_END).keys() {
            let (at, id) = parse_due_key(&key?)?;
            if at > now || n == at_most {
                break;
            }
            n += usize::from(claims.get(&id).is_none_or(|until| *until <= now));
        }
        Ok(n)
    }

    async fn release_mail(&self, ids: &[u64]) -> Result<(), Error> {
        release(&self.claims.mail, ids);
        Ok(())
    }

    async fn delivered(&self, id: u64) -> Result<(), Error> {
        let taken = in_queue(&self.outbox, |t| take_tx(t, id))?;
        release(&self.claims.mail, &[id]);
        if !taken {
            return Ok(()); // written down already
        }
        Store::bump(self, "outbox.delivered")?;
        let mut batch = sled::Batch::default();
        batch.remove(LAST_ERROR);
        batch.remove(SERVER_HOLD);
        self.meta.apply_batch(batch)?;
        Ok(())
    }

    async fn deferred(&self, item: &OutboxItem) -> Result<(), Error> {
        in_queue(&self.outbox, |t| {
            if t.get(seq_key(item.id))?.is_some() {
                put_tx(t, item)?;
            }
            Ok(())
        })?;
        release(&self.claims.mail, &[item.id]);
        self.set_last_error(item.last_error.as_deref().unwrap_or_default())?;
        Store::bump(self, "outbox.failures")?;
        Ok(())
    }

    async fn bury(&self, dead: &DeadItem, event: &AuditEvent, refused: bool) -> Result<(), Error> {
        let id = dead.item.id;
        let buried = tx((&self.outbox, &self.dead, &self.audit).transaction(|(o, d, a)| {
            if !take_tx(o, id)? {
                return Ok(false);
            }
            d.insert(&seq_key(id), encode(dead))?;
            event.append_tx(a)?;
            Ok::<_, ConflictableTransactionError<Error>>(true)
        }))?;
        release(&self.claims.mail, &[id]);
        if buried && refused {
            self.set_last_error(&dead.reason)?;
            Store::bump(self, "outbox.failures")?;
        }
        Ok(())
    }

    async fn server_hold(&self) -> Result<Option<i64>, Error> {
        Ok(Store::get::<ServerHold>(&self.meta, SERVER_HOLD)?.map(|h| h.until))
    }

    async fn hold_for_server(&self, why: &str, now: i64) -> Result<i64, Error> {
        let before: ServerHold = Store::get(&self.meta, SERVER_HOLD)?.unwrap_or_default();
        let failures = before.failures.saturating_add(1);
        let hold = ServerHold {
            failures,
            until: now + backoff(failures),
        };
        let mut batch = sled::Batch::default();
        batch.insert(SERVER_HOLD, encode(&hold));
        batch.insert(LAST_ERROR, why.as_bytes());
        self.meta.apply_batch(batch)?;
        Store::bump(self, "outbox.failures")?;
        Ok(hold.until)
    }

    async fn stand_ins_waiting(&self) -> Result<u64, Error> {
        Ok(read_depth(self.stand_ins.get(DEPTH)?.as_deref()))
    }

    async fn claim_stand_ins(&self, n: usize, now: i64, lease_until: i64) -> Result<Vec<OutboxItem>, Error> {
        Ok(claim(
            &self.stand_ins,
            &self.claims.stand_ins,
            n,
            now,
            None,
            lease_until,
        )?)
    }

    async fn release_stand_ins(&self, ids: &[u64]) -> Result<(), Error> {
        release(&self.claims.stand_ins, ids);
        Ok(())
    }

    async fn stand_in_done(&self, id: u64) -> Result<(), Error> {
        let taken = in_queue(&self.stand_ins, |t| take_tx(t, id))?;
        release(&self.claims.stand_ins, &[id]);
        if taken {
            Store::bump(self, "outbox.stand_ins")?;
        }
        Ok(())
    }

    async fn queued_mail(&self) -> Result<Vec<OutboxItem>, Error> {
        let items: Result<Vec<OutboxItem>, StoreError> =
            self.outbox.range(..ITEMS_END).map(|r| decode(&r?.1)).collect();
        Ok(items?)
    }

    async fn dead_letters(&self) -> Result<Vec<DeadItem>, Error> {
        let dead: Result<Vec<DeadItem>, StoreError> = self.dead.iter().map(|r| decode(&r?.1)).collect();
        Ok(dead?)
    }

    async fn retry_dead(&self, id: Option<u64>, now: i64) -> Result<usize, Error> {
        let mut n = 0;
        for dead in self.dead_letters().await? {
            let dropped = dead.item.sealed.is_none() && dead.item.raw.is_none();
            if id.is_some_and(|i| i != dead.item.id) || dropped || dead.item.expires_at.is_some_and(|e| e <= now) {
                continue;
            }
            let mut item = dead.item;
            item.next_attempt_at = now;
            tx((&self.outbox, &self.dead).transaction(|(o, d)| {
                d.remove(&seq_key(item.id))?;
                put_tx(o, &item)?;
                Ok::<_, ConflictableTransactionError<Error>>(())
            }))?;
            n += 1;
        }
        self.meta.remove(SERVER_HOLD)?;
        for mut item in self.queued_mail().await? {
            if id.is_none_or(|i| i == item.id) && item.next_attempt_at > now {
                item.next_attempt_at = now;
                // Only if it is still queued: never bring back a mail delivered meanwhile.
                let moved = in_queue(&self.outbox, |t| {
                    let queued = t.get(seq_key(item.id))?.is_some();
                    if queued {
                        put_tx(t, &item)?;
                    }
                    Ok(queued)
                })?;
                n += usize::from(moved);
            }
        }
        Ok(n)
    }

    async fn dead_resets(&self, id: Option<u64>, now: i64) -> Result<Vec<(u64, String)>, Error> {
        Ok(self
            .dead_letters()
            .await?
            .into_iter()
            .map(|dead| dead.item)
            .filter(|item| {
                let dropped = item.sealed.is_none() && item.raw.is_none();
                let live = item.expires_at.is_some_and(|e| e > now);
                item.kind == MailKind::Reset && dropped && live && id.is_none_or(|i| i == item.id)
            })
            .map(|item| (item.id, item.to))
            .collect())
    }

    async fn forget_dead(&self, id: u64) -> Result<bool, Error> {
        Ok(self.dead.remove(seq_key(id))?.is_some())
    }

    async fn prune_dead(&self, before: i64) -> Result<usize, Error> {
        let mut n = 0;
        for entry in self.dead.iter() {
            let (k, v) = entry?;
            if decode::<DeadItem>(&v).is_ok_and(|d| d.at < before) {
                self.dead.remove(k)?;
                n += 1;
            }
        }
        Ok(n)
    }

    async fn purge_dead(&self) -> Result<usize, Error> {
        let n = self.dead.len();
        self.dead.clear()?;
        Ok(n)
    }

    async fn outbox_figures(&self) -> Result<QueueFigures, Error> {
        let oldest = match self.outbox.range(..ITEMS_END).next().transpose()? {
            Some((_, v)) => Some(decode::<OutboxItem>(&v)?.created_at),
            None => None,
        };
        Ok(QueueFigures {
            depth: read_depth(self.outbox.get(DEPTH)?.as_deref()) as usize,
            oldest_created_at: oldest,
            last_error: self
                .meta
                .get(LAST_ERROR)?
                .map(|v| String::from_utf8_lossy(&v).into_owned()),
            dead: self.dead.len(),
            delivered: Store::counter(self, "outbox.delivered"),
            failures: Store::counter(self, "outbox.failures"),
            server_hold_until: self.server_hold().await?,
        })
    }
}
