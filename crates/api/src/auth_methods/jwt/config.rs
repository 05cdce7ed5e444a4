//! The JWT method's config: where the keys tokens are signed with come from. Every write
//! replaces it whole and is checked by reaching the source it names.

use keymint_login::jwt::{self, PublicKey};
use keymint_store::auth_methods::CONFIG;
use keymint_store::mounts::MountRow;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{bad, forget_mount};
use crate::auth_methods::{load, mount_of, save};
use crate::dispatch::Call;
use crate::envelope::Reply;
use crate::error::{ApiError, ApiResult};
use crate::request::Operation;

/// The mount's configuration, as stored (every write replaces it whole, as in Vault).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Config {
    pub oidc_discovery_url: String,
    pub oidc_discovery_ca_pem: String,
    pub oidc_client_id: String,
    pub oidc_response_mode: String,
    pub oidc_response_types: Vec<String>,
    pub jwks_url: String,
    pub jwks_ca_pem: String,
    pub jwt_validation_pubkeys: Vec<String>,
    pub jwt_supported_algs: Vec<String>,
    pub bound_issuer: String,
    pub default_role: String,
    pub provider_config: Map<String, Value>,
    pub namespace_in_state: bool,
}

/// `config`: write (a full replace, checked by reaching the issuer) or read.
pub(crate) async fn config(c: &Call) -> ApiResult<Reply> {
    let mount = mount_of(c)?;
    match c.req.op {
        Operation::Read => {
            let config: Config = load(&c.state, mount, CONFIG, "").await?.ok_or(ApiError::NotFound)?;
            let mut data = serde_json::to_value(&config).map_err(|e| ApiError::hidden(&e))?;
            data["jwks_pairs"] = json!([]);
            data["unsupported_critical_cert_extensions"] = json!([]);
            Ok(Reply::data(data))
        }
        Operation::Update => write_config(c, mount).await,
        _ => Err(ApiError::UnsupportedOperation),
    }
}

async fn write_config(c: &Call, mount: &MountRow) -> ApiResult<Reply> {
    let f = c.fields();
    let text =
        |name: &str| -> ApiResult<String> { Ok(f.string(name)?.unwrap_or_default().trim().to_string()) };
    let config = Config {
        oidc_discovery_url: text("oidc_discovery_url")?,
        oidc_discovery_ca_pem: text("oidc_discovery_ca_pem")?,
        oidc_client_id: text("oidc_client_id")?,
        oidc_response_mode: text("oidc_response_mode")?,
        oidc_response_types: f.list("oidc_response_types")?.unwrap_or_default(),
        jwks_url: text("jwks_url")?,
        jwks_ca_pem: text("jwks_ca_pem")?,
        jwt_validation_pubkeys: f.list("jwt_validation_pubkeys")?.unwrap_or_default(),
        jwt_supported_algs: f.list("jwt_supported_algs")?.unwrap_or_default(),
        bound_issuer: text("bound_issuer")?,
        default_role: text("default_role")?.to_lowercase(),
        provider_config: match f.map("provider_config")? {
            Some(Value::Object(map)) => map.clone(),
            _ => Map::new(),
        },
        namespace_in_state: f.bool("namespace_in_state")?.unwrap_or(true),
    };
    let client_secret = text("oidc_client_secret")?;
    let sources = [
        !config.jwt_validation_pubkeys.is_empty(),
        !config.jwks_url.is_empty(),
        !config.oidc_discovery_url.is_empty(),
    ];
    if sources.iter().filter(|s| **s).count() != 1 {
        return Err(bad(
            "exactly one of 'jwt_validation_pubkeys', 'jwks_url', 'jwks_pairs' or 'oidc_discovery_url' must be set",
        ));
    }
    if config.oidc_client_id.is_empty() != client_secret.is_empty() {
        return Err(bad("both 'oidc_client_id' and 'oidc_client_secret' must be set for OIDC"));
    }
    jwt::parse_supported_algs(&config.jwt_supported_algs).map_err(bad)?;
    match config.oidc_response_mode.as_str() {
        "" | "query" | "form_post" => {}
        other => return Err(bad(format!("invalid response_mode: {other:?}"))),
    }
    // The source is tried now, so a typo is reported at the write and not at the first login.
    if !config.jwt_validation_pubkeys.is_empty() {
        for pem in &config.jwt_validation_pubkeys {
            PublicKey::from_pem(pem).map_err(|e| bad(e.to_string()))?;
        }
    } else if !config.jwks_url.is_empty() {
        let client = jwt::http_client(Some(&config.jwks_ca_pem))
            .map_err(|e| bad(format!("error checking jwks_ca_pem: {e}")))?;
        jwt::fetch_jwks(&client, &config.jwks_url)
            .await
            .map_err(|e| bad(format!("error checking jwks URL {}: {e}", config.jwks_url)))?;
    } else {
        let client = jwt::http_client(Some(&config.oidc_discovery_ca_pem))
            .map_err(|e| bad(format!("error checking oidc_discovery_ca_pem: {e}")))?;
        jwt::discover(&client, &config.oidc_discovery_url)
            .await
            .map_err(|e| bad(format!("error checking oidc discovery URL: {e}")))?;
    }
    let secret = (!client_secret.is_empty()).then_some(client_secret.as_str());
    save(&c.state, mount, CONFIG, "", &config, secret).await?;
    forget_mount(&mount.id);
    tracing::info!(mount.path = %mount.path, "jwt auth config written");
    Ok(Reply::no_content())
}
