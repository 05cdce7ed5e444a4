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

mod ast;
mod bound;
mod eval;
mod layout;
mod lexer;
mod parse;
mod printf;

use ast::Node;

pub const DEFAULT_USERNAME_TEMPLATE: &str = r#"{{ if (eq .Type "STS") }}{{ printf "vault-%s-%s"  (unix_time) (random 20) | truncate 32 }}{{ else }}{{ printf "vault-%s-%s-%s" (printf "%s-%s" (.DisplayName) (.PolicyName) | truncate 42) (unix_time) (random 20) | truncate 64 }}{{ end }}"#;

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

#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
}

impl Template {
    pub fn parse(src: &str) -> Result<Template> {
        parse::nodes(src).map(|nodes| Template { nodes })
    }

    pub fn render(&self, data: &TemplateData<'_>) -> Result<String> {
        let mut out = String::new();
        eval::render_nodes(&self.nodes, data, &mut out)?;
        Ok(out)
    }

    /// An upper bound on the length in bytes of any output for this kind, whatever the display
    /// name and role name are (they are unbounded); None when no bound exists (e.g. a bare
    /// `{{ .PolicyName }}` without truncate). Used to reject at write time a template that can
    /// exceed IAM's 64-char user name limit (Kind::Iam) or STS's 32-char federation name limit.
    pub fn max_len(&self, kind: Kind) -> Option<usize> {
        bound::nodes_bound(&self.nodes, kind)
    }
}

/// Helpers for the tests of every submodule.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use regex::Regex;

    use super::*;

    pub(super) fn data<'a>(kind: Kind, display_name: &'a str, policy_name: &'a str) -> TemplateData<'a> {
        TemplateData { kind, display_name, policy_name }
    }
    pub(super) fn render_as(src: &str, d: &TemplateData<'_>) -> String {
        Template::parse(src).unwrap().render(d).unwrap()
    }
    pub(super) fn render(src: &str) -> String {
        render_as(src, &data(Kind::Iam, "root", "deploy"))
    }
    pub(super) fn parse_err(src: &str) -> String {
        match Template::parse(src) {
            Err(TemplateError::Parse(m)) => m,
            other => panic!("{src}: {other:?}"),
        }
    }
    pub(super) fn exec_err(src: &str) -> String {
        match Template::parse(src).unwrap().render(&data(Kind::Iam, "root", "")) {
            Err(TemplateError::Exec(m)) => m,
            other => panic!("{src}: {other:?}"),
        }
    }
    pub(super) fn max(src: &str, kind: Kind) -> Option<usize> {
        Template::parse(src).unwrap().max_len(kind)
    }
    pub(super) fn matches(re: &str, s: &str) -> bool {
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
}
