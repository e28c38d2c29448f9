//! Writing an install's records into an empty database (`rekeyd db copy`).

use super::accounts::retired_word;
use super::registration::put_code_tx;
use super::resets::Queue;
use super::PgStore;
use crate::error::Error;
use crate::letters::Letter;
use crate::store::copy::Records;
use crate::store::{encode, seq_key};

impl PgStore {
    /// Writes `records` and the signing keys (`signing_keys`, as `keys.json` holds them) into
    /// this database, in one transaction: all of it or, on any failure, nothing. Refused when
    /// the database holds accounts already, so a second copy cannot mix two installs.
    pub async fn import(&self, records: &Records, signing_keys: &str) -> Result<(), Error> {
        let fail = |e| self.failed(e);
        let mut tx = self.pool.begin().await.map_err(fail)?;
        let accounts: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
            .fetch_one(&mut *tx)
            .await
            .map_err(fail)?;
        if accounts > 0 {
            return Err(Error::Setup(format!(
                "the database at {} holds {accounts} accounts already: copy into an empty database",
                self.place
            )));
        }
        for user in &records.users {
            self.insert_user_tx(&mut tx, user).await?;
        }
        for (user_id, live) in &records.resets {
            sqlx::query("INSERT INTO resets (user_id, jti, kid, issued_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(user_id)
                .bind(&live.jti)
                .bind(&live.kid)
                .bind(live.issued_at)
                .bind(live.expires_at)
                .execute(&mut *tx)
                .await
                .map_err(fail)?;
        }
        for (jti, retired) in &records.retired {
            sqlx::query("INSERT INTO retired (jti, why, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                .bind(jti)
                .bind(retired_word(retired.why))
                .bind(retired.expires_at)
                .execute(&mut *tx)
                .await
                .map_err(fail)?;
        }
        for (key, code) in &records.codes {
            put_code_tx(self, &mut tx, key, code).await?;
        }
        for (key, session) in &records.sessions {
            sqlx::query("INSERT INTO sessions (key, user_id, stamp, expires_at) VALUES ($1, $2, $3, $4)")
                .bind(key)
                .bind(&session.user_id)
                .bind(&session.stamp)
                .bind(session.expires_at)
                .execute(&mut *tx)
                .await
                .map_err(fail)?;
        }
        for p in &records.pending {
            self.insert_pending_tx(&mut tx, p).await?;
        }
        for request in &records.intake {
            sqlx::query("INSERT INTO intake (record) VALUES ($1)")
                .bind(String::from_utf8_lossy(&encode(request)).into_owned())
                .execute(&mut *tx)
                .await
                .map_err(fail)?;
        }
        for (key, tat_ms) in &records.limits {
            sqlx::query("INSERT INTO limits (key, tat_ms) VALUES ($1, $2)")
                .bind(key)
                .bind(tat_ms)
                .execute(&mut *tx)
                .await
                .map_err(fail)?;
        }
        // Sealed again with this database's key, under a new id (the seal's associated data).
        for (item, message) in &records.mail {
            let letter = Letter {
                from: item.from.clone(),
                to: item.to.clone(),
                raw: message.clone(),
            };
            let id = self
                .enqueue_into_tx(
                    &mut tx,
                    Queue::Mail,
                    &letter,
                    item.kind,
                    item.created_at,
                    item.expires_at,
                )
                .await?;
            sqlx::query("UPDATE outbox SET attempts = $2, next_attempt_at = $3, last_error = $4 WHERE id = $1")
                .bind(id)
                .bind(item.attempts as i32)
                .bind(item.next_attempt_at)
                .bind(&item.last_error)
                .execute(&mut *tx)
                .await
                .map_err(fail)?;
        }
        // Dead letters too, under new ids, their messages (where kept) sealed again.
        for (dead, message) in &records.dead {
            let id: i64 = sqlx::query_scalar("SELECT nextval('outbox_ids')")
                .fetch_one(&mut *tx)
                .await
                .map_err(fail)?;
            let mut dead = dead.clone();
            dead.item.id = id as u64;
            dead.item.raw = None;
            dead.item.sealed = message.as_ref().map(|m| self.mail_key.seal(m, &seq_key(id as u64)));
            self.insert_dead_tx(&mut tx, &dead).await?;
        }
        for (name, value) in &records.counters {
            sqlx::query(
                "INSERT INTO counters AS c (name, value) VALUES ($1, $2) \
                 ON CONFLICT (name, shard) DO UPDATE SET value = c.value + EXCLUDED.value",
            )
            .bind(name)
            .bind(*value as i64)
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        }
        for event in &records.audit {
            self.append_event_tx(&mut tx, event).await?;
        }
        if let Some(id) = &records.install_id {
            sqlx::query(
                "INSERT INTO meta (name, value) VALUES ('install_id', $1) \
                 ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
            )
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        }
        for issuer in &records.issuers {
            sqlx::query("INSERT INTO issuers (issuer) VALUES ($1) ON CONFLICT DO NOTHING")
                .bind(issuer)
                .execute(&mut *tx)
                .await
                .map_err(fail)?;
        }
        sqlx::query(
            "INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
        )
        .bind(crate::service::SIGNING_KEYS)
        .bind(signing_keys)
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
        tx.commit().await.map_err(fail)
    }
}
