//! The client side of the `keymint` binary: how the CLI commands reach a server, with the
//! Vault CLI's habits. The address comes from `--address`, `KEYMINT_ADDR` or `VAULT_ADDR`; the
//! token from `KEYMINT_TOKEN`, `VAULT_TOKEN` or the token file `keymint login` writes
//! (`~/.keymint-token`). A server's answer is kept as JSON; its errors become the Vault CLI's
//! message and exit code 2, local problems exit code 1.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use reqwest::Method;
use serde_json::Value;

/// Where the dev server listens: what an unset address means.
pub const DEFAULT_ADDR: &str = "http://127.0.0.1:8200";

/// A failure the CLI reports and exits on: 1 for local problems, 2 for the server's answers
/// (as the Vault CLI does).
#[derive(Debug)]
pub struct Exit {
    pub code: i32,
    pub message: String,
}

impl Exit {
    pub fn server(message: impl Into<String>) -> Exit {
        Exit { code: 2, message: message.into() }
    }

    pub fn local(e: impl std::fmt::Display) -> Exit {
        Exit { code: 1, message: e.to_string() }
    }
}

impl From<anyhow::Error> for Exit {
    fn from(e: anyhow::Error) -> Exit {
        Exit::local(format!("{e:#}"))
    }
}

/// The environment the CLI reads, passed in so tests and `main` share one code path.
#[derive(Debug, Clone, Default)]
pub struct Env {
    pub addr: Option<String>,
    pub token: Option<String>,
    pub ca_cert: Option<PathBuf>,
    pub home: Option<PathBuf>,
}

impl Env {
    /// `KEYMINT_*` first, then Vault's names.
    pub fn from_process() -> Env {
        let var = |names: &[&str]| names.iter().find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()));
        Env {
            addr: var(&["KEYMINT_ADDR", "VAULT_ADDR"]),
            token: var(&["KEYMINT_TOKEN", "VAULT_TOKEN"]),
            ca_cert: var(&["KEYMINT_CACERT", "VAULT_CACERT"]).map(PathBuf::from),
            home: var(&["HOME"]).map(PathBuf::from),
        }
    }

    /// The token file `keymint login` writes.
    pub fn token_file(&self) -> Option<PathBuf> {
        self.home.as_ref().map(|h| h.join(".keymint-token"))
    }
}

/// A server's answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    /// The `errors` list of a failed answer, or what else can be said about it.
    pub fn errors(&self) -> Vec<String> {
        match self.body.get("errors").and_then(Value::as_array) {
            Some(list) => {
                list.iter().map(|e| e.as_str().map_or_else(|| e.to_string(), str::to_owned)).collect()
            }
            None => Vec::new(),
        }
    }
}

/// A connection to one server with one token.
pub struct Conn {
    addr: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Conn {
    pub fn new(env: &Env, address: Option<&str>) -> Result<Conn> {
        let addr =
            address.map(str::to_owned).or_else(|| env.addr.clone()).unwrap_or_else(|| DEFAULT_ADDR.into());
        let addr = addr.trim_end_matches('/').to_owned();
        let token = match &env.token {
            Some(t) => Some(t.clone()),
            None => env
                .token_file()
                .and_then(|f| std::fs::read_to_string(f).ok())
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty()),
        };
        let mut http = reqwest::Client::builder().timeout(Duration::from_secs(300));
        if let Some(ca) = &env.ca_cert {
            let pem =
                std::fs::read(ca).with_context(|| format!("reading the CA certificate {}", ca.display()))?;
            let cert = reqwest::Certificate::from_pem(&pem).context("parsing the CA certificate")?;
            http = http.add_root_certificate(cert);
        }
        Ok(Conn { addr, token, http: http.build()? })
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    pub fn with_token(mut self, token: &str) -> Conn {
        self.token = Some(token.to_owned());
        self
    }

    /// Sends one request to `/v1/<path>`; a body is sent as JSON.
    pub async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Answer, Exit> {
        self.call_as(self.token.as_deref(), method, path, body).await
    }

    /// [`Conn::call`] with another token (or none): auto-auth's tokens change over time.
    pub async fn call_as(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, Exit> {
        let path = path.trim_start_matches('/');
        let url = format!("{}/v1/{path}", self.addr);
        let method = Method::from_bytes(method.as_bytes()).map_err(Exit::local)?;
        let mut req = self.http.request(method.clone(), &url);
        if let Some(t) = token {
            req = req.header("X-Vault-Token", t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| {
            Exit::local(anyhow!("Error making API request.\n\nURL: {method} {url}\n{}", error_chain(&e)))
        })?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|e| Exit::local(anyhow!("reading the answer of {url}: {e}")))?;
        let body = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok(Answer { status, body })
    }

    /// Like [`Conn::call`], but an error status becomes the Vault CLI's error text.
    pub async fn expect_ok(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        what: &str,
    ) -> Result<Answer, Exit> {
        let answer = self.call(method, path, body).await?;
        if answer.status >= 400 {
            return Err(api_error(
                what,
                method,
                &format!("{}/v1/{}", self.addr, path.trim_start_matches('/')),
                &answer,
            ));
        }
        Ok(answer)
    }
}

/// The Vault CLI's text for an error answer.
pub fn api_error(what: &str, method: &str, url: &str, answer: &Answer) -> Exit {
    let errors = answer.errors();
    let listed = if errors.is_empty() {
        "* (no error text)".to_owned()
    } else {
        errors.iter().map(|e| format!("* {}", e.trim_end())).collect::<Vec<_>>().join("\n")
    };
    Exit::server(format!(
        "{what}: Error making API request.\n\nURL: {method} {url}\nCode: {}. Errors:\n\n{listed}",
        answer.status
    ))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
