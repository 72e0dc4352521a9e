//! One HTTP exchange as plain values: the [`Request`] a client builds, the [`Response`] it reads,
//! the [`Transport`] it sends through, and the [`Failure`] when no answer came.

use crate::error::chain;
pub use reqwest::header::HeaderMap;
pub use reqwest::Method;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Largest answer body read from a token endpoint or Graph. Real answers are a few KB; a server
/// that streams more (a misconfigured proxy, a hostile host) must not make keycred buffer it all.
pub const MAX_ANSWER: usize = 1024 * 1024;

/// How much of an unexpected body an error message quotes.
pub const BODY_EXCERPT_CHARS: usize = 200;

/// One HTTP request, built without I/O. Its `Debug` shows the method, the URL and the header
/// names only: bodies and headers carry secrets (client assertions, bearer tokens, proofs).
#[derive(Clone)]
pub struct Request {
    /// HTTP method.
    pub method: Method,
    /// Absolute URL.
    pub url: String,
    /// Headers, in order (names lower-case).
    pub headers: Vec<(&'static str, String)>,
    /// Body (its `content-type` is among the headers).
    pub body: Option<Vec<u8>>,
    /// Largest answer body read; a longer one is a [`Failure`] of kind [`FailureKind::TooLarge`].
    pub limit: usize,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| *n).collect();
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &names)
            .finish_non_exhaustive()
    }
}

impl Request {
    /// A request without headers or body, whose answer may be up to [`MAX_ANSWER`] bytes.
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Request { method, url: url.into(), headers: Vec::new(), body: None, limit: MAX_ANSWER }
    }
    /// Adds a header.
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
    /// Sets a body of `content_type`.
    pub fn body(mut self, content_type: &str, body: Vec<u8>) -> Self {
        self.headers.push(("content-type", content_type.to_string()));
        self.body = Some(body);
        self
    }
    /// The value of header `name` (case-insensitive), if set.
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// An HTTP answer, its body read in full (within the request's limit) as text (lossy UTF-8).
#[derive(Clone, Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: String,
}

impl Response {
    /// An answer with `status` and `body` and no headers (scripted transports, tests).
    pub fn new(status: u16, body: impl Into<String>) -> Self {
        Response { status, headers: HeaderMap::new(), body: body.into() }
    }
    /// The value of header `name` as text, if present and printable.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// `Retry-After`, as sent.
    pub fn retry_after(&self) -> Option<&str> {
        self.header("retry-after")
    }
}

/// What a transport's `send` returns: a boxed future, so that transports can be used as
/// `Arc<dyn Transport>`.
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<Response, Failure>> + Send + 'a>>;

/// How requests travel: the seam between the clients' rules and the network.
pub trait Transport: Send + Sync + std::fmt::Debug {
    /// Sends `req` and reads the answer body (at most `req.limit` bytes).
    fn send(&self, req: Request) -> SendFuture<'_>;
}

/// A transport shared by clients.
pub type SharedTransport = Arc<dyn Transport>;

/// Why an exchange failed before an answer was read, by kind: callers choose their hint from the
/// kind (a timeout: allow more time; TLS: trust the right CA).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureKind {
    /// No answer within the time limit.
    Timeout,
    /// No connection (refused, unreachable, name not resolved).
    Connect,
    /// The TLS handshake failed (an unknown issuer, a name mismatch, an intercepting proxy).
    Tls,
    /// The answer's body is over the request's limit; nothing past the limit was read.
    TooLarge,
    /// Anything else.
    Other,
}

/// A transport failure: its kind, the cause in words, and the cause itself.
#[derive(Debug)]
pub struct Failure {
    kind: FailureKind,
    detail: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Failure {
    /// A failure of `kind` told by `detail`.
    pub fn new(kind: FailureKind, detail: impl Into<String>) -> Self {
        Failure { kind, detail: detail.into(), source: None }
    }
    /// A failure whose cause is `e` (its whole chain becomes the detail).
    pub fn caused_by(kind: FailureKind, e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Failure { kind, detail: chain(&e), source: Some(Box::new(e)) }
    }
    /// The kind.
    pub fn kind(&self) -> FailureKind {
        self.kind
    }
    /// The cause in words (for [`FailureKind::TooLarge`], the limit).
    pub fn detail(&self) -> &str {
        &self.detail
    }
    /// The kind of the first [`Failure`] among `e`'s causes, if any: how a caller that sees only
    /// a [`crate::Error`] (the CLI) picks the hint naming its own options.
    pub fn kind_in(e: &crate::Error) -> Option<FailureKind> {
        e.find_source::<Failure>().map(Failure::kind)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.kind {
            FailureKind::Timeout => "timed out",
            FailureKind::Connect => "cannot connect",
            FailureKind::Tls => "TLS failure",
            FailureKind::TooLarge => "answer too large",
            FailureKind::Other => "request failed",
        };
        write!(f, "{what}: {}", self.detail)
    }
}

impl std::error::Error for Failure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// The first [`BODY_EXCERPT_CHARS`] characters of a body, on one line.
pub fn excerpt(body: &str) -> String {
    let one_line: String = body.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let trimmed = one_line.trim();
    let mut out: String = trimmed.chars().take(BODY_EXCERPT_CHARS).collect();
    if trimmed.chars().count() > BODY_EXCERPT_CHARS {
        out.push_str("...");
    }
    if out.is_empty() {
        out = "(empty body)".into();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_s_debug_never_shows_its_body_or_header_values() {
        let r = Request::new(Method::POST, "https://login.example/t")
            .header("authorization", "Bearer eyJ.secret")
            .body("application/x-www-form-urlencoded", b"client_secret=hunter2".to_vec());
        let shown = format!("{r:?}");
        assert!(shown.contains("https://login.example/t") && shown.contains("authorization"), "{shown}");
        assert!(!shown.contains("eyJ") && !shown.contains("hunter2"), "{shown}");
        assert_eq!(r.header_value("Content-Type"), Some("application/x-www-form-urlencoded"));
    }

    #[test]
    fn failures_say_their_kind_and_are_found_among_an_error_s_causes() {
        let f = Failure::new(FailureKind::Timeout, "operation timed out");
        assert_eq!(f.to_string(), "timed out: operation timed out");
        let e = crate::Error::remote("no answer").with_source(f);
        assert_eq!(Failure::kind_in(&e), Some(FailureKind::Timeout));
        assert_eq!(Failure::kind_in(&crate::Error::remote("x")), None);
    }

    #[test]
    fn excerpts_are_one_short_line() {
        assert_eq!(excerpt("a\r\nb"), "a  b");
        assert_eq!(excerpt("  "), "(empty body)");
        let long = "x".repeat(BODY_EXCERPT_CHARS + 5);
        assert_eq!(excerpt(&long), format!("{}...", "x".repeat(BODY_EXCERPT_CHARS)));
    }
}
