//! ACL policies in Vault's syntax (HCL or JSON) and the decision they make for a request.
//!
//! A policy is a list of `path "<pattern>" { capabilities = [...] }` rules. A token's policies
//! are merged per pattern (capabilities unioned, `deny` wins), and a request path is judged
//! by the one rule that matches it best: an exact pattern, else the most specific of the
//! patterns with `+` (one path segment) or a trailing `*` (any rest), by Vault's priority
//! order. Pure logic: no storage, no I/O.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

/// A set of capabilities.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Caps(u16);

impl Caps {
    pub const NONE: Caps = Caps(0);
    pub const CREATE: Caps = Caps(1);
    pub const READ: Caps = Caps(1 << 1);
    pub const UPDATE: Caps = Caps(1 << 2);
    pub const DELETE: Caps = Caps(1 << 3);
    pub const LIST: Caps = Caps(1 << 4);
    pub const SUDO: Caps = Caps(1 << 5);
    pub const DENY: Caps = Caps(1 << 6);
    pub const PATCH: Caps = Caps(1 << 7);
    /// Vault's event subscription and snapshot recovery capabilities: accepted so policies
    /// written for Vault load unchanged, and reported back, but no keymint path asks for them.
    pub const SUBSCRIBE: Caps = Caps(1 << 8);
    pub const RECOVER: Caps = Caps(1 << 9);

    /// Names in the order Vault reports them (sorted).
    const NAMES: [(&'static str, Caps); 10] = [
        ("create", Caps::CREATE),
        ("delete", Caps::DELETE),
        ("deny", Caps::DENY),
        ("list", Caps::LIST),
        ("patch", Caps::PATCH),
        ("read", Caps::READ),
        ("recover", Caps::RECOVER),
        ("subscribe", Caps::SUBSCRIBE),
        ("sudo", Caps::SUDO),
        ("update", Caps::UPDATE),
    ];

    pub fn contains(self, other: Caps) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }

