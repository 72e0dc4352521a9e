//! The layers every request passes through: the body's deadline and size limit, and the one-line
//! request log (never a body).

use super::config::MAX_BODY;
use super::{errors, graph};
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use errors::RequestLog;

/// Reads the request body within `timeout` (a client that announces a body and sends it byte by
/// byte, or never, is answered 408 and disconnected), at most [`MAX_BODY`] bytes (413).
pub(super) async fn body_deadline(timeout: std::time::Duration, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, MAX_BODY)).await {
        Err(_) => (
            StatusCode::REQUEST_TIMEOUT,
            [(axum::http::header::CONNECTION, "close")],
            "request body not received in time",
        )
            .into_response(),
        // Over the limit (or the client went away mid-body).
        Ok(Err(_)) => (StatusCode::PAYLOAD_TOO_LARGE, [(axum::http::header::CONNECTION, "close")], "").into_response(),
        Ok(Ok(bytes)) => next.run(Request::from_parts(parts, axum::body::Body::from(bytes))).await,
    }
}

/// One line per request: method, path, client id, status, AADSTS code. Never a body.
pub(super) async fn log_request(log: bool, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let resp = next.run(req).await;
    if log {
        let info = resp.extensions().get::<RequestLog>().cloned().unwrap_or_default();
        let status = resp.status();
        let outcome = if status.is_success() { "ok" } else { status.canonical_reason().unwrap_or("error") };
        use std::fmt::Write as _;
        // The line is built first and written with one call: standard error is unbuffered, and
        // `eprintln!` writes each piece of its format with a system call of its own.
        let mut line = format!("keycred emulate: {method} {path}");
        if let Some(c) = info.client_id {
            let _ = write!(line, " client_id={c:?}");
        }
        let _ = write!(line, " -> {} {outcome}", status.as_u16());
        if let Some(c) = info.code {
            let _ = write!(line, " AADSTS{c}");
        }
        line.push('\n');
        let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), line.as_bytes());
    }
    if resp.status() == StatusCode::PAYLOAD_TOO_LARGE {
        if path.starts_with("/v1.0/") {
            return graph::graph_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Request_BadRequest",
                "The request body is over 1 MB, the largest this emulator reads.",
            );
        }
        return (StatusCode::PAYLOAD_TOO_LARGE, "request body over 1 MB").into_response();
    }
    resp
}
