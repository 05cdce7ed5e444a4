//! Access keys: making one beside the keys a user already holds (a lease's fresh user holds
//! none; the root user and static roles' users hold theirs), deleting one, probing that a new
//! one works, and the list of keys keymint still has to delete.
//!
//! CreateAccessKey is not repeated blindly when its answer is lost: a key may exist whose
//! secret nobody has. The user's keys are listed, any key that was not there before the call
//! is deleted, and only then is the call made again.

use std::time::Duration;

use aws_credential_types::Credentials;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
// Tokio's clock: the probe's deadline counts the same time as its pauses (paused in tests).
use tokio::time::Instant;
use tracing::info;

use crate::aws_error::{AwsCallError, Retry};
use crate::clients::AwsClients;
use crate::error::AwsFailure;
use crate::pace::Prepaid;

/// How many times a CreateAccessKey whose answer was lost is reconciled and tried again.
const RECONCILE_ATTEMPTS: u32 = 2;

/// A key that keymint must delete: one it created and never stored, or one a rotation
/// replaced whose deletion has not succeeded yet; or a creation under way whose key id is not
/// known yet ([`StaleKey::creating`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaleKey {
    pub user: String,
    /// Empty for a creation under way.
    pub key: String,
    /// For a creation under way: the user's keys listed just before CreateAccessKey. Any other
    /// key of the user (but the one in use) was made by that call and must go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known: Option<Vec<String>>,
}

impl StaleKey {
    pub fn new(user: impl Into<String>, key: impl Into<String>) -> StaleKey {
        StaleKey { user: user.into(), key: key.into(), known: None }
    }

    /// A CreateAccessKey about to be sent for `user`, who holds `known`: recorded before the
    /// call, so a replica that dies before it can record the new key id leaves no key that
    /// nobody would delete.
    pub fn creating(user: impl Into<String>, known: &[String]) -> StaleKey {
        StaleKey { user: user.into(), key: String::new(), known: Some(known.to_vec()) }
    }
}

/// Reads a stored list of stale keys; a list that does not parse is kept as empty rather than
/// stopping rotation (it only ever holds keys to clean up).
pub fn parse_stale(json: &str) -> Vec<StaleKey> {
    serde_json::from_str(json).unwrap_or_default()
}

pub fn stale_json(keys: &[StaleKey]) -> String {
    serde_json::to_string(keys).unwrap_or_else(|_| "[]".into())
}

/// A key just made; the secret is shown once, here.
pub struct NewKey {
    pub id: String,
    pub secret: SecretString,
}

/// The ids of the user's access keys.
pub async fn list_keys(clients: &AwsClients, user: &str) -> Result<Vec<String>, AwsCallError> {
    let list = clients.iam.list_access_keys().user_name(user);
    let out = clients.iam_call("ListAccessKeys", || list.clone().send()).await?;
    Ok(out.access_key_metadata.into_iter().filter_map(|k| k.access_key_id).collect())
}

/// CreateAccessKey for `user`, who holds the keys `known` (listed just before), on a slot of
/// `ticket` when the call is part of an admitted request.
pub async fn create_key(
    clients: &AwsClients,
    ticket: Option<&Prepaid>,
    user: &str,
    known: &[String],
) -> Result<NewKey, AwsCallError> {
    let create = clients.iam.create_access_key().user_name(user);
    let mut lost = 0;
    loop {
        let sent = match ticket {
            Some(t) => clients.iam_call_paid(t, "CreateAccessKey", || create.clone().send()).await,
            None => clients.iam_call("CreateAccessKey", || create.clone().send()).await,
        };
        match sent {
            Ok(out) => {
                let Some(key) = out.access_key else {
                    return Err(AwsCallError {
                        op: "CreateAccessKey",
                        code: None,
                        text: "AWS returned no access key".into(),
                        failure: AwsFailure::Unavailable,
                        retry: Retry::Never,
                        gave_up: None,
                    });
                };
                if lost > 0 {
                    // A key made by a lost call may only now be listed.
                    delete_unknown(clients, user, known, Some(&key.access_key_id)).await?;
                }
                return Ok(NewKey {
                    id: key.access_key_id,
                    secret: SecretString::from(key.secret_access_key),
                });
            }
            Err(e) if e.outcome_unknown() && lost < RECONCILE_ATTEMPTS => {
                lost += 1;
                delete_unknown(clients, user, known, None).await.map_err(|_| e)?;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Deletes the user's keys that are neither in `known` nor `keep`: keys made by a call whose
/// answer was lost.
pub(crate) async fn delete_unknown(
    clients: &AwsClients,
    user: &str,
    known: &[String],
    keep: Option<&str>,
) -> Result<(), AwsCallError> {
    for key in list_keys(clients, user).await? {
        if known.contains(&key) || keep == Some(key.as_str()) {
            continue;
        }
        if delete_key(clients, user, &key).await? {
            info!(user.name = user, access_key = %key, "deleted an access key whose creation answer was lost");
        }
    }
    Ok(())
}

/// DeleteAccessKey: true when deleted, false when it was already gone.
pub async fn delete_key(clients: &AwsClients, user: &str, key: &str) -> Result<bool, AwsCallError> {
    let delete = clients.iam.delete_access_key().user_name(user).access_key_id(key);
    match clients.iam_call("DeleteAccessKey", || delete.clone().send()).await {
        Ok(_) => Ok(true),
        Err(e) if e.is_code("NoSuchEntity") => Ok(false),
        Err(e) => Err(e),
    }
}

/// Polls GetCallerIdentity signed with a new key, with growing pauses, until AWS accepts it
/// (its ARN) or `timeout` passes (why not). A new IAM key takes seconds to work everywhere.
pub async fn wait_until_accepted(
    clients: &AwsClients,
    key: &NewKey,
    timeout: Duration,
) -> Result<String, String> {
    let creds = Credentials::new(&key.id, key.secret.expose_secret(), None, None, "keymint-rotation-probe");
    let sts = clients.sts_as(creds).await.map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut pause = Duration::from_millis(500);
    loop {
        let last = match clients.sts_call("GetCallerIdentity", || sts.get_caller_identity().send()).await {
            Ok(out) => {
                metrics::histogram!("keymint_iam_key_usable_seconds").record(started.elapsed().as_secs_f64());
                return Ok(out.arn.unwrap_or_default());
            }
            Err(e) => e,
        };
        // What STS answers for a key it does not know yet; anything else will not pass by waiting.
        let not_yet = last.is_code("InvalidClientTokenId") || last.is_code("SignatureDoesNotMatch");
        if !not_yet || started.elapsed() + pause > timeout {
            return Err(format!(
                "AWS did not accept the new access key {} within {}s: {last}",
                key.id,
                started.elapsed().as_secs()
            ));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(4));
    }
}
