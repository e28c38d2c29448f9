//! The app's state: the opened core, the signed-in session, a link waiting for the page.

use std::sync::{Arc, Mutex};

use rekey_core::service::SessionToken;
use rekey_core::{Config, Rekey};
use serde_json::json;
use tauri::{AppHandle, Emitter, Manager, Runtime};
use tokio::sync::watch;

use crate::commands::UiError;
use crate::link::{self, LinkError};

/// A link that arrived before the page could take it (a cold start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pending {
    Link(link::Action, String),
    Rejected(LinkError),
}

/// Everything the commands share.
pub struct Shell {
    core: Result<Arc<Rekey>, UiError>,
    session: Mutex<Option<SessionToken>>,
    pending: Mutex<Option<Pending>>,
    stop: watch::Sender<bool>,
}

impl Shell {
    /// Opens the core with `config`. A failure (another program holds the data, a broken
    /// config) is kept and shown by the page instead of crashing the app.
    pub fn open(config: Result<Config, String>) -> Shell {
        let core = config
            .map_err(|message| UiError {
                code: "setup_error".into(),
                message: format!("Rekey's configuration cannot be used: {message}"),
            })
            .and_then(|c| {
                // The pooled SMTP transport starts its tasks on the runtime it is built in.
                let tauri::async_runtime::RuntimeHandle::Tokio(runtime) = tauri::async_runtime::handle();
                let _inside = runtime.enter();
                Rekey::open(c, "the Rekey app").map(Arc::new).map_err(UiError::from)
            });
        if let Err(e) = &core {
            tracing::error!(code = %e.code, "the core did not open");
        }
        Shell {
            core,
            session: Mutex::new(None),
            pending: Mutex::new(None),
            stop: watch::channel(false).0,
        }
    }

    pub fn core(&self) -> Result<&Arc<Rekey>, UiError> {
        self.core.as_ref().map_err(Clone::clone)
    }

    /// Rate limits count per install, since a desktop has no peer address.
    pub fn client(&self) -> Result<String, UiError> {
        Ok(format!("install:{}", self.core()?.install_id()))
    }

    /// Starts the intake and outbox workers on Tauri's runtime; they stop at [`Shell::stop`].
    pub fn start_workers(&self) {
        if let Ok(core) = &self.core {
            let stopped = self.stop.subscribe();
            tauri::async_runtime::spawn(core.clone().run_workers(stopped));
        }
    }

    /// Stops the workers between mails and flushes the store.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
        if let Ok(core) = &self.core {
            let _ = core.store().db.flush();
        }
    }

    pub fn session(&self) -> Option<SessionToken> {
        self.session.lock().ok().and_then(|s| s.clone())
    }

    pub fn take_session(&self) -> Option<SessionToken> {
        self.session.lock().ok().and_then(|mut s| s.take())
    }

    pub fn set_session(&self, session: Option<SessionToken>) {
        if let Ok(mut s) = self.session.lock() {
            *s = session;
        }
    }

    /// The signed-in account, if the session still holds.
    pub fn signed_in(&self) -> Option<crate::commands::Account> {
        let session = self.session()?;
        match self.core().ok()?.session_user(&session.0) {
            Ok(user) => Some(crate::commands::Account { email: user.email }),
            Err(_) => {
                self.set_session(None);
                None
            }
        }
    }

    pub fn take_pending(&self) -> Option<Pending> {
        self.pending.lock().ok().and_then(|mut p| p.take())
    }

    fn set_pending(&self, pending: Pending) {
        if let Ok(mut p) = self.pending.lock() {
            *p = Some(pending);
        }
    }
}

/// Hands a `rekey://` link to the page: at a cold start it waits in the state for the page
/// to take; while running it is sent as an event and the window comes to the front.
pub fn deliver_link<R: Runtime>(app: &AppHandle<R>, url: &str, cold_start: bool) {
    let shell = app.state::<Shell>();
    let parsed = link::parse(url);
    if let Err(e) = &parsed {
        tracing::warn!(code = e.code, "a link was refused");
    }
    if cold_start {
        shell.set_pending(match parsed {
            Ok((action, token)) => Pending::Link(action, token),
            Err(e) => Pending::Rejected(e),
        });
        return;
    }
    let _ = match parsed {
        Ok((link::Action::Reset, token)) => app.emit("reset-link", json!({ "token": token })),
        Ok((link::Action::Verify, token)) => app.emit("verify-link", json!({ "token": token })),
        Err(e) => app.emit("link-rejected", e),
    };
    focus(app);
}

/// Brings the main window to the front.
pub fn focus<R: Runtime>(app: &AppHandle<R>) {
    if let Some(window) = app.get_webview_window("main") {
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
    }
}
