//! Roles: what a credential request mints. Writes merge into the stored role and the merged
//! role is validated as a whole, with Vault's texts; legacy `policy`/`arn` writes are
//! translated as Vault does.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use keymint_lease::CredentialKind;

use crate::error::{EngineError, Result};

// Credential types as roles store and show them; decisions match on [`CredentialKind`].
pub const IAM_USER: &str = CredentialKind::IamUser.as_str();
pub const ASSUMED_ROLE: &str = CredentialKind::AssumedRole.as_str();
pub const FEDERATION_TOKEN: &str = CredentialKind::FederationToken.as_str();
pub const SESSION_TOKEN: &str = CredentialKind::SessionToken.as_str();

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Role {
    pub credential_types: Vec<String>,
    pub role_arns: Option<Vec<String>>,
    pub policy_arns: Option<Vec<String>>,
    pub policy_document: String,
    pub iam_groups: Option<Vec<String>>,
    pub iam_tags: Option<BTreeMap<String, String>>,
    pub session_tags: Option<BTreeMap<String, String>>,
    pub external_id: String,
    pub default_sts_ttl: u64,
    pub max_sts_ttl: u64,
    pub user_path: String,
    pub permissions_boundary_arn: String,
    pub mfa_serial_number: String,
    /// keymint: TTL of this role's `iam_user` leases (0: `config/lease`, then the mount).
    pub default_ttl: u64,
    /// keymint: max TTL of this role's `iam_user` leases (0: `config/lease`, then the mount).
    pub max_ttl: u64,
    /// Set on roles written with the legacy parameters: `creds/` and `sts/` then mint different
    /// types.
    pub prohibit_flexible_cred_path: bool,
    /// keymint: an `iam_user` request returns only once AWS accepts the new key.
    pub wait_until_usable: bool,
    /// keymint: how long, in seconds, to wait for that (0: [`DEFAULT_USABLE_TIMEOUT`]).
    pub usable_timeout: u64,
}

/// How long an `iam_user` request waits for its new key to work, unless the role says.
pub const DEFAULT_USABLE_TIMEOUT: u64 = 30;

/// The fields one role write supplied (`None`: not supplied), under their API names: the api
/// crate fills it from the route's schema, and every field but the few that [`apply_role_write`]
/// translates is stored into [`Role`]'s field of the same name as given. A new role field is
/// its line in the route's schema, its field in [`Role`] and its field here.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct RoleInput {
    pub credential_type: Option<String>,
    pub role_arns: Option<Vec<String>>,
    pub policy_arns: Option<Vec<String>>,
    pub policy_document: Option<String>,
    pub iam_groups: Option<Vec<String>>,
    pub iam_tags: Option<BTreeMap<String, String>>,
    pub session_tags: Option<BTreeMap<String, String>>,
    pub external_id: Option<String>,
    pub default_sts_ttl: Option<u64>,
    pub max_sts_ttl: Option<u64>,
    pub user_path: Option<String>,
    pub permissions_boundary_arn: Option<String>,
    pub mfa_serial_number: Option<String>,
    pub default_ttl: Option<u64>,
    pub max_ttl: Option<u64>,
    /// Legacy: a policy document or ARN (`policy`).
    #[serde(rename = "policy")]
    pub legacy_policy: Option<String>,
    /// Legacy: a policy or role ARN (`arn`).
    #[serde(rename = "arn")]
    pub legacy_arn: Option<String>,
    pub wait_until_usable: Option<bool>,
    pub usable_timeout: Option<u64>,
}

/// The outcome of a role write: the role to store and Vault's warnings.
#[derive(Debug)]
pub struct RoleWrite {
    pub role: Role,
    pub warnings: Vec<String>,
}

static USER_PATH: LazyLock<Regex> = LazyLock::new(|| {
    // Invariant: a literal, valid pattern.
    Regex::new(r"^/([\x21-\x7F]{0,510}/)?$").unwrap_or_else(|_| unreachable!())
});
const USER_PATH_PATTERN: &str = r"^/([\x21-\x7F]{0,510}/)?$";

