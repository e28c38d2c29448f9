//! Passwords after NIST SP 800-63B-4: length, not composition; a blocklist of common and
//! breached passwords plus context words; any Unicode (compared after NFKC); and
//! argon2id hashing off the async threads with bounded concurrency.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use argon2::password_hash::{Output, PasswordHash, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use serde::Serialize;
use tokio::sync::Semaphore;
use unicode_normalization::UnicodeNormalization;

/// Longest password accepted, in bytes after NFKC: a cap against hashing floods.
pub const MAX_BYTES: usize = 1024;

/// Why a password was refused. The text is shown to the person choosing it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Shorter than the configured minimum.
    #[error("use at least {min} characters (this one has {len})")]
    TooShort {
        /// The minimum.
        min: usize,
        /// What was typed.
        len: usize,
    },
    /// Over [`MAX_BYTES`].
    #[error("that password is too long: keep it under {MAX_BYTES} bytes")]
    TooLong,
    /// On the list of common or breached passwords.
    #[error("that password is on a list of common or leaked passwords; pick something less predictable")]
    Common,
    /// Built from the email address or the product's name.
    #[error("don't build the password from your email address or the app's name")]
    Context,
    /// A repeated or sequential pattern, like `aaaaaaaa…` or `12345678…`.
    #[error("that password is a simple pattern ({0}); it would be guessed quickly")]
    Pattern(String),
}

impl PolicyError {
    /// A stable code for the UI.
    pub fn code(&self) -> &'static str {
        match self {
            PolicyError::TooShort { .. } => "password_too_short",
            PolicyError::TooLong => "password_too_long",
            PolicyError::Common => "password_common",
            PolicyError::Context => "password_context",
            PolicyError::Pattern(_) => "password_pattern",
        }
    }
}

/// The strength estimate a UI shows as the user types.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Strength {
    /// 0 (guessed at once) to 4 (very hard to guess).
    pub score: u8,
    /// Estimated guesses, as a power of ten.
    pub guesses_log10: f64,
    /// Whether the policy accepts it.
    pub acceptable: bool,
    /// The policy's reason when it does not.
    pub problem: Option<String>,
    /// Hints for a better password.
    pub suggestions: Vec<String>,
}

/// The password rules in force.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Shortest password accepted.
    pub min_length: usize,
}

fn blocklist() -> &'static HashSet<&'static str> {
    static LIST: OnceLock<HashSet<&'static str>> = OnceLock::new();
    LIST.get_or_init(|| {
        include_str!("../data/blocklist.txt")
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .collect()
    })
}

/// The form passwords are compared in: NFKC, as the standard asks.
pub fn normalise(password: &str) -> String {
    password.nfkc().collect()
}

