//! Hostile input over the real HTTP server: malformed, oversized and oddly framed bodies,
//! arbitrary bytes and JSON on every endpoint (property tests), and Unicode tricks in
//! addresses, with the real SMTP capture server checking where mail goes.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use common::server::{Server, Setup};
use proptest::prelude::*;
use proptest::test_runner::{Config as Cases, TestCaseError, TestRunner};
use rekey_testkit::SmtpCapture;
use reqwest::blocking::{Client, RequestBuilder};
use reqwest::StatusCode;
use serde_json::{json, Value};

const PASSWORD: &str = "quiet river under the old mill";

/// The endpoints that take a JSON body, and the status each answers when the body is good.
const ENDPOINTS: [(&str, u16); 8] = [
    ("/users/password/forgot", 202),
    ("/users/password/reset", 204),
    ("/sessions", 200),
    ("/users", 202),
    ("/users/password/inspect", 200),
    ("/users/password/strength", 200),
    ("/users/verify", 201),
    ("/users/verify/inspect", 200),
];

struct Scene {
    smtp: SmtpCapture,
    _dir: tempfile::TempDir,
    server: Server,
    http: Client,
}

impl Scene {
    /// A server with the rate limits off, so every request reaches the code under test.
    fn new() -> Scene {
        let smtp = SmtpCapture::start();
        let dir = tempfile::tempdir().unwrap();
        let setup = Setup::default()
            .with("REKEY_LIMIT_CLIENT", "off")
            .with("REKEY_LIMIT_ADDRESS", "off")
            .with("REKEY_LIMIT_REGISTER_CLIENT", "off")
            .with("REKEY_LIMIT_SIGNIN_CLIENT", "off")
            .with("REKEY_LIMIT_SIGNIN_SPRAY", "off")
            .with("REKEY_LIMIT_SIGNIN_ACCOUNT", "off")
            .with("REKEY_REQUEST_TIMEOUT", "3s");
        let server = Server::start(&dir.path().join("data"), Some(&smtp), setup);
        let http = Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
        Scene {
            smtp,
            _dir: dir,
            server,
            http,
        }
    }

    fn post(&self, path: &str) -> RequestBuilder {
        self.http.post(self.server.url(path))
    }

    fn json(&self, path: &str, body: Value) -> (StatusCode, Value) {
        answer(self.post(path).json(&body))
    }

