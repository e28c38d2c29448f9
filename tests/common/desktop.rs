//! The real app window, headless: a private Xvfb display, a private D-Bus session bus (for the
//! single-instance plugin), a private HOME (the `rekey://` scheme gets registered there),
//! and `tauri-driver` + WebKitWebDriver speaking W3C WebDriver to it.
#![allow(dead_code)]

use rekey_testkit::{free_port, WebDriver};
use serde_json::json;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A display, a bus and a home folder, shared by every process of one test.
pub struct Desktop {
    xvfb: Child,
    bus: Child,
    pub home: tempfile::TempDir,
    pub env: Vec<(String, String)>,
}

impl Desktop {
    pub fn start() -> Desktop {
        let home = tempfile::tempdir().unwrap();
        // Xvfb picks a free display and writes its number to the fd we give it.
        let mut xvfb = Command::new("Xvfb")
            .args(["-displayfd", "1", "-screen", "0", "1280x1024x24", "-nolisten", "tcp"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb runs (scripts/setup-debian installs it)");
        let display = read_line(xvfb.stdout.take().unwrap(), "Xvfb's display number");
        let mut bus = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon runs");
        let address = read_line(bus.stdout.take().unwrap(), "the session bus address");
        let h = home.path();
        for sub in ["data", "config", "cache", "runtime", "rekey"] {
            std::fs::create_dir_all(h.join(sub)).unwrap();
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(h.join("runtime"), std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        let p = |s: &str| h.join(s).display().to_string();
        let env = vec![
            ("DISPLAY".into(), format!(":{}", display.trim())),
            ("DBUS_SESSION_BUS_ADDRESS".into(), address.trim().to_string()),
            ("HOME".into(), h.display().to_string()),
            ("XDG_DATA_HOME".into(), p("data")),
            ("XDG_CONFIG_HOME".into(), p("config")),
            ("XDG_CACHE_HOME".into(), p("cache")),
            ("XDG_RUNTIME_DIR".into(), p("runtime")),
            ("NO_AT_BRIDGE".into(), "1".into()),
            // The app speaks the computer's language; the tests read English.
            ("LC_ALL".into(), "C.UTF-8".into()),
            ("LANG".into(), "C.UTF-8".into()),
            // (Not WEBKIT_DISABLE_COMPOSITING_MODE: with it, WebDriver screenshots hang.)
            ("REKEY_DATA_DIR".into(), p("rekey")),
            ("REKEY_ARGON2_MEMORY_KIB".into(), "8192".into()),
            ("REKEY_ARGON2_ITERATIONS".into(), "1".into()),
            ("REKEY_MAIL_FROM".into(), "Rekey <no-reply@rekey.test>".into()),
        ];
        Desktop { xvfb, bus, home, env }
    }

    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.into(), value.into()));
    }

    fn driver_log(&self) -> PathBuf {
        self.home.path().join("driver.log")
    }

    /// What tauri-driver, WebKitWebDriver and the app wrote to stderr.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.driver_log()).unwrap_or_default()
    }

    /// The user's settings file, which the settings page writes.
    pub fn config_file(&self) -> PathBuf {
        self.home.path().join("config/rekey/config.toml")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.home.path().join("rekey")
    }

    /// A command with this desktop's environment and none of the caller's `REKEY_*`.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("REKEY_") && !k.starts_with("REKEY_TEST")) {
            c.env_remove(k);
        }
        c.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        c
    }

    /// Launches the app again, the way the system does when a `rekey://` link is opened.
    pub fn launch(&self, args: &[&str]) -> std::process::Output {
        self.command(app_binary())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("the app starts")
    }

    /// Starts the app under tauri-driver and opens a WebDriver session on its window.
    pub fn open_app(&self, args: &[&str]) -> Window {
        self.wait_until_no_app_runs();
        let port = free_port();
        let native = free_port();
        let driver = self
            .command(tauri_driver())
            .args(["--port", &port.to_string(), "--native-port", &native.to_string()])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.driver_log()).unwrap())
            .spawn()
            .expect("tauri-driver runs (scripts/setup-debian installs it)");
        let caps = json!({"tauri:options": {"application": app_binary(), "args": args}});
        Window(WebDriver::open(driver, port, caps, || self.log()))
    }
}

impl Desktop {
    /// Waits (up to 10 s) until no instance of the app holds its single-instance name on this
    /// test's bus. A window's session ends before its process has gone: an app started in
    /// that moment finds the old one still on the bus, hands it its arguments, and the old
    /// one leaves without answering (seen once in a CI run: "failed to forward arguments to
    /// the running instance: NoReply").
    fn wait_until_no_app_runs(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            let answer = self
                .command("dbus-send")
                .args([
                    "--session",
                    "--print-reply",
                    "--dest=org.freedesktop.DBus",
                    "/org/freedesktop/DBus",
                    "org.freedesktop.DBus.NameHasOwner",
                    &format!("string:{SINGLE_INSTANCE_NAME}"),
                ])
                .output();
            match answer {
                Ok(out) if String::from_utf8_lossy(&out.stdout).contains("boolean true") => {
                    std::thread::sleep(std::time::Duration::from_millis(50))
                }
                _ => return,
            }
        }
    }
}

/// The D-Bus name the single-instance plugin holds: the identifier in tauri.conf.json.
const SINGLE_INSTANCE_NAME: &str = "dev.rekey.desktop.SingleInstance";

impl Drop for Desktop {
    fn drop(&mut self) {
        let _ = self.bus.kill();
        let _ = self.xvfb.kill();
        let _ = self.bus.wait();
        let _ = self.xvfb.wait();
    }
}

fn read_line(out: impl Read, what: &str) -> String {
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line).unwrap();
    assert!(!line.trim().is_empty(), "no {what}");
    line
}

/// The app binary cargo built for these tests.
pub fn app_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rekey"))
}

fn tauri_driver() -> PathBuf {
    let in_cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))
        .map(|d| d.join("bin/tauri-driver"));
    match in_cargo_home {
        Some(p) if p.exists() => p,
        _ => PathBuf::from("tauri-driver"),
    }
}

/// The app's window, through WebDriver.
pub struct Window(WebDriver);

impl std::ops::Deref for Window {
    type Target = WebDriver;
    fn deref(&self) -> &WebDriver {
        &self.0
    }
}

impl Window {
    /// The id of the page shown.
    pub fn page(&self) -> String {
        self.js(
            "const p = [...document.querySelectorAll('section.page')].find(s => !s.hidden); return p ? p.id : '';",
            json!([]),
        )
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    pub fn wait_page(&self, id: &str) {
        self.wait_until(&format!("the page {id}"), || self.page() == id);
    }

    /// Saves a screenshot of the window as `target/screenshots/<name>.png`, the tests' artifact.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("target/screenshots/{name}.png"));
        self.0.screenshot(&path);
        path
    }
}
