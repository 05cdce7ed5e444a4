//! Public keys that verify JWT signatures: parsed once from PEM (SPKI, PKCS#1, X.509) or a JWKS
//! document, then held as the raw bytes ring verifies with.
//!
//! Only key types ring can verify load: RSA (2048 to 8192 bits), ECDSA P-256 and P-384, and
//! Ed25519. A P-521 key is refused with a clear error rather than loaded and never matching.

use std::fmt;

use ring::signature::{self as sig, RsaPublicKeyComponents, UnparsedPublicKey};
use x509_cert::Certificate;
use x509_cert::der::asn1::UintRef;
use x509_cert::der::{Decode, Encode, Reader, SliceReader};
use x509_cert::spki::{ObjectIdentifier, SubjectPublicKeyInfoRef};

pub use super::jwks::parse_jwks;
use super::{Algorithm, KeyError};

const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_EC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");

/// ring's RSA verification algorithms accept moduli of 2048 to 8192 bits.
const RSA_MIN_BITS: usize = 2048;
const RSA_MAX_BITS: usize = 8192;

/// The kind of key, which decides the algorithms it may verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFamily {
    Rsa,
    EcP256,
    EcP384,
    Ed25519,
}

impl KeyFamily {
    /// Whether a key of this family may verify `alg`: an RSA key never verifies an ECDSA token,
    /// a P-256 key never an ES384 token, and so on.
    pub fn fits(self, alg: Algorithm) -> bool {
        use Algorithm::*;
        matches!(
            (self, alg),
            (KeyFamily::Rsa, RS256 | RS384 | RS512 | PS256 | PS384 | PS512)
                | (KeyFamily::EcP256, ES256)
                | (KeyFamily::EcP384, ES384)
                | (KeyFamily::Ed25519, EdDSA)
        )
    }
}

#[derive(Clone, PartialEq, Eq)]
enum Material {
    /// Big-endian modulus and exponent, without leading zero bytes (ring refuses them).
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// Uncompressed SEC1 point `04 || x || y`.
    Ec {
        family: KeyFamily,
        point: Vec<u8>,
    },
    Ed25519(Vec<u8>),
}

/// A verification key, optionally named by a JWKS `kid`.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    kid: Option<String>,
    material: Material,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey").field("kid", &self.kid).field("family", &self.family()).finish()
    }
}

impl PublicKey {
    /// Every key in a PEM text: `PUBLIC KEY` (SPKI), `RSA PUBLIC KEY` (PKCS#1) and `CERTIFICATE`
    /// (its SubjectPublicKeyInfo) blocks. Any other block (a private key pasted by mistake), or
    /// no block at all, is an error.
    pub fn from_pem(pem_text: &str) -> Result<Vec<PublicKey>, KeyError> {
        let blocks = pem::parse_many(pem_text).map_err(|e| KeyError::InvalidKey(e.to_string()))?;
        if blocks.is_empty() {
            return Err(KeyError::InvalidKey("data does not contain any valid public keys".into()));
        }
        blocks
            .iter()
            .map(|block| match block.tag() {
                "PUBLIC KEY" => PublicKey::from_spki_der(block.contents()),
                "RSA PUBLIC KEY" => rsa_from_pkcs1(block.contents()),
                "CERTIFICATE" => {
                    let cert = Certificate::from_der(block.contents())
                        .map_err(|e| KeyError::InvalidKey(format!("invalid certificate: {e}")))?;
                    let spki = cert
                        .tbs_certificate
                        .subject_public_key_info
                        .to_der()
                        .map_err(|e| KeyError::InvalidKey(format!("invalid certificate: {e}")))?;
                    PublicKey::from_spki_der(&spki)
                }
                other => Err(KeyError::InvalidKey(format!("unsupported PEM block type {other:?}"))),
            })
            .collect()
    }

