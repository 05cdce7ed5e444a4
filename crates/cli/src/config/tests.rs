//! The whole load: layering order, unknown keys, every problem at once, the shipped examples.

use std::time::Duration;

use super::*;

const KEY: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An environment of these variables only.
fn env(vars: &[(&str, &str)]) -> Env {
    vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn no_flags() -> Flags {
    Flags::default()
}

/// Everything a start needs, with the seal key in `$K`.
const BASE: &str =
    "[listener]\ntls_disable = true\n[storage]\nurl = \"sqlite:///a.db\"\n[seal]\nkey_env = \"K\"\n";

fn with_key() -> Env {
    env(&[("K", KEY)])
}

fn problems(text: &str, env: &Env) -> String {
    parse(text, env, &no_flags()).unwrap_err().join("\n")
}

#[test]
fn a_complete_config_loads() {
    let env = env(&[("MY_KEY", KEY)]);
    let cfg = parse(
        r#"
        [listener]
        address = "0.0.0.0:8300"
        tls_cert_file = "/etc/keymint/tls.crt"
        tls_key_file = "/etc/keymint/tls.key"
        [storage]
        url = "sqlite:///var/lib/keymint/k.db"
        max_connections = 4
        [seal]
        key_env = "MY_KEY"
        [log]
        format = "json"
        level = "debug"
        [audit]
        file_path = "stdout"
        "#,
        &env,
        &no_flags(),
    )
    .unwrap();
    assert_eq!(cfg.listen.port(), 8300);
    assert_eq!(
        cfg.tls,
        Some(TlsFiles { cert_file: "/etc/keymint/tls.crt".into(), key_file: "/etc/keymint/tls.key".into() })
    );
    assert_eq!(cfg.storage_url.as_str(), "sqlite:///var/lib/keymint/k.db");
    assert_eq!(cfg.max_connections, 4);
    assert!(cfg.log.json);
    assert_eq!(cfg.log.level, "debug");
    assert_eq!(cfg.audit_file.as_deref(), Some("stdout"));
}

#[test]
fn defaults_fill_what_the_file_leaves_out() {
    let cfg = parse(BASE, &with_key(), &no_flags()).unwrap();
    assert_eq!(cfg.listen, std::net::SocketAddr::from(([127, 0, 0, 1], 8200)));
    assert_eq!(cfg.max_connections, 10);
    assert!(!cfg.log.json);
    assert_eq!(cfg.log.level, "info");
    assert_eq!(cfg.leases, LeaseTiming::default());
    assert_eq!(cfg.audit_file, None);
}

#[test]
fn every_error_is_reported_at_once() {
    let all = problems(
        r#"
        [listener]
        address = "nowhere"
        adress = "typo"
        [storage]
        url = "mysql://x"
        max_connections = 0
        [seal]
        key_env = "UNSET_VAR"
        [log]
        format = "xml"
        level = 3
        [leases]
        claim_timeout = "soon"
        revocation_concurrency = 1000
        [extra]
        "#,
        &env(&[]),
    );
    for needle in [
        "unknown key listener.adress",
        "unknown section [extra]",
        "listener.address \"nowhere\" is not an IP:port address",
        "storage.url: ",
        "storage.max_connections must be a whole number from 1 to 1000, got 0",
        "seal.key_env names UNSET_VAR, which is not set",
        "log.format must be \"text\" or \"json\", got \"xml\"",
        "log.level must be a string, got integer",
        "leases.claim_timeout: time: invalid duration",
        "leases.revocation_concurrency must be a whole number from 1 to 256, got 1000",
    ] {
        assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
    }
    // A key given with a bad value is not also reported missing.
    assert!(!all.contains("storage.url is required"), "{all}");
}

#[test]
fn unknown_keys_are_named_in_every_section() {
    for section in ["listener", "storage", "seal", "log", "leases", "audit"] {
        // Reported alongside whatever else is wrong (here: the required keys are missing).
        let all = problems(&format!("[{section}]\nbogus = 1\n"), &with_key());
        assert!(all.contains(&format!("unknown key {section}.bogus")), "{section}: {all}");
    }
    let all = problems(&format!("{BASE}cache = 3\n[extra]\n"), &with_key());
    assert!(all.contains("unknown section [extra]"), "{all}");
    // A top-level key after [seal] belongs to [seal]; before any table it is a section.
    assert!(all.contains("unknown key seal.cache"), "{all}");
    let all = problems(&format!("log = \"json\"\n{BASE}"), &with_key());
    assert!(all.contains("log must be a table ([log])"), "{all}");
}

#[test]
fn the_key_lists_match_the_structs() {
    let names: Vec<&str> = layers::sections().iter().map(|(name, _)| *name).collect();
    assert_eq!(names, layers::keys::<layers::Settings>(), "every section of the file is walked");
    for (name, keys) in layers::sections() {
        assert!(!keys.is_empty(), "{name} has no keys");
    }
    assert_eq!(
        layers::keys::<layers::Listener>(),
        [
            "address",
            "tls_cert_file",
            "tls_key_file",
            "tls_disable",
            "request_timeout",
            "x_forwarded_for_authorized_addrs",
            "x_forwarded_for_hop_skips",
            "x_forwarded_for_reject_not_authorized",
            "x_forwarded_for_reject_not_present",
        ]
    );
    assert_eq!(layers::env_name("leases", "claim_timeout"), "KEYMINT_LEASES_CLAIM_TIMEOUT");
}

#[test]
fn layers_apply_file_then_environment_then_flags() {
    let file = format!(
        "{BASE}[leases]\niam_consistency_window = \"1m\"\nintent_grace = \"10m\"\nclaim_timeout = \"30s\"\n"
    );
    let file_only = parse(&file, &with_key(), &no_flags()).unwrap().leases;
    assert_eq!(file_only.iam_consistency_window, Duration::from_secs(60));
    assert_eq!(file_only.claim_timeout, Duration::from_secs(30));

    let env = env(&[
        ("K", KEY),
        ("KEYMINT_LEASES_CLAIM_TIMEOUT", "45s"),
        ("KEYMINT_LEASES_IAM_CONSISTENCY_WINDOW", "2m"),
        ("KEYMINT_STORAGE_URL", "postgres://db/keymint"),
        ("KEYMINT_LISTENER_ADDRESS", "127.0.0.1:9999"),
        ("KEYMINT_STORAGE_MAX_CONNECTIONS", "3"),
    ]);
    let with_env = parse(&file, &env, &no_flags()).unwrap();
    assert_eq!(with_env.leases.claim_timeout, Duration::from_secs(45));
    assert_eq!(with_env.leases.iam_consistency_window, Duration::from_secs(120));
    assert_eq!(with_env.leases.intent_grace, Duration::from_secs(600), "a key the environment leaves alone");
    assert_eq!(with_env.storage_url.as_str(), "postgres://db/keymint");
    assert_eq!(with_env.listen.port(), 9999);
    assert_eq!(with_env.max_connections, 3);

    let flags =
        Flags { claim_timeout: Some(Duration::from_secs(5)), revocation_concurrency: Some(2), ..no_flags() };
    let with_flags = parse(&file, &env, &flags).unwrap().leases;
    assert_eq!(with_flags.claim_timeout, Duration::from_secs(5));
    assert_eq!(with_flags.revocation_concurrency, 2);
    assert_eq!(with_flags.iam_consistency_window, Duration::from_secs(120), "the environment's, no flag");
}

#[test]
fn a_bad_environment_value_names_its_variable() {
    let env = env(&[
        ("K", KEY),
        ("KEYMINT_STORAGE_MAX_CONNECTIONS", "many"),
        ("KEYMINT_LISTENER_TLS_DISABLE", "maybe"),
    ]);
    let all = problems(BASE, &env);
    assert!(
        all.contains("KEYMINT_STORAGE_MAX_CONNECTIONS: storage.max_connections must be a whole number"),
        "{all}"
    );
    assert!(
        all.contains("KEYMINT_LISTENER_TLS_DISABLE: listener.tls_disable must be true or false"),
        "{all}"
    );
}

#[test]
fn flags_are_checked_with_the_rest() {
    let flags = Flags {
        claim_timeout: Some(Duration::ZERO),
        intent_grace: Some(Duration::from_secs(1)),
        ..no_flags()
    };
    let all = parse(BASE, &with_key(), &flags).unwrap_err().join("\n");
    assert!(all.contains("--lease-claim-timeout must be at least 1s"), "{all}");
    assert!(all.contains("--intent-grace must be at least the IAM consistency window"), "{all}");
    assert!(flags.over_defaults().is_err());
    let dev =
        Flags { iam_consistency_window: Some(Duration::from_secs(1)), ..no_flags() }.over_defaults().unwrap();
    assert_eq!(dev.iam_consistency_window, Duration::from_secs(1));
    assert_eq!(dev.intent_grace, LeaseTiming::default().intent_grace);
}

#[test]
fn plain_http_must_be_asked_for() {
    let rest = "[storage]\nurl = \"sqlite:///a.db\"\n[seal]\nkey_env = \"K\"\n";
    let errors = problems(rest, &with_key());
    assert!(errors.contains("tls_cert_file and tls_key_file are required"), "{errors}");
    let errors = problems(&format!("[listener]\ntls_cert_file = \"c.pem\"\n{rest}"), &with_key());
    assert!(errors.contains("tls_cert_file and tls_key_file are required"), "{errors}");
    let cfg = parse(&format!("[listener]\ntls_disable = true\n{rest}"), &with_key(), &no_flags()).unwrap();
    assert_eq!(cfg.tls, None);
    let env_off = env(&[("K", KEY), ("KEYMINT_LISTENER_TLS_DISABLE", "true")]);
    assert_eq!(parse(rest, &env_off, &no_flags()).unwrap().tls, None);
    let errors =
        problems(&format!("[listener]\ntls_disable = true\ntls_key_file = \"k\"\n{rest}"), &with_key());
    assert!(errors.contains("conflicts"), "{errors}");
}

#[test]
fn lease_timings_parse_and_are_checked() {
    let cfg = parse(
        &format!(
            "{BASE}[leases]\niam_consistency_window = \"2m\"\nintent_grace = \"10m\"\nclaim_timeout = \"90s\"\nrevocation_concurrency = 32\n"
        ),
        &with_key(),
        &no_flags(),
    )
    .unwrap();
    assert_eq!(cfg.leases.iam_consistency_window, Duration::from_secs(120));
    assert_eq!(cfg.leases.intent_grace, Duration::from_secs(600));
    assert_eq!(cfg.leases.claim_timeout, Duration::from_secs(90));
    assert_eq!(cfg.leases.revocation_concurrency, 32);
    let errors = problems(
        &format!("{BASE}[leases]\niam_consistency_window = \"1h\"\nintent_grace = \"abc\"\n"),
        &with_key(),
    );
    assert!(errors.contains("leases.intent_grace: time: invalid duration"), "{errors}");
    let errors = problems(&format!("{BASE}[leases]\niam_consistency_window = \"1h\"\n"), &with_key());
    assert!(
        errors.contains("leases.intent_grace must be at least leases.iam_consistency_window"),
        "{errors}"
    );
    let errors = problems(&format!("{BASE}[leases]\nclaim_timeout = \"0s\"\n"), &with_key());
    assert!(errors.contains("leases.claim_timeout must be at least 1s"), "{errors}");
}

#[test]
fn the_seal_key_is_read_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("seal.key");
    std::fs::write(&key_file, KEY).unwrap();
    let text = format!(
        "[listener]\ntls_disable = true\n[storage]\nurl = \"sqlite:///a.db\"\n[seal]\nkey_file = \"{}\"\n",
        key_file.display()
    );
    parse(&text, &env(&[]), &no_flags()).unwrap();
    let errors = problems(BASE, &env(&[("K", "too-short")]));
    assert!(errors.starts_with("K: "), "{errors}");
    let errors = problems(&text, &env(&[("KEYMINT_SEAL_KEY_ENV", "K"), ("K", KEY)]));
    assert!(errors.contains("seal: give key_file or key_env, not both"), "{errors}");
    let errors = problems("[seal]\nkey_file = \"/nonexistent/seal.key\"\n", &env(&[]));
    assert!(errors.contains("seal.key_file /nonexistent/seal.key: "), "{errors}");
}

