//! Entra's refusals: the error JSON of the token endpoint, kept whole inside [`crate::Error`]
//! (as its source) so callers can branch on the AADSTS code, and shown with a hint for the
//! causes users meet most.

use crate::wording::{Action, Input};
use crate::Error;
use serde_json::Value;
use std::fmt;

/// What the hints need to know about the request that was refused.
#[derive(Clone, Debug, Default)]
pub struct HintContext {
    /// SHA-1 hex thumbprint of the certificate that signed the assertion.
    pub thumbprint: Option<String>,
    /// Where that certificate came from.
    pub cert_path: Option<String>,
    /// The admin-consent URL for this app and tenant.
    pub consent_url: Option<String>,
    /// Where the application's certificates are registered, as far as the command knows.
    pub registration: Registration,
}

/// Where an application's certificates are registered, as the command that asks for the token
/// knows it: the hint for a certificate Entra does not know (700027) says how to register one
/// there, and never sends a Graph-managed application to a manifest file it does not have.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Registration {
    /// Not known (`keycred token`): every way is named.
    #[default]
    Unknown,
    /// This manifest file, uploaded in the portal (`check --manifest`, `rotate`, the demo).
    Manifest(String),
    /// Microsoft Graph (`keycred graph`, `keycred fleet`): there is no manifest file.
    Graph,
}

/// Entra's error body, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntraError {
    /// HTTP status.
    pub status: u16,
    /// `error` (`invalid_client`, `invalid_scope`, ...).
    pub error: String,
    /// `error_description`, whole.
    pub description: String,
    /// `error_codes` (AADSTS numbers).
    pub codes: Vec<u32>,
    /// `trace_id`.
    pub trace_id: Option<String>,
    /// `correlation_id`.
    pub correlation_id: Option<String>,
    /// `claims`: the challenge of an `interaction_required` answer.
    pub claims: Option<String>,
}

