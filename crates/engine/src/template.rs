//! Vault's `username_template`: the subset of Go's text/template that Vault users write, with
//! the helpers Vault registers (`random`, `truncate`, `unix_time`...). A template is parsed
//! when the config is written, rendered for each credential request, and its output length is
//! bounded statically, so that a template able to exceed IAM's 64 or STS's 32 characters is
//! refused at write time instead of failing every later request.
//!
//! Supported: text, actions with `{{- `/` -}}` trimming, `{{/* comments */}}`, pipelines,
//! parenthesised pipelines, `if`/`else if`/`else`/`end`, string, raw string, int and bool
//! literals, the fields `.Type`, `.DisplayName`, `.PolicyName`, Go's `eq ne not and or printf`
//! and Vault's helpers. Anything else (variables, `range`, `with`...) is a parse error.

use std::fmt::Write as _;

use base64::Engine as _;
use chrono::{DateTime, Datelike as _, Timelike as _, Utc};
use rand::Rng as _;
use ring::digest;

pub const DEFAULT_USERNAME_TEMPLATE: &str = r#"{{ if (eq .Type "STS") }}{{ printf "vault-%s-%s"  (unix_time) (random 20) | truncate 32 }}{{ else }}{{ printf "vault-%s-%s-%s" (printf "%s-%s" (.DisplayName) (.PolicyName) | truncate 42) (unix_time) (random 20) | truncate 64 }}{{ end }}"#;

/// Largest `random N`: no name needs more, and an unbounded N would let a config write make
/// every credential request allocate at will.
const MAX_RANDOM: i64 = 4096;
/// Longest string a function may produce while rendering, for the same reason: nested
/// `replace "" ...` calls would otherwise grow without limit.
const MAX_VALUE: usize = 1 << 20;
const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// The white space of Go's trim markers and lexer.
const SPACE: [char; 4] = [' ', '\t', '\r', '\n'];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Iam,
    Sts,
}

#[derive(Debug, Clone, Copy)]
pub struct TemplateData<'a> {
    pub kind: Kind,
    pub display_name: &'a str,
    pub policy_name: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The template is malformed; the message starts with `line L, column C:`.
    #[error("{0}")]
    Parse(String),
    /// Rendering failed (a bad argument computed at run time, incomparable values).
    #[error("{0}")]
    Exec(String),
}

type Result<T> = std::result::Result<T, TemplateError>;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Str(String),
    Int(i64),
    Bool(bool),
}

impl Value {
    /// Go's truth: the zero value of each type is false.
    fn truthy(&self) -> bool {
        match self {
            Value::Str(s) => !s.is_empty(),
            Value::Int(n) => *n != 0,
            Value::Bool(b) => *b,
        }
    }
    /// Type codes: `s` string, `i` int, `b` bool; `a` (any) is only static, see [`Expr::ty`].
    fn ty(&self) -> char {
        match self {
            Value::Str(_) => 's',
            Value::Int(_) => 'i',
            Value::Bool(_) => 'b',
        }
    }
    fn show(&self) -> String {
        match self {
            Value::Str(s) => s.clone(),
            Value::Int(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
        }
    }
}

fn type_name(ty: char) -> &'static str {
    match ty {
        's' => "string",
        'i' => "int",
        'b' => "bool",
        _ => "any",
    }
}

/// Name, parameter types, type of further arguments (`-`: none), result type. Types are
/// checked when parsing, so mistakes are refused when the template is written.
const FUNCS: &[(&str, &str, char, char)] = &[
    ("eq", "aa", 'a', 'b'),
    ("ne", "aa", '-', 'b'),
    ("not", "a", '-', 'b'),
    ("and", "a", 'a', 'a'),
    ("or", "a", 'a', 'a'),
    ("printf", "s", 'a', 's'),
    ("random", "i", '-', 's'),
    ("truncate", "is", '-', 's'),
    ("truncate_sha256", "is", '-', 's'),
    ("unix_time", "", '-', 's'),
    ("unix_time_millis", "", '-', 's'),
    ("timestamp", "s", '-', 's'),
    ("uppercase", "s", '-', 's'),
    ("lowercase", "s", '-', 's'),
    ("replace", "sss", '-', 's'),
    ("sha256", "s", '-', 's'),
    ("base64", "s", '-', 's'),
    ("uuid", "", '-', 's'),
];

