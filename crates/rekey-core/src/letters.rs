//! The mail Rekey sends: multipart text + HTML, HTML-escaped, with Date and Message-ID, marked
//! as automatic (RFC 3834) and signed with DKIM when the operator has a key.

use std::fmt;
use std::sync::Arc;

use lettre::message::dkim::DkimConfig;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::Message;
use time::macros::format_description;
use time::OffsetDateTime;
use url::Url;

use crate::token::format_code;

/// A rendered message, ready for the outbox.
#[derive(Debug, Clone)]
pub struct Letter {
    /// Envelope sender (bare address).
    pub from: String,
    /// Envelope recipient (bare address).
    pub to: String,
    /// The whole message as sent.
    pub raw: Vec<u8>,
}

/// Who the mail is from: the operator's sender, the product's name in the words, a support
/// line, and the DKIM key that signs it.
#[derive(Clone)]
pub struct Sender {
    from: Mailbox,
    product: String,
    support: Option<String>,
    dkim: Option<Arc<DkimConfig>>,
}

impl fmt::Debug for Sender {
    // Not derived: the DKIM key must never reach a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("from", &self.from.to_string())
            .field("product", &self.product)
            .field("support", &self.support)
            .field("dkim", &self.dkim.is_some())
            .finish()
    }
}

impl Sender {
    /// The sender the settings describe (reading the DKIM key, whose domain is `mail_from`'s).
    pub fn new(config: &crate::config::Config) -> Result<Sender, LetterError> {
        let mut sender = Sender::plain(&config.mail_from)?;
        sender.product = config.product_name.clone();
        sender.support = config.support_contact.clone();
        if let (Some(file), Some(selector)) = (&config.dkim_key_file, &config.dkim_selector) {
            let key = crate::dkim::load_key(file).map_err(|e| LetterError(format!("dkim_key_file {e}")))?;
            let domain = sender.from.email.domain().to_string();
            sender.dkim = Some(Arc::new(crate::dkim::signer(key, selector, &domain)));
        }
        Ok(sender)
    }

    /// Mail from `from` under Rekey's own name, unsigned.
    pub fn plain(from: &str) -> Result<Sender, LetterError> {
        Ok(Sender {
            from: from.parse().map_err(|e| LetterError(format!("sender {from:?}: {e}")))?,
            product: "Rekey".to_string(),
            support: None,
            dkim: None,
        })
    }

    /// The product's name, as mail says it.
    pub fn product(&self) -> &str {
        &self.product
    }
}

/// What a mail with a link and a code needs (a reset, or finishing a new account).
pub struct LinkLetter<'a> {
    /// The account's address.
    pub to: &'a str,
    /// The JWT.
    pub token: &'a str,
    /// The code, 8 characters.
    pub code: &'a str,
    /// When link and code stop working (Unix seconds).
    pub expires_at: i64,
    /// Their lifetime in seconds, for "valid for 30 minutes".
    pub ttl: i64,
    /// `rekeyd serve`'s public address, for the https landing link.
    pub public_url: Option<&'a Url>,
}

/// The words around the link, the code and the expiry, which differ between mails.
struct LinkWords {
    subject: String,
    /// "Someone asked to … for" (the address follows).
    lead: String,
    /// What opening the link does.
    open: &'static str,
    app_button: String,
    browser_button: &'static str,
    /// After "The link and the code work once, until …."
    after_until: &'static str,
    /// "If you did not ask for this, …"
    ignore: &'static str,
}

