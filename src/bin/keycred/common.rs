//! Arguments shared by several commands: the credential, the tenant and the authority (with the
//! standard `AZURE_*` environment variables as fallbacks), the new certificate's options, the
//! algorithm, the endpoint version, the token target, the client secret, how remote services are
//! reached (`--ca-file`, `--timeout`) and where Graph is. Each is declared once, here, and
//! flattened by the commands that take it.

use keycred::authority::{Authority, EndpointVersion, DEFAULT_AUTHORITY};
use keycred::cert::files::{FileOptions, FilePaths, Plan};
use keycred::cert::pfx::Protection;
use keycred::cert::{KeySize, LoadedCredential, NewCertificate, SignatureAlg, Validity};
use keycred::fleet::parse_duration;
use keycred::graph::GRAPH_URL;
use keycred::http::{Failure, FailureKind};
use keycred::manifest::{Format, Manifest};
use keycred::rotate::deploy::DeployHook;
use keycred::rotate::evidence::Evidence;
use keycred::rotate::RemovePolicy;
use keycred::secret::{self, SecretString};
use keycred::token::{ClientAuth, ClientOptions, Target, TokenClient, TokenRequest};
use keycred::{dates, fsio, ClientId, Error, Result, TenantId};
use std::path::PathBuf;
use std::sync::Arc;

/// `--alg`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AlgArg {
    /// RSASSA-PKCS1-v1_5 SHA-256, header `x5t`
    #[value(name = "RS256")]
    Rs256,
    /// RSASSA-PSS SHA-256, header `x5t#S256`
    #[value(name = "PS256")]
    Ps256,
}

impl From<AlgArg> for SignatureAlg {
    fn from(a: AlgArg) -> Self {
        match a {
            AlgArg::Rs256 => SignatureAlg::Rs256,
            AlgArg::Ps256 => SignatureAlg::Ps256,
        }
    }
}

/// `--endpoint`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EndpointArg {
    /// `/oauth2/token` (field `resource`)
    V1,
    /// `/oauth2/v2.0/token` (field `scope`)
    V2,
}

impl From<EndpointArg> for EndpointVersion {
    fn from(e: EndpointArg) -> Self {
        match e {
            EndpointArg::V1 => EndpointVersion::V1,
            EndpointArg::V2 => EndpointVersion::V2,
        }
    }
}

/// `--format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    /// Microsoft Graph (today's portal manifest): key, startDateTime, endDateTime, displayName
    MsGraph,
    /// Azure AD Graph (legacy): value, startDate, endDate
    AadGraph,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Format {
        match f {
            FormatArg::MsGraph => Format::MsGraph,
            FormatArg::AadGraph => Format::AadGraph,
        }
    }
}

/// `--format`: the manifest format, for commands that write an entry into a manifest.
#[derive(clap::Args, Debug, Clone)]
pub struct FormatArgs {
    /// Manifest format, needed only when the manifest does not show it (for `manifest entry`:
    /// the entry's format, ms-graph by default)
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
}

impl FormatArgs {
    /// The format given, if any.
    pub fn given(&self) -> Option<Format> {
        self.format.map(Format::from)
    }
    /// The format to write in `m`: its own, else `--format`; a `--format` contradicting the
    /// manifest is refused (nothing guessed), and the hints name the option.
    pub fn resolve(&self, m: &Manifest) -> Result<Format> {
        Self::resolve_as(m, self.given())
    }
    /// [`FormatArgs::resolve`] with `given` as the format asked for.
    pub fn resolve_as(m: &Manifest, given: Option<Format>) -> Result<Format> {
        m.resolve_format(given).map_err(|e| match (m.detect_format(), given) {
            (Some(have), Some(_)) => e.with_hint(format!("leave --format out (or pass --format {})", have.name())),
            _ => e.with_hint("pass --format ms-graph (today's portal) or --format aad-graph (legacy)"),
        })
    }
}

/// The client assertion's signature algorithm.
#[derive(clap::Args, Debug, Clone)]
pub struct AlgArgs {
    /// Signature algorithm of the client assertion
    #[arg(long, value_enum, default_value_t = AlgArg::Rs256)]
    pub alg: AlgArg,
}

