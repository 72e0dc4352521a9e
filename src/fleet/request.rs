//! Graph requests as plain values, and what their answers mean, with no I/O (PROTOCOL.md
//! section 8): the list URLs an audit pages through, the `client-request-id` every request
//! carries, Graph's error shape turned into an error naming that id, 429/503 turned into "wait
//! and retry", and the jittered backoff used when Graph gives no `Retry-After`.
//!
//! The transport (`crate::graph::GraphClient`) only sends what this module prepares and hands
//! the status, `Retry-After` and body back to [`interpret`], so every rule is unit-tested.

use crate::{Error, Result};
use serde_json::Value;
use std::time::Duration;

/// Graph's largest page for `GET /applications` (the default is 100).
pub const MAX_PAGE: u32 = 999;
/// The application properties an audit reads; naming `keyCredentials` makes Graph return the
/// certificate bodies, which the usability rule needs.
pub const APPLICATION_SELECT: &str = "id,appId,displayName,keyCredentials,passwordCredentials";
/// The service principal properties an audit reads (SAML signing certificates live there).
pub const SERVICE_PRINCIPAL_SELECT: &str =
    "id,appId,displayName,keyCredentials,passwordCredentials,preferredTokenSigningKeyThumbprint";
/// Longest wait honoured from one `Retry-After`; a longer one is a misbehaving server.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);
/// First backoff step when Graph says nothing about how long to wait.
pub const BACKOFF_BASE: Duration = Duration::from_millis(500);
/// Cap of one backoff step.
pub const BACKOFF_CAP: Duration = Duration::from_secs(30);

/// An application (client) id, checked to be a GUID once, so that it can be put in a `$filter`
/// and a file path without quoting worries.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct AppId(String);

impl AppId {
    /// Parses an app id; `origin` names the input in the error.
    pub fn parse(s: &str, origin: &str) -> Result<AppId> {
        let t = s.trim();
        uuid::Uuid::parse_str(t)
            .map(|u| AppId(u.hyphenated().to_string()))
            .map_err(|_| Error::input(format!("{origin}: '{t}' is not an application (client) id")))
    }
    /// The id, lower-case hyphenated.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for AppId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which collection to list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Collection {
    /// `/v1.0/applications`.
    Applications,
    /// `/v1.0/servicePrincipals`.
    ServicePrincipals,
}

impl Collection {
    fn path(self) -> &'static str {
        match self {
            Collection::Applications => "/v1.0/applications",
            Collection::ServicePrincipals => "/v1.0/servicePrincipals",
        }
    }
    fn select(self) -> &'static str {
        match self {
            Collection::Applications => APPLICATION_SELECT,
            Collection::ServicePrincipals => SERVICE_PRINCIPAL_SELECT,
        }
    }
}

/// One request to send: method, absolute URL, JSON body, and its `client-request-id`.
#[derive(Clone, Debug, PartialEq)]
pub struct GraphRequest {
    /// HTTP method.
    pub method: reqwest::Method,
    /// Absolute URL.
    pub url: String,
    /// JSON body, if any.
    pub body: Option<Value>,
    /// Sent as `client-request-id` (with `return-client-request-id: true`), so that a failure
    /// can be found in Graph's logs and support cases.
    pub client_request_id: String,
}

impl GraphRequest {
    /// A request with a fresh `client-request-id`.
    pub fn new(method: reqwest::Method, url: impl Into<String>, body: Option<Value>) -> Self {
        GraphRequest { method, url: url.into(), body, client_request_id: uuid::Uuid::new_v4().to_string() }
    }
    /// `METHOD URL`, as errors name the request.
    pub fn describe(&self) -> String {
        format!("{} {}", self.method, self.url)
    }
}

/// The first page of a collection: `$select` of only what the audit reads, `$top=999`, and, for
/// one application, `$filter=appId eq '...'` (one of the filters Graph supports by default).
/// Credential dates cannot be filtered on the server (Graph answers 400), so that is done here.
pub fn list_url(base: &str, what: Collection, app_id: Option<&AppId>) -> String {
    let mut u = format!("{base}{}?$select={}&$top={MAX_PAGE}", what.path(), what.select());
    if let Some(id) = app_id {
        u.push_str(&format!("&$filter=appId%20eq%20'{id}'"));
    }
    u
}

/// A page of a collection.
#[derive(Clone, Debug, PartialEq)]
pub struct Page {
    /// The objects of this page.
    pub items: Vec<Value>,
    /// `@odata.nextLink`, checked to point at the same Graph; `None` on the last page.
    pub next_link: Option<String>,
}

