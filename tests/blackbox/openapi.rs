//! `sys/internal/specs/openapi`: the document is generated from keymint's route table, so these
//! tests hold it to the server that serves it. One checks its structure, validates it with
//! openapi-spec-validator and calls every operation it lists; the other fuzzes every operation
//! with schemathesis (both from the test virtualenv, pinned in tests/requirements.txt): no
//! 5xx, and every error in Vault's `{"errors": [...]}` shape.
//!
//! The fuzzer must never make keymint call anything but the loopback moto: it never writes
//! `config/root` (whose endpoints keymint calls), never rotates the root key nor reconciles,
//! never enables audit devices (files anywhere on disk), never revokes its own root token and
//! never disables a mount: those operations are taken out of the document it is given, and
//! tests/schemathesis/schemathesis.toml keeps it from sending undeclared methods (in Vault's
//! API a PUT is a POST) to their paths. The test checks afterwards that `config/root` still
//! points at moto.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use keymint_tests::*;

const SPEC_PATH: &str = "sys/internal/specs/openapi";

/// What the fuzzer is never shown, by operationId (`<path words>-<read|list|write|delete>`).
const EXCLUDED_OPERATIONS: &[&str] = &[
    // keymint calls the endpoints written there (GetCallerIdentity), rotating calls IAM with
    // them, reconciling deletes IAM users: no fuzzed input reaches AWS configuration.
    "aws-config-root-read",
    "aws-config-root-write",
    "aws-config-rotate-root-write",
    "aws-reconcile-read",
    "aws-reconcile-write",
    // An audit device writes a file wherever file_path says, and one that cannot write stops
    // every request.
    "sys-audit-path-write",
    "sys-audit-path-delete",
    // The fuzzer's own root token.
    "auth-token-revoke-self-write",
    // Disabling the aws/ mount would end the run's AWS coverage.
    "sys-mounts-path-delete",
];

/// Role writes can reach the 500s Vault answers for some inputs (legacy `policy` with `arn`;
/// static roles' Enterprise fields, short periods and unknown users), which keymint keeps for
/// parity: those two are fuzzed with the hooks' `no_unexpected_server_error`, which allows
/// exactly those, and everything else with schemathesis' own `not_a_server_error`.
const PARITY_500_OPERATIONS: &str = "^aws-(static-)?roles-name-write$";

async fn spec(km: &Keymint) -> Value {
    let resp = km.get(SPEC_PATH).await.expect(200);
    let content_type = resp.headers.get("content-type").unwrap().to_str().unwrap();
    assert!(content_type.starts_with("application/json"), "{content_type}");
    resp.json().clone()
}

/// A program installed beside the test virtualenv's python (or on PATH without one).
fn venv_tool(name: &str) -> PathBuf {
    let python = python();
    match python.parent() {
        Some(dir) if dir.join(name).is_file() => dir.join(name),
        _ => PathBuf::from(name),
    }
}

/// `{x}` placeholders of an OpenAPI path.
fn placeholders(path: &str) -> Vec<&str> {
    path.split('{').skip(1).filter_map(|s| s.split_once('}').map(|(n, _)| n)).collect()
}