/// Compacts a JSON policy document (whitespace out, key order kept), or Vault's error.
pub fn compact_policy(doc: &str) -> Result<String> {
    if doc.is_empty() {
        return Ok(String::new());
    }
    let parsed: Value =
        serde_json::from_str(doc).map_err(|_| EngineError::PolicyDocumentUnparsable(doc.to_string()))?;
    Ok(parsed.to_string())
}

/// The given fields of a write, typed, in the order [`RoleInput`] declares them (legacy ones
/// left out).
fn given_fields(input: &RoleInput) -> Result<Map<String, Value>> {
    let Value::Object(fields) = serde_json::to_value(input).map_err(EngineError::encode("role write"))?
    else {
        return Ok(Map::new());
    };
    Ok(fields.into_iter().filter(|(k, v)| !v.is_null() && k != "policy" && k != "arn").collect())
}

/// A modern field given with a legacy write, by Vault's name for it.
fn legacy_conflicts(input: &RoleInput) -> Result<Option<String>> {
    Ok(given_fields(input)?.into_iter().next().map(|(name, _)| match name.as_str() {
        "credential_type" => "an explicit credential_type".to_string(),
        _ => name,
    }))
}

/// The legacy value a write carries, as Vault reads it: `policy`, else `arn`. Both count as
/// given even when empty (a JSON `null` is ""), so hvac's `{"policy": doc, "arn": null}` is the
/// 500 Vault answers, while `{"policy": null, "arn": "arn:…"}` is an ARN write. `None`: no
/// legacy write (an empty value is none either).
fn legacy_value(input: &RoleInput) -> Result<Option<&str>> {
    let policy = input.legacy_policy.as_deref().unwrap_or("");
    if input.legacy_arn.is_some() && !policy.is_empty() {
        return Err(EngineError::LegacyPolicyAndArn);
    }
    let value = input.legacy_arn.as_deref().filter(|_| policy.is_empty()).unwrap_or(policy);
    Ok(Some(value).filter(|v| !v.is_empty()))
}

/// A legacy write: a value starting with `arn:` names a role (assumed_role) or a managed policy
/// (iam_user); anything else is a policy document for iam_user and federation_token.
fn legacy_write(input: &RoleInput, legacy: &str) -> Result<RoleWrite> {
    if let Some(field) = legacy_conflicts(input)? {
        return Err(EngineError::LegacyParamsConflict(field));
    }
    let unparsable = || EngineError::LegacyValueUnparsable(legacy.to_string());
    let mut role = Role { prohibit_flexible_cred_path: true, ..Role::default() };
    if legacy.starts_with("arn:") {
        let resource = legacy.splitn(6, ':').nth(5).unwrap_or("");
        if resource.starts_with("role/") {
            role.credential_types = vec![ASSUMED_ROLE.into()];
            role.role_arns = Some(vec![legacy.to_string()]);
        } else if resource.starts_with("policy/") {
            role.credential_types = vec![IAM_USER.into()];
            role.policy_arns = Some(vec![legacy.to_string()]);
        } else {
            return Err(unparsable());
        }
    } else {
        role.policy_document = compact_policy(legacy).map_err(|_| unparsable())?;
        role.credential_types = vec![IAM_USER.into(), FEDERATION_TOKEN.into()];
    }
    Ok(RoleWrite {
        role,
        warnings: vec![
            "Detected use of legacy role or policy parameter. Please upgrade to use the new parameters."
                .into(),
        ],
    })
}

