//! `rekeyd demo`: the whole reset flow on this machine with no mail server. It creates a
//! demo account, asks for a reset, shows the mail that landed in the local mailbox, and
//! lets you finish the reset with the code from that mail.

use std::io::{BufRead, IsTerminal, Write};

use rekey_core::service::ResetProof;
use rekey_core::{Config, Error, Rekey};

use crate::admin::{read_password, Outcome};

const DEMO_EMAIL: &str = "demo@example.com";

pub async fn run(config: Config) -> Outcome {
    if config.smtp_url.is_some() {
        println!("Note: REKEY_SMTP_URL is set, so the mail goes to that server rather than the local mailbox.");
    }
    let rekey = Rekey::connect(config, "rekeyd demo").await.map_err(|e| e.message())?;
    let client = rekey.install_id().to_string();
    println!("Rekey keeps its data in {}", rekey.config().data_dir.display());

    match rekey
        .create_account(DEMO_EMAIL, &random_passphrase(), None, &client)
        .await
    {
        Ok(_) => println!("1. Created the account {DEMO_EMAIL} (with a password nobody knows: it was 'forgotten')."),
        Err(Error::EmailTaken) => println!("1. The account {DEMO_EMAIL} exists from an earlier run."),
        Err(e) => return Err(e.message()),
    }
    rekey
        .request_reset(DEMO_EMAIL, &client)
        .await
        .map_err(|e| e.message())?;
    println!("2. Asked for a password reset for {DEMO_EMAIL}.");
    rekey.drain().await.map_err(|e| e.message())?;
    let status = rekey.outbox().status().await.map_err(|e| e.message())?;
    println!("3. The reset mail went to {}.", status.destination);
    if let rekey_core::mailer::Mailer::Mailbox(dir) = rekey.outbox().mailer() {
        if let Some(path) = newest_mail(dir) {
            println!("   Here it is ({}):\n", path.display());
            let raw = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
            for line in text_part(&raw).lines() {
                println!("   | {line}");
            }
            println!();
        }
    }
    if !std::io::stdin().is_terminal() {
        println!("4. To finish, run:  rekeyd reset confirm --email {DEMO_EMAIL} --code <the code above>");
        return Ok(());
    }
    print!("4. Type the code from the mail: ");
    std::io::stdout().flush().ok();
    let mut code = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut code)
        .map_err(|e| e.to_string())?;
    let password = read_password(
        "   Choose a new password (15 characters or more; a few words work well): ",
        true,
    )?;
    let proof = ResetProof::Code {
        email: DEMO_EMAIL.into(),
        code: code.trim().into(),
    };
    rekey
        .confirm_reset(proof, &password, &client)
        .await
        .map_err(|e| e.message())?;
    rekey
        .sign_in(DEMO_EMAIL, &password, &client)
        .await
        .map_err(|e| e.message())?;
    rekey.drain().await.map_err(|e| e.message())?;
    println!("5. Password changed, and signing in with the new one works. A \"password changed\" notice is in the mailbox too.");
    Ok(())
}

fn random_passphrase() -> String {
    format!("forgotten {}", rekey_core::token::random_id())
}

fn newest_mail(dir: &std::path::Path) -> Option<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    files.sort();
    files.pop()
}

/// The text/plain part of a mail from the mailbox, with quoted-printable undone.
pub fn text_part(raw: &str) -> String {
    let Some(start) = raw.find("Content-Type: text/plain") else {
        return raw.to_string();
    };
    let part = &raw[start..];
    let body_start = part.find("\r\n\r\n").map(|i| i + 4).unwrap_or(0);
    let body = &part[body_start..];
    let end = body.find("\r\n--").unwrap_or(body.len());
    let encoded = &body[..end];
    if part[..body_start].contains("quoted-printable") {
        decode_qp(encoded)
    } else {
        encoded.replace("\r\n", "\n")
    }
}

fn decode_qp(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.replace("=\r\n", "").into_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'=' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&String::from_utf8_lossy(&b[i + 1..i + 3]), 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).replace("\r\n", "\n")
}
