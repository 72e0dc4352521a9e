//! Microsoft Graph's application key endpoints (PROTOCOL.md section 7), client side.
//!
//! Two ways to change an application's certificates:
//! - self-rotation, `addKey`/`removeKey`, authorised by a proof-of-possession JWT signed with a
//!   certificate the application already has; it needs no directory permission, but Graph refuses
//!   it when the application has no valid certificate left;
//! - `PATCH /applications/{id}` with the **whole** `keyCredentials` array, which needs
//!   Application.ReadWrite.*: sending only the new entry would wipe the others, so the array is
//!   always read, extended, re-read to detect a concurrent change, and only then written.

pub mod access;
pub mod policy;

use crate::authority::check_transport;
use crate::cert::{Certificate, LoadedCredential, SignatureAlg};
use crate::fleet::request;
use crate::fleet::throttle::Limiter;
use crate::secret::SecretString;
use crate::{jwt, Error, Result};
use serde_json::{json, Map, Value};
use std::sync::Arc;

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
    token: std::sync::RwLock<SecretString>,
    limiter: Arc<Limiter>,
    renew: Option<Renew>,
}

/// Gets a fresh Graph token, for runs longer than a token lives (about an hour).
pub type Renew =
    Arc<dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<SecretString>> + Send>> + Send + Sync>;

/// Largest collection page read (`GET /v1.0/applications?...`): a page of 999 applications, each
/// with a few certificates (about 1.5 KB of base64 each), stays well under it. Every other Graph
/// answer is held to the 1 MiB of [`crate::token::MAX_ANSWER`].
pub const MAX_GRAPH_PAGE: usize = 64 * 1024 * 1024;

/// Attempts of one request when Graph keeps answering 429/503 (the first one included).
pub const MAX_ATTEMPTS: u32 = 8;

impl std::fmt::Debug for GraphClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphClient").field("base", &self.base).field("token", &"[redacted]").finish_non_exhaustive()
    }
}

impl GraphClient {
    /// A client for `graph_url` (https, or http on loopback) using `token`.
    /// A trailing `/v1.0` (as Graph Explorer shows URLs) is dropped: keycred adds the version.
    pub fn new(graph_url: &str, token: SecretString, http: reqwest::Client) -> Result<Self> {
        let mut url = url::Url::parse(graph_url.trim())
            .map_err(|e| Error::input(format!("Graph URL '{graph_url}' is not a URL ({e})")))?;
        check_transport(&url, "Graph URL")?;
        if url.path().trim_end_matches('/').eq_ignore_ascii_case("/v1.0") {
            url.set_path("/");
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(Error::input(format!("Graph URL '{graph_url}' has a path, query or fragment"))
                .with_hint(format!("give the Graph host only, such as {GRAPH_RESOURCE}")));
        }
        // Alone, a client is limited only by its caller; a fleet run shares one limiter.
        let limiter = Arc::new(Limiter::new(64));
        Ok(GraphClient {
            http,
            base: url.as_str().trim_end_matches('/').to_string(),
            token: std::sync::RwLock::new(token),
            limiter,
            renew: None,
        })
    }

    /// The Graph base URL (scheme, host and port), without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Shares `limiter` with this client: every request then waits for a slot, and a throttled
    /// answer lowers the concurrency of every client sharing it.
    pub fn with_limiter(mut self, limiter: Arc<Limiter>) -> Self {
        self.limiter = limiter;
        self
    }

    /// The limiter in use (its counters feed progress and summaries).
    pub fn limiter(&self) -> &Arc<Limiter> {
        &self.limiter
    }

    /// Lets the client get a new token when Graph answers 401 (the token expired during a long
    /// run); the request is then sent once more with it.
    pub fn with_renew(mut self, renew: Renew) -> Self {
        self.renew = Some(renew);
        self
    }

    fn bearer(&self) -> String {
        self.token.read().map(|t| t.expose().to_string()).unwrap_or_default()
    }

    /// The absolute URL of a call.
    pub fn url_of(&self, call: &GraphCall) -> String {
        format!("{}{}", self.base, call.path)
    }

