//! The reset flow end to end: real sled on disk, real SMTP server over each TLS mode.

mod common;

use common::*;
use rekey_core::service::ResetProof;
use rekey_core::token::TokenError;
use rekey_core::Error;
use rekey_testkit::SmtpCapture;

async fn whole_flow_over(url: String, expect_tls: bool, expect_auth: bool) {
    let smtp_dir = tempfile::tempdir().unwrap();
    let _ = smtp_dir;
    let smtp = SmtpCapture::start();
    let url = url
        .replace("PORT_STARTTLS", &smtp.starttls_port().to_string())
        .replace("PORT_IMPLICIT", &smtp.implicit_port().to_string())
        .replace("PORT_PLAIN", &smtp.plain_port().to_string());
    let dir = tempfile::tempdir().unwrap();
    let public = [("public_url", "https://rekey.example.com/")];
    let (rekey, _clock) = open(config(dir.path(), Some(&url), Some(smtp.ca_pem()), &public));
    rekey
        .create_account("Ada@Example.com", PASSWORD, None, "test")
        .await
        .unwrap();
    let old_session = rekey.sign_in("ada@example.com", PASSWORD, "test").await.unwrap();

    rekey.request_reset("  ADA@example.com ", "test").await.unwrap();
    let report = rekey.drain().await.unwrap();
    assert_eq!(report.sent, 1, "{report:?}");
    let mail = &mails_to(&smtp, "ada@example.com", RESET_SUBJECT, 1)[0];

    assert_eq!(mail.tls, expect_tls);
    assert_eq!(mail.auth_user.is_some(), expect_auth);
    assert!(mail.header("Message-ID").is_some() && mail.header("Date").is_some());
    let html = mail.html.as_deref().expect("an HTML part");
    let text = mail.text.as_deref().unwrap();
    assert!(
        text.contains("ignore this mail") && text.contains("30 minutes"),
        "{text}"
    );
    assert!(html.contains("rekey://reset?token="));
    let token = mail.reset_token();
    let code = mail.reset_code();
    assert!(
        text.contains(&format!("https://rekey.example.com/reset#token={token}")),
        "landing link: {text}"
    );
    assert!(html.contains(&format!("rekey://reset?token={token}")));

    // Opening the link shows whose password it is, and consumes nothing.
    let target = rekey.inspect_reset_link(&token).await.unwrap();
    assert_eq!(target.email, "ada@example.com");
    assert!(rekey.inspect_reset_link(&token).await.is_ok());

    rekey
        .confirm_reset(ResetProof::Token(token.clone()), NEW_PASSWORD, "test")
        .await
        .unwrap();

    assert_eq!(
        rekey.sign_in("ada@example.com", PASSWORD, "test").await,
        Err(Error::BadCredentials)
    );
    rekey.sign_in("ada@example.com", NEW_PASSWORD, "test").await.unwrap();
    assert_eq!(
        rekey.session_user(&old_session.0).await,
        Err(Error::SessionInvalid),
        "old sessions die"
    );
    let again = rekey
        .confirm_reset(ResetProof::Token(token), "another fine passphrase", "test")
        .await;
    assert_eq!(again, Err(Error::TokenUsed));
    let by_code = ResetProof::Code {
        email: "ada@example.com".into(),
        code,
    };
    assert_eq!(
        rekey.confirm_reset(by_code, "another fine passphrase", "test").await,
        Err(Error::CodeInvalid)
    );

    rekey.drain().await.unwrap();
    let notice = &mails_to(&smtp, "ada@example.com", CHANGED_SUBJECT, 1)[0];
    assert!(notice.text.as_deref().unwrap().contains("Wasn't you?"));
    let audit = rekey_core::audit::tail(rekey.sled().unwrap(), 20).unwrap();
    assert!(audit.iter().any(|e| e.kind == "password_reset"), "{audit:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn flow_over_starttls() {
    whole_flow_over("smtp://rekey:s3cret-pass@localhost:PORT_STARTTLS".into(), true, true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn flow_over_implicit_tls() {
    whole_flow_over("smtps://rekey:s3cret-pass@localhost:PORT_IMPLICIT".into(), true, true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn flow_over_loopback_relay() {
    whole_flow_over("smtp+plain://127.0.0.1:PORT_PLAIN".into(), false, false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn reset_by_typed_code_kills_the_link() {
    let scene = Scene::new(&[]);
    let rekey = &scene.rekey;
    let mail = &scene.reset_mail_for_new_account("bo@example.com").await;
    let typed = mail.reset_code().to_lowercase().replace('-', " ");
    let proof = ResetProof::Code {
        email: "BO@example.com".into(),
        code: typed,
    };
    rekey.confirm_reset(proof, NEW_PASSWORD, "test").await.unwrap();
    rekey.sign_in("bo@example.com", NEW_PASSWORD, "test").await.unwrap();
    assert_eq!(
        rekey.inspect_reset_link(&mail.reset_token()).await,
        Err(Error::TokenUsed)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_address_gets_the_same_answer_and_no_mail() {
    let scene = Scene::new(&[]);
    let (rekey, smtp) = (&scene.rekey, &scene.smtp);
    rekey
        .create_account("known@example.com", PASSWORD, None, "test")
        .await
        .unwrap();
    let known = rekey.request_reset("known@example.com", "test").await;
    let unknown = rekey.request_reset("nobody@example.com", "test").await;
    assert_eq!(known, unknown);
    assert_eq!(known, Ok(()));
    rekey.drain().await.unwrap();
    mails_to(smtp, "known@example.com", RESET_SUBJECT, 1);
    assert!(smtp
        .messages()
        .iter()
        .all(|m| !m.rcpt_to.contains(&"nobody@example.com".to_string())));
    // Malformed input is refused in words, with a code.
    let bad = rekey.request_reset("not an address", "test").await.unwrap_err();
    assert_eq!(bad.code(), "email_invalid");
    assert!(bad.message().contains("name@example.com"));
}

/// A request that gets no mail (a stranger's address, or an account over its limit) makes the
/// worker do an account's work on a stand-in, so the work does not tell them apart (the
/// side-channel suite's long run measures that); here: it sends nothing, the stand-ins'
/// mail goes out of their queue, the real queue and its status never see it, and strangers'
/// addresses leave no records behind.
#[tokio::test(flavor = "multi_thread")]
async fn requests_that_get_no_mail_leave_nothing_behind() {
    let scene = Scene::new(&[("limit_address", "2/1h")]);
    let (rekey, smtp) = (&scene.rekey, &scene.smtp);
    rekey
        .create_account("kit@example.com", PASSWORD, None, "test")
        .await
        .unwrap();
    // Three for kit (the third over the limit), three strangers.
    for email in ["kit@example.com", "kit@example.com", "kit@example.com"] {
        rekey.request_reset(email, "test").await.unwrap();
    }
    for i in 0..3 {
        rekey
            .request_reset(&format!("stranger{i}@example.com"), "test")
            .await
            .unwrap();
    }
    rekey.drain().await.unwrap();
    // Two mails, both kit's; the outbox saw nothing else.
    mails_to(smtp, "kit@example.com", RESET_SUBJECT, 2);
    assert_eq!(smtp.messages().len(), 2, "mail went to a stranger");
    let status = rekey.outbox().status().await.unwrap();
    assert_eq!((status.depth, status.dead), (0, 0));
    assert_eq!(rekey.sled().unwrap().counter("outbox.delivered"), 2);
    // Four stand-ins (kit's third, three strangers) went through the motions and out.
    assert_eq!(rekey.sled().unwrap().counter("outbox.stand_ins"), 4);
    let left: Vec<String> = rekey
        .sled()
        .unwrap()
        .stand_ins
        .iter()
        .keys()
        .map(|k| String::from_utf8_lossy(&k.unwrap()).into_owned())
        .collect();
    assert!(
        left.iter()
            .all(|k| k.starts_with("stand-in/") || k.starts_with('\u{fffd}')),
        "{left:?}"
    );
    assert!(left.len() <= 7, "the stand-in tree grows: {left:?}");
    // No record names a stranger's address: no limit, no code, no queued mail.
    let st = rekey.sled().unwrap();
    for (name, tree) in [
        ("limits", &st.limits),
        ("codes", &st.codes),
        ("stand_ins", &st.stand_ins),
        ("outbox", &st.outbox),
        ("audit", &st.audit),
        ("meta", &st.meta),
    ] {
        for entry in tree.iter() {
            let (k, v) = entry.unwrap();
            let text = format!("{}{}", String::from_utf8_lossy(&k), String::from_utf8_lossy(&v));
            assert!(!text.contains("stranger"), "{name} names a stranger: {text}");
        }
    }
    // The one reset kit can use is the newest, and the stand-ins did not touch it.
    assert_eq!(rekey.sled().unwrap().resets.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_intake_refuses_everyone_alike_until_the_worker_catches_up() {
    let scene = Scene::new(&[("intake_limit", "100")]);
    let rekey = &scene.rekey;
    rekey
        .create_account("known@example.com", PASSWORD, None, "test")
        .await
        .unwrap();
    // No worker runs here, so requests pile up to the bound.
    for i in 0..100 {
        rekey.request_reset(&format!("p{i}@example.com"), "test").await.unwrap();
    }
    assert_eq!(rekey.intake_depth(), 100);
    let known = rekey.request_reset("known@example.com", "test").await.unwrap_err();
    let unknown = rekey.request_reset("nobody@example.com", "test").await.unwrap_err();
    assert_eq!(known, unknown, "a full queue says the same for every address");
    assert_eq!(known.code(), "busy");
    assert!(known.message().contains("busy"), "{}", known.message());
    assert_eq!(
        rekey.sled().unwrap().intake.len(),
        100,
        "the refused requests were not queued"
    );
    // Once the worker has handled the queue, requests are taken again, and the known
    // address gets its mail.
    assert_eq!(rekey.process_intake().await.unwrap(), 100);
    assert_eq!(rekey.intake_depth(), 0);
    rekey.request_reset("known@example.com", "test").await.unwrap();
    rekey.drain().await.unwrap();
    mails_to(&scene.smtp, "known@example.com", RESET_SUBJECT, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_newer_request_replaces_the_older_link() {
    let scene = Scene::new(&[]);
    let (rekey, smtp) = (&scene.rekey, &scene.smtp);
    scene.reset_mail_for_new_account("cy@example.com").await;
    rekey.request_reset("cy@example.com", "test").await.unwrap();
    rekey.drain().await.unwrap();
    let mails = mails_to(smtp, "cy@example.com", RESET_SUBJECT, 2);
    let (first, second) = (mails[0].reset_token(), mails[1].reset_token());
    let err = rekey
        .confirm_reset(ResetProof::Token(first), NEW_PASSWORD, "test")
        .await
        .unwrap_err();
    assert_eq!(err, Error::TokenReplaced);
    assert!(err.message().contains("replaced by a newer"));
    // The first mail's code is dead too; the second link works.
    let old_code = ResetProof::Code {
        email: "cy@example.com".into(),
        code: mails[0].reset_code(),
    };
    assert_eq!(
        rekey.confirm_reset(old_code, NEW_PASSWORD, "test").await,
        Err(Error::CodeInvalid)
    );
    rekey
        .confirm_reset(ResetProof::Token(second), NEW_PASSWORD, "test")
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_not_yet_valid_and_stale_links() {
    let scene = Scene::new(&[("reset_ttl", "10m")]);
    let rekey = &scene.rekey;
    let clock = &scene.clock;
    let mail = &scene.reset_mail_for_new_account("di@example.com").await;
    let token = mail.reset_token();

    clock.advance(-3600);
    assert_eq!(
        rekey.inspect_reset_link(&token).await,
        Err(Error::Token(TokenError::NotYetValid))
    );
    clock.advance(3600 + 11 * 60);
    let err = rekey
        .confirm_reset(ResetProof::Token(token.clone()), NEW_PASSWORD, "test")
        .await
        .unwrap_err();
    assert_eq!(err, Error::Token(TokenError::Expired));
    assert_eq!(err.code(), "token_expired");
    let by_code = ResetProof::Code {
        email: "di@example.com".into(),
        code: mail.reset_code(),
    };
    // An expired code answers like a wrong one: the code route says nothing about accounts.
    assert_eq!(
        rekey.confirm_reset(by_code, NEW_PASSWORD, "test").await,
        Err(Error::CodeInvalid)
    );
    clock.advance(-11 * 60);

    // A password change after the mail was sent makes the link stale.
    let session = rekey.sign_in("di@example.com", PASSWORD, "test").await.unwrap();
    rekey
        .change_password(&session.0, PASSWORD, "violet engines hum softly", "test")
        .await
        .unwrap();
    let err = rekey
        .confirm_reset(ResetProof::Token(token), NEW_PASSWORD, "test")
        .await
        .unwrap_err();
    assert_eq!(err.code(), "token_stale");
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_and_damaged_tokens_are_refused_each_in_its_words() {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use base64::Engine;
    use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};

    let scene = Scene::new(&[]);
    let rekey = &scene.rekey;
    let mail = &scene.reset_mail_for_new_account("ed@example.com").await;
    let token = mail.reset_token();
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    let header: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let kid = header["kid"].as_str().unwrap().to_string();
    // The real key, read from the data directory, to forge well-signed but wrong tokens.
    let keys: serde_json::Value =
        serde_json::from_slice(&std::fs::read(scene.dir.path().join("keys.json")).unwrap()).unwrap();
    let secret = STANDARD.decode(keys[0]["secret"].as_str().unwrap()).unwrap();
    let sign = |claims: &serde_json::Value| {
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some(kid.clone());
        encode(&h, claims, &EncodingKey::from_secret(&secret)).unwrap()
    };
    let raw = |header: &str, claims: &serde_json::Value, sig: &str| {
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims.to_string()),
            sig
        )
    };

    let mut cases: Vec<(String, &str)> = vec![
        ("garbage".into(), "token_malformed"),
        (format!("{}.{}", parts[0], parts[1]), "token_malformed"),
        (raw(r#"{"alg":"none","typ":"JWT"}"#, &claims, ""), "token_unsigned"),
        (
            raw(&format!(r#"{{"alg":"HS512","kid":"{kid}"}}"#), &claims, parts[2]),
            "token_wrong_algorithm",
        ),
        (
            raw(&format!(r#"{{"alg":"RS256","kid":"{kid}"}}"#), &claims, parts[2]),
            "token_wrong_algorithm",
        ),
        (
            raw(r#"{"alg":"HS256","kid":"../keys.json"}"#, &claims, parts[2]),
            "token_unknown_key",
        ),
    ];
    let mut tampered = claims.clone();
    tampered["sub"] = "someone-else".into();
    cases.push((
        raw(&format!(r#"{{"alg":"HS256","kid":"{kid}"}}"#), &tampered, parts[2]),
        "token_bad_signature",
    ));
    let mut iss = claims.clone();
    iss["iss"] = "evil".into();
    cases.push((sign(&iss), "token_wrong_issuer"));
    let mut aud = claims.clone();
    aud["aud"] = "login".into();
    cases.push((sign(&aud), "token_wrong_audience"));
    for (bad, code) in cases {
        let err = rekey
            .confirm_reset(ResetProof::Token(bad.clone()), NEW_PASSWORD, "test")
            .await
            .unwrap_err();
        assert_eq!(err.code(), code, "for {bad}");
        assert!(!err.message().is_empty());
    }
    // None of that touched the real reset.
    claims["x"] = 1.into();
    rekey
        .confirm_reset(ResetProof::Token(token), NEW_PASSWORD, "test")
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_confirms_exactly_one_wins() {
    let scene = Scene::new(&[]);
    let rekey = &scene.rekey;
    let mail = &scene.reset_mail_for_new_account("fi@example.com").await;
    let token = mail.reset_token();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (rekey, token) = (rekey.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let pw = format!("racing passphrase number {i}");
            (
                pw.clone(),
                rekey.confirm_reset(ResetProof::Token(token), &pw, "test").await,
            )
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        let (pw, result) = t.await.unwrap();
        match result {
            Ok(()) => winners.push(pw),
            Err(e) => assert!(
                matches!(e, Error::TokenUsed | Error::TokenReplaced | Error::TokenStale),
                "{e:?}"
            ),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one confirm succeeds");
    rekey.sign_in("fi@example.com", &winners[0], "test").await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn five_wrong_codes_retire_the_code_but_never_the_link() {
    let scene = Scene::new(&[]);
    let rekey = &scene.rekey;
    let mail = &scene.reset_mail_for_new_account("gu@example.com").await;
    let right = mail.reset_code();
    let wrong = if right == "AAAA-AAAA" { "BBBB-BBBB" } else { "AAAA-AAAA" };
    let proof = |email: &str, c: &str| ResetProof::Code {
        email: email.into(),
        code: c.into(),
    };
    for _ in 0..5 {
        assert_eq!(
            rekey
                .confirm_reset(proof("gu@example.com", wrong), NEW_PASSWORD, "test")
                .await,
            Err(Error::CodeInvalid)
        );
    }
    // The right code no longer works, and says so in the same words as a wrong one...
    let retired = rekey
        .confirm_reset(proof("gu@example.com", &right), NEW_PASSWORD, "test")
        .await
        .unwrap_err();
    let unknown = rekey
        .confirm_reset(proof("nobody@example.com", &right), NEW_PASSWORD, "test")
        .await
        .unwrap_err();
    assert_eq!((retired.code(), retired.message()), (unknown.code(), unknown.message()));
    assert_eq!(retired, Error::CodeInvalid);
    // ...but the link in the same mail still does.
    assert_eq!(
        rekey.inspect_reset_link(&mail.reset_token()).await.unwrap().email,
        "gu@example.com"
    );
    rekey
        .confirm_reset(ResetProof::Token(mail.reset_token()), NEW_PASSWORD, "test")
        .await
        .unwrap();
    rekey.sign_in("gu@example.com", NEW_PASSWORD, "test").await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_reset_brings_a_fresh_code_and_expired_resets_are_pruned() {
    let scene = Scene::new(&[]);
    let rekey = &scene.rekey;
    let first = scene.reset_mail_for_new_account("ida@example.com").await;
    let wrong = if first.reset_code() == "AAAA-AAAA" {
        "BBBB-BBBB"
    } else {
        "AAAA-AAAA"
    };
    for _ in 0..5 {
        let proof = ResetProof::Code {
            email: "ida@example.com".into(),
            code: wrong.into(),
        };
        let _ = rekey.confirm_reset(proof, NEW_PASSWORD, "test").await;
    }
    // Expired, the reset is pruned; a code for it is refused like any other.
    scene.clock.advance(31 * 60 + 60);
    assert!(
        rekey.prune().await.unwrap() >= 2,
        "the reset and the wrong-code count went"
    );
    assert!(rekey.sled().unwrap().resets.is_empty() && rekey.sled().unwrap().codes.is_empty());
    let expired = ResetProof::Code {
        email: "ida@example.com".into(),
        code: first.reset_code(),
    };
    assert_eq!(
        rekey.confirm_reset(expired, NEW_PASSWORD, "test").await,
        Err(Error::CodeInvalid)
    );
    // A new request: a new code, which works, whatever was typed before.
    let second = scene.next_reset_mail("ida@example.com").await;
    let proof = ResetProof::Code {
        email: "ida@example.com".into(),
        code: second.reset_code(),
    };
    rekey.confirm_reset(proof, NEW_PASSWORD, "test").await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn weak_new_password_is_refused_without_consuming_the_link() {
    let scene = Scene::new(&[]);
    let rekey = &scene.rekey;
    let mail = &scene.reset_mail_for_new_account("hal@example.com").await;
    let token = mail.reset_token();
    let err = rekey
        .confirm_reset(ResetProof::Token(token.clone()), "short", "test")
        .await
        .unwrap_err();
    assert_eq!(err.code(), "password_too_short");
    assert!(err.message().contains("at least 15"));
    let err = rekey
        .confirm_reset(ResetProof::Token(token.clone()), "hal@example.com", "test")
        .await
        .unwrap_err();
    assert!(err.code().starts_with("password_"));
    rekey
        .confirm_reset(ResetProof::Token(token), NEW_PASSWORD, "test")
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn links_name_their_issuer_and_outlive_a_change_of_public_address() {
    let dir = tempfile::tempdir().unwrap();
    let first = [("public_url", "https://old.example.com")];
    let (rekey, _) = open(config(dir.path(), None, None, &first));
    assert_eq!(rekey.issuer(), "https://old.example.com");
    rekey
        .create_account("ivy@example.com", PASSWORD, None, "test")
        .await
        .unwrap();
    rekey.request_reset("ivy@example.com", "test").await.unwrap();
    rekey.drain().await.unwrap();
    drop(rekey);
    let mailbox = dir.path().join("mailbox");
    let raw = std::fs::read_to_string(std::fs::read_dir(&mailbox).unwrap().next().unwrap().unwrap().path()).unwrap();
    let token = rekey_testkit::link_token_in_raw(&raw, "rekey://reset?token=").unwrap();
    // The server moves to a new address: new links say so, and the old one still works.
    std::thread::sleep(std::time::Duration::from_millis(1100)); // sled lets go of its lock
    let (rekey, _) = open(config(
        dir.path(),
        None,
        None,
        &[("public_url", "https://new.example.com")],
    ));
    assert_eq!(rekey.issuer(), "https://new.example.com");
    assert_eq!(
        rekey.issuers(),
        vec!["https://old.example.com", "https://new.example.com"]
    );
    assert_eq!(rekey.inspect_reset_link(&token).await.unwrap().email, "ivy@example.com");
}
