use serde_json::json;

use super::*;

fn map(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => panic!("an object"),
    }
}

/// A GitLab CI id_token's claims (6.2), with a nested object for pointer cases.
fn gitlab() -> Map<String, Value> {
    map(json!({
        "sub": "project_path:acme/app:ref_type:branch:ref:main",
        "project_id": "42",
        "ref_protected": "true",
        "ref_type": "branch",
        "runner_id": 12,
        "ratio": 12.5,
        "whole_float": 7.0,
        "groups_direct": ["acme", "acme/ops"],
        "protected": true,
        "kubernetes.io": {"namespace": "ci", "serviceaccount": {"name": "runner"}},
        "object": {"a": 1},
    }))
}

fn check(bound: Value, kind: BoundClaimsType) -> Result<(), JwtError> {
    validate_bound_claims(&gitlab(), &map(bound), kind)
}

#[test]
fn string_mode_is_typed_equality_and_all_keys_must_match() {
    use BoundClaimsType::String as S;
    assert_eq!(check(json!({"project_id": "42", "ref_protected": "true", "ref_type": "branch"}), S), Ok(()));
    assert_eq!(
        check(json!({"project_id": "42", "ref_type": "tag"}), S).map_err(|e| e.vault_text()),
        Err(r#"error validating claims: claim "ref_type" does not match any associated bound claim values"#
            .into())
    );
    // "true" is not true, 42 is not "42".
    assert_eq!(
        check(json!({"ref_protected": true}), S),
        Err(JwtError::BoundClaimMismatch("ref_protected".into()))
    );
    assert_eq!(check(json!({"project_id": 42}), S), Err(JwtError::BoundClaimMismatch("project_id".into())));
    assert_eq!(check(json!({"protected": true}), S), Ok(()));
    assert_eq!(check(json!({"protected": "true"}), S), Err(JwtError::BoundClaimMismatch("protected".into())));
}

#[test]
fn numbers_compare_as_json_number_text() {
    use BoundClaimsType::String as S;
    assert_eq!(check(json!({"runner_id": 12}), S), Ok(()));
    assert_eq!(check(json!({"runner_id": "12"}), S), Err(JwtError::BoundClaimMismatch("runner_id".into())));
    assert_eq!(check(json!({"runner_id": 13}), S), Err(JwtError::BoundClaimMismatch("runner_id".into())));
    // An integral float claim reads as an integer; a fractional one keeps its fraction.
    assert_eq!(check(json!({"whole_float": 7}), S), Ok(()));
    assert_eq!(check(json!({"ratio": 12.5}), S), Ok(()));
    assert_eq!(check(json!({"ratio": 12}), S), Err(JwtError::BoundClaimMismatch("ratio".into())));
}

#[test]
fn lists_on_either_side_are_or() {
    use BoundClaimsType::String as S;
    assert_eq!(check(json!({"ref_type": ["tag", "branch"]}), S), Ok(()));
    assert_eq!(check(json!({"groups_direct": "acme/ops"}), S), Ok(()));
    assert_eq!(check(json!({"groups_direct": ["nope", "acme"]}), S), Ok(()));
    assert_eq!(
        check(json!({"groups_direct": ["nope", "other"]}), S),
        Err(JwtError::BoundClaimMismatch("groups_direct".into()))
    );
    // OR, not AND: binding two groups is satisfied by either one.
    assert_eq!(check(json!({"groups_direct": ["acme", "absent"]}), S), Ok(()));
}

