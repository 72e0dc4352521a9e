//! A local emulator of the Entra ID token endpoint, for tests, `keycred demo` and users' CI.
//!
//! Applications are manifest files (their `appId` and `keyCredentials`), re-read when they change
//! on disk, so a rotation script sees its additions and removals at the next request. Client
//! assertions are validated with Entra's error codes, statuses and texts ([`errors`]); tokens are
//! signed RS256 with a key generated at start and published in the JWKS.
//!
//! ```no_run
//! use keycred::emulator::{start_blocking, EmulatorConfig};
//! let emu = start_blocking(EmulatorConfig::new(vec!["app.json".into()]))?;
//! println!("{}", emu.token_endpoint(keycred::authority::EndpointVersion::V2));
//! # Ok::<(), keycred::Error>(())
//! ```

mod apps;
mod authorize;
mod discovery;
pub mod errors;
mod generate;
mod graph;
mod serve;
mod signins;
mod tenant;
mod throttle;
mod tls;
mod token;

pub use generate::{generate_tenant, TenantSummary};
pub use graph::odata::{query_matches as graph_query_matches, QueryError as GraphQueryError};

pub use crate::authority::EndpointVersion;
pub use apps::{AccessKind, Api, App, IdTyp, Permission, RequiredAccess, TokenVersion};
pub use serve::{READ_TIMEOUT, SHUTDOWN_GRACE};
pub use tenant::User;

use crate::cert::{self, Certificate, KeySize, NewCertificate, PrivateKey, Validity};
use crate::secret::SecretString;
use crate::{Error, Result};
pub use apps::Registry;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use errors::{Refusal, RequestLog};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use tenant::Tenant;

/// Largest request body accepted (larger ones get 413).
pub const MAX_BODY: usize = 1024 * 1024;
/// Longest resource name (URI or app id) a request may give; longer ones name no resource.
pub const MAX_RESOURCE: usize = 2048;

/// How to run the emulator.
#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    /// Manifest files, one application each.
    pub manifests: Vec<PathBuf>,
    /// A directory of manifests (every `*.json`), re-listed when it changes.
    pub apps_dir: Option<PathBuf>,
    /// Tenant id (a GUID).
    pub tenant: String,
    /// `(resource, roles)`: app roles put in tokens for that resource; also makes the resource known.
    pub grants: Vec<(String, Vec<String>)>,
    /// Client secret accepted for every application (`client_secret`), if any.
    pub secret: Option<SecretString>,
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// Serve https with a generated CA and server certificate.
    pub tls: bool,
    /// Allow a non-loopback `listen` address.
    pub allow_remote: bool,
    /// Where to write the CA file with `tls`; a fresh temporary directory (removed at shutdown)
    /// when `None`.
    pub state_dir: Option<PathBuf>,
    /// One line per request on stderr.
    pub log: bool,
    /// Apps an administrator has consented to at start (`--consented APPID`).
    pub consented: Vec<String>,
    /// Users (`UPN` or `UPN=Display Name`); one demo administrator when empty.
    pub users: Vec<String>,
    /// Domains of the tenant besides its initial `{name}.onmicrosoft.com` one.
    pub domains: Vec<String>,
    /// The authorize and admin-consent endpoints answer at once, as if the first user had
    /// signed in and clicked Accept (for scripts and tests).
    pub auto_consent: bool,
    /// Lifetime of authorization codes, seconds (Entra: about 10 minutes).
    pub code_lifetime: i64,
    /// Lifetime of user access tokens, seconds; `None` draws 60 to 90 minutes, as Entra does.
    /// Tests of expiry give it a value of zero or less.
    pub user_token_lifetime: Option<i64>,
    /// How long a client has to send its request headers, and then its body, before the
    /// connection is closed ([`READ_TIMEOUT`] by default).
    pub read_timeout: std::time::Duration,
    /// Graph requests per second per client (`--throttle`); more are answered 429.
    pub throttle: Option<f64>,
    /// The tenant's default app management policy (`--app-policy`): its body as served, and
    /// what it restricts.
    pub app_policy: Option<(serde_json::Value, crate::policy::Policy)>,
}