    /// Posts `body` as it is, with the given headers.
    fn bytes(&self, path: &str, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> (StatusCode, Value) {
        let mut r = self.post(path);
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        answer(r.body(body.into()))
    }

    fn register(&self, email: &str) -> (StatusCode, Value) {
        self.json("/users", json!({"email": email, "password": PASSWORD}))
    }

    fn sign_in(&self, email: &str) -> (StatusCode, Value) {
        self.json("/sessions", json!({"email": email, "password": PASSWORD}))
    }

    fn forgot(&self, email: &str) -> (StatusCode, Value) {
        self.json("/users/password/forgot", json!({ "email": email }))
    }

    /// The server is still up and doing its job.
    fn still_serving(&self) {
        let health = self.http.get(self.server.url("/healthz")).send().unwrap();
        assert_eq!(health.status(), StatusCode::OK, "{}", self.server.log_text());
        let (status, body) = self.json("/users/password/strength", json!({"password": "x"}));
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

fn answer(request: RequestBuilder) -> (StatusCode, Value) {
    let r = request.send().unwrap();
    let status = r.status();
    let text = r.text().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A refusal as every endpoint must give it: JSON with a snake_case code and words.
fn is_refusal(body: &Value) -> bool {
    let code_ok = body["code"]
        .as_str()
        .is_some_and(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
    let message_ok = body["message"].as_str().is_some_and(|m| m.len() > 10);
    code_ok && message_ok && body.as_object().is_some_and(|o| o.len() == 2)
}

fn expect(got: (StatusCode, Value), status: u16, code: &str, what: &str) {
    assert_eq!(got.0.as_u16(), status, "{what}: {}", got.1);
    assert!(is_refusal(&got.1), "{what}: {}", got.1);
    assert_eq!(got.1["code"], code, "{what}: {}", got.1);
}

/// Sends raw bytes on a fresh connection (half-closing it if `close`) and reads the answer:
/// the status and the JSON body.
fn raw_http(port: u16, request: &[u8], close: bool) -> (u16, Value) {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    // The server may answer and stop reading before all of it is written.
    let _ = c.write_all(request);
    if close {
        let _ = c.shutdown(Shutdown::Write);
    }
    let mut got = Vec::new();
    let _ = c.read_to_end(&mut got);
    let text = String::from_utf8_lossy(&got);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn head(path: &str, extra: &str) -> String {
    format!("POST {path} HTTP/1.1\r\nHost: rekey\r\nContent-Type: application/json\r\nConnection: close\r\n{extra}\r\n")
}

#[test]
fn malformed_bodies_get_their_status_and_json_and_the_server_carries_on() {
    let s = Scene::new();
    let json_type = [("content-type", "application/json")];
    let deep_array = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let deep_in_field = format!(r#"{{"email": {}{}}}"#, "[".repeat(10_000), "]".repeat(10_000));
    let deep_object = format!("{}1{}", r#"{"a":"#.repeat(10_000), "}".repeat(10_000));
    let invalid: Vec<(&str, Vec<u8>)> = vec![
        ("empty", b"".to_vec()),
        ("whitespace", b"  \n ".to_vec()),
        ("truncated", br#"{"email": "ada@exam"#.to_vec()),
        ("truncated object", br#"{"email": "ada@example.com""#.to_vec()),
        ("trailing garbage", br#"{"email": "ada@example.com"} x"#.to_vec()),
        ("two objects", br#"{"email": "a@example.com"}{"email": "b@example.com"}"#.to_vec()),
        ("a list", br#"["ada@example.com"]"#.to_vec()),
        ("null", b"null".to_vec()),
        ("a string", br#""ada@example.com""#.to_vec()),
        ("a number for text", br#"{"email": 5, "password": 5, "token": 5, "new_password": 5}"#.to_vec()),
        ("a list for text", br#"{"email": ["a"], "password": ["b"], "token": ["c"], "new_password": ["d"]}"#.to_vec()),
        ("an object for text", br#"{"email": {}, "password": {}, "token": {}, "new_password": {}}"#.to_vec()),
        ("true for text", br#"{"email": true, "password": true, "token": true, "new_password": true}"#.to_vec()),
        ("10k-deep arrays", deep_array.into_bytes()),
        ("10k-deep arrays in a field", deep_in_field.into_bytes()),
        ("10k-deep objects", deep_object.into_bytes()),
        ("huge exponent", br#"{"email": 1e999999999}"#.to_vec()),
        ("huge integer", format!(r#"{{"email": {}}}"#, "9".repeat(5000)).into_bytes()),
        ("raw NUL byte", b"{\"email\": \"ada\0@example.com\"}".to_vec()),
        ("NUL before the object", b"\0{\"email\": \"ada@example.com\"}".to_vec()),
        ("invalid UTF-8 in a string", b"{\"email\": \"\xff\xfe@example.com\", \"password\": \"\xc3\x28\"}".to_vec()),
        ("invalid UTF-8 outside", b"\xef\xbb\xbf{\"email\": \"ada@example.com\"}".to_vec()),
        ("lone surrogate escape", br#"{"email": "\ud800@example.com", "password": "\udfff"}"#.to_vec()),
        ("bad escape", br#"{"email": "\x41@example.com"}"#.to_vec()),
        ("single quotes", b"{'email': 'ada@example.com'}".to_vec()),
        ("comment", b"{/* hi */ \"email\": \"ada@example.com\"}".to_vec()),
        (
            "duplicate keys",
            br#"{"email": "ada@example.com", "email": "eve@example.com", "password": "p", "password": "q", "token": "t", "token": "u", "new_password": "n", "new_password": "m"}"#
                .to_vec(),
        ),
    ];
    for (path, _) in ENDPOINTS {
        for (name, body) in &invalid {
            let got = s.bytes(path, &json_type, body.clone());
            expect(got, 400, "body_invalid", &format!("{path}, {name}"));
        }
        // Wrong or missing content type.
        for ct in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
            Some("application/json-patch+json"),
            Some("application/jsonx"),
            Some("json"),
            Some(""),
        ] {
            let headers: Vec<(&str, &str)> = ct.map(|c| ("content-type", c)).into_iter().collect();
            let got = s.bytes(path, &headers, r#"{"email": "ada@example.com"}"#);
            expect(got, 415, "body_not_json", &format!("{path}, content type {ct:?}"));
        }
        // Compressed: not decoded, and said so.
        let gzip = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xabVJ\xcdM\xcc\xccQ\xb2RPJLIt\x00\x00\x00\x00";
        for enc in ["gzip", "deflate", "br", "GZIP", "identity, gzip"] {
            let got = s.bytes(
                path,
                &[("content-type", "application/json"), ("content-encoding", enc)],
                gzip.to_vec(),
            );
            expect(got, 415, "body_encoding_unsupported", &format!("{path}, {enc}"));
        }
        // Over the 64 KiB limit, with a Content-Length, and chunked with none.
        let big = format!(r#"{{"email": "{}"}}"#, "a".repeat(64 * 1024));
        expect(s.bytes(path, &json_type, big), 413, "body_too_large", path);
        let mut chunked = head(path, "Transfer-Encoding: chunked\r\n").into_bytes();
        for _ in 0..12 {
            chunked.extend_from_slice(format!("{:x}\r\n{}\r\n", 8192, "a".repeat(8192)).as_bytes());
        }
        chunked.extend_from_slice(b"0\r\n\r\n");
        let (status, body) = raw_http(s.server.port, &chunked, false);
        expect(
            (StatusCode::from_u16(status).unwrap(), body),
            413,
            "body_too_large",
            &format!("{path}, chunked"),
        );
        // Content-Length larger than what comes, then the client stops sending.
        let short = format!("{}{}", head(path, "Content-Length: 100\r\n"), r#"{"email": "ada@"#);
        let (status, body) = raw_http(s.server.port, short.as_bytes(), true);
        expect(
            (StatusCode::from_u16(status).unwrap(), body),
            400,
            "body_unreadable",
            &format!("{path}, short body"),
        );
    }
    // Content-Length larger than the body, and the client waits: cut off by the request
    // deadline, with JSON, well within the time a stuck connection could hold.
    let started = Instant::now();
    let stalled = format!("{}{}", head("/users/password/forgot", "Content-Length: 100\r\n"), "{");
    let (status, body) = raw_http(s.server.port, stalled.as_bytes(), false);
    assert!(started.elapsed() < Duration::from_secs(12), "{:?}", started.elapsed());
    expect(
        (StatusCode::from_u16(status).unwrap(), body),
        503,
        "request_timeout",
        "stalled body",
    );
    // A NUL escaped inside a proper string reaches the address check, which refuses it.
    expect(
        s.forgot("ada\u{0}@example.com"),
        400,
        "email_invalid",
        "escaped NUL in the address",
    );
    // `charset` and case in the content type are fine.
    let (status, body) = s.bytes(
        "/users/password/forgot",
        &[("content-type", "Application/JSON; charset=utf-8")],
        r#"{"email": "ada@example.com"}"#,
    );
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    s.still_serving();
}

/// Arbitrary JSON, biased towards the fields the endpoints read.
fn json_value() -> impl Strategy<Value = Value> {
    let text = prop_oneof![
        Just("ada@example.com".to_string()),
        Just(PASSWORD.to_string()),
        Just("ABCD-EFGH".to_string()),
        Just("eyJhbGciOiJub25lIn0.e30.".to_string()),
        "[a-z]{1,12}@[a-z]{1,8}\\.(com|test)",
        any::<String>(),
        "\\PC{0,40}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        text.prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(
                prop::sample::select(vec!["email", "password", "new_password", "token", "code", "x", ""])
                    .prop_map(str::to_string),
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An object with each field an endpoint reads present or not, of any type.
fn json_body() -> impl Strategy<Value = Value> {
    let field = prop_oneof![3 => json_value().prop_map(Some), 1 => Just(None)];
    (
        field.clone(),
        field.clone(),
        field.clone(),
        field.clone(),
        field,
        any::<bool>(),
    )
        .prop_map(|(email, password, new_password, token, code, extra)| {
            let mut o = serde_json::Map::new();
            for (k, v) in [
                ("email", email),
                ("password", password),
                ("new_password", new_password),
                ("token", token),
                ("code", code),
            ] {
                if let Some(v) = v {
                    o.insert(k.into(), v);
                }
            }
            if extra {
                o.insert("unexpected".into(), json!([1, {"a": null}]));
            }
            Value::Object(o)
        })
}

/// Every answer: below 500; the endpoint's success status, or a JSON `{code, message}`.
fn judge(path: &str, ok: u16, got: (StatusCode, Value)) -> Result<(), TestCaseError> {
    let (status, body) = got;
    prop_assert!(status.as_u16() < 500, "{} answered {}: {}", path, status, body);
    if status.as_u16() != ok {
        prop_assert!(status.is_client_error(), "{} answered {}: {}", path, status, body);
        prop_assert!(is_refusal(&body), "{} answered {} with {}", path, status, body);
    }
    Ok(())
}

#[test]
fn any_bytes_or_json_on_any_endpoint_gets_a_json_answer_below_500() {
    let s = Scene::new();
    s.server.create_account(&s.smtp, "ada@example.com", PASSWORD);
    let endpoint = || prop::sample::select(ENDPOINTS.to_vec());
    let config = |cases| Cases {
        cases,
        failure_persistence: None,
        ..Cases::default()
    };
    let started = Instant::now();

    let mut runner = TestRunner::new(config(300));
    runner
        .run(
            &(endpoint(), prop::collection::vec(any::<u8>(), 0..400)),
            |((path, ok), bytes)| judge(path, ok, s.bytes(path, &[("content-type", "application/json")], bytes)),
        )
        .unwrap();

    let mut runner = TestRunner::new(config(600));
    runner
        .run(&(endpoint(), json_body()), |((path, ok), body)| {
            let got = s.json(path, body.clone());
            judge(path, ok, got)
        })
        .unwrap();

    // Any JSON text at all (not only objects), and the same bodies with a Bearer header.
    let mut runner = TestRunner::new(config(300));
    runner
        .run(
            &(endpoint(), json_value(), "\\PC{0,60}"),
            |((path, ok), body, bearer)| {
                let mut r = s.post(path).json(&body);
                if let Ok(v) = reqwest::header::HeaderValue::from_str(&format!("Bearer {bearer}")) {
                    r = r.header("authorization", v);
                }
                judge(path, ok, answer(r))
            },
        )
        .unwrap();
    eprintln!("1200 hostile requests in {:?}", started.elapsed());
    s.still_serving();
    // Ada's account is as it was.
    assert_eq!(s.sign_in("ada@example.com").0, StatusCode::OK);
}

#[test]
fn unicode_tricks_in_addresses_never_misdirect_mail() {
    let s = Scene::new();
    // Registration answers every address alike, so what it did shows in the mail: a new
    // address gets the link that finishes it (to the address as stored); one that has an
    // account gets a notice, to the account's address.
    let next_mail = |email: &str| {
        let before = s.smtp.messages().len();
        let (status, body) = s.register(email);
        assert_eq!(status, StatusCode::ACCEPTED, "{email}: {body}");
        s.smtp
            .wait_for_messages(before + 1, Duration::from_secs(15))
            .remove(before)
    };
    let created = |email: &str| {
        let mail = next_mail(email);
        assert!(
            mail.header("Subject").unwrap().starts_with("Finish creating"),
            "{email}: {mail:?}"
        );
        let (status, body) = s.json(
            "/users/verify",
            json!({"token": mail.verify_token(), "password": PASSWORD}),
        );
        assert_eq!(status, StatusCode::CREATED, "{email}: {body}");
        assert_eq!(mail.rcpt_to, vec![body["email"].as_str().unwrap().to_string()]);
        body["email"].as_str().unwrap().to_string()
    };
    let taken = |email: &str| {
        let mail = next_mail(email);
        let subject = mail.header("Subject").unwrap();
        assert!(subject.starts_with("You already have"), "{email}: {subject}");
    };
    // The account id a sign-in with `email` leads to.
    let account_of = |email: &str| -> Value {
        let (status, body) = s.sign_in(email);
        assert_eq!(status, StatusCode::OK, "{email}: {body}");
        let me: Value = s
            .http
            .get(s.server.url("/sessions/current"))
            .bearer_auth(body["token"].as_str().unwrap())
            .send()
            .unwrap()
            .json()
            .unwrap();
        me["id"].clone()
    };

    // Case: one account, however it is typed; a domain typed in fullwidth is the same domain.
    assert_eq!(created("Ada@Example.COM"), "ada@example.com");
    for same in [
        "ada@example.com",
        "ADA@EXAMPLE.COM",
        " ada@example.com\t",
        "ada@ＥＸＡＭＰＬＥ.com",
    ] {
        taken(same);
    }
    let ada = account_of("ada@example.com");
    assert_eq!(account_of("aDa@eXample.COM"), ada);

    // NFC and NFD: one account.
    assert_eq!(created("re\u{301}my@example.com"), "r\u{e9}my@example.com");
    taken("r\u{e9}my@example.com");
    taken("RE\u{301}MY@example.com");

    // Confusables are other addresses: Cyrillic а, fullwidth ａ in the local part.
    let cyrillic = created("\u{430}da@example.com");
    assert_eq!(cyrillic, "\u{430}da@example.com");
    let fullwidth = created("ａda@example.com");
    assert_eq!(fullwidth, "ａda@example.com");

    // ß stays ß (so STRASSE is someone else); ẞ lowercases to ß; İ becomes i + U+0307.
    assert_eq!(created("straße@example.com"), "straße@example.com");
    taken("STRAẞE@example.com");
    expect(s.sign_in("strasse@example.com"), 401, "bad_credentials", "ss is not ß");
    assert_eq!(created("İnci@example.com"), "i\u{307}nci@example.com");
    expect(s.sign_in("inci@example.com"), 401, "bad_credentials", "i is not İ");

    // IDN: kept as punycode, so the Unicode and xn-- forms are one account.
    let idn = created("用户@例子.广告");
    assert_eq!(idn, "用户@xn--fsqu00a.xn--4rr70v");
    taken("用户@XN--FSQU00A.xn--4rr70v");
    let idn_account = account_of("用户@例子。广告");
    assert_eq!(account_of("用户@xn--fsqu00a.xn--4rr70v"), idn_account);
    assert_ne!(idn_account, ada);
    // The confusable accounts are separate accounts.
    assert_ne!(account_of("\u{430}da@example.com"), ada);
    assert_ne!(account_of("ａda@example.com"), ada);

    // Invisible and bidi characters are refused everywhere, before anything is looked up.
    for bad in [
        "ada\u{200b}@example.com",
        "a\u{200d}da@example.com",
        "ada@exa\u{200c}mple.com",
        "\u{202e}ada@example.com",
        "ada\u{200f}@example.com",
        "ada@example.com\u{feff}",
        "ada@exa\u{ad}mple.com",
        "ada\u{2066}@example.com",
        "ada\u{0}@example.com",
        "ada\u{1b}@example.com",
    ] {
        expect(s.register(bad), 400, "email_invalid", &format!("register {bad:?}"));
        expect(s.forgot(bad), 400, "email_invalid", &format!("forgot {bad:?}"));
        expect(s.sign_in(bad), 400, "email_invalid", &format!("sign in {bad:?}"));
    }

    // Well-formed addresses without an account get the same answer and no mail (asked
    // first: requests are handled in order, so their mail would come before the others).
    for stranger in [
        "strasse@example.com",
        "inci@example.com",
        "ada@exаmple.com",
        "用户@xn--fsqu00a.com",
    ] {
        assert_eq!(s.forgot(stranger).0, StatusCode::ACCEPTED, "{stranger}");
    }
    // Then each request reaches exactly the registered address it names.
    let asks = [
        ("ADA@example.com", "ada@example.com"),
        ("\u{430}da@example.com", cyrillic.as_str()),
        ("ａda@example.com", fullwidth.as_str()),
        ("用户@例子.广告", idn.as_str()),
        ("Re\u{301}my@Example.com", "r\u{e9}my@example.com"),
    ];
    for (typed, _) in asks {
        assert_eq!(s.forgot(typed).0, StatusCode::ACCEPTED, "{typed}");
    }
    let resets = || -> Vec<rekey_testkit::CapturedMail> {
        s.smtp
            .messages()
            .into_iter()
            .filter(|m| m.header("Subject") == Some("Reset your Rekey password"))
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while resets().len() < asks.len() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    let mails = resets();
    let mut got: Vec<String> = mails.iter().flat_map(|m| m.rcpt_to.clone()).collect();
    got.sort();
    let mut want: Vec<String> = asks.iter().map(|(_, to)| to.to_string()).collect();
    want.sort();
    assert_eq!(got, want, "one reset mail to each registered address, nothing else");
    for m in &mails {
        assert_eq!(m.rcpt_to.len(), 1);
        assert!(m.header("To").is_some_and(|to| !to.is_empty()));
    }
    // The Latin account's link is in the Latin account's mail only, and it resets that one.
    let latin = mails.iter().find(|m| m.rcpt_to == ["ada@example.com"]).unwrap();
    let token = latin.reset_token();
    let (status, target) = s.json("/users/password/inspect", json!({ "token": token }));
    assert_eq!(status, StatusCode::OK, "{target}");
    assert_eq!(target["email"], "ada@example.com");
    s.still_serving();
}