/// A mail that carries a deep link, the landing link when there is one, and the code.
fn link_mail(
    sender: &Sender,
    l: &LinkLetter,
    deep: String,
    landing: Option<String>,
    w: LinkWords,
) -> Result<Letter, LetterError> {
    let code = format_code(l.code);
    let until = format!("{} ({} after you asked)", when(l.expires_at), span(l.ttl));
    let mut text = format!(
        "{lead} {to}.\n\n{open}, open this link on the computer where {product} is installed:\n\n{deep}\n\n",
        lead = w.lead,
        to = l.to,
        open = w.open,
        product = sender.product
    );
    if let Some(link) = &landing {
        text.push_str(&format!("Or open it in a web browser:\n\n{link}\n\n"));
    }
    text.push_str(&format!(
        "If the link does not open, choose \"Enter a code instead\" in {product} and type:\n\n    {code}\n\n\
         The link and the code work once, until {until}.{after}\n\n{ignore}\n",
        product = sender.product,
        after = w.after_until,
        ignore = w.ignore
    ));
    let mut html = format!(
        "<!doctype html><html><body style=\"font-family:sans-serif;line-height:1.5;color:#1b1f24\">\
         <p>{} <strong>{}</strong>.</p>\
         <p>{}, open this link on the computer where {} is installed:</p>{}",
        escape(&w.lead),
        escape(l.to),
        escape(w.open),
        escape(&sender.product),
        button(&deep, &w.app_button)
    );
    if let Some(link) = &landing {
        html.push_str(&format!(
            "<p>Or open it in a web browser:</p>{}",
            button(link, w.browser_button)
        ));
    }
    html.push_str(&format!(
        "<p>If the link does not open, choose “Enter a code instead” in {} and type:</p>\
         <p style=\"font-size:24px;font-family:monospace;letter-spacing:3px\"><strong>{}</strong></p>\
         <p>The link and the code work once, until {}.{}</p>\
         <p style=\"color:#555\">{}</p></body></html>",
        escape(&sender.product),
        escape(&code),
        escape(&until),
        escape(w.after_until),
        escape(w.ignore)
    ));
    build(sender, l.to, &w.subject, text, html)
}

/// Why a letter could not be made (a bad sender or recipient address).
#[derive(Debug, thiserror::Error)]
#[error("cannot address the mail: {0}")]
pub struct LetterError(String);

/// The deep link that opens the desktop app on the reset page.
pub fn deep_link(token: &str) -> String {
    format!("rekey://reset?token={token}")
}

/// The https landing link; the token rides in the fragment, which browsers never send.
pub fn landing_link(public_url: &Url, token: &str) -> String {
    format!("{}/reset#token={token}", public_url.as_str().trim_end_matches('/'))
}

/// `14:05 UTC on 26 November 2026`.
pub fn when(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(format_description!(
                "[hour]:[minute] UTC on [day padding:none] [month repr:long] [year]"
            ))
            .ok()
        })
        .unwrap_or_else(|| format!("{unix} (Unix time)"))
}

/// `30 minutes`, `2 hours`, `1 hour 30 minutes`.
pub fn span(seconds: i64) -> String {
    let (h, m) = (seconds / 3600, (seconds % 3600) / 60);
    let unit = |n: i64, one: &str| format!("{n} {one}{}", if n == 1 { "" } else { "s" });
    match (h, m) {
        (0, m) => unit(m.max(1), "minute"),
        (h, 0) => unit(h, "hour"),
        (h, m) => format!("{} {}", unit(h, "hour"), unit(m, "minute")),
    }
}

/// Escapes text for HTML bodies and attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The reset mail.
pub fn reset(sender: &Sender, l: &LinkLetter) -> Result<Letter, LetterError> {
    let product = &sender.product;
    let words = LinkWords {
        subject: format!("Reset your {product} password"),
        lead: format!("Someone asked to reset the password of the {product} account for"),
        open: "To choose a new password",
        app_button: format!("Open {product} to reset your password"),
        browser_button: "Reset in the browser",
        after_until: "",
        ignore: "If you did not ask for this, ignore this mail: your password stays as it is and nobody else can use this link.",
    };
    let landing = l.public_url.map(|u| landing_link(u, l.token));
    link_mail(sender, l, deep_link(l.token), landing, words)
}

/// The deep link that opens the desktop app to finish creating an account.
pub fn verify_deep_link(token: &str) -> String {
    format!("rekey://verify?token={token}")
}

/// The https landing link that finishes creating an account in a browser.
pub fn verify_landing_link(public_url: &Url, token: &str) -> String {
    format!("{}/verify#token={token}", public_url.as_str().trim_end_matches('/'))
}

