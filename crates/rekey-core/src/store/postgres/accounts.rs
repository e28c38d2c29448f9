//! Accounts, sessions and the audit trail in PostgreSQL. A password change is one
//! transaction: the reset consumed by a conditional `DELETE`, the account changed by an
//! `UPDATE … WHERE stamp = …`, the notice queued and the event written; a second confirm of
//! the same link waits for the first's row lock and then finds nothing to delete.

use async_trait::async_trait;
use sqlx::{Postgres, Transaction};

use super::PgStore;
use crate::audit::AuditEvent;
use crate::error::Error;
use crate::letters::Letter;
use crate::outbox::MailKind;
use crate::store::steps::{NewPassword, PasswordSet};
use crate::store::{AccountSteps, MailSetting, Retired, Session, User};

const USER_COLUMNS: &str = "id, email, password_hash, stamp, disabled, created_at, locale, time_zone";

type UserRow = (
    String,
    String,
    String,
    String,
    bool,
    i64,
    Option<String>,
    Option<String>,
);

fn user(row: UserRow) -> User {
    let (id, email, password_hash, stamp, disabled, created_at, locale, time_zone) = row;
    User {
        id,
        email,
        password_hash,
        stamp,
        disabled,
        created_at,
        locale,
        time_zone,
    }
}

/// The word a retired link is kept under.
pub(super) fn retired_word(why: Retired) -> &'static str {
    match why {
        Retired::Used => "used",
        Retired::Replaced => "replaced",
        Retired::Burned => "burned",
    }
}

pub(super) fn retired_from_word(word: &str) -> Retired {
    match word {
        "used" => Retired::Used,
        "burned" => Retired::Burned,
        _ => Retired::Replaced,
    }
}

pub(super) fn kind_word(kind: MailKind) -> &'static str {
    match kind {
        MailKind::Reset => "reset",
        MailKind::PasswordChanged => "password_changed",
        MailKind::Verify => "verify",
        MailKind::AccountExists => "account_exists",
        MailKind::Test => "test",
    }
}

impl PgStore {
    /// Writes an audit event inside `tx`.
    pub(super) async fn append_event_tx(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        event: &AuditEvent,
    ) -> Result<(), Error> {
        sqlx::query("INSERT INTO audit (at, kind, user_id, client, detail) VALUES ($1, $2, $3, $4, $5)")
            .bind(event.at)
            .bind(&event.kind)
            .bind(&event.user_id)
            .bind(&event.client)
            .bind(&event.detail)
            .execute(&mut **tx)
            .await
            .map_err(|e| self.failed(e))?;
        Ok(())
    }

    /// Queues a letter to be sent inside `tx` (see [`PgStore::enqueue_into_tx`]).
    pub(super) async fn enqueue_tx(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        letter: &Letter,
        kind: MailKind,
        now: i64,
        expires_at: Option<i64>,
    ) -> Result<i64, Error> {
        self.enqueue_into_tx(tx, super::resets::Queue::Mail, letter, kind, now, expires_at)
            .await
    }

    /// Creates the account inside `tx`, unless its address has one ([`Error::EmailTaken`]:
    /// the caller's transaction then rolls back).
    pub(super) async fn insert_user_tx(&self, tx: &mut Transaction<'_, Postgres>, user: &User) -> Result<(), Error> {
        let created = sqlx::query(&format!(
            "INSERT INTO users ({USER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (email) DO NOTHING"
        ))
        .bind(&user.id)
        .bind(&user.email)
        .bind(&user.password_hash)
        .bind(&user.stamp)
        .bind(user.disabled)
        .bind(user.created_at)
        .bind(&user.locale)
        .bind(&user.time_zone)
        .execute(&mut **tx)
        .await
        .map_err(|e| self.failed(e))?;
        if created.rows_affected() == 0 {
            return Err(Error::EmailTaken);
        }
        Ok(())
    }

    async fn begin(&self) -> Result<Transaction<'_, Postgres>, Error> {
        self.pool.begin().await.map_err(|e| self.failed(e))
    }
}

