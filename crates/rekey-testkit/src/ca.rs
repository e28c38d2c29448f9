//! [`TestCa`]: a certificate authority made for one test and the server
//! certificate it signed.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};

use crate::util::write_file;

/// A certificate authority made for one test, plus a server certificate it
/// signed.
///
/// The CA is self-signed with `is_ca = true`; the server certificate is a
/// separate leaf (not a CA) for the SANs `localhost` and `127.0.0.1`, so it
/// forms the real two-level chain rustls insists on.  Every `TestCa` gets a
/// unique subject name, so a second `TestCa` is a genuinely *untrusted* CA for
/// clients that only trust the first one.
///
/// Files written into `dir`: `ca.pem`, `server.pem`, `server-key.pem`.
#[derive(Debug, Clone)]
pub struct TestCa {
    ca_pem: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
}

impl TestCa {
    /// Generate a fresh CA and server certificate and write them into `dir`
    /// (created if missing).  Panics on I/O or generation errors.
    pub fn new(dir: &Path) -> TestCa {
        fs::create_dir_all(dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let tag = unique_tag();

        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params
            .distinguished_name
            .push(DnType::CommonName, format!("Rekey Test CA {tag}"));
        ca_params
            .distinguished_name
            .push(DnType::OrganizationName, "Rekey tests");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate().expect("CA key");
        let ca_cert = ca_params.self_signed(&ca_key).expect("self-sign CA");
        let issuer = Issuer::new(ca_params, ca_key);

        let mut leaf_params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).expect("server params");
        leaf_params.distinguished_name.push(DnType::CommonName, "localhost");
        leaf_params
            .distinguished_name
            .push(DnType::OrganizationName, format!("Rekey test server {tag}"));
        leaf_params.is_ca = IsCa::ExplicitNoCa;
        leaf_params.use_authority_key_identifier_extension = true;
        leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf_key = KeyPair::generate().expect("server key");
        let leaf_cert = leaf_params
            .signed_by(&leaf_key, &issuer)
            .expect("sign server certificate");

        let ca = TestCa {
            ca_pem: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server-key.pem"),
        };
        write_file(&ca.ca_pem, ca_cert.pem().as_bytes());
        write_file(&ca.server_cert, leaf_cert.pem().as_bytes());
        write_file(&ca.server_key, leaf_key.serialize_pem().as_bytes());
        ca
    }

    /// Path of the CA certificate (PEM): what a client should trust.
    pub fn ca_pem(&self) -> &Path {
        &self.ca_pem
    }

    /// Path of the server certificate (PEM, leaf only) signed by this CA.
    pub fn server_cert(&self) -> &Path {
        &self.server_cert
    }

    /// Path of the server certificate's private key (PKCS#8 PEM).
    pub fn server_key(&self) -> &Path {
        &self.server_key
    }
}

/// A tag that differs between every CA made in this run and across runs.
fn unique_tag() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}