/// Merges a write into the stored role (or a new one) and validates the result.
pub fn apply_role_write(existing: Option<Role>, input: RoleInput) -> Result<RoleWrite> {
    if let Some(legacy) = legacy_value(&input)? {
        return legacy_write(&input, legacy);
    }
    let mut role = existing.unwrap_or_default();
    // Writing new-style fields onto a legacy role turns it into a modern one.
    role.prohibit_flexible_cred_path = false;
    // The fields stored otherwise than given: one credential_type is the role's list of them,
    // policy documents are kept compact, and keymint's own tag prefix is refused.
    let mut input = input;
    if let Some(t) = input.credential_type.take() {
        role.credential_types = vec![t];
    }
    if let Some(doc) = input.policy_document.take() {
        role.policy_document = compact_policy(&doc)?;
    }
    if let Some(tags) = &input.iam_tags {
        // keymint's own tags tell its users apart (owner, lease, installation): a role must not
        // overwrite them, or teardown and reconcile could no longer recognise the user.
        if let Some(reserved) = tags.keys().find(|k| k.to_ascii_lowercase().starts_with("keymint:")) {
            return Err(EngineError::ReservedTag(reserved.clone()));
        }
    }
    // Every other field is stored as given, over what the role had.
    let role = overlay(role, given_fields(&input)?)?;
    let errors = validate(&role);
    if !errors.is_empty() {
        return Err(EngineError::InvalidRole(errors));
    }
    Ok(RoleWrite { role, warnings: Vec::new() })
}

/// `role` with `fields` (API names, typed) written over the fields of the same name.
fn overlay(role: Role, fields: Map<String, Value>) -> Result<Role> {
    let internal = EngineError::encode("role write");
    let mut stored = serde_json::to_value(role).map_err(internal)?;
    if let Value::Object(stored) = &mut stored {
        stored.extend(fields);
    }
    serde_json::from_value(stored).map_err(internal)
}

fn is_nonempty<T>(v: &Option<Vec<T>>) -> bool {
    v.as_ref().is_some_and(|v| !v.is_empty())
}

fn validate(role: &Role) -> Vec<String> {
    let mut errors = Vec::new();
    let kind = match role.credential_types.as_slice() {
        [] => {
            errors.push("did not supply credential_type".to_string());
            return errors;
        }
        [one] => match CredentialKind::parse(one) {
            Some(kind) => kind,
            None => {
                errors.push(format!("unrecognized credential type: {one}"));
                return errors;
            }
        },
        _ => return errors,
    };
    let sts = kind.is_sts();
    if role.default_sts_ttl > 0 && !sts {
        errors.push(
            "default_sts_ttl parameter only valid for assumed_role, federation_token, and session_token credential types"
                .into(),
        );
    }
    if role.max_sts_ttl > 0 && !sts {
        errors.push(
            "max_sts_ttl parameter only valid for assumed_role, federation_token, and session_token credential types"
                .into(),
        );
    }
    if role.max_sts_ttl > 0 && role.default_sts_ttl > role.max_sts_ttl {
        errors.push("\"default_sts_ttl\" value must be less than or equal to \"max_sts_ttl\" value".into());
    }
    if (role.default_ttl > 0 || role.max_ttl > 0) && sts {
        errors.push(
            "default_ttl and max_ttl are for iam_user roles; STS roles use default_sts_ttl and max_sts_ttl"
                .into(),
        );
    }
    if role.max_ttl > 0 && role.default_ttl > role.max_ttl {
        errors.push("\"default_ttl\" value must be less than or equal to \"max_ttl\" value".into());
    }
    if !role.user_path.is_empty() {
        if kind != CredentialKind::IamUser {
            errors.push("user_path parameter only valid for iam_user credential type".into());
        }
        if !USER_PATH.is_match(&role.user_path) {
            errors.push(format!(
                "the specified value for user_path is invalid. It must match \"{USER_PATH_PATTERN}\" regexp"
            ));
        }
    }
    if (role.wait_until_usable || role.usable_timeout > 0) && kind != CredentialKind::IamUser {
        errors.push(
            "wait_until_usable and usable_timeout are for iam_user roles: STS credentials work at once"
                .into(),
        );
    }
    if role.usable_timeout > 600 {
        errors.push("usable_timeout must be at most 10 minutes".into());
    }
    if !role.permissions_boundary_arn.is_empty() {
        if kind != CredentialKind::IamUser {
            errors.push("cannot supply permissions_boundary_arn when credential_type isn't iam_user".into());
        }
        if let Err(e) = validate_policy_arn(&role.permissions_boundary_arn) {
            errors.push(format!("invalid permissions_boundary_arn parameter: {e}"));
        }
    }
    if kind == CredentialKind::SessionToken
        && (is_nonempty(&role.policy_arns) || !role.policy_document.is_empty())
    {
        errors.push("cannot supply a policy or role when using credential_type session_token".into());
    }
    if kind != CredentialKind::AssumedRole {
        if is_nonempty(&role.role_arns) {
            errors.push("cannot supply role_arns when credential_type isn't assumed_role".into());
        }
        if role.session_tags.as_ref().is_some_and(|t| !t.is_empty()) {
            errors.push("cannot supply session_tags when credential_type isn't assumed_role".into());
        }
        if !role.external_id.is_empty() {
            errors.push("cannot supply external_id when credential_type isn't assumed_role".into());
        }
    }
    errors
}

