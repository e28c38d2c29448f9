//! What a PostgreSQL store keeps besides records: counters, the install's identity, its
//! shared secrets, and pruning done once for every instance.

use async_trait::async_trait;

use super::PgStore;
use crate::error::Error;
use crate::store::steps::PRUNE_EVERY_SECS;
use crate::store::StoreSteps;

/// Rows each counter (and the strangers' stand-in rate limit) is spread over (see migration
/// 0007).
const COUNTER_SHARDS: i16 = 16;

/// The row of its counter a count goes to: any, so that steps committing at once seldom
/// wait for each other's.
pub(super) fn counter_shard() -> i16 {
    rand::Rng::gen_range(&mut rand::thread_rng(), 0..COUNTER_SHARDS)
}

#[async_trait]
impl StoreSteps for PgStore {
    async fn flush(&self) -> Result<(), Error> {
        // Every step committed durably already.
        Ok(())
    }

    async fn bump(&self, name: &str) -> Result<u64, Error> {
        let value: i64 = sqlx::query_scalar(
            "WITH bumped AS (INSERT INTO counters AS c (name, shard, value) VALUES ($1, $2, 1) \
                             ON CONFLICT (name, shard) DO UPDATE SET value = c.value + 1 RETURNING value) \
             SELECT (SELECT value FROM bumped) \
                    + COALESCE((SELECT sum(value) FROM counters WHERE name = $1 AND shard <> $2), 0)::bigint",
        )
        .bind(name)
        .bind(counter_shard())
        .fetch_one(&self.pool)
        .await
        .map_err(|e| self.failed(e))?;
        Ok(value as u64)
    }

    async fn counter(&self, name: &str) -> Result<u64, Error> {
        let value: i64 = sqlx::query_scalar("SELECT COALESCE(sum(value), 0)::bigint FROM counters WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.failed(e))?;
        Ok(value as u64)
    }

    async fn install_id(&self, fresh_id: &str) -> Result<String, Error> {
        self.meta_or_insert("install_id", fresh_id).await
    }

    async fn issuers(&self, issuer: &str) -> Result<Vec<String>, Error> {
        sqlx::query("INSERT INTO issuers (issuer) VALUES ($1) ON CONFLICT DO NOTHING")
            .bind(issuer)
            .execute(&self.pool)
            .await
            .map_err(|e| self.failed(e))?;
        sqlx::query_scalar("SELECT issuer FROM issuers ORDER BY added")
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.failed(e))
    }

    async fn prune(&self, now: i64, audit_keep: usize) -> Result<usize, Error> {
        let mut tx = self.pool.begin().await.map_err(|e| self.failed(e))?;
        // Once for every instance: the first to move `pruned_at` forward does the work, and
        // the row's lock holds the others' tries until it commits, when they find it moved.
        let mine: Option<String> = sqlx::query_scalar(
            "INSERT INTO meta AS m (name, value) VALUES ('pruned_at', $1::text) ON CONFLICT (name) \
             DO UPDATE SET value = EXCLUDED.value WHERE m.value::bigint <= $1 - $2 RETURNING value",
        )
        .bind(now)
        .bind(PRUNE_EVERY_SECS * 9 / 10)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| self.failed(e))?;
        if mine.is_none() {
            return Ok(0);
        }
        let leeway = crate::token::LEEWAY;
        let statements: [(&str, i64); 7] = [
            ("DELETE FROM resets WHERE expires_at < $1", now - leeway),
            ("DELETE FROM codes WHERE until < $1", now),
            ("DELETE FROM retired WHERE expires_at < $1", now - leeway),
            ("DELETE FROM sessions WHERE expires_at < $1", now),
            ("DELETE FROM pending WHERE expires_at < $1", now - leeway),
            // A key whose arrival time has passed allows a full burst again: same as absent.
            ("DELETE FROM limits WHERE tat_ms < $1", now * 1000),
            // The newest events stay: a flood of requests must not fill the disk.
            (
                "DELETE FROM audit WHERE id <= (SELECT id FROM audit ORDER BY id DESC OFFSET $1 LIMIT 1)",
                audit_keep as i64,
            ),
        ];
        let mut n = 0;
        for (statement, bound) in statements {
            let done = sqlx::query(statement)
                .bind(bound)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.failed(e))?;
            n += done.rows_affected() as usize;
        }
        tx.commit().await.map_err(|e| self.failed(e))?;
        Ok(n)
    }
}

impl PgStore {
    /// The named value, set to `value` first if it has none (the first instance's wins).
    pub(super) async fn meta_or_insert(&self, name: &str, value: &str) -> Result<String, Error> {
        self.first_written("meta", name, value).await
    }

    /// The named secret (the signing keys, the mail key), set to `fresh` first if there is
    /// none: instances starting together agree on the first one written.
    pub async fn secret(&self, name: &str, fresh: &str) -> Result<String, Error> {
        self.first_written("secrets", name, fresh).await
    }

    /// `table`'s value for `name`, written as `value` when there is none. Instances starting
    /// at once race here: the loser's insert waits for the winner's and does nothing, and its
    /// statement's snapshot, taken before the winner committed, cannot see the winner's row
    /// either; the next statement can.
    async fn first_written(&self, table: &'static str, name: &str, value: &str) -> Result<String, Error> {
        let sql = format!(
            "WITH put AS (INSERT INTO {table} (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING value) \
             SELECT value FROM put UNION ALL SELECT value FROM {table} WHERE name = $1 LIMIT 1"
        );
        for _ in 0..3 {
            let found: Option<String> = sqlx::query_scalar(&sql)
                .bind(name)
                .bind(value)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.failed(e))?;
            if let Some(found) = found {
                return Ok(found);
            }
        }
        Err(crate::error::internal(
            "the database",
            format!("{table}.{name} neither written nor read"),
        ))
    }

    /// Replaces the named secret with `new` if it is still `old`; says whether it did (an
    /// instance that lost a race to rotate reads the winner's and tries again).
    pub async fn swap_secret(&self, name: &str, old: &str, new: &str) -> Result<bool, Error> {
        let done = sqlx::query("UPDATE secrets SET value = $3 WHERE name = $1 AND value = $2")
            .bind(name)
            .bind(old)
            .bind(new)
            .execute(&self.pool)
            .await
            .map_err(|e| self.failed(e))?;
        Ok(done.rows_affected() == 1)
    }
}
