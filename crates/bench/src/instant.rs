//! The instant upstream: a stand-in for AWS that answers at once, so a benchmark against it
//! measures keymint's own cost (HTTP, auth, SQLite, the SDK's signing and parsing) rather
//! than AWS's or moto's.
//!
//! It speaks the query protocol of STS and IAM for the calls keymint makes to issue
//! `assumed_role` and `iam_user` credentials and to tear an `iam_user` down, with the XML
//! shapes moto puts on the wire (element names checked against the real SDK by the tests
//! below). It keeps no state: a teardown always finds one key, one inline policy, two
//! managed policies and one group, what the benchmarks' `iam_user` role gives each user.
//! An action it does not know is answered `400 InvalidAction`, so a benchmark that strays
//! shows errors instead of silently skipped work.
//!
//! It can also wait a fixed time before each answer (`--latency-ms`): a model of AWS, whose
//! calls take tens of milliseconds, nearly all of it spent waiting, and run side by side.
//! moto cannot stand in for that: it spends its time computing, one call at a time.
//!
//! It runs as its own process (`keymint-bench instant-upstream`, started by the benchmarks)
//! on one thread, so its CPU time can be read apart from keymint's and the bench's.
//! `GET /stats` answers how many calls of each action it served.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::Args;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

const ACCOUNT: &str = "123456789012";
const IAM_NS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";
const STS_NS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
/// What the stateless teardown finds on every user (the benchmarks' role gives exactly this).
pub const GROUP: &str = "bench-group";
pub const POLICY_ARNS: [&str; 2] =
    ["arn:aws:iam::123456789012:policy/bench-a", "arn:aws:iam::123456789012:policy/bench-b"];
pub const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/bench-assumed";

#[derive(Args)]
pub struct InstantArgs {
    /// Where to listen (loopback only).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Milliseconds to wait before each answer.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
}

/// `keymint-bench instant-upstream`: serves until killed; prints `listening on URL` first.
pub async fn run(args: InstantArgs) -> Result<()> {
    if !args.listen.ip().is_loopback() {
        bail!("the instant upstream listens on loopback only, not {}", args.listen);
    }
    let listener = TcpListener::bind(args.listen).await?;
    println!("listening on http://{}", listener.local_addr()?);
    serve(listener, Duration::from_millis(args.latency_ms)).await
}

/// Calls served so far, by action.
#[derive(Default)]
struct Served {
    by_action: Mutex<BTreeMap<String, u64>>,
    /// Numbers the access keys handed out, so each is distinct.
    keys: AtomicU64,
    /// How long each AWS call takes.
    latency: Duration,
}

pub async fn serve(listener: TcpListener, latency: Duration) -> Result<()> {
    let served = Arc::new(Served { latency, ..Served::default() });
    loop {
        let (stream, _) = listener.accept().await?;
        // Answers are one small write each: Nagle's algorithm would only hold them back.
        stream.set_nodelay(true)?;
        let served = served.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(req, served.clone()));
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

async fn handle(req: Request<Incoming>, served: Arc<Served>) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.uri().path() == "/stats" {
        let counts = served.by_action.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let body = serde_json::to_string(&counts).unwrap_or_default();
        return Ok(respond(200, "application/json", body));
    }
    let query = req.uri().query().unwrap_or_default().to_owned();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(respond(400, "text/plain", "unreadable body".into())),
    };
    let params: BTreeMap<String, String> = form_urlencoded::parse(query.as_bytes())
        .chain(form_urlencoded::parse(&body))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let action = params.get("Action").cloned().unwrap_or_default();
    *served.by_action.lock().unwrap_or_else(|p| p.into_inner()).entry(action.clone()).or_default() += 1;
    let (status, xml) = answer(&action, &params, &served.keys);
    if !served.latency.is_zero() {
        tokio::time::sleep(served.latency).await;
    }
    Ok(respond(status, "text/xml", xml))
}

