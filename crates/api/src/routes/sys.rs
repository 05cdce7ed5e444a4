//! `sys/` routes, by their full path.

use super::{Kind, Param, ROUTE, Route, delete, handler, list, p, q, raw_handler, read, update};
use crate::{audit, health, leases, policies, sys};

const LEASE_ID: Param = p("lease_id", Kind::String, "The lease (also accepted in the path).");
const RENEW_PARAMS: &[Param] =
    &[LEASE_ID, p("increment", Kind::Duration, "Requested new TTL from now; 0 for the default.")];
const REVOKE_PARAMS: &[Param] =
    &[LEASE_ID, p("sync", Kind::Bool, "Wait for the revocation (default true); false answers 202 at once.")];
const PATHS: Param = p("paths", Kind::CommaList, "The paths to report on.");
const PATH: Param = p("path", Kind::String, "One path to report on (deprecated: use paths).");
const TUNE_PARAMS: &[Param] = &[
    p(
        "default_lease_ttl",
        Kind::Duration,
        "Default lease TTL of the mount; 0 or \"system\" for the system's.",
    ),
    p("max_lease_ttl", Kind::Duration, "Longest lease TTL of the mount; 0 or \"system\" for the system's."),
    p("description", Kind::String, "Free text."),
    p("options", Kind::Map, "Stored and returned."),
];

