//! The AWS account page over the fake AWS: the credentials choice, pacing and rotation fields
//! read back through the API, the server's errors beside their fields, the hints for AWS's
//! refusals, `config/lease`, and rotating the root key.

use axum::http::StatusCode;
use keymint_api::testing::{ROOT_KEY, ROOT_TOKEN, ROOT_USER, TestApp};
use keymint_engine::fake_aws::{ACCOUNT, Failure};
use serde_json::{Value, json};

use super::{SAME, get, post, sign_in};

const CONFIG: &str = "/ui/aws/aws/config";
const ROLE: &str = "arn:aws:iam::123456789012:role/keymint-root";

fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

async fn stored(app: &TestApp) -> Value {
    let read = app.root("GET", "aws/config/root", None).await;
    assert_eq!(read.status, StatusCode::OK, "{:?}", read.body);
    read.body["data"].clone()
}

/// The inner text of the element that follows `marker` in `body`.
fn after<'a>(body: &'a str, marker: &str) -> &'a str {
    let rest = body.split(marker).nth(1).unwrap_or_else(|| panic!("no {marker} in {body}"));
    rest.split('<').next().unwrap()
}

fn tip(body: &str) -> &str {
    after(body, r#"<p class="tip">"#)
}

#[tokio::test]
async fn pacing_and_rotation_are_saved_and_come_back_into_the_form() {
    let app = TestApp::new().await;
    let cookie = sign_in(&app, ROOT_TOKEN).await;
    let fields = [
        ("credentials", "static"),
        ("access_key", ROOT_KEY),
        ("secret_key", ""),
        ("assume_role", "false"),
        ("iam_write_rate", "5"),
        ("iam_read_rate", "15"),
        ("sts_rate", ""),
        ("max_queue_wait", "2m"),
        ("retry_deadline", "45s"),
        ("call_timeout", "10"),
        ("max_retries", ""),
        ("rotation_period", ""),
        ("rotation_schedule", "0 3 * * SUN"),
        ("rotation_window", "2h"),
        // The page's hidden "false" and the ticked box: the box wins.
        ("disable_automated_rotation", "false"),
        ("disable_automated_rotation", "true"),
        ("action", "save"),
    ];
    let saved = post(&app, CONFIG, Some(&cookie), SAME, &form(&fields)).await;
    assert_eq!(saved.status, StatusCode::OK);
    assert!(saved.body.contains(&format!("Saved. Connected: account {ACCOUNT}")), "{}", saved.body);
    let data = stored(&app).await;
    assert_eq!((&data["iam_write_rate"], &data["iam_read_rate"]), (&json!(5), &json!(15)));
    assert_eq!(data["sts_rate"], json!(0), "empty: no cap");
    assert_eq!((&data["max_queue_wait"], &data["retry_deadline"]), (&json!(120), &json!(45)));
    assert_eq!((&data["call_timeout"], &data["max_retries"]), (&json!(10), &json!(-1)));
    assert_eq!((&data["rotation_schedule"], &data["rotation_window"]), (&json!("0 3 * * SUN"), &json!(7200)));
    assert_eq!((&data["rotation_period"], &data["disable_automated_rotation"]), (&json!(0), &json!(true)));
    assert_eq!(data["iam_endpoint"], "http://iam.fake.invalid", "fields the form left out stay");
    assert!(saved.body.contains(r#"name="max_queue_wait" value="120""#), "the stored value comes back");

    let page = get(&app, CONFIG, Some(&cookie)).await;
    for shown in [
        r#"name="iam_write_rate" value="5""#,
        r#"name="sts_rate" value="""#,
        r#"name="max_queue_wait" value="120""#,
        r#"name="rotation_window" value="7200""#,
        r#"name="rotation_period" value="""#,
        r#"name="rotation_schedule" value="0 3 * * SUN""#,
        r#"name="disable_automated_rotation" value="true" checked"#,
        r#"value="static" checked"#,
    ] {
        assert!(page.body.contains(shown), "{shown} in {}", page.body);
    }

    // A period instead, the box cleared: rotation is scheduled.
    let period = [
        ("rotation_period", "24h"),
        ("rotation_schedule", ""),
        ("rotation_window", ""),
        ("disable_automated_rotation", "false"),
        ("action", "save"),
    ];
    let saved = post(&app, CONFIG, Some(&cookie), SAME, &form(&period)).await;
    assert!(saved.body.contains("Saved. Connected"), "{}", saved.body);
    let data = stored(&app).await;
    assert_eq!((&data["rotation_period"], &data["rotation_schedule"]), (&json!(86400), &json!("")));
    assert_eq!(data["disable_automated_rotation"], json!(false));
    assert!(data["next_rotation"].is_string(), "{data}");
}

#[tokio::test]
async fn the_default_chain_sends_no_keys_and_clears_the_stored_ones() {
    let app = TestApp::new().await;
    let cookie = sign_in(&app, ROOT_TOKEN).await;
    let page = get(&app, CONFIG, Some(&cookie)).await;
    assert!(page.body.contains(r#"value="static" checked"#), "{}", page.body);
    let before = stored(&app).await;

    // The fake AWS gives the default chain nothing: the check fails without the stored keys.
    app.fake.clear_calls();
    let chain = [("credentials", "chain"), ("access_key", ROOT_KEY), ("secret_key", ""), ("action", "test")];
    let tested = post(&app, CONFIG, Some(&cookie), SAME, &form(&chain)).await;
    assert!(
        tip(&tested.body).starts_with("The default credential chain found no credentials"),
        "{}",
        tested.body
    );
    assert!(tested.body.contains(r#"value="chain" checked"#), "the choice stays: {}", tested.body);
    assert!(app.fake.calls().iter().all(|c| c.key != ROOT_KEY), "the stored keys were not used");
    let mut save = chain;
    save[3] = ("action", "save");
    let refused = post(&app, CONFIG, Some(&cookie), SAME, &form(&save)).await;
    assert!(refused.body.contains(r#"<p class="error" role="alert">Could not save"#), "{}", refused.body);
    assert_eq!(stored(&app).await, before, "a failed check stores nothing");

    // What the form sends for the chain clears both keys (written here without the check,
    // which the fake AWS cannot pass): the secret is gone too, so rotation is refused.
    let form_map = [("credentials", "chain"), ("access_key", ROOT_KEY), ("region", "us-east-1")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut body = crate::pages::aws_config::fields::body(&form_map);
    body.insert("verify_connection".into(), json!(false));
    let written = app.root("POST", "aws/config/root", Some(Value::Object(body))).await;
    assert_eq!(written.status, StatusCode::NO_CONTENT, "{:?}", written.body);
    assert_eq!(stored(&app).await["access_key"], "");
    let rotate = app.root("POST", "aws/config/rotate-root", None).await;
    assert!(rotate.body["errors"][0].as_str().unwrap().contains("either access_key or secret_key is empty"));
    let page = get(&app, CONFIG, Some(&cookie)).await;
    assert!(page.body.contains(r#"value="chain" checked"#), "{}", page.body);
    assert!(page.body.contains(r#"name="access_key" value="""#) && page.body.contains("Not set."));
}

#[tokio::test]
async fn the_fields_carry_the_apis_rules_and_its_errors_sit_beside_them() {
    let app = TestApp::new().await;
    let cookie = sign_in(&app, ROOT_TOKEN).await;
    let page = get(&app, CONFIG, Some(&cookie)).await;
    for rule in [
        r#"id="expected_account_id" name="expected_account_id" value="" autocomplete="off" pattern="[0-9]{12}" maxlength="12" inputmode="numeric""#,
        r#"maxlength="64""#,
        r#"maxlength="1224""#,
        r#"id="iam_write_rate" name="iam_write_rate" value="10000" autocomplete="off" inputmode="numeric" min="0" max="10000""#,
        r#"<legend>Credentials</legend>"#,
        r#"<details class="advanced">"#,
        r#"<legend>Pacing</legend>"#,
        r#"<legend>Rotation</legend>"#,
        r#"id="role_session_name-hint""#,
    ] {
        assert!(page.body.contains(rule), "{rule} in {}", page.body);
    }
    let before = stored(&app).await;

    // The API's refusal of an advanced field: beside it, with its section open.
    let short = [("assume_role", "true"), ("role_arn", ROLE), ("duration", "60"), ("action", "save")];
    let refused = post(&app, CONFIG, Some(&cookie), SAME, &form(&short)).await;
    assert!(refused.body.contains(r#"<details class="advanced" open>"#), "{}", refused.body);
    assert!(after(&refused.body, r#"id="duration-error" class="field-error">"#).contains("900 seconds"));
    assert!(refused.body.contains("One field needs a change"), "{}", refused.body);
    let rate = [("iam_write_rate", "20000"), ("action", "test")];
    let refused = post(&app, CONFIG, Some(&cookie), SAME, &form(&rate)).await;
    assert!(
        after(&refused.body, r#"id="iam_write_rate-error" class="field-error">"#)
            .contains("between 1 and 10000")
    );

    // A new access key without its secret is caught before the API is asked.
    app.fake.clear_calls();
    let new_key = [
        ("credentials", "static"),
        ("access_key", "TESTOTHERKEY002"),
        ("secret_key", ""),
        ("action", "save"),
    ];
    let caught = post(&app, CONFIG, Some(&cookie), SAME, &form(&new_key)).await;
    let error = after(&caught.body, r#"id="secret_key-error" class="field-error">"#);
    assert!(error.contains(&format!("The stored secret belongs to access key ID {ROOT_KEY}")), "{error}");
    let empty = [("credentials", "static"), ("access_key", ""), ("action", "test")];
    let caught = post(&app, CONFIG, Some(&cookie), SAME, &form(&empty)).await;
    assert!(
        after(&caught.body, r#"id="access_key-error" class="field-error">"#)
            .contains("default credential chain")
    );
    assert!(app.fake.calls().is_empty());
    assert_eq!(stored(&app).await, before);
}

#[tokio::test]
async fn aws_refusals_come_with_a_hint() {
    let app = TestApp::new().await;
    let cookie = sign_in(&app, ROOT_TOKEN).await;
    let before = stored(&app).await;
    let test = |pairs: &[(&str, &str)]| {
        let mut pairs = pairs.to_vec();
        pairs.push(("action", "test"));
        form(&pairs)
    };
    for (key, secret) in [(ROOT_KEY, "not-the-secret"), ("TESTNOBODY00001", "x")] {
        let wrong =
            post(&app, CONFIG, Some(&cookie), SAME, &test(&[("access_key", key), ("secret_key", secret)]))
                .await;
        assert_eq!(wrong.status, StatusCode::OK);
        assert!(tip(&wrong.body).starts_with("The access key or secret is wrong"), "{}", wrong.body);
    }

    let other = test(&[("expected_account_id", "999999999999")]);
    let mismatch = post(&app, CONFIG, Some(&cookie), SAME, &other).await;
    assert_eq!(
        tip(&mismatch.body),
        format!(
            "These credentials belong to account {ACCOUNT}, but the expected account ID is 999999999999: \
             use credentials of account 999999999999, or correct the expected account ID."
        )
    );

    app.fake.fail_always("AssumeRole", Failure::AccessDenied);
    let role = test(&[("assume_role", "true"), ("role_arn", ROLE), ("external_id", "tenant-42")]);
    let denied = post(&app, CONFIG, Some(&cookie), SAME, &role).await;
    assert!(denied.body.contains("AccessDenied"), "{}", denied.body);
    assert!(tip(&denied.body).starts_with("The keys may not assume this role: allow sts:AssumeRole"));
    assert_eq!(stored(&app).await, before, "a test saves nothing");

    // A token that may not write the config sees why, not a broken page.
    let reader = app.token(&["default"]).await;
    let limited = sign_in(&app, &reader).await;
    let refused = post(&app, CONFIG, Some(&limited), SAME, "region=eu-west-1&action=save").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.body.contains("Your token may not save the AWS account."), "{}", refused.body);
}

#[tokio::test]
async fn the_lease_settings_are_read_and_saved() {
    let app = TestApp::new().await;
    let cookie = sign_in(&app, ROOT_TOKEN).await;
    let page = get(&app, CONFIG, Some(&cookie)).await;
    assert!(page.body.contains(r#"id="lease" name="lease" value="" required"#), "{}", page.body);
    let lease = "/ui/aws/aws/config/lease";
    let saved = post(&app, lease, Some(&cookie), SAME, "lease=1h&lease_max=24h").await;
    assert_eq!(saved.status, StatusCode::OK);
    assert!(saved.body.contains("Saved the lease settings."), "{}", saved.body);
    let read = app.root("GET", "aws/config/lease", None).await.body["data"].clone();
    assert_eq!(read, json!({"lease": "1h0m0s", "lease_max": "24h0m0s"}));
    let page = get(&app, CONFIG, Some(&cookie)).await;
    assert!(page.body.contains(r#"name="lease_max" value="24h0m0s""#), "{}", page.body);

    let bad = post(&app, lease, Some(&cookie), SAME, "lease=soon&lease_max=24h").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(after(&bad.body, r#"id="lease-error" class="field-error">"#).starts_with("Invalid lease"));
    assert!(bad.body.contains(r#"name="lease" value="soon""#), "the value typed stays");
    assert_eq!(app.root("GET", "aws/config/lease", None).await.body["data"], read);
}

#[tokio::test]
async fn rotate_now_asks_first_then_replaces_the_root_key() {
    let app = TestApp::new().await;
    let cookie = sign_in(&app, ROOT_TOKEN).await;
    let account = get(&app, CONFIG, Some(&cookie)).await;
    assert!(account.body.contains(r#"action="/ui/aws/aws/config/rotate""#));
    // The account page's button, and the address itself, only ask.
    for asked in [
        post(&app, "/ui/aws/aws/config/rotate", Some(&cookie), SAME, "").await,
        get(&app, "/ui/aws/aws/config/rotate", Some(&cookie)).await,
    ] {
        assert_eq!(asked.status, StatusCode::OK);
        assert!(asked.body.contains("stops working") && asked.body.contains(ROOT_KEY), "{}", asked.body);
        assert!(asked.body.contains(r#"name="confirm" value="yes""#));
    }
    assert!(app.fake.secret_of(ROOT_KEY).is_some(), "nothing rotated yet");

    let done = post(&app, "/ui/aws/aws/config/rotate", Some(&cookie), SAME, "confirm=yes").await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    let new_key = after(&done.body, r#"<code id="new_access_key">"#).to_string();
    assert!(!new_key.is_empty() && new_key != ROOT_KEY, "{}", done.body);
    let secret = app.fake.secret_of(&new_key).expect("the new key exists in AWS");
    assert!(!done.body.contains(&secret), "the secret is never shown");
    assert!(app.fake.secret_of(ROOT_KEY).is_none(), "the old key is gone");
    assert_eq!(app.fake.user(ROOT_USER).unwrap().keys, std::slice::from_ref(&new_key));
    assert_eq!(stored(&app).await["access_key"], json!(new_key));

    // A token without the capability sees why.
    let reader = app.token(&["default"]).await;
    let limited = sign_in(&app, &reader).await;
    let refused = post(&app, "/ui/aws/aws/config/rotate", Some(&limited), SAME, "confirm=yes").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.body.contains("Your token may not rotate the root key."), "{}", refused.body);
    assert_eq!(app.fake.user(ROOT_USER).unwrap().keys, [new_key]);
}
