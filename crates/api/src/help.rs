//! Path help: `GET /v1/<path>?help=1`, what `vault path-help` and node-vault's `help` send.
//! As in Vault, the answer is a bare `{"help": …, "see_also": null}` describing the route the
//! path matches, its parameters and what it does; nothing is read or written.

use std::sync::LazyLock;

use axum::response::{IntoResponse, Response};
use regex::Regex;
use serde_json::json;

use crate::error::ApiError;

/// Vault's route names: word characters at both ends, `-`, `.` and `@` inside.
const NAME: &str = r"(?P<name>\w(([\w\-.@]+)?\w)?)";

struct Param {
    name: &'static str,
    kind: &'static str,
    text: &'static str,
}

const fn p(name: &'static str, kind: &'static str, text: &'static str) -> Param {
    Param { name, kind, text }
}

struct Route {
    /// The route as Vault prints it, `NAME` standing for the name pattern.
    pattern: &'static str,
    synopsis: &'static str,
    params: &'static [Param],
    description: &'static str,
}

const NAME_PARAM: Param = p("name", "string", "The role's name; it comes from the path.");

/// An AWS mount's routes, relative to the mount.
const AWS_ROUTES: &[Route] = &[
    Route {
        pattern: "config/root",
        synopsis: "The credentials keymint uses to call AWS for this mount, and how it calls.",
        params: &[
            p(
                "access_key",
                "string",
                "Access key id of the root credentials; empty for the default credential chain.",
            ),
            p("secret_key", "string", "Secret of the root credentials. Never returned."),
            p("session_token", "string", "Session token, for temporary root credentials."),
            p("region", "string", "Region of the IAM and STS calls (default: AWS_REGION, then us-east-1)."),
            p("iam_endpoint", "string", "Custom IAM endpoint URL."),
            p("sts_endpoint", "string", "Custom STS endpoint URL."),
            p("sts_region", "string", "Region to sign STS calls for when sts_endpoint is set."),
            p(
                "sts_fallback_endpoints",
                "comma-separated list",
                "STS endpoints to try in order when the first fails.",
            ),
            p("sts_fallback_regions", "comma-separated list", "Regions of the fallback endpoints, one each."),
            p("max_retries", "int", "Retries of a failed AWS call; -1 for the default."),
            p(
                "username_template",
                "string",
                "Template of the names of the IAM users made for iam_user roles.",
            ),
            p(
                "role_arn",
                "string",
                "A role to assume with the credentials above; its keys are the root keys.",
            ),
            p("external_id", "string", "External id for assuming role_arn."),
            p("role_session_name", "string", "Session name for assuming role_arn."),
            p("duration", "duration", "How long each assumed root session lasts."),
            p("expected_account_id", "string", "Refuse credentials of any other AWS account."),
            p("rotation_period", "duration", "Rotate the root access key this often."),
            p("rotation_schedule", "string", "Rotate the root access key on this 5-field cron schedule."),
            p("rotation_window", "duration", "How long after a scheduled time a rotation may still start."),
            p("disable_automated_rotation", "bool", "Stop scheduled rotation."),
            p("iam_write_rate", "int", "IAM write calls per second this mount may make."),
            p("iam_read_rate", "int", "IAM read calls per second this mount may make."),
            p("sts_rate", "int", "STS calls per second this mount may make."),
            p(
                "max_queue_wait",
                "duration",
                "Refuse a request at once if its calls would wait longer than this.",
            ),
            p("retry_deadline", "duration", "Stop retrying throttled or failed calls after this long."),
            p("call_timeout", "duration", "Time limit of one AWS call."),
            p(
                "verify_connection",
                "bool",
                "Check the credentials with GetCallerIdentity before storing them (default true).",
            ),
        ],
        description: "A write checks the credentials with GetCallerIdentity and answers with the account \
and ARN they belong to; nothing is stored if AWS refuses them. A later write changes only the \
fields it gives. A read shows every setting but the secrets.",
    },
    Route {
        pattern: "config/rotate-root",
        synopsis: "Replace the root access key with a new one and delete the old one.",
        params: &[],
        description: "keymint creates a second key for the root IAM user, stores it once AWS accepts it, \
then deletes the old key. The answer names the new access key id, never its secret.",
    },
    Route {
        pattern: "config/lease",
        synopsis: "Default and maximum lease of iam_user credentials.",
        params: &[
            p("lease", "duration", "Default lease duration (e.g. 30m, 1h, or seconds)."),
            p("lease_max", "duration", "Longest a lease may last, renewals included."),
        ],
        description: "These apply to iam_user credentials only; STS credentials last as the role's \
TTLs say. Without them the mount's TTLs apply.",
    },
    Route {
        pattern: "roles/?$",
        synopsis: "List the roles of this mount.",
        params: &[],
        description: "LIST (or GET with list=true) answers the role names; 404 when there are none.",
    },
    Route {
        pattern: "roles/NAME",
        synopsis: "Read, write or delete a role: what credentials it mints and with what permissions.",
        params: &[
            NAME_PARAM,
            p("credential_type", "string", "iam_user, assumed_role, federation_token or session_token."),
            p(
                "policy_document",
                "string",
                "An IAM policy in JSON: inline policy of iam_user users, session policy otherwise.",
            ),
            p(
                "policy_arns",
                "comma-separated list",
                "Managed policies: attached to iam_user users, session policies otherwise.",
            ),
            p("role_arns", "comma-separated list", "The IAM roles assumed_role credentials may assume."),
            p(
                "iam_groups",
                "comma-separated list",
                "IAM groups of iam_user users; for STS types, their policies are added.",
            ),
            p("iam_tags", "map or list of key=value", "Tags of iam_user users."),
            p("session_tags", "map or list of key=value", "Session tags of assumed_role sessions."),
            p("external_id", "string", "External id for AssumeRole."),
            p("default_sts_ttl", "duration", "Default lifetime of STS credentials."),
            p("max_sts_ttl", "duration", "Longest lifetime of STS credentials."),
            p("default_ttl", "duration", "Default lease of this role's credentials, any type."),
            p("max_ttl", "duration", "Longest lease of this role's credentials, any type."),
            p("user_path", "string", "IAM path of iam_user users."),
            p("permissions_boundary_arn", "string", "Permissions boundary of iam_user users."),
            p("mfa_serial_number", "string", "MFA device of session_token credentials."),
            p("wait_until_usable", "bool", "Answer only once AWS accepts the new keys."),
            p("usable_timeout", "duration", "How long to wait for that."),
        ],
        description: "A write merges into the stored role and checks the result as a whole. A read shows \
every field; lists and maps never set are null. Deleting a role leaves its outstanding leases alone.",
    },
    Route {
        pattern: "(creds|sts)/NAME",
        synopsis: "Mint credentials of a role, as a lease.",
        params: &[
            NAME_PARAM,
            p("ttl", "duration", "Lifetime of STS credentials, within the role's maximum."),
            p("role_arn", "string", "Which of the role's role_arns to assume."),
            p("role_session_name", "string", "Session name of assumed_role credentials."),
            p("mfa_code", "string", "TOTP code for session_token credentials."),
            p("wait_until_usable", "bool", "Answer only once AWS accepts the new keys."),
        ],
        description: "GET takes the parameters in the query, POST/PUT in the body. The answer is a lease: \
renew it (iam_user) or revoke it through sys/leases; when it ends, keymint deletes what it made.",
    },
    Route {
        pattern: "static-roles/?$",
        synopsis: "List the static roles of this mount.",
        params: &[],
        description: "LIST answers the static role names; 404 when there are none.",
    },
    Route {
        pattern: "static-roles/NAME",
        synopsis: "An existing IAM user whose access key keymint rotates on a schedule.",
        params: &[
            NAME_PARAM,
            p("username", "string", "The IAM user."),
            p("rotation_period", "duration", "How often the key is replaced (at least 60s)."),
        ],
        description: "keymint only ever deletes keys it created for the user.",
    },
    Route {
        pattern: "static-creds/NAME",
        synopsis: "The current access key of a static role.",
        params: &[NAME_PARAM],
        description: "No lease: the key stays valid until the role's next rotation.",
    },
    Route {
        pattern: "reconcile",
        synopsis: "IAM users this mount made that no lease accounts for, and their removal.",
        params: &[],
        description: "GET lists them; POST deletes them.",
    },
];

