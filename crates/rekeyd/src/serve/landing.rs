//! `GET /reset` and `GET /verify`: the pages behind the mailed https links. The token rides in
//! the URL fragment, which browsers never send, so a page is the same for everyone and
//! consumes nothing (mail scanners fetch links); its script reads the fragment and talks to
//! the JSON API.

use axum::http::header;
use axum::response::{IntoResponse, Response};

const PAGE: &str = include_str!("landing/reset.html");
const SCRIPT: &str = include_str!("landing/reset.js");
const STYLE: &str = include_str!("landing/reset.css");
const COMMON: &str = include_str!("landing/landing.js");
const VERIFY_PAGE: &str = include_str!("landing/verify.html");
const VERIFY_SCRIPT: &str = include_str!("landing/verify.js");

/// Only our own script and style; no frames, no forms posting elsewhere, no referrer.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; \
                   form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::X_FRAME_OPTIONS, "DENY"),
        ],
        body,
    )
        .into_response()
}

#[utoipa::path(
    get,
    path = "/reset",
    tag = "landing",
    responses((status = 200, description = "The reset page behind the mailed https link (the token rides in the URL fragment, which is never sent); consumes nothing", content_type = "text/html", body = String))
)]
pub async fn page() -> Response {
    asset("text/html; charset=utf-8", PAGE)
}

#[utoipa::path(
    get,
    path = "/reset.js",
    tag = "landing",
    responses((status = 200, description = "The reset page's script", content_type = "text/javascript", body = String))
)]
pub async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

#[utoipa::path(
    get,
    path = "/reset.css",
    tag = "landing",
    responses((status = 200, description = "The landing pages' style", content_type = "text/css", body = String))
)]
pub async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

#[utoipa::path(
    get,
    path = "/verify",
    tag = "landing",
    responses((status = 200, description = "The page behind the mailed https link that finishes an account; consumes nothing", content_type = "text/html", body = String))
)]
pub async fn verify_page() -> Response {
    asset("text/html; charset=utf-8", VERIFY_PAGE)
}

#[utoipa::path(
    get,
    path = "/verify.js",
    tag = "landing",
    responses((status = 200, description = "The verification page's script", content_type = "text/javascript", body = String))
)]
pub async fn verify_script() -> Response {
    asset("text/javascript; charset=utf-8", VERIFY_SCRIPT)
}

#[utoipa::path(
    get,
    path = "/landing.js",
    tag = "landing",
    responses((status = 200, description = "What the landing pages' scripts share", content_type = "text/javascript", body = String))
)]
pub async fn common_script() -> Response {
    asset("text/javascript; charset=utf-8", COMMON)
}
