//! Where the app's settings live, and the settings page's commands: which server the app uses
//! (or this computer's own store), with a connection test that says why it fails.
//!
//! Settings come in layers: an administrator's system-wide file (`/etc/rekey/config.toml`,
//! for every user of the machine) below the user's own (`~/.config/rekey/config.toml`), below
//! the environment. The settings page writes the user's file, keeping whatever else it holds.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use tauri::State;

use crate::backend::{Backend, Place, Remote};
use crate::shell::Shell;
use crate::ui_error::UiError;

type Answer<T> = Result<T, UiError>;

/// The administrator's file: `$REKEY_SYSTEM_CONFIG`, else `/etc/rekey/config.toml`.
pub fn system_file() -> PathBuf {
    std::env::var_os("REKEY_SYSTEM_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/etc/rekey/config.toml"))
}

/// The user's file: `$REKEY_CONFIG`, else the platform's config dir (`~/.config/rekey/config.toml`).
pub fn user_file() -> Option<PathBuf> {
    std::env::var_os("REKEY_CONFIG")
        .map(PathBuf::from)
        .or_else(|| directories::ProjectDirs::from("", "", "rekey").map(|d| d.config_dir().join("config.toml")))
}

/// The app's configuration, from every layer: the files, the environment, and the command
/// line's `--server-url URL` and `--server-ca-file PATH` (also `--name=value`).
pub fn load() -> Result<rekey_core::Config, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    rekey_core::Config::load_layered(&system_file(), user_file().as_deref(), &flags(&args)).map_err(|e| e.to_string())
}

/// The settings flags among the app's arguments (the rest, a `rekey://` link say, are not
/// settings).
fn flags(args: &[String]) -> Vec<(&'static str, String)> {
    let mut flags = Vec::new();
    let mut i = 0;
    while i < args.len() {
        for (flag, key) in [("--server-url", "server_url"), ("--server-ca-file", "server_ca_file")] {
            if let Some(value) = args[i].strip_prefix(flag).and_then(|rest| rest.strip_prefix('=')) {
                flags.push((key, value.to_string()));
            } else if args[i] == flag {
                if let Some(value) = args.get(i + 1) {
                    flags.push((key, value.clone()));
                    i += 1;
                }
            }
        }
        i += 1;
    }
    flags
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_flags_are_read_and_links_are_left_alone() {
        let args: Vec<String> = [
            "--server-url",
            "https://a.example",
            "rekey://reset?token=x",
            "--server-ca-file=/ca.pem",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            flags(&args),
            vec![
                ("server_url", "https://a.example".to_string()),
                ("server_ca_file", "/ca.pem".to_string())
            ]
        );
    }
}

/// What the settings page shows.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    place: Place,
    server_url: Option<String>,
    server_ca_file: Option<String>,
    /// The file the page saves into.
    file: Option<String>,
}

fn saving_failed(path: &Path, e: impl std::fmt::Display) -> UiError {
    UiError {
        code: "settings_unwritable".into(),
        message: crate::language::say(
            "app-error-settings-unwritable",
            &[("file", &path.display().to_string()), ("problem", &e.to_string())],
        ),
    }
}

/// Sets the server settings in the user's file, keeping the rest. `None` for the server
/// writes `server_url = ""`: "this computer", which stays so even when an administrator's
/// file names a server (the user's file is above it).
fn save_server(url: Option<&str>, ca_file: Option<&str>) -> Answer<()> {
    save(&[("server_url", Some(url.unwrap_or(""))), ("server_ca_file", ca_file)])
}