impl AlgArgs {
    /// The algorithm.
    pub fn get(&self) -> SignatureAlg {
        self.alg.into()
    }
}

/// The token target from `--scope`/`--resource`, by the library's one rule; the hint names the
/// options.
pub fn target(scope: &[String], resource: Option<&str>) -> Result<Target> {
    Target::new(scope, resource).map_err(|e| {
        e.context("--scope/--resource").with_hint(
            "pass --scope S (v2) or --resource R (v1), for example --scope https://graph.microsoft.com/.default",
        )
    })
}

/// The password of an encrypted key or PFX: the variable named by `--password-env`, else
/// `AZURE_CLIENT_CERTIFICATE_PASSWORD` (as the Azure SDKs read it), else none. Every command
/// reading credential files uses this one rule, so a file that works in one works in all.
pub fn password_from(password_env: Option<&str>) -> Result<Option<SecretString>> {
    match password_env {
        Some(var) => secret::from_env(var).map(Some),
        None => {
            Ok(std::env::var("AZURE_CLIENT_CERTIFICATE_PASSWORD").ok().filter(|s| !s.is_empty()).map(SecretString::new))
        }
    }
}

/// A certificate with its private key.
#[derive(clap::Args, Debug, Clone)]
pub struct CredArgs {
    /// Certificate: PEM/DER with --key, a PEM bundle (key + cert), or a PFX
    #[arg(long, env = "AZURE_CLIENT_CERTIFICATE_PATH")]
    pub cert: Option<PathBuf>,
    /// Private key file, when --cert holds only the certificate; or a key on a PKCS#11 token
    /// (pkcs11:token=T;object=LABEL), or a Key Vault key, which signs there
    /// (https://NAME.vault.azure.net/keys/KEY[/VERSION]); a token's or vault's certificate is read
    /// from it without --cert
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Environment variable holding a token for the vault of a Key Vault --key (default: the AZURE_* identity)
    #[arg(long, value_name = "VAR")]
    pub vault_token_env: Option<String>,
    /// Environment variable holding the password of an encrypted key or PFX
    #[arg(long, value_name = "VAR")]
    pub password_env: Option<String>,
    #[command(flatten)]
    pub token: super::keystore::TokenArgs,
}

impl CredArgs {
    /// The password, from `--password-env` or `AZURE_CLIENT_CERTIFICATE_PASSWORD`.
    pub fn password(&self) -> Result<Option<SecretString>> {
        password_from(self.password_env.as_deref())
    }
}

/// Tenant, client id and authority.
#[derive(clap::Args, Debug, Clone)]
pub struct TenantArgs {
    /// Application (client) id
    #[arg(long, env = "AZURE_CLIENT_ID", alias = "app-id")]
    pub client_id: Option<String>,
    /// Tenant id (GUID) or domain
    #[arg(long, env = "AZURE_TENANT_ID")]
    pub tenant: Option<String>,
    /// Authority host (https; http only for loopback)
    #[arg(long, env = "AZURE_AUTHORITY_HOST", default_value = DEFAULT_AUTHORITY)]
    pub authority: String,
}