/// Functions whose result may differ between two renders: never folded by max_len.
const IMPURE: [&str; 5] = ["random", "unix_time", "unix_time_millis", "timestamp", "uuid"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Type,
    DisplayName,
    PolicyName,
}

/// A pipeline `a | f x` is stored as the call `f x a`: Go passes the piped value last.
#[derive(Debug, Clone)]
enum Expr {
    Lit(Value),
    Field(Field),
    Call(&'static str, Vec<Expr>),
}

impl Expr {
    fn ty(&self) -> char {
        match self {
            Expr::Lit(v) => v.ty(),
            Expr::Field(_) => 's',
            // Go's and/or return one of their arguments.
            Expr::Call("and" | "or", args) => {
                let mut tys = args.iter().map(Expr::ty);
                let first = tys.next().unwrap_or('a');
                if tys.all(|t| t == first) { first } else { 'a' }
            }
            Expr::Call(f, _) => FUNCS.iter().find(|s| s.0 == *f).map_or('a', |s| s.3),
        }
    }
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Expr),
    /// `(condition, body)` of the `if` and of each `else if`, then the `else` body.
    If(Vec<(Expr, Vec<Node>)>, Vec<Node>),
}

#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
}

impl Template {
    pub fn parse(src: &str) -> Result<Template> {
        // Vault refuses an empty template rather than generating empty names.
        if src.is_empty() {
            return Err(TemplateError::Parse("missing template".into()));
        }
        let mut p = Parser { src, toks: lex(src)?, i: 0 };
        match p.list()? {
            (nodes, Stop::Eof) => Ok(Template { nodes }),
            (_, Stop::End(at) | Stop::Else(at) | Stop::ElseIf(_, at)) => {
                Err(perr(src, at, "end or else without if"))
            }
        }
    }

    pub fn render(&self, data: &TemplateData<'_>) -> Result<String> {
        let mut out = String::new();
        render_nodes(&self.nodes, data, &mut out)?;
        Ok(out)
    }

    /// An upper bound on the length in bytes of any output for this kind, whatever the display
    /// name and role name are (they are unbounded); None when no bound exists (e.g. a bare
    /// `{{ .PolicyName }}` without truncate). Used to reject at write time a template that can
    /// exceed IAM's 64-char user name limit (Kind::Iam) or STS's 32-char federation name limit.
    pub fn max_len(&self, kind: Kind) -> Option<usize> {
        nodes_bound(&self.nodes, kind)
    }
}

