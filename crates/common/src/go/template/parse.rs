//! The parser: builds the nodes of a template from its tokens, checking function names, arity
//! and argument types so that mistakes are refused when the template is written.

use super::ast::{Expr, FUNCS, Field, Node, Value, type_name};
use super::eval::MAX_RANDOM;
use super::lexer::{Tok, lex, perr};
use super::{Result, TemplateError};

/// Parses a whole template.
pub(super) fn nodes(src: &str) -> Result<Vec<Node>> {
    // Vault refuses an empty template rather than generating empty names.
    if src.is_empty() {
        return Err(TemplateError::Parse("missing template".into()));
    }
    let mut p = Parser { src, toks: lex(src)?, i: 0 };
    match p.list()? {
        (nodes, Stop::Eof) => Ok(nodes),
        (_, Stop::End(at) | Stop::Else(at) | Stop::ElseIf(_, at)) => {
            Err(perr(src, at, "end or else without if"))
        }
    }
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

#[cfg(test)]
mod tests {
    use crate::go::template::tests::{matches, parse_err, render};

    #[test]
    fn pipelines_and_parentheses() {
        for (src, want) in [
            (r#"{{ "abcdef" | truncate 2 }}"#, "ab"),
            // The piped value is the last argument.
            (r#"{{ .DisplayName | uppercase | printf "%s-%s" "x" }}"#, "x-ROOT"),
            (r#"{{ printf "%s/%s" (.DisplayName) (.PolicyName | truncate 3) }}"#, "root/dep"),
        ] {
            assert_eq!(render(src), want, "{src}");
        }
        let bare = render(r#"{{ ((("x"))) }}{{ printf "%s" unix_time | truncate 2 }}"#);
        assert!(matches(r"^x\d\d$", &bare), "{bare}");
    }

    #[test]
    fn parse_errors() {
        for (src, want) in [
            ("", "missing template"),
            ("{{ nope }}", "function \"nope\" not defined"),
            ("{{ if .Type }}x", "if without matching end"),
            ("{{ if .Type }}{{ else if .Type }}", "if without matching end"),
            ("{{ if .Type }}x{{ else }}y{{ else }}z{{ end }}", "else after else"),
            ("{{ end }}", "without if"),
            ("{{ else }}", "without if"),
            ("{{ .Nope }}", "can't evaluate field Nope"),
            ("{{ .A.B }}", "can't evaluate field A.B"),
            ("{{ truncate 3 }}", "wrong number of args for truncate: want 2 got 1"),
            ("{{ printf }}", "wrong number of args for printf: want at least 1 got 0"),
            (r#"{{ truncate "3" .DisplayName }}"#, "expected int; got string"),
            ("{{ truncate 0 .DisplayName }}", "invalid length 0"),
            ("{{ truncate_sha256 8 .DisplayName }}", "invalid length 8"),
            ("{{ random 4097 }}", "invalid length 4097 for random"),
            (r#"{{ "a" "b" }}"#, "can't give argument"),
            (r#"{{ .Type | "x" }}"#, "non executable"),
            ("{{ eq .Type 1 }}", "incompatible types"),
            (r#"{{ (eq .Type "x" }}"#, "unclosed left paren"),
            ("{{ .Type ) }}", "unexpected token"),
            ("{{ }}", "missing value"),
            ("{{ range .Type }}{{ end }}", "range is not supported"),
            ("{{ with .Type }}{{ end }}", "with is not supported"),
        ] {
            let err = parse_err(src);
            assert!(err.contains(want), "{src}: {err}");
        }
    }
}
