//! Compact JWS parsing and signature verification against a list of keys.
//!
//! Order matters for safety: the `alg` header is checked against the allowed list before any
//! key is tried, so a token with `alg: none` or `HS256` (an HMAC keyed with the bytes of our
//! public key, the classic confusion attack) is refused without a verification attempt. Vault
//! verifies first and checks `alg` second; for a token that fails both checks keymint reports
//! the algorithm, which is the only visible difference.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use super::{Algorithm, JwtError, PublicKey};

/// A compact JWS as received: header and claims decoded, nothing verified yet.
///
/// The fields are private so that the claims can only be the ones the signature covers.
/// `Debug` shows the algorithm, key id and claim names only: the token is a bearer credential
/// until it expires, and its values must not reach a log line.
#[derive(Clone)]
pub struct Jws {
    header: Map<String, Value>,
    claims: Map<String, Value>,
    signing_input: String,
    signature: Vec<u8>,
    alg: String,
    kid: Option<String>,
}

impl Jws {
    /// Splits and decodes `header.payload.signature` (base64url without padding, JSON objects).
    pub fn parse(token: &str) -> Result<Jws, JwtError> {
        let malformed = |why: &str| JwtError::Malformed(why.to_string());
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed("compact JWS format must have three parts"));
        };
        let header: Map<String, Value> =
            decode_json(header_b64).map_err(|e| malformed(&format!("header {e}")))?;
        let claims: Map<String, Value> =
            decode_json(payload_b64).map_err(|e| malformed(&format!("claims {e}")))?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature_b64)
            .map_err(|_| malformed("signature is not base64url without padding"))?;
        let alg = match header.get("alg") {
            Some(Value::String(alg)) => alg.clone(),
            _ => return Err(malformed("missing or non-string alg header parameter")),
        };
        let kid = match header.get("kid") {
            None | Some(Value::Null) => None,
            Some(Value::String(kid)) => Some(kid.clone()),
            Some(_) => return Err(malformed("non-string kid header parameter")),
        };
        // RFC 7515 4.1.11: extensions listed in "crit" must be understood; we understand none
        // (this also refuses RFC 7797 unencoded payloads).
        if header.contains_key("crit") {
            return Err(malformed("unsupported crit header parameter"));
        }
        let signing_input = format!("{header_b64}.{payload_b64}");
        Ok(Jws { header, claims, signing_input, signature, alg, kid })
    }

    /// The JOSE header.
    pub fn header(&self) -> &Map<String, Value> {
        &self.header
    }

    /// The claims: trustworthy only after [`verify_signature`] (or a key set's `verify`) succeeded.
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// The claims, by value.
    pub fn into_claims(self) -> Map<String, Value> {
        self.claims
    }

    /// `base64url(header) "." base64url(payload)`: the bytes the signature covers.
    pub fn signing_input(&self) -> &str {
        &self.signing_input
    }

    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// The `alg` header as sent (possibly `none` or `HS256`, which never verify).
    pub fn alg(&self) -> &str {
        &self.alg
    }

    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }
}

impl std::fmt::Debug for Jws {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jws")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .field("claims", &self.claims.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn decode_json(part: &str) -> Result<Map<String, Value>, &'static str> {
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| "is not base64url without padding")?;
    serde_json::from_slice(&bytes).map_err(|_| "is not a JSON object")
}

/// The token's algorithm if it is one we verify and it is in `allowed`. An empty `allowed`
/// refuses everything (use [`allowed_or_default`](super::allowed_or_default) for Vault's default).
pub fn check_algorithm(jws: &Jws, allowed: &[Algorithm]) -> Result<Algorithm, JwtError> {
    match jws.alg.parse::<Algorithm>() {
        Ok(alg) if allowed.contains(&alg) => Ok(alg),
        _ => Err(JwtError::UnexpectedAlgorithm),
    }
}

/// Verifies the signature with the first key that accepts it.
///
/// When the token names a `kid`, keys with that `kid` are tried first, then keys without one
/// (PEM keys); keys naming another `kid` are not tried. Without a `kid` every key is tried.
/// Only keys whose family fits the algorithm are tried.
pub fn verify_signature(jws: &Jws, keys: &[PublicKey], allowed: &[Algorithm]) -> Result<(), JwtError> {
    let alg = check_algorithm(jws, allowed)?;
    if candidates(jws, keys).any(|key| key.verify(alg, jws.signing_input.as_bytes(), &jws.signature)) {
        Ok(())
    } else {
        Err(JwtError::NoKeyVerified)
    }
}

