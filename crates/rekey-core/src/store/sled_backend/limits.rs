//! Rate limits in the `limits` tree: one big-endian arrival time (milliseconds) per key,
//! changed by compare-and-swap. No transaction: sled transactions serialise against
//! concurrent flushes, which would make the request path slow under load.

use async_trait::async_trait;

use super::Store;
use crate::error::Error;
use crate::limits::{Decision, RateLimit};
use crate::store::LimitSteps;

fn arrival(bytes: Option<&[u8]>) -> Option<i64> {
    bytes.and_then(|v| v.try_into().ok()).map(i64::from_be_bytes)
}

/// Counts one event for `key` in `tree`. `Ok(Err(retry_after))` when over the limit; nothing
/// is written then. (The reset worker counts strangers' addresses in the stand-in tree with
/// it, at the same cost as an account's.)
pub fn take(tree: &sled::Tree, limit: RateLimit, key: &str, now: i64) -> sled::Result<Result<(), i64>> {
    if limit == RateLimit::Off {
        return Ok(Ok(()));
    }
    let mut verdict = Ok(());
    tree.fetch_and_update(key.as_bytes(), |old| match limit.decide(arrival(old), now) {
        Decision::Allow(Some(tat)) => {
            verdict = Ok(());
            Some(tat.to_be_bytes().to_vec())
        }
        Decision::Allow(None) => {
            verdict = Ok(());
            old.map(<[u8]>::to_vec)
        }
        Decision::Deny { retry_after } => {
            verdict = Err(retry_after);
            old.map(<[u8]>::to_vec)
        }
    })?;
    Ok(verdict)
}

/// Gives back one event counted by [`take`].
pub fn refund(tree: &sled::Tree, limit: RateLimit, key: &str, now: i64) -> sled::Result<()> {
    if limit == RateLimit::Off {
        return Ok(());
    }
    tree.fetch_and_update(key.as_bytes(), |old| {
        limit.refunded(arrival(old), now).map(|tat| tat.to_be_bytes().to_vec())
    })?;
    Ok(())
}

#[async_trait]
impl LimitSteps for Store {
    async fn take(&self, limit: RateLimit, key: &str, now: i64) -> Result<Result<(), i64>, Error> {
        Ok(take(&self.limits, limit, key, now)?)
    }

    async fn refund(&self, limit: RateLimit, key: &str, now: i64) -> Result<(), Error> {
        Ok(refund(&self.limits, limit, key, now)?)
    }

    async fn clear(&self, key: &str) -> Result<(), Error> {
        self.limits.remove(key)?;
        Ok(())
    }

    async fn remember(&self, key: &str, until: i64) -> Result<(), Error> {
        // Kept as an arrival time, so pruning drops it with the limits once it has passed.
        self.limits.insert(key, &(until * 1000).to_be_bytes())?;
        Ok(())
    }

    async fn remembered(&self, key: &str, now: i64) -> Result<bool, Error> {
        Ok(arrival(self.limits.get(key)?.as_deref()).is_some_and(|until| until > now * 1000))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refund_gives_one_event_back() {
        let dir = tempfile::tempdir().unwrap();
        let tree = sled::open(dir.path()).unwrap().open_tree("limits").unwrap();
        let limit: RateLimit = "2/10m".parse().unwrap();
        let t0 = 1_000_000;
        assert_eq!(take(&tree, limit, "k", t0).unwrap(), Ok(()));
        assert_eq!(take(&tree, limit, "k", t0).unwrap(), Ok(()));
        assert_eq!(take(&tree, limit, "k", t0).unwrap(), Err(300));
        refund(&tree, limit, "k", t0).unwrap();
        assert_eq!(take(&tree, limit, "k", t0).unwrap(), Ok(()));
        // Refunds never run below "nothing counted".
        for _ in 0..5 {
            refund(&tree, limit, "k", t0).unwrap();
        }
        assert_eq!(take(&tree, limit, "k", t0).unwrap(), Ok(()));
        assert_eq!(take(&tree, limit, "k", t0).unwrap(), Ok(()));
        assert_eq!(take(&tree, limit, "k", t0).unwrap(), Err(300));
    }
}
