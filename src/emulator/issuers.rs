//! External OIDC issuers: the ones the emulator plays itself (`--issuer NAME`, so a whole
//! secretless setup runs offline) and the way its token endpoint reaches any issuer's keys.
//!
//! An emulated issuer lives at `{base}/issuers/{NAME}`, with its own signing key (never the
//! tenant's: Entra does not accept its own tokens as federated ones), an OpenID discovery
//! document at `{issuer}/.well-known/openid-configuration` and its key set at `{issuer}/keys`.
//!
//! `POST {issuer}/token` mints a workload token: **an emulator-only test endpoint**, standing in
//! for the GitHub Actions runner or the kubelet that hands workloads their tokens; no Entra or
//! real issuer has it. It answers only when the emulator listens on loopback. Its body names
//! `subject`, and optionally `audience` (default `api://AzureADTokenExchange`), `lifetime`
//! (seconds, negative for an already expired token; default 300 as GitHub's) and `claims`
//! (added or replacing). A GitHub Actions subject (`repo:ORG/REPO:...`) gets the claims GitHub
//! puts beside it (`repository`, `repository_owner`, `ref`, `ref_type`, `environment`,
//! `job_workflow_ref`, `event_name`, `workflow`, `actor`, `run_id`...), a Kubernetes one
//! (`system:serviceaccount:NS:NAME`) the `kubernetes.io` claim of projected tokens.
//!
//! Keys of other issuers are fetched over HTTP ([`crate::fic::issuer`]): loopback hosts only
//! (the emulator reaches nothing else), https or http, five seconds at most, cached per issuer.

use super::discovery::modulus_exponent;
use super::{AppState, SharedState};
use crate::cert::{self, Certificate, KeySize, NewCertificate, PrivateKey, SignatureAlg, Validity};
use crate::fic::issuer::{fetch_keys, KeyCache};
use crate::http::{ReqwestTransport, TransportOptions};
use crate::{Error, Result};
use axum::body::Bytes;
use axum::extract::{Path as AxumPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;

/// How long the token endpoint waits for another issuer's discovery document and keys.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// The path under the emulator's base URL where its issuers live.
pub const PATH: &str = "/issuers/";

/// One emulated issuer.
pub struct Issuer {
    /// Its name (the last segment of its URL).
    pub name: String,
    key: PrivateKey,
    cert: Certificate,
}

/// The emulated issuers, and the cache of other issuers' keys.
pub struct Issuers {
    list: Vec<Issuer>,
    cache: KeyCache,
    transport: Option<ReqwestTransport>,
    /// The mint endpoint answers (the emulator listens on loopback only).
    pub mint_allowed: bool,
}

/// Checks an issuer name: 1 to 64 letters, digits, `-`, `_`, `.`.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name != "."
        && name != "..";
    if ok {
        Ok(())
    } else {
        Err(Error::input(format!("--issuer '{name}': not a usable issuer name"))
            .with_hint("use 1 to 64 letters, digits, '-', '_' or '.', for example --issuer github"))
    }
}

impl Issuers {
    /// Generates a key for each named issuer (blocking: RSA key generation).
    pub fn generate(names: &[String], mint_allowed: bool) -> Result<Self> {
        let mut list = Vec::new();
        for name in names {
            check_name(name)?;
            if list.iter().any(|i: &Issuer| i.name == *name) {
                continue;
            }
            let (cert, key) = cert::generate(&NewCertificate {
                subject: format!("CN=keycred emulated issuer {name}"),
                key_size: KeySize::Rsa2048,
                validity: Validity::Days(30),
            })?;
            list.push(Issuer { name: name.clone(), key, cert });
        }
        let transport = ReqwestTransport::new(&TransportOptions { timeout: FETCH_TIMEOUT, ca_file: None }).ok();
        Ok(Issuers { list, cache: KeyCache::default(), transport, mint_allowed })
    }

    /// The names, in the order given.
    pub fn names(&self) -> Vec<String> {
        self.list.iter().map(|i| i.name.clone()).collect()
    }

    /// The emulated issuer called `name`.
    pub fn by_name(&self, name: &str) -> Option<&Issuer> {
        self.list.iter().find(|i| i.name == name)
    }

    /// The emulated issuer whose URL `iss` is, under any of the emulator's base URLs.
    fn own(&self, base_urls: &[String], iss: &str) -> Option<&Issuer> {
        let name = base_urls.iter().find_map(|b| iss.strip_prefix(b.as_str())?.strip_prefix(PATH))?;
        self.by_name(name)
    }

