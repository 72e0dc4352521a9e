//! How the emulator reads what a user flow asks for, as Entra does: `.default` never beside a
//! named scope, several resources at the authorize leg but one at the token leg, `resource`
//! refused by the v2 endpoints, and the v1 answer's `scope` listing bare permission names. Each
//! test cites the public evidence for the behaviour it pins.

use crate::emulator_support::*;
use crate::emulator_tenant::{
    authorize_v2, claims_of, code_for, get, obo, q, redeem, tenant_with, user_token_for_mid, v1_code_flow, MID_URI,
    REPLY, SECRET,
};

use keycred::emulator::EndpointVersion;
use serde_json::json;

const GRAPH_ID: &str = "00000003-0000-0000-c000-000000000000";

/// Entra refuses `.default` beside a named scope with AADSTS70011 "... .default scope can't be
/// combined with resource-specific scopes." in the user flows, as in client credentials:
/// observed at the authorize endpoint in oauth2-proxy issue 2158
/// (https://github.com/oauth2-proxy/oauth2-proxy/issues/2158) and MSAL.js issues 1063 and 4071
/// (https://github.com/AzureAD/microsoft-authentication-library-for-js/issues/4071), and for
/// on-behalf-of in MicrosoftDocs/entra-docs pull request 1501, which also notes that `.default`
/// with OpenID scopes (what MSAL sends) is fine.
#[tokio::test]
async fn default_beside_a_named_scope_is_70011_in_every_user_flow() {
    let t = tenant_with(|c| c.consented = vec![APP_ID.into()]).await;
    for scope in [
        "https://graph.microsoft.com/.default User.Read openid".to_string(),
        format!("{MID_URI}/access_as_user https://graph.microsoft.com/.default"),
    ] {
        let (s, p, body) = get(&authorize_v2(&t.emu, APP_ID, &scope, "")).await;
        assert_eq!(s, 302, "{scope}: {body}");
        assert!(!p.contains_key("code"), "{scope}: {p:?}");
        assert_eq!(p["error"], "invalid_scope", "{p:?}");
        let d = &p["error_description"];
        assert!(d.starts_with("AADSTS70011: "), "{d}");
        assert!(d.contains(".default scope can't be combined with resource-specific scopes."), "{d}");
        assert_eq!(p["state"], "st4te");
    }

    let combined = [("scope", "https://graph.microsoft.com/.default https://graph.microsoft.com/User.Read")];
    // The code exchange.
    let code = code_for(&t.emu, APP_ID, "https://graph.microsoft.com/.default openid profile offline_access", "").await;
    let d = assert_entra_error(&redeem(&t.emu, APP_ID, &code, &combined).await, 400, "invalid_scope", 70011);
    assert!(d.contains(".default scope can't be combined with resource-specific scopes."), "{d}");
    // `.default` with the OpenID scopes alone is accepted, and gives a refresh token.
    let code = code_for(&t.emu, APP_ID, "https://graph.microsoft.com/.default openid profile offline_access", "").await;
    let (s, b) =
        redeem(&t.emu, APP_ID, &code, &[("scope", "https://graph.microsoft.com/.default offline_access")]).await;
    assert_eq!(s, 200, "{b}");
    // The refresh.
    let rt = b["refresh_token"].as_str().unwrap();
    let mut form =
        vec![("grant_type", "refresh_token"), ("client_id", APP_ID), ("refresh_token", rt), ("client_secret", SECRET)];
    form.extend_from_slice(&combined);
    let got = post(&t.emu.info().token_endpoint(EndpointVersion::V2), &form).await;
    assert_entra_error(&got, 400, "invalid_scope", 70011);
    // On-behalf-of.
    let incoming = user_token_for_mid(&t).await;
    let got = obo(&t, APP_ID, &incoming, combined[0].1).await;
    let d = assert_entra_error(&got, 400, "invalid_scope", 70011);
    assert!(d.contains(".default scope can't be combined with resource-specific scopes."), "{d}");
}

/// "For the /authorize leg of the request, this parameter can cover multiple resources. This
/// value allows your app to get consent for multiple web APIs you want to call." while the
/// token leg's `scope` must be "all from a single resource" (Microsoft identity platform and
/// OAuth 2.0 authorization code flow,
/// https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow).
#[tokio::test]
async fn the_authorize_leg_may_name_several_resources_and_the_token_leg_one() {
    let scope = format!("User.Read {MID_URI}/access_as_user openid offline_access");
    // The consent page lists what is asked of both resources.
    let quiet = tenant_with(|c| c.auto_consent = false).await;
    let (s, _, html) = get(&authorize_v2(&quiet.emu, APP_ID, &scope, "")).await;
    assert_eq!(s, 200, "{html}");
    assert!(html.contains("Microsoft Graph: User.Read") && html.contains("access_as_user"), "{html}");

    let t = tenant_with(|_| {}).await;
    let code = code_for(&t.emu, APP_ID, &scope, "").await;
    // The code is for the first resource named.
    let (s, b) = redeem(&t.emu, APP_ID, &code, &[]).await;
    assert_eq!(s, 200, "{b}");
    let c = claims_of(&b["access_token"]);
    assert_eq!(c["aud"], GRAPH_ID);
    assert!(c["scp"].as_str().unwrap().split(' ').any(|x| x == "User.Read"), "{c:?}");
    // The other one was consented up front: the refresh token gets a token for it.
    let rt = b["refresh_token"].as_str().unwrap();
    let refresh = |scope: String| {
        let url = t.emu.info().token_endpoint(EndpointVersion::V2);
        let rt = rt.to_string();
        async move {
            let form = [
                ("grant_type", "refresh_token"),
                ("client_id", APP_ID),
                ("refresh_token", rt.as_str()),
                ("client_secret", SECRET),
                ("scope", scope.as_str()),
            ];
            post(&url, &form).await
        }
    };
    let (s, r) = refresh(format!("{MID_URI}/access_as_user")).await;
    assert_eq!(s, 200, "{r}");
    let c = claims_of(&r["access_token"]);
    assert_eq!((c["aud"].as_str(), c["scp"].as_str()), (Some(MID_URI), Some("access_as_user")));
    // The token leg is single-resource.
    let got = refresh(format!("User.Read {MID_URI}/access_as_user")).await;
    let d = assert_entra_error(&got, 400, "invalid_scope", 70011);
    assert!(d.contains("Scopes of more than one resource"), "{d}");
    // A code redeemed for the second resource, named by the token leg's `scope`.
    let code = code_for(&t.emu, APP_ID, &scope, "").await;
    let (s, b) = redeem(&t.emu, APP_ID, &code, &[("scope", &format!("{MID_URI}/access_as_user offline_access"))]).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(claims_of(&b["access_token"])["aud"], MID_URI);
    let shown: Vec<&str> = b["scope"].as_str().unwrap().split(' ').collect();
    assert!(shown.contains(&format!("{MID_URI}/access_as_user").as_str()) && !shown.contains(&"User.Read"), "{b}");
}

