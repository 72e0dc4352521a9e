//! One test per client-assertion and request rule of the emulator: the bad request is sent and
//! the AADSTS code, the HTTP status, the `error` value and the text are checked against
//! PROTOCOL.md section 4.

use crate::emulator_support;

use emulator_support::*;
use keycred::cert::SignatureAlg;
use keycred::jwt;
use keycred::thumbprint::b64url;
use serde_json::{json, Value};

#[tokio::test]
async fn malformed_jwt_is_50027() {
    let f = fixture().await;
    let got = f.post_v2_assertion("not-a-jwt").await;
    let d = assert_entra_error(&got, 400, "invalid_request", 50027);
    assert!(d.contains("JWT token is invalid or malformed."), "{d}");
}

#[tokio::test]
async fn alg_none_and_hs256_are_refused() {
    let f = fixture().await;
    for alg in ["none", "HS256"] {
        let h = b64url(json!({"alg": alg, "typ": "JWT", "x5t": f.cred.cert.x5t()}).to_string().as_bytes());
        let c = b64url(f.claims(&f.v2()).to_string().as_bytes());
        let sig = if alg == "none" { String::new() } else { b64url(b"forged-hmac") };
        let got = f.post_v2_assertion(&format!("{h}.{c}.{sig}")).await;
        let d = assert_entra_error(&got, 400, "invalid_request", 5002738);
        assert!(d.contains(&format!("'{alg}' is not a supported signature algorithm")), "{d}");
    }
}

#[tokio::test]
async fn unregistered_thumbprint_is_700027_key_not_found_quoting_hex() {
    let f = fixture().await;
    let other = credential("not registered");
    let got = f.post_v2_assertion(&assertion_for(&other, &f.v2(), SignatureAlg::Rs256)).await;
    let d = assert_entra_error(&got, 401, "invalid_client", 700027);
    assert!(d.contains("[Reason - The key was not found., Thumbprint of key used by client: '"), "{d}");
    // The quoted thumbprint is the one openssl prints for that certificate.
    let dir = TempDir::new("emu-test");
    let pem = dir.path("other.pem");
    std::fs::write(&pem, other.cert.to_pem()).unwrap();
    let out = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha1", "-in"])
        .arg(&pem)
        .output()
        .unwrap();
    let fp = String::from_utf8(out.stdout).unwrap();
    let hex: String = fp.split('=').nth(1).unwrap().trim().replace(':', "");
    assert_eq!(hex.len(), 40);
    assert!(d.contains(&format!("'{hex}'")), "{d} should quote {hex}");
    assert!(d.contains(&format!("app Id '{APP_ID}'")), "{d}");
}

#[tokio::test]
async fn x5c_never_makes_an_unregistered_certificate_acceptable() {
    let f = fixture().await;
    let other = credential("attacker");
    let mut h = serde_json::Map::new();
    h.insert("x5t".into(), json!(other.cert.x5t()));
    h.insert("x5c".into(), json!([other.cert.value_b64()]));
    // kid and jku name the registered certificate, and must be ignored for key selection.
    h.insert("kid".into(), json!(f.cred.cert.x5t()));
    h.insert("jku".into(), json!("https://attacker.example/keys"));
    let t = keycred::jwt::sign(&other.key, SignatureAlg::Rs256, h, &f.claims(&f.v2())).unwrap();
    let got = f.post_v2_assertion(&t).await;
    assert_entra_error(&got, 401, "invalid_client", 700027);
}

#[tokio::test]
async fn x5t_s256_for_unregistered_certificate_is_700027() {
    let f = fixture().await;
    let other = credential("not registered ps256");
    let got = f.post_v2_assertion(&assertion_for(&other, &f.v2(), SignatureAlg::Ps256)).await;
    let d = assert_entra_error(&got, 401, "invalid_client", 700027);
    assert!(d.contains("The key was not found."), "{d}");
}

