//! Graph at tenant scale as plain values, with no I/O (PROTOCOL.md section 8): the list calls an
//! audit pages through, the pages and their `@odata.nextLink`, which answers are throttling
//! (429, 503) and how long to wait for them (`Retry-After`, else jittered backoff), and the ids a
//! failure names. The transport ([`crate::graph::GraphClient::send`]) applies them, so every
//! rule is unit-tested on plain values, as [`crate::graph::interpret`] is.

use crate::graph::GraphCall;
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

/// The first page of a collection: `$select` of only what the audit reads, `$top=999`, and, for
/// one application, `$filter=appId eq '...'` (one of the filters Graph supports by default).
/// Credential dates cannot be filtered on the server (Graph answers 400), so that is done here.
pub fn list_call(what: Collection, app_id: Option<&AppId>) -> GraphCall {
    let mut path = format!("{}?$select={}&$top={MAX_PAGE}", what.path(), what.select());
    if let Some(id) = app_id {
        path.push_str(&format!("&$filter=appId%20eq%20'{id}'"));
    }
    GraphCall { method: reqwest::Method::GET, path, body: None }
}

/// The call that fetches `next_link`, an absolute URL Graph gave: only on `base` (the bearer
/// token must never be sent anywhere else), and followed as given, never rebuilt.
pub fn next_call(base: &str, next_link: &str) -> Result<GraphCall> {
    let same = match (url::Url::parse(base), url::Url::parse(next_link)) {
        (Ok(a), Ok(b)) => a.origin() == b.origin(),
        _ => false,
    };
    let path = next_link.get(base.len()..).filter(|p| same && p.starts_with('/'));
    match path {
        Some(p) => Ok(GraphCall { method: reqwest::Method::GET, path: p.to_string(), body: None }),
        None => Err(Error::remote(format!("@odata.nextLink {next_link} points outside {base}; not followed"))
            .with_hint("the Graph token is only ever sent to the Graph URL; check what answers there")),
    }
}

/// A page of a collection.
#[derive(Clone, Debug, PartialEq)]
pub struct Page {
    /// The objects of this page.
    pub items: Vec<Value>,
    /// `@odata.nextLink` as given (see [`next_call`]); `None` on the last page.
    pub next_link: Option<String>,
}

/// Reads a collection page answered to `url`.
pub fn page(url: &str, body: Value) -> Result<Page> {
    let Value::Object(mut o) = body else {
        return Err(Error::remote(format!("GET {url}: the answer is not a JSON object")));
    };
    let items = match o.remove("value") {
        Some(Value::Array(a)) => a,
        _ => {
            return Err(Error::remote(format!("GET {url}: the answer has no 'value' array"))
                .with_hint("check the Graph URL: it must be Microsoft Graph or the keycred emulator"))
        }
    };
    let next_link = match o.remove("@odata.nextLink") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(v) => return Err(Error::remote(format!("GET {url}: @odata.nextLink is {v}, not a URL"))),
    };
    Ok(Page { items, next_link })
}

/// Whether `path` lists a collection (`/v1.0/applications?...`, `/v1.0/servicePrincipals?...`),
/// whose pages may be far larger than one object.
pub fn is_collection(path: &str) -> bool {
    let p = path.split('?').next().unwrap_or("");
    p == Collection::Applications.path() || p == Collection::ServicePrincipals.path()
}

/// Whether an answer with `status` is throttling or a brief unavailability, to wait out.
pub fn is_retryable(status: u16) -> bool {
    status == 429 || status == 503
}

