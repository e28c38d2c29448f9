//! Reset tokens: HS256 JWTs signed with 256-bit keys made at first start, named by `kid`,
//! and the typed code that stands in for the link when a mail client strips it.
//!
//! Verification reads the header by hand before `jsonwebtoken` sees it, so `alg: none`,
//! another algorithm and an unknown `kid` each get their own answer; time checks use
//! Rekey's clock (tests move it) rather than the library's.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// `iss` of tokens made before each store had an issuer of its own (still accepted: the
/// signature binds a token to its store's keys either way), and of a key ring told no other.
pub const ISSUER: &str = "rekey";
/// `aud` of reset tokens.
pub const AUDIENCE: &str = "password-reset";
/// `aud` of tokens that verify a new account's address.
pub const AUDIENCE_VERIFY: &str = "verify-email";

/// What a token is for: its `aud`. A token for one is refused for the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Resetting a forgotten password.
    Reset,
    /// Verifying a new account's address.
    Verify,
}

impl Purpose {
    /// The `aud` claim of tokens for this purpose.
    pub fn audience(self) -> &'static str {
        match self {
            Purpose::Reset => AUDIENCE,
            Purpose::Verify => AUDIENCE_VERIFY,
        }
    }
}
/// Clock skew forgiven on `exp`, `nbf` and `iat`, in seconds.
pub const LEEWAY: i64 = 30;
/// Longest token looked at; anything longer is refused unread.
pub const MAX_TOKEN_LEN: usize = 4096;
/// Letters of the typed code: no 0/O, 1/I/L, so it survives being read aloud or retyped.
pub const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
/// Longest reset lifetime the config allows; old keys are kept at least this long.
const MAX_TTL: i64 = 24 * 3600;

/// Why a token was refused, before any account was looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not three base64url parts of JSON, or too long.
    #[error("this link is damaged or incomplete; copy the whole link from the mail, or use the code instead")]
    Malformed,
    /// The signature does not match: the token was altered or not made by this Rekey.
    #[error("this link was not issued by this Rekey or has been altered")]
    BadSignature,
    /// `alg: none`: an unsigned token.
    #[error("this link is not signed, so it cannot be trusted")]
    AlgNone,
    /// Signed with an algorithm other than HS256.
    #[error("this link is signed in a way Rekey does not accept")]
    WrongAlgorithm,
    /// Signed by a key this Rekey does not know (or has retired).
    #[error("this link was signed with a key this Rekey does not know; ask for a new link")]
    UnknownKey,
    /// `iss` is not this Rekey.
    #[error("this link was issued by another service, not this Rekey")]
    WrongIssuer,
    /// `aud` is not `password-reset`.
    #[error("this link is not meant for this page (a reset link and an account link are not the same)")]
    WrongAudience,
    /// Past `exp`.
    #[error("this link has expired; ask for a new one")]
    Expired,
    /// Before `nbf` or `iat`.
    #[error("this link is not valid yet; check your computer's clock")]
    NotYetValid,
}

impl TokenError {
    /// A stable code for the fronts.
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::Malformed => "token_malformed",
            TokenError::BadSignature => "token_bad_signature",
            TokenError::AlgNone => "token_unsigned",
            TokenError::WrongAlgorithm => "token_wrong_algorithm",
            TokenError::UnknownKey => "token_unknown_key",
            TokenError::WrongIssuer => "token_wrong_issuer",
            TokenError::WrongAudience => "token_wrong_audience",
            TokenError::Expired => "token_expired",
            TokenError::NotYetValid => "token_not_yet_valid",
        }
    }

    /// The message that words it (`locales/errors/*.ftl`).
    pub fn message_id(&self) -> &'static str {
        match self {
            TokenError::Malformed => "error-token-malformed",
            TokenError::BadSignature => "error-token-bad-signature",
            TokenError::AlgNone => "error-token-unsigned",
            TokenError::WrongAlgorithm => "error-token-wrong-algorithm",
            TokenError::UnknownKey => "error-token-unknown-key",
            TokenError::WrongIssuer => "error-token-wrong-issuer",
            TokenError::WrongAudience => "error-token-wrong-audience",
            TokenError::Expired => "error-token-expired",
            TokenError::NotYetValid => "error-token-not-yet-valid",
        }
    }
}