impl TenantArgs {
    /// The client id, or a clear error naming the option.
    pub fn client_id(&self) -> Result<ClientId> {
        let id = self
            .client_id
            .as_deref()
            .ok_or_else(|| Error::input("no client id given").with_hint("pass --client-id or set AZURE_CLIENT_ID"))?;
        ClientId::new(id).map_err(|e| {
            if id.trim().is_empty() {
                Error::input("the client id (--client-id / AZURE_CLIENT_ID) is empty")
                    .with_hint(e.hint().unwrap_or_default().to_string())
            } else {
                e.context("--client-id")
            }
        })
    }
    /// The client id: the one given, else the `appId` of `manifest` when the command has one
    /// (the manifest is the app's registration, so its `appId` is the client id).
    pub fn client_id_or_manifest(&self, manifest: Option<&std::path::Path>) -> Result<ClientId> {
        match (&self.client_id, manifest) {
            (None, Some(m)) => {
                let manifest = Manifest::load(m)?;
                let id = manifest.app_id().filter(|id| !id.trim().is_empty()).ok_or_else(|| {
                    Error::input(format!("no client id given, and {} has no appId", m.display()))
                        .with_hint("pass --client-id (or set AZURE_CLIENT_ID), or add the appId to the manifest")
                })?;
                ClientId::new(id).map_err(|e| e.context(format!("{}: appId", m.display())))
            }
            (None, None) => Err(Error::input("no client id given")
                .with_hint("pass --client-id, set AZURE_CLIENT_ID, or pass --manifest to take the manifest's appId")),
            (Some(_), _) => self.client_id(),
        }
    }
    /// The tenant, or a clear error naming the option. The tenant becomes a URL path segment
    /// (and the assertion's `aud`), so [`TenantId`] refuses anything but a GUID or DNS-name
    /// character rather than let it build another path (`x/../y`) or a broken URL.
    pub fn tenant(&self) -> Result<TenantId> {
        let t = self
            .tenant
            .as_deref()
            .ok_or_else(|| Error::input("no tenant given").with_hint("pass --tenant or set AZURE_TENANT_ID"))?;
        tenant_id(t)
    }
    /// The tenant when one is given (checked), else `None`.
    pub fn tenant_if_given(&self) -> Result<Option<TenantId>> {
        self.tenant.as_deref().map(tenant_id).transpose()
    }
    /// The validated authority.
    pub fn authority(&self) -> Result<Authority> {
        Authority::parse(&self.authority)
    }
}

/// A `--tenant` value, checked.
fn tenant_id(t: &str) -> Result<TenantId> {
    TenantId::new(t).map_err(|e| e.context("--tenant"))
}

/// `--ca-file`: an extra trusted root CA (`decode` and `rotate`, which have no `--timeout`).
#[derive(clap::Args, Debug, Clone)]
pub struct CaFileArgs {
    /// Extra trusted root CA (PEM), e.g. the emulator's --tls CA
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
}

impl CaFileArgs {
    /// A token client trusting the CA, with the default time limit.
    pub fn client(&self) -> Result<TokenClient> {
        TokenClient::new(ClientOptions { ca_file: self.ca_file.clone(), ..ClientOptions::default() })
    }
}

/// `--ca-file` and `--timeout`: how a command reaches the token endpoint and Graph.
#[derive(clap::Args, Debug, Clone)]
pub struct HttpArgs {
    #[command(flatten)]
    pub ca: CaFileArgs,
    /// Time limit of each HTTP request, seconds
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub timeout: u64,
}

impl HttpArgs {
    /// A transport for the CA and time limit given, and a runtime to drive it.
    pub fn transport(&self) -> Result<(keycred::http::ReqwestTransport, tokio::runtime::Runtime)> {
        let options = keycred::http::TransportOptions { timeout: self.timeout()?, ca_file: self.ca.ca_file.clone() };
        let t = keycred::http::ReqwestTransport::new(&options)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::internal("cannot start the async runtime").caused_by(e))?;
        Ok((t, rt))
    }
    /// The time limit; zero is refused (every request would fail at once).
    pub fn timeout(&self) -> Result<std::time::Duration> {
        if self.timeout == 0 {
            return Err(Error::input("--timeout 0: give at least 1 second"));
        }
        Ok(std::time::Duration::from_secs(self.timeout))
    }
    /// A token client trusting `--ca-file`, with the `--timeout` limit.
    pub fn client(&self) -> Result<TokenClient> {
        let timeout = self.timeout()?;
        TokenClient::new(ClientOptions { timeout, ca_file: self.ca.ca_file.clone(), ..ClientOptions::default() })
    }
}

/// `--secret-env`: a client secret instead of a certificate.
#[derive(clap::Args, Debug, Clone)]
pub struct SecretEnvArgs {
    /// Authenticate with the client secret held in this environment variable instead of a certificate
    #[arg(long, value_name = "VAR")]
    pub secret_env: Option<String>,
}

impl SecretEnvArgs {
    /// The secret, when `--secret-env` names a variable.
    pub fn secret(&self) -> Result<Option<SecretString>> {
        self.secret_env.as_deref().map(secret::from_env).transpose()
    }
}

