//! Full teardown of an IAM user: everything AWS refuses to delete a user with, then the user.
//! Vault removes only keys, policies and groups, so a user someone gave a console password or
//! an MFA device survives its lease; keymint removes all of it.

use std::future::Future;
use std::pin::Pin;

use crate::aws_error::AwsCallError;
use crate::clients::AwsClients;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Teardown {
    Deleted,
    /// The user did not exist when teardown started. Whether that counts as success is the
    /// caller's call: right after CreateUser it may be IAM's eventual consistency talking.
    AlreadyGone,
}

const NO_SUCH_ENTITY: &str = "NoSuchEntity";

/// One removal call of a teardown, run alongside the others.
type Removal<'a> = Pin<Box<dyn Future<Output = Result<(), AwsCallError>> + Send + 'a>>;

/// Runs `$call` (the paginated IAM list call `$op`, with `.marker()`) through the pacer of
/// `$aws`, collecting `$items` of every page.
macro_rules! collect_pages {
    ($aws:expr, $op:literal, $call:expr, $items:ident, $map:expr) => {{
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let request = $call.set_marker(marker.take());
            let page = $aws.iam_call($op, || request.clone().send()).await?;
            out.extend(ListItems::items(page.$items).into_iter().map($map));
            match (page.is_truncated, page.marker) {
                (true, Some(m)) => marker = Some(m),
                _ => break,
            }
        }
        out
    }};
}

/// IAM list outputs hold their items as `Vec<T>` or `Option<Vec<T>>`; both read as a Vec.
trait ListItems<T> {
    fn items(self) -> Vec<T>;
}

impl<T> ListItems<T> for Vec<T> {
    fn items(self) -> Vec<T> {
        self
    }
}

impl<T> ListItems<T> for Option<Vec<T>> {
    fn items(self) -> Vec<T> {
        self.unwrap_or_default()
    }
}

