//! Email normalisation on hostile input: never a panic; an accepted address is short, free
//! of control and invisible characters, and parses back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rekey_core::Email;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(email) = Email::parse(raw) {
        let s = email.as_str();
        assert!(s.len() <= 254, "{s:?}");
        assert!(!s.chars().any(|c| c.is_control() || c.is_whitespace()), "{s:?}");
        assert_eq!(s.matches('@').count(), 1, "{s:?}");
        assert!(email.domain().is_ascii(), "{s:?}");
        assert_eq!(Email::parse(s).as_ref(), Ok(&email), "not idempotent: {raw:?} -> {s:?}");
        // ASCII case never matters.
        assert_eq!(Email::parse(&raw.to_ascii_uppercase()).as_ref(), Ok(&email), "{raw:?}");
    }
});
