//! AppRole's one-field views of a role (`role/<name>/token-ttl`, `.../policies`, ...), which
//! exist so an ACL can delegate one setting: a read shows that field alone, a write changes it
//! alone, a delete puts it back to its default.

use serde_json::{Map, Value};

use super::{Role, load_role, role_name, write_role};
use crate::auth_methods::{mount_of, save};
use crate::dispatch::Call;
use crate::envelope::Reply;
use crate::error::{ApiError, ApiResult};
use crate::request::Operation;

/// The field a path segment names, and the keys a read shows.
fn field_of(segment: &str) -> Option<(&'static str, &'static [&'static str])> {
    Some(match segment {
        "policies" => ("token_policies", &["token_policies", "policies"]),
        "secret-id-num-uses" => ("secret_id_num_uses", &["secret_id_num_uses"]),
        "secret-id-ttl" => ("secret_id_ttl", &["secret_id_ttl"]),
        "token-ttl" => ("token_ttl", &["token_ttl"]),
        "token-max-ttl" => ("token_max_ttl", &["token_max_ttl"]),
        "token-num-uses" => ("token_num_uses", &["token_num_uses"]),
        "bind-secret-id" => ("bind_secret_id", &["bind_secret_id"]),
        "secret-id-bound-cidrs" => ("secret_id_bound_cidrs", &["secret_id_bound_cidrs"]),
        "bound-cidr-list" => ("secret_id_bound_cidrs", &["bound_cidr_list"]),
        "token-bound-cidrs" => ("token_bound_cidrs", &["token_bound_cidrs"]),
        "period" => ("token_period", &["token_period", "period"]),
        _ => return None,
    })
}

/// The names a write of `field` may come under.
fn accepted(field: &str) -> &'static [&'static str] {
    match field {
        "token_policies" => &["token_policies", "policies"],
        "token_period" => &["token_period", "period"],
        "secret_id_bound_cidrs" => &["secret_id_bound_cidrs", "bound_cidr_list"],
        "secret_id_num_uses" => &["secret_id_num_uses"],
        "secret_id_ttl" => &["secret_id_ttl"],
        "token_ttl" => &["token_ttl"],
        "token_max_ttl" => &["token_max_ttl"],
        "token_num_uses" => &["token_num_uses"],
        "bind_secret_id" => &["bind_secret_id"],
        "token_bound_cidrs" => &["token_bound_cidrs"],
        _ => &[],
    }
}

fn reset(role: &mut Role, field: &str) {
    let fresh = Role::default();
    match field {
        "token_policies" => role.tokens.token_policies = Vec::new(),
        "token_period" => role.tokens.token_period = 0,
        "secret_id_bound_cidrs" => role.secret_id_bound_cidrs = Vec::new(),
        "secret_id_num_uses" => role.secret_id_num_uses = 0,
        "secret_id_ttl" => role.secret_id_ttl = 0,
        "token_ttl" => role.tokens.token_ttl = 0,
        "token_max_ttl" => role.tokens.token_max_ttl = 0,
        "token_num_uses" => role.tokens.token_num_uses = 0,
        "bind_secret_id" => role.bind_secret_id = fresh.bind_secret_id,
        "token_bound_cidrs" => role.tokens.token_bound_cidrs = Vec::new(),
        _ => {}
    }
}

/// `role/<name>/<field>`.
pub(crate) async fn one_field(c: &Call) -> ApiResult<Reply> {
    let segment = c.req.path.rsplit('/').next().unwrap_or_default();
    let (field, shown) = field_of(segment).ok_or(ApiError::UnsupportedPath)?;
    let mount = mount_of(c)?;
    let name = role_name(c);
    let role = load_role(c, mount, &name).await?;
    match c.req.op {
        Operation::Read => {
            let role = role.ok_or(ApiError::NotFound)?;
            let all = super::role_json(&role);
            let mut out = Map::new();
            for key in shown {
                let value = match *key {
                    "bound_cidr_list" | "policies" | "period" => all.get(field).cloned(),
                    key => all.get(key).cloned(),
                };
                out.insert((*key).to_string(), value.unwrap_or(Value::Null));
            }
            Ok(Reply::data(Value::Object(out)))
        }
        Operation::Update => {
            let role = role.ok_or_else(|| super::no_role(&name))?;
            if !accepted(field).iter().any(|k| c.req.data.contains(k)) {
                return Err(ApiError::BadRequest(format!("missing {field}")));
            }
            write_role(c, mount, &name, Some(role)).await
        }
        Operation::Delete => {
            let mut role = role.ok_or_else(|| super::no_role(&name))?;
            reset(&mut role, field);
            save(&c.state, mount, crate::auth_methods::approle::ROLE, &name, &role, None).await?;
            Ok(Reply::no_content())
        }
        _ => Err(ApiError::UnsupportedOperation),
    }
}
