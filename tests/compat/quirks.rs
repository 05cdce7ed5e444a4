//! Vault's protocol quirks that clients depend on (reference §1, §11): how requests are read
//! (verbs, `?list=`, nulls, comma strings, `k=v` lists, durations, form bodies, tokens) and how
//! answers are shaped (204, 404 `{"errors":[]}`, warnings, JSON content type). Pure protocol,
//! so one SQLite run each; moto only where a path needs AWS.

use keymint_tests::*;

use crate::vault_cli::{
    assert_error_body, assert_json_content_type, assert_no_value, assert_refused, assert_secret,
    assert_written,
};

const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/deploy";
const READ_ONLY: &str = "arn:aws:iam::aws:policy/ReadOnlyAccess";
const VIEW_ONLY: &str = "arn:aws:iam::aws:policy/job-function/ViewOnlyAccess";

/// Writes `aws/roles/<name>` and asserts Vault's 204.
async fn write_role(km: &Keymint, name: &str, body: Value) {
    assert_written(km.post(&format!("aws/roles/{name}"), body).await);
}

/// `aws/roles/<name>`'s data.
async fn read_role(km: &Keymint, name: &str) -> Value {
    assert_secret(km.get(&format!("aws/roles/{name}")).await, 200).data().clone()
}

/// A write that Vault answers with 204 and keymint may answer with 200 and what it checked
/// (`config/root` with `verify_connection`, README).
#[track_caller]
fn assert_accepted(resp: Resp) {
    if resp.status == StatusCode::NO_CONTENT {
        assert_written(resp);
    } else {
        assert_secret(resp, 200);
    }
}

/// Asserts an empty list value: Vault stores an empty slice (`[]`); `null` reads the same to
/// every client.
#[track_caller]
fn assert_empty_list(value: &Value, what: &str) {
    assert!(
        value.is_null() || value.as_array().is_some_and(Vec::is_empty),
        "{what} should be empty: {value}"
    );
}

/// JSON `null` for a string or list field is "provided, zero value" (§1.2): a role update with
/// nulls clears those fields.
#[tokio::test]
async fn null_string_and_list_fields_are_provided_zero_values() {
    let km = Keymint::start_on(Backend::Sqlite).await;
    write_role(
        &km,
        "r",
        json!({"credential_type": "iam_user", "policy_document": S3_READ_POLICY, "policy_arns": [READ_ONLY], "user_path": "/x/"}),
    )
    .await;
    write_role(&km, "r", json!({"policy_document": null, "policy_arns": null, "user_path": null})).await;
    let role = read_role(&km, "r").await;
    assert_eq!(role["policy_document"], "", "{role}");
    assert_eq!(role["user_path"], "", "{role}");
    assert_empty_list(&role["policy_arns"], "policy_arns");
    assert_eq!(role["credential_type"], "iam_user", "fields not sent are kept: {role}");
}

/// JSON `null` for an int or bool field is "provided, zero value" (§1.2): hvac's
/// `configure_root_iam_credentials` always sends `max_retries`, null when not given, and Vault
/// stores 0, not the default -1 (§10.1).
#[tokio::test]
async fn null_int_and_bool_fields_are_provided_zero_values() {
    let env = TestEnv::start(Backend::Sqlite).await;
    let km = &env.km;
    let mut config = root_config(&env.moto);
    config["max_retries"] = Value::Null;
    assert_accepted(km.post("aws/config/root", config).await);
    let read = assert_secret(km.get("aws/config/root").await, 200);
    assert_eq!(read.data()["max_retries"], 0, "{read}");

    assert_accepted(km.post("aws/config/root", json!({"disable_automated_rotation": true})).await);
    let read = assert_secret(km.get("aws/config/root").await, 200);
    assert_eq!(read.data()["disable_automated_rotation"], true, "{read}");
    assert_accepted(km.post("aws/config/root", json!({"disable_automated_rotation": null})).await);
    let read = assert_secret(km.get("aws/config/root").await, 200);
    assert_eq!(read.data()["disable_automated_rotation"], false, "{read}");
    assert_eq!(read.data()["access_key"], ROOT_ACCESS_KEY, "an update keeps the keys: {read}");
}

