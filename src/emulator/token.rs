//! The token endpoints (v1 `/oauth2/token`, v2 `/oauth2/v2.0/token`): request checks, client
//! authentication (certificate assertion, or secret in the body or in `Authorization: Basic`, the
//! methods the discovery document advertises), and the grants: client credentials, authorization
//! code, refresh token and on-behalf-of (PROTOCOL.md sections 4, 5 and 5b).
//!
//! The token's shape is chosen by the resource, never by the endpoint: a resource whose manifest
//! asks for v2 tokens (`api.requestedAccessTokenVersion` 2) gets them from both endpoints, and
//! every other one, Microsoft Graph and the Office 365 Management APIs included, gets v1 tokens
//! (`aud` the identifier as requested, `sts.windows.net` issuer, `appid`) from both.
//!
//! Checks run in the order that leaks least: the assertion's key and signature are verified
//! before any of its claims is judged, so an unsigned or forged token learns nothing about what
//! else would have been accepted. One comparison comes first, as in Entra: an `iss` naming
//! another application than `client_id` is 700021 before any key is looked for (both values are
//! the caller's own, so it tells nothing about what is registered). The assertion's `aud` must
//! name the emulator's own configured base URL; the request's `Host` header plays no part.

use super::apps::{Api, App, IdTyp, TokenVersion};
use super::errors::{token_response_headers, Refusal, RequestLog};
use super::signins::{KeyKind, UsedCredential};
use super::tenant::{RefreshGrant, User};
use super::{AppState, EndpointVersion};
use crate::cert::SignatureAlg;
use crate::jwt::{self, dangerous};
use crate::manifest::KeyCredential;
use crate::secret::SecretString;
use crate::thumbprint::{b64url, hex_upper, sha256};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Arc;
use time::OffsetDateTime;

/// Allowed clock skew for `exp` and `nbf`, seconds (Entra allows five minutes).
pub const CLOCK_SKEW: i64 = 300;
/// Lifetime of app-only access tokens, seconds (Entra's `expires_in`).
pub const TOKEN_LIFETIME: i64 = 3599;
/// Entra back-dates `iat` and `nbf` by five minutes, for clients whose clocks run behind.
pub const BACKDATE: i64 = 300;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The on-behalf-of grant type.
pub(super) const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const GRAPH: &str = "https://graph.microsoft.com";
pub(super) const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";
/// OpenID Connect scopes: about the sign-in, not a resource.
pub(super) const OIDC_SCOPES: [&str; 4] = ["openid", "profile", "offline_access", "email"];

/// How the client proved itself: decides `appidacr`/`azpacr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ClientProof {
    Secret,
    Certificate,
}

impl ClientProof {
    fn acr(self) -> &'static str {
        match self {
            ClientProof::Secret => "1",
            ClientProof::Certificate => "2",
        }
    }
}

/// The `client-request-id` header, when it is a GUID (what Microsoft's libraries send).
pub(super) fn correlation_header(headers: &HeaderMap) -> Option<String> {
    headers
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| uuid::Uuid::parse_str(v).is_ok())
        .map(str::to_string)
}

/// A form body: Entra reads the first occurrence of a field; empty values count as missing.
pub(super) fn parse_form(body: &[u8]) -> HashMap<String, String> {
    let mut m = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        if !v.is_empty() {
            m.entry(k.into_owned()).or_insert_with(|| v.into_owned());
        }
    }
    m
}

/// One token request.
struct Req<'a> {
    st: &'a AppState,
    tenant: &'a str,
    version: EndpointVersion,
    /// The URLs an assertion's `aud` may name: the emulator's own base URLs with this path.
    endpoints: Vec<String>,
    form: HashMap<String, String>,
    /// The client's credential, once [`authenticate`] has accepted it: the token issued is a
    /// sign-in with it.
    signed_in: std::cell::RefCell<Option<(String, UsedCredential)>>,
}

impl Req<'_> {
    fn field(&self, name: &str) -> Option<&str> {
        self.form.get(name).map(String::as_str)
    }
    fn require(&self, name: &str) -> Result<&str, Refusal> {
        self.field(name).ok_or_else(|| Refusal::missing_parameter(name))
    }
}

/// Handles one token request at `path` (the request path, appended to the emulator's own base
/// URL to give the only `aud` an assertion may carry).
pub(super) fn handle(
    st: &AppState,
    tenant: &str,
    version: EndpointVersion,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let form = parse_form(body);
    let basic = basic_credentials(headers);
    let client_id = match &basic {
        Some(Ok((id, _))) => Some(id.as_str()),
        _ => form.get("client_id").map(String::as_str),
    }
    .map(|s| s.chars().take(64).collect::<String>());
    // MSAL sends `client-request-id` as a header; other clients put it in the form.
    let correlation = correlation_header(headers)
        .or_else(|| form.get("client-request-id").filter(|v| uuid::Uuid::parse_str(v).is_ok()).cloned());
    let endpoints = st.base_urls.iter().map(|b| format!("{b}{path}")).collect();
    let req = Req { st, tenant, version, endpoints, form, signed_in: Default::default() };
    match issue(&req, basic) {
        Ok(body) => {
            let request_id = uuid::Uuid::new_v4().to_string();
            record_sign_in(&req, &request_id);
            let mut resp = Json(body).into_response();
            token_response_headers(&mut resp, &request_id);
            resp.extensions_mut().insert(RequestLog { client_id, code: None });
            resp
        }
        Err(e) => e.into_response(correlation, client_id),
    }
}

fn issue(req: &Req, basic: Option<Result<(String, SecretString), Refusal>>) -> Result<Value, Refusal> {
    req.st.check_tenant(req.tenant)?;
    // The v2 endpoint names resources in `scope` only; `resource` is refused whatever the grant.
    if req.version == EndpointVersion::V2 && req.field("resource").is_some() {
        return Err(Refusal::resource_parameter_not_supported());
    }
    let grant_type = req.require("grant_type")?;
    let basic = basic.transpose()?;
    let client_id = match &basic {
        Some((id, _)) => {
            if req.field("client_assertion").is_some() || req.field("client_secret").is_some() {
                return Err(Refusal::malformed_request(
                    "The client authenticated both with an Authorization: Basic header and with a client_assertion or \
                     client_secret in the request body; use one method only.",
                ));
            }
            if req.field("client_id").is_some_and(|f| !f.eq_ignore_ascii_case(id)) {
                return Err(Refusal::malformed_request(
                    "The 'client_id' parameter in the request body does not match the client id in the \
                     Authorization: Basic header.",
                ));
            }
            id.clone()
        }
        None => req.require("client_id")?.to_string(),
    };
    let secret = basic.as_ref().map(|(_, s)| s.expose().to_string());
    let auth = || authenticate(req, &client_id, secret.as_deref());
    match grant_type {
        "client_credentials" => client_credentials(req, auth),
        "authorization_code" => authorization_code(req, auth),
        "refresh_token" => refresh_token(req, auth),
        JWT_BEARER_GRANT => on_behalf_of(req, auth),
        other => {
            // As before the user flows existed: the resource is asked for first.
            match req.version {
                EndpointVersion::V1 => {
                    req.require("resource")?;
                }
                EndpointVersion::V2 => {
                    req.require("scope")?;
                }
            }
            Err(Refusal::unsupported_grant_type(other))
        }
    }
}