impl EmulatorConfig {
    /// Defaults: a random tenant, `127.0.0.1:0`, plain http, no grants, no secret, logging on.
    pub fn new(manifests: Vec<PathBuf>) -> Self {
        EmulatorConfig {
            manifests,
            apps_dir: None,
            tenant: uuid::Uuid::new_v4().to_string(),
            grants: Vec::new(),
            secret: None,
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            tls: false,
            allow_remote: false,
            state_dir: None,
            log: true,
            consented: Vec::new(),
            users: Vec::new(),
            domains: Vec::new(),
            auto_consent: false,
            code_lifetime: 600,
            user_token_lifetime: None,
            read_timeout: READ_TIMEOUT,
            throttle: None,
            app_policy: None,
        }
    }
}

/// Parses `RESOURCE=ROLE[,ROLE...]` (as `--grant` takes it).
pub fn parse_grant(s: &str) -> Result<(String, Vec<String>)> {
    let bad = || {
        Error::input(format!("--grant '{s}': expected RESOURCE=ROLE[,ROLE...]"))
            .with_hint("for example --grant https://graph.microsoft.com=Application.ReadWrite.OwnedBy,User.Read.All")
    };
    let (resource, roles) = s.rsplit_once('=').ok_or_else(bad)?;
    let resource = resource.trim();
    let roles: Vec<String> = roles.split(',').map(str::trim).filter(|r| !r.is_empty()).map(str::to_string).collect();
    if resource.is_empty() || roles.is_empty() {
        return Err(bad());
    }
    Ok((resource.to_string(), roles))
}

/// Shared state of a running emulator: the directory (applications and resources), the tenant
/// (names, users, consent, grants in flight) and the token-signing key. Graph routes are served
/// on the same state.
pub struct AppState {
    tenant: String,
    registry: Registry,
    directory: Tenant,
    grants: Vec<(String, Vec<String>)>,
    secret: Option<SecretString>,
    signing_key: PrivateKey,
    signing_cert: Certificate,
    kid: String,
    log: bool,
    /// `scheme://127.0.0.1:PORT`, without trailing slash: where clients reach the emulator, and
    /// a name of Microsoft Graph (the Graph resource id of a cloud registered with the emulator).
    base_url: String,
    /// `base_url` and its other loopback spelling (`localhost` for `127.0.0.1`): the only hosts
    /// a client assertion's `aud` may name.
    base_urls: Vec<String>,
    auto_consent: bool,
    code_lifetime: i64,
    user_token_lifetime: Option<i64>,
    throttle: Option<throttle::Throttle>,
    /// Drawn at start: the key of the tokens binding consent forms to their pages.
    form_key: [u8; 32],
    /// The tenant's default app management policy, when one is given.
    app_policy: Option<(serde_json::Value, crate::policy::Policy)>,
    /// Each credential's latest sign-in, for Graph's credential activity report.
    sign_ins: signins::SignIns,
}

impl AppState {
    /// Whether `resource` is the emulator's own base URL (with or without trailing slash; by
    /// `localhost` too, which its TLS certificate names).
    fn is_own_url(&self, resource: &str) -> bool {
        let r = resource.trim_end_matches('/');
        self.base_urls.iter().any(|b| r.eq_ignore_ascii_case(b))
    }

    /// Whether `resource` names Microsoft Graph: its URI or app id, or the emulator's base URL.
    fn is_graph(&self, resource: &str) -> bool {
        self.is_own_url(resource) || token::resource_app_id(resource) == token::GRAPH_APP_ID
    }

    /// The emulated tenant id.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }
    /// The manifest files backing the applications.
    pub fn manifest_paths(&self) -> Vec<PathBuf> {
        self.registry.paths()
    }

    /// The application with this client id, re-read from its manifest if the file changed.
    pub fn app(&self, client_id: &str) -> Option<Arc<App>> {
        self.registry.find(client_id)
    }