pub(crate) const SYS_ROUTES: &[Route] = &[
    Route {
        pattern: "sys/health",
        paths: &["sys/health"],
        ops: &[read(raw_handler!(c => sys::health(&c.state, &c.req).await))],
        unauthenticated: true,
        synopsis: "Whether the server can serve: it answers 503 when the database does not.",
        params: &[q("activecode", Kind::Int, "Status code of a healthy answer (default 200).")],
        description: "Needs no token. HEAD answers the status alone.",
        ..ROUTE
    },
    Route {
        pattern: "sys/live",
        paths: &["sys/live"],
        ops: &[read(raw_handler!(c => health::live(&c.req)))],
        unauthenticated: true,
        synopsis: "Liveness: the process answers. Touches no database (keymint's, for Kubernetes).",
        params: &[],
        description: "Needs no token. HEAD answers the status alone. Never checked against \
                      x_forwarded_for_* rules: probes connect directly.",
        ..ROUTE
    },
    Route {
        pattern: "sys/ready",
        paths: &["sys/ready"],
        ops: &[read(raw_handler!(c => health::ready(&c.state, &c.req).await))],
        unauthenticated: true,
        synopsis: "Readiness: 200 while the database answers within 2s, else 503 (keymint's, for Kubernetes).",
        params: &[],
        description: "Needs no token. HEAD answers the status alone. Never checked against \
                      x_forwarded_for_* rules: probes connect directly.",
        ..ROUTE
    },
    Route {
        pattern: "sys/seal-status",
        paths: &["sys/seal-status"],
        ops: &[read(handler!(c => Ok(sys::seal_status(&c.state))))],
        unauthenticated: true,
        synopsis: "Seal status, as Vault reports it: keymint is always unsealed.",
        params: &[],
        description: "Needs no token.",
        ..ROUTE
    },
    Route {
        pattern: "sys/leader",
        paths: &["sys/leader"],
        ops: &[read(handler!(_c => Ok(sys::leader())))],
        unauthenticated: true,
        synopsis: "HA status: every keymint replica serves every request, so each is its own leader.",
        params: &[],
        description: "Needs no token.",
        ..ROUTE
    },
    Route {
        pattern: "sys/init",
        paths: &["sys/init"],
        ops: &[
            read(raw_handler!(c => sys::init_status(&c.req))),
            update(raw_handler!(c => sys::init_status(&c.req))),
        ],
        unauthenticated: true,
        synopsis: "Initialisation status: keymint is initialised from its first start.",
        params: &[],
        description: "Needs no token. A write is refused as Vault refuses a second initialisation.",
        ..ROUTE
    },
    Route {
        pattern: "sys/metrics",
        paths: &["sys/metrics"],
        ops: &[read(raw_handler!(c => sys::metrics(&c).await))],
        unaudited: true,
        synopsis: "keymint's metrics, in Prometheus text or Vault's JSON shape.",
        params: &[q("format", Kind::String, "prometheus for Prometheus text; empty or json for JSON.")],
        description: "Needs a token allowed to read sys/metrics. Scrapes are not audited.",
        ..ROUTE
    },
    Route {
        pattern: "sys/internal/specs/openapi",
        paths: &["sys/internal/specs/openapi"],
        ops: &[read(handler!(c => sys::openapi(&c).await))],
        synopsis: "An OpenAPI 3 document of the paths this server serves, mounts included.",
        params: &[],
        description: "Generated from the same route table as path help. It holds the paths the \
caller's policies grant a capability on (some path the OpenAPI path describes, its parameters \
standing for any value); a root token sees every path.",
        ..ROUTE
    },
    Route {
        pattern: "sys/mounts/?$",
        paths: &["sys/mounts"],
        ops: &[
            read(handler!(c => sys::list_mounts(&c.state).await)),
            list(handler!(c => sys::list_mounts(&c.state).await)),
        ],
        synopsis: "List the enabled secrets engines.",
        params: &[],
        description: "Each mount is at the top level of the answer and under data.",
        ..ROUTE
    },
    Route {
        pattern: "sys/mounts/.+/tune",
        paths: &["sys/mounts/{path}/tune"],
        ops: &[
            read(handler!(c => sys::tune(&c.state, c.req).await)),
            update(handler!(c => sys::tune(&c.state, c.req).await)),
        ],
        synopsis: "Read or change a mount's lease TTLs, description and options.",
        params: TUNE_PARAMS,
        description: "TTLs are seconds or duration strings; the default may not exceed the maximum.",
        ..ROUTE
    },
    Route {
        pattern: "sys/mounts/.+",
        paths: &["sys/mounts/{path}"],
        ops: &[
            read(handler!(c => sys::mount_op(&c.state, c.req).await)),
            update(handler!(c => sys::mount_op(&c.state, c.req).await)),
            delete(handler!(c => sys::mount_op(&c.state, c.req).await)),
        ],
        synopsis: "Enable, read and disable secrets engines.",
        params: &[
            p("type", Kind::String, "The engine: aws."),
            p("description", Kind::String, "Free text."),
            p("config", Kind::Map, "default_lease_ttl and max_lease_ttl."),
            p("options", Kind::Map, "Stored and returned."),
        ],
        description: "Disabling a mount revokes its leases first.",
        ..ROUTE
    },
    Route {
        pattern: "sys/leases/?$",
        paths: &["sys/leases"],
        ops: &[read(handler!(c => leases::irrevocable(&c.state, &c.req, false).await)).sudo()],
        synopsis: "The leases keymint could not revoke, with their last error (sudo).",
        params: &[q("type", Kind::String, "irrevocable (the only listing).")],
        description: "The first 10000, with the total in lease_count.",
        ..ROUTE
    },
    Route {
        pattern: "sys/leases/count",
        paths: &["sys/leases/count"],
        ops: &[read(handler!(c => leases::irrevocable(&c.state, &c.req, true).await)).sudo()],
        synopsis: "How many leases there are (sudo).",
        params: &[q("type", Kind::String, "irrevocable, or all (the default).")],
        description: "Counts from the store, across replicas.",
        ..ROUTE
    },
    Route {
        pattern: "sys/leases/lookup",
        paths: &["sys/leases/lookup"],
        ops: &[update(handler!(c => leases::lookup(&c.state, &c.req).await))],
        synopsis: "A lease's issue and expiry times, remaining TTL and renewability.",
        params: &[p("lease_id", Kind::String, "The lease.")],
        description: "LIST sys/leases/lookup/<prefix> lists lease ids and folders under a prefix (sudo).",
        ..ROUTE
    },
    Route {
        pattern: "sys/leases/lookup/.*",
        paths: &["sys/leases/lookup/{prefix}"],
        ops: &[list(handler!(c => leases::list(&c.state, leases::tail(&c.req.path)).await)).sudo()],
        synopsis: "List lease ids and folders under a prefix (sudo).",
        params: &[],
        description: "404 when there are none.",
        ..ROUTE
    },
    Route {
        pattern: "sys/leases/renew(/.*)?",
        paths: &["sys/leases/renew", "sys/leases/renew/{url_lease_id}"],
        ops: &[update(handler!(c => leases::renew(&c.state, &c.req, leases::tail(&c.req.path)).await))],
        synopsis: "Renew a lease.",
        params: RENEW_PARAMS,
        description: "Only iam_user leases renew; the result is capped by the role's and the mount's maximum.",
        ..ROUTE
    },
    Route {
        pattern: "sys/leases/revoke(/.*)?",
        paths: &["sys/leases/revoke", "sys/leases/revoke/{url_lease_id}"],
        ops: &[update(handler!(c => leases::revoke(&c.state, &c.req, leases::tail(&c.req.path)).await))],
        synopsis: "Revoke a lease: what it made in AWS is deleted.",
        params: REVOKE_PARAMS,
        description: "A revocation AWS refuses is retried in the background until it succeeds.",
        ..ROUTE
    },
    Route {
        pattern: "sys/leases/revoke-prefix/.+",
        paths: &["sys/leases/revoke-prefix/{prefix}"],
        ops: &[update(
            handler!(c => leases::revoke_prefix(&c.state, &c.req, leases::tail(&c.req.path), false).await),
        )
        .sudo()],
        synopsis: "Revoke every lease under a prefix (sudo).",
        params: &[p("sync", Kind::Bool, "Wait for the revocations (default true).")],
        description: "A prefix names a folder (aws/creds/deploy means aws/creds/deploy/...); a whole lease \
id names that lease.",
        ..ROUTE
    },
    Route {
        pattern: "sys/leases/revoke-force/.+",
        paths: &["sys/leases/revoke-force/{prefix}"],
        ops: &[update(
            handler!(c => leases::revoke_prefix(&c.state, &c.req, leases::tail(&c.req.path), true).await),
        )
        .sudo()],
        synopsis: "Revoke every lease under a prefix, dropping those AWS refuses to revoke (sudo).",
        params: &[],
        description: "What could not be cleaned up in AWS is listed in the warnings.",
        ..ROUTE
    },
    Route {
        pattern: "sys/leases/tidy",
        paths: &["sys/leases/tidy"],
        ops: &[update(handler!(c => Ok(leases::tidy(&c.state))))],
        synopsis: "Undo abandoned IAM user creations now instead of at the next sweep.",
        params: &[],
        description: "Answers 202 at once; the outcome goes to the server log.",
        ..ROUTE
    },
    Route {
        pattern: "sys/leases/revocation",
        paths: &["sys/leases/revocation"],
        ops: &[
            read(handler!(c => leases::revocation_state(&c.state).await)),
            update(handler!(c => leases::set_revocation(&c.state, &c.req).await)).sudo(),
        ],
        synopsis: "Whether automatic revocation is paused, store-wide (keymint's own).",
        params: &[
            p("paused", Kind::Bool, "true pauses automatic revocation, false resumes it."),
            p("reason", Kind::String, "Why it is paused; shown on reads."),
        ],
        description: "A restored store starts paused. Writes need sudo.",
        ..ROUTE
    },
    Route {
        pattern: "sys/renew(/.*)?",
        paths: &["sys/renew", "sys/renew/{url_lease_id}"],
        ops: &[update(handler!(c => leases::renew(&c.state, &c.req, leases::tail(&c.req.path)).await))],
        synopsis: "Renew a lease (legacy path of sys/leases/renew).",
        params: RENEW_PARAMS,
        description: "As sys/leases/renew.",
        ..ROUTE
    },
    Route {
        pattern: "sys/revoke(/.*)?",
        paths: &["sys/revoke", "sys/revoke/{url_lease_id}"],
        ops: &[update(handler!(c => leases::revoke(&c.state, &c.req, leases::tail(&c.req.path)).await))],
        synopsis: "Revoke a lease (legacy path of sys/leases/revoke).",
        params: REVOKE_PARAMS,
        description: "As sys/leases/revoke.",
        ..ROUTE
    },
    Route {
        pattern: "sys/revoke-prefix/.+",
        paths: &["sys/revoke-prefix/{prefix}"],
        ops: &[update(
            handler!(c => leases::revoke_prefix(&c.state, &c.req, leases::tail(&c.req.path), false).await),
        )
        .sudo()],
        synopsis: "Revoke every lease under a prefix (sudo; legacy path).",
        params: &[p("sync", Kind::Bool, "Wait for the revocations (default true).")],
        description: "As sys/leases/revoke-prefix.",
        ..ROUTE
    },
    Route {
        pattern: "sys/revoke-force/.+",
        paths: &["sys/revoke-force/{prefix}"],
        ops: &[update(
            handler!(c => leases::revoke_prefix(&c.state, &c.req, leases::tail(&c.req.path), true).await),
        )
        .sudo()],
        synopsis: "Revoke every lease under a prefix, dropping failures (sudo; legacy path).",
        params: &[],
        description: "As sys/leases/revoke-force.",
        ..ROUTE
    },
    Route {
        pattern: "sys/policies/acl/?$",
        paths: &["sys/policies/acl"],
        ops: &[list(handler!(c => policies::list(&c.state).await))],
        synopsis: "List the ACL policies, default and root included.",
        params: &[],
        description: "The names are under keys.",
        ..ROUTE
    },
    Route {
        pattern: "sys/policy/?$",
        paths: &["sys/policy"],
        ops: &[
            read(handler!(c => policies::list_legacy(&c.state).await)),
            list(handler!(c => policies::list_legacy(&c.state).await)),
        ],
        synopsis: "List the ACL policies (legacy path), default and root included.",
        params: &[],
        description: "The names are under policies and keys, also at the top level.",
        ..ROUTE
    },
    Route {
        pattern: "sys/(policy|policies/acl)/.+",
        paths: &["sys/policies/acl/{name}", "sys/policy/{name}"],
        ops: &[
            read(handler!(c => policies::one(&c).await)),
            update(handler!(c => policies::one(&c).await)),
            delete(handler!(c => policies::one(&c).await)),
        ],
        synopsis: "Read, write, list and delete ACL policies.",
        params: &[
            p("name", Kind::String, "The policy's name; it comes from the path."),
            p("policy", Kind::String, "The policy in HCL or JSON."),
            p("rules", Kind::String, "Legacy (sys/policy only): the policy text."),
        ],
        description: "Policies grant capabilities on paths to the tokens that hold them.",
        ..ROUTE
    },
    Route {
        pattern: "sys/capabilities",
        paths: &["sys/capabilities"],
        ops: &[update(handler!(c => policies::capabilities(&c.state, &c.req, None).await))],
        synopsis: "A token's capabilities on paths.",
        params: &[p("token", Kind::String, "The token."), PATH, PATHS],
        description: "One key per path, plus capabilities when one path was asked.",
        ..ROUTE
    },
    Route {
        pattern: "sys/capabilities-self",
        paths: &["sys/capabilities-self"],
        ops: &[update(
            handler!(c => policies::capabilities(&c.state, &c.req, Some(c.identity()?.policies.clone())).await),
        )],
        synopsis: "The calling token's capabilities on paths.",
        params: &[PATH, PATHS],
        description: "One key per path, plus capabilities when one path was asked.",
        ..ROUTE
    },
    Route {
        pattern: "sys/capabilities-accessor",
        paths: &["sys/capabilities-accessor"],
        ops: &[update(handler!(c => policies::capabilities(&c.state, &c.req, None).await))],
        synopsis: "The capabilities on paths of the token with an accessor.",
        params: &[p("accessor", Kind::String, "The token's accessor."), PATH, PATHS],
        description: "One key per path, plus capabilities when one path was asked.",
        ..ROUTE
    },
    Route {
        pattern: "sys/audit/?$",
        paths: &["sys/audit"],
        ops: &[
            read(handler!(c => Ok(audit::list(&c.state)))).sudo(),
            list(handler!(c => Ok(audit::list(&c.state)))).sudo(),
        ],
        synopsis: "List the enabled audit devices (sudo).",
        params: &[],
        description: "Each device is at the top level of the answer and under data.",
        ..ROUTE
    },
    Route {
        pattern: "sys/audit/.+",
        paths: &["sys/audit/{path}"],
        ops: &[
            update(handler!(c => audit::enable(&c.state, &c.req).await)).sudo(),
            delete(handler!(c => audit::disable(&c.state, &c.req).await)).sudo(),
        ],
        synopsis: "Enable or disable an audit device (sudo).",
        params: &[
            p("type", Kind::String, "The device: file."),
            p("description", Kind::String, "Free text."),
            p("options", Kind::Map, "file_path: a file, stdout or discard."),
        ],
        description: "A device that cannot write is refused before it is stored.",
        ..ROUTE
    },
    Route {
        pattern: "sys/audit-hash/.+",
        paths: &["sys/audit-hash/{path}"],
        ops: &[update(handler!(c => audit::audit_hash(&c.state, &c.req)))],
        synopsis: "The audit log's hash of a value, to find it in the log.",
        params: &[p("input", Kind::String, "The value to hash.")],
        description: "The path names an enabled audit device.",
        ..ROUTE
    },
];