#[test]
fn the_documented_examples_are_valid() {
    // The examples point at key files that exist on a real host, not here: that must be
    // the only complaint, so every documented key and value is known and well-formed.
    for (name, text) in [
        ("keymint.example.toml", include_str!("../../../../config/keymint.example.toml")),
        ("keymint.single-node.toml", include_str!("../../../../config/keymint.single-node.toml")),
    ] {
        let errors = parse(text, &env(&[]), &no_flags()).unwrap_err();
        assert_eq!(errors.len(), 1, "{name}: {errors:?}");
        assert!(errors[0].starts_with("seal.key_file /etc/keymint/seal.key"), "{name}: {errors:?}");
    }
    let env = env(&[("KEYMINT_SEAL_KEY", KEY)]);
    parse(include_str!("../../../../config/keymint.ha-postgres.toml"), &env, &no_flags()).unwrap();
}

#[test]
fn required_fields_are_named() {
    let all = problems("", &env(&[]));
    assert!(all.contains("storage.url is required"));
    assert!(all.contains("seal.key_file or seal.key_env is required"));
}

#[test]
fn invalid_toml_is_one_problem() {
    let errors = parse("[listener\n", &env(&[]), &no_flags()).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert!(errors[0].starts_with("invalid TOML: "), "{errors:?}");
}