    /// The tenant's applications and resources.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The emulator's own base URL (`http://127.0.0.1:PORT`), never the request's `Host`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    fn is_own_tenant(&self, t: &str) -> bool {
        self.directory.is_named(t)
    }

    /// Accepts the emulator's tenant (its id or domains), `common` and `organizations`; refuses
    /// other GUIDs and DNS names with 90002 and anything else with 900023.
    fn check_tenant(&self, t: &str) -> std::result::Result<(), Refusal> {
        if self.is_own_tenant(t) || is_multi_tenant(t) {
            return Ok(());
        }
        let dns = t.contains('.')
            && t.len() <= 253
            && t.split('.')
                .all(|l| !l.is_empty() && l.len() <= 63 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        if uuid::Uuid::parse_str(t).is_ok() || dns || t.eq_ignore_ascii_case("consumers") {
            Err(Refusal::tenant_not_found(t))
        } else {
            Err(Refusal::tenant_malformed(t))
        }
    }

    /// The resource `identifier` names: an app of the tenant, a built-in one (the emulator's own
    /// base URL names Microsoft Graph), or one known only from `--grant` (a v1 resource with a
    /// derived app id).
    pub fn resource(&self, identifier: &str) -> Option<Arc<Api>> {
        // Resource names are kept with codes and refresh tokens: none is longer than this (a
        // trailing run of `/` would otherwise still name a `--grant` resource).
        if identifier.len() > MAX_RESOURCE {
            return None;
        }
        let named = if self.is_own_url(identifier) { token::GRAPH_APP_ID } else { identifier };
        if let Some(api) = self.registry.resource(named) {
            return Some(api);
        }
        self.grants.iter().any(|(r, _)| token::same_resource(r, identifier)).then(|| {
            Arc::new(Api {
                app_id: token::resource_app_id(identifier),
                display_name: identifier.trim_end_matches('/').to_string(),
                identifier_uris: vec![identifier.trim_end_matches('/').to_string()],
                token_version: TokenVersion::V1,
                scopes: Vec::new(),
                app_roles: Vec::new(),
                builtin: true,
                idtyp: apps::IdTyp::Never,
            })
        })
    }

    /// Roles `client` holds on `api`: the app role assignments consent made, then the `--grant`
    /// shortcut's roles for that resource (a grant for the emulator's own URL is one for Graph).
    fn roles_for(&self, api: &Api, client_id: &str) -> Vec<String> {
        let mut roles = self.directory.roles(client_id, api);
        for (r, rs) in &self.grants {
            let r = if self.is_own_url(r) { token::GRAPH_APP_ID } else { r.as_str() };
            if api.is_named(r) || token::same_resource(r, &api.app_id) {
                for role in rs {
                    if !roles.contains(role) {
                        roles.push(role.clone());
                    }
                }
            }
        }
        roles
    }

    /// The base URL for discovery documents and its host: one of the emulator's own configured
    /// names, the one the client addressed (a client that called `localhost` is sent there),
    /// else the configured base URL. The `Host` header only picks among those names: a forged
    /// one never reaches a document, whose `token_endpoint` and `jwks_uri` clients trust.
    fn request_base(&self, headers: &HeaderMap, uri: &Uri) -> (String, String) {
        let asked = uri
            .authority()
            .map(|a| a.as_str().to_string())
            .or_else(|| headers.get(axum::http::header::HOST).and_then(|h| h.to_str().ok()).map(str::to_string));
        let host_of = |b: &str| b.split_once("://").map_or(String::new(), |(_, h)| h.to_string());
        let base = asked
            .and_then(|a| self.base_urls.iter().find(|b| host_of(b).eq_ignore_ascii_case(&a)))
            .unwrap_or(&self.base_url)
            .clone();
        let host = host_of(&base);
        (base, host)
    }
}

/// `common` and `organizations`: authorities that name no tenant.
fn is_multi_tenant(t: &str) -> bool {
    t.eq_ignore_ascii_case("common") || t.eq_ignore_ascii_case("organizations")
}

