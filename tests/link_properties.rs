//! Property tests for the desktop app's deep-link parser, `rekey_desktop::reset_token`: the
//! URL comes from outside (a mail, another program), so it must never panic, must give back
//! a well-formed link's token unchanged, and must refuse any link with a part a reset link
//! never has. `scripts/fuzz` runs the same parser unbounded.

use proptest::prelude::*;
use proptest::test_runner::Config as Cases;
use rekey_desktop::{is_rekey_url, reset_token, UiError};

/// A token of the shape a JWT has: three non-empty base64url parts.
fn token() -> impl Strategy<Value = String> {
    ("[A-Za-z0-9_-]{1,60}", "[A-Za-z0-9_-]{1,200}", "[A-Za-z0-9_-]{1,60}").prop_map(|(h, p, s)| format!("{h}.{p}.{s}"))
}

/// Ways to write the same reset link.
fn prefix() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "rekey://reset?token=",
        "rekey://reset/?token=",
        "REKEY://reset?token=",
        "Rekey://reset/?token=",
    ])
}

/// Something a reset link never has, and where it goes (0: before `?`, 1: after the query).
fn extra() -> impl Strategy<Value = (usize, String)> {
    prop_oneof![
        Just((1, "&next=https://evil.example".to_string())),
        Just((1, "&".to_string())),
        Just((1, "#fragment".to_string())),
        Just((1, "#".to_string())),
        Just((1, "&token=a.b.c".to_string())),
        Just((1, "&token=".to_string())),
        "[a-z]{1,8}=[a-z0-9]{0,8}".prop_map(|p| (1, format!("&{p}"))),
        "[ \t\n\r]".prop_map(|w| (1, format!("{w}x"))),
        Just((0, "/extra".to_string())),
        Just((0, "/..".to_string())),
        Just((0, ":8080".to_string())),
        Just((0, "%2F".to_string())),
    ]
}

fn is_jwt_shaped(t: &str) -> bool {
    let parts: Vec<&str> = t.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

proptest! {
    #![proptest_config(Cases { cases: 2000, failure_persistence: None, ..Cases::default() })]

    /// Any text: no panic; a refusal is `link_invalid` with words; an acceptance is a
    /// JWT-shaped token that was in the text.
    #[test]
    fn any_text_is_refused_or_gives_a_jwt_shaped_token(raw in any::<String>()) {
        let _ = is_rekey_url(&raw);
        match reset_token(&raw) {
            Ok(t) => prop_assert!(is_jwt_shaped(&t) && raw.contains(&t), "{:?} -> {:?}", raw, t),
            Err(e) => {
                prop_assert_eq!(e.code, "link_invalid");
                prop_assert!(UiError::from(e).message.ends_with("type the code instead."));
            }
        }
    }

    /// Text that starts like a reset link and goes on with anything: the same.
    #[test]
    fn anything_after_a_real_prefix_is_judged_safely(p in prefix(), rest in any::<String>()) {
        let raw = format!("{p}{rest}");
        prop_assert!(is_rekey_url(&raw));
        if let Ok(t) = reset_token(&raw) {
            prop_assert!(is_jwt_shaped(&t), "{:?} -> {:?}", raw, t);
        }
    }

    /// A well-formed link gives back its token unchanged, however the prefix is written and
    /// with surrounding whitespace.
    #[test]
    fn a_well_formed_link_round_trips(p in prefix(), t in token(), pad in "[ \t\n]{0,3}") {
        prop_assert_eq!(reset_token(&format!("{pad}{p}{t}{pad}")), Ok(t.clone()));
        // Percent-encoding the token's letters changes nothing.
        let encoded: String = t.bytes().map(|b| format!("%{b:02X}")).collect();
        prop_assert_eq!(reset_token(&format!("{p}{encoded}")), Ok(t));
    }

    /// Any extra part, in any link, gets it refused.
    #[test]
    fn a_link_with_an_extra_part_is_refused((at, extra) in extra(), t in token()) {
        let raw = if at == 0 {
            format!("rekey://reset{extra}?token={t}")
        } else {
            format!("rekey://reset?token={t}{extra}")
        };
        let e = reset_token(&raw).expect_err(&raw);
        prop_assert_eq!(e.code, "link_invalid");
    }

    /// A token cut short or damaged (a part missing or empty, a foreign character) is refused.
    #[test]
    fn a_damaged_token_is_refused(t in token(), cut in any::<prop::sample::Index>(), bad in "[^A-Za-z0-9_.%-]") {
        let parts: Vec<&str> = t.split('.').collect();
        let i = cut.index(3);
        let mut missing = parts.clone();
        missing.remove(i);
        let mut empty = parts.clone();
        empty[i] = "";
        let mut foreign: Vec<String> = parts.iter().map(|p| p.to_string()).collect();
        // At the start of the part: at the very end, whitespace would be trimmed as around
        // any link.
        foreign[i].insert_str(0, &bad);
        for damaged in [missing.join("."), empty.join("."), foreign.join("."), format!("{t}."), format!(".{t}")] {
            let raw = format!("rekey://reset?token={damaged}");
            prop_assert!(reset_token(&raw).is_err(), "{:?} accepted", raw);
        }
    }
}