/// Checks an ARN names an IAM managed policy, with the texts of AWS's Go ARN parser.
fn validate_policy_arn(arn: &str) -> std::result::Result<(), String> {
    if !arn.starts_with("arn:") {
        return Err("arn: invalid prefix".into());
    }
    let sections: Vec<&str> = arn.splitn(6, ':').collect();
    if sections.len() != 6 {
        return Err("arn: not enough sections".into());
    }
    if sections[2] != "iam" {
        return Err(format!("expected a service of iam but got {}", sections[2]));
    }
    if !sections[5].starts_with("policy/") {
        return Err(format!("expected a resource type of policy but got {}", sections[5]));
    }
    Ok(())
}

impl Role {
    /// The `data` of a role read: every field under its API name, with Vault's `null`s for
    /// unset lists and maps, and the credential types as one comma-separated string.
    pub fn to_read_data(&self) -> Value {
        let mut data = Map::new();
        data.insert("credential_type".into(), json!(self.credential_types.join(",")));
        if let Ok(Value::Object(fields)) = serde_json::to_value(self) {
            data.extend(
                fields
                    .into_iter()
                    .filter(|(k, _)| k != "credential_types" && k != "prohibit_flexible_cred_path"),
            );
        }
        Value::Object(data)
    }

    /// The credential type a request mints, given the path it came through.
    pub fn type_for_path(&self, via_sts_path: bool) -> Result<CredentialKind> {
        match self.credential_types.as_slice() {
            [one] => {
                let kind = CredentialKind::parse(one)
                    .ok_or_else(|| EngineError::UnknownCredentialType(one.clone()))?;
                // Legacy roles mint iam_user through creds/ and STS types through sts/ only.
                if self.prohibit_flexible_cred_path && kind.is_sts() != via_sts_path {
                    return Err(EngineError::LegacyCredentialPath {
                        credential_type: one.clone(),
                        via_sts_path,
                    });
                }
                Ok(kind)
            }
            many => {
                let wanted =
                    if via_sts_path { CredentialKind::FederationToken } else { CredentialKind::IamUser };
                if many.iter().any(|t| t == wanted.as_str()) {
                    Ok(wanted)
                } else {
                    Err(EngineError::CredentialTypeNotAllowed {
                        wanted: wanted.as_str().to_string(),
                        allowed: many.to_vec(),
                    })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field a write gives is stored into the role's field of the same name, except the
    /// three apply_role_write translates: a field added to RoleInput alone would fail here.
    #[test]
    fn each_input_field_has_its_stored_field() {
        let keys = |v: Value| v.as_object().unwrap().keys().cloned().collect::<Vec<String>>();
        let stored = keys(serde_json::to_value(Role::default()).unwrap());
        for field in keys(serde_json::to_value(RoleInput::default()).unwrap()) {
            if !["credential_type", "policy", "arn"].contains(&field.as_str()) {
                assert!(stored.contains(&field), "RoleInput.{field} has no Role field");
            }
        }
    }

    fn write(input: RoleInput) -> Result<RoleWrite> {
        apply_role_write(None, input)
    }

    fn typed(t: &str) -> RoleInput {
        RoleInput { credential_type: Some(t.into()), ..Default::default() }
    }

    /// The rules a write breaks (api wraps them in Vault's text, and tests that).
    fn rules(input: RoleInput) -> Vec<String> {
        match write(input) {
            Err(EngineError::InvalidRole(rules)) => rules,
            other => panic!("expected a rule violation, got {other:?}"),
        }
    }

    #[test]
    fn missing_type_is_the_one_rule_broken() {
        assert_eq!(rules(RoleInput::default()), ["did not supply credential_type"]);
    }

    #[test]
    fn each_rule_reports_its_text() {
        let cases: Vec<(RoleInput, &str)> = vec![
            (typed("admin"), "unrecognized credential type: admin"),
            (
                RoleInput { default_ttl: Some(60), ..typed(ASSUMED_ROLE) },
                "default_ttl and max_ttl are for iam_user roles",
            ),
            (
                RoleInput { default_ttl: Some(120), max_ttl: Some(60), ..typed(IAM_USER) },
                r#""default_ttl" value must be less than or equal to "max_ttl" value"#,
            ),
            (
                RoleInput { default_sts_ttl: Some(60), ..typed(IAM_USER) },
                "default_sts_ttl parameter only valid",
            ),
            (RoleInput { max_sts_ttl: Some(60), ..typed(IAM_USER) }, "max_sts_ttl parameter only valid"),
            (
                RoleInput { default_sts_ttl: Some(120), max_sts_ttl: Some(60), ..typed(ASSUMED_ROLE) },
                r#""default_sts_ttl" value must be less than or equal to "max_sts_ttl" value"#,
            ),
            (
                RoleInput { user_path: Some("/a/".into()), ..typed(ASSUMED_ROLE) },
                "user_path parameter only valid for iam_user",
            ),
            (
                RoleInput { user_path: Some("nope".into()), ..typed(IAM_USER) },
                "the specified value for user_path is invalid",
            ),
            (
                RoleInput {
                    permissions_boundary_arn: Some("arn:aws:iam::1:policy/b".into()),
                    ..typed(ASSUMED_ROLE)
                },
                "cannot supply permissions_boundary_arn when credential_type isn't iam_user",
            ),
            (
                RoleInput { permissions_boundary_arn: Some("nope".into()), ..typed(IAM_USER) },
                "invalid permissions_boundary_arn parameter: arn: invalid prefix",
            ),
            (
                RoleInput { permissions_boundary_arn: Some("arn:aws:s3:::x".into()), ..typed(IAM_USER) },
                "expected a service of iam but got s3",
            ),
            (
                RoleInput { policy_document: Some("{}".into()), ..typed(SESSION_TOKEN) },
                "cannot supply a policy or role when using credential_type session_token",
            ),
            (
                RoleInput { role_arns: Some(vec!["arn:aws:iam::1:role/r".into()]), ..typed(IAM_USER) },
                "cannot supply role_arns when credential_type isn't assumed_role",
            ),
            (
                RoleInput {
                    session_tags: Some([("a".into(), "b".into())].into()),
                    ..typed(FEDERATION_TOKEN)
                },
                "cannot supply session_tags when credential_type isn't assumed_role",
            ),
            (
                RoleInput { external_id: Some("x".into()), ..typed(IAM_USER) },
                "cannot supply external_id when credential_type isn't assumed_role",
            ),
        ];
        for (input, want) in cases {
            let got = rules(input);
            assert!(got.iter().any(|r| r.contains(want)), "{got:?} should contain {want:?}");
        }
    }

    #[test]
    fn several_errors_are_listed_together() {
        let got = rules(RoleInput {
            role_arns: Some(vec!["arn:aws:iam::1:role/r".into()]),
            external_id: Some("x".into()),
            ..typed(IAM_USER)
        });
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].starts_with("cannot supply role_arns"), "{got:?}");
    }

    #[test]
    fn writes_merge_and_compact_policies() {
        let first = write(RoleInput {
            policy_document: Some("{ \"Version\": \"2012-10-17\",\n \"Statement\": [] }".into()),
            ..typed(IAM_USER)
        })
        .unwrap()
        .role;
        assert_eq!(first.policy_document, r#"{"Version":"2012-10-17","Statement":[]}"#);
        let merged = apply_role_write(
            Some(first),
            RoleInput { iam_groups: Some(vec!["devs".into()]), ..Default::default() },
        )
        .unwrap()
        .role;
        assert_eq!(merged.credential_types, vec![IAM_USER]);
        assert_eq!(merged.iam_groups, Some(vec!["devs".to_string()]));
        assert!(!merged.policy_document.is_empty());
        assert!(matches!(
            write(RoleInput { policy_document: Some("{nope".into()), ..typed(IAM_USER) }),
            Err(EngineError::PolicyDocumentUnparsable(doc)) if doc == "{nope"
        ));
    }

    #[test]
    fn read_shape_has_nulls_and_a_type_string() {
        let role = write(typed(ASSUMED_ROLE)).unwrap().role;
        let data = role.to_read_data();
        assert_eq!(data["credential_type"], "assumed_role");
        assert!(data["policy_arns"].is_null());
        assert_eq!(data["user_path"], "");
        assert_eq!(data["max_sts_ttl"], 0);
    }

    #[test]
    fn legacy_parameters() {
        let w = write(RoleInput { legacy_policy: Some("{\"a\": 1}".into()), ..Default::default() }).unwrap();
        assert_eq!(w.role.credential_types, vec![IAM_USER, FEDERATION_TOKEN]);
        assert_eq!(w.role.type_for_path(false).unwrap(), CredentialKind::IamUser);
        assert_eq!(w.role.type_for_path(true).unwrap(), CredentialKind::FederationToken);
        assert_eq!(w.warnings.len(), 1);
        let arn = write(RoleInput { legacy_arn: Some("arn:aws:iam::1:role/r".into()), ..Default::default() })
            .unwrap();
        assert_eq!(arn.role.credential_types, vec![ASSUMED_ROLE]);
        assert!(matches!(
            arn.role.type_for_path(false),
            Err(EngineError::LegacyCredentialPath { via_sts_path: false, .. })
        ));
        assert!(matches!(
            write(RoleInput {
                legacy_policy: Some("{}".into()),
                legacy_arn: Some("x".into()),
                ..Default::default()
            }),
            Err(EngineError::LegacyPolicyAndArn)
        ));
        assert!(matches!(
            write(RoleInput { legacy_policy: Some("{}".into()), ..typed(IAM_USER) }),
            Err(EngineError::LegacyParamsConflict(field)) if field == "an explicit credential_type"
        ));
        // hvac's legacy_params sends the other one as null, which is "": an empty policy with an
        // ARN is an ARN write; an empty ARN with a policy is Vault's 500.
        let arn = write(RoleInput {
            legacy_policy: Some(String::new()),
            legacy_arn: Some("arn:aws:iam::aws:policy/ReadOnlyAccess".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(arn.role.credential_types, vec![IAM_USER]);
        assert!(matches!(
            write(RoleInput {
                legacy_policy: Some("{}".into()),
                legacy_arn: Some(String::new()),
                ..Default::default()
            }),
            Err(EngineError::LegacyPolicyAndArn)
        ));
        // Both empty: no legacy write at all, so the usual rules apply.
        assert_eq!(
            rules(RoleInput {
                legacy_policy: Some(String::new()),
                legacy_arn: Some(String::new()),
                ..Default::default()
            }),
            ["did not supply credential_type"]
        );
        // A legacy policy starting with "arn:" is read as an ARN, as in Vault.
        let w =
            write(RoleInput { legacy_policy: Some("arn:aws:iam::1:role/r".into()), ..Default::default() })
                .unwrap();
        assert_eq!(w.role.credential_types, vec![ASSUMED_ROLE]);
    }
}
