//! The admin subcommands: thin wrappers that open the data directory, call the core, and
//! print plain words (or JSON with `--json` where a script may want it).

use std::io::{BufRead, IsTerminal};

use clap::Subcommand;
use rekey_core::service::ResetProof;
use rekey_core::{Config, Rekey};

/// What a command failed with, already in words.
pub type Outcome = Result<(), String>;

const ADMIN: &str = "admin";

/// Opens the store the configuration names (sled in the data directory, or PostgreSQL).
async fn open(config: Config, what: &str) -> Result<Rekey, String> {
    Rekey::connect(config, &format!("rekeyd {what}"))
        .await
        .map_err(|e| e.message())
}

/// Reads a new password: twice at a prompt on a terminal, else one line from stdin.
pub fn read_password(prompt: &str, confirm: bool) -> Result<String, String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(prompt).map_err(|e| e.to_string())?;
        if confirm {
            let again = rpassword::prompt_password("Type it again: ").map_err(|e| e.to_string())?;
            if again != first {
                return Err("the two passwords differ; nothing was changed".into());
            }
        }
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    }
}

#[derive(Subcommand)]
pub enum Users {
    /// Create an account (the password is asked for, or read from stdin).
    Add {
        email: String,
        /// The language of the account's mail, like de or de-AT (default: the install's `locale`).
        #[arg(long)]
        locale: Option<String>,
    },
    /// Set the language of an account's mail (`default`: the install's `locale`).
    Locale { email: String, locale: String },
    /// Set the time zone times in an account's mail are written in, like Europe/Berlin
    /// (`default`: UTC).
    TimeZone { email: String, zone: String },
    /// List accounts.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Disable an account: it cannot sign in, its sessions and reset links stop working.
    Disable { email: String },
    /// Enable a disabled account again.
    Enable { email: String },
}

pub async fn users(config: Config, cmd: Users) -> Outcome {
    match cmd {
        Users::Add { email, locale } => {
            let rekey = open(config, "users add").await?;
            let password = read_password("Password for the new account: ", true)?;
            let user = rekey
                .create_account(&email, &password, locale.as_deref(), ADMIN)
                .await
                .map_err(|e| e.message())?;
            println!("Created the account {} (id {}).", user.email, user.id);
        }
        Users::List { json } => {
            let rekey = open(config, "users list").await?;
            let users = rekey.list_users().await.map_err(|e| e.message())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&users).unwrap_or_default());
            } else if users.is_empty() {
                println!("No accounts yet. Create one with: rekeyd users add EMAIL");
            } else {
                for u in users {
                    let state = if u.disabled { "disabled" } else { "active" };
                    println!(
                        "{:<40} {:<9} {:<6} created {}",
                        u.email,
                        state,
                        u.locale.as_deref().unwrap_or("-"),
                        rekey_core::letters::when(u.created_at)
                    );
                }
            }
        }
        Users::Locale { email, locale } => {
            let rekey = open(config, "users locale").await?;
            let locale = Some(locale.as_str()).filter(|l| *l != "default");
            let u = rekey.set_locale(&email, locale, ADMIN).await.map_err(|e| e.message())?;
            match u.locale {
                Some(l) => println!("Mail to {} is now written in {l}.", u.email),
                None => println!("Mail to {} is now written in the install's language.", u.email),
            }
        }
        Users::TimeZone { email, zone } => {
            let rekey = open(config, "users time-zone").await?;
            let zone = Some(zone.as_str()).filter(|z| *z != "default");
            let u = rekey
                .set_time_zone(&email, zone, ADMIN)
                .await
                .map_err(|e| e.message())?;
            match u.time_zone {
                Some(z) => println!("Times in mail to {} are now written in {z}.", u.email),
                None => println!("Times in mail to {} are now written in UTC.", u.email),
            }
        }
        Users::Disable { email } | Users::Enable { email } if email.is_empty() => {
            return Err("give the account's email address".into())
        }
        Users::Disable { email } => {
            let rekey = open(config, "users disable").await?;
            let u = rekey.set_disabled(&email, true, ADMIN).await.map_err(|e| e.message())?;
            println!("Disabled {}: its sessions and reset links no longer work.", u.email);
        }
        Users::Enable { email } => {
            let rekey = open(config, "users enable").await?;
            let u = rekey
                .set_disabled(&email, false, ADMIN)
                .await
                .map_err(|e| e.message())?;
            println!("Enabled {}.", u.email);
        }
    }
    Ok(())
}