    /// A DER SubjectPublicKeyInfo.
    pub fn from_spki_der(der: &[u8]) -> Result<PublicKey, KeyError> {
        let spki = SubjectPublicKeyInfoRef::from_der(der)
            .map_err(|e| KeyError::InvalidKey(format!("invalid SubjectPublicKeyInfo: {e}")))?;
        let bits = spki
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| KeyError::InvalidKey("public key bit string is not whole bytes".into()))?;
        let oid = spki.algorithm.oid;
        if oid == OID_RSA {
            rsa_from_pkcs1(bits)
        } else if oid == OID_EC {
            let curve = spki
                .algorithm
                .parameters_oid()
                .map_err(|_| KeyError::InvalidKey("EC key without a named curve".into()))?;
            let family = if curve == OID_P256 {
                KeyFamily::EcP256
            } else if curve == OID_P384 {
                KeyFamily::EcP384
            } else if curve == OID_P521 {
                return Err(KeyError::InvalidKey("P-521 (ES512) keys are not supported".into()));
            } else {
                return Err(KeyError::InvalidKey(format!("unsupported elliptic curve {curve}")));
            };
            PublicKey::ec(family, bits.to_vec())
        } else if oid == OID_ED25519 {
            PublicKey::ed25519(bits.to_vec())
        } else {
            Err(KeyError::InvalidKey(format!("unsupported public key algorithm {oid}")))
        }
    }

    /// An RSA key from its big-endian modulus and public exponent.
    pub(crate) fn rsa(n: &[u8], e: &[u8]) -> Result<PublicKey, KeyError> {
        let n = strip_leading_zeros(n);
        let e = strip_leading_zeros(e);
        let bits = n.first().map_or(0, |b| (n.len() - 1) * 8 + (8 - b.leading_zeros() as usize));
        if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
            return Err(KeyError::InvalidKey(format!(
                "RSA modulus of {bits} bits (supported: {RSA_MIN_BITS} to {RSA_MAX_BITS})"
            )));
        }
        if e.is_empty() {
            return Err(KeyError::InvalidKey("RSA public exponent is zero".into()));
        }
        Ok(PublicKey { kid: None, material: Material::Rsa { n: n.to_vec(), e: e.to_vec() } })
    }

    /// An ECDSA key from its uncompressed SEC1 point.
    pub(crate) fn ec(family: KeyFamily, point: Vec<u8>) -> Result<PublicKey, KeyError> {
        let coordinate_len = match family {
            KeyFamily::EcP256 => 32,
            KeyFamily::EcP384 => 48,
            KeyFamily::Rsa | KeyFamily::Ed25519 => {
                return Err(KeyError::InvalidKey("not an elliptic curve key".into()));
            }
        };
        if point.len() != 1 + 2 * coordinate_len || point.first() != Some(&0x04) {
            return Err(KeyError::InvalidKey("EC point is not an uncompressed point on its curve".into()));
        }
        Ok(PublicKey { kid: None, material: Material::Ec { family, point } })
    }

    /// An Ed25519 key from its 32 bytes.
    pub(crate) fn ed25519(key: Vec<u8>) -> Result<PublicKey, KeyError> {
        if key.len() != 32 {
            return Err(KeyError::InvalidKey(format!("Ed25519 key of {} bytes (want 32)", key.len())));
        }
        Ok(PublicKey { kid: None, material: Material::Ed25519(key) })
    }

    pub(crate) fn with_kid(mut self, kid: Option<String>) -> PublicKey {
        self.kid = kid;
        self
    }

    /// The JWKS `kid`, if the key came from a JWKS document that named it.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    pub fn family(&self) -> KeyFamily {
        match &self.material {
            Material::Rsa { .. } => KeyFamily::Rsa,
            Material::Ec { family, .. } => *family,
            Material::Ed25519(_) => KeyFamily::Ed25519,
        }
    }

    /// Whether `signature` is a valid `alg` signature of `message` by this key. False whenever
    /// the key's family does not fit `alg`.
    pub fn verify(&self, alg: Algorithm, message: &[u8], signature: &[u8]) -> bool {
        if !self.family().fits(alg) {
            return false;
        }
        match &self.material {
            Material::Rsa { n, e } => {
                let params: &sig::RsaParameters = match alg {
                    Algorithm::RS256 => &sig::RSA_PKCS1_2048_8192_SHA256,
                    Algorithm::RS384 => &sig::RSA_PKCS1_2048_8192_SHA384,
                    Algorithm::RS512 => &sig::RSA_PKCS1_2048_8192_SHA512,
                    Algorithm::PS256 => &sig::RSA_PSS_2048_8192_SHA256,
                    Algorithm::PS384 => &sig::RSA_PSS_2048_8192_SHA384,
                    Algorithm::PS512 => &sig::RSA_PSS_2048_8192_SHA512,
                    _ => return false,
                };
                RsaPublicKeyComponents { n, e }.verify(params, message, signature).is_ok()
            }
            Material::Ec { family, point } => {
                let algorithm: &'static dyn sig::VerificationAlgorithm = match family {
                    KeyFamily::EcP256 => &sig::ECDSA_P256_SHA256_FIXED,
                    KeyFamily::EcP384 => &sig::ECDSA_P384_SHA384_FIXED,
                    KeyFamily::Rsa | KeyFamily::Ed25519 => return false,
                };
                UnparsedPublicKey::new(algorithm, point).verify(message, signature).is_ok()
            }
            Material::Ed25519(key) => {
                UnparsedPublicKey::new(&sig::ED25519, key).verify(message, signature).is_ok()
            }
        }
    }
}

