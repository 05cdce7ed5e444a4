//! Checks of the harness itself and of the moto behaviour the other suites rely on. If a moto
//! upgrade changes what GetCallerIdentity reports for minted keys, this file says so first.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod k8s;
mod oidc;

use keymint_tests::*;

#[tokio::test]
async fn minted_iam_user_keys_identify_as_that_user() {
    let moto = Moto::start().await;
    assert!(moto.url().starts_with("http://127.0.0.1:"));
    let iam = moto.iam();

    let boundary = iam
        .create_policy()
        .policy_name("harness-boundary")
        .policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
        )
        .send()
        .await
        .unwrap();
    let boundary_arn = boundary.policy().unwrap().arn().unwrap().to_owned();
    iam.create_user()
        .user_name("harness-user")
        .path("/keymint/")
        .permissions_boundary(&boundary_arn)
        .send()
        .await
        .unwrap();
    iam.tag_user()
        .user_name("harness-user")
        .tags(aws_sdk_iam::types::Tag::builder().key("keymint:owner").value("keymint").build().unwrap())
        .send()
        .await
        .unwrap();
    let key = iam.create_access_key().user_name("harness-user").send().await.unwrap();
    let key = key.access_key().unwrap();

    let user = iam.get_user().user_name("harness-user").send().await.unwrap();
    assert_eq!(user.user().unwrap().path(), "/keymint/");
    // moto drops a user's permissions boundary; the recording still shows it was sent.
    let create = moto.calls(Some("CreateUser"));
    assert_eq!(create.len(), 1, "{create:?}");
    assert_eq!(create[0].param("UserName"), Some("harness-user"));
    assert_eq!(create[0].param("PermissionsBoundary"), Some(boundary_arn.as_str()));
    assert_eq!(create[0].access_key.as_deref(), Some(DUMMY_ACCESS_KEY));
    let tags = iam.list_user_tags().user_name("harness-user").send().await.unwrap();
    assert_eq!(tags.tags()[0].key(), "keymint:owner");

    let arn = moto.caller_arn(key.access_key_id(), key.secret_access_key(), None).await;
    assert_eq!(arn, format!("arn:aws:iam::{MOTO_ACCOUNT_ID}:user/keymint/harness-user"));
    // The harness's own dummy keys are not that user.
    let me = moto.sts().get_caller_identity().send().await.unwrap();
    assert_ne!(me.arn(), Some(arn.as_str()));
    assert_eq!(me.account(), Some(MOTO_ACCOUNT_ID));
}

#[tokio::test]
async fn assumed_role_keys_identify_as_the_session() {
    let moto = Moto::start().await;
    let role = moto
        .iam()
        .create_role()
        .role_name("harness-role")
        .assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}"#)
        .send()
        .await
        .unwrap();
    let out = moto
        .sts()
        .assume_role()
        .role_arn(role.role().unwrap().arn())
        .role_session_name("harness-session")
        .duration_seconds(900)
        .send()
        .await
        .unwrap();
    let creds = out.credentials().unwrap();
    let arn =
        moto.caller_arn(creds.access_key_id(), creds.secret_access_key(), Some(creds.session_token())).await;
    assert_eq!(arn, format!("arn:aws:sts::{MOTO_ACCOUNT_ID}:assumed-role/harness-role/harness-session"));
    assert_eq!(out.assumed_role_user().unwrap().arn(), arn);
}

#[tokio::test]
async fn moto_environment_reaches_the_server() {
    // With auth switched on from the first call, the harness's dummy keys are refused: proof
    // that start_with_env really configures the server.
    let moto = Moto::start_with_env(&[("INITIAL_NO_AUTH_ACTION_COUNT", "0")]).await;
    let refused = moto.sts().get_caller_identity().send().await;
    assert!(refused.is_err(), "dummy keys accepted with auth on: {refused:?}");

    let open = Moto::start().await;
    assert_ne!(open.port(), moto.port());
    open.sts().get_caller_identity().send().await.unwrap();
}

#[test]
fn sqlite_storage_is_an_absolute_file_url_in_a_private_dir() {
    let a = Storage::new(Backend::Sqlite);
    let b = Storage::new(Backend::Sqlite);
    assert_ne!(a.url(), b.url());
    let path = a.url().strip_prefix("sqlite://").unwrap();
    assert!(path.starts_with('/') && path.ends_with("/keymint.db"), "{path}");
    let dir = std::path::Path::new(path).parent().unwrap().to_owned();
    assert!(dir.is_dir());
    drop(a);
    assert!(!dir.exists(), "temp dir outlived its Storage");
}

