//! The audit log: one JSON line per request and one per response on every enabled device,
//! with every string value of request and response data, and every token and accessor,
//! replaced by `hmac-sha256:<hex>` so the log holds no secret yet a known value can be matched
//! (`sys/audit-hash`). A request that no device could record is refused, as in Vault.
//!
//! Devices are enabled through `sys/audit/<path>` (stored, so every replica writes its own
//! copy) or by the config file's `[audit] file_path` (this process only).

use std::io::Write;
use std::sync::{Arc, Mutex, RwLock};

use keymint_store::audit::{self, AuditDeviceRow};
use keymint_store::crypto::TokenHasher;
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::envelope::Reply;
use crate::error::{ApiError, ApiResult};
use crate::request::{LogicalRequest, Operation};

enum Sink {
    Stdout,
    Discard,
    File(Mutex<std::fs::File>),
}

pub struct Device {
    path: String,
    kind: String,
    description: String,
    options: Map<String, Value>,
    /// Enabled by this process's configuration, not stored.
    local: bool,
    sink: Sink,
}

impl Device {
    fn open(
        path: &str,
        kind: &str,
        description: &str,
        options: Map<String, Value>,
        local: bool,
    ) -> Result<Device, String> {
        if kind != "file" {
            return Err(format!("unknown audit device type: {kind:?}"));
        }
        let file_path = options.get("file_path").and_then(Value::as_str).unwrap_or_default().to_string();
        let sink = match file_path.as_str() {
            "" => return Err("file_path is required".into()),
            "stdout" => Sink::Stdout,
            "discard" => Sink::Discard,
            file => {
                let mut open = std::fs::OpenOptions::new();
                open.create(true).append(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
                let f = open
                    .open(file)
                    .map_err(|e| format!("sanity check failed; unable to open {file:?} for writing: {e}"))?;
                Sink::File(Mutex::new(f))
            }
        };
        Ok(Device {
            path: path.to_string(),
            kind: kind.to_string(),
            description: description.to_string(),
            options,
            local,
            sink,
        })
    }

    fn write(&self, line: &[u8]) -> std::io::Result<()> {
        match &self.sink {
            Sink::Discard => Ok(()),
            Sink::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(line)?;
                out.flush()
            }
            Sink::File(f) => {
                let mut f = f.lock().unwrap_or_else(|p| p.into_inner());
                f.write_all(line)?;
                f.flush()
            }
        }
    }
}

/// The devices enabled when a request arrived: both of its records go to them, so enabling
/// or disabling a device is itself recorded where it was asked for.
pub type Devices = Arc<Vec<Arc<Device>>>;

/// The enabled devices and the key their hashes are made with.
pub struct AuditBroker {
    devices: RwLock<Devices>,
    hasher: TokenHasher,
    /// `[audit] file_path` of the config file, if any.
    configured: Option<String>,
}

impl AuditBroker {
    pub fn new(hasher: TokenHasher, configured: Option<String>) -> Self {
        AuditBroker { devices: RwLock::new(Arc::new(Vec::new())), hasher, configured }
    }

    /// Re-reads the stored devices (another replica may have changed them), keeping open
    /// files of devices that did not change.
    pub async fn reload(&self, state: &AppState) -> ApiResult<()> {
        let rows = audit::list(state.store().pool()).await?;
        let mut fresh: Vec<Arc<Device>> = Vec::new();
        if let Some(file) = &self.configured {
            let mut options = Map::new();
            options.insert("file_path".into(), json!(file));
            match self.take_same("file/", "file", &options) {
                Some(d) => fresh.push(d),
                None => fresh.push(Arc::new(
                    Device::open("file/", "file", "from the configuration file", options, true)
                        .map_err(|public| ApiError::Internal { public })?,
                )),
            }
        }
        for row in rows {
            if fresh.iter().any(|d| d.path == row.path) {
                continue;
            }
            let options: Map<String, Value> = serde_json::from_str(&row.options).unwrap_or_default();
            let device = match self.take_same(&row.path, &row.device_type, &options) {
                Some(d) => d,
                None => match Device::open(&row.path, &row.device_type, &row.description, options, false) {
                    Ok(d) => Arc::new(d),
                    Err(e) => {
                        // Keep it, writing nowhere: with no other device, requests are refused.
                        tracing::error!(audit.path = %row.path, error = %e, "audit device cannot be opened");
                        Arc::new(Device {
                            path: row.path.clone(),
                            kind: row.device_type.clone(),
                            description: row.description.clone(),
                            options: Map::new(),
                            local: false,
                            sink: Sink::File(Mutex::new(unwritable()?)),
                        })
                    }
                },
            };
            fresh.push(device);
        }
        *self.devices.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(fresh);
        Ok(())
    }