#[test]
fn the_jwks_refetch_interval_has_a_floor() {
    let cfg =
        parse(&format!("{BASE}[auth]\njwks_refetch_interval = \"5m\"\n"), &with_key(), &no_flags()).unwrap();
    assert_eq!(cfg.jwks_refetch_interval, Duration::from_secs(300));
    let default = parse(BASE, &with_key(), &no_flags()).unwrap();
    assert_eq!(default.jwks_refetch_interval, JWKS_REFETCH_INTERVAL);
    let errors = problems(&format!("{BASE}[auth]\njwks_refetch_interval = \"0s\"\n"), &with_key());
    assert!(errors.contains("auth.jwks_refetch_interval must be at least 1s"), "{errors}");
}

/// [`BASE`] with these extra `[listener]` lines.
fn with_listener(lines: &str) -> String {
    BASE.replacen("[listener]\n", &format!("[listener]\n{lines}"), 1)
}

#[test]
fn the_request_timeout_defaults_to_vaults_and_has_a_floor() {
    assert_eq!(parse(BASE, &with_key(), &no_flags()).unwrap().request_timeout, Duration::from_secs(150));
    let cfg = parse(&with_listener("request_timeout = \"2m\"\n"), &with_key(), &no_flags()).unwrap();
    assert_eq!(cfg.request_timeout, Duration::from_secs(120));
    let env = env(&[("K", KEY), ("KEYMINT_LISTENER_REQUEST_TIMEOUT", "30s")]);
    assert_eq!(parse(BASE, &env, &no_flags()).unwrap().request_timeout, Duration::from_secs(30));
    let errors = problems(&with_listener("request_timeout = \"0s\"\n"), &with_key());
    assert!(errors.contains("listener.request_timeout must be at least 1s"), "{errors}");
}

