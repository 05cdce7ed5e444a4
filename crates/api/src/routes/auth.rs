//! `sys/auth` routes: the auth methods' mount table.

use super::{Kind, ROUTE, Route, delete, handler, list, p, read, update};
use crate::auth_methods::mounts;

const TUNE_PARAMS: &[super::Param] = &[
    p(
        "default_lease_ttl",
        Kind::Duration,
        "Default TTL of the method's tokens; 0 or \"system\" for the system's.",
    ),
    p(
        "max_lease_ttl",
        Kind::Duration,
        "Longest TTL of the method's tokens; 0 or \"system\" for the system's.",
    ),
    p("description", Kind::String, "Free text."),
    p("options", Kind::Map, "Stored and returned."),
];

pub(crate) const AUTH_SYS_ROUTES: &[Route] = &[
    Route {
        pattern: "sys/auth/?$",
        paths: &["sys/auth"],
        ops: &[
            read(handler!(c => mounts::list(&c.state).await)),
            list(handler!(c => mounts::list(&c.state).await)),
        ],
        synopsis: "List the enabled auth methods, token/ included.",
        params: &[],
        description: "Each method is at the top level of the answer and under data, keyed by its path.",
        ..ROUTE
    },
    Route {
        pattern: "sys/auth/.+/tune",
        paths: &["sys/auth/{path}/tune"],
        ops: &[read(handler!(c => mounts::tune(c).await)), update(handler!(c => mounts::tune(c).await))],
        synopsis: "Read or change an auth method's token TTLs and description.",
        params: TUNE_PARAMS,
        description: "The same tuning as sys/mounts/auth/<path>/tune, which `vault auth tune` uses.",
        ..ROUTE
    },
    Route {
        pattern: "sys/auth/.+",
        paths: &["sys/auth/{path}"],
        ops: &[
            read(handler!(c => mounts::mount(&c).await)).sudo(),
            update(handler!(c => mounts::mount(&c).await)).sudo(),
            delete(handler!(c => mounts::mount(&c).await)).sudo(),
        ],
        synopsis: "Enable, read and disable an auth method (sudo).",
        params: &[
            p("type", Kind::String, "The method: approle, jwt or kubernetes."),
            p("description", Kind::String, "Free text."),
            p("config", Kind::Map, "default_lease_ttl and max_lease_ttl of the method's tokens."),
            p("options", Kind::Map, "Stored and returned."),
            p("local", Kind::Bool, "Accepted for Vault's clients; keymint has no replication."),
            p("seal_wrap", Kind::Bool, "Accepted for Vault's clients; ignored."),
            p("external_entropy_access", Kind::Bool, "Accepted for Vault's clients; ignored."),
            p("plugin_name", Kind::String, "Accepted for Vault's clients; ignored."),
            p("plugin_version", Kind::String, "Accepted for Vault's clients; ignored."),
        ],
        description: "Disabling a method revokes the tokens its logins issued, and their leases.",
        ..ROUTE
    },
];