/// The claims of a reset token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// Issuer: `rekey`.
    pub iss: String,
    /// Audience: `password-reset`.
    pub aud: String,
    /// The user id (never the email: links leak).
    pub sub: String,
    /// Issued at.
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Expires.
    pub exp: i64,
    /// 128-bit random id; the account's live reset must name it.
    pub jti: String,
    /// The account's security stamp when the token was made.
    pub stamp: String,
}

/// One signing key.
#[derive(Clone, Serialize, Deserialize)]
struct SigningKey {
    kid: String,
    /// 32 random bytes, base64.
    secret: String,
    created_at: i64,
    /// Set when a newer key took over; the key still verifies until its tokens expire.
    retired_at: Option<i64>,
}

/// Why the key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or writing `keys.json` failed.
    #[error("cannot use the signing key file {path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// The signing keys, kept in `keys.json` (mode 0600) in the data directory, or in a shared
/// database (see [`KeyRing::from_json`]).
#[derive(Clone)]
pub struct KeyRing {
    keys: Vec<SigningKey>,
    /// The key file; `None` when the keys live in a database, which saves them itself.
    path: Option<PathBuf>,
    /// The `iss` of the tokens it makes: which Rekey issued a link (a server's public URL, a
    /// desktop store's install id). The app reads it before it contacts anything.
    issuer: String,
    /// Issuers this store had before (its public URL changed, say): their links still verify.
    earlier_issuers: Vec<String>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(|k| k.kid.as_str()).collect();
        f.debug_struct("KeyRing").field("kids", &kids).finish_non_exhaustive()
    }
}

/// A freshly minted reset: the token for the link, the code for typing, and what to store.
#[derive(Debug, Clone)]
pub struct Minted {
    /// The JWT.
    pub token: String,
    /// The typed code, 8 characters without the dash.
    pub code: String,
    /// Its claims.
    pub claims: Claims,
    /// The signing key's id.
    pub kid: String,
    /// HMAC of the code, to store.
    pub code_mac: String,
}

impl KeyRing {
    /// Loads the key file in `data_dir`, creating it with one new key if there is none.
    pub fn load_or_create(data_dir: &Path, now: i64) -> Result<KeyRing, KeyError> {
        let path = data_dir.join("keys.json");
        let fail = |e: &dyn std::fmt::Display| KeyError::File {
            path: path.clone(),
            reason: e.to_string(),
        };
        match std::fs::read(&path) {
            Ok(bytes) => {
                let mut ring = KeyRing::from_json(&bytes).map_err(|e| fail(&e))?;
                ring.path = Some(path);
                Ok(ring)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut ring = KeyRing::new(now);
                ring.path = Some(path);
                ring.save()?;
                Ok(ring)
            }
            Err(e) => Err(fail(&e)),
        }
    }

    /// A ring with one new key, saved nowhere yet.
    pub fn new(now: i64) -> KeyRing {
        KeyRing {
            keys: vec![SigningKey::generate(now)],
            path: None,
            issuer: ISSUER.into(),
            earlier_issuers: Vec::new(),
        }
    }

    /// The ring kept as [`KeyRing::to_json`] made it (a database's copy); its rotations are
    /// not saved by the ring but by whoever keeps the JSON.
    pub fn from_json(bytes: &[u8]) -> Result<KeyRing, String> {
        let keys: Vec<SigningKey> = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if keys.iter().all(|k| k.retired_at.is_some()) {
            return Err("it holds no current key".into());
        }
        Ok(KeyRing {
            keys,
            path: None,
            issuer: ISSUER.into(),
            earlier_issuers: Vec::new(),
        })
    }

