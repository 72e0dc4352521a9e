//! The emulator's Graph answers requests exactly as the Azure CLI (2.91.0) sends them and as
//! Graph documents the answers, one test per request shape: collection lookups by `$filter`,
//! Graph under the emulator's own base URL, complete application objects, PATCH bodies with line
//! breaks and `@odata.type`, password credentials, entries filled as Graph fills them, and
//! Graph-shaped errors on every route. Thumbprints are computed with openssl, not with keycred.

use crate::emulator_support::*;
use keycred::emulator::{start, EndpointVersion};
use reqwest::Method;
use serde_json::{json, Value};

const GRAPH: &str = "https://graph.microsoft.com";

/// The fixture's app may manage itself: Application.ReadWrite.OwnedBy and listed in `owners`.
async fn az_fixture() -> Fixture {
    let f = fixture_with(|c| c.grants.push((GRAPH.into(), vec!["Application.ReadWrite.OwnedBy".into()]))).await;
    let mut m: Value = serde_json::from_slice(&std::fs::read(&f.manifest).unwrap()).unwrap();
    m["owners"] = json!([APP_ID]);
    std::fs::write(&f.manifest, serde_json::to_string_pretty(&m).unwrap()).unwrap();
    f
}

/// A Graph token as az gets it: v2 endpoint, scope `{resource}/.default` for the cloud's Graph
/// resource id (the emulator's base URL with its trailing slash gives `//.default`).
async fn token_for(f: &Fixture, resource: &str) -> String {
    let (s, b) = v2_token_for(f, &format!("{resource}/.default")).await;
    assert_eq!(s, 200, "{b}");
    b["access_token"].as_str().unwrap().to_string()
}

async fn call(method: Method, url: &str, token: Option<&str>, body: Option<&Value>) -> (u16, String, Value) {
    let mut r = client().request(method, url);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(b) = body {
        r = r.json(b);
    }
    let r = r.send().await.unwrap();
    let s = r.status().as_u16();
    let ct = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    (s, ct, r.json().await.unwrap_or(Value::Null))
}

/// openssl's SHA-1 fingerprint of a certificate, upper-case hex without colons.
fn openssl_thumbprint(dir: &TempDir, cert: &keycred::cert::Certificate) -> String {
    let p = dir.path(&format!("{}.pem", uuid::Uuid::new_v4()));
    std::fs::write(&p, cert.to_pem()).unwrap();
    openssl_fingerprint_hex(&p.display().to_string(), &[], "-sha1")
}

/// The PEM body as az's `_get_public` sends it: base64 with a line break every 64 characters.
fn pem_body(cert: &keycred::cert::Certificate) -> String {
    let b64 = cert.value_b64();
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!("{}\n", lines.join("\n"))
}

/// az's `_build_key_credentials`: `@odata.type`, `displayName` null, no `customKeyIdentifier`,
/// dates one second inside the certificate's validity, second precision.
fn az_key_credential(cert: &keycred::cert::Certificate) -> Value {
    let f = |t: time::OffsetDateTime| keycred::dates::format(t);
    json!({
        "@odata.type": "#microsoft.graph.keyCredential",
        "displayName": null,
        "endDateTime": f(cert.not_after() - time::Duration::seconds(1)),
        "key": pem_body(cert),
        "keyId": uuid::Uuid::new_v4().to_string(),
        "startDateTime": f(cert.not_before() + time::Duration::seconds(1)),
        "type": "AsymmetricX509Cert",
        "usage": "Verify",
    })
}

/// az resolves an app id with `$filter=appId eq '...'` (percent-encoded as Python's
/// `quote(safe='')` does) and a URI with `identifierUris/any(s:s eq '...')`.
#[tokio::test]
async fn collection_lookups_answer_as_az_expects() {
    let f = az_fixture().await;
    let token = token_for(&f, GRAPH).await;
    let base = f.emu.info().base_url();
    let url = format!("{base}/v1.0/applications?$filter=appId%20eq%20%27{APP_ID}%27");
    let (s, ct, b) = call(Method::GET, &url, Some(&token), None).await;
    assert_eq!(s, 200, "{b}");
    assert!(ct.starts_with("application/json;odata.metadata=minimal"), "{ct}");
    assert_eq!(b["@odata.context"], format!("{base}/v1.0/$metadata#applications"));
    assert_eq!(b["value"].as_array().unwrap().len(), 1);
    assert_eq!(b["value"][0]["id"], OBJECT_ID);
    assert!(b.get("@odata.nextLink").is_none());
    let url = format!("{base}/v1.0/applications?$filter=identifierUris%2Fany%28s%3As%20eq%20%27api%3A%2F%2Fnone%27%29");
    let (s, _, b) = call(Method::GET, &url, Some(&token), None).await;
    assert_eq!((s, &b["value"]), (200, &json!([])), "{b}");
    // Graph checks the token first.
    let (s, _, b) = call(Method::GET, &format!("{base}/v1.0/applications"), None, None).await;
    assert_eq!((s, b["error"]["code"].as_str()), (401, Some("InvalidAuthenticationToken")), "{b}");
}

