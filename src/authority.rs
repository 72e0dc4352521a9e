//! Authorities (login hosts) and the endpoint URLs built from them.
//!
//! Remote authorities must be https; plain http is accepted only for loopback addresses, where
//! the emulator and test servers run.

use crate::wording::Input;
use crate::{Error, Result, TenantId};
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
    /// Parses and checks an authority: https, or http on a loopback host. A bare host name
    /// (`login.microsoftonline.us`, as azure-identity's `AzureAuthorityHosts` spell them) means
    /// https. The authority is a host only: the tenant is given apart and becomes the first path
    /// segment, so a path, query or fragment here would build a wrong endpoint.
    pub fn parse(s: &str) -> Result<Self> {
        let s = s.trim();
        let full = if s.contains("://") { s.to_string() } else { format!("https://{s}") };
        let url = Url::parse(&full).map_err(|e| {
            Error::input(format!("authority '{s}' is not a URL"))
                .caused_by(e)
                .with_hint(format!("use a URL such as {DEFAULT_AUTHORITY}"))
        })?;
        check_transport(&url, "authority")?;
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(Error::input(format!("authority '{s}' has a path, query or fragment")).with_hint(format!(
                "give the login host only, such as {DEFAULT_AUTHORITY}, and the tenant as {} or AZURE_TENANT_ID",
                Input::Tenant
            )));
        }
        Ok(Authority(url.as_str().trim_end_matches('/').to_string()))
    }
    /// The base URL.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The token endpoint for `tenant` (checked on construction, so it is one path segment).
    pub fn token_endpoint(&self, tenant: &TenantId, v: EndpointVersion) -> String {
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
        let t = TenantId::new("t").unwrap();
        assert_eq!(a.token_endpoint(&t, EndpointVersion::V2), "https://login.microsoftonline.com/t/oauth2/v2.0/token");
        assert_eq!(a.token_endpoint(&t, EndpointVersion::V1), "https://login.microsoftonline.com/t/oauth2/token");
    }

    #[test]
    fn a_bare_host_means_https_and_the_authority_is_a_host_only() {
        let a = Authority::parse("login.microsoftonline.us").unwrap();
        assert_eq!(a.as_str(), "https://login.microsoftonline.us");
        assert_eq!(Authority::parse("localhost:8443").unwrap().as_str(), "https://localhost:8443");
        for bad in [
            "https://login.microsoftonline.com/contoso.onmicrosoft.com",
            "http://127.0.0.1:8080/t",
            "https://login.microsoftonline.com/?x=1",
            "https://login.microsoftonline.com/#f",
        ] {
            let e = Authority::parse(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}");
            assert!(e.to_string().contains("has a path, query or fragment"), "{bad}: {e}");
            assert!(e.hint().unwrap().contains("the tenant as"), "{bad}");
        }
    }
}
