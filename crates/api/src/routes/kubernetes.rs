//! Kubernetes routes, relative to a Kubernetes mount (`auth/kubernetes/`).

use super::{Kind, Param, ROUTE, Route, delete, handler, list, p, read, update};
use crate::auth_methods::{kubernetes, token_params};

const ROLE_PARAMS: &[Param] = token_params![
    p("name", Kind::String, "The role's name (taken from the path)."),
    p("bound_service_account_names", Kind::CommaList, "Service accounts that may log in (* for any; globs)."),
    p("bound_service_account_namespaces", Kind::CommaList, "Their namespaces (* for any; globs)."),
    p(
        "bound_service_account_namespace_selector",
        Kind::String,
        "A JSON label selector (matchLabels) for namespaces, or'ed with the list. Not merged."
    ),
    p("audience", Kind::String, "The audience the token must carry."),
    p("alias_name_source", Kind::String, "serviceaccount_uid (the default) or serviceaccount_name."),
];

pub(crate) const KUBERNETES_ROUTES: &[Route] = &[
    Route {
        pattern: "login",
        paths: &["login"],
        ops: &[update(
            handler!(c => crate::auth_methods::counted("kubernetes", kubernetes::login(&c)).await),
        )],
        unauthenticated: true,
        synopsis: "Log in with a service-account token.",
        params: &[p("role", Kind::String, "The role."), p("jwt", Kind::String, "The service-account token.")],
        description: "Needs no token. The API server confirms the token (TokenReview) unless the config has \
pem_keys and no reviewer token.",
        ..ROUTE
    },
    Route {
        pattern: "config",
        paths: &["config"],
        ops: &[
            read(handler!(c => kubernetes::config(&c).await)),
            update(handler!(c => kubernetes::config(&c).await)),
        ],
        synopsis: "The cluster keymint asks about tokens.",
        params: &[
            p("kubernetes_host", Kind::String, "The API server's URL (required)."),
            p("kubernetes_ca_cert", Kind::String, "Its CA certificate (PEM)."),
            p(
                "token_reviewer_jwt",
                Kind::String,
                "The bearer of TokenReview requests; stored sealed, never returned.",
            ),
            p("pem_keys", Kind::CommaList, "Public keys to check token signatures with (PEM)."),
            p("issuer", Kind::String, "The iss tokens must carry, when disable_iss_validation is false."),
            p("disable_iss_validation", Kind::Bool, "Skip the issuer check (the default, as in Vault)."),
            p(
                "disable_local_ca_jwt",
                Kind::Bool,
                "Do not use the pod's own token and CA when keymint runs in a pod.",
            ),
            p("use_annotations_as_alias_metadata", Kind::Bool, "Stored for Vault's clients."),
        ],
        description: "Each write replaces the whole config.",
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
            read(handler!(c => kubernetes::role(&c).await)),
            update(handler!(c => kubernetes::role(&c).await)),
            delete(handler!(c => kubernetes::role(&c).await)),
        ],
        existence: Some(|state, target| Box::pin(crate::auth_methods::role_exists(state, target))),
        synopsis: "Create, update, read or delete a role.",
        params: ROLE_PARAMS,
        description: "Writes merge, except the namespace selector, which is cleared when left out.",
        ..ROUTE
    },
];
