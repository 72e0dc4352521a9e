//! What a resource checks in an Entra token besides its signature ([`crate::jwks`]): that the
//! token is within its lifetime, was issued by the expected tenant, and is meant for the
//! expected audience.
//!
//! Entra signs the tokens of every tenant with the same keys (the JWKS under `common` is the
//! tenant's), so a signature that verifies says only that Entra issued the token: `iss` and
//! `tid` say for which tenant, and Microsoft's access-token documentation tells APIs to check
//! both. Microsoft's own validators (Microsoft.IdentityModel's
//! `TokenValidationParameters.DefaultClockSkew`) allow 5 minutes of clock skew on `exp` and
//! `nbf`; [`CLOCK_SKEW_SECS`] is the same.

use crate::jwt::Decoded;
use crate::wording::Input;
use crate::{Error, Result};
use serde_json::Value;

/// Seconds of clock skew allowed on `exp` and `nbf`, as Microsoft.IdentityModel allows.
pub const CLOCK_SKEW_SECS: i64 = 300;

/// What the token must say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    /// The issuers accepted, compared exactly: the `issuer` of the tenant's v1 and v2 OpenID
    /// configurations (a resource may be given either version of token).
    pub issuers: Vec<String>,
    /// The tenant id (GUID) `tid` must hold.
    pub tenant_id: String,
    /// The audiences accepted (an API's app id and its App ID URIs); empty: not checked.
    pub audiences: Vec<String>,
}

/// What the checks found, to show.
#[derive(Clone, Debug, PartialEq)]
pub struct Checked {
    /// `iss`.
    pub issuer: String,
    /// `tid`.
    pub tenant_id: String,
    /// `aud`, when `--audience` asked for it to be checked.
    pub audience: Option<String>,
    /// `exp`, seconds since the epoch.
    pub expires: f64,
}

/// Checks, in this order, the token's lifetime (`exp` required, `nbf` when present, each with
/// [`CLOCK_SKEW_SECS`]), its issuer, its tenant and, when asked, its audience. The first check
/// that fails is the error (exit 4), naming the claim, its value and what was expected.
pub fn claims(token: &Decoded, want: &Expected, now: f64) -> Result<Checked> {
    let expires = lifetime(token, now)?;
    let issuer = token.claim_str("iss").unwrap_or_default();
    if !want.issuers.iter().any(|i| i == issuer) {
        return Err(Error::check(format!(
            "the token's issuer (iss) is {}, not the tenant's ({}): it was not issued by tenant {}",
            shown(issuer),
            want.issuers.join(" or "),
            want.tenant_id
        ))
        .with_hint(format!("Entra signs every tenant's tokens with the same keys: only iss and tid say whose token it is; give the tenant that should have issued it as {}", Input::Tenant)));
    }
    let tid = token.claim_str("tid").unwrap_or_default();
    if !tid.eq_ignore_ascii_case(&want.tenant_id) {
        return Err(Error::check(format!(
            "the token's tenant (tid) is {}, not {}: it was issued for another tenant",
            shown(tid),
            want.tenant_id
        ))
        .with_hint(format!("give the tenant that should have issued the token as {}", Input::Tenant)));
    }
    let audience = match want.audiences.is_empty() {
        true => None,
        false => Some(audience(token, &want.audiences)?),
    };
    Ok(Checked { issuer: issuer.to_string(), tenant_id: tid.to_string(), audience, expires })
}

/// `exp` (required) and `nbf` (when present) against `now`, with the allowed skew; returns `exp`.
fn lifetime(token: &Decoded, now: f64) -> Result<f64> {
    let time = |name: &str| token.time_claim(name).map_err(Error::check);
    let skew = CLOCK_SKEW_SECS as f64;
    let exp = time("exp")?.ok_or_else(|| {
        Error::check("the token has no expiry (exp claim): Entra's tokens always have one; do not trust it")
    })?;
    if now > exp + skew {
        return Err(Error::check(format!(
            "the token expired at {} ({} s ago; {CLOCK_SKEW_SECS} s of clock skew are allowed)",
            instant(exp),
            (now - exp) as i64
        ))
        .with_hint("request a new token; if it was just issued, check this machine's clock"));
    }
    if let Some(nbf) = time("nbf")? {
        if now + skew < nbf {
            return Err(Error::check(format!(
                "the token is not valid before {} (nbf, {} s from now; {CLOCK_SKEW_SECS} s of clock skew are allowed)",
                instant(nbf),
                (nbf - now) as i64
            ))
            .with_hint("check this machine's clock (for example `timedatectl`)"));
        }
    }
    Ok(exp)
}

