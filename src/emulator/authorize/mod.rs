//! The browser endpoints: sign-in and consent (`/{tenant}/oauth2/authorize` v1,
//! `/{tenant}/oauth2/v2.0/authorize`, `/{tenant}/v2.0/adminconsent` and the older
//! `/{tenant}/adminconsent`), as PROTOCOL.md section 5b describes them.
//!
//! A GET shows a small HTML page (no script, nothing fetched from elsewhere): the app's name, the
//! permissions asked, the user to sign in as, and Accept and Cancel buttons that post the same
//! parameters back. The answer is a redirect to the registered reply URL, as Entra sends it:
//! `code`, `state`, `session_state`; or `admin_consent=True&tenant=...`; or `error` and
//! `error_description` with the AADSTS text. Errors that make the reply URL untrustworthy (no or
//! unknown `client_id`, a reply URL the app does not register, none registered) are shown on the
//! emulator's own page and never redirected. With `--auto-consent` a GET is answered with the
//! redirect at once, as if the first user (or the `login_hint` one) had clicked Accept.
//!
//! Hardening: the consent form carries a token bound to the page it came from (an HMAC over the
//! tenant, endpoint, parameters and an expiry, keyed by a secret drawn at start), so a form on
//! another site cannot post a consent (CSRF) and nothing is stored per page; every page forbids
//! framing (`X-Frame-Options: DENY`, `frame-ancestors 'none'`); sign-in parameters are bounded
//! ([`MAX_QUERY`] bytes in all, PKCE challenges as RFC 7636 shapes them) before anything of them
//! is kept with a code.

mod form;
mod page;

use form::{check_form_token, check_pkce, request_keys};
use page::{consent_page, error_page, esc, page};

use super::apps::{AccessKind, Api, App};
use super::errors::Refusal;
use super::tenant::{CodeGrant, User};
use super::token::{parse_form, parse_scope_resources, Asked, OIDC_SCOPES};
use super::{AppState, SharedState};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::Arc;

/// The most bytes of sign-in parameters read: the query of a GET, or the decoded parameters a
/// consent form posts back. Entra refuses an over-long query with 90015 and documents no limit;
/// 8 KiB is HTTP's customary bound on a request line (RFC 9110 section 4.1 asks for at least
/// 8000 octets), far above what MSAL, azure-identity or ASP.NET send.
pub const MAX_QUERY: usize = 8 * 1024;
/// The consent form's field carrying the page's token.
const FORM_TOKEN: &str = "form_token";
/// How long a consent page's form may be posted, seconds.
const FORM_LIFETIME: i64 = 3600;

/// Which endpoint was called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// `/oauth2/authorize`, `resource=`.
    AuthorizeV1,
    /// `/oauth2/v2.0/authorize`, `scope=`.
    AuthorizeV2,
    /// `/v2.0/adminconsent`.
    AdminConsent,
    /// `/adminconsent` (no v2.0).
    AdminConsentLegacy,
}

impl Kind {
    fn path(self) -> &'static str {
        match self {
            Kind::AuthorizeV1 => "oauth2/authorize",
            Kind::AuthorizeV2 => "oauth2/v2.0/authorize",
            Kind::AdminConsent => "v2.0/adminconsent",
            Kind::AdminConsentLegacy => "adminconsent",
        }
    }
    fn is_admin_consent(self) -> bool {
        matches!(self, Kind::AdminConsent | Kind::AdminConsentLegacy)
    }
}

/// A request that passed the checks that need no redirect.
struct Pending {
    kind: Kind,
    tenant: String,
    client: Arc<App>,
    redirect: String,
    /// `redirect_uri` as the request gave it (`None`: the registered one was used, v1).
    redirect_given: Option<String>,
    params: HashMap<String, String>,
}

impl Pending {
    fn param(&self, n: &str) -> Option<&str> {
        self.params.get(n).map(String::as_str)
    }
    /// An administrator consents: the admin-consent endpoints, or `prompt=admin_consent`.
    fn admin(&self) -> bool {
        self.kind.is_admin_consent() || self.param("prompt") == Some("admin_consent")
    }
}

