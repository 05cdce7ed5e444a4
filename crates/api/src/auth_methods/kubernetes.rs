//! Kubernetes: a pod presents its service-account token. keymint checks it against the role's
//! service accounts and namespaces, then asks the cluster's API server whether the token is
//! live (TokenReview), as Vault does: a deleted pod or service account stops logging in at
//! once. With `pem_keys` and no reviewer token, the signature is checked locally instead and
//! no API server is asked.
//!
//! Every refusal after the request's shape is checked is a 403; the reason is logged, not
//! told (what the API server said about a token is no business of its bearer).

use keymint_auth::token_fields::TokenFields;
use keymint_login::jwt::{self, Expected, Jws, PublicKey};
use keymint_login::kubernetes::{self as k8s, Cluster};
use keymint_store::auth_methods::{self as rows, CONFIG, ROLE};
use keymint_store::mounts::MountRow;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{load, mount_of, save, secret_of, token_fields};
use crate::dispatch::Call;
use crate::envelope::Reply;
use crate::error::{ApiError, ApiResult};
use crate::request::Operation;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Config {
    pub kubernetes_host: String,
    pub kubernetes_ca_cert: String,
    pub pem_keys: Vec<String>,
    pub issuer: String,
    pub disable_iss_validation: bool,
    pub disable_local_ca_jwt: bool,
    pub use_annotations_as_alias_metadata: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            kubernetes_host: String::new(),
            kubernetes_ca_cert: String::new(),
            pem_keys: Vec::new(),
            issuer: String::new(),
            disable_iss_validation: true,
            disable_local_ca_jwt: false,
            use_annotations_as_alias_metadata: false,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Role {
    #[serde(flatten)]
    pub tokens: TokenFields,
    pub bound_service_account_names: Vec<String>,
    pub bound_service_account_namespaces: Vec<String>,
    pub bound_service_account_namespace_selector: String,
    pub audience: String,
    pub alias_name_source: String,
}

fn cluster(config: &Config) -> Cluster<'_> {
    Cluster {
        host: &config.kubernetes_host,
        ca_cert: &config.kubernetes_ca_cert,
        use_local: !config.disable_local_ca_jwt,
    }
}

fn bad(text: impl Into<String>) -> ApiError {
    ApiError::BadRequest(text.into())
}

fn denied(reason: &str) -> ApiError {
    tracing::info!(reason, "kubernetes login refused");
    ApiError::Denied("permission denied".into())
}

/// `config`: write (a full replace) or read.
pub(crate) async fn config(c: &Call) -> ApiResult<Reply> {
    let mount = mount_of(c)?;
    match c.req.op {
        Operation::Read => {
            let config: Config = load(&c.state, mount, CONFIG, "").await?.ok_or(ApiError::NotFound)?;
            let reviewer = secret_of(&c.state, mount, CONFIG, "").await?;
            let mut data = serde_json::to_value(&config).map_err(|e| ApiError::hidden(&e))?;
            data["token_reviewer_jwt_set"] = json!(reviewer.is_some());
            Ok(Reply::data(data))
        }
        Operation::Update => {
            let f = c.fields();
            let host =
                f.string("kubernetes_host")?.unwrap_or_default().trim().trim_end_matches('/').to_string();
            if host.is_empty() {
                return Err(bad("no host provided"));
            }
            let ca = f.string("kubernetes_ca_cert")?.unwrap_or_default();
            if !ca.trim().is_empty() && jwt::http_client(Some(&ca)).is_err() {
                return Err(bad("The provided CA PEM data contains no valid certificates"));
            }
            let pem_keys = f.list("pem_keys")?.unwrap_or_default();
            for pem in &pem_keys {
                PublicKey::from_pem(pem).map_err(|e| bad(e.to_string()))?;
            }
            let config = Config {
                kubernetes_host: host,
                kubernetes_ca_cert: ca,
                pem_keys,
                issuer: f.string("issuer")?.unwrap_or_default(),
                disable_iss_validation: f.bool("disable_iss_validation")?.unwrap_or(true),
                disable_local_ca_jwt: f.bool("disable_local_ca_jwt")?.unwrap_or(false),
                use_annotations_as_alias_metadata: f
                    .bool("use_annotations_as_alias_metadata")?
                    .unwrap_or(false),
            };
            let reviewer = f.string("token_reviewer_jwt")?.unwrap_or_default();
            save(&c.state, mount, CONFIG, "", &config, Some(reviewer.trim())).await?;
            tracing::info!(mount.path = %mount.path, "kubernetes auth config written");
            Ok(Reply::no_content())
        }
        _ => Err(ApiError::UnsupportedOperation),
    }
}

