//! The fields of the AWS account form: their labels and hints, the rule the browser checks as
//! you type (the API's own rule, written as an HTML `pattern`), and the `config/root` body a
//! submitted form makes.

use std::collections::HashMap;

use keymint_engine::config::DEFAULT_CALL_TIMEOUT;
use keymint_engine::pace;
use serde_json::{Map, Value, json};

/// HTML `pattern`s (the whole value must match) mirroring the API's checks in
/// `keymint_engine::config`. They are written for the `v` flag browsers compile patterns
/// with, so `/` and `-` are escaped inside classes; the tests hold them to the API's rules.
pub(crate) mod patterns {
    /// `role_arn`: starts with `arn:` and holds `:role/`.
    pub const ROLE_ARN: &str = r"arn:(.*:)?role/.*";
    /// `expected_account_id`: 12 digits.
    pub const ACCOUNT_ID: &str = "[0-9]{12}";
    /// `external_id`: 2 to 1224 of letters, digits and `+=,.@:/-`.
    pub const EXTERNAL_ID: &str = r"[A-Za-z0-9+=,.@:\/\-]{2,1224}";
    /// `role_session_name`: 2 to 64 of letters, digits and `_+=,.@-`.
    pub const SESSION_NAME: &str = r"[A-Za-z0-9_+=,.@\-]{2,64}";
    /// A duration as the API reads one: seconds, days (`7d`) or a Go duration (`1h30m`). The
    /// ranges a field allows are in its hint; the server checks them.
    pub const DURATION: &str = r"\+?[0-9]+d?|\+?(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+";
}

/// How a field is shown and sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Input {
    Text,
    /// Write-only: never shown, empty keeps the stored one.
    Secret,
    /// A whole number between the two bounds.
    Number(i64, i64),
    /// Items, one per line: sent as a list.
    Lines,
    /// A checkbox: sent as true or false.
    Check,
}

/// Where a field sits on the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Group {
    Keys,
    Role,
    Account,
    Advanced,
    Pacing,
    Rotation,
}

pub(crate) struct Spec {
    pub name: &'static str,
    pub label: &'static str,
    pub group: Group,
    pub input: Input,
    /// An HTML pattern; empty for none.
    pub pattern: &'static str,
    pub maxlength: u32,
    /// Digits only: the browser offers a number keyboard.
    pub numeric: bool,
    pub hint: String,
    /// What an empty field sends, when that is not the empty value itself.
    pub when_empty: Option<Value>,
    /// A stored 0 means "not set" (what an empty field sends): it is shown empty.
    pub zero_unset: bool,
}

const fn spec(name: &'static str, label: &'static str, group: Group, input: Input) -> Spec {
    Spec {
        name,
        label,
        group,
        input,
        pattern: "",
        maxlength: 0,
        numeric: false,
        hint: String::new(),
        when_empty: None,
        zero_unset: false,
    }
}

impl Spec {
    fn hint(mut self, hint: impl Into<String>) -> Spec {
        self.hint = hint.into();
        self
    }

    fn rule(mut self, pattern: &'static str, maxlength: u32) -> Spec {
        self.pattern = pattern;
        self.maxlength = maxlength;
        self
    }

    fn numeric(mut self) -> Spec {
        self.numeric = true;
        self
    }

    fn empty_sends(mut self, value: Value) -> Spec {
        self.when_empty = Some(value);
        self
    }

    fn zero_unset(mut self) -> Spec {
        self.zero_unset = true;
        self
    }

    /// The stored `value` as this field shows it.
    pub fn shown(&self, value: &Value) -> String {
        if self.zero_unset && value.as_u64() == Some(0) { String::new() } else { shown(value) }
    }
}

/// The role fields: sent empty (the role is dropped) unless "assume a role" is ticked.
pub(crate) const ROLE_FIELDS: &[&str] = &["role_arn", "external_id", "role_session_name", "duration"];

const DURATION_WORDS: &str = "Seconds, or a duration such as 90s, 30m, 12h, 7d.";

fn secs(n: u64) -> String {
    format!("{n} seconds")
}

