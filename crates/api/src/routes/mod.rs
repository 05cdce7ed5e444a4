//! The route table: every path keymint serves, declared once. A row carries its path pattern,
//! its operations with their handlers and `sudo` flags, its typed field schema, and its flags
//! (unauthenticated, unaudited, existence check). Everything else is derived from it:
//! dispatch and the sudo check ([`crate::request`]), field coercion and Vault's
//! unknown-parameter warnings ([`Fields`], [`crate::dispatch`]), `?help=1` answers
//! ([`crate::help`]) and the OpenAPI document of `sys/internal/specs/openapi`
//! ([`crate::openapi`]).

mod approle;
mod auth;
mod aws;
mod jwt;
mod kubernetes;
mod sys;
mod token;
mod wrapping;

use std::future::Future;
use std::pin::Pin;
use std::sync::LazyLock;

use axum::response::Response;
use regex::Regex;

use crate::envelope::Reply;
use crate::error::ApiResult;
use crate::request::Operation;

use self::approle::APPROLE_ROUTES;
use self::auth::AUTH_SYS_ROUTES;
pub(crate) use self::aws::AWS_ROUTES;
use self::jwt::JWT_ROUTES;
use self::kubernetes::KUBERNETES_ROUTES;
use self::sys::SYS_ROUTES;
use self::token::TOKEN_ROUTES;
use self::wrapping::WRAPPING_ROUTES;
use crate::AppState;
pub(crate) use crate::dispatch::Call;
use crate::dispatch::Target;

/// Every table, and the type of mount its routes are relative to (the mount is forwarded to
/// their handlers), or `None` for routes relative to the root of the API.
pub(crate) const TABLES: &[(&[Route], Option<&str>)] = &[
    (AWS_ROUTES, Some("aws")),
    (APPROLE_ROUTES, Some("approle")),
    (JWT_ROUTES, Some("jwt")),
    (KUBERNETES_ROUTES, Some("kubernetes")),
    (SYS_ROUTES, None),
    (AUTH_SYS_ROUTES, None),
    (TOKEN_ROUTES, None),
    (WRAPPING_ROUTES, None),
];

/// Vault's route names: word characters at both ends, `-`, `.` and `@` inside.
const NAME: &str = r"(?P<name>\w(([\w\-.@]+)?\w)?)";

/// The type of a field: how its value is coerced (Vault's `framework.FieldType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    String,
    Int,
    Bool,
    /// Integer seconds or a Go duration string (`TypeDurationSecond`).
    Duration,
    /// A JSON array or one comma-separated string (`TypeCommaStringSlice`).
    CommaList,
    /// A JSON object, taken as it is.
    Map,
    /// An object or a list of `key=value` strings (`TypeKVPairs`).
    KvPairs,
}

impl Kind {
    /// The type as path help prints it.
    pub(crate) const fn help(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::Int => "int",
            Kind::Bool => "bool",
            Kind::Duration => "duration",
            Kind::CommaList => "comma-separated list",
            Kind::Map => "map",
            Kind::KvPairs => "map or list of key=value",
        }
    }
}

/// One field of a route's schema.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Param {
    pub name: &'static str,
    pub kind: Kind,
    pub text: &'static str,
    /// Also taken from the query string of a read (`GET creds/<role>?ttl=…`).
    pub query: bool,
    /// The value a handler reads when the request leaves the field out, coerced like a given
    /// one (`None`: the field is absent).
    pub default: Option<&'static str>,
    /// Other names the field is accepted under (Vault's deprecated spellings); the first
    /// present wins, the field's own name first.
    pub aliases: &'static [&'static str],
}

/// A body field.
pub(crate) const fn p(name: &'static str, kind: Kind, text: &'static str) -> Param {
    Param { name, kind, text, query: false, default: None, aliases: &[] }
}

/// A field a read takes from the query string too.
pub(crate) const fn q(name: &'static str, kind: Kind, text: &'static str) -> Param {
    Param { query: true, ..p(name, kind, text) }
}

impl Param {
    /// With a default value, written as a client would send it.
    pub(crate) const fn or(self, default: &'static str) -> Param {
        Param { default: Some(default), ..self }
    }

    /// Also accepted under `aliases`.
    pub(crate) const fn alias(self, aliases: &'static [&'static str]) -> Param {
        Param { aliases, ..self }
    }
}

/// The future a handler returns.
pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// What serves one operation of a route.
#[derive(Clone, Copy)]
pub(crate) enum Handler {
    /// A reply in Vault's envelope, audited and annotated like every other.
    Reply(fn(Call) -> BoxFuture<ApiResult<Reply>>),
    /// A whole HTTP response (Vault's bare bodies: `sys/health`, `sys/init`, `sys/metrics`).
    Raw(fn(Call) -> BoxFuture<Response>),
}

/// A [`Handler::Reply`] from an expression over the call: `handler!(c => f(&c).await)`.
macro_rules! handler {
    ($c:ident => $body:expr) => {{
        fn serve(
            $c: $crate::routes::Call,
        ) -> $crate::routes::BoxFuture<$crate::error::ApiResult<$crate::envelope::Reply>> {
            Box::pin(async move { $body })
        }
        $crate::routes::Handler::Reply(serve)
    }};
}

/// A [`Handler::Raw`] from an expression over the call.
macro_rules! raw_handler {
    ($c:ident => $body:expr) => {{
        fn serve($c: $crate::routes::Call) -> $crate::routes::BoxFuture<axum::response::Response> {
            Box::pin(async move { $body })
        }
        $crate::routes::Handler::Raw(serve)
    }};
}
pub(crate) use {handler, raw_handler};

