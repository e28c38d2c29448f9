//! Resets and typed codes in PostgreSQL, and what a request that gets no mail writes in
//! their place: the same rows under fixed stand-in keys (no account has them), and its mail
//! in `stand_in_mail`, which the outbox rehearses and never sends.

use async_trait::async_trait;
use sqlx::{Postgres, Transaction};

use super::accounts::{retired_from_word, retired_word};
use super::meta::counter_shard;
use super::outbox::BUMP;
use super::registration::{bind_code, PUT_CODE};
use super::PgStore;
use crate::error::{internal, Error};
use crate::letters::Letter;
use crate::limits::RateLimit;
use crate::outbox::MailKind;
use crate::store::steps::NewReset;
use crate::store::{encode, seq_key, CodeState, LimitSteps, LiveReset, ResetSteps, Retired, RetiredToken};

/// The stand-in's keys. Account ids and `jti`s are random hex; these can be no one's.
const STAND_IN_LIMIT: &str = "stand-in/limit";
const STAND_IN_USER: &str = "stand-in";
const STAND_IN_CODE: &str = "stand-in/code";
const STAND_IN_RETIRED: &str = "stand-in/retired";

/// Outbox ids an instance takes from the sequence at once.
const OUTBOX_IDS_AHEAD: i32 = 32;

/// Where queued mail goes: to be sent, or to be rehearsed.
pub(super) enum Queue {
    Mail,
    StandIns,
}

impl PgStore {
    /// An id for a mail to queue. The seal needs it before the row is written, and asking
    /// the sequence for each was a round trip of its own in every step that queues mail, so
    /// ids are taken `OUTBOX_IDS_AHEAD` at a time (over `tx`'s connection: a pool of one
    /// has no other). Ids stay unique across instances; one that a crash leaves unused is a
    /// gap, which nothing reads. Mail goes out by due time, not id.
    async fn next_outbox_id(&self, tx: &mut Transaction<'_, Postgres>) -> Result<i64, Error> {
        if let Some(id) = self.outbox_ids.lock().map_err(|e| internal("outbox ids", e))?.pop() {
            return Ok(id);
        }
        let mut taken: Vec<i64> =
            sqlx::query_scalar("SELECT nextval('outbox_ids') FROM generate_series(1, $1) ORDER BY 1 DESC")
                .bind(OUTBOX_IDS_AHEAD)
                .fetch_all(&mut **tx)
                .await
                .map_err(|e| self.failed(e))?;
        let id = taken
            .pop()
            .ok_or_else(|| internal("outbox ids", "the sequence gave none"))?;
        self.outbox_ids
            .lock()
            .map_err(|e| internal("outbox ids", e))?
            .extend(taken);
        Ok(id)
    }

    /// Queues a letter inside `tx`, sealed with the mail key and its id, which is taken
    /// first as the seal needs it. Returns the id.
    pub(super) async fn enqueue_into_tx(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        queue: Queue,
        letter: &Letter,
        kind: MailKind,
        now: i64,
        expires_at: Option<i64>,
    ) -> Result<i64, Error> {
        let id = self.next_outbox_id(tx).await?;
        let sealed = self.mail_key.seal(&letter.raw, &seq_key(id as u64));
        let insert = match queue {
            Queue::Mail => {
                "INSERT INTO outbox (id, kind, sender, recipient, sealed, created_at, next_attempt_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $6, $7)"
            }
            Queue::StandIns => {
                "INSERT INTO stand_in_mail (id, kind, sender, recipient, sealed, created_at, next_attempt_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $6, $7)"
            }
        };
        sqlx::query(insert)
            .bind(id)
            .bind(super::accounts::kind_word(kind))
            .bind(&letter.from)
            .bind(&letter.to)
            .bind(sealed)
            .bind(now)
            .bind(expires_at)
            .execute(&mut **tx)
            .await
            .map_err(|e| self.failed(e))?;
        Ok(id)
    }
}

