//! AppRole: a role id (not secret, baked into a job's config) and a secret id (handed to the
//! job at run time, ideally response-wrapped) log in together.
//!
//! Secret ids are stored only as keyed hashes, bound to their mount and role; a use-limited one
//! is spent by one atomic statement per use, so two replicas receiving the same single-use
//! secret id at once accept exactly one login. Unlike Vault, an expired secret id is refused
//! at login, not only once the tidy has removed it.

use std::collections::BTreeMap;

use keymint_auth::cidr;
use keymint_auth::token_fields::TokenFields;
use keymint_store::auth_methods::{self as rows, ROLE, ROLE_ID, Spent};
use keymint_store::mounts::MountRow;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{load, mount_of, save, token_fields};
use crate::dispatch::Call;
use crate::envelope::Reply;
use crate::error::{ApiError, ApiResult};
use crate::request::Operation;

/// An AppRole role, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Role {
    #[serde(flatten)]
    pub tokens: TokenFields,
    pub bind_secret_id: bool,
    pub secret_id_bound_cidrs: Vec<String>,
    pub secret_id_num_uses: i64,
    pub secret_id_ttl: i64,
    pub local_secret_ids: bool,
    pub role_id: String,
}

impl Default for Role {
    fn default() -> Self {
        Role {
            tokens: TokenFields::default(),
            bind_secret_id: true,
            secret_id_bound_cidrs: Vec::new(),
            secret_id_num_uses: 0,
            secret_id_ttl: 0,
            local_secret_ids: false,
            role_id: String::new(),
        }
    }
}

/// A secret id's details, as stored beside its hash.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
struct SecretDetails {
    metadata: BTreeMap<String, String>,
    cidr_list: Vec<String>,
    token_bound_cidrs: Vec<String>,
    /// Seconds; 0: never expires.
    ttl: i64,
    last_updated_time: i64,
}

fn role_name(c: &Call) -> String {
    c.name().to_lowercase()
}

async fn load_role(c: &Call, mount: &MountRow, name: &str) -> ApiResult<Option<Role>> {
    load(&c.state, mount, ROLE, name).await
}

fn no_role(name: &str) -> ApiError {
    ApiError::BadRequest(format!("role {name:?} does not exist"))
}

/// The keyed hash a secret id is stored under: it names its mount and role, so a secret id
/// is good for one role only.
fn secret_hash(c: &Call, mount: &MountRow, role: &str, secret_id: &str) -> String {
    c.state.store().hasher().hash(&format!("approle/{}/{role}/{secret_id}", mount.id))
}

/// `role/<name>`: create or merge-update, read, delete.
pub(crate) async fn role(c: &Call) -> ApiResult<Reply> {
    let mount = mount_of(c)?;
    let name = role_name(c);
    let existing = load_role(c, mount, &name).await?;
    match c.req.op {
        Operation::Read => Ok(Reply::data(role_json(&existing.ok_or(ApiError::NotFound)?))),
        Operation::Delete => {
            let pool = c.state.store().pool();
            if let Some(role) = existing {
                rows::delete_role_secret_ids(pool, &mount.id, &name).await?;
                rows::delete(pool, &mount.id, ROLE_ID, &role.role_id).await?;
                rows::delete(pool, &mount.id, ROLE, &name).await?;
            }
            Ok(Reply::no_content())
        }
        Operation::Update => write_role(c, mount, &name, existing).await,
        _ => Err(ApiError::UnsupportedOperation),
    }
}

fn role_json(role: &Role) -> Value {
    let own = json!({
        "bind_secret_id": role.bind_secret_id,
        "secret_id_bound_cidrs": role.secret_id_bound_cidrs,
        "secret_id_num_uses": role.secret_id_num_uses,
        "secret_id_ttl": role.secret_id_ttl,
        "local_secret_ids": role.local_secret_ids,
    });
    super::role_json(own, &role.tokens)
}

