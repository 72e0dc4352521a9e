//! Consent URLs: building the admin-consent (v2) and authorize (v1, the Office 365 Management API's setup) URLs an
//! administrator opens, and reading the URL the browser is redirected to afterwards.
//!
//! Every value is percent-encoded by `url`'s form serializer, so redirect URIs with their own
//! query strings survive the round trip.

use crate::authority::Authority;
use crate::{ClientId, Error, Result, TenantId};
use url::Url;

/// The `prompt` parameter of the v1 authorize URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Prompt {
    /// `prompt=consent`: ask the signed-in user again.
    Consent,
    /// `prompt=admin_consent`: ask an administrator to consent for the whole tenant.
    #[cfg_attr(feature = "cli", value(name = "admin_consent"))]
    AdminConsent,
}

impl Prompt {
    fn as_str(self) -> &'static str {
        match self {
            Prompt::Consent => "consent",
            Prompt::AdminConsent => "admin_consent",
        }
    }
}

/// Checks a reply URL the way Entra registers them: an absolute URL, https except for loopback
/// (`http://localhost`), or a custom scheme (`msal{client-id}://auth` for native apps).
///
/// A plain-http URL on another host is not refused: Entra no longer lets one be added, but older
/// registrations still hold such URLs and Entra keeps honouring them. It returns the warning to
/// show instead.
pub fn check_redirect_uri(uri: &str) -> Result<Option<String>> {
    let hint = "give a reply URL registered on the application, such as https://localhost/callback";
    let url = Url::parse(uri)
        .map_err(|e| Error::input(format!("--redirect-uri '{uri}' is not an absolute URL ({e})")).with_hint(hint))?;
    if url.scheme() == "http" && !crate::authority::is_loopback_host(&url) {
        return Ok(Some(format!(
            "reply URL '{uri}' uses plain http: it works only if the application already has it registered \
             (Entra accepts new http reply URLs for localhost only); prefer an https one"
        )));
    }
    Ok(None)
}

/// v2 admin-consent URL: `{authority}/{tenant|organizations}/adminconsent?client_id=..`
/// with `redirect_uri` and `state` when given (Entra uses the app's registered reply URL
/// otherwise).
pub fn admin_consent_url(
    authority: &Authority,
    tenant: Option<&TenantId>,
    client_id: &ClientId,
    redirect_uri: Option<&str>,
    state: Option<&str>,
) -> String {
    let tenant = tenant.map_or("organizations", TenantId::as_str);
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("client_id", client_id.as_str());
    if let Some(r) = redirect_uri {
        q.append_pair("redirect_uri", r);
    }
    if let Some(s) = state {
        q.append_pair("state", s);
    }
    format!("{}/{}/adminconsent?{}", authority.as_str(), encode_segment(tenant), q.finish())
}

/// v1 authorize URL of the Office 365 Management API's setup:
/// `{authority}/{tenant|common}/oauth2/authorize?response_type=code&resource=..&client_id=..&redirect_uri=..`
/// with an optional `prompt` and `state`.
pub fn authorize_url_v1(
    authority: &Authority,
    tenant: Option<&TenantId>,
    client_id: &ClientId,
    resource: &str,
    redirect_uri: &str,
    prompt: Option<Prompt>,
    state: Option<&str>,
) -> String {
    let tenant = tenant.map_or("common", TenantId::as_str);
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("response_type", "code");
    q.append_pair("resource", resource);
    q.append_pair("client_id", client_id.as_str());
    q.append_pair("redirect_uri", redirect_uri);
    if let Some(p) = prompt {
        q.append_pair("prompt", p.as_str());
    }
    if let Some(s) = state {
        q.append_pair("state", s);
    }
    format!("{}/{}/oauth2/authorize?{}", authority.as_str(), encode_segment(tenant), q.finish())
}

fn encode_segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// What a consent redirect says when consent was given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsentReply {
    /// The tenant that consented (`tenant`), when the reply names it.
    pub tenant: Option<String>,
    /// `admin_consent=True` (v2 admin consent).
    pub admin_consent: bool,
    /// The `state` echoed back.
    pub state: Option<String>,
    /// Whether the reply carries an authorization `code` (v1 authorize); the code itself is not
    /// kept here because it is a credential.
    pub has_code: bool,
}

