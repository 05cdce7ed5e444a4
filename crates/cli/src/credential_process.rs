//! `keymint credential-process PATH`: credentials in the shape the AWS CLI and SDKs read from a
//! `credential_process` command, with a local cache. The AWS CLI runs the command for every
//! call and caches nothing, and every `iam_user` read makes a new IAM user; so the answer is
//! kept in a file readable by its owner only and reused until it comes close to expiry.
//!
//! With `--auth-method` it logs in itself, only when the cache misses; the cache is then keyed
//! on who logs in (method, mount, role), and the credentials are taken to expire with the
//! login's token, which revokes their lease when it runs out.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::Args;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auto_auth::{AutoAuth, AutoAuthArgs, Tokens};
use crate::client::{Conn, Env, Exit, api_error};
use crate::config::parse_duration;

#[derive(Args, Debug)]
#[command(
    after_help = "In ~/.aws/config:\n  [profile deploy]\n  credential_process = keymint credential-process aws/sts/deploy\n\nLogging in with AppRole when the cache misses (no stored token):\n  credential_process = keymint credential-process --auth-method approle --role-id-file /etc/keymint/role-id --secret-id-file /etc/keymint/secret-id aws/sts/deploy"
)]
pub struct CredentialProcessArgs {
    /// The path to read, e.g. aws/creds/deploy or aws/sts/deploy.
    pub path: String,
    /// The server's address (else KEYMINT_ADDR, VAULT_ADDR, then http://127.0.0.1:8200).
    #[arg(long)]
    pub address: Option<String>,
    /// Fetch new credentials once the cached ones have less than this left (e.g. 5m, 300).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub refresh_before: Duration,
    /// Where the cache lives (default: $XDG_CACHE_HOME/keymint or ~/.cache/keymint).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Always fetch, and do not keep the answer.
    #[arg(long)]
    pub no_cache: bool,
    #[command(flatten)]
    pub auth: AutoAuthArgs,
}

/// What `credential_process` prints (the AWS CLI's field names).
#[derive(Debug, Serialize, Deserialize)]
struct ProcessCredentials {
    #[serde(rename = "Version")]
    version: u8,
    #[serde(rename = "AccessKeyId")]
    access_key_id: String,
    #[serde(rename = "SecretAccessKey")]
    secret_access_key: String,
    #[serde(rename = "SessionToken", skip_serializing_if = "Option::is_none", default)]
    session_token: Option<String>,
    /// RFC 3339, as the AWS CLI expects.
    #[serde(rename = "Expiration")]
    expiration: String,
}

impl ProcessCredentials {
    fn expires(&self) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(&self.expiration).ok().map(|t| t.with_timezone(&Utc))
    }
}

/// The cache file for one address, path and identity (the token, or auto-auth's method, mount
/// and role): the identity is part of the name (hashed), so another one never reads these
/// credentials.
fn cache_file(dir: &Path, addr: &str, path: &str, identity: &str) -> PathBuf {
    let digest =
        ring::digest::digest(&ring::digest::SHA256, format!("{addr}\n{path}\n{identity}").as_bytes());
    let hex: String = digest.as_ref().iter().take(16).map(|b| format!("{b:02x}")).collect();
    dir.join(format!("{hex}.json"))
}

fn default_cache_dir(env: &Env) -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| env.home.as_ref().map(|h| h.join(".cache")))
        .map(|d| d.join("keymint"))
}

pub async fn run(env: &Env, args: CredentialProcessArgs) -> Result<(), Exit> {
    let conn = Conn::new(env, args.address.as_deref())?;
    let path = args.path.trim_matches('/').to_owned();
    let auto = args.auth.config()?;
    let identity = match &auto {
        Some(config) => config.identity()?,
        None => conn.token().unwrap_or_default().to_owned(),
    };
    let cache = match (args.no_cache, args.cache_dir.clone().or_else(|| default_cache_dir(env))) {
        (false, Some(dir)) => Some(cache_file(&dir, conn.addr(), &path, &identity)),
        _ => None,
    };
    let now = Utc::now();
    if let Some(file) = &cache
        && let Some(cached) = read_cache(file)
        && cached
            .expires()
            .is_some_and(|t| t - now > chrono::Duration::from_std(args.refresh_before).unwrap_or_default())
    {
        println!("{}", serde_json::to_string(&cached).map_err(Exit::local)?);
        return Ok(());
    }
    // Logged in only now that the cache missed: the login's token is not kept anywhere.
    let (tokens, token_life) = match auto {
        Some(config) => {
            let auth = AutoAuth::new(Conn::new(env, args.address.as_deref())?, config);
            auth.login().await?;
            let life = auth.lease_secs().await;
            (Tokens::Auto(std::sync::Arc::new(auth)), life)
        }
        None => (Tokens::Fixed(conn.token().map(str::to_owned)), None),
    };
    let answer = tokens.call(&conn, "GET", &path, None).await?;
    if answer.status >= 400 {
        return Err(api_error(
            &format!("Error reading {path}"),
            "GET",
            &format!("{}/v1/{path}", conn.addr()),
            &answer,
        ));
    }
    let fresh = from_answer(&answer.body, now, token_life)?;
    if let Some(file) = &cache {
        // A cache that cannot be written costs a new credential next time, nothing more.
        if let Err(e) = write_cache(file, &fresh) {
            eprintln!("keymint: could not cache the credentials in {}: {e}", file.display());
        }
    }
    println!("{}", serde_json::to_string(&fresh).map_err(Exit::local)?);
    Ok(())
}