/// What the authorize request asks for, once checked: the first resource named (the code's) and
/// any others, consented up front (the authorize leg may cover several resources).
struct Ask {
    api: Arc<Api>,
    asked: Asked,
    others: Vec<(Arc<Api>, Asked)>,
}

impl Ask {
    /// Every resource asked, the code's first.
    fn all(&self) -> impl Iterator<Item = (&Arc<Api>, &Asked)> {
        std::iter::once((&self.api, &self.asked)).chain(self.others.iter().map(|(a, s)| (a, s)))
    }
}

/// An answer shown on the emulator's own page (never redirected).
struct PageError {
    status: StatusCode,
    code: Option<u32>,
    text: String,
}

impl From<Refusal> for PageError {
    fn from(e: Refusal) -> Self {
        PageError { status: StatusCode::BAD_REQUEST, code: Some(e.code), text: e.text }
    }
}

/// The checks whose failure makes the reply URL untrustworthy, and so is shown on the page.
fn prepare(st: &AppState, tenant: &str, kind: Kind, params: HashMap<String, String>) -> Result<Pending, PageError> {
    st.check_tenant(tenant)?;
    // `resource` at v2: AADSTS901002 on Entra's own page (MSAL.NET issue 4918 quotes it).
    if kind == Kind::AuthorizeV2 && params.contains_key("resource") {
        return Err(Refusal::resource_parameter_not_supported().into());
    }
    // Only the v2 endpoint needs the tenant named (PROTOCOL 5b); at the older `/common/adminconsent`
    // the administrator signs in and the tenant is theirs, as in the consent document's example.
    if kind == Kind::AdminConsent && tenant.eq_ignore_ascii_case("common") {
        return Err(PageError {
            status: StatusCode::BAD_REQUEST,
            code: None,
            text: "Admin consent needs the tenant: use its id, one of its domains, or 'organizations' instead of \
                   'common'."
                .into(),
        });
    }
    let client_id = params.get("client_id").ok_or_else(|| Refusal::missing_parameter("client_id"))?;
    let client = st.registry.find(client_id).ok_or_else(|| Refusal::app_not_found(client_id, tenant))?;
    let given = params.get("redirect_uri").cloned();
    let redirect = match &given {
        Some(r) if client.has_reply_url(r) => r.clone(),
        Some(r) => return Err(Refusal::reply_url_not_registered(r, &client.app_id).into()),
        None => client.reply_urls.first().cloned().ok_or_else(Refusal::no_reply_url)?,
    };
    Ok(Pending { kind, tenant: tenant.to_string(), client, redirect, redirect_given: given, params })
}

/// The checks answered by an error redirect: what is asked, and whether it exists.
fn ask(st: &AppState, p: &Pending) -> Result<Ask, Refusal> {
    let scope = || p.param("scope").ok_or_else(|| Refusal::missing_parameter("scope"));
    let groups = match p.kind {
        Kind::AuthorizeV1 => vec![Asked {
            resource: p.param("resource").unwrap_or(super::token::GRAPH_APP_ID).to_string(),
            scopes: Vec::new(),
            default: true,
            oidc: vec!["openid".into()],
        }],
        // `scope` is required at `/v2.0/adminconsent` (Microsoft's admin consent documentation);
        // the older `/adminconsent` takes none: what the app is configured for (Graph's `.default`).
        Kind::AuthorizeV2 | Kind::AdminConsent => parse_scope_resources(scope()?)?,
        Kind::AdminConsentLegacy => {
            let graph_default = format!("{}/.default", super::token::GRAPH_APP_ID);
            parse_scope_resources(p.param("scope").unwrap_or(&graph_default))?
        }
    };
    if !p.kind.is_admin_consent() {
        let rt = p.param("response_type").ok_or_else(|| Refusal::missing_parameter("response_type"))?;
        if rt != "code" {
            return Err(Refusal::unsupported_response_type(rt));
        }
    }
    let check = |asked: Asked| {
        let api =
            st.resource(&asked.resource).ok_or_else(|| Refusal::resource_not_found(&asked.resource, &p.tenant))?;
        match asked.scopes.iter().find(|s| api.scope_by_value(s).is_none()) {
            Some(s) => Err(Refusal::unknown_scope(p.client.name(), s, &api.app_id)),
            None => Ok((api, asked)),
        }
    };
    let mut checked = groups.into_iter().map(check).collect::<Result<Vec<_>, _>>()?.into_iter();
    let (api, asked) = checked.next().ok_or_else(|| Refusal::invalid_scope(""))?;
    Ok(Ask { api, asked, others: checked.collect() })
}

