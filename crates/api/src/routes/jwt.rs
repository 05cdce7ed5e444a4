//! JWT/OIDC routes, relative to a JWT mount (`auth/jwt/`, or any path of type `jwt`).

use super::{Kind, Param, ROUTE, Route, delete, handler, list, p, read, update};
use crate::auth_methods::{jwt, token_params};

const ROLE_PARAMS: &[Param] = token_params![
    p("name", Kind::String, "The role's name (taken from the path)."),
    p(
        "role_type",
        Kind::String,
        "jwt (the oidc browser flow is not served). Not merged: give it on every write."
    ),
    p(
        "user_claim",
        Kind::String,
        "The claim naming the caller (required): it goes into the token's display name."
    ),
    p("user_claim_json_pointer", Kind::Bool, "Read user_claim as a JSON pointer when it starts with /."),
    p("bound_audiences", Kind::CommaList, "The token's aud must hold one of these."),
    p("bound_subject", Kind::String, "The token's sub must be this."),
    p(
        "bound_claims",
        Kind::Map,
        "Claims (or /json/pointers) and the values they must have; a list is any of them."
    ),
    p("bound_claims_type", Kind::String, "string (exact) or glob (* matches anything). Not merged."),
    p("claim_mappings", Kind::KvPairs, "Claims copied into the token's metadata, claim: key."),
    p("groups_claim", Kind::String, "The claim holding the caller's groups."),
    p("clock_skew_leeway", Kind::Duration, "Leeway on all time claims; 0 for 60s, -1 for none."),
    p("expiration_leeway", Kind::Duration, "Leeway on exp; 0 for 150s, -1 for none."),
    p("not_before_leeway", Kind::Duration, "Leeway on nbf; 0 for 150s, -1 for none."),
    p("allowed_redirect_uris", Kind::CommaList, "OIDC browser flow: stored only."),
    p("oidc_scopes", Kind::CommaList, "OIDC browser flow: stored only."),
    p("verbose_oidc_logging", Kind::Bool, "OIDC browser flow: stored only."),
    p("max_age", Kind::Duration, "OIDC browser flow: stored only."),
];

pub(crate) const JWT_ROUTES: &[Route] = &[
    Route {
        pattern: "login",
        paths: &["login"],
        ops: &[update(handler!(c => crate::auth_methods::counted("jwt", jwt::login(&c)).await))],
        unauthenticated: true,
        synopsis: "Log in with a JWT signed by the configured issuer.",
        params: &[
            p("role", Kind::String, "The role; the config's default_role when empty."),
            p("jwt", Kind::String, "The token."),
            p("distributed_claim_access_token", Kind::String, "Not used by keymint."),
        ],
        description: "Needs no token. Signature, time claims, issuer, audience and bound claims are all checked.",
        ..ROUTE
    },
    Route {
        pattern: "config",
        paths: &["config"],
        ops: &[read(handler!(c => jwt::config(&c).await)), update(handler!(c => jwt::config(&c).await))],
        synopsis: "Where the method finds the keys tokens are signed with.",
        params: &[
            p("oidc_discovery_url", Kind::String, "An OIDC issuer: its discovery document names its JWKS."),
            p("oidc_discovery_ca_pem", Kind::String, "CA certificates for the discovery URL (PEM)."),
            p("oidc_client_id", Kind::String, "OIDC browser flow: stored only."),
            p("oidc_client_secret", Kind::String, "OIDC browser flow: stored sealed, never returned."),
            p("oidc_response_mode", Kind::String, "OIDC browser flow: stored only."),
            p("oidc_response_types", Kind::CommaList, "OIDC browser flow: stored only."),
            p("jwks_url", Kind::String, "A JWKS document to fetch keys from."),
            p("jwks_ca_pem", Kind::String, "CA certificates for the JWKS URL (PEM)."),
            p("jwt_validation_pubkeys", Kind::CommaList, "Static public keys (PEM)."),
            p(
                "jwt_supported_algs",
                Kind::CommaList,
                "Accepted signing algorithms; empty for RS*, PS*, ES* and EdDSA.",
            ),
            p("bound_issuer", Kind::String, "The iss every token must carry."),
            p("default_role", Kind::String, "The role of logins that name none."),
            p("provider_config", Kind::Map, "OIDC browser flow: stored only."),
            p("namespace_in_state", Kind::Bool, "OIDC browser flow: stored only."),
        ],
        description: "Each write replaces the whole config and is checked by fetching the keys it names.",
        ..ROUTE
    },
    Route {
        pattern: "role/?$",
        paths: &["role"],
        ops: &[list(handler!(c => crate::auth_methods::list_roles(&c).await))],
        synopsis: "List the roles.",
        params: &[],
        description: "404 when there are none.",
        ..ROUTE
    },
    Route {
        pattern: "role/NAME",
        paths: &["role/{name}"],
        ops: &[
            read(handler!(c => jwt::role(&c).await)),
            update(handler!(c => jwt::role(&c).await)),
            delete(handler!(c => jwt::role(&c).await)),
        ],
        existence: Some(|state, target| Box::pin(crate::auth_methods::role_exists(state, target))),
        synopsis: "Create, update, read or delete a role.",
        params: ROLE_PARAMS,
        description: "Writes merge, except role_type and bound_claims_type, which Vault resets when left out.",
        ..ROUTE
    },
];
