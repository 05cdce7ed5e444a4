//! Minting credentials: the four types, each recorded as a lease before it is returned.
//!
//! `iam_user` ordering is what makes keymint crash-safe: a write-ahead intent naming the user
//! is committed before CreateUser, and the lease row is inserted in the same transaction that
//! deletes the intent. At every instant the user is accounted for by an intent or a lease.

use std::collections::BTreeMap;

use aws_sdk_sts::types::{PolicyDescriptorType, Tag as StsTag};
use chrono::{DateTime, Utc};
use keymint_common::go::duration::format_go_duration;
use keymint_common::go::template::{Kind, Template, TemplateData};
use keymint_lease::ttl::sts_ttl;
use keymint_lease::{CredentialKind, Lease, LeaseRecord, LeaseState, new_lease_id};
use keymint_store::{leases, wal};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};
use tracing::instrument;

use crate::error::{EngineError, Result};
use crate::role::Role;
use crate::{Engine, MountCtx, groups};

/// Tag keys keymint puts on every IAM user it creates, so a reconciler can find them.
pub const OWNER_TAG: &str = "keymint:owner";
pub const OWNER_TAG_VALUE: &str = "keymint";
pub const LEASE_TAG: &str = "keymint:lease";
pub const INSTALLATION_TAG: &str = "keymint:installation";

/// A credential request, after field coercion.
#[derive(Debug, Clone)]
pub struct CredsRequest {
    pub role_name: String,
    /// True when the request came through `sts/` rather than `creds/`.
    pub via_sts_path: bool,
    pub ttl: Option<u64>,
    pub role_arn: Option<String>,
    pub role_session_name: Option<String>,
    pub mfa_code: Option<String>,
    /// The calling token's display name (feeds generated names).
    pub display_name: String,
    /// The calling token; the lease dies with it unless `orphan`.
    pub token_accessor: Option<String>,
    pub orphan: bool,
    /// Overrides the role's `wait_until_usable` for this request.
    pub wait_until_usable: Option<bool>,
}

/// A minted credential, ready for Vault's envelope.
pub struct Minted {
    pub lease_id: String,
    pub lease_duration: u64,
    /// When the lease falls due (ms since the epoch), as stored.
    pub expire_time_ms: i64,
    pub renewable: bool,
    pub data: Map<String, Value>,
    pub warnings: Vec<String>,
}

impl std::fmt::Debug for Minted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Minted")
            .field("lease_id", &self.lease_id)
            .field("lease_duration", &self.lease_duration)
            .field("renewable", &self.renewable)
            .finish_non_exhaustive()
    }
}

/// Vault's normalisation of names fed to AWS: anything outside `[A-Za-z0-9+=,.@_-]` becomes `_`.
pub fn normalize_name(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || "+=,.@_-".contains(c) { c } else { '_' }).collect()
}

pub(crate) fn generate_name(template: &str, kind: Kind, display: &str, role: &str) -> Result<String> {
    let t = Template::parse(template).map_err(|e| EngineError::TemplateUnparsable(e.to_string()))?;
    let (display, role) = (normalize_name(display), normalize_name(role));
    let data = TemplateData { kind, display_name: &display, policy_name: &role };
    let name = t.render(&data).map_err(|e| EngineError::TemplateRender(e.to_string()))?;
    let (limit, what) = match kind {
        Kind::Iam => (64, "IAM username"),
        Kind::Sts => (32, "STS username"),
    };
    if name.len() > limit {
        return Err(EngineError::UsernameTooLong { what, limit });
    }
    Ok(name)
}

/// AWS's accepted session lengths per credential type, in seconds.
fn aws_duration_bounds(kind: CredentialKind) -> (u64, u64) {
    match kind {
        CredentialKind::AssumedRole => (900, 43_200),
        _ => (900, 129_600),
    }
}

pub(crate) fn secret_string(s: Option<String>) -> SecretString {
    SecretString::from(s.unwrap_or_default())
}

struct StsCreds {
    access_key: String,
    secret_key: SecretString,
    session_token: SecretString,
    expiration: DateTime<Utc>,
}

