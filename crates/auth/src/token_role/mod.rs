//! Token roles (`auth/token/roles/<name>`), Vault's templates for `auth/token/create/<name>`.
//!
//! A role decides what tokens created against it get, whoever creates them: policies beyond
//! the creator's own (`allowed_policies`, the reason roles exist) or fenced in
//! (`disallowed_policies`), orphan status, a period, an explicit max TTL, a use limit and the
//! addresses the token may be used from. Writes merge as Vault's do: a new role starts from
//! the defaults, an existing one changes only in the fields given. Everything here is pure;
//! the role is kept as JSON by `keymint_store::token_roles`.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::cidr::Cidr;
use crate::{AuthError, DEFAULT_POLICY_NAME, ROOT_POLICY};

/// The token type a role asks for. keymint issues service tokens only, so the batch kinds are
/// refused when the role is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RoleTokenType {
    /// The creator's `type` decides, service when it gives none (Vault's default).
    #[default]
    DefaultService,
    /// Always service, whatever the creator asks for.
    Service,
}

impl RoleTokenType {
    pub fn as_str(self) -> &'static str {
        match self {
            RoleTokenType::DefaultService => "default-service",
            RoleTokenType::Service => "service",
        }
    }
}

/// A stored token role. Durations are whole seconds; lists are normalised when written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TokenRole {
    pub name: String,
    pub allowed_policies: Vec<String>,
    pub disallowed_policies: Vec<String>,
    pub allowed_policies_glob: Vec<String>,
    pub disallowed_policies_glob: Vec<String>,
    /// Kept and read back; keymint has no identity entities, so at creation it only checks a
    /// given `entity_alias` against it.
    pub allowed_entity_aliases: Vec<String>,
    pub orphan: bool,
    pub renewable: bool,
    pub path_suffix: String,
    /// The legacy `period` as written (read back under that name); `token_period` is the one
    /// that applies.
    pub period: i64,
    pub token_period: i64,
    /// The legacy `explicit_max_ttl` as written; `token_explicit_max_ttl` applies.
    pub explicit_max_ttl: i64,
    pub token_explicit_max_ttl: i64,
    pub token_type: RoleTokenType,
    /// The legacy `bound_cidrs` as written; `token_bound_cidrs` applies.
    pub bound_cidrs: Vec<String>,
    pub token_bound_cidrs: Vec<String>,
    pub token_no_default_policy: bool,
    pub token_num_uses: i64,
    /// keymint's: the TTL of tokens created without a `ttl` (0: the mount's, 32 days).
    pub token_ttl: i64,
    /// keymint's: the most a token may live, renewals included (0: the mount's, 32 days).
    pub token_max_ttl: i64,
}

impl Default for TokenRole {
    fn default() -> Self {
        TokenRole {
            name: String::new(),
            allowed_policies: Vec::new(),
            disallowed_policies: Vec::new(),
            allowed_policies_glob: Vec::new(),
            disallowed_policies_glob: Vec::new(),
            allowed_entity_aliases: Vec::new(),
            orphan: false,
            renewable: true,
            path_suffix: String::new(),
            period: 0,
            token_period: 0,
            explicit_max_ttl: 0,
            token_explicit_max_ttl: 0,
            token_type: RoleTokenType::DefaultService,
            bound_cidrs: Vec::new(),
            token_bound_cidrs: Vec::new(),
            token_no_default_policy: false,
            token_num_uses: 0,
            token_ttl: 0,
            token_max_ttl: 0,
        }
    }
}

/// The fields of one write to `auth/token/roles/<name>`; `None`: not given. Named as the API
/// names them: the api crate fills it from the route's schema.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct RoleWrite {
    pub allowed_policies: Option<Vec<String>>,
    pub disallowed_policies: Option<Vec<String>>,
    pub allowed_policies_glob: Option<Vec<String>>,
    pub disallowed_policies_glob: Option<Vec<String>>,
    pub allowed_entity_aliases: Option<Vec<String>>,
    pub orphan: Option<bool>,
    pub renewable: Option<bool>,
    pub path_suffix: Option<String>,
    pub period: Option<i64>,
    pub token_period: Option<i64>,
    pub explicit_max_ttl: Option<i64>,
    pub token_explicit_max_ttl: Option<i64>,
    /// `Some(None)`: given as JSON null, which Vault refuses. Set by the caller from the
    /// request as sent: coercion would read a null as "".
    #[serde(skip)]
    pub token_type: Option<Option<String>>,
    pub bound_cidrs: Option<Vec<String>>,
    pub token_bound_cidrs: Option<Vec<String>>,
    pub token_no_default_policy: Option<bool>,
    pub token_num_uses: Option<i64>,
    pub token_ttl: Option<i64>,
    pub token_max_ttl: Option<i64>,
}

