//! JWT/OIDC: a CI job or a workload presents a JWT its platform signed (GitHub Actions' and
//! GitLab's OIDC tokens, a Kubernetes service-account token); it logs in when the signature,
//! the time window, the issuer and audience, and the role's bound claims all check out.
//!
//! Keys come from the mount's config: static PEMs, a JWKS URL, or an OIDC discovery URL. A
//! fetched key set is built once per config version and cached in memory; it refetches on an
//! unknown key at most once a minute and keeps serving cached keys while the issuer is down
//! (`keymint_login::jwt::RemoteKeySet`). A config written through another replica has a new
//! version, so every replica drops its old keys at its next login. The OIDC browser flow
//! (`role_type=oidc`) is not served: such roles are refused with a clear error.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use keymint_auth::token_fields::TokenFields;
use keymint_login::jwt::{self, BoundClaimsType, Expected, Jws, KeySet, PublicKey, RemoteKeySet};
use keymint_store::auth_methods::{self as rows, CONFIG, ROLE};
use keymint_store::mounts::MountRow;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

mod config;

pub(crate) use self::config::{Config, config};
use super::{load, mount_of, save, token_fields};
use crate::dispatch::Call;
use crate::envelope::Reply;
use crate::error::{ApiError, ApiResult};
use crate::request::Operation;

/// A JWT role, as stored.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Role {
    #[serde(flatten)]
    pub tokens: TokenFields,
    pub role_type: String,
    pub user_claim: String,
    pub user_claim_json_pointer: bool,
    pub bound_audiences: Vec<String>,
    pub bound_subject: String,
    pub bound_claims: Map<String, Value>,
    pub bound_claims_type: String,
    pub claim_mappings: BTreeMap<String, String>,
    pub groups_claim: String,
    pub clock_skew_leeway: i64,
    pub expiration_leeway: i64,
    pub not_before_leeway: i64,
    pub allowed_redirect_uris: Vec<String>,
    pub oidc_scopes: Vec<String>,
    pub verbose_oidc_logging: bool,
    pub max_age: i64,
}

/// Key sets by mount, each with the config version it was built from. One per process: a
/// mount id is unique to its mount, and a config write gives a new version.
#[derive(Default)]
struct KeyCache {
    sets: Mutex<HashMap<String, (i64, Arc<KeySet>)>>,
}

fn cache() -> &'static KeyCache {
    static CACHE: std::sync::LazyLock<KeyCache> = std::sync::LazyLock::new(KeyCache::default);
    &CACHE
}

/// Drops what is cached for a disabled mount.
pub(crate) fn forget_mount(mount_id: &str) {
    if let Ok(mut sets) = cache().sets.lock() {
        sets.remove(mount_id);
    }
}

fn bad(text: impl Into<String>) -> ApiError {
    ApiError::BadRequest(text.into())
}

/// `role/<name>`: create or merge-update, read, delete.
pub(crate) async fn role(c: &Call) -> ApiResult<Reply> {
    let mount = mount_of(c)?;
    let name = c.name().to_lowercase();
    let existing: Option<Role> = load(&c.state, mount, ROLE, &name).await?;
    match c.req.op {
        Operation::Read => {
            let role = existing.ok_or(ApiError::NotFound)?;
            let mut own = serde_json::to_value(&role).map_err(|e| ApiError::hidden(&e))?;
            if let Value::Object(map) = &mut own {
                map.retain(|k, _| !k.starts_with("token_") && k != "legacy");
                if role.role_type.is_empty() {
                    map.insert("role_type".into(), json!("jwt"));
                }
            }
            Ok(Reply::data(super::role_json(own, &role.tokens)))
        }
        Operation::Delete => {
            rows::delete(c.state.store().pool(), &mount.id, ROLE, &name).await?;
            Ok(Reply::no_content())
        }
        Operation::Update => write_role(c, mount, &name, existing.unwrap_or_default()).await,
        _ => Err(ApiError::UnsupportedOperation),
    }
}

/// A signed duration field (a leeway): seconds, or a Go duration, `-1` for none.
fn signed_secs(c: &Call, name: &str) -> ApiResult<Option<i64>> {
    let Some(text) = c.fields().text(name)? else { return Ok(None) };
    let text = text.trim();
    if text.is_empty() {
        return Ok(Some(0));
    }
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let secs = keymint_common::go::duration::parse_duration_secs(body)
        .map_err(|e| bad(format!("invalid {name}: {e}")))?;
    let secs = i64::try_from(secs).unwrap_or(i64::MAX);
    Ok(Some(if negative { -secs } else { secs }))
}

