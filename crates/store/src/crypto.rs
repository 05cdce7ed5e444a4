//! Secrets at rest: AES-256-GCM sealing with the row's identity as associated data (a sealed
//! value copied into another row fails to open), and HMAC-SHA256 hashing of client tokens.
//! Both keys are derived with HKDF from one 32-byte master key.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use ring::{hkdf, hmac};
use sqlx::AnyPool;

use crate::{KeySource, Result, StoreError};

const CHECK_PLAINTEXT: &[u8] = b"keymint seal check v1";
const CHECK_AAD: &str = "meta/seal_check";

/// The 32-byte master key. Its `Debug` never shows the bytes.
#[derive(Clone)]
pub struct KeyMaterial([u8; 32]);

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyMaterial(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error)]
#[error("a seal key must be 32 bytes, given as 64 hex digits or 44 base64 characters")]
pub struct BadKey;

impl KeyMaterial {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Parses a key as written in a key file or an environment variable: 64 hex digits or the
    /// base64 of 32 bytes, surrounding whitespace ignored.
    pub fn parse(text: &str) -> Result<Self, BadKey> {
        let text = text.trim();
        let bytes = if text.len() == 64 {
            hex::decode(text).map_err(|_| BadKey)?
        } else {
            B64.decode(text).map_err(|_| BadKey)?
        };
        let array: [u8; 32] = bytes.try_into().map_err(|_| BadKey)?;
        Ok(Self(array))
    }

    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        // SystemRandom only fails when the OS has no entropy source, which no supported
        // platform lacks; fall back to rand's OS generator to stay panic-free.
        if SystemRandom::new().fill(&mut bytes).is_err() {
            use rand::RngCore;
            rand::rng().fill_bytes(&mut bytes);
        }
        Self(bytes)
    }

    pub fn to_base64(&self) -> String {
        B64.encode(self.0)
    }

    /// Fills `out` with key bytes derived for one purpose. HKDF-SHA256 can expand up to
    /// 255 * 32 bytes, so for the 32-byte keys asked here it cannot fail.
    fn derive_into<K: hkdf::KeyType>(&self, info: &[u8], kind: K, out: &mut [u8]) {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"keymint-key-derivation").extract(&self.0);
        let info = [info];
        if let Ok(okm) = prk.expand(&info, kind) {
            let _ = okm.fill(out);
        }
    }
}

/// Seals and opens secrets bound to a row identity.
///
/// Secrets are sealed under the active *data key*. Data keys are random, numbered from 1,
/// and kept in the `seal_keys` table wrapped (sealed) by the key derived from the master
/// key; `keymint operator rotate` adds one and re-seals every secret under it. A value sealed
/// under data key `v` starts with `KMv1` and `v` (4 bytes, big-endian). Before the first
/// rotation there are no data keys and values are sealed directly under the master-derived
/// key, without a prefix (version 0), as they always were.
#[derive(Clone)]
pub struct Seal {
    inner: std::sync::Arc<SealInner>,
}

struct SealInner {
    master: LessSafeKey,
    data_keys: std::sync::RwLock<std::collections::BTreeMap<u32, std::sync::Arc<LessSafeKey>>>,
}

const VERSIONED: &[u8; 4] = b"KMv1";

impl std::fmt::Debug for Seal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Seal(<redacted>)")
    }
}

fn aes_key(raw: &[u8; 32]) -> LessSafeKey {
    let unbound = UnboundKey::new(&aead::AES_256_GCM, raw).unwrap_or_else(|_| {
        // Invariant: AES_256_GCM takes exactly 32 bytes, which `raw` is.
        unreachable!("AES-256-GCM key length is 32 bytes")
    });
    LessSafeKey::new(unbound)
}

