//! Vault field coercion, rule by rule.
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
