//! Microsoft Graph's application key endpoints (PROTOCOL.md section 7), client side.
//!
//! Two ways to change an application's certificates:
//! - self-rotation, `addKey`/`removeKey`, authorised by a proof-of-possession JWT signed with a
//!   certificate the application already has; it needs no directory permission, but Graph refuses
//!   it when the application has no valid certificate left;
//! - `PATCH /applications/{id}` with the **whole** `keyCredentials` array, which needs
//!   Application.ReadWrite.*: sending only the new entry would wipe the others, so the array is
//!   always read, extended, re-read to detect a concurrent change, and only then written.

use crate::authority::check_transport;
use crate::cert::{Certificate, LoadedCredential, SignatureAlg};
use crate::secret::SecretString;
use crate::{jwt, Error, Result};
use serde_json::{json, Map, Value};
use std::time::Duration;

/// Public cloud Graph.
pub const GRAPH_URL: &str = "https://graph.microsoft.com";
/// The resource Graph tokens are issued for.
pub const GRAPH_RESOURCE: &str = "https://graph.microsoft.com";
/// Proof `aud` in the addKey/removeKey documentation (Azure AD Graph's id).
pub const PROOF_AUD_AAD_GRAPH: &str = "00000002-0000-0000-c000-000000000000";
/// Proof `aud` in newer documentation (Microsoft Graph's id).
pub const PROOF_AUD_MS_GRAPH: &str = "00000003-0000-0000-c000-000000000000";
/// Lifetime of a proof, seconds (the documentation's nbf + 10 minutes).
pub const PROOF_LIFETIME: i64 = 600;

/// Builds the proof-of-possession JWT for addKey/removeKey: RS256 with `x5t`, `aud`, `iss` = the
/// application's **object id**, `nbf`, `exp` = nbf + 10 min.
pub fn proof_of_possession(cred: &LoadedCredential, object_id: &str, aud: &str) -> Result<SecretString> {
    let mut header = Map::new();
    header.insert("typ".into(), json!("JWT"));
    header.insert("x5t".into(), json!(cred.cert.x5t()));
    let now = jwt::now_secs();
    let claims = json!({ "aud": aud, "iss": object_id, "nbf": now, "exp": now + PROOF_LIFETIME });
    Ok(SecretString::new(jwt::sign(&cred.key, SignatureAlg::Rs256, header, &claims)?))
}

/// An application as Graph returns it (the fields keycred reads).
#[derive(Clone, Debug, PartialEq)]
pub struct Application {
    /// Object id.
    pub id: String,
    /// Application (client) id.
    pub app_id: String,
    /// The `keyCredentials` array, entries as returned.
    pub key_credentials: Vec<Value>,
}

impl Application {
    fn from_json(v: &Value) -> Result<Self> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        Ok(Application {
            id: s("id").ok_or_else(|| Error::remote("Graph answered an application without 'id'"))?,
            app_id: s("appId").unwrap_or_default(),
            key_credentials: v.get("keyCredentials").and_then(Value::as_array).cloned().unwrap_or_default(),
        })
    }
}

/// A Graph client with a bearer token.
pub struct GraphClient {
    http: reqwest::Client,
    base: String,
    token: SecretString,
}

impl std::fmt::Debug for GraphClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphClient").field("base", &self.base).field("token", &"[redacted]").finish()
    }
}

impl GraphClient {
    /// A client for `graph_url` (https, or http on loopback) using `token`.
    pub fn new(graph_url: &str, token: SecretString, http: reqwest::Client) -> Result<Self> {
        let url = url::Url::parse(graph_url)
            .map_err(|e| Error::input(format!("--graph-url '{graph_url}' is not a URL ({e})")))?;
        check_transport(&url, "--graph-url")?;
        Ok(GraphClient { http, base: graph_url.trim_end_matches('/').to_string(), token })
    }

