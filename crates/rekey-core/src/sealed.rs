//! Mail at rest. A queued reset mail holds a live link and code, so the outbox never keeps a
//! message in the clear: it is sealed (XChaCha20-Poly1305, a random 192-bit nonce per
//! message, the mail's queue id as associated data) with a key of its own, `mail.key` in the
//! data directory beside the signing keys (mode 0600, made at first start). A copy of the
//! database alone, a backup say, reads no link and no code.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use rand::RngCore;

const NONCE_LEN: usize = 24;

/// Why a sealed message could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// Not base64, too short, or altered, or sealed with another key.
    #[error("the message cannot be decrypted (was mail.key replaced?)")]
    Unreadable,
    /// `mail.key` could not be read or written.
    #[error("cannot use the mail key file {path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// The key that seals queued mail.
#[derive(Clone)]
pub struct MailKey {
    cipher: XChaCha20Poly1305,
    /// The key itself, only to derive other secrets from (see [`MailKey::derive`]).
    key: [u8; 32],
}

impl std::fmt::Debug for MailKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MailKey(<redacted>)")
    }
}

impl MailKey {
    /// Loads `mail.key` from `data_dir`, making it (256 random bits) if there is none.
    pub fn load_or_create(data_dir: &Path) -> Result<MailKey, SealError> {
        let path = data_dir.join("mail.key");
        let fail = |e: &dyn std::fmt::Display| SealError::File {
            path: path.clone(),
            reason: e.to_string(),
        };
        let key = match std::fs::read_to_string(&path) {
            Ok(text) => return MailKey::from_base64(&text).map_err(|e| fail(&e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = MailKey::random_base64();
                let tmp = path.with_extension("key.tmp");
                crate::token::write_private(&tmp, key.as_bytes()).map_err(|e| fail(&e))?;
                std::fs::rename(&tmp, &path).map_err(|e| fail(&e))?;
                key
            }
            Err(e) => return Err(fail(&e)),
        };
        MailKey::from_base64(&key).map_err(|e| fail(&e))
    }

    /// 256 random bits in base64: a new key, as `mail.key` (or a database) keeps it.
    pub fn random_base64() -> String {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        STANDARD.encode(key)
    }

    /// The key kept as base64 (`mail.key`'s contents, or a database's copy).
    pub fn from_base64(text: &str) -> Result<MailKey, String> {
        let bytes = STANDARD.decode(text.trim()).map_err(|e| e.to_string())?;
        let key = <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| "it does not hold a 256-bit key".to_string())?;
        Ok(MailKey {
            cipher: XChaCha20Poly1305::new(Key::from_slice(&key)),
            key,
        })
    }

    /// A secret for another use, derived from this key and `label` (HMAC-SHA256): stable
    /// across restarts, never the key itself.
    pub fn derive(&self, label: &[u8]) -> [u8; 32] {
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.key).expect("any key length");
        mac.update(label);
        mac.finalize().into_bytes().into()
    }

    /// Seals `message`, bound to `context` (the mail's queue id): base64 of nonce and ciphertext.
    pub fn seal(&self, message: &[u8], context: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: message,
                    aad: context,
                },
            )
            .expect("XChaCha20-Poly1305 seals any length this queue holds");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        STANDARD.encode(out)
    }

    /// Opens what [`MailKey::seal`] made for the same `context`.
    pub fn open(&self, sealed: &str, context: &[u8]) -> Result<Vec<u8>, SealError> {
        let bytes = STANDARD.decode(sealed).map_err(|_| SealError::Unreadable)?;
        if bytes.len() < NONCE_LEN {
            return Err(SealError::Unreadable);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        self.cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context,
                },
            )
            .map_err(|_| SealError::Unreadable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_mail_opens_only_with_its_key_and_its_place() {
        let dir = tempfile::tempdir().unwrap();
        let key = MailKey::load_or_create(dir.path()).unwrap();
        let message = b"rekey://reset?token=eyJhbGciOiJIUzI1NiJ9.e30.sig code ABCD-EFGH";
        let sealed = key.seal(message, b"7");
        assert!(!sealed.contains("rekey://") && !sealed.contains("ABCD"));
        assert_ne!(sealed, key.seal(message, b"7"), "a fresh nonce each time");
        assert_eq!(key.open(&sealed, b"7").unwrap(), message);
        // Another queue position, another key, a flipped byte: refused.
        assert!(key.open(&sealed, b"8").is_err());
        let again = MailKey::load_or_create(dir.path()).unwrap();
        assert_eq!(again.open(&sealed, b"7").unwrap(), message, "the key file reloads");
        let other = MailKey::load_or_create(tempfile::tempdir().unwrap().path()).unwrap();
        assert!(other.open(&sealed, b"7").is_err());
        let mut bytes = STANDARD.decode(&sealed).unwrap();
        bytes[30] ^= 1;
        assert!(key.open(&STANDARD.encode(bytes), b"7").is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("mail.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