/// A redirect to the reply URL with `pairs`, in the query (or the fragment with
/// `response_mode=fragment`). `form_post` is answered with a page whose button posts them, since
/// the emulator's pages run no script.
fn redirect(p: &Pending, pairs: &[(&str, String)]) -> Response {
    let Ok(mut url) = url::Url::parse(&p.redirect) else {
        return error_page(PageError {
            status: StatusCode::BAD_REQUEST,
            code: None,
            text: "The reply URL is not a URL.".into(),
        });
    };
    match p.param("response_mode") {
        Some("form_post") => {
            let fields: String = pairs
                .iter()
                .map(|(k, v)| format!("<input type=\"hidden\" name=\"{}\" value=\"{}\">", esc(k), esc(v)))
                .collect();
            let body = format!(
                "<h1>Signed in</h1><form method=\"post\" action=\"{}\">{fields}<button type=\"submit\" \
                 value=\"accept\">Continue</button></form>",
                esc(url.as_str())
            );
            page(StatusCode::OK, "Continue", &body)
        }
        Some("fragment") => {
            let frag: String = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())))
                .finish();
            url.set_fragment(Some(&frag));
            found(url.as_str())
        }
        _ => {
            url.query_pairs_mut().extend_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())));
            found(url.as_str())
        }
    }
}

fn found(location: &str) -> Response {
    let mut r = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store, no-cache"));
    r
}

fn timestamp() -> String {
    time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]Z"))
        .unwrap_or_default()
}

/// An error sent to the reply URL: `error`, `error_description`, `error_uri`, `state`.
fn error_redirect(p: &Pending, e: &Refusal, extra: &[(&str, String)]) -> Response {
    let mut pairs = vec![("error", e.error.to_string())];
    pairs.extend(extra.iter().cloned());
    let corr = uuid::Uuid::new_v4().to_string();
    pairs.push(("error_description", e.description(&uuid::Uuid::new_v4().to_string(), &corr, &timestamp())));
    pairs.push(("error_uri", format!("https://login.microsoftonline.com/error?code={}", e.code)));
    // "admin_consent: Will be set to True ... on an admin consent flow" (the admin consent
    // documentation; a real Cancel has it too, MicrosoftDocs/azure-docs issue 114009).
    if p.kind.is_admin_consent() {
        pairs.push(("admin_consent", "True".to_string()));
    }
    if let Some(s) = p.param("state") {
        pairs.push(("state", s.to_string()));
    }
    redirect(p, &pairs)
}