    /// Sends a prepared call and [`interpret`]s the answer; the only I/O of the Graph client.
    ///
    /// Every call carries a `client-request-id` (with `return-client-request-id: true`), kept
    /// across its retries as Graph's guidance asks, and a failure names it (and Graph's
    /// `request-id`). 429 and 503 are waited out (`Retry-After`, else jittered backoff,
    /// [`request::backoff`]) and retried up to [`MAX_ATTEMPTS`] times in all, lowering the
    /// shared limiter's concurrency; a 401 gets one retry with a renewed token when the client
    /// can renew it.
    pub async fn send(&self, call: GraphCall) -> Result<Option<Value>> {
        let url = self.url_of(&call);
        let method = call.method.clone();
        let client_request_id = uuid::Uuid::new_v4().to_string();
        let mut attempt = 0;
        let mut renewed = false;
        // The slot is kept across a retry's wait: a throttled request goes again first when the
        // pause ends, instead of racing every request that queued behind the pause (it could
        // otherwise lose each race and use up its attempts while the others make progress).
        let mut slot = None;
        loop {
            if slot.is_none() {
                slot = Some(self.limiter.acquire().await);
            }
            let (status, retry_after, text) = {
                let mut req = self
                    .http
                    .request(method.clone(), &url)
                    .bearer_auth(self.bearer())
                    .header("client-request-id", &client_request_id)
                    .header("return-client-request-id", "true");
                if let Some(b) = &call.body {
                    req = req.json(b);
                }
                let resp = req.send().await.map_err(|e| {
                    Error::remote(format!(
                        "{method} {url}: {} (client-request-id {client_request_id})",
                        crate::graph::describe_reqwest(&e)
                    ))
                    .with_hint("check the Graph URL and the network; the emulator prints its URL when it starts")
                })?;
                let status = resp.status().as_u16();
                let retry_after =
                    resp.headers().get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).map(str::to_string);
                let limit = if request::is_collection(&call.path) { MAX_GRAPH_PAGE } else { crate::token::MAX_ANSWER };
                let text = crate::token::read_limited_to(resp, limit).await.map_err(|e| match e {
                    crate::token::ReadError::TooLarge => {
                        Error::remote(format!("{method} {url}: HTTP {status} with a body over {limit} bytes; not read"))
                            .with_hint("check the Graph URL: it must be Microsoft Graph or the keycred emulator")
                    }
                    crate::token::ReadError::Transport(e) => Error::remote(format!(
                        "{method} {url}: reading the answer: {}",
                        crate::graph::describe_reqwest(&e)
                    )),
                })?;
                (status, retry_after, text)
            };
            if status == 401 && !renewed {
                if let Some(renew) = &self.renew {
                    renewed = true;
                    let fresh = renew().await?;
                    if let Ok(mut t) = self.token.write() {
                        *t = fresh;
                    }
                    continue;
                }
            }
            if request::is_retryable(status) {
                attempt += 1;
                if attempt >= MAX_ATTEMPTS {
                    let e = Error::remote(format!(
                        "{method} {url}: still throttled or unavailable after {MAX_ATTEMPTS} attempts \
                         (client-request-id {client_request_id})"
                    ))
                    .with_hint("Graph is throttling this application: run again later, or with a lower --concurrency");
                    return Err(match graph_error_code(&text) {
                        Some(c) => e.with_graph_code(c),
                        None => e,
                    });
                }
                let asked = request::parse_retry_after(retry_after.as_deref());
                let wait = request::backoff(attempt - 1, asked, rand::random::<f64>());
                self.limiter.throttled(wait);
                tokio::time::sleep(wait).await;
                // Another request may have been told to wait longer: that pause holds for all.
                self.limiter.pause_over().await;
                continue;
            }
            return match interpret(&method, &url, status, &text) {
                Ok(v) => {
                    self.limiter.succeeded();
                    Ok(v)
                }
                Err(e) => Err(e.with_note(request::ids(&client_request_id, &text))),
            };
        }
    }

    /// `GET /v1.0/applications(appId='{app_id}')?$select=id,appId,keyCredentials`.
    pub async fn get_by_app_id(&self, app_id: &str) -> Result<Application> {
        let v = self.send(GraphCall::get_by_app_id(app_id)).await?;
        Application::from_json(&v.unwrap_or(Value::Null))
    }

    /// `GET /v1.0/applications/{id}?$select=id,appId,keyCredentials`.
    pub async fn get(&self, id: &str) -> Result<Application> {
        let v = self.send(GraphCall::get(id)).await?;
        Application::from_json(&v.unwrap_or(Value::Null))
    }

    /// `PATCH /v1.0/applications/{id}` with the whole `keyCredentials` array.
    pub async fn patch_key_credentials(&self, id: &str, entries: &[Value]) -> Result<()> {
        self.send(GraphCall::patch_key_credentials(id, entries)).await?;
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
        let mut v = self.send(GraphCall::add_key(id, cert, display_name, proof)).await?;
        // Graph's answer is the keyCredential plus OData annotations (`@odata.context`): keep
        // the keyCredential, the part that is keycred's stable output.
        if let Some(Value::Object(o)) = v.as_mut() {
            o.retain(|k, _| !k.starts_with("@odata."));
        }
        Ok(v.unwrap_or(Value::Null))
    }

    /// `POST /v1.0/applications/{id}/removeKey` with a proof.
    pub async fn remove_key(&self, id: &str, key_id: &str, proof: &SecretString) -> Result<()> {
        self.send(GraphCall::remove_key(id, key_id, proof)).await?;
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

/// One Graph request, built without I/O (as the token client's `prepare`): method, path under
/// the Graph base URL, and JSON body. Its `Debug` leaves the body out: addKey and removeKey
/// bodies hold a proof of possession.
#[derive(Clone)]
pub struct GraphCall {
    /// HTTP method.
    pub method: reqwest::Method,
    /// Path and query, from `/v1.0/`.
    pub path: String,
    /// JSON body.
    pub body: Option<Value>,
}

impl std::fmt::Debug for GraphCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphCall").field("method", &self.method).field("path", &self.path).finish_non_exhaustive()
    }
}

