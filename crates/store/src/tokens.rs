//! Client tokens, stored only as keyed hashes, in a tree: a token created by another is its
//! child and is revoked with it unless it is an orphan.

use sqlx::{Any, Executor, FromRow};

use crate::Result;

#[derive(Debug, Clone, Default, FromRow)]
pub struct TokenRow {
    /// HMAC-SHA256 of the token (see `TokenHasher`).
    pub hash: String,
    pub accessor: String,
    /// JSON array of policy names.
    pub policies: String,
    pub display_name: String,
    /// JSON object of metadata.
    pub meta: String,
    pub created_at: i64,
    pub expire_at: Option<i64>,
    /// Accessor of the parent token; `None` for orphans and root tokens.
    pub parent: Option<String>,
    /// 0 or 1.
    pub orphan: i64,
    /// The TTL given at creation, seconds (0: no expiry).
    pub ttl: i64,
    pub explicit_max_ttl: i64,
    pub period: i64,
    /// 0: unlimited; n > 0: uses left; -1: used up.
    pub num_uses: i64,
    /// 0 or 1.
    pub renewable: i64,
    /// Where it was created, e.g. `auth/token/create`.
    pub path: String,
    pub last_renewal: Option<i64>,
    /// The token role it was created against (`auth/token/create/<role>`).
    pub role: Option<String>,
    /// JSON array of the CIDRs it may be used from; `[]`: anywhere.
    pub bound_cidrs: String,
    /// The id of the auth mount whose login issued it (disabling the mount revokes it).
    pub auth_mount: Option<String>,
    /// The auth method's role it logged in with: renewals follow the role's TTLs.
    pub auth_role: Option<String>,
    /// The maximum TTL its login settled on, seconds from creation (0: the token store's).
    pub max_ttl: i64,
}

const COLUMNS: &str = "hash, accessor, policies, display_name, meta, created_at, expire_at, parent, orphan, \
     ttl, explicit_max_ttl, period, num_uses, renewable, path, last_renewal, role, bound_cidrs, \
     auth_mount, auth_role, max_ttl";

/// Inserts a token; with `if_absent`, a token with the same hash is left as it is (the dev
/// root token given again at the next start is the same token).
pub async fn insert<'e>(
    exec: impl Executor<'e, Database = Any>,
    row: &TokenRow,
    if_absent: bool,
) -> Result<()> {
    let conflict = if if_absent { " ON CONFLICT (hash) DO NOTHING" } else { "" };
    sqlx::query(&format!(
        "INSERT INTO tokens ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
         $19, $20, $21){conflict}"
    ))
    .bind(&row.hash)
    .bind(&row.accessor)
    .bind(&row.policies)
    .bind(&row.display_name)
    .bind(&row.meta)
    .bind(row.created_at)
    .bind(row.expire_at)
    .bind(row.parent.as_deref())
    .bind(row.orphan)
    .bind(row.ttl)
    .bind(row.explicit_max_ttl)
    .bind(row.period)
    .bind(row.num_uses)
    .bind(row.renewable)
    .bind(&row.path)
    .bind(row.last_renewal)
    .bind(row.role.as_deref())
    .bind(&row.bound_cidrs)
    .bind(row.auth_mount.as_deref())
    .bind(row.auth_role.as_deref())
    .bind(row.max_ttl)
    .execute(exec)
    .await?;
    Ok(())
}

/// Kept for callers that only ever add the dev root token.
pub async fn insert_if_absent<'e>(exec: impl Executor<'e, Database = Any>, row: &TokenRow) -> Result<()> {
    insert(exec, row, true).await
}

pub async fn get_by_hash<'e>(
    exec: impl Executor<'e, Database = Any>,
    hash: &str,
) -> Result<Option<TokenRow>> {
    Ok(sqlx::query_as::<_, TokenRow>(&format!("SELECT {COLUMNS} FROM tokens WHERE hash = $1"))
        .bind(hash)
        .fetch_optional(exec)
        .await?)
}

/// A token row with the configuration generation read in the same statement (see
/// [`crate::cache`]).
#[derive(Debug, Clone, FromRow)]
pub struct TokenAtGeneration {
    #[sqlx(flatten)]
    pub row: TokenRow,
    pub generation: i64,
}

/// [`get_by_hash`] and the configuration generation, in one round trip.
pub async fn get_with_generation<'e>(
    exec: impl Executor<'e, Database = Any>,
    hash: &str,
) -> Result<Option<TokenAtGeneration>> {
    Ok(sqlx::query_as::<_, TokenAtGeneration>(&format!(
        "SELECT {COLUMNS}, (SELECT generation FROM config_generation WHERE id = 1) AS generation \
         FROM tokens WHERE hash = $1"
    ))
    .bind(hash)
    .fetch_optional(exec)
    .await?)
}

pub async fn get_by_accessor<'e>(
    exec: impl Executor<'e, Database = Any>,
    accessor: &str,
) -> Result<Option<TokenRow>> {
    Ok(sqlx::query_as::<_, TokenRow>(&format!("SELECT {COLUMNS} FROM tokens WHERE accessor = $1"))
        .bind(accessor)
        .fetch_optional(exec)
        .await?)
}

