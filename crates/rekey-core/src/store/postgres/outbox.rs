//! The outbox in PostgreSQL, shared by every instance's worker.
//!
//! A claim is one `UPDATE … SET claimed_until` over the due rows that no lease holds,
//! picked with `FOR UPDATE SKIP LOCKED`: two workers claiming at once get different mail, and
//! none waits for the other. What the server said is written with the row's id as the
//! condition (`DELETE … WHERE id`), so a mail taken out meanwhile is never brought back.

use async_trait::async_trait;
use sqlx::{Postgres, Transaction};

use super::accounts::kind_word;
use super::meta::counter_shard;
use super::PgStore;
use crate::audit::AuditEvent;
use crate::error::{internal, Error};
use crate::letters::Letter;
use crate::outbox::{backoff, DeadItem, MailKind, OutboxItem};
use crate::store::{OutboxSteps, QueueFigures};

const MAIL_COLUMNS: &str =
    "id, kind, sender, recipient, sealed, created_at, attempts, next_attempt_at, last_error, expires_at";

type MailRow = (
    i64,
    String,
    String,
    String,
    Option<String>,
    i64,
    i32,
    i64,
    Option<String>,
    Option<i64>,
);

/// A dead letter's row: the mail's columns, then `reason` and `died_at`.
type DeadRow = (
    i64,
    String,
    String,
    String,
    Option<String>,
    i64,
    i32,
    i64,
    Option<String>,
    Option<i64>,
    String,
    i64,
);

fn mail_kind(word: &str) -> Result<MailKind, Error> {
    Ok(match word {
        "reset" => MailKind::Reset,
        "password_changed" => MailKind::PasswordChanged,
        "verify" => MailKind::Verify,
        "account_exists" => MailKind::AccountExists,
        "test" => MailKind::Test,
        other => return Err(internal("outbox", format!("a mail of unknown kind '{other}'"))),
    })
}

fn mail(row: MailRow) -> Result<OutboxItem, Error> {
    let (id, kind, from, to, sealed, created_at, attempts, next_attempt_at, last_error, expires_at) = row;
    Ok(OutboxItem {
        id: id as u64,
        kind: mail_kind(&kind)?,
        from,
        to,
        sealed,
        raw: None,
        created_at,
        attempts: attempts.max(0) as u32,
        next_attempt_at,
        last_error,
        expires_at,
    })
}

/// Claimed rows, soonest due first (`RETURNING` keeps no order).
fn claimed(rows: Vec<MailRow>) -> Result<Vec<OutboxItem>, Error> {
    let mut items = rows.into_iter().map(mail).collect::<Result<Vec<_>, _>>()?;
    items.sort_by_key(|item| (item.next_attempt_at, item.id));
    Ok(items)
}

fn ids(ids: &[u64]) -> Vec<i64> {
    ids.iter().map(|id| *id as i64).collect()
}

/// Counts one more under a counter's name `$1`, in its shard `$2` (see
/// [`counter_shard`](super::meta::counter_shard)).
pub(super) const BUMP: &str = "INSERT INTO counters AS c (name, shard, value) VALUES ($1, $2, 1) \
     ON CONFLICT (name, shard) DO UPDATE SET value = c.value + 1";

impl PgStore {
    /// Adds one to a counter inside `tx`.
    pub(super) async fn bump_tx(&self, tx: &mut Transaction<'_, Postgres>, name: &str) -> Result<(), Error> {
        sqlx::query(BUMP)
            .bind(name)
            .bind(counter_shard())
            .execute(&mut **tx)
            .await
            .map_err(|e| self.failed(e))?;
        Ok(())
    }

    /// A failed attempt inside `tx`: `why` is the last error, and it is counted.
    async fn failure_tx(&self, tx: &mut Transaction<'_, Postgres>, why: &str) -> Result<(), Error> {
        sqlx::query("UPDATE outbox_state SET last_error = $1")
            .bind(why)
            .execute(&mut **tx)
            .await
            .map_err(|e| self.failed(e))?;
        self.bump_tx(tx, "outbox.failures").await
    }

    async fn release(&self, table: &str, ids: &[u64]) -> Result<(), Error> {
        if ids.is_empty() {
            return Ok(());
        }
        sqlx::query(&format!("UPDATE {table} SET claimed_until = 0 WHERE id = ANY($1)"))
            .bind(self::ids(ids))
            .execute(&self.pool)
            .await
            .map_err(|e| self.failed(e))?;
        Ok(())
    }
}

