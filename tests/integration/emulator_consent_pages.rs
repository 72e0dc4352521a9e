//! The consent pages' defences: a consent is posted only from the page the emulator showed for
//! that very request (no cross-site request forgery), no page may be framed by another site
//! (clickjacking), and discovery documents name the emulator's own endpoints whatever `Host`
//! header the request carries.

use crate::emulator_support::*;

use keycred::emulator::{EmulatorHandle, EndpointVersion};
use serde_json::Value;

/// The fields the consent page for `authorize_url(emu, "")` posts back, with `token` and
/// `decision`.
fn consent_form<'a>(scope: &'a str, token: Option<&'a str>, decision: &'a str) -> Vec<(&'a str, &'a str)> {
    let mut f = vec![
        ("client_id", APP_ID),
        ("response_type", "code"),
        ("redirect_uri", REPLY),
        ("scope", scope),
        ("state", "st4te"),
    ];
    if let Some(t) = token {
        f.push(("form_token", t));
    }
    f.push(("decision", decision));
    f
}

/// The roles in the sign-in app's app-only token for the Office 365 Management API: what an
/// administrator's consent grants it.
async fn o365_roles(emu: &EmulatorHandle) -> Vec<String> {
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", APP_ID),
        ("client_secret", SECRET),
        ("scope", "https://manage.office.com/.default"),
    ];
    let (s, b) = post(&emu.info().token_endpoint(EndpointVersion::V2), &form).await;
    assert_eq!(s, 200, "{b}");
    token_claims(&b).get("roles").map(|r| serde_json::from_value(r.clone()).unwrap()).unwrap_or_default()
}

#[tokio::test]
async fn a_consent_is_posted_only_from_the_page_shown_for_that_request() {
    let (_dir, emu) = sign_in_emulator(false).await;
    let url = authorize_url(&emu, "");
    let page = browse(&url).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let token = form_token(&page.body);
    let scope = "openid offline_access User.Read";
    let refused = |p: &Page, why: &str| {
        assert_eq!(p.status, 400, "{why}: {}", p.body);
        assert!(p.redirect.is_empty(), "{why}: nothing is sent to the reply URL: {:?}", p.redirect);
        assert!(p.body.contains("nothing was granted"), "{why}: {}", p.body);
    };
    // A form on another site knows every field but the page's token.
    refused(&submit(&url, &consent_form(scope, None, "accept")).await, "no token");
    refused(&submit(&url, &consent_form(scope, Some("4102444800.AAAA"), "accept")).await, "made-up token");
    // The page's token does not carry over to other parameters, nor to another endpoint.
    refused(&submit(&url, &consent_form("openid User.Read", Some(&token), "accept")).await, "scope changed");
    let v1 = emu.info().authorize_endpoint(EndpointVersion::V1);
    refused(&submit(&v1, &consent_form(scope, Some(&token), "accept")).await, "other endpoint");
    // The page's own form: the code.
    let p = submit(&url, &consent_form(scope, Some(&token), "accept")).await;
    assert_eq!(p.status, 302, "{}", p.body);
    assert!(p.redirect.contains_key("code") && p.redirect["state"] == "st4te", "{:?}", p.redirect);

    // An administrator's consent, forged from another site, grants nothing; from its page, it does.
    let admin = format!(
        "{}?client_id={APP_ID}&redirect_uri={}&scope={}&state=s1",
        emu.info().admin_consent_endpoint(),
        enc(REPLY),
        enc("https://manage.office.com/.default")
    );
    let fields = [
        ("client_id", APP_ID),
        ("redirect_uri", REPLY),
        ("scope", "https://manage.office.com/.default"),
        ("state", "s1"),
        ("decision", "accept"),
    ];
    refused(&submit(&admin, &fields).await, "forged admin consent");
    assert!(o365_roles(&emu).await.is_empty(), "a forged admin consent granted roles");
    let page = browse(&admin).await;
    let token = form_token(&page.body);
    let mut form = fields.to_vec();
    form.insert(4, ("form_token", &token));
    let p = submit(&admin, &form).await;
    assert_eq!((p.status, p.redirect.get("admin_consent").map(String::as_str)), (302, Some("True")), "{}", p.body);
    assert_eq!(o365_roles(&emu).await, ["ActivityFeed.Read"]);
}

#[tokio::test]
async fn no_page_of_the_emulator_can_be_framed() {
    let (_dir, emu) = sign_in_emulator(false).await;
    let (_dir2, auto) = sign_in_emulator(true).await;
    let pages = [
        ("consent page", browse(&authorize_url(&emu, "")).await, 200),
        (
            "error page",
            browse(&authorize_url(&emu, "").replace(APP_ID, "11111111-2222-4333-8444-555555555555")).await,
            400,
        ),
        ("form_post page", browse(&authorize_url(&auto, "&response_mode=form_post")).await, 200),
        (
            "refused consent",
            submit(&authorize_url(&emu, ""), &consent_form("openid offline_access User.Read", None, "accept")).await,
            400,
        ),
    ];
    for (name, p, status) in pages {
        assert_eq!(p.status, status, "{name}: {}", p.body);
        assert!(p.headers["content-type"].to_str().unwrap().starts_with("text/html"), "{name}");
        assert_eq!(p.headers["x-frame-options"], "DENY", "{name}");
        let csp = p.headers["content-security-policy"].to_str().unwrap();
        assert!(csp.split(';').any(|d| d.trim() == "frame-ancestors 'none'"), "{name}: {csp}");
    }
}

/// GETs `path` with `host` as the `Host` header, over a raw connection (a client cannot be made
/// to send a forged one); the JSON answer.
fn get_with_host(base: &str, path: &str, host: &str) -> Value {
    use std::io::{Read, Write};
    let addr = url::Url::parse(base).unwrap().socket_addrs(|| None).unwrap()[0];
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    let body = out.split("\r\n\r\n").nth(1).unwrap_or_default();
    // Possibly chunked: the JSON object lies between the first '{' and the last '}'.
    let (a, b) = (body.find('{').unwrap(), body.rfind('}').unwrap());
    serde_json::from_str(&body[a..=b]).unwrap()
}

#[tokio::test]
async fn discovery_documents_name_the_emulators_own_endpoints_whatever_the_host_header() {
    let (_dir, emu) = sign_in_emulator(false).await;
    let base = emu.info().base_url().to_string();
    let localhost = base.replace("://127.0.0.1:", "://localhost:");
    let port = url::Url::parse(&base).unwrap().port().unwrap();
    let paths = [
        format!("/{TENANT}/v2.0/.well-known/openid-configuration"),
        format!("/{TENANT}/.well-known/openid-configuration"),
        "/common/discovery/instance?api-version=1.1&authorization_endpoint=x".to_string(),
    ];
    for path in &paths {
        for (host, want) in [
            ("evil.example".to_string(), &base),
            (format!("evil.example:{port}"), &base),
            (format!("localhost:{port}"), &localhost),
            (format!("127.0.0.1:{port}"), &base),
        ] {
            let (b, p, h) = (base.clone(), path.clone(), host.clone());
            let doc = tokio::task::spawn_blocking(move || get_with_host(&b, &p, &h)).await.unwrap();
            let text = doc.to_string();
            assert!(!text.contains("evil.example"), "{path} with Host {host}: {text}");
            for key in ["token_endpoint", "jwks_uri", "authorization_endpoint", "tenant_discovery_endpoint"] {
                if let Some(u) = doc[key].as_str() {
                    assert!(u.starts_with(&format!("{want}/")), "{path} with Host {host}: {key} {u}");
                }
            }
        }
    }
}
