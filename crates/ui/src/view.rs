//! Rendering: the page chrome every template shares, the stylesheet, and the pages that only
//! say something (a refusal, a missing page).

use std::collections::HashMap;

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

/// What the layout needs: the title, whether to show the navigation, and the current section.
pub(crate) struct Chrome {
    pub title: &'static str,
    pub signed_in: bool,
    pub current: &'static str,
}

impl Chrome {
    pub fn signed_in(title: &'static str, current: &'static str) -> Chrome {
        Chrome { title, signed_in: true, current }
    }

    /// The `integrity` of the script tag (see [`script_integrity`]).
    pub fn script_integrity(&self) -> &'static str {
        script_integrity()
    }
}

/// The UI's only script: copy buttons and countdowns, on top of pages that work without it.
const SCRIPT: &str = include_str!("../static/ui.js");

/// The script's Subresource Integrity value (`sha256-<base64>`): the browser runs the script only
/// if the bytes it fetched are exactly these.
pub(crate) fn script_integrity() -> &'static str {
    static INTEGRITY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        use base64::Engine;
        let digest = ring::digest::digest(&ring::digest::SHA256, SCRIPT.as_bytes());
        format!("sha256-{}", base64::engine::general_purpose::STANDARD.encode(digest.as_ref()))
    });
    &INTEGRITY
}

/// The script, compiled into the binary.
pub(crate) async fn script() -> Response {
    let mut response = SCRIPT.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8"));
    response
}

/// A rendered template with `status`.
pub(crate) fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a UI template did not render");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "message.html")]
pub(crate) struct Message {
    pub page: Chrome,
    pub heading: &'static str,
    pub text: String,
}

/// A page that only says why a request was refused.
pub(crate) fn refused(status: StatusCode, text: &str) -> Response {
    let page = Message {
        page: Chrome { title: "Refused", signed_in: false, current: "" },
        heading: "Request refused",
        text: text.to_string(),
    };
    render(status, &page)
}

/// The stylesheet, compiled into the binary.
pub(crate) async fn stylesheet() -> Response {
    let mut response = include_str!("../static/ui.css").into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8"));
    response
}

/// A form's errors, each placed beside the field it names: an error that mentions a field's
/// API name (`permissions_boundary_arn`, `role_arn`...) as a word goes with that field; the rest
/// are shown above the form.
#[derive(Debug, Default)]
pub(crate) struct FieldErrors {
    pub general: Vec<String>,
    by_field: HashMap<&'static str, Vec<String>>,
}

impl FieldErrors {
    /// Places `errors` among `fields` (API names): each goes with the field it names first.
    pub fn place(errors: Vec<String>, fields: &[&'static str]) -> FieldErrors {
        FieldErrors::place_with(errors, fields, &[])
    }

    /// [`FieldErrors::place`], where an error may also name a field by a phrase of its own
    /// (`("path suffix", "path_suffix")`): some server errors say what is wrong in words.
    pub fn place_with(
        errors: Vec<String>,
        fields: &[&'static str],
        phrases: &[(&str, &'static str)],
    ) -> FieldErrors {
        let mut placed = FieldErrors::default();
        let names = fields.iter().map(|f| (*f, *f)).chain(phrases.iter().copied());
        let names: Vec<(&str, &'static str)> = names.collect();
        for error in errors {
            let first = names
                .iter()
                .filter_map(|(word, field)| Some((word_at(&error, word)?, *field)))
                .min_by_key(|(at, _)| *at);
            match first {
                Some((_, field)) => placed.by_field.entry(field).or_default().push(error),
                None => placed.general.push(error),
            }
        }
        placed
    }

    /// One error shown above the form.
    pub fn general(error: String) -> FieldErrors {
        FieldErrors { general: vec![error], by_field: HashMap::new() }
    }

    /// One error beside `field`.
    pub fn at(field: &'static str, error: String) -> FieldErrors {
        FieldErrors { general: Vec::new(), by_field: HashMap::from([(field, vec![error])]) }
    }

    /// The error beside `field`, if any.
    pub fn of(&self, field: &str) -> Option<String> {
        self.by_field.get(field).map(|e| e.join("; "))
    }

    pub fn is_empty(&self) -> bool {
        self.general.is_empty() && self.by_field.is_empty()
    }

    /// How many errors sit beside fields (the summary above the form says so).
    pub fn beside_fields(&self) -> usize {
        self.by_field.values().map(Vec::len).sum()
    }
}

/// Where `text` first has `word` with no letter, digit or `_` on either side.
fn word_at(text: &str, word: &str) -> Option<usize> {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(word).map(|(at, _)| at).find(|at| {
        let before = text[..*at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

#[cfg(test)]
mod field_error_tests {
    use super::FieldErrors;

    #[test]
    fn errors_go_beside_the_field_they_name_and_the_rest_above() {
        let placed = FieldErrors::place(
            vec![
                "invalid permissions_boundary_arn parameter: arn: invalid prefix".into(),
                "cannot supply role_arns when credential_type isn't assumed_role".into(),
                "AWS said no".into(),
            ],
            &["role_arn", "role_arns", "permissions_boundary_arn", "credential_type"],
        );
        assert_eq!(
            placed.of("permissions_boundary_arn").as_deref(),
            Some("invalid permissions_boundary_arn parameter: arn: invalid prefix")
        );
        assert!(placed.of("role_arns").is_some_and(|e| e.starts_with("cannot supply role_arns")));
        assert_eq!(placed.of("role_arn"), None, "role_arn is not a word of role_arns");
        assert_eq!(placed.general, vec!["AWS said no".to_string()]);
        assert_eq!(placed.beside_fields(), 2);
    }

    #[test]
    fn an_error_may_name_its_field_in_words() {
        let placed = FieldErrors::place_with(
            vec![
                "given role path suffix contains invalid characters".into(),
                "error parsing role fields: 'token_ttl' cannot be greater than 'token_max_ttl'".into(),
            ],
            &["token_ttl", "token_max_ttl", "path_suffix"],
            &[("path suffix", "path_suffix")],
        );
        assert!(placed.of("path_suffix").is_some_and(|e| e.contains("invalid characters")));
        assert!(placed.of("token_ttl").is_some(), "the first field named wins");
        assert_eq!(placed.of("token_max_ttl"), None);
        assert!(placed.general.is_empty());
    }
}