/// JSON `null` for a duration field is "not provided" (§1.2): a role update keeps the TTLs.
#[tokio::test]
async fn null_durations_are_not_provided() {
    let km = Keymint::start_on(Backend::Sqlite).await;
    let role = json!({"credential_type": "assumed_role", "role_arns": [ROLE_ARN], "default_sts_ttl": 900, "max_sts_ttl": 3600});
    write_role(&km, "r", role).await;
    write_role(&km, "r", json!({"default_sts_ttl": null, "max_sts_ttl": null})).await;
    let role = read_role(&km, "r").await;
    assert_eq!(role["default_sts_ttl"], 900, "{role}");
    assert_eq!(role["max_sts_ttl"], 3600, "{role}");
}

/// `LIST` and `GET ?list=<b>`, `<b>` read by Go's `strconv.ParseBool`; a false value is a plain
/// read; anything else is a 400 (§1.1, §11.1).
#[tokio::test]
async fn list_verb_and_list_query_parse_like_go_parse_bool() {
    let km = Keymint::start_on(Backend::Sqlite).await;
    write_role(&km, "r", json!({"credential_type": "iam_user"})).await;
    let keys = json!({"keys": ["r"]});

    for path in ["aws/roles", "aws/roles/"] {
        let listed = assert_secret(km.list(path).await, 200);
        assert_eq!(listed.data(), &keys, "LIST {path}: {listed}");
    }
    for value in ["1", "t", "T", "true", "TRUE", "True"] {
        for path in ["aws/roles", "aws/roles/"] {
            let listed = assert_secret(km.get(&format!("{path}?list={value}")).await, 200);
            assert_eq!(listed.data(), &keys, "{listed:?}");
        }
    }
    for value in ["0", "f", "F", "false", "FALSE", "False"] {
        let read = assert_secret(km.get(&format!("aws/roles/r?list={value}")).await, 200);
        assert_eq!(read.data()["credential_type"], "iam_user", "list={value} is a read: {read:?}");
    }
    for value in ["yes", "2", "tRUE", "on"] {
        let resp = km.get(&format!("aws/roles?list={value}")).await.expect(400);
        assert_json_content_type(&resp);
        assert!(resp.json()["errors"].is_array(), "{resp:?}");
    }
}

/// List fields take a JSON array or one comma-separated string; items are trimmed and an empty
/// string is an empty list (§1.2).
#[tokio::test]
async fn list_fields_take_comma_strings_or_arrays() {
    let km = Keymint::start_on(Backend::Sqlite).await;
    let comma = format!("{READ_ONLY}, {VIEW_ONLY}");
    write_role(
        &km,
        "comma",
        json!({"credential_type": "iam_user", "policy_arns": comma, "iam_groups": " g1 ,g2"}),
    )
    .await;
    write_role(
        &km,
        "array",
        json!({"credential_type": "iam_user", "policy_arns": [READ_ONLY, VIEW_ONLY], "iam_groups": ["g1", " g2 "]}),
    )
    .await;
    for name in ["comma", "array"] {
        let role = read_role(&km, name).await;
        assert_eq!(role["policy_arns"], json!([READ_ONLY, VIEW_ONLY]), "{name}: {role}");
        assert_eq!(role["iam_groups"], json!(["g1", "g2"]), "{name}: {role}");
    }

    write_role(&km, "comma", json!({"iam_groups": ""})).await;
    assert_eq!(read_role(&km, "comma").await["iam_groups"], json!([]), "an empty string is []");

    let other = "arn:aws:iam::123456789012:role/other";
    write_role(
        &km,
        "ar",
        json!({"credential_type": "assumed_role", "role_arns": format!("{ROLE_ARN},{other}")}),
    )
    .await;
    assert_eq!(read_role(&km, "ar").await["role_arns"], json!([ROLE_ARN, other]));
}