fn perr(src: &str, pos: usize, msg: impl std::fmt::Display) -> TemplateError {
    let before = src.get(..pos).unwrap_or(src);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    TemplateError::Parse(format!("line {line}, column {col}: {msg}"))
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
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
fn lex(src: &str) -> Result<Vec<(Tok, usize)>> {
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

/// What ended a list of nodes, with the offset of its action.
enum Stop {
    Eof,
    End(usize),
    Else(usize),
    ElseIf(Expr, usize),
}

struct Parser<'a> {
    src: &'a str,
    toks: Vec<(Tok, usize)>,
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i).map(|t| &t.0)
    }
    fn pos(&self) -> usize {
        self.toks.get(self.i).map_or(self.src.len(), |t| t.1)
    }
    fn err(&self, msg: impl std::fmt::Display) -> TemplateError {
        perr(self.src, self.pos(), msg)
    }
    /// The identifier at the cursor, if any: keywords open actions.
    fn word(&self) -> &str {
        match self.peek() {
            Some(Tok::Ident(w)) => w,
            _ => "",
        }
    }
    fn close(&mut self) -> Result<()> {
        if self.peek() != Some(&Tok::Close) {
            return Err(self.err("unexpected token in action"));
        }
        self.i += 1;
        Ok(())
    }
    fn action(&mut self) -> Result<Expr> {
        let e = self.pipeline()?;
        self.close()?;
        Ok(e)
    }

    fn list(&mut self) -> Result<(Vec<Node>, Stop)> {
        let mut nodes = Vec::new();
        while let Some((tok, at)) = self.toks.get(self.i).cloned() {
            self.i += 1;
            if let Tok::Text(t) = tok {
                nodes.push(Node::Text(t));
                continue;
            }
            let keyword = self.word().to_string();
            match keyword.as_str() {
                "if" | "end" | "else" => self.i += 1,
                "range" | "with" | "define" | "template" | "block" | "break" | "continue" => {
                    return Err(self.err(format!("{keyword} is not supported")));
                }
                _ => {}
            }
            match keyword.as_str() {
                "if" => {
                    let cond = self.action()?;
                    nodes.push(self.if_rest(cond, at)?);
                }
                "end" => return self.close().map(|()| (nodes, Stop::End(at))),
                "else" if self.word() == "if" => {
                    self.i += 1;
                    return Ok((nodes, Stop::ElseIf(self.action()?, at)));
                }
                "else" => return self.close().map(|()| (nodes, Stop::Else(at))),
                _ => nodes.push(Node::Action(self.action()?)),
            }
        }
        Ok((nodes, Stop::Eof))
    }

    fn if_rest(&mut self, mut cond: Expr, at: usize) -> Result<Node> {
        let mut branches = Vec::new();
        loop {
            let (body, stop) = self.list()?;
            branches.push((cond, body));
            match stop {
                Stop::End(_) => return Ok(Node::If(branches, Vec::new())),
                Stop::ElseIf(next, _) => cond = next,
                Stop::Else(_) => {
                    return match self.list()? {
                        (otherwise, Stop::End(_)) => Ok(Node::If(branches, otherwise)),
                        (_, Stop::Else(p) | Stop::ElseIf(_, p)) => Err(perr(self.src, p, "else after else")),
                        (_, Stop::Eof) => Err(perr(self.src, at, "if without matching end")),
                    };
                }
                Stop::Eof => return Err(perr(self.src, at, "if without matching end")),
            }
        }
    }

    fn pipeline(&mut self) -> Result<Expr> {
        let mut e = self.command(None)?;
        while self.peek() == Some(&Tok::Pipe) {
            self.i += 1;
            e = self.command(Some(e))?;
        }
        Ok(e)
    }

    fn command(&mut self, piped: Option<Expr>) -> Result<Expr> {
        let pos = self.pos();
        if let Some(Tok::Ident(name)) = self.peek().cloned() {
            self.i += 1;
            let mut args = Vec::new();
            while let Some(a) = self.operand()? {
                args.push(a);
            }
            args.extend(piped);
            return call_expr(self.src, pos, &name, args);
        }
        let first = self.operand()?.ok_or_else(|| self.err("missing value for command"))?;
        if piped.is_some() {
            return Err(perr(self.src, pos, "non executable command in pipeline stage"));
        }
        if self.operand()?.is_some() {
            return Err(perr(self.src, pos, "can't give argument to non-function"));
        }
        Ok(first)
    }

    fn operand(&mut self) -> Result<Option<Expr>> {
        let pos = self.pos();
        let e = match self.peek().cloned() {
            None | Some(Tok::Pipe | Tok::RParen | Tok::Close | Tok::Open | Tok::Text(_)) => {
                return Ok(None);
            }
            Some(Tok::Lit(v)) => Expr::Lit(v),
            Some(Tok::Field(name)) => Expr::Field(match name.as_str() {
                "Type" => Field::Type,
                "DisplayName" => Field::DisplayName,
                "PolicyName" => Field::PolicyName,
                _ => return Err(self.err(format!("can't evaluate field {name}"))),
            }),
            // A function name as an argument is a call without arguments, as in Go.
            Some(Tok::Ident(name)) => {
                self.i += 1;
                return call_expr(self.src, pos, &name, Vec::new()).map(Some);
            }
            Some(Tok::LParen) => {
                self.i += 1;
                let e = self.pipeline()?;
                if self.peek() != Some(&Tok::RParen) {
                    return Err(self.err("unclosed left paren"));
                }
                e
            }
        };
        self.i += 1;
        Ok(Some(e))
    }
}

