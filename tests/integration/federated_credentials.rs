//! Federated identity credentials end to end in the emulator: Graph's endpoints with Graph's
//! rules and error bodies, the emulated external issuer (discovery, keys, minted workload
//! tokens), and the token endpoint accepting a workload token as the client assertion, refusing
//! each mismatch, produced on purpose, with Entra's AADSTS code.

use crate::emulator_support;

use emulator_support::*;
use reqwest::Method;
use serde_json::{json, Value};

const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";
const AUDIENCE: &str = "api://AzureADTokenExchange";
const SUBJECT: &str = "repo:octo-org/octo-repo:environment:Production";

/// An emulator playing the issuers `gh` and `k8s`, whose app may write itself through Graph.
async fn federated_fixture() -> Fixture {
    let f = fixture_with(|c| {
        c.grants.push(("https://graph.microsoft.com".into(), vec!["Application.ReadWrite.OwnedBy".into()]));
        c.issuers = vec!["gh".into(), "k8s".into()];
    })
    .await;
    let mut m: Value = serde_json::from_slice(&std::fs::read(&f.manifest).unwrap()).unwrap();
    m["owners"] = json!([APP_ID]);
    std::fs::write(&f.manifest, serde_json::to_string_pretty(&m).unwrap()).unwrap();
    f
}

async fn graph_token(f: &Fixture) -> String {
    let (s, b) = v2_token_for(f, GRAPH_SCOPE).await;
    assert_eq!(s, 200, "{b}");
    b["access_token"].as_str().unwrap().to_string()
}

fn issuer_url(f: &Fixture, name: &str) -> String {
    let url = f.emu.info().issuers().iter().find(|(n, _)| n == name).unwrap().1.clone();
    assert_eq!(url, format!("{}/issuers/{name}", f.emu.info().base_url()));
    url
}

fn fics_url(f: &Fixture, tail: &str) -> String {
    format!("{}/v1.0/applications/{OBJECT_ID}/federatedIdentityCredentials{tail}", f.emu.info().base_url())
}

