//! The production [`Transport`]: reqwest with rustls, a time limit per exchange, an optional
//! extra root CA, proxies from the environment for remote hosts only, and answer bodies read
//! within the request's limit.

use super::exchange::{Failure, FailureKind, Request, Response, SendFuture, Transport};
use crate::{Error, Result};
use std::path::PathBuf;
use std::time::Duration;

/// How the transport connects.
#[derive(Clone, Debug)]
pub struct TransportOptions {
    /// Time limit of one exchange (connecting included).
    pub timeout: Duration,
    /// An extra trusted root CA (PEM), for the emulator's TLS mode.
    pub ca_file: Option<PathBuf>,
}

/// reqwest behind the [`Transport`] seam.
#[derive(Clone, Debug)]
pub struct ReqwestTransport {
    /// For remote hosts: honours `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY`/`NO_PROXY`.
    proxied: reqwest::Client,
    /// For loopback hosts (the emulator, local test servers): never through a proxy, whose own
    /// loopback is not ours, whatever `NO_PROXY` says.
    direct: reqwest::Client,
}

impl ReqwestTransport {
    /// Builds the transport. A bad `ca_file` is an input error naming the file.
    pub fn new(options: &TransportOptions) -> Result<Self> {
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
                // The blocking wrappers run each request on its own short-lived runtime; pooled
                // connections would outlive it and fail on the next call.
                .pool_max_idle_per_host(0)
                // Neither a token endpoint nor Graph redirects legitimately; following a redirect
                // would resend the client secret, the assertion or the bearer token elsewhere.
                .redirect(reqwest::redirect::Policy::none());
            if direct {
                b = b.no_proxy();
            }
            if let Some(certs) = &extra_roots {
                b = b.tls_certs_merge(certs.clone());
            }
            b.build().map_err(|e| Error::internal("cannot set up the HTTP client").caused_by(e))
        };
        Ok(ReqwestTransport { proxied: build(false)?, direct: build(true)? })
    }

    /// The client to reach `url` with: direct for loopback hosts, else through the environment's
    /// proxy if any.
    fn client_for(&self, url: &str) -> &reqwest::Client {
        match url::Url::parse(url) {
            Ok(u) if crate::authority::is_loopback_host(&u) => &self.direct,
            _ => &self.proxied,
        }
    }
}

impl Transport for ReqwestTransport {
    fn send(&self, req: Request) -> SendFuture<'_> {
        Box::pin(async move {
            let mut b = self.client_for(&req.url).request(req.method.clone(), &req.url);
            for (name, value) in &req.headers {
                b = b.header(*name, value);
            }
            if let Some(body) = req.body {
                b = b.body(body);
            }
            let resp = b.send().await.map_err(failure)?;
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let body = read_limited(resp, status, req.limit).await?;
            Ok(Response { status, headers, body })
        })
    }
}

/// A reqwest error, by kind. A TLS failure shows only in the words of its cause (reqwest reports
/// it as a connection failure).
fn failure(e: reqwest::Error) -> Failure {
    let detail = crate::error::chain(&e).to_ascii_lowercase();
    let kind = if e.is_timeout() {
        FailureKind::Timeout
    } else if detail.contains("certificate") || detail.contains("tls") || detail.contains("handshake") {
        FailureKind::Tls
    } else if e.is_connect() {
        FailureKind::Connect
    } else {
        FailureKind::Other
    };
    Failure::caused_by(kind, e)
}

/// Reads an answer body as text (lossy UTF-8), refusing one over `limit` bytes, by its
/// Content-Length when announced and by counting otherwise.
async fn read_limited(mut resp: reqwest::Response, status: u16, limit: usize) -> std::result::Result<String, Failure> {
    let too_large =
        || Failure::new(FailureKind::TooLarge, format!("HTTP {status} with a body over {limit} bytes; not read"));
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(failure)? {
        if buf.len() + chunk.len() > limit {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}
