//! What a verified token's claims must say, and what a login takes from them.
//!
//! - [`validate_claims`]: registered claims (`iss`, `sub`, `aud`, time) against a role, in
//!   Vault's order (table 3.4 rows 11 to 16, time rules of 3.6).
//! - [`user_claim`], [`claim_mappings`], [`groups`]: identity (rows 17 to 19).
//! - [`validate_bound_claims`]: a role's `bound_claims` (row 20, rules of 3.5).
//!
//! Claim names starting with `/` are RFC 6901 JSON pointers wherever Vault allows them
//! ([`get_claim`]).

mod bound;
mod registered;

use std::collections::BTreeMap;

use serde_json::{Map, Value};

pub use self::bound::{BoundClaimsType, check_bound_claims_config, validate_bound_claims};
pub use self::registered::{Expected, validate_claims};
use super::JwtError;

/// A claim by name: a top-level claim, or, for a name starting with `/`, the value an RFC 6901
/// JSON pointer (`~0` for `~`, `~1` for `/`) designates. A JSON `null` counts as absent.
pub fn get_claim<'a>(claims: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    let value = match key.strip_prefix('/') {
        None => claims.get(key)?,
        Some(pointer) => {
            let (first, rest) = match pointer.find('/') {
                Some(at) => (&pointer[..at], &pointer[at..]),
                None => (pointer, ""),
            };
            let first = first.replace("~1", "/").replace("~0", "~");
            claims.get(&first)?.pointer(rest)?
        }
    };
    (!value.is_null()).then_some(value)
}

/// The alias name (row 17): the role's `user_claim`, which must be a string. It is a JSON pointer
/// only when the role sets `user_claim_json_pointer` and the name starts with `/`.
pub fn user_claim(claims: &Map<String, Value>, key: &str, json_pointer: bool) -> Result<String, JwtError> {
    // Vault looks the plain name up directly, so a JSON null there is "not a string", while the
    // pointer lookup reads null as absent.
    let value = if json_pointer { get_claim(claims, key) } else { claims.get(key) };
    match value {
        None => Err(JwtError::UserClaimMissing(key.to_string())),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(JwtError::UserClaimNotString(key.to_string())),
    }
}