/// With Graph at the emulator, az asks tokens for the emulator's base URL: they carry
/// that `aud` (v1) and Graph accepts them, Graph's grants included.
#[tokio::test]
async fn graph_under_the_emulators_own_url() {
    let f = az_fixture().await;
    let base = f.emu.info().base_url().to_string();
    for resource in [format!("{base}/"), base.clone()] {
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", APP_ID),
            ("resource", resource.as_str()),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &f.assertion(&f.v1())),
        ];
        let (s, b) = post(&f.v1(), &form).await;
        assert_eq!(s, 200, "{b}");
        let c = token_claims(&b);
        assert_eq!(c["aud"], json!(resource), "a v1 token names the resource as asked");
        assert_eq!(c["roles"], json!(["Application.ReadWrite.OwnedBy"]), "Graph's grant applies");
        let t = b["access_token"].as_str().unwrap();
        let (s, _, b) = call(Method::GET, &format!("{base}/v1.0/applications/{OBJECT_ID}"), Some(t), None).await;
        assert_eq!(s, 200, "{b}");
    }
    // As az asks it: v2, `{base}//.default`.
    let t = token_for(&f, &format!("{base}/")).await;
    let (s, _, b) = call(Method::GET, &format!("{base}/v1.0/applications/{OBJECT_ID}"), Some(&t), None).await;
    assert_eq!(s, 200, "{b}");
    // Another URL is not Graph.
    let (s, b) = v2_token_for(&f, "https://127.0.0.1:1/.default").await;
    assert_entra_error(&(s, b), 400, "invalid_resource", 500011);
}

/// A `$select`-less GET returns the whole application, `passwordCredentials` included.
#[tokio::test]
async fn application_objects_are_complete() {
    let f = az_fixture().await;
    let token = token_for(&f, GRAPH).await;
    let (s, _, b) =
        call(Method::GET, &format!("{}/v1.0/applications/{OBJECT_ID}", f.emu.info().base_url()), Some(&token), None)
            .await;
    assert_eq!(s, 200, "{b}");
    for p in [
        "id",
        "appId",
        "displayName",
        "keyCredentials",
        "passwordCredentials",
        "identifierUris",
        "signInAudience",
        "web",
        "api",
        "requiredResourceAccess",
        "appRoles",
        "spa",
        "publicClient",
        "info",
        "tags",
        "createdDateTime",
    ] {
        assert!(b.get(p).is_some(), "{p} missing in {b}");
    }
    assert_eq!(b["passwordCredentials"], json!([]));
    assert_eq!(b["signInAudience"], "AzureADMyOrg");
    assert_eq!(b["web"]["redirectUris"], json!([]));
    assert_eq!(b["api"]["oauth2PermissionScopes"], json!([]));
    let kc = b["keyCredentials"][0].as_object().unwrap();
    let fields: Vec<&str> = kc.keys().map(String::as_str).collect();
    assert_eq!(
        fields,
        ["customKeyIdentifier", "displayName", "endDateTime", "key", "keyId", "startDateTime", "type", "usage"]
    );
    assert_eq!(kc["key"], Value::Null);
}

