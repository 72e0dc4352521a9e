//! The Graph client: a bearer token, a base URL, a shared [`Limiter`], and the one loop that
//! sends a [`GraphCall`] through the [`Transport`](crate::http::Transport) seam, waits out
//! throttling by the [`retry`] rules and renews an expired token.

use super::call::{self, interpret, GraphCall, GRAPH_RESOURCE};
use super::limiter::Limiter;
use super::objects::{Application, KeyCredential};
use crate::authority::check_transport;
use crate::cert::Certificate;
use crate::http::retry::{self, Attempts, Decision, Policy, Retryable};
use crate::http::{FailureKind, Request, Response, SharedTransport, MAX_ANSWER};
use crate::secret::SecretString;
use crate::{Error, Result};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// Gets a fresh Graph token, for runs longer than a token lives (about an hour).
pub type Renew =
    Arc<dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<SecretString>> + Send>> + Send + Sync>;

/// Largest collection page read (`GET /v1.0/applications?...`): a page of 999 applications, each
/// with a few certificates (about 1.5 KB of base64 each), stays well under it. Every other Graph
/// answer is held to the 1 MiB of [`MAX_ANSWER`].
pub const MAX_GRAPH_PAGE: usize = 64 * 1024 * 1024;

/// Attempts of one request when Graph keeps answering 429/503 (the first one included).
pub const MAX_ATTEMPTS: u32 = 8;

/// Graph's throttling rules: 429 and 503 waited out for `Retry-After` (capped at five minutes,
/// a longer one is a misbehaving server) or else jittered backoff from half a second up to 30 s,
/// [`MAX_ATTEMPTS`] in all; a 401 renews the token once when the client can.
pub fn graph_policy(can_renew: bool) -> Policy {
    Policy {
        retryable: Retryable::Throttling,
        max_attempts: MAX_ATTEMPTS,
        backoff_base: Duration::from_millis(500),
        backoff_cap: Duration::from_secs(30),
        max_retry_after: Duration::from_secs(300),
        jitter: true,
        renew_on_401: can_renew,
    }
}

/// A Graph client with a bearer token.
pub struct GraphClient {
    transport: SharedTransport,
    base: String,
    token: std::sync::RwLock<SecretString>,
    limiter: Arc<Limiter>,
    renew: Option<Renew>,
}

impl std::fmt::Debug for GraphClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphClient").field("base", &self.base).field("token", &"[redacted]").finish_non_exhaustive()
    }
}

impl GraphClient {
    /// A client for `graph_url` (https, or http on loopback) using `token`, sending through
    /// `transport` (in production the token client's, `TokenClient::transport`, so that both
    /// trust the same CA and use the same time limit).
    /// A trailing `/v1.0` (as Graph Explorer shows URLs) is dropped: keycred adds the version.
    pub fn new(graph_url: &str, token: SecretString, transport: SharedTransport) -> Result<Self> {
        let mut url = url::Url::parse(graph_url.trim())
            .map_err(|e| Error::input(format!("Graph URL '{graph_url}' is not a URL")).caused_by(e))?;
        check_transport(&url, "Graph URL")?;
        if url.path().trim_end_matches('/').eq_ignore_ascii_case("/v1.0") {
            url.set_path("/");
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(Error::input(format!("Graph URL '{graph_url}' has a path, query or fragment"))
                .with_hint(format!("give the Graph host only, such as {GRAPH_RESOURCE}")));
        }
        // Alone, a client is limited only by its caller; a fleet run shares one limiter.
        let limiter = Arc::new(Limiter::new(64));
        let base = url.as_str().trim_end_matches('/').to_string();
        Ok(GraphClient { transport, base, token: std::sync::RwLock::new(token), limiter, renew: None })
    }

    /// The Graph base URL (scheme, host and port), without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Shares `limiter` with this client: every request then waits for a slot, and a throttled
    /// answer lowers the concurrency of every client sharing it.
    pub fn with_limiter(mut self, limiter: Arc<Limiter>) -> Self {
        self.limiter = limiter;
        self
    }

    /// The limiter in use (its counters feed progress and summaries).
    pub fn limiter(&self) -> &Arc<Limiter> {
        &self.limiter
    }

    /// Lets the client get a new token when Graph answers 401 (the token expired during a long
    /// run); the request is then sent once more with it.
    pub fn with_renew(mut self, renew: Renew) -> Self {
        self.renew = Some(renew);
        self
    }

    /// The absolute URL of a call.
    pub fn url_of(&self, call: &GraphCall) -> String {
        format!("{}{}", self.base, call.path)
    }