fn sts_creds(c: Option<aws_sdk_sts::types::Credentials>) -> Result<StsCreds> {
    let c = c.ok_or_else(|| EngineError::Unexpected("AWS returned no credentials".into()))?;
    let expiration = DateTime::<Utc>::from_timestamp(c.expiration.secs(), c.expiration.subsec_nanos())
        .unwrap_or_else(Utc::now);
    Ok(StsCreds {
        access_key: c.access_key_id,
        secret_key: secret_string(Some(c.secret_access_key)),
        session_token: secret_string(Some(c.session_token)),
        expiration,
    })
}

/// A new lease of the credentials `req` asked for on `mount`: active, with no revocation
/// history, renewable unless STS made it, held by the requesting token unless it is an orphan.
/// `(issued, expires)` in unix milliseconds.
pub(crate) fn new_lease(
    mount: &MountCtx,
    req: &CredsRequest,
    id: String,
    kind: CredentialKind,
    (issued, expires): (i64, i64),
    record: LeaseRecord,
) -> Lease {
    Lease {
        id,
        mount_id: mount.id.clone(),
        role_name: req.role_name.clone(),
        kind,
        issue_time: issued,
        expire_time: expires,
        last_renewal: None,
        renewable: !kind.is_sts(),
        record,
        secret: None,
        token_accessor: if req.orphan { None } else { req.token_accessor.clone() },
        orphan: req.orphan,
        state: LeaseState::Active,
        attempts: 0,
        next_attempt_at: None,
        last_error: None,
        irrevocable: false,
    }
}

impl Engine {
    /// Mints a credential for `req.role_name` on `mount`.
    #[instrument(skip_all, fields(mount = %mount.path, role = %req.role_name))]
    pub async fn mint(&self, mount: &MountCtx, req: CredsRequest) -> Result<Minted> {
        let role = self
            .role(mount, &req.role_name)
            .await?
            .ok_or_else(|| EngineError::RoleNotFound(req.role_name.clone()))?;
        let kind = role.type_for_path(req.via_sts_path)?;
        let started = std::time::Instant::now();
        let label = kind.as_str();
        let minted = match kind {
            // Boxed: each is a large state machine, and one inline in the other would overflow
            // a worker thread's stack in debug builds.
            CredentialKind::IamUser => Box::pin(self.mint_iam_user(mount, &role, &req)).await,
            _ => Box::pin(self.mint_sts(mount, &role, kind, &req)).await,
        };
        // Issuance as the caller saw it: AWS calls, pacing and the lease record.
        let outcome = match &minted {
            Ok(_) => "ok",
            Err(EngineError::Aws { .. }) => "aws_error",
            Err(e) if e.is_callers_mistake() => "bad_request",
            Err(_) => "error",
        };
        metrics::counter!("keymint_credentials_issued_total", "credential_type" => label, "outcome" => outcome)
            .increment(1);
        if minted.is_ok() {
            metrics::histogram!("keymint_issue_duration_seconds", "credential_type" => label)
                .record(started.elapsed().as_secs_f64());
        }
        minted
    }

    pub(crate) fn request_path(req: &CredsRequest) -> String {
        format!("{}/{}", if req.via_sts_path { "sts" } else { "creds" }, req.role_name)
    }

    pub(crate) async fn commit_lease(&self, row: &leases::LeaseRow, intent_id: Option<&str>) -> Result<()> {
        let Some(intent_id) = intent_id else {
            // Only STS leases come without an intent: nothing to clean up in AWS, so their
            // record need not wait for the disk. One statement, atomic on its own.
            leases::insert_unflushed(self.store.pool(), self.store.backend(), row).await?;
            return Ok(());
        };
        let mut tx = self.store.begin().await?;
        leases::insert(&mut *tx, row).await?;
        wal::delete(&mut *tx, intent_id).await?;
        tx.commit().await.map_err(keymint_store::StoreError::from)?;
        Ok(())
    }

