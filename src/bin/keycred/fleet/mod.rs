//! `keycred fleet audit|rotate|retire`: many applications at once with an automation app's
//! identity. Parses, calls [`keycred::fleet`], prints; the library does the work. [`audit`]
//! prints the audit; [`rotation`] runs phase 1 (`rotate`) and phase 2 (`retire`) of the
//! lifecycle.

mod audit;
mod rotation;
mod table;

use super::common::GraphAccessArgs;
use super::{Ctx, OutputFormat};
use keycred::authority::{Authority, EndpointVersion, DEFAULT_AUTHORITY};
use keycred::fleet::audit::{CredStatus, Filters};
use keycred::fleet::{app_ids, parse_duration};
use keycred::graph::GraphClient;
use keycred::token::{Grant, Registration, Target, TokenClient, TokenRequest};
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
    pub access: GraphAccessArgs,
}

/// Which applications, by id.
#[derive(clap::Args, Debug, Clone)]
pub struct Apps {
    /// Only this application (client) id (repeatable)
    #[arg(long = "app-id", value_name = "GUID", value_parser = guid)]
    pub app_ids: Vec<ClientId>,
    /// Only the application ids in this file (one a line; # comments)
    #[arg(long, value_name = "FILE")]
    pub apps_file: Option<PathBuf>,
}

impl Apps {
    /// The ids given, checked, each once.
    fn ids(&self) -> Result<Vec<ClientId>> {
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

/// An application id given on the command line, checked by clap as it parses it.
fn guid(s: &str) -> std::result::Result<ClientId, String> {
    ClientId::guid(s, "--app-id").map_err(|_| "not an application (client) id (a GUID)".to_string())
}

/// `--status` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StatusArg {
    /// Usable and not ending within the window.
    Valid,
    /// Usable and ending within the window.
    Expiring,
    /// Past its end.
    Expired,
    /// Before its start.
    #[value(name = "not_yet_valid")]
    NotYetValid,
    /// Entra cannot verify with it.
    Unusable,
}

impl From<StatusArg> for CredStatus {
    fn from(s: StatusArg) -> Self {
        match s {
            StatusArg::Valid => CredStatus::Valid,
            StatusArg::Expiring => CredStatus::Expiring,
            StatusArg::Expired => CredStatus::Expired,
            StatusArg::NotYetValid => CredStatus::NotYetValid,
            StatusArg::Unusable => CredStatus::Unusable,
        }
    }
}

/// `--fail-on` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    /// A credential ends within the window.
    Expiring,
    /// A credential has ended.
    Expired,
    /// A certificate Entra cannot verify with.
    Unusable,
}

impl FailOn {
    fn status(self) -> CredStatus {
        match self {
            FailOn::Expiring => CredStatus::Expiring,
            FailOn::Expired => CredStatus::Expired,
            FailOn::Unusable => CredStatus::Unusable,
        }
    }
}

/// Subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum Cmd {
    /// Report every credential of the tenant's applications: status, days left, last sign-in,
    /// why unusable
    #[command(
        after_help = "Output: a table fitted to the terminal's width (whole values with -o json), -o json, or -o csv \
                      (comma-separated values for spreadsheets, offered by this command only)."
    )]
    Audit {
        #[command(flatten)]
        auth: Auth,
        #[command(flatten)]
        select: Select,
        /// Only credentials with this status (repeatable, or comma-separated)
        #[arg(long, value_enum, value_delimiter = ',')]
        status: Vec<StatusArg>,
        /// Also service principals' credentials (SAML signing certificates live there)
        #[arg(long)]
        include_service_principals: bool,
        /// Only credentials that have not signed in for this long, or never (Entra's "remove
        /// unused credentials"); needs the sign-in report (AuditLog.Read.All)
        #[arg(long, value_name = "DURATION")]
        unused: Option<String>,
        /// Exit 4 when a reported credential is expiring, expired or unusable (repeatable)
        #[arg(long, value_enum, value_delimiter = ',')]
        fail_on: Vec<FailOn>,
    },
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

    /// The token client; the applications `fleet` works on are managed through Graph.
    pub(super) fn tokens(&self) -> Result<TokenClient> {
        Ok(self.access.http.client()?.with_registration(Registration::Graph))
    }

    /// The Graph client, with a token got as the automation app (renewed when it expires during
    /// a long run), or the token given.
    pub(super) fn graph(&self, tokens: &TokenClient) -> Result<GraphClient> {
        let cred = if self.access.cred.given() {
            Some(Arc::new(self.access.cred.load_using(Some(&self.access.http))?))
        } else {
            None
        };
        let (token, req) = self.access.graph_token(tokens, cred, |auth| {
            let client_id = self.client_id.clone().filter(|c| !c.trim().is_empty()).ok_or_else(|| {
                Error::input("no client id given for the automation app")
                    .with_hint("pass --client-id or set AZURE_CLIENT_ID")
            })?;
            Ok(TokenRequest {
                authority: Authority::parse(&self.authority)?,
                tenant: self.tenant()?,
                client_id: ClientId::new(&client_id).map_err(|e| e.context("--client-id"))?,
                version: EndpointVersion::V2,
                target: Target::Scopes(vec![self.access.graph.resource()?]),
                grant: Grant::ClientCredentials,
                auth,
            })
        })?;
        let g = GraphClient::new(&self.access.graph.graph_url, token, tokens.transport())?;
        Ok(match req {
            Some(req) => {
                let tokens = tokens.clone();
                g.with_renew(Arc::new(move || {
                    let (tokens, req) = (tokens.clone(), req.clone());
                    Box::pin(async move { tokens.request_token(&req).await.map(|t| t.access_token) })
                }))
            }
            None => g,
        })
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::internal("cannot start the async runtime").caused_by(e))
}

/// Runs `keycred fleet ...`.
pub fn run(cmd: &Cmd, ctx: &Ctx) -> Result<u8> {
    if ctx.format == OutputFormat::Csv && !matches!(cmd, Cmd::Audit { .. }) {
        return Err(Error::input("-o csv is for `fleet audit`").with_hint("use -o json or the default text"));
    }
    match cmd {
        Cmd::Audit { auth, select, status, include_service_principals, unused, fail_on } => {
            let window = select.window()?;
            let filters = Filters {
                window,
                only_expiring: window.is_some(),
                statuses: status.iter().map(|s| CredStatus::from(*s)).collect(),
                app_ids: select.apps.ids()?,
                service_principals: *include_service_principals,
                unused: unused.as_deref().map(|d| parse_duration(d, "--unused")).transpose()?,
            };
            let tokens = auth.tokens()?;
            let rt = runtime()?;
            let g = auth.graph(&tokens)?;
            audit::run_audit(ctx, &rt, &g, &filters, fail_on)
        }
        Cmd::Rotate(a) => a.run(ctx),
        Cmd::Retire(a) => a.run(ctx),
    }
}
