//! Crash safety: `rekeyd serve` under a mixed load (register, sign in, forgot, reset), killed
//! with SIGKILL at random moments and restarted on the same data directory, with one real SMTP
//! capture server for the whole run.
//!
//! Client threads each own their accounts, so every account's password history is known
//! without races. Each thread keeps a ledger of what the server *answered*; a request whose
//! answer never arrived is "in flight" (its outcome is settled after the restart). After every
//! restart the ledger is checked against the server and the captured mail:
//!
//! * every registered account signs in with its latest confirmed password (or, when a reset was
//!   in flight at the kill, with the old or the new one, and the ledger learns which);
//! * every token that got 204 is refused when used again; no token gets 204 twice in the run;
//! * every forgot answered 202 for a known address has its own mail (distinct reset tokens
//!   delivered to an address ≥ forgots answered for it); forgots for unknown addresses never
//!   produce mail; mail delivered twice is counted as a duplicate, not a failure;
//! * the server comes back up each time.
//!
//! At the end: a clean restart, a full check, a bounded wait for every expected mail, SIGTERM,
//! and offline admin commands on the data directory; then a table of counts.
//!
//! `REKEY_CRASH_KILLS` (default 25) sets the number of kills, `REKEY_CRASH_SEED` replays a run
//! (the seed is printed), `REKEY_CRASH_BINARY` runs it against another `rekeyd`. The full run:
//! `REKEY_CRASH_KILLS=200 cargo test --release -p rekeyd --test crash -- --nocapture`.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::server::{command, Setup};
use rekey_testkit::{free_port, CapturedMail, SmtpCapture};
use serde_json::{json, Value};

/// Client threads running the load.
const THREADS: usize = 4;
/// Domain of the accounts the load registers.
const KNOWN_DOMAIN: &str = "@load.example";
/// Domain of addresses that never have an account.
const GHOST_DOMAIN: &str = "@nobody.example";
/// How long, after a restart, every answered forgot may take to have its mail.
const MAIL_WAIT: Duration = Duration::from_secs(30);
/// The same after the final clean restart.
const FINAL_MAIL_WAIT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// Randomness (seeded, so a run's choices can be replayed)

#[derive(Clone)]
struct Rng(u64);

impl Rng {
    /// splitmix64.
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64) / ((1u64 << 53) as f64) < p
    }
}

// ---------------------------------------------------------------------------------------------
// The captured mail, read incrementally (files are numbered 000001.json, 000002.json, …)

struct ResetMail {
    token: String,
    code: String,
}

#[derive(Default)]
struct MailIndex {
    /// Files read so far.
    read: u64,
    /// Reset mail by recipient: distinct tokens, in arrival order.
    resets: HashMap<String, Vec<ResetMail>>,
    /// Copies of each reset token received.
    token_copies: HashMap<String, u32>,
    /// Copies of each Message-ID received.
    message_ids: HashMap<String, u32>,
    /// Verification mail by recipient: the tokens, in arrival order.
    verifies: HashMap<String, Vec<String>>,
    /// "Your password was changed" notices.
    notices: u64,
    /// Mail to addresses that have no account.
    strays: Vec<String>,
}

impl MailIndex {
    fn add(&mut self, mail: CapturedMail) {
        if let Some(id) = mail.header("Message-ID") {
            *self.message_ids.entry(id.to_string()).or_default() += 1;
        }
        let to = mail.rcpt_to.first().cloned().unwrap_or_default();
        if to.ends_with(GHOST_DOMAIN) {
            self.strays.push(to.clone());
        }
        if let Some(token) = mail
            .text
            .as_deref()
            .and_then(|t| rekey_testkit::link_token(t, "rekey://verify?token="))
        {
            self.verifies.entry(to).or_default().push(token);
            return;
        }
        let is_reset = mail.text.as_deref().is_some_and(|t| t.contains("rekey://reset?token="));
        if !is_reset {
            self.notices += 1;
            return;
        }
        let token = mail.reset_token();
        let copies = self.token_copies.entry(token.clone()).or_default();
        *copies += 1;
        if *copies == 1 {
            let code = mail.reset_code();
            self.resets.entry(to).or_default().push(ResetMail { token, code });
        }
    }

    fn distinct_tokens(&self, address: &str) -> usize {
        self.resets.get(address).map_or(0, Vec::len)
    }

    fn total(&self) -> u64 {
        self.read
    }

    fn duplicate_messages(&self) -> u64 {
        self.message_ids.values().map(|n| u64::from(n - 1)).sum()
    }

    fn duplicate_tokens(&self) -> u64 {
        self.token_copies.values().map(|n| u64::from(n - 1)).sum()
    }
}

struct Mailbox {
    dir: PathBuf,
    index: Mutex<MailIndex>,
}

impl Mailbox {
    fn new(smtp: &SmtpCapture) -> Mailbox {
        Mailbox {
            dir: smtp.dir().join("mail"),
            index: Mutex::new(MailIndex::default()),
        }
    }

