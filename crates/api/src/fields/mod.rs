//! The parameters of one request and Vault's rules for coercing them into typed fields.
//!
//! Vault builds a `map[string]interface{}` from the query string or the body, then reads each
//! field through `framework.FieldData`, which weakly converts values with mapstructure
//! (`"1"` is a valid bool, `5` a valid string, and so on). Clients depend on that leniency and
//! on the exact error texts, so this module reproduces both rather than using serde's strict
//! typing.

use std::collections::BTreeMap;

use keymint_common::go::duration::parse_duration_secs;
use keymint_common::go::strconv::parse_go_int;
use keymint_common::go::text::go_quote;
use serde_json::{Map, Number, Value};

/// Vault only sniffs this much of a body when deciding between form and JSON.
const SNIFF_LEN: usize = 512;

/// Why request data could not be read or a field could not be converted; Display is the
/// message Vault returns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    /// A body that is not a JSON object (or null, or empty).
    #[error("error parsing JSON")]
    Parse,
    /// A form body Go's `url.ParseQuery` would reject (bad `%` escape, `;` separator).
    #[error("error parsing form data")]
    Form,
    /// A value that does not convert to its field's type.
    #[error("Field validation failed: error converting input {input} for field {}: {reason}", go_quote(.field))]
    Convert {
        field: String,
        /// The raw value as Go's `%v` prints it.
        input: String,
        reason: String,
    },
}

/// The parameters of one request: query string (GET/DELETE/LIST) or body (POST/PUT), as
/// Vault sees them.
#[derive(Debug, Clone, Default)]
pub struct RequestData {
    data: Map<String, Value>,
}

impl RequestData {
    pub fn from_map(map: Map<String, Value>) -> Self {
        Self { data: map }
    }

    /// Query string: a key given once → string value; a repeated key → array of strings.
    ///
    /// Like Go's `URL.Query()`, pairs Go cannot parse are skipped silently. Vault also drops a
    /// `help` key; that is left to the caller, which needs it to detect help requests.
    pub fn from_query(query: &str) -> Self {
        let (pairs, _) = parse_urlencoded(query);
        let mut data = Map::new();
        for (key, value) in pairs {
            match data.get_mut(&key) {
                Some(Value::Array(values)) => values.push(Value::String(value)),
                Some(existing) => {
                    let first = existing.take();
                    *existing = Value::Array(vec![first, Value::String(value)]);
                }
                None => {
                    data.insert(key, Value::String(value));
                }
            }
        }
        Self { data }
    }

    /// Body, read the way Vault's HTTP layer does: a form only when the content type is
    /// `application/x-www-form-urlencoded` and the body does not start like JSON (`{`/`[`);
    /// otherwise JSON, where an empty or whitespace body or `null` means no data, an object
    /// gives its fields (anything after the first value is ignored, as Go's decoder does), and
    /// anything else is `error parsing JSON`. Repeated form keys are joined with commas.
    pub fn from_body(content_type: Option<&str>, body: &[u8]) -> Result<Self, FieldError> {
        if is_form(content_type, body) {
            let text = String::from_utf8_lossy(body);
            let (pairs, had_error) = parse_urlencoded(&text);
            if had_error {
                return Err(FieldError::Form);
            }
            let mut data = Map::new();
            for (key, value) in pairs {
                match data.get_mut(&key) {
                    Some(Value::String(existing)) => {
                        existing.push(',');
                        existing.push_str(&value);
                    }
                    _ => {
                        data.insert(key, Value::String(value));
                    }
                }
            }
            return Ok(Self { data });
        }
        let mut values = serde_json::Deserializer::from_slice(body).into_iter::<Value>();
        match values.next() {
            None | Some(Ok(Value::Null)) => Ok(Self::default()),
            Some(Ok(Value::Object(data))) => Ok(Self { data }),
            Some(_) => Err(FieldError::Parse),
        }
    }

    /// Sets a field; used for URL-captured fields, which override the body.
    pub fn insert(&mut self, key: &str, value: Value) {
        self.data.insert(key.to_string(), value);
    }