/// Routes outside mounts, by their full path.
const CORE_ROUTES: &[Route] = &[
    Route {
        pattern: "sys/leases/lookup",
        synopsis: "A lease's issue and expiry times, remaining TTL and renewability.",
        params: &[p("lease_id", "string", "The lease.")],
        description: "LIST sys/leases/lookup/<prefix> lists lease ids and folders under a prefix (sudo).",
    },
    Route {
        pattern: "sys/leases/renew(/.*)?",
        synopsis: "Renew a lease.",
        params: &[
            p("lease_id", "string", "The lease (also accepted in the path)."),
            p("increment", "duration", "Requested new TTL from now; 0 for the default."),
        ],
        description: "Only iam_user leases renew; the result is capped by the role's and the mount's maximum.",
    },
    Route {
        pattern: "sys/leases/revoke(/.*)?",
        synopsis: "Revoke a lease: what it made in AWS is deleted.",
        params: &[
            p("lease_id", "string", "The lease (also accepted in the path)."),
            p("sync", "bool", "Wait for the revocation (default true); false answers 202 at once."),
        ],
        description: "A revocation AWS refuses is retried in the background until it succeeds.",
    },
    Route {
        pattern: "sys/leases/revoke-prefix/.+",
        synopsis: "Revoke every lease under a prefix (sudo).",
        params: &[p("sync", "bool", "Wait for the revocations (default true).")],
        description: "A prefix names a folder (aws/creds/deploy means aws/creds/deploy/...); a whole lease \
id names that lease.",
    },
    Route {
        pattern: "sys/leases/revoke-force/.+",
        synopsis: "Revoke every lease under a prefix, dropping those AWS refuses to revoke (sudo).",
        params: &[],
        description: "What could not be cleaned up in AWS is listed in the warnings.",
    },
    Route {
        pattern: "sys/mounts(/.*)?",
        synopsis: "Enable, list, tune and disable secrets engines.",
        params: &[
            p("type", "string", "The engine: aws."),
            p("description", "string", "Free text."),
            p("config", "map", "default_lease_ttl and max_lease_ttl."),
        ],
        description: "Disabling a mount revokes its leases first.",
    },
    Route {
        pattern: "sys/(policy|policies/acl)(/.*)?",
        synopsis: "Read, write, list and delete ACL policies.",
        params: &[p("policy", "string", "The policy in HCL or JSON.")],
        description: "Policies grant capabilities on paths to the tokens that hold them.",
    },
    Route {
        pattern: "auth/token/create(-orphan)?(/.*)?",
        synopsis: "Create a token, a child of the caller unless it is an orphan.",
        params: &[
            p("policies", "comma-separated list", "Its policies."),
            p("ttl", "duration", "Its lifetime."),
            p("period", "duration", "Make it periodic: each renewal restores this TTL."),
            p("num_uses", "int", "Uses before it is revoked; 0 for no limit."),
            p("display_name", "string", "Shown in lookups and in IAM user names."),
            p("meta", "map", "Metadata."),
        ],
        description: "Revoking a token revokes its children and the leases they made.",
    },
    Route {
        pattern: "auth/token/(lookup|lookup-self|lookup-accessor)",
        synopsis: "Look up a token: policies, TTL, metadata.",
        params: &[p("token", "string", "The token (lookup only).")],
        description: "A lookup by accessor never shows the token itself.",
    },
];