    /// Sends a prepared call and [`interpret`]s the answer; the only I/O of the Graph client.
    ///
    /// Every call carries a `client-request-id` (with `return-client-request-id: true`), kept
    /// across its retries as Graph's guidance asks, and a failure names it (and Graph's
    /// `request-id`). 429 and 503 are waited out by [`graph_policy`], lowering the shared
    /// limiter's concurrency; a 401 gets one retry with a renewed token when the client can
    /// renew it.
    pub async fn send(&self, call: GraphCall) -> Result<Option<Value>> {
        let url = self.url_of(&call);
        let client_request_id = uuid::Uuid::new_v4().to_string();
        let policy = graph_policy(self.renew.is_some());
        let mut attempts = Attempts::default();
        // The slot is kept across a retry's wait: a throttled request goes again first when the
        // pause ends, instead of racing every request that queued behind the pause (it could
        // otherwise lose each race and use up its attempts while the others make progress).
        let mut slot = None;
        loop {
            if slot.is_none() {
                slot = Some(self.limiter.acquire().await);
            }
            let answer = self.exchange(&call, &url, &client_request_id).await?;
            let decision = retry::decide(&policy, answer.status, attempts, answer.retry_after(), rand::random());
            attempts.record(decision);
            match decision {
                Decision::Renew => self.renew_token().await?,
                Decision::Retry(wait) => {
                    self.limiter.throttled(wait);
                    tokio::time::sleep(wait).await;
                    // Another request may have been told to wait longer: that pause holds for all.
                    self.limiter.pause_over().await;
                }
                Decision::Done if policy.retryable.covers(answer.status) => {
                    let e = Error::remote(format!(
                        "{} {url}: still throttled or unavailable after {MAX_ATTEMPTS} attempts \
                         (client-request-id {client_request_id})",
                        call.method
                    ))
                    .with_hint("Graph is throttling this application: run again later, with fewer requests at a time");
                    return Err(match call::graph_error_code(&answer.body) {
                        Some(c) => e.with_graph_code(c),
                        None => e,
                    });
                }
                Decision::Done => {
                    let v = interpret(&call.method, &url, answer.status, &answer.body)
                        .map_err(|e| e.with_note(call::ids(&client_request_id, &answer.body)))?;
                    self.limiter.succeeded();
                    return Ok(v);
                }
            }
        }
    }

    /// One exchange of `call`: the request with the token and the ids, the answer read within the
    /// limit of its kind (a collection page may be large, anything else may not).
    async fn exchange(&self, call: &GraphCall, url: &str, client_request_id: &str) -> Result<Response> {
        let bearer = self.token.read().map(|t| format!("Bearer {}", t.expose())).unwrap_or_default();
        let mut req = Request::new(call.method.clone(), url)
            .header("authorization", bearer)
            .header("client-request-id", client_request_id)
            .header("return-client-request-id", "true");
        if let Some(b) = &call.body {
            req = req.body("application/json", b.to_string().into_bytes());
        }
        req.limit = if call::is_collection(&call.path) { MAX_GRAPH_PAGE } else { MAX_ANSWER };
        let method = &call.method;
        self.transport.send(req).await.map_err(|f| {
            let e = match f.kind() {
                FailureKind::TooLarge => Error::remote(format!("{method} {url}: {}", f.detail()))
                    .with_hint("check the Graph URL: it must be Microsoft Graph or the keycred emulator"),
                _ => Error::remote(format!("{method} {url}: {f} (client-request-id {client_request_id})"))
                    .with_hint("check the Graph URL and the network; the emulator prints its URL when it starts"),
            };
            e.with_source(f)
        })
    }

    async fn renew_token(&self) -> Result<()> {
        let Some(renew) = &self.renew else { return Ok(()) };
        let fresh = renew().await?;
        if let Ok(mut t) = self.token.write() {
            *t = fresh;
        }
        Ok(())
    }

    /// `GET /v1.0/applications(appId='{app_id}')?$select=id,appId,keyCredentials`.
    pub async fn get_by_app_id(&self, app_id: &str) -> Result<Application> {
        let v = self.send(GraphCall::get_by_app_id(app_id)).await?;
        Application::from_json(&v.unwrap_or(Value::Null))
    }

    /// `GET /v1.0/applications/{id}?$select=id,appId,keyCredentials`.
    pub async fn get(&self, id: &str) -> Result<Application> {
        let v = self.send(GraphCall::get(id)).await?;
        Application::from_json(&v.unwrap_or(Value::Null))
    }

    /// `PATCH /v1.0/applications/{id}` with the whole `keyCredentials` array.
    pub async fn patch_key_credentials(&self, id: &str, entries: &[KeyCredential]) -> Result<()> {
        self.send(GraphCall::patch_key_credentials(id, entries)).await?;
        Ok(())
    }

