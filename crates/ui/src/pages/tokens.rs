//! Tokens: the live tokens (from their accessors, each looked up, with a filter and pages) and
//! creating one (a child of the signed-in token, or from a token role), shown once. Looking one
//! up, renewing and revoking it by accessor are in `token_accessor`; token roles in
//! `token_roles`.
//!
//! Listing needs `sudo` on `auth/token/accessors`: without it the page says so and still
//! offers everything else.

use std::collections::HashMap;

use askama::Template;
use axum::Form;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::notice;
use crate::api::Api;
use crate::session::Session;
use crate::view::{Chrome, FieldErrors, render};

/// Tokens shown a page.
const PAGE: usize = 25;
/// The most tokens a filter looks up in one request: each is one lookup through the API.
const SCAN: usize = 1000;

/// The fields of the create form, by their API names.
const CREATE_FIELDS: &[&str] = &[
    "role",
    "policies",
    "ttl",
    "display_name",
    "period",
    "explicit_max_ttl",
    "num_uses",
    "meta",
    "no_parent",
];

/// Server errors that name a create field in words rather than by its API name.
const CREATE_PHRASES: &[(&str, &str)] = &[
    ("orphan", "no_parent"),
    ("periodic", "period"),
    ("number of uses", "num_uses"),
    ("policy", "policies"),
    ("unknown role", "role"),
];

/// One live token as the list shows it.
pub(crate) struct Row {
    pub accessor: String,
    pub display_name: String,
    pub policies: String,
    pub ttl: String,
    pub orphan: bool,
    pub mine: bool,
}

/// A page of the list.
pub(crate) struct Listing {
    pub rows: Vec<Row>,
    /// Tokens matching (all live tokens without a filter).
    pub total: usize,
    pub page_no: usize,
    pub pages: usize,
    pub previous: Option<String>,
    pub next: Option<String>,
    /// Whether the token may revoke by accessor (`sys/capabilities-self`).
    pub can_revoke: bool,
}

/// What the create form holds, to show it again after an error.
#[derive(Default)]
pub(crate) struct CreateForm {
    pub role: String,
    /// The token roles, when the token may list them and there are some: a select, else a
    /// text field.
    pub roles: Vec<String>,
    pub policies: String,
    pub ttl: String,
    pub display_name: String,
    pub period: String,
    pub explicit_max_ttl: String,
    pub num_uses: String,
    pub meta: String,
    pub no_parent: bool,
    pub renewable: bool,
}

/// A token just created: shown once.
pub(crate) struct Created {
    pub token: String,
    pub accessor: String,
    pub policies: String,
    pub ttl: String,
    pub warnings: Vec<String>,
}

#[derive(Template)]
#[template(path = "tokens.html")]
struct Tokens {
    page: Chrome,
    notices: Vec<String>,
    message: Option<String>,
    error: Option<String>,
    created: Option<Created>,
    listing: Option<Listing>,
    filter: String,
    form: CreateForm,
    errors: FieldErrors,
}

/// What the list, the lookup and the create pages all show: every field as it was, or empty.
pub(crate) struct Shown {
    pub message: Option<String>,
    pub error: Option<String>,
    pub status: StatusCode,
}

impl Shown {
    pub fn plain() -> Shown {
        Shown { message: None, error: None, status: StatusCode::OK }
    }
}

/// The JSON value as text: strings as they are, null as nothing.
pub(crate) fn text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub(crate) use crate::api::strings;

/// A span of seconds in its two largest units: `2d 3h`, `1h 5m`, `4m 10s`, `42s`.
pub(crate) fn span(secs: u64) -> String {
    let (days, hours, minutes, seconds) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{seconds}s"),
        (0, 0, _) => format!("{minutes}m {seconds}s"),
        (0, _, _) => format!("{hours}h {minutes}m"),
        _ => format!("{days}d {hours}h"),
    }
}

/// An RFC 3339 time as a person reads it, to the second, in UTC.
pub(crate) fn when(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.with_timezone(&chrono::Utc).format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|_| rfc3339.to_string())
}

/// A token's time left from its lookup data: `1h 0m (until 2030-01-01 10:00:00 UTC)`.
pub(crate) fn time_left(data: &Value) -> String {
    match data["expire_time"].as_str() {
        Some(at) => format!("{} (until {})", span(data["ttl"].as_u64().unwrap_or(0)), when(at)),
        None => "Never expires".to_string(),
    }
}

pub(crate) fn encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The accessor of the signed-in token.
pub(crate) async fn own_accessor(api: &Api) -> Option<String> {
    let me = api.get("auth/token/lookup-self").await;
    me.data()["accessor"].as_str().map(str::to_string)
}

