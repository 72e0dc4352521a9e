//! The browser's side of the sign-in endpoints: an app registered for sign-in, requests that do
//! not follow redirects, and the parameters a redirect carries.

use super::*;
use keycred::emulator::{start, EmulatorHandle, EndpointVersion};
use keycred::secret::SecretString;
use std::collections::HashMap;

/// The sign-in app's reply URL.
pub const REPLY: &str = "http://localhost/callback";
/// The secret every app of the sign-in emulator accepts.
pub const SECRET: &str = "sign-in-test-secret-value";
/// Microsoft Graph's `User.Read` (delegated) and the Office 365 Management API's
/// `ActivityFeed.Read` (application): what the sign-in app asks for.
const GRAPH_USER_READ: &str = "e1fe6dd8-ba31-4d61-89e7-88639da4683d";
const O365_ACTIVITY_FEED: &str = "594c1fb6-4f81-4475-ae41-0c394909246c";

/// An emulator serving one app ([`APP_ID`]) that signs users in at [`REPLY`] and needs Graph's
/// `User.Read` and the Office 365 Management API's `ActivityFeed.Read`; `auto_consent` answers
/// the sign-in endpoints at once, as if the first user had clicked Accept.
pub async fn sign_in_emulator(auto_consent: bool) -> (TempDir, EmulatorHandle) {
    let dir = TempDir::new("emu-sign-in");
    let cred = credential("sign-in test app");
    let manifest = dir.path("app.json");
    let m = json!({
        "id": OBJECT_ID, "appId": APP_ID, "displayName": "Contoso Sign-in",
        "web": {"redirectUris": [REPLY]},
        "requiredResourceAccess": [
            {"resourceAppId": "00000003-0000-0000-c000-000000000000", "resourceAccess": [{"id": GRAPH_USER_READ, "type": "Scope"}]},
            {"resourceAppId": "c5393580-f805-4401-95e8-94b7a6ef2fc2", "resourceAccess": [{"id": O365_ACTIVITY_FEED, "type": "Role"}]}
        ],
        "keyCredentials": [valid_entry(&cred.cert)],
    });
    std::fs::write(&manifest, serde_json::to_string_pretty(&m).unwrap()).unwrap();
    let mut cfg = emulator_config(vec![manifest], vec![]);
    cfg.secret = Some(SecretString::new(SECRET));
    cfg.auto_consent = auto_consent;
    let emu = start(cfg).await.unwrap();
    (dir, emu)
}

/// Form-urlencodes one value.
pub fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The v2 authorize URL of the sign-in app asking for `openid User.Read`, with `state=st4te`
/// and `extra` (`&name=value...`) appended.
pub fn authorize_url(emu: &EmulatorHandle, extra: &str) -> String {
    format!(
        "{}?client_id={APP_ID}&response_type=code&redirect_uri={}&scope={}&state=st4te{extra}",
        emu.info().authorize_endpoint(EndpointVersion::V2),
        enc(REPLY),
        enc("openid offline_access User.Read")
    )
}

/// What the browser got: status, headers, the redirect's parameters (query and fragment;
/// empty when not redirected) and the body.
pub struct Page {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub redirect: HashMap<String, String>,
    pub body: String,
}

/// A client that does not follow redirects (a redirect is the answer under test).
pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .unwrap()
}

async fn page(r: reqwest::Response) -> Page {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let mut redirect = HashMap::new();
    if let Some(l) = headers.get("location") {
        let u = url::Url::parse(l.to_str().unwrap()).unwrap();
        redirect.extend(u.query_pairs().into_owned());
        if let Some(f) = u.fragment() {
            redirect.extend(url::form_urlencoded::parse(f.as_bytes()).into_owned());
        }
    }
    Page { status, headers, redirect, body: r.text().await.unwrap() }
}

/// GETs `url` without following a redirect.
pub async fn browse(url: &str) -> Page {
    page(no_redirects().get(url).send().await.unwrap()).await
}

/// Posts `form` to `url` without following a redirect.
pub async fn submit(url: &str, form: &[(&str, &str)]) -> Page {
    page(no_redirects().post(url).form(form).send().await.unwrap()).await
}

/// The code of a sign-in at `url` (answered at once: an auto-consent emulator).
pub async fn code_from(url: &str) -> String {
    let p = browse(url).await;
    assert_eq!(p.status, 302, "{}", p.body);
    p.redirect.get("code").cloned().unwrap_or_else(|| panic!("no code in {:?}", p.redirect))
}

/// Redeems `code` at the v2 token endpoint with the secret, adding `extra` fields.
pub async fn redeem(emu: &EmulatorHandle, code: &str, extra: &[(&str, &str)]) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("client_id", APP_ID),
        ("code", code),
        ("redirect_uri", REPLY),
        ("client_secret", SECRET),
    ];
    form.extend_from_slice(extra);
    post(&emu.info().token_endpoint(EndpointVersion::V2), &form).await
}
