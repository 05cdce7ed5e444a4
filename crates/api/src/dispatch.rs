//! Running a request through its route: the route and mount a path resolves to ([`Target`]),
//! what a handler receives ([`Call`]), the fields it reads, coerced by the types the route
//! declares ([`Fields`]), and Vault's framework warnings on mount paths.

use std::collections::BTreeMap;

use axum::response::Response;
use keymint_auth::Identity;
use keymint_engine::MountCtx;
use keymint_lease::MountTtls;
use keymint_store::mounts::MountRow;
use serde_json::{Map, Value};

use crate::envelope::Reply;
use crate::error::{ApiError, ApiResult};
use crate::fields::RequestData;
use crate::request::LogicalRequest;
use crate::routes::{self, Compiled, Handler, Kind, Param, Route};
use crate::{AppState, sys};

/// Where a path leads: its route (if any), and the mount it falls in.
#[derive(Clone)]
pub(crate) struct Target {
    pub route: Option<&'static Compiled>,
    pub mount: Option<MountRow>,
    /// The path relative to the mount, or the whole path outside mounts.
    pub rest: String,
    /// The name the path captures (`roles/<name>`), or "".
    name: String,
}

impl Target {
    fn new(route: Option<&'static Compiled>, mount: Option<MountRow>, rest: String) -> Target {
        let name = route.and_then(|c| c.name(&rest)).unwrap_or("").to_string();
        Target { route, mount, rest, name }
    }

    /// A path outside any mount, with its route as [`routes::find_root`] found it.
    pub(crate) fn root(path: &str, route: Option<&'static Compiled>) -> Target {
        Target::new(route, None, path.to_string())
    }

    /// The name the path captures (`roles/<name>`), or "".
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The `mount_type` of the envelope.
    fn mount_type(&self) -> String {
        match &self.mount {
            Some(mount) => mount.mount_type.clone(),
            None if self.rest.starts_with("auth/token/") => "token".into(),
            None => "system".into(),
        }
    }
}

/// The target of `path` (after `/v1/`): `sys/` and `auth/token/` paths by their whole path
/// (`root`: their route, which the caller has looked up already), anything else by the mount
/// with the longest matching prefix and the rest of the path.
pub(crate) async fn resolve(
    state: &AppState,
    path: &str,
    root: Option<&'static Compiled>,
) -> ApiResult<Target> {
    if routes::is_root_path(path) {
        return Ok(Target::root(path, root));
    }
    Ok(match sys::resolve_mount(state, path).await? {
        Some((mount, rest)) => {
            let route = routes::find_in_mount(&mount.mount_type, &rest);
            Target::new(route, Some(mount), rest)
        }
        None => Target::new(None, None, path.to_string()),
    })
}

/// One request as its handler sees it.
pub(crate) struct Call {
    pub state: AppState,
    /// `None` only on unauthenticated routes.
    pub identity: Option<Identity>,
    pub req: LogicalRequest,
    pub target: Target,
}

impl Call {
    /// The caller. Every authenticated route has one; an unauthenticated route that asks is
    /// refused.
    pub(crate) fn identity(&self) -> ApiResult<&Identity> {
        self.identity.as_ref().ok_or(ApiError::PermissionDenied)
    }

    /// The name the path captures, or "".
    pub(crate) fn name(&self) -> &str {
        self.target.name()
    }

    /// The request's fields, read through the route's schema.
    pub(crate) fn fields(&self) -> Fields<'_> {
        self.req.fields()
    }

    /// The mount a mount route serves.
    pub(crate) fn ctx(&self) -> ApiResult<MountCtx> {
        self.target.mount.as_ref().map(mount_ctx).ok_or(ApiError::UnsupportedPath)
    }
}

pub fn mount_ctx(m: &MountRow) -> MountCtx {
    MountCtx {
        id: m.id.clone(),
        path: m.path.clone(),
        ttls: MountTtls {
            default_lease_ttl: u64::try_from(m.default_lease_ttl).unwrap_or(0),
            max_lease_ttl: u64::try_from(m.max_lease_ttl).unwrap_or(0),
        },
    }
}

/// The fields of a request, each read as the type its route declares, under its name or an
/// alias, with its default when it is absent. A handler can only read what its route declares:
/// reading an undeclared field (or as another type) is a bug in the table, answered with 500
/// and logged.
pub(crate) struct Fields<'a> {
    route: Option<&'static Route>,
    data: &'a RequestData,
}