#[tokio::test]
async fn bad_signature_is_700027() {
    let f = fixture().await;
    let other = credential("wrong key");
    // Registered certificate's x5t, signed by another key.
    let t = keycred::jwt::sign(&other.key, SignatureAlg::Rs256, f.header(), &f.claims(&f.v2())).unwrap();
    let got = f.post_v2_assertion(&t).await;
    let d = assert_entra_error(&got, 401, "invalid_client", 700027);
    assert!(d.contains("The provided signature value did not match the expected signature value."), "{d}");
    assert!(d.contains(&format!("'{}'", f.cred.cert.thumbprint())), "{d}");
    // A tampered payload under a genuine signature fails the same way.
    let good = f.assertion(&f.v2());
    let parts: Vec<&str> = good.split('.').collect();
    let mut claims = f.claims(&f.v2());
    claims["exp"] = json!(keycred::jwt::now_secs() + 3000);
    let tampered = format!("{}.{}.{}", parts[0], b64url(claims.to_string().as_bytes()), parts[2]);
    assert_entra_error(&f.post_v2_assertion(&tampered).await, 401, "invalid_client", 700027);
}

/// A rewrite in place with the same length and the same modification time (two saves within one
/// tick of a coarse file-system clock) leaves the stamp unchanged: only the content tells.
#[tokio::test]
async fn a_same_length_rewrite_within_one_clock_tick_is_seen() {
    let f = fixture().await;
    // A modification time in the future (clock skew) can never prove the content settled, so the
    // emulator must compare contents however long this test takes.
    let tick = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
    let rewrite = |start: &str, end: &str| {
        write_manifest(&f.manifest, vec![entry(&f.cred.cert, start, end)]);
        std::fs::File::options().write(true).open(&f.manifest).unwrap().set_modified(tick).unwrap();
    };
    rewrite("2020-01-01T00:00:00Z", "2021-01-01T00:00:00Z");
    let d = assert_entra_error(&f.post_v2_assertion(&f.assertion(&f.v2())).await, 401, "invalid_client", 700027);
    assert!(d.contains("The key used is expired."), "{d}");
    let before = std::fs::metadata(&f.manifest).unwrap();
    rewrite("2099-01-01T00:00:00Z", "2100-01-01T00:00:00Z");
    let after = std::fs::metadata(&f.manifest).unwrap();
    assert_eq!((before.len(), before.modified().unwrap()), (after.len(), after.modified().unwrap()));
    let d = assert_entra_error(&f.post_v2_assertion(&f.assertion(&f.v2())).await, 401, "invalid_client", 700027);
    assert!(d.contains("not yet valid"), "{d}");
}

#[tokio::test]
async fn credential_outside_its_dates_is_700027() {
    let f = fixture().await;
    write_manifest(&f.manifest, vec![entry(&f.cred.cert, "2020-01-01T00:00:00Z", "2021-01-01T00:00:00Z")]);
    let d = assert_entra_error(&f.post_v2_assertion(&f.assertion(&f.v2())).await, 401, "invalid_client", 700027);
    assert!(d.contains("The key used is expired."), "{d}");
    assert!(d.contains("Found key 'Start=01/01/2020 00:00:00, End=01/01/2021 00:00:00'"), "{d}");
    write_manifest(&f.manifest, vec![entry(&f.cred.cert, "2099-01-01T00:00:00Z", "2100-01-01T00:00:00Z")]);
    let d = assert_entra_error(&f.post_v2_assertion(&f.assertion(&f.v2())).await, 401, "invalid_client", 700027);
    assert!(d.contains("not yet valid"), "{d}");
}

#[tokio::test]
async fn audience_not_the_endpoint_called_is_700023() {
    let f = fixture().await;
    // The v1 endpoint's URL posted to v2, and Entra's public URL, are both wrong audiences.
    for aud in [f.v1(), format!("https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token")] {
        let got = f.post_v2_assertion(&f.assertion(&aud)).await;
        let d = assert_entra_error(&got, 401, "invalid_client", 700023);
        assert!(d.contains("Client assertion audience claim does not match Realm issuer."), "{d}");
    }
}

#[tokio::test]
async fn audience_array_is_5002741() {
    let f = fixture().await;
    let mut c = f.claims(&f.v2());
    c["aud"] = json!([f.v2(), f.v1()]);
    let got = f.post_v2_assertion(&f.signed(f.header(), c)).await;
    let d = assert_entra_error(&got, 401, "invalid_client", 5002741);
    assert!(d.contains("more than one audience"), "{d}");
}

