//! The emulator's Graph endpoints answered as Graph does: tokens of both versions, the bearer
//! checked before the body, Graph-shaped refusals that name the request (never the manifest file
//! or a CLI flag), unpadded proofs only, and addKey limited to certificates.

use crate::emulator_support;

use emulator_support::*;
use keycred::cert::{generate, NewCertificate, SignatureAlg, Validity};
use keycred::graph::{proof_of_possession, PROOF_AUD_AAD_GRAPH};
use keycred::jwt;
use reqwest::Method;
use serde_json::{json, Value};

const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";

/// The fixture's app, allowed to PATCH itself through Graph: it holds
/// Application.ReadWrite.OwnedBy and is listed among its own owners.
async fn graph_fixture() -> Fixture {
    let f = fixture_with(|c| {
        c.grants.push(("https://graph.microsoft.com".into(), vec!["Application.ReadWrite.OwnedBy".into()]))
    })
    .await;
    let mut m: Value = serde_json::from_slice(&std::fs::read(&f.manifest).unwrap()).unwrap();
    m["owners"] = json!([APP_ID]);
    std::fs::write(&f.manifest, serde_json::to_string_pretty(&m).unwrap()).unwrap();
    f
}

/// A v2 Graph token for the fixture's app.
async fn graph_token(f: &Fixture) -> String {
    let (s, b) = v2_token_for(f, GRAPH_SCOPE).await;
    assert_eq!(s, 200, "{b}");
    b["access_token"].as_str().unwrap().to_string()
}

fn app_url(f: &Fixture, tail: &str) -> String {
    format!("{}/v1.0/applications/{OBJECT_ID}{tail}", f.emu.info().base_url())
}

/// Sends `body` as it is with this Content-Type, `token` as bearer when given.
async fn send_raw(
    method: Method,
    url: &str,
    token: Option<&str>,
    content_type: &str,
    body: &str,
) -> (u16, String, Value) {
    let mut r = client().request(method, url).header("Content-Type", content_type).body(body.to_string());
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let ct = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    (status, ct, r.json().await.unwrap_or(Value::Null))
}

async fn send(method: Method, url: &str, token: &str, body: &Value) -> (u16, Value) {
    let (s, _, b) = send_raw(method, url, Some(token), "application/json", &body.to_string()).await;
    (s, b)
}

/// Checks Graph's error shape and returns the message.
fn graph_error(got: &(u16, Value), status: u16, code: &str) -> String {
    let (s, b) = got;
    assert_eq!(*s, status, "{b}");
    let e = &b["error"];
    assert_eq!(e["code"], code, "{b}");
    let inner = &e["innerError"];
    // Graph's innerError date has no zone designator (PROTOCOL.md section 8).
    let date = inner["date"].as_str().unwrap();
    assert!(!date.ends_with('Z') && keycred::dates::parse(&format!("{date}Z"), "date").is_ok(), "{b}");
    for id in ["request-id", "client-request-id"] {
        assert!(uuid::Uuid::parse_str(inner[id].as_str().unwrap()).is_ok(), "{id} in {b}");
    }
    e["message"].as_str().unwrap().to_string()
}

/// A message about the request, with nothing of the emulator's files or of the CLI in it.
fn assert_no_internals(f: &Fixture, msg: &str) {
    let dir = f.manifest.parent().unwrap().display().to_string();
    for leak in ["app.json", ".json", "--", "manifest", dir.as_str(), "nothing was changed"] {
        assert!(!msg.contains(leak), "message leaks {leak:?}: {msg}");
    }
}

fn proof(f: &Fixture) -> String {
    proof_of_possession(&f.cred, OBJECT_ID, PROOF_AUD_AAD_GRAPH).unwrap().expose().to_string()
}

fn add_body(cert: &keycred::cert::Certificate, proof: &str) -> Value {
    json!({
        "keyCredential": {"type": "AsymmetricX509Cert", "usage": "Verify", "key": cert.value_b64()},
        "passwordCredential": null,
        "proof": proof,
    })
}

/// Each segment padded with `=` to a multiple of four characters, as base64 (not base64url) has it.
fn padded(jwt: &str) -> String {
    jwt.split('.').map(|s| format!("{s}{}", "=".repeat((4 - s.len() % 4) % 4))).collect::<Vec<_>>().join(".")
}

