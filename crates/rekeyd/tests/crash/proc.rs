//! The server process: `rekeyd serve` started, waited for, killed; its log; offline admin
//! commands on the data directory.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use rekey_testkit::{free_port, SmtpCapture};

use crate::common::server::{command, Setup};

pub(crate) struct Proc {
    child: Child,
    pub(crate) base: String,
    started: Instant,
}

fn setup() -> Setup {
    Setup::default()
        .with("REKEY_LIMIT_ADDRESS", "off")
        .with("REKEY_LIMIT_CLIENT", "off")
        .with("REKEY_LIMIT_SIGNIN_ACCOUNT", "off")
        .with("REKEY_LIMIT_SIGNIN_CLIENT", "off")
        .with("REKEY_LIMIT_SIGNIN_SPRAY", "off")
        .with("REKEY_LIMIT_REGISTER_CLIENT", "off")
        .with("REKEY_LIMIT_CODE_CLIENT", "off")
        .with("REKEY_LIMIT_CODE_ADDRESS", "off")
}

/// Where the servers keep their records: one `rekeyd serve` on a sled data directory, or
/// several on one PostgreSQL database (each with a data directory of its own for the rest).
pub(crate) struct Site {
    pub(crate) data: Vec<PathBuf>,
    pub(crate) database: Option<String>,
}

/// The servers of a site, started together and killed together.
pub(crate) struct Fleet(Vec<Proc>);

impl Fleet {
    pub(crate) fn spawn(site: &Site, smtp: &SmtpCapture, log: &Path) -> Fleet {
        Fleet(
            site.data
                .iter()
                .map(|data| Proc::spawn(data, smtp, log, site.database.as_deref()))
                .collect(),
        )
    }

    /// Waits until every server answers `/healthz`; returns the slowest one's start time.
    pub(crate) fn wait_healthy(&mut self, log: &Path) -> Duration {
        self.0.iter_mut().map(|p| p.wait_healthy(log)).max().unwrap_or_default()
    }

    /// The server client `i` talks to.
    pub(crate) fn base(&self, i: usize) -> String {
        self.0[i % self.0.len()].base.clone()
    }

    /// SIGKILL to every server at once.
    pub(crate) fn kill(self) {
        for p in self.0 {
            p.kill();
        }
    }

    /// SIGTERM to every server; the first unclean exit, if any.
    pub(crate) fn terminate(self) -> std::process::ExitStatus {
        let statuses: Vec<_> = self.0.into_iter().map(Proc::terminate).collect();
        statuses.iter().copied().find(|s| !s.success()).unwrap_or(statuses[0])
    }
}

impl Proc {
    pub(crate) fn spawn(data: &Path, smtp: &SmtpCapture, log: &Path, database: Option<&str>) -> Proc {
        let port = free_port();
        // REKEY_CRASH_BINARY runs the harness against another build (a mutant, an old release).
        let binary = std::env::var_os("REKEY_CRASH_BINARY")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_rekeyd")));
        let log = fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
        let started = Instant::now();
        let mut setup = setup();
        if let Some(url) = database {
            setup = setup
                .with("REKEY_DATABASE_URL", url)
                .with("REKEY_PUBLIC_URL", "http://rekey.test");
        }
        let child = command(&binary, data, (port, free_port()), Some(smtp), &setup)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("rekeyd serve starts");
        Proc {
            child,
            base: format!("http://127.0.0.1:{port}"),
            started,
        }
    }

    /// Waits until `/healthz` answers 200; returns the time since the spawn.
    pub(crate) fn wait_healthy(&mut self, log: &Path) -> Duration {
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = http.get(format!("{}/healthz", self.base)).send() {
                if r.status().as_u16() == 200 {
                    return self.started.elapsed();
                }
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("rekeyd serve exited ({status}) after a kill:\n{}", tail(log));
            }
            assert!(
                Instant::now() < deadline,
                "rekeyd serve did not come back up within 30 s:\n{}",
                tail(log)
            );
            thread::sleep(Duration::from_millis(5));
        }
    }

    pub(crate) fn kill(mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }

    pub(crate) fn terminate(mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "rekeyd did not stop after SIGTERM");
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A failed assertion must not leave a server running after the test.
impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub(crate) fn tail(log: &Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// An offline admin command on the site's records.
pub(crate) fn admin(site: &Site, args: &[&str]) -> String {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rekeyd"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("REKEY_")) {
        c.env_remove(k);
    }
    c.arg("--data-dir").arg(&site.data[0]).args(args);
    if let Some(url) = &site.database {
        c.env("REKEY_DATABASE_URL", url);
    }
    c.env("REKEY_MAIL_FROM", "Rekey <no-reply@rekey.test>");
    let out = c.stdin(Stdio::null()).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "rekeyd {args:?} failed on the site's records: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}
