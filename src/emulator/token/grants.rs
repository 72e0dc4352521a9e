//! The grants: client credentials, authorization code (with PKCE), refresh token and
//! on-behalf-of (PROTOCOL.md sections 4, 5 and 5b), each answering with a token body.

use super::assertion::entra_time;
use super::claims::{app_only_body, id_token, is_app_only, mint, signed_by_tenant, Subject};
use super::scopes::{consented_scopes, oidc_scopes, parse_user_scope, resource_from_scope, same_resource, Asked};
use super::{ClientProof, Req, CLOCK_SKEW, GRAPH_APP_ID, JWT_BEARER_GRANT, OIDC_SCOPES};
use crate::emulator::apps::{Api, App};
use crate::emulator::errors::Refusal;
use crate::emulator::tenant::{RefreshGrant, User};
use crate::emulator::EndpointVersion;
use crate::jwt::{self, dangerous};
use crate::thumbprint::{b64url, sha256};
use serde_json::{json, Value};
use std::sync::Arc;

pub(super) fn client_credentials(
    req: &Req,
    auth: impl Fn() -> Result<(Arc<App>, ClientProof), Refusal>,
) -> Result<Value, Refusal> {
    let resource = match req.version {
        EndpointVersion::V1 => req.require("resource")?.to_string(),
        EndpointVersion::V2 => resource_from_scope(req.require("scope")?)?,
    };
    // An app-only token is for one tenant; `common` and `organizations` name none.
    if crate::emulator::is_multi_tenant(req.tenant) {
        return Err(Refusal::no_tenant_information());
    }
    let (app, auth) = auth()?;
    let api = req.st.resource(&resource).ok_or_else(|| Refusal::resource_not_found(&resource, req.tenant))?;
    let roles = req.st.roles_for(&api, &app.app_id);
    let m = mint(req.st, &app, auth, &api, &resource, Subject::App { roles })?;
    Ok(app_only_body(req.version, &m, &resource))
}

/// The answer to a user flow (code, refresh, on-behalf-of).
#[allow(clippy::too_many_arguments)]
pub(super) fn user_body(
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

pub(super) fn authorization_code(
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
        (Some(want), Some(got)) if !crate::emulator::apps::same_reply_url(want, got) => {
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
pub(super) fn token_leg_resource(req: &Req, oidc: &[String]) -> Result<Option<Asked>, Refusal> {
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
pub(in crate::emulator) fn is_pkce_value(v: &str) -> bool {
    (43..=128).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// Whether the token request's `code_verifier` answers the code's PKCE challenge. A code issued
/// without a challenge takes no verifier: RFC 9700 section 4.8.2 has the server refuse one, so
/// that an attacker cannot strip the challenge from a victim's authorization request (a PKCE
/// downgrade), and Entra answers 501481 to a verifier sent for such a code (a client that sent
/// `code_verifier=decoy` without a challenge: get-convex/convex-auth issue 457).
pub(super) fn pkce_verified(challenge: Option<&(String, String)>, verifier: Option<&str>) -> bool {
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

pub(super) fn refresh_token(
    req: &Req,
    auth: impl Fn() -> Result<(Arc<App>, ClientProof), Refusal>,
) -> Result<Value, Refusal> {
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
pub(super) fn obo_time(secs: f64) -> String {
    entra_time(secs)
}

pub(super) fn on_behalf_of(
    req: &Req,
    auth: impl Fn() -> Result<(Arc<App>, ClientProof), Refusal>,
) -> Result<Value, Refusal> {
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