/// Validates a client assertion exactly as the token endpoint does, for an application whose
/// `keyCredentials` are `creds`, posted to `endpoint` (the only accepted `aud`). Public so that
/// fuzzing and embedders can drive the validation without HTTP.
pub fn verify_client_assertion(
    creds: &[crate::manifest::KeyCredential],
    assertion: &str,
    client_id: &str,
    endpoint: &str,
    now: time::OffsetDateTime,
) -> std::result::Result<(), Refusal> {
    token::verify_assertion(creds, assertion, client_id, endpoint, now)
}

/// What every handler extracts: the emulator's shared state.
pub(crate) type SharedState = State<Arc<AppState>>;

/// Builds the router for `state`: every endpoint the emulator serves, in one place.
pub fn router(state: Arc<AppState>) -> Router {
    router_with(state, READ_TIMEOUT)
}

fn router_with(state: Arc<AppState>, read_timeout: std::time::Duration) -> Router {
    let log = state.log;
    Router::new()
        .route("/{tenant}/oauth2/token", post(token_v1).get(token_get))
        .route("/{tenant}/oauth2/v2.0/token", post(token_v2).get(token_get))
        .route("/{tenant}/oauth2/authorize", get(authorize::authorize_v1).post(authorize::decide_v1))
        .route("/{tenant}/oauth2/v2.0/authorize", get(authorize::authorize_v2).post(authorize::decide_v2))
        .route("/{tenant}/v2.0/adminconsent", get(authorize::admin_consent).post(authorize::decide_admin_consent))
        .route(
            "/{tenant}/adminconsent",
            get(authorize::admin_consent_legacy).post(authorize::decide_admin_consent_legacy),
        )
        .route("/{tenant}/v2.0/.well-known/openid-configuration", get(oidc_v2))
        .route("/{tenant}/.well-known/openid-configuration", get(oidc_v1))
        .route("/{tenant}/discovery/v2.0/keys", get(jwks))
        .route("/{tenant}/discovery/keys", get(jwks))
        .route("/common/discovery/instance", get(instance))
        .merge(graph::routes())
        .fallback(graph::fallback)
        .method_not_allowed_fallback(graph::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state.clone(), graph::unserved::layer))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(move |req: Request, next: Next| body_deadline(read_timeout, req, next)))
        .layer(axum::middleware::from_fn(move |req: Request, next: Next| log_request(log, req, next)))
        .with_state(state)
}

/// Runs `f` on the blocking pool: request handling reads manifest files, and file I/O never
/// runs on the async workers (a slow or odd file must not stall every other request).
pub(super) async fn blocking(f: impl FnOnce() -> Response + Send + 'static) -> Response {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

async fn token_v1(
    State(st): SharedState,
    Path(t): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    blocking(move || token::handle(&st, &t, EndpointVersion::V1, uri.path(), &headers, &body)).await
}

async fn token_v2(
    State(st): SharedState,
    Path(t): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    blocking(move || token::handle(&st, &t, EndpointVersion::V2, uri.path(), &headers, &body)).await
}

/// A GET on a token endpoint: Entra's 400 AADSTS900561, in its JSON error shape.
async fn token_get(headers: HeaderMap) -> Response {
    Refusal::post_only().into_response(token::correlation_header(&headers), None)
}

fn discovery_doc(st: &AppState, t: &str, headers: &HeaderMap, uri: &Uri, v2: bool) -> Response {
    if let Err(e) = st.check_tenant(t) {
        return e.into_response(None, None);
    }
    let (base, _) = st.request_base(headers, uri);
    Json(discovery::openid_configuration(st, &base, t, v2)).into_response()
}

async fn oidc_v2(State(st): SharedState, Path(t): Path<String>, uri: Uri, headers: HeaderMap) -> Response {
    discovery_doc(&st, &t, &headers, &uri, true)
}

async fn oidc_v1(State(st): SharedState, Path(t): Path<String>, uri: Uri, headers: HeaderMap) -> Response {
    discovery_doc(&st, &t, &headers, &uri, false)
}

async fn jwks(State(st): SharedState, Path(t): Path<String>) -> Response {
    if let Err(e) = st.check_tenant(&t) {
        return e.into_response(None, None);
    }
    Json(serde_json::json!({ "keys": [discovery::jwk(&st)] })).into_response()
}

async fn instance(
    State(st): SharedState,
    uri: Uri,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (base, host) = st.request_base(&headers, &uri);
    Json(discovery::instance_discovery(&base, &host, q.get("authorization_endpoint").map(String::as_str)))
        .into_response()
}

/// Reads the request body within `timeout` (a client that announces a body and sends it byte by
/// byte, or never, is answered 408 and disconnected), at most [`MAX_BODY`] bytes (413).
async fn body_deadline(timeout: std::time::Duration, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, MAX_BODY)).await {
        Err(_) => (
            StatusCode::REQUEST_TIMEOUT,
            [(axum::http::header::CONNECTION, "close")],
            "request body not received in time",
        )
            .into_response(),
        // Over the limit (or the client went away mid-body).
        Ok(Err(_)) => (StatusCode::PAYLOAD_TOO_LARGE, [(axum::http::header::CONNECTION, "close")], "").into_response(),
        Ok(Ok(bytes)) => next.run(Request::from_parts(parts, axum::body::Body::from(bytes))).await,
    }
}

