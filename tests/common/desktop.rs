//! The real app window, headless: a private Xvfb display, a private D-Bus session bus (for the
//! single-instance plugin), a private HOME (the `rekey://` scheme gets registered there),
//! and `tauri-driver` + WebKitWebDriver speaking W3C WebDriver to it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use rekey_testkit::free_port;
use serde_json::{json, Value};

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
        let port = free_port();
        let native = free_port();
        let driver = self
            .command(tauri_driver())
            .args(["--port", &port.to_string(), "--native-port", &native.to_string()])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.driver_log()).unwrap())
            .spawn()
            .expect("tauri-driver runs (scripts/setup-debian installs it)");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while http.get(format!("{base}/status")).send().is_err() {
            assert!(Instant::now() < deadline, "tauri-driver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let caps = json!({"capabilities": {"alwaysMatch": {"tauri:options": {
            "application": app_binary(),
            "args": args,
        }}}});
        let answer: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .and_then(|r| r.json())
            .unwrap_or_else(|e| panic!("no WebDriver session ({e}); the driver and app said: {}", self.log()));
        let id = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {answer}"))
            .to_string();
        Window {
            driver,
            http,
            url: format!("{base}/session/{id}"),
        }
    }
}

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
pub struct Window {
    driver: Child,
    http: reqwest::blocking::Client,
    url: String,
}

impl Window {
    fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let answer: Value = req.send().and_then(|r| r.json()).expect("WebDriver answers");
        answer["value"].clone()
    }

    /// Runs `script` in the page (`arguments[i]` are `args`) and returns its value.
    pub fn js(&self, script: &str, args: Value) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
    }

    fn element(&self, css: &str) -> Option<String> {
        let v = self.call(
            reqwest::Method::POST,
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        v.as_object()?.values().next()?.as_str().map(str::to_string)
    }

    /// Waits until `css` is in the page and shown, up to 15 s.
    pub fn wait_visible(&self, css: &str) {
        self.wait_until(&format!("{css} visible"), || {
            self.js(
                "const e = document.querySelector(arguments[0]); return !!e && !e.closest('[hidden]') && e.offsetParent !== null;",
                json!([css]),
            ) == json!(true)
        });
    }

    pub fn wait_until(&self, what: &str, mut ok: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !ok() {
            if Instant::now() > deadline {
                let page = self.js("return document.body.innerText", json!([]));
                panic!("timed out waiting for {what}; the window shows: {page}");
            }
            std::thread::sleep(Duration::from_millis(30));
        }
    }

    /// Types into a field as a person would (key events, so the page's handlers run).
    pub fn type_into(&self, css: &str, text: &str) {
        self.wait_visible(css);
        let id = self.element(css).unwrap();
        self.call(reqwest::Method::POST, &format!("/element/{id}/clear"), Some(json!({})));
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        );
    }

    /// Presses keys on whatever has focus, as a keyboard-only user does ("\u{E004}" is Tab,
    /// "\u{E007}" Enter).
    pub fn press(&self, keys: &str) {
        let active = self.call(reqwest::Method::GET, "/element/active", None);
        let id = active
            .as_object()
            .unwrap()
            .values()
            .next()
            .unwrap()
            .as_str()
            .unwrap()
            .to_string();
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({ "text": keys })),
        );
    }

    /// The id of the element with focus.
    pub fn focused(&self) -> String {
        self.js(
            "return document.activeElement ? document.activeElement.id : ''",
            json!([]),
        )
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    pub fn click(&self, css: &str) {
        self.wait_visible(css);
        let id = self.element(css).unwrap();
        self.call(reqwest::Method::POST, &format!("/element/{id}/click"), Some(json!({})));
    }

    /// The visible text of `css` ("" when absent).
    pub fn text(&self, css: &str) -> String {
        self.js(
            "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';",
            json!([css]),
        )
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    pub fn wait_text(&self, css: &str, needle: &str) {
        self.wait_until(&format!("{css} to say '{needle}'"), || self.text(css).contains(needle));
    }

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
        // WebKit hands back the last painted frame: let the page paint what it just changed.
        self.call(
            reqwest::Method::POST,
            "/execute/async",
            Some(json!({
                "script": "const done = arguments[arguments.length - 1]; requestAnimationFrame(() => requestAnimationFrame(() => done(true)));",
                "args": [],
            })),
        );
        std::thread::sleep(Duration::from_millis(150));
        let b64 = self.call(reqwest::Method::GET, "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().expect("a screenshot"))
            .unwrap();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        // Ending the session closes the app; then the driver goes.
        let _ = self.http.delete(&self.url).send();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
