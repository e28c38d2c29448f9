//! Email addresses as Rekey compares them: trimmed, NFC, case-folded, IDN domains in ASCII.

use std::fmt;

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

/// Why an address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    /// Nothing was typed.
    #[error("enter an email address")]
    Empty,
    /// The text is not of the form `name@example.com`.
    #[error("that does not look like an email address (it should look like name@example.com)")]
    Malformed,
    /// Longer than the 254 characters mail systems accept.
    #[error("that email address is too long")]
    TooLong,
    /// Holds an invisible character (zero-width, bidi control, soft hyphen...): two addresses
    /// that look the same on screen must not be two accounts, so such text is refused.
    #[error("that email address has invisible characters in it (they can come from copying); type it again")]
    Invisible,
}

/// A normalised email address: the key accounts, limits and resets are filed under.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Email(String);

impl Email {
    /// Normalises and checks `input`: trims, applies Unicode NFC, lowercases, and turns
    /// an internationalised domain into its ASCII (punycode) form.
    pub fn parse(input: &str) -> Result<Self, EmailError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(EmailError::Empty);
        }
        if trimmed.len() > 320 {
            return Err(EmailError::TooLong);
        }
        if trimmed.chars().any(is_invisible) {
            return Err(EmailError::Invisible);
        }
        // Each character is lowercased on its own: `str::to_lowercase` turns Σ into ς at the
        // end of a word and σ elsewhere, so "ΑΣ" and "ασ" would be two accounts. NFC again
        // after lowercasing, because lowercase mappings can leave text that is not NFC and the
        // stored form must parse back to itself.
        let text: String = trimmed.nfc().flat_map(char::to_lowercase).nfc().collect();
        let (local, domain) = text.rsplit_once('@').ok_or(EmailError::Malformed)?;
        if local.is_empty() || local.len() > 64 || local.contains('@') {
            return Err(EmailError::Malformed);
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return Err(EmailError::Malformed);
        }
        let local_ok = local
            .chars()
            .all(|c| !c.is_control() && !c.is_whitespace() && !"\"(),:;<>[\\]".contains(c));
        if !local_ok {
            return Err(EmailError::Malformed);
        }
        let domain = idna::domain_to_ascii(domain).map_err(|_| EmailError::Malformed)?;
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !domain_ok {
            return Err(EmailError::Malformed);
        }
        let email = format!("{local}@{domain}");
        if email.len() > 254 {
            return Err(EmailError::TooLong);
        }
        Ok(Self(email))
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the `@`.
    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map(|(l, _)| l).unwrap_or(&self.0)
    }

    /// The part after the `@`.
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
    }

    /// A form safe for logs: first letter of the local part and the domain (`j***@example.com`).
    pub fn masked(&self) -> String {
        let first: String = self.local_part().chars().take(1).collect();
        format!("{first}***@{}", self.domain())
    }
}

/// Invisible characters that change what an address is without changing how it looks:
/// Unicode's default-ignorable code points (zero-width spaces and joiners, soft hyphen,
/// variation selectors, tags, fillers) and the bidirectional controls. `char::is_control`
/// only covers C0/C1, and IDNA would silently drop some of these from a domain.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFFB}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_space_and_unicode() {
        let a = Email::parse("  Alice@Example.COM ").unwrap();
        assert_eq!(a.as_str(), "alice@example.com");
        // "é" typed as e + combining accent matches the precomposed form.
        let composed = Email::parse("r\u{e9}my@example.com").unwrap();
        let decomposed = Email::parse("re\u{301}my@example.com").unwrap();
        assert_eq!(composed, decomposed);
    }

    #[test]
    fn idn_domains_become_ascii() {
        let e = Email::parse("bob@bücher.example").unwrap();
        assert_eq!(e.domain(), "xn--bcher-kva.example");
    }

    #[test]
    fn refuses_malformed() {
        for bad in [
            "",
            "   ",
            "plainaddress",
            "@example.com",
            "a@",
            "a@b",
            "a b@example.com",
            "a@exa mple.com",
            "a..b@example.com",
            "a@-example.com",
            "<a>@example.com",
            "a@example..com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
        let long = format!("{}@example.com", "a".repeat(300));
        assert!(Email::parse(&long).is_err());
    }

    #[test]
    fn masks_for_logs() {
        let e = Email::parse("jane.doe@example.com").unwrap();
        assert_eq!(e.masked(), "j***@example.com");
    }
}
