use serde_json::{Value, json};

use super::*;

const NOW: i64 = 1_700_000_000;

fn check(claims: Value, expected: &Expected) -> Result<(), JwtError> {
    match claims {
        Value::Object(map) => validate_claims(&map, expected, NOW),
        _ => panic!("claims are an object"),
    }
}

fn audience(aud: &str) -> Expected {
    Expected { audiences: vec![aud.to_string()], ..Expected::default() }
}

fn no_leeway() -> Expected {
    Expected { clock_skew_leeway: -1, expiration_leeway: -1, not_before_leeway: -1, ..Expected::default() }
}

#[test]
fn issuer_subject_and_audience_mismatches_use_vaults_texts() {
    let token = json!({"iss": "https://gitlab.example.com", "sub": "project_path:g/p", "aud": "vault", "exp": NOW + 60});
    let e = Expected {
        issuer: Some("https://gitlab.example.com".into()),
        subject: Some("project_path:g/p".into()),
        audiences: vec!["other".into(), "vault".into()],
        ..Expected::default()
    };
    assert_eq!(check(token.clone(), &e), Ok(()));

    let wrong_iss = Expected { issuer: Some("gitlab.example.com".into()), ..e.clone() };
    assert_eq!(
        check(token.clone(), &wrong_iss).map_err(|e| e.vault_text()),
        Err("error validating token: invalid issuer (iss) claim".into())
    );
    let wrong_sub = Expected { subject: Some("project_path:g/q".into()), ..e.clone() };
    assert_eq!(
        check(token.clone(), &wrong_sub).map_err(|e| e.vault_text()),
        Err("error validating token: invalid subject (sub) claim".into())
    );
    let wrong_aud = Expected { audiences: vec!["https://github.com/acme".into()], ..e.clone() };
    assert_eq!(
        check(token.clone(), &wrong_aud).map_err(|e| e.vault_text()),
        Err("error validating token: invalid audience (aud) claim: audience claim does not match any expected \
             audience"
            .into())
    );
    // A bound issuer with no iss claim at all is a mismatch too; an empty binding checks nothing.
    assert_eq!(check(json!({"exp": NOW}), &wrong_iss), Err(JwtError::InvalidIssuer));
    let empty = Expected { issuer: Some(String::new()), subject: Some(String::new()), ..Expected::default() };
    assert_eq!(check(json!({"exp": NOW}), &empty), Ok(()));
}

#[test]
fn checks_run_in_vaults_order() {
    let e = Expected { issuer: Some("a".into()), subject: Some("b".into()), ..audience("c") };
    let everything_wrong = json!({"iss": "x", "sub": "y", "aud": "z", "exp": NOW - 1000});
    assert_eq!(check(everything_wrong, &e), Err(JwtError::InvalidIssuer));
    assert_eq!(check(json!({"iss": "a", "sub": "y", "aud": "z"}), &e), Err(JwtError::InvalidSubject));
    assert_eq!(check(json!({"iss": "a", "sub": "b", "aud": "z"}), &e), Err(JwtError::InvalidAudience));
    assert_eq!(check(json!({"iss": "a", "sub": "b", "aud": "c"}), &e), Err(JwtError::NoTimeClaims));
    // Expired is reported before row 16.
    assert_eq!(check(json!({"aud": "c", "exp": NOW - 1000}), &Expected::default()), Err(JwtError::Expired));
}

#[test]
fn audience_may_be_a_string_or_a_list_and_any_match_is_enough() {
    assert_eq!(check(json!({"aud": "vault", "exp": NOW}), &audience("vault")), Ok(()));
    assert_eq!(check(json!({"aud": ["k8s", "vault"], "exp": NOW}), &audience("vault")), Ok(()));
    assert_eq!(
        check(json!({"aud": ["k8s"], "exp": NOW}), &audience("vault")),
        Err(JwtError::InvalidAudience)
    );
    assert_eq!(check(json!({"exp": NOW}), &audience("vault")), Err(JwtError::InvalidAudience));
    assert!(matches!(
        check(json!({"aud": ["vault", 1], "exp": NOW}), &audience("vault")),
        Err(JwtError::MalformedClaim { claim: "aud", .. })
    ));
}