    pub fn union(self, other: Caps) -> Caps {
        Caps(self.0 | other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    fn from_name(name: &str) -> Option<Caps> {
        Caps::NAMES.iter().find(|(n, _)| *n == name).map(|(_, c)| *c)
    }

    /// Sorted capability names; `["deny"]` for a denial or nothing at all.
    pub fn names(self) -> Vec<String> {
        if self.contains(Caps::DENY) || self.is_empty() {
            return vec!["deny".into()];
        }
        Caps::NAMES.iter().filter(|(_, c)| self.contains(*c)).map(|(n, _)| (*n).to_string()).collect()
    }
}

/// Parameter constraints of a rule: name → allowed (or denied) values; an empty list means any
/// value.
pub type ParamValues = BTreeMap<String, Vec<Value>>;

/// One `path` block.
#[derive(Debug, Clone, PartialEq)]
pub struct PathRule {
    pub pattern: String,
    pub caps: Caps,
    pub allowed_parameters: Option<ParamValues>,
    pub denied_parameters: Option<ParamValues>,
    pub required_parameters: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub name: String,
    pub rules: Vec<PathRule>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("failed to parse policy: {0}")]
pub struct PolicyError(pub String);

fn bad(msg: impl Into<String>) -> PolicyError {
    PolicyError(msg.into())
}

/// The built-in policy every token gets unless created with `no_default_policy`: a token may
/// look itself up, renew and revoke itself, ask its own capabilities, and renew or look up
/// leases (whose ids it must know).
pub const DEFAULT_POLICY: &str = r#"
# Look up, renew and revoke the token itself.
path "auth/token/lookup-self" {
    capabilities = ["read"]
}
path "auth/token/renew-self" {
    capabilities = ["update"]
}
path "auth/token/revoke-self" {
    capabilities = ["update"]
}

# What may this token do at a path?
path "sys/capabilities-self" {
    capabilities = ["update"]
}

# Renew and look up leases by id.
path "sys/renew" {
    capabilities = ["update"]
}
path "sys/leases/renew" {
    capabilities = ["update"]
}
path "sys/leases/lookup" {
    capabilities = ["update"]
}
"#;

/// Parses a policy in HCL or JSON (`{"path": {"<pattern>": {...}}}`).
pub fn parse(name: &str, text: &str) -> Result<Policy, PolicyError> {
    let trimmed = text.trim_start();
    let blocks: Vec<(String, Value)> = if trimmed.starts_with('{') {
        let doc: Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        let Value::Object(top) = doc else { return Err(bad("a JSON policy is an object")) };
        let mut blocks = Vec::new();
        for (key, value) in top {
            if key != "path" {
                return Err(bad(format!("invalid key {key:?}")));
            }
            // `"path": {...}` or, as HCL's JSON form allows, a list of such objects.
            let groups = match value {
                Value::Array(items) => items,
                other => vec![other],
            };
            for group in groups {
                let Value::Object(paths) = group else {
                    return Err(bad("\"path\" must map patterns to rules"));
                };
                blocks.extend(paths);
            }
        }
        blocks
    } else {
        let body: hcl::Body = hcl::from_str(text).map_err(|e| bad(e.to_string().replace('\n', " ")))?;
        let mut blocks = Vec::new();
        for structure in body.into_inner() {
            match structure {
                hcl::Structure::Block(block) => {
                    if block.identifier.as_str() != "path" {
                        return Err(bad(format!("invalid key {:?}", block.identifier.as_str())));
                    }
                    let [label] = block.labels.as_slice() else {
                        return Err(bad("a path block takes exactly one label, the path pattern"));
                    };
                    let mut attrs = serde_json::Map::new();
                    for inner in block.body.into_inner() {
                        match inner {
                            hcl::Structure::Attribute(attr) => {
                                let value = serde_json::to_value(hcl::Value::from(attr.expr))
                                    .map_err(|e| bad(e.to_string()))?;
                                attrs.insert(attr.key.to_string(), value);
                            }
                            hcl::Structure::Block(b) => {
                                return Err(bad(format!(
                                    "invalid block {:?} in a path rule",
                                    b.identifier.as_str()
                                )));
                            }
                        }
                    }
                    blocks.push((label.as_str().to_string(), Value::Object(attrs)));
                }
                hcl::Structure::Attribute(attr) => {
                    return Err(bad(format!("invalid key {:?}", attr.key.as_str())));
                }
            }
        }
        blocks
    };

    let mut rules = Vec::with_capacity(blocks.len());
    for (pattern, body) in blocks {
        rules.push(rule(&pattern, body)?);
    }
    Ok(Policy { name: name.to_string(), rules })
}

fn rule(pattern: &str, body: Value) -> Result<PathRule, PolicyError> {
    let pattern = pattern.trim_start_matches('/').to_string();
    if let Some(star) = pattern.find('*')
        && star != pattern.len() - 1
    {
        return Err(bad(format!("path {pattern:?}: a glob (*) may only end a path")));
    }
    let Value::Object(body) = body else {
        return Err(bad(format!("path {pattern:?}: the rule must be a block")));
    };
    let mut caps = Caps::NONE;
    let mut allowed = None;
    let mut denied = None;
    let mut required = Vec::new();
    for (key, value) in body {
        match key.as_str() {
            "capabilities" => {
                let Value::Array(items) = value else {
                    return Err(bad(format!("path {pattern:?}: capabilities must be a list")));
                };
                for item in items {
                    let name = item.as_str().unwrap_or_default().to_ascii_lowercase();
                    let cap = Caps::from_name(&name)
                        .ok_or_else(|| bad(format!("path {pattern:?}: invalid capability {item}")))?;
                    caps = caps.union(cap);
                }
            }
            // The pre-0.9 shorthand.
            "policy" => {
                caps = caps.union(match value.as_str().unwrap_or_default() {
                    "deny" => Caps::DENY,
                    "read" => Caps::READ.union(Caps::LIST),
                    "write" => Caps::CREATE
                        .union(Caps::READ)
                        .union(Caps::UPDATE)
                        .union(Caps::DELETE)
                        .union(Caps::LIST)
                        .union(Caps::PATCH),
                    "sudo" => Caps::CREATE
                        .union(Caps::READ)
                        .union(Caps::UPDATE)
                        .union(Caps::DELETE)
                        .union(Caps::LIST)
                        .union(Caps::PATCH)
                        .union(Caps::SUDO),
                    other => return Err(bad(format!("path {pattern:?}: invalid policy {other:?}"))),
                });
            }
            "allowed_parameters" => allowed = Some(param_values(&pattern, &key, value)?),
            "denied_parameters" => denied = Some(param_values(&pattern, &key, value)?),
            "required_parameters" => {
                let Value::Array(items) = value else {
                    return Err(bad(format!("path {pattern:?}: required_parameters must be a list")));
                };
                required = items.iter().map(|v| v.as_str().unwrap_or_default().to_string()).collect();
            }
            // Response wrapping and control groups are not part of keymint; their limits are
            // accepted so that Vault policies load unchanged.
            "min_wrapping_ttl" | "max_wrapping_ttl" | "mfa_methods" | "control_group" => {}
            other => return Err(bad(format!("path {pattern:?}: invalid key {other:?}"))),
        }
    }
    Ok(PathRule {
        pattern,
        caps,
        allowed_parameters: allowed,
        denied_parameters: denied,
        required_parameters: required,
    })
}

fn param_values(pattern: &str, key: &str, value: Value) -> Result<ParamValues, PolicyError> {
    // HCL writes `allowed_parameters = { "ttl" = [] }`; a list of such maps is also accepted.
    let maps = match value {
        Value::Object(m) => vec![m],
        Value::Array(items) => items
            .into_iter()
            .map(|v| match v {
                Value::Object(m) => Ok(m),
                _ => Err(bad(format!("path {pattern:?}: {key} must map names to lists of values"))),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(bad(format!("path {pattern:?}: {key} must map names to lists of values"))),
    };
    let mut out = ParamValues::new();
    for map in maps {
        for (name, values) in map {
            let values = match values {
                Value::Array(v) => v,
                Value::Null => Vec::new(),
                single => vec![single],
            };
            out.entry(name.to_ascii_lowercase()).or_default().extend(values);
        }
    }
    Ok(out)
}

/// The merged rules of one pattern across a token's policies.
#[derive(Debug, Clone, Default)]
struct Merged {
    caps: Caps,
    allowed: Option<ParamValues>,
    denied: Option<ParamValues>,
    required: Vec<String>,
}

/// Merges parameter constraints: values for a name are pooled; an empty list (any value) wins.
fn merge_params(into: &mut Option<ParamValues>, from: &Option<ParamValues>) {
    let Some(from) = from else { return };
    let target = into.get_or_insert_with(ParamValues::new);
    for (name, values) in from {
        match target.get_mut(name) {
            Some(existing) if existing.is_empty() => {}
            Some(existing) if values.is_empty() => existing.clear(),
            Some(existing) => existing.extend(values.iter().cloned()),
            None => {
                target.insert(name.clone(), values.clone());
            }
        }
    }
}

/// What a token's policies allow.
#[derive(Debug, Clone, Default)]
pub struct Acl {
    root: bool,
    exact: HashMap<String, Merged>,
    wildcard: Vec<(String, Merged)>,
}

/// Why a request was refused (all are a 403 to the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No rule grants the capability (or a rule denies it).
    Capability,
    /// The path needs `sudo`, which the rule does not grant.
    Sudo,
    /// A parameter is denied, not allowed, or a required one is missing.
    Parameter(String),
}

impl Acl {
    /// The ACL of a token with these policies. The `root` policy allows everything.
    pub fn new(policies: &[Policy], root: bool) -> Acl {
        let mut merged: BTreeMap<String, Merged> = BTreeMap::new();
        for rule in policies.iter().flat_map(|p| &p.rules) {
            let m = merged.entry(rule.pattern.clone()).or_default();
            m.caps = m.caps.union(rule.caps);
            merge_params(&mut m.allowed, &rule.allowed_parameters);
            merge_params(&mut m.denied, &rule.denied_parameters);
            for r in &rule.required_parameters {
                if !m.required.contains(r) {
                    m.required.push(r.clone());
                }
            }
        }
        let mut acl = Acl { root, ..Acl::default() };
        for (pattern, mut m) in merged {
            if m.caps.contains(Caps::DENY) {
                m.caps = Caps::DENY;
            }
            if pattern.contains('+') || pattern.ends_with('*') {
                acl.wildcard.push((pattern, m));
            } else {
                acl.exact.insert(pattern, m);
            }
        }
        acl
    }

    pub fn is_root(&self) -> bool {
        self.root
    }

    /// The rule that governs `path`: the exact one, else the best-ranked wildcard match.
    fn rule_for(&self, path: &str) -> Option<&Merged> {
        if let Some(m) = self.exact.get(path) {
            return Some(m);
        }
        self.wildcard
            .iter()
            .filter(|(pattern, _)| pattern_matches(pattern, path))
            .max_by(|(a, _), (b, _)| priority(a).cmp(&priority(b)))
            .map(|(_, m)| m)
    }

    /// Capability names at `path`, as `sys/capabilities-self` reports them.
    pub fn capabilities(&self, path: &str) -> Vec<String> {
        if self.root {
            return vec!["root".into()];
        }
        self.rule_for(path.trim_start_matches('/')).map_or(Caps::NONE, |m| m.caps).names()
    }

    /// Whether a request needing `need` (and `sudo` when the path is a root path) at `path`,
    /// with these parameters, is allowed. Parameter constraints apply to create and update.
    pub fn check(&self, path: &str, need: Caps, sudo: bool, params: &[(&str, &Value)]) -> Result<(), Denied> {
        if self.root {
            return Ok(());
        }
        let rule = self.rule_for(path).ok_or(Denied::Capability)?;
        if rule.caps.contains(Caps::DENY) || !rule.caps.contains(need) {
            return Err(Denied::Capability);
        }
        if sudo && !rule.caps.contains(Caps::SUDO) {
            return Err(Denied::Sudo);
        }
        // As Vault does: reads too, so a policy can bound the query of `GET aws/creds/x?ttl=…`.
        if [Caps::READ, Caps::CREATE, Caps::UPDATE, Caps::PATCH].iter().any(|c| need.contains(*c)) {
            check_params(rule, params)?;
        }
        Ok(())
    }
}

fn check_params(rule: &Merged, params: &[(&str, &Value)]) -> Result<(), Denied> {
    if let Some(denied) = &rule.denied {
        for (name, value) in params {
            let name = name.to_ascii_lowercase();
            for key in [name.as_str(), "*"] {
                if let Some(values) = denied.get(key)
                    && (values.is_empty() || values.iter().any(|v| value_matches(v, value)))
                {
                    return Err(Denied::Parameter(name.clone()));
                }
            }
        }
    }
    if let Some(allowed) = rule.allowed.as_ref().filter(|a| !a.is_empty()) {
        for (name, value) in params {
            let name = name.to_ascii_lowercase();
            let values = allowed.get(&name).or_else(|| allowed.get("*"));
            match values {
                Some(values) if values.is_empty() || values.iter().any(|v| value_matches(v, value)) => {}
                _ => return Err(Denied::Parameter(name)),
            }
        }
    }
    for required in &rule.required {
        if !params.iter().any(|(name, _)| name.eq_ignore_ascii_case(required)) {
            return Err(Denied::Parameter(required.clone()));
        }
    }
    Ok(())
}

/// A policy value matches a request value when equal as text; a policy value may start or end
/// with `*` to match a suffix or prefix. A list in the request matches if every item does.
fn value_matches(policy: &Value, request: &Value) -> bool {
    if let Value::Array(items) = request {
        return !items.is_empty() && items.iter().all(|item| value_matches(policy, item));
    }
    let want = text(policy);
    let got = text(request);
    if want == "*" {
        return true;
    }
    if let Some(prefix) = want.strip_suffix('*') {
        return got.starts_with(prefix);
    }
    if let Some(suffix) = want.strip_prefix('*') {
        return got.ends_with(suffix);
    }
    want == got
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Whether `pattern` (with `+` segments and an optional trailing `*`) matches `path`.
pub fn pattern_matches(pattern: &str, path: &str) -> bool {
    let (body, glob) = match pattern.strip_suffix('*') {
        Some(body) => (body, true),
        None => (pattern, false),
    };
    let wanted: Vec<&str> = body.split('/').collect();
    let segments: Vec<&str> = path.split('/').collect();
    for (i, want) in wanted.iter().enumerate() {
        let Some(seg) = segments.get(i) else { return false };
        let last = i + 1 == wanted.len();
        if last && glob {
            return *want == "+" || seg.starts_with(want);
        }
        if *want == "+" {
            if seg.is_empty() {
                return false;
            }
        } else if want != seg {
            return false;
        }
    }
    segments.len() == wanted.len()
}

/// Vault's ranking of matching wildcard patterns, highest wins: the first wildcard later in
/// the pattern; then no trailing `*`; then fewer `+` segments; then longer; then lexically
/// greater.
fn priority(pattern: &str) -> (usize, bool, std::cmp::Reverse<usize>, usize, &str) {
    let plus_at = pattern.split('/').scan(0, |offset, seg| {
        let at = *offset;
        *offset += seg.len() + 1;
        Some((at, seg))
    });
    let first_plus = plus_at.filter(|(_, seg)| *seg == "+").map(|(at, _)| at).next();
    let first_star = pattern.ends_with('*').then(|| pattern.len() - 1);
    let first = first_plus.into_iter().chain(first_star).min().unwrap_or(pattern.len());
    let pluses = pattern.split('/').filter(|s| *s == "+").count();
    (first, !pattern.ends_with('*'), std::cmp::Reverse(pluses), pattern.len(), pattern)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn acl(text: &str) -> Acl {
        Acl::new(&[parse("p", text).unwrap()], false)
    }

    #[test]
    fn hcl_and_json_parse_alike() {
        let hcl = r#"
            path "aws/creds/deploy" { capabilities = ["read"] }
            path "aws/roles/*" {
              capabilities = ["create", "update"]
              allowed_parameters = { "credential_type" = ["iam_user"], "*" = [] }
              required_parameters = ["credential_type"]
            }
        "#;
        let json = r#"{"path": {
            "aws/creds/deploy": {"capabilities": ["read"]},
            "aws/roles/*": {"capabilities": ["create", "update"],
                            "allowed_parameters": {"credential_type": ["iam_user"], "*": []},
                            "required_parameters": ["credential_type"]}}}"#;
        let a = parse("p", hcl).unwrap();
        let b = parse("p", json).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.rules[0].caps, Caps::READ);
        assert_eq!(a.rules[1].required_parameters, vec!["credential_type".to_string()]);
    }

    #[test]
    fn bad_policies_are_refused_with_a_reason() {
        let err = |t: &str| parse("p", t).unwrap_err().0;
        assert!(err(r#"path "a" { capabilities = ["fly"] }"#).contains("invalid capability"));
        assert!(err(r#"path "a/*/b" { capabilities = ["read"] }"#).contains("glob"));
        assert!(err(r#"route "a" { capabilities = ["read"] }"#).contains("invalid key"));
        assert!(
            err("path \"a\" {\n capabilities = [\"read\"]\n colour = \"red\"\n}").contains("invalid key")
        );
        assert!(err(r#"path "a" { capabilities = "#).starts_with(""));
        assert!(err(r#"{"path": 3}"#).contains("map patterns"));
        assert!(err(r#"path { capabilities = ["read"] }"#).contains("one label"));
    }

    #[test]
    fn the_legacy_policy_shorthand_still_works() {
        let a = acl(r#"path "secret/*" { policy = "write" }"#);
        assert_eq!(a.capabilities("secret/x"), ["create", "delete", "list", "patch", "read", "update"]);
        let a = acl(r#"path "secret/*" { policy = "deny" }"#);
        assert_eq!(a.capabilities("secret/x"), ["deny"]);
    }

    #[test]
    fn patterns_match_segments_and_globs() {
        assert!(pattern_matches("aws/creds/deploy", "aws/creds/deploy"));
        assert!(!pattern_matches("aws/creds/deploy", "aws/creds/deploy2"));
        assert!(pattern_matches("aws/creds/*", "aws/creds/deploy"));
        assert!(pattern_matches("aws/creds/*", "aws/creds/"));
        assert!(!pattern_matches("aws/creds/*", "aws/creds"));
        assert!(pattern_matches("aws/creds/dep*", "aws/creds/deploy/x"));
        assert!(pattern_matches("aws/+/deploy", "aws/sts/deploy"));
        assert!(!pattern_matches("aws/+/deploy", "aws/sts/x/deploy"));
        assert!(!pattern_matches("aws/+/deploy", "aws//deploy"));
        assert!(pattern_matches("+/creds/*", "team-a/creds/x"));
        assert!(pattern_matches("*", "anything/at/all"));
    }

    #[test]
    fn the_most_specific_pattern_wins_as_in_vault() {
        let a = acl(r#"
            path "aws/*"               { capabilities = ["read", "list"] }
            path "aws/creds/*"         { capabilities = ["deny"] }
            path "aws/creds/deploy"    { capabilities = ["read"] }
            path "aws/+/ci"            { capabilities = ["update"] }
            path "aws/+/ci*"           { capabilities = ["delete"] }
            path "+/creds/ci"          { capabilities = ["create"] }
        "#);
        // Exact beats everything.
        assert_eq!(a.capabilities("aws/creds/deploy"), ["read"]);
        // The later wildcard wins: aws/creds/* (at 10) over aws/* (at 4).
        assert_eq!(a.capabilities("aws/creds/other"), ["deny"]);
        assert_eq!(a.capabilities("aws/roles/x"), ["list", "read"]);
        // aws/+/ci and aws/+/ci* tie on the first wildcard; no trailing * wins.
        assert_eq!(a.capabilities("aws/sts/ci"), ["update"]);
        // aws/+/ci* and aws/* tie on the first wildcard and both end in *: fewer + wins.
        assert_eq!(a.capabilities("aws/sts/ci2"), ["list", "read"]);
        // Five patterns match; aws/creds/* has its first wildcard latest (10) and wins.
        assert_eq!(a.capabilities("aws/creds/ci"), ["deny"]);
        // Without it, +/creds/ci has its wildcard first (0), so aws/+/ci (4) wins.
        let b = acl(r#"
            path "aws/+/ci"   { capabilities = ["update"] }
            path "+/creds/ci" { capabilities = ["create"] }
        "#);
        assert_eq!(b.capabilities("aws/creds/ci"), ["update"]);
        assert_eq!(a.capabilities("other/x"), ["deny"]);
    }

    #[test]
    fn policies_merge_per_pattern_and_deny_wins() {
        let p1 = parse("a", r#"path "aws/creds/*" { capabilities = ["read"] }"#).unwrap();
        let p2 = parse("b", r#"path "aws/creds/*" { capabilities = ["list"] }"#).unwrap();
        let p3 = parse("c", r#"path "aws/creds/*" { capabilities = ["deny"] }"#).unwrap();
        assert_eq!(Acl::new(&[p1.clone(), p2.clone()], false).capabilities("aws/creds/x"), ["list", "read"]);
        assert_eq!(Acl::new(&[p1, p2, p3], false).capabilities("aws/creds/x"), ["deny"]);
    }

    #[test]
    fn checks_need_the_capability_sudo_and_allowed_parameters() {
        let a = acl(r#"
            path "aws/creds/deploy" {
                capabilities = ["read", "update"]
                allowed_parameters = { "ttl" = ["15m", "1h"] }
            }
            path "aws/roles/*" {
                capabilities = ["create", "update"]
                denied_parameters = { "policy_arns" = [] }
            }
            path "sys/leases/revoke-prefix/*" { capabilities = ["update"] }
            path "sys/leases/revoke-force/*"  { capabilities = ["update", "sudo"] }
            path "aws/sts/*" {
                capabilities = ["update"]
                required_parameters = ["ttl"]
                allowed_parameters = { "*" = [] }
            }
        "#);
        let ttl = json!("1h");
        let long = json!("12h");
        assert_eq!(a.check("aws/creds/deploy", Caps::READ, false, &[]), Ok(()));
        assert_eq!(a.check("aws/creds/deploy", Caps::DELETE, false, &[]), Err(Denied::Capability));
        assert_eq!(a.check("aws/creds/deploy", Caps::UPDATE, false, &[("ttl", &ttl)]), Ok(()));
        // Reads are held to the parameter rules too (the query of GET aws/creds/…), as in Vault.
        assert_eq!(
            a.check("aws/creds/deploy", Caps::READ, false, &[("ttl", &long)]),
            Err(Denied::Parameter("ttl".into()))
        );
        assert_eq!(a.check("aws/creds/deploy", Caps::READ, false, &[("ttl", &ttl)]), Ok(()));
        assert_eq!(
            a.check("aws/creds/deploy", Caps::UPDATE, false, &[("ttl", &long)]),
            Err(Denied::Parameter("ttl".into()))
        );
        assert_eq!(
            a.check("aws/creds/deploy", Caps::UPDATE, false, &[("role_arn", &ttl)]),
            Err(Denied::Parameter("role_arn".into()))
        );
        let arns = json!(["arn:aws:iam::aws:policy/AdministratorAccess"]);
        assert_eq!(
            a.check("aws/roles/x", Caps::UPDATE, false, &[("policy_arns", &arns)]),
            Err(Denied::Parameter("policy_arns".into()))
        );
        assert_eq!(a.check("aws/roles/x", Caps::CREATE, false, &[("user_path", &ttl)]), Ok(()));
        assert_eq!(a.check("sys/leases/revoke-prefix/aws/", Caps::UPDATE, true, &[]), Err(Denied::Sudo));
        assert_eq!(a.check("sys/leases/revoke-force/aws/", Caps::UPDATE, true, &[]), Ok(()));
        assert_eq!(a.check("aws/sts/x", Caps::UPDATE, false, &[]), Err(Denied::Parameter("ttl".into())));
        assert_eq!(a.check("aws/sts/x", Caps::UPDATE, false, &[("ttl", &ttl), ("x", &ttl)]), Ok(()));
        assert_eq!(Acl::new(&[], true).check("anything", Caps::SUDO, true, &[]), Ok(()));
        assert_eq!(Acl::new(&[], true).capabilities("x"), ["root"]);
    }

    #[test]
    fn vaults_newer_capabilities_load() {
        let a = acl(r#"path "sys/events/*" { capabilities = ["subscribe", "read", "recover"] }"#);
        assert_eq!(a.capabilities("sys/events/x"), ["read", "recover", "subscribe"]);
        assert_eq!(a.check("sys/events/x", Caps::UPDATE, false, &[]), Err(Denied::Capability));
    }

    #[test]
    fn value_globs_match_prefixes_and_suffixes() {
        assert!(value_matches(&json!("deploy-*"), &json!("deploy-prod")));
        assert!(value_matches(&json!("*-prod"), &json!("deploy-prod")));
        assert!(!value_matches(&json!("deploy-*"), &json!("ci")));
        assert!(value_matches(&json!(300), &json!("300")));
        assert!(value_matches(&json!("a"), &json!(["a", "a"])));
        assert!(!value_matches(&json!("a"), &json!(["a", "b"])));
    }

    /// Random soup of HCL and JSON pieces: parsing answers Ok or a reason, never panics, and
    /// whatever parses gives an ACL that answers.
    #[test]
    fn arbitrary_input_never_panics() {
        use rand::{Rng, SeedableRng};
        const PIECES: &[&str] = &[
            "path",
            " ",
            "\n",
            "\"",
            "{",
            "}",
            "[",
            "]",
            "=",
            ",",
            "capabilities",
            "\"read\"",
            "\"deny\"",
            "\"sudo\"",
            "*",
            "+",
            "/",
            "aws",
            "allowed_parameters",
            "denied_parameters",
            "required_parameters",
            "policy",
            "\"write\"",
            "#",
            "//",
            "/*",
            "*/",
            ":",
            "null",
            "true",
            "1",
            "\"\"",
            "\\",
            "é",
            "\u{0}",
        ];
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x6b65796d696e74);
        for _ in 0..20_000 {
            let len = rng.random_range(0..40);
            let text: String = (0..len).map(|_| PIECES[rng.random_range(0..PIECES.len())]).collect();
            if let Ok(policy) = parse("fuzz", &text) {
                let acl = Acl::new(&[policy], false);
                let _ = acl.capabilities("aws/creds/x");
                let _ = acl.check("aws/creds/x", Caps::UPDATE, true, &[("ttl", &json!("1h"))]);
            }
        }
    }

    #[test]
    fn the_default_policy_parses() {
        let a = Acl::new(&[parse("default", DEFAULT_POLICY).unwrap()], false);
        assert_eq!(a.capabilities("auth/token/lookup-self"), ["read"]);
        assert_eq!(a.capabilities("sys/leases/renew"), ["update"]);
        assert_eq!(a.capabilities("aws/creds/x"), ["deny"]);
    }
}
