//! Request bodies and error answers. Every refusal is JSON `{code, message}`; serde's own
//! text never reaches the client, because it can quote the input (a password, say).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::App;

/// The largest body any endpoint takes; the biggest real one (a 1024-byte password and a
/// token) is a few KiB.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A refusal as the client sees it.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub retry_after: Option<i64>,
    /// The language of `message`, when it is worded in the request's (`Content-Language`).
    pub language: Option<String>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    message: &'a str,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
            language: None,
        }
    }
}

/// The request being answered, as far as its refusals' words go.
struct Asking {
    app: Arc<App>,
    accept_language: Option<HeaderValue>,
}

tokio::task_local! {
    /// Set around each request by [`speak`]; read only when a refusal is worded, so a request
    /// answered without one pays for no language.
    static ASKING: Asking;
}

/// Answers the request in the language its `Accept-Language` asks for (else the install's):
/// the core's refusals are worded in it (protocol refusals, about bodies and headers, are
/// for developers and stay English).
pub async fn speak(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let accept_language = req.headers().get(header::ACCEPT_LANGUAGE).cloned();
    let mut response = ASKING.scope(Asking { app, accept_language }, next.run(req)).await;
    let headers = response.headers_mut();
    let varies = headers.get_all(header::VARY).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.to_ascii_lowercase().contains("accept-language"))
    });
    if !varies {
        headers.append(header::VARY, HeaderValue::from_static("Accept-Language"));
    }
    response
}

/// What `say` makes of the request's answerer (in the language it asked for), and that
/// language; outside a request, `otherwise`, in English.
fn in_request_words(
    say: impl FnOnce(&rekey_core::letters::Sender) -> String,
    otherwise: impl FnOnce() -> String,
) -> (String, String) {
    ASKING
        .try_with(|asking| {
            let asked = asking.accept_language.as_ref().and_then(|v| v.to_str().ok());
            let sender = asking.app.rekey.sender().answering(asked);
            (say(&sender), sender.words().language_of(sender.locale()).to_string())
        })
        .unwrap_or_else(|_| (otherwise(), "en".to_string()))
}

/// A refusal of rekeyd's own (not the core's), worded by message `id` of the errors' files in
/// the request's language.
pub fn said(status: StatusCode, code: &'static str, id: &str) -> ApiError {
    let (message, language) = in_request_words(
        |sender| {
            let args = [("product", rekey_core::words::Arg::Text(sender.product()))];
            sender.words().text(sender.locale(), id, &args)
        },
        || rekey_core::words::Words::shipped().text("en", id, &[]),
    );
    ApiError {
        language: Some(language),
        ..ApiError::new(status, code, message)
    }
}

/// `e` in the words of the request being answered.
pub fn refusal_words(e: &rekey_core::Error) -> String {
    worded(e).0
}

/// `e` in the words of the request being answered, and their language.
fn worded(e: &rekey_core::Error) -> (String, String) {
    in_request_words(|sender| sender.refusal(e), || e.message())
}

impl From<rekey_core::Error> for ApiError {
    fn from(e: rekey_core::Error) -> Self {
        use rekey_core::Error as E;
        let status = match &e {
            E::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            E::BadCredentials | E::SessionInvalid => StatusCode::UNAUTHORIZED,
            E::EmailTaken | E::AccountVerified => StatusCode::CONFLICT,
            E::Locked(_) | E::Setup(_) | E::Busy { .. } | E::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            E::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        let retry_after = match &e {
            E::RateLimited { retry_after } | E::Busy { retry_after } => Some(*retry_after),
            _ => None,
        };
        let (message, language) = worded(&e);
        ApiError {
            status,
            code: e.code(),
            message,
            retry_after,
            language: Some(language),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&ErrorBody {
            code: self.code,
            message: &self.message,
        })
        .unwrap_or_default();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(value) = self.language.and_then(|l| HeaderValue::from_str(&l).ok()) {
            headers.insert(header::CONTENT_LANGUAGE, value);
        }
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        // The rest of an oversized body is never read, so the connection cannot carry another
        // request: say so, or a client's pool reuses it and its next request dies half-sent.
        if self.status == StatusCode::PAYLOAD_TOO_LARGE {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

/// A JSON body of type `T`. `T::FIELDS` names what the endpoint expects, for the error.
pub struct Json<T>(pub T);

/// The fields an endpoint's body has, in words for the error message.
pub trait Fields {
    const FIELDS: &'static str;
}

impl<S, T> FromRequest<S> for Json<T>
where
    T: DeserializeOwned + Fields,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(';')
                    .next()
                    .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
            });
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "body_not_json",
                "Send the body as JSON, with Content-Type: application/json.",
            ));
        }
        // Nothing here decompresses: a gzip (or any encoded) body would otherwise fail as
        // "not a JSON object", which sends the client looking in the wrong place.
        let encoded = req
            .headers()
            .get_all(header::CONTENT_ENCODING)
            .iter()
            .any(|v| !v.as_bytes().trim_ascii().eq_ignore_ascii_case(b"identity"));
        if encoded {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "body_encoding_unsupported",
                "Send the body uncompressed, without a Content-Encoding header.",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                too_large()
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "body_unreadable",
                    "The request body could not be read.",
                )
            }
        })?;
        let invalid = || {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "body_invalid",
                format!("The body must be a JSON object with {}.", T::FIELDS),
            )
        };
        // serde fills a struct from a JSON array too (`["a@example.com"]` as `{"email": …}`);
        // only an object is a body.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(invalid());
        }
        serde_json::from_slice(&bytes).map(Json).map_err(|_| invalid())
    }
}

pub fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("The request body is larger than {} KiB.", MAX_BODY_BYTES / 1024),
    )
}