/// The keys to try for `jws`, in order.
pub(crate) fn candidates<'k>(
    jws: &Jws,
    keys: &'k [PublicKey],
) -> Box<dyn Iterator<Item = &'k PublicKey> + 'k> {
    match jws.kid.clone() {
        None => Box::new(keys.iter()),
        Some(kid) => {
            let matching = keys.iter().filter(move |k| k.kid() == Some(kid.as_str()));
            let unnamed = keys.iter().filter(|k| k.kid().is_none());
            Box::new(matching.chain(unnamed))
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::jwt::DEFAULT_ALGS;
    use crate::jwt::test_support::{TestKey, b64, hs256_token, unsigned_token};

    fn claims() -> Value {
        json!({"sub": "repo:acme/app:ref:refs/heads/main", "exp": 2_000_000_000})
    }

    #[test]
    fn every_algorithm_verifies_with_its_key() {
        let rsa = TestKey::rsa();
        let cases = [
            (&rsa, Algorithm::RS256),
            (&rsa, Algorithm::RS384),
            (&rsa, Algorithm::RS512),
            (&rsa, Algorithm::PS256),
            (&rsa, Algorithm::PS384),
            (&rsa, Algorithm::PS512),
            (&TestKey::p256(), Algorithm::ES256),
            (&TestKey::p384(), Algorithm::ES384),
            (&TestKey::ed25519(), Algorithm::EdDSA),
        ];
        for (key, alg) in cases {
            let jws = Jws::parse(&key.sign(alg, None, &claims())).expect("parses");
            assert_eq!(jws.alg(), alg.as_str());
            assert_eq!(jws.claims()["sub"], "repo:acme/app:ref:refs/heads/main");
            verify_signature(&jws, &key.public(None), DEFAULT_ALGS).unwrap_or_else(|e| panic!("{alg}: {e}"));
        }
    }

    #[test]
    fn wrong_key_and_wrong_family_are_refused() {
        let signer = TestKey::p256();
        let jws = Jws::parse(&signer.sign(Algorithm::ES256, None, &claims())).expect("parses");
        let other_p256 = TestKey::p256().public(None);
        assert_eq!(verify_signature(&jws, &other_p256, DEFAULT_ALGS), Err(JwtError::NoKeyVerified));
        let rsa = TestKey::rsa().public(None);
        assert_eq!(verify_signature(&jws, &rsa, DEFAULT_ALGS), Err(JwtError::NoKeyVerified));
        assert_eq!(verify_signature(&jws, &[], DEFAULT_ALGS), Err(JwtError::NoKeyVerified));
        assert_eq!(
            JwtError::NoKeyVerified.to_string(),
            "error verifying token signature: no known key successfully validated the token signature"
        );
    }

    #[test]
    fn tampered_payload_is_refused() {
        let key = TestKey::rsa();
        let token = key.sign(Algorithm::RS256, None, &claims());
        let parts: Vec<&str> = token.split('.').collect();
        let forged =
            b64(json!({"sub": "repo:evil/app:ref:refs/heads/main", "exp": 2_000_000_000}).to_string());
        let jws = Jws::parse(&format!("{}.{forged}.{}", parts[0], parts[2])).expect("parses");
        assert_eq!(verify_signature(&jws, &key.public(None), DEFAULT_ALGS), Err(JwtError::NoKeyVerified));
    }

    #[test]
    fn alg_none_and_hmac_with_the_public_key_are_refused_as_algorithms() {
        let key = TestKey::rsa();
        let keys = key.public(None);
        let none = Jws::parse(&unsigned_token(&claims())).expect("parses");
        assert_eq!(verify_signature(&none, &keys, DEFAULT_ALGS), Err(JwtError::UnexpectedAlgorithm));
        // The confusion attack: HMAC keyed with the PEM text a verifier holds.
        let hs = Jws::parse(&hs256_token(key.spki_pem().as_bytes(), &claims())).expect("parses");
        assert_eq!(hs.alg(), "HS256");
        assert_eq!(verify_signature(&hs, &keys, DEFAULT_ALGS), Err(JwtError::UnexpectedAlgorithm));
        assert_eq!(
            JwtError::UnexpectedAlgorithm.vault_text(),
            "error validating token: invalid algorithm (alg) header parameter: token signed with unexpected algorithm"
        );
    }

    #[test]
    fn algorithm_outside_the_allowed_list_is_refused_even_with_a_good_signature() {
        let key = TestKey::rsa();
        let jws = Jws::parse(&key.sign(Algorithm::RS256, None, &claims())).expect("parses");
        let keys = key.public(None);
        assert_eq!(verify_signature(&jws, &keys, &[Algorithm::ES256]), Err(JwtError::UnexpectedAlgorithm));
        assert_eq!(verify_signature(&jws, &keys, &[]), Err(JwtError::UnexpectedAlgorithm));
        assert_eq!(verify_signature(&jws, &keys, &[Algorithm::RS256]), Ok(()));
    }

    #[test]
    fn kid_routes_to_matching_and_unnamed_keys_only() {
        let signer = TestKey::p256();
        let jws = Jws::parse(&signer.sign(Algorithm::ES256, Some("a"), &claims())).expect("parses");
        assert_eq!(jws.kid(), Some("a"));
        let decoy = TestKey::p256();
        // The signing key under another kid is not tried.
        let misnamed = [decoy.public(Some("a")), signer.public(Some("b"))].concat();
        assert_eq!(verify_signature(&jws, &misnamed, DEFAULT_ALGS), Err(JwtError::NoKeyVerified));
        let named = [decoy.public(Some("b")), signer.public(Some("a"))].concat();
        assert_eq!(verify_signature(&jws, &named, DEFAULT_ALGS), Ok(()));
        let unnamed = [decoy.public(Some("a")), signer.public(None)].concat();
        assert_eq!(verify_signature(&jws, &unnamed, DEFAULT_ALGS), Ok(()));
        let order: Vec<_> = candidates(&jws, &[signer.public(None), decoy.public(Some("a"))].concat())
            .map(|k| k.kid().map(str::to_string))
            .collect();
        assert_eq!(order, [Some("a".to_string()), None]);
        // Without a kid in the token every key is tried.
        let no_kid = Jws::parse(&signer.sign(Algorithm::ES256, None, &claims())).expect("parses");
        assert_eq!(verify_signature(&no_kid, &named, DEFAULT_ALGS), Ok(()));
    }

    #[test]
    fn debug_does_not_print_the_token() {
        let key = TestKey::p256();
        let token = key.sign(Algorithm::ES256, Some("k1"), &json!({"sub": "secret-subject"}));
        let shown = format!("{:?}", Jws::parse(&token).expect("parses"));
        assert!(shown.contains("ES256") && shown.contains("k1") && shown.contains("\"sub\""), "{shown}");
        assert!(!shown.contains("secret-subject"), "{shown}");
        let signature = token.rsplit('.').next().expect("three parts");
        assert!(!shown.contains(signature), "{shown}");
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let header = b64(json!({"alg": "RS256"}).to_string());
        let body = b64(claims().to_string());
        let cases = [
            String::new(),
            "a.b".to_string(),
            format!("{header}.{body}.sig.extra"),
            format!("{header}.{body}.c2ln=="),
            format!("{header}=.{body}.c2ln"),
            format!("{}.{body}.c2ln", b64("[1]")),
            format!("{header}.{}.c2ln", b64("\"string\"")),
            format!("{}.{body}.c2ln", b64(json!({"alg": 5}).to_string())),
            format!("{}.{body}.c2ln", b64(json!({"alg": "RS256", "kid": 1}).to_string())),
            format!(
                "{}.{body}.c2ln",
                b64(json!({"alg": "RS256", "crit": ["b64"], "b64": false}).to_string())
            ),
        ];
        for token in cases {
            let err = Jws::parse(&token).expect_err(&token);
            assert!(matches!(err, JwtError::Malformed(_)), "{token}: {err:?}");
            assert!(
                err.vault_text().starts_with("error validating token: error verifying token signature: ")
            );
        }
    }
}
