//! `keycred fleet audit|rotate`: many applications at once with an automation app's identity.
//! Parses, calls [`keycred::fleet`], prints; the library does the work.

mod audit;
mod table;

use super::common::GraphAccessArgs;
use super::output::out_line;
use super::{Ctx, OutputFormat};
use keycred::authority::{Authority, EndpointVersion, DEFAULT_AUTHORITY};
use keycred::cert::KeySize;
use keycred::fleet::audit::{CredStatus, Filters};
use keycred::fleet::rotate::{self, Options, Outcome, Progress, Result_};
use keycred::fleet::{app_ids, parse_duration};
use keycred::graph::limiter::Limiter;
use keycred::graph::GraphClient;
use keycred::token::{Grant, Registration, Target, TokenClient, TokenRequest};
use keycred::{ClientId, Error, Result, TenantId};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

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

/// Which applications.
#[derive(clap::Args, Debug, Clone)]
pub struct Select {
    /// Credentials ending within this time (30d, 12h), or already ended
    #[arg(long, value_name = "DURATION")]
    pub expiring_within: Option<String>,
    /// Only this application (client) id (repeatable)
    #[arg(long = "app-id", value_name = "GUID", value_parser = guid)]
    pub app_ids: Vec<ClientId>,
    /// Only the application ids in this file (one a line; # comments)
    #[arg(long, value_name = "FILE")]
    pub apps_file: Option<PathBuf>,
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
    /// Report every credential of the tenant's applications: status, days left, why unusable
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
        /// Exit 4 when a reported credential is expiring, expired or unusable (repeatable)
        #[arg(long, value_enum, value_delimiter = ',')]
        fail_on: Vec<FailOn>,
    },
    /// Rotate the certificates of many applications: new one added, verified, then the old removed
    Rotate {
        #[command(flatten)]
        auth: Auth,
        #[command(flatten)]
        select: Select,
        /// Directory for the new certificates (OUT_DIR/<appId>/NAME.key, .cer, .pem) and the journal
        #[arg(long, default_value = ".")]
        out_dir: PathBuf,
        /// Base name of the new files (default: fleet-<start time>; a resumed run keeps its own)
        #[arg(long)]
        name: Option<String>,
        /// RSA key size: 2048, 3072 or 4096
        #[arg(long, default_value_t = 2048)]
        key_size: u32,
        /// Validity of the new certificates, days
        #[arg(long, default_value_t = 365)]
        days: u32,
        /// Applications rotated at a time
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// Print the plan and change nothing
        #[arg(long)]
        dry_run: bool,
        /// Journal file that makes the run resumable (default OUT_DIR/fleet-journal.jsonl)
        #[arg(long)]
        journal: Option<PathBuf>,
        /// Token attempts with each new certificate before giving up on it
        #[arg(long, default_value_t = 6)]
        verify_attempts: u32,
    },
}

impl Auth {
    fn tenant(&self) -> Result<TenantId> {
        TenantId::new(&self.tenant).map_err(|e| e.context("--tenant"))
    }

    /// The token client; the applications `fleet` works on are managed through Graph.
    fn tokens(&self) -> Result<TokenClient> {
        Ok(self.access.http.client()?.with_registration(Registration::Graph))
    }