/// Reads the URL the browser was redirected to after consent. A refusal
/// (`?error=..&error_description=..`) is a remote error (exit 3) carrying both.
pub fn parse_redirect(redirected: &str) -> Result<ConsentReply> {
    let url = Url::parse(redirected.trim()).map_err(|e| {
        Error::input(format!("--parse: '{}' is not a URL ({e})", redirected.trim()))
            .with_hint("paste the whole address the browser was sent to after consent")
    })?;
    // Entra answers in the query, or in the fragment for response_mode=fragment.
    let mut pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    if let Some(f) = url.fragment() {
        pairs.extend(url::form_urlencoded::parse(f.as_bytes()).into_owned());
    }
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    if let Some(err) = get("error") {
        let desc = get("error_description").unwrap_or_default();
        let first = desc.lines().next().unwrap_or("").trim().to_string();
        let msg = if first.is_empty() {
            format!("consent was refused: {err}")
        } else {
            format!("consent was refused: {err}: {first}")
        };
        let hint = match err.as_str() {
            "access_denied" => "the administrator declined, or the signed-in user is not an administrator",
            _ => "read the description; an administrator of the tenant must open the consent URL",
        };
        return Err(Error::remote(msg).with_hint(hint));
    }
    let tenant = get("tenant");
    let admin_consent = get("admin_consent").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let has_code = get("code").is_some();
    if tenant.is_none() && !admin_consent && !has_code {
        return Err(Error::input("--parse: the URL has no consent answer (no tenant, admin_consent, code or error)")
            .with_hint("paste the address the browser was redirected to, with its query string"));
    }
    Ok(ConsentReply { tenant, admin_consent, state: get("state"), has_code })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Authority {
        Authority::parse("https://login.microsoftonline.com").unwrap()
    }

    #[test]
    fn reply_urls_are_https_loopback_http_or_a_custom_scheme() {
        for ok in ["https://app.example/cb", "http://localhost/cb", "http://127.0.0.1:5000/", "msalabc://auth"] {
            assert_eq!(check_redirect_uri(ok).unwrap(), None, "{ok}");
        }
        // An older registration's http reply URL: built, with a warning.
        let w = check_redirect_uri("http://app.example/cb").unwrap().unwrap();
        assert!(w.contains("plain http") && w.contains("localhost only"), "{w}");
        let e = check_redirect_uri("notaurl").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("not an absolute URL") && e.to_string().contains("notaurl"), "{e}");
    }

    #[test]
    fn v2_admin_consent_url_is_percent_encoded() {
        let abc = ClientId::new("abc").unwrap();
        let u = admin_consent_url(&auth(), None, &abc, Some("https://app.example/cb?x=1&y=2"), Some("s 1"));
        assert_eq!(
            u,
            "https://login.microsoftonline.com/organizations/adminconsent?client_id=abc\
             &redirect_uri=https%3A%2F%2Fapp.example%2Fcb%3Fx%3D1%26y%3D2&state=s+1"
        );
        let contoso = TenantId::new("contoso.onmicrosoft.com").unwrap();
        let u = admin_consent_url(&auth(), Some(&contoso), &abc, None, None);
        assert_eq!(u, "https://login.microsoftonline.com/contoso.onmicrosoft.com/adminconsent?client_id=abc");
    }

    #[test]
    fn v1_authorize_url_matches_the_office_365_management_api_setup() {
        let u = authorize_url_v1(
            &auth(),
            None,
            &ClientId::new("cid").unwrap(),
            "https://graph.windows.net/",
            "http://localhost/cb",
            Some(Prompt::AdminConsent),
            None,
        );
        assert_eq!(
            u,
            "https://login.microsoftonline.com/common/oauth2/authorize?response_type=code\
             &resource=https%3A%2F%2Fgraph.windows.net%2F&client_id=cid\
             &redirect_uri=http%3A%2F%2Flocalhost%2Fcb&prompt=admin_consent"
        );
    }

    #[test]
    fn parse_reply_and_refusal() {
        let r = parse_redirect("https://app.example/cb?tenant=t-1&admin_consent=True&state=42").unwrap();
        assert_eq!(r.tenant.as_deref(), Some("t-1"));
        assert!(r.admin_consent);
        assert_eq!(r.state.as_deref(), Some("42"));
        let e = parse_redirect(
            "https://app.example/cb?error=access_denied&error_description=AADSTS65004%3A+User+declined.%0D%0ATrace+ID%3A+x",
        )
        .unwrap_err();
        assert_eq!(e.exit_code(), 3);
        assert_eq!(e.message(), "consent was refused: access_denied: AADSTS65004: User declined.");
        assert_eq!(parse_redirect("nope").unwrap_err().exit_code(), 2);
        assert_eq!(parse_redirect("https://app.example/cb").unwrap_err().exit_code(), 2);
    }
}