    /// The open device with this configuration, if there is one: its file stays open.
    fn take_same(&self, path: &str, kind: &str, options: &Map<String, Value>) -> Option<Arc<Device>> {
        let devices = self.snapshot();
        devices.iter().find(|d| d.path == path && d.kind == kind && &d.options == options).cloned()
    }

    /// The devices enabled now.
    pub fn snapshot(&self) -> Devices {
        self.devices.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// `hmac-sha256:<hex>` of a value.
    pub fn hash(&self, value: &str) -> String {
        format!("hmac-sha256:{}", self.hasher.hash(value))
    }

    /// Writes one record to every device of `devices`; fails only when there are devices and
    /// none took it.
    pub fn log(&self, devices: &Devices, record: &Value) -> Result<(), ApiError> {
        if devices.is_empty() {
            return Ok(());
        }
        let mut line = serde_json::to_vec(record).unwrap_or_default();
        line.push(b'\n');
        let mut written = 0;
        for device in devices.iter() {
            match device.write(&line) {
                Ok(()) => written += 1,
                Err(e) => {
                    tracing::error!(audit.path = %device.path, error = %e, "audit device failed to write")
                }
            }
        }
        if written == 0 {
            return Err(ApiError::Internal {
                public: "no audit device succeeded in logging the request".into(),
            });
        }
        Ok(())
    }

    /// Replaces every string in `value` by its hash, recursively.
    pub fn hash_strings(&self, value: &Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.hash(s)),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.hash_strings(v)).collect()),
            Value::Object(map) => {
                Value::Object(map.iter().map(|(k, v)| (k.clone(), self.hash_strings(v))).collect())
            }
            other => other.clone(),
        }
    }
}

/// A file that fails every write, standing in for a device that could not be opened.
fn unwritable() -> ApiResult<std::fs::File> {
    std::fs::OpenOptions::new()
        .read(true)
        .open("/dev/null")
        .map_err(|e| ApiError::hidden(&format!("cannot open /dev/null: {e}")))
}

fn operation(op: Operation) -> &'static str {
    match op {
        Operation::Read | Operation::Head => "read",
        Operation::List => "list",
        Operation::Update => "update",
        Operation::Delete => "delete",
        Operation::Help => "help",
    }
}

/// What the records say about the caller.
pub struct Caller<'a> {
    pub token: Option<&'a str>,
    pub identity: Option<&'a keymint_auth::Identity>,
    pub remote: String,
}

fn auth_part(broker: &AuditBroker, caller: &Caller<'_>) -> Value {
    match caller.identity {
        Some(id) => json!({
            "client_token": caller.token.map(|t| broker.hash(t)),
            "accessor": broker.hash(&id.accessor),
            "display_name": id.display_name,
            "policies": id.policies,
            "token_policies": id.policies,
            "metadata": Value::Null,
            "entity_id": "",
            "token_type": "service",
        }),
        None => json!({}),
    }
}

