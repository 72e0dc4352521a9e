//! `keycred emulate`: runs the local Entra token endpoint emulator until ctrl-C.
//!
//! Prints where it listens (and, with `--tls`, the CA file to trust), then serves; the library
//! ([`keycred::emulator`]) does the work.

use super::output::{count, out_line, print_pairs};
use super::Ctx;
use keycred::emulator::{self, EmulatorConfig, EmulatorHandle, EndpointVersion};
use keycred::{fsio, Error, Result};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Manifest file of an application (repeatable); edits on disk apply at the next request
    #[arg(long = "manifest", value_name = "FILE", required_unless_present_any = ["apps_dir", "generate_tenant"])]
    pub manifests: Vec<PathBuf>,
    /// Directory of application manifests (every *.json); files added, changed or removed apply at the next request
    #[arg(long, value_name = "DIR")]
    pub apps_dir: Option<PathBuf>,
    /// Treat this app as consented by an administrator: its requiredResourceAccess becomes roles and scopes (repeatable)
    #[arg(long = "consented", value_name = "APPID")]
    pub consented: Vec<String>,
    /// A user of the tenant, UPN or UPN=Display Name (repeatable); one demo administrator when omitted
    #[arg(long = "user", value_name = "UPN")]
    pub users: Vec<String>,
    /// A domain of the tenant besides its initial *.onmicrosoft.com one (repeatable); works as the tenant in URLs
    #[arg(long = "domain", value_name = "DOMAIN")]
    pub domains: Vec<String>,
    /// Answer the sign-in and consent pages at once, as if the first user had clicked Accept
    #[arg(long)]
    pub auto_consent: bool,
    /// Graph requests per second per client; more are answered 429 with Retry-After, as Graph throttles
    #[arg(long, value_name = "RATE")]
    pub throttle: Option<f64>,
    /// The tenant's default app management policy: a JSON file shaped like Graph's
    /// defaultAppManagementPolicy (credential lifetime caps are enforced on addKey, addPassword, PATCH)
    #[arg(long, value_name = "FILE")]
    pub app_policy: Option<std::path::PathBuf>,
    /// Write N application manifests with a realistic mix of credentials into --out, then exit
    #[arg(long, value_name = "N", requires = "out", conflicts_with = "manifests")]
    pub generate_tenant: Option<usize>,
    /// Directory to create for --generate-tenant
    #[arg(long, value_name = "DIR", requires = "generate_tenant")]
    pub out: Option<PathBuf>,
    /// With --generate-tenant: also write each certificate's private key (PEM bundles) and each secret
    #[arg(long, requires = "generate_tenant")]
    pub with_keys: bool,
    /// With --generate-tenant: also write DIR/tenant-default.policy.json, a default app management
    /// policy capping new certificates at N days (for --app-policy); about half the generated
    /// applications predate it and are grandfathered
    #[arg(long, value_name = "N", requires = "generate_tenant")]
    pub generate_policy_max_days: Option<u32>,
    /// Tenant id (GUID); a random one is generated and printed when omitted
    #[arg(long, value_name = "GUID")]
    pub tenant: Option<String>,
    /// Address to listen on; port 0 picks a free port
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub listen: String,
    /// Serve https with a generated certificate for localhost and 127.0.0.1; prints the CA file to trust
    #[arg(long)]
    pub tls: bool,
    /// Serve an emulated Azure Key Vault (keys, certificates) at https://NAME.vault.localhost:PORT,
    /// usable by the apps named (every app when none is); needs --tls (repeatable)
    #[arg(long = "vault", value_name = "NAME[=APPID,...]", requires = "tls")]
    pub vaults: Vec<String>,
    /// Roles to put in tokens for a resource: RESOURCE=ROLE[,ROLE...] (repeatable)
    #[arg(long = "grant", value_name = "RESOURCE=ROLE[,ROLE...]")]
    pub grants: Vec<String>,
    /// Environment variable holding a client secret accepted for every application
    #[arg(long, value_name = "VAR")]
    pub secret_env: Option<String>,
    /// Allow listening on a non-loopback address (anyone who reaches it gets tokens)
    #[arg(long)]
    pub allow_remote: bool,
    /// Also play an external OIDC issuer named NAME at BASE/issuers/NAME (discovery, keys, and an
    /// emulator-only endpoint minting workload tokens, see `keycred fic mint`); repeatable
    #[arg(long = "issuer", value_name = "NAME")]
    pub issuers: Vec<String>,
    /// Once the port is bound, write what `-o json` prints (base URL, tenant, endpoints) to this
    /// file, for scripts that wait for it; refused if it exists, removed when the emulator stops
    #[arg(long, value_name = "PATH")]
    pub ready_file: Option<PathBuf>,
}

