//! `keycred decode`: show a JWT's header and claims, with times also as RFC 3339, clearly marked
//! as not verified; with `--verify`, checked as the API it is meant for would check it.

use super::claims::{display_value, rfc3339, times};
use super::output::{out_line, printable};
use super::Ctx;
use keycred::jwt::dangerous;
use keycred::verify::{self, CLOCK_SKEW_SECS};
use keycred::{error::exit, Error, Result, TenantId};
use serde_json::{Map, Value};

/// Decodes a JWT; with --verify, also checks it as the API it is meant for would.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The token, or `-` to read it from stdin
    #[arg(value_name = "TOKEN|-")]
    pub token: String,
    /// Check the token as its API would (exit 4 naming the check that failed): the signature
    /// with the key it names, from --jwks URL or the tenant's OpenID configuration; exp and nbf,
    /// with 5 minutes of clock skew; iss and tid against --tenant; aud against --audience
    #[arg(long)]
    pub verify: bool,
    /// JWKS URL to check the signature with (default: the tenant's, from its OpenID configuration)
    #[arg(long, value_name = "URL", requires = "verify")]
    pub jwks: Option<String>,
    /// Tenant that must have issued the token (id or domain); read by --verify only
    #[arg(long, env = "AZURE_TENANT_ID")]
    pub tenant: Option<String>,
    /// With --verify: the audience the token must have (the API's app id or an App ID URI;
    /// repeatable, any one passes)
    #[arg(long, value_name = "AUD", requires = "verify")]
    pub audience: Vec<String>,
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
            "verifiedWith": verified.as_ref().map(|v| serde_json::json!({
                "kid": v.signature.kid,
                "alg": v.signature.alg,
                "jwks": v.jwks,
                "issuer": v.claims.issuer,
                "tenant": v.claims.tenant_id,
                "audience": v.claims.audience,
                "expiresOn": rfc3339(v.claims.expires as i64),
                "clockSkewSeconds": CLOCK_SKEW_SECS,
            })),
            "header": d.header,
            "claims": d.claims,
            "times": times(&d.claims),
        }));
    } else {
        match &verified {
            Some(v) => {
                out_line(&format!("signature valid: {} with key {} of {}", v.signature.alg, v.signature.kid, v.jwks));
                out_line(&format!(
                    "claims valid: issuer {}, tenant {}, {}, audience {}",
                    v.claims.issuer,
                    v.claims.tenant_id,
                    match rfc3339(v.claims.expires as i64) {
                        Some(t) => format!("expires {t}"),
                        None => "not expired".to_string(),
                    },
                    v.claims.audience.as_deref().unwrap_or("not checked (no --audience)")
                ));
            }
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

/// What `--verify` checked: the signature (with the key of `jwks`), then the claims.
struct Verification {
    signature: keycred::jwks::Verified,
    jwks: String,
    claims: verify::Checked,
}

/// Checks the token as its API would: the tenant's issuers from its OpenID configurations (v1
/// and v2: an API may be given either version of token), the signature with the key the token
/// names (from `--jwks` or the v2 configuration's `jwks_uri`), then lifetime, issuer, tenant and
/// audience ([`verify::claims`]).
fn verify(a: &Args, d: &keycred::jwt::Decoded) -> Result<Verification> {
    let tenant = match a.tenant.as_deref() {
        Some(t) => TenantId::new(t).map_err(|e| e.context("--tenant"))?,
        None => return Err(Error::input("--verify needs the tenant that issued the token").with_hint(
            "pass --tenant (or set AZURE_TENANT_ID): Entra signs every tenant's tokens with the same keys, so only \
                 iss and tid say the token is your tenant's",
        )),
    };
    if tenant.is_alias() {
        return Err(Error::input(format!("--tenant {tenant}: names no tenant, so --verify cannot check iss and tid"))
            .with_hint("give the tenant id (GUID) or a domain of the tenant that should have issued the token"));
    }
    let authority = keycred::authority::Authority::parse(&a.authority)?;
    let client = a.ca.client()?;
    let base = format!("{}/{}", authority.as_str().trim_end_matches('/'), tenant.as_str());
    let v2 = openid_configuration(&client, &format!("{base}/v2.0/.well-known/openid-configuration"), "jwks_uri")?;
    let v1 = openid_configuration(&client, &format!("{base}/.well-known/openid-configuration"), "issuer")?;
    let issuers: Vec<String> =
        [&v2, &v1].iter().filter_map(|c| c.get("issuer").and_then(Value::as_str)).map(str::to_string).collect();
    let tenant_id = match uuid::Uuid::parse_str(tenant.as_str()) {
        Ok(_) => tenant.as_str().to_ascii_lowercase(),
        // A domain: its id is in the issuer (`https://login.microsoftonline.com/{tid}/v2.0`).
        Err(_) => issuers
            .iter()
            .flat_map(|i| i.split('/'))
            .find(|seg| uuid::Uuid::parse_str(seg).is_ok())
            .map(str::to_string)
            .ok_or_else(|| {
                Error::remote(format!("the OpenID configuration of {tenant} names no tenant id in its issuer"))
                    .with_hint("check --authority and --tenant, or give the tenant id (GUID)")
            })?,
    };
    let jwks = match &a.jwks {
        Some(u) => u.clone(),
        None => v2.get("jwks_uri").and_then(Value::as_str).unwrap_or_default().to_string(),
    };
    let set = client.get_json_blocking(&jwks)?;
    let signature = keycred::jwks::verify(d, &set, &jwks)?;
    let want = verify::Expected { issuers, tenant_id, audiences: a.audience.clone() };
    let claims = verify::claims(d, &want, keycred::jwt::now_secs() as f64)?;
    Ok(Verification { signature, jwks, claims })
}

/// The OpenID configuration at `url`, which must hold `field`.
fn openid_configuration(client: &keycred::token::TokenClient, url: &str, field: &str) -> Result<Value> {
    let doc = client.get_json_blocking(url)?;
    if doc.get(field).and_then(Value::as_str).is_none() {
        return Err(Error::remote(format!("{url} has no {field}")).with_hint("check --authority and --tenant"));
    }
    Ok(doc)
}
