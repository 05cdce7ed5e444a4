//! `keymint operator backup|restore`: a consistent copy of the whole store in one file, and
//! its load into a store of either backend.
//!
//! The file is JSON lines: a header (format version, schema version, installation id, when),
//! then for each table a line naming its columns followed by one array per row, then a trailer
//! with the row count and the SHA-256 of every line before it. Secrets stay sealed as they are
//! in the database (a restore needs the same seal key) and tokens stay keyed hashes, but the
//! file is still as sensitive as the database: it is written with mode 0600.
//!
//! The copy is read in one transaction: a snapshot on SQLite (WAL), `REPEATABLE READ` on
//! PostgreSQL, so servers keep running while it is taken. A restore checks the whole file
//! before it changes anything, then replaces every table in one transaction and leaves
//! automatic revocation paused (see [`crate::revocation`]).

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use futures_util::TryStreamExt;
use ring::digest;
use serde_json::{Value, json};
use sqlx::{Any, Row};

use crate::{Backend, Store, StoreError, revocation};

/// The tables a backup holds, parents before children. `config_generation` (a cache counter
/// the triggers move) and sqlx's `_sqlx_migrations` are not data.
pub const TABLES: &[&str] = &[
    "meta",
    "seal_keys",
    "mounts",
    "auth_entries",
    "approle_secret_ids",
    "aws_config",
    "aws_roles",
    "aws_static_roles",
    "aws_key_rotations",
    "policies",
    "token_roles",
    "tokens",
    "wrapped_responses",
    "audit_devices",
    "leases",
    "wal_intents",
];

/// Tables that exist in the schema but are deliberately not backed up (web UI sessions: a
/// restored store starts with nobody signed in; job claims and AWS pacing slices belong to
/// running replicas).
pub const NOT_BACKED_UP: &[&str] = &[
    "config_generation",
    "_sqlx_migrations",
    "ui_sessions",
    "job_claims",
    "aws_pace_fleet",
    "aws_pace_slices",
];

const FORMAT: u64 = 1;
/// Rows per INSERT on restore; also kept under both backends' limits on bound parameters.
const BATCH_ROWS: usize = 500;
const MAX_PARAMS: usize = 30_000;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("not a keymint backup, or damaged: {0}")]
    Format(String),
    #[error(
        "the backup has schema version {backup}, this keymint has {here}: restore with the keymint \
         version that took the backup, then upgrade"
    )]
    Schema { backup: i64, here: i64 },
    #[error("the backup was sealed with another seal key than the one configured here")]
    WrongKey,
    #[error("the backup is of a dev-mode store; it cannot be restored into a production store")]
    DevBackup,
    #[error(
        "the target store is not empty ({0}); restore into a new database, or pass --force to \
         replace everything in it"
    )]
    NotEmpty(String),
}

impl From<sqlx::Error> for BackupError {
    fn from(e: sqlx::Error) -> Self {
        BackupError::Store(StoreError::Database(e))
    }
}

/// What a backup or restore covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub rows: u64,
    pub leases: u64,
    pub schema_version: i64,
    /// When the backup was taken (RFC 3339).
    pub taken_at: String,
    pub installation_id: String,
}

/// How a column's values are written: from the column's declared type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    Text,
    Blob,
}

fn kind_of(declared: &str) -> Result<Kind, BackupError> {
    let t = declared.to_ascii_lowercase();
    if t.contains("int") {
        Ok(Kind::Int)
    } else if t.contains("char") || t.contains("text") {
        Ok(Kind::Text)
    } else if t.contains("blob") || t.contains("bytea") {
        Ok(Kind::Blob)
    } else {
        Err(BackupError::Format(format!("column type {declared:?} is not one keymint uses")))
    }
}