/// The credentials of an answer, expiring with their lease, or with `token_life` (seconds) when
/// the token that fetched them (and revokes them when it ends) runs out first.
fn from_answer(
    body: &Value,
    now: DateTime<Utc>,
    token_life: Option<u64>,
) -> Result<ProcessCredentials, Exit> {
    let data =
        body.get("data").filter(|d| d.is_object()).ok_or_else(|| Exit::local("the answer holds no data"))?;
    let text = |k: &str| data.get(k).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
    let access_key_id = text("access_key").ok_or_else(|| Exit::local("the answer holds no access_key"))?;
    let secret_access_key =
        text("secret_key").ok_or_else(|| Exit::local("the answer holds no secret_key"))?;
    let mut lifetime = body.get("lease_duration").and_then(Value::as_i64).unwrap_or(0);
    if let Some(t) = token_life.filter(|t| *t > 0) {
        lifetime = lifetime.min(i64::try_from(t).unwrap_or(i64::MAX));
    }
    Ok(ProcessCredentials {
        version: 1,
        access_key_id,
        secret_access_key,
        session_token: text("session_token").or_else(|| text("security_token")),
        expiration: (now + chrono::Duration::seconds(lifetime))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    })
}

fn read_cache(file: &Path) -> Option<ProcessCredentials> {
    serde_json::from_slice(&std::fs::read(file).ok()?).ok()
}

/// Writes the cache file atomically, owner-only, in an owner-only directory.
fn write_cache(file: &Path, creds: &ProcessCredentials) -> std::io::Result<()> {
    use std::io::Write;
    let dir = file.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    tmp.write_all(&serde_json::to_vec(creds).map_err(std::io::Error::other)?)?;
    tmp.persist(file).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("5x").is_err() && parse_duration("1h5").is_err());
        // The flag's own parser used to multiply without a check: this overflowed u64.
        assert!(parse_duration("5124095576030432h").is_err());
    }

    #[test]
    fn sts_and_iam_answers_become_process_credentials() {
        let now = Utc::now();
        let sts = json!({"lease_duration": 900, "data": {"access_key": "AK", "secret_key": "SK", "session_token": "ST"}});
        let c = from_answer(&sts, now, None).unwrap();
        let printed: Value = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(printed["Version"], 1);
        assert_eq!(printed["SessionToken"], "ST");
        let expected = now + chrono::Duration::seconds(900);
        assert_eq!(c.expires().unwrap().timestamp(), expected.timestamp());
        assert!(c.expiration.ends_with('Z'), "{}", c.expiration);
        let iam = json!({"lease_duration": 3600, "data": {"access_key": "AK", "secret_key": "SK", "session_token": null}});
        let printed: Value = serde_json::to_value(from_answer(&iam, now, None).unwrap()).unwrap();
        assert!(printed.get("SessionToken").is_none(), "{printed}");
        assert!(from_answer(&json!({"data": {}}), now, None).is_err());
        // Fetched by a login token that ends sooner: they end with it.
        let short = from_answer(&iam, now, Some(600)).unwrap();
        assert_eq!(short.expires().unwrap().timestamp(), (now + chrono::Duration::seconds(600)).timestamp());
        let long = from_answer(&iam, now, Some(7200)).unwrap();
        assert_eq!(long.expires().unwrap().timestamp(), (now + chrono::Duration::seconds(3600)).timestamp());
    }

    #[test]
    fn the_cache_depends_on_the_token() {
        let d = Path::new("/c");
        assert_ne!(cache_file(d, "a", "p", "t1"), cache_file(d, "a", "p", "t2"));
        assert_eq!(cache_file(d, "a", "p", "t1"), cache_file(d, "a", "p", "t1"));
    }
}
