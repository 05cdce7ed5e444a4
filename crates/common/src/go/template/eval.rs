//! Rendering: evaluates the nodes of a template, with Go's and Vault's functions. The same
//! evaluation folds constant expressions for max_len.

use std::fmt::Write as _;

use base64::Engine as _;
use chrono::Utc;
use ring::digest;

use super::ast::{Expr, Field, IMPURE, Node, Value, type_name};
use super::layout::go_time;
use super::printf::sprintf;
use super::{Kind, Result, TemplateData, TemplateError};

/// Largest `random N`: no name needs more, and an unbounded N would let a config write make
/// every credential request allocate at will.
pub(super) const MAX_RANDOM: i64 = 4096;
/// Longest string a function may produce while rendering, for the same reason: nested
/// `replace "" ...` calls would otherwise grow without limit.
const MAX_VALUE: usize = 1 << 20;

pub(super) fn render_nodes(nodes: &[Node], d: &TemplateData<'_>, out: &mut String) -> Result<()> {
    for node in nodes {
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Action(e) => out.push_str(&eval(e, d)?.show()),
            Node::If(branches, otherwise) => {
                let mut chosen = otherwise;
                for (cond, body) in branches {
                    if eval(cond, d)?.truthy() {
                        chosen = body;
                        break;
                    }
                }
                render_nodes(chosen, d, out)?;
            }
        }
    }
    Ok(())
}

fn eval(e: &Expr, d: &TemplateData<'_>) -> Result<Value> {
    match e {
        Expr::Lit(v) => Ok(v.clone()),
        Expr::Field(f) => Ok(Value::Str(match (f, d.kind) {
            (Field::Type, Kind::Iam) => "IAM".into(),
            (Field::Type, Kind::Sts) => "STS".into(),
            // Vault fills only .Type for STS, whatever names the request carries.
            (_, Kind::Sts) => String::new(),
            (Field::DisplayName, Kind::Iam) => d.display_name.to_string(),
            (Field::PolicyName, Kind::Iam) => d.policy_name.to_string(),
        })),
        Expr::Call(f, args) => call(f, args, &mut |a| eval(a, d)),
    }
}

/// The value an expression has in every render for `kind`, when known without rendering.
pub(super) fn fold(e: &Expr, kind: Kind) -> Option<Value> {
    match e {
        Expr::Call(f, _) if IMPURE.contains(f) => None,
        Expr::Call(f, args) => {
            call(f, args, &mut |a| fold(a, kind).ok_or(TemplateError::Exec(String::new()))).ok()
        }
        Expr::Field(Field::DisplayName | Field::PolicyName) if kind == Kind::Iam => None,
        _ => eval(e, &TemplateData { kind, display_name: "", policy_name: "" }).ok(),
    }
}

fn exec(msg: String) -> TemplateError {
    TemplateError::Exec(msg)
}

fn arg<'v>(vals: &'v [Value], i: usize, name: &str) -> Result<&'v Value> {
    vals.get(i).ok_or_else(|| exec(format!("missing argument for {name}")))
}

fn str_arg<'v>(vals: &'v [Value], i: usize, name: &str) -> Result<&'v str> {
    match arg(vals, i, name)? {
        Value::Str(s) => Ok(s),
        v => Err(exec(format!("{name}: expected string; got {}", type_name(v.ty())))),
    }
}

fn int_arg(vals: &[Value], i: usize, name: &str) -> Result<i64> {
    match arg(vals, i, name)? {
        Value::Int(n) => Ok(*n),
        v => Err(exec(format!("{name}: expected int; got {}", type_name(v.ty())))),
    }
}

/// Go's eq/ne compare values of one basic type only.
fn same(a: &Value, b: &Value) -> Result<bool> {
    if a.ty() != b.ty() {
        let (a, b) = (type_name(a.ty()), type_name(b.ty()));
        return Err(exec(format!("incompatible types for comparison: {a} and {b}")));
    }
    Ok(a == b)
}

/// `s` cut to at most `n` bytes. Go cuts bytes; a Rust string cannot hold half a character,
/// so the cut moves back to a character boundary (never lengthening the output).
fn cut(s: &str, n: usize) -> &str {
    let mut i = n.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    &s[..i]
}

