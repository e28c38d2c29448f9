//! The mixed load: client threads, each with its own accounts, registering, signing in,
//! asking for resets and resetting until the server is killed.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use serde_json::{json, Value};

use crate::http::{http_client, post, Call};
use crate::ledger::{Account, Pending, Registered, Shared, Stats};
use crate::mailbox::GHOST_DOMAIN;
use crate::rng::Rng;

/// Domain of the accounts the load registers.
const KNOWN_DOMAIN: &str = "@load.example";

/// Where a thread sends its requests, and whether the server was killed.
pub(crate) struct Conn<'a> {
    pub(crate) http: &'a reqwest::blocking::Client,
    pub(crate) base: &'a str,
    pub(crate) stop: &'a AtomicBool,
}

/// One client thread: its accounts, its randomness, its counts and the problems it saw.
pub(crate) struct Client {
    id: usize,
    pub(crate) rng: Rng,
    pub(crate) accounts: Vec<Account>,
    ghosts: u64,
    pub(crate) stats: Stats,
    pub(crate) failures: Vec<String>,
    /// Tokens (account index, token) that got 204 since the last check: reused after the restart.
    pub(crate) to_reuse: Vec<(usize, String)>,
}

impl Client {
    /// Which client thread this is (it talks to the server this picks).
    pub(crate) fn id(&self) -> usize {
        self.id
    }

    pub(crate) fn new(id: usize, seed: u64) -> Client {
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

    pub(crate) fn password(&mut self) -> String {
        format!("amber lantern {} over quiet bay {:x}", self.id, self.rng.next())
    }

    pub(crate) fn fail(&mut self, what: String) {
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
    pub(crate) fn load(&mut self, base: &str, stop: &AtomicBool, shared: &Shared) {
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
    pub(crate) fn confirmed(&mut self, i: usize, token: &str, new_password: String, shared: &Shared) {
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
    pub(crate) fn reuse(&mut self, conn: &Conn, loading: bool, i: usize, token: &str, shared: &Shared) -> bool {
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
}
