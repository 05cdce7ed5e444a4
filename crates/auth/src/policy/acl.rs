//! A token's merged policies and the decision they make for one request: the capability, the
//! `sudo` of root paths, and parameter constraints.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use super::glob::{pattern_matches, priority};
use super::{Caps, ParamValues, Policy};

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

    /// The patterns whose merged rule grants something (not `deny`, some capability).
    pub(super) fn granting_patterns(&self) -> impl Iterator<Item = &str> {
        let grants = |m: &Merged| !m.caps.is_empty() && !m.caps.contains(Caps::DENY);
        let exact = self.exact.iter().filter(move |(_, m)| grants(m)).map(|(p, _)| p.as_str());
        let wildcard = self.wildcard.iter().filter(move |(_, m)| grants(m)).map(|(p, _)| p.as_str());
        exact.chain(wildcard)
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::policy::parse;

    fn acl(text: &str) -> Acl {
        Acl::new(&[parse("p", text).unwrap()], false)
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
}
