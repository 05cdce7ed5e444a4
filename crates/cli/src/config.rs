//! The production config file: TOML, then `KEYMINT_*` environment overrides, validated as a
//! whole so every mistake is reported at once, before a port is bound.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use keymint_common::go::duration::parse_duration_secs;
use keymint_store::KeyMaterial;
use toml::{Table, Value};

/// A validated config.
#[derive(Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub storage_url: String,
    pub max_connections: u32,
    pub seal_key: KeyMaterial,
    pub log: LogConfig,
    pub leases: LeaseTiming,
    /// `[audit] file_path`: audit records to this file (or `stdout`).
    pub audit_file: Option<String>,
    /// TLS certificate chain and private key (PEM files); `None` only with `tls_disable`.
    pub tls: Option<TlsFiles>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert_file: String,
    pub key_file: String,
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

/// Every field the file may hold: (section, key, environment variable).
const FIELDS: &[(&str, &str, &str)] = &[
    ("listener", "address", "KEYMINT_LISTENER_ADDRESS"),
    ("listener", "tls_cert_file", "KEYMINT_LISTENER_TLS_CERT_FILE"),
    ("listener", "tls_key_file", "KEYMINT_LISTENER_TLS_KEY_FILE"),
    ("listener", "tls_disable", "KEYMINT_LISTENER_TLS_DISABLE"),
    ("storage", "url", "KEYMINT_STORAGE_URL"),
    ("storage", "max_connections", "KEYMINT_STORAGE_MAX_CONNECTIONS"),
    ("seal", "key_file", "KEYMINT_SEAL_KEY_FILE"),
    ("seal", "key_env", "KEYMINT_SEAL_KEY_ENV"),
    ("log", "format", "KEYMINT_LOG_FORMAT"),
    ("log", "level", "KEYMINT_LOG_LEVEL"),
    ("leases", "iam_consistency_window", "KEYMINT_LEASES_IAM_CONSISTENCY_WINDOW"),
    ("leases", "intent_grace", "KEYMINT_LEASES_INTENT_GRACE"),
    ("leases", "claim_timeout", "KEYMINT_LEASES_CLAIM_TIMEOUT"),
    ("leases", "revocation_concurrency", "KEYMINT_LEASES_REVOCATION_CONCURRENCY"),
    ("audit", "file_path", "KEYMINT_AUDIT_FILE_PATH"),
];

/// Loads `path`, applies environment overrides from `env` and validates. The error lists every
/// problem found, one per line.
pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, Vec<String>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| vec![format!("cannot read config file {}: {e}", path.display())])?;
    parse(&text, env)
}

/// A duration from the config file, the environment or a flag: whole seconds or Go's syntax
/// (`90`, `5m`, `1h30m`, `2d`), by the same rules and with the same messages as the API's TTL
/// fields, so that one value means the same wherever it is written.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    parse_duration_secs(text).map(Duration::from_secs).map_err(|e| e.to_string())
}