/// Authenticates the client: the app must exist, and prove itself with a certificate assertion
/// or the secret.
fn authenticate(req: &Req, client_id: &str, basic_secret: Option<&str>) -> Result<(Arc<App>, ClientProof), Refusal> {
    let st = req.st;
    let app = st.registry.find(client_id).ok_or_else(|| Refusal::app_not_found(client_id, req.tenant))?;
    let auth = if let Some(assertion) = req.field("client_assertion") {
        match req.field("client_assertion_type") {
            Some(ASSERTION_TYPE) => {}
            Some(_) => return Err(Refusal::malformed_jwt("Invalid client_assertion_type.")),
            None => return Err(Refusal::missing_parameter("client_assertion_type")),
        }
        let now = crate::dates::now();
        let key = verify_assertion_at(&app.credentials, assertion, client_id, &req.endpoints, now)?;
        *req.signed_in.borrow_mut() = key.key_id.clone().map(|key_id| {
            let used = UsedCredential {
                key_id,
                kind: KeyKind::Certificate,
                start: key.effective_start(),
                end: key.effective_end(),
            };
            (app.app_id.clone(), used)
        });
        ClientProof::Certificate
    } else if let Some(secret) = basic_secret.or(req.field("client_secret")) {
        // The emulator-wide `--secret-env` secret (no credential of the app: nothing recorded),
        // or one added to this app by addPassword.
        let shared = st.secret.as_ref().is_some_and(|s| constant_time_eq(s.expose().as_bytes(), secret.as_bytes()));
        let own = if shared {
            None
        } else {
            let used = super::graph::passwords::matching_secret(&app, secret, crate::dates::now());
            Some(used.ok_or_else(|| Refusal::bad_secret(client_id))?)
        };
        *req.signed_in.borrow_mut() = own.map(|used| (app.app_id.clone(), used));
        ClientProof::Secret
    } else {
        return Err(Refusal::missing_credential());
    };
    Ok((app, auth))
}

fn client_credentials(
    req: &Req,
    auth: impl Fn() -> Result<(Arc<App>, ClientProof), Refusal>,
) -> Result<Value, Refusal> {
    let resource = match req.version {
        EndpointVersion::V1 => req.require("resource")?.to_string(),
        EndpointVersion::V2 => resource_from_scope(req.require("scope")?)?,
    };
    // An app-only token is for one tenant; `common` and `organizations` name none.
    if super::is_multi_tenant(req.tenant) {
        return Err(Refusal::no_tenant_information());
    }
    let (app, auth) = auth()?;
    let api = req.st.resource(&resource).ok_or_else(|| Refusal::resource_not_found(&resource, req.tenant))?;
    let roles = req.st.roles_for(&api, &app.app_id);
    let m = mint(req.st, &app, auth, &api, &resource, Subject::App { roles })?;
    Ok(app_only_body(req.version, &m, &resource))
}

/// A signed access token and its times.
struct Minted {
    token: String,
    /// Issue time as claimed (`iat` = `nbf`, back-dated).
    nbf: i64,
    exp: i64,
    /// `expires_in`: seconds from now until `exp`.
    expires_in: i64,
}

/// Whom a token is about.
enum Subject<'a> {
    /// The client itself (client credentials).
    App { roles: Vec<String> },
    /// A signed-in user, with the delegated scopes granted.
    User { user: &'a User, scopes: Vec<String> },
}

/// `n` random bytes, base64url: the opaque values Entra puts in `uti`, `aio`, `rh` and Graph's
/// `nonce` header.
fn opaque(n: usize) -> String {
    use rand::RngCore;
    let mut b = vec![0u8; n];
    rand::thread_rng().fill_bytes(&mut b);
    b64url(&b)
}

fn uti() -> String {
    opaque(16)
}

/// The opaque claims Entra puts in every token it issues, access and ID tokens alike (the
/// access-token claims reference lists `aio` and `rh` as internal claims resources must not
/// use): random here, so that nothing can depend on their content.
fn insert_opaque_claims(c: &mut Map<String, Value>) {
    c.insert("aio".into(), json!(opaque(48)));
    c.insert("rh".into(), json!(format!("0.{}.", opaque(40))));
}

/// `sub` of user tokens: pairwise, so that two apps cannot correlate a user by it (`oid` is
/// the same everywhere).
fn pairwise_sub(user: &User, app_id: &str) -> String {
    b64url(&sha256(format!("keycred-emulator sub {} {}", user.oid, app_id.to_ascii_lowercase()).as_bytes()))
}

fn v1_issuer(tid: &str) -> String {
    format!("https://sts.windows.net/{tid}/")
}
fn v2_issuer(tid: &str) -> String {
    format!("https://login.microsoftonline.com/{tid}/v2.0")
}

/// Signs `claims` with the tenant's key, header `typ`, `alg`, (`x5t` for v1,) `kid`. A Microsoft
/// Graph token (`graph`) also carries a `nonce` header and is signed over the header in which
/// that nonce is replaced by its base64url SHA-256, as Graph's own tokens are: a third party that
/// verifies it as an ordinary JWT fails, as against Entra, where Microsoft's access-token
/// documentation warns that tokens for Microsoft's APIs "can use a special format that will not
/// validate as a JWT" (and AzureAD identitymodel issue 609 shows the nonce transform).
fn sign(st: &AppState, v1_header: bool, graph: bool, claims: Map<String, Value>) -> Result<String, Refusal> {
    let header = |nonce: Option<&str>| {
        let mut h = Map::new();
        h.insert("typ".into(), json!("JWT"));
        if let Some(n) = nonce {
            h.insert("nonce".into(), json!(n));
        }
        h.insert("alg".into(), json!(SignatureAlg::Rs256.jose()));
        if v1_header {
            h.insert("x5t".into(), json!(st.kid));
        }
        h.insert("kid".into(), json!(st.kid));
        b64url(&serde_json::to_vec(&Value::Object(h)).unwrap_or_default())
    };
    let nonce = graph.then(|| opaque(32));
    let hashed = nonce.as_deref().map(|n| b64url(&sha256(n.as_bytes())));
    let payload = b64url(&serde_json::to_vec(&Value::Object(claims)).unwrap_or_default());
    let signed = format!("{}.{payload}", header(hashed.as_deref()));
    let signature = st
        .signing_key
        .sign(SignatureAlg::Rs256, signed.as_bytes())
        .map_err(|_| Refusal::malformed_jwt("The emulator could not sign the token."))?;
    Ok(format!("{}.{payload}.{}", header(nonce.as_deref()), b64url(&signature)))
}

