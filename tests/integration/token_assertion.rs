//! `keycred assertion`: the signed JWT checked by tools we did not write. The signature is
//! verified with `openssl dgst` (PKCS#1 v1.5 and PSS, salt length 32), the header thumbprints are
//! compared with `openssl x509 -fingerprint`, and every claim is checked by value.

use crate::token_support;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use token_support::*;

const CLIENT: &str = "6731de76-14a6-49ae-97bc-6eba6914391e";
const TENANT: &str = "contoso.onmicrosoft.com";

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn assertion(cert: &std::path::Path, key: &std::path::Path, extra: &[&str]) -> (String, i64, i64) {
    let mut args = cert_args("assertion", cert, key, CLIENT, TENANT);
    args.extend_from_slice(extra);
    let before = now();
    let out = keycred(&args, &[]);
    let after = now();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).is_empty(), "nothing on stderr: {}", stderr(&out));
    let s = stdout(&out);
    assert_eq!(s.lines().count(), 1, "only the JWT on stdout");
    (s.trim().to_string(), before, after)
}

fn check_claims(claims: &serde_json::Value, aud: &str, lifetime: i64, before: i64, after: i64) {
    let obj = claims.as_object().unwrap();
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["aud", "exp", "iat", "iss", "jti", "nbf", "sub"]);
    assert_eq!(claims["aud"], aud, "aud is one string: the token endpoint");
    assert_eq!(claims["iss"], CLIENT);
    assert_eq!(claims["sub"], CLIENT);
    let jti = claims["jti"].as_str().unwrap();
    assert_eq!(uuid::Uuid::parse_str(jti).unwrap().get_version_num(), 4);
    let iat = claims["iat"].as_i64().unwrap();
    assert!(before <= iat && iat <= after, "iat {iat} is now ({before}..{after})");
    assert_eq!(claims["nbf"].as_i64().unwrap(), iat);
    assert_eq!(claims["exp"].as_i64().unwrap(), iat + lifetime);
}

#[test]
fn rs256_assertion_verified_by_openssl() {
    let dir = TempDir::new("assert-rs");
    let (cert, key) = openssl_cred(&dir, "daemon");
    let (jwt, before, after) = assertion(&cert, &key, &[]);
    assert!(openssl_verify(&jwt, &cert, "RS256", &dir), "openssl verifies the RS256 signature");
    let (header, claims) = jwt_parts(&jwt);
    let x5t = URL_SAFE_NO_PAD.encode(openssl_fingerprint(&cert, "sha1"));
    assert_eq!(header, serde_json::json!({"alg": "RS256", "typ": "JWT", "x5t": x5t}));
    check_claims(&claims, &format!("https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token"), 600, before, after);
    // A PSS verification of an RS256 signature must fail: the check is not vacuous.
    assert!(!openssl_verify(&jwt, &cert, "PS256", &dir));
}

#[test]
fn ps256_assertion_with_x5c_verified_by_openssl() {
    let dir = TempDir::new("assert-ps");
    let (cert, key) = openssl_cred(&dir, "daemon");
    let (jwt, before, after) =
        assertion(&cert, &key, &["--alg", "PS256", "--x5c", "--endpoint", "v1", "--lifetime", "300"]);
    assert!(openssl_verify(&jwt, &cert, "PS256", &dir), "openssl verifies the PS256 signature");
    let (header, claims) = jwt_parts(&jwt);
    let x5t256 = URL_SAFE_NO_PAD.encode(openssl_fingerprint(&cert, "sha256"));
    assert_eq!(
        header,
        serde_json::json!({"alg": "PS256", "typ": "JWT", "x5t#S256": x5t256, "x5c": [openssl_der_b64(&cert)]})
    );
    check_claims(&claims, &format!("https://login.microsoftonline.com/{TENANT}/oauth2/token"), 300, before, after);
}

#[test]
fn explicit_audience_and_authority() {
    let dir = TempDir::new("assert-aud");
    let (cert, key) = openssl_cred(&dir, "daemon");
    let (jwt, before, after) = assertion(&cert, &key, &["--audience", "https://login.windows.net/t-1/oauth2/token"]);
    check_claims(&jwt_parts(&jwt).1, "https://login.windows.net/t-1/oauth2/token", 600, before, after);
    let (jwt, before, after) = assertion(&cert, &key, &["--authority", "https://login.microsoftonline.us/"]);
    check_claims(
        &jwt_parts(&jwt).1,
        &format!("https://login.microsoftonline.us/{TENANT}/oauth2/v2.0/token"),
        600,
        before,
        after,
    );
}

#[test]
fn bad_inputs_exit_2_with_the_reason() {
    let dir = TempDir::new("assert-bad");
    let (cert, key) = openssl_cred(&dir, "daemon");
    let (_, other_key) = openssl_cred(&dir, "other");
    let base = |extra: &[&str]| {
        let mut a = vec!["assertion", "--cert", cert.to_str().unwrap(), "--client-id", CLIENT, "--tenant", TENANT];
        a.extend_from_slice(extra);
        keycred(&a, &[])
    };
    let o = base(&["--key", key.to_str().unwrap(), "--lifetime", "3601"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--lifetime 3601"), "{}", stderr(&o));
    assert!(stdout(&o).is_empty());

    let o = base(&["--key", other_key.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("other.key") && e.contains("daemon.pem"), "names both files: {e}");

    let o = base(&["--key", key.to_str().unwrap(), "--authority", "http://login.example.com"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("plain http"));

    let o = keycred(
        &["assertion", "--cert", cert.to_str().unwrap(), "--key", key.to_str().unwrap(), "--tenant", TENANT],
        &[],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--client-id"));
}

#[test]
fn an_expired_or_future_certificate_signs_with_a_warning() {
    let dir = TempDir::new("assert-dates");
    for (name, dates, warning) in [
        ("old", ["--not-before", "2020-01-01", "--not-after", "2021-01-01"], "expired on 2021-01-01"),
        ("future", ["--not-before", "2199-01-01", "--not-after", "2199-06-01"], "is not valid before 2199-01-01"),
    ] {
        let mut args = vec!["new", "--name", name, "--out-dir", dir.0.to_str().unwrap()];
        args.extend_from_slice(&dates);
        assert!(keycred(&args, &[]).status.success());
        let pem = dir.path(&format!("{name}.pem"));
        let o =
            keycred(&["assertion", "--cert", pem.to_str().unwrap(), "--client-id", CLIENT, "--tenant", TENANT], &[]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let e = stderr(&o);
        assert!(e.contains("warning") && e.contains(&format!("{name}.pem")) && e.contains(warning), "{e}");
        assert_eq!(stdout(&o).trim().split('.').count(), 3, "the JWT is still printed");
    }
}
