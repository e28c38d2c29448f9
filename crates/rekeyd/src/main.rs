//! `rekeyd`: Rekey's headless side: the HTTP service (`rekeyd serve`) and the admin
//! subcommands over a data directory.

mod admin;
mod db;
mod demo;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rekey_core::Config;

/// Rekey: password resets done right, for desktop and on-prem software.
#[derive(Parser)]
#[command(name = "rekeyd", version, about)]
struct Cli {
    /// A TOML config file (default: $REKEY_CONFIG, if set).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Where Rekey keeps its data (default: $REKEY_DATA_DIR, else ~/.local/share/rekey).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the reset flow over HTTP (on $REKEY_LISTEN, default 127.0.0.1:8080).
    Serve {
        /// Where to listen, like 0.0.0.0:8080 (overrides the config's `listen`).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Try the whole reset flow on this machine, with mail in the local mailbox.
    Demo,
    /// Accounts.
    #[command(subcommand)]
    Users(admin::Users),
    /// Ask for and complete password resets.
    #[command(subcommand)]
    Reset(admin::Reset),
    /// The mail queue.
    #[command(subcommand)]
    Outbox(admin::OutboxCmd),
    /// The audit trail.
    #[command(subcommand)]
    Audit(admin::Audit),
    /// Mail delivery checks.
    #[command(subcommand)]
    Mail(admin::Mail),
    /// The configuration.
    #[command(subcommand)]
    Config(admin::ConfigCmd),
    /// Token signing keys.
    #[command(subcommand)]
    Keys(admin::Keys),
    /// The PostgreSQL store: its schema, and moving an install into it.
    #[command(subcommand)]
    Db(db::Db),
    /// Print the HTTP API's OpenAPI 3.1 document (what `rekeyd serve` serves at
    /// /openapi.json); `rekeyd openapi > docs/openapi.json` updates the repository's copy.
    Openapi,
}

fn main() -> ExitCode {
    rekey_core::hasher::return_hash_memory_after_use();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("REKEY_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if let Command::Openapi = cli.command {
        // The same for every configuration: no config, no data directory.
        print!("{}", serve::openapi::document_text());
        return ExitCode::SUCCESS;
    }
    let mut flags = Vec::new();
    if let Some(dir) = &cli.data_dir {
        flags.push(("data_dir", dir.display().to_string()));
    }
    if let Command::Serve { listen: Some(listen) } = &cli.command {
        flags.push(("listen", listen.clone()));
    }
    let config = match Config::load(cli.config.as_deref(), &flags) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rekeyd: the configuration cannot be used: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve { .. } => serve::run(config).await,
            Command::Demo => demo::run(config).await,
            Command::Users(c) => admin::users(config, c).await,
            Command::Reset(c) => admin::reset(config, c).await,
            Command::Outbox(c) => admin::outbox(config, c).await,
            Command::Audit(c) => admin::audit(config, c).await,
            Command::Mail(c) => admin::mail(config, c).await,
            Command::Config(c) => admin::config(config, c),
            Command::Keys(c) => admin::keys(config, c).await,
            Command::Db(c) => db::run(config, c).await,
            Command::Openapi => unreachable!("answered before the configuration is read"),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rekeyd: {e}");
            ExitCode::FAILURE
        }
    }
}
