//! Per-app app management policies in the emulated tenant: created at
//! `POST /v1.0/policies/appManagementPolicies` (201, with its new id), read back, assigned with
//! `POST /v1.0/applications/{id}/appManagementPolicies/$ref` (204; written beside the manifest as
//! `NAME.policy.json`), listed at `/applications/{id}/appManagementPolicies`, and enforced over
//! the tenant default, as Graph's "Assign appManagementPolicy" reference says ("The application
//! ... adopts this policy over the tenant-wide tenantAppManagementPolicy setting"). Creating and
//! assigning take `Policy.ReadWrite.ApplicationConfiguration` (Graph's least privilege). A
//! `trustedCertificateAuthority` restriction refuses a self-signed certificate and takes one an
//! openssl CA issued; password restrictions (`passwordLifetime`, `passwordAddition`) refuse
//! addPassword with Graph's codes.

use crate::emulator_support;

use emulator_support::*;
use keycred::graph::{proof_of_possession, PROOF_AUD_AAD_GRAPH};
use keycred::policy::{LIFETIME_CODE, TRUSTED_CA_CODE, TYPE_CODE};
use serde_json::{json, Value};

const GRAPH: &str = "https://graph.microsoft.com";

async fn fixture(roles: &[&str], default_policy: Option<Value>) -> Fixture {
    let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
    fixture_with(|c| {
        c.grants.push((GRAPH.into(), roles));
        c.app_policy = default_policy.map(|b| {
            let p = keycred::policy::Policy::from_json(&b, "test").unwrap();
            (b, p)
        });
    })
    .await
}

async fn token(f: &Fixture) -> String {
    let (s, b) = v2_token_for(f, &format!("{GRAPH}/.default")).await;
    assert_eq!(s, 200, "{b}");
    b["access_token"].as_str().unwrap().to_string()
}

