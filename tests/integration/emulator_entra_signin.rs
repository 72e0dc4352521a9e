//! The sign-in and consent endpoints' parameters and answers next to Entra's: `prompt`
//! (`none` answered silently or with Entra's silent-sign-in errors, `login`, `consent` and
//! `select_account` showing the page), `login_hint` and `domain_hint`, and the admin-consent
//! endpoint's error redirects and required `scope`. Each test cites its evidence.

use crate::emulator_support::*;
use crate::emulator_tenant::{authorize_v2, get, q, tenant_with, REPLY};

use std::collections::HashMap;

/// `prompt=none` "ensures that the user isn't presented with any interactive prompt. If the
/// request can't be completed silently by using single-sign on, the Microsoft identity platform
/// returns an `interaction_required` error", and `login_required` when no single signed-in user
/// is found (https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow);
/// Entra's text for the latter is AADSTS50058 "A silent sign-in request was sent but no user is
/// signed in." (MSAL.js issue 5148). A missing consent is OpenID Connect Core's
/// `consent_required` (section 3.1.2.6), with Entra's AADSTS65001.
#[tokio::test]
async fn prompt_none_signs_in_silently_or_redirects_entras_silent_errors() {
    let silent = |p: &HashMap<String, String>, error: &str, code: &str| {
        assert!(!p.contains_key("code"), "{p:?}");
        assert_eq!(p.get("error").map(String::as_str), Some(error), "{p:?}");
        assert!(p["error_description"].starts_with(&format!("AADSTS{code}: ")), "{p:?}");
        assert_eq!(p["state"], "st4te");
    };
    // No session: the emulator shows pages, and no one is signed in.
    let t = tenant_with(|c| {
        c.auto_consent = false;
        c.consented = vec![APP_ID.into()];
    })
    .await;
    let (s, p, body) = get(&authorize_v2(&t.emu, APP_ID, "openid User.Read", "&prompt=none")).await;
    assert_eq!(s, 302, "redirected, never the page: {body}");
    silent(&p, "login_required", "50058");
    assert!(p["error_description"].contains("A silent sign-in request was sent but no user is signed in."), "{p:?}");

    // With --auto-consent the scripted user is signed in.
    let t = tenant_with(|_| {}).await;
    let (s, p, _) = get(&authorize_v2(&t.emu, APP_ID, "openid User.Read", "&prompt=none")).await;
    assert_eq!(s, 302);
    silent(&p, "consent_required", "65001");
    // A login_hint naming no user of the tenant: no such session either.
    let (_, p, _) =
        get(&authorize_v2(&t.emu, APP_ID, "openid User.Read", "&prompt=none&login_hint=nobody@example.com")).await;
    silent(&p, "login_required", "50058");
    // Once consented (an administrator's consent at start), prompt=none answers with the code.
    let t = tenant_with(|c| c.consented = vec![APP_ID.into()]).await;
    let (s, p, _) = get(&authorize_v2(&t.emu, APP_ID, "openid profile offline_access User.Read", "&prompt=none")).await;
    assert_eq!(s, 302);
    assert!(p.contains_key("code") && !p.contains_key("error"), "{p:?}");
    assert_eq!(p["state"], "st4te");
}

/// `prompt=login` "forces the user to enter their credentials", `prompt=consent` "triggers the
/// OAuth consent dialog after the user signs in", `prompt=select_account` shows the account
/// picker; `login_hint` pre-fills the user and `domain_hint` skips home-realm discovery
/// (https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow). The emulator
/// has no session to skip, so each shows its page, with the hinted user chosen, even for an app
/// already consented.
#[tokio::test]
async fn prompt_login_consent_and_select_account_show_the_page_with_the_hinted_user() {
    let t = tenant_with(|c| {
        c.auto_consent = false;
        c.consented = vec![APP_ID.into()];
        c.users = vec!["adele@contoso.example=Adele Vance".into(), "megan@contoso.example=Megan Bowen".into()];
    })
    .await;
    for prompt in ["login", "consent", "select_account"] {
        let extra = format!("&prompt={prompt}&login_hint={}&domain_hint=contoso.example", q("megan@contoso.example"));
        let (s, p, html) = get(&authorize_v2(&t.emu, APP_ID, "openid User.Read", &extra)).await;
        assert_eq!(s, 200, "prompt={prompt}: {html}");
        assert!(p.is_empty(), "prompt={prompt}: {p:?}");
        assert!(html.contains("value=\"megan@contoso.example\" checked"), "prompt={prompt}: {html}");
        assert!(!html.contains("value=\"adele@contoso.example\" checked"), "prompt={prompt}: {html}");
        assert!(html.contains("User.Read"), "the consent dialog: {html}");
    }
}

/// The v2 admin-consent endpoint's `scope` is "Required", and its error answers carry
/// `admin_consent=True` "to indicate that this response occurred on an admin consent flow"
/// (https://learn.microsoft.com/entra/identity-platform/v2-admin-consent); a real Cancel shows
/// `error=access_denied`, AADSTS65004 "User declined to consent to access the app.",
/// `error_uri`, `admin_consent=True`, `state` and no `tenant` (MicrosoftDocs/azure-docs issue
/// 114009, https://github.com/MicrosoftDocs/azure-docs/issues/114009).
#[tokio::test]
async fn admin_consent_errors_carry_admin_consent_true_and_scope_is_required() {
    let t = tenant_with(|c| c.auto_consent = false).await;
    let url = t.emu.info().admin_consent_endpoint();
    let (s, p, body) = get(&format!("{url}?client_id={APP_ID}&redirect_uri={}&state=s2", q(REPLY))).await;
    assert_eq!(s, 302, "{body}");
    assert!(p["_location"].starts_with(REPLY), "{p:?}");
    assert_eq!(p["error"], "invalid_request");
    assert!(
        p["error_description"].starts_with("AADSTS900144: ") && p["error_description"].contains("'scope'"),
        "{p:?}"
    );
    assert_eq!(p["admin_consent"], "True");
    assert_eq!(p["state"], "s2");
    assert!(!p.contains_key("tenant"), "{p:?}");
    // With the scope, the consent page.
    let (s, _, html) = get(&format!(
        "{url}?client_id={APP_ID}&redirect_uri={}&scope={}",
        q(REPLY),
        q("https://graph.microsoft.com/.default")
    ))
    .await;
    assert_eq!(s, 200, "{html}");
}