impl EntraError {
    /// Reads the error JSON. Missing members are tolerated: the code then comes from the
    /// `AADSTSnnnn:` prefix of the description when there is one.
    pub fn from_json(status: u16, v: &Value) -> Self {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let description = s("error_description").unwrap_or_default();
        let mut codes: Vec<u32> = v
            .get("error_codes")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|c| c.as_u64().and_then(|n| u32::try_from(n).ok())).collect())
            .unwrap_or_default();
        if codes.is_empty() {
            if let Some(n) = description
                .strip_prefix("AADSTS")
                .map(|r| r.chars().take_while(char::is_ascii_digit).collect::<String>())
                .and_then(|d| d.parse().ok())
            {
                codes.push(n);
            }
        }
        let claims = match v.get("claims") {
            Some(Value::String(c)) if !c.is_empty() => Some(c.clone()),
            Some(c @ Value::Object(_)) => Some(c.to_string()),
            _ => None,
        };
        EntraError {
            status,
            error: s("error").unwrap_or_else(|| "unknown_error".into()),
            description,
            codes,
            trace_id: s("trace_id"),
            correlation_id: s("correlation_id"),
            claims,
        }
    }

    /// The main AADSTS code.
    pub fn code(&self) -> Option<u32> {
        self.codes.first().copied()
    }

    /// The first line of the description (Entra appends trace, correlation and timestamp lines).
    pub fn first_line(&self) -> &str {
        self.description.lines().next().unwrap_or("").trim()
    }

    /// How to fix the most frequent refusals.
    pub fn hint(&self, ctx: &HintContext) -> Option<String> {
        let consent = ctx.consent_url.as_deref().map(|u| format!(": {u}")).unwrap_or_default();
        let h = match self.code() {
            Some(700027) => self.unknown_key_hint(ctx),
            Some(700024) => "the assertion is outside its valid time range: check this machine's clock \
                             (for example `timedatectl`), Entra tolerates only a few minutes of skew"
                .into(),
            Some(700023) => {
                "the assertion's aud must be exactly the token endpoint URL the request is posted to".into()
            }
            Some(7000215) => "use the secret's Value (shown once, when it was created), not its Secret ID; \
                              check also that the secret has not expired"
                .into(),
            Some(70011) | Some(1002012) => format!(
                "client credentials need a scope ending in /.default: give {} as https://graph.microsoft.com/.default, \
                 for example (a resource that ends in / needs //.default)",
                Input::Scope
            ),
            Some(700016) => format!(
                "check {} and {}: the application must be registered in that tenant, or an \
                 administrator of the tenant must consent to it{consent}",
                Input::Tenant,
                Input::ClientId
            ),
            Some(70003) => format!(
                "the token endpoint does not serve this grant type; {} serves client credentials (certificate or \
                 secret), on-behalf-of and the authorization code, and the README says what else is and is not \
                 emulated",
                Action::Emulate
            ),
            Some(65001) => format!("consent has not been granted: an administrator can grant it{consent}"),
            Some(54005) => format!(
                "an authorization code can be redeemed only once: sign in again (the sign-in URL from {}) and \
                 redeem the new code; a client that needs tokens later keeps the refresh token instead",
                Action::ConsentUrl
            ),
            Some(70008) => format!(
                "the authorization code expired (codes last about ten minutes): sign in again (the sign-in URL \
                 from {}) and redeem the new code at once",
                Action::ConsentUrl
            ),
            Some(50079) => self.claims_hint(),
            Some(90002) | Some(900023) => {
                format!("check {}: use the tenant id (GUID) or a verified domain", Input::Tenant)
            }
            Some(500011) => format!(
                "the resource is not known in this tenant: check {}, and that an administrator consented to the API",
                Input::Target
            ),
            _ if self.error == "interaction_required" => self.claims_hint(),
            _ => return None,
        };
        Some(h)
    }

    /// 700027 by its reason: a key the application does not have (how to register one depends
    /// on where its certificates live, and a rotation removes the old one on purpose), a key
    /// outside its registered dates, or a key file that is not the registered certificate's.
    fn unknown_key_hint(&self, ctx: &HintContext) -> String {
        let which = match &ctx.thumbprint {
            Some(tp) => format!("the certificate with SHA-1 thumbprint {tp}"),
            None => "the signing certificate".to_string(),
        };
        let cert = ctx.cert_path.clone();
        let reason = self.first_line();
        if reason.contains("The key used is expired") || reason.contains("is not yet valid") {
            return format!(
                "{which} is registered, but outside the dates of its entry: if a rotation already registered its \
                 successor, sign with that certificate; otherwise register one that is valid now ({})",
                Action::Rotate
            );
        }
        if reason.contains("signature value did not match") {
            return format!(
                "{which} is registered, but the private key that signed is not its key: pass the key that goes with \
                 the certificate ({}, or a PEM bundle holding both)",
                Input::Key
            );
        }
        let rotated = "if a rotation replaced it, sign with the new certificate";
        match &ctx.registration {
            Registration::Manifest(m) => format!(
                "{which} is not registered on the application: add it with {} and upload the manifest (or upload \
                 the certificate in the portal), then retry after a few minutes; {rotated}",
                Action::AddToManifest { manifest: Some(m.clone()), cert }
            ),
            Registration::Graph => format!(
                "{which} is not registered on the application: {rotated}; to register it, use {} (the proof is \
                 signed by a certificate still registered) or the portal; a certificate just added can take a few \
                 minutes to be accepted",
                Action::AddThroughGraph { new_cert: cert, proof: true }
            ),
            Registration::Unknown => format!(
                "{which} is not registered on the application; {rotated}; to register it, upload it in the portal, \
                 use {}, or {} and upload the manifest",
                Action::AddThroughGraph { new_cert: cert.clone(), proof: true },
                Action::AddToManifest { manifest: None, cert }
            ),
        }
    }

    fn claims_hint(&self) -> String {
        match &self.claims {
            Some(c) => format!(
                "interaction is required (MFA or conditional access): return this claims challenge to the caller \
                 so it signs in again: {c}"
            ),
            None => "interaction is required (MFA or conditional access): the caller must sign in again".into(),
        }
    }

    /// The keycred error (exit 3) carrying this one as its source.
    pub fn into_error(self, ctx: &HintContext) -> Error {
        let hint = self.hint(ctx);
        let mut e = Error::remote(self.to_string());
        if let Some(h) = hint {
            e = e.with_hint(h);
        }
        if let Some(code) = self.code() {
            e = e.with_aadsts(code);
        }
        e.with_source(self)
    }
}

