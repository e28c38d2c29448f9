//! The errors a front shows: a stable snake_case code and plain words. Library error text
//! (sled, lettre, argon2) never reaches a user; it is logged and replaced by [`Error::Internal`].

use crate::email::EmailError;
use crate::password::PolicyError;
use crate::token::TokenError;
use crate::words::{Arg, Words};

/// Everything a Rekey operation can refuse or fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The email address is empty or malformed.
    #[error("{0}")]
    Email(#[from] EmailError),
    /// A language that is not a tag like `de` or `de-AT`.
    #[error("'{0}' is not a language like en, de, fr, es or de-AT")]
    LocaleInvalid(String),
    /// A time zone the tz database does not know.
    #[error("'{0}' is not a time zone like Europe/Berlin or America/New_York")]
    TimeZoneInvalid(String),
    /// Too many attempts; try again after `retry_after` seconds.
    #[error("too many attempts; try again in {}", crate::letters::span(*retry_after))]
    RateLimited {
        /// Seconds to wait.
        retry_after: i64,
    },
    /// Too many requests are waiting to be handled; try again after `retry_after` seconds.
    /// Said to every caller alike, whatever address they asked about.
    #[error("Rekey is busy with other requests; try again in {}", crate::letters::span(*retry_after))]
    Busy {
        /// Seconds to wait.
        retry_after: i64,
    },
    /// The new password breaks the policy.
    #[error("{0}")]
    Password(#[from] PolicyError),
    /// The reset token failed verification.
    #[error("{0}")]
    Token(#[from] TokenError),
    /// A newer request replaced this link.
    #[error("this link was replaced by a newer one; use the link in the most recent mail")]
    TokenReplaced,
    /// The link was already used to reset the password.
    #[error("this link was already used; ask for a new one if you need to reset again")]
    TokenUsed,
    /// The password was changed after this link was sent.
    #[error("the password was changed after this link was sent, so the link no longer works")]
    TokenStale,
    /// The typed code does not work: wrong, expired, retired after wrong tries, or there is
    /// no reset for that address. One answer for all of them, so it says nothing about the
    /// address.
    #[error("that code does not work: it is wrong, or no longer valid (5 wrong tries retire a code). Check the most recent mail, or open the link in it, which wrong codes do not affect")]
    CodeInvalid,
    /// A link from an older version, retired with its code after wrong tries.
    #[error("that code was entered wrong too many times and no longer works; ask for a new reset")]
    CodeBurned,
    /// Sign-in failed: wrong password, unknown or disabled account (deliberately alike).
    #[error("that email and password do not match an account")]
    BadCredentials,
    /// Finishing an account with a password other than the one chosen when it was asked for.
    #[error("that is not the password chosen when this account was asked for. If you did not ask for an account, ignore the mail; to make one, ask again with the password you want")]
    PasswordMismatch,
    /// A verification link or code used again: the account already exists.
    #[error("this link was already used and the account is ready: sign in with the password you chose")]
    AccountVerified,
    /// Registration for an address that already has an account.
    #[error("an account with that email already exists; sign in, or reset its password")]
    EmailTaken,
    /// The session is unknown, expired, or ended by a password change.
    #[error("you have been signed out; sign in again")]
    SessionInvalid,
    /// Another process holds the data directory.
    #[error("{0}")]
    Locked(String),
    /// The configuration or data directory is unusable; the text names the key or file.
    #[error("{0}")]
    Setup(String),
    /// The database (PostgreSQL) could not be reached or stopped answering; nothing was
    /// changed. It says no more than that to a user; the log names the database and why.
    #[error("Rekey cannot reach its database right now and nothing was changed; try again in a minute")]
    StoreUnavailable,
    /// Something broke on Rekey's side; details are in the log.
    #[error("something went wrong on Rekey's side and nothing was changed; try again, and if it keeps happening see the log")]
    Internal,
}

impl Error {
    /// The stable snake_case code for UIs and HTTP clients.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Email(EmailError::Empty) => "email_missing",
            Error::Email(_) => "email_invalid",
            Error::LocaleInvalid(_) => "locale_invalid",
            Error::TimeZoneInvalid(_) => "time_zone_invalid",
            Error::RateLimited { .. } => "rate_limited",
            Error::Busy { .. } => "busy",
            Error::Password(p) => p.code(),
            Error::Token(t) => t.code(),
            Error::TokenReplaced => "token_replaced",
            Error::TokenUsed => "token_used",
            Error::TokenStale => "token_stale",
            Error::CodeInvalid => "code_invalid",
            Error::CodeBurned => "code_burned",
            Error::BadCredentials => "bad_credentials",
            Error::EmailTaken => "email_taken",
            Error::AccountVerified => "account_verified",
            Error::PasswordMismatch => "password_mismatch",
            Error::SessionInvalid => "session_invalid",
            Error::Locked(_) => "data_locked",
            Error::Setup(_) => "setup_error",
            Error::StoreUnavailable => "store_unavailable",
            Error::Internal => "internal",
        }
    }

    /// Plain words for a person, in English, under the name Rekey.
    pub fn message(&self) -> String {
        static ENGLISH: std::sync::LazyLock<Words> = std::sync::LazyLock::new(Words::shipped);
        self.message_in(&ENGLISH, "en", "Rekey")
    }

    /// Plain words for a person in `locale` (its `error-…` message), naming the product
    /// `product`.
    pub fn message_in(&self, words: &Words, locale: &str, product: &str) -> String {
        let span = |secs: &i64| words.span(locale, *secs);
        let (id, text): (&str, Option<(&str, String)>) = match self {
            Error::Email(EmailError::Empty) => ("error-email-missing", None),
            Error::Email(EmailError::Malformed) => ("error-email-malformed", None),
            Error::Email(EmailError::TooLong) => ("error-email-too-long", None),
            Error::Email(EmailError::Invisible) => ("error-email-invisible", None),
            Error::LocaleInvalid(tag) => ("error-locale-invalid", Some(("locale", tag.clone()))),
            Error::TimeZoneInvalid(name) => ("error-time-zone-invalid", Some(("zone", name.clone()))),
            Error::RateLimited { retry_after } => ("error-rate-limited", Some(("span", span(retry_after)))),
            Error::Busy { retry_after } => ("error-busy", Some(("span", span(retry_after)))),
            Error::Password(PolicyError::TooShort { min, len }) => {
                let (min, len) = (*min as i64, *len as i64);
                let args = [("min", Arg::Number(min)), ("length", Arg::Number(len))];
                return words.text(locale, "error-password-too-short", &args);
            }
            Error::Password(PolicyError::TooLong) => {
                let args = [("max", Arg::Number(crate::password::MAX_BYTES as i64))];
                return words.text(locale, "error-password-too-long", &args);
            }
            Error::Password(PolicyError::Common) => ("error-password-common", None),
            Error::Password(PolicyError::Context) => ("error-password-context", None),
            Error::Password(PolicyError::Pattern(p)) => ("error-password-pattern", Some(("pattern", p.key().into()))),
            Error::Token(t) => (t.message_id(), None),
            Error::TokenReplaced => ("error-token-replaced", None),
            Error::TokenUsed => ("error-token-used", None),
            Error::TokenStale => ("error-token-stale", None),
            Error::CodeInvalid => ("error-code-invalid", None),
            Error::CodeBurned => ("error-code-burned", None),
            Error::BadCredentials => ("error-bad-credentials", None),
            Error::PasswordMismatch => ("error-password-mismatch", None),
            Error::AccountVerified => ("error-account-verified", None),
            Error::EmailTaken => ("error-email-taken", None),
            Error::SessionInvalid => ("error-session-invalid", None),
            // The store's own words about a directory or a database, for the operator.
            Error::Locked(detail) | Error::Setup(detail) => return capitalised(detail),
            Error::StoreUnavailable => ("error-store-unavailable", None),
            Error::Internal => ("error-internal", None),
        };
        let mut args = vec![("product", Arg::Text(product))];
        if let Some((name, value)) = &text {
            args.push((name, Arg::Text(value)));
        }
        words.text(locale, id, &args)
    }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Logs a library error and hides it behind [`Error::Internal`].
pub(crate) fn internal(context: &str, e: impl std::fmt::Display) -> Error {
    tracing::error!(%context, error = %e, "internal error");
    Error::Internal
}

impl From<crate::store::StoreError> for Error {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::Locked(m) => Error::Locked(m),
            crate::store::StoreError::Unreachable(why) => {
                tracing::error!(error = %why, "the database cannot be reached");
                Error::StoreUnavailable
            }
            e @ (crate::store::StoreError::Directory { .. } | crate::store::StoreError::Database(_)) => {
                Error::Setup(e.to_string())
            }
            e => internal("store", e),
        }
    }
}

