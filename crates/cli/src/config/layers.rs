//! The config as written, before the checks that span keys: one serde struct per section,
//! each `deny_unknown_fields`, filled from the TOML file with the `KEYMINT_*` environment on
//! top, every problem kept rather than stopping at the first.
//!
//! serde stops at the first error in a struct, so the layers are merged as TOML tables and
//! each key is read on its own through the section's struct: a key whose value is wrong is
//! reported and left out, and the rest still load. Unknown sections and keys are found before
//! that, against the key lists the structs' own derive declares, so a struct, the unknown-key
//! check and the environment variable names cannot disagree.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use serde::de::DeserializeOwned;
use toml::{Table, Value};

use super::values::{
    CidrList, Count, FilePath, GoDuration, ListenAddress, LogFormat, LogLevel, StorageUrl, Switch, Text,
};

/// The process environment, or a test's stand-in for it: name to value.
pub type Env = HashMap<String, String>;

/// The whole file. Every section and every key may be absent; what is required is decided by
/// the checks in `super`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub listener: Listener,
    pub storage: Storage,
    pub seal: Seal,
    pub log: Log,
    pub leases: Leases,
    pub audit: Audit,
    pub auth: Auth,
    pub ui: Ui,
}

/// `[listener]`: where to listen, with which certificate, for how long a request may run, and
/// which load balancers' `X-Forwarded-For` to believe (Vault's listener options).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Listener {
    pub address: Option<ListenAddress>,
    pub tls_cert_file: Option<FilePath>,
    pub tls_key_file: Option<FilePath>,
    pub tls_disable: Option<Switch>,
    pub request_timeout: Option<GoDuration>,
    pub x_forwarded_for_authorized_addrs: Option<CidrList>,
    pub x_forwarded_for_hop_skips: Option<Count<0, 255>>,
    pub x_forwarded_for_reject_not_authorized: Option<Switch>,
    pub x_forwarded_for_reject_not_present: Option<Switch>,
}

/// `[storage]`: the database.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Storage {
    pub url: Option<StorageUrl>,
    pub max_connections: Option<Count<1, 1000>>,
}

/// `[seal]`: where the key that encrypts secrets at rest comes from.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Seal {
    pub key_file: Option<FilePath>,
    /// The name of the environment variable that holds the key.
    pub key_env: Option<Text>,
}

/// `[log]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    pub format: Option<LogFormat>,
    pub level: Option<LogLevel>,
}

/// `[leases]`: the timings of lease revocation.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Leases {
    pub iam_consistency_window: Option<GoDuration>,
    pub intent_grace: Option<GoDuration>,
    pub claim_timeout: Option<GoDuration>,
    pub revocation_concurrency: Option<Count<1, 256>>,
}

/// `[audit]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Audit {
    pub file_path: Option<Text>,
}

/// `[auth]`: the auth methods.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Auth {
    pub jwks_refetch_interval: Option<GoDuration>,
}

/// `[ui]`: the web UI at `/ui/`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ui {
    pub enabled: Option<Switch>,
}