fn respond(status: u16, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    if let Ok(v) = content_type.parse() {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    resp
}

/// The status and XML body AWS would answer `action` with.
fn answer(action: &str, p: &BTreeMap<String, String>, keys: &AtomicU64) -> (u16, String) {
    let param = |name: &str| escape(p.get(name).map_or("", String::as_str));
    let user = param("UserName");
    let now = chrono::Utc::now();
    let stamp = now.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let user_xml = format!(
        "<User><Path>/</Path><UserName>{user}</UserName><UserId>AIDABENCHINSTANT0001</UserId>\
         <Arn>arn:aws:iam::{ACCOUNT}:user/{user}</Arn><CreateDate>{stamp}</CreateDate></User>"
    );
    let key_xml = |id: &str| {
        format!(
            "<member><UserName>{user}</UserName><AccessKeyId>{id}</AccessKeyId><Status>Active</Status>\
             <CreateDate>{stamp}</CreateDate></member>"
        )
    };
    let body = match action {
        "GetCallerIdentity" => {
            let result = format!(
                "<UserId>AIDABENCHINSTANT0000</UserId><Account>{ACCOUNT}</Account>\
                 <Arn>arn:aws:iam::{ACCOUNT}:user/bench-root</Arn>"
            );
            return (200, ok(STS_NS, action, Some(&result)));
        }
        "AssumeRole" => {
            let seconds: i64 = p.get("DurationSeconds").and_then(|d| d.parse().ok()).unwrap_or(3600);
            let expires = (now + chrono::Duration::seconds(seconds)).format("%Y-%m-%dT%H:%M:%SZ");
            let role = p.get("RoleArn").and_then(|a| a.rsplit('/').next()).map_or(String::new(), escape);
            let session = param("RoleSessionName");
            let result = format!(
                "<Credentials><AccessKeyId>ASIABENCHINSTANT0000</AccessKeyId>\
                 <SecretAccessKey>bench/instant/secret/access/key/000000000</SecretAccessKey>\
                 <SessionToken>FQoGZXIvYXdzEBYaDbenchinstantsessiontoken0000000000000000</SessionToken>\
                 <Expiration>{expires}</Expiration></Credentials>\
                 <AssumedRoleUser><AssumedRoleId>AROABENCHINSTANT0000:{session}</AssumedRoleId>\
                 <Arn>arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}</Arn></AssumedRoleUser>\
                 <PackedPolicySize>6</PackedPolicySize>"
            );
            return (200, ok(STS_NS, action, Some(&result)));
        }
        "CreateUser" | "GetUser" => ok(IAM_NS, action, Some(&user_xml)),
        "CreateAccessKey" => {
            let id = format!("AKIABENCH{:011}", keys.fetch_add(1, Ordering::Relaxed));
            let result = format!(
                "<AccessKey><UserName>{user}</UserName><AccessKeyId>{id}</AccessKeyId><Status>Active</Status>\
                 <SecretAccessKey>bench/instant/secret/access/key/000000000</SecretAccessKey>\
                 <CreateDate>{stamp}</CreateDate></AccessKey>"
            );
            ok(IAM_NS, action, Some(&result))
        }
        "PutUserPolicy"
        | "AttachUserPolicy"
        | "AddUserToGroup"
        | "TagUser"
        | "DeleteAccessKey"
        | "DetachUserPolicy"
        | "DeleteUserPolicy"
        | "RemoveUserFromGroup"
        | "DeleteUser"
        | "DeactivateMFADevice"
        | "DeleteSSHPublicKey"
        | "DeleteSigningCertificate" => ok(IAM_NS, action, None),
        // What AWS answers for a user that never had a console password.
        "DeleteLoginProfile" => {
            return (404, error(IAM_NS, "NoSuchEntity", &format!("Login profile for {user} not found")));
        }
        "ListGroupsForUser" => list(
            action,
            &format!(
                "<Groups><member><Path>/</Path><GroupName>{GROUP}</GroupName><GroupId>AGPABENCHINSTANT0000</GroupId>\
                 <Arn>arn:aws:iam::{ACCOUNT}:group/{GROUP}</Arn><CreateDate>{stamp}</CreateDate></member></Groups>"
            ),
        ),
        "ListUserPolicies" => list(action, "<PolicyNames><member>bench-user</member></PolicyNames>"),
        "ListAttachedUserPolicies" => {
            let members: String = POLICY_ARNS
                .iter()
                .map(|arn| {
                    let name = arn.rsplit('/').next().unwrap_or_default();
                    format!("<member><PolicyName>{name}</PolicyName><PolicyArn>{arn}</PolicyArn></member>")
                })
                .collect();
            list(action, &format!("<AttachedPolicies>{members}</AttachedPolicies>"))
        }
        "ListAccessKeys" => list(
            action,
            &format!("<AccessKeyMetadata>{}</AccessKeyMetadata>", key_xml("AKIABENCH00000000000")),
        ),
        "ListMFADevices" => list(action, "<MFADevices/>"),
        "ListSSHPublicKeys" => list(action, "<SSHPublicKeys/>"),
        "ListSigningCertificates" => list(action, "<Certificates/>"),
        "ListUserTags" => list(action, "<Tags/>"),
        "ListUsers" => list(action, "<Users/>"),
        _ => {
            let message = format!("the instant upstream does not answer {:?}", escape(action));
            return (400, error(IAM_NS, "InvalidAction", &message));
        }
    };
    (200, body)
}

fn ok(ns: &str, action: &str, result: Option<&str>) -> String {
    let result = result.map(|r| format!("<{action}Result>{r}</{action}Result>")).unwrap_or_default();
    format!(
        "<{action}Response xmlns=\"{ns}\">{result}<ResponseMetadata><RequestId>bench-instant</RequestId>\
         </ResponseMetadata></{action}Response>"
    )
}

/// A complete, unpaginated IAM list answer.
fn list(action: &str, items: &str) -> String {
    ok(IAM_NS, action, Some(&format!("{items}<IsTruncated>false</IsTruncated>")))
}

fn error(ns: &str, code: &str, message: &str) -> String {
    format!(
        "<ErrorResponse xmlns=\"{ns}\"><Error><Type>Sender</Type><Code>{code}</Code>\
         <Message>{message}</Message></Error><RequestId>bench-instant</RequestId></ErrorResponse>"
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The instant upstream as a child process of the bench.
pub struct InstantUpstream {
    child: Child,
    url: String,
}

impl InstantUpstream {
    pub async fn start(latency_ms: u64) -> Result<InstantUpstream> {
        let exe = std::env::current_exe().context("locating keymint-bench itself")?;
        let mut child = Command::new(exe)
            .args(["instant-upstream", "--listen", "127.0.0.1:0", "--latency-ms", &latency_ms.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting the instant upstream")?;
        let stdout = child.stdout.take().context("piped stdout")?;
        let line = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).map(|_| line)
        });
        let line = tokio::time::timeout(Duration::from_secs(30), line)
            .await
            .context("the instant upstream printed no address within 30 s")???;
        let url = line.trim().strip_prefix("listening on ").context("the instant upstream's first line")?;
        Ok(InstantUpstream { url: url.to_owned(), child })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Calls served so far, by action.
    pub async fn calls(&self) -> Result<BTreeMap<String, u64>> {
        let http = reqwest::Client::builder().no_proxy().build()?;
        Ok(http.get(format!("{}/stats", self.url)).send().await?.json().await?)
    }
}

impl Drop for InstantUpstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    //! Every canned answer goes through the real SDK's parser, so a misnamed element fails
    //! here rather than as a benchmark full of errors.

    use super::*;
    use crate::direct::{iam_client, sts_client};

    async fn start() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(serve(listener, Duration::ZERO));
        url
    }

    #[tokio::test]
    async fn sts_answers_parse() {
        let sts = sts_client(&start().await);
        let me = sts.get_caller_identity().send().await.unwrap();
        assert_eq!(me.account(), Some(ACCOUNT));
        let out = sts
            .assume_role()
            .role_arn(ROLE_ARN)
            .role_session_name("s-1")
            .duration_seconds(900)
            .send()
            .await
            .unwrap();
        let creds = out.credentials().unwrap();
        assert_eq!(creds.access_key_id(), "ASIABENCHINSTANT0000");
        let left = creds.expiration().secs() - chrono::Utc::now().timestamp();
        assert!((850..=900).contains(&left), "expires in {left} s");
        assert_eq!(
            out.assumed_role_user().unwrap().arn(),
            "arn:aws:sts::123456789012:assumed-role/bench-assumed/s-1"
        );
    }

    #[tokio::test]
    async fn iam_user_issuance_answers_parse() {
        let iam = iam_client(&start().await);
        let user = iam.create_user().user_name("u-1").path("/").send().await.unwrap();
        assert_eq!(user.user().unwrap().user_name(), "u-1");
        iam.put_user_policy().user_name("u-1").policy_name("p").policy_document("{}").send().await.unwrap();
        iam.attach_user_policy().user_name("u-1").policy_arn(POLICY_ARNS[0]).send().await.unwrap();
        iam.add_user_to_group().user_name("u-1").group_name(GROUP).send().await.unwrap();
        let tag = aws_sdk_iam::types::Tag::builder().key("k").value("v").build().unwrap();
        iam.tag_user().user_name("u-1").tags(tag).send().await.unwrap();
        let a = iam.create_access_key().user_name("u-1").send().await.unwrap();
        let b = iam.create_access_key().user_name("u-1").send().await.unwrap();
        let (a, b) = (a.access_key().unwrap(), b.access_key().unwrap());
        assert_eq!(a.access_key_id().len(), 20);
        assert_ne!(a.access_key_id(), b.access_key_id());
        assert!(!a.secret_access_key().is_empty());
    }

    #[tokio::test]
    async fn teardown_answers_parse() {
        let iam = iam_client(&start().await);
        let groups = iam.list_groups_for_user().user_name("u").send().await.unwrap();
        assert_eq!(groups.groups()[0].group_name(), GROUP);
        let inline = iam.list_user_policies().user_name("u").send().await.unwrap();
        assert_eq!(inline.policy_names(), ["bench-user"]);
        let attached = iam.list_attached_user_policies().user_name("u").send().await.unwrap();
        let arns: Vec<_> = attached.attached_policies().iter().filter_map(|p| p.policy_arn()).collect();
        assert_eq!(arns, POLICY_ARNS);
        let keys = iam.list_access_keys().user_name("u").send().await.unwrap();
        assert_eq!(keys.access_key_metadata().len(), 1);
        assert!(iam.list_mfa_devices().user_name("u").send().await.unwrap().mfa_devices().is_empty());
        assert!(iam.list_ssh_public_keys().user_name("u").send().await.unwrap().ssh_public_keys().is_empty());
        assert!(
            iam.list_signing_certificates().user_name("u").send().await.unwrap().certificates().is_empty()
        );
        let gone = iam.delete_login_profile().user_name("u").send().await.unwrap_err();
        assert_eq!(aws_sdk_iam::error::ProvideErrorMetadata::code(&gone), Some("NoSuchEntity"));
        iam.delete_access_key().user_name("u").access_key_id("AKIABENCH00000000000").send().await.unwrap();
        iam.detach_user_policy().user_name("u").policy_arn(POLICY_ARNS[1]).send().await.unwrap();
        iam.delete_user_policy().user_name("u").policy_name("bench-user").send().await.unwrap();
        iam.remove_user_from_group().user_name("u").group_name(GROUP).send().await.unwrap();
        iam.delete_user().user_name("u").send().await.unwrap();
        assert!(iam.list_users().send().await.unwrap().users().is_empty());
    }

    #[tokio::test]
    async fn unknown_actions_are_refused_and_calls_are_counted() {
        let url = start().await;
        let iam = iam_client(&url);
        let err =
            iam.create_role().role_name("r").assume_role_policy_document("{}").send().await.unwrap_err();
        assert_eq!(aws_sdk_iam::error::ProvideErrorMetadata::code(&err), Some("InvalidAction"));
        iam.delete_user().user_name("u").send().await.unwrap();
        iam.delete_user().user_name("u").send().await.unwrap();
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let counts: BTreeMap<String, u64> =
            http.get(format!("{url}/stats")).send().await.unwrap().json().await.unwrap();
        assert_eq!(counts.get("DeleteUser"), Some(&2));
        assert_eq!(counts.get("CreateRole"), Some(&1));
    }
}
