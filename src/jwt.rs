//! JSON Web Tokens as keycred uses them: client assertions (RFC 7523) signed with a certificate's
//! key, access tokens issued by the emulator, and unverified decoding for display.
//!
//! Signing and verification go through aws-lc-rs; this module only does the JOSE plumbing
//! (base64url segments, headers, claims). Decoding without verification lives in [`dangerous`] so
//! that a caller cannot mistake it for a check.

use crate::cert::{LoadedCredential, SignatureAlg, Signer};
use crate::secret::SecretString;
use crate::thumbprint::b64url;
use crate::wording::Action;
use crate::{Error, Result};
use serde_json::{json, Map, Value};

/// Default lifetime of a client assertion, seconds (Microsoft's libraries use 5 to 10 minutes).
pub const DEFAULT_ASSERTION_LIFETIME: u64 = 600;
/// Longest lifetime keycred signs.
pub const MAX_ASSERTION_LIFETIME: u64 = 3600;

/// WindowsDefenderATP's app id and identifier URIs (`templates/resources.json`, from Microsoft's
/// documents). The threat-protection setup requests tokens for two of these names besides
/// Microsoft Threat Protection's own, so a role missing from their tokens is one of
/// WindowsDefenderATP's application permissions, not Threat Protection's.
const WINDOWS_DEFENDER_ATP: [&str; 4] = [
    crate::ids::well_known::WINDOWS_DEFENDER_ATP,
    "https://api.securitycenter.windows.com",
    "https://securitycenter.onmicrosoft.com/windowsatpservice",
    "https://api.securitycenter.microsoft.com",
];

/// What to put in a client assertion.
#[derive(Clone, Debug)]
pub struct AssertionParams {
    /// Application (client) id: `iss` and `sub`.
    pub client_id: String,
    /// The token endpoint URL the assertion will be posted to: `aud`.
    pub audience: String,
    /// RS256 (header `x5t`) or PS256 (header `x5t#S256`).
    pub alg: SignatureAlg,
    /// Add `x5c` with the certificate chain (subject name / issuer authentication).
    pub x5c: bool,
    /// Seconds until `exp`.
    pub lifetime: u64,
}

/// Current time as a NumericDate.
pub fn now_secs() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Signs a JWT with `header` (to which `alg` is added) and `claims`.
pub fn sign(key: &dyn Signer, alg: SignatureAlg, mut header: Map<String, Value>, claims: &Value) -> Result<String> {
    header.insert("alg".into(), Value::String(alg.jose().into()));
    let h = serde_json::to_vec(&Value::Object(header))
        .map_err(|e| Error::internal("cannot encode the JWT header").caused_by(e))?;
    let c = serde_json::to_vec(claims).map_err(|e| Error::internal("cannot encode the JWT claims").caused_by(e))?;
    let signing_input = format!("{}.{}", b64url(&h), b64url(&c));
    let sig = key.sign(alg, signing_input.as_bytes())?;
    Ok(format!("{signing_input}.{}", b64url(&sig)))
}

/// Refuses an assertion lifetime (seconds) outside 1..=[`MAX_ASSERTION_LIFETIME`]; the message
/// leaves naming the value to the caller.
pub fn check_lifetime(secs: u64) -> Result<()> {
    if secs == 0 || secs > MAX_ASSERTION_LIFETIME {
        return Err(Error::input(format!("must be between 1 and {MAX_ASSERTION_LIFETIME} seconds"))
            .with_hint("Entra's own libraries use 600 seconds"));
    }
    Ok(())
}

/// Builds and signs a client assertion for `cred`.
pub fn client_assertion(cred: &LoadedCredential, p: &AssertionParams) -> Result<SecretString> {
    check_lifetime(p.lifetime).map_err(|e| e.context(format!("assertion lifetime {}", p.lifetime)))?;
    let mut header = Map::new();
    header.insert("typ".into(), json!("JWT"));
    match p.alg {
        SignatureAlg::Rs256 => header.insert("x5t".into(), json!(cred.cert.x5t())),
        SignatureAlg::Ps256 => header.insert("x5t#S256".into(), json!(cred.cert.x5t_s256())),
    };
    if p.x5c {
        let chain: Vec<String> = std::iter::once(&cred.cert).chain(cred.chain.iter()).map(|c| c.value_b64()).collect();
        header.insert("x5c".into(), json!(chain));
    }
    let now = now_secs();
    let claims = json!({
        "aud": p.audience,
        "iss": p.client_id,
        "sub": p.client_id,
        "jti": uuid::Uuid::new_v4().to_string(),
        "nbf": now,
        "iat": now,
        "exp": now + p.lifetime as i64,
    });
    Ok(SecretString::new(sign(&*cred.key, p.alg, header, &claims)?))
}

/// A NumericDate (RFC 7519 section 2): a JSON number of seconds since the epoch, fractions
/// allowed (MSAL sends float `exp`/`iat`). Strings are not NumericDates (`"NaN"` and `"inf"`
/// parse as floats and then pass or fail every comparison), nor are values beyond `i64`
/// seconds.
pub fn numeric_date(v: &Value) -> Option<f64> {
    let n = v.as_number()?;
    if let Some(i) = n.as_i64() {
        return Some(i as f64);
    }
    // An unsigned value beyond i64, or a float; serde_json never yields NaN or infinities, but
    // the bound is checked on the float anyway.
    let f = n.as_f64()?;
    (f.is_finite() && f.abs() < i64::MAX as f64).then_some(f)
}