#[derive(Subcommand)]
pub enum Reset {
    /// Ask for a reset mail for an address, and deliver it now.
    Request {
        email: String,
        /// Only record the request; the mail goes out at the next `outbox deliver` (or service start).
        #[arg(long)]
        no_deliver: bool,
    },
    /// Set a new password with the link's token, or with the address and the mailed code.
    Confirm {
        /// The token from the link (the part after `token=`).
        #[arg(long, conflicts_with_all = ["email", "code"])]
        token: Option<String>,
        /// The account's address (with --code).
        #[arg(long, requires = "code")]
        email: Option<String>,
        /// The code from the mail, like ABCD-EFGH (with --email).
        #[arg(long, requires = "email")]
        code: Option<String>,
    },
}

pub async fn reset(config: Config, cmd: Reset) -> Outcome {
    match cmd {
        Reset::Request { email, no_deliver } => {
            let rekey = open(config, "reset request").await?;
            let client = rekey.install_id().to_string();
            rekey.request_reset(&email, &client).await.map_err(|e| e.message())?;
            println!("If an account exists for {}, a reset mail is on its way.", email.trim());
            if !no_deliver {
                let report = rekey.drain().await.map_err(|e| e.message())?;
                print_delivery(&rekey, report).await?;
            }
        }
        Reset::Confirm { token, email, code } => {
            let proof = match (token, email, code) {
                (Some(t), _, _) => ResetProof::Token(t),
                (None, Some(email), Some(code)) => ResetProof::Code { email, code },
                _ => return Err("give either --token, or --email and --code".into()),
            };
            let rekey = open(config, "reset confirm").await?;
            let password = read_password("New password: ", true)?;
            rekey
                .confirm_reset(proof, &password, ADMIN)
                .await
                .map_err(|e| e.message())?;
            rekey.drain().await.map_err(|e| e.message())?;
            println!("Password changed. Sign in with the new password; every other session was signed out.");
        }
    }
    Ok(())
}

async fn print_delivery(rekey: &Rekey, report: rekey_core::outbox::DeliveryReport) -> Outcome {
    let status = rekey.outbox().status().await.map_err(|e| e.message())?;
    if report.sent > 0 {
        println!("Delivered {} mail(s) to {}.", report.sent, status.destination);
    }
    if status.depth > 0 {
        println!(
            "{} mail(s) still waiting{}.",
            status.depth,
            status.last_error.map(|e| format!(": {e}")).unwrap_or_default()
        );
    }
    Ok(())
}

#[derive(Subcommand)]
pub enum OutboxCmd {
    /// Queue depth, oldest age, last error, dead letters.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Waiting mail and dead letters.
    List,
    /// Deliver what is due now.
    Deliver,
    /// Put dead letters (or one, by id) back in the queue and make waiting mail due now.
    Retry { id: Option<u64> },
    /// Delete all dead letters.
    PurgeDead,
}

pub async fn outbox(config: Config, cmd: OutboxCmd) -> Outcome {
    let rekey = open(config, "outbox").await?;
    let outbox = rekey.outbox();
    let err = |e: rekey_core::Error| e.message();
    match cmd {
        OutboxCmd::Status { json } => {
            let s = outbox.status().await.map_err(err)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&s).unwrap_or_default());
            } else {
                println!("Mail goes to {}.", s.destination);
                println!(
                    "Waiting: {}{}",
                    s.depth,
                    s.oldest_age_secs
                        .map(|a| format!(" (oldest {a} s)"))
                        .unwrap_or_default()
                );
                println!("Delivered: {}   Dead letters: {}", s.delivered, s.dead);
                println!("Last problem: {}", s.last_error.as_deref().unwrap_or("none"));
                if let Some(at) = s.server_retry_at {
                    let wait = (at - rekey.now()).max(0);
                    println!("The mail server is tried again in {wait} s; every waiting mail waits for it.");
                }
            }
        }
        OutboxCmd::List => {
            let now = rekey.now();
            // While the server is in trouble the whole queue waits for it, whatever each
            // mail's own time says.
            let held = outbox.status().await.map_err(err)?.server_retry_at.unwrap_or(now);
            let waiting = outbox.list().await.map_err(err)?;
            let dead = outbox.dead().await.map_err(err)?;
            if waiting.is_empty() && dead.is_empty() {
                println!("The outbox is empty.");
            }
            for i in waiting {
                let due = (i.next_attempt_at.max(held) - now).max(0);
                println!(
                    "waiting #{:<6} {:<16} to {}  attempts {}  next in {due} s{}",
                    i.id,
                    format!("{:?}", i.kind),
                    i.to,
                    i.attempts,
                    i.last_error.map(|e| format!("  last error: {e}")).unwrap_or_default()
                );
            }
            for d in dead {
                println!(
                    "dead    #{:<6} {:<16} to {}  {}",
                    d.item.id,
                    format!("{:?}", d.item.kind),
                    d.item.to,
                    d.reason
                );
            }
        }
        OutboxCmd::Deliver => {
            let report = rekey.drain().await.map_err(|e| e.message())?;
            print_delivery(&rekey, report).await?;
        }
        OutboxCmd::Retry { id } => {
            let n = rekey.retry_dead(id).await.map_err(|e| e.message())?;
            println!("{n} mail(s) queued for delivery now; run `rekeyd outbox deliver` or let the service send them.");
        }
        OutboxCmd::PurgeDead => println!("Deleted {} dead letter(s).", outbox.purge_dead().await.map_err(err)?),
    }
    Ok(())
}

