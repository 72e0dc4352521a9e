//! The emulator as a tenant: admin consent deciding roles, the sign-in and consent
//! pages and their redirects, authorization code (PKCE, reuse, expiry, redirect checks),
//! refresh tokens, on-behalf-of, users' claims, and the details clients and validators look at
//! (headers, times, correlation ids, tenant names, `/common`, the assertion `aud` never taken
//! from the `Host` header). Also manifests that are not regular files, and `--apps-dir`. Its
//! tenant fixture and request helpers serve the other tests of the user flows too.

use crate::emulator_support::*;

use keycred::emulator::{start, EmulatorConfig, EmulatorHandle, EndpointVersion};
use keycred::secret::SecretString;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::PathBuf;

pub(crate) const SECRET: &str = "tenant-test-secret-value";
pub(crate) const REPLY: &str = "http://localhost/callback";
/// The web API in the middle of the on-behalf-of flow (the test app itself) exposes this.
pub(crate) const MID_URI: &str = "api://keycred-mid";
pub(crate) const MID_SCOPE_ID: &str = "7b2c6d1e-3f4a-4b5c-8d6e-9f0a1b2c3d4e";
/// A second app: the client of the web API.
pub(crate) const CLIENT2: &str = "2e4f6a8c-1b3d-4e5f-8a7b-9c0d1e2f3a4b";
pub(crate) const GRAPH_USER_READ: &str = "e1fe6dd8-ba31-4d61-89e7-88639da4683d";
pub(crate) const O365_ACTIVITY_FEED: &str = "594c1fb6-4f81-4475-ae41-0c394909246c";

pub(crate) struct Tenant {
    pub(crate) dir: TempDir,
    pub(crate) emu: EmulatorHandle,
    pub(crate) cred: keycred::cert::LoadedCredential,
    pub(crate) main: PathBuf,
}

/// The test app: a web API (`api://keycred-mid`, scope `access_as_user`) that also signs users
/// in, needs Graph `User.Read` (delegated) and Office 365 `ActivityFeed.Read` (application).
/// `CLIENT2` calls it. Both accept the shared secret.
pub(crate) async fn tenant_with(tweak: impl FnOnce(&mut EmulatorConfig)) -> Tenant {
    let dir = TempDir::new("emu-tenant");
    let cred = credential("tenant test app");
    let main = dir.path("app.json");
    let m = json!({
        "id": OBJECT_ID, "appId": APP_ID, "displayName": "Contoso Audit Reader",
        "identifierUris": [MID_URI],
        "api": {"requestedAccessTokenVersion": null, "oauth2PermissionScopes": [
            {"id": MID_SCOPE_ID, "value": "access_as_user", "type": "User", "isEnabled": true}]},
        "web": {"redirectUris": [REPLY, "http://localhost/other"]},
        "requiredResourceAccess": [
            {"resourceAppId": "00000003-0000-0000-c000-000000000000", "resourceAccess": [{"id": GRAPH_USER_READ, "type": "Scope"}]},
            {"resourceAppId": "c5393580-f805-4401-95e8-94b7a6ef2fc2", "resourceAccess": [{"id": O365_ACTIVITY_FEED, "type": "Role"}]}
        ],
        "keyCredentials": [valid_entry(&cred.cert)],
    });
    std::fs::write(&main, serde_json::to_string_pretty(&m).unwrap()).unwrap();
    let client2 = dir.path("client2.json");
    let c = json!({
        "appId": CLIENT2, "displayName": "Contoso Portal",
        "web": {"redirectUris": [REPLY]},
        "requiredResourceAccess": [{"resourceAppId": APP_ID, "resourceAccess": [{"id": MID_SCOPE_ID, "type": "Scope"}]}],
        "keyCredentials": [],
    });
    std::fs::write(&client2, serde_json::to_string_pretty(&c).unwrap()).unwrap();
    let mut cfg = emulator_config(vec![main.clone(), client2], vec![]);
    cfg.secret = Some(SecretString::new(SECRET));
    cfg.auto_consent = true;
    tweak(&mut cfg);
    let emu = start(cfg).await.unwrap();
    Tenant { dir, emu, cred, main }
}

/// GETs `url` and returns the status, the redirect's query (or fragment) pairs and the body.
pub(crate) async fn get(url: &str) -> (u16, HashMap<String, String>, String) {
    let r = no_redirects().get(url).send().await.unwrap();
    let status = r.status().as_u16();
    let pairs = r
        .headers()
        .get("location")
        .map(|l| url::Url::parse(l.to_str().unwrap()).unwrap())
        .map(|u| {
            let mut p: HashMap<String, String> = u.query_pairs().into_owned().collect();
            if let Some(f) = u.fragment() {
                p.extend(url::form_urlencoded::parse(f.as_bytes()).into_owned());
            }
            p.insert("_location".into(), u.as_str().to_string());
            p
        })
        .unwrap_or_default();
    (status, pairs, r.text().await.unwrap())
}

pub(crate) fn q(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

pub(crate) fn authorize_v2(emu: &EmulatorHandle, client: &str, scope: &str, extra: &str) -> String {
    format!(
        "{}?client_id={client}&response_type=code&redirect_uri={}&scope={}&state=st4te{extra}",
        emu.info().authorize_endpoint(EndpointVersion::V2),
        q(REPLY),
        q(scope)
    )
}

/// A PKCE verifier and its S256 challenge, the challenge computed by openssl.
fn pkce() -> (String, String) {
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".to_string();
    let dir = TempDir::new("pkce");
    let f = dir.path("v.txt");
    std::fs::write(&f, &verifier).unwrap();
    let out = openssl(&["dgst", "-sha256", "-binary", f.to_str().unwrap()]);
    use base64::Engine;
    (verifier, base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(out.stdout))
}

pub(crate) async fn code_for(emu: &EmulatorHandle, client: &str, scope: &str, extra: &str) -> String {
    let (s, p, body) = get(&authorize_v2(emu, client, scope, extra)).await;
    assert_eq!(s, 302, "{body}");
    assert_eq!(p.get("state").map(String::as_str), Some("st4te"), "{p:?}");
    assert!(uuid::Uuid::parse_str(&p["session_state"]).is_ok(), "{p:?}");
    p.get("code").cloned().unwrap_or_else(|| panic!("no code in {p:?}"))
}

pub(crate) async fn redeem(emu: &EmulatorHandle, client: &str, code: &str, extra: &[(&str, &str)]) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("client_id", client),
        ("code", code),
        ("redirect_uri", REPLY),
        ("client_secret", SECRET),
    ];
    form.extend_from_slice(extra);
    post(&emu.info().token_endpoint(EndpointVersion::V2), &form).await
}

