//! A small W3C WebDriver client for the end-to-end tests: the app's window through
//! tauri-driver, the landing page through chromedriver. Waits fail with what the page shows.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::blocking::Client;
use reqwest::Method;
use serde_json::{json, Value};

/// How long a wait lasts before the test fails.
const PATIENCE: Duration = Duration::from_secs(15);

/// One WebDriver session and the driver process behind it; both end when dropped.
pub struct WebDriver {
    driver: Child,
    http: Client,
    session: String,
}

impl WebDriver {
    /// Waits for the driver (already started, listening on `port`) and opens a session with
    /// `capabilities` (the `alwaysMatch` object). On failure, `log()` says what the driver saw.
    pub fn open(mut driver: Child, port: u16, capabilities: Value, log: impl Fn() -> String) -> WebDriver {
        let http = Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while http.get(format!("{base}/status")).send().is_err() {
            if Instant::now() > deadline {
                let _ = driver.kill();
                panic!("the WebDriver server did not start: {}", log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let answer: Value = http
            .post(format!("{base}/session"))
            .json(&json!({"capabilities": {"alwaysMatch": capabilities}}))
            .send()
            .and_then(|r| r.json())
            .unwrap_or_else(|e| panic!("no WebDriver session ({e}): {}", log()));
        let Some(id) = answer["value"]["sessionId"].as_str() else {
            let _ = driver.kill();
            panic!("no WebDriver session: {answer}: {}", log());
        };
        WebDriver {
            session: format!("{base}/session/{id}"),
            driver,
            http,
        }
    }

    fn call(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.session));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let answer: Value = req.send().and_then(|r| r.json()).expect("WebDriver answers");
        answer["value"].clone()
    }

    fn post(&self, path: &str, body: Value) -> Value {
        self.call(Method::POST, path, Some(body))
    }

    /// Loads `url`.
    pub fn go(&self, url: &str) {
        self.post("/url", json!({ "url": url }));
    }

    /// Runs `script` in the page (`arguments[i]` are `args`) and returns its value.
    pub fn js(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": args}))
    }

    fn element_id(value: &Value) -> Option<String> {
        value.as_object()?.values().next()?.as_str().map(str::to_string)
    }

    fn find(&self, css: &str) -> String {
        let found = self.post("/element", json!({"using": "css selector", "value": css}));
        Self::element_id(&found).unwrap_or_else(|| panic!("no element {css}: {found}"))
    }

    /// Types into a field as a person would: real key events, after clearing it.
    pub fn type_into(&self, css: &str, text: &str) {
        self.wait_visible(css);
        let id = self.find(css);
        self.post(&format!("/element/{id}/clear"), json!({}));
        self.post(&format!("/element/{id}/value"), json!({ "text": text }));
    }

    /// Clicks an element once it is shown, enabled and still: the driver aims at the point
    /// where the element is, so an element that a late change on the page is still moving
    /// (a hint appearing above it) would be missed, as a person's click would be.
    pub fn click(&self, css: &str) {
        self.wait_visible(css);
        self.wait_until(&format!("{css} to be enabled and still"), || self.is_still(css));
        let id = self.find(css);
        self.post(&format!("/element/{id}/click"), json!({}));
    }

    /// Whether `css` is enabled and in the same place over two painted frames.
    fn is_still(&self, css: &str) -> bool {
        let script = "const [css, done] = [arguments[0], arguments[arguments.length - 1]];
            const e = document.querySelector(css);
            if (!e || e.disabled) { done(false); return; }
            const at = () => JSON.stringify(e.getBoundingClientRect());
            const before = at();
            requestAnimationFrame(() => requestAnimationFrame(() => done(at() === before)));";
        self.post("/execute/async", json!({"script": script, "args": [css]})) == json!(true)
    }

    /// Where `css` is in the page (not the viewport, so scrolling does not count):
    /// `[x, y, width, height]` of its box.
    pub fn rect(&self, css: &str) -> Vec<f64> {
        let r = self.js(
            "const r = document.querySelector(arguments[0]).getBoundingClientRect(); \
             return [r.x + scrollX, r.y + scrollY, r.width, r.height];",
            json!([css]),
        );
        r.as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default()
    }

    /// Presses keys on whatever has focus, as a keyboard-only user does
    /// (`"\u{E004}"` is Tab, `"\u{E007}"` Enter).
    pub fn press(&self, keys: &str) {
        let active = self.call(Method::GET, "/element/active", None);
        let id = Self::element_id(&active).expect("something has focus");
        self.post(&format!("/element/{id}/value"), json!({ "text": keys }));
    }

    /// The id of the element with focus ("" for none).
    pub fn focused(&self) -> String {
        self.string(
            "return document.activeElement ? document.activeElement.id : ''",
            json!([]),
        )
    }

    fn string(&self, script: &str, args: Value) -> String {
        self.js(script, args).as_str().unwrap_or_default().to_string()
    }

    /// The visible text of `css` ("" when absent or hidden).
    pub fn text(&self, css: &str) -> String {
        self.string(
            "const e = document.querySelector(arguments[0]); return e && !e.closest('[hidden]') ? e.innerText : '';",
            json!([css]),
        )
    }

    /// Waits for `ok`, failing with the page's text.
    pub fn wait_until(&self, what: &str, mut ok: impl FnMut() -> bool) {
        let deadline = Instant::now() + PATIENCE;
        while !ok() {
            if Instant::now() > deadline {
                let page = self.js("return document.body.innerText", json!([]));
                panic!("timed out waiting for {what}; the page shows: {page}");
            }
            std::thread::sleep(Duration::from_millis(30));
        }
    }

    /// Waits until `css` is in the page and shown.
    pub fn wait_visible(&self, css: &str) {
        self.wait_until(&format!("{css} to show"), || {
            self.js(
                "const e = document.querySelector(arguments[0]); return !!e && !e.closest('[hidden]') && e.offsetParent !== null;",
                json!([css]),
            ) == json!(true)
        });
    }

    /// Waits until `css` says `needle`.
    pub fn wait_text(&self, css: &str, needle: &str) {
        self.wait_until(&format!("{css} to say '{needle}'"), || self.text(css).contains(needle));
    }

    /// Saves a PNG of the viewport to `path`, once the page has painted its latest change
    /// (WebKit otherwise hands back the previous frame).
    pub fn screenshot(&self, path: &Path) {
        self.post(
            "/execute/async",
            json!({
                "script": "const done = arguments[arguments.length - 1]; requestAnimationFrame(() => requestAnimationFrame(() => done(true)));",
                "args": [],
            }),
        );
        std::thread::sleep(Duration::from_millis(150));
        let b64 = self.call(Method::GET, "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().expect("a screenshot"))
            .unwrap();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for WebDriver {
    fn drop(&mut self) {
        // Ending the session closes the browser (or the app); then the driver goes.
        let _ = self.http.delete(&self.session).send();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