#[async_trait]
impl ResetSteps for PgStore {
    async fn retired(&self, jti: &str) -> Result<Option<RetiredToken>, Error> {
        let row: Option<(String, i64)> = sqlx::query_as("SELECT why, expires_at FROM retired WHERE jti = $1")
            .bind(jti)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.failed(e))?;
        Ok(row.map(|(why, expires_at)| RetiredToken {
            why: retired_from_word(&why),
            expires_at,
        }))
    }

    async fn live_reset(&self, user_id: &str) -> Result<Option<LiveReset>, Error> {
        let row: Option<(String, String, i64, i64)> =
            sqlx::query_as("SELECT jti, kid, issued_at, expires_at FROM resets WHERE user_id = $1")
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.failed(e))?;
        Ok(row.map(|(jti, kid, issued_at, expires_at)| LiveReset {
            jti,
            kid,
            issued_at,
            expires_at,
        }))
    }

    async fn count_code_try(&self, key: &str, stand_in: &CodeState, until: i64) -> Result<CodeState, Error> {
        // One upsert for every address: a new key takes the stand-in with this try counted,
        // an existing one counts the try. `xmax = 0` tells an insert from an update.
        type Row = (bool, i32, String, String, String, String, i64);
        let (inserted, failures, user_id, kid, jti, code_mac, expires_at): Row = sqlx::query_as(
            "INSERT INTO codes AS c (key, failures, until, user_id, kid, jti, code_mac, expires_at) \
             VALUES ($1, $2, GREATEST($3, $4), $5, $6, $7, $8, $9) \
             ON CONFLICT (key) DO UPDATE SET failures = LEAST(c.failures, 2147483646) + 1, \
             until = GREATEST(c.until, $4) \
             RETURNING (xmax = 0), failures, user_id, kid, jti, code_mac, expires_at",
        )
        .bind(key)
        .bind(stand_in.failures.saturating_add(1).min(i32::MAX as u32) as i32)
        .bind(stand_in.until)
        .bind(until)
        .bind(&stand_in.user_id)
        .bind(&stand_in.kid)
        .bind(&stand_in.jti)
        .bind(&stand_in.code_mac)
        .bind(stand_in.expires_at)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| self.failed(e))?;
        if inserted {
            return Ok(stand_in.clone());
        }
        Ok(CodeState {
            failures: (failures.max(1) - 1) as u32,
            until,
            user_id,
            kid,
            jti,
            code_mac,
            expires_at,
        })
    }

    async fn count_reset_request(&self, limit: RateLimit, key: Option<&str>, at: i64) -> Result<bool, Error> {
        // A stranger's count goes to one of several stand-in rows, as an account's goes to
        // its own row: under a flood of strangers' addresses, every worker's upsert of one
        // shared row would wait for the one before it to commit.
        let stand_in;
        let key = match key {
            Some(key) => key,
            None => {
                stand_in = format!("{STAND_IN_LIMIT}/{}", counter_shard());
                &stand_in
            }
        };
        Ok(self.take(limit, key, at).await?.is_ok())
    }

    async fn mint_reset(&self, reset: NewReset<'_>) -> Result<(), Error> {
        let mut tx = self.pool.begin().await.map_err(|e| self.failed(e))?;
        if !self.take_request_tx(&mut tx, reset.request).await? {
            return Ok(()); // another instance handled it
        }
        // A stand-in writes the rows an account's reset writes, under fixed keys.
        let (user_id, code_key) = match reset.user_id {
            Some(id) => (id, reset.code_key),
            None => (STAND_IN_USER, STAND_IN_CODE),
        };
        // The newer request replaces the older link, which then says so: the old row is
        // locked, read and retired in one statement, and overwritten by the next, with the
        // new code (each statement is a round trip the worker waits on). Two statements, not
        // one with data-modifying CTEs: those run in no set order.
        sqlx::query(
            "INSERT INTO retired (jti, why, expires_at) \
             SELECT CASE WHEN $2 THEN jti ELSE $3 END, $4, expires_at FROM resets WHERE user_id = $1 FOR UPDATE \
             ON CONFLICT (jti) DO UPDATE SET why = EXCLUDED.why, expires_at = EXCLUDED.expires_at",
        )
        .bind(user_id)
        .bind(reset.user_id.is_some())
        .bind(STAND_IN_RETIRED)
        .bind(retired_word(Retired::Replaced))
        .execute(&mut *tx)
        .await
        .map_err(|e| self.failed(e))?;
        // The code's upsert (`PUT_CODE`, $1 to $8) runs beside the reset's: different rows.
        let replace = format!(
            "WITH code AS ({PUT_CODE}) \
             INSERT INTO resets (user_id, jti, kid, issued_at, expires_at) VALUES ($9, $10, $11, $12, $13) \
             ON CONFLICT (user_id) DO UPDATE SET jti = EXCLUDED.jti, kid = EXCLUDED.kid, \
             issued_at = EXCLUDED.issued_at, expires_at = EXCLUDED.expires_at"
        );
        bind_code(sqlx::query(&replace), code_key, reset.code)
            .bind(user_id)
            .bind(&reset.live.jti)
            .bind(&reset.live.kid)
            .bind(reset.live.issued_at)
            .bind(reset.live.expires_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.failed(e))?;
        let queue = match reset.user_id {
            Some(_) => Queue::Mail,
            None => Queue::StandIns,
        };
        self.enqueue_into_tx(
            &mut tx,
            queue,
            reset.letter,
            MailKind::Reset,
            reset.now,
            Some(reset.live.expires_at),
        )
        .await?;
        // The event and the count in one statement (`BUMP` takes $1 and $2). The counter's
        // row (one of its shards) stays locked until commit, which follows at once.
        let event = reset.event;
        let sql = if reset.audited {
            format!("WITH count AS ({BUMP}) INSERT INTO audit (at, kind, user_id, client, detail) VALUES ($3, $4, $5, $6, $7)")
        } else {
            format!(
                "WITH count AS ({BUMP}) INSERT INTO stand_in_events (name, event) VALUES ('reset', $3) \
                 ON CONFLICT (name) DO UPDATE SET event = EXCLUDED.event"
            )
        };
        let count = sqlx::query(&sql).bind(reset.counted_as).bind(counter_shard());
        let record = if reset.audited {
            count
                .bind(event.at)
                .bind(&event.kind)
                .bind(&event.user_id)
                .bind(&event.client)
                .bind(&event.detail)
        } else {
            count.bind(String::from_utf8_lossy(&encode(event)).into_owned())
        };
        record.execute(&mut *tx).await.map_err(|e| self.failed(e))?;
        tx.commit().await.map_err(|e| self.failed(e))
    }
}
