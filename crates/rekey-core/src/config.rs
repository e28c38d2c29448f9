//! One typed configuration: TOML file < `REKEY_*` environment < command-line flags.
//!
//! Every layer is reduced to `key = text` pairs first, so one parser per key serves all
//! three and every error names the key and where it came from.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use url::Url;

use crate::duration;
use crate::limits::RateLimit;

/// Why the configuration could not be used. Every variant names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("could not read the config file {path}: {reason}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What the system said.
        reason: String,
    },
    /// The config file is not valid TOML.
    #[error("the config file {path} is not valid TOML: {reason}")]
    NotToml {
        /// The file.
        path: PathBuf,
        /// The parser's words.
        reason: String,
    },
    /// A key Rekey does not know (often a typo).
    #[error("unknown setting `{key}` in {origin}; known settings: {known}")]
    UnknownKey {
        /// The key as written.
        key: String,
        /// Where it was written.
        origin: String,
        /// The keys Rekey knows.
        known: String,
    },
    /// A known key with a value that does not fit.
    #[error("{key} (from {origin}): {reason}")]
    Invalid {
        /// The key, as written in its source (`reset_ttl`, `REKEY_RESET_TTL`, `--reset-ttl`).
        key: String,
        /// Where it was written.
        origin: String,
        /// What is wrong, in words.
        reason: String,
    },
}

/// Where a setting came from; decides how its key is spelled in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The TOML file.
    File,
    /// A `REKEY_*` environment variable.
    Env,
    /// A command-line flag.
    Flag,
}

impl Source {
    fn spell(self, key: &str) -> String {
        match self {
            Source::File => key.to_string(),
            Source::Env => format!("REKEY_{}", key.to_uppercase()),
            Source::Flag => format!("--{}", key.replace('_', "-")),
        }
    }
    fn name(self, file: Option<&Path>) -> String {
        match (self, file) {
            (Source::File, Some(p)) => format!("the config file {}", p.display()),
            (Source::File, None) => "the config file".into(),
            (Source::Env, _) => "the environment".into(),
            (Source::Flag, _) => "the command line".into(),
        }
    }
}

/// A secret string (an SMTP URL with its password). `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    /// The secret itself; call only where it is used, never to print.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

