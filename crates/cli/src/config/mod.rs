//! The production config: a TOML file, then `KEYMINT_*` environment overrides, then command-line
//! flags, validated as a whole so every mistake is reported at once, before a port is bound.
//! [`load`] is the one way to get a [`Config`]; `server --config` and `server --check-config`
//! both call it, so a check passes exactly when a start would get past its config.
//!
//! The layering is our own, thin, over serde (see [`layers`]), not figment or config-rs. Both
//! extract through one serde pass, and serde stops at the first error in a struct: figment
//! chains only the errors of its providers (a file it cannot read), config-rs returns one
//! `ConfigError`. An operator with three typos would fix them one start at a time, which is
//! the behaviour this module exists to prevent. Both also guess a type for each environment
//! value (`KEYMINT_LEASES_CLAIM_TIMEOUT=90` would become a number where a duration string is
//! expected), where here each key's own type reads the text.

mod layers;
mod values;

use std::path::Path;
use std::time::Duration;

use keymint_api::forwarded::ForwardedFor;
use keymint_store::KeyMaterial;

pub use layers::Env;
pub use values::{LogFormat, StorageUrl};

/// A validated config.
#[derive(Debug)]
pub struct Config {
    pub listen: std::net::SocketAddr,
    pub storage_url: StorageUrl,
    pub max_connections: u32,
    pub seal_key: KeyMaterial,
    pub log: LogConfig,
    pub leases: LeaseTiming,
    /// `[audit] file_path`: audit records to this file (or `stdout`).
    pub audit_file: Option<String>,
    /// TLS certificate chain and private key (PEM files); `None` only with `tls_disable`.
    pub tls: Option<TlsFiles>,
    /// `[auth] jwks_refetch_interval`: the least time between two fetches of one JWT issuer's
    /// keys.
    pub jwks_refetch_interval: Duration,
    /// `[ui] enabled`: serve the web UI at `/ui/` (the default).
    pub ui_enabled: bool,
    /// `[listener] request_timeout`: how long one API request may take.
    pub request_timeout: Duration,
    /// `[listener] x_forwarded_for_*`: whose `X-Forwarded-For` to believe; `None` when no
    /// address is authorized (the header is never read).
    pub forwarded_for: Option<ForwardedFor>,
}

/// The default of `[auth] jwks_refetch_interval`.
pub const JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert_file: std::path::PathBuf,
    pub key_file: std::path::PathBuf,
}

/// Lease timings an operator may tune.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTiming {
    /// How long after creation a missing IAM user may still be IAM's eventual consistency.
    pub iam_consistency_window: Duration,
    /// Age after which a write-ahead intent names an abandoned creation to undo.
    pub intent_grace: Duration,
    /// How long a replica's claim on a lease it is revoking holds without renewal: how soon
    /// another replica takes over the leases of one that died.
    pub claim_timeout: Duration,
    /// Revocations one replica runs at once.
    pub revocation_concurrency: usize,
}

impl Default for LeaseTiming {
    fn default() -> Self {
        LeaseTiming {
            iam_consistency_window: Duration::from_secs(300),
            intent_grace: Duration::from_secs(300),
            claim_timeout: Duration::from_secs(60),
            revocation_concurrency: 8,
        }
    }
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub json: bool,
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { json: false, level: "info".into() }
    }
}

/// The `server` flags that override config keys: the top layer. Clap has already parsed them
/// (a malformed duration never gets here).
#[derive(Debug, Clone, Copy, Default)]
pub struct Flags {
    /// `--iam-consistency-window`, over `[leases] iam_consistency_window`.
    pub iam_consistency_window: Option<Duration>,
    /// `--intent-grace`, over `[leases] intent_grace`.
    pub intent_grace: Option<Duration>,
    /// `--lease-claim-timeout`, over `[leases] claim_timeout`.
    pub claim_timeout: Option<Duration>,
    /// `--revocation-concurrency`, over `[leases] revocation_concurrency`.
    pub revocation_concurrency: Option<usize>,
}

impl Flags {
    /// Dev mode has no file: the default timings under these flags, checked the same way.
    pub fn over_defaults(&self) -> Result<LeaseTiming, Vec<String>> {
        let mut problems = Vec::new();
        let timing = leases(&layers::Leases::default(), self, &mut problems);
        if problems.is_empty() { Ok(timing) } else { Err(problems) }
    }
}

/// Reads `path`, layers `env` and `flags` over it, and validates. The error lists every
/// problem found.
/// A duration from a flag or the command line (`--intent-grace`, `--refresh-before`): whole
/// seconds or Go's syntax (`90`, `5m`, `1h30m`), by the rules and with the messages of the
/// config file and the API's TTL fields, so that one value means the same wherever it is written.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    keymint_common::go::duration::parse_duration_secs(text)
        .map(Duration::from_secs)
        .map_err(|e| e.to_string())
}

