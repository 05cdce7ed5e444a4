//! The table against the dispatcher: every operation the dispatcher serves (a sample of each
//! route below, read off `request`, `sys`, `leases`, `policies`, `audit`, `tokens` and `aws`)
//! finds its route, with the operation and the `sudo` requirement the dispatcher applies; every
//! route has a sample; the AWS and token-role routes list exactly the fields their handlers know.
//! (The black-box tests in tests/blackbox/openapi.rs check the other direction: every operation
//! of the generated document is served.)

use std::collections::BTreeSet;

use super::*;
use crate::request::Operation::{Delete as D, List as L, Read as R, Update as U};

/// (operation, path after `/v1/` as the dispatcher sees it, expected route pattern).
const SAMPLES: &[(Operation, &str, &str)] = &[
    (R, "aws/config/root", "config/root"),
    (U, "aws/config/root", "config/root"),
    (U, "aws/config/rotate-root", "config/rotate-root"),
    (R, "aws/config/lease", "config/lease"),
    (U, "aws/config/lease", "config/lease"),
    (L, "aws/roles/", "roles/?$"),
    (R, "aws/roles/deploy", "roles/NAME"),
    (U, "aws/roles/team@prod", "roles/NAME"),
    (D, "aws/roles/deploy", "roles/NAME"),
    (R, "aws/creds/deploy", "(creds|sts)/NAME"),
    (U, "aws/creds/deploy", "(creds|sts)/NAME"),
    (R, "aws/sts/deploy", "(creds|sts)/NAME"),
    (U, "aws/sts/deploy", "(creds|sts)/NAME"),
    (L, "aws/static-roles/", "static-roles/?$"),
    (R, "aws/static-roles/svc", "static-roles/NAME"),
    (U, "aws/static-roles/svc", "static-roles/NAME"),
    (D, "aws/static-roles/svc", "static-roles/NAME"),
    (R, "aws/static-creds/svc", "static-creds/NAME"),
    (R, "aws/reconcile", "reconcile"),
    (U, "aws/reconcile", "reconcile"),
    (R, "sys/health", "sys/health"),
    (R, "sys/seal-status", "sys/seal-status"),
    (R, "sys/leader", "sys/leader"),
    (R, "sys/init", "sys/init"),
    (U, "sys/init", "sys/init"),
    (R, "sys/metrics", "sys/metrics"),
    (R, "sys/internal/specs/openapi", "sys/internal/specs/openapi"),
    (R, "sys/mounts", "sys/mounts/?$"),
    (L, "sys/mounts/", "sys/mounts/?$"),
    (R, "sys/mounts/aws-prod", "sys/mounts/.+"),
    (U, "sys/mounts/aws-prod", "sys/mounts/.+"),
    (D, "sys/mounts/aws-prod", "sys/mounts/.+"),
    (R, "sys/mounts/aws/tune", "sys/mounts/.+/tune"),
    (U, "sys/mounts/aws/tune", "sys/mounts/.+/tune"),
    (R, "sys/leases", "sys/leases/?$"),
    (R, "sys/leases/count", "sys/leases/count"),
    (U, "sys/leases/lookup", "sys/leases/lookup"),
    (L, "sys/leases/lookup/aws/creds/", "sys/leases/lookup/.*"),
    (L, "sys/leases/lookup/", "sys/leases/lookup/.*"),
    (U, "sys/leases/renew", "sys/leases/renew(/.*)?"),
    (U, "sys/leases/renew/aws/creds/deploy/abc", "sys/leases/renew(/.*)?"),
    (U, "sys/leases/revoke", "sys/leases/revoke(/.*)?"),
    (U, "sys/leases/revoke/aws/creds/deploy/abc", "sys/leases/revoke(/.*)?"),
    (U, "sys/leases/revoke-prefix/aws/creds", "sys/leases/revoke-prefix/.+"),
    (U, "sys/leases/revoke-force/aws/creds", "sys/leases/revoke-force/.+"),
    (U, "sys/leases/tidy", "sys/leases/tidy"),
    (R, "sys/leases/revocation", "sys/leases/revocation"),
    (U, "sys/leases/revocation", "sys/leases/revocation"),
    (U, "sys/renew", "sys/renew(/.*)?"),
    (U, "sys/renew/aws/creds/deploy/abc", "sys/renew(/.*)?"),
    (U, "sys/revoke", "sys/revoke(/.*)?"),
    (U, "sys/revoke/aws/creds/deploy/abc", "sys/revoke(/.*)?"),
    (U, "sys/revoke-prefix/aws/creds", "sys/revoke-prefix/.+"),
    (U, "sys/revoke-force/aws/creds", "sys/revoke-force/.+"),
    (L, "sys/policies/acl/", "sys/policies/acl/?$"),
    (R, "sys/policies/acl/ops", "sys/(policy|policies/acl)/.+"),
    (U, "sys/policies/acl/ops", "sys/(policy|policies/acl)/.+"),
    (D, "sys/policies/acl/ops", "sys/(policy|policies/acl)/.+"),
    (R, "sys/policy", "sys/policy/?$"),
    (L, "sys/policy/", "sys/policy/?$"),
    (R, "sys/policy/ops", "sys/(policy|policies/acl)/.+"),
    (U, "sys/policy/ops", "sys/(policy|policies/acl)/.+"),
    (D, "sys/policy/ops", "sys/(policy|policies/acl)/.+"),
    (U, "sys/capabilities", "sys/capabilities"),
    (U, "sys/capabilities-self", "sys/capabilities-self"),
    (U, "sys/capabilities-accessor", "sys/capabilities-accessor"),
    (R, "sys/audit", "sys/audit/?$"),
    (L, "sys/audit/", "sys/audit/?$"),
    (U, "sys/audit/file", "sys/audit/.+"),
    (D, "sys/audit/file", "sys/audit/.+"),
    (U, "sys/audit-hash/file", "sys/audit-hash/.+"),
    (U, "auth/token/create", "auth/token/create(-orphan)?(/.*)?"),
    (U, "auth/token/create-orphan", "auth/token/create(-orphan)?(/.*)?"),
    (U, "auth/token/create/ci", "auth/token/create(-orphan)?(/.*)?"),
    (R, "auth/token/lookup-self", "auth/token/lookup-self"),
    (U, "auth/token/lookup-self", "auth/token/lookup-self"),
    (U, "auth/token/lookup", "auth/token/(lookup|lookup-accessor)"),
    (U, "auth/token/lookup-accessor", "auth/token/(lookup|lookup-accessor)"),
    (U, "auth/token/renew-self", "auth/token/renew-self"),
    (U, "auth/token/renew", "auth/token/renew"),
    (U, "auth/token/renew-accessor", "auth/token/renew-accessor"),
    (U, "auth/token/revoke-self", "auth/token/revoke-self"),
    (U, "auth/token/revoke", "auth/token/revoke"),
    (U, "auth/token/revoke-accessor", "auth/token/revoke-accessor"),
    (U, "auth/token/revoke-orphan", "auth/token/revoke-orphan"),
    (L, "auth/token/accessors/", "auth/token/accessors/?$"),
    (L, "auth/token/roles/", "auth/token/roles/?$"),
    (R, "auth/token/roles/ci", "auth/token/roles/.+"),
    (U, "auth/token/roles/ci", "auth/token/roles/.+"),
    (D, "auth/token/roles/ci", "auth/token/roles/.+"),
];