/// Where Graph is and, optionally, the Graph token to use (`graph` and `fleet`).
#[derive(clap::Args, Debug, Clone)]
pub struct GraphArgs {
    /// Use this Graph access token (environment variable) instead of getting one, e.g. an administrator's
    #[arg(long, value_name = "VAR")]
    pub graph_token_env: Option<String>,
    /// Microsoft Graph base URL (national clouds: https://graph.microsoft.us, ...)
    #[arg(long, default_value = GRAPH_URL)]
    pub graph_url: String,
}

impl GraphArgs {
    /// The resource a Graph token is requested for (see [`keycred::graph::token_resource`]).
    pub fn resource(&self) -> Result<String> {
        keycred::graph::token_resource(&self.graph_url).map_err(|e| e.context("--graph-url"))
    }
}

/// How `graph` and `fleet` reach Graph: the credential that gets the Graph token (a certificate
/// or a secret) or the token itself, where Graph is, and how requests travel.
#[derive(clap::Args, Debug, Clone)]
pub struct GraphAccessArgs {
    #[command(flatten)]
    pub cred: CredArgs,
    #[command(flatten)]
    pub secret: SecretEnvArgs,
    #[command(flatten)]
    pub graph: GraphArgs,
    #[command(flatten)]
    pub http: HttpArgs,
}

impl GraphAccessArgs {
    /// The Graph token: the one `--graph-token-env` names, else one requested by `request` with
    /// `--secret-env`'s secret or with `cred` (the certificate, loaded by the caller); the request
    /// is returned too, to renew the token with.
    pub fn graph_token(
        &self,
        tokens: &TokenClient,
        cred: Option<Arc<LoadedCredential>>,
        request: impl FnOnce(ClientAuth) -> Result<TokenRequest>,
    ) -> Result<(SecretString, Option<TokenRequest>)> {
        if let Some(var) = &self.graph.graph_token_env {
            return Ok((secret::from_env(var)?, None));
        }
        let auth =
            match (self.secret.secret()?, cred) {
                (Some(s), _) => ClientAuth::Secret(s),
                (None, Some(cred)) => ClientAuth::Certificate { cred, alg: SignatureAlg::Rs256, x5c: false },
                (None, None) => return Err(Error::input("no way to get a Graph token").with_hint(
                    "pass the app's --client-id with --cert or --secret-env VAR, or --graph-token-env VAR with a token",
                )),
            };
        let req = request(auth)?;
        let token = tokens.request_token_blocking(&req).map_err(|e| transport_hint(e, true))?.access_token;
        Ok((token, Some(req)))
    }
}

/// A token endpoint's transport failure ([`Failure`], the error's source), with the options of
/// this command line that fix it: the library says what to check, the command line says how.
/// `timeout`: whether the command has `--timeout`.
pub fn transport_hint(e: Error, timeout: bool) -> Error {
    let hint = match Failure::kind_in(&e) {
        Some(FailureKind::Timeout) if timeout => {
            "check the network and --authority, or allow more time with --timeout SECS"
        }
        Some(FailureKind::Timeout) => "check the network and --authority",
        Some(FailureKind::Tls) => {
            "for the emulator's --tls mode pass its CA with --ca-file PEM; otherwise check proxies that intercept TLS"
        }
        Some(FailureKind::TooLarge) => "check --authority: it must be an Entra login host or the keycred emulator",
        Some(_) => "check the network, the proxy settings and --authority",
        None => return e,
    };
    e.with_hint(hint)
}

/// A secret argument's value, or with `-` the first `limit` bytes of stdin (so it stays out of
/// the shell history and `ps`); empty input is an error naming `what`.
pub fn read_arg_or_stdin(v: &str, what: &str, limit: u64) -> Result<SecretString> {
    use std::io::Read;
    if v != "-" {
        return Ok(SecretString::new(v.trim()));
    }
    let mut s = String::new();
    std::io::stdin()
        .take(limit + 1)
        .read_to_string(&mut s)
        .map_err(|e| Error::input(format!("cannot read {what} from stdin")).caused_by(e))?;
    // Over the limit is refused, not cut: a truncated token would fail later, confusingly.
    if s.len() as u64 > limit {
        return Err(Error::input(format!("{what}: stdin holds more than {limit} bytes; nothing was read"))
            .with_hint("pipe in the value alone"));
    }
    let s = s.trim();
    if s.is_empty() {
        return Err(Error::input(format!("{what}: stdin was empty"))
            .with_hint("pipe the value into the command (`... | keycred ...`), or give it as the argument"));
    }
    Ok(SecretString::new(s))
}