pub fn load(path: &Path, env: &Env, flags: &Flags) -> Result<Config, Vec<String>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| vec![format!("cannot read config file {}: {e}", path.display())])?;
    parse(&text, env, flags)
}

/// [`load`] for a file already read.
pub fn parse(text: &str, env: &Env, flags: &Flags) -> Result<Config, Vec<String>> {
    let file: toml::Table = text.parse().map_err(|e: toml::de::Error| vec![format!("invalid TOML: {e}")])?;
    let layers::Layered { settings, mut problems, refused } = layers::read(&file, env);
    let given_but_refused = |path: &str| refused.iter().any(|r| r == path);

    let listen =
        settings.listener.address.map_or(std::net::SocketAddr::from(([127, 0, 0, 1], 8200)), |a| a.0);

    let storage_url = settings.storage.url;
    if storage_url.is_none() && !given_but_refused("storage.url") {
        problems.push("storage.url is required (sqlite:///path/keymint.db or postgres://...)".into());
    }
    let max_connections = settings.storage.max_connections.map_or(10, |c| c.0);

    let seal_key = seal_key(&settings.seal, env, &given_but_refused, &mut problems);

    let mut log = LogConfig::default();
    if let Some(format) = settings.log.format {
        log.json = format == LogFormat::Json;
    }
    if let Some(level) = settings.log.level {
        log.level = level.0;
    }

    let leases = leases(&settings.leases, flags, &mut problems);

    let audit_file = settings.audit.file_path.map(|t| t.0).filter(|p| !p.is_empty());
    let jwks_refetch_interval = settings.auth.jwks_refetch_interval.map_or(JWKS_REFETCH_INTERVAL, |d| d.0);
    if jwks_refetch_interval < Duration::from_secs(1) {
        problems.push("auth.jwks_refetch_interval must be at least 1s".into());
    }

    let request_timeout =
        settings.listener.request_timeout.map_or(keymint_api::DEFAULT_REQUEST_TIMEOUT, |d| d.0);
    if request_timeout < Duration::from_secs(1) {
        problems.push("listener.request_timeout must be at least 1s".into());
    }
    // The sweeper takes an intent older than intent_grace for a creation that was abandoned.
    // Only a request writes intents, and no request outlives request_timeout: a grace longer
    // than the limit means the sweeper never undoes a creation still under way.
    if leases.intent_grace <= request_timeout {
        let key = if flags.intent_grace.is_some() { "--intent-grace" } else { "leases.intent_grace" };
        problems.push(format!(
            "{key} must be longer than listener.request_timeout: an intent younger than the longest \
             request may belong to a user creation still under way"
        ));
    }
    let forwarded_for = forwarded_for(&settings.listener, &given_but_refused, &mut problems);

    // Plain HTTP only when asked for: a secrets server answers with secrets.
    let tls_disable = settings.listener.tls_disable.is_some_and(|s| s.0);
    let non_empty = |p: Option<values::FilePath>| p.map(|p| p.0).filter(|p| !p.as_os_str().is_empty());
    let cert = non_empty(settings.listener.tls_cert_file);
    let key = non_empty(settings.listener.tls_key_file);
    let tls = match (tls_disable, cert, key) {
        (true, None, None) => None,
        (true, _, _) => {
            problems.push("listener.tls_disable = true conflicts with tls_cert_file/tls_key_file".into());
            None
        }
        (false, Some(cert_file), Some(key_file)) => Some(TlsFiles { cert_file, key_file }),
        (false, _, _) => {
            problems.push(
                "listener: tls_cert_file and tls_key_file are required (or tls_disable = true for plain HTTP)"
                    .into(),
            );
            None
        }
    };

    match (storage_url, seal_key) {
        (Some(storage_url), Some(seal_key)) if problems.is_empty() => Ok(Config {
            listen,
            storage_url,
            max_connections,
            seal_key,
            log,
            leases,
            audit_file,
            tls,
            jwks_refetch_interval,
            ui_enabled: settings.ui.enabled.is_none_or(|s| s.0),
            request_timeout,
            forwarded_for,
        }),
        _ => Err(problems),
    }
}

