//! Test harness for Rekey: a real SMTP capture server on loopback.
//!
//! [`SmtpCapture::start`] launches `tests/smtp/capture.py` (Python +
//! aiosmtpd) listening on three 127.0.0.1 ports:
//!
//! * **STARTTLS** ([`SmtpCapture::starttls_port`]): STARTTLS is required before
//!   `MAIL`, AUTH (PLAIN/LOGIN) is required and only offered after TLS.
//! * **implicit TLS** ([`SmtpCapture::implicit_port`]): TLS from the first
//!   byte (smtps/465 style), AUTH required.
//! * **plain** ([`SmtpCapture::plain_port`]): no TLS, no AUTH (a loopback relay).
//!
//! The server certificate is issued by a CA generated for the test
//! ([`TestCa`]); point the client at [`SmtpCapture::ca_pem`] to trust it, or
//! at [`SmtpCapture::untrusted_ca_pem`] to see verification fail.  Every
//! accepted message can be read back as a [`CapturedMail`]; failures are
//! injected with [`SmtpCapture::set_fault`].
//!
//! ```no_run
//! use rekey_testkit::{Fault, SmtpCapture};
//! use std::time::Duration;
//!
//! let smtp = SmtpCapture::start();
//! // ... point the code under test at smtp.starttls_url() and smtp.ca_pem() ...
//! let mails = smtp.wait_for_messages(1, Duration::from_secs(5));
//! assert!(mails[0].tls);
//! smtp.set_fault(Fault::Reject(451, "4.3.0 try later".into()));
//! ```
//!
//! On-disk layout of [`SmtpCapture::dir`]: `mail/NNNNNN.json` (messages),
//! `fault` (control file), `stats.json`, `ports.json`, `capture.log` (server
//! stderr), `ca/` and `untrusted-ca/` (PEM files).

pub mod figures;
pub mod webdriver;
pub use webdriver::WebDriver;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use serde_json::Value;

/// SMTP user name accepted by the capture server.
const USER: &str = "rekey";
/// SMTP password accepted by the capture server.
const PASSWORD: &str = "s3cret-pass";
/// How long [`SmtpCapture::start`] / [`SmtpCapture::restart`] wait for the ports.
const START_TIMEOUT: Duration = Duration::from_secs(10);

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

/// A fault injected into the capture server; takes effect for the next
/// command that checks it (the server re-reads it at every connection,
/// `MAIL`, `RCPT`, `DATA` and `AUTH`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Behave normally.
    Accept,
    /// Answer `RCPT TO` with this code and text, e.g.
    /// `Reject(451, "4.3.0 try later".into())` or
    /// `Reject(550, "5.1.1 no such user".into())`.  Nothing is stored.
    Reject(u16, String),
    /// Accept the envelope, then answer the end of `DATA` with this code and
    /// text.  Nothing is stored.
    RejectData(u16, String),
    /// New connections get no greeting at all (on the implicit port the TLS
    /// handshake still completes); sessions already open stall at their next
    /// `MAIL`/`RCPT`/`DATA`.  Clients see a read timeout.
    Silent,
    /// Every AUTH fails with 535, even with the right credentials.
    AuthFail,
    /// Turn new connections away before the session starts: this code and
    /// text replace the `220` banner, then the server closes the connection,
    /// e.g. `Greeting(421, "4.3.2 too busy, try later".into())`.  Sessions
    /// already open carry on.
    Greeting(u16, String),
    /// Answer `RCPT TO` for this one address (ignoring case) with this code
    /// and text; every other recipient is accepted, e.g.
    /// `RejectRecipient("gone@example.com".into(), 550, "5.1.1 no such user".into())`.
    RejectRecipient(String, u16, String),
}

