//! The emulator's slice of Microsoft Graph: the application key endpoints that rotation uses
//! (PROTOCOL.md section 7), backed by the same manifest files as the token endpoint.
//!
//! - `GET /v1.0/applications(appId='..')` and `GET /v1.0/applications/{id}`;
//! - `PATCH /v1.0/applications/{id}` with the whole `keyCredentials` array (needs the
//!   Application.ReadWrite.OwnedBy or .All role), where entries sent back with `"key": null`
//!   keep the body already registered, as Graph does;
//! - `POST /v1.0/applications/{id}/addKey` and `.../removeKey`, authorised by a proof-of-possession
//!   JWT signed with a currently valid registered certificate of that application.
//!
//! Every call needs a bearer token this emulator issued for Graph (a v1 token's `aud` is Graph's
//! URI, a v2 token's its app id); the token is checked before the body is read. Each change is
//! written to the manifest file atomically (under its lock), so the token endpoint sees it at the
//! next request. Refusals are in Graph's error shape and speak of the request, never of the
//! manifest files or the CLI behind the emulator.

use super::AppState;
use crate::cert::{Certificate, SignatureAlg};
use crate::graph::{PROOF_AUD_AAD_GRAPH, PROOF_AUD_MS_GRAPH};
use crate::jwt::dangerous;
use crate::manifest::{edit_file, entry_for, EntryOptions, Format, Manifest, Selector};
use crate::{dates, thumbprint};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// Clock skew tolerated on proofs and bearer tokens, seconds.
const SKEW: f64 = 300.0;
/// Roles that allow PATCH (and reading any application).
const WRITE_ROLES: [&str; 2] = ["Application.ReadWrite.All", "Application.ReadWrite.OwnedBy"];

type St = State<Arc<AppState>>;

/// The Graph routes, merged into the emulator's router.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1.0/{reference}", get(get_app_by_ref))
        .route("/v1.0/applications/{id}", get(get_app).patch(patch_app))
        .route("/v1.0/applications/{id}/addKey", post(add_key))
        .route("/v1.0/applications/{id}/removeKey", post(remove_key))
}

/// A Graph error answer: `{"error": {"code", "message", "innerError"}}`.
fn graph_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = json!({
        "error": {
            "code": code,
            "message": message.into(),
            "innerError": {
                "date": dates::format(dates::now()),
                "request-id": uuid::Uuid::new_v4().to_string(),
                "client-request-id": uuid::Uuid::new_v4().to_string(),
            }
        }
    });
    (status, Json(body)).into_response()
}

/// The caller, from a bearer token this emulator issued for Graph.
struct Caller {
    app_id: String,
    roles: Vec<String>,
}

impl Caller {
    fn can_write(&self) -> bool {
        self.roles.iter().any(|r| WRITE_ROLES.contains(&r.as_str()))
    }
}