#[tokio::test]
async fn proofs_with_padding_are_refused_and_a_missing_proof_is_said_missing() {
    let f = graph_fixture().await;
    let token = graph_token(&f).await;
    let before = std::fs::read(&f.manifest).unwrap();
    let new = credential("added by addKey");
    let good = proof(&f);
    let with_padding = padded(&good);
    assert!(with_padding.contains('=') && with_padding != good, "the signature segment of RS256-2048 needs padding");
    let msg = graph_error(
        &send(Method::POST, &app_url(&f, "/addKey"), &token, &add_body(&new.cert, &with_padding)).await,
        400,
        "Authorization_RequestDenied",
    );
    assert!(msg.contains("not valid base64url without padding"), "{msg}");
    let rm = json!({"keyId": uuid::Uuid::new_v4().to_string(), "proof": with_padding});
    let msg = graph_error(
        &send(Method::POST, &app_url(&f, "/removeKey"), &token, &rm).await,
        400,
        "Authorization_RequestDenied",
    );
    assert!(msg.contains("not valid base64url without padding"), "{msg}");

    let mut no_proof = add_body(&new.cert, "");
    no_proof.as_object_mut().unwrap().remove("proof");
    let msg = graph_error(
        &send(Method::POST, &app_url(&f, "/addKey"), &token, &no_proof).await,
        400,
        "Authorization_RequestDenied",
    );
    assert!(msg.contains("has no proof"), "{msg}");
    assert!(!msg.contains("not a JWT"), "{msg}");
    assert_eq!(std::fs::read(&f.manifest).unwrap(), before, "refusals change nothing");

    // The same proof without padding is accepted.
    let (s, b) = send(Method::POST, &app_url(&f, "/addKey"), &token, &add_body(&new.cert, &good)).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["customKeyIdentifier"], new.cert.thumbprint());
}

#[tokio::test]
async fn graph_accepts_v1_and_v2_graph_tokens_and_refuses_other_audiences() {
    let f = graph_fixture().await;
    // Graph takes v1 tokens: from the v2 endpoint too, `aud` is the identifier as requested.
    let v2 = graph_token(&f).await;
    assert_eq!(token_claims(&json!({"access_token": v2}))["aud"], "https://graph.microsoft.com");
    assert_eq!(token_claims(&json!({"access_token": v2}))["ver"], "1.0");
    // Requested by its app id, the same v1 token names Graph by that GUID.
    let (s, b) = v2_token_for(&f, "00000003-0000-0000-c000-000000000000/.default").await;
    assert_eq!(s, 200, "{b}");
    let by_guid = b["access_token"].as_str().unwrap().to_string();
    assert_eq!(token_claims(&b)["aud"], "00000003-0000-0000-c000-000000000000");
    let a = f.assertion(&f.v1());
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", APP_ID),
        ("resource", "https://graph.microsoft.com"),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", a.as_str()),
    ];
    let (s, b) = post(&f.v1(), &form).await;
    assert_eq!(s, 200, "{b}");
    let v1 = b["access_token"].as_str().unwrap().to_string();
    assert_eq!(token_claims(&b)["aud"], "https://graph.microsoft.com");
    for (version, token) in [("v1", &v1), ("v2", &v2), ("by GUID", &by_guid)] {
        let r = client().get(app_url(&f, "")).bearer_auth(token).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{version} Graph token");
        let b: Value = r.json().await.unwrap();
        assert_eq!(b["appId"], APP_ID);
    }
    // A token for another resource is not a Graph token.
    let (_, b) = v2_token_for(&f, &format!("{API}/.default")).await;
    let other = b["access_token"].as_str().unwrap();
    let r = client().get(app_url(&f, "")).bearer_auth(other).send().await.unwrap();
    let got = (r.status().as_u16(), r.json().await.unwrap());
    let msg = graph_error(&got, 401, "InvalidAuthenticationToken");
    assert!(msg.contains("Invalid audience"), "{msg}");
}

