//! Whether Entra accepts an external token for an application, and the AADSTS code it answers when
//! it does not: the one matching logic behind the emulator's token endpoint and the toolkit's
//! check of a token against an application's credentials.
//!
//! The order follows what Entra needs to know at each step, and leaks the least: the issuer picks
//! the credentials (and where the keys are), the issuer's keys then verify the signature, and only
//! a genuine token has its dates, subject and audience judged. Codes and texts, from public
//! threads (each quoted as Entra sent it):
//!
//! | case | code | source |
//! |---|---|---|
//! | no credential has the token's `iss` | 700211 | Azure/azure-workload-identity 1200, 1350 |
//! | the issuer's discovery or keys cannot be fetched | 90061 (also seen as 50166, same text) | Azure/azure-workload-identity 605; microsoft/azure-pipelines-tasks 19831 |
//! | the token's key is not in the issuer's JWKS | 7000272 | Azure/azure-workload-identity 1232 |
//! | the signature does not verify | 900384 (Entra's JWT signature failure; not seen for federated tokens in particular) | MicrosoftDocs/azure-docs 35448 |
//! | `exp`/`nbf` outside the time range (5 minutes' skew) | 700024 | Azure/login 180 |
//! | no credential of that issuer has the `sub` | 700213 | Azure/azure-workload-identity 1200; dotnet/maui 31978 |
//! | the `sub` matches one only ignoring letter case | 7002138 | Azure/login 515, 517 |
//! | issuer and subject match, the `aud` does not | 700212 | public code quoting Entra's answer |

use super::FederatedIdentityCredential;
use crate::jwt::{dangerous, Decoded};
use serde_json::Value;

/// Entra's allowed clock skew on `exp` and `nbf`, seconds.
pub const CLOCK_SKEW: i64 = 300;
const WIF_DOC: &str = "https://learn.microsoft.com/entra/workload-id/workload-identity-federation";
const CASE_CHANGE_DOC: &str =
    "https://learn.microsoft.com/en-us/entra/identity-platform/reference-breaking-changes#august-2024";
const CERT_DOC: &str = "https://learn.microsoft.com/entra/identity-platform/certificate-credentials";

/// Why Entra refuses an external token.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refused {
    /// Not a JWT, or its claims are not what every token has (50027).
    Malformed(String),
    /// No credential of the application names the token's issuer (700211).
    UnknownIssuer {
        /// The token's `iss`.
        issuer: String,
    },
    /// The issuer's discovery document or key set could not be fetched (90061).
    IssuerUnreachable {
        /// The issuer.
        issuer: String,
        /// What failed, for the toolkit's explanation (Entra says nothing more).
        detail: String,
    },
    /// The key the token names is not in the issuer's key set (7000272).
    KeyNotFound {
        /// The token's `kid` (else `x5t`).
        kid: String,
        /// The issuer.
        issuer: String,
    },
    /// The signature does not verify with the issuer's key (900384).
    BadSignature {
        /// The key used.
        kid: String,
    },
    /// `exp` past or `nbf` to come, beyond the skew (700024).
    OutsideTimeRange {
        /// Now, `nbf` (or now) and `exp`, in Entra's format.
        now: String,
        /// `nbf`.
        nbf: String,
        /// `exp`.
        exp: String,
    },
    /// No credential of the issuer has the token's subject (700213).
    UnknownSubject {
        /// The token's `sub`.
        subject: String,
    },
    /// A credential's subject matches the token's only ignoring letter case (7002138).
    SubjectCase {
        /// The token's `sub`.
        subject: String,
        /// The credential whose subject differs in case.
        credential: String,
    },
    /// Issuer and subject match, the audience does not (700212).
    UnknownAudience {
        /// The token's `aud`.
        audience: String,
        /// The credential that matched issuer and subject.
        credential: String,
    },
}

