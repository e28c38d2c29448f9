//! The organisation's `rekeyd`, over its HTTP API: HTTPS (plain HTTP only to this machine),
//! an on-prem CA if configured, a bounded time per call, and every failure in words. The
//! session is the server's token, kept in memory by the shell.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use rekey_core::password::Strength;
use rekey_core::service::Proof;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::OnceCell;
use url::Url;

use super::{issuer_of, other_issuer, Answer, Backend, MailSettings, Place, Registered, Target};
use crate::language::say;
use crate::ui_error::UiError;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The API level this app needs (`GET /info`'s `api`).
const API_LEVEL: u64 = 2;

/// What the server says about itself.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(rename_all(serialize = "camelCase"))]
pub struct ServerInfo {
    /// The `iss` of its links.
    pub issuer: String,
    /// Every `iss` its links have carried (its public address may have changed).
    #[serde(default)]
    pub issuers: Vec<String>,
    pub version: String,
    pub api: u64,
    pub min_password_length: usize,
    pub registration: bool,
}

pub struct Remote {
    base: Url,
    http: reqwest::Client,
    info: OnceCell<ServerInfo>,
}

fn fault(code: &str, message: String) -> UiError {
    UiError {
        code: code.into(),
        message,
    }
}

impl Remote {
    /// A client for the server at `base`, trusting `ca_file`'s certificates besides the usual
    /// ones, waiting at most `timeout` for any call (a silent server included). Contacts
    /// nothing yet.
    pub fn new(base: &Url, ca_file: Option<&Path>, timeout: Duration) -> Answer<Remote> {
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .https_only(base.scheme() == "https")
            .redirect(reqwest::redirect::Policy::none());
        if let Some(path) = ca_file {
            let pem = std::fs::read(path).map_err(|e| {
                fault(
                    "server_ca_unreadable",
                    say(
                        "app-error-ca-unreadable",
                        &[("file", &path.display().to_string()), ("problem", &e.to_string())],
                    ),
                )
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|_| {
                fault(
                    "server_ca_unreadable",
                    say("app-error-ca-empty", &[("file", &path.display().to_string())]),
                )
            })?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| {
            fault(
                "server_setup",
                say("app-error-server-setup", &[("problem", &e.to_string())]),
            )
        })?;
        // Paths join below the server's address, which must end in "/" for that.
        let mut base = base.clone();
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        Ok(Remote {
            base,
            http,
            info: OnceCell::new(),
        })
    }

    fn url_text(&self) -> String {
        self.base.as_str().trim_end_matches('/').to_string()
    }

    /// The server's own description, asked once (again after a failure).
    pub async fn info(&self) -> Answer<&ServerInfo> {
        self.info
            .get_or_try_init(|| async {
                let value = self.call(Method::GET, "/info", None, None).await?;
                let info: ServerInfo = serde_json::from_value(value).map_err(|_| self.not_rekey())?;
                if info.api < API_LEVEL {
                    return Err(self.too_old(&say("app-error-this-app", &[])));
                }
                Ok(info)
            })
            .await
    }

    fn not_rekey(&self) -> UiError {
        fault(
            "server_not_rekey",
            say("app-error-server-not-rekey", &[("url", &self.url_text())]),
        )
    }

    fn too_old(&self, what: &str) -> UiError {
        fault(
            "server_too_old",
            say("app-error-server-too-old", &[("url", &self.url_text()), ("what", what)]),
        )
    }

    /// A link must name this server before anything about it is sent here.
    async fn check_issuer(&self, token: &str) -> Answer<()> {
        let info = self.info().await?;
        match issuer_of(token) {
            Some(iss) if iss == info.issuer || info.issuers.contains(&iss) => Ok(()),
            Some(iss) => Err(other_issuer(&iss, &self.place())),
            // Not even JWT-shaped: the server's own words for a damaged link.
            None => Ok(()),
        }
    }

    /// One call; the answer's JSON (null when there is none), or the refusal in words.
    async fn call(&self, method: Method, path: &str, body: Option<Value>, bearer: Option<&str>) -> Answer<Value> {
        let url = self
            .base
            .join(path.trim_start_matches('/'))
            .map_err(|_| self.not_rekey())?;
        // The server words its refusals in the window's language.
        let mut request = self
            .http
            .request(method, url)
            .header(reqwest::header::ACCEPT_LANGUAGE, crate::language::tag());
        if let Some(body) = body {
            request = request.json(&body);
        }
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|e| self.transport(&e))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| self.transport(&e))?;
        if status.is_success() {
            return Ok(serde_json::from_str(&text).unwrap_or(Value::Null));
        }
        let refusal: Option<(String, String)> = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| Some((v["code"].as_str()?.to_string(), v["message"].as_str()?.to_string())));
        match (status, refusal) {
            (StatusCode::NOT_FOUND, Some((code, _))) if code == "not_found" => Err(self.too_old(path)),
            (StatusCode::NOT_FOUND, None) => Err(self.not_rekey()),
            (_, Some((code, message))) => Err(fault(&code, message)),
            (status, None) if status.is_server_error() => Err(fault(
                "server_error",
                say(
                    "app-error-server-error",
                    &[("url", &self.url_text()), ("status", &status.as_u16().to_string())],
                ),
            )),
            _ => Err(self.not_rekey()),
        }
    }

    /// A call that never got an answer, in words: down, slow, or not trusted.
    fn transport(&self, e: &reqwest::Error) -> UiError {
        let mut chain = String::new();
        let mut source: Option<&dyn std::error::Error> = Some(e);
        while let Some(err) = source {
            chain.push_str(&err.to_string());
            chain.push(' ');
            source = err.source();
        }
        tracing::warn!(error = %chain, "the server call failed");
        let url = self.url_text();
        if chain.contains("certificate") || chain.contains("UnknownIssuer") || chain.contains("CertExpired") {
            let why = if chain.contains("Expired") || chain.contains("expired") {
                say("app-error-certificate-expired", &[])
            } else if chain.contains("NotValidForName") {
                let host = self.base.host_str().unwrap_or_default();
                say("app-error-certificate-name", &[("host", host)])
            } else {
                say("app-error-certificate-unknown", &[])
            };
            return fault(
                "server_untrusted",
                say("app-error-server-untrusted", &[("url", &url), ("why", &why)]),
            );
        }
        if e.is_timeout() {
            return fault("server_slow", say("app-error-server-slow", &[("url", &url)]));
        }
        fault(
            "server_unreachable",
            say("app-error-server-unreachable", &[("url", &url)]),
        )
    }

    async fn post(&self, path: &str, body: Value, bearer: Option<&str>) -> Answer<Value> {
        self.call(Method::POST, path, Some(body), bearer).await
    }

    fn target(value: Value) -> Answer<Target> {
        Ok(Target {
            email: value["email"].as_str().unwrap_or_default().to_string(),
            expires_at: value["expires_at"].as_i64().unwrap_or_default(),
        })
    }

    fn proof_body(proof: Proof) -> (Value, Option<String>) {
        match proof {
            Proof::Token(token) => (json!({ "token": token }), Some(token)),
            Proof::Code { email, code } => (json!({"email": email, "code": code}), None),
        }
    }
}