    /// `POST /v1.0/applications/{id}/addKey` with a proof; returns the new keyCredential.
    pub async fn add_key(
        &self,
        id: &str,
        cert: &Certificate,
        display_name: Option<&str>,
        proof: &SecretString,
    ) -> Result<KeyCredential> {
        let v = self.send(GraphCall::add_key(id, cert, display_name, proof)).await?;
        let mut kc = KeyCredential::deserialize(v.unwrap_or(Value::Null))
            .map_err(|e| Error::remote("Graph answered addKey with no keyCredential").caused_by(e))?;
        // Graph's answer is the keyCredential plus OData annotations (`@odata.context`): keep
        // the keyCredential, the part that is keycred's stable output.
        kc.rest.retain(|k, _| !k.starts_with("@odata."));
        Ok(kc)
    }

    /// `POST /v1.0/applications/{id}/removeKey` with a proof.
    pub async fn remove_key(&self, id: &str, key_id: &str, proof: &SecretString) -> Result<()> {
        self.send(GraphCall::remove_key(id, key_id, proof)).await?;
        Ok(())
    }

    /// Read-modify-write of `keyCredentials` that never overwrites a concurrent change: the
    /// array is re-read just before the PATCH and, if it changed since `change` was computed,
    /// the change is computed again (up to 5 times).
    pub async fn update_key_credentials<F>(&self, id: &str, mut change: F) -> Result<Vec<KeyCredential>>
    where
        F: FnMut(&[KeyCredential]) -> Result<Vec<KeyCredential>>,
    {
        for _ in 0..5 {
            let before = self.get(id).await?.key_credentials;
            let after = change(&before)?;
            let again = self.get(id).await?.key_credentials;
            if again != before {
                continue;
            }
            self.patch_key_credentials(id, &after).await?;
            return Ok(after);
        }
        Err(Error::remote(
            "the application's keyCredentials kept changing while keycred updated them; nothing was written",
        )
        .with_hint("another process is editing the application: run again when it is done"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::fake::{reply, Fake};
    use crate::http::Failure;
    use tokio::time::Instant;

    const BASE: &str = "https://graph.microsoft.com";
    const APP: &str = r#"{"id":"obj","appId":"app","keyCredentials":[]}"#;
    const THROTTLED: &str = r#"{"error":{"code":"TooManyRequests","message":"Too many requests"}}"#;

    fn client(fake: Arc<Fake>) -> GraphClient {
        GraphClient::new(BASE, SecretString::new("first"), fake).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_is_waited_out_as_graph_asks_with_the_same_client_request_id() {
        let fake = Fake::script(vec![
            reply(429, THROTTLED, &[("retry-after", "7")]),
            reply(503, "", &[]),
            reply(200, APP, &[]),
        ]);
        let g = client(fake.clone());
        let app = g.get("obj").await.unwrap();
        assert_eq!((app.id.as_str(), app.app_id.as_str()), ("obj", "app"));
        let sent = fake.sent();
        assert_eq!(sent.len(), 3);
        // Retry-After 7: never sooner, at most a tenth later (jitter).
        let first = sent[1].at - sent[0].at;
        assert!(first >= Duration::from_secs(7) && first <= Duration::from_millis(7700), "{first:?}");
        // No Retry-After: the second backoff step, half a second to one second with jitter.
        let second = sent[2].at - sent[1].at;
        assert!(second >= Duration::from_millis(500) && second <= Duration::from_secs(1), "{second:?}");
        let ids: Vec<_> = sent.iter().map(|s| s.request.header_value("client-request-id").unwrap()).collect();
        assert!(ids.iter().all(|i| *i == ids[0]) && uuid::Uuid::parse_str(ids[0]).is_ok(), "{ids:?}");
        assert_eq!(g.limiter().throttled_count(), 2);
        assert_eq!(sent[0].request.url, format!("{BASE}/v1.0/applications/obj?$select=id,appId,keyCredentials"));
        assert_eq!(sent[0].request.header_value("authorization"), Some("Bearer first"));
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_that_never_ends_is_an_error_after_the_last_attempt() {
        let fake = Fake::new(|_| reply(429, THROTTLED, &[("retry-after", "1")]));
        let g = client(fake.clone());
        let start = Instant::now();
        let e = g.get("obj").await.unwrap_err();
        assert_eq!(fake.sent().len(), MAX_ATTEMPTS as usize);
        assert!(Instant::now() - start >= Duration::from_secs(u64::from(MAX_ATTEMPTS) - 1));
        assert_eq!(e.exit_code(), 3);
        let id = fake.sent()[0].request.header_value("client-request-id").unwrap().to_string();
        assert!(e.message().contains(&format!("after {MAX_ATTEMPTS} attempts (client-request-id {id})")), "{e}");
    }

    #[tokio::test(start_paused = true)]
    async fn other_refusals_are_not_retried_and_name_both_request_ids() {
        let body = r#"{"error":{"code":"Authorization_RequestDenied","message":"Insufficient privileges","innerError":{"request-id":"r-1"}}}"#;
        let fake = Fake::script(vec![reply(403, body, &[("retry-after", "1")])]);
        let e = client(fake.clone()).get("obj").await.unwrap_err();
        assert_eq!(fake.sent().len(), 1);
        assert!(e.message().contains("HTTP 403 Forbidden: Authorization_RequestDenied"), "{e}");
        assert!(e.message().ends_with(", request-id r-1"), "{e}");
    }

    #[tokio::test(start_paused = true)]
    async fn an_expired_token_is_renewed_once_and_the_call_sent_again_at_once() {
        let expired = r#"{"error":{"code":"InvalidAuthenticationToken","message":"Lifetime validation failed"}}"#;
        let fake = Fake::script(vec![reply(401, expired, &[]), reply(200, APP, &[])]);
        let renewals = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let counted = renewals.clone();
        let g = client(fake.clone()).with_renew(Arc::new(move || {
            counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Box::pin(async { Ok(SecretString::new("fresh")) })
        }));
        g.get("obj").await.unwrap();
        let sent = fake.sent();
        assert_eq!(renewals.load(std::sync::atomic::Ordering::Relaxed), 1);
        assert_eq!(sent[1].request.header_value("authorization"), Some("Bearer fresh"));
        assert_eq!(sent[1].at, sent[0].at, "no wait before the renewed attempt");
        // A second 401 with the renewed token is Graph's answer, not a reason to renew again.
        let fake = Fake::script(vec![reply(401, expired, &[]), reply(401, expired, &[])]);
        let g = client(fake.clone()).with_renew(Arc::new(|| Box::pin(async { Ok(SecretString::new("fresh")) })));
        let e = g.get("obj").await.unwrap_err();
        assert_eq!(fake.sent().len(), 2);
        assert!(e.message().contains("HTTP 401 Unauthorized: InvalidAuthenticationToken"), "{e}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_transport_failure_names_the_call_and_keeps_its_kind() {
        let fake = Fake::script(vec![Err(Failure::new(FailureKind::Connect, "connection refused"))]);
        let e = client(fake).get("obj").await.unwrap_err();
        assert!(e.message().starts_with(&format!("GET {BASE}/v1.0/applications/obj")), "{e}");
        assert!(e.message().contains("cannot connect: connection refused (client-request-id "), "{e}");
        assert_eq!(crate::http::Failure::kind_in(&e), Some(FailureKind::Connect));
    }

    /// A Graph that throttles as the emulator does (and as Graph documents): a bucket of `rate`
    /// requests a second, answering 429 with `Retry-After` (whole seconds, rounded up) when empty.
    fn bucket(rate: f64) -> Arc<Fake> {
        let state = std::sync::Mutex::new((rate, Instant::now()));
        Fake::new(move |_| {
            let mut s = state.lock().unwrap();
            let now = Instant::now();
            s.0 = (s.0 + (now - s.1).as_secs_f64() * rate).min(rate);
            s.1 = now;
            if s.0 >= 1.0 {
                s.0 -= 1.0;
                reply(200, APP, &[])
            } else {
                let wait = ((1.0 - s.0) / rate).ceil().to_string();
                reply(429, THROTTLED, &[("retry-after", wait.as_str())])
            }
        })
    }

    #[tokio::test(start_paused = true)]
    async fn many_calls_against_a_throttling_graph_all_finish_and_none_is_sent_during_a_pause() {
        let fake = bucket(2.0);
        let g = Arc::new(client(fake.clone()).with_limiter(Arc::new(Limiter::new(4))));
        let calls: Vec<_> = (0..24)
            .map(|i| {
                let g = g.clone();
                tokio::spawn(async move { g.get(&format!("o{i}")).await.map(|_| ()) })
            })
            .collect();
        for c in calls {
            c.await.unwrap().unwrap();
        }
        let sent = fake.sent();
        let throttled: Vec<_> = sent.iter().filter(|s| s.status() == Some(429)).collect();
        assert!(!throttled.is_empty(), "the bucket never throttled");
        assert_eq!(g.limiter().throttled_count(), throttled.len() as u64);
        assert_eq!(sent.iter().filter(|s| s.status() == Some(200)).count(), 24);
        // After a 429 at t with Retry-After w, nothing is sent before t + w: a request sent into
        // the pause would only be refused again and lengthen the lock-out.
        for t in throttled {
            let wait = Duration::from_secs(t.answer.as_ref().unwrap().retry_after().unwrap().parse().unwrap());
            let early: Vec<_> = sent.iter().filter(|s| s.at > t.at && s.at < t.at + wait).collect();
            assert!(early.is_empty(), "sent during the pause after {:?}: {early:?}", t.at);
        }
    }
}
