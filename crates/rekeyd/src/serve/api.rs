//! The JSON endpoints. Each parses, calls the core, and answers; no rule lives here.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json as Reply;
use rekey_core::service::Proof;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::body::{ApiError, Fields, Json};
use super::client::{client_ip, client_key};
use super::App;

type Shared = State<Arc<App>>;
type Peer = ConnectInfo<SocketAddr>;

#[derive(Deserialize, ToSchema)]
pub struct Credentials {
    /// The address (trimmed, matched case-insensitively).
    #[schema(example = "zoe@example.com")]
    email: String,
    /// The password (any Unicode; the policy's minimum length, at most 1024 bytes).
    #[schema(example = "quiet river under the old mill")]
    password: String,
}
impl Fields for Credentials {
    const FIELDS: &'static str = "\"email\" and \"password\" (text)";
}

#[derive(Deserialize, ToSchema)]
pub struct Registration {
    /// The address (trimmed, matched case-insensitively).
    #[schema(example = "zoe@example.com")]
    email: String,
    /// The password (any Unicode; the policy's minimum length, at most 1024 bytes).
    #[schema(example = "quiet river under the old mill")]
    password: String,
    /// The language of the account's mail (a BCP 47 tag like `de-AT`); when absent, the
    /// request's `Accept-Language`, else the server's.
    #[schema(example = "de-AT")]
    locale: Option<String>,
}
impl Fields for Registration {
    const FIELDS: &'static str = "\"email\" and \"password\" (text), and \"locale\" (text, optional)";
}

#[derive(Deserialize, ToSchema)]
pub struct LocaleBody {
    /// The language of the account's mail (a BCP 47 tag like `de-AT`); `null`: the server's.
    #[schema(example = "de")]
    locale: Option<String>,
}
impl Fields for LocaleBody {
    const FIELDS: &'static str = "\"locale\" (text, or null for the server's)";
}

#[derive(Deserialize, ToSchema)]
pub struct TimeZoneBody {
    /// The time zone times in the account's mail are written in (an IANA name like
    /// `Europe/Berlin`); `null`: UTC.
    #[schema(example = "Europe/Berlin")]
    time_zone: Option<String>,
}
impl Fields for TimeZoneBody {
    const FIELDS: &'static str = "\"time_zone\" (text, or null for UTC)";
}

/// An account as the API shows it (the `Account` schema).
fn account(user: &rekey_core::service::UserInfo) -> Value {
    json!({"id": user.id, "email": user.email, "locale": user.locale, "time_zone": user.time_zone})
}

/// The language a request asks for in `Accept-Language`, if any tag there is one.
fn accept_language(headers: &HeaderMap) -> Option<String> {
    let header = headers.get(axum::http::header::ACCEPT_LANGUAGE)?.to_str().ok()?;
    rekey_core::words::from_accept_language(header)
}

#[derive(Deserialize, ToSchema)]
pub struct Forgot {
    /// The address (trimmed, matched case-insensitively).
    #[schema(example = "zoe@example.com")]
    email: String,
}
impl Fields for Forgot {
    const FIELDS: &'static str = "\"email\" (text)";
}

#[derive(Deserialize, ToSchema)]
pub struct ResetBody {
    /// The new password (any Unicode; the policy's minimum length, at most 1024 bytes).
    #[schema(example = "a brand new passphrase for zoe")]
    new_password: String,
    /// The token of the mailed link (or send it as `Authorization: Bearer`).
    token: Option<String>,
    /// With `code`: the address the mail went to.
    #[schema(example = "zoe@example.com")]
    email: Option<String>,
    /// With `email`: the code from the mail (`ABCD-EFGH`; case, spaces and the dash are forgiven).
    #[schema(example = "ABCD-EFGH")]
    code: Option<String>,
}
impl Fields for ResetBody {
    const FIELDS: &'static str =
        "\"new_password\" and either \"token\" (or the token as Authorization: Bearer) or \"email\" and \"code\"";
}

#[derive(Deserialize, ToSchema)]
pub struct TokenBody {
    /// The token of the mailed link.
    token: String,
}
impl Fields for TokenBody {
    const FIELDS: &'static str = "\"token\" (text)";
}