/// Sets `keys` in the user's file (`None` removes one), keeping the rest.
fn save(keys: &[(&str, Option<&str>)]) -> Answer<()> {
    let Some(path) = user_file() else {
        return Err(UiError {
            code: "settings_unwritable".into(),
            message: crate::language::say("app-error-no-settings-folder", &[]),
        });
    };
    let mut table: toml::Table = match std::fs::read_to_string(&path) {
        Ok(text) => text.parse().map_err(|e| saving_failed(&path, e))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => toml::Table::new(),
        Err(e) => return Err(saving_failed(&path, e)),
    };
    for (key, value) in keys {
        match value {
            Some(v) => table.insert(key.to_string(), toml::Value::String(v.to_string())),
            None => table.remove(*key),
        };
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| saving_failed(&path, e))?;
    }
    std::fs::write(&path, table.to_string()).map_err(|e| saving_failed(&path, e))
}

/// A client for `url` and `ca_file`, as the settings page typed them.
fn remote(url: &str, ca_file: Option<&str>) -> Answer<Remote> {
    let url = rekey_core::config::server_url(url).map_err(|reason| UiError {
        code: "server_url_invalid".into(),
        message: crate::language::say("app-error-server-url", &[("problem", &reason.to_string())]),
    })?;
    let timeout = load().map(|c| c.server_timeout_secs).unwrap_or(15);
    Remote::new(
        &url,
        ca_file.filter(|f| !f.trim().is_empty()).map(Path::new),
        std::time::Duration::from_secs(timeout),
    )
}

#[tauri::command]
pub fn settings(shell: State<'_, Shell>) -> Answer<Settings> {
    let config = load().ok();
    Ok(Settings {
        place: shell.backend()?.place(),
        server_url: config
            .as_ref()
            .and_then(|c| c.server_url.as_ref())
            .map(|u| u.as_str().trim_end_matches('/').to_string()),
        server_ca_file: config
            .as_ref()
            .and_then(|c| c.server_ca_file.as_ref())
            .map(|p| p.display().to_string()),
        file: user_file().map(|p| p.display().to_string()),
    })
}

/// Tries the server: what it says about itself, or why it cannot be used, in words.
#[tauri::command]
pub async fn server_test(url: String, ca_file: Option<String>) -> Answer<crate::backend::ServerInfo> {
    let remote = remote(&url, ca_file.as_deref())?;
    Ok(remote.info().await?.clone())
}

/// Connects to the server (after the same test), saves it, and uses it from now on.
#[tauri::command]
pub async fn server_connect(shell: State<'_, Shell>, url: String, ca_file: Option<String>) -> Answer<Place> {
    let remote = remote(&url, ca_file.as_deref())?;
    remote.info().await?;
    let place = remote.place();
    let Place::Server { url } = &place else {
        unreachable!("a remote is a server")
    };
    save_server(Some(url), ca_file.as_deref().filter(|f| !f.trim().is_empty()))?;
    shell.set_backend(Arc::new(remote));
    Ok(place)
}

/// Back to this computer's own store.
#[tauri::command]
pub fn server_disconnect(shell: State<'_, Shell>) -> Answer<Place> {
    save_server(None, None)?;
    shell.set_backend(shell.local()?);
    Ok(Place::Local)
}

/// The window's words, in its language.
#[tauri::command]
pub fn window_words() -> crate::language::WindowWords {
    crate::language::window_words()
}

/// The window's language from now on: `language` (a tag there are words for), or `None` to
/// follow the system's. Saved in the user's file (`app_language`; "" is the system's, above
/// an administrator's choice); answers the window's words in it.
#[tauri::command]
pub fn set_app_language(shell: State<'_, Shell>, language: Option<String>) -> Answer<crate::language::WindowWords> {
    let language = language.filter(|l| !l.trim().is_empty());
    if let Some(tag) = &language {
        if !crate::language::known(tag) {
            return Err(UiError {
                code: "locale_invalid".into(),
                message: crate::language::say("app-error-language-unknown", &[("language", tag)]),
            });
        }
    }
    save(&[("app_language", Some(language.as_deref().unwrap_or("")))])?;
    let core = shell.core()?;
    let sender = core.sender();
    crate::language::set(sender.in_locale(&crate::language::pick(sender.words(), language.as_deref())));
    Ok(crate::language::window_words())
}