    pub fn contains(&self, key: &str) -> bool {
        self.data.contains_key(key)
    }

    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.data.shift_remove(key)
    }

    pub fn raw(&self, key: &str) -> Option<&Value> {
        self.data.get(key)
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.data.keys()
    }

    /// All fields, in the order they arrived.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.data
    }

    /// `TypeString`: strings as is, numbers as digits, bools as `"1"`/`"0"`, null as `""`.
    pub fn get_string(&self, key: &str) -> Result<Option<String>, FieldError> {
        self.convert(key, |v| weak_string("", v))
    }

    /// `TypeInt`: numbers and numeric strings (Go base-0 syntax, so `0x10` is 16 and `010`
    /// is 8), bools as 1/0, null and `""` as 0.
    pub fn get_int(&self, key: &str) -> Result<Option<i64>, FieldError> {
        self.convert(key, |v| {
            let text = match v {
                Value::Null => return Ok(0),
                Value::Bool(b) => return Ok(i64::from(*b)),
                Value::Number(n) => number_text(n),
                Value::String(s) => s.clone(),
                Value::Array(_) | Value::Object(_) => return Err(unconvertible("", "int", v)),
            };
            if text.is_empty() {
                return Ok(0);
            }
            parse_go_int(&text, true).map_err(|e| format!("cannot parse '' as int: {e}"))
        })
    }

    /// `TypeBool`: bools, Go `ParseBool` strings, `""` and null as false. JSON numbers reach
    /// Vault as strings of digits, so only `0` and `1` are accepted among them.
    pub fn get_bool(&self, key: &str) -> Result<Option<bool>, FieldError> {
        self.convert(key, |v| {
            let text = match v {
                Value::Null => return Ok(false),
                Value::Bool(b) => return Ok(*b),
                Value::Number(n) => number_text(n),
                Value::String(s) => s.clone(),
                Value::Array(_) | Value::Object(_) => return Err(unconvertible("", "bool", v)),
            };
            match parse_go_bool(&text) {
                Some(b) => Ok(b),
                None if text.is_empty() => Ok(false),
                None => Err(format!(
                    "cannot parse '' as bool: strconv.ParseBool: parsing {}: invalid syntax",
                    go_quote(&text)
                )),
            }
        })
    }

    /// `TypeDurationSecond`: integer seconds (number or string) or a duration string, in
    /// whole seconds. Unlike the other types, null counts as not provided.
    pub fn get_duration_secs(&self, key: &str) -> Result<Option<u64>, FieldError> {
        if matches!(self.data.get(key), Some(Value::Null)) {
            return Ok(None);
        }
        self.convert(key, |v| {
            let text = match v {
                Value::Number(n) => number_text(n),
                Value::String(s) => s.clone(),
                _ => return Err("could not parse duration from input".to_string()),
            };
            parse_duration_secs(&text).map_err(|e| e.to_string())
        })
    }

    /// `TypeCommaStringSlice`: a JSON array (items weakly converted to strings) or one
    /// comma-separated string; items are trimmed. `""` and null give an empty list. As in
    /// Vault, empty items are kept: `"a,,b"` is `["a", "", "b"]`.
    pub fn get_comma_slice(&self, key: &str) -> Result<Option<Vec<String>>, FieldError> {
        self.convert(key, |v| {
            let items = match v {
                Value::Null => Vec::new(),
                Value::String(s) if s.is_empty() => Vec::new(),
                Value::String(s) => s.split(',').map(str::to_string).collect(),
                Value::Number(n) => number_text(n).split(',').map(str::to_string).collect(),
                Value::Object(m) if m.is_empty() => Vec::new(),
                Value::Array(items) => weak_string_list(items)?,
                // mapstructure lifts a lone scalar (or object) into a one-element list.
                Value::Bool(_) | Value::Object(_) => weak_string_list(std::slice::from_ref(v))?,
            };
            Ok(items.iter().map(|s| s.trim().to_string()).collect())
        })
    }

    /// `TypeKVPairs`: an object (values weakly converted to strings), or a list of `k=v`
    /// strings split on the first `=`; a single `k=v` string is a one-item list. Null, `{}`
    /// and `[]` give an empty map; a list of objects is merged, as mapstructure does.
    pub fn get_kv_pairs(&self, key: &str) -> Result<Option<BTreeMap<String, String>>, FieldError> {
        self.convert(key, |v| {
            // Vault first tries the value as a map and only then as a list of pairs; the
            // error a client sees for a bad value is the one from the list attempt.
            if let Some(map) = weak_string_map(v) {
                return Ok(map);
            }
            let pairs = match v {
                Value::Array(items) => weak_string_list(items)?,
                _ => weak_string_list(std::slice::from_ref(v))?,
            };
            let mut out = BTreeMap::new();
            for pair in pairs {
                match pair.split_once('=') {
                    Some((k, val)) if !k.is_empty() => {
                        out.insert(k.to_string(), val.to_string());
                    }
                    _ => return Err(format!("invalid key pair {}", go_quote(&pair))),
                }
            }
            Ok(out)
        })
    }

    /// Keys present in the data but not in `known`, sorted — for Vault's warning
    /// `Endpoint ignored these unrecognized parameters: [a b]`.
    pub fn unknown_keys(&self, known: &[&str]) -> Vec<String> {
        let mut unknown: Vec<String> =
            self.data.keys().filter(|k| !known.contains(&k.as_str())).cloned().collect();
        unknown.sort();
        unknown
    }

    /// Looks the key up and runs one type's conversion, wrapping a failure in Vault's
    /// `Field validation failed` message.
    fn convert<T>(
        &self,
        key: &str,
        conv: impl FnOnce(&Value) -> Result<T, String>,
    ) -> Result<Option<T>, FieldError> {
        let Some(value) = self.data.get(key) else {
            return Ok(None);
        };
        conv(value).map(Some).map_err(|reason| FieldError::Convert {
            field: key.to_string(),
            input: go_format(value),
            reason,
        })
    }
}

