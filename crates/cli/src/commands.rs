//! The client commands: `read`, `write`, `list`, `delete`, `status`, `lease ...` and
//! `token ...`, with the Vault CLI's arguments, output and exit codes.

use clap::{Args, Subcommand};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Map, Value, json};

use crate::client::{Conn, Env, Exit, api_error};
use crate::output::{self, Format};

/// Flags every client command takes (`-format=json` works as well as `--format=json`).
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// The server's address (else KEYMINT_ADDR, VAULT_ADDR, then http://127.0.0.1:8200).
    #[arg(long)]
    pub address: Option<String>,
    /// Output: a Key/Value table, or the server's JSON.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Print only this field's value (from `data`, or `token`, `lease_id`...).
    #[arg(long)]
    pub field: Option<String>,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  keymint read aws/creds/deploy\n  keymint read -format=json aws/creds/deploy\n  keymint read -field=access_key aws/sts/deploy ttl=1h"
)]
pub struct ReadArgs {
    #[command(flatten)]
    pub common: Common,
    /// The path, e.g. aws/creds/deploy.
    pub path: String,
    /// Query parameters, K=V.
    pub data: Vec<String>,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  keymint write aws/roles/deploy credential_type=iam_user policy_document=@policy.json\n  keymint write aws/config/root access_key=AK... secret_key=-   # secret from stdin\n  echo '{\"lease\":\"1h\",\"lease_max\":\"24h\"}' | keymint write aws/config/lease -"
)]
pub struct WriteArgs {
    #[command(flatten)]
    pub common: Common,
    pub path: String,
    /// K=V pairs (K=@file reads a file, K=- standard input), or - for a JSON object on stdin.
    pub data: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PathArgs {
    #[command(flatten)]
    pub common: Common,
    pub path: String,
}

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  keymint status\n  keymint status -format=json")]
pub struct StatusArgs {
    #[command(flatten)]
    pub common: Common,
}

#[derive(Subcommand, Debug)]
#[command(
    after_help = "Examples:\n  keymint lease lookup aws/creds/deploy/AbCd...\n  keymint lease renew -increment=1h aws/creds/deploy/AbCd...\n  keymint lease revoke -prefix aws/creds/deploy"
)]
pub enum LeaseCommand {
    /// Renew a lease (iam_user leases are renewable).
    Renew {
        #[command(flatten)]
        common: Common,
        lease_id: String,
        /// Requested extension, e.g. 1h.
        #[arg(long)]
        increment: Option<String>,
    },
    /// Revoke a lease, or with --prefix every lease under a prefix.
    Revoke {
        #[command(flatten)]
        common: Common,
        lease_id: String,
        #[arg(long)]
        prefix: bool,
        /// With --prefix: drop the records of leases AWS refuses to revoke.
        #[arg(long, requires = "prefix")]
        force: bool,
    },
    /// Show a lease's times and state.
    Lookup {
        #[command(flatten)]
        common: Common,
        lease_id: String,
    },
}

#[derive(Subcommand, Debug)]
#[command(
    after_help = "Examples:\n  keymint token create -policy=deploy -ttl=1h -field=token\n  keymint token create -role=ci -field=token\n  keymint token lookup\n  keymint token revoke -self"
)]
pub enum TokenCommand {
    /// Create a child token (or an orphan).
    Create {
        #[command(flatten)]
        common: Common,
        /// A policy to attach; repeat for several.
        #[arg(long = "policy")]
        policies: Vec<String>,
        #[arg(long)]
        ttl: Option<String>,
        #[arg(long)]
        explicit_max_ttl: Option<String>,
        #[arg(long)]
        period: Option<String>,
        #[arg(long)]
        display_name: Option<String>,
        #[arg(long)]
        num_uses: Option<u64>,
        #[arg(long)]
        orphan: bool,
        /// Create it against this token role (`auth/token/create/ROLE`), which shapes it.
        #[arg(long)]
        role: Option<String>,
    },
    /// Show a token (the caller's own without an argument).
    Lookup {
        #[command(flatten)]
        common: Common,
        token: Option<String>,
        /// The argument is an accessor.
        #[arg(long)]
        accessor: bool,
    },
    /// Revoke a token and its children (the caller's own with --self).
    Revoke {
        #[command(flatten)]
        common: Common,
        token: Option<String>,
        #[arg(long = "self")]
        own: bool,
        #[arg(long)]
        accessor: bool,
    },
}