/// The new certificate and its files (`keycred new`, `keycred rotate`).
#[derive(clap::Args, Debug, Clone)]
pub struct NewCertArgs {
    /// Base name of the files: NAME.key, NAME.cer, NAME.pem (and NAME.pfx); rotations default
    /// to rotated-<UTC time>
    #[arg(long)]
    pub name: Option<String>,
    /// Directory for the files (created, owner-only, when missing)
    #[arg(long, default_value = ".")]
    pub out_dir: PathBuf,
    /// Subject DN (default CN=NAME), e.g. 'CN=MyCompanyName MyAppName Cert, O=Contoso, C=FR'
    #[arg(long)]
    pub subject: Option<String>,
    /// RSA key size: 2048, 3072 or 4096
    #[arg(long, default_value_t = 2048)]
    pub key_size: u32,
    /// Validity in days, from --not-before or from now [default: 365]
    #[arg(long, conflicts_with = "not_after")]
    pub days: Option<u32>,
    /// Start of validity (YYYY-MM-DD or RFC 3339) [default: now]
    #[arg(long)]
    pub not_before: Option<String>,
    /// End of validity (YYYY-MM-DD or RFC 3339) [default: start + --days]
    #[arg(long)]
    pub not_after: Option<String>,
    /// Also write NAME.pfx (PKCS#12, AES-256), protected by the --password-env password
    #[arg(long, requires = "password_env")]
    pub pfx: bool,
    /// Write NAME.pfx in the legacy, WEAKER form (3DES, SHA-1 MAC) for Windows before Server
    /// 2019, Mono and other consumers that cannot read AES-256 PFX files
    #[arg(long, requires = "password_env")]
    pub pfx_legacy: bool,
    /// Environment variable holding the passphrase for the key (and PFX)
    #[arg(long, value_name = "VAR")]
    pub password_env: Option<String>,
    /// Replace existing files
    #[arg(long)]
    pub force: bool,
}

impl NewCertArgs {
    /// Validates the arguments; generates and writes nothing.
    pub fn plan(&self) -> Result<Plan> {
        self.plan_with_default(keycred::graph::policy::DEFAULT_DAYS)
    }

    /// [`Self::plan`], lasting `default_days` when neither --days nor --not-after is given (an
    /// app management policy's cap can shorten the usual 365).
    pub fn plan_with_default(&self, default_days: u32) -> Result<Plan> {
        let a = self;
        let name = a.name.clone().unwrap_or_else(|| keycred::rotate::default_name(dates::now()));
        if name.is_empty() || name.contains(['/', '\\']) {
            return Err(Error::input(format!("--name '{name}': must be a plain file name"))
                .with_hint("use --out-dir for the directory"));
        }
        let key_size = KeySize::from_bits(a.key_size)?;
        let days = a.days.unwrap_or(default_days);
        let validity = match (&a.not_before, &a.not_after) {
            (Some(b), Some(e)) => Validity::Range(dates::parse(b, "--not-before")?, dates::parse(e, "--not-after")?),
            (Some(b), None) => Validity::StartDays(dates::parse(b, "--not-before")?, days),
            (None, Some(e)) => Validity::Until(dates::parse(e, "--not-after")?),
            (None, None) => Validity::Days(days),
        };
        let subject = a.subject.clone().unwrap_or_else(|| format!("CN={name}"));
        let password: Option<SecretString> = a.password_env.as_deref().map(secret::from_env).transpose()?;
        keycred::cert::files::check_out_dir(&a.out_dir, "--out-dir")?;
        let pfx = match (a.pfx_legacy, a.pfx) {
            (true, _) => Some(Protection::Legacy),
            (false, true) => Some(Protection::Modern),
            (false, false) => None,
        };
        plan_files(
            NewCertificate { subject, key_size, validity },
            FileOptions { name, dir: a.out_dir.clone(), pfx, password, force: a.force },
        )
    }
}

