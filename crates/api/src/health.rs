//! Liveness and readiness, for Kubernetes probes and load balancers that want the two apart.
//!
//! Vault's `sys/health` stays as Vault defines it. Kubernetes needs two different questions,
//! which one endpoint cannot answer: is the process worth keeping (liveness: a restart cures a
//! wedged process, never a database outage), and should requests be sent to it now (readiness:
//! only while its database answers). Separate paths, not a query parameter on `sys/health`,
//! so a probe cannot be pointed at the wrong meaning by a missing `?`, and so the liveness path
//! provably touches no database (docs/load-balancers.md).

use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::AppState;
use crate::error::ApiError;
use crate::request::{LogicalRequest, Operation};

/// How long the readiness check waits for the database: under a probe's usual 3 s timeout,
/// and well over a healthy round trip.
pub const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// `sys/live`: the process answers HTTP. It reads nothing, so a database outage never makes
/// Kubernetes restart replicas that would come back to the same outage.
pub(crate) fn live(req: &LogicalRequest) -> Response {
    if req.op == Operation::Head {
        return StatusCode::OK.into_response();
    }
    (StatusCode::OK, axum::Json(json!({ "alive": true }))).into_response()
}

/// `sys/ready`: 200 when the database answers a `SELECT 1` within [`READY_TIMEOUT`], else 503
/// in Vault's error shape (the 5xx body carries the request id).
pub(crate) async fn ready(state: &AppState, req: &LogicalRequest) -> Response {
    if let Err(why) = database_answers(state).await {
        tracing::warn!(reason = %why, "not ready: the database does not answer");
        return ApiError::Unavailable("not ready: the database does not answer".into()).into_response();
    }
    if req.op == Operation::Head {
        return StatusCode::OK.into_response();
    }
    (StatusCode::OK, axum::Json(json!({ "ready": true }))).into_response()
}

/// One bounded round trip to the database; the reason when it fails.
pub(crate) async fn database_answers(state: &AppState) -> Result<(), String> {
    match tokio::time::timeout(READY_TIMEOUT, state.store().ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {}s", READY_TIMEOUT.as_secs())),
    }
}
