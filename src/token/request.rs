//! Building a token request: endpoint URL, scope or resource, grant fields and client
//! authentication, as a form ready to post. No I/O here, so every rule is unit-tested.

use crate::authority::{Authority, EndpointVersion};
use crate::cert::{LoadedCredential, SignatureAlg};
use crate::jwt::{self, AssertionParams, DEFAULT_ASSERTION_LIFETIME};
use crate::secret::SecretString;
use crate::{ClientId, Error, Result, TenantId};
use std::fmt;
use std::sync::Arc;

/// `client_assertion_type` for a JWT client assertion (RFC 7523).
pub const JWT_BEARER_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// `grant_type` of the on-behalf-of flow.
pub const OBO_GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The suffix client credentials require on a v2 scope.
pub const DEFAULT_SCOPE_SUFFIX: &str = "/.default";

/// How the application proves who it is.
#[derive(Clone, Debug)]
pub enum ClientAuth {
    /// A client assertion signed with the certificate's key.
    Certificate {
        /// The certificate and its key.
        cred: Arc<LoadedCredential>,
        /// RS256 (`x5t`) or PS256 (`x5t#S256`).
        alg: SignatureAlg,
        /// Send the certificate chain in `x5c` (subject name / issuer authentication).
        x5c: bool,
    },
    /// A client secret (`client_secret=`).
    Secret(SecretString),
    /// A token from another issuer that the application trusts through a federated identity
    /// credential (GitHub Actions', a Kubernetes service account's), sent as the client
    /// assertion as it is.
    Federated(SecretString),
}

/// The grant: what the application exchanges for a token.
#[derive(Clone, Debug)]
pub enum Grant {
    /// App-only token (`client_credentials`).
    ClientCredentials,
    /// On-behalf-of: exchange the caller's token.
    OnBehalfOf {
        /// The incoming access token.
        assertion: SecretString,
    },
    /// Authorization code exchange (the Office 365 Management API's setup).
    AuthorizationCode {
        /// The code from the redirect.
        code: SecretString,
        /// The redirect URI the code was issued for.
        redirect_uri: String,
    },
}

/// What the token is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// v2 scopes (`scope=`); a bare resource gets `/.default`.
    Scopes(Vec<String>),
    /// A v1 resource URI (`resource=`).
    Resource(String),
}

impl Target {
    /// The one rule for what users give: scopes (v2; one argument may hold several,
    /// space-separated, as the `scope` field does) or a resource URI (v1), exactly one of them.
    pub fn new(scopes: &[String], resource: Option<&str>) -> Result<Target> {
        let scopes: Vec<String> = scopes.iter().flat_map(|s| s.split_whitespace().map(str::to_string)).collect();
        match (scopes.is_empty(), resource) {
            (true, Some(r)) => Ok(Target::Resource(r.to_string())),
            (false, None) => Ok(Target::Scopes(scopes)),
            (false, Some(_)) => Err(Error::input("both scopes and a resource given: say what the token is for")
                .with_hint("scopes go to the v2 endpoint, a resource to the v1 endpoint; give one of them")),
            (true, None) => Err(Error::input("no scope or resource given: say what the token is for")
                .with_hint("for example the scope https://graph.microsoft.com/.default")),
        }
    }
    /// The endpoint version the target implies: v1 for a resource, v2 for scopes.
    pub fn default_version(&self) -> EndpointVersion {
        match self {
            Target::Scopes(_) => EndpointVersion::V2,
            Target::Resource(_) => EndpointVersion::V1,
        }
    }
}

/// Everything needed to request one token.
#[derive(Clone, Debug)]
pub struct TokenRequest {
    /// Login host.
    pub authority: Authority,
    /// Tenant id or domain (`common` for the Office 365 Management API's authorization-code exchange).
    pub tenant: TenantId,
    /// Application (client) id.
    pub client_id: ClientId,
    /// Token endpoint version; v1 posts `resource=`, v2 `scope=`.
    pub version: EndpointVersion,
    /// Scopes or resource.
    pub target: Target,
    /// The grant.
    pub grant: Grant,
    /// Client authentication.
    pub auth: ClientAuth,
}

/// One form field; secret values stay wrapped until the body is encoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FormValue {
    /// A value that may be shown.
    Plain(String),
    /// A secret: client secret, assertion, incoming token, code.
    Secret(SecretString),
}

impl FormValue {
    /// The value to send.
    pub fn expose(&self) -> &str {
        match self {
            FormValue::Plain(s) => s,
            FormValue::Secret(s) => s.expose(),
        }
    }
}

/// A request ready to post: URL and form fields in order.
#[derive(Clone, PartialEq, Eq)]
pub struct PreparedRequest {
    /// The token endpoint; also the assertion's `aud`.
    pub url: String,
    /// Form fields, in the order they are sent.
    pub form: Vec<(&'static str, FormValue)>,
}

impl fmt::Debug for PreparedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // FormValue's Debug already redacts secrets; spelled out so a future change cannot leak.
        f.debug_struct("PreparedRequest").field("url", &self.url).field("form", &self.form).finish()
    }
}

