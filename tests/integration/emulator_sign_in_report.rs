//! The emulator records which credential each token was issued to (a certificate's or a client
//! secret's keyId, and when) and serves Graph's credential sign-in report with it.
//!
//! The shape, permissions and queries are those of Graph's beta reference: the
//! "appCredentialSignInActivity resource type" page (properties `id`, `appId`, `appObjectId`,
//! `createdDateTime`, `credentialOrigin`, `expirationDateTime`, `keyId`, `keyType` with
//! `clientSecret`/`certificate`, `keyUsage`, `resourceId`, `servicePrincipalObjectId`,
//! `signInActivity {lastSignInDateTime, lastSignInRequestId}`) and "List
//! appCredentialSignInActivities" (GET /reports/appCredentialSignInActivities; `$filter` by
//! `appId` and `keyId` in its examples, whose ids are the base64 of `{keyId}|{origin}`; least
//! privileged application permission AuditLog.Read.All, higher Directory.Read.All, nothing else).

use crate::emulator_support::*;
use base64::Engine;
use keycred::cert::SignatureAlg;
use keycred::emulator::start;
use serde_json::{json, Value};

const REPORT: &str = "/beta/reports/appCredentialSignInActivities";
const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";

/// A v2 token request for `scope` signed by `cred`; returns the answer's `x-ms-request-id`.
async fn sign_in(base: &str, cred: &keycred::cert::LoadedCredential, scope: &str) -> String {
    let url = format!("{base}/{TENANT}/oauth2/v2.0/token");
    let assertion = signed_assertion(cred, APP_ID, &url, SignatureAlg::Rs256);
    let r = client().post(&url).form(&client_credentials_form(APP_ID, scope, &assertion)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    r.headers()["x-ms-request-id"].to_str().unwrap().to_string()
}

async fn get(url: &str, token: &str) -> (u16, Value) {
    let r = client().get(url).bearer_auth(token).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// An emulator granting `roles` on Graph to every app; the fixture app has certificates A and
/// B. Returns it with a Graph token of the app (signed with B).
async fn tenant(roles: &[&str]) -> (TempDir, keycred::emulator::EmulatorHandle, [keycred::cert::LoadedCredential; 2]) {
    let dir = TempDir::new("sign-in-report");
    let (a, b) = (credential("report a"), credential("report b"));
    let manifest = dir.path("app.json");
    write_manifest(&manifest, vec![valid_entry(&a.cert), valid_entry(&b.cert)]);
    let grants = vec![("https://graph.microsoft.com".to_string(), roles.iter().map(|r| r.to_string()).collect())];
    let emu = start(emulator_config(vec![manifest], grants)).await.unwrap();
    (dir, emu, [a, b])
}

fn key_ids(dir: &TempDir) -> Vec<String> {
    let m: Value = serde_json::from_slice(&std::fs::read(dir.path("app.json")).unwrap()).unwrap();
    m["keyCredentials"].as_array().unwrap().iter().map(|e| e["keyId"].as_str().unwrap().to_string()).collect()
}

/// A tenant where the app signed in with A, then B (for its Graph token), then A again, then
/// with a client secret added through Graph.
struct SignedIn {
    dir: TempDir,
    emu: keycred::emulator::EmulatorHandle,
    base: String,
    graph: String,
    /// keyIds of A and B.
    ids: Vec<String>,
    /// The request id of A's last sign-in.
    last_a: String,
    /// The addPassword answer.
    secret: Value,
}

async fn signed_in() -> SignedIn {
    let (dir, emu, [a, b]) = tenant(&["AuditLog.Read.All", "Application.ReadWrite.All"]).await;
    let base = emu.info().base_url().to_string();
    let ids = key_ids(&dir);
    let first_a = sign_in(&base, &a, GRAPH_SCOPE).await;
    let graph = {
        let url = format!("{base}/{TENANT}/oauth2/v2.0/token");
        let assertion = signed_assertion(&b, APP_ID, &url, SignatureAlg::Rs256);
        post(&url, &client_credentials_form(APP_ID, GRAPH_SCOPE, &assertion)).await.1["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let last_a = sign_in(&base, &a, GRAPH_SCOPE).await;
    assert_ne!(first_a, last_a);
    let r = client()
        .post(format!("{base}/v1.0/applications/{OBJECT_ID}/addPassword"))
        .bearer_auth(&graph)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let secret: Value = r.json().await.unwrap();
    let text = secret["secretText"].as_str().unwrap();
    let form =
        [("grant_type", "client_credentials"), ("client_id", APP_ID), ("scope", GRAPH_SCOPE), ("client_secret", text)];
    assert_eq!(post(&format!("{base}/{TENANT}/oauth2/v2.0/token"), &form).await.0, 200);
    SignedIn { dir, emu, base, graph, ids, last_a, secret }
}

#[tokio::test]
async fn each_credential_s_last_sign_in_is_reported_in_graph_s_shape() {
    let t = signed_in().await;
    let (status, page) = get(&format!("{}{REPORT}", t.base), &t.graph).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["@odata.context"], format!("{}/beta/$metadata#reports/appCredentialSignInActivities", t.base));
    let rows = page["value"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{page}");
    let row = |key_id: &str| rows.iter().find(|r| r["keyId"] == key_id).unwrap_or_else(|| panic!("{key_id} in {page}"));
    let ra = row(&t.ids[0]);
    let oid = keycred::jwt::dangerous::decode(&t.graph).unwrap().claims["oid"].clone();
    let mut fields: Vec<&str> = ra.as_object().unwrap().keys().map(String::as_str).collect();
    fields.sort();
    assert_eq!(
        fields,
        [
            "appId",
            "appObjectId",
            "createdDateTime",
            "credentialOrigin",
            "expirationDateTime",
            "id",
            "keyId",
            "keyType",
            "keyUsage",
            "resourceId",
            "servicePrincipalObjectId",
            "signInActivity"
        ]
    );
    let manifest: Value = serde_json::from_slice(&std::fs::read(t.dir.path("app.json")).unwrap()).unwrap();
    let entry = &manifest["keyCredentials"][0];
    assert_eq!(ra["appId"], APP_ID);
    assert_eq!(ra["appObjectId"], OBJECT_ID);
    assert_eq!(ra["servicePrincipalObjectId"], oid);
    assert_eq!(ra["credentialOrigin"], "application");
    assert_eq!(ra["keyType"], "certificate");
    assert_eq!(ra["keyUsage"], "verify");
    assert_eq!(ra["createdDateTime"], entry["startDateTime"]);
    assert_eq!(ra["expirationDateTime"], entry["endDateTime"]);
    // The last sign-in of A was for Graph, whose app id is the resource.
    assert_eq!(ra["resourceId"], "00000003-0000-0000-c000-000000000000");
    let id = base64::engine::general_purpose::STANDARD.encode(format!("{}|application", t.ids[0]));
    assert_eq!(ra["id"], id);
    assert_eq!(ra["signInActivity"]["lastSignInRequestId"], t.last_a);
    let when =
        |r: &Value| keycred::dates::parse(r["signInActivity"]["lastSignInDateTime"].as_str().unwrap(), "t").unwrap();
    // B signed in (for the Graph token) between A's two sign-ins.
    assert!(when(row(&t.ids[1])) < when(ra), "{page}");
    let rs = rows.iter().find(|r| r["keyType"] == "clientSecret").unwrap();
    assert_eq!(rs["keyId"], t.secret["keyId"]);
    assert_eq!(rs["keyUsage"], "sign");
    assert!(when(rs) > when(ra));
    let _ = &t.emu;
}

#[tokio::test]
async fn the_report_is_read_by_id_filtered_by_app_or_key_and_paged() {
    let t = signed_in().await;
    let (base, graph) = (&t.base, &t.graph);
    let id = base64::engine::general_purpose::STANDARD.encode(format!("{}|application", t.ids[0]));
    let (s, one) = get(&format!("{base}{REPORT}/{id}"), graph).await;
    assert_eq!((s, &one["keyId"]), (200, &json!(t.ids[0])));
    assert_eq!(get(&format!("{base}{REPORT}/bm9uZQ"), graph).await.0, 404);
    let (_, none) = get(&format!("{base}{REPORT}?$filter=appId%20eq%20'{}'", uuid::Uuid::new_v4()), graph).await;
    assert_eq!(none["value"], json!([]));
    let (_, by_key) = get(&format!("{base}{REPORT}?$filter=keyId%20eq%20'{}'", t.ids[1]), graph).await;
    assert_eq!(by_key["value"].as_array().unwrap().len(), 1);
    let mut next = Some(format!("{base}{REPORT}?$filter=appId%20eq%20'{APP_ID}'&$top=1"));
    let mut seen = Vec::new();
    while let Some(url) = next.take() {
        let (s, p) = get(&url, graph).await;
        assert_eq!(s, 200, "{p}");
        assert_eq!(p["value"].as_array().unwrap().len(), 1, "{p}");
        seen.push(p["value"][0]["keyId"].as_str().unwrap().to_string());
        next = p["@odata.nextLink"].as_str().map(str::to_string);
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 3, "{seen:?}");
    // `$orderby`, which Graph serves on this report, is said to be unserved, not refused.
    let (s, e) = get(&format!("{base}{REPORT}?$orderby=keyId"), graph).await;
    assert_eq!((s, &e["error"]["code"]), (501, &json!("NotImplemented")), "{e}");
}

#[tokio::test]
async fn reading_the_report_needs_audit_log_read_all_or_directory_read_all() {
    for (roles, status) in [
        (&["AuditLog.Read.All"][..], 200),
        (&["Directory.Read.All"][..], 200),
        // Not in the reference's list for this report.
        (&["Reports.Read.All", "Application.ReadWrite.All"][..], 403),
    ] {
        let (_dir, emu, [a, _]) = tenant(roles).await;
        let base = emu.info().base_url().to_string();
        let url = format!("{base}/{TENANT}/oauth2/v2.0/token");
        let assertion = signed_assertion(&a, APP_ID, &url, SignatureAlg::Rs256);
        let token = post(&url, &client_credentials_form(APP_ID, GRAPH_SCOPE, &assertion)).await.1["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        let (s, body) = get(&format!("{base}{REPORT}"), &token).await;
        assert_eq!(s, status, "{roles:?}: {body}");
        if status == 403 {
            assert_eq!(body["error"]["code"], "Authorization_RequestDenied");
        }
        assert_eq!(get(&format!("{base}{REPORT}"), "not-a-token").await.0, 401);
    }
}