/// A JWT split into its parts.
#[derive(Clone)]
pub struct Decoded {
    /// Header JSON.
    pub header: Map<String, Value>,
    /// Claims JSON.
    pub claims: Map<String, Value>,
    /// `header.payload`, the signed bytes.
    pub signing_input: String,
    /// Raw signature.
    pub signature: Vec<u8>,
}

impl std::fmt::Debug for Decoded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoded").field("header", &self.header).field("claims", &"[redacted]").finish()
    }
}

impl Decoded {
    /// The header's `alg`.
    pub fn alg(&self) -> Option<&str> {
        self.header.get("alg").and_then(Value::as_str)
    }
    /// A string claim.
    pub fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }
    /// A NumericDate claim when present and well-formed (see [`numeric_date`]).
    pub fn claim_time(&self, name: &str) -> Option<f64> {
        self.claims.get(name).and_then(numeric_date)
    }
    /// A NumericDate claim: `Ok(None)` when absent (or `null`), the seconds when it is one, and
    /// an error naming the claim when it is present but not a NumericDate. Verifiers use this so
    /// that a malformed `exp` or `nbf` is refused rather than skipped.
    pub fn time_claim(&self, name: &str) -> std::result::Result<Option<f64>, String> {
        match self.claims.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => numeric_date(v)
                .map(Some)
                .ok_or_else(|| format!("The '{name}' claim is not a NumericDate (a JSON number of seconds).")),
        }
    }
    /// `roles` as strings (absent = empty).
    pub fn roles(&self) -> Vec<String> {
        match self.claims.get("roles") {
            Some(Value::Array(a)) => a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
            // Entra always sends an array; other issuers send a single role as a plain string.
            Some(Value::String(r)) => vec![r.clone()],
            _ => Vec::new(),
        }
    }
    /// The roles of `expected` the token lacks, in the order given.
    pub fn missing_roles<'a>(&self, expected: &'a [String]) -> Vec<&'a str> {
        let roles = self.roles();
        expected.iter().filter(|r| !roles.contains(r)).map(String::as_str).collect()
    }
    /// Refuses (exit 4) a token lacking any role of `expected`, naming the missing ones and the
    /// roles it has.
    pub fn require_roles(&self, expected: &[String]) -> Result<()> {
        let missing = self.missing_roles(expected);
        if missing.is_empty() {
            return Ok(());
        }
        let roles = self.roles();
        let have = if roles.is_empty() { "none".to_string() } else { roles.join(", ") };
        Err(Error::check(format!(
            "the token lacks the role{} {} (roles: {have})",
            if missing.len() > 1 { "s" } else { "" },
            missing.join(", ")
        ))
        .with_hint(self.roles_hint(&missing)))
    }
    /// How to get the `missing` roles, for the API the token is for (`aud`).
    fn roles_hint(&self, missing: &[&str]) -> String {
        let aud = self.claim_str("aud").unwrap_or_default().trim_end_matches('/');
        if WINDOWS_DEFENDER_ATP.iter().any(|n| n.eq_ignore_ascii_case(aud)) {
            // The roles that were expected, so the request asks for exactly what is missing.
            let ask = Action::AddPermission {
                api: Some("defender-atp".into()),
                roles: missing.iter().map(|r| r.to_string()).collect(),
            };
            return format!(
                "{aud} is WindowsDefenderATP's (app id {}), not Microsoft Threat Protection's, although the threat \
                 protection setup asks tokens for it: ask for WindowsDefenderATP's application permissions ({ask}), \
                 have an administrator consent, then request a new token",
                WINDOWS_DEFENDER_ATP[0]
            );
        }
        format!(
            "ask for the application permission ({}, or {} on a registered app; {} lists the names), have an \
             administrator consent ({}), then request a new token",
            Action::AddPermission { api: None, roles: Vec::new() },
            Action::AddGraphPermission,
            Action::ListPermissions { api: None },
            Action::ConsentUrl
        )
    }
    /// Verifies the signature with a PKCS#1 RSAPublicKey DER, for `alg`.
    pub fn verify(&self, alg: SignatureAlg, rsa_public_key: &[u8]) -> bool {
        alg.verify(rsa_public_key, self.signing_input.as_bytes(), &self.signature)
    }
}

/// Decoding without verification. Nothing decoded here is trustworthy until
/// [`Decoded::verify`] says so.
pub mod dangerous {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    /// Largest token keycred decodes (Entra's own limit on assertions is far below this).
    pub const MAX_TOKEN_LEN: usize = 16 * 1024;