#[tokio::test]
async fn subject_not_issuer_is_50048() {
    let f = fixture().await;
    let mut c = f.claims(&f.v2());
    c["sub"] = json!("00000000-0000-0000-0000-000000000001");
    let d = assert_entra_error(&f.post_v2_assertion(&f.signed(f.header(), c)).await, 401, "invalid_client", 50048);
    assert!(d.contains("Subject mismatches Issuer claim in the client assertion"), "{d}");
}

#[tokio::test]
async fn issuer_not_client_id_is_700021() {
    let f = fixture().await;
    let mut c = f.claims(&f.v2());
    c["iss"] = json!("00000000-0000-0000-0000-000000000001");
    c["sub"] = json!("00000000-0000-0000-0000-000000000001");
    let d = assert_entra_error(&f.post_v2_assertion(&f.signed(f.header(), c)).await, 401, "invalid_client", 700021);
    assert!(d.contains("doesn't match 'client_id' parameter"), "{d}");
}

#[tokio::test]
async fn expired_or_future_assertion_is_700024_beyond_five_minutes_skew() {
    let f = fixture().await;
    let now = keycred::jwt::now_secs();
    let mut c = f.claims(&f.v2());
    c["exp"] = json!(now - 400);
    let d = assert_entra_error(&f.post_v2_assertion(&f.signed(f.header(), c)).await, 401, "invalid_client", 700024);
    assert!(d.contains("Client assertion is not within its valid time range. Current time: "), "{d}");
    let mut c = f.claims(&f.v2());
    c["nbf"] = json!(now + 400);
    assert_entra_error(&f.post_v2_assertion(&f.signed(f.header(), c)).await, 401, "invalid_client", 700024);
    // Within the skew: accepted.
    let mut c = f.claims(&f.v2());
    c["exp"] = json!(now - 100);
    c["nbf"] = json!(now + 100);
    assert_eq!(f.post_v2_assertion(&f.signed(f.header(), c)).await.0, 200);
}

#[tokio::test]
async fn fractional_dates_and_reused_jti_are_accepted() {
    let f = fixture().await;
    let now = keycred::jwt::now_secs() as f64;
    let mut c = f.claims(&f.v2());
    c["nbf"] = json!(now + 0.25);
    c["iat"] = json!(now + 0.25);
    c["exp"] = json!(now + 599.75);
    let t = f.signed(f.header(), c);
    assert_eq!(f.post_v2_assertion(&t).await.0, 200);
    assert_eq!(f.post_v2_assertion(&t).await.0, 200, "same jti twice");
}

#[tokio::test]
async fn ps256_with_x5t_s256_is_accepted() {
    let f = fixture().await;
    let got = f.post_v2_assertion(&assertion_for(&f.cred, &f.v2(), SignatureAlg::Ps256)).await;
    assert_eq!(got.0, 200, "{}", got.1);
}

#[tokio::test]
async fn unknown_app_is_700016() {
    let f = fixture().await;
    let other = "11111111-2222-3333-4444-555555555555";
    let a = f.assertion(&f.v2());
    let scope = format!("{API}/.default");
    let got = post(&f.v2(), &client_credentials_form(other, &scope, &a)).await;
    let d = assert_entra_error(&got, 400, "unauthorized_client", 700016);
    assert!(d.contains(&format!("Application with identifier '{other}' was not found in the directory")), "{d}");
}

