//! `keycred decode`: show a JWT's header and claims, with times also as RFC 3339, clearly marked
//! as not verified.

use super::claims::{display_value, times};
use super::output::{out_line, printable};
use super::Ctx;
use keycred::jwt::dangerous;
use keycred::{error::exit, Result};
use serde_json::{Map, Value};

/// Decodes a JWT; with --verify, also checks its signature against the issuer's keys.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The token, or `-` to read it from stdin
    #[arg(value_name = "TOKEN|-")]
    pub token: String,
    /// Verify the signature with the key the token names, from --jwks URL or from the
    /// authority's OpenID configuration for --tenant (exit 4 when it does not verify)
    #[arg(long)]
    pub verify: bool,
    /// JWKS URL to verify with (e.g. the emulator's, or https://login.microsoftonline.com/TENANT/discovery/v2.0/keys)
    #[arg(long, value_name = "URL", requires = "verify", conflicts_with = "tenant")]
    pub jwks: Option<String>,
    /// Tenant whose keys verify the token (its OpenID configuration gives the JWKS)
    #[arg(long, env = "AZURE_TENANT_ID", requires = "verify")]
    pub tenant: Option<String>,
    /// Authority host of --tenant (https; http only for loopback)
    #[arg(long, env = "AZURE_AUTHORITY_HOST", default_value = keycred::authority::DEFAULT_AUTHORITY)]
    pub authority: String,
    #[command(flatten)]
    pub ca: super::common::CaFileArgs,
    /// Fail (exit 4) unless `roles` holds ROLE; repeatable
    #[arg(long, value_name = "ROLE")]
    pub expect_role: Vec<String>,
}

/// Runs `keycred decode`.
pub fn run(a: &Args, ctx: &Ctx) -> Result<u8> {
    let token = super::common::read_arg_or_stdin(&a.token, "TOKEN", dangerous::MAX_TOKEN_LEN as u64 + 1024)?;
    let token = token.expose();
    // An Authorization header value pasted whole ("Bearer eyJ...") is accepted as the token.
    let token = token.trim();
    let token = match token.get(..7) {
        Some(p) if p.eq_ignore_ascii_case("bearer ") => token[7..].trim_start(),
        _ => token,
    };
    let d = dangerous::decode(token).map_err(|e| e.context("TOKEN"))?;
    let verified = if a.verify { Some(verify(a, &d)?) } else { None };
    if ctx.json() {
        ctx.print_json(&serde_json::json!({
            "verified": verified.is_some(),
            "verifiedWith": verified.as_ref().map(|(v, url)| serde_json::json!({"kid": v.kid, "alg": v.alg, "jwks": url})),
            "header": d.header,
            "claims": d.claims,
            "times": times(&d.claims),
        }));
    } else {
        match &verified {
            Some((v, url)) => out_line(&format!("signature valid: {} with key {} of {url}", v.alg, v.kid)),
            None => out_line("NOT VERIFIED: the signature was not checked; do not trust these values"),
        }
        out_line("header:");
        print_map(&d.header);
        out_line("claims:");
        print_map(&d.claims);
    }
    d.require_roles(&a.expect_role)?;
    Ok(exit::OK)
}

fn print_map(m: &Map<String, Value>) {
    // Escaped before aligning: a hostile claim must not move the columns or add lines.
    let pairs: Vec<(String, String)> =
        m.iter().map(|(k, v)| (printable(k).into_owned(), printable(&display_value(k, v)).into_owned())).collect();
    let w = pairs.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0) + 1;
    for (k, v) in pairs {
        out_line(&format!("  {:<w$}  {v}", format!("{k}:")));
    }
}

/// Fetches the JWKS (given, or the `jwks_uri` of the tenant's OpenID configuration) and checks
/// the signature; returns what verified it and the JWKS URL.
fn verify(a: &Args, d: &keycred::jwt::Decoded) -> Result<(keycred::jwks::Verified, String)> {
    let client = a.ca.client()?;
    let url = match (&a.jwks, &a.tenant) {
        (Some(u), _) => u.clone(),
        (None, tenant) => {
            let authority = keycred::authority::Authority::parse(&a.authority)?;
            let tenant = match tenant {
                Some(t) => keycred::TenantId::new(t).map_err(|e| e.context("--tenant"))?,
                None => return Err(keycred::Error::input("--verify needs the keys: --jwks URL or --tenant T")
                    .with_hint(
                    "give the tenant that issued the token (its tid claim) with --tenant, or the JWKS URL with --jwks",
                )),
            };
            let config = format!(
                "{}/{}/v2.0/.well-known/openid-configuration",
                authority.as_str().trim_end_matches('/'),
                tenant.as_str()
            );
            let doc = client.get_json_blocking(&config)?;
            doc.get("jwks_uri").and_then(serde_json::Value::as_str).map(str::to_string).ok_or_else(|| {
                keycred::Error::remote(format!("{config} has no jwks_uri")).with_hint("check --authority and --tenant")
            })?
        }
    };
    let set = client.get_json_blocking(&url)?;
    Ok((keycred::jwks::verify(d, &set, &url)?, url))
}