/// The whole application for a legacy (Azure AD Graph) manifest: Graph's names and shape in the answer.
#[tokio::test]
async fn legacy_manifests_are_shown_in_graphs_shape() {
    let dir = TempDir::new("graph-legacy");
    let cred = credential("legacy app");
    let c = &cred.cert;
    let f = |t: time::OffsetDateTime| keycred::dates::format(t);
    let m = json!({
        "objectId": OBJECT_ID, "appId": APP_ID, "displayName": "legacy", "availableToOtherTenants": false,
        "identifierUris": ["api://legacy"],
        "keyCredentials": [{"customKeyIdentifier": c.custom_key_identifier(), "endDate": f(c.not_after()),
            "keyId": uuid::Uuid::new_v4().to_string(), "startDate": f(c.not_before()), "type": "AsymmetricX509Cert",
            "usage": "Verify", "value": c.value_b64()}],
        "passwordCredentials": [{"customKeyIdentifier": null, "endDate": "2030-01-01T00:00:00Z",
            "keyId": uuid::Uuid::new_v4().to_string(), "startDate": "2024-01-01T00:00:00Z", "value": null}],
    });
    let path = dir.path("legacy.json");
    std::fs::write(&path, serde_json::to_string_pretty(&m).unwrap()).unwrap();
    let emu =
        start(emulator_config(vec![path], vec![(GRAPH.into(), vec!["Application.Read.All".into()])])).await.unwrap();
    let v2 = emu.info().token_endpoint(EndpointVersion::V2);
    let a = assertion_for(&cred, &v2, keycred::cert::SignatureAlg::Rs256);
    let (_, t) = post(&v2, &client_credentials_form(APP_ID, &format!("{GRAPH}/.default"), &a)).await;
    let token = t["access_token"].as_str().unwrap();
    let url = format!(
        "{}/v1.0/applications(appId='{APP_ID}')?$select=id,identifierUris,keyCredentials,passwordCredentials",
        emu.info().base_url()
    );
    let (s, _, b) = call(Method::GET, &url, Some(token), None).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!((b["id"].as_str(), &b["identifierUris"]), (Some(OBJECT_ID), &json!(["api://legacy"])));
    let k = &b["keyCredentials"][0];
    assert_eq!(
        (k["key"].as_str(), k["startDateTime"].as_str()),
        (Some(c.value_b64().as_str()), Some(f(c.not_before()).as_str()))
    );
    assert!(k.get("value").is_none() && k.get("startDate").is_none(), "{k}");
    let p = &b["passwordCredentials"][0];
    assert_eq!(
        (p["endDateTime"].as_str(), &p["secretText"], &p["hint"]),
        (Some("2030-01-01T00:00:00Z"), &Value::Null, &Value::Null)
    );
}

/// az's PATCH body (key with line breaks, `@odata.type`, no customKeyIdentifier,
/// displayName null) is accepted; the entry is stored canonical and filled as Graph fills it;
/// the entries sent back by keyId with `key: null` are kept; the new certificate gets tokens and,
/// once the collection is replaced without it, the old one gets AADSTS700027.
#[tokio::test]
async fn patch_bodies_as_az_sends_them() {
    let f = az_fixture().await;
    let token = token_for(&f, GRAPH).await;
    let base = f.emu.info().base_url().to_string();
    let url = format!("{base}/v1.0/applications/{OBJECT_ID}");
    let before: Value = serde_json::from_slice(&std::fs::read(&f.manifest).unwrap()).unwrap();
    let old = before["keyCredentials"][0].clone();
    let new = credential("az appended");
    let sent = az_key_credential(&new.cert);
    assert!(sent["key"].as_str().unwrap().contains('\n'));
    // --append: the GET's entries (key null) plus the new one.
    let (_, _, shown) = call(Method::GET, &url, Some(&token), None).await;
    let mut creds = shown["keyCredentials"].as_array().unwrap().clone();
    creds.push(sent.clone());
    let (s, _, b) = call(Method::PATCH, &url, Some(&token), Some(&json!({"keyCredentials": creds}))).await;
    assert_eq!(s, 204, "{b}");
    let after: Value = serde_json::from_slice(&std::fs::read(&f.manifest).unwrap()).unwrap();
    let entries = after["keyCredentials"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0], old, "the registered entry is kept as it was");
    let added = entries[1].as_object().unwrap();
    assert_eq!(added["key"], new.cert.value_b64(), "stored canonical, without line breaks");
    assert!(!added.contains_key("@odata.type"), "{added:?}");
    assert_eq!(added["customKeyIdentifier"], openssl_thumbprint(&f.dir, &new.cert));
    assert_eq!(added["displayName"], "CN=az appended");
    assert_eq!(
        (added["keyId"].as_str(), added["startDateTime"].as_str()),
        (sent["keyId"].as_str(), sent["startDateTime"].as_str())
    );
    let v2 = f.v2();
    let (s, b) = post(
        &v2,
        &client_credentials_form(
            APP_ID,
            &format!("{API}/.default"),
            &assertion_for(&new, &v2, keycred::cert::SignatureAlg::Rs256),
        ),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    // Without --append: only the new entry; the old certificate is gone.
    let only = json!({"keyCredentials": [{"keyId": sent["keyId"], "key": null, "type": "AsymmetricX509Cert", "usage": "Verify"}]});
    let (s, _, b) = call(Method::PATCH, &url, Some(&token), Some(&only)).await;
    assert_eq!(s, 204, "{b}");
    let (s, b) = f.post_v2_assertion(&f.assertion(&v2)).await;
    assert_entra_error(&(s, b), 401, "invalid_client", 700027);
    // Dates outside the certificate are refused, as Graph does.
    let mut late = az_key_credential(&credential("late").cert);
    late["endDateTime"] = json!("2099-01-01T00:00:00Z");
    let (s, _, b) = call(Method::PATCH, &url, Some(&token), Some(&json!({"keyCredentials": [late]}))).await;
    assert_eq!(s, 400, "{b}");
    assert_eq!(b["error"]["message"], "Key credential end date is invalid.");
}

