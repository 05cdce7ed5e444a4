//! `sys/internal/specs/openapi`: an OpenAPI 3.0 document of every path keymint serves, rendered
//! from the route table ([`crate::routes`]) as Vault renders its own from its path framework.
//! AWS routes appear under each enabled AWS mount (`/aws/creds/{name}`); LIST is Vault's `GET`
//! with a required `list=true` (on the path with a trailing `/` where the path also has a
//! read); `x-vault-sudo` and `x-vault-unauthenticated` mark what Vault marks, and
//! `x-vault-createSupported` (on the path, as Vault puts it) the paths whose route declares an
//! existence check, where a first write is a `create`.
//!
//! The document holds only the paths the caller may use: a path is listed when the caller's
//! policies grant a capability on some path it describes (its parameters standing for any
//! value). Vault filters by mount instead (a token that may use one path of a mount is shown
//! the whole mount); keymint shows less.

use serde_json::{Map, Value, json};

use crate::VERSION;
use crate::request::Operation;
use crate::routes::{Kind, Param, Route, TABLES};

/// The document, with each mount's routes under each of `mounts` (mount path and type:
/// `aws/`, `aws`; `auth/approle/`, `approle`), holding the paths `shown` accepts (it is given
/// the path as OpenAPI writes it: `/aws/creds/{name}`).
pub(crate) fn document(mounts: &[(&str, &str)], shown: &dyn Fn(&str) -> bool) -> Value {
    let mut paths = Map::new();
    for (routes, kind) in TABLES {
        let prefixes: Vec<&str> = match kind {
            Some(kind) => mounts.iter().filter(|(_, k)| k == kind).map(|(path, _)| *path).collect(),
            None => vec![""],
        };
        for prefix in prefixes {
            for route in routes.iter() {
                for template in route.paths {
                    let key = format!("/{prefix}{template}");
                    if shown(&key) {
                        add_route(&mut paths, &key, route, kind.is_some());
                    }
                }
            }
        }
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "keymint API",
            "description": "Short-lived AWS credentials over HashiCorp Vault's AWS secrets engine API. \
    All API routes are prefixed with `/v1/`.",
            "version": VERSION,
        },
        "servers": [{"url": "/v1"}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "VaultToken": {"type": "apiKey", "in": "header", "name": "X-Vault-Token"},
            },
            "schemas": {
                "VaultResponse": envelope_schema(),
                "VaultError": {
                    "type": "object",
                    "description": "Every error keymint answers, as Vault answers it.",
                    "required": ["errors"],
                    "properties": {"errors": {"type": "array", "items": {"type": "string"}}},
                },
            },
        },
        "security": [{"VaultToken": []}],
    })
}

fn envelope_schema() -> Value {
    let nullable_object = json!({"type": "object", "nullable": true, "additionalProperties": true});
    json!({
        "type": "object",
        "description": "Vault's response envelope.",
        "properties": {
            "request_id": {"type": "string"},
            "lease_id": {"type": "string"},
            "renewable": {"type": "boolean"},
            "lease_duration": {"type": "integer"},
            "data": nullable_object,
            "wrap_info": nullable_object,
            "warnings": {"type": "array", "items": {"type": "string"}, "nullable": true},
            "auth": nullable_object,
            "mount_type": {"type": "string"},
        },
    })
}

/// The placeholders of a path template, in order: `roles/{name}` has `name`.
fn placeholders(template: &str) -> Vec<&str> {
    template.split('{').skip(1).filter_map(|s| s.split_once('}').map(|(name, _)| name)).collect()
}

fn add_route(paths: &mut Map<String, Value>, key: &str, route: &Route, in_mount: bool) {
    let in_path = placeholders(key);
    let path_params: Vec<Value> = in_path
        .iter()
        .map(|name| {
            let text = route.params.iter().find(|p| p.name == *name).map_or("Taken from the path.", |p| p.text);
            json!({"name": name, "in": "path", "required": true, "description": text, "schema": {"type": "string"}})
        })
        .collect();
    let rest: Vec<&Param> = route.params.iter().filter(|p| !in_path.contains(&p.name)).collect();
    let has_read = route.ops.iter().any(|o| o.op == Operation::Read);
    for op in route.ops {
        let (method, op_key, name) = match op.op {
            Operation::Read => ("get", key.to_string(), "read"),
            // Vault's convention: a list is a GET with list=true, on `<path>/` when the path
            // reads too.
            Operation::List if has_read => ("get", format!("{key}/"), "list"),
            Operation::List => ("get", key.to_string(), "list"),
            Operation::Update => ("post", key.to_string(), "write"),
            Operation::Delete => ("delete", key.to_string(), "delete"),
            Operation::Head | Operation::Help => continue,
        };
        let mut parameters = path_params.clone();
        if op.op == Operation::List {
            parameters.push(json!({
                "name": "list", "in": "query", "required": true,
                "description": "Must be true: lists instead of reading.",
                "schema": {"type": "string", "enum": ["true"]},
            }));
        }
        if op.op == Operation::Read {
            parameters.extend(rest.iter().filter(|p| p.query).map(
                |p| json!({"name": p.name, "in": "query", "description": p.text, "schema": schema(p.kind)}),
            ));
        }
        let mut operation = json!({
            "summary": route.synopsis,
            "description": route.description,
            "operationId": operation_id(&op_key, name),
            "tags": [if key.starts_with("/auth/") { "auth" } else if in_mount { "secrets" } else { "system" }],
            "parameters": parameters,
            "responses": responses(op.op),
        });
        if op.op == Operation::Update && !rest.is_empty() {
            let properties: Map<String, Value> = rest
                .iter()
                .map(|p| {
                    let mut s = schema(p.kind);
                    s["description"] = json!(p.text);
                    (p.name.to_string(), s)
                })
                .collect();
            operation["requestBody"] = json!({
                "required": false,
                "content": {"application/json": {"schema": {"type": "object", "properties": properties}}},
            });
        }
        if op.sudo {
            operation["x-vault-sudo"] = json!(true);
        }
        if route.unauthenticated {
            operation["x-vault-unauthenticated"] = json!(true);
            operation["security"] = json!([]);
        }
        let item = paths.entry(op_key).or_insert_with(|| json!({}));
        item[method] = operation;
        // Vault's CreateSupported: the path's write is a create when the object is new, which
        // is what an existence check decides.
        if op.op == Operation::Update && route.existence.is_some() {
            item["x-vault-createSupported"] = json!(true);
        }
    }
}

