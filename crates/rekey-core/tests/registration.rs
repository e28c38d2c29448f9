//! New accounts asked for by anyone: one answer, and the mail finishes it. Against a real SMTP
//! server and a real store.

mod common;

use common::*;
use rekey_core::service::{VerifyProof, VerifyTarget};
use rekey_core::Error;

const VERIFY_SUBJECT: &str = "Finish creating your Rekey account";
const EXISTS_SUBJECT: &str = "You already have a Rekey account";

/// The token in a verification mail's deep link.
fn verify_token(mail: &rekey_testkit::CapturedMail) -> String {
    let text = mail.text.as_deref().unwrap();
    let start = text.find("rekey://verify?token=").expect("a verify link") + "rekey://verify?token=".len();
    text[start..].split_whitespace().next().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_address_gets_a_link_that_finishes_the_account_once() {
    let scene = Scene::new(&[]);
    let rekey = &scene.rekey;
    rekey
        .request_account("Nia@Example.com", PASSWORD, None, "c")
        .await
        .unwrap();
    // Not an account yet: no sign-in, no reset mail.
    assert_eq!(
        rekey.sign_in("nia@example.com", PASSWORD, "c").await,
        Err(Error::BadCredentials)
    );
    rekey.drain().await.unwrap();
    let mail = mails_to(&scene.smtp, "nia@example.com", VERIFY_SUBJECT, 1).remove(0);
    let token = verify_token(&mail);
    let code = mail.reset_code();
    assert!(!code.is_empty());
    // Opening the link says whose it is and consumes nothing.
    let target: VerifyTarget = rekey.inspect_verify_link(&token).await.unwrap();
    assert_eq!(target.email, "nia@example.com");
    rekey.inspect_verify_link(&token).await.unwrap();
    // A reset token is not a verification token, and the other way round.
    assert_eq!(
        rekey.inspect_reset_link(&token).await.unwrap_err().code(),
        "token_wrong_audience"
    );
    let user = rekey
        .verify_account(VerifyProof::Token(token.clone()), PASSWORD, "c")
        .await
        .unwrap();
    assert_eq!(user.email, "nia@example.com");
    rekey.sign_in("nia@example.com", PASSWORD, "c").await.unwrap();
    // Once.
    let again = rekey
        .verify_account(VerifyProof::Token(token), PASSWORD, "c")
        .await
        .unwrap_err();
    assert_eq!(again, Error::AccountVerified);
    let by_code = VerifyProof::Code {
        email: "nia@example.com".into(),
        code,
    };
    assert_eq!(
        rekey.verify_account(by_code, PASSWORD, "c").await.unwrap_err(),
        Error::CodeInvalid
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_address_with_an_account_gets_a_notice_and_nothing_changes() {
    let scene = Scene::new(&[]);
    let rekey = &scene.rekey;
    rekey
        .create_account("owen@example.com", PASSWORD, None, "admin")
        .await
        .unwrap();
    // The same answer as for a new address: Ok, whatever the password.
    rekey
        .request_account("owen@example.com", "a different passphrase entirely", None, "stranger")
        .await
        .unwrap();
    rekey.drain().await.unwrap();
    let notice = mails_to(&scene.smtp, "owen@example.com", EXISTS_SUBJECT, 1).remove(0);
    let text = notice.text.as_deref().unwrap();
    assert!(text.contains("sign in") && text.contains("Forgot password"), "{text}");
    assert!(!text.contains("rekey://"), "no link that does anything");
    rekey.sign_in("owen@example.com", PASSWORD, "c").await.unwrap();
    assert_eq!(
        rekey
            .sign_in("owen@example.com", "a different passphrase entirely", "c")
            .await,
        Err(Error::BadCredentials)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_later_request_replaces_the_pending_one_and_the_code_works_too() {
    let scene = Scene::new(&[]);
    let rekey = &scene.rekey;
    rekey
        .request_account("pia@example.com", "the squatter's own passphrase", None, "stranger")
        .await
        .unwrap();
    rekey.drain().await.unwrap();
    rekey
        .request_account("pia@example.com", PASSWORD, None, "pia")
        .await
        .unwrap();
    rekey.drain().await.unwrap();
    let mails = mails_to(&scene.smtp, "pia@example.com", VERIFY_SUBJECT, 2);
    // The first link (the stranger asked, but only Pia reads her mail) is replaced.
    let first = verify_token(&mails[0]);
    assert_eq!(
        rekey.inspect_verify_link(&first).await.unwrap_err(),
        Error::TokenReplaced
    );
    let code = mails[1].reset_code();
    let wrong = if code == "AAAA-AAAA" { "BBBB-BBBB" } else { "AAAA-AAAA" };
    let proof = |c: &str| VerifyProof::Code {
        email: "pia@example.com".into(),
        code: c.into(),
    };
    assert_eq!(
        rekey.verify_account(proof(wrong), PASSWORD, "pia").await.unwrap_err(),
        Error::CodeInvalid
    );
    rekey.verify_account(proof(&code), PASSWORD, "pia").await.unwrap();
    rekey.sign_in("pia@example.com", PASSWORD, "pia").await.unwrap();
    assert_eq!(
        rekey
            .sign_in("pia@example.com", "the squatter's own passphrase", "x")
            .await,
        Err(Error::BadCredentials)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pending_account_expires_and_an_administrator_can_make_it_at_once() {
    let scene = Scene::new(&[]);
    let rekey = &scene.rekey;
    rekey
        .request_account("quin@example.com", PASSWORD, None, "c")
        .await
        .unwrap();
    rekey.drain().await.unwrap();
    let token = verify_token(&mails_to(&scene.smtp, "quin@example.com", VERIFY_SUBJECT, 1)[0]);
    scene.clock.advance(31 * 60 + 60);
    assert!(rekey.prune().await.unwrap() >= 1);
    assert!(rekey.sled().unwrap().pending.is_empty(), "the pending account went");
    assert_eq!(
        rekey
            .verify_account(VerifyProof::Token(token), PASSWORD, "c")
            .await
            .unwrap_err()
            .code(),
        "token_expired"
    );
    // An administrator's account needs no mail, and replaces a pending registration.
    rekey
        .request_account("quin@example.com", PASSWORD, None, "c")
        .await
        .unwrap();
    rekey.drain().await.unwrap();
    let token = verify_token(&mails_to(&scene.smtp, "quin@example.com", VERIFY_SUBJECT, 2)[1]);
    rekey
        .create_account("quin@example.com", PASSWORD, None, "admin")
        .await
        .unwrap();
    assert!(rekey.sled().unwrap().pending.is_empty());
    assert!(rekey
        .verify_account(VerifyProof::Token(token), PASSWORD, "c")
        .await
        .is_err());
    rekey.sign_in("quin@example.com", PASSWORD, "c").await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stranger_who_asked_for_your_address_cannot_have_you_finish_his_account() {
    let scene = Scene::new(&[]);
    let rekey = &scene.rekey;
    // A stranger asks for Rae's address with a password of his own...
    rekey
        .request_account("rae@example.com", "the stranger's own passphrase", None, "stranger")
        .await
        .unwrap();
    rekey.drain().await.unwrap();
    let unasked = verify_token(&mails_to(&scene.smtp, "rae@example.com", VERIFY_SUBJECT, 1)[0]);
    // ...and Rae, finding the mail, finishes it with her password: refused, nothing made.
    let e = rekey
        .verify_account(VerifyProof::Token(unasked.clone()), PASSWORD, "rae")
        .await
        .unwrap_err();
    assert_eq!(e, Error::PasswordMismatch);
    assert!(e.message().contains("ignore the mail"), "{}", e.message());
    assert_eq!(
        rekey
            .sign_in("rae@example.com", "the stranger's own passphrase", "stranger")
            .await,
        Err(Error::BadCredentials)
    );
    // She asks herself, with her password: her link, her account.
    rekey
        .request_account("rae@example.com", PASSWORD, None, "rae")
        .await
        .unwrap();
    rekey.drain().await.unwrap();
    let hers = verify_token(&mails_to(&scene.smtp, "rae@example.com", VERIFY_SUBJECT, 2)[1]);
    assert_eq!(
        rekey
            .verify_account(VerifyProof::Token(unasked), PASSWORD, "rae")
            .await
            .unwrap_err(),
        Error::TokenReplaced
    );
    rekey
        .verify_account(VerifyProof::Token(hers), PASSWORD, "rae")
        .await
        .unwrap();
    rekey.sign_in("rae@example.com", PASSWORD, "rae").await.unwrap();
    assert_eq!(
        rekey
            .sign_in("rae@example.com", "the stranger's own passphrase", "stranger")
            .await,
        Err(Error::BadCredentials)
    );
}