impl GraphCall {
    /// `GET /v1.0/applications(appId='{app_id}')?$select=id,appId,keyCredentials`; a quote in
    /// the id is doubled, as OData string literals escape it.
    pub fn get_by_app_id(app_id: &str) -> GraphCall {
        let app_id = app_id.replace('\'', "''");
        let path = format!("/v1.0/applications(appId='{app_id}')?$select=id,appId,keyCredentials");
        GraphCall { method: reqwest::Method::GET, path, body: None }
    }
    /// `GET /v1.0/applications/{id}?$select=id,appId,keyCredentials`.
    pub fn get(id: &str) -> GraphCall {
        let path = format!("/v1.0/applications/{id}?$select=id,appId,keyCredentials");
        GraphCall { method: reqwest::Method::GET, path, body: None }
    }
    /// `PATCH /v1.0/applications/{id}` with the whole `keyCredentials` array.
    pub fn patch_key_credentials(id: &str, entries: &[Value]) -> GraphCall {
        let body = json!({ "keyCredentials": entries });
        GraphCall { method: reqwest::Method::PATCH, path: format!("/v1.0/applications/{id}"), body: Some(body) }
    }
    /// `POST /v1.0/applications/{id}/addKey`: the certificate as a keyCredential, and the proof.
    pub fn add_key(id: &str, cert: &Certificate, display_name: Option<&str>, proof: &SecretString) -> GraphCall {
        let mut kc = json!({ "type": "AsymmetricX509Cert", "usage": "Verify", "key": cert.value_b64() });
        if let Some(d) = display_name {
            kc["displayName"] = json!(d);
        }
        let body = json!({ "keyCredential": kc, "passwordCredential": null, "proof": proof.expose() });
        GraphCall { method: reqwest::Method::POST, path: format!("/v1.0/applications/{id}/addKey"), body: Some(body) }
    }
    /// `POST /v1.0/applications/{id}/removeKey` with the proof.
    pub fn remove_key(id: &str, key_id: &str, proof: &SecretString) -> GraphCall {
        let body = json!({ "keyId": key_id, "proof": proof.expose() });
        GraphCall {
            method: reqwest::Method::POST,
            path: format!("/v1.0/applications/{id}/removeKey"),
            body: Some(body),
        }
    }
}