impl From<sled::Error> for Error {
    fn from(e: sled::Error) -> Self {
        internal("sled", e)
    }
}

impl From<crate::hasher::HashError> for Error {
    fn from(e: crate::hasher::HashError) -> Self {
        match e {
            crate::hasher::HashError::Busy { retry_after } => Error::Busy { retry_after },
            e => internal("hash", e),
        }
    }
}

impl From<crate::store::Retired> for Error {
    fn from(why: crate::store::Retired) -> Self {
        match why {
            crate::store::Retired::Used => Error::TokenUsed,
            crate::store::Retired::Replaced => Error::TokenReplaced,
            crate::store::Retired::Burned => Error::CodeBurned,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::password::Pattern;

    /// One of each refusal a person can see, with its variables.
    fn every_refusal() -> Vec<Error> {
        let mut all = vec![
            Error::Email(EmailError::Empty),
            Error::Email(EmailError::Malformed),
            Error::Email(EmailError::TooLong),
            Error::Email(EmailError::Invisible),
            Error::LocaleInvalid("xx-yy-zz".into()),
            Error::TimeZoneInvalid("Mars/Olympus".into()),
            Error::RateLimited { retry_after: 90 },
            Error::Busy { retry_after: 3600 },
            Error::Password(PolicyError::TooShort { min: 15, len: 9 }),
            Error::Password(PolicyError::TooLong),
            Error::Password(PolicyError::Common),
            Error::Password(PolicyError::Context),
            Error::TokenReplaced,
            Error::TokenUsed,
            Error::TokenStale,
            Error::CodeInvalid,
            Error::CodeBurned,
            Error::BadCredentials,
            Error::PasswordMismatch,
            Error::AccountVerified,
            Error::EmailTaken,
            Error::SessionInvalid,
            Error::StoreUnavailable,
            Error::Internal,
        ];
        all.extend([Pattern::Repeated, Pattern::Piece, Pattern::Run].map(|p| Error::Password(PolicyError::Pattern(p))));
        all.extend(
            [
                TokenError::Malformed,
                TokenError::BadSignature,
                TokenError::AlgNone,
                TokenError::WrongAlgorithm,
                TokenError::UnknownKey,
                TokenError::WrongIssuer,
                TokenError::WrongAudience,
                TokenError::Expired,
                TokenError::NotYetValid,
            ]
            .map(Error::Token),
        );
        all
    }

    #[test]
    fn every_refusal_is_worded_in_every_language_with_its_values() {
        let words = Words::shipped();
        for lang in ["en", "de", "fr", "es"] {
            let mut seen = std::collections::BTreeSet::new();
            for e in every_refusal() {
                let text = e.message_in(&words, lang, "Example Corp");
                assert!(
                    !text.starts_with("error-") && !text.contains('{') && text.len() > 10,
                    "{lang}: {e:?} → {text:?}"
                );
                assert!(seen.insert(text.clone()), "{lang}: two refusals read the same: {text}");
                if matches!(e, Error::Busy { .. } | Error::StoreUnavailable | Error::Internal) {
                    assert!(text.contains("Example Corp"), "{lang}: {text}");
                }
            }
        }
        let short = Error::Password(PolicyError::TooShort { min: 15, len: 9 });
        assert_eq!(
            short.message_in(&words, "de", "Rekey"),
            "Verwenden Sie mindestens 15 Zeichen (dieses hat 9)."
        );
        assert_eq!(
            Error::RateLimited { retry_after: 90 }.message_in(&words, "fr", "Rekey"),
            "Trop de tentatives ; réessayez dans 1 minute."
        );
        // English, for logs and the command line, says what Display says.
        assert_eq!(
            Error::BadCredentials.message(),
            "That email and password do not match an account."
        );
    }
}