/// Only letters and digits, lowercased: how blocklist and context matching see a password.
fn skeleton(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

impl Policy {
    /// Checks `password` for an account with address `email` (context words).
    pub fn check(&self, password: &str, email: Option<&str>) -> Result<(), PolicyError> {
        let pw = normalise(password);
        if pw.len() > MAX_BYTES {
            return Err(PolicyError::TooLong);
        }
        let len = pw.chars().count();
        if len < self.min_length {
            return Err(PolicyError::TooShort {
                min: self.min_length,
                len,
            });
        }
        let lower = pw.to_lowercase();
        let skel = skeleton(&pw);
        let list = blocklist();
        // "Password1234567!" is still "password": strip digits and symbols at the ends too.
        let core = lower.trim_matches(|c: char| !c.is_alphabetic());
        if list.contains(lower.as_str()) || list.contains(skel.as_str()) || (core.len() >= 8 && list.contains(core)) {
            return Err(PolicyError::Common);
        }
        if is_context_only(&skel, email) {
            return Err(PolicyError::Context);
        }
        if let Some(pattern) = pattern_of(&pw) {
            return Err(PolicyError::Pattern(pattern));
        }
        Ok(())
    }

    /// The strength estimate and the policy's verdict, for a meter that updates as the user types.
    pub fn strength(&self, password: &str, email: Option<&str>) -> Strength {
        let pw = normalise(password);
        // zxcvbn is superlinear; the first 100 characters decide the estimate anyway.
        let sample: String = pw.chars().take(100).collect();
        let inputs = context_words(email);
        let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        let (score, log10, suggestions) = if sample.is_empty() {
            (0, 0.0, vec![])
        } else {
            let e = zxcvbn::zxcvbn(&sample, &inputs);
            let suggestions = e
                .feedback()
                .map(|f| f.suggestions().iter().map(|s| s.to_string()).collect())
                .unwrap_or_default();
            (e.score() as u8, e.guesses_log10(), suggestions)
        };
        let verdict = self.check(password, email);
        Strength {
            score: if verdict.is_err() { score.min(1) } else { score },
            guesses_log10: log10,
            acceptable: verdict.is_ok(),
            problem: verdict.err().map(|e| e.to_string()),
            suggestions,
        }
    }
}

fn context_words(email: Option<&str>) -> Vec<String> {
    let mut words = vec!["rekey".to_string(), "password".to_string(), "reset".to_string()];
    if let Some(email) = email {
        let (local, domain) = email.rsplit_once('@').unwrap_or((email, ""));
        words.push(skeleton(local));
        words.extend(local.split(['.', '_', '-', '+']).map(skeleton));
        words.extend(domain.split('.').filter(|l| l.len() > 3).map(skeleton));
    }
    words.retain(|w| w.chars().count() >= 3);
    words
}

/// True when, with every context word taken out, fewer than 6 characters remain: the
/// password is essentially the address or the product's name dressed up.
fn is_context_only(skel: &str, email: Option<&str>) -> bool {
    let mut words = context_words(email);
    words.sort_by_key(|w| std::cmp::Reverse(w.len()));
    let mut rest = skel.to_string();
    for w in &words {
        rest = rest.replace(w.as_str(), "");
    }
    let removed_something = rest.len() < skel.len();
    let rest = rest.trim_matches(|c: char| c.is_ascii_digit());
    removed_something && rest.chars().count() < 6
}

/// Names a repeated or sequential pattern that makes up the whole password.
fn pattern_of(pw: &str) -> Option<String> {
    let chars: Vec<char> = pw.chars().collect();
    let distinct: HashSet<char> = chars.iter().copied().collect();
    if distinct.len() <= 2 {
        return Some("the same characters repeated".into());
    }
    // A short unit repeated: "abcabcabcabcabc", "ab12ab12ab12ab12".
    for unit in 2..=chars.len() / 3 {
        if chars.len().is_multiple_of(unit) && chars.chunks(unit).all(|c| c == &chars[..unit]) {
            return Some("a short piece repeated".into());
        }
    }
    // Runs like "123456789012345" or "abcdefghijklmno" (wrapping 9→0 counts).
    let step_ok = |a: char, b: char| {
        let (a, b) = (a as i64, b as i64);
        (b - a).abs() == 1 || (a == '9' as i64 && b == '0' as i64) || (a == '0' as i64 && b == '9' as i64)
    };
    if chars.windows(2).all(|w| step_ok(w[0], w[1])) {
        return Some("a run of consecutive characters".into());
    }
    None
}

/// Argon2id parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashParams {
    /// Memory in KiB (OWASP: 19456).
    pub memory_kib: u32,
    /// Iterations (OWASP: 2).
    pub iterations: u32,
    /// Lanes (OWASP: 1).
    pub parallelism: u32,
}

impl Default for HashParams {
    fn default() -> Self {
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

/// Why hashing failed (never the password's fault: the policy ran first).
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// argon2 refused the parameters or the stored hash is not a PHC string.
    #[error("password hashing failed: {0}")]
    Argon2(String),
    /// The blocking pool went away (shutdown).
    #[error("password hashing was interrupted")]
    Interrupted,
}

/// Makes the C allocator give large freed blocks back to the system. Call it once at the
/// start of a program that hashes (both of Rekey's binaries do).
///
/// Why: glibc serves a large allocation with its own mapping and unmaps it on free, but after
/// the first such free it raises that threshold to the freed size (up to 32 MiB), so later
/// large blocks come from a thread's arena and stay there. Argon2's 19 MiB block did that on
/// every thread that ever hashed: 380 MiB resident after 100 sign-ups. The hasher now keeps
/// its memory on its own threads (see [`Hasher`]); this keeps anything else that large from
/// piling up the same way.
pub fn return_hash_memory_after_use() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a tuning parameter of the allocator; glibc documents it as
    // safe to call at any time.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1024 * 1024);
    }
}

