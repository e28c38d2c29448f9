//! Proves the capture server behaves: TLS/AUTH policy per port, decoding,
//! fault injection, restart.  Talks to it with a raw socket client (plain
//! SMTP) and with Python's smtplib (`tests/smtp/client.py`) for TLS.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rekey_testkit::{free_port, CapturedMail, Fault, SmtpCapture};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(5);

/// A multipart message with a quoted-printable text part, a base64 HTML part
/// and an RFC 2047 subject, all UTF-8.
const MESSAGE: &str = "From: Rekey <noreply@rekey.test>\r\n\
To: alice@example.org\r\n\
Subject: =?utf-8?b?UsOpaW5pdGlhbGlzYXRpb24g4pyT?=\r\n\
X-Rekey-Test: yes\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/alternative; boundary=\"BOUNDARY\"\r\n\
\r\n\
--BOUNDARY\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
Bonjour Al=C3=AFce, reset: https://rekey.test/r?t=3Dabc\r\n\
second line\r\n\
--BOUNDARY\r\n\
Content-Type: text/html; charset=utf-8\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
PHA+Qm9uam91ciBBbMOvY2UsIDxhIGhyZWY9Imh0dHBzOi8vcmVrZXkudGVzdC9yP3Q9YWJjIj5yZXNldDwvYT4g4pyTPC9wPg==\r\n\
--BOUNDARY--\r\n";

// ---------------------------------------------------------------- helpers

/// Minimal SMTP client over a plain TCP socket.
struct Raw {
    reader: BufReader<TcpStream>,
}

impl Raw {
    fn connect(port: u16) -> Raw {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        Raw {
            reader: BufReader::new(stream),
        }
    }

    /// Read one (possibly multi-line) reply: (code, all text lines joined by '\n').
    fn reply(&mut self) -> (u16, String) {
        let mut text = Vec::new();
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).expect("read reply");
            assert!(n > 0, "server closed the connection");
            let line = line.trim_end();
            assert!(line.len() >= 3, "short reply line {line:?}");
            let code: u16 = line[..3].parse().expect("reply code");
            text.push(line.get(4..).unwrap_or("").to_string());
            if line.as_bytes().get(3) != Some(&b'-') {
                return (code, text.join("\n"));
            }
        }
    }

    fn cmd(&mut self, line: &str) -> (u16, String) {
        let stream = self.reader.get_mut();
        stream.write_all(format!("{line}\r\n").as_bytes()).unwrap();
        self.reply()
    }

    /// Send a message through the plain port; returns the final reply.
    fn send(port: u16, from: &str, to: &str, body: &str) -> (u16, String) {
        let mut c = Raw::connect(port);
        assert_eq!(c.reply().0, 220);
        assert_eq!(c.cmd("EHLO raw.test").0, 250);
        let r = c.cmd(&format!("MAIL FROM:<{from}>"));
        assert_eq!(r.0, 250, "{r:?}");
        let r = c.cmd(&format!("RCPT TO:<{to}>"));
        if r.0 != 250 {
            return r;
        }
        assert_eq!(c.cmd("DATA").0, 354);
        let r = c.cmd(&format!("{body}\r\n."));
        let _ = c.cmd("QUIT");
        r
    }
}

fn python() -> PathBuf {
    std::env::var_os("REKEY_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/python3"))
}

