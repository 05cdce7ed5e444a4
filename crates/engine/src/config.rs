//! The mount's AWS configuration: `config/root` (how keymint reaches AWS) and `config/lease`
//! (TTLs of `iam_user` leases), with Vault's write semantics and validation texts.

use regex::Regex;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::sync::LazyLock;
use std::time::Duration;

use keymint_common::go::template::{DEFAULT_USERNAME_TEMPLATE, Kind, Template};

use crate::error::{EngineError, Result};
use crate::pace;

/// The non-secret part of `config/root`, stored as JSON. Secrets live in [`RootSecrets`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct RootConfig {
    pub access_key: String,
    pub region: String,
    pub iam_endpoint: String,
    pub sts_endpoint: String,
    pub sts_region: String,
    pub sts_fallback_endpoints: Vec<String>,
    pub sts_fallback_regions: Vec<String>,
    pub max_retries: i64,
    pub username_template: String,
    /// keymint: a role assumed on top of the base credentials for every AWS call.
    pub role_arn: String,
    pub identity_token_audience: String,
    pub identity_token_ttl: u64,
    pub rotation_schedule: String,
    pub rotation_window: u64,
    pub rotation_period: u64,
    pub disable_automated_rotation: bool,
    pub rotation_policy: String,
    /// keymint: ExternalId sent when assuming `role_arn`.
    pub external_id: String,
    /// keymint: session name used when assuming `role_arn`.
    pub role_session_name: String,
    /// keymint: session length, in seconds, when assuming `role_arn` (0: one hour).
    pub duration: u64,
    /// keymint: the account the credentials must belong to; checked on write.
    pub expected_account_id: String,
    /// keymint: IAM write calls (CreateUser, DeleteUser...) per second, at most; 0: no cap, the
    /// rate is learned from AWS's throttling.
    pub iam_write_rate: u64,
    /// keymint: IAM read calls (Get*, List*) per second, at most; 0: no cap.
    pub iam_read_rate: u64,
    /// keymint: STS calls per second, at most; 0: no cap.
    pub sts_rate: u64,
    /// keymint: the longest, in seconds, a call may queue for its pacing slot.
    pub max_queue_wait: u64,
    /// keymint: how long, in seconds, a throttled or failed call is retried.
    pub retry_deadline: u64,
    /// keymint: the timeout, in seconds, of one attempt of one AWS call.
    pub call_timeout: u64,
}

/// Default `call_timeout`, in seconds.
pub const DEFAULT_CALL_TIMEOUT: u64 = 20;

impl Default for RootConfig {
    fn default() -> Self {
        RootConfig {
            access_key: String::new(),
            region: String::new(),
            iam_endpoint: String::new(),
            sts_endpoint: String::new(),
            sts_region: String::new(),
            sts_fallback_endpoints: Vec::new(),
            sts_fallback_regions: Vec::new(),
            max_retries: -1,
            username_template: DEFAULT_USERNAME_TEMPLATE.to_string(),
            role_arn: String::new(),
            identity_token_audience: String::new(),
            identity_token_ttl: 0,
            rotation_schedule: String::new(),
            rotation_window: 0,
            rotation_period: 0,
            disable_automated_rotation: false,
            rotation_policy: String::new(),
            external_id: String::new(),
            role_session_name: String::new(),
            duration: 0,
            expected_account_id: String::new(),
            iam_write_rate: 0,
            iam_read_rate: 0,
            sts_rate: 0,
            max_queue_wait: pace::DEFAULT_MAX_QUEUE_WAIT.as_secs(),
            retry_deadline: pace::DEFAULT_RETRY_DEADLINE.as_secs(),
            call_timeout: DEFAULT_CALL_TIMEOUT,
        }
    }
}

impl RootConfig {
    /// The mount's pacing and retry settings.
    pub fn limits(&self) -> pace::Limits {
        pace::Limits {
            caps: [self.iam_write_rate, self.iam_read_rate, self.sts_rate]
                .map(|r| (r > 0).then_some(r as f64)),
            max_queue_wait: Duration::from_secs(self.max_queue_wait),
            retry_deadline: Duration::from_secs(self.retry_deadline),
            max_retries: u32::try_from(self.max_retries).ok(),
        }
    }
}

/// The secret part of `config/root`, sealed at rest and never returned.
#[derive(Debug, Clone, Default)]
pub struct RootSecrets {
    pub secret_key: Option<SecretString>,
    pub session_token: Option<SecretString>,
}

