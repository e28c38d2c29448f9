//! What the public port gives a stranger, tried as a stranger would against the real
//! `rekeyd serve`: no counters, nothing cacheable, one client per /64, no HTTP/2 around the
//! limits, a cap on connections, idle connections closed, a bounded and limited strength meter.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::server::{Server, Setup};
use rekey_testkit::SmtpCapture;
use reqwest::blocking::Client;
use serde_json::{json, Value};

fn start(setup: Setup) -> (tempfile::TempDir, SmtpCapture, Server) {
    let smtp = SmtpCapture::start();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), Some(&smtp), setup);
    (dir, smtp, server)
}

fn post(server: &Server, path: &str, body: Value, forwarded_for: Option<&str>) -> (u16, Value) {
    let mut r = Client::new().post(server.url(path)).json(&body);
    if let Some(xff) = forwarded_for {
        r = r.header("X-Forwarded-For", xff);
    }
    let r = r.send().unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

#[test]
fn metrics_live_on_their_own_listener_and_never_on_the_public_one() {
    let (_dir, _smtp, server) = start(Setup::default());
    post(
        &server,
        "/users/password/forgot",
        json!({"email": "nobody@example.com"}),
        None,
    );
    let public = Client::new().get(server.url("/metrics")).send().unwrap();
    assert_eq!(public.status().as_u16(), 404);
    let body = public.text().unwrap();
    assert!(!body.contains("rekey_"), "{body}");
    let operator = Client::new().get(server.metrics_url()).send().unwrap();
    assert_eq!(operator.status().as_u16(), 200);
    assert!(operator
        .text()
        .unwrap()
        .contains("rekey_reset_requests_no_account_total"));
    // The public health check stays, and says nothing more than "ok".
    let health: Value = Client::new()
        .get(server.url("/healthz"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(health, json!({"status": "ok"}));

    // With metrics_listen off there are no metrics anywhere.
    let (_dir, _smtp, server) = start(Setup::default().with("REKEY_METRICS_LISTEN", "off"));
    assert_eq!(
        Client::new()
            .get(server.url("/metrics"))
            .send()
            .unwrap()
            .status()
            .as_u16(),
        404
    );
    assert!(TcpStream::connect(("127.0.0.1", server.metrics_port)).is_err());
}

#[test]
fn answers_are_never_cached_and_tls_answers_carry_hsts() {
    let (_dir, _smtp, server) = start(Setup::default());
    for (path, body) in [
        (
            "/sessions",
            json!({"email": "a@example.com", "password": "not the password at all"}),
        ),
        ("/users/password/forgot", json!({"email": "a@example.com"})),
        ("/users/password/inspect", json!({"token": "x.y.z"})),
    ] {
        let r = Client::new().post(server.url(path)).json(&body).send().unwrap();
        assert_eq!(r.headers()["cache-control"], "no-store", "{path}");
        assert!(
            r.headers().get("strict-transport-security").is_none(),
            "no HSTS over plain HTTP"
        );
    }

    let dir = tempfile::tempdir().unwrap();
    let ca = rekey_testkit::TestCa::new(&dir.path().join("tls"));
    let setup = Setup {
        tls: Some((ca.server_cert().to_path_buf(), ca.server_key().to_path_buf())),
        ..Setup::default()
    };
    let smtp = SmtpCapture::start();
    let server = Server::start(&dir.path().join("data"), Some(&smtp), setup);
    let root = reqwest::Certificate::from_pem(&std::fs::read(ca.ca_pem()).unwrap()).unwrap();
    let https = Client::builder().add_root_certificate(root).build().unwrap();
    let r = https
        .post(server.url("/sessions"))
        .json(&json!({"email": "a@example.com", "password": "not the password at all"}))
        .send()
        .unwrap();
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["strict-transport-security"], "max-age=31536000");
}

#[test]
fn an_ipv6_client_is_its_64_and_forwarded_hops_with_ports_are_read() {
    let setup = Setup::default()
        .with("REKEY_TRUSTED_PROXIES", "127.0.0.1")
        .with("REKEY_LIMIT_CLIENT", "2/1h");
    let (_dir, _smtp, server) = start(setup);
    let forgot = |xff: &str| {
        post(
            &server,
            "/users/password/forgot",
            json!({"email": "x@example.com"}),
            Some(xff),
        )
        .0
    };
    // Three addresses of one /64, written the ways proxies write them: one client.
    assert_eq!(forgot("2001:db8:1:2::1"), 202);
    assert_eq!(forgot("[2001:db8:1:2::2]:443"), 202);
    assert_eq!(forgot("2001:db8:1:2:ffff:ffff:ffff:ffff"), 429);
    // The next /64 is another client.
    assert_eq!(forgot("[2001:db8:1:3::1]"), 202);
    // IPv4 with a port is that client, not the proxy: others behind the proxy are not held.
    assert_eq!(forgot("198.51.100.7:5100"), 202);
    assert_eq!(forgot("198.51.100.7:5101"), 202);
    assert_eq!(forgot("198.51.100.7:5102"), 429);
    assert_eq!(forgot("198.51.100.8:5100"), 202);
}

#[test]
fn a_proxy_on_this_machine_that_nobody_trusts_is_named_in_a_warning() {
    let (_dir, _smtp, server) = start(Setup::default());
    post(
        &server,
        "/users/password/forgot",
        json!({"email": "x@example.com"}),
        Some("198.51.100.7"),
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while !server.log_text().contains("trusted_proxies is empty") {
        assert!(Instant::now() < deadline, "no warning: {}", server.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A relay on rekeyd's machine shares its CPUs, so its work on a real mail would show in a
/// requester's next requests: rekeyd says so at start, and with `stand_in_mail_to` a
/// stranger's reset request sends a message to that sink (and to nobody else).
#[test]
fn a_relay_on_this_machine_is_named_in_a_warning_and_the_sink_takes_the_stand_ins_mail() {
    let (_dir, _smtp, server) = start(Setup::default());
    let deadline = Instant::now() + Duration::from_secs(5);
    while !server.log_text().contains("stand_in_mail_to is unset") {
        assert!(Instant::now() < deadline, "no warning: {}", server.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }

    let (_dir, smtp, server) = start(Setup::default().with("REKEY_STAND_IN_MAIL_TO", "discard@sink.test"));
    server.create_account(&smtp, "owner@example.com", "Quiet-lantern-harbour-42");
    let before = smtp.messages().len();
    for email in ["owner@example.com", "stranger@example.com"] {
        let (status, _) = post(&server, "/users/password/forgot", json!({ "email": email }), None);
        assert_eq!(status, 202);
    }
    let mails = smtp.wait_for_messages(before + 2, Duration::from_secs(10));
    let mut to: Vec<Vec<String>> = mails[before..].iter().map(|m| m.rcpt_to.clone()).collect();
    to.sort();
    assert_eq!(
        to,
        [
            vec!["discard@sink.test".to_string()],
            vec!["owner@example.com".to_string()]
        ]
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        smtp.messages().len(),
        before + 2,
        "one mail each, and none to the stranger"
    );
    assert!(!server.log_text().contains("stand_in_mail_to is unset"));
}

/// Sends `bytes` on a new connection and returns what comes back before the server closes
/// it (or `read_for` passes).
fn raw(port: u16, bytes: &[u8], read_for: Duration) -> Vec<u8> {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(read_for)).unwrap();
    c.write_all(bytes).unwrap();
    let mut got = Vec::new();
    let _ = c.read_to_end(&mut got);
    got
}

#[test]
fn http2_prior_knowledge_gets_no_http2() {
    let (_dir, _smtp, server) = start(Setup::default());
    // The HTTP/2 connection preface, then an empty SETTINGS frame.
    let mut preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    preface.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    let got = raw(server.port, &preface, Duration::from_secs(5));
    // An HTTP/2 server answers with its own SETTINGS frame (type 4); HTTP/1.1 refuses.
    let is_h2_settings = got.len() >= 9 && got[3] == 4;
    assert!(!is_h2_settings, "the server spoke HTTP/2: {got:?}");
    assert!(
        got.is_empty() || got.starts_with(b"HTTP/1.1 4") || got.starts_with(b"HTTP/1.1 5"),
        "{}",
        String::from_utf8_lossy(&got)
    );
}

#[test]
fn open_connections_are_capped_and_idle_ones_are_closed() {
    let setup = Setup::default()
        .with("REKEY_MAX_CONNECTIONS", "16")
        .with("REKEY_REQUEST_TIMEOUT", "3s");
    let (_dir, _smtp, server) = start(setup);
    let open = || {
        let text = Client::new().get(server.metrics_url()).send().unwrap().text().unwrap();
        common::server::gauge(&text, "rekey_connections_open")
    };
    let wait_for = |n: u64| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while open() != n {
            assert!(Instant::now() < deadline, "{} connections open, not {n}", open());
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    // The harness's start-up check only connected, and the server binds its port before it
    // opens the store, so on a busy machine that connection may still wait in the kernel's
    // queue and take a slot beside the sixteen below (a CI run, and this machine under load,
    // saw one of them refused). One request answered means the accept loop has taken it.
    let got = raw(
        server.port,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        Duration::from_secs(10),
    );
    assert!(got.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&got));
    wait_for(0);
    // Sixteen idle connections hold every slot...
    let idle: Vec<TcpStream> = (0..16)
        .map(|_| TcpStream::connect(("127.0.0.1", server.port)).unwrap())
        .collect();
    wait_for(16);
    // ...so the next is closed at once, without an answer.
    let started = Instant::now();
    let got = raw(
        server.port,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_secs(2),
    );
    assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    // The idle ones are closed by the server within the header timeout (3 s)...
    for mut c in idle {
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 64];
        assert!(matches!(c.read(&mut buf), Ok(0)), "an idle connection stayed open");
    }
    // ...and so is one kept alive after a request.
    let mut c = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut answer = vec![0u8; 4096];
    let n = c.read(&mut answer).unwrap();
    assert!(answer[..n].starts_with(b"HTTP/1.1 200"));
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = c.read_to_end(&mut rest);
    let idle_for = started.elapsed();
    assert!(
        idle_for > Duration::from_secs(1) && idle_for < Duration::from_secs(8),
        "the kept-alive connection closed after {idle_for:?}"
    );
    // The server took new connections all along.
    let health = Client::new().get(server.url("/healthz")).send().unwrap();
    assert_eq!(health.status().as_u16(), 200);
}

#[test]
fn the_strength_meter_is_bounded_and_limited_per_client() {
    let (_dir, _smtp, server) = start(Setup::default().with("REKEY_LIMIT_STRENGTH", "5/1h"));
    let strength = |body: Value| post(&server, "/users/password/strength", body, None);
    let (status, body) = strength(json!({"password": "x".repeat(5000)}));
    assert_eq!((status, body["code"].as_str()), (400, Some("password_too_long")));
    let (status, body) = strength(json!({"password": "lantern orbit", "email": "a".repeat(400)}));
    assert_eq!((status, body["code"].as_str()), (400, Some("email_invalid")));
    for typed in ["l", "la", "lan", "lant", "lante"] {
        assert_eq!(strength(json!({"password": typed})).0, 200);
    }
    let (status, body) = strength(json!({"password": "lanter"}));
    assert_eq!((status, body["code"].as_str()), (429, Some("rate_limited")));
}

/// One sign-in (a wrong password for nobody: one hash either way), with its time.
fn timed_sign_in(http: &Client, server: &Server) -> (u16, Duration) {
    let started = Instant::now();
    let r = http
        .post(server.url("/sessions"))
        .json(&json!({"email": "nobody@example.com", "password": "not anyone's password"}))
        .send()
        .unwrap();
    (r.status().as_u16(), started.elapsed())
}

#[test]
fn a_burst_of_sign_ins_does_not_outlive_itself() {
    // One hashing thread, ~3x slower hashes than the default: 50 sign-ins a second is about
    // three times what the server can hash.
    let setup = Setup::default()
        .with("REKEY_HASH_CONCURRENCY", "1")
        .with("REKEY_REQUEST_TIMEOUT", "2s")
        .with("REKEY_ARGON2_MEMORY_KIB", "19456")
        .with("REKEY_ARGON2_ITERATIONS", "6")
        .with("REKEY_LIMIT_SIGNIN_ACCOUNT", "off")
        .with("REKEY_LIMIT_SIGNIN_CLIENT", "off")
        .with("REKEY_LIMIT_SIGNIN_SPRAY", "off")
        // The burst comes from one address and can hold more than 32 connections (in flight
        // plus idle keep-alives): the per-client cap, tested on its own below, is not what
        // this test is about.
        .with("REKEY_MAX_CONNECTIONS_PER_CLIENT", "1000");
    let (_dir, _smtp, server) = start(setup);
    let http = Client::new();
    let mut quiet: Vec<Duration> = (0..7).map(|_| timed_sign_in(&http, &server).1).collect();
    quiet.sort();
    let one_hash = quiet[3];

    let rt = tokio::runtime::Runtime::new().unwrap();
    let statuses = rt.block_on(async {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .unwrap();
        let mut burst = tokio::task::JoinSet::new();
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for _ in 0..1000 {
            tick.tick().await;
            let request = http
                .post(server.url("/sessions"))
                .json(&json!({"email": "nobody@example.com", "password": "not anyone's password"}));
            burst.spawn(async move {
                match request.send().await {
                    Ok(r) => r.status().as_u16(),
                    Err(_) => 0,
                }
            });
        }
        let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
        while let Some(status) = burst.join_next().await {
            *statuses.entry(status.unwrap()).or_default() += 1;
        }
        statuses
    });
    eprintln!("burst answers by status: {statuses:?}; a quiet sign-in took {one_hash:?}");
    assert!(statuses.get(&503).copied().unwrap_or(0) > 100, "{statuses:?}");
    assert!(statuses.get(&401).copied().unwrap_or(0) > 100, "{statuses:?}");
    assert_eq!(statuses.get(&0), None, "every request is answered: {statuses:?}");
    // Every burst request has been answered; the server is quiet again at once.
    let (status, after) = timed_sign_in(&http, &server);
    eprintln!("the first sign-in after the burst took {after:?}");
    assert_eq!(status, 401);
    assert!(
        after < one_hash * 2 + Duration::from_millis(100),
        "{after:?} after the burst, one hash takes {one_hash:?}"
    );
}

/// Every byte under `dir`, file by file (the store as a backup or a stolen disk holds it).
fn every_byte(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(every_byte(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((path.display().to_string(), bytes));
        }
    }
    out
}

fn holds(files: &[(String, Vec<u8>)], needle: &str) -> Option<String> {
    files
        .iter()
        .find(|(_, bytes)| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
        .map(|(name, _)| name.clone())
}

fn metric(server: &Server, name: &str) -> u64 {
    let text = Client::new().get(server.metrics_url()).send().unwrap().text().unwrap();
    common::server::gauge(&text, name)
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn queued_and_dead_mail_hold_no_readable_link_or_code() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let smtp = SmtpCapture::start();
    let server = Server::start(&data, Some(&smtp), Setup::default());
    server.create_account(&smtp, "ana@example.com", "quiet river under the old mill");
    server.create_account(&smtp, "gone@example.com", "quiet river under the old mill");
    let sent_before = smtp.messages().len();

    // The mail server defers: the reset mail waits in the queue.
    smtp.set_fault(rekey_testkit::Fault::Reject(451, "4.3.0 try again later".into()));
    post(
        &server,
        "/users/password/forgot",
        json!({"email": "ana@example.com"}),
        None,
    );
    wait_for("the deferred mail", || {
        metric(&server, "rekey_mail_failures_total") >= 1
    });
    let queued = every_byte(&data);

    // One that the server refuses for good: a dead letter.
    smtp.set_fault(rekey_testkit::Fault::RejectRecipient(
        "gone@example.com".into(),
        550,
        "5.1.1 no such mailbox".into(),
    ));
    post(
        &server,
        "/users/password/forgot",
        json!({"email": "gone@example.com"}),
        None,
    );
    wait_for("the dead letter", || metric(&server, "rekey_outbox_dead") == 1);
    let dead = every_byte(&data);

    // The waiting one goes out once the server takes mail again: now its link is known.
    let mails = smtp.wait_for_messages(sent_before + 1, Duration::from_secs(30));
    let mail = mails.last().unwrap();
    let (token, code) = (mail.reset_token(), mail.reset_code());
    // Mail bodies are quoted-printable: a long token is broken across lines, so look for
    // each 16-character piece of it (a copy in the clear would show nearly all of them).
    let mut secrets: Vec<String> = token
        .as_bytes()
        .chunks(16)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    secrets.extend([
        code.clone(),
        code.replace('-', ""),
        "rekey://reset".into(),
        "/reset#token".into(),
    ]);
    for (when, files) in [("queued", &queued), ("dead", &dead), ("delivered", &every_byte(&data))] {
        for secret in &secrets {
            assert_eq!(holds(files, secret), None, "{when}: the store holds {secret:?}");
        }
    }
    // The link works: sealing lost nothing.
    let (status, _) = post(
        &server,
        "/users/password/reset",
        json!({"token": token, "new_password": "lanterns drift past the harbour wall"}),
        None,
    );
    assert_eq!(status, 204);
}

#[test]
fn one_client_cannot_take_every_connection() {
    let setup = Setup::default()
        .with("REKEY_MAX_CONNECTIONS", "64")
        .with("REKEY_MAX_CONNECTIONS_PER_CLIENT", "4");
    let (_dir, _smtp, server) = start(setup);
    let rt = tokio::runtime::Runtime::new().unwrap();
    // A connection from another loopback address: another client.
    let from = |ip: &str| {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], server.port));
        let ip: std::net::IpAddr = ip.parse().unwrap();
        rt.block_on(async move {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind((ip, 0).into()).unwrap();
            socket.connect(addr).await.unwrap().into_std().unwrap()
        })
    };
    let open = || {
        let text = Client::new().get(server.metrics_url()).send().unwrap().text().unwrap();
        common::server::gauge(&text, "rekey_connections_open")
    };
    wait_for("the start-up check's connection to close", || open() == 0);
    let hog: Vec<TcpStream> = (0..4).map(|_| from("127.0.0.9")).collect();
    wait_for("the four connections", || open() == 4);
    // The fifth from the same client is closed at once...
    let mut fifth = from("127.0.0.9");
    fifth.set_nonblocking(false).unwrap();
    fifth.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let _ = fifth.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut got = Vec::new();
    let _ = fifth.read_to_end(&mut got);
    assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
    // ...while another client is served.
    let mut other = from("127.0.0.10");
    other.set_nonblocking(false).unwrap();
    other.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    other
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = other.read_to_end(&mut answer);
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    drop(hog);
}
