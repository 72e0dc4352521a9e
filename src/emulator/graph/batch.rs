//! `POST /v1.0/$batch`: up to 20 Graph requests in one (JSON batching), each answered as if it
//! had been sent alone, inside a 200 envelope, as Graph does.
//!
//! Each inner request runs through the emulator's own Graph router with the envelope's bearer
//! token, so it is authenticated, authorised and throttled on its own: a throttled one answers
//! its own 429 with `Retry-After` in its headers while the others succeed. Requests run in the
//! order given; one whose `dependsOn` names a request that failed answers 424. A batch saves
//! round trips, not quota.
//!
//! An inner request's own `Authorization` header is dropped: the batch is authorised by the
//! envelope's token, as Graph's is (its SDKs leave inner requests unauthenticated,
//! msgraph-sdk-dotnet-core pull request 956), and an inner header must not run a request under
//! another token than the one the envelope was checked with. Inner answers go into the envelope
//! whole, as Graph puts them, up to [`MAX_ANSWERS`] bytes for the batch; an answer past that
//! budget is replaced by an inner 500 error saying so, never by an empty success.

use super::{caller, graph_error, json_body, GraphError, SharedState};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use tower::ServiceExt;

/// Graph's limit on the requests of one batch.
pub const MAX_REQUESTS: usize = 20;
/// The most bytes of inner answers one batch carries (Graph documents no limit; each of the
/// emulator's answers is bounded by its 4 MiB manifests and 999-entry pages).
pub const MAX_ANSWERS: usize = 16 * 1024 * 1024;

fn invalid(message: impl Into<String>) -> Response {
    graph_error(StatusCode::BAD_REQUEST, "BadRequest", message)
}

/// One inner request, checked.
struct Inner {
    id: String,
    method: Method,
    url: String,
    headers: Map<String, Value>,
    body: Option<Value>,
    depends_on: Vec<String>,
}

/// The checked requests, or why the batch is refused (a message for a 400).
fn parse(body: &Value) -> Result<Vec<Inner>, String> {
    let Some(requests) = body.get("requests").and_then(Value::as_array) else {
        return Err(String::from("Invalid batch payload format: the body must hold a 'requests' array."));
    };
    if requests.is_empty() || requests.len() > MAX_REQUESTS {
        return Err(format!(
            "Invalid batch payload format: a batch holds 1 to {MAX_REQUESTS} requests, not {}.",
            requests.len()
        ));
    }
    let mut out: Vec<Inner> = Vec::new();
    for (i, r) in requests.iter().enumerate() {
        let text = |k: &str| r.get(k).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty());
        let id = text("id").ok_or_else(|| format!("requests[{i}] has no id."))?.to_string();
        if out.iter().any(|o| o.id == id) {
            return Err(format!("Batch request ids must be unique: '{id}' appears twice."));
        }
        let method = text("method")
            .and_then(|m| Method::from_bytes(m.to_ascii_uppercase().as_bytes()).ok())
            .ok_or_else(|| format!("requests[{i}] has no valid method."))?;
        let url = text("url").ok_or_else(|| format!("requests[{i}] has no url."))?;
        // Relative to the version: `/applications` or `applications`.
        let url = format!("/{}", url.trim_start_matches('/'));
        if url.starts_with("/$batch") || url.contains("://") {
            return Err(format!("requests[{i}].url must be a relative Graph URL, not '{url}'."));
        }
        let depends_on: Vec<String> = match r.get("dependsOn") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_string).collect(),
            Some(_) => return Err(format!("requests[{i}].dependsOn must be an array of ids.")),
        };
        if let Some(d) = depends_on.iter().find(|d| !out.iter().any(|o| &o.id == *d)) {
            return Err(format!("requests[{i}] depends on '{d}', which is not an earlier request of the batch."));
        }
        let headers = r.get("headers").and_then(Value::as_object).cloned().unwrap_or_default();
        let body = r.get("body").filter(|b| !b.is_null()).cloned();
        out.push(Inner { id, method, url, headers, body, depends_on });
    }
    Ok(out)
}

