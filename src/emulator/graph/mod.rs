//! The emulator's slice of Microsoft Graph: the application and service principal endpoints that
//! credential rotation and audits use (PROTOCOL.md sections 7 and 8), backed by the same manifest
//! files as the token endpoint, answering as Graph does so that scripts written against Graph
//! (the Azure CLI's `az ad app credential ...` among them) run against the emulator unchanged.
//!
//! - `GET /v1.0/applications` with `$filter`, `$select`, `$top` and `@odata.nextLink` paging
//!   ([`odata`]), `GET /v1.0/applications/{id}` and `GET /v1.0/applications(appId='..')`;
//! - `PATCH /v1.0/applications/{id}` with the whole `keyCredentials` array, `addKey`/`removeKey`
//!   with a proof of possession ([`keys`]), `addPassword`/`removePassword` ([`passwords`]);
//! - `GET /v1.0/servicePrincipals` and `GET /v1.0/servicePrincipals/{id}` ([`objects`]);
//! - `POST /v1.0/$batch` ([`batch`]);
//! - `GET /beta/reports/appCredentialSignInActivities`, the credential sign-in report ([`signins`]).
//!
//! Every call needs a bearer token this emulator issued for Graph: for `https://graph.microsoft.com`
//! (a v1 token's `aud`) or its app id (v2), or for the emulator's own base URL, which is the
//! Graph resource id of a cloud registered with the emulator as its Graph endpoint (as a
//! national cloud's Graph is its own URL). The token is checked first, before the route's
//! resource and before the body, as Graph does; then the `--throttle` bucket of the caller.
//! Writes need `Application.ReadWrite.All`, or `Application.ReadWrite.OwnedBy` for applications
//! whose manifest lists the caller in `owners`. Each change is written to the manifest file
//! atomically (under its lock), so the token endpoint sees it at the next request. Refusals are
//! in Graph's error shape, also for routes the emulator does not serve, and speak of the request,
//! never of the manifest files or the CLI behind the emulator.

mod batch;
mod error;
mod keys;
pub(super) mod objects;
pub(super) mod odata;
pub(super) mod passwords;
mod signins;
pub(super) mod unserved;

pub(super) use error::{Answer, GraphError};

