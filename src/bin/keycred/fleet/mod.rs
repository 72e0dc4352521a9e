//! `keycred fleet audit|rotate|retire`: many applications at once with an automation app's
//! identity. Parses, calls [`keycred::fleet`], prints; the library does the work. [`audit`]
//! reports credentials; [`rotation`] runs phase 1 (`rotate`) and phase 2 (`retire`) of the
//! lifecycle.

mod audit;
mod rotation;

use super::{CredArgs, Ctx, OutputFormat};
use keycred::authority::{Authority, EndpointVersion, DEFAULT_AUTHORITY};
use keycred::cert::SignatureAlg;
use keycred::fleet::request::AppId;
use keycred::fleet::{app_ids, parse_duration};
use keycred::graph::{self, GraphClient, GRAPH_URL};
use keycred::secret::{self, SecretString};
use keycred::token::{ClientAuth, ClientOptions, Grant, Target, TokenClient, TokenRequest};
use keycred::{ClientId, Error, Result, TenantId};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The automation app and where Graph is. Tenant, client id and authority are declared here
/// rather than by flattening `TenantArgs`: that group accepts `--app-id` as another name of
/// `--client-id`, and in `fleet` `--app-id` selects the applications to work on. The values go
/// through the same checks (`TenantId::new`, `ClientId::new`, `Authority::parse`).
#[derive(clap::Args, Debug, Clone)]
pub struct Auth {
    /// Application (client) id of the automation app (it needs Application.ReadWrite.All)
    #[arg(long, env = "AZURE_CLIENT_ID")]
    pub client_id: Option<String>,
    /// Tenant id
    #[arg(long, env = "AZURE_TENANT_ID")]
    pub tenant: String,
    /// Authority host (https; http only for loopback)
    #[arg(long, env = "AZURE_AUTHORITY_HOST", default_value = DEFAULT_AUTHORITY)]
    pub authority: String,
    #[command(flatten)]
    pub cred: CredArgs,
    /// Get the Graph token with the automation app's secret (environment variable)
    #[arg(long, value_name = "VAR")]
    pub secret_env: Option<String>,
    /// Use this Graph access token (environment variable) instead of getting one
    #[arg(long, value_name = "VAR")]
    pub graph_token_env: Option<String>,
    /// Microsoft Graph base URL (national clouds: https://graph.microsoft.us, ...)
    #[arg(long, default_value = GRAPH_URL)]
    pub graph_url: String,
    /// Extra trusted root CA (PEM), e.g. the emulator's --tls CA
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// Timeout of each HTTP request, seconds
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
}

/// Which applications, by id.
#[derive(clap::Args, Debug, Clone)]
pub struct Apps {
    /// Only this application (client) id (repeatable)
    #[arg(long = "app-id", value_name = "GUID")]
    pub app_ids: Vec<String>,
    /// Only the application ids in this file (one a line; # comments)
    #[arg(long, value_name = "FILE")]
    pub apps_file: Option<PathBuf>,
}

impl Apps {
    /// The ids given, checked.
    fn ids(&self) -> Result<Vec<AppId>> {
        app_ids(&self.app_ids, self.apps_file.as_deref())
    }
}

/// Which applications: by id, or by the end of their certificates.
#[derive(clap::Args, Debug, Clone)]
pub struct Select {
    /// Credentials ending within this time (30d, 12h), or already ended
    #[arg(long, value_name = "DURATION")]
    pub expiring_within: Option<String>,
    #[command(flatten)]
    pub apps: Apps,
}

impl Select {
    /// `--expiring-within`, parsed.
    fn window(&self) -> Result<Option<Duration>> {
        self.expiring_within.as_deref().map(|d| parse_duration(d, "--expiring-within")).transpose()
    }
}

/// Subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum Cmd {
    /// Report every credential of the tenant's applications: status, days left, last sign-in,
    /// why unusable
    Audit(audit::Args),
    /// Phase 1 for many applications: a new certificate added beside the old ones, verified and
    /// deployed; the old ones stay unless named with --remove or --remove-expired
    Rotate(rotation::RotateArgs),
    /// Phase 2 for many applications: the older certificates removed on evidence (the sign-in
    /// report, --after, or --force)
    Retire(rotation::RetireArgs),
}

impl Auth {
    pub(super) fn tenant(&self) -> Result<TenantId> {
        TenantId::new(&self.tenant).map_err(|e| e.context("--tenant"))
    }

    pub(super) fn tokens(&self) -> Result<TokenClient> {
        TokenClient::new(ClientOptions {
            timeout: std::time::Duration::from_secs(self.timeout),
            ca_file: self.ca_file.clone(),
            ..ClientOptions::default()
        })
    }

    /// The Graph client, with a token got as the automation app (renewed when it expires during
    /// a long run), or the token given.
    pub(super) fn graph(&self, tokens: &TokenClient) -> Result<GraphClient> {
        let mut renew: Option<graph::Renew> = None;
        let token: SecretString = match &self.graph_token_env {
            Some(var) => secret::from_env(var)?,
            None => {
                let auth = match (&self.secret_env, self.cred.given()) {
                    (Some(var), _) => ClientAuth::Secret(secret::from_env(var)?),
                    (None, true) => ClientAuth::Certificate {
                        cred: Arc::new(self.cred.load()?),
                        alg: SignatureAlg::Rs256,
                        x5c: false,
                    },
                    (None, false) => {
                        return Err(Error::input("no way to get a Graph token").with_hint(
                            "pass the automation app's --client-id with --cert or --secret-env VAR, or --graph-token-env VAR",
                        ))
                    }
                };
                let client_id = self.client_id.clone().filter(|c| !c.trim().is_empty()).ok_or_else(|| {
                    Error::input("no client id given for the automation app")
                        .with_hint("pass --client-id or set AZURE_CLIENT_ID")
                })?;
                let req = TokenRequest {
                    authority: Authority::parse(&self.authority)?,
                    tenant: self.tenant()?,
                    client_id: ClientId::new(&client_id).map_err(|e| e.context("--client-id"))?,
                    version: EndpointVersion::V2,
                    target: Target::Scopes(vec![
                        graph::token_resource(&self.graph_url).map_err(|e| e.context("--graph-url"))?
                    ]),
                    grant: Grant::ClientCredentials,
                    auth,
                };
                let token = tokens.request_token_blocking(&req)?.access_token;
                let tokens = tokens.clone();
                renew = Some(Arc::new(move || {
                    let (tokens, req) = (tokens.clone(), req.clone());
                    Box::pin(async move { tokens.request_token(&req).await.map(|t| t.access_token) })
                }));
                token
            }
        };
        let g = GraphClient::new(&self.graph_url, token, tokens.http_for(&self.graph_url).clone())?;
        Ok(match renew {
            Some(r) => g.with_renew(r),
            None => g,
        })
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::internal(format!("cannot start the async runtime: {e}")))
}

/// Runs `keycred fleet ...`.
pub fn run(cmd: &Cmd, ctx: &Ctx) -> Result<u8> {
    if ctx.format == OutputFormat::Csv && !matches!(cmd, Cmd::Audit(_)) {
        return Err(Error::input("-o csv is for `fleet audit`").with_hint("use -o json or the default text"));
    }
    match cmd {
        Cmd::Audit(a) => a.run(ctx),
        Cmd::Rotate(a) => a.run(ctx),
        Cmd::Retire(a) => a.run(ctx),
    }
}