/// Whether `d` bears this tenant's signature, as Entra and Graph check the tokens they issued:
/// over the header as sent, or, for a token with a `nonce` header (Graph's), over the header
/// whose nonce is replaced by its base64url SHA-256 (see [`sign`]).
pub(super) fn signed_by_tenant(st: &AppState, d: &jwt::Decoded) -> bool {
    let public = st.signing_cert.rsa_public_key().unwrap_or_default();
    if d.alg() != Some("RS256") {
        return false;
    }
    let Some(nonce) = d.header.get("nonce").and_then(Value::as_str) else {
        return d.verify(SignatureAlg::Rs256, public);
    };
    let mut header = d.header.clone();
    header.insert("nonce".into(), json!(b64url(&sha256(nonce.as_bytes()))));
    let payload = d.signing_input.split_once('.').map_or("", |(_, p)| p);
    let Ok(h) = serde_json::to_vec(&Value::Object(header)) else { return false };
    SignatureAlg::Rs256.verify(public, format!("{}.{payload}", b64url(&h)).as_bytes(), &d.signature)
}

/// Whether a token this tenant issued is app-only: `idtyp` says so when the resource asked for
/// it; otherwise a user token has a delegated `scp` or a user's name claims (a user token
/// without any delegated permission has no `scp`), and an app-only token neither.
pub(super) fn is_app_only(d: &jwt::Decoded) -> bool {
    match d.claim_str("idtyp") {
        Some(t) => t == "app",
        None => {
            let user_claims = ["upn", "preferred_username", "unique_name"].iter().any(|n| d.claim_str(n).is_some());
            d.claim_str("scp").is_none() && !user_claims
        }
    }
}

/// An unsigned JWT (`alg` `none`, empty signature), the v1 endpoint's ID token: Microsoft's v1
/// authorization code documentation describes it as "An unsigned JSON Web Token (JWT)" and
/// shows the header `{"typ": "JWT", "alg": "none"}`.
fn unsigned(claims: Map<String, Value>) -> String {
    let header = json!({"typ": "JWT", "alg": "none"});
    let part = |v: &Value| b64url(&serde_json::to_vec(v).unwrap_or_default());
    format!("{}.{}.", part(&header), part(&Value::Object(claims)))
}

/// Issues an access token for `api` (named `requested` in the request) to `client`, in the
/// shape the resource takes.
fn mint(
    st: &AppState,
    client: &App,
    auth: ClientProof,
    api: &Api,
    requested: &str,
    subject: Subject,
) -> Result<Minted, Refusal> {
    let now = jwt::now_secs();
    let lifetime = lifetime(st, &subject);
    let (nbf, exp) = (now - BACKDATE, now + lifetime);
    let tid = &st.tenant;
    let v1 = api.token_version == TokenVersion::V1;
    let mut c = Map::new();
    // v1 tokens name the resource as it was asked for (URI or GUID); v2 tokens by its app id.
    let aud = if v1 { requested.to_string() } else { api.app_id.clone() };
    c.insert("aud".into(), json!(aud));
    c.insert("iss".into(), json!(if v1 { v1_issuer(tid) } else { v2_issuer(tid) }));
    c.insert("iat".into(), json!(nbf));
    c.insert("nbf".into(), json!(nbf));
    c.insert("exp".into(), json!(exp));
    insert_opaque_claims(&mut c);
    if let Some(t) = idtyp(api, &subject) {
        c.insert("idtyp".into(), json!(t));
    }
    match &subject {
        Subject::App { roles } => {
            if v1 {
                c.insert("appid".into(), json!(client.app_id));
                c.insert("appidacr".into(), json!(auth.acr()));
                c.insert("idp".into(), json!(v1_issuer(tid)));
            } else {
                c.insert("azp".into(), json!(client.app_id));
                c.insert("azpacr".into(), json!(auth.acr()));
            }
            c.insert("oid".into(), json!(client.sp_object_id));
            if !roles.is_empty() {
                c.insert("roles".into(), json!(roles));
            }
            c.insert("sub".into(), json!(client.sp_object_id));
        }
        Subject::User { user, scopes } => {
            if v1 {
                c.insert("acr".into(), json!("1"));
                c.insert("amr".into(), json!(["pwd"]));
                c.insert("appid".into(), json!(client.app_id));
                c.insert("appidacr".into(), json!(auth.acr()));
                let (given, family) = user.given_family();
                c.insert("family_name".into(), json!(family));
                c.insert("given_name".into(), json!(given));
            } else {
                c.insert("azp".into(), json!(client.app_id));
                c.insert("azpacr".into(), json!(auth.acr()));
            }
            c.insert("name".into(), json!(user.name));
            c.insert("oid".into(), json!(user.oid));
            if !v1 {
                c.insert("preferred_username".into(), json!(user.upn));
            }
            // No delegated permission (an app whose permissions on the resource are all
            // application roles, consented by an administrator): no `scp` claim, never an empty one.
            if !scopes.is_empty() {
                c.insert("scp".into(), json!(scopes.join(" ")));
            }
            c.insert("sub".into(), json!(pairwise_sub(user, &client.app_id)));
            if v1 {
                c.insert("unique_name".into(), json!(user.upn));
                c.insert("upn".into(), json!(user.upn));
            }
        }
    }
    c.insert("tid".into(), json!(tid));
    c.insert("uti".into(), json!(uti()));
    c.insert("ver".into(), json!(if v1 { "1.0" } else { "2.0" }));
    let graph = api.app_id.eq_ignore_ascii_case(GRAPH_APP_ID);
    Ok(Minted { token: sign(st, v1, graph, c)?, nbf, exp, expires_in: lifetime })
}

/// How long a token lives: app-only tokens 3599 s; user tokens a random 60 to 90 minutes, as
/// Entra's do (unless the configuration fixes it, for tests of expiry).
fn lifetime(st: &AppState, subject: &Subject) -> i64 {
    match subject {
        Subject::App { .. } => TOKEN_LIFETIME,
        Subject::User { .. } => st.user_token_lifetime.unwrap_or_else(|| {
            use rand::Rng;
            rand::thread_rng().gen_range(3600..=5400)
        }),
    }
}

/// The `idtyp` claim of a token for `api`: only when the resource asks for the optional claim
/// (`optionalClaims.accessToken`), `app` in app-only tokens and, with `include_user_token`,
/// `user` in user tokens (Microsoft's optional-claims reference).
fn idtyp(api: &Api, subject: &Subject) -> Option<&'static str> {
    match (subject, api.idtyp) {
        (Subject::App { .. }, IdTyp::AppOnly | IdTyp::AppAndUser) => Some("app"),
        (Subject::User { .. }, IdTyp::AppAndUser) => Some("user"),
        _ => None,
    }
}

