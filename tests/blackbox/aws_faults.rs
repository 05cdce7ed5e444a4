//! AWS misbehaving, through the fault proxy: throttling, 5xx answers, answers lost after the
//! call happened, slow calls, keys that do not work yet. Each test asserts what the caller
//! gets and what is left in (moto's) AWS: no orphaned user, no extra access key.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use keymint_tests::*;

const PATH: &str = "/keymint/";

/// keymint on `backend`, its AWS calls going through a fault proxy, config/root written with
/// `extra` on top of the proxy's endpoints, and an iam_user role `deploy`.
async fn env_via_proxy(backend: Backend, extra: Value) -> (TestEnv, FaultProxy) {
    let env = TestEnv::start(backend).await;
    let proxy = FaultProxy::start(&env.moto).await;
    let mut root = root_config_via(&proxy);
    for (k, v) in extra.as_object().expect("extra config is an object") {
        root[k] = v.clone();
    }
    env.km.post("aws/config/root", root).await.expect(200);
    write_iam_user_role(&env.km, "deploy", PATH).await;
    (env, proxy)
}

/// Asserts the minted keys belong to a user of moto holding exactly that one key.
async fn assert_one_user_one_key(moto: &Moto, creds: &Resp) {
    let users = moto.user_names(PATH).await;
    assert_eq!(users.len(), 1, "exactly one user: {users:?}");
    let user = moto.user(&users[0]).await;
    let key = creds.data()["access_key"].as_str().unwrap();
    assert_eq!(user.access_keys, [key], "the user holds exactly the key handed out");
    let arn = moto.caller_arn(key, creds.data()["secret_key"].as_str().unwrap(), None).await;
    assert_eq!(arn, user.arn);
}

/// Calls of `action` that reached moto.
fn reached(proxy: &FaultProxy, action: &str) -> usize {
    proxy.calls(Some(action)).iter().filter(|c| c.forwarded()).count()
}

/// A burst against an account that throttles IAM writes above 8 per second. With keymint's
/// pacing capped at 20 per second, AWS throttles and keymint slows down and retries; at 6 per
/// second, AWS never has to; with no cap (the default, 0), keymint sends at once, AWS throttles,
/// and keymint learns the rate AWS accepts. Every time, every request gets its user and key.
async fn a_burst_queues_instead_of_failing(backend: Backend) {
    for (rate, expect_throttling) in [(20, true), (6, false), (0, true)] {
        let (env, proxy) = env_via_proxy(backend, json!({"iam_write_rate": rate})).await;
        proxy.limit_iam_writes(8.0);
        let client = env.km.client();
        let burst: Vec<_> = (0..15)
            .map(|_| {
                let c = client.clone();
                tokio::spawn(async move { c.get("aws/creds/deploy").await })
            })
            .collect();
        let mut keys = Vec::new();
        for request in burst {
            let resp = request.await.unwrap().expect(200);
            keys.push(resp.data()["access_key"].as_str().unwrap().to_owned());
        }
        let throttled = proxy
            .calls(None)
            .iter()
            .filter(|c| matches!(&c.outcome, Outcome::Injected(_, code) if code == "Throttling"))
            .count();
        assert_eq!(throttled > 0, expect_throttling, "rate {rate}: {throttled} calls throttled");
        let users = env.moto.user_names(PATH).await;
        assert_eq!(users.len(), 15, "rate {rate}: one user per request");
        assert_eq!(reached(&proxy, "CreateUser"), 15, "rate {rate}: no CreateUser repeated");
        let mut held = Vec::new();
        for name in users {
            held.extend(env.moto.user(&name).await.access_keys);
        }
        held.sort();
        keys.sort();
        assert_eq!(held, keys, "rate {rate}: every key handed out, and no other");
    }
}

