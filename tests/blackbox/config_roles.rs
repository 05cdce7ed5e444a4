//! `aws/config/root`, `aws/config/lease` and `aws/roles/*`: what is accepted, what is refused
//! with which message, and what reads back.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use keymint_tests::*;

both_backends!(
    config_root_is_verified_and_never_reveals_secrets,
    config_lease_round_trip,
    roles_crud_and_list,
    role_writes_merge
);

/// The validation envelope Vault wraps role errors in (the message list is Go-quoted, so the
/// newlines and tabs arrive as backslash escapes).
fn role_error(messages: &[&str]) -> String {
    let count = match messages.len() {
        1 => "1 error occurred".to_owned(),
        n => format!("{n} errors occurred"),
    };
    let items: String = messages.iter().map(|m| format!("\\n\\t* {m}")).collect();
    format!("error(s) validating supplied role data: \"{count}:{items}\\n\\n\"")
}

async fn config_root_is_verified_and_never_reveals_secrets(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let km = &env.km;
    km.get("aws/config/root").await.expect(404).assert_errors(&[]);

    let mut config = root_config(&env.moto);
    config["secret_key"] = json!("keymint-test-secret-do-not-echo");
    config["session_token"] = json!("keymint-test-session-token-do-not-echo");
    config["max_retries"] = json!(3);
    let written = km.post("aws/config/root", config).await.expect(200);
    // The write answers with the identity GetCallerIdentity saw.
    assert_eq!(written.data()["account_id"], MOTO_ACCOUNT_ID, "{written}");
    let arn = written.data()["arn"].as_str().unwrap_or_default();
    assert!(arn.starts_with(&format!("arn:aws:sts::{MOTO_ACCOUNT_ID}:")), "{written}");
    assert!(written.data()["user_id"].as_str().is_some_and(|u| !u.is_empty()), "{written}");
    // ...and it really asked moto, with the configured keys and session token.
    let checks = env.moto.calls(Some("GetCallerIdentity"));
    assert!(
        checks.iter().any(|c| c.access_key.as_deref() == Some(ROOT_ACCESS_KEY)
            && c.session_token.as_deref() == Some("keymint-test-session-token-do-not-echo")),
        "no GetCallerIdentity signed with the root key and session token: {checks:?}"
    );

    let read = km.get("aws/config/root").await.expect(200);
    let data = read.data();
    assert_eq!(data["access_key"], ROOT_ACCESS_KEY, "{read}");
    assert_eq!(data["region"], "us-east-1", "{read}");
    assert_eq!(data["iam_endpoint"], env.moto.url(), "{read}");
    assert_eq!(data["sts_endpoint"], env.moto.url(), "{read}");
    assert_eq!(data["max_retries"], 3, "{read}");
    assert!(data.get("secret_key").is_none(), "secret_key returned: {read}");
    assert!(data.get("session_token").is_none(), "session_token returned: {read}");
    assert!(!read.text.contains("do-not-echo"), "a secret leaked into the read: {read}");

    // Keys written empty are cleared, as Vault stores "": the mount moves to the default
    // credential chain (unverified here: the test server has no AWS credentials of its own).
    km.post(
        "aws/config/root",
        json!({"access_key": "", "secret_key": "", "session_token": "", "verify_connection": false}),
    )
    .await
    .expect(204);
    assert_eq!(km.get("aws/config/root").await.expect(200).data()["access_key"], "");
    // One without the other is refused at once.
    km.post("aws/config/root", json!({"access_key": ROOT_ACCESS_KEY, "verify_connection": false}))
        .await
        .expect(400);
}

