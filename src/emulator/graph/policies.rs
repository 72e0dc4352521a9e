//! App management policies in the emulated tenant: the tenant default (`--app-policy FILE`, a
//! body shaped like Graph's `defaultAppManagementPolicy`) served at
//! `GET /v1.0/policies/defaultAppManagementPolicy`; per-app policies (`appManagementPolicy`)
//! listed, read and created at `/v1.0/policies/appManagementPolicies[/{id}]`, and assigned
//! through `/v1.0/applications/{id}/appManagementPolicies` (GET) and `.../$ref` (POST); all
//! enforced on `addKey`, `addPassword` and `PATCH` of `keyCredentials`.
//!
//! An application's own policy lives beside its manifest: `NAME.policy.json` for `NAME.json`
//! (such files are never read as manifests). Assigning a policy writes that file; a policy
//! created through Graph and not assigned lives as long as the emulator. As in Graph, an
//! assigned policy takes precedence over the tenant default ("The application or service
//! principal adopts this policy over the tenant-wide tenantAppManagementPolicy setting", Graph's
//! "Assign appManagementPolicy" reference), and at most one is assigned to an application.
//!
//! Reading policies takes `Policy.Read.All`; creating and assigning them
//! `Policy.ReadWrite.ApplicationConfiguration` (assigning also `Application.Read.All`), as
//! Graph's reference lists; without them the answer is Graph's 403. Enforcement follows
//! [`crate::policy`]: Graph's 400 `CredentialInvalidLifetimeAsPerAppPolicy` with its message,
//! and applications created on or before a restriction's `restrictForAppsCreatedAfterDateTime`
//! (their `createdDateTime`) are not restricted. A `trustedCertificateAuthority` restriction
//! refuses self-signed certificates (the tenant's certificate authorities are not modelled).

use super::{authenticate, find_app, forbidden, json_body, not_found, Answer, AppState, GraphError, SharedState};
use crate::dates;
use crate::emulator::App;
use crate::policy::{Policy, Violation};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};
use std::path::PathBuf;
use time::OffsetDateTime;

/// The role reading policies takes.
const POLICY_READ: &str = "Policy.Read.All";
/// The role creating and assigning app management policies takes.
const POLICY_WRITE: &str = "Policy.ReadWrite.ApplicationConfiguration";

/// The file holding the policy assigned to the application whose manifest is `manifest`:
/// `NAME.policy.json` beside `NAME.json`.
pub(crate) fn policy_path(manifest: &std::path::Path) -> PathBuf {
    let stem = manifest.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    manifest.with_file_name(format!("{stem}.policy.json"))
}

/// The policy body assigned to `app`, if any (its `NAME.policy.json`).
fn assigned_body(st: &AppState, app: &App) -> Result<Option<Value>, GraphError> {
    let path = policy_path(&app.path);
    if !path.exists() {
        return Ok(None);
    }
    let read = crate::fsio::read(&path)
        .and_then(|b| serde_json::from_slice::<Value>(&b).map_err(|e| crate::Error::file(&path, e)));
    read.map(Some).map_err(|e| super::storage_failure(st, app, &e))
}

/// The policy in force for `app`: its own, else the tenant default, else none.
fn effective(st: &AppState, app: &App) -> Result<Option<Policy>, GraphError> {
    match assigned_body(st, app)? {
        Some(body) => Policy::from_json(&body, &policy_path(&app.path).display().to_string())
            .map(Some)
            .map_err(|e| super::storage_failure(st, app, &e)),
        None => Ok(st.app_policy.as_ref().map(|(_, p)| p.clone())),
    }
}

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

/// Refuses (Graph's 400) a certificate from `start` to `end` (self-signed or not) the policy in
/// force forbids on `app`.
pub(super) fn check_key(
    st: &AppState,
    app: &App,
    start: OffsetDateTime,
    end: OffsetDateTime,
    self_signed: bool,
) -> Result<(), GraphError> {
    match effective(st, app)?.and_then(|p| p.check_certificate(created(app), start, end, self_signed)) {
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
            check_key(st, app, start, end, self_signed(e.get("key")))?;
        }
    }
    Ok(())
}

/// Whether the certificate in an entry's `key` (base64 DER, line breaks allowed) names itself as
/// its issuer; an unreadable body is left to the entry checks.
fn self_signed(key: Option<&Value>) -> bool {
    use base64::Engine;
    let b64: String = key.and_then(Value::as_str).unwrap_or_default().split_whitespace().collect();
    let der = base64::engine::general_purpose::STANDARD.decode(b64).unwrap_or_default();
    crate::cert::Certificate::from_der(&der, "key").is_ok_and(|c| c.subject_der() == c.issuer_der())
}

/// Refuses (Graph's 400) a password the policy in force forbids on `app`.
pub(super) fn check_password(
    st: &AppState,
    app: &App,
    entry: &serde_json::Map<String, Value>,
) -> Result<(), GraphError> {
    let date = |k: &str| entry.get(k).and_then(Value::as_str).and_then(dates::parse_manifest);
    let start = date("startDateTime").unwrap_or_else(dates::now);
    match effective(st, app)?.and_then(|p| p.check_password(created(app), start, date("endDateTime"))) {
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
            let body = json!({"@odata.context": format!("{base}#policies/appManagementPolicies"), "value": all(&st)});
            Ok((StatusCode::OK, Json(body)).into_response())
        }
        other => Err(not_found(&format!("policies/{other}"))),
    }
}