/// Key-value fields take a JSON object, a list of `k=v` strings split on the first `=`, or one
/// such string (what `vault write … iam_tags=k=v` sends); an empty key is refused (§1.2).
#[tokio::test]
async fn kv_pair_fields_take_maps_or_k_eq_v_strings() {
    let km = Keymint::start_on(Backend::Sqlite).await;
    let expected = json!({"team": "a", "env": "b=c"});
    for (name, tags) in [("map", json!({"team": "a", "env": "b=c"})), ("list", json!(["team=a", "env=b=c"]))]
    {
        write_role(&km, name, json!({"credential_type": "iam_user", "iam_tags": tags})).await;
        assert_eq!(read_role(&km, name).await["iam_tags"], expected, "{name}");
    }
    write_role(&km, "one", json!({"credential_type": "iam_user", "iam_tags": "team=a"})).await;
    assert_eq!(read_role(&km, "one").await["iam_tags"], json!({"team": "a"}));

    let role = json!({"credential_type": "assumed_role", "role_arns": [ROLE_ARN], "session_tags": ["dept=eng", "cc=42"]});
    write_role(&km, "ar", role).await;
    assert_eq!(read_role(&km, "ar").await["session_tags"], json!({"dept": "eng", "cc": "42"}));

    for bad in ["novalue", "=x"] {
        let resp = km.post("aws/roles/bad", json!({"credential_type": "iam_user", "iam_tags": [bad]})).await;
        let errors = assert_error_body(resp, 400);
        let reason = format!("for field \"iam_tags\": invalid key pair \"{bad}\"");
        assert!(
            errors[0].starts_with("Field validation failed: error converting input ")
                && errors[0].ends_with(&reason),
            "{bad}: {errors:?}"
        );
    }
    assert_no_value(km.get("aws/roles/bad").await);
}

/// Duration fields take Go duration strings (with parseutil's `d`), integer seconds, or
/// numeric strings; negatives are refused with Vault's text (§1.2).
#[tokio::test]
async fn durations_take_strings_or_seconds() {
    let km = Keymint::start_on(Backend::Sqlite).await;
    write_role(&km, "r", json!({"credential_type": "assumed_role", "role_arns": [ROLE_ARN]})).await;
    for (input, secs) in [
        (json!("1h"), 3600),
        (json!(3600), 3600),
        (json!("3600"), 3600),
        (json!("1h30m"), 5400),
        (json!("90s"), 90),
        (json!("1d"), 86_400),
    ] {
        write_role(&km, "r", json!({"max_sts_ttl": input})).await;
        assert_eq!(read_role(&km, "r").await["max_sts_ttl"], secs, "max_sts_ttl = {input}");
    }

    // sdk/framework/field_data.go: "cannot provide negative value '%d'", in seconds.
    for (input, shown, secs) in [(json!(-5), "-5", -5), (json!("-1h"), "-1h", -3600)] {
        let resp = km.post("aws/roles/r", json!({"max_sts_ttl": input})).await;
        let message = format!(
            "Field validation failed: error converting input {shown} for field \"max_sts_ttl\": cannot provide negative value '{secs}'"
        );
        assert_refused(resp, 400, &message);
    }
    let resp = km.post("aws/roles/r", json!({"max_sts_ttl": "abc"})).await;
    resp.assert_error_prefix(
        400,
        "Field validation failed: error converting input abc for field \"max_sts_ttl\"",
    );
    assert_eq!(read_role(&km, "r").await["max_sts_ttl"], 86_400, "refused writes change nothing");
}

/// A field captured from the URL wins over the same field in the body, and a response that has
/// a body says so (§1.1).
#[tokio::test]
async fn url_captured_fields_override_the_body() {
    let env = TestEnv::start(Backend::Sqlite).await;
    env.configure_root().await;
    let km = &env.km;
    write_iam_user_role(km, "r", "/").await;
    let creds = assert_secret(km.post("aws/creds/r", json!({"name": "other"})).await, 200);
    assert_lease_id(&creds.json()["lease_id"], "aws/creds/r/");
    assert_eq!(
        creds.warnings(),
        [
            "Endpoint replaced the value of these parameters with the values captured from the endpoint's path: [name]"
        ],
        "{creds}"
    );
}