#[tokio::test]
async fn config_root_that_fails_verification_is_not_stored() {
    let env = TestEnv::start(Backend::Sqlite).await;
    let km = &env.km;
    let dead = format!("http://127.0.0.1:{}", free_port());

    let mut unreachable = root_config(&env.moto);
    unreachable["sts_endpoint"] = json!(dead);
    let resp = km.post("aws/config/root", unreachable.clone()).await.expect(400);
    assert!(!resp.errors().is_empty(), "{resp}");
    km.get("aws/config/root").await.expect(404);

    let mut wrong_account = root_config(&env.moto);
    wrong_account["expected_account_id"] = json!("999999999999");
    let resp = km.post("aws/config/root", wrong_account).await.expect(400);
    assert!(!resp.errors().is_empty(), "{resp}");
    km.get("aws/config/root").await.expect(404);

    let mut right_account = root_config(&env.moto);
    right_account["expected_account_id"] = json!(MOTO_ACCOUNT_ID);
    let ok = km.post("aws/config/root", right_account).await.expect(200);
    assert_eq!(ok.data()["account_id"], MOTO_ACCOUNT_ID, "{ok}");

    // A failed rewrite keeps the config that was there.
    km.post("aws/config/root", unreachable.clone()).await.expect(400);
    let read = km.get("aws/config/root").await.expect(200);
    assert_eq!(read.data()["sts_endpoint"], env.moto.url(), "{read}");

    // Unverified writes are stored as given.
    unreachable["verify_connection"] = json!(false);
    km.post("aws/config/root", unreachable).await.expect(204);
    let read = km.get("aws/config/root").await.expect(200);
    assert_eq!(read.data()["sts_endpoint"], dead, "{read}");
}

#[tokio::test]
async fn config_root_can_assume_a_role_with_an_external_id() {
    let env = TestEnv::start(Backend::Sqlite).await;
    let role_arn = env.moto.create_role("keymint-root").await;
    let mut config = root_config(&env.moto);
    config["role_arn"] = json!(role_arn);
    config["external_id"] = json!("tenant-42");
    config["role_session_name"] = json!("keymint-root-session");
    config["duration"] = json!("1h");

    let written = env.km.post("aws/config/root", config).await.expect(200);
    assert_eq!(
        written.data()["arn"],
        format!("arn:aws:sts::{MOTO_ACCOUNT_ID}:assumed-role/keymint-root/keymint-root-session"),
        "verification runs as the assumed role: {written}"
    );
    let assumed = env.moto.calls(Some("AssumeRole"));
    let call = assumed.last().unwrap_or_else(|| panic!("keymint never called AssumeRole"));
    assert_eq!(call.access_key.as_deref(), Some(ROOT_ACCESS_KEY), "{call:?}");
    assert_eq!(call.param("RoleArn"), Some(role_arn.as_str()), "{call:?}");
    assert_eq!(call.param("ExternalId"), Some("tenant-42"), "{call:?}");
    assert_eq!(call.param("RoleSessionName"), Some("keymint-root-session"), "{call:?}");
    assert_eq!(call.param("DurationSeconds"), Some("3600"), "{call:?}");

    let read = env.km.get("aws/config/root").await.expect(200);
    assert_eq!(read.data()["role_arn"], role_arn, "{read}");
    assert_eq!(read.data()["external_id"], "tenant-42", "{read}");
}

#[tokio::test]
async fn config_root_external_id_is_validated() {
    let km = Keymint::start_on(Backend::Sqlite).await;
    let write = async |external_id: &str| {
        let body = json!({
            "role_arn": format!("arn:aws:iam::{MOTO_ACCOUNT_ID}:role/keymint-root"),
            "external_id": external_id,
            "verify_connection": false,
        });
        km.post("aws/config/root", body).await
    };

    for good in ["ab".to_owned(), "A-z0+9=,.@:/-".to_owned(), "x".repeat(1224)] {
        write(&good).await.expect(204);
        let read = km.get("aws/config/root").await.expect(200);
        assert_eq!(read.data()["external_id"], good, "{read}");
    }
    for bad in ["a".to_owned(), "x".repeat(1225), "has space".to_owned(), "semi;colon".to_owned()] {
        let resp = write(&bad).await;
        assert_eq!(resp.status, 400, "external_id {bad:?} accepted: {resp:?}");
        let read = km.get("aws/config/root").await.expect(200);
        assert_ne!(read.data()["external_id"], bad, "{read}");
    }
}

