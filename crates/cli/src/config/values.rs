//! The typed value of each config key, parsed at load: an address, a duration, a bounded
//! count, a switch, a storage URL, a log format or level, a file path.
//!
//! Each type reads a TOML value and, when it is wrong, says why in words that follow the key's
//! name: `" must be …"` or `": reason"`, so the loader can put `section.key` in front. A value
//! from the environment arrives as text, so the count and switch types also take their text
//! form (`"8"`, `"true"`), as `tls_disable` always has.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::de::{Deserialize, Deserializer, Error as _};
use toml::Value;

/// Reads the raw TOML value; every type below decides for itself what it accepts.
fn raw<'de, D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
    Value::deserialize(d)
}

/// The text of a string value, or the complaint every string key makes about anything else.
fn text<E: serde::de::Error>(value: Value) -> Result<String, E> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(E::custom(format!(" must be a string, got {}", other.type_str()))),
    }
}

/// A string key's value; an empty string is kept (callers decide whether it means "unset").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text(raw(d)?).map(Text)
    }
}

/// A path to a file keymint reads or writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePath(pub PathBuf);

impl<'de> Deserialize<'de> for FilePath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text(raw(d)?).map(|s| FilePath(PathBuf::from(s)))
    }
}

/// `listener.address`: an `IP:port` to bind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenAddress(pub SocketAddr);

impl<'de> Deserialize<'de> for ListenAddress {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = text(raw(d)?)?;
        s.parse()
            .map(ListenAddress)
            .map_err(|_| D::Error::custom(format!(" {s:?} is not an IP:port address")))
    }
}

/// A Go-style duration (`90s`, `5m`, `1h`; a bare number is seconds), as Vault reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoDuration(pub Duration);

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = text(raw(d)?)?;
        keymint_common::go::duration::parse_duration_secs(&s)
            .map(|secs| GoDuration(Duration::from_secs(secs)))
            .map_err(|e| D::Error::custom(format!(": {e}")))
    }
}

/// A whole number from `MIN` to `MAX` (connections, concurrent revocations).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count<const MIN: u32, const MAX: u32>(pub u32);

impl<'de, const MIN: u32, const MAX: u32> Deserialize<'de> for Count<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = raw(d)?;
        let n = match &value {
            Value::Integer(n) => Some(*n),
            Value::String(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        };
        match n.and_then(|n| u32::try_from(n).ok()) {
            Some(n) if (MIN..=MAX).contains(&n) => Ok(Count(n)),
            _ => Err(D::Error::custom(format!(" must be a whole number from {MIN} to {MAX}, got {value}"))),
        }
    }
}

/// A yes/no key: a TOML boolean, or `true`/`false`/`1`/`0` as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Switch(pub bool);

impl<'de> Deserialize<'de> for Switch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match raw(d)? {
            Value::Boolean(b) => Ok(Switch(b)),
            Value::String(s) if s == "true" || s == "1" => Ok(Switch(true)),
            Value::String(s) if s == "false" || s == "0" => Ok(Switch(false)),
            other => Err(D::Error::custom(format!(" must be true or false, got {other}"))),
        }
    }
}

/// `listener.x_forwarded_for_authorized_addrs`: address blocks (`10.0.0.0/8`, or one host), as
/// a TOML array of strings or one comma-separated string (how an environment variable gives
/// it, and how Vault also takes it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CidrList(pub Vec<keymint_auth::cidr::Cidr>);

impl<'de> Deserialize<'de> for CidrList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let items: Vec<String> = match raw(d)? {
            Value::String(s) => {
                s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
            }
            Value::Array(values) => {
                values.into_iter().map(text::<D::Error>).collect::<Result<_, _>>().map_err(|_| {
                    D::Error::custom(" must be a list of strings (or one comma-separated string)")
                })?
            }
            other => {
                return Err(D::Error::custom(format!(
                    " must be a list of address blocks (or one comma-separated string), got {}",
                    other.type_str()
                )));
            }
        };
        items
            .iter()
            .map(|item| keymint_auth::cidr::Cidr::parse(item))
            .collect::<Result<Vec<_>, _>>()
            .map(CidrList)
            .map_err(|e| D::Error::custom(format!(": {e}")))
    }
}

/// `storage.url`: a SQLite or PostgreSQL URL the store can open. It may carry a database
/// password, so its `Debug` shows only the scheme.
#[derive(Clone, PartialEq, Eq)]
pub struct StorageUrl(String);

impl StorageUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for StorageUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = self.0.split_once(':').map_or("?", |(scheme, _)| scheme);
        write!(f, "StorageUrl({scheme}:<redacted>)")
    }
}

impl<'de> Deserialize<'de> for StorageUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = text(raw(d)?)?;
        match keymint_store::parse_url(&s) {
            Ok(_) => Ok(StorageUrl(s)),
            Err(e) => Err(D::Error::custom(format!(": {e}"))),
        }
    }
}

/// `log.format`: human-readable lines or one JSON object per line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl<'de> Deserialize<'de> for LogFormat {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match text(raw(d)?)?.as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(D::Error::custom(format!(" must be \"text\" or \"json\", got {other:?}"))),
        }
    }
}