impl Refused {
    /// The AADSTS code.
    pub fn code(&self) -> u32 {
        match self {
            Refused::Malformed(_) => 50027,
            Refused::UnknownIssuer { .. } => 700211,
            Refused::IssuerUnreachable { .. } => 90061,
            Refused::KeyNotFound { .. } => 7000272,
            Refused::BadSignature { .. } => 900384,
            Refused::OutsideTimeRange { .. } => 700024,
            Refused::UnknownSubject { .. } => 700213,
            Refused::SubjectCase { .. } => 7002138,
            Refused::UnknownAudience { .. } => 700212,
        }
    }

    /// The OAuth `error` value Entra sends with it.
    pub fn error(&self) -> &'static str {
        match self {
            Refused::Malformed(_) | Refused::IssuerUnreachable { .. } | Refused::BadSignature { .. } => {
                "invalid_request"
            }
            _ => "invalid_client",
        }
    }

    /// Entra's message, after `AADSTSnnnn: `.
    pub fn entra_text(&self) -> String {
        let check =
            "Check your federated identity credential Subject, Audience and Issuer against the presented assertion.";
        match self {
            Refused::Malformed(why) => format!("JWT token is invalid or malformed. {why}").trim().to_string(),
            Refused::UnknownIssuer { issuer } => format!(
                "No matching federated identity record found for presented assertion issuer '{issuer}'. Please check \
                 your federated identity credential Subject, Audience and Issuer against the presented assertion. \
                 {WIF_DOC}"
            ),
            Refused::IssuerUnreachable { .. } => "Request to External OIDC endpoint failed.".to_string(),
            Refused::KeyNotFound { kid, issuer } => format!(
                "The certificate with identifier {kid} used to sign the federated credential could not be found in \
                 the metadata of identity provider {issuer}. Please validate that your Identity Provider's metadata \
                 exposes the key used to sign the incoming token."
            ),
            Refused::BadSignature { .. } => "JWT token failed signature validation [Reason - The provided signature \
                 value did not match the expected signature value.]"
                .to_string(),
            Refused::OutsideTimeRange { now, nbf, exp } => format!(
                "Client assertion is not within its valid time range. Current time: {now}, assertion valid from \
                 {nbf}, expiry time of assertion {exp}. Review the documentation at {CERT_DOC} ."
            ),
            Refused::UnknownSubject { subject } => format!(
                "No matching federated identity record found for presented assertion subject '{subject}'. {check} \
                 {WIF_DOC}"
            ),
            Refused::SubjectCase { subject, .. } => format!(
                "No matching federated identity record found for presented assertion subject '{subject}'. The \
                 subject matches with case-insensitive comparison, but not with case-sensitive comparison. {check} \
                 See documentation at: {WIF_DOC}. See breaking change notification and remediation at: \
                 {CASE_CHANGE_DOC}."
            ),
            Refused::UnknownAudience { audience, .. } => format!(
                "No matching federated identity record found for presented assertion audience '{audience}'. Please \
                 check your federated identity credential Subject, Audience and Issuer against the presented \
                 assertion. {WIF_DOC}"
            ),
        }
    }
}

