//! IAM fixtures the credential tests need (groups, managed policies, roles) and a read-back of
//! everything moto holds about a user, all through the harness's own SDK clients.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::moto::Moto;

/// A trust policy that lets anyone assume the role (moto does not enforce it anyway).
const OPEN_TRUST_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}"#;

/// What moto holds about one IAM user.
#[derive(Debug)]
pub struct IamUser {
    pub name: String,
    pub path: String,
    pub arn: String,
    pub groups: Vec<String>,
    /// Attached managed policy ARNs.
    pub attached_policies: Vec<String>,
    /// Inline policies: name and parsed document.
    pub inline_policies: BTreeMap<String, Value>,
    pub tags: BTreeMap<String, String>,
    pub access_keys: Vec<String>,
}

impl Moto {
    pub async fn create_group(&self, name: &str) -> String {
        let out = self
            .iam()
            .create_group()
            .group_name(name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("CreateGroup {name}: {e:?}"));
        out.group().expect("CreateGroup returns the group").arn().to_owned()
    }

    /// A customer managed policy; returns its ARN.
    pub async fn create_managed_policy(&self, name: &str, document: &Value) -> String {
        let out = self
            .iam()
            .create_policy()
            .policy_name(name)
            .policy_document(document.to_string())
            .send()
            .await
            .unwrap_or_else(|e| panic!("CreatePolicy {name}: {e:?}"));
        let policy = out.policy().expect("CreatePolicy returns the policy");
        policy.arn().expect("a created policy has an ARN").to_owned()
    }

    /// A role anyone may assume; returns its ARN.
    pub async fn create_role(&self, name: &str) -> String {
        let out = self
            .iam()
            .create_role()
            .role_name(name)
            .assume_role_policy_document(OPEN_TRUST_POLICY)
            .send()
            .await
            .unwrap_or_else(|e| panic!("CreateRole {name}: {e:?}"));
        out.role().expect("CreateRole returns the role").arn().to_owned()
    }

    /// Names of the IAM users whose path starts with `path_prefix` (`/` for all).
    pub async fn user_names(&self, path_prefix: &str) -> Vec<String> {
        let out = self
            .iam()
            .list_users()
            .path_prefix(path_prefix)
            .send()
            .await
            .unwrap_or_else(|e| panic!("ListUsers: {e:?}"));
        out.users().iter().map(|u| u.user_name().to_owned()).collect()
    }

    /// Everything moto knows about user `name`; panics if it does not exist.
    pub async fn user(&self, name: &str) -> IamUser {
        let iam = self.iam();
        let fail = |op: &str, e: &dyn std::fmt::Debug| -> ! { panic!("{op} {name}: {e:?}") };

        let user = iam.get_user().user_name(name).send().await;
        let user = user.unwrap_or_else(|e| fail("GetUser", &e));
        let user = user.user().expect("GetUser returns the user");

        let groups = iam.list_groups_for_user().user_name(name).send().await;
        let groups = groups.unwrap_or_else(|e| fail("ListGroupsForUser", &e));
        let attached = iam.list_attached_user_policies().user_name(name).send().await;
        let attached = attached.unwrap_or_else(|e| fail("ListAttachedUserPolicies", &e));
        let tags = iam.list_user_tags().user_name(name).send().await;
        let tags = tags.unwrap_or_else(|e| fail("ListUserTags", &e));
        let keys = iam.list_access_keys().user_name(name).send().await;
        let keys = keys.unwrap_or_else(|e| fail("ListAccessKeys", &e));

        let inline_names = iam.list_user_policies().user_name(name).send().await;
        let inline_names = inline_names.unwrap_or_else(|e| fail("ListUserPolicies", &e));
        let mut inline_policies = BTreeMap::new();
        for policy in inline_names.policy_names() {
            let doc = iam
                .get_user_policy()
                .user_name(name)
                .policy_name(policy)
                .send()
                .await
                .unwrap_or_else(|e| fail("GetUserPolicy", &e));
            inline_policies.insert(policy.clone(), parse_policy(doc.policy_document()));
        }

        IamUser {
            name: user.user_name().to_owned(),
            path: user.path().to_owned(),
            arn: user.arn().to_owned(),
            groups: groups.groups().iter().map(|g| g.group_name().to_owned()).collect(),
            attached_policies: attached
                .attached_policies()
                .iter()
                .filter_map(|p| p.policy_arn().map(str::to_owned))
                .collect(),
            inline_policies,
            tags: tags.tags().iter().map(|t| (t.key().to_owned(), t.value().to_owned())).collect(),
            access_keys: keys
                .access_key_metadata()
                .iter()
                .filter_map(|k| k.access_key_id().map(str::to_owned))
                .collect(),
        }
    }
}

/// IAM, and moto like it, return policy documents URL-encoded (`%20`, never `+`, for a space).
fn parse_policy(document: &str) -> Value {
    serde_json::from_str(document)
        .or_else(|_| {
            let decoded: String = url::form_urlencoded::parse(format!("d={document}").as_bytes())
                .map(|(_, v)| v.into_owned())
                .collect();
            serde_json::from_str(&decoded)
        })
        .unwrap_or_else(|e| panic!("policy document is not JSON ({e}): {document}"))
}
