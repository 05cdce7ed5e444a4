//! Test-only signers: keys generated at run time (never committed), tokens signed with them.
//!
//! ring generates and signs ECDSA and Ed25519 keys and signs with RSA keys, but cannot generate
//! RSA keys: those come from the `rsa` crate (one per test binary, as generation is slow in
//! debug builds) and are handed to ring as PKCS#8.

use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{self as sig, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use serde_json::{Value, json};
use x509_cert::der::asn1::{AnyRef, BitString};
use x509_cert::der::{Any, Encode};
use x509_cert::spki::{AlgorithmIdentifierOwned, ObjectIdentifier, SubjectPublicKeyInfoOwned};

use super::keys::{KeyFamily, PublicKey};
use super::{Algorithm, verify::Jws};

const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_EC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");

static RSA_PKCS8: LazyLock<Vec<u8>> = LazyLock::new(|| {
    use rsa::pkcs8::EncodePrivateKey as _;
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("RSA key generation");
    key.to_pkcs8_der().expect("PKCS#8 encoding").as_bytes().to_vec()
});

enum Signer {
    Rsa(RsaKeyPair),
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A generated key pair with the encodings tests need.
pub(crate) struct TestKey {
    signer: Signer,
    family: KeyFamily,
    spki_der: Vec<u8>,
}

impl TestKey {
    /// The test binary's RSA key (2048 bits).
    pub(crate) fn rsa() -> TestKey {
        let pair = RsaKeyPair::from_pkcs8(&RSA_PKCS8).expect("ring reads the rsa crate's PKCS#8");
        let spki = spki_der(OID_RSA, Some(AnyRef::NULL.into()), pair.public().as_ref());
        TestKey { signer: Signer::Rsa(pair), family: KeyFamily::Rsa, spki_der: spki }
    }

    pub(crate) fn p256() -> TestKey {
        TestKey::ecdsa(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, OID_P256, KeyFamily::EcP256)
    }

    pub(crate) fn p384() -> TestKey {
        TestKey::ecdsa(&sig::ECDSA_P384_SHA384_FIXED_SIGNING, OID_P384, KeyFamily::EcP384)
    }

    fn ecdsa(
        alg: &'static sig::EcdsaSigningAlgorithm,
        curve: ObjectIdentifier,
        family: KeyFamily,
    ) -> TestKey {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).expect("EC key generation");
        let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).expect("EC key");
        let spki = ec_spki_der(curve, pair.public_key().as_ref());
        TestKey { signer: Signer::Ecdsa(pair), family, spki_der: spki }
    }

    pub(crate) fn ed25519() -> TestKey {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).expect("Ed25519 key generation");
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("Ed25519 key");
        let spki = spki_der(OID_ED25519, None, pair.public_key().as_ref());
        TestKey { signer: Signer::Ed25519(pair), family: KeyFamily::Ed25519, spki_der: spki }
    }

    /// A self-signed P-256 certificate (as PEM) and its key.
    pub(crate) fn p256_certificate() -> (String, TestKey) {
        let key_pair = rcgen::KeyPair::generate().expect("rcgen key");
        let cert = rcgen::CertificateParams::new(vec!["issuer.test".to_string()])
            .expect("params")
            .self_signed(&key_pair)
            .expect("self-signed");
        let alg = &sig::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pair =
            EcdsaKeyPair::from_pkcs8(alg, &key_pair.serialize_der(), &SystemRandom::new()).expect("EC key");
        let spki = ec_spki_der(OID_P256, pair.public_key().as_ref());
        (cert.pem(), TestKey { signer: Signer::Ecdsa(pair), family: KeyFamily::EcP256, spki_der: spki })
    }

    pub(crate) fn family(&self) -> KeyFamily {
        self.family
    }

    pub(crate) fn spki_pem(&self) -> String {
        pem_block("PUBLIC KEY", &self.spki_der)
    }

    pub(crate) fn pkcs1_pem(&self) -> String {
        match &self.signer {
            Signer::Rsa(pair) => pem_block("RSA PUBLIC KEY", pair.public().as_ref()),
            _ => panic!("PKCS#1 is for RSA keys"),
        }
    }

    /// The verification key as the code under test loads it, named `kid`.
    pub(crate) fn public(&self, kid: Option<&str>) -> Vec<PublicKey> {
        let key = PublicKey::from_spki_der(&self.spki_der).expect("own key loads");
        vec![key.with_kid(kid.map(str::to_string))]
    }

    /// The public key as a JWK.
    pub(crate) fn jwk(&self, kid: &str) -> Value {
        match &self.signer {
            Signer::Rsa(pair) => {
                let public = pair.public();
                let components: sig::RsaPublicKeyComponents<Vec<u8>> = public.into();
                json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
                       "n": b64(&components.n), "e": b64(&components.e)})
            }
            Signer::Ecdsa(pair) => {
                let point = pair.public_key().as_ref();
                let len = (point.len() - 1) / 2;
                let crv = if self.family == KeyFamily::EcP256 { "P-256" } else { "P-384" };
                json!({"kty": "EC", "kid": kid, "crv": crv,
                       "x": b64(&point[1..=len]), "y": b64(&point[1 + len..])})
            }
            Signer::Ed25519(pair) => {
                json!({"kty": "OKP", "kid": kid, "crv": "Ed25519", "x": b64(pair.public_key().as_ref())})
            }
        }
    }

    /// A compact JWS of `claims` signed with `alg`.
    pub(crate) fn sign(&self, alg: Algorithm, kid: Option<&str>, claims: &Value) -> String {
        let mut header = json!({"alg": alg.as_str(), "typ": "JWT"});
        if let Some(kid) = kid {
            header["kid"] = json!(kid);
        }
        let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
        let rng = SystemRandom::new();
        let signature = match &self.signer {
            Signer::Rsa(pair) => {
                let padding: &'static dyn sig::RsaEncoding = match alg {
                    Algorithm::RS256 => &sig::RSA_PKCS1_SHA256,
                    Algorithm::RS384 => &sig::RSA_PKCS1_SHA384,
                    Algorithm::RS512 => &sig::RSA_PKCS1_SHA512,
                    Algorithm::PS256 => &sig::RSA_PSS_SHA256,
                    Algorithm::PS384 => &sig::RSA_PSS_SHA384,
                    Algorithm::PS512 => &sig::RSA_PSS_SHA512,
                    other => panic!("{other} is not an RSA algorithm"),
                };
                let mut out = vec![0; pair.public().modulus_len()];
                pair.sign(padding, &rng, input.as_bytes(), &mut out).expect("RSA signing");
                out
            }
            Signer::Ecdsa(pair) => {
                pair.sign(&rng, input.as_bytes()).expect("ECDSA signing").as_ref().to_vec()
            }
            Signer::Ed25519(pair) => pair.sign(input.as_bytes()).as_ref().to_vec(),
        };
        format!("{input}.{}", b64(signature))
    }

    /// A signed token, parsed.
    pub(crate) fn jws(&self, alg: Algorithm, kid: Option<&str>, claims: &Value) -> Jws {
        Jws::parse(&self.sign(alg, kid, claims)).expect("own token parses")
    }
}

