//! Property tests for the parsers that take text from strangers: reset-token verification and
//! email normalisation. They run in the ordinary `cargo test`, bounded (a few hundred to two
//! thousand cases each, seconds in all); `scripts/fuzz` runs the same checks unbounded.

use std::sync::OnceLock;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use proptest::prelude::*;
use proptest::test_runner::Config as Cases;
use rekey_core::email::EmailError;
use rekey_core::token::{Claims, KeyRing, TokenError, AUDIENCE, ISSUER, LEEWAY, MAX_TOKEN_LEN};
use rekey_core::Email;
use unicode_normalization::UnicodeNormalization;

const NOW: i64 = 1_700_000_000;

/// A key ring on disk (the directory lives as long as the tests), its secret, and a good token.
struct World {
    ring: KeyRing,
    secret: Vec<u8>,
    kid: String,
    good: String,
    claims: Claims,
    _dir: tempfile::TempDir,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let ring = KeyRing::load_or_create(dir.path(), NOW).unwrap();
        let keys: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("keys.json")).unwrap()).unwrap();
        let secret = STANDARD.decode(keys[0]["secret"].as_str().unwrap()).unwrap();
        let minted = ring.mint("user-1", "stamp-1", NOW, 1800);
        World {
            kid: minted.kid,
            good: minted.token,
            claims: minted.claims,
            ring,
            secret,
            _dir: dir,
        }
    })
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Signs `header.claims` (raw bytes, not necessarily JSON) with the real key, HS256.
fn sign_raw(header: &[u8], claims: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let input = format!("{}.{}", b64(header), b64(claims));
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&world().secret).unwrap();
    mac.update(input.as_bytes());
    format!("{input}.{}", b64(&mac.finalize().into_bytes()))
}

/// A time that is often an edge: the extremes, around now, or anything.
fn instant() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(i64::MAX),
        Just(i64::MIN),
        Just(0i64),
        (NOW - 4000..NOW + 4000),
        any::<i64>(),
    ]
}

