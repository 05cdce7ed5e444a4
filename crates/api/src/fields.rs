//! The parameters of one request and Vault's rules for coercing them into typed fields.
//!
//! Vault builds a `map[string]interface{}` from the query string or the body, then reads each
//! field through `framework.FieldData`, which weakly converts values with mapstructure
//! (`"1"` is a valid bool, `5` a valid string, and so on). Clients depend on that leniency and
//! on the exact error texts, so this module reproduces both rather than using serde's strict
//! typing.

use std::collections::BTreeMap;

use serde_json::{Map, Number, Value};

use crate::duration::{go_quote, parse_duration_secs, parse_go_int};

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
mod tests {
    use super::*;
    use serde_json::json;

    fn err<T: std::fmt::Debug>(r: Result<T, FieldError>) -> String {
        r.unwrap_err().to_string()
    }

    /// Runs a getter over `<json input> => <expected>` lines, the input stored under "k".
    /// Expected is the Debug text of the result, or `!` and the error text after Vault's fixed
    /// `Field validation failed: error converting input ` prefix (newlines written as `\n`).
    /// Every getter must also report an absent key as `None`.
    fn table<T: std::fmt::Debug>(cases: &str, get: impl Fn(&RequestData) -> Result<T, FieldError>) {
        assert_eq!(format!("{:?}", get(&RequestData::default())), "Ok(None)");
        for line in cases.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let (input, want) = line.split_once(" => ").expect("case has ' => '");
            let value = serde_json::from_str(input).expect("case input is JSON");
            let data = RequestData::from_map(Map::from_iter([("k".to_string(), value)]));
            let got = match get(&data) {
                Ok(v) => format!("{v:?}"),
                Err(e) => {
                    let text = e.to_string().replace('\n', "\\n");
                    let prefix = "Field validation failed: error converting input ";
                    format!("!{}", text.strip_prefix(prefix).unwrap_or(&text))
                }
            };
            assert_eq!(got, want, "input {input}");
        }
    }

    #[test]
    fn strings() {
        table(
            r#"
            null => Some("")
            "abc" => Some("abc")
            42 => Some("42")
            1.5 => Some("1.5")
            true => Some("1")
            false => Some("0")
            ["a","b"] => ![a b] for field "k": '' expected type 'string', got unconvertible type '[]interface {}', value: '[a b]'
            {"x":1,"a":[2]} => !map[a:[2] x:1] for field "k": '' expected type 'string', got unconvertible type 'map[string]interface {}', value: 'map[a:[2] x:1]'
            "#,
            |d| d.get_string("k"),
        );
    }

    #[test]
    fn ints() {
        table(
            r#"
            null => Some(0)
            7 => Some(7)
            -3 => Some(-3)
            "12" => Some(12)
            "0x10" => Some(16)
            "010" => Some(8)
            "" => Some(0)
            true => Some(1)
            "abc" => !abc for field "k": cannot parse '' as int: strconv.ParseInt: parsing "abc": invalid syntax
            1.5 => !1.5 for field "k": cannot parse '' as int: strconv.ParseInt: parsing "1.5": invalid syntax
            18446744073709551615 => !18446744073709551615 for field "k": cannot parse '' as int: strconv.ParseInt: parsing "18446744073709551615": value out of range
            [1] => ![1] for field "k": '' expected type 'int', got unconvertible type '[]interface {}', value: '[1]'
            "#,
            |d| d.get_int("k"),
        );
    }

    #[test]
    fn bools() {
        table(
            r#"
            null => Some(false)
            true => Some(true)
            "True" => Some(true)
            "t" => Some(true)
            1 => Some(true)
            0 => Some(false)
            "" => Some(false)
            "f" => Some(false)
            "x" => !x for field "k": cannot parse '' as bool: strconv.ParseBool: parsing "x": invalid syntax
            2 => !2 for field "k": cannot parse '' as bool: strconv.ParseBool: parsing "2": invalid syntax
            [] => ![] for field "k": '' expected type 'bool', got unconvertible type '[]interface {}', value: '[]'
            "#,
            |d| d.get_bool("k"),
        );
    }

    #[test]
    fn go_bool_table() {
        for s in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(parse_go_bool(s), Some(true), "{s}");
        }
        for s in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(parse_go_bool(s), Some(false), "{s}");
        }
        for s in ["", "yes", "tRUE", "2", " true", "on"] {
            assert_eq!(parse_go_bool(s), None, "{s}");
        }
    }

    #[test]
    fn durations() {
        table(
            r#"
            null => None
            3600 => Some(3600)
            "3600" => Some(3600)
            "1h30m" => Some(5400)
            "90s" => Some(90)
            "2d" => Some(172800)
            "" => Some(0)
            "abc" => !abc for field "k": time: invalid duration "abc"
            -5 => !-5 for field "k": cannot provide negative value '-5'
            "-1h" => !-1h for field "k": cannot provide negative value '-3600'
            1.5 => !1.5 for field "k": time: missing unit in duration "1.5"
            true => !true for field "k": could not parse duration from input
            "#,
            |d| d.get_duration_secs("k"),
        );
        let ttl = RequestData::from_map(Map::from_iter([("ttl".into(), json!("abc"))]));
        assert_eq!(
            err(ttl.get_duration_secs("ttl")),
            "Field validation failed: error converting input abc for field \"ttl\": \
             time: invalid duration \"abc\""
        );
    }

    #[test]
    fn comma_slices() {
        table(
            r#"
            null => Some([])
            " a , b,c " => Some(["a", "b", "c"])
            "x" => Some(["x"])
            "" => Some([])
            "a,,b," => Some(["a", "", "b", ""])
            [" a ","b,c",5,true,null] => Some(["a", "b,c", "5", "1", ""])
            7 => Some(["7"])
            {} => Some([])
            {"k":"v"} => !map[k:v] for field "k": 1 error(s) decoding:\n\n* '[0]' expected type 'string', got unconvertible type 'map[string]interface {}', value: 'map[k:v]'
            ["a",["b"]] => ![a [b]] for field "k": 1 error(s) decoding:\n\n* '[1]' expected type 'string', got unconvertible type '[]interface {}', value: '[b]'
            "#,
            |d| d.get_comma_slice("k"),
        );
    }

    #[test]
    fn kv_pairs() {
        table(
            r#"
            null => Some({})
            {"b":"1","a":2,"c":true,"d":null} => Some({"a": "2", "b": "1", "c": "1", "d": ""})
            ["a=1","b=x=y","c="] => Some({"a": "1", "b": "x=y", "c": ""})
            "k=v" => Some({"k": "v"})
            [{"a":"1"},{"b":"2"}] => Some({"a": "1", "b": "2"})
            [] => Some({})
            {} => Some({})
            ["a=1","b"] => ![a=1 b] for field "k": invalid key pair "b"
            "=v" => !=v for field "k": invalid key pair "=v"
            5 => !5 for field "k": invalid key pair "5"
            {"a":{"b":"c"}} => !map[a:map[b:c]] for field "k": 1 error(s) decoding:\n\n* '[0]' expected type 'string', got unconvertible type 'map[string]interface {}', value: 'map[a:map[b:c]]'
            "#,
            |d| d.get_kv_pairs("k"),
        );
    }

    #[test]
    fn query_strings() {
        let d = RequestData::from_query("a=1&b=x&a=2&c&d=&e=%20%2B+&&bad=%zz&semi=1;x=2&a=3");
        assert_eq!(d.raw("a"), Some(&json!(["1", "2", "3"])));
        assert_eq!(d.raw("b"), Some(&json!("x")));
        assert_eq!(d.raw("c"), Some(&json!("")));
        assert_eq!(d.raw("d"), Some(&json!("")));
        assert_eq!(d.raw("e"), Some(&json!(" + ")));
        assert!(!d.contains("bad") && !d.contains("semi") && !d.contains("x"));
        assert!(RequestData::from_query("").is_empty());
    }

    #[test]
    fn json_bodies() {
        let body = br#"{"ttl":"1h","n":null}"#;
        let d = RequestData::from_body(Some("application/json"), body).unwrap();
        assert_eq!(d.keys().collect::<Vec<_>>(), ["ttl", "n"]);
        for empty in [&b""[..], b"  \n\t", b"null"] {
            assert!(RequestData::from_body(None, empty).unwrap().is_empty());
        }
        // Go's decoder stops after the first value.
        let trailing = RequestData::from_body(None, br#"{"a":1} trailing"#).unwrap();
        assert!(trailing.contains("a"));
        for bad in [&b"{"[..], b"[1,2]", b"\"s\"", b"42", b"a=b", b"not json"] {
            assert_eq!(err(RequestData::from_body(None, bad)), "error parsing JSON");
        }
        // A form content type does not turn a JSON-looking body into a form.
        let form = Some("application/x-www-form-urlencoded");
        assert_eq!(err(RequestData::from_body(form, b" [1]")), "error parsing JSON");
        assert!(RequestData::from_body(form, b" {\"a\":1}").unwrap().contains("a"));
    }

    #[test]
    fn form_bodies() {
        let form = Some("Application/X-WWW-Form-Urlencoded; charset=utf-8");
        let d = RequestData::from_body(form, b"ttl=1h&arns=a&arns=b&x=a+b").unwrap();
        assert_eq!(d.raw("ttl"), Some(&json!("1h")));
        // Vault joins repeated form keys with commas instead of building a list.
        assert_eq!(d.raw("arns"), Some(&json!("a,b")));
        assert_eq!(d.raw("x"), Some(&json!("a b")));
        assert!(RequestData::from_body(form, b"").unwrap().is_empty());
        let bad = |body: &[u8]| err(RequestData::from_body(form, body));
        assert_eq!(bad(b"a=%zz"), "error parsing form data");
        assert_eq!(bad(b"a=1;b=2"), "error parsing form data");
    }

    #[test]
    fn map_operations_and_unknown_keys() {
        let body = br#"{"name":"body","zeta":1,"alpha":2}"#;
        let mut d = RequestData::from_body(None, body).unwrap();
        d.insert("name", json!("url"));
        assert_eq!(d.get_string("name").unwrap().unwrap(), "url");
        assert_eq!(d.unknown_keys(&["name"]), ["alpha", "zeta"]);
        assert_eq!(d.remove("zeta"), Some(json!(1)));
        assert!(d.unknown_keys(&["name", "alpha"]).is_empty());
        assert_eq!(d.as_map().len(), 2);
    }
}