#[test]
fn postgres_storage_is_a_fresh_database() {
    let admin = std::env::var(POSTGRES_URL_VAR).unwrap_or_default();
    let storage = Storage::new(Backend::Postgres);
    let name = storage.url().rsplit('/').next().unwrap().to_owned();
    assert!(name.starts_with("km_"), "{}", storage.url());
    // Reachable under its own URL, and empty.
    assert_eq!(psql(storage.url(), "SELECT current_database()"), name);
    let tables = "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'";
    assert_eq!(psql(storage.url(), tables), "0");

    let exists = format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'");
    drop(storage);
    assert_eq!(psql(&admin, &exists), "0", "database outlived its Storage");
}

/// The AWS error code of a failed SDK call.
fn code<E: aws_sdk_iam::error::ProvideErrorMetadata, R>(e: &aws_sdk_iam::error::SdkError<E, R>) -> String {
    use aws_sdk_iam::error::ProvideErrorMetadata as _;
    e.code().unwrap_or_default().to_owned()
}

/// Every fault the proxy injects, seen through an SDK client without retries, and the record
/// of what reached moto.
#[tokio::test]
async fn the_fault_proxy_injects_what_it_is_told() {
    let moto = Moto::start().await;
    let proxy = FaultProxy::start(&moto).await;
    let iam = proxy.iam();

    // Passing through: the call reaches moto and is recorded with its answer.
    iam.create_user().user_name("proxied").send().await.unwrap();
    let calls = proxy.calls(Some("CreateUser"));
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].param("UserName"), Some("proxied"));
    assert_eq!(calls[0].outcome, Outcome::Answered(200));

    // Throttling twice, then through again.
    proxy.fail_times("GetUser", Fault::Throttle, 2);
    for _ in 0..2 {
        let err = iam.get_user().user_name("proxied").send().await.unwrap_err();
        assert_eq!(code(&err), "Throttling");
    }
    iam.get_user().user_name("proxied").send().await.unwrap();
    proxy.fail_times("*", Fault::ServerError(503), 1);
    let err = iam.list_users().send().await.unwrap_err();
    assert_eq!(code(&err), "ServiceUnavailable");
    proxy.fail_times("CreateGroup", Fault::LimitExceeded, 1);
    let err = iam.create_group().group_name("g").send().await.unwrap_err();
    assert_eq!(code(&err), "LimitExceeded");
    assert!(!proxy.calls(Some("CreateGroup"))[0].forwarded());

    // Dropped after forwarding: the caller sees an error, but the user exists in moto.
    proxy.fail_times("CreateUser", Fault::DropAfterForward, 1);
    iam.create_user().user_name("lost-answer").send().await.unwrap_err();
    assert_eq!(proxy.calls(Some("CreateUser"))[1].outcome, Outcome::DroppedAfterForward(200));
    moto.iam().get_user().user_name("lost-answer").send().await.unwrap();

    // Held: nothing reaches moto until the test lets go, and then the caller sees an error.
    proxy.fail_times("DeleteUser", Fault::Hold, 1);
    let held = tokio::spawn({
        let iam = iam.clone();
        async move { iam.delete_user().user_name("proxied").send().await }
    });
    eventually("the DeleteUser to be held", STARTUP_DEADLINE, async || (proxy.held() == 1).then_some(()))
        .await;
    moto.iam().get_user().user_name("proxied").send().await.expect("a held call never reaches moto");
    proxy.release_held();
    held.await.unwrap().unwrap_err();
    assert_eq!(proxy.held(), 0);

    // Eventual consistency: a new key is refused for a while, then accepted.
    proxy.clear();
    proxy.delay_new_keys(std::time::Duration::from_secs(2));
    let key = iam.create_access_key().user_name("proxied").send().await.unwrap();
    let key = key.access_key().unwrap();
    let sts = proxy.sts_with(key.access_key_id(), key.secret_access_key());
    let err = sts.get_caller_identity().send().await.unwrap_err();
    assert_eq!(code(&err), "InvalidClientTokenId");
    eventually("the new key to be accepted", STARTUP_DEADLINE, async || {
        sts.get_caller_identity().send().await.ok().map(|_| ())
    })
    .await;
}
