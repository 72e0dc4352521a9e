//! Changing an application's credentials: `PATCH` of the whole `keyCredentials` collection,
//! `addKey`/`removeKey` with a proof of possession (PROTOCOL.md section 7).
//!
//! What Graph does with a PATCH body is done here too: entries sent back by `keyId` with
//! `"key": null` (as GET returns them) keep what is registered; a new certificate's base64 may
//! hold line breaks (the Azure CLI sends the PEM body) and is stored canonical; OData annotations
//! (`@odata.type`) are not stored; a missing `customKeyIdentifier` or `displayName` is filled with
//! the upper-case hex SHA-1 thumbprint and the certificate's subject; dates must lie within the
//! certificate's validity; two entries with one `keyId`, or one certificate twice, are refused.

use super::{
    authenticate, bad_request, edit_app, find_app, forbidden, json_body, not_found, objects, Answer, EditError,
    GraphError, SharedState, SKEW,
};
use crate::cert::{Certificate, SignatureAlg};
use crate::emulator::App;
use crate::graph::{PROOF_AUD_AAD_GRAPH, PROOF_AUD_MS_GRAPH};
use crate::jwt::dangerous;
use crate::manifest::{entry_for, EntryOptions, Format, Manifest, Selector};
use crate::{dates, thumbprint};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use base64::Engine;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use time::OffsetDateTime;

/// Graph's answer to two entries sharing a `keyId` (observed for duplicate `appRoles` ids in a
/// PATCH of an application; the emulator also gives it for one certificate sent twice).
fn duplicate() -> EditError {
    EditError::Refused(
        StatusCode::BAD_REQUEST,
        "DuplicateValue",
        "Request contains a property with duplicate values.".into(),
    )
}

/// Legacy field names for a legacy manifest; Graph's otherwise.
fn to_format(v: Map<String, Value>, format: Format) -> Value {
    if format == Format::MsGraph {
        return Value::Object(v);
    }
    let mut out = Map::new();
    for (k, val) in v {
        let k = match k.as_str() {
            "key" => "value",
            "startDateTime" => "startDate",
            "endDateTime" => "endDate",
            "displayName" => continue,
            other => other,
        };
        out.insert(k.to_string(), val);
    }
    Value::Object(out)
}

/// The `customKeyIdentifier` Graph fills in: the upper-case hex thumbprint in Graph-shaped
/// entries; in legacy manifests the base64 SHA-1 the legacy format uses (PROTOCOL.md section 1).
fn filled_cki(cert: &Certificate, format: Format) -> String {
    match format {
        Format::MsGraph => cert.thumbprint(),
        Format::AadGraph => cert.custom_key_identifier(),
    }
}

/// A base64 certificate body as Graph accepts it: whitespace (line breaks every 64 characters,
/// as in a PEM body) ignored.
fn decode_key(v: &Value) -> Option<Vec<u8>> {
    let s: String = v.as_str()?.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

fn date_field(e: &Map<String, Value>, i: usize, name: &str) -> Result<Option<OffsetDateTime>, EditError> {
    match e.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => dates::parse_manifest(s)
            .map(Some)
            .ok_or_else(|| bad_request(format!("keyCredentials[{i}].{name} '{s}' is not a date and time."))),
        Some(v) => Err(bad_request(format!("keyCredentials[{i}].{name} {v} is not a date and time."))),
    }
}

