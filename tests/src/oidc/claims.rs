//! Claim sets shaped like the tokens keymint meets in practice (GitHub Actions, GitLab CI
//! `id_tokens`, Kubernetes projected service-account tokens), valid from now for five minutes.
//! Identifiers derived from a name (repository ids, namespace ids) are the same on every call,
//! so two tokens for one repository bind alike; per-run values (`jti`, `run_id`, `sha`) are
//! random.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::random_hex;

/// How long a built token is valid.
pub const DEFAULT_LIFETIME_SECS: i64 = 300;

/// Seconds since the Unix epoch, the unit of `iat`/`nbf`/`exp`.
pub fn unix_now() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).expect("the clock is after 1970");
    i64::try_from(since.as_secs()).expect("seconds since 1970 fit in an i64")
}

/// `claims` with `iat`, `nbf` and `exp` set to these Unix times.
pub fn with_times(mut claims: Value, iat: i64, nbf: i64, exp: i64) -> Value {
    claims["iat"] = json!(iat);
    claims["nbf"] = json!(nbf);
    claims["exp"] = json!(exp);
    claims
}

/// `claims` without the named top-level claims (e.g. `&["exp", "nbf"]`).
pub fn without_claims(mut claims: Value, names: &[&str]) -> Value {
    if let Some(map) = claims.as_object_mut() {
        for name in names {
            map.remove(*name);
        }
    }
    claims
}

/// A GitHub Actions OIDC token's claims for a push of `ref_` (`refs/heads/main`,
/// `refs/tags/v1`) in `repo` (`acme/app`), audience `aud` (GitHub's default is
/// `https://github.com/<owner>`). No `environment`: see [`with_github_environment`].
pub fn github_claims(issuer_url: &str, repo: &str, ref_: &str, aud: &str) -> Value {
    let owner = repo.split('/').next().unwrap_or(repo);
    let ref_type = if ref_.starts_with("refs/tags/") { "tag" } else { "branch" };
    let workflow_ref = format!("{repo}/.github/workflows/deploy.yml@{ref_}");
    let sha = random_hex(20);
    stamped(json!({
        "iss": issuer_url,
        "aud": aud,
        "sub": format!("repo:{repo}:ref:{ref_}"),
        "jti": random_uuid(),
        "ref": ref_,
        "ref_type": ref_type,
        "ref_protected": "false",
        "sha": sha,
        "repository": repo,
        "repository_id": stable_id(repo).to_string(),
        "repository_owner": owner,
        "repository_owner_id": stable_id(owner).to_string(),
        "repository_visibility": "private",
        "actor": "octocat",
        "actor_id": stable_id("octocat").to_string(),
        "workflow": "deploy",
        "workflow_ref": workflow_ref,
        "workflow_sha": sha,
        "job_workflow_ref": workflow_ref,
        "job_workflow_sha": sha,
        "run_id": random_digits(10),
        "run_number": "7",
        "run_attempt": "1",
        "event_name": "push",
        "base_ref": "",
        "head_ref": "",
        "runner_environment": "github-hosted",
    }))
}

/// A GitHub token of a job deploying to `environment`: the claim is added and `sub` becomes
/// `repo:ORG/REPO:environment:NAME` (the environment wins over the ref, as on GitHub).
pub fn with_github_environment(mut claims: Value, environment: &str) -> Value {
    let repo = claims["repository"].as_str().unwrap_or_default().to_owned();
    claims["environment"] = json!(environment);
    claims["sub"] = json!(format!("repo:{repo}:environment:{environment}"));
    claims
}

/// A GitLab CI `id_tokens` token's claims for a pipeline on branch `ref_` (`main`) of
/// `project_path` (`GROUP/PROJECT`): every value a string except `runner_id` (a number) and
/// `groups_direct` (a list).
pub fn gitlab_claims(issuer_url: &str, project_path: &str, project_id: u64, ref_: &str, aud: &str) -> Value {
    let namespace = project_path.rsplit_once('/').map_or(project_path, |(ns, _)| ns);
    let host = issuer_url.split("://").nth(1).unwrap_or(issuer_url);
    let sha = random_hex(20);
    stamped(json!({
        "iss": issuer_url,
        "aud": aud,
        "sub": format!("project_path:{project_path}:ref_type:branch:ref:{ref_}"),
        "jti": random_uuid(),
        "namespace_id": stable_id(namespace).to_string(),
        "namespace_path": namespace,
        "project_id": project_id.to_string(),
        "project_path": project_path,
        "project_visibility": "private",
        "user_id": stable_id("gitlab-user").to_string(),
        "user_login": "gitlab-user",
        "user_email": "gitlab-user@example.com",
        "user_access_level": "developer",
        "groups_direct": [namespace],
        "pipeline_id": random_digits(9),
        "pipeline_source": "push",
        "job_id": random_digits(10),
        "ref": ref_,
        "ref_type": "branch",
        "ref_path": format!("refs/heads/{ref_}"),
        "ref_protected": "true",
        "runner_id": stable_id("gitlab-runner") % 100_000,
        "runner_environment": "gitlab-hosted",
        "sha": sha,
        "ci_config_ref_uri": format!("{host}/{project_path}//.gitlab-ci.yml@refs/heads/{ref_}"),
        "ci_config_sha": sha,
    }))
}

/// A projected (bound) service-account token's claims: `aud` an array, `sub`
/// `system:serviceaccount:NS:SA`, and the nested `kubernetes.io` object naming the namespace,
/// the service account (with `uid`) and a pod it is bound to.
pub fn kubernetes_claims(
    issuer_url: &str,
    namespace: &str,
    service_account: &str,
    uid: &str,
    aud: &[&str],
) -> Value {
    stamped(json!({
        "iss": issuer_url,
        "aud": aud,
        "sub": format!("system:serviceaccount:{namespace}:{service_account}"),
        "jti": random_uuid(),
        "kubernetes.io": {
            "namespace": namespace,
            "serviceaccount": {"name": service_account, "uid": uid},
            "pod": {"name": format!("{service_account}-{}", random_hex(4)), "uid": random_uuid()},
        },
    }))
}

/// `claims` valid from now for [`DEFAULT_LIFETIME_SECS`].
fn stamped(claims: Value) -> Value {
    let now = unix_now();
    with_times(claims, now, now, now + DEFAULT_LIFETIME_SECS)
}

/// A number standing for `name`, the same on every call and every run (FNV-1a), below 10^9
/// like the numeric ids GitHub and GitLab give.
fn stable_id(name: &str) -> u64 {
    let hash = name
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3));
    hash % 1_000_000_000
}

fn random_digits(n: usize) -> String {
    (0..n).map(|i| char::from(b'0' + rand::random_range(u8::from(i == 0)..10))).collect()
}

fn random_uuid() -> String {
    let h = random_hex(16);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}
