//! The operator's mail identity, end to end through `rekeyd serve` and the capture server: the
//! product's name and a support line in the reset mail, the RFC 3834 and Content-Language
//! headers, and a DKIM signature that a real verifier (Debian's python3-dkim) accepts, for an
//! RSA and an Ed25519 key, and refuses once the mail is changed.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::server::{Server, Setup};
use rekey_testkit::{CapturedMail, SmtpCapture};
use serde_json::json;

const FROM: &str = "Example Corp <no-reply@example.com>";
const PRODUCT: &str = "Example Corp Login";
const SUPPORT: &str = "it-help@example.com or extension 4242";
const SELECTOR: &str = "mail2026";
const PASSWORD: &str = "quiet lantern orbits 7 fjords";

/// dkimpy verifies the message in argv[1]; the selector's DNS answer is built from the public
/// key (DER) in argv[2], and any other name gets no answer. Prints pass or fail and the names
/// it asked for.
const VERIFY: &str = r#"
import base64, sys, dkim
msg = open(sys.argv[1], 'rb').read()
der = open(sys.argv[2], 'rb').read()
kind, want = sys.argv[3], sys.argv[4].encode()
p = der[-32:] if kind == 'ed25519' else der
record = b'v=DKIM1; k=' + kind.encode() + b'; p=' + base64.b64encode(p)
asked = []
def dns(name, timeout=5):
    asked.append(name)
    return record if name.rstrip(b'.') == want else None
ok = dkim.verify(msg, dnsfunc=dns)
print('pass' if ok else 'fail', asked)
"#;

fn openssl(args: &[&str]) {
    let out = Command::new("openssl").args(args).output().expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A private key of `kind` (rsa: 2048 bits, PKCS#8 as OpenSSL 3 writes it) and its public
/// key in DER, for the DNS record.
fn key_pair(dir: &Path, kind: &str) -> (PathBuf, PathBuf) {
    let (key, public) = (dir.join(format!("{kind}.pem")), dir.join(format!("{kind}.pub.der")));
    let key_s = key.to_str().unwrap();
    match kind {
        "rsa" => openssl(&["genrsa", "-out", key_s, "2048"]),
        _ => openssl(&["genpkey", "-algorithm", "ed25519", "-out", key_s]),
    }
    openssl(&[
        "pkey",
        "-in",
        key_s,
        "-pubout",
        "-outform",
        "DER",
        "-out",
        public.to_str().unwrap(),
    ]);
    (key, public)
}

/// What python3-dkim says of `raw`: whether it passed, and the DNS names it looked up.
fn verify(dir: &Path, raw: &str, public: &Path, kind: &str) -> (bool, String) {
    let message = dir.join("message.eml");
    std::fs::write(&message, raw).unwrap();
    let out = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(VERIFY)
        .arg(&message)
        .arg(public)
        .arg(kind)
        .arg(format!("{SELECTOR}._domainkey.example.com"))
        .output()
        .expect("python3 runs (apt-get install python3-dkim)");
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "the verifier ran: {said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (said.starts_with("pass"), said)
}

/// Starts rekeyd signing with `key`, makes an account, asks for its reset, and returns the
/// reset mail as the relay got it.
fn signed_reset_mail(dir: &Path, smtp: &SmtpCapture, key: &Path) -> CapturedMail {
    let data = dir.join("data");
    let setup = Setup::default()
        .with("REKEY_MAIL_FROM", FROM)
        .with("REKEY_PRODUCT_NAME", PRODUCT)
        .with("REKEY_SUPPORT_CONTACT", SUPPORT)
        .with("REKEY_DKIM_KEY_FILE", key.to_str().unwrap())
        .with("REKEY_DKIM_SELECTOR", SELECTOR);
    let mut server = Server::start(&data, Some(smtp), setup);
    server.create_account(smtp, "ann@example.com", PASSWORD);
    let answer = server
        .http()
        .post(server.url("/users/password/forgot"))
        .json(&json!({ "email": "ann@example.com" }))
        .send()
        .unwrap();
    assert_eq!(answer.status(), 202);
    let subject = format!("Reset your {PRODUCT} password");
    let mail = smtp.wait_for_mail("ann@example.com", &subject, 1, Duration::from_secs(30));
    server.terminate();
    mail.into_iter().next().unwrap()
}

#[test]
fn the_reset_mail_carries_the_operators_name_and_a_dkim_signature_that_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpCapture::start();
    let (key, public) = key_pair(dir.path(), "rsa");
    let mail = signed_reset_mail(dir.path(), &smtp, &key);

    // What the reader sees: the operator's product and support line, never "Rekey".
    let text = mail.text.as_deref().unwrap();
    assert!(
        text.contains(&format!(
            "reset the password of the {PRODUCT} account for ann@example.com"
        )),
        "{text}"
    );
    assert!(text.contains(&format!("Need help? {SUPPORT}")), "{text}");
    assert!(mail.html.as_deref().unwrap().contains(&format!("Need help? {SUPPORT}")));
    assert!(!mail.raw.contains("Rekey"), "no word of Rekey: {}", mail.raw);
    assert_eq!(mail.header("From"), Some(FROM));

    // What mail software reads: automatic mail, in English.
    assert_eq!(mail.header("Auto-Submitted"), Some("auto-generated"));
    assert_eq!(mail.header("Content-Language"), Some("en"));

    // Signed for mail_from's domain with the operator's selector, and a verifier agrees.
    let signature = mail.header("DKIM-Signature").expect("the mail is signed");
    assert!(
        signature.contains("d=example.com") && signature.contains(&format!("s={SELECTOR}")),
        "{signature}"
    );
    assert!(signature.contains("a=rsa-sha256"), "{signature}");
    for covered in ["from", "subject", "date", "to", "message-id", "auto-submitted"] {
        assert!(
            signature.to_ascii_lowercase().contains(covered),
            "{covered} is signed: {signature}"
        );
    }
    let (ok, said) = verify(dir.path(), &mail.raw, &public, "rsa");
    assert!(ok, "python3-dkim accepts the signature: {said}");
    let score = spam_score(dir.path(), &mail.raw);
    assert!(score <= 0.0, "SpamAssassin's local rules score the signed mail {score}");

    // A mail changed on the way no longer verifies: a new subject, or new words in the body.
    let retitled = mail
        .raw
        .replacen(&format!("Reset your {PRODUCT}"), "Reset your Other", 1);
    assert!(
        !verify(dir.path(), &retitled, &public, "rsa").0,
        "a changed subject fails"
    );
    let reworded = mail.raw.replacen("Need help?", "Need hlep?", 1);
    assert_ne!(reworded, mail.raw);
    assert!(!verify(dir.path(), &reworded, &public, "rsa").0, "a changed body fails");
}

#[test]
fn an_ed25519_key_signs_too() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpCapture::start();
    let (key, public) = key_pair(dir.path(), "ed25519");
    let mail = signed_reset_mail(dir.path(), &smtp, &key);
    let signature = mail.header("DKIM-Signature").expect("the mail is signed");
    assert!(signature.contains("a=ed25519-sha256"), "{signature}");
    let (ok, said) = verify(dir.path(), &mail.raw, &public, "ed25519");
    assert!(ok, "python3-dkim accepts the signature: {said}");
}