/// The mail that finishes creating an account: proof that the address is the person's.
pub fn verify(sender: &Sender, l: &LinkLetter) -> Result<Letter, LetterError> {
    let product = &sender.product;
    let words = LinkWords {
        subject: format!("Finish creating your {product} account"),
        lead: format!("Someone asked to create a {product} account for"),
        open: "To finish",
        app_button: format!("Open {product} to finish"),
        browser_button: "Finish in the browser",
        after_until: " Until then the account cannot sign in.",
        ignore: "If you did not ask for this, ignore this mail: no account is made for this address.",
    };
    let landing = l.public_url.map(|u| verify_landing_link(u, l.token));
    link_mail(sender, l, verify_deep_link(l.token), landing, words)
}

/// What an address that already has an account gets when someone tries to register it.
pub fn account_exists(sender: &Sender, to: &str, at: i64) -> Result<Letter, LetterError> {
    let product = &sender.product;
    let text = format!(
        "Someone tried to create a {product} account for {to} at {}, but this address already has one.\n\n\
         If it was you: sign in with your password, or choose \"Forgot password\" in {product} to reset it.\n\n\
         If it was not you, you can ignore this mail: nothing was changed.\n",
        when(at)
    );
    let html = format!(
        "<!doctype html><html><body style=\"font-family:sans-serif;line-height:1.5;color:#1b1f24\">\
         <p>Someone tried to create a {product} account for <strong>{}</strong> at {}, but this address \
         already has one.</p>\
         <p>If it was you: sign in with your password, or choose “Forgot password” in {product} to reset it.</p>\
         <p style=\"color:#555\">If it was not you, you can ignore this mail: nothing was changed.</p>\
         </body></html>",
        escape(to),
        escape(&when(at)),
        product = escape(product)
    );
    build(sender, to, &format!("You already have a {product} account"), text, html)
}

/// A mail button: a link styled to be seen.
fn button(href: &str, label: &str) -> String {
    format!(
        "<p><a href=\"{}\" style=\"display:inline-block;padding:10px 18px;background:#2456d6;color:#fff;border-radius:6px;text-decoration:none\">{}</a></p>",
        escape(href),
        escape(label)
    )
}

/// The "your password was changed" notice.
pub fn password_changed(sender: &Sender, to: &str, at: i64, how: &str) -> Result<Letter, LetterError> {
    let product = &sender.product;
    let text = format!(
        "The password of the {product} account for {to} was changed at {} ({how}).\n\n\
         You were signed out everywhere; sign in again with the new password.\n\n\
         Wasn't you? Someone may have access to your mail. Reset your password right away \
         (\"Forgot password\" in {product}) and secure your mail account.\n",
        when(at)
    );
    let html = format!(
        "<!doctype html><html><body style=\"font-family:sans-serif;line-height:1.5;color:#1b1f24\">\
         <p>The password of the {product} account for <strong>{}</strong> was changed at {} ({}).</p>\
         <p>You were signed out everywhere; sign in again with the new password.</p>\
         <p><strong>Wasn't you?</strong> Someone may have access to your mail. Reset your password right away \
         (“Forgot password” in {product}) and secure your mail account.</p></body></html>",
        escape(to),
        escape(&when(at)),
        escape(how),
        product = escape(product)
    );
    build(sender, to, &format!("Your {product} password was changed"), text, html)
}

/// A test message for `rekeyd mail test`.
pub fn test(sender: &Sender, to: &str, at: i64) -> Result<Letter, LetterError> {
    let product = &sender.product;
    let text = format!(
        "This is a test message from {product}, sent at {}. Mail delivery works.\n",
        when(at)
    );
    let html = format!("<p>{}</p>", escape(&text));
    build(sender, to, &format!("{product} test message"), text, html)
}

/// `Auto-Submitted: auto-generated` (RFC 3834): a machine wrote this, so vacation replies
/// and other auto-responders stay quiet.
fn auto_submitted() -> HeaderValue {
    HeaderValue::new(
        HeaderName::new_from_ascii_str("Auto-Submitted"),
        "auto-generated".into(),
    )
}

/// `Content-Language` (RFC 3282): the language the words are in.
fn content_language(tag: &str) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str("Content-Language"), tag.into())
}

