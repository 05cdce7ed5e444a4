//! The remote key set against a tiny issuer on 127.0.0.1 that counts JWKS fetches, rotates keys
//! and goes down on command. Time for the refetch rate limit is passed in, never slept.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};

use super::*;
use crate::jwt::test_support::{TestKey, unsigned_token};
use crate::jwt::{DEFAULT_ALGS, Jws};

/// What the issuer answers on `/jwks`.
#[derive(Clone)]
enum Answer {
    Jwks(Value),
    Status(u16, &'static str),
    /// Close the connection without a response.
    Hangup,
}

struct Shared {
    answer: Mutex<Answer>,
    discovery_issuer: Mutex<String>,
    fetches: AtomicUsize,
    received: Notify,
    /// When set, JWKS answers wait for a permit.
    gate: Option<Semaphore>,
}

struct Issuer {
    base: String,
    shared: Arc<Shared>,
}

impl Issuer {
    async fn start(answer: Answer, gated: bool) -> Issuer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let shared = Arc::new(Shared {
            answer: Mutex::new(answer),
            discovery_issuer: Mutex::new(base.clone()),
            fetches: AtomicUsize::new(0),
            received: Notify::new(),
            gate: gated.then(|| Semaphore::new(0)),
        });
        let serving = Arc::clone(&shared);
        let jwks_uri = format!("{base}/jwks");
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, Arc::clone(&serving), jwks_uri.clone()));
            }
        });
        Issuer { base, shared }
    }

    fn jwks_url(&self) -> String {
        format!("{}/jwks", self.base)
    }

    fn set(&self, answer: Answer) {
        *self.shared.answer.lock().expect("lock") = answer;
    }

    fn fetches(&self) -> usize {
        self.shared.fetches.load(Ordering::SeqCst)
    }
}

async fn serve(mut stream: TcpStream, shared: Arc<Shared>, jwks_uri: String) {
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&request);
    let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
    let (status, body) = match path.as_str() {
        "/jwks" => {
            shared.fetches.fetch_add(1, Ordering::SeqCst);
            shared.received.notify_one();
            if let Some(gate) = &shared.gate {
                gate.acquire().await.expect("gate open").forget();
            }
            let answer = shared.answer.lock().expect("lock").clone();
            match answer {
                Answer::Jwks(doc) => (200, doc.to_string()),
                Answer::Status(status, body) => (status, body.to_string()),
                Answer::Hangup => return,
            }
        }
        "/.well-known/openid-configuration" => {
            let issuer = shared.discovery_issuer.lock().expect("lock").clone();
            (200, json!({"issuer": issuer, "jwks_uri": jwks_uri}).to_string())
        }
        _ => (404, "not found".to_string()),
    };
    // A week of Cache-Control, which the key set must ignore.
    let response = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nCache-Control: max-age=604800\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

fn jwks(keys: &[(&TestKey, &str)]) -> Answer {
    Answer::Jwks(json!({"keys": keys.iter().map(|(k, kid)| k.jwk(kid)).collect::<Vec<_>>()}))
}

fn token(key: &TestKey, kid: Option<&str>) -> Jws {
    key.jws(Algorithm::ES256, kid, &json!({"sub": "system:serviceaccount:ci:runner", "exp": 2_000_000_000}))
}