/// The `x_forwarded_for_*` rules, with Vault's documented defaults (no hop skipped, both
/// reject options on). As Vault does, the other three keys without authorized addresses are
/// a mistake, not a no-op: the operator meant to turn forwarding on.
fn forwarded_for(
    listener: &layers::Listener,
    given_but_refused: &dyn Fn(&str) -> bool,
    problems: &mut Vec<String>,
) -> Option<ForwardedFor> {
    let authorized = listener.x_forwarded_for_authorized_addrs.as_ref().map_or(&[][..], |l| &l.0[..]);
    if authorized.is_empty() {
        if !given_but_refused("listener.x_forwarded_for_authorized_addrs") {
            let set = [
                ("x_forwarded_for_hop_skips", listener.x_forwarded_for_hop_skips.is_some()),
                (
                    "x_forwarded_for_reject_not_authorized",
                    listener.x_forwarded_for_reject_not_authorized.is_some(),
                ),
                ("x_forwarded_for_reject_not_present", listener.x_forwarded_for_reject_not_present.is_some()),
            ];
            for (key, given) in set {
                if given {
                    problems.push(format!(
                        "listener.{key} is set, but x_forwarded_for_authorized_addrs is not: forwarding is not enabled"
                    ));
                }
            }
        }
        return None;
    }
    let mut rules = ForwardedFor::trusting(authorized.to_vec());
    if let Some(skips) = listener.x_forwarded_for_hop_skips {
        rules.hop_skips = skips.0 as usize;
    }
    if let Some(reject) = listener.x_forwarded_for_reject_not_authorized {
        rules.reject_not_authorized = reject.0;
    }
    if let Some(reject) = listener.x_forwarded_for_reject_not_present {
        rules.reject_not_present = reject.0;
    }
    Some(rules)
}

/// The seal key, from the file `seal.key_file` names or the variable `seal.key_env` names.
fn seal_key(
    seal: &layers::Seal,
    env: &Env,
    given_but_refused: &dyn Fn(&str) -> bool,
    problems: &mut Vec<String>,
) -> Option<KeyMaterial> {
    match (&seal.key_file, &seal.key_env) {
        (Some(_), Some(_)) => {
            problems.push("seal: give key_file or key_env, not both".into());
            None
        }
        (None, None) => {
            if !given_but_refused("seal.key_file") && !given_but_refused("seal.key_env") {
                problems.push(
                    "seal.key_file or seal.key_env is required: the key that encrypts secrets at rest".into(),
                );
            }
            None
        }
        (Some(file), None) => {
            let path = &file.0;
            let key = std::fs::read_to_string(path)
                .map_err(|e| e.to_string())
                .and_then(|text| KeyMaterial::parse(&text).map_err(|e| e.to_string()));
            key.map_err(|e| problems.push(format!("seal.key_file {}: {e}", path.display()))).ok()
        }
        (None, Some(var)) => match env.get(&var.0) {
            None => {
                problems.push(format!("seal.key_env names {}, which is not set", var.0));
                None
            }
            Some(text) => KeyMaterial::parse(text).map_err(|e| problems.push(format!("{}: {e}", var.0))).ok(),
        },
    }
}

/// The lease timings: defaults, under the file and environment, under the flags; then the
/// checks that span keys. A problem a flag caused names the flag.
fn leases(keys: &layers::Leases, flags: &Flags, problems: &mut Vec<String>) -> LeaseTiming {
    let defaults = LeaseTiming::default();
    let pick = |flag: Option<Duration>, key: Option<values::GoDuration>, default: Duration| {
        flag.or(key.map(|d| d.0)).unwrap_or(default)
    };
    let timing = LeaseTiming {
        iam_consistency_window: pick(
            flags.iam_consistency_window,
            keys.iam_consistency_window,
            defaults.iam_consistency_window,
        ),
        intent_grace: pick(flags.intent_grace, keys.intent_grace, defaults.intent_grace),
        claim_timeout: pick(flags.claim_timeout, keys.claim_timeout, defaults.claim_timeout),
        revocation_concurrency: flags
            .revocation_concurrency
            .or(keys.revocation_concurrency.map(|c| c.0 as usize))
            .unwrap_or(defaults.revocation_concurrency),
    };
    if timing.claim_timeout < Duration::from_secs(1) {
        problems.push(if flags.claim_timeout.is_some() {
            "--lease-claim-timeout must be at least 1s".into()
        } else {
            "leases.claim_timeout must be at least 1s".into()
        });
    }
    if timing.intent_grace < timing.iam_consistency_window {
        problems.push(if flags.intent_grace.is_some() || flags.iam_consistency_window.is_some() {
            "--intent-grace must be at least the IAM consistency window".into()
        } else {
            "leases.intent_grace must be at least leases.iam_consistency_window: an intent younger than the window may name a user IAM does not show yet"
                .into()
        });
    }
    timing
}

#[cfg(test)]
mod tests;
