//! Vault's token store rules: creating a token under a parent (policy subset, TTLs, use
//! limits, orphans), renewing one within its maximum, and the tree revocation walks.

use keymint_lease::ttl::format_go_duration;
use keymint_store::Store;
use keymint_store::tokens::{self, TokenRow};

use crate::{AuthError, DEFAULT_POLICY_NAME, Identity, ROOT_POLICY, generate_accessor, generate_token};

/// The token mount's default and maximum TTL (Vault's system default: 32 days).
pub const MAX_TTL_SECS: i64 = 2_764_800;

/// What `auth/token/create` asks for, with durations already in seconds.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub id: Option<String>,
    /// `None`: the parent's policies.
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
}

/// A created token: shown once.
#[derive(Debug, Clone)]
pub struct Created {
    pub token: String,
    pub row: TokenRow,
    pub policies: Vec<String>,
}

fn invalid(msg: impl Into<String>) -> AuthError {
    AuthError::Invalid(msg.into())
}

/// Vault's display name: `token`, or `token-` and the given name with anything but letters,
/// digits and `-` replaced by `-`.
pub fn display_name(given: Option<&str>) -> String {
    match given.map(str::trim).filter(|s| !s.is_empty()) {
        None => "token".into(),
        Some(name) => {
            let clean: String =
                name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' }).collect();
            format!("token-{clean}")
        }
    }
}

/// Creates a token as `parent` asks; the token text is in the result, never stored.
pub async fn create(
    store: &Store,
    parent: &Identity,
    req: CreateRequest,
    now_ms: i64,
) -> Result<Created, AuthError> {
    let parent_root = parent.is_root();
    if req.id.is_some() && !parent_root {
        return Err(invalid("root or sudo privileges required to specify token id"));
    }
    if req.no_parent && !req.orphan_endpoint && !parent_root {
        return Err(invalid("root or sudo privileges required to create orphan token"));
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

    let mut policies: Vec<String> = match &req.policies {
        Some(asked) => asked.iter().map(|p| p.trim().to_lowercase()).filter(|p| !p.is_empty()).collect(),
        None => parent.policies.clone(),
    };
    policies.sort();
    policies.dedup();
    if !parent_root {
        let beyond: Vec<&String> = policies
            .iter()
            .filter(|p| p.as_str() != DEFAULT_POLICY_NAME && !parent.policies.contains(p))
            .collect();
        if !beyond.is_empty() {
            return Err(invalid("child policies must be subset of parent"));
        }
    }
    let is_root = policies.iter().any(|p| p == ROOT_POLICY);
    if is_root {
        // A root token holds root alone.
        policies = vec![ROOT_POLICY.to_string()];
    } else if req.no_default_policy {
        policies.retain(|p| p != DEFAULT_POLICY_NAME);
    } else if !policies.iter().any(|p| p == DEFAULT_POLICY_NAME) {
        policies.push(DEFAULT_POLICY_NAME.to_string());
        policies.sort();
    }

    let period = req.period.unwrap_or(0);
    let explicit_max = req.explicit_max_ttl.unwrap_or(0);
    let mut ttl = if period > 0 {
        period
    } else {
        match req.ttl {
            Some(t) if t > 0 => t,
            // A root token made without a TTL never expires, as in Vault.
            _ if is_root => 0,
            _ => MAX_TTL_SECS,
        }
    };
    if explicit_max > 0 && (ttl == 0 || ttl > explicit_max) {
        ttl = explicit_max;
    }
    if !is_root && period == 0 {
        ttl = ttl.min(MAX_TTL_SECS);
    }

    let token = match &req.id {
        Some(id) if id.trim().is_empty() => return Err(invalid("token id cannot be empty")),
        Some(id) if id.contains('.') && !id.starts_with("hvs.") => {
            return Err(invalid("token IDs can not contain a '.' unless they start with \"hvs.\""));
        }
        Some(id) => id.clone(),
        None => generate_token(),
    };
    let orphan = req.no_parent || req.orphan_endpoint;
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
        policies: serde_json::to_string(&policies).map_err(|e| invalid(e.to_string()))?,
        display_name: display_name(req.display_name.as_deref()),
        meta: serde_json::Value::Object(meta).to_string(),
        created_at: now_ms,
        expire_at: (ttl > 0).then(|| now_ms + ttl * 1000),
        parent: if orphan { None } else { Some(parent.accessor.clone()) },
        orphan: i64::from(orphan),
        ttl,
        explicit_max_ttl: explicit_max,
        period,
        num_uses: req.num_uses,
        renewable: i64::from(req.renewable.unwrap_or(true) && ttl > 0),
        path: if req.orphan_endpoint { "auth/token/create-orphan" } else { "auth/token/create" }.into(),
        last_renewal: None,
    };
    tokens::insert(store.pool(), &row, true).await?;
    // With a given id, an existing token of that id is not replaced.
    if tokens::get_by_accessor(store.pool(), &row.accessor).await?.is_none() {
        return Err(invalid("cannot create a token with a duplicate ID"));
    }
    Ok(Created { token, row, policies })
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
pub async fn renew(store: &Store, row: &TokenRow, increment: i64, now_ms: i64) -> Result<Renewed, AuthError> {
    if row.renewable == 0 || row.expire_at.is_none() {
        return Err(invalid("lease is not renewable"));
    }
    let mut ttl = if row.period > 0 {
        row.period
    } else if increment > 0 {
        increment
    } else {
        row.ttl
    };
    let mut warning = None;
    let max = if row.explicit_max_ttl > 0 {
        Some(row.explicit_max_ttl)
    } else if row.period > 0 {
        None
    } else {
        Some(MAX_TTL_SECS)
    };
    if let Some(max) = max {
        let left = (row.created_at + max * 1000 - now_ms) / 1000;
        if left <= 0 {
            return Err(invalid("past the max TTL, cannot renew"));
        }
        if ttl > left {
            warning = Some(format!(
                "TTL of \"{}\" exceeded the effective max_ttl of \"{}\"; TTL value is capped accordingly",
                format_go_duration(ttl.max(0).unsigned_abs()),
                format_go_duration(left.max(0).unsigned_abs())
            ));
            ttl = left;
        }
    }
    let expire_at = now_ms + ttl * 1000;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_follow_vault() {
        assert_eq!(display_name(None), "token");
        assert_eq!(display_name(Some("  ")), "token");
        assert_eq!(display_name(Some("ci pipeline/7")), "token-ci-pipeline-7");
    }
}