/// Whether a token's lookup data matches `filter` (part of its display name or of a policy).
fn matches(data: &Value, filter: &str) -> bool {
    let filter = filter.to_lowercase();
    data["display_name"].as_str().is_some_and(|n| n.to_lowercase().contains(&filter))
        || strings(&data["policies"]).iter().any(|p| p.to_lowercase().contains(&filter))
}

fn row(accessor: &str, data: &Value, mine: Option<&str>) -> Row {
    Row {
        accessor: accessor.to_string(),
        display_name: text(&data["display_name"]),
        policies: strings(&data["policies"]).join(", "),
        ttl: time_left(data),
        orphan: data["orphan"] == true,
        mine: mine == Some(accessor),
    }
}

/// A page of the live tokens, `None` (with a notice) when the token may not list them.
async fn listing(api: &Api, filter: &str, page_no: usize, notices: &mut Vec<String>) -> Option<Listing> {
    let listed = api.list("auth/token/accessors").await;
    if !listed.ok() {
        notices.push(if listed.status == StatusCode::FORBIDDEN {
            "Your token may not list the tokens: that needs sudo on auth/token/accessors. You can \
             still create tokens and look one up by its accessor."
                .to_string()
        } else {
            notice("list the tokens", &listed)
        });
        return None;
    }
    let accessors = strings(&listed.data()["keys"]);
    let mine = own_accessor(api).await;
    let mut refused = None;
    // Each shown token is looked up; without a filter only the page's, with one as many as it
    // takes (up to SCAN). A token that expired but is not swept yet answers 400 and is left out.
    let mut lookup = async |accessor: &str| -> Option<Value> {
        let answer = api.post("auth/token/lookup-accessor", &json!({"accessor": accessor})).await;
        if answer.ok() {
            return Some(answer.data().clone());
        }
        if answer.status != StatusCode::BAD_REQUEST {
            refused.get_or_insert_with(|| notice("look up tokens by accessor", &answer));
        }
        None
    };
    let (rows, total) = if filter.is_empty() {
        let mut rows = Vec::new();
        for accessor in accessors.iter().skip((page_no - 1) * PAGE).take(PAGE) {
            if let Some(data) = lookup(accessor).await {
                rows.push(row(accessor, &data, mine.as_deref()));
            }
        }
        (rows, accessors.len())
    } else {
        let mut found = Vec::new();
        for accessor in accessors.iter().take(SCAN) {
            if let Some(data) = lookup(accessor).await.filter(|d| matches(d, filter)) {
                found.push(row(accessor, &data, mine.as_deref()));
            }
        }
        if accessors.len() > SCAN {
            notices
                .push(format!("The filter looked at the first {SCAN} of {} tokens only.", accessors.len()));
        }
        let total = found.len();
        (found.into_iter().skip((page_no - 1) * PAGE).take(PAGE).collect(), total)
    };
    notices.extend(refused);
    let pages = total.div_ceil(PAGE).max(1);
    let link = |n: usize| format!("/ui/tokens?filter={}&page={n}", encode(filter));
    let revoke = "auth/token/revoke-accessor".to_string();
    let may = super::May::ask(api, std::slice::from_ref(&revoke)).await;
    Some(Listing {
        can_revoke: may.to(&revoke, &["update"]),
        rows,
        total,
        page_no,
        pages,
        previous: (page_no > 1).then(|| link(page_no - 1)),
        next: (page_no < pages).then(|| link(page_no + 1)),
    })
}

/// The token roles, for the create form's select; empty when there are none or the token may
/// not list them.
async fn role_names(api: &Api) -> Vec<String> {
    let listed = api.list("auth/token/roles").await;
    strings(&listed.data()["keys"])
}

/// The tokens page: the list (page `query["page"]`, filtered by `query["filter"]`) and the
/// forms, with what the last action said.
pub(crate) async fn show(
    api: &Api,
    query: &HashMap<String, String>,
    shown: Shown,
    created: Option<Created>,
    mut form: CreateForm,
    errors: FieldErrors,
) -> Response {
    let filter = query.get("filter").map(|f| f.trim().to_string()).unwrap_or_default();
    let page_no = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1_usize).max(1);
    let mut notices = Vec::new();
    let listing = listing(api, &filter, page_no, &mut notices).await;
    form.roles = role_names(api).await;
    let page = Tokens {
        page: Chrome::signed_in("Tokens", "tokens"),
        notices,
        message: shown.message,
        error: shown.error,
        created,
        listing,
        filter,
        form,
        errors,
    };
    render(shown.status, &page)
}

