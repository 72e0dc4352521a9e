//! `keycred decode`: show a JWT's header and claims, with times also as RFC 3339, clearly marked
//! as not verified. Also the home of the claim display and role check `keycred token` reuses.

use super::output::{out_line, printable};
use super::Ctx;
use crate::jwt::{dangerous, Decoded};
use crate::{dates, error::exit, Error, Result};
use serde_json::{Map, Value};

/// Claims that hold NumericDate values.
const TIME_CLAIMS: &[&str] = &["exp", "nbf", "iat", "auth_time"];
/// The claims that matter for an app credential, in display order.
pub(super) const KEY_CLAIMS: &[&str] = &["aud", "iss", "appid", "azp", "tid", "roles", "scp", "idtyp"];

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
    check_roles(&d, &a.expect_role)?;
    Ok(exit::OK)
}

/// RFC 3339 renderings of the time claims.
pub(super) fn times(claims: &Map<String, Value>) -> Map<String, Value> {
    TIME_CLAIMS
        .iter()
        .filter_map(|k| {
            let secs = display_secs(claims.get(*k)?)?;
            Some((k.to_string(), Value::String(rfc3339(secs as i64)?)))
        })
        .collect()
}

/// The seconds a time claim shows, for display only: a NumericDate, or (other issuers write them)
/// a number written as a string; never NaN or an infinity. Verification is stricter
/// ([`crate::jwt::Decoded::time_claim`]).
fn display_secs(v: &Value) -> Option<f64> {
    crate::jwt::numeric_date(v).or_else(|| {
        let f: f64 = v.as_str()?.trim().parse().ok()?;
        (f.is_finite() && f.abs() < i64::MAX as f64).then_some(f)
    })
}

/// A Unix time as RFC 3339 UTC.
pub(super) fn rfc3339(secs: i64) -> Option<String> {
    time::OffsetDateTime::from_unix_timestamp(secs).ok().map(dates::format)
}

/// A claim value for display: strings bare, arrays comma-separated, times with RFC 3339.
pub(super) fn display_value(name: &str, v: &Value) -> String {
    let base = match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => a
            .iter()
            .map(|x| x.as_str().map(str::to_string).unwrap_or_else(|| x.to_string()))
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    };
    if TIME_CLAIMS.contains(&name) {
        if let Some(t) = display_secs(v).and_then(|s| rfc3339(s as i64)) {
            return format!("{base} ({t})");
        }
    }
    base
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

/// The key claims as `name: value` pairs (absent ones left out).
pub(super) fn key_claim_pairs(d: &Decoded) -> Vec<(&'static str, String)> {
    KEY_CLAIMS.iter().filter_map(|k| d.claims.get(*k).map(|v| (*k, display_value(k, v)))).collect()
}

/// Exit 4 naming the first expected role the token lacks.
pub(super) fn check_roles(d: &Decoded, expected: &[String]) -> Result<()> {
    let roles = d.roles();
    let missing: Vec<&String> = expected.iter().filter(|r| !roles.contains(r)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
    let have = if roles.is_empty() { "none".to_string() } else { roles.join(", ") };
    Err(Error::check(format!(
        "the token lacks the role{} {} (roles: {have})",
        if names.len() > 1 { "s" } else { "" },
        names.join(", ")
    ))
    .with_hint(
        "grant the application permission on the API and have an administrator consent, then request a new token",
    ))
}