/// One operation a route serves, its handler, and whether it needs `sudo` on top of its
/// capability (Vault's root paths).
#[derive(Clone, Copy)]
pub(crate) struct Op {
    pub op: Operation,
    pub sudo: bool,
    pub handler: Handler,
}

pub(crate) const fn read(handler: Handler) -> Op {
    Op { op: Operation::Read, sudo: false, handler }
}
pub(crate) const fn list(handler: Handler) -> Op {
    Op { op: Operation::List, sudo: false, handler }
}
pub(crate) const fn update(handler: Handler) -> Op {
    Op { op: Operation::Update, sudo: false, handler }
}
pub(crate) const fn delete(handler: Handler) -> Op {
    Op { op: Operation::Delete, sudo: false, handler }
}

impl Op {
    /// The same operation, needing `sudo`.
    pub(crate) const fn sudo(self) -> Op {
        Op { sudo: true, ..self }
    }
}

/// Vault's existence check: whether the object a write names exists already (then the write
/// needs `update`, else `create`).
pub(crate) type Existence = fn(AppState, Target) -> BoxFuture<ApiResult<bool>>;

#[derive(Clone, Copy)]
pub(crate) struct Route {
    /// The route as Vault prints it, `NAME` standing for the name pattern (captured as the
    /// call's name). Routes are tried in table order; the first whose pattern matches the
    /// whole path is the path's route.
    pub pattern: &'static str,
    /// The route's paths as OpenAPI writes them (`roles/{name}`): relative to the mount for an
    /// AWS route. A `{placeholder}` that is not a parameter below is a plain path segment.
    pub paths: &'static [&'static str],
    pub ops: &'static [Op],
    /// Answered without a token (`sys/health` and friends), before authentication and
    /// unaudited.
    pub unauthenticated: bool,
    /// Answered without audit records (scraped often: `sys/metrics`).
    pub unaudited: bool,
    /// Vault's existence check, for writes that create (`config/root`, token roles).
    pub existence: Option<Existence>,
    pub synopsis: &'static str,
    pub params: &'static [Param],
    pub description: &'static str,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route").field("pattern", &self.pattern).finish_non_exhaustive()
    }
}

/// The defaults of a row: authenticated, audited, no existence check.
pub(crate) const ROUTE: Route = Route {
    pattern: "",
    paths: &[],
    ops: &[],
    unauthenticated: false,
    unaudited: false,
    existence: None,
    synopsis: "",
    params: &[],
    description: "",
};

impl Route {
    /// The route's entry for `op`.
    pub(crate) fn op(&self, op: Operation) -> Option<&Op> {
        self.ops.iter().find(|o| o.op == op)
    }

    /// Whether `op` needs `sudo` here. An operation the route does not serve is held to the
    /// route's strictest flag, as Vault guards root paths whatever the operation.
    pub(crate) fn needs_sudo(&self, op: Operation) -> bool {
        match self.op(op) {
            Some(served) => served.sudo,
            None => self.ops.iter().any(|o| o.sudo),
        }
    }

    /// The field `name` of the schema (by its name or an alias).
    pub(crate) fn param(&self, name: &str) -> Option<&'static Param> {
        self.params.iter().find(|p| p.name == name)
    }

    /// Every name the route's fields are accepted under.
    pub(crate) fn known_fields(&self) -> Vec<&'static str> {
        self.params.iter().flat_map(|p| std::iter::once(p.name).chain(p.aliases.iter().copied())).collect()
    }
}

/// A route of the table, compiled.
pub(crate) struct Compiled {
    pub regex: Regex,
    pub route: &'static Route,
    /// Matched against the path relative to a mount of this type (`None`: the whole path).
    pub mount_type: Option<&'static str>,
    /// Whether it is a mount's route (`mount_type` is set).
    pub in_mount: bool,
}

impl Compiled {
    /// The name the path captures (`roles/<name>`), when the route has one.
    pub(crate) fn name<'p>(&self, path: &'p str) -> Option<&'p str> {
        self.regex.captures(path)?.name("name").map(|m| m.as_str())
    }
}

pub(crate) static COMPILED: LazyLock<Vec<Compiled>> = LazyLock::new(|| {
    let compile = |route: &'static Route, mount_type: Option<&'static str>| {
        let pattern = format!("^{}$", route.pattern.trim_end_matches('$').replace("NAME", NAME));
        // Invariant: the patterns of the tables are literals that compile (tested below).
        let regex = Regex::new(&pattern).unwrap_or_else(|_| unreachable!());
        Compiled { regex, route, mount_type, in_mount: mount_type.is_some() }
    };
    TABLES.iter().flat_map(|(routes, kind)| routes.iter().map(|r| compile(r, *kind))).collect()
});

/// The route of `path` (full, after `/v1/`) outside mounts.
pub(crate) fn find(path: &str) -> Option<&'static Compiled> {
    COMPILED.iter().find(|c| !c.in_mount && c.regex.is_match(path))
}

/// Whether `path` is served by its whole path rather than by a mount.
pub(crate) fn is_root_path(path: &str) -> bool {
    path.starts_with("sys/") || path.starts_with("auth/token/")
}

/// The route of a path outside any mount (`sys/…`, `auth/token/…`); `None` at once for any
/// other path, so a mount request does not try every root pattern.
pub(crate) fn find_root(path: &str) -> Option<&'static Compiled> {
    if !is_root_path(path) {
        return None;
    }
    find(path)
}

/// The route of a path relative to a mount of type `mount_type`.
pub(crate) fn find_in_mount(mount_type: &str, rest: &str) -> Option<&'static Compiled> {
    COMPILED.iter().find(|c| c.mount_type == Some(mount_type) && c.regex.is_match(rest))
}

#[cfg(test)]
mod tests;