async fn call(f: &Fixture, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let url = format!("{}{path}", f.emu.info().base_url());
    let mut req = client().request(method, url).bearer_auth(token(f).await);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// addKey of the certificate `cert`, with a proof signed by the fixture's certificate.
async fn add_key(f: &Fixture, cert: &keycred::cert::Certificate) -> (u16, Value) {
    let proof = proof_of_possession(&f.cred, OBJECT_ID, PROOF_AUD_AAD_GRAPH).unwrap();
    let body = json!({
        "keyCredential": {"type": "AsymmetricX509Cert", "usage": "Verify", "key": cert.value_b64()},
        "passwordCredential": null,
        "proof": proof.expose(),
    });
    call(f, reqwest::Method::POST, &format!("/v1.0/applications/{OBJECT_ID}/addKey"), Some(body)).await
}

fn key_lifetime(id: &str, days: u32) -> Value {
    json!({"id": id, "displayName": format!("{days} days"), "isEnabled": true, "restrictions": {
        "passwordCredentials": [],
        "keyCredentials": [{"restrictionType": "asymmetricKeyLifetime", "maxLifetime": format!("P{days}D"), "state": "enabled"}]}})
}

#[tokio::test]
async fn a_created_and_assigned_policy_is_listed_and_enforced_over_the_default() {
    let roles = ["Policy.ReadWrite.ApplicationConfiguration", "Application.Read.All", "Policy.Read.All"];
    // The default allows a year; the application's own policy allows 30 days.
    let f = fixture(&roles, Some(key_lifetime("default-365", 365))).await;
    let mut body = key_lifetime("", 30);
    body.as_object_mut().unwrap().remove("id");
    let (s, created) = call(&f, reqwest::Method::POST, "/v1.0/policies/appManagementPolicies", Some(body)).await;
    assert_eq!(s, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{created}");
    let (s, got) = call(&f, reqwest::Method::GET, &format!("/v1.0/policies/appManagementPolicies/{id}"), None).await;
    assert_eq!((s, &got["displayName"]), (200, &json!("30 days")), "{got}");
    // Not assigned yet: the default rules.
    assert_eq!(add_key(&f, &credential_for_days("sixty", 60).cert).await.0, 200);

    let target = json!({"@odata.id": format!("{GRAPH}/v1.0/policies/appManagementPolicies/{id}")});
    let path = format!("/v1.0/applications/{OBJECT_ID}/appManagementPolicies/$ref");
    let (s, b) = call(&f, reqwest::Method::POST, &path, Some(target)).await;
    assert_eq!(s, 204, "{b}");
    assert!(f.dir.path("app.policy.json").exists(), "assigned beside the manifest");
    let (s, list) =
        call(&f, reqwest::Method::GET, &format!("/v1.0/applications/{OBJECT_ID}/appManagementPolicies"), None).await;
    assert_eq!((s, &list["value"][0]["id"]), (200, &json!(id)), "{list}");
    let (_, all) = call(&f, reqwest::Method::GET, "/v1.0/policies/appManagementPolicies", None).await;
    assert_eq!(all["value"].as_array().unwrap().len(), 1, "{all}");

    let before = std::fs::read(&f.manifest).unwrap();
    let (s, b) = add_key(&f, &credential_for_days("sixty again", 60).cert).await;
    assert_eq!((s, &b["error"]["code"]), (400, &json!(LIFETIME_CODE)), "{b}");
    let want = format!("Credential lifetime exceeds the max value allowed as per assigned policy '{id}'.");
    assert_eq!(b["error"]["message"], want);
    assert_eq!(std::fs::read(&f.manifest).unwrap(), before, "nothing stored");
    assert_eq!(add_key(&f, &credential_for_days("twenty", 20).cert).await.0, 200);
}

#[tokio::test]
async fn creating_and_assigning_policies_need_policy_readwrite_application_configuration() {
    let f = fixture(&["Policy.Read.All", "Application.Read.All"], None).await;
    let (s, b) =
        call(&f, reqwest::Method::POST, "/v1.0/policies/appManagementPolicies", Some(key_lifetime("x", 30))).await;
    assert_eq!((s, &b["error"]["code"]), (403, &json!("Authorization_RequestDenied")), "{b}");
    let target = json!({"@odata.id": format!("{GRAPH}/v1.0/policies/appManagementPolicies/x")});
    let path = format!("/v1.0/applications/{OBJECT_ID}/appManagementPolicies/$ref");
    assert_eq!(call(&f, reqwest::Method::POST, &path, Some(target)).await.0, 403);
    assert!(!f.dir.path("app.policy.json").exists());
}

#[tokio::test]
async fn a_trusted_ca_restriction_refuses_self_signed_certificates_and_takes_ca_issued_ones() {
    let f = fixture(&[], None).await;
    let policy = json!({"id": "trusted-ca", "displayName": "CA-issued only", "isEnabled": true, "restrictions": {
        "keyCredentials": [{"restrictionType": "trustedCertificateAuthority", "state": "enabled",
            "certificateBasedApplicationConfigurationIds": ["6b2b4c8e-0f1a-4e7b-9d3c-2a5f8e1b7c40"]}]}});
    std::fs::write(f.dir.path("app.policy.json"), policy.to_string()).unwrap();
    let (s, b) = add_key(&f, &credential_for_days("self-signed", 30).cert).await;
    assert_eq!((s, &b["error"]["code"]), (400, &json!(TRUSTED_CA_CODE)), "{b}");
    assert!(b["error"]["message"].as_str().unwrap().contains("'trusted-ca'"), "{b}");
    openssl_ca_and_leaf(&f.dir.0, ("ca", "/CN=Test Issuing CA"), ("leaf", "/CN=ca-issued"), 30);
    let leaf = keycred::cert::load_file(&f.dir.path("leaf.pem"), None).unwrap().certs.remove(0);
    let (s, b) = add_key(&f, &leaf).await;
    assert_eq!(s, 200, "{b}");
}

#[tokio::test]
async fn password_restrictions_refuse_long_passwords_and_any_password() {
    let default = json!({"id": "pw-30", "isEnabled": true, "applicationRestrictions": {"keyCredentials": [],
        "passwordCredentials": [{"restrictionType": "passwordLifetime", "maxLifetime": "P30D", "state": "enabled"}]}});
    let f = fixture(&["Application.ReadWrite.All"], Some(default)).await;
    let now = keycred::dates::now();
    let add = |days: i64| {
        let end = keycred::dates::format(now + time::Duration::days(days));
        json!({"passwordCredential": {"displayName": "ci", "endDateTime": end}})
    };
    let path = format!("/v1.0/applications/{OBJECT_ID}/addPassword");
    let (s, b) = call(&f, reqwest::Method::POST, &path, Some(add(60))).await;
    assert_eq!((s, &b["error"]["code"]), (400, &json!(LIFETIME_CODE)), "{b}");
    // Without an end date Graph's default is two years: over the cap too.
    let (s, b) = call(&f, reqwest::Method::POST, &path, Some(json!({}))).await;
    assert_eq!((s, &b["error"]["code"]), (400, &json!(LIFETIME_CODE)), "{b}");
    let (s, b) = call(&f, reqwest::Method::POST, &path, Some(add(10))).await;
    assert_eq!(s, 200, "{b}");
    // The application's own policy forbids passwords altogether.
    let own = json!({"id": "no-pw", "isEnabled": true, "restrictions": {"keyCredentials": [],
        "passwordCredentials": [{"restrictionType": "passwordAddition", "state": "enabled"}]}});
    std::fs::write(f.dir.path("app.policy.json"), own.to_string()).unwrap();
    let (s, b) = call(&f, reqwest::Method::POST, &path, Some(add(10))).await;
    assert_eq!((s, &b["error"]["code"]), (400, &json!(TYPE_CODE)), "{b}");
}