/// The v1 authorization code flow of `client` for `resource` (`extra` appended to the authorize
/// URL): the code read from the redirect and redeemed at the v1 token endpoint with `resource=`.
pub(crate) async fn v1_code_flow(emu: &EmulatorHandle, client: &str, resource: &str, extra: &str) -> (u16, Value) {
    let url = format!(
        "{}?response_type=code&resource={}&client_id={client}&redirect_uri={}{extra}",
        emu.info().authorize_endpoint(EndpointVersion::V1),
        q(resource),
        q(REPLY)
    );
    let (s, p, body) = get(&url).await;
    assert_eq!(s, 302, "{body}");
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", client),
        ("code", p["code"].as_str()),
        ("redirect_uri", REPLY),
        ("resource", resource),
        ("client_secret", SECRET),
    ];
    post(&emu.info().token_endpoint(EndpointVersion::V1), &form).await
}

pub(crate) fn claims_of(token: &Value) -> serde_json::Map<String, Value> {
    keycred::jwt::dangerous::decode(token.as_str().unwrap()).unwrap().claims
}

#[tokio::test]
async fn authorization_code_gives_user_tokens_and_single_use_codes() {
    let t = tenant_with(|c| c.consented = vec![APP_ID.into()]).await;
    let (verifier, challenge) = pkce();
    let extra = format!("&nonce=n0nce&code_challenge={challenge}&code_challenge_method=S256");
    let code = code_for(&t.emu, APP_ID, "openid profile offline_access User.Read", &extra).await;
    let (s, b) = redeem(&t.emu, APP_ID, &code, &[("code_verifier", &verifier)]).await;
    assert_eq!(s, 200, "{b}");
    assert!(b["expires_in"].is_u64(), "v2 numbers: {b}");
    let life = b["expires_in"].as_u64().unwrap();
    assert!((3600..=5400).contains(&life), "user tokens live 60-90 minutes: {life}");
    // Graph asked by a bare scope name: a v1 token whose aud is Graph's app id.
    let c = claims_of(&b["access_token"]);
    let user = t.emu.info().users()[0].clone();
    assert_eq!(c["aud"], "00000003-0000-0000-c000-000000000000");
    assert_eq!(c["ver"], "1.0");
    assert_eq!(c["iss"], format!("https://sts.windows.net/{TENANT}/"));
    assert_eq!(c["appid"], APP_ID);
    assert_eq!(c["oid"], user.oid.as_str());
    assert_eq!(c["upn"], user.upn.as_str());
    assert_eq!(c["name"], user.name.as_str());
    let scp: Vec<&str> = c["scp"].as_str().unwrap().split(' ').collect();
    assert!(scp.contains(&"User.Read") && scp.contains(&"openid"), "{scp:?}");
    assert_ne!(c["sub"], c["oid"], "sub is pairwise");
    // The ID token: for the client, with the nonce and the tenant id (what the Office 365 setup reads).
    let id = claims_of(&b["id_token"]);
    assert_eq!(id["aud"], APP_ID);
    assert_eq!(id["tid"], TENANT);
    assert_eq!(id["nonce"], "n0nce");
    assert_eq!(id["preferred_username"], user.upn.as_str());
    assert_eq!(id["iss"], format!("https://login.microsoftonline.com/{TENANT}/v2.0"));
    assert!(b["refresh_token"].is_string(), "offline_access asked: {b}");

    // Single use: the second redemption is 54005.
    let again = redeem(&t.emu, APP_ID, &code, &[("code_verifier", &verifier)]).await;
    let d = assert_entra_error(&again, 400, "invalid_grant", 54005);
    assert!(d.contains("already redeemed"), "{d}");
    // PKCE: a wrong verifier is 501481; none at all too.
    let code =
        code_for(&t.emu, APP_ID, "User.Read", &format!("&code_challenge={challenge}&code_challenge_method=S256")).await;
    assert_entra_error(
        &redeem(&t.emu, APP_ID, &code, &[("code_verifier", "wrong-verifier-wrong-verifier-wrong-verif")]).await,
        400,
        "invalid_grant",
        501481,
    );
    let code =
        code_for(&t.emu, APP_ID, "User.Read", &format!("&code_challenge={challenge}&code_challenge_method=S256")).await;
    assert_entra_error(&redeem(&t.emu, APP_ID, &code, &[]).await, 400, "invalid_grant", 501481);
    // The redirect URI of the exchange must be the authorize request's, even if registered.
    let code = code_for(&t.emu, APP_ID, "User.Read", "").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", APP_ID),
        ("code", code.as_str()),
        ("redirect_uri", "http://localhost/other"),
        ("client_secret", SECRET),
    ];
    let d = assert_entra_error(
        &post(&t.emu.info().token_endpoint(EndpointVersion::V2), &form).await,
        401,
        "invalid_client",
        500112,
    );
    assert!(d.contains("'http://localhost/other'") && d.contains(&format!("'{REPLY}'")), "{d}");
    // A code the emulator never issued, or issued to another app: 70000.
    assert_entra_error(&redeem(&t.emu, APP_ID, "1.Anot-a-code", &[]).await, 400, "invalid_grant", 70000);
    let code = code_for(&t.emu, APP_ID, "User.Read", "").await;
    assert_entra_error(&redeem(&t.emu, CLIENT2, &code, &[]).await, 400, "invalid_grant", 70000);

    // Refresh: a new access token and a new refresh token; the old one keeps working.
    let rt = b["refresh_token"].as_str().unwrap().to_string();
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", APP_ID),
        ("refresh_token", rt.as_str()),
        ("client_secret", SECRET),
    ];
    let (s, r1) = post(&t.emu.info().token_endpoint(EndpointVersion::V2), &form).await;
    assert_eq!(s, 200, "{r1}");
    assert_eq!(claims_of(&r1["access_token"])["oid"], user.oid.as_str());
    assert!(r1["refresh_token"].is_string() && r1["refresh_token"] != b["refresh_token"]);
    let (s, _) = post(&t.emu.info().token_endpoint(EndpointVersion::V2), &form).await;
    assert_eq!(s, 200, "the old refresh token stays valid");
    let bad = [
        ("grant_type", "refresh_token"),
        ("client_id", APP_ID),
        ("refresh_token", "1.ARnope"),
        ("client_secret", SECRET),
    ];
    assert_entra_error(
        &post(&t.emu.info().token_endpoint(EndpointVersion::V2), &bad).await,
        400,
        "invalid_grant",
        9002313,
    );
}

