//! `rekeyd serve` end to end: the real binary on a loopback port, the real SMTP capture
//! server, an HTTP client doing what a user's client would.

mod common;

use std::time::Duration;

use common::server::{gauge, Server, Setup};
use rekey_testkit::{CapturedMail, SmtpCapture};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

const PASSWORD: &str = "quiet river under the old mill";
const NEW_PASSWORD: &str = "a brand new passphrase for zoe";
const RESET: &str = "Reset your Rekey password";

struct Scene {
    smtp: SmtpCapture,
    _dir: tempfile::TempDir,
    server: Server,
    http: Client,
}

impl Scene {
    fn new(setup: Setup) -> Scene {
        let smtp = SmtpCapture::start();
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start(&dir.path().join("data"), Some(&smtp), setup);
        Scene {
            smtp,
            _dir: dir,
            server,
            http: Client::new(),
        }
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        answer(self.http.post(self.server.url(path)).json(&body)).await
    }

    async fn post_bearer(&self, path: &str, bearer: &str, body: Value) -> (StatusCode, Value) {
        answer(self.http.post(self.server.url(path)).bearer_auth(bearer).json(&body)).await
    }

    /// Creates the account as its owner would: asks for it, then opens the mailed link.
    async fn register(&self, email: &str) {
        tokio::task::block_in_place(|| self.server.create_account(&self.smtp, email, PASSWORD));
    }

    async fn sign_in(&self, email: &str, password: &str) -> (StatusCode, Value) {
        self.post("/sessions", json!({"email": email, "password": password}))
            .await
    }

    /// Asks for a reset and returns the mail that arrives for it (the `n`th reset mail to
    /// that address).
    async fn forgot(&self, email: &str, n: usize) -> CapturedMail {
        let (status, body) = self.post("/users/password/forgot", json!({ "email": email })).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        let smtp = &self.smtp;
        let to = email.to_lowercase();
        let mails = tokio::task::block_in_place(|| smtp.wait_for_mail(&to, RESET, n, Duration::from_secs(15)));
        mails.into_iter().nth(n - 1).unwrap()
    }
}