pub(crate) fn conn(env: &Env, common: &Common) -> Result<Conn, Exit> {
    Conn::new(env, common.address.as_deref()).map_err(Exit::from)
}

pub(crate) fn url(c: &Conn, path: &str) -> String {
    format!("{}/v1/{}", c.addr(), path.trim_start_matches('/'))
}

pub async fn read(env: &Env, args: ReadArgs) -> Result<(), Exit> {
    let c = conn(env, &args.common)?;
    let data = output::request_data(&args.data, &mut std::io::stdin())?;
    let mut path = args.path.trim_matches('/').to_owned();
    if !data.is_empty() {
        let query: Vec<String> = data
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v.as_str().unwrap_or_default())))
            .collect();
        path = format!("{path}?{}", query.join("&"));
    }
    let answer = c.call("GET", &path, None).await?;
    if answer.status == 404 && answer.errors().is_empty() {
        return Err(Exit::server(format!("No value found at {}", args.path.trim_matches('/'))));
    }
    if answer.status >= 400 {
        return Err(api_error(&format!("Error reading {}", args.path), "GET", &url(&c, &path), &answer));
    }
    output::print(&answer.body, args.common.format, args.common.field.as_deref())
}

/// Everything but RFC 3986's unreserved characters (`A-Z a-z 0-9 - _ . ~`) is escaped in a
/// query key or value, as Go's `url.QueryEscape` does bar the space, so `+`, `&`, `=` and `/`
/// in `vault read path k=v` values reach the server as they were typed.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

fn encode(s: &str) -> String {
    utf8_percent_encode(s, QUERY_VALUE).to_string()
}

pub async fn write(env: &Env, args: WriteArgs) -> Result<(), Exit> {
    let c = conn(env, &args.common)?;
    let data = Value::Object(output::request_data(&args.data, &mut std::io::stdin())?);
    let path = args.path.trim_matches('/');
    let answer = c.expect_ok("PUT", path, Some(&data), &format!("Error writing data to {path}")).await?;
    if answer.status == 204 || answer.body.is_null() {
        println!("Success! Data written to: {path}");
        return Ok(());
    }
    output::print(&answer.body, args.common.format, args.common.field.as_deref())
}

pub async fn list(env: &Env, args: PathArgs) -> Result<(), Exit> {
    let c = conn(env, &args.common)?;
    let path = args.path.trim_matches('/');
    let answer = c.call("LIST", path, None).await?;
    if answer.status == 404 && answer.errors().is_empty() {
        return Err(Exit::server(format!("No value found at {path}/")));
    }
    if answer.status >= 400 {
        return Err(api_error(&format!("Error listing {path}/"), "LIST", &url(&c, path), &answer));
    }
    let keys = answer.body.get("data").and_then(|d| d.get("keys")).cloned().unwrap_or(json!([]));
    match args.common.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&keys).map_err(Exit::local)?),
        Format::Table => {
            println!("Keys\n----");
            for k in keys.as_array().into_iter().flatten() {
                println!("{}", output::show(k));
            }
        }
    }
    Ok(())
}

pub async fn delete(env: &Env, args: PathArgs) -> Result<(), Exit> {
    let c = conn(env, &args.common)?;
    let path = args.path.trim_matches('/');
    c.expect_ok("DELETE", path, None, &format!("Error deleting {path}")).await?;
    println!("Success! Data deleted (if it existed) at: {path}");
    Ok(())
}