impl Fault {
    fn to_line(&self) -> String {
        match self {
            Fault::Accept => "accept".to_string(),
            Fault::Reject(code, text) => format!("reject {code} {text}"),
            Fault::RejectData(code, text) => format!("reject-data {code} {text}"),
            Fault::Silent => "silent".to_string(),
            Fault::AuthFail => "auth-fail".to_string(),
            Fault::Greeting(code, text) => format!("greeting {code} {text}"),
            Fault::RejectRecipient(to, code, text) => format!("reject-rcpt {to} {code} {text}"),
        }
    }
}

/// One message accepted by the capture server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedMail {
    /// Envelope sender (`MAIL FROM`).
    pub mail_from: String,
    /// Envelope recipients (`RCPT TO`), in order.
    pub rcpt_to: Vec<String>,
    /// Port it arrived on: `"starttls"`, `"implicit"` or `"plain"`.
    pub port: String,
    /// Whether the session was encrypted when `DATA` completed.
    pub tls: bool,
    /// The authenticated user, if the session used AUTH.
    pub auth_user: Option<String>,
    /// The whole message as sent (CRLF line ends, still encoded).
    pub raw: String,
    /// Headers by name as sent (first occurrence), values decoded
    /// (RFC 2047) by Python's `email` package.  Prefer [`CapturedMail::header`],
    /// which ignores case.
    pub headers: BTreeMap<String, String>,
    /// The decoded `text/plain` body (line ends normalised to `\n`).
    pub text: Option<String>,
    /// The decoded `text/html` body (line ends normalised to `\n`).
    pub html: Option<String>,
}

impl CapturedMail {
    fn text_part(&self) -> &str {
        self.text.as_deref().expect("the mail has a text part")
    }

    /// The reset token in the mail's deep link (`rekey://reset?token=…`), taken from the
    /// text part as a person would copy it.
    pub fn reset_token(&self) -> String {
        let text = self.text_part();
        let start =
            text.find("rekey://reset?token=").expect("the mail holds the deep link") + "rekey://reset?token=".len();
        text[start..].split_whitespace().next().unwrap().to_string()
    }

    /// The token in a verification mail's deep link (`rekey://verify?token=…`).
    pub fn verify_token(&self) -> String {
        link_token(self.text_part(), "rekey://verify?token=").expect("the mail holds a verify link")
    }

    /// The https landing link (`…/reset#token=…`) from the text part.
    pub fn landing_link(&self) -> String {
        self.text_part()
            .split_whitespace()
            .find(|w| w.contains("/reset#token="))
            .expect("the mail holds a landing link")
            .to_string()
    }

    /// The typed code (`ABCD-EFGH`) from the text part.
    pub fn reset_code(&self) -> String {
        self.text_part()
            .split_whitespace()
            .find(|w| {
                w.len() == 9
                    && w.as_bytes()[4] == b'-'
                    && w.chars()
                        .filter(|c| *c != '-')
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
            })
            .expect("the mail holds a code like ABCD-EFGH")
            .to_string()
    }

    /// Header value by name, ignoring ASCII case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn from_json(v: &Value, file: &Path) -> CapturedMail {
        let bad = |field: &str| -> ! { panic!("{}: bad or missing field {field:?}: {v}", file.display()) };
        let string = |field: &str| -> String { v[field].as_str().map(str::to_string).unwrap_or_else(|| bad(field)) };
        let opt_string = |field: &str| -> Option<String> {
            match &v[field] {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                _ => bad(field),
            }
        };
        CapturedMail {
            mail_from: string("mail_from"),
            rcpt_to: v["rcpt_to"]
                .as_array()
                .unwrap_or_else(|| bad("rcpt_to"))
                .iter()
                .map(|r| r.as_str().unwrap_or_else(|| bad("rcpt_to")).to_string())
                .collect(),
            port: string("port"),
            tls: v["tls"].as_bool().unwrap_or_else(|| bad("tls")),
            auth_user: opt_string("auth_user"),
            raw: string("raw"),
            headers: v["headers"]
                .as_object()
                .unwrap_or_else(|| bad("headers"))
                .iter()
                .map(|(k, val)| {
                    let val = val.as_str().unwrap_or_else(|| bad("headers"));
                    (k.clone(), val.to_string())
                })
                .collect(),
            text: opt_string("text"),
            html: opt_string("html"),
        }
    }

    fn summary(&self) -> String {
        format!(
            "from={:?} to={:?} port={} tls={} auth={:?} subject={:?}",
            self.mail_from,
            self.rcpt_to,
            self.port,
            self.tls,
            self.auth_user,
            self.header("subject").unwrap_or("")
        )
    }
}

