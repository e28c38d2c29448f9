//! `GET /reset` and `GET /verify`: the pages behind the mailed https links. The token rides in
//! the URL fragment, which browsers never send, so a page is the same for everyone and
//! consumes nothing (mail scanners fetch links); its script reads the fragment and talks to
//! the JSON API. A page is written in the language the browser asks for (`Accept-Language`,
//! negotiated here among the languages there are words for), under the operator's product name.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use rekey_core::words::Arg;

use super::App;

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

/// `template` in the language `headers` ask for: each `{{page-…}}` the message's words,
/// `{{lang}}` and `{{product}}`, and `{{words}}` every page message as JSON for the script.
fn localized(app: &App, headers: &HeaderMap, template: &str) -> Response {
    let sender = app.rekey.sender();
    let words = sender.words();
    let asked = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok());
    let lang = words.negotiate(asked, sender.locale());
    // The script fills {address} and {until}; the product's name is filled here.
    let messages = words.all_with_prefix(&lang, "page-", &[("product", Arg::Text(sender.product()))]);
    // Inside <script>, `<` must not start a tag: `</script>` in an operator's words would end it.
    let json = serde_json::to_string(&messages)
        .unwrap_or_default()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");
    let mut html = String::with_capacity(template.len() + json.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start..].find("}}") else { break };
        html.push_str(&rest[..start]);
        let key = &rest[start + 2..start + len];
        match key {
            "lang" => html.push_str(&lang),
            "product" => html.push_str(&escape(sender.product())),
            "words" => html.push_str(&json),
            id => html.push_str(&escape(messages.get(id).map_or(id, String::as_str))),
        }
        rest = &rest[start + len + 2..];
    }
    html.push_str(rest);
    let mut response = asset("text/html; charset=utf-8", "");
    *response.body_mut() = html.into();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_LANGUAGE,
        lang.parse().expect("a language tag is a header value"),
    );
    headers.insert(header::VARY, header::HeaderValue::from_static("Accept-Language"));
    response
}

fn escape(s: &str) -> String {
    rekey_core::letters::escape(s)
}

#[utoipa::path(
    get,
    path = "/reset",
    tag = "landing",
    params(("Accept-Language" = Option<String>, Header, description = "The page's language: English, German, French or Spanish (and any an operator adds), English when none of those is asked for")),
    responses((status = 200, description = "The reset page behind the mailed https link (the token rides in the URL fragment, which is never sent); consumes nothing", content_type = "text/html", body = String))
)]
pub async fn page(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    localized(&app, &headers, PAGE)
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
    params(("Accept-Language" = Option<String>, Header, description = "The page's language, as for `/reset`")),
    responses((status = 200, description = "The page behind the mailed https link that finishes an account; consumes nothing", content_type = "text/html", body = String))
)]
pub async fn verify_page(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    localized(&app, &headers, VERIFY_PAGE)
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