fn invalid(msg: impl Into<String>) -> AuthError {
    AuthError::InvalidTokenRole(msg.into())
}

fn policy_refused(msg: impl Into<String>) -> AuthError {
    AuthError::PolicyNotAllowed(msg.into())
}

/// Vault's `GenericNameRegex`: word characters, `-`, `.` and `@`, starting and ending with a
/// word character (ASCII, as Go's `\w`).
pub fn valid_name(name: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let (Some(first), Some(last)) = (name.chars().next(), name.chars().last()) else {
        return false;
    };
    word(first) && word(last) && name.chars().all(|c| word(c) || matches!(c, '-' | '.' | '@'))
}

/// Vault's check of a path suffix: Go's unanchored match of `\w[\w-.]+\w`, so the suffix must
/// hold a run of at least three such characters that starts and ends with a word character.
fn path_suffix_ok(suffix: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    suffix.as_bytes().split(|b| !(word(*b) || *b == b'-' || *b == b'.')).any(|run| {
        match (run.iter().position(|b| word(*b)), run.iter().rposition(|b| word(*b))) {
            (Some(first), Some(last)) => last >= first + 2,
            _ => false,
        }
    })
}

/// Vault's `policyutil.SanitizePolicies`: trimmed, lowercased, without empties, sorted and
/// deduplicated; `root` alone if present; `default` added when `add_default`.
pub fn sanitize_policies(policies: &[String], add_default: bool) -> Vec<String> {
    let mut out: Vec<String> =
        policies.iter().map(|p| p.trim().to_lowercase()).filter(|p| !p.is_empty()).collect();
    if out.iter().any(|p| p == ROOT_POLICY) {
        return vec![ROOT_POLICY.to_string()];
    }
    if add_default && !out.iter().any(|p| p == DEFAULT_POLICY_NAME) {
        out.push(DEFAULT_POLICY_NAME.to_string());
    }
    out.sort();
    out.dedup();
    out
}

/// Vault's `strutil.RemoveDuplicates(items, true)`: trimmed, lowercased, without empties,
/// sorted and deduplicated.
fn dedup_lower(items: &[String]) -> Vec<String> {
    let mut out: Vec<String> =
        items.iter().map(|s| s.trim().to_lowercase()).filter(|s| !s.is_empty()).collect();
    out.sort();
    out.dedup();
    out
}

