//! AppRole routes, relative to an AppRole mount (`auth/approle/`).

use super::{Kind, Param, ROUTE, Route, delete, handler, list, p, read, update};
use crate::auth_methods::{approle, token_params};

const ROLE_PARAMS: &[Param] = token_params![
    p("bind_secret_id", Kind::Bool, "Require a secret id at login (default true)."),
    p("secret_id_bound_cidrs", Kind::CommaList, "CIDRs logins with this role may come from.")
        .alias(&["bound_cidr_list"]),
    p("secret_id_num_uses", Kind::Int, "Default logins per secret id; 0 for unlimited."),
    p("secret_id_ttl", Kind::Duration, "Default lifetime of secret ids; 0 for no expiry."),
    p(
        "local_secret_ids",
        Kind::Bool,
        "Accepted at creation for Vault's clients (keymint has no replication)."
    ),
    p("role_id", Kind::String, "A custom role id; a random UUID by default."),
];

const METADATA: Param = p(
    "metadata",
    Kind::String,
    "A JSON object of strings, copied into the metadata of tokens it logs in to.",
);
const CIDR_LIST: Param = p("cidr_list", Kind::CommaList, "CIDRs logins with this secret id may come from.");
const TOKEN_CIDRS: Param =
    p("token_bound_cidrs", Kind::CommaList, "CIDRs the tokens it logs in to may be used from.");
const NUM_USES: Param =
    p("num_uses", Kind::Int, "Logins it allows; 0 for unlimited (within the role's limit).");
const TTL: Param = p("ttl", Kind::Duration, "Its lifetime (within the role's limit).");
const SECRET_ID: Param = p("secret_id", Kind::String, "The secret id.");
const ACCESSOR: Param = p("secret_id_accessor", Kind::String, "The accessor.");

const SECRET_ID_PARAMS: &[Param] = &[METADATA, CIDR_LIST, TOKEN_CIDRS, NUM_USES, TTL];