pub fn parse(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, Vec<String>> {
    let mut table: Table = text.parse().map_err(|e: toml::de::Error| vec![format!("invalid TOML: {e}")])?;
    let mut errors = Vec::new();

    // Unknown sections and keys first: a typo must not silently fall back to a default.
    for (section, value) in &table {
        let known_keys: Vec<&str> = FIELDS.iter().filter(|f| f.0 == section).map(|f| f.1).collect();
        if known_keys.is_empty() {
            errors.push(format!("unknown section [{section}]"));
            continue;
        }
        match value.as_table() {
            Some(keys) => {
                for key in keys.keys() {
                    if !known_keys.contains(&key.as_str()) {
                        errors.push(format!("unknown key {section}.{key}"));
                    }
                }
            }
            None => errors.push(format!("{section} must be a table ([{section}])")),
        }
    }

    for (section, key, var) in FIELDS {
        if let Some(v) = env(var) {
            let entry = table.entry(section.to_string()).or_insert_with(|| Value::Table(Table::new()));
            if let Some(t) = entry.as_table_mut() {
                let value = if ["max_connections", "revocation_concurrency"].contains(key) {
                    match v.parse::<i64>() {
                        Ok(n) => Value::Integer(n),
                        Err(_) => {
                            errors.push(format!("{var}: {key} must be a whole number, got {v:?}"));
                            continue;
                        }
                    }
                } else {
                    Value::String(v)
                };
                t.insert(key.to_string(), value);
            }
        }
    }

    let get = |section: &str, key: &str| table.get(section).and_then(|s| s.get(key));
    let string = |section: &str, key: &str, errors: &mut Vec<String>| -> Option<String> {
        match get(section, key) {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                errors.push(format!("{section}.{key} must be a string, got {}", other.type_str()));
                None
            }
        }
    };

    let listen = match string("listener", "address", &mut errors).as_deref() {
        None => Some(SocketAddr::from(([127, 0, 0, 1], 8200))),
        Some(a) => match a.parse::<SocketAddr>() {
            Ok(addr) => Some(addr),
            Err(_) => {
                errors.push(format!("listener.address {a:?} is not an IP:port address"));
                None
            }
        },
    };

    let storage_url = match string("storage", "url", &mut errors) {
        None => {
            errors.push("storage.url is required (sqlite:///path/keymint.db or postgres://...)".into());
            None
        }
        Some(url) => match keymint_store::parse_url(&url) {
            Ok(_) => Some(url),
            Err(e) => {
                errors.push(format!("storage.url: {e}"));
                None
            }
        },
    };

    let max_connections = match get("storage", "max_connections") {
        None => 10,
        Some(Value::Integer(n)) if (1..=1000).contains(n) => *n as u32,
        Some(other) => {
            errors
                .push(format!("storage.max_connections must be a whole number from 1 to 1000, got {other}"));
            10
        }
    };

    let key_file = string("seal", "key_file", &mut errors);
    let key_env = string("seal", "key_env", &mut errors);
    let seal_key = match (key_file, key_env) {
        (Some(_), Some(_)) => {
            errors.push("seal: give key_file or key_env, not both".into());
            None
        }
        (None, None) => {
            errors.push(
                "seal.key_file or seal.key_env is required: the key that encrypts secrets at rest".into(),
            );
            None
        }
        (Some(file), None) => read_key_file(&PathBuf::from(&file), &mut errors),
        (None, Some(var)) => match env(&var) {
            None => {
                errors.push(format!("seal.key_env names {var}, which is not set"));
                None
            }
            Some(text) => match KeyMaterial::parse(&text) {
                Ok(k) => Some(k),
                Err(e) => {
                    errors.push(format!("{var}: {e}"));
                    None
                }
            },
        },
    };

    let mut log = LogConfig::default();
    match string("log", "format", &mut errors).as_deref() {
        None | Some("text") => {}
        Some("json") => log.json = true,
        Some(other) => errors.push(format!("log.format must be \"text\" or \"json\", got {other:?}")),
    }
    if let Some(level) = string("log", "level", &mut errors) {
        if tracing_subscriber::EnvFilter::try_new(&level).is_err() {
            errors.push(format!(
                "log.level {level:?} is not a valid level or filter (error, warn, info, debug, trace)"
            ));
        } else {
            log.level = level;
        }
    }

    let mut leases = LeaseTiming::default();
    for (key, target) in [
        ("iam_consistency_window", &mut leases.iam_consistency_window),
        ("intent_grace", &mut leases.intent_grace),
        ("claim_timeout", &mut leases.claim_timeout),
    ] {
        if let Some(text) = string("leases", key, &mut errors) {
            match parse_duration(&text) {
                Ok(duration) => *target = duration,
                Err(e) => errors.push(format!("leases.{key}: {e}")),
            }
        }
    }
    match get("leases", "revocation_concurrency") {
        None => {}
        Some(Value::Integer(n)) if (1..=256).contains(n) => leases.revocation_concurrency = *n as usize,
        Some(other) => errors
            .push(format!("leases.revocation_concurrency must be a whole number from 1 to 256, got {other}")),
    }
    if leases.claim_timeout < Duration::from_secs(1) {
        errors.push("leases.claim_timeout must be at least 1s".into());
    }
    if leases.intent_grace < leases.iam_consistency_window {
        errors.push(
            "leases.intent_grace must be at least leases.iam_consistency_window: an intent younger than the window may name a user IAM does not show yet"
                .into(),
        );
    }

    let audit_file = string("audit", "file_path", &mut errors).filter(|p| !p.is_empty());

    // Plain HTTP only when asked for: a secrets server answers with secrets.
    let tls_disable = match get("listener", "tls_disable") {
        None => false,
        Some(Value::Boolean(b)) => *b,
        Some(Value::String(s)) if s == "true" || s == "1" => true,
        Some(Value::String(s)) if s == "false" || s == "0" => false,
        Some(other) => {
            errors.push(format!("listener.tls_disable must be true or false, got {other}"));
            false
        }
    };
    let cert = string("listener", "tls_cert_file", &mut errors).filter(|p| !p.is_empty());
    let key = string("listener", "tls_key_file", &mut errors).filter(|p| !p.is_empty());
    let tls = match (tls_disable, cert, key) {
        (true, None, None) => None,
        (true, _, _) => {
            errors.push("listener.tls_disable = true conflicts with tls_cert_file/tls_key_file".into());
            None
        }
        (false, Some(cert_file), Some(key_file)) => Some(TlsFiles { cert_file, key_file }),
        (false, _, _) => {
            errors.push(
                "listener: tls_cert_file and tls_key_file are required (or tls_disable = true for plain HTTP)"
                    .into(),
            );
            None
        }
    };

    match (listen, storage_url, seal_key) {
        (Some(listen), Some(storage_url), Some(seal_key)) if errors.is_empty() => {
            Ok(Config { listen, storage_url, max_connections, seal_key, log, leases, audit_file, tls })
        }
        _ => Err(errors),
    }
}