/// The fields a `config/root` write supplied (`None`: not supplied), under their API names:
/// the api crate fills it from the route's schema, and every field but the secrets and the few
/// [`apply_root_write`] checks or translates is stored into [`RootConfig`]'s field of the same
/// name as given. A new setting is its line in the route's schema, its field in [`RootConfig`]
/// (with its default) and its field here.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RootConfigInput {
    pub access_key: Option<String>,
    /// Set by the caller from the request, never through serialization.
    #[serde(skip)]
    pub secret_key: Option<SecretString>,
    #[serde(skip)]
    pub session_token: Option<SecretString>,
    pub region: Option<String>,
    pub iam_endpoint: Option<String>,
    pub sts_endpoint: Option<String>,
    pub sts_region: Option<String>,
    pub sts_fallback_endpoints: Option<Vec<String>>,
    pub sts_fallback_regions: Option<Vec<String>>,
    pub max_retries: Option<i64>,
    pub username_template: Option<String>,
    pub role_arn: Option<String>,
    pub identity_token_audience: Option<String>,
    pub identity_token_ttl: Option<u64>,
    pub rotation_schedule: Option<String>,
    pub rotation_window: Option<u64>,
    pub rotation_period: Option<u64>,
    pub disable_automated_rotation: Option<bool>,
    pub rotation_policy: Option<String>,
    pub external_id: Option<String>,
    pub role_session_name: Option<String>,
    pub duration: Option<u64>,
    pub expected_account_id: Option<String>,
    /// Signed as sent: a negative rate is refused with its own text.
    pub iam_write_rate: Option<i64>,
    pub iam_read_rate: Option<i64>,
    pub sts_rate: Option<i64>,
    pub max_queue_wait: Option<u64>,
    pub retry_deadline: Option<u64>,
    pub call_timeout: Option<u64>,
}

static EXTERNAL_ID: LazyLock<Regex> = LazyLock::new(|| {
    // Invariant: a literal, valid pattern.
    Regex::new(r"^[A-Za-z0-9+=,.@:/-]{2,1224}$").unwrap_or_else(|_| unreachable!())
});
static SESSION_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9_+=,.@-]{2,64}$").unwrap_or_else(|_| unreachable!()));
static ACCOUNT_ID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[0-9]{12}$").unwrap_or_else(|_| unreachable!()));

/// Applies a write to the stored config (Vault ≥1.20: a first write creates from defaults, a
/// later one changes only supplied fields, except `username_template`, which Vault resets to its
/// default whenever a write leaves it out) and validates the result.
pub fn apply_root_write(
    existing: Option<(RootConfig, RootSecrets)>,
    input: RootConfigInput,
) -> Result<(RootConfig, RootSecrets)> {
    let (cfg, mut secrets) = existing.unwrap_or_default();
    let mut input = input;
    // Given empty, a secret is cleared, as Vault stores "": `access_key="" secret_key=""` moves
    // a mount to the default credential chain.
    if let Some(s) = input.secret_key.take() {
        secrets.secret_key = Some(s).filter(|s| !s.expose_secret().is_empty());
    }
    if let Some(s) = input.session_token.take() {
        secrets.session_token = Some(s).filter(|s| !s.expose_secret().is_empty());
    }
    for (name, rate) in [
        ("iam_write_rate", input.iam_write_rate),
        ("iam_read_rate", input.iam_read_rate),
        ("sts_rate", input.sts_rate),
    ] {
        if rate.is_some_and(|r| r < 0) {
            return Err(EngineError::invalid_root_config(format!(
                "{name} must be a positive number of calls per second, or 0 for no cap"
            )));
        }
    }
    let template = input.username_template.take().filter(|t| !t.is_empty());
    input.username_template = Some(template.unwrap_or_else(|| DEFAULT_USERNAME_TEMPLATE.to_string()));
    let internal = EngineError::encode("config/root write");
    // Every other field is stored as given, over what the config had.
    let mut stored = serde_json::to_value(cfg).map_err(internal)?;
    if let (serde_json::Value::Object(stored), serde_json::Value::Object(given)) =
        (&mut stored, serde_json::to_value(&input).map_err(internal)?)
    {
        stored.extend(given.into_iter().filter(|(_, v)| !v.is_null()));
    }
    let cfg: RootConfig = serde_json::from_value(stored).map_err(internal)?;
    validate_root(&cfg, &secrets)?;
    Ok((cfg, secrets))
}