/// Throttling that outlasts the retry deadline: a 502 that names the AWS operation, and the
/// half-made user is torn down.
async fn throttling_past_the_deadline_is_a_502_and_leaves_nothing(backend: Backend) {
    let (env, proxy) = env_via_proxy(backend, json!({"retry_deadline": "2s"})).await;
    proxy.fail("PutUserPolicy", Fault::Throttle);
    let resp = env.km.get("aws/creds/deploy").await;
    assert_eq!(resp.status, 502, "{resp}");
    let error = resp.errors().join(" ");
    for part in [
        "Error putting user policy: Throttling: Rate exceeded",
        "AWS operation PutUserPolicy",
        "gave up after",
    ] {
        assert!(error.contains(part), "{part:?} missing from {error:?}");
    }
    assert!(reached(&proxy, "CreateUser") == 1 && proxy.calls(Some("PutUserPolicy")).len() > 1);
    assert!(env.moto.user_names(PATH).await.is_empty(), "the half-made user is gone");

    // A queue longer than max_queue_wait is refused at once, before anything is made; requests
    // let in finish, however long their later calls queue.
    let (env, _proxy) = env_via_proxy(backend, json!({"iam_write_rate": 1, "max_queue_wait": "2s"})).await;
    let client = env.km.client();
    let burst: Vec<_> = (0..4)
        .map(|_| {
            let c = client.clone();
            tokio::spawn(async move { c.get("aws/creds/deploy").await })
        })
        .collect();
    let mut refused = 0;
    for request in burst {
        let resp = request.await.unwrap();
        if resp.status == 502 {
            assert!(resp.errors().join(" ").contains("max_queue_wait"), "{resp}");
            refused += 1;
        } else {
            resp.expect(200);
        }
    }
    assert!(refused > 0, "a 1/s write rate cannot serve 4 users (12 writes) within 2s of queueing");
    assert_eq!(env.moto.user_names(PATH).await.len(), 4 - refused, "a user per served request, no other");
}

/// 5xx answers and lost connections on calls safe to repeat are retried.
async fn server_errors_on_idempotent_calls_are_retried(backend: Backend) {
    let (env, proxy) = env_via_proxy(backend, json!({})).await;
    proxy.fail_times("PutUserPolicy", Fault::ServerError(500), 1);
    proxy.fail_times("PutUserPolicy", Fault::DropAfterForward, 1);
    proxy.fail_times("PutUserPolicy", Fault::ServerError(503), 1);
    let creds = env.km.get("aws/creds/deploy").await.expect(200);
    assert_eq!(proxy.calls(Some("PutUserPolicy")).len(), 4);
    assert_one_user_one_key(&env.moto, &creds).await;
}

/// A third of every call (IAM and STS alike) throttled at random: requests take longer, and
/// all succeed with one user and one key each.
async fn a_share_of_throttled_calls_only_slows_requests(backend: Backend) {
    let (env, proxy) = env_via_proxy(backend, json!({})).await;
    proxy.fail_share("*", Fault::Throttle, 0.33);
    let mut keys = Vec::new();
    for _ in 0..5 {
        let creds = env.km.get("aws/creds/deploy").await.expect(200);
        keys.push(creds.data()["access_key"].as_str().unwrap().to_owned());
    }
    env.km
        .post(
            "aws/roles/fed",
            json!({"credential_type": "federation_token", "policy_document": S3_READ_POLICY}),
        )
        .await
        .expect(204);
    env.km.get("aws/creds/fed").await.expect(200);
    let throttled = proxy.calls(None).iter().filter(|c| matches!(c.outcome, Outcome::Injected(..))).count();
    assert!(throttled > 0, "some calls were throttled");
    let users = env.moto.user_names(PATH).await;
    assert_eq!(users.len(), 5);
    let mut held = Vec::new();
    for name in users {
        held.extend(env.moto.user(&name).await.access_keys);
    }
    held.sort();
    keys.sort();
    assert_eq!(held, keys);
}

