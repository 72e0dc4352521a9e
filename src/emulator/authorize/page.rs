//! The sign-in and consent pages the emulator shows: their HTML (every value escaped), the
//! consent page's list of permissions, and the error page for requests whose reply URL is not
//! trusted.

use super::form::{form_token, request_keys};
use super::{Ask, Kind, PageError, Pending, FORM_LIFETIME, FORM_TOKEN};
use crate::emulator::apps::{AccessKind, App};
use crate::emulator::AppState;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};

pub(super) fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

pub(super) const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f2f2f2;margin:0}\
main{max-width:28rem;margin:3rem auto;background:#fff;padding:2rem;box-shadow:0 2px 6px rgba(0,0,0,.2)}\
h1{font-size:1.4rem;margin-top:0}ul{padding-left:1.2rem}.muted{color:#666;font-size:.85rem}\
button{padding:.5rem 1.4rem;margin-right:.5rem;font-size:1rem}button[value=accept]{background:#0067b8;color:#fff;border:0}\
label{display:block;margin:.3rem 0}code{word-break:break-all}";

pub(super) fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><style>{STYLE}</style></head>\
         <body><main>{body}<p class=\"muted\">keycred emulator: a local imitation of Microsoft Entra ID sign-in.</p>\
         </main></body></html>\n",
        t = esc(title)
    );
    let mut r = (status, Html(html)).into_response();
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store, no-cache"));
    // No site may frame a page whose buttons grant consent (clickjacking): the old header for old
    // browsers, CSP for the rest. The pages load nothing and run no script.
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'",
        ),
    );
    r
}

pub(super) fn error_page(e: PageError) -> Response {
    let code = e.code.map(|c| format!("AADSTS{c}: ")).unwrap_or_default();
    let body = format!(
        "<h1>Sorry, but we're having trouble signing you in.</h1><p id=\"error\">{}{}</p>",
        esc(&code),
        esc(&e.text)
    );
    page(e.status, "Sign in error", &body)
}

/// The permissions an admin consent grants: the app's `requiredResourceAccess`, by name.
pub(super) fn required_names(st: &AppState, app: &App) -> Vec<String> {
    app.required
        .iter()
        .map(|r| {
            let api = st.resource(&r.resource_app_id);
            let name = api.as_ref().and_then(|a| match r.kind {
                AccessKind::Role => a.role_by_id(&r.id).map(|x| x.value.clone()),
                AccessKind::Scope => a.scope_by_id(&r.id).map(|x| x.value.clone()),
            });
            let res = api.map(|a| a.display_name.clone()).unwrap_or_else(|| r.resource_app_id.clone());
            let kind = match r.kind {
                AccessKind::Role => "application permission",
                AccessKind::Scope => "delegated permission",
            };
            format!("{}: {} ({kind})", res, name.unwrap_or_else(|| r.id.clone()))
        })
        .collect()
}

/// The consent page for a checked request.
pub(super) fn consent_page(st: &AppState, p: &Pending, ask: Option<&Ask>) -> Response {
    let mut perms: Vec<String> = Vec::new();
    if p.admin() {
        perms.extend(required_names(st, &p.client));
    }
    if let Some(a) = ask.filter(|_| !p.kind.is_admin_consent()) {
        for (api, asked) in a.all() {
            for s in &asked.scopes {
                perms.push(format!("{}: {s} (delegated permission)", api.display_name));
            }
        }
        if a.asked.default && !p.admin() {
            perms.push(format!("{}: the permissions the app is configured for", a.api.display_name));
        }
        if a.asked.oidc.iter().any(|o| o == "openid") || p.kind == Kind::AuthorizeV1 {
            perms.push("Sign you in and read your profile".into());
        }
        if a.asked.oidc.iter().any(|o| o == "offline_access") {
            perms.push("Maintain access to data you have given it access to".into());
        }
    }
    if perms.is_empty() {
        perms.push("No permissions".into());
    }
    let hint = p.param("login_hint");
    let users: String = st
        .directory
        .users
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let checked = match hint {
                Some(h) => h.eq_ignore_ascii_case(&u.upn),
                None => i == 0,
            };
            format!(
                "<label><input type=\"radio\" name=\"user\" value=\"{}\"{}> {} &lt;{}&gt;</label>",
                esc(&u.upn),
                if checked { " checked" } else { "" },
                esc(&u.name),
                esc(&u.upn)
            )
        })
        .collect();
    let hidden: String = {
        let keys = request_keys(&p.params);
        let token = form_token(st, &p.tenant, p.kind, &p.params, crate::jwt::now_secs() + FORM_LIFETIME);
        keys.iter()
            .map(|k| (k.as_str(), p.params[*k].as_str()))
            .chain([(FORM_TOKEN, token.as_str())])
            .map(|(k, v)| format!("<input type=\"hidden\" name=\"{}\" value=\"{}\">", esc(k), esc(v)))
            .collect()
    };
    let title = if p.admin() { "Permissions requested: accept for your organization" } else { "Permissions requested" };
    let list: String = perms.iter().map(|x| format!("<li>{}</li>", esc(x))).collect();
    let body = format!(
        "<h1>{title}</h1><p><strong id=\"app\">{name}</strong><br><span class=\"muted\">App ID <code>{id}</code></span></p>\
         <p>This app would like to:</p><ul id=\"permissions\">{list}</ul>\
         <form method=\"post\" action=\"/{tenant}/{path}\">{hidden}<fieldset><legend>Sign in as</legend>{users}</fieldset>\
         <p><button type=\"submit\" name=\"decision\" value=\"accept\" id=\"accept\">Accept</button>\
         <button type=\"submit\" name=\"decision\" value=\"cancel\" id=\"cancel\">Cancel</button></p></form>",
        title = esc(title),
        name = esc(p.client.name()),
        id = esc(&p.client.app_id),
        tenant = esc(&p.tenant),
        path = p.kind.path(),
    );
    page(StatusCode::OK, title, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_text_is_escaped() {
        assert_eq!(esc("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }
}
