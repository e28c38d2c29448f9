//! The API's OpenAPI 3.1 document, generated with utoipa from the `#[utoipa::path]`
//! attributes on the handlers (api.rs, landing.rs) and the schema types below, then given
//! what every route shares: the `{code, message}` refusal with the stable codes each answer
//! can carry, and the refusals that can come from any route (a deadline, a broken store, a
//! body that is not JSON). Served at `GET /openapi.json`; `rekeyd openapi` prints it, and
//! docs/openapi.json is a copy that a test keeps in step.
//!
//! The answers built from rekey-core types (`ResetTarget`, `Strength`) are described by
//! schema types of their own here rather than by an optional `utoipa` feature on rekey-core:
//! the core stays free of anything HTTP, and the other fronts (the desktop app) build it
//! without a feature they do not need. The unit tests below read a core value through each
//! of these types, whose unknown fields are refused, so a field added to the core shows up
//! here as a failing test instead of an answer that the document does not describe.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use super::{api, landing};

/// Every stable code a refusal of the public API can carry. The `code` of the `Refusal`
/// schema is this enum; each operation's answers narrow it to the codes they can carry.
pub const CODES: &[&str] = &[
    // the request itself (body.rs, api.rs)
    "body_not_json",
    "body_encoding_unsupported",
    "body_unreadable",
    "body_invalid",
    "body_too_large",
    "proof_missing",
    "proof_ambiguous",
    "session_missing",
    "registration_closed",
    "request_timeout",
    "not_found",
    "method_not_allowed",
    // rekey-core's Error::code
    "email_missing",
    "email_invalid",
    "locale_invalid",
    "time_zone_invalid",
    "rate_limited",
    "busy",
    "password_too_short",
    "password_too_long",
    "password_common",
    "password_context",
    "password_pattern",
    "token_malformed",
    "token_bad_signature",
    "token_unsigned",
    "token_wrong_algorithm",
    "token_unknown_key",
    "token_wrong_issuer",
    "token_wrong_audience",
    "token_expired",
    "token_not_yet_valid",
    "token_replaced",
    "token_used",
    "token_stale",
    "code_invalid",
    "code_burned",
    "bad_credentials",
    "email_taken",
    "account_verified",
    "password_mismatch",
    "session_invalid",
    "data_locked",
    "setup_error",
    "store_unavailable",
    "internal",
];

/// A refusal: every answer of 400 and above. `code` is stable (match on it); `message` is
/// plain words for a person and may change, in the language the request's `Accept-Language`
/// asks for (English, German, French, Spanish, or one the operator adds; else the install's
/// `locale`), which `Content-Language` names. Refusals about the request itself (its body,
/// headers, method or address) are for developers and always English.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Refusal {
    /// The stable snake_case code.
    code: String,
    /// What went wrong, in words for a person, in the language `Content-Language` names.
    message: String,
}

/// "Accepted": the same answer whatever the address, so it says nothing about accounts.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct Accepted {
    /// What happens next, in words.
    message: String,
}

/// An account.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct Account {
    /// The account's id (the `sub` of its links).
    id: String,
    /// Its normalised address.
    email: String,
    /// The language of its mail (a BCP 47 tag like `de-AT`); `null`: the server's.
    #[schema(example = "de-AT")]
    locale: Option<String>,
    /// The time zone times in its mail are written in (an IANA name); `null`: UTC.
    #[schema(example = "Europe/Berlin")]
    time_zone: Option<String>,
}

/// A session: send `token` as `Authorization: Bearer <token>`.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct Session {
    /// The session token.
    token: String,
    /// Seconds until it expires.
    expires_in: i64,
}

/// Whose link this is and until when (rekey-core's `ResetTarget`).
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct LinkTarget {
    /// The account's address.
    email: String,
    /// When the link stops working (Unix seconds).
    expires_at: i64,
}

/// The policy's verdict on a password (rekey-core's `Strength`).
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct StrengthVerdict {
    /// 0 (guessed at once) to 4 (very hard to guess).
    #[schema(minimum = 0, maximum = 4)]
    score: u8,
    /// Estimated guesses, as a power of ten.
    guesses_log10: f64,
    /// Whether the policy accepts it.
    acceptable: bool,
    /// The policy's reason, in words, when it does not.
    problem: Option<String>,
    /// Hints for a better password.
    suggestions: Vec<String>,
}

