//! `sys/metrics`: what keymint counts, in Prometheus' text format (`?format=prometheus`) or in
//! the JSON shape Vault's in-memory sink answers with.
//!
//! Counters and histograms are recorded through the `metrics` facade wherever the work happens
//! (requests here, AWS calls in the pacer, issuance in the engine, revocation in the lease
//! crate) into one process-wide recorder: Prometheus' for the text format, with a layer in
//! front that keeps the totals the JSON shape is written from (`totals`). Lease gauges are not
//! kept in memory: every replica on a shared database would report its own stale view. They
//! are counted from the store at scrape time (`gauges`), so each replica reports the same,
//! current figures.

mod gauges;
mod totals;

use std::sync::{Arc, OnceLock};

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keymint_store::mounts::MountRow;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::{Map, Value, json};

use self::gauges::Family;
use self::totals::{Reading, Snapshot, TeeRecorder, Totals};
use crate::AppState;
use crate::error::ApiError;

/// Histogram buckets (seconds): from a cached STS answer (sub-millisecond) to an iam_user
/// issuance through a throttled account (tens of seconds).
const LATENCY_BUCKETS: &[f64] =
    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];
/// Expiry lateness (seconds): on time is under a second; pacing and retries make minutes.
const LATENESS_BUCKETS: &[f64] = &[0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0];

/// What reads the process-wide recorder: the Prometheus text, and the totals.
#[derive(Clone)]
pub(crate) struct Handles {
    prometheus: PrometheusHandle,
    totals: Arc<Totals>,
}

/// The process-wide recorder's handles; `None` when another recorder was installed first (a
/// test harness's), in which case `sys/metrics` says so rather than answer empty.
static HANDLE: OnceLock<Option<Handles>> = OnceLock::new();

/// Installs the recorder once per process and returns its handles.
pub(crate) fn install() -> Option<Handles> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets(LATENCY_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        metrics_exporter_prometheus::Matcher::Full(
                            "keymint_lease_expiry_lateness_seconds".into(),
                        ),
                        LATENESS_BUCKETS,
                    )
                })
                .ok()?;
            let prometheus = builder.build_recorder();
            let handle = prometheus.handle();
            let (recorder, totals) = TeeRecorder::new(prometheus);
            metrics::set_global_recorder(recorder).ok()?;
            describe();
            Some(Handles { prometheus: handle, totals })
        })
        .clone()
}

/// HELP texts for every series keymint records.
fn describe() {
    use metrics::{describe_counter, describe_histogram};
    describe_counter!("keymint_http_requests_total", "API requests by route, method and status code");
    describe_histogram!(
        "keymint_http_request_duration_seconds",
        "API request duration by route, from the request read to the answer written"
    );
    describe_counter!(
        "keymint_credentials_issued_total",
        "Credential requests by credential type and outcome (ok, bad_request, aws_error, error)"
    );
    describe_histogram!(
        "keymint_issue_duration_seconds",
        "Time to issue a credential (AWS calls, pacing, the lease record) by credential type"
    );
    describe_counter!(
        "keymint_aws_requests_total",
        "AWS requests sent, by service, operation and outcome (ok, throttled, transient, error)"
    );
    describe_histogram!("keymint_aws_request_duration_seconds", "AWS request round trips by operation");
    describe_counter!(
        "keymint_aws_throttled_total",
        "AWS throttling answers, by the pacing family they slow down"
    );
    describe_histogram!("keymint_aws_queue_seconds", "Time calls waited in a mount's AWS pacing queue");
    describe_counter!("keymint_leases_expired_revoked_total", "Expired leases revoked by the expiry worker");
    describe_histogram!(
        "keymint_lease_expiry_lateness_seconds",
        "How long after its expiry time an expired lease was revoked"
    );
    describe_counter!("keymint_lease_revocation_failures_total", "Failed revocation attempts");
    describe_counter!(
        "keymint_leases_flagged_irrevocable_total",
        "Leases flagged irrevocable after repeated revocation failures"
    );
    describe_counter!(
        "keymint_logins_total",
        "Logins through auth methods, by method (approle, jwt, kubernetes) and outcome (ok, refused, error)"
    );
    describe_histogram!(
        "keymint_iam_key_usable_seconds",
        "Time until a new IAM access key was seen working (iam_user issuance)"
    );
}

/// Keeps the recorder's histograms bounded between scrapes.
pub(crate) async fn run_upkeep(shutdown: tokio_util::sync::CancellationToken) {
    let Some(handle) = install() else { return };
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => handle.prometheus.run_upkeep(),
        }
    }
}