#[tokio::test]
async fn add_key_takes_certificates_only() {
    let f = graph_fixture().await;
    let token = graph_token(&f).await;
    let before = std::fs::read(&f.manifest).unwrap();
    let new = credential("not a verify cert");
    let cases = [
        ("type", json!("Symmetric"), "keyCredential.type \"Symmetric\" is not supported"),
        ("type", json!("X509CertAndPassword"), "must be 'AsymmetricX509Cert'"),
        ("type", Value::Null, "keyCredential.type is required"),
        ("usage", json!("Sign"), "keyCredential.usage \"Sign\" is not supported"),
        ("usage", json!(7), "must be 'Verify'"),
    ];
    for (field, value, needle) in cases {
        let mut body = add_body(&new.cert, &proof(&f));
        body["keyCredential"][field] = value.clone();
        let msg =
            graph_error(&send(Method::POST, &app_url(&f, "/addKey"), &token, &body).await, 400, "Request_BadRequest");
        assert!(msg.contains(needle), "{field}={value}: {msg}");
        assert_eq!(std::fs::read(&f.manifest).unwrap(), before, "{field}={value} changed the manifest");
    }
}

#[tokio::test]
async fn graph_refusals_name_the_request_not_the_emulator_files_or_flags() {
    let f = graph_fixture().await;
    let token = graph_token(&f).await;
    let before = std::fs::read(&f.manifest).unwrap();
    let add = |body: Value| {
        let (url, token) = (app_url(&f, "/addKey"), token.clone());
        async move { send(Method::POST, &url, &token, &body).await }
    };
    let remove = |key_id: Value| {
        let (url, token, p) = (app_url(&f, "/removeKey"), token.clone(), proof(&f));
        async move { send(Method::POST, &url, &token, &json!({"keyId": key_id, "proof": p})).await }
    };

    // The registered certificate again.
    let msg = graph_error(&add(add_body(&f.cred.cert, &proof(&f))).await, 400, "Request_BadRequest");
    assert!(msg.contains(&f.cred.cert.thumbprint()) && msg.contains("already"), "{msg}");
    assert_no_internals(&f, &msg);

    // An expired certificate.
    let now = keycred::dates::now();
    let (expired, _) = generate(&NewCertificate {
        subject: "CN=expired".into(),
        key_size: keycred::cert::KeySize::Rsa2048,
        validity: Validity::Range(now - time::Duration::days(30), now - time::Duration::days(1)),
    })
    .unwrap();
    let msg = graph_error(&add(add_body(&expired, &proof(&f))).await, 400, "Request_BadRequest");
    assert!(msg.contains("keyCredential.key") && msg.contains("expired"), "{msg}");
    assert_no_internals(&f, &msg);

    // removeKey: a keyId that is not a GUID, and one that is not registered.
    let msg = graph_error(&remove(json!("not-a-uuid")).await, 400, "Request_BadRequest");
    assert!(msg.contains("'not-a-uuid' is not a GUID"), "{msg}");
    assert_no_internals(&f, &msg);
    let unknown = uuid::Uuid::new_v4().to_string();
    let msg = graph_error(&remove(json!(unknown)).await, 404, "Request_ResourceNotFound");
    assert!(msg.contains(&unknown), "{msg}");
    assert_no_internals(&f, &msg);

    // PATCH with a certificate that is not one.
    let body = json!({"keyCredentials": [{"type": "AsymmetricX509Cert", "usage": "Verify", "key": "AAAA"}]});
    let msg = graph_error(&send(Method::PATCH, &app_url(&f, ""), &token, &body).await, 400, "Request_BadRequest");
    assert!(msg.contains("keyCredentials[0].key"), "{msg}");
    assert_no_internals(&f, &msg);
    assert_eq!(std::fs::read(&f.manifest).unwrap(), before, "refusals change nothing");
}

