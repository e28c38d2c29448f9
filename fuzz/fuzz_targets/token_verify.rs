//! Token verification on hostile input. The first byte picks the mode:
//! - raw: the bytes as a token;
//! - mutate: a good token with the bytes applied as edits; only the unchanged token passes;
//! - signed: the bytes as header and claims JSON, signed with the real key, so the checks
//!   after the signature (algorithm, issuer, audience, times) see arbitrary values; `$KID`
//!   in the header is replaced by the real key id.
//!
//! Never a panic; nothing but the good token or a validly signed HS256 token with the right
//! issuer, audience and times is accepted.
#![no_main]

use std::sync::OnceLock;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use rekey_core::token::{KeyRing, AUDIENCE, ISSUER, LEEWAY};
use sha2::Sha256;

const NOW: i64 = 1_700_000_000;

struct World {
    ring: KeyRing,
    secret: Vec<u8>,
    good: String,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("rekey-fuzz-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ring = KeyRing::load_or_create(&dir, NOW).unwrap();
        let keys: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("keys.json")).unwrap()).unwrap();
        let secret = STANDARD.decode(keys[0]["secret"].as_str().unwrap()).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let good = ring.mint("user-1", "stamp-1", NOW, 1800).token;
        World { ring, secret, good }
    })
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            let token = String::from_utf8_lossy(rest);
            if w.ring.verify(&token, NOW).is_ok() {
                assert_eq!(token, w.good);
            }
        }
        1 => {
            let mut token = w.good.clone().into_bytes();
            for edit in rest.chunks(3) {
                let (op, at, byte) = (
                    edit[0],
                    edit.get(1).copied().unwrap_or(0),
                    edit.get(2).copied().unwrap_or(0),
                );
                let at = at as usize % (token.len() + 1);
                match op % 3 {
                    0 if at < token.len() => token[at] = byte,
                    1 => token.insert(at, byte),
                    _ if at < token.len() => {
                        token.remove(at);
                    }
                    _ => {}
                }
            }
            let token = String::from_utf8_lossy(&token);
            if w.ring.verify(&token, NOW).is_ok() {
                assert_eq!(token, w.good, "a changed token was accepted");
            }
        }
        _ => {
            let split = rest.iter().position(|&b| b == 0xff).unwrap_or(rest.len());
            // `$KID` in the header stands for the ring's (random) key id.
            let header = String::from_utf8_lossy(&rest[..split]).replace("$KID", w.ring.current_kid());
            let header = header.as_bytes();
            let claims = rest.get(split + 1..).unwrap_or_default();
            let signing_input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims));
            let mut mac = Hmac::<Sha256>::new_from_slice(&w.secret).unwrap();
            mac.update(signing_input.as_bytes());
            let token = format!(
                "{signing_input}.{}",
                URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
            );
            if let Ok(c) = w.ring.verify(&token, NOW) {
                let h: serde_json::Value = serde_json::from_slice(header).unwrap();
                assert_eq!(h["alg"], "HS256");
                assert_eq!((c.iss.as_str(), c.aud.as_str()), (ISSUER, AUDIENCE));
                assert!(NOW <= c.exp.saturating_add(LEEWAY) && c.nbf <= NOW + LEEWAY && c.iat <= NOW + LEEWAY);
            }
        }
    }
});
