//! The CLI against the emulator as a tenant: `keycred consent-url` builds URLs the emulator
//! accepts and `--parse` reads its redirects, `keycred token --code` and `--obo` get their
//! tokens from it, and `keycred emulate -o json` names what it serves.

use crate::emulator_support::*;
use crate::rotation_support::cli;

use keycred::emulator::{start_blocking, EndpointVersion};
use serde_json::{json, Value};

const REPLY: &str = "https://localhost/keycred-cli";
const MID_URI: &str = "api://keycred-cli-mid";
const GRAPH_RESOURCE: &str = "https://graph.microsoft.com";

/// The test app: a web API with `access_as_user`, Office 365 ActivityFeed.Read (Role) and
/// Graph User.Read (Scope) required, a certificate registered.
fn write_app(dir: &TempDir) -> (std::path::PathBuf, keycred::cert::LoadedCredential, std::path::PathBuf) {
    let cred = credential("cli flows app");
    let pem = dir.path("app.pem");
    std::fs::write(&pem, format!("{}{}", cred.key.exportable().unwrap().to_pem(None).unwrap(), cred.cert.to_pem()))
        .unwrap();
    let m = json!({
        "id": OBJECT_ID, "appId": APP_ID, "displayName": "CLI flows app",
        "identifierUris": [MID_URI],
        "api": {"oauth2PermissionScopes": [{"id": "6a5b4c3d-2e1f-4a0b-9c8d-7e6f5a4b3c2d", "value": "access_as_user", "type": "User"}]},
        "web": {"redirectUris": [REPLY]},
        "requiredResourceAccess": [
            {"resourceAppId": "c5393580-f805-4401-95e8-94b7a6ef2fc2", "resourceAccess": [{"id": "594c1fb6-4f81-4475-ae41-0c394909246c", "type": "Role"}]},
            {"resourceAppId": "00000003-0000-0000-c000-000000000000", "resourceAccess": [{"id": "e1fe6dd8-ba31-4d61-89e7-88639da4683d", "type": "Scope"}]}
        ],
        "keyCredentials": [valid_entry(&cred.cert)],
    });
    let manifest = dir.path("app.json");
    std::fs::write(&manifest, serde_json::to_string_pretty(&m).unwrap()).unwrap();
    (manifest, cred, pem)
}

fn query(url: &str, key: &str) -> Option<String> {
    url::Url::parse(url).unwrap().query_pairs().find(|(k, _)| k == key).map(|(_, v)| v.into_owned())
}