#[test]
fn row_16_audience_present_but_none_bound() {
    let text = "audience claim found in JWT but no audiences bound to the role";
    for aud in [json!("vault"), json!(["vault"]), json!("")] {
        let err = check(json!({"aud": aud, "exp": NOW}), &Expected::default()).expect_err("refused");
        assert_eq!(err.vault_text(), text);
    }
    assert_eq!(check(json!({"aud": [], "exp": NOW}), &Expected::default()), Ok(()));
    assert_eq!(check(json!({"exp": NOW}), &Expected::default()), Ok(()));
    let kubernetes = Expected::kubernetes(None, None);
    assert_eq!(check(json!({"aud": ["https://kubernetes.default.svc"], "exp": NOW}), &kubernetes), Ok(()));
}

#[test]
fn a_time_claim_is_required_unless_kubernetes() {
    let text = "error validating token: no issued at (iat), not before (nbf), or expiration time (exp) claims in token";
    assert_eq!(
        check(json!({"sub": "x"}), &Expected::default()).map_err(|e| e.vault_text()),
        Err(text.into())
    );
    // Go reads an absent NumericDate as 0, so 0 is "absent".
    assert_eq!(check(json!({"exp": 0, "iat": null}), &Expected::default()), Err(JwtError::NoTimeClaims));
    // A legacy service-account token: no exp, no aud.
    let legacy = json!({"iss": "kubernetes/serviceaccount", "sub": "system:serviceaccount:ci:runner"});
    assert_eq!(
        check(legacy, &Expected::kubernetes(Some("vault".into()), None)),
        Err(JwtError::InvalidAudience)
    );
    let legacy = json!({"iss": "kubernetes/serviceaccount", "sub": "system:serviceaccount:ci:runner"});
    assert_eq!(check(legacy, &Expected::kubernetes(None, None)), Ok(()));
    // Present time claims are still checked for Kubernetes.
    let expired = json!({"aud": ["vault"], "exp": NOW - 61});
    assert_eq!(check(expired, &Expected::kubernetes(Some("vault".into()), None)), Err(JwtError::Expired));
}

#[test]
fn exp_edges_with_default_and_no_leeway() {
    let d = Expected::default();
    assert_eq!(check(json!({"exp": NOW - 60}), &d), Ok(()));
    assert_eq!(
        check(json!({"exp": NOW - 61}), &d).map_err(|e| e.vault_text()),
        Err("error validating token: invalid expiration time (exp) claim: token is expired".into())
    );
    assert_eq!(check(json!({"exp": NOW}), &no_leeway()), Ok(()));
    assert_eq!(check(json!({"exp": NOW - 1}), &no_leeway()), Err(JwtError::Expired));
    let skew_10 = Expected { clock_skew_leeway: 10, ..Expected::default() };
    assert_eq!(check(json!({"exp": NOW - 10}), &skew_10), Ok(()));
    assert_eq!(check(json!({"exp": NOW - 11}), &skew_10), Err(JwtError::Expired));
}

#[test]
fn nbf_edges_with_default_and_no_leeway() {
    let d = Expected::default();
    assert_eq!(check(json!({"nbf": NOW + 60, "exp": NOW + 600}), &d), Ok(()));
    assert_eq!(
        check(json!({"nbf": NOW + 61, "exp": NOW + 600}), &d).map_err(|e| e.vault_text()),
        Err("error validating token: invalid not before (nbf) claim: token not yet valid".into())
    );
    assert_eq!(check(json!({"nbf": NOW, "exp": NOW + 600}), &no_leeway()), Ok(()));
    assert_eq!(check(json!({"nbf": NOW + 1, "exp": NOW + 600}), &no_leeway()), Err(JwtError::NotYetValid));
}

