//! Vault's token store rules: creating a token under a parent (policy subset, TTLs, use
//! limits, orphans), or against a token role, renewing one within its maximum, the tree
//! revocation walks, and keeping token roles.

use keymint_common::go::duration::format_go_duration;
use keymint_store::tokens::{self, TokenRow};
use keymint_store::{Store, StoreError, token_roles};

use crate::token_role::TokenRole;
use crate::{AuthError, DEFAULT_POLICY_NAME, Identity, ROOT_POLICY, generate_accessor, generate_token};

/// The token mount's default and maximum TTL (Vault's system default: 32 days).
pub const MAX_TTL_SECS: i64 = 2_764_800;

/// What `auth/token/create` asks for, with durations already in seconds.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub id: Option<String>,
    /// `None`: the parent's policies (or the role's allowed policies).
    pub policies: Option<Vec<String>>,
    pub meta: serde_json::Map<String, serde_json::Value>,
    pub no_parent: bool,
    pub no_default_policy: bool,
    pub renewable: Option<bool>,
    pub ttl: Option<i64>,
    pub explicit_max_ttl: Option<i64>,
    pub period: Option<i64>,
    pub display_name: Option<String>,
    pub num_uses: i64,
    /// Created at `auth/token/create-orphan`.
    pub orphan_endpoint: bool,
    /// Created at `auth/token/create/<role>`: the role, as stored.
    pub role: Option<TokenRole>,
    /// Vault's `entity_alias`, which only a role can allow.
    pub entity_alias: Option<String>,
    /// The creator holds `sudo` on the create path: like root, it may set `id`, `no_parent`
    /// and `period` (Vault's `isSudo`).
    pub parent_sudo: bool,
}

/// A created token: shown once.
#[derive(Debug, Clone)]
pub struct Created {
    pub token: String,
    pub row: TokenRow,
    pub policies: Vec<String>,
    /// Vault's warnings (a period or explicit max TTL given by both the request and the role).
    pub warnings: Vec<String>,
}

fn invalid(msg: impl Into<String>) -> AuthError {
    AuthError::RequestRefused(msg.into())
}

/// Vault's display name: `token`, or `token-` and the given name with anything but letters,
/// digits and `-` replaced by `-`.
pub fn display_name(given: Option<&str>) -> String {
    match given.map(str::trim).filter(|s| !s.is_empty()) {
        None => "token".into(),
        Some(name) => {
            let clean: String =
                name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' }).collect();
            // Vault drops one trailing `-` of the result.
            let full = format!("token-{clean}");
            full.strip_suffix('-').map(str::to_string).unwrap_or(full)
        }
    }
}

/// The policies of a child token under the ordinary rules (no role, or a role without policy
/// rules): those asked for, or the parent's; a subset of the parent's unless it is root;
/// `default` added unless `no_default_policy` (which also strips an asked-for `default`) or
/// `auto_default` is off.
fn child_policies(
    parent: &Identity,
    asked: Option<&[String]>,
    no_default_policy: bool,
    auto_default: bool,
) -> Result<Vec<String>, AuthError> {
    // None asked for (an empty list too, as in Vault): the parent's.
    let mut policies: Vec<String> = match asked.filter(|a| a.iter().any(|p| !p.trim().is_empty())) {
        Some(asked) => asked.iter().map(|p| p.trim().to_lowercase()).filter(|p| !p.is_empty()).collect(),
        None => parent.policies.clone(),
    };
    policies.sort();
    policies.dedup();
    if !parent.is_root()
        && policies.iter().any(|p| p.as_str() != DEFAULT_POLICY_NAME && !parent.policies.contains(p))
    {
        return Err(AuthError::PolicyNotAllowed("child policies must be subset of parent".into()));
    }
    if policies.iter().any(|p| p == ROOT_POLICY) {
        // A root token holds root alone.
        policies = vec![ROOT_POLICY.to_string()];
    } else if no_default_policy {
        policies.retain(|p| p != DEFAULT_POLICY_NAME);
    } else if auto_default && !policies.iter().any(|p| p == DEFAULT_POLICY_NAME) {
        policies.push(DEFAULT_POLICY_NAME.to_string());
        policies.sort();
    }
    Ok(policies)
}

/// A role's value and the request's for a period or an explicit max TTL (0: none): the
/// lesser when both are set, with Vault's warning.
fn lesser_of(requested: i64, role: i64, what: &str, warnings: &mut Vec<String>) -> i64 {
    match (requested, role) {
        (_, 0) => requested,
        (0, _) => role,
        _ => {
            let lesser = requested.min(role);
            warnings.push(format!(
                "{what} specified both during creation call and in role; using the lesser value of {lesser} seconds"
            ));
            lesser
        }
    }
}

