//! The tokenizer: splits a template into text and the tokens of its actions, decoding Go's
//! string literals and applying `{{-`/`-}}` trimming and comments on the way.

use super::ast::Value;
use super::{Result, TemplateError};

/// The white space of Go's trim markers and lexer.
const SPACE: [char; 4] = [' ', '\t', '\r', '\n'];

pub(super) fn perr(src: &str, pos: usize, msg: impl std::fmt::Display) -> TemplateError {
    let before = src.get(..pos).unwrap_or(src);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    TemplateError::Parse(format!("line {line}, column {col}: {msg}"))
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    Text(String),
    Open,
    Close,
    Ident(String),
    Field(String),
    Lit(Value),
    LParen,
    RParen,
    Pipe,
}

/// If a closing delimiter starts at `k`: the offset after it, and whether it trims (` -}}`).
fn close_at(src: &str, k: usize) -> Option<(usize, bool)> {
    let rest = src.get(k..)?;
    if rest.starts_with("}}") {
        Some((k + 2, false))
    } else if rest.starts_with(SPACE) && rest[1..].starts_with("-}}") {
        Some((k + 4, true))
    } else {
        None
    }
}

/// Splits the source into text and the tokens of each action, with their byte offsets.
pub(super) fn lex(src: &str) -> Result<Vec<(Tok, usize)>> {
    let (mut toks, mut pos, mut trim) = (Vec::new(), 0, false);
    loop {
        let open = src[pos..].find("{{").map_or(src.len(), |i| pos + i);
        let mut text = &src[pos..open];
        if trim {
            text = text.trim_start_matches(SPACE);
        }
        let mut k = open + 2;
        // Go wants white space after the dash, so that `{{-3}}` is the number -3.
        let rest = src.get(k..).unwrap_or("");
        if rest.starts_with('-') && rest[1..].starts_with(SPACE) {
            text = text.trim_end_matches(SPACE);
            k += 2;
        }
        if !text.is_empty() {
            toks.push((Tok::Text(text.to_string()), pos));
        }
        if open == src.len() {
            return Ok(toks);
        }
        if src[k..].starts_with("/*") {
            let end = src[k + 2..].find("*/").ok_or_else(|| perr(src, open, "unclosed comment"))?;
            let close = close_at(src, k + end + 4);
            (pos, trim) = close.ok_or_else(|| perr(src, open, "comment ends before closing delimiter"))?;
            continue;
        }
        toks.push((Tok::Open, open));
        loop {
            if let Some(close) = close_at(src, k) {
                toks.push((Tok::Close, k));
                (pos, trim) = close;
                break;
            }
            let rest = &src[k..];
            let word = |s: &str| s.find(|c: char| !c.is_alphanumeric() && c != '_').unwrap_or(s.len());
            let Some(c) = rest.chars().next() else {
                return Err(perr(src, open, "unclosed action"));
            };
            let (tok, len) = match c {
                ' ' | '\t' | '\r' | '\n' => {
                    k += 1;
                    continue;
                }
                '(' => (Tok::LParen, 1),
                ')' => (Tok::RParen, 1),
                '|' => (Tok::Pipe, 1),
                '"' => unquote(src, k).map(|(s, len)| (Tok::Lit(Value::Str(s)), len))?,
                '`' => {
                    let end = rest[1..].find('`').ok_or_else(|| perr(src, k, "unterminated raw string"))?;
                    // Go drops carriage returns from raw strings.
                    (Tok::Lit(Value::Str(rest[1..=end].replace('\r', ""))), end + 2)
                }
                '.' if word(&rest[1..]) > 0 => {
                    // Take `.A.B` whole so that it is reported as one unknown field.
                    let n = rest[1..].find(|c: char| !c.is_alphanumeric() && c != '_' && c != '.');
                    let n = n.unwrap_or(rest.len() - 1);
                    (Tok::Field(rest[1..=n].to_string()), n + 1)
                }
                '0'..='9' | '-' | '+' => {
                    let n = 1 + word(&rest[1..]);
                    let v =
                        rest[..n].parse().map_err(|_| perr(src, k, format!("bad number {}", &rest[..n])))?;
                    (Tok::Lit(Value::Int(v)), n)
                }
                c if c.is_alphabetic() || c == '_' => match &rest[..word(rest)] {
                    "true" => (Tok::Lit(Value::Bool(true)), 4),
                    "false" => (Tok::Lit(Value::Bool(false)), 5),
                    w => (Tok::Ident(w.to_string()), w.len()),
                },
                '$' => return Err(perr(src, k, "variables are not supported")),
                c => return Err(perr(src, k, format!("unexpected {c:?} in action"))),
            };
            toks.push((tok, k));
            k += len;
        }
    }
}

