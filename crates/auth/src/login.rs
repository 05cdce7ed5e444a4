//! Tokens from logins: what Vault's core adds once an auth method has accepted a login
//! (display name, policies, TTLs within the mount's and the role's limits), and their renewal
//! by the role as it is at renewal time.

use std::collections::BTreeMap;

use keymint_store::tokens::{self, TokenRow};

use crate::token::MAX_TTL_SECS;
use crate::token_fields::{TokenFields, normalize_policies};
use crate::{AuthError, DEFAULT_POLICY_NAME, ROOT_POLICY, generate_accessor, generate_token};

/// What an auth method decided about a login it accepted.
#[derive(Debug, Clone)]
pub struct Grant {
    /// The auth mount's id and path (`auth/approle/`).
    pub mount_id: String,
    pub mount_path: String,
    /// The mount's tuned TTLs, seconds (0: the system's).
    pub mount_default_ttl: i64,
    pub mount_max_ttl: i64,
    pub role_name: String,
    /// The method's part of the display name (a user claim, `<namespace>-<service account>`),
    /// or "" (AppRole).
    pub display_name: String,
    /// The token's metadata (`role_name`, claim mappings, service account fields).
    pub metadata: BTreeMap<String, String>,
    pub fields: TokenFields,
    /// CIDRs that replace the role's `token_bound_cidrs` (an AppRole secret id's own).
    pub bound_cidrs: Option<Vec<String>>,
}

/// A token issued for a login: its text is shown once, in the reply's `auth` block.
#[derive(Debug, Clone)]
pub struct Issued {
    pub token: String,
    pub row: TokenRow,
    pub policies: Vec<String>,
    pub warnings: Vec<String>,
}

/// Vault's display name of a login token: the mount path without `auth/`, `/` turned into
/// `-`, then the method's name for the caller; a trailing `-` trimmed.
pub fn display_name(mount_path: &str, method_part: &str) -> String {
    let mount = mount_path.strip_prefix("auth/").unwrap_or(mount_path).replace('/', "-");
    let full = format!("{mount}{method_part}");
    full.trim_end_matches('-').to_string()
}

/// The effective limit of two TTLs where 0 means "none".
fn min_set(a: i64, b: i64) -> i64 {
    match (a, b) {
        (0, x) | (x, 0) => x,
        (a, b) => a.min(b),
    }
}

/// The TTL a login token gets and the maximum it may be renewed to (from its creation), with
/// Vault's warning when the TTL was capped.
pub fn ttls(fields: &TokenFields, mount_default: i64, mount_max: i64) -> (i64, i64, Option<String>) {
    let mount_max = if mount_max > 0 { mount_max } else { MAX_TTL_SECS };
    let mount_default = if mount_default > 0 { mount_default.min(mount_max) } else { mount_max };
    let max = min_set(min_set(mount_max, fields.token_max_ttl), fields.token_explicit_max_ttl);
    if fields.token_period > 0 {
        let ttl = match fields.token_explicit_max_ttl {
            0 => fields.token_period,
            explicit => fields.token_period.min(explicit),
        };
        return (ttl, max, None);
    }
    let asked = if fields.token_ttl > 0 { fields.token_ttl } else { mount_default };
    if asked > max {
        let warning = format!(
            "TTL of {:?} exceeded the effective max_ttl of {:?}; TTL value is capped accordingly",
            go(asked),
            go(max)
        );
        return (max, max, Some(warning));
    }
    (asked, max, None)
}

fn go(secs: i64) -> String {
    keymint_common::go::duration::format_go_duration(secs.max(0).unsigned_abs())
}

