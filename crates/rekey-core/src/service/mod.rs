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
use crate::store::{
    AccountSteps, IntakeSteps, LimitSteps, PgStore, RegistrationSteps, ResetSteps, Steps, Store, StoreSteps, User,
};
use crate::token::{Claims, KeyRing, Purpose, TokenError};

pub use accounts::{SessionToken, UserInfo};
pub use codes::Proof;
pub use registration::{VerifyProof, VerifyTarget};
pub use reset::ResetProof;

/// Where the records are.
#[derive(Clone)]
pub enum Backend {
    /// sled in the data directory: one process (the app, a single rekeyd).
    Sled(Store),
    /// PostgreSQL: every rekeyd that names the same database.
    Postgres(PgStore),
}

/// The secret that holds the signing keys in a database (see [`PgStore::secret`]).
pub(crate) const SIGNING_KEYS: &str = "signing_keys";

/// Rekey's service: accounts, resets and the outbox over one store.
pub struct Rekey {
    config: Config,
    backend: Backend,
    /// The backend's steps.
    store: Arc<dyn Steps>,
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
    /// Who mail is from, under which name, signed with which key.
    sender: crate::letters::Sender,
    /// Events of real accounts, written by the worker.
    tally: crate::audit::Tally,
    /// The accounts' hash parameters, which decoys are drawn from.
    population: decoys::Population,
    /// An account record read when an address has none, so a sign-in for a stranger reads
    /// and decodes what a sign-in for an account does.
    user_stand_in: Vec<u8>,
    /// The code record read for an address with no reset: a stand-in of a real record's
    /// shape and size (see `reset::check_code`).
    code_stand_in: crate::store::CodeState,
}

/// How long the worker waits after a request wakes it, in milliseconds (a random point in the
/// range): work that only a real account causes, started at once, competes with the answer
/// still being written and shows in its timing; after a pause it falls on whatever comes next.
const AFTER_ANSWER_MS: std::ops::Range<u64> = 100..300;

/// How many requests (resets, registrations) wait for the worker. Kept in memory because sled's `len` walks
/// the whole tree, which the request path cannot afford under a flood; counted once at open.
/// On a shared database other instances add to it too, so the worker counts again now and
/// then (see [`IntakeDepth::due_for_count`]).
struct IntakeDepth(AtomicUsize, std::sync::Mutex<Option<std::time::Instant>>);

impl IntakeDepth {
    /// Counts one more request unless `limit` are already waiting.
    fn try_add(&self, limit: usize) -> bool {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < limit).then_some(n + 1))
            .is_ok()
    }

    /// Whether the database's count is due: not more often than `every`, since counting
    /// walks every waiting row, and under a backlog the worker would do so once a claim.
    fn due_for_count(&self, every: std::time::Duration) -> bool {
        let Ok(mut counted) = self.1.lock() else {
            return true;
        };
        let now = std::time::Instant::now();
        if counted.is_some_and(|at| now.duration_since(at) < every) {
            return false;
        }
        *counted = Some(now);
        true
    }

    /// Counts one request handled (or never written).
    fn remove(&self) {
        let _ = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| Some(n.saturating_sub(1)));
    }
}

/// The signing keys a database keeps, or words saying they are unusable.
fn shared_ring(store: &PgStore, json: &str) -> Result<KeyRing, Error> {
    KeyRing::from_json(json.as_bytes()).map_err(|e| {
        Error::Setup(format!(
            "the signing keys kept in the database at {} are unusable: {e}",
            store.place()
        ))
    })
}

/// Longest time a worker sleeps with nothing to do: on a shared database other instances
/// queue work too, and only looking finds it (a claim there is one cheap query).
fn idle_secs(backend: &Backend) -> u64 {
    match backend {
        Backend::Sled(_) => 30,
        Backend::Postgres(_) => 5,
    }
}

/// What opening a store found, for [`Rekey::assemble`].
struct Opened {
    backend: Backend,
    mail_key: MailKey,
    keys: KeyRing,
    users: Vec<User>,
    waiting: usize,
    install_id: String,
    issuers: Vec<String>,
}

