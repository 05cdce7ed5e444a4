//! What load balancers and Kubernetes rely on: liveness that a database outage does not touch,
//! readiness that follows the database, a request time limit answered in Vault's error shape,
//! and the caller's address taken from a trusted load balancer's `X-Forwarded-For` only.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::net::IpAddr;
use std::time::{Duration, Instant};

use keymint_tests::*;

/// A 5xx body's request id, which the `X-Request-Id` header repeats.
fn request_id_of(resp: &Resp) -> String {
    let id = resp.json()["request_id"].as_str().unwrap_or_else(|| panic!("no request_id: {resp}")).to_owned();
    assert_eq!(resp.headers["x-request-id"], id.as_str(), "{resp}");
    id
}

#[tokio::test]
async fn a_replica_whose_database_is_down_is_alive_and_not_ready() {
    let pg = PgCluster::start();
    let km = Keymint::start(&pg.url()).await;
    let probe = km.anonymous();
    probe.get("sys/live").await.expect(200);
    probe.get("sys/ready").await.expect(200);

    pg.stop();
    let asked = Instant::now();
    let live = probe.get("sys/live").await.expect(200);
    assert_eq!(live.json(), &json!({"alive": true}));
    assert!(asked.elapsed() < Duration::from_secs(1), "liveness took {:?}", asked.elapsed());
    let asked = Instant::now();
    let ready = probe.get("sys/ready").await.expect(503);
    assert!(asked.elapsed() < Duration::from_secs(5), "readiness took {:?}", asked.elapsed());
    assert_eq!(ready.errors(), ["not ready: the database does not answer"]);
    request_id_of(&ready);
    assert_eq!(probe.head("sys/ready").await.status, 503);
    // Vault's sys/health keeps its meaning, answered as quickly.
    probe.get("sys/health").await.expect(503);
    assert!(km.logs().contains("not ready: the database does not answer"), "the reason is logged");

    // Back, with no restart: the pool replaces its dead connections.
    pg.start_again();
    eventually("sys/ready to answer 200 again", Duration::from_secs(30), async || {
        (probe.get("sys/ready").await.status == 200).then_some(())
    })
    .await;
    km.get("auth/token/lookup-self").await.expect(200);
    probe.get("sys/health").await.expect(200);
}

#[tokio::test]
async fn a_request_past_its_time_limit_gets_vaults_error_shape_and_leaves_no_user_behind() {
    let storage = Storage::new(Backend::Sqlite);
    let moto = Moto::start().await;
    let proxy = FaultProxy::start(&moto).await;
    // The sweeper takes an intent older than 6 s for an abandoned creation (the grace period
    // must outlast the request limit, or it could undo a creation under way).
    let leases = "[leases]\niam_consistency_window = \"1s\"\nintent_grace = \"6s\"\n";
    let km = Keymint::start_with_config(storage.url(), "request_timeout = \"3s\"", leases).await;
    km.post("sys/mounts/aws", json!({"type": "aws"})).await.expect(204);
    km.post("aws/config/root", root_config_via(&proxy)).await.expect(200);
    write_iam_user_role(&km, "slow", "/keymint/").await;

    // CreateUser reaches AWS at once, but its answer would come long after the limit.
    proxy.fail("CreateUser", Fault::SlowAnswer(Duration::from_secs(10)));
    let asked = Instant::now();
    let cut = km.get("aws/creds/slow").await.expect(504);
    assert!(asked.elapsed() < Duration::from_secs(8), "answered after {:?}", asked.elapsed());
    assert_eq!(cut.errors(), ["1 error occurred:\n\t* context deadline exceeded\n\n"]);
    request_id_of(&cut);
    assert!(km.logs().contains("request cut at its time limit"), "logged");

    // The user exists in AWS with no lease; its write-ahead intent is what removes it.
    assert_eq!(moto.user_names("/keymint/").await.len(), 1);
    km.list("sys/leases/lookup/aws/creds/slow/").await.expect(404);
    proxy.clear();
    // The sweep, asked for now rather than waiting for its minute, acts once the intent is
    // past its grace period.
    eventually("the half-made user to be torn down", Duration::from_secs(30), async || {
        km.post("sys/leases/tidy", json!({})).await.expect(202);
        moto.user_names("/keymint/").await.is_empty().then_some(())
    })
    .await;
    // Requests within the limit are unaffected.
    km.get("aws/creds/slow").await.expect(200);
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[tokio::test]
async fn a_bound_token_works_through_the_trusted_load_balancer_only() {
    const LOAD_BALANCER: &str = "127.0.0.2";
    const STRANGER: &str = "127.0.0.3";
    let storage = Storage::new(Backend::Sqlite);
    // Direct requests without the header keep their own address (the set-up below is one).
    let listener = "x_forwarded_for_authorized_addrs = [\"127.0.0.2/32\"]\n\
                    x_forwarded_for_reject_not_present = false";
    let km = Keymint::start_with_config(storage.url(), listener, "").await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    km.put("sys/audit/file", json!({"type": "file", "options": {"file_path": log.to_str().unwrap()}}))
        .await
        .expect(204);
    let role = json!({"token_bound_cidrs": ["203.0.113.0/24"], "allowed_policies": ["default"]});
    km.post("auth/token/roles/office", role).await.expect(204);
    let token = km.post("auth/token/create/office", json!({})).await.expect(200);
    let token = token.json()["auth"]["client_token"].as_str().unwrap().to_owned();

    let via = |peer: &str| km.with_token(&token).from_address(ip(peer));
    let lookup = |client: Client, forwarded: &'static str| async move {
        let headers: Vec<(&str, &str)> =
            if forwarded.is_empty() { vec![] } else { vec![("X-Forwarded-For", forwarded)] };
        client.send_with_headers(Method::GET, "auth/token/lookup-self", &headers, None).await
    };
    // The load balancer forwards for a client in the token's block, then for one outside it.
    lookup(via(LOAD_BALANCER), "203.0.113.7").await.expect(200);
    lookup(via(LOAD_BALANCER), "198.51.100.9").await.expect(403);
    // Another address claiming the same client is refused (reject_not_authorized's default).
    let refused = lookup(via(STRANGER), "203.0.113.7").await.expect(400);
    assert_eq!(
        refused.errors(),
        ["client address not authorized for x-forwarded-for and configured to reject connection"]
    );
    // And without a header, its own address is outside the token's block.
    lookup(via(STRANGER), "").await.expect(403);

    let text = std::fs::read_to_string(&log).unwrap();
    let addresses: Vec<String> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["type"] == "request" && r["request"]["path"] == "auth/token/lookup-self")
        .map(|r| r["request"]["remote_address"].as_str().unwrap().to_owned())
        .collect();
    // The refused stranger never reached the audit log; the others are recorded by who they are.
    assert_eq!(addresses, ["203.0.113.7", "198.51.100.9", STRANGER], "{text}");
}