#[derive(Subcommand)]
pub enum Audit {
    /// The most recent events.
    Tail {
        #[arg(short, default_value_t = 20)]
        n: usize,
    },
}

pub async fn audit(config: Config, cmd: Audit) -> Outcome {
    let Audit::Tail { n } = cmd;
    let rekey = open(config, "audit tail").await?;
    for e in rekey.accounts().recent_events(n).await.map_err(|e| e.message())? {
        println!(
            "{}  {:<28} user {:<24} from {:<20} {}",
            rekey_core::letters::when(e.at),
            e.kind,
            e.user_id.as_deref().unwrap_or("-"),
            e.client.as_deref().unwrap_or("-"),
            e.detail
        );
    }
    Ok(())
}

#[derive(Subcommand)]
pub enum Mail {
    /// Send a test message through the configured transport, now.
    Test { address: String },
}

pub async fn mail(config: Config, cmd: Mail) -> Outcome {
    let Mail::Test { address } = cmd;
    let email = rekey_core::Email::parse(&address).map_err(|e| e.to_string())?;
    let rekey = open(config, "mail test").await?;
    let letter = rekey_core::letters::test(rekey.sender(), email.as_str(), rekey.now()).map_err(|e| e.to_string())?;
    let mailer = rekey.outbox().mailer();
    mailer
        .send(&letter.from, std::slice::from_ref(&letter.to), &letter.raw)
        .await
        .map_err(|e| format!("the test mail was not delivered: {e}"))?;
    println!("Test mail delivered to {} for {}.", mailer.describe(), email);
    Ok(())
}

#[derive(Subcommand)]
pub enum ConfigCmd {
    /// Validate the configuration and show it (secrets redacted).
    Check,
}

pub fn config(config: Config, cmd: ConfigCmd) -> Outcome {
    let ConfigCmd::Check = cmd;
    let mailer = rekey_core::mailer::Mailer::from_config(&config).map_err(|e| e.to_string())?;
    println!("The configuration is valid.");
    println!("data_dir          {}", config.data_dir.display());
    println!("store             {}", config.describe_store());
    println!("mail              {}", mailer.describe());
    println!("mail_from         {}", config.mail_from);
    println!("product_name      {}", config.product_name);
    println!(
        "locale            {} (mail to accounts that chose no language){}",
        config.locale,
        config
            .messages_dir
            .as_ref()
            .map(|d| format!("; messages from {}", d.display()))
            .unwrap_or_default()
    );
    println!(
        "dkim              {}",
        match (&config.dkim_selector, config.mail_from.rsplit_once('@')) {
            (Some(selector), Some((_, domain))) => format!(
                "signed; the public key belongs at {selector}._domainkey.{}",
                domain.trim_end_matches('>').trim()
            ),
            _ => "(unsigned: set dkim_key_file and dkim_selector to sign)".to_string(),
        }
    );
    println!(
        "stand_in_mail_to  {}",
        config.stand_in_mail_to.as_deref().unwrap_or("(none)")
    );
    println!(
        "public_url        {}",
        config.public_url.as_ref().map(|u| u.as_str()).unwrap_or("(none)")
    );
    println!("listen            {}", config.listen);
    println!("reset_ttl         {}", rekey_core::letters::span(config.reset_ttl_secs));
    println!("limit_address     {}", config.limit_address);
    println!("limit_client      {}", config.limit_client);
    println!("password_min      {}", config.password_min_length);
    println!(
        "argon2id          m={} KiB, t={}, p={}",
        config.argon2_memory_kib, config.argon2_iterations, config.argon2_parallelism
    );
    Ok(())
}

#[derive(Subcommand)]
pub enum Keys {
    /// Make a new signing key; links already sent keep working until they expire.
    Rotate,
}

pub async fn keys(config: Config, cmd: Keys) -> Outcome {
    let Keys::Rotate = cmd;
    let rekey = open(config, "keys rotate").await?;
    let kid = rekey.rotate_keys().await.map_err(|e| e.message())?;
    println!("New signing key {kid} is now in use; older keys verify until their links expire.");
    Ok(())
}
