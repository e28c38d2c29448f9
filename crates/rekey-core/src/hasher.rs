//! Argon2id hashing off the async threads: a fixed set of threads that keep their memory,
//! at most `concurrency` hashes at once, and a queue bounded by time.
//!
//! The queue is what a burst of sign-ins or sign-ups fills. Two rules keep a burst from
//! outliving itself: a caller who would wait longer than `max_wait` is told "busy" at once
//! (its request would time out anyway), and a job whose caller has gone (timed out, hung up)
//! is dropped before it starts, instead of spending a hash on an answer nobody will read.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::{Output, PasswordHash, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::password::{normalise, MAX_BYTES};

/// Argon2id parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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
    /// The threads went away (shutdown).
    #[error("password hashing was interrupted")]
    Interrupted,
    /// So many hashes are waiting that this one would not start within the allowed wait.
    #[error("too many passwords are being checked; try again in {retry_after} s")]
    Busy {
        /// Seconds after which the queue has likely drained.
        retry_after: i64,
    },
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
    queue: Arc<Queue>,
    /// A hash of a password nobody has, per parameters: what "no such account" is checked
    /// against, at the parameters of some real account (see `service::decoys`).
    decoys: Arc<Mutex<HashMap<HashParams, String>>>,
}

/// The callers waiting for a thread, and how long a hash has been taking.
struct Queue {
    concurrency: usize,
    max_wait: Duration,
    waiting: AtomicUsize,
    /// Recent hash time in microseconds (a moving average; 0 until the first hash).
    recent_micros: AtomicU64,
}

impl Queue {
    /// How long a caller arriving now would wait for a thread, going by recent hashes.
    fn expected_wait(&self, ahead: usize) -> Duration {
        let rounds = (ahead / self.concurrency + 1) as u32;
        Duration::from_micros(self.recent_micros.load(Ordering::Relaxed)) * rounds
    }

    fn record(&self, took: Duration) {
        let took = took.as_micros().min(u64::MAX as u128) as u64;
        let _ = self
            .recent_micros
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                Some(if old == 0 { took } else { (old * 7 + took) / 8 })
            });
    }
}

/// Counts a caller as waiting until it gets a thread or gives up.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
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
    /// A hasher with these parameters, at most `concurrency` hashes at once, and callers
    /// told "busy" when they would wait longer than `max_wait` for a thread.
    pub fn new(params: HashParams, concurrency: usize, max_wait: Duration) -> Self {
        let concurrency = concurrency.max(1);
        Self {
            params,
            gate: Arc::new(Semaphore::new(concurrency)),
            threads: HashThreads::start(concurrency),
            queue: Arc::new(Queue {
                concurrency,
                max_wait,
                waiting: AtomicUsize::new(0),
                recent_micros: AtomicU64::new(0),
            }),
            decoys: Arc::default(),
        }
    }

    /// Callers waiting for a thread now.
    pub fn waiting(&self) -> usize {
        self.queue.waiting.load(Ordering::Acquire)
    }

    /// The parameters new hashes are made with.
    pub fn params(&self) -> HashParams {
        self.params
    }

    fn argon2(p: HashParams) -> Result<Argon2<'static>, HashError> {
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
        hash_with(self.params, password, memory)
    }
}

