//! A real `rekeyd serve` process on a free loopback port, for tests and benchmarks.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rekey_testkit::{free_port, SmtpCapture};

/// The `rekeyd` these tests run: cargo's own for rekeyd's tests; for another package's (the
/// desktop app's tests against a real server), the workspace's build, brought up to date.
pub fn rekeyd_binary() -> PathBuf {
    if let Some(path) = option_env!("CARGO_BIN_EXE_rekeyd") {
        return PathBuf::from(path);
    }
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            // The test binary lives in target/<profile>/deps; rekeyd in target/<profile>.
            let exe = std::env::current_exe().unwrap();
            let profile_dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
            let mut build = Command::new(cargo);
            build.args(["build", "--quiet", "-p", "rekeyd"]);
            if profile_dir.ends_with("release") {
                build.arg("--release");
            }
            let status = build.status().expect("cargo builds rekeyd");
            assert!(status.success(), "cargo build -p rekeyd failed");
            profile_dir.join("rekeyd")
        })
        .clone()
}

/// A running `rekeyd serve`. Killed when dropped.
pub struct Server {
    child: Option<Child>,
    /// For HTTPS: the CA that signed the server's certificate (a `TestCa` keeps it beside).
    ca: Option<PathBuf>,
    pub port: u16,
    /// The operator's listener: `/metrics` and `/healthz`.
    pub metrics_port: u16,
    pub data: PathBuf,
    pub log: PathBuf,
    scheme: &'static str,
}

/// The value of an unlabelled family (`name value`) in `/metrics` text; 0 when absent.
/// A gauge read from the server's `/metrics` now (0 when it cannot be read).
pub async fn read_gauge(http: &reqwest::Client, server: &Server, name: &str) -> u64 {
    let Ok(r) = http.get(server.metrics_url()).send().await else {
        return 0;
    };
    gauge(&r.text().await.unwrap_or_default(), name)
}

pub fn gauge(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// How to start one.
#[derive(Clone, Default)]
pub struct Setup {
    /// Extra `REKEY_*` settings.
    pub env: Vec<(String, String)>,
    /// The binary (default: the one cargo built for these tests).
    pub binary: Option<PathBuf>,
    /// Serve HTTPS with these (certificate, key).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Listen on this port (a restart where clients know the old one); else a free one.
    pub port: Option<u16>,
}

impl Setup {
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.env.push((key.to_string(), value.into()));
        self
    }
}

/// The environment for a test instance: cheap argon2, mail to `smtp` (implicit TLS with the
/// test CA) or to the local mailbox.
pub fn command(
    binary: &Path,
    data: &Path,
    (port, metrics_port): (u16, u16),
    smtp: Option<&SmtpCapture>,
    setup: &Setup,
) -> Command {
    let mut c = Command::new(binary);
    c.arg("--data-dir")
        .arg(data)
        .arg("serve")
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("REKEY_") && !k.starts_with("REKEY_TEST")) {
        c.env_remove(k);
    }
    c.env("REKEY_ARGON2_MEMORY_KIB", "8192")
        .env("REKEY_ARGON2_ITERATIONS", "1")
        .env("REKEY_MAIL_FROM", "Rekey <no-reply@rekey.test>")
        .env(
            "REKEY_PUBLIC_URL",
            match setup.tls {
                Some(_) => format!("https://localhost:{port}"),
                None => format!("http://127.0.0.1:{port}"),
            },
        )
        .env("REKEY_METRICS_LISTEN", format!("127.0.0.1:{metrics_port}"));
    if let Some(smtp) = smtp {
        c.env("REKEY_SMTP_URL", smtp.implicit_url())
            .env("REKEY_SMTP_CA_FILE", smtp.ca_pem())
            .env("REKEY_SMTP_TIMEOUT", "5s");
    }
    if let Some((cert, key)) = &setup.tls {
        c.env("REKEY_TLS_CERT_FILE", cert).env("REKEY_TLS_KEY_FILE", key);
    }
    for (k, v) in &setup.env {
        c.env(k, v);
    }
    if let Some(known) = older_build_settings(binary) {
        // An older build refuses settings it does not know: leave them out, so a new test
        // can be watched failing on what the older build does, not on its configuration.
        for key in std::env::vars()
            .map(|(k, _)| k)
            .chain(setup.env.iter().map(|(k, _)| k.clone()))
        {
            if key.starts_with("REKEY_") && !key.starts_with("REKEY_TEST") && !known.contains(&key) {
                c.env_remove(&key);
            }
        }
        for key in [
            "REKEY_METRICS_LISTEN",
            "REKEY_ARGON2_MEMORY_KIB",
            "REKEY_ARGON2_ITERATIONS",
            "REKEY_MAIL_FROM",
            "REKEY_PUBLIC_URL",
            "REKEY_SMTP_URL",
            "REKEY_SMTP_CA_FILE",
            "REKEY_SMTP_TIMEOUT",
            "REKEY_TLS_CERT_FILE",
            "REKEY_TLS_KEY_FILE",
        ] {
            if !known.iter().any(|k| k == key) {
                c.env_remove(key);
            }
        }
    }
    c
}

/// The settings another build (REKEY_TEST_BINARY) knows, read from its own refusal of one it
/// does not; `None` for the build under test.
fn older_build_settings(binary: &Path) -> Option<Vec<String>> {
    if binary == rekeyd_binary() {
        return None;
    }
    let out = Command::new(binary)
        .args(["config", "check"])
        .env("REKEY_NO_SUCH_SETTING_PROBE", "1")
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    let list = text.split("known settings: ").nth(1)?;
    Some(list.trim().split(", ").map(str::to_string).collect())
}

