//! Keys that grant what the role says, and nothing more: moto with IAM enforcement switched on
//! (`INITIAL_NO_AUTH_ACTION_COUNT`) checks every signature and evaluates every policy, so an
//! `iam_user` minted for a role allowing `s3:GetObject` on one bucket must read from it and be
//! refused a write.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use aws_credential_types::Credentials;
use aws_sdk_s3::primitives::ByteStream;
use keymint_tests::*;

const BUCKET: &str = "keymint-enforced";

fn s3(moto: &Moto, access_key: &str, secret_key: &str) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(moto.url())
        .force_path_style(true)
        .credentials_provider(Credentials::new(access_key, secret_key, None, None, "test"))
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

async fn minted_keys_grant_only_the_roles_policy(backend: Backend) {
    let storage = Storage::new(backend);
    let (moto, km) = tokio::join!(
        Moto::start_with_env(&[("INITIAL_NO_AUTH_ACTION_COUNT", ADMIN_BOOTSTRAP_CALLS)]),
        Keymint::start(storage.url())
    );
    let (admin_key, admin_secret) = moto.bootstrap_admin("keymint-admin").await;

    // Enforcement is on now: the harness's dummy keys are refused...
    assert!(moto.iam().list_users().send().await.is_err(), "moto should enforce IAM auth by now");
    // ...and the administrator can set the scene.
    let admin_s3 = s3(&moto, &admin_key, &admin_secret);
    admin_s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    admin_s3
        .put_object()
        .bucket(BUCKET)
        .key("report.txt")
        .body(ByteStream::from_static(b"quarterly numbers"))
        .send()
        .await
        .unwrap();

    let mut root = root_config(&moto);
    root["access_key"] = json!(admin_key);
    root["secret_key"] = json!(admin_secret);
    km.post("aws/config/root", root).await.expect(200);
    let policy = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "s3:GetObject", "Resource": format!("arn:aws:s3:::{BUCKET}/*")}]});
    km.post(
        "aws/roles/reader",
        json!({"credential_type": "iam_user", "policy_document": policy.to_string()}),
    )
    .await
    .expect(204);

    let creds = km.get("aws/creds/reader").await.expect(200);
    let data = creds.data();
    let reader = s3(&moto, data["access_key"].as_str().unwrap(), data["secret_key"].as_str().unwrap());

    let object =
        reader.get_object().bucket(BUCKET).key("report.txt").send().await.expect("GetObject allowed");
    let body = object.body.collect().await.unwrap().into_bytes();
    assert_eq!(&body[..], b"quarterly numbers");

    let denied = reader
        .put_object()
        .bucket(BUCKET)
        .key("forged.txt")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .expect_err("PutObject must be refused");
    let text = format!("{denied:?}");
    assert!(text.contains("AccessDenied"), "expected AccessDenied, got {text}");
}

both_backends!(minted_keys_grant_only_the_roles_policy);