/// Reads a collection page. `@odata.nextLink` is followed as given (never rebuilt), but only on
/// the origin the request went to: the bearer token must never be sent anywhere else.
pub fn page(req: &GraphRequest, body: Value) -> Result<Page> {
    let Value::Object(mut o) = body else {
        return Err(Error::remote(format!("{}: the answer is not a JSON object", req.describe())));
    };
    let items = match o.remove("value") {
        Some(Value::Array(a)) => a,
        _ => {
            return Err(Error::remote(format!("{}: the answer has no 'value' array", req.describe()))
                .with_hint("check --graph-url: it must be Microsoft Graph or the keycred emulator"))
        }
    };
    let next_link = match o.remove("@odata.nextLink") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            if !same_origin(&req.url, &s) {
                return Err(Error::remote(format!(
                    "{}: @odata.nextLink {s} points at another server; not followed",
                    req.describe()
                ))
                .with_hint("the Graph token is only ever sent to --graph-url; check what answers there"));
            }
            Some(s)
        }
        Some(v) => return Err(Error::remote(format!("{}: @odata.nextLink is {v}, not a URL", req.describe()))),
    };
    Ok(Page { items, next_link })
}

fn same_origin(a: &str, b: &str) -> bool {
    match (url::Url::parse(a), url::Url::parse(b)) {
        (Ok(a), Ok(b)) => a.origin() == b.origin(),
        _ => false,
    }
}

/// What an answer means.
#[derive(Debug)]
pub enum Answer {
    /// Success, with the JSON body when there is one (PATCH answers 204 with none).
    Done(Option<Value>),
    /// Throttled or briefly unavailable: retry after the wait Graph asked for, if it said.
    Retry(Option<Duration>),
}

/// Interprets an answer to `req`: `status`, the `Retry-After` header and the body.
pub fn interpret(req: &GraphRequest, status: u16, retry_after: Option<&str>, body: &str) -> Result<Answer> {
    if status == 429 || status == 503 {
        return Ok(Answer::Retry(parse_retry_after(retry_after)));
    }
    if (200..300).contains(&status) {
        if body.trim().is_empty() {
            return Ok(Answer::Done(None));
        }
        return serde_json::from_str(body).map(|v| Answer::Done(Some(v))).map_err(|_| {
            Error::remote(format!(
                "{}: HTTP {status} with a body that is not JSON: {} (client-request-id {})",
                req.describe(),
                crate::token::response::excerpt(body),
                req.client_request_id
            ))
        });
    }
    Err(failure(req, status, body))
}

/// The error for a refused request: Graph's code and message, and the ids to quote to support.
pub fn failure(req: &GraphRequest, status: u16, body: &str) -> Error {
    let v: Option<Value> = serde_json::from_str(body).ok();
    let e = v.as_ref().and_then(|v| v.get("error"));
    let (code, message) = match e {
        Some(e) => (
            e.get("code").and_then(Value::as_str).unwrap_or("unknown").to_string(),
            e.get("message").and_then(Value::as_str).unwrap_or("").to_string(),
        ),
        None => ("unknown".into(), crate::token::response::excerpt(body)),
    };
    let request_id = e.and_then(|e| e.pointer("/innerError/request-id")).and_then(Value::as_str);
    let ids = match request_id {
        Some(r) => format!("client-request-id {}, request-id {r}", req.client_request_id),
        None => format!("client-request-id {}", req.client_request_id),
    };
    let hint = match status {
        401 => "the Graph token was refused: request it for https://graph.microsoft.com/.default",
        403 => "the app lacks permission: PATCH needs Application.ReadWrite.OwnedBy or .All; addKey/removeKey need a valid proof",
        404 => "no such application: check the application id and the tenant",
        _ => "see the Graph error above",
    };
    Error::remote(format!("{}: HTTP {status}: {code}: {message} ({ids})", req.describe())).with_hint(hint)
}

/// `Retry-After` in seconds (what Graph sends), capped at [`MAX_RETRY_AFTER`]. An HTTP date or
/// garbage gives `None`: the caller then backs off on its own.
pub fn parse_retry_after(v: Option<&str>) -> Option<Duration> {
    let secs: f64 = v?.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs).min(MAX_RETRY_AFTER))
}