/// Builds a call after checking arity, argument types, and the constant arguments Vault would
/// only reject when rendering.
fn call_expr(src: &str, pos: usize, name: &str, args: Vec<Expr>) -> Result<Expr> {
    let err = |msg: String| perr(src, pos, msg);
    let Some(&(name, params, more, _)) = FUNCS.iter().find(|f| f.0 == name) else {
        return Err(err(format!("function \"{name}\" not defined")));
    };
    let want = params.len();
    if args.len() < want || (more == '-' && args.len() > want) {
        let least = if more == '-' { "" } else { "at least " };
        return Err(err(format!("wrong number of args for {name}: want {least}{want} got {}", args.len())));
    }
    for (i, a) in args.iter().enumerate() {
        let (want, got) = (params.chars().nth(i).unwrap_or(more), a.ty());
        if want != 'a' && got != 'a' && want != got {
            let (want, got) = (type_name(want), type_name(got));
            return Err(err(format!(
                "wrong type for argument {} of {name}: expected {want}; got {got}",
                i + 1
            )));
        }
    }
    if let ("eq" | "ne", Some((first, rest))) = (name, args.split_first()) {
        let t = first.ty();
        if rest.iter().any(|a| t != 'a' && a.ty() != 'a' && a.ty() != t) {
            return Err(err(format!("incompatible types for comparison in {name}")));
        }
    }
    if let Some(Expr::Lit(Value::Int(n))) = args.first() {
        let bad = match name {
            "truncate" => *n <= 0,
            "truncate_sha256" => *n <= 8,
            "random" => !(0..=MAX_RANDOM).contains(n),
            _ => false,
        };
        if bad {
            return Err(err(format!("invalid length {n} for {name}")));
        }
    }
    Ok(Expr::Call(name, args))
}