/// Hashes `password` (after NFKC) with `params` into a PHC string, in `memory`.
fn hash_with(params: HashParams, password: &str, memory: &mut Memory) -> Result<String, HashError> {
    {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let argon = Hasher::argon2(params)?;
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
}

/// The parameters a stored PHC string was made with (`None` if it is not argon2 or unreadable).
pub fn params_of(phc: &str) -> Option<HashParams> {
    let parsed = PasswordHash::new(phc).ok()?;
    let params = Params::try_from(&parsed).ok()?;
    Some(HashParams {
        memory_kib: params.m_cost(),
        iterations: params.t_cost(),
        parallelism: params.p_cost(),
    })
}

impl Hasher {
    /// Waits for a thread (or refuses at once when the wait would be too long), then runs `f`
    /// there. The permit goes with the job and is held until `f` returns, not until the caller
    /// stops waiting: a caller that gives up while waiting leaves no job behind, and one that
    /// gives up once its job is handed over cannot let another job in beside it (that is how
    /// timed-out requests used to pile up hashes nobody would read).
    async fn run<T: Send + 'static>(&self, f: impl FnOnce(&mut Memory) -> T + Send + 'static) -> Result<T, HashError> {
        let queue = &self.queue;
        let ahead = queue.waiting.fetch_add(1, Ordering::AcqRel);
        let waiting = Waiting(&queue.waiting);
        let expected = queue.expected_wait(ahead);
        if expected > queue.max_wait {
            return Err(HashError::Busy {
                retry_after: expected.as_secs().max(1) as i64,
            });
        }
        let permit: OwnedSemaphorePermit = self
            .gate
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| HashError::Interrupted)?;
        drop(waiting);
        let (done, result) = tokio::sync::oneshot::channel();
        let queue = self.queue.clone();
        self.threads
            .jobs
            .send(Box::new(move |memory: &mut Memory| {
                let _permit = permit;
                if done.is_closed() {
                    return;
                }
                let started = Instant::now();
                let value = f(memory);
                queue.record(started.elapsed());
                let _ = done.send(value);
            }))
            .map_err(|_| HashError::Interrupted)?;
        result.await.map_err(|_| HashError::Interrupted)
    }

    /// Hashes `password` (after NFKC) into a PHC string.
    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let this = self.clone();
        let pw = password.to_string();
        self.run(move |memory| this.hash_in(&pw, memory)).await?
    }

    /// Checks `password` against a stored PHC string. `None` stands for "no such account":
    /// it is checked against a decoy hash made with `decoy` parameters (those of some real
    /// account), so both cases cost the same.
    pub async fn verify(&self, password: &str, phc: Option<&str>, decoy: HashParams) -> Result<bool, HashError> {
        // No stored password can be this long (the policy caps it), so don't spend a hash on it.
        if password.len() > 4 * MAX_BYTES {
            return Ok(false);
        }
        let known = phc.is_some();
        let phc = match phc {
            Some(phc) => phc.to_string(),
            None => self.decoy(decoy).await?,
        };
        let pw = normalise(password);
        let ok = self.run(move |memory| verify_in(&phc, pw.as_bytes(), memory)).await??;
        Ok(ok && known)
    }

    /// Makes the decoys for `params` ahead of use (at start, for every parameters real
    /// accounts have), so that no sign-in pays for making one.
    pub fn prepare_decoys(&self, params: &[HashParams]) -> Result<(), HashError> {
        for p in params {
            if !self.decoys.lock().map(|d| d.contains_key(p)).unwrap_or(false) {
                let decoy = hash_with(*p, "a decoy password nobody can have", &mut Memory::new())?;
                if let Ok(mut decoys) = self.decoys.lock() {
                    decoys.entry(*p).or_insert(decoy);
                }
            }
        }
        Ok(())
    }

    async fn decoy(&self, params: HashParams) -> Result<String, HashError> {
        if let Some(d) = self.decoys.lock().ok().and_then(|d| d.get(&params).cloned()) {
            return Ok(d);
        }
        let d = self
            .run(move |memory| hash_with(params, "a decoy password nobody can have", memory))
            .await??;
        Ok(self
            .decoys
            .lock()
            .map(|mut decoys| decoys.entry(params).or_insert(d.clone()).clone())
            .unwrap_or(d))
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

    const LOW: HashParams = HashParams {
        memory_kib: 8192,
        iterations: 1,
        parallelism: 1,
    };
    const PATIENT: Duration = Duration::from_secs(60);

    #[test]
    fn hashes_in_kept_memory_match_argon2s_own_format_both_ways() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let hasher = Hasher::new(LOW, 1, PATIENT);
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

    #[test]
    fn nfkc_forms_hash_the_same() {
        // The ligature "ﬁ" and "fi".
        let h = Hasher::new(LOW, 1, PATIENT);
        let phc = h.hash_blocking("\u{fb01}ne weather for kites").unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        assert!(rt
            .block_on(h.verify("fine weather for kites", Some(&phc), LOW))
            .unwrap());
    }

    #[test]
    fn rehash_when_parameters_change() {
        let low = Hasher::new(LOW, 1, PATIENT);
        let phc = low.hash_blocking("some passphrase here").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=8192,t=1,p=1$"));
        assert!(!low.needs_rehash(&phc));
        assert!(Hasher::new(HashParams::default(), 1, PATIENT).needs_rehash(&phc));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_queue_longer_than_the_wait_is_refused_and_callers_that_leave_leave_no_work() {
        let hasher = Hasher::new(LOW, 1, Duration::from_millis(200));
        hasher.hash("warm up the estimate").await.unwrap();
        let one = hasher.queue.recent_micros.load(Ordering::Relaxed);
        assert!(one > 0);
        // A burst far beyond what fits in 200 ms: the tail is refused at once.
        let burst: Vec<_> = (0..200)
            .map(|i| {
                let h = hasher.clone();
                tokio::spawn(async move { h.hash(&format!("burst {i}")).await })
            })
            .collect();
        let mut busy = 0;
        for job in burst {
            if let Err(HashError::Busy { .. }) = job.await.unwrap() {
                busy += 1;
            }
        }
        assert!(busy > 100, "only {busy} of 200 refused");
        // Callers that give up: their jobs are dropped before they start.
        let gone: Vec<_> = (0..6)
            .map(|i| {
                let h = hasher.clone();
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(Duration::from_millis(1), h.hash(&format!("gone {i}"))).await;
                })
            })
            .collect();
        for g in gone {
            g.await.unwrap();
        }
        let started = Instant::now();
        hasher.hash("the next caller").await.unwrap();
        // At most the one job already running is ahead: the callers that left took theirs.
        assert!(
            started.elapsed() < Duration::from_micros(one) * 3 + Duration::from_millis(50),
            "waited {:?} with one hash taking {one} µs",
            started.elapsed()
        );
    }
}