/// `aud` against the audiences accepted; returns it.
fn audience(token: &Decoded, accepted: &[String]) -> Result<String> {
    // Entra writes one string; a JSON array (RFC 7519 allows one) passes when any member does.
    let auds: Vec<&str> = match token.claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    match auds.iter().find(|a| accepted.iter().any(|w| w == *a)) {
        Some(a) => Ok(a.to_string()),
        None => Err(Error::check(format!(
            "the token's audience (aud) is {}, not {}: it is meant for another API",
            if auds.is_empty() { "missing".to_string() } else { auds.join(", ") },
            accepted.join(" or ")
        ))
        .with_hint(format!(
            "request the token for the API that checks it ({}), or give the audience it was requested for",
            Input::Target
        ))),
    }
}

/// A claim's value for a message: quoted, or "missing".
fn shown(v: &str) -> String {
    if v.is_empty() {
        "missing".to_string()
    } else {
        format!("{v:?}")
    }
}

/// A NumericDate as RFC 3339, or the number when out of range.
fn instant(secs: f64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs as i64)
        .map(crate::dates::format)
        .unwrap_or_else(|_| secs.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::thumbprint::b64url;
    use serde_json::json;

    const TID: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    const NOW: f64 = 1_700_000_000.0;

    fn token(claims: Value) -> Decoded {
        crate::jwt::dangerous::decode(&format!(
            "{}.{}.",
            b64url(br#"{"alg":"RS256"}"#),
            b64url(claims.to_string().as_bytes())
        ))
        .unwrap()
    }

    fn want(audiences: &[&str]) -> Expected {
        Expected {
            issuers: vec![
                format!("https://sts.windows.net/{TID}/"),
                format!("https://login.microsoftonline.com/{TID}/v2.0"),
            ],
            tenant_id: TID.into(),
            audiences: audiences.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn good() -> Value {
        json!({"iss": format!("https://sts.windows.net/{TID}/"), "tid": TID, "aud": "api://x",
               "nbf": NOW - 300.0, "exp": NOW + 3300.0})
    }

    fn refusal(claims: Value, audiences: &[&str]) -> String {
        let e = super::claims(&token(claims), &want(audiences), NOW).unwrap_err();
        assert_eq!(e.exit_code(), 4, "{e}");
        e.message().to_string()
    }

    #[test]
    fn a_token_of_the_tenant_within_its_lifetime_passes() {
        let c = claims(&token(good()), &want(&["api://x"]), NOW).unwrap();
        assert_eq!(c.audience.as_deref(), Some("api://x"));
        assert_eq!(c.tenant_id, TID);
        // The skew both ways, to the second.
        let mut edge = good();
        edge["exp"] = json!(NOW - 300.0);
        edge["nbf"] = json!(NOW + 300.0);
        assert!(claims(&token(edge), &want(&[]), NOW).is_ok());
    }

    #[test]
    fn each_failed_check_is_named() {
        let with = |k: &str, v: Value| {
            let mut c = good();
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v;
            }
            c
        };
        assert!(refusal(with("exp", json!(NOW - 301.0)), &[]).contains("expired at 2023-11-14T22:08:19Z (301 s ago"));
        assert!(refusal(with("exp", Value::Null), &[]).contains("no expiry (exp claim)"));
        assert!(refusal(with("exp", json!("1700000000")), &[]).contains("'exp' claim is not a NumericDate"));
        assert!(refusal(with("nbf", json!(NOW + 301.0)), &[]).contains("not valid before"));
        let other = "11111111-2222-3333-4444-555555555555";
        let m = refusal(with("iss", json!(format!("https://sts.windows.net/{other}/"))), &[]);
        assert!(m.contains("issuer (iss)") && m.contains(other), "{m}");
        // An issuer of the tenant with another tid (a forged or mixed token): the tid check.
        assert!(refusal(with("tid", json!(other)), &[]).contains(&format!("tenant (tid) is \"{other}\"")));
        assert!(refusal(with("tid", Value::Null), &[]).contains("tenant (tid) is missing"));
        let m = refusal(good(), &["api://y", "22222222-0000-0000-0000-000000000000"]);
        assert!(m.contains("audience (aud) is api://x, not api://y or 2222"), "{m}");
    }
}