fn seal_with(key: &LessSafeKey, identity: &str, plaintext: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; 12];
    if SystemRandom::new().fill(&mut nonce).is_err() {
        use rand::RngCore;
        rand::rng().fill_bytes(&mut nonce);
    }
    let mut buf = plaintext.to_vec();
    // Sealing in place only fails for inputs over ~64 GiB.
    let _ = key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(identity.as_bytes()),
        &mut buf,
    );
    let mut out = Vec::with_capacity(12 + buf.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&buf);
    out
}

fn open_with(key: &LessSafeKey, identity: &str, sealed: &[u8]) -> Result<Vec<u8>> {
    if sealed.len() < 12 + aead::AES_256_GCM.tag_len() {
        return Err(StoreError::Corrupt(format!("sealed value for {identity} is too short")));
    }
    let (nonce, body) = sealed.split_at(12);
    let nonce =
        Nonce::try_assume_unique_for_key(nonce).map_err(|_| StoreError::Corrupt("bad nonce".into()))?;
    let mut buf = body.to_vec();
    let plain = key
        .open_in_place(nonce, Aad::from(identity.as_bytes()), &mut buf)
        .map_err(|_| StoreError::Corrupt(format!("sealed value for {identity} does not open")))?;
    Ok(plain.to_vec())
}

fn data_key_identity(version: u32) -> String {
    format!("seal_keys/{version}")
}

impl Seal {
    pub fn new(material: &KeyMaterial) -> Self {
        let mut raw = [0u8; 32];
        material.derive_into(b"keymint seal aes-256-gcm", &aead::AES_256_GCM, &mut raw);
        Self {
            inner: std::sync::Arc::new(SealInner {
                master: aes_key(&raw),
                data_keys: std::sync::RwLock::default(),
            }),
        }
    }

    fn keys(
        &self,
    ) -> std::sync::RwLockReadGuard<'_, std::collections::BTreeMap<u32, std::sync::Arc<LessSafeKey>>> {
        self.inner.data_keys.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The data key new values are sealed under (0: the master-derived key).
    pub fn active_version(&self) -> u32 {
        self.keys().keys().next_back().copied().unwrap_or(0)
    }

    /// Whether data key `version` is loaded.
    pub fn has_version(&self, version: u32) -> bool {
        version == 0 || self.keys().contains_key(&version)
    }

    /// Encrypts `plaintext` under the active data key; `identity` (for example
    /// `aws_config/<mount>/root`) is authenticated but not stored in the output.
    pub fn seal(&self, identity: &str, plaintext: &[u8]) -> Vec<u8> {
        let keys = self.keys();
        match keys.iter().next_back() {
            None => seal_with(&self.inner.master, identity, plaintext),
            Some((version, key)) => {
                let mut out = Vec::with_capacity(8 + 12 + plaintext.len() + 16);
                out.extend_from_slice(VERSIONED);
                out.extend_from_slice(&version.to_be_bytes());
                out.extend_from_slice(&seal_with(key, identity, plaintext));
                out
            }
        }
    }