    /// Splits and decodes a compact JWS. Refuses oversized tokens, bad base64, non-object JSON
    /// and duplicated member names (which parsers resolve differently, a known attack).
    pub fn decode(token: &str) -> Result<Decoded> {
        let token = token.trim();
        if token.len() > MAX_TOKEN_LEN {
            return Err(Error::input(format!("the JWT is {} bytes, over the {MAX_TOKEN_LEN}-byte limit", token.len())));
        }
        let parts: Vec<&str> = token.split('.').collect();
        if parts.len() != 3 {
            return Err(Error::input(format!("not a JWT: expected 3 dot-separated segments, found {}", parts.len()))
                .with_hint("pass the whole token (header.payload.signature)"));
        }
        let seg = |i: usize, name: &str| -> Result<Vec<u8>> {
            URL_SAFE_NO_PAD
                .decode(parts[i].trim_end_matches('='))
                .map_err(|_| Error::input(format!("not a JWT: the {name} segment is not base64url")))
        };
        let header = object(&seg(0, "header")?, "header")?;
        let claims = object(&seg(1, "payload")?, "payload")?;
        let signature = seg(2, "signature")?;
        Ok(Decoded { header, claims, signing_input: format!("{}.{}", parts[0], parts[1]), signature })
    }

    fn object(bytes: &[u8], name: &str) -> Result<Map<String, Value>> {
        let v: Value = serde_json::from_slice(bytes)
            .map_err(|e| Error::input(format!("not a JWT: the {name} is not JSON")).caused_by(e))?;
        let Value::Object(map) = v else {
            return Err(Error::input(format!("not a JWT: the {name} is not a JSON object")));
        };
        if has_duplicate_members(bytes) {
            return Err(Error::input(format!("not a JWT: the {name} repeats a member name")));
        }
        Ok(map)
    }

    /// Detects repeated member names at any depth (serde_json silently keeps the last one).
    fn has_duplicate_members(bytes: &[u8]) -> bool {
        use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
        struct Check;
        impl<'de> Visitor<'de> for Check {
            type Value = bool;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> std::result::Result<bool, A::Error> {
                let mut seen = std::collections::HashSet::new();
                let mut dup = false;
                while let Some(k) = m.next_key::<String>()? {
                    dup |= !seen.insert(k);
                    dup |= m.next_value_seed(CheckSeed)?;
                }
                Ok(dup)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> std::result::Result<bool, A::Error> {
                let mut dup = false;
                while let Some(d) = s.next_element_seed(CheckSeed)? {
                    dup |= d;
                }
                Ok(dup)
            }
            fn visit_bool<E>(self, _: bool) -> std::result::Result<bool, E> {
                Ok(false)
            }
            fn visit_i64<E>(self, _: i64) -> std::result::Result<bool, E> {
                Ok(false)
            }
            fn visit_u64<E>(self, _: u64) -> std::result::Result<bool, E> {
                Ok(false)
            }
            fn visit_f64<E>(self, _: f64) -> std::result::Result<bool, E> {
                Ok(false)
            }
            fn visit_str<E>(self, _: &str) -> std::result::Result<bool, E> {
                Ok(false)
            }
            fn visit_unit<E>(self) -> std::result::Result<bool, E> {
                Ok(false)
            }
        }
        struct CheckSeed;
        impl<'de> serde::de::DeserializeSeed<'de> for CheckSeed {
            type Value = bool;
            fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<bool, D::Error> {
                d.deserialize_any(Check)
            }
        }
        let mut de = serde_json::Deserializer::from_slice(bytes);
        de.deserialize_any(Check).unwrap_or(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_refuses_malformed_tokens() {
        assert!(dangerous::decode("a.b").is_err());
        assert!(dangerous::decode("!!!.e30.").is_err());
        // {"a":1,"a":2}
        let dup = b64url(br#"{"a":1,"a":2}"#);
        assert!(dangerous::decode(&format!("{dup}.e30.")).unwrap_err().to_string().contains("repeats"));
        let ok =
            dangerous::decode(&format!("{}.{}.", b64url(br#"{"alg":"none"}"#), b64url(br#"{"exp":1.5}"#))).unwrap();
        assert_eq!(ok.alg(), Some("none"));
        assert_eq!(ok.claim_time("exp"), Some(1.5));
        assert_eq!(ok.time_claim("nbf"), Ok(None));
        assert!(dangerous::decode(&"a".repeat(20_000)).is_err());
    }

    /// Issue 14, point 1: `"NaN"` (a string) passed every time check.
    #[test]
    fn numeric_dates_are_json_numbers_within_i64_seconds() {
        for good in [json!(0), json!(1_700_000_000), json!(1.5), json!(-5), json!(9_000_000_000_000_000_000i64)] {
            assert!(numeric_date(&good).is_some(), "{good}");
        }
        let huge: Value = serde_json::from_str("1e300").unwrap();
        for bad in [json!("NaN"), json!("inf"), json!("1700000000"), json!(true), json!([1]), json!(u64::MAX), huge] {
            assert_eq!(numeric_date(&bad), None, "{bad}");
        }
        let d = dangerous::decode(&format!("{}.{}.", b64url(b"{}"), b64url(br#"{"exp":"NaN"}"#))).unwrap();
        assert_eq!(d.claim_time("exp"), None);
        assert!(d.time_claim("exp").unwrap_err().contains("'exp'"));
    }
}
