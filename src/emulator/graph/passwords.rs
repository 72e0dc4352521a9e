//! Password credentials (client secrets): `addPassword` and `removePassword`, and the check the
//! token endpoint makes against them.
//!
//! As on Graph, the secret is shown once, in the addPassword answer; the manifest's
//! `passwordCredentials` entry holds only what Graph returns later (`hint`, the dates, `keyId`,
//! `displayName`). The SHA-256 of the secret is kept beside the manifest, in `<manifest>.secrets`
//! (mode 0600, a JSON object from keyId to hash), so that a restarted emulator still accepts it.
//! The secrets are 40 random characters (about 230 bits), so a plain digest is as strong as a
//! slow one here. A secret is accepted for its own application only, between its dates.

use super::keys::{action_context, key_id_of};
use super::{
    authenticate, edit_app, find_app, forbidden, json_body, not_found, storage_failure, Answer, EditError, GraphError,
    SharedState,
};
use crate::emulator::signins::{KeyKind, UsedCredential};
use crate::emulator::App;
use crate::manifest::Manifest;
use crate::thumbprint::sha256;
use crate::{dates, Error, Result};
use axum::body::Bytes;
use axum::extract::{Path as RoutePath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use rand::Rng;
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use time::OffsetDateTime;

/// Where the secret hashes of a manifest live.
pub fn hashes_path(manifest: &Path) -> PathBuf {
    let mut name = manifest.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".secrets");
    manifest.with_file_name(name)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The stored hashes (an absent file is none).
fn read_hashes(manifest: &Path) -> Map<String, Value> {
    let path = hashes_path(manifest);
    match crate::fsio::read(&path) {
        Ok(bytes) => {
            serde_json::from_slice::<Value>(&bytes).ok().and_then(|v| v.as_object().cloned()).unwrap_or_default()
        }
        Err(_) => Map::new(),
    }
}

/// Replaces the stored hashes.
fn write_hashes(manifest: &Path, hashes: &Map<String, Value>) -> Result<()> {
    let text = serde_json::to_string_pretty(&Value::Object(hashes.clone()))
        .map_err(|e| Error::internal("cannot encode the secret hashes").caused_by(e))?;
    crate::fsio::atomic_write(&hashes_path(manifest), text.as_bytes(), Some(0o600))
}

/// Records the hash of `secret` for `key_id` (before the manifest names the credential, so a
/// crash in between leaves an unused hash, never a credential whose secret does not work).
pub fn store_hash(manifest: &Path, key_id: &str, secret: &str) -> Result<()> {
    let mut hashes = read_hashes(manifest);
    hashes.insert(key_id.to_ascii_lowercase(), json!(hex(&sha256(secret.as_bytes()))));
    write_hashes(manifest, &hashes)
}

/// Forgets the hash of `key_id` (after the manifest no longer names it).
pub fn drop_hash(manifest: &Path, key_id: &str) -> Result<()> {
    let mut hashes = read_hashes(manifest);
    if hashes.remove(&key_id.to_ascii_lowercase()).is_some() {
        write_hashes(manifest, &hashes)?;
    }
    Ok(())
}

/// The current password credential of `app` whose secret is `secret`, if any: its `keyId` and
/// dates, for the sign-in record.
pub fn matching_secret(app: &App, secret: &str, now: OffsetDateTime) -> Option<UsedCredential> {
    let hashes = read_hashes(&app.path);
    if hashes.is_empty() {
        return None;
    }
    let given = sha256(secret.as_bytes());
    let json = app.json();
    let Some(Value::Array(creds)) = json.get("passwordCredentials") else { return None };
    creds.iter().filter_map(Value::as_object).find_map(|c| {
        let date =
            |a: &str, b: &str| c.get(a).or_else(|| c.get(b)).and_then(Value::as_str).and_then(dates::parse_manifest);
        let (start, end) = (date("startDateTime", "startDate"), date("endDateTime", "endDate"));
        let current = start.is_none_or(|s| s <= now) && end.is_none_or(|e| now <= e);
        let key_id = c.get("keyId").and_then(Value::as_str)?;
        let stored = hashes.get(&key_id.to_ascii_lowercase()).and_then(Value::as_str);
        // Compare digests of digests, so the comparison time says nothing about the stored value.
        let same = stored.is_some_and(|h| sha256(h.as_bytes()) == sha256(hex(&given).as_bytes()));
        (current && same).then(|| UsedCredential {
            key_id: key_id.to_string(),
            kind: KeyKind::ClientSecret,
            start,
            end,
        })
    })
}

/// A new secret: 40 characters of the alphabet Entra's secrets use (the first three are the
/// `hint` Graph returns).
pub fn new_secret() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789~._-";
    let mut rng = rand::thread_rng();
    (0..40).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect()
}

