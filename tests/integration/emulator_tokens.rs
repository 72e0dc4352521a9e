//! Successful flows of the emulator: v1 and v2 bodies with their JSON types, tokens verified
//! against the published JWKS (by keycred and by openssl), granted roles, manifest edits taking
//! effect without a restart, https with the generated CA, and the `keycred emulate` command.

use crate::emulator_support;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use emulator_support::*;
use keycred::cert::{Certificate, SignatureAlg};
use keycred::jwt::dangerous;
use serde_json::{json, Value};
use std::io::BufRead;
use std::process::{Command, Stdio};

async fn v1_token(f: &Fixture, resource: &str) -> (u16, Value) {
    let a = f.assertion(&f.v1());
    post(
        &f.v1(),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", APP_ID),
            ("resource", resource),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &a),
        ],
    )
    .await
}

/// Checks that each claim is present with exactly this value.
fn assert_claims(c: &serde_json::Map<String, Value>, want: &[(&str, Value)]) {
    for (k, v) in want {
        assert_eq!(c.get(*k), Some(v), "claim {k}");
    }
}

/// DER of a PKCS#1 RSAPublicKey from big-endian n and e (what `SignatureAlg::verify` takes).
fn pkcs1_from_n_e(n: &[u8], e: &[u8]) -> Vec<u8> {
    fn len(l: usize) -> Vec<u8> {
        if l < 128 {
            vec![l as u8]
        } else {
            let b: Vec<u8> = l.to_be_bytes().iter().copied().skip_while(|&x| x == 0).collect();
            let mut v = vec![0x80 | b.len() as u8];
            v.extend(b);
            v
        }
    }
    fn int(x: &[u8]) -> Vec<u8> {
        let mut body = x.to_vec();
        if body[0] & 0x80 != 0 {
            body.insert(0, 0);
        }
        let mut v = vec![0x02];
        v.extend(len(body.len()));
        v.extend(body);
        v
    }
    let mut inner = int(n);
    inner.extend(int(e));
    let mut v = vec![0x30];
    v.extend(len(inner.len()));
    v.extend(inner);
    v
}