/// Sends a request and returns its status and JSON body (null when it has none).
async fn answer(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let r = request.send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_whole_flow_through_the_bearer_header() {
    let s = Scene::new(Setup::default());
    s.register("Zoe@Example.com").await;
    let (status, body) = s.sign_in("zoe@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
    let session = body["token"].as_str().unwrap().to_string();

    let mail = s.forgot("zoe@example.com", 1).await;
    assert_eq!(mail.rcpt_to, vec!["zoe@example.com"]);
    let token = mail.reset_token();
    let (status, body) = s
        .post_bearer("/users/password/reset", &token, json!({ "new_password": NEW_PASSWORD }))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    let (status, body) = s.sign_in("zoe@example.com", PASSWORD).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("bad_credentials"))
    );
    assert_eq!(s.sign_in("zoe@example.com", NEW_PASSWORD).await.0, StatusCode::OK);

    // The old session ended with the reset; the link works once.
    let r = s
        .http
        .get(s.server.url("/sessions/current"))
        .bearer_auth(&session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "session_invalid");
    let (status, body) = s
        .post_bearer(
            "/users/password/reset",
            &token,
            json!({ "new_password": "yet another long passphrase" }),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("token_used"))
    );
    // The "password changed" notice arrived.
    let smtp = &s.smtp;
    let mails = tokio::task::block_in_place(|| {
        smtp.wait_for_mail(
            "zoe@example.com",
            "Your Rekey password was changed",
            1,
            Duration::from_secs(15),
        )
    });
    assert!(
        mails[0].header("Subject").unwrap().contains("changed"),
        "{:?}",
        mails[0].header("Subject")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn reset_through_the_body_token_and_through_the_code_then_sign_out() {
    let s = Scene::new(Setup::default());
    s.register("amy@example.com").await;
    let token = s.forgot("amy@example.com", 1).await.reset_token();
    let (status, body) = s
        .post(
            "/users/password/reset",
            json!({ "token": token, "new_password": NEW_PASSWORD }),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    let code = s.forgot("amy@example.com", 2).await.reset_code();
    let third = "the third passphrase amy chose";
    let (status, body) = s
        .post(
            "/users/password/reset",
            json!({ "email": "AMY@example.com", "code": code.to_lowercase(), "new_password": third }),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = s.sign_in("amy@example.com", third).await;
    assert_eq!(status, StatusCode::OK);

    let session = body["token"].as_str().unwrap();
    let whoami = || {
        s.http
            .get(s.server.url("/sessions/current"))
            .bearer_auth(session)
            .send()
    };
    let me = whoami().await.unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    assert_eq!(me.json::<Value>().await.unwrap()["email"], "amy@example.com");
    let sign_out = || {
        s.http
            .delete(s.server.url("/sessions/current"))
            .bearer_auth(session)
            .send()
    };
    assert_eq!(sign_out().await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_eq!(whoami().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    // Signing out twice is not an error.
    assert_eq!(sign_out().await.unwrap().status(), StatusCode::NO_CONTENT);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_landing_page_shows_the_form_and_never_consumes_the_link() {
    let s = Scene::new(Setup::default());
    s.register("bo@example.com").await;
    let mail = s.forgot("bo@example.com", 1).await;
    let landing = mail.landing_link();
    assert!(landing.starts_with(&s.server.url("/reset#token=")), "{landing}");

    // A mail scanner fetches the link: the fragment never reaches the server.
    for _ in 0..3 {
        let r = s.http.get(&landing).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let h = r.headers().clone();
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert_eq!(h["cache-control"], "no-store");
        let csp = h["content-security-policy"].to_str().unwrap();
        for rule in [
            "default-src 'none'",
            "script-src 'self'",
            "frame-ancestors 'none'",
            "form-action 'none'",
        ] {
            assert!(csp.contains(rule), "{csp}");
        }
        let html = r.text().await.unwrap();
        assert!(html.contains("id=\"reset-form\"") && html.contains("src=\"/reset.js\""));
        assert!(
            !html.contains("<script>") && !html.contains("style="),
            "no inline script or style"
        );
    }
    let script = s.http.get(s.server.url("/reset.js")).send().await.unwrap();
    assert_eq!(script.headers()["content-type"], "text/javascript; charset=utf-8");
    let mut script = script.text().await.unwrap();
    // The helpers it shares with the other landing page.
    script += &s
        .http
        .get(s.server.url("/landing.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    // What the page's script does: read the fragment, ask whose link it is, reset with Bearer.
    let token = landing.split("#token=").nth(1).unwrap();
    assert!(script.contains("/users/password/inspect") && script.contains("Bearer "));
    for _ in 0..2 {
        let (status, target) = s.post("/users/password/inspect", json!({ "token": token })).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(target["email"], "bo@example.com");
    }
    let (status, strength) = s
        .post(
            "/users/password/strength",
            json!({"password": "password123", "email": null}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(strength["acceptable"], false);
    let (status, _) = s
        .post_bearer("/users/password/reset", token, json!({ "new_password": NEW_PASSWORD }))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = s.post("/users/password/inspect", json!({ "token": token })).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("token_used"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn each_refusal_has_its_status_and_code() {
    let s = Scene::new(Setup::default());
    s.register("cy@example.com").await;
    let expect = |got: (StatusCode, Value), status: StatusCode, code: &str| {
        assert_eq!(got.0, status, "{}", got.1);
        assert_eq!(got.1["code"], code, "{}", got.1);
        assert!(got.1["message"].as_str().is_some_and(|m| m.len() > 10), "{}", got.1);
    };
    let bad = StatusCode::BAD_REQUEST;
    expect(
        s.post("/users/password/forgot", json!({"email": "not an address"}))
            .await,
        bad,
        "email_invalid",
    );
    expect(
        s.post("/users/password/forgot", json!({"email": ""})).await,
        bad,
        "email_missing",
    );
    expect(
        s.post("/users/password/forgot", json!({"mail": "cy@example.com"}))
            .await,
        bad,
        "body_invalid",
    );
    // A known address is not refused: the answer is the same as for a new one.
    let (status, taken) = s
        .post("/users", json!({"email": "cy@example.com", "password": PASSWORD}))
        .await;
    let (_, fresh) = s
        .post("/users", json!({"email": "cyan@example.com", "password": PASSWORD}))
        .await;
    assert_eq!((status, &taken), (StatusCode::ACCEPTED, &fresh));
    expect(
        s.post("/users", json!({"email": "dee@example.com", "password": "short"}))
            .await,
        bad,
        "password_too_short",
    );
    expect(
        s.post(
            "/sessions",
            json!({"email": "nobody@example.com", "password": PASSWORD}),
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "bad_credentials",
    );

    let first = s.forgot("cy@example.com", 1).await.reset_token();
    let second = s.forgot("cy@example.com", 2).await.reset_token();
    let reset = |token: String| {
        s.post(
            "/users/password/reset",
            json!({"token": token, "new_password": NEW_PASSWORD}),
        )
    };
    expect(reset(first.clone()).await, bad, "token_replaced");
    expect(reset("not.a.token".into()).await, bad, "token_malformed");
    let mut tampered = second.clone().into_bytes();
    let last = tampered.len() - 2;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    expect(
        reset(String::from_utf8(tampered).unwrap()).await,
        bad,
        "token_bad_signature",
    );
    expect(
        s.post(
            "/users/password/reset",
            json!({"token": second, "new_password": "password"}),
        )
        .await,
        bad,
        "password_too_short",
    );
    expect(
        s.post(
            "/users/password/reset",
            json!({"email": "cy@example.com", "code": "AAAA-AAAA", "new_password": NEW_PASSWORD}),
        )
        .await,
        bad,
        "code_invalid",
    );
    expect(
        s.post("/users/password/reset", json!({"new_password": NEW_PASSWORD}))
            .await,
        bad,
        "proof_missing",
    );
    expect(
        s.post_bearer(
            "/users/password/reset",
            &first,
            json!({"token": "other", "new_password": NEW_PASSWORD}),
        )
        .await,
        bad,
        "proof_ambiguous",
    );

    // Not JSON, wrong route, wrong method: still JSON answers.
    let r = s
        .http
        .post(s.server.url("/users/password/forgot"))
        .body("email=cy")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "body_not_json");
    let r = s.http.get(s.server.url("/nowhere")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "not_found");
    let r = s.http.get(s.server.url("/users/password/forgot")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "method_not_allowed");
}

/// Status, headers (but `Date`) and body of one forgot request, for comparing answers.
async fn forgot_answer(s: &Scene, email: &str) -> (StatusCode, Vec<(String, String)>, String) {
    let r = s
        .http
        .post(s.server.url("/users/password/forgot"))
        .json(&json!({ "email": email }))
        .send()
        .await
        .unwrap();
    let mut headers: Vec<(String, String)> = r
        .headers()
        .iter()
        .filter(|(k, _)| *k != "date")
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
        .collect();
    headers.sort();
    (r.status(), headers, r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn forgot_answers_alike_for_known_unknown_and_over_limit_addresses() {
    let setup = Setup::default()
        .with("REKEY_LIMIT_ADDRESS", "2/1h")
        .with("REKEY_LIMIT_CLIENT", "6/1h");
    let s = Scene::new(setup);
    s.register("known@example.com").await;
    // Three each: the third is over the address's limit, and looks no different.
    let mut answers = Vec::new();
    for _ in 0..3 {
        answers.push(forgot_answer(&s, "known@example.com").await);
        answers.push(forgot_answer(&s, "unknown@example.com").await);
    }
    for (i, a) in answers.iter().enumerate() {
        assert_eq!(a, &answers[0], "answer {i} differs from the first");
    }
    assert_eq!(answers[0].0, StatusCode::ACCEPTED);
    // The address's limit held: two mails, and the third request sent nothing.
    let smtp = &s.smtp;
    tokio::task::block_in_place(|| smtp.wait_for_mail("known@example.com", RESET, 2, Duration::from_secs(15)));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let resets = s
        .smtp
        .messages()
        .into_iter()
        .filter(|m| m.header("Subject") == Some(RESET))
        .count();
    assert_eq!(resets, 2, "an address over its limit got more mail");
    // The client's own limit (6/1h) is told to it, alike for either address.
    let known = forgot_answer(&s, "known@example.com").await;
    let unknown = forgot_answer(&s, "unknown@example.com").await;
    assert_eq!(known.0, StatusCode::TOO_MANY_REQUESTS);
    let retry_after = known.1.iter().find(|(k, _)| k == "retry-after").unwrap();
    assert!(retry_after.1.parse::<u64>().unwrap() > 0);
    // Retry-After may differ by a second between the two.
    let strip = |a: &(StatusCode, Vec<(String, String)>, String)| {
        let h: Vec<_> = a.1.iter().filter(|(k, _)| k != "retry-after").cloned().collect();
        (a.0, h, a.2.clone())
    };
    assert_eq!(strip(&known), strip(&unknown));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_two_megabyte_body_gets_413_and_the_server_carries_on() {
    let s = Scene::new(Setup::default());
    let huge = "x".repeat(2 * 1024 * 1024);
    let r = s
        .http
        .post(s.server.url("/users/password/forgot"))
        .header("content-type", "application/json")
        .body(format!("{{\"email\": \"{huge}\"}}"))
        .send()
        .await;
    match r {
        Ok(r) => {
            assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
            // The unread rest of the body ends the connection; the client must not reuse it.
            assert_eq!(r.headers()["connection"], "close");
            assert_eq!(r.json::<Value>().await.unwrap()["code"], "body_too_large");
        }
        // The server may answer and close before the client has written all 2 MB.
        Err(e) => assert!(e.is_request() || e.is_body(), "{e}"),
    }
    let (status, _) = s
        .post("/users/password/forgot", json!({"email": "fine@example.com"}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let health = s.http.get(s.server.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_keeps_queued_mail_which_goes_out_after_restart() {
    let mut smtp = SmtpCapture::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let http = Client::new();
    let mut server = Server::start(&data, Some(&smtp), Setup::default());
    let post = |server: &Server, path: &str, body: Value| http.post(server.url(path)).json(&body).send();
    tokio::task::block_in_place(|| server.create_account(&smtp, "eve@example.com", PASSWORD));

    smtp.stop();
    let r = post(&server, "/users/password/forgot", json!({"email": "eve@example.com"}))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    // Wait until the worker has tried and queued it.
    let mut depth = 0;
    for _ in 0..100 {
        let metrics = http
            .get(server.metrics_url())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        depth = gauge(&metrics, "rekey_outbox_depth");
        if depth == 1 && gauge(&metrics, "rekey_mail_failures_total") >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(depth, 1);
    let status = tokio::task::block_in_place(|| server.terminate());
    assert!(status.success(), "{status}: {}", server.log_text());
    assert!(server.log_text().contains("stopped"), "{}", server.log_text());

    smtp.restart();
    let server = Server::start(&data, Some(&smtp), Setup::default());
    let mails =
        tokio::task::block_in_place(|| smtp.wait_for_mail("eve@example.com", RESET, 1, Duration::from_secs(45)));
    assert_eq!(mails[0].rcpt_to, vec!["eve@example.com"]);
    let token = mails[0].reset_token();
    let r = http
        .post(server.url("/users/password/reset"))
        .bearer_auth(token)
        .json(&json!({"new_password": NEW_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_routes_statuses_and_refusals() {
    let s = Scene::new(Setup::default().with("REKEY_LIMIT_CLIENT", "1/1h"));
    for _ in 0..3 {
        s.post("/users/password/forgot", json!({"email": "fay@example.com"}))
            .await;
    }
    // The worker counts the stranger's request a moment after the answer.
    let started = std::time::Instant::now();
    let text = loop {
        let text = s
            .http
            .get(s.server.metrics_url())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if text.contains("rekey_reset_requests_no_account_total 1") || started.elapsed() > Duration::from_secs(10) {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        text.contains("rekey_http_requests_total{route=\"/users/password/forgot\",status=\"202\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("rekey_http_requests_total{route=\"/users/password/forgot\",status=\"429\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("rekey_rate_limited_total{route=\"/users/password/forgot\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("rekey_reset_requests_no_account_total 1"),
        "the stranger's request is counted: {text}"
    );
    for family in [
        "rekey_intake_depth",
        "rekey_outbox_depth",
        "rekey_outbox_oldest_age_seconds",
        "rekey_mail_delivered_total",
        "rekey_mail_failures_total",
    ] {
        assert!(text.contains(&format!("# TYPE {family} ")), "{family}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn registration_can_be_switched_off() {
    let s = Scene::new(Setup::default().with("REKEY_REGISTRATION", "false"));
    let (status, body) = s
        .post("/users", json!({"email": "gus@example.com", "password": PASSWORD}))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("registration_closed"))
    );
    // Said in the language asked for, like the core's refusals.
    let (_, body) = answer(
        s.http
            .post(s.server.url("/users"))
            .header("Accept-Language", "es-ES")
            .json(&json!({"email": "gus@example.com", "password": PASSWORD})),
    )
    .await;
    assert_eq!(
        body["message"],
        "Este servidor no permite crear cuentas nuevas; consulte a su administrador."
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit() {
    let s = Scene::new(
        Setup::default()
            .with("REKEY_TRUSTED_PROXIES", "127.0.0.1")
            .with("REKEY_LIMIT_CLIENT", "2/1h"),
    );
    let forgot = |client: &'static str, n: u32| {
        s.http
            .post(s.server.url("/users/password/forgot"))
            .header("x-forwarded-for", client)
            .json(&json!({ "email": format!("person{n}@example.com") }))
            .send()
    };
    assert_eq!(forgot("198.51.100.1", 1).await.unwrap().status(), StatusCode::ACCEPTED);
    assert_eq!(forgot("198.51.100.1", 2).await.unwrap().status(), StatusCode::ACCEPTED);
    assert_eq!(
        forgot("198.51.100.1", 3).await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // A spoofed hop on the left does not buy a fresh limit.
    assert_eq!(
        forgot("203.0.113.5, 198.51.100.1", 4).await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(forgot("198.51.100.2", 5).await.unwrap().status(), StatusCode::ACCEPTED);
}

#[tokio::test(flavor = "multi_thread")]
async fn https_with_the_configured_certificate_and_logs_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let ca = rekey_testkit::TestCa::new(&dir.path().join("tls"));
    let smtp = SmtpCapture::start();
    let setup = Setup {
        tls: Some((ca.server_cert().to_path_buf(), ca.server_key().to_path_buf())),
        ..Setup::default()
    }
    .with("REKEY_LOG", "info,rekeyd=debug,rekey_core=debug");
    let server = Server::start(&dir.path().join("data"), Some(&smtp), setup);
    let root = reqwest::Certificate::from_pem(&std::fs::read(ca.ca_pem()).unwrap()).unwrap();
    let http = Client::builder().add_root_certificate(root).build().unwrap();
    let post = |path: &str, body: Value| http.post(server.url(path)).json(&body).send();
    assert_eq!(
        post("/users", json!({"email": "hal@example.com", "password": PASSWORD}))
            .await
            .unwrap()
            .status(),
        StatusCode::ACCEPTED
    );
    let welcome = tokio::task::block_in_place(|| {
        smtp.wait_for_mail("hal@example.com", "Finish creating", 1, Duration::from_secs(15))
    })
    .remove(0);
    let verify_token = welcome.verify_token();
    let verified = post("/users/verify", json!({ "token": verify_token, "password": PASSWORD }))
        .await
        .unwrap();
    assert_eq!(verified.status(), StatusCode::CREATED);
    assert_eq!(
        post("/users/password/forgot", json!({"email": "hal@example.com"}))
            .await
            .unwrap()
            .status(),
        StatusCode::ACCEPTED
    );
    let mail = tokio::task::block_in_place(|| smtp.wait_for_mail("hal@example.com", RESET, 1, Duration::from_secs(15)))
        .remove(0);
    let (token, code) = (mail.reset_token(), mail.reset_code());
    let r = http
        .post(server.url("/users/password/reset"))
        .bearer_auth(&token)
        .json(&json!({"new_password": NEW_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // Plain HTTP to the TLS port gets nowhere.
    assert!(Client::new()
        .get(format!("http://127.0.0.1:{}/healthz", server.port))
        .send()
        .await
        .is_err());

    let log = server.log_text();
    assert!(log.contains("request"), "debug logging is on: {log}");
    for secret in [
        PASSWORD,
        NEW_PASSWORD,
        token.as_str(),
        code.as_str(),
        verify_token.as_str(),
        "hal@example.com",
    ] {
        assert!(!log.contains(secret), "the log holds a secret: {log}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_trickles_its_headers_is_cut_off() {
    use std::io::{Read, Write};
    let s = Scene::new(Setup::default().with("REKEY_REQUEST_TIMEOUT", "2s"));
    let port = s.server.port;
    let read = tokio::task::spawn_blocking(move || {
        let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        c.write_all(b"POST /users/password/forgot HTTP/1.1\r\nHost: rekey\r\n")
            .unwrap();
        let started = std::time::Instant::now();
        let mut rest = Vec::new();
        let result = c.read_to_end(&mut rest);
        (result.is_ok(), started.elapsed())
    });
    let (closed, after) = read.await.unwrap();
    assert!(closed, "the server closed the connection");
    assert!(after < Duration::from_secs(10), "cut off after {after:?}");
    let health = s.http.get(s.server.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_a_request_in_flight_finish() {
    // Expensive hashing, so a sign-in is still running when the signal comes.
    let setup = Setup::default()
        .with("REKEY_ARGON2_MEMORY_KIB", "262144")
        .with("REKEY_ARGON2_ITERATIONS", "3");
    let mut s = Scene::new(setup);
    s.register("ian@example.com").await;
    let started = std::time::Instant::now();
    let http = s.http.clone();
    let url = s.server.url("/sessions");
    let sign_in = tokio::spawn(async move {
        http.post(url)
            .json(&json!({"email": "ian@example.com", "password": PASSWORD}))
            .send()
            .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let status = tokio::task::block_in_place(|| s.server.terminate());
    let answer = sign_in.await.unwrap().expect("the request in flight got its answer");
    assert_eq!(answer.status(), StatusCode::OK);
    assert!(answer.json::<Value>().await.unwrap()["token"].is_string());
    assert!(status.success(), "{status}");
    eprintln!("sign-in answered and server stopped within {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn info_names_the_issuer_and_a_signed_in_account_changes_its_password() {
    let s = Scene::new(Setup::default());
    let info: Value = s
        .http
        .get(s.server.url("/info"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // Links name the server that issued them: its public address.
    let issuer = s.server.url("");
    assert_eq!(info["issuer"], issuer.as_str());
    assert_eq!(info["min_password_length"], 15);
    assert!(info["api"].as_u64().unwrap() >= 2 && info["version"].is_string());
    s.register("lu@example.com").await;
    let mail = s.forgot("lu@example.com", 1).await;
    let claims = mail.reset_token().split('.').nth(1).unwrap().to_string();
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, claims).unwrap(),
    )
    .unwrap();
    assert_eq!(claims["iss"], issuer.as_str());

    let (_, body) = s.sign_in("lu@example.com", PASSWORD).await;
    let session = body["token"].as_str().unwrap().to_string();
    let change = |current: &str| {
        s.post_bearer(
            "/sessions/current/password",
            &session,
            json!({"current": current, "new_password": NEW_PASSWORD}),
        )
    };
    let (status, body) = change("not the current one at all").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("bad_credentials"))
    );
    let (status, body) = change(PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let fresh = body["token"].as_str().unwrap();
    // The old session ended, the fresh one holds, the new password signs in.
    let me = |token: &str| s.http.get(s.server.url("/sessions/current")).bearer_auth(token).send();
    assert_eq!(me(&session).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(me(fresh).await.unwrap().status(), StatusCode::OK);
    assert_eq!(s.sign_in("lu@example.com", NEW_PASSWORD).await.0, StatusCode::OK);
}
