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
//! - app management policies: the tenant default, per-app policies and their assignment, enforced
//!   on the credential writes ([`policies`]);
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

mod access;
mod batch;
mod caller;
mod error;
mod federated;
mod keys;
pub(super) mod objects;
pub(super) mod odata;
pub(super) mod passwords;
mod policies;
mod read;
mod signins;
pub(super) mod unserved;

use caller::caller;
pub(super) use caller::{authenticate, Caller};
pub(super) use error::{Answer, GraphError};
use read::{get_application, get_service_principal, list_applications, list_service_principals};

use super::{App, AppState, SharedState};
use crate::dates;
use crate::manifest::{edit_file, Manifest};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use odata::QueryError;
use serde_json::{json, Value};
use std::sync::Arc;

/// Clock skew tolerated on proofs and bearer tokens, seconds.
const SKEW: f64 = 300.0;
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

/// `GET /v1.0/applications/{id}/{navigation}`: only `appManagementPolicies` is served.
fn get_navigation(State(st): SharedState, Path((id, nav)): Path<(String, String)>, headers: HeaderMap) -> Answer {
    if nav == "appManagementPolicies" {
        return policies::get_assigned(&st, &id, &headers);
    }
    if nav.eq_ignore_ascii_case(federated::SEGMENT) {
        return federated::list(&st, &id, &headers);
    }
    if federated::is_segment(&nav) {
        return federated::get_one(&st, &id, &nav, &headers);
    }
    Err(not_found(&format!("{id}/{nav}")))
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
            })
            .get(|s: SharedState, p: Path<(String, String)>, h: HeaderMap| blocking(move || get_navigation(s, p, h))),
        )
        .route(
            "/v1.0/policies/{name}",
            get(|s: SharedState, p: Path<String>, h: HeaderMap| blocking(move || policies::get_policy(s, p, h))).post(
                |s: SharedState, p: Path<String>, h: HeaderMap, b: Bytes| {
                    blocking(move || policies::create(s, p, h, b))
                },
            ),
        )
        .route(
            "/v1.0/policies/appManagementPolicies/{id}",
            get(|s: SharedState, p: Path<String>, h: HeaderMap| blocking(move || policies::get_one(s, p, h))),
        )
        .route(
            "/v1.0/applications/{id}/appManagementPolicies/$ref",
            post(|s: SharedState, p: Path<String>, h: HeaderMap, b: Bytes| {
                blocking(move || policies::assign(s, p, h, b))
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
        .merge(federated::routes())
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
    super::blocking_or(
        // Answered inside the scope: a GraphError's body is built then, with the request's ids.
        move || REQUEST_IDS.sync_scope(ids, || f().into_response()),
        || {
            graph_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "generalException",
                "The request failed inside the emulator.",
            )
        },
    )
    .await
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
        "federatedidentitycredentials" => federated::create(&st, &id, &headers, &body),
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