async fn send(method: Method, url: &str, token: &str, body: Option<&Value>, prefer: Option<&str>) -> (u16, Value) {
    let mut r = client().request(method, url).bearer_auth(token);
    if let Some(b) = body {
        r = r.header("Content-Type", "application/json").body(b.to_string());
    }
    if let Some(p) = prefer {
        r = r.header("Prefer", p);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A workload token minted by the emulated issuer `name` (the emulator-only mint endpoint).
async fn mint(f: &Fixture, name: &str, body: Value) -> String {
    let url = format!("{}/token", issuer_url(f, name));
    let r = client().post(&url).json(&body).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = r.json().await.unwrap();
    v["token"].as_str().unwrap().to_string()
}

fn graph_code(got: &(u16, Value), status: u16, code: &str) -> String {
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(got.1["error"]["code"], code, "{}", got.1);
    got.1["error"]["message"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn graph_serves_federated_credentials_with_graphs_rules() {
    let f = federated_fixture().await;
    let t = graph_token(&f).await;
    let gh = issuer_url(&f, "gh");
    let body =
        json!({"name": "prod", "issuer": gh, "subject": SUBJECT, "audiences": [AUDIENCE], "description": "deploys"});
    let (s, created) = send(Method::POST, &fics_url(&f, ""), &t, Some(&body), None).await;
    assert_eq!(s, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    assert!(uuid::Uuid::parse_str(&id).is_ok());
    assert_eq!(
        created["@odata.context"],
        format!(
            "{}/v1.0/$metadata#applications('{OBJECT_ID}')/federatedIdentityCredentials/$entity",
            f.emu.info().base_url()
        )
    );
    assert_eq!((created["subject"].as_str(), created["audiences"].clone()), (Some(SUBJECT), json!([AUDIENCE])));

    // The same issuer and subject again: Graph's observed refusal.
    let again = json!({"name": "prod2", "issuer": gh, "subject": SUBJECT, "audiences": [AUDIENCE]});
    let m = graph_code(
        &send(Method::POST, &fics_url(&f, ""), &t, Some(&again), None).await,
        400,
        "InvalidFederatedIdentityCredentialValue",
    );
    assert!(m.starts_with("The combination of issuer and subject must be unique for the application."), "{m}");
    let two = json!({"name": "two", "issuer": gh, "subject": "x", "audiences": [AUDIENCE, "api://other"]});
    graph_code(
        &send(Method::POST, &fics_url(&f, ""), &t, Some(&two), None).await,
        400,
        "InvalidFederatedIdentityCredentialValue",
    );
    let same_name = json!({"name": "PROD", "issuer": gh, "subject": "other", "audiences": [AUDIENCE]});
    graph_code(
        &send(Method::POST, &fics_url(&f, ""), &t, Some(&same_name), None).await,
        400,
        "InvalidFederatedIdentityCredentialValue",
    );

    // By the alternate key: get, upsert (201 new, 204 update), name immutable.
    let by_name = fics_url(&f, "(name='prod')");
    let (s, got) = send(Method::GET, &by_name, &t, None, None).await;
    assert_eq!((s, got["id"].as_str()), (200, Some(id.as_str())), "{got}");
    let k8s =
        json!({"issuer": issuer_url(&f, "k8s"), "subject": "system:serviceaccount:ns:sa", "audiences": [AUDIENCE]});
    let (s, b) = send(Method::PATCH, &fics_url(&f, "(name='aks')"), &t, Some(&k8s), None).await;
    assert_eq!(s, 404, "without Prefer: create-if-missing a PATCH updates only: {b}");
    let (s, b) = send(Method::PATCH, &fics_url(&f, "(name='aks')"), &t, Some(&k8s), Some("create-if-missing")).await;
    assert_eq!((s, b["name"].as_str()), (201, Some("aks")), "{b}");
    let (s, _) =
        send(Method::PATCH, &fics_url(&f, "(name='aks')"), &t, Some(&json!({"description": "cluster"})), None).await;
    assert_eq!(s, 204);
    graph_code(
        &send(Method::PATCH, &by_name, &t, Some(&json!({"name": "renamed"})), None).await,
        400,
        "InvalidFederatedIdentityCredentialValue",
    );

    let (s, list) = send(Method::GET, &fics_url(&f, ""), &t, None, None).await;
    assert_eq!(s, 200);
    let names: Vec<&str> = list["value"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["prod", "aks"]);
    assert_eq!(list["value"][1]["description"], "cluster");
    // By appId too, and the application entity itself never shows them.
    let by_app_id =
        format!("{}/v1.0/applications(appId='{APP_ID}')/federatedIdentityCredentials", f.emu.info().base_url());
    assert_eq!(send(Method::GET, &by_app_id, &t, None, None).await.1["value"].as_array().unwrap().len(), 2);
    let (_, app) =
        send(Method::GET, &format!("{}/v1.0/applications/{OBJECT_ID}", f.emu.info().base_url()), &t, None, None).await;
    assert!(app.get("federatedIdentityCredentials").is_none(), "{app}");

    // At most 20.
    for i in 2..20 {
        let c = json!({"name": format!("n{i}"), "issuer": gh, "subject": format!("s{i}"), "audiences": [AUDIENCE]});
        assert_eq!(send(Method::POST, &fics_url(&f, ""), &t, Some(&c), None).await.0, 201);
    }
    let c = json!({"name": "n20", "issuer": gh, "subject": "s20", "audiences": [AUDIENCE]});
    let m = graph_code(
        &send(Method::POST, &fics_url(&f, ""), &t, Some(&c), None).await,
        400,
        "InvalidFederatedIdentityCredentialValue",
    );
    assert!(m.contains("20"), "{m}");

    assert_eq!(send(Method::DELETE, &fics_url(&f, &format!("/{id}")), &t, None, None).await.0, 204);
    assert_eq!(send(Method::DELETE, &fics_url(&f, "(name='aks')"), &t, None, None).await.0, 204);
    graph_code(&send(Method::GET, &by_name, &t, None, None).await, 404, "Request_ResourceNotFound");
    // Without a token, 401 before anything else.
    assert_eq!(client().get(fics_url(&f, "")).send().await.unwrap().status().as_u16(), 401);
}

/// Writes one credential trusting `subject` of `issuer` into the fixture's manifest.
fn trust(f: &Fixture, issuer: &str, subject: &str, audience: &str) {
    let mut m: Value = serde_json::from_slice(&std::fs::read(&f.manifest).unwrap()).unwrap();
    m["federatedIdentityCredentials"] = json!([{"id": uuid::Uuid::new_v4().to_string(), "name": "prod",
        "issuer": issuer, "subject": subject, "audiences": [audience], "description": null}]);
    std::fs::write(&f.manifest, serde_json::to_string_pretty(&m).unwrap()).unwrap();
}

async fn exchange(f: &Fixture, token: &str) -> (u16, Value) {
    f.post_v2_assertion(token).await
}

#[tokio::test]
async fn the_emulated_issuer_publishes_discovery_and_keys() {
    let f = federated_fixture().await;
    let gh = issuer_url(&f, "gh");
    let doc: Value =
        client().get(format!("{gh}/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        (doc["issuer"].as_str(), doc["jwks_uri"].as_str()),
        (Some(gh.as_str()), Some(format!("{gh}/keys").as_str()))
    );
    let keys: Value = client().get(format!("{gh}/keys")).send().await.unwrap().json().await.unwrap();
    let token = mint(&f, "gh", json!({"subject": SUBJECT})).await;
    let d = keycred::jwt::dangerous::decode(&token).unwrap();
    keycred::jwks::verify(&d, &keys, "gh").unwrap();
    assert_eq!(d.claim_str("iss"), Some(gh.as_str()));
    assert_eq!(d.claim_str("repository"), Some("octo-org/octo-repo"));
    assert_eq!(d.claim_str("environment"), Some("Production"));
    assert_eq!(d.claim_str("aud"), Some(AUDIENCE));
    let unknown = client().get(format!("{}/issuers/nobody/keys", f.emu.info().base_url())).send().await.unwrap();
    assert_eq!(unknown.status().as_u16(), 404);
}

#[tokio::test]
async fn a_workload_token_signs_the_app_in_and_each_mismatch_gets_entras_code() {
    let f = federated_fixture().await;
    let gh = issuer_url(&f, "gh");
    trust(&f, &gh, SUBJECT, AUDIENCE);

    let ok = exchange(&f, &mint(&f, "gh", json!({"subject": SUBJECT})).await).await;
    assert_eq!(ok.0, 200, "{}", ok.1);
    let claims = token_claims(&ok.1);
    let client = claims.get("appid").or(claims.get("azp")).and_then(Value::as_str);
    assert_eq!(client, Some(APP_ID), "{claims:?}");

    let other = mint(&f, "k8s", json!({"subject": SUBJECT})).await;
    let d = assert_entra_error(&exchange(&f, &other).await, 401, "invalid_client", 700211);
    assert!(d.contains(&format!("presented assertion issuer '{}/issuers/k8s'", f.emu.info().base_url())), "{d}");

    let wrong_sub = mint(&f, "gh", json!({"subject": "repo:octo-org/octo-repo:environment:Staging"})).await;
    let d = assert_entra_error(&exchange(&f, &wrong_sub).await, 401, "invalid_client", 700213);
    assert!(d.contains("subject 'repo:octo-org/octo-repo:environment:Staging'"), "{d}");
    let case = mint(&f, "gh", json!({"subject": "repo:Octo-Org/octo-repo:environment:Production"})).await;
    let d = assert_entra_error(&exchange(&f, &case).await, 401, "invalid_client", 7002138);
    assert!(d.contains("matches with case-insensitive comparison, but not with case-sensitive comparison"), "{d}");
    let aud = mint(&f, "gh", json!({"subject": SUBJECT, "audience": "api://AzureADMyOrg"})).await;
    assert_entra_error(&exchange(&f, &aud).await, 401, "invalid_client", 700212);
    let expired = mint(&f, "gh", json!({"subject": SUBJECT, "lifetime": -400})).await;
    assert_entra_error(&exchange(&f, &expired).await, 401, "invalid_client", 700024);

    // Signed by another issuer's key while naming this issuer: the key is not in its JWKS.
    let foreign = mint(&f, "k8s", json!({"subject": SUBJECT, "claims": {"iss": gh}})).await;
    assert_entra_error(&exchange(&f, &foreign).await, 401, "invalid_client", 7000272);
    // This issuer's key, another token's signature.
    let good = mint(&f, "gh", json!({"subject": SUBJECT})).await;
    let tampered = {
        let parts: Vec<&str> = good.split('.').collect();
        let other = mint(&f, "gh", json!({"subject": "x"})).await;
        format!("{}.{}.{}", parts[0], parts[1], other.split('.').nth(2).unwrap())
    };
    assert_entra_error(&exchange(&f, &tampered).await, 400, "invalid_request", 900384);

    // An issuer nobody answers for: a closed loopback port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let gone = format!("http://127.0.0.1:{}/issuer", closed.local_addr().unwrap().port());
    drop(closed);
    trust(&f, &gone, SUBJECT, AUDIENCE);
    let unreachable = mint(&f, "gh", json!({"subject": SUBJECT, "claims": {"iss": gone}})).await;
    let d = assert_entra_error(&exchange(&f, &unreachable).await, 400, "invalid_request", 90061);
    assert!(d.starts_with("AADSTS90061: Request to External OIDC endpoint failed."), "{d}");
}