/// An ID token for `user` signed in to `client`: its version follows the endpoint (ID tokens
/// are the client's, not a resource's).
fn id_token(
    st: &AppState,
    version: EndpointVersion,
    client: &App,
    user: &User,
    nonce: Option<&str>,
) -> Result<String, Refusal> {
    let now = jwt::now_secs();
    let tid = &st.tenant;
    let v1 = version == EndpointVersion::V1;
    let mut c = Map::new();
    c.insert("aud".into(), json!(client.app_id));
    c.insert("iss".into(), json!(if v1 { v1_issuer(tid) } else { v2_issuer(tid) }));
    c.insert("iat".into(), json!(now - BACKDATE));
    c.insert("nbf".into(), json!(now - BACKDATE));
    c.insert("exp".into(), json!(now + 3600));
    insert_opaque_claims(&mut c);
    if v1 {
        c.insert("amr".into(), json!(["pwd"]));
        let (given, family) = user.given_family();
        c.insert("family_name".into(), json!(family));
        c.insert("given_name".into(), json!(given));
    }
    c.insert("name".into(), json!(user.name));
    if let Some(n) = nonce {
        c.insert("nonce".into(), json!(n));
    }
    c.insert("oid".into(), json!(user.oid));
    if !v1 {
        c.insert("preferred_username".into(), json!(user.upn));
    }
    c.insert("sub".into(), json!(pairwise_sub(user, &client.app_id)));
    c.insert("tid".into(), json!(tid));
    if v1 {
        c.insert("unique_name".into(), json!(user.upn));
        c.insert("upn".into(), json!(user.upn));
    }
    c.insert("uti".into(), json!(uti()));
    c.insert("ver".into(), json!(if v1 { "1.0" } else { "2.0" }));
    // The v1 endpoint's ID tokens are unsigned, as Microsoft's v1 protocol documentation shows
    // them; v2's are signed.
    if v1 {
        Ok(unsigned(c))
    } else {
        sign(st, false, false, c)
    }
}

fn app_only_body(version: EndpointVersion, m: &Minted, resource: &str) -> Value {
    match version {
        EndpointVersion::V1 => json!({
            "token_type": "Bearer",
            "expires_in": m.expires_in.to_string(),
            "ext_expires_in": m.expires_in.to_string(),
            "expires_on": m.exp.to_string(),
            "not_before": m.nbf.to_string(),
            "resource": resource,
            "access_token": m.token,
        }),
        EndpointVersion::V2 => json!({
            "token_type": "Bearer",
            "expires_in": m.expires_in,
            "ext_expires_in": m.expires_in,
            "access_token": m.token,
        }),
    }
}

/// What a user-flow request asks for: one resource (as named), its delegated scope values (or
/// `.default`), and the OpenID scopes.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Asked {
    /// The resource as named: a URI or GUID, or Graph's GUID for bare scope names.
    pub resource: String,
    /// Scope values asked on it; empty with `.default`.
    pub scopes: Vec<String>,
    /// `.default` was asked: every permission consented.
    pub default: bool,
    /// `openid`, `profile`, `email`, `offline_access` as asked.
    pub oidc: Vec<String>,
}

impl Asked {
    /// Whether the `scope` parameter of a v2 answer shows the scopes with a resource prefix.
    fn prefix(&self) -> Option<&str> {
        (!self.resource.eq_ignore_ascii_case(GRAPH_APP_ID)).then_some(self.resource.as_str())
    }
}

/// The OpenID scopes of a `scope` parameter, once each (they are kept with the refresh token).
fn oidc_scopes(scope: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for o in scope.split_whitespace().filter_map(|s| OIDC_SCOPES.iter().find(|o| o.eq_ignore_ascii_case(s))) {
        if !out.iter().any(|x| x == o) {
            out.push(o.to_string());
        }
    }
    out
}

/// Splits a v2 `scope` parameter into what it asks of each resource, in the order they are
/// first named (PROTOCOL.md section 5b): `{resource}/{value}`, `{resource}/.default`, bare values
/// (Microsoft Graph's), and OpenID scopes (kept with every resource). `.default` beside any
/// named scope is 70011, as Entra answers (".default scope can't be combined with
/// resource-specific scopes": oauth2-proxy issue 2158, MSAL.js issues 1063 and 4071). With only
/// OpenID scopes, the resource is Microsoft Graph, as Entra does. The authorize leg may name
/// several resources (Microsoft's authorization code documentation: "For the /authorize leg of
/// the request, this parameter can cover multiple resources"); the token leg takes one
/// ([`parse_user_scope`]).
pub(super) fn parse_scope_resources(scope: &str) -> Result<Vec<Asked>, Refusal> {
    let mut groups: Vec<Asked> = Vec::new();
    let mut oidc = Vec::new();
    for s in scope.split_whitespace() {
        if let Some(o) = OIDC_SCOPES.iter().find(|o| o.eq_ignore_ascii_case(s)) {
            // Once each: what is asked is kept with the code and the refresh token.
            if !oidc.iter().any(|x| x == o) {
                oidc.push(o.to_string());
            }
            continue;
        }
        let (r, value) = match s.rfind('/') {
            // `https://x//.default` names `https://x/`.
            Some(i) => (&s[..i], &s[i + 1..]),
            None => (GRAPH_APP_ID, s),
        };
        if r.is_empty() || value.is_empty() {
            return Err(Refusal::invalid_scope(scope));
        }
        let same = |g: &Asked| {
            same_resource(&g.resource, r)
                || g.resource.trim_end_matches('/').eq_ignore_ascii_case(r.trim_end_matches('/'))
        };
        let group = match groups.iter().position(same) {
            Some(i) => &mut groups[i],
            None => {
                groups.push(Asked { resource: r.to_string(), scopes: Vec::new(), default: false, oidc: Vec::new() });
                groups.last_mut().expect("just pushed")
            }
        };
        if value == ".default" {
            group.default = true;
        } else {
            group.scopes.push(value.to_string());
        }
    }
    if groups.iter().any(|g| g.default) && groups.iter().any(|g| !g.scopes.is_empty()) {
        return Err(Refusal::default_combined(scope));
    }
    if groups.is_empty() {
        // Only OpenID scopes: a Microsoft Graph token carrying them.
        let scopes = oidc.iter().filter(|o| *o != "offline_access").cloned().collect();
        groups.push(Asked { resource: GRAPH_APP_ID.to_string(), scopes, default: false, oidc: Vec::new() });
    }
    for g in &mut groups {
        g.oidc = oidc.clone();
    }
    Ok(groups)
}

/// The `scope` of a token request (code, refresh, on-behalf-of): one resource (70011 when it
/// names several, the token leg being single-resource), as [`parse_scope_resources`] reads it.
pub(super) fn parse_user_scope(scope: &str) -> Result<Asked, Refusal> {
    let mut groups = parse_scope_resources(scope)?;
    if groups.len() > 1 {
        return Err(Refusal::several_resources(scope));
    }
    Ok(groups.remove(0))
}

/// The scopes a user token carries: with `.default` every scope consented; otherwise the
/// asked ones, each of which must be consented (65001 otherwise). Unknown scope values: 650053.
fn consented_scopes(
    st: &AppState,
    client: &App,
    api: &Api,
    user: &User,
    asked: &Asked,
) -> Result<Vec<String>, Refusal> {
    let granted = st.directory.scopes(&client.app_id, api, &user.oid);
    if asked.default {
        if granted.is_empty() {
            return Err(Refusal::consent_required(&client.app_id, client.name()));
        }
        return Ok(granted);
    }
    let mut out = Vec::new();
    for s in &asked.scopes {
        let known = api.scope_by_value(s).ok_or_else(|| Refusal::unknown_scope(client.name(), s, &api.app_id))?;
        if !granted.iter().any(|g| g.eq_ignore_ascii_case(&known.value)) {
            return Err(Refusal::consent_required(&client.app_id, client.name()));
        }
        if !out.contains(&known.value) {
            out.push(known.value.clone());
        }
    }
    Ok(out)
}