/// go-glob's `Glob`: `*` matches any run of characters, and nothing else is special.
pub fn glob_match(pattern: &str, subject: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    let [first, middle @ .., last] = parts.as_slice() else {
        return subject == pattern;
    };
    let Some(mut rest) = subject.strip_prefix(first) else {
        return false;
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

fn any_glob(patterns: &[String], subject: &str) -> bool {
    patterns.iter().any(|p| glob_match(p, subject))
}

/// A Go `%q` of a string list: `["a" "b"]`.
fn go_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", quoted.join(" "))
}

impl TokenRole {
    /// A role that does not exist yet: Vault's defaults.
    pub fn new(name: &str) -> TokenRole {
        TokenRole { name: name.to_string(), ..TokenRole::default() }
    }

    /// Applies a write (Vault's `tokenStoreRoleCreateUpdate`): only the fields given change.
    /// Returns Vault's warnings; on an error the role is left half-changed and must not be
    /// stored.
    pub fn apply(&mut self, w: RoleWrite) -> Result<Vec<String>, AuthError> {
        let mut warnings = Vec::new();
        if let Some(orphan) = w.orphan {
            self.orphan = orphan;
        }
        if let Some(renewable) = w.renewable {
            self.renewable = renewable;
        }
        if let Some(suffix) = w.path_suffix {
            if !suffix.is_empty() && !path_suffix_ok(&suffix) {
                return Err(invalid(
                    r"given role path suffix contains invalid characters; must match \w[\w-.]+\w",
                ));
            }
            self.path_suffix = suffix;
        }
        if self.path_suffix.contains("..") {
            return Err(invalid("error registering path suffix: path cannot contain parent references"));
        }
        if let Some(p) = w.allowed_policies {
            self.allowed_policies = sanitize_policies(&p, false);
        }
        if let Some(p) = w.disallowed_policies {
            self.disallowed_policies = dedup_lower(&p);
        }
        if let Some(p) = w.allowed_policies_glob {
            self.allowed_policies_glob = sanitize_policies(&p, false);
        }
        if let Some(p) = w.disallowed_policies_glob {
            self.disallowed_policies_glob = dedup_lower(&p);
        }

        let parse_cidrs = |given: &[String], field: &str| -> Result<Vec<String>, AuthError> {
            given
                .iter()
                .filter(|c| !c.trim().is_empty())
                .map(|c| Cidr::parse(c).map(|c| c.to_string()))
                .collect::<Result<_, _>>()
                .map_err(|e| invalid(format!("error parsing {field}: {e}")))
        };
        match (w.token_bound_cidrs, w.bound_cidrs) {
            (Some(cidrs), legacy) => {
                self.token_bound_cidrs = parse_cidrs(&cidrs, "role fields")?;
                self.bound_cidrs.clear();
                if legacy.is_some() {
                    warnings.push(
                        "Both 'token_bound_cidrs' and deprecated 'bound_cidrs' value supplied, ignoring the deprecated value"
                            .to_string(),
                    );
                }
            }
            (None, Some(legacy)) => {
                self.bound_cidrs = parse_cidrs(&legacy, "bound_cidrs")?;
                self.token_bound_cidrs = self.bound_cidrs.clone();
            }
            (None, None) => {}
        }
        if let Some(no_default) = w.token_no_default_policy {
            self.token_no_default_policy = no_default;
        }
        if let Some(uses) = w.token_num_uses {
            if uses < 0 {
                return Err(invalid("error parsing role fields: 'token_num_uses' cannot be negative"));
            }
            self.token_num_uses = uses;
        }
        if let Some(ttl) = w.token_ttl {
            self.token_ttl = ttl;
        }
        if let Some(max) = w.token_max_ttl {
            self.token_max_ttl = max;
        }
        if self.token_ttl > 0 && self.token_max_ttl > 0 && self.token_ttl > self.token_max_ttl {
            return Err(invalid(
                "error parsing role fields: 'token_ttl' cannot be greater than 'token_max_ttl'",
            ));
        }
        match w.token_type {
            None => {}
            Some(None) => return Err(invalid("Invalid 'token_type' value: null")),
            Some(Some(kind)) => {
                self.token_type = match kind.as_str() {
                    "service" => RoleTokenType::Service,
                    // Vault's docs offer `default`; its role endpoint spells it default-service.
                    "default-service" | "default" => RoleTokenType::DefaultService,
                    "batch" | "default-batch" => {
                        return Err(invalid(format!(
                            "keymint issues service tokens only; token_type {kind:?} is not supported"
                        )));
                    }
                    _ => return Err(invalid(format!("invalid 'token_type' value {kind:?}"))),
                };
            }
        }

        // The token_ fields win over the deprecated ones; the deprecated value is kept only to
        // be read back as it was written.
        merge_deprecated(
            ("token_period", w.token_period, &mut self.token_period),
            ("period", w.period, &mut self.period),
            &mut warnings,
        );
        merge_deprecated(
            ("token_explicit_max_ttl", w.token_explicit_max_ttl, &mut self.token_explicit_max_ttl),
            ("explicit_max_ttl", w.explicit_max_ttl, &mut self.explicit_max_ttl),
            &mut warnings,
        );
        let mount_max = crate::token::MAX_TTL_SECS;
        if self.token_explicit_max_ttl > mount_max {
            warnings.push(format!(
                "Given explicit max TTL of {} is greater than system/mount allowed value of {mount_max} seconds; \
                 tokens created against this role live no longer than the latter",
                self.token_explicit_max_ttl
            ));
        }
        if let Some(aliases) = w.allowed_entity_aliases {
            self.allowed_entity_aliases = dedup_lower(&aliases);
        }
        Ok(warnings)
    }

    /// Whether the role sets policy rules of its own; without them a token created against it
    /// holds a subset of its creator's policies, as any child token.
    pub fn sets_policies(&self) -> bool {
        !(self.allowed_policies.is_empty()
            && self.disallowed_policies.is_empty()
            && self.allowed_policies_glob.is_empty()
            && self.disallowed_policies_glob.is_empty())
    }

    /// The policies of a token created against this role, when it sets policy rules (Vault's
    /// `handleCreateCommon`): the requested ones, each allowed by the role (without allowed
    /// lists: each held by the parent), or else the role's allowed policies (or else the
    /// parent's); none disallowed; `default` added unless the request, the role or the
    /// disallowed list keeps it out.
    pub fn token_policies(
        &self,
        requested: &[String],
        parent: &[String],
        no_default_policy: bool,
    ) -> Result<Vec<String>, AuthError> {
        let add_default = !no_default_policy
            && !self.token_no_default_policy
            && !self.disallowed_policies.iter().any(|p| p == DEFAULT_POLICY_NAME)
            && !any_glob(&self.disallowed_policies_glob, DEFAULT_POLICY_NAME);
        let mut policies =
            if requested.is_empty() { Vec::new() } else { sanitize_policies(requested, add_default) };
        if !self.allowed_policies.is_empty() || !self.allowed_policies_glob.is_empty() {
            let allowed = sanitize_policies(&self.allowed_policies, add_default);
            if policies.is_empty() {
                policies = allowed;
            } else {
                let globs = sanitize_policies(&self.allowed_policies_glob, false);
                if policies.iter().any(|p| !allowed.contains(p) && !any_glob(&globs, p)) {
                    return Err(policy_refused(format!(
                        "token policies ({}) must be subset of the role's allowed policies ({}) or glob policies ({})",
                        go_list(&policies),
                        go_list(&allowed),
                        go_list(&globs)
                    )));
                }
            }
        } else if policies.is_empty() {
            policies = sanitize_policies(parent, add_default);
        } else if !parent.iter().any(|p| p == ROOT_POLICY)
            && policies.iter().any(|p| p != DEFAULT_POLICY_NAME && !parent.contains(p))
        {
            // Vault lets a role with only disallowed lists hand out any other policy, held by
            // the creator or not. keymint keeps such a role's tokens to a subset of the
            // creator's policies, as without a role: only `allowed_policies` widen.
            return Err(policy_refused("child policies must be subset of parent"));
        }
        if let Some(denied) = policies
            .iter()
            .find(|p| self.disallowed_policies.contains(p) || any_glob(&self.disallowed_policies_glob, p))
        {
            return Err(policy_refused(format!("token policy {denied:?} is disallowed by this role")));
        }
        Ok(policies)
    }

    /// Whether a token created against this role may name `alias` as its entity alias.
    pub fn allows_entity_alias(&self, alias: &str) -> bool {
        let alias = alias.to_lowercase();
        self.allowed_entity_aliases.iter().any(|a| *a == alias || glob_match(a, &alias))
    }

    /// The longest a token of this role may live, renewals included, unless its explicit max
    /// TTL or period says otherwise.
    pub fn max_ttl(&self) -> i64 {
        let mount = crate::token::MAX_TTL_SECS;
        if self.token_max_ttl > 0 { self.token_max_ttl.min(mount) } else { mount }
    }

    /// `auth/token/roles/<name>` read data: Vault's keys, durations in seconds, lists as
    /// arrays (`[]` when empty), plus keymint's `token_ttl` and `token_max_ttl`.
    pub fn read_data(&self) -> Value {
        let mut data = json!({
            "allowed_entity_aliases": self.allowed_entity_aliases,
            "allowed_policies": self.allowed_policies,
            "allowed_policies_glob": self.allowed_policies_glob,
            "disallowed_policies": self.disallowed_policies,
            "disallowed_policies_glob": self.disallowed_policies_glob,
            "explicit_max_ttl": self.explicit_max_ttl,
            "name": self.name,
            "orphan": self.orphan,
            "path_suffix": self.path_suffix,
            "period": self.period,
            "renewable": self.renewable,
            "token_bound_cidrs": self.token_bound_cidrs,
            "token_explicit_max_ttl": self.token_explicit_max_ttl,
            "token_max_ttl": self.token_max_ttl,
            "token_no_default_policy": self.token_no_default_policy,
            "token_num_uses": self.token_num_uses,
            "token_period": self.token_period,
            "token_ttl": self.token_ttl,
            "token_type": self.token_type.as_str(),
        });
        if !self.bound_cidrs.is_empty() {
            data["bound_cidrs"] = json!(self.bound_cidrs);
        }
        data
    }
}

/// A `token_` field and the deprecated name of the same setting, as Vault merges them: the
/// new one wins (the old one is cleared, with Vault's warning when both came); the old one
/// alone sets both.
fn merge_deprecated(
    (new_name, new, new_field): (&str, Option<i64>, &mut i64),
    (old_name, old, old_field): (&str, Option<i64>, &mut i64),
    warnings: &mut Vec<String>,
) {
    match (new, old) {
        (Some(value), old) => {
            *new_field = value;
            *old_field = 0;
            if old.is_some() {
                warnings.push(format!(
                    "Both '{new_name}' and deprecated '{old_name}' value supplied, ignoring the deprecated value"
                ));
            }
        }
        (None, Some(value)) => {
            *old_field = value;
            *new_field = value;
        }
        (None, None) => {}
    }
}

#[cfg(test)]
mod tests;