    /// Reads the files that arrived since the last look; returns the index.
    fn refresh(&self) -> MutexGuard<'_, MailIndex> {
        let mut index = self.index.lock().unwrap();
        loop {
            let path = self.dir.join(format!("{:06}.json", index.read + 1));
            let Ok(text) = fs::read_to_string(&path) else { break };
            let value: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            index.add(captured(&value));
            index.read += 1;
        }
        index
    }
}

/// A capture file as a [`CapturedMail`] (its fields are public; see rekey-testkit).
fn captured(v: &Value) -> CapturedMail {
    let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    let opt = |k: &str| v[k].as_str().map(str::to_string);
    CapturedMail {
        mail_from: s("mail_from"),
        rcpt_to: v["rcpt_to"]
            .as_array()
            .map(|a| a.iter().filter_map(|r| r.as_str().map(str::to_string)).collect())
            .unwrap_or_default(),
        port: s("port"),
        tls: v["tls"].as_bool().unwrap_or(false),
        auth_user: opt("auth_user"),
        raw: s("raw"),
        headers: v["headers"]
            .as_object()
            .map(|h| {
                h.iter()
                    .map(|(k, val)| (k.clone(), val.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default(),
        text: opt("text"),
        html: opt("html"),
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP

enum Call {
    /// The server answered with this status and body.
    Answered(u16, Value),
    /// The connection was refused: the server never saw it.
    NotSent,
    /// Sent, but no answer came back: the outcome is unknown.
    Lost,
}

fn http_client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(2))
        .build()
        .unwrap()
}

fn post(http: &reqwest::blocking::Client, url: &str, body: &Value, bearer: Option<&str>) -> Call {
    let mut request = http.post(url).json(body);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    match request.send() {
        Ok(r) => {
            let status = r.status().as_u16();
            Call::Answered(status, r.json().unwrap_or(Value::Null))
        }
        Err(e) if e.is_connect() => Call::NotSent,
        Err(_) => Call::Lost,
    }
}

// ---------------------------------------------------------------------------------------------
// The ledger

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Registered {
    Yes,
    /// Asked for (202): the mailed link finishes it.
    Asked,
    /// The request that asks for it was in flight at a kill: it may or may not have been
    /// taken; the load leaves it alone.
    Abandoned,
    /// The request with the mailed link was in flight at a kill.
    Unknown,
    /// Settled after a restart: the account does not exist.
    No,
}

/// A password change whose answer was lost.
struct Pending {
    new_password: String,
    token: String,
    /// It was a second use of a token that already got 204 (must never apply).
    reuse: bool,
}

struct Account {
    email: String,
    registered: Registered,
    password: String,
    pending: Option<Pending>,
    forgots_answered: u32,
    forgots_in_flight: u32,
    /// Tokens tried for this account (each is tried once by the load).
    tried: HashSet<String>,
    /// Tokens that changed this account's password.
    used: Vec<String>,
    /// Touched since the last check.
    dirty: bool,
}

#[derive(Default, Clone, Copy)]
struct Tally {
    sent: u64,
    answered: u64,
    in_flight: u64,
}

const KINDS: [&str; 8] = [
    "register",
    "verify",
    "sign-in",
    "forgot (known)",
    "forgot (unknown)",
    "reset (token)",
    "reset (code)",
    "token reuse",
];

#[derive(Default)]
struct Stats {
    kinds: BTreeMap<&'static str, Tally>,
    /// Refusals of first-time resets, by code.
    reset_refusals: BTreeMap<String, u64>,
    /// Refusals of reused tokens, by code.
    reuse_refusals: BTreeMap<String, u64>,
    resets_confirmed: u64,
    resets_applied_in_flight: u64,
    resets_not_applied_in_flight: u64,
    registers_settled_yes: u64,
    registers_settled_no: u64,
    check_sign_ins: u64,
}

impl Stats {
    fn merge(&mut self, other: &Stats) {
        for (k, t) in &other.kinds {
            let mine = self.kinds.entry(k).or_default();
            mine.sent += t.sent;
            mine.answered += t.answered;
            mine.in_flight += t.in_flight;
        }
        for (k, n) in &other.reset_refusals {
            *self.reset_refusals.entry(k.clone()).or_default() += n;
        }
        for (k, n) in &other.reuse_refusals {
            *self.reuse_refusals.entry(k.clone()).or_default() += n;
        }
        self.resets_confirmed += other.resets_confirmed;
        self.resets_applied_in_flight += other.resets_applied_in_flight;
        self.resets_not_applied_in_flight += other.resets_not_applied_in_flight;
        self.registers_settled_yes += other.registers_settled_yes;
        self.registers_settled_no += other.registers_settled_no;
        self.check_sign_ins += other.check_sign_ins;
    }
}

/// What every thread shares.
struct Shared {
    mailbox: Mailbox,
    /// 204 answers per token, over the whole run.
    accepted: Mutex<HashMap<String, u32>>,
}

impl Shared {
    /// Records a 204 for `token`; false if it had one already.
    fn accept(&self, token: &str) -> bool {
        let mut accepted = self.accepted.lock().unwrap();
        let n = accepted.entry(token.to_string()).or_default();
        *n += 1;
        *n == 1
    }
}

/// Where a thread sends its requests, and whether the server was killed.
struct Conn<'a> {
    http: &'a reqwest::blocking::Client,
    base: &'a str,
    stop: &'a AtomicBool,
}

/// One client thread: its accounts, its randomness, its counts and the problems it saw.
struct Client {
    id: usize,
    rng: Rng,
    accounts: Vec<Account>,
    ghosts: u64,
    stats: Stats,
    failures: Vec<String>,
    /// Tokens (account index, token) that got 204 since the last check: reused after the restart.
    to_reuse: Vec<(usize, String)>,
}

impl Client {
    fn new(id: usize, seed: u64) -> Client {
        Client {
            id,
            rng: Rng(seed ^ (id as u64 + 1).wrapping_mul(0xA076_1D64_78BD_642F)),
            accounts: Vec::new(),
            ghosts: 0,
            stats: Stats::default(),
            failures: Vec::new(),
            to_reuse: Vec::new(),
        }
    }

    fn password(&mut self) -> String {
        format!("amber lantern {} over quiet bay {:x}", self.id, self.rng.next())
    }

    fn fail(&mut self, what: String) {
        self.failures.push(format!("client {}: {what}", self.id));
    }

    /// Sends one load request, counting it. `None`: the thread's cycle is over (the request
    /// is in flight, or the server is gone and it was never sent).
    fn call(
        &mut self,
        kind: &'static str,
        conn: &Conn,
        path: &str,
        body: Value,
        bearer: Option<&str>,
    ) -> Option<Result<(u16, Value), ()>> {
        loop {
            match post(conn.http, &format!("{}{path}", conn.base), &body, bearer) {
                Call::Answered(status, value) => {
                    let t = self.stats.kinds.entry(kind).or_default();
                    t.sent += 1;
                    t.answered += 1;
                    return Some(Ok((status, value)));
                }
                Call::Lost => {
                    let t = self.stats.kinds.entry(kind).or_default();
                    t.sent += 1;
                    t.in_flight += 1;
                    return Some(Err(()));
                }
                Call::NotSent if conn.stop.load(Ordering::SeqCst) => return None,
                Call::NotSent => thread::sleep(Duration::from_millis(5)),
            }
        }
    }

    /// Runs the mixed load until the server is killed.
    fn load(&mut self, base: &str, stop: &AtomicBool, shared: &Shared) {
        let http = http_client();
        let conn = &Conn {
            http: &http,
            base,
            stop,
        };
        while !stop.load(Ordering::SeqCst) {
            let ready: Vec<usize> = (0..self.accounts.len())
                .filter(|&i| self.accounts[i].registered == Registered::Yes && self.accounts[i].pending.is_none())
                .collect();
            let asked: Vec<usize> = (0..self.accounts.len())
                .filter(|&i| self.accounts[i].registered == Registered::Asked)
                .collect();
            let done = if !asked.is_empty() && (ready.len() < 2 || self.rng.chance(0.3)) {
                self.verify(conn, &asked, shared)
            } else if ready.len() < 2 || self.rng.chance(0.06) {
                self.register(conn)
            } else {
                match self.rng.below(100) {
                    0..=24 => self.sign_in(conn, &ready),
                    25..=54 => self.forgot_known(conn, &ready),
                    55..=64 => self.forgot_unknown(conn),
                    _ => self.reset(conn, &ready, shared),
                }
            };
            if done {
                return;
            }
        }
    }

    /// Each action returns true when the cycle is over for this thread.
    fn register(&mut self, conn: &Conn) -> bool {
        let email = format!("c{}u{}{KNOWN_DOMAIN}", self.id, self.accounts.len());
        let password = self.password();
        let body = json!({"email": email, "password": password});
        let Some(outcome) = self.call("register", conn, "/users", body, None) else {
            return true;
        };
        let registered = match outcome {
            Ok((202, _)) => Registered::Asked,
            Ok((status, body)) => {
                self.fail(format!("register {email}: {status} {body}"));
                Registered::No
            }
            Err(()) => Registered::Abandoned,
        };
        self.accounts.push(Account {
            email,
            registered,
            password,
            pending: None,
            forgots_answered: 0,
            forgots_in_flight: 0,
            tried: HashSet::new(),
            used: Vec::new(),
            dirty: true,
        });
        registered == Registered::Abandoned
    }

    /// Opens the newest mailed link of an account asked for, once it has arrived.
    fn verify(&mut self, conn: &Conn, asked: &[usize], shared: &Shared) -> bool {
        let found = {
            let index = shared.mailbox.refresh();
            asked
                .iter()
                .filter_map(|&i| Some((i, index.verifies.get(&self.accounts[i].email)?.last()?.clone())))
                .collect::<Vec<_>>()
        };
        if found.is_empty() {
            thread::sleep(Duration::from_millis(20));
            return false;
        }
        let (i, token) = found[self.rng.below(found.len() as u64) as usize].clone();
        let email = self.accounts[i].email.clone();
        self.accounts[i].dirty = true;
        let password = self.accounts[i].password.clone();
        let body = json!({ "token": token, "password": password });
        match self.call("verify", conn, "/users/verify", body, None) {
            None => true,
            Some(Err(())) => {
                self.accounts[i].registered = Registered::Unknown;
                true
            }
            // 409: an earlier try whose answer was lost had finished it.
            Some(Ok((201 | 409, _))) => {
                self.accounts[i].registered = Registered::Yes;
                false
            }
            Some(Ok((status, body))) => {
                self.fail(format!("verify {email}: {status} {body}"));
                self.accounts[i].registered = Registered::No;
                false
            }
        }
    }

    fn sign_in(&mut self, conn: &Conn, ready: &[usize]) -> bool {
        let i = ready[self.rng.below(ready.len() as u64) as usize];
        let (email, password) = (self.accounts[i].email.clone(), self.accounts[i].password.clone());
        let body = json!({"email": email, "password": password});
        match self.call("sign-in", conn, "/sessions", body, None) {
            None => true,
            Some(Err(())) => true,
            Some(Ok((200, _))) => false,
            Some(Ok((status, body))) => {
                self.fail(format!(
                    "sign-in of {email} with its confirmed password: {status} {body}"
                ));
                false
            }
        }
    }

    fn forgot_known(&mut self, conn: &Conn, ready: &[usize]) -> bool {
        let i = ready[self.rng.below(ready.len() as u64) as usize];
        let email = self.accounts[i].email.clone();
        let body = json!({ "email": email });
        match self.call("forgot (known)", conn, "/users/password/forgot", body, None) {
            None => return true,
            Some(Err(())) => {
                self.accounts[i].forgots_in_flight += 1;
                return true;
            }
            Some(Ok((202, _))) => self.accounts[i].forgots_answered += 1,
            Some(Ok((status, body))) => self.fail(format!("forgot {email}: {status} {body}")),
        }
        self.accounts[i].dirty = true;
        false
    }

    fn forgot_unknown(&mut self, conn: &Conn) -> bool {
        self.ghosts += 1;
        let email = format!("c{}g{}{GHOST_DOMAIN}", self.id, self.ghosts);
        let body = json!({ "email": email });
        match self.call("forgot (unknown)", conn, "/users/password/forgot", body, None) {
            None | Some(Err(())) => true,
            Some(Ok((202, _))) => false,
            Some(Ok((status, body))) => {
                self.fail(format!("forgot {email} (no account): {status} {body}"));
                false
            }
        }
    }

    /// Resets with the newest token (or its code) from this account's mail not tried yet.
    fn reset(&mut self, conn: &Conn, ready: &[usize], shared: &Shared) -> bool {
        let candidate = {
            let index = shared.mailbox.refresh();
            let mut found: Vec<(usize, String, String)> = Vec::new();
            for &i in ready {
                let a = &self.accounts[i];
                if let Some(mail) = index
                    .resets
                    .get(&a.email)
                    .and_then(|m| m.last())
                    .filter(|m| !a.tried.contains(&m.token))
                {
                    found.push((i, mail.token.clone(), mail.code.clone()));
                }
            }
            found
        };
        if candidate.is_empty() {
            return self.forgot_known(conn, ready);
        }
        let (i, token, code) = candidate[self.rng.below(candidate.len() as u64) as usize].clone();
        let email = self.accounts[i].email.clone();
        let new_password = self.password();
        let style = self.rng.below(10);
        let (kind, body, bearer) = match style {
            0..=3 => (
                "reset (token)",
                json!({"token": token, "new_password": new_password}),
                None,
            ),
            4..=6 => (
                "reset (token)",
                json!({ "new_password": new_password }),
                Some(token.as_str()),
            ),
            _ => (
                "reset (code)",
                json!({"email": email, "code": code, "new_password": new_password}),
                None,
            ),
        };
        self.accounts[i].tried.insert(token.clone());
        self.accounts[i].dirty = true;
        let outcome = self.call(kind, conn, "/users/password/reset", body, bearer);
        match outcome {
            None => return true,
            Some(Err(())) => {
                self.accounts[i].pending = Some(Pending {
                    new_password,
                    token,
                    reuse: false,
                });
                return true;
            }
            Some(Ok((204, _))) => {
                self.stats.resets_confirmed += 1;
                self.confirmed(i, &token, new_password, shared);
            }
            Some(Ok((status, body))) if (400..500).contains(&status) => {
                let code = body["code"].as_str().unwrap_or("(no code)").to_string();
                *self.stats.reset_refusals.entry(code).or_default() += 1;
                return false;
            }
            Some(Ok((status, body))) => {
                self.fail(format!("reset of {email}: {status} {body}"));
                return false;
            }
        }
        // Sometimes use the same token again at once: it must be refused.
        if self.rng.chance(0.3) {
            return self.reuse(conn, true, i, &token, shared);
        }
        false
    }

    /// Notes a 204 for `token` on account `i`.
    fn confirmed(&mut self, i: usize, token: &str, new_password: String, shared: &Shared) {
        if !shared.accept(token) {
            let email = self.accounts[i].email.clone();
            self.fail(format!("a token of {email} was accepted (204) a second time"));
        }
        let account = &mut self.accounts[i];
        account.password = new_password;
        account.used.push(token.to_string());
        self.to_reuse.push((i, token.to_string()));
    }

    /// Sends an already used token again: during the load, or during a check (`loading`
    /// false), when the server must answer. Returns true when the load cycle is over.
    fn reuse(&mut self, conn: &Conn, loading: bool, i: usize, token: &str, shared: &Shared) -> bool {
        let new_password = self.password();
        let body = json!({"token": token, "new_password": new_password});
        let outcome = self.call("token reuse", conn, "/users/password/reset", body, None);
        let email = self.accounts[i].email.clone();
        match outcome {
            None | Some(Err(())) if !loading => {
                self.fail(format!(
                    "the server did not answer a token reuse for {email} during a check"
                ));
                false
            }
            None => true,
            Some(Err(())) => {
                self.accounts[i].pending = Some(Pending {
                    new_password,
                    token: token.to_string(),
                    reuse: true,
                });
                self.accounts[i].dirty = true;
                true
            }
            Some(Ok((204, _))) => {
                self.fail(format!("a used token of {email} was accepted again (204)"));
                shared.accept(token);
                self.accounts[i].password = new_password;
                false
            }
            Some(Ok((status, body))) if (400..500).contains(&status) => {
                let code = body["code"].as_str().unwrap_or("(no code)").to_string();
                *self.stats.reuse_refusals.entry(code).or_default() += 1;
                false
            }
            Some(Ok((status, body))) => {
                self.fail(format!("token reuse for {email}: {status} {body}"));
                false
            }
        }
    }

    /// After a restart: settles what was in flight, checks that every confirmed password
    /// works (all accounts when `full`, else the touched ones and a few others), and that
    /// every token used since the last check (all of them when `full`) is refused.
    fn check(&mut self, base: &str, full: bool, shared: &Shared) {
        let http = http_client();
        let sampled: HashSet<usize> = (0..3)
            .map(|_| self.rng.below(self.accounts.len().max(1) as u64) as usize)
            .collect();
        for i in 0..self.accounts.len() {
            if !(full || self.accounts[i].dirty || sampled.contains(&i)) {
                continue;
            }
            self.accounts[i].dirty = false;
            let email = self.accounts[i].email.clone();
            match self.accounts[i].registered {
                Registered::No | Registered::Asked | Registered::Abandoned => continue,
                Registered::Unknown => {
                    let password = self.accounts[i].password.clone();
                    match self.try_sign_in(&http, base, &email, &password) {
                        Some(true) => {
                            self.accounts[i].registered = Registered::Yes;
                            self.stats.registers_settled_yes += 1;
                        }
                        Some(false) => {
                            self.accounts[i].registered = Registered::No;
                            self.stats.registers_settled_no += 1;
                        }
                        None => {}
                    }
                    continue;
                }
                Registered::Yes => {}
            }
            if let Some(p) = self.accounts[i].pending.take() {
                if self.try_sign_in(&http, base, &email, &p.new_password) == Some(true) {
                    if p.reuse {
                        self.fail(format!(
                            "a used token of {email} was applied again (its answer was lost)"
                        ));
                        self.accounts[i].password = p.new_password;
                    } else {
                        self.stats.resets_applied_in_flight += 1;
                        self.confirmed(i, &p.token, p.new_password, shared);
                    }
                    continue;
                }
                if !p.reuse {
                    self.stats.resets_not_applied_in_flight += 1;
                }
            }
            let password = self.accounts[i].password.clone();
            if self.try_sign_in(&http, base, &email, &password) == Some(false) {
                self.fail(format!("{email} cannot sign in with its latest confirmed password"));
            }
        }
        let to_reuse: Vec<(usize, String)> = if full {
            (0..self.accounts.len())
                .flat_map(|i| self.accounts[i].used.iter().map(move |t| (i, t.clone())))
                .collect()
        } else {
            std::mem::take(&mut self.to_reuse)
        };
        self.to_reuse.clear();
        // During a check the server is up: a request it does not answer is a failure, not a kill.
        let stopped = AtomicBool::new(true);
        let conn = &Conn {
            http: &http,
            base,
            stop: &stopped,
        };
        for (i, token) in to_reuse {
            self.reuse(conn, false, i, &token, shared);
        }
    }

    /// `Some(true)`: 200; `Some(false)`: 401; `None`: anything else (recorded as a failure).
    fn try_sign_in(&mut self, http: &reqwest::blocking::Client, base: &str, email: &str, pw: &str) -> Option<bool> {
        self.stats.check_sign_ins += 1;
        match post(
            http,
            &format!("{base}/sessions"),
            &json!({"email": email, "password": pw}),
            None,
        ) {
            Call::Answered(200, _) => Some(true),
            Call::Answered(401, _) => Some(false),
            Call::Answered(status, body) => {
                self.fail(format!("check sign-in of {email}: {status} {body}"));
                None
            }
            Call::NotSent | Call::Lost => {
                self.fail(format!("check sign-in of {email}: the server did not answer"));
                None
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The server process

struct Proc {
    child: Child,
    base: String,
    started: Instant,
}

fn setup() -> Setup {
    Setup::default()
        .with("REKEY_LIMIT_ADDRESS", "off")
        .with("REKEY_LIMIT_CLIENT", "off")
        .with("REKEY_LIMIT_SIGNIN_ACCOUNT", "off")
        .with("REKEY_LIMIT_SIGNIN_CLIENT", "off")
        .with("REKEY_LIMIT_SIGNIN_SPRAY", "off")
        .with("REKEY_LIMIT_REGISTER_CLIENT", "off")
        .with("REKEY_LIMIT_CODE_CLIENT", "off")
        .with("REKEY_LIMIT_CODE_ADDRESS", "off")
}

impl Proc {
    fn spawn(data: &Path, smtp: &SmtpCapture, log: &Path) -> Proc {
        let port = free_port();
        // REKEY_CRASH_BINARY runs the harness against another build (a mutant, an old release).
        let binary = std::env::var_os("REKEY_CRASH_BINARY")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_rekeyd")));
        let log = fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
        let started = Instant::now();
        let child = command(&binary, data, (port, free_port()), Some(smtp), &setup())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("rekeyd serve starts");
        Proc {
            child,
            base: format!("http://127.0.0.1:{port}"),
            started,
        }
    }

    /// Waits until `/healthz` answers 200; returns the time since the spawn.
    fn wait_healthy(&mut self, log: &Path) -> Duration {
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = http.get(format!("{}/healthz", self.base)).send() {
                if r.status().as_u16() == 200 {
                    return self.started.elapsed();
                }
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("rekeyd serve exited ({status}) after a kill:\n{}", tail(log));
            }
            assert!(
                Instant::now() < deadline,
                "rekeyd serve did not come back up within 30 s:\n{}",
                tail(log)
            );
            thread::sleep(Duration::from_millis(5));
        }
    }

    fn kill(mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }

    fn terminate(mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "rekeyd did not stop after SIGTERM");
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A failed assertion must not leave a server running after the test.
impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn tail(log: &Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// An offline admin command on the data directory.
fn admin(data: &Path, args: &[&str]) -> String {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rekeyd"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("REKEY_")) {
        c.env_remove(k);
    }
    c.arg("--data-dir").arg(data).args(args);
    c.env("REKEY_MAIL_FROM", "Rekey <no-reply@rekey.test>");
    let out = c.stdin(Stdio::null()).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "rekeyd {args:?} failed on the data directory: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

// ---------------------------------------------------------------------------------------------
// The run

/// Runs `f` on every client in its own thread; returns them in order.
fn in_threads(clients: Vec<Client>, f: impl Fn(&mut Client) + Send + Sync + Clone + 'static) -> Vec<Client> {
    let handles: Vec<_> = clients
        .into_iter()
        .map(|mut c| {
            let f = f.clone();
            thread::spawn(move || {
                f(&mut c);
                c
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("a client thread"))
        .collect()
}

/// Waits until every known address has at least as many distinct reset tokens as forgots
/// answered for it; returns the shortfalls left at the deadline.
fn wait_for_mail(clients: &[Client], shared: &Shared, timeout: Duration) -> Vec<String> {
    let expected: Vec<(&str, usize)> = clients
        .iter()
        .flat_map(|c| c.accounts.iter())
        .filter(|a| a.forgots_answered > 0)
        .map(|a| (a.email.as_str(), a.forgots_answered as usize))
        .collect();
    let deadline = Instant::now() + timeout;
    loop {
        let short: Vec<String> = {
            let index = shared.mailbox.refresh();
            let mut short: Vec<String> = expected
                .iter()
                .filter(|(email, n)| index.distinct_tokens(email) < *n)
                .map(|(email, n)| {
                    format!(
                        "{email}: {n} forgot(s) answered 202, {} reset mail(s) delivered",
                        index.distinct_tokens(email)
                    )
                })
                .collect();
            short.extend(
                index
                    .strays
                    .iter()
                    .map(|to| format!("mail went to {to}, which has no account")),
            );
            short
        };
        if short.is_empty() || Instant::now() >= deadline {
            return short;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn env_u64(key: &str) -> Option<u64> {
    std::env::var(key).ok().map(|v| {
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{key}={v:?} is not a number"))
    })
}

fn millis(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

#[test]
fn answered_requests_survive_sigkill_at_random_moments() {
    let run_started = Instant::now();
    let kills = env_u64("REKEY_CRASH_KILLS").unwrap_or(25);
    let seed = env_u64("REKEY_CRASH_SEED").unwrap_or_else(|| {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64;
        Rng(nanos ^ u64::from(std::process::id())).next()
    });
    println!("crash: {kills} kills, seed {seed} (replay the choices with REKEY_CRASH_SEED={seed})");

    let smtp = SmtpCapture::start();
    let dir = tempfile::Builder::new().prefix("rekey-crash-").tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("rekeyd.log");
    let shared = Arc::new(Shared {
        mailbox: Mailbox::new(&smtp),
        accepted: Mutex::new(HashMap::new()),
    });
    let mut rng = Rng(seed);
    let mut clients: Vec<Client> = (0..THREADS).map(|i| Client::new(i, seed)).collect();
    let mut done = 0u64;
    let mut startup_kills = 0u64;
    let mut startups: Vec<Duration> = Vec::new();

    let problems = |clients: &mut Vec<Client>, extra: Vec<String>, when: &str| {
        let mut all: Vec<String> = clients.iter_mut().flat_map(|c| c.failures.drain(..)).collect();
        all.extend(extra);
        if !all.is_empty() {
            panic!(
                "crash harness (seed {seed}) {when}: {} problem(s):\n  {}\nrekeyd log (tail):\n{}",
                all.len(),
                all.join("\n  "),
                tail(&log)
            );
        }
    };

    while done < kills {
        let mut proc = Proc::spawn(&data, &smtp, &log);
        if done > 0 && rng.chance(0.15) {
            // A kill while the server is still starting (opening sled, recovering).
            thread::sleep(Duration::from_millis(rng.range(0, 60)));
            proc.kill();
            done += 1;
            startup_kills += 1;
            continue;
        }
        let up = proc.wait_healthy(&log);
        if done > 0 {
            startups.push(up);
        }
        // Check the ledger against the restarted server.
        let base = proc.base.clone();
        let sh = shared.clone();
        clients = in_threads(clients, move |c| c.check(&base, false, &sh));
        let short = wait_for_mail(&clients, &shared, MAIL_WAIT);
        problems(&mut clients, short, &format!("after restart {done}"));

        // Load, then SIGKILL at a random moment.
        let delay = if rng.chance(0.25) {
            rng.range(20, 100)
        } else {
            rng.range(100, 800)
        };
        let stop = Arc::new(AtomicBool::new(false));
        let handles: Vec<_> = clients
            .into_iter()
            .map(|mut c| {
                let (base, stop, sh) = (proc.base.clone(), stop.clone(), shared.clone());
                thread::spawn(move || {
                    c.load(&base, &stop, &sh);
                    c
                })
            })
            .collect();
        thread::sleep(Duration::from_millis(delay));
        proc.kill();
        stop.store(true, Ordering::SeqCst);
        clients = handles
            .into_iter()
            .map(|h| h.join().expect("a client thread"))
            .collect();
        done += 1;
        if done.is_multiple_of(25) {
            println!("crash: {done} kills, {:.0?}", run_started.elapsed());
        }
    }

    // A clean restart: settle everything, check every account and every used token.
    let mut proc = Proc::spawn(&data, &smtp, &log);
    startups.push(proc.wait_healthy(&log));
    let base = proc.base.clone();
    let sh = shared.clone();
    clients = in_threads(clients, move |c| c.check(&base, true, &sh));
    let short = wait_for_mail(&clients, &shared, FINAL_MAIL_WAIT);
    problems(&mut clients, short, "after the final restart");
    let status = proc.terminate();
    assert!(status.success(), "rekeyd serve stopped with {status}:\n{}", tail(&log));

    // The data directory opens offline, without repair, and holds what the ledger says.
    let users: Value = serde_json::from_str(&admin(&data, &["users", "list", "--json"])).unwrap();
    let listed = users.as_array().map_or(0, Vec::len) as u64;
    let outbox: Value = serde_json::from_str(&admin(&data, &["outbox", "status", "--json"])).unwrap();

    let mut stats = Stats::default();
    for c in &clients {
        stats.merge(&c.stats);
    }
    let registered = clients
        .iter()
        .flat_map(|c| c.accounts.iter())
        .filter(|a| a.registered == Registered::Yes)
        .count() as u64;
    let log_text = fs::read_to_string(&log).unwrap_or_default();
    let log_errors = log_text.lines().filter(|l| l.contains("ERROR")).count();
    let log_warnings = log_text.lines().filter(|l| l.contains("WARN")).count();
    let mut extra_problems = Vec::new();
    if log_text.contains("panicked") {
        extra_problems.push("rekeyd panicked (see the log below)".to_string());
    }
    if listed != registered {
        extra_problems.push(format!(
            "`rekeyd users list` shows {listed} accounts, the ledger {registered}"
        ));
    }
    if outbox["depth"].as_u64() != Some(0) || outbox["dead"].as_u64() != Some(0) {
        extra_problems.push(format!("the outbox is not empty after the drain: {outbox}"));
    }
    problems(&mut clients, extra_problems, "at the end");
    let accounts: Vec<&Account> = clients.iter().flat_map(|c| c.accounts.iter()).collect();

    let index = shared.mailbox.refresh();
    let expected: u64 = accounts.iter().map(|a| u64::from(a.forgots_answered)).sum();
    let in_flight_forgots: u64 = accounts.iter().map(|a| u64::from(a.forgots_in_flight)).sum();
    let delivered: u64 = index.resets.values().map(|v| v.len() as u64).sum();
    let lost: u64 = accounts
        .iter()
        .map(|a| u64::from(a.forgots_answered).saturating_sub(index.distinct_tokens(&a.email) as u64))
        .sum();
    let extra: u64 = accounts
        .iter()
        .map(|a| (index.distinct_tokens(&a.email) as u64).saturating_sub(u64::from(a.forgots_answered)))
        .sum();
    let twice = shared.accepted.lock().unwrap().values().filter(|&&n| n > 1).count();
    let reused: u64 = stats.kinds.get("token reuse").map_or(0, |t| t.answered);
    let reuse_refused: u64 = stats.reuse_refusals.values().sum();
    startups.sort();
    let median = startups[startups.len() / 2];
    let max = *startups.last().unwrap();
    let elapsed = run_started.elapsed();

    let mut table = String::new();
    let mut line = |s: String| {
        table.push_str(&s);
        table.push('\n');
    };
    line(format!(
        "crash harness: seed {seed}, {THREADS} client threads, run time {elapsed:.1?}"
    ));
    line(format!(
        "  kills (SIGKILL)          {done} ({startup_kills} during startup), restarts {}",
        done + 1
    ));
    line(format!(
        "  {:<22} {:>8} {:>9} {:>10}",
        "request", "sent", "answered", "in flight"
    ));
    let mut totals = Tally::default();
    for kind in KINDS {
        let t = stats.kinds.get(kind).copied().unwrap_or_default();
        totals.sent += t.sent;
        totals.answered += t.answered;
        totals.in_flight += t.in_flight;
        line(format!(
            "  {kind:<22} {:>8} {:>9} {:>10}",
            t.sent, t.answered, t.in_flight
        ));
    }
    line(format!(
        "  {:<22} {:>8} {:>9} {:>10}",
        "total", totals.sent, totals.answered, totals.in_flight
    ));
    line(format!(
        "  accounts                 {registered} registered ({} settled after an in-flight register, {} not created); `users list` shows {listed}",
        stats.registers_settled_yes, stats.registers_settled_no
    ));
    line(format!(
        "  reset mail               expected {expected}, delivered {delivered} distinct, extra {extra} (forgots in flight: {in_flight_forgots}), lost {lost}"
    ));
    line(format!(
        "  duplicates               {} mail(s) with a Message-ID seen before ({} reset tokens delivered twice)",
        index.duplicate_messages(),
        index.duplicate_tokens()
    ));
    line(format!(
        "  other mail               {} password-changed notices, {} to addresses without an account; {} messages in all",
        index.notices,
        index.strays.len(),
        index.total()
    ));
    line(format!(
        "  resets                   {} confirmed (204), {} applied while in flight, {} in flight not applied; refused {:?}",
        stats.resets_confirmed, stats.resets_applied_in_flight, stats.resets_not_applied_in_flight, stats.reset_refusals
    ));
    line(format!(
        "  tokens reused            {reused}, refused {reuse_refused} {:?}, accepted twice {twice}",
        stats.reuse_refusals
    ));
    line(format!(
        "  startup after kill       median {}, max {} ({} restarts measured)",
        millis(median),
        millis(max),
        startups.len()
    ));
    line(format!(
        "  ledger checks            {} sign-ins after restarts",
        stats.check_sign_ins
    ));
    line(format!(
        "  server log               {log_errors} ERROR and {log_warnings} WARN lines over all runs, no panic"
    ));
    print!("{table}");

    use rekey_testkit::figures::record;
    let g = "crash";
    record(
        g,
        "kills",
        &format!("{done}"),
        &format!("{startup_kills} during startup"),
        None,
    );
    record(
        g,
        "requests answered",
        &format!("{}", totals.answered),
        &format!("{} sent, {} in flight at a kill", totals.sent, totals.in_flight),
        Some(totals.answered as f64 / totals.sent.max(1) as f64),
    );
    record(
        g,
        "reset mail delivered",
        &format!("{delivered}"),
        &format!("{expected} expected"),
        Some(delivered as f64 / expected.max(1) as f64),
    );
    record(
        g,
        "duplicate mail",
        &format!("{}", index.duplicate_messages()),
        "",
        None,
    );
    record(g, "extra reset mail", &format!("{extra}"), "forgots in flight", None);
    record(g, "resets confirmed", &format!("{}", stats.resets_confirmed), "", None);
    record(
        g,
        "tokens reused and refused",
        &format!("{reuse_refused}"),
        &format!("{reused} reused"),
        None,
    );
    record(g, "tokens accepted twice", &format!("{twice}"), "", None);
    record(g, "startup after kill (median)", &millis(median), "", None);
    record(g, "startup after kill (max)", &millis(max), "", None);
    record(g, "run time", &format!("{:.1} s", elapsed.as_secs_f64()), "", None);

    // What a user would check.
    assert!(
        expected > 0 && stats.resets_confirmed > 0,
        "the load did little:\n{table}"
    );
    assert!(delivered >= expected, "answered forgots lost their mail:\n{table}");
    assert_eq!(twice, 0, "a token was accepted twice:\n{table}");
    assert_eq!(reuse_refused, reused, "a reused token was not refused:\n{table}");
}
