//! Federated identity credentials: Graph's `/applications/{id}/federatedIdentityCredentials`
//! (list, create, get, update, upsert, delete), addressed by id or by the alternate key
//! `federatedIdentityCredentials(name='...')`, with Graph's rules ([`crate::fic::rules`]).
//!
//! Graph keeps them beside the application, never inside the application entity; the emulator
//! stores them in the application's manifest under `federatedIdentityCredentials` (which the
//! application entity does not show), so the token endpoint reads them with the rest of the app
//! and they survive a restart. Each change is one locked, atomic edit of the manifest.
//!
//! Upsert is Graph's `PATCH .../federatedIdentityCredentials(name='...')` with
//! `Prefer: create-if-missing`: 201 with the new credential when none has that name, 204 when it
//! updated one. Without the header a PATCH of a missing credential is 404.

use super::read::context;
use super::{authenticate, edit_app, find_app, forbidden, graph_json, json_body, not_found, Answer, GraphError};
use super::{blocking, SharedState};
use crate::emulator::{App, AppState};
use crate::fic::{rules, FederatedIdentityCredential, MANIFEST_MEMBER};
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, patch};
use axum::Router;
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// The navigation property's name, as Graph spells it (segments compare case-insensitively).
pub(super) const SEGMENT: &str = "federatedIdentityCredentials";

/// How a request names one credential.
enum Key {
    Id(String),
    Name(String),
}

/// `federatedIdentityCredentials(name='x')` (OData doubles a quote inside the value), or `None`.
pub(super) fn name_key(segment: &str) -> Option<String> {
    let (head, rest) = segment.split_once('(')?;
    if !head.eq_ignore_ascii_case(SEGMENT) {
        return None;
    }
    let inner = rest.strip_suffix(')')?.trim();
    let (k, v) = inner.split_once('=')?;
    if !k.trim().eq_ignore_ascii_case("name") {
        return None;
    }
    let v = v.trim().strip_prefix('\'')?.strip_suffix('\'')?;
    Some(v.replace("''", "'"))
}

/// Whether `segment` is the collection or one of its alternate-key forms.
pub(super) fn is_segment(segment: &str) -> bool {
    segment.eq_ignore_ascii_case(SEGMENT) || name_key(segment).is_some()
}

fn stored(app: &App) -> Vec<FederatedIdentityCredential> {
    crate::fic::from_manifest(&app.json())
}

/// A credential as Graph renders it: its properties in Graph's order, nulls included.
fn render(c: &FederatedIdentityCredential) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".into(), json!(c.id));
    m.insert("name".into(), json!(c.name));
    m.insert("issuer".into(), json!(c.issuer));
    m.insert("subject".into(), json!(c.subject));
    m.insert("description".into(), json!(c.description));
    m.insert("audiences".into(), json!(c.audiences));
    if let Some(e) = &c.claims_matching_expression {
        m.insert("claimsMatchingExpression".into(), e.clone());
    }
    m
}

fn collection_context(st: &AppState, app: &App) -> String {
    context(st, &format!("applications('{}')/{SEGMENT}", app.graph_id()))
}

fn refused(b: rules::Broken) -> GraphError {
    GraphError::new(StatusCode::BAD_REQUEST, b.code, b.message)
}

/// The caller and the application, in Graph's order (token, then the app, then the right).
fn app_for(st: &AppState, raw: &str, headers: &HeaderMap, write: bool) -> Result<Arc<App>, GraphError> {
    let who = authenticate(st, headers)?;
    let app = find_app(st, raw).ok_or_else(|| not_found(raw))?;
    let allowed = if write { who.can_write(&app) } else { who.can_read(&app) };
    if !allowed {
        return Err(forbidden());
    }
    Ok(app)
}

fn find<'a>(list: &'a [FederatedIdentityCredential], key: &Key) -> Option<&'a FederatedIdentityCredential> {
    list.iter().find(|c| match key {
        Key::Id(id) => c.id.as_deref().is_some_and(|i| i.eq_ignore_ascii_case(id)),
        Key::Name(n) => c.name.eq_ignore_ascii_case(n),
    })
}

fn key_of(segment_or_id: &str) -> Key {
    match name_key(segment_or_id) {
        Some(n) => Key::Name(n),
        None => Key::Id(segment_or_id.to_string()),
    }
}

fn missing(key: &Key) -> GraphError {
    let shown = match key {
        Key::Id(id) => id.clone(),
        Key::Name(n) => format!("{SEGMENT}(name='{n}')"),
    };
    not_found(&shown)
}