    async fn mint_sts(
        &self,
        mount: &MountCtx,
        role: &Role,
        kind: CredentialKind,
        req: &CredsRequest,
    ) -> Result<Minted> {
        let mut warnings = Vec::new();
        let mut ttl = sts_ttl(req.ttl, role.default_sts_ttl, role.max_sts_ttl, mount.ttls);
        let (low, high) = aws_duration_bounds(kind);
        if ttl < low || ttl > high {
            let clamped = ttl.clamp(low, high);
            warnings.push(format!(
                "ttl of {ttl}s is outside what AWS accepts for {} credentials ({low}s to {high}s); using {clamped}s",
                kind.as_str()
            ));
            ttl = clamped;
        }
        let (clients, cfg) = self.clients(mount).await?;
        let duration = i32::try_from(ttl).unwrap_or(i32::MAX);

        let (policy, policy_arns) = if kind == CredentialKind::SessionToken {
            (String::new(), Vec::new())
        } else {
            let groups = role.iam_groups.clone().unwrap_or_default();
            groups::merge(
                &clients,
                &groups,
                &role.policy_document,
                role.policy_arns.as_deref().unwrap_or(&[]),
            )
            .await?
        };
        let descriptors: Vec<PolicyDescriptorType> =
            policy_arns.iter().map(|a| PolicyDescriptorType::builder().arn(a).build()).collect();

        let mut data = Map::new();
        let (creds, internal_user) = match kind {
            CredentialKind::AssumedRole => {
                let arns = role.role_arns.clone().unwrap_or_default();
                let role_arn = match req.role_arn.as_deref().filter(|a| !a.is_empty()) {
                    Some(asked) => {
                        if !arns.iter().any(|a| a == asked) {
                            return Err(EngineError::RoleArnNotAllowed {
                                arn: asked.to_string(),
                                role: req.role_name.clone(),
                            });
                        }
                        asked.to_string()
                    }
                    None if arns.len() == 1 => arns[0].clone(),
                    None => {
                        return Err(EngineError::RoleArnRequired);
                    }
                };
                let sts = clients.sts().await?;
                let session = match req.role_session_name.as_deref().filter(|s| !s.is_empty()) {
                    Some(s) => normalize_name(s).chars().take(64).collect(),
                    None => {
                        generate_name(&cfg.username_template, Kind::Iam, &req.display_name, &req.role_name)?
                    }
                };
                let mut call = sts
                    .assume_role()
                    .role_arn(&role_arn)
                    .role_session_name(&session)
                    .duration_seconds(duration)
                    .set_policy_arns((!descriptors.is_empty()).then_some(descriptors));
                if !policy.is_empty() {
                    call = call.policy(&policy);
                }
                for (k, v) in role.session_tags.iter().flatten() {
                    call = call.tags(
                        StsTag::builder()
                            .key(k)
                            .value(v)
                            .build()
                            .map_err(|e| EngineError::Unexpected(format!("session tag: {e}")))?,
                    );
                }
                if !role.external_id.is_empty() {
                    call = call.external_id(&role.external_id);
                }
                let out = clients
                    .sts_call("AssumeRole", || call.clone().send())
                    .await
                    .map_err(|e| e.with_prefix("Error assuming role"))?;
                let arn = out.assumed_role_user.map(|u| u.arn).unwrap_or_default();
                data.insert("arn".into(), json!(arn));
                (sts_creds(out.credentials)?, session)
            }
            CredentialKind::FederationToken => {
                let sts = clients.sts().await?;
                let name =
                    generate_name(&cfg.username_template, Kind::Sts, &req.display_name, &req.role_name)?;
                if policy.is_empty() && descriptors.is_empty() {
                    return Err(EngineError::FederationPolicyRequired);
                }
                let mut call = sts
                    .get_federation_token()
                    .name(&name)
                    .duration_seconds(duration)
                    .set_policy_arns((!descriptors.is_empty()).then_some(descriptors));
                if !policy.is_empty() {
                    call = call.policy(&policy);
                }
                let out = clients
                    .sts_call("GetFederationToken", || call.clone().send())
                    .await
                    .map_err(|e| e.with_prefix("Error generating STS keys"))?;
                (sts_creds(out.credentials)?, name)
            }
            _ => {
                let sts = clients.sts().await?;
                let mut call = sts.get_session_token().duration_seconds(duration);
                if !role.mfa_serial_number.is_empty() {
                    call = call.serial_number(&role.mfa_serial_number);
                }
                if let Some(code) = req.mfa_code.as_deref().filter(|c| !c.is_empty()) {
                    call = call.token_code(code);
                }
                let out = clients
                    .sts_call("GetSessionToken", || call.clone().send())
                    .await
                    .map_err(|e| e.with_prefix("Error generating STS keys"))?;
                (sts_creds(out.credentials)?, String::new())
            }
        };

        let now = self.now();
        let remaining = (creds.expiration - now).num_seconds().max(1) as u64;
        data.insert("access_key".into(), json!(creds.access_key));
        data.insert("secret_key".into(), json!(creds.secret_key.expose_secret()));
        data.insert("session_token".into(), json!(creds.session_token.expose_secret()));
        if kind != CredentialKind::SessionToken {
            data.insert("security_token".into(), json!(creds.session_token.expose_secret()));
        }
        data.insert("ttl".into(), json!(remaining));
        let data: Map<String, Value> = data.into_iter().collect::<BTreeMap<_, _>>().into_iter().collect();

        let lease_id = new_lease_id(&mount.path, &Self::request_path(req));
        let record = LeaseRecord {
            username: internal_user.to_string(),
            access_key_id: creds.access_key.to_string(),
            is_sts: true,
            role_ttl: None,
            role_max_ttl: None,
        };
        let times = (now.timestamp_millis(), creds.expiration.timestamp_millis());
        let lease = new_lease(mount, req, lease_id.clone(), kind, times, record);
        let row = leases::LeaseRow::from(&lease);
        self.commit_lease(&row, None).await?;
        Ok(Minted {
            lease_id,
            lease_duration: remaining,
            expire_time_ms: row.expire_time,
            renewable: false,
            data,
            warnings,
        })
    }
}