/// Why, in terms of the application's credentials `fics`: what the token carries against what
/// they expect, and what to change. Words only, for people (no AADSTS text).
pub fn explain(r: &Refused, fics: &[FederatedIdentityCredential]) -> String {
    let quoted = |v: Vec<&str>| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.iter().map(|s| format!("'{s}'")).collect::<Vec<_>>().join(", ")
        }
    };
    match r {
        Refused::Malformed(why) => format!("the token is not a readable JWT with an issuer and an expiry. {why}").trim().to_string(),
        Refused::UnknownIssuer { issuer } => {
            let near = fics.iter().find(|c| c.issuer.trim_end_matches('/').eq_ignore_ascii_case(issuer.trim_end_matches('/')));
            let base = format!(
                "no federated identity credential trusts the issuer '{issuer}'; the application trusts {}",
                quoted(fics.iter().map(|c| c.issuer.as_str()).collect())
            );
            match near {
                Some(c) => format!("{base}. Credential '{}' names '{}', which differs only by a trailing '/' or letter case: issuers are compared exactly", c.name, c.issuer),
                None => base,
            }
        }
        Refused::IssuerUnreachable { issuer, detail } => format!(
            "the issuer's discovery document or keys could not be fetched ({detail}); Entra fetches {}/.well-known/openid-configuration and its jwks_uri",
            issuer.trim_end_matches('/')
        ),
        Refused::KeyNotFound { kid, issuer } => format!(
            "the token is signed with key '{kid}', which the key set of '{issuer}' does not publish: the token comes from another issuer than its iss says, or the issuer rotated its keys"
        ),
        Refused::BadSignature { kid } => format!("the signature does not verify with the issuer's key '{kid}': the token was altered or forged"),
        Refused::OutsideTimeRange { now, nbf, exp } => format!(
            "the token is valid from {nbf} until {exp} (five minutes' grace), and it is {now}: request a fresh token from the issuer just before the exchange (workload tokens live minutes)"
        ),
        Refused::UnknownSubject { subject } => format!(
            "no credential of this issuer has the subject '{subject}'; they have {}",
            quoted(fics.iter().filter_map(|c| c.subject.as_deref()).collect())
        ),
        Refused::SubjectCase { subject, credential } => {
            let registered = fics.iter().find(|c| &c.name == credential).and_then(|c| c.subject.as_deref()).unwrap_or("");
            format!(
                "credential '{credential}' has the subject '{registered}', the token '{subject}': they differ only in letter case, and Entra compares subjects case-sensitively since August 2024; change the credential's subject to the token's spelling"
            )
        }
        Refused::UnknownAudience { audience, credential } => {
            let want = fics.iter().find(|c| &c.name == credential).map(|c| c.audiences.join(",")).unwrap_or_default();
            format!(
                "credential '{credential}' matches the issuer and subject but accepts the audience '{want}', and the token's aud is '{audience}': request the token for '{want}' from the issuer, or change the credential's audience"
            )
        }
    }
}

/// The token's parts that matching reads, decoded without trust: [`judge`] verifies it.
#[derive(Debug)]
pub struct Presented {
    /// The decoded token.
    pub token: Decoded,
    /// `iss`.
    pub issuer: String,
}

/// Decodes the token and reads its issuer (50027 when it is no JWT or has no `iss`).
pub fn read(token: &str) -> Result<Presented, Refused> {
    let d = dangerous::decode(token).map_err(|_| Refused::Malformed(String::new()))?;
    let issuer = d
        .claim_str("iss")
        .map(str::to_string)
        .ok_or_else(|| Refused::Malformed("The token has no 'iss' claim.".into()))?;
    Ok(Presented { token: d, issuer })
}

/// The credentials that trust the token's issuer (exact comparison: a trailing `/` or a letter
/// case difference is another issuer, as in Entra), or 700211.
pub fn by_issuer<'a>(
    fics: &'a [FederatedIdentityCredential],
    p: &Presented,
) -> Result<Vec<&'a FederatedIdentityCredential>, Refused> {
    let found: Vec<&FederatedIdentityCredential> = fics.iter().filter(|c| c.issuer == p.issuer).collect();
    if found.is_empty() {
        return Err(Refused::UnknownIssuer { issuer: p.issuer.clone() });
    }
    Ok(found)
}