pub(crate) fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) fn pem_block(tag: &str, der: &[u8]) -> String {
    pem::encode(&pem::Pem::new(tag, der.to_vec()))
}

/// `alg: none` with an empty signature.
pub(crate) fn unsigned_token(claims: &Value) -> String {
    format!("{}.{}.", b64(json!({"alg": "none"}).to_string()), b64(claims.to_string()))
}

/// An HS256 token keyed with `secret` (the attack uses the verifier's public key bytes).
pub(crate) fn hs256_token(secret: &[u8], claims: &Value) -> String {
    let input =
        format!("{}.{}", b64(json!({"alg": "HS256", "typ": "JWT"}).to_string()), b64(claims.to_string()));
    let tag = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret), input.as_bytes());
    format!("{input}.{}", b64(tag.as_ref()))
}

pub(crate) fn ec_spki_der(curve: ObjectIdentifier, point: &[u8]) -> Vec<u8> {
    spki_der(OID_EC, Some(Any::from(curve)), point)
}

fn spki_der(oid: ObjectIdentifier, parameters: Option<Any>, key: &[u8]) -> Vec<u8> {
    SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned { oid, parameters },
        subject_public_key: BitString::from_bytes(key).expect("bit string"),
    }
    .to_der()
    .expect("SPKI encoding")
}
