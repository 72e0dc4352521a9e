//! `keycred assertion`: sign a client assertion (RFC 7523) with a certificate and print it, for
//! use with curl or another client, or to inspect what keycred sends.

use super::common::{AlgArgs, EndpointArg};
use super::output::out_line;
use super::{CredArgs, Ctx, TenantArgs};
use keycred::authority::check_transport;
use keycred::jwt::{self, AssertionParams, DEFAULT_ASSERTION_LIFETIME};
use keycred::{error::exit, Error, Result};

/// Prints a signed client assertion (JWT) on stdout.
///
/// `aud` is the tenant's token endpoint (v2 unless `--endpoint v1`), or `--audience`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub tenant: TenantArgs,
    #[command(flatten)]
    pub cred: CredArgs,
    /// Token endpoint the assertion is for (sets `aud`)
    #[arg(long, value_enum, default_value_t = EndpointArg::V2, conflicts_with = "audience")]
    pub endpoint: EndpointArg,
    /// Explicit audience URL instead of the tenant's token endpoint
    #[arg(long, value_name = "URL")]
    pub audience: Option<String>,
    #[command(flatten)]
    pub alg: AlgArgs,
    /// Add the certificate chain as `x5c` (subject name / issuer authentication)
    #[arg(long, env = "AZURE_CLIENT_SEND_CERTIFICATE_CHAIN", value_parser = clap::builder::FalseyValueParser::new())]
    pub x5c: bool,
    /// Lifetime in seconds (at most 3600)
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_ASSERTION_LIFETIME)]
    pub lifetime: u64,
}

/// Runs `keycred assertion`.
pub fn run(a: &Args, ctx: &Ctx) -> Result<u8> {
    jwt::check_lifetime(a.lifetime).map_err(|e| e.context(format!("--lifetime {}", a.lifetime)))?;
    let client_id = a.tenant.client_id()?;
    let audience = match &a.audience {
        Some(u) => {
            let url = url::Url::parse(u).map_err(|e| {
                Error::input(format!("--audience '{u}' is not a URL"))
                    .caused_by(e)
                    .with_hint("give the token endpoint URL the assertion will be posted to")
            })?;
            check_transport(&url, "--audience")?;
            u.clone()
        }
        None => a.tenant.authority()?.token_endpoint(&a.tenant.tenant()?, a.endpoint.into()),
    };
    let cred = a.cred.load_using(None)?;
    let params = AssertionParams {
        client_id: client_id.to_string(),
        audience: audience.clone(),
        alg: a.alg.get(),
        x5c: a.x5c,
        lifetime: a.lifetime,
    };
    let jwt = jwt::client_assertion(&cred, &params)?;
    if ctx.json() {
        ctx.print_json(&serde_json::json!({
            "assertion": jwt.expose(),
            "audience": audience,
            "alg": params.alg.jose(),
            "thumbprint": cred.cert.thumbprint(),
            "lifetime": a.lifetime,
        }));
    } else {
        // Printing the assertion is the point of this command: the user asked for it.
        out_line(jwt.expose());
    }
    Ok(exit::OK)
}