/// Accept: consent, then the redirect Entra sends.
fn accept(st: &AppState, p: &Pending, ask: Option<Ask>, user: &User) -> Response {
    if p.admin() {
        st.directory.admin_consent(&p.client, &st.registry);
    }
    match p.kind {
        Kind::AdminConsent => {
            let scope = p.param("scope").map(str::to_string).unwrap_or_default();
            let mut pairs = vec![("admin_consent", "True".to_string()), ("tenant", st.tenant.clone())];
            if !scope.is_empty() {
                pairs.push(("scope", scope));
            }
            if let Some(s) = p.param("state") {
                pairs.push(("state", s.to_string()));
            }
            redirect(p, &pairs)
        }
        Kind::AdminConsentLegacy => {
            let mut pairs = vec![("tenant", st.tenant.clone())];
            if let Some(s) = p.param("state") {
                pairs.push(("state", s.to_string()));
            }
            pairs.push(("admin_consent", "True".to_string()));
            redirect(p, &pairs)
        }
        Kind::AuthorizeV1 | Kind::AuthorizeV2 => {
            let Some(ask) = ask else { return consent_page(st, p, None) };
            let api = &ask.api;
            // Every resource named is consented up front; the code is for the first.
            for (other, asked) in &ask.others {
                st.directory.grant_scopes(&p.client.app_id, other, Some(&user.oid), &consented_values(p, other, asked));
            }
            let values = consented_values(p, api, &ask.asked);
            st.directory.grant_scopes(&p.client.app_id, api, Some(&user.oid), &values);
            let granted = st.directory.scopes(&p.client.app_id, api, &user.oid);
            let scopes: Vec<String> = if ask.asked.default {
                granted
            } else {
                granted
                    .into_iter()
                    .filter(|g| values.iter().any(|v| v.eq_ignore_ascii_case(g)) || OIDC_SCOPES.contains(&g.as_str()))
                    .collect()
            };
            let pkce = p
                .param("code_challenge")
                .map(|c| (c.to_string(), p.param("code_challenge_method").unwrap_or("plain").to_string()));
            let code = st.directory.issue_code(CodeGrant {
                client_id: p.client.app_id.clone(),
                redirect_uri: p.redirect_given.clone(),
                resource: ask.asked.resource.clone(),
                scopes,
                oidc: ask.asked.oidc.clone(),
                user_oid: user.oid.clone(),
                nonce: p.param("nonce").map(str::to_string),
                pkce,
                expires_at: crate::jwt::now_secs() + st.code_lifetime,
                redeemed: false,
            });
            let mut pairs = vec![("code", code)];
            if let Some(s) = p.param("state") {
                pairs.push(("state", s.to_string()));
            }
            pairs.push(("session_state", uuid::Uuid::new_v4().to_string()));
            if p.kind == Kind::AuthorizeV1 && p.admin() {
                pairs.push(("admin_consent", "True".to_string()));
            }
            redirect(p, &pairs)
        }
    }
}

/// What the user consents to on `api`: the named scopes (with `.default`, the app's configured
/// delegated permissions), and the OpenID scopes Graph exposes, which come with signing in.
fn consented_values(p: &Pending, api: &Api, asked: &Asked) -> Vec<String> {
    let mut values: Vec<String> = asked.scopes.clone();
    if asked.default {
        values.extend(
            p.client
                .required
                .iter()
                .filter(|r| r.kind == AccessKind::Scope && api.app_id.eq_ignore_ascii_case(&r.resource_app_id))
                .filter_map(|r| api.scope_by_id(&r.id).map(|s| s.value.clone())),
        );
    }
    values.extend(asked.oidc.iter().filter(|o| *o != "offline_access" && api.scope_by_value(o).is_some()).cloned());
    values
}

/// `prompt=none`: the code at once, or Entra's silent-sign-in errors (`login_required`,
/// `consent_required`). The emulator keeps no browser session: with `--auto-consent` its scripted
/// user (`login_hint`'s, else the first) is signed in; without it no one is. Consent is there when
/// each named scope (OpenID ones aside), or for `.default` some delegated permission, was granted.
fn silent(st: &AppState, p: &Pending, ask: Ask) -> Response {
    let signed_in = match (st.auto_consent, p.param("login_hint")) {
        (false, _) => None,
        (true, Some(hint)) => st.directory.user(hint),
        (true, None) => st.directory.users.first(),
    };
    let Some(user) = signed_in.cloned() else { return error_redirect(p, &Refusal::login_required(), &[]) };
    let consented = ask.all().all(|(api, asked)| {
        let granted = st.directory.scopes(&p.client.app_id, api, &user.oid);
        let has = |s: &String| OIDC_SCOPES.contains(&s.as_str()) || granted.iter().any(|g| g.eq_ignore_ascii_case(s));
        if asked.default {
            !granted.is_empty()
        } else {
            asked.scopes.iter().all(has)
        }
    });
    if !consented {
        return error_redirect(p, &Refusal::silent_consent_required(&p.client.app_id, p.client.name()), &[]);
    }
    accept(st, p, Some(ask), &user)
}

/// Cancel: `access_denied` with AADSTS65004 (and `error_subcode=cancel` on authorize).
fn cancel(p: &Pending) -> Response {
    let e = Refusal::consent_declined();
    if p.kind.is_admin_consent() {
        error_redirect(p, &e, &[])
    } else {
        error_redirect(p, &e, &[("error_subcode", "cancel".to_string())])
    }
}