impl RootConfig {
    /// Every setting under its API name, for a read of `config/root` (the secrets are not here).
    pub fn to_read_data(&self) -> serde_json::Map<String, serde_json::Value> {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(fields)) => fields,
            _ => serde_json::Map::new(),
        }
    }
}

fn validate_root(cfg: &RootConfig, secrets: &RootSecrets) -> Result<()> {
    let bad = |m: &str| Err(EngineError::invalid_root_config(m));
    if cfg.sts_fallback_endpoints.len() != cfg.sts_fallback_regions.len() {
        return bad("fallback endpoints and fallback regions must be the same length");
    }
    if !cfg.identity_token_audience.is_empty() {
        if !cfg.access_key.is_empty() {
            return bad("only one of 'access_key' or 'identity_token_audience' can be set");
        }
        if cfg.role_arn.is_empty() {
            return bad("missing required 'role_arn' when 'identity_token_audience' is set");
        }
        return bad("plugin workload identity not supported in Vault community edition");
    }
    if cfg.access_key.is_empty() != secrets.secret_key.is_none() {
        return bad(
            "access_key and secret_key must be given together (or neither, for the default credential chain)",
        );
    }
    if secrets.session_token.is_some() && cfg.access_key.is_empty() {
        return bad("session_token needs access_key and secret_key");
    }
    if cfg.max_retries < -1 {
        return bad("max_retries must be -1 (the SDK default) or a number of retries");
    }
    crate::schedule::validate_root_rotation(cfg, secrets)?;
    if cfg.role_arn.is_empty() {
        if !cfg.external_id.is_empty() || !cfg.role_session_name.is_empty() || cfg.duration > 0 {
            return bad("external_id, role_session_name and duration need role_arn");
        }
    } else {
        if !cfg.role_arn.starts_with("arn:") || !cfg.role_arn.contains(":role/") {
            return bad(&format!("role_arn {:?} is not an IAM role ARN", cfg.role_arn));
        }
        if !cfg.external_id.is_empty() && !EXTERNAL_ID.is_match(&cfg.external_id) {
            return bad("external_id must be 2 to 1224 characters of letters, digits and +=,.@:/-");
        }
        if !cfg.role_session_name.is_empty() && !SESSION_NAME.is_match(&cfg.role_session_name) {
            return bad("role_session_name must be 2 to 64 characters of letters, digits and _+=,.@-");
        }
        if cfg.duration > 0 && !(900..=43200).contains(&cfg.duration) {
            return bad("duration must be between 900 seconds (15m) and 43200 seconds (12h)");
        }
    }
    for (name, rate) in [
        ("iam_write_rate", cfg.iam_write_rate),
        ("iam_read_rate", cfg.iam_read_rate),
        ("sts_rate", cfg.sts_rate),
    ] {
        if rate > 10_000 {
            return bad(&format!("{name} must be between 1 and 10000 calls per second, or 0 for no cap"));
        }
    }
    if !(1..=300).contains(&cfg.call_timeout) {
        return bad("call_timeout must be between 1 second and 5 minutes");
    }
    if cfg.retry_deadline > 3600 || cfg.max_queue_wait > 3600 {
        return bad("retry_deadline and max_queue_wait must be at most 1 hour");
    }
    if !cfg.expected_account_id.is_empty() && !ACCOUNT_ID.is_match(&cfg.expected_account_id) {
        return bad("expected_account_id must be a 12-digit AWS account id");
    }
    validate_username_template(&cfg.username_template)
}

/// A template is refused at write time when it does not parse, or when some display or role
/// name could make it produce a name over IAM's 64 or STS's 32 characters: Vault only finds out
/// with a 500 at the first credential request.
pub fn validate_username_template(src: &str) -> Result<()> {
    let template = Template::parse(src)
        .map_err(|e| EngineError::invalid_root_config(format!("unable to parse username_template: {e}")))?;
    for (kind, limit, what) in [(Kind::Iam, 64, "IAM user names"), (Kind::Sts, 32, "STS federation names")] {
        match template.max_len(kind) {
            Some(n) if n <= limit => {}
            Some(n) => {
                return Err(EngineError::invalid_root_config(format!(
                    "username_template can produce {n} characters, over the {limit}-character limit of {what}; cut it with truncate"
                )));
            }
            None => {
                return Err(EngineError::invalid_root_config(format!(
                    "username_template has no upper bound on its length, but {what} are limited to {limit} characters; cut it with truncate"
                )));
            }
        }
    }
    Ok(())
}

