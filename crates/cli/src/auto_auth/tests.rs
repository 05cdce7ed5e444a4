#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};

use super::*;
use crate::client::Env;

fn args(method: Method) -> AutoAuthArgs {
    AutoAuthArgs { auth_method: Some(method), ..Default::default() }
}

#[test]
fn flags_become_a_checked_config() {
    assert_eq!(AutoAuthArgs::default().config().unwrap(), None);
    assert!(args(Method::Approle).config().is_err(), "approle needs --role-id-file");
    let approle = AutoAuthArgs {
        role_id_file: Some("/r".into()),
        secret_id_file: Some("/s".into()),
        auth_mount: Some("auth/ci-approle/".into()),
        ..args(Method::Approle)
    };
    let config = approle.config().unwrap().unwrap();
    assert_eq!(config.mount, "ci-approle");
    assert_eq!(
        config.source,
        Source::Approle {
            role_id_file: "/r".into(),
            secret_id_file: Some("/s".into()),
            remove: false,
            wrapped: false
        }
    );
    let with_role = AutoAuthArgs { auth_role: Some("x".into()), ..approle.clone() };
    assert!(with_role.config().is_err(), "--auth-role is not an approle flag");

    assert!(args(Method::Kubernetes).config().is_err(), "kubernetes needs --auth-role");
    let k8s = AutoAuthArgs { auth_role: Some("deploy".into()), ..args(Method::Kubernetes) };
    let config = k8s.config().unwrap().unwrap();
    assert_eq!(config.mount, "kubernetes");
    assert_eq!(config.source, Source::Jwt { role: "deploy".into(), jwt_file: SERVICE_ACCOUNT_TOKEN.into() });
    let jwt = AutoAuthArgs { auth_role: Some("ci".into()), ..args(Method::Jwt) };
    assert!(jwt.config().is_err(), "jwt has no default file");
    let jwt = AutoAuthArgs { jwt_file: Some("/run/id".into()), ..jwt };
    assert_eq!(jwt.config().unwrap().unwrap().mount, "jwt");
    let mixed = AutoAuthArgs { role_id_file: Some("/r".into()), ..jwt };
    assert!(mixed.config().is_err(), "--role-id-file is not a jwt flag");
}

#[test]
fn login_bodies_per_method() {
    let approle =
        Source::Approle { role_id_file: "/r".into(), secret_id_file: None, remove: false, wrapped: false };
    assert_eq!(login_body(&approle, "rid", Some("sid")), json!({"role_id": "rid", "secret_id": "sid"}));
    assert_eq!(login_body(&approle, "rid", None), json!({"role_id": "rid"}));
    let jwt = Source::Jwt { role: "ci".into(), jwt_file: "/j".into() };
    assert_eq!(login_body(&jwt, "", Some("eyJ.x.y")), json!({"role": "ci", "jwt": "eyJ.x.y"}));
}

#[test]
fn the_cache_identity_names_who_logs_in_never_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let role_id = dir.path().join("role-id");
    std::fs::write(&role_id, "rid-1\n").unwrap();
    let config = |mount: &str| Config {
        method: Method::Approle,
        mount: mount.into(),
        source: Source::Approle {
            role_id_file: role_id.clone(),
            secret_id_file: Some(dir.path().join("secret-id")),
            remove: false,
            wrapped: false,
        },
    };
    let id = config("approle").identity().unwrap();
    assert!(id.contains("approle") && id.ends_with("rid-1"), "{id}");
    assert_ne!(id, config("other").identity().unwrap());
    let k8s = |role: &str| Config {
        method: Method::Kubernetes,
        mount: "kubernetes".into(),
        source: Source::Jwt { role: role.into(), jwt_file: dir.path().join("absent") },
    };
    assert_ne!(k8s("a").identity().unwrap(), k8s("b").identity().unwrap());
    // The JWT itself is not read for the identity: a rotated token keeps the cache.
    assert!(k8s("a").identity().is_ok());
}

