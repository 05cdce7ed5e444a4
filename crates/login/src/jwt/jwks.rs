//! JWKS documents (RFC 7517): `{"keys":[...]}` with RSA, EC and OKP (Ed25519) keys.
//!
//! Issuers publish keys we cannot or must not use for signatures next to those we need:
//! GitLab's JWKS carries an HS256 (`oct`) entry (vault-plugin-auth-jwt#294), others carry
//! encryption keys or curves ring does not verify. Those entries are skipped with a debug line,
//! never fatal; only a document with no usable key at all is an error.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use super::KeyError;
use super::keys::{KeyFamily, PublicKey};

/// The signature keys of a JWKS document, each with its `kid`.
pub fn parse_jwks(json: &[u8]) -> Result<Vec<PublicKey>, KeyError> {
    let doc: Value = serde_json::from_slice(json).map_err(|e| KeyError::InvalidJwks(e.to_string()))?;
    let entries = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| KeyError::InvalidJwks("no \"keys\" array".into()))?;
    let mut keys = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let kid = entry.get("kid").and_then(Value::as_str);
        match parse_jwk(entry) {
            Ok(key) => keys.push(key),
            Err(reason) => tracing::debug!(jwk.index = index, jwk.kid = kid, reason, "JWKS entry skipped"),
        }
    }
    if keys.is_empty() {
        return Err(KeyError::NoUsableKey);
    }
    Ok(keys)
}

/// One JWK, or why it is not a usable signature key.
fn parse_jwk(entry: &Value) -> Result<PublicKey, String> {
    let jwk = entry.as_object().ok_or("not a JSON object")?;
    if let Some(usage) = jwk.get("use")
        && usage.as_str() != Some("sig")
    {
        return Err(format!("\"use\" is {usage}, not \"sig\""));
    }
    if let Some(ops) = jwk.get("key_ops") {
        let verifies = ops.as_array().is_some_and(|ops| ops.iter().any(|op| op.as_str() == Some("verify")));
        if !verifies {
            return Err("\"key_ops\" does not include \"verify\"".into());
        }
    }
    let kid = match jwk.get("kid") {
        None | Some(Value::Null) => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err("\"kid\" is not a string".into()),
    };
    let kty = jwk.get("kty").and_then(Value::as_str).ok_or("no \"kty\"")?;
    let crv = || jwk.get("crv").and_then(Value::as_str).unwrap_or("");
    let key = match kty {
        "RSA" => PublicKey::rsa(&member(jwk, "n")?, &member(jwk, "e")?),
        "EC" => {
            let (family, len) = match crv() {
                "P-256" => (KeyFamily::EcP256, 32),
                "P-384" => (KeyFamily::EcP384, 48),
                other => return Err(format!("unsupported EC curve {other:?}")),
            };
            let (x, y) = (member(jwk, "x")?, member(jwk, "y")?);
            if x.len() != len || y.len() != len {
                return Err(format!("EC coordinates must be {len} bytes"));
            }
            let mut point = Vec::with_capacity(1 + 2 * len);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            PublicKey::ec(family, point)
        }
        "OKP" => match crv() {
            "Ed25519" => PublicKey::ed25519(member(jwk, "x")?),
            other => return Err(format!("unsupported OKP curve {other:?}")),
        },
        other => return Err(format!("key type {other:?} cannot verify signatures")),
    };
    key.map(|key| key.with_kid(kid)).map_err(|e| e.to_string())
}

/// A base64url member (padding tolerated: some issuers pad).
fn member(jwk: &Map<String, Value>, name: &str) -> Result<Vec<u8>, String> {
    let text = jwk.get(name).and_then(Value::as_str).ok_or_else(|| format!("no {name:?}"))?;
    URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).map_err(|e| format!("{name:?} is not base64url: {e}"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::jwt::test_support::TestKey;

    #[test]
    fn every_family_loads_with_its_kid() {
        let keys = [TestKey::rsa(), TestKey::p256(), TestKey::p384(), TestKey::ed25519()];
        let doc = json!({"keys": keys.iter().enumerate().map(|(i, k)| k.jwk(&format!("k{i}"))).collect::<Vec<_>>()});
        let parsed = parse_jwks(doc.to_string().as_bytes()).expect("parses");
        assert_eq!(parsed.len(), 4);
        for (i, (parsed, key)) in parsed.iter().zip(&keys).enumerate() {
            assert_eq!(parsed.kid(), Some(format!("k{i}").as_str()));
            assert_eq!(parsed.family(), key.family());
            assert_eq!(parsed.clone().with_kid(None), PublicKey::from_pem(&key.spki_pem()).expect("pem")[0]);
        }
    }

    #[test]
    fn unusable_entries_are_skipped_not_fatal() {
        let rsa = TestKey::rsa();
        let doc = json!({"keys": [
            {"kty": "oct", "kid": "hmac", "alg": "HS256", "k": "c2VjcmV0"},
            {"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"},
            {"kty": "OKP", "crv": "X25519", "x": "AA"},
            {"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"},
            {"kty": "RSA", "key_ops": ["encrypt"], "n": "AQAB", "e": "AQAB"},
            {"kty": "RSA", "n": "AQAB"},
            "not an object",
            rsa.jwk("good"),
        ]});
        let parsed = parse_jwks(doc.to_string().as_bytes()).expect("parses");
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].kid(), Some("good"));
    }

    #[test]
    fn no_usable_key_or_not_a_jwks_is_an_error() {
        let only_hmac = json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]});
        assert_eq!(parse_jwks(only_hmac.to_string().as_bytes()), Err(KeyError::NoUsableKey));
        assert_eq!(parse_jwks(br#"{"keys": []}"#), Err(KeyError::NoUsableKey));
        assert!(matches!(parse_jwks(b"<html>"), Err(KeyError::InvalidJwks(_))));
        assert!(matches!(parse_jwks(br#"{"keys": {}}"#), Err(KeyError::InvalidJwks(_))));
    }
}