/// Words that stay as they are in a route label; any other segment is a name (`:name`). This
/// keeps the label set bounded whatever paths clients send.
const ROUTE_WORDS: &[&str] = &[
    "sys",
    "auth",
    "token",
    "health",
    "live",
    "ready",
    "metrics",
    "mounts",
    "tune",
    "leases",
    "lookup",
    "renew",
    "revoke",
    "revoke-prefix",
    "revoke-force",
    "tidy",
    "policies",
    "policy",
    "acl",
    "audit",
    "seal-status",
    "leader",
    "init",
    "internal",
    "specs",
    "openapi",
    "capabilities",
    "capabilities-self",
    "capabilities-accessor",
    "create",
    "create-orphan",
    "lookup-self",
    "lookup-accessor",
    "renew-self",
    "renew-accessor",
    "revoke-self",
    "revoke-accessor",
    "revoke-orphan",
    "accessors",
    "roles",
    "config",
    "root",
    "lease",
    "rotate-root",
    "creds",
    "sts",
    "static-roles",
    "static-creds",
    "reconcile",
    "revocation",
    "login",
    "role",
    "role-id",
    "secret-id",
    "custom-secret-id",
    "secret-id-accessor",
    "lookup",
    "destroy",
    "tidy",
    "tune",
    "wrapping",
    "unwrap",
    "rewrap",
    "wrap",
];

/// The route label of `path`: the mount's own path kept (the mount table bounds it), every
/// segment outside [`ROUTE_WORDS`] replaced by `:name`, and at most six segments.
pub(crate) fn route_label(path: &str, mounts: &[MountRow]) -> String {
    let (prefix, rest) = match mounts
        .iter()
        .filter(|m| path.starts_with(&m.path) || path.len() + 1 == m.path.len() && m.path.starts_with(path))
        .max_by_key(|m| m.path.len())
    {
        Some(m) => (m.path.trim_end_matches('/'), path.get(m.path.len()..).unwrap_or("")),
        None => ("", path),
    };
    let mut out = String::from(prefix);
    for (i, segment) in rest.split('/').filter(|s| !s.is_empty()).enumerate() {
        if i == 6 {
            out.push_str("/...");
            break;
        }
        if !out.is_empty() {
            out.push('/');
        }
        out.push_str(if ROUTE_WORDS.contains(&segment) { segment } else { ":name" });
    }
    if out.is_empty() { "/".into() } else { out }
}

/// Counts one login by its method and outcome (`ok`, `refused`, `error`).
pub(crate) fn record_login(method: &str, outcome: &'static str) {
    metrics::counter!("keymint_logins_total", "method" => method.to_owned(), "outcome" => outcome)
        .increment(1);
}

/// Counts and times one answered request.
pub(crate) fn record_request(route: &str, method: &str, status: StatusCode, seconds: f64) {
    let status = status.as_u16().to_string();
    metrics::counter!("keymint_http_requests_total", "route" => route.to_owned(), "method" => method.to_owned(), "status" => status)
        .increment(1);
    metrics::histogram!("keymint_http_request_duration_seconds", "route" => route.to_owned()).record(seconds);
}

/// The `sys/metrics` answer, once the caller is authorized.
pub(crate) async fn render(state: &AppState, format: Option<&str>) -> Response {
    let Some(handles) = install() else {
        return ApiError::Internal { public: "metrics are not being recorded in this process".into() }
            .into_response();
    };
    let gauges = match gauges::store_gauges(state).await {
        Ok(gauges) => gauges,
        Err(e) => return e.into_response(),
    };
    match format {
        Some("prometheus") => {
            let mut text = handles.prometheus.render();
            gauges::write_text(&gauges, &mut text);
            let mut response = text.into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            response
        }
        None | Some("") | Some("json") => {
            axum::Json(vault_json(&handles.totals.snapshot(), &gauges)).into_response()
        }
        Some(other) => ApiError::BadRequest(format!(
            "unknown metrics format {other:?}: use format=prometheus, or no format for JSON"
        ))
        .into_response(),
    }
}