/// One line per request: method, path, client id, status, AADSTS code. Never a body.
async fn log_request(log: bool, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let resp = next.run(req).await;
    if log {
        let info = resp.extensions().get::<RequestLog>().cloned().unwrap_or_default();
        let status = resp.status();
        let outcome = if status.is_success() { "ok" } else { status.canonical_reason().unwrap_or("error") };
        let client = info.client_id.map(|c| format!(" client_id={c:?}")).unwrap_or_default();
        let code = info.code.map(|c| format!(" AADSTS{c}")).unwrap_or_default();
        eprintln!("keycred emulate: {method} {path}{client} -> {} {outcome}{code}", status.as_u16());
    }
    if resp.status() == StatusCode::PAYLOAD_TOO_LARGE {
        if path.starts_with("/v1.0/") {
            return graph::graph_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Request_BadRequest",
                "The request body is over 1 MB, the largest this emulator reads.",
            );
        }
        return (StatusCode::PAYLOAD_TOO_LARGE, "request body over 1 MB").into_response();
    }
    resp
}

/// What a running emulator tells its users.
#[derive(Clone, Debug)]
pub struct EmulatorInfo {
    base_url: String,
    tenant: String,
    ca_file: Option<PathBuf>,
    signing_cert: Certificate,
    domains: Vec<String>,
    users: Vec<User>,
    apps: Vec<(String, String)>,
}

impl EmulatorInfo {
    /// `http://127.0.0.1:PORT` (or `https://...` with TLS), without trailing slash: the authority.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }
    /// The tenant id.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }
    /// The CA certificate file to trust (with TLS).
    pub fn ca_file(&self) -> Option<&std::path::Path> {
        self.ca_file.as_deref()
    }
    /// The token-signing certificate (its key is the JWKS key).
    pub fn signing_certificate(&self) -> &Certificate {
        &self.signing_cert
    }
    /// PKCS#1 DER of the token-signing public key, for verifying issued tokens.
    pub fn jwks_public_key(&self) -> &[u8] {
        self.signing_cert.rsa_public_key().unwrap_or_default()
    }
    /// `{base}/{tenant}/{path}`: every endpoint URL of the emulator's tenant.
    fn tenant_url(&self, path: &str) -> String {
        format!("{}/{}/{path}", self.base_url, self.tenant)
    }
    /// The token endpoint of the emulator's tenant.
    pub fn token_endpoint(&self, v: EndpointVersion) -> String {
        self.tenant_url(match v {
            EndpointVersion::V1 => "oauth2/token",
            EndpointVersion::V2 => "oauth2/v2.0/token",
        })
    }
    /// The JWKS URL.
    pub fn jwks_uri(&self) -> String {
        self.tenant_url("discovery/v2.0/keys")
    }
    /// The tenant's domains: the initial `*.onmicrosoft.com` one first.
    pub fn domains(&self) -> &[String] {
        &self.domains
    }
    /// The tenant's users.
    pub fn users(&self) -> &[User] {
        &self.users
    }
    /// `(appId, display name)` of every application served at start, sorted by appId.
    pub fn apps(&self) -> &[(String, String)] {
        &self.apps
    }
    /// The Microsoft Graph base URL to give `keycred graph --graph-url`: the emulator itself.
    pub fn graph_url(&self) -> &str {
        &self.base_url
    }
    /// The authorize endpoint (`/{tenant}/oauth2/authorize`, or `/oauth2/v2.0/authorize`).
    pub fn authorize_endpoint(&self, v: EndpointVersion) -> String {
        self.tenant_url(match v {
            EndpointVersion::V1 => "oauth2/authorize",
            EndpointVersion::V2 => "oauth2/v2.0/authorize",
        })
    }
    /// The v2 admin-consent endpoint (`/{tenant}/v2.0/adminconsent`).
    pub fn admin_consent_endpoint(&self) -> String {
        self.tenant_url("v2.0/adminconsent")
    }
}

