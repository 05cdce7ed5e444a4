//! The table's own consistency. Dispatch, sudo, coercion, help and OpenAPI all read the table,
//! so what is left to check is the table itself: every row reachable, Vault's root paths
//! needing `sudo`, defaults that coerce, names as Vault matches them. (The black-box tests in
//! tests/blackbox/openapi.rs check that every operation of the generated document is served.)

use super::*;
use crate::fields::RequestData;
use crate::request::Operation::{Delete as D, List as L, Read as R, Update as U};

/// The full path of a row's OpenAPI path, with each placeholder filled in.
fn example(template: &str, mount_type: Option<&str>) -> (String, Option<String>) {
    let mut filled = String::new();
    for (i, part) in template.split('{').enumerate() {
        match part.split_once('}') {
            Some((_, after)) if i > 0 => {
                filled.push_str("deploy");
                filled.push_str(after);
            }
            _ => filled.push_str(part),
        }
    }
    match mount_type {
        Some(kind) => (format!("{kind}/{filled}"), Some(filled)),
        None => (filled, None),
    }
}

/// The route of a full path, with the default mount paths of each mount type.
fn locate(path: &str) -> Option<&'static Compiled> {
    let mounts = [
        ("aws/", "aws"),
        ("auth/approle/", "approle"),
        ("auth/jwt/", "jwt"),
        ("auth/kubernetes/", "kubernetes"),
    ];
    for (prefix, kind) in mounts {
        if let Some(rest) = path.strip_prefix(prefix) {
            return find_in_mount(kind, rest);
        }
    }
    find(path)
}

#[test]
fn every_row_is_reached_by_its_own_paths() {
    assert_eq!(COMPILED.len(), TABLES.iter().map(|(routes, _)| routes.len()).sum::<usize>());
    for compiled in COMPILED.iter() {
        assert!(!compiled.route.ops.is_empty(), "{}: no operation", compiled.route.pattern);
        for template in compiled.route.paths {
            let (path, rest) = example(template, compiled.mount_type);
            let found = match (compiled.mount_type, rest.as_deref()) {
                (Some(kind), Some(rest)) => find_in_mount(kind, rest),
                _ => find(&path),
            };
            let found = found.unwrap_or_else(|| panic!("{path}: no route"));
            assert_eq!(found.route.pattern, compiled.route.pattern, "{path} is shadowed by another row");
        }
    }
}

#[test]
fn vaults_root_paths_need_sudo() {
    let sudo = [
        (L, "sys/leases/lookup/aws/creds/"),
        (U, "sys/leases/revoke-prefix/aws/creds"),
        (U, "sys/leases/revoke-force/aws/creds"),
        (U, "sys/revoke-prefix/aws/creds"),
        (U, "sys/revoke-force/aws/creds"),
        (R, "sys/audit"),
        (L, "sys/audit/"),
        (U, "sys/audit/file"),
        (D, "sys/audit/file"),
        (R, "sys/leases"),
        (R, "sys/leases/count"),
        (U, "sys/leases/revocation"),
        (U, "auth/token/revoke-orphan"),
        (L, "auth/token/accessors/"),
        // An operation a root path does not serve is still held to sudo.
        (D, "sys/leases/revoke-prefix/aws/creds"),
    ];
    let plain = [
        (U, "sys/leases/lookup"),
        (U, "sys/leases/renew"),
        (U, "sys/leases/revoke/aws/creds/deploy/abc"),
        (R, "sys/leases/revocation"),
        (U, "sys/audit-hash/file"),
        (R, "sys/mounts"),
        (U, "sys/policies/acl/ops"),
        (U, "auth/token/create"),
        (U, "auth/token/revoke"),
        (R, "aws/creds/deploy"),
        (U, "aws/config/root"),
    ];
    for (expected, cases) in [(true, &sudo[..]), (false, &plain[..])] {
        for (op, path) in cases {
            let found = locate(path).unwrap_or_else(|| panic!("{path}: no route"));
            assert_eq!(found.route.needs_sudo(*op), expected, "{op:?} {path}");
        }
    }
}

