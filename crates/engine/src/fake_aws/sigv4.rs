//! Checking a request's SigV4 signature against the secret the fake holds for its key, as AWS
//! does: a request signed with the right key id but the wrong secret is refused with
//! `SignatureDoesNotMatch`. Only what the SDK's IAM and STS requests use is covered (a POST
//! with a form body, the headers named in `SignedHeaders`).

use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use ring::{digest, hmac};

/// Whether `request` carries the signature `secret` gives it.
pub(super) fn signature_matches(request: &HttpRequest, secret: &str) -> bool {
    let Some(authorization) = request.headers().get("authorization") else { return false };
    let field = |name: &str| {
        authorization.split([' ', ',']).find_map(|part| part.strip_prefix(name)).unwrap_or_default()
    };
    let (credential, signed_headers, signature) =
        (field("Credential="), field("SignedHeaders="), field("Signature="));
    // Credential=<key>/<date>/<region>/<service>/aws4_request
    let Some((_key, scope)) = credential.split_once('/') else { return false };
    let scope_parts: Vec<&str> = scope.split('/').collect();
    let [date, region, service, _] = scope_parts[..] else { return false };
    let Some(amz_date) = request.headers().get("x-amz-date") else { return false };

    let (authority, path, query) = split_uri(request.uri());
    let body = request.body().bytes().unwrap_or_default();
    let payload_hash = match request.headers().get("x-amz-content-sha256") {
        Some(hash) => hash.to_string(),
        None => hex(digest::digest(&digest::SHA256, body).as_ref()),
    };
    let mut canonical_headers = String::new();
    for name in signed_headers.split(';') {
        let value = match request.headers().get(name) {
            Some(v) => v.split_whitespace().collect::<Vec<_>>().join(" "),
            // The SDK signs the host it sends to before the HTTP client sets the header.
            None if name == "host" => authority.to_string(),
            None => return false,
        };
        canonical_headers.push_str(&format!("{name}:{value}\n"));
    }
    let mut query_pairs: Vec<&str> = query.split('&').filter(|p| !p.is_empty()).collect();
    query_pairs.sort_unstable();
    let canonical_request = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{payload_hash}",
        request.method(),
        if path.is_empty() { "/" } else { path },
        query_pairs.join("&"),
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(digest::digest(&digest::SHA256, canonical_request.as_bytes()).as_ref())
    );
    let mut key = format!("AWS4{secret}").into_bytes();
    for part in [date, region, service, "aws4_request"] {
        key = sign(&key, part.as_bytes());
    }
    hex(&sign(&key, string_to_sign.as_bytes())) == signature
}

fn sign(key: &[u8], data: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data).as_ref().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `scheme://authority/path?query` into its authority, path and query.
fn split_uri(uri: &str) -> (&str, &str, &str) {
    let rest = uri.split_once("://").map_or(uri, |(_, rest)| rest);
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..], query),
        None => (rest, "", query),
    }
}