/// Run tests/smtp/client.py with `spec`; returns its JSON result.
fn smtplib(spec: Value) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/smtp/client.py");
    let out = Command::new(python())
        .arg(&script)
        .arg(spec.to_string())
        .output()
        .expect("run client.py");
    assert!(
        out.status.success(),
        "client.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "client.py output {e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn spec(smtp: &SmtpCapture, mode: &str) -> Value {
    let port = match mode {
        "starttls" => smtp.starttls_port(),
        "implicit" => smtp.implicit_port(),
        _ => smtp.plain_port(),
    };
    json!({
        "host": "localhost",
        "port": port,
        "mode": mode,
        "cafile": smtp.ca_pem(),
        "user": smtp.user(),
        "password": smtp.password(),
        "from": "noreply@rekey.test",
        "to": ["alice@example.org"],
        "message": MESSAGE,
    })
}

fn stat(smtp: &SmtpCapture, what: &str, port: &str) -> u64 {
    smtp.stats()[what][port].as_u64().unwrap_or_else(|| {
        panic!("no {what}.{port} in {}", smtp.stats());
    })
}

fn assert_decoded(m: &CapturedMail) {
    assert_eq!(m.mail_from, "noreply@rekey.test");
    assert_eq!(m.rcpt_to, vec!["alice@example.org".to_string()]);
    assert_eq!(m.header("subject"), Some("Réinitialisation ✓"));
    assert_eq!(m.header("X-REKEY-TEST"), Some("yes"));
    assert!(m.headers.contains_key("X-Rekey-Test"), "{:?}", m.headers);
    assert_eq!(
        m.text.as_deref(),
        // The CRLF before a boundary belongs to the boundary (RFC 2046).
        Some("Bonjour Alïce, reset: https://rekey.test/r?t=abc\nsecond line")
    );
    assert_eq!(
        m.html.as_deref(),
        Some("<p>Bonjour Alïce, <a href=\"https://rekey.test/r?t=abc\">reset</a> ✓</p>")
    );
    assert!(m.raw.contains("Al=C3=AFce"), "raw stays encoded");
}

// ------------------------------------------------------------------ tests

#[test]
fn starttls_port_refuses_mail_and_auth_before_starttls() {
    let smtp = SmtpCapture::start();
    let mut c = Raw::connect(smtp.starttls_port());
    assert_eq!(c.reply().0, 220);
    let (code, ehlo) = c.cmd("EHLO raw.test");
    assert_eq!(code, 250);
    assert!(ehlo.contains("STARTTLS"), "{ehlo}");
    assert!(!ehlo.contains("AUTH"), "AUTH must not be offered before TLS: {ehlo}");
    assert_eq!(c.cmd("MAIL FROM:<a@rekey.test>").0, 530);
    assert_eq!(c.cmd("AUTH PLAIN AHJla2V5AHMzY3JldC1wYXNz").0, 530);
    assert_eq!(c.cmd("QUIT").0, 221);

    // The implicit port needs AUTH before MAIL, the plain port does not.
    let mut s = spec(&smtp, "implicit");
    s["user"] = Value::Null;
    let r = smtplib(s);
    assert_eq!(r["code"], 530, "{r}");
    assert!(smtp.messages().is_empty());
}

#[test]
fn wrong_credentials_get_535() {
    let smtp = SmtpCapture::start();
    for (mode, mech) in [("starttls", "PLAIN"), ("implicit", "LOGIN")] {
        let mut s = spec(&smtp, mode);
        s["password"] = json!("wrong");
        s["mech"] = json!(mech);
        let r = smtplib(s);
        assert_eq!(r["error"], "SMTPAuthenticationError", "{mode}: {r}");
        assert_eq!(r["code"], 535, "{mode}: {r}");

        let mut s = spec(&smtp, mode);
        s["user"] = json!("mallory");
        s["mech"] = json!(mech);
        assert_eq!(smtplib(s)["code"], 535, "{mode}: wrong user");
    }

    smtp.set_fault(Fault::AuthFail);
    let r = smtplib(spec(&smtp, "starttls"));
    assert_eq!(r["code"], 535, "auth-fail with good credentials: {r}");
    smtp.set_fault(Fault::Accept);
    assert_eq!(smtplib(spec(&smtp, "starttls"))["ok"], true);

    assert!(stat(&smtp, "auth_failures", "starttls") >= 3);
    assert_eq!(stat(&smtp, "auth_failures", "implicit"), 2);
    assert_eq!(smtp.messages().len(), 1);
}

#[test]
fn captures_and_decodes_on_every_port() {
    let smtp = SmtpCapture::start();
    let mut s = spec(&smtp, "starttls");
    s["mech"] = json!("PLAIN");
    assert_eq!(smtplib(s)["ok"], true);
    let mut s = spec(&smtp, "implicit");
    s["mech"] = json!("LOGIN");
    s["host"] = json!("127.0.0.1"); // checks the IP SAN too
    assert_eq!(smtplib(s)["ok"], true);
    let mut s = spec(&smtp, "plain");
    s["user"] = Value::Null;
    assert_eq!(smtplib(s)["ok"], true);

    let mails = smtp.wait_for_messages(3, WAIT);
    assert_eq!(mails.len(), 3);
    let got: Vec<(&str, bool, Option<&str>)> = mails
        .iter()
        .map(|m| (m.port.as_str(), m.tls, m.auth_user.as_deref()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("starttls", true, Some("rekey")),
            ("implicit", true, Some("rekey")),
            ("plain", false, None),
        ]
    );
    for m in &mails {
        assert_decoded(m);
    }
    for port in ["starttls", "implicit", "plain"] {
        assert_eq!(stat(&smtp, "connections", port), 1, "{port}");
        assert_eq!(stat(&smtp, "messages", port), 1, "{port}");
    }
}

#[test]
fn certificate_from_another_ca_is_rejected() {
    let smtp = SmtpCapture::start();
    for mode in ["starttls", "implicit"] {
        let mut s = spec(&smtp, mode);
        s["cafile"] = json!(smtp.untrusted_ca_pem());
        let r = smtplib(s);
        assert_eq!(r["error"], "SSLCertVerificationError", "{mode}: {r}");
    }
    assert!(smtp.messages().is_empty());
}

#[test]
fn reject_faults_refuse_and_store_nothing() {
    let smtp = SmtpCapture::start();
    let port = smtp.plain_port();

    smtp.set_fault(Fault::Reject(550, "5.1.1 no such user".into()));
    let r = Raw::send(port, "a@rekey.test", "b@example.org", "Subject: x\r\n\r\nhi");
    assert_eq!(r, (550, "5.1.1 no such user".to_string()));

    smtp.set_fault(Fault::Reject(451, "4.3.0 try later".into()));
    let r = Raw::send(port, "a@rekey.test", "b@example.org", "Subject: x\r\n\r\nhi");
    assert_eq!(r, (451, "4.3.0 try later".to_string()));

    smtp.set_fault(Fault::RejectData(552, "5.3.4 too big".into()));
    let r = Raw::send(port, "a@rekey.test", "b@example.org", "Subject: x\r\n\r\nhi");
    assert_eq!(r, (552, "5.3.4 too big".to_string()));

    // TLS + AUTH port too: RCPT refused after a successful login.
    smtp.set_fault(Fault::Reject(550, "5.1.1 no such user".into()));
    let r = smtplib(spec(&smtp, "starttls"));
    assert_eq!(r["error"], "SMTPRecipientsRefused", "{r}");
    assert_eq!(r["code"], 550, "{r}");

    assert!(smtp.messages().is_empty());
    assert_eq!(stat(&smtp, "rejected", "plain"), 3);
    assert_eq!(stat(&smtp, "rejected", "starttls"), 1);

    smtp.set_fault(Fault::Accept);
    let r = Raw::send(port, "a@rekey.test", "b@example.org", "Subject: x\r\n\r\nhi");
    assert_eq!(r.0, 250, "{r:?}");
    let mails = smtp.wait_for_messages(1, WAIT);
    assert_eq!(mails[0].header("Subject"), Some("x"));
    assert_eq!(mails[0].text.as_deref(), Some("hi\n"));
    assert_eq!(mails[0].html, None);
}

#[test]
fn greeting_and_recipient_faults() {
    let smtp = SmtpCapture::start();
    let port = smtp.plain_port();

    // Turned away at the banner, then the connection closes.
    smtp.set_fault(Fault::Greeting(421, "4.3.2 too busy, try later".into()));
    let mut c = Raw::connect(port);
    assert_eq!(c.reply(), (421, "4.3.2 too busy, try later".to_string()));
    let mut rest = String::new();
    assert_eq!(
        c.reader.read_line(&mut rest).unwrap_or(0),
        0,
        "closed after the refusal: {rest:?}"
    );
    // Over TLS too: the handshake completes, then the refusal.
    let r = smtplib(spec(&smtp, "implicit"));
    assert_eq!(r["ok"], false, "{r}");
    assert_eq!(r["code"], 421, "{r}");

    // One recipient refused, the others accepted.
    smtp.set_fault(Fault::RejectRecipient(
        "Gone@Example.org".into(),
        550,
        "5.1.1 no such user".into(),
    ));
    let r = Raw::send(port, "a@rekey.test", "gone@example.org", "Subject: x\r\n\r\nhi");
    assert_eq!(r, (550, "5.1.1 no such user".to_string()));
    let r = Raw::send(port, "a@rekey.test", "here@example.org", "Subject: y\r\n\r\nhi");
    assert_eq!(r.0, 250, "{r:?}");
    let mails = smtp.wait_for_messages(1, WAIT);
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].rcpt_to, ["here@example.org"]);
    assert_eq!(stat(&smtp, "rejected", "plain"), 2);
}