use super::throttle::retry_after_secs;
use super::{App, AppState, SharedState};
use crate::dates;
use crate::jwt::dangerous;
use crate::manifest::{edit_file, Manifest};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use odata::{EntityType, Query, QueryError};
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// Clock skew tolerated on proofs and bearer tokens, seconds.
const SKEW: f64 = 300.0;
/// Roles that allow reading every application.
const READ_ROLES: [&str; 5] = [
    "Application.Read.All",
    "Application.ReadWrite.All",
    "Application.ReadWrite.OwnedBy",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
const ALL: &str = "Application.ReadWrite.All";
const OWNED_BY: &str = "Application.ReadWrite.OwnedBy";
/// What Graph sends as the Content-Type of its JSON answers.
const GRAPH_JSON: &str =
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";

tokio::task_local! {
    /// The request's ids, for its headers and its error bodies.
    static REQUEST_IDS: RequestIds;
}

/// Graph's `request-id` (one per request: the header and an error body's `innerError` carry
/// the same) and the client's `client-request-id` when it sent one. Without one, Graph puts its
/// `request-id` in the error body's `client-request-id` and sends no such header (observed in the
/// Azure CLI's recorded Graph traffic, `test_app_resolution.yaml`).
#[derive(Clone)]
struct RequestIds {
    request: String,
    client: Option<String>,
}

impl RequestIds {
    fn fresh() -> Self {
        RequestIds { request: uuid::Uuid::new_v4().to_string(), client: None }
    }
    fn current() -> Self {
        REQUEST_IDS.try_with(|i| i.clone()).unwrap_or_else(|_| RequestIds::fresh())
    }
}

/// The Graph routes, merged into the emulator's router.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1.0/$batch", post(batch::batch))
        .route(
            "/v1.0/applications",
            get(|s: SharedState, q: RawQuery, h: HeaderMap| blocking(move || list_applications(s, q, h))),
        )
        .route(
            "/v1.0/applications/{id}",
            get(|s: SharedState, p: Path<String>, q: RawQuery, h: HeaderMap| {
                blocking(move || get_application(s, p, q, h))
            })
            .patch(|s: SharedState, p: Path<String>, h: HeaderMap, b: Bytes| {
                blocking(move || keys::patch_app(s, p, h, b))
            }),
        )
        .route(
            "/v1.0/applications/{id}/{action}",
            post(|s: SharedState, p: Path<(String, String)>, h: HeaderMap, b: Bytes| {
                blocking(move || action(s, p, h, b))
            }),
        )
        .route(
            "/v1.0/servicePrincipals",
            get(|s: SharedState, q: RawQuery, h: HeaderMap| blocking(move || list_service_principals(s, q, h))),
        )
        .route(
            "/v1.0/servicePrincipals/{id}",
            get(|s: SharedState, p: Path<String>, q: RawQuery, h: HeaderMap| {
                blocking(move || get_service_principal(s, p, q, h))
            }),
        )
        .route(
            "/v1.0/{reference}",
            get(|s: SharedState, p: Path<String>, q: RawQuery, h: HeaderMap| {
                blocking(move || get_by_reference(s, p, q, h))
            })
            .patch(|s: SharedState, p: Path<String>, h: HeaderMap, b: Bytes| {
                blocking(move || patch_by_reference(s, p, h, b))
            }),
        )
        .route(signins::PATH, get(|s: SharedState, q: RawQuery, h: HeaderMap| blocking(move || signins::list(s, q, h))))
        .route(
            "/beta/reports/appCredentialSignInActivities/{id}",
            get(|s: SharedState, p: Path<String>, h: HeaderMap| blocking(move || signins::get(s, p, h))),
        )
        .route(
            "/v1.0/{reference}/{action}",
            post(|s: SharedState, p: Path<(String, String)>, h: HeaderMap, b: Bytes| {
                blocking(move || action_by_reference(s, p, h, b))
            }),
        )
        .layer(axum::middleware::from_fn(graph_headers))
}

/// The Graph routes alone, with Graph's answers for the rest: what a `$batch` runs its inner
/// requests through.
fn router(st: Arc<AppState>) -> axum::Router {
    Router::new()
        .merge(routes())
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(st.clone(), unserved::layer))
        .with_state(st)
}

/// Runs a handler on the blocking pool, in the request's `client-request-id` scope: handlers
/// read and write manifest files, which must never hold up the async workers (a slow disk, or a
/// file replaced by a FIFO, would stall every endpoint).
async fn blocking<R: IntoResponse>(f: impl FnOnce() -> R + Send + 'static) -> Response {
    let ids = RequestIds::current();
    tokio::task::spawn_blocking(move || REQUEST_IDS.sync_scope(ids, || f().into_response())).await.unwrap_or_else(
        |_| {
            graph_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "generalException",
                "The request failed inside the emulator.",
            )
        },
    )
}

/// Graph's `request-id` on every answer, and `client-request-id` when the client sent one; the
/// ids kept for error bodies.
async fn graph_headers(req: Request, next: Next) -> Response {
    let headers = req.headers().clone();
    with_graph_headers(&headers, next.run(req)).await
}

/// Runs `answer` in the scope of the request's ids and adds Graph's headers.
async fn with_graph_headers(headers: &HeaderMap, answer: impl std::future::Future<Output = Response>) -> Response {
    let client = headers
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map(str::to_string);
    let ids = RequestIds { client, ..RequestIds::fresh() };
    let mut resp = REQUEST_IDS.scope(ids.clone(), answer).await;
    let h = resp.headers_mut();
    if let Some(Ok(v)) = ids.client.as_deref().map(HeaderValue::from_str) {
        h.insert("client-request-id", v);
    }
    if let Ok(v) = HeaderValue::from_str(&ids.request) {
        h.insert("request-id", v);
    }
    resp
}

/// A Graph error answer: `{"error": {"code", "message", "innerError"}}`, the date without `Z`.
pub(super) fn graph_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let ids = RequestIds::current();
    let date = dates::format(dates::now());
    let body = json!({
        "error": {
            "code": code,
            "message": message.into(),
            "innerError": {
                "date": date.trim_end_matches('Z'),
                "request-id": &ids.request,
                "client-request-id": ids.client.as_deref().unwrap_or(&ids.request),
            }
        }
    });
    (status, Json(body)).into_response()
}

