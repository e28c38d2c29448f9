//! [`Rekey`]: the one object the fronts hold. It opens the store, loads the signing keys,
//! builds the mail transport, and runs the flows in [`accounts`] and [`reset`].

pub mod accounts;
pub mod codes;
mod decoys;
pub mod registration;
pub mod reset;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use sled::transaction::{TransactionError, TransactionResult};
use tokio::sync::{watch, Notify};

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::error::{internal, Error};
use crate::hasher::Hasher;
use crate::mailer::Mailer;
use crate::outbox::Outbox;
use crate::password::Policy;
use crate::sealed::MailKey;
use crate::store::Store;
use crate::token::KeyRing;

pub use accounts::{SessionToken, UserInfo};
pub use codes::Proof;
pub use registration::{VerifyProof, VerifyTarget};
pub use reset::ResetProof;

/// Rekey's service: accounts, resets and the outbox over one data directory.
pub struct Rekey {
    config: Config,
    store: Store,
    keys: RwLock<KeyRing>,
    hasher: Hasher,
    policy: Policy,
    clock: Arc<dyn Clock>,
    outbox: Outbox,
    intake_wake: Arc<Notify>,
    intake_depth: IntakeDepth,
    install_id: String,
    /// Seals queued mail.
    mail_key: MailKey,
    /// Events of real accounts, written by the worker.
    tally: crate::audit::Tally,
    /// The accounts' hash parameters, which decoys are drawn from.
    population: decoys::Population,
    /// An account record read when an address has none, so a sign-in for a stranger reads
    /// and decodes what a sign-in for an account does.
    user_stand_in: Vec<u8>,
    /// The code record read for an address with no reset: a stand-in of a real record's
    /// shape and size (see `reset::check_code`).
    code_stand_in: Vec<u8>,
}

/// How long the worker waits after a request wakes it, in milliseconds (a random point in the
/// range): work that only a real account causes, started at once, competes with the answer
/// still being written and shows in its timing; after a pause it falls on whatever comes next.
const AFTER_ANSWER_MS: std::ops::Range<u64> = 100..300;

/// How many requests (resets, registrations) wait for the worker. Kept in memory because sled's `len` walks
/// the whole tree, which the request path cannot afford under a flood; counted once at open.
struct IntakeDepth(AtomicUsize);

impl IntakeDepth {
    /// Counts one more request unless `limit` are already waiting.
    fn try_add(&self, limit: usize) -> bool {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < limit).then_some(n + 1))
            .is_ok()
    }

    /// Counts one request handled (or never written).
    fn remove(&self) {
        let _ = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| Some(n.saturating_sub(1)));
    }
}

impl Rekey {
    /// Opens Rekey on `config` with the wall clock. `program` names this process in the
    /// "data directory in use" message others see (`rekeyd serve`, `the Rekey app`).
    pub fn open(config: Config, program: &str) -> Result<Rekey, Error> {
        Self::open_with_clock(config, program, Arc::new(SystemClock))
    }

    /// Opens Rekey with a given clock (tests move time with [`crate::ManualClock`]).
    pub fn open_with_clock(config: Config, program: &str, clock: Arc<dyn Clock>) -> Result<Rekey, Error> {
        let now = clock.now();
        let store = Store::open(&config.data_dir, program, now)?;
        let keys = KeyRing::load_or_create(&config.data_dir, now).map_err(|e| Error::Setup(e.to_string()))?;
        let mailer = Mailer::from_config(&config).map_err(|e| Error::Setup(e.to_string()))?;
        let mail_key = MailKey::load_or_create(&config.data_dir).map_err(|e| Error::Setup(e.to_string()))?;
        let outbox = Outbox::new(
            store.clone(),
            mail_key.clone(),
            mailer,
            clock.clone(),
            config.smtp_pool_size as usize,
        );
        let install_id = match store.meta.get("install_id")? {
            Some(v) => String::from_utf8_lossy(&v).into_owned(),
            None => {
                let id = format!("install-{}", crate::token::random_id());
                store.meta.insert("install_id", id.as_bytes())?;
                id
            }
        };
        // Which Rekey issued a link: the configured name, the public address, or (a desktop
        // store, a server with neither) this install's own id.
        let issuer = config
            .issuer
            .clone()
            .or_else(|| {
                config
                    .public_url
                    .as_ref()
                    .map(|u| u.as_str().trim_end_matches('/').to_string())
            })
            .unwrap_or_else(|| format!("rekey:{install_id}"));
        // Every issuer this store has had: a link mailed before `public_url` changed still works.
        let mut issuers: Vec<String> = store
            .meta
            .get("issuers")?
            .and_then(|v| serde_json::from_slice(&v).ok())
            .unwrap_or_default();
        if !issuers.contains(&issuer) {
            issuers.push(issuer.clone());
            store.meta.insert("issuers", crate::store::encode(&issuers))?;
        }
        let keys = keys.with_issuer(&issuer, issuers);
        let code_stand_in = crate::store::encode(&crate::store::CodeState {
            failures: 0,
            until: 0,
            user_id: crate::token::random_id(),
            kid: keys.current_kid().to_string(),
            jti: crate::token::random_id(),
            code_mac: crate::token::random_mac(),
            expires_at: 0,
        });
        let user_stand_in = crate::store::encode(&crate::store::User {
            id: crate::token::random_id(),
            email: "stand-in@example.invalid".into(),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c3RhbmQtaW4tc2FsdC0xMjM0NQ$c3RhbmQtaW4taGFzaC0wMTIzNDU2Nzg5YWJjZGVmZ2hpams".into(),
            stamp: crate::token::random_id(),
            disabled: false,
            created_at: now,
        });
        let population = decoys::Population::count(&store.users, mail_key.derive(b"rekey decoy draw"));
        let hasher = Hasher::new(
            config.argon2_params(),
            config.hash_concurrency,
            // A hash that cannot start within half the request's time would make the request
            // time out anyway: such callers are told "busy" at once.
            std::time::Duration::from_secs(config.request_timeout_secs) / 2,
        );
        let mut kinds = population.kinds();
        kinds.push(config.argon2_params());
        hasher.prepare_decoys(&kinds).map_err(|e| Error::Setup(e.to_string()))?;
        Ok(Rekey {
            mail_key,
            population,
            hasher,
            tally: Default::default(),
            user_stand_in,
            code_stand_in,
            policy: Policy {
                min_length: config.password_min_length,
            },
            keys: RwLock::new(keys),
            intake_wake: Arc::new(Notify::new()),
            intake_depth: IntakeDepth(AtomicUsize::new(store.intake.len())),
            config,
            store,
            clock,
            outbox,
            install_id,
        })
    }

