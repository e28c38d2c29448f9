//! [`SmtpCapture`]: the running capture server (`tests/smtp/capture.py`), and
//! the [`Fault`]s it can be told to inject.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::ca::TestCa;
use crate::mail::CapturedMail;
use crate::util::write_file;

/// SMTP user name accepted by the capture server.
const USER: &str = "rekey";
/// SMTP password accepted by the capture server.
const PASSWORD: &str = "s3cret-pass";
/// How long [`SmtpCapture::start`] / [`SmtpCapture::restart`] wait for the ports.
const START_TIMEOUT: Duration = Duration::from_secs(10);

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

    /// Wait until at least `n` messages are stored and return all of them.
    /// Panics after `timeout`, listing what did arrive plus the stats and
    /// the server log.
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

fn script_path() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/smtp/capture.py");
    path.canonicalize()
        .unwrap_or_else(|e| panic!("capture script {}: {e}", path.display()))
}