async fn write_role(c: &Call, mount: &MountRow, name: &str, existing: Option<Role>) -> ApiResult<Reply> {
    let f = c.fields();
    let creating = existing.is_none();
    let mut role = existing.unwrap_or_default();
    let (tokens, mut warnings) = token_fields(&f, &c.req.data, role.tokens.clone(), true)?;
    role.tokens = tokens;
    if let Some(v) = f.bool("bind_secret_id")? {
        role.bind_secret_id = v;
    }
    if let Some(v) = f.list("secret_id_bound_cidrs")? {
        role.secret_id_bound_cidrs =
            v.into_iter().map(|b| b.trim().to_string()).filter(|b| !b.is_empty()).collect();
        if role.secret_id_bound_cidrs.iter().any(|b| cidr::Cidr::parse(b).is_err()) {
            return Err(ApiError::BadRequest("invalid CIDR blocks".into()));
        }
    }
    if let Some(v) = f.int("secret_id_num_uses")? {
        if v < 0 {
            return Err(ApiError::BadRequest("secret_id_num_uses cannot be negative".into()));
        }
        role.secret_id_num_uses = v;
    }
    if let Some(v) = f.duration("secret_id_ttl")? {
        role.secret_id_ttl = i64::try_from(v).unwrap_or(i64::MAX);
    }
    if let Some(v) = f.bool("local_secret_ids")? {
        if !creating && v != role.local_secret_ids {
            return Err(ApiError::BadRequest(
                "local_secret_ids can only be modified during role creation".into(),
            ));
        }
        role.local_secret_ids = v;
    }
    if !role.bind_secret_id
        && role.secret_id_bound_cidrs.is_empty()
        && role.tokens.token_bound_cidrs.is_empty()
    {
        return Err(ApiError::vaults_500("at least one constraint should be enabled on the role"));
    }
    let mount_max =
        if mount.max_lease_ttl > 0 { mount.max_lease_ttl } else { keymint_auth::token::MAX_TTL_SECS };
    if role.tokens.token_period > mount_max {
        return Err(ApiError::BadRequest(format!(
            "period of {:?} is greater than the backend's maximum TTL of {:?}",
            go(role.tokens.token_period),
            go(mount_max)
        )));
    }
    if role.tokens.token_max_ttl > mount_max {
        warnings.push("token_max_ttl is greater than the backend mount's maximum TTL value; issued tokens' max TTL value will be truncated".into());
    }
    let old_role_id = role.role_id.clone();
    let asked_id = f.string("role_id")?.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    if let Some(id) = asked_id {
        role.role_id = id;
    } else if role.role_id.is_empty() {
        role.role_id = uuid::Uuid::new_v4().to_string();
    }
    set_role_id(c, mount, name, &old_role_id, &role.role_id).await?;
    save(&c.state, mount, ROLE, name, &role, None).await?;
    Ok(Reply::written(warnings))
}

fn go(secs: i64) -> String {
    keymint_common::go::duration::format_go_duration(secs.max(0).unsigned_abs())
}

/// Points `role_id` at the role, dropping its old id: refused when another role holds it.
async fn set_role_id(c: &Call, mount: &MountRow, name: &str, old: &str, new: &str) -> ApiResult<()> {
    if old == new {
        return Ok(());
    }
    let pool = c.state.store().pool();
    let row = rows::EntryRow { body: name.to_string(), secret: None, updated_at: c.state.now_ms() };
    if !rows::insert_if_absent(pool, &mount.id, ROLE_ID, new, &row).await? {
        let holder = rows::get(pool, &mount.id, ROLE_ID, new).await?;
        if holder.is_none_or(|h| h.body != name) {
            return Err(ApiError::vaults_500("role_id already in use"));
        }
    }
    if !old.is_empty() {
        rows::delete(pool, &mount.id, ROLE_ID, old).await?;
    }
    Ok(())
}

/// `role/<name>/role-id`: read, or set a custom role id.
pub(crate) async fn role_id(c: &Call) -> ApiResult<Reply> {
    let mount = mount_of(c)?;
    let name = role_name(c);
    let mut role = load_role(c, mount, &name).await?;
    match c.req.op {
        Operation::Read => {
            let role = role.ok_or(ApiError::NotFound)?;
            Ok(Reply::data(json!({ "role_id": role.role_id })))
        }
        Operation::Update => {
            let role = role.as_mut().ok_or_else(|| no_role(&name))?;
            let id = c.fields().string("role_id")?.map(|s| s.trim().to_string()).unwrap_or_default();
            if id.is_empty() {
                return Err(ApiError::BadRequest("missing role_id".into()));
            }
            let old = std::mem::replace(&mut role.role_id, id.clone());
            set_role_id(c, mount, &name, &old, &id).await?;
            save(&c.state, mount, ROLE, &name, role, None).await?;
            Ok(Reply::no_content())
        }
        _ => Err(ApiError::UnsupportedOperation),
    }
}