/// Accessors of the direct children of a token.
pub async fn children<'e>(exec: impl Executor<'e, Database = Any>, parent: &str) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar::<_, String>("SELECT accessor FROM tokens WHERE parent = $1 ORDER BY accessor")
        .bind(parent)
        .fetch_all(exec)
        .await?)
}

/// Makes the children of a token orphans (`revoke-orphan`).
pub async fn orphan_children<'e>(exec: impl Executor<'e, Database = Any>, parent: &str) -> Result<u64> {
    let done = sqlx::query("UPDATE tokens SET parent = NULL, orphan = 1 WHERE parent = $1")
        .bind(parent)
        .execute(exec)
        .await?;
    Ok(done.rows_affected())
}

pub async fn delete_by_accessor<'e>(exec: impl Executor<'e, Database = Any>, accessor: &str) -> Result<bool> {
    let done = sqlx::query("DELETE FROM tokens WHERE accessor = $1").bind(accessor).execute(exec).await?;
    Ok(done.rows_affected() == 1)
}

/// Spends one use of a use-limited token. Returns the uses left after this one (`Some(-1)`:
/// this was the last), or `None` when the token has no limit or none left (the caller tells
/// those apart by the row it already read).
pub async fn spend_use<'e>(exec: impl Executor<'e, Database = Any>, hash: &str) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar::<_, i64>(
        "UPDATE tokens SET num_uses = CASE WHEN num_uses = 1 THEN -1 ELSE num_uses - 1 END \
         WHERE hash = $1 AND num_uses > 0 RETURNING num_uses",
    )
    .bind(hash)
    .fetch_optional(exec)
    .await?)
}

/// Sets a token's expiry (renewal).
pub async fn set_expiry<'e>(
    exec: impl Executor<'e, Database = Any>,
    accessor: &str,
    expire_at: i64,
    now_ms: i64,
) -> Result<()> {
    sqlx::query("UPDATE tokens SET expire_at = $1, last_renewal = $2 WHERE accessor = $3")
        .bind(expire_at)
        .bind(now_ms)
        .bind(accessor)
        .execute(exec)
        .await?;
    Ok(())
}

/// Accessors of tokens expired by `now_ms`, or used up, at most `limit`.
pub async fn expired<'e>(
    exec: impl Executor<'e, Database = Any>,
    now_ms: i64,
    limit: i64,
) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar::<_, String>(
        "SELECT accessor FROM tokens WHERE (expire_at IS NOT NULL AND expire_at <= $1) OR num_uses = -1 LIMIT $2",
    )
    .bind(now_ms)
    .bind(limit)
    .fetch_all(exec)
    .await?)
}

/// Accessors of the tokens an auth mount's logins issued.
pub async fn issued_by_mount<'e>(
    exec: impl Executor<'e, Database = Any>,
    mount_id: &str,
) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar::<_, String>("SELECT accessor FROM tokens WHERE auth_mount = $1 ORDER BY accessor")
        .bind(mount_id)
        .fetch_all(exec)
        .await?)
}

pub async fn count<'e>(exec: impl Executor<'e, Database = Any>) -> Result<i64> {
    Ok(sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM tokens").fetch_one(exec).await?)
}

/// A stored ACL policy.
#[derive(Debug, Clone, FromRow)]
pub struct PolicyRow {
    pub name: String,
    pub body: String,
    pub updated_at: i64,
}

pub async fn put_policy<'e>(
    exec: impl Executor<'e, Database = Any>,
    name: &str,
    body: &str,
    now_ms: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO policies (name, body, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
    )
    .bind(name)
    .bind(body)
    .bind(now_ms)
    .execute(exec)
    .await?;
    Ok(())
}

pub async fn get_policy<'e>(
    exec: impl Executor<'e, Database = Any>,
    name: &str,
) -> Result<Option<PolicyRow>> {
    Ok(sqlx::query_as::<_, PolicyRow>("SELECT name, body, updated_at FROM policies WHERE name = $1")
        .bind(name)
        .fetch_optional(exec)
        .await?)
}

pub async fn delete_policy<'e>(exec: impl Executor<'e, Database = Any>, name: &str) -> Result<bool> {
    let done = sqlx::query("DELETE FROM policies WHERE name = $1").bind(name).execute(exec).await?;
    Ok(done.rows_affected() == 1)
}

pub async fn policy_names<'e>(exec: impl Executor<'e, Database = Any>) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar::<_, String>("SELECT name FROM policies ORDER BY name").fetch_all(exec).await?)
}

/// Every token accessor, sorted (`LIST auth/token/accessors`).
pub async fn accessors<'e>(exec: impl Executor<'e, Database = Any>) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar::<_, String>("SELECT accessor FROM tokens ORDER BY accessor")
        .fetch_all(exec)
        .await?)
}