fn key_set(issuer: &Issuer) -> RemoteKeySet {
    RemoteKeySet::new(http_client(None).expect("client"), issuer.jwks_url(), DEFAULT_REFETCH_INTERVAL)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[tokio::test]
async fn one_fetch_serves_many_logins_and_none_happens_at_construction() {
    let a = TestKey::p256();
    let issuer = Issuer::start(jwks(&[(&a, "a")]), false).await;
    let set = key_set(&issuer);
    assert_eq!(issuer.fetches(), 0);
    let t0 = Instant::now();
    for i in 0..10 {
        set.verify(&token(&a, Some("a")), DEFAULT_ALGS, t0 + secs(i * 100)).await.expect("verifies");
        set.verify(&token(&a, None), DEFAULT_ALGS, t0 + secs(i * 100)).await.expect("verifies");
    }
    assert_eq!(issuer.fetches(), 1);
    let keys = set.keys_for(&token(&a, Some("a")), t0).await.expect("keys");
    assert_eq!(keys.iter().map(|k| k.kid()).collect::<Vec<_>>(), [Some("a")]);
    assert_eq!(issuer.fetches(), 1);
}

#[tokio::test]
async fn unknown_kid_refetches_at_most_once_per_interval() {
    let a = TestKey::p256();
    let forger = TestKey::p256();
    let issuer = Issuer::start(jwks(&[(&a, "a")]), false).await;
    let set = key_set(&issuer);
    let t0 = Instant::now();
    set.verify(&token(&a, Some("a")), DEFAULT_ALGS, t0).await.expect("verifies");
    assert_eq!(issuer.fetches(), 1);

    let forged = token(&forger, Some("z"));
    for (at, fetches) in [(1, 1), (59, 1), (60, 2), (61, 2), (119, 2), (120, 3)] {
        let err = set.verify(&forged, DEFAULT_ALGS, t0 + secs(at)).await.expect_err("forged");
        assert_eq!(err, JwtError::RemoteNoKeyVerified);
        assert_eq!(issuer.fetches(), fetches, "at t0+{at}s");
    }
    assert_eq!(
        JwtError::RemoteNoKeyVerified.vault_text(),
        "error validating token: error verifying token signature: failed to verify id token signature"
    );
    // A forged token under a known kid fails on the cached key, then may refetch once too.
    let forged_a = token(&forger, Some("a"));
    assert_eq!(set.verify(&forged_a, DEFAULT_ALGS, t0 + secs(150)).await, Err(JwtError::RemoteNoKeyVerified));
    assert_eq!(issuer.fetches(), 3);
    assert_eq!(set.verify(&forged_a, DEFAULT_ALGS, t0 + secs(180)).await, Err(JwtError::RemoteNoKeyVerified));
    assert_eq!(issuer.fetches(), 4);
    // Legitimate logins keep working throughout, without fetching.
    set.verify(&token(&a, Some("a")), DEFAULT_ALGS, t0 + secs(181)).await.expect("verifies");
    assert_eq!(issuer.fetches(), 4);
}

#[tokio::test]
async fn rotation_at_the_issuer_is_picked_up_without_restart() {
    let a = TestKey::p256();
    let b = TestKey::p256();
    let issuer = Issuer::start(jwks(&[(&a, "a")]), false).await;
    let set = key_set(&issuer);
    let t0 = Instant::now();
    set.verify(&token(&a, Some("a")), DEFAULT_ALGS, t0).await.expect("verifies");

    // A new kid.
    issuer.set(jwks(&[(&b, "b")]));
    set.verify(&token(&b, Some("b")), DEFAULT_ALGS, t0 + secs(61)).await.expect("new key verifies");
    assert_eq!(issuer.fetches(), 2);
    // The retired key is gone from the cache.
    assert_eq!(
        set.verify(&token(&a, Some("a")), DEFAULT_ALGS, t0 + secs(62)).await,
        Err(JwtError::RemoteNoKeyVerified)
    );

    // The same kid re-used for a new key: the cached key fails, the refetch succeeds.
    let c = TestKey::p256();
    issuer.set(jwks(&[(&c, "b")]));
    set.verify(&token(&c, Some("b")), DEFAULT_ALGS, t0 + secs(200)).await.expect("re-keyed kid verifies");
    assert_eq!(issuer.fetches(), 3);
}

#[tokio::test]
async fn issuer_down_or_garbage_keeps_the_cached_keys() {
    let a = TestKey::p256();
    let b = TestKey::p256();
    let issuer = Issuer::start(jwks(&[(&a, "a")]), false).await;
    let set = key_set(&issuer);
    let t0 = Instant::now();
    set.verify(&token(&a, Some("a")), DEFAULT_ALGS, t0).await.expect("verifies");

    let outages = [
        Answer::Status(503, "down for maintenance"),
        Answer::Status(200, "<html>"),
        Answer::Hangup,
        jwks(&[]),
    ];
    for (i, outage) in outages.into_iter().enumerate() {
        issuer.set(outage);
        let at = t0 + secs(100 * (i as u64 + 1));
        // An unknown kid triggers a fetch, which fails...
        assert_eq!(
            set.verify(&token(&b, Some("b")), DEFAULT_ALGS, at).await,
            Err(JwtError::RemoteNoKeyVerified)
        );
        assert_eq!(issuer.fetches(), i + 2);
        // ...and the cached key still verifies.
        set.verify(&token(&a, Some("a")), DEFAULT_ALGS, at + secs(1)).await.expect("cached key verifies");
    }
    // Back up: the next permitted fetch brings the new key.
    issuer.set(jwks(&[(&a, "a"), (&b, "b")]));
    set.verify(&token(&b, Some("b")), DEFAULT_ALGS, t0 + secs(1000)).await.expect("verifies");
}

#[tokio::test]
async fn no_keys_ever_fetched_is_reported_with_the_cause() {
    let a = TestKey::p256();
    let issuer = Issuer::start(Answer::Status(503, "down"), false).await;
    let set = key_set(&issuer);
    let t0 = Instant::now();
    let err = set.verify(&token(&a, Some("a")), DEFAULT_ALGS, t0).await.expect_err("no keys");
    assert_eq!(
        err.vault_text(),
        "error validating token: error verifying token signature: fetching keys oidc: get keys failed: \
         503 Service Unavailable: down"
    );
    // Rate-limited: no second attempt within the interval, even with the cache empty.
    assert!(matches!(
        set.keys_for(&token(&a, Some("a")), t0 + secs(30)).await,
        Err(JwtError::KeysUnavailable(_))
    ));
    assert_eq!(issuer.fetches(), 1);
    issuer.set(jwks(&[(&a, "a")]));
    set.verify(&token(&a, Some("a")), DEFAULT_ALGS, t0 + secs(60)).await.expect("verifies once up");
    assert_eq!(issuer.fetches(), 2);
}

#[tokio::test]
async fn concurrent_logins_with_an_unknown_kid_share_one_fetch() {
    let a = TestKey::p256();
    let issuer = Issuer::start(jwks(&[(&a, "a")]), true).await;
    let set = Arc::new(key_set(&issuer));
    let now = Instant::now();
    let logins: Vec<_> = (0..16)
        .map(|_| {
            let set = Arc::clone(&set);
            let jws = token(&a, Some("a"));
            tokio::spawn(async move { set.verify(&jws, DEFAULT_ALGS, now).await })
        })
        .collect();
    // The first fetch reached the issuer; let every other login queue up behind it.
    issuer.shared.received.notified().await;
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    issuer.shared.gate.as_ref().expect("gated").add_permits(100);
    for login in logins {
        login.await.expect("task").expect("verifies");
    }
    assert_eq!(issuer.fetches(), 1);
}

#[tokio::test]
async fn refused_algorithms_never_cause_a_fetch() {
    let a = TestKey::p256();
    let issuer = Issuer::start(jwks(&[(&a, "a")]), false).await;
    let set = key_set(&issuer);
    let none = Jws::parse(&unsigned_token(&json!({"sub": "x"}))).expect("parses");
    assert_eq!(set.verify(&none, DEFAULT_ALGS, Instant::now()).await, Err(JwtError::UnexpectedAlgorithm));
    let es256 = token(&a, Some("a"));
    assert_eq!(
        set.verify(&es256, &[Algorithm::RS256], Instant::now()).await,
        Err(JwtError::UnexpectedAlgorithm)
    );
    assert_eq!(issuer.fetches(), 0);
}

#[tokio::test]
async fn discovery_returns_jwks_uri_and_insists_on_the_exact_issuer() {
    let a = TestKey::p256();
    let issuer = Issuer::start(jwks(&[(&a, "a")]), false).await;
    let client = http_client(None).expect("client");
    assert_eq!(discover(&client, &issuer.base).await, Ok(issuer.jwks_url()));
    let keys = fetch_jwks(&client, &discover(&client, &issuer.base).await.expect("uri")).await.expect("keys");
    assert_eq!(keys.len(), 1);

    // Configured with a trailing slash, the document's issuer (without one) does not match.
    let err = discover(&client, &format!("{}/", issuer.base)).await.expect_err("mismatch");
    assert_eq!(
        err.to_string(),
        format!(
            "error checking oidc discovery URL: issuer did not match the returned issuer, expected \"{0}/\" got \"{0}\"",
            issuer.base
        )
    );
    // An issuer that publishes itself with the slash matches the slashed configuration.
    *issuer.shared.discovery_issuer.lock().expect("lock") = format!("{}/", issuer.base);
    assert_eq!(discover(&client, &format!("{}/", issuer.base)).await, Ok(issuer.jwks_url()));

    let err = discover(&client, &format!("{}/nowhere", issuer.base)).await.expect_err("404");
    assert!(err.to_string().starts_with("error checking oidc discovery URL: 404 Not Found"), "{err}");
}

#[test]
fn ca_pem_must_hold_a_certificate() {
    let (cert_pem, key) = TestKey::p256_certificate();
    assert!(http_client(Some(&cert_pem)).is_ok());
    assert!(http_client(Some("")).is_ok());
    assert!(matches!(http_client(Some(&key.spki_pem())), Err(KeyError::InvalidCaPem(_))));
    assert!(matches!(
        http_client(Some("-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n")),
        Err(KeyError::InvalidCaPem(_))
    ));
}

#[tokio::test]
async fn key_set_dispatches_and_its_futures_can_cross_threads() {
    fn assert_send<T: Send>(value: T) -> T {
        value
    }
    let a = TestKey::p256();
    let issuer = Issuer::start(jwks(&[(&a, "a")]), false).await;
    let remote = KeySet::Remote(Arc::new(key_set(&issuer)));
    let fixed = KeySet::Static(Arc::new(a.public(None)));
    let other = KeySet::Static(Arc::new(TestKey::p256().public(None)));
    let jws = token(&a, Some("a"));
    let now = Instant::now();
    assert_send(remote.verify(&jws, DEFAULT_ALGS, now)).await.expect("remote verifies");
    assert_send(fixed.verify(&jws, DEFAULT_ALGS, now)).await.expect("static verifies");
    assert_eq!(other.verify(&jws, DEFAULT_ALGS, now).await, Err(JwtError::NoKeyVerified));
}