#[test]
fn the_reset_mail_in_each_language_through_the_relay() {
    let smtp = SmtpCapture::start();
    for (locale, subject, code_line, ignore) in [
        (
            "en",
            "Reset your Example Corp Login password",
            "choose “Enter a code instead” in Example Corp Login and type:",
            "If you did not ask for this, ignore this mail",
        ),
        (
            "de",
            "Setzen Sie Ihr Example Corp Login-Passwort zurück",
            "wählen Sie in Example Corp Login „Stattdessen einen Code eingeben“ und tippen Sie:",
            "Wenn Sie das nicht verlangt haben, ignorieren Sie diese Mail",
        ),
        (
            "fr",
            "Réinitialisez votre mot de passe Example Corp Login",
            "choisissez « Saisir un code à la place » dans Example Corp Login et tapez :",
            "Si vous n’avez rien demandé, ignorez ce mail",
        ),
        (
            "es",
            "Restablezca su contraseña de Example Corp Login",
            "elija «Introducir un código» en Example Corp Login y escriba:",
            "Si no lo ha pedido usted, ignore este correo",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let setup = Setup::default()
            .with("REKEY_MAIL_FROM", FROM)
            .with("REKEY_PRODUCT_NAME", PRODUCT)
            .with("REKEY_LOCALE", locale);
        let mut server = Server::start(&dir.path().join("data"), Some(&smtp), setup);
        let address = format!("{locale}@example.com");
        server.create_account(&smtp, &address, PASSWORD);
        let answer = server
            .http()
            .post(server.url("/users/password/forgot"))
            .json(&json!({ "email": address }))
            .send()
            .unwrap();
        assert_eq!(answer.status(), 202);
        let mail = smtp.wait_for_mail(&address, subject, 1, Duration::from_secs(30));
        server.terminate();
        let mail = &mail[0];
        assert_eq!(mail.header("Content-Language"), Some(locale));
        let text = mail.text.as_deref().unwrap();
        assert!(text.contains(code_line) && text.contains(ignore), "{locale}: {text}");
        let html = mail.html.as_deref().unwrap();
        assert!(html.contains(ignore), "{locale}: the HTML part too: {html}");
        assert_eq!(mail.reset_code().len(), 9, "the code is there to type: {text}");
        let score = spam_score(dir.path(), &mail.raw);
        assert!(
            score <= 0.0,
            "{locale}: SpamAssassin's local rules score the mail {score}"
        );
    }
}

#[test]
fn an_account_keeps_its_language_whoever_asks_for_its_reset() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpCapture::start();
    let data = dir.path().join("data");

    // An operator makes a Spanish account before the server starts (`users add --locale`).
    admin(&data, &["users", "add", "--locale", "es", "sol@example.com"]);

    let mut server = Server::start(&data, Some(&smtp), Setup::default());
    let http = server.http();
    let post = |path: &str, language: &str, body: serde_json::Value| {
        http.post(server.url(path))
            .header("Accept-Language", language)
            .json(&body)
            .send()
            .unwrap()
    };

    // Registered from a German browser: the mail that finishes it is German already.
    let r = post(
        "/users",
        "de-DE,de;q=0.9,en;q=0.5",
        json!({"email": "jonas@example.com", "password": PASSWORD}),
    );
    assert_eq!(r.status(), 202);
    smtp.wait_for_mail(
        "jonas@example.com",
        "Schließen Sie die Einrichtung Ihres Rekey-Kontos ab",
        1,
        Duration::from_secs(30),
    );
    server.verify_all(Some(&smtp), &["jonas@example.com".to_string()], PASSWORD);

    // Its reset asked for from an English browser: German mail all the same.
    assert_eq!(
        post("/users/password/forgot", "en-US", json!({"email": "jonas@example.com"})).status(),
        202
    );
    let mail = smtp.wait_for_mail(
        "jonas@example.com",
        "Setzen Sie Ihr Rekey-Passwort zurück",
        1,
        Duration::from_secs(30),
    );
    assert_eq!(mail[0].header("Content-Language"), Some("de"));
    assert!(mail[0]
        .text
        .as_deref()
        .unwrap()
        .contains("Rekey-Kontos für jonas@example.com"));

    // The operator's Spanish account gets Spanish mail, asked for in German.
    assert_eq!(
        post("/users/password/forgot", "de", json!({"email": "sol@example.com"})).status(),
        202
    );
    smtp.wait_for_mail(
        "sol@example.com",
        "Restablezca su contraseña de Rekey",
        1,
        Duration::from_secs(30),
    );

    // The owner, signed in, chooses French; its next mail is French, and `whoami` says so.
    let session: serde_json::Value = post(
        "/sessions",
        "en",
        json!({"email": "jonas@example.com", "password": PASSWORD}),
    )
    .json()
    .unwrap();
    let token = session["token"].as_str().unwrap();
    let set = http
        .put(server.url("/sessions/current/locale"))
        .bearer_auth(token)
        .json(&json!({"locale": "fr-FR"}))
        .send()
        .unwrap();
    assert_eq!(set.status(), 200);
    let set: serde_json::Value = set.json().unwrap();
    assert_eq!(set["locale"], "fr-FR");
    let bad = http
        .put(server.url("/sessions/current/locale"))
        .bearer_auth(token)
        .json(&json!({"locale": "<script>"}))
        .send()
        .unwrap();
    assert_eq!(bad.status(), 400);
    let bad: serde_json::Value = bad.json().unwrap();
    assert_eq!(bad["code"], "locale_invalid", "{bad}");
    let me: serde_json::Value = http
        .get(server.url("/sessions/current"))
        .bearer_auth(token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(me["locale"], "fr-FR");
    assert_eq!(me["time_zone"], serde_json::Value::Null, "no zone yet: UTC");

    // And its time zone: the times in its mail are written there (Kolkata keeps no summer time).
    let zone = |zone: &str, language: &str| {
        http.put(server.url("/sessions/current/time_zone"))
            .bearer_auth(token)
            .header("Accept-Language", language)
            .json(&json!({"time_zone": zone}))
            .send()
            .unwrap()
    };
    let set = zone("asia/kolkata", "en");
    assert_eq!(set.status(), 200);
    let set: serde_json::Value = set.json().unwrap();
    assert_eq!(set["time_zone"], "Asia/Kolkata", "the tz database's spelling");
    let bad = zone("Mars/Olympus", "de");
    assert_eq!(bad.status(), 400);
    let bad: serde_json::Value = bad.json().unwrap();
    assert_eq!(bad["code"], "time_zone_invalid", "{bad}");
    assert!(bad["message"].as_str().unwrap().contains("keine Zeitzone"), "{bad}");
    assert_eq!(
        post("/users/password/forgot", "de", json!({"email": "jonas@example.com"})).status(),
        202
    );
    let mail = smtp.wait_for_mail(
        "jonas@example.com",
        "Réinitialisez votre mot de passe Rekey",
        1,
        Duration::from_secs(30),
    );
    assert_eq!(mail[0].header("Content-Language"), Some("fr"));
    let text = mail[0].text.as_deref().unwrap();
    assert!(text.contains(" IST le "), "the expiry in Kolkata's time: {text}");
    assert!(!text.contains("UTC"), "{text}");

    // An operator moves the Spanish account to the install's language, and on to German.
    server.terminate();
    assert!(admin(&data, &["users", "list"]).contains(" es "));
    admin(&data, &["users", "locale", "sol@example.com", "default"]);
    let listed = admin(&data, &["users", "list", "--json"]);
    assert!(listed.contains("\"locale\": null"), "{listed}");
    let said = admin(&data, &["users", "locale", "sol@example.com", "de"]);
    assert!(said.contains("now written in de"), "{said}");
    let said = admin(&data, &["users", "time-zone", "sol@example.com", "America/Sao_Paulo"]);
    assert!(said.contains("now written in America/Sao_Paulo"), "{said}");
    let listed = admin(&data, &["users", "list", "--json"]);
    assert!(listed.contains("\"time_zone\": \"America/Sao_Paulo\""), "{listed}");
}

#[test]
fn refusals_come_in_the_language_the_request_asks_for() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, None, Setup::default());
    let http = server.http();
    let sign_in = |language: Option<&str>| {
        let mut request = http.post(server.url("/sessions"));
        if let Some(language) = language {
            request = request.header("Accept-Language", language);
        }
        let r = request
            .json(&json!({"email": "nobody@example.com", "password": PASSWORD}))
            .send()
            .unwrap();
        assert_eq!(r.status(), 401);
        let content_language = r.headers()["content-language"].to_str().unwrap().to_string();
        let vary = r.headers()["vary"].to_str().unwrap().to_string();
        assert!(vary.contains("Accept-Language"), "{vary}");
        let body: serde_json::Value = r.json().unwrap();
        assert_eq!(
            body["code"], "bad_credentials",
            "the code does not change with the words"
        );
        (content_language, body["message"].as_str().unwrap().to_string())
    };
    assert_eq!(
        sign_in(Some("de-DE,de;q=0.9")),
        (
            "de".into(),
            "Diese E-Mail-Adresse und dieses Passwort passen zu keinem Konto.".into()
        )
    );
    assert_eq!(
        sign_in(Some("fr-CA")),
        (
            "fr".into(),
            "Cette adresse e-mail et ce mot de passe ne correspondent à aucun compte.".into()
        )
    );
    let english = (
        "en".to_string(),
        "That email and password do not match an account.".to_string(),
    );
    assert_eq!(sign_in(None), english, "no Accept-Language: the install's language");
    assert_eq!(
        sign_in(Some("ja")),
        english,
        "no words for Japanese: the install's language"
    );

    // A refusal with values, in Spanish.
    let r = http
        .post(server.url("/users"))
        .header("Accept-Language", "es")
        .json(&json!({"email": "ana@example.com", "password": "corta"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    let refusal: serde_json::Value = r.json().unwrap();
    assert_eq!(refusal["code"], "password_too_short");
    assert!(
        refusal["message"]
            .as_str()
            .unwrap()
            .starts_with("Use al menos 15 caracteres (esta tiene 5)"),
        "{refusal}"
    );
}

/// `rekeyd --data-dir DATA ARGS…` with none of the caller's `REKEY_*` settings.
fn rekeyd(data: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rekeyd"));
    c.arg("--data-dir").arg(data).args(args);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("REKEY_")) {
        c.env_remove(k);
    }
    c
}

/// Runs an admin command on `data` (a password on stdin, for `users add`); returns its output.
fn admin(data: &Path, args: &[&str]) -> String {
    let mut c = rekeyd(data, args);
    c.env("REKEY_ARGON2_MEMORY_KIB", "8192")
        .env("REKEY_ARGON2_ITERATIONS", "1");
    let out = c
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(format!("{PASSWORD}\n").as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(
        out.status.success(),
        "rekeyd {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The score SpamAssassin's local rules (`spamassassin -L`: no network tests) give `raw`.
fn spam_score(dir: &Path, raw: &str) -> f64 {
    let message = dir.join("scored.eml");
    std::fs::write(&message, raw).unwrap();
    let out = Command::new("spamassassin")
        .args(["-L", "-t"])
        .stdin(std::fs::File::open(&message).unwrap())
        .output()
        .expect("spamassassin runs (apt-get install spamassassin)");
    let report = String::from_utf8_lossy(&out.stdout);
    let status = report
        .lines()
        .find(|l| l.starts_with("X-Spam-Status:"))
        .unwrap_or_else(|| panic!("SpamAssassin says nothing: {report}"));
    status
        .split("score=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no score in {status}"))
}

/// `rekeyd config check` with `env` set, from a clean environment.
fn config_check(data: &Path, env: &[(&str, &str)]) -> (bool, String) {
    let mut c = rekeyd(data, &["config", "check"]);
    c.env("REKEY_MAIL_FROM", FROM);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

#[test]
fn config_check_names_a_bad_dkim_key_or_a_missing_selector() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (key, _) = key_pair(dir.path(), "rsa");
    let key = key.to_str().unwrap();

    let (ok, said) = config_check(
        &data,
        &[("REKEY_DKIM_KEY_FILE", key), ("REKEY_DKIM_SELECTOR", SELECTOR)],
    );
    assert!(ok, "{said}");
    assert!(
        said.contains("mail2026._domainkey.example.com"),
        "says where the public key goes: {said}"
    );

    // The older PKCS#1 form (`BEGIN RSA PRIVATE KEY`) that many DKIM guides make.
    let traditional = dir.path().join("traditional.pem");
    openssl(&["genrsa", "-traditional", "-out", traditional.to_str().unwrap(), "2048"]);
    assert!(std::fs::read_to_string(&traditional)
        .unwrap()
        .contains("BEGIN RSA PRIVATE KEY"));
    let traditional = traditional.to_str().unwrap();
    let (ok, said) = config_check(
        &data,
        &[("REKEY_DKIM_KEY_FILE", traditional), ("REKEY_DKIM_SELECTOR", SELECTOR)],
    );
    assert!(ok, "{said}");

    let (ok, said) = config_check(&data, &[("REKEY_DKIM_KEY_FILE", key)]);
    assert!(!ok);
    assert!(
        said.contains("REKEY_DKIM_SELECTOR") && said.contains("is needed"),
        "{said}"
    );

    let not_a_key = dir.path().join("cert.pem");
    std::fs::write(
        &not_a_key,
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let (ok, said) = config_check(
        &data,
        &[
            ("REKEY_DKIM_KEY_FILE", not_a_key.to_str().unwrap()),
            ("REKEY_DKIM_SELECTOR", SELECTOR),
        ],
    );
    assert!(!ok);
    assert!(
        said.contains("REKEY_DKIM_KEY_FILE") && said.contains("not an RSA or Ed25519 private key"),
        "{said}"
    );
    assert!(
        !said.contains("MIIB"),
        "the file's contents stay out of the message: {said}"
    );

    // An operator's message files are checked too, naming the file, the line and the key.
    let messages = dir.path().join("messages");
    std::fs::create_dir(&messages).unwrap();
    std::fs::write(
        messages.join("de.ftl"),
        "reset-subject = Neues Passwort\nreset-subjekt = Tippfehler\n",
    )
    .unwrap();
    let (ok, said) = config_check(&data, &[("REKEY_MESSAGES_DIR", messages.to_str().unwrap())]);
    assert!(!ok);
    assert!(
        said.contains("REKEY_MESSAGES_DIR")
            && said.contains("de.ftl line 2")
            && said.contains("unknown message 'reset-subjekt'"),
        "{said}"
    );
    std::fs::write(
        messages.join("de.ftl"),
        "reset-subject = Neues Passwort für { $product }\n",
    )
    .unwrap();
    let (ok, said) = config_check(
        &data,
        &[
            ("REKEY_MESSAGES_DIR", messages.to_str().unwrap()),
            ("REKEY_LOCALE", "de-AT"),
        ],
    );
    assert!(ok, "{said}");

    let small = dir.path().join("small.pem");
    openssl(&["genrsa", "-out", small.to_str().unwrap(), "512"]);
    let (ok, said) = config_check(
        &data,
        &[
            ("REKEY_DKIM_KEY_FILE", small.to_str().unwrap()),
            ("REKEY_DKIM_SELECTOR", SELECTOR),
        ],
    );
    assert!(!ok);
    assert!(said.contains("512 bits"), "{said}");
}
