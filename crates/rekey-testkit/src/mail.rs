//! [`CapturedMail`]: one message the capture server accepted, read back from
//! its JSON file, and the helpers that pull Rekey's links out of a mail.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

/// One message accepted by the capture server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedMail {
    /// Envelope sender (`MAIL FROM`).
    pub mail_from: String,
    /// Envelope recipients (`RCPT TO`), in order.
    pub rcpt_to: Vec<String>,
    /// Port it arrived on: `"starttls"`, `"implicit"` or `"plain"`.
    pub port: String,
    /// Whether the session was encrypted when `DATA` completed.
    pub tls: bool,
    /// The authenticated user, if the session used AUTH.
    pub auth_user: Option<String>,
    /// The whole message as sent (CRLF line ends, still encoded).
    pub raw: String,
    /// Headers by name as sent (first occurrence), values decoded
    /// (RFC 2047) by Python's `email` package.  Prefer [`CapturedMail::header`],
    /// which ignores case.
    pub headers: BTreeMap<String, String>,
    /// The decoded `text/plain` body (line ends normalised to `\n`).
    pub text: Option<String>,
    /// The decoded `text/html` body (line ends normalised to `\n`).
    pub html: Option<String>,
}

impl CapturedMail {
    fn text_part(&self) -> &str {
        self.text.as_deref().expect("the mail has a text part")
    }

    /// The reset token in the mail's deep link (`rekey://reset?token=…`), taken from the
    /// text part as a person would copy it.
    pub fn reset_token(&self) -> String {
        let text = self.text_part();
        let start =
            text.find("rekey://reset?token=").expect("the mail holds the deep link") + "rekey://reset?token=".len();
        text[start..].split_whitespace().next().unwrap().to_string()
    }

    /// The token in a verification mail's deep link (`rekey://verify?token=…`).
    pub fn verify_token(&self) -> String {
        link_token(self.text_part(), "rekey://verify?token=").expect("the mail holds a verify link")
    }

    /// The https landing link (`…/reset#token=…`) from the text part.
    pub fn landing_link(&self) -> String {
        self.text_part()
            .split_whitespace()
            .find(|w| w.contains("/reset#token="))
            .expect("the mail holds a landing link")
            .to_string()
    }

    /// The typed code (`ABCD-EFGH`) from the text part.
    pub fn reset_code(&self) -> String {
        self.text_part()
            .split_whitespace()
            .find(|w| {
                w.len() == 9
                    && w.as_bytes()[4] == b'-'
                    && w.chars()
                        .filter(|c| *c != '-')
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
            })
            .expect("the mail holds a code like ABCD-EFGH")
            .to_string()
    }

    /// Header value by name, ignoring ASCII case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn from_json(v: &Value, file: &Path) -> CapturedMail {
        let bad = |field: &str| -> ! { panic!("{}: bad or missing field {field:?}: {v}", file.display()) };
        let string = |field: &str| -> String { v[field].as_str().map(str::to_string).unwrap_or_else(|| bad(field)) };
        let opt_string = |field: &str| -> Option<String> {
            match &v[field] {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                _ => bad(field),
            }
        };
        CapturedMail {
            mail_from: string("mail_from"),
            rcpt_to: v["rcpt_to"]
                .as_array()
                .unwrap_or_else(|| bad("rcpt_to"))
                .iter()
                .map(|r| r.as_str().unwrap_or_else(|| bad("rcpt_to")).to_string())
                .collect(),
            port: string("port"),
            tls: v["tls"].as_bool().unwrap_or_else(|| bad("tls")),
            auth_user: opt_string("auth_user"),
            raw: string("raw"),
            headers: v["headers"]
                .as_object()
                .unwrap_or_else(|| bad("headers"))
                .iter()
                .map(|(k, val)| {
                    let val = val.as_str().unwrap_or_else(|| bad("headers"));
                    (k.clone(), val.to_string())
                })
                .collect(),
            text: opt_string("text"),
            html: opt_string("html"),
        }
    }

    pub(crate) fn summary(&self) -> String {
        format!(
            "from={:?} to={:?} port={} tls={} auth={:?} subject={:?}",
            self.mail_from,
            self.rcpt_to,
            self.port,
            self.tls,
            self.auth_user,
            self.header("subject").unwrap_or("")
        )
    }
}

/// The token after `prefix` (`rekey://verify?token=`, …) in a mail's text.
pub fn link_token(text: &str, prefix: &str) -> Option<String> {
    let start = text.find(prefix)? + prefix.len();
    text[start..].split_whitespace().next().map(str::to_string)
}

/// The same, in a whole message as stored (a local mailbox file): quoted-printable soft
/// line breaks and `=3D` undone first. Enough for Rekey's links, whose tokens hold only
/// `A-Z a-z 0-9 - _ .`.
pub fn link_token_in_raw(raw: &str, prefix: &str) -> Option<String> {
    let text = raw.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=");
    link_token(&text, prefix)
}