fn read_key_file(path: &Path, errors: &mut Vec<String>) -> Option<KeyMaterial> {
    match std::fs::read_to_string(path) {
        Err(e) => {
            errors.push(format!("seal.key_file {}: {e}", path.display()));
            None
        }
        Ok(text) => match KeyMaterial::parse(&text) {
            Ok(k) => Some(k),
            Err(e) => {
                errors.push(format!("seal.key_file {}: {e}", path.display()));
                None
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    const KEY: &str = "0000000000000000000000000000000000000000000000000000000000000000";

    #[test]
    fn a_complete_config_loads() {
        let env = |k: &str| (k == "MY_KEY").then(|| KEY.to_string());
        let cfg = parse(
            r#"
            [listener]
            address = "0.0.0.0:8300"
            tls_cert_file = "/etc/keymint/tls.crt"
            tls_key_file = "/etc/keymint/tls.key"
            [storage]
            url = "sqlite:///var/lib/keymint/k.db"
            max_connections = 4
            [seal]
            key_env = "MY_KEY"
            [log]
            format = "json"
            level = "debug"
            "#,
            &env,
        )
        .unwrap();
        assert_eq!(cfg.listen.port(), 8300);
        assert_eq!(
            cfg.tls,
            Some(TlsFiles {
                cert_file: "/etc/keymint/tls.crt".into(),
                key_file: "/etc/keymint/tls.key".into()
            })
        );
        assert_eq!(cfg.max_connections, 4);
        assert!(cfg.log.json);
    }

    #[test]
    fn every_error_is_reported_at_once() {
        let errors = parse(
            r#"
            [listener]
            address = "nowhere"
            adress = "typo"
            [storage]
            url = "mysql://x"
            max_connections = 0
            [seal]
            key_env = "UNSET_VAR"
            [log]
            format = "xml"
            [extra]
            "#,
            &no_env,
        )
        .unwrap_err();
        let all = errors.join("\n");
        for needle in [
            "unknown key listener.adress",
            "unknown section [extra]",
            "listener.address \"nowhere\"",
            "storage.url",
            "max_connections",
            "UNSET_VAR",
            "log.format",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
    }

    #[test]
    fn environment_overrides_the_file() {
        let env = |k: &str| match k {
            "KEYMINT_STORAGE_URL" => Some("postgres://db/keymint".to_string()),
            "KEYMINT_LISTENER_ADDRESS" => Some("127.0.0.1:9999".to_string()),
            "K" => Some(KEY.to_string()),
            _ => None,
        };
        let cfg = parse(
            "[listener]\ntls_disable = true\n[storage]\nurl = \"sqlite:///a.db\"\n[seal]\nkey_env = \"K\"\n",
            &env,
        )
        .unwrap();
        assert_eq!(cfg.storage_url, "postgres://db/keymint");
        assert_eq!(cfg.listen.port(), 9999);
    }

    #[test]
    fn plain_http_must_be_asked_for() {
        let env = |k: &str| (k == "K").then(|| KEY.to_string());
        let rest = "[storage]\nurl = \"sqlite:///a.db\"\n[seal]\nkey_env = \"K\"\n";
        let errors = parse(rest, &env).unwrap_err().join("\n");
        assert!(errors.contains("tls_cert_file and tls_key_file are required"), "{errors}");
        let errors =
            parse(&format!("[listener]\ntls_cert_file = \"c.pem\"\n{rest}"), &env).unwrap_err().join("\n");
        assert!(errors.contains("tls_cert_file and tls_key_file are required"), "{errors}");
        let cfg = parse(&format!("[listener]\ntls_disable = true\n{rest}"), &env).unwrap();
        assert_eq!(cfg.tls, None);
        let env_off = |k: &str| match k {
            "K" => Some(KEY.to_string()),
            "KEYMINT_LISTENER_TLS_DISABLE" => Some("true".to_string()),
            _ => None,
        };
        assert_eq!(parse(rest, &env_off).unwrap().tls, None);
        let errors = parse(&format!("[listener]\ntls_disable = true\ntls_key_file = \"k\"\n{rest}"), &env)
            .unwrap_err()
            .join("\n");
        assert!(errors.contains("conflicts"), "{errors}");
    }

    #[test]
    fn lease_timings_parse_and_are_checked() {
        let env = |k: &str| (k == "K").then(|| KEY.to_string());
        let base =
            "[listener]\ntls_disable = true\n[storage]\nurl = \"sqlite:///a.db\"\n[seal]\nkey_env = \"K\"\n";
        let cfg = parse(
            &format!(
                "{base}[leases]\niam_consistency_window = \"2m\"\nintent_grace = \"10m\"\nclaim_timeout = \"90s\"\nrevocation_concurrency = 32\n"
            ),
            &env,
        )
        .unwrap();
        assert_eq!(cfg.leases.iam_consistency_window, Duration::from_secs(120));
        assert_eq!(cfg.leases.intent_grace, Duration::from_secs(600));
        assert_eq!(cfg.leases.claim_timeout, Duration::from_secs(90));
        assert_eq!(cfg.leases.revocation_concurrency, 32);
        assert_eq!(parse(base, &env).unwrap().leases, LeaseTiming::default());
        let errors = parse(
            &format!("{base}[leases]\niam_consistency_window = \"1h\"\nintent_grace = \"abc\"\n"),
            &env,
        )
        .unwrap_err()
        .join("\n");
        assert!(errors.contains("leases.intent_grace: time: invalid duration"), "{errors}");
    }

    #[test]
    fn the_documented_examples_are_valid() {
        // The examples point at key files that exist on a real host, not here: that must be
        // the only complaint, so every documented key and value is known and well-formed.
        for (name, text) in [
            ("keymint.example.toml", include_str!("../../../config/keymint.example.toml")),
            ("keymint.single-node.toml", include_str!("../../../config/keymint.single-node.toml")),
        ] {
            let errors = parse(text, &no_env).unwrap_err();
            assert_eq!(errors.len(), 1, "{name}: {errors:?}");
            assert!(errors[0].starts_with("seal.key_file /etc/keymint/seal.key"), "{name}: {errors:?}");
        }
        let env = |k: &str| (k == "KEYMINT_SEAL_KEY").then(|| KEY.to_string());
        parse(include_str!("../../../config/keymint.ha-postgres.toml"), &env).unwrap();
    }

    #[test]
    fn required_fields_are_named() {
        let all = parse("", &no_env).unwrap_err().join("\n");
        assert!(all.contains("storage.url is required"));
        assert!(all.contains("seal.key_file or seal.key_env is required"));
    }
}