#[tokio::test]
async fn codes_expire() {
    let t = tenant_with(|c| c.code_lifetime = 0).await;
    let code = code_for(&t.emu, APP_ID, "openid", "").await;
    let d = assert_entra_error(&redeem(&t.emu, APP_ID, &code, &[]).await, 400, "invalid_grant", 70008);
    assert!(d.contains("expired"), "{d}");
}

/// The Office 365 Management API setup: admin consent through the v1 authorize URL at
/// `/common`, the code redeemed at `/common` with `resource=`, the tenant id read from the
/// answer, then client credentials whose token carries the role only after the consent.
#[tokio::test]
async fn office_365_management_setup_runs_end_to_end() {
    let t = tenant_with(|_| {}).await;
    let base = t.emu.info().base_url();
    let v1_cc = |assertion: String| {
        let url = t.emu.info().token_endpoint(EndpointVersion::V1);
        async move {
            post(
                &url,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", APP_ID),
                    ("resource", "https://manage.office.com"),
                    ("client_assertion_type", JWT_BEARER),
                    ("client_assertion", &assertion),
                ],
            )
            .await
        }
    };
    let assertion = || {
        assertion_for(&t.cred, &t.emu.info().token_endpoint(EndpointVersion::V1), keycred::cert::SignatureAlg::Rs256)
    };
    let (s, b) = v1_cc(assertion()).await;
    assert_eq!(s, 200, "{b}");
    assert!(token_claims(&b).get("roles").is_none(), "no roles before admin consent: {b}");

    let (p, b) = office_code_exchange(base).await;
    assert_eq!(p.get("admin_consent").map(String::as_str), Some("True"), "{p:?}");
    for k in ["expires_in", "ext_expires_in", "expires_on", "not_before"] {
        assert!(b[k].is_string(), "v1 answers carry {k} as a string: {b}");
    }
    assert_eq!(b["resource"], "https://manage.office.com");
    assert!(b["refresh_token"].is_string());
    assert_eq!(claims_of(&b["id_token"])["tid"], TENANT, "the tenant id, read from the id_token");
    let at = claims_of(&b["access_token"]);
    assert_eq!(at["aud"], "https://manage.office.com");
    assert_eq!(at["ver"], "1.0");
    assert_eq!(at["upn"], t.emu.info().users()[0].upn.as_str());

    let (s, b) = v1_cc(assertion()).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(token_claims(&b)["roles"], json!(["ActivityFeed.Read"]), "the consented application permission");
}

/// Signs in at `/common` for the Office 365 Management API with admin consent and exchanges the
/// code, with the secret, at the v1 token endpoint: the redirect's parameters and the answer
/// (which must be a 200).
async fn office_code_exchange(base: &str) -> (HashMap<String, String>, Value) {
    let url = format!(
        "{base}/common/oauth2/authorize?response_type=code&resource={}&client_id={APP_ID}&redirect_uri={}&prompt=admin_consent",
        q("https://manage.office.com"),
        q(REPLY)
    );
    let (s, p, body) = get(&url).await;
    assert_eq!(s, 302, "{body}");
    let code = p["code"].clone();
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", APP_ID),
        ("code", code.as_str()),
        ("redirect_uri", REPLY),
        ("resource", "https://manage.office.com"),
        ("client_secret", SECRET),
    ];
    let (s, b) = post(&format!("{base}/common/oauth2/token"), &form).await;
    assert_eq!(s, 200, "{b}");
    (p, b)
}

#[tokio::test]
async fn a_code_for_a_resource_with_only_application_permissions_and_its_refreshes_agree() {
    // The Office 365 Management API setup: the app's permissions on manage.office.com are all
    // application roles. The code exchange issues a user token with no delegated scope: no
    // `scp` claim at all (never an empty one), and the refresh, v1 or v2, does the same.
    let t = tenant_with(|_| {}).await;
    let base = t.emu.info().base_url();
    let (_, b) = office_code_exchange(base).await;
    let at = claims_of(&b["access_token"]);
    assert!(at.get("scp").is_none(), "no delegated permission, no scp claim: {at:?}");
    assert_eq!(at["upn"], t.emu.info().users()[0].upn.as_str(), "a user token still");
    let rt = b["refresh_token"].as_str().unwrap().to_string();
    let v1 = post(
        &t.emu.info().token_endpoint(EndpointVersion::V1),
        &[
            ("grant_type", "refresh_token"),
            ("client_id", APP_ID),
            ("client_secret", SECRET),
            ("refresh_token", rt.as_str()),
            ("resource", "https://manage.office.com"),
        ],
    )
    .await;
    assert_eq!(v1.0, 200, "v1 refresh behaves like the code exchange: {}", v1.1);
    let c = claims_of(&v1.1["access_token"]);
    assert!(c.get("scp").is_none(), "{c:?}");
    assert_eq!(c["aud"], "https://manage.office.com");
    let v2 = post(
        &t.emu.info().token_endpoint(EndpointVersion::V2),
        &[
            ("grant_type", "refresh_token"),
            ("client_id", APP_ID),
            ("client_secret", SECRET),
            ("refresh_token", rt.as_str()),
        ],
    )
    .await;
    assert_eq!(v2.0, 200, "{}", v2.1);
    assert!(claims_of(&v2.1["access_token"]).get("scp").is_none());
    // A resource the code was not for, with nothing consented on it, is still 65001.
    let other = post(
        &t.emu.info().token_endpoint(EndpointVersion::V1),
        &[
            ("grant_type", "refresh_token"),
            ("client_id", APP_ID),
            ("client_secret", SECRET),
            ("refresh_token", rt.as_str()),
            ("resource", "https://api.security.microsoft.com"),
        ],
    )
    .await;
    assert_entra_error(&other, 400, "invalid_grant", 65001);
}