/// Vault's warning when a TTL was cut to the effective maximum.
pub fn ttl_capped_warning(asked: u64, max: u64) -> String {
    format!(
        "TTL of {:?} exceeded the effective max_ttl of {:?}; TTL value is capped accordingly",
        format_go_duration(asked),
        format_go_duration(max)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use keymint_common::go::template::DEFAULT_USERNAME_TEMPLATE;

    #[test]
    fn names_are_normalized_like_vault() {
        assert_eq!(normalize_name("token-ci/deploy x"), "token-ci_deploy_x");
        assert_eq!(normalize_name("a+b=c,d.e@f_g-h"), "a+b=c,d.e@f_g-h");
    }

    #[test]
    fn generated_names_respect_limits() {
        let iam = generate_name(DEFAULT_USERNAME_TEMPLATE, Kind::Iam, "root", &"r".repeat(80)).unwrap();
        assert!(iam.len() <= 64 && iam.starts_with("vault-root-rrr"));
        let sts = generate_name(DEFAULT_USERNAME_TEMPLATE, Kind::Sts, "root", "deploy").unwrap();
        assert_eq!(sts.len(), 32);
        let err = generate_name("{{ random 70 }}", Kind::Iam, "root", "x").unwrap_err();
        assert!(matches!(err, EngineError::UsernameTooLong { what: "IAM username", limit: 64 }), "{err:?}");
    }

    #[test]
    fn capped_warning_text() {
        assert_eq!(
            ttl_capped_warning(7200, 3600),
            r#"TTL of "2h0m0s" exceeded the effective max_ttl of "1h0m0s"; TTL value is capped accordingly"#
        );
    }

    #[test]
    fn aws_bounds() {
        assert_eq!(aws_duration_bounds(CredentialKind::AssumedRole), (900, 43_200));
        assert_eq!(aws_duration_bounds(CredentialKind::FederationToken), (900, 129_600));
    }
}
