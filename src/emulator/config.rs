//! How to run the emulator ([`EmulatorConfig`]): its checks, the `--grant` syntax, and the tenant
//! (names, users) the configuration describes.

use super::tenant;
use super::{User, READ_TIMEOUT};
use crate::secret::SecretString;
use crate::wording::Input;
use crate::{Error, Result};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use tenant::Tenant;

/// Threads of the runtime's blocking pool an emulator's runtime should allow: the token and
/// Graph handlers run there and are CPU-bound (signatures) or read small local files, so threads
/// beyond a few per core only add switching, and each one a thread's stack and allocator arena to
/// the resident memory (64 connections would otherwise keep 64 threads, about 20 MB).
pub const BLOCKING_THREADS: usize = 8;

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
    /// External OIDC issuers to play (`--issuer NAME`), at `{base}/issuers/{NAME}`.
    pub issuers: Vec<String>,
    /// Emulated Key Vaults (`--vault NAME[=APPID,...]`), served over TLS at `NAME.vault.localhost`.
    pub vaults: Vec<super::VaultSpec>,
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
            issuers: Vec::new(),
            vaults: Vec::new(),
        }
    }
}

/// Parses `RESOURCE=ROLE[,ROLE...]` (as `--grant` takes it).
pub fn parse_grant(s: &str) -> Result<(String, Vec<String>)> {
    let bad = || {
        Error::input(format!("{} '{s}': expected RESOURCE=ROLE[,ROLE...]", Input::Grant))
            .with_hint("for example https://graph.microsoft.com=Application.ReadWrite.OwnedBy,User.Read.All")
    };
    let (resource, roles) = s.rsplit_once('=').ok_or_else(bad)?;
    let resource = resource.trim();
    let roles: Vec<String> = roles.split(',').map(str::trim).filter(|r| !r.is_empty()).map(str::to_string).collect();
    if resource.is_empty() || roles.is_empty() {
        return Err(bad());
    }
    Ok((resource.to_string(), roles))
}

pub(super) fn check_config(cfg: &EmulatorConfig) -> Result<()> {
    if uuid::Uuid::parse_str(&cfg.tenant).is_err() {
        return Err(Error::input(format!("{} '{}': not a GUID", Input::Tenant, cfg.tenant))
            .with_hint("give the tenant as a GUID such as 72f988bf-86f1-41af-91ab-2d7cd011db47, or omit it"));
    }
    if let Some(rate) = cfg.throttle {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(Error::input(format!(
                "{} {rate}: not a positive number of requests per second",
                Input::Throttle
            ))
            .with_hint(format!("for example {} 5 (five Graph requests per second per client)", Input::Throttle)));
        }
    }
    if !cfg.vaults.is_empty() && !cfg.tls {
        return Err(Error::input("--vault: Key Vault is served over https only")
            .with_hint("add --tls (Azure's SDKs and keycred refuse a vault over plain http)"));
    }
    if !cfg.listen.ip().is_loopback() && !cfg.allow_remote {
        return Err(Error::input(format!("{} {}: not a loopback address", Input::Listen, cfg.listen)).with_hint(
            format!(
                "the emulator hands out tokens to anyone who can reach it; listen on 127.0.0.1 or give {}",
                Input::AllowRemote
            ),
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
pub(super) fn tenant_of(cfg: &EmulatorConfig) -> Result<Tenant> {
    let initial = initial_domain(&cfg.tenant);
    let mut domains = vec![initial.clone()];
    for d in &cfg.domains {
        let d = d.trim().trim_end_matches('.').to_ascii_lowercase();
        let ok = d.contains('.')
            && d.split('.').all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        if !ok {
            return Err(Error::input(format!("{} '{d}': not a DNS name", Input::Domain))
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
            Error::input(m).with_hint("for example adele@contoso.example, or \"megan=Megan Bowen\" with a display name")
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