/// Every field of the form, in page order.
pub(crate) fn specs() -> Vec<Spec> {
    use Group::*;
    use Input::*;
    use patterns::*;
    let rate = |name, label| {
        spec(name, label, Pacing, Number(0, 10_000))
            .numeric()
            .hint(
                "The most calls per second, 1 to 10000. Empty or 0: no cap; keymint goes as fast as \
                 requests come until AWS throttles, then keeps to the rate AWS accepts.",
            )
            .empty_sends(json!(0))
            .zero_unset()
    };
    vec![
        spec("access_key", "Access key ID", Keys, Text)
            .hint("The access key of an IAM user (or a temporary one, with its session token)."),
        spec("secret_key", "Secret access key", Keys, Secret),
        spec("role_arn", "Role ARN", Role, Text)
            .rule(ROLE_ARN, 0)
            .hint("arn:aws:iam::<account id>:role/<name>. keymint makes every call as a session of this role."),
        spec("external_id", "External ID", Role, Text)
            .rule(EXTERNAL_ID, 1224)
            .hint("Optional: 2 to 1224 characters of letters, digits and + = , . @ : / -"),
        spec("role_session_name", "Role session name", Role, Text)
            .rule(SESSION_NAME, 64)
            .hint("Optional: 2 to 64 characters of letters, digits and _ + = , . @ -. Empty: keymint."),
        spec("expected_account_id", "Expected account ID", Account, Text)
            .rule(ACCOUNT_ID, 12)
            .numeric()
            .hint("12 digits. Credentials of any other account are refused. Empty: any account."),
        spec("region", "Region", Account, Text)
            .hint("Region of the IAM and STS calls. Empty: AWS_REGION, then us-east-1."),
        spec("iam_endpoint", "IAM endpoint", Account, Text).hint("A URL. Empty: AWS's own."),
        spec("sts_endpoint", "STS endpoint", Account, Text).hint("A URL. Empty: the region's own."),
        spec("duration", "Role session duration", Advanced, Text)
            .rule(DURATION, 32)
            .hint(format!("How long each session of the role lasts: 15m to 12h. {DURATION_WORDS} Empty: 1h."))
            .zero_unset(),
        spec("session_token", "Session token", Advanced, Secret),
        spec("sts_region", "STS signing region", Advanced, Text)
            .hint("The region STS calls are signed for when the STS endpoint is set. Empty: the region above."),
        spec("sts_fallback_endpoints", "STS fallback endpoints", Advanced, Lines)
            .hint("URLs, one per line, tried in order when the STS endpoint fails."),
        spec("sts_fallback_regions", "STS fallback regions", Advanced, Lines)
            .hint("One per line: one region for each fallback endpoint, in the same order."),
        spec("max_retries", "Maximum retries", Advanced, Number(-1, 1000))
            .hint("Retries of a failed AWS call, within the retry deadline. Empty or -1: as many as the deadline allows.")
            .empty_sends(json!(-1)),
        spec("username_template", "User name template", Advanced, Text)
            .hint("Names of the IAM users made for iam_user roles. Empty: keymint's default template."),
        rate("iam_write_rate", "IAM write calls per second"),
        rate("iam_read_rate", "IAM read calls per second"),
        rate("sts_rate", "STS calls per second"),
        spec("max_queue_wait", "Longest queue wait", Pacing, Text)
            .rule(DURATION, 32)
            .hint(format!(
                "A new credential request that would wait longer than this for its turn is refused at once; \
                 at most 1h. {DURATION_WORDS} 0: never wait. Empty: the default, {}.",
                secs(pace::DEFAULT_MAX_QUEUE_WAIT.as_secs())
            ))
            .empty_sends(json!(pace::DEFAULT_MAX_QUEUE_WAIT.as_secs())),
        spec("retry_deadline", "Retry deadline", Pacing, Text)
            .rule(DURATION, 32)
            .hint(format!(
                "A throttled or failed call is retried until this long after its first failure; at most 1h. \
                 {DURATION_WORDS} 0: never retry. Empty: the default, {}.",
                secs(pace::DEFAULT_RETRY_DEADLINE.as_secs())
            ))
            .empty_sends(json!(pace::DEFAULT_RETRY_DEADLINE.as_secs())),
        spec("call_timeout", "Call timeout", Pacing, Text)
            .rule(DURATION, 32)
            .hint(format!(
                "Time limit of one attempt of one AWS call: 1s to 5m. {DURATION_WORDS} Empty: the default, {}.",
                secs(DEFAULT_CALL_TIMEOUT)
            ))
            .empty_sends(json!(DEFAULT_CALL_TIMEOUT)),
        spec("rotation_period", "Rotation period", Rotation, Text)
            .rule(DURATION, 32)
            .hint(format!("Rotate the root key this often; at least 60s. {DURATION_WORDS} Empty: no periodic rotation."))
            .zero_unset(),
        spec("rotation_schedule", "Rotation schedule", Rotation, Text)
            .hint("Instead of a period: a 5-field cron expression in UTC, such as 0 3 * * SUN. Empty: none."),
        spec("rotation_window", "Rotation window", Rotation, Text)
            .rule(DURATION, 32)
            .hint(format!(
                "With a schedule only: a rotation not started this long after its time waits for the next one; \
                 at least 60s. {DURATION_WORDS} Empty: no limit."
            ))
            .zero_unset(),
        spec("disable_automated_rotation", "Pause scheduled rotation", Rotation, Check)
            .hint("The period or schedule stays stored; no rotation runs until this is cleared."),
    ]
}