#[test]
fn a_rotated_jwt_file_is_seen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    std::fs::write(&path, "first\n").unwrap();
    let mut file = WatchedFile::new(path.clone());
    assert!(!file.changed(), "nothing read yet: nothing to compare");
    assert_eq!(file.read().unwrap(), "first");
    assert!(!file.changed());
    // Rewritten with the same token (a new mtime): not a rotation.
    std::fs::write(&path, "first").unwrap();
    assert!(!file.changed());
    std::fs::write(&path, "second\n").unwrap();
    assert!(file.changed());
    assert_eq!(file.read().unwrap(), "second");
    assert!(!file.changed());
    // Gone for a moment (a symlink swap): the next login says what is wrong, if anything.
    std::fs::remove_file(&path).unwrap();
    assert!(!file.changed());
    assert!(file.read().is_err());
    std::fs::write(&path, "  ").unwrap();
    assert!(file.read().is_err(), "an empty file is refused");
}

#[test]
fn renewals_at_two_thirds_and_a_login_when_the_max_ttl_is_near() {
    assert_eq!(schedule(0, 0, false), None, "a token that never expires");
    assert_eq!(schedule(3600, 3600, true), Some((Duration::from_secs(2400), Step::Renew)));
    assert_eq!(schedule(3, 3, true), Some((Duration::from_secs(2), Step::Renew)));
    assert_eq!(schedule(3600, 3600, false), Some((Duration::from_secs(2400), Step::Login)));
    // Granted less than asked: capped by the max TTL, so log in now.
    assert_eq!(schedule(100, 3600, true), Some((Duration::ZERO, Step::Login)));
    // Granted more than asked is fine (a period).
    assert_eq!(schedule(7200, 3600, true), Some((Duration::from_secs(4800), Step::Renew)));
    // Never a busy loop on a tiny lease.
    assert_eq!(schedule(0, 0, true), None);
    assert_eq!(schedule(1, 1, true).unwrap().0, Duration::from_millis(666));
}

#[test]
fn tokens_never_show_in_debug_output() {
    let t = ClientToken("hvs.secret-value".into());
    assert!(!format!("{t:?}").contains("secret-value"));
}

fn approle_auth(dir: &Path, remove: bool, addr: &str) -> AutoAuth {
    std::fs::write(dir.join("role-id"), "rid\n").unwrap();
    std::fs::write(dir.join("secret-id"), "sid-1\n").unwrap();
    let config = Config {
        method: Method::Approle,
        mount: "approle".into(),
        source: Source::Approle {
            role_id_file: dir.join("role-id"),
            secret_id_file: Some(dir.join("secret-id")),
            remove,
            wrapped: false,
        },
    };
    AutoAuth::new(Conn::new(&Env::default(), Some(addr)).unwrap(), config)
}

#[tokio::test]
async fn a_removed_secret_id_file_leaves_the_secret_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let auth = approle_auth(dir.path(), true, "http://127.0.0.1:9");
    let mut state = auth.logins.lock().await;
    assert_eq!(auth.secret_id(&mut state).await.unwrap().as_deref(), Some("sid-1"));
    assert!(!dir.path().join("secret-id").exists(), "removed after reading");
    assert_eq!(auth.secret_id(&mut state).await.unwrap().as_deref(), Some("sid-1"));
    // A new secret id delivered later is read.
    std::fs::write(dir.path().join("secret-id"), "sid-2").unwrap();
    assert_eq!(auth.secret_id(&mut state).await.unwrap().as_deref(), Some("sid-2"));

    let kept = tempfile::tempdir().unwrap();
    let auth = approle_auth(kept.path(), false, "http://127.0.0.1:9");
    let mut state = auth.logins.lock().await;
    assert_eq!(auth.secret_id(&mut state).await.unwrap().as_deref(), Some("sid-1"));
    assert!(kept.path().join("secret-id").exists(), "kept by default");
}

