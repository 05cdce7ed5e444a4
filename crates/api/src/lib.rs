//! keymint-api: Vault's HTTP API over keymint's engine.
//!
//! Every path lives under `/v1/`. A request is turned into a logical operation (read, list,
//! update, delete) with its parameters coerced the way Vault's framework does, authenticated,
//! routed to `sys/` or to the mount with the longest matching prefix, and answered in Vault's
//! envelope. Handlers stay thin: parse, call the engine, shape the reply.

pub mod fields;

mod audit;
mod auth_methods;
mod aws;
mod dispatch;
mod envelope;
mod error;
pub mod forwarded;
pub mod health;
mod help;
mod leases;
mod metrics;
mod openapi;
mod policies;
mod request;
mod routes;
mod static_roles;
mod sys;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;
#[cfg(test)]
mod tests;
pub mod tls;
mod token_roles;
mod tokens;
mod wrapping;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use keymint_auth::policy::Acl;
use keymint_engine::Engine;
use keymint_lease::{LeaseManager, RetryPolicy};
use keymint_store::Store;
use keymint_store::cache::Cache;
use keymint_store::mounts::{self, MountRow};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::trace::TraceLayer;

pub use envelope::Reply;
pub use error::{ApiError, ApiResult};

/// The version keymint reports in `sys/health`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Shared state of every request.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    /// Storage: mounts, config, roles, leases, tokens.
    store: Store,
    /// The AWS engine, with its per-mount client cache.
    engine: Engine,
    /// Lease lookup, renewal, revocation and the expiry worker.
    leases: Arc<LeaseManager>,
    /// Cluster name reported by `sys/health` and `sys/seal-status`.
    cluster_name: String,
    /// The installation id: every replica on one database reports the same one.
    cluster_id: String,
    /// Audit devices.
    audit: audit::AuditBroker,
    /// The mount table, as requests read it (see `keymint_store::cache`).
    mounts: Cache<(), Arc<Vec<MountRow>>>,
    /// ACLs by the list of policy names they are made of.
    acls: Cache<Vec<String>, Arc<Acl>>,
    /// The least time between two fetches of one JWT issuer's keys.
    jwks_refetch_interval: Duration,
    /// How long one `/v1` request may take, body included, before it is cut with a 504.
    request_timeout: Duration,
}

/// The default of `[listener] request_timeout`. Longer than Vault's `max_request_duration`
/// (90 s): a request the AWS pacing queued for up to `max_queue_wait` (120 s by default) must
/// still have its `retry_deadline` before the limit.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(150);

impl AppState {
    /// The state of a server on `store`; its clock (`Store::with_clock`) is the one the API,
    /// the engine and the lease manager all read.
    pub fn new(store: Store) -> Self {
        Self::with_policy(store, RetryPolicy::default())
    }

    /// State whose expiry worker follows `policy`, with IAM's eventual-consistency window.
    pub fn with_policy(store: Store, policy: RetryPolicy) -> Self {
        Self::with_timing(store, policy, keymint_engine::revoke::DEFAULT_CONSISTENCY_WINDOW)
    }

    pub fn with_timing(store: Store, policy: RetryPolicy, consistency_window: Duration) -> Self {
        let engine = Engine::new(store.clone())
            .with_consistency_window(consistency_window)
            .with_claim_timeout(policy.claim_for);
        Self::with_engine(store, engine, policy)
    }

