//! Whether a token's policies grant anything on a family of paths, such as an OpenAPI path
//! template (`aws/creds/{name}`): some path of the family must get a capability.
//!
//! For each pattern that grants something, a path both the template and the pattern match is
//! looked for (both are simple regular languages over characters), and the ACL's real
//! decision at that path is taken, so a more specific `deny` still wins there.

use super::Acl;

/// One step of a pattern, over characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// This character.
    Lit(char),
    /// One character: any (`Any`) or any but `/` (`Seg`).
    One(Class),
    /// Zero or more such characters.
    Many(Class),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Any,
    Seg,
}

/// What a `{name}` of a template and a `+` or `*` of a policy stand for in the path that is
/// tried: a character no policy is likely to name, so the path lands on the broad rule.
const FILLER: char = '~';

/// A template: `{name}` stands for any non-empty text, slashes included.
fn template_steps(template: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        steps.extend(rest[..open].chars().map(Step::Lit));
        match rest[open..].find('}') {
            Some(close) => {
                steps.extend([Step::One(Class::Any), Step::Many(Class::Any)]);
                rest = &rest[open + close + 1..];
            }
            None => {
                steps.extend(rest[open..].chars().map(Step::Lit));
                rest = "";
            }
        }
    }
    steps.extend(rest.chars().map(Step::Lit));
    steps
}

/// A policy pattern: a `+` segment is one or more characters but `/`; a trailing `*` is any
/// rest.
fn pattern_steps(pattern: &str) -> Vec<Step> {
    let (body, glob) = match pattern.strip_suffix('*') {
        Some(body) => (body, true),
        None => (pattern, false),
    };
    let mut steps = Vec::new();
    for (i, segment) in body.split('/').enumerate() {
        if i > 0 {
            steps.push(Step::Lit('/'));
        }
        if segment == "+" {
            steps.extend([Step::One(Class::Seg), Step::Many(Class::Seg)]);
        } else {
            steps.extend(segment.chars().map(Step::Lit));
        }
    }
    if glob {
        steps.push(Step::Many(Class::Any));
    }
    steps
}

/// A character both single steps accept, if any.
fn common(a: Step, b: Step) -> Option<char> {
    let class = |s: Step| match s {
        Step::One(c) | Step::Many(c) => Some(c),
        Step::Lit(_) => None,
    };
    let accepts = |s: Step, ch: char| match s {
        Step::Lit(l) => l == ch,
        Step::One(Class::Any) | Step::Many(Class::Any) => true,
        Step::One(Class::Seg) | Step::Many(Class::Seg) => ch != '/',
    };
    match (a, b) {
        (Step::Lit(ch), other) | (other, Step::Lit(ch)) => accepts(other, ch).then_some(ch),
        _ => (class(a).is_some() && class(b).is_some()).then_some(FILLER),
    }
}

/// A text both step lists match, if there is one: a search over (position in `a`, position
/// in `b`), each move taking a step of one list or a character from both.
fn meet(a: &[Step], b: &[Step]) -> Option<String> {
    fn go(a: &[Step], b: &[Step], i: usize, j: usize, dead: &mut Vec<Vec<bool>>) -> Option<String> {
        if dead[i][j] {
            return None;
        }
        if i == a.len() && j == b.len() {
            return Some(String::new());
        }
        // An empty repetition.
        if let Some(Step::Many(_)) = a.get(i)
            && let Some(found) = go(a, b, i + 1, j, dead)
        {
            return Some(found);
        }
        if let Some(Step::Many(_)) = b.get(j)
            && let Some(found) = go(a, b, i, j + 1, dead)
        {
            return Some(found);
        }
        // One character for both. A repetition stays where it is, but never both at once
        // (that would loop without progress).
        if let (Some(&x), Some(&y)) = (a.get(i), b.get(j))
            && let Some(ch) = common(x, y)
        {
            let next_i = if matches!(x, Step::Many(_)) { i } else { i + 1 };
            let next_j = if matches!(y, Step::Many(_)) { j } else { j + 1 };
            if (next_i, next_j) != (i, j)
                && let Some(rest) = go(a, b, next_i, next_j, dead)
            {
                return Some(format!("{ch}{rest}"));
            }
        }
        dead[i][j] = true;
        None
    }
    let mut dead = vec![vec![false; b.len() + 1]; a.len() + 1];
    go(a, b, 0, 0, &mut dead)
}

