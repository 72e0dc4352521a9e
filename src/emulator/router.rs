//! The emulator's router: every endpoint in one place, the token and discovery handlers, and the
//! helper that runs handlers on the blocking pool.

use super::config::MAX_BODY;
use super::middleware::{body_deadline, log_request};
use super::state::{AppState, SharedState};
use super::{authorize, discovery, errors, graph, issuers, token};
use super::{EndpointVersion, READ_TIMEOUT};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use errors::Refusal;
use std::collections::HashMap;
use std::sync::Arc;

/// Builds the router for `state`: every endpoint the emulator serves, in one place.
pub fn router(state: Arc<AppState>) -> Router {
    router_with(state, READ_TIMEOUT)
}

pub(super) fn router_with(state: Arc<AppState>, read_timeout: std::time::Duration) -> Router {
    let log = state.log;
    Router::new()
        .route("/{tenant}/oauth2/token", post(token_v1).get(token_get))
        .route("/{tenant}/oauth2/v2.0/token", post(token_v2).get(token_get))
        .route("/{tenant}/oauth2/authorize", get(authorize::authorize_v1).post(authorize::decide_v1))
        .route("/{tenant}/oauth2/v2.0/authorize", get(authorize::authorize_v2).post(authorize::decide_v2))
        .route("/{tenant}/v2.0/adminconsent", get(authorize::admin_consent).post(authorize::decide_admin_consent))
        .route(
            "/{tenant}/adminconsent",
            get(authorize::admin_consent_legacy).post(authorize::decide_admin_consent_legacy),
        )
        .route("/{tenant}/v2.0/.well-known/openid-configuration", get(oidc_v2))
        .route("/{tenant}/.well-known/openid-configuration", get(oidc_v1))
        .route("/{tenant}/discovery/v2.0/keys", get(jwks))
        .route("/{tenant}/discovery/keys", get(jwks))
        .route("/common/discovery/instance", get(instance))
        .merge(graph::routes())
        .merge(issuers::routes())
        .fallback(graph::fallback)
        .method_not_allowed_fallback(graph::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state.clone(), graph::unserved::layer))
        .layer(axum::middleware::from_fn_with_state(state.clone(), super::vault::route::dispatch))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(move |req: Request, next: Next| body_deadline(read_timeout, req, next)))
        .layer(axum::middleware::from_fn(move |req: Request, next: Next| log_request(log, req, next)))
        .with_state(state)
}

/// Runs `f` on the blocking pool: request handling reads manifest files, and file I/O never
/// runs on the async workers (a slow or odd file must not stall every other request).
pub(super) async fn blocking<R: IntoResponse>(f: impl FnOnce() -> R + Send + 'static) -> Response {
    blocking_or(f, || StatusCode::INTERNAL_SERVER_ERROR.into_response()).await
}

/// [`blocking`] with the answer for a handler that panicked chosen by the caller (Graph answers
/// in its own error shape): the one place handlers reach the blocking pool.
pub(super) async fn blocking_or<R: IntoResponse>(
    f: impl FnOnce() -> R + Send + 'static,
    failed: impl FnOnce() -> Response,
) -> Response {
    tokio::task::spawn_blocking(move || f().into_response()).await.unwrap_or_else(|_| failed())
}

pub(super) async fn token_v1(
    State(st): SharedState,
    Path(t): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    blocking(move || token::handle(&st, &t, EndpointVersion::V1, uri.path(), &headers, &body)).await
}

pub(super) async fn token_v2(
    State(st): SharedState,
    Path(t): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    blocking(move || token::handle(&st, &t, EndpointVersion::V2, uri.path(), &headers, &body)).await
}

/// A GET on a token endpoint: Entra's 400 AADSTS900561, in its JSON error shape.
pub(super) async fn token_get(headers: HeaderMap) -> Response {
    Refusal::post_only().into_response(token::correlation_header(&headers), None)
}

pub(super) fn discovery_doc(st: &AppState, t: &str, headers: &HeaderMap, uri: &Uri, v2: bool) -> Response {
    if let Err(e) = st.check_tenant(t) {
        return e.into_response(None, None);
    }
    let (base, _) = st.request_base(headers, uri);
    Json(discovery::openid_configuration(st, &base, t, v2)).into_response()
}

pub(super) async fn oidc_v2(State(st): SharedState, Path(t): Path<String>, uri: Uri, headers: HeaderMap) -> Response {
    discovery_doc(&st, &t, &headers, &uri, true)
}

pub(super) async fn oidc_v1(State(st): SharedState, Path(t): Path<String>, uri: Uri, headers: HeaderMap) -> Response {
    discovery_doc(&st, &t, &headers, &uri, false)
}

pub(super) async fn jwks(State(st): SharedState, Path(t): Path<String>) -> Response {
    if let Err(e) = st.check_tenant(&t) {
        return e.into_response(None, None);
    }
    Json(serde_json::json!({ "keys": [discovery::jwk(&st)] })).into_response()
}

pub(super) async fn instance(
    State(st): SharedState,
    uri: Uri,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (base, host) = st.request_base(&headers, &uri);
    Json(discovery::instance_discovery(&base, &host, q.get("authorization_endpoint").map(String::as_str)))
        .into_response()
}