impl PreparedRequest {
    /// The value of a field.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form.iter().find(|(n, _)| *n == name).map(|(_, v)| v.expose())
    }
    /// `application/x-www-form-urlencoded` body.
    pub fn encode_body(&self) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.form {
            s.append_pair(k, v.expose());
        }
        s.finish()
    }
}

/// Turns a scope into what v2 expects: a bare resource (`https://x`, `api://id`, an app id GUID)
/// becomes `https://x/.default`, one ending in `/` becomes `https://x//.default` (Microsoft's `.default` scope documentation:
/// Entra strips one slash). Named permissions (`User.Read`, `https://x/User.Read`) pass as is.
pub fn normalize_scope(scope: &str) -> String {
    let s = scope.trim();
    if s.ends_with(DEFAULT_SCOPE_SUFFIX) || !is_bare_resource(s) {
        return s.to_string();
    }
    format!("{s}{DEFAULT_SCOPE_SUFFIX}")
}

/// A v2 `/.default` scope for a v1 resource URI.
pub fn resource_to_scope(resource: &str) -> String {
    let r = resource.trim();
    if r.ends_with(DEFAULT_SCOPE_SUFFIX) {
        r.to_string()
    } else {
        format!("{r}{DEFAULT_SCOPE_SUFFIX}")
    }
}

/// The v1 resource for a `/.default` scope (the inverse of [`resource_to_scope`]).
pub fn scope_to_resource(scope: &str) -> String {
    let s = scope.trim();
    s.strip_suffix(DEFAULT_SCOPE_SUFFIX).unwrap_or(s).to_string()
}

fn is_bare_resource(s: &str) -> bool {
    if uuid::Uuid::parse_str(s).is_ok() {
        return true;
    }
    match url::Url::parse(s) {
        Ok(u) if s.contains("://") => matches!(u.path(), "" | "/"),
        _ => false,
    }
}

impl TokenRequest {
    /// The token endpoint URL this request is posted to.
    pub fn endpoint(&self) -> String {
        self.authority.token_endpoint(&self.tenant, self.version)
    }

