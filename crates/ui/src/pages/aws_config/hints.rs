//! What to do about an AWS account error: the API's text (an AWS error code with the operation
//! it came from, or the account mismatch) read back into a hint in the operator's terms.

/// The hint for an error the API gave, when one applies.
pub(crate) fn hint(error: &str) -> Option<String> {
    let has = |code: &str| error.contains(code);
    if ["InvalidClientTokenId", "SignatureDoesNotMatch", "InvalidAccessKeyId", "UnrecognizedClientException"]
        .into_iter()
        .any(has)
    {
        return Some(
            "The access key or secret is wrong: check both, and that the key is active in IAM \
             (a key made seconds ago may not work yet)."
                .into(),
        );
    }
    // AWS's answer without a readable code (an endpoint that is not quite STS, such as moto's
    // answer to a bad signature): a refusal of the caller's identity is still about the keys.
    if has("AWS answered with status 403") && has("AWS operation GetCallerIdentity") {
        return Some(
            "AWS refused these credentials: the access key or secret may be wrong, or the key inactive."
                .into(),
        );
    }
    if has("AccessDenied") && has("AWS operation AssumeRole") {
        return Some(
            "The keys may not assume this role: allow sts:AssumeRole on the role ARN in their IAM \
             policy, and let their principal in through the role's trust policy (with this external \
             ID, if the trust policy asks for one)."
                .into(),
        );
    }
    if let Some((found, expected)) = mismatch(error) {
        return Some(format!(
            "These credentials belong to account {found}, but the expected account ID is {expected}: \
             use credentials of account {expected}, or correct the expected account ID."
        ));
    }
    if has("ExpiredToken") || has("RequestExpired") {
        return Some("The session token has expired: give fresh temporary keys, or long-lived ones.".into());
    }
    if has("loading credentials") || has("no credentials") {
        return Some(
            "The default credential chain found no credentials where keymint runs: give keymint's \
             environment, files or instance role credentials, or choose static keys."
                .into(),
        );
    }
    if has("could not reach AWS") || has("the AWS call timed out") {
        return Some("keymint could not reach AWS: check the region and the IAM and STS endpoints.".into());
    }
    if has("config/rotate-root when either access_key or secret_key is empty")
        || has("holds temporary credentials")
    {
        return Some(
            "Only the long-lived access key of an IAM user can be rotated: save static keys \
             (without a session token) first."
                .into(),
        );
    }
    None
}

/// The accounts of the API's mismatch text: "the root credentials belong to account A (arn),
/// not to the expected account E".
fn mismatch(error: &str) -> Option<(&str, &str)> {
    let rest = error.split("the root credentials belong to account ").nth(1)?;
    let found = rest.split_whitespace().next()?;
    let expected = rest.split("not to the expected account ").nth(1)?.split_whitespace().next()?;
    Some((found, expected.trim_end_matches(['.', ';'])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_name_the_cause() {
        let wrong = "error verifying the root credentials with GetCallerIdentity: SignatureDoesNotMatch: \
                     The request signature we calculated does not match (AWS operation GetCallerIdentity)";
        assert!(hint(wrong).unwrap().starts_with("The access key or secret is wrong"));
        let denied = "error verifying the root credentials with GetCallerIdentity: AccessDenied: User is \
                      not authorized (AWS operation AssumeRole; hint: ...)";
        assert!(hint(denied).unwrap().contains("allow sts:AssumeRole"));
        let bare = "GetCallerIdentity: AWS answered with status 403 (AWS operation GetCallerIdentity)";
        assert!(hint(bare).unwrap().contains("access key or secret may be wrong"));
        let other_denied = "AccessDenied: no (AWS operation GetCallerIdentity)";
        assert_eq!(hint(other_denied), None);
        let text = "Could not test the connection: the root credentials belong to account 123456789012 \
                    (arn:aws:iam::123456789012:user/root), not to the expected account 999999999999";
        let h = hint(text).unwrap();
        assert!(
            h.contains("belong to account 123456789012") && h.contains("expected account ID is 999999999999"),
            "{h}"
        );
        assert_eq!(hint("access_key and secret_key must be given together"), None);
        let chain =
            "could not reach AWS: dispatch failure: other: an error occurred while loading credentials";
        assert!(hint(chain).unwrap().starts_with("The default credential chain found no credentials"));
        assert!(hint("could not reach AWS: dns error").unwrap().contains("check the region"));
    }
}