fn sha256_hex(s: &str) -> String {
    let digest = digest::digest(&digest::SHA256, s.as_bytes());
    digest.as_ref().iter().fold(String::with_capacity(64), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// Evaluates a call; `ev` evaluates an argument (rendering, or folding for max_len).
fn call(name: &str, args: &[Expr], ev: &mut dyn FnMut(&Expr) -> Result<Value>) -> Result<Value> {
    let mut vals = Vec::with_capacity(args.len());
    for a in args {
        let v = ev(a)?;
        // Go evaluates and/or lazily: stop at the first argument that decides the result.
        let decided = (name == "and" && !v.truthy()) || (name == "or" && v.truthy());
        vals.push(v);
        if decided {
            break;
        }
    }
    let s = |i| str_arg(&vals, i, name);
    let text = |s: String| match s.len() {
        0..=MAX_VALUE => Ok(Value::Str(s)),
        n => Err(exec(format!("{name}: result of {n} bytes is too long"))),
    };
    match name {
        "eq" => {
            let mut hit = false;
            for other in vals.iter().skip(1) {
                hit |= same(arg(&vals, 0, name)?, other)?;
            }
            Ok(Value::Bool(hit))
        }
        "ne" => Ok(Value::Bool(!same(arg(&vals, 0, name)?, arg(&vals, 1, name)?)?)),
        "not" => Ok(Value::Bool(!arg(&vals, 0, name)?.truthy())),
        // The deciding argument, or the last one.
        "and" | "or" => vals.last().cloned().ok_or_else(|| exec(format!("missing argument for {name}"))),
        "printf" => text(sprintf(s(0)?, vals.get(1..).unwrap_or(&[]))),
        "random" => {
            let n = int_arg(&vals, 0, name)?;
            if !(0..=MAX_RANDOM).contains(&n) {
                return Err(exec(format!("random length must be between 0 and {MAX_RANDOM} but was {n}")));
            }
            // 0 <= n <= MAX_RANDOM, checked above, so the conversion cannot fail.
            text(crate::random::base62(usize::try_from(n).unwrap_or(0)))
        }
        "truncate" => match usize::try_from(int_arg(&vals, 0, name)?) {
            Ok(n) if n > 0 => text(cut(s(1)?, n).to_string()),
            _ => Err(exec(format!("max length must be > 0 but was {}", int_arg(&vals, 0, name)?))),
        },
        "truncate_sha256" => match usize::try_from(int_arg(&vals, 0, name)?) {
            Ok(n) if n > 8 && s(1)?.len() <= n => text(s(1)?.to_string()),
            // Vault keeps N-8 bytes and appends 8 hex digits of the hash of the cut-off rest.
            Ok(n) if n > 8 => {
                let kept = cut(s(1)?, n - 8);
                text(format!("{kept}{}", &sha256_hex(&s(1)?[kept.len()..])[..8]))
            }
            _ => Err(exec(format!("max length must be > 8 but was {}", int_arg(&vals, 0, name)?))),
        },
        "unix_time" => text(Utc::now().timestamp().to_string()),
        "unix_time_millis" => text(Utc::now().timestamp_millis().to_string()),
        "timestamp" => text(go_time(s(0)?, &Utc::now())),
        "uppercase" => text(s(0)?.to_uppercase()),
        "lowercase" => text(s(0)?.to_lowercase()),
        "replace" => {
            let (old, new, within) = (s(0)?, s(1)?, s(2)?);
            // Checked before replacing, as the result can be far longer than the input.
            let hits = match old {
                "" => within.chars().count() + 1,
                _ => within.matches(old).count(),
            };
            if hits.saturating_mul(new.len()).saturating_add(within.len()) > MAX_VALUE {
                return Err(exec(format!("{name}: result is too long")));
            }
            text(within.replace(old, new))
        }
        "sha256" => text(sha256_hex(s(0)?)),
        "base64" => text(base64::engine::general_purpose::STANDARD.encode(s(0)?)),
        "uuid" => text(uuid::Uuid::new_v4().to_string()),
        _ => Err(exec(format!("function \"{name}\" not defined"))),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::go::template::Kind;
    use crate::go::template::tests::{data, exec_err, matches, max, render, render_as};

    #[test]
    fn fields() {
        let src = "{{ .Type }}:{{ .DisplayName }}:{{ .PolicyName }}";
        assert_eq!(render(src), "IAM:root:deploy");
        // Vault sets only .Type for STS.
        assert_eq!(render_as(src, &data(Kind::Sts, "root", "deploy")), "STS::");
    }

    #[test]
    fn logic_functions() {
        for (src, want) in [
            (
                r#"{{ eq "a" "a" }} {{ eq "a" "b" "a" }} {{ ne 1 2 }} {{ not "" }} {{ eq 1 2 }}"#,
                "true true true true false",
            ),
            (r#"{{ and "x" "" }}|{{ or "" "y" }}|{{ and 1 2 }}|{{ or 0 false }}"#, "|y|2|false"),
        ] {
            assert_eq!(render(src), want, "{src}");
        }
    }

    #[test]
    fn random_and_ids() {
        let r = render("{{ random 30 }}");
        assert!(matches("^[0-9A-Za-z]{30}$", &r), "{r}");
        assert_ne!(r, render("{{ random 30 }}"));
        assert_eq!(render("{{ random 0 }}"), "");
        let u = render("{{ uuid }}");
        assert!(matches("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", &u), "{u}");
    }

    #[test]
    fn string_functions() {
        for (src, want) in [
            (r#"{{ truncate 3 "abcdef" }}|{{ truncate 10 "abc" }}"#, "abc|abc"),
            // Cut back to a character boundary.
            (r#"{{ truncate 1 "éa" }}|{{ truncate 2 "éa" }}"#, "|é"),
            (r#"{{ "MiXed" | uppercase }}-{{ "MiXed" | lowercase }}"#, "MIXED-mixed"),
            (r#"{{ "a.b.c" | replace "." "-" }}"#, "a-b-c"),
            (r#"{{ "ab" | replace "" "-" }}"#, "-a-b-"),
            (r#"{{ sha256 "abc" }}"#, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            (r#"{{ base64 "hello" }}"#, "aGVsbG8="),
            (r#"{{ truncate_sha256 20 "short" }}"#, "short"),
        ] {
            assert_eq!(render(src), want, "{src}");
        }
        // Vault keeps N-8 bytes and appends 8 hex digits of the hash of the rest.
        let hash = render(r#"{{ sha256 "efghijklmnop" }}"#);
        assert_eq!(render(r#"{{ truncate_sha256 12 "abcdefghijklmnop" }}"#), format!("abcd{}", &hash[..8]));
    }

    #[test]
    fn time_functions() {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let t: u64 = render("{{ unix_time }}").parse().unwrap();
        assert!(t.abs_diff(now) < 5, "{t} vs {now}");
        let ms: u64 = render("{{ unix_time_millis }}").parse().unwrap();
        assert!((ms / 1000).abs_diff(now) < 5, "{ms} vs {now}");
        assert!(matches(
            r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$",
            &render(r#"{{ timestamp "2006-01-02T15:04:05Z07:00" }}"#)
        ));
    }

    #[test]
    fn conditionals() {
        let src = r#"{{ if eq .DisplayName "a" }}A{{ else if eq .DisplayName "root" }}R{{ else }}O{{ end }}"#;
        for (name, want) in [("a", "A"), ("root", "R"), ("z", "O")] {
            assert_eq!(render_as(src, &data(Kind::Iam, name, "")), want);
        }
        assert_eq!(render("{{ if .PolicyName }}has {{ .PolicyName }}{{ end }}."), "has deploy.");
        assert_eq!(render_as("{{ if .PolicyName }}has{{ end }}.", &data(Kind::Iam, "", "")), ".");
        let nested = r#"{{ if (eq .Type "IAM") }}{{ if not .DisplayName }}-{{ else }}{{ .DisplayName }}{{ end }}{{ end }}"#;
        assert_eq!(render(nested), "root");
    }

    #[test]
    fn exec_errors() {
        let bomb = r#"{{ printf "%1000000s" "" | replace "" "xx" | truncate 5 }}"#;
        for (src, want) in [
            ("{{ .DisplayName | truncate (and 0 5) }}", "max length must be > 0"),
            (r#"{{ truncate_sha256 (or 8 9) "x" }}"#, "max length must be > 8"),
            (r#"{{ eq (or .PolicyName 1) "x" }}"#, "incompatible types"),
            ("{{ random (or -1 2) }}", "random length"),
            (bomb, "too long"),
            (r#"{{ uppercase (or .PolicyName 1) }}"#, "expected string; got int"),
        ] {
            let err = exec_err(src);
            assert!(err.contains(want), "{src}: {err}");
        }
        assert_eq!(max(bomb, Kind::Iam), Some(5));
    }
}