/// The columns of `table` in the open store, in order, with their kinds.
async fn columns(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    table: &str,
) -> Result<Vec<(String, Kind)>, BackupError> {
    let rows: Vec<(String, String)> = match backend {
        Backend::Sqlite => {
            sqlx::query_as("SELECT name, type FROM pragma_table_info($1) ORDER BY cid")
                .bind(table)
                .fetch_all(&mut *conn)
                .await?
        }
        Backend::Postgres => {
            sqlx::query_as(
                "SELECT column_name::text, data_type::text FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
            )
            .bind(table)
            .fetch_all(&mut *conn)
            .await?
        }
    };
    if rows.is_empty() {
        return Err(BackupError::Format(format!("table {table} does not exist in this store")));
    }
    rows.into_iter().map(|(name, t)| Ok((name, kind_of(&t)?))).collect()
}

/// Every table in the store's schema.
pub async fn schema_tables(store: &Store) -> Result<Vec<String>, BackupError> {
    let sql = match store.backend() {
        Backend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
        }
        Backend::Postgres => {
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name"
        }
    };
    Ok(sqlx::query_scalar::<_, String>(sql).fetch_all(store.pool()).await?)
}

async fn schema_version(conn: &mut sqlx::AnyConnection) -> Result<i64, BackupError> {
    Ok(sqlx::query_scalar::<_, i64>("SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success")
        .fetch_one(&mut *conn)
        .await?)
}

/// Lines written with a running SHA-256.
struct Lines<W: Write> {
    out: W,
    hash: digest::Context,
}

impl<W: Write> Lines<W> {
    fn line(&mut self, value: &Value) -> Result<(), BackupError> {
        let mut text = serde_json::to_string(value).map_err(|e| BackupError::Format(e.to_string()))?;
        text.push('\n');
        self.hash.update(text.as_bytes());
        self.out.write_all(text.as_bytes())?;
        Ok(())
    }
}

/// Writes a consistent copy of the store to `path` (created with mode 0600; an existing file
/// is replaced only once the copy is complete).
pub async fn backup(store: &Store, path: &Path) -> Result<Summary, BackupError> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let partial = tempfile::Builder::new().prefix(".keymint-backup-").tempfile_in(dir)?;
    let mut lines = Lines {
        out: BufWriter::new(partial.as_file().try_clone()?),
        hash: digest::Context::new(&digest::SHA256),
    };

    let mut tx = store.pool().begin().await?;
    if store.backend() == Backend::Postgres {
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *tx).await?;
    }
    let version = schema_version(&mut tx).await?;
    let taken_at = chrono::Utc::now();
    let taken = taken_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    lines.line(&json!({
        "keymint_backup": FORMAT,
        "taken_at": taken,
        "keymint_version": env!("CARGO_PKG_VERSION"),
        "backend": match store.backend() { Backend::Sqlite => "sqlite", Backend::Postgres => "postgres" },
        "schema_version": version,
        "installation_id": store.installation_id(),
    }))?;
    let (mut rows, mut leases) = (0u64, 0u64);
    for table in TABLES {
        let cols = columns(&mut tx, store.backend(), table).await?;
        let names: Vec<&str> = cols.iter().map(|(n, _)| n.as_str()).collect();
        lines.line(&json!({"table": table, "columns": names}))?;
        let sql = format!("SELECT {} FROM {table} ORDER BY 1", names.join(", "));
        let mut stream = sqlx::query(&sql).fetch(&mut *tx);
        while let Some(row) = stream.try_next().await? {
            let mut values = Vec::with_capacity(cols.len());
            for (i, (_, kind)) in cols.iter().enumerate() {
                values.push(match kind {
                    Kind::Int => json!(row.try_get::<Option<i64>, _>(i)?),
                    Kind::Text => json!(row.try_get::<Option<String>, _>(i)?),
                    Kind::Blob => match row.try_get::<Option<Vec<u8>>, _>(i)? {
                        Some(bytes) => json!({"base64": B64.encode(bytes)}),
                        None => Value::Null,
                    },
                });
            }
            lines.line(&Value::Array(values))?;
            rows += 1;
            if *table == "leases" {
                leases += 1;
            }
        }
    }
    tx.rollback().await?;
    let sha = hex::encode(lines.hash.clone().finish().as_ref());
    let Lines { mut out, .. } = lines;
    let trailer = json!({"end": {"rows": rows, "sha256": sha}}).to_string();
    out.write_all(trailer.as_bytes())?;
    out.write_all(b"\n")?;
    out.flush()?;
    drop(out);
    partial.as_file().sync_all()?;
    partial.persist(path).map_err(|e| BackupError::Io(e.error))?;
    Ok(Summary {
        rows,
        leases,
        schema_version: version,
        taken_at: taken,
        installation_id: store.installation_id().to_string(),
    })
}

