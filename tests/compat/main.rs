//! The Vault conformance suite: keymint driven by Vault's own clients rather than by our HTTP
//! code. Each module starts a moto and a keymint, then runs one client's suite against them:
//! - `hvac`: the Python client's suite (`hvac/`, pytest) on both storage backends;
//! - `node_vault`: node-vault's suite (`node-vault/`, `node --test`);
//! - `vault_cli`: the requests the `vault` CLI sends, replayed byte for byte, with the
//!   CLI's expectations on the answers, and the protocol quirks clients depend on;
//! - `ui`: the operator web UI in Chromium (`tests/ui`, pytest and Playwright).
//!
//! The clients and their versions are pinned by `tests/requirements.txt`,
//! `node-vault/package-lock.json` and `tests/ui/package-lock.json`; `scripts/test.sh` installs
//! them, and Debian's Chromium.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod hvac;
mod node_vault;
mod quirks;
mod ui;
mod vault_cli;

use std::path::{Path, PathBuf};
use std::process::Stdio;

use keymint_tests::*;

/// This directory: where the client suites live.
fn compat_dir() -> PathBuf {
    workspace_root().join("tests/compat")
}

/// The environment every client suite gets: where keymint and moto listen, and the root token.
/// `VAULT_ADDR`/`VAULT_TOKEN` are what the clients read themselves.
fn suite_env(env: &TestEnv) -> Vec<(&'static str, String)> {
    vec![
        ("VAULT_ADDR", env.km.url().to_owned()),
        ("VAULT_TOKEN", ROOT_TOKEN.to_owned()),
        ("KEYMINT_COMPAT_MOTO_URL", env.moto.url()),
        ("KEYMINT_COMPAT_ACCOUNT_ID", MOTO_ACCOUNT_ID.to_owned()),
        ("KEYMINT_COMPAT_BACKEND", format!("{:?}", env.backend()).to_lowercase()),
    ]
}

/// Runs one client suite to completion in a clean environment (PATH, a private HOME, no proxy
/// settings, no AWS instance metadata, and `vars`). A failing suite fails the test with the
/// suite's whole output and the tail of keymint's log.
async fn run_suite(env: &TestEnv, program: &Path, args: &[&str], cwd: &Path, vars: &[(&str, String)]) {
    let home = tempfile::tempdir().expect("a HOME for the suite");
    let out = tokio::process::Command::new(program)
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .envs(suite_env(env))
        .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap_or_else(|e| panic!("running {}: {e}", program.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{} {} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        program.display(),
        args.join(" "),
        out.status
    );
    println!("{stdout}");
}