/// Unknown parameters are ignored, with a warning listing them sorted when the answer has a
/// body (§1.1): in a body or in a query string.
#[tokio::test]
async fn unknown_parameters_are_ignored_with_a_warning() {
    let env = TestEnv::start(Backend::Sqlite).await;
    env.configure_root().await;
    let km = &env.km;
    write_iam_user_role(km, "r", "/").await;
    let warning = "Endpoint ignored these unrecognized parameters: [alpha zeta]";

    let posted = assert_secret(km.post("aws/creds/r", json!({"zeta": 1, "alpha": "x"})).await, 200);
    assert_eq!(posted.warnings(), [warning], "{posted}");
    let read = assert_secret(km.get("aws/creds/r?zeta=1&alpha=2").await, 200);
    assert_eq!(read.warnings(), [warning], "{read}");
    assert_lease_id(&read.json()["lease_id"], "aws/creds/r/");

    // Vault answers this write 204 and drops the warning. keymint answers 200 with it instead
    // (README: "so a misspelt field is never silently dropped"); both keep the role.
    let resp = km.post("aws/roles/w", json!({"credential_type": "iam_user", "zeta": 1, "alpha": "x"})).await;
    if resp.status == StatusCode::NO_CONTENT {
        assert_written(resp);
    } else {
        let resp = assert_secret(resp, 200);
        assert_eq!(resp.warnings(), [warning], "{resp}");
    }
    assert_eq!(read_role(km, "w").await["credential_type"], "iam_user");
}

/// The same warning on a plain read of a configuration: any answer with a body carries it
/// (§1.1; Vault's framework adds it whatever the operation).
#[tokio::test]
async fn unknown_query_parameters_on_config_reads_are_warned_about() {
    let km = Keymint::start_on(Backend::Sqlite).await;
    assert_written(km.post("aws/config/lease", json!({"lease": "1h", "lease_max": "2h"})).await);
    let read = assert_secret(km.get("aws/config/lease?zeta=1&alpha=2").await, 200);
    assert_eq!(read.warnings(), ["Endpoint ignored these unrecognized parameters: [alpha zeta]"], "{read}");
    assert_eq!(read.data()["lease"], "1h0m0s", "{read}");
}

/// Missing objects and empty lists are 404 `{"errors":[]}` (§1.4, §11.1-2).
#[tokio::test]
async fn missing_objects_and_empty_lists_are_404_with_no_errors() {
    let km = Keymint::start_on(Backend::Sqlite).await;
    for resp in [
        km.list("aws/roles").await,
        km.get("aws/roles?list=true").await,
        km.list("aws/static-roles").await,
        km.list("sys/leases/lookup/aws/creds/nope/").await,
        km.get("aws/roles/nope").await,
        km.get("aws/config/lease").await,
        km.get("aws/config/root").await,
        km.get("aws/static-roles/nope").await,
        km.get("aws/static-creds/nope").await,
        km.get("sys/policies/acl/nope").await,
    ] {
        assert_no_value(resp);
    }
}

/// Writes that return nothing are 204 with an empty body, so there is no warning to carry
/// (§1.4, §11.2).
#[tokio::test]
async fn writes_without_data_are_204_with_no_body() {
    let km = Keymint::start_on(Backend::Sqlite).await;
    let client = km.client();
    for resp in [
        km.post("aws/config/lease", json!({"lease": "1h", "lease_max": "2h"})).await,
        km.put("aws/config/lease", json!({"lease": "2h", "lease_max": "3h"})).await,
        km.post("aws/roles/r", json!({"credential_type": "iam_user"})).await,
        km.put("aws/roles/r", json!({"policy_arns": [READ_ONLY]})).await,
        km.delete("aws/roles/r").await,
        km.put("sys/policies/acl/p", json!({"policy": "path \"aws/*\" { capabilities = [\"read\"] }"})).await,
        km.delete("sys/policies/acl/p").await,
        km.post("sys/mounts/aws2", json!({"type": "aws"})).await,
        km.post("sys/mounts/aws2/tune", json!({"default_lease_ttl": "1h"})).await,
        km.delete("sys/mounts/aws2").await,
        client.send(Method::PUT, "sys/leases/revoke-prefix/aws/creds/none", None).await,
    ] {
        assert_written(resp);
    }
}

