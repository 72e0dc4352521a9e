//! The emulator's Graph at tenant scale: `GET /v1.0/applications` pages with `$top`
//! and `@odata.nextLink`, `$select` and the default `$filter` forms; service principals with their
//! own (SAML) credentials; `--throttle` answering 429 with `Retry-After`; ownership for
//! Application.ReadWrite.OwnedBy; duplicate key ids refused; `--generate-tenant` served as is.

use crate::emulator_support::*;
use keycred::emulator::{start, EmulatorHandle};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::PathBuf;

const GRAPH: &str = "https://graph.microsoft.com";

/// A tenant: the caller (APP_ID, OBJECT_ID, its own certificate) and `others` applications
/// named `App 000`, `App 001`... Every third lists the caller in `owners`.
struct Tenant {
    dir: TempDir,
    caller: keycred::cert::LoadedCredential,
    shared: keycred::cert::LoadedCredential,
    others: Vec<(String, String, PathBuf)>,
    emu: EmulatorHandle,
}

fn other_id(i: usize, kind: u8) -> String {
    format!("{kind:02x}{i:06x}-0000-4000-8000-000000000000")
}

async fn tenant(others: usize, roles: &[&str], throttle: Option<f64>) -> Tenant {
    let dir = TempDir::new("graph-tenant");
    let caller = credential("tenant caller");
    let shared = credential("shared certificate of the other apps");
    let me = dir.path("caller.json");
    write_manifest(&me, vec![valid_entry(&caller.cert)]);
    let mut paths = vec![me];
    let mut list = Vec::new();
    for i in 0..others {
        let (app_id, id) = (other_id(i, 0xa1), other_id(i, 0x0b));
        let owners = if i % 3 == 0 { json!([APP_ID]) } else { json!([]) };
        let uris = if i % 10 == 7 { json!([format!("api://app-{i}")]) } else { json!([]) };
        let keys = if i % 5 == 0 { json!([valid_entry(&shared.cert)]) } else { json!([]) };
        let m = json!({"id": id, "appId": app_id, "displayName": format!("App {i:03}"), "identifierUris": uris,
                       "signInAudience": "AzureADMyOrg", "owners": owners, "keyCredentials": keys});
        let p = dir.path(&format!("app-{i}.json"));
        std::fs::write(&p, serde_json::to_string_pretty(&m).unwrap()).unwrap();
        paths.push(p.clone());
        list.push((app_id, id, p));
    }
    let mut cfg = emulator_config(paths, vec![(GRAPH.into(), roles.iter().map(|r| r.to_string()).collect())]);
    cfg.throttle = throttle;
    let emu = start(cfg).await.unwrap();
    Tenant { dir, caller, shared, others: list, emu }
}

impl Tenant {
    async fn token(&self) -> String {
        let v2 = self.emu.info().token_endpoint(keycred::emulator::EndpointVersion::V2);
        let a = assertion_for(&self.caller, &v2, keycred::cert::SignatureAlg::Rs256);
        let (s, b) = post(&v2, &client_credentials_form(APP_ID, &format!("{GRAPH}/.default"), &a)).await;
        assert_eq!(s, 200, "{b}");
        b["access_token"].as_str().unwrap().to_string()
    }
    fn url(&self, tail: &str) -> String {
        format!("{}/v1.0/{tail}", self.emu.info().base_url())
    }
}

async fn get(url: &str, token: Option<&str>) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut r = client().get(url);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.unwrap();
    let (s, h) = (r.status().as_u16(), r.headers().clone());
    (s, h, r.json().await.unwrap_or(Value::Null))
}

