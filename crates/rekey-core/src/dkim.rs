//! DKIM: the operator's signing key, read from `dkim_key_file`, and the signature every mail
//! carries. The domain is `mail_from`'s, so the signature aligns with the visible sender (what
//! DMARC checks); the selector is `dkim_selector`, whose DNS TXT record holds the public key.

use std::path::Path;

use base64::Engine;
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm, DkimSigningKey,
};
use lettre::message::header::HeaderName;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;

/// The headers the signature covers: what a reader sees and what makes the mail ours. Each
/// appears once in every mail Rekey sends (lettre signs one header of a name). Not
/// Content-Type: lettre writes a multipart's Content-Type with the body, after signing, so
/// the signature would claim a header it never hashed and fail at every verifier.
const SIGNED: &[&str] = &[
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Language",
    "Auto-Submitted",
];

/// An Ed25519 private key in PKCS#8 DER is this prefix (version, the algorithm 1.3.101.112,
/// an octet string of 32) and then the 32-byte seed (RFC 8410).
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// Reads a DKIM private key: RSA (PKCS#1 `BEGIN RSA PRIVATE KEY` or PKCS#8 `BEGIN PRIVATE KEY`,
/// 1024 bits or more) or Ed25519 (PKCS#8, as `openssl genpkey -algorithm ed25519` writes it).
/// The error says what is wrong in plain words, never the key.
pub fn load_key(path: &Path) -> Result<DkimSigningKey, String> {
    let pem = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse_key(&pem)
}

fn parse_key(pem: &str) -> Result<DkimSigningKey, String> {
    const NOT_A_KEY: &str = "is not an RSA or Ed25519 private key in PEM (make one with \
                             `openssl genrsa 2048` or `openssl genpkey -algorithm ed25519`)";
    let rsa = if pem.contains("-----BEGIN RSA PRIVATE KEY-----") {
        use rsa::pkcs1::DecodeRsaPrivateKey;
        rsa::RsaPrivateKey::from_pkcs1_pem(pem).map_err(|_| NOT_A_KEY.to_string())?
    } else if pem.contains("-----BEGIN PRIVATE KEY-----") {
        if let Some(seed) = ed25519_seed(pem) {
            let seed = base64::engine::general_purpose::STANDARD.encode(seed);
            return DkimSigningKey::new(&seed, DkimSigningAlgorithm::Ed25519).map_err(|_| NOT_A_KEY.to_string());
        }
        rsa::RsaPrivateKey::from_pkcs8_pem(pem).map_err(|_| NOT_A_KEY.to_string())?
    } else {
        return Err(NOT_A_KEY.into());
    };
    // RFC 8301: verifiers ignore signatures from keys below 1024 bits.
    if rsa.size() * 8 < 1024 {
        return Err(format!(
            "is an RSA key of {} bits; DKIM needs 1024 or more (2048 is usual)",
            rsa.size() * 8
        ));
    }
    let pkcs1 = rsa
        .to_pkcs1_pem(Default::default())
        .map_err(|_| NOT_A_KEY.to_string())?;
    DkimSigningKey::new(&pkcs1, DkimSigningAlgorithm::Rsa).map_err(|_| NOT_A_KEY.to_string())
}

/// The seed of a PKCS#8 Ed25519 key, `None` for any other key.
fn ed25519_seed(pem: &str) -> Option<[u8; 32]> {
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN PRIVATE KEY-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD.decode(body.trim()).ok()?;
    let seed = der.strip_prefix(&ED25519_PKCS8_PREFIX[..])?;
    seed.try_into().ok()
}

/// Whether `s` can be a selector: DNS labels joined by dots.
pub fn valid_selector(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.split('.')
            .all(|l| !l.is_empty() && !l.starts_with('-') && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
}

/// The signing setup for mail from `domain`: relaxed canonicalization of headers and body, so a
/// relay that refolds a header or trims trailing blanks does not break the signature.
pub fn signer(key: DkimSigningKey, selector: &str, domain: &str) -> DkimConfig {
    DkimConfig::new(
        selector.to_string(),
        domain.to_string(),
        key,
        SIGNED.iter().map(|h| HeaderName::new_from_ascii_str(h)).collect(),
        DkimCanonicalization {
            header: DkimCanonicalizationType::Relaxed,
            body: DkimCanonicalizationType::Relaxed,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_a_key_in_words() {
        let e = parse_key("hello").err().unwrap();
        assert!(e.contains("not an RSA or Ed25519 private key"), "{e}");
        let e = parse_key("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
            .err()
            .unwrap();
        assert!(e.contains("not an RSA or Ed25519 private key"), "{e}");
    }

    #[test]
    fn selectors_are_dns_labels() {
        assert!(valid_selector("mail2026"));
        assert!(valid_selector("rekey.mail"));
        assert!(!valid_selector(""));
        assert!(!valid_selector("a b"));
        assert!(!valid_selector("a..b"));
        assert!(!valid_selector("-a"));
    }
}