/// A credential from a request body: a JSON object whose known properties have their types.
fn from_body(body: &Value) -> Result<FederatedIdentityCredential, GraphError> {
    if !body.is_object() {
        return Err(GraphError::bad_request("The request body must be a JSON object."));
    }
    serde_json::from_value(body.clone()).map_err(|e| {
        GraphError::bad_request(format!("The federated identity credential in the request body is not valid: {e}."))
    })
}

/// Writes the application's credentials back.
fn save(st: &AppState, app: &App, list: &[FederatedIdentityCredential]) -> Result<(), GraphError> {
    let value = Value::Array(list.iter().map(FederatedIdentityCredential::to_value).collect());
    edit_app(st, app, |m| Ok(m.set_member(MANIFEST_MEMBER, &value)?))
}

/// `GET .../federatedIdentityCredentials`.
pub(super) fn list(st: &AppState, raw: &str, headers: &HeaderMap) -> Answer {
    let app = app_for(st, raw, headers, false)?;
    let value: Vec<Value> = stored(&app).iter().map(|c| Value::Object(render(c))).collect();
    Ok(graph_json(json!({"@odata.context": collection_context(st, &app), "value": value})))
}

/// `GET .../federatedIdentityCredentials/{id}` or `...(name='x')`.
pub(super) fn get_one(st: &AppState, raw: &str, which: &str, headers: &HeaderMap) -> Answer {
    let app = app_for(st, raw, headers, false)?;
    let key = key_of(which);
    let list = stored(&app);
    let c = find(&list, &key).ok_or_else(|| missing(&key))?;
    Ok(entity(st, &app, c))
}

fn entity(st: &AppState, app: &App, c: &FederatedIdentityCredential) -> axum::response::Response {
    let mut out = Map::new();
    out.insert("@odata.context".into(), json!(format!("{}/$entity", collection_context(st, app))));
    out.extend(render(c));
    graph_json(Value::Object(out))
}

/// Adds `new` (checked against the others) and answers 201 with it.
fn create_checked(st: &AppState, app: &App, mut new: FederatedIdentityCredential) -> Answer {
    let mut list = stored(app);
    rules::check_against(&list, &new, None).map_err(refused)?;
    new.id = Some(uuid::Uuid::new_v4().to_string());
    list.push(new.clone());
    save(st, app, &list)?;
    let mut resp = entity(st, app, &new);
    *resp.status_mut() = StatusCode::CREATED;
    Ok(resp)
}

/// `POST .../federatedIdentityCredentials`.
pub(super) fn create(st: &AppState, raw: &str, headers: &HeaderMap, body: &[u8]) -> Answer {
    let app = app_for(st, raw, headers, true)?;
    let new = from_body(&json_body(headers, body)?)?;
    create_checked(st, &app, new)
}