#[tokio::test]
async fn config_root_username_template_must_fit_iam_limits() {
    let km = Keymint::start_on(Backend::Sqlite).await;
    let config = |template: &str| json!({"username_template": template, "verify_connection": false});

    // Unbounded: a display name can be any length.
    let resp = km.post("aws/config/root", config("{{ .DisplayName }}")).await.expect(400);
    assert!(!resp.errors().is_empty(), "{resp}");
    let resp = km.post("aws/config/root", config("km-{{ .DisplayName }}-{{ random 20 }}")).await.expect(400);
    assert!(!resp.errors().is_empty(), "{resp}");
    km.get("aws/config/root").await.expect(404);

    // Vault's default template truncates to 64 and must stay acceptable.
    let vault_default = r#"{{ if (eq .Type "STS") }}{{ printf "vault-%s-%s"  (unix_time) (random 20) | truncate 32 }}{{ else }}{{ printf "vault-%s-%s-%s" (printf "%s-%s" (.DisplayName) (.PolicyName) | truncate 42) (unix_time) (random 20) | truncate 64 }}{{ end }}"#;
    km.post("aws/config/root", config(vault_default)).await.expect(204);
    let read = km.get("aws/config/root").await.expect(200);
    assert_eq!(read.data()["username_template"], vault_default, "{read}");

    let short = "km-{{ random 20 }}";
    km.post("aws/config/root", config(short)).await.expect(204);
    let read = km.get("aws/config/root").await.expect(200);
    assert_eq!(read.data()["username_template"], short, "{read}");
}

async fn config_lease_round_trip(backend: Backend) {
    let km = Keymint::start_on(backend).await;
    km.get("aws/config/lease").await.expect(404).assert_errors(&[]);

    km.post("aws/config/lease", json!({"lease": "30m", "lease_max": "12h"})).await.expect(204);
    let read = km.get("aws/config/lease").await.expect(200);
    assert_eq!(read.data(), &json!({"lease": "30m0s", "lease_max": "12h0m0s"}), "{read}");

    // Integer seconds are accepted and read back as Go durations.
    km.post("aws/config/lease", json!({"lease": "3600", "lease_max": "90m"})).await.expect(204);
    let read = km.get("aws/config/lease").await.expect(200);
    assert_eq!(read.data(), &json!({"lease": "1h0m0s", "lease_max": "1h30m0s"}), "{read}");

    let missing_lease = km.post("aws/config/lease", json!({"lease_max": "1h"})).await.expect(400);
    missing_lease.assert_errors(&["'lease' is a required parameter"]);
    let missing_max = km.post("aws/config/lease", json!({"lease": "1h"})).await.expect(400);
    missing_max.assert_errors(&["'lease_max' is a required parameter"]);
    let bad = km.post("aws/config/lease", json!({"lease": "abc", "lease_max": "1h"})).await;
    bad.assert_error_prefix(400, "Invalid lease: ");
    let bad = km.post("aws/config/lease", json!({"lease": "1h", "lease_max": "abc"})).await;
    bad.assert_error_prefix(400, "Invalid lease_max: ");

    // Refused writes changed nothing.
    let read = km.get("aws/config/lease").await.expect(200);
    assert_eq!(read.data(), &json!({"lease": "1h0m0s", "lease_max": "1h30m0s"}), "{read}");
}

