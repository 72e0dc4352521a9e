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

mod assertion;
mod claims;
mod client_auth;
mod grants;
mod scopes;

pub(super) use assertion::verify_assertion;
pub(super) use claims::{is_app_only, signed_by_tenant};
pub(super) use grants::is_pkce_value;
pub(super) use scopes::{parse_scope_resources, resource_app_id, same_resource, Asked};

use super::errors::{token_response_headers, Refusal, RequestLog};
use super::signins::UsedCredential;
use super::{AppState, EndpointVersion};
use crate::secret::SecretString;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use client_auth::{authenticate, basic_credentials};
use grants::{authorization_code, client_credentials, on_behalf_of, refresh_token};
use scopes::resource_from_scope;
use serde_json::Value;
use std::collections::HashMap;

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
pub(super) const GRAPH_APP_ID: &str = crate::ids::well_known::MICROSOFT_GRAPH;
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
