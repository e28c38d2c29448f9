//! The captured mail, read incrementally (files are numbered 000001.json, 000002.json, …)

use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use rekey_testkit::{CapturedMail, SmtpCapture};
use serde_json::Value;

/// Domain of addresses that never have an account.
pub(crate) const GHOST_DOMAIN: &str = "@nobody.example";

pub(crate) struct ResetMail {
    pub(crate) token: String,
    pub(crate) code: String,
}

#[derive(Default)]
pub(crate) struct MailIndex {
    /// Files read so far.
    read: u64,
    /// Reset mail by recipient: distinct tokens, in arrival order.
    pub(crate) resets: HashMap<String, Vec<ResetMail>>,
    /// Copies of each reset token received.
    token_copies: HashMap<String, u32>,
    /// Copies of each Message-ID received.
    message_ids: HashMap<String, u32>,
    /// Verification mail by recipient: the tokens, in arrival order.
    pub(crate) verifies: HashMap<String, Vec<String>>,
    /// "Your password was changed" notices.
    pub(crate) notices: u64,
    /// Mail to addresses that have no account.
    pub(crate) strays: Vec<String>,
}

impl MailIndex {
    fn add(&mut self, mail: CapturedMail) {
        if let Some(id) = mail.header("Message-ID") {
            *self.message_ids.entry(id.to_string()).or_default() += 1;
        }
        let to = mail.rcpt_to.first().cloned().unwrap_or_default();
        if to.ends_with(GHOST_DOMAIN) {
            self.strays.push(to.clone());
        }
        if let Some(token) = mail
            .text
            .as_deref()
            .and_then(|t| rekey_testkit::link_token(t, "rekey://verify?token="))
        {
            self.verifies.entry(to).or_default().push(token);
            return;
        }
        let is_reset = mail.text.as_deref().is_some_and(|t| t.contains("rekey://reset?token="));
        if !is_reset {
            self.notices += 1;
            return;
        }
        let token = mail.reset_token();
        let copies = self.token_copies.entry(token.clone()).or_default();
        *copies += 1;
        if *copies == 1 {
            let code = mail.reset_code();
            self.resets.entry(to).or_default().push(ResetMail { token, code });
        }
    }

    pub(crate) fn distinct_tokens(&self, address: &str) -> usize {
        self.resets.get(address).map_or(0, Vec::len)
    }

    pub(crate) fn total(&self) -> u64 {
        self.read
    }

    pub(crate) fn duplicate_messages(&self) -> u64 {
        self.message_ids.values().map(|n| u64::from(n - 1)).sum()
    }

    pub(crate) fn duplicate_tokens(&self) -> u64 {
        self.token_copies.values().map(|n| u64::from(n - 1)).sum()
    }
}

pub(crate) struct Mailbox {
    dir: PathBuf,
    index: Mutex<MailIndex>,
}

impl Mailbox {
    pub(crate) fn new(smtp: &SmtpCapture) -> Mailbox {
        Mailbox {
            dir: smtp.dir().join("mail"),
            index: Mutex::new(MailIndex::default()),
        }
    }

    /// Reads the files that arrived since the last look; returns the index.
    pub(crate) fn refresh(&self) -> MutexGuard<'_, MailIndex> {
        let mut index = self.index.lock().unwrap();
        loop {
            let path = self.dir.join(format!("{:06}.json", index.read + 1));
            let Ok(text) = fs::read_to_string(&path) else { break };
            let value: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            index.add(captured(&value));
            index.read += 1;
        }
        index
    }
}

/// A capture file as a [`CapturedMail`] (its fields are public; see rekey-testkit).
fn captured(v: &Value) -> CapturedMail {
    let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    let opt = |k: &str| v[k].as_str().map(str::to_string);
    CapturedMail {
        mail_from: s("mail_from"),
        rcpt_to: v["rcpt_to"]
            .as_array()
            .map(|a| a.iter().filter_map(|r| r.as_str().map(str::to_string)).collect())
            .unwrap_or_default(),
        port: s("port"),
        tls: v["tls"].as_bool().unwrap_or(false),
        auth_user: opt("auth_user"),
        raw: s("raw"),
        headers: v["headers"]
            .as_object()
            .map(|h| {
                h.iter()
                    .map(|(k, val)| (k.clone(), val.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default(),
        text: opt("text"),
        html: opt("html"),
    }
}
