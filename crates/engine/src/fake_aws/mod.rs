//! An in-process IAM and STS for the engine's tests, behind the SDK's HTTP client (the seam of
//! `client_factory`): the SDK builds and signs real requests, and this answers them with the
//! XML AWS would send.
//!
//! It keeps users and what hangs on them (keys, policies, groups, tags, login profile, MFA
//! devices, SSH keys, signing certificates, service-specific credentials) and refuses what IAM
//! refuses: a duplicate user, a third key, deleting a user something still holds, a request
//! signed with an unknown key or with the wrong secret. Any operation can be made to fail at a chosen call with a
//! [`Failure`], and every call is recorded, so a test can assert what was made and removed.

mod iam;
mod sigv4;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorFuture, SharedHttpClient, SharedHttpConnector, http_client_fn,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use chrono::{DateTime, Utc};

pub use iam::User;

use crate::ClientFactory;

/// The account every fake principal lives in.
pub const ACCOUNT: &str = "123456789012";

/// How a chosen call fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// `Throttling` (400): not carried out; a retry may pass.
    Throttle,
    /// `ServiceFailure` (500): not carried out, but the caller cannot know that.
    ServerError,
    /// Carried out, then the connection drops before the answer arrives.
    AnswerLost,
    /// `AccessDenied` (403).
    AccessDenied,
    /// `NoSuchEntity` (404), whatever IAM holds.
    NoSuchEntity,
    /// Any other refusal: status and error code.
    Refused(u16, &'static str),
}

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Call {
    /// The operation (`Action`), e.g. `CreateUser`.
    pub op: String,
    /// The request's parameters, `Action` and `Version` included.
    pub params: BTreeMap<String, String>,
    /// The access key that signed it.
    pub key: String,
}

impl Call {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

#[derive(Debug)]
struct Fault {
    op: &'static str,
    /// The first and last call of `op` (counted from 1) that fail.
    from: u32,
    to: u32,
    failure: Failure,
}

/// An IAM refusal: status, code, message.
type Refusal = (u16, &'static str, String);

#[derive(Debug, Default)]
struct State {
    users: BTreeMap<String, User>,
    /// Access key id -> (user, secret).
    keys: BTreeMap<String, (String, String)>,
    faults: Vec<Fault>,
    counts: HashMap<String, u32>,
    calls: Vec<Call>,
    /// Items per page of a list call; 0 means 100.
    page_size: usize,
    serial: u64,
}

/// The fake; clones share one IAM.
#[derive(Debug, Clone, Default)]
pub struct FakeAws(Arc<Mutex<State>>);

#[derive(Debug)]
struct Connector(FakeAws);

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        HttpConnectorFuture::ready(self.0.answer(&request))
    }
}

