//! SIGTERM: a request in flight is answered, a revocation hung on AWS is dropped after the
//! shutdown grace and its claim released, the process exits 0 well within its bound, and the
//! next server takes the released revocation over at once, not after the claim timeout.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use keymint_tests::*;

both_backends!(sigterm_drains_requests_and_hands_over_revocations);

const PATH: &str = "/keymint-shutdown/";

async fn sigterm_drains_requests_and_hands_over_revocations(backend: Backend) {
    let storage = Storage::new(backend);
    let moto = Moto::start().await;
    let proxy = FaultProxy::start(&moto).await;
    // Claims that would hold for 10 minutes if they were not released.
    let args = ["--lease-claim-timeout", "10m"];
    let mut km = Keymint::start_with(storage.url(), &args).await;
    km.post("aws/config/root", root_config_via(&proxy)).await.expect(200);
    km.post("aws/config/lease", json!({"lease": "2s", "lease_max": "1h"})).await.expect(204);
    write_iam_user_role(&km, "deploy", PATH).await;

    // The first lease expires; its revocation hangs at DeleteUser.
    proxy.fail("DeleteUser", Fault::Hold);
    km.get("aws/creds/deploy").await.expect(200);
    eventually("the revocation to hang at DeleteUser", Duration::from_secs(60), async || {
        (proxy.held() > 0).then_some(())
    })
    .await;

    // A request in flight when SIGTERM arrives.
    proxy.fail("CreateUser", Fault::Latency(Duration::from_secs(2)));
    let client = km.client();
    let in_flight = tokio::spawn(async move { client.get("aws/creds/deploy").await });
    eventually("the second CreateUser to be under way", Duration::from_secs(30), async || {
        (proxy.calls(Some("CreateUser")).len() == 2).then_some(())
    })
    .await;
    let status = km.terminate(Duration::from_secs(60)).await;
    assert!(status.success(), "exit status {status}\n{}", km.logs());
    in_flight.await.unwrap().expect(200);
    assert!(km.logs().contains("released the claims on revocations still under way"), "{}", km.logs());
    assert_eq!(moto.user_names(PATH).await.len(), 2);

    // AWS is well again; the next server revokes both leases (the released one, and the one
    // answered during the drain) without waiting out a 10-minute claim.
    proxy.clear();
    proxy.release_held();
    let _next = Keymint::start_with(storage.url(), &args).await;
    eventually("both users to be deleted", Duration::from_secs(90), async || {
        moto.user_names(PATH).await.is_empty().then_some(())
    })
    .await;
}