#[test]
fn the_intent_grace_outlasts_the_longest_request() {
    // A creation still under way must never look abandoned to the sweeper.
    let text = with_listener("request_timeout = \"5m\"\n");
    let errors = problems(&text, &with_key());
    assert!(errors.contains("leases.intent_grace must be longer than listener.request_timeout"), "{errors}");
    let flags = Flags { intent_grace: Some(Duration::from_secs(600)), ..no_flags() };
    assert_eq!(parse(&text, &with_key(), &flags).unwrap().leases.intent_grace, Duration::from_secs(600));
    let flags = Flags { intent_grace: Some(Duration::from_secs(300)), ..no_flags() };
    let errors = parse(&text, &with_key(), &flags).unwrap_err().join("\n");
    assert!(errors.contains("--intent-grace must be longer than listener.request_timeout"), "{errors}");
}

#[test]
fn forwarded_for_rules_take_vaults_documented_defaults() {
    assert_eq!(parse(BASE, &with_key(), &no_flags()).unwrap().forwarded_for, None);
    let cfg = parse(
        &with_listener("x_forwarded_for_authorized_addrs = [\"10.0.0.0/8\", \"192.0.2.7\"]\n"),
        &with_key(),
        &no_flags(),
    )
    .unwrap();
    let rules = cfg.forwarded_for.unwrap();
    let addrs: Vec<String> = rules.authorized_addrs.iter().map(ToString::to_string).collect();
    assert_eq!(addrs, ["10.0.0.0/8", "192.0.2.7"]);
    assert_eq!((rules.hop_skips, rules.reject_not_authorized, rules.reject_not_present), (0, true, true));

    let env = env(&[
        ("K", KEY),
        ("KEYMINT_LISTENER_X_FORWARDED_FOR_AUTHORIZED_ADDRS", "10.1.0.0/16, 10.2.0.0/16"),
        ("KEYMINT_LISTENER_X_FORWARDED_FOR_HOP_SKIPS", "1"),
        ("KEYMINT_LISTENER_X_FORWARDED_FOR_REJECT_NOT_PRESENT", "false"),
    ]);
    let rules = parse(&with_listener("x_forwarded_for_reject_not_authorized = false\n"), &env, &no_flags())
        .unwrap()
        .forwarded_for
        .unwrap();
    assert_eq!(rules.authorized_addrs.len(), 2);
    assert_eq!((rules.hop_skips, rules.reject_not_authorized, rules.reject_not_present), (1, false, false));
}