    /// The keys as JSON (secret: keep it where only Rekey reads it).
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.keys).expect("plain data")
    }

    /// The same keys as `other` (another instance rotated them), keeping this ring's issuers.
    pub fn take_keys(&mut self, other: KeyRing) {
        self.keys = other.keys;
    }

    /// The ring, making tokens with `iss` = `issuer`, and accepting those, the store's
    /// `earlier` issuers' and legacy ones.
    pub fn with_issuer(mut self, issuer: &str, earlier: Vec<String>) -> KeyRing {
        self.issuer = issuer.to_string();
        self.earlier_issuers = earlier;
        self
    }

    /// The `iss` of the tokens this ring makes.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Every `iss` this ring's tokens have carried, the current one included.
    pub fn issuers(&self) -> Vec<String> {
        let mut all = self.earlier_issuers.clone();
        if !all.contains(&self.issuer) {
            all.push(self.issuer.clone());
        }
        all
    }

    /// Makes a new current key; the old one keeps verifying until its tokens have expired.
    /// Returns the new key's id.
    pub fn rotate(&mut self, now: i64) -> Result<String, KeyError> {
        for k in self.keys.iter_mut().filter(|k| k.retired_at.is_none()) {
            k.retired_at = Some(now);
        }
        self.keys
            .retain(|k| k.retired_at.is_none_or(|r| r + MAX_TTL + LEEWAY > now));
        let key = SigningKey::generate(now);
        let kid = key.kid.clone();
        self.keys.push(key);
        self.save()?;
        Ok(kid)
    }

    /// The id of the key that signs new tokens.
    pub fn current_kid(&self) -> &str {
        &self.current().kid
    }

    fn current(&self) -> &SigningKey {
        self.keys
            .iter()
            .rev()
            .find(|k| k.retired_at.is_none())
            .expect("checked at load")
    }

    fn find(&self, kid: &str) -> Option<&SigningKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    fn save(&self) -> Result<(), KeyError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let fail = |e: std::io::Error| KeyError::File {
            path: path.clone(),
            reason: e.to_string(),
        };
        let tmp = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(&self.keys).expect("plain data");
        write_private(&tmp, &bytes).map_err(fail)?;
        std::fs::rename(&tmp, path).map_err(fail)
    }

    /// Mints a reset for user `sub` with security stamp `stamp`, valid for `ttl` seconds.
    pub fn mint(&self, sub: &str, stamp: &str, now: i64, ttl: i64) -> Minted {
        self.mint_for(Purpose::Reset, sub, stamp, now, ttl)
    }

    /// Mints a token and code for `purpose`.
    pub fn mint_for(&self, purpose: Purpose, sub: &str, stamp: &str, now: i64, ttl: i64) -> Minted {
        let key = self.current();
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: purpose.audience().into(),
            sub: sub.into(),
            iat: now,
            nbf: now,
            exp: now + ttl,
            jti: random_id(),
            stamp: stamp.into(),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(key.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&key.bytes()))
            .expect("HS256 signing cannot fail");
        let code = new_code();
        let code_mac = self.code_mac(&key.kid, &claims.jti, &code).expect("current key exists");
        Minted {
            token,
            code,
            claims,
            kid: key.kid.clone(),
            code_mac,
        }
    }

    /// The HMAC under key `kid` that a typed `code` for reset `jti` must match.
    pub fn code_mac(&self, kid: &str, jti: &str, code: &str) -> Option<String> {
        let key = self.find(kid)?;
        let mut mac = Hmac::<Sha256>::new_from_slice(&key.bytes()).expect("any key length");
        mac.update(b"rekey-code\0");
        mac.update(jti.as_bytes());
        mac.update(b"\0");
        mac.update(code.as_bytes());
        Some(URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }

    /// Verifies signature, algorithm, key, issuer, audience and times. Account checks
    /// (live reset, stamp) come after, in the service.
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, TokenError> {
        self.verify_for(Purpose::Reset, token, now)
    }

    /// Verifies a token for `purpose` (its `aud`).
    pub fn verify_for(&self, purpose: Purpose, token: &str, now: i64) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let header_b64 = token.split('.').next().ok_or(TokenError::Malformed)?;
        if token.split('.').count() != 3 {
            return Err(TokenError::Malformed);
        }
        #[derive(Deserialize)]
        struct RawHeader {
            alg: String,
            kid: Option<String>,
        }
        let raw = URL_SAFE_NO_PAD.decode(header_b64).map_err(|_| TokenError::Malformed)?;
        let header: RawHeader = serde_json::from_slice(&raw).map_err(|_| TokenError::Malformed)?;
        if header.alg.eq_ignore_ascii_case("none") {
            return Err(TokenError::AlgNone);
        }
        if header.alg != "HS256" {
            return Err(TokenError::WrongAlgorithm);
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.find(kid))
            .ok_or(TokenError::UnknownKey)?;
        let mut v = Validation::new(Algorithm::HS256);
        v.validate_exp = false; // checked below against Rekey's clock
        v.validate_nbf = false;
        v.validate_aud = false;
        v.required_spec_claims.clear();
        let data =
            jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(&key.bytes()), &v).map_err(|e| match e
                .kind()
            {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => TokenError::BadSignature,
                _ => TokenError::Malformed,
            })?;
        let c = data.claims;
        if c.iss != self.issuer && c.iss != ISSUER && !self.earlier_issuers.contains(&c.iss) {
            return Err(TokenError::WrongIssuer);
        }
        if c.aud != purpose.audience() {
            return Err(TokenError::WrongAudience);
        }
        // Saturating: the claims are the signer's numbers, and `i64::MAX` must not overflow.
        if now > c.exp.saturating_add(LEEWAY) {
            return Err(TokenError::Expired);
        }
        if now.saturating_add(LEEWAY) < c.nbf || now.saturating_add(LEEWAY) < c.iat {
            return Err(TokenError::NotYetValid);
        }
        Ok(c)
    }
}