async fn send(method: Method, url: &str, token: &str, body: &Value) -> (u16, Value) {
    let r = client().request(method, url).bearer_auth(token).json(body).send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// Follows `@odata.nextLink` from `url`; returns every page.
async fn pages(url: &str, token: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut next = Some(url.to_string());
    while let Some(u) = next {
        let (s, _, b) = get(&u, Some(token)).await;
        assert_eq!(s, 200, "{u}: {b}");
        next = b["@odata.nextLink"].as_str().map(str::to_string);
        out.push(b);
        assert!(out.len() < 50, "paging does not end");
    }
    out
}

fn app_ids(pages: &[Value]) -> Vec<String> {
    pages
        .iter()
        .flat_map(|p| p["value"].as_array().unwrap().iter().map(|a| a["appId"].as_str().unwrap().to_string()))
        .collect()
}

#[tokio::test]
async fn applications_page_with_top_and_next_link_and_select_trims_each_entity() {
    let t = tenant(250, &["Application.Read.All"], None).await;
    let token = t.token().await;
    let base = t.emu.info().base_url();
    let all = pages(&t.url("applications?$select=id,appId,displayName&$top=100"), &token).await;
    let sizes: Vec<usize> = all.iter().map(|p| p["value"].as_array().unwrap().len()).collect();
    assert_eq!(sizes, vec![100, 100, 51]);
    for (i, p) in all.iter().enumerate() {
        assert_eq!(p["@odata.context"], format!("{base}/v1.0/$metadata#applications(id,appId,displayName)"));
        let next = p["@odata.nextLink"].as_str();
        assert_eq!(next.is_some(), i < 2, "{p}");
        if let Some(n) = next {
            assert!(n.starts_with(&format!("{base}/v1.0/applications?")) && n.contains("%24skiptoken="), "{n}");
            assert!(n.contains("%24select=id%2CappId%2CdisplayName") && n.contains("%24top=100"), "{n}");
        }
        for a in p["value"].as_array().unwrap() {
            let keys: BTreeSet<&str> = a.as_object().unwrap().keys().map(String::as_str).collect();
            assert_eq!(keys, BTreeSet::from(["id", "appId", "displayName"]), "{a}");
        }
    }
    let got = app_ids(&all);
    let unique: BTreeSet<&String> = got.iter().collect();
    assert_eq!(unique.len(), 251, "every application once");
    let mut want: BTreeSet<String> = t.others.iter().map(|o| o.0.clone()).collect();
    want.insert(APP_ID.to_string());
    assert_eq!(got.iter().cloned().collect::<BTreeSet<_>>(), want);

    // Graph's default page is 100; $top is at most 999.
    let (s, _, b) = get(&t.url("applications"), Some(&token)).await;
    assert_eq!((s, b["value"].as_array().unwrap().len()), (200, 100));
    assert!(b["@odata.nextLink"].is_string());
    let one = pages(&t.url("applications?$top=999&$select=appId"), &token).await;
    assert_eq!(one.len(), 1);
    assert_eq!(one[0]["value"].as_array().unwrap().len(), 251);
    let (s, _, b) = get(&t.url("applications?$top=1000"), Some(&token)).await;
    assert_eq!((s, b["error"]["code"].as_str()), (400, Some("BadRequest")), "{b}");
}

#[tokio::test]
async fn the_default_filters_match_as_graph_documents_them() {
    let t = tenant(40, &["Application.ReadWrite.All"], None).await;
    let token = t.token().await;
    let q = |f: &str| t.url(&format!("applications?$filter={}", urlencoding(f)));
    // The Azure CLI's lookup of an app id: the whole entity comes back.
    let (s, h, b) = get(&q(&format!("appId eq '{}'", t.others[5].0)), Some(&token)).await;
    assert_eq!(s, 200, "{b}");
    assert!(h["content-type"].to_str().unwrap().starts_with("application/json;odata.metadata=minimal"));
    let v = b["value"].as_array().unwrap();
    assert_eq!(v.len(), 1);
    assert_eq!((v[0]["id"].as_str(), v[0]["displayName"].as_str()), (Some(t.others[5].1.as_str()), Some("App 005")));
    assert_eq!(v[0]["passwordCredentials"], json!([]));
    assert_eq!(v[0]["keyCredentials"][0]["key"], Value::Null, "bodies only when keyCredentials is selected");
    let (_, _, b) = get(&q("appId eq '00000000-0000-4000-8000-000000000000'"), Some(&token)).await;
    assert_eq!(b["value"], json!([]));
    let names = |b: &Value| -> Vec<String> {
        b["value"].as_array().unwrap().iter().map(|a| a["displayName"].as_str().unwrap().to_string()).collect()
    };
    let (_, _, b) = get(&q("startswith(displayName,'app 01')"), Some(&token)).await;
    assert_eq!(names(&b), (10..20).map(|i| format!("App {i:03}")).collect::<Vec<_>>());
    let (_, _, b) = get(&q("displayName eq 'App 033'"), Some(&token)).await;
    assert_eq!(names(&b), vec!["App 033"]);
    let (_, _, b) = get(&q("identifierUris/any(s:s eq 'api://app-17')"), Some(&token)).await;
    assert_eq!(names(&b), vec!["App 017"]);
    let (_, _, b) = get(&q("displayName eq 'App 001' or displayName eq 'App 002'"), Some(&token)).await;
    assert_eq!(names(&b), vec!["App 001", "App 002"]);
    // Credential dates cannot be filtered on Graph: the audit filters on its side.
    let (s, _, b) = get(&q("keyCredentials/any(k:k/endDateTime le 2030-01-01T00:00:00Z)"), Some(&token)).await;
    assert_eq!((s, b["error"]["code"].as_str()), (400, Some("Request_UnsupportedQuery")), "{b}");
    let (s, _, b) = get(&t.url("applications?$select=nosuch"), Some(&token)).await;
    assert_eq!((s, b["error"]["code"].as_str()), (400, Some("BadRequest")), "{b}");
    assert!(b["error"]["message"].as_str().unwrap().contains("'nosuch'"), "{b}");
    // Bodies when keyCredentials is selected.
    let (_, _, b) =
        get(&t.url(&format!("applications(appId='{}')?$select=id,keyCredentials", t.others[5].0)), Some(&token)).await;
    assert_eq!(b["keyCredentials"][0]["key"], t.shared.cert.value_b64(), "{b}");
    // The token is checked before the query: a bad filter without a token is 401.
    let (s, _, b) = get(&q("nosuch eq 1"), None).await;
    assert_eq!((s, b["error"]["code"].as_str()), (401, Some("InvalidAuthenticationToken")), "{b}");
}

fn urlencoding(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>().replace('+', "%20")
}

#[tokio::test]
async fn throttled_clients_get_429_in_graphs_shape_with_retry_after() {
    let t = tenant(2, &["Application.Read.All"], Some(2.0)).await;
    let token = t.token().await;
    let url = t.url("applications?$select=appId");
    // The bucket holds two: a burst of two passes, however slow the machine.
    for _ in 0..2 {
        assert_eq!(get(&url, Some(&token)).await.0, 200);
    }
    // The next one is refused unless the bucket refilled (half a second a request): ask until
    // one is, so that a slow machine, on which a few more may pass, still sees the 429.
    let mut refused = None;
    for _ in 0..10 {
        let (s, h, b) = get(&url, Some(&token)).await;
        if s == 429 {
            refused = Some((h, b));
            break;
        }
        assert_eq!(s, 200, "{b}");
    }
    let (h, b) = refused.expect("ten requests at two a second: one must be throttled");
    assert_eq!(b["error"]["code"], "TooManyRequests", "{b}");
    let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert_eq!(retry, 1, "half a second to the next request, rounded up");
    // Graph's documented forms (https://learn.microsoft.com/graph/throttling-limits, identity and
    // access service limits): `<Scope>/<Limit>/<ApplicationId>/<TenantId>`, and a reason such as
    // ResourceUnitLimitExceeded.
    assert_eq!(h["x-ms-throttle-scope"], format!("Tenant_Application/ReadWrite/{APP_ID}/{TENANT}").as_str());
    assert_eq!(h["x-ms-throttle-information"], "ResourceUnitLimitExceeded");
    std::thread::sleep(std::time::Duration::from_secs(retry));
    assert_eq!(get(&url, Some(&token)).await.0, 200, "waiting Retry-After is enough");
}

#[tokio::test]
async fn owned_by_writes_only_the_applications_that_list_the_caller_as_owner() {
    let t = tenant(3, &["Application.ReadWrite.OwnedBy"], None).await;
    let token = t.token().await;
    let new = credential("owned rotation");
    let body =
        json!({"keyCredentials": [{"type": "AsymmetricX509Cert", "usage": "Verify", "key": new.cert.value_b64()}]});
    // others[0] lists the caller in owners; others[1] does not.
    let (s, b) = send(Method::PATCH, &t.url(&format!("applications/{}", t.others[0].1)), &token, &body).await;
    assert_eq!(s, 204, "{b}");
    let before = std::fs::read(&t.others[1].2).unwrap();
    for (method, tail, body) in
        [(Method::PATCH, String::new(), body.clone()), (Method::POST, "/addPassword".to_string(), json!({}))]
    {
        let (s, b) = send(method, &t.url(&format!("applications/{}{tail}", t.others[1].1)), &token, &body).await;
        assert_eq!((s, b["error"]["code"].as_str()), (403, Some("Authorization_RequestDenied")), "{b}");
        assert_eq!(b["error"]["message"], "Insufficient privileges to complete the operation.");
    }
    assert_eq!(std::fs::read(&t.others[1].2).unwrap(), before);
    // Reading is not limited to owned applications.
    let (s, _, _) = get(&t.url(&format!("applications/{}", t.others[1].1)), Some(&token)).await;
    assert_eq!(s, 200);
    // .All writes any application.
    let all = tenant(3, &["Application.ReadWrite.All"], None).await;
    let token = all.token().await;
    let (s, b) = send(Method::PATCH, &all.url(&format!("applications/{}", all.others[1].1)), &token, &body).await;
    assert_eq!(s, 204, "{b}");
    drop(t.dir);
}

#[tokio::test]
async fn duplicate_key_ids_and_one_certificate_twice_are_refused() {
    let t = tenant(1, &["Application.ReadWrite.All"], None).await;
    let token = t.token().await;
    let url = t.url(&format!("applications/{}", t.others[0].1));
    let before = std::fs::read(&t.others[0].2).unwrap();
    let (a, b) = (credential("dup a"), credential("dup b"));
    let id = uuid::Uuid::new_v4().to_string();
    let entry = |c: &keycred::cert::LoadedCredential, id: &str| json!({"type": "AsymmetricX509Cert", "usage": "Verify", "key": c.cert.value_b64(), "keyId": id});
    let other = uuid::Uuid::new_v4().to_string();
    for body in [
        json!({"keyCredentials": [entry(&a, &id), entry(&b, &id)]}),
        json!({"keyCredentials": [entry(&a, &id), entry(&a, &other)]}),
    ] {
        let (s, r) = send(Method::PATCH, &url, &token, &body).await;
        assert_eq!((s, r["error"]["code"].as_str()), (400, Some("DuplicateValue")), "{body}: {r}");
        assert_eq!(r["error"]["message"], "Request contains a property with duplicate values.");
    }
    // The registered certificate, kept by keyId, and sent again as a new entry.
    let registered =
        keycred::manifest::Manifest::load(&t.others[0].2).unwrap().credentials()[0].key_id.clone().unwrap();
    let (s, r) = send(
        Method::PATCH,
        &url,
        &token,
        &json!({"keyCredentials": [{"keyId": registered, "key": null}, entry(&t.shared, &other)]}),
    )
    .await;
    assert_eq!((s, r["error"]["code"].as_str()), (400, Some("DuplicateValue")), "{r}");
    assert_eq!(std::fs::read(&t.others[0].2).unwrap(), before);
}

#[tokio::test]
async fn service_principals_carry_their_own_saml_credentials() {
    let dir = TempDir::new("graph-sp");
    let caller = credential("sp caller");
    let saml = credential("saml signing");
    let m = dir.path("app.json");
    write_manifest(&m, vec![valid_entry(&caller.cert)]);
    let mut v: Value = serde_json::from_slice(&std::fs::read(&m).unwrap()).unwrap();
    let cki = saml.cert.custom_key_identifier();
    let (verify_id, sign_id) = (uuid::Uuid::new_v4().to_string(), uuid::Uuid::new_v4().to_string());
    let not_before = keycred::dates::format(saml.cert.not_before());
    let end = keycred::dates::format(saml.cert.not_after());
    v["servicePrincipal"] = json!({
        "preferredSingleSignOnMode": "saml",
        "preferredTokenSigningKeyThumbprint": saml.cert.thumbprint().to_lowercase(),
        "keyCredentials": [
            {"customKeyIdentifier": cki, "displayName": "CN=saml signing", "endDateTime": end, "key": saml.cert.value_b64(),
             "keyId": verify_id, "startDateTime": not_before, "type": "AsymmetricX509Cert", "usage": "Verify"},
            {"customKeyIdentifier": cki, "displayName": "CN=saml signing", "endDateTime": end, "key": null,
             "keyId": sign_id, "startDateTime": not_before, "type": "X509CertAndPassword", "usage": "Sign"}],
        "passwordCredentials": [{"customKeyIdentifier": cki, "displayName": "CN=saml signing", "endDateTime": end,
                                 "hint": null, "keyId": sign_id, "secretText": null, "startDateTime": not_before}]
    });
    std::fs::write(&m, v.to_string()).unwrap();
    let emu = start(emulator_config(vec![m], vec![(GRAPH.into(), vec!["Application.Read.All".into()])])).await.unwrap();
    let v2 = emu.info().token_endpoint(keycred::emulator::EndpointVersion::V2);
    let a = assertion_for(&caller, &v2, keycred::cert::SignatureAlg::Rs256);
    let (_, tok) = post(&v2, &client_credentials_form(APP_ID, &format!("{GRAPH}/.default"), &a)).await;
    let oid = token_claims(&tok)["oid"].as_str().unwrap().to_string();
    let token = tok["access_token"].as_str().unwrap();
    let base = emu.info().base_url();
    let (s, _, b) = get(&format!("{base}/v1.0/servicePrincipals?$filter=appId%20eq%20'{APP_ID}'&$select=id,appId,keyCredentials,passwordCredentials,preferredTokenSigningKeyThumbprint"), Some(token)).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["@odata.context"], format!("{base}/v1.0/$metadata#servicePrincipals(id,appId,keyCredentials,passwordCredentials,preferredTokenSigningKeyThumbprint)"));
    let sp = &b["value"][0];
    assert_eq!(sp["id"], oid, "the service principal is the token's oid");
    let keys = sp["keyCredentials"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(
        (keys[0]["usage"].as_str(), keys[0]["key"].as_str()),
        (Some("Verify"), Some(saml.cert.value_b64().as_str()))
    );
    assert_eq!(keys[1]["keyId"], sign_id);
    assert_eq!(sp["passwordCredentials"][0]["keyId"], sign_id);
    assert_eq!(sp["passwordCredentials"][0]["secretText"], Value::Null);
    assert_eq!(sp["preferredTokenSigningKeyThumbprint"], saml.cert.thumbprint().to_lowercase());
    // By id, without $select: the whole entity, bodies left out.
    let (s, _, b) = get(&format!("{base}/v1.0/servicePrincipals/{oid}"), Some(token)).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!((b["appId"].as_str(), b["servicePrincipalType"].as_str()), (Some(APP_ID), Some("Application")));
    assert_eq!(b["keyCredentials"][0]["key"], Value::Null);
    assert_eq!(b["servicePrincipalNames"], json!([APP_ID]));
}

#[test]
fn a_generated_tenant_is_served_and_its_automation_app_signs_in() {
    let dir = TempDir::new("graph-gen");
    let out = dir.path("tenant");
    let o = keycred_command(
        &["emulate", "--generate-tenant", "60", "--out", &out.display().to_string(), "--with-keys", "-o", "json"],
        &[],
    )
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let summary: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["apps"], 60);
    let truth: Vec<Value> = std::fs::read_to_string(out.join("ground-truth.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let manifests: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    assert_eq!(manifests.len(), 60);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let emu = start(emulator_config(manifests, vec![(GRAPH.into(), vec!["Application.ReadWrite.All".into()])]))
            .await
            .unwrap();
        let automation = summary["automationAppId"].as_str().unwrap();
        let bundle = keycred::cert::load_credential(
            std::path::Path::new(summary["automationBundle"].as_str().unwrap()),
            None,
            None,
        )
        .unwrap();
        let v2 = emu.info().token_endpoint(keycred::emulator::EndpointVersion::V2);
        let a = keycred::jwt::client_assertion(
            &bundle,
            &keycred::jwt::AssertionParams {
                client_id: automation.into(),
                audience: v2.clone(),
                alg: keycred::cert::SignatureAlg::Rs256,
                x5c: false,
                lifetime: 600,
            },
        )
        .unwrap();
        let (s, tok) = post(&v2, &client_credentials_form(automation, &format!("{GRAPH}/.default"), a.expose())).await;
        assert_eq!(s, 200, "{tok}");
        let token = tok["access_token"].as_str().unwrap();
        let all = pages(
            &format!(
                "{}/v1.0/applications?$top=25&$select=appId,keyCredentials,passwordCredentials",
                emu.info().base_url()
            ),
            token,
        )
        .await;
        assert_eq!(all.len(), 3);
        // Every credential of the ground truth is where it says, by keyId.
        let mut seen = BTreeSet::new();
        for p in &all {
            for app in p["value"].as_array().unwrap() {
                for kind in ["keyCredentials", "passwordCredentials"] {
                    for c in app[kind].as_array().unwrap() {
                        seen.insert((
                            app["appId"].as_str().unwrap().to_string(),
                            c["keyId"].as_str().unwrap().to_string(),
                        ));
                    }
                }
            }
        }
        for t in truth.iter().filter(|t| t["servicePrincipal"] == false) {
            let key = (t["appId"].as_str().unwrap().to_string(), t["keyId"].as_str().unwrap().to_string());
            assert!(seen.contains(&key), "{t}");
        }
        // A generated app authenticates with its own bundle.
        let t = truth
            .iter()
            .find(|t| t["status"] == "valid" && t["bundle"].is_string() && t["appId"] != automation)
            .unwrap();
        let cred = keycred::cert::load_credential(&out.join(t["bundle"].as_str().unwrap()), None, None).unwrap();
        let app_id = t["appId"].as_str().unwrap();
        let a = keycred::jwt::client_assertion(
            &cred,
            &keycred::jwt::AssertionParams {
                client_id: app_id.into(),
                audience: v2.clone(),
                alg: keycred::cert::SignatureAlg::Rs256,
                x5c: false,
                lifetime: 600,
            },
        )
        .unwrap();
        let (s, b) = post(&v2, &client_credentials_form(app_id, &format!("{GRAPH}/.default"), a.expose())).await;
        assert_eq!(s, 200, "{b}");
        // A generated secret works for its app.
        let sec = truth.iter().find(|t| t["kind"] == "secret" && t["status"] == "valid").unwrap();
        let secret = std::fs::read_to_string(out.join(sec["secretFile"].as_str().unwrap())).unwrap();
        let sid = sec["appId"].as_str().unwrap();
        let (s, b) = post(
            &v2,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", sid),
                ("scope", "https://graph.microsoft.com/.default"),
                ("client_secret", &secret),
            ],
        )
        .await;
        assert_eq!(s, 200, "{b}");
    });
}