pub async fn status(env: &Env, args: StatusArgs) -> Result<(), Exit> {
    let c = conn(env, &args.common)?;
    let answer = c.expect_ok("GET", "sys/seal-status", None, "Error checking seal status").await?;
    let body = &answer.body;
    match args.common.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(body).map_err(Exit::local)?),
        Format::Table => {
            let g = |k: &str| output::show(body.get(k).unwrap_or(&Value::Null));
            let rows = vec![
                ("Seal Type".to_owned(), g("type")),
                ("Initialized".to_owned(), g("initialized")),
                ("Sealed".to_owned(), g("sealed")),
                ("Version".to_owned(), g("version")),
                ("Cluster Name".to_owned(), g("cluster_name")),
                ("Cluster ID".to_owned(), g("cluster_id")),
                ("Storage Type".to_owned(), g("storage_type")),
            ];
            print!("{}", output::table(&rows));
        }
    }
    Ok(())
}

/// Writes `contents` to `path`, readable by its owner only, replacing it atomically.
pub(crate) fn write_private(path: &std::path::Path, contents: &str) -> Result<(), Exit> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(Exit::local)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(Exit::local)?;
    }
    tmp.write_all(contents.as_bytes()).map_err(Exit::local)?;
    tmp.persist(path).map_err(|e| Exit::local(e.error))?;
    Ok(())
}

pub async fn lease(env: &Env, cmd: LeaseCommand) -> Result<(), Exit> {
    match cmd {
        LeaseCommand::Renew { common, lease_id, increment } => {
            let c = conn(env, &common)?;
            let mut body = Map::new();
            body.insert("lease_id".into(), json!(lease_id));
            if let Some(i) = increment {
                body.insert("increment".into(), json!(i));
            }
            let answer = c
                .expect_ok("PUT", "sys/leases/renew", Some(&Value::Object(body)), "Error renewing lease")
                .await?;
            output::print(&answer.body, common.format, common.field.as_deref())
        }
        LeaseCommand::Revoke { common, lease_id, prefix, force } => {
            let c = conn(env, &common)?;
            let (path, body) = match (prefix, force) {
                (true, true) => (format!("sys/leases/revoke-force/{lease_id}"), json!({})),
                (true, false) => (format!("sys/leases/revoke-prefix/{lease_id}"), json!({})),
                _ => ("sys/leases/revoke".to_owned(), json!({"lease_id": lease_id})),
            };
            let answer = c.expect_ok("PUT", &path, Some(&body), "Error revoking lease").await?;
            if let Some(w) = output::warnings(&answer.body) {
                eprintln!("{w}");
            }
            println!("Success! Revoked lease: {lease_id}");
            Ok(())
        }
        LeaseCommand::Lookup { common, lease_id } => {
            let c = conn(env, &common)?;
            let answer = c
                .expect_ok(
                    "PUT",
                    "sys/leases/lookup",
                    Some(&json!({"lease_id": lease_id})),
                    "Error looking up lease",
                )
                .await?;
            output::print(&answer.body, common.format, common.field.as_deref())
        }
    }
}

