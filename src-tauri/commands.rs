//! The commands the window calls. Each parses its input, calls the backend (this computer's
//! store or the organisation's server: the commands do not know which), and hands the page a
//! refusal as `{code, message}`; library error text never reaches the page.

use serde::Serialize;
use tauri::{AppHandle, Runtime, State};

use crate::backend::{Place, Registered, Target};
use crate::link;
use crate::mailbox;
use crate::shell::{Pending, Shell};
use crate::ui_error::UiError;
use rekey_core::mailer::Mailer;
use rekey_core::service::Proof;

/// How long "send again" waits on the "check your mail" page.
pub const RESEND_AFTER_SECS: u64 = 60;

type Answer<T> = Result<T, UiError>;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MailInfo {
    /// `mailbox` (this computer's local mailbox), `smtp` (this computer's mail server), or
    /// `server` (the organisation's server sends the mail).
    mode: &'static str,
    #[serde(rename = "where")]
    place: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppInfo {
    version: &'static str,
    /// The operator's name for the product (`product_name`), for the title and the words.
    product_name: String,
    /// Where the accounts are: this computer, or a server (its address).
    place: Place,
    mail: MailInfo,
    signed_in: Option<Account>,
    min_length: usize,
    /// The window's chosen language (`app_language`); `None`: the system's.
    app_language: Option<String>,
}

#[derive(Serialize, Debug, PartialEq, Eq)]
pub struct Account {
    pub email: String,
}

/// The link's token, or the address and the code from the mail.
fn proof(token: Option<String>, email: Option<String>, code: Option<String>) -> Answer<Proof> {
    match (token, email, code) {
        (Some(token), _, _) => Ok(Proof::Token(token)),
        (None, Some(email), Some(code)) => Ok(Proof::Code { email, code }),
        _ => Err(UiError {
            code: "proof_missing".into(),
            message: crate::language::say("app-error-proof-missing", &[]),
        }),
    }
}

/// A link waiting for the page: what it is for, and its token.
#[derive(Serialize)]
pub struct PendingLink {
    action: link::Action,
    token: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Requested {
    resend_after_secs: u64,
}

/// The "check your mail" page's view of the mail. With a server, nothing of its queue: its
/// depth or last error would tell a stranger at this keyboard what the server's 202 hid.
#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct MailStatus {
    mode: &'static str,
    #[serde(rename = "where")]
    place: String,
    depth: usize,
    oldest_age_secs: Option<i64>,
    last_error: Option<String>,
    dead: usize,
    delivered: u64,
}

fn mail_info(shell: &Shell) -> Answer<MailInfo> {
    if let Place::Server { url } = shell.backend()?.place() {
        return Ok(MailInfo {
            mode: "server",
            place: url,
        });
    }
    let mailer = shell.core()?.outbox().mailer();
    // Where, without words around it: the window says it in its own language.
    let (mode, place) = match mailer {
        Mailer::Mailbox(dir) => ("mailbox", dir.display().to_string()),
        Mailer::Smtp { server, .. } => ("smtp", server.to_string()),
    };
    Ok(MailInfo { mode, place })
}

/// Set once the page has asked for `app_info`, i.e. its script runs and it is about to draw.
static WINDOW_READY: std::sync::Once = std::sync::Once::new();

/// The app's state for the page. A server that cannot be reached is said in words, and the
/// page still draws (with the policy's default length until the server answers).
#[tauri::command]
pub async fn app_info(shell: State<'_, Shell>) -> Answer<AppInfo> {
    // The desktop benchmark times the cold start by this line.
    WINDOW_READY.call_once(|| tracing::info!("window ready"));
    let backend = shell.backend()?;
    let signed_in = match shell.session() {
        Some(session) => match backend.whoami(&session).await {
            Ok(email) => Some(Account { email }),
            // Ended (a reset elsewhere, its time up): forgotten. A server that cannot be
            // reached just now cannot vouch for it, but it is kept for when it can.
            Err(e) => {
                if e.code == "session_invalid" {
                    shell.set_session(None);
                }
                None
            }
        },
        None => None,
    };
    Ok(AppInfo {
        version: env!("CARGO_PKG_VERSION"),
        product_name: shell.core()?.config().product_name.clone(),
        place: backend.place(),
        mail: mail_info(&shell)?,
        signed_in,
        min_length: backend.min_length().await.unwrap_or(15),
        // Read afresh: the settings page may have chosen one since the start.
        app_language: crate::settings::load().ok().and_then(|c| c.app_language),
    })
}

/// Asks for an account. On this computer's own store it exists at once; on a server, a mail
/// with a link and a code finishes it (`verifyByMail`).
#[tauri::command]
pub async fn register(shell: State<'_, Shell>, email: String, password: String) -> Answer<Registered> {
    shell.backend()?.register(&email, &password).await
}

/// Whose account a verification link finishes; consumes nothing.
#[tauri::command]
pub async fn inspect_verify_link(shell: State<'_, Shell>, token: String) -> Answer<Target> {
    shell.backend()?.inspect_verify(&token).await
}

/// Finishes an account with the mailed link's token (or the address and code) and the
/// password chosen when it was asked for.
#[tauri::command]
pub async fn verify_account(
    shell: State<'_, Shell>,
    token: Option<String>,
    email: Option<String>,
    code: Option<String>,
    password: String,
) -> Answer<Account> {
    let email = shell.backend()?.verify(proof(token, email, code)?, &password).await?;
    Ok(Account { email })
}

#[tauri::command]
pub async fn sign_in(shell: State<'_, Shell>, email: String, password: String) -> Answer<Account> {
    let (backend, generation) = shell.backend_now()?;
    let (email, session) = backend.sign_in(&email, &password).await?;
    if !shell.keep_session(generation, session.clone()) {
        return Err(switched());
    }
    // On the side: a slow server must not hold up the sign-in for it.
    tauri::async_runtime::spawn(async move { keep_time_zone(backend.as_ref(), &session).await });
    Ok(Account { email })
}

/// Times in the account's mail follow the computer it signs in on: its time zone is told to
/// the account when it differs. Best effort: a server too old for it, or a zone this
/// computer cannot name, leaves the account as it was.
async fn keep_time_zone(backend: &dyn crate::backend::Backend, session: &str) {
    let Some(zone) = rekey_core::words::os_time_zone() else {
        return;
    };
    match backend.mail_settings(session).await {
        Ok(settings) if settings.time_zone.as_deref() != Some(zone.as_str()) => {
            if let Err(e) = backend.set_time_zone(session, Some(&zone)).await {
                tracing::warn!(code = %e.code, "the account's time zone was not set");
            }
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(code = %e.code, "the account's time zone was not read"),
    }
}

/// The settings switched servers while a sign-in was on its way.
fn switched() -> UiError {
    UiError {
        code: "server_switched".into(),
        message: crate::language::say("app-error-switched", &[]),
    }
}

#[tauri::command]
pub async fn sign_out(shell: State<'_, Shell>) -> Answer<()> {
    if let Some(session) = shell.take_session() {
        // Already ended (say, by a reset elsewhere) is as good as signed out; a server that
        // cannot be reached forgets the session itself when it expires.
        if let Err(e) = shell.backend()?.sign_out(&session).await {
            if e.code != "session_invalid" && e.code != "session_missing" {
                tracing::warn!(code = %e.code, "signing out at the server failed; the session is forgotten here");
            }
        }
    }
    Ok(())
}

#[tauri::command]
pub async fn change_password(shell: State<'_, Shell>, current: String, new_password: String) -> Answer<()> {
    let (backend, generation) = shell.backend_now()?;
    let session = shell
        .session()
        .ok_or_else(|| UiError::from(rekey_core::Error::SessionInvalid))?;
    let fresh = backend.change_password(&session, &current, &new_password).await?;
    if !shell.keep_session(generation, fresh) {
        return Err(switched());
    }
    Ok(())
}

/// The language of the signed-in account's mail: a tag, or `None` for the install's.
#[tauri::command]
pub async fn mail_language(shell: State<'_, Shell>) -> Answer<Option<String>> {
    let session = shell
        .session()
        .ok_or_else(|| UiError::from(rekey_core::Error::SessionInvalid))?;
    Ok(shell.backend()?.mail_settings(&session).await?.locale)
}

/// Sets the language of the signed-in account's mail (`None`: the install's); answers it.
#[tauri::command]
pub async fn set_mail_language(shell: State<'_, Shell>, locale: Option<String>) -> Answer<Option<String>> {
    let session = shell
        .session()
        .ok_or_else(|| UiError::from(rekey_core::Error::SessionInvalid))?;
    let locale = locale.filter(|l| !l.trim().is_empty());
    shell.backend()?.set_mail_language(&session, locale.as_deref()).await
}

#[tauri::command]
pub async fn request_reset(shell: State<'_, Shell>, email: String) -> Answer<Requested> {
    shell.backend()?.request_reset(&email).await?;
    Ok(Requested {
        resend_after_secs: RESEND_AFTER_SECS,
    })
}

/// The link the app was started with, once.
#[tauri::command]
pub fn take_pending_link(shell: State<'_, Shell>) -> Answer<Option<PendingLink>> {
    match shell.take_pending() {
        None => Ok(None),
        Some(Pending::Link(action, token)) => Ok(Some(PendingLink { action, token })),
        Some(Pending::Rejected(e)) => Err(e.into()),
    }
}

/// Whose link this is and until when; says "used", "replaced" or "expired" before the
/// person types anything. Consumes nothing.
#[tauri::command]
pub async fn inspect_link(shell: State<'_, Shell>, token: String) -> Answer<Target> {
    // The desktop benchmark times a link's hand-over by these lines (no token in them).
    tracing::info!("reset page checks its link");
    let target = shell.backend()?.inspect_reset(&token).await;
    tracing::info!(known = target.is_ok(), "reset page has its link's answer");
    target
}

#[tauri::command]
pub async fn confirm_reset(
    shell: State<'_, Shell>,
    token: Option<String>,
    email: Option<String>,
    code: Option<String>,
    new_password: String,
) -> Answer<()> {
    shell
        .backend()?
        .confirm_reset(proof(token, email, code)?, &new_password)
        .await
}

#[tauri::command]
pub async fn password_strength(
    shell: State<'_, Shell>,
    password: String,
    email: Option<String>,
) -> Answer<rekey_core::password::Strength> {
    shell.backend()?.strength(&password, email.as_deref()).await
}

#[tauri::command]
pub async fn mail_status(shell: State<'_, Shell>) -> Answer<MailStatus> {
    let info = mail_info(&shell)?;
    if info.mode == "server" {
        return Ok(MailStatus {
            mode: info.mode,
            place: info.place,
            ..MailStatus::default()
        });
    }
    let status = shell.core()?.outbox().status().await?;
    Ok(MailStatus {
        mode: info.mode,
        place: info.place,
        depth: status.depth,
        oldest_age_secs: status.oldest_age_secs,
        last_error: status.last_error,
        dead: status.dead,
        delivered: status.delivered,
    })
}

fn mailbox_dir(shell: &Shell) -> Answer<std::path::PathBuf> {
    if let Place::Server { .. } = shell.backend()?.place() {
        return Err(UiError {
            code: "mailbox_off".into(),
            message: crate::language::say("app-error-mailbox-server", &[]),
        });
    }
    match shell.core()?.outbox().mailer() {
        Mailer::Mailbox(dir) => Ok(dir.clone()),
        Mailer::Smtp { .. } => Err(UiError {
            code: "mailbox_off".into(),
            message: crate::language::say("app-error-mailbox-smtp", &[]),
        }),
    }
}

fn mailbox_error(message: String) -> UiError {
    UiError {
        code: "mailbox_unreadable".into(),
        message,
    }
}

#[tauri::command]
pub fn mailbox_list(shell: State<'_, Shell>) -> Answer<Vec<mailbox::Summary>> {
    let dir = mailbox_dir(&shell)?;
    mailbox::list(&dir).map_err(|e| {
        tracing::warn!(error = %e, "the local mailbox cannot be read");
        mailbox_error(crate::language::say(
            "app-error-mailbox-unreadable",
            &[("folder", &dir.display().to_string())],
        ))
    })
}

#[tauri::command]
pub fn mailbox_open(shell: State<'_, Shell>, id: String) -> Answer<mailbox::Letter> {
    mailbox::open(&mailbox_dir(&shell)?, &id).map_err(|why| mailbox_error(crate::language::say(why, &[])))
}

/// A `rekey://` link clicked inside the app (the local mailbox): handled like one from
/// the system.
#[tauri::command]
pub fn open_link<R: Runtime>(app: AppHandle<R>, url: String) -> Answer<()> {
    link::parse(&url)?;
    crate::shell::deliver_link(&app, &url, false);
    Ok(())
}