#[tokio::test]
async fn the_document_describes_every_route_and_every_operation_in_it_is_served() {
    let env = TestEnv::start(Backend::Sqlite).await;
    let km = &env.km;
    env.configure_root().await;
    km.post("sys/mounts/aws-prod", json!({"type": "aws"})).await.expect(204);

    // A token is needed, as for any path; root reads it.
    km.anonymous().get(SPEC_PATH).await.expect(403).errors();
    let created = km.post("auth/token/create", json!({"policies": ["default"]})).await.expect(200);
    let token = created.json()["auth"]["client_token"].as_str().unwrap().to_owned();
    km.with_token(&token).get(SPEC_PATH).await.expect(403).errors();
    let doc = spec(km).await;
    let version = km.anonymous().get("sys/health").await.expect(200).json()["version"].clone();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.0."), "{}", doc["openapi"]);
    assert_eq!(doc["info"]["version"], version);
    assert_eq!(
        doc["components"]["securitySchemes"]["VaultToken"],
        json!({"type": "apiKey", "in": "header", "name": "X-Vault-Token"})
    );
    let paths = doc["paths"].as_object().unwrap();
    for expected in [
        "/aws/creds/{name}",
        "/aws/sts/{name}",
        "/aws-prod/creds/{name}",
        "/aws/roles",
        "/aws/roles/{name}",
        "/aws/config/root",
        "/aws/static-roles/{name}",
        "/aws/reconcile",
        "/sys/health",
        "/sys/seal-status",
        "/sys/leader",
        "/sys/init",
        "/sys/metrics",
        "/sys/internal/specs/openapi",
        "/sys/mounts",
        "/sys/mounts/{path}",
        "/sys/mounts/{path}/tune",
        "/sys/leases/lookup",
        "/sys/leases/revocation",
        "/sys/leases/revoke-prefix/{prefix}",
        "/sys/policies/acl/{name}",
        "/sys/policy",
        "/sys/capabilities-self",
        "/sys/audit",
        "/sys/audit-hash/{path}",
        "/auth/token/create",
        "/auth/token/roles/{role_name}",
        "/auth/token/revoke-orphan",
    ] {
        assert!(paths.contains_key(expected), "{expected} missing from {:?}", paths.keys());
    }
    // A first write is a create where the route has Vault's existence check, and only there.
    for (path, create) in [
        ("/aws/config/root", true),
        ("/auth/token/roles/{role_name}", true),
        ("/aws/roles/{name}", false),
        ("/sys/policies/acl/{name}", false),
    ] {
        assert_eq!(paths[path].get("x-vault-createSupported") == Some(&json!(true)), create, "{path}");
    }
    assert_eq!(paths["/sys/health"]["get"]["security"], json!([]));
    assert_eq!(paths["/auth/token/revoke-orphan"]["post"]["x-vault-sudo"], true);
    let list = &paths["/aws/roles"]["get"]["parameters"][0];
    assert_eq!(
        (&list["name"], &list["in"], &list["required"]),
        (&json!("list"), &json!("query"), &json!(true))
    );

    let mut ids = BTreeSet::new();
    let mut probed = 0;
    for (path, item) in paths {
        // Vault's path-level extensions (x-vault-createSupported) sit beside the operations.
        for (method, op) in item.as_object().unwrap().iter().filter(|(key, _)| !key.starts_with("x-")) {
            let what = format!("{method} {path}");
            assert!(ids.insert(op["operationId"].as_str().unwrap().to_owned()), "{what}: operationId reused");
            let params = op["parameters"].as_array().unwrap();
            for name in placeholders(path) {
                assert!(
                    params.iter().any(|p| p["name"] == name && p["in"] == "path" && p["required"] == true),
                    "{what}: no path parameter {name}"
                );
            }
            assert_eq!(
                op["responses"]["4XX"]["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/VaultError",
                "{what}"
            );

            // Served: answered neither 405 nor "no such path" (a 404 with a reason), nor a 5xx.
            // Not the root token's own revocation, nor a rotation of moto's key, nor anything
            // on the unconfigured aws-prod/ (whose AWS calls would use the default chain).
            if ["/aws/config/rotate-root", "/auth/token/revoke-self"].contains(&path.as_str())
                || path.starts_with("/aws-prod/")
            {
                continue;
            }
            let mut concrete = path.clone();
            for name in placeholders(path) {
                concrete = concrete.replace(&format!("{{{name}}}"), "probe");
            }
            let is_list = params.iter().any(|p| p["name"] == "list");
            let url =
                format!("{}{}", concrete.trim_start_matches('/'), if is_list { "?list=true" } else { "" });
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let body = (method == Method::POST).then(|| json!({}));
            let resp = km.client().send(method, &url, body).await;
            let status = resp.status.as_u16();
            assert!(status != 405 && status < 500, "{what}: {resp}");
            if status >= 400 {
                let errors = resp.errors();
                assert!(status != 404 || errors.is_empty(), "{what} is not served: {resp}");
            }
            probed += 1;
        }
    }
    assert!(probed > 80, "only {probed} operations probed");

    // The document is valid OpenAPI 3.0.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    let out = run_python_tool(
        &python(),
        &["-m", "openapi_spec_validator", file.to_str().unwrap()],
        dir.path(),
        &[],
    )
    .await;
    assert!(out.status.success(), "openapi-spec-validator: {}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("OK"), "{}", out.stdout);
}

/// A token that is not root is shown the paths its policies grant something on, and no
/// others.
#[tokio::test]
async fn the_document_holds_only_what_the_callers_policies_reach() {
    let km = Keymint::start_on(Backend::Sqlite).await;
    km.post("sys/mounts/aws-prod", json!({"type": "aws"})).await.expect(204);
    let policy = r#"
        path "aws/creds/web"              { capabilities = ["read"] }
        path "sys/internal/specs/openapi" { capabilities = ["read"] }
    "#;
    km.post("sys/policies/acl/web-only", json!({"policy": policy})).await.expect(204);
    let created = km
        .post("auth/token/create", json!({"policies": ["web-only"], "no_default_policy": true}))
        .await
        .expect(200);
    let token = created.json()["auth"]["client_token"].as_str().unwrap().to_owned();

    let doc = km.with_token(&token).get(SPEC_PATH).await.expect(200).json().clone();
    let mut shown: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
    shown.sort();
    assert_eq!(shown, ["/aws/creds/{name}", "/sys/internal/specs/openapi"], "{doc}");

    // The default policy adds what it grants (its own token's lookup, for one).
    let created = km.post("auth/token/create", json!({"policies": ["web-only"]})).await.expect(200);
    let token = created.json()["auth"]["client_token"].as_str().unwrap().to_owned();
    let doc = km.with_token(&token).get(SPEC_PATH).await.expect(200).json().clone();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.contains_key("/auth/token/lookup-self"), "{:?}", paths.keys());
    assert!(!paths.contains_key("/sys/policies/acl/{name}"), "{:?}", paths.keys());
    assert!(!paths.contains_key("/aws-prod/creds/{name}"), "{:?}", paths.keys());

    // Root sees every path, the other mount's included.
    let all = km.get(SPEC_PATH).await.expect(200).json().clone();
    let all = all["paths"].as_object().unwrap();
    assert!(all.contains_key("/sys/policies/acl/{name}") && all.contains_key("/aws-prod/creds/{name}"));
    assert!(all.len() > paths.len() + 50, "{} paths for root", all.len());
}