fn caller(st: &AppState, headers: &HeaderMap) -> Result<Caller, Box<Response>> {
    let unauthorized =
        |m: &str| Box::new(graph_error(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", m.to_string()));
    let auth = headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
    let token = auth
        .strip_prefix("Bearer ")
        .or_else(|| auth.strip_prefix("bearer "))
        .ok_or_else(|| unauthorized("Access token is empty."))?;
    let d = dangerous::decode(token).map_err(|_| unauthorized("IDX14100: JWT is not well formed."))?;
    if d.alg() != Some("RS256") || !d.verify(SignatureAlg::Rs256, st.signing_cert.rsa_public_key().unwrap_or_default())
    {
        return Err(unauthorized("Access token validation failure. Invalid signature."));
    }
    // Graph's URI (v1 tokens) or its app id (v2 tokens): both resolve to Graph's app id.
    let aud = d.claim_str("aud").unwrap_or("");
    if super::token::resource_app_id(aud) != super::token::GRAPH_APP_ID {
        return Err(unauthorized("Access token validation failure. Invalid audience."));
    }
    let now = dates::now().unix_timestamp() as f64;
    if d.claim_time("exp").is_none_or(|e| e + SKEW < now) {
        return Err(unauthorized("Lifetime validation failed, the token is expired."));
    }
    if d.claim_str("tid").is_some_and(|t| !t.eq_ignore_ascii_case(st.tenant())) {
        return Err(unauthorized("Access token validation failure. Invalid tenant."));
    }
    let app_id = d.claim_str("appid").or_else(|| d.claim_str("azp")).unwrap_or("").to_string();
    Ok(Caller { app_id, roles: d.roles() })
}

/// The JSON body of a write request, read after the caller is authenticated. Graph answers a
/// body that is not JSON with 400 BadRequest, and a Content-Type other than JSON with 415.
fn json_body(headers: &HeaderMap, body: &[u8]) -> Result<Value, Box<Response>> {
    let content_type = headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mime = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if !(mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))) {
        let shown = if content_type.is_empty() { "(none)" } else { content_type };
        return Err(Box::new(graph_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "BadRequest",
            format!("Content-Type {shown} is not supported; send the request body as application/json."),
        )));
    }
    serde_json::from_slice(body).map_err(|_| {
        Box::new(graph_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.",
        ))
    })
}

/// Why an edit of an application was not made: a refusal of the request, answered as such, or a
/// failure of the emulator's own storage, which stays in its log.
enum EditError {
    Refused(StatusCode, &'static str, String),
    Storage(crate::Error),
}

impl From<crate::Error> for EditError {
    fn from(e: crate::Error) -> Self {
        EditError::Storage(e)
    }
}

fn bad_request(message: impl Into<String>) -> EditError {
    EditError::Refused(StatusCode::BAD_REQUEST, "Request_BadRequest", message.into())
}

/// Applies `f` to the application's manifest under its lock. A refusal from `f` is answered in
/// Graph's shape; any other failure (the file, its lock) is logged and answered 500 without
/// naming files, which are the emulator's business, not the caller's.
fn edit_app(
    st: &AppState,
    app: &super::App,
    mut f: impl FnMut(&Manifest) -> Result<Manifest, EditError>,
) -> Result<(), Box<Response>> {
    let mut refusal = None;
    let result = edit_file(&app.path, |m| {
        f(m).map_err(|e| match e {
            EditError::Storage(e) => e,
            EditError::Refused(status, code, message) => {
                refusal = Some((status, code, message));
                crate::Error::input("refused")
            }
        })
    });
    match (result, refusal) {
        (_, Some((status, code, message))) => Err(Box::new(graph_error(status, code, message))),
        (Ok(_), None) => Ok(()),
        (Err(e), None) => {
            if st.log {
                eprintln!("keycred emulate: could not update application {}: {e}", app.app_id);
            }
            Err(Box::new(graph_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "generalException",
                "The application could not be updated; the emulator's log says why.",
            )))
        }
    }
}

/// `applications(appId='...')` (alternate key) or an object id.
fn find_app(st: &AppState, raw: &str) -> Option<Arc<super::App>> {
    if let Some(app_id) = raw.strip_prefix("applications(appId='").and_then(|r| r.strip_suffix("')")) {
        return st.app(app_id);
    }
    st.registry.find_by_object_id(raw)
}

async fn get_app_by_ref(
    st: St,
    Path(reference): Path<String>,
    q: Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if !reference.starts_with("applications(") {
        return not_found(&reference);
    }
    get_app(st, Path(reference), q, headers).await
}

fn not_found(raw: &str) -> Response {
    graph_error(
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
        format!("Resource '{raw}' does not exist or one of its queried reference-property objects are not present."),
    )
}

fn forbidden() -> Response {
    graph_error(
        StatusCode::FORBIDDEN,
        "Authorization_RequestDenied",
        "Insufficient privileges to complete the operation.",
    )
}