/// A running capture server.  Owns a temporary directory (messages, certs,
/// control files) and the server process, which is killed on drop.
#[derive(Debug)]
pub struct SmtpCapture {
    dir: tempfile::TempDir,
    ca: TestCa,
    untrusted: TestCa,
    child: Option<Child>,
    starttls: u16,
    implicit: u16,
    plain: u16,
}

impl SmtpCapture {
    /// Start a server in a new temp dir with a new CA, on free ports, with
    /// user [`user`](Self::user) `rekey` and password `s3cret-pass`.
    ///
    /// Waits up to 10 s for the ports; panics with the server's stderr if it
    /// dies or times out.  The interpreter is `$REKEY_TEST_PYTHON`, else
    /// `/usr/bin/python3` (which needs `python3-aiosmtpd`).
    pub fn start() -> SmtpCapture {
        let dir = tempfile::Builder::new()
            .prefix("rekey-smtp-")
            .tempdir()
            .expect("create temp dir");
        let ca = TestCa::new(&dir.path().join("ca"));
        let untrusted = TestCa::new(&dir.path().join("untrusted-ca"));
        let mut capture = SmtpCapture {
            dir,
            ca,
            untrusted,
            child: None,
            starttls: 0,
            implicit: 0,
            plain: 0,
        };
        capture.spawn(None);
        capture
    }