impl SigningKey {
    fn generate(now: i64) -> Self {
        let mut secret = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        let mut kid = [0u8; 6];
        rand::rngs::OsRng.fill_bytes(&mut kid);
        SigningKey {
            kid: URL_SAFE_NO_PAD.encode(kid),
            secret: STANDARD.encode(secret),
            created_at: now,
            retired_at: None,
        }
    }
    fn bytes(&self) -> Vec<u8> {
        STANDARD.decode(&self.secret).unwrap_or_default()
    }
}

/// A 128-bit random id, base64url.
pub fn random_id() -> String {
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

/// 256 random bits in the form of a code's HMAC (a stand-in that matches no code).
pub fn random_mac() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

fn new_code() -> String {
    let mut rng = rand::rngs::OsRng;
    (0..8)
        .map(|_| CODE_ALPHABET[rng.gen_range(0..CODE_ALPHABET.len())] as char)
        .collect()
}

/// Shows a code as people read it: `ABCD-EFGH`.
pub fn format_code(code: &str) -> String {
    if code.len() == 8 {
        format!("{}-{}", &code[..4], &code[4..])
    } else {
        code.to_string()
    }
}

/// Reads a typed code: case, spaces and dashes do not matter. `None` if it cannot be a code.
pub fn parse_code(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == 8 && code.bytes().all(|b| CODE_ALPHABET.contains(&b))).then_some(code)
}