#[tokio::test]
async fn consented_flag_and_admin_consent_endpoint_grant_the_roles() {
    let t = tenant_with(|c| c.consented = vec![APP_ID.into()]).await;
    let a =
        assertion_for(&t.cred, &t.emu.info().token_endpoint(EndpointVersion::V2), keycred::cert::SignatureAlg::Rs256);
    let (s, b) = post(
        &t.emu.info().token_endpoint(EndpointVersion::V2),
        &client_credentials_form(APP_ID, "https://manage.office.com/.default", &a),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let c = token_claims(&b);
    assert_eq!(c["roles"], json!(["ActivityFeed.Read"]));
    assert_eq!(c["aud"], "https://manage.office.com", "v1 token from the v2 endpoint");
    assert_eq!(c["ver"], "1.0");

    // The v2 admin-consent endpoint answers as Entra does, and refuses /common.
    let url = format!(
        "{}?client_id={CLIENT2}&redirect_uri={}&scope={}&state=xyz",
        t.emu.info().admin_consent_endpoint(),
        q(REPLY),
        q("api://keycred-mid/.default")
    );
    let (s, p, _) = get(&url).await;
    assert_eq!(s, 302);
    assert_eq!((p["admin_consent"].as_str(), p["tenant"].as_str(), p["state"].as_str()), ("True", TENANT, "xyz"));
    assert_eq!(p["scope"], "api://keycred-mid/.default");
    let common = url.replace(&format!("/{TENANT}/"), "/common/");
    let (s, p, body) = get(&common).await;
    assert_eq!((s, p.len()), (400, 0), "shown, not redirected: {body}");
}

#[tokio::test]
async fn the_older_admin_consent_endpoint_works_at_common() {
    // The consent document's own example: `/common/adminconsent?client_id=...`. The administrator
    // signs in and the tenant is theirs: the redirect names the emulator's tenant id.
    let t = tenant_with(|_| {}).await;
    let v2 = t.emu.info().admin_consent_endpoint();
    let legacy = v2.replace(&format!("/{TENANT}/v2.0/adminconsent"), "/common/adminconsent");
    assert!(legacy.ends_with("/common/adminconsent"), "{legacy}");
    let (s, p, body) = get(&format!("{legacy}?client_id={APP_ID}&redirect_uri={}&state=abc", q(REPLY))).await;
    assert_eq!(s, 302, "{body}");
    assert_eq!(p["tenant"], TENANT);
    assert_eq!(p["admin_consent"], "True");
    assert_eq!(p["state"], "abc");
    assert!(p["_location"].starts_with(REPLY), "{p:?}");
    // Consent happened: the app's application permission is in its tokens now.
    let a =
        assertion_for(&t.cred, &t.emu.info().token_endpoint(EndpointVersion::V2), keycred::cert::SignatureAlg::Rs256);
    let (s, b) = post(
        &t.emu.info().token_endpoint(EndpointVersion::V2),
        &client_credentials_form(APP_ID, "https://manage.office.com/.default", &a),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(token_claims(&b)["roles"], json!(["ActivityFeed.Read"]));
    // The v2 endpoint at common is still refused, on the emulator's page.
    let (s, p, body) = get(&format!(
        "{}?client_id={APP_ID}&redirect_uri={}&scope={}",
        v2.replace(&format!("/{TENANT}/"), "/common/"),
        q(REPLY),
        q("https://manage.office.com/.default")
    ))
    .await;
    assert_eq!((s, p.len()), (400, 0), "shown, not redirected: {body}");
}

#[tokio::test]
async fn grants_the_emulator_does_not_serve_get_70003_naming_those_it_serves() {
    let t = tenant_with(|_| {}).await;
    let got = post(
        &t.emu.info().token_endpoint(EndpointVersion::V2),
        &[
            ("grant_type", "password"),
            ("client_id", APP_ID),
            ("client_secret", SECRET),
            ("scope", "https://graph.microsoft.com/.default"),
            ("username", "someone@example.com"),
            ("password", "x"),
        ],
    )
    .await;
    let d = assert_entra_error(&got, 400, "unsupported_grant_type", 70003);
    // Entra's own text first, then the emulator's note, named as the emulator's.
    assert!(d.starts_with("AADSTS70003: The app requested an unsupported grant type 'password'. "), "{d}");
    let first = d.lines().next().unwrap();
    assert!(first.contains("keycred's emulator serves only"), "{first}");
    for g in
        ["client_credentials", "authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:jwt-bearer"]
    {
        assert!(first.contains(g), "{g} named: {first}");
    }
    assert!(first.contains("on-behalf-of"), "{first}");
}

#[tokio::test]
async fn untrustworthy_reply_urls_are_shown_on_the_emulators_page_and_cancel_redirects() {
    let t = tenant_with(|c| c.auto_consent = false).await;
    let base = t.emu.info().authorize_endpoint(EndpointVersion::V2);
    let cases = [
        (format!("{base}?response_type=code&scope=openid&redirect_uri={}", q(REPLY)), "AADSTS900144"),
        (
            format!(
                "{base}?client_id=11111111-2222-4333-8444-555555555555&response_type=code&scope=openid&redirect_uri={}",
                q(REPLY)
            ),
            "AADSTS700016",
        ),
        (
            format!(
                "{base}?client_id={APP_ID}&response_type=code&scope=openid&redirect_uri={}",
                q("https://evil.example/cb")
            ),
            "AADSTS50011",
        ),
    ];
    for (url, code) in cases {
        let (s, p, body) = get(&url).await;
        assert_eq!(s, 400, "{url}: {body}");
        assert!(p.is_empty(), "never redirected: {p:?}");
        assert!(body.contains(code), "{code} on the page: {body}");
    }
    // The consent page: a real page, no script, nothing from elsewhere, Accept and Cancel.
    let url = authorize_v2(&t.emu, APP_ID, "openid User.Read", "");
    let (s, _, html) = get(&url).await;
    assert_eq!(s, 200);
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert!(html.contains("Contoso Audit Reader") && html.contains("User.Read"), "{html}");
    assert!(html.contains("value=\"accept\"") && html.contains("value=\"cancel\""), "{html}");
    assert!(!html.to_ascii_lowercase().contains("<script"), "no script");
    assert!(!html.contains("src=") && !html.contains("href="), "nothing fetched from elsewhere");
    assert!(html.contains(&t.emu.info().users()[0].upn), "the user to sign in as");
    // Cancel: access_denied with 65004 and the state, to the reply URL.
    let token = form_token(&html);
    let form = [
        ("client_id", APP_ID),
        ("response_type", "code"),
        ("redirect_uri", REPLY),
        ("scope", "openid User.Read"),
        ("state", "st4te"),
        ("form_token", &token),
        ("decision", "cancel"),
    ];
    let r = no_redirects().post(&url).form(&form).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 302);
    let loc = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    assert!(loc.as_str().starts_with(REPLY), "{loc}");
    let p: HashMap<String, String> = loc.query_pairs().into_owned().collect();
    assert_eq!(p["error"], "access_denied");
    assert_eq!(p["error_subcode"], "cancel");
    assert!(p["error_description"].starts_with("AADSTS65004: User declined to consent"), "{p:?}");
    assert_eq!(p["state"], "st4te");
    // Accept: the code.
    let mut accept = form.to_vec();
    accept.pop();
    accept.push(("decision", "accept"));
    let r = no_redirects().post(&url).form(&accept).send().await.unwrap();
    let loc = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    assert!(loc.query_pairs().any(|(k, _)| k == "code"), "{loc}");
    // A scope the resource does not expose: redirected error 650053.
    let (s, p, _) = get(&authorize_v2(&t.emu, APP_ID, "User.Fly", "")).await;
    assert_eq!(s, 302);
    assert!(p["error_description"].starts_with("AADSTS650053:"), "{p:?}");
}

#[tokio::test]
async fn cancel_on_the_v2_admin_consent_endpoint_redirects_65004_with_admin_consent_and_without_the_tenant() {
    let t = tenant_with(|c| c.auto_consent = false).await;
    let url = t.emu.info().admin_consent_endpoint();
    let scope = "https://manage.office.com/.default";
    let (s, _, html) =
        get(&format!("{url}?client_id={APP_ID}&redirect_uri={}&scope={}&state=s1", q(REPLY), q(scope))).await;
    assert_eq!(s, 200, "the consent page: {html}");
    let token = form_token(&html);
    let form = [
        ("client_id", APP_ID),
        ("redirect_uri", REPLY),
        ("scope", scope),
        ("state", "s1"),
        ("form_token", &token),
        ("decision", "cancel"),
    ];
    let r = no_redirects().post(&url).form(&form).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 302);
    let loc = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    assert!(loc.as_str().starts_with(REPLY), "{loc}");
    let p: HashMap<String, String> = loc.query_pairs().into_owned().collect();
    assert_eq!(p["error"], "access_denied");
    assert!(p["error_description"].starts_with("AADSTS65004: User declined to consent to access the app."), "{p:?}");
    assert_eq!(p["state"], "s1");
    assert!(!p.contains_key("tenant"), "no tenant on refusal: {p:?}");
    // "admin_consent: Will be set to True to indicate that this response occurred on an admin
    // consent flow" (https://learn.microsoft.com/entra/identity-platform/v2-admin-consent, error
    // response); a real Cancel has it too (MicrosoftDocs/azure-docs issue 114009).
    assert_eq!(p.get("admin_consent").map(String::as_str), Some("True"), "{p:?}");
}