/// `GET /ui/tokens[?filter=&page=&role=]`.
pub(crate) async fn page(session: Session, Query(query): Query<HashMap<String, String>>) -> Response {
    let form = CreateForm {
        role: query.get("role").cloned().unwrap_or_default(),
        renewable: true,
        ..CreateForm::default()
    };
    show(&session.api, &query, Shown::plain(), None, form, FieldErrors::default()).await
}

fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect()
}

/// `POST /ui/tokens`: a child token of the session's token, or one from a token role (`role`).
/// The form's `renewable` checkbox counts only beside its `renewable_shown` marker, so a form
/// that does not show it leaves the server's default (renewable).
pub(crate) async fn create(session: Session, Form(form): Form<HashMap<String, String>>) -> Response {
    let field = |k: &str| form.get(k).map(|v| v.trim().to_string()).unwrap_or_default();
    let values = CreateForm {
        role: field("role"),
        roles: Vec::new(),
        policies: field("policies"),
        ttl: field("ttl"),
        display_name: field("display_name"),
        period: field("period"),
        explicit_max_ttl: field("explicit_max_ttl"),
        num_uses: field("num_uses"),
        meta: form.get("meta").cloned().unwrap_or_default(),
        no_parent: field("no_parent") == "true",
        renewable: !form.contains_key("renewable_shown") || field("renewable") == "true",
    };
    let api = &session.api;
    let fail = async |errors: FieldErrors, status: StatusCode, values: CreateForm| {
        let shown = Shown { message: None, error: None, status };
        show(api, &HashMap::new(), shown, None, values, errors).await
    };
    let path = if values.role.is_empty() {
        "auth/token/create".to_string()
    } else if crate::pages::valid_name(&values.role) {
        format!("auth/token/create/{}", values.role)
    } else {
        let error = "A token role's name has letters, digits, - _ . @ only.".to_string();
        return fail(FieldErrors::at("role", error), StatusCode::BAD_REQUEST, values).await;
    };
    let policies: Vec<String> = values
        .policies
        .split([',', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let mut body = json!({"policies": policies});
    for (key, value) in [
        ("ttl", &values.ttl),
        ("display_name", &values.display_name),
        ("period", &values.period),
        ("explicit_max_ttl", &values.explicit_max_ttl),
        ("num_uses", &values.num_uses),
    ] {
        if !value.is_empty() {
            body[key] = json!(value);
        }
    }
    let meta = lines(&values.meta);
    if !meta.is_empty() {
        // The server reads key=value lines and says which one it cannot.
        body["meta"] = json!(meta);
    }
    if values.no_parent {
        body["no_parent"] = json!(true);
    }
    if !values.renewable {
        body["renewable"] = json!(false);
    }
    let answer = api.post(&path, &body).await;
    if !answer.ok() {
        let (errors, status) = if answer.status == StatusCode::FORBIDDEN {
            (FieldErrors::general(notice("create a token", &answer)), StatusCode::FORBIDDEN)
        } else {
            (FieldErrors::place_with(answer.errors(), CREATE_FIELDS, CREATE_PHRASES), StatusCode::BAD_REQUEST)
        };
        return fail(errors, status, values).await;
    }
    let auth = &answer.body["auth"];
    let created = Created {
        token: text(&auth["client_token"]),
        accessor: text(&auth["accessor"]),
        policies: strings(&auth["policies"]).join(", "),
        ttl: match auth["lease_duration"].as_u64() {
            Some(0) | None => "Never expires".to_string(),
            Some(secs) => span(secs),
        },
        warnings: strings(&answer.body["warnings"]),
    };
    let fresh = CreateForm { renewable: true, ..CreateForm::default() };
    show(api, &HashMap::new(), Shown::plain(), Some(created), fresh, FieldErrors::default()).await
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{matches, span, time_left};

    #[test]
    fn spans_show_their_two_largest_units() {
        assert_eq!(span(0), "0s");
        assert_eq!(span(42), "42s");
        assert_eq!(span(250), "4m 10s");
        assert_eq!(span(3600), "1h 0m");
        assert_eq!(span(3 * 86_400 + 4 * 3600 + 59), "3d 4h");
    }

    #[test]
    fn time_left_names_the_expiry_or_says_there_is_none() {
        let data = json!({"ttl": 3599, "expire_time": "2030-01-01T10:00:00.123456789Z"});
        assert_eq!(time_left(&data), "59m 59s (until 2030-01-01 10:00:00 UTC)");
        assert_eq!(time_left(&json!({"ttl": 0, "expire_time": null})), "Never expires");
    }

    #[test]
    fn a_filter_matches_part_of_the_display_name_or_of_a_policy() {
        let data = json!({"display_name": "token-CI-deploy", "policies": ["default", "ops-read"]});
        assert!(matches(&data, "ci"));
        assert!(matches(&data, "ops"));
        assert!(!matches(&data, "admin"));
    }
}
