//! Reading what the token endpoint answered: a token, an Entra error, or something else
//! (an HTML error page from a proxy, an empty body), each turned into a value or a clear error.

use super::error::{EntraError, HintContext};
use crate::secret::SecretString;
use crate::{Error, Result};
use serde::Deserialize;
use serde_json::Value;

pub use crate::http::{excerpt, BODY_EXCERPT_CHARS};

/// A successful token response, v1 or v2.
#[derive(Clone, Debug)]
pub struct TokenResponse {
    /// `Bearer`.
    pub token_type: String,
    /// Seconds until expiry.
    pub expires_in: u64,
    /// Extended lifetime (resilience), seconds.
    pub ext_expires_in: Option<u64>,
    /// Expiry as a Unix time (v1 only).
    pub expires_on: Option<i64>,
    /// The resource (v1 only).
    pub resource: Option<String>,
    /// Granted scopes (v2 delegated flows).
    pub scope: Option<String>,
    /// The access token.
    pub access_token: SecretString,
}

/// v1 sends numbers as strings (`"3599"`), v2 as numbers; both are accepted.
#[derive(Deserialize)]
#[serde(untagged)]
enum Num {
    Int(i64),
    Float(f64),
    Str(String),
}

impl Num {
    fn as_i64(&self) -> Option<i64> {
        match self {
            Num::Int(i) => Some(*i),
            Num::Float(f) => Some(*f as i64),
            Num::Str(s) => s.trim().parse().ok(),
        }
    }
}

#[derive(Deserialize)]
struct Raw {
    token_type: Option<String>,
    expires_in: Option<Num>,
    ext_expires_in: Option<Num>,
    expires_on: Option<Num>,
    resource: Option<String>,
    scope: Option<String>,
    access_token: Option<String>,
}

/// Interprets an HTTP answer from `url`. `ctx` feeds the hints of Entra errors.
pub fn interpret(status: u16, body: &str, url: &str, ctx: &HintContext) -> Result<TokenResponse> {
    let json: Option<Value> = serde_json::from_str(body).ok();
    let Some(Value::Object(obj)) = json else {
        return Err(Error::remote(format!(
            "the token endpoint {url} answered HTTP {status} with a body that is not JSON: {}",
            excerpt(body)
        ))
        .with_hint(if body.trim_start().starts_with('<') {
            "an HTML page usually comes from a proxy, a captive portal or a wrong authority host"
        } else {
            "check the authority host: it must be an Entra login host or the keycred emulator"
        }));
    };
    if obj.contains_key("error") {
        let entra = EntraError::from_json(status, &Value::Object(obj.clone()));
        return Err(entra.into_error(ctx));
    }
    if !(200..300).contains(&status) {
        return Err(Error::remote(format!(
            "the token endpoint {url} answered HTTP {status} without an error: {}",
            excerpt(body)
        )));
    }
    let raw: Raw = serde_json::from_value(Value::Object(obj)).map_err(|e| {
        Error::remote(format!("the token endpoint {url} answered an unexpected JSON shape")).caused_by(e)
    })?;
    let access_token = raw.access_token.filter(|t| !t.is_empty()).ok_or_else(|| {
        Error::remote(format!("the token endpoint {url} answered HTTP {status} without access_token"))
    })?;
    let expires_in = raw
        .expires_in
        .as_ref()
        .and_then(Num::as_i64)
        .filter(|n| *n >= 0)
        .ok_or_else(|| Error::remote(format!("the token endpoint {url} answered without a valid expires_in")))?
        as u64;
    Ok(TokenResponse {
        token_type: raw.token_type.unwrap_or_else(|| "Bearer".into()),
        expires_in,
        ext_expires_in: raw.ext_expires_in.as_ref().and_then(Num::as_i64).map(|n| n.max(0) as u64),
        expires_on: raw.expires_on.as_ref().and_then(Num::as_i64),
        resource: raw.resource,
        scope: raw.scope,
        access_token: SecretString::new(access_token),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_strings_and_v2_numbers() {
        let ctx = HintContext::default();
        let v1 = r#"{"token_type":"Bearer","expires_in":"3599","ext_expires_in":"3599","expires_on":"1700003599",
            "not_before":"1700000000","resource":"https://graph.windows.net/","access_token":"eyJ.a.b"}"#;
        let r = interpret(200, v1, "u", &ctx).unwrap();
        assert_eq!(r.expires_in, 3599);
        assert_eq!(r.ext_expires_in, Some(3599));
        assert_eq!(r.expires_on, Some(1_700_003_599));
        assert_eq!(r.resource.as_deref(), Some("https://graph.windows.net/"));
        assert_eq!(r.access_token.expose(), "eyJ.a.b");
        let v2 = r#"{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"x"}"#;
        let r = interpret(200, v2, "u", &ctx).unwrap();
        assert_eq!((r.expires_in, r.expires_on), (3599, None));
        assert!(!format!("{r:?}").contains("\"x\""));
    }

    #[test]
    fn html_and_empty_bodies() {
        let ctx = HintContext::default();
        let e = interpret(502, "<html><body>Bad gateway</body></html>", "https://h/t", &ctx).unwrap_err();
        assert_eq!(e.exit_code(), 3);
        assert!(e.message().contains("HTTP 502"), "{}", e.message());
        assert!(e.message().contains("<html><body>Bad gateway"));
        let long = "x".repeat(500);
        let e = interpret(500, &long, "u", &ctx).unwrap_err();
        assert!(e.message().ends_with(&format!("{}...", "x".repeat(200))));
        assert!(interpret(200, "{}", "u", &ctx).unwrap_err().message().contains("access_token"));
    }
}