/// One table's section of a backup.
struct Section {
    table: String,
    columns: Vec<String>,
    rows: Vec<Vec<Value>>,
}

/// One line of a backup file past its header.
enum Line {
    Table { table: String, columns: Vec<String> },
    Row(Vec<Value>),
}

/// Reads a backup file line by line: the header, then each table line and row through
/// `each`, then checks the trailer (checksum and row count).
fn read_backup(
    path: &Path,
    mut each: impl FnMut(usize, Line) -> Result<(), BackupError>,
) -> Result<Value, BackupError> {
    let file = std::fs::File::open(path)?;
    let mut hash = digest::Context::new(&digest::SHA256);
    let mut header: Option<Value> = None;
    let mut rows = 0u64;
    let mut width: Option<usize> = None;
    let mut trailer: Option<Value> = None;
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let (n, line) = (n + 1, line?);
        if trailer.is_some() {
            return Err(BackupError::Format(format!("line {n}: data after the end")));
        }
        let value: Value =
            serde_json::from_str(&line).map_err(|e| BackupError::Format(format!("line {n}: {e}")))?;
        if let Some(end) = value.get("end") {
            trailer = Some(end.clone());
            continue;
        }
        hash.update(line.as_bytes());
        hash.update(b"\n");
        if header.is_none() {
            if value.get("keymint_backup") != Some(&json!(FORMAT)) {
                return Err(BackupError::Format("the first line is not a keymint backup header".into()));
            }
            header = Some(value);
            continue;
        }
        match value {
            Value::Object(map) if map.contains_key("table") => {
                let table = map["table"].as_str().unwrap_or_default().to_string();
                if !TABLES.contains(&table.as_str()) {
                    return Err(BackupError::Format(format!("line {n}: unknown table {table:?}")));
                }
                let columns = map
                    .get("columns")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect::<Vec<_>>())
                    .ok_or_else(|| BackupError::Format(format!("line {n}: table {table} without columns")))?;
                width = Some(columns.len());
                each(n, Line::Table { table, columns })?;
            }
            Value::Array(values) => {
                let expected =
                    width.ok_or_else(|| BackupError::Format(format!("line {n}: a row before any table")))?;
                if values.len() != expected {
                    return Err(BackupError::Format(format!(
                        "line {n}: {} values for {expected} columns",
                        values.len()
                    )));
                }
                rows += 1;
                each(n, Line::Row(values))?;
            }
            _ => return Err(BackupError::Format(format!("line {n}: unexpected content"))),
        }
    }
    let header = header.ok_or_else(|| BackupError::Format("the file is empty".into()))?;
    let trailer = trailer.ok_or_else(|| BackupError::Format("the file is cut short (no end line)".into()))?;
    let sha = hex::encode(hash.finish().as_ref());
    if trailer.get("sha256").and_then(Value::as_str) != Some(sha.as_str()) {
        return Err(BackupError::Format(
            "the checksum does not match: the file was changed or damaged".into(),
        ));
    }
    if trailer.get("rows").and_then(Value::as_u64) != Some(rows) {
        return Err(BackupError::Format("the row count does not match".into()));
    }
    Ok(header)
}

