//! Starting and stopping the emulator: [`start`] on the caller's runtime, [`start_blocking`] on
//! a thread of its own, and what a running emulator tells its users ([`EmulatorInfo`]).

use super::config::{check_config, tenant_of, EmulatorConfig};
use super::router::router_with;
use super::state::AppState;
use super::{apps, issuers, serve, signins, tenant, throttle, tls};
use super::{EndpointVersion, User};
use crate::cert::{self, Certificate, KeySize, NewCertificate, PrivateKey, Validity};
use crate::wording::Input;
use crate::{Error, Result};
use apps::Registry;
use axum::Router;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use tenant::Tenant;

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
    issuers: Vec<(String, String)>,
    vaults: Vec<(String, String)>,
}

impl EmulatorInfo {
    /// The external OIDC issuers it plays: `(name, issuer URL)`.
    pub fn issuers(&self) -> &[(String, String)] {
        &self.issuers
    }
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
    pub(super) fn tenant_url(&self, path: &str) -> String {
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
    /// `(name, url)` of every emulated Key Vault (`https://NAME.vault.localhost:PORT`).
    pub fn vaults(&self) -> &[(String, String)] {
        &self.vaults
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
pub(super) struct TempDir(PathBuf);

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

/// Starts the emulator on the current tokio runtime.
pub async fn start(cfg: EmulatorConfig) -> Result<EmulatorHandle> {
    check_config(&cfg)?;
    let (registry, directory) = load_tenant(&cfg)?;
    let (signing_cert, signing_key) = signing_identity().await?;
    let (names, mint_allowed) = (cfg.issuers.clone(), !cfg.allow_remote);
    let issuers = tokio::task::spawn_blocking(move || issuers::Issuers::generate(&names, mint_allowed))
        .await
        .map_err(|e| Error::internal(format!("key generation task failed: {e}")))??;
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
        app_policies: Default::default(),
        sign_ins: signins::SignIns::default(),
        issuers,
        vaults: super::vault::Vaults::new(&cfg.vaults, shown.port(), &cfg.tenant.to_ascii_lowercase()),
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
            issuers: state
                .issuers
                .names()
                .into_iter()
                .map(|n| (n.clone(), format!("{}{}{n}", state.base_url, issuers::PATH)))
                .collect(),
            vaults: state.vaults.list(),
        },
        stop: Some(stop_tx),
        task: Some(task),
        _temp: temp,
    })
}

/// Loads the served applications and the tenant's directory, with the `--consented` grants given.
pub(super) fn load_tenant(cfg: &EmulatorConfig) -> Result<(Registry, Tenant)> {
    let registry = Registry::load(&cfg.manifests, cfg.apps_dir.as_deref(), cfg.log)?;
    let directory = tenant_of(cfg)?;
    for id in &cfg.consented {
        let app = registry.find(id).ok_or_else(|| {
            Error::input(format!("{} {id}: no application with this appId", Input::Consented))
                .with_hint("give the appId of an application whose manifest the emulator serves")
        })?;
        directory.admin_consent(&app, &registry);
    }
    Ok((registry, directory))
}

/// Generates the token-signing certificate and key, off the async runtime (RSA generation is slow).
pub(super) async fn signing_identity() -> Result<(Certificate, PrivateKey)> {
    tokio::task::spawn_blocking(|| {
        cert::generate(&NewCertificate {
            subject: "CN=keycred emulator token signing".into(),
            key_size: KeySize::Rsa2048,
            validity: Validity::Days(30),
        })
    })
    .await
    .map_err(|e| Error::internal("key generation task failed").caused_by(e))?
}

/// Binds the listen address; returns the listener and the address to show (loopback for a wildcard).
pub(super) async fn bind(cfg: &EmulatorConfig) -> Result<(tokio::net::TcpListener, SocketAddr)> {
    let tcp = tokio::net::TcpListener::bind(cfg.listen).await.map_err(|e| {
        Error::input(format!("cannot listen on {}", cfg.listen))
            .caused_by(e)
            .with_hint(format!("choose another {} address or port (port 0 picks a free one)", Input::Listen))
    })?;
    let local = tcp.local_addr().map_err(|e| Error::internal("no local address").caused_by(e))?;
    let shown =
        if local.ip().is_unspecified() { SocketAddr::new(Ipv4Addr::LOCALHOST.into(), local.port()) } else { local };
    Ok((tcp, shown))
}

/// With `--tls`, generates the server certificate and writes its CA file (to the state directory,
/// else a temporary one removed on shutdown); returns the TLS config, the CA file and that temporary directory.
#[allow(clippy::type_complexity)]
pub(super) fn tls_setup(
    cfg: &EmulatorConfig,
) -> Result<(Option<Arc<tokio_rustls::rustls::ServerConfig>>, Option<PathBuf>, Option<TempDir>)> {
    if !cfg.tls {
        return Ok((None, None, None));
    }
    let material = tls::generate(&super::vault::Vaults::host_names(&cfg.vaults))?;
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
pub(super) fn spawn_server(
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
                tls::TlsListener::new(tcp, config).map_err(|e| Error::internal("TLS listener").caused_by(e))?;
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

impl BlockingEmulator {
    /// What the emulator tells its users.
    pub fn info(&self) -> &EmulatorInfo {
        &self.info
    }
    /// Stops the server and joins its thread.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }
    pub(super) fn stop_and_join(&mut self) {
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
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .max_blocking_threads(super::BLOCKING_THREADS)
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(Error::internal("cannot start the emulator's runtime").caused_by(e)));
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
        .map_err(|e| Error::internal("cannot start the emulator thread").caused_by(e))?;
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