/// `log.level`: a level or a `tracing` filter (`info`, `keymint_api=debug,warn`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLevel(pub String);

impl<'de> Deserialize<'de> for LogLevel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let level = text(raw(d)?)?;
        match tracing_subscriber::EnvFilter::try_new(&level) {
            Ok(_) => Ok(LogLevel(level)),
            Err(_) => Err(D::Error::custom(format!(
                " {level:?} is not a valid level or filter (error, warn, info, debug, trace)"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a key's type makes of a value, error text included.
    fn read<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, String> {
        T::deserialize(value).map_err(|e| e.message().to_string())
    }

    fn s(text: &str) -> Value {
        Value::String(text.into())
    }

    #[test]
    fn strings_refuse_other_types() {
        assert_eq!(read::<Text>(s("x")), Ok(Text("x".into())));
        assert_eq!(read::<Text>(Value::Integer(3)).unwrap_err(), " must be a string, got integer");
        assert_eq!(read::<FilePath>(Value::Boolean(true)).unwrap_err(), " must be a string, got boolean");
    }

    #[test]
    fn addresses() {
        assert_eq!(read::<ListenAddress>(s("0.0.0.0:8300")).unwrap().0.port(), 8300);
        assert_eq!(
            read::<ListenAddress>(s("nowhere")).unwrap_err(),
            " \"nowhere\" is not an IP:port address"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(read::<GoDuration>(s("2m")), Ok(GoDuration(Duration::from_secs(120))));
        assert_eq!(read::<GoDuration>(s("90")), Ok(GoDuration(Duration::from_secs(90))));
        assert!(read::<GoDuration>(s("abc")).unwrap_err().starts_with(": time: invalid duration"));
        assert_eq!(read::<GoDuration>(Value::Integer(60)).unwrap_err(), " must be a string, got integer");
    }

    #[test]
    fn counts_are_bounded() {
        assert_eq!(read::<Count<1, 1000>>(Value::Integer(4)), Ok(Count(4)));
        assert_eq!(read::<Count<1, 1000>>(s("12")), Ok(Count(12)));
        assert_eq!(
            read::<Count<1, 1000>>(Value::Integer(0)).unwrap_err(),
            " must be a whole number from 1 to 1000, got 0"
        );
        assert_eq!(
            read::<Count<1, 256>>(s("many")).unwrap_err(),
            " must be a whole number from 1 to 256, got \"many\""
        );
        assert!(read::<Count<1, 256>>(Value::Integer(-1)).is_err());
        assert!(read::<Count<1, 256>>(Value::Float(2.0)).is_err());
    }

    #[test]
    fn switches() {
        assert_eq!(read::<Switch>(Value::Boolean(true)), Ok(Switch(true)));
        assert_eq!(read::<Switch>(s("1")), Ok(Switch(true)));
        assert_eq!(read::<Switch>(s("false")), Ok(Switch(false)));
        assert_eq!(read::<Switch>(s("yes")).unwrap_err(), " must be true or false, got \"yes\"");
    }

    #[test]
    fn address_blocks() {
        let list = |v| read::<CidrList>(v).map(|l| l.0.iter().map(ToString::to_string).collect::<Vec<_>>());
        assert_eq!(list(s("10.0.0.0/8, 192.0.2.7")), Ok(vec!["10.0.0.0/8".into(), "192.0.2.7".into()]));
        assert_eq!(
            list(Value::Array(vec![s("2001:db8::/32"), s("127.0.0.1/32")])),
            Ok(vec!["2001:db8::/32".into(), "127.0.0.1".into()])
        );
        assert_eq!(list(s("")), Ok(vec![]));
        assert_eq!(
            list(s("10.0.0.0/40")).unwrap_err(),
            ": error parsing address \"10.0.0.0/40\": not an IP address or CIDR block"
        );
        assert!(
            list(Value::Array(vec![Value::Integer(10)])).unwrap_err().contains("must be a list of strings")
        );
        assert!(list(Value::Integer(10)).unwrap_err().contains("got integer"));
    }

    #[test]
    fn storage_urls_are_checked_and_redacted() {
        let url = read::<StorageUrl>(s("postgres://keymint:hunter2@db/keymint")).unwrap();
        assert_eq!(url.as_str(), "postgres://keymint:hunter2@db/keymint");
        assert!(!format!("{url:?}").contains("hunter2"));
        assert!(read::<StorageUrl>(s("mysql://db")).unwrap_err().starts_with(": "));
    }

    #[test]
    fn log_settings() {
        assert_eq!(read::<LogFormat>(s("json")), Ok(LogFormat::Json));
        assert_eq!(read::<LogFormat>(s("xml")).unwrap_err(), " must be \"text\" or \"json\", got \"xml\"");
        assert_eq!(
            read::<LogLevel>(s("keymint_api=debug,warn")),
            Ok(LogLevel("keymint_api=debug,warn".into()))
        );
        assert!(read::<LogLevel>(s("[[[")).unwrap_err().contains("is not a valid level or filter"));
    }
}