/// The answer to a user flow (code, refresh, on-behalf-of).
#[allow(clippy::too_many_arguments)]
fn user_body(
    req: &Req,
    client: &App,
    auth: ClientProof,
    api: &Api,
    requested: &str,
    user: &User,
    scopes: Vec<String>,
    oidc: &[String],
    refresh: Option<RefreshGrant>,
    nonce: Option<&str>,
    prefix: Option<&str>,
) -> Result<Value, Refusal> {
    let st = req.st;
    let v1 = req.version == EndpointVersion::V1;
    // v2 names each scope with its resource (Graph's bare); v1 lists the bare values, as the
    // Office 365 Management API documentation shows a v1 answer ("scope":"ActivityFeed.Read
    // ActivityReports.Read ServiceHealth.Read" beside "resource":"https://manage.office.com").
    let shown: Vec<String> = scopes
        .iter()
        .map(|s| match prefix {
            Some(p) if !v1 && !OIDC_SCOPES.contains(&s.as_str()) => format!("{}/{s}", p.trim_end_matches('/')),
            _ => s.clone(),
        })
        .collect();
    let m = mint(st, client, auth, api, requested, Subject::User { user, scopes })?;
    let mut body = if v1 {
        json!({
            "token_type": "Bearer",
            "scope": shown.join(" "),
            "expires_in": m.expires_in.to_string(),
            "ext_expires_in": m.expires_in.to_string(),
            "expires_on": m.exp.to_string(),
            "not_before": m.nbf.to_string(),
            "resource": requested,
            "access_token": m.token,
        })
    } else {
        let mut all = shown.clone();
        all.extend(oidc.iter().filter(|o| !shown.contains(o)).cloned());
        json!({
            "token_type": "Bearer",
            "scope": all.join(" "),
            "expires_in": m.expires_in,
            "ext_expires_in": m.expires_in,
            "access_token": m.token,
        })
    };
    let o = body.as_object_mut().expect("object");
    // v1 always returns a refresh token and an ID token; v2 only when offline_access and
    // openid were asked.
    let wants = |s: &str| oidc.iter().any(|o| o == s);
    if let Some(g) = refresh.filter(|_| v1 || wants("offline_access")) {
        o.insert("refresh_token".into(), json!(st.directory.issue_refresh(g)));
    }
    if v1 || wants("openid") {
        o.insert("id_token".into(), json!(id_token(st, req.version, client, user, nonce)?));
    }
    if req.field("client_info") == Some("1") {
        let info = json!({"uid": user.oid, "utid": st.tenant}).to_string();
        o.insert("client_info".into(), json!(b64url(info.as_bytes())));
    }
    Ok(body)
}

fn authorization_code(
    req: &Req,
    auth: impl Fn() -> Result<(Arc<App>, ClientProof), Refusal>,
) -> Result<Value, Refusal> {
    let st = req.st;
    let code = req.require("code")?;
    let (client, auth) = auth()?;
    let grant = st.directory.redeem_code(code).ok_or_else(Refusal::bad_code)?;
    if !grant.client_id.eq_ignore_ascii_case(&client.app_id) {
        return Err(Refusal::bad_code());
    }
    if jwt::now_secs() >= grant.expires_at {
        return Err(Refusal::code_expired());
    }
    if grant.redeemed {
        return Err(Refusal::code_redeemed());
    }
    match (&grant.redirect_uri, req.field("redirect_uri")) {
        (Some(want), Some(got)) if !super::apps::same_reply_url(want, got) => {
            return Err(Refusal::redirect_mismatch(got, want))
        }
        (Some(_), None) => return Err(Refusal::missing_parameter("redirect_uri")),
        (None, Some(got)) if !client.has_reply_url(got) => {
            return Err(Refusal::reply_url_not_registered(got, &client.app_id))
        }
        _ => {}
    }
    if !pkce_verified(grant.pkce.as_ref(), req.field("code_verifier")) {
        return Err(Refusal::pkce_mismatch());
    }
    let user = st.directory.user(&grant.user_oid).ok_or_else(Refusal::bad_code)?.clone();
    let asked = token_leg_resource(req, &grant.oidc)?;
    let requested = asked.as_ref().map_or_else(|| grant.resource.clone(), |a| a.resource.clone());
    let api = st.resource(&requested).ok_or_else(|| Refusal::resource_not_found(&requested, req.tenant))?;
    let scopes = match &asked {
        Some(a) if !(same_resource(&requested, &grant.resource) || api.is_named(&grant.resource)) => {
            consented_scopes(st, &client, &api, &user, a)?
        }
        _ => grant.scopes.clone(),
    };
    let refresh = RefreshGrant {
        client_id: client.app_id.clone(),
        user_oid: user.oid.clone(),
        resource: requested.clone(),
        scopes: scopes.clone(),
        oidc: grant.oidc.clone(),
    };
    let prefix = (!requested.eq_ignore_ascii_case(GRAPH_APP_ID)).then_some(requested.as_str());
    user_body(
        req,
        &client,
        auth,
        &api,
        &requested,
        &user,
        scopes,
        &grant.oidc,
        Some(refresh),
        grant.nonce.as_deref(),
        prefix,
    )
}

/// The resource a code exchange names (v1 `resource`, v2 `scope`), when it names one; by default
/// the code is for the authorize request's first. Another one must have been consented, as the
/// authorize leg may cover several resources and the refresh token is multi-resource in Entra.
fn token_leg_resource(req: &Req, oidc: &[String]) -> Result<Option<Asked>, Refusal> {
    Ok(match (req.version, req.field("resource"), req.field("scope")) {
        (EndpointVersion::V1, Some(r), _) => {
            Some(Asked { resource: r.to_string(), scopes: Vec::new(), default: true, oidc: oidc.to_vec() })
        }
        (EndpointVersion::V2, _, Some(s)) if s.split_whitespace().any(|x| !OIDC_SCOPES.contains(&x)) => {
            Some(parse_user_scope(s)?)
        }
        _ => None,
    })
}

