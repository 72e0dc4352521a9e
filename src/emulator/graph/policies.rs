//! App management policies in the emulated tenant: the tenant default (`--app-policy FILE`, a
//! body shaped like Graph's `defaultAppManagementPolicy`) served at
//! `GET /v1.0/policies/defaultAppManagementPolicy`, the (empty) collection of per-app policies at
//! `/v1.0/policies/appManagementPolicies` and `/v1.0/applications/{id}/appManagementPolicies`,
//! and enforced on `addKey`, `addPassword` and `PATCH` of `keyCredentials`.
//!
//! Reading policies takes `Policy.Read.All` (Graph's permissions for the policy endpoints);
//! without it the answer is Graph's 403. Enforcement follows [`crate::policy`]: Graph's 400
//! `CredentialInvalidLifetimeAsPerAppPolicy` with its message, and applications created on or
//! before a restriction's `restrictForAppsCreatedAfterDateTime` (their `createdDateTime`) are
//! not restricted. Per-app policies and their assignment are not emulated (README says so).

use super::{authenticate, find_app, forbidden, not_found, Answer, AppState, GraphError, SharedState};
use crate::dates;
use crate::emulator::App;
use crate::policy::Violation;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};
use time::OffsetDateTime;

/// The role reading policies takes.
const POLICY_READ: &str = "Policy.Read.All";

/// The policy body served when no `--app-policy` is given: Graph's default policy restricts
/// nothing.
fn default_body() -> Value {
    json!({
        "id": "00000000-0000-0000-0000-000000000000",
        "displayName": "Default app management tenant policy",
        "description": "Default tenant policy that enforces app management restrictions on applications and service principals.",
        "isEnabled": false,
        "applicationRestrictions": {"passwordCredentials": [], "keyCredentials": []},
        "servicePrincipalRestrictions": {"passwordCredentials": [], "keyCredentials": []}
    })
}

/// `createdDateTime` of an application, from its manifest.
fn created(app: &App) -> Option<OffsetDateTime> {
    app.json().get("createdDateTime").and_then(Value::as_str).and_then(dates::parse_manifest)
}

fn refuse(v: Violation) -> GraphError {
    GraphError::new(StatusCode::BAD_REQUEST, v.code, v.message)
}

/// Refuses (Graph's 400) a certificate from `start` to `end` the tenant policy forbids on `app`.
pub(super) fn check_key(
    st: &AppState,
    app: &App,
    start: OffsetDateTime,
    end: OffsetDateTime,
) -> Result<(), GraphError> {
    match st.app_policy.as_ref().and_then(|(_, p)| p.check_key(created(app), start, end)) {
        Some(v) => Err(refuse(v)),
        None => Ok(()),
    }
}

/// Refuses (Graph's 400) a PATCH of `keyCredentials` adding a certificate the tenant policy
/// forbids on `app`: a new entry (a keyId not registered yet) is checked as addKey is;
/// registered ones sent back are not.
pub(super) fn check_patch(st: &AppState, app: &App, entries: &[Value]) -> Result<(), GraphError> {
    let json = app.json();
    let registered: Vec<&Value> =
        json.get("keyCredentials").and_then(Value::as_array).into_iter().flatten().map(|e| &e["keyId"]).collect();
    for e in entries.iter().filter_map(Value::as_object) {
        let new = crate::manifest::read_entry(0, e);
        let is_new = e.get("keyId").is_none_or(|k| !registered.contains(&k));
        if let (Some(start), Some(end), true) = (new.effective_start(), new.effective_end(), is_new && new.has_body) {
            check_key(st, app, start, end)?;
        }
    }
    Ok(())
}

/// Refuses (Graph's 400) a password the tenant policy forbids on `app`.
pub(super) fn check_password(
    st: &AppState,
    app: &App,
    entry: &serde_json::Map<String, Value>,
) -> Result<(), GraphError> {
    let date = |k: &str| entry.get(k).and_then(Value::as_str).and_then(dates::parse_manifest);
    let start = date("startDateTime").unwrap_or_else(dates::now);
    match st.app_policy.as_ref().and_then(|(_, p)| p.check_password(created(app), start, date("endDateTime"))) {
        Some(v) => Err(refuse(v)),
        None => Ok(()),
    }
}

/// `GET /v1.0/policies/{name}`: the default policy, or the per-app policies (none here).
pub(super) fn get_policy(State(st): SharedState, Path(name): Path<String>, headers: HeaderMap) -> Answer {
    let who = authenticate(&st, &headers)?;
    if !who.has(POLICY_READ) {
        return Err(forbidden());
    }
    let base = format!("{}/v1.0/$metadata", st.base_url);
    match name.as_str() {
        "defaultAppManagementPolicy" => {
            let mut body = st.app_policy.as_ref().map_or_else(default_body, |(b, _)| b.clone());
            if let Some(o) = body.as_object_mut() {
                o.insert("@odata.context".into(), json!(format!("{base}#policies/defaultAppManagementPolicy/$entity")));
            }
            Ok((StatusCode::OK, Json(body)).into_response())
        }
        "appManagementPolicies" => {
            let body = json!({"@odata.context": format!("{base}#policies/appManagementPolicies"), "value": []});
            Ok((StatusCode::OK, Json(body)).into_response())
        }
        other => Err(not_found(&format!("policies/{other}"))),
    }
}

/// `GET /v1.0/applications/{id}/appManagementPolicies`: the policies assigned to the
/// application (none: per-app assignment is not emulated).
pub(super) fn get_assigned(st: &AppState, raw: &str, headers: &HeaderMap) -> Answer {
    let who = authenticate(st, headers)?;
    if !who.has(POLICY_READ) {
        return Err(forbidden());
    }
    if find_app(st, raw).is_none() {
        return Err(not_found(raw));
    }
    let body = json!({"@odata.context": format!("{}/v1.0/$metadata#appManagementPolicies", st.base_url), "value": []});
    Ok((StatusCode::OK, Json(body)).into_response())
}