/// A directory removed when dropped (the CA file's home when none was configured).
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running emulator on the caller's runtime. Stops on [`EmulatorHandle::shutdown`] or drop.
pub struct EmulatorHandle {
    info: EmulatorInfo,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    _temp: Option<TempDir>,
}

impl std::ops::Deref for EmulatorHandle {
    type Target = EmulatorInfo;
    fn deref(&self) -> &EmulatorInfo {
        &self.info
    }
}

impl EmulatorHandle {
    /// What the emulator tells its users.
    pub fn info(&self) -> &EmulatorInfo {
        &self.info
    }
    /// Stops accepting, lets in-flight requests finish, and waits for the server to end.
    pub async fn shutdown(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for EmulatorHandle {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

fn check_config(cfg: &EmulatorConfig) -> Result<()> {
    if uuid::Uuid::parse_str(&cfg.tenant).is_err() {
        return Err(Error::input(format!("--tenant '{}': not a GUID", cfg.tenant))
            .with_hint("give the tenant as a GUID such as 72f988bf-86f1-41af-91ab-2d7cd011db47, or omit it"));
    }
    if let Some(rate) = cfg.throttle {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(Error::input(format!("--throttle {rate}: not a positive number of requests per second"))
                .with_hint("for example --throttle 5 (five Graph requests per second per client)"));
        }
    }
    if !cfg.listen.ip().is_loopback() && !cfg.allow_remote {
        return Err(Error::input(format!("--listen {}: not a loopback address", cfg.listen)).with_hint(
            "the emulator hands out tokens to anyone who can reach it; listen on 127.0.0.1 or add --allow-remote",
        ));
    }
    Ok(())
}

/// The initial domain of the tenant: `{name}.onmicrosoft.com`, with a name derived from the
/// tenant id so that two emulators differ.
pub fn initial_domain(tenant: &str) -> String {
    let short: String = tenant.chars().filter(|c| c.is_ascii_hexdigit()).take(8).collect();
    format!("keycred{}.onmicrosoft.com", short.to_ascii_lowercase())
}

/// The tenant's names and users from the configuration.
fn tenant_of(cfg: &EmulatorConfig) -> Result<Tenant> {
    let initial = initial_domain(&cfg.tenant);
    let mut domains = vec![initial.clone()];
    for d in &cfg.domains {
        let d = d.trim().trim_end_matches('.').to_ascii_lowercase();
        let ok = d.contains('.')
            && d.split('.').all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        if !ok {
            return Err(Error::input(format!("--domain '{d}': not a DNS name"))
                .with_hint("give a domain such as contoso.example"));
        }
        if !domains.contains(&d) {
            domains.push(d);
        }
    }
    let user_domain = domains.get(1).unwrap_or(&initial).clone();
    let mut users = Vec::new();
    for spec in &cfg.users {
        let u = User::parse(spec, &user_domain).map_err(|m| {
            Error::input(m).with_hint("for example --user adele@contoso.example or --user \"megan=Megan Bowen\"")
        })?;
        if !users.iter().any(|x: &User| x.upn.eq_ignore_ascii_case(&u.upn)) {
            users.push(u);
        }
    }
    if users.is_empty() {
        users.push(User::parse(&format!("admin@{user_domain}=Emulator Admin"), &user_domain).map_err(Error::input)?);
    }
    Ok(Tenant::new(&cfg.tenant, domains, users))
}

/// Starts the emulator on the current tokio runtime.
pub async fn start(cfg: EmulatorConfig) -> Result<EmulatorHandle> {
    check_config(&cfg)?;
    let (registry, directory) = load_tenant(&cfg)?;
    let (signing_cert, signing_key) = signing_identity().await?;
    let (tcp, shown) = bind(&cfg).await?;
    let (tls, ca_file, temp) = tls_setup(&cfg)?;

    let kid = signing_cert.x5t();
    let scheme = if cfg.tls { "https" } else { "http" };
    let base_url = format!("{scheme}://{shown}");
    let mut base_urls = vec![base_url.clone()];
    if shown.ip().is_loopback() {
        base_urls.push(format!("{scheme}://localhost:{}", shown.port()));
    }
    let state = Arc::new(AppState {
        tenant: cfg.tenant.to_ascii_lowercase(),
        registry,
        directory,
        base_urls,
        auto_consent: cfg.auto_consent,
        code_lifetime: cfg.code_lifetime,
        user_token_lifetime: cfg.user_token_lifetime,
        grants: cfg.grants.clone(),
        secret: cfg.secret.clone(),
        signing_key,
        signing_cert: signing_cert.clone(),
        kid,
        log: cfg.log,
        base_url: base_url.clone(),
        throttle: cfg.throttle.map(throttle::Throttle::new),
        form_key: rand::random(),
        app_policy: cfg.app_policy.clone(),
        sign_ins: signins::SignIns::default(),
    });
    let app = router_with(state.clone(), cfg.read_timeout);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = spawn_server(tcp, tls, app, cfg.read_timeout, stop_rx)?;
    Ok(EmulatorHandle {
        info: EmulatorInfo {
            base_url,
            tenant: state.tenant.clone(),
            ca_file,
            signing_cert,
            domains: state.directory.domains.clone(),
            users: state.directory.users.clone(),
            apps: state.registry.list().iter().map(|a| (a.app_id.clone(), a.name().to_string())).collect(),
        },
        stop: Some(stop_tx),
        task: Some(task),
        _temp: temp,
    })
}

/// Loads the served applications and the tenant's directory, with the `--consented` grants given.
fn load_tenant(cfg: &EmulatorConfig) -> Result<(Registry, Tenant)> {
    let registry = Registry::load(&cfg.manifests, cfg.apps_dir.as_deref(), cfg.log)?;
    let directory = tenant_of(cfg)?;
    for id in &cfg.consented {
        let app = registry.find(id).ok_or_else(|| {
            Error::input(format!("--consented {id}: no application with this appId"))
                .with_hint("give the appId of an application whose manifest the emulator serves")
        })?;
        directory.admin_consent(&app, &registry);
    }
    Ok((registry, directory))
}

/// Generates the token-signing certificate and key, off the async runtime (RSA generation is slow).
async fn signing_identity() -> Result<(Certificate, PrivateKey)> {
    tokio::task::spawn_blocking(|| {
        cert::generate(&NewCertificate {
            subject: "CN=keycred emulator token signing".into(),
            key_size: KeySize::Rsa2048,
            validity: Validity::Days(30),
        })
    })
    .await
    .map_err(|e| Error::internal(format!("key generation task failed: {e}")))?
}

/// Binds the listen address; returns the listener and the address to show (loopback for a wildcard).
async fn bind(cfg: &EmulatorConfig) -> Result<(tokio::net::TcpListener, SocketAddr)> {
    let tcp = tokio::net::TcpListener::bind(cfg.listen).await.map_err(|e| {
        Error::input(format!("cannot listen on {}: {e}", cfg.listen))
            .with_hint("choose another --listen address or port (port 0 picks a free one)")
    })?;
    let local = tcp.local_addr().map_err(|e| Error::internal(format!("no local address: {e}")))?;
    let shown =
        if local.ip().is_unspecified() { SocketAddr::new(Ipv4Addr::LOCALHOST.into(), local.port()) } else { local };
    Ok((tcp, shown))
}

/// With `--tls`, generates the server certificate and writes its CA file (to the state directory,
/// else a temporary one removed on shutdown); returns the TLS config, the CA file and that temporary directory.
#[allow(clippy::type_complexity)]
fn tls_setup(
    cfg: &EmulatorConfig,
) -> Result<(Option<Arc<tokio_rustls::rustls::ServerConfig>>, Option<PathBuf>, Option<TempDir>)> {
    if !cfg.tls {
        return Ok((None, None, None));
    }
    let material = tls::generate()?;
    let mut temp = None;
    let dir = match &cfg.state_dir {
        Some(d) => d.clone(),
        None => {
            let d = std::env::temp_dir().join(format!("keycred-emulator-{}", uuid::Uuid::new_v4()));
            temp = Some(TempDir(d.clone()));
            d
        }
    };
    crate::fsio::create_private_dir(&dir)?;
    let path = dir.join("emulator-ca.pem");
    crate::fsio::atomic_write(&path, material.ca_pem.as_bytes(), Some(0o644))?;
    Ok((Some(material.config), Some(path), temp))
}

/// Spawns the server task, over TLS when a config is given, stopping when `stop_rx` fires.
fn spawn_server(
    tcp: tokio::net::TcpListener,
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    app: Router,
    read_timeout: std::time::Duration,
    stop_rx: tokio::sync::oneshot::Receiver<()>,
) -> Result<tokio::task::JoinHandle<()>> {
    let stop = async move {
        let _ = stop_rx.await;
    };
    Ok(match tls {
        Some(config) => {
            let listener =
                tls::TlsListener::new(tcp, config).map_err(|e| Error::internal(format!("TLS listener: {e}")))?;
            tokio::spawn(serve::serve(listener, app, read_timeout, stop))
        }
        None => tokio::spawn(serve::serve(serve::TcpAcceptor(tcp), app, read_timeout, stop)),
    })
}

/// A running emulator on its own thread and runtime, for synchronous callers (`keycred demo`,
/// integration tests). Stops on [`BlockingEmulator::shutdown`] or drop.
pub struct BlockingEmulator {
    info: EmulatorInfo,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::ops::Deref for BlockingEmulator {
    type Target = EmulatorInfo;
    fn deref(&self) -> &EmulatorInfo {
        &self.info
    }
}

impl BlockingEmulator {
    /// What the emulator tells its users.
    pub fn info(&self) -> &EmulatorInfo {
        &self.info
    }
    /// Stops the server and joins its thread.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }
    fn stop_and_join(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for BlockingEmulator {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Starts the emulator on a thread of its own, returning once it listens.
pub fn start_blocking(cfg: EmulatorConfig) -> Result<BlockingEmulator> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<EmulatorInfo>>();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("keycred-emulator".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(Error::internal(format!("cannot start the emulator's runtime: {e}"))));
                    return;
                }
            };
            rt.block_on(async move {
                match start(cfg).await {
                    Ok(h) => {
                        let _ = ready_tx.send(Ok(h.info.clone()));
                        let _ = stop_rx.await;
                        h.shutdown().await;
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            });
        })
        .map_err(|e| Error::internal(format!("cannot start the emulator thread: {e}")))?;
    match ready_rx.recv() {
        Ok(Ok(info)) => Ok(BlockingEmulator { info, stop: Some(stop_tx), thread: Some(thread) }),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => {
            let _ = thread.join();
            Err(Error::internal("the emulator thread ended before it was ready"))
        }
    }
}