/// Argon2's working memory (19 MiB at the default parameters), kept between hashes.
type Memory = Vec<Block>;

/// Hashes and verifies on its own threads, at most `concurrency` at a time, so a flood of
/// sign-ins queues instead of exhausting memory (each hash takes `memory_kib`).
#[derive(Clone)]
pub struct Hasher {
    params: HashParams,
    gate: Arc<Semaphore>,
    threads: HashThreads,
    decoy: Arc<OnceLock<String>>,
}

type Job = Box<dyn FnOnce(&mut Memory) + Send>;

/// A fixed set of threads for argon2, one per permit of the gate, each keeping its working
/// memory from one hash to the next. Fresh memory per hash costs a page fault per 4 KiB
/// (measured: a 15 ms hash took 29 ms) or, from a malloc arena, stays behind in every thread
/// that ever hashed; kept memory costs neither, and the total is `concurrency` blocks. The
/// threads end when the last clone of the hasher is dropped.
#[derive(Clone)]
struct HashThreads {
    jobs: std::sync::mpsc::Sender<Job>,
}

impl HashThreads {
    fn start(n: usize) -> HashThreads {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = Arc::new(std::sync::Mutex::new(queue));
        for i in 0..n {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("rekey-hash-{i}"))
                .spawn(move || {
                    let mut memory = Memory::new();
                    loop {
                        let job = match queue.lock() {
                            Ok(queue) => queue.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(&mut memory),
                            Err(_) => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start a hashing thread");
            }
        }
        HashThreads { jobs }
    }

    /// Runs `f` on one of the threads and waits for its result without blocking the caller's.
    async fn run<T: Send + 'static>(&self, f: impl FnOnce(&mut Memory) -> T + Send + 'static) -> Result<T, HashError> {
        let (done, result) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move |memory: &mut Memory| {
                let _ = done.send(f(memory));
            }))
            .map_err(|_| HashError::Interrupted)?;
        result.await.map_err(|_| HashError::Interrupted)
    }
}

/// Argon2 of `password` with `salt` into `out`, in `memory` (grown to fit, never shrunk).
fn argon2_into(
    argon: &Argon2<'_>,
    password: &[u8],
    salt: Salt<'_>,
    out: &mut [u8],
    memory: &mut Memory,
) -> Result<(), HashError> {
    let mut salt_buf = [0u8; 64];
    let salt = salt
        .decode_b64(&mut salt_buf)
        .map_err(|e| HashError::Argon2(e.to_string()))?;
    let blocks = argon.params().block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    argon
        .hash_password_into_with_memory(password, salt, out, &mut memory[..blocks])
        .map_err(|e| HashError::Argon2(e.to_string()))
}

/// Whether `password` matches the PHC string `phc`, computed in `memory`: what argon2's
/// `PasswordVerifier` does (the stored hash's own algorithm, version and parameters; a
/// constant-time comparison), but in memory kept from the last hash.
fn verify_in(phc: &str, password: &[u8], memory: &mut Memory) -> Result<bool, HashError> {
    let bad = |e: argon2::password_hash::Error| HashError::Argon2(e.to_string());
    let parsed = PasswordHash::new(phc).map_err(bad)?;
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return Ok(false);
    };
    let algorithm = Algorithm::try_from(parsed.algorithm).map_err(bad)?;
    let version = match parsed.version {
        Some(v) => Version::try_from(v).map_err(|e| HashError::Argon2(e.to_string()))?,
        None => Version::default(),
    };
    let params = Params::try_from(&parsed).map_err(bad)?;
    let argon = Argon2::new(algorithm, version, params);
    let mut out = vec![0u8; expected.len()];
    argon2_into(&argon, password, salt, &mut out, memory)?;
    // `Output`'s equality is constant-time.
    Ok(Output::new(&out).map_err(bad)? == expected)
}