/// Whether a PKCE value (`code_verifier`, or a `code_challenge`) has RFC 7636's form: 43 to 128
/// characters of the unreserved set (`A-Z a-z 0-9 - . _ ~`).
pub(super) fn is_pkce_value(v: &str) -> bool {
    (43..=128).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// Whether the token request's `code_verifier` answers the code's PKCE challenge. A code issued
/// without a challenge takes no verifier: RFC 9700 section 4.8.2 has the server refuse one, so
/// that an attacker cannot strip the challenge from a victim's authorization request (a PKCE
/// downgrade), and Entra answers 501481 to a verifier sent for such a code (a client that sent
/// `code_verifier=decoy` without a challenge: get-convex/convex-auth issue 457).
fn pkce_verified(challenge: Option<&(String, String)>, verifier: Option<&str>) -> bool {
    match (challenge, verifier) {
        (None, None) => true,
        (None, Some(_)) | (Some(_), None) => false,
        (Some((challenge, method)), Some(v)) => {
            is_pkce_value(v)
                && match method.as_str() {
                    "plain" => v == challenge,
                    _ => b64url(&sha256(v.as_bytes())) == *challenge,
                }
        }
    }
}

fn refresh_token(req: &Req, auth: impl Fn() -> Result<(Arc<App>, ClientProof), Refusal>) -> Result<Value, Refusal> {
    let st = req.st;
    let rt = req.require("refresh_token")?;
    let (client, auth) = auth()?;
    let grant = st.directory.refresh_grant(rt).ok_or_else(Refusal::bad_refresh_token)?;
    if !grant.client_id.eq_ignore_ascii_case(&client.app_id) {
        return Err(Refusal::bad_refresh_token());
    }
    let user = st.directory.user(&grant.user_oid).ok_or_else(Refusal::bad_refresh_token)?.clone();
    let asked = match (req.version, req.field("scope"), req.field("resource")) {
        (EndpointVersion::V2, Some(s), _) => parse_user_scope(s)?,
        // The code's own resource: what the code exchange gave (as `authorization_code` does),
        // each scope still consented; another resource: everything consented on it.
        (EndpointVersion::V1, _, Some(r)) if same_resource(r, &grant.resource) => {
            Asked { resource: r.to_string(), scopes: grant.scopes.clone(), default: false, oidc: grant.oidc.clone() }
        }
        (EndpointVersion::V1, _, Some(r)) => {
            Asked { resource: r.to_string(), scopes: Vec::new(), default: true, oidc: grant.oidc.clone() }
        }
        _ => Asked {
            resource: grant.resource.clone(),
            scopes: grant.scopes.clone(),
            default: false,
            oidc: grant.oidc.clone(),
        },
    };
    let api = st.resource(&asked.resource).ok_or_else(|| Refusal::resource_not_found(&asked.resource, req.tenant))?;
    let scopes = consented_scopes(st, &client, &api, &user, &asked)?;
    let oidc = if asked.oidc.is_empty() { grant.oidc.clone() } else { asked.oidc.clone() };
    let refresh = RefreshGrant {
        client_id: client.app_id.clone(),
        user_oid: user.oid.clone(),
        resource: asked.resource.clone(),
        scopes: scopes.clone(),
        oidc: oidc.clone(),
    };
    user_body(req, &client, auth, &api, &asked.resource, &user, scopes, &oidc, Some(refresh), None, asked.prefix())
}

/// Entra's timestamp style for OBO time errors (`2024-01-31T12:00:00.0000000Z`).
fn obo_time(secs: f64) -> String {
    entra_time(secs)
}

fn on_behalf_of(req: &Req, auth: impl Fn() -> Result<(Arc<App>, ClientProof), Refusal>) -> Result<Value, Refusal> {
    let st = req.st;
    if req.require("requested_token_use")? != "on_behalf_of" {
        return Err(Refusal::unsupported_grant_type(&format!(
            "{JWT_BEARER_GRANT} with requested_token_use={}",
            req.field("requested_token_use").unwrap_or_default()
        )));
    }
    let assertion = req.require("assertion")?;
    let asked = match req.version {
        EndpointVersion::V2 => parse_user_scope(req.require("scope")?)?,
        EndpointVersion::V1 => Asked {
            resource: req.require("resource")?.to_string(),
            scopes: Vec::new(),
            default: true,
            oidc: req.field("scope").map(oidc_scopes).unwrap_or_default(),
        },
    };
    let (client, auth) = auth()?;
    // The incoming token must be one this tenant issued: signed with the emulator's key.
    let d = dangerous::decode(assertion).map_err(|_| Refusal::obo_bad_assertion())?;
    if !signed_by_tenant(st, &d) {
        return Err(Refusal::obo_bad_signature());
    }
    if d.claim_str("tid").is_some_and(|t| !t.eq_ignore_ascii_case(&st.tenant)) {
        return Err(Refusal::obo_bad_assertion());
    }
    let aud = d.claim_str("aud").unwrap_or_default();
    if !client.api.is_named(aud) {
        return Err(Refusal::obo_wrong_audience(aud, &client.app_id, client.name()));
    }
    let now = jwt::now_secs() as f64;
    let exp = d.claim_time("exp").unwrap_or(0.0);
    if exp + (CLOCK_SKEW as f64) < now {
        return Err(Refusal::obo_expired(&obo_time(now), &obo_time(exp)));
    }
    if is_app_only(&d) {
        return Err(Refusal::obo_app_only(&client.app_id));
    }
    let oid = d.claim_str("oid").unwrap_or_default();
    let user = st.directory.user(oid).ok_or_else(Refusal::obo_bad_assertion)?.clone();
    let api = st.resource(&asked.resource).ok_or_else(|| Refusal::resource_not_found(&asked.resource, req.tenant))?;
    let scopes = consented_scopes(st, &client, &api, &user, &asked)?;
    let refresh = RefreshGrant {
        client_id: client.app_id.clone(),
        user_oid: user.oid.clone(),
        resource: asked.resource.clone(),
        scopes: scopes.clone(),
        oidc: asked.oidc.clone(),
    };
    // On-behalf-of answers carry no ID token: the user did not sign in to this app.
    let oidc: Vec<String> = asked.oidc.iter().filter(|o| *o == "offline_access").cloned().collect();
    user_body(req, &client, auth, &api, &asked.resource, &user, scopes, &oidc, Some(refresh), None, asked.prefix())
}

/// Records the sign-in of a request that got its token: the credential [`authenticate`]
/// accepted (none for the emulator-wide secret), and the resource asked for, by app id.
fn record_sign_in(req: &Req, request_id: &str) {
    let Some((client, used)) = req.signed_in.borrow_mut().take() else { return };
    let named = match req.version {
        EndpointVersion::V1 => req.field("resource").map(str::to_string),
        EndpointVersion::V2 => req.field("scope").and_then(|s| resource_from_scope(s).ok()),
    };
    let resource = named.and_then(|r| req.st.resource(&r)).map(|api| api.app_id.clone()).unwrap_or_default();
    req.st.sign_ins.record(&client, used, crate::dates::now(), request_id, &resource);
}

/// The resource of a client-credentials `scope`: exactly one `<resource>/.default` (OIDC scopes
/// such as `openid` are ignored, as Entra does). `https://x//.default` names `https://x/`.
fn resource_from_scope(scope: &str) -> Result<String, Refusal> {
    let scopes: Vec<&str> = scope.split_whitespace().filter(|s| !OIDC_SCOPES.contains(s)).collect();
    if let Some(bad) = scopes.iter().find(|s| !s.ends_with("/.default")) {
        return Err(Refusal::scope_not_default(bad));
    }
    match scopes.as_slice() {
        [one] => {
            let r = &one[..one.len() - "/.default".len()];
            if r.is_empty() {
                Err(Refusal::invalid_scope(scope))
            } else {
                Ok(r.to_string())
            }
        }
        _ => Err(Refusal::invalid_scope(scope)),
    }
}

/// The app id of a resource known only by name (from `--grant`): the GUID itself, the GUID of
/// `api://{guid}`, and for any other URI an id derived from it ([`super::apps::derived_id`]
/// with kind "resource" and the URI without trailing `/`), the same in every run. Case and a
/// trailing `/` do not matter, as for Entra's resource URIs.
pub(super) fn resource_app_id(resource: &str) -> String {
    let r = resource.trim().trim_end_matches('/');
    let guid = |s: &str| (s.len() == 36).then(|| uuid::Uuid::try_parse(s).ok()).flatten().map(|g| g.to_string());
    if let Some(g) = guid(r) {
        return g;
    }
    if let Some(g) = r.get(..6).filter(|p| p.eq_ignore_ascii_case("api://")).and_then(|_| guid(&r[6..])) {
        return g;
    }
    if r.eq_ignore_ascii_case(GRAPH) {
        return GRAPH_APP_ID.to_string();
    }
    super::apps::derived_id("resource", r)
}

/// Whether two resource names given on the command line or in a request name the same
/// resource: the same app id, so `api://{guid}` and the GUID match.
pub(super) fn same_resource(a: &str, b: &str) -> bool {
    resource_app_id(a) == resource_app_id(b)
}

/// RFC 6749 section 2.3.1 `client_secret_basic`: `Authorization: Basic base64(id:secret)` where
/// id and secret are each form-urlencoded first. `None` without a Basic header (other schemes
/// are not client authentication and are ignored, as Entra does).
fn basic_credentials(headers: &HeaderMap) -> Option<Result<(String, SecretString), Refusal>> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("Basic") {
        return None;
    }
    let bad = || {
        Refusal::malformed_request(
            "The Authorization: Basic header must hold base64(client_id:client_secret), each form-urlencoded.",
        )
    };
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).map_err(|_| bad());
    let text = decoded.and_then(|d| String::from_utf8(d).map_err(|_| bad()));
    Some(text.and_then(|t| {
        let (id, secret) = t.split_once(':').ok_or_else(bad)?;
        let (id, secret) = (form_decode(id), form_decode(secret));
        if id.is_empty() {
            return Err(Refusal::missing_parameter("client_id"));
        }
        Ok((id, SecretString::new(secret)))
    }))
}