/// CreateUser went through but its answer was lost (twice: once dropped after moto made the
/// user, once a 5xx before): one user, not two, and the request succeeds.
async fn a_lost_create_user_answer_makes_one_user(backend: Backend) {
    let (env, proxy) = env_via_proxy(backend, json!({})).await;
    proxy.fail_times("CreateUser", Fault::DropAfterForward, 1);
    let creds = env.km.get("aws/creds/deploy").await.expect(200);
    assert_eq!(reached(&proxy, "CreateUser"), 1, "the user was found, not made again");
    assert_one_user_one_key(&env.moto, &creds).await;

    env.km.put("sys/leases/revoke-prefix/aws/creds/deploy", json!({})).await.expect(204);
    proxy.fail_times("CreateUser", Fault::ServerError(500), 1);
    let creds = env.km.get("aws/creds/deploy").await.expect(200);
    assert_eq!(reached(&proxy, "CreateUser"), 2, "a CreateUser that never reached AWS is sent again");
    assert_one_user_one_key(&env.moto, &creds).await;
}

/// CreateAccessKey went through but its answer was lost: the key nobody knows is deleted and a
/// new one made, so the user holds exactly the key handed out.
async fn a_lost_access_key_answer_leaves_no_extra_key(backend: Backend) {
    let (env, proxy) = env_via_proxy(backend, json!({})).await;
    proxy.fail_times("CreateAccessKey", Fault::DropAfterForward, 1);
    let creds = env.km.get("aws/creds/deploy").await.expect(200);
    assert_eq!(reached(&proxy, "CreateAccessKey"), 2);
    assert_eq!(reached(&proxy, "DeleteAccessKey"), 1, "the lost key was deleted");
    assert_one_user_one_key(&env.moto, &creds).await;
}

/// After CreateUser, the user's other calls go out together: while PutUserPolicy is held in
/// flight, CreateAccessKey reaches AWS all the same. The held call, once its connection drops,
/// is retried, and the request ends with one user and one key.
async fn calls_after_create_user_run_at_once(backend: Backend) {
    // A call timeout far beyond the wait below: one after another, CreateAccessKey could only
    // go out once the held call timed out.
    let (env, proxy) = env_via_proxy(backend, json!({"call_timeout": "120s"})).await;
    proxy.fail_times("PutUserPolicy", Fault::Hold, 1);
    let client = env.km.client();
    let request = tokio::spawn(async move { client.get("aws/creds/deploy").await });
    eventually(
        "CreateAccessKey to reach AWS while PutUserPolicy is held",
        Duration::from_secs(20),
        async || (proxy.held() == 1 && reached(&proxy, "CreateAccessKey") == 1).then_some(()),
    )
    .await;
    proxy.release_held();
    let creds = request.await.unwrap().expect(200);
    assert_eq!(reached(&proxy, "PutUserPolicy"), 1, "the retry after the dropped connection");
    assert_one_user_one_key(&env.moto, &creds).await;
}

/// A call slower than call_timeout is abandoned and reconciled: a slow CreateAccessKey (made
/// in AWS, answered too late) and a slow PutUserPolicy both end with one user and one key.
async fn slow_calls_time_out_and_are_reconciled(backend: Backend) {
    let (env, proxy) = env_via_proxy(backend, json!({"call_timeout": "1s"})).await;
    proxy.fail_times("PutUserPolicy", Fault::Latency(Duration::from_secs(3)), 1);
    proxy.fail_times("CreateAccessKey", Fault::SlowAnswer(Duration::from_secs(3)), 1);
    let creds = env.km.get("aws/creds/deploy").await.expect(200);
    assert_one_user_one_key(&env.moto, &creds).await;

    // While a CreateUser hangs, the database is not held: other writes go through meanwhile.
    env.km
        .post("aws/config/root", json!({"call_timeout": "6s", "verify_connection": false}))
        .await
        .expect(204);
    proxy.fail_times("CreateUser", Fault::Hold, 1);
    let client = env.km.client();
    let hung = tokio::spawn(async move { client.get("aws/creds/deploy").await });
    eventually("the CreateUser to be held", Duration::from_secs(10), async || {
        (proxy.held() == 1).then_some(())
    })
    .await;
    env.km
        .post(
            "aws/roles/other",
            json!({"credential_type": "federation_token", "policy_document": S3_READ_POLICY}),
        )
        .await
        .expect(204);
    env.km.put("sys/leases/revoke-prefix/aws/creds/deploy", json!({})).await.expect(204);
    // The held call timed out (its outcome unknown), was found not to exist, and was made again.
    hung.await.unwrap().expect(200);
    proxy.release_held();
    assert_eq!(env.moto.user_names(PATH).await.len(), 1, "only the second request's user");
}