impl Hasher {
    /// A hasher with these parameters and at most `concurrency` hashes at once.
    pub fn new(params: HashParams, concurrency: usize) -> Self {
        Self {
            params,
            gate: Arc::new(Semaphore::new(concurrency.max(1))),
            threads: HashThreads::start(concurrency.max(1)),
            decoy: Arc::default(),
        }
    }

    fn argon2(&self) -> Result<Argon2<'static>, HashError> {
        let p = self.params;
        let params = Params::new(p.memory_kib, p.iterations, p.parallelism, None)
            .map_err(|e| HashError::Argon2(e.to_string()))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }

    /// Hashes synchronously, in fresh memory (for benchmarks and tests).
    pub fn hash_blocking(&self, password: &str) -> Result<String, HashError> {
        self.hash_in(password, &mut Memory::new())
    }

    /// Hashes `password` (after NFKC) into a PHC string, in `memory`: what argon2's
    /// `PasswordHasher::hash_password` does, but in memory kept from the last hash.
    fn hash_in(&self, password: &str, memory: &mut Memory) -> Result<String, HashError> {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let argon = self.argon2()?;
        let pw = normalise(password);
        let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
        argon2_into(&argon, pw.as_bytes(), salt.as_salt(), &mut out, memory)?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: argon
                .params()
                .try_into()
                .map_err(|e: argon2::password_hash::Error| HashError::Argon2(e.to_string()))?,
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(&out).map_err(|e| HashError::Argon2(e.to_string()))?),
        };
        Ok(phc.to_string())
    }

    /// Hashes `password` (after NFKC) into a PHC string.
    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let _permit = self.gate.acquire().await.map_err(|_| HashError::Interrupted)?;
        let this = self.clone();
        let pw = password.to_string();
        self.threads.run(move |memory| this.hash_in(&pw, memory)).await?
    }

    /// Checks `password` against a stored PHC string. `None` stands for "no such account":
    /// it is checked against a decoy hash, so both cases cost the same.
    pub async fn verify(&self, password: &str, phc: Option<&str>) -> Result<bool, HashError> {
        // No stored password can be this long (the policy caps it), so don't spend a hash on it.
        if password.len() > 4 * MAX_BYTES {
            return Ok(false);
        }
        // The decoy is made on the first call whichever way it goes, so that first call
        // costs the same for a known and an unknown account too.
        let decoy = self.decoy().await?;
        let phc = phc.map(str::to_string).unwrap_or(decoy);
        let known = !phc.is_empty();
        let _permit = self.gate.acquire().await.map_err(|_| HashError::Interrupted)?;
        let pw = normalise(password);
        let ok = self
            .threads
            .run(move |memory| verify_in(&phc, pw.as_bytes(), memory))
            .await??;
        Ok(ok && known)
    }

    async fn decoy(&self) -> Result<String, HashError> {
        if let Some(d) = self.decoy.get() {
            return Ok(d.clone());
        }
        let d = self.hash("a decoy password nobody can have").await?;
        Ok(self.decoy.get_or_init(|| d).clone())
    }

    /// Whether a stored hash was made with other parameters (and should be redone at sign-in).
    pub fn needs_rehash(&self, phc: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(phc) else {
            return true;
        };
        let Ok(params) = Params::try_from(&parsed) else {
            return true;
        };
        parsed.algorithm.as_str() != "argon2id"
            || params.m_cost() != self.params.memory_kib
            || params.t_cost() != self.params.iterations
            || params.p_cost() != self.params.parallelism
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_in_kept_memory_match_argon2s_own_format_both_ways() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let params = HashParams {
            memory_kib: 8192,
            iterations: 1,
            parallelism: 1,
        };
        let hasher = Hasher::new(params, 1);
        let mut memory = Memory::new();
        // Ours, checked by argon2's own verifier; the memory is reused for the second hash.
        let ours = hasher.hash_in("correct horse battery staple", &mut memory).unwrap();
        let again = hasher.hash_in("correct horse battery staple", &mut memory).unwrap();
        assert_ne!(ours, again, "a fresh salt each time");
        for phc in [&ours, &again] {
            let parsed = PasswordHash::new(phc).unwrap();
            assert!(Argon2::default()
                .verify_password(b"correct horse battery staple", &parsed)
                .is_ok());
            assert!(Argon2::default().verify_password(b"wrong horse", &parsed).is_err());
        }
        // Argon2's own (other parameters than the kept memory was sized for), checked by ours.
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let theirs = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(16384, 2, 1, None).unwrap(),
        )
        .hash_password(b"another passphrase here", &salt)
        .unwrap()
        .to_string();
        assert!(verify_in(&theirs, b"another passphrase here", &mut memory).unwrap());
        assert!(!verify_in(&theirs, b"another passphrase her", &mut memory).unwrap());
        assert!(verify_in("$argon2id$v=19$m=8192,t=1,p=1$bm90IGEgaGFzaA", b"x", &mut memory).is_ok_and(|ok| !ok));
    }

    fn policy() -> Policy {
        Policy { min_length: 15 }
    }

    #[test]
    fn length_not_composition() {
        assert_eq!(
            policy().check("short one", None),
            Err(PolicyError::TooShort { min: 15, len: 9 })
        );
        // Lowercase letters and spaces only: fine, no composition rules.
        assert_eq!(policy().check("gravel mortar kettle", None), Ok(()));
        // 64 characters and more are allowed.
        let long: String = "moss ".repeat(13) + "and a few more words";
        assert!(long.chars().count() > 64);
        assert_eq!(policy().check(&long, None), Ok(()));
        assert_eq!(policy().check(&"x".repeat(2000), None), Err(PolicyError::TooLong));
    }

    #[test]
    fn unicode_counts_characters_after_nfkc() {
        // Fifteen characters of Japanese text, three bytes each.
        assert_eq!(policy().check("ひらがなとカタカナと漢字のまざり", None), Ok(()));
        // NFKC: the ligature "ﬁ" and "fi" hash the same.
        let h = Hasher::new(
            HashParams {
                memory_kib: 8 * 1024,
                iterations: 1,
                parallelism: 1,
            },
            1,
        );
        let phc = h.hash_blocking("\u{fb01}ne weather for kites").unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        assert!(rt.block_on(h.verify("fine weather for kites", Some(&phc))).unwrap());
    }

    #[test]
    fn blocklist_context_and_patterns() {
        let p = policy();
        assert_eq!(p.check("correcthorsebatterystaple", None), Err(PolicyError::Common));
        assert_eq!(p.check("Password1234567!", None), Err(PolicyError::Common));
        assert_eq!(
            p.check("jane.doe@example.com", Some("jane.doe@example.com")),
            Err(PolicyError::Context)
        );
        assert_eq!(
            p.check("JaneDoeRekey2024", Some("jane.doe@example.com")),
            Err(PolicyError::Context)
        );
        assert!(matches!(
            p.check("aaaaaaaaaaaaaaaa", None),
            Err(PolicyError::Pattern(_))
        ));
        assert!(matches!(
            p.check("123456789012345678", None),
            Err(PolicyError::Pattern(_))
        ));
        assert!(matches!(
            p.check("xyz1xyz1xyz1xyz1", None),
            Err(PolicyError::Pattern(_))
        ));
        assert_eq!(
            p.check("jane's bicycle is blue today", Some("jane.doe@example.com")),
            Ok(())
        );
    }

    #[test]
    fn strength_meter_explains() {
        let p = policy();
        let weak = p.strength("aaaaaaaaaaaaaaaa", None);
        assert!(!weak.acceptable && weak.problem.is_some() && weak.score <= 1);
        let good = p.strength("lantern orbit meadow crisp", None);
        assert!(good.acceptable && good.score >= 3, "{good:?}");
    }

    #[test]
    fn rehash_when_parameters_change() {
        let low = Hasher::new(
            HashParams {
                memory_kib: 8 * 1024,
                iterations: 1,
                parallelism: 1,
            },
            1,
        );
        let phc = low.hash_blocking("some passphrase here").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=8192,t=1,p=1$"));
        assert!(!low.needs_rehash(&phc));
        assert!(Hasher::new(HashParams::default(), 1).needs_rehash(&phc));
    }
}