/// How long to wait before retry number `attempt` (0-based): Graph's `Retry-After` when given,
/// never less; otherwise exponential backoff from [`BACKOFF_BASE`] capped at [`BACKOFF_CAP`],
/// with "equal jitter" (half fixed, half random) so that many clients throttled at once do not
/// come back in step. `jitter` is a random number in `[0, 1)`.
pub fn backoff(attempt: u32, retry_after: Option<Duration>, jitter: f64) -> Duration {
    let jitter = jitter.clamp(0.0, 1.0);
    if let Some(wait) = retry_after {
        // Up to a tenth more than asked, so that workers told the same wait spread out.
        return wait + wait.mul_f64(0.1 * jitter);
    }
    let step = BACKOFF_BASE.saturating_mul(1u32 << attempt.min(16)).min(BACKOFF_CAP);
    step / 2 + (step / 2).mul_f64(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn get(url: &str) -> GraphRequest {
        GraphRequest::new(reqwest::Method::GET, url, None)
    }

    #[test]
    fn list_url_selects_only_what_is_read_and_asks_for_the_largest_page() {
        let u = list_url("http://127.0.0.1:9", Collection::Applications, None);
        assert_eq!(
            u,
            "http://127.0.0.1:9/v1.0/applications?$select=id,appId,displayName,keyCredentials,passwordCredentials&$top=999"
        );
        let id = AppId::parse("0A6F6F3C-0E1B-4C53-9E35-1A3C1E5C1D11", "--app-id").unwrap();
        assert_eq!(id.as_str(), "0a6f6f3c-0e1b-4c53-9e35-1a3c1e5c1d11");
        let u = list_url("https://graph.microsoft.com", Collection::ServicePrincipals, Some(&id));
        assert!(u.starts_with("https://graph.microsoft.com/v1.0/servicePrincipals?$select="), "{u}");
        assert!(u.contains("preferredTokenSigningKeyThumbprint"), "{u}");
        assert!(u.ends_with("&$filter=appId%20eq%20'0a6f6f3c-0e1b-4c53-9e35-1a3c1e5c1d11'"), "{u}");
        let e = AppId::parse("x' or 1 eq 1", "apps.txt line 3").unwrap_err();
        assert!(e.to_string().starts_with("apps.txt line 3: "), "{e}");
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn pages_follow_next_link_only_on_the_same_origin() {
        let req = get("https://graph.microsoft.com/v1.0/applications?$top=999");
        let next = "https://graph.microsoft.com/v1.0/applications?$top=999&$skiptoken=RFNwd";
        let p = page(&req, json!({"@odata.context": "x", "value": [{"id": "1"}], "@odata.nextLink": next})).unwrap();
        assert_eq!(p.items, vec![json!({"id": "1"})]);
        assert_eq!(p.next_link.as_deref(), Some(next));
        let last = page(&req, json!({"value": []})).unwrap();
        assert_eq!(last.next_link, None);
        let e =
            page(&req, json!({"value": [], "@odata.nextLink": "https://evil.example/v1.0/applications"})).unwrap_err();
        assert!(e.to_string().contains("another server"), "{e}");
        let e = page(&req, json!({"values": []})).unwrap_err();
        assert!(e.to_string().contains("no 'value' array"), "{e}");
    }

    #[test]
    fn throttling_and_unavailability_are_retried_with_the_wait_graph_asked_for() {
        let req = get("https://graph.microsoft.com/v1.0/applications");
        for status in [429, 503] {
            match interpret(&req, status, Some("7"), "{}").unwrap() {
                Answer::Retry(w) => assert_eq!(w, Some(Duration::from_secs(7))),
                other => panic!("{status}: {other:?}"),
            }
        }
        assert!(matches!(interpret(&req, 429, None, "").unwrap(), Answer::Retry(None)));
        assert!(matches!(interpret(&req, 204, None, "").unwrap(), Answer::Done(None)));
        assert_eq!(parse_retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")), None);
        assert_eq!(parse_retry_after(Some("100000")), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after(Some("-1")), None);
    }

    #[test]
    fn a_refusal_names_graphs_code_and_both_request_ids() {
        let req = get("https://graph.microsoft.com/v1.0/applications/abc");
        let body = r#"{"error":{"code":"Authorization_RequestDenied","message":"Insufficient privileges to complete the operation.","innerError":{"date":"2025-02-20T10:52:24","request-id":"r-1","client-request-id":"c-1"}}}"#;
        let e = interpret(&req, 403, None, body).unwrap_err();
        let m = e.to_string();
        assert!(m.starts_with("GET https://graph.microsoft.com/v1.0/applications/abc: HTTP 403: Authorization_RequestDenied: Insufficient privileges"), "{m}");
        assert!(m.contains(&format!("client-request-id {}", req.client_request_id)), "{m}");
        assert!(m.contains("request-id r-1"), "{m}");
        assert_eq!(e.exit_code(), 3);
        let e = interpret(&req, 400, None, "<html>bad gateway</html>").unwrap_err();
        assert!(e.to_string().contains("unknown: <html>bad gateway</html>"), "{e}");
    }

    #[test]
    fn backoff_grows_is_capped_and_never_waits_less_than_retry_after() {
        assert_eq!(backoff(0, None, 0.0), Duration::from_millis(250));
        assert_eq!(backoff(0, None, 1.0), Duration::from_millis(500));
        assert_eq!(backoff(3, None, 0.0), Duration::from_secs(2));
        assert_eq!(backoff(30, None, 1.0), BACKOFF_CAP);
        let w = Duration::from_secs(4);
        assert_eq!(backoff(5, Some(w), 0.0), w);
        assert_eq!(backoff(5, Some(w), 1.0), Duration::from_millis(4400));
    }
}