    /// State over an engine built by the caller (tests give it a fake AWS).
    pub fn with_engine(store: Store, engine: Engine, policy: RetryPolicy) -> Self {
        // Counters recorded from here on reach sys/metrics.
        metrics::install();
        let leases = LeaseManager::new(store.clone(), Arc::new(engine.clone()), policy);
        let cluster_id = store.installation_id().to_string();
        let audit = audit::AuditBroker::new(store.audit_hasher().clone(), None);
        AppState {
            inner: Arc::new(Inner {
                store,
                engine,
                leases,
                cluster_name: "keymint".into(),
                cluster_id,
                audit,
                mounts: Cache::new(1),
                acls: Cache::new(10_000),
                jwks_refetch_interval: keymint_login::jwt::DEFAULT_REFETCH_INTERVAL,
                request_timeout: DEFAULT_REQUEST_TIMEOUT,
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub fn leases(&self) -> &Arc<LeaseManager> {
        &self.inner.leases
    }

    /// Now, by the store's clock: token and lease expiry are compared with it.
    pub(crate) fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.inner.store.clock().now()
    }

    /// [`AppState::now`] in milliseconds since the epoch, the unit of stored times.
    pub(crate) fn now_ms(&self) -> i64 {
        self.inner.store.clock().now_ms()
    }

    pub(crate) fn audit(&self) -> &audit::AuditBroker {
        &self.inner.audit
    }

    /// Every mount, from the request's cached generation when there is one.
    pub(crate) async fn mounts(&self) -> Result<Arc<Vec<MountRow>>, keymint_store::StoreError> {
        self.inner
            .mounts
            .get_or_load((), || async { Ok(Arc::new(mounts::list(self.store().pool()).await?)) })
            .await
    }

    /// The ACL of a token's policies, from the request's cached generation when there is one.
    pub(crate) async fn acl(&self, policies: &[String]) -> Result<Arc<Acl>, keymint_auth::AuthError> {
        self.inner
            .acls
            .get_or_load(policies.to_vec(), || async {
                Ok(Arc::new(keymint_auth::acl_for(self.store(), policies).await?))
            })
            .await
    }

    /// Writes audit records to `file_path` (a file, or `stdout`) besides any device enabled
    /// through `sys/audit`. Call before serving.
    pub fn with_audit_file(self, file_path: Option<String>) -> Self {
        match Arc::try_unwrap(self.inner) {
            Ok(mut inner) => {
                inner.audit = audit::AuditBroker::new(inner.store.audit_hasher().clone(), file_path);
                AppState { inner: Arc::new(inner) }
            }
            // Shared already: keep it as it is (only ever called right after construction).
            Err(inner) => AppState { inner },
        }
    }

    /// Fetches a JWT issuer's keys at most once per `interval` (an unknown key in a token asks
    /// for a fetch). Call before serving.
    pub fn with_jwks_refetch_interval(self, interval: Duration) -> Self {
        match Arc::try_unwrap(self.inner) {
            Ok(mut inner) => {
                inner.jwks_refetch_interval = interval;
                AppState { inner: Arc::new(inner) }
            }
            Err(inner) => AppState { inner },
        }
    }

    pub(crate) fn jwks_refetch_interval(&self) -> Duration {
        self.inner.jwks_refetch_interval
    }

    /// Cuts each `/v1` request that takes longer than `limit` (body upload included) with a
    /// 504 in Vault's error shape. What it was doing stops at its next await point: see
    /// docs/load-balancers.md for what that leaves behind. Call before serving.
    pub fn with_request_timeout(self, limit: Duration) -> Self {
        match Arc::try_unwrap(self.inner) {
            Ok(mut inner) => {
                inner.request_timeout = limit;
                AppState { inner: Arc::new(inner) }
            }
            Err(inner) => AppState { inner },
        }
    }

    pub(crate) fn request_timeout(&self) -> Duration {
        self.inner.request_timeout
    }

    /// Opens the audit devices; a configured device that cannot be opened is an error.
    pub async fn start_audit(&self) -> Result<(), String> {
        self.audit().reload(self).await.map_err(|e| e.to_string())
    }
}

/// The whole HTTP API.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/{*path}", axum::routing::any(request::dispatch))
        .fallback(request::not_found)
        .layer(DefaultBodyLimit::max(1024 * 1024))
        // The time limit is kept by `request::dispatch` itself, so a request cut by it is
        // answered in Vault's error shape with its request id, logged and counted.
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Makes sure the `aws/` mount exists (dev mode starts with it, like `vault server -dev`).
pub async fn ensure_default_mount(state: &AppState) -> ApiResult<()> {
    sys::ensure_mount(state, "aws/", "aws", "AWS credentials").await
}

/// Starts the background work of a server (the lease expiry worker, the intent sweeper, the
/// revocation of expired tokens and scheduled key rotation) on `tasks`; it stops when
/// `shutdown` fires, leaving unfinished claims to lapse and be retried.
pub fn spawn_background(state: &AppState, tasks: &TaskTracker, shutdown: CancellationToken) {
    let leases = state.leases().clone();
    tasks.spawn(leases.run_expiry(shutdown.clone()));
    let leases = state.leases().clone();
    tasks.spawn(leases.run_sweeper(shutdown.clone()));
    tasks.spawn(state.engine().clone().run_rotations(shutdown.clone()));
    tasks.spawn(tokens::run_token_expiry(state.clone(), shutdown.clone()));
    tasks.spawn(metrics::run_upkeep(shutdown));
}

/// Serves `app` (the API, with the web UI merged in when it is enabled) over TLS on `listener`
/// until `shutdown` fires, then drains in-flight requests.
pub async fn serve_tls(
    listener: tls::TlsListener,
    app: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = app.into_make_service_with_connect_info::<tls::Peer>();
    axum::serve(listener, app).with_graceful_shutdown(async move { shutdown.cancelled().await }).await
}

/// Serves `app` on `listener` until `shutdown` fires, then drains in-flight requests.
pub async fn serve(listener: TcpListener, app: Router, shutdown: CancellationToken) -> std::io::Result<()> {
    let app = app.into_make_service_with_connect_info::<tls::Peer>();
    axum::serve(listener, app).with_graceful_shutdown(async move { shutdown.cancelled().await }).await
}