/// The new `keyCredentials` of `m` after a PATCH sending `entries`, checked as Graph checks them.
fn patched_key_credentials(m: &Manifest, entries: &[Value], now: OffsetDateTime) -> Result<Vec<Value>, EditError> {
    let format = m.detect_format().unwrap_or(Format::MsGraph);
    let existing = m.credentials();
    let mut seen = SeenKeys::default();
    let mut out = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let mut e =
            e.as_object().cloned().ok_or_else(|| bad_request(format!("keyCredentials[{i}] is not an object")))?;
        // Annotations describe the payload; Graph does not store them.
        e.retain(|k, _| !k.starts_with('@'));
        let key_id = entry_key_id(&e, i)?;
        let body = e.get("key").filter(|v| !v.is_null());
        let known = key_id
            .as_deref()
            .and_then(|k| existing.iter().find(|c| c.key_id.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(k))));
        // An entry already registered, sent back without its body (as Graph returns it) or
        // with the same body, is kept as it is: only new entries are validated, so an app
        // whose certificates all expired can still be given a new one (the PATCH fallback).
        if let Some(c) = known {
            let same_body = body
                .and_then(decode_key)
                .is_some_and(|der| c.certificate.as_ref().is_some_and(|cert| cert.der() == der.as_slice()));
            if body.is_none() || same_body {
                seen.check(key_id.as_deref(), c.sha1())?;
                out.push(m.raw_entries()[c.index].clone());
                continue;
            }
            // A registered credential's key cannot be changed under its keyId (observed:
            // "Update to existing credential with KeyId ... is not allowed.", KeyNotUpdatable).
            return Err(bad_request(format!(
                "Update to existing credential with KeyId '{}' is not allowed.",
                key_id.as_deref().unwrap_or_default()
            )));
        }
        let Some(body) = body else {
            return Err(EditError::Refused(
                StatusCode::BAD_REQUEST,
                "KeyCredentialsInvalidValue",
                format!("keyCredentials[{i}] has no key and no keyId of a registered credential."),
            ));
        };
        out.push(new_key_credential(&e, i, key_id, body, format, now, &mut seen)?);
    }
    Ok(out)
}

/// The keyIds and thumbprints already in a PATCH body: Graph refuses a body naming one twice.
#[derive(Default)]
struct SeenKeys {
    key_ids: Vec<String>,
    thumbprints: Vec<[u8; 20]>,
}

impl SeenKeys {
    /// Records one entry's keyId and thumbprint, refusing either when an earlier entry had it.
    fn check(&mut self, key_id: Option<&str>, sha1: Option<[u8; 20]>) -> Result<(), EditError> {
        if let Some(k) = key_id {
            let k = k.to_ascii_lowercase();
            if self.key_ids.contains(&k) {
                return Err(duplicate());
            }
            self.key_ids.push(k);
        }
        if let Some(t) = sha1 {
            if self.thumbprints.contains(&t) {
                return Err(duplicate());
            }
            self.thumbprints.push(t);
        }
        Ok(())
    }
}

/// The entry's `keyId` in canonical GUID form, `None` when absent or null.
fn entry_key_id(e: &Map<String, Value>, i: usize) -> Result<Option<String>, EditError> {
    match e.get("keyId") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(k)) => {
            let id = uuid::Uuid::try_parse(k.trim())
                .map_err(|_| bad_request(format!("keyCredentials[{i}].keyId '{k}' is not a GUID.")))?;
            Ok(Some(id.to_string()))
        }
        Some(v) => Err(bad_request(format!("keyCredentials[{i}].keyId {v} is not a GUID."))),
    }
}