/// Every JSON body is sent as `application/json`: success, and every kind of error (§1.3-4).
#[tokio::test]
async fn every_json_body_is_application_json() {
    let km = Keymint::start_on(Backend::Sqlite).await;
    let client = km.client();
    write_role(&km, "r", json!({"credential_type": "iam_user"})).await;

    assert_secret(km.get("aws/roles/r").await, 200);
    let mounts = km.get("sys/mounts").await.expect(200);
    assert_json_content_type(&mounts);

    let bad_json =
        client.send_raw(Method::POST, "aws/roles/r", Some(b"{".to_vec()), Some("application/json")).await;
    assert_error_body(bad_json, 400);
    assert_error_body(km.post("aws/roles/r", json!({"credential_type": "nope"})).await, 400);
    assert_error_body(km.anonymous().get("aws/roles/r").await, 403);
    assert_error_body(km.with_token("hvs.AAAAAAAAAAAAAAAAAAAAAAAA").get("aws/roles/r").await, 403);
    assert_error_body(km.get("nope/x").await, 404);
    assert_no_value(km.get("aws/roles/nope").await);
    assert_error_body(km.delete("aws/creds/r").await, 405);
}

/// `application/x-www-form-urlencoded` bodies are read like JSON ones (§1.1).
#[tokio::test]
async fn form_urlencoded_bodies_are_accepted() {
    let km = Keymint::start_on(Backend::Sqlite).await;
    let client = km.client();
    let form = |pairs: &[(&str, &str)]| {
        url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish().into_bytes()
    };
    const FORM: &str = "application/x-www-form-urlencoded";

    let lease = form(&[("lease", "1h"), ("lease_max", "7200")]);
    assert_written(client.send_raw(Method::POST, "aws/config/lease", Some(lease), Some(FORM)).await);
    let read = assert_secret(km.get("aws/config/lease").await, 200);
    assert_eq!(read.data(), &json!({"lease": "1h0m0s", "lease_max": "2h0m0s"}), "{read}");

    let arns = format!("{READ_ONLY},{VIEW_ONLY}");
    let role = form(&[("credential_type", "iam_user"), ("policy_arns", &arns), ("iam_tags", "team=a")]);
    assert_written(client.send_raw(Method::PUT, "aws/roles/r", Some(role), Some(FORM)).await);
    let role = read_role(&km, "r").await;
    assert_eq!(role["policy_arns"], json!([READ_ONLY, VIEW_ONLY]), "{role}");
    assert_eq!(role["iam_tags"], json!({"team": "a"}), "{role}");
}

/// A body that is not a JSON object is 400 `error parsing JSON`; an empty body or `null` is no
/// data at all (§1.1).
#[tokio::test]
async fn bodies_that_are_not_json_objects() {
    let km = Keymint::start_on(Backend::Sqlite).await;
    let client = km.client();
    write_role(&km, "r", json!({"credential_type": "iam_user", "policy_arns": [READ_ONLY]})).await;

    for body in [&b"{\"credential_type\": "[..], b"not json", b"[1,2]", b"\"text\"", b"42", b"true"] {
        let resp =
            client.send_raw(Method::POST, "aws/roles/r", Some(body.to_vec()), Some("application/json")).await;
        assert_refused(resp, 400, "error parsing JSON");
    }
    for body in [&b""[..], b"null"] {
        let resp =
            client.send_raw(Method::POST, "aws/roles/r", Some(body.to_vec()), Some("application/json")).await;
        assert_written(resp);
    }
    let role = read_role(&km, "r").await;
    assert_eq!(role["policy_arns"], json!([READ_ONLY]), "nothing changed: {role}");
}