/// A user token for the web API, as its client (`CLIENT2`) gets it.
pub(crate) async fn user_token_for_mid(t: &Tenant) -> String {
    let code = code_for(&t.emu, CLIENT2, &format!("{MID_URI}/access_as_user openid"), "").await;
    let (s, b) = redeem(&t.emu, CLIENT2, &code, &[]).await;
    assert_eq!(s, 200, "{b}");
    let c = claims_of(&b["access_token"]);
    assert_eq!(c["aud"], MID_URI, "v1 resource: aud as requested");
    assert_eq!(c["scp"], "access_as_user");
    b["access_token"].as_str().unwrap().to_string()
}

pub(crate) async fn obo(t: &Tenant, client: &str, assertion: &str, scope: &str) -> (u16, Value) {
    post(
        &t.emu.info().token_endpoint(EndpointVersion::V2),
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("client_id", client),
            ("client_secret", SECRET),
            ("assertion", assertion),
            ("scope", scope),
            ("requested_token_use", "on_behalf_of"),
        ],
    )
    .await
}

#[tokio::test]
async fn on_behalf_of_exchanges_user_tokens_only_for_the_right_audience() {
    let t = tenant_with(|c| c.consented = vec![APP_ID.into()]).await;
    let incoming = user_token_for_mid(&t).await;
    let user = t.emu.info().users()[0].clone();
    // The web API exchanges it for Graph (consented by the administrator).
    let (s, b) = obo(&t, APP_ID, &incoming, "https://graph.microsoft.com/User.Read").await;
    assert_eq!(s, 200, "{b}");
    let c = claims_of(&b["access_token"]);
    assert_eq!(c["aud"], "https://graph.microsoft.com");
    assert_eq!(c["appid"], APP_ID, "the middle tier is the client now");
    assert_eq!(c["scp"], "User.Read");
    assert_eq!(c["oid"], user.oid.as_str());
    assert_eq!(c["upn"], user.upn.as_str());
    assert!(b.get("id_token").is_none());
    // `.default` works too.
    let (s, _) = obo(&t, APP_ID, &incoming, "https://graph.microsoft.com/.default").await;
    assert_eq!(s, 200);

    // Another app presenting it: 500131.
    let d = assert_entra_error(
        &obo(&t, CLIENT2, &incoming, "https://graph.microsoft.com/.default").await,
        400,
        "invalid_grant",
        500131,
    );
    assert!(d.contains(&format!("'{MID_URI}'")), "{d}");
    // An app-only token: 7000114.
    let cc = post(
        &t.emu.info().token_endpoint(EndpointVersion::V2),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT2),
            ("client_secret", SECRET),
            ("scope", "api://keycred-mid/.default"),
        ],
    )
    .await;
    assert_eq!(cc.0, 200, "{}", cc.1);
    let app_only = cc.1["access_token"].as_str().unwrap().to_string();
    assert_entra_error(
        &obo(&t, APP_ID, &app_only, "https://graph.microsoft.com/.default").await,
        400,
        "unauthorized_client",
        7000114,
    );
    // A downstream API without consent: 65001, suberror consent_required.
    let got = obo(&t, APP_ID, &incoming, "https://api.security.microsoft.com/.default").await;
    assert_entra_error(&got, 400, "invalid_grant", 65001);
    assert_eq!(got.1["suberror"], "consent_required");
    // Not a token of this tenant: a forged signature (a character in its middle changed, so
    // that it still decodes; the last one may only carry padding bits).
    let sig_start = incoming.rfind('.').unwrap() + 1;
    let mid = sig_start + (incoming.len() - sig_start) / 2;
    let mut forged = incoming.clone().into_bytes();
    forged[mid] = if forged[mid] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    // Entra answers a user assertion whose signature does not verify with 50013 (observed in
    // on-behalf-of calls: "Assertion failed signature validation. [Reason - The provided
    // signature value did not match the expected signature value., ...]").
    let d = assert_entra_error(
        &obo(&t, APP_ID, &forged, "https://graph.microsoft.com/.default").await,
        400,
        "invalid_grant",
        50013,
    );
    assert!(d.starts_with("AADSTS50013: Assertion failed signature validation."), "{d}");
}