#[test]
fn iat_edges_and_iat_standing_in_for_nbf() {
    let d = Expected::default();
    let future = |iat: i64| json!({"iat": iat, "nbf": NOW - 10, "exp": NOW + 600});
    assert_eq!(check(future(NOW + 60), &d), Ok(()));
    assert_eq!(
        check(future(NOW + 61), &d).map_err(|e| e.vault_text()),
        Err("error validating token: invalid issued at (iat) claim: token issued in the future".into())
    );
    assert_eq!(check(future(NOW), &no_leeway()), Ok(()));
    assert_eq!(check(future(NOW + 1), &no_leeway()), Err(JwtError::IssuedInFuture));
    // Without nbf, iat is the not-before time, so a future iat reads as "not yet valid".
    assert_eq!(check(json!({"iat": NOW + 61, "exp": NOW + 600}), &d), Err(JwtError::NotYetValid));
}

#[test]
fn missing_exp_is_latest_start_plus_expiration_leeway() {
    let d = Expected::default();
    // 150 s expiration leeway plus 60 s clock skew.
    assert_eq!(check(json!({"iat": NOW - 210}), &d), Ok(()));
    assert_eq!(check(json!({"iat": NOW - 211}), &d), Err(JwtError::Expired));
    // The later of iat and nbf counts.
    assert_eq!(check(json!({"iat": NOW - 1000, "nbf": NOW - 210}), &d), Ok(()));
    let exp_none = Expected { expiration_leeway: -1, ..Expected::default() };
    assert_eq!(check(json!({"iat": NOW - 60}), &exp_none), Ok(()));
    assert_eq!(check(json!({"iat": NOW - 61}), &exp_none), Err(JwtError::Expired));
    let exp_30 = Expected { expiration_leeway: 30, ..Expected::default() };
    assert_eq!(check(json!({"iat": NOW - 90}), &exp_30), Ok(()));
    assert_eq!(check(json!({"iat": NOW - 91}), &exp_30), Err(JwtError::Expired));
    assert_eq!(check(json!({"iat": NOW}), &no_leeway()), Ok(()));
    assert_eq!(check(json!({"iat": NOW - 1}), &no_leeway()), Err(JwtError::Expired));
}

#[test]
fn missing_nbf_and_iat_is_exp_minus_not_before_leeway() {
    let d = Expected::default();
    // nbf = exp - 150, accepted while now + 60 >= nbf.
    assert_eq!(check(json!({"exp": NOW + 210}), &d), Ok(()));
    assert_eq!(check(json!({"exp": NOW + 211}), &d), Err(JwtError::NotYetValid));
    let nbf_none = Expected { not_before_leeway: -1, ..Expected::default() };
    assert_eq!(check(json!({"exp": NOW + 60}), &nbf_none), Ok(()));
    assert_eq!(check(json!({"exp": NOW + 61}), &nbf_none), Err(JwtError::NotYetValid));
}

#[test]
fn numeric_dates_may_be_floats_and_other_types_are_refused() {
    let d = Expected::default();
    assert_eq!(check(json!({"exp": (NOW - 60) as f64 + 0.9}), &d), Ok(()));
    assert_eq!(check(json!({"exp": (NOW - 61) as f64 + 0.9}), &d), Err(JwtError::Expired));
    assert_eq!(check(json!({"iat": NOW, "exp": 1e300}), &d), Ok(()));
    for bad in
        [json!({"exp": "2030-01-01"}), json!({"iat": true, "exp": NOW}), json!({"nbf": [1], "exp": NOW})]
    {
        assert!(matches!(check(bad, &d), Err(JwtError::MalformedClaim { .. })));
    }
    let err = check(json!({"iss": 5, "exp": NOW}), &d).expect_err("refused");
    assert_eq!(err.vault_text(), "error validating token: malformed iss claim: not a string");
}