async fn roles_crud_and_list(backend: Backend) {
    let km = Keymint::start_on(backend).await;
    km.list("aws/roles").await.expect(404).assert_errors(&[]);

    let boundary = format!("arn:aws:iam::{MOTO_ACCOUNT_ID}:policy/boundary");
    let role = json!({
        "credential_type": "iam_user",
        "policy_document": "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [{\"Effect\": \"Allow\", \"Action\": \"s3:*\", \"Resource\": \"*\"}]\n}",
        "policy_arns": "arn:aws:iam::aws:policy/ReadOnlyAccess, arn:aws:iam::aws:policy/IAMReadOnlyAccess",
        "iam_groups": ["devs", "ops"],
        "iam_tags": ["team=core", "env=dev"],
        "user_path": "/keymint/",
        "permissions_boundary_arn": boundary,
    });
    km.post("aws/roles/deploy", role).await.expect(204);

    let read = km.get("aws/roles/deploy").await.expect(200);
    let expected = json!({
        "credential_type": "iam_user",
        "default_sts_ttl": 0,
        "default_ttl": 0,
        "external_id": "",
        "iam_groups": ["devs", "ops"],
        "iam_tags": {"team": "core", "env": "dev"},
        "max_sts_ttl": 0,
        "max_ttl": 0,
        "mfa_serial_number": "",
        "permissions_boundary_arn": boundary,
        "policy_arns": ["arn:aws:iam::aws:policy/ReadOnlyAccess", "arn:aws:iam::aws:policy/IAMReadOnlyAccess"],
        "policy_document": r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#,
        "role_arns": null,
        "session_tags": null,
        "user_path": "/keymint/",
        "usable_timeout": 0,
        "wait_until_usable": false,
    });
    assert_eq!(read.data(), &expected, "{read}");
    assert_eq!(read.json()["lease_id"], "", "{read}");

    // keymint's own tags (owner, lease, installation) cannot be overwritten by a role's.
    km.put("aws/roles/deploy", json!({"iam_tags": {"Keymint:installation": "other"}}))
        .await
        .assert_error_prefix(400, "iam_tags: \"Keymint:installation\" uses the \"keymint:\" prefix");
    assert_eq!(
        km.get("aws/roles/deploy").await.expect(200).data()["iam_tags"],
        json!({"team": "core", "env": "dev"})
    );

    let minimal = json!({"credential_type": "assumed_role", "role_arns": "arn:aws:iam::123456789012:role/a"});
    km.put("aws/roles/alpha", minimal).await.expect(204);
    let alpha = km.get("aws/roles/alpha").await.expect(200);
    assert_eq!(alpha.data()["policy_arns"], Value::Null, "{alpha}");
    assert_eq!(alpha.data()["iam_tags"], Value::Null, "{alpha}");
    assert_eq!(alpha.data()["user_path"], "", "{alpha}");
    assert_eq!(alpha.data()["role_arns"], json!(["arn:aws:iam::123456789012:role/a"]), "{alpha}");

    for listing in [
        km.list("aws/roles").await,
        km.list("aws/roles/").await,
        km.get("aws/roles?list=true").await,
        km.get("aws/roles/?list=true").await,
    ] {
        let listing = listing.expect(200);
        assert_eq!(listing.data()["keys"], json!(["alpha", "deploy"]), "{listing:?}");
    }

    km.delete("aws/roles/deploy").await.expect(204);
    km.get("aws/roles/deploy").await.expect(404).assert_errors(&[]);
    km.delete("aws/roles/deploy").await.expect(204);
    let listing = km.list("aws/roles").await.expect(200);
    assert_eq!(listing.data()["keys"], json!(["alpha"]), "{listing}");
    km.delete("aws/roles/alpha").await.expect(204);
    km.list("aws/roles").await.expect(404).assert_errors(&[]);
    km.get("aws/roles?list=true").await.expect(404).assert_errors(&[]);
}

async fn role_writes_merge(backend: Backend) {
    let km = Keymint::start_on(backend).await;
    let arn = "arn:aws:iam::123456789012:role/deploy";
    let role = json!({"credential_type": "assumed_role", "role_arns": [arn], "default_sts_ttl": 900});
    km.post("aws/roles/ops", role).await.expect(204);

    // Only the supplied field changes.
    km.post("aws/roles/ops", json!({"max_sts_ttl": "2h"})).await.expect(204);
    let read = km.get("aws/roles/ops").await.expect(200);
    assert_eq!(read.data()["credential_type"], "assumed_role", "{read}");
    assert_eq!(read.data()["role_arns"], json!([arn]), "{read}");
    assert_eq!(read.data()["default_sts_ttl"], 900, "{read}");
    assert_eq!(read.data()["max_sts_ttl"], 7200, "{read}");

    // The merged role is validated as a whole; a refused merge leaves the role as it was.
    let resp = km.post("aws/roles/ops", json!({"default_sts_ttl": "3h"})).await.expect(400);
    resp.assert_errors(&[&role_error(&[
        r#"\"default_sts_ttl\" value must be less than or equal to \"max_sts_ttl\" value"#,
    ])]);
    let resp = km.post("aws/roles/ops", json!({"credential_type": "iam_user"})).await.expect(400);
    assert!(
        resp.errors()[0].contains("cannot supply role_arns when credential_type isn't assumed_role"),
        "{resp}"
    );
    let after = km.get("aws/roles/ops").await.expect(200);
    assert_eq!(after.data(), read.data(), "a refused write changed the role");

    // Changing the type together with the fields that go with it is fine.
    let switch =
        json!({"credential_type": "iam_user", "role_arns": [], "default_sts_ttl": 0, "max_sts_ttl": 0});
    km.post("aws/roles/ops", switch).await.expect(204);
    let read = km.get("aws/roles/ops").await.expect(200);
    assert_eq!(read.data()["credential_type"], "iam_user", "{read}");
}