/// Writes `bytes` to `path`, readable by the owner only, and syncs it.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(dir: &Path) -> KeyRing {
        KeyRing::load_or_create(dir, 1_700_000_000).unwrap()
    }

    fn forge(header: &str, claims: &Claims, sig: &str) -> String {
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap()),
            sig
        )
    }

    #[test]
    fn key_file_is_private_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let a = ring(dir.path());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("keys.json"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let b = ring(dir.path());
        assert_eq!(a.current_kid(), b.current_kid());
        let m = a.mint("u1", "s1", 1_700_000_000, 1800);
        assert_eq!(b.verify(&m.token, 1_700_000_010).unwrap().sub, "u1");
    }

    #[test]
    fn every_refusal_has_its_reason() {
        let dir = tempfile::tempdir().unwrap();
        let r = ring(dir.path());
        let t0 = 1_700_000_000;
        let m = r.mint("u1", "s1", t0, 1800);
        assert_eq!(r.verify(&m.token, t0 + 1800 + LEEWAY + 1), Err(TokenError::Expired));
        assert_eq!(r.verify(&m.token, t0 - LEEWAY - 1), Err(TokenError::NotYetValid));
        assert_eq!(r.verify("not a token", t0), Err(TokenError::Malformed));
        assert_eq!(r.verify(&"a.".repeat(5000), t0), Err(TokenError::Malformed));
        let parts: Vec<&str> = m.token.split('.').collect();
        // Tampered payload, original signature.
        let mut c = m.claims.clone();
        c.sub = "admin".into();
        let kid = r.current_kid();
        let hdr = format!(r#"{{"alg":"HS256","typ":"JWT","kid":"{kid}"}}"#);
        assert_eq!(r.verify(&forge(&hdr, &c, parts[2]), t0), Err(TokenError::BadSignature));
        assert_eq!(
            r.verify(&forge(r#"{"alg":"none"}"#, &m.claims, ""), t0),
            Err(TokenError::AlgNone)
        );
        let rs = format!(r#"{{"alg":"RS256","kid":"{kid}"}}"#);
        assert_eq!(
            r.verify(&forge(&rs, &m.claims, parts[2]), t0),
            Err(TokenError::WrongAlgorithm)
        );
        let unknown = r#"{"alg":"HS256","kid":"../../etc/passwd"}"#;
        assert_eq!(
            r.verify(&forge(unknown, &m.claims, parts[2]), t0),
            Err(TokenError::UnknownKey)
        );
        // A token that is validly signed but for another issuer or audience.
        let other_dir = tempfile::tempdir().unwrap();
        std::fs::copy(dir.path().join("keys.json"), other_dir.path().join("keys.json")).unwrap();
        let key = r.current();
        let sign = |c: &Claims| {
            let mut h = Header::new(Algorithm::HS256);
            h.kid = Some(key.kid.clone());
            jsonwebtoken::encode(&h, c, &EncodingKey::from_secret(&key.bytes())).unwrap()
        };
        let mut c = m.claims.clone();
        c.iss = "someone-else".into();
        assert_eq!(r.verify(&sign(&c), t0), Err(TokenError::WrongIssuer));
        let mut c = m.claims.clone();
        c.aud = "session".into();
        assert_eq!(r.verify(&sign(&c), t0), Err(TokenError::WrongAudience));
    }

    #[test]
    fn rotation_keeps_old_tokens_valid_until_they_expire() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = ring(dir.path());
        let t0 = 1_700_000_000;
        let old = r.mint("u1", "s1", t0, 1800);
        let new_kid = r.rotate(t0 + 10).unwrap();
        assert_ne!(new_kid, old.kid);
        let reloaded = ring(dir.path());
        assert!(reloaded.verify(&old.token, t0 + 20).is_ok());
        assert_eq!(reloaded.mint("u1", "s1", t0 + 20, 60).kid, new_kid);
        // Two days later a further rotation drops the long-retired key.
        let mut r = reloaded;
        r.rotate(t0 + 2 * 86400).unwrap();
        assert_eq!(r.verify(&old.token, t0 + 20), Err(TokenError::UnknownKey));
    }

    #[test]
    fn codes_are_unambiguous_and_forgiving_to_type() {
        let dir = tempfile::tempdir().unwrap();
        let m = ring(dir.path()).mint("u", "s", 0, 600);
        assert_eq!(m.code.len(), 8);
        assert!(m.code.bytes().all(|b| CODE_ALPHABET.contains(&b)));
        let shown = format_code(&m.code);
        assert_eq!(parse_code(&shown.to_lowercase()), Some(m.code.clone()));
        assert_eq!(parse_code(" abcd efgh "), Some("ABCDEFGH".into()));
        assert_eq!(parse_code("ABCD-EFG0"), None);
        assert_eq!(parse_code("ABC"), None);
    }
}