/// What a failure quotes for support: our `client-request-id`, and Graph's `request-id` from
/// the error's `innerError` when there is one.
pub fn ids(client_request_id: &str, body: &str) -> String {
    let v: Option<Value> = serde_json::from_str(body).ok();
    match v.as_ref().and_then(|v| v.pointer("/error/innerError/request-id")).and_then(Value::as_str) {
        Some(r) => format!("client-request-id {client_request_id}, request-id {r}"),
        None => format!("client-request-id {client_request_id}"),
    }
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

    #[test]
    fn list_calls_select_only_what_is_read_and_ask_for_the_largest_page() {
        let c = list_call(Collection::Applications, None);
        assert_eq!(c.method, reqwest::Method::GET);
        assert_eq!(
            c.path,
            "/v1.0/applications?$select=id,appId,displayName,keyCredentials,passwordCredentials&$top=999"
        );
        let id = AppId::parse("0A6F6F3C-0E1B-4C53-9E35-1A3C1E5C1D11", "--app-id").unwrap();
        assert_eq!(id.as_str(), "0a6f6f3c-0e1b-4c53-9e35-1a3c1e5c1d11");
        let c = list_call(Collection::ServicePrincipals, Some(&id));
        assert!(c.path.starts_with("/v1.0/servicePrincipals?$select="), "{}", c.path);
        assert!(c.path.contains("preferredTokenSigningKeyThumbprint"), "{}", c.path);
        assert!(c.path.ends_with("&$filter=appId%20eq%20'0a6f6f3c-0e1b-4c53-9e35-1a3c1e5c1d11'"), "{}", c.path);
        let e = AppId::parse("x' or 1 eq 1", "apps.txt line 3").unwrap_err();
        assert!(e.to_string().starts_with("apps.txt line 3: "), "{e}");
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn pages_follow_next_link_as_given_and_only_on_the_graph_host() {
        let base = "https://graph.microsoft.com";
        let url = "https://graph.microsoft.com/v1.0/applications?$top=999";
        let next = "https://graph.microsoft.com/v1.0/applications?$top=999&$skiptoken=RFNwd";
        let p = page(url, json!({"@odata.context": "x", "value": [{"id": "1"}], "@odata.nextLink": next})).unwrap();
        assert_eq!(p.items, vec![json!({"id": "1"})]);
        assert_eq!(
            next_call(base, p.next_link.as_deref().unwrap()).unwrap().path,
            "/v1.0/applications?$top=999&$skiptoken=RFNwd"
        );
        assert_eq!(page(url, json!({"value": []})).unwrap().next_link, None);
        for evil in [
            "https://evil.example/v1.0/applications",
            "https://graph.microsoft.com.evil.example/v1.0/x",
            "http://graph.microsoft.com/v1.0/x",
        ] {
            let e = next_call(base, evil).unwrap_err();
            assert!(e.to_string().contains("not followed"), "{evil}: {e}");
        }
        let e = page(url, json!({"values": []})).unwrap_err();
        assert!(e.to_string().contains("no 'value' array"), "{e}");
    }

    #[test]
    fn throttling_is_429_and_503_and_waits_what_graph_asked_for() {
        assert!(is_retryable(429) && is_retryable(503));
        assert!(!is_retryable(500) && !is_retryable(400) && !is_retryable(401));
        assert_eq!(parse_retry_after(Some("7")), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")), None);
        assert_eq!(parse_retry_after(Some("100000")), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after(Some("-1")), None);
        assert_eq!(parse_retry_after(None), None);
    }

    #[test]
    fn only_collection_pages_are_collections() {
        assert!(is_collection(&list_call(Collection::Applications, None).path));
        assert!(is_collection("/v1.0/servicePrincipals?$top=999&$skiptoken=x"));
        assert!(!is_collection("/v1.0/applications/abc?$select=id"));
        assert!(!is_collection("/v1.0/applications(appId='x')?$select=id"));
    }

    #[test]
    fn a_failure_names_both_request_ids() {
        let body = r#"{"error":{"code":"Authorization_RequestDenied","message":"Insufficient privileges to complete the operation.","innerError":{"date":"2025-02-20T10:52:24","request-id":"r-1","client-request-id":"c-1"}}}"#;
        assert_eq!(ids("mine", body), "client-request-id mine, request-id r-1");
        assert_eq!(ids("mine", "<html>bad gateway</html>"), "client-request-id mine");
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
