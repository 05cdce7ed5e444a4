//! A local OIDC issuer for the JWT auth method's tests: discovery and a JWKS on 127.0.0.1
//! (plain HTTP or HTTPS under a private CA), RS256 and ES256 keys made at run time, tokens
//! signed with them, and the forgeries a verifier must refuse: `alg: none`, HS256 keyed with
//! the public key or with the JWKS's symmetric entry, and a good signature by a key it does not
//! publish. Keys rotate on demand, the endpoints can be taken down, and fetches are counted, so
//! tests can see when keymint refetches.
//!
//! Claim builders for GitHub Actions, GitLab CI and Kubernetes tokens are in [`claims`].

pub mod claims;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use ring::rand::SystemRandom;
use ring::signature::{self as ring_sig, EcdsaKeyPair, KeyPair as _};
use rsa::pkcs1v15::{Signature as RsaSignature, SigningKey, VerifyingKey};
use rsa::pkcs8::{EncodePublicKey as _, LineEnding};
use rsa::sha2::Sha256;
use rsa::signature::{SignatureEncoding as _, Signer as _, Verifier as _};
use rsa::traits::PublicKeyParts as _;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::{Value, json};

use crate::serve::{Body, SelfSignedTls, Serving, json as json_answer, serve};

/// The algorithms the issuer signs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(clippy::upper_case_acronyms)]
pub enum Alg {
    RS256,
    ES256,
}

impl Alg {
    pub fn name(self) -> &'static str {
        match self {
            Alg::RS256 => "RS256",
            Alg::ES256 => "ES256",
        }
    }
}

/// DER of a P-256 SubjectPublicKeyInfo up to the point: SEQUENCE { SEQUENCE { id-ecPublicKey,
/// prime256v1 }, BIT STRING (no unused bits) ... }. The 65-byte uncompressed point follows.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86,
    0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

struct RsaKey {
    kid: String,
    private: RsaPrivateKey,
    public_pem: String,
}

struct EcKey {
    kid: String,
    pair: EcdsaKeyPair,
    public_pem: String,
}

struct Keys {
    rsa: RsaKey,
    ec: EcKey,
}

/// What the issuer's server and its handles share (the TokenReview server verifies with it).
pub(crate) struct Shared {
    url: OnceLock<String>,
    keys: Mutex<Keys>,
    /// Signs [`Issuer::sign_with_foreign_key`]'s tokens; never published.
    foreign: RsaPrivateKey,
    /// The JWKS's `oct` entry, as GitLab's JWKS has one.
    oct_kid: String,
    oct_secret: Vec<u8>,
    /// What discovery says `issuer` is, when a test wants it to differ from the URL.
    discovery_issuer: Mutex<Option<String>>,
    down: AtomicBool,
    jwks_fetches: AtomicUsize,
    discovery_fetches: AtomicUsize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A running issuer; it stops serving when dropped.
pub struct Issuer {
    pub(crate) shared: Arc<Shared>,
    ca_pem: Option<String>,
    _serving: Serving,
}

impl Issuer {
    /// An issuer on plain HTTP: `http://127.0.0.1:PORT`.
    pub async fn start() -> Issuer {
        Issuer::start_with(None).await
    }

    /// An issuer on HTTPS under a private CA ([`Issuer::ca_pem`]): `https://127.0.0.1:PORT`.
    pub async fn start_tls() -> Issuer {
        Issuer::start_with(Some(SelfSignedTls::new())).await
    }