/// Go strconv.ParseBool: 1,t,T,TRUE,true,True / 0,f,F,FALSE,false,False; anything else None.
pub fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Vault's `isForm`: the media type must be the form type and the first non-whitespace byte
/// (within the sniffed prefix) must not open a JSON object or array.
fn is_form(content_type: Option<&str>, body: &[u8]) -> bool {
    let media_type =
        content_type.and_then(|ct| ct.split(';').next()).map(|mt| mt.trim().to_ascii_lowercase());
    if media_type.as_deref() != Some("application/x-www-form-urlencoded") {
        return false;
    }
    let first = body.iter().take(SNIFF_LEN).find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    !matches!(first, Some(b'{' | b'['))
}

/// Go's `url.ParseQuery`: `&`-separated pairs, a pair without `=` has an empty value, empty
/// pairs are skipped, and pairs containing `;` or a bad `%` escape are skipped and reported
/// (the flag) — Go's query reader ignores that, its form reader fails the request.
fn parse_urlencoded(input: &str) -> (Vec<(String, String)>, bool) {
    let mut pairs = Vec::new();
    let mut had_error = false;
    for segment in input.split('&') {
        if segment.contains(';') {
            had_error = true;
            continue;
        }
        if segment.is_empty() {
            continue;
        }
        let (key, value) = segment.split_once('=').unwrap_or((segment, ""));
        match (query_unescape(key), query_unescape(value)) {
            (Some(k), Some(v)) => pairs.push((k, v)),
            _ => had_error = true,
        }
    }
    (pairs, had_error)
}

/// Go's `url.QueryUnescape`: `+` is a space and `%` must be followed by two hex digits.
fn query_unescape(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hi = hex_value(*bytes.get(i + 1)?)?;
                let lo = hex_value(*bytes.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    // Go keeps arbitrary bytes; they can only reach clients through JSON, which would replace
    // invalid UTF-8 the same way.
    Some(String::from_utf8_lossy(&out).into_owned())
}

fn hex_value(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// A JSON number as Go's `json.Number` text would usually read (digits for integers).
fn number_text(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        i.to_string()
    } else if let Some(u) = n.as_u64() {
        u.to_string()
    } else if let Some(f) = n.as_f64() {
        // Rust's shortest round-trip form, without exponent, like Go's FormatFloat 'f', -1.
        format!("{f}")
    } else {
        n.to_string()
    }
}

/// mapstructure's weak conversion of one value to a string; `name` is the path mapstructure
/// puts in its message (`""` at the top level, `"[0]"` for list items).
fn weak_string(name: &str, v: &Value) -> Result<String, String> {
    match v {
        Value::Null => Ok(String::new()),
        Value::Bool(b) => Ok(if *b { "1" } else { "0" }.to_string()),
        Value::Number(n) => Ok(number_text(n)),
        Value::String(s) => Ok(s.clone()),
        Value::Array(_) | Value::Object(_) => Err(unconvertible(name, "string", v)),
    }
}

/// Every item converted to a string; failures are collected into mapstructure's
/// `N error(s) decoding:` list, which is what Vault reports for a bad item.
fn weak_string_list(items: &[Value]) -> Result<Vec<String>, String> {
    let mut out = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match weak_string(&format!("[{i}]"), item) {
            Ok(s) => out.push(s),
            Err(e) => errors.push(format!("* {e}")),
        }
    }
    if errors.is_empty() {
        return Ok(out);
    }
    errors.sort();
    Err(format!("{} error(s) decoding:\n\n{}", errors.len(), errors.join("\n")))
}

/// mapstructure's weak decode into `map[string]string`: an object whose values all convert,
/// null, an empty list, or a list of such objects (merged). `None` when it does not apply.
fn weak_string_map(v: &Value) -> Option<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let objects: Vec<&Map<String, Value>> = match v {
        Value::Null => return Some(out),
        Value::Object(m) => vec![m],
        // Null items decode to nothing in mapstructure, so they are simply skipped.
        Value::Array(items) => {
            items.iter().filter(|item| !item.is_null()).map(Value::as_object).collect::<Option<_>>()?
        }
        _ => return None,
    };
    for object in objects {
        for (k, val) in object {
            out.insert(k.clone(), weak_string("", val).ok()?);
        }
    }
    Some(out)
}

/// mapstructure's message for a value of the wrong kind.
fn unconvertible(name: &str, target: &str, v: &Value) -> String {
    let go_type = match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(_) => "json.Number",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    };
    format!(
        "'{name}' expected type '{target}', got unconvertible type '{go_type}', value: '{}'",
        go_format(v)
    )
}

/// A decoded JSON value as Go's `%v` prints it: strings bare, `[a b]` for lists,
/// `map[k:v]` with sorted keys for objects, `<nil>` for null.
fn go_format(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => number_text(n),
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(go_format).collect();
            format!("[{}]", parts.join(" "))
        }
        Value::Object(m) => {
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let parts: Vec<String> =
                entries.into_iter().map(|(k, val)| format!("{k}:{}", go_format(val))).collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

#[cfg(test)]
mod tests;
