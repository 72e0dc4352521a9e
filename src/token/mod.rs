//! Token requests to an Entra token endpoint (or the keycred emulator): client credentials,
//! on-behalf-of and authorization code, authenticated by a certificate assertion or a secret.
//!
//! [`request`] builds the form and [`response`] reads the answer, both without I/O; this module is
//! the transport: reqwest with rustls, a timeout, an optional extra root CA, and bounded retries of
//! 429 and 5xx answers that honour `Retry-After`.
//!
//! ```no_run
//! use keycred::authority::{Authority, EndpointVersion};
//! use keycred::secret::SecretString;
//! use keycred::token::{ClientAuth, Grant, Target, TokenClient, TokenRequest};
//! let req = TokenRequest {
//!     authority: Authority::parse("https://login.microsoftonline.com")?,
//!     tenant: "contoso.onmicrosoft.com".parse()?,
//!     client_id: "11111111-2222-3333-4444-555555555555".parse()?,
//!     version: EndpointVersion::V2,
//!     target: Target::Scopes(vec!["https://graph.microsoft.com".into()]),
//!     grant: Grant::ClientCredentials,
//!     auth: ClientAuth::Secret(SecretString::new("...")),
//! };
//! let token = TokenClient::new(Default::default())?.request_token_blocking(&req)?;
//! println!("expires in {} s", token.expires_in);
//! # Ok::<(), keycred::Error>(())
//! ```

pub mod error;
pub mod request;
pub mod response;

pub use crate::http::MAX_ANSWER;
pub use error::{entra_code, entra_error, EntraError, HintContext, Registration};
pub use request::{ClientAuth, FormValue, Grant, PreparedRequest, Target, TokenRequest};
pub use response::TokenResponse;

use crate::http::retry::{self, Attempts, Decision, Policy, Retryable};
use crate::http::{Failure, FailureKind, Method, ReqwestTransport, SharedTransport, TransportOptions};
use crate::{consent, Error, Result};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Default time limit of one HTTP exchange.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Retries after a 429 or 5xx answer.
pub const MAX_RETRIES: u32 = 3;
/// Longest wait between two attempts, whatever `Retry-After` says: a CLI user should not wait
/// minutes without being told.
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(10);

/// How the client talks to the endpoint.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Time limit of one attempt.
    pub timeout: Duration,
    /// An extra trusted root CA (PEM), for the emulator's TLS mode.
    pub ca_file: Option<PathBuf>,
    /// Retries of 429 and 5xx answers.
    pub max_retries: u32,
    /// Cap on each wait between attempts.
    pub max_retry_wait: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            timeout: DEFAULT_TIMEOUT,
            ca_file: None,
            max_retries: MAX_RETRIES,
            max_retry_wait: MAX_RETRY_WAIT,
        }
    }
}

impl ClientOptions {
    /// The retry rules: 429 and 5xx retried `max_retries` times, each wait (`Retry-After`, else
    /// backoff from half a second) capped at `max_retry_wait`, without jitter (one person waits,
    /// not a fleet of workers).
    pub fn retry_policy(&self) -> Policy {
        Policy {
            retryable: Retryable::ThrottlingAndServerErrors,
            max_attempts: self.max_retries.saturating_add(1),
            backoff_base: Duration::from_millis(500),
            backoff_cap: self.max_retry_wait,
            max_retry_after: self.max_retry_wait,
            jitter: false,
            renew_on_401: false,
        }
    }
}

/// An HTTP client for token endpoints.
#[derive(Clone, Debug)]
pub struct TokenClient {
    transport: SharedTransport,
    options: ClientOptions,
    /// Where the applications it asks tokens for have their certificates, for the hints.
    registration: Registration,
}

impl TokenClient {
    /// Builds the client on reqwest. A bad `ca_file` is an input error naming the file.
    pub fn new(options: ClientOptions) -> Result<Self> {
        let transport =
            ReqwestTransport::new(&TransportOptions { timeout: options.timeout, ca_file: options.ca_file.clone() })?;
        Ok(TokenClient { transport: Arc::new(transport), options, registration: Registration::Unknown })
    }

    /// A client sending through `transport` (a scripted one in tests); `options.ca_file` is then
    /// the transport's business and ignored here.
    pub fn with_transport(transport: SharedTransport, options: ClientOptions) -> Self {
        TokenClient { transport, options, registration: Registration::Unknown }
    }

    /// The client for a command that knows where the application's certificates are registered
    /// (a manifest file, Graph): a refusal's hint then names the way to fix it there.
    pub fn with_registration(mut self, registration: Registration) -> Self {
        self.registration = registration;
        self
    }

    /// The transport (with the extra root CA and timeout), to share with a Graph client.
    pub fn transport(&self) -> SharedTransport {
        self.transport.clone()
    }