    /// The data key version a sealed value names (0: none, the master-derived key).
    pub fn version_of(sealed: &[u8]) -> u32 {
        match sealed.strip_prefix(VERSIONED.as_slice()) {
            Some(rest) if rest.len() >= 4 => u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]),
            _ => 0,
        }
    }

    /// Decrypts a sealed value. `UnknownSealKey` names a data key this process has not loaded
    /// (another process rotated): load the keys and try again.
    pub fn open(&self, identity: &str, sealed: &[u8]) -> Result<Vec<u8>> {
        let version = Self::version_of(sealed);
        if version != 0 {
            let key = self.keys().get(&version).cloned();
            if let Some(key) = key
                && let Ok(plain) = open_with(&key, identity, &sealed[8..])
            {
                return Ok(plain);
            }
            // An unversioned value whose random nonce happens to start with the marker
            // (one in 2^32) still opens under the master-derived key.
            return match open_with(&self.inner.master, identity, sealed) {
                Ok(plain) => Ok(plain),
                Err(_) if !self.has_version(version) => Err(StoreError::UnknownSealKey(version)),
                Err(e) => Err(e),
            };
        }
        open_with(&self.inner.master, identity, sealed)
    }

    /// Wraps a new data key for storage.
    pub(crate) fn wrap_data_key(&self, version: u32, raw: &[u8; 32]) -> Vec<u8> {
        seal_with(&self.inner.master, &data_key_identity(version), raw)
    }

    /// Unwraps a stored data key and makes it available (the newest one is the active one).
    pub(crate) fn install_data_key(&self, version: u32, wrapped: &[u8]) -> Result<()> {
        let raw = open_with(&self.inner.master, &data_key_identity(version), wrapped).map_err(|_| {
            StoreError::Corrupt(format!("data key {version} does not open under the seal key"))
        })?;
        let raw: [u8; 32] =
            raw.try_into().map_err(|_| StoreError::Corrupt(format!("data key {version} is not 32 bytes")))?;
        self.inner
            .data_keys
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(version, std::sync::Arc::new(aes_key(&raw)));
        Ok(())
    }
}

/// A new random data key.
pub(crate) fn random_data_key() -> [u8; 32] {
    KeyMaterial::generate().0
}

/// Keyed hashes of client tokens: the database never holds a usable token.
#[derive(Clone)]
pub struct TokenHasher {
    key: hmac::Key,
}

impl std::fmt::Debug for TokenHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenHasher(<redacted>)")
    }
}

impl TokenHasher {
    pub fn new(material: &KeyMaterial) -> Self {
        Self::for_purpose(material, b"keymint token hmac-sha256")
    }

    /// The HMAC key of the audit log: every replica of an installation derives the same one,
    /// so `sys/audit-hash` answers alike wherever it is asked. Distinct from the token key, so
    /// an audit log never holds a token's lookup hash.
    pub fn for_audit(material: &KeyMaterial) -> Self {
        Self::for_purpose(material, b"keymint audit hmac-sha256")
    }

    fn for_purpose(material: &KeyMaterial, info: &[u8]) -> Self {
        let mut raw = [0u8; 32];
        material.derive_into(info, hmac::HMAC_SHA256, &mut raw);
        Self { key: hmac::Key::new(hmac::HMAC_SHA256, &raw) }
    }

    /// The hex HMAC of a token: the primary key tokens are looked up by. Lookup by this hash is
    /// an equality on a keyed digest, so timing reveals nothing useful about the token.
    pub fn hash(&self, token: &str) -> String {
        hex::encode(hmac::sign(&self.key, token.as_bytes()).as_ref())
    }
}

async fn meta_get(pool: &AnyPool, key: &str) -> Result<Option<String>> {
    Ok(sqlx::query_scalar::<_, String>("SELECT value FROM meta WHERE key = $1")
        .bind(key)
        .fetch_optional(pool)
        .await?)
}

async fn meta_insert_if_absent(pool: &AnyPool, key: &str, value: &str) -> Result<()> {
    sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
        .bind(key)
        .bind(value)
        .execute(pool)
        .await?;
    Ok(())
}