/// A client-credentials request for [`API`] authenticated by `secret` as the fixture's app.
async fn secret_token(endpoint: &str, secret: &str) -> (u16, Value) {
    let scope = format!("{API}/.default");
    post(
        endpoint,
        &[("grant_type", "client_credentials"), ("client_id", APP_ID), ("scope", &scope), ("client_secret", secret)],
    )
    .await
}

/// addPassword answers the secret once; the manifest keeps the credential without it,
/// the hash beside it; the secret works at the token endpoint for that app only, survives a
/// restart, and stops working after removePassword.
#[tokio::test]
async fn passwords_are_added_once_and_removed() {
    let f = az_fixture().await;
    let token = token_for(&f, GRAPH).await;
    let base = f.emu.info().base_url().to_string();
    // A year from now, not a fixed date: the test must not start failing on some future day.
    let end = keycred::dates::format(keycred::dates::now() + time::Duration::days(365));
    let body = json!({"passwordCredential": {"displayName": null, "endDateTime": end,
                                             "startDateTime": keycred::dates::format(keycred::dates::now())}});
    let (s, _, b) =
        call(Method::POST, &format!("{base}/v1.0/applications/{OBJECT_ID}/addPassword"), Some(&token), Some(&body))
            .await;
    assert_eq!(s, 200, "{b}");
    let secret = b["secretText"].as_str().unwrap().to_string();
    assert_eq!(secret.len(), 40);
    assert_eq!(b["hint"], json!(&secret[..3]));
    assert_eq!(b["endDateTime"], end.as_str());
    assert_eq!(b["@odata.context"], format!("{base}/v1.0/$metadata#microsoft.graph.passwordCredential"));
    let key_id = b["keyId"].as_str().unwrap().to_string();
    let (_, _, app) = call(Method::GET, &format!("{base}/v1.0/applications/{OBJECT_ID}"), Some(&token), None).await;
    assert_eq!(app["passwordCredentials"][0]["keyId"], key_id);
    assert_eq!(app["passwordCredentials"][0]["secretText"], Value::Null);
    let text = std::fs::read_to_string(&f.manifest).unwrap();
    let hashes = std::fs::read_to_string(f.manifest.with_file_name("app.json.secrets")).unwrap();
    assert!(!text.contains(&secret) && !hashes.contains(&secret), "the secret itself is never stored");
    let (s, b) = secret_token(&f.v2(), &secret).await;
    assert_eq!(s, 200, "{b}");
    // A v1 resource (known from --grant): `appidacr` "1", authenticated by secret.
    assert_eq!(token_claims(&b)["appidacr"], "1", "authenticated by secret");
    let (s, b) = secret_token(&f.v2(), &format!("{secret}x")).await;
    assert_entra_error(&(s, b), 401, "invalid_client", 7000215);
    // A restarted emulator on the same manifest still accepts it, for that app only: another
    // app of the tenant presenting it gets 7000215.
    let other_id = "5a1e0c3b-7d2f-4e8a-9b6c-1f2e3d4c5b6a";
    let other = f.dir.path("other.json");
    std::fs::write(
        &other,
        serde_json::to_string(&json!({"appId": other_id, "displayName": "Another app", "keyCredentials": []})).unwrap(),
    )
    .unwrap();
    let again = start(emulator_config(vec![f.manifest.clone(), other], vec![(API.into(), vec!["Data.Read".into()])]))
        .await
        .unwrap();
    let v2 = again.info().token_endpoint(EndpointVersion::V2);
    assert_eq!(secret_token(&v2, &secret).await.0, 200);
    let scope = format!("{API}/.default");
    let foreign = post(
        &v2,
        &[("grant_type", "client_credentials"), ("client_id", other_id), ("scope", &scope), ("client_secret", &secret)],
    )
    .await;
    assert_entra_error(&foreign, 401, "invalid_client", 7000215);
    let (s, _, b) = call(
        Method::POST,
        &format!("{base}/v1.0/applications/{OBJECT_ID}/removePassword"),
        Some(&token),
        Some(&json!({"keyId": key_id})),
    )
    .await;
    assert_eq!(s, 204, "{b}");
    let (s, b) = secret_token(&f.v2(), &secret).await;
    assert_entra_error(&(s, b), 401, "invalid_client", 7000215);
    // Passwords are not added by PATCH.
    let (s, _, b) = call(
        Method::PATCH,
        &format!("{base}/v1.0/applications/{OBJECT_ID}"),
        Some(&token),
        Some(&json!({"passwordCredentials": [{"keyId": uuid::Uuid::new_v4().to_string(), "secretText": "x"}]})),
    )
    .await;
    assert_eq!(s, 400, "{b}");
    assert_eq!(b["error"]["message"], "New password credentials must be generated using service actions.");
}