#[derive(Deserialize, ToSchema)]
pub struct StrengthBody {
    /// The password as typed so far (at most 4 KiB).
    #[schema(example = "quiet river under the old mill")]
    password: String,
    /// The account's address, whose parts count against the password (at most 320 bytes).
    #[schema(example = "zoe@example.com")]
    email: Option<String>,
}
impl Fields for StrengthBody {
    const FIELDS: &'static str = "\"password\" and, optionally, \"email\" (text)";
}

fn client(app: &App, peer: SocketAddr, headers: &HeaderMap) -> String {
    client_key(client_ip(peer, headers, &app.trusted_proxies))
}

/// Headers every answer carries: nothing here may be cached (answers carry sessions, and
/// refusals say things about addresses), and under TLS, HSTS.
pub async fn headers(State(app): Shared, req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    h.entry(header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
    if app.tls {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    response
}

/// The credential after `Bearer `, if the request carries one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim())
        .filter(|t| !t.is_empty())
}

/// `POST /users`: ask for an account. The same 202 for every well-formed address; the mail
/// that follows finishes the account (or tells an existing account's owner).
#[utoipa::path(
    post,
    path = "/users",
    tag = "accounts",
    request_body = Registration,
    params(("Accept-Language" = Option<String>, Header, description = "The language of the account's mail when the body names none")),
    responses(
        (status = 202, description = "Asked for: the same answer for every well-formed address; the mail finishes the account (or tells an existing account's owner)", body = super::openapi::Accepted),
        (status = 400, description = "Refused: `email_missing`, `email_invalid`: the address; `password_too_short`, `password_too_long`, `password_common`, `password_context`, `password_pattern`: the password breaks the policy; `locale_invalid`: `locale` is not a language tag", body = super::openapi::Refusal),
        (status = 403, description = "`registration_closed`: this server takes no new accounts", body = super::openapi::Refusal),
        (status = 429, description = "`rate_limited`: too many attempts; wait `Retry-After` seconds", body = super::openapi::Refusal),
        (status = 503, description = "`busy`: the password hashing queue is full; wait `Retry-After` seconds", body = super::openapi::Refusal)
    )
)]
pub async fn register(
    State(app): Shared,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Json(body): Json<Registration>,
) -> Result<Response, ApiError> {
    if !app.registration {
        return Err(super::body::said(
            StatusCode::FORBIDDEN,
            "registration_closed",
            "error-registration-closed",
        ));
    }
    let locale = body.locale.or_else(|| accept_language(&headers));
    app.rekey
        .request_account(
            &body.email,
            &body.password,
            locale.as_deref(),
            &client(&app, peer, &headers),
        )
        .await?;
    let minutes = app.rekey.config().reset_ttl_secs / 60;
    let message = format!(
        "Check your mail: a link and a code to finish the account are on their way (unless the address already has one, in which case its owner is told). They work for {minutes} minutes."
    );
    Ok((StatusCode::ACCEPTED, Reply(json!({ "message": message }))).into_response())
}

/// Every field is optional (a token or an address and code), so unknown ones are refused:
/// otherwise any JSON object at all would read as "no proof".
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyBody {
    /// The token of the mailed link (or send it as `Authorization: Bearer`).
    token: Option<String>,
    /// With `code`: the address the mail went to.
    #[schema(example = "zoe@example.com")]
    email: Option<String>,
    /// With `email`: the code from the mail (`ABCD-EFGH`; case, spaces and the dash are forgiven).
    #[schema(example = "ABCD-EFGH")]
    code: Option<String>,
    /// The password chosen when the account was asked for.
    #[schema(example = "quiet river under the old mill")]
    password: String,
}
impl Fields for VerifyBody {
    const FIELDS: &'static str =
        "\"password\" (the one chosen when the account was asked for) and \"token\" (or the token as Authorization: Bearer), or \"email\" and \"code\"";
}