    /// The Graph client, with a token got as the automation app (renewed when it expires during
    /// a long run), or the token given.
    fn graph(&self, tokens: &TokenClient) -> Result<GraphClient> {
        let cred = if self.access.cred.given() { Some(Arc::new(self.access.cred.load()?)) } else { None };
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
        .map_err(|e| Error::internal(format!("cannot start the async runtime: {e}")))
}

/// Runs `keycred fleet ...`.
pub fn run(cmd: &Cmd, ctx: &Ctx) -> Result<u8> {
    match cmd {
        Cmd::Audit { auth, select, status, include_service_principals, fail_on } => {
            let window =
                select.expiring_within.as_deref().map(|d| parse_duration(d, "--expiring-within")).transpose()?;
            let filters = Filters {
                window,
                only_expiring: window.is_some(),
                statuses: status.iter().map(|s| CredStatus::from(*s)).collect(),
                app_ids: app_ids(&select.app_ids, select.apps_file.as_deref())?,
                service_principals: *include_service_principals,
            };
            let tokens = auth.tokens()?;
            let rt = runtime()?;
            let g = auth.graph(&tokens)?;
            audit::run_audit(ctx, &rt, &g, &filters, fail_on)
        }
        Cmd::Rotate { auth, select, out_dir, name, key_size, days, concurrency, dry_run, journal, verify_attempts } => {
            if ctx.format == OutputFormat::Csv {
                return Err(Error::input("-o csv is for `fleet audit`").with_hint("use -o json or the default text"));
            }
            let ids = app_ids(&select.app_ids, select.apps_file.as_deref())?;
            let window =
                select.expiring_within.as_deref().map(|d| parse_duration(d, "--expiring-within")).transpose()?;
            if window.is_none() && ids.is_empty() {
                return Err(Error::input("say which applications to rotate").with_hint(
                    "pass --expiring-within 30d (every app with a certificate ending within 30 days), or --app-id / --apps-file",
                ));
            }
            let mut opts = Options::new(auth.tenant()?, Authority::parse(&auth.authority)?, out_dir.clone());
            opts.verify_scope = format!("{}/.default", auth.access.graph.resource()?);
            opts.name = name.clone();
            opts.key_size = KeySize::from_bits(*key_size)?;
            opts.days = *days;
            if let Some(w) = window {
                opts.window = w;
            }
            opts.app_ids = ids;
            opts.concurrency = *concurrency;
            opts.dry_run = *dry_run;
            opts.journal = journal.clone();
            opts.verify_attempts = (*verify_attempts).max(1);
            opts.check()?;
            let tokens = auth.tokens()?;
            let rt = runtime()?;
            let g = auth.graph(&tokens)?.with_limiter(Arc::new(Limiter::new(*concurrency)));
            run_rotate(ctx, &rt, g, tokens, opts)
        }
    }
}

/// One application's line: its id and name, what happened, and the keyIds involved. A dry run's
/// keyIds are those of the certificates it would remove: the new certificate's keyId does not
/// exist yet (Graph's entry gets it when the certificate is added).
fn outcome_line(o: &Outcome) -> String {
    let name: String = o.display_name.as_deref().unwrap_or("-").chars().take(24).collect();
    let head = format!("{}  {name:<24}", o.app_id);
    let removed = |verb: &str| match o.removed.is_empty() {
        true => format!("{verb} nothing"),
        false => format!("{verb} keyId {}", o.removed.join(", ")),
    };
    let new = |o: &Outcome| o.thumbprint.as_deref().map(|t| format!("new thumbprint {t}")).unwrap_or_default();
    let failure = match (o.step, &o.reason) {
        (Some(step), Some(r)) => format!("at {step}: {r}"),
        (Some(step), None) => format!("at {step}"),
        (None, r) => r.clone().unwrap_or_default(),
    };
    let what = match o.result {
        Result_::Rotated => format!("rotated          {}  {}", new(o), removed("removed")),
        Result_::AlreadyRotated => format!("already rotated  {}", new(o)),
        Result_::Planned => format!(
            "would rotate     new certificate in {} (its keyId is given when it is added), then {}",
            o.bundle.as_deref().unwrap_or("?"),
            removed("remove the replaced")
        ),
        Result_::Interrupted => format!("interrupted      {failure}"),
        Result_::Failed => format!("FAILED           {failure}"),
        Result_::Skipped => format!("skipped          {}", o.reason.as_deref().unwrap_or("")),
    };
    format!("{head}  {what}").trim_end().to_string()
}

/// Progress on a terminal: applications done out of selected, throttled waits, failures.
struct Bar {
    pb: indicatif::ProgressBar,
    limiter: Arc<Limiter>,
    failed: std::sync::atomic::AtomicU64,
}

impl Progress for Bar {
    fn selected(&self) {
        self.pb.inc_length(1);
    }
    fn finished(&self, o: &Outcome) {
        if o.result == Result_::Failed {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        self.pb.set_message(format!(
            "{} failed, {} throttled waits, {} in flight allowed",
            self.failed.load(Ordering::Relaxed),
            self.limiter.throttled_count(),
            self.limiter.limit()
        ));
        self.pb.inc(1);
    }
}

fn run_rotate(
    ctx: &Ctx,
    rt: &tokio::runtime::Runtime,
    g: GraphClient,
    tokens: TokenClient,
    opts: Options,
) -> Result<u8> {
    let dry_run = opts.dry_run;
    let stop = Arc::new(AtomicBool::new(false));
    let progress: Arc<dyn Progress> = if ctx.stderr_is_terminal() {
        let pb = indicatif::ProgressBar::new(0);
        if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} apps  {msg}") {
            pb.set_style(style);
        }
        Arc::new(Bar { pb, limiter: g.limiter().clone(), failed: Default::default() })
    } else {
        Arc::new(rotate::Quiet)
    };
    let summary = rt.block_on(async {
        let flag = stop.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!(
                    "keycred: stopping after the current step of the applications in flight (Ctrl-C again to quit now)"
                );
                flag.store(true, Ordering::Relaxed);
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
        });
        rotate::run(Arc::new(g), Arc::new(tokens), opts, stop.clone(), progress).await
    })?;
    if ctx.json() {
        ctx.print_json(&summary);
    } else {
        // The applications acted on first, then those left alone, each with its reason.
        let (skipped, acted): (Vec<&Outcome>, Vec<&Outcome>) =
            summary.apps.iter().partition(|o| o.result == Result_::Skipped);
        for o in acted.into_iter().chain(skipped) {
            out_line(&outcome_line(o));
        }
        out_line(&format!(
            "{} selected: {} rotated, {} already rotated, {} planned, {} failed{}; {} skipped; {} throttled waits",
            summary.selected,
            summary.rotated,
            summary.already_rotated,
            summary.planned,
            summary.failed,
            if summary.interrupted { ", interrupted" } else { "" },
            summary.skipped,
            summary.throttled
        ));
        if let Some(j) = &summary.journal {
            out_line(&format!("journal: {j}"));
        }
    }
    if dry_run || summary.all_rotated() {
        return Ok(keycred::error::exit::OK);
    }
    if summary.interrupted {
        return Err(Error::internal("interrupted; the journal records what was done")
            .with_hint("run the same command again to resume"));
    }
    Err(Error::remote(format!("{} of {} applications were not rotated", summary.failed, summary.selected))
        .with_hint("see each failure above; run the same command again to retry them"))
}
