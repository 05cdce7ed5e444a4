//! Go's fmt.Sprintf for the verbs templates use, and the reading of a format string that
//! rendering and max_len share.

use std::fmt::Write as _;

use super::ast::{Value, type_name};

/// One verb of a Go format string: `%-8s` is `{ minus: true, zero: false, width: 8, verb: 's' }`.
pub(super) struct Verb {
    pub(super) minus: bool,
    pub(super) zero: bool,
    pub(super) width: usize,
    pub(super) verb: char,
}

pub(super) enum Piece {
    Lit(String),
    Verb(Verb),
}

/// Splits a Go format string into literal text (with `%%` and a dangling `%` as Go prints
/// them) and verbs, so that rendering and max_len read a format alike.
pub(super) fn pieces(f: &str) -> Vec<Piece> {
    let (mut out, mut lit, mut chars) = (Vec::new(), String::new(), f.chars().peekable());
    while let Some(c) = chars.next() {
        if c != '%' {
            lit.push(c);
            continue;
        }
        let (mut minus, mut zero, mut width) = (false, false, 0usize);
        while let Some(flag) = chars.next_if(|c| "-+# 0".contains(*c)) {
            minus |= flag == '-';
            zero |= flag == '0';
        }
        while let Some(d) = chars.next_if(char::is_ascii_digit) {
            // Go refuses widths over a million; capping keeps a render's size sane.
            width = (width * 10 + d.to_digit(10).map_or(0, |d| d as usize)).min(1_000_000);
        }
        match chars.next() {
            None => lit.push_str("%!(NOVERB)"),
            Some('%') => lit.push('%'),
            Some(verb) => {
                out.push(Piece::Lit(std::mem::take(&mut lit)));
                out.push(Piece::Verb(Verb { minus, zero, width, verb }));
            }
        }
    }
    out.push(Piece::Lit(lit));
    out
}

/// Whether a verb prints a value of this type (a mismatch prints `%!d(string=x)`, as in Go).
pub(super) fn fits(verb: char, ty: char) -> bool {
    matches!((verb, ty), ('s' | 'v', 's') | ('d' | 'v', 'i') | ('t' | 'v', 'b'))
}

/// Go's fmt.Sprintf for the verbs templates use: %s %v %d %t %%, with width and `-`/`0`.
pub(super) fn sprintf(f: &str, args: &[Value]) -> String {
    let (mut out, mut args) = (String::new(), args.iter());
    for piece in pieces(f) {
        let v = match piece {
            Piece::Lit(lit) => {
                out.push_str(&lit);
                continue;
            }
            Piece::Verb(v) => v,
        };
        match (v, args.next()) {
            (v, Some(a)) if fits(v.verb, a.ty()) => {
                let (body, pad) = (a.show(), v.width.saturating_sub(a.show().chars().count()));
                let fill = if v.zero && !v.minus { "0" } else { " " }.repeat(pad);
                out.push_str(&if v.minus { body + &fill } else { fill + &body });
            }
            (v, Some(a)) => _ = write!(out, "%!{}({}={})", v.verb, type_name(a.ty()), a.show()),
            (v, None) => _ = write!(out, "%!{}(MISSING)", v.verb),
        }
    }
    let extra: Vec<String> = args.map(|v| format!("{}={}", type_name(v.ty()), v.show())).collect();
    if !extra.is_empty() {
        _ = write!(out, "%!(EXTRA {})", extra.join(", "));
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::go::template::tests::render;

    #[test]
    fn printf() {
        for (src, want) in [
            (r#"{{ printf "%s=%d %v %v %t %%" "a" 42 true "s" false }}"#, "a=42 true s false %"),
            (r#"{{ printf "[%5s|%-4d|%03d]" "ab" 7 5 }}"#, "[   ab|7   |005]"),
            // Go prints mistakes instead of failing.
            (r#"{{ printf "%d %s" "x" }}"#, "%!d(string=x) %!s(MISSING)"),
            (r#"{{ printf "a" 1 "b" }}"#, "a%!(EXTRA int=1, string=b)"),
            (r#"{{ printf "%" }}"#, "%!(NOVERB)"),
        ] {
            assert_eq!(render(src), want, "{src}");
        }
    }
}