fn build(sender: &Sender, to: &str, subject: &str, mut text: String, mut html: String) -> Result<Letter, LetterError> {
    if let Some(support) = &sender.support {
        text.push_str(&format!("\nNeed help? {support}\n"));
        let end = html.rfind("</body>").unwrap_or(html.len());
        html.insert_str(
            end,
            &format!("<p style=\"color:#555\">Need help? {}</p>", escape(support)),
        );
    }
    let from_box = sender.from.clone();
    let to_box: Mailbox = to.parse().map_err(|e| LetterError(format!("recipient: {e}")))?;
    let domain = from_box.email.domain().to_string();
    let mut message = Message::builder()
        .from(from_box.clone())
        .to(to_box.clone())
        .subject(subject)
        .date_now()
        .message_id(Some(format!("<{}@{domain}>", crate::token::random_id())))
        .raw_header(auto_submitted())
        .raw_header(content_language("en"))
        .multipart(
            MultiPart::alternative()
                .singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(text))
                .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(html)),
        )
        .map_err(|e| LetterError(e.to_string()))?;
    if let Some(dkim) = &sender.dkim {
        message.sign(dkim);
    }
    Ok(Letter {
        from: from_box.email.to_string(),
        to: to_box.email.to_string(),
        raw: message.formatted(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_mail_has_everything_and_escapes() {
        let url = Url::parse("https://rekey.example.com/base/").unwrap();
        let l = reset(
            &Sender::plain("Rekey <no-reply@example.com>").unwrap(),
            &LinkLetter {
                to: "o'brien@example.com",
                token: "aaa.bbb.ccc",
                code: "ABCDEFGH",
                expires_at: 1_800_000_000,
                ttl: 1800,
                public_url: Some(&url),
            },
        )
        .unwrap();
        let raw = String::from_utf8(l.raw).unwrap();
        assert!(raw.contains("Message-ID: <") && raw.contains("Date: "), "{raw}");
        assert!(raw.contains("multipart/alternative"));
        assert!(raw.contains("rekey://reset?token=3Daaa.bbb.ccc") || raw.contains("rekey://reset?token=aaa.bbb.ccc"));
        assert!(raw.contains("ABCD-EFGH"));
        assert!(raw.contains("o&#39;brien@example.com") || raw.contains("o&#39;brien"));
        assert!(raw.contains("30 minutes"));
    }

    #[test]
    fn every_mail_speaks_the_operators_name_and_says_it_is_automatic() {
        let config = crate::config::Config::from_layers(
            None,
            None,
            &[],
            &[
                ("mail_from", "Example Corp <no-reply@example.com>".into()),
                ("product_name", "Example & Co".into()),
                ("support_contact", "help@example.com".into()),
            ],
        )
        .unwrap();
        let sender = Sender::new(&config).unwrap();
        let link = LinkLetter {
            to: "a@example.com",
            token: "t",
            code: "ABCDEFGH",
            expires_at: 1_800_000_000,
            ttl: 1800,
            public_url: None,
        };
        let mails = [
            reset(&sender, &link).unwrap(),
            verify(&sender, &link).unwrap(),
            account_exists(&sender, "a@example.com", 1_800_000_000).unwrap(),
            password_changed(&sender, "a@example.com", 1_800_000_000, "reset link").unwrap(),
            test(&sender, "a@example.com", 1_800_000_000).unwrap(),
        ];
        for mail in mails {
            let raw = String::from_utf8(mail.raw).unwrap();
            assert!(raw.contains("Auto-Submitted: auto-generated\r\n"), "{raw}");
            assert!(raw.contains("Content-Language: en\r\n"), "{raw}");
            assert!(raw.contains("Example & Co"), "the name in the text: {raw}");
            assert!(raw.contains("Example &amp; Co"), "escaped in the HTML: {raw}");
            assert!(!raw.contains("Rekey"), "no word of Rekey: {raw}");
            assert!(raw.contains("Need help? help@example.com"), "{raw}");
            assert!(!raw.contains("DKIM-Signature"), "no key, no signature");
        }
    }

    #[test]
    fn spans_in_words() {
        assert_eq!(span(1800), "30 minutes");
        assert_eq!(span(3600), "1 hour");
        assert_eq!(span(5400), "1 hour 30 minutes");
        assert_eq!(span(86400), "24 hours");
    }
}