/// Runs the command.
pub fn run(args: &Args, ctx: &Ctx) -> Result<u8> {
    if let (Some(n), Some(out)) = (args.generate_tenant, &args.out) {
        return generate(n, out, args.with_keys, args.generate_policy_max_days, ctx);
    }
    let cfg = config_of(args)?;
    if let Some(f) = &args.ready_file {
        fsio::ensure_absent([f.as_path()]).map_err(|e| {
            e.with_hint("remove it (an emulator that was killed leaves it behind) or choose another --ready-file")
        })?;
    }
    fewer_allocator_arenas();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(emulator::BLOCKING_THREADS)
        .enable_all()
        .build()
        .map_err(|e| Error::internal("cannot start the async runtime").caused_by(e))?;
    rt.block_on(async {
        let stop = StopSignals::register()?;
        let h = emulator::start(cfg).await?;
        // The port is bound: the ready file first, then stdout, so that a script reading
        // either can connect at once.
        let doc = announcement(&h);
        let ready = ReadyFile::write(args.ready_file.as_deref(), &doc)?;
        if ctx.json() {
            out_line(&doc.to_string());
        } else {
            print_text(&h);
            eprintln!("keycred emulate: serving; press ctrl-C to stop");
        }
        // It lists every application: not kept for the emulator's life; what loading the tenant
        // and writing it freed goes back to the system.
        drop(doc);
        release_free_memory();
        stop.wait().await;
        h.shutdown().await;
        drop(ready);
        Ok(keycred::error::exit::OK)
    })
}

/// glibc gives each thread that allocates an arena of its own, and what one thread frees stays in
/// its arena: a re-listing of a directory of thousands of manifests on each blocking thread in
/// turn would leave a listing's worth of free memory in every one (about 20 MB with 10,000
/// applications, BENCHMARKS.md). Two arenas are shared by all threads instead.
fn fewer_allocator_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: sets a malloc tunable, before the runtime starts any other thread.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Hands the pages the allocator holds free back to the system: reading a tenant of thousands of
/// manifests frees as much as it keeps (file bytes, parsed trees, the start-up document), and
/// glibc returns free memory below the top of its heap only when asked.
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The emulator's configuration from the command line, refusing a `--listen` without a port.
fn config_of(args: &Args) -> Result<EmulatorConfig> {
    let mut cfg = EmulatorConfig::new(args.manifests.clone());
    if let Some(t) = &args.tenant {
        cfg.tenant = t.trim().to_string();
    }
    cfg.listen = args.listen.trim().parse::<SocketAddr>().map_err(|_| {
        Error::input(format!("--listen '{}': not an address with a port", args.listen))
            .with_hint("use IP:PORT, for example 127.0.0.1:8400 or [::1]:0")
    })?;
    cfg.grants = args.grants.iter().map(|g| emulator::parse_grant(g)).collect::<Result<_>>()?;
    cfg.issuers = args.issuers.clone();
    cfg.secret = args.secret_env.as_deref().map(keycred::secret::from_env).transpose()?;
    cfg.tls = args.tls;
    cfg.vaults = args.vaults.iter().map(|v| emulator::parse_vault(v)).collect::<Result<_>>()?;
    cfg.allow_remote = args.allow_remote;
    cfg.apps_dir = args.apps_dir.clone();
    cfg.consented = args.consented.iter().map(|s| s.trim().to_string()).collect();
    cfg.users = args.users.clone();
    cfg.domains = args.domains.clone();
    cfg.auto_consent = args.auto_consent;
    cfg.throttle = args.throttle;
    if let Some(path) = &args.app_policy {
        let body: serde_json::Value = serde_json::from_slice(&keycred::fsio::read(path)?).map_err(|e| {
            Error::input(format!("--app-policy {}: not JSON", path.display()))
                .caused_by(e)
                .with_hint("give a body shaped like Graph's defaultAppManagementPolicy")
        })?;
        let policy = keycred::policy::Policy::from_json(&body, &format!("--app-policy {}", path.display()))?;
        cfg.app_policy = Some((body, policy));
    }
    Ok(cfg)
}