/// Creates a token as `parent` asks, against `req.role` if given (Vault's `handleCreateCommon`);
/// the token text is in the result, never stored.
pub async fn create(
    store: &Store,
    parent: &Identity,
    req: CreateRequest,
    now_ms: i64,
) -> Result<Created, AuthError> {
    let parent_root = parent.is_root();
    let privileged = parent_root || req.parent_sudo;
    let role = req.role.as_ref();
    if parent.use_limited {
        return Err(invalid("restricted use token cannot generate child tokens"));
    }
    if req.id.is_some() && !privileged {
        return Err(invalid("root or sudo privileges required to specify token id"));
    }
    // A role decides by itself whether its tokens are orphans; `no_parent` is not looked at.
    if role.is_none() && req.no_parent && !req.orphan_endpoint && !privileged {
        return Err(invalid("root or sudo privileges required to create orphan token"));
    }
    if req.period.is_some_and(|p| p > 0) && !privileged {
        return Err(invalid("root or sudo privileges required to create periodic token"));
    }
    if req.num_uses < 0 {
        return Err(invalid("number of uses cannot be negative"));
    }
    for (name, value) in
        [("ttl", req.ttl), ("explicit_max_ttl", req.explicit_max_ttl), ("period", req.period)]
    {
        if value.is_some_and(|v| v < 0) {
            return Err(invalid(format!("{name} must be positive")));
        }
    }
    let mut warnings = Vec::new();
    if let Some(alias) = req.entity_alias.as_deref().filter(|a| !a.is_empty()) {
        let Some(role) = role else {
            return Err(invalid("'entity_alias' is only allowed in combination with token role"));
        };
        if !role.allows_entity_alias(alias) {
            return Err(invalid("invalid 'entity_alias' value"));
        }
        warnings.push(
            "keymint has no identity entities: entity_alias was checked against the role's \
             allowed_entity_aliases, but the token is tied to no entity"
                .to_string(),
        );
    }

    let mut policies = match role.filter(|r| r.sets_policies()) {
        Some(role) => {
            let asked = req.policies.as_deref().unwrap_or_default();
            let mut policies = role.token_policies(asked, &parent.policies, req.no_default_policy)?;
            if req.no_default_policy {
                policies.retain(|p| p != DEFAULT_POLICY_NAME);
            }
            policies
        }
        None => {
            let auto_default = !role.is_some_and(|r| r.token_no_default_policy);
            child_policies(parent, req.policies.as_deref(), req.no_default_policy, auto_default)?
        }
    };
    let is_root = policies.iter().any(|p| p == ROOT_POLICY);
    if is_root {
        // A role may allow root, but only a root token can hand it out.
        if !parent_root {
            return Err(invalid("root tokens may not be created without parent token being root"));
        }
        policies = vec![ROOT_POLICY.to_string()];
    }

    let period =
        lesser_of(req.period.unwrap_or(0), role.map_or(0, |r| r.token_period), "Period", &mut warnings);
    let explicit_max = lesser_of(
        req.explicit_max_ttl.unwrap_or(0),
        role.map_or(0, |r| r.token_explicit_max_ttl),
        "Explicit max TTL",
        &mut warnings,
    );
    let max_ttl = role.map_or(MAX_TTL_SECS, TokenRole::max_ttl);
    let asked_ttl = req.ttl.filter(|t| *t > 0).or_else(|| role.map(|r| r.token_ttl).filter(|t| *t > 0));
    let mut ttl = if period > 0 {
        period
    } else {
        match asked_ttl {
            Some(t) => t,
            // A root token made without a TTL never expires, as in Vault.
            None if is_root => 0,
            None => max_ttl,
        }
    };
    if explicit_max > 0 && (ttl == 0 || ttl > explicit_max) {
        ttl = explicit_max;
    }
    if !is_root {
        if period > max_ttl && ttl > max_ttl {
            warnings.push(format!(
                "period of {:?} exceeded the effective max_ttl of {:?}; period value is capped accordingly",
                go_duration(period),
                go_duration(max_ttl)
            ));
        }
        ttl = ttl.min(max_ttl);
    }

    let token = match &req.id {
        Some(id) if id.trim().is_empty() => return Err(invalid("token id cannot be empty")),
        Some(id) if id.contains('.') && !id.starts_with("hvs.") => {
            return Err(invalid("token IDs can not contain a '.' unless they start with \"hvs.\""));
        }
        Some(id) => id.clone(),
        None => generate_token(),
    };
    let orphan = match role {
        Some(role) => role.orphan,
        None => req.no_parent || req.orphan_endpoint,
    };
    let mut num_uses = req.num_uses;
    if let Some(limit) = role.map(|r| r.token_num_uses).filter(|l| *l > 0)
        && (num_uses == 0 || limit < num_uses)
    {
        num_uses = limit;
    }
    // A role binds its tokens to its CIDRs; a child made without a role inherits its
    // parent's, so a bound token cannot mint an unbound one. A token that never expires is
    // bound to nothing, as in Vault.
    let bound_cidrs: &[String] = match role {
        _ if ttl == 0 => &[],
        Some(role) => &role.token_bound_cidrs,
        None if orphan => &[],
        None => &parent.bound_cidrs,
    };
    let path = match role {
        Some(role) if !role.path_suffix.is_empty() => {
            format!("auth/token/create/{}/{}", role.name, role.path_suffix)
        }
        Some(role) => format!("auth/token/create/{}", role.name),
        None if req.orphan_endpoint => "auth/token/create-orphan".to_string(),
        None => "auth/token/create".to_string(),
    };
    let renewable = req.renewable.unwrap_or(true) && role.is_none_or(|r| r.renewable) && ttl > 0;
    let meta: serde_json::Map<String, serde_json::Value> = req
        .meta
        .into_iter()
        .map(|(k, v)| {
            let text = match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            (k, serde_json::Value::String(text))
        })
        .collect();
    let row = TokenRow {
        hash: store.hasher().hash(&token),
        accessor: generate_accessor(),
        policies: serde_json::to_string(&policies)
            .map_err(|source| AuthError::Encode { what: "token policies", source })?,
        display_name: display_name(req.display_name.as_deref()),
        meta: serde_json::Value::Object(meta).to_string(),
        created_at: now_ms,
        expire_at: (ttl > 0).then(|| now_ms.saturating_add(ttl.saturating_mul(1000))),
        parent: if orphan { None } else { Some(parent.accessor.clone()) },
        orphan: i64::from(orphan),
        ttl,
        explicit_max_ttl: explicit_max,
        period,
        num_uses,
        renewable: i64::from(renewable),
        path,
        last_renewal: None,
        role: role.map(|r| r.name.clone()),
        bound_cidrs: serde_json::to_string(bound_cidrs)
            .map_err(|source| AuthError::Encode { what: "token bound_cidrs", source })?,
        ..TokenRow::default()
    };
    tokens::insert(store.pool(), &row, true).await?;
    // With a given id, an existing token of that id is not replaced.
    if tokens::get_by_accessor(store.pool(), &row.accessor).await?.is_none() {
        return Err(invalid("cannot create a token with a duplicate ID"));
    }
    Ok(Created { token, row, policies, warnings })
}