/// A DER PKCS#1 `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }`.
fn rsa_from_pkcs1(der: &[u8]) -> Result<PublicKey, KeyError> {
    let invalid = |e: x509_cert::der::Error| KeyError::InvalidKey(format!("invalid RSA public key: {e}"));
    let mut reader = SliceReader::new(der).map_err(invalid)?;
    let (n, e) = reader
        .sequence(|r| {
            let n = UintRef::decode(r)?;
            let e = UintRef::decode(r)?;
            Ok((n.as_bytes().to_vec(), e.as_bytes().to_vec()))
        })
        .map_err(invalid)?;
    reader.finish(()).map_err(invalid)?;
    PublicKey::rsa(&n, &e)
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::test_support::{TestKey, pem_block};

    #[test]
    fn spki_pem_of_every_supported_family_loads() {
        for key in [TestKey::rsa(), TestKey::p256(), TestKey::p384(), TestKey::ed25519()] {
            let keys = PublicKey::from_pem(&key.spki_pem()).expect("loads");
            assert_eq!(keys.len(), 1);
            assert_eq!(keys[0].family(), key.family());
            assert_eq!(keys[0].kid(), None);
        }
    }

    #[test]
    fn pkcs1_pem_and_several_blocks_in_one_text() {
        let rsa = TestKey::rsa();
        let ec = TestKey::p256();
        let text = format!("{}\nsome comment\n{}", rsa.pkcs1_pem(), ec.spki_pem());
        let keys = PublicKey::from_pem(&text).expect("loads");
        assert_eq!(
            keys.iter().map(PublicKey::family).collect::<Vec<_>>(),
            [KeyFamily::Rsa, KeyFamily::EcP256]
        );
        assert_eq!(keys[0], PublicKey::from_pem(&rsa.spki_pem()).expect("loads")[0]);
    }

    #[test]
    fn certificate_pem_yields_its_subject_key() {
        let (cert_pem, key) = TestKey::p256_certificate();
        let keys = PublicKey::from_pem(&cert_pem).expect("loads");
        assert_eq!(keys, PublicKey::from_pem(&key.spki_pem()).expect("loads"));
    }

    #[test]
    fn bad_pem_is_refused_with_vaults_prefix() {
        for text in
            ["", "not a pem", &pem_block("PUBLIC KEY", b"garbage"), &pem_block("PRIVATE KEY", &[0x30, 0])]
        {
            let err = PublicKey::from_pem(text).expect_err("refused");
            assert!(err.to_string().starts_with("error parsing public key: "), "{err}");
        }
        let err = PublicKey::from_pem(&pem_block("EC PRIVATE KEY", &[1])).expect_err("refused");
        assert_eq!(
            err.to_string(),
            r#"error parsing public key: unsupported PEM block type "EC PRIVATE KEY""#
        );
    }

    #[test]
    fn p521_and_small_rsa_are_refused_clearly() {
        // SPKI of a P-521 key: the curve is refused before the point is looked at.
        let p521 = crate::jwt::test_support::ec_spki_der(OID_P521, &[4; 133]);
        let err = PublicKey::from_spki_der(&p521).expect_err("refused");
        assert_eq!(err.to_string(), "error parsing public key: P-521 (ES512) keys are not supported");
        let err = PublicKey::rsa(&[0xff; 128], &[1, 0, 1]).expect_err("refused");
        assert!(err.to_string().contains("1024 bits"), "{err}");
    }

    #[test]
    fn family_decides_which_algorithms_a_key_may_verify() {
        assert!(KeyFamily::Rsa.fits(Algorithm::PS512));
        assert!(!KeyFamily::Rsa.fits(Algorithm::ES256));
        assert!(!KeyFamily::EcP256.fits(Algorithm::ES384));
        assert!(!KeyFamily::EcP384.fits(Algorithm::ES512));
        assert!(!KeyFamily::Ed25519.fits(Algorithm::RS256));
        assert!(KeyFamily::Ed25519.fits(Algorithm::EdDSA));
    }
}
