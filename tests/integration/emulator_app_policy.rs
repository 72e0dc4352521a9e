//! The emulated tenant's app management policy (`--app-policy`): served to callers holding
//! Policy.Read.All, and enforced on addKey and PATCH of keyCredentials with Graph's 400
//! `CredentialInvalidLifetimeAsPerAppPolicy` and its message ("Credential lifetime exceeds the
//! max value allowed as per assigned policy '<id>'.", as the Azure CLI prints Graph's refusal in
//! public setup guides; Microsoft's Teams Toolkit matches on the code), grandfathering
//! applications created before `restrictForAppsCreatedAfterDateTime`.

use crate::emulator_support;

use emulator_support::*;
use keycred::graph::{proof_of_possession, PROOF_AUD_AAD_GRAPH};
use serde_json::{json, Value};

pub(crate) const POLICY_ID: &str = "2c9f8e0a-5d7b-4c1e-9a3f-6b8d0e2f4a1c";

/// A policy capping certificates at 90 days on applications created after 2020-01-01.
pub(crate) fn capped_policy() -> (Value, keycred::policy::Policy) {
    let body = json!({
        "id": POLICY_ID,
        "displayName": "Credentials at most 90 days",
        "isEnabled": true,
        "applicationRestrictions": {
            "passwordCredentials": [],
            "keyCredentials": [{"restrictionType": "asymmetricKeyLifetime", "maxLifetime": "P90D",
                "restrictForAppsCreatedAfterDateTime": "2020-01-01T00:00:00Z", "state": "enabled"}]
        }
    });
    let p = keycred::policy::Policy::from_json(&body, "test").unwrap();
    (body, p)
}

async fn fixture(graph_roles: &[&str]) -> Fixture {
    let roles: Vec<String> = graph_roles.iter().map(|r| r.to_string()).collect();
    fixture_with(|c| {
        c.grants.push(("https://graph.microsoft.com".into(), roles));
        c.app_policy = Some(capped_policy());
    })
    .await
}

async fn graph_token(f: &Fixture) -> String {
    let (s, b) = v2_token_for(f, "https://graph.microsoft.com/.default").await;
    assert_eq!(s, 200, "{b}");
    b["access_token"].as_str().unwrap().to_string()
}

/// addKey of a certificate valid `days` days, with a proof signed by the fixture's certificate.
async fn add_key(f: &Fixture, days: u32) -> (u16, Value) {
    let new = credential_for_days("policy test", days);
    let proof = proof_of_possession(&f.cred, OBJECT_ID, PROOF_AUD_AAD_GRAPH).unwrap();
    let body = json!({
        "keyCredential": {"type": "AsymmetricX509Cert", "usage": "Verify", "key": new.cert.value_b64()},
        "passwordCredential": null,
        "proof": proof.expose(),
    });
    let url = format!("{}/v1.0/applications/{OBJECT_ID}/addKey", f.emu.info().base_url());
    let token = graph_token(f).await;
    let r = client().post(url).bearer_auth(token).json(&body).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn add_key_over_the_policy_cap_gets_graphs_400_and_within_it_succeeds() {
    let f = fixture(&[]).await;
    let before = std::fs::read(&f.manifest).unwrap();
    let (status, body) = add_key(&f, 365).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "CredentialInvalidLifetimeAsPerAppPolicy");
    assert_eq!(
        body["error"]["message"],
        format!("Credential lifetime exceeds the max value allowed as per assigned policy '{POLICY_ID}'.")
    );
    assert_eq!(std::fs::read(&f.manifest).unwrap(), before, "nothing stored");
    let (status, body) = add_key(&f, 60).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn applications_created_before_the_restriction_date_are_grandfathered() {
    let f = fixture(&[]).await;
    let created = |when: &str| {
        let mut m: Value = serde_json::from_slice(&std::fs::read(&f.manifest).unwrap()).unwrap();
        m["createdDateTime"] = json!(when);
        std::fs::write(&f.manifest, serde_json::to_string_pretty(&m).unwrap()).unwrap();
    };
    // Created after the restriction's date: restricted.
    created("2021-06-01T00:00:00Z");
    assert_eq!(add_key(&f, 365).await.0, 400);
    // Created before it: not restricted, as Graph does.
    created("2019-06-01T00:00:00Z");
    let (status, body) = add_key(&f, 365).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn patch_with_a_new_certificate_over_the_cap_is_refused() {
    let f = fixture(&["Application.ReadWrite.All"]).await;
    let token = graph_token(&f).await;
    let long = credential_for_days("long", 365);
    let body = json!({"keyCredentials": [valid_entry(&f.cred.cert), valid_entry(&long.cert)]});
    let url = format!("{}/v1.0/applications/{OBJECT_ID}", f.emu.info().base_url());
    let r = client().patch(&url).bearer_auth(&token).json(&body).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"]["code"], "CredentialInvalidLifetimeAsPerAppPolicy", "{b}");
}

#[tokio::test]
async fn the_default_policy_is_served_to_callers_with_policy_read_all_only() {
    let url = |f: &Fixture| format!("{}/v1.0/policies/defaultAppManagementPolicy", f.emu.info().base_url());
    let f = fixture(&[]).await;
    let r = client().get(url(&f)).bearer_auth(graph_token(&f).await).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let f = fixture(&["Policy.Read.All"]).await;
    let token = graph_token(&f).await;
    let r = client().get(url(&f)).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["id"], POLICY_ID);
    assert_eq!(b["applicationRestrictions"]["keyCredentials"][0]["maxLifetime"], "P90D");
    let assigned = format!("{}/v1.0/applications/{OBJECT_ID}/appManagementPolicies", f.emu.info().base_url());
    let r = client().get(assigned).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["value"], json!([]));
}