#[tokio::test]
async fn on_behalf_of_refuses_an_expired_user_token_with_500133() {
    // User tokens already past their expiry (and the five minutes of skew).
    let t = tenant_with(|c| {
        c.consented = vec![APP_ID.into()];
        c.user_token_lifetime = Some(-400);
    })
    .await;
    let incoming = user_token_for_mid(&t).await;
    let d = assert_entra_error(
        &obo(&t, APP_ID, &incoming, "https://graph.microsoft.com/.default").await,
        400,
        "invalid_grant",
        500133,
    );
    assert!(d.contains("not within its valid time range"), "{d}");
}

#[tokio::test]
async fn token_answers_carry_entras_headers_times_and_correlation() {
    let t = tenant_with(|c| c.domains = vec!["contoso.example".into()]).await;
    let url = t.emu.info().token_endpoint(EndpointVersion::V2);
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", APP_ID),
        ("client_secret", SECRET),
        ("scope", "https://graph.microsoft.com/.default"),
    ];
    let corr = uuid::Uuid::new_v4().to_string();
    let r = client().post(&url).header("client-request-id", &corr).form(&form).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let h = r.headers().clone();
    assert_eq!(h["cache-control"], "no-store, no-cache");
    assert_eq!(h["pragma"], "no-cache");
    assert!(h["content-type"].to_str().unwrap().starts_with("application/json"));
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["expires_in"], 3599);
    let c = token_claims(&b);
    let (iat, nbf, exp) = (c["iat"].as_i64().unwrap(), c["nbf"].as_i64().unwrap(), c["exp"].as_i64().unwrap());
    assert_eq!(iat, nbf);
    assert_eq!(exp - iat, 3599 + 300);

    // Errors: the same headers, and the client-request-id (header or form field) as correlation_id.
    let bad = [
        ("grant_type", "client_credentials"),
        ("client_id", APP_ID),
        ("client_secret", "wrong"),
        ("scope", "https://graph.microsoft.com/.default"),
    ];
    let r = client().post(&url).header("client-request-id", &corr).form(&bad).send().await.unwrap();
    assert_eq!(r.headers()["cache-control"], "no-store, no-cache");
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["correlation_id"], corr.as_str());
    let mut with_field = bad.to_vec();
    with_field.push(("client-request-id", corr.as_str()));
    let (_, b) = post(&url, &with_field).await;
    assert_eq!(b["correlation_id"], corr.as_str());

    // A GET on a token endpoint: 400 AADSTS900561 as JSON, on both endpoints.
    for v in [EndpointVersion::V1, EndpointVersion::V2] {
        let r = client().get(t.emu.info().token_endpoint(v)).send().await.unwrap();
        let got = (r.status().as_u16(), r.json::<Value>().await.unwrap());
        assert_entra_error(&got, 400, "invalid_request", 900561);
    }

    // The tenant by its domains, and the v1 discovery document.
    for name in [t.emu.info().domains()[0].clone(), "contoso.example".to_string()] {
        assert!(name == "contoso.example" || name.ends_with(".onmicrosoft.com"), "{name}");
        let (s, b) = post(&format!("{}/{name}/oauth2/v2.0/token", t.emu.info().base_url()), &form).await;
        assert_eq!(s, 200, "{name}: {b}");
        assert_eq!(token_claims(&b)["tid"], TENANT);
    }
    let d: Value = client()
        .get(format!("{}/{TENANT}/.well-known/openid-configuration", t.emu.info().base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(d["jwks_uri"], format!("{}/common/discovery/keys", t.emu.info().base_url()));
    assert_eq!(d["scopes_supported"], json!(["openid"]));
    assert_eq!(d["issuer"], format!("https://sts.windows.net/{TENANT}/"));

    // Client credentials at /common and /organizations name no tenant: 50059.
    for t2 in ["common", "organizations"] {
        let got = post(&format!("{}/{t2}/oauth2/v2.0/token", t.emu.info().base_url()), &form).await;
        assert_entra_error(&got, 400, "invalid_request", 50059);
    }
}

#[tokio::test]
async fn assertion_audience_comes_from_the_configured_base_url_not_the_host_header() {
    let t = tenant_with(|_| {}).await;
    let url = t.emu.info().token_endpoint(EndpointVersion::V2);
    let path = url::Url::parse(&url).unwrap().path().to_string();
    let addr = url::Url::parse(&url).unwrap().socket_addrs(|| None).unwrap()[0];
    // A raw request, so that the Host header is exactly what an attacker sends.
    let send = |aud: String| {
        let a = assertion_for(&t.cred, &aud, keycred::cert::SignatureAlg::Rs256);
        let path = path.clone();
        async move {
            let body: String = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(client_credentials_form(APP_ID, "https://graph.microsoft.com/.default", &a))
                .finish();
            tokio::task::spawn_blocking(move || {
                use std::io::{Read, Write};
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
                write!(
                    s,
                    "POST {path} HTTP/1.1\r\nHost: evil.example\r\nContent-Type: application/x-www-form-urlencoded\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .unwrap();
                let mut out = String::new();
                s.read_to_string(&mut out).unwrap();
                let status: u16 = out[9..12].parse().unwrap();
                let json = out.split("\r\n\r\n").nth(1).unwrap_or_default();
                // A chunked body: the JSON object sits between the first '{' and the last '}'.
                let (a, b) = (json.find('{').unwrap(), json.rfind('}').unwrap());
                (status, serde_json::from_str::<Value>(&json[a..=b]).unwrap())
            })
            .await
            .unwrap()
        }
    };
    // Minted for evil.example and sent with that Host: refused.
    assert_entra_error(&send(format!("http://evil.example{path}")).await, 401, "invalid_client", 700023);
    // Minted for the emulator: accepted whatever the Host says.
    let (s, b) = send(url.clone()).await;
    assert_eq!(s, 200, "{b}");
}

#[cfg(unix)]
fn mkfifo(p: &std::path::Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

#[cfg(unix)]
#[tokio::test]
async fn a_manifest_replaced_by_a_fifo_does_not_stop_the_emulator() {
    let t = tenant_with(|_| {}).await;
    let client2 = t.dir.path("client2.json");
    std::fs::remove_file(&client2).unwrap();
    mkfifo(&client2);
    let url = t.emu.info().token_endpoint(EndpointVersion::V2);
    let c = reqwest::Client::builder().no_proxy().timeout(std::time::Duration::from_secs(20)).build().unwrap();
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", CLIENT2),
        ("client_secret", SECRET),
        ("scope", "https://graph.microsoft.com/.default"),
    ];
    // The app whose file became a FIFO keeps its last good version; nothing blocks.
    let r = c.post(&url).form(&form).send().await.expect("answered, not hung");
    assert_eq!(issued_to(r, CLIENT2).await["aud"], "https://graph.microsoft.com");
    let main = [
        ("grant_type", "client_credentials"),
        ("client_id", APP_ID),
        ("client_secret", SECRET),
        ("scope", "https://graph.microsoft.com/.default"),
    ];
    assert_eq!(
        issued_to(c.post(&url).form(&main).send().await.unwrap(), APP_ID).await["aud"],
        "https://graph.microsoft.com"
    );
    assert_eq!(c.get(t.emu.info().jwks_uri()).send().await.unwrap().status().as_u16(), 200);
    // At start, a FIFO is refused as input, naming it.
    let mut cfg = emulator_config(vec![t.main.clone(), client2.clone()], vec![]);
    cfg.log = false;
    let e = start(cfg).await.err().expect("a FIFO manifest is refused");
    assert!(e.to_string().contains("not a regular file"), "{e}");
}

#[tokio::test]
async fn apps_dir_sees_apps_added_and_removed_without_restart() {
    let dir = TempDir::new("emu-apps-dir");
    let apps = dir.path("apps");
    std::fs::create_dir(&apps).unwrap();
    let write = |name: &str, id: &str| {
        let m = json!({"appId": id, "displayName": name, "keyCredentials": []});
        let tmp = apps.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, m.to_string()).unwrap();
        std::fs::rename(&tmp, apps.join(format!("{name}.json"))).unwrap();
    };
    let ids: Vec<String> = (0..3).map(|i| format!("00000000-0000-4000-8000-00000000000{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        write(&format!("app{i}"), id);
    }
    let mut cfg = emulator_config(vec![], vec![]);
    cfg.apps_dir = Some(apps.clone());
    cfg.secret = Some(SecretString::new(SECRET));
    let emu = start(cfg).await.unwrap();
    assert_eq!(emu.info().apps().iter().map(|(id, _)| id.clone()).collect::<Vec<_>>(), ids);
    let token = |id: String| {
        let url = emu.info().token_endpoint(EndpointVersion::V2);
        async move {
            post(
                &url,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", &id),
                    ("client_secret", SECRET),
                    ("scope", "https://graph.microsoft.com/.default"),
                ],
            )
            .await
        }
    };
    assert_eq!(token(ids[1].clone()).await.0, 200);
    let new_id = "00000000-0000-4000-8000-000000000009".to_string();
    assert_entra_error(&token(new_id.clone()).await, 400, "unauthorized_client", 700016);
    write("app9", &new_id);
    let (s, b) = token(new_id.clone()).await;
    assert_eq!(s, 200, "an app added to the directory is served at once: {b}");
    std::fs::remove_file(apps.join("app1.json")).unwrap();
    assert_entra_error(&token(ids[1].clone()).await, 400, "unauthorized_client", 700016);
    assert_eq!(token(ids[2].clone()).await.0, 200);
}

/// `keycred emulate` with a manifest swapped for a FIFO while it runs: requests for that app and
/// for the others are answered (nothing blocks the workers), and SIGTERM still stops it cleanly.
#[cfg(unix)]
#[test]
fn emulate_with_a_fifo_manifest_answers_and_stops_on_sigterm() {
    use std::io::BufRead;
    let dir = TempDir::new("emu-fifo-cli");
    let cred = credential("fifo app");
    let a = dir.path("a.json");
    write_manifest(&a, vec![valid_entry(&cred.cert)]);
    let b = dir.path("b.json");
    std::fs::write(&b, json!({"appId": CLIENT2, "keyCredentials": []}).to_string()).unwrap();
    let mut child = keycred_bare()
        .args(["-o", "json", "emulate", "--tenant", TENANT, "--secret-env", "FIFO_TEST_SECRET"])
        .arg("--manifest")
        .arg(&a)
        .arg("--manifest")
        .arg(&b)
        .env("FIFO_TEST_SECRET", SECRET)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let info: Value = serde_json::from_str(&line).unwrap();
    let v2 = info["tokenEndpointV2"].as_str().unwrap().to_string();
    std::fs::remove_file(&b).unwrap();
    mkfifo(&b);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let c = reqwest::Client::builder().no_proxy().timeout(std::time::Duration::from_secs(20)).build().unwrap();
        for id in [CLIENT2, APP_ID, CLIENT2] {
            let form = [
                ("grant_type", "client_credentials"),
                ("client_id", id),
                ("client_secret", SECRET),
                ("scope", "https://graph.microsoft.com/.default"),
            ];
            let r = c.post(&v2).form(&form).send().await.expect("answered, not hung");
            assert_eq!(issued_to(r, id).await["aud"], "https://graph.microsoft.com", "{id}");
        }
    });
    // SAFETY: kill(2) on our own child's pid, which has not been waited for yet.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) }, 0);
    assert_eq!(child.wait().unwrap().code(), Some(0), "SIGTERM stops it cleanly");
}