/// Each section with its keys, as the structs above declare them.
pub fn sections() -> [(&'static str, &'static [&'static str]); 8] {
    [
        ("listener", keys::<Listener>()),
        ("storage", keys::<Storage>()),
        ("seal", keys::<Seal>()),
        ("log", keys::<Log>()),
        ("leases", keys::<Leases>()),
        ("audit", keys::<Audit>()),
        ("auth", keys::<Auth>()),
        ("ui", keys::<Ui>()),
    ]
}

/// The variable that overrides `section.key`: `KEYMINT_LISTENER_ADDRESS` for `listener.address`.
pub fn env_name(section: &str, key: &str) -> String {
    format!("KEYMINT_{section}_{key}").to_uppercase()
}

/// The file and environment layered and read: the settings that loaded, and a problem for
/// every key that did not.
#[derive(Debug, Default)]
pub struct Layered {
    pub settings: Settings,
    pub problems: Vec<String>,
    /// `section.key` of each key that was given but refused, so a required key is not also
    /// reported missing.
    pub refused: Vec<String>,
}

/// Layers `env` over `file` and reads the result into [`Settings`].
pub fn read(file: &Table, env: &Env) -> Layered {
    let mut out = Layered::default();
    let known = sections();

    // Unknown sections and keys first: a typo must not silently fall back to a default.
    let mut merged: BTreeMap<&str, Table> = BTreeMap::new();
    for (section, value) in file {
        let Some((name, keys)) = known.iter().find(|(name, _)| name == section) else {
            out.problems.push(format!("unknown section [{section}]"));
            continue;
        };
        let Some(table) = value.as_table() else {
            out.problems.push(format!("{section} must be a table ([{section}])"));
            continue;
        };
        let kept = merged.entry(name).or_default();
        for (key, value) in table {
            if keys.contains(&key.as_str()) {
                kept.insert(key.clone(), value.clone());
            } else {
                out.problems.push(format!("unknown key {section}.{key}"));
            }
        }
    }

    // The environment overrides the file, key by key. A problem with a value from there names
    // the variable, which is where the operator has to look.
    let mut from_env: HashMap<String, String> = HashMap::new();
    for (section, keys) in known {
        let section_is_table = file.get(section).is_none_or(Value::is_table);
        for key in keys {
            let var = env_name(section, key);
            if let Some(text) = env.get(&var)
                && section_is_table
            {
                merged.entry(section).or_default().insert(key.to_string(), Value::String(text.clone()));
                from_env.insert(format!("{section}.{key}"), var);
            }
        }
    }

    // Each key alone through the structs, so one bad value does not hide the next.
    let mut good = Table::new();
    for (section, keys) in merged {
        let mut kept = Table::new();
        for (key, value) in keys {
            let one = Table::from_iter([(
                section.to_string(),
                Value::Table(Table::from_iter([(key.clone(), value.clone())])),
            )]);
            match Settings::deserialize(Value::Table(one)) {
                Ok(_) => {
                    kept.insert(key, value);
                }
                Err(e) => {
                    let path = format!("{section}.{key}");
                    let problem = format!("{path}{}", e.message());
                    out.problems.push(match from_env.get(&path) {
                        Some(var) => format!("{var}: {problem}"),
                        None => problem,
                    });
                    out.refused.push(path);
                }
            }
        }
        good.insert(section.to_string(), Value::Table(kept));
    }
    match Settings::deserialize(Value::Table(good)) {
        Ok(settings) => out.settings = settings,
        // Every key left was read on its own above; reading them together cannot fail unless
        // serde and this walk disagree, and then it is reported, not unwrapped.
        Err(e) => out.problems.push(format!("config: {}", e.message())),
    }
    out
}

/// The key names a section struct's serde derive declares.
pub(super) fn keys<T: DeserializeOwned>() -> &'static [&'static str] {
    match T::deserialize(introspect::FieldNames) {
        Err(introspect::Found::Fields(fields)) => fields,
        // Only for a type that is not a struct; every section is one (the config tests check
        // that each lists its keys).
        _ => &[],
    }
}

/// A deserializer that reads nothing: it asks the type for its struct's field names, which
/// serde's derive passes to `deserialize_struct`, and stops there.
mod introspect {
    use std::fmt;

    use serde::de::{Deserializer, Visitor};

    pub struct FieldNames;

    #[derive(Debug)]
    pub enum Found {
        Fields(&'static [&'static str]),
        NotAStruct,
    }

    impl fmt::Display for Found {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("not a struct")
        }
    }

    impl std::error::Error for Found {}

    impl serde::de::Error for Found {
        fn custom<T: fmt::Display>(_: T) -> Self {
            Found::NotAStruct
        }
    }

    impl<'de> Deserializer<'de> for FieldNames {
        type Error = Found;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Found> {
            Err(Found::NotAStruct)
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Found> {
            Err(Found::Fields(fields))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }
}
