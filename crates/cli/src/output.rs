//! How the CLI prints answers, as the Vault CLI does: a `Key  Value` table by default, the
//! server's JSON with `-format=json`, one raw value with `-field=NAME`.

use std::fmt::Write as _;

use serde_json::{Map, Value};

use crate::client::Exit;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum Format {
    #[default]
    Table,
    Json,
}

/// A value as the Vault CLI shows it in a table: strings bare, `null` as `<nil>`, lists as
/// `[a b]`, maps as `map[k:v]`.
pub fn show(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::String(s) => s.clone(),
        Value::Array(items) => format!("[{}]", items.iter().map(show).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => {
            format!(
                "map[{}]",
                m.iter().map(|(k, v)| format!("{k}:{}", show(v))).collect::<Vec<_>>().join(" ")
            )
        }
        other => other.to_string(),
    }
}

/// Seconds as the Vault CLI shows durations: `768h`, `1h30m`, `45s`.
pub fn duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        let _ = write!(out, "{h}h");
    }
    if m > 0 {
        let _ = write!(out, "{m}m");
    }
    if s > 0 || out.is_empty() {
        let _ = write!(out, "{s}s");
    }
    out
}

/// The rows of a secret or auth answer: lease or token facts first, then the data, sorted.
pub fn rows(body: &Value) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    let get = |k: &str| body.get(k).cloned().unwrap_or(Value::Null);
    if let Some(auth) = body.get("auth").filter(|a| a.is_object()) {
        let a = |k: &str| auth.get(k).cloned().unwrap_or(Value::Null);
        rows.push(("token".into(), show(&a("client_token"))));
        rows.push(("token_accessor".into(), show(&a("accessor"))));
        rows.push(("token_duration".into(), duration(a("lease_duration").as_u64().unwrap_or(0))));
        rows.push(("token_renewable".into(), show(&a("renewable"))));
        rows.push(("token_policies".into(), show(&a("token_policies"))));
        rows.push(("identity_policies".into(), show(&a("identity_policies"))));
        rows.push(("policies".into(), show(&a("policies"))));
        // As the Vault CLI: the token's metadata, a row per key.
        if let Some(meta) = auth.get("metadata").and_then(Value::as_object) {
            let mut keys: Vec<&String> = meta.keys().collect();
            keys.sort();
            for k in keys {
                rows.push((format!("token_meta_{k}"), show(&meta[k])));
            }
        }
    }
    if get("lease_id").as_str().is_some_and(|l| !l.is_empty()) {
        rows.push(("lease_id".into(), show(&get("lease_id"))));
        rows.push(("lease_duration".into(), duration(get("lease_duration").as_u64().unwrap_or(0))));
        rows.push(("lease_renewable".into(), show(&get("renewable"))));
    }
    if let Some(data) = body.get("data").and_then(Value::as_object) {
        let mut keys: Vec<&String> = data.keys().collect();
        keys.sort();
        for k in keys {
            rows.push((k.clone(), show(&data[k])));
        }
    }
    rows
}

pub fn table(rows: &[(String, String)]) -> String {
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0).max(3);
    let mut out = format!("{:<width$}    Value\n{:<width$}    -----\n", "Key", "---");
    for (k, v) in rows {
        let _ = writeln!(out, "{k:<width$}    {v}");
    }
    out
}

/// The warnings of an answer, as the Vault CLI prints them (on stderr).
pub fn warnings(body: &Value) -> Option<String> {
    let list: Vec<&str> = body.get("warnings")?.as_array()?.iter().filter_map(Value::as_str).collect();
    (!list.is_empty()).then(|| {
        let items: Vec<String> = list.iter().map(|w| format!("  * {w}")).collect();
        format!("WARNING! The following warnings were returned from Vault:\n\n{}\n", items.join("\n\n"))
    })
}

/// One field for `-field=NAME`: from `data`, else from the auth block (`token` and friends).
pub fn field(body: &Value, name: &str) -> Result<String, Exit> {
    if let Some(v) = body.get("data").and_then(|d| d.get(name)) {
        return Ok(raw(v));
    }
    if let Some((_, v)) = rows(body).into_iter().find(|(k, _)| k == name) {
        return Ok(v);
    }
    Err(Exit::local(format!("Field \"{name}\" not present in secret")))
}