#[test]
fn silent_never_answers() {
    let smtp = SmtpCapture::start();
    smtp.set_fault(Fault::Silent);
    for port in [smtp.plain_port(), smtp.starttls_port()] {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream.set_read_timeout(Some(Duration::from_millis(600))).unwrap();
        let mut buf = [0u8; 64];
        match stream.read(&mut buf) {
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            other => panic!("expected a read timeout, got {other:?}"),
        }
    }
    // Over TLS: the handshake completes, then nothing.
    let mut s = spec(&smtp, "implicit");
    s["timeout"] = json!(0.6);
    let r = smtplib(s);
    assert_eq!(r["ok"], false, "{r}");
    assert!(r["detail"].as_str().unwrap_or("").contains("timed out"), "{r}");
    assert_eq!(stat(&smtp, "connections", "plain"), 1);
    assert_eq!(stat(&smtp, "connections", "starttls"), 1);
    assert_eq!(stat(&smtp, "connections", "implicit"), 1);

    // A session that is already open stalls at its next MAIL.
    smtp.set_fault(Fault::Accept);
    let mut c = Raw::connect(smtp.plain_port());
    assert_eq!(c.reply().0, 220);
    assert_eq!(c.cmd("EHLO raw.test").0, 250);
    smtp.set_fault(Fault::Silent);
    c.reader
        .get_mut()
        .set_read_timeout(Some(Duration::from_millis(600)))
        .unwrap();
    c.reader.get_mut().write_all(b"MAIL FROM:<a@rekey.test>\r\n").unwrap();
    let mut line = String::new();
    let err = c.reader.read_line(&mut line).expect_err("no answer");
    assert!(matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut));
}

