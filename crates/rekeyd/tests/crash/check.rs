//! The checks after a restart: the ledger against the server, and the answered forgots
//! against the captured mail.

use std::collections::HashSet;
use std::sync::atomic::AtomicBool;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::http::{http_client, post, Call};
use crate::ledger::{Registered, Shared};
use crate::load::{Client, Conn};

impl Client {
    /// After a restart: settles what was in flight, checks that every confirmed password
    /// works (all accounts when `full`, else the touched ones and a few others), and that
    /// every token used since the last check (all of them when `full`) is refused.
    pub(crate) fn check(&mut self, base: &str, full: bool, shared: &Shared) {
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

/// Waits until every known address has at least as many distinct reset tokens as forgots
/// answered for it; returns the shortfalls left at the deadline.
pub(crate) fn wait_for_mail(clients: &[Client], shared: &Shared, timeout: Duration) -> Vec<String> {
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