/// The application as Graph shows it: `id`, `appId`, `displayName`, `keyCredentials` in Graph
/// shape (whatever the manifest's own format). As on Graph, `$select` (comma-separated,
/// case-insensitive) limits the properties, and certificate bodies (`key`) are returned only when
/// `keyCredentials` is selected explicitly; otherwise `key` is `null`.
fn app_json(app: &super::App, select: Option<&str>) -> Value {
    let selected: Option<Vec<&str>> = select.map(|s| s.split(',').map(str::trim).filter(|p| !p.is_empty()).collect());
    let is_selected = |name: &str| selected.as_ref().map(|s| s.iter().any(|p| p.eq_ignore_ascii_case(name)));
    let wants = |name: &str| is_selected(name).unwrap_or(true);
    let with_bodies = is_selected("keyCredentials").unwrap_or(false);
    let m = Manifest::load(&app.path).ok();
    let mut out = Map::new();
    let context = match &selected {
        Some(s) => format!("https://graph.microsoft.com/v1.0/$metadata#applications({})/$entity", s.join(",")),
        None => "https://graph.microsoft.com/v1.0/$metadata#applications/$entity".to_string(),
    };
    out.insert("@odata.context".into(), json!(context));
    if wants("id") {
        out.insert("id".into(), json!(object_id(app)));
    }
    if wants("appId") {
        out.insert("appId".into(), json!(app.app_id));
    }
    if wants("displayName") {
        out.insert("displayName".into(), json!(m.as_ref().and_then(|m| m.display_name())));
    }
    if wants("keyCredentials") {
        let entries: Vec<Value> = m
            .as_ref()
            .map(|m| {
                m.raw_entries()
                    .iter()
                    .map(|e| {
                        let mut e = to_graph_shape(e);
                        if let (false, Some(o)) = (with_bodies, e.as_object_mut()) {
                            o.insert("key".into(), Value::Null);
                        }
                        e
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.insert("keyCredentials".into(), json!(entries));
    }
    Value::Object(out)
}

fn object_id(app: &super::App) -> String {
    app.object_id.clone().unwrap_or_else(|| app.sp_object_id.clone())
}

/// Legacy field names to Graph's.
fn to_graph_shape(v: &Value) -> Value {
    let Some(o) = v.as_object() else { return v.clone() };
    let mut out = Map::new();
    for (k, val) in o {
        let k = match k.as_str() {
            "value" => "key",
            "startDate" => "startDateTime",
            "endDate" => "endDateTime",
            other => other,
        };
        out.insert(k.to_string(), val.clone());
    }
    Value::Object(out)
}

/// Graph field names to the manifest's format.
fn to_format(v: &Value, format: Format) -> Value {
    let Some(o) = v.as_object() else { return v.clone() };
    if format == Format::MsGraph {
        return v.clone();
    }
    let mut out = Map::new();
    for (k, val) in o {
        let k = match k.as_str() {
            "key" => "value",
            "startDateTime" => "startDate",
            "endDateTime" => "endDate",
            "displayName" => continue,
            other => other,
        };
        out.insert(k.to_string(), val.clone());
    }
    Value::Object(out)
}

async fn get_app(
    State(st): St,
    Path(raw): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let who = match caller(&st, &headers) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let Some(app) = find_app(&st, &raw) else { return not_found(&raw) };
    if !who.app_id.eq_ignore_ascii_case(&app.app_id)
        && !who.can_write()
        && !who.roles.iter().any(|r| r == "Application.Read.All")
    {
        return forbidden();
    }
    Json(app_json(&app, q.get("$select").map(String::as_str))).into_response()
}

async fn patch_app(State(st): St, Path(raw): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let who = match caller(&st, &headers) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let body = match json_body(&headers, &body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let Some(app) = find_app(&st, &raw) else { return not_found(&raw) };
    if !who.can_write() {
        return forbidden();
    }
    let entries = match body.get("keyCredentials") {
        Some(Value::Array(entries)) => entries,
        Some(_) => {
            return graph_error(
                StatusCode::BAD_REQUEST,
                "Request_BadRequest",
                "keyCredentials is not an array; send the whole collection as an array of keyCredential objects.",
            )
        }
        None => {
            return graph_error(
                StatusCode::BAD_REQUEST,
                "Request_BadRequest",
                "Only keyCredentials can be changed by this emulator; the body has none.",
            )
        }
    };
    let result = edit_app(&st, &app, |m| {
        let format = m.detect_format().unwrap_or(Format::MsGraph);
        let existing = m.credentials();
        let mut out = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let mut e =
                e.as_object().cloned().ok_or_else(|| bad_request(format!("keyCredentials[{i}] is not an object")))?;
            let key_id = e.get("keyId").and_then(Value::as_str).map(str::to_string);
            let body_missing = e.get("key").is_none_or(Value::is_null);
            let known = key_id
                .as_deref()
                .and_then(|k| existing.iter().find(|c| c.key_id.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(k))));
            // An entry already registered, sent back without its body (as Graph returns it) or
            // with the same body, is kept as it is: only new entries are validated, so an app
            // whose certificates all expired can still be given a new one (the PATCH fallback).
            if let Some(c) = known {
                let same_body = e
                    .get("key")
                    .and_then(Value::as_str)
                    .is_some_and(|k| c.certificate.as_ref().is_some_and(|cert| cert.value_b64() == k));
                if body_missing || same_body {
                    out.push(m.raw_entries()[c.index].clone());
                    continue;
                }
            }
            if body_missing {
                return Err(bad_request(format!("keyCredentials[{i}] has no key and no known keyId")));
            }
            let der = e
                .get("key")
                .and_then(Value::as_str)
                .and_then(|k| base64::engine::general_purpose::STANDARD.decode(k).ok())
                .ok_or_else(|| bad_request(format!("keyCredentials[{i}].key is not base64")))?;
            // These errors name the request field they were given, nothing of the emulator's.
            let cert = Certificate::from_der(&der, &format!("keyCredentials[{i}].key"))
                .map_err(|e| bad_request(e.message()))?;
            cert.ensure_usable(&format!("keyCredentials[{i}]"), dates::now()).map_err(|e| bad_request(e.message()))?;
            e.entry("customKeyIdentifier").or_insert_with(|| json!(cert.custom_key_identifier()));
            e.entry("keyId").or_insert_with(|| json!(uuid::Uuid::new_v4().to_string()));
            e.entry("type").or_insert_with(|| json!("AsymmetricX509Cert"));
            e.entry("usage").or_insert_with(|| json!("Verify"));
            e.entry("startDateTime").or_insert_with(|| json!(dates::format(cert.not_before())));
            e.entry("endDateTime").or_insert_with(|| json!(dates::format(cert.not_after())));
            out.push(to_format(&Value::Object(e), format));
        }
        Ok(m.replace_key_credentials(&out)?)
    });
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(r) => *r,
    }
}

/// Checks a proof of possession for `app`: RS256, `x5t` of a currently valid registered
/// certificate whose key verifies the signature, `aud` one of Graph's ids, `iss` = the object id,
/// and a current `nbf`/`exp` window of at most ten minutes.
fn check_proof(app: &super::App, proof: Option<&Value>) -> Result<(), String> {
    let proof = match proof {
        None | Some(Value::Null) => {
            return Err("the request has no proof; send the proof-of-possession JWT in 'proof'".into())
        }
        Some(Value::String(p)) if p.trim().is_empty() => return Err("the proof is empty".into()),
        Some(Value::String(p)) => p.as_str(),
        Some(_) => return Err("the proof is not a string; send the JWT as a string".into()),
    };
    // PROTOCOL.md section 7: base64url without `=` padding in every segment, as JWS requires.
    if proof.contains('=') {
        return Err("the proof is not valid base64url without padding: its segments must not contain '='".into());
    }
    let d = dangerous::decode(proof).map_err(|e| format!("the proof is not a JWT ({e})"))?;
    if d.alg() != Some("RS256") {
        return Err(format!("the proof must be signed RS256, not {}", d.alg().unwrap_or("(none)")));
    }
    let now_t = dates::now();
    let valid: Vec<_> =
        app.credentials.iter().filter(|c| c.certificate.is_some() && c.counts_as_valid_at(now_t)).collect();
    if valid.is_empty() {
        return Err(
            "the application has no valid certificate left to sign a proof; update keyCredentials with PATCH instead"
                .into(),
        );
    }
    let x5t = d.header.get("x5t").and_then(Value::as_str).ok_or("the proof has no x5t header")?;
    let sha1 = thumbprint::parse_sha1(x5t).map_err(|_| "the proof's x5t is not a SHA-1 thumbprint".to_string())?;
    let cred = valid.iter().find(|c| c.sha1() == Some(sha1)).ok_or_else(|| {
        format!(
            "the proof is signed by certificate {} which is not a valid registered certificate of the application",
            thumbprint::hex_upper(&sha1)
        )
    })?;
    let cert = cred.certificate.as_ref().expect("filtered on certificate");
    if !d.verify(SignatureAlg::Rs256, cert.rsa_public_key().unwrap_or_default()) {
        return Err("the proof's signature does not verify with the certificate its x5t names".into());
    }
    let aud = d.claim_str("aud").unwrap_or("");
    if aud != PROOF_AUD_AAD_GRAPH && aud != PROOF_AUD_MS_GRAPH {
        return Err(format!("the proof's aud '{aud}' must be {PROOF_AUD_AAD_GRAPH} (or {PROOF_AUD_MS_GRAPH})"));
    }
    let oid = object_id(app);
    if !d.claim_str("iss").is_some_and(|i| i.eq_ignore_ascii_case(&oid)) {
        return Err(format!("the proof's iss must be the application's object id {oid} (not its appId)"));
    }
    let now = now_t.unix_timestamp() as f64;
    // A NumericDate only: `"NaN"` would slip through every comparison below.
    let nbf = d.time_claim("nbf")?.ok_or("the proof has no nbf")?;
    let exp = d.time_claim("exp")?.ok_or("the proof has no exp")?;
    if nbf > now + SKEW {
        return Err("the proof is not valid yet (nbf in the future)".into());
    }
    if exp < now - SKEW {
        return Err("the proof has expired".into());
    }
    if exp - nbf > 600.0 + SKEW {
        return Err("the proof's lifetime exceeds 10 minutes".into());
    }
    Ok(())
}

fn bad_proof(why: String) -> Response {
    graph_error(StatusCode::BAD_REQUEST, "Authorization_RequestDenied", format!("Invalid proof of possession: {why}"))
}

/// What addKey and removeKey both require: a Graph token of the application itself (or of a
/// caller allowed to write applications) and a valid proof of possession. The token is checked
/// before the body is read, so a bad body without a token is 401, as on Graph.
fn authorize_key_change(
    st: &AppState,
    raw: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Arc<super::App>, Value), Box<Response>> {
    let who = caller(st, headers)?;
    let body = json_body(headers, body)?;
    let app = find_app(st, raw).ok_or_else(|| Box::new(not_found(raw)))?;
    if !who.app_id.eq_ignore_ascii_case(&app.app_id) && !who.can_write() {
        return Err(Box::new(forbidden()));
    }
    check_proof(&app, body.get("proof")).map_err(|why| Box::new(bad_proof(why)))?;
    Ok((app, body))
}

/// addKey adds certificates only: `type` AsymmetricX509Cert and `usage` Verify, as the
/// documentation's request body has them.
fn check_key_kind(kc: &Value) -> Result<(), String> {
    for (field, want) in [("type", "AsymmetricX509Cert"), ("usage", "Verify")] {
        match kc.get(field) {
            Some(Value::String(v)) if v == want => {}
            None | Some(Value::Null) => return Err(format!("keyCredential.{field} is required and must be '{want}'.")),
            Some(v) => {
                return Err(format!("keyCredential.{field} {v} is not supported by addKey; it must be '{want}'."))
            }
        }
    }
    Ok(())
}

async fn add_key(State(st): St, Path(raw): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let (app, body) = match authorize_key_change(&st, &raw, &headers, &body) {
        Ok(checked) => checked,
        Err(r) => return *r,
    };
    let kc = body.get("keyCredential").cloned().unwrap_or(Value::Null);
    if let Err(why) = check_key_kind(&kc) {
        return graph_error(StatusCode::BAD_REQUEST, "Request_BadRequest", why);
    }
    let Some(der) =
        kc.get("key").and_then(Value::as_str).and_then(|k| base64::engine::general_purpose::STANDARD.decode(k).ok())
    else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "keyCredential.key must hold the base64 DER certificate.",
        );
    };
    let cert = match Certificate::from_der(&der, "keyCredential.key")
        .and_then(|c| c.ensure_usable("keyCredential.key", dates::now()).map(|()| c))
    {
        Ok(c) => c,
        Err(e) => return graph_error(StatusCode::BAD_REQUEST, "Request_BadRequest", e.message().to_string()),
    };
    let display_name = kc.get("displayName").and_then(Value::as_str).map(str::to_string);
    let mut added = Value::Null;
    let result = edit_app(&st, &app, |m| {
        let duplicate = Selector::Thumbprint(cert.sha1());
        if let Some(c) = m.credentials().iter().find(|c| duplicate.matches(c)) {
            return Err(bad_request(format!(
                "The certificate with thumbprint {} is already a key credential of this application (keyId {}).",
                cert.thumbprint(),
                c.key_id.as_deref().unwrap_or("none")
            )));
        }
        let format = m.detect_format().unwrap_or(Format::MsGraph);
        let opts = EntryOptions {
            display_name: display_name.clone().or_else(|| Some(cert.subject().to_string())),
            ..EntryOptions::default()
        };
        let entry = entry_for(&cert, format, &opts)?;
        added = to_graph_shape(&Value::Object(entry.clone()));
        Ok(m.add_entry(entry)?)
    });
    match result {
        Ok(()) => {
            let mut v = added;
            v["@odata.context"] = json!("https://graph.microsoft.com/v1.0/$metadata#microsoft.graph.keyCredential");
            (StatusCode::OK, Json(v)).into_response()
        }
        Err(r) => *r,
    }
}

