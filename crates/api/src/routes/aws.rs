//! An AWS mount's routes, relative to the mount.

use super::{Kind, Param, ROUTE, Route, delete, handler, list, p, q, read, update};
use crate::{aws, static_roles};

const NAME_PARAM: Param = p("name", Kind::String, "The role's name; it comes from the path.");

/// The fields of `config/root`, which `config/root/verify` takes too, so a form for the one
/// can be sent to the other as it is.
const ROOT_PARAMS: &[Param] = &[
    p(
        "access_key",
        Kind::String,
        "Access key id of the root credentials; empty for the default credential chain.",
    ),
    p("secret_key", Kind::String, "Secret of the root credentials. Never returned."),
    p("session_token", Kind::String, "Session token, for temporary root credentials."),
    p("region", Kind::String, "Region of the IAM and STS calls (default: AWS_REGION, then us-east-1)."),
    p("iam_endpoint", Kind::String, "Custom IAM endpoint URL."),
    p("sts_endpoint", Kind::String, "Custom STS endpoint URL."),
    p("sts_region", Kind::String, "Region to sign STS calls for when sts_endpoint is set."),
    p("sts_fallback_endpoints", Kind::CommaList, "STS endpoints to try in order when the first fails."),
    p("sts_fallback_regions", Kind::CommaList, "Regions of the fallback endpoints, one each."),
    p("max_retries", Kind::Int, "Retries of a failed AWS call; -1 for the default."),
    p("username_template", Kind::String, "Template of the names of the IAM users made for iam_user roles."),
    p("role_arn", Kind::String, "A role to assume with the credentials above; its keys are the root keys."),
    p("identity_token_audience", Kind::String, "Plugin workload identity (Vault Enterprise); refused."),
    p("identity_token_ttl", Kind::Duration, "Stored and returned; no effect."),
    p("rotation_policy", Kind::String, "Stored and returned (Vault Enterprise); no effect."),
    p("external_id", Kind::String, "External id for assuming role_arn."),
    p("role_session_name", Kind::String, "Session name for assuming role_arn."),
    p("duration", Kind::Duration, "How long each assumed root session lasts."),
    p("expected_account_id", Kind::String, "Refuse credentials of any other AWS account."),
    p("rotation_period", Kind::Duration, "Rotate the root access key this often."),
    p("rotation_schedule", Kind::String, "Rotate the root access key on this 5-field cron schedule."),
    p("rotation_window", Kind::Duration, "How long after a scheduled time a rotation may still start."),
    p("disable_automated_rotation", Kind::Bool, "Stop scheduled rotation."),
    p("iam_write_rate", Kind::Int, "IAM write calls per second this mount may make."),
    p("iam_read_rate", Kind::Int, "IAM read calls per second this mount may make."),
    p("sts_rate", Kind::Int, "STS calls per second this mount may make."),
    p("max_queue_wait", Kind::Duration, "Refuse a request at once if its calls would wait longer than this."),
    p("retry_deadline", Kind::Duration, "Stop retrying throttled or failed calls after this long."),
    p("call_timeout", Kind::Duration, "Time limit of one AWS call."),
    p(
        "verify_connection",
        Kind::Bool,
        "Check the credentials with GetCallerIdentity before storing them (default true; \
config/root/verify always checks).",
    )
    .or("true"),
];

