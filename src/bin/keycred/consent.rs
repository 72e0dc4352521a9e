//! `keycred consent-url`: build the URL an administrator opens to consent (v2 admin consent, or
//! the v1 authorize URL of the Office 365 Management API's setup), or read the URL the browser
//! was redirected to afterwards.

use super::output::{out_line, print_pairs};
use super::{Ctx, TenantArgs};
use keycred::consent::{self, Prompt};
use keycred::{error::exit, Error, Result};

/// Builds or parses consent URLs.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub tenant: TenantArgs,
    /// Where Entra sends the browser afterwards (a reply URL registered on the app)
    #[arg(long, value_name = "URI")]
    pub redirect_uri: Option<String>,
    /// Opaque value echoed back in the redirect; with --parse, the value the reply must echo
    /// (exit 4 when it does not)
    #[arg(long)]
    pub state: Option<String>,
    /// Build the v1 authorize URL (as the Office 365 Management API's setup does; needs
    /// --resource) instead of the v2 admin-consent URL
    #[arg(long, requires = "resource")]
    pub v1: bool,
    /// Resource URI for the v1 authorize URL
    #[arg(long, value_name = "URI")]
    pub resource: Option<String>,
    /// prompt= for the v1 URL
    #[arg(long, value_enum, requires = "v1")]
    pub prompt: Option<Prompt>,
    /// Read the URL the browser was redirected to instead of building one: prints the tenant,
    /// the consent, the state and the authorization code (short-lived, for `token --code`)
    #[arg(long, value_name = "REDIRECTED_URL", conflicts_with_all = ["v1", "resource", "prompt"])]
    pub parse: Option<String>,
}

/// Runs `keycred consent-url`.
pub fn run(a: &Args, ctx: &Ctx) -> Result<u8> {
    if let Some(u) = &a.parse {
        return parse(u, a.state.as_deref(), ctx);
    }
    let authority = a.tenant.authority()?;
    let client_id = a.tenant.client_id()?;
    let tenant = a.tenant.tenant_if_given()?;
    if let Some(r) = &a.redirect_uri {
        if let Some(w) = consent::check_redirect_uri(r)? {
            eprintln!("keycred: warning: {w}");
        }
    }
    let url = if a.v1 {
        let resource = a.resource.as_deref().unwrap_or_default();
        let redirect = a.redirect_uri.as_deref().ok_or_else(|| {
            Error::input("--v1 needs --redirect-uri").with_hint("give a reply URL registered on the application")
        })?;
        consent::authorize_url_v1(
            &authority,
            tenant.as_ref(),
            &client_id,
            resource,
            redirect,
            a.prompt,
            a.state.as_deref(),
        )
    } else {
        consent::admin_consent_url(
            &authority,
            tenant.as_ref(),
            &client_id,
            a.redirect_uri.as_deref(),
            a.state.as_deref(),
        )
    };
    if ctx.json() {
        ctx.print_json(&serde_json::json!({ "url": url }));
    } else {
        out_line(&url);
    }
    Ok(exit::OK)
}

/// `--parse`: what the redirect says, its state checked against `--state` when given. The code
/// is printed: the user pasted it, it lives minutes, and `token --code` needs it.
fn parse(url: &str, state: Option<&str>, ctx: &Ctx) -> Result<u8> {
    let r = consent::parse_redirect(url, "--parse")?;
    if let Some(s) = state {
        consent::check_state(&r, s)?;
    }
    let code = r.code.as_ref().map(|c| c.expose().to_string());
    if ctx.json() {
        ctx.print_json(&serde_json::json!({
            "tenant": r.tenant, "adminConsent": r.admin_consent, "state": r.state,
            "stateChecked": state.is_some(), "hasCode": code.is_some(), "code": code,
        }));
        return Ok(exit::OK);
    }
    let mut pairs = Vec::new();
    if let Some(t) = &r.tenant {
        pairs.push(("tenant", t.clone()));
    }
    pairs.push(("admin consent", if r.admin_consent { "granted".into() } else { "no".into() }));
    if let Some(s) = &r.state {
        let checked = if state.is_some() { " (matches --state)" } else { "" };
        pairs.push(("state", format!("{s}{checked}")));
    }
    if let Some(c) = code {
        pairs.push(("code", c));
    }
    print_pairs(&pairs);
    if r.code.is_some() {
        out_line("exchange the code within minutes: keycred token --code CODE --redirect-uri URI ... (or pass the whole URL as --code)");
    }
    Ok(exit::OK)
}
