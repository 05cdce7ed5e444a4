//! Folding IAM group policies into STS requests, as Vault does for `assumed_role` and
//! `federation_token` roles with `iam_groups`: inline group policies join the role's policy
//! document, attached group policies join its policy ARNs.

use serde_json::{Value, json};

use crate::aws_error::AwsCallError;
use crate::clients::AwsClients;
use crate::error::{EngineError, Result};

/// Vault answers group look-up failures with AWS's raw text.
fn raw(e: AwsCallError) -> EngineError {
    EngineError::aws("", e)
}

/// The merged policy document (empty when there is none) and policy ARNs.
pub async fn merge(
    aws: &AwsClients,
    groups: &[String],
    role_document: &str,
    role_arns: &[String],
) -> Result<(String, Vec<String>)> {
    let mut documents = Vec::new();
    let mut arns = role_arns.to_vec();
    for group in groups {
        let list = aws.iam.list_attached_group_policies().group_name(group);
        let attached =
            aws.iam_call("ListAttachedGroupPolicies", || list.clone().send()).await.map_err(raw)?;
        for p in attached.attached_policies.unwrap_or_default() {
            if let Some(arn) = p.policy_arn {
                arns.push(arn);
            }
        }
        let list = aws.iam.list_group_policies().group_name(group);
        let inline = aws.iam_call("ListGroupPolicies", || list.clone().send()).await.map_err(raw)?;
        for name in inline.policy_names {
            let get = aws.iam.get_group_policy().group_name(group).policy_name(&name);
            let doc = aws.iam_call("GetGroupPolicy", || get.clone().send()).await.map_err(raw)?;
            // IAM returns policy documents URL-encoded.
            let decoded =
                percent_encoding::percent_decode_str(&doc.policy_document).decode_utf8_lossy().into_owned();
            documents.push(decoded);
        }
    }
    if documents.is_empty() {
        return Ok((role_document.to_string(), arns));
    }
    documents.push(role_document.to_string());
    Ok((combine(&documents)?, arns))
}

/// One document holding every statement of `documents`, in order; empty ones are skipped and a
/// single-object `Statement` counts as a list of one.
pub fn combine(documents: &[String]) -> Result<String> {
    let mut statements = Vec::new();
    for doc in documents.iter().filter(|d| !d.trim().is_empty()) {
        let parsed: Value =
            serde_json::from_str(doc).map_err(|e| EngineError::MergedPolicyUnparsable(e.to_string()))?;
        match parsed.get("Statement") {
            Some(Value::Array(items)) => statements.extend(items.iter().cloned()),
            Some(one @ Value::Object(_)) => statements.push(one.clone()),
            _ => {}
        }
    }
    if statements.is_empty() {
        return Ok(String::new());
    }
    Ok(json!({"Version": "2012-10-17", "Statement": statements}).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_concatenated_in_order() {
        let a = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}}"#;
        let b = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"s3:PutObject","Resource":"*"}]}"#;
        let merged: Value =
            serde_json::from_str(&combine(&[a.into(), String::new(), b.into()]).unwrap()).unwrap();
        let st = merged["Statement"].as_array().unwrap();
        assert_eq!(st.len(), 2);
        assert_eq!(st[0]["Action"], "s3:GetObject");
        assert_eq!(st[1]["Effect"], "Deny");
        assert_eq!(combine(&[String::new()]).unwrap(), "");
    }
}