/// Seconds as Go prints a `time.Duration` (`768h0m0s`), for Vault's warnings.
fn go_duration(secs: i64) -> String {
    format_go_duration(secs.max(0).unsigned_abs())
}

/// The outcome of a renewal.
#[derive(Debug, Clone)]
pub struct Renewed {
    pub ttl: i64,
    pub expire_at: i64,
    /// Vault's warning when the TTL was cut to the token's maximum.
    pub warning: Option<String>,
}

/// Renews a token by `increment` seconds (0: its original TTL), within its maximum: the
/// explicit max TTL or the mount's, counted from creation. Periodic tokens get their period.
///
/// A login's token renews by `login`: its auth role's settings and its mount's tuning as they
/// are now (the caller reads them; a token whose role is gone is not renewed).
pub async fn renew(
    store: &Store,
    row: &TokenRow,
    increment: i64,
    now_ms: i64,
    login: Option<&crate::login::RenewLimits>,
) -> Result<Renewed, AuthError> {
    if row.renewable == 0 || row.expire_at.is_none() {
        return Err(invalid("lease is not renewable"));
    }
    if row.auth_mount.is_some() && login.is_none() {
        return Err(AuthError::LoginRoleGone(row.auth_role.clone().unwrap_or_default()));
    }
    // A role's token renews by the role as it is now (its period may have changed since), and
    // not at all once the role is gone, as in Vault. Its explicit max TTL stays a hard cap:
    // a role's later, longer one does not lift it (Vault's would), a shorter one lowers it.
    let (period, explicit_max_ttl, max_ttl) = match (&row.role, login) {
        (_, Some(limits)) => {
            let f = &limits.fields;
            let explicit = match (row.explicit_max_ttl, f.token_explicit_max_ttl) {
                (0, max) | (max, 0) => max,
                (token, role) => token.min(role),
            };
            let (_, max, _) = crate::login::ttls(f, limits.mount_default_ttl, limits.mount_max_ttl);
            (f.token_period, explicit, max)
        }
        (None, None) => (row.period, row.explicit_max_ttl, MAX_TTL_SECS),
        (Some(name), None) => {
            let role = load_role(store, name).await?.ok_or_else(|| AuthError::TokenRoleGone(name.clone()))?;
            let explicit = match (row.explicit_max_ttl, role.token_explicit_max_ttl) {
                (0, max) | (max, 0) => max,
                (token, role) => token.min(role),
            };
            (role.token_period, explicit, role.max_ttl())
        }
    };
    let mut ttl = if period > 0 {
        period
    } else if increment > 0 {
        increment
    } else {
        row.ttl
    };
    let mut warning = None;
    let max = if explicit_max_ttl > 0 {
        Some(explicit_max_ttl)
    } else if period > 0 {
        None
    } else {
        Some(max_ttl)
    };
    if period > max_ttl {
        // As Vault: a period is capped to the mount's (or the role's) maximum.
        warning = Some(format!(
            "period of {:?} exceeded the effective max_ttl of {:?}; period value is capped accordingly",
            go_duration(period),
            go_duration(max_ttl)
        ));
        ttl = ttl.min(max_ttl);
    }
    if let Some(max) = max {
        let left = (row.created_at.saturating_add(max.saturating_mul(1000)) - now_ms) / 1000;
        if left <= 0 {
            return Err(invalid("past the max TTL, cannot renew"));
        }
        if ttl > left {
            warning = Some(format!(
                "TTL of {:?} exceeded the effective max_ttl of {:?}; TTL value is capped accordingly",
                go_duration(ttl),
                go_duration(left)
            ));
            ttl = left;
        }
    }
    let expire_at = now_ms.saturating_add(ttl.saturating_mul(1000));
    tokens::set_expiry(store.pool(), &row.accessor, expire_at, now_ms).await?;
    Ok(Renewed { ttl, expire_at, warning })
}

