//! `rekeyd db`: the PostgreSQL store's schema, and moving an install from sled into it.

use clap::Subcommand;
use rekey_core::sealed::MailKey;
use rekey_core::store::{PgStore, Store};
use rekey_core::Config;

use crate::admin::Outcome;

#[derive(Subcommand)]
pub enum Db {
    /// Bring the schema of the database in `database_url` up to date (`rekeyd serve` does
    /// this too at start) and print its version.
    Migrate,
    /// Copy this install's records from the data directory's sled store into the empty
    /// database in `database_url`: accounts, live resets and codes, sessions, pending
    /// accounts, waiting requests, rate limits, queued mail, the audit trail and the signing
    /// keys. Stop `rekeyd serve` first; the data directory is left as it was.
    Copy,
}

pub async fn run(config: Config, cmd: Db) -> Outcome {
    let Some(url) = &config.database_url else {
        return Err("set database_url (or REKEY_DATABASE_URL) to the PostgreSQL database first".into());
    };
    let pg = PgStore::connect(url.expose(), 2).await.map_err(|e| e.to_string())?;
    match cmd {
        Db::Migrate => {
            let applied = pg.applied_migrations().await.map_err(|e| e.message())?;
            let versions: Vec<String> = applied.iter().map(i64::to_string).collect();
            println!(
                "The database at {} is up to date: schema version {} (applied: {}).",
                pg.place(),
                applied.last().copied().unwrap_or(0),
                versions.join(", ")
            );
            Ok(())
        }
        Db::Copy => copy(&config, &pg).await,
    }
}

async fn copy(config: &Config, pg: &PgStore) -> Outcome {
    let dir = &config.data_dir;
    if !dir.join("db").is_dir() {
        return Err(format!(
            "there is no Rekey store in {}: nothing to copy (use --data-dir to name it)",
            dir.display()
        ));
    }
    let keys = std::fs::read_to_string(dir.join("keys.json")).map_err(|e| {
        format!(
            "cannot read the signing keys in {}: {e}",
            dir.join("keys.json").display()
        )
    })?;
    let mail_key = MailKey::load_or_create(dir).map_err(|e| e.to_string())?;
    let now = rekey_core::Clock::now(&rekey_core::SystemClock);
    let sled = Store::open(dir, "rekeyd db copy", now, mail_key).map_err(|e| e.to_string())?;
    let records = sled.records().map_err(|e| e.message())?;
    pg.import(&records, &keys).await.map_err(|e| e.message())?;
    println!(
        "Copied {records} from {} into the database at {}.",
        dir.display(),
        pg.place()
    );
    println!("Run rekeyd with database_url set from now on; the data directory was left as it was.");
    Ok(())
}
