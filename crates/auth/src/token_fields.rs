//! The token settings every auth method's role carries (Vault's `tokenutil`): TTLs, policies,
//! bound CIDRs, use limit, period and type, with Vault's checks and the legacy names some
//! clients still send (`ttl`, `policies`, `bound_cidrs`, ...).

use serde::{Deserialize, Serialize};

use crate::cidr::Cidr;

/// A role's token settings, as stored. Durations are seconds; 0 means "the mount's".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TokenFields {
    pub token_ttl: i64,
    pub token_max_ttl: i64,
    pub token_policies: Vec<String>,
    pub token_bound_cidrs: Vec<String>,
    pub token_explicit_max_ttl: i64,
    pub token_no_default_policy: bool,
    pub token_num_uses: i64,
    pub token_period: i64,
    /// `default`, `service` or `batch`.
    pub token_type: String,
    /// The legacy names the role was last written with (`ttl`, `policies`, ...): a read echoes
    /// them, as Vault does for roles written by old clients.
    pub legacy: Vec<String>,
}

/// The legacy name of each token field, where Vault has one (`policies` and `period` for
/// every method; the rest for JWT and Kubernetes roles).
pub const LEGACY_NAMES: &[(&str, &str)] = &[
    ("token_ttl", "ttl"),
    ("token_max_ttl", "max_ttl"),
    ("token_policies", "policies"),
    ("token_bound_cidrs", "bound_cidrs"),
    ("token_num_uses", "num_uses"),
    ("token_period", "period"),
];

/// Policy names as Vault keeps them: trimmed, lowercased, sorted, without duplicates or blanks.
pub fn normalize_policies(names: &[String]) -> Vec<String> {
    let mut out: Vec<String> =
        names.iter().map(|p| p.trim().to_lowercase()).filter(|p| !p.is_empty()).collect();
    out.sort();
    out.dedup();
    out
}

impl TokenFields {
    /// Vault's checks on a role's token fields, in its words. AppRole also takes the
    /// `default-service`/`default-batch` spellings (rewritten, with a warning).
    pub fn check(&mut self, approle: bool) -> Result<Vec<String>, String> {
        let mut warnings = Vec::new();
        for (name, value) in [
            ("token_max_ttl", self.token_max_ttl),
            ("token_period", self.token_period),
            ("token_num_uses", self.token_num_uses),
            ("token_ttl", self.token_ttl),
            ("token_explicit_max_ttl", self.token_explicit_max_ttl),
        ] {
            if value < 0 {
                return Err(format!("'{name}' cannot be negative"));
            }
        }
        if self.token_max_ttl > 0 && self.token_ttl > self.token_max_ttl {
            return Err("'token_ttl' cannot be greater than 'token_max_ttl'".into());
        }
        self.token_type = match self.token_type.as_str() {
            "" | "default" => "default".into(),
            "service" => "service".into(),
            "batch" => "batch".into(),
            "default-service" | "default-batch" if approle => {
                warnings.push(format!(
                    "token_type {:?} changed to \"default\": keymint decides the type of login tokens",
                    self.token_type
                ));
                "default".into()
            }
            other => return Err(format!("invalid 'token_type' value {other:?}")),
        };
        if self.token_type == "batch" {
            if self.token_period > 0 {
                return Err(
                    "'token_type' cannot be 'batch' or 'default_batch' when set to generate periodic tokens"
                        .into(),
                );
            }
            if self.token_num_uses > 0 {
                return Err("'token_type' cannot be 'batch' or 'default_batch' when set to generate tokens with limited use count".into());
            }
        }
        for block in &self.token_bound_cidrs {
            Cidr::parse(block).map_err(|_| format!("invalid CIDR block {block:?} in token_bound_cidrs"))?;
        }
        self.token_policies = normalize_policies(&self.token_policies);
        Ok(warnings)
    }

    /// The fields as a role read shows them: all nine `token_*` keys, and the legacy keys the
    /// role was written with.
    pub fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        use serde_json::json;
        let mut out = serde_json::Map::new();
        out.insert("token_ttl".into(), json!(self.token_ttl));
        out.insert("token_max_ttl".into(), json!(self.token_max_ttl));
        out.insert("token_policies".into(), json!(self.token_policies));
        out.insert("token_bound_cidrs".into(), json!(self.token_bound_cidrs));
        out.insert("token_explicit_max_ttl".into(), json!(self.token_explicit_max_ttl));
        out.insert("token_no_default_policy".into(), json!(self.token_no_default_policy));
        out.insert("token_num_uses".into(), json!(self.token_num_uses));
        out.insert("token_period".into(), json!(self.token_period));
        let kind = if self.token_type.is_empty() { "default" } else { self.token_type.as_str() };
        out.insert("token_type".into(), json!(kind));
        for (new, old) in LEGACY_NAMES {
            if self.legacy.iter().any(|l| l == old)
                && let Some(value) = out.get(*new).cloned()
            {
                out.insert((*old).to_string(), value);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_speak_vaults_words() {
        let mut f = TokenFields { token_ttl: -1, ..Default::default() };
        assert_eq!(f.check(false).unwrap_err(), "'token_ttl' cannot be negative");
        let mut f = TokenFields { token_ttl: 20, token_max_ttl: 10, ..Default::default() };
        assert_eq!(f.check(false).unwrap_err(), "'token_ttl' cannot be greater than 'token_max_ttl'");
        let mut f = TokenFields { token_type: "weird".into(), ..Default::default() };
        assert_eq!(f.check(false).unwrap_err(), "invalid 'token_type' value \"weird\"");
        let mut f = TokenFields { token_type: "batch".into(), token_period: 5, ..Default::default() };
        assert!(f.check(false).unwrap_err().contains("periodic"));
        let mut f = TokenFields { token_type: "default-service".into(), ..Default::default() };
        assert!(f.check(false).is_err(), "only AppRole takes default-service");
        assert_eq!(f.check(true).unwrap().len(), 1);
        assert_eq!(f.token_type, "default");
        let mut f = TokenFields { token_bound_cidrs: vec!["10.0.0.0/33".into()], ..Default::default() };
        assert!(f.check(false).is_err());
    }

    #[test]
    fn policies_are_normalized_and_legacy_names_echoed() {
        let mut f = TokenFields {
            token_policies: vec![" CI ".into(), "ci".into(), "".into(), "a".into()],
            legacy: vec!["policies".into()],
            ..Default::default()
        };
        f.check(false).unwrap();
        assert_eq!(f.token_policies, ["a", "ci"]);
        let json = f.to_json();
        assert_eq!(json["policies"], serde_json::json!(["a", "ci"]));
        assert_eq!(json["token_type"], "default");
        assert!(!json.contains_key("ttl"));
        assert_eq!(json.len(), 10);
    }
}
