//! [`TestApp`]: the real router and state, in process, over a fresh SQLite store and the
//! engine's fake IAM/STS ([`keymint_engine::fake_aws`]), for tests that drive the HTTP API
//! without the binary, moto or a network. Requests go through the same tower stack as a
//! served request (`router(state).oneshot(..)`), authentication, ACLs and audit included.
//! Feature `test-support` (and this crate's own tests).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use keymint_engine::fake_aws::{FakeAws, User};
use keymint_engine::{ClientFactory, Engine};
use keymint_lease::RetryPolicy;
use keymint_store::KeySource;
use keymint_store::testing::TestDb;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::{AppState, router};

/// The root token of every test app.
pub const ROOT_TOKEN: &str = "test-root-token";
/// The IAM user and key `aws/config/root` is written with (the fake knows them).
pub const ROOT_USER: &str = "keymint-root";
pub const ROOT_KEY: &str = "TESTROOTKEY0001";
const ROOT_SECRET: &str = "test-root-secret";

/// One keymint, in process.
pub struct TestApp {
    pub state: AppState,
    /// The AWS the `aws/` mount talks to.
    pub fake: FakeAws,
    /// The listener's `x_forwarded_for_*` rules, when set ([`TestApp::behind_proxies`]).
    forwarded: Option<crate::forwarded::ForwardedFor>,
    _db: TestDb,
}

/// An answer: its status and its JSON body (`Value::Null` when it has none).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
}

impl TestApp {
    /// A server with the `aws/` mount enabled and its `config/root` written (through the API)
    /// with keys the fake AWS accepts; calls are retried at most twice and never paced.
    pub async fn new() -> TestApp {
        TestApp::with_clock(keymint_common::clock::Clock::system()).await
    }

    /// [`TestApp::new`] on `clock` (a `ManualTime`'s, to move time in a test).
    pub async fn with_clock(clock: keymint_common::clock::Clock) -> TestApp {
        let db = TestDb::new(false).await;
        let store = db.open(KeySource::DevStored).await.unwrap().with_clock(clock);
        let fake = FakeAws::default();
        fake.put_user(ROOT_USER, User { path: "/".into(), ..User::default() }, store.clock().now());
        fake.put_key(ROOT_USER, ROOT_KEY, ROOT_SECRET);
        TestApp::over(db, store, fake.factory(), fake).await
    }

    async fn over(db: TestDb, store: keymint_store::Store, factory: ClientFactory, fake: FakeAws) -> TestApp {
        let engine = Engine::new(store.clone()).with_client_factory(factory);
        let state = AppState::with_engine(store.clone(), engine, RetryPolicy::default());
        keymint_auth::ensure_root_token(&store, ROOT_TOKEN, store.clock().now_ms()).await.unwrap();
        crate::ensure_default_mount(&state).await.unwrap();
        let app = TestApp { state, fake, forwarded: None, _db: db };
        let root = json!({
            "access_key": ROOT_KEY, "secret_key": ROOT_SECRET, "region": "us-east-1",
            // Reserved names: a request that ever missed the fake could go nowhere.
            "iam_endpoint": "http://iam.fake.invalid", "sts_endpoint": "http://sts.fake.invalid",
            "max_retries": 2, "iam_write_rate": 10000, "iam_read_rate": 10000, "sts_rate": 10000,
        });
        let written = app.root("POST", "aws/config/root", Some(root)).await;
        assert_eq!(written.status, StatusCode::OK, "config/root: {:?}", written.body);
        app
    }

    /// `method` on `/v1/<path>` with `token` and a JSON `body`.
    pub async fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Answer {
        self.send(None, method, path, token, body, &[]).await
    }

    /// [`TestApp::call`] with extra request headers (`X-Vault-Wrap-TTL`).
    pub async fn call_with(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        self.send(None, method, path, token, body, headers).await
    }

    /// [`TestApp::call`] from the address `remote` (as the listener would tell it).
    pub async fn call_from(
        &self,
        remote: Option<std::net::IpAddr>,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        self.send(remote, method, path, token, body, &[]).await
    }

    /// [`TestApp::call_from`] with extra request headers (`X-Forwarded-For`).
    pub async fn call_from_with(
        &self,
        remote: Option<std::net::IpAddr>,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        self.send(remote, method, path, token, body, headers).await
    }

    /// Requests go through the listener's `x_forwarded_for_*` rules, as a served request does.
    pub fn behind_proxies(mut self, rules: crate::forwarded::ForwardedFor) -> TestApp {
        self.forwarded = Some(rules);
        self
    }

    async fn send(
        &self,
        remote: Option<std::net::IpAddr>,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(format!("/v1/{path}"));
        if let Some(ip) = remote {
            let peer = crate::tls::Peer(std::net::SocketAddr::new(ip, 40000));
            request = request.extension(axum::extract::ConnectInfo(peer));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(token) = token {
            request = request.header("x-vault-token", token);
        }
        let body = match body {
            Some(body) => {
                request = request.header("content-type", "application/json");
                Body::from(body.to_string())
            }
            None => Body::empty(),
        };
        let mut app = router(self.state.clone());
        if let Some(rules) = &self.forwarded {
            app = crate::forwarded::behind_proxies(app, rules.clone());
        }
        let response = app.oneshot(request.body(body).unwrap()).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 16 << 20).await.unwrap();
        let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
        Answer { status, body }
    }

    /// [`TestApp::call`] with the root token.
    pub async fn root(&self, method: &str, path: &str, body: Option<Value>) -> Answer {
        self.call(method, path, Some(ROOT_TOKEN), body).await
    }

    /// A token with `policies`, made by root.
    pub async fn token(&self, policies: &[&str]) -> String {
        let made = self.root("POST", "auth/token/create", Some(json!({"policies": policies}))).await;
        assert_eq!(made.status, StatusCode::OK, "{:?}", made.body);
        made.body["auth"]["client_token"].as_str().unwrap().to_string()
    }
}
