//! Resets, retired links and typed codes in sled; and the stand-in tree, where a request
//! that gets no mail writes what an account's reset writes.

use async_trait::async_trait;
use sled::transaction::ConflictableTransactionError::Abort;
use sled::Transactional;

use super::intake::mark_handled;
use super::limits::take;
use super::Store;
use crate::error::{internal, Error};
use crate::limits::RateLimit;
use crate::outbox::{enqueue_tx, MailKind};
use crate::service::tx;
use crate::store::steps::NewReset;
use crate::store::{decode, encode, CodeState, LiveReset, ResetSteps, Retired, RetiredToken};

/// Keys in the stand-in tree. Its mail takes the outbox's own layout there, from sequence
/// keys to its index, and the outbox rehearses it.
const STAND_IN_LIMIT: &str = "stand-in/limit";
const STAND_IN_RESET: &[u8] = b"stand-in/reset";
const STAND_IN_CODE: &[u8] = b"stand-in/code";
const STAND_IN_EVENT: &[u8] = b"stand-in/event";
const STAND_IN_RETIRED: &[u8] = b"stand-in/retired";

#[async_trait]
impl ResetSteps for Store {
    async fn retired(&self, jti: &str) -> Result<Option<RetiredToken>, Error> {
        Ok(Store::get(&self.retired, jti.as_bytes())?)
    }

    async fn live_reset(&self, user_id: &str) -> Result<Option<LiveReset>, Error> {
        Ok(Store::get(&self.resets, user_id.as_bytes())?)
    }

    async fn count_code_try(&self, key: &str, stand_in: &CodeState, until: i64) -> Result<CodeState, Error> {
        // Encoded for every address, used when it has no record: the same work either way.
        let stand_in = encode(stand_in);
        let before = self.codes.fetch_and_update(key.as_bytes(), |old| {
            let mut record: CodeState = decode(old.unwrap_or(&stand_in)).ok()?;
            record.failures = record.failures.saturating_add(1);
            record.until = record.until.max(until);
            Some(encode(&record))
        })?;
        Ok(decode(before.as_deref().unwrap_or(&stand_in))?)
    }

    async fn count_reset_request(&self, limit: RateLimit, key: Option<&str>, at: i64) -> Result<bool, Error> {
        let (tree, key) = match key {
            Some(key) => (&self.limits, key),
            None => (&self.stand_ins, STAND_IN_LIMIT),
        };
        Ok(take(tree, limit, key, at)?.is_ok())
    }

    async fn mint_reset(&self, reset: NewReset<'_>) -> Result<(), Error> {
        let code = encode(reset.code);
        let live = encode(reset.live);
        tx((
            &self.handled,
            &self.resets,
            &self.retired,
            &self.codes,
            &self.outbox,
            &self.audit,
            &self.stand_ins,
            &self.meta,
        )
            .transaction(|(handled, resets, retired, codes, outbox, audit, stand_ins, meta)| {
                if !mark_handled(handled, reset.request, reset.now)? {
                    return Ok(());
                }
                // A stand-in writes what an account's reset writes, to the stand-in tree
                // under fixed keys (its own older reset included), so it never grows.
                let (reset_key, code_key, resets, retired, codes, outbox) = match reset.user_id {
                    Some(id) => (id.as_bytes(), reset.code_key.as_bytes(), resets, retired, codes, outbox),
                    None => (
                        STAND_IN_RESET,
                        STAND_IN_CODE,
                        stand_ins,
                        stand_ins,
                        stand_ins,
                        stand_ins,
                    ),
                };
                // The newer request replaces the older link, which then says so.
                if let Some(old) = resets.get(reset_key)? {
                    let old: LiveReset = decode(&old).map_err(|e| Abort(internal("reset record", e)))?;
                    let why = RetiredToken {
                        why: Retired::Replaced,
                        expires_at: old.expires_at,
                    };
                    let retired_key = match reset.user_id {
                        Some(_) => old.jti.as_bytes(),
                        None => STAND_IN_RETIRED,
                    };
                    retired.insert(retired_key, encode(&why))?;
                }
                resets.insert(reset_key, live.as_slice())?;
                codes.insert(code_key, code.as_slice())?;
                enqueue_tx(
                    outbox,
                    &self.mail_key,
                    reset.letter,
                    MailKind::Reset,
                    reset.now,
                    Some(reset.live.expires_at),
                )?;
                if reset.audited {
                    reset.event.append_tx(audit)?;
                } else {
                    stand_ins.insert(STAND_IN_EVENT, encode(reset.event))?;
                }
                let counted = meta
                    .get(reset.counted_as)?
                    .and_then(|n| <[u8; 8]>::try_from(n.as_ref()).ok())
                    .map_or(0, u64::from_be_bytes);
                meta.insert(reset.counted_as, &(counted + 1).to_be_bytes())?;
                Ok(())
            }))?;
        self.forget_after_flush(reset.request);
        Ok(())
    }
}