/// One request to a browser endpoint: `decision` is `None` for a GET (show the page, or accept
/// at once with `--auto-consent`).
fn respond(
    st: &AppState,
    tenant: &str,
    kind: Kind,
    params: HashMap<String, String>,
    decision: Option<&str>,
) -> Response {
    let p = match prepare(st, tenant, kind, params) {
        Ok(p) => p,
        Err(e) => return error_page(e),
    };
    let ask = match ask(st, &p).and_then(|a| check_pkce(&p).map(|()| a)) {
        Ok(a) => a,
        // The admin-consent endpoints consent to what the app is configured for; a scope they
        // cannot read is reported the same way as on authorize.
        Err(e) => return error_redirect(&p, &e, &[]),
    };
    if decision.is_none() && !p.kind.is_admin_consent() && p.param("prompt") == Some("none") {
        return silent(st, &p, ask);
    }
    let chosen = p.param("user").or(p.param("login_hint"));
    let user = match chosen {
        Some(u) => st.directory.user(u).cloned(),
        None => st.directory.users.first().cloned(),
    };
    match (decision, st.auto_consent) {
        (Some("cancel"), _) => cancel(&p),
        (Some("accept"), _) | (None, true) => match user {
            Some(u) => accept(st, &p, Some(ask), &u),
            None => error_page(PageError {
                status: StatusCode::BAD_REQUEST,
                code: Some(50034),
                text: format!(
                    "The user account {} does not exist in the {} directory. To sign into this application, the \
                     account must be added to the directory.",
                    chosen.unwrap_or_default(),
                    p.tenant
                ),
            }),
        },
        _ => consent_page(st, &p, Some(&ask)),
    }
}

async fn get_kind(st: Arc<AppState>, tenant: String, kind: Kind, q: Option<String>) -> Response {
    super::blocking(move || {
        let q = q.unwrap_or_default();
        if q.len() > MAX_QUERY {
            return error_page(Refusal::query_too_long(MAX_QUERY).into());
        }
        respond(&st, &tenant, kind, parse_form(q.as_bytes()), None)
    })
    .await
}

async fn post_kind(st: Arc<AppState>, tenant: String, kind: Kind, body: Bytes) -> Response {
    super::blocking(move || {
        let params = parse_form(&body);
        // Decoded, the parameters a page's form posts back are never longer than its query was.
        let size: usize = request_keys(&params).iter().map(|k| k.len() + params[*k].len() + 2).sum();
        if size > MAX_QUERY {
            return error_page(Refusal::query_too_long(MAX_QUERY).into());
        }
        if let Err(e) = check_form_token(&st, &tenant, kind, &params) {
            return error_page(e);
        }
        let decision = params.get("decision").cloned();
        respond(&st, &tenant, kind, params, decision.as_deref())
    })
    .await
}

pub(super) async fn authorize_v1(State(st): SharedState, Path(t): Path<String>, RawQuery(q): RawQuery) -> Response {
    get_kind(st, t, Kind::AuthorizeV1, q).await
}
pub(super) async fn authorize_v2(State(st): SharedState, Path(t): Path<String>, RawQuery(q): RawQuery) -> Response {
    get_kind(st, t, Kind::AuthorizeV2, q).await
}
pub(super) async fn admin_consent(State(st): SharedState, Path(t): Path<String>, RawQuery(q): RawQuery) -> Response {
    get_kind(st, t, Kind::AdminConsent, q).await
}
pub(super) async fn admin_consent_legacy(
    State(st): SharedState,
    Path(t): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    get_kind(st, t, Kind::AdminConsentLegacy, q).await
}
pub(super) async fn decide_v1(State(st): SharedState, Path(t): Path<String>, body: Bytes) -> Response {
    post_kind(st, t, Kind::AuthorizeV1, body).await
}
pub(super) async fn decide_v2(State(st): SharedState, Path(t): Path<String>, body: Bytes) -> Response {
    post_kind(st, t, Kind::AuthorizeV2, body).await
}
pub(super) async fn decide_admin_consent(State(st): SharedState, Path(t): Path<String>, body: Bytes) -> Response {
    post_kind(st, t, Kind::AdminConsent, body).await
}
pub(super) async fn decide_admin_consent_legacy(
    State(st): SharedState,
    Path(t): Path<String>,
    body: Bytes,
) -> Response {
    post_kind(st, t, Kind::AdminConsentLegacy, body).await
}
