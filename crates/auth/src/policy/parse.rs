//! Reading a policy: Vault's HCL or its JSON form, into [`Policy`] rules, refusing anything
//! Vault would refuse with a reason.

use serde_json::Value;

use super::{Caps, ParamValues, PathRule, Policy, PolicyError, bad};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Acl;

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
}
