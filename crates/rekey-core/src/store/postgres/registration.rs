//! The intake and pending accounts in PostgreSQL.
//!
//! A step that handles a request starts by deleting its intake row: when another instance
//! deleted it first, the step rolls back and does nothing, so each request is handled once
//! however many workers claim it (a claim's lease can run out under a slow worker).

use async_trait::async_trait;
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::{Postgres, Transaction};

use super::accounts::{retired_from_word, retired_word};
use super::meta::counter_shard;
use super::PgStore;
use crate::audit::AuditEvent;
use crate::error::Error;
use crate::letters::Letter;
use crate::outbox::MailKind;
use crate::store::steps::{NewPending, Waiting};
use crate::store::{decode, encode, CodeState, Intake, IntakeSteps, Pending, RegistrationSteps, Retired, User};

impl PgStore {
    /// Takes request `id` off the intake inside `tx`; `false` when it was gone already.
    pub(super) async fn take_request_tx(&self, tx: &mut Transaction<'_, Postgres>, id: u64) -> Result<bool, Error> {
        let done = sqlx::query("DELETE FROM intake WHERE id = $1")
            .bind(id as i64)
            .execute(&mut **tx)
            .await
            .map_err(|e| self.failed(e))?;
        Ok(done.rows_affected() == 1)
    }

    /// Writes a pending account inside `tx` (its address has none: the caller saw to that).
    pub(super) async fn insert_pending_tx(&self, tx: &mut Transaction<'_, Postgres>, p: &Pending) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO pending (id, email, password_hash, stamp, jti, created_at, expires_at, locale) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&p.id)
        .bind(&p.email)
        .bind(&p.password_hash)
        .bind(&p.stamp)
        .bind(&p.jti)
        .bind(p.created_at)
        .bind(p.expires_at)
        .bind(&p.locale)
        .execute(&mut **tx)
        .await
        .map_err(|e| self.failed(e))?;
        Ok(())
    }

    /// Retires a link inside `tx` (a reason given earlier stays).
    pub(super) async fn retire_tx(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        jti: &str,
        why: Retired,
        expires_at: i64,
    ) -> Result<(), Error> {
        sqlx::query("INSERT INTO retired (jti, why, expires_at) VALUES ($1, $2, $3) ON CONFLICT (jti) DO NOTHING")
            .bind(jti)
            .bind(retired_word(why))
            .bind(expires_at)
            .execute(&mut **tx)
            .await
            .map_err(|e| self.failed(e))?;
        Ok(())
    }
}

#[async_trait]
impl IntakeSteps for PgStore {
    async fn queue_request(&self, request: &Intake) -> Result<(), Error> {
        sqlx::query("INSERT INTO intake (record) VALUES ($1)")
            .bind(String::from_utf8_lossy(&encode(request)).into_owned())
            .execute(&self.pool)
            .await
            .map_err(|e| self.failed(e))?;
        Ok(())
    }

    async fn waiting_requests(&self) -> Result<usize, Error> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM intake")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.failed(e))?;
        Ok(n as usize)
    }

    async fn claim_requests(&self, n: usize, now: i64, lease_until: i64) -> Result<Vec<Waiting>, Error> {
        let mut rows: Vec<(i64, String)> = sqlx::query_as(
            "UPDATE intake SET claimed_until = $3 WHERE id IN \
             (SELECT id FROM intake WHERE claimed_until <= $2 ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED) \
             RETURNING id, record",
        )
        .bind(n as i64)
        .bind(now)
        .bind(lease_until)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.failed(e))?;
        rows.sort_by_key(|(id, _)| *id);
        let mut waiting = Vec::new();
        for (id, record) in rows {
            match decode::<Intake>(record.as_bytes()) {
                Ok(request) => waiting.push(Waiting { id: id as u64, request }),
                Err(e) => tracing::error!(error = %e, id, "a request could not be read; it stays queued"),
            }
        }
        Ok(waiting)
    }

    async fn drop_requests(&self, ids: &[u64], counted_as: Option<&str>) -> Result<(), Error> {
        // One statement: the count moves by the requests this worker took off.
        let ids: Vec<i64> = ids.iter().map(|&id| id as i64).collect();
        sqlx::query(
            "WITH gone AS (DELETE FROM intake WHERE id = ANY($1) RETURNING id) \
             INSERT INTO counters AS c (name, shard, value) \
             SELECT $2, $3, count(*) FROM gone WHERE $2 IS NOT NULL HAVING count(*) > 0 \
             ON CONFLICT (name, shard) DO UPDATE SET value = c.value + EXCLUDED.value",
        )
        .bind(ids)
        .bind(counted_as)
        .bind(counter_shard())
        .execute(&self.pool)
        .await
        .map_err(|e| self.failed(e))?;
        Ok(())
    }

    async fn refuse_request(&self, id: u64, event: &AuditEvent) -> Result<(), Error> {
        let mut tx = self.pool.begin().await.map_err(|e| self.failed(e))?;
        if self.take_request_tx(&mut tx, id).await? {
            self.append_event_tx(&mut tx, event).await?;
        }
        tx.commit().await.map_err(|e| self.failed(e))
    }
}

type PendingRow = (String, String, String, String, String, i64, i64, Option<String>);