/// Microsoft Threat Protection (8ee8fdad-...) is `https://api.security.microsoft.com` only: the
/// two other names the threat-protection document requests tokens for,
/// `https://api.securitycenter.windows.com` and `.../windowsatpservice`, belong to
/// WindowsDefenderATP (fc780465-...), as Microsoft's documents say and `templates/resources.json`
/// has it. An app consented only to Threat Protection's roles gets tokens without `roles` for
/// those two; consent to WindowsDefenderATP's roles puts them there.
#[tokio::test]
async fn threat_protection_roles_are_not_windows_defender_atp_roles() {
    const MTP: &str = "8ee8fdad-f234-4243-8f3b-15c294843740";
    const WDATP: &str = "fc780465-2017-40d4-a0c5-307022471b92";
    const MTP_APP: &str = "0b7c5a6e-3d2f-4c1b-9a8e-7f6d5c4b3a21";
    const WDATP_APP: &str = "1c8d6b7f-4e3a-4d2c-8b9f-8a7e6d5c4b32";
    let dir = TempDir::new("emu-threat");
    let write = |name: &str, app: &str, resource: &str, roles: &[&str]| {
        let p = dir.path(name);
        let access: Vec<Value> = roles.iter().map(|r| json!({"id": r, "type": "Role"})).collect();
        let m = json!({"appId": app, "displayName": name,
                       "requiredResourceAccess": [{"resourceAppId": resource, "resourceAccess": access}],
                       "keyCredentials": []});
        std::fs::write(&p, serde_json::to_string(&m).unwrap()).unwrap();
        p
    };
    // Incident.Read.All and AdvancedHunting.Read.All; Alert.Read.All and Machine.Read.All.
    let mtp = write(
        "mtp.json",
        MTP_APP,
        MTP,
        &["a9790345-4595-42e4-971a-ccdc79f19b7c", "7734e8e5-8dde-42fc-b5ae-6eafea078693"],
    );
    let wdatp = write(
        "wdatp.json",
        WDATP_APP,
        WDATP,
        &["71fe6b80-7034-4028-9ed8-0f316df9c3ff", "ea8291d3-4b9a-44b5-bc3a-6cea3026dc79"],
    );
    let mut cfg = emulator_config(vec![mtp, wdatp], vec![]);
    cfg.secret = Some(SecretString::new(SECRET));
    cfg.consented = vec![MTP_APP.into(), WDATP_APP.into()];
    let emu = start(cfg).await.unwrap();
    let token = |app: &'static str, resource: &'static str| {
        let url = emu.info().token_endpoint(EndpointVersion::V2);
        async move {
            let scope = format!("{resource}/.default");
            let (s, b) = post(
                &url,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", app),
                    ("client_secret", SECRET),
                    ("scope", &scope),
                ],
            )
            .await;
            assert_eq!(s, 200, "{app} {resource}: {b}");
            let c = token_claims(&b);
            assert_eq!(c["aud"], resource, "v1 token, aud as requested");
            c.get("roles").cloned()
        }
    };
    let mut r = token(MTP_APP, "https://api.security.microsoft.com").await.expect("Threat Protection's roles");
    r.as_array_mut().unwrap().sort_by_key(|v| v.as_str().unwrap().to_string());
    assert_eq!(r, json!(["AdvancedHunting.Read.All", "Incident.Read.All"]));
    for uri in ["https://api.securitycenter.windows.com", "https://securitycenter.onmicrosoft.com/windowsatpservice"] {
        assert_eq!(token(MTP_APP, uri).await, None, "{uri} is WindowsDefenderATP's: no roles from Threat Protection");
        let mut r = token(WDATP_APP, uri).await.unwrap_or_else(|| panic!("{uri}: WindowsDefenderATP's roles"));
        r.as_array_mut().unwrap().sort_by_key(|v| v.as_str().unwrap().to_string());
        assert_eq!(r, json!(["Alert.Read.All", "Machine.Read.All"]), "{uri}");
    }
    assert_eq!(token(WDATP_APP, "https://api.security.microsoft.com").await, None);
}

