//! Consent URLs: building the admin-consent (v2) and authorize (v1, the Office 365 Management API's setup) URLs an
//! administrator opens, and reading the URL the browser is redirected to afterwards.
//!
//! Every value is percent-encoded by `url`'s form serializer, so redirect URIs with their own
//! query strings survive the round trip.

use crate::authority::Authority;
use crate::secret::SecretString;
use crate::wording::Input;
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
    let url = Url::parse(uri).map_err(|e| {
        Error::input(format!("{} '{uri}' is not an absolute URL", Input::RedirectUri)).caused_by(e).with_hint(hint)
    })?;
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
    /// The tenant that consented (`tenant`, a GUID), when the reply names it.
    pub tenant: Option<String>,
    /// `admin_consent=True` (v2 admin consent).
    pub admin_consent: bool,
    /// The `state` echoed back.
    pub state: Option<String>,
    /// The authorization `code` (v1 authorize, or any authorize request): short-lived and single
    /// use, a credential all the same (its `Debug` is redacted).
    pub code: Option<SecretString>,
}

/// Reads the URL the browser was redirected to after consent or sign-in; `what` names it in
/// errors (`--parse`, `--code`). A refusal (`?error=..&error_description=..`) is a remote error
/// (exit 3) carrying both. Refused as input (exit 2): a parameter that appears twice (Entra sends
/// each once; which one a reader keeps differs, so `admin_consent=True&admin_consent=False` must
/// not read as granted) and a `tenant` that is not a GUID (Entra names the consenting tenant by
/// its id).
pub fn parse_redirect(redirected: &str, what: &str) -> Result<ConsentReply> {
    let url = Url::parse(redirected.trim()).map_err(|e| {
        Error::input(format!("{what}: '{}' is not a URL", redirected.trim()))
            .caused_by(e)
            .with_hint("paste the whole address the browser was sent to")
    })?;
    // Entra answers in the query, or in the fragment for response_mode=fragment.
    let mut pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    if let Some(f) = url.fragment() {
        pairs.extend(url::form_urlencoded::parse(f.as_bytes()).into_owned());
    }
    for (i, (name, _)) in pairs.iter().enumerate() {
        if pairs[..i].iter().any(|(n, _)| n == name) {
            return Err(Error::input(format!(
                "{what}: the parameter '{name}' appears more than once in the URL; Entra sends each once, so the \
                 URL was altered and cannot be trusted"
            ))
            .with_hint("paste the address exactly as the browser shows it after the redirect"));
        }
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
    if let Some(t) = &tenant {
        if uuid::Uuid::parse_str(t).is_err() {
            return Err(Error::input(format!(
                "{what}: tenant={t:?} is not a tenant id; Entra names the tenant that consented by its id (a GUID)"
            ))
            .with_hint("paste the address exactly as the browser shows it after the redirect"));
        }
    }
    let admin_consent = get("admin_consent").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let code = get("code").filter(|c| !c.is_empty()).map(SecretString::new);
    if tenant.is_none() && !admin_consent && code.is_none() {
        return Err(Error::input(format!(
            "{what}: the URL has no consent answer (no tenant, admin_consent, code or error)"
        ))
        .with_hint("paste the address the browser was redirected to, with its query string"));
    }
    Ok(ConsentReply { tenant, admin_consent, state: get("state"), code })
}

/// Compares the reply's `state` with the one the consent URL was built with (`--state`). A
/// missing or different state fails the check (exit 4): the redirect may answer someone else's
/// request (RFC 6749 section 10.12).
pub fn check_state(reply: &ConsentReply, expected: &str) -> Result<()> {
    match reply.state.as_deref() {
        Some(s) if s == expected => Ok(()),
        got => Err(Error::check(format!(
            "the redirect's state is {}, not {expected:?} ({}): it does not answer the request you made",
            got.map_or("missing".to_string(), |s| format!("{s:?}")),
            Input::State
        ))
        .with_hint("open the consent or sign-in URL again and use the address it redirects to")),
    }
}

/// The authorization code `token --code` exchanges: the value as given, or the `code` of a
/// redirect URL pasted whole (`https://localhost/cb?code=...&state=...`), read by
/// [`parse_redirect`] and checked against `state` when given. Such a URL must have been the
/// reply URL the code is for (`redirect_uri`): the same scheme, host, port and path.
pub fn authorization_code(input: &SecretString, redirect_uri: &str, state: Option<&str>) -> Result<SecretString> {
    let value = input.expose().trim();
    if !value.contains("://") {
        if state.is_some() {
            return Err(Error::input(format!(
                "{} needs the whole redirect URL in {}, to compare its state",
                Input::State,
                Input::Code
            ))
            .with_hint(format!(
                "give {} as 'https://.../cb?code=...&state=...', as the browser showed it, or leave {} out",
                Input::Code,
                Input::State
            )));
        }
        return Ok(input.clone());
    }
    let reply = parse_redirect(value, &Input::Code.to_string())?;
    let code = reply.code.clone().ok_or_else(|| {
        Error::input(format!("{}: the redirect URL carries no code", Input::Code))
            .with_hint("an admin-consent redirect has none: open the sign-in (authorize) URL and paste where it lands")
    })?;
    let (got, want) = (Url::parse(value).ok(), Url::parse(redirect_uri).ok());
    let address = |u: &Url| format!("{}://{}{}", u.scheme(), u.host_str().unwrap_or(""), u.path());
    if let (Some(got), Some(want)) = (&got, &want) {
        if (address(got), got.port_or_known_default()) != (address(want), want.port_or_known_default()) {
            return Err(Error::input(format!(
                "{}: the browser was sent to {}, not to {} {redirect_uri}: the code is valid only with the reply \
                 URL it was issued for",
                Input::Code,
                address(got),
                Input::RedirectUri
            ))
            .with_hint(format!("give the reply URL of the sign-in request as {}", Input::RedirectUri)));
        }
    }
    if let Some(s) = state {
        check_state(&reply, s)?;
    }
    Ok(code)
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
        let t = "72f988bf-86f1-41af-91ab-2d7cd011db47";
        let r = parse_redirect(&format!("https://app.example/cb?tenant={t}&admin_consent=True&state=42"), "--parse")
            .unwrap();
        assert_eq!(r.tenant.as_deref(), Some(t));
        assert!(r.admin_consent);
        assert_eq!(r.state.as_deref(), Some("42"));
        let e = parse_redirect(
            "https://app.example/cb?error=access_denied&error_description=AADSTS65004%3A+User+declined.%0D%0ATrace+ID%3A+x",
            "--parse",
        )
        .unwrap_err();
        assert_eq!(e.exit_code(), 3);
        assert_eq!(e.message(), "consent was refused: access_denied: AADSTS65004: User declined.");
        assert_eq!(parse_redirect("nope", "--parse").unwrap_err().exit_code(), 2);
        assert_eq!(parse_redirect("https://app.example/cb", "--parse").unwrap_err().exit_code(), 2);
    }

    #[test]
    fn a_reply_with_a_parameter_twice_or_a_tenant_that_is_no_id_is_refused() {
        let t = "72f988bf-86f1-41af-91ab-2d7cd011db47";
        for (url, want) in [
            (
                format!("https://a.example/cb?tenant={t}&admin_consent=True&admin_consent=False"),
                "'admin_consent' appears",
            ),
            ("https://a.example/cb?code=c1&state=s#code=c2".to_string(), "'code' appears"),
            ("https://a.example/cb?tenant=evil.example%2F..&admin_consent=True".to_string(), "is not a tenant id"),
        ] {
            let e = parse_redirect(&url, "--parse").unwrap_err();
            assert_eq!(e.exit_code(), 2, "{url}");
            assert!(e.message().contains(want), "{url}: {e}");
        }
    }

    #[test]
    fn a_code_is_taken_from_a_redirect_url_with_its_state_checked() {
        let cb = "https://localhost/cb";
        let url = SecretString::new("https://localhost/cb?code=0.AXo-code&state=s1&session_state=x");
        assert_eq!(authorization_code(&url, cb, None).unwrap().expose(), "0.AXo-code");
        assert_eq!(authorization_code(&url, cb, Some("s1")).unwrap().expose(), "0.AXo-code");
        let e = authorization_code(&url, cb, Some("s2")).unwrap_err();
        assert_eq!(e.exit_code(), 4);
        assert!(e.message().contains(r#"state is "s1", not "s2""#), "{e}");
        let e = authorization_code(&url, "https://localhost/other", None).unwrap_err();
        assert!(e.message().contains("not to the redirect URI https://localhost/other"), "{e}");
        // A bare code passes as it is; --state cannot be checked on it.
        let bare = SecretString::new("0.AXo-code");
        assert_eq!(authorization_code(&bare, cb, None).unwrap().expose(), "0.AXo-code");
        assert!(authorization_code(&bare, cb, Some("s1")).unwrap_err().message().contains("the state needs"));
        let e = authorization_code(&SecretString::new("https://localhost/cb?error=access_denied"), cb, None);
        assert_eq!(e.unwrap_err().exit_code(), 3);
    }
}