#[test]
fn every_served_operation_has_its_route() {
    assert_eq!(COMPILED.len(), TABLES.iter().map(|(routes, _)| routes.len()).sum::<usize>());
    for (op, path, pattern) in SAMPLES {
        let rest = path.strip_prefix("aws/");
        let found = find(path, rest).unwrap_or_else(|| panic!("{path}: no route"));
        assert_eq!(found.route.pattern, *pattern, "{path} matched the wrong route");
        let served = found.route.ops.iter().find(|o| o.op == *op);
        let served = served.unwrap_or_else(|| panic!("{path}: route {pattern} does not list {op:?}"));
        assert_eq!(served.sudo, crate::request::needs_sudo(*op, path), "{op:?} {path}: sudo");
        assert_eq!(
            found.route.unauthenticated,
            ["sys/health", "sys/seal-status", "sys/leader", "sys/init"].contains(path)
        );
    }
}

#[test]
fn every_route_and_operation_has_a_sample() {
    for (routes, _) in TABLES {
        for route in routes.iter() {
            for op in route.ops {
                let sampled = SAMPLES.iter().any(|(o, _, pattern)| *pattern == route.pattern && *o == op.op);
                assert!(sampled, "{} {:?}: no sample; is it served?", route.pattern, op.op);
            }
        }
    }
}

#[test]
fn names_match_vaults_pattern() {
    assert_eq!(
        find("aws/creds/team@prod", Some("creds/team@prod")).unwrap().route.pattern,
        "(creds|sts)/NAME"
    );
    assert!(find("aws/creds/-x", Some("creds/-x")).is_none());
    assert!(find("aws/nothing/here", Some("nothing/here")).is_none());
}

#[test]
fn routes_list_the_fields_their_handlers_know() {
    let names = |route: &Route| route.params.iter().map(|p| p.name).collect::<BTreeSet<_>>();
    for rest in
        ["config/root", "config/lease", "roles/x", "creds/x", "sts/x", "static-roles/x", "static-creds/x"]
    {
        let route = find(&format!("aws/{rest}"), Some(rest)).unwrap().route;
        let (known, _) = crate::aws::path_fields(rest);
        assert_eq!(names(route), known.iter().copied().collect(), "{rest}");
    }
    let roles = find("auth/token/roles/x", None).unwrap().route;
    assert_eq!(names(roles), keymint_auth::token_role::ROLE_FIELDS.iter().copied().collect());
}

#[test]
fn every_kind_has_a_schema() {
    const KINDS: &[&str] =
        &["string", "int", "bool", "duration", "comma-separated list", "map", "map or list of key=value"];
    for (routes, _) in TABLES {
        for param in routes.iter().flat_map(|r| r.params) {
            assert!(KINDS.contains(&param.kind), "{}: unknown kind {}", param.name, param.kind);
        }
    }
}
