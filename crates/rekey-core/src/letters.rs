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
use crate::words::{Arg, Words};

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
/// line, the language of mail, the words themselves, and the DKIM key that signs it.
#[derive(Clone)]
pub struct Sender {
    from: Mailbox,
    product: String,
    support: Option<String>,
    locale: String,
    /// The reader's time zone (IANA name); `None`: times are written in UTC.
    zone: Option<String>,
    words: Arc<Words>,
    dkim: Option<Arc<DkimConfig>>,
}

impl fmt::Debug for Sender {
    // Not derived: the DKIM key must never reach a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("from", &self.from.to_string())
            .field("product", &self.product)
            .field("support", &self.support)
            .field("locale", &self.locale)
            .field("zone", &self.zone)
            .field("words", &self.words)
            .field("dkim", &self.dkim.is_some())
            .finish()
    }
}

impl Sender {
    /// The sender the settings describe (reading the operator's messages and the DKIM key,
    /// whose domain is `mail_from`'s).
    pub fn new(config: &crate::config::Config) -> Result<Sender, LetterError> {
        let mut sender = Sender::plain(&config.mail_from)?;
        sender.product = config.product_name.clone();
        sender.support = config.support_contact.clone();
        sender.locale = config.locale.clone();
        if config.messages_dir.is_some() {
            let words =
                Words::load(config.messages_dir.as_deref()).map_err(|e| LetterError(format!("messages_dir: {e}")))?;
            sender.words = Arc::new(words);
        }
        if let (Some(file), Some(selector)) = (&config.dkim_key_file, &config.dkim_selector) {
            let key = crate::dkim::load_key(file).map_err(|e| LetterError(format!("dkim_key_file {e}")))?;
            let domain = sender.from.email.domain().to_string();
            sender.dkim = Some(Arc::new(crate::dkim::signer(key, selector, &domain)));
        }
        Ok(sender)
    }

    /// Mail from `from` under Rekey's own name, in English, unsigned.
    pub fn plain(from: &str) -> Result<Sender, LetterError> {
        Ok(Sender {
            from: from.parse().map_err(|e| LetterError(format!("sender {from:?}: {e}")))?,
            product: "Rekey".to_string(),
            support: None,
            locale: "en".to_string(),
            zone: None,
            words: Arc::new(Words::shipped()),
            dkim: None,
        })
    }

    /// The same sender writing times in `zone` (`None`: UTC).
    pub fn in_zone(&self, zone: Option<&str>) -> Sender {
        Sender {
            zone: zone.map(str::to_string),
            ..self.clone()
        }
    }

    /// The same sender writing in `locale` (de-AT → de → en).
    pub fn in_locale(&self, locale: &str) -> Sender {
        Sender {
            locale: locale.to_string(),
            ..self.clone()
        }
    }

    /// The product's name, as mail says it.
    pub fn product(&self) -> &str {
        &self.product
    }

    /// The words mail and pages are written in.
    pub fn words(&self) -> &Words {
        &self.words
    }

    /// The language this sender writes in.
    pub fn locale(&self) -> &str {
        &self.locale
    }

    /// The same sender writing in the language an `Accept-Language` header asks for, among
    /// those there are words for; else in this one's.
    pub fn answering(&self, accept_language: Option<&str>) -> Sender {
        self.in_locale(&self.words.negotiate(accept_language, &self.locale))
    }

    /// A refusal in this sender's language, under the product's name.
    pub fn refusal(&self, e: &crate::Error) -> String {
        e.message_in(&self.words, &self.locale, &self.product)
    }

    /// Message `id` in this sender's language, with the product's name and `args`.
    fn say(&self, id: &str, args: &[(&str, Arg)]) -> String {
        self.words.text(&self.locale, id, &self.with_product(args))
    }

    /// The same as HTML, with the variables named in `strong` in bold.
    fn say_html(&self, id: &str, args: &[(&str, Arg)], strong: &[&str]) -> String {
        self.words.html(&self.locale, id, &self.with_product(args), strong)
    }