#[tokio::test]
async fn v1_success_body_has_string_numbers_and_app_claims() {
    let f = fixture().await;
    let before = keycred::jwt::now_secs();
    let (s, b) = v1_token(&f, API).await;
    let after = keycred::jwt::now_secs();
    assert_eq!(s, 200, "{b}");
    for k in ["token_type", "expires_in", "ext_expires_in", "expires_on", "not_before", "resource", "access_token"] {
        assert!(b[k].is_string(), "{k} should be a string in {b}");
    }
    assert_eq!(b["token_type"], "Bearer");
    assert_eq!(b["resource"], API);
    let exp_on: i64 = b["expires_on"].as_str().unwrap().parse().unwrap();
    let nb: i64 = b["not_before"].as_str().unwrap().parse().unwrap();
    // Entra: expires_in 3599, iat = nbf = issue time minus five minutes.
    assert_eq!(b["expires_in"], "3599");
    assert_eq!(exp_on - nb, 3599 + 300);
    // Issued between `before` and `after` (whole seconds of the same clock), however long the
    // request took.
    assert!(
        (before - 300..=after - 300).contains(&nb),
        "nbf {nb} is not five minutes before the request, made from {before} to {after}"
    );

    let t = dangerous::decode(b["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(t.header["alg"], "RS256");
    assert_eq!(t.header["typ"], "JWT");
    assert_eq!(t.header["kid"], t.header["x5t"]);
    let c = &t.claims;
    assert_claims(
        c,
        &[
            ("aud", json!(API)),
            ("iss", json!(format!("https://sts.windows.net/{TENANT}/"))),
            ("idp", json!(format!("https://sts.windows.net/{TENANT}/"))),
            ("appid", json!(APP_ID)),
            ("appidacr", json!("2")),
            ("tid", json!(TENANT)),
            ("ver", json!("1.0")),
        ],
    );
    // `idtyp` is an optional claim the resource asks for; this one does not
    // (https://learn.microsoft.com/entra/identity-platform/optional-claims-reference).
    assert!(c.get("idtyp").is_none(), "{c:?}");
    assert_eq!(c["oid"], c["sub"]);
    assert!(uuid::Uuid::parse_str(c["oid"].as_str().unwrap()).is_ok());
    assert!(c["uti"].is_string());
    assert_eq!(c["roles"], json!(["Data.Read", "Data.Write"]));
    assert_eq!(c["exp"].as_i64().unwrap(), exp_on);
    assert_eq!(c["nbf"].as_i64().unwrap(), nb);
    assert_eq!(c["iat"].as_i64().unwrap(), nb);
}

/// An API app of the tenant that asks for v2 tokens, and a client app whose manifest requires
/// its two app roles; the client is consented by an administrator at start.
const V2_API_ID: &str = "5b1f3c2e-8d4a-4e6f-9a7b-2c3d4e5f6a7b";
const V2_API_URI: &str = "api://keycred-v2-api";
const ROLE_READ: &str = "3f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f1";
const ROLE_WRITE: &str = "3f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f2";

fn write_v2_api(dir: &TempDir) -> std::path::PathBuf {
    let p = dir.path("v2-api.json");
    let m = json!({
        "id": "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a", "appId": V2_API_ID, "displayName": "keycred v2 API",
        "identifierUris": [V2_API_URI],
        "api": {"requestedAccessTokenVersion": 2, "oauth2PermissionScopes": []},
        "appRoles": [
            {"id": ROLE_READ, "value": "Data.Read", "allowedMemberTypes": ["Application"], "isEnabled": true},
            {"id": ROLE_WRITE, "value": "Data.Write", "allowedMemberTypes": ["Application"], "isEnabled": true}
        ],
        "keyCredentials": []
    });
    std::fs::write(&p, serde_json::to_string_pretty(&m).unwrap()).unwrap();
    p
}

/// Adds `requiredResourceAccess` for both roles of the v2 API to the test app's manifest.
fn require_v2_roles(manifest: &std::path::Path) {
    let mut m: Value = serde_json::from_slice(&std::fs::read(manifest).unwrap()).unwrap();
    m["requiredResourceAccess"] = json!([{"resourceAppId": V2_API_ID, "resourceAccess": [
        {"id": ROLE_READ, "type": "Role"}, {"id": ROLE_WRITE, "type": "Role"}]}]);
    std::fs::write(manifest, serde_json::to_string_pretty(&m).unwrap()).unwrap();
}

async fn v2_api_fixture(consented: bool) -> Fixture {
    let dir = TempDir::new("emu-v2-api");
    let api = write_v2_api(&dir);
    let cred = credential("emulator test app");
    let manifest = dir.path("app.json");
    write_manifest(&manifest, vec![valid_entry(&cred.cert)]);
    require_v2_roles(&manifest);
    let mut cfg = emulator_config(vec![manifest.clone(), api], vec![]);
    if consented {
        cfg.consented = vec![APP_ID.into()];
    }
    let emu = keycred::emulator::start(cfg).await.unwrap();
    Fixture { dir, manifest, cred, emu }
}

#[tokio::test]
async fn v2_tokens_only_for_a_resource_that_asks_for_them_from_both_endpoints() {
    let f = v2_api_fixture(true).await;
    let scope = format!("{V2_API_URI}/.default");
    let (s, b) = v2_token_for(&f, &scope).await;
    assert_eq!(s, 200, "{b}");
    assert!(b["expires_in"].is_u64() && b["ext_expires_in"].is_u64(), "{b}");
    assert!(b.get("resource").is_none());
    let t = dangerous::decode(b["access_token"].as_str().unwrap()).unwrap();
    assert!(t.header.get("x5t").is_none());
    assert!(t.header["kid"].is_string());
    let want = [
        ("aud", json!(V2_API_ID)),
        ("iss", json!(format!("https://login.microsoftonline.com/{TENANT}/v2.0"))),
        ("azp", json!(APP_ID)),
        ("azpacr", json!("2")),
        ("ver", json!("2.0")),
    ];
    assert_claims(&t.claims, &want);
    // `idtyp` only when the resource asks for it (optional-claims reference).
    for absent in ["appid", "appidacr", "idp", "idtyp"] {
        assert!(t.claims.get(absent).is_none(), "{absent} in a v2 token");
    }
    assert_eq!(t.roles(), vec!["Data.Read", "Data.Write"]);
    // The v1 endpoint gives the same v2 shape: the resource decides, not the endpoint.
    let (s, b) = v1_token(&f, V2_API_URI).await;
    assert_eq!(s, 200, "{b}");
    assert_claims(&token_claims(&b), &want);
    // Asked by its app id, the same.
    let (_, b) = v2_token_for(&f, &format!("{V2_API_ID}/.default")).await;
    assert_eq!(token_claims(&b)["aud"], V2_API_ID);
}

#[tokio::test]
async fn roles_come_from_admin_consent_of_required_resource_access() {
    // Not consented: Entra still issues the token, without roles (the API refuses it).
    let f = v2_api_fixture(false).await;
    let scope = format!("{V2_API_URI}/.default");
    let (s, b) = v2_token_for(&f, &scope).await;
    assert_eq!(s, 200, "{b}");
    assert!(token_claims(&b).get("roles").is_none(), "roles before consent: {b}");
    // An administrator consents through the admin-consent endpoint: now the roles are there.
    let url = format!(
        "{}?client_id={APP_ID}&redirect_uri={}&scope={}&state=s1",
        f.emu.info().admin_consent_endpoint(),
        "http%3A%2F%2Flocalhost%2Fcallback",
        "api%3A%2F%2Fkeycred-v2-api%2F.default"
    );
    let mut m: Value = serde_json::from_slice(&std::fs::read(&f.manifest).unwrap()).unwrap();
    m["web"] = json!({"redirectUris": ["http://localhost/callback"]});
    std::fs::write(&f.manifest, serde_json::to_string_pretty(&m).unwrap()).unwrap();
    let nofollow = reqwest::Client::builder().no_proxy().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let page = nofollow.get(&url).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Data.Read") && html.contains("Data.Write"), "{html}");
    let token = form_token(&html);
    let accept = [
        ("client_id", APP_ID),
        ("redirect_uri", "http://localhost/callback"),
        ("scope", "api://keycred-v2-api/.default"),
        ("state", "s1"),
        ("form_token", &token),
        ("decision", "accept"),
    ];
    let r = nofollow.post(&url).form(&accept).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 302);
    let loc = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    let q: std::collections::HashMap<String, String> = loc.query_pairs().into_owned().collect();
    assert_eq!(q.get("admin_consent").map(String::as_str), Some("True"), "{loc}");
    assert_eq!(q.get("tenant").map(String::as_str), Some(TENANT));
    assert_eq!(q.get("state").map(String::as_str), Some("s1"));
    let (_, b) = v2_token_for(&f, &scope).await;
    assert_eq!(
        keycred::jwt::dangerous::decode(b["access_token"].as_str().unwrap()).unwrap().roles(),
        vec!["Data.Read", "Data.Write"]
    );
}

#[tokio::test]
async fn first_party_resources_take_v1_tokens_from_both_endpoints() {
    const AAD_GRAPH: &str = "https://graph.windows.net";
    const O365_MGMT: &str = "https://manage.office.com";
    const MTP: &str = "https://api.security.microsoft.com";
    let f = fixture().await;
    let cases: [&str; 8] = [
        "https://graph.microsoft.com",
        "https://graph.microsoft.com/",
        "00000003-0000-0000-c000-000000000000",
        AAD_GRAPH,
        O365_MGMT,
        "c5393580-f805-4401-95e8-94b7a6ef2fc2",
        MTP,
        // Known only from --grant: a resource without a manifest takes v1 tokens too.
        API,
    ];
    let iss = format!("https://sts.windows.net/{TENANT}/");
    for resource in cases {
        // v2 endpoint: `aud` is the identifier as requested (`//.default` for a trailing slash).
        let scope = format!("{resource}/.default");
        let (s, b) = v2_token_for(&f, &scope).await;
        assert_eq!(s, 200, "{scope}: {b}");
        let c = token_claims(&b);
        assert_eq!(c["aud"], resource, "v2 endpoint aud for {resource}");
        assert_claims(
            &c,
            &[
                ("iss", json!(iss)),
                ("ver", json!("1.0")),
                ("appid", json!(APP_ID)),
                ("appidacr", json!("2")),
                ("idp", json!(iss)),
            ],
        );
        assert!(c.get("azp").is_none(), "no azp in a v1 token: {c:?}");
        // v1 endpoint: the same shape.
        let (s, b) = v1_token(&f, resource).await;
        assert_eq!(s, 200, "{resource}: {b}");
        let c = token_claims(&b);
        assert_eq!(c["aud"], resource, "v1 aud for {resource}");
        assert_eq!(c["ver"], "1.0");
        assert!(c.get("azp").is_none());
    }
}

#[tokio::test]
async fn own_app_needs_no_grant_and_unregistered_uris_are_unknown() {
    let f = fixture().await;
    // An app may ask a token for itself by its app id: no roles without consent.
    let (s, b) = v1_token(&f, APP_ID).await;
    assert_eq!(s, 200, "{b}");
    assert!(token_claims(&b).get("roles").is_none());
    // `api://{appId}` names it only when it is one of its identifierUris.
    let got = v1_token(&f, &format!("api://{APP_ID}")).await;
    assert_entra_error(&got, 400, "invalid_resource", 500011);
    let (s, b) = v1_token(&f, "https://graph.microsoft.com").await;
    assert_eq!(s, 200, "{b}");
    assert!(token_claims(&b).get("roles").is_none(), "Graph without consent or --grant: no roles");
}

#[tokio::test]
async fn token_verifies_against_the_jwks_and_openssl() {
    let f = fixture().await;
    let (_, b) = f.post_v2_assertion(&f.assertion(&f.v2())).await;
    let token = b["access_token"].as_str().unwrap().to_string();
    let t = dangerous::decode(&token).unwrap();

    let jwks: Value = client().get(f.emu.info().jwks_uri()).send().await.unwrap().json().await.unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["kid"], t.header["kid"]);
    assert_eq!(key["x5t"], t.header["kid"]);
    let n = URL_SAFE_NO_PAD.decode(key["n"].as_str().unwrap()).unwrap();
    let e = URL_SAFE_NO_PAD.decode(key["e"].as_str().unwrap()).unwrap();
    assert_eq!(e, vec![1, 0, 1]);
    assert!(t.verify(SignatureAlg::Rs256, &pkcs1_from_n_e(&n, &e)), "n/e key verifies");
    let der = base64::engine::general_purpose::STANDARD.decode(key["x5c"][0].as_str().unwrap()).unwrap();
    let cert = Certificate::from_der(&der, "x5c").unwrap();
    assert!(t.verify(SignatureAlg::Rs256, cert.rsa_public_key().unwrap()), "x5c key verifies");
    assert_eq!(key["x5t"], cert.x5t());
    assert_eq!(cert.rsa_public_key().unwrap(), f.emu.info().jwks_public_key());

    // openssl, independently: the modulus matches and the signature verifies.
    let dir = TempDir::new("emu-test");
    std::fs::write(dir.path("jwks.pem"), cert.to_pem()).unwrap();
    let out =
        Command::new("openssl").args(["x509", "-noout", "-modulus", "-in"]).arg(dir.path("jwks.pem")).output().unwrap();
    let modulus = String::from_utf8(out.stdout).unwrap();
    assert_eq!(modulus.trim().trim_start_matches("Modulus="), keycred::thumbprint::hex_upper(&n));
    let out =
        Command::new("openssl").args(["x509", "-noout", "-pubkey", "-in"]).arg(dir.path("jwks.pem")).output().unwrap();
    std::fs::write(dir.path("pub.pem"), out.stdout).unwrap();
    std::fs::write(dir.path("input"), t.signing_input.as_bytes()).unwrap();
    std::fs::write(dir.path("sig"), &t.signature).unwrap();
    let out = Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(dir.path("pub.pem"))
        .arg("-signature")
        .arg(dir.path("sig"))
        .arg(dir.path("input"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "Verified OK");
}

#[tokio::test]
async fn discovery_documents_point_at_the_emulator() {
    let f = fixture().await;
    let base = f.emu.info().base_url().to_string();
    let c = client();
    let v2: Value = c
        .get(format!("{base}/{TENANT}/v2.0/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v2["token_endpoint"], f.v2());
    assert_eq!(v2["jwks_uri"], f.emu.info().jwks_uri());
    assert_eq!(v2["issuer"], format!("https://login.microsoftonline.com/{TENANT}/v2.0"));
    assert_eq!(
        v2["token_endpoint_auth_methods_supported"],
        json!(["client_secret_post", "private_key_jwt", "client_secret_basic"])
    );
    let v1: Value =
        c.get(format!("{base}/{TENANT}/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!(v1["token_endpoint"], f.v1());
    assert_eq!(v1["issuer"], format!("https://sts.windows.net/{TENANT}/"));
    let auth = format!("{base}/{TENANT}/oauth2/v2.0/authorize");
    let inst: Value = c
        .get(
            url::Url::parse_with_params(
                &format!("{base}/common/discovery/instance"),
                &[("api-version", "1.1"), ("authorization_endpoint", auth.as_str())],
            )
            .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(inst["tenant_discovery_endpoint"], format!("{base}/{TENANT}/v2.0/.well-known/openid-configuration"));
    let host = base.trim_start_matches("http://");
    assert_eq!(inst["metadata"][0]["aliases"], json!([host]));
}

#[tokio::test]
async fn removing_the_credential_on_disk_fails_the_next_request_with_700027() {
    let f = fixture().await;
    assert_eq!(f.post_v2_assertion(&f.assertion(&f.v2())).await.0, 200);
    // Rotation: a new certificate is added beside the old one...
    let new = credential("rotated");
    write_manifest(&f.manifest, vec![valid_entry(&f.cred.cert), valid_entry(&new.cert)]);
    assert_eq!(f.post_v2_assertion(&assertion_for(&new, &f.v2(), SignatureAlg::Rs256)).await.0, 200);
    // ...then the old one is removed, atomically as keycred writes files.
    let tmp = f.dir.path("app.json.tmp");
    write_manifest(&tmp, vec![valid_entry(&new.cert)]);
    std::fs::rename(&tmp, &f.manifest).unwrap();
    let got = f.post_v2_assertion(&f.assertion(&f.v2())).await;
    let d = assert_entra_error(&got, 401, "invalid_client", 700027);
    assert!(d.contains(&f.cred.cert.thumbprint()), "{d}");
    assert_eq!(f.post_v2_assertion(&assertion_for(&new, &f.v2(), SignatureAlg::Rs256)).await.0, 200);
    // A broken file keeps the last good version.
    std::fs::write(&f.manifest, "{ not json").unwrap();
    assert_eq!(f.post_v2_assertion(&assertion_for(&new, &f.v2(), SignatureAlg::Rs256)).await.0, 200);
}

#[tokio::test]
async fn tls_serves_https_trusted_through_the_ca_file() {
    let f = fixture_with(|c| c.tls = true).await;
    assert!(f.emu.info().base_url().starts_with("https://127.0.0.1:"));
    let ca_path = f.emu.info().ca_file().unwrap().to_path_buf();
    let ca = std::fs::read(&ca_path).unwrap();
    assert!(String::from_utf8_lossy(&ca).starts_with("-----BEGIN CERTIFICATE-----"));
    let http = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .timeout(std::time::Duration::from_secs(20))
        .no_proxy()
        .build()
        .unwrap();
    let scope = format!("{API}/.default");
    let a = f.assertion(&f.v2());
    let form = client_credentials_form(APP_ID, &scope, &a);
    let r = http.post(f.v2()).form(&form).send().await.unwrap();
    let first = issued_to(r, APP_ID).await;
    // "localhost" is in the certificate too, and the audience follows the Host used.
    let port = f.emu.info().base_url().rsplit(':').next().unwrap().to_string();
    let url = format!("https://localhost:{port}/{TENANT}/oauth2/v2.0/token");
    let a = f.assertion(&url);
    let form = [form[0], form[1], form[2], form[3], ("client_assertion", a.as_str())];
    let r = http.post(&url).form(&form).send().await.unwrap();
    assert_eq!(issued_to(r, APP_ID).await["aud"], first["aud"], "the same API's token by either name");
    // Without the CA the server is not trusted.
    let plain = reqwest::Client::builder().timeout(std::time::Duration::from_secs(20)).no_proxy().build().unwrap();
    assert!(plain.get(f.emu.info().jwks_uri()).send().await.is_err());
    let emu = f.emu;
    emu.shutdown().await;
    assert!(!ca_path.exists(), "the temporary CA file is removed at shutdown");
}

#[test]
fn blocking_emulator_serves_sync_callers() {
    let dir = TempDir::new("emu-test");
    let cred = credential("blocking");
    let manifest = dir.path("app.json");
    write_manifest(&manifest, vec![valid_entry(&cred.cert)]);
    let mut cfg = keycred::emulator::EmulatorConfig::new(vec![manifest]);
    cfg.log = false;
    let emu = keycred::emulator::start_blocking(cfg).unwrap();
    let url = emu.info().token_endpoint(keycred::emulator::EndpointVersion::V2);
    let a = assertion_for(&cred, &url, SignatureAlg::Rs256);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (s, b) = rt.block_on(post(&url, &client_credentials_form(APP_ID, "https://graph.microsoft.com/.default", &a)));
    assert_eq!(s, 200, "{b}");
    emu.shutdown();
}

#[test]
fn config_refuses_remote_listen_and_bad_tenant() {
    let dir = TempDir::new("emu-test");
    let manifest = dir.path("app.json");
    write_manifest(&manifest, vec![]);
    let mut cfg = keycred::emulator::EmulatorConfig::new(vec![manifest.clone()]);
    cfg.listen = "0.0.0.0:0".parse().unwrap();
    let e = keycred::emulator::start_blocking(cfg).err().unwrap();
    assert_eq!(e.exit_code(), 2);
    assert!(e.hint().unwrap().contains("the remote-listening permission"), "{e:?}");
    let mut cfg = keycred::emulator::EmulatorConfig::new(vec![manifest]);
    cfg.tenant = "contoso".into();
    assert_eq!(keycred::emulator::start_blocking(cfg).err().unwrap().exit_code(), 2);
}

/// `keycred -o json emulate ARGS --manifest MANIFEST`, and the ready line it printed.
fn spawn_emulate(args: &[&str], manifest: &std::path::Path, stderr: Stdio) -> (std::process::Child, String) {
    let mut child = keycred_bare()
        .args(["-o", "json", "emulate"])
        .args(args)
        .arg("--manifest")
        .arg(manifest)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    (child, line)
}

#[test]
fn cli_prints_json_then_serves_and_logs_without_secrets() {
    let dir = TempDir::new("emu-test");
    let cred = credential("cli");
    let manifest = dir.path("app.json");
    write_manifest(&manifest, vec![valid_entry(&cred.cert)]);
    let grant = format!("{API}=Data.Read");
    let (child, line) = spawn_emulate(&["--tenant", TENANT, "--grant", &grant], &manifest, Stdio::piped());
    let info: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(info["tenant"], TENANT);
    assert!(info["caFile"].is_null());
    let url = info["tokenEndpointV2"].as_str().unwrap().to_string();
    assert_eq!(url, format!("{}/{TENANT}/oauth2/v2.0/token", info["baseUrl"].as_str().unwrap()));
    let a = assertion_for(&cred, &url, SignatureAlg::Rs256);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let scope = format!("{API}/.default");
    let (s, b) = rt.block_on(post(&url, &client_credentials_form(APP_ID, &scope, &a)));
    assert_eq!(s, 200);
    let token = b["access_token"].as_str().unwrap().to_string();
    assert_eq!(dangerous::decode(&token).unwrap().roles(), vec!["Data.Read"]);
    // SIGTERM (what CI runners send) stops it cleanly with exit 0.
    // SAFETY: kill(2) on our own child's pid, which has not been waited for yet.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) }, 0);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains(&format!("POST /{TENANT}/oauth2/v2.0/token client_id=\"{APP_ID}\" -> 200")), "{log}");
    assert!(!log.contains(&a) && !log.contains(&token), "no assertion or token in the log");
}

#[test]
fn a_stop_signal_right_after_the_ready_line_exits_cleanly() {
    let dir = TempDir::new("emu-test");
    let manifest = dir.path("app.json");
    write_manifest(&manifest, vec![]);
    // A script stops the emulator as soon as it has announced itself: the handlers must already
    // be in place, or the default action kills it (no exit code). Rounds make a gap show.
    for (round, signal) in [libc::SIGTERM, libc::SIGINT].into_iter().cycle().take(20).enumerate() {
        let (mut child, line) = spawn_emulate(&[], &manifest, Stdio::null());
        assert!(line.contains("tokenEndpointV2"), "{line}");
        // SAFETY: kill(2) on our own child's pid, which has not been waited for yet.
        assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, signal) }, 0);
        assert_eq!(child.wait().unwrap().code(), Some(0), "round {round}: signal {signal}");
    }
}

#[test]
fn cli_refuses_non_loopback_without_allow_remote() {
    let dir = TempDir::new("emu-test");
    let manifest = dir.path("app.json");
    write_manifest(&manifest, vec![]);
    let out = keycred_bare().args(["emulate", "--listen", "0.0.0.0:0", "--manifest"]).arg(&manifest).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--allow-remote"));
}