/// AWS refuses new keys for a few seconds. `wait_until_usable` (role option or request
/// parameter) returns the key only once AWS accepts it; without it, the key fails at first.
async fn wait_until_usable_returns_a_working_key(backend: Backend) {
    let (env, proxy) = env_via_proxy(backend, json!({})).await;
    proxy.delay_new_keys(Duration::from_secs(5));

    let creds = env.km.get("aws/creds/deploy").await.expect(200);
    let (key, secret) =
        (creds.data()["access_key"].as_str().unwrap(), creds.data()["secret_key"].as_str().unwrap());
    let refused = proxy.sts_with(key, secret).get_caller_identity().send().await;
    assert!(refused.is_err(), "without waiting, the new key does not work yet");

    let started = Instant::now();
    let creds = env.km.get("aws/creds/deploy?wait_until_usable=true").await.expect(200);
    assert!(started.elapsed() >= Duration::from_secs(4), "the request waited for the key");
    assert!(creds.warnings().is_empty(), "{creds}");
    let (key, secret) =
        (creds.data()["access_key"].as_str().unwrap(), creds.data()["secret_key"].as_str().unwrap());
    proxy
        .sts_with(key, secret)
        .get_caller_identity()
        .send()
        .await
        .expect("the key works as soon as it is returned");

    // As a role option, with a timeout shorter than AWS's delay: the key comes with a warning.
    env.km
        .post("aws/roles/deploy", json!({"wait_until_usable": true, "usable_timeout": "1s"}))
        .await
        .expect(204);
    let creds = env.km.get("aws/creds/deploy").await.expect(200);
    assert!(creds.warnings().iter().any(|w| w.contains("did not accept the new access key")), "{creds}");
    let read = env.km.get("aws/roles/deploy").await.expect(200);
    assert_eq!(
        (read.data()["wait_until_usable"].as_bool(), read.data()["usable_timeout"].as_u64()),
        (Some(true), Some(1))
    );
    env.km
        .post("aws/roles/sts", json!({"credential_type": "federation_token", "policy_document": S3_READ_POLICY, "wait_until_usable": true}))
        .await
        .assert_error_prefix(400, "error(s) validating supplied role data");
}

/// AWS's refusals come back as 400s naming the operation, AWS's code and message, and a hint;
/// nothing half-made stays behind.
async fn refusals_name_the_operation_with_a_hint(backend: Backend) {
    let (env, proxy) = env_via_proxy(backend, json!({})).await;
    let cases: [(&str, Fault, &str, &str); 3] = [
        (
            "CreateUser",
            Fault::AwsError(
                403,
                "AccessDenied",
                "User: arn:aws:iam::123456789012:user/keymint is not authorized to perform: iam:CreateUser",
            ),
            "Error creating IAM user: AccessDenied: User: arn:aws:iam::123456789012:user/keymint is not authorized",
            "hint: the credentials in config/root need the iam:CreateUser permission",
        ),
        (
            "CreateAccessKey",
            Fault::LimitExceeded,
            "Error creating access keys: LimitExceeded: Cannot exceed quota",
            "hint: the IAM user already has the two access keys AWS allows",
        ),
        (
            "PutUserPolicy",
            Fault::AwsError(409, "LimitExceeded", "Maximum policy size of 2048 bytes exceeded for user"),
            "Error putting user policy: LimitExceeded: Maximum policy size",
            "over AWS's size limit",
        ),
    ];
    for (action, fault, prefix, hint) in cases {
        proxy.fail_times(action, fault, 1);
        let resp = env.km.get("aws/creds/deploy").await;
        assert_eq!(resp.status, 400, "{resp}");
        let error = resp.errors().join(" ");
        assert!(error.starts_with(prefix), "{error}");
        assert!(error.contains(&format!("AWS operation {action}")) && error.contains(hint), "{error}");
        assert!(env.moto.user_names(PATH).await.is_empty(), "{action}: nothing left in AWS");
    }

    // STS refusals: an unknown role (or a trust policy that says no) and a session too long.
    let role_arn = env.moto.create_role("deployer").await;
    env.km
        .post("aws/roles/assume", json!({"credential_type": "assumed_role", "role_arns": role_arn}))
        .await
        .expect(204);
    proxy.fail_times(
        "AssumeRole",
        Fault::AwsError(403, "AccessDenied", "not authorized to perform: sts:AssumeRole"),
        1,
    );
    let resp = env.km.get("aws/creds/assume").await;
    assert_eq!(resp.status, 400, "{resp}");
    assert!(resp.errors()[0].contains("trust policy"), "{resp}");
    proxy.fail_times(
        "AssumeRole",
        Fault::AwsError(
            400,
            "ValidationError",
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
        ),
        1,
    );
    let resp = env.km.get("aws/creds/assume?ttl=12h").await;
    assert_eq!(resp.status, 400, "{resp}");
    assert!(resp.errors()[0].contains("raise the IAM role's MaxSessionDuration"), "{resp}");
    // Throttling on STS is AWS trouble: 502.
    proxy.fail("AssumeRole", Fault::Throttle);
    env.km
        .post("aws/config/root", json!({"retry_deadline": "1s", "verify_connection": false}))
        .await
        .expect(204);
    let resp = env.km.get("aws/creds/assume").await;
    assert_eq!(resp.status, 502, "{resp}");
    assert!(resp.errors()[0].starts_with("Error assuming role: Throttling"), "{resp}");
}