fn render_nodes(nodes: &[Node], d: &TemplateData<'_>, out: &mut String) -> Result<()> {
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
fn fold(e: &Expr, kind: Kind) -> Option<Value> {
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
            let mut rng = rand::rng();
            text((0..n).map(|_| char::from(BASE62[rng.random_range(0..BASE62.len())])).collect())
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

/// One verb of a Go format string: `%-8s` is `{ minus: true, zero: false, width: 8, verb: 's' }`.
struct Verb {
    minus: bool,
    zero: bool,
    width: usize,
    verb: char,
}

enum Piece {
    Lit(String),
    Verb(Verb),
}

/// Splits a Go format string into literal text (with `%%` and a dangling `%` as Go prints
/// them) and verbs, so that rendering and max_len read a format alike.
fn pieces(f: &str) -> Vec<Piece> {
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
fn fits(verb: char, ty: char) -> bool {
    matches!((verb, ty), ('s' | 'v', 's') | ('d' | 'v', 'i') | ('t' | 'v', 'b'))
}

/// Go's fmt.Sprintf for the verbs templates use: %s %v %d %t %%, with width and `-`/`0`.
fn sprintf(f: &str, args: &[Value]) -> String {
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

type TimeFn = fn(&DateTime<Utc>) -> String;

/// The elements of Go's time layouts that names use, with the widest text each produces; the
/// others (`Jan`, `3`, `PM`...) print as text. Where two share a prefix the longer comes
/// first, as Go matches it; the time is UTC, so zones are constants.
const LAYOUT: &[(&str, TimeFn, usize)] = &[
    ("2006", |t| format!("{:04}", t.year()), 4),
    ("01", |t| format!("{:02}", t.month()), 2),
    ("02", |t| format!("{:02}", t.day()), 2),
    ("15", |t| format!("{:02}", t.hour()), 2),
    ("04", |t| format!("{:02}", t.minute()), 2),
    ("05", |t| format!("{:02}", t.second()), 2),
    ("06", |t| format!("{:02}", t.year().rem_euclid(100)), 2),
    ("002", |t| format!("{:03}", t.ordinal()), 3),
    ("MST", |_| "UTC".into(), 3),
    ("Z07:00", |_| "Z".into(), 1),
    ("Z0700", |_| "Z".into(), 1),
    ("-07:00", |_| "+00:00".into(), 6),
    ("-0700", |_| "+0000".into(), 5),
    (".000", |t| format!(".{:03}", t.nanosecond() / 1_000_000 % 1000), 4),
];

/// Walks a Go time layout: each element or literal character is given to `f` with its
/// formatter (None for literal text), its source text and its widest output.
fn walk_layout(layout: &str, mut f: impl FnMut(Option<TimeFn>, &str, usize)) {
    let mut rest = layout;
    while let Some(c) = rest.chars().next() {
        let hit = LAYOUT.iter().find(|(tok, ..)| rest.starts_with(tok));
        let (used, fmt, width) = hit
            .map_or((c.len_utf8(), None, c.len_utf8()), |&(tok, fmt, width)| (tok.len(), Some(fmt), width));
        f(fmt, &rest[..used], width);
        rest = &rest[used..];
    }
}

/// Go's time.Format with a reference layout such as "2006-01-02T15:04:05Z07:00".
fn go_time(layout: &str, t: &DateTime<Utc>) -> String {
    let mut out = String::new();
    walk_layout(layout, |fmt, text, _| out.push_str(&fmt.map_or_else(|| text.to_string(), |f| f(t))));
    out
}

fn nodes_bound(nodes: &[Node], kind: Kind) -> Option<usize> {
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
    use super::*;
    use chrono::TimeZone as _;
    use regex::Regex;

    fn data<'a>(kind: Kind, display_name: &'a str, policy_name: &'a str) -> TemplateData<'a> {
        TemplateData { kind, display_name, policy_name }
    }
    fn render_as(src: &str, d: &TemplateData<'_>) -> String {
        Template::parse(src).unwrap().render(d).unwrap()
    }
    fn render(src: &str) -> String {
        render_as(src, &data(Kind::Iam, "root", "deploy"))
    }
    fn parse_err(src: &str) -> String {
        match Template::parse(src) {
            Err(TemplateError::Parse(m)) => m,
            other => panic!("{src}: {other:?}"),
        }
    }
    fn exec_err(src: &str) -> String {
        match Template::parse(src).unwrap().render(&data(Kind::Iam, "root", "")) {
            Err(TemplateError::Exec(m)) => m,
            other => panic!("{src}: {other:?}"),
        }
    }
    fn max(src: &str, kind: Kind) -> Option<usize> {
        Template::parse(src).unwrap().max_len(kind)
    }
    fn matches(re: &str, s: &str) -> bool {
        Regex::new(re).unwrap().is_match(s)
    }

    #[test]
    fn default_template() {
        let iam = render_as(DEFAULT_USERNAME_TEMPLATE, &data(Kind::Iam, "root", "deploy"));
        assert!(matches(r"^vault-root-deploy-\d{10}-[0-9A-Za-z]{20}$", &iam), "{iam}");
        let sts = render_as(DEFAULT_USERNAME_TEMPLATE, &data(Kind::Sts, "root", "deploy"));
        assert!(matches(r"^vault-\d{10}-[0-9A-Za-z]{15}$", &sts), "{sts}");
        assert_eq!(sts.len(), 32);
        let (a, b) = ("a".repeat(100), "b".repeat(100));
        let long = render_as(DEFAULT_USERNAME_TEMPLATE, &data(Kind::Iam, &a, &b));
        assert!(matches(r"^vault-a{42}-\d{10}-[0-9A-Za-z]{4}$", &long), "{long}");
        assert_eq!(max(DEFAULT_USERNAME_TEMPLATE, Kind::Iam), Some(64));
        assert_eq!(max(DEFAULT_USERNAME_TEMPLATE, Kind::Sts), Some(32));
    }

    #[test]
    fn fields() {
        let src = "{{ .Type }}:{{ .DisplayName }}:{{ .PolicyName }}";
        assert_eq!(render(src), "IAM:root:deploy");
        // Vault sets only .Type for STS.
        assert_eq!(render_as(src, &data(Kind::Sts, "root", "deploy")), "STS::");
    }

    #[test]
    fn logic_functions() {
        let src = r#"{{ eq "a" "a" }} {{ eq "a" "b" "a" }} {{ ne 1 2 }} {{ not "" }} {{ eq 1 2 }}"#;
        assert_eq!(render(src), "true true true true false");
        assert_eq!(
            render(r#"{{ and "x" "" }}|{{ or "" "y" }}|{{ and 1 2 }}|{{ or 0 false }}"#),
            "|y|2|false"
        );
    }

    #[test]
    fn printf() {
        assert_eq!(
            render(r#"{{ printf "%s=%d %v %v %t %%" "a" 42 true "s" false }}"#),
            "a=42 true s false %"
        );
        assert_eq!(render(r#"{{ printf "[%5s|%-4d|%03d]" "ab" 7 5 }}"#), "[   ab|7   |005]");
        // Go prints mistakes instead of failing.
        assert_eq!(render(r#"{{ printf "%d %s" "x" }}"#), "%!d(string=x) %!s(MISSING)");
        assert_eq!(render(r#"{{ printf "a" 1 "b" }}"#), "a%!(EXTRA int=1, string=b)");
        assert_eq!(render(r#"{{ printf "%" }}"#), "%!(NOVERB)");
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
        assert_eq!(render(r#"{{ truncate 3 "abcdef" }}|{{ truncate 10 "abc" }}"#), "abc|abc");
        assert_eq!(render(r#"{{ "MiXed" | uppercase }}-{{ "MiXed" | lowercase }}"#), "MIXED-mixed");
        assert_eq!(render(r#"{{ "a.b.c" | replace "." "-" }}"#), "a-b-c");
        assert_eq!(
            render(r#"{{ sha256 "abc" }}"#),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(render(r#"{{ base64 "hello" }}"#), "aGVsbG8=");
        // Vault keeps N-8 bytes and appends 8 hex digits of the hash of the rest.
        let hash = render(r#"{{ sha256 "efghijklmnop" }}"#);
        assert_eq!(render(r#"{{ truncate_sha256 12 "abcdefghijklmnop" }}"#), format!("abcd{}", &hash[..8]));
        assert_eq!(render(r#"{{ truncate_sha256 20 "short" }}"#), "short");
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
        let at = Utc.with_ymd_and_hms(2024, 3, 5, 7, 8, 9).single().unwrap();
        let layout = "2006-01-02T15:04:05Z07:00 06 002 MST -0700 -07:00 Z0700 .000 x";
        assert_eq!(go_time(layout, &at), "2024-03-05T07:08:09Z 24 065 UTC +0000 +00:00 Z .000 x");
    }

    #[test]
    fn pipelines_and_parentheses() {
        assert_eq!(render(r#"{{ "abcdef" | truncate 2 }}"#), "ab");
        // The piped value is the last argument.
        assert_eq!(render(r#"{{ .DisplayName | uppercase | printf "%s-%s" "x" }}"#), "x-ROOT");
        assert_eq!(render(r#"{{ printf "%s/%s" (.DisplayName) (.PolicyName | truncate 3) }}"#), "root/dep");
        let bare = render(r#"{{ ((("x"))) }}{{ printf "%s" unix_time | truncate 2 }}"#);
        assert!(matches(r"^x\d\d$", &bare), "{bare}");
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
    fn trimming_comments_and_literals() {
        assert_eq!(render("a  \n {{- \"b\" -}} \n\t c"), "abc");
        assert_eq!(render("x {{-3}} {{- +4 }}"), "x -34");
        assert_eq!(render("a {{- /* a note */ -}} b{{/* another */}}"), "ab");
        let escaped = r#"{{ "t\tn\nq\"b\\x\x41u\u00e9U\U0001F600o\101" }}"#;
        assert_eq!(render(escaped), "t\tn\nq\"b\\xAu\u{e9}U\u{1F600}oA");
        assert_eq!(render("{{ `raw\\n }} {{` }}"), "raw\\n }} {{");
    }

    #[test]
    fn parse_errors() {
        for (src, want) in [
            ("{{ .Type", "unclosed action"),
            ("{{ nope }}", "function \"nope\" not defined"),
            ("{{ if .Type }}x", "if without matching end"),
            ("{{ if .Type }}x{{ else }}y{{ else }}z{{ end }}", "else after else"),
            ("{{ end }}", "without if"),
            ("{{ .Nope }}", "can't evaluate field Nope"),
            ("{{ truncate 3 }}", "wrong number of args for truncate: want 2 got 1"),
            (r#"{{ truncate "3" .DisplayName }}"#, "expected int; got string"),
            ("{{ truncate 0 .DisplayName }}", "invalid length 0"),
            ("{{ truncate_sha256 8 .DisplayName }}", "invalid length 8"),
            (r#"{{ "a" "b" }}"#, "can't give argument"),
            (r#"{{ .Type | "x" }}"#, "non executable"),
            ("{{ eq .Type 1 }}", "incompatible types"),
            (r#"{{ "abc }}"#, "unterminated quoted string"),
            (r#"{{ "\q" }}"#, "unknown escape"),
            (r#"{{ (eq .Type "x" }}"#, "unclosed left paren"),
            ("{{ .Type ) }}", "unexpected token"),
            ("{{ }}", "missing value"),
            ("{{ range .Type }}{{ end }}", "range is not supported"),
            ("{{ $x := 1 }}", "variables are not supported"),
            ("", "missing template"),
        ] {
            let err = parse_err(src);
            assert!(err.contains(want), "{src}: {err}");
        }
        assert!(parse_err("a\n  {{ nope }}").starts_with("line 2, column 6:"));
    }

    #[test]
    fn exec_errors() {
        assert!(exec_err("{{ .DisplayName | truncate (and 0 5) }}").contains("max length must be > 0"));
        assert!(exec_err(r#"{{ truncate_sha256 (or 8 9) "x" }}"#).contains("max length must be > 8"));
        assert!(exec_err(r#"{{ eq (or .PolicyName 1) "x" }}"#).contains("incompatible types"));
        assert!(exec_err("{{ random (or -1 2) }}").contains("random length"));
        let bomb = r#"{{ printf "%1000000s" "" | replace "" "xx" | truncate 5 }}"#;
        assert!(exec_err(bomb).contains("too long"));
        assert_eq!(max(bomb, Kind::Iam), Some(5));
        assert!(exec_err(r#"{{ uppercase (or .PolicyName 1) }}"#).contains("expected string; got int"));
    }

    #[test]
    fn max_len() {
        assert_eq!(max("{{ .DisplayName }}", Kind::Iam), None);
        assert_eq!(max("{{ .DisplayName }}", Kind::Sts), Some(0));
        assert_eq!(max("{{ .PolicyName | truncate 10 }}", Kind::Iam), Some(10));
        assert_eq!(max(r#"{{ printf "x-%s" (random 70) }}"#, Kind::Iam), Some(72));
        let by_type = r#"{{ if eq .Type "IAM" }}{{ random 50 }}{{ else }}{{ random 20 }}{{ end }}"#;
        assert_eq!((max(by_type, Kind::Iam), max(by_type, Kind::Sts)), (Some(50), Some(20)));
        // Undecidable before rendering: the longest branch.
        let by_name = "{{ if .DisplayName }}{{ random 9 }}{{ else }}{{ random 5 }}{{ end }}";
        assert_eq!((max(by_name, Kind::Iam), max(by_name, Kind::Sts)), (Some(9), Some(5)));
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