/// The value of `key` in the backup's `meta` section.
fn meta_value<'a>(meta: &'a Section, key: &str) -> Option<&'a str> {
    let (k, v) =
        (meta.columns.iter().position(|c| c == "key")?, meta.columns.iter().position(|c| c == "value")?);
    meta.rows.iter().find(|r| r[k] == key).and_then(|r| r[v].as_str())
}

/// What is in the target store already, described for the refusal ("" when empty).
async fn contents(store: &Store) -> Result<String, BackupError> {
    let mut found = Vec::new();
    for table in ["mounts", "tokens", "leases", "policies"] {
        let n: i64 =
            sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}")).fetch_one(store.pool()).await?;
        if n > 0 {
            found.push(format!("{n} {table}"));
        }
    }
    Ok(found.join(", "))
}

/// Loads the backup at `path` into `store`, replacing its contents (refused unless the store is
/// empty or `force`), and pauses automatic revocation. The file is read twice: once to check
/// it whole (checksum, header, seal key, tables and columns), then to load it in one
/// transaction; nothing changes unless every row loads.
pub async fn restore(store: &Store, path: &Path, force: bool) -> Result<Summary, BackupError> {
    // Pass 1: the whole file checked; the meta rows and the table layout kept.
    let mut meta = Section { table: "meta".into(), columns: Vec::new(), rows: Vec::new() };
    let mut layout: Vec<(String, Vec<String>)> = Vec::new();
    let mut in_meta = false;
    let header = read_backup(path, |_, line| {
        match line {
            Line::Table { table, columns } => {
                in_meta = table == "meta";
                if in_meta {
                    meta.columns = columns.clone();
                }
                if layout.iter().any(|(t, _)| *t == table) {
                    return Err(BackupError::Format(format!("table {table} appears twice")));
                }
                layout.push((table, columns));
            }
            Line::Row(values) if in_meta => meta.rows.push(values),
            Line::Row(_) => {}
        }
        Ok(())
    })?;

    let mut conn = store.pool().acquire().await?;
    let here = schema_version(&mut conn).await?;
    let backup_version = header.get("schema_version").and_then(Value::as_i64).unwrap_or(-1);
    if backup_version != here {
        return Err(BackupError::Schema { backup: backup_version, here });
    }
    if meta_value(&meta, "dev_key").is_some() {
        return Err(BackupError::DevBackup);
    }
    let check = meta_value(&meta, "seal_check")
        .ok_or_else(|| BackupError::Format("the backup holds no seal check value".into()))?;
    if !crate::crypto::check_matches(store.seal(), check) {
        return Err(BackupError::WrongKey);
    }
    let installation_id = meta_value(&meta, "installation_id")
        .ok_or_else(|| BackupError::Format("the backup holds no installation id".into()))?
        .to_string();
    let found = contents(store).await?;
    if !found.is_empty() && !force {
        return Err(BackupError::NotEmpty(found));
    }
    // Column kinds come from this store's schema: the file's values must fit them.
    let mut kinds: Vec<Vec<Kind>> = Vec::new();
    for (table, names) in &layout {
        let cols = columns(&mut conn, store.backend(), table).await?;
        let mut table_kinds = Vec::new();
        for name in names {
            let kind = cols.iter().find(|(c, _)| c == name).map(|(_, k)| *k).ok_or_else(|| {
                BackupError::Format(format!("column {table}.{name} does not exist in this store"))
            })?;
            table_kinds.push(kind);
        }
        kinds.push(table_kinds);
    }
    drop(conn);

    // Pass 2: the rows, in batches, in one transaction. The file is read on a blocking thread
    // and handed over a bounded channel.
    let mut tx = store.pool().begin().await?;
    for table in TABLES.iter().rev() {
        sqlx::query(&format!("DELETE FROM {table}")).execute(&mut *tx).await?;
    }
    let (send, mut receive) = tokio::sync::mpsc::channel::<Line>(BATCH_ROWS * 4);
    let file = path.to_path_buf();
    let reader = tokio::task::spawn_blocking(move || {
        read_backup(&file, |_, line| {
            send.blocking_send(line).map_err(|_| BackupError::Format("the restore stopped".into()))
        })
    });
    let (mut rows, mut leases) = (0u64, 0u64);
    let mut current: Option<(Section, usize)> = None;
    let mut tables_seen = 0usize;
    let load = async {
        while let Some(line) = receive.recv().await {
            match line {
                Line::Table { table, columns } => {
                    if let Some((section, i)) = current.take() {
                        flush(&mut tx, &section, &kinds[i]).await?;
                    }
                    current = Some((Section { table, columns, rows: Vec::new() }, tables_seen));
                    tables_seen += 1;
                }
                Line::Row(values) => {
                    let Some((section, i)) = current.as_mut() else { continue };
                    rows += 1;
                    if section.table == "leases" {
                        leases += 1;
                    }
                    section.rows.push(values);
                    let per_batch = BATCH_ROWS.min((MAX_PARAMS / section.columns.len().max(1)).max(1));
                    if section.rows.len() >= per_batch {
                        flush(&mut tx, section, &kinds[*i]).await?;
                        section.rows.clear();
                    }
                }
            }
        }
        if let Some((section, i)) = current.take() {
            flush(&mut tx, &section, &kinds[i]).await?;
        }
        Ok::<(), BackupError>(())
    };
    let loaded = load.await;
    // Dropped so a reader blocked on a full channel after a failed load can finish.
    drop(receive);
    let read = reader.await.map_err(|e| BackupError::Format(format!("reading the backup: {e}")))?;
    loaded?;
    read?;
    let taken_at = header.get("taken_at").and_then(Value::as_str).unwrap_or("an unknown time").to_string();
    revocation::pause(
        &mut *tx,
        &revocation::Pause {
            since: chrono::Utc::now().timestamp_millis(),
            reason: format!("restored from a backup taken at {taken_at}"),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Summary { rows, leases, schema_version: here, taken_at, installation_id })
}

/// Inserts the rows gathered for `section`, if any.
async fn flush(
    tx: &mut sqlx::Transaction<'static, Any>,
    section: &Section,
    kinds: &[Kind],
) -> Result<(), BackupError> {
    if section.rows.is_empty() {
        return Ok(());
    }
    insert_batch(tx, section, kinds, &section.rows).await
}

async fn insert_batch(
    tx: &mut sqlx::Transaction<'static, Any>,
    section: &Section,
    kinds: &[Kind],
    batch: &[Vec<Value>],
) -> Result<(), BackupError> {
    let width = section.columns.len();
    let mut sql = format!("INSERT INTO {} ({}) VALUES ", section.table, section.columns.join(", "));
    for r in 0..batch.len() {
        if r > 0 {
            sql.push_str(", ");
        }
        let params: Vec<String> = (0..width).map(|c| format!("${}", r * width + c + 1)).collect();
        sql.push('(');
        sql.push_str(&params.join(", "));
        sql.push(')');
    }
    let mut query = sqlx::query(&sql);
    for row in batch {
        for ((value, kind), column) in row.iter().zip(kinds).zip(&section.columns) {
            let bad = || BackupError::Format(format!("{}.{column}: unexpected value {value}", section.table));
            query = match (kind, value) {
                (Kind::Int, Value::Null) => query.bind(None::<i64>),
                (Kind::Int, v) => query.bind(v.as_i64().ok_or_else(bad)?),
                (Kind::Text, Value::Null) => query.bind(None::<String>),
                (Kind::Text, Value::String(s)) => query.bind(s.clone()),
                (Kind::Blob, Value::Null) => query.bind(None::<Vec<u8>>),
                (Kind::Blob, v) => {
                    let text = v.get("base64").and_then(Value::as_str).ok_or_else(bad)?;
                    query.bind(B64.decode(text).map_err(|_| bad())?)
                }
                _ => return Err(bad()),
            };
        }
    }
    query.execute(&mut **tx).await?;
    Ok(())
}