/// Turns Graph's answer to `method url` (status and body) into the JSON it returned (`None` for
/// an empty body) or a remote error naming Graph's code and message, with a hint for the usual
/// statuses. No I/O, so every rule is tested on plain values.
pub fn interpret(method: &reqwest::Method, url: &str, status: u16, text: &str) -> Result<Option<Value>> {
    if (200..300).contains(&status) {
        if text.trim().is_empty() {
            return Ok(None);
        }
        return serde_json::from_str(text).map(Some).map_err(|_| {
            Error::remote(format!(
                "{method} {url}: HTTP {status} with a body that is not JSON: {}",
                crate::token::response::excerpt(text)
            ))
        });
    }
    let v: Option<Value> = serde_json::from_str(text).ok();
    let graph_code = graph_error_code(text);
    let (code, message) = match v.as_ref().and_then(|v| v.get("error")) {
        Some(e) => (
            graph_code.clone().unwrap_or_else(|| "unknown".into()),
            e.get("message").and_then(Value::as_str).unwrap_or("").to_string(),
        ),
        None => ("unknown".into(), crate::token::response::excerpt(text)),
    };
    let hint = match status {
        401 => "the Graph token was refused: request it for https://graph.microsoft.com/.default",
        403 => "the app lacks permission: PATCH needs Application.ReadWrite.OwnedBy or .All (`keycred manifest permission add MANIFEST --api graph --role Application.ReadWrite.OwnedBy`, then admin consent); addKey/removeKey need a valid proof",
        404 => "no such application: check the application (client) id and the tenant",
        _ => "see the Graph error above",
    };
    let status = reqwest::StatusCode::from_u16(status).map_or_else(|_| status.to_string(), |s| s.to_string());
    let e = Error::remote(format!("{method} {url}: HTTP {status}: {code}: {message}")).with_hint(hint);
    Err(match graph_code {
        Some(c) => e.with_graph_code(c),
        None => e,
    })
}

/// Graph's `error.code` in an error body, when it has one.
pub fn graph_error_code(text: &str) -> Option<String> {
    let v: Value = serde_json::from_str(text).ok()?;
    v.get("error")?.get("code")?.as_str().filter(|c| !c.is_empty()).map(str::to_string)
}

/// The resource a Graph token is requested for when Graph is at `graph_url`: that URL for a
/// national cloud (`https://graph.microsoft.us`), but Graph itself for a loopback URL, where the
/// emulator serves Graph and issues tokens for it.
pub fn token_resource(graph_url: &str) -> Result<String> {
    let url = url::Url::parse(graph_url.trim())
        .map_err(|e| Error::input(format!("Graph URL '{graph_url}' is not a URL ({e})")))?;
    Ok(if crate::authority::is_loopback_host(&url) {
        GRAPH_RESOURCE.to_string()
    } else {
        graph_url.trim().trim_end_matches('/').to_string()
    })
}

/// The keyId of the application's certificate that `sel` picks, if any.
pub fn key_id_of(app: &Application, sel: &crate::manifest::Selector) -> Option<String> {
    credentials_of(app).into_iter().find(|c| sel.matches(c)).and_then(|c| c.key_id)
}

/// A reqwest error in words users understand (timeout, connection, TLS).
pub(crate) fn describe_reqwest(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    format!("{kind}: {}", crate::token::chain(e))
}

/// How to change an application's certificates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// addKey/removeKey with a proof, falling back to PATCH when the application has no valid
    /// certificate left (Graph refuses addKey then).
    Auto,
    /// Always PATCH the whole array (needs Application.ReadWrite.*).
    Patch,
}

