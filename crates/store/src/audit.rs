//! Audit devices enabled through `sys/audit`.

use sqlx::{Any, Executor, FromRow};

use crate::Result;

#[derive(Debug, Clone, FromRow)]
pub struct AuditDeviceRow {
    /// `file/`, with its trailing slash.
    pub path: String,
    pub device_type: String,
    pub description: String,
    /// JSON object, e.g. `{"file_path": "/var/log/keymint/audit.log"}`.
    pub options: String,
    pub created_at: i64,
}

pub async fn list<'e>(exec: impl Executor<'e, Database = Any>) -> Result<Vec<AuditDeviceRow>> {
    Ok(sqlx::query_as::<_, AuditDeviceRow>(
        "SELECT path, device_type, description, options, created_at FROM audit_devices ORDER BY path",
    )
    .fetch_all(exec)
    .await?)
}

/// Adds a device; false when the path is taken.
pub async fn insert<'e>(exec: impl Executor<'e, Database = Any>, row: &AuditDeviceRow) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO audit_devices (path, device_type, description, options, created_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (path) DO NOTHING",
    )
    .bind(&row.path)
    .bind(&row.device_type)
    .bind(&row.description)
    .bind(&row.options)
    .bind(row.created_at)
    .execute(exec)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn delete<'e>(exec: impl Executor<'e, Database = Any>, path: &str) -> Result<bool> {
    let done = sqlx::query("DELETE FROM audit_devices WHERE path = $1").bind(path).execute(exec).await?;
    Ok(done.rows_affected() == 1)
}
