//! `sys/wrapping/*` routes: Vault's response wrapping (see [`crate::wrapping`]).

use super::{Kind, Param, ROUTE, Route, handler, p, update};
use crate::wrapping;

const TOKEN: Param =
    p("token", Kind::String, "The wrapping token; without it, the token the request is made with.");

pub(crate) const WRAPPING_ROUTES: &[Route] = &[
    Route {
        pattern: "sys/wrapping/lookup",
        paths: &["sys/wrapping/lookup"],
        ops: &[update(handler!(c => wrapping::lookup(&c).await))],
        // As in Vault: anyone holding a wrapping token may ask about it, and asking does not
        // spend the token's one use.
        unauthenticated: true,
        synopsis: "When and where a wrapping token was made, and its TTL.",
        params: &[TOKEN],
        description: "Needs no token of its own. The wrapping token stays valid.",
        ..ROUTE
    },
    Route {
        pattern: "sys/wrapping/unwrap",
        paths: &["sys/wrapping/unwrap"],
        ops: &[update(handler!(c => wrapping::unwrap(&c).await))],
        synopsis: "The response a wrapping token holds, once.",
        params: &[TOKEN],
        description: "Answers the wrapped response as it was; the wrapping token is then revoked.",
        ..ROUTE
    },
    Route {
        pattern: "sys/wrapping/rewrap",
        paths: &["sys/wrapping/rewrap"],
        ops: &[update(handler!(c => wrapping::rewrap(&c).await))],
        synopsis: "Move a wrapped response to a new wrapping token with the same TTL.",
        params: &[TOKEN],
        description: "The old token is revoked.",
        ..ROUTE
    },
    Route {
        pattern: "sys/wrapping/wrap",
        paths: &["sys/wrapping/wrap"],
        ops: &[update(handler!(c => wrapping::wrap_data(&c)))],
        synopsis: "Wrap the given data in a wrapping token.",
        params: &[],
        description: "Needs X-Vault-Wrap-TTL. The body's fields are wrapped as they are.",
        ..ROUTE
    },
];