/// Every per-app policy: those created through Graph, then those assigned in files, once each.
fn all(st: &AppState) -> Vec<Value> {
    let mut out: Vec<Value> = st.app_policies.lock().map(|v| v.clone()).unwrap_or_default();
    for app in st.registry.list() {
        if let Ok(Some(body)) = assigned_body(st, &app) {
            if !out.iter().any(|p| p["id"] == body["id"]) {
                out.push(body);
            }
        }
    }
    out
}

/// `GET /v1.0/policies/appManagementPolicies/{id}`.
pub(super) fn get_one(State(st): SharedState, Path(id): Path<String>, headers: HeaderMap) -> Answer {
    let who = authenticate(&st, &headers)?;
    if !who.has(POLICY_READ) && !who.has(POLICY_WRITE) {
        return Err(forbidden());
    }
    let mut body = all(&st).into_iter().find(|p| p["id"].as_str().is_some_and(|i| i.eq_ignore_ascii_case(&id)));
    let Some(o) = body.as_mut().and_then(Value::as_object_mut) else { return Err(not_found(&id)) };
    let context = format!("{}/v1.0/$metadata#policies/appManagementPolicies/$entity", st.base_url);
    o.insert("@odata.context".into(), json!(context));
    Ok((StatusCode::OK, Json(body)).into_response())
}

/// `POST /v1.0/policies/appManagementPolicies`: 201 with the policy and its new `id`.
pub(super) fn create(State(st): SharedState, Path(name): Path<String>, headers: HeaderMap, body: Bytes) -> Answer {
    let who = authenticate(&st, &headers)?;
    if name != "appManagementPolicies" {
        return Err(GraphError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "Request_BadRequest",
            "Specified HTTP method is not allowed for the request target.",
        ));
    }
    if !who.has(POLICY_WRITE) {
        return Err(forbidden());
    }
    let mut v = json_body(&headers, &body)?;
    let Some(o) = v.as_object_mut() else {
        return Err(GraphError::bad_request("The request body must be an appManagementPolicy object."));
    };
    if o.get("displayName").and_then(Value::as_str).is_none_or(str::is_empty) {
        return Err(GraphError::bad_request("Property 'displayName' is required."));
    }
    o.insert("id".into(), json!(uuid::Uuid::new_v4().to_string()));
    o.entry("isEnabled").or_insert(json!(true));
    if let Err(e) = Policy::from_json(&v, "the policy") {
        return Err(GraphError::bad_request(e.message().to_string()));
    }
    if let Ok(mut store) = st.app_policies.lock() {
        store.push(v.clone());
    }
    let mut answer = v;
    answer["@odata.context"] = json!(format!("{}/v1.0/$metadata#policies/appManagementPolicies/$entity", st.base_url));
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// `POST /v1.0/applications/{id}/appManagementPolicies/$ref` with
/// `{"@odata.id": ".../policies/appManagementPolicies/{policyId}"}`: 204, the policy written
/// beside the application's manifest. A second, different policy is refused: Graph assigns at
/// most one (the message is the emulator's; Graph's wording for it is not public).
pub(super) fn assign(State(st): SharedState, Path(raw): Path<String>, headers: HeaderMap, body: Bytes) -> Answer {
    let who = authenticate(&st, &headers)?;
    if !who.has(POLICY_WRITE) || !who.can_read_all() {
        return Err(forbidden());
    }
    let app = find_app(&st, &raw).ok_or_else(|| not_found(&raw))?;
    let v = json_body(&headers, &body)?;
    let target = v["@odata.id"].as_str().unwrap_or_default();
    let id = target.rsplit('/').next().unwrap_or_default();
    let policy =
        all(&st).into_iter().find(|p| !id.is_empty() && p["id"].as_str().is_some_and(|i| i.eq_ignore_ascii_case(id)));
    let Some(policy) = policy else {
        return Err(GraphError::bad_request(format!(
            "Invalid '@odata.id' '{target}': give the URL of an appManagementPolicy, .../policies/appManagementPolicies/{{id}}."
        )));
    };
    match assigned_body(&st, &app)? {
        Some(existing) if existing["id"] == policy["id"] => {}
        Some(_) => {
            return Err(GraphError::bad_request(
                "An app management policy is already assigned to this application; only one can be assigned.",
            ))
        }
        None => {
            let text = serde_json::to_vec_pretty(&policy).unwrap_or_default();
            crate::fsio::atomic_write(&policy_path(&app.path), &text, None)
                .map_err(|e| super::storage_failure(&st, &app, &e))?;
        }
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /v1.0/applications/{id}/appManagementPolicies`: the policy assigned to the application
/// (at most one).
pub(super) fn get_assigned(st: &AppState, raw: &str, headers: &HeaderMap) -> Answer {
    let who = authenticate(st, headers)?;
    if !who.has(POLICY_READ) && !who.has(POLICY_WRITE) {
        return Err(forbidden());
    }
    let app = find_app(st, raw).ok_or_else(|| not_found(raw))?;
    let value: Vec<Value> = assigned_body(st, &app)?.into_iter().collect();
    let body =
        json!({"@odata.context": format!("{}/v1.0/$metadata#appManagementPolicies", st.base_url), "value": value});
    Ok((StatusCode::OK, Json(body)).into_response())
}