    /// Builds the form, signing a fresh client assertion whose `aud` is exactly the endpoint.
    pub fn prepare(&self) -> Result<PreparedRequest> {
        let url = self.endpoint();
        let mut form: Vec<(&'static str, FormValue)> = Vec::new();
        let plain = |s: &str| FormValue::Plain(s.to_string());
        let grant_type = match &self.grant {
            Grant::ClientCredentials => "client_credentials",
            Grant::OnBehalfOf { .. } => OBO_GRANT_TYPE,
            Grant::AuthorizationCode { .. } => "authorization_code",
        };
        form.push(("grant_type", plain(grant_type)));
        form.push(("client_id", plain(self.client_id.as_str())));
        match (self.version, &self.target) {
            (EndpointVersion::V2, Target::Scopes(scopes)) => {
                let scopes: Vec<String> = scopes.iter().map(|s| normalize_scope(s)).collect();
                if scopes.is_empty() {
                    return Err(Error::input("no scope given")
                        .with_hint("ask for RESOURCE/.default, for example https://graph.microsoft.com/.default"));
                }
                if matches!(self.grant, Grant::ClientCredentials) {
                    if let Some(bad) = scopes.iter().find(|s| !s.ends_with(DEFAULT_SCOPE_SUFFIX)) {
                        return Err(Error::input(format!(
                            "scope {bad}: client credentials accept only a scope ending in /.default"
                        ))
                        .with_hint("ask for RESOURCE/.default; the token carries the app roles granted on RESOURCE"));
                    }
                }
                form.push(("scope", FormValue::Plain(scopes.join(" "))));
            }
            (EndpointVersion::V2, Target::Resource(r)) => form.push(("scope", FormValue::Plain(resource_to_scope(r)))),
            (EndpointVersion::V1, Target::Resource(r)) => form.push(("resource", plain(r.trim()))),
            (EndpointVersion::V1, Target::Scopes(scopes)) => match scopes.as_slice() {
                [one] => form.push(("resource", FormValue::Plain(scope_to_resource(one)))),
                _ => {
                    return Err(Error::input(format!(
                        "the v1 endpoint takes one resource, {} scopes were given",
                        scopes.len()
                    ))
                    .with_hint("ask for one resource, or use the v2 endpoint for several scopes"))
                }
            },
        }
        match &self.grant {
            Grant::ClientCredentials => {}
            Grant::OnBehalfOf { assertion } => {
                form.push(("assertion", FormValue::Secret(assertion.clone())));
                form.push(("requested_token_use", plain("on_behalf_of")));
            }
            Grant::AuthorizationCode { code, redirect_uri } => {
                form.push(("code", FormValue::Secret(code.clone())));
                form.push(("redirect_uri", plain(redirect_uri)));
            }
        }
        match &self.auth {
            ClientAuth::Certificate { cred, alg, x5c } => {
                let assertion = jwt::client_assertion(
                    cred,
                    &AssertionParams {
                        client_id: self.client_id.to_string(),
                        audience: url.clone(),
                        alg: *alg,
                        x5c: *x5c,
                        lifetime: DEFAULT_ASSERTION_LIFETIME,
                    },
                )?;
                form.push(("client_assertion_type", plain(JWT_BEARER_ASSERTION_TYPE)));
                form.push(("client_assertion", FormValue::Secret(assertion)));
            }
            ClientAuth::Secret(s) => form.push(("client_secret", FormValue::Secret(s.clone()))),
            ClientAuth::Federated(token) => {
                form.push(("client_assertion_type", plain(JWT_BEARER_ASSERTION_TYPE)));
                form.push(("client_assertion", FormValue::Secret(token.clone())));
            }
        }
        Ok(PreparedRequest { url, form })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(version: EndpointVersion, target: Target, grant: Grant) -> TokenRequest {
        TokenRequest {
            authority: Authority::parse("https://login.microsoftonline.com").unwrap(),
            tenant: "contoso.onmicrosoft.com".parse().unwrap(),
            client_id: "11111111-2222-3333-4444-555555555555".parse().unwrap(),
            version,
            target,
            grant,
            auth: ClientAuth::Secret(SecretString::new("s3cr3t~value")),
        }
    }

    #[test]
    fn scope_rules() {
        assert_eq!(normalize_scope("https://graph.microsoft.com"), "https://graph.microsoft.com/.default");
        assert_eq!(normalize_scope("https://graph.windows.net/"), "https://graph.windows.net//.default");
        assert_eq!(normalize_scope("api://my-api"), "api://my-api/.default");
        assert_eq!(
            normalize_scope("00000003-0000-0000-c000-000000000000"),
            "00000003-0000-0000-c000-000000000000/.default"
        );
        assert_eq!(normalize_scope("https://x/.default"), "https://x/.default");
        assert_eq!(normalize_scope("https://graph.microsoft.com/User.Read"), "https://graph.microsoft.com/User.Read");
        assert_eq!(normalize_scope("User.Read"), "User.Read");
        assert_eq!(resource_to_scope("https://x/"), "https://x//.default");
        assert_eq!(scope_to_resource("https://x//.default"), "https://x/");
    }

    #[test]
    fn v2_client_credentials_with_secret() {
        let p = req(
            EndpointVersion::V2,
            Target::Scopes(vec!["https://graph.microsoft.com".into()]),
            Grant::ClientCredentials,
        )
        .prepare()
        .unwrap();
        assert_eq!(p.url, "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token");
        assert_eq!(
            p.encode_body(),
            "grant_type=client_credentials&client_id=11111111-2222-3333-4444-555555555555\
             &scope=https%3A%2F%2Fgraph.microsoft.com%2F.default&client_secret=s3cr3t%7Evalue"
        );
        assert!(!format!("{p:?}").contains("s3cr3t"));
    }

    #[test]
    fn v1_resource_and_obo_and_code() {
        let p =
            req(EndpointVersion::V1, Target::Resource("https://graph.windows.net/".into()), Grant::ClientCredentials)
                .prepare()
                .unwrap();
        assert_eq!(p.url, "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/token");
        assert_eq!(p.field("resource"), Some("https://graph.windows.net/"));
        assert_eq!(p.field("scope"), None);

        let p = req(
            EndpointVersion::V2,
            Target::Scopes(vec!["https://graph.microsoft.com/User.Read".into()]),
            Grant::OnBehalfOf { assertion: SecretString::new("incoming") },
        )
        .prepare()
        .unwrap();
        assert_eq!(p.field("grant_type"), Some(OBO_GRANT_TYPE));
        assert_eq!(p.field("assertion"), Some("incoming"));
        assert_eq!(p.field("requested_token_use"), Some("on_behalf_of"));
        assert_eq!(p.field("scope"), Some("https://graph.microsoft.com/User.Read"));

        let p = req(
            EndpointVersion::V1,
            Target::Resource("https://graph.windows.net/".into()),
            Grant::AuthorizationCode { code: SecretString::new("c0de"), redirect_uri: "http://localhost/cb".into() },
        )
        .prepare()
        .unwrap();
        assert_eq!(p.field("grant_type"), Some("authorization_code"));
        assert_eq!(p.field("code"), Some("c0de"));
        assert_eq!(p.field("redirect_uri"), Some("http://localhost/cb"));
    }

    #[test]
    fn client_credentials_refuse_named_permissions() {
        let e = req(
            EndpointVersion::V2,
            Target::Scopes(vec!["https://graph.microsoft.com/User.Read".into()]),
            Grant::ClientCredentials,
        )
        .prepare()
        .unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.message().contains("/.default"));
        let e = req(EndpointVersion::V1, Target::Scopes(vec!["a".into(), "b".into()]), Grant::ClientCredentials)
            .prepare()
            .unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }
}