proptest! {
    #![proptest_config(Cases { cases: 2000, failure_persistence: None, ..Cases::default() })]

    /// Any text at all: refused, never a panic.
    #[test]
    fn any_string_is_refused(s in any::<String>()) {
        prop_assert!(world().ring.verify(&s, NOW).is_err());
    }

    /// Three base64url-looking parts: refused, never a panic.
    #[test]
    fn any_jwt_shaped_string_is_refused(
        h in "[A-Za-z0-9_-]{0,120}",
        p in "[A-Za-z0-9_-]{0,300}",
        s in "[A-Za-z0-9_-]{0,64}",
    ) {
        let r = world().ring.verify(&format!("{h}.{p}.{s}"), NOW);
        prop_assert!(r.is_err());
    }

    /// A good token with bytes overwritten, inserted or removed is never accepted.
    #[test]
    fn a_mutated_token_is_never_accepted(edits in prop::collection::vec((0u8..3, any::<usize>(), any::<u8>()), 1..6)) {
        let w = world();
        let mut token = w.good.clone().into_bytes();
        for (op, at, byte) in edits {
            let at = at % (token.len() + 1);
            match op {
                0 if at < token.len() => token[at] = byte,
                1 => token.insert(at, byte),
                _ if at < token.len() => { token.remove(at); }
                _ => {}
            }
        }
        let token = String::from_utf8_lossy(&token).into_owned();
        if token != w.good {
            prop_assert!(w.ring.verify(&token, NOW).is_err(), "accepted {token}");
        }
    }

    /// Any header (algorithm and kid from a hostile list, or anything) over the good claims
    /// and the good signature: refused, with the reason the header earns.
    #[test]
    fn a_rewritten_header_is_refused_for_its_reason(
        alg in prop_oneof![
            Just("none".to_string()), Just("None".to_string()), Just("NONE".to_string()),
            Just("HS256".to_string()), Just("hs256".to_string()), Just("HS384".to_string()),
            Just("HS512".to_string()), Just("RS256".to_string()), Just("ES256".to_string()),
            Just("PS256".to_string()), Just("EdDSA".to_string()), Just("".to_string()), any::<String>(),
        ],
        kid in prop_oneof![
            Just(None),
            Just(Some(world().kid.clone())),
            any::<String>().prop_map(Some),
            "[./a-z\\\\]{0,40}".prop_map(Some),
        ],
        extra in prop_oneof![Just(""), Just(r#","typ":"JWT""#), Just(r#","jku":"https://evil.example/k""#), Just(r#","crit":["exp"]"#)],
    ) {
        let w = world();
        let mut header = format!("{{\"alg\":{}", serde_json::to_string(&alg).unwrap());
        if let Some(kid) = &kid {
            header.push_str(&format!(",\"kid\":{}", serde_json::to_string(kid).unwrap()));
        }
        header.push_str(extra);
        header.push('}');
        let parts: Vec<&str> = w.good.split('.').collect();
        let token = format!("{}.{}.{}", b64(header.as_bytes()), parts[1], parts[2]);
        let r = w.ring.verify(&token, NOW);
        let expected = if token.len() > MAX_TOKEN_LEN {
            TokenError::Malformed
        } else if alg.eq_ignore_ascii_case("none") {
            TokenError::AlgNone
        } else if alg != "HS256" {
            TokenError::WrongAlgorithm
        } else if kid.as_deref() != Some(w.kid.as_str()) {
            TokenError::UnknownKey
        } else {
            // The right algorithm and key, but the header text changed: the signature is over it.
            TokenError::BadSignature
        };
        prop_assert_eq!(r, Err(expected));
    }

    /// Claims with any numbers, signed with the real key: the time checks never overflow, and
    /// the token passes exactly when issuer, audience and times are right.
    #[test]
    fn signed_claims_with_any_times_are_judged_without_panic(
        iat in instant(), nbf in instant(), exp in instant(),
        iss in prop_oneof![Just(ISSUER.to_string()), Just("Rekey".to_string()), any::<String>()],
        aud in prop_oneof![Just(AUDIENCE.to_string()), Just("session".to_string()), any::<String>()],
    ) {
        let w = world();
        let claims = Claims { iss: iss.clone(), aud: aud.clone(), iat, nbf, exp, ..w.claims.clone() };
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some(w.kid.clone());
        let token = encode(&h, &claims, &EncodingKey::from_secret(&w.secret)).unwrap();
        let r = w.ring.verify(&token, NOW);
        if token.len() > MAX_TOKEN_LEN {
            prop_assert_eq!(r, Err(TokenError::Malformed));
        } else if iss != ISSUER {
            prop_assert_eq!(r, Err(TokenError::WrongIssuer));
        } else if aud != AUDIENCE {
            prop_assert_eq!(r, Err(TokenError::WrongAudience));
        } else if (NOW as i128) > exp as i128 + LEEWAY as i128 {
            prop_assert_eq!(r, Err(TokenError::Expired));
        } else if (NOW as i128 + LEEWAY as i128) < nbf.max(iat) as i128 {
            prop_assert_eq!(r, Err(TokenError::NotYetValid));
        } else {
            prop_assert_eq!(r, Ok(claims));
        }
    }

    /// Any bytes as header and claims, validly signed: never a panic, and nothing passes that
    /// is not a proper HS256 header over proper claims.
    #[test]
    fn signed_garbage_is_judged_without_panic(header in prop::collection::vec(any::<u8>(), 0..80), claims in prop::collection::vec(any::<u8>(), 0..200)) {
        let token = sign_raw(&header, &claims);
        if let Ok(c) = world().ring.verify(&token, NOW) {
            let h: serde_json::Value = serde_json::from_slice(&header).unwrap();
            prop_assert_eq!(&h["alg"], "HS256");
            prop_assert_eq!((c.iss.as_str(), c.aud.as_str()), (ISSUER, AUDIENCE));
        }
    }
}

// ---- Email normalisation ----

/// Characters an address may well hold: ASCII letters and digits, a few symbols, accented,
/// Greek, Cyrillic, CJK, German sharp s, dotted and dotless i, fullwidth letters, a
/// combining accent.
fn local_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => prop::char::range('a', 'z'),
        2 => prop::char::range('A', 'Z'),
        1 => prop::char::range('0', '9'),
        1 => prop::sample::select(vec!['+', '-', '_', '.', '!', '#', '$', '%', '&', '\'', '*', '/', '=', '?', '^', '`', '{', '|', '}', '~']),
        1 => prop::sample::select(vec!['é', 'É', 'ü', 'Ü', 'ß', 'ẞ', 'İ', 'ı', 'ſ', 'K', 'Ω', 'ñ', 'Å', 'Å', 'ǅ', 'ﬀ', 'Σ', 'ς', 'σ', '\u{301}', '\u{308}', '\u{307}']),
        1 => prop::char::range('α', 'ω'),
        1 => prop::char::range('А', 'я'),
        1 => prop::char::range('一', '龥'),
        1 => prop::char::range('Ａ', 'Ｚ'),
    ]
}