impl fmt::Display for EntraError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the token endpoint refused (HTTP {}): ", self.status)?;
        if let Some(c) = self.code() {
            // The description usually starts with the same code: do not print it twice.
            let first = self.first_line();
            let prefix = format!("AADSTS{c}:");
            let rest = first.strip_prefix(&prefix).map(str::trim).unwrap_or(first);
            write!(f, "AADSTS{c} {}: {rest}", self.error)?;
        } else {
            write!(f, "{}: {}", self.error, self.first_line())?;
        }
        let ids: Vec<String> = [("trace ID", &self.trace_id), ("correlation ID", &self.correlation_id)]
            .iter()
            .filter_map(|(n, v)| v.as_ref().map(|v| format!("{n} {v}")))
            .collect();
        if !ids.is_empty() {
            write!(f, " ({})", ids.join(", "))?;
        }
        Ok(())
    }
}

impl std::error::Error for EntraError {}

/// The Entra refusal inside a keycred error, if the error is one.
pub fn entra_error(e: &Error) -> Option<&EntraError> {
    std::error::Error::source(e).and_then(|s| s.downcast_ref::<EntraError>())
}

/// The AADSTS code of a refusal (`700027`, ...), for callers that branch on it.
pub fn entra_code(e: &Error) -> Option<u32> {
    e.aadsts().or_else(|| entra_error(e).and_then(EntraError::code))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn message_has_code_error_first_line_and_ids() {
        let v = json!({
            "error": "invalid_client",
            "error_description": "AADSTS700027: Client assertion contains an invalid signature. [Reason - The key was not found., Thumbprint of key used by client: 'ABC']\r\nTrace ID: t-1\r\nCorrelation ID: c-1\r\nTimestamp: 2024-01-01 00:00:00Z",
            "error_codes": [700027],
            "timestamp": "2024-01-01 00:00:00Z",
            "trace_id": "t-1",
            "correlation_id": "c-1",
            "error_uri": "https://login.microsoftonline.com/error?code=700027"
        });
        let e = EntraError::from_json(401, &v);
        assert_eq!(
            e.to_string(),
            "the token endpoint refused (HTTP 401): AADSTS700027 invalid_client: Client assertion contains an \
             invalid signature. [Reason - The key was not found., Thumbprint of key used by client: 'ABC'] \
             (trace ID t-1, correlation ID c-1)"
        );
        let ctx = HintContext {
            thumbprint: Some("ABC".into()),
            cert_path: Some("c.pem".into()),
            registration: Registration::Manifest("app.json".into()),
            ..Default::default()
        };
        let err = e.clone().into_error(&ctx);
        assert_eq!(err.exit_code(), 3);
        assert!(err.hint().unwrap().contains("a keyCredentials entry for c.pem in app.json"), "{err:?}");
        // An application managed through Graph has no manifest to add to.
        let graph = HintContext { registration: Registration::Graph, ..ctx.clone() };
        let h = e.hint(&graph).unwrap();
        assert!(h.contains("a Graph addKey call for c.pem") && !h.contains("manifest"), "{h}");
        let unknown = e.hint(&HintContext { registration: Registration::Unknown, ..ctx }).unwrap();
        assert!(unknown.contains("if a rotation replaced it, sign with the new certificate"), "{unknown}");
        assert_eq!((entra_code(&err), err.aadsts()), (Some(700027), Some(700027)));
        assert_eq!(entra_code(&Error::remote("x")), None);
    }

    #[test]
    fn an_expired_registered_key_points_first_at_its_successor_and_a_used_code_at_signing_in_again() {
        let expired = EntraError::from_json(
            401,
            &json!({"error": "invalid_client", "error_codes": [700027], "error_description":
                "AADSTS700027: Client assertion contains an invalid signature. [Reason - The key used is expired., \
                 Thumbprint of key used by client: 'ABC']"}),
        );
        let h = expired.hint(&HintContext::default()).unwrap();
        assert!(h.contains("if a rotation already registered its successor, sign with that certificate"), "{h}");
        let used = EntraError::from_json(
            400,
            &json!({"error": "invalid_grant", "error_codes": [54005], "error_description":
                "AADSTS54005: OAuth2 Authorization code was already redeemed, please retry with a new valid code."}),
        );
        let h = used.hint(&HintContext::default()).unwrap();
        assert!(h.contains("redeemed only once") && h.contains("sign in again"), "{h}");
    }

    #[test]
    fn code_from_description_when_codes_missing() {
        let e = EntraError::from_json(400, &json!({"error": "invalid_grant", "error_description": "AADSTS65001: no"}));
        assert_eq!(e.code(), Some(65001));
    }
}