/// STS is reached through the fallback endpoints when the first one is down.
async fn sts_falls_back_to_the_next_endpoint(backend: Backend) {
    let (env, proxy) = env_via_proxy(backend, json!({})).await;
    let dead = format!("http://127.0.0.1:{}", free_port());
    let root = json!({
        "sts_endpoint": dead, "sts_region": "eu-west-1",
        "sts_fallback_endpoints": [proxy.url()], "sts_fallback_regions": ["us-east-1"],
    });
    let written = env.km.post("aws/config/root", root).await.expect(200);
    assert_eq!(written.data()["account_id"], MOTO_ACCOUNT_ID, "{written}");
    let role_arn = env.moto.create_role("deployer").await;
    env.km
        .post("aws/roles/assume", json!({"credential_type": "assumed_role", "role_arns": role_arn}))
        .await
        .expect(204);
    let creds = env.km.get("aws/creds/assume").await.expect(200);
    assert!(creds.data()["arn"].as_str().unwrap().contains(":assumed-role/deployer/"), "{creds}");
    let read = env.km.get("aws/config/root").await.expect(200);
    assert_eq!(read.data()["sts_fallback_regions"], json!(["us-east-1"]), "{read}");
}

/// Pacing settings are validated and read back.
async fn pacing_settings_are_validated_and_read_back(backend: Backend) {
    let (env, _proxy) = env_via_proxy(backend, json!({"iam_write_rate": 15, "retry_deadline": "1m"})).await;
    let read = env.km.get("aws/config/root").await.expect(200);
    let d = read.data();
    assert_eq!(
        [
            &d["iam_write_rate"],
            &d["iam_read_rate"],
            &d["sts_rate"],
            &d["retry_deadline"],
            &d["max_queue_wait"],
            &d["call_timeout"]
        ],
        [&json!(15), &json!(0), &json!(0), &json!(60), &json!(120), &json!(20)],
        "{read}"
    );
    for (body, error) in [
        (
            json!({"iam_write_rate": 10_001}),
            "iam_write_rate must be between 1 and 10000 calls per second, or 0 for no cap",
        ),
        (json!({"sts_rate": -3}), "sts_rate must be a positive number"),
        (json!({"call_timeout": "10m"}), "call_timeout must be between"),
    ] {
        let mut body = body;
        body["verify_connection"] = json!(false);
        env.km.post("aws/config/root", body).await.assert_error_prefix(400, error);
    }
}