fn request_part(broker: &AuditBroker, req: &LogicalRequest, id: &str, caller: &Caller<'_>) -> Value {
    let data = Value::Object(req.data.as_map().clone());
    json!({
        "id": id,
        "operation": operation(req.op),
        "client_token": caller.token.map(|t| broker.hash(t)),
        "client_token_accessor": caller.identity.map(|i| broker.hash(&i.accessor)),
        "path": req.path,
        "data": if req.data.is_empty() { Value::Null } else { broker.hash_strings(&data) },
        "remote_address": caller.remote,
        "namespace": {"id": "root"},
    })
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// The record written before a request is handled.
pub fn request_record(
    broker: &AuditBroker,
    req: &LogicalRequest,
    id: &str,
    caller: &Caller<'_>,
    error: Option<&str>,
) -> Value {
    json!({
        "time": now(),
        "type": "request",
        "auth": auth_part(broker, caller),
        "request": request_part(broker, req, id, caller),
        "error": error.unwrap_or_default(),
    })
}

/// The record written once the answer is known; `request` is the request record's
/// `request` part (the request itself is gone into its handler by then).
pub fn response_record(
    broker: &AuditBroker,
    request: Value,
    caller: &Caller<'_>,
    outcome: Result<(&Reply, &str), &ApiError>,
) -> Value {
    let (response, error) = match outcome {
        Ok((reply, mount_type)) => {
            let mut response = Map::new();
            response.insert("mount_type".into(), json!(mount_type));
            if let Some(data) = &reply.data {
                response.insert("data".into(), broker.hash_strings(data));
            }
            if !reply.lease_id.is_empty() {
                response.insert(
                    "secret".into(),
                    json!({"lease_id": reply.lease_id, "renewable": reply.renewable, "lease_duration": reply.lease_duration}),
                );
            }
            if let Some(auth) = &reply.auth {
                let mut auth = auth.clone();
                for key in ["client_token", "accessor"] {
                    if let Some(v) = auth.get(key).and_then(Value::as_str).map(|s| broker.hash(s)) {
                        auth[key] = json!(v);
                    }
                }
                response.insert("auth".into(), auth);
            }
            if !reply.warnings.is_empty() {
                response.insert("warnings".into(), json!(reply.warnings));
            }
            if let Some(wrap_info) = &reply.wrap_info {
                let mut wrap_info = wrap_info.clone();
                for key in ["token", "accessor", "wrapped_accessor"] {
                    if let Some(v) = wrap_info.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()) {
                        wrap_info[key] = json!(broker.hash(v));
                    }
                }
                response.insert("wrap_info".into(), wrap_info);
            }
            (Value::Object(response), String::new())
        }
        Err(e) => (json!({}), e.to_string()),
    };
    json!({
        "time": now(),
        "type": "response",
        "auth": auth_part(broker, caller),
        "request": request,
        "response": response,
        "error": error,
    })
}

/// The device a `sys/audit/<path>` or `sys/audit-hash/<path>` path names, as stored (`file/`).
fn device_of(path: &str) -> String {
    let device =
        path.strip_prefix("sys/audit-hash/").or_else(|| path.strip_prefix("sys/audit/")).unwrap_or("");
    format!("{}/", device.trim_matches('/'))
}

pub(crate) fn list(state: &AppState) -> Reply {
    let devices = state.audit().snapshot();
    let mut data = Map::new();
    for d in devices.iter() {
        data.insert(
            d.path.clone(),
            json!({"type": d.kind, "description": d.description, "options": d.options, "local": d.local, "path": d.path}),
        );
    }
    Reply { data: Some(Value::Object(data.clone())), top_level: Some(data), ..Default::default() }
}

pub(crate) async fn enable(state: &AppState, req: &LogicalRequest) -> ApiResult<Reply> {
    let device = device_of(&req.path);
    let path = device.as_str();
    let kind = req.fields().string("type")?.unwrap_or_default();
    let description = req.fields().string("description")?.unwrap_or_default();
    let options = match req.fields().map("options")? {
        Some(Value::Object(m)) => m.clone(),
        None | Some(Value::Null) => Map::new(),
        Some(_) => return Err(ApiError::BadRequest("options must be a map".into())),
    };
    if path == "/" {
        return Err(ApiError::BadRequest("audit device path is required".into()));
    }
    // Opened here first: a device that cannot write is refused before it is stored.
    Device::open(path, &kind, &description, options.clone(), false).map_err(ApiError::BadRequest)?;
    let row = AuditDeviceRow {
        path: path.to_string(),
        device_type: kind,
        description,
        options: Value::Object(options).to_string(),
        created_at: state.now_ms(),
    };
    let configured_here = state.audit().configured.is_some() && path == "file/";
    if configured_here || !audit::insert(state.store().pool(), &row).await? {
        return Err(ApiError::BadRequest(format!("path already in use: {path}")));
    }
    state.audit().reload(state).await?;
    Ok(Reply::no_content())
}

pub(crate) async fn disable(state: &AppState, req: &LogicalRequest) -> ApiResult<Reply> {
    let device = device_of(&req.path);
    let path = device.as_str();
    audit::delete(state.store().pool(), path).await?;
    state.audit().reload(state).await?;
    Ok(Reply::no_content())
}

pub(crate) fn audit_hash(state: &AppState, req: &LogicalRequest) -> ApiResult<Reply> {
    let device = device_of(&req.path);
    let broker = state.audit();
    let known = broker.snapshot().iter().any(|d| d.path == device);
    if !known {
        return Err(ApiError::BadRequest("unknown audit backend".into()));
    }
    let input = req.fields().string("input")?.unwrap_or_default();
    Ok(Reply::data(json!({ "hash": broker.hash(&input) })))
}