/// Verifies the token's signature with the issuer's key set `jwks`: 7000272 when the key it names
/// is not there, 900384 when the signature does not verify.
pub fn verify_signature(p: &Presented, jwks: &Value) -> Result<(), Refused> {
    let header = |n: &str| p.token.header.get(n).and_then(Value::as_str);
    let (field, kid) = match (header("kid"), header("x5t")) {
        (Some(k), _) => ("kid", k),
        (None, Some(t)) => ("x5t", t),
        (None, None) => return Err(Refused::Malformed("The token header names no key (no 'kid', no 'x5t').".into())),
    };
    let keys = jwks.get("keys").and_then(Value::as_array).cloned().unwrap_or_default();
    let key = keys.into_iter().find(|k| k.get(field).and_then(Value::as_str) == Some(kid));
    let Some(key) = key else {
        return Err(Refused::KeyNotFound { kid: kid.to_string(), issuer: p.issuer.clone() });
    };
    crate::jwks::verify(&p.token, &serde_json::json!({ "keys": [key] }), &p.issuer)
        .map(|_| ())
        .map_err(|_| Refused::BadSignature { kid: kid.to_string() })
}

/// Entra's timestamp style in 700024 messages (`2024-01-31T12:00:00.0000000Z`).
pub fn entra_time(secs: f64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(secs.floor() as i64).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].0000000Z");
    t.format(&f).unwrap_or_default()
}

/// Checks `exp` (required) and `nbf` against `now` with Entra's skew.
pub fn check_times(p: &Presented, now: i64) -> Result<(), Refused> {
    let time = |name: &str| p.token.time_claim(name).map_err(Refused::Malformed);
    let exp = time("exp")?.ok_or_else(|| Refused::Malformed("The token has no valid 'exp' claim.".into()))?;
    let nbf = time("nbf")?;
    let now = now as f64;
    let skew = CLOCK_SKEW as f64;
    if exp + skew < now || nbf.is_some_and(|n| n - skew > now) {
        return Err(Refused::OutsideTimeRange {
            now: entra_time(now),
            nbf: entra_time(nbf.unwrap_or(now)),
            exp: entra_time(exp),
        });
    }
    Ok(())
}

/// Among the credentials of the token's issuer, the one whose subject and audience match
/// (case-sensitive, as Entra compares since August 2024): 700213, 7002138 or 700212 otherwise.
/// Credentials with a claims-matching expression instead of a subject are not matched.
pub fn match_subject<'a>(
    candidates: &[&'a FederatedIdentityCredential],
    p: &Presented,
) -> Result<&'a FederatedIdentityCredential, Refused> {
    let subject = p.token.claim_str("sub").unwrap_or_default().to_string();
    let same: Vec<&FederatedIdentityCredential> =
        candidates.iter().copied().filter(|c| c.subject.as_deref() == Some(subject.as_str())).collect();
    if same.is_empty() {
        let folded = candidates
            .iter()
            .find(|c| c.subject.as_deref().is_some_and(|s| s.to_lowercase() == subject.to_lowercase()));
        return Err(match folded {
            Some(c) => Refused::SubjectCase { subject, credential: c.name.clone() },
            None => Refused::UnknownSubject { subject },
        });
    }
    let audiences: Vec<String> = match p.token.claims.get("aud") {
        Some(Value::String(a)) => vec![a.clone()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        _ => Vec::new(),
    };
    same.iter()
        .copied()
        .find(|c| c.audiences.iter().any(|a| audiences.contains(a)))
        .ok_or_else(|| Refused::UnknownAudience { audience: audiences.join(","), credential: same[0].name.clone() })
}

/// The whole judgement: issuer, then the issuer's keys (`keys` fetches the JWKS of an issuer, or
/// says why it could not), signature, dates, subject and audience. Returns the credential that
/// accepts the token.
pub fn judge<'a>(
    fics: &'a [FederatedIdentityCredential],
    token: &str,
    keys: impl FnOnce(&str) -> Result<Value, String>,
    now: i64,
) -> Result<&'a FederatedIdentityCredential, Refused> {
    let p = read(token)?;
    let candidates = by_issuer(fics, &p)?;
    let jwks = keys(&p.issuer).map_err(|detail| Refused::IssuerUnreachable { issuer: p.issuer.clone(), detail })?;
    verify_signature(&p, &jwks)?;
    check_times(&p, now)?;
    match_subject(&candidates, &p)
}

#[cfg(test)]
#[path = "diagnose_tests.rs"]
mod tests;