/// Runs a future that never waits: a sled step (sled blocks instead of waiting), from the
/// synchronous [`Rekey::open`].
fn at_once<F: std::future::Future>(f: F) -> F::Output {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match std::pin::pin!(f).poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => unreachable!("a sled step waited"),
    }
}

/// A new install's id; the store keeps the first one it is given.
fn fresh_install_id() -> String {
    format!("install-{}", crate::token::random_id())
}

/// Which Rekey issues this one's links: the configured name, the public address, or (a
/// desktop store, a server with neither) the install's own id.
fn issuer(config: &Config, install_id: &str) -> String {
    config
        .issuer
        .clone()
        .or_else(|| {
            config
                .public_url
                .as_ref()
                .map(|u| u.as_str().trim_end_matches('/').to_string())
        })
        .unwrap_or_else(|| format!("rekey:{install_id}"))
}

impl Rekey {
    /// Opens Rekey on `config`'s sled store with the wall clock. `program` names this
    /// process in the "data directory in use" message others see (`rekeyd serve`, `the
    /// Rekey app`). A configured `database_url` needs [`Rekey::connect`].
    pub fn open(config: Config, program: &str) -> Result<Rekey, Error> {
        Self::open_with_clock(config, program, Arc::new(SystemClock))
    }

    /// Opens Rekey's sled store with a given clock (tests move time with
    /// [`crate::ManualClock`]).
    pub fn open_with_clock(config: Config, program: &str, clock: Arc<dyn Clock>) -> Result<Rekey, Error> {
        if config.database_url.is_some() {
            return Err(Error::Setup(format!(
                "{program} keeps its records on this computer and cannot use database_url; unset it"
            )));
        }
        let now = clock.now();
        // The directory first: the mail key is made in it before the store opens.
        crate::store::sled_backend::ensure_private_dir(&config.data_dir)?;
        let mail_key = MailKey::load_or_create(&config.data_dir).map_err(|e| Error::Setup(e.to_string()))?;
        let store = Store::open(&config.data_dir, program, now, mail_key.clone())?;
        let keys = KeyRing::load_or_create(&config.data_dir, now).map_err(|e| Error::Setup(e.to_string()))?;
        let install_id = at_once(store.install_id(&fresh_install_id()))?;
        let issuers = at_once(store.issuers(&issuer(&config, &install_id)))?;
        let opened = Opened {
            users: at_once(store.users())?,
            waiting: at_once(store.waiting_requests())?,
            backend: Backend::Sled(store),
            mail_key,
            keys,
            install_id,
            issuers,
        };
        Self::assemble(config, clock, opened)
    }

    /// Opens Rekey on the store `config` names: PostgreSQL when `database_url` is set (its
    /// signing keys and mail key shared in the database), else sled in the data directory.
    pub async fn connect(config: Config, program: &str) -> Result<Rekey, Error> {
        Self::connect_with_clock(config, program, Arc::new(SystemClock)).await
    }

    /// [`Rekey::connect`] with a given clock.
    pub async fn connect_with_clock(config: Config, program: &str, clock: Arc<dyn Clock>) -> Result<Rekey, Error> {
        let Some(url) = config.database_url.clone() else {
            return Self::open_with_clock(config, program, clock);
        };
        let store = PgStore::connect(url.expose(), config.db_pool_size).await?;
        let keys = store.secret(SIGNING_KEYS, &KeyRing::new(clock.now()).to_json()).await?;
        let keys = shared_ring(&store, &keys)?;
        let install_id = store.install_id(&fresh_install_id()).await?;
        let issuers = store.issuers(&issuer(&config, &install_id)).await?;
        let opened = Opened {
            users: store.users().await?,
            waiting: store.waiting_requests().await?,
            mail_key: store.mail_key().clone(),
            backend: Backend::Postgres(store),
            keys,
            install_id,
            issuers,
        };
        Self::assemble(config, clock, opened)
    }