impl PgStore {
    /// Writes a dead letter as given (its id, and its message sealed under that id or none).
    pub(super) async fn insert_dead_tx(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        dead: &DeadItem,
    ) -> Result<(), Error> {
        let item = &dead.item;
        sqlx::query(&format!(
            "INSERT INTO dead_letters ({MAIL_COLUMNS}, reason, died_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ))
        .bind(item.id as i64)
        .bind(kind_word(item.kind))
        .bind(&item.from)
        .bind(&item.to)
        .bind(&item.sealed)
        .bind(item.created_at)
        .bind(item.attempts.min(i32::MAX as u32) as i32)
        .bind(item.next_attempt_at)
        .bind(&item.last_error)
        .bind(item.expires_at)
        .bind(&dead.reason)
        .bind(dead.at)
        .execute(&mut **tx)
        .await
        .map_err(|e| self.failed(e))?;
        Ok(())
    }
}

#[async_trait]
impl OutboxSteps for PgStore {
    async fn queue_mail(
        &self,
        letter: &Letter,
        kind: MailKind,
        now: i64,
        expires_at: Option<i64>,
    ) -> Result<(), Error> {
        let mut tx = self.pool.begin().await.map_err(|e| self.failed(e))?;
        self.enqueue_tx(&mut tx, letter, kind, now, expires_at).await?;
        tx.commit().await.map_err(|e| self.failed(e))
    }

    async fn claim_mail(&self, n: usize, now: i64, lease_until: i64) -> Result<Vec<OutboxItem>, Error> {
        let rows: Vec<MailRow> = sqlx::query_as(&format!(
            "UPDATE outbox SET claimed_until = $3 WHERE id IN \
             (SELECT id FROM outbox WHERE next_attempt_at <= $2 AND claimed_until <= $2 \
              ORDER BY next_attempt_at, id LIMIT $1 FOR UPDATE SKIP LOCKED) \
             RETURNING {MAIL_COLUMNS}"
        ))
        .bind(n as i64)
        .bind(now)
        .bind(lease_until)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.failed(e))?;
        claimed(rows)
    }

    async fn next_mail_due(&self, now: i64) -> Result<Option<i64>, Error> {
        sqlx::query_scalar(
            "SELECT next_attempt_at FROM outbox WHERE claimed_until <= $1 ORDER BY next_attempt_at, id LIMIT 1",
        )
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.failed(e))
    }