impl Acl {
    /// Whether some path the template describes gets a capability (one a request can use:
    /// not `deny`, not only `subscribe` or `recover`). In the template a `{name}` stands for
    /// any non-empty text, slashes included; `aws/creds/{name}` is granted by a policy on
    /// `aws/creds/web`, on `aws/*` or on `+/creds/+`, and not by one on `aws/roles/*`.
    pub fn grants_somewhere(&self, template: &str) -> bool {
        if self.is_root() {
            return true;
        }
        let template = template_steps(template.trim_start_matches('/'));
        self.granting_patterns().any(|pattern| {
            meet(&template, &pattern_steps(pattern)).is_some_and(|path| {
                self.capabilities(&path).iter().any(|c| {
                    ["create", "read", "update", "delete", "list", "sudo", "patch"].contains(&c.as_str())
                })
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::parse;

    fn acl(text: &str) -> Acl {
        Acl::new(&[parse("p", text).unwrap()], false)
    }

    #[test]
    fn a_path_both_match_is_found() {
        let t = template_steps("aws/creds/{name}");
        assert_eq!(meet(&t, &pattern_steps("aws/creds/web")).as_deref(), Some("aws/creds/web"));
        assert_eq!(meet(&t, &pattern_steps("aws/*")).as_deref(), Some("aws/creds/~"));
        assert_eq!(meet(&t, &pattern_steps("+/creds/+")).as_deref(), Some("aws/creds/~"));
        assert_eq!(meet(&t, &pattern_steps("aws/roles/*")), None);
        assert_eq!(meet(&t, &pattern_steps("aws/creds")), None, "the name is not empty");
        assert_eq!(meet(&t, &pattern_steps("aws/+")), None, "one segment is not enough");
        // A name may hold slashes (sys/mounts/{path} names aws/prod).
        let mounts = template_steps("sys/mounts/{path}/tune");
        assert_eq!(
            meet(&mounts, &pattern_steps("sys/mounts/aws/prod/tune")).as_deref(),
            Some("sys/mounts/aws/prod/tune")
        );
        assert_eq!(meet(&mounts, &pattern_steps("sys/mounts/+/tune")).as_deref(), Some("sys/mounts/~/tune"));
        // Templates without names are plain paths.
        let plain = template_steps("sys/policies/acl");
        assert!(meet(&plain, &pattern_steps("sys/policies/*")).is_some());
        assert!(meet(&plain, &pattern_steps("sys/policies/acl/*")).is_none());
    }

    #[test]
    fn a_template_is_granted_where_some_path_of_it_is() {
        let a = acl(r#"
            path "aws/creds/web"   { capabilities = ["read"] }
            path "team/*"          { capabilities = ["list"] }
            path "team/secret/*"   { capabilities = ["deny"] }
            path "sys/events/*"    { capabilities = ["subscribe"] }
            path "+/static-creds/+" { capabilities = ["read"] }
        "#);
        assert!(a.grants_somewhere("/aws/creds/{name}"));
        assert!(!a.grants_somewhere("/aws/creds"));
        assert!(!a.grants_somewhere("/aws/roles/{name}"));
        assert!(!a.grants_somewhere("/sys/policies/acl/{name}"));
        assert!(a.grants_somewhere("/team/{name}"));
        // The deny is more specific wherever the template reaches.
        assert!(!a.grants_somewhere("/team/secret/{name}"));
        assert!(!a.grants_somewhere("/sys/events/{name}"), "subscribe serves no keymint path");
        assert!(a.grants_somewhere("/aws-prod/static-creds/{name}"));
        assert!(Acl::new(&[], true).grants_somewhere("/sys/policies/acl/{name}"));
        assert!(!Acl::new(&[], false).grants_somewhere("/aws/creds/{name}"));
    }
}
