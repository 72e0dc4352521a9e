//! `keycred decode`: show a JWT's header and claims, with times also as RFC 3339, clearly marked
//! as not verified.

use super::claims::{display_value, times};
use super::output::{out_line, printable};
use super::Ctx;
use keycred::jwt::dangerous;
use keycred::{error::exit, Result};
use serde_json::{Map, Value};

/// Decodes a JWT without verifying it.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The token, or `-` to read it from stdin
    #[arg(value_name = "TOKEN|-")]
    pub token: String,
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
    if ctx.json() {
        ctx.print_json(&serde_json::json!({
            "verified": false,
            "header": d.header,
            "claims": d.claims,
            "times": times(&d.claims),
        }));
    } else {
        out_line("NOT VERIFIED: the signature was not checked; do not trust these values");
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