/// What was done, for reports.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    /// `addKey`, `removeKey` or `PATCH`.
    pub method: &'static str,
    /// The keyCredential added or removed.
    pub key_credential: Value,
}

/// The entries of an application, read like a manifest's.
pub fn credentials_of(app: &Application) -> Vec<crate::manifest::KeyCredential> {
    app.key_credentials
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.as_object().map(|o| crate::manifest::read_entry(i, o)))
        .collect()
}

/// Whether `cred`'s certificate is a currently valid credential of `app` (so it can sign a proof).
pub fn can_prove(app: &Application, cred: Option<&LoadedCredential>) -> bool {
    let now = crate::dates::now();
    let Some(cred) = cred else { return false };
    credentials_of(app).iter().any(|c| c.sha1() == Some(cred.cert.sha1()) && c.counts_as_valid_at(now))
}

/// Adds `new` to the application, by addKey (proof signed by `cred`) or PATCH.
pub async fn add_certificate(
    g: &GraphClient,
    app: &Application,
    cred: Option<&LoadedCredential>,
    new: &Certificate,
    display_name: Option<&str>,
    method: Method,
    proof_aud: &str,
) -> Result<Change> {
    new.ensure_usable("the new certificate", crate::dates::now())?;
    if credentials_of(app).iter().any(|c| c.sha1() == Some(new.sha1())) {
        return Err(Error::input(format!(
            "the certificate {} is already registered on application {}",
            new.thumbprint(),
            app.app_id
        )));
    }
    if method == Method::Auto && can_prove(app, cred) {
        let cred = cred.expect("can_prove checked it");
        let proof = proof_of_possession(cred, &app.id, proof_aud)?;
        let kc = g.add_key(&app.id, new, display_name, &proof).await?;
        return Ok(Change { method: "addKey", key_credential: kc });
    }
    let opts = crate::manifest::EntryOptions { display_name: display_name.map(str::to_string), ..Default::default() };
    let entry = Value::Object(crate::manifest::entry_for(new, crate::manifest::Format::MsGraph, &opts)?);
    let sha1 = new.sha1();
    g.update_key_credentials(&app.id, |before| {
        let mut after = before.to_vec();
        let present =
            before.iter().filter_map(Value::as_object).any(|o| crate::manifest::read_entry(0, o).sha1() == Some(sha1));
        if !present {
            after.push(entry.clone());
        }
        Ok(after)
    })
    .await?;
    Ok(Change { method: "PATCH", key_credential: entry })
}

/// Refuses removing `key_id` when it is the application's last currently valid certificate: the
/// app could no longer sign in, and Graph's addKey needs a valid one to recover.
pub fn ensure_not_locked_out(app: &Application, key_id: &str, now: time::OffsetDateTime) -> Result<()> {
    let creds = credentials_of(app);
    let is_target =
        |c: &crate::manifest::KeyCredential| c.key_id.as_deref().is_some_and(|k| k.eq_ignore_ascii_case(key_id));
    let target_valid = creds.iter().any(|c| is_target(c) && c.counts_as_valid_at(now));
    let others_valid = creds.iter().any(|c| !is_target(c) && c.counts_as_valid_at(now));
    if target_valid && !others_valid {
        return Err(Error::input(format!(
            "keyId {key_id} is the last currently valid certificate of application {}; removing it would lock the app out",
            app.app_id
        ))
        .with_hint("add the new certificate first, or allow the lock-out if that is intended"));
    }
    Ok(())
}