/// A server whose login hands out `t1`, `t2`... and whose `x` answers 403 to anything but the
/// newest token; also unwraps the wrapping token `w1` once.
async fn fake_server() -> (String, Arc<AtomicUsize>) {
    let logins = Arc::new(AtomicUsize::new(0));
    let unwrapped = Arc::new(AtomicUsize::new(0));
    let (l1, l2) = (logins.clone(), logins.clone());
    let app = axum::Router::new()
        .route(
            "/v1/auth/approle/login",
            post(move |body: axum::Json<Value>| async move {
                if body["role_id"] != "rid" {
                    return (
                        StatusCode::BAD_REQUEST,
                        axum::Json(json!({"errors": ["invalid role or secret ID"]})),
                    );
                }
                let n = l1.fetch_add(1, Ordering::SeqCst) + 1;
                let auth = json!({"client_token": format!("t{n}"), "lease_duration": 60, "renewable": true});
                (StatusCode::OK, axum::Json(json!({"auth": auth, "echo": body.0})))
            }),
        )
        .route(
            "/v1/x",
            get(move |headers: HeaderMap| async move {
                let newest = format!("t{}", l2.load(Ordering::SeqCst));
                match headers.get("x-vault-token").and_then(|v| v.to_str().ok()) {
                    Some(t) if t == newest => (StatusCode::OK, axum::Json(json!({"data": {"ok": true}}))),
                    _ => (StatusCode::FORBIDDEN, axum::Json(json!({"errors": ["permission denied"]}))),
                }
            }),
        )
        .route(
            "/v1/sys/wrapping/unwrap",
            post(move |headers: HeaderMap| async move {
                let token = headers.get("x-vault-token").and_then(|v| v.to_str().ok()).unwrap_or_default();
                if token == "w1" && unwrapped.fetch_add(1, Ordering::SeqCst) == 0 {
                    (StatusCode::OK, axum::Json(json!({"data": {"secret_id": "unwrapped-sid"}})))
                } else {
                    (
                        StatusCode::BAD_REQUEST,
                        axum::Json(json!({"errors": ["wrapping token is not valid or does not exist"]})),
                    )
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, logins)
}

#[tokio::test]
async fn a_denied_call_logs_in_again_once_and_retries() {
    let (addr, logins) = fake_server().await;
    let dir = tempfile::tempdir().unwrap();
    let auth = Arc::new(approle_auth(dir.path(), false, &addr));
    let answer = auth.login().await.unwrap();
    assert_eq!(answer.body["echo"], json!({"role_id": "rid", "secret_id": "sid-1"}));
    assert_eq!(auth.token().await.unwrap().expose(), "t1");
    let mut generation = auth.logins();
    generation.mark_unchanged();
    let tokens = Tokens::Auto(auth.clone());
    let conn = Conn::new(&Env::default(), Some(&addr)).unwrap();
    assert_eq!(tokens.call(&conn, "GET", "x", None).await.unwrap().status, 200);
    assert_eq!(logins.load(Ordering::SeqCst), 1, "no login while the token works");

    // Another login elsewhere made t1 stale: the call is denied, logs in (t3) and retries.
    logins.fetch_add(1, Ordering::SeqCst);
    assert_eq!(tokens.call(&conn, "GET", "x", None).await.unwrap().status, 200);
    assert_eq!(auth.token().await.unwrap().expose(), "t3");
    assert!(generation.has_changed().unwrap(), "keepers hear of the new login");
    // A stale token handed out before the login does not bring another one.
    auth.login_after_denied(Some(&ClientToken("t1".into()))).await.unwrap();
    assert_eq!(logins.load(Ordering::SeqCst), 3);

    // A refused login is the Vault CLI's error, exit 2.
    std::fs::write(dir.path().join("role-id"), "wrong").unwrap();
    let refused = auth.login().await.unwrap_err();
    assert_eq!(refused.code, 2);
    assert!(refused.message.contains("Code: 400") && refused.message.contains("invalid role or secret ID"));
}

#[tokio::test]
async fn a_wrapped_secret_id_is_unwrapped_once_and_kept() {
    let (addr, _) = fake_server().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("role-id"), "rid").unwrap();
    std::fs::write(dir.path().join("secret-id"), "w1\n").unwrap();
    let config = Config {
        method: Method::Approle,
        mount: "approle".into(),
        source: Source::Approle {
            role_id_file: dir.path().join("role-id"),
            secret_id_file: Some(dir.path().join("secret-id")),
            remove: false,
            wrapped: true,
        },
    };
    let auth = AutoAuth::new(Conn::new(&Env::default(), Some(&addr)).unwrap(), config);
    let first = auth.login().await.unwrap();
    assert_eq!(first.body["echo"]["secret_id"], "unwrapped-sid");
    // The file still holds the spent wrapping token: the unwrapped secret id is used again.
    let second = auth.login().await.unwrap();
    assert_eq!(second.body["echo"]["secret_id"], "unwrapped-sid");
    // A wrapping token that does not unwrap stops the login.
    std::fs::write(dir.path().join("secret-id"), "w2").unwrap();
    let e = auth.login().await.unwrap_err();
    assert!(e.message.contains("wrapping token is not valid"), "{}", e.message);
}
