//! `keycred fic mint|check`: workload tokens for a secretless setup. `mint` asks an issuer the
//! emulator plays (`keycred emulate --issuer NAME`) for a token, as a CI runner or a kubelet
//! hands one to a workload; `check` says whether Entra would accept a token for an application,
//! and why not, with the AADSTS code Entra answers (the same judgement as the emulator's token
//! endpoint, [`keycred::fic::diagnose`]).

use super::common::HttpArgs;
use super::output::out_line;
use super::Ctx;
use keycred::fic::issuer;
use keycred::{error::exit, Error, Result};
use serde_json::{json, Map, Value};

/// Subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum Cmd {
    /// Print a workload token signed by an issuer the emulator plays (emulator-only; loopback)
    Mint(MintArgs),
    /// Say whether Entra would accept an external token for an app, and why not
    Check(Box<super::fic_check::Args>),
}

/// `keycred fic mint`.
#[derive(clap::Args, Debug)]
pub struct MintArgs {
    /// The issuer URL, as `keycred emulate -o json` lists it under "issuers"
    #[arg(long, value_name = "URL")]
    pub issuer: String,
    /// The token's sub, e.g. repo:ORG/REPO:environment:NAME or system:serviceaccount:NS:NAME
    #[arg(long, value_name = "SUBJECT")]
    pub subject: String,
    /// The token's aud
    #[arg(long, value_name = "AUD", default_value = keycred::fic::DEFAULT_AUDIENCE)]
    pub audience: String,
    /// An extra or replacing claim, NAME=VALUE (VALUE read as JSON when it is JSON); repeatable
    #[arg(long = "claim", value_name = "NAME=VALUE")]
    pub claims: Vec<String>,
    /// Lifetime in seconds; negative mints an already expired token
    #[arg(long, value_name = "SECS", default_value_t = 300, allow_hyphen_values = true)]
    pub lifetime: i64,
    #[command(flatten)]
    pub http: HttpArgs,
}

/// Runs `keycred fic ...`.
pub fn run(cmd: &Cmd, ctx: &Ctx) -> Result<u8> {
    match cmd {
        Cmd::Mint(a) => mint(a, ctx),
        Cmd::Check(a) => super::fic_check::run(a, ctx),
    }
}

/// `NAME=VALUE` claims, the value as JSON when it parses, else as a string.
fn parse_claims(given: &[String]) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    for c in given {
        let (k, v) = c.split_once('=').filter(|(k, _)| !k.trim().is_empty()).ok_or_else(|| {
            Error::input(format!("--claim '{c}': expected NAME=VALUE"))
                .with_hint("for example --claim environment=Production or --claim 'groups=[\"a\",\"b\"]'")
        })?;
        let value = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_string()));
        out.insert(k.trim().to_string(), value);
    }
    Ok(out)
}

fn mint(a: &MintArgs, ctx: &Ctx) -> Result<u8> {
    let claims = parse_claims(&a.claims)?;
    if let Some(w) = keycred::fic::subjects::case_warning(&a.subject) {
        eprintln!("keycred: note: {w}");
    }
    let (t, rt) = a.http.transport()?;
    let request = json!({"subject": a.subject, "audience": a.audience, "lifetime": a.lifetime, "claims": claims});
    let token = rt.block_on(issuer::mint(&t, &a.issuer, &request)).map_err(|e| {
        if e.to_string().contains("not on a loopback host") {
            e.context("--issuer")
        } else {
            e
        }
    })?;
    if ctx.json() {
        let decoded = keycred::jwt::dangerous::decode(&token).ok().map(|d| Value::Object(d.claims));
        ctx.print_json(&json!({"token": token, "issuer": a.issuer, "claims": decoded}));
    } else {
        out_line(&token);
    }
    Ok(exit::OK)
}
