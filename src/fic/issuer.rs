//! Fetching an external issuer's signing keys as Entra does: its OpenID discovery document at
//! `{issuer}/.well-known/openid-configuration`, then the key set its `jwks_uri` names. Issuers are
//! https, or http on a loopback host (a local test issuer); a caller may also restrict them to
//! loopback hosts (the emulator reaches nothing else). Successful fetches are cached per issuer
//! for a short while ([`KeyCache`]), as a relying party does, so a burst of sign-ins costs two
//! requests.

use crate::http::{Method, Request, Transport};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long fetched keys are reused.
pub const CACHE_FOR: Duration = Duration::from_secs(60);
/// Largest discovery document or key set read.
const MAX_DOCUMENT: usize = 256 * 1024;

/// Checks that `url` may be fetched: https, or http on loopback; loopback only when asked.
pub fn check_url(url: &str, loopback_only: bool) -> Result<url::Url, String> {
    let u = url::Url::parse(url).map_err(|e| format!("'{url}' is not a URL ({e})"))?;
    let loopback = crate::authority::is_loopback_host(&u);
    if loopback_only && !loopback {
        return Err(format!("'{url}' is not on a loopback host; only loopback issuers are reached here"));
    }
    match u.scheme() {
        "https" => Ok(u),
        "http" if loopback => Ok(u),
        _ => Err(format!("'{url}' is neither https nor http on a loopback host")),
    }
}

async fn get_json(transport: &dyn Transport, url: &str) -> Result<Value, String> {
    let mut req = Request::new(Method::GET, url).header("accept", "application/json");
    req.limit = MAX_DOCUMENT;
    let answer = transport.send(req).await.map_err(|f| format!("cannot reach {url}: {}", f.detail()))?;
    if answer.status != 200 {
        return Err(format!("{url} answered HTTP {}", answer.status));
    }
    serde_json::from_str(&answer.body).map_err(|_| format!("{url} did not answer JSON"))
}

/// Fetches the key set of `issuer` through its discovery document.
pub async fn fetch_keys(transport: &dyn Transport, issuer: &str, loopback_only: bool) -> Result<Value, String> {
    check_url(issuer, loopback_only)?;
    let discovery_url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
    let doc = get_json(transport, &discovery_url).await?;
    let jwks_uri = doc
        .get("jwks_uri")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{discovery_url} has no jwks_uri"))?
        .to_string();
    check_url(&jwks_uri, loopback_only)?;
    let set = get_json(transport, &jwks_uri).await?;
    if !set.get("keys").is_some_and(Value::is_array) {
        return Err(format!("{jwks_uri} is not a JSON Web Key Set (no \"keys\" array)"));
    }
    Ok(set)
}

/// Asks the keycred emulator's issuer at `issuer` (loopback only) for a workload token: its
/// emulator-only mint endpoint `{issuer}/token`, with `request` (`subject`, and optionally
/// `audience`, `lifetime`, `claims`). Real issuers have no such endpoint.
pub async fn mint(transport: &dyn Transport, issuer: &str, request: &Value) -> crate::Result<String> {
    let u = check_url(issuer, true).map_err(|why| {
        crate::Error::input(why).with_hint("workload tokens are minted only by an issuer the keycred emulator plays")
    })?;
    let url = format!("{}/token", u.as_str().trim_end_matches('/'));
    let req = Request::new(Method::POST, &url)
        .header("accept", "application/json")
        .body("application/json", request.to_string().into_bytes());
    let answer = transport
        .send(req)
        .await
        .map_err(|f| crate::Error::remote(format!("cannot reach the issuer {issuer}")).caused_by(f))?;
    let body: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
    match (answer.status, body.get("token").and_then(Value::as_str)) {
        (200, Some(t)) => Ok(t.to_string()),
        (status, _) => {
            let why = body.get("error_description").and_then(Value::as_str).unwrap_or("no token in the answer");
            Err(crate::Error::remote(format!("the issuer {issuer} answered HTTP {status}: {why}"))
                .with_hint("check the issuer URL: the emulator lists its issuers under \"issuers\" when it starts"))
        }
    }
}

/// Key sets fetched recently, per issuer.
#[derive(Debug, Default)]
pub struct KeyCache {
    sets: Mutex<HashMap<String, (Instant, Value)>>,
}

impl KeyCache {
    /// The cached key set of `issuer`, if fetched less than [`CACHE_FOR`] ago.
    pub fn get(&self, issuer: &str) -> Option<Value> {
        let sets = self.sets.lock().ok()?;
        sets.get(issuer).filter(|(at, _)| at.elapsed() < CACHE_FOR).map(|(_, v)| v.clone())
    }
    /// Remembers a fetched key set.
    pub fn put(&self, issuer: &str, set: Value) {
        if let Ok(mut sets) = self.sets.lock() {
            // Bounded: a caller cannot grow it without limit by naming issuers.
            if sets.len() > 256 {
                sets.retain(|_, (at, _)| at.elapsed() < CACHE_FOR);
            }
            sets.insert(issuer.to_string(), (Instant::now(), set));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reaches_https_or_loopback_http_only() {
        assert!(check_url("https://token.actions.githubusercontent.com", false).is_ok());
        assert!(check_url("http://127.0.0.1:8080/issuers/gh", true).is_ok());
        assert!(check_url("http://localhost:1/x", true).is_ok());
        assert!(check_url("http://example.com/x", false).unwrap_err().contains("neither https"));
        assert!(check_url("https://example.com/x", true).unwrap_err().contains("loopback"));
        assert!(check_url("not a url", false).is_err());
    }
}
