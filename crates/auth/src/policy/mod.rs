//! ACL policies in Vault's syntax (HCL or JSON) and the decision they make for a request.
//!
//! A policy is a list of `path "<pattern>" { capabilities = [...] }` rules. A token's policies
//! are merged per pattern (capabilities unioned, `deny` wins), and a request path is judged
//! by the one rule that matches it best: an exact pattern, else the most specific of the
//! patterns with `+` (one path segment) or a trailing `*` (any rest), by Vault's priority
//! order. Pure logic: no storage, no I/O.

mod acl;
mod glob;
mod parse;
mod reach;

use std::collections::BTreeMap;

use serde_json::Value;

pub use acl::{Acl, Denied};
pub use glob::pattern_matches;
pub use parse::parse;

/// A set of capabilities.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Caps(u16);

impl Caps {
    pub const NONE: Caps = Caps(0);
    pub const CREATE: Caps = Caps(1);
    pub const READ: Caps = Caps(1 << 1);
    pub const UPDATE: Caps = Caps(1 << 2);
    pub const DELETE: Caps = Caps(1 << 3);
    pub const LIST: Caps = Caps(1 << 4);
    pub const SUDO: Caps = Caps(1 << 5);
    pub const DENY: Caps = Caps(1 << 6);
    pub const PATCH: Caps = Caps(1 << 7);
    /// Vault's event subscription and snapshot recovery capabilities: accepted so policies
    /// written for Vault load unchanged, and reported back, but no keymint path asks for them.
    pub const SUBSCRIBE: Caps = Caps(1 << 8);
    pub const RECOVER: Caps = Caps(1 << 9);

    /// Names in the order Vault reports them (sorted).
    const NAMES: [(&'static str, Caps); 10] = [
        ("create", Caps::CREATE),
        ("delete", Caps::DELETE),
        ("deny", Caps::DENY),
        ("list", Caps::LIST),
        ("patch", Caps::PATCH),
        ("read", Caps::READ),
        ("recover", Caps::RECOVER),
        ("subscribe", Caps::SUBSCRIBE),
        ("sudo", Caps::SUDO),
        ("update", Caps::UPDATE),
    ];

    pub fn contains(self, other: Caps) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }

    pub fn union(self, other: Caps) -> Caps {
        Caps(self.0 | other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub(super) fn from_name(name: &str) -> Option<Caps> {
        Caps::NAMES.iter().find(|(n, _)| *n == name).map(|(_, c)| *c)
    }

    /// Sorted capability names; `["deny"]` for a denial or nothing at all.
    pub fn names(self) -> Vec<String> {
        if self.contains(Caps::DENY) || self.is_empty() {
            return vec!["deny".into()];
        }
        Caps::NAMES.iter().filter(|(_, c)| self.contains(*c)).map(|(n, _)| (*n).to_string()).collect()
    }
}

/// Parameter constraints of a rule: name → allowed (or denied) values; an empty list means any
/// value.
pub type ParamValues = BTreeMap<String, Vec<Value>>;

/// One `path` block.
#[derive(Debug, Clone, PartialEq)]
pub struct PathRule {
    pub pattern: String,
    pub caps: Caps,
    pub allowed_parameters: Option<ParamValues>,
    pub denied_parameters: Option<ParamValues>,
    pub required_parameters: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub name: String,
    pub rules: Vec<PathRule>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("failed to parse policy: {0}")]
pub struct PolicyError(pub String);

pub(super) fn bad(msg: impl Into<String>) -> PolicyError {
    PolicyError(msg.into())
}

/// The built-in policy every token gets unless created with `no_default_policy`: a token may
/// look itself up, renew and revoke itself, ask its own capabilities, and renew or look up
/// leases (whose ids it must know).
pub const DEFAULT_POLICY: &str = r#"
# Look up, renew and revoke the token itself.
path "auth/token/lookup-self" {
    capabilities = ["read"]
}
path "auth/token/renew-self" {
    capabilities = ["update"]
}
path "auth/token/revoke-self" {
    capabilities = ["update"]
}

# What may this token do at a path?
path "sys/capabilities-self" {
    capabilities = ["update"]
}

# Renew and look up leases by id.
path "sys/renew" {
    capabilities = ["update"]
}
path "sys/leases/renew" {
    capabilities = ["update"]
}
path "sys/leases/lookup" {
    capabilities = ["update"]
}

# Wrap values in a response-wrapping token, look one up, and unwrap one handed over.
path "sys/wrapping/wrap" {
    capabilities = ["update"]
}
path "sys/wrapping/lookup" {
    capabilities = ["update"]
}
path "sys/wrapping/unwrap" {
    capabilities = ["update"]
}
"#;

/// The built-in policy of response-wrapping tokens, which cannot be written over: the token can
/// unwrap its response (presenting itself) or look it up, and nothing else.
pub const RESPONSE_WRAPPING_POLICY: &str = r#"
path "sys/wrapping/unwrap" {
    capabilities = ["update"]
}
path "sys/wrapping/lookup" {
    capabilities = ["update"]
}
"#;

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Random soup of HCL and JSON pieces: parsing answers Ok or a reason, never panics, and
    /// whatever parses gives an ACL that answers.
    #[test]
    fn arbitrary_input_never_panics() {
        use rand::{Rng, SeedableRng};
        const PIECES: &[&str] = &[
            "path",
            " ",
            "\n",
            "\"",
            "{",
            "}",
            "[",
            "]",
            "=",
            ",",
            "capabilities",
            "\"read\"",
            "\"deny\"",
            "\"sudo\"",
            "*",
            "+",
            "/",
            "aws",
            "allowed_parameters",
            "denied_parameters",
            "required_parameters",
            "policy",
            "\"write\"",
            "#",
            "//",
            "/*",
            "*/",
            ":",
            "null",
            "true",
            "1",
            "\"\"",
            "\\",
            "é",
            "\u{0}",
        ];
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x6b65796d696e74);
        for _ in 0..20_000 {
            let len = rng.random_range(0..40);
            let text: String = (0..len).map(|_| PIECES[rng.random_range(0..PIECES.len())]).collect();
            if let Ok(policy) = parse("fuzz", &text) {
                let acl = Acl::new(&[policy], false);
                let _ = acl.capabilities("aws/creds/x");
                let _ = acl.check("aws/creds/x", Caps::UPDATE, true, &[("ttl", &json!("1h"))]);
            }
        }
    }

    #[test]
    fn the_default_policy_parses() {
        let a = Acl::new(&[parse("default", DEFAULT_POLICY).unwrap()], false);
        assert_eq!(a.capabilities("auth/token/lookup-self"), ["read"]);
        assert_eq!(a.capabilities("sys/leases/renew"), ["update"]);
        assert_eq!(a.capabilities("aws/creds/x"), ["deny"]);
        assert_eq!(a.capabilities("sys/wrapping/unwrap"), ["update"]);
    }

    #[test]
    fn the_response_wrapping_policy_allows_unwrap_and_lookup_only() {
        let a = Acl::new(&[parse("response-wrapping", RESPONSE_WRAPPING_POLICY).unwrap()], false);
        assert_eq!(a.capabilities("sys/wrapping/unwrap"), ["update"]);
        assert_eq!(a.capabilities("sys/wrapping/lookup"), ["update"]);
        for path in ["sys/wrapping/rewrap", "sys/wrapping/wrap", "auth/token/lookup-self", "aws/creds/x"] {
            assert_eq!(a.capabilities(path), ["deny"], "{path}");
        }
    }
}