impl<'a> Fields<'a> {
    pub(crate) fn new(route: Option<&'static Route>, data: &'a RequestData) -> Self {
        Fields { route, data }
    }

    fn declared(&self, name: &str, kind: Kind) -> ApiResult<&'static Param> {
        let param = self.route.and_then(|r| r.param(name)).filter(|p| p.kind == kind);
        param.ok_or_else(|| {
            let route = self.route.map_or("", |r| r.pattern);
            tracing::error!(
                field = name,
                kind = kind.help(),
                route,
                "a handler read a field its route does not declare"
            );
            ApiError::Internal { public: "internal error".into() }
        })
    }

    /// Reads `name` as `kind` with `get`, from the data or else from the field's default.
    fn read<T>(
        &self,
        name: &str,
        kind: Kind,
        get: impl Fn(&RequestData, &str) -> Result<Option<T>, crate::fields::FieldError>,
    ) -> ApiResult<Option<T>> {
        let param = self.declared(name, kind)?;
        let given =
            std::iter::once(param.name).chain(param.aliases.iter().copied()).find(|k| self.data.contains(k));
        if let Some(key) = given {
            return Ok(get(self.data, key)?);
        }
        match param.default {
            Some(default) => {
                let mut map = Map::new();
                map.insert(param.name.to_string(), Value::String(default.to_string()));
                Ok(get(&RequestData::from_map(map), param.name)?)
            }
            None => Ok(None),
        }
    }

    pub(crate) fn string(&self, name: &str) -> ApiResult<Option<String>> {
        self.read(name, Kind::String, RequestData::get_string)
    }

    pub(crate) fn int(&self, name: &str) -> ApiResult<Option<i64>> {
        self.read(name, Kind::Int, RequestData::get_int)
    }

    pub(crate) fn bool(&self, name: &str) -> ApiResult<Option<bool>> {
        self.read(name, Kind::Bool, RequestData::get_bool)
    }

    /// Whole seconds.
    pub(crate) fn duration(&self, name: &str) -> ApiResult<Option<u64>> {
        self.read(name, Kind::Duration, RequestData::get_duration_secs)
    }

    pub(crate) fn list(&self, name: &str) -> ApiResult<Option<Vec<String>>> {
        self.read(name, Kind::CommaList, RequestData::get_comma_slice)
    }

    pub(crate) fn kv(&self, name: &str) -> ApiResult<Option<BTreeMap<String, String>>> {
        self.read(name, Kind::KvPairs, RequestData::get_kv_pairs)
    }

    /// A declared field of any type (`declared` with the field's own kind).
    fn declared_any(&self, name: &str) -> ApiResult<&'static Param> {
        match self.route.and_then(|r| r.param(name)) {
            Some(param) => Ok(param),
            None => self.declared(name, Kind::String),
        }
    }

    /// A field of any type as it was sent (under its name or an alias).
    pub(crate) fn raw(&self, name: &str) -> ApiResult<Option<&'a Value>> {
        let param = self.declared_any(name)?;
        Ok(std::iter::once(param.name).chain(param.aliases.iter().copied()).find_map(|k| self.data.raw(k)))
    }

    /// A field of any type as Vault's weakly typed string, for a handler that parses the text
    /// itself (`config/lease` reports its own errors for a bad duration).
    pub(crate) fn text(&self, name: &str) -> ApiResult<Option<String>> {
        let param = self.declared_any(name)?;
        match std::iter::once(param.name).chain(param.aliases.iter().copied()).find(|k| self.data.contains(k))
        {
            Some(key) => Ok(self.data.get_string(key)?),
            None => Ok(None),
        }
    }

    /// Every field the route declares that the request gives (or that has a default), each
    /// coerced as its kind, deserialized into `T` by the fields' names: a domain input struct
    /// whose fields are named as the API names them.
    pub(crate) fn typed<T: serde::de::DeserializeOwned>(&self) -> ApiResult<T> {
        let route = self.route.ok_or_else(|| ApiError::Internal { public: "internal error".into() })?;
        let mut given = Map::new();
        for param in route.params {
            let name = param.name;
            let value = match param.kind {
                Kind::String => self.string(name)?.map(Value::from),
                Kind::Int => self.int(name)?.map(Value::from),
                Kind::Bool => self.bool(name)?.map(Value::from),
                Kind::Duration => self.duration(name)?.map(Value::from),
                Kind::CommaList => self.list(name)?.map(Value::from),
                Kind::KvPairs => self
                    .kv(name)?
                    .map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k, v.into())).collect())),
                Kind::Map => self.map(name)?.cloned(),
            };
            if let Some(value) = value {
                given.insert(name.to_string(), value);
            }
        }
        serde_json::from_value(Value::Object(given)).map_err(|e| {
            tracing::error!(route = route.pattern, error = %e, "the route's schema does not fit its input type");
            ApiError::Internal { public: "internal error".into() }
        })
    }

    /// A `map` field as it was sent.
    pub(crate) fn map(&self, name: &str) -> ApiResult<Option<&'a Value>> {
        let param = self.declared(name, Kind::Map)?;
        Ok(std::iter::once(param.name).chain(param.aliases.iter().copied()).find_map(|k| self.data.raw(k)))
    }
}