async fn remove_key(State(st): St, Path(raw): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let (app, body) = match authorize_key_change(&st, &raw, &headers, &body) {
        Ok(checked) => checked,
        Err(r) => return *r,
    };
    let key_id = match body.get("keyId") {
        Some(Value::String(k)) => k.trim(),
        None | Some(Value::Null) => {
            return graph_error(StatusCode::BAD_REQUEST, "Request_BadRequest", "The request has no keyId.")
        }
        Some(v) => {
            return graph_error(StatusCode::BAD_REQUEST, "Request_BadRequest", format!("keyId {v} is not a GUID."))
        }
    };
    let Ok(id) = uuid::Uuid::try_parse(key_id) else {
        return graph_error(StatusCode::BAD_REQUEST, "Request_BadRequest", format!("keyId '{key_id}' is not a GUID."));
    };
    let sel = Selector::KeyId(id);
    let result = edit_app(&st, &app, |m| {
        if !m.credentials().iter().any(|c| sel.matches(c)) {
            return Err(EditError::Refused(
                StatusCode::NOT_FOUND,
                "Request_ResourceNotFound",
                format!("No key credential with keyId '{id}' exists on this application."),
            ));
        }
        Ok(m.remove_entries(std::slice::from_ref(&sel))?)
    });
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(r) => *r,
    }
}