#[async_trait]
impl AccountSteps for PgStore {
    async fn user_by_email(&self, email: &str) -> Result<Option<User>, Error> {
        let row: Option<UserRow> = sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1"))
            .bind(email)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.failed(e))?;
        Ok(row.map(user))
    }

    async fn users_by_email(&self, emails: &[String]) -> Result<Vec<User>, Error> {
        let rows: Vec<UserRow> = sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE email = ANY($1)"))
            .bind(emails)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.failed(e))?;
        Ok(rows.into_iter().map(user).collect())
    }

    async fn user(&self, id: &str) -> Result<Option<User>, Error> {
        let row: Option<UserRow> = sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.failed(e))?;
        Ok(row.map(user))
    }

    async fn users(&self) -> Result<Vec<User>, Error> {
        let rows: Vec<UserRow> = sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users"))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.failed(e))?;
        Ok(rows.into_iter().map(user).collect())
    }

    async fn create_user(&self, user: &User, event: &AuditEvent) -> Result<(), Error> {
        let mut tx = self.begin().await?;
        self.insert_user_tx(&mut tx, user).await?;
        self.append_event_tx(&mut tx, event).await?;
        tx.commit().await.map_err(|e| self.failed(e))
    }

    async fn replace_hash(&self, user_id: &str, old: &str, new: &str) -> Result<bool, Error> {
        let done = sqlx::query("UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2")
            .bind(user_id)
            .bind(old)
            .bind(new)
            .execute(&self.pool)
            .await
            .map_err(|e| self.failed(e))?;
        Ok(done.rows_affected() == 1)
    }

    async fn set_password(&self, change: NewPassword<'_>) -> Result<PasswordSet, Error> {
        let mut tx = self.begin().await?;
        if let Some(live) = change.consume {
            // The conditional delete is the single use: of two confirms, the second waits on
            // the first's lock and then finds no row.
            let consumed = sqlx::query("DELETE FROM resets WHERE user_id = $1 AND jti = $2")
                .bind(change.user_id)
                .bind(&live.jti)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.failed(e))?;
            if consumed.rows_affected() == 0 {
                let why: Option<String> = sqlx::query_scalar("SELECT why FROM retired WHERE jti = $1")
                    .bind(&live.jti)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(|e| self.failed(e))?;
                if let Some(why) = why {
                    return Err(retired_from_word(&why).into());
                }
                // No reset, none retired: a password change (or a disable) dropped it.
                let stamp: Option<String> = sqlx::query_scalar("SELECT stamp FROM users WHERE id = $1")
                    .bind(change.user_id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(|e| self.failed(e))?;
                return Err(if stamp.as_deref() == Some(change.expected_stamp) {
                    Error::TokenReplaced
                } else {
                    Error::TokenStale
                });
            }
            sqlx::query(
                "INSERT INTO retired (jti, why, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (jti) DO UPDATE SET why = EXCLUDED.why",
            )
            .bind(&live.jti)
            .bind(retired_word(Retired::Used))
            .bind(live.expires_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.failed(e))?;
        }
        // The hash before, read under the row's lock in the same statement that changes it.
        type Changed = (
            String,
            String,
            String,
            String,
            String,
            bool,
            i64,
            Option<String>,
            Option<String>,
        );
        let row: Option<Changed> = sqlx::query_as(
            "UPDATE users AS u SET password_hash = $3, stamp = $4 \
             FROM (SELECT id, password_hash FROM users WHERE id = $1 FOR UPDATE) AS before \
             WHERE u.id = before.id AND u.stamp = $2 \
             RETURNING before.password_hash, u.id, u.email, u.password_hash, u.stamp, u.disabled, u.created_at, u.locale, u.time_zone",
        )
        .bind(change.user_id)
        .bind(change.expected_stamp)
        .bind(&change.hash)
        .bind(&change.stamp)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| self.failed(e))?;
        let Some((old_hash, id, email, hash, stamp, disabled, created_at, locale, time_zone)) = row else {
            return Err(Error::TokenStale);
        };
        sqlx::query("DELETE FROM resets WHERE user_id = $1")
            .bind(change.user_id)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.failed(e))?;
        self.enqueue_tx(&mut tx, change.notice, MailKind::PasswordChanged, change.now, None)
            .await?;
        self.append_event_tx(&mut tx, change.event).await?;
        tx.commit().await.map_err(|e| self.failed(e))?;
        Ok(PasswordSet {
            user: user((id, email, hash, stamp, disabled, created_at, locale, time_zone)),
            old_hash,
        })
    }

    async fn set_mail_setting(
        &self,
        user_id: &str,
        setting: MailSetting<'_>,
        event: &AuditEvent,
    ) -> Result<bool, Error> {
        let (column, value) = match setting {
            MailSetting::Locale(locale) => ("locale", locale),
            MailSetting::TimeZone(zone) => ("time_zone", zone),
        };
        let mut tx = self.begin().await?;
        let changed = sqlx::query(&format!("UPDATE users SET {column} = $2 WHERE id = $1"))
            .bind(user_id)
            .bind(value)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.failed(e))?;
        if changed.rows_affected() == 0 {
            return Ok(false);
        }
        self.append_event_tx(&mut tx, event).await?;
        tx.commit().await.map_err(|e| self.failed(e))?;
        Ok(true)
    }

    async fn set_disabled(
        &self,
        user_id: &str,
        disabled: bool,
        new_stamp: Option<String>,
        event: &AuditEvent,
    ) -> Result<Option<User>, Error> {
        let mut tx = self.begin().await?;
        let row: Option<UserRow> = sqlx::query_as(&format!(
            "UPDATE users SET disabled = $2, stamp = COALESCE($3, stamp) WHERE id = $1 RETURNING {USER_COLUMNS}"
        ))
        .bind(user_id)
        .bind(disabled)
        .bind(&new_stamp)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| self.failed(e))?;
        let Some(row) = row else {
            return Ok(None);
        };
        if new_stamp.is_some() {
            sqlx::query("DELETE FROM resets WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.failed(e))?;
        }
        self.append_event_tx(&mut tx, event).await?;
        tx.commit().await.map_err(|e| self.failed(e))?;
        Ok(Some(user(row)))
    }

    async fn put_session(&self, key: &[u8], session: &Session) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO sessions (key, user_id, stamp, expires_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (key) DO UPDATE SET user_id = EXCLUDED.user_id, stamp = EXCLUDED.stamp, \
             expires_at = EXCLUDED.expires_at",
        )
        .bind(key)
        .bind(&session.user_id)
        .bind(&session.stamp)
        .bind(session.expires_at)
        .execute(&self.pool)
        .await
        .map_err(|e| self.failed(e))?;
        Ok(())
    }

    async fn session(&self, key: &[u8]) -> Result<Option<Session>, Error> {
        let row: Option<(String, String, i64)> =
            sqlx::query_as("SELECT user_id, stamp, expires_at FROM sessions WHERE key = $1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.failed(e))?;
        Ok(row.map(|(user_id, stamp, expires_at)| Session {
            user_id,
            stamp,
            expires_at,
        }))
    }

    async fn end_session(&self, key: &[u8]) -> Result<(), Error> {
        sqlx::query("DELETE FROM sessions WHERE key = $1")
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(|e| self.failed(e))?;
        Ok(())
    }

    async fn append_event(&self, event: &AuditEvent) -> Result<(), Error> {
        let mut tx = self.begin().await?;
        self.append_event_tx(&mut tx, event).await?;
        tx.commit().await.map_err(|e| self.failed(e))
    }

    async fn recent_events(&self, n: usize) -> Result<Vec<AuditEvent>, Error> {
        let rows: Vec<(i64, String, Option<String>, Option<String>, String)> = sqlx::query_as(
            "SELECT at, kind, user_id, client, detail FROM \
             (SELECT * FROM audit ORDER BY id DESC LIMIT $1) AS last ORDER BY id",
        )
        .bind(n as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.failed(e))?;
        Ok(rows
            .into_iter()
            .map(|(at, kind, user_id, client, detail)| AuditEvent {
                at,
                kind,
                user_id,
                client,
                detail,
            })
            .collect())
    }
}