/// What a route answered.
pub(crate) enum Answer {
    /// Vault's envelope, with the `mount_type` it carries.
    Reply(Box<Reply>, String),
    Raw(Response),
}

/// Runs the call's route for its operation. Mount routes get Vault's framework warnings.
pub(crate) async fn run(mut call: Call) -> ApiResult<Answer> {
    let Some(compiled) = call.target.route else {
        let served_prefix =
            call.target.rest.starts_with("sys/") || call.target.rest.starts_with("auth/token/");
        return Err(if call.target.mount.is_some() || served_prefix {
            ApiError::UnsupportedPath
        } else {
            ApiError::NoHandler(call.req.path.clone())
        });
    };
    let op =
        if compiled.route.unauthenticated { crate::request::served_as(call.req.op) } else { call.req.op };
    let op = compiled.route.op(op).ok_or(ApiError::UnsupportedOperation)?;
    call.req.route = Some(compiled.route);
    match op.handler {
        Handler::Raw(serve) => Ok(Answer::Raw(serve(call).await)),
        Handler::Reply(serve) => {
            let mount_type = call.target.mount_type();
            if !compiled.in_mount {
                return Ok(Answer::Reply(Box::new(serve(call).await?), mount_type));
            }
            let data = call.req.data.clone();
            let name = (!call.target.name.is_empty()).then(|| call.target.name.clone());
            let reply = serve(call).await?;
            let reply = annotate(reply, &data, &compiled.route.known_fields(), name.as_deref())?;
            Ok(Answer::Reply(Box::new(reply), mount_type))
        }
    }
}

const NAME_REPLACED: &str = "Endpoint replaced the value of these parameters with the values captured from the endpoint's path: [name]";

/// Vault's warning for parameters a path does not know.
pub(crate) fn unknown_warning(data: &RequestData, known: &[&str]) -> Option<String> {
    let unknown = data.unknown_keys(known);
    (!unknown.is_empty())
        .then(|| format!("Endpoint ignored these unrecognized parameters: [{}]", unknown.join(" ")))
}

/// Vault's framework warnings, added to every reply of a mount path:
/// - parameters the route does not declare (`known`), on reads as on writes;
/// - a `name` parameter on a path that captures the name (`captured`): the path's wins.
///
/// Vault adds them only to replies with a body and drops them from a bare 204. keymint turns a
/// 204 into a 200 carrying the warning when something was ignored, or when the body's `name`
/// differs from the path's, so a misspelt field on a write is never silently dropped.
fn annotate(
    mut reply: Reply,
    data: &RequestData,
    known: &[&str],
    captured: Option<&str>,
) -> ApiResult<Reply> {
    if let Some(w) = unknown_warning(data, known) {
        reply.no_content = false;
        reply.warnings.push(w);
    }
    if let Some(name) = captured
        && data.contains("name")
    {
        let differs = data.get_string("name")?.is_some_and(|n| n != name);
        if (differs || !reply.no_content) && !reply.warnings.iter().any(|w| w == NAME_REPLACED) {
            reply.no_content = false;
            reply.warnings.push(NAME_REPLACED.to_string());
        }
    }
    Ok(reply)
}