/// The ready file: written once the port is bound, removed when the emulator stops (dropped).
struct ReadyFile(Option<PathBuf>);

impl ReadyFile {
    fn write(path: Option<&std::path::Path>, doc: &serde_json::Value) -> Result<ReadyFile> {
        let Some(path) = path else { return Ok(ReadyFile(None)) };
        fsio::atomic_write(path, format!("{doc}\n").as_bytes(), Some(0o644))?;
        Ok(ReadyFile(Some(path.to_path_buf())))
    }
}

impl Drop for ReadyFile {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The running emulator's endpoints, users and apps as one JSON object: the first line on
/// stdout with `-o json` (flushed once the port is bound) and the ready file, so that a script
/// can read it while the emulator keeps running.
fn announcement(h: &EmulatorHandle) -> serde_json::Value {
    let apps: Vec<serde_json::Value> =
        h.info().apps().iter().map(|(id, name)| serde_json::json!({"appId": id, "displayName": name})).collect();
    let users: Vec<serde_json::Value> = h
        .info()
        .users()
        .iter()
        .map(|u| serde_json::json!({"userPrincipalName": u.upn, "displayName": u.name, "id": u.oid}))
        .collect();
    let issuers: Vec<serde_json::Value> =
        h.info().issuers().iter().map(|(name, url)| serde_json::json!({"name": name, "url": url})).collect();
    let vaults: Vec<serde_json::Value> =
        h.info().vaults().iter().map(|(name, url)| serde_json::json!({"name": name, "url": url})).collect();
    serde_json::json!({
        "baseUrl": h.info().base_url(),
        "tenant": h.info().tenant(),
        "domains": h.info().domains(),
        "tokenEndpointV1": h.info().token_endpoint(EndpointVersion::V1),
        "tokenEndpointV2": h.info().token_endpoint(EndpointVersion::V2),
        "authorizeEndpointV1": h.info().authorize_endpoint(EndpointVersion::V1),
        "authorizeEndpointV2": h.info().authorize_endpoint(EndpointVersion::V2),
        "adminConsentEndpoint": h.info().admin_consent_endpoint(),
        "jwksUri": h.info().jwks_uri(),
        "graphUrl": h.info().graph_url(),
        "caFile": h.info().ca_file().map(|p| p.display().to_string()),
        "apps": apps,
        "users": users,
        "issuers": issuers,
        "vaults": vaults,
    })
}

/// Prints the running emulator's endpoints, users and (the first) apps as name/value lines.
fn print_text(h: &EmulatorHandle) {
    let mut pairs = vec![
        ("baseUrl", h.info().base_url().to_string()),
        ("tenant", h.info().tenant().to_string()),
        ("domains", h.info().domains().join(", ")),
        ("tokenEndpointV1", h.info().token_endpoint(EndpointVersion::V1)),
        ("tokenEndpointV2", h.info().token_endpoint(EndpointVersion::V2)),
        ("authorizeEndpoint", h.info().authorize_endpoint(EndpointVersion::V2)),
        ("adminConsentEndpoint", h.info().admin_consent_endpoint()),
        ("jwksUri", h.info().jwks_uri()),
        ("graphUrl", h.info().graph_url().to_string()),
    ];
    if let Some(ca) = h.info().ca_file() {
        pairs.push(("caFile", ca.display().to_string()));
    }
    let users: Vec<String> = h.info().users().iter().map(|u| format!("{} ({})", u.upn, u.name)).collect();
    pairs.push(("users", users.join(", ")));
    for (name, url) in h.info().issuers() {
        pairs.push(("issuer", format!("{name}  {url}")));
    }
    for (name, url) in h.info().vaults() {
        pairs.push(("vault", format!("{name}  {url}")));
    }
    // Thousands of apps with --apps-dir: name the first ones, count the rest.
    const SHOWN: usize = 20;
    for (id, name) in h.info().apps().iter().take(SHOWN) {
        pairs.push(("app", format!("{id}  {name}")));
    }
    if h.info().apps().len() > SHOWN {
        pairs.push(("app", format!("... and {} more", h.info().apps().len() - SHOWN)));
    }
    print_pairs(&pairs);
}

/// `--generate-tenant N --out DIR`.
fn generate(n: usize, out: &std::path::Path, with_keys: bool, max_days: Option<u32>, ctx: &Ctx) -> Result<u8> {
    if max_days == Some(0) {
        return Err(Error::input("--generate-policy-max-days 0: a policy allows at least one day")
            .with_hint("give the largest certificate lifetime the tenant allows, in days (e.g. 180)"));
    }
    let s = emulator::generate_tenant(n, out, with_keys)?;
    let policy =
        max_days.map(|d| emulator::write_default_policy(&s.dir, d, s.apps, keycred::dates::now())).transpose()?;
    if ctx.json() {
        let v = serde_json::json!({
            "dir": s.dir.display().to_string(),
            "apps": s.apps,
            "automationAppId": s.automation_app_id,
            "automationBundle": s.automation_bundle.display().to_string(),
            "groundTruth": s.ground_truth.display().to_string(),
            "credentials": s.by_status,
            "servicePrincipalCredentials": s.on_service_principals,
            "appPolicy": policy.as_ref().map(|p| p.display().to_string()),
        });
        out_line(&v.to_string());
    } else {
        let counts: Vec<String> = s.by_status.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let on_sps = match s.on_service_principals {
            0 => String::new(),
            n => format!(
                "; {} on service principals, which `keycred fleet audit` lists with --include-service-principals",
                count(n as u64, "is", "are")
            ),
        };
        print_pairs(&[
            ("dir", s.dir.display().to_string()),
            ("apps", s.apps.to_string()),
            ("automationAppId", s.automation_app_id.clone()),
            ("automationBundle", s.automation_bundle.display().to_string()),
            ("groundTruth", s.ground_truth.display().to_string()),
            ("credentials", format!("{}{on_sps}", counts.join(", "))),
        ]);
        if let Some(p) = &policy {
            print_pairs(&[("appPolicy", format!("{} (serve it with --app-policy)", p.display()))]);
        }
    }
    Ok(keycred::error::exit::OK)
}

/// ctrl-C, and SIGTERM on Unix (what service managers and CI runners send). They are registered
/// before the emulator announces itself: a script that stops it as soon as the ready line
/// appears must get a clean exit 0, not a death by the signal's default action.
struct StopSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(windows)]
    ctrl_c: tokio::signal::windows::CtrlC,
}

impl StopSignals {
    fn register() -> Result<Self> {
        let failed = |e: std::io::Error| Error::internal("cannot listen for stop signals").caused_by(e);
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(StopSignals {
                interrupt: signal(SignalKind::interrupt()).map_err(failed)?,
                terminate: signal(SignalKind::terminate()).map_err(failed)?,
            })
        }
        #[cfg(windows)]
        {
            Ok(StopSignals { ctrl_c: tokio::signal::windows::ctrl_c().map_err(failed)? })
        }
    }

    /// Resolves on the first stop signal.
    async fn wait(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
        #[cfg(windows)]
        self.ctrl_c.recv().await;
    }
}