/// Decodes one form-urlencoded component (`+` is a space, `%XX` a byte). A raw `&` or `=` in it
/// stays itself rather than splitting it.
fn form_decode(s: &str) -> String {
    let escaped = s.replace('&', "%26").replace('=', "%3D");
    url::form_urlencoded::parse(escaped.as_bytes()).map(|(k, _)| k.into_owned()).next().unwrap_or_default()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    // Compare digests so the length of the registered secret does not show in timing either.
    let (x, y) = (sha256(a), sha256(b));
    x.iter().zip(y.iter()).fold(0u8, |acc, (p, q)| acc | (p ^ q)) == 0
}

/// Entra's `Found key 'Start=MM/dd/yyyy HH:mm:ss, End=...'`.
fn found_key(c: &KeyCredential) -> String {
    let f = time::macros::format_description!("[month]/[day]/[year] [hour]:[minute]:[second]");
    let start = c.start.or(c.certificate.as_ref().map(|x| x.not_before()));
    let end = c.end.or(c.certificate.as_ref().map(|x| x.not_after()));
    let fmt = |t: Option<OffsetDateTime>| t.and_then(|t| t.format(&f).ok()).unwrap_or_default();
    format!("Start={}, End={}", fmt(start), fmt(end))
}

/// Entra's timestamp style in 700024 messages (`2024-01-31T12:00:00.0000000Z`).
fn entra_time(secs: f64) -> String {
    let t = OffsetDateTime::from_unix_timestamp(secs.floor() as i64).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].0000000Z");
    t.format(&f).unwrap_or_default()
}

/// Validates a client assertion for the app whose `keyCredentials` are `creds`, posted to
/// `endpoint`.
pub(super) fn verify_assertion(
    creds: &[KeyCredential],
    assertion: &str,
    client_id: &str,
    endpoint: &str,
    now: OffsetDateTime,
) -> Result<(), Refusal> {
    verify_assertion_at(creds, assertion, client_id, &[endpoint.to_string()], now).map(|_| ())
}

/// Validates a client assertion whose `aud` may be any of `endpoints` (the same endpoint under
/// each of the emulator's own names); returns the registered credential that verified it.
fn verify_assertion_at<'a>(
    creds: &'a [KeyCredential],
    assertion: &str,
    client_id: &str,
    endpoints: &[String],
    now: OffsetDateTime,
) -> Result<&'a KeyCredential, Refusal> {
    let d = dangerous::decode(assertion).map_err(|_| Refusal::malformed_jwt(""))?;
    let alg = match d.header.get("alg") {
        Some(Value::String(a)) => a.as_str(),
        _ => return Err(Refusal::malformed_jwt("The token header has no 'alg'.")),
    };
    let alg = SignatureAlg::from_jose(alg).ok_or_else(|| Refusal::unsupported_alg(alg))?;
    // An assertion made for another application is told apart before its key is looked for in
    // this one's: Entra answers 700021, not "the key was not found" (azure-identity's
    // troubleshooting guides, ClientAssertionCredential). Both values come from the caller, so
    // comparing them first tells nothing about what is registered.
    if d.claim_str("iss").is_some_and(|iss| !iss.eq_ignore_ascii_case(client_id)) {
        return Err(Refusal::issuer_not_client());
    }
    let (cred, thumb_hex) = registered_key(creds, &d, client_id, now)?;
    let public = cred.certificate.as_ref().and_then(|c| c.rsa_public_key()).unwrap_or_default();
    if !d.verify(alg, public) {
        return Err(Refusal::bad_signature(&thumb_hex, &found_key(cred)));
    }
    check_critical_header(&d)?;
    check_assertion_claims(&d, client_id, endpoints, now)?;
    Ok(cred)
}

/// RFC 7515 section 4.1.11: a `crit` header lists extensions the recipient must understand, or
/// the JWS is invalid; an empty list is forbidden. Client assertions use none (MSAL and
/// azure-identity send `alg`, `typ`, `x5t`/`x5t#S256`, `kid`, `x5c`), and the emulator
/// implements none (not even RFC 7797's `b64`), so any `crit` makes the assertion malformed:
/// 50027, Entra's code for an assertion that is not a valid JWT. Judged after the signature,
/// as every other part of the token, so a forged token learns nothing from it.
fn check_critical_header(d: &jwt::Decoded) -> Result<(), Refusal> {
    let Some(crit) = d.header.get("crit") else { return Ok(()) };
    let why = match crit.as_array() {
        None => "The token header's 'crit' is not an array of header parameter names.".to_string(),
        Some(names) if names.is_empty() => "The token header's 'crit' is an empty list, which RFC 7515 forbids.".into(),
        Some(names) => {
            // Named as JSON, at most a few and each cut short: they are the sender's text.
            let names: Vec<String> = names.iter().take(4).map(|n| n.to_string().chars().take(64).collect()).collect();
            format!("The token header's 'crit' lists extensions this service does not process: {}.", names.join(", "))
        }
    };
    Err(Refusal::malformed_jwt(&why))
}