/// `POST /users/verify`: finish an account with the mailed link's token or the code, and the
/// password chosen when it was asked for (so a stranger who asked for someone else's address
/// cannot have the owner finish an account with the stranger's password).
#[utoipa::path(
    post,
    path = "/users/verify",
    tag = "accounts",
    security((), ("link" = [])),
    request_body = VerifyBody,
    responses(
        (status = 201, description = "The account exists and can sign in", body = super::openapi::Account),
        (status = 400, description = "Refused: `proof_missing`, `proof_ambiguous`: no token or code, or two different tokens; `token_malformed`, `token_bad_signature`, `token_unsigned`, `token_wrong_algorithm`, `token_unknown_key`, `token_wrong_issuer`, `token_wrong_audience`, `token_expired`, `token_not_yet_valid`, `token_replaced`, `token_stale`: the link does not work; `code_invalid`, `code_burned`: the code does not work; `email_missing`, `email_invalid`: the address sent with a code; `password_mismatch`: not the password chosen when the account was asked for", body = super::openapi::Refusal),
        (status = 409, description = "`account_verified`, `email_taken`: the link was used, or the address has an account already", body = super::openapi::Refusal),
        (status = 429, description = "`rate_limited`: too many attempts; wait `Retry-After` seconds", body = super::openapi::Refusal),
        (status = 503, description = "`busy`: the password hashing queue is full; wait `Retry-After` seconds", body = super::openapi::Refusal)
    )
)]
pub async fn verify(
    State(app): Shared,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Json(body): Json<VerifyBody>,
) -> Result<Response, ApiError> {
    let proof = proof(&headers, body.token, body.email, body.code)?;
    let user = app
        .rekey
        .verify_account(proof, &body.password, &client(&app, peer, &headers))
        .await?;
    Ok((StatusCode::CREATED, Reply(account(&user))).into_response())
}

/// `POST /users/verify/inspect`: whose account a verification link finishes; consumes nothing.
#[utoipa::path(
    post,
    path = "/users/verify/inspect",
    tag = "accounts",
    operation_id = "inspect_verify_link",
    request_body = TokenBody,
    responses(
        (status = 200, description = "Whose account the link finishes, and until when; consumes nothing", body = super::openapi::LinkTarget),
        (status = 400, description = "Refused: `token_malformed`, `token_bad_signature`, `token_unsigned`, `token_wrong_algorithm`, `token_unknown_key`, `token_wrong_issuer`, `token_wrong_audience`, `token_expired`, `token_not_yet_valid`, `token_replaced`, `token_stale`: the link does not work", body = super::openapi::Refusal),
        (status = 409, description = "`account_verified`: the link was used: the account is ready", body = super::openapi::Refusal)
    )
)]
pub async fn inspect_verify(State(app): Shared, Json(body): Json<TokenBody>) -> Result<Response, ApiError> {
    let target = app.rekey.inspect_verify_link(&body.token).await?;
    Ok(Reply(target).into_response())
}

/// The proof a request carries: the token as Bearer or in the body (not two different
/// ones), or the address and the code.
fn proof(
    headers: &HeaderMap,
    token: Option<String>,
    email: Option<String>,
    code: Option<String>,
) -> Result<Proof, ApiError> {
    match (bearer(headers), token, email, code) {
        (Some(a), Some(b), _, _) if a != b => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "proof_ambiguous",
            "The request carries two different tokens; send one.",
        )),
        (Some(t), _, _, _) => Ok(Proof::Token(t.to_string())),
        (None, Some(t), _, _) => Ok(Proof::Token(t)),
        (None, None, Some(email), Some(code)) => Ok(Proof::Code { email, code }),
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "proof_missing",
            "Send the token from the link (as Authorization: Bearer <token>, or \"token\" in the body), or \"email\" and \"code\" from the mail.",
        )),
    }
}

/// `POST /sessions`: sign in.
#[utoipa::path(
    post,
    path = "/sessions",
    tag = "sessions",
    request_body = Credentials,
    responses(
        (status = 200, description = "Signed in", body = super::openapi::Session),
        (status = 400, description = "Refused: `email_missing`, `email_invalid`: the address", body = super::openapi::Refusal),
        (status = 401, description = "`bad_credentials`: wrong password, unknown, disabled or unverified account alike", body = super::openapi::Refusal),
        (status = 429, description = "`rate_limited`: too many attempts; wait `Retry-After` seconds", body = super::openapi::Refusal),
        (status = 503, description = "`busy`: the password hashing queue is full; wait `Retry-After` seconds", body = super::openapi::Refusal)
    )
)]
pub async fn sign_in(
    State(app): Shared,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Json(body): Json<Credentials>,
) -> Result<Response, ApiError> {
    let session = app
        .rekey
        .sign_in(&body.email, &body.password, &client(&app, peer, &headers))
        .await?;
    let ttl = app.rekey.config().session_ttl_secs;
    Ok(Reply(json!({"token": session.0, "expires_in": ttl})).into_response())
}