/// The v2 endpoints take `scope` and answer `resource` with AADSTS901002 "The 'resource'
/// request parameter is not supported." (AADSTS reference,
/// https://learn.microsoft.com/entra/identity-platform/reference-error-codes). At the authorize
/// endpoint Entra shows it on its own page (quoted from the sign-in window in MSAL.NET issue
/// 4918, https://github.com/AzureAD/microsoft-authentication-library-for-dotnet/issues/4918).
#[tokio::test]
async fn resource_at_the_v2_endpoints_is_901002() {
    let t = tenant_with(|_| {}).await;
    let cc = [("grant_type", "client_credentials"), ("client_id", APP_ID), ("client_secret", SECRET)];
    for extra in [
        vec![("resource", "https://graph.microsoft.com")],
        vec![("resource", "https://graph.microsoft.com"), ("scope", "https://graph.microsoft.com/.default")],
    ] {
        let mut form = cc.to_vec();
        form.extend(extra);
        let got = post(&t.emu.info().token_endpoint(EndpointVersion::V2), &form).await;
        let d = assert_entra_error(&got, 400, "invalid_request", 901002);
        assert!(d.starts_with("AADSTS901002: The 'resource' request parameter is not supported."), "{d}");
    }
    // The v1 endpoint takes it.
    let mut form = cc.to_vec();
    form.push(("resource", "https://graph.microsoft.com"));
    let (s, b) = post(&t.emu.info().token_endpoint(EndpointVersion::V1), &form).await;
    assert_eq!(s, 200, "{b}");

    let url =
        format!("{}&resource={}", authorize_v2(&t.emu, APP_ID, "User.Read", ""), q("https://graph.microsoft.com"));
    let (s, p, body) = get(&url).await;
    assert_eq!(s, 400, "{body}");
    assert!(p.is_empty(), "shown, not redirected: {p:?}");
    assert!(body.contains("AADSTS901002"), "{body}");
}

/// A v1 answer's `scope` lists the permission names without the resource: the Office 365
/// Management API's getting-started document shows `"scope":"ActivityFeed.Read
/// ActivityReports.Read ServiceHealth.Read"` beside `"resource":"https://manage.office.com"`
/// (https://learn.microsoft.com/office/office-365-management-api/get-started-with-office-365-management-apis).
#[tokio::test]
async fn v1_answers_list_bare_scope_names() {
    const READER: &str = "8c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f";
    let dir = TempDir::new("emu-o365-reader");
    let reader = dir.path("reader.json");
    let m = json!({
        "appId": READER, "displayName": "Contoso Activity Reader",
        "web": {"redirectUris": [REPLY]},
        "requiredResourceAccess": [{"resourceAppId": "c5393580-f805-4401-95e8-94b7a6ef2fc2", "resourceAccess": [
            {"id": "594c1fb6-4f81-4475-ae41-0c394909246c", "type": "Scope"},
            {"id": "e2cea78f-e743-4d8f-a16a-75b629a038ae", "type": "Scope"}]}],
        "keyCredentials": [],
    });
    std::fs::write(&reader, serde_json::to_string_pretty(&m).unwrap()).unwrap();
    let t = tenant_with(|c| c.manifests.push(reader.clone())).await;
    let (s, b) = v1_code_flow(&t.emu, READER, "https://manage.office.com", "&prompt=admin_consent").await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["resource"], "https://manage.office.com");
    assert_eq!(b["scope"], "ActivityFeed.Read ServiceHealth.Read");
    assert_eq!(claims_of(&b["access_token"])["scp"], "ActivityFeed.Read ServiceHealth.Read");
    // The v1 refresh answers the same way.
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", READER),
        ("refresh_token", b["refresh_token"].as_str().unwrap()),
        ("resource", "https://manage.office.com"),
        ("client_secret", SECRET),
    ];
    let (s, r) = post(&t.emu.info().token_endpoint(EndpointVersion::V1), &form).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["scope"], "ActivityFeed.Read ServiceHealth.Read");
}