    fn with_product<'a>(&'a self, args: &[(&'a str, Arg<'a>)]) -> Vec<(&'a str, Arg<'a>)> {
        let mut all: Vec<(&str, Arg)> = vec![("product", Arg::Text(&self.product))];
        all.extend(args.iter().copied());
        all
    }

    /// A time, the way this sender's language writes it.
    fn when(&self, unix: i64) -> String {
        self.words.when(&self.locale, unix, self.zone.as_deref())
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

/// Which mail with a link: the prefix of its messages (`reset-subject`, `verify-subject`, …).
#[derive(Clone, Copy)]
enum LinkKind {
    Reset,
    Verify,
}

impl LinkKind {
    fn id(self, part: &str) -> String {
        let prefix = match self {
            LinkKind::Reset => "reset",
            LinkKind::Verify => "verify",
        };
        format!("{prefix}-{part}")
    }
}

/// A mail that carries a deep link, the landing link when there is one, and the code.
fn link_mail(
    sender: &Sender,
    l: &LinkLetter,
    deep: String,
    landing: Option<String>,
    kind: LinkKind,
) -> Result<Letter, LetterError> {
    let code = format_code(l.code);
    let until = sender.when(l.expires_at);
    let span = sender.words.span(&sender.locale, l.ttl);
    let address = [("address", Arg::Text(l.to))];
    let once = sender.say("link-once", &[("until", Arg::Text(&until)), ("span", Arg::Text(&span))]);
    let after = match kind {
        LinkKind::Verify => format!(" {}", sender.say("verify-until-then", &[])),
        LinkKind::Reset => String::new(),
    };
    let mut text = format!(
        "{}\n\n{}\n\n{deep}\n\n",
        sender.say(&kind.id("lead"), &address),
        sender.say(&kind.id("open"), &[])
    );
    if let Some(link) = &landing {
        text.push_str(&format!("{}\n\n{link}\n\n", sender.say("link-browser", &[])));
    }
    text.push_str(&format!(
        "{}\n\n    {code}\n\n{once}{after}\n\n{}\n",
        sender.say("link-code", &[]),
        sender.say(&kind.id("ignore"), &[])
    ));
    let mut html = format!(
        "<!doctype html><html><body style=\"font-family:sans-serif;line-height:1.5;color:#1b1f24\">\
         <p>{}</p><p>{}</p>{}",
        sender.say_html(&kind.id("lead"), &address, &["address"]),
        sender.say_html(&kind.id("open"), &[], &[]),
        button(&deep, &sender.say(&kind.id("app-button"), &[]))
    );
    if let Some(link) = &landing {
        html.push_str(&format!(
            "<p>{}</p>{}",
            sender.say_html("link-browser", &[], &[]),
            button(link, &sender.say(&kind.id("browser-button"), &[]))
        ));
    }
    html.push_str(&format!(
        "<p>{}</p>\
         <p style=\"font-size:24px;font-family:monospace;letter-spacing:3px\"><strong>{}</strong></p>\
         <p>{}{}</p>\
         <p style=\"color:#555\">{}</p></body></html>",
        sender.say_html("link-code", &[], &[]),
        escape(&code),
        escape(&once),
        escape(&after),
        sender.say_html(&kind.id("ignore"), &[], &[])
    ));
    build(sender, l.to, &sender.say(&kind.id("subject"), &[]), text, html)
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
    let landing = l.public_url.map(|u| landing_link(u, l.token));
    link_mail(sender, l, deep_link(l.token), landing, LinkKind::Reset)
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
    let landing = l.public_url.map(|u| verify_landing_link(u, l.token));
    link_mail(sender, l, verify_deep_link(l.token), landing, LinkKind::Verify)
}

/// What an address that already has an account gets when someone tries to register it.
pub fn account_exists(sender: &Sender, to: &str, at: i64) -> Result<Letter, LetterError> {
    let time = sender.when(at);
    let args = [("address", Arg::Text(to)), ("time", Arg::Text(&time))];
    let text = format!(
        "{}\n\n{}\n\n{}\n",
        sender.say("exists-lead", &args),
        sender.say("exists-if-you", &[]),
        sender.say("exists-if-not", &[])
    );
    let html = format!(
        "<!doctype html><html><body style=\"font-family:sans-serif;line-height:1.5;color:#1b1f24\">\
         <p>{}</p><p>{}</p><p style=\"color:#555\">{}</p></body></html>",
        sender.say_html("exists-lead", &args, &["address"]),
        sender.say_html("exists-if-you", &[], &[]),
        sender.say_html("exists-if-not", &[], &[])
    );
    build(sender, to, &sender.say("exists-subject", &[]), text, html)
}

/// A mail button: a link styled to be seen.
fn button(href: &str, label: &str) -> String {
    format!(
        "<p><a href=\"{}\" style=\"display:inline-block;padding:10px 18px;background:#2456d6;color:#fff;border-radius:6px;text-decoration:none\">{}</a></p>",
        escape(href),
        escape(label)
    )
}

/// How a password was changed, for the notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangedBy {
    /// The owner, signed in, in the app or on the server.
    Owner,
    /// The link in a reset mail.
    MailedLink,
    /// The typed code from a reset mail.
    MailedCode,
}