/// A policy granting `ListUserTags` only under keymint's path makes AWS refuse the tags of
/// every other user: the reconciler skips those users, counts them, and reconciles the rest.
async fn reconcile_skips_users_whose_tags_it_may_not_read(backend: Backend) {
    let storage = Storage::new(backend);
    let (moto, km) =
        tokio::join!(Moto::start(), Keymint::start_with(storage.url(), &["--iam-consistency-window", "1s"]));
    let proxy = FaultProxy::start(&moto).await;
    km.post("aws/config/root", root_config_via(&proxy)).await.expect(200);
    let ours = installation_id(&km).await;
    let tag = |k: &str, v: &str| aws_sdk_iam::types::Tag::builder().key(k).value(v).build().unwrap();
    for name in ["stray-a", "stray-b"] {
        moto.iam()
            .create_user()
            .user_name(name)
            .path(PATH)
            .tags(tag("keymint:owner", "keymint"))
            .tags(tag("keymint:installation", &ours))
            .tags(tag("keymint:lease", &format!("aws/creds/deploy/{name}")))
            .send()
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let denied = Fault::AwsError(403, "AccessDenied", "User is not authorized to perform: iam:ListUserTags");
    // The user whose ListUserTags the proxy refused last, after `n` refusals in all.
    let refused_user = |proxy: &FaultProxy, n: usize| {
        let calls = proxy.calls(Some("ListUserTags"));
        let refused: Vec<_> = calls.iter().filter(|c| !c.forwarded()).collect();
        assert_eq!(refused.len(), n, "{calls:?}");
        refused[n - 1].param("UserName").unwrap().to_owned()
    };
    let names = |list: &Value| -> Vec<String> {
        list.as_array().unwrap().iter().map(|s| s["user_name"].as_str().unwrap().to_owned()).collect()
    };

    proxy.fail_times("ListUserTags", denied.clone(), 1);
    let listed = km.get("aws/reconcile").await.expect(200);
    let skipped = refused_user(&proxy, 1);
    let readable: Vec<String> =
        ["stray-a", "stray-b"].into_iter().filter(|n| *n != skipped).map(Into::into).collect();
    assert_eq!(listed.data()["skipped_unreadable"], 1, "{listed}");
    assert_eq!(names(&listed.data()["strays"]), readable, "{listed}");

    proxy.fail_times("ListUserTags", denied, 1);
    let removed = km.post("aws/reconcile", json!({})).await.expect(200);
    let skipped_now = refused_user(&proxy, 2);
    assert_eq!(removed.data()["skipped_unreadable"], 1, "{removed}");
    assert_eq!(removed.data()["failed"], json!([]), "{removed}");
    let left = moto.user_names(PATH).await;
    assert!(left.contains(&skipped_now), "the unreadable user is left alone: {left:?}");
    let removed_names = names(&removed.data()["removed"]);
    assert!(!removed_names.contains(&skipped_now), "{removed}");
    assert_eq!(left.len() + removed_names.len(), 2, "{left:?} {removed}");
}

both_backends!(a_lost_create_user_answer_makes_one_user, slow_calls_time_out_and_are_reconciled);

mod sqlite_only {
    //! The rest does not depend on the storage backend: SQLite only, to keep the suite short.
    use super::*;

    macro_rules! sqlite {
        ($($name:ident),+ $(,)?) => {$(
            #[tokio::test]
            async fn $name() {
                super::$name(Backend::Sqlite).await
            }
        )+};
    }

    sqlite!(
        calls_after_create_user_run_at_once,
        a_burst_queues_instead_of_failing,
        throttling_past_the_deadline_is_a_502_and_leaves_nothing,
        server_errors_on_idempotent_calls_are_retried,
        a_share_of_throttled_calls_only_slows_requests,
        a_lost_access_key_answer_leaves_no_extra_key,
        wait_until_usable_returns_a_working_key,
        refusals_name_the_operation_with_a_hint,
        sts_falls_back_to_the_next_endpoint,
        pacing_settings_are_validated_and_read_back,
        reconcile_skips_users_whose_tags_it_may_not_read,
    );
}
