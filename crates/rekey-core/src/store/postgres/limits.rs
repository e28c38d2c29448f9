//! Rate limits in PostgreSQL: one row per key, changed by one statement each,
//! so instances counting the same key at once serialise on its row.

use async_trait::async_trait;

use super::PgStore;
use crate::error::Error;
use crate::limits::{Decision, RateLimit};
use crate::store::LimitSteps;

#[async_trait]
impl LimitSteps for PgStore {
    async fn take(&self, limit: RateLimit, key: &str, now: i64) -> Result<Result<(), i64>, Error> {
        let RateLimit::Per { count, period_secs } = limit else {
            return Ok(Ok(()));
        };
        let (now_ms, period_ms) = (now * 1000, period_secs * 1000);
        let interval_ms = period_ms / count as i64;
        // GCRA in one upsert: the new arrival time is written only where it lets the event
        // through (RateLimit::decide, in SQL); a refusal returns no row and writes nothing.
        let allowed: Option<i64> = sqlx::query_scalar(
            "INSERT INTO limits AS l (key, tat_ms) VALUES ($1, $2 + $3) \
             ON CONFLICT (key) DO UPDATE SET tat_ms = GREATEST(l.tat_ms, $2) + $3 \
             WHERE GREATEST(l.tat_ms, $2) + $3 - $4 <= $2 \
             RETURNING tat_ms",
        )
        .bind(key)
        .bind(now_ms)
        .bind(interval_ms)
        .bind(period_ms)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.failed(e))?;
        if allowed.is_some() {
            return Ok(Ok(()));
        }
        let stored: Option<i64> = sqlx::query_scalar("SELECT tat_ms FROM limits WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.failed(e))?;
        Ok(match limit.decide(stored, now) {
            Decision::Deny { retry_after } => Err(retry_after),
            // Let through meanwhile (a refund, or time passed): say so next time.
            Decision::Allow(_) => Err(1),
        })
    }

    async fn refund(&self, limit: RateLimit, key: &str, now: i64) -> Result<(), Error> {
        let RateLimit::Per { count, period_secs } = limit else {
            return Ok(());
        };
        let interval_ms = period_secs * 1000 / count as i64;
        sqlx::query("UPDATE limits SET tat_ms = GREATEST(tat_ms - $2, $3) WHERE key = $1")
            .bind(key)
            .bind(interval_ms)
            .bind(now * 1000)
            .execute(&self.pool)
            .await
            .map_err(|e| self.failed(e))?;
        Ok(())
    }

    async fn clear(&self, key: &str) -> Result<(), Error> {
        sqlx::query("DELETE FROM limits WHERE key = $1")
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(|e| self.failed(e))?;
        Ok(())
    }

    async fn remember(&self, key: &str, until: i64) -> Result<(), Error> {
        sqlx::query("INSERT INTO limits (key, tat_ms) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET tat_ms = $2")
            .bind(key)
            .bind(until * 1000)
            .execute(&self.pool)
            .await
            .map_err(|e| self.failed(e))?;
        Ok(())
    }

    async fn remembered(&self, key: &str, now: i64) -> Result<bool, Error> {
        let until: Option<i64> = sqlx::query_scalar("SELECT tat_ms FROM limits WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.failed(e))?;
        Ok(until.is_some_and(|until| until > now * 1000))
    }
}