    /// The key set of issuer `iss`: an emulated one's directly, any other's fetched (loopback
    /// only) or from the cache. The error says what failed.
    pub fn keys_for(&self, base_urls: &[String], iss: &str) -> std::result::Result<Value, String> {
        if let Some(i) = self.own(base_urls, iss) {
            return Ok(json!({"keys": [i.jwk()]}));
        }
        if let Some(set) = self.cache.get(iss) {
            return Ok(set);
        }
        let transport = self.transport.as_ref().ok_or("no HTTP client")?;
        let fetch = fetch_keys(transport, iss, true);
        // The token handlers run on the blocking pool, inside the server's runtime.
        let set = match tokio::runtime::Handle::try_current() {
            Ok(h) => h.block_on(fetch),
            Err(_) => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?
                .block_on(fetch),
        }?;
        self.cache.put(iss, set.clone());
        Ok(set)
    }
}

impl Issuer {
    fn kid(&self) -> String {
        self.cert.x5t()
    }

    /// Its public key as a JWK.
    pub fn jwk(&self) -> Value {
        let (n, e) = modulus_exponent(self.cert.der()).unwrap_or_default();
        json!({
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid(),
            "n": crate::thumbprint::b64url(&n), "e": crate::thumbprint::b64url(&e),
        })
    }

    /// Its OpenID discovery document, for the issuer URL `url`.
    pub fn discovery(&self, url: &str) -> Value {
        json!({
            "issuer": url,
            "jwks_uri": format!("{url}/keys"),
            "subject_types_supported": ["public", "pairwise"],
            "response_types_supported": ["id_token"],
            "claims_supported": ["sub", "aud", "exp", "iat", "iss", "jti", "nbf", "repository", "ref", "environment",
                                 "job_workflow_ref", "kubernetes.io"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid"],
        })
    }

    /// A workload token from this issuer at `url`, as the mint endpoint's `body` asks.
    pub fn mint(&self, url: &str, body: &Value, now: i64) -> std::result::Result<String, String> {
        let subject =
            body.get("subject").and_then(Value::as_str).filter(|s| !s.is_empty()).ok_or("'subject' is required")?;
        let audience = match body.get("audience") {
            None | Some(Value::Null) => json!(crate::fic::DEFAULT_AUDIENCE),
            Some(a @ (Value::String(_) | Value::Array(_))) => a.clone(),
            Some(_) => return Err("'audience' must be a string or an array of strings".into()),
        };
        let lifetime = match body.get("lifetime") {
            None | Some(Value::Null) => 300,
            Some(v) => {
                v.as_i64().filter(|l| l.abs() <= 86_400).ok_or("'lifetime' must be whole seconds, at most a day")?
            }
        };
        let mut claims = Map::new();
        claims.insert("jti".into(), json!(uuid::Uuid::new_v4().to_string()));
        claims.insert("sub".into(), json!(subject));
        claims.insert("aud".into(), audience);
        shaped_claims(subject, &mut claims);
        claims.insert("iss".into(), json!(url));
        let (start, end) = if lifetime >= 0 { (now, now + lifetime) } else { (now + lifetime - 60, now + lifetime) };
        claims.insert("nbf".into(), json!(start));
        claims.insert("exp".into(), json!(end));
        claims.insert("iat".into(), json!(start));
        match body.get("claims") {
            None | Some(Value::Null) => {}
            Some(Value::Object(extra)) => claims.extend(extra.clone()),
            Some(_) => return Err("'claims' must be an object".into()),
        }
        let mut header = Map::new();
        header.insert("kid".into(), json!(self.kid()));
        header.insert("x5t".into(), json!(self.kid()));
        crate::jwt::sign(&self.key, SignatureAlg::Rs256, header, &Value::Object(claims)).map_err(|e| e.to_string())
    }
}

/// The claims that go with a GitHub Actions or a Kubernetes service-account subject.
fn shaped_claims(subject: &str, claims: &mut Map<String, Value>) {
    if let Some(rest) = subject.strip_prefix("repo:") {
        let (repo, scope) = rest.split_once(':').unwrap_or((rest, ""));
        let owner = repo.split('/').next().unwrap_or(repo);
        let (git_ref, environment, event) = if let Some(b) = scope.strip_prefix("ref:") {
            (b.to_string(), None, "push")
        } else if let Some(e) = scope.strip_prefix("environment:") {
            ("refs/heads/main".to_string(), Some(e.to_string()), "push")
        } else if scope == "pull_request" {
            ("refs/pull/1/merge".to_string(), None, "pull_request")
        } else {
            ("refs/heads/main".to_string(), None, "push")
        };
        let ref_type = if git_ref.starts_with("refs/tags/") { "tag" } else { "branch" };
        claims.insert("ref".into(), json!(git_ref));
        claims.insert("sha".into(), json!("0000000000000000000000000000000000000000"));
        claims.insert("repository".into(), json!(repo));
        claims.insert("repository_owner".into(), json!(owner));
        claims.insert("run_id".into(), json!("1"));
        claims.insert("run_number".into(), json!("1"));
        claims.insert("run_attempt".into(), json!("1"));
        claims.insert("actor".into(), json!(owner));
        claims.insert("workflow".into(), json!("ci"));
        claims.insert("event_name".into(), json!(event));
        claims.insert("ref_type".into(), json!(ref_type));
        claims.insert("job_workflow_ref".into(), json!(format!("{repo}/.github/workflows/ci.yml@{git_ref}")));
        if let Some(e) = environment {
            claims.insert("environment".into(), json!(e));
        }
    } else if let Some(rest) = subject.strip_prefix("system:serviceaccount:") {
        let (ns, name) = rest.split_once(':').unwrap_or((rest, ""));
        claims.insert(
            "kubernetes.io".into(),
            json!({"namespace": ns, "serviceaccount": {"name": name, "uid": uuid::Uuid::new_v4().to_string()}}),
        );
    }
}

/// The emulated issuers' endpoints: discovery, keys, and the emulator-only mint endpoint.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/issuers/{name}/.well-known/openid-configuration", get(discovery))
        .route("/issuers/{name}/keys", get(keys))
        .route("/issuers/{name}/token", post(mint))
}