/// addKey fills customKeyIdentifier and displayName as Graph does; a proof for
/// Microsoft Graph's own id is refused 401 Authentication_MissingOrMalformed.
#[tokio::test]
async fn add_key_fills_entries_and_refuses_ms_graph_proofs() {
    use keycred::graph::{proof_of_possession, PROOF_AUD_AAD_GRAPH, PROOF_AUD_MS_GRAPH};
    let f = az_fixture().await;
    let token = token_for(&f, GRAPH).await;
    let url = format!("{}/v1.0/applications/{OBJECT_ID}/addKey", f.emu.info().base_url());
    let new = credential("added by addKey");
    let body = |aud: &str| {
        json!({"keyCredential": {"type": "AsymmetricX509Cert", "usage": "Verify", "key": pem_body(&new.cert)},
               "passwordCredential": null,
               "proof": proof_of_possession(&f.cred, OBJECT_ID, aud).unwrap().expose()})
    };
    let before = std::fs::read(&f.manifest).unwrap();
    let (s, _, b) = call(Method::POST, &url, Some(&token), Some(&body(PROOF_AUD_MS_GRAPH))).await;
    assert_eq!((s, b["error"]["code"].as_str()), (401, Some("Authentication_MissingOrMalformed")), "{b}");
    assert_eq!(std::fs::read(&f.manifest).unwrap(), before);
    let (s, _, b) = call(Method::POST, &url, Some(&token), Some(&body(PROOF_AUD_AAD_GRAPH))).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["customKeyIdentifier"], openssl_thumbprint(&f.dir, &new.cert));
    assert_eq!(b["displayName"], "CN=added by addKey");
    let m: Value = serde_json::from_slice(&std::fs::read(&f.manifest).unwrap()).unwrap();
    assert_eq!(m["keyCredentials"][1]["customKeyIdentifier"], openssl_thumbprint(&f.dir, &new.cert));
    assert_eq!(m["keyCredentials"][1]["key"], new.cert.value_b64());
}

/// Graph fills customKeyIdentifier only when it is missing; one the caller supplies
/// (Binary, so base64 in JSON) is kept as given.
#[tokio::test]
async fn add_key_keeps_a_supplied_custom_key_identifier() {
    use keycred::graph::{proof_of_possession, PROOF_AUD_AAD_GRAPH};
    let f = az_fixture().await;
    let token = token_for(&f, GRAPH).await;
    let url = format!("{}/v1.0/applications/{OBJECT_ID}/addKey", f.emu.info().base_url());
    let new = credential("added with an identifier");
    let cki = "cm90YXRpb24tMjAyNi0xMg==";
    let body = json!({"keyCredential": {"type": "AsymmetricX509Cert", "usage": "Verify", "key": new.cert.value_b64(),
                                        "customKeyIdentifier": cki, "displayName": "rotation 2026-12"},
                      "passwordCredential": null,
                      "proof": proof_of_possession(&f.cred, OBJECT_ID, PROOF_AUD_AAD_GRAPH).unwrap().expose()});
    let (s, _, b) = call(Method::POST, &url, Some(&token), Some(&body)).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["customKeyIdentifier"], cki);
    assert_eq!(b["displayName"], "rotation 2026-12");
    let m: Value = serde_json::from_slice(&std::fs::read(&f.manifest).unwrap()).unwrap();
    assert_eq!(m["keyCredentials"][1]["customKeyIdentifier"], cki);
}