impl Server {
    /// Starts `rekeyd serve` over `data` and waits until `/healthz` answers.
    pub fn start(data: &Path, smtp: Option<&SmtpCapture>, setup: Setup) -> Server {
        let (port, mut metrics_port) = (setup.port.unwrap_or_else(free_port), free_port());
        // REKEY_TEST_BINARY runs a suite against another build (say, the last release, to
        // watch a new test fail there).
        let binary = setup
            .binary
            .clone()
            .or_else(|| std::env::var_os("REKEY_TEST_BINARY").map(PathBuf::from))
            .unwrap_or_else(rekeyd_binary);
        let log = data.with_extension(format!("{port}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let child = command(&binary, data, (port, metrics_port), smtp, &setup)
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("rekeyd serve starts");
        if older_build_settings(&binary).is_some_and(|known| !known.iter().any(|k| k == "REKEY_METRICS_LISTEN")) {
            metrics_port = port; // an older build serves /metrics on its public port
        }
        let ca = setup
            .tls
            .as_ref()
            .and_then(|(cert, _)| cert.parent())
            .map(|dir| dir.join("ca.pem"))
            .filter(|ca| ca.exists());
        let mut server = Server {
            ca,
            child: Some(child),
            port,
            metrics_port,
            data: data.to_path_buf(),
            log,
            scheme: if setup.tls.is_some() { "https" } else { "http" },
        };
        server.wait_until_up();
        server
    }

    fn wait_until_up(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("rekeyd serve exited ({status}): {}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("rekeyd serve did not start listening: {}", self.log_text());
    }

    /// `http://127.0.0.1:PORT` (or `https://localhost:PORT`).
    pub fn url(&self, path: &str) -> String {
        match self.scheme {
            "https" => format!("https://localhost:{}{path}", self.port),
            _ => format!("http://127.0.0.1:{}{path}", self.port),
        }
    }

    /// `http://127.0.0.1:METRICS_PORT/metrics`: the operator's listener, not the public one.
    pub fn metrics_url(&self) -> String {
        format!("http://127.0.0.1:{}/metrics", self.metrics_port)
    }

    /// Creates an account as a user would (ask, read the mail, open its link) and returns
    /// once it can sign in. `smtp`: where the server sends mail; `None`: its local mailbox.
    pub fn create_account(&self, smtp: &SmtpCapture, email: &str, password: &str) {
        self.create_accounts(Some(smtp), &[email.to_string()], password);
    }

    /// A client for this server (trusting its test CA when it speaks HTTPS).
    pub fn http(&self) -> reqwest::blocking::Client {
        let mut builder = reqwest::blocking::Client::builder();
        if let Some(ca) = &self.ca {
            let root = reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap();
            builder = builder.add_root_certificate(root);
        }
        builder.build().unwrap()
    }

    /// The same for many addresses at once (their mail read together).
    pub fn create_accounts(&self, smtp: Option<&SmtpCapture>, emails: &[String], password: &str) {
        let http = self.http();
        // Four at a time: each answer waits for a hash.
        std::thread::scope(|scope| {
            for share in emails.chunks(emails.len().div_ceil(4).max(1)) {
                let http = &http;
                scope.spawn(move || {
                    for email in share {
                        let r = http
                            .post(self.url("/users"))
                            .json(&serde_json::json!({"email": email, "password": password}))
                            .send()
                            .unwrap();
                        assert_eq!(r.status().as_u16(), 202, "{:?}", r.text());
                    }
                });
            }
        });
        self.verify_all(smtp, emails, password);
    }

    /// Waits for the verification mail of each address asked for, and opens its link with
    /// the password chosen.
    pub fn verify_all(&self, smtp: Option<&SmtpCapture>, emails: &[String], password: &str) {
        let http = self.http();
        let mut waiting: std::collections::BTreeSet<String> = emails.iter().map(|e| e.to_lowercase()).collect();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !waiting.is_empty() {
            assert!(Instant::now() < deadline, "no verification mail for {waiting:?}");
            for (to, token) in self.verification_tokens(smtp) {
                if waiting.remove(&to) {
                    let r = http
                        .post(self.url("/users/verify"))
                        .json(&serde_json::json!({ "token": token, "password": password }))
                        .send()
                        .unwrap();
                    assert_eq!(r.status().as_u16(), 201, "verify {to}: {:?}", r.text());
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// (recipient, token) of every verification mail so far.
    fn verification_tokens(&self, smtp: Option<&SmtpCapture>) -> Vec<(String, String)> {
        const PREFIX: &str = "rekey://verify?token=";
        match smtp {
            Some(smtp) => smtp
                .messages()
                .into_iter()
                .filter_map(|m| {
                    let token = rekey_testkit::link_token(m.text.as_deref()?, PREFIX)?;
                    Some((m.rcpt_to.first()?.to_lowercase(), token))
                })
                .collect(),
            None => std::fs::read_dir(self.data.join("mailbox"))
                .map(|dir| {
                    dir.filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
                        .filter_map(|raw| {
                            let to = raw.lines().find_map(|l| l.strip_prefix("To: "))?.trim().to_lowercase();
                            Some((to, rekey_testkit::link_token_in_raw(&raw, PREFIX)?))
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// What the server wrote to stderr so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the process to end.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let pid = child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "rekeyd did not stop after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, no goodbye.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}