    /// Counts an event that only a real account causes, for the worker to write (see
    /// [`crate::audit::Tally`]).
    fn tally(&self, kind: &str, user_id: &str, client: &str) {
        self.tally.add(kind, user_id, client);
    }

    /// Reset requests waiting for the worker.
    pub fn intake_depth(&self) -> usize {
        self.intake_depth.0.load(Ordering::Acquire)
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The store (for admin listings and tests).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The key queued mail is sealed with (for code that queues mail itself, like tests).
    pub fn mail_key(&self) -> &MailKey {
        &self.mail_key
    }

    /// The outbox: status, listings, retry, purge.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// The password policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The password hasher (shared, bounded).
    pub fn hasher(&self) -> &Hasher {
        &self.hasher
    }

    /// The `iss` of the links this Rekey mails.
    pub fn issuer(&self) -> String {
        self.keys.read().map(|k| k.issuer().to_string()).unwrap_or_default()
    }

    /// Every `iss` this store's links have carried (its public address may have changed): a
    /// link with any of them is one of its own.
    pub fn issuers(&self) -> Vec<String> {
        self.keys.read().map(|k| k.issuers()).unwrap_or_default()
    }

    /// This installation's id: the desktop app's "client" for rate limits.
    pub fn install_id(&self) -> &str {
        &self.install_id
    }

    /// The current time by Rekey's clock.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Makes a new signing key; tokens signed by the old one keep working until they expire.
    pub fn rotate_keys(&self) -> Result<String, Error> {
        let mut keys = self.keys.write().map_err(|e| internal("keys", e))?;
        keys.rotate(self.now()).map_err(|e| Error::Setup(e.to_string()))
    }

    /// Runs the intake and outbox workers until `shutdown` turns true.
    pub async fn run_workers(self: Arc<Self>, shutdown: watch::Receiver<bool>) {
        let intake = {
            let this = self.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move { this.run_intake(shutdown).await })
        };
        let outbox = self.outbox.clone();
        let delivery = tokio::spawn(async move { outbox.run(shutdown).await });
        let _ = tokio::join!(intake, delivery);
        // What was counted since the worker's last write goes to the trail before stopping.
        if let Err(e) = self.tally.write(&self.store, self.now()) {
            tracing::error!(error = %e, "audit events could not be written");
        }
    }

    /// Puts dead letters (all, or just `id`) back in the queue, due now, and makes waiting
    /// mail due now. A reset mail that died while its link still worked kept no message (it
    /// held a live link); for it, a fresh reset is asked for the same address, which the
    /// worker handles like any request. Returns how many mails are on their way again.
    pub async fn retry_dead(&self, id: Option<u64>) -> Result<usize, Error> {
        let mut n = self.outbox.retry_dead(id)?;
        // Asked first, forgotten after: a retry that fails half-way leaves the rest to retry.
        for (key, address) in self.outbox.dead_resets(id)? {
            let email = crate::email::Email::parse(&address)?;
            self.queue_reset_request(&email, "outbox retry").await?;
            if self.outbox.forget_dead(&key)? {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Processes waiting reset requests and delivers due mail once; for the command line.
    pub async fn drain(&self) -> Result<crate::outbox::DeliveryReport, Error> {
        self.process_intake().await?;
        let (report, _) = self.outbox.deliver_due().await?;
        self.outbox.rehearse().await?;
        Ok(report)
    }
}

/// Unwraps a sled transaction: an abort carries our error, a storage failure is internal.
pub(crate) fn tx<T>(r: TransactionResult<T, Error>) -> Result<T, Error> {
    r.map_err(|e| match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => internal("transaction", e),
    })
}
