//! The JWT attacks, against a real `Rekey` on a real sled directory with real mail: `alg:
//! none`, algorithm confusion, `kid` injection, oversized, stripped and re-signed tokens,
//! tampered claims, duplicate keys, non-canonical base64, another account's stamp. Each is
//! refused with its own stable code and words, and none of them touches the live reset.
//! (reset_flow.rs has the basic forged/damaged cases; this goes further.)

mod common;

use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use common::{Scene, NEW_PASSWORD};
use hmac::{Hmac, Mac};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use rekey_core::service::ResetProof;
use rekey_core::token::{TokenError, MAX_TOKEN_LEN};
use rekey_core::Error;
use serde_json::{json, Value};

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(text: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(text).unwrap()).unwrap()
}

/// `header.claims.` signed HS256 with `key` (whatever the header says), texts used as given.
fn hmac256(header: &str, claims: &str, key: &[u8]) -> String {
    let input = format!("{}.{}", b64(header), b64(claims));
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(input.as_bytes());
    format!("{input}.{}", b64(mac.finalize().into_bytes()))
}

/// A real reset link as it came in the mail, taken apart.
struct Link {
    token: String,
    parts: Vec<String>,
    claims: Value,
}

impl Link {
    fn new(token: String) -> Link {
        let parts: Vec<String> = token.split('.').map(str::to_string).collect();
        let claims = unb64(&parts[1]);
        Link { token, parts, claims }
    }

    /// The claims with `changes` applied (a null value removes the claim).
    fn with(&self, changes: Value) -> Value {
        let mut c = self.claims.clone();
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    }
}