#[tokio::test]
async fn schemathesis_finds_no_server_error_and_only_vault_errors() {
    let env = TestEnv::start(Backend::Sqlite).await;
    let km = &env.km;
    env.configure_root().await;
    let moto_endpoint = env.km.get("aws/config/root").await.expect(200).data()["iam_endpoint"].clone();
    let mut doc = spec(km).await;
    let paths = doc["paths"].as_object_mut().unwrap();
    for item in paths.values_mut() {
        let ops = item.as_object_mut().unwrap();
        ops.retain(|key, op| {
            key.starts_with("x-") || !EXCLUDED_OPERATIONS.contains(&op["operationId"].as_str().unwrap())
        });
    }
    // A path left with its extensions (x-vault-createSupported) but no operation goes too.
    paths.retain(|_, item| item.as_object().unwrap().keys().any(|key| !key.starts_with("x-")));
    assert!(!paths.contains_key("/aws/config/root") && !paths.contains_key("/auth/token/revoke-self"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec(&doc).unwrap()).unwrap();

    let started = Instant::now();
    // Everything but the role writes, under schemathesis' own check.
    let filter = ["--exclude-operation-id-regex", PARITY_500_OPERATIONS];
    fuzz(km, &file, dir.path(), "not_a_server_error,vault_error_shape", &filter).await;
    // The role writes, allowing Vault's own 500s.
    let filter = ["--include-operation-id-regex", PARITY_500_OPERATIONS];
    fuzz(km, &file, dir.path(), "no_unexpected_server_error,vault_error_shape", &filter).await;
    eprintln!("schemathesis ran for {:?}", started.elapsed());

    // The server came through whole, still configured against moto alone, root still root.
    km.anonymous().get("sys/health").await.expect(200);
    let root = km.get("aws/config/root").await.expect(200);
    assert_eq!(root.data()["iam_endpoint"], moto_endpoint);
    assert_eq!(root.data()["sts_endpoint"], moto_endpoint);
    km.get("auth/token/lookup-self").await.expect(200);
    assert!(!km.logs().contains("panicked"), "{}", km.logs());
}

/// Runs `st run` on the saved document against `km`, with the repository's hooks, a fixed
/// seed and a bounded number of examples per operation; it must pass.
async fn fuzz(km: &Keymint, spec: &Path, dir: &Path, checks: &str, filter: &[&str]) {
    let config = workspace_root().join("tests/schemathesis/schemathesis.toml");
    let hooks = workspace_root().join("tests/schemathesis/hooks.py");
    let base = format!("{}/v1", km.url());
    let spec = spec.to_str().unwrap();
    let hooks = hooks.to_str().unwrap().to_owned();
    let config = config.to_str().unwrap();
    let mut args = vec![
        "--config-file",
        config,
        "run",
        spec,
        "--url",
        &base,
        "--header",
        "X-Vault-Token: root",
        "--checks",
        checks,
        // Examples from the document, boundary values of every parameter, then random
        // (valid and invalid) inputs. No stateful phase: the document declares no links.
        "--phases",
        "examples,coverage,fuzzing",
        "--seed",
        "20261123",
        "--max-examples",
        "25",
        // One worker thread: with two, CPython 3.11's AST constructor (shared by the threads'
        // hypothesis lambda descriptions) now and then fails with "AST constructor recursion depth
        // mismatch" (CPython gh-106905), more often on a loaded machine.
        "--workers",
        "1",
        "--no-shrink",
        "--request-timeout",
        "60",
    ];
    args.extend_from_slice(filter);
    let out = run_python_tool(&venv_tool("st"), &args, dir, &[("SCHEMATHESIS_HOOKS", hooks)]).await;
    assert!(out.status.success(), "schemathesis ({checks}) failed:\n{}\n{}", out.stdout, out.stderr);
    let summary = out.stdout.lines().find(|l| l.contains(" generated, ")).unwrap_or_default();
    assert!(summary.contains(" passed"), "{}", out.stdout);
    eprintln!("schemathesis ({checks}): {}", summary.trim());
}

struct Output {
    status: std::process::ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs a Python tool of the test virtualenv in `dir` (where hypothesis keeps its database)
/// with a clean environment: no proxy, no AWS credentials, no instance metadata.
async fn run_python_tool(program: &Path, args: &[&str], dir: &Path, vars: &[(&str, String)]) -> Output {
    let out = tokio::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("NO_COLOR", "1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .await
        .unwrap_or_else(|e| panic!("running {}: {e}", program.display()));
    Output {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