/// A string property of the entry, `default` when absent or null.
fn entry_text(e: &Map<String, Value>, i: usize, name: &str, default: &str) -> Result<String, EditError> {
    match e.get(name) {
        None | Some(Value::Null) => Ok(default.to_string()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(v) => Err(bad_request(format!("keyCredentials[{i}].{name} {v} is not a string."))),
    }
}

/// Validates a new entry's certificate, usage and dates and builds the stored entry, as Graph fills it.
fn new_key_credential(
    e: &Map<String, Value>,
    i: usize,
    key_id: Option<String>,
    body: &Value,
    format: Format,
    now: OffsetDateTime,
    seen: &mut SeenKeys,
) -> Result<Value, EditError> {
    let der = decode_key(body).ok_or_else(|| bad_request(format!("keyCredentials[{i}].key is not base64")))?;
    // These errors name the request field they were given, nothing of the emulator's.
    let cert =
        Certificate::from_der(&der, &format!("keyCredentials[{i}].key")).map_err(|e| bad_request(e.message()))?;
    cert.ensure_usable(&format!("keyCredentials[{i}]"), now).map_err(|e| bad_request(e.message()))?;
    let usage = entry_text(e, i, "usage", "Verify")?;
    if usage != "Verify" && usage != "Sign" {
        return Err(bad_request(
            "Invalid value specified for property 'usage' of resource 'KeyCredential'. Acceptable values are Sign, Verify.",
        ));
    }
    let kind = entry_text(e, i, "type", "AsymmetricX509Cert")?;
    let start = date_field(e, i, "startDateTime")?.unwrap_or(cert.not_before());
    let end = date_field(e, i, "endDateTime")?.unwrap_or(cert.not_after());
    if start < cert.not_before() || start > cert.not_after() {
        return Err(bad_request("Key credential start date is invalid."));
    }
    if end > cert.not_after() || end < start {
        return Err(bad_request("Key credential end date is invalid."));
    }
    let key_id = key_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    seen.check(Some(&key_id), Some(cert.sha1()))?;
    let mut entry = Map::new();
    entry.insert(
        "customKeyIdentifier".into(),
        json!(entry_text(e, i, "customKeyIdentifier", &filled_cki(&cert, format))?),
    );
    entry.insert("displayName".into(), json!(entry_text(e, i, "displayName", cert.subject())?));
    entry.insert("endDateTime".into(), json!(dates::format(end)));
    entry.insert("key".into(), json!(cert.value_b64()));
    entry.insert("keyId".into(), json!(key_id));
    entry.insert("startDateTime".into(), json!(dates::format(start)));
    entry.insert("type".into(), json!(kind));
    entry.insert("usage".into(), json!(usage));
    Ok(to_format(entry, format))
}

/// The properties a PATCH of an application may set here (`passwordCredentials` only as Graph
/// allows it: sending back the existing ones).
const PATCHABLE: [&str; 3] = ["keyCredentials", "passwordCredentials", "requiredResourceAccess"];

pub(super) fn patch_app(State(st): SharedState, Path(raw): Path<String>, headers: HeaderMap, body: Bytes) -> Answer {
    let who = authenticate(&st, &headers)?;
    let body = json_body(&headers, &body)?;
    let Some(app) = find_app(&st, &raw) else { return Err(not_found(&raw)) };
    if !who.can_write(&app) {
        return Err(forbidden());
    }
    let Some(props) = body.as_object() else {
        return Err(GraphError::new(StatusCode::BAD_REQUEST, "BadRequest", "The request body must be a JSON object."));
    };
    if let Some(p) = props.get("passwordCredentials") {
        let current: Vec<Value> = objects::password_credentials(app.json().get("passwordCredentials"))
            .iter()
            .map(|c| c["keyId"].clone())
            .collect();
        let sent: Vec<Value> = objects::password_credentials(Some(p)).iter().map(|c| c["keyId"].clone()).collect();
        if sent.iter().any(|k| !current.contains(k)) {
            return Err(GraphError::new(
                StatusCode::BAD_REQUEST,
                "Request_BadRequest",
                "New password credentials must be generated using service actions.",
            ));
        }
    }
    if let Some(other) = props.keys().find(|k| !k.starts_with('@') && !PATCHABLE.contains(&k.as_str())) {
        return Err(GraphError::new(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            format!(
                "This emulator changes keyCredentials and requiredResourceAccess only; the body also sets '{other}'."
            ),
        ));
    }
    let access = props.get("requiredResourceAccess");
    if let Some(Err(why)) = access.map(super::access::check) {
        return Err(GraphError::new(StatusCode::BAD_REQUEST, "Request_BadRequest", why));
    }
    let entries = match props.get("keyCredentials") {
        Some(Value::Array(entries)) => Some(entries),
        Some(_) => {
            return Err(GraphError::new(
                StatusCode::BAD_REQUEST,
                "Request_BadRequest",
                "keyCredentials is not an array; send the whole collection as an array of keyCredential objects.",
            ))
        }
        None => None,
    };
    if entries.is_none() && access.is_none() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    super::policies::check_patch(&st, &app, entries.map(Vec::as_slice).unwrap_or_default())?;
    let result = edit_app(&st, &app, |m| {
        let mut m = m.clone();
        if let Some(entries) = entries {
            let new = patched_key_credentials(&m, entries, dates::now())?;
            m = m.replace_key_credentials(&new)?;
        }
        if let Some(access) = access {
            m = m.set_member("requiredResourceAccess", access)?;
        }
        Ok(m)
    });
    result?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A refused proof: status, Graph code, message.
type ProofError = (StatusCode, &'static str, String);

fn bad_proof(why: impl Into<String>) -> ProofError {
    (StatusCode::BAD_REQUEST, "Authorization_RequestDenied", format!("Invalid proof of possession: {}", why.into()))
}

/// Checks a proof of possession for `app`: RS256, `x5t` of a currently valid registered
/// certificate whose key verifies the signature, `aud` Azure AD Graph's id (real Graph refuses
/// Microsoft Graph's own `00000003-...` with 401), `iss` = the object id, and a current
/// `nbf`/`exp` window of at most ten minutes.
fn check_proof(app: &App, proof: Option<&Value>) -> Result<(), ProofError> {
    let proof = match proof {
        None | Some(Value::Null) => {
            return Err(bad_proof("the request has no proof; send the proof-of-possession JWT in 'proof'"))
        }
        Some(Value::String(p)) if p.trim().is_empty() => return Err(bad_proof("the proof is empty")),
        Some(Value::String(p)) => p.as_str(),
        Some(_) => return Err(bad_proof("the proof is not a string; send the JWT as a string")),
    };
    // PROTOCOL.md section 7: base64url without `=` padding in every segment, as JWS requires.
    if proof.contains('=') {
        return Err(bad_proof("the proof is not valid base64url without padding: its segments must not contain '='"));
    }
    let d = dangerous::decode(proof).map_err(|e| bad_proof(format!("the proof is not a JWT ({e})")))?;
    if d.alg() != Some("RS256") {
        return Err(bad_proof(format!("the proof must be signed RS256, not {}", d.alg().unwrap_or("(none)"))));
    }
    let now_t = dates::now();
    let valid: Vec<_> =
        app.credentials.iter().filter(|c| c.certificate.is_some() && c.counts_as_valid_at(now_t)).collect();
    if valid.is_empty() {
        return Err(bad_proof(
            "the application has no valid certificate left to sign a proof; update keyCredentials with PATCH instead",
        ));
    }
    let x5t = d.header.get("x5t").and_then(Value::as_str).ok_or_else(|| bad_proof("the proof has no x5t header"))?;
    let sha1 = thumbprint::parse_sha1(x5t).map_err(|_| bad_proof("the proof's x5t is not a SHA-1 thumbprint"))?;
    let cred = valid.iter().find(|c| c.sha1() == Some(sha1)).ok_or_else(|| {
        bad_proof(format!(
            "the proof is signed by certificate {} which is not a valid registered certificate of the application",
            thumbprint::hex_upper(&sha1)
        ))
    })?;
    let cert = cred.certificate.as_ref().expect("filtered on certificate");
    if !d.verify(SignatureAlg::Rs256, cert.rsa_public_key().unwrap_or_default()) {
        return Err(bad_proof("the proof's signature does not verify with the certificate its x5t names"));
    }
    let aud = d.claim_str("aud").unwrap_or("");
    if aud == PROOF_AUD_MS_GRAPH {
        return Err((
            StatusCode::UNAUTHORIZED,
            "Authentication_MissingOrMalformed",
            format!("The proof of possession's audience must be {PROOF_AUD_AAD_GRAPH}, not {PROOF_AUD_MS_GRAPH}."),
        ));
    }
    if aud != PROOF_AUD_AAD_GRAPH {
        return Err(bad_proof(format!("the proof's aud '{aud}' must be {PROOF_AUD_AAD_GRAPH}")));
    }
    let oid = objects::object_id(app);
    if !d.claim_str("iss").is_some_and(|i| i.eq_ignore_ascii_case(&oid)) {
        return Err(bad_proof(format!("the proof's iss must be the application's object id {oid} (not its appId)")));
    }
    let now = now_t.unix_timestamp() as f64;
    // A NumericDate only: `"NaN"` would slip through every comparison below.
    let nbf = d.time_claim("nbf").map_err(bad_proof)?.ok_or_else(|| bad_proof("the proof has no nbf"))?;
    let exp = d.time_claim("exp").map_err(bad_proof)?.ok_or_else(|| bad_proof("the proof has no exp"))?;
    if nbf > now + SKEW {
        return Err(bad_proof("the proof is not valid yet (nbf in the future)"));
    }
    if exp < now - SKEW {
        return Err(bad_proof("the proof has expired"));
    }
    if exp - nbf > 600.0 + SKEW {
        return Err(bad_proof("the proof's lifetime exceeds 10 minutes"));
    }
    Ok(())
}

/// What addKey and removeKey both require: a Graph token of the application itself (which needs
/// no permission to roll its own keys) or of a caller allowed to write it, and a valid proof of
/// possession. The token is checked before the body is read, so a bad body without a token is
/// 401, as on Graph.
fn authorize_key_change(
    st: &super::AppState,
    raw: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Arc<App>, Value), GraphError> {
    let who = authenticate(st, headers)?;
    let body = json_body(headers, body)?;
    let app = find_app(st, raw).ok_or_else(|| not_found(raw))?;
    if !who.app_id.eq_ignore_ascii_case(&app.app_id) && !who.can_write(&app) {
        return Err(forbidden());
    }
    check_proof(&app, body.get("proof")).map_err(|(status, code, why)| GraphError::new(status, code, why))?;
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

/// The `@odata.context` of an action's answer.
pub(super) fn action_context(st: &super::AppState, kind: &str) -> String {
    format!("{}/v1.0/$metadata#microsoft.graph.{kind}", st.base_url)
}

pub(super) fn add_key(State(st): SharedState, Path(raw): Path<String>, headers: HeaderMap, body: Bytes) -> Answer {
    let (app, body) = authorize_key_change(&st, &raw, &headers, &body)?;
    let kc = body.get("keyCredential").cloned().unwrap_or(Value::Null);
    if let Err(why) = check_key_kind(&kc) {
        return Err(GraphError::new(StatusCode::BAD_REQUEST, "Request_BadRequest", why));
    }
    let Some(der) = kc.get("key").and_then(decode_key) else {
        return Err(GraphError::new(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "keyCredential.key must hold the base64 DER certificate.",
        ));
    };
    let cert = match Certificate::from_der(&der, "keyCredential.key")
        .and_then(|c| c.ensure_usable("keyCredential.key", dates::now()).map(|()| c))
    {
        Ok(c) => c,
        Err(e) => return Err(GraphError::new(StatusCode::BAD_REQUEST, "Request_BadRequest", e.message().to_string())),
    };
    let self_signed = cert.subject_der() == cert.issuer_der();
    super::policies::check_key(&st, &app, cert.not_before(), cert.not_after(), self_signed)?;
    let display_name = kc.get("displayName").and_then(Value::as_str).map(str::to_string);
    // Graph fills customKeyIdentifier only when it is missing; a supplied one is kept.
    let supplied_cki = match kc.get("customKeyIdentifier") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(v) => {
            return Err(GraphError::new(
                StatusCode::BAD_REQUEST,
                "Request_BadRequest",
                format!("keyCredential.customKeyIdentifier {v} is not a string."),
            ))
        }
    };
    let mut added = Map::new();
    let result = edit_app(&st, &app, |m| {
        let duplicate_cert = Selector::Thumbprint(cert.sha1());
        if let Some(c) = m.credentials().iter().find(|c| duplicate_cert.matches(c)) {
            return Err(bad_request(format!(
                "The certificate with thumbprint {} is already a key credential of this application (keyId {}).",
                cert.thumbprint(),
                c.key_id.as_deref().unwrap_or("none")
            )));
        }
        let format = m.detect_format().unwrap_or(Format::MsGraph);
        let opts = EntryOptions {
            display_name: (format == Format::MsGraph)
                .then(|| display_name.clone().unwrap_or_else(|| cert.subject().to_string())),
            ..EntryOptions::default()
        };
        let mut entry = entry_for(&cert, format, &opts)?;
        let cki = supplied_cki.clone().unwrap_or_else(|| filled_cki(&cert, format));
        entry.insert("customKeyIdentifier".into(), json!(cki));
        added = entry.clone();
        Ok(m.add_entry(entry)?)
    });
    result?;
    let shown = objects::key_credentials(Some(&json!([added])), false).remove(0);
    let mut v = Map::new();
    v.insert("@odata.context".into(), json!(action_context(&st, "keyCredential")));
    v.extend(shown.as_object().cloned().unwrap_or_default());
    Ok((StatusCode::OK, Json(Value::Object(v))).into_response())
}

/// The `keyId` of a removeKey or removePassword body.
pub(super) fn key_id_of(body: &Value) -> Result<uuid::Uuid, GraphError> {
    let refuse = |m: String| GraphError::new(StatusCode::BAD_REQUEST, "Request_BadRequest", m);
    match body.get("keyId") {
        Some(Value::String(k)) => {
            uuid::Uuid::try_parse(k.trim()).map_err(|_| refuse(format!("keyId '{}' is not a GUID.", k.trim())))
        }
        None | Some(Value::Null) => Err(refuse("The request has no keyId.".into())),
        Some(v) => Err(refuse(format!("keyId {v} is not a GUID."))),
    }
}

pub(super) fn remove_key(State(st): SharedState, Path(raw): Path<String>, headers: HeaderMap, body: Bytes) -> Answer {
    let (app, body) = authorize_key_change(&st, &raw, &headers, &body)?;
    let id = key_id_of(&body)?;
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
    result?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