    /// A reqwest client with keycred's defaults (timeout).
    pub fn default_http(timeout: Duration) -> Result<reqwest::Client> {
        reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| Error::internal(format!("cannot build the HTTP client: {e}")))
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Result<Option<Value>> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method.clone(), &url).bearer_auth(self.token.expose());
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| {
            Error::remote(format!("{method} {url}: {}", crate::graph::describe_reqwest(&e)))
                .with_hint("check --graph-url and the network; the emulator prints its URL when it starts")
        })?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| Error::remote(format!("{method} {url}: reading the answer: {e}")))?;
        if status.is_success() {
            if text.trim().is_empty() {
                return Ok(None);
            }
            return serde_json::from_str(&text).map(Some).map_err(|_| {
                Error::remote(format!("{method} {url}: HTTP {status} with a body that is not JSON: {}", start(&text)))
            });
        }
        let v: Option<Value> = serde_json::from_str(&text).ok();
        let (code, message) = match v.as_ref().and_then(|v| v.get("error")) {
            Some(e) => (
                e.get("code").and_then(Value::as_str).unwrap_or("unknown").to_string(),
                e.get("message").and_then(Value::as_str).unwrap_or("").to_string(),
            ),
            None => ("unknown".into(), start(&text)),
        };
        let hint = match status.as_u16() {
            401 => "the Graph token was refused: request it for https://graph.microsoft.com/.default",
            403 => "the app lacks permission: PATCH needs Application.ReadWrite.OwnedBy or .All; addKey/removeKey need a valid proof",
            404 => "no such application: check --app-id and the tenant",
            _ => "see the Graph error above",
        };
        Err(Error::remote(format!("{method} {url}: HTTP {status}: {code}: {message}")).with_hint(hint))
    }

    /// `GET /v1.0/applications(appId='{app_id}')?$select=id,appId,keyCredentials`.
    pub async fn get_by_app_id(&self, app_id: &str) -> Result<Application> {
        let path = format!("/v1.0/applications(appId='{app_id}')?$select=id,appId,keyCredentials");
        let v = self.call(reqwest::Method::GET, &path, None).await?;
        Application::from_json(&v.unwrap_or(Value::Null))
    }

    /// `GET /v1.0/applications/{id}?$select=id,appId,keyCredentials`.
    pub async fn get(&self, id: &str) -> Result<Application> {
        let path = format!("/v1.0/applications/{id}?$select=id,appId,keyCredentials");
        let v = self.call(reqwest::Method::GET, &path, None).await?;
        Application::from_json(&v.unwrap_or(Value::Null))
    }

    /// `PATCH /v1.0/applications/{id}` with the whole `keyCredentials` array.
    pub async fn patch_key_credentials(&self, id: &str, entries: &[Value]) -> Result<()> {
        let body = json!({ "keyCredentials": entries });
        self.call(reqwest::Method::PATCH, &format!("/v1.0/applications/{id}"), Some(&body)).await?;
        Ok(())
    }

    /// `POST /v1.0/applications/{id}/addKey` with a proof; returns the new keyCredential.
    pub async fn add_key(
        &self,
        id: &str,
        cert: &Certificate,
        display_name: Option<&str>,
        proof: &SecretString,
    ) -> Result<Value> {
        let mut kc = json!({ "type": "AsymmetricX509Cert", "usage": "Verify", "key": cert.value_b64() });
        if let Some(d) = display_name {
            kc["displayName"] = json!(d);
        }
        let body = json!({ "keyCredential": kc, "passwordCredential": null, "proof": proof.expose() });
        let v = self.call(reqwest::Method::POST, &format!("/v1.0/applications/{id}/addKey"), Some(&body)).await?;
        Ok(v.unwrap_or(Value::Null))
    }

    /// `POST /v1.0/applications/{id}/removeKey` with a proof.
    pub async fn remove_key(&self, id: &str, key_id: &str, proof: &SecretString) -> Result<()> {
        let body = json!({ "keyId": key_id, "proof": proof.expose() });
        self.call(reqwest::Method::POST, &format!("/v1.0/applications/{id}/removeKey"), Some(&body)).await?;
        Ok(())
    }

    /// Read-modify-write of `keyCredentials` that never overwrites a concurrent change: the
    /// array is re-read just before the PATCH and, if it changed since `change` was computed,
    /// the change is computed again (up to 5 times).
    pub async fn update_key_credentials<F>(&self, id: &str, mut change: F) -> Result<Vec<Value>>
    where
        F: FnMut(&[Value]) -> Result<Vec<Value>>,
    {
        for _ in 0..5 {
            let before = self.get(id).await?.key_credentials;
            let after = change(&before)?;
            let again = self.get(id).await?.key_credentials;
            if again != before {
                continue;
            }
            self.patch_key_credentials(id, &after).await?;
            return Ok(after);
        }
        Err(Error::remote(
            "the application's keyCredentials kept changing while keycred updated them; nothing was written",
        )
        .with_hint("another process is editing the application: run again when it is done"))
    }
}

/// The first 200 characters of a body, for messages.
pub(crate) fn start(text: &str) -> String {
    let t: String = text.chars().take(200).collect();
    if t.is_empty() {
        "(empty body)".into()
    } else {
        t
    }
}

/// A reqwest error in words users understand (timeout, connection, TLS).
pub(crate) fn describe_reqwest(e: &reqwest::Error) -> String {
    let mut msg = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        "request failed".to_string()
    };
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(&format!(": {s}"));
        src = s.source();
    }
    msg
}