    async fn start_with(tls: Option<SelfSignedTls>) -> Issuer {
        let (keys, foreign) = tokio::join!(new_keys(), new_rsa_key());
        let shared = Arc::new(Shared {
            url: OnceLock::new(),
            keys: Mutex::new(keys),
            foreign,
            oct_kid: format!("oct-{}", random_hex(8)),
            oct_secret: rand::random::<[u8; 32]>().to_vec(),
            discovery_issuer: Mutex::new(None),
            down: AtomicBool::new(false),
            jwks_fetches: AtomicUsize::new(0),
            discovery_fetches: AtomicUsize::new(0),
        });
        let scheme = if tls.is_some() { "https" } else { "http" };
        let (acceptor, ca_pem) = match tls {
            Some(tls) => (Some(tls.acceptor), Some(tls.ca_pem)),
            None => (None, None),
        };
        let handler_state = shared.clone();
        let serving = serve(acceptor, move |req| handle(handler_state.clone(), req)).await;
        // Set before anyone knows the port, so no request can find it unset.
        let _ = shared.url.set(format!("{scheme}://127.0.0.1:{}", serving.port));
        Issuer { shared, ca_pem, _serving: serving }
    }

    /// The issuer URL, no trailing slash: discovery's `issuer`, what tokens carry as `iss`,
    /// and what keymint gets as `oidc_discovery_url`.
    pub fn url(&self) -> String {
        self.shared.url()
    }

    /// `<url>/jwks`, discovery's `jwks_uri`.
    pub fn jwks_url(&self) -> String {
        format!("{}/jwks", self.url())
    }

    /// The CA certificate of an HTTPS issuer ([`Issuer::start_tls`]).
    pub fn ca_pem(&self) -> Option<String> {
        self.ca_pem.clone()
    }

    /// SPKI PEMs (`-----BEGIN PUBLIC KEY-----`) of the current keys, RSA first, for
    /// `jwt_validation_pubkeys`.
    pub fn public_pems(&self) -> Vec<String> {
        let keys = lock(&self.shared.keys);
        vec![keys.rsa.public_pem.clone(), keys.ec.public_pem.clone()]
    }

    /// The kid of the current key for `alg`.
    pub fn kid(&self, alg: Alg) -> String {
        let keys = lock(&self.shared.keys);
        match alg {
            Alg::RS256 => keys.rsa.kid.clone(),
            Alg::ES256 => keys.ec.kid.clone(),
        }
    }

    /// A compact JWS of `claims` with header `{"alg","kid","typ":"JWT"}`, signed by the current
    /// key for `alg`.
    pub fn sign(&self, claims: &Value, alg: Alg) -> String {
        let header = json!({"alg": alg.name(), "kid": self.kid(alg), "typ": "JWT"});
        self.sign_with_header(&header, claims, alg)
    }