/// `PATCH .../federatedIdentityCredentials/{id}` or `...(name='x')`: an update of the properties
/// sent (`name` is immutable), or an upsert with `Prefer: create-if-missing`.
pub(super) fn update(st: &AppState, raw: &str, which: &str, headers: &HeaderMap, body: &[u8]) -> Answer {
    let app = app_for(st, raw, headers, true)?;
    let body = json_body(headers, body)?;
    let sent =
        body.as_object().cloned().ok_or_else(|| GraphError::bad_request("The request body must be a JSON object."))?;
    let key = key_of(which);
    let list = stored(&app);
    let Some(current) = find(&list, &key).cloned() else {
        let upsert = headers
            .get_all("prefer")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|p| p.trim().eq_ignore_ascii_case("create-if-missing")));
        return match (&key, upsert) {
            (Key::Name(name), true) => {
                let mut new = from_body(&body)?;
                new.name = name.clone();
                create_checked(st, &app, new)
            }
            _ => Err(missing(&key)),
        };
    };
    if sent.get("name").and_then(Value::as_str).is_some_and(|n| n != current.name) {
        return Err(GraphError::new(
            StatusCode::BAD_REQUEST,
            rules::INVALID_VALUE,
            "The name of a federated identity credential cannot be changed.",
        ));
    }
    let mut merged = match current.to_value() {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    merged.extend(sent.into_iter().filter(|(k, _)| k != "id"));
    let updated = from_body(&Value::Object(merged))?;
    rules::check_against(&list, &updated, Some(&current.name)).map_err(refused)?;
    let list: Vec<FederatedIdentityCredential> =
        list.into_iter().map(|c| if c.name == current.name { updated.clone() } else { c }).collect();
    save(st, &app, &list)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE .../federatedIdentityCredentials/{id}` or `...(name='x')`.
pub(super) fn delete(st: &AppState, raw: &str, which: &str, headers: &HeaderMap) -> Answer {
    let app = app_for(st, raw, headers, true)?;
    let key = key_of(which);
    let list = stored(&app);
    let gone = find(&list, &key).ok_or_else(|| missing(&key))?.name.clone();
    let kept: Vec<FederatedIdentityCredential> = list.into_iter().filter(|c| c.name != gone).collect();
    save(st, &app, &kept)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Graph's 405 for a method a path under an application does not take (after the token check).
pub(super) fn method_not_allowed(st: &AppState, headers: &HeaderMap) -> Answer {
    authenticate(st, headers)?;
    Err(GraphError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "Request_BadRequest",
        "Specified HTTP method is not allowed for the request target.",
    ))
}

/// The routes of the credentials that take methods other than the application's own routes do
/// (`GET` of the collection and `POST` to it go through the application's navigation and action
/// dispatch): `PATCH` and `DELETE` by name, and the three methods by id.
pub(super) fn routes() -> Router<Arc<AppState>> {
    let by_id = || {
        get(|s: SharedState, p: Path<(String, String)>, h: HeaderMap| {
            blocking(move || by_id(s, p, h, None, Method::GET))
        })
        .patch(|s: SharedState, p: Path<(String, String)>, h: HeaderMap, b: Bytes| {
            blocking(move || by_id(s, p, h, Some(b), Method::PATCH))
        })
        .delete(|s: SharedState, p: Path<(String, String)>, h: HeaderMap| {
            blocking(move || by_id(s, p, h, None, Method::DELETE))
        })
    };
    Router::new()
        .route(
            "/v1.0/applications/{id}/{action}",
            patch(|s: SharedState, p: Path<(String, String)>, h: HeaderMap, b: Bytes| {
                blocking(move || navigation(s, p, h, Some(b), Method::PATCH))
            })
            .delete(|s: SharedState, p: Path<(String, String)>, h: HeaderMap| {
                blocking(move || navigation(s, p, h, None, Method::DELETE))
            }),
        )
        .route(
            "/v1.0/{reference}/{action}",
            get(|s: SharedState, p: Path<(String, String)>, h: HeaderMap| {
                blocking(move || navigation(s, p, h, None, Method::GET))
            })
            .patch(|s: SharedState, p: Path<(String, String)>, h: HeaderMap, b: Bytes| {
                blocking(move || navigation(s, p, h, Some(b), Method::PATCH))
            })
            .delete(|s: SharedState, p: Path<(String, String)>, h: HeaderMap| {
                blocking(move || navigation(s, p, h, None, Method::DELETE))
            }),
        )
        .route("/v1.0/applications/{id}/federatedIdentityCredentials/{fid}", by_id())
        .route("/v1.0/{reference}/federatedIdentityCredentials/{fid}", by_id())
}

/// Whether `raw` names an application: an object id, or `applications(appId='...')`.
fn names_application(raw: &str) -> bool {
    !raw.contains('(') || raw.starts_with("applications(")
}

/// `{app}/{navigation}` for GET, PATCH and DELETE: a credential by name (PATCH, DELETE), or, for
/// an application named by `appId`, any navigation GET (as `applications/{id}/...` has).
fn navigation(
    st: SharedState,
    Path((app, nav)): Path<(String, String)>,
    headers: HeaderMap,
    body: Option<Bytes>,
    method: Method,
) -> Answer {
    if !names_application(&app) {
        return super::unknown_segment(&st, &headers, &app);
    }
    match (method, name_key(&nav)) {
        (Method::GET, _) => super::get_navigation(st, Path((app, nav)), headers),
        (Method::PATCH, Some(_)) => update(&st, &app, &nav, &headers, &body.unwrap_or_default()),
        (Method::DELETE, Some(_)) => delete(&st, &app, &nav, &headers),
        _ => method_not_allowed(&st, &headers),
    }
}

/// One credential by id, under an application named by object id or `appId`.
fn by_id(
    st: SharedState,
    Path((app, fid)): Path<(String, String)>,
    headers: HeaderMap,
    body: Option<Bytes>,
    method: Method,
) -> Answer {
    if !names_application(&app) {
        return super::unknown_segment(&st, &headers, &app);
    }
    match method {
        Method::GET => get_one(&st, &app, &fid, &headers),
        Method::PATCH => update(&st, &app, &fid, &headers, &body.unwrap_or_default()),
        _ => delete(&st, &app, &fid, &headers),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_alternate_key() {
        assert_eq!(name_key("federatedIdentityCredentials(name='main')").as_deref(), Some("main"));
        assert_eq!(name_key("FederatedIdentityCredentials(name = 'it''s')").as_deref(), Some("it's"));
        assert_eq!(name_key("federatedIdentityCredentials(id='x')"), None);
        assert_eq!(name_key("addKey"), None);
        assert!(is_segment("federatedidentitycredentials"));
    }
}