fn raw(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Prints an answer with a body in the chosen shape.
pub fn print(body: &Value, format: Format, field_name: Option<&str>) -> Result<(), Exit> {
    if let Some(name) = field_name {
        println!("{}", field(body, name)?);
        return Ok(());
    }
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(body).map_err(Exit::local)?),
        Format::Table => {
            if let Some(w) = warnings(body) {
                eprintln!("{w}");
            }
            print!("{}", table(&rows(body)));
        }
    }
    Ok(())
}

/// Object fields of a request from `k=v` arguments: `k=@file` reads a file, `k=-` reads
/// standard input; a lone `-` reads a whole JSON object from standard input.
pub fn request_data(args: &[String], stdin: &mut dyn std::io::Read) -> Result<Map<String, Value>, Exit> {
    let mut data = Map::new();
    for arg in args {
        if arg == "-" {
            let mut text = String::new();
            stdin.read_to_string(&mut text).map_err(Exit::local)?;
            let parsed: Map<String, Value> = serde_json::from_str(&text)
                .map_err(|e| Exit::local(format!("Failed to parse JSON input: {e}")))?;
            data.extend(parsed);
            continue;
        }
        let Some((k, v)) = arg.split_once('=') else {
            return Err(Exit::local(format!("Failed to parse K=V data: invalid key/value pair \"{arg}\"")));
        };
        let value = if let Some(file) = v.strip_prefix('@') {
            std::fs::read_to_string(file)
                .map_err(|e| Exit::local(format!("Error reading file {file}: {e}")))?
        } else if v == "-" {
            let mut text = String::new();
            stdin.read_to_string(&mut text).map_err(Exit::local)?;
            text.trim_end_matches('\n').to_owned()
        } else {
            v.to_owned()
        };
        data.insert(k.to_owned(), Value::String(value));
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_and_durations_look_like_vaults() {
        assert_eq!(show(&json!(null)), "<nil>");
        assert_eq!(show(&json!(["a", "b"])), "[a b]");
        assert_eq!(show(&json!({"k": "v"})), "map[k:v]");
        assert_eq!(show(&json!(true)), "true");
        assert_eq!(duration(2_764_800), "768h");
        assert_eq!(duration(5400), "1h30m");
        assert_eq!(duration(45), "45s");
        assert_eq!(duration(0), "0s");
    }

    #[test]
    fn a_secret_prints_lease_facts_then_sorted_data() {
        let body = json!({"lease_id": "aws/creds/x/1", "lease_duration": 3600, "renewable": true,
                          "data": {"secret_key": "s", "access_key": "a", "session_token": null}});
        let text = table(&rows(&body));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0].split_whitespace().collect::<Vec<_>>(), ["Key", "Value"]);
        let keys: Vec<&str> = lines[2..].iter().map(|l| l.split_whitespace().next().unwrap()).collect();
        assert_eq!(
            keys,
            ["lease_id", "lease_duration", "lease_renewable", "access_key", "secret_key", "session_token"]
        );
        assert!(lines[3].ends_with("1h") && lines[7].ends_with("<nil>"), "{text}");
        assert_eq!(field(&body, "access_key").unwrap(), "a");
        assert_eq!(field(&body, "lease_duration").unwrap(), "1h");
        assert!(field(&body, "nope").is_err());
    }

    #[test]
    fn request_data_reads_files_and_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("policy.json");
        std::fs::write(&file, "{\"a\":1}").unwrap();
        let args = vec!["x=1".to_owned(), format!("doc=@{}", file.display()), "secret=-".to_owned()];
        let data = request_data(&args, &mut "from stdin\n".as_bytes()).unwrap();
        assert_eq!(Value::Object(data), json!({"x": "1", "doc": "{\"a\":1}", "secret": "from stdin"}));
        let data = request_data(&["-".to_owned()], &mut "{\"k\": [1]}".as_bytes()).unwrap();
        assert_eq!(Value::Object(data), json!({"k": [1]}));
        assert!(request_data(&["novalue".to_owned()], &mut "".as_bytes()).is_err());
    }
}