    /// Signs with the current key for `alg` under exactly the `header` given (odd `alg`, no
    /// `kid`, extra fields...).
    pub fn sign_with_header(&self, header: &Value, claims: &Value, alg: Alg) -> String {
        let input = signing_input(header, claims);
        let keys = lock(&self.shared.keys);
        let signature = match alg {
            Alg::RS256 => rsa_sign(&keys.rsa.private, &input),
            Alg::ES256 => {
                let sig = keys.ec.pair.sign(&SystemRandom::new(), input.as_bytes());
                sig.expect("ECDSA signing with a valid key and system randomness succeeds").as_ref().to_vec()
            }
        };
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    /// A token with `alg: "none"` (and the RSA key's kid) and an empty signature.
    pub fn unsigned(&self, claims: &Value) -> String {
        let header = json!({"alg": "none", "kid": self.kid(Alg::RS256), "typ": "JWT"});
        format!("{}.", signing_input(&header, claims))
    }

    /// HS256 keyed with the current RSA public key's PEM: the algorithm-confusion forgery a
    /// verifier that lets the token pick the algorithm accepts.
    pub fn hs256_with_public_key(&self, claims: &Value) -> String {
        let (kid, pem) = {
            let keys = lock(&self.shared.keys);
            (keys.rsa.kid.clone(), keys.rsa.public_pem.clone())
        };
        hs256(&json!({"alg": "HS256", "kid": kid, "typ": "JWT"}), claims, pem.as_bytes())
    }

    /// HS256 keyed with the secret of the JWKS's own `oct` entry, under its kid: accepted only
    /// by a verifier that uses symmetric keys from a JWKS.
    pub fn hs256_with_published_secret(&self, claims: &Value) -> String {
        let header = json!({"alg": "HS256", "kid": self.shared.oct_kid, "typ": "JWT"});
        hs256(&header, claims, &self.shared.oct_secret)
    }

    /// A valid RS256 signature under the current RSA kid, by a key the issuer does not publish.
    pub fn sign_with_foreign_key(&self, claims: &Value) -> String {
        let header = json!({"alg": "RS256", "kid": self.kid(Alg::RS256), "typ": "JWT"});
        let input = signing_input(&header, claims);
        let signature = rsa_sign(&self.shared.foreign, &input);
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    /// Verifies `token` against the current keys (RS256/ES256 only, by kid) and returns its
    /// claims. Times are not checked.
    pub fn verify(&self, token: &str) -> Result<Value, String> {
        self.shared.verify(token)
    }

    /// Replaces every key with a new one under a new kid; the old ones are no longer published
    /// nor accepted by [`Issuer::verify`].
    pub async fn rotate(&self) {
        let keys = new_keys().await;
        *lock(&self.shared.keys) = keys;
    }

    /// While down, discovery and the JWKS answer 503 (and still count as fetched).
    pub fn set_down(&self, down: bool) {
        self.shared.down.store(down, Ordering::SeqCst);
    }

    /// Makes discovery report `issuer` instead of the URL (`None`: back to the URL).
    pub fn set_discovery_issuer(&self, issuer: Option<&str>) {
        *lock(&self.shared.discovery_issuer) = issuer.map(str::to_owned);
    }

    /// GETs of the JWKS so far, answered or not.
    pub fn jwks_fetches(&self) -> usize {
        self.shared.jwks_fetches.load(Ordering::SeqCst)
    }

    /// GETs of the discovery document so far, answered or not.
    pub fn discovery_fetches(&self) -> usize {
        self.shared.discovery_fetches.load(Ordering::SeqCst)
    }
}

impl Shared {
    fn url(&self) -> String {
        self.url.get().cloned().expect("the URL is set when the server starts, before any use")
    }

    pub(crate) fn verify(&self, token: &str) -> Result<Value, String> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("not a compact JWS".to_owned());
        };
        let header = decode_json(header).map_err(|e| format!("header: {e}"))?;
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|e| format!("signature: {e}"))?;
        let input = &token[..header_and_payload_len(token)];
        let kid = header["kid"].as_str();
        let keys = lock(&self.keys);
        let known = |key_kid: &str| kid.is_none_or(|kid| kid == key_kid);
        match header["alg"].as_str() {
            Some("RS256") if known(&keys.rsa.kid) => {
                let key = VerifyingKey::<Sha256>::new(RsaPublicKey::from(&keys.rsa.private));
                let signature = RsaSignature::try_from(signature.as_slice()).map_err(|e| e.to_string())?;
                key.verify(input.as_bytes(), &signature).map_err(|_| "bad RS256 signature".to_owned())?;
            }
            Some("ES256") if known(&keys.ec.kid) => {
                let public = keys.ec.pair.public_key().as_ref();
                ring_sig::UnparsedPublicKey::new(&ring_sig::ECDSA_P256_SHA256_FIXED, public)
                    .verify(input.as_bytes(), &signature)
                    .map_err(|_| "bad ES256 signature".to_owned())?;
            }
            Some("RS256" | "ES256") => return Err(format!("no current key with kid {kid:?}")),
            other => return Err(format!("unsupported alg {other:?}")),
        }
        decode_json(payload).map_err(|e| format!("payload: {e}"))
    }

    fn discovery(&self) -> Value {
        let url = self.url();
        let issuer = lock(&self.discovery_issuer).clone().unwrap_or_else(|| url.clone());
        json!({
            "issuer": issuer,
            "jwks_uri": format!("{url}/jwks"),
            "authorization_endpoint": format!("{url}/authorize"),
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            "claims_supported": ["iss", "sub", "aud", "iat", "nbf", "exp", "jti"],
        })
    }