#[async_trait]
impl Backend for Remote {
    fn place(&self) -> Place {
        Place::Server { url: self.url_text() }
    }

    async fn min_length(&self) -> Answer<usize> {
        Ok(self.info().await?.min_password_length)
    }

    async fn register(&self, email: &str, password: &str) -> Answer<Registered> {
        // The account's mail is to speak this computer's language, as the app does.
        let locale = rekey_core::words::os_locale();
        self.post(
            "/users",
            json!({"email": email, "password": password, "locale": locale}),
            None,
        )
        .await?;
        Ok(Registered {
            email: email.trim().to_string(),
            verify_by_mail: true,
        })
    }

    async fn inspect_verify(&self, token: &str) -> Answer<Target> {
        self.check_issuer(token).await?;
        Self::target(
            self.post("/users/verify/inspect", json!({ "token": token }), None)
                .await?,
        )
    }

    async fn verify(&self, proof: Proof, password: &str) -> Answer<String> {
        let (mut body, token) = Self::proof_body(proof);
        if let Some(token) = &token {
            self.check_issuer(token).await?;
        }
        body["password"] = json!(password);
        let account = self.post("/users/verify", body, None).await?;
        Ok(account["email"].as_str().unwrap_or_default().to_string())
    }

    async fn sign_in(&self, email: &str, password: &str) -> Answer<(String, String)> {
        let session = self
            .post("/sessions", json!({"email": email, "password": password}), None)
            .await?;
        let token = session["token"].as_str().ok_or_else(|| self.not_rekey())?.to_string();
        let email = self.whoami(&token).await?;
        Ok((email, token))
    }

