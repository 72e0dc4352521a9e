//! Tenant and application (client) ids, validated once where they are built.
//!
//! The tenant becomes a path segment of every endpoint URL (and the `aud` of the assertion), so
//! [`TenantId`] admits only what a tenant can be: a GUID, a domain name, or one of the
//! multi-tenant aliases (`organizations`, `common`, `consumers`). The URL builders
//! ([`Authority::token_endpoint`](crate::authority::Authority::token_endpoint), the consent
//! URLs) take only these types, so an unchecked string cannot build another path (`x/../y`) or a
//! broken URL, whichever command or library caller it comes from.

use crate::error::{Error, Result};
use std::fmt;
use std::str::FromStr;

/// A directory (tenant): a GUID, a domain name such as `contoso.onmicrosoft.com`, or a
/// multi-tenant alias.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TenantId(String);

impl TenantId {
    /// `common`: the authorization-code exchange before the user's tenant is known.
    pub fn common() -> TenantId {
        TenantId("common".to_string())
    }
    /// `organizations`: any work or school tenant (the admin-consent URL without a tenant).
    pub fn organizations() -> TenantId {
        TenantId("organizations".to_string())
    }
    /// Checks a tenant: ASCII letters, digits, `-`, `.` and `_` only, not empty.
    pub fn new(s: &str) -> Result<TenantId> {
        if s.is_empty() || !s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')) {
            return Err(Error::input(format!("{s:?}: not a tenant id or domain name")).with_hint(
                "give the directory (tenant) id GUID, a domain such as contoso.onmicrosoft.com, or organizations",
            ));
        }
        Ok(TenantId(s.to_string()))
    }
    /// The tenant as written in URLs.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// Whether this is a multi-tenant alias (`common`, `organizations`, `consumers`) rather than
    /// one directory.
    pub fn is_alias(&self) -> bool {
        ["common", "organizations", "consumers"].iter().any(|a| self.0.eq_ignore_ascii_case(a))
    }
}

/// An application (client) id, as registered (a GUID in Entra). Not empty, no whitespace.
///
/// [`ClientId::new`] takes the id as given (a token request sends it as it is, and Entra says
/// when it knows no such application); [`ClientId::guid`] also requires a GUID and writes it
/// lower-case hyphenated, for the ids keycred puts into an OData `$filter` or a file path.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct ClientId(String);

impl ClientId {
    /// Checks a client id (surrounding whitespace is dropped): not empty, no whitespace or
    /// control characters inside.
    pub fn new(s: &str) -> Result<ClientId> {
        let s = s.trim();
        if s.is_empty() {
            return Err(Error::input("the client id is empty")
                .with_hint("give the application (client) id GUID from the app registration"));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Error::input(format!("{s:?}: not a client id (it holds whitespace)"))
                .with_hint("give the application (client) id GUID from the app registration"));
        }
        Ok(ClientId(s.to_string()))
    }
    /// Checks an application id that must be a GUID (surrounding whitespace dropped), and
    /// writes it lower-case hyphenated; `origin` names the input in the error.
    pub fn guid(s: &str, origin: &str) -> Result<ClientId> {
        let t = s.trim();
        uuid::Uuid::parse_str(t)
            .map(|u| ClientId(u.hyphenated().to_string()))
            .map_err(|_| Error::input(format!("{origin}: '{t}' is not an application (client) id")))
    }
    /// The id as sent (`client_id=`, `iss` and `sub` of the assertion).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Application ids Microsoft gives its own first-party applications, the same in every tenant.
pub mod well_known {
    /// Microsoft Graph (`https://graph.microsoft.com`).
    pub const MICROSOFT_GRAPH: &str = "00000003-0000-0000-c000-000000000000";
    /// Azure AD Graph (`https://graph.windows.net`), retired but still the `aud` of the
    /// addKey/removeKey proof in Graph's documentation.
    pub const AZURE_AD_GRAPH: &str = "00000002-0000-0000-c000-000000000000";
    /// The Office 365 Management APIs (`https://manage.office.com`).
    pub const OFFICE_365_MANAGEMENT: &str = "c5393580-f805-4401-95e8-94b7a6ef2fc2";
    /// Microsoft Threat Protection (Microsoft 365 Defender).
    pub const THREAT_PROTECTION: &str = "8ee8fdad-f234-4243-8f3b-15c294843740";
    /// WindowsDefenderATP (Microsoft Defender for Endpoint).
    pub const WINDOWS_DEFENDER_ATP: &str = "fc780465-2017-40d4-a0c5-307022471b92";
}

macro_rules! string_like {
    ($t:ty) => {
        impl FromStr for $t {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                <$t>::new(s)
            }
        }
        impl TryFrom<&str> for $t {
            type Error = Error;
            fn try_from(s: &str) -> Result<Self> {
                <$t>::new(s)
            }
        }
        impl TryFrom<String> for $t {
            type Error = Error;
            fn try_from(s: String) -> Result<Self> {
                <$t>::new(&s)
            }
        }
        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_like!(TenantId);
string_like!(ClientId);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_is_a_guid_a_domain_or_an_alias_and_nothing_that_builds_a_path() {
        for ok in ["72f988bf-86f1-41af-91ab-2d7cd011db47", "contoso.onmicrosoft.com", "organizations", "my_t-1"] {
            assert_eq!(TenantId::new(ok).unwrap().as_str(), ok);
        }
        for bad in ["", "x/../evil?q=", "a b", "t#f", "t%2f", "contoso.com/", "é"] {
            let e = TenantId::new(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}");
            assert!(e.message().contains("not a tenant id or domain name"), "{bad}: {e}");
        }
        assert!(TenantId::common().is_alias() && TenantId::organizations().is_alias());
        assert!(!TenantId::new("contoso.onmicrosoft.com").unwrap().is_alias());
    }

    #[test]
    fn a_client_id_is_trimmed_and_never_empty() {
        assert_eq!(
            ClientId::new(" 11111111-2222-3333-4444-555555555555\n").unwrap().as_str(),
            "11111111-2222-3333-4444-555555555555"
        );
        assert!(ClientId::new("  ").unwrap_err().message().contains("empty"));
        assert_eq!(ClientId::new("a b").unwrap_err().exit_code(), 2);
        assert_eq!("abc".parse::<ClientId>().unwrap().to_string(), "abc");
    }

    #[test]
    fn an_application_id_put_in_a_filter_or_a_path_is_a_guid_written_one_way() {
        let id = ClientId::guid(" 0A6F6F3C-0E1B-4C53-9E35-1A3C1E5C1D11\n", "--app-id").unwrap();
        assert_eq!(id.as_str(), "0a6f6f3c-0e1b-4c53-9e35-1a3c1e5c1d11");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"0a6f6f3c-0e1b-4c53-9e35-1a3c1e5c1d11\"");
        for bad in ["x' or 1 eq 1", "../x", "abc", ""] {
            let e = ClientId::guid(bad, "apps.txt line 3").unwrap_err();
            assert!(e.to_string().starts_with("apps.txt line 3: '"), "{bad}: {e}");
            assert_eq!(e.exit_code(), 2);
        }
    }
}