/// Finds the master key for this database, creating what a first start needs. Replicas starting
/// together race on the inserts; `ON CONFLICT DO NOTHING` and a re-read make them agree.
pub(crate) async fn resolve_key(pool: &AnyPool, source: KeySource) -> Result<KeyMaterial> {
    let material = match source {
        KeySource::DevStored => {
            if meta_get(pool, "dev_key").await?.is_none() {
                if meta_get(pool, "seal_check").await?.is_some() {
                    // Another dev server may have written both between our two reads (it writes
                    // the key first): read the key again before calling the store a production one.
                    if meta_get(pool, "dev_key").await?.is_none() {
                        return Err(StoreError::NoKey);
                    }
                } else {
                    meta_insert_if_absent(pool, "dev_key", &KeyMaterial::generate().to_base64()).await?;
                }
            }
            let stored = meta_get(pool, "dev_key").await?.ok_or(StoreError::NoKey)?;
            KeyMaterial::parse(&stored).map_err(|e| StoreError::Corrupt(e.to_string()))?
        }
        KeySource::Given(material) => {
            if meta_get(pool, "dev_key").await?.is_some() {
                return Err(StoreError::DevKeyInProduction);
            }
            material
        }
        KeySource::Restoring(material) => {
            if meta_get(pool, "dev_key").await?.is_some() {
                return Err(StoreError::DevKeyInProduction);
            }
            // A store never started: the backup brings its check value, checked against this
            // key before anything is written. Writing one now would tie the empty database to
            // a key that may be the wrong one.
            if meta_get(pool, "seal_check").await?.is_none() {
                return Ok(material);
            }
            material
        }
    };
    let seal = Seal::new(&material);
    if meta_get(pool, "seal_check").await?.is_none() {
        let check = B64.encode(seal.seal(CHECK_AAD, CHECK_PLAINTEXT));
        meta_insert_if_absent(pool, "seal_check", &check).await?;
    }
    let check = meta_get(pool, "seal_check").await?.ok_or(StoreError::NoKey)?;
    let sealed = B64.decode(check).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    match seal.open(CHECK_AAD, &sealed) {
        Ok(plain) if plain == CHECK_PLAINTEXT => Ok(material),
        _ => Err(StoreError::WrongKey),
    }
}

/// Whether a stored seal check value (as `meta.seal_check` holds it) opens under `seal`: the
/// check a backup's key gets before it is restored.
pub(crate) fn check_matches(seal: &Seal, check_b64: &str) -> bool {
    B64.decode(check_b64)
        .ok()
        .and_then(|sealed| seal.open(CHECK_AAD, &sealed).ok())
        .is_some_and(|plain| plain == CHECK_PLAINTEXT)
}

/// The installation id if the store has one yet (a store opened for a restore may not).
pub(crate) async fn installation_id_if_any(pool: &AnyPool) -> Result<String> {
    Ok(meta_get(pool, "installation_id").await?.unwrap_or_default())
}

/// The installation id, created once; concurrent first starts agree through the insert race.
pub(crate) async fn installation_id(pool: &AnyPool) -> Result<String> {
    meta_insert_if_absent(pool, "installation_id", &uuid::Uuid::new_v4().to_string()).await?;
    meta_get(pool, "installation_id").await?.ok_or_else(|| StoreError::Corrupt("no installation id".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_identity() {
        let seal = Seal::new(&KeyMaterial::generate());
        let sealed = seal.seal("row/1", b"secret");
        assert_ne!(&sealed[12..], b"secret");
        assert_eq!(seal.open("row/1", &sealed).unwrap(), b"secret");
        assert!(seal.open("row/2", &sealed).is_err());
        let other = Seal::new(&KeyMaterial::generate());
        assert!(other.open("row/1", &sealed).is_err());
    }

    #[test]
    fn token_hashes_are_keyed_and_stable() {
        let key = KeyMaterial::generate();
        let a = TokenHasher::new(&key);
        assert_eq!(a.hash("root"), TokenHasher::new(&key).hash("root"));
        assert_ne!(a.hash("root"), TokenHasher::new(&KeyMaterial::generate()).hash("root"));
        assert_eq!(a.hash("root").len(), 64);
    }

    #[test]
    fn keys_parse_from_hex_and_base64() {
        let key = KeyMaterial::generate();
        let b64 = key.to_base64();
        assert!(KeyMaterial::parse(&b64).is_ok());
        assert!(KeyMaterial::parse(&"ab".repeat(32)).is_ok());
        assert!(KeyMaterial::parse("short").is_err());
        assert_eq!(format!("{key:?}"), "KeyMaterial(<redacted>)");
    }
}