impl FakeAws {
    fn state(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A client factory whose clients talk to this fake.
    pub fn factory(&self) -> ClientFactory {
        let me = self.clone();
        let http: SharedHttpClient =
            http_client_fn(move |_, _| SharedHttpConnector::new(Connector(me.clone())));
        ClientFactory::over(http)
    }

    /// List calls answer `n` items per page (pagination gets exercised).
    pub fn set_page_size(&self, n: usize) {
        self.state().page_size = n;
    }

    /// The next call of `op` fails.
    pub fn fail_next(&self, op: &'static str, failure: Failure) {
        self.fail_times(op, 1, failure);
    }

    /// The `n`th call of `op` from now (1: the next) fails.
    pub fn fail_nth(&self, op: &'static str, n: u32, failure: Failure) {
        let mut s = self.state();
        let at = s.counts.get(op).copied().unwrap_or(0) + n;
        s.faults.push(Fault { op, from: at, to: at, failure });
    }

    /// The next `times` calls of `op` fail.
    pub fn fail_times(&self, op: &'static str, times: u32, failure: Failure) {
        let mut s = self.state();
        let from = s.counts.get(op).copied().unwrap_or(0) + 1;
        s.faults.push(Fault { op, from, to: from + times - 1, failure });
    }

    /// Every call of `op` from now on fails.
    pub fn fail_always(&self, op: &'static str, failure: Failure) {
        self.fail_times(op, u32::MAX / 2, failure);
    }

    /// Calls of `op` answer normally again.
    pub fn heal(&self, op: &str) {
        self.state().faults.retain(|f| f.op != op);
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state().calls.clone()
    }

    /// The calls of `op`, in order.
    pub fn calls_of(&self, op: &str) -> Vec<Call> {
        self.state().calls.iter().filter(|c| c.op == op).cloned().collect()
    }

    pub fn count(&self, op: &str) -> usize {
        self.state().calls.iter().filter(|c| c.op == op).count()
    }

    /// Forgets the calls made so far (not the faults, nor IAM's content).
    pub fn clear_calls(&self) {
        self.state().calls.clear();
    }

    pub fn user_names(&self) -> Vec<String> {
        self.state().users.keys().cloned().collect()
    }

    pub fn user(&self, name: &str) -> Option<User> {
        self.state().users.get(name).cloned()
    }

    /// Puts a user into IAM as someone else made it (created at `created`).
    pub fn put_user(&self, name: &str, mut user: User, created: DateTime<Utc>) {
        let mut s = self.state();
        user.created = created;
        for key in &user.keys {
            s.keys.insert(key.clone(), (name.to_string(), format!("secret-of-{key}")));
        }
        s.users.insert(name.to_string(), user);
    }

    /// Gives `user` the access key `id` with `secret`.
    pub fn put_key(&self, user: &str, id: &str, secret: &str) {
        let mut s = self.state();
        s.keys.insert(id.to_string(), (user.to_string(), secret.to_string()));
        if let Some(u) = s.users.get_mut(user) {
            u.keys.push(id.to_string());
        }
    }

    /// The secret of an access key that exists.
    pub fn secret_of(&self, key: &str) -> Option<String> {
        self.state().keys.get(key).map(|(_, secret)| secret.clone())
    }

    fn answer(&self, request: &HttpRequest) -> Result<HttpResponse, ConnectorError> {
        let body = request.body().bytes().unwrap_or_default();
        let params = parse_form(body);
        let op = params.get("Action").cloned().unwrap_or_default();
        let key = signing_key(request.headers().get("authorization").unwrap_or_default());
        let mut s = self.state();
        let n = {
            let c = s.counts.entry(op.clone()).or_default();
            *c += 1;
            *c
        };
        let failure = s.faults.iter().find(|f| f.op == op && (f.from..=f.to).contains(&n)).map(|f| f.failure);
        s.calls.push(Call { op: op.clone(), params: params.clone(), key: key.clone() });
        let refused = |(status, code, message): Refusal| Ok(error_response(status, code, &message));
        match failure {
            Some(Failure::Throttle) => return refused((400, "Throttling", "Rate exceeded".into())),
            Some(Failure::ServerError) => {
                return refused((500, "ServiceFailure", "Request processing has failed".into()));
            }
            Some(Failure::AccessDenied) => {
                let msg = format!("User is not authorized to perform: iam:{op}");
                return refused((403, "AccessDenied", msg));
            }
            Some(Failure::NoSuchEntity) => return refused((404, "NoSuchEntity", "cannot be found".into())),
            Some(Failure::Refused(status, code)) => {
                return refused((status, code, format!("{code} (injected)")));
            }
            Some(Failure::AnswerLost) | None => {}
        }
        let Some((caller, secret)) = s.keys.get(&key).cloned() else {
            return refused((
                403,
                "InvalidClientTokenId",
                "The security token included in the request is invalid.".into(),
            ));
        };
        if !sigv4::signature_matches(request, &secret) {
            return refused((
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided. \
                 Check your AWS Secret Access Key and signing method."
                    .into(),
            ));
        }
        let answer = s.run(&op, &params, &caller);
        if failure == Some(Failure::AnswerLost) {
            return Err(ConnectorError::io("connection reset by peer (injected after the call)".into()));
        }
        match answer {
            Ok(inner) => Ok(ok_response(&op, &inner)),
            Err(refusal) => refused(refusal),
        }
    }
}

/// The access key id in a SigV4 `Authorization` header.
fn signing_key(authorization: &str) -> String {
    authorization
        .split("Credential=")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_default()
        .to_string()
}

fn parse_form(body: &[u8]) -> BTreeMap<String, String> {
    let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

pub(super) fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn response(status: u16, body: String) -> HttpResponse {
    let mut r = HttpResponse::new(
        StatusCode::try_from(status).unwrap_or_else(|_| unreachable!("fixed statuses")),
        SdkBody::from(body),
    );
    r.headers_mut().insert("content-type", "text/xml");
    r
}

fn ok_response(op: &str, inner: &str) -> HttpResponse {
    response(
        200,
        format!(
            "<{op}Response><{op}Result>{inner}</{op}Result>\
             <ResponseMetadata><RequestId>fake</RequestId></ResponseMetadata></{op}Response>"
        ),
    )
}

fn error_response(status: u16, code: &str, message: &str) -> HttpResponse {
    let kind = if status >= 500 { "Receiver" } else { "Sender" };
    response(
        status,
        format!(
            "<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code><Message>{}</Message></Error>\
             <RequestId>fake</RequestId></ErrorResponse>",
            escape(message)
        ),
    )
}