pub(crate) mod fields;
mod secret_ids;
pub(crate) use fields::one_field;
pub(crate) use secret_ids::{destroy, local_secret_ids, lookup, secret_id, tidy, tidy_expired};

/// `login`: `role_id` and `secret_id`.
pub(crate) async fn login(c: &Call) -> ApiResult<Reply> {
    let mount = mount_of(c)?;
    let f = c.fields();
    let role_id = f.string("role_id")?.map(|s| s.trim().to_string()).unwrap_or_default();
    if role_id.is_empty() {
        return Err(ApiError::BadRequest("missing role_id".into()));
    }
    let invalid = || ApiError::BadRequest("invalid role or secret ID".into());
    let pool = c.state.store().pool();
    let name = rows::get(pool, &mount.id, ROLE_ID, &role_id).await?.ok_or_else(invalid)?.body;
    let role = load_role(c, mount, &name).await?.ok_or_else(invalid)?;
    let remote = c.req.remote;
    let mut grant = super::grant(mount, &name, role.tokens.clone());
    grant.metadata.insert("role_name".into(), name.clone());
    if role.bind_secret_id {
        let secret = f.string("secret_id")?.map(|s| s.trim().to_string()).unwrap_or_default();
        if secret.is_empty() {
            return Err(ApiError::BadRequest("missing secret_id".into()));
        }
        let hash = secret_hash(c, mount, &name, &secret);
        let row = rows::secret_id_by_hash(pool, &mount.id, &hash).await?.ok_or_else(invalid)?;
        let now = c.state.now_ms();
        if row.expire_at.is_some_and(|at| at <= now) {
            // Expired: gone for good, whatever the tidy's schedule.
            rows::delete_secret_id(pool, &mount.id, &hash).await?;
            return Err(invalid());
        }
        let details: SecretDetails = serde_json::from_str(&row.body).map_err(|e| {
            ApiError::hidden(&keymint_store::StoreError::Corrupt(format!("secret id {}: {e}", row.accessor)))
        })?;
        // The CIDRs are checked before a use is spent: a login from the wrong address costs
        // the secret id nothing.
        if !details.cidr_list.is_empty() {
            if !role.secret_id_bound_cidrs.is_empty()
                && !cidr::subset(&details.cidr_list, &role.secret_id_bound_cidrs)
            {
                return Err(ApiError::BadRequest(
                    "failed to verify the CIDR restrictions set on the secret ID: they no longer lie within the role's".into(),
                ));
            }
            if !cidr::allows(&details.cidr_list, remote) {
                return Err(ApiError::BadRequest(format!(
                    "source address {:?} unauthorized through CIDR restrictions on the secret ID",
                    remote.map(|r| r.to_string()).unwrap_or_default()
                )));
            }
        }
        check_role_cidrs(&role, remote)?;
        if row.uses_left > 0 {
            match rows::spend_secret_id(pool, &mount.id, &hash).await? {
                Spent::Gone => return Err(invalid()),
                Spent::Used | Spent::LastUse | Spent::Unlimited => {}
            }
        }
        grant.metadata.extend(details.metadata);
        grant.metadata.insert("role_name".into(), name.clone());
        grant.bound_cidrs = Some(details.token_bound_cidrs).filter(|b| !b.is_empty());
    } else {
        check_role_cidrs(&role, remote)?;
    }
    super::issue(&c.state, grant).await
}

fn check_role_cidrs(role: &Role, remote: Option<std::net::IpAddr>) -> ApiResult<()> {
    if !role.secret_id_bound_cidrs.is_empty() && !cidr::allows(&role.secret_id_bound_cidrs, remote) {
        return Err(ApiError::BadRequest(format!(
            "source address {:?} unauthorized by CIDR restrictions on the role: {}",
            remote.map(|r| r.to_string()).unwrap_or_default(),
            role.secret_id_bound_cidrs.join(",")
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_role_binds_secret_ids_unless_told_otherwise() {
        let role: Role = serde_json::from_str("{}").unwrap();
        assert!(role.bind_secret_id);
        let stored = serde_json::to_string(&Role { role_id: "r".into(), ..Role::default() }).unwrap();
        let fields: TokenFields = serde_json::from_str(&stored).unwrap();
        assert_eq!(fields, TokenFields::default(), "token fields read back from a role body");
    }
}
