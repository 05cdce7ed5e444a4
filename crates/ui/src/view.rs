//! Rendering: the page chrome every template shares, the stylesheet, and the pages that only
//! say something (a refusal, a missing page).

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
