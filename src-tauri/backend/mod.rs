//! The one interface the commands use, whichever store holds the accounts: this computer's own
//! ([`Local`], the core in-process) or the organisation's `rekeyd` ([`Remote`], its HTTP API).
//! The pages and the commands do not branch on the mode; only these two do.

mod local;
mod remote;

pub use local::Local;
pub use remote::{Remote, ServerInfo};

use async_trait::async_trait;
use rekey_core::password::Strength;
use rekey_core::service::Proof;
use serde::Serialize;

use crate::language::say;
use crate::ui_error::UiError;

type Answer<T> = Result<T, UiError>;

/// Whose link it is and until when (Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    pub email: String,
    pub expires_at: i64,
}

/// What asking for an account came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Registered {
    pub email: String,
    /// The account is finished by a mailed link or code (a server); else it exists now.
    pub verify_by_mail: bool,
}

/// How an account's mail is written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailSettings {
    /// Its language (`None`: the install's).
    pub locale: Option<String>,
    /// Its time zone (`None`: UTC).
    pub time_zone: Option<String>,
}

/// Where the accounts are, for the footer and the settings page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "mode", rename_all = "camelCase")]
pub enum Place {
    /// This computer's own store.
    Local,
    /// The organisation's server.
    Server { url: String },
}

/// Accounts and resets, wherever they live. Every method answers in words a person can act on.
#[async_trait]
pub trait Backend: Send + Sync {
    /// Where the accounts are.
    fn place(&self) -> Place;
    /// The password policy's shortest password.
    async fn min_length(&self) -> Answer<usize>;
    /// Asks for an account.
    async fn register(&self, email: &str, password: &str) -> Answer<Registered>;
    /// Whose account a verification link finishes.
    async fn inspect_verify(&self, token: &str) -> Answer<Target>;
    /// Finishes an account with the mailed proof and the password chosen when it was asked
    /// for; returns its address.
    async fn verify(&self, proof: Proof, password: &str) -> Answer<String>;
    /// Signs in; returns the address and the session.
    async fn sign_in(&self, email: &str, password: &str) -> Answer<(String, String)>;
    /// The address behind a session, if it still holds.
    async fn whoami(&self, session: &str) -> Answer<String>;
    /// How the signed-in account's mail is written: its language and time zone.
    async fn mail_settings(&self, session: &str) -> Answer<MailSettings>;
    /// Sets the language of the signed-in account's mail; answers it.
    async fn set_mail_language(&self, session: &str, locale: Option<&str>) -> Answer<Option<String>>;
    /// Sets the time zone of the times in the signed-in account's mail.
    async fn set_time_zone(&self, session: &str, zone: Option<&str>) -> Answer<()>;
    /// Ends a session.
    async fn sign_out(&self, session: &str) -> Answer<()>;
    /// Changes the signed-in account's password; returns the fresh session.
    async fn change_password(&self, session: &str, current: &str, new_password: &str) -> Answer<String>;
    /// Asks for a reset mail.
    async fn request_reset(&self, email: &str) -> Answer<()>;
    /// Whose reset link this is.
    async fn inspect_reset(&self, token: &str) -> Answer<Target>;
    /// Sets a new password with a link or a code.
    async fn confirm_reset(&self, proof: Proof, new_password: &str) -> Answer<()>;
    /// The strength verdict for a meter.
    async fn strength(&self, password: &str, email: Option<&str>) -> Answer<Strength>;
}

/// The `iss` claim of a JWT-shaped token, read without verifying anything: only to say whose
/// link it is before anything is sent anywhere.
pub fn issuer_of(token: &str) -> Option<String> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims["iss"].as_str().map(str::to_string)
}

/// The refusal for a link made by another Rekey than the one the app uses. The app never
/// contacts what a link names: that would hand a look-alike server the new password.
pub fn other_issuer(link_issuer: &str, here: &Place) -> UiError {
    let maker = if link_issuer.starts_with("rekey:") {
        say("app-error-maker-local", &[])
    } else {
        say("app-error-maker-server", &[("issuer", link_issuer)])
    };
    let message = match here {
        Place::Server { url } => say("app-error-other-issuer-server", &[("maker", &maker), ("url", url)]),
        Place::Local => say("app-error-other-issuer-local", &[("maker", &maker)]),
    };
    UiError {
        code: "link_other_server".into(),
        message,
    }
}
