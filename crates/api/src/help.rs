//! Path help: `GET /v1/<path>?help=1`, what `vault path-help` and node-vault's `help` send.
//! As in Vault, the answer is a bare `{"help": …, "see_also": null}` describing the route the
//! path matches, its parameters and what it does; nothing is read or written.

use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::ApiError;
use crate::routes::{self, Route};

/// The help for `path` (full, after `/v1/`): `mount` is the type of the mount the path falls
/// in and the mount-relative part.
pub fn answer(path: &str, mount: Option<(&str, &str)>) -> Response {
    let found = match mount {
        Some((kind, rest)) => routes::find_in_mount(kind, rest),
        None => routes::find(path),
    };
    let rest = mount.map(|(_, rest)| rest);
    let Some(found) = found else {
        return ApiError::UnsupportedPath.into_response();
    };
    let request = if found.in_mount { rest.unwrap_or(path) } else { path };
    axum::Json(json!({"help": render(request, found.regex.as_str(), found.route), "see_also": null}))
        .into_response()
}

fn render(request: &str, pattern: &str, route: &Route) -> String {
    let mut text = format!("Request:        {request}\nMatching Route: {pattern}\n\n{}\n", route.synopsis);
    if !route.params.is_empty() {
        text.push_str("\n## PARAMETERS\n");
        for param in route.params {
            text.push_str(&format!(
                "\n    {} ({})\n\n        {}\n",
                param.name,
                param.kind.help(),
                param.text
            ));
        }
    }
    text.push_str(&format!("\n## DESCRIPTION\n\n{}\n", route.description));
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::AWS_ROUTES;

    #[test]
    fn help_reads_like_vaults() {
        let creds = AWS_ROUTES.iter().find(|r| r.pattern == "(creds|sts)/NAME").unwrap();
        let text = render("creds/deploy", "^(creds|sts)/x$", creds);
        assert!(
            text.starts_with("Request:        creds/deploy\nMatching Route: ^(creds|sts)/x$\n\n"),
            "{text}"
        );
        assert!(text.contains("\n## PARAMETERS\n\n    name (string)\n"), "{text}");
        assert!(text.contains("\n## DESCRIPTION\n\n"), "{text}");
    }
}