/// A successful JSON answer with Graph's Content-Type.
fn graph_json(v: Value) -> Response {
    let mut resp = Json(v).into_response();
    resp.headers_mut().insert(axum::http::header::CONTENT_TYPE, HeaderValue::from_static(GRAPH_JSON));
    resp
}

/// The caller, from a bearer token this emulator issued for Graph.
pub(super) struct Caller {
    pub app_id: String,
    /// The `oid` claim: the caller's service principal.
    pub object_id: String,
    pub roles: Vec<String>,
    /// A user's (delegated) token, not an app-only one.
    pub delegated: bool,
}

impl Caller {
    fn has(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
    fn can_read(&self, app: &App) -> bool {
        self.app_id.eq_ignore_ascii_case(&app.app_id) || READ_ROLES.iter().any(|r| self.has(r))
    }
    fn can_read_all(&self) -> bool {
        READ_ROLES.iter().any(|r| self.has(r))
    }
    /// Whether the manifest's `owners` names the caller (by appId or service principal id, as
    /// strings or as `{"id": ...}`/`{"appId": ...}` objects).
    fn owns(&self, manifest: &Map<String, Value>) -> bool {
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
        self.has(ALL) || (self.has(OWNED_BY) && self.owns(&app.json))
    }
}

/// Authenticates the request (401 in Graph's words), then takes one request from the caller's
/// `--throttle` bucket (429 with `Retry-After`).
pub(super) fn authenticate(st: &AppState, headers: &HeaderMap) -> Result<Caller, GraphError> {
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

fn caller(st: &AppState, headers: &HeaderMap) -> Result<Caller, GraphError> {
    let unauthorized = |m: &str| GraphError::new(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", m);
    let auth = headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
    let token = auth
        .strip_prefix("Bearer ")
        .or_else(|| auth.strip_prefix("bearer "))
        .ok_or_else(|| unauthorized("Access token is empty."))?;
    let d = dangerous::decode(token).map_err(|_| unauthorized("IDX14100: JWT is not well formed."))?;
    // Graph checks its tokens' special signature (over the hashed nonce), as the token endpoint made it.
    if !super::token::signed_by_tenant(st, &d) {
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
    let delegated = !super::token::is_app_only(&d);
    Ok(Caller { app_id, object_id, roles: d.roles(), delegated })
}

/// The JSON body of a write request, read after the caller is authenticated. Graph answers a
/// body that is not JSON with 400 BadRequest, and a Content-Type other than JSON with 415.
pub(super) fn json_body(headers: &HeaderMap, body: &[u8]) -> Result<Value, GraphError> {
    let content_type = headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mime = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if !(mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))) {
        let shown = if content_type.is_empty() { "(none)" } else { content_type };
        return Err(GraphError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "BadRequest",
            format!("Content-Type {shown} is not supported; send the request body as application/json."),
        ));
    }
    serde_json::from_slice(body).map_err(|_| {
        GraphError::bad_request(
            "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.",
        )
    })
}

/// Why an edit of an application was not made: a refusal of the request, answered as such, or a
/// failure of the emulator's own storage, which stays in its log.
pub(super) enum EditError {
    Refused(StatusCode, &'static str, String),
    Storage(crate::Error),
}

impl From<crate::Error> for EditError {
    fn from(e: crate::Error) -> Self {
        EditError::Storage(e)
    }
}

pub(super) fn bad_request(message: impl Into<String>) -> EditError {
    EditError::Refused(StatusCode::BAD_REQUEST, "Request_BadRequest", message.into())
}

/// Applies `f` to the application's manifest under its lock. A refusal from `f` is answered in
/// Graph's shape; any other failure (the file, its lock) is logged and answered 500 without
/// naming files, which are the emulator's business, not the caller's.
pub(super) fn edit_app(
    st: &AppState,
    app: &App,
    mut f: impl FnMut(&Manifest) -> Result<Manifest, EditError>,
) -> Result<(), GraphError> {
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
        (_, Some((status, code, message))) => Err(GraphError::new(status, code, message)),
        (Ok(_), None) => Ok(()),
        (Err(e), None) => Err(storage_failure(st, app, &e)),
    }
}

pub(super) fn storage_failure(st: &AppState, app: &App, e: &crate::Error) -> GraphError {
    if st.log {
        eprintln!("keycred emulate: could not update application {}: {e}", app.app_id);
    }
    GraphError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "generalException",
        "The application could not be updated; the emulator's log says why.",
    )
}