    fn assemble(config: Config, clock: Arc<dyn Clock>, opened: Opened) -> Result<Rekey, Error> {
        let Opened {
            backend,
            mail_key,
            keys,
            users,
            waiting,
            install_id,
            issuers,
        } = opened;
        let now = clock.now();
        let mailer = Mailer::from_config(&config).map_err(|e| Error::Setup(e.to_string()))?;
        let sender = crate::letters::Sender::new(&config).map_err(|e| Error::Setup(e.to_string()))?;
        let store: Arc<dyn Steps> = match &backend {
            Backend::Sled(s) => Arc::new(s.clone()),
            Backend::Postgres(s) => Arc::new(s.clone()),
        };
        let outbox = Outbox::new(
            store.clone(),
            mail_key.clone(),
            mailer,
            clock.clone(),
            config.smtp_pool_size as usize,
        )
        .idle_at_most(idle_secs(&backend) as i64);
        let keys = keys.with_issuer(&issuer(&config, &install_id), issuers);
        let code_stand_in = crate::store::CodeState {
            failures: 0,
            until: 0,
            user_id: crate::token::random_id(),
            kid: keys.current_kid().to_string(),
            jti: crate::token::random_id(),
            code_mac: crate::token::random_mac(),
            expires_at: 0,
        };
        let user_stand_in = crate::store::encode(&crate::store::User {
            id: crate::token::random_id(),
            email: "stand-in@example.invalid".into(),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c3RhbmQtaW4tc2FsdC0xMjM0NQ$c3RhbmQtaW4taGFzaC0wMTIzNDU2Nzg5YWJjZGVmZ2hpams".into(),
            stamp: crate::token::random_id(),
            disabled: false,
            created_at: now,
            locale: None,
            time_zone: None,
        });
        let population = decoys::Population::count(&users, mail_key.derive(b"rekey decoy draw"));
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
            sender,
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
            intake_depth: IntakeDepth(AtomicUsize::new(waiting), Default::default()),
            config,
            backend,
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

    /// Who mail to `user` is from, writing in the account's language (else the install's) and
    /// its time zone (else UTC).
    fn sender_for(&self, user: &crate::store::User) -> crate::letters::Sender {
        self.sender_in(user.locale.as_deref())
            .in_zone(user.time_zone.as_deref())
    }

    /// Who mail is from, writing in `locale` (`None`: the install's).
    fn sender_in(&self, locale: Option<&str>) -> crate::letters::Sender {
        match locale {
            Some(locale) => self.sender.in_locale(locale),
            None => self.sender.clone(),
        }
    }

    /// Who mail is from (for `rekeyd mail test`).
    pub fn sender(&self) -> &crate::letters::Sender {
        &self.sender
    }

    /// The sled store, when the records are in sled (tests look inside it).
    pub fn sled(&self) -> Option<&Store> {
        match &self.backend {
            Backend::Sled(store) => Some(store),
            Backend::Postgres(_) => None,
        }
    }

    /// Where the records are.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// The store's steps for accounts, sessions and the audit trail.
    pub fn accounts(&self) -> &dyn AccountSteps {
        &*self.store
    }

    /// The store's steps for requests waiting for the worker.
    pub(crate) fn intake(&self) -> &dyn IntakeSteps {
        &*self.store
    }

    /// The store's steps for pending accounts.
    pub(crate) fn registrations(&self) -> &dyn RegistrationSteps {
        &*self.store
    }

    /// The store's steps for resets and codes.
    pub(crate) fn resets(&self) -> &dyn ResetSteps {
        &*self.store
    }

    /// The store's steps for rate limits.
    pub(crate) fn limits(&self) -> &dyn LimitSteps {
        &*self.store
    }

    /// The store's durability and counters.
    pub fn steps(&self) -> &dyn StoreSteps {
        &*self.store
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
    /// In a database the rotation is a compare-and-swap of the shared keys, so two instances
    /// rotating at once make two new keys one after the other, never lose one.
    pub async fn rotate_keys(&self) -> Result<String, Error> {
        let Backend::Postgres(store) = &self.backend else {
            let mut keys = self.keys.write().map_err(|e| internal("keys", e))?;
            return keys.rotate(self.now()).map_err(|e| Error::Setup(e.to_string()));
        };
        loop {
            let shared = store.secret(SIGNING_KEYS, "").await?;
            let mut ring = shared_ring(store, &shared)?;
            let kid = ring.rotate(self.now()).map_err(|e| Error::Setup(e.to_string()))?;
            if store.swap_secret(SIGNING_KEYS, &shared, &ring.to_json()).await? {
                self.keys.write().map_err(|e| internal("keys", e))?.take_keys(ring);
                return Ok(kid);
            }
        }
    }

    /// Reads the signing keys and issuers every instance shares again, when they are in a
    /// database: another instance may have rotated the keys, or started with a new public
    /// address. Says whether anything changed.
    pub async fn refresh_keys(&self) -> Result<bool, Error> {
        let Backend::Postgres(store) = &self.backend else {
            return Ok(false);
        };
        let shared = store.secret(SIGNING_KEYS, "").await?;
        let (mine, issuer, known) = {
            let keys = self.keys.read().map_err(|e| internal("keys", e))?;
            (keys.to_json(), keys.issuer().to_string(), keys.issuers())
        };
        let issuers = store.issuers(&issuer).await?;
        if shared == mine && issuers.iter().all(|i| known.contains(i)) {
            return Ok(false);
        }
        let ring = shared_ring(store, &shared)?.with_issuer(&issuer, issuers);
        *self.keys.write().map_err(|e| internal("keys", e))? = ring;
        Ok(true)
    }

    /// Checks a token for `purpose`. A key this instance does not know may be one another
    /// instance just made: the shared keys are read again once before the token is refused.
    pub(crate) async fn verify_token(&self, purpose: Purpose, token: &str) -> Result<Claims, Error> {
        let verify = || -> Result<Claims, Error> {
            let keys = self.keys.read().map_err(|e| internal("keys", e))?;
            Ok(keys.verify_for(purpose, token, self.now())?)
        };
        match verify() {
            Err(Error::Token(TokenError::UnknownKey | TokenError::WrongIssuer)) if self.refresh_keys().await? => {
                verify()
            }
            checked => checked,
        }
    }

    /// The HMAC a typed `code` has under key `kid` for reset `jti` (empty when the key is
    /// unknown even after reading the shared keys again).
    pub(crate) async fn code_mac(&self, kid: &str, jti: &str, code: &str) -> Result<String, Error> {
        let mac = || -> Result<Option<String>, Error> {
            Ok(self
                .keys
                .read()
                .map_err(|e| internal("keys", e))?
                .code_mac(kid, jti, code))
        };
        match mac()? {
            Some(mac) => Ok(mac),
            None if self.refresh_keys().await? => Ok(mac()?.unwrap_or_default()),
            None => Ok(String::new()),
        }
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
        if let Err(e) = self.tally.write(self.accounts(), self.now()).await {
            tracing::error!(error = %e, "audit events could not be written");
        }
    }

    /// Puts dead letters (all, or just `id`) back in the queue, due now, and makes waiting
    /// mail due now. A reset mail that died while its link still worked kept no message (it
    /// held a live link); for it, a fresh reset is asked for the same address, which the
    /// worker handles like any request. Returns how many mails are on their way again.
    pub async fn retry_dead(&self, id: Option<u64>) -> Result<usize, Error> {
        let mut n = self.outbox.retry_dead(id).await?;
        // Asked first, forgotten after: a retry that fails half-way leaves the rest to retry.
        for (dead, address) in self.outbox.dead_resets(id).await? {
            let email = crate::email::Email::parse(&address)?;
            self.queue_reset_request(&email, "outbox retry").await?;
            if self.outbox.forget_dead(dead).await? {
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
