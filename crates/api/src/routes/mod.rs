//! The route table: every path keymint serves, with its operations, parameters and texts. It is
//! the one description of the API: `?help=1` answers ([`crate::help`]) and the OpenAPI document
//! of `sys/internal/specs/openapi` ([`crate::openapi`]) are both rendered from it, and the tests
//! below hold it to what the dispatcher actually serves.

mod aws;
mod sys;
mod token;

use std::sync::LazyLock;

use regex::Regex;

use crate::request::Operation;

pub(crate) use self::aws::AWS_ROUTES;
use self::sys::SYS_ROUTES;
use self::token::TOKEN_ROUTES;

/// Every table, and whether its routes are relative to an AWS mount.
pub(crate) const TABLES: &[(&[Route], bool)] =
    &[(AWS_ROUTES, true), (SYS_ROUTES, false), (TOKEN_ROUTES, false)];

/// Vault's route names: word characters at both ends, `-`, `.` and `@` inside.
const NAME: &str = r"(?P<name>\w(([\w\-.@]+)?\w)?)";

pub(crate) struct Param {
    pub name: &'static str,
    /// As help prints it: `string`, `int`, `bool`, `duration`, `comma-separated list`, `map`,
    /// `map or list of key=value`.
    pub kind: &'static str,
    pub text: &'static str,
    /// Also taken from the query string of a read (`GET creds/<role>?ttl=…`).
    pub query: bool,
}

/// A body parameter.
pub(crate) const fn p(name: &'static str, kind: &'static str, text: &'static str) -> Param {
    Param { name, kind, text, query: false }
}

/// A parameter a read takes from the query string too.
pub(crate) const fn q(name: &'static str, kind: &'static str, text: &'static str) -> Param {
    Param { name, kind, text, query: true }
}

/// One operation a route serves, and whether it needs `sudo` on top of its capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Op {
    pub op: Operation,
    pub sudo: bool,
}

pub(crate) const READ: Op = Op { op: Operation::Read, sudo: false };
pub(crate) const LIST: Op = Op { op: Operation::List, sudo: false };
pub(crate) const UPDATE: Op = Op { op: Operation::Update, sudo: false };
pub(crate) const DELETE: Op = Op { op: Operation::Delete, sudo: false };
pub(crate) const READ_SUDO: Op = Op { op: Operation::Read, sudo: true };
pub(crate) const LIST_SUDO: Op = Op { op: Operation::List, sudo: true };
pub(crate) const UPDATE_SUDO: Op = Op { op: Operation::Update, sudo: true };
pub(crate) const DELETE_SUDO: Op = Op { op: Operation::Delete, sudo: true };

pub(crate) struct Route {
    /// The route as Vault prints it, `NAME` standing for the name pattern. Routes are tried in
    /// table order; the first whose pattern matches the whole path is the path's route.
    pub pattern: &'static str,
    /// The route's paths as OpenAPI writes them (`roles/{name}`): relative to the mount for an
    /// AWS route. A `{placeholder}` that is not a parameter below is a plain path segment.
    pub paths: &'static [&'static str],
    pub ops: &'static [Op],
    /// Answered without a token (`sys/health` and friends).
    pub unauthenticated: bool,
    pub synopsis: &'static str,
    pub params: &'static [Param],
    pub description: &'static str,
}

/// A route of the table, compiled.
pub(crate) struct Compiled {
    pub regex: Regex,
    pub route: &'static Route,
    /// Matched against the path relative to an AWS mount.
    pub in_mount: bool,
}

pub(crate) static COMPILED: LazyLock<Vec<Compiled>> = LazyLock::new(|| {
    let compile = |route: &'static Route, in_mount: bool| {
        let pattern = format!("^{}$", route.pattern.trim_end_matches('$').replace("NAME", NAME));
        // Invariant: the patterns of the tables are literals that compile (tested below).
        let regex = Regex::new(&pattern).unwrap_or_else(|_| unreachable!());
        Compiled { regex, route, in_mount }
    };
    TABLES.iter().flat_map(|(routes, in_mount)| routes.iter().map(|r| compile(r, *in_mount))).collect()
});

/// The route of `path` (full, after `/v1/`); `rest` is the mount-relative part when the path
/// falls in an AWS mount.
pub(crate) fn find(path: &str, rest: Option<&str>) -> Option<&'static Compiled> {
    COMPILED.iter().find(|c| match (c.in_mount, rest) {
        (true, Some(rest)) => c.regex.is_match(rest),
        (false, _) => c.regex.is_match(path),
        (true, None) => false,
    })
}

#[cfg(test)]
mod tests;
