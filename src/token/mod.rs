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

pub use error::{entra_code, entra_error, EntraError, HintContext, Registration};
pub use request::{ClientAuth, FormValue, Grant, PreparedRequest, Target, TokenRequest};
pub use response::TokenResponse;

use crate::{consent, Error, Result};
use std::path::PathBuf;
use std::time::Duration;

/// Default time limit of one HTTP exchange.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Retries after a 429 or 5xx answer.
pub const MAX_RETRIES: u32 = 3;
/// Longest wait between two attempts, whatever `Retry-After` says: a CLI user should not wait
/// minutes without being told.
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(10);

/// Largest answer body read from a token endpoint or Graph. Real answers are a few KB; a server
/// that streams more (a misconfigured proxy, a hostile host) must not make keycred buffer it all.
pub const MAX_ANSWER: usize = 1024 * 1024;

/// Why [`read_limited`] failed.
pub(crate) enum ReadError {
    /// The body is over [`MAX_ANSWER`] bytes (nothing past the limit was read).
    TooLarge,
    /// The transport failed while reading.
    Transport(reqwest::Error),
}

/// Reads an answer body as text (lossy UTF-8), refusing one over [`MAX_ANSWER`] bytes, by its
/// Content-Length when announced and by counting otherwise.
pub(crate) async fn read_limited(resp: reqwest::Response) -> std::result::Result<String, ReadError> {
    read_limited_to(resp, MAX_ANSWER).await
}

/// [`read_limited`] with another limit (a Graph page of 999 applications with their
/// certificates runs to megabytes).
pub(crate) async fn read_limited_to(
    mut resp: reqwest::Response,
    limit: usize,
) -> std::result::Result<String, ReadError> {
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(ReadError::TooLarge);
    }
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(ReadError::Transport)? {
        if buf.len() + chunk.len() > limit {
            return Err(ReadError::TooLarge);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// How the client talks to the endpoint.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Time limit of one attempt.
    pub timeout: Duration,
    /// An extra trusted root CA (PEM), for the emulator's `--tls` mode.
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

/// An HTTP client for token endpoints.
#[derive(Clone, Debug)]
pub struct TokenClient {
    /// For remote hosts: honours `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY`/`NO_PROXY`.
    http: reqwest::Client,
    /// For loopback hosts (the emulator, local test servers): never through a proxy, whose own
    /// loopback is not ours, whatever `NO_PROXY` says.
    direct: reqwest::Client,
    options: ClientOptions,
    /// Where the applications it asks tokens for have their certificates, for the hints.
    registration: Registration,
}

/// How long to wait before retrying an answer with `status`, or `None` when it must not be
/// retried. `retry_after` is the header's value; `attempt` counts from 0.
pub fn retry_delay(status: u16, retry_after: Option<&str>, attempt: u32, options: &ClientOptions) -> Option<Duration> {
    if attempt >= options.max_retries || !(status == 429 || (500..600).contains(&status)) {
        return None;
    }
    // Retry-After may also be an HTTP date; then fall back to exponential backoff.
    let wait = retry_after
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or_else(|| Duration::from_millis(500 << attempt.min(6)));
    Some(wait.min(options.max_retry_wait))
}

impl TokenClient {
    /// Builds the client. A bad `ca_file` is an input error naming the file.
    pub fn new(options: ClientOptions) -> Result<Self> {
        let extra_roots = match &options.ca_file {
            Some(path) => {
                let pem = crate::fsio::read_limited(path, crate::fsio::MAX_CREDENTIAL_BYTES)?;
                let certs =
                    reqwest::Certificate::from_pem_bundle(&pem).ok().filter(|c| !c.is_empty()).ok_or_else(|| {
                        Error::file(path, "no PEM certificate in the file")
                            .with_hint("give the CA certificate in PEM (-----BEGIN CERTIFICATE-----)")
                    })?;
                Some(certs)
            }
            None => None,
        };
        let build = |direct: bool| {
            let mut b = reqwest::Client::builder()
                .timeout(options.timeout)
                .connect_timeout(options.timeout)
                .user_agent(concat!("keycred/", env!("CARGO_PKG_VERSION")))
                // The blocking wrapper runs each request on its own short-lived runtime; pooled
                // connections would outlive it and fail on the next call.
                .pool_max_idle_per_host(0)
                // A token endpoint never redirects a POST legitimately; following one would resend
                // the client secret or assertion elsewhere.
                .redirect(reqwest::redirect::Policy::none());
            if direct {
                b = b.no_proxy();
            }
            if let Some(certs) = &extra_roots {
                b = b.tls_certs_merge(certs.clone());
            }
            b.build().map_err(|e| Error::internal(format!("cannot set up the HTTP client: {}", chain(&e))))
        };
        Ok(TokenClient { http: build(false)?, direct: build(true)?, options, registration: Registration::Unknown })
    }

    /// The client for a command that knows where the application's certificates are registered
    /// (a manifest file, Graph): a refusal's hint then names the way to fix it there.
    pub fn with_registration(mut self, registration: Registration) -> Self {
        self.registration = registration;
        self
    }

    /// The HTTP client (with the extra root CA and timeout) to reach `url` with, also for Graph
    /// calls: direct for loopback hosts, else through the environment's proxy if any.
    pub fn http_for(&self, url: &str) -> &reqwest::Client {
        match url::Url::parse(url) {
            Ok(u) if crate::authority::is_loopback_host(&u) => &self.direct,
            _ => &self.http,
        }
    }

    /// The options in use.
    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// Requests a token. Entra refusals are [`EntraError`]s inside a remote [`Error`] (exit 3).
    pub async fn request_token(&self, req: &TokenRequest) -> Result<TokenResponse> {
        let ctx = hint_context(req, &self.registration);
        let mut attempt = 0;
        loop {
            // A fresh assertion per attempt: a retried one may have aged past its nbf window.
            let prepared = req.prepare()?;
            let (status, retry_after, body) = self.post(&prepared).await?;
            if let Some(wait) = retry_delay(status, retry_after.as_deref(), attempt, &self.options) {
                attempt += 1;
                tokio::time::sleep(wait).await;
                continue;
            }
            return response::interpret(status, &body, &prepared.url, &ctx);
        }
    }

    /// [`request_token`](Self::request_token) for synchronous callers (the CLI). Must not be
    /// called from inside a tokio runtime.
    pub fn request_token_blocking(&self, req: &TokenRequest) -> Result<TokenResponse> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::internal(format!("cannot start the async runtime: {e}")))?;
        rt.block_on(self.request_token(req))
    }

    /// GETs a JSON document (an OpenID configuration, a JWKS), for synchronous callers. A
    /// non-200 answer or a body that is not JSON is a remote error naming `url`.
    pub fn get_json_blocking(&self, url: &str) -> Result<serde_json::Value> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::internal(format!("cannot start the async runtime: {e}")))?;
        rt.block_on(async {
            let resp = self
                .http_for(url)
                .get(url)
                .header(reqwest::header::ACCEPT, "application/json")
                .send()
                .await
                .map_err(|e| Error::remote(format!("cannot reach {url}: {}", chain(&e))))?;
            let status = resp.status().as_u16();
            let body = read_limited(resp).await.map_err(|e| match e {
                ReadError::TooLarge => {
                    Error::remote(format!("{url} answered a body over {MAX_ANSWER} bytes; not read"))
                }
                ReadError::Transport(e) => Error::remote(format!("cannot read the answer of {url}: {}", chain(&e))),
            })?;
            if status != 200 {
                return Err(Error::remote(format!("{url} answered HTTP {status}")));
            }
            serde_json::from_str(&body).map_err(|e| Error::remote(format!("{url} did not answer JSON ({e})")))
        })
    }

    async fn post(&self, p: &PreparedRequest) -> Result<(u16, Option<String>, String)> {
        let resp = self
            .http_for(&p.url)
            .post(&p.url)
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(reqwest::header::ACCEPT, "application/json")
            .body(p.encode_body())
            .send()
            .await
            .map_err(|e| self.transport_error(&p.url, &e))?;
        let status = resp.status().as_u16();
        let retry_after =
            resp.headers().get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).map(str::to_string);
        let body = read_limited(resp).await.map_err(|e| match e {
            ReadError::TooLarge => Error::remote(format!(
                "the token endpoint {} answered HTTP {status} with a body over {} bytes; not read",
                p.url, MAX_ANSWER
            ))
            .with_hint("check --authority: it must be an Entra login host or the keycred emulator"),
            ReadError::Transport(e) => self.transport_error(&p.url, &e),
        })?;
        Ok((status, retry_after, body))
    }

    fn transport_error(&self, url: &str, e: &reqwest::Error) -> Error {
        if e.is_timeout() {
            return Error::remote(format!(
                "no answer from the token endpoint {url} within {} s",
                self.options.timeout.as_secs_f64()
            ))
            .with_hint("check the network and --authority, or allow more time with --timeout SECS");
        }
        let detail = chain(e);
        let lower = detail.to_ascii_lowercase();
        if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") {
            return Error::remote(format!("TLS failure talking to the token endpoint {url}: {detail}"))
                .with_hint("for the emulator's --tls mode pass its CA with --ca-file PEM; otherwise check proxies that intercept TLS");
        }
        Error::remote(format!("cannot reach the token endpoint {url}: {detail}"))
            .with_hint("check the network, the proxy settings and --authority")
    }
}

