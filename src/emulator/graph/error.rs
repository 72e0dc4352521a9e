//! [`GraphError`]: a refusal in Graph's error shape, returned by the Graph handlers as the `Err`
//! of their `Result` and turned into the answer by axum ([`IntoResponse`]), so a handler's
//! checks chain with `?` instead of unwrapping a ready-made response at each step.

use super::{graph_error, QueryError};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// What a Graph handler answers: a success, or Graph's error.
pub(in crate::emulator) type Answer = Result<Response, GraphError>;

/// Graph's error answer: `{"error": {"code", "message", "innerError"}}` with its status, and any
/// headers that go with it (`Retry-After` on throttling). The body is built when it is answered,
/// in the request's scope, so its `innerError` carries the request's ids.
#[derive(Debug)]
pub(in crate::emulator) struct GraphError {
    status: StatusCode,
    code: String,
    message: String,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl GraphError {
    pub(in crate::emulator) fn new(status: StatusCode, code: impl Into<String>, message: impl Into<String>) -> Self {
        GraphError { status, code: code.into(), message: message.into(), headers: Vec::new() }
    }

    /// The same refusal with one more header.
    pub(in crate::emulator) fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// 400 `BadRequest`, Graph's code for a request it cannot read.
    pub(in crate::emulator) fn bad_request(message: impl Into<String>) -> Self {
        GraphError::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }
}

impl From<QueryError> for GraphError {
    fn from(e: QueryError) -> Self {
        GraphError::new(StatusCode::BAD_REQUEST, e.code, e.message)
    }
}

impl IntoResponse for GraphError {
    fn into_response(self) -> Response {
        let mut resp = graph_error(self.status, &self.code, self.message);
        resp.headers_mut().extend(self.headers.into_iter().map(|(n, v)| (Some(n), v)));
        resp
    }
}