impl ChangedBy {
    /// The audit log's words (English, for the operator).
    pub fn audit_words(self) -> &'static str {
        match self {
            ChangedBy::Owner => "changed by the signed-in owner",
            ChangedBy::MailedLink => "reset with the mailed link",
            ChangedBy::MailedCode => "reset with the mailed code",
        }
    }

    fn message(self) -> &'static str {
        match self {
            ChangedBy::Owner => "changed-how-in-app",
            ChangedBy::MailedLink => "changed-how-link",
            ChangedBy::MailedCode => "changed-how-code",
        }
    }
}

/// The "your password was changed" notice.
pub fn password_changed(sender: &Sender, to: &str, at: i64, how: ChangedBy) -> Result<Letter, LetterError> {
    let (time, how) = (sender.when(at), sender.say(how.message(), &[]));
    let args = [
        ("address", Arg::Text(to)),
        ("time", Arg::Text(&time)),
        ("how", Arg::Text(&how)),
    ];
    let text = format!(
        "{}\n\n{}\n\n{} {}\n",
        sender.say("changed-lead", &args),
        sender.say("changed-signed-out", &[]),
        sender.say("changed-not-you", &[]),
        sender.say("changed-act", &[])
    );
    let html = format!(
        "<!doctype html><html><body style=\"font-family:sans-serif;line-height:1.5;color:#1b1f24\">\
         <p>{}</p><p>{}</p><p><strong>{}</strong> {}</p></body></html>",
        sender.say_html("changed-lead", &args, &["address"]),
        sender.say_html("changed-signed-out", &[], &[]),
        sender.say_html("changed-not-you", &[], &[]),
        sender.say_html("changed-act", &[], &[])
    );
    build(sender, to, &sender.say("changed-subject", &[]), text, html)
}

/// A test message for `rekeyd mail test`.
pub fn test(sender: &Sender, to: &str, at: i64) -> Result<Letter, LetterError> {
    let time = sender.when(at);
    let text = format!("{}\n", sender.say("test-body", &[("time", Arg::Text(&time))]));
    let html = format!(
        "<p>{}</p>",
        sender.say_html("test-body", &[("time", Arg::Text(&time))], &[])
    );
    build(sender, to, &sender.say("test-subject", &[]), text, html)
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
    // One line, whatever an operator's message file says: a line break would end the header.
    let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
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
        .raw_header(content_language(sender.words.language_of(&sender.locale)))
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

    /// A link letter for a@example.com, expiring 2026-11-26 14:05 UTC.
    fn sample_link() -> LinkLetter<'static> {
        LinkLetter {
            to: "a@example.com",
            token: "t",
            code: "ABCDEFGH",
            expires_at: 1_795_701_900,
            ttl: 1800,
            public_url: None,
        }
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
        let link = sample_link();
        let mails = [
            reset(&sender, &link).unwrap(),
            verify(&sender, &link).unwrap(),
            account_exists(&sender, "a@example.com", 1_800_000_000).unwrap(),
            password_changed(&sender, "a@example.com", 1_800_000_000, ChangedBy::MailedLink).unwrap(),
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
    fn content_language_names_the_language_the_words_are_in() {
        let english = Sender::plain("Rekey <no-reply@example.com>").unwrap();
        let link = sample_link();
        for (locale, language) in [
            ("en", "en"),
            ("de-AT", "de"),
            ("fr", "fr"),
            ("es-MX", "es"),
            ("pt", "en"),
        ] {
            let raw = String::from_utf8(reset(&english.in_locale(locale), &link).unwrap().raw).unwrap();
            assert!(
                raw.contains(&format!("Content-Language: {language}\r\n")),
                "{locale}: {raw}"
            );
        }
    }

    #[test]
    fn an_operators_subject_over_two_lines_stays_one_header() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("en.ftl"),
            "reset-subject =\n    Your reset\n    Bcc: evil@example.com\n",
        )
        .unwrap();
        let config =
            crate::config::Config::from_layers(None, None, &[], &[("messages_dir", dir.path().display().to_string())])
                .unwrap();
        let sender = Sender::new(&config).unwrap();
        let link = sample_link();
        let raw = String::from_utf8(reset(&sender, &link).unwrap().raw).unwrap();
        assert!(raw.contains("Subject: Your reset Bcc: evil@example.com\r\n"), "{raw}");
        assert!(!raw.contains("\r\nBcc:"), "{raw}");
    }

    #[test]
    fn spans_in_words() {
        assert_eq!(span(1800), "30 minutes");
        assert_eq!(span(3600), "1 hour");
        assert_eq!(span(5400), "1 hour 30 minutes");
        assert_eq!(span(86400), "24 hours");
    }
}