/// The schema of a parameter kind.
pub(crate) fn schema(kind: Kind) -> Value {
    let strings = json!({"type": "array", "items": {"type": "string"}});
    match kind {
        Kind::Int => json!({"type": "integer"}),
        Kind::Bool => json!({"type": "boolean"}),
        // Vault's duration fields take seconds or Go duration strings ("1h30m").
        Kind::Duration => json!({"oneOf": [{"type": "string"}, {"type": "integer"}]}),
        // Vault's type: keymint (as Vault) takes one comma-separated string too.
        Kind::CommaList => strings,
        Kind::Map => json!({"type": "object"}),
        Kind::KvPairs => json!({"oneOf": [{"type": "object"}, strings]}),
        Kind::String => json!({"type": "string"}),
    }
}

fn responses(op: Operation) -> Value {
    let error = json!({
        "description": "Vault's error body.",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/VaultError"}}},
    });
    let mut out = json!({
        "200": {
            "description": "OK",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/VaultResponse"}}},
        },
        "4XX": error,
        "5XX": error,
    });
    if matches!(op, Operation::Update | Operation::Delete) {
        out["204"] = json!({"description": "Done; no content."});
    }
    out
}

/// `aws-creds-name-read` for a read of `/aws/creds/{name}`.
fn operation_id(path: &str, op: &str) -> String {
    let words: Vec<&str> =
        path.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()).collect();
    format!("{}-{op}", words.join("-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_routes_appear_under_each_mount_and_lists_follow_vaults_convention() {
        let doc = document(&[("aws/", "aws"), ("aws-prod/", "aws")], &|_| true);
        let paths = doc["paths"].as_object().unwrap();
        for mount in ["/aws", "/aws-prod"] {
            let creds = &paths[&format!("{mount}/creds/{{name}}")];
            assert!(creds["get"].is_object() && creds["post"].is_object(), "{creds}");
            assert_eq!(creds["get"]["parameters"][0]["in"], "path");
            assert!(creds["get"]["parameters"].as_array().unwrap().iter().any(|p| p["name"] == "ttl"));
            let body = &creds["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"];
            assert!(body["ttl"].is_object() && body.get("name").is_none(), "{body}");
            let list = &paths[&format!("{mount}/roles")]["get"]["parameters"][0];
            assert_eq!((list["name"].as_str(), list["required"].as_bool()), (Some("list"), Some(true)));
        }
        // sys/mounts reads and lists: the list is on the path with a trailing slash.
        assert!(paths["/sys/mounts"]["get"]["parameters"].as_array().unwrap().is_empty());
        assert_eq!(paths["/sys/mounts/"]["get"]["parameters"][0]["name"], "list");
        assert_eq!(paths["/sys/health"]["get"]["security"], json!([]));
        assert_eq!(paths["/sys/leases/revoke-prefix/{prefix}"]["post"]["x-vault-sudo"], true);
        assert_eq!(doc["info"]["version"], VERSION);
    }

    /// The paths whose route has an existence check, and no others, say a write may create.
    #[test]
    fn create_support_follows_the_existence_check() {
        let doc = document(&[("aws/", "aws"), ("auth/approle/", "approle")], &|_| true);
        let paths = doc["paths"].as_object().unwrap();
        let mut marked: Vec<&str> = paths
            .iter()
            .filter(|(_, item)| item.get("x-vault-createSupported") == Some(&json!(true)))
            .map(|(path, _)| path.as_str())
            .collect();
        marked.sort_unstable();
        assert_eq!(
            marked,
            ["/auth/approle/role/{role_name}", "/auth/token/roles/{role_name}", "/aws/config/root"],
            "Vault's AWS engine has an existence check on config/root only"
        );
    }

    #[test]
    fn only_the_paths_shown_are_listed() {
        let doc = document(&[("aws/", "aws")], &|path| path.starts_with("/aws/creds/"));
        let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
        assert_eq!(paths, ["/aws/creds/{name}"]);
    }

    #[test]
    fn operation_ids_are_unique() {
        let doc = document(&[("aws/", "aws")], &|_| true);
        let mut seen = std::collections::HashSet::new();
        for item in doc["paths"].as_object().unwrap().values() {
            for (key, op) in item.as_object().unwrap() {
                if key.starts_with("x-") {
                    continue;
                }
                let id = op["operationId"].as_str().unwrap().to_string();
                assert!(seen.insert(id.clone()), "duplicate operationId {id}");
            }
        }
    }
}