fn session(headers: &HeaderMap) -> Result<&str, ApiError> {
    bearer(headers).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "session_missing",
            "Send the session as Authorization: Bearer <token>.",
        )
    })
}

/// `GET /sessions/current`: whose session this is, if it still holds.
#[utoipa::path(
    get,
    path = "/sessions/current",
    tag = "sessions",
    security(("session" = [])),
    responses(
        (status = 200, description = "Whose session this is", body = super::openapi::Account),
        (status = 401, description = "`session_missing`, `session_invalid`: no session, or one that has ended", body = super::openapi::Refusal)
    )
)]
pub async fn whoami(State(app): Shared, headers: HeaderMap) -> Result<Response, ApiError> {
    let user = app.rekey.session_user(session(&headers)?).await?;
    Ok(Reply(account(&user)).into_response())
}

/// `PUT /sessions/current/locale`: the signed-in account chooses the language of its mail.
#[utoipa::path(
    put,
    path = "/sessions/current/locale",
    tag = "sessions",
    security(("session" = [])),
    request_body = LocaleBody,
    responses(
        (status = 200, description = "Set: the account as it is now", body = super::openapi::Account),
        (status = 400, description = "`locale_invalid`: not a language tag like `de` or `de-AT`", body = super::openapi::Refusal),
        (status = 401, description = "`session_missing`, `session_invalid`: no session, or one that has ended", body = super::openapi::Refusal)
    )
)]
pub async fn set_locale(
    State(app): Shared,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Json(body): Json<LocaleBody>,
) -> Result<Response, ApiError> {
    let user = app
        .rekey
        .set_own_locale(
            session(&headers)?,
            body.locale.as_deref(),
            &client(&app, peer, &headers),
        )
        .await?;
    Ok(Reply(account(&user)).into_response())
}

/// `PUT /sessions/current/time_zone`: the signed-in account chooses the time zone of its mail.
#[utoipa::path(
    put,
    path = "/sessions/current/time_zone",
    tag = "sessions",
    security(("session" = [])),
    request_body = TimeZoneBody,
    responses(
        (status = 200, description = "Set: the account as it is now", body = super::openapi::Account),
        (status = 400, description = "`time_zone_invalid`: not a time zone of the tz database, like `Europe/Berlin`", body = super::openapi::Refusal),
        (status = 401, description = "`session_missing`, `session_invalid`: no session, or one that has ended", body = super::openapi::Refusal)
    )
)]
pub async fn set_time_zone(
    State(app): Shared,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Json(body): Json<TimeZoneBody>,
) -> Result<Response, ApiError> {
    let user = app
        .rekey
        .set_own_time_zone(
            session(&headers)?,
            body.time_zone.as_deref(),
            &client(&app, peer, &headers),
        )
        .await?;
    Ok(Reply(account(&user)).into_response())
}