#[test]
fn consent_url_code_and_obo_work_against_the_emulator() {
    let dir = TempDir::new("emu-cli-flows");
    let (manifest, _cred, pem) = write_app(&dir);
    let mut cfg = emulator_config(vec![manifest], vec![]);
    cfg.auto_consent = true;
    let emu = start_blocking(cfg).unwrap();
    let base = emu.info().base_url().to_string();
    let pem = pem.display().to_string();

    // Before consent: no roles for Office 365.
    let out = cli(
        &[
            "token",
            "--authority",
            &base,
            "--tenant",
            TENANT,
            "--client-id",
            APP_ID,
            "--cert",
            &pem,
            "--scope",
            "https://manage.office.com",
            "-o",
            "json",
        ],
        &[],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.json()["claims"].get("roles").is_none(), "{}", out.stdout);

    // The v1 admin-consent URL of the Office 365 setup, followed, and its redirect parsed.
    let out = cli(
        &[
            "consent-url",
            "--authority",
            &base,
            "--client-id",
            APP_ID,
            "--redirect-uri",
            REPLY,
            "--v1",
            "--resource",
            "https://manage.office.com",
            "--prompt",
            "admin_consent",
            "-o",
            "json",
        ],
        &[],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let url = out.json()["url"].as_str().unwrap_or_else(|| panic!("no url in {}", out.stdout)).to_string();
    let redirected = follow_redirect(&url);
    let out = cli(&["consent-url", "--parse", &redirected, "-o", "json"], &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["adminConsent"], true, "{}", out.stdout);
    let code = query(&redirected, "code").unwrap();
    // `token --code`: exchanged at /common, the tenant id read from the answer.
    let exchange = [
        "token",
        "--authority",
        &base,
        "--client-id",
        APP_ID,
        "--cert",
        &pem,
        "--code",
        &code,
        "--redirect-uri",
        REPLY,
        "--resource",
        "https://manage.office.com",
    ];
    let out = cli(&[&exchange[..], &["-o", "json"]].concat(), &[]);
    assert_eq!(out.code, 0, "{out:?}");
    let j = out.json();
    assert_eq!(j["claims"]["tid"], TENANT, "{j}");
    assert_eq!(j["claims"]["aud"], "https://manage.office.com");
    assert!(j["claims"]["upn"].is_string(), "a user token: {j}");
    // The same code again: Entra's 54005, exit 3 (remote refused).
    let out = cli(&exchange, &[]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("AADSTS54005"), "{}", out.stderr);
    // The hint says why and what to do: a code is single-use, sign in again.
    assert!(out.stderr.contains("can be redeemed only once"), "{}", out.stderr);
    assert!(out.stderr.contains("keycred consent-url"), "{}", out.stderr);
    // The v2 admin-consent URL (`/organizations/adminconsent` by default) is accepted too.
    let out = cli(
        &[
            "consent-url",
            "--authority",
            &base,
            "--client-id",
            APP_ID,
            "--redirect-uri",
            REPLY,
            "--state",
            "s2",
            "-o",
            "json",
        ],
        &[],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let url = out.json()["url"].as_str().unwrap().to_string();
    assert!(url.contains("/organizations/adminconsent?"), "{url}");
    let out = cli(&["consent-url", "--parse", &follow_redirect(&url), "-o", "json"], &[]);
    assert_eq!(out.code, 0, "{out:?}");
    let j = out.json();
    assert_eq!(
        (j["adminConsent"].as_bool(), j["tenant"].as_str(), j["state"].as_str()),
        (Some(true), Some(TENANT), Some("s2")),
        "{j}"
    );
    // After consent, client credentials carry the role.
    let out = cli(
        &[
            "token",
            "--authority",
            &base,
            "--tenant",
            TENANT,
            "--client-id",
            APP_ID,
            "--cert",
            &pem,
            "--scope",
            "https://manage.office.com",
            "--expect-role",
            "ActivityFeed.Read",
        ],
        &[],
    );
    assert_eq!(out.code, 0, "{out:?}");

    // `token --obo`: a user token for the web API (the v2 consent flow), exchanged for Graph.
    let url = format!(
        "{}?client_id={APP_ID}&response_type=code&redirect_uri={}&scope={}",
        emu.info().authorize_endpoint(EndpointVersion::V2),
        url::form_urlencoded::byte_serialize(REPLY.as_bytes()).collect::<String>(),
        url::form_urlencoded::byte_serialize(format!("{MID_URI}/access_as_user").as_bytes()).collect::<String>()
    );
    let code = query(&follow_redirect(&url), "code").unwrap();
    let out = cli(
        &[
            "token",
            "--authority",
            &base,
            "--tenant",
            TENANT,
            "--client-id",
            APP_ID,
            "--cert",
            &pem,
            "--code",
            &code,
            "--redirect-uri",
            REPLY,
            "--scope",
            &format!("{MID_URI}/access_as_user"),
            "--raw",
        ],
        &[],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let incoming = out.stdout.trim().to_string();
    let out = cli(
        &[
            "token",
            "--authority",
            &base,
            "--tenant",
            TENANT,
            "--client-id",
            APP_ID,
            "--cert",
            &pem,
            "--obo",
            &incoming,
            "--scope",
            "https://graph.microsoft.com/User.Read",
            "-o",
            "json",
        ],
        &[],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let c = &out.json()["claims"];
    assert_eq!((c["aud"].as_str(), c["scp"].as_str()), (Some("https://graph.microsoft.com"), Some("User.Read")), "{c}");
}

#[test]
fn emulate_json_names_apps_users_graph_and_consent_urls() {
    let dir = TempDir::new("emu-cli-json");
    let (manifest, _, _) = write_app(&dir);
    let j = emulate_announcement(&[
        "--manifest",
        &manifest.display().to_string(),
        "--tenant",
        TENANT,
        "--domain",
        "contoso.example",
        "--user",
        "adele.vance@contoso.example",
    ]);
    let base = j["baseUrl"].as_str().unwrap();
    assert_eq!(j["apps"], json!([{"appId": APP_ID, "displayName": "CLI flows app"}]));
    assert_eq!(j["graphUrl"], base);
    assert_eq!(j["authorizeEndpointV2"], format!("{base}/{TENANT}/oauth2/v2.0/authorize"));
    assert_eq!(j["adminConsentEndpoint"], format!("{base}/{TENANT}/v2.0/adminconsent"));
    assert_eq!(j["domains"][1], "contoso.example");
    assert!(j["domains"][0].as_str().unwrap().ends_with(".onmicrosoft.com"), "{j}");
    assert_eq!(j["users"][0]["userPrincipalName"], "adele.vance@contoso.example");
    assert_eq!(j["users"][0]["displayName"], "Adele Vance");
}

/// A legacy (Azure AD Graph) manifest names the application with `name` (the legacy manifest
/// reference: "name: the display name for the app"): the banner, the consent page and the
/// emulator's Graph show that name, not the app id.
#[test]
fn a_legacy_manifests_name_is_the_applications_display_name() {
    let dir = TempDir::new("legacy-name");
    let m = dir.s("legacy.json");
    let name = "Contoso Legacy Daemon";
    let init = cli(&["manifest", "init", &m, "--format", "aad-graph", "--app-id", APP_ID, "--display-name", name], &[]);
    assert_eq!(init.code, 0, "{init:?}");
    let cred = credential("legacy app");
    let pem = dir.path("legacy.pem");
    std::fs::write(&pem, format!("{}{}", cred.key.exportable().unwrap().to_pem(None).unwrap(), cred.cert.to_pem()))
        .unwrap();
    assert_eq!(cli(&["manifest", "add", &m, "--cert", &pem.display().to_string()], &[]).code, 0);
    // The banner.
    let j = emulate_announcement(&["--manifest", &m, "--tenant", TENANT]);
    assert_eq!(j["apps"], json!([{"appId": APP_ID, "displayName": name}]));
    // The consent page and Graph.
    let cfg =
        emulator_config(vec![m.clone().into()], vec![(GRAPH_RESOURCE.into(), vec!["Application.Read.All".into()])]);
    let emu = start_blocking(cfg).unwrap();
    let base = emu.info().base_url().to_string();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let page = rt.block_on(async {
        let url = format!("{base}/{TENANT}/adminconsent?client_id={APP_ID}&redirect_uri=https://localhost:44321/");
        reqwest::Client::builder().no_proxy().build().unwrap().get(url).send().await.unwrap().text().await.unwrap()
    });
    assert!(page.contains(&format!("<strong id=\"app\">{name}</strong>")), "{page}");
    let token = cli(
        &[
            "token",
            "--authority",
            &base,
            "--tenant",
            TENANT,
            "--client-id",
            APP_ID,
            "--cert",
            &pem.display().to_string(),
            "--scope",
            GRAPH_RESOURCE,
            "--raw",
        ],
        &[],
    );
    assert_eq!(token.code, 0, "{token:?}");
    let app = rt.block_on(async {
        let url = format!("{base}/v1.0/applications(appId='{APP_ID}')?$select=displayName");
        let c = reqwest::Client::builder().no_proxy().build().unwrap();
        c.get(url).bearer_auth(token.stdout.trim()).send().await.unwrap().json::<Value>().await.unwrap()
    });
    assert_eq!(app["displayName"], name, "{app}");
}