fn label() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z0-9]([a-zA-Z0-9-]{0,10}[a-zA-Z0-9])?",
        1 => prop::collection::vec(prop::sample::select(vec!['ü', 'é', 'ö', '例', '子', '广', '告', 'д', 'а', 'Ａ', 'ｂ']), 1..6)
            .prop_map(|v| v.into_iter().collect()),
    ]
}

/// Something shaped like an address, often (not always) valid.
fn address() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(local_char(), 1..20),
        prop::collection::vec(label(), 1..4),
        "(com|org|net|example|test|COM|广告)",
    )
        .prop_map(|(local, labels, tld)| {
            format!("{}@{}.{}", local.into_iter().collect::<String>(), labels.join("."), tld)
        })
}

/// Invisible and control characters that must never be part of an address.
fn hidden_char() -> impl Strategy<Value = char> {
    prop::sample::select(vec![
        '\u{0}',
        '\u{7}',
        '\u{1b}',
        '\u{7f}',
        '\u{85}',
        '\u{9f}',
        '\u{ad}',
        '\u{34f}',
        '\u{61c}',
        '\u{180e}',
        '\u{200b}',
        '\u{200c}',
        '\u{200d}',
        '\u{200e}',
        '\u{200f}',
        '\u{202a}',
        '\u{202b}',
        '\u{202c}',
        '\u{202d}',
        '\u{202e}',
        '\u{2060}',
        '\u{2066}',
        '\u{2067}',
        '\u{2068}',
        '\u{2069}',
        '\u{feff}',
        '\u{fe0f}',
        '\u{e0041}',
        '\u{2028}',
        '\u{2029}',
        '\u{3000}',
        '\t',
        '\n',
        '\r',
    ])
}

fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{ad}' | '\u{34f}' | '\u{61c}' | '\u{180e}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{206f}' | '\u{feff}' | '\u{fe00}'..='\u{fe0f}' | '\u{e0000}'..='\u{e0fff}')
}

/// What every accepted address satisfies.
fn check_normal(raw: &str, email: &Email) -> Result<(), TestCaseError> {
    let s = email.as_str();
    prop_assert!(s.len() <= 254, "{}", s);
    prop_assert!(!s.chars().any(|c| c.is_whitespace() || is_invisible(c)), "{:?}", s);
    prop_assert_eq!(s.matches('@').count(), 1);
    prop_assert!(email.domain().is_ascii(), "{}", s);
    prop_assert!(email.local_part().chars().count() <= 64);
    prop_assert_eq!(s.to_string(), s.nfc().collect::<String>(), "not NFC");
    prop_assert_eq!(s.to_string(), s.to_lowercase(), "not lowercase");
    let again = Email::parse(s);
    prop_assert_eq!(again.as_ref(), Ok(email), "parse is not idempotent for {:?}", raw);
    Ok(())
}

