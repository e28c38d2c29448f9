//! The PostgreSQL store, for an install that runs several rekeyd on one database.
//!
//! Every step is one transaction (or one statement) whose conditions are checked by the
//! database itself: single use by a conditional `DELETE … WHERE jti = …`, a stamp by
//! `UPDATE … WHERE stamp = …`, a rate limit by one upsert. So the steps hold with any number
//! of instances, not only between the threads of one. A committed step is durable: there is
//! nothing to flush.
//!
//! The schema is embedded (`migrations/`) and brought up to date at connect.

mod accounts;
mod copy;
mod limits;
mod meta;
mod outbox;
mod registration;
mod resets;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection};

use super::StoreError;
use crate::error::Error;
use crate::sealed::MailKey;

/// The secret that holds the mail key (see [`PgStore::secret`]).
const MAIL_KEY: &str = "mail_key";

/// The oldest PostgreSQL the schema and its statements are written for.
pub const OLDEST_VERSION: i32 = 13;

/// How long a caller waits for a connection from the pool before it is told the database
/// cannot be reached (a request's own timeout is longer).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A pool of connections to one PostgreSQL database.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    /// Seals the mail that steps queue.
    mail_key: MailKey,
    /// `host:port/database`, for words in errors (never the password).
    place: String,
    /// Outbox ids taken from the sequence ahead, a few at a time (see
    /// [`PgStore::next_outbox_id`]).
    outbox_ids: Arc<Mutex<Vec<i64>>>,
}

impl PgStore {
    /// Connects to `url` (`postgres://user:password@host:port/database?sslmode=…`) with a
    /// pool of at most `pool_size` connections, checks the server's version, brings the
    /// schema up to date and reads the mail key every instance shares (made by the first).
    /// Every failure comes back in words that name the database and what to do.
    pub async fn connect(url: &str, pool_size: u32) -> Result<PgStore, StoreError> {
        let not_postgres = |why: &dyn std::fmt::Display| {
            StoreError::Database(format!(
                "database_url is not a PostgreSQL address like postgres://user:password@host:5432/rekey: {why}"
            ))
        };
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(not_postgres(&"it must start with postgres://"));
        }
        let options: PgConnectOptions = url.parse().map_err(|e| not_postgres(&e))?;
        let place = format!(
            "{}:{}/{}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or("(the user's database)")
        );
        // One connection first, made by hand: a pool retries a refused connection until its
        // timeout and then says only that it timed out, where this says why.
        let silent = || StoreError::Database(connect_words(&place, &sqlx::Error::PoolTimedOut));
        let mut first = tokio::time::timeout(ACQUIRE_TIMEOUT, options.connect())
            .await
            .map_err(|_| silent())?
            .map_err(|e| StoreError::Database(connect_words(&place, &e)))?;
        let version: i32 = sqlx::query_scalar("SELECT current_setting('server_version_num')::int")
            .fetch_one(&mut first)
            .await
            .map_err(|e| StoreError::Database(connect_words(&place, &e)))?;
        if version / 10_000 < OLDEST_VERSION {
            return Err(StoreError::Database(format!(
                "the database at {place} runs PostgreSQL {}.{}; Rekey needs PostgreSQL {OLDEST_VERSION} or newer",
                version / 10_000,
                version % 10_000
            )));
        }
        // Several instances starting at once: the migrator takes an advisory lock, so one
        // migrates and the others find the schema in place.
        MIGRATOR.run(&mut first).await.map_err(|e| {
            StoreError::Database(format!(
                "the schema of the database at {place} could not be brought up to date: {e}"
            ))
        })?;
        let _ = first.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(pool_size.max(1))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy_with(options);
        let mut store = PgStore {
            pool,
            // Replaced below: the steps that read the shared key need a store to run on.
            mail_key: MailKey::from_base64(&MailKey::random_base64()).expect("a fresh key"),
            place,
            outbox_ids: Arc::default(),
        };
        let shared = store
            .secret(MAIL_KEY, &MailKey::random_base64())
            .await
            .map_err(|e| StoreError::Database(e.message()))?;
        store.mail_key = MailKey::from_base64(&shared).map_err(|e| {
            StoreError::Database(format!(
                "the mail key kept in the database at {} is unusable: {e}",
                store.place
            ))
        })?;
        Ok(store)
    }

    /// The key queued mail is sealed with, shared by every instance.
    pub fn mail_key(&self) -> &MailKey {
        &self.mail_key
    }

    /// Where the store is, in words (`host:port/database`).
    pub fn place(&self) -> &str {
        &self.place
    }

    /// The schema versions this build brings, oldest first.
    pub fn known_migrations() -> Vec<i64> {
        MIGRATOR.iter().map(|m| m.version).collect()
    }

    /// The schema versions applied, oldest first (for `rekeyd db migrate`).
    pub async fn applied_migrations(&self) -> Result<Vec<i64>, Error> {
        let versions = sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.failed(e))?;
        Ok(versions)
    }

    /// Turns a failure during a step into Rekey's error: trouble reaching the database is
    /// [`Error::StoreUnavailable`] (the pool reconnects by itself when it is back), anything
    /// else internal. Both are logged with the database's place.
    fn failed(&self, e: sqlx::Error) -> Error {
        let unreachable = matches!(
            e,
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Tls(_)
        ) || matches!(&e, sqlx::Error::Database(d) if d.code().is_some_and(|c| c.starts_with("57P") || c.starts_with("08")));
        if unreachable {
            StoreError::Unreachable(format!("the database at {}: {e}", self.place)).into()
        } else {
            crate::error::internal(&format!("the database at {}", self.place), e)
        }
    }
}

/// Words for a failure to connect: what went wrong, with which database, and what to check.
fn connect_words(place: &str, e: &sqlx::Error) -> String {
    let tls_words = |why: &dyn std::fmt::Display| {
        format!(
            "the TLS connection to the database at {place} failed ({why}): check sslmode and sslrootcert in database_url"
        )
    };
    match e {
        // rustls' refusals of the server's certificate come back as I/O errors.
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::InvalidData || io.to_string().contains("certificate") => {
            tls_words(io)
        }
        sqlx::Error::Io(io) => format!(
            "cannot reach the database at {place} ({io}): check that PostgreSQL is running there and that database_url names the right host and port"
        ),
        sqlx::Error::PoolTimedOut => format!(
            "the database at {place} did not answer within {} s: check that PostgreSQL is running and reachable from here",
            ACQUIRE_TIMEOUT.as_secs()
        ),
        sqlx::Error::Tls(tls) => tls_words(tls),
        sqlx::Error::Database(d) => match d.code().as_deref() {
            Some("28P01") | Some("28000") => format!(
                "the database at {place} refused the login ({}): check the user and password in database_url",
                d.message()
            ),
            Some("3D000") => format!(
                "there is no such database at {place} ({}): create it (createdb) or fix the name in database_url",
                d.message()
            ),
            _ => format!("the database at {place} refused the connection: {}", d.message()),
        },
        e => format!("cannot use the database at {place}: {e}"),
    }
}