/// Vault's JSON metrics shape (go-metrics' in-memory sink): `Gauges`, `Counters` and `Samples`,
/// each entry with its `Name` and `Labels`. Counters carry their total in `Count` and `Sum`;
/// samples (histograms) their count, sum and mean. Histogram buckets are left to the
/// Prometheus format.
fn vault_json(recorded: &Snapshot, store_gauges: &[Family]) -> Value {
    let owned = |pairs: &[(String, String)]| label_map(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let counters: Vec<Value> = recorded
        .counters
        .iter()
        .map(|Reading { name, labels, value }| {
            // go-metrics reports totals as floats; so did keymint's text-derived answer.
            let value = *value as f64;
            json!({
                "Name": name, "Count": value, "Rate": 0.0, "Sum": value, "Min": value, "Max": value,
                "Mean": value, "Stddev": 0.0, "Labels": owned(labels),
            })
        })
        .collect();
    let recorded_gauges = recorded.gauges.iter().map(
        |Reading { name, labels, value }| json!({"Name": name, "Value": value, "Labels": owned(labels)}),
    );
    let counted_gauges = store_gauges.iter().flat_map(|family| {
        family.samples.iter().map(|(pairs, value)| {
            let pairs = label_map(pairs.iter().map(|(k, v)| (*k, v.as_str())));
            json!({"Name": family.name, "Value": value, "Labels": pairs})
        })
    });
    let gauges: Vec<Value> = recorded_gauges.chain(counted_gauges).collect();
    let samples: Vec<Value> = recorded
        .histograms
        .iter()
        .map(|Reading { name, labels, value: (count, sum) }| {
            let count = *count as f64;
            let mean = if count > 0.0 { sum / count } else { 0.0 };
            json!({"Name": name, "Count": count, "Rate": 0.0, "Sum": sum, "Mean": mean, "Labels": owned(labels)})
        })
        .collect();
    json!({
        "Timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "Gauges": gauges,
        "Counters": counters,
        "Points": [],
        "Samples": samples,
    })
}

/// Labels as the JSON shape writes them: an object of strings.
fn label_map<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> Map<String, Value> {
    pairs.map(|(k, v)| (k.to_owned(), Value::String(v.to_owned()))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(path: &str) -> MountRow {
        MountRow {
            id: format!("id-{path}"),
            path: path.into(),
            mount_type: "aws".into(),
            description: String::new(),
            accessor: String::new(),
            default_lease_ttl: 0,
            max_lease_ttl: 0,
            options: "{}".into(),
            created_at: 0,
        }
    }

    #[test]
    fn routes_keep_mounts_and_words_and_hide_names() {
        let mounts = [mount("aws/"), mount("aws-prod/")];
        assert_eq!(route_label("aws/creds/deploy", &mounts), "aws/creds/:name");
        assert_eq!(route_label("aws-prod/sts/ci-role", &mounts), "aws-prod/sts/:name");
        assert_eq!(route_label("aws/config/root", &mounts), "aws/config/root");
        assert_eq!(route_label("sys/leases/renew", &mounts), "sys/leases/renew");
        assert_eq!(
            route_label("sys/leases/revoke-prefix/aws/creds/deploy", &mounts),
            "sys/leases/revoke-prefix/:name/creds/:name"
        );
        assert_eq!(route_label("random/probe/xyz", &mounts), ":name/:name/:name");
        assert_eq!(route_label("a/b/c/d/e/f/g/h", &[]), ":name/:name/:name/:name/:name/:name/...");
    }

    /// What the code records, read back through a recorder of its own (the global one is the
    /// process's): the JSON holds the values the Prometheus text shows.
    #[test]
    fn the_json_shape_carries_counters_gauges_and_samples() {
        let prometheus = PrometheusBuilder::new().build_recorder();
        let text = prometheus.handle();
        let (recorder, totals) = TeeRecorder::new(prometheus);
        metrics::with_local_recorder(&recorder, || {
            metrics::counter!("c_total", "route" => "a\"b", "status" => "200").increment(2);
            metrics::counter!("c_total", "route" => "a\"b", "status" => "200").increment(1);
            metrics::gauge!("g").set(2.0);
            metrics::histogram!("h", "x" => "y").record(1.0);
            metrics::histogram!("h", "x" => "y").record(3.0);
        });
        let store = [Family {
            name: "keymint_leases_active",
            help: "leases",
            samples: vec![(vec![("mount", "aws/".to_owned())], 4.0)],
        }];
        let v = vault_json(&totals.snapshot(), &store);
        assert_eq!(v["Counters"][0]["Name"], "c_total");
        assert_eq!(v["Counters"][0]["Count"], 3.0);
        assert_eq!(v["Counters"][0]["Labels"]["route"], "a\"b");
        assert_eq!(v["Counters"][0]["Labels"]["status"], "200");
        assert_eq!(v["Gauges"][0]["Name"], "g");
        assert_eq!(v["Gauges"][0]["Value"], 2.0);
        assert_eq!(v["Gauges"][1]["Name"], "keymint_leases_active");
        assert_eq!(v["Gauges"][1]["Value"], 4.0);
        assert_eq!(v["Gauges"][1]["Labels"]["mount"], "aws/");
        assert_eq!(v["Samples"][0]["Name"], "h");
        assert_eq!(
            (v["Samples"][0]["Count"].as_f64(), v["Samples"][0]["Sum"].as_f64()),
            (Some(2.0), Some(4.0))
        );
        assert_eq!(v["Samples"][0]["Mean"], 2.0);
        assert_eq!(v["Samples"][0]["Labels"]["x"], "y");
        // The Prometheus side saw the same values.
        let text = text.render();
        assert!(text.contains("c_total{route=\"a\\\"b\",status=\"200\"} 3"), "{text}");
        assert!(text.contains("h_count{x=\"y\"} 2"), "{text}");
    }
}