/// The accessors of a token and all its descendants, deepest first: the order in which a
/// tree revocation removes them, so no child is ever left without its parent row while the
/// walk is cut short.
pub async fn tree(store: &Store, accessor: &str) -> Result<Vec<String>, AuthError> {
    let mut order = Vec::new();
    let mut stack = vec![(accessor.to_string(), false)];
    while let Some((acc, expanded)) = stack.pop() {
        if expanded {
            order.push(acc);
            continue;
        }
        stack.push((acc.clone(), true));
        for child in tokens::children(store.pool(), &acc).await? {
            stack.push((child, false));
        }
    }
    Ok(order)
}

/// A stored token role; `None` when there is none of that name.
pub async fn load_role(store: &Store, name: &str) -> Result<Option<TokenRole>, AuthError> {
    let Some(body) = token_roles::get(store.pool(), name).await? else {
        return Ok(None);
    };
    let mut role: TokenRole =
        serde_json::from_str(&body).map_err(|e| StoreError::Corrupt(format!("token role {name:?}: {e}")))?;
    role.name = name.to_string();
    Ok(Some(role))
}

/// Stores a token role under its name, replacing any role of that name.
pub async fn save_role(store: &Store, role: &TokenRole, now_ms: i64) -> Result<(), AuthError> {
    let body = serde_json::to_string(role).map_err(|e| StoreError::Corrupt(format!("token role: {e}")))?;
    token_roles::put(store.pool(), &role.name, &body, now_ms).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_role_and_a_request_settle_on_the_lesser_value() {
        let mut warnings = Vec::new();
        assert_eq!(lesser_of(0, 0, "Period", &mut warnings), 0);
        assert_eq!(lesser_of(60, 0, "Period", &mut warnings), 60);
        assert_eq!(lesser_of(0, 90, "Period", &mut warnings), 90);
        assert!(warnings.is_empty(), "one side alone is no conflict");
        assert_eq!(lesser_of(7200, 3600, "Explicit max TTL", &mut warnings), 3600);
        assert_eq!(
            warnings,
            [
                "Explicit max TTL specified both during creation call and in role; using the lesser value of 3600 seconds"
            ]
        );
    }

    #[test]
    fn display_names_follow_vault() {
        assert_eq!(display_name(None), "token");
        assert_eq!(display_name(Some("  ")), "token");
        assert_eq!(display_name(Some("ci pipeline/7")), "token-ci-pipeline-7");
        assert_eq!(display_name(Some("ci/")), "token-ci");
    }
}