#[tokio::test]
async fn unknown_tenant_is_90002_and_malformed_tenant_is_900023() {
    let f = fixture().await;
    let base = f.emu.info().base_url().to_string();
    let form = [("grant_type", "client_credentials"), ("client_id", APP_ID), ("scope", "api://x/.default")];
    for t in ["00000000-1111-2222-3333-444444444444", "contoso.onmicrosoft.com"] {
        let got = post(&format!("{base}/{t}/oauth2/v2.0/token"), &form).await;
        let d = assert_entra_error(&got, 400, "invalid_tenant", 90002);
        assert!(d.contains(&format!("Tenant '{t}' not found.")), "{d}");
    }
    let got = post(&format!("{base}/not_a_tenant!/oauth2/v2.0/token"), &form).await;
    let d = assert_entra_error(&got, 400, "invalid_request", 900023);
    assert!(d.contains("is neither a valid DNS name, nor a valid external domain."), "{d}");
    // Discovery refuses them the same way.
    let r =
        client().get(format!("{base}/00000000-1111-2222-3333-444444444444/discovery/v2.0/keys")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
}

#[tokio::test]
async fn missing_parameters_are_900144() {
    let f = fixture().await;
    let scope = format!("{API}/.default");
    let full = [("grant_type", "client_credentials"), ("client_id", APP_ID), ("scope", scope.as_str())];
    for missing in ["grant_type", "client_id", "scope"] {
        let form: Vec<(&str, &str)> = full.iter().copied().filter(|(k, _)| *k != missing).collect();
        let d = assert_entra_error(&post(&f.v2(), &form).await, 400, "invalid_request", 900144);
        assert!(d.contains(&format!("The request body must contain the following parameter: '{missing}'.")), "{d}");
    }
    let got = post(&f.v1(), &[("grant_type", "client_credentials"), ("client_id", APP_ID)]).await;
    let d = assert_entra_error(&got, 400, "invalid_request", 900144);
    assert!(d.contains("'resource'"), "{d}");
}

#[tokio::test]
async fn neither_assertion_nor_secret_is_7000218() {
    let f = fixture().await;
    let scope = format!("{API}/.default");
    let got = post(&f.v2(), &[("grant_type", "client_credentials"), ("client_id", APP_ID), ("scope", &scope)]).await;
    let d = assert_entra_error(&got, 401, "invalid_client", 7000218);
    assert!(d.contains("'client_assertion' or 'client_secret'"), "{d}");
}

/// A v2 client-credentials request with a correct assertion for `scope` (taken as given).
async fn post_v2_scope(f: &Fixture, scope: &str) -> (u16, Value) {
    let a = f.assertion(&f.v2());
    post(&f.v2(), &client_credentials_form(APP_ID, scope, &a)).await
}

#[tokio::test]
async fn scope_without_default_is_1002012() {
    let f = fixture().await;
    let got = post_v2_scope(&f, "https://graph.microsoft.com/User.Read").await;
    let d = assert_entra_error(&got, 400, "invalid_scope", 1002012);
    assert!(d.contains("Client credential flows must have a scope value with /.default suffixed"), "{d}");
}

#[tokio::test]
async fn unknown_resource_is_500011() {
    let f = fixture().await;
    let got = post_v2_scope(&f, "https://unknown.example/.default").await;
    let d = assert_entra_error(&got, 400, "invalid_resource", 500011);
    assert!(d.contains("The resource principal named https://unknown.example was not found in the tenant"), "{d}");
}

#[tokio::test]
async fn wrong_secret_is_7000215_and_right_secret_gives_appidacr_1() {
    let f = fixture_with(|c| c.secret = Some(keycred::secret::SecretString::new("s3cret-value"))).await;
    let form = |s: &'static str| {
        vec![("grant_type", "client_credentials"), ("client_id", APP_ID), ("resource", API), ("client_secret", s)]
    };
    let d = assert_entra_error(&post(&f.v1(), &form("wrong")).await, 401, "invalid_client", 7000215);
    assert!(d.contains("Invalid client secret provided."), "{d}");
    let (s, b) = post(&f.v1(), &form("s3cret-value")).await;
    assert_eq!(s, 200, "{b}");
    let t = keycred::jwt::dangerous::decode(b["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(t.claim_str("appidacr"), Some("1"));
}

#[tokio::test]
async fn oversized_body_is_refused() {
    let f = fixture().await;
    let big = "a".repeat(1024 * 1024 + 10);
    let r = client().post(f.v2()).form(&[("grant_type", big.as_str())]).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 413);
}

#[tokio::test]
async fn correlation_id_echoes_client_request_id() {
    let f = fixture().await;
    let id = "5f0e3d2c-1b4a-4e9f-8c7d-6a5b4c3d2e1f";
    let r = client().post(f.v2()).header("client-request-id", id).form(&[("client_id", APP_ID)]).send().await.unwrap();
    let b: serde_json::Value = r.json().await.unwrap();
    assert_eq!(b["correlation_id"], id);
    assert!(b["error_description"].as_str().unwrap().contains(&format!("Correlation ID: {id}\r\n")));
    assert_eq!(b["error_uri"], "https://login.microsoftonline.com/error?code=900144");
}

#[tokio::test]
async fn a_one_element_aud_array_is_judged_as_its_element() {
    let f = fixture().await;
    let with_aud = |aud: Value| {
        let mut c = f.claims(&f.v2());
        c["aud"] = aud;
        f.signed(f.header(), c)
    };
    let (s, b) = f.post_v2_assertion(&with_aud(json!([f.v2()]))).await;
    assert_eq!(s, 200, "a one-element array naming the endpoint: {b}");
    for wrong in [json!([f.v1()]), json!([]), json!([42])] {
        let got = f.post_v2_assertion(&with_aud(wrong.clone())).await;
        let d = assert_entra_error(&got, 401, "invalid_client", 700023);
        assert!(d.contains("audience claim does not match"), "{wrong}: {d}");
    }
}

/// `client_secret_basic` (RFC 6749 section 2.3.1): id and secret form-urlencoded, joined by `:`,
/// base64 (by reqwest here), in `Authorization: Basic`.
fn basic(id: &str, secret: &str) -> (String, String) {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    (enc(id), enc(secret))
}

async fn post_basic(url: &str, id_secret: (String, String), form: &[(&str, &str)]) -> (u16, Value) {
    let r = client().post(url).basic_auth(id_secret.0, Some(id_secret.1)).form(form).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn client_secret_basic_authenticates_like_the_form_secret() {
    // A secret with the characters that need encoding: ':' would otherwise split it.
    const SECRET: &str = "s3c:ret+v/al=ue&x y";
    let f = fixture_with(|c| c.secret = Some(keycred::secret::SecretString::new(SECRET))).await;
    let scope = format!("{API}/.default");
    let form = [("grant_type", "client_credentials"), ("scope", scope.as_str())];
    // Right secret, client id only in the header: a token, appidacr "1" (secret).
    let (s, b) = post_basic(&f.v2(), basic(APP_ID, SECRET), &form).await;
    assert_eq!(s, 200, "{b}");
    let c = token_claims(&b);
    // A v1 resource (known from --grant): `appid`/`appidacr`, "1" for a secret.
    assert_eq!((c["appid"].as_str(), c["appidacr"].as_str()), (Some(APP_ID), Some("1")));
    // The same client_id in the body too is fine.
    let mut with_id = form.to_vec();
    with_id.push(("client_id", APP_ID));
    assert_eq!(post_basic(&f.v2(), basic(APP_ID, SECRET), &with_id).await.0, 200);
    // Wrong secret: 7000215, as in the form.
    let d = assert_entra_error(
        &post_basic(&f.v2(), basic(APP_ID, "s3c:ret+v/al=uf&x y"), &form).await,
        401,
        "invalid_client",
        7000215,
    );
    assert!(d.contains("Invalid client secret provided."), "{d}");
    // Unencoded ':' in the secret splits it at the first ':', so the secret is wrong.
    let raw = (APP_ID.to_string(), SECRET.to_string());
    assert_entra_error(&post_basic(&f.v2(), raw, &form).await, 401, "invalid_client", 7000215);
    // An unknown client id from the header: 700016, naming it.
    let other = "11111111-2222-4333-8444-555555555555";
    let d =
        assert_entra_error(&post_basic(&f.v2(), basic(other, SECRET), &form).await, 400, "unauthorized_client", 700016);
    assert!(d.contains(other), "{d}");
}

#[tokio::test]
async fn client_secret_basic_conflicts_are_invalid_request() {
    const SECRET: &str = "s3cret-value";
    let f = fixture_with(|c| c.secret = Some(keycred::secret::SecretString::new(SECRET))).await;
    let scope = format!("{API}/.default");
    let base = [("grant_type", "client_credentials"), ("scope", scope.as_str())];
    let with = |extra: &[(&'static str, &'static str)]| [&base[..], extra].concat();
    let other = "11111111-2222-4333-8444-555555555555";
    let assertion = f.assertion(&f.v2());
    let cases = [
        ("client_id disagrees", with(&[("client_id", other)]), "does not match the client id in the Authorization"),
        ("secret in both", with(&[("client_secret", SECRET)]), "use one method only"),
        (
            "assertion and Basic",
            [&base[..], &[("client_assertion_type", JWT_BEARER), ("client_assertion", assertion.as_str())]].concat(),
            "use one method only",
        ),
    ];
    for (what, form, needle) in cases {
        let got = post_basic(&f.v2(), basic(APP_ID, SECRET), &form).await;
        let d = assert_entra_error(&got, 400, "invalid_request", 9002313);
        assert!(d.contains(needle), "{what}: {d}");
    }
    // A Basic header that is not base64(id:secret).
    for value in ["Basic !!!not-base64", "Basic bm8tY29sb24="] {
        let r = client().post(f.v2()).header("Authorization", value).form(&base).send().await.unwrap();
        let got = (r.status().as_u16(), r.json().await.unwrap());
        let d = assert_entra_error(&got, 400, "invalid_request", 9002313);
        assert!(d.contains("base64(client_id:client_secret)"), "{value}: {d}");
    }
    // Another scheme is not client authentication: the body's credentials count.
    let r = client()
        .post(f.v2())
        .bearer_auth("x.y.z")
        .form(&with(&[("client_id", APP_ID), ("client_secret", SECRET)]))
        .send()
        .await
        .unwrap();
    issued_to(r, APP_ID).await;
}

/// `exp`/`nbf`/`iat` must be NumericDates (JSON numbers within i64 seconds), else 400 AADSTS50027
/// naming the claim: a string `"NaN"` would pass every time check (each comparison with NaN is
/// false), so such an assertion would never expire.
#[tokio::test]
async fn time_claims_that_are_not_numeric_dates_are_malformed() {
    let f = fixture().await;
    let aud = f.v2();
    let now = jwt::now_secs();
    let beyond_i64: Value = serde_json::from_str("1e19").unwrap();
    let cases: Vec<(&str, &str, Value)> = vec![
        ("exp NaN", "exp", json!("NaN")),
        ("exp inf", "exp", json!("inf")),
        ("exp a numeric string", "exp", json!((now + 600).to_string())),
        ("exp beyond i64 seconds", "exp", beyond_i64),
        ("exp huge unsigned", "exp", json!(u64::MAX)),
        ("nbf NaN", "nbf", json!("NaN")),
        ("nbf an object", "nbf", json!({"n": 1})),
        ("iat NaN", "iat", json!("NaN")),
    ];
    let mut failures = Vec::new();
    for (name, claim, value) in cases {
        let mut c = f.claims(&aud);
        c[claim] = value;
        let got = f.post_v2_assertion(&f.signed(f.header(), c)).await;
        let ok = got.0 == 400
            && got.1["error"] == "invalid_request"
            && got.1["error_codes"] == json!([50027])
            && got.1["error_description"].as_str().is_some_and(|d| d.contains(&format!("'{claim}'")));
        if !ok {
            failures
                .push(format!("[{name}] expected 400 invalid_request 50027 naming '{claim}', got {} {}", got.0, got.1));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Fractions are NumericDates (MSAL sends float exp/iat): still accepted.
    let mut c = f.claims(&aud);
    c["exp"] = json!(now as f64 + 600.5);
    c["iat"] = json!(now as f64 + 0.25);
    let got = f.post_v2_assertion(&f.signed(f.header(), c)).await;
    assert_eq!(got.0, 200, "{}", got.1);
}

/// An entry Entra (and `keycred check`) call unusable (usage `Sign`, type `Symmetric`) must not
/// verify assertions (401 AADSTS700027); the same certificate as a `Verify` entry does.
#[tokio::test]
async fn unusable_entries_do_not_verify_assertions() {
    let f = fixture().await;
    let assertion = f.assertion(&f.v2());
    for (field, value) in [("usage", "Sign"), ("type", "Symmetric"), ("usage", "Encrypt")] {
        let mut e = valid_entry(&f.cred.cert);
        e[field] = json!(value);
        write_manifest(&f.manifest, vec![e]);
        let got = f.post_v2_assertion(&assertion).await;
        assert_entra_error(&got, 401, "invalid_client", 700027);
        assert!(
            got.1["error_description"].as_str().unwrap().contains("key was not found"),
            "{field} {value}: {}",
            got.1
        );
    }
    write_manifest(&f.manifest, vec![valid_entry(&f.cred.cert)]);
    let got = f.post_v2_assertion(&assertion).await;
    assert_eq!(got.0, 200, "{}", got.1);
}