/// Runs one inner request through `router`; its `(status, headers, body)` for the envelope,
/// the body read within what is left of the batch's `budget` (and taken from it).
async fn run(
    router: axum::Router,
    outer: &HeaderMap,
    r: &Inner,
    budget: &mut usize,
) -> (u16, Map<String, Value>, Value) {
    let mut req = Request::builder().method(r.method.clone()).uri(format!("/v1.0{}", r.url));
    for (k, v) in &r.headers {
        if k.eq_ignore_ascii_case("authorization") {
            continue;
        }
        if let Some(v) = v.as_str() {
            req = req.header(k.as_str(), v);
        }
    }
    if let Some(auth) = outer.get(axum::http::header::AUTHORIZATION) {
        req = req.header(axum::http::header::AUTHORIZATION, auth);
    }
    let body = match &r.body {
        Some(b) => {
            if !r.headers.keys().any(|k| k.eq_ignore_ascii_case("content-type")) {
                req = req.header(axum::http::header::CONTENT_TYPE, "application/json");
            }
            Body::from(serde_json::to_vec(b).unwrap_or_default())
        }
        None => Body::empty(),
    };
    let resp = match req.body(body) {
        Ok(req) => router.oneshot(req).await.unwrap_or_else(|never| match never {}),
        Err(_) => invalid(format!("The url of request '{}' is not valid.", r.id)),
    };
    let status = resp.status().as_u16();
    let mut headers = Map::new();
    for name in ["content-type", "retry-after", "location"] {
        if let Some(v) = resp.headers().get(name).and_then(|v| v.to_str().ok()) {
            headers.insert(name.to_string(), json!(v));
        }
    }
    let Ok(bytes) = axum::body::to_bytes(resp.into_body(), *budget).await else {
        let e = graph_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "generalException",
            format!(
                "The answer to request '{}' does not fit in this batch: the emulator puts at most {MAX_ANSWERS} bytes \
                 of answers in one batch. Send it on its own, or ask for less ($top, $select).",
                r.id
            ),
        );
        return (500, Map::new(), body_json(e).await);
    };
    *budget -= bytes.len();
    let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
    (status, headers, body)
}

/// The JSON body of an answer the emulator made itself (small: an error).
async fn body_json(resp: Response) -> Value {
    let bytes = axum::body::to_bytes(resp.into_body(), super::super::MAX_BODY).await.unwrap_or_default();
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

pub(super) async fn batch(State(st): SharedState, headers: HeaderMap, body: Bytes) -> Response {
    // The envelope's token first, as for every Graph call; each inner request is checked again.
    let checked = {
        let (st, headers) = (st.clone(), headers.clone());
        tokio::task::spawn_blocking(move || caller(&st, &headers).map(|_| ()))
            .await
            .unwrap_or_else(|_| Err(GraphError::bad_request("The batch could not be read.")))
    };
    if let Err(r) = checked {
        return r.into_response();
    }
    let body = match json_body(&headers, &body) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let requests = match parse(&body) {
        Ok(r) => r,
        Err(why) => return invalid(why),
    };
    let router = super::router(st);
    let mut statuses: HashMap<String, u16> = HashMap::new();
    let mut responses = Vec::new();
    let mut budget = MAX_ANSWERS;
    for r in &requests {
        let failed = r.depends_on.iter().any(|d| statuses.get(d).is_none_or(|s| *s >= 400));
        let (status, hdrs, body) = if failed {
            let resp = graph_error(
                StatusCode::FAILED_DEPENDENCY,
                "FailedDependency",
                "This request depends on a request of the batch that failed.",
            );
            (424, Map::new(), body_json(resp).await)
        } else {
            run(router.clone(), &headers, r, &mut budget).await
        };
        statuses.insert(r.id.clone(), status);
        let mut entry = Map::new();
        entry.insert("id".into(), json!(r.id));
        entry.insert("status".into(), json!(status));
        entry.insert("headers".into(), Value::Object(hdrs));
        if !body.is_null() {
            entry.insert("body".into(), body);
        }
        responses.push(Value::Object(entry));
    }
    (StatusCode::OK, Json(json!({ "responses": responses }))).into_response()
}
