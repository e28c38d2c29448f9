//! HTTP: one request to the server, and what came of it.

use std::time::Duration;

use serde_json::Value;

pub(crate) enum Call {
    /// The server answered with this status and body.
    Answered(u16, Value),
    /// The connection was refused: the server never saw it.
    NotSent,
    /// Sent, but no answer came back: the outcome is unknown.
    Lost,
}

pub(crate) fn http_client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(2))
        .build()
        .unwrap()
}

pub(crate) fn post(http: &reqwest::blocking::Client, url: &str, body: &Value, bearer: Option<&str>) -> Call {
    let mut request = http.post(url).json(body);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    match request.send() {
        Ok(r) => {
            let status = r.status().as_u16();
            Call::Answered(status, r.json().unwrap_or(Value::Null))
        }
        Err(e) if e.is_connect() => Call::NotSent,
        Err(_) => Call::Lost,
    }
}