fn issuer_url(st: &AppState, name: &str) -> String {
    format!("{}{PATH}{name}", st.base_url)
}

fn oauth_error(status: StatusCode, error: &str, description: impl Into<String>) -> Response {
    (status, Json(json!({"error": error, "error_description": description.into()}))).into_response()
}

fn unknown(name: &str) -> Response {
    oauth_error(StatusCode::NOT_FOUND, "not_found", format!("this emulator plays no issuer named '{name}'"))
}

async fn discovery(State(st): SharedState, AxumPath(name): AxumPath<String>) -> Response {
    match st.issuers.by_name(&name) {
        Some(i) => Json(i.discovery(&issuer_url(&st, &name))).into_response(),
        None => unknown(&name),
    }
}

async fn keys(State(st): SharedState, AxumPath(name): AxumPath<String>) -> Response {
    match st.issuers.by_name(&name) {
        Some(i) => Json(json!({"keys": [i.jwk()]})).into_response(),
        None => unknown(&name),
    }
}

async fn mint(State(st): SharedState, AxumPath(name): AxumPath<String>, body: Bytes) -> Response {
    let Some(i) = st.issuers.by_name(&name) else { return unknown(&name) };
    if !st.issuers.mint_allowed {
        return oauth_error(
            StatusCode::FORBIDDEN,
            "access_denied",
            "the emulator mints workload tokens only when it listens on loopback",
        );
    }
    let body: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "the body must be a JSON object"),
    };
    let url = issuer_url(&st, &name);
    match i.mint(&url, &body, crate::dates::now().unix_timestamp()) {
        Ok(token) => Json(json!({"token": token, "issuer": url})).into_response(),
        Err(why) => oauth_error(StatusCode::BAD_REQUEST, "invalid_request", why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mints_tokens_shaped_like_the_issuers_it_stands_for() {
        let issuers = Issuers::generate(&["gh".into()], true).unwrap();
        let i = issuers.by_name("gh").unwrap();
        let url = "http://127.0.0.1:1/issuers/gh";
        let t =
            i.mint(url, &json!({"subject": "repo:octo-org/octo-repo:environment:Production"}), 1_800_000_000).unwrap();
        let d = crate::jwt::dangerous::decode(&t).unwrap();
        assert_eq!(d.claim_str("repository"), Some("octo-org/octo-repo"));
        assert_eq!(d.claim_str("environment"), Some("Production"));
        assert_eq!(d.claim_str("aud"), Some("api://AzureADTokenExchange"));
        assert_eq!(d.claim_time("exp"), Some(1_800_000_300.0));
        crate::jwks::verify(&d, &json!({"keys": [i.jwk()]}), "gh").unwrap();
        let k =
            i.mint(url, &json!({"subject": "system:serviceaccount:ns:sa", "lifetime": -600}), 1_800_000_000).unwrap();
        let d = crate::jwt::dangerous::decode(&k).unwrap();
        assert_eq!(d.claims["kubernetes.io"]["serviceaccount"]["name"], "sa");
        assert!(d.claim_time("exp").unwrap() < 1_800_000_000.0);
        assert!(i.mint(url, &json!({}), 0).is_err());
        assert!(check_name("../x").is_err() && check_name("github").is_ok());
    }
}
