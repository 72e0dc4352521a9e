//! Authorities (login hosts) and the endpoint URLs built from them.
//!
//! Remote authorities must be https; plain http is accepted only for loopback addresses, where
//! the emulator and test servers run.

use crate::{Error, Result};
use url::Url;

/// Public cloud authority, the default.
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";

/// Which token endpoint version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EndpointVersion {
    /// `/oauth2/token`, form field `resource`.
    V1,
    /// `/oauth2/v2.0/token`, form field `scope`.
    #[default]
    V2,
}

/// A validated authority URL, without trailing slash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authority(String);

impl Authority {
    /// Parses and checks an authority: https, or http on a loopback host.
    pub fn parse(s: &str) -> Result<Self> {
        let url = Url::parse(s.trim()).map_err(|e| {
            Error::input(format!("authority '{s}' is not a URL ({e})"))
                .with_hint(format!("use a URL such as {DEFAULT_AUTHORITY}"))
        })?;
        check_transport(&url, "authority")?;
        Ok(Authority(url.as_str().trim_end_matches('/').to_string()))
    }
    /// The base URL.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The token endpoint for `tenant`.
    pub fn token_endpoint(&self, tenant: &str, v: EndpointVersion) -> String {
        match v {
            EndpointVersion::V1 => format!("{}/{tenant}/oauth2/token", self.0),
            EndpointVersion::V2 => format!("{}/{tenant}/oauth2/v2.0/token", self.0),
        }
    }
}

/// Refuses plain http except on loopback; `what` names the setting in the message.
pub fn check_transport(url: &Url, what: &str) -> Result<()> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback_host(url) => Ok(()),
        "http" => Err(Error::input(format!("{what} '{url}' uses plain http"))
            .with_hint("use https; plain http is accepted only for loopback addresses (127.0.0.1, ::1, localhost)")),
        other => Err(Error::input(format!("{what} '{url}' has unsupported scheme '{other}'")).with_hint("use https")),
    }
}

/// Whether the URL's host is a loopback address or `localhost`.
pub fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_required_except_loopback() {
        assert!(Authority::parse("https://login.microsoftonline.com/").is_ok());
        assert!(Authority::parse("http://127.0.0.1:8080").is_ok());
        assert!(Authority::parse("http://[::1]:8080").is_ok());
        assert!(Authority::parse("http://localhost:1").is_ok());
        assert_eq!(Authority::parse("http://login.example.com").unwrap_err().exit_code(), 2);
        let a = Authority::parse("https://login.microsoftonline.com/").unwrap();
        assert_eq!(a.token_endpoint("t", EndpointVersion::V2), "https://login.microsoftonline.com/t/oauth2/v2.0/token");
        assert_eq!(a.token_endpoint("t", EndpointVersion::V1), "https://login.microsoftonline.com/t/oauth2/token");
    }
}
