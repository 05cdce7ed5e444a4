//! Static analysis for max_len: an upper bound on the length of any output of a template.

use super::Kind;
use super::ast::{Expr, Node, Value};
use super::eval::fold;
use super::layout::walk_layout;
use super::printf::{Piece, fits, pieces};

pub(super) fn nodes_bound(nodes: &[Node], kind: Kind) -> Option<usize> {
    nodes.iter().try_fold(0usize, |total, node| {
        let b = match node {
            Node::Text(t) => t.len(),
            Node::Action(e) => bound(e, kind)?,
            Node::If(branches, otherwise) => {
                let mut worst = 0;
                let mut chosen = otherwise.as_slice();
                for (cond, body) in branches {
                    match fold(cond, kind).map(|v| v.truthy()) {
                        Some(false) => {}
                        // Always taken for this kind: the branches after it never render.
                        Some(true) => {
                            chosen = body;
                            break;
                        }
                        None => worst = worst.max(nodes_bound(body, kind)?),
                    }
                }
                worst.max(nodes_bound(chosen, kind)?)
            }
        };
        Some(total.saturating_add(b))
    })
}

/// An upper bound on the rendered length of `e`; None when it has none.
fn bound(e: &Expr, kind: Kind) -> Option<usize> {
    if let Some(v) = fold(e, kind) {
        return Some(v.show().len());
    }
    // Literals and .Type always fold: what is left of a field is an unbounded name.
    let Expr::Call(f, args) = e else { return None };
    let arg_bound = |i: usize| bound(args.get(i)?, kind);
    let fold_arg = |i: usize| fold(args.get(i)?, kind);
    let int_arg = |i: usize| match fold_arg(i) {
        Some(Value::Int(n)) => usize::try_from(n).ok(),
        _ => None,
    };
    match *f {
        "eq" | "ne" | "not" => Some(5),
        "and" | "or" => args.iter().try_fold(0, |m, a| Some(m.max(bound(a, kind)?))),
        "printf" => printf_bound(args, kind),
        "random" => int_arg(0),
        // Never longer than N, nor than the input.
        "truncate" | "truncate_sha256" => match (int_arg(0), arg_bound(1)) {
            (Some(n), Some(b)) => Some(n.min(b)),
            (n, b) => n.or(b),
        },
        // Ten digits until the year 2286.
        "unix_time" => Some(10),
        "unix_time_millis" => Some(13),
        "uuid" => Some(36),
        "sha256" => Some(64),
        "timestamp" => match fold_arg(0)? {
            Value::Str(layout) => {
                let mut total = 0usize;
                walk_layout(&layout, |_, _, width| total = total.saturating_add(width));
                Some(total)
            }
            _ => None,
        },
        "base64" => arg_bound(0).map(|b| b.div_ceil(3).saturating_mul(4)),
        // Case mapping changes the byte length of a few non-ASCII letters only, and IAM and STS
        // names are ASCII: a name with such letters fails at AWS whatever its length.
        "uppercase" | "lowercase" => arg_bound(0),
        "replace" => {
            let (b, Some(Value::Str(new))) = (arg_bound(2)?, fold_arg(1)) else {
                return None;
            };
            match fold_arg(0) {
                // Each occurrence of a non-empty OLD spans at least one byte.
                Some(Value::Str(old)) if !old.is_empty() => Some(b.saturating_mul(new.len().max(1))),
                // An empty (or unknown) OLD may insert NEW around every character.
                _ => Some(b.saturating_add(1).saturating_mul(new.len() + 1)),
            }
        }
        _ => None,
    }
}

/// Around a value, Go's `%!d(string=...)` for a verb that does not fit it adds at most this.
const BAD_VERB: usize = 15;

fn printf_bound(args: &[Expr], kind: Kind) -> Option<usize> {
    let Value::Str(format) = fold(args.first()?, kind)? else {
        return None;
    };
    let (mut total, mut args) = (0usize, args.iter().skip(1));
    for piece in pieces(&format) {
        let v = match piece {
            Piece::Lit(lit) => {
                total = total.saturating_add(lit.len());
                continue;
            }
            Piece::Verb(v) => v,
        };
        let b = match args.next() {
            None => format!("%!{}(MISSING)", v.verb).len(),
            Some(a) => {
                let b = bound(a, kind)?.max(v.width);
                if fits(v.verb, a.ty()) { b } else { b.saturating_add(BAD_VERB) }
            }
        };
        total = total.saturating_add(b);
    }
    // Extra arguments print as `%!(EXTRA string=a, int=1)`.
    for (i, a) in args.enumerate() {
        total = total.saturating_add(bound(a, kind)?.saturating_add(if i == 0 { 17 } else { 9 }));
    }
    Some(total)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::go::template::tests::{data, max, render_as};
    use crate::go::template::{DEFAULT_USERNAME_TEMPLATE, Kind};

    #[test]
    fn max_len() {
        let by_type = r#"{{ if eq .Type "IAM" }}{{ random 50 }}{{ else }}{{ random 20 }}{{ end }}"#;
        // Undecidable before rendering: the longest branch.
        let by_name = "{{ if .DisplayName }}{{ random 9 }}{{ else }}{{ random 5 }}{{ end }}";
        for (src, iam, sts) in [
            ("{{ .DisplayName }}", None, Some(0)),
            ("{{ .PolicyName | truncate 10 }}", Some(10), Some(0)),
            (r#"{{ printf "x-%s" (random 70) }}"#, Some(72), Some(72)),
            (by_type, Some(50), Some(20)),
            (by_name, Some(9), Some(5)),
        ] {
            assert_eq!((max(src, Kind::Iam), max(src, Kind::Sts)), (iam, sts), "{src}");
        }
        for (src, want) in [
            ("ab{{ uuid }}{{ unix_time }}{{ unix_time_millis }}", Some(61)),
            ("{{ sha256 .DisplayName }}{{ .DisplayName | truncate 10 | base64 }}", Some(80)),
            (r#"{{ timestamp "2006-01-02 MST" }}"#, Some(14)),
            (r#"{{ .DisplayName | truncate 10 | replace "a" "xyz" }}"#, Some(30)),
            (r#"{{ .DisplayName | replace "a" "xyz" }}"#, None),
            ("{{ .DisplayName | truncate_sha256 20 | uppercase }}", Some(20)),
            (r#"{{ printf "%d-%5s" 42 "ab" }}{{ eq .Type "x" }}"#, Some(13)),
        ] {
            assert_eq!(max(src, Kind::Iam), want, "{src}");
        }
    }

    #[test]
    fn max_len_bounds_real_output() {
        let long = "n".repeat(300);
        for src in [
            DEFAULT_USERNAME_TEMPLATE,
            r#"{{ printf "%s_%s" (.DisplayName | truncate 20) (.PolicyName | truncate_sha256 20) }}"#,
            r#"{{ .PolicyName | truncate 9 | replace "" "-" }}{{ printf "%v%d" 1 .Type }}"#,
            r#"{{ if .DisplayName }}{{ .DisplayName | truncate 7 | base64 }}{{ else }}x{{ end }}"#,
        ] {
            for kind in [Kind::Iam, Kind::Sts] {
                let out = render_as(src, &data(kind, &long, &long));
                assert!(out.len() <= max(src, kind).unwrap(), "{src}: {out}");
            }
        }
    }
}