#[test]
fn missing_and_unusable_claims() {
    use BoundClaimsType::String as S;
    assert_eq!(
        check(json!({"environment": "prod"}), S).map_err(|e| e.vault_text()),
        Err(r#"error validating claims: claim "environment" is missing"#.into())
    );
    assert_eq!(
        check(json!({"object": "x"}), S).map_err(|e| e.vault_text()),
        Err(r#"error validating claims: received claim is not a string, bool, int or list: {"a":1}"#.into())
    );
    assert_eq!(
        check(json!({"project_id": {"x": 1}}), S),
        Err(JwtError::BoundClaimBadConfig(r#"{"x":1}"#.into()))
    );
}

#[test]
fn json_pointer_keys_reach_nested_claims() {
    use BoundClaimsType::String as S;
    assert_eq!(
        check(json!({"/kubernetes.io/namespace": "ci", "/kubernetes.io/serviceaccount/name": "runner"}), S),
        Ok(())
    );
    assert_eq!(
        check(json!({"/kubernetes.io/namespace": "prod"}), S),
        Err(JwtError::BoundClaimMismatch("/kubernetes.io/namespace".into()))
    );
    assert_eq!(
        check(json!({"/kubernetes.io/pod/name": "x"}), S),
        Err(JwtError::BoundClaimMissing("/kubernetes.io/pod/name".into()))
    );
}

#[test]
fn glob_mode_star_matches_anything_including_slashes_and_colons() {
    use BoundClaimsType::Glob as G;
    assert_eq!(check(json!({"sub": "project_path:acme/*:ref_type:branch:ref:*"}), G), Ok(()));
    assert_eq!(check(json!({"sub": "project_path:acme*"}), G), Ok(()));
    assert_eq!(check(json!({"sub": "*"}), G), Ok(()));
    assert_eq!(
        check(json!({"sub": "project_path:other/*"}), G),
        Err(JwtError::BoundClaimMismatch("sub".into()))
    );
    // Only `*` is special: `?` and classes are literal, so they do not match.
    assert_eq!(check(json!({"ref_type": "branc?"}), G), Err(JwtError::BoundClaimMismatch("ref_type".into())));
    assert_eq!(
        check(json!({"ref_type": "[b]ranch"}), G),
        Err(JwtError::BoundClaimMismatch("ref_type".into()))
    );
    assert_eq!(check(json!({"ref_type": ["tag*", "br*"]}), G), Ok(()));
    assert_eq!(check(json!({"groups_direct": "acme/*"}), G), Ok(()));
    // Non-string actual values are skipped in glob mode, so a number never globs.
    assert_eq!(check(json!({"runner_id": "*"}), G), Err(JwtError::BoundClaimMismatch("runner_id".into())));
    assert_eq!(check(json!({"protected": "*"}), G), Err(JwtError::BoundClaimMismatch("protected".into())));
}

#[test]
fn glob_matching_edges() {
    for (pattern, subject, want) in [
        ("", "", true),
        ("", "a", false),
        ("abc", "abc", true),
        ("abc", "abcd", false),
        ("a*", "a", true),
        ("*c", "abc", true),
        ("a*c", "ac", true),
        ("a*a", "a", false),
        ("ab*b", "ab", false),
        ("a*b*c", "a-b-b-c", true),
        ("a*b*c", "a-c-b", false),
        ("**", "", true),
        ("repo:acme/app:ref:refs/heads/*", "repo:acme/app:ref:refs/heads/feat/x", true),
        ("repo:acme/app:ref:refs/heads/*", "repo:acme/app:environment:prod", false),
    ] {
        assert_eq!(glob_match(pattern, subject), want, "{pattern} vs {subject}");
    }
}

#[test]
fn role_write_check_of_bound_claims() {
    use BoundClaimsType::{Glob as G, String as S};
    let ok = map(json!({"a": "x", "b": ["x", "y"]}));
    assert_eq!(check_bound_claims_config(&ok, G), Ok(()));
    assert_eq!(check_bound_claims_config(&ok, S), Ok(()));
    let typed = map(json!({"runner_id": 12, "protected": true, "list": [1, "x", false]}));
    assert_eq!(check_bound_claims_config(&typed, S), Ok(()));
    assert_eq!(
        check_bound_claims_config(&map(json!({"runner_id": 12})), G),
        Err("claim is not a string: 12".into())
    );
    assert_eq!(
        check_bound_claims_config(&map(json!({"l": ["x", true]})), G),
        Err("claim is not a string: true".into())
    );
    assert_eq!(
        check_bound_claims_config(&map(json!({"o": {"k": "v"}})), G),
        Err(r#"claim is not a string or list: {"k":"v"}"#.into())
    );
    assert_eq!(
        check_bound_claims_config(&map(json!({"o": {"k": "v"}})), S),
        Err(r#"bound claim is not a string, bool, int or list: {"k":"v"}"#.into())
    );
    assert_eq!(
        check_bound_claims_config(&map(json!({"l": [["nested"]]})), S),
        Err(r#"bound claim is not a string, bool, int or list: ["nested"]"#.into())
    );
}
