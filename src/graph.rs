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
use crate::fleet::request::{self, Answer, GraphRequest};
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

/// Largest Graph answer read: a page of 999 applications, each with a few certificates
/// (about 1.5 KB of base64 each), stays well under it.
pub const MAX_GRAPH_ANSWER: usize = 64 * 1024 * 1024;

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
            .map_err(|e| Error::input(format!("--graph-url '{graph_url}' is not a URL ({e})")))?;
        check_transport(&url, "--graph-url")?;
        if url.path().trim_end_matches('/').eq_ignore_ascii_case("/v1.0") {
            url.set_path("/");
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(Error::input(format!("--graph-url '{graph_url}' has a path, query or fragment"))
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

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Result<Option<Value>> {
        let req = GraphRequest::new(method, format!("{}{path}", self.base), body.cloned());
        self.send(&req).await
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

    /// Lets the client get a new token when Graph answers 401 (the token expired during a long
    /// run); the request is then sent once more with it.
    pub fn with_renew(mut self, renew: Renew) -> Self {
        self.renew = Some(renew);
        self
    }

    fn bearer(&self) -> String {
        self.token.read().map(|t| t.expose().to_string()).unwrap_or_default()
    }

    /// The limiter in use (its counters feed progress and summaries).
    pub fn limiter(&self) -> &Arc<Limiter> {
        &self.limiter
    }

    /// Sends `req` with its `client-request-id`; 429 and 503 are waited out (`Retry-After`, else
    /// jittered backoff) and retried up to [`MAX_ATTEMPTS`] times in all. The same id is kept
    /// across retries, as Graph's guidance asks, so one logical request has one id.
    pub async fn send(&self, req: &GraphRequest) -> Result<Option<Value>> {
        let what = req.describe();
        let mut attempt = 0;
        let mut renewed = false;
        loop {
            let answer = {
                let _slot = self.limiter.acquire().await;
                let mut r = self
                    .http
                    .request(req.method.clone(), &req.url)
                    .bearer_auth(self.bearer())
                    .header("client-request-id", &req.client_request_id)
                    .header("return-client-request-id", "true");
                if let Some(b) = &req.body {
                    r = r.json(b);
                }
                let resp = r.send().await.map_err(|e| {
                    Error::remote(format!(
                        "{what}: {} (client-request-id {})",
                        crate::graph::describe_reqwest(&e),
                        req.client_request_id
                    ))
                    .with_hint("check --graph-url and the network; the emulator prints its URL when it starts")
                })?;
                let status = resp.status();
                let retry_after =
                    resp.headers().get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).map(str::to_string);
                let text = crate::token::read_limited_to(resp, MAX_GRAPH_ANSWER).await.map_err(|e| match e {
                    crate::token::ReadError::TooLarge => Error::remote(format!(
                        "{what}: HTTP {status} with a body over {MAX_GRAPH_ANSWER} bytes; not read"
                    ))
                    .with_hint("check --graph-url: it must be Microsoft Graph or the keycred emulator"),
                    crate::token::ReadError::Transport(e) => {
                        Error::remote(format!("{what}: reading the answer: {}", crate::graph::describe_reqwest(&e)))
                    }
                })?;
                if status.as_u16() == 401 && !renewed {
                    if let Some(renew) = &self.renew {
                        renewed = true;
                        let fresh = renew().await?;
                        if let Ok(mut t) = self.token.write() {
                            *t = fresh;
                        }
                        continue;
                    }
                }
                request::interpret(req, status.as_u16(), retry_after.as_deref(), &text)?
            };
            match answer {
                Answer::Done(v) => {
                    self.limiter.succeeded();
                    return Ok(v);
                }
                Answer::Retry(asked) => {
                    attempt += 1;
                    if attempt >= MAX_ATTEMPTS {
                        return Err(Error::remote(format!(
                            "{what}: still throttled or unavailable after {MAX_ATTEMPTS} attempts (client-request-id {})",
                            req.client_request_id
                        ))
                        .with_hint("Graph is throttling this application: run again later, or with a lower --concurrency"));
                    }
                    let wait = request::backoff(attempt - 1, asked, rand::random::<f64>());
                    self.limiter.throttled(wait);
                    tokio::time::sleep(wait).await;
                }
            }
        }
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
        let mut v = self.call(reqwest::Method::POST, &format!("/v1.0/applications/{id}/addKey"), Some(&body)).await?;
        // Graph's answer is the keyCredential plus OData annotations (`@odata.context`): keep
        // the keyCredential, the part that is keycred's stable output.
        if let Some(Value::Object(o)) = v.as_mut() {
            o.retain(|k, _| !k.starts_with("@odata."));
        }
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

/// The resource to ask Graph tokens for when talking to `graph_url`: Graph itself for a loopback
/// URL (the emulator serves Graph on its own address but issues tokens for Graph), else the
/// URL's host (national clouds have their own Graph).
pub fn token_resource(graph_url: &str) -> Result<String> {
    let url = url::Url::parse(graph_url.trim())
        .map_err(|e| Error::input(format!("--graph-url '{graph_url}' is not a URL ({e})")))?;
    Ok(if crate::authority::is_loopback_host(&url) {
        GRAPH_RESOURCE.to_string()
    } else {
        graph_url.trim().trim_end_matches('/').to_string()
    })
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
    let others_valid = creds.iter().any(|c| c.index != target.index && c.counts_as_valid_at(now));
    if !force && target.counts_as_valid_at(now) && !others_valid {
        return Err(Error::input(format!(
            "keyId {key_id} is the last currently valid certificate of application {}; removing it would lock the app out",
            app.app_id
        ))
        .with_hint("add the new certificate first, or pass --force if that is intended"));
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