fn pending(row: PendingRow) -> Pending {
    let (id, email, password_hash, stamp, jti, created_at, expires_at, locale) = row;
    Pending {
        id,
        email,
        password_hash,
        stamp,
        jti,
        created_at,
        expires_at,
        locale,
    }
}

#[async_trait]
impl RegistrationSteps for PgStore {
    async fn tell_owner(&self, request: u64, notice: &Letter, event: &AuditEvent, now: i64) -> Result<(), Error> {
        let mut tx = self.pool.begin().await.map_err(|e| self.failed(e))?;
        if !self.take_request_tx(&mut tx, request).await? {
            return Ok(());
        }
        self.enqueue_tx(&mut tx, notice, MailKind::AccountExists, now, None)
            .await?;
        self.append_event_tx(&mut tx, event).await?;
        tx.commit().await.map_err(|e| self.failed(e))
    }

    async fn start_pending(&self, new: NewPending<'_>) -> Result<(), Error> {
        let p = new.pending;
        let mut tx = self.pool.begin().await.map_err(|e| self.failed(e))?;
        if !self.take_request_tx(&mut tx, new.request).await? {
            return Ok(());
        }
        // The address's earlier registration goes, and its link says it was replaced.
        let replaced: Option<(String, i64)> =
            sqlx::query_as("DELETE FROM pending WHERE email = $1 RETURNING jti, expires_at")
                .bind(&p.email)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| self.failed(e))?;
        if let Some((jti, expires_at)) = replaced {
            self.retire_tx(&mut tx, &jti, Retired::Replaced, expires_at).await?;
        }
        self.insert_pending_tx(&mut tx, p).await?;
        put_code_tx(self, &mut tx, new.code_key, new.code).await?;
        self.enqueue_tx(&mut tx, new.letter, MailKind::Verify, new.now, Some(p.expires_at))
            .await?;
        self.append_event_tx(&mut tx, new.event).await?;
        tx.commit().await.map_err(|e| self.failed(e))
    }

    async fn pending(&self, id: &str) -> Result<Option<Pending>, Error> {
        let row: Option<PendingRow> = sqlx::query_as(
            "SELECT id, email, password_hash, stamp, jti, created_at, expires_at, locale FROM pending WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.failed(e))?;
        Ok(row.map(pending))
    }

    async fn finish_pending(&self, p: &Pending, user: &User, event: &AuditEvent) -> Result<(), Error> {
        let mut tx = self.pool.begin().await.map_err(|e| self.failed(e))?;
        let taken = sqlx::query("DELETE FROM pending WHERE id = $1 AND jti = $2")
            .bind(&p.id)
            .bind(&p.jti)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.failed(e))?;
        if taken.rows_affected() == 0 {
            let why: Option<String> = sqlx::query_scalar("SELECT why FROM retired WHERE jti = $1")
                .bind(&p.jti)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| self.failed(e))?;
            return Err(match why.as_deref().map(retired_from_word) {
                Some(Retired::Replaced) => Error::TokenReplaced,
                _ => Error::AccountVerified,
            });
        }
        // An administrator made the account meanwhile: nothing changes (the rollback keeps
        // the pending account).
        self.insert_user_tx(&mut tx, user).await?;
        sqlx::query(
            "INSERT INTO retired (jti, why, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (jti) DO UPDATE SET why = EXCLUDED.why",
        )
        .bind(&p.jti)
        .bind(retired_word(Retired::Used))
        .bind(p.expires_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.failed(e))?;
        self.append_event_tx(&mut tx, event).await?;
        tx.commit().await.map_err(|e| self.failed(e))
    }

    async fn drop_pending(&self, email: &str) -> Result<(), Error> {
        sqlx::query("DELETE FROM pending WHERE email = $1")
            .bind(email)
            .execute(&self.pool)
            .await
            .map_err(|e| self.failed(e))?;
        Ok(())
    }
}

/// Writes a code's record inside `tx`, in place of any earlier one for the key.
pub(super) async fn put_code_tx(
    store: &PgStore,
    tx: &mut Transaction<'_, Postgres>,
    key: &str,
    code: &CodeState,
) -> Result<(), Error> {
    bind_code(sqlx::query(PUT_CODE), key, code)
        .execute(&mut **tx)
        .await
        .map_err(|e| store.failed(e))?;
    Ok(())
}

/// Writes a typed code's state under its key: `$1` to `$8`, bound by [`bind_code`] (steps
/// that write more in the same statement number theirs after).
pub(super) const PUT_CODE: &str = "INSERT INTO codes (key, failures, until, user_id, kid, jti, code_mac, expires_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (key) DO UPDATE SET \
     failures = EXCLUDED.failures, until = EXCLUDED.until, user_id = EXCLUDED.user_id, kid = EXCLUDED.kid, \
     jti = EXCLUDED.jti, code_mac = EXCLUDED.code_mac, expires_at = EXCLUDED.expires_at";

/// Binds [`PUT_CODE`]'s parameters.
pub(super) fn bind_code<'q>(
    query: Query<'q, Postgres, PgArguments>,
    key: &'q str,
    code: &'q CodeState,
) -> Query<'q, Postgres, PgArguments> {
    query
        .bind(key)
        .bind(code.failures as i32)
        .bind(code.until)
        .bind(&code.user_id)
        .bind(&code.kid)
        .bind(&code.jti)
        .bind(&code.code_mac)
        .bind(code.expires_at)
}