#[tokio::test]
async fn role_validation_messages() {
    let km = Keymint::start_on(Backend::Sqlite).await;
    let boundary = "arn:aws:iam::123456789012:policy/boundary";
    let cases = [
        (json!({}), "did not supply credential_type"),
        (json!({"credential_type": "bogus"}), "unrecognized credential type: bogus"),
        (
            json!({"credential_type": "iam_user", "role_arns": ["arn:aws:iam::123456789012:role/a"]}),
            "cannot supply role_arns when credential_type isn't assumed_role",
        ),
        (
            json!({"credential_type": "iam_user", "default_sts_ttl": 900}),
            "default_sts_ttl parameter only valid for assumed_role, federation_token, and session_token credential types",
        ),
        (
            json!({"credential_type": "iam_user", "max_sts_ttl": 900}),
            "max_sts_ttl parameter only valid for assumed_role, federation_token, and session_token credential types",
        ),
        (
            json!({"credential_type": "assumed_role", "user_path": "/x/"}),
            "user_path parameter only valid for iam_user credential type",
        ),
        (
            json!({"credential_type": "assumed_role", "permissions_boundary_arn": boundary}),
            "cannot supply permissions_boundary_arn when credential_type isn't iam_user",
        ),
        (
            json!({"credential_type": "session_token", "policy_arns": ["arn:aws:iam::aws:policy/ReadOnlyAccess"]}),
            "cannot supply a policy or role when using credential_type session_token",
        ),
        (
            json!({"credential_type": "iam_user", "session_tags": {"team": "core"}}),
            "cannot supply session_tags when credential_type isn't assumed_role",
        ),
        (
            json!({"credential_type": "federation_token", "external_id": "tenant-42"}),
            "cannot supply external_id when credential_type isn't assumed_role",
        ),
    ];
    for (body, message) in cases {
        let resp = km.post("aws/roles/invalid", body.clone()).await;
        assert_eq!(resp.status, 400, "{body} accepted: {resp:?}");
        resp.assert_errors(&[&role_error(&[message])]);
    }

    // Several problems are reported together.
    let two = json!({"credential_type": "iam_user", "role_arns": ["arn:aws:iam::123456789012:role/a"], "default_sts_ttl": 900});
    let resp = km.post("aws/roles/invalid", two).await.expect(400);
    let text = &resp.errors()[0];
    assert!(text.starts_with("error(s) validating supplied role data: \"2 errors occurred:"), "{resp}");
    assert!(text.contains("cannot supply role_arns when credential_type isn't assumed_role"), "{resp}");
    assert!(text.contains("default_sts_ttl parameter only valid for"), "{resp}");

    let bad_path = json!({"credential_type": "iam_user", "user_path": "no-slashes"});
    let resp = km.post("aws/roles/invalid", bad_path).await.expect(400);
    assert!(resp.errors()[0].contains("the specified value for user_path is invalid"), "{resp}");

    let bad_doc = json!({"credential_type": "iam_user", "policy_document": "not json"});
    let resp = km.post("aws/roles/invalid", bad_doc).await.expect(400);
    resp.assert_errors(&[r#"cannot parse policy document: "not json""#]);

    km.get("aws/roles/invalid").await.expect(404);
}

#[tokio::test]
async fn unknown_role_fields_are_ignored_with_a_warning() {
    let km = Keymint::start_on(Backend::Sqlite).await;
    let resp = km.post("aws/roles/r", json!({"credential_type": "iam_user", "bogus": 1})).await.expect(200);
    assert!(
        resp.warnings().contains(&"Endpoint ignored these unrecognized parameters: [bogus]".to_owned()),
        "{resp}"
    );
    let read = km.get("aws/roles/r").await.expect(200);
    assert_eq!(read.data()["credential_type"], "iam_user", "{read}");
    assert!(read.data().get("bogus").is_none(), "{read}");
}