/// What a client needs to know of this server.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct ServerInfo {
    /// The `iss` of the links this server mails now.
    issuer: String,
    /// Every `iss` its links have carried.
    issuers: Vec<String>,
    /// rekeyd's version.
    version: String,
    /// The API level: a client that needs more says the server is too old.
    api: u32,
    /// The password policy's shortest password.
    min_password_length: u32,
    /// Whether `POST /users` takes new accounts.
    registration: bool,
}

/// The store answers.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct Health {
    /// Always `ok`.
    #[schema(pattern = "^ok$")]
    status: String,
}

/// The two bearer credentials: a mailed link's token, and a session.
struct Credentials;

impl Modify for Credentials {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = |what: &str| {
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(what))
        };
        components.add_security_scheme(
            "link",
            SecurityScheme::Http(
                bearer("The token of a mailed link (rekey://reset?token=…, rekey://verify?token=…).")
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::Http(bearer("A session, from POST /sessions.").build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Rekey",
        description = "Password resets for desktop and on-prem software: ask for a reset, confirm it with the mailed link or code, register, sign in. Every refusal is JSON `{\"code\", \"message\"}` with a stable snake_case `code`; the codes each answer can carry are listed in its description and in its schema.",
        license(name = "MIT OR Apache-2.0", identifier = "MIT OR Apache-2.0")
    ),
    paths(
        api::register,
        api::verify,
        api::inspect_verify,
        api::sign_in,
        api::whoami,
        api::sign_out,
        api::change_password,
        api::set_locale,
        api::set_time_zone,
        api::info,
        api::forgot,
        api::reset,
        api::inspect,
        api::strength,
        api::health,
        landing::page,
        landing::script,
        landing::style,
        landing::common_script,
        landing::verify_page,
        landing::verify_script,
        document,
    ),
    components(schemas(Refusal)),
    modifiers(&Credentials),
    tags(
        (name = "reset", description = "Forgotten passwords: ask, inspect the link, confirm."),
        (name = "accounts", description = "New accounts, finished by the mailed link or code."),
        (name = "sessions", description = "Sign in, who am I, change password, sign out."),
        (name = "server", description = "What the server is, and whether it is up."),
        (name = "landing", description = "The pages behind the mailed https links."),
    )
)]
struct ApiDoc;

/// Refusals any route can answer with: (status, code, words, only routes that take a body).
const SHARED: &[(&str, &str, &str, bool)] = &[
    (
        "400",
        "body_invalid",
        "the body is not a JSON object with the fields this route takes",
        true,
    ),
    ("400", "body_unreadable", "the body could not be read", true),
    ("413", "body_too_large", "the body is larger than 64 KiB", true),
    (
        "415",
        "body_not_json",
        "the body is not sent as `Content-Type: application/json`",
        true,
    ),
    (
        "415",
        "body_encoding_unsupported",
        "the body carries a `Content-Encoding`",
        true,
    ),
    (
        "500",
        "internal",
        "something broke on the server's side (details in its log)",
        false,
    ),
    (
        "503",
        "request_timeout",
        "the request ran past `request_timeout` and was stopped",
        false,
    ),
    (
        "503",
        "store_unavailable",
        "the database (PostgreSQL) cannot be reached right now; nothing was changed",
        false,
    ),
];

/// The document as served and written to docs/openapi.json.
pub fn document_json() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serialises");
        finish(&mut doc);
        doc
    })
}

/// The document, pretty-printed, ending with a newline (as in docs/openapi.json).
pub fn document_text() -> String {
    let mut text = serde_json::to_string_pretty(document_json()).expect("the OpenAPI document serialises");
    text.push('\n');
    text
}

/// `GET /openapi.json`: this document (OpenAPI 3.1).
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "server",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API.", content_type = "application/json", body = Object))
)]
pub async fn document() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], document_text()).into_response()
}

/// Adds the shared refusals, the code enum, each refusal's own list of codes, and
/// `Retry-After` on the answers that carry it.
fn finish(doc: &mut Value) {
    doc["components"]["schemas"]["Refusal"]["properties"]["code"]["enum"] = json!(CODES);
    doc["components"]["schemas"]["Refusal"]["additionalProperties"] = json!(false);
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for item in paths.values_mut() {
        let Some(item) = item.as_object_mut() else { continue };
        for operation in item.values_mut() {
            finish_operation(operation);
        }
    }
}

