//! Who calls Graph: the bearer token checked (signature, audience, times, tenant), the caller's
//! `--throttle` bucket, and what its roles let it read and write.

use super::GraphError;
use super::SKEW;
use crate::dates;
use crate::emulator::throttle::retry_after_secs;
use crate::emulator::{App, AppState};
use crate::jwt::dangerous;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde_json::{Map, Value};

/// Roles that allow reading every application.
pub(super) const READ_ROLES: [&str; 5] = [
    "Application.Read.All",
    "Application.ReadWrite.All",
    "Application.ReadWrite.OwnedBy",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
pub(super) const ALL: &str = "Application.ReadWrite.All";
pub(super) const OWNED_BY: &str = "Application.ReadWrite.OwnedBy";

/// The caller, from a bearer token this emulator issued for Graph.
pub(in crate::emulator) struct Caller {
    pub app_id: String,
    /// The `oid` claim: the caller's service principal.
    pub object_id: String,
    pub roles: Vec<String>,
    /// A user's (delegated) token, not an app-only one.
    pub delegated: bool,
}

impl Caller {
    pub(super) fn has(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
    pub(super) fn can_read(&self, app: &App) -> bool {
        self.app_id.eq_ignore_ascii_case(&app.app_id) || READ_ROLES.iter().any(|r| self.has(r))
    }
    pub(super) fn can_read_all(&self) -> bool {
        READ_ROLES.iter().any(|r| self.has(r))
    }
    /// Whether the manifest's `owners` names the caller (by appId or service principal id, as
    /// strings or as `{"id": ...}`/`{"appId": ...}` objects).
    pub(super) fn owns(&self, manifest: &Map<String, Value>) -> bool {
        let Some(Value::Array(owners)) = manifest.get("owners") else { return false };
        let me = |s: &str| s.eq_ignore_ascii_case(&self.app_id) || s.eq_ignore_ascii_case(&self.object_id);
        owners.iter().any(|o| match o {
            Value::String(s) => me(s),
            Value::Object(o) => ["id", "appId"].iter().any(|k| o.get(*k).and_then(Value::as_str).is_some_and(me)),
            _ => false,
        })
    }
    /// Whether the caller may change `app` through PATCH, addPassword or removePassword:
    /// `.All` for any application, `.OwnedBy` only for the applications it owns.
    pub fn can_write(&self, app: &App) -> bool {
        self.has(ALL) || (self.has(OWNED_BY) && self.owns(&app.json()))
    }
}

/// Authenticates the request (401 in Graph's words), then takes one request from the caller's
/// `--throttle` bucket (429 with `Retry-After`).
pub(in crate::emulator) fn authenticate(st: &AppState, headers: &HeaderMap) -> Result<Caller, GraphError> {
    let who = caller(st, headers)?;
    if let Some(t) = &st.throttle {
        if let Err(wait) = t.take(&who.app_id) {
            let secs = retry_after_secs(wait);
            let mut r = GraphError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                format!(
                    "Too many requests from Identifier:{}+{} under category:throttle.emulator. Please try again later.",
                    st.tenant(),
                    who.app_id
                ),
            )
            .with_header(axum::http::header::RETRY_AFTER, HeaderValue::from(secs));
            // Graph's documented values (throttling limits, identity and access service limits):
            // `<Scope>/<Limit>/<ApplicationId>/<TenantId>`, and a reason such as
            // ResourceUnitLimitExceeded, the emulator's bucket counting each request as one unit.
            if let Ok(v) =
                HeaderValue::from_str(&format!("Tenant_Application/ReadWrite/{}/{}", who.app_id, st.tenant()))
            {
                r = r.with_header(HeaderName::from_static("x-ms-throttle-scope"), v);
            }
            return Err(r.with_header(
                HeaderName::from_static("x-ms-throttle-information"),
                HeaderValue::from_static("ResourceUnitLimitExceeded"),
            ));
        }
    }
    Ok(who)
}

pub(super) fn caller(st: &AppState, headers: &HeaderMap) -> Result<Caller, GraphError> {
    let unauthorized = |m: &str| GraphError::new(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", m);
    let auth = headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
    let token = auth
        .strip_prefix("Bearer ")
        .or_else(|| auth.strip_prefix("bearer "))
        .ok_or_else(|| unauthorized("Access token is empty."))?;
    let d = dangerous::decode(token).map_err(|_| unauthorized("IDX14100: JWT is not well formed."))?;
    // Graph checks its tokens' special signature (over the hashed nonce), as the token endpoint made it.
    if !crate::emulator::token::signed_by_tenant(st, &d) {
        return Err(unauthorized("Access token validation failure. Invalid signature."));
    }
    let aud = d.claim_str("aud").unwrap_or("");
    if !st.is_graph(aud) {
        return Err(unauthorized("Access token validation failure. Invalid audience."));
    }
    let now = dates::now().unix_timestamp() as f64;
    if d.claim_time("exp").is_none_or(|e| e + SKEW < now) || d.claim_time("nbf").is_some_and(|n| n - SKEW > now) {
        return Err(unauthorized("Access token has expired or is not yet valid."));
    }
    if d.claim_str("tid").is_some_and(|t| !t.eq_ignore_ascii_case(st.tenant())) {
        return Err(unauthorized("Access token validation failure. Invalid tenant."));
    }
    let app_id = d.claim_str("appid").or_else(|| d.claim_str("azp")).unwrap_or("").to_string();
    let object_id = d.claim_str("oid").unwrap_or("").to_string();
    let delegated = !crate::emulator::token::is_app_only(&d);
    Ok(Caller { app_id, object_id, roles: d.roles(), delegated })
}
