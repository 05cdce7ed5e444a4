//! Keys fetched from an issuer: OIDC discovery, and a JWKS URL's keys cached in memory.
//!
//! [`RemoteKeySet`] fetches nothing when built; the first login fetches. After that the cached
//! keys serve every login, and a token the cache cannot verify (a `kid` it does not know, or a
//! signature no cached key accepts) may trigger one refetch, at most once per
//! `refetch_interval` across all callers, so an issuer's key rotation is picked up without a
//! restart (vault#11611, jwt#181) while a flood of forged tokens costs one request a minute.
//! Concurrent logins share a single in-flight fetch. A failed or garbage fetch is logged and
//! keeps the previous keys: an issuer outage does not stop logins signed by keys already known.
//! `Cache-Control` is ignored (go-oidc v2 honoured it for a week, which is what broke rotation).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::verify::{check_algorithm, verify_signature};
use super::{Algorithm, Jws, JwtError, KeyError, PublicKey, parse_jwks};

/// The refetch rate limit when none is configured.
pub const DEFAULT_REFETCH_INTERVAL: Duration = Duration::from_secs(60);
/// Connect and whole-request timeout of the issuer client.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// JWKS and discovery documents are a few KiB; anything far larger is refused unread.
const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// The HTTP client for an issuer: rustls, 10 s timeouts, and with `ca_pem` only that bundle's
/// certificates as trust roots (the built-in roots are dropped).
pub fn http_client(ca_pem: Option<&str>) -> Result<reqwest::Client, KeyError> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .timeout(HTTP_TIMEOUT)
        .connect_timeout(HTTP_TIMEOUT)
        .user_agent(concat!("keymint/", env!("CARGO_PKG_VERSION")));
    if let Some(ca_pem) = ca_pem.filter(|pem| !pem.trim().is_empty()) {
        let blocks = pem::parse_many(ca_pem).map_err(|e| KeyError::InvalidCaPem(e.to_string()))?;
        let certs: Vec<_> = blocks.iter().filter(|b| b.tag() == "CERTIFICATE").collect();
        if certs.is_empty() {
            return Err(KeyError::InvalidCaPem("no certificate found".into()));
        }
        builder = builder.tls_built_in_root_certs(false);
        for cert in certs {
            // rustls checks trust anchors only when connecting; refuse a broken one now.
            <x509_cert::Certificate as x509_cert::der::Decode>::from_der(cert.contents())
                .map_err(|e| KeyError::InvalidCaPem(format!("invalid certificate: {e}")))?;
            let cert = reqwest::Certificate::from_der(cert.contents())
                .map_err(|e| KeyError::InvalidCaPem(e.to_string()))?;
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().map_err(|e| KeyError::HttpClient(e.to_string()))
}

/// The `jwks_uri` of an OIDC issuer: GETs `<url>/.well-known/openid-configuration` (one trailing
/// `/` of `discovery_url` dropped first) and requires the document's `issuer` to equal
/// `discovery_url` exactly, trailing slash included.
pub async fn discover(client: &reqwest::Client, discovery_url: &str) -> Result<String, JwtError> {
    let well_known = format!(
        "{}/.well-known/openid-configuration",
        discovery_url.strip_suffix('/').unwrap_or(discovery_url)
    );
    let body = get(client, &well_known).await.map_err(JwtError::Discovery)?;
    #[derive(serde::Deserialize)]
    struct Discovery {
        #[serde(default)]
        issuer: String,
        #[serde(default)]
        jwks_uri: String,
    }
    let doc: Discovery = serde_json::from_slice(&body)
        .map_err(|e| JwtError::Discovery(format!("failed to decode OIDC discovery document: {e}")))?;
    if doc.issuer != discovery_url {
        return Err(JwtError::Discovery(format!(
            "issuer did not match the returned issuer, expected {:?} got {:?}",
            discovery_url, doc.issuer
        )));
    }
    if doc.jwks_uri.is_empty() {
        return Err(JwtError::Discovery("discovery document has no jwks_uri".into()));
    }
    Ok(doc.jwks_uri)
}

/// Fetches and parses a JWKS once (config writes check a `jwks_url` this way).
pub async fn fetch_jwks(client: &reqwest::Client, url: &str) -> Result<Vec<PublicKey>, String> {
    let body = get(client, url).await?;
    parse_jwks(&body).map_err(|e| e.to_string())
}

/// GET `url`: a 200 answer's body, at most [`MAX_DOCUMENT_BYTES`].
async fn get(client: &reqwest::Client, url: &str) -> Result<Vec<u8>, String> {
    let mut response = client
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(format!("response from {url} is larger than {MAX_DOCUMENT_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    if status != reqwest::StatusCode::OK {
        let text = String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned();
        return Err(format!("{status}: {text}"));
    }
    Ok(body)
}

/// Where a mount's verification keys come from: configured keys (`jwt_validation_pubkeys`,
/// `pem_keys`) or a JWKS URL. Cheap to clone; build one per configuration and drop it when the
/// configuration is written.
#[derive(Debug, Clone)]
pub enum KeySet {
    Static(Arc<Vec<PublicKey>>),
    Remote(Arc<RemoteKeySet>),
}

impl KeySet {
    /// Verifies `jws`'s algorithm and signature with these keys; the error texts differ as in
    /// Vault (static: "no known key ...", JWKS: "failed to verify id token signature").
    pub async fn verify(&self, jws: &Jws, allowed: &[Algorithm], now: Instant) -> Result<(), JwtError> {
        match self {
            KeySet::Static(keys) => verify_signature(jws, keys, allowed),
            KeySet::Remote(remote) => remote.verify(jws, allowed, now).await,
        }
    }
}

/// The cached keys and how many successful fetches produced them.
#[derive(Default)]
struct Cache {
    keys: Arc<Vec<PublicKey>>,
    generation: u64,
}

/// The fetch side, held (across the request) by the one caller fetching.
#[derive(Default)]
struct FetchState {
    last_attempt: Option<Instant>,
    last_error: Option<String>,
}

/// A JWKS URL's keys, fetched on first use and refetched on rotation (see the module docs).
pub struct RemoteKeySet {
    client: reqwest::Client,
    url: String,
    refetch_interval: Duration,
    /// Never held across an await.
    cache: Mutex<Cache>,
    /// Held across the fetch: callers that need a fetch queue here and reuse its result.
    fetch: tokio::sync::Mutex<FetchState>,
}

impl std::fmt::Debug for RemoteKeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteKeySet")
            .field("url", &self.url)
            .field("refetch_interval", &self.refetch_interval)
            .finish()
    }
}