fn token_error(e: TokenError) -> Error {
    Error::Token(e)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_attack_is_refused_in_its_words_and_the_real_link_survives() {
    use TokenError::*;
    let scene = Scene::new(&[]);
    let rekey = &scene.rekey;
    let ada = Link::new(scene.reset_mail_for_new_account("ada@example.com").await.reset_token());
    let bob = Link::new(scene.reset_mail_for_new_account("bob@example.com").await.reset_token());
    let header = unb64(&ada.parts[0]);
    let kid = header["kid"].as_str().unwrap().to_string();
    let key_file = std::fs::read(scene.dir.path().join("keys.json")).unwrap();
    let keys: Value = serde_json::from_slice(&key_file).unwrap();
    let secret = STANDARD.decode(keys[0]["secret"].as_str().unwrap()).unwrap();
    let files_before = listing(scene.dir.path());

    // Signed with the real key: only what the test changes is wrong.
    let signed = |header: Value, claims: &Value| hmac256(&header.to_string(), &claims.to_string(), &secret);
    let signed_text = |header: &str, claims: &str| hmac256(header, claims, &secret);
    let hs = |alg: Algorithm, claims: &Value| {
        let mut h = Header::new(alg);
        h.kid = Some(kid.clone());
        encode(&h, claims, &EncodingKey::from_secret(&secret)).unwrap()
    };
    // The good header and signature around other claims text.
    let resealed = |claims: &Value| format!("{}.{}.{}", ada.parts[0], b64(claims.to_string()), ada.parts[2]);
    let h = |alg: &str| json!({"alg": alg, "typ": "JWT", "kid": kid});
    let good_claims = ada.claims.clone();
    let attacker_key = b"attacker's own 32-byte hmac key!";

    let mut cases: Vec<(&str, String, Error)> = vec![
        // alg: none, every spelling, with and without a signature part.
        (
            "none, empty signature",
            format!("{}.{}.", b64(r#"{"alg":"none"}"#), ada.parts[1]),
            token_error(AlgNone),
        ),
        (
            "none, no signature part",
            format!("{}.{}", b64(r#"{"alg":"none"}"#), ada.parts[1]),
            token_error(Malformed),
        ),
        (
            "NONE with the real signature",
            format!("{}.{}.{}", b64(h("NONE").to_string()), ada.parts[1], ada.parts[2]),
            token_error(AlgNone),
        ),
        (
            "nOnE with the real kid",
            format!("{}.{}.", b64(h("nOnE").to_string()), ada.parts[1]),
            token_error(AlgNone),
        ),
        // Algorithm confusion: the HMAC key used as if it were an RSA/EC public key, and
        // the other HMAC sizes, all validly computed with the real secret.
        (
            "RS256 keyed with the HMAC secret",
            signed(h("RS256"), &good_claims),
            token_error(WrongAlgorithm),
        ),
        (
            "ES256 keyed with the HMAC secret",
            signed(h("ES256"), &good_claims),
            token_error(WrongAlgorithm),
        ),
        (
            "PS256 keyed with the HMAC secret",
            signed(h("PS256"), &good_claims),
            token_error(WrongAlgorithm),
        ),
        (
            "EdDSA keyed with the HMAC secret",
            signed(h("EdDSA"), &good_claims),
            token_error(WrongAlgorithm),
        ),
        (
            "HS384 with the real key",
            hs(Algorithm::HS384, &good_claims),
            token_error(WrongAlgorithm),
        ),
        (
            "HS512 with the real key",
            hs(Algorithm::HS512, &good_claims),
            token_error(WrongAlgorithm),
        ),
        (
            "hs256 in lowercase",
            signed(h("hs256"), &good_claims),
            token_error(WrongAlgorithm),
        ),
        (
            "alg as a list",
            signed(json!({"alg": ["HS256"], "kid": kid}), &good_claims),
            token_error(Malformed),
        ),
        (
            "no alg",
            signed(json!({"kid": kid}), &good_claims),
            token_error(Malformed),
        ),
        // The key file's text (the nearest thing to a "public key") as the HMAC key.
        (
            "HS256 keyed with keys.json",
            hmac256(&h("HS256").to_string(), &good_claims.to_string(), &key_file),
            token_error(BadSignature),
        ),
        // A key carried in the header is never used.
        (
            "embedded jwk",
            hmac256(
                &json!({"alg": "HS256", "kid": kid, "jwk": {"kty": "oct", "k": b64(attacker_key)}}).to_string(),
                &good_claims.to_string(),
                attacker_key,
            ),
            token_error(BadSignature),
        ),
        (
            "jku to the attacker's key set",
            hmac256(
                &json!({"alg": "HS256", "kid": kid, "jku": "https://evil.example/jwks.json"}).to_string(),
                &good_claims.to_string(),
                attacker_key,
            ),
            token_error(BadSignature),
        ),
        // Tokens signed with the real secret, but a kid the ring does not have.
        (
            "no kid",
            signed(json!({"alg": "HS256"}), &good_claims),
            token_error(UnknownKey),
        ),
        (
            "null kid",
            signed(json!({"alg": "HS256", "kid": null}), &good_claims),
            token_error(UnknownKey),
        ),
        (
            "numeric kid",
            signed(json!({"alg": "HS256", "kid": 1}), &good_claims),
            token_error(Malformed),
        ),
        (
            "kid as a list",
            signed(json!({"alg": "HS256", "kid": [kid]}), &good_claims),
            token_error(Malformed),
        ),
        (
            "unknown kid",
            signed(h("HS256").tap("kid", "2024-01"), &good_claims),
            token_error(UnknownKey),
        ),
        (
            "kid ../../keys.json",
            signed(h("HS256").tap("kid", "../../keys.json"), &good_claims),
            token_error(UnknownKey),
        ),
        (
            "kid keys.json",
            signed(h("HS256").tap("kid", "keys.json"), &good_claims),
            token_error(UnknownKey),
        ),
        (
            "kid /dev/null",
            signed(h("HS256").tap("kid", "/dev/null"), &good_claims),
            token_error(UnknownKey),
        ),
        (
            "kid SQL",
            signed(h("HS256").tap("kid", "' OR '1'='1' --"), &good_claims),
            token_error(UnknownKey),
        ),
        (
            "kid with NUL",
            signed(h("HS256").tap("kid", &format!("{kid}\0")), &good_claims),
            token_error(UnknownKey),
        ),
        (
            "kid NUL then path",
            signed(h("HS256").tap("kid", "\0../keys.json"), &good_claims),
            token_error(UnknownKey),
        ),
        (
            "kid in other case",
            signed(h("HS256").tap("kid", &other_case(&kid)), &good_claims),
            token_error(UnknownKey),
        ),
        (
            "kid with a space",
            signed(h("HS256").tap("kid", &format!(" {kid}")), &good_claims),
            token_error(UnknownKey),
        ),
        (
            "kid 2000 long",
            signed(h("HS256").tap("kid", &"k".repeat(2000)), &good_claims),
            token_error(UnknownKey),
        ),
        // Stripped or swapped signatures.
        (
            "stripped signature",
            format!("{}.{}.", ada.parts[0], ada.parts[1]),
            token_error(BadSignature),
        ),
        (
            "signature part gone",
            format!("{}.{}", ada.parts[0], ada.parts[1]),
            token_error(Malformed),
        ),
        (
            "four parts",
            format!("{}.{}", ada.token, ada.parts[2]),
            token_error(Malformed),
        ),
        (
            "bob's signature on ada's claims",
            format!("{}.{}.{}", ada.parts[0], ada.parts[1], bob.parts[2]),
            token_error(BadSignature),
        ),
        (
            "space inside",
            format!("{}. {}.{}", ada.parts[0], ada.parts[1], ada.parts[2]),
            token_error(BadSignature),
        ),
        // Claims changed under the original signature.
        (
            "sub changed",
            resealed(&ada.with(json!({"sub": bob.claims["sub"]}))),
            token_error(BadSignature),
        ),
        (
            "exp pushed",
            resealed(&ada.with(json!({"exp": ada.claims["exp"].as_i64().unwrap() + 86400}))),
            token_error(BadSignature),
        ),
        (
            "stamp changed",
            resealed(&ada.with(json!({"stamp": bob.claims["stamp"]}))),
            token_error(BadSignature),
        ),
        (
            "jti changed",
            resealed(&ada.with(json!({"jti": bob.claims["jti"]}))),
            token_error(BadSignature),
        ),
        (
            "claim added",
            resealed(&ada.with(json!({"admin": true}))),
            token_error(BadSignature),
        ),
        (
            "same claims, other spacing",
            format!(
                "{}.{}.{}",
                ada.parts[0],
                b64(serde_json::to_string_pretty(&ada.claims).unwrap()),
                ada.parts[2]
            ),
            token_error(BadSignature),
        ),
        // Issuer and audience, validly signed.
        (
            "iss in other case",
            signed(h("HS256"), &ada.with(json!({"iss": "Rekey"}))),
            token_error(WrongIssuer),
        ),
        (
            "aud with a space",
            signed(h("HS256"), &ada.with(json!({"aud": "password-reset "}))),
            token_error(WrongAudience),
        ),
        (
            "aud as a list",
            signed(h("HS256"), &ada.with(json!({"aud": ["password-reset"]}))),
            token_error(Malformed),
        ),
        (
            "no aud",
            signed(h("HS256"), &ada.with(json!({"aud": null}))),
            token_error(Malformed),
        ),
        (
            "no stamp",
            signed(h("HS256"), &ada.with(json!({"stamp": null}))),
            token_error(Malformed),
        ),
        (
            "exp as text",
            signed(h("HS256"), &ada.with(json!({"exp": ada.claims["exp"].to_string()}))),
            token_error(Malformed),
        ),
        (
            "exp as a float",
            signed(h("HS256"), &ada.with(json!({"exp": 1e18}))),
            token_error(Malformed),
        ),
        (
            "exp past i64",
            signed(h("HS256"), &ada.with(json!({"exp": u64::MAX}))),
            token_error(Malformed),
        ),
        // Duplicate keys: the first and the last occurrence must not mean different things
        // to the header check and to the library.
        (
            "header alg twice, none last",
            signed_text(
                &format!(r#"{{"alg":"HS256","alg":"none","kid":"{kid}"}}"#),
                &good_claims.to_string(),
            ),
            token_error(Malformed),
        ),
        (
            "header alg twice, HS256 last",
            signed_text(
                &format!(r#"{{"alg":"none","alg":"HS256","kid":"{kid}"}}"#),
                &good_claims.to_string(),
            ),
            token_error(Malformed),
        ),
        (
            "header kid twice",
            signed_text(
                &format!(r#"{{"alg":"HS256","kid":"../x","kid":"{kid}"}}"#),
                &good_claims.to_string(),
            ),
            token_error(Malformed),
        ),
        (
            "claims sub twice",
            signed_text(
                &h("HS256").to_string(),
                &good_claims
                    .to_string()
                    .replacen('{', &format!("{{\"sub\":{},", bob.claims["sub"]), 1),
            ),
            token_error(Malformed),
        ),
        // Non-canonical base64.
        (
            "padded header",
            format!("{}==.{}.{}", ada.parts[0], ada.parts[1], ada.parts[2]),
            token_error(Malformed),
        ),
        (
            "padded claims",
            format!("{}.{}==.{}", ada.parts[0], ada.parts[1], ada.parts[2]),
            token_error(BadSignature),
        ),
        ("padded signature", format!("{}=", ada.token), token_error(BadSignature)),
        (
            "signature with its spare bits set",
            format!("{}.{}.{}", ada.parts[0], ada.parts[1], spare_bits(&ada.parts[2])),
            token_error(BadSignature),
        ),
        // Well signed (as only a key holder could), but naming another account's state.
        (
            "bob's reset with ada's stamp",
            signed(h("HS256"), &bob.with(json!({"stamp": ada.claims["stamp"]}))),
            Error::TokenStale,
        ),
        (
            "bob's account with ada's jti",
            signed(h("HS256"), &bob.with(json!({"jti": ada.claims["jti"]}))),
            Error::TokenReplaced,
        ),
        (
            "unknown account",
            signed(h("HS256"), &ada.with(json!({"sub": "no-such-user"}))),
            Error::TokenStale,
        ),
        // Extreme times must not overflow the checks (this panicked before the fix).
        (
            "exp i64::MAX",
            signed(h("HS256"), &ada.with(json!({"exp": i64::MAX, "jti": "other"}))),
            Error::TokenReplaced,
        ),
        (
            "exp i64::MIN",
            signed(h("HS256"), &ada.with(json!({"exp": i64::MIN}))),
            token_error(Expired),
        ),
        (
            "nbf i64::MAX",
            signed(h("HS256"), &ada.with(json!({"nbf": i64::MAX}))),
            token_error(NotYetValid),
        ),
    ];
    // The header in the standard alphabet with padding (refused when that differs from
    // base64url; otherwise it is just another header text under the old signature).
    let standard = STANDARD.encode(h("HS256").to_string());
    let expected = if standard.contains(['+', '/', '=']) {
        Malformed
    } else {
        BadSignature
    };
    cases.push((
        "standard alphabet header",
        format!("{standard}.{}.{}", ada.parts[1], ada.parts[2]),
        token_error(expected),
    ));
    // A header whose base64 has spare bits, with them set (only possible when its length
    // is not a multiple of 4).
    let hdr = b64(h("HS256").to_string());
    if hdr.len() % 4 != 0 {
        cases.push((
            "header with its spare bits set",
            format!("{}.{}.{}", spare_bits(&hdr), ada.parts[1], ada.parts[2]),
            token_error(Malformed),
        ));
    }

    for (name, token, expected) in &cases {
        let got = rekey
            .inspect_reset_link(token)
            .await
            .expect_err(&format!("inspect accepted {name}: {token}"));
        assert_eq!(&got, expected, "inspect, {name}: {token}");
        let got = rekey
            .confirm_reset(ResetProof::Token(token.clone()), NEW_PASSWORD, "attacker")
            .await
            .unwrap_err();
        assert_eq!(&got, expected, "confirm, {name}: {token}");
        assert_eq!(got.code(), expected.code());
        assert_eq!(got.message(), expected.message());
        assert!(got.message().len() > 20, "{name}: {}", got.message());
    }
    // Every refusal kind was seen, each with its stable code.
    let mut codes: Vec<&str> = cases.iter().map(|c| c.2.code()).collect();
    codes.sort();
    codes.dedup();
    assert_eq!(
        codes,
        [
            "token_bad_signature",
            "token_expired",
            "token_malformed",
            "token_not_yet_valid",
            "token_replaced",
            "token_stale",
            "token_unknown_key",
            "token_unsigned",
            "token_wrong_algorithm",
            "token_wrong_audience",
            "token_wrong_issuer",
        ]
    );

    // No kid made Rekey write a file, and the key file is as it was.
    assert_eq!(listing(scene.dir.path()), files_before);
    assert_eq!(std::fs::read(scene.dir.path().join("keys.json")).unwrap(), key_file);
    // Both real links still work, once.
    assert_eq!(
        rekey.inspect_reset_link(&ada.token).await.unwrap().email,
        "ada@example.com"
    );
    for link in [&ada, &bob] {
        rekey
            .confirm_reset(ResetProof::Token(link.token.clone()), NEW_PASSWORD, "owner")
            .await
            .unwrap();
        let again = rekey
            .confirm_reset(ResetProof::Token(link.token.clone()), NEW_PASSWORD, "owner")
            .await
            .unwrap_err();
        assert_eq!(again, Error::TokenUsed);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_tokens_are_refused_at_once_unread() {
    let scene = Scene::new(&[]);
    let rekey = &scene.rekey;
    let good = scene.reset_mail_for_new_account("cy@example.com").await.reset_token();
    let parts: Vec<&str> = good.split('.').collect();
    let padded = |n: usize| format!("{}.{}{}.{}", parts[0], parts[1], "A".repeat(n), parts[2]);
    for token in [
        padded(MAX_TOKEN_LEN + 1 - good.len()),
        padded(100 * 1024),
        padded(10 * 1024 * 1024),
        "a.".repeat(5 * 1024 * 1024),
        format!("{}.{}.{}", "e".repeat(3 * 1024 * 1024), parts[1], parts[2]),
    ] {
        assert!(token.len() > MAX_TOKEN_LEN);
        let started = Instant::now();
        let err = rekey
            .confirm_reset(ResetProof::Token(token.clone()), NEW_PASSWORD, "attacker")
            .await
            .unwrap_err();
        let took = started.elapsed();
        assert_eq!(err, Error::Token(TokenError::Malformed), "{} bytes", token.len());
        assert!(err.message().contains("damaged or incomplete"), "{}", err.message());
        assert_eq!(rekey.inspect_reset_link(&token).await.unwrap_err(), err);
        // A linear scan at most; nothing is decoded.
        assert!(took < Duration::from_millis(500), "{} bytes took {took:?}", token.len());
    }
    // The longest token that is still looked at: decoded, and refused for its signature.
    let edge = padded(MAX_TOKEN_LEN - good.len());
    assert_eq!(edge.len(), MAX_TOKEN_LEN);
    assert_eq!(
        rekey.inspect_reset_link(&edge).await.unwrap_err(),
        Error::Token(TokenError::BadSignature)
    );
    // The real link was never consumed.
    rekey
        .confirm_reset(ResetProof::Token(good), NEW_PASSWORD, "owner")
        .await
        .unwrap();
}

/// `kid` with the case of its letters flipped. (Upper-casing alone was no attack when a
/// random kid had no lower-case letter: the test then failed one run in twenty or so.)
fn other_case(kid: &str) -> String {
    let flipped: String = kid
        .chars()
        .map(|c| match c {
            c if c.is_ascii_lowercase() => c.to_ascii_uppercase(),
            c => c.to_ascii_lowercase(),
        })
        .collect();
    assert_ne!(flipped, kid, "a kid with no letters");
    flipped
}

/// The base64url text with its last character's unused low bits set: the same bytes to a
/// lenient decoder, a different string to a strict one.
fn spare_bits(text: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let spare = match text.len() % 4 {
        2 => 0b1111,
        3 => 0b11,
        _ => panic!("no spare bits in a base64 text of length {}", text.len()),
    };
    let last = *text.as_bytes().last().unwrap();
    let index = ALPHABET.iter().position(|&c| c == last).unwrap();
    let mut out = text[..text.len() - 1].to_string();
    out.push(ALPHABET[index | spare] as char);
    assert_ne!(out, text, "the spare bits were already set");
    out
}

/// The files in the data directory (names only), to see that nothing was created or removed.
fn listing(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("snap."))
        .collect();
    names.sort();
    names
}

/// `json!` objects with one key set, for short case lines.
trait Tap {
    fn tap(self, key: &str, value: &str) -> Value;
}

impl Tap for Value {
    fn tap(mut self, key: &str, value: &str) -> Value {
        self[key] = value.into();
        self
    }
}