#[tokio::test]
async fn bodies_are_read_after_the_token_and_refused_in_graph_shape() {
    let f = graph_fixture().await;
    let token = graph_token(&f).await;
    let before = std::fs::read(&f.manifest).unwrap();
    for (method, tail) in [(Method::PATCH, ""), (Method::POST, "/addKey"), (Method::POST, "/removeKey")] {
        let url = app_url(&f, tail);
        // No token: 401 whatever the body.
        for (ct, body) in [("application/json", "{bad"), ("text/plain", "hello")] {
            let (s, _, b) = send_raw(method.clone(), &url, None, ct, body).await;
            let msg = graph_error(&(s, b), 401, "InvalidAuthenticationToken");
            assert!(msg.contains("Access token is empty"), "{method} {tail}: {msg}");
        }
        // With a token: unparseable JSON is 400, another media type 415, both JSON in Graph's shape.
        let (s, ct, b) = send_raw(method.clone(), &url, Some(&token), "application/json", "{bad").await;
        assert!(ct.starts_with("application/json"), "{ct}");
        let msg = graph_error(&(s, b), 400, "BadRequest");
        assert!(msg.contains("Unable to read JSON request payload"), "{msg}");
        let (s, ct, b) = send_raw(method.clone(), &url, Some(&token), "text/plain", "{}").await;
        assert!(ct.starts_with("application/json"), "{ct}");
        let msg = graph_error(&(s, b), 415, "BadRequest");
        assert!(msg.contains("text/plain") && msg.contains("application/json"), "{msg}");
        // JSON with a charset parameter is JSON.
        let (s, _, b) = send_raw(method.clone(), &url, Some(&token), "application/json; charset=utf-8", "{}").await;
        if method == Method::PATCH {
            // An update that sets nothing changes nothing: Graph answers 204.
            assert_eq!(s, 204, "{method} {tail}: {b}");
        } else {
            assert_eq!(s, 400, "{method} {tail}: {{}} is JSON but not a valid request: {b}");
            assert_ne!(b["error"]["code"], "BadRequest", "{b}");
        }
    }
    assert_eq!(std::fs::read(&f.manifest).unwrap(), before);
}

#[tokio::test]
async fn patch_key_credentials_must_be_an_array() {
    let f = graph_fixture().await;
    let token = graph_token(&f).await;
    let before = std::fs::read(&f.manifest).unwrap();
    for v in [json!({}), json!("x"), json!(null)] {
        let msg = graph_error(
            &send(Method::PATCH, &app_url(&f, ""), &token, &json!({"keyCredentials": v})).await,
            400,
            "Request_BadRequest",
        );
        assert!(msg.contains("keyCredentials is not an array"), "{v}: {msg}");
    }
    let msg = graph_error(
        &send(Method::PATCH, &app_url(&f, ""), &token, &json!({"displayName": "x"})).await,
        400,
        "Request_BadRequest",
    );
    assert!(msg.contains("keyCredentials and requiredResourceAccess only") && msg.contains("'displayName'"), "{msg}");
    assert_eq!(std::fs::read(&f.manifest).unwrap(), before);
}

/// addKey proofs need NumericDates too: a proof with `exp: "NaN"` (or a far future) must not
/// escape the ten-minute rule.
#[tokio::test]
async fn add_key_proofs_need_numeric_dates() {
    let f = fixture_with(|c| {
        c.grants.push(("https://graph.microsoft.com".into(), vec!["Application.ReadWrite.OwnedBy".into()]))
    })
    .await;
    let (s, b) = v2_token_for(&f, "https://graph.microsoft.com/.default").await;
    assert_eq!(s, 200, "{b}");
    let token = b["access_token"].as_str().unwrap().to_string();
    let new = credential("rotated in");
    let url = format!("{}/v1.0/applications/{OBJECT_ID}/addKey", f.emu.info().base_url());
    let proof = |exp: Value| {
        let now = jwt::now_secs();
        let claims = json!({"aud": PROOF_AUD_AAD_GRAPH, "iss": OBJECT_ID, "nbf": now, "exp": exp});
        jwt::sign(&*f.cred.key, SignatureAlg::Rs256, f.header(), &claims).unwrap()
    };
    let send = |p: String| {
        let body = json!({"keyCredential": {"type": "AsymmetricX509Cert", "usage": "Verify", "key": new.cert.value_b64()},
                          "passwordCredential": null, "proof": p});
        let (url, token) = (url.clone(), token.clone());
        async move {
            let r = client().post(&url).bearer_auth(&token).json(&body).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    for exp in [json!("NaN"), json!("Infinity"), json!("99999999999")] {
        let (s, b) = send(proof(exp.clone())).await;
        assert_eq!(s, 400, "exp {exp}: {b}");
        let msg = b["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains("'exp'") && msg.contains("NumericDate"), "exp {exp}: {msg}");
    }
    // The same proof with a numeric exp is accepted: the refusals are not a broken fixture.
    let (s, b) = send(proof(json!(jwt::now_secs() + 600))).await;
    assert_eq!(s, 200, "{b}");
}