/// Every route the emulator does not serve answers Graph's JSON error, never an empty
/// body; under /v1.0 the token is checked first.
#[tokio::test]
async fn graph_shaped_errors_everywhere() {
    let f = az_fixture().await;
    let token = token_for(&f, GRAPH).await;
    let base = f.emu.info().base_url();
    // (method, URL, bearer token, status, Graph error code, message)
    type Case<'a> = (Method, String, Option<&'a str>, u16, &'a str, Option<&'a str>);
    let cases: Vec<Case> = vec![
        (Method::GET, format!("{base}/v1.0/me"), None, 401, "InvalidAuthenticationToken", None),
        (
            Method::GET,
            format!("{base}/v1.0/me"),
            Some(&token),
            400,
            "BadRequest",
            Some("/me request is only valid with delegated authentication flow."),
        ),
        (
            Method::GET,
            format!("{base}/v1.0/applications/{OBJECT_ID}/owners"),
            None,
            401,
            "InvalidAuthenticationToken",
            None,
        ),
        (
            Method::GET,
            format!("{base}/v1.0/applications/{OBJECT_ID}/owners"),
            Some(&token),
            501,
            "NotImplemented",
            None,
        ),
        (
            Method::POST,
            format!("{base}/v1.0/applications/{OBJECT_ID}/nosuchAction"),
            Some(&token),
            400,
            "BadRequest",
            None,
        ),
        (Method::DELETE, format!("{base}/v1.0/applications/{OBJECT_ID}"), Some(&token), 501, "NotImplemented", None),
        (Method::POST, format!("{base}/v1.0/applications"), Some(&token), 501, "NotImplemented", None),
        (Method::GET, format!("{base}/v1.0/users"), Some(&token), 501, "NotImplemented", None),
        (Method::GET, format!("{base}/v1.0/organization"), Some(&token), 501, "NotImplemented", None),
        (Method::GET, format!("{base}/v1.0/users"), None, 401, "InvalidAuthenticationToken", None),
        // What Graph itself does not have keeps Graph's answers.
        (
            Method::GET,
            format!("{base}/v1.0/nosuchset"),
            Some(&token),
            400,
            "BadRequest",
            Some("Resource not found for the segment 'nosuchset'."),
        ),
        (
            Method::PUT,
            format!("{base}/v1.0/applications/{OBJECT_ID}"),
            Some(&token),
            405,
            "Request_BadRequest",
            Some("Specified HTTP method is not allowed for the request target."),
        ),
        (
            Method::GET,
            format!("{base}/v1.0/applications/{}", uuid::Uuid::new_v4()),
            Some(&token),
            404,
            "Request_ResourceNotFound",
            None,
        ),
        (Method::GET, format!("{base}/nothing/here"), None, 400, "BadRequest", Some("Invalid version: nothing")),
    ];
    for (method, url, t, status, code, message) in cases {
        let (s, ct, b) = call(method.clone(), &url, t, None).await;
        assert_eq!((s, b["error"]["code"].as_str()), (status, Some(code)), "{method} {url}: {b}");
        assert!(ct.starts_with("application/json"), "{method} {url}: {ct}");
        let inner = &b["error"]["innerError"];
        assert!(
            inner["request-id"].is_string() && inner["client-request-id"].is_string() && inner["date"].is_string(),
            "{b}"
        );
        if let Some(m) = message {
            assert_eq!(b["error"]["message"], m);
        }
        if status == 501 {
            let m = b["error"]["message"].as_str().unwrap();
            assert!(m.starts_with(&format!("keycred's emulator does not serve {method} ")), "{m}");
            assert!(m.contains("Microsoft Graph does"), "{m}");
        }
    }
    // The client's own client-request-id comes back in the error and the headers.
    let id = uuid::Uuid::new_v4().to_string();
    let r = client()
        .get(format!("{base}/v1.0/me"))
        .bearer_auth(&token)
        .header("client-request-id", &id)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["client-request-id"], id.as_str());
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"]["innerError"]["client-request-id"], id);
}