pub(crate) const APPROLE_ROUTES: &[Route] = &[
    Route {
        pattern: "login",
        paths: &["login"],
        ops: &[update(handler!(c => crate::auth_methods::counted("approle", approle::login(&c)).await))],
        unauthenticated: true,
        synopsis: "Log in with a role id and a secret id.",
        params: &[
            p("role_id", Kind::String, "The role's id."),
            p("secret_id", Kind::String, "A secret id of the role (unless the role does not bind one)."),
        ],
        description: "Needs no token. A use-limited secret id is spent exactly once per login, across replicas.",
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
        paths: &["role/{role_name}"],
        ops: &[
            read(handler!(c => approle::role(&c).await)),
            update(handler!(c => approle::role(&c).await)),
            delete(handler!(c => approle::role(&c).await)),
        ],
        existence: Some(|state, target| Box::pin(crate::auth_methods::role_exists(state, target))),
        synopsis: "Create, update, read or delete a role.",
        params: ROLE_PARAMS,
        description: "Writes merge: fields left out keep their value. Deleting a role destroys its secret ids.",
        ..ROUTE
    },
    Route {
        pattern: "role/NAME/role-id",
        paths: &["role/{role_name}/role-id"],
        ops: &[
            read(handler!(c => approle::role_id(&c).await)),
            update(handler!(c => approle::role_id(&c).await)),
        ],
        synopsis: "Read the role's id, or set a custom one.",
        params: &[p("role_id", Kind::String, "The new role id.")],
        description: "A role id names one role only.",
        ..ROUTE
    },
    Route {
        pattern: "role/NAME/secret-id/?$",
        paths: &["role/{role_name}/secret-id"],
        ops: &[
            update(handler!(c => approle::secret_id(&c, false).await)),
            list(handler!(c => approle::secret_id(&c, false).await)),
        ],
        synopsis: "Generate a secret id, or list the accessors of the role's secret ids.",
        params: SECRET_ID_PARAMS,
        description: "The secret id is shown once; keymint keeps only its keyed hash.",
        ..ROUTE
    },
    Route {
        pattern: "role/NAME/custom-secret-id",
        paths: &["role/{role_name}/custom-secret-id"],
        ops: &[update(handler!(c => approle::secret_id(&c, true).await))],
        synopsis: "Register a secret id chosen by the caller.",
        params: &[SECRET_ID, METADATA, CIDR_LIST, TOKEN_CIDRS, NUM_USES, TTL],
        description: "Refused when the secret id is registered already.",
        ..ROUTE
    },
    Route {
        pattern: "role/NAME/secret-id/lookup",
        paths: &["role/{role_name}/secret-id/lookup"],
        ops: &[update(handler!(c => approle::lookup(&c, false).await))],
        synopsis: "A secret id's accessor, uses left, expiry and metadata.",
        params: &[SECRET_ID],
        description: "204 when there is no such secret id.",
        ..ROUTE
    },
    Route {
        pattern: "role/NAME/secret-id/destroy",
        paths: &["role/{role_name}/secret-id/destroy"],
        ops: &[
            update(handler!(c => approle::destroy(&c, false).await)),
            delete(handler!(c => approle::destroy(&c, false).await)),
        ],
        synopsis: "Destroy a secret id.",
        params: &[SECRET_ID],
        description: "204 whether or not it existed.",
        ..ROUTE
    },
    Route {
        pattern: "role/NAME/secret-id-accessor/lookup",
        paths: &["role/{role_name}/secret-id-accessor/lookup"],
        ops: &[update(handler!(c => approle::lookup(&c, true).await))],
        synopsis: "A secret id's details, by its accessor.",
        params: &[ACCESSOR],
        description: "404 with the reason under data when there is no such accessor.",
        ..ROUTE
    },
    Route {
        pattern: "role/NAME/secret-id-accessor/destroy",
        paths: &["role/{role_name}/secret-id-accessor/destroy"],
        ops: &[
            update(handler!(c => approle::destroy(&c, true).await)),
            delete(handler!(c => approle::destroy(&c, true).await)),
        ],
        synopsis: "Destroy a secret id, by its accessor.",
        params: &[ACCESSOR],
        description: "An accessor of another role's secret id is refused.",
        ..ROUTE
    },
    Route {
        pattern: "role/NAME/local-secret-ids",
        paths: &["role/{role_name}/local-secret-ids"],
        ops: &[read(handler!(c => approle::local_secret_ids(&c).await))],
        synopsis: "Whether the role's secret ids are local to a cluster.",
        params: &[],
        description: "Always false in effect: keymint has no replication.",
        ..ROUTE
    },
    Route {
        pattern: "role/NAME/(policies|secret-id-num-uses|secret-id-ttl|token-ttl|token-max-ttl|token-num-uses|bind-secret-id|secret-id-bound-cidrs|token-bound-cidrs|bound-cidr-list|period)",
        paths: &[
            "role/{role_name}/policies",
            "role/{role_name}/secret-id-num-uses",
            "role/{role_name}/secret-id-ttl",
            "role/{role_name}/token-ttl",
            "role/{role_name}/token-max-ttl",
            "role/{role_name}/token-num-uses",
            "role/{role_name}/bind-secret-id",
            "role/{role_name}/secret-id-bound-cidrs",
            "role/{role_name}/token-bound-cidrs",
            "role/{role_name}/bound-cidr-list",
            "role/{role_name}/period",
        ],
        ops: &[
            read(handler!(c => approle::one_field(&c).await)),
            update(handler!(c => approle::one_field(&c).await)),
            delete(handler!(c => approle::one_field(&c).await)),
        ],
        synopsis: "One setting of a role, for ACLs that delegate it.",
        params: ROLE_PARAMS,
        description: "A read shows the field alone; a delete puts it back to its default.",
        ..ROUTE
    },
    Route {
        pattern: "tidy/secret-id",
        paths: &["tidy/secret-id"],
        ops: &[update(handler!(c => approle::tidy(&c).await))],
        synopsis: "Remove expired secret ids.",
        params: &[],
        description: "Answers 202. Expired secret ids are refused at login whether or not tidied.",
        ..ROUTE
    },
];
