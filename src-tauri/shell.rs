//! The app's state: this computer's store, where accounts live now (it, or a server), the
//! signed-in session, a link waiting for the page.

use std::sync::{Arc, Mutex, RwLock};

use rekey_core::{Config, Rekey};
use serde_json::json;
use tauri::{AppHandle, Emitter, Manager, Runtime};
use tokio::sync::watch;

use crate::backend::{Backend, Local, Remote};
use crate::link::{self, LinkError};
use crate::ui_error::UiError;

/// A link that arrived before the page could take it (a cold start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pending {
    Link(link::Action, String),
    Rejected(LinkError),
}

/// Everything the commands share.
pub struct Shell {
    /// This computer's own store (its mailbox and outbox too), opened whatever the mode.
    core: Result<Arc<Rekey>, UiError>,
    /// Where accounts live now: this computer, or the organisation's server.
    backend: RwLock<Result<Arc<dyn Backend>, UiError>>,
    /// The signed-in session: this store's or the server's token, in memory only, with the
    /// backend generation it belongs to.
    session: Mutex<Option<String>>,
    /// Bumped at every switch of backend, so a session from one side is never kept for the
    /// other (a sign-in still in flight when the settings switch servers).
    generation: std::sync::atomic::AtomicU64,
    pending: Mutex<Option<Pending>>,
    stop: watch::Sender<bool>,
}

impl Shell {
    /// Opens the core with `config`, and the backend it names (a server when `server_url` is
    /// set). A failure (another program holds the data, a broken config) is kept and shown by
    /// the page instead of crashing the app.
    pub fn open(config: Result<Config, String>) -> Shell {
        let config = config.map_err(|message| UiError {
            code: "setup_error".into(),
            message: crate::language::say("app-error-config", &[("problem", &message)]),
        });
        let core = config.clone().and_then(|c| {
            // The pooled SMTP transport starts its tasks on the runtime it is built in.
            let tauri::async_runtime::RuntimeHandle::Tokio(runtime) = tauri::async_runtime::handle();
            let _inside = runtime.enter();
            Rekey::open(c, "the Rekey app").map(Arc::new).map_err(UiError::from)
        });
        match &core {
            Ok(core) => {
                let sender = core.sender();
                let chosen = core.config().app_language.as_deref();
                crate::language::set(sender.in_locale(&crate::language::pick(sender.words(), chosen)));
            }
            Err(e) => tracing::error!(code = %e.code, "the core did not open"),
        }
        let backend = config.and_then(|c| match &c.server_url {
            Some(url) => Remote::new(
                url,
                c.server_ca_file.as_deref(),
                std::time::Duration::from_secs(c.server_timeout_secs),
            )
            .map(|r| Arc::new(r) as Arc<dyn Backend>),
            None => core.clone().map(|core| Arc::new(Local::new(core)) as Arc<dyn Backend>),
        });
        Shell {
            core,
            backend: RwLock::new(backend),
            session: Mutex::new(None),
            generation: Default::default(),
            pending: Mutex::new(None),
            stop: watch::channel(false).0,
        }
    }

    /// This computer's own store.
    pub fn core(&self) -> Result<&Arc<Rekey>, UiError> {
        self.core.as_ref().map_err(Clone::clone)
    }

    /// Where accounts live now.
    pub fn backend(&self) -> Result<Arc<dyn Backend>, UiError> {
        match self.backend.read() {
            Ok(b) => b.clone(),
            Err(_) => Err(UiError {
                code: "internal".into(),
                message: crate::language::say("app-error-restart", &[]),
            }),
        }
    }

    /// Switches where accounts live (settings: connect to a server, or back to this computer);
    /// whoever was signed in is signed out, since the session belongs to the other side.
    pub fn set_backend(&self, backend: Arc<dyn Backend>) {
        if let Ok(mut b) = self.backend.write() {
            *b = Ok(backend);
            // Under the same lock as the switch, so no session of the old side survives it.
            self.generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if let Ok(mut s) = self.session.lock() {
                *s = None;
            }
        }
    }

    /// Where accounts live now, and the generation to hand back to [`Shell::keep_session`].
    pub fn backend_now(&self) -> Result<(Arc<dyn Backend>, u64), UiError> {
        let backend = self.backend()?;
        Ok((backend, self.generation.load(std::sync::atomic::Ordering::SeqCst)))
    }

    /// Keeps `session`, unless the backend was switched since `generation` was read (then the
    /// session belongs to the other side and is dropped). Says whether it was kept.
    pub fn keep_session(&self, generation: u64, session: String) -> bool {
        let Ok(_switching) = self.backend.read() else {
            return false;
        };
        if self.generation.load(std::sync::atomic::Ordering::SeqCst) != generation {
            return false;
        }
        self.set_session(Some(session));
        true
    }

    /// This computer's store as a backend.
    pub fn local(&self) -> Result<Arc<dyn Backend>, UiError> {
        Ok(Arc::new(Local::new(self.core()?.clone())))
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
            // On the main thread at exit, outside the runtime's workers: blocking is fine.
            let _ = tauri::async_runtime::block_on(core.steps().flush());
        }
    }

    pub fn session(&self) -> Option<String> {
        self.session.lock().ok().and_then(|s| s.clone())
    }

    pub fn take_session(&self) -> Option<String> {
        self.session.lock().ok().and_then(|mut s| s.take())
    }

    pub fn set_session(&self, session: Option<String>) {
        if let Ok(mut s) = self.session.lock() {
            *s = session;
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
        Err(e) => app.emit("link-rejected", UiError::from(e)),
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