    async fn due_mail(&self, now: i64, at_most: usize) -> Result<usize, Error> {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT 1 FROM outbox WHERE next_attempt_at <= $1 AND claimed_until <= $1 LIMIT $2) due",
        )
        .bind(now)
        .bind(at_most as i64)
        .fetch_one(&self.pool)
                .await
                .map_err(|e| self.failed(e))?;
        Ok(n as usize)
    }

    async fn release_mail(&self, ids: &[u64]) -> Result<(), Error> {
        self.release("outbox", ids).await
    }

    async fn delivered(&self, id: u64) -> Result<(), Error> {
        // One statement, one round trip: the mail leaves the queue (unless a lease that ran
        // out had it written down already), is counted, and the last problem and the hold are
        // over. The state row is written only when there is something to clear: every
        // instance's deliveries would otherwise queue up on that one row.
        sqlx::query(
            "WITH gone AS (DELETE FROM outbox WHERE id = $1 RETURNING id), \
             counted AS (INSERT INTO counters AS c (name, shard, value) SELECT 'outbox.delivered', $2, 1 FROM gone \
                         ON CONFLICT (name, shard) DO UPDATE SET value = c.value + 1) \
             UPDATE outbox_state SET last_error = NULL, hold_failures = 0, hold_until = 0 \
             WHERE EXISTS (SELECT 1 FROM gone) \
               AND (last_error IS NOT NULL OR hold_failures <> 0 OR hold_until <> 0)",
        )
        .bind(id as i64)
        .bind(counter_shard())
        .execute(&self.pool)
        .await
        .map_err(|e| self.failed(e))?;
        Ok(())
    }

    async fn deferred(&self, item: &OutboxItem) -> Result<(), Error> {
        let mut tx = self.pool.begin().await.map_err(|e| self.failed(e))?;
        sqlx::query(
            "UPDATE outbox SET attempts = $2, next_attempt_at = $3, last_error = $4, claimed_until = 0 \
             WHERE id = $1",
        )
        .bind(item.id as i64)
        .bind(item.attempts.min(i32::MAX as u32) as i32)
        .bind(item.next_attempt_at)
        .bind(&item.last_error)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.failed(e))?;
        self.failure_tx(&mut tx, item.last_error.as_deref().unwrap_or_default())
            .await?;
        tx.commit().await.map_err(|e| self.failed(e))
    }

    async fn bury(&self, dead: &DeadItem, event: &AuditEvent, refused: bool) -> Result<(), Error> {
        let item = &dead.item;
        let mut tx = self.pool.begin().await.map_err(|e| self.failed(e))?;
        let gone = sqlx::query("DELETE FROM outbox WHERE id = $1")
            .bind(item.id as i64)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.failed(e))?;
        if gone.rows_affected() == 0 {
            return Ok(());
        }
        self.insert_dead_tx(&mut tx, dead).await?;
        self.append_event_tx(&mut tx, event).await?;
        if refused {
            self.failure_tx(&mut tx, &dead.reason).await?;
        }
        tx.commit().await.map_err(|e| self.failed(e))
    }

    async fn server_hold(&self) -> Result<Option<i64>, Error> {
        let until: i64 = sqlx::query_scalar("SELECT hold_until FROM outbox_state")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.failed(e))?;
        Ok((until != 0).then_some(until))
    }

    async fn hold_for_server(&self, why: &str, now: i64) -> Result<i64, Error> {
        let mut tx = self.pool.begin().await.map_err(|e| self.failed(e))?;
        // The row stays locked until the commit: instances failing at once count one by one.
        let failures: i32 =
            sqlx::query_scalar("UPDATE outbox_state SET hold_failures = hold_failures + 1 RETURNING hold_failures")
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| self.failed(e))?;
        let until = now + backoff(failures.max(1) as u32);
        sqlx::query("UPDATE outbox_state SET hold_until = $1")
            .bind(until)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.failed(e))?;
        self.failure_tx(&mut tx, why).await?;
        tx.commit().await.map_err(|e| self.failed(e))?;
        Ok(until)
    }

    async fn stand_ins_waiting(&self) -> Result<u64, Error> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM stand_in_mail")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.failed(e))?;
        Ok(n as u64)
    }

    async fn claim_stand_ins(&self, n: usize, now: i64, lease_until: i64) -> Result<Vec<OutboxItem>, Error> {
        let rows: Vec<MailRow> = sqlx::query_as(&format!(
            "UPDATE stand_in_mail SET claimed_until = $3 WHERE id IN \
             (SELECT id FROM stand_in_mail WHERE claimed_until <= $2 ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED) \
             RETURNING {MAIL_COLUMNS}"
        ))
        .bind(n as i64)
        .bind(now)
        .bind(lease_until)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.failed(e))?;
        claimed(rows)
    }

    async fn release_stand_ins(&self, ids: &[u64]) -> Result<(), Error> {
        self.release("stand_in_mail", ids).await
    }

    async fn stand_in_done(&self, id: u64) -> Result<(), Error> {
        let mut tx = self.pool.begin().await.map_err(|e| self.failed(e))?;
        let gone = sqlx::query("DELETE FROM stand_in_mail WHERE id = $1")
            .bind(id as i64)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.failed(e))?;
        if gone.rows_affected() == 1 {
            self.bump_tx(&mut tx, "outbox.stand_ins").await?;
        }
        tx.commit().await.map_err(|e| self.failed(e))
    }

    async fn queued_mail(&self) -> Result<Vec<OutboxItem>, Error> {
        let rows: Vec<MailRow> = sqlx::query_as(&format!("SELECT {MAIL_COLUMNS} FROM outbox ORDER BY id"))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.failed(e))?;
        rows.into_iter().map(mail).collect()
    }

    async fn dead_letters(&self) -> Result<Vec<DeadItem>, Error> {
        let rows: Vec<DeadRow> = sqlx::query_as(&format!(
            "SELECT {MAIL_COLUMNS}, reason, died_at FROM dead_letters ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.failed(e))?;
        rows.into_iter()
            .map(
                |(id, kind, from, to, sealed, created, attempts, next, last_error, expires, reason, at)| {
                    let item = mail((id, kind, from, to, sealed, created, attempts, next, last_error, expires))?;
                    Ok(DeadItem { item, reason, at })
                },
            )
            .collect()
    }

    async fn retry_dead(&self, id: Option<u64>, now: i64) -> Result<usize, Error> {
        let id = id.map(|id| id as i64);
        let mut tx = self.pool.begin().await.map_err(|e| self.failed(e))?;
        // A dead reset or verification mail has no message to send (`sealed` is NULL); one
        // whose link expired would be no use.
        let back = sqlx::query(&format!(
            "WITH back AS (DELETE FROM dead_letters \
               WHERE ($1::bigint IS NULL OR id = $1) AND sealed IS NOT NULL \
               AND (expires_at IS NULL OR expires_at > $2) RETURNING {MAIL_COLUMNS}) \
             INSERT INTO outbox ({MAIL_COLUMNS}) \
             SELECT id, kind, sender, recipient, sealed, created_at, attempts, $2, last_error, expires_at FROM back"
        ))
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.failed(e))?;
        let sooner = sqlx::query(
            "UPDATE outbox SET next_attempt_at = $2 WHERE ($1::bigint IS NULL OR id = $1) AND next_attempt_at > $2",
        )
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.failed(e))?;
        sqlx::query("UPDATE outbox_state SET hold_failures = 0, hold_until = 0")
            .execute(&mut *tx)
            .await
            .map_err(|e| self.failed(e))?;
        tx.commit().await.map_err(|e| self.failed(e))?;
        Ok((back.rows_affected() + sooner.rows_affected()) as usize)
    }

    async fn dead_resets(&self, id: Option<u64>, now: i64) -> Result<Vec<(u64, String)>, Error> {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT id, recipient FROM dead_letters WHERE kind = $1 AND sealed IS NULL AND expires_at > $2 \
             AND ($3::bigint IS NULL OR id = $3) ORDER BY id",
        )
        .bind(kind_word(MailKind::Reset))
        .bind(now)
        .bind(id.map(|id| id as i64))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.failed(e))?;
        Ok(rows.into_iter().map(|(id, to)| (id as u64, to)).collect())
    }

    async fn forget_dead(&self, id: u64) -> Result<bool, Error> {
        let gone = sqlx::query("DELETE FROM dead_letters WHERE id = $1")
            .bind(id as i64)
            .execute(&self.pool)
            .await
            .map_err(|e| self.failed(e))?;
        Ok(gone.rows_affected() == 1)
    }

    async fn prune_dead(&self, before: i64) -> Result<usize, Error> {
        let gone = sqlx::query("DELETE FROM dead_letters WHERE died_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await
            .map_err(|e| self.failed(e))?;
        Ok(gone.rows_affected() as usize)
    }

    async fn purge_dead(&self) -> Result<usize, Error> {
        let gone = sqlx::query("DELETE FROM dead_letters")
            .execute(&self.pool)
            .await
            .map_err(|e| self.failed(e))?;
        Ok(gone.rows_affected() as usize)
    }

    async fn outbox_figures(&self) -> Result<QueueFigures, Error> {
        type Row = (i64, Option<i64>, Option<String>, i64, i64, i64, i64);
        let (depth, oldest, last_error, dead, delivered, failures, hold_until): Row = sqlx::query_as(
            "SELECT (SELECT count(*) FROM outbox), (SELECT min(created_at) FROM outbox), s.last_error, \
             (SELECT count(*) FROM dead_letters), \
             COALESCE((SELECT sum(value) FROM counters WHERE name = 'outbox.delivered'), 0)::bigint, \
             COALESCE((SELECT sum(value) FROM counters WHERE name = 'outbox.failures'), 0)::bigint, \
             s.hold_until FROM outbox_state AS s",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(|e| self.failed(e))?;
        Ok(QueueFigures {
            depth: depth as usize,
            oldest_created_at: oldest,
            last_error,
            dead: dead as usize,
            delivered: delivered as u64,
            failures: failures as u64,
            server_hold_until: (hold_until != 0).then_some(hold_until),
        })
    }
}