pub async fn token(env: &Env, cmd: TokenCommand) -> Result<(), Exit> {
    match cmd {
        TokenCommand::Create {
            common,
            policies,
            ttl,
            explicit_max_ttl,
            period,
            display_name,
            num_uses,
            orphan,
            role,
        } => {
            let c = conn(env, &common)?;
            let mut body = Map::new();
            if !policies.is_empty() {
                body.insert("policies".into(), json!(policies));
            }
            for (k, v) in [
                ("ttl", ttl),
                ("explicit_max_ttl", explicit_max_ttl),
                ("period", period),
                ("display_name", display_name),
            ] {
                if let Some(v) = v {
                    body.insert(k.into(), json!(v));
                }
            }
            if let Some(n) = num_uses {
                body.insert("num_uses".into(), json!(n));
            }
            let path = match (&role, orphan) {
                (Some(role), _) => format!("auth/token/create/{role}"),
                (None, true) => "auth/token/create-orphan".to_string(),
                (None, false) => "auth/token/create".to_string(),
            };
            let answer =
                c.expect_ok("POST", &path, Some(&Value::Object(body)), "Error creating token").await?;
            output::print(&answer.body, common.format, common.field.as_deref())
        }
        TokenCommand::Lookup { common, token, accessor } => {
            let c = conn(env, &common)?;
            let answer = match (token, accessor) {
                (None, _) => {
                    c.expect_ok("GET", "auth/token/lookup-self", None, "Error looking up token").await?
                }
                (Some(a), true) => {
                    c.expect_ok(
                        "POST",
                        "auth/token/lookup-accessor",
                        Some(&json!({"accessor": a})),
                        "Error looking up token",
                    )
                    .await?
                }
                (Some(t), false) => {
                    c.expect_ok(
                        "POST",
                        "auth/token/lookup",
                        Some(&json!({"token": t})),
                        "Error looking up token",
                    )
                    .await?
                }
            };
            output::print(&answer.body, common.format, common.field.as_deref())
        }
        TokenCommand::Revoke { common, token, own, accessor } => {
            let c = conn(env, &common)?;
            match (own, token, accessor) {
                (true, None, false) => {
                    c.expect_ok("POST", "auth/token/revoke-self", Some(&json!({})), "Error revoking token")
                        .await?
                }
                (false, Some(a), true) => {
                    c.expect_ok(
                        "POST",
                        "auth/token/revoke-accessor",
                        Some(&json!({"accessor": a})),
                        "Error revoking token",
                    )
                    .await?
                }
                (false, Some(t), false) => {
                    c.expect_ok(
                        "POST",
                        "auth/token/revoke",
                        Some(&json!({"token": t})),
                        "Error revoking token",
                    )
                    .await?
                }
                _ => {
                    return Err(Exit::local(
                        "give a token (or an accessor with --accessor), or --self alone",
                    ));
                }
            };
            println!("Success! Revoked token (if it existed)");
            Ok(())
        }
    }
}

/// Vault CLI flags come with one dash (`-format=json`); clap wants two. Arguments that look
/// like a single-dash long flag get the second dash; `-` alone (stdin) and `-x` stay.
pub fn vault_style_args(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = false;
    for a in args {
        if rest || a == "--" {
            rest = true;
            out.push(a);
            continue;
        }
        let name =
            a.strip_prefix('-').filter(|r| !r.starts_with('-')).map(|r| r.split('=').next().unwrap_or(""));
        match name {
            Some(n) if n.len() > 1 && n.chars().all(|c| c.is_ascii_lowercase() || c == '-' || c == '_') => {
                let mut long = format!("--{}", n.replace('_', "-"));
                if let Some((_, value)) = a.split_once('=') {
                    long.push('=');
                    long.push_str(value);
                }
                out.push(long)
            }
            _ => out.push(a),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_keep_only_unreserved_characters() {
        assert_eq!(encode("AZaz09-_.~"), "AZaz09-_.~");
        assert_eq!(encode("a b+c&d=e/f?g#h%"), "a%20b%2Bc%26d%3De%2Ff%3Fg%23h%25");
        assert_eq!(encode("é\n"), "%C3%A9%0A");
        assert_eq!(encode(""), "");
    }

    #[test]
    fn single_dash_flags_become_long_flags() {
        let args = [
            "keymint",
            "read",
            "-format=json",
            "-field",
            "access_key",
            "aws/creds/x",
            "ttl=1h",
            "-",
            "--",
            "-format",
        ];
        let out = vault_style_args(args.iter().map(|s| s.to_string()));
        assert_eq!(
            out,
            [
                "keymint",
                "read",
                "--format=json",
                "--field",
                "access_key",
                "aws/creds/x",
                "ttl=1h",
                "-",
                "--",
                "-format"
            ]
        );
        assert_eq!(vault_style_args(["-h".to_string(), "--help".to_string()]), ["-h", "--help"]);
        assert_eq!(vault_style_args(["-display_name=a_b".to_string()]), ["--display-name=a_b"]);
    }
}