impl RemoteKeySet {
    /// A key set for `jwks_url`; nothing is fetched until a login needs keys.
    pub fn new(
        client: reqwest::Client,
        jwks_url: impl Into<String>,
        refetch_interval: Duration,
    ) -> RemoteKeySet {
        RemoteKeySet {
            client,
            url: jwks_url.into(),
            refetch_interval,
            cache: Mutex::new(Cache::default()),
            fetch: tokio::sync::Mutex::new(FetchState::default()),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The keys to verify `jws` with: the cache, refetched first (rate limit permitting) when it
    /// is empty or does not hold the token's `kid`. Errors only when no key was ever fetched.
    pub async fn keys_for(&self, jws: &Jws, now: Instant) -> Result<Arc<Vec<PublicKey>>, JwtError> {
        let (mut keys, generation) = self.snapshot();
        if needs_fetch(&keys, jws) {
            keys = self.refresh(generation, now).await.0;
        }
        if keys.is_empty() {
            return Err(self.unavailable().await);
        }
        Ok(keys)
    }

    /// Verifies `jws`'s algorithm and signature: the algorithm first (no fetch for `none` or
    /// HMAC), then the cached keys, then, if they fail, the keys of one permitted refetch.
    pub async fn verify(&self, jws: &Jws, allowed: &[Algorithm], now: Instant) -> Result<(), JwtError> {
        check_algorithm(jws, allowed)?;
        let (mut keys, mut generation) = self.snapshot();
        let mut refreshed = false;
        if needs_fetch(&keys, jws) {
            (keys, generation) = self.refresh(generation, now).await;
            refreshed = true;
        }
        if keys.is_empty() {
            return Err(self.unavailable().await);
        }
        match verify_signature(jws, &keys, allowed) {
            Ok(()) => return Ok(()),
            Err(JwtError::NoKeyVerified) => {}
            Err(other) => return Err(other),
        }
        if !refreshed {
            let (fresh, fresh_generation) = self.refresh(generation, now).await;
            if fresh_generation != generation && verify_signature(jws, &fresh, allowed).is_ok() {
                return Ok(());
            }
        }
        Err(JwtError::RemoteNoKeyVerified)
    }

    fn snapshot(&self) -> (Arc<Vec<PublicKey>>, u64) {
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        (Arc::clone(&cache.keys), cache.generation)
    }

    /// The keys after at most one fetch: none if another caller fetched since `seen` (its keys
    /// are returned) or if the last attempt is younger than the refetch interval.
    async fn refresh(&self, seen: u64, now: Instant) -> (Arc<Vec<PublicKey>>, u64) {
        let mut state = self.fetch.lock().await;
        let current = self.snapshot();
        if current.1 != seen {
            return current;
        }
        if state.last_attempt.is_some_and(|last| now.saturating_duration_since(last) < self.refetch_interval)
        {
            return current;
        }
        state.last_attempt = Some(now);
        match fetch_jwks(&self.client, &self.url).await {
            Ok(keys) => {
                tracing::debug!(jwks.url = %self.url, jwks.keys = keys.len(), "JWKS fetched");
                state.last_error = None;
                let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
                cache.keys = Arc::new(keys);
                cache.generation += 1;
                (Arc::clone(&cache.keys), cache.generation)
            }
            Err(error) => {
                tracing::warn!(jwks.url = %self.url, %error, "JWKS fetch failed; keeping the cached keys");
                state.last_error = Some(error);
                current
            }
        }
    }

    async fn unavailable(&self) -> JwtError {
        let state = self.fetch.lock().await;
        let cause = state.last_error.clone().unwrap_or_else(|| "no keys fetched yet".into());
        JwtError::KeysUnavailable(format!("oidc: get keys failed: {cause}"))
    }
}

/// Whether the cache cannot serve `jws` as it stands: empty, or missing the token's `kid`.
fn needs_fetch(keys: &[PublicKey], jws: &Jws) -> bool {
    match jws.kid() {
        _ if keys.is_empty() => true,
        Some(kid) => !keys.iter().any(|k| k.kid() == Some(kid)),
        None => false,
    }
}

#[cfg(test)]
mod tests;
