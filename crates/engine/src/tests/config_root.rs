//! Writing `config/root` with verification: GetCallerIdentity with the new credentials, and
//! nothing stored unless it passes.

use secrecy::SecretString;

use super::{Harness, ROOT_KEY};
use crate::fake_aws::ACCOUNT;
use crate::{EngineError, RootConfigInput};

#[tokio::test]
async fn a_verified_write_stores_only_credentials_aws_takes_for_the_expected_account() {
    let h = Harness::new().await;
    let wrong_account =
        RootConfigInput { expected_account_id: Some("999999999999".into()), ..RootConfigInput::default() };
    match h.engine.write_root_config(&h.mount, wrong_account, true).await.unwrap_err() {
        EngineError::WrongAccount { account, expected, .. } => {
            assert_eq!((account.as_str(), expected.as_str()), (ACCOUNT, "999999999999"))
        }
        other => panic!("{other:?}"),
    }
    let unknown_key = RootConfigInput {
        access_key: Some("AKIANOBODY".into()),
        secret_key: Some(SecretString::from("nope")),
        ..RootConfigInput::default()
    };
    match h.engine.write_root_config(&h.mount, unknown_key, true).await.unwrap_err() {
        EngineError::RootUnverified { source, .. } => {
            assert!(source.is_code("InvalidClientTokenId"), "{source}")
        }
        other => panic!("{other:?}"),
    }
    let (cfg, _, _) = h.engine.root_config(&h.mount).await.unwrap().unwrap();
    assert_eq!((cfg.access_key.as_str(), cfg.expected_account_id.as_str()), (ROOT_KEY, ""));

    let right = RootConfigInput { expected_account_id: Some(ACCOUNT.into()), ..RootConfigInput::default() };
    let who = h.engine.write_root_config(&h.mount, right, true).await.unwrap().unwrap();
    assert_eq!(who.account, ACCOUNT);
    let (cfg, _, _) = h.engine.root_config(&h.mount).await.unwrap().unwrap();
    assert_eq!(cfg.expected_account_id, ACCOUNT);
}

#[tokio::test]
async fn a_verification_checks_like_a_write_and_stores_nothing() {
    let h = Harness::new().await;
    let (before, _, version) = h.engine.root_config(&h.mount).await.unwrap().unwrap();
    // Nothing given: the stored keys are checked as they are.
    let who = h.engine.verify_root_config(&h.mount, RootConfigInput::default()).await.unwrap();
    assert_eq!(
        (who.account.as_str(), who.arn.as_str()),
        (ACCOUNT, "arn:aws:iam::123456789012:user/keymint-root")
    );
    // The right key id with the wrong secret: AWS's refusal, signature checked by the fake.
    let wrong_secret = RootConfigInput {
        access_key: Some(ROOT_KEY.into()),
        secret_key: Some(SecretString::from("not-the-secret")),
        ..RootConfigInput::default()
    };
    match h.engine.verify_root_config(&h.mount, wrong_secret).await.unwrap_err() {
        EngineError::RootUnverified { source, .. } => {
            assert!(source.is_code("SignatureDoesNotMatch"), "{source}");
            assert!(source.to_string().contains("hint: AWS does not accept the credentials"), "{source}");
        }
        other => panic!("{other:?}"),
    }
    let wrong_account =
        RootConfigInput { expected_account_id: Some("999999999999".into()), ..RootConfigInput::default() };
    assert!(matches!(
        h.engine.verify_root_config(&h.mount, wrong_account).await.unwrap_err(),
        EngineError::WrongAccount { .. }
    ));
    let (after, _, after_version) = h.engine.root_config(&h.mount).await.unwrap().unwrap();
    assert_eq!((after, after_version), (before, version));
}