#[test]
fn restart_keeps_ports_and_numbering() {
    let mut smtp = SmtpCapture::start();
    let ports = (smtp.starttls_port(), smtp.implicit_port(), smtp.plain_port());
    let r = Raw::send(smtp.plain_port(), "a@rekey.test", "b@x.org", "Subject: one\r\n\r\n1");
    assert_eq!(r.0, 250);

    smtp.stop();
    assert!(TcpStream::connect(("127.0.0.1", ports.2)).is_err(), "still listening");
    assert!(TcpStream::connect(("127.0.0.1", ports.0)).is_err(), "still listening");
    assert_eq!(smtp.messages().len(), 1, "files kept while stopped");

    smtp.restart();
    assert_eq!(ports, (smtp.starttls_port(), smtp.implicit_port(), smtp.plain_port()));
    let r = Raw::send(smtp.plain_port(), "a@rekey.test", "b@x.org", "Subject: two\r\n\r\n2");
    assert_eq!(r.0, 250);
    assert_eq!(smtplib(spec(&smtp, "implicit"))["ok"], true, "TLS after restart");

    let mails = smtp.wait_for_messages(3, WAIT);
    let subjects: Vec<_> = mails.iter().map(|m| m.header("subject").unwrap()).collect();
    assert_eq!(subjects, ["one", "two", "Réinitialisation ✓"]);
    for n in ["000001.json", "000002.json", "000003.json"] {
        assert!(smtp.dir().join("mail").join(n).exists(), "{n}");
    }
    assert_eq!(stat(&smtp, "messages", "plain"), 2, "stats survive restart");
    assert!(r.1.contains("000002"), "{r:?}");
}

#[test]
fn free_port_has_no_listener() {
    let port = free_port();
    let err = TcpStream::connect(("127.0.0.1", port)).expect_err("nothing listens");
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
}

#[test]
fn wait_for_messages_panics_with_what_arrived() {
    let smtp = SmtpCapture::start();
    let r = Raw::send(smtp.plain_port(), "a@rekey.test", "b@x.org", "Subject: only\r\n\r\n1");
    assert_eq!(r.0, 250);
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        smtp.wait_for_messages(2, Duration::from_millis(200))
    }))
    .expect_err("must time out");
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("1 arrived"), "{msg}");
    assert!(msg.contains("subject=\"only\""), "{msg}");
}
