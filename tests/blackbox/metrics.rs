//! `sys/metrics`: scraped as Prometheus would, after real traffic through the fault proxy
//! (a throttled call, an expired lease, a revocation that fails), with a token whose policy
//! allows only that read.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use keymint_tests::*;

both_backends!(a_scrape_reports_requests_issuance_aws_calls_and_leases);

const PATH: &str = "/keymint-metrics/";

/// The samples of a Prometheus text exposition, by series (`name{labels}` as written).
fn parse(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("malformed line {line:?}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("malformed value in {line:?}"));
        assert!(out.insert(series.to_owned(), value).is_none(), "series {series} appears twice");
    }
    out
}

/// The value of the one series named `name` whose labels include every `name="value"` pair
/// of `labels` (0 when there is none).
fn value(samples: &BTreeMap<String, f64>, name: &str, labels: &[(&str, &str)]) -> f64 {
    let matching: Vec<f64> = samples
        .iter()
        .filter(|(series, _)| {
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            n == name && labels.iter().all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|(_, v)| *v)
        .collect();
    assert!(matching.len() <= 1, "{name} {labels:?} matches {} series", matching.len());
    matching.first().copied().unwrap_or(0.0)
}

async fn scrape(client: &Client) -> BTreeMap<String, f64> {
    let resp = client.get("sys/metrics?format=prometheus").await.expect(200);
    let content_type = resp.headers.get("content-type").unwrap().to_str().unwrap();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    assert!(resp.text.contains("# TYPE keymint_http_requests_total counter"), "{}", resp.text);
    parse(&resp.text)
}

/// Scrapes until `done` holds, for up to a minute.
async fn scrape_until(client: &Client, what: &str, done: impl Fn(&BTreeMap<String, f64>) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let samples = scrape(client).await;
        if done(&samples) {
            return;
        }
        assert!(Instant::now() < deadline, "{what} never showed in the metrics: {samples:#?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn a_scrape_reports_requests_issuance_aws_calls_and_leases(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let proxy = FaultProxy::start(&env.moto).await;
    let km = &env.km;
    let mut root = root_config_via(&proxy);
    root["retry_deadline"] = json!("2s");
    km.post("aws/config/root", root).await.expect(200);
    km.post("aws/config/lease", json!({"lease": "3s", "lease_max": "1h"})).await.expect(204);
    write_iam_user_role(km, "deploy", PATH).await;
    let role_arn = env.moto.create_role("km-metrics").await;
    km.post("aws/roles/ci", json!({"credential_type": "assumed_role", "role_arns": [role_arn]}))
        .await
        .expect(204);

    // Only the metrics: a policy that reads sys/metrics and nothing else.
    km.put(
        "sys/policies/acl/metrics",
        json!({"policy": "path \"sys/metrics\" { capabilities = [\"read\"] }"}),
    )
    .await
    .expect(204);
    let token = km.post("auth/token/create", json!({"policies": ["metrics"]})).await.expect(200);
    let scraper = km.with_token(token.json()["auth"]["client_token"].as_str().unwrap());
    scraper.get("aws/roles").await.expect(403);
    let other = km.post("auth/token/create", json!({"policies": ["default"]})).await.expect(200);
    km.with_token(other.json()["auth"]["client_token"].as_str().unwrap())
        .get("sys/metrics?format=prometheus")
        .await
        .assert_errors(&["1 error occurred:\n\t* permission denied\n\n"]);
    km.anonymous().get("sys/metrics").await.expect(403);

    // Traffic: an iam_user issued through one throttled CreateUser, an assumed role, a
    // request for a role that does not exist.
    proxy.fail_times("CreateUser", Fault::Throttle, 1);
    let creds = km.get("aws/creds/deploy").await.expect(200);
    // The id a request is logged under is the one its envelope and header carry.
    let header = creds.headers.get("x-request-id").unwrap().to_str().unwrap().to_owned();
    assert_eq!(creds.json()["request_id"], header.as_str());
    km.get("aws/sts/ci").await.expect(200);
    km.get("aws/creds/missing").await.expect(400);

    let samples = scrape(&scraper).await;
    let v = |name: &str, labels: &[(&str, &str)]| value(&samples, name, labels);
    assert_eq!(v("keymint_http_requests_total", &[("route", "aws/creds/:name"), ("status", "200")]), 1.0);
    assert_eq!(v("keymint_http_requests_total", &[("route", "aws/creds/:name"), ("status", "400")]), 1.0);
    assert_eq!(v("keymint_http_requests_total", &[("route", "aws/sts/:name"), ("method", "GET")]), 1.0);
    assert!(v("keymint_http_request_duration_seconds_count", &[("route", "aws/creds/:name")]) >= 2.0);
    for kind in ["iam_user", "assumed_role"] {
        assert_eq!(
            v("keymint_credentials_issued_total", &[("credential_type", kind), ("outcome", "ok")]),
            1.0
        );
        assert_eq!(v("keymint_issue_duration_seconds_count", &[("credential_type", kind)]), 1.0);
    }
    let create =
        |outcome| v("keymint_aws_requests_total", &[("operation", "CreateUser"), ("outcome", outcome)]);
    assert_eq!((create("throttled"), create("ok")), (1.0, 1.0));
    assert_eq!(v("keymint_aws_throttled_total", &[("family", "iam_write_rate")]), 1.0);
    assert_eq!(
        v(
            "keymint_aws_requests_total",
            &[("service", "sts"), ("operation", "AssumeRole"), ("outcome", "ok")]
        ),
        1.0
    );
    assert_eq!(
        v("keymint_leases_active", &[("mount", "aws/"), ("role", "ci"), ("credential_type", "assumed_role")]),
        1.0
    );
    assert_eq!(v("keymint_leases_irrevocable", &[("mount", "aws/")]), 0.0);

    // The iam_user lease expires after 3 s; its revocation shows as lateness, and the gauge
    // drops it.
    scrape_until(&scraper, "the expired iam_user lease", |s| {
        value(s, "keymint_leases_expired_revoked_total", &[]) >= 1.0
            && value(s, "keymint_lease_expiry_lateness_seconds_count", &[]) >= 1.0
            && value(s, "keymint_leases_active", &[("role", "deploy")]) == 0.0
    })
    .await;

    // A revocation AWS keeps failing is counted.
    proxy.fail("DeleteUser", Fault::ServerError(500));
    km.get("aws/creds/deploy").await.expect(200);
    scrape_until(&scraper, "a failed revocation", |s| {
        value(s, "keymint_lease_revocation_failures_total", &[]) >= 1.0
            && value(
                s,
                "keymint_aws_requests_total",
                &[("operation", "DeleteUser"), ("outcome", "transient")],
            ) >= 1.0
    })
    .await;
    proxy.clear();

    // Without a format: Vault's JSON shape.
    let json = km.get("sys/metrics").await.expect(200);
    let counters = json.json()["Counters"].as_array().unwrap();
    assert!(
        counters.iter().any(|c| c["Name"] == "keymint_credentials_issued_total"
            && c["Labels"]["credential_type"] == "assumed_role"
            && c["Count"] == 1.0),
        "{json}"
    );
    assert!(json.json()["Gauges"].as_array().unwrap().iter().any(|g| g["Name"] == "keymint_leases_active"));
    assert!(
        json.json()["Samples"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["Name"] == "keymint_issue_duration_seconds")
    );
    km.get("sys/metrics?format=xml").await.assert_error_prefix(400, "unknown metrics format \"xml\"");
}