/// [`Plan::new`], refusing files in the way (unless `--force`) with a hint naming the options.
pub fn plan_files(req: NewCertificate, files: FileOptions) -> Result<Plan> {
    if !files.force {
        let paths = FilePaths::with_pfx(&files.dir, &files.name, files.pfx);
        fsio::ensure_absent(paths.all())
            .map_err(|e| e.with_hint("pass --force to replace, or choose another --name or --out-dir"))?;
    }
    Plan::new(req, files)
}

/// Phase 1 of a rotation, as `rotate`, `graph rotate` and `fleet rotate` all take it: what is
/// removed once the new certificate is in (nothing by default), and the deploy hook.
#[derive(clap::Args, Debug, Clone)]
pub struct PhaseOneArgs {
    /// Remove this certificate once the new one is in and verified: a keyId or a thumbprint
    /// (hex, base64 or base64url), repeatable. By default nothing is removed
    // base64url thumbprints start with '-' one time in 64: they are values, not flags.
    #[arg(long = "remove", value_name = "KEYID|THUMBPRINT", allow_hyphen_values = true)]
    pub remove: Vec<String>,
    /// Remove expired certificates once the new one is in (an expired one cannot be in use)
    #[arg(long, conflicts_with = "remove")]
    pub remove_expired: bool,
    /// Run CMD (split into words, no shell) once per app after its new certificate is verified,
    /// with KEYCRED_APP_ID, KEYCRED_KEY_ID, KEYCRED_THUMBPRINT, KEYCRED_BUNDLE (and KEYCRED_PFX)
    /// in its environment; a failed CMD stops that app's removals
    #[arg(long, value_name = "CMD")]
    pub deploy: Option<String>,
    /// Time limit of one run of the deploy hook (30s, 10m, 1h)
    #[arg(long, value_name = "DURATION", default_value = "10m")]
    pub deploy_timeout: String,
    /// Keep the old certificates: the default now (accepted for older scripts)
    #[arg(long, hide = true, conflicts_with_all = ["remove", "remove_expired"])]
    pub keep_old: bool,
}

impl PhaseOneArgs {
    /// What to remove, the hint naming the flag on a bad value.
    pub fn policy(&self) -> Result<RemovePolicy> {
        let sels = self
            .remove
            .iter()
            .map(|r| {
                keycred::rotate::removal_selector(r).map_err(|e| {
                    let hint = e.hint().unwrap_or_default().to_string();
                    Error::input(format!("--remove {}; nothing was changed", e.message())).with_hint(hint)
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(RemovePolicy::new(sels, self.remove_expired))
    }
    /// The deploy hook, when one is given.
    pub fn hook(&self) -> Result<Option<DeployHook>> {
        let timeout = parse_duration(&self.deploy_timeout, "--deploy-timeout")?;
        self.deploy.as_deref().map(|cmd| DeployHook::parse(cmd, timeout, "--deploy")).transpose()
    }
}

/// Phase 2 of a rotation: what counts as evidence that an older certificate is unused.
/// `--force` (no evidence) is declared by each command: `rotate` already has one.
#[derive(clap::Args, Debug, Clone)]
pub struct EvidenceArgs {
    /// Retire an older certificate once the sign-in report shows the newest one in use and the
    /// older one unused for this long (default 24h)
    #[arg(long, value_name = "DURATION")]
    pub quiet_for: Option<String>,
    /// Retire once the newest certificate started this long ago, whatever the sign-ins (7d, 0s)
    #[arg(long, value_name = "DURATION", conflicts_with = "quiet_for")]
    pub after: Option<String>,
}

impl EvidenceArgs {
    /// The evidence asked for; `force` (the command's `--force`) asks for none.
    pub fn evidence(&self, force: bool) -> Result<Evidence> {
        if force {
            if self.after.is_some() || self.quiet_for.is_some() {
                return Err(Error::input("--force retires without evidence: --after and --quiet-for do not apply")
                    .with_hint("give --force alone, or --after DURATION, or --quiet-for DURATION"));
            }
            return Ok(Evidence::Force);
        }
        if let Some(a) = &self.after {
            return Ok(Evidence::After(parse_duration(a, "--after")?));
        }
        let quiet_for = match &self.quiet_for {
            Some(q) => parse_duration(q, "--quiet-for")?,
            None => keycred::rotate::evidence::DEFAULT_QUIET_FOR,
        };
        Ok(Evidence::SignIns { quiet_for })
    }
}