/// Rekey's settings, validated. See the README's configuration reference.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where sled, the signing keys and the local mailbox live.
    pub data_dir: PathBuf,
    /// `smtps://user:pass@host:465`, `smtp://…` (STARTTLS required) or `smtp+plain://…`.
    /// `None`: mail goes to the local mailbox in the data directory.
    pub smtp_url: Option<Secret>,
    /// A PEM file of extra CA certificates to trust for the SMTP server.
    pub smtp_ca_file: Option<PathBuf>,
    /// Allow `smtp+plain://` to a host that is not loopback.
    pub smtp_allow_plain: bool,
    /// Hard limit on one SMTP send, in seconds.
    pub smtp_timeout_secs: u64,
    /// Largest number of pooled SMTP connections.
    pub smtp_pool_size: u32,
    /// `postgres://user:password@host:5432/rekey?sslmode=verify-full&sslrootcert=…`: keep
    /// the records in PostgreSQL, shared by every rekeyd that names the same database.
    /// `None`: sled in the data directory (one process).
    pub database_url: Option<Secret>,
    /// Largest number of pooled database connections (per process).
    pub db_pool_size: u32,
    /// The sender, like `Rekey <no-reply@example.com>`.
    pub mail_from: String,
    /// An address whose mail the relay throws away. When set, a reset request that gets no
    /// mail (a stranger's address, or one over its limit) sends a message of the same size
    /// there, so a relay on rekeyd's own machine works alike for both. `None`: only the
    /// round trips of a send are rehearsed.
    pub stand_in_mail_to: Option<String>,
    /// The product's name in mail (subjects and bodies), like "Example Corp Login".
    pub product_name: String,
    /// A line mail ends with, like "help@example.com or +1 555 0100"; `None`: none.
    pub support_contact: Option<String>,
    /// The language of mail (`en`, `de`, `fr`, `es`, or a region like `de-AT` that an
    /// override file adds); a missing message falls back de-AT → de → en.
    pub locale: String,
    /// A directory of `.ftl` files (`de.ftl`, `de-AT.ftl`, …) whose messages replace the
    /// shipped ones; checked at start.
    pub messages_dir: Option<PathBuf>,
    /// A PEM private key (RSA or Ed25519) that signs every mail with DKIM; `None`: unsigned.
    pub dkim_key_file: Option<PathBuf>,
    /// The DKIM selector: the key's DNS record is `SELECTOR._domainkey.DOMAIN`, DOMAIN being
    /// `mail_from`'s.
    pub dkim_selector: Option<String>,
    /// The public https address of `rekeyd serve`, for the landing link in reset mail.
    pub public_url: Option<Url>,
    /// The `iss` of the links this Rekey mails; `None`: its `public_url`, else its install id.
    pub issuer: Option<String>,
    /// The desktop app: the organisation's `rekeyd` to use instead of this computer's own
    /// store (connected mode). `None`: this computer.
    pub server_url: Option<Url>,
    /// A PEM file of extra CAs to trust for `server_url` (an on-prem CA).
    pub server_ca_file: Option<PathBuf>,
    /// The desktop app: the language of its window (`de`, `fr`, …); `None`: the system's
    /// (LC_ALL, LC_MESSAGES, LANG).
    pub app_language: Option<String>,
    /// Longest the app waits for the server on one call, in seconds.
    pub server_timeout_secs: u64,
    /// Where `rekeyd serve` listens.
    pub listen: SocketAddr,
    /// Where `rekeyd serve` answers `/metrics` (and `/healthz`); `None`: no metrics at all.
    /// Never the public listener: its counters tell known addresses from unknown ones.
    pub metrics_listen: Option<SocketAddr>,
    /// Most connections `rekeyd serve` keeps open at once; more are closed at once.
    pub max_connections: usize,
    /// Most connections one client (an IPv4 address, an IPv6 /64; trusted proxies aside) keeps
    /// open at once, so that one client cannot take every slot.
    pub max_connections_per_client: usize,
    /// Whether `rekeyd serve` lets anyone create an account (`POST /users`).
    pub registration: bool,
    /// PEM certificate chain for `rekeyd serve` to speak HTTPS; needs `tls_key_file` too.
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key for `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
    /// Proxies whose `X-Forwarded-For` is believed; from anyone else the socket's address counts.
    pub trusted_proxies: Vec<IpAddr>,
    /// Longest time `rekeyd serve` spends on one request, in seconds.
    pub request_timeout_secs: u64,
    /// How long a reset link and code live, in seconds (5 min – 24 h).
    pub reset_ttl_secs: i64,
    /// Reset requests per target address.
    pub limit_address: RateLimit,
    /// Reset requests per client (peer IP or desktop install).
    pub limit_client: RateLimit,
    /// Most reset requests waiting for the worker; beyond it requests are refused as busy
    /// (for every address alike) instead of growing the queue without bound.
    pub intake_limit: usize,
    /// Account requests (`POST /users`) per client.
    pub limit_register_client: RateLimit,
    /// Typed-code attempts per client.
    pub limit_code_client: RateLimit,
    /// Typed-code attempts per address (the link is not limited: the owner always has it).
    pub limit_code_address: RateLimit,
    /// Strength checks per client (`POST /users/password/strength`, asked as a person types).
    pub limit_strength: RateLimit,
    /// Failed sign-ins for one account from all clients together: a ceiling well above
    /// [`Config::limit_signin_client`]. Clients that signed in to the account before are not
    /// held by it, so a stranger who reaches it does not lock the owner out.
    pub limit_signin_account: RateLimit,
    /// Failed sign-ins for one account from one client; the account's owner signing in from
    /// that client clears it.
    pub limit_signin_client: RateLimit,
    /// Failed sign-ins from one client across every account (password spraying).
    pub limit_signin_spray: RateLimit,
    /// How long a sign-in session lives, in seconds.
    pub session_ttl_secs: i64,
    /// Shortest password accepted (never below 8).
    pub password_min_length: usize,
    /// Argon2id memory in KiB.
    pub argon2_memory_kib: u32,
    /// Argon2id iterations.
    pub argon2_iterations: u32,
    /// Argon2id lanes.
    pub argon2_parallelism: u32,
    /// How many password hashes may run at once.
    pub hash_concurrency: usize,
}

/// The keys Rekey knows, in the order the README documents them.
pub const KEYS: &[&str] = &[
    "data_dir",
    "smtp_url",
    "smtp_ca_file",
    "smtp_allow_plain",
    "smtp_timeout",
    "smtp_pool_size",
    "database_url",
    "db_pool_size",
    "mail_from",
    "stand_in_mail_to",
    "product_name",
    "support_contact",
    "locale",
    "messages_dir",
    "dkim_key_file",
    "dkim_selector",
    "public_url",
    "issuer",
    "server_url",
    "server_ca_file",
    "app_language",
    "server_timeout",
    "listen",
    "metrics_listen",
    "max_connections",
    "max_connections_per_client",
    "registration",
    "tls_cert_file",
    "tls_key_file",
    "trusted_proxies",
    "request_timeout",
    "reset_ttl",
    "limit_address",
    "limit_client",
    "intake_limit",
    "limit_register_client",
    "limit_code_client",
    "limit_code_address",
    "limit_strength",
    "limit_signin_account",
    "limit_signin_client",
    "limit_signin_spray",
    "session_ttl",
    "password_min_length",
    "argon2_memory_kib",
    "argon2_iterations",
    "argon2_parallelism",
    "hash_concurrency",
];

/// Environment variables that belong to Rekey but are not settings.
const ENV_NOT_SETTINGS: &[&str] = &["REKEY_CONFIG", "REKEY_SYSTEM_CONFIG", "REKEY_LOG"];

impl Default for Config {
    fn default() -> Self {
        Self::from_layers(None, None, &[], &[]).expect("defaults are valid")
    }
}

/// Each key's text, where it came from, and (for a file) which file.
type Layer = BTreeMap<String, (String, Source, Option<PathBuf>)>;

impl Config {
    /// Where the records are, in words (never the database's password).
    pub fn describe_store(&self) -> String {
        let Some(url) = &self.database_url else {
            return format!("sled in {}", self.data_dir.join("db").display());
        };
        match Url::parse(url.expose()) {
            Ok(u) => format!(
                "PostgreSQL at {}:{}{} as {} (pool of {})",
                u.host_str().unwrap_or("localhost"),
                u.port().unwrap_or(5432),
                u.path(),
                u.username(),
                self.db_pool_size
            ),
            Err(_) => "PostgreSQL (database_url)".into(),
        }
    }

    /// The default data directory: the platform's data dir (`~/.local/share/rekey` on Linux).
    pub fn default_data_dir() -> PathBuf {
        directories::ProjectDirs::from("", "", "rekey")
            .map(|d| d.data_dir().to_path_buf())
            .unwrap_or_else(|| PathBuf::from(".rekey"))
    }

    /// Loads the configuration: `file` (if any, else `$REKEY_CONFIG`), then the process
    /// environment, then `flags` as `(key, value)` pairs with keys spelled as in the file.
    pub fn load(file: Option<&Path>, flags: &[(&str, String)]) -> Result<Self, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        let env_file = std::env::var_os("REKEY_CONFIG").map(PathBuf::from);
        let file = file.map(Path::to_path_buf).or(env_file);
        let text = match &file {
            Some(p) => Some(std::fs::read_to_string(p).map_err(|e| ConfigError::Unreadable {
                path: p.clone(),
                reason: e.to_string(),
            })?),
            None => None,
        };
        Self::from_layers(file.as_deref(), text.as_deref(), &env, flags)
    }

    /// Loads the desktop app's configuration: the system-wide file an administrator presets
    /// for every user (`/etc/rekey/config.toml`, or `$REKEY_SYSTEM_CONFIG`), then the user's own
    /// (`user_file`), each if it exists, then the environment, then `flags`.
    pub fn load_layered(
        system_file: &Path,
        user_file: Option<&Path>,
        flags: &[(&str, String)],
    ) -> Result<Self, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        let mut files = Vec::new();
        for path in std::iter::once(system_file).chain(user_file) {
            match std::fs::read_to_string(path) {
                Ok(text) => files.push((path.to_path_buf(), text)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(ConfigError::Unreadable {
                        path: path.to_path_buf(),
                        reason: e.to_string(),
                    })
                }
            }
        }
        let files: Vec<(&Path, &str)> = files.iter().map(|(p, t)| (p.as_path(), t.as_str())).collect();
        Self::from_files(&files, &env, flags)
    }

    /// Builds a configuration from explicit layers (used by [`Config::load`] and tests).
    pub fn from_layers(
        file: Option<&Path>,
        file_text: Option<&str>,
        env: &[(String, String)],
        flags: &[(&str, String)],
    ) -> Result<Self, ConfigError> {
        let file = file.unwrap_or(Path::new(""));
        let files: Vec<(&Path, &str)> = file_text.map(|t| (file, t)).into_iter().collect();
        Self::from_files(&files, env, flags)
    }

    /// Builds a configuration from files (each above the one before), the environment and
    /// flags.
    pub fn from_files(
        files: &[(&Path, &str)],
        env: &[(String, String)],
        flags: &[(&str, String)],
    ) -> Result<Self, ConfigError> {
        let mut layer: Layer = BTreeMap::new();
        for (path, text) in files {
            let file = Some(*path).filter(|p| !p.as_os_str().is_empty());
            let table: toml::Table = text.parse().map_err(|e: toml::de::Error| ConfigError::NotToml {
                path: path.to_path_buf(),
                reason: e.message().to_string(),
            })?;
            for (key, value) in table {
                check_known(&key, Source::File, file)?;
                let text = match value {
                    toml::Value::String(s) => s,
                    toml::Value::Integer(i) => i.to_string(),
                    toml::Value::Boolean(b) => b.to_string(),
                    other => {
                        return Err(ConfigError::Invalid {
                            key: key.clone(),
                            origin: Source::File.name(file),
                            reason: format!("expected text, a number or true/false, found {}", other.type_str()),
                        })
                    }
                };
                layer.insert(key, (text, Source::File, file.map(Path::to_path_buf)));
            }
        }
        for (name, value) in env {
            let Some(key) = name.strip_prefix("REKEY_") else {
                continue;
            };
            if ENV_NOT_SETTINGS.contains(&name.as_str()) || key.starts_with("TEST_") {
                continue;
            }
            let key = key.to_lowercase();
            if !KEYS.contains(&key.as_str()) {
                return Err(ConfigError::UnknownKey {
                    key: name.clone(),
                    origin: Source::Env.name(None),
                    known: KEYS.iter().map(|k| Source::Env.spell(k)).collect::<Vec<_>>().join(", "),
                });
            }
            layer.insert(key, (value.clone(), Source::Env, None));
        }
        for (key, value) in flags {
            check_known(key, Source::Flag, None)?;
            layer.insert(key.to_string(), (value.clone(), Source::Flag, None));
        }
        Parser { layer: &layer }.build()
    }

    /// The Argon2id parameters this configuration asks for.
    pub fn argon2_params(&self) -> crate::hasher::HashParams {
        crate::hasher::HashParams {
            memory_kib: self.argon2_memory_kib,
            iterations: self.argon2_iterations,
            parallelism: self.argon2_parallelism,
        }
    }
}

fn check_known(key: &str, source: Source, file: Option<&Path>) -> Result<(), ConfigError> {
    if KEYS.contains(&key) {
        return Ok(());
    }
    Err(ConfigError::UnknownKey {
        key: source.spell(key),
        origin: source.name(file),
        known: KEYS.iter().map(|k| source.spell(k)).collect::<Vec<_>>().join(", "),
    })
}

struct Parser<'a> {
    layer: &'a Layer,
}

impl Parser<'_> {
    fn get<T>(&self, key: &str, default: T, parse: impl Fn(&str) -> Result<T, String>) -> Result<T, ConfigError> {
        match self.layer.get(key) {
            None => Ok(default),
            Some((text, source, file)) => parse(text.trim()).map_err(|reason| ConfigError::Invalid {
                key: source.spell(key),
                origin: source.name(file.as_deref()),
                reason,
            }),
        }
    }

    /// Settings that only make sense together: set both `names` or neither.
    fn pair(&self, first: bool, second: bool, names: (&str, &str), why: &str) -> Result<(), ConfigError> {
        if first == second {
            return Ok(());
        }
        let (missing, given) = if first { (names.1, names.0) } else { (names.0, names.1) };
        let (source, file) = self
            .layer
            .get(given)
            .map(|(_, s, f)| (*s, f.clone()))
            .unwrap_or((Source::File, None));
        Err(ConfigError::Invalid {
            key: source.spell(missing),
            origin: source.name(file.as_deref()),
            reason: format!("is needed when {} is set ({why})", source.spell(given)),
        })
    }

    fn build(&self) -> Result<Config, ConfigError> {
        let limit = |s: &str| s.parse::<RateLimit>();
        let config = Config {
            data_dir: self.get("data_dir", Config::default_data_dir(), |s| {
                nonempty(s).map(PathBuf::from)
            })?,
            smtp_url: self.get("smtp_url", None, |s| {
                if s.is_empty() {
                    return Ok(None);
                }
                crate::smtp_url::SmtpTarget::parse(s, true).map_err(|e| e.to_string())?;
                Ok(Some(Secret::new(s)))
            })?,
            smtp_ca_file: self.get("smtp_ca_file", None, readable_file)?,
            smtp_allow_plain: self.get("smtp_allow_plain", false, boolean)?,
            smtp_timeout_secs: self.get("smtp_timeout", 30, |s| {
                let secs = duration::seconds(s)?;
                if !(1..=600).contains(&secs) {
                    return Err("must be between 1s and 10m".into());
                }
                Ok(secs as u64)
            })?,
            smtp_pool_size: self.get("smtp_pool_size", 4, |s| number(s, 1, 64))?,
            database_url: self.get("database_url", None, |s| {
                if s.is_empty() {
                    return Ok(None);
                }
                if !(s.starts_with("postgres://") || s.starts_with("postgresql://")) {
                    return Err("must be a PostgreSQL address like postgres://user:password@host:5432/rekey".into());
                }
                Ok(Some(Secret::new(s)))
            })?,
            db_pool_size: self.get("db_pool_size", 10, |s| number(s, 1, 200))?,
            mail_from: self.get("mail_from", "Rekey <no-reply@localhost>".to_string(), |s| {
                s.parse::<lettre::message::Mailbox>()
                    .map(|_| s.to_string())
                    .map_err(|_| format!("'{s}' is not a sender like Rekey <no-reply@example.com>"))
            })?,
            stand_in_mail_to: self.get("stand_in_mail_to", None, |s| {
                if s.is_empty() {
                    return Ok(None);
                }
                s.parse::<lettre::Address>()
                    .map(|_| Some(s.to_string()))
                    .map_err(|_| format!("'{s}' is not an address like discard@mail.example.com"))
            })?,
            product_name: self.get("product_name", "Rekey".to_string(), |s| {
                one_line(s, 60).map(str::to_string)
            })?,
            support_contact: self.get("support_contact", None, |s| {
                if s.is_empty() {
                    return Ok(None);
                }
                one_line(s, 200).map(|s| Some(s.to_string()))
            })?,
            locale: self.get("locale", "en".to_string(), |s| {
                crate::words::locale(s).map_err(|e| e.to_string())
            })?,
            app_language: self.get("app_language", None, |s| {
                if s.is_empty() {
                    return Ok(None);
                }
                crate::words::locale(s).map(Some).map_err(|e| e.to_string())
            })?,
            messages_dir: self.get("messages_dir", None, |s| {
                if s.is_empty() {
                    return Ok(None);
                }
                let dir = PathBuf::from(s);
                crate::words::Words::load(Some(&dir)).map_err(|e| e.to_string())?;
                Ok(Some(dir))
            })?,
            dkim_key_file: self.get("dkim_key_file", None, |s| {
                if s.is_empty() {
                    return Ok(None);
                }
                let p = PathBuf::from(s);
                crate::dkim::load_key(&p).map(|_| Some(p))
            })?,
            dkim_selector: self.get("dkim_selector", None, |s| {
                if s.is_empty() {
                    return Ok(None);
                }
                if !crate::dkim::valid_selector(s) {
                    return Err(format!(
                        "'{s}' is not a selector like mail2026 (letters, digits, '-', '.')"
                    ));
                }
                Ok(Some(s.to_string()))
            })?,
            public_url: self.get("public_url", None, |s| {
                if s.is_empty() {
                    return Ok(None);
                }
                let u = Url::parse(s).map_err(|e| format!("'{s}' is not a URL: {e}"))?;
                if u.scheme() != "https" && u.scheme() != "http" {
                    return Err("must start with https:// (or http:// for a local test)".into());
                }
                Ok(Some(u))
            })?,
            issuer: self.get("issuer", None, |s| {
                if s.is_empty() {
                    return Ok(None);
                }
                if s.len() > 200 || s.chars().any(|c| c.is_control()) {
                    return Err("must be a short name or URL, like https://rekey.example.com".into());
                }
                Ok(Some(s.to_string()))
            })?,
            server_url: self.get("server_url", None, |s| {
                if s.is_empty() {
                    return Ok(None);
                }
                server_url(s).map(Some)
            })?,
            server_ca_file: self.get("server_ca_file", None, readable_file)?,
            server_timeout_secs: self.get("server_timeout", 15, |s| {
                let secs = duration::seconds(s)?;
                if !(1..=120).contains(&secs) {
                    return Err("must be between 1s and 2m".into());
                }
                Ok(secs as u64)
            })?,
            listen: self.get("listen", SocketAddr::from(([127, 0, 0, 1], 8080)), |s| {
                s.parse()
                    .map_err(|_| format!("'{s}' is not an address like 127.0.0.1:8080"))
            })?,
            metrics_listen: self.get("metrics_listen", None, |s| {
                if s.is_empty() || s.eq_ignore_ascii_case("off") {
                    return Ok(None);
                }
                s.parse()
                    .map(Some)
                    .map_err(|_| format!("'{s}' is not an address like 127.0.0.1:9090 (or off)"))
            })?,
            max_connections: self.get("max_connections", 512, |s| number(s, 8, 100_000).map(|n| n as usize))?,
            max_connections_per_client: self.get("max_connections_per_client", 32, |s| {
                number(s, 1, 100_000).map(|n| n as usize)
            })?,
            registration: self.get("registration", true, boolean)?,
            tls_cert_file: self.get("tls_cert_file", None, readable_file)?,
            tls_key_file: self.get("tls_key_file", None, readable_file)?,
            trusted_proxies: self.get("trusted_proxies", Vec::new(), |s| {
                s.split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(|p| {
                        p.parse()
                            .map_err(|_| format!("'{p}' is not an IP address like 10.0.0.2"))
                    })
                    .collect()
            })?,
            request_timeout_secs: self.get("request_timeout", 30, |s| {
                let secs = duration::seconds(s)?;
                if !(1..=600).contains(&secs) {
                    return Err("must be between 1s and 10m".into());
                }
                Ok(secs as u64)
            })?,
            reset_ttl_secs: self.get("reset_ttl", 30 * 60, |s| {
                let secs = duration::seconds(s)?;
                if !(5 * 60..=24 * 3600).contains(&secs) {
                    return Err("must be between 5m and 24h".into());
                }
                Ok(secs)
            })?,
            limit_address: self.get("limit_address", "3/15m".parse().unwrap(), limit)?,
            limit_client: self.get("limit_client", "20/15m".parse().unwrap(), limit)?,
            intake_limit: self.get("intake_limit", 10_000, |s| {
                number(s, 100, 10_000_000).map(|n| n as usize)
            })?,
            limit_register_client: self.get("limit_register_client", "10/1h".parse().unwrap(), limit)?,
            limit_code_client: self.get("limit_code_client", "10/15m".parse().unwrap(), limit)?,
            limit_code_address: self.get("limit_code_address", "10/15m".parse().unwrap(), limit)?,
            limit_strength: self.get("limit_strength", "300/15m".parse().unwrap(), limit)?,
            limit_signin_account: self.get("limit_signin_account", "100/15m".parse().unwrap(), limit)?,
            limit_signin_client: self.get("limit_signin_client", "10/15m".parse().unwrap(), limit)?,
            limit_signin_spray: self.get("limit_signin_spray", "100/15m".parse().unwrap(), limit)?,
            session_ttl_secs: self.get("session_ttl", 12 * 3600, |s| {
                let secs = duration::seconds(s)?;
                if !(60..=90 * 24 * 3600).contains(&secs) {
                    return Err("must be between 1m and 90d".into());
                }
                Ok(secs)
            })?,
            password_min_length: self.get("password_min_length", 15, |s| number(s, 8, 64).map(|n| n as usize))?,
            argon2_memory_kib: self.get("argon2_memory_kib", 19 * 1024, |s| number(s, 8 * 1024, 4 * 1024 * 1024))?,
            argon2_iterations: self.get("argon2_iterations", 2, |s| number(s, 1, 100))?,
            argon2_parallelism: self.get("argon2_parallelism", 1, |s| number(s, 1, 16))?,
            hash_concurrency: self.get(
                "hash_concurrency",
                std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
                |s| number(s, 1, 256).map(|n| n as usize),
            )?,
        };
        self.pair(
            config.tls_cert_file.is_some(),
            config.tls_key_file.is_some(),
            ("tls_cert_file", "tls_key_file"),
            "HTTPS needs both",
        )?;
        self.pair(
            config.dkim_key_file.is_some(),
            config.dkim_selector.is_some(),
            ("dkim_key_file", "dkim_selector"),
            "DKIM signing needs both",
        )?;
        Ok(config)
    }
}

/// The address of an organisation's `rekeyd`: https, or plain http to this machine only (a
/// password must not cross a network in the clear).
pub fn server_url(s: &str) -> Result<Url, String> {
    let u = Url::parse(s.trim()).map_err(|e| format!("'{s}' is not a URL like https://rekey.example.com: {e}"))?;
    let loopback = match u.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match u.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(format!(
                "'{s}' must start with https:// (plain http only to this machine)"
            ))
        }
        _ => return Err(format!("'{s}' must start with https://")),
    }
    if u.host().is_none()
        || !u.username().is_empty()
        || u.password().is_some()
        || u.query().is_some()
        || u.fragment().is_some()
    {
        return Err(format!(
            "'{s}' must be just the server's address, like https://rekey.example.com"
        ));
    }
    Ok(u)
}

fn readable_file(s: &str) -> Result<Option<PathBuf>, String> {
    let p = PathBuf::from(nonempty(s)?);
    std::fs::read(&p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
    Ok(Some(p))
}

/// Text for one line of a mail: not empty, no control characters, at most `max` characters.
fn one_line(s: &str, max: usize) -> Result<&str, String> {
    if s.is_empty() || s.chars().count() > max || s.chars().any(char::is_control) {
        return Err(format!("must be one line of 1 to {max} characters"));
    }
    Ok(s)
}

fn nonempty(s: &str) -> Result<&str, String> {
    if s.is_empty() {
        Err("must not be empty".into())
    } else {
        Ok(s)
    }
}

fn boolean(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "on" => Ok(true),
        "false" | "no" | "0" | "off" => Ok(false),
        _ => Err(format!("'{s}' is not true or false")),
    }
}

fn number(s: &str, min: u32, max: u32) -> Result<u32, String> {
    let n: u32 = s.parse().map_err(|_| format!("'{s}' is not a whole number"))?;
    if n < min || n > max {
        return Err(format!("must be between {min} and {max}"));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn layers_override_in_order() {
        let file = "reset_ttl = \"10m\"\nlimit_address = \"5/1h\"\n";
        let c = Config::from_layers(
            Some(Path::new("rekey.toml")),
            Some(file),
            &env(&[("REKEY_RESET_TTL", "20m")]),
            &[("reset_ttl", "40m".into())],
        )
        .unwrap();
        assert_eq!(c.reset_ttl_secs, 40 * 60);
        assert_eq!(c.limit_address, "5/1h".parse().unwrap());
        let c = Config::from_layers(None, Some(file), &env(&[("REKEY_RESET_TTL", "20m")]), &[]).unwrap();
        assert_eq!(c.reset_ttl_secs, 20 * 60);
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let err = Config::from_layers(Some(Path::new("r.toml")), Some("reset_tll = \"10m\""), &[], &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("reset_tll"), "{err}");
        let err = Config::from_layers(None, None, &env(&[("REKEY_SMTP_URLL", "x")]), &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("REKEY_SMTP_URLL"), "{err}");
    }

    #[test]
    fn bad_values_name_the_key_and_source() {
        let err = Config::from_layers(None, None, &env(&[("REKEY_RESET_TTL", "2d")]), &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("REKEY_RESET_TTL") && err.contains("between 5m and 24h"),
            "{err}"
        );
        let err = Config::from_layers(None, None, &env(&[("REKEY_LIMIT_CLIENT", "lots")]), &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("REKEY_LIMIT_CLIENT"), "{err}");
        let err = Config::from_layers(None, None, &[], &[("password_min_length", "6".into())])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--password-min-length"), "{err}");
        let err = Config::from_layers(None, None, &env(&[("REKEY_SMTP_URL", "http://x")]), &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("REKEY_SMTP_URL"), "{err}");
    }

    #[test]
    fn smtp_password_is_redacted() {
        let c = Config::from_layers(
            None,
            None,
            &env(&[("REKEY_SMTP_URL", "smtps://me:hunter2hunter2@mail.example.com")]),
            &[],
        )
        .unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn an_administrators_file_is_below_the_users_own() {
        let system = "server_url = \"https://rekey.example.com\"\nreset_ttl = \"10m\"\n";
        let user = "reset_ttl = \"20m\"\n";
        let c = Config::from_files(
            &[
                (Path::new("/etc/rekey/config.toml"), system),
                (Path::new("user.toml"), user),
            ],
            &[],
            &[],
        )
        .unwrap();
        assert_eq!(c.server_url.unwrap().as_str(), "https://rekey.example.com/");
        assert_eq!(c.reset_ttl_secs, 20 * 60);
        // Errors name the file they are in.
        let err = Config::from_files(&[(Path::new("/etc/rekey/config.toml"), "reset_ttl = \"1s\"")], &[], &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("/etc/rekey/config.toml"), "{err}");
    }

    #[test]
    fn a_server_is_https_or_this_machine() {
        assert!(server_url("https://rekey.example.com").is_ok());
        assert!(server_url("http://127.0.0.1:8080").is_ok());
        assert!(server_url("http://localhost:8080").is_ok());
        for bad in [
            "http://rekey.example.com",
            "ftp://rekey.example.com",
            "https://user:pw@rekey.example.com",
            "https://rekey.example.com/?next=x",
            "rekey.example.com",
        ] {
            assert!(server_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn limits_can_be_switched_off() {
        let c = Config::from_layers(None, None, &env(&[("REKEY_LIMIT_ADDRESS", "off")]), &[]).unwrap();
        assert_eq!(c.limit_address, RateLimit::Off);
    }
}
