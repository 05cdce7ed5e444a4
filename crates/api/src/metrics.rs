//! `sys/metrics`: what keymint counts, in Prometheus' text format (`?format=prometheus`) or in
//! the JSON shape Vault's in-memory sink answers with.
//!
//! Counters and histograms are recorded through the `metrics` facade wherever the work happens
//! (requests here, AWS calls in the pacer, issuance in the engine, revocation in the lease
//! crate) into one process-wide Prometheus recorder. Lease gauges are not kept in memory: every
//! replica on a shared database would report its own stale view. They are counted from the
//! store at scrape time, so each replica reports the same, current figures.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::OnceLock;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keymint_store::leases;
use keymint_store::mounts::MountRow;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::error::ApiError;

/// Histogram buckets (seconds): from a cached STS answer (sub-millisecond) to an iam_user
/// issuance through a throttled account (tens of seconds).
const LATENCY_BUCKETS: &[f64] =
    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];
/// Expiry lateness (seconds): on time is under a second; pacing and retries make minutes.
const LATENESS_BUCKETS: &[f64] = &[0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0];

/// The process-wide recorder's handle; `None` when another recorder was installed first (a
/// test harness's), in which case `sys/metrics` says so rather than answer empty.
static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder once per process and returns its handle.
pub(crate) fn install() -> Option<PrometheusHandle> {
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
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            describe();
            Some(handle)
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
            _ = tick.tick() => handle.run_upkeep(),
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

/// Counts and times one answered request.
pub(crate) fn record_request(route: &str, method: &str, status: StatusCode, seconds: f64) {
    let status = status.as_u16().to_string();
    metrics::counter!("keymint_http_requests_total", "route" => route.to_owned(), "method" => method.to_owned(), "status" => status)
        .increment(1);
    metrics::histogram!("keymint_http_request_duration_seconds", "route" => route.to_owned()).record(seconds);
}

/// The `sys/metrics` answer, once the caller is authorized.
pub(crate) async fn render(state: &AppState, format: Option<&str>) -> Response {
    let Some(handle) = install() else {
        return ApiError::Internal { public: "metrics are not being recorded in this process".into() }
            .into_response();
    };
    let mut text = handle.render();
    if let Err(e) = lease_gauges(state, &mut text).await {
        return e.into_response();
    }
    match format {
        Some("prometheus") => {
            let mut response = text.into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            response
        }
        None | Some("") | Some("json") => axum::Json(vault_json(&text)).into_response(),
        Some(other) => ApiError::BadRequest(format!(
            "unknown metrics format {other:?}: use format=prometheus, or no format for JSON"
        ))
        .into_response(),
    }
}

/// Appends the gauges counted from the store: leases by mount, role and credential type, and
/// irrevocable leases by mount.
async fn lease_gauges(state: &AppState, text: &mut String) -> Result<(), ApiError> {
    let census = leases::census(state.store().pool()).await?;
    let mounts = state.mounts().await?;
    let mount_path = |id: &str| {
        mounts
            .iter()
            .find(|m| m.id == id)
            .map(|m| m.path.clone())
            .unwrap_or_else(|| format!("{id} (disabled)"))
    };
    let _ = writeln!(
        text,
        "# HELP keymint_leases_active Leases not yet revoked, by mount, role and credential type"
    );
    let _ = writeln!(text, "# TYPE keymint_leases_active gauge");
    let mut irrevocable: BTreeMap<String, i64> = BTreeMap::new();
    for group in &census {
        let mount = mount_path(&group.mount_id);
        let _ = writeln!(
            text,
            "keymint_leases_active{{mount=\"{}\",role=\"{}\",credential_type=\"{}\"}} {}",
            escape(&mount),
            escape(&group.role_name),
            escape(&group.credential_type),
            group.leases
        );
        *irrevocable.entry(mount).or_default() += group.irrevocable;
    }
    let _ = writeln!(
        text,
        "# HELP keymint_leases_irrevocable Leases flagged irrevocable (revocation kept failing), by mount"
    );
    let _ = writeln!(text, "# TYPE keymint_leases_irrevocable gauge");
    for (mount, n) in &irrevocable {
        let _ = writeln!(text, "keymint_leases_irrevocable{{mount=\"{}\"}} {n}", escape(mount));
    }
    let paused = keymint_store::revocation::paused(state.store().pool()).await?.is_some();
    let _ = writeln!(
        text,
        "# HELP keymint_revocation_paused 1 while automatic revocation is paused (after a restore)"
    );
    let _ = writeln!(text, "# TYPE keymint_revocation_paused gauge");
    let _ = writeln!(text, "keymint_revocation_paused {}", u8::from(paused));
    let _ = writeln!(text, "# HELP keymint_build_info The running keymint version");
    let _ = writeln!(text, "# TYPE keymint_build_info gauge");
    let _ = writeln!(text, "keymint_build_info{{version=\"{}\"}} 1", crate::VERSION);
    Ok(())
}

/// A label value in the text format: backslash, quote and newline escaped.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Vault's JSON metrics shape (go-metrics' in-memory sink): `Gauges`, `Counters` and `Samples`,
/// each entry with its `Name` and `Labels`. Counters carry their total in `Count` and `Sum`;
/// samples (histograms) their count, sum and mean.
fn vault_json(text: &str) -> Value {
    let mut gauges = Vec::new();
    let mut counters = Vec::new();
    // By (name, labels as text): count, sum and the labels.
    type Sample = (f64, f64, Map<String, Value>);
    let mut samples: BTreeMap<(String, String), Sample> = BTreeMap::new();
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            if let Some((name, kind)) = rest.split_once(' ') {
                types.insert(name.to_owned(), kind.to_owned());
            }
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let Some((series, value)) = line.rsplit_once(' ') else { continue };
        let Ok(value) = value.parse::<f64>() else { continue };
        let (name, labels_text) = match series.split_once('{') {
            Some((n, l)) => (n, l.trim_end_matches('}')),
            None => (series, ""),
        };
        let labels = parse_labels(labels_text);
        if let Some(base) = name.strip_suffix("_count").or_else(|| name.strip_suffix("_sum"))
            && types.get(base).is_some_and(|k| k == "histogram" || k == "summary")
        {
            let key_labels: Map<String, Value> = labels.clone();
            let key = (base.to_owned(), Value::Object(key_labels.clone()).to_string());
            let entry = samples.entry(key).or_insert((0.0, 0.0, key_labels));
            if name.ends_with("_count") {
                entry.0 = value;
            } else {
                entry.1 = value;
            }
            continue;
        }
        match types.get(name).map(String::as_str) {
            Some("counter") => counters.push(json!({
                "Name": name, "Count": value, "Rate": 0.0, "Sum": value, "Min": value, "Max": value,
                "Mean": value, "Stddev": 0.0, "Labels": labels,
            })),
            Some("gauge") => gauges.push(json!({"Name": name, "Value": value, "Labels": labels})),
            // Buckets are left to the Prometheus format.
            _ => {}
        }
    }
    let samples: Vec<Value> = samples
        .into_iter()
        .map(|((name, _), (count, sum, labels))| {
            let mean = if count > 0.0 { sum / count } else { 0.0 };
            json!({"Name": name, "Count": count, "Rate": 0.0, "Sum": sum, "Mean": mean, "Labels": labels})
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

/// `a="x",b="y"` as a JSON object (values unescaped).
fn parse_labels(text: &str) -> Map<String, Value> {
    let mut out = Map::new();
    let mut rest = text;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, other)) => value.push(other),
                    None => {}
                },
                '"' => {
                    end = i + 1;
                    break;
                }
                other => value.push(other),
            }
        }
        out.insert(key.trim_start_matches(',').trim().to_owned(), Value::String(value));
        rest = &after[end..];
    }
    out
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

    #[test]
    fn the_json_shape_carries_counters_gauges_and_samples() {
        let text = "# TYPE c_total counter\nc_total{route=\"a\\\"b\",status=\"200\"} 3\n\
                    # TYPE g gauge\ng 2\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum{x=\"y\"} 4\nh_count{x=\"y\"} 2\n";
        let v = vault_json(text);
        assert_eq!(v["Counters"][0]["Name"], "c_total");
        assert_eq!(v["Counters"][0]["Count"], 3.0);
        assert_eq!(v["Counters"][0]["Labels"]["route"], "a\"b");
        assert_eq!(v["Gauges"][0]["Value"], 2.0);
        assert_eq!(v["Samples"][0]["Name"], "h");
        assert_eq!(v["Samples"][0]["Mean"], 2.0);
        assert_eq!(v["Samples"][0]["Labels"]["x"], "y");
    }
}