/// `DELETE /sessions/current`: sign out the session in the Bearer header (idempotent).
#[utoipa::path(
    delete,
    path = "/sessions/current",
    tag = "sessions",
    security(("session" = [])),
    responses(
        (status = 204, description = "Signed out (also when the session had ended already, or was never one: signing out is idempotent)"),
        (status = 401, description = "`session_missing`: no `Authorization: Bearer` session", body = super::openapi::Refusal)
    )
)]
pub async fn sign_out(State(app): Shared, headers: HeaderMap) -> Result<StatusCode, ApiError> {
    app.rekey.sign_out(session(&headers)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /users/password/forgot`: the same 202 for every well-formed address.
#[utoipa::path(
    post,
    path = "/users/password/forgot",
    tag = "reset",
    request_body = Forgot,
    responses(
        (status = 202, description = "The same answer for every well-formed address, known, unknown or over its limit", body = super::openapi::Accepted),
        (status = 400, description = "Refused: `email_missing`, `email_invalid`: the address", body = super::openapi::Refusal),
        (status = 429, description = "`rate_limited`: too many attempts; wait `Retry-After` seconds", body = super::openapi::Refusal),
        (status = 503, description = "`busy`: `intake_limit` requests are waiting already (alike for every address); wait `Retry-After` seconds", body = super::openapi::Refusal)
    )
)]
pub async fn forgot(
    State(app): Shared,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Json(body): Json<Forgot>,
) -> Result<Response, ApiError> {
    app.rekey
        .request_reset(&body.email, &client(&app, peer, &headers))
        .await?;
    let minutes = app.rekey.config().reset_ttl_secs / 60;
    let message = format!(
        "If an account uses that address, a reset link and code are on their way. They work for {minutes} minutes."
    );
    Ok((StatusCode::ACCEPTED, Reply(json!({ "message": message }))).into_response())
}

/// `POST /users/password/reset`: the token as Bearer or in the body, or the email and code.
#[utoipa::path(
    post,
    path = "/users/password/reset",
    tag = "reset",
    security((), ("link" = [])),
    request_body = ResetBody,
    responses(
        (status = 204, description = "The password is set; every session and other link of the account has ended"),
        (status = 400, description = "Refused: `proof_missing`, `proof_ambiguous`: no token or code, or two different tokens; `token_malformed`, `token_bad_signature`, `token_unsigned`, `token_wrong_algorithm`, `token_unknown_key`, `token_wrong_issuer`, `token_wrong_audience`, `token_expired`, `token_not_yet_valid`, `token_used`, `token_replaced`, `token_stale`: the link does not work; `code_invalid`, `code_burned`: the code does not work (one answer for every failure by code); `email_missing`, `email_invalid`: the address sent with a code; `password_too_short`, `password_too_long`, `password_common`, `password_context`, `password_pattern`: the new password breaks the policy", body = super::openapi::Refusal),
        (status = 429, description = "`rate_limited`: too many attempts; wait `Retry-After` seconds", body = super::openapi::Refusal),
        (status = 503, description = "`busy`: the password hashing queue is full; wait `Retry-After` seconds", body = super::openapi::Refusal)
    )
)]
pub async fn reset(
    State(app): Shared,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Json(body): Json<ResetBody>,
) -> Result<StatusCode, ApiError> {
    let proof = proof(&headers, body.token, body.email, body.code)?;
    app.rekey
        .confirm_reset(proof, &body.new_password, &client(&app, peer, &headers))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /users/password/inspect`: whose link this is and until when; consumes nothing.
#[utoipa::path(
    post,
    path = "/users/password/inspect",
    tag = "reset",
    operation_id = "inspect_reset_link",
    request_body = TokenBody,
    responses(
        (status = 200, description = "Whose link this is and until when; consumes nothing", body = super::openapi::LinkTarget),
        (status = 400, description = "Refused: `token_malformed`, `token_bad_signature`, `token_unsigned`, `token_wrong_algorithm`, `token_unknown_key`, `token_wrong_issuer`, `token_wrong_audience`, `token_expired`, `token_not_yet_valid`, `token_used`, `token_replaced`, `token_stale`: the link does not work", body = super::openapi::Refusal)
    )
)]
pub async fn inspect(State(app): Shared, Json(body): Json<TokenBody>) -> Result<Response, ApiError> {
    let target = app.rekey.inspect_reset_link(&body.token).await?;
    Ok(Reply(target).into_response())
}

/// `POST /users/password/strength`: the policy's verdict, for a live meter. Asked at every
/// pause in typing, so it is limited per client, and its inputs are bounded.
#[utoipa::path(
    post,
    path = "/users/password/strength",
    tag = "reset",
    request_body = StrengthBody,
    responses(
        (status = 200, description = "The policy's verdict", body = super::openapi::StrengthVerdict),
        (status = 400, description = "Refused: `password_too_long`: over 4 KiB; `email_invalid`: over 320 bytes", body = super::openapi::Refusal),
        (status = 429, description = "`rate_limited`: too many attempts; wait `Retry-After` seconds", body = super::openapi::Refusal)
    )
)]
pub async fn strength(
    State(app): Shared,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Json(body): Json<StrengthBody>,
) -> Result<Response, ApiError> {
    let verdict = app
        .rekey
        .rate_strength(&body.password, body.email.as_deref(), &client(&app, peer, &headers))
        .await?;
    Ok(Reply(verdict.worded(super::body::refusal_words)).into_response())
}

