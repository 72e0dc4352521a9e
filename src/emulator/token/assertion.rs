//! The client assertion's checks: the key it names, its signature, `crit`, then its claims, in
//! the order that leaks least (see the module above).

use super::CLOCK_SKEW;
use crate::cert::SignatureAlg;
use crate::emulator::errors::Refusal;
use crate::jwt::{self, dangerous};
use crate::manifest::KeyCredential;
use crate::thumbprint::{hex_upper, sha256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;
use time::OffsetDateTime;

/// Entra's `Found key 'Start=MM/dd/yyyy HH:mm:ss, End=...'`.
pub(super) fn found_key(c: &KeyCredential) -> String {
    let f = time::macros::format_description!("[month]/[day]/[year] [hour]:[minute]:[second]");
    let start = c.start.or(c.certificate.as_ref().map(|x| x.not_before()));
    let end = c.end.or(c.certificate.as_ref().map(|x| x.not_after()));
    let fmt = |t: Option<OffsetDateTime>| t.and_then(|t| t.format(&f).ok()).unwrap_or_default();
    format!("Start={}, End={}", fmt(start), fmt(end))
}

/// Entra's timestamp style in 700024 messages (`2024-01-31T12:00:00.0000000Z`).
pub(super) fn entra_time(secs: f64) -> String {
    let t = OffsetDateTime::from_unix_timestamp(secs.floor() as i64).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].0000000Z");
    t.format(&f).unwrap_or_default()
}

/// Validates a client assertion for the app whose `keyCredentials` are `creds`, posted to
/// `endpoint`.
pub(in crate::emulator) fn verify_assertion(
    creds: &[KeyCredential],
    assertion: &str,
    client_id: &str,
    endpoint: &str,
    now: OffsetDateTime,
) -> Result<(), Refusal> {
    verify_assertion_at(creds, assertion, client_id, &[endpoint.to_string()], now).map(|_| ())
}

/// Validates a client assertion whose `aud` may be any of `endpoints` (the same endpoint under
/// each of the emulator's own names); returns the registered credential that verified it.
pub(super) fn verify_assertion_at<'a>(
    creds: &'a [KeyCredential],
    assertion: &str,
    client_id: &str,
    endpoints: &[String],
    now: OffsetDateTime,
) -> Result<&'a KeyCredential, Refusal> {
    let d = dangerous::decode(assertion).map_err(|_| Refusal::malformed_jwt(""))?;
    let alg = match d.header.get("alg") {
        Some(Value::String(a)) => a.as_str(),
        _ => return Err(Refusal::malformed_jwt("The token header has no 'alg'.")),
    };
    let alg = SignatureAlg::from_jose(alg).ok_or_else(|| Refusal::unsupported_alg(alg))?;
    // An assertion made for another application is told apart before its key is looked for in
    // this one's: Entra answers 700021, not "the key was not found" (azure-identity's
    // troubleshooting guides, ClientAssertionCredential). Both values come from the caller, so
    // comparing them first tells nothing about what is registered.
    if d.claim_str("iss").is_some_and(|iss| !iss.eq_ignore_ascii_case(client_id)) {
        return Err(Refusal::issuer_not_client());
    }
    let (cred, thumb_hex) = registered_key(creds, &d, client_id, now)?;
    let public = cred.certificate.as_ref().and_then(|c| c.rsa_public_key()).unwrap_or_default();
    if !d.verify(alg, public) {
        return Err(Refusal::bad_signature(&thumb_hex, &found_key(cred)));
    }
    check_critical_header(&d)?;
    check_assertion_claims(&d, client_id, endpoints, now)?;
    Ok(cred)
}

/// RFC 7515 section 4.1.11: a `crit` header lists extensions the recipient must understand, or
/// the JWS is invalid; an empty list is forbidden. Client assertions use none (MSAL and
/// azure-identity send `alg`, `typ`, `x5t`/`x5t#S256`, `kid`, `x5c`), and the emulator
/// implements none (not even RFC 7797's `b64`), so any `crit` makes the assertion malformed:
/// 50027, Entra's code for an assertion that is not a valid JWT. Judged after the signature,
/// as every other part of the token, so a forged token learns nothing from it.
pub(super) fn check_critical_header(d: &jwt::Decoded) -> Result<(), Refusal> {
    let Some(crit) = d.header.get("crit") else { return Ok(()) };
    let why = match crit.as_array() {
        None => "The token header's 'crit' is not an array of header parameter names.".to_string(),
        Some(names) if names.is_empty() => "The token header's 'crit' is an empty list, which RFC 7515 forbids.".into(),
        Some(names) => {
            // Named as JSON, at most a few and each cut short: they are the sender's text.
            let names: Vec<String> = names.iter().take(4).map(|n| n.to_string().chars().take(64).collect()).collect();
            format!("The token header's 'crit' lists extensions this service does not process: {}.", names.join(", "))
        }
    };
    Err(Refusal::malformed_jwt(&why))
}