async fn write_role(c: &Call, mount: &MountRow, name: &str, mut role: Role) -> ApiResult<Reply> {
    let f = c.fields();
    let (tokens, mut warnings) = token_fields(&f, &c.req.data, role.tokens.clone(), false)?;
    role.tokens = tokens;
    // Not merged, as in Vault: a write without it makes an OIDC role.
    role.role_type = f.string("role_type")?.unwrap_or_default().trim().to_lowercase();
    match role.role_type.as_str() {
        "jwt" => {}
        "" | "oidc" => {
            return Err(bad(
                "role_type \"oidc\" (the default when role_type is not given) is not supported: keymint serves \
                 no OIDC browser flow; write the role with role_type=jwt",
            ));
        }
        other => return Err(bad(format!("invalid 'role_type': {other}"))),
    }
    if let Some(v) = f.string("user_claim")? {
        role.user_claim = v;
    }
    if role.user_claim.is_empty() {
        return Err(bad("a user claim must be defined on the role"));
    }
    if let Some(v) = f.bool("user_claim_json_pointer")? {
        role.user_claim_json_pointer = v;
    }
    if let Some(v) = f.list("bound_audiences")? {
        role.bound_audiences =
            v.into_iter().map(|a| a.trim().to_string()).filter(|a| !a.is_empty()).collect();
    }
    if let Some(v) = f.string("bound_subject")? {
        role.bound_subject = v;
    }
    if let Some(v) = f.map("bound_claims")? {
        role.bound_claims = match v {
            Value::Object(map) => map.clone(),
            Value::Null => Map::new(),
            _ => return Err(bad("bound_claims must be a map")),
        };
    }
    // Not merged either: left out, it is "string" again.
    role.bound_claims_type = f.string("bound_claims_type")?.unwrap_or_default();
    let kind = match role.bound_claims_type.as_str() {
        "" | "string" => BoundClaimsType::String,
        "glob" => BoundClaimsType::Glob,
        other => return Err(bad(format!("invalid 'bound_claims_type': {other}"))),
    };
    if role.bound_claims_type.is_empty() {
        role.bound_claims_type = "string".into();
    }
    jwt::check_bound_claims_config(&role.bound_claims, kind).map_err(bad)?;
    if let Some(v) = f.kv("claim_mappings")? {
        role.claim_mappings = v;
    }
    let mut targets = std::collections::BTreeSet::new();
    for target in role.claim_mappings.values() {
        if target == "role" {
            return Err(bad("metadata key \"role\" is reserved and may not be set via claim mappings"));
        }
        if !targets.insert(target) {
            return Err(bad(format!("multiple keys are mapped to metadata key {target:?}")));
        }
    }
    if let Some(v) = f.string("groups_claim")? {
        role.groups_claim = v;
    }
    for (field, slot) in [
        ("clock_skew_leeway", &mut role.clock_skew_leeway),
        ("expiration_leeway", &mut role.expiration_leeway),
        ("not_before_leeway", &mut role.not_before_leeway),
    ] {
        if let Some(v) = signed_secs(c, field)? {
            *slot = v;
        }
    }
    if let Some(v) = f.list("allowed_redirect_uris")? {
        role.allowed_redirect_uris = v;
    }
    if let Some(v) = f.list("oidc_scopes")? {
        role.oidc_scopes = v;
    }
    if let Some(v) = f.bool("verbose_oidc_logging")? {
        role.verbose_oidc_logging = v;
    }
    if let Some(v) = f.duration("max_age")? {
        role.max_age = i64::try_from(v).unwrap_or(i64::MAX);
    }
    if role.bound_audiences.is_empty()
        && role.tokens.token_bound_cidrs.is_empty()
        && role.bound_subject.is_empty()
        && role.bound_claims.is_empty()
    {
        return Err(bad("must have at least one bound constraint when creating/updating a role"));
    }
    let mount_max =
        if mount.max_lease_ttl > 0 { mount.max_lease_ttl } else { keymint_auth::token::MAX_TTL_SECS };
    if role.tokens.token_period > mount_max {
        return Err(bad("'period' is greater than the backend's maximum TTL"));
    }
    if role.tokens.token_max_ttl > mount_max {
        warnings.push("token max ttl is greater than the system or backend mount's maximum TTL value; issued tokens' max TTL value will be truncated".into());
    }
    save(&c.state, mount, ROLE, name, &role, None).await?;
    Ok(Reply::written(warnings))
}

/// The mount's key set: cached for its config version, built (and for a discovery URL,
/// discovered) otherwise.
async fn key_set(
    mount: &MountRow,
    config: &Config,
    version: i64,
    refetch: std::time::Duration,
) -> Result<Arc<KeySet>, String> {
    if let Ok(sets) = cache().sets.lock()
        && let Some((v, set)) = sets.get(&mount.id)
        && *v == version
    {
        return Ok(set.clone());
    }
    let set = if !config.jwt_validation_pubkeys.is_empty() {
        let mut keys = Vec::new();
        for pem in &config.jwt_validation_pubkeys {
            keys.extend(PublicKey::from_pem(pem).map_err(|e| e.to_string())?);
        }
        KeySet::Static(Arc::new(keys))
    } else if !config.jwks_url.is_empty() {
        let client = jwt::http_client(Some(&config.jwks_ca_pem)).map_err(|e| e.to_string())?;
        KeySet::Remote(Arc::new(RemoteKeySet::new(
            client,
            config.jwks_url.clone(),
            jwt::DEFAULT_REFETCH_INTERVAL,
        )))
    } else {
        let client = jwt::http_client(Some(&config.oidc_discovery_ca_pem)).map_err(|e| e.to_string())?;
        let jwks_uri = jwt::discover(&client, &config.oidc_discovery_url).await.map_err(|e| e.to_string())?;
        KeySet::Remote(Arc::new(RemoteKeySet::new(client, jwks_uri, refetch)))
    };
    let set = Arc::new(set);
    if let Ok(mut sets) = cache().sets.lock() {
        sets.insert(mount.id.clone(), (version, set.clone()));
    }
    Ok(set)
}