/// A stored value as the form shows it: lists one per line, numbers and durations as the API
/// returns them.
pub(crate) fn shown(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(shown).collect::<Vec<_>>().join("\n"),
        other => other.to_string(),
    }
}

/// Which credentials the form sends, from its radio group; a form without one sends what its
/// fields hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Credentials {
    Static,
    Chain,
}

impl Credentials {
    pub fn of(form: &HashMap<String, String>) -> Credentials {
        if form.get("credentials").is_some_and(|c| c == "chain") {
            Credentials::Chain
        } else {
            Credentials::Static
        }
    }
}

/// Whether the form asks to assume a role; a form without the checkbox sends its role fields
/// as they are. (The page sends a hidden `false` before the checkbox, which overrides it.)
pub(crate) fn assumes_role(form: &HashMap<String, String>) -> bool {
    form.get("assume_role").is_none_or(|v| v == "true")
}

/// The `config/root` body of a submitted form. A field the form does not carry is left out,
/// so the stored value stays (`config/root` merges). The credentials choice decides what is
/// sent: the default chain sends empty keys (which clears the stored ones); an empty secret
/// keeps the stored secret, and a new secret replaces the session token too (empty: none).
pub(crate) fn body(form: &HashMap<String, String>) -> Map<String, Value> {
    let mut body = Map::new();
    for spec in specs() {
        let Some(raw) = form.get(spec.name).map(|v| v.trim()) else { continue };
        let value = match spec.input {
            Input::Secret => continue,
            Input::Check => json!(raw == "true"),
            Input::Lines => json!(crate::pages::items(raw)),
            _ if raw.is_empty() => spec.when_empty.clone().unwrap_or_else(|| json!("")),
            // A number the browser let through as text goes as it is: the API says what is wrong.
            Input::Number(..) => raw.parse::<i64>().map_or_else(|_| json!(raw), |n| json!(n)),
            Input::Text => json!(raw),
        };
        body.insert(spec.name.to_string(), value);
    }
    let given = |name: &str| form.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    match Credentials::of(form) {
        Credentials::Chain => {
            for name in ["access_key", "secret_key", "session_token"] {
                body.insert(name.into(), json!(""));
            }
        }
        Credentials::Static => {
            if let Some(secret) = given("secret_key") {
                body.insert("secret_key".into(), json!(secret));
                let token = given("session_token").unwrap_or_default();
                body.insert("session_token".into(), json!(token));
            } else if let Some(token) = given("session_token") {
                body.insert("session_token".into(), json!(token));
            }
        }
    }
    if !assumes_role(form) {
        for name in ROLE_FIELDS {
            body.insert((*name).to_string(), json!(""));
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect()
    }

    #[test]
    fn empty_pacing_fields_send_no_cap_or_the_defaults_and_absent_fields_nothing() {
        let sent = body(&form(&[
            ("iam_write_rate", ""),
            ("sts_rate", "7"),
            ("max_queue_wait", ""),
            ("max_retries", ""),
            ("rotation_period", ""),
            ("disable_automated_rotation", "true"),
            ("sts_fallback_endpoints", "http://a.invalid\nhttp://b.invalid\n"),
        ]));
        assert_eq!(sent["iam_write_rate"], json!(0), "empty: no cap");
        assert_eq!(sent["sts_rate"], json!(7));
        assert_eq!(sent["max_queue_wait"], json!(pace::DEFAULT_MAX_QUEUE_WAIT.as_secs()));
        assert_eq!(sent["max_retries"], json!(-1));
        assert_eq!(sent["rotation_period"], json!(""), "empty: no rotation");
        assert_eq!(sent["disable_automated_rotation"], json!(true));
        assert_eq!(sent["sts_fallback_endpoints"], json!(["http://a.invalid", "http://b.invalid"]));
        assert!(!sent.contains_key("iam_read_rate") && !sent.contains_key("region"), "{sent:?}");
        assert!(!sent.contains_key("secret_key") && !sent.contains_key("session_token"));
    }

    #[test]
    fn the_credentials_choice_decides_what_is_sent() {
        let chain = body(&form(&[("credentials", "chain"), ("access_key", "AKIAKEPT"), ("secret_key", "s")]));
        assert_eq!((&chain["access_key"], &chain["secret_key"]), (&json!(""), &json!("")));
        assert_eq!(chain["session_token"], json!(""));

        let new_secret =
            body(&form(&[("credentials", "static"), ("access_key", "AKIA1"), ("secret_key", "s")]));
        assert_eq!(new_secret["secret_key"], json!("s"));
        assert_eq!(new_secret["session_token"], json!(""), "a new secret replaces the token");
        let kept = body(&form(&[("credentials", "static"), ("access_key", "AKIA1"), ("secret_key", "")]));
        assert!(!kept.contains_key("secret_key") && !kept.contains_key("session_token"), "{kept:?}");

        let role = [("role_arn", "arn:aws:iam::123456789012:role/r"), ("duration", "1h")];
        let dropped = body(&form(&[role[0], role[1], ("assume_role", "false")]));
        assert_eq!((&dropped["role_arn"], &dropped["duration"]), (&json!(""), &json!("")));
        let assumed = body(&form(&[role[0], role[1], ("assume_role", "true")]));
        assert_eq!(assumed["role_arn"], json!(role[0].1));
        assert_eq!(body(&form(&role))["duration"], json!("1h"), "no checkbox: as given");
    }

    /// Whether the browser would take `value` for a field with `pattern`: HTML anchors it.
    fn matches(pattern: &str, value: &str) -> bool {
        regex::Regex::new(&format!("^(?:{pattern})$")).unwrap().is_match(value)
    }

    /// Whether `config/root` takes `input` (over static keys).
    fn api_takes(input: keymint_engine::RootConfigInput) -> bool {
        let keys = keymint_engine::RootConfigInput {
            access_key: Some("test-access".into()),
            secret_key: Some("test-secret".to_string().into()),
            ..input
        };
        keymint_engine::config::apply_root_write(None, keys).is_ok()
    }

    fn with_role(input: keymint_engine::RootConfigInput) -> keymint_engine::RootConfigInput {
        keymint_engine::RootConfigInput {
            role_arn: Some("arn:aws:iam::123456789012:role/keymint".into()),
            ..input
        }
    }

    fn agree(pattern: &str, values: &[&str], api: impl Fn(&str) -> bool) {
        let (mut taken, mut refused) = (0, 0);
        for value in values {
            let by_api = api(value);
            assert_eq!(matches(pattern, value), by_api, "{value:?}: the API says {by_api}");
            if by_api { taken += 1 } else { refused += 1 }
        }
        assert!(taken >= 3 && refused >= 3, "{pattern}: test both ways");
    }

    #[test]
    fn the_patterns_take_what_the_api_takes_and_refuse_what_it_refuses() {
        use keymint_engine::RootConfigInput as In;
        agree(
            patterns::ROLE_ARN,
            &[
                "arn:aws:iam::123456789012:role/keymint",
                "arn:aws-cn:iam::123456789012:role/path/to/r",
                "arn:role/x",
                "arn:aws:iam::123456789012:user/keymint",
                "aws:iam::123456789012:role/keymint",
                "ARN:aws:iam::123456789012:role/x",
                "arn:aws:iam::123456789012:role",
            ],
            |v| api_takes(In { role_arn: Some(v.into()), ..In::default() }),
        );
        agree(
            patterns::ACCOUNT_ID,
            &["123456789012", "000000000000", "999999999999", "12345678901", "1234567890123", "12345678901a"],
            |v| api_takes(In { expected_account_id: Some(v.into()), ..In::default() }),
        );
        let long = "a".repeat(1224);
        let too_long = "a".repeat(1225);
        agree(
            patterns::EXTERNAL_ID,
            &["ab", "tenant-42:/x=y,z.@+", &long, "a", &too_long, "has space", "semi;colon", "under_score"],
            |v| api_takes(with_role(In { external_id: Some(v.into()), ..In::default() })),
        );
        let name64 = "n".repeat(64);
        let name65 = "n".repeat(65);
        agree(
            patterns::SESSION_NAME,
            &["ab", "keymint_root-1+=,.@", &name64, "a", &name65, "has space", "slash/no", "colon:no"],
            |v| api_takes(with_role(In { role_session_name: Some(v.into()), ..In::default() })),
        );
        agree(
            patterns::DURATION,
            &[
                "900", "15m", "1h30m", "1.5h", "7d", "0", "+30s", "10x", "1h30", "h", "-5m", "1 h", "3dd",
                "1e3",
            ],
            |v| keymint_common::go::duration::parse_duration_secs(v).is_ok(),
        );
    }
}