/// The hint inputs of a request: its certificate's thumbprint, the consent URL, and where the
/// application's certificates are registered.
fn hint_context(req: &TokenRequest, registration: &Registration) -> HintContext {
    let (thumbprint, cert_path) = match &req.auth {
        ClientAuth::Certificate { cred, .. } => {
            (Some(cred.cert.thumbprint()), Some(cred.cert_path.display().to_string()))
        }
        ClientAuth::Secret(_) => (None, None),
    };
    let tenant = Some(&req.tenant).filter(|t| !t.is_alias());
    let consent_url = consent::admin_consent_url(&req.authority, tenant, &req.client_id, None, None);
    HintContext { thumbprint, cert_path, consent_url: Some(consent_url), registration: registration.clone() }
}

/// An error and its causes on one line (reqwest's own message hides the root cause).
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let m = s.to_string();
        if !parts.iter().any(|p| p.contains(&m)) {
            parts.push(m);
        }
        cur = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_only_429_and_5xx_with_bounded_waits() {
        let o = ClientOptions::default();
        assert_eq!(retry_delay(503, Some("2"), 0, &o), Some(Duration::from_secs(2)));
        assert_eq!(retry_delay(429, Some("3600"), 0, &o), Some(MAX_RETRY_WAIT));
        assert_eq!(retry_delay(500, None, 1, &o), Some(Duration::from_millis(1000)));
        assert_eq!(retry_delay(503, Some("Wed, 21 Oct 2015 07:28:00 GMT"), 0, &o), Some(Duration::from_millis(500)));
        assert_eq!(retry_delay(503, Some("1"), 3, &o), None);
        assert_eq!(retry_delay(400, None, 0, &o), None);
        assert_eq!(retry_delay(401, Some("1"), 0, &o), None);
        assert_eq!(retry_delay(200, None, 0, &o), None);
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