#[tokio::test]
async fn a_registered_key_id_cannot_take_another_certificate() {
    let t = tenant(1, &["Application.ReadWrite.All"], None).await;
    let token = t.token().await;
    let url = t.url(&format!("applications/{}", t.others[0].1));
    let before = std::fs::read(&t.others[0].2).unwrap();
    let registered =
        keycred::manifest::Manifest::load(&t.others[0].2).unwrap().credentials()[0].key_id.clone().unwrap();
    let other = credential("another certificate");
    let body = json!({"keyCredentials": [{"keyId": registered, "key": other.cert.value_b64(),
                                          "type": "AsymmetricX509Cert", "usage": "Verify"}]});
    let (s, r) = send(Method::PATCH, &url, &token, &body).await;
    assert_eq!((s, r["error"]["code"].as_str()), (400, Some("Request_BadRequest")), "{r}");
    assert_eq!(
        r["error"]["message"],
        format!("Update to existing credential with KeyId '{registered}' is not allowed.")
    );
    assert_eq!(std::fs::read(&t.others[0].2).unwrap(), before);
}

#[tokio::test]
async fn batch_runs_each_request_as_if_sent_alone() {
    let t = tenant(2, &["Application.ReadWrite.All"], Some(3.0)).await;
    let token = t.token().await;
    let url = t.url("$batch");
    let new = credential("batched");
    let get = |id: &str, u: String| json!({"id": id, "method": "GET", "url": u});
    let body = json!({"requests": [
        get("1", format!("/applications(appId='{}')?$select=id", t.others[0].0)),
        {"id": "2", "method": "PATCH", "url": format!("/applications/{}", t.others[1].1),
         "headers": {"Content-Type": "application/json"},
         "body": {"keyCredentials": [{"type": "AsymmetricX509Cert", "usage": "Verify", "key": new.cert.value_b64()}]}},
        get("3", "/applications/00000000-0000-4000-8000-000000000000".into()),
        {"id": "4", "method": "GET", "url": "/applications?$top=1", "dependsOn": ["3"]},
    ]});
    // Filled up to the limit of 20 with GETs: sixteen requests after the burst of three, so one
    // of them is throttled unless every one of them ran a third of a second after the last.
    let mut body = body;
    let requests = body["requests"].as_array_mut().unwrap();
    for i in 5..=20 {
        requests.push(get(&i.to_string(), "/applications?$top=1".into()));
    }
    assert_eq!(requests.len(), 20);
    let (s, b) = send(Method::POST, &url, &token, &body).await;
    assert_eq!(s, 200, "{b}");
    let r = b["responses"].as_array().unwrap();
    let status: Vec<u64> = r.iter().map(|x| x["status"].as_u64().unwrap()).collect();
    // Three requests per second, a burst of three: 1 to 3 pass, 4 does not run (its dependency
    // failed) and takes nothing from the bucket.
    assert_eq!(status.len(), 20, "{b}");
    assert_eq!(status[..4], [200, 204, 404, 424], "{b}");
    assert_eq!(r[0]["body"]["id"], t.others[0].1);
    assert_eq!(r[2]["body"]["error"]["code"], "Request_ResourceNotFound");
    assert_eq!(r[3]["body"]["error"]["code"], "FailedDependency");
    // Each later one is throttled on its own: a 429 in Graph's shape, the others succeed.
    let mut throttled = 0;
    for (x, s) in r[4..].iter().zip(&status[4..]) {
        match s {
            200 => assert_eq!(x["body"]["value"].as_array().map(Vec::len), Some(1), "{x}"),
            429 => {
                throttled += 1;
                assert_eq!(x["body"]["error"]["code"], "TooManyRequests", "{x}");
                let message = x["body"]["error"]["message"].as_str().unwrap();
                assert!(message.starts_with("Too many requests from Identifier:"), "{x}");
                assert_eq!(x["headers"]["retry-after"], "1", "{x}");
            }
            _ => panic!("request {}: {x}", x["id"]),
        }
    }
    assert!(throttled > 0, "sixteen requests at three a second, none throttled: {b}");
    let m = keycred::manifest::Manifest::load(&t.others[1].2).unwrap();
    assert_eq!(m.credentials()[0].certificate.as_ref().unwrap().thumbprint(), new.cert.thumbprint());
    // The envelope: token first, then at most 20 requests with unique ids.
    let r = client().post(&url).json(&body).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let many: Vec<Value> = (0..21).map(|i| get(&i.to_string(), "/applications".into())).collect();
    let (s, b) = send(Method::POST, &url, &token, &json!({"requests": many})).await;
    assert_eq!((s, b["error"]["code"].as_str()), (400, Some("BadRequest")), "{b}");
    let (s, b) =
        send(Method::POST, &url, &token, &json!({"requests": [get("a", "/x".into()), get("a", "/y".into())]})).await;
    assert_eq!(s, 400, "{b}");
}

/// The generator's summary counts the SAML certificates of service principals with the rest,
/// and says so: `fleet audit` lists them only with `--include-service-principals`.
#[test]
fn the_generated_tenants_summary_says_which_credentials_are_on_service_principals() {
    let dir = TempDir::new("graph-gen-sp");
    let out = dir.path("tenant");
    let o = keycred_command(&["emulate", "--generate-tenant", "30", "--out", &out.display().to_string()], &[])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    let truth = std::fs::read_to_string(out.join("ground-truth.jsonl")).unwrap();
    let on_sps = truth.lines().filter(|l| l.contains("\"servicePrincipal\":true")).count();
    assert!(on_sps >= 1, "{truth}");
    let verb = if on_sps == 1 { "is" } else { "are" };
    assert!(
        text.contains(&format!(
            "; {on_sps} {verb} on service principals, which `keycred fleet audit` lists with --include-service-principals"
        )),
        "{text}"
    );
    let json_out = dir.path("tenant-json");
    let o = keycred_command(
        &["emulate", "--generate-tenant", "30", "--out", &json_out.display().to_string(), "-o", "json"],
        &[],
    )
    .output()
    .unwrap();
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["servicePrincipalCredentials"], on_sps);
}