static COMPILED: LazyLock<Vec<(Regex, &'static Route, bool)>> = LazyLock::new(|| {
    let compile = |route: &'static Route, in_mount: bool| {
        let pattern = format!("^{}$", route.pattern.trim_end_matches('$').replace("NAME", NAME));
        // Invariant: the patterns above are literals that compile.
        (Regex::new(&pattern).unwrap_or_else(|_| unreachable!()), route, in_mount)
    };
    AWS_ROUTES.iter().map(|r| compile(r, true)).chain(CORE_ROUTES.iter().map(|r| compile(r, false))).collect()
});

/// The help for `path` (full, after `/v1/`): `rest` is the mount-relative part when the path
/// falls in an AWS mount.
pub fn answer(path: &str, rest: Option<&str>) -> Response {
    let found = COMPILED.iter().find(|(re, _, in_mount)| match (in_mount, rest) {
        (true, Some(rest)) => re.is_match(rest),
        (false, _) => re.is_match(path),
        (true, None) => false,
    });
    let Some((re, route, in_mount)) = found else {
        return ApiError::UnsupportedPath.into_response();
    };
    let request = if *in_mount { rest.unwrap_or(path) } else { path };
    axum::Json(json!({"help": render(request, re.as_str(), route), "see_also": null})).into_response()
}

fn render(request: &str, pattern: &str, route: &Route) -> String {
    let mut text = format!("Request:        {request}\nMatching Route: {pattern}\n\n{}\n", route.synopsis);
    if !route.params.is_empty() {
        text.push_str("\n## PARAMETERS\n");
        for param in route.params {
            text.push_str(&format!("\n    {} ({})\n\n        {}\n", param.name, param.kind, param.text));
        }
    }
    text.push_str(&format!("\n## DESCRIPTION\n\n{}\n", route.description));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_compiles_and_names_match() {
        assert!(COMPILED.len() == AWS_ROUTES.len() + CORE_ROUTES.len());
        let find = |path: &str, rest: Option<&str>| {
            COMPILED
                .iter()
                .find(|(re, _, m)| if *m { rest.is_some_and(|r| re.is_match(r)) } else { re.is_match(path) })
                .map(|(_, route, _)| route.synopsis)
        };
        assert_eq!(find("aws/creds/team@prod", Some("creds/team@prod")), Some(AWS_ROUTES[5].synopsis));
        assert_eq!(find("aws/roles/", Some("roles/")), Some(AWS_ROUTES[3].synopsis));
        assert_eq!(find("aws/roles/x", Some("roles/x")), Some(AWS_ROUTES[4].synopsis));
        assert_eq!(find("aws/creds/-x", Some("creds/-x")), None);
        assert_eq!(find("sys/leases/revoke/aws/creds/x/abc", None), Some(CORE_ROUTES[2].synopsis));
    }

    #[test]
    fn help_reads_like_vaults() {
        let text = render("creds/deploy", "^(creds|sts)/x$", &AWS_ROUTES[5]);
        assert!(
            text.starts_with("Request:        creds/deploy\nMatching Route: ^(creds|sts)/x$\n\n"),
            "{text}"
        );
        assert!(text.contains("\n## PARAMETERS\n\n    name (string)\n"), "{text}");
        assert!(text.contains("\n## DESCRIPTION\n\n"), "{text}");
    }
}
