//! The fake's IAM and STS: the operations keymint calls, on an in-memory account, answered
//! with the elements of AWS's query-protocol XML that the SDK reads.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, SecondsFormat, Utc};

use super::{ACCOUNT, Refusal, State, escape};

/// An IAM user and everything that keeps IAM from deleting it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct User {
    pub path: String,
    pub created: DateTime<Utc>,
    pub permissions_boundary: Option<String>,
    /// In the order they were set.
    pub tags: Vec<(String, String)>,
    /// Inline policies, by name.
    pub inline: BTreeMap<String, String>,
    pub attached: BTreeSet<String>,
    pub groups: BTreeSet<String>,
    /// Access key ids.
    pub keys: Vec<String>,
    pub login_profile: bool,
    pub mfa: Vec<String>,
    pub ssh: Vec<String>,
    pub certs: Vec<String>,
    pub service_creds: Vec<String>,
}

impl User {
    /// What IAM's DeleteUser refuses to delete a user with.
    fn holds_anything(&self) -> bool {
        !(self.inline.is_empty()
            && self.attached.is_empty()
            && self.groups.is_empty()
            && self.keys.is_empty()
            && !self.login_profile
            && self.mfa.is_empty()
            && self.ssh.is_empty()
            && self.certs.is_empty()
            && self.service_creds.is_empty())
    }

    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

fn el(name: &str, value: &str) -> String {
    format!("<{name}>{}</{name}>", escape(value))
}

fn date(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn no_user(name: &str) -> Refusal {
    (404, "NoSuchEntity", format!("The user with name {name} cannot be found."))
}

fn missing(what: &str) -> Refusal {
    (404, "NoSuchEntity", format!("{what} cannot be found."))
}

/// `Prefix.member.N` values (with `suffix` after N, e.g. `.Key`), in N order.
fn members(p: &BTreeMap<String, String>, prefix: &str, suffix: &str) -> Vec<String> {
    (1..).map_while(|n| p.get(&format!("{prefix}.member.{n}{suffix}")).cloned()).collect()
}

impl State {
    fn user_mut(&mut self, name: &str) -> Result<&mut User, Refusal> {
        self.users.get_mut(name).ok_or_else(|| no_user(name))
    }

    /// The user a call names, or the caller when it names none.
    fn target(&self, p: &BTreeMap<String, String>, caller: &str) -> String {
        p.get("UserName").cloned().unwrap_or_else(|| caller.to_string())
    }

    /// One page of `items` as `<list><member>...</member></list>`, with IsTruncated and Marker.
    fn page(&self, list: &str, items: Vec<String>, p: &BTreeMap<String, String>) -> String {
        let size = if self.page_size == 0 { 100 } else { self.page_size };
        let start: usize = p.get("Marker").and_then(|m| m.parse().ok()).unwrap_or(0);
        let end = (start + size).min(items.len());
        let body: String =
            items[start.min(end)..end].iter().map(|i| format!("<member>{i}</member>")).collect();
        let more = if end < items.len() {
            format!("<IsTruncated>true</IsTruncated>{}", el("Marker", &end.to_string()))
        } else {
            "<IsTruncated>false</IsTruncated>".to_string()
        };
        format!("<{list}>{body}</{list}>{more}")
    }

    fn user_xml(name: &str, u: &User) -> String {
        format!(
            "{}{}{}{}{}",
            el("Path", &u.path),
            el("UserName", name),
            el("UserId", &format!("AIDA{}", name.len())),
            el("Arn", &format!("arn:aws:iam::{ACCOUNT}:user{}{name}", u.path)),
            el("CreateDate", &date(u.created)),
        )
    }

    /// Runs one operation; the inner XML of its `Result` element.
    pub(super) fn run(
        &mut self,
        op: &str,
        p: &BTreeMap<String, String>,
        caller: &str,
    ) -> Result<String, Refusal> {
        let arg = |name: &str| p.get(name).cloned().unwrap_or_default();
        let user = self.target(p, caller);
        let now = Utc::now();
        match op {
            "GetCallerIdentity" => Ok(format!(
                "{}{}{}",
                el("Arn", &format!("arn:aws:iam::{ACCOUNT}:user/{caller}")),
                el("UserId", &format!("AIDA{}", caller.len())),
                el("Account", ACCOUNT)
            )),
            "GetUser" => {
                let u = self.users.get(&user).ok_or_else(|| no_user(&user))?;
                Ok(format!("<User>{}</User>", Self::user_xml(&user, u)))
            }
            "CreateUser" => {
                if self.users.contains_key(&user) {
                    return Err((
                        409,
                        "EntityAlreadyExists",
                        format!("User with name {user} already exists."),
                    ));
                }
                let tags = members(p, "Tags", ".Key").into_iter().zip(members(p, "Tags", ".Value")).collect();
                let u = User {
                    path: p.get("Path").cloned().unwrap_or_else(|| "/".into()),
                    created: now,
                    permissions_boundary: p.get("PermissionsBoundary").cloned(),
                    tags,
                    ..User::default()
                };
                let xml = Self::user_xml(&user, &u);
                self.users.insert(user, u);
                Ok(format!("<User>{xml}</User>"))
            }
            "ListUsers" => {
                let items = self.users.iter().map(|(n, u)| Self::user_xml(n, u)).collect();
                Ok(self.page("Users", items, p))
            }
            "ListUserTags" => {
                let u = self.users.get(&user).ok_or_else(|| no_user(&user))?;
                // A user holds at most 50 tags and a page is 100 by default: one page, always.
                let items: String = u
                    .tags
                    .iter()
                    .map(|(k, v)| format!("<member>{}{}</member>", el("Key", k), el("Value", v)))
                    .collect();
                Ok(format!("<Tags>{items}</Tags><IsTruncated>false</IsTruncated>"))
            }
            "TagUser" => {
                let tags: Vec<_> =
                    members(p, "Tags", ".Key").into_iter().zip(members(p, "Tags", ".Value")).collect();
                let u = self.user_mut(&user)?;
                for (k, v) in tags {
                    u.tags.retain(|(old, _)| *old != k);
                    u.tags.push((k, v));
                }
                Ok(String::new())
            }
            "AttachUserPolicy" => {
                self.user_mut(&user)?.attached.insert(arg("PolicyArn"));
                Ok(String::new())
            }
            "DetachUserPolicy" => {
                let arn = arg("PolicyArn");
                if !self.user_mut(&user)?.attached.remove(&arn) {
                    return Err(missing(&format!("Policy {arn}")));
                }
                Ok(String::new())
            }
            "ListAttachedUserPolicies" => {
                let u = self.users.get(&user).ok_or_else(|| no_user(&user))?;
                let items = u
                    .attached
                    .iter()
                    .map(|a| el("PolicyName", a.rsplit('/').next().unwrap_or(a)) + &el("PolicyArn", a))
                    .collect();
                Ok(self.page("AttachedPolicies", items, p))
            }
            "PutUserPolicy" => {
                let (name, doc) = (arg("PolicyName"), arg("PolicyDocument"));
                self.user_mut(&user)?.inline.insert(name, doc);
                Ok(String::new())
            }
            "DeleteUserPolicy" => {
                let name = arg("PolicyName");
                self.user_mut(&user)?
                    .inline
                    .remove(&name)
                    .ok_or_else(|| missing(&format!("Policy {name}")))?;
                Ok(String::new())
            }
            "ListUserPolicies" => {
                let u = self.users.get(&user).ok_or_else(|| no_user(&user))?;
                let items = u.inline.keys().map(|n| escape(n)).collect();
                Ok(self.page("PolicyNames", items, p))
            }
            "AddUserToGroup" => {
                self.user_mut(&user)?.groups.insert(arg("GroupName"));
                Ok(String::new())
            }
            "RemoveUserFromGroup" => {
                let group = arg("GroupName");
                if !self.user_mut(&user)?.groups.remove(&group) {
                    return Err(missing(&format!("Group {group}")));
                }
                Ok(String::new())
            }
            "ListGroupsForUser" => {
                let u = self.users.get(&user).ok_or_else(|| no_user(&user))?;
                let items = u
                    .groups
                    .iter()
                    .map(|g| {
                        el("Path", "/")
                            + &el("GroupName", g)
                            + &el("GroupId", &format!("AGPA{}", g.len()))
                            + &el("Arn", &format!("arn:aws:iam::{ACCOUNT}:group/{g}"))
                            + &el("CreateDate", &date(now))
                    })
                    .collect();
                Ok(self.page("Groups", items, p))
            }
            "CreateAccessKey" => {
                self.serial += 1;
                let (id, secret) = (format!("FAKEKEY{:012}", self.serial), format!("secret-{}", self.serial));
                let u = self.user_mut(&user)?;
                if u.keys.len() >= 2 {
                    return Err((
                        409,
                        "LimitExceeded",
                        "Cannot exceed quota for AccessKeysPerUser: 2".into(),
                    ));
                }
                u.keys.push(id.clone());
                self.keys.insert(id.clone(), (user.clone(), secret.clone()));
                Ok(format!(
                    "<AccessKey>{}{}{}{}{}</AccessKey>",
                    el("UserName", &user),
                    el("AccessKeyId", &id),
                    el("Status", "Active"),
                    el("SecretAccessKey", &secret),
                    el("CreateDate", &date(now))
                ))
            }
            "ListAccessKeys" => {
                let u = self.users.get(&user).ok_or_else(|| no_user(&user))?;
                let items = u
                    .keys
                    .iter()
                    .map(|k| el("UserName", &user) + &el("AccessKeyId", k) + &el("Status", "Active"))
                    .collect();
                Ok(self.page("AccessKeyMetadata", items, p))
            }
            "DeleteAccessKey" => {
                let id = arg("AccessKeyId");
                let u = self.user_mut(&user)?;
                let before = u.keys.len();
                u.keys.retain(|k| *k != id);
                if u.keys.len() == before {
                    return Err(missing(&format!("The Access Key with id {id}")));
                }
                self.keys.remove(&id);
                Ok(String::new())
            }
            "DeleteLoginProfile" => {
                let u = self.user_mut(&user)?;
                if !std::mem::take(&mut u.login_profile) {
                    return Err(missing(&format!("Login Profile for User {user}")));
                }
                Ok(String::new())
            }
            "ListMFADevices" => {
                let u = self.users.get(&user).ok_or_else(|| no_user(&user))?;
                let items = u
                    .mfa
                    .iter()
                    .map(|m| el("UserName", &user) + &el("SerialNumber", m) + &el("EnableDate", &date(now)))
                    .collect();
                Ok(self.page("MFADevices", items, p))
            }
            "DeactivateMFADevice" => {
                remove(&mut self.user_mut(&user)?.mfa, &arg("SerialNumber"), "MFA device")
            }
            "ListSSHPublicKeys" => {
                let u = self.users.get(&user).ok_or_else(|| no_user(&user))?;
                let items = u
                    .ssh
                    .iter()
                    .map(|k| {
                        el("UserName", &user)
                            + &el("SSHPublicKeyId", k)
                            + &el("Status", "Active")
                            + &el("UploadDate", &date(now))
                    })
                    .collect();
                Ok(self.page("SSHPublicKeys", items, p))
            }
            "DeleteSSHPublicKey" => remove(&mut self.user_mut(&user)?.ssh, &arg("SSHPublicKeyId"), "SSH key"),
            "ListSigningCertificates" => {
                let u = self.users.get(&user).ok_or_else(|| no_user(&user))?;
                let items = u
                    .certs
                    .iter()
                    .map(|c| {
                        el("UserName", &user)
                            + &el("CertificateId", c)
                            + &el("CertificateBody", "-----BEGIN CERTIFICATE-----")
                            + &el("Status", "Active")
                    })
                    .collect();
                Ok(self.page("Certificates", items, p))
            }
            "DeleteSigningCertificate" => {
                remove(&mut self.user_mut(&user)?.certs, &arg("CertificateId"), "Certificate")
            }
            "ListServiceSpecificCredentials" => {
                let u = self.users.get(&user).ok_or_else(|| no_user(&user))?;
                let items: Vec<String> = u
                    .service_creds
                    .iter()
                    .map(|c| {
                        el("UserName", &user)
                            + &el("Status", "Active")
                            + &el("ServiceUserName", &format!("{user}-at-{ACCOUNT}"))
                            + &el("CreateDate", &date(now))
                            + &el("ServiceSpecificCredentialId", c)
                            + &el("ServiceName", "codecommit.amazonaws.com")
                    })
                    .collect();
                // Not paginated in keymint's use: one page, always.
                let body: String = items.iter().map(|i| format!("<member>{i}</member>")).collect();
                Ok(format!("<ServiceSpecificCredentials>{body}</ServiceSpecificCredentials>"))
            }
            "DeleteServiceSpecificCredential" => remove(
                &mut self.user_mut(&user)?.service_creds,
                &arg("ServiceSpecificCredentialId"),
                "Service-specific credential",
            ),
            "DeleteUser" => {
                let u = self.users.get(&user).ok_or_else(|| no_user(&user))?;
                if u.holds_anything() {
                    return Err((
                        409,
                        "DeleteConflict",
                        "Cannot delete entity, must remove referenced objects first.".into(),
                    ));
                }
                self.users.remove(&user);
                Ok(String::new())
            }
            other => Err((400, "InvalidAction", format!("the fake does not know {other}"))),
        }
    }
}

fn remove(items: &mut Vec<String>, id: &str, what: &str) -> Result<String, Refusal> {
    let before = items.len();
    items.retain(|i| i != id);
    if items.len() == before {
        return Err(missing(&format!("{what} {id}")));
    }
    Ok(String::new())
}
