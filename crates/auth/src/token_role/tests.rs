//! Token role writes, policy rules and glob matching, against Vault's behaviour.

use super::*;

fn list(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn written(w: RoleWrite) -> TokenRole {
    let mut role = TokenRole::new("r");
    role.apply(w).unwrap();
    role
}

fn err(role: &TokenRole, requested: &[&str]) -> String {
    role.token_policies(&list(requested), &list(&["root"]), false).unwrap_err().to_string()
}

#[test]
fn names_follow_vaults_generic_name_pattern() {
    for ok in ["a", "ci", "ci-deploy", "v1.2", "a@b", "a_b", "A9"] {
        assert!(valid_name(ok), "{ok}");
    }
    for bad in ["", "-a", "a-", "a/b", "a b", ".a", "é"] {
        assert!(!valid_name(bad), "{bad}");
    }
}

#[test]
fn path_suffixes_are_checked_as_vault_does() {
    for ok in ["v1", "abc", "v1.2", "a-b", "team/v2", "x_y"] {
        let mut role = TokenRole::new("r");
        let result = role.apply(RoleWrite { path_suffix: Some(ok.into()), ..Default::default() });
        if ok == "v1" {
            // Go's \w[\w-.]+\w needs three characters.
            assert!(result.is_err(), "{ok}");
        } else {
            assert!(result.is_ok(), "{ok}");
        }
    }
    let mut role = TokenRole::new("r");
    let e = role.apply(RoleWrite { path_suffix: Some("a..b".into()), ..Default::default() }).unwrap_err();
    assert_eq!(e.to_string(), "error registering path suffix: path cannot contain parent references");
    let e = role.apply(RoleWrite { path_suffix: Some("!!".into()), ..Default::default() }).unwrap_err();
    assert!(e.to_string().starts_with("given role path suffix contains invalid characters"), "{e}");
    assert!(role.apply(RoleWrite { path_suffix: Some(String::new()), ..Default::default() }).is_ok());
}

#[test]
fn writes_merge_and_legacy_fields_map_to_token_fields() {
    let mut role = TokenRole::new("r");
    assert!(role.renewable, "renewable defaults to true");
    assert_eq!(role.token_type, RoleTokenType::DefaultService);
    role.apply(RoleWrite {
        allowed_policies: Some(list(&[" Dev", "ops", "dev", ""])),
        period: Some(3600),
        explicit_max_ttl: Some(7200),
        orphan: Some(true),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(role.allowed_policies, list(&["dev", "ops"]));
    assert_eq!((role.period, role.token_period), (3600, 3600));
    assert_eq!((role.explicit_max_ttl, role.token_explicit_max_ttl), (7200, 7200));

    // An update changes what it names, nothing else.
    role.apply(RoleWrite { renewable: Some(false), ..Default::default() }).unwrap();
    assert!(role.orphan && !role.renewable);
    assert_eq!(role.allowed_policies, list(&["dev", "ops"]));

    // token_period wins and clears the legacy value, with Vault's warning.
    let warnings =
        role.apply(RoleWrite { token_period: Some(60), period: Some(90), ..Default::default() }).unwrap();
    assert_eq!((role.period, role.token_period), (0, 60));
    assert_eq!(
        warnings,
        ["Both 'token_period' and deprecated 'period' value supplied, ignoring the deprecated value"]
    );

    let data = role.read_data();
    assert_eq!(data["token_type"], "default-service");
    assert_eq!(data["disallowed_policies"], json!([]));
    assert_eq!(data["token_bound_cidrs"], json!([]));
    assert!(data.get("bound_cidrs").is_none());
}

#[test]
fn invalid_writes_are_refused_with_vaults_words() {
    let refuse = |w: RoleWrite| TokenRole::new("r").apply(w).unwrap_err().to_string();
    assert_eq!(
        refuse(RoleWrite { token_type: Some(None), ..Default::default() }),
        "Invalid 'token_type' value: null"
    );
    assert_eq!(
        refuse(RoleWrite { token_type: Some(Some("weird".into())), ..Default::default() }),
        "invalid 'token_type' value \"weird\""
    );
    assert!(
        refuse(RoleWrite { token_type: Some(Some("batch".into())), ..Default::default() })
            .contains("service tokens only")
    );
    assert_eq!(
        refuse(RoleWrite { token_num_uses: Some(-1), ..Default::default() }),
        "error parsing role fields: 'token_num_uses' cannot be negative"
    );
    assert!(
        refuse(RoleWrite { token_bound_cidrs: Some(list(&["10.0.0.0/99"])), ..Default::default() })
            .starts_with("error parsing role fields: error parsing address \"10.0.0.0/99\"")
    );
    assert_eq!(
        refuse(RoleWrite { token_ttl: Some(60), token_max_ttl: Some(30), ..Default::default() }),
        "error parsing role fields: 'token_ttl' cannot be greater than 'token_max_ttl'"
    );
    let role = written(RoleWrite { token_type: Some(Some("default".into())), ..Default::default() });
    assert_eq!(role.read_data()["token_type"], "default-service");
    let role = written(RoleWrite {
        token_bound_cidrs: Some(list(&["127.0.0.1", "10.0.0.0/8"])),
        ..Default::default()
    });
    assert_eq!(role.token_bound_cidrs, list(&["127.0.0.1", "10.0.0.0/8"]));
}

#[test]
fn globs_match_like_go_glob() {
    assert!(glob_match("*", "anything"));
    assert!(glob_match("dev-*", "dev-app"));
    assert!(glob_match("*-ro", "db-ro"));
    assert!(glob_match("a*b*c", "a-x-b-y-c"));
    assert!(!glob_match("a*b*c", "a-x-c"));
    assert!(!glob_match("ab*ba", "aba"), "prefix and suffix may not overlap");
    assert!(glob_match("exact", "exact"));
    assert!(!glob_match("exact", "exactly"));
    assert!(!glob_match("", "x"));
}

#[test]
fn allowed_policies_widen_and_bound_what_a_token_gets() {
    let role = written(RoleWrite { allowed_policies: Some(list(&["dev", "ops"])), ..Default::default() });
    assert!(role.sets_policies());
    // Nothing asked: the role's allowed policies, and default.
    assert_eq!(role.token_policies(&[], &list(&["x"]), false).unwrap(), list(&["default", "dev", "ops"]));
    // A subset, not limited by the parent's policies.
    assert_eq!(role.token_policies(&list(&["OPS"]), &[], false).unwrap(), list(&["default", "ops"]));
    assert_eq!(role.token_policies(&list(&["ops"]), &[], true).unwrap(), list(&["ops"]));
    assert_eq!(
        err(&role, &["ops", "prod"]),
        r#"token policies (["default" "ops" "prod"]) must be subset of the role's allowed policies (["default" "dev" "ops"]) or glob policies ([])"#
    );
    assert!(err(&role, &["root"]).contains("must be subset"));

    let globbed = written(RoleWrite { allowed_policies_glob: Some(list(&["team-*"])), ..Default::default() });
    assert_eq!(globbed.token_policies(&list(&["team-a"]), &[], false).unwrap(), list(&["default", "team-a"]));
    assert!(err(&globbed, &["other"]).contains(r#"glob policies (["team-*"])"#));
}

#[test]
fn disallowed_policies_fence_in_what_a_token_gets() {
    let role = written(RoleWrite {
        disallowed_policies: Some(list(&["prod"])),
        disallowed_policies_glob: Some(list(&["admin-*"])),
        ..Default::default()
    });
    assert_eq!(err(&role, &["dev", "prod"]), "token policy \"prod\" is disallowed by this role");
    assert_eq!(err(&role, &["admin-x"]), "token policy \"admin-x\" is disallowed by this role");
    // Nothing asked and nothing allowed: the parent's policies, checked too.
    assert_eq!(role.token_policies(&[], &list(&["dev"]), false).unwrap(), list(&["default", "dev"]));
    assert!(role.token_policies(&[], &list(&["prod"]), false).is_err());
    // Without allowed lists, only policies the parent holds (Vault would allow any).
    let parent = list(&["default", "dev"]);
    assert_eq!(role.token_policies(&list(&["dev"]), &parent, false).unwrap(), list(&["default", "dev"]));
    assert_eq!(
        role.token_policies(&list(&["ops"]), &parent, false).unwrap_err().to_string(),
        "child policies must be subset of parent"
    );
    assert_eq!(
        role.token_policies(&list(&["ops"]), &list(&["root"]), false).unwrap(),
        list(&["default", "ops"])
    );

    // Disallowing default keeps it from being added.
    let no_default = written(RoleWrite {
        allowed_policies: Some(list(&["dev"])),
        disallowed_policies: Some(list(&["default"])),
        ..Default::default()
    });
    assert_eq!(no_default.token_policies(&[], &[], false).unwrap(), list(&["dev"]));
    let quiet = written(RoleWrite {
        allowed_policies: Some(list(&["dev"])),
        token_no_default_policy: Some(true),
        ..Default::default()
    });
    assert_eq!(quiet.token_policies(&[], &[], false).unwrap(), list(&["dev"]));
}

#[test]
fn entity_aliases_match_exactly_or_by_glob() {
    let role =
        written(RoleWrite { allowed_entity_aliases: Some(list(&["CI-*", "bot"])), ..Default::default() });
    assert_eq!(role.allowed_entity_aliases, list(&["bot", "ci-*"]));
    assert!(role.allows_entity_alias("Bot"));
    assert!(role.allows_entity_alias("ci-42"));
    assert!(!role.allows_entity_alias("human"));
}

#[test]
fn stored_roles_read_back_with_defaults_for_missing_fields() {
    let role: TokenRole = serde_json::from_str(r#"{"name":"old","orphan":true}"#).unwrap();
    assert!(role.renewable && role.orphan);
    let role = written(RoleWrite { token_max_ttl: Some(600), ..Default::default() });
    let back: TokenRole = serde_json::from_str(&serde_json::to_string(&role).unwrap()).unwrap();
    assert_eq!(back, role);
    assert_eq!(back.max_ttl(), 600);
    assert_eq!(TokenRole::new("r").max_ttl(), crate::token::MAX_TTL_SECS);
}
