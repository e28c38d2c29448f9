//! Rate limits that survive a restart: a generic cell rate algorithm (GCRA) whose one
//! number per key (the "theoretical arrival time") lives in the store
//! ([`crate::store::LimitSteps`]).
//!
//! `3/15m` lets a burst of 3 through, then one more every 5 minutes: the smooth
//! version of "3 per 15 minutes", with an exact retry-after.

use std::fmt;
use std::str::FromStr;

/// A limit like `3/15m`, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimit {
    /// No limit (for load tests).
    Off,
    /// At most `count` events per `period_secs`.
    Per {
        /// Events allowed in a burst.
        count: u32,
        /// The window, in seconds.
        period_secs: i64,
    },
}

impl FromStr for RateLimit {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("off") {
            return Ok(RateLimit::Off);
        }
        let bad = || format!("'{s}' is not a limit like 3/15m (count/period) or off");
        let (count, period) = s.split_once('/').ok_or_else(bad)?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        let period_secs = crate::duration::seconds(period.trim()).map_err(|_| bad())?;
        if count == 0 || period_secs <= 0 {
            return Err(format!(
                "'{s}': count and period must be above zero (use off to disable)"
            ));
        }
        Ok(RateLimit::Per { count, period_secs })
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RateLimit::Off => f.write_str("off"),
            RateLimit::Per { count, period_secs } => write!(f, "{count}/{period_secs}s"),
        }
    }
}

/// The decision for one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Let it through; store this new arrival time for the key.
    Allow(Option<i64>),
    /// Refuse; the caller may try again after this many seconds.
    Deny {
        /// Seconds until the next event would pass.
        retry_after: i64,
    },
}

impl RateLimit {
    /// Decides one event at `now` given the key's stored arrival time. Times in milliseconds
    /// so that `20/1s`-style limits stay exact.
    pub fn decide(&self, stored_tat_ms: Option<i64>, now: i64) -> Decision {
        let RateLimit::Per { count, period_secs } = *self else {
            return Decision::Allow(None);
        };
        let now_ms = now * 1000;
        let period_ms = period_secs * 1000;
        let interval_ms = period_ms / count as i64;
        let tat = stored_tat_ms.unwrap_or(now_ms).max(now_ms);
        let new_tat = tat + interval_ms;
        let allow_at = new_tat - period_ms;
        if allow_at > now_ms {
            let wait_ms = allow_at - now_ms;
            Decision::Deny {
                retry_after: (wait_ms + 999) / 1000,
            }
        } else {
            Decision::Allow(Some(new_tat))
        }
    }

    /// The arrival time after giving back one event counted at `stored_tat_ms` (an attempt
    /// that turned out to be no failure), never below "nothing counted" at `now`. `None`
    /// when there is nothing to give back.
    pub fn refunded(&self, stored_tat_ms: Option<i64>, now: i64) -> Option<i64> {
        let RateLimit::Per { count, period_secs } = *self else {
            return stored_tat_ms;
        };
        let interval_ms = period_secs * 1000 / count as i64;
        stored_tat_ms.map(|tat| (tat - interval_ms).max(now * 1000))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        assert_eq!(
            "3/15m".parse::<RateLimit>().unwrap(),
            RateLimit::Per {
                count: 3,
                period_secs: 900
            }
        );
        assert_eq!("OFF".parse::<RateLimit>().unwrap(), RateLimit::Off);
        for bad in ["3", "0/1m", "x/1m", "3/forever", "3/0s"] {
            assert!(bad.parse::<RateLimit>().is_err(), "{bad}");
        }
    }

    #[test]
    fn burst_then_one_per_interval() {
        let limit: RateLimit = "3/15m".parse().unwrap();
        let mut tat = None;
        let t0 = 1_000_000;
        for _ in 0..3 {
            match limit.decide(tat, t0) {
                Decision::Allow(t) => tat = t,
                d => panic!("burst should pass, got {d:?}"),
            }
        }
        assert_eq!(limit.decide(tat, t0), Decision::Deny { retry_after: 300 });
        assert_eq!(limit.decide(tat, t0 + 299), Decision::Deny { retry_after: 1 });
        assert!(matches!(limit.decide(tat, t0 + 300), Decision::Allow(_)));
    }

    #[test]
    fn off_always_allows() {
        assert_eq!(RateLimit::Off.decide(Some(i64::MAX / 2), 0), Decision::Allow(None));
    }
}