/// `GET /info`: what a client (the desktop app in connected mode) needs to know of this
/// server: which `iss` its links carry, its version and API level, the password policy's
/// minimum length, and whether it takes new accounts. Nothing about accounts or mail.
#[utoipa::path(
    get,
    path = "/info",
    tag = "server",
    responses(
        (status = 200, description = "What a client needs to know of this server", body = super::openapi::ServerInfo)
    )
)]
pub async fn info(State(app): Shared) -> Response {
    let config = app.rekey.config();
    Reply(json!({
        "issuer": app.rekey.issuer(),
        "issuers": app.rekey.issuers(),
        "version": env!("CARGO_PKG_VERSION"),
        "api": API_LEVEL,
        "min_password_length": config.password_min_length,
        "registration": app.registration,
    }))
    .into_response()
}

/// The API's level: a client that needs more says the server is too old.
pub const API_LEVEL: u32 = 2;

#[derive(Deserialize, ToSchema)]
pub struct ChangeBody {
    /// The password now.
    #[schema(example = "quiet river under the old mill")]
    current: String,
    /// The new password (any Unicode; the policy's minimum length, at most 1024 bytes).
    #[schema(example = "a brand new passphrase for zoe")]
    new_password: String,
}
impl Fields for ChangeBody {
    const FIELDS: &'static str = "\"current\" and \"new_password\" (text)";
}

/// `POST /sessions/current/password`: the signed-in account changes its password. Every
/// session ends (the stamp rotates); the answer carries a fresh one for the caller.
#[utoipa::path(
    post,
    path = "/sessions/current/password",
    tag = "sessions",
    security(("session" = [])),
    request_body = ChangeBody,
    responses(
        (status = 200, description = "Changed: a fresh session; every other one has ended", body = super::openapi::Session),
        (status = 400, description = "Refused: `password_too_short`, `password_too_long`, `password_common`, `password_context`, `password_pattern`: the new password breaks the policy", body = super::openapi::Refusal),
        (status = 401, description = "`session_missing`, `session_invalid`: no session, or one that has ended; `bad_credentials`: `current` is not the password", body = super::openapi::Refusal),
        (status = 429, description = "`rate_limited`: too many attempts; wait `Retry-After` seconds", body = super::openapi::Refusal),
        (status = 503, description = "`busy`: the password hashing queue is full; wait `Retry-After` seconds", body = super::openapi::Refusal)
    )
)]
pub async fn change_password(
    State(app): Shared,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Json(body): Json<ChangeBody>,
) -> Result<Response, ApiError> {
    let fresh = app
        .rekey
        .change_password(
            session(&headers)?,
            &body.current,
            &body.new_password,
            &client(&app, peer, &headers),
        )
        .await?;
    let ttl = app.rekey.config().session_ttl_secs;
    Ok(Reply(json!({"token": fresh.0, "expires_in": ttl})).into_response())
}

/// `GET /healthz`: the store answers. One counter read, so it stays cheap however deep the
/// outbox is (counting the queue walks it; that is for `/metrics`).
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "server",
    responses(
        (status = 200, description = "The store answers", body = super::openapi::Health)
    )
)]
pub async fn health(State(app): Shared) -> Result<Response, ApiError> {
    app.rekey.steps().counter("outbox.delivered").await?;
    Ok(Reply(json!({"status": "ok"})).into_response())
}

pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "There is nothing at this address.")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "This address does not take that method.",
    )
}

/// Stops a request that runs past the configured limit (a hash queue that is too long, a
/// stuck disk) so it cannot hold a connection for ever.
pub async fn deadline(limit: Duration, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "request_timeout",
            format!(
                "The request took longer than {} seconds and was stopped; try again.",
                limit.as_secs()
            ),
        )
        .into_response(),
    }
}