/// The registered, usable and currently valid key the assertion's `x5t` (or `x5t#S256`) names,
/// with that thumbprint in hex. Key selection by thumbprint only: `kid`, `jku`, `x5u` are ignored
/// and `x5c` never adds a key (subject-name/issuer trust is not emulated), so a certificate must be registered.
fn registered_key<'a>(
    creds: &'a [KeyCredential],
    d: &jwt::Decoded,
    client_id: &str,
    now: OffsetDateTime,
) -> Result<(&'a KeyCredential, String), Refusal> {
    let header_str = |n: &str| d.header.get(n).and_then(Value::as_str);
    let (thumb, s256) = match (header_str("x5t"), header_str("x5t#S256")) {
        (Some(t), _) => (t, false),
        (None, Some(t)) => (t, true),
        (None, None) => return Err(Refusal::no_thumbprint()),
    };
    let thumb = URL_SAFE_NO_PAD.decode(thumb.trim_end_matches('=')).map_err(|_| Refusal::no_thumbprint())?;
    let matches = |c: &KeyCredential| {
        c.certificate.as_ref().is_some_and(|x| {
            if s256 {
                sha256(x.der())[..] == thumb[..]
            } else {
                x.sha1()[..] == thumb[..]
            }
        })
    };
    let thumb_hex = hex_upper(&thumb);
    // One rule of usability (`KeyCredential::is_usable`, what the lock-out guard and `check`
    // use): an entry Entra would not verify with (usage `Sign`, type `Symmetric`, a key no one
    // can sign with) is as good as absent.
    let candidates: Vec<&KeyCredential> = creds.iter().filter(|c| c.is_usable() && matches(c)).collect();
    if candidates.is_empty() {
        return Err(Refusal::key_not_found(&thumb_hex, client_id));
    }
    let Some(cred) = candidates.iter().find(|c| c.is_valid_at(now)) else {
        let c = candidates[0];
        let end = c.end.or(c.certificate.as_ref().map(|x| x.not_after()));
        let expired = end.is_some_and(|e| now > e);
        return Err(Refusal::key_out_of_dates(&thumb_hex, &found_key(c), expired));
    };
    Ok((*cred, thumb_hex))
}

/// Checks the assertion's audience (one of `endpoints`), issuer and subject (both the client)
/// and its time claims, with Entra's clock skew.
fn check_assertion_claims(
    d: &jwt::Decoded,
    client_id: &str,
    endpoints: &[String],
    now: OffsetDateTime,
) -> Result<(), Refusal> {
    // RFC 7519 allows `aud` as a string or an array; a one-element array names one audience and
    // is judged as that string. Only a longer array is "more than one audience value".
    let aud = match d.claims.get("aud") {
        Some(Value::Array(a)) if a.len() > 1 => return Err(Refusal::multiple_audiences()),
        Some(Value::Array(a)) => a.first(),
        other => other,
    };
    match aud {
        Some(Value::String(a))
            if endpoints.iter().any(|e| a.trim_end_matches('/').eq_ignore_ascii_case(e.trim_end_matches('/'))) => {}
        _ => return Err(Refusal::bad_audience()),
    }
    let iss = d.claim_str("iss").unwrap_or_default();
    if d.claim_str("sub") != Some(iss) {
        return Err(Refusal::subject_mismatch(client_id));
    }
    if !iss.eq_ignore_ascii_case(client_id) {
        return Err(Refusal::issuer_not_client());
    }
    // A time claim that is present but not a NumericDate (a string such as "NaN", a value
    // beyond i64 seconds) makes the token malformed: skipping it would make it never expire.
    let time = |name: &str| d.time_claim(name).map_err(|why| Refusal::malformed_jwt(&why));
    let exp = time("exp")?.ok_or_else(|| Refusal::malformed_jwt("The token has no valid 'exp' claim."))?;
    let nbf = time("nbf")?;
    time("iat")?;
    let now_s = now.unix_timestamp() as f64;
    if exp + (CLOCK_SKEW as f64) < now_s || nbf.is_some_and(|n| n - (CLOCK_SKEW as f64) > now_s) {
        return Err(Refusal::outside_time_range(
            &entra_time(now_s),
            &entra_time(nbf.unwrap_or(now_s)),
            &entra_time(exp),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_name_exactly_one_default_resource() {
        assert_eq!(resource_from_scope("https://graph.microsoft.com/.default").unwrap(), GRAPH);
        assert_eq!(resource_from_scope("https://x.example/api//.default").unwrap(), "https://x.example/api/");
        assert_eq!(resource_from_scope("openid api://a/.default").unwrap(), "api://a");
        assert_eq!(resource_from_scope("https://graph.microsoft.com/User.Read").unwrap_err().code, 1002012);
        assert_eq!(resource_from_scope("api://a/.default api://b/.default").unwrap_err().code, 70011);
        assert_eq!(resource_from_scope("openid").unwrap_err().code, 70011);
    }

    #[test]
    fn resources_compare_loosely() {
        assert!(same_resource("https://graph.microsoft.com/", "https://Graph.microsoft.com"));
        assert!(same_resource(GRAPH_APP_ID, GRAPH));
        assert!(!same_resource("api://a", "api://b"));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
    }

    #[test]
    fn user_scopes_name_one_resource() {
        let a = parse_user_scope("openid offline_access User.Read").unwrap();
        assert_eq!(
            (a.resource.as_str(), a.scopes.clone(), a.default),
            (GRAPH_APP_ID, vec!["User.Read".to_string()], false)
        );
        assert_eq!(a.oidc, ["openid", "offline_access"]);
        let a = parse_user_scope("api://mid/access_as_user").unwrap();
        assert_eq!((a.resource.as_str(), a.scopes.clone()), ("api://mid", vec!["access_as_user".to_string()]));
        let a = parse_user_scope("https://manage.office.com/.default openid").unwrap();
        assert!(a.default && a.scopes.is_empty() && a.resource == "https://manage.office.com");
        assert_eq!(parse_user_scope("User.Read api://mid/x").unwrap_err().code, 70011);
        assert_eq!(parse_user_scope("openid profile").unwrap().scopes, ["openid", "profile"]);
        // `.default` beside a named scope, of the same resource or another: 70011.
        for s in ["https://graph.microsoft.com/.default User.Read", "api://mid/x https://graph.microsoft.com/.default"]
        {
            let e = parse_scope_resources(s).unwrap_err();
            assert!(e.code == 70011 && e.text.ends_with("can't be combined with resource-specific scopes."), "{e:?}");
        }
        // The authorize leg's several resources, in the order named, each with the OpenID scopes.
        let groups = parse_scope_resources("User.Read openid api://mid/x api://mid/y").unwrap();
        let got: Vec<(&str, Vec<String>)> = groups.iter().map(|g| (g.resource.as_str(), g.scopes.clone())).collect();
        assert_eq!(got, [(GRAPH_APP_ID, vec!["User.Read".into()]), ("api://mid", vec!["x".into(), "y".into()])]);
        assert!(groups.iter().all(|g| g.oidc == ["openid"]));
    }
}
