//! Which parameters "no such account" is hashed with.
//!
//! A failed sign-in costs one argon2 verification, at the parameters of the stored hash. After
//! the `argon2_*` settings change, accounts keep their old hashes until they next sign in,
//! so a sign-in for a real account costs what the *old* parameters cost. A decoy made with
//! the *new* parameters would then tell strangers from accounts by time alone (measured in
//! `side_channels.rs`: the two were told apart at once).
//!
//! So the decoy for an address is drawn from the accounts' own parameters, in their
//! proportions: the address, keyed with a secret (so the draw cannot be computed from
//! outside, and stays the same across restarts), picks one account "slot" among all of them,
//! and the decoy takes that slot's parameters. For any address the chance of each cost is the
//! same whether or not it has an account.

use std::collections::BTreeMap;
use std::sync::Mutex;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::email::Email;
use crate::hasher::{params_of, HashParams};
use crate::store::User;

/// How many accounts have hashes of each parameters.
pub(crate) struct Population {
    counts: Mutex<BTreeMap<HashParams, u64>>,
    secret: [u8; 32],
}

impl Population {
    /// Counts the accounts in `users` (once, at open).
    pub(crate) fn count(users: &[User], secret: [u8; 32]) -> Population {
        let mut counts = BTreeMap::new();
        for params in users.iter().filter_map(|u| params_of(&u.password_hash)) {
            *counts.entry(params).or_insert(0) += 1;
        }
        Population {
            counts: Mutex::new(counts),
            secret,
        }
    }

    /// Every parameters some account has.
    pub(crate) fn kinds(&self) -> Vec<HashParams> {
        self.counts
            .lock()
            .map(|c| c.keys().copied().collect())
            .unwrap_or_default()
    }

    /// An account's hash was replaced (`from` → `to`; `None` for none).
    pub(crate) fn moved(&self, from: Option<&str>, to: Option<&str>) {
        let Ok(mut counts) = self.counts.lock() else { return };
        if let Some(p) = from.and_then(params_of) {
            if let Some(n) = counts.get_mut(&p) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    counts.remove(&p);
                }
            }
        }
        if let Some(p) = to.and_then(params_of) {
            *counts.entry(p).or_insert(0) += 1;
        }
    }

    /// The decoy parameters for `email`: those of the account slot its keyed hash falls on;
    /// `current` when there are no accounts.
    pub(crate) fn pick(&self, email: &Email, current: HashParams) -> HashParams {
        let Ok(counts) = self.counts.lock() else {
            return current;
        };
        let total: u64 = counts.values().sum();
        if total == 0 {
            return current;
        }
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("any key length");
        mac.update(email.as_str().as_bytes());
        let draw = mac.finalize().into_bytes();
        let mut slot = u64::from_be_bytes(draw[..8].try_into().expect("8 bytes")) % total;
        for (params, n) in counts.iter() {
            if slot < *n {
                return *params;
            }
            slot -= n;
        }
        current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phc(m: u32, t: u32) -> String {
        format!("$argon2id$v=19$m={m},t={t},p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g")
    }

    #[test]
    fn decoys_follow_the_accounts_proportions_and_stay_put() {
        let population = Population::count(&[], [7; 32]);
        let current = HashParams::default();
        let anyone = Email::parse("anyone@example.com").unwrap();
        assert_eq!(
            population.pick(&anyone, current),
            current,
            "no accounts: today's settings"
        );
        for _ in 0..3 {
            population.moved(None, Some(&phc(8192, 1)));
        }
        population.moved(None, Some(&phc(19456, 2)));
        let old = HashParams {
            memory_kib: 8192,
            iterations: 1,
            parallelism: 1,
        };
        let mut old_draws = 0;
        for i in 0..4000 {
            let email = Email::parse(&format!("u{i}@example.com")).unwrap();
            let picked = population.pick(&email, current);
            assert_eq!(
                picked,
                population.pick(&email, current),
                "the same address, the same draw"
            );
            old_draws += usize::from(picked == old);
        }
        assert!(
            (2800..3200).contains(&old_draws),
            "3 in 4 accounts are old: {old_draws} of 4000"
        );
        // Everyone signs in again and is rehashed: only the new settings are left.
        for _ in 0..3 {
            population.moved(Some(&phc(8192, 1)), Some(&phc(19456, 2)));
        }
        assert_eq!(population.kinds(), vec![current]);
    }
}