/// `config/lease`: TTL and max TTL of `iam_user` leases, in seconds.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct LeaseConfig {
    pub lease: u64,
    pub lease_max: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn keys() -> RootConfigInput {
        RootConfigInput {
            access_key: Some("test-access".into()),
            secret_key: Some(SecretString::from("test-secret")),
            ..Default::default()
        }
    }

    #[test]
    fn first_write_takes_defaults_and_later_writes_merge() {
        let (cfg, secrets) = apply_root_write(None, keys()).unwrap();
        assert_eq!(cfg.max_retries, -1);
        assert_eq!(cfg.username_template, DEFAULT_USERNAME_TEMPLATE);
        assert!(secrets.secret_key.is_some());
        let custom =
            RootConfigInput { username_template: Some("{{ random 20 }}".into()), ..Default::default() };
        let (cfg, _) = apply_root_write(Some((cfg, secrets.clone())), custom).unwrap();
        assert_eq!(cfg.username_template, "{{ random 20 }}");
        let region = RootConfigInput { region: Some("eu-west-1".into()), ..Default::default() };
        let (cfg, secrets) = apply_root_write(Some((cfg, secrets)), region).unwrap();
        assert_eq!(cfg.access_key, "test-access");
        assert!(secrets.secret_key.is_some());
        assert_eq!(cfg.region, "eu-west-1");
        // Vault's quirk: a write without username_template resets it.
        assert_eq!(cfg.username_template, DEFAULT_USERNAME_TEMPLATE);
        // Both keys written empty: the default credential chain from now on.
        let cleared = RootConfigInput {
            access_key: Some(String::new()),
            secret_key: Some(SecretString::from("")),
            ..Default::default()
        };
        let (cfg, secrets) = apply_root_write(Some((cfg, secrets)), cleared).unwrap();
        assert!(cfg.access_key.is_empty() && secrets.secret_key.is_none());
    }

    fn err(input: RootConfigInput) -> String {
        apply_root_write(None, input).unwrap_err().to_string()
    }

    #[test]
    fn validation_texts() {
        assert_eq!(
            err(RootConfigInput { sts_fallback_endpoints: Some(vec!["a".into()]), ..keys() }),
            "fallback endpoints and fallback regions must be the same length"
        );
        assert_eq!(
            err(RootConfigInput { identity_token_audience: Some("x".into()), ..keys() }),
            "only one of 'access_key' or 'identity_token_audience' can be set"
        );
        assert_eq!(
            err(RootConfigInput { identity_token_audience: Some("x".into()), ..Default::default() }),
            "missing required 'role_arn' when 'identity_token_audience' is set"
        );
        assert!(
            err(RootConfigInput { access_key: Some("a".into()), ..Default::default() })
                .contains("must be given together")
        );
        assert!(err(RootConfigInput { external_id: Some("abc".into()), ..keys() }).contains("need role_arn"));
        let with_role =
            || RootConfigInput { role_arn: Some("arn:aws:iam::123456789012:role/keymint".into()), ..keys() };
        assert!(
            apply_root_write(None, RootConfigInput { external_id: Some("ok-id:/=".into()), ..with_role() })
                .is_ok()
        );
        assert!(err(RootConfigInput { external_id: Some("x".into()), ..with_role() }).contains("2 to 1224"));
        assert!(
            err(RootConfigInput { external_id: Some("bad id".into()), ..with_role() }).contains("2 to 1224")
        );
        assert!(
            err(RootConfigInput { external_id: Some("a".repeat(1225)), ..with_role() }).contains("2 to 1224")
        );
        assert!(err(RootConfigInput { duration: Some(60), ..with_role() }).contains("900"));
        assert!(
            err(RootConfigInput { expected_account_id: Some("12".into()), ..keys() }).contains("12-digit")
        );
        assert!(apply_root_write(None, RootConfigInput { rotation_period: Some(3600), ..keys() }).is_ok());
        assert!(
            err(RootConfigInput { rotation_period: Some(3600), ..Default::default() })
                .contains("access_key and secret_key")
        );
    }

    #[test]
    fn unbounded_templates_are_refused() {
        assert!(
            validate_username_template("{{ .DisplayName }}")
                .unwrap_err()
                .to_string()
                .contains("no upper bound")
        );
        assert!(validate_username_template("{{ random 40 }}").unwrap_err().to_string().contains("32"));
        assert!(validate_username_template("{{ .PolicyName | truncate 30 }}").is_ok());
        assert!(validate_username_template("{{ if").is_err());
        assert!(validate_username_template(DEFAULT_USERNAME_TEMPLATE).is_ok());
    }
}
