//! The overview: each AWS mount with its account, region and health, and the lease numbers the
//! metrics show (active leases by mount and role, irrevocable leases, throttling, whether
//! revocation is paused), read from `sys/metrics` so the page and the dashboards agree.

use askama::Template;
use axum::http::StatusCode;
use axum::response::Response;

use super::notice;
use crate::session::Session;
use crate::view::{Chrome, render};

pub(crate) struct MountRow {
    pub path: String,
    /// The mount's AWS account page.
    pub link: String,
    pub account: String,
    pub region: String,
    pub health: String,
    pub leases: u64,
}

pub(crate) struct RoleLeases {
    pub mount: String,
    pub role: String,
    pub credential_type: String,
    pub leases: u64,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct Overview {
    page: Chrome,
    notices: Vec<String>,
    mounts: Vec<MountRow>,
    roles: Vec<RoleLeases>,
    /// `None` when the token may not read the metrics.
    irrevocable: Option<u64>,
    throttled: Option<u64>,
    paused: Option<bool>,
}

/// The mount path as the metrics label it (`aws` or `aws/`), without the trailing `/`.
fn bare(path: &str) -> &str {
    path.trim_end_matches('/')
}

pub(crate) async fn page(session: Session) -> Response {
    let api = &session.api;
    let mut notices = Vec::new();
    let (mounts_answer, metrics_answer) = tokio::join!(api.get("sys/mounts"), api.get("sys/metrics"));

    let (mut roles, mut irrevocable, mut throttled, mut paused) = (Vec::new(), None, None, None);
    let mut per_mount: std::collections::BTreeMap<String, u64> = Default::default();
    if metrics_answer.ok() {
        let body = &metrics_answer.body;
        let (mut irr, mut thr) = (0u64, 0u64);
        for l in super::active_leases_in(body) {
            *per_mount.entry(l.mount.clone()).or_default() += l.leases;
            roles.push(RoleLeases {
                mount: l.mount,
                role: l.role,
                credential_type: l.credential_type,
                leases: l.leases,
            });
        }
        for gauge in body["Gauges"].as_array().into_iter().flatten() {
            let value = gauge["Value"].as_f64().unwrap_or(0.0).max(0.0) as u64;
            match gauge["Name"].as_str() {
                Some("keymint_leases_irrevocable") => irr += value,
                Some("keymint_revocation_paused") => paused = Some(value > 0),
                _ => {}
            }
        }
        for counter in body["Counters"].as_array().into_iter().flatten() {
            if counter["Name"] == "keymint_aws_throttled_total" {
                thr += counter["Count"].as_f64().unwrap_or(0.0).max(0.0) as u64;
            }
        }
        irrevocable = Some(irr);
        throttled = Some(thr);
    } else {
        notices
            .push(notice("read the metrics (sys/metrics), so lease numbers are not shown", &metrics_answer));
    }

    let mut mounts = Vec::new();
    if mounts_answer.ok() {
        for (path, mount) in mounts_answer.data().as_object().into_iter().flatten() {
            if mount["type"] != "aws" {
                continue;
            }
            let config = api.get(&format!("{path}config/root")).await;
            let (account, region, health) = if config.ok() {
                let data = config.data();
                let account = data["expected_account_id"].as_str().filter(|a| !a.is_empty()).unwrap_or("any");
                let region = data["region"].as_str().filter(|r| !r.is_empty()).unwrap_or("us-east-1");
                let health = data["last_rotation_error"]
                    .as_str()
                    .filter(|e| !e.is_empty())
                    .map_or_else(|| "configured".to_string(), |e| format!("last rotation failed: {e}"));
                (account.to_string(), region.to_string(), health)
            } else if config.status == StatusCode::NOT_FOUND {
                ("—".into(), "—".into(), "not configured".into())
            } else {
                ("—".into(), "—".into(), notice("read its config/root", &config))
            };
            let leases = per_mount.get(bare(path)).copied().unwrap_or(0);
            let link = format!("/ui/aws/{}/config", bare(path));
            mounts.push(MountRow { path: path.to_string(), link, account, region, health, leases });
        }
    } else {
        notices.push(notice("list the mounts (sys/mounts)", &mounts_answer));
    }
    let page = Overview {
        page: Chrome::signed_in("Overview", "overview"),
        notices,
        mounts,
        roles,
        irrevocable,
        throttled,
        paused,
    };
    render(StatusCode::OK, &page)
}