#[test]
fn forwarded_for_mistakes_are_reported_with_the_rest() {
    // The other keys without authorized addresses: the operator meant to turn it on.
    let errors = problems(
        &with_listener("x_forwarded_for_hop_skips = 1\nx_forwarded_for_reject_not_present = false\n"),
        &with_key(),
    );
    for key in ["x_forwarded_for_hop_skips", "x_forwarded_for_reject_not_present"] {
        assert!(
            errors.contains(&format!("listener.{key} is set, but x_forwarded_for_authorized_addrs is not")),
            "{key}: {errors}"
        );
    }
    let errors = problems(
        &with_listener(
            "x_forwarded_for_authorized_addrs = \"10.0.0.0/40\"\nx_forwarded_for_hop_skips = -1\n\
             x_forwarded_for_reject_not_authorized = \"maybe\"\n",
        ),
        &with_key(),
    );
    assert!(errors.contains("listener.x_forwarded_for_authorized_addrs: error parsing address"), "{errors}");
    assert!(
        errors.contains("listener.x_forwarded_for_hop_skips must be a whole number from 0 to 255"),
        "{errors}"
    );
    assert!(
        errors.contains("listener.x_forwarded_for_reject_not_authorized must be true or false"),
        "{errors}"
    );
    // A refused address list is not also reported as missing.
    assert!(!errors.contains("is set, but x_forwarded_for_authorized_addrs is not"), "{errors}");
}