/// An application by object id, or by `applications(appId='...')` (Graph's alternate key).
pub(super) fn find_app(st: &AppState, raw: &str) -> Option<Arc<App>> {
    if let Some(app_id) = raw.strip_prefix("applications(appId='").and_then(|r| r.strip_suffix("')")) {
        return st.app(app_id);
    }
    st.registry.find_by_object_id(raw)
}

pub(super) fn not_found(raw: &str) -> GraphError {
    // An id that is not a GUID (nor an alternate key such as `applications(appId='...')`) is no
    // object identifier at all: Graph answers 400 "Invalid object identifier", not 404 (observed
    // answers quoted in public code, e.g. `Request_BadRequest` "Invalid object identifier 'MyGroup'.").
    if !raw.contains('(') && uuid::Uuid::try_parse(raw).is_err() {
        return GraphError::new(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            format!("Invalid object identifier '{raw}'."),
        );
    }
    GraphError::new(
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
        format!("Resource '{raw}' does not exist or one of its queried reference-property objects are not present."),
    )
}

pub(super) fn forbidden() -> GraphError {
    GraphError::new(
        StatusCode::FORBIDDEN,
        "Authorization_RequestDenied",
        "Insufficient privileges to complete the operation.",
    )
}

/// `{base}/v1.0/$metadata#{what}`.
fn context(st: &AppState, what: &str) -> String {
    format!("{}/v1.0/$metadata#{what}", st.base_url)
}

/// One page of a collection: the entities that pass `$filter`, from `$skiptoken`'s position, at
/// most `$top`, and the link to the next page when there are more. `render` gives the whole
/// entity (before `$select`).
fn page(
    st: &AppState,
    collection: &str,
    raw_query: Option<&str>,
    query: &Query,
    apps: Vec<Arc<App>>,
    render: impl Fn(&App) -> Map<String, Value>,
) -> Response {
    let mut value = Vec::new();
    let mut more = false;
    let mut index = 0;
    for app in apps {
        // Without a filter every application counts, so earlier pages need no rendering.
        if query.filter.is_none() && index < query.skip {
            index += 1;
            continue;
        }
        // Each application shown is re-checked, as a lookup does, so a listing shows the latest
        // change to its file; the ones skipped or filtered out cost no file access.
        let app = st.registry.find(&app.app_id).unwrap_or(app);
        let entity = render(&app);
        if !query.matches(&entity) {
            continue;
        }
        if index < query.skip {
            index += 1;
            continue;
        }
        if value.len() == query.top {
            more = true;
            break;
        }
        value.push(Value::Object(query.project(entity)));
        index += 1;
    }
    let mut out = Map::new();
    out.insert("@odata.context".into(), json!(context(st, &format!("{collection}{}", query.context_suffix()))));
    if more {
        // The same query, from the next position: clients follow it as given.
        let mut next = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in url::form_urlencoded::parse(raw_query.unwrap_or("").as_bytes()) {
            if !k.trim_start_matches('$').eq_ignore_ascii_case("skiptoken") {
                next.append_pair(&k, &v);
            }
        }
        next.append_pair("$skiptoken", &odata::encode_skiptoken(index));
        out.insert("@odata.nextLink".into(), json!(format!("{}/v1.0/{collection}?{}", st.base_url, next.finish())));
    }
    out.insert("value".into(), Value::Array(value));
    graph_json(Value::Object(out))
}

/// The applications a query can match: one index lookup for `appId eq '...'` and
/// `identifierUris/any(...)` (what scripts and the Azure CLI send to resolve an app), else all
/// of them. The filter is still applied to what the lookup returns.
fn candidates(st: &AppState, query: &Query) -> Vec<Arc<App>> {
    match &query.filter {
        Some(odata::Filter::Eq("appId", id)) => st.app(id).into_iter().collect(),
        Some(odata::Filter::Any("identifierUris", uri)) => {
            st.registry.find_by_identifier_uri(uri).into_iter().collect()
        }
        _ => st.registry.list(),
    }
}