/// `login`: `role` (or the config's `default_role`) and `jwt`.
pub(crate) async fn login(c: &Call) -> ApiResult<Reply> {
    let mount = mount_of(c)?;
    let pool = c.state.store().pool();
    let entry =
        rows::get(pool, &mount.id, CONFIG, "").await?.ok_or_else(|| bad("could not load configuration"))?;
    let config: Config = serde_json::from_str(&entry.body).map_err(|e| ApiError::hidden(&e))?;
    let f = c.fields();
    let name = f.string("role")?.unwrap_or_default().trim().to_lowercase();
    let name = if name.is_empty() { config.default_role.clone() } else { name };
    if name.is_empty() {
        return Err(bad("missing role"));
    }
    let role: Role = load(&c.state, mount, ROLE, &name)
        .await?
        .ok_or_else(|| bad(format!("role {name:?} could not be found")))?;
    if role.role_type == "oidc" {
        return Err(bad("role with oidc role_type is not allowed"));
    }
    let token = f.string("jwt")?.unwrap_or_default();
    if token.trim().is_empty() {
        return Err(bad("missing token"));
    }
    if !keymint_auth::cidr::allows(&role.tokens.token_bound_cidrs, c.req.remote) {
        return Err(ApiError::Denied("permission denied".into()));
    }
    let keys = key_set(mount, &config, entry.updated_at, c.state.jwks_refetch_interval())
        .await
        .map_err(|e| bad(format!("error configuring token validator: {e}")))?;
    let claims = verify(&keys, &config, &role, token.trim(), c.state.now().timestamp()).await?;
    let identity = identity(&claims, &role)?;
    jwt::validate_bound_claims(&claims, &role.bound_claims, bound_kind(&role))
        .map_err(|e| bad(e.vault_text()))?;

    let mut grant = super::grant(mount, &name, role.tokens.clone());
    grant.display_name = identity.user;
    grant.metadata = identity.metadata;
    grant.metadata.insert("role".into(), name);
    super::issue(&c.state, grant).await
}

fn bound_kind(role: &Role) -> BoundClaimsType {
    if role.bound_claims_type == "glob" { BoundClaimsType::Glob } else { BoundClaimsType::String }
}

/// The token's claims once its signature and registered claims check out.
async fn verify(
    keys: &KeySet,
    config: &Config,
    role: &Role,
    token: &str,
    now: i64,
) -> ApiResult<Map<String, Value>> {
    let refuse = |e: jwt::JwtError| bad(e.vault_text());
    let jws = Jws::parse(token).map_err(refuse)?;
    let configured = jwt::parse_supported_algs(&config.jwt_supported_algs).map_err(bad)?;
    let allowed = jwt::allowed_or_default(&configured);
    keys.verify(&jws, allowed, tokio::time::Instant::now()).await.map_err(refuse)?;
    let expected = Expected {
        issuer: Some(config.bound_issuer.clone()).filter(|i| !i.is_empty()),
        subject: Some(role.bound_subject.clone()).filter(|s| !s.is_empty()),
        audiences: role.bound_audiences.clone(),
        clock_skew_leeway: role.clock_skew_leeway,
        expiration_leeway: role.expiration_leeway,
        not_before_leeway: role.not_before_leeway,
        ..Expected::default()
    };
    let claims = jws.into_claims();
    jwt::validate_claims(&claims, &expected, now).map_err(refuse)?;
    Ok(claims)
}

struct Identity {
    user: String,
    metadata: BTreeMap<String, String>,
}

/// The user claim and the metadata the claim mappings give (Vault builds these before it
/// checks the bound claims, so a missing user claim is reported first).
fn identity(claims: &Map<String, Value>, role: &Role) -> ApiResult<Identity> {
    let refuse = |e: jwt::JwtError| bad(e.vault_text());
    let user = jwt::user_claim(claims, &role.user_claim, role.user_claim_json_pointer).map_err(refuse)?;
    let metadata = jwt::claim_mappings(claims, &role.claim_mappings).map_err(refuse)?;
    if !role.groups_claim.is_empty() {
        jwt::groups(claims, &role.groups_claim).map_err(refuse)?;
    }
    Ok(Identity { user, metadata })
}