    fn jwks(&self) -> Value {
        let keys = lock(&self.keys);
        let rsa = &keys.rsa.private;
        let point = keys.ec.pair.public_key().as_ref();
        // The uncompressed point: 0x04, then x and y, 32 bytes each.
        let (x, y) = (&point[1..33], &point[33..65]);
        json!({"keys": [
            {"kty": "RSA", "kid": keys.rsa.kid, "alg": "RS256", "use": "sig",
             "n": URL_SAFE_NO_PAD.encode(rsa.n().to_bytes_be()),
             "e": URL_SAFE_NO_PAD.encode(rsa.e().to_bytes_be())},
            {"kty": "EC", "kid": keys.ec.kid, "alg": "ES256", "use": "sig", "crv": "P-256",
             "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)},
            {"kty": "oct", "kid": self.oct_kid, "alg": "HS256", "use": "sig",
             "k": URL_SAFE_NO_PAD.encode(&self.oct_secret)},
        ]})
    }
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let counter = match req.uri().path() {
        "/.well-known/openid-configuration" => &shared.discovery_fetches,
        "/jwks" => &shared.jwks_fetches,
        _ => return json_answer(404, &json!({"error": "not found"})),
    };
    if req.method() != Method::GET {
        return json_answer(405, &json!({"error": "method not allowed"}));
    }
    counter.fetch_add(1, Ordering::SeqCst);
    if shared.down.load(Ordering::SeqCst) {
        return json_answer(503, &json!({"error": "temporarily unavailable"}));
    }
    if req.uri().path() == "/jwks" {
        json_answer(200, &shared.jwks())
    } else {
        json_answer(200, &shared.discovery())
    }
}

async fn new_keys() -> Keys {
    let rsa = new_rsa_key().await;
    let rng = SystemRandom::new();
    let alg = &ring_sig::ECDSA_P256_SHA256_FIXED_SIGNING;
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).expect("generate a P-256 key");
    let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).expect("a P-256 key ring made reads back");
    let mut spki = P256_SPKI_PREFIX.to_vec();
    spki.extend_from_slice(pair.public_key().as_ref());
    let ec = EcKey { kid: format!("ec-{}", random_hex(8)), public_pem: pem("PUBLIC KEY", &spki), pair };
    Keys {
        rsa: RsaKey {
            kid: format!("rsa-{}", random_hex(8)),
            public_pem: RsaPublicKey::from(&rsa)
                .to_public_key_pem(LineEnding::LF)
                .expect("an RSA public key encodes as SPKI"),
            private: rsa,
        },
        ec,
    }
}

/// RSA 2048 generation takes a while in a debug build: off the async workers.
async fn new_rsa_key() -> RsaPrivateKey {
    tokio::task::spawn_blocking(|| {
        RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("generate an RSA 2048 key")
    })
    .await
    .expect("the RSA key generation task finishes")
}

fn rsa_sign(key: &RsaPrivateKey, input: &str) -> Vec<u8> {
    SigningKey::<Sha256>::new(key.clone()).sign(input.as_bytes()).to_vec()
}

fn hs256(header: &Value, claims: &Value, key: &[u8]) -> String {
    let input = signing_input(header, claims);
    let tag = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key), input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

fn signing_input(header: &Value, claims: &Value) -> String {
    format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()))
}

fn header_and_payload_len(token: &str) -> usize {
    token.rfind('.').unwrap_or(token.len())
}

/// A base64url (no padding) JSON segment of a token.
pub fn decode_json(segment: &str) -> Result<Value, String> {
    let bytes = URL_SAFE_NO_PAD.decode(segment).map_err(|e| e.to_string())?;
    serde_json::from_slice(&bytes).map_err(|e| e.to_string())
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let lines: Vec<&str> =
        b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).expect("base64 is ASCII")).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

pub(crate) fn random_hex(bytes: usize) -> String {
    (0..bytes).map(|_| format!("{:02x}", rand::random::<u8>())).collect()
}
