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
        EngineError::BadRequest(m) => assert!(m.contains(&format!("belong to account {ACCOUNT}")), "{m}"),
        other => panic!("{other:?}"),
    }
    let unknown_key = RootConfigInput {
        access_key: Some("AKIANOBODY".into()),
        secret_key: Some(SecretString::from("nope")),
        ..RootConfigInput::default()
    };
    match h.engine.write_root_config(&h.mount, unknown_key, true).await.unwrap_err() {
        EngineError::BadRequest(m) => assert!(m.contains("InvalidClientTokenId"), "{m}"),
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