/// Removes the entry `key_id`, by removeKey (proof signed by `cred`) or PATCH. Refuses to remove
/// the last currently valid certificate unless `force`.
pub async fn remove_certificate(
    g: &GraphClient,
    app: &Application,
    cred: Option<&LoadedCredential>,
    key_id: &str,
    method: Method,
    proof_aud: &str,
    force: bool,
) -> Result<Change> {
    let now = crate::dates::now();
    let creds = credentials_of(app);
    let target = creds
        .iter()
        .find(|c| c.key_id.as_deref().is_some_and(|k| k.eq_ignore_ascii_case(key_id)))
        .ok_or_else(|| {
            Error::input(format!(
                "application {} has no keyCredential with keyId {key_id}; nothing was changed",
                app.app_id
            ))
            .with_hint("list them with `keycred graph list`")
        })?;
    let removed = app.key_credentials[target.index].clone();
    if !force {
        ensure_not_locked_out(app, key_id, now)?;
    }
    if method == Method::Auto && can_prove(app, cred) {
        let proof = proof_of_possession(cred.expect("can_prove checked it"), &app.id, proof_aud)?;
        g.remove_key(&app.id, key_id, &proof).await?;
        return Ok(Change { method: "removeKey", key_credential: removed });
    }
    let key_id = key_id.to_string();
    g.update_key_credentials(&app.id, |before| {
        Ok(before
            .iter()
            .filter(|v| !v.get("keyId").and_then(Value::as_str).is_some_and(|k| k.eq_ignore_ascii_case(&key_id)))
            .cloned()
            .collect())
    })
    .await?;
    Ok(Change { method: "PATCH", key_credential: removed })
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://graph.microsoft.com/v1.0/applications/x";

    #[test]
    fn answers_become_json_or_errors_naming_graphs_code() {
        let get = reqwest::Method::GET;
        assert_eq!(interpret(&get, URL, 200, r#"{"id":"x"}"#).unwrap(), Some(json!({"id": "x"})));
        assert_eq!(interpret(&get, URL, 204, "").unwrap(), None);
        let e = interpret(&get, URL, 200, "<html>").unwrap_err();
        assert_eq!(e.exit_code(), 3);
        assert!(e.message().contains("not JSON") && e.message().contains("<html>"), "{e}");
        let body = r#"{"error":{"code":"Request_ResourceNotFound","message":"Resource 'x' does not exist."}}"#;
        let e = interpret(&get, URL, 404, body).unwrap_err();
        assert_eq!(
            e.message(),
            format!("GET {URL}: HTTP 404 Not Found: Request_ResourceNotFound: Resource 'x' does not exist.")
        );
        assert!(e.hint().unwrap().contains("application (client) id"), "{:?}", e.hint());
        let e = interpret(&reqwest::Method::PATCH, URL, 403, "denied").unwrap_err();
        assert!(e.message().contains("HTTP 403 Forbidden: unknown: denied"), "{e}");
        assert!(e.hint().unwrap().contains("Application.ReadWrite"));
    }

    #[test]
    fn graph_tokens_are_for_the_cloud_s_graph_or_graph_itself_on_loopback() {
        assert_eq!(token_resource("https://graph.microsoft.us/").unwrap(), "https://graph.microsoft.us");
        assert_eq!(token_resource("http://127.0.0.1:8080").unwrap(), GRAPH_RESOURCE);
        assert_eq!(token_resource("http://localhost:1/").unwrap(), GRAPH_RESOURCE);
        assert_eq!(token_resource("not a url").unwrap_err().exit_code(), 2);
    }

    #[test]
    fn calls_are_built_without_io_and_never_show_the_proof() {
        let c = GraphCall::get_by_app_id("a'b");
        assert_eq!(c.path, "/v1.0/applications(appId='a''b')?$select=id,appId,keyCredentials");
        let proof = SecretString::new("eyJ.proof.sig");
        let c = GraphCall::remove_key("obj", "kid", &proof);
        assert_eq!(c.method, reqwest::Method::POST);
        assert_eq!(c.body, Some(json!({"keyId": "kid", "proof": "eyJ.proof.sig"})));
        assert!(!format!("{c:?}").contains("eyJ"), "{c:?}");
        let c = GraphCall::patch_key_credentials("obj", &[json!({"keyId": "k"})]);
        assert_eq!(
            (c.path.as_str(), c.body),
            ("/v1.0/applications/obj", Some(json!({"keyCredentials": [{"keyId": "k"}]})))
        );
    }
}