    /// The options in use.
    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// Requests a token. Entra refusals are [`EntraError`]s inside a remote [`Error`] (exit 3).
    /// 429 and 5xx answers are retried by [`ClientOptions::retry_policy`].
    pub async fn request_token(&self, req: &TokenRequest) -> Result<TokenResponse> {
        let ctx = hint_context(req, &self.registration);
        let policy = self.options.retry_policy();
        let mut attempts = Attempts::default();
        loop {
            // A fresh assertion per attempt: a retried one may have aged past its nbf window.
            let prepared = req.prepare()?;
            let answer = self.post(&prepared).await?;
            match retry::decide(&policy, answer.status, attempts, answer.retry_after(), 0.0) {
                Decision::Retry(wait) => {
                    attempts.record(Decision::Retry(wait));
                    tokio::time::sleep(wait).await;
                }
                _ => return response::interpret(answer.status, &answer.body, &prepared.url, &ctx),
            }
        }
    }

    /// [`request_token`](Self::request_token) for synchronous callers (the CLI). Must not be
    /// called from inside a tokio runtime.
    pub fn request_token_blocking(&self, req: &TokenRequest) -> Result<TokenResponse> {
        block_on(self.request_token(req))
    }

    /// GETs a JSON document (an OpenID configuration, a JWKS), for synchronous callers. A
    /// non-200 answer or a body that is not JSON is a remote error naming `url`.
    pub fn get_json_blocking(&self, url: &str) -> Result<serde_json::Value> {
        block_on(self.get_json(url))
    }

    /// GETs a JSON document; see [`get_json_blocking`](Self::get_json_blocking).
    pub async fn get_json(&self, url: &str) -> Result<serde_json::Value> {
        let req = crate::http::Request::new(Method::GET, url).header("accept", "application/json");
        let answer = self.transport.send(req).await.map_err(|f| match f.kind() {
            FailureKind::TooLarge => Error::remote(format!("{url} answered {}", f.detail())).with_source(f),
            _ => Error::remote(format!("cannot reach {url}")).caused_by(f),
        })?;
        if answer.status != 200 {
            return Err(Error::remote(format!("{url} answered HTTP {}", answer.status)));
        }
        serde_json::from_str(&answer.body).map_err(|e| Error::remote(format!("{url} did not answer JSON")).caused_by(e))
    }

    async fn post(&self, p: &PreparedRequest) -> Result<crate::http::Response> {
        let req = crate::http::Request::new(Method::POST, &p.url)
            .header("accept", "application/json")
            .body("application/x-www-form-urlencoded", p.encode_body().into_bytes());
        self.transport.send(req).await.map_err(|f| self.transport_error(&p.url, f))
    }

    /// A transport failure in the token endpoint's words. The hints name what to check, not how
    /// a command line sets it: the CLI adds its options from the [`Failure`] kind (the source).
    fn transport_error(&self, url: &str, f: Failure) -> Error {
        let e = match f.kind() {
            FailureKind::Timeout => Error::remote(format!(
                "no answer from the token endpoint {url} within {} s",
                self.options.timeout.as_secs_f64()
            ))
            .with_hint("check the network and the authority host, or allow more time"),
            FailureKind::Tls => {
                Error::remote(format!("TLS failure talking to the token endpoint {url}: {}", f.detail())).with_hint(
                    "trust the emulator's CA when it runs with TLS; otherwise check proxies that intercept TLS",
                )
            }
            FailureKind::TooLarge => Error::remote(format!("the token endpoint {url} answered {}", f.detail()))
                .with_hint("check the authority host: it must be an Entra login host or the keycred emulator"),
            _ => Error::remote(format!("cannot reach the token endpoint {url}: {}", f.detail()))
                .with_hint("check the network, the proxy settings and the authority host"),
        };
        e.with_source(f)
    }
}

/// Runs `f` to completion on a runtime of its own (the blocking wrappers).
fn block_on<T>(f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::internal("cannot start the async runtime").caused_by(e))?;
    rt.block_on(f)
}