/// Go's one-character string escapes and what they stand for.
const ESCAPES: [(char, char); 9] = [
    ('a', '\x07'),
    ('b', '\x08'),
    ('f', '\x0c'),
    ('n', '\n'),
    ('r', '\r'),
    ('t', '\t'),
    ('v', '\x0b'),
    ('\\', '\\'),
    ('"', '"'),
];

/// Decodes the Go interpreted string whose quote is at `start`; returns it and its source
/// length.
fn unquote(src: &str, start: usize) -> Result<(String, usize)> {
    let err = |msg: &str| perr(src, start, msg);
    let (mut out, mut it) = (Vec::new(), src[start + 1..].char_indices());
    while let Some((i, c)) = it.next() {
        let c = match c {
            '"' => {
                return String::from_utf8(out).map(|s| (s, i + 2)).map_err(|_| err("escapes are not UTF-8"));
            }
            '\n' => break,
            '\\' => {
                let e = it.next().map_or(' ', |(_, e)| e);
                if let Some(&(_, c)) = ESCAPES.iter().find(|p| p.0 == e) {
                    c
                } else {
                    let (len, radix) = match e {
                        'x' => (2, 16),
                        'u' => (4, 16),
                        'U' => (8, 16),
                        '0'..='7' => (2, 8),
                        _ => return Err(err("unknown escape sequence in string")),
                    };
                    // An octal escape's first digit is `e` itself.
                    let mut digits: String = (radix == 8).then_some(e).into_iter().collect();
                    digits.extend((0..len).filter_map(|_| it.next().map(|(_, d)| d)));
                    let valid = digits.chars().all(|d| d.is_digit(radix));
                    let n = u32::from_str_radix(&digits, radix).ok().filter(|_| valid);
                    let n = n.ok_or_else(|| err("invalid escape in string"))?;
                    if radix == 16 && e != 'x' {
                        char::from_u32(n).ok_or_else(|| err("escape is not a character"))?
                    } else {
                        // \x and octal escapes are bytes, not characters.
                        out.push(u8::try_from(n).map_err(|_| err("octal escape over 255"))?);
                        continue;
                    }
                }
            }
            c => c,
        };
        out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
    }
    Err(err("unterminated quoted string"))
}

#[cfg(test)]
mod tests {
    use crate::go::template::tests::{parse_err, render};

    #[test]
    fn trimming_comments_and_literals() {
        for (src, want) in [
            ("a  \n {{- \"b\" -}} \n\t c", "abc"),
            ("x {{-3}} {{- +4 }}", "x -34"),
            ("a {{- /* a note */ -}} b{{/* another */}}", "ab"),
            (r#"{{ "t\tn\nq\"b\\x\x41u\u00e9U\U0001F600o\101" }}"#, "t\tn\nq\"b\\xAu\u{e9}U\u{1F600}oA"),
            ("{{ `raw\\n }} {{` }}", "raw\\n }} {{"),
            ("{{ `a\r\nb` }}", "a\nb"),
            ("{{ true }} {{ false }} {{ 007 }}", "true false 7"),
        ] {
            assert_eq!(render(src), want, "{src}");
        }
    }

    #[test]
    fn lex_errors() {
        for (src, want) in [
            ("{{ .Type", "unclosed action"),
            (r#"{{ "abc }}"#, "unterminated quoted string"),
            (r#"{{ "\q" }}"#, "unknown escape"),
            (r#"{{ "\x4" }}"#, "invalid escape"),
            (r#"{{ "\400" }}"#, "octal escape over 255"),
            (r#"{{ "\xff" }}"#, "escapes are not UTF-8"),
            (r#"{{ "\UFFFFFFFF" }}"#, "escape is not a character"),
            ("{{ `abc }}", "unterminated raw string"),
            ("{{ 12ab }}", "bad number 12ab"),
            ("{{/* note }}", "unclosed comment"),
            ("{{/* note */ .Type }}", "comment ends before closing delimiter"),
            ("{{ $x := 1 }}", "variables are not supported"),
            ("{{ .Type ; }}", "unexpected ';' in action"),
        ] {
            let err = parse_err(src);
            assert!(err.contains(want), "{src}: {err}");
        }
        assert!(parse_err("a\n  {{ nope }}").starts_with("line 2, column 6:"));
    }
}