    async fn whoami(&self, session: &str) -> Answer<String> {
        let me = self.call(Method::GET, "/sessions/current", None, Some(session)).await?;
        Ok(me["email"].as_str().unwrap_or_default().to_string())
    }

    async fn mail_settings(&self, session: &str) -> Answer<MailSettings> {
        let me = self.call(Method::GET, "/sessions/current", None, Some(session)).await?;
        Ok(MailSettings {
            locale: me["locale"].as_str().map(str::to_string),
            time_zone: me["time_zone"].as_str().map(str::to_string),
        })
    }

    async fn set_time_zone(&self, session: &str, zone: Option<&str>) -> Answer<()> {
        let body = json!({ "time_zone": zone });
        self.call(Method::PUT, "/sessions/current/time_zone", Some(body), Some(session))
            .await
            .map(drop)
    }

    async fn set_mail_language(&self, session: &str, locale: Option<&str>) -> Answer<Option<String>> {
        let body = json!({ "locale": locale });
        let me = self
            .call(Method::PUT, "/sessions/current/locale", Some(body), Some(session))
            .await?;
        Ok(me["locale"].as_str().map(str::to_string))
    }

    async fn sign_out(&self, session: &str) -> Answer<()> {
        self.call(Method::DELETE, "/sessions/current", None, Some(session))
            .await
            .map(drop)
    }

    async fn change_password(&self, session: &str, current: &str, new_password: &str) -> Answer<String> {
        let fresh = self
            .post(
                "/sessions/current/password",
                json!({"current": current, "new_password": new_password}),
                Some(session),
            )
            .await?;
        Ok(fresh["token"].as_str().ok_or_else(|| self.not_rekey())?.to_string())
    }

    async fn request_reset(&self, email: &str) -> Answer<()> {
        self.post("/users/password/forgot", json!({ "email": email }), None)
            .await
            .map(drop)
    }

    async fn inspect_reset(&self, token: &str) -> Answer<Target> {
        self.check_issuer(token).await?;
        Self::target(
            self.post("/users/password/inspect", json!({ "token": token }), None)
                .await?,
        )
    }

    async fn confirm_reset(&self, proof: Proof, new_password: &str) -> Answer<()> {
        let (mut body, token) = Self::proof_body(proof);
        if let Some(token) = &token {
            self.check_issuer(token).await?;
        }
        body["new_password"] = json!(new_password);
        self.post("/users/password/reset", body, None).await.map(drop)
    }

    async fn strength(&self, password: &str, email: Option<&str>) -> Answer<Strength> {
        let verdict = self
            .post(
                "/users/password/strength",
                json!({"password": password, "email": email}),
                None,
            )
            .await?;
        serde_json::from_value(verdict).map_err(|_| self.not_rekey())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// Answers every request on a loopback port with `status` and `body`, as an older rekeyd
    /// (which has no such route) or something that is no Rekey at all would.
    fn answering(status: &'static str, body: &'static str) -> Url {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut stream = stream;
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                let reply = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(reply.as_bytes());
            }
        });
        url.parse().unwrap()
    }

    #[test]
    fn an_older_server_and_a_stranger_to_rekey_are_told_apart_in_words() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let old = Remote::new(
            &answering(
                "404 Not Found",
                r#"{"code":"not_found","message":"There is nothing at this address."}"#,
            ),
            None,
            Duration::from_secs(5),
        )
        .unwrap();
        let e = rt.block_on(old.info()).unwrap_err();
        assert_eq!(e.code, "server_too_old", "{e:?}");
        assert!(e.message.contains("update it"), "{}", e.message);
        let other = Remote::new(
            &answering("404 Not Found", "<html>nope</html>"),
            None,
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(rt.block_on(other.info()).unwrap_err().code, "server_not_rekey");
        let broken = Remote::new(
            &answering("502 Bad Gateway", "<html>bad gateway</html>"),
            None,
            Duration::from_secs(5),
        )
        .unwrap();
        let e = rt.block_on(broken.request_reset("a@example.com")).unwrap_err();
        assert_eq!(e.code, "server_error");
        assert!(e.message.contains("HTTP 502"), "{}", e.message);
    }
}