/// The registered, usable and currently valid key the assertion's `x5t` (or `x5t#S256`) names,
/// with that thumbprint in hex. Key selection by thumbprint only: `kid`, `jku`, `x5u` are ignored
/// and `x5c` never adds a key (subject-name/issuer trust is not emulated), so a certificate must be registered.
pub(super) fn registered_key<'a>(
    creds: &'a [KeyCredential],
    d: &jwt::Decoded,
    client_id: &str,
    now: OffsetDateTime,
) -> Result<(&'a KeyCredential, String), Refusal> {
    let header_str = |n: &str| d.header.get(n).and_then(Value::as_str);
    let (thumb, s256) = match (header_str("x5t"), header_str("x5t#S256")) {
        (Some(t), _) => (t, false),
        (None, Some(t)) => (t, true),
        (None, None) => return Err(Refusal::no_thumbprint()),
    };
    let thumb = URL_SAFE_NO_PAD.decode(thumb.trim_end_matches('=')).map_err(|_| Refusal::no_thumbprint())?;
    let matches = |c: &KeyCredential| {
        c.certificate.as_ref().is_some_and(|x| {
            if s256 {
                sha256(x.der())[..] == thumb[..]
            } else {
                x.sha1()[..] == thumb[..]
            }
        })
    };
    let thumb_hex = hex_upper(&thumb);
    // One rule of usability (`KeyCredential::is_usable`, what the lock-out guard and `check`
    // use): an entry Entra would not verify with (usage `Sign`, type `Symmetric`, a key no one
    // can sign with) is as good as absent.
    let candidates: Vec<&KeyCredential> = creds.iter().filter(|c| c.is_usable() && matches(c)).collect();
    if candidates.is_empty() {
        return Err(Refusal::key_not_found(&thumb_hex, client_id));
    }
    let Some(cred) = candidates.iter().find(|c| c.is_valid_at(now)) else {
        let c = candidates[0];
        let end = c.end.or(c.certificate.as_ref().map(|x| x.not_after()));
        let expired = end.is_some_and(|e| now > e);
        return Err(Refusal::key_out_of_dates(&thumb_hex, &found_key(c), expired));
    };
    Ok((*cred, thumb_hex))
}

/// Checks the assertion's audience (one of `endpoints`), issuer and subject (both the client)
/// and its time claims, with Entra's clock skew.
pub(super) fn check_assertion_claims(
    d: &jwt::Decoded,
    client_id: &str,
    endpoints: &[String],
    now: OffsetDateTime,
) -> Result<(), Refusal> {
    // RFC 7519 allows `aud` as a string or an array; a one-element array names one audience and
    // is judged as that string. Only a longer array is "more than one audience value".
    let aud = match d.claims.get("aud") {
        Some(Value::Array(a)) if a.len() > 1 => return Err(Refusal::multiple_audiences()),
        Some(Value::Array(a)) => a.first(),
        other => other,
    };
    match aud {
        Some(Value::String(a))
            if endpoints.iter().any(|e| a.trim_end_matches('/').eq_ignore_ascii_case(e.trim_end_matches('/'))) => {}
        _ => return Err(Refusal::bad_audience()),
    }
    let iss = d.claim_str("iss").unwrap_or_default();
    if d.claim_str("sub") != Some(iss) {
        return Err(Refusal::subject_mismatch(client_id));
    }
    if !iss.eq_ignore_ascii_case(client_id) {
        return Err(Refusal::issuer_not_client());
    }
    // A time claim that is present but not a NumericDate (a string such as "NaN", a value
    // beyond i64 seconds) makes the token malformed: skipping it would make it never expire.
    let time = |name: &str| d.time_claim(name).map_err(|why| Refusal::malformed_jwt(&why));
    let exp = time("exp")?.ok_or_else(|| Refusal::malformed_jwt("The token has no valid 'exp' claim."))?;
    let nbf = time("nbf")?;
    time("iat")?;
    let now_s = now.unix_timestamp() as f64;
    if exp + (CLOCK_SKEW as f64) < now_s || nbf.is_some_and(|n| n - (CLOCK_SKEW as f64) > now_s) {
        return Err(Refusal::outside_time_range(
            &entra_time(now_s),
            &entra_time(nbf.unwrap_or(now_s)),
            &entra_time(exp),
        ));
    }
    Ok(())
}