/// The hint inputs of a request: its certificate's thumbprint, the consent URL, and where the
/// application's certificates are registered.
fn hint_context(req: &TokenRequest, registration: &Registration) -> HintContext {
    let (thumbprint, cert_path) = match &req.auth {
        ClientAuth::Certificate { cred, .. } => {
            (Some(cred.cert.thumbprint()), Some(cred.cert_path.display().to_string()))
        }
        ClientAuth::Secret(_) | ClientAuth::Federated(_) => (None, None),
    };
    let tenant = Some(&req.tenant).filter(|t| !t.is_alias());
    let consent_url = consent::admin_consent_url(&req.authority, tenant, &req.client_id, None, None);
    HintContext { thumbprint, cert_path, consent_url: Some(consent_url), registration: registration.clone() }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::http::fake::{reply, Fake};
    use crate::secret::SecretString;

    const TOKEN: &str = r#"{"token_type":"Bearer","expires_in":3599,"access_token":"eyJ.a.b"}"#;

    fn secret_request() -> TokenRequest {
        TokenRequest {
            authority: crate::authority::Authority::parse("https://login.microsoftonline.com").unwrap(),
            tenant: "contoso.onmicrosoft.com".parse().unwrap(),
            client_id: "11111111-2222-3333-4444-555555555555".parse().unwrap(),
            version: crate::authority::EndpointVersion::V2,
            target: Target::Scopes(vec!["https://graph.microsoft.com/.default".into()]),
            grant: Grant::ClientCredentials,
            auth: ClientAuth::Secret(SecretString::new("s3cret")),
        }
    }

    /// The gaps between the requests the fake received.
    fn gaps(fake: &Fake) -> Vec<Duration> {
        fake.sent().windows(2).map(|w| w[1].at - w[0].at).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn throttled_and_failing_answers_are_retried_after_retry_after_capped_or_backoff() {
        let fake = Fake::script(vec![
            reply(503, r#"{"error":"temporarily_unavailable"}"#, &[("retry-after", "2")]),
            reply(429, r#"{"error":"too_many_requests"}"#, &[("retry-after", "3600")]),
            reply(500, "<html>oops</html>", &[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")]),
            reply(200, TOKEN, &[]),
        ]);
        let client = TokenClient::with_transport(fake.clone(), ClientOptions::default());
        let t = client.request_token(&secret_request()).await.unwrap();
        assert_eq!(t.access_token.expose(), "eyJ.a.b");
        // As asked; capped at MAX_RETRY_WAIT; an HTTP date is no wait: backoff of the third try.
        assert_eq!(gaps(&fake), [Duration::from_secs(2), MAX_RETRY_WAIT, Duration::from_secs(2)]);
        let sent = fake.sent();
        assert!(sent.iter().all(|s| s.request.method == Method::POST
            && s.request.url == "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"));
        assert_eq!(sent[0].request.header_value("content-type"), Some("application/x-www-form-urlencoded"));
    }

    #[tokio::test(start_paused = true)]
    async fn after_the_last_retry_the_last_answer_is_the_error() {
        let busy = || reply(503, r#"{"error":"temporarily_unavailable","error_description":"AADSTS90033: busy"}"#, &[]);
        let fake = Fake::script(vec![busy(), busy(), busy(), busy()]);
        let client = TokenClient::with_transport(fake.clone(), ClientOptions::default());
        let e = client.request_token(&secret_request()).await.unwrap_err();
        assert_eq!(entra_code(&e), Some(90033), "{e}");
        assert_eq!(fake.sent().len(), 1 + MAX_RETRIES as usize);
        assert_eq!(gaps(&fake), [Duration::from_millis(500), Duration::from_secs(1), Duration::from_secs(2)]);
    }

    #[tokio::test(start_paused = true)]
    async fn refusals_are_not_retried() {
        for status in [400, 401, 403] {
            let body =
                r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}"#;
            let fake = Fake::script(vec![reply(status, body, &[("retry-after", "1")])]);
            let client = TokenClient::with_transport(fake.clone(), ClientOptions::default());
            let e = client.request_token(&secret_request()).await.unwrap_err();
            assert_eq!((entra_code(&e), fake.sent().len()), (Some(7000215), 1), "{status}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_transport_failure_keeps_its_kind_for_the_caller_s_hint() {
        let fake = Fake::script(vec![Err(Failure::new(FailureKind::Timeout, "operation timed out"))]);
        let options = ClientOptions { timeout: Duration::from_secs(7), ..Default::default() };
        let e = TokenClient::with_transport(fake, options).request_token(&secret_request()).await.unwrap_err();
        assert_eq!(e.exit_code(), 3);
        assert!(e.message().starts_with("no answer from the token endpoint https://login.microsoftonline.com/"), "{e}");
        assert!(e.message().ends_with("within 7 s"), "{e}");
        assert_eq!(Failure::kind_in(&e), Some(FailureKind::Timeout));
        assert!(!e.hint().unwrap().contains("--"), "the library names no option: {:?}", e.hint());
    }

    #[test]
    fn bad_ca_file_names_the_file() {
        let dir = std::env::temp_dir().join(format!("keycred-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("ca.pem");
        std::fs::write(&f, "not a pem").unwrap();
        let e = TokenClient::new(ClientOptions { ca_file: Some(f.clone()), ..Default::default() }).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.message().contains("ca.pem"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