/// `/me` in the emulator's Graph: with a user's token it is a request Graph serves and the
/// emulator does not (501 `NotImplemented`, saying so); with an app-only token, Graph's own 400.
#[tokio::test]
async fn graph_me_with_a_user_token_is_not_served_and_says_so() {
    let t = tenant_with(|_| {}).await;
    let code = code_for(&t.emu, APP_ID, "openid User.Read", "").await;
    let (s, b) = redeem(&t.emu, APP_ID, &code, &[]).await;
    assert_eq!(s, 200, "{b}");
    let user_token = b["access_token"].as_str().unwrap().to_string();
    let me = format!("{}/v1.0/me", t.emu.info().base_url());
    let r = no_redirects().get(&me).bearer_auth(&user_token).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 501);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "NotImplemented", "{e}");
    let m = e["error"]["message"].as_str().unwrap();
    assert!(
        m.starts_with("keycred's emulator does not serve GET /v1.0/me;") && m.contains("Microsoft Graph does"),
        "{m}"
    );
    let (s, b) = post(
        &t.emu.info().token_endpoint(EndpointVersion::V2),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", APP_ID),
            ("client_secret", SECRET),
            ("scope", "https://graph.microsoft.com/.default"),
        ],
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let r = no_redirects().get(&me).bearer_auth(b["access_token"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["message"], "/me request is only valid with delegated authentication flow.");
}