/// `role/<name>`: create or merge-update, read, delete.
pub(crate) async fn role(c: &Call) -> ApiResult<Reply> {
    let mount = mount_of(c)?;
    let name = c.name().to_lowercase();
    let existing: Option<Role> = load(&c.state, mount, ROLE, &name).await?;
    match c.req.op {
        Operation::Read => {
            let role = existing.ok_or(ApiError::NotFound)?;
            let mut own = json!({
                "bound_service_account_names": role.bound_service_account_names,
                "bound_service_account_namespaces": role.bound_service_account_namespaces,
                "bound_service_account_namespace_selector": role.bound_service_account_namespace_selector,
                "alias_name_source": role.alias_name_source,
            });
            if !role.audience.is_empty() {
                own["audience"] = json!(role.audience);
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

fn clean(list: Vec<String>) -> Vec<String> {
    list.into_iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
}

async fn write_role(c: &Call, mount: &MountRow, name: &str, mut role: Role) -> ApiResult<Reply> {
    let f = c.fields();
    let (tokens, mut warnings) = token_fields(&f, &c.req.data, role.tokens.clone(), false)?;
    role.tokens = tokens;
    if let Some(v) = f.list("bound_service_account_names")? {
        role.bound_service_account_names = clean(v);
    }
    if let Some(v) = f.list("bound_service_account_namespaces")? {
        role.bound_service_account_namespaces = clean(v);
    }
    // Not merged, as in Vault.
    role.bound_service_account_namespace_selector =
        f.string("bound_service_account_namespace_selector")?.unwrap_or_default();
    if let Some(v) = f.string("audience")? {
        role.audience = v;
    }
    if let Some(v) = f.string("alias_name_source")? {
        role.alias_name_source = v;
    }
    if role.alias_name_source.is_empty() {
        role.alias_name_source = "serviceaccount_uid".into();
    }
    if !["serviceaccount_uid", "serviceaccount_name"].contains(&role.alias_name_source.as_str()) {
        return Err(bad(
            "invalid alias_name_source, must be one of: serviceaccount_uid, serviceaccount_name",
        ));
    }
    if role.bound_service_account_names.is_empty() {
        return Err(bad("\"bound_service_account_names\" can not be empty"));
    }
    let selector = role.bound_service_account_namespace_selector.trim();
    if !selector.is_empty() && k8s::selector_labels(selector).is_none() {
        return Err(bad("invalid \"bound_service_account_namespace_selector\" configured"));
    }
    if role.bound_service_account_namespaces.is_empty() && selector.is_empty() {
        return Err(bad(
            "\"bound_service_account_namespaces\" can not be empty if \"bound_service_account_namespace_selector\" is not set",
        ));
    }
    for list in [&role.bound_service_account_names, &role.bound_service_account_namespaces] {
        if list.len() > 1 && list.iter().any(|v| v == "*") {
            return Err(bad("can not mix \"*\" with values"));
        }
    }
    let mount_max =
        if mount.max_lease_ttl > 0 { mount.max_lease_ttl } else { keymint_auth::token::MAX_TTL_SECS };
    if role.tokens.token_period > mount_max {
        return Err(bad("token period is greater than the backend's maximum lease TTL"));
    }
    if role.audience.is_empty() {
        warnings.push(format!(
            "Role {name} does not have an audience configured. While audiences are not required, consider \
             specifying one if your use case would benefit from additional JWT claim verification."
        ));
    }
    save(&c.state, mount, ROLE, name, &role, None).await?;
    Ok(Reply::written(warnings))
}

/// `login`: `role` and `jwt`.
pub(crate) async fn login(c: &Call) -> ApiResult<Reply> {
    let mount = mount_of(c)?;
    let f = c.fields();
    let name = f.string("role")?.unwrap_or_default().trim().to_lowercase();
    if name.is_empty() {
        return Err(bad("missing role"));
    }
    let token = f.string("jwt")?.unwrap_or_default().trim().to_string();
    if token.is_empty() {
        return Err(bad("missing jwt"));
    }
    let role: Role = load(&c.state, mount, ROLE, &name)
        .await?
        .ok_or_else(|| bad(format!("invalid role name {name:?}")))?;
    if !keymint_auth::cidr::allows(&role.tokens.token_bound_cidrs, c.req.remote) {
        return Err(ApiError::Denied("permission denied".into()));
    }
    let config: Config = load(&c.state, mount, CONFIG, "")
        .await?
        .ok_or_else(|| ApiError::vaults_500("could not load backend configuration"))?;
    let reviewer = secret_of(&c.state, mount, CONFIG, "").await?;

    let jws = Jws::parse(&token).map_err(|e| denied(&e.to_string()))?;
    jwt::check_algorithm(&jws, jwt::KUBERNETES_ALGS).map_err(|e| denied(&e.to_string()))?;
    if !config.pem_keys.is_empty() {
        let mut keys = Vec::new();
        for pem in &config.pem_keys {
            keys.extend(PublicKey::from_pem(pem).map_err(|e| denied(&e.to_string()))?);
        }
        jwt::verify_signature(&jws, &keys, jwt::KUBERNETES_ALGS)
            .map_err(|e| denied(&format!("error verifying token signature: {e}")))?;
    }
    let issuer = (!config.disable_iss_validation && !config.issuer.is_empty()).then(|| config.issuer.clone());
    let audience = Some(role.audience.clone()).filter(|a| !a.is_empty());
    let expected = Expected::kubernetes(audience.clone(), issuer);
    let claims = jws.claims().clone();
    jwt::validate_claims(&claims, &expected, c.state.now().timestamp()).map_err(|e| {
        tracing::info!(reason = %e, "kubernetes login refused");
        ApiError::Denied(e.to_string())
    })?;
    let sa = k8s::service_account(&claims).ok_or_else(|| denied("the token names no service account"))?;
    if !k8s::matches_any(&role.bound_service_account_names, &sa.name) {
        return Err(ApiError::Denied("service account name not authorized".into()));
    }
    if !k8s::matches_any(&role.bound_service_account_namespaces, &sa.namespace) {
        let selected = match k8s::selector_labels(&role.bound_service_account_namespace_selector) {
            Some(labels) => {
                k8s::namespace_selected(&cluster(&config), reviewer.as_deref(), &sa.namespace, &labels).await
            }
            None => false,
        };
        if !selected {
            return Err(ApiError::Denied("namespace not authorized".into()));
        }
    }
    if role.alias_name_source == "serviceaccount_uid" && sa.uid.is_empty() {
        return Err(ApiError::vaults_500("could not parse UID from claims"));
    }
    // Local validation replaces the review only when asked for: keys to check with, and no
    // reviewer to ask with.
    let local_only = !config.pem_keys.is_empty() && reviewer.is_none();
    if !local_only {
        let token_aud: Vec<String> = match claims.get("aud") {
            Some(Value::String(a)) => vec![a.clone()],
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).map(str::to_string).collect(),
            _ => Vec::new(),
        };
        let audiences = audience.map(|a| vec![a]).unwrap_or(token_aud);
        let reviewed = k8s::review(&cluster(&config), reviewer.as_deref(), &token, &audiences)
            .await
            .map_err(|why| denied(&why))?;
        if reviewed.name != sa.name {
            return Err(denied("JWT names did not match"));
        }
        if !sa.uid.is_empty() && reviewed.uid != sa.uid {
            return Err(denied("JWT UIDs did not match"));
        }
        if reviewed.namespace != sa.namespace {
            return Err(denied("JWT namepaces did not match"));
        }
    }
    let mut grant = super::grant(mount, &name, role.tokens.clone());
    grant.display_name = format!("{}-{}", sa.namespace, sa.name);
    grant.metadata = [
        ("role", name.clone()),
        ("service_account_name", sa.name.clone()),
        ("service_account_namespace", sa.namespace.clone()),
        ("service_account_secret_name", sa.secret_name.clone()),
        ("service_account_uid", sa.uid.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    super::issue(&c.state, grant).await
}