    /// Stop the server (SIGTERM, then SIGKILL after 5 s) and wait for it.
    /// Messages, stats and certificates are kept; the ports stop listening.
    /// Does nothing if it is already stopped.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) if Instant::now() < deadline => sleep(Duration::from_millis(10)),
                _ => break,
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Stop the server if it runs, then start it again on the same ports,
    /// with the same directory and certificates.  Message numbering and
    /// stats carry on where they were.  Panics if a port was taken meanwhile.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn(Some((self.starttls, self.implicit, self.plain)));
    }

    /// The STARTTLS port (submission/587 style).
    pub fn starttls_port(&self) -> u16 {
        self.starttls
    }

    /// The implicit-TLS port (smtps/465 style).
    pub fn implicit_port(&self) -> u16 {
        self.implicit
    }

    /// The plain port (no TLS, no AUTH).
    pub fn plain_port(&self) -> u16 {
        self.plain
    }

    /// The user name the server accepts (`rekey`).
    pub fn user(&self) -> &str {
        USER
    }

    /// The password the server accepts (`s3cret-pass`).
    pub fn password(&self) -> &str {
        PASSWORD
    }

    /// The CA certificate (PEM) that signed the server's certificate.
    pub fn ca_pem(&self) -> &Path {
        self.ca.ca_pem()
    }

    /// A CA certificate (PEM) from a different CA: a client trusting only
    /// this must reject the server's certificate.
    pub fn untrusted_ca_pem(&self) -> &Path {
        self.untrusted.ca_pem()
    }

    /// The capture server's process id (to pin it to a CPU, say), while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The temp directory holding messages, control files and certificates
    /// (see the crate docs for the layout).  Handy when a test fails.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `smtp://rekey:s3cret-pass@localhost:PORT` for the STARTTLS port.
    pub fn starttls_url(&self) -> String {
        format!("smtp://{USER}:{PASSWORD}@localhost:{}", self.starttls)
    }

    /// `smtps://rekey:s3cret-pass@localhost:PORT` for the implicit-TLS port.
    pub fn implicit_url(&self) -> String {
        format!("smtps://{USER}:{PASSWORD}@localhost:{}", self.implicit)
    }

    /// `smtp+plain://localhost:PORT` for the plain port.
    pub fn plain_url(&self) -> String {
        format!("smtp+plain://localhost:{}", self.plain)
    }

    /// Inject a fault (atomically replaces the `fault` control file); the
    /// running server picks it up at its next check.
    pub fn set_fault(&self, fault: Fault) {
        let path = self.dir().join("fault");
        let tmp = self.dir().join(".fault.tmp");
        write_file(&tmp, format!("{}\n", fault.to_line()).as_bytes());
        fs::rename(&tmp, &path).unwrap_or_else(|e| panic!("rename {}: {e}", tmp.display()));
    }

    /// All messages stored so far, in arrival order.
    pub fn messages(&self) -> Vec<CapturedMail> {
        let mail_dir = self.dir().join("mail");
        let entries = match fs::read_dir(&mail_dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
            Err(e) => panic!("read {}: {e}", mail_dir.display()),
        };
        let mut numbered: Vec<(u64, PathBuf)> = entries
            .filter_map(|entry| {
                let path = entry.ok()?.path();
                let stem = path.file_name()?.to_str()?.strip_suffix(".json")?;
                if stem.is_empty() || !stem.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                Some((stem.parse().ok()?, path))
            })
            .collect();
        numbered.sort();
        numbered
            .iter()
            .map(|(_, path)| {
                let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
                let value: Value =
                    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()));
                CapturedMail::from_json(&value, path)
            })
            .collect()
    }

    /// Wait until at least `n` messages are stored and return all of them.
    /// Panics after `timeout`, listing what did arrive plus the stats and
    /// the server log.
    /// Waits until `n` messages to `to` whose subject starts with `subject` have arrived and
    /// returns those, oldest first (others, a verification mail say, do not count).
    pub fn wait_for_mail(&self, to: &str, subject: &str, n: usize, timeout: Duration) -> Vec<CapturedMail> {
        let deadline = Instant::now() + timeout;
        loop {
            let found: Vec<CapturedMail> = self
                .messages()
                .into_iter()
                .filter(|m| {
                    m.rcpt_to.iter().any(|r| r.eq_ignore_ascii_case(to))
                        && m.header("Subject").is_some_and(|s| s.starts_with(subject))
                })
                .collect();
            if found.len() >= n {
                return found;
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {n} mail(s) to {to} about {subject:?}; {} arrived",
                    found.len()
                );
            }
            sleep(Duration::from_millis(25));
        }
    }

    pub fn wait_for_messages(&self, n: usize, timeout: Duration) -> Vec<CapturedMail> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= n {
                return messages;
            }
            if Instant::now() >= deadline {
                let list: Vec<String> = messages
                    .iter()
                    .enumerate()
                    .map(|(i, m)| format!("  #{}: {}", i + 1, m.summary()))
                    .collect();
                panic!(
                    "timed out after {timeout:?} waiting for {n} message(s); {} arrived:\n{}\n\
                     stats: {}\nserver log ({}):\n{}",
                    messages.len(),
                    if list.is_empty() {
                        "  (none)".to_string()
                    } else {
                        list.join("\n")
                    },
                    self.stats(),
                    self.log_path().display(),
                    self.log()
                );
            }
            sleep(Duration::from_millis(20));
        }
    }

    /// Counters kept by the server, per port (`"starttls"`, `"implicit"`,
    /// `"plain"`): `{"connections": {..}, "messages": {..}, "rejected": {..},
    /// "auth_failures": {..}}`.  `rejected` counts injected `Reject` /
    /// `RejectData` / `RejectRecipient` answers and `Greeting` refusals.
    /// Survives [`restart`](Self::restart).
    pub fn stats(&self) -> Value {
        let path = self.dir().join("stats.json");
        fs::read_to_string(&path)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or(Value::Null)
    }

    fn log_path(&self) -> PathBuf {
        self.dir().join("capture.log")
    }

    fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn spawn(&mut self, ports: Option<(u16, u16, u16)>) {
        let root = self.dir().to_path_buf();
        let ports_file = root.join("ports.json");
        let _ = fs::remove_file(&ports_file);
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open capture.log");
        let python = std::env::var_os("REKEY_TEST_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/bin/python3"));
        let script = script_path();
        let mut cmd = Command::new(&python);
        cmd.arg(&script)
            .arg("--dir")
            .arg(root.join("mail"))
            .arg("--cert")
            .arg(self.ca.server_cert())
            .arg("--key")
            .arg(self.ca.server_key())
            .arg("--user")
            .arg(USER)
            .arg("--password")
            .arg(PASSWORD)
            .arg("--ports-file")
            .arg(&ports_file)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log);
        if let Some((s, i, p)) = ports {
            cmd.arg("--ports").arg(format!("{s},{i},{p}"));
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot run {} {}: {e} (set REKEY_TEST_PYTHON to another interpreter)",
                python.display(),
                script.display()
            )
        });

        let deadline = Instant::now() + START_TIMEOUT;
        let parsed = loop {
            if let Some(v) = fs::read_to_string(&ports_file)
                .ok()
                .and_then(|text| serde_json::from_str::<Value>(&text).ok())
            {
                break v;
            }
            let died = match child.try_wait() {
                Ok(Some(status)) => Some(format!("exited with {status}")),
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    Some(format!("did not listen within {START_TIMEOUT:?}"))
                }
                Ok(None) => None,
                Err(e) => Some(format!("wait failed: {e}")),
            };
            if let Some(why) = died {
                let log = self.log();
                let hint = if log.contains("No module named 'aiosmtpd'") && !log.contains("apt-get") {
                    "\nhint: aiosmtpd missing: apt-get install python3-aiosmtpd"
                } else {
                    ""
                };
                panic!(
                    "SMTP capture server {} {} {why}\n--- server log ---\n{log}{hint}",
                    python.display(),
                    script.display()
                );
            }
            sleep(Duration::from_millis(10));
        };
        let port = |key: &str| -> u16 {
            parsed[key]
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or_else(|| panic!("bad {key} in {}: {parsed}", ports_file.display()))
        };
        self.starttls = port("starttls");
        self.implicit = port("implicit");
        self.plain = port("plain");
        self.child = Some(child);
    }
}

impl Drop for SmtpCapture {
    fn drop(&mut self) {
        // No need to be gentle: every file is written atomically.
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A loopback port that nothing listens on right now (bound, then released),
/// for "SMTP server is down" tests.
/// The token after `prefix` (`rekey://verify?token=`, …) in a mail's text.
pub fn link_token(text: &str, prefix: &str) -> Option<String> {
    let start = text.find(prefix)? + prefix.len();
    text[start..].split_whitespace().next().map(str::to_string)
}

/// The same, in a whole message as stored (a local mailbox file): quoted-printable soft
/// line breaks and `=3D` undone first. Enough for Rekey's links, whose tokens hold only
/// `A-Z a-z 0-9 - _ .`.
pub fn link_token_in_raw(raw: &str, prefix: &str) -> Option<String> {
    let text = raw.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=");
    link_token(&text, prefix)
}

pub fn free_port() -> u16 {
    let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

fn script_path() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/smtp/capture.py");
    path.canonicalize()
        .unwrap_or_else(|e| panic!("capture script {}: {e}", path.display()))
}

fn write_file(path: &Path, bytes: &[u8]) {
    let mut f = fs::File::create(path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    f.write_all(bytes)
        .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
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
