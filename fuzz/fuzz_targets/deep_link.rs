//! The desktop app's `rekey://reset?token=…` parser on hostile input: never a panic, and
//! what it accepts is a JWT-shaped token that comes back unchanged from a fresh link.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../src-tauri/link.rs"]
mod link;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    for input in [raw.to_string(), format!("rekey://reset?token={raw}")] {
        match link::reset_token(&input) {
            Ok(token) => {
                let parts: Vec<&str> = token.split('.').collect();
                assert_eq!(parts.len(), 3, "{input:?}");
                assert!(parts
                    .iter()
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')));
                assert_eq!(link::reset_token(&format!("rekey://reset?token={token}")), Ok(token));
            }
            Err(e) => assert_eq!(e.code, "link_invalid"),
        }
    }
});