/// A body over the 1 MiB limit is refused in the error shape every client parses, not as
/// plain text, and changes nothing.
#[tokio::test]
async fn oversized_bodies_are_413_in_the_error_shape() {
    let km = Keymint::start_on(Backend::Sqlite).await;
    write_role(&km, "r", json!({"credential_type": "iam_user", "policy_arns": [READ_ONLY]})).await;
    let big = format!(r#"{{"credential_type": "iam_user", "policy_document": "{}"}}"#, "x".repeat(1 << 20));
    let resp = km
        .client()
        .send_raw(Method::POST, "aws/roles/r", Some(big.into_bytes()), Some("application/json"))
        .await;
    assert_error_body(resp, 413);
    assert_eq!(read_role(&km, "r").await["policy_document"], "", "nothing was written");
}

/// `Authorization: Bearer <token>` authenticates like `X-Vault-Token` (§1.1); no token or an
/// unknown one is 403.
#[tokio::test]
async fn bearer_tokens_authenticate() {
    let km = Keymint::start_on(Backend::Sqlite).await;
    write_role(&km, "r", json!({"credential_type": "iam_user"})).await;
    let bearer = |token: &str| km.client().with_auth(Auth::Bearer(token.to_owned()));

    let read = assert_secret(bearer(ROOT_TOKEN).get("aws/roles/r").await, 200);
    assert_eq!(read.data()["credential_type"], "iam_user", "{read}");
    assert_written(bearer(ROOT_TOKEN).post("aws/roles/b", json!({"credential_type": "iam_user"})).await);
    assert_error_body(bearer("hvs.AAAAAAAAAAAAAAAAAAAAAAAA").get("aws/roles/r").await, 403);
    assert_error_body(km.anonymous().get("aws/roles/r").await, 403);
}

/// PATCH is supported by no AWS path: 405, like any other unsupported operation (§1.1, §1.4).
#[tokio::test]
async fn patch_and_other_unsupported_operations_are_405() {
    let km = Keymint::start_on(Backend::Sqlite).await;
    let client = km.client();
    write_role(&km, "r", json!({"credential_type": "iam_user", "policy_arns": [READ_ONLY]})).await;

    let patch = client
        .send_raw(
            Method::PATCH,
            "aws/roles/r",
            Some(br#"{"policy_arns":null}"#.to_vec()),
            Some("application/merge-patch+json"),
        )
        .await;
    let delete_creds = km.delete("aws/creds/r").await;
    for resp in [patch, delete_creds] {
        let request = resp.request.clone();
        let errors = assert_error_body(resp, 405);
        assert!(errors.iter().any(|e| e.contains("unsupported operation")), "{request}: {errors:?}");
    }
    assert_eq!(read_role(&km, "r").await["policy_arns"], json!([READ_ONLY]));
}

/// A path no mount serves is 404 `no handler for route "<path>"`; a path the mount does not
/// know is 404 too (§1.4).
#[tokio::test]
async fn unknown_mounts_and_paths_are_404() {
    let km = Keymint::start_on(Backend::Sqlite).await;
    let errors = assert_error_body(km.get("nope/x").await, 404);
    assert!(errors[0].contains("no handler for route \"nope/x\""), "{errors:?}");
    assert_error_body(km.get("aws/no/such/path").await, 404);
    assert_error_body(km.post("nope/x", json!({"a": 1})).await, 404);
}

/// `X-Vault-Wrap-TTL`: the answer is wrapped (data null, `wrap_info` with a single-use token),
/// and `sys/wrapping/unwrap` with that token gives the original answer once (§1.1).
#[tokio::test]
async fn wrap_ttl_header_wraps_the_answer_for_one_unwrap() {
    let km = Keymint::start_on(Backend::Sqlite).await;
    assert_written(km.post("aws/config/lease", json!({"lease": "1h", "lease_max": "2h"})).await);
    let resp = km
        .client()
        .send_with_headers(Method::GET, "aws/config/lease", &[("X-Vault-Wrap-TTL", "5m")], None)
        .await;
    let resp = assert_secret(resp, 200);
    assert_eq!(resp.json()["data"], Value::Null, "{resp}");
    let info = &resp.json()["wrap_info"];
    assert_eq!((info["ttl"].clone(), info["creation_path"].clone()), (json!(300), json!("aws/config/lease")));
    let token = info["token"].as_str().unwrap();
    let unwrapped = assert_secret(km.with_token(token).post("sys/wrapping/unwrap", json!({})).await, 200);
    assert_eq!(unwrapped.data()["lease"], "1h0m0s", "{unwrapped}");
    let again = km.post("sys/wrapping/unwrap", json!({"token": token})).await;
    assert_error_body(again, 400);
}