proptest! {
    #![proptest_config(Cases { cases: 2000, failure_persistence: None, ..Cases::default() })]

    /// Any text: no panic; what is accepted is normal and parses back to itself.
    #[test]
    fn any_text_parses_to_a_normal_form_or_is_refused(raw in any::<String>()) {
        if let Ok(email) = Email::parse(&raw) {
            check_normal(&raw, &email)?;
        }
    }

    /// Address-shaped text: the same, plus ASCII case, surrounding space, NFD against NFC,
    /// and any letter's simple case mapping never make a second account.
    #[test]
    fn case_space_and_composition_never_make_a_second_account(raw in address()) {
        let parsed = Email::parse(&raw);
        if let Ok(email) = &parsed {
            check_normal(&raw, email)?;
        }
        prop_assert_eq!(&Email::parse(&raw.to_ascii_uppercase()), &parsed);
        prop_assert_eq!(&Email::parse(&raw.to_ascii_lowercase()), &parsed);
        prop_assert_eq!(&Email::parse(&format!(" \t{raw} \n")), &parsed);
        prop_assert_eq!(&Email::parse(&raw.nfd().collect::<String>()), &parsed);
        prop_assert_eq!(&Email::parse(&raw.nfc().collect::<String>()), &parsed);
        // Uppercasing each letter whose case round-trips (not ß -> SS, not ı -> I).
        let upper: String = raw
            .chars()
            .map(|c| {
                let u: String = c.to_uppercase().collect();
                if u.to_lowercase() == c.to_lowercase().collect::<String>() { u } else { c.to_string() }
            })
            .collect();
        prop_assert_eq!(&Email::parse(&upper), &parsed, "upper {:?}", upper);
    }

    /// An invisible or control character anywhere inside an address gets it refused.
    #[test]
    fn invisible_and_control_characters_are_refused(raw in address(), c in hidden_char(), at in any::<usize>()) {
        let chars: Vec<char> = raw.chars().collect();
        // Inside, not at the ends (the ends are trimmed when they are whitespace).
        let at = 1 + at % (chars.len() - 1);
        let bad: String = chars[..at].iter().chain(std::iter::once(&c)).chain(&chars[at..]).collect();
        prop_assert!(Email::parse(&bad).is_err(), "{:?} accepted", bad);
    }

    /// Too long: a local part over 64, a whole address over 254, or input over 320 bytes.
    #[test]
    fn overlong_addresses_are_refused(local in 65usize..400, domain in 250usize..600, junk in 321usize..5000) {
        let long_local = format!("{}@example.com", "a".repeat(local));
        prop_assert!(Email::parse(&long_local).is_err());
        let long_domain = format!("me@{}.com", vec!["abcdefghi"; domain / 10].join("."));
        prop_assert!(Email::parse(&long_domain).is_err());
        prop_assert_eq!(Email::parse(&"é".repeat(junk / 2 + 1)), Err(EmailError::TooLong));
    }
}

/// The decisions for the Unicode cases people ask about, pinned.
#[test]
fn unicode_decisions() {
    let p = |s: &str| Email::parse(s).map(|e| e.as_str().to_string());
    // Case folding is Unicode lowercase, not full case folding: ß stays ß (so "STRASSE" is a
    // different address), ẞ (capital sharp s) lowercases to ß, and İ becomes i + U+0307.
    assert_eq!(p("Ada@Example.COM"), Ok("ada@example.com".into()));
    assert_eq!(p("straße@example.com"), Ok("straße@example.com".into()));
    assert_eq!(p("STRAẞE@example.com"), Ok("straße@example.com".into()));
    assert_ne!(p("strasse@example.com"), p("straße@example.com"));
    assert_eq!(p("İlker@example.com"), Ok("i\u{307}lker@example.com".into()));
    assert_ne!(p("İlker@example.com"), p("ilker@example.com"));
    // Fullwidth letters: a different local part (mailboxes are the receiving server's call),
    // but a domain is one domain however it is typed (IDNA maps fullwidth to ASCII).
    assert_eq!(p("ａda@example.com"), Ok("ａda@example.com".into()));
    assert_ne!(p("ａda@example.com"), p("ada@example.com"));
    assert_eq!(p("ada@ＥＸＡＭＰＬＥ.com"), Ok("ada@example.com".into()));
    // Confusables are different addresses: Cyrillic а is not Latin a.
    assert_ne!(p("\u{430}da@example.com"), p("ada@example.com"));
    assert_ne!(p("ada@ex\u{430}mple.com"), p("ada@example.com"));
    assert!(p("ada@ex\u{430}mple.com").unwrap().ends_with("@xn--exmple-4nf.com"));
    // IDN domains are kept in punycode, so the Unicode and the xn-- forms are one account.
    let idn = p("用户@例子.广告").unwrap();
    assert_eq!(idn, "用户@xn--fsqu00a.xn--4rr70v");
    assert_eq!(p("用户@xn--fsqu00a.xn--4rr70v"), Ok(idn.clone()));
    assert_eq!(p("用户@例子。广告"), Ok(idn));
    // NFC and NFD are one account.
    assert_eq!(p("ze\u{301}lie@example.com"), p("z\u{e9}lie@example.com"));
    // Invisible characters are refused, with their own words, wherever they are.
    for bad in [
        "ada\u{200b}@example.com",
        "ada@exa\u{ad}mple.com",
        "\u{202e}moc.elpmaxe@ada",
        "ad\u{200d}a@example.com",
        "ada@example.com\u{feff}",
    ] {
        assert_eq!(Email::parse(bad), Err(EmailError::Invisible), "{bad:?}");
    }
}