/// The `passwordCredential` entry for a new secret, from addPassword's optional body
/// (`displayName`, `startDateTime`, `endDateTime`; the end defaults to two years after the
/// start, as on Graph). Refusals are messages for a 400.
pub fn new_entry(body: &Value, secret: &str, now: OffsetDateTime) -> std::result::Result<Map<String, Value>, String> {
    let pc = match body.get("passwordCredential") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(o)) => o.clone(),
        Some(_) => return Err("passwordCredential must be an object.".into()),
    };
    let date = |name: &str| -> std::result::Result<Option<OffsetDateTime>, String> {
        match pc.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => dates::parse_manifest(s)
                .map(Some)
                .ok_or_else(|| format!("passwordCredential.{name} '{s}' is not a date and time.")),
            Some(v) => Err(format!("passwordCredential.{name} {v} is not a date and time.")),
        }
    };
    let start = date("startDateTime")?.unwrap_or(now);
    let end = match date("endDateTime")? {
        Some(e) => e,
        None => start.replace_year(start.year() + 2).unwrap_or(start + time::Duration::days(730)),
    };
    if end <= start {
        return Err("Password credential end date must be after its start date.".into());
    }
    let display = match pc.get("displayName") {
        None | Some(Value::Null) => Value::Null,
        Some(Value::String(s)) => json!(s),
        Some(v) => return Err(format!("passwordCredential.displayName {v} is not a string.")),
    };
    let mut e = Map::new();
    e.insert("customKeyIdentifier".into(), Value::Null);
    e.insert("displayName".into(), display);
    e.insert("endDateTime".into(), json!(dates::format(end)));
    e.insert("hint".into(), json!(secret.chars().take(3).collect::<String>()));
    e.insert("keyId".into(), json!(uuid::Uuid::new_v4().to_string()));
    e.insert("secretText".into(), Value::Null);
    e.insert("startDateTime".into(), json!(dates::format(start)));
    Ok(e)
}

/// The manifest's password credentials.
pub fn entries(m: &Manifest) -> Vec<Value> {
    match m.root().get("passwordCredentials") {
        Some(Value::Array(a)) => a.clone(),
        _ => Vec::new(),
    }
}

/// The authenticated writer of `raw` and the action's body (an empty body is `{}`, as Graph
/// accepts addPassword without one).
fn authorize_password_change(
    st: &super::AppState,
    raw: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> std::result::Result<(Arc<App>, Value), GraphError> {
    let who = authenticate(st, headers)?;
    let body = if body.iter().all(u8::is_ascii_whitespace) { json!({}) } else { json_body(headers, body)? };
    let app = find_app(st, raw).ok_or_else(|| not_found(raw))?;
    if !who.can_write(&app) {
        return Err(forbidden());
    }
    Ok((app, body))
}

pub(super) fn add_password(
    State(st): SharedState,
    RoutePath(raw): RoutePath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let (app, body) = authorize_password_change(&st, &raw, &headers, &body)?;
    let secret = new_secret();
    let entry = match new_entry(&body, &secret, dates::now()) {
        Ok(e) => e,
        Err(why) => return Err(GraphError::new(StatusCode::BAD_REQUEST, "Request_BadRequest", why)),
    };
    super::policies::check_password(&st, &app, &entry)?;
    let key_id = entry["keyId"].as_str().unwrap_or_default().to_string();
    let result = edit_app(&st, &app, |m| {
        // The hash first: a crash before the manifest names the credential leaves an unused hash.
        store_hash(&app.path, &key_id, &secret)?;
        let mut list = entries(m);
        list.push(Value::Object(entry.clone()));
        Ok(m.set_member("passwordCredentials", &Value::Array(list))?)
    });
    result?;
    let mut v = Map::new();
    v.insert("@odata.context".into(), json!(action_context(&st, "passwordCredential")));
    v.extend(entry);
    v.insert("secretText".into(), json!(secret));
    Ok((StatusCode::OK, Json(Value::Object(v))).into_response())
}

pub(super) fn remove_password(
    State(st): SharedState,
    RoutePath(raw): RoutePath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let (app, body) = authorize_password_change(&st, &raw, &headers, &body)?;
    let id = key_id_of(&body)?.to_string();
    let result = edit_app(&st, &app, |m| {
        let list = entries(m);
        let same = |c: &Value| c.get("keyId").and_then(Value::as_str).is_some_and(|k| k.eq_ignore_ascii_case(&id));
        if !list.iter().any(same) {
            return Err(EditError::Refused(
                StatusCode::NOT_FOUND,
                "Request_ResourceNotFound",
                format!("No password credential with keyId '{id}' exists on this application."),
            ));
        }
        let kept: Vec<Value> = list.into_iter().filter(|c| !same(c)).collect();
        Ok(m.set_member("passwordCredentials", &Value::Array(kept))?)
    });
    result?;
    drop_hash(&app.path, &id).map_err(|e| storage_failure(&st, &app, &e))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_entries_hold_the_hint_and_default_to_two_years() {
        let now = dates::parse("2026-01-15T10:00:00Z", "t").unwrap();
        let s = new_secret();
        assert_eq!(s.len(), 40);
        let e = new_entry(&json!({"passwordCredential": {"displayName": "ci"}}), &s, now).unwrap();
        assert_eq!(e["hint"], json!(&s[..3]));
        assert_eq!(e["secretText"], Value::Null);
        assert_eq!(
            (e["startDateTime"].as_str(), e["endDateTime"].as_str()),
            (Some("2026-01-15T10:00:00Z"), Some("2028-01-15T10:00:00Z"))
        );
        assert!(new_entry(&json!({"passwordCredential": {"endDateTime": "2020-01-01T00:00:00Z"}}), &s, now).is_err());
        assert_eq!(hashes_path(Path::new("/d/app.json")), Path::new("/d/app.json.secrets"));
    }
}
