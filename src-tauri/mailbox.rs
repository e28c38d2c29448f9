//! The local mailbox: with no SMTP server configured, mail lands as `.eml` files in the data
//! directory and the app shows them, so the whole flow works on a machine with no mail.

use std::path::{Path, PathBuf};

use serde::Serialize;

/// One message in the list.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub id: String,
    pub to: String,
    pub subject: String,
    /// Unix seconds.
    pub date: i64,
}

/// A link found in a message.
#[derive(Debug, Clone, Serialize)]
pub struct Link {
    pub url: String,
    pub label: String,
}

/// One message, opened.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Letter {
    #[serde(flatten)]
    pub summary: Summary,
    pub text: String,
    pub links: Vec<Link>,
}

/// The messages, newest first. A file that cannot be read is skipped, not fatal.
pub fn list(dir: &Path) -> std::io::Result<Vec<Summary>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| valid_id(n))
        .collect();
    names.sort_unstable_by(|a, b| b.cmp(a));
    Ok(names
        .into_iter()
        .filter_map(|n| read(dir, &n).ok().map(|l| l.summary))
        .collect())
}

/// Opens the message `id` (a file name from [`list`]; anything else is refused).
/// A refusal is the id of the message that words it.
pub fn open(dir: &Path, id: &str) -> Result<Letter, &'static str> {
    if !valid_id(id) {
        return Err("app-error-message-missing");
    }
    read(dir, id)
}

/// Only plain names of our own making: no separators, no dot files, `.eml` at the end.
fn valid_id(name: &str) -> bool {
    name.ends_with(".eml")
        && !name.starts_with('.')
        && name.len() < 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn read(dir: &Path, id: &str) -> Result<Letter, &'static str> {
    let path: PathBuf = dir.join(id);
    let raw = std::fs::read(&path).map_err(|_| "app-error-message-gone")?;
    let message = mail_parser::MessageParser::default()
        .parse(&raw)
        .ok_or("app-error-message-unreadable")?;
    let to = message
        .to()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .unwrap_or_default()
        .to_string();
    let text = message.body_text(0).map(|t| t.into_owned()).unwrap_or_default();
    Ok(Letter {
        summary: Summary {
            id: id.to_string(),
            to,
            subject: message.subject().unwrap_or("(no subject)").to_string(),
            date: message.date().map(|d| d.to_timestamp()).unwrap_or(0),
        },
        links: links_in(&text),
        text,
    })
}

/// The `rekey://` and `https://` links in a text, in order, each once.
fn links_in(text: &str) -> Vec<Link> {
    let mut links: Vec<Link> = Vec::new();
    for word in text.split_whitespace() {
        let word = word.trim_matches(|c: char| matches!(c, '<' | '>' | '(' | ')' | '"' | ','));
        let label = if word.starts_with("rekey://") {
            "Open the reset page"
        } else if word.starts_with("https://") || word.starts_with("http://") {
            "Web page"
        } else {
            continue;
        };
        if !links.iter().any(|l| l.url == word) {
            links.push(Link {
                url: word.to_string(),
                label: label.to_string(),
            });
        }
    }
    links
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_could_leave_the_folder_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for id in ["../keys.json", "/etc/passwd", ".x.eml.tmp", "a/b.eml", "keys.json"] {
            assert!(open(dir.path(), id).is_err(), "{id}");
        }
    }

    #[test]
    fn links_are_found_once_each() {
        let links =
            links_in("Open <rekey://reset?token=a.b.c> or rekey://reset?token=a.b.c, https://x.example/reset#token=a");
        assert_eq!(links.len(), 2);
        assert_eq!(links[0].url, "rekey://reset?token=a.b.c");
    }
}
