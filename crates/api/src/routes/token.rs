//! `auth/token/` routes, by their full path.

use super::{Kind, Param, ROUTE, Route, delete, handler, list, p, read, update};
use crate::{token_roles, tokens};

const TOKEN: Param = p("token", Kind::String, "The token.");
const ACCESSOR: Param = p("accessor", Kind::String, "The token's accessor.");
const INCREMENT: Param = p("increment", Kind::Duration, "Requested new TTL from now; 0 for the default.");

pub(crate) const TOKEN_ROUTES: &[Route] = &[
    Route {
        pattern: "auth/token/create(-orphan)?(/.*)?",
        paths: &["auth/token/create", "auth/token/create-orphan", "auth/token/create/{role_name}"],
        ops: &[update(handler!(c => tokens::create_at(&c).await))],
        synopsis: "Create a token, a child of the caller unless it is an orphan.",
        params: &[
            p("policies", Kind::CommaList, "Its policies."),
            p("ttl", Kind::Duration, "Its lifetime (also accepted as lease, its deprecated name).")
                .alias(&["lease"]),
            p("period", Kind::Duration, "Make it periodic: each renewal restores this TTL."),
            p("num_uses", Kind::Int, "Uses before it is revoked; 0 for no limit."),
            p("display_name", Kind::String, "Shown in lookups and in IAM user names."),
            p("meta", Kind::KvPairs, "Metadata."),
            p("id", Kind::String, "The token itself (root or sudo only)."),
            p("no_parent", Kind::Bool, "Make it an orphan (root or sudo only)."),
            p("no_default_policy", Kind::Bool, "Leave out the default policy."),
            p("renewable", Kind::Bool, "Whether it can be renewed (default true)."),
            p("explicit_max_ttl", Kind::Duration, "A hard cap on its lifetime, renewals included."),
            p("type", Kind::String, "service (or default); batch is refused."),
            p("entity_alias", Kind::String, "With a role: an alias among the role's allowed_entity_aliases."),
        ],
        description: "Revoking a token revokes its children and the leases they made.",
        ..ROUTE
    },
    Route {
        pattern: "auth/token/lookup-self",
        paths: &["auth/token/lookup-self"],
        ops: &[
            read(handler!(c => tokens::lookup_self(&c).await)),
            update(handler!(c => tokens::lookup_self(&c).await)),
        ],
        synopsis: "Look up the calling token: policies, TTL, metadata.",
        params: &[],
        description: "What vault login and hvac's is_authenticated call.",
        ..ROUTE
    },
    Route {
        pattern: "auth/token/(lookup|lookup-accessor)",
        paths: &["auth/token/lookup", "auth/token/lookup-accessor"],
        ops: &[update(handler!(c => tokens::lookup(&c).await))],
        synopsis: "Look up a token: policies, TTL, metadata.",
        params: &[
            p("token", Kind::String, "The token (lookup only)."),
            p("accessor", Kind::String, "The accessor (lookup-accessor only)."),
        ],
        description: "A lookup by accessor never shows the token itself.",
        ..ROUTE
    },
    Route {
        pattern: "auth/token/renew-self",
        paths: &["auth/token/renew-self"],
        ops: &[update(handler!(c => tokens::renew_self(&c).await))],
        synopsis: "Renew the calling token.",
        params: &[INCREMENT],
        description: "Up to its explicit max TTL; a periodic token gets its period.",
        ..ROUTE
    },
    Route {
        pattern: "auth/token/renew",
        paths: &["auth/token/renew"],
        ops: &[update(handler!(c => tokens::renew_token(&c).await))],
        synopsis: "Renew a token.",
        params: &[TOKEN, INCREMENT],
        description: "Up to its explicit max TTL; a periodic token gets its period.",
        ..ROUTE
    },
    Route {
        pattern: "auth/token/renew-accessor",
        paths: &["auth/token/renew-accessor"],
        ops: &[update(handler!(c => tokens::renew_accessor(&c).await))],
        synopsis: "Renew the token with an accessor.",
        params: &[ACCESSOR, INCREMENT],
        description: "Up to its explicit max TTL; a periodic token gets its period.",
        ..ROUTE
    },
    Route {
        pattern: "auth/token/revoke-self",
        paths: &["auth/token/revoke-self"],
        ops: &[update(handler!(c => tokens::revoke_self(&c).await))],
        synopsis: "Revoke the calling token, its children and their leases.",
        params: &[],
        description: "Leases minted with orphan=true are kept.",
        ..ROUTE
    },
    Route {
        pattern: "auth/token/revoke",
        paths: &["auth/token/revoke"],
        ops: &[update(handler!(c => tokens::revoke(&c, false).await))],
        synopsis: "Revoke a token, its children and their leases.",
        params: &[TOKEN],
        description: "Leases minted with orphan=true are kept.",
        ..ROUTE
    },
    Route {
        pattern: "auth/token/revoke-accessor",
        paths: &["auth/token/revoke-accessor"],
        ops: &[update(handler!(c => tokens::revoke_accessor(&c).await))],
        synopsis: "Revoke the token with an accessor, its children and their leases.",
        params: &[ACCESSOR],
        description: "Leases minted with orphan=true are kept.",
        ..ROUTE
    },
    Route {
        pattern: "auth/token/revoke-orphan",
        paths: &["auth/token/revoke-orphan"],
        ops: &[update(handler!(c => tokens::revoke(&c, true).await)).sudo()],
        synopsis: "Revoke a token and its leases; its children become orphans (sudo).",
        params: &[TOKEN],
        description: "Leases minted with orphan=true are kept.",
        ..ROUTE
    },
    Route {
        pattern: "auth/token/accessors/?$",
        paths: &["auth/token/accessors"],
        ops: &[list(handler!(c => tokens::accessors(&c).await)).sudo()],
        synopsis: "List the accessors of every live token (sudo).",
        params: &[],
        description: "Under keys.",
        ..ROUTE
    },
    Route {
        pattern: "auth/token/roles/?$",
        paths: &["auth/token/roles"],
        ops: &[list(handler!(c => token_roles::list(&c.state).await))],
        synopsis: "List the token roles.",
        params: &[],
        description: "404 when there are none.",
        ..ROUTE
    },
    Route {
        pattern: "auth/token/roles/.+",
        paths: &["auth/token/roles/{role_name}"],
        ops: &[
            read(handler!(c => token_roles::role(&c).await)),
            update(handler!(c => token_roles::role(&c).await)),
            delete(handler!(c => token_roles::role(&c).await)),
        ],
        existence: Some(token_roles::exists),
        synopsis: "Read, write or delete a token role: what tokens created against it may be.",
        params: &[
            p("role_name", Kind::String, "The role's name; it comes from the path."),
            p("allowed_policies", Kind::CommaList, "Policies its tokens may have."),
            p("disallowed_policies", Kind::CommaList, "Policies its tokens may not have."),
            p("allowed_policies_glob", Kind::CommaList, "Glob patterns of allowed policies."),
            p("disallowed_policies_glob", Kind::CommaList, "Glob patterns of disallowed policies."),
            p("allowed_entity_aliases", Kind::CommaList, "Entity aliases its tokens may name."),
            p("orphan", Kind::Bool, "Its tokens are orphans."),
            p("renewable", Kind::Bool, "Its tokens can be renewed (default true)."),
            p("path_suffix", Kind::String, "Appended to its tokens' path."),
            p("token_period", Kind::Duration, "Its tokens are periodic with this period."),
            p("period", Kind::Duration, "Legacy name of token_period."),
            p("token_explicit_max_ttl", Kind::Duration, "Hard cap on its tokens' lifetime."),
            p("explicit_max_ttl", Kind::Duration, "Legacy name of token_explicit_max_ttl."),
            p("token_type", Kind::String, "service or default-service (batch is refused)."),
            p("token_bound_cidrs", Kind::CommaList, "CIDRs its tokens may be used from."),
            p("bound_cidrs", Kind::CommaList, "Legacy name of token_bound_cidrs."),
            p("token_no_default_policy", Kind::Bool, "Leave the default policy out of its tokens."),
            p("token_num_uses", Kind::Int, "Uses of each of its tokens; 0 for no limit."),
            p("token_ttl", Kind::Duration, "Default TTL of its tokens (keymint's own)."),
            p("token_max_ttl", Kind::Duration, "Longest TTL of its tokens (keymint's own)."),
        ],
        description: "A write merges into the stored role; the first write needs create.",
        ..ROUTE
    },
];