/// The prologue of every GET, in Graph's order: the caller is authenticated before the query
/// is looked at (a bad token is 401 even when the query is also bad).
fn caller_and_query(
    st: &AppState,
    headers: &HeaderMap,
    raw: Option<&str>,
    entity: &EntityType,
) -> Result<(Caller, Query), GraphError> {
    let who = authenticate(st, headers)?;
    let query = Query::parse(raw, entity)?;
    Ok((who, query))
}

/// A single-entity GET: prologue, then the application `found` (404 when none), then 403
/// unless the caller may read it, then the entity rendered by `render`.
fn get_one(
    st: &AppState,
    (raw, q, headers): (&str, Option<&str>, &HeaderMap),
    entity_type: &EntityType,
    found: impl FnOnce() -> Option<Arc<App>>,
    render: impl FnOnce(&App, &Query) -> (&'static str, Map<String, Value>),
) -> Answer {
    let (who, query) = caller_and_query(st, headers, q, entity_type)?;
    let app = found().ok_or_else(|| not_found(raw))?;
    if !who.can_read(&app) {
        return Err(forbidden());
    }
    let (collection, e) = render(&app, &query);
    Ok(entity(st, collection, &query, e))
}

fn list_applications(State(st): SharedState, RawQuery(raw): RawQuery, headers: HeaderMap) -> Answer {
    list(&st, raw.as_deref(), &headers, &objects::APPLICATION, "applications", objects::application)
}

fn list_service_principals(State(st): SharedState, RawQuery(raw): RawQuery, headers: HeaderMap) -> Answer {
    let tenant = st.tenant().to_string();
    list(&st, raw.as_deref(), &headers, &objects::SERVICE_PRINCIPAL, "servicePrincipals", |a, bodies, only| {
        objects::service_principal(a, &tenant, bodies, only)
    })
}

/// A collection GET: the caller authenticated first, then the query parsed, then the page of
/// the applications the caller may read, each rendered by `render(app, with_bodies, only)`.
fn list(
    st: &AppState,
    raw: Option<&str>,
    headers: &HeaderMap,
    entity: &EntityType,
    collection: &str,
    render: impl Fn(&App, bool, Option<&[&str]>) -> Map<String, Value>,
) -> Answer {
    let (who, query) = caller_and_query(st, headers, raw, entity)?;
    let mut apps = candidates(st, &query);
    if !who.can_read_all() {
        // An application without a directory role sees itself only.
        apps.retain(|a| who.can_read(a));
    }
    let bodies = query.selects("keyCredentials");
    let only = query.needed();
    Ok(page(st, collection, raw, &query, apps, |a| render(a, bodies, only.as_deref())))
}

/// One entity with `$select` applied and its `@odata.context`.
fn entity(st: &AppState, collection: &str, query: &Query, e: Map<String, Value>) -> Response {
    let mut out = Map::new();
    out.insert("@odata.context".into(), json!(context(st, &format!("{collection}{}/$entity", query.context_suffix()))));
    out.extend(query.project(e));
    graph_json(Value::Object(out))
}

fn get_application(
    State(st): SharedState,
    Path(raw): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Answer {
    get_one(
        &st,
        (&raw, q.as_deref(), &headers),
        &objects::APPLICATION,
        || find_app(&st, &raw),
        |app, query| ("applications", objects::application(app, query.selects("keyCredentials"), None)),
    )
}

fn get_service_principal(
    State(st): SharedState,
    Path(raw): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Answer {
    let found = || match raw.strip_prefix("servicePrincipals(appId='").and_then(|r| r.strip_suffix("')")) {
        Some(id) => st.app(id),
        None => st
            .registry
            .list()
            .into_iter()
            .find(|a| a.sp_object_id.eq_ignore_ascii_case(raw.trim()))
            .and_then(|a| st.registry.find(&a.app_id)),
    };
    get_one(&st, (&raw, q.as_deref(), &headers), &objects::SERVICE_PRINCIPAL, found, |app, query| {
        ("servicePrincipals", objects::service_principal(app, st.tenant(), query.selects("keyCredentials"), None))
    })
}

/// `applications(appId='...')` and `servicePrincipals(appId='...')`; any other segment is
/// Graph's "Resource not found for the segment".
fn get_by_reference(st: SharedState, Path(reference): Path<String>, q: RawQuery, headers: HeaderMap) -> Answer {
    if reference.starts_with("applications(") {
        get_application(st, Path(reference), q, headers)
    } else if reference.starts_with("servicePrincipals(") {
        get_service_principal(st, Path(reference), q, headers)
    } else {
        unknown_segment(&st, &headers, &reference)
    }
}

fn patch_by_reference(st: SharedState, Path(reference): Path<String>, headers: HeaderMap, body: Bytes) -> Answer {
    if reference.starts_with("applications(") {
        keys::patch_app(st, Path(reference), headers, body)
    } else {
        unknown_segment(&st, &headers, &reference)
    }
}

fn action(st: SharedState, Path((id, action)): Path<(String, String)>, headers: HeaderMap, body: Bytes) -> Answer {
    dispatch_action(st, id, &action, headers, body)
}

fn action_by_reference(
    st: SharedState,
    Path((reference, action)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    if !reference.starts_with("applications(") {
        return unknown_segment(&st, &headers, &reference);
    }
    dispatch_action(st, reference, &action, headers, body)
}

fn dispatch_action(st: SharedState, id: String, action: &str, headers: HeaderMap, body: Bytes) -> Answer {
    // Graph's action names are case-insensitive.
    match action.to_ascii_lowercase().as_str() {
        "addkey" => keys::add_key(st, Path(id), headers, body),
        "removekey" => keys::remove_key(st, Path(id), headers, body),
        "addpassword" => passwords::add_password(st, Path(id), headers, body),
        "removepassword" => passwords::remove_password(st, Path(id), headers, body),
        _ => unknown_segment(&st, &headers, action),
    }
}

/// A path under `/v1.0` the emulator does not serve: 401 without a good token, as Graph checks
/// the token first, then Graph's 400 for an unknown segment.
fn unknown_segment(st: &AppState, headers: &HeaderMap, segment: &str) -> Answer {
    authenticate(st, headers)?;
    Err(GraphError::bad_request(format!("Resource not found for the segment '{segment}'.")))
}

/// Every request no route takes: under `/v1.0/` Graph's unknown-segment answer (after the token
/// check), elsewhere Graph's answer for an unknown version. Never an empty body.
pub(super) async fn fallback(State(st): SharedState, req: Request) -> Response {
    let (path, headers) = (req.uri().path().to_string(), req.headers().clone());
    blocking(move || fallback_blocking(&st, &path, &headers)).await
}

fn fallback_blocking(st: &AppState, path: &str, headers: &HeaderMap) -> Answer {
    let mut segments = path.trim_start_matches('/').split('/');
    let version = segments.next().unwrap_or("");
    if version == "v1.0" || version.eq_ignore_ascii_case("beta") {
        let first = segments.next().unwrap_or("");
        if version != "v1.0" {
            authenticate(st, headers)?;
            Err(GraphError::bad_request(format!(
                "This emulator serves Graph v1.0 only, not '{version}' (of beta, only \
                 /beta/reports/appCredentialSignInActivities)."
            )))
        } else {
            unknown_segment(st, headers, first)
        }
    } else {
        Err(GraphError::bad_request(format!("Invalid version: {version}")))
    }
}

/// A method a route does not take: Graph's 405, after the token check under `/v1.0/`.
pub(super) async fn method_not_allowed(State(st): SharedState, uri: axum::http::Uri, headers: HeaderMap) -> Response {
    blocking(move || method_not_allowed_blocking(&st, uri.path(), &headers)).await
}

fn method_not_allowed_blocking(st: &AppState, path: &str, headers: &HeaderMap) -> Answer {
    if path.starts_with("/v1.0/") {
        authenticate(st, headers)?;
    }
    Err(GraphError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "Request_BadRequest",
        "Specified HTTP method is not allowed for the request target.",
    ))
}