/// Deletes `user` and everything attached to it. Items that vanish meanwhile (NoSuchEntity on
/// one of them) are fine; any other failure stops and is returned, and a retry starts over.
pub async fn delete_user(aws: &AwsClients, user: &str) -> Result<Teardown, AwsCallError> {
    let iam = &aws.iam;
    let groups = match list_groups(aws, user).await {
        Ok(groups) => groups,
        Err(e) if e.is_code(NO_SUCH_ENTITY) => return Ok(Teardown::AlreadyGone),
        Err(e) => return Err(e),
    };
    // The user exists: what hangs on it is listed all at once, then removed all at once, so a
    // teardown costs a few round trips to IAM however many calls it makes.
    let (inline, attached, keys, mfa, ssh, certs) = tokio::try_join!(
        async {
            Ok(collect_pages!(
                aws,
                "ListUserPolicies",
                iam.list_user_policies().user_name(user),
                policy_names,
                |n: String| n
            ))
        },
        async {
            Ok(collect_pages!(
                aws,
                "ListAttachedUserPolicies",
                iam.list_attached_user_policies().user_name(user),
                attached_policies,
                |p: aws_sdk_iam::types::AttachedPolicy| p.policy_arn.unwrap_or_default()
            ))
        },
        async {
            Ok(collect_pages!(
                aws,
                "ListAccessKeys",
                iam.list_access_keys().user_name(user),
                access_key_metadata,
                |k: aws_sdk_iam::types::AccessKeyMetadata| k.access_key_id.unwrap_or_default()
            ))
        },
        async {
            Ok(collect_pages!(
                aws,
                "ListMFADevices",
                iam.list_mfa_devices().user_name(user),
                mfa_devices,
                |d: aws_sdk_iam::types::MfaDevice| d.serial_number
            ))
        },
        async {
            Ok(collect_pages!(
                aws,
                "ListSSHPublicKeys",
                iam.list_ssh_public_keys().user_name(user),
                ssh_public_keys,
                |k: aws_sdk_iam::types::SshPublicKeyMetadata| k.ssh_public_key_id
            ))
        },
        async {
            Ok::<_, AwsCallError>(collect_pages!(
                aws,
                "ListSigningCertificates",
                iam.list_signing_certificates().user_name(user),
                certificates,
                |c: aws_sdk_iam::types::SigningCertificate| c.certificate_id
            ))
        },
    )?;
    let mut removals: Vec<Removal<'_>> = Vec::new();
    for key in keys {
        removals.push(Box::pin(async move {
            {
                let r = iam.delete_access_key().user_name(user).access_key_id(key);
                tolerate_gone(aws.iam_call("DeleteAccessKey", || r.clone().send()).await)
            }
        }));
    }
    for arn in attached {
        removals.push(Box::pin(async move {
            {
                let r = iam.detach_user_policy().user_name(user).policy_arn(arn);
                tolerate_gone(aws.iam_call("DetachUserPolicy", || r.clone().send()).await)
            }
        }));
    }
    for name in inline {
        removals.push(Box::pin(async move {
            {
                let r = iam.delete_user_policy().user_name(user).policy_name(name);
                tolerate_gone(aws.iam_call("DeleteUserPolicy", || r.clone().send()).await)
            }
        }));
    }
    for group in groups {
        removals.push(Box::pin(async move {
            {
                let r = iam.remove_user_from_group().user_name(user).group_name(group);
                tolerate_gone(aws.iam_call("RemoveUserFromGroup", || r.clone().send()).await)
            }
        }));
    }
    removals.push(Box::pin(async move {
        {
            let r = iam.delete_login_profile().user_name(user);
            tolerate_gone(aws.iam_call("DeleteLoginProfile", || r.clone().send()).await)
        }
    }));
    for serial in mfa {
        removals.push(Box::pin(async move {
            {
                let r = iam.deactivate_mfa_device().user_name(user).serial_number(serial);
                tolerate_gone(aws.iam_call("DeactivateMFADevice", || r.clone().send()).await)
            }
        }));
    }
    for id in ssh {
        removals.push(Box::pin(async move {
            {
                let r = iam.delete_ssh_public_key().user_name(user).ssh_public_key_id(id);
                tolerate_gone(aws.iam_call("DeleteSSHPublicKey", || r.clone().send()).await)
            }
        }));
    }
    for id in certs {
        removals.push(Box::pin(async move {
            {
                let r = iam.delete_signing_certificate().user_name(user).certificate_id(id);
                tolerate_gone(aws.iam_call("DeleteSigningCertificate", || r.clone().send()).await)
            }
        }));
    }
    // All of them run to the end even if one fails, so a retry finds less to do.
    for result in futures_util::future::join_all(removals).await {
        result?;
    }
    let delete = iam.delete_user().user_name(user);
    match aws.iam_call("DeleteUser", || delete.clone().send()).await {
        Ok(_) => {}
        Err(err) => {
            if err.is_code(NO_SUCH_ENTITY) {
                // Deleted by someone else meanwhile: the goal is reached.
            } else if err.is_code("DeleteConflict") {
                // Service-specific credentials (CodeCommit, Keyspaces...) are rare, so they are
                // looked for only when AWS says something still holds the user.
                delete_service_specific_credentials(aws, user).await?;
                {
                    let r = iam.delete_user().user_name(user);
                    tolerate_gone(aws.iam_call("DeleteUser", || r.clone().send()).await)
                }?;
            } else {
                return Err(err);
            }
        }
    }
    Ok(Teardown::Deleted)
}

async fn delete_service_specific_credentials(aws: &AwsClients, user: &str) -> Result<(), AwsCallError> {
    let list = aws.iam.list_service_specific_credentials().user_name(user);
    let creds = aws.iam_call("ListServiceSpecificCredentials", || list.clone().send()).await?;
    for cred in creds.service_specific_credentials.unwrap_or_default() {
        let delete = aws
            .iam
            .delete_service_specific_credential()
            .user_name(user)
            .service_specific_credential_id(cred.service_specific_credential_id);
        tolerate_gone(aws.iam_call("DeleteServiceSpecificCredential", || delete.clone().send()).await)?;
    }
    Ok(())
}

async fn list_groups(aws: &AwsClients, user: &str) -> Result<Vec<String>, AwsCallError> {
    Ok(collect_pages!(
        aws,
        "ListGroupsForUser",
        aws.iam.list_groups_for_user().user_name(user),
        groups,
        |g: aws_sdk_iam::types::Group| g.group_name
    ))
}

/// A removal whose target is already gone reached its goal.
fn tolerate_gone<T>(result: Result<T, AwsCallError>) -> Result<(), AwsCallError> {
    match result {
        Ok(_) => Ok(()),
        Err(err) if err.is_code(NO_SUCH_ENTITY) => Ok(()),
        Err(err) => Err(err),
    }
}
