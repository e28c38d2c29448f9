//! The password policy after NIST SP 800-63B-4: length, not composition; a blocklist of
//! common and breached passwords plus context words; any Unicode (compared after NFKC).
//! Hashing lives in [`crate::hasher`].

use std::collections::HashSet;
use std::sync::OnceLock;

use serde::Serialize;
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
    #[error("that password is a simple pattern ({}); it would be guessed quickly", pattern_words(*.0))]
    Pattern(Pattern),
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
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Strength {
    /// 0 (guessed at once) to 4 (very hard to guess).
    pub score: u8,
    /// Estimated guesses, as a power of ten.
    pub guesses_log10: f64,
    /// Whether the policy accepts it.
    pub acceptable: bool,
    /// The policy's reason when it does not, in words (English until [`Strength::worded`]).
    pub problem: Option<String>,
    /// Hints for a better password.
    pub suggestions: Vec<String>,
    /// The policy's refusal, for [`Strength::worded`].
    #[serde(skip)]
    pub refusal: Option<PolicyError>,
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
            problem: verdict
                .as_ref()
                .err()
                .map(|e| crate::Error::Password(e.clone()).message()),
            refusal: verdict.err(),
            suggestions,
        }
    }
}

impl Strength {
    /// The same verdict with the policy's reason worded by `word` (a front's language).
    pub fn worded(mut self, word: impl Fn(&crate::Error) -> String) -> Strength {
        self.problem = self.refusal.clone().map(|e| word(&crate::Error::Password(e)));
        self
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

/// A pattern that makes up a whole password, by kind: each language words it its own way
/// (`error-password-pattern` selects on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// `aaaaaaaa…`, `abababab…`: one or two characters.
    Repeated,
    /// `abcabcabc…`: a short unit over and over.
    Piece,
    /// `12345678…`, `abcdefgh…`.
    Run,
}

impl Pattern {
    /// The kind as the messages' selector names it.
    pub fn key(self) -> &'static str {
        match self {
            Pattern::Repeated => "repeated",
            Pattern::Piece => "piece",
            Pattern::Run => "run",
        }
    }
}

fn pattern_words(p: Pattern) -> &'static str {
    match p {
        Pattern::Repeated => "the same characters repeated",
        Pattern::Piece => "a short piece repeated",
        Pattern::Run => "a run of consecutive characters",
    }
}

/// Names a repeated or sequential pattern that makes up the whole password.
fn pattern_of(pw: &str) -> Option<Pattern> {
    let chars: Vec<char> = pw.chars().collect();
    let distinct: HashSet<char> = chars.iter().copied().collect();
    if distinct.len() <= 2 {
        return Some(Pattern::Repeated);
    }
    // A short unit repeated: "abcabcabcabcabc", "ab12ab12ab12ab12".
    for unit in 2..=chars.len() / 3 {
        if chars.len().is_multiple_of(unit) && chars.chunks(unit).all(|c| c == &chars[..unit]) {
            return Some(Pattern::Piece);
        }
    }
    // Runs like "123456789012345" or "abcdefghijklmno" (wrapping 9→0 counts).
    let step_ok = |a: char, b: char| {
        let (a, b) = (a as i64, b as i64);
        (b - a).abs() == 1 || (a == '9' as i64 && b == '0' as i64) || (a == '0' as i64 && b == '9' as i64)
    };
    if chars.windows(2).all(|w| step_ok(w[0], w[1])) {
        return Some(Pattern::Run);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
