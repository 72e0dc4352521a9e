//! Presentation of JWT claims, shared by `decode` and `token`: the claims that matter for an app
//! credential, and times shown also as RFC 3339.

use keycred::dates;
use keycred::jwt::Decoded;
use serde_json::{Map, Value};

/// Claims that hold NumericDate values.
const TIME_CLAIMS: &[&str] = &["exp", "nbf", "iat", "auth_time"];
/// The claims that matter for an app credential, in display order.
const KEY_CLAIMS: &[&str] = &["aud", "iss", "appid", "azp", "tid", "roles", "scp", "idtyp"];

/// RFC 3339 renderings of the time claims.
pub fn times(claims: &Map<String, Value>) -> Map<String, Value> {
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
/// ([`keycred::jwt::Decoded::time_claim`]).
fn display_secs(v: &Value) -> Option<f64> {
    keycred::jwt::numeric_date(v).or_else(|| {
        let f: f64 = v.as_str()?.trim().parse().ok()?;
        (f.is_finite() && f.abs() < i64::MAX as f64).then_some(f)
    })
}

/// A Unix time as RFC 3339 UTC.
pub fn rfc3339(secs: i64) -> Option<String> {
    time::OffsetDateTime::from_unix_timestamp(secs).ok().map(dates::format)
}

/// A claim value for display: strings bare, arrays comma-separated, times with RFC 3339.
pub fn display_value(name: &str, v: &Value) -> String {
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

/// The key claims as `name: value` pairs (absent ones left out).
pub fn key_claim_pairs(d: &Decoded) -> Vec<(&'static str, String)> {
    KEY_CLAIMS.iter().filter_map(|k| d.claims.get(*k).map(|v| (*k, display_value(k, v)))).collect()
}
