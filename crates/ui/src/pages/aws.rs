//! Pages under `/ui/aws/<mount>/…`: the mount path may hold `/`, so the page is read from the
//! end of the path.

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Path, Query};
use axum::response::Response;

use super::{aws_config, creds, not_found, roles, static_roles};
use crate::session::Session;

enum Page {
    Config(String),
    Lease(String),
    RotateRoot(String),
    StaticRoles(String),
    Roles(String),
    NewRole(String),
    Role(String, String),
    DeleteRole(String, String),
    Creds(String, String),
}

fn valid_mount(mount: &str) -> bool {
    !mount.is_empty()
        && mount.split('/').all(|s| !s.is_empty() && s != "." && s != "..")
        && mount.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
}

fn parse(rest: &str) -> Option<Page> {
    let parts: Vec<&str> = rest.trim_matches('/').split('/').collect();
    let mount_of = |n: usize| -> Option<String> {
        let mount = parts.get(..parts.len().checked_sub(n)?)?.join("/");
        valid_mount(&mount).then_some(mount)
    };
    let last = |i: usize| parts.len().checked_sub(i).and_then(|j| parts.get(j)).copied().unwrap_or_default();
    let page = match (last(3), last(2), last(1)) {
        (_, _, "config") => Page::Config(mount_of(1)?),
        (_, "config", "lease") => Page::Lease(mount_of(2)?),
        (_, "config", "rotate") => Page::RotateRoot(mount_of(2)?),
        (_, _, "static-roles") => Page::StaticRoles(mount_of(1)?),
        (_, _, "roles") => Page::Roles(mount_of(1)?),
        (_, "roles", "new") => Page::NewRole(mount_of(2)?),
        ("roles", name, "delete") if crate::pages::valid_name(name) => {
            Page::DeleteRole(mount_of(3)?, name.to_string())
        }
        (_, "roles", name) if crate::pages::valid_name(name) => Page::Role(mount_of(2)?, name.to_string()),
        (_, "creds", role) if crate::pages::valid_name(role) => Page::Creds(mount_of(2)?, role.to_string()),
        _ => return None,
    };
    Some(page)
}

pub(crate) async fn get(
    session: Session,
    Path(rest): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let api = &session.api;
    match parse(&rest) {
        Some(Page::Config(mount) | Page::Lease(mount)) => aws_config::page(api, &mount).await,
        Some(Page::RotateRoot(mount)) => aws_config::confirm_rotate(api, &mount).await,
        Some(Page::StaticRoles(mount)) => static_roles::page(api, &mount).await,
        Some(Page::Roles(mount)) => roles::list(api, &mount, None).await,
        Some(Page::NewRole(mount)) => {
            let kind = query
                .get("type")
                .map(String::as_str)
                .filter(|k| roles::TYPES.contains(k))
                .unwrap_or("iam_user");
            roles::form(api, &mount, None, kind).await
        }
        Some(Page::Role(mount, name)) => roles::form(api, &mount, Some(&name), "").await,
        Some(Page::DeleteRole(mount, name)) => creds::confirm_delete(api, &mount, &name).await,
        Some(Page::Creds(mount, role)) => creds::page(api, &mount, &role).await,
        None => not_found().await,
    }
}

pub(crate) async fn post(
    session: Session,
    Path(rest): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let api = &session.api;
    match parse(&rest) {
        Some(Page::Config(mount)) => aws_config::submit(api, &mount, &form).await,
        Some(Page::Lease(mount)) => aws_config::save_lease(api, &mount, &form).await,
        Some(Page::RotateRoot(mount)) => aws_config::rotate(api, &mount, &form).await,
        Some(Page::StaticRoles(mount)) => static_roles::submit(api, &mount, &form).await,
        Some(Page::Roles(mount) | Page::NewRole(mount) | Page::Role(mount, _)) => {
            roles::save(api, &mount, &form).await
        }
        Some(Page::DeleteRole(mount, name)) => creds::delete(api, &mount, &name).await,
        Some(Page::Creds(mount, role)) => creds::generate(api, &mount, &role, &form).await,
        None => not_found().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_read_from_the_end_of_the_path() {
        assert!(matches!(parse("aws/config"), Some(Page::Config(m)) if m == "aws"));
        assert!(matches!(parse("team/aws/roles"), Some(Page::Roles(m)) if m == "team/aws"));
        assert!(matches!(parse("aws/config/lease"), Some(Page::Lease(m)) if m == "aws"));
        assert!(matches!(parse("team/aws/config/rotate"), Some(Page::RotateRoot(m)) if m == "team/aws"));
        assert!(parse("config/rotate").is_none());
        assert!(matches!(parse("aws/roles/new"), Some(Page::NewRole(m)) if m == "aws"));
        assert!(matches!(parse("aws/roles/deploy"), Some(Page::Role(m, n)) if m == "aws" && n == "deploy"));
        assert!(matches!(parse("aws/roles/deploy/delete"), Some(Page::DeleteRole(_, n)) if n == "deploy"));
        assert!(matches!(parse("aws/creds/deploy"), Some(Page::Creds(_, r)) if r == "deploy"));
        assert!(parse("../config").is_none());
        assert!(parse("config").is_none());
        assert!(parse("aws/roles/a b").is_none());
    }
}