#[test]
fn rows_are_where_vault_puts_them() {
    let cases = [
        ("sys/mounts/aws/tune", "sys/mounts/.+/tune"),
        ("sys/mounts/team/aws", "sys/mounts/.+"),
        ("sys/leases/lookup", "sys/leases/lookup"),
        ("sys/leases/lookup/aws/", "sys/leases/lookup/.*"),
        ("sys/renew/aws/creds/deploy/abc", "sys/renew(/.*)?"),
        ("sys/policy", "sys/policy/?$"),
        ("sys/policy/ops", "sys/(policy|policies/acl)/.+"),
        ("auth/token/create/ci", "auth/token/create(-orphan)?(/.*)?"),
        ("auth/token/roles/", "auth/token/roles/?$"),
        ("aws/roles/", "roles/?$"),
        ("aws/sts/deploy", "(creds|sts)/NAME"),
    ];
    for (path, pattern) in cases {
        let found = locate(path).unwrap_or_else(|| panic!("{path}: no route"));
        assert_eq!(found.route.pattern, pattern, "{path}");
    }
    let unauthenticated: Vec<&str> =
        COMPILED.iter().filter(|c| c.route.unauthenticated && !c.in_mount).map(|c| c.route.pattern).collect();
    assert_eq!(
        unauthenticated,
        [
            "sys/health",
            "sys/live",
            "sys/ready",
            "sys/seal-status",
            "sys/leader",
            "sys/init",
            "sys/wrapping/lookup"
        ]
    );
    // In mounts, only the auth methods' logins need no token.
    for c in COMPILED.iter().filter(|c| c.route.unauthenticated && c.in_mount) {
        assert_eq!(c.route.pattern, "login", "{:?}", c.mount_type);
        assert_ne!(c.mount_type, Some("aws"));
    }
    let unaudited: Vec<&str> =
        COMPILED.iter().filter(|c| c.route.unaudited).map(|c| c.route.pattern).collect();
    assert_eq!(unaudited, ["sys/metrics"]);
    for c in COMPILED.iter().filter(|c| c.route.existence.is_some()) {
        assert!(
            c.route.op(U).is_some(),
            "{}: an existence check on a route that is never written",
            c.route.pattern
        );
    }
}

#[test]
fn names_match_vaults_pattern() {
    let creds = find_in_mount("aws", "creds/team@prod").unwrap();
    assert_eq!(creds.route.pattern, "(creds|sts)/NAME");
    assert_eq!(creds.name("creds/team@prod"), Some("team@prod"));
    for ok in ["deploy", "a", "team.deploy@prod", "ci-role_1"] {
        assert!(find_in_mount("aws", &format!("roles/{ok}")).is_some(), "{ok}");
    }
    for bad in ["-x", "x-", "a/b", "a b"] {
        assert!(find_in_mount("aws", &format!("roles/{bad}")).is_none(), "{bad}");
    }
    assert!(find_in_mount("aws", "nothing/here").is_none());
    // Mount paths never try the root patterns.
    assert!(find_root("aws/creds/deploy").is_none() && find_root("sys/mounts").is_some());
}

#[test]
fn defaults_coerce_as_their_kind_and_names_are_unique() {
    for c in COMPILED.iter() {
        let mut names = std::collections::BTreeSet::new();
        for param in c.route.params {
            for name in std::iter::once(param.name).chain(param.aliases.iter().copied()) {
                assert!(names.insert(name), "{}: {name} declared twice", c.route.pattern);
            }
            let Some(default) = param.default else { continue };
            let mut map = serde_json::Map::new();
            map.insert(param.name.into(), default.into());
            let data = RequestData::from_map(map);
            let coerced = match param.kind {
                Kind::String => data.get_string(param.name).map(|_| ()),
                Kind::Int => data.get_int(param.name).map(|_| ()),
                Kind::Bool => data.get_bool(param.name).map(|_| ()),
                Kind::Duration => data.get_duration_secs(param.name).map(|_| ()),
                Kind::CommaList => data.get_comma_slice(param.name).map(|_| ()),
                Kind::KvPairs => data.get_kv_pairs(param.name).map(|_| ()),
                Kind::Map => Ok(()),
            };
            assert!(coerced.is_ok(), "{}: default of {} does not coerce", c.route.pattern, param.name);
        }
    }
}

/// The writes filled with `Fields::typed` declare exactly the fields of their input struct:
/// a field added to one and not the other would be dropped or never filled.
#[test]
fn typed_writes_declare_exactly_their_input_fields() {
    use std::collections::BTreeSet;
    let declared = |rest: &str, apart: &[&str]| -> BTreeSet<String> {
        let route = find_in_mount("aws", rest).unwrap().route;
        route.params.iter().map(|p| p.name.to_string()).filter(|n| !apart.contains(&n.as_str())).collect()
    };
    let fields = |value: serde_json::Value| -> BTreeSet<String> {
        value.as_object().unwrap().keys().cloned().collect()
    };
    // The name comes from the path.
    let role = serde_json::to_value(keymint_engine::RoleInput::default()).unwrap();
    assert_eq!(declared("roles/x", &["name"]), fields(role));
    // The secrets are read apart (never serialized), and verify_connection is not stored.
    let root = serde_json::to_value(keymint_engine::RootConfigInput::default()).unwrap();
    assert_eq!(declared("config/root", &["secret_key", "session_token", "verify_connection"]), fields(root));
    // Token roles: the name comes from the path; token_type is read as sent (null or not).
    let route = find_root("auth/token/roles/x").unwrap().route;
    let token_role: BTreeSet<String> = route
        .params
        .iter()
        .map(|p| p.name.to_string())
        .filter(|n| n != "role_name" && n != "token_type")
        .collect();
    let write = serde_json::to_value(keymint_auth::token_role::RoleWrite::default()).unwrap();
    assert_eq!(token_role, fields(write));
}