fn finish_operation(operation: &mut Value) {
    let has_body = operation.get("requestBody").is_some();
    let responses = operation["responses"]
        .as_object_mut()
        .expect("an operation has responses");
    for (status, code, words, needs_body) in SHARED {
        if *needs_body && !has_body {
            continue;
        }
        let answer = responses
            .entry(status.to_string())
            .or_insert_with(|| json!({ "description": "Refused:" }));
        let text = answer["description"].as_str().unwrap_or_default().to_string();
        let joined = if text.ends_with(':') { " " } else { "; " };
        answer["description"] = json!(format!("{text}{joined}`{code}`: {words}"));
    }
    for (status, answer) in responses.iter_mut() {
        if !status.starts_with('4') && !status.starts_with('5') {
            continue;
        }
        let codes = codes_in(answer["description"].as_str().unwrap_or_default());
        answer["content"] = json!({
            "application/json": {
                "schema": {
                    "allOf": [{ "$ref": "#/components/schemas/Refusal" }],
                    "properties": { "code": { "enum": codes } }
                }
            }
        });
        if codes.iter().any(|c| c == "rate_limited" || c == "busy") {
            // Always there on a 429; on a 503, only with `busy`.
            let mut headers = Map::new();
            headers.insert(
                "Retry-After".into(),
                json!({
                    "description": "Seconds to wait before trying again (with `rate_limited` and `busy`).",
                    "required": status == "429",
                    "schema": { "type": "integer", "minimum": 1 }
                }),
            );
            answer["headers"] = Value::Object(headers);
        }
    }
}

/// The stable codes named (in backticks) in a refusal's description, in order.
fn codes_in(description: &str) -> Vec<String> {
    let mut codes: Vec<String> = Vec::new();
    for (i, part) in description.split('`').enumerate() {
        if i % 2 == 1 && CODES.contains(&part) && !codes.iter().any(|c| c == part) {
            codes.push(part.to_string());
        }
    }
    codes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_names_its_codes_and_every_code_is_known() {
        let doc = document_json();
        assert_eq!(doc["openapi"], "3.1.0");
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                for (status, answer) in operation["responses"].as_object().unwrap() {
                    if status.starts_with('4') || status.starts_with('5') {
                        let codes = &answer["content"]["application/json"]["schema"]["properties"]["code"]["enum"];
                        assert!(
                            !codes.as_array().unwrap().is_empty(),
                            "{method} {path} {status} names no code: {}",
                            answer["description"]
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_schema_types_read_the_cores_answers() {
        use rekey_core::password::Strength;
        use rekey_core::service::reset::ResetTarget;
        let target = ResetTarget {
            email: "a@example.com".into(),
            expires_at: 1,
        };
        serde_json::from_value::<LinkTarget>(serde_json::to_value(target).unwrap()).unwrap();
        let strength = Strength {
            score: 1,
            guesses_log10: 2.0,
            acceptable: false,
            problem: Some("short".into()),
            suggestions: vec![],
            refusal: None,
        };
        serde_json::from_value::<StrengthVerdict>(serde_json::to_value(strength).unwrap()).unwrap();
    }

    #[test]
    fn the_core_codes_are_in_the_enum() {
        use rekey_core::email::EmailError;
        use rekey_core::password::PolicyError;
        use rekey_core::token::TokenError;
        use rekey_core::Error;
        let mut errors = vec![
            Error::Email(EmailError::Empty),
            Error::Email(EmailError::Malformed),
            Error::LocaleInvalid(String::new()),
            Error::RateLimited { retry_after: 1 },
            Error::Busy { retry_after: 1 },
            Error::Password(PolicyError::TooLong),
            Error::Password(PolicyError::Common),
            Error::Password(PolicyError::Context),
            Error::TokenReplaced,
            Error::TokenUsed,
            Error::TokenStale,
            Error::CodeInvalid,
            Error::CodeBurned,
            Error::BadCredentials,
            Error::PasswordMismatch,
            Error::AccountVerified,
            Error::EmailTaken,
            Error::SessionInvalid,
            Error::Locked(String::new()),
            Error::Setup(String::new()),
            Error::StoreUnavailable,
            Error::Internal,
        ];
        errors.extend(
            [
                TokenError::Malformed,
                TokenError::BadSignature,
                TokenError::AlgNone,
                TokenError::WrongAlgorithm,
                TokenError::UnknownKey,
                TokenError::WrongIssuer,
                TokenError::WrongAudience,
                TokenError::Expired,
                TokenError::NotYetValid,
            ]
            .map(Error::Token),
        );
        for e in errors {
            assert!(CODES.contains(&e.code()), "{} is missing from openapi::CODES", e.code());
        }
    }
}