/// Issues the token of an accepted login: an orphan service token, bound to the role's (or
/// the secret id's) CIDRs, tied to its auth mount and role.
pub async fn issue(store: &keymint_store::Store, grant: Grant, now_ms: i64) -> Result<Issued, AuthError> {
    let fields = &grant.fields;
    let mut policies = normalize_policies(&fields.token_policies);
    if policies.iter().any(|p| p == ROOT_POLICY) {
        return Err(AuthError::RequestRefused("auth methods cannot create root tokens".into()));
    }
    if !fields.token_no_default_policy && !policies.iter().any(|p| p == DEFAULT_POLICY_NAME) {
        policies.push(DEFAULT_POLICY_NAME.into());
        policies.sort();
    }
    let mut warnings = Vec::new();
    if fields.token_type == "batch" {
        warnings.push(
            "keymint issues service tokens: the role's token_type \"batch\" gave a service token".into(),
        );
    }
    let (ttl, max_ttl, capped) = ttls(fields, grant.mount_default_ttl, grant.mount_max_ttl);
    warnings.extend(capped);
    let token = generate_token();
    let bound = grant.bound_cidrs.as_ref().filter(|b| !b.is_empty()).unwrap_or(&fields.token_bound_cidrs);
    let meta: serde_json::Map<String, serde_json::Value> =
        grant.metadata.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect();
    let row = TokenRow {
        hash: store.hasher().hash(&token),
        accessor: generate_accessor(),
        policies: serde_json::to_string(&policies)
            .map_err(|source| AuthError::Encode { what: "token policies", source })?,
        display_name: display_name(&grant.mount_path, &grant.display_name),
        meta: serde_json::Value::Object(meta).to_string(),
        created_at: now_ms,
        expire_at: Some(now_ms.saturating_add(ttl.saturating_mul(1000))),
        parent: None,
        orphan: 1,
        ttl,
        explicit_max_ttl: fields.token_explicit_max_ttl,
        period: fields.token_period,
        num_uses: fields.token_num_uses,
        renewable: 1,
        path: format!("{}login", grant.mount_path),
        last_renewal: None,
        role: None,
        bound_cidrs: serde_json::to_string(bound)
            .map_err(|source| AuthError::Encode { what: "token bound_cidrs", source })?,
        auth_mount: Some(grant.mount_id.clone()),
        auth_role: Some(grant.role_name.clone()),
        max_ttl,
    };
    tokens::insert(store.pool(), &row, false).await?;
    Ok(Issued { token, row, policies, warnings })
}

/// The limits a login token renews within: its role's settings as they are now, and its
/// mount's tuning.
#[derive(Debug, Clone)]
pub struct RenewLimits {
    pub fields: TokenFields,
    pub mount_default_ttl: i64,
    pub mount_max_ttl: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_follow_vaults_core() {
        assert_eq!(display_name("auth/approle/", ""), "approle");
        assert_eq!(display_name("auth/jwt/", "repo:acme/app"), "jwt-repo:acme/app");
        assert_eq!(display_name("auth/ci/gitlab/", "42"), "ci-gitlab-42");
    }

    #[test]
    fn ttls_stay_within_the_mount_and_the_role() {
        let f = |ttl, max, explicit, period| TokenFields {
            token_ttl: ttl,
            token_max_ttl: max,
            token_explicit_max_ttl: explicit,
            token_period: period,
            ..Default::default()
        };
        // Nothing set: the mount's default, else the system's 32 days.
        assert_eq!(ttls(&f(0, 0, 0, 0), 0, 0), (MAX_TTL_SECS, MAX_TTL_SECS, None));
        assert_eq!(ttls(&f(0, 0, 0, 0), 600, 3600), (600, 3600, None));
        assert_eq!(ttls(&f(300, 0, 0, 0), 600, 3600), (300, 3600, None));
        // Asked above the role's max: capped, with Vault's warning.
        let (ttl, max, warning) = ttls(&f(7200, 1800, 0, 0), 0, 3600);
        assert_eq!((ttl, max), (1800, 1800));
        assert_eq!(
            warning.unwrap(),
            "TTL of \"2h0m0s\" exceeded the effective max_ttl of \"30m0s\"; TTL value is capped accordingly"
        );
        assert_eq!(ttls(&f(0, 0, 120, 0), 0, 0).0, 120);
        // Periodic: the period, within an explicit max.
        assert_eq!(ttls(&f(0, 0, 0, 900), 0, 60).0, 900);
        assert_eq!(ttls(&f(0, 0, 300, 900), 0, 0).0, 300);
    }
}