/// Alias metadata from `claim_mappings` (claim → metadata key), row 18: absent claims are
/// skipped, present ones must be strings (a JSON number such as GitLab's `runner_id` is refused).
pub fn claim_mappings(
    claims: &Map<String, Value>,
    mappings: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, JwtError> {
    let mut metadata = BTreeMap::new();
    for (source, target) in mappings {
        match get_claim(claims, source) {
            None => {}
            Some(Value::String(value)) => {
                metadata.insert(target.clone(), value.clone());
            }
            Some(_) => return Err(JwtError::ClaimNotString(source.clone())),
        }
    }
    Ok(metadata)
}

/// Group alias names from `groups_claim`, row 19: a list of strings (a single string counts as a
/// one-element list); empty strings are dropped.
pub fn groups(claims: &Map<String, Value>, key: &str) -> Result<Vec<String>, JwtError> {
    let value = get_claim(claims, key).ok_or_else(|| JwtError::GroupsClaimMissing(key.to_string()))?;
    let items = match value {
        Value::Array(items) => items.as_slice(),
        Value::String(_) | Value::Bool(_) | Value::Number(_) => std::slice::from_ref(value),
        Value::Object(_) | Value::Null => return Err(JwtError::GroupsClaimNotList(key.to_string())),
    };
    let mut names = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Value::String(name) if name.is_empty() => {}
            Value::String(name) => names.push(name.clone()),
            other => return Err(JwtError::GroupNotString(other.to_string())),
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn claims(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => panic!("claims are an object"),
        }
    }

    #[test]
    fn json_pointers_reach_nested_claims_with_escapes() {
        let c = claims(json!({
            "kubernetes.io": {"namespace": "ci", "serviceaccount": {"name": "runner", "uid": "u-1"}},
            "a/b": {"c~d": 1},
            "realm_access": {"roles": ["admin", "dev"]},
            "nothing": null,
        }));
        assert_eq!(get_claim(&c, "/kubernetes.io/namespace"), Some(&json!("ci")));
        assert_eq!(get_claim(&c, "/kubernetes.io/serviceaccount/name"), Some(&json!("runner")));
        assert_eq!(get_claim(&c, "/a~1b/c~0d"), Some(&json!(1)));
        assert_eq!(get_claim(&c, "/realm_access/roles/1"), Some(&json!("dev")));
        assert_eq!(get_claim(&c, "/realm_access/missing"), None);
        assert_eq!(get_claim(&c, "/kubernetes.io/namespace/deeper"), None);
        assert_eq!(get_claim(&c, "nothing"), None);
        // Without a leading slash the name is a top-level claim, dots and all.
        assert_eq!(get_claim(&c, "kubernetes.io").map(Value::is_object), Some(true));
        assert_eq!(get_claim(&c, "kubernetes.io/namespace"), None);
    }

    #[test]
    fn user_claim_texts_and_pointer_only_when_enabled() {
        let c = claims(json!({"sub": "repo:acme/app", "runner_id": 12, "/odd": "top", "k": {"uid": "u-1"}}));
        assert_eq!(user_claim(&c, "sub", false), Ok("repo:acme/app".into()));
        assert_eq!(
            user_claim(&c, "email", false).map_err(|e| e.to_string()),
            Err(r#"claim "email" not found in token"#.into())
        );
        assert_eq!(
            user_claim(&c, "runner_id", false).map_err(|e| e.to_string()),
            Err(r#"claim "runner_id" could not be converted to string"#.into())
        );
        assert_eq!(user_claim(&c, "/k/uid", true), Ok("u-1".into()));
        assert_eq!(user_claim(&c, "/k/uid", false), Err(JwtError::UserClaimMissing("/k/uid".into())));
        assert_eq!(user_claim(&c, "/odd", false), Ok("top".into()));
        let nulls = claims(json!({"email": null, "k": {"uid": null}}));
        assert_eq!(user_claim(&nulls, "email", false), Err(JwtError::UserClaimNotString("email".into())));
        assert_eq!(user_claim(&nulls, "/k/uid", true), Err(JwtError::UserClaimMissing("/k/uid".into())));
    }

    #[test]
    fn claim_mappings_take_strings_and_skip_absent_claims() {
        let c = claims(json!({"repository": "acme/app", "ref": "refs/heads/main", "runner_id": 12,
                              "k": {"ns": "ci"}}));
        let mappings: BTreeMap<String, String> =
            [("repository", "repo"), ("ref", "ref"), ("absent", "x"), ("/k/ns", "ns")]
                .into_iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect();
        let got = claim_mappings(&c, &mappings).expect("maps");
        assert_eq!(got.get("repo").map(String::as_str), Some("acme/app"));
        assert_eq!(got.get("ns").map(String::as_str), Some("ci"));
        assert!(!got.contains_key("x"));
        let bad: BTreeMap<String, String> = [("runner_id".to_string(), "runner".to_string())].into();
        assert_eq!(
            claim_mappings(&c, &bad).map_err(|e| e.vault_text()),
            Err("error converting claim 'runner_id' to string".into())
        );
    }

    #[test]
    fn groups_are_string_lists() {
        let c = claims(json!({"groups": ["a", "", "b"], "one": "solo", "obj": {"x": 1}, "mixed": ["a", 3]}));
        assert_eq!(groups(&c, "groups"), Ok(vec!["a".to_string(), "b".to_string()]));
        assert_eq!(groups(&c, "one"), Ok(vec!["solo".to_string()]));
        assert_eq!(
            groups(&c, "missing").map_err(|e| e.vault_text()),
            Err(r#"failed to fetch groups: "missing" claim not found in token"#.into())
        );
        assert_eq!(
            groups(&c, "obj").map_err(|e| e.vault_text()),
            Err(r#""obj" claim could not be converted to string list"#.into())
        );
        assert_eq!(
            groups(&c, "mixed").map_err(|e| e.to_string()),
            Err("value 3 in groups claim could not be parsed as string".into())
        );
    }
}