pub(crate) const AWS_ROUTES: &[Route] = &[
    Route {
        pattern: "config/root",
        paths: &["config/root"],
        ops: &[
            read(handler!(c => aws::read_root(&c).await)),
            update(handler!(c => aws::write_root(&c).await)),
        ],
        existence: Some(aws::root_config_exists),
        synopsis: "The credentials keymint uses to call AWS for this mount, and how it calls.",
        params: ROOT_PARAMS,
        description: "A write checks the credentials with GetCallerIdentity and answers with the account \
and ARN they belong to; nothing is stored if AWS refuses them. A later write changes only the \
fields it gives. A read shows every setting but the secrets.",
        ..ROUTE
    },
    Route {
        pattern: "config/root/verify",
        paths: &["config/root/verify"],
        ops: &[update(handler!(c => aws::verify_root(&c).await))],
        synopsis: "Test root credentials without saving them.",
        params: ROOT_PARAMS,
        description: "Takes what a config/root write takes, merged over the stored config in the same \
way (a field left out keeps its stored value), and makes the same checks: validation, GetCallerIdentity \
(through role_arn when one is set) and expected_account_id. Answers with the account and ARN the \
credentials belong to, or with the error the write would give. Nothing is stored.",
        ..ROUTE
    },
    Route {
        pattern: "config/rotate-root",
        paths: &["config/rotate-root"],
        ops: &[update(handler!(c => static_roles::rotate_root(&c).await))],
        synopsis: "Replace the root access key with a new one and delete the old one.",
        params: &[],
        description: "keymint creates a second key for the root IAM user, stores it once AWS accepts it, \
then deletes the old key. The answer names the new access key id, never its secret.",
        ..ROUTE
    },
    Route {
        pattern: "config/lease",
        paths: &["config/lease"],
        ops: &[
            read(handler!(c => aws::read_lease(&c).await)),
            update(handler!(c => aws::write_lease(&c).await)),
        ],
        synopsis: "Default and maximum lease of iam_user credentials.",
        params: &[
            p("lease", Kind::Duration, "Default lease duration (e.g. 30m, 1h, or seconds)."),
            p("lease_max", Kind::Duration, "Longest a lease may last, renewals included."),
        ],
        description: "These apply to iam_user credentials only; STS credentials last as the role's \
TTLs say. Without them the mount's TTLs apply.",
        ..ROUTE
    },
    Route {
        pattern: "roles/?$",
        paths: &["roles"],
        ops: &[list(handler!(c => aws::list_roles(&c).await))],
        synopsis: "List the roles of this mount.",
        params: &[],
        description: "LIST (or GET with list=true) answers the role names; 404 when there are none.",
        ..ROUTE
    },
    Route {
        pattern: "roles/NAME",
        paths: &["roles/{name}"],
        ops: &[
            read(handler!(c => aws::read_role(&c).await)),
            update(handler!(c => aws::write_role(&c).await)),
            delete(handler!(c => aws::delete_role(&c).await)),
        ],
        synopsis: "Read, write or delete a role: what credentials it mints and with what permissions.",
        params: &[
            NAME_PARAM,
            p("credential_type", Kind::String, "iam_user, assumed_role, federation_token or session_token."),
            p(
                "policy_document",
                Kind::String,
                "An IAM policy in JSON: inline policy of iam_user users, session policy otherwise.",
            ),
            p(
                "policy_arns",
                Kind::CommaList,
                "Managed policies: attached to iam_user users, session policies otherwise.",
            ),
            p("role_arns", Kind::CommaList, "The IAM roles assumed_role credentials may assume."),
            p(
                "iam_groups",
                Kind::CommaList,
                "IAM groups of iam_user users; for STS types, their policies are added.",
            ),
            p("iam_tags", Kind::KvPairs, "Tags of iam_user users."),
            p("session_tags", Kind::KvPairs, "Session tags of assumed_role sessions."),
            p("external_id", Kind::String, "External id for AssumeRole."),
            p("default_sts_ttl", Kind::Duration, "Default lifetime of STS credentials."),
            p("max_sts_ttl", Kind::Duration, "Longest lifetime of STS credentials."),
            p("default_ttl", Kind::Duration, "Default lease of this role's credentials, any type."),
            p("max_ttl", Kind::Duration, "Longest lease of this role's credentials, any type."),
            p("user_path", Kind::String, "IAM path of iam_user users."),
            p("permissions_boundary_arn", Kind::String, "Permissions boundary of iam_user users."),
            p("mfa_serial_number", Kind::String, "MFA device of session_token credentials."),
            p("wait_until_usable", Kind::Bool, "Answer only once AWS accepts the new keys."),
            p("usable_timeout", Kind::Duration, "How long to wait for that."),
            p("policy", Kind::String, "Legacy: a policy document (use policy_document)."),
            p("arn", Kind::String, "Legacy: a policy or role ARN (use policy_arns or role_arns)."),
        ],
        description: "A write merges into the stored role and checks the result as a whole. A read shows \
every field; lists and maps never set are null. Deleting a role leaves its outstanding leases alone.",
        ..ROUTE
    },
    Route {
        pattern: "(creds|sts)/NAME",
        paths: &["creds/{name}", "sts/{name}"],
        ops: &[read(handler!(c => aws::creds(&c).await)), update(handler!(c => aws::creds(&c).await))],
        synopsis: "Mint credentials of a role, as a lease.",
        params: &[
            NAME_PARAM,
            q("ttl", Kind::Duration, "Lifetime of STS credentials, within the role's maximum."),
            q("role_arn", Kind::String, "Which of the role's role_arns to assume."),
            q("role_session_name", Kind::String, "Session name of assumed_role credentials."),
            q("mfa_code", Kind::String, "TOTP code for session_token credentials."),
            q("wait_until_usable", Kind::Bool, "Answer only once AWS accepts the new keys."),
            q("orphan", Kind::Bool, "Keep the lease when the requesting token is revoked.").or("false"),
        ],
        description: "GET takes the parameters in the query, POST/PUT in the body. The answer is a lease: \
renew it (iam_user) or revoke it through sys/leases; when it ends, keymint deletes what it made.",
        ..ROUTE
    },
    Route {
        pattern: "static-roles/?$",
        paths: &["static-roles"],
        ops: &[list(handler!(c => static_roles::list(&c).await))],
        synopsis: "List the static roles of this mount.",
        params: &[],
        description: "LIST answers the static role names; 404 when there are none.",
        ..ROUTE
    },
    Route {
        pattern: "static-roles/NAME",
        paths: &["static-roles/{name}"],
        ops: &[
            read(handler!(c => static_roles::read(&c).await)),
            update(handler!(c => static_roles::write(&c).await)),
            delete(handler!(c => static_roles::delete(&c).await)),
        ],
        synopsis: "An existing IAM user whose access key keymint rotates on a schedule.",
        params: &[
            NAME_PARAM,
            p("username", Kind::String, "The IAM user."),
            p("rotation_period", Kind::Duration, "How often the key is replaced (at least 60s)."),
            p(
                "assume_role_arn",
                Kind::String,
                "Cross-account static roles (Vault Enterprise): must be empty.",
            ),
            p(
                "assume_role_session_name",
                Kind::String,
                "Cross-account static roles (Vault Enterprise): must be empty.",
            ),
            p("external_id", Kind::String, "Cross-account static roles (Vault Enterprise): must be empty."),
        ],
        description: "keymint only ever deletes keys it created for the user.",
        ..ROUTE
    },
    Route {
        pattern: "static-creds/NAME",
        paths: &["static-creds/{name}"],
        ops: &[read(handler!(c => static_roles::static_creds(&c).await))],
        synopsis: "The current access key of a static role.",
        params: &[NAME_PARAM],
        description: "No lease: the key stays valid until the role's next rotation.",
        ..ROUTE
    },
    Route {
        pattern: "reconcile",
        paths: &["reconcile"],
        ops: &[
            read(handler!(c => aws::find_strays(&c).await)),
            update(handler!(c => aws::remove_strays(&c).await)),
        ],
        synopsis: "IAM users this mount made that no lease accounts for, and their removal.",
        params: &[],
        description: "GET lists them; POST deletes them.",
        ..ROUTE
    },
];
