//! ACL policy management (`sys/policies/acl/*` and the legacy `sys/policy/*`) and the
//! capability queries (`sys/capabilities`, `-self`, `-accessor`).

use keymint_auth::policy::{self, Acl};
use keymint_auth::{DEFAULT_POLICY_NAME, ROOT_POLICY};
use keymint_store::tokens;
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::dispatch::Call;
use crate::envelope::Reply;
use crate::error::{ApiError, ApiResult};
use crate::request::{LogicalRequest, Operation};

/// `sys/policy`: the legacy listing, with both `policies` and `keys`, also at the top level.
pub(crate) async fn list_legacy(state: &AppState) -> ApiResult<Reply> {
    let mut reply = list(state).await?;
    if let Some(keys) = reply.data.as_ref().map(|d| d["keys"].clone()) {
        let data = json!({"policies": keys.clone(), "keys": keys});
        reply.top_level = data.as_object().cloned();
        reply.data = Some(data);
    }
    Ok(reply)
}

/// `sys/policies/acl/<name>` and the legacy `sys/policy/<name>`.
pub(crate) async fn one(c: &Call) -> ApiResult<Reply> {
    let path = c.req.path.as_str();
    match path.strip_prefix("sys/policies/acl/") {
        Some(name) => one_policy(&c.state, &c.req, name, false).await,
        None => {
            one_policy(&c.state, &c.req, path.strip_prefix("sys/policy/").unwrap_or_default(), true).await
        }
    }
}

pub(crate) async fn list(state: &AppState) -> ApiResult<Reply> {
    let mut keys = tokens::policy_names(state.store().pool()).await?;
    for builtin in [DEFAULT_POLICY_NAME, ROOT_POLICY] {
        if !keys.iter().any(|k| k == builtin) {
            keys.push(builtin.to_string());
        }
    }
    keys.sort();
    Ok(Reply::data(json!({ "keys": keys })))
}

/// Read, write or delete one policy; `legacy` answers in `sys/policy`'s shape (`rules`).
async fn one_policy(state: &AppState, req: &LogicalRequest, name: &str, legacy: bool) -> ApiResult<Reply> {
    let name = name.trim_end_matches('/').to_lowercase();
    let pool = state.store().pool();
    match req.op {
        Operation::Read => {
            let body = match tokens::get_policy(pool, &name).await? {
                Some(row) => row.body,
                None if name == DEFAULT_POLICY_NAME => policy::DEFAULT_POLICY.trim_start().to_string(),
                None => return Err(ApiError::NotFound),
            };
            let field = if legacy { "rules" } else { "policy" };
            let mut data = Map::new();
            data.insert("name".into(), json!(name));
            data.insert(field.into(), json!(body));
            let mut reply = Reply::data(Value::Object(data.clone()));
            if legacy {
                reply.top_level = Some(data);
            }
            Ok(reply)
        }
        Operation::Update => {
            if name == ROOT_POLICY || name == keymint_auth::RESPONSE_WRAPPING_POLICY_NAME {
                return Err(ApiError::BadRequest(format!("cannot update {name:?} policy")));
            }
            let mut warnings = Vec::new();
            let mut text = req.fields().string("policy")?.unwrap_or_default();
            if text.is_empty() && legacy {
                // The legacy API's old name for the text, which node-vault documents.
                text = req.fields().string("rules")?.unwrap_or_default();
                warnings.push("'rules' is deprecated, please use 'policy' instead".to_string());
                if req.data.contains("name") {
                    // Vault adds this to any answer it gives with a body, equal value or not.
                    warnings.push(
                        "Endpoint replaced the value of these parameters with the values captured from the endpoint's path: [name]"
                            .to_string(),
                    );
                }
            }
            if text.trim().is_empty() {
                return Err(ApiError::BadRequest("'policy' parameter not supplied or empty".into()));
            }
            // Vault accepts the policy base64-encoded too.
            let text = decode_if_base64(&text);
            policy::parse(&name, &text).map_err(|e| ApiError::BadRequest(e.to_string()))?;
            tokens::put_policy(pool, &name, &text, state.now_ms()).await?;
            Ok(Reply::written(warnings))
        }
        Operation::Delete => {
            if name == ROOT_POLICY || name == DEFAULT_POLICY_NAME {
                return Err(ApiError::BadRequest(format!("cannot delete {name:?} policy")));
            }
            tokens::delete_policy(pool, &name).await?;
            Ok(Reply::no_content())
        }
        _ => Err(ApiError::UnsupportedOperation),
    }
}

fn decode_if_base64(text: &str) -> String {
    use base64::Engine as _;
    let looks_encoded = !text.contains(char::is_whitespace) && !text.contains('{');
    if looks_encoded
        && let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(text)
        && let Ok(decoded) = String::from_utf8(bytes)
    {
        return decoded;
    }
    text.to_string()
}

/// `{path|paths}` → capabilities at each, for the caller (`-self`), the token given, or the
/// accessor given.
pub(crate) async fn capabilities(
    state: &AppState,
    req: &LogicalRequest,
    own: Option<Vec<String>>,
) -> ApiResult<Reply> {
    if req.op != Operation::Update {
        return Err(ApiError::UnsupportedOperation);
    }
    let mut paths = req.fields().list("paths")?.unwrap_or_default();
    if let Some(p) = req.fields().string("path")?.filter(|p| !p.is_empty()) {
        paths.push(p);
    }
    paths.retain(|p| !p.is_empty());
    if paths.is_empty() {
        return Err(ApiError::BadRequest("missing paths".into()));
    }
    let policies = match own {
        Some(p) => p,
        None => {
            let pool = state.store().pool();
            let row = if req.path == "sys/capabilities-accessor" {
                let accessor = req.fields().string("accessor")?.unwrap_or_default();
                tokens::get_by_accessor(pool, &accessor).await?
            } else {
                let token = req.fields().string("token")?.unwrap_or_default();
                tokens::get_by_hash(pool, &state.store().hasher().hash(&token)).await?
            };
            let row = row.ok_or_else(|| ApiError::BadRequest("invalid token".into()))?;
            keymint_auth::policies_of(&row)?
        }
    };
    let acl: Acl = keymint_auth::acl_for(state.store(), &policies).await?;
    let mut data = Map::new();
    for path in &paths {
        data.insert(path.clone(), json!(acl.capabilities(path)));
    }
    if paths.len() == 1 {
        data.insert("capabilities".into(), json!(acl.capabilities(&paths[0])));
    }
    let top = data.clone();
    Ok(Reply { data: Some(Value::Object(data)), top_level: Some(top), ..Default::default() })
}
