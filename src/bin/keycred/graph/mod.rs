//! `keycred graph list|add|remove|rotate|retire`: an application's certificates through
//! Microsoft Graph; `keycred graph permission add|remove|list`: its API permissions
//! (`requiredResourceAccess`); `keycred graph fic add|list|remove`: its federated identity
//! credentials ([`fic`]). `rotate` and `retire` (phases 1 and 2 of the lifecycle) are in
//! [`rotation`].
//!
//! Self-rotation (addKey/removeKey with a proof signed by the app's current certificate) is the
//! default; `--patch`, or an application with no valid certificate left, PATCHes the whole
//! `keyCredentials` array with a Graph token, keeping every existing entry.

mod fic;
mod rotation;

pub use fic::{list_federated, FicCommon};

use super::common::{GraphAccessArgs, NewCertArgs};
use super::output::{generate, out_line, print_pairs};
use super::permissions::{print_access, Wanted};
use super::{Ctx, TenantArgs};
use keycred::authority::EndpointVersion;
use keycred::cert::generate::resolve_validity;
use keycred::cert::{load_file, LoadedCredential};
use keycred::graph::policy::{is_denied, Effective, DEFAULT_DAYS};
use keycred::graph::{self, Application, GraphClient, Method};
use keycred::manifest::{ListRow, Selector};
use keycred::token::{ClientAuth, Grant, Registration, Target, TokenClient, TokenRequest};
use keycred::{dates, fsio, Error, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Options every graph subcommand takes.
#[derive(clap::Args, Debug, Clone)]
pub struct Common {
    /// The app whose certificates change (--client-id, or --app-id), its tenant and authority
    #[command(flatten)]
    pub tenant: TenantArgs,
    #[command(flatten)]
    pub access: GraphAccessArgs,
    /// aud of the proof of possession: aad-graph (00000002-..., the addKey docs) or ms-graph (00000003-...)
    #[arg(long, value_enum, default_value_t = ProofAud::AadGraph)]
    pub proof_aud: ProofAud,
    /// Always PATCH the whole keyCredentials array instead of addKey/removeKey
    #[arg(long)]
    pub patch: bool,
}

/// `--proof-aud`: the `aud` of addKey/removeKey proofs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ProofAud {
    /// Azure AD Graph's id, as in the addKey documentation
    AadGraph,
    /// Microsoft Graph's id, as in newer documentation
    MsGraph,
}

impl ProofAud {
    fn id(self) -> &'static str {
        match self {
            ProofAud::AadGraph => graph::PROOF_AUD_AAD_GRAPH,
            ProofAud::MsGraph => graph::PROOF_AUD_MS_GRAPH,
        }
    }
}

/// Subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum Cmd {
    /// List the application's certificates
    List(Common),
    /// Add a certificate (addKey with a proof, or PATCH): an existing one (--new-cert) or a new
    /// self-signed one (--name), checked first against the application's app management policy
    Add(AddArgs),
    /// Remove a certificate (removeKey with a proof, or PATCH)
    #[command(group(clap::ArgGroup::new("what").required(true).args(["key_id", "thumbprint"])))]
    Remove {
        #[command(flatten)]
        common: Common,
        /// keyId to remove
        #[arg(long)]
        key_id: Option<String>,
        /// Thumbprint to remove (hex, base64 or base64url)
        // base64url thumbprints start with '-' one time in 64: they are values, not flags.
        #[arg(long, allow_hyphen_values = true)]
        thumbprint: Option<String>,
        /// Allow removing the last valid certificate
        #[arg(long)]
        force: bool,
    },
    /// Phase 1: a new certificate added beside the current one, verified and deployed; the
    /// old ones stay unless named with --remove or --remove-expired
    Rotate(rotation::RotateArgs),
    /// Phase 2: the older certificates removed on evidence (the sign-in report, which the
    /// Graph token must be allowed to read, AuditLog.Read.All; or --after, or --force)
    Retire(rotation::RetireArgs),
    /// Edit the API permissions the application asks for (PATCH of requiredResourceAccess)
    #[command(subcommand)]
    Permission(PermissionCmd),
    /// The application's federated identity credentials (secretless sign-in from GitHub
    /// Actions, Kubernetes and other issuers)
    #[command(subcommand)]
    Fic(fic::FicCmd),
}

/// `keycred graph add`.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["new_cert", "name"])))]
pub struct AddArgs {
    #[command(flatten)]
    common: Common,
    /// The certificate to add (PEM, DER or PFX)
    #[arg(long = "new-cert")]
    new_cert: Option<PathBuf>,
    #[command(flatten)]
    generate: GenerateArgs,
    /// displayName of the new entry
    #[arg(long)]
    display_name: Option<String>,
    /// Proceed, with a warning, when the app management policy cannot be read (no Policy.Read.All)
    #[arg(long)]
    policy_unknown_ok: bool,
}

/// `keycred graph add --name ...`: the certificate generated and its files.
#[derive(clap::Args, Debug)]
struct GenerateArgs {
    /// Generate a new self-signed certificate: base name of its files (NAME.key, NAME.cer, NAME.pem)
    #[arg(long, conflicts_with = "new_cert")]
    name: Option<String>,
    /// Directory for the new files
    #[arg(long, default_value = ".")]
    out_dir: PathBuf,
    /// Subject DN of the new certificate (default CN=NAME)
    #[arg(long, requires = "name")]
    subject: Option<String>,
    /// RSA key size: 2048, 3072 or 4096
    #[arg(long, default_value_t = 2048)]
    key_size: u32,
    /// Validity in days [default: 365, or the app management policy's cap when shorter]
    #[arg(long, requires = "name", conflicts_with = "not_after")]
    days: Option<u32>,
    /// End of validity (YYYY-MM-DD or RFC 3339)
    #[arg(long, requires = "name")]
    not_after: Option<String>,
    /// Replace existing files
    #[arg(long, requires = "name")]
    force: bool,
}

impl GenerateArgs {
    /// The same arguments as `keycred new` takes, to plan the files the same way.
    fn new_cert_args(&self, name: &str) -> NewCertArgs {
        NewCertArgs {
            name: Some(name.to_string()),
            out_dir: self.out_dir.clone(),
            subject: self.subject.clone(),
            key_size: self.key_size,
            days: self.days,
            not_before: None,
            not_after: self.not_after.clone(),
            pfx: false,
            pfx_legacy: false,
            password_env: None,
            force: self.force,
        }
    }
}

/// `keycred graph permission`.
#[derive(clap::Subcommand, Debug)]
pub enum PermissionCmd {
    /// Ask for API permissions: add them to requiredResourceAccess
    Add {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        wanted: Wanted,
    },
    /// Remove API permissions from requiredResourceAccess
    Remove {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        wanted: Wanted,
    },
    /// List requiredResourceAccess with the permissions' names
    List(Common),
}

struct Session {
    rt: tokio::runtime::Runtime,
    graph: GraphClient,
    tokens: TokenClient,
    app: Application,
    cred: Option<Arc<LoadedCredential>>,
    method: Method,
    proof_aud: &'static str,
}

impl Common {
    fn token_request(&self, auth: ClientAuth) -> Result<TokenRequest> {
        Ok(TokenRequest {
            authority: self.tenant.authority()?,
            tenant: self.tenant.tenant()?,
            client_id: self.tenant.client_id()?,
            version: EndpointVersion::V2,
            target: Target::new(&[self.access.graph.resource()?], None)?,
            grant: Grant::ClientCredentials,
            auth,
        })
    }

    fn open(&self) -> Result<Session> {
        // Checked first, whichever way the Graph token is obtained.
        let (app_id, _) = (self.tenant.client_id()?, self.tenant.tenant()?);
        let cred = if self.access.cred.given() {
            Some(Arc::new(self.access.cred.load_using(Some(&self.access.http))?))
        } else {
            None
        };
        let tokens = self.access.http.client()?.with_registration(Registration::Graph);
        let (token, _) = self.access.graph_token(&tokens, cred.clone(), |auth| self.token_request(auth))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::internal("cannot start the async runtime").caused_by(e))?;
        let graph = GraphClient::new(&self.access.graph.graph_url, token, tokens.transport())
            .map_err(|e| e.context("--graph-url"))?;
        let app = rt.block_on(graph.get_by_app_id(app_id.as_str()))?;
        let method = if self.patch { Method::Patch } else { Method::Auto };
        let proof_aud = self.proof_aud.id();
        Ok(Session { rt, graph, tokens, app, cred, method, proof_aud })
    }
}

fn rows(app: &Application) -> Vec<ListRow> {
    let now = dates::now();
    graph::credentials_of(app).iter().map(|c| ListRow::of(c, now)).collect()
}

fn print_change(ctx: &Ctx, what: &str, change: &graph::Change) {
    if ctx.json() {
        ctx.print_json(change);
    } else {
        let kc = &change.key_credential;
        print_pairs(&[
            (what, kc.key_id.as_deref().unwrap_or("?").to_string()),
            ("method", change.method.to_string()),
            ("customKeyIdentifier", kc.custom_key_identifier.as_deref().unwrap_or("?").to_string()),
        ]);
    }
}

/// Runs `keycred graph ...`.
pub fn run(cmd: &Cmd, ctx: &Ctx) -> Result<u8> {
    match cmd {
        Cmd::List(c) => list(c, ctx)?,
        Cmd::Add(a) => add(a, ctx)?,
        Cmd::Remove { common, key_id, thumbprint, force } => {
            remove(common, key_id.as_deref(), thumbprint.as_deref(), *force, ctx)?
        }
        Cmd::Rotate(a) => return rotation::rotate(a, ctx),
        Cmd::Retire(a) => rotation::retire(a, ctx)?,
        Cmd::Permission(p) => permission(p, ctx)?,
        Cmd::Fic(f) => fic::run(f, ctx)?,
    }
    Ok(keycred::error::exit::OK)
}

fn permission(cmd: &PermissionCmd, ctx: &Ctx) -> Result<()> {
    // Names are resolved before any request: an unknown one costs no token.
    let (common, edit) = match cmd {
        PermissionCmd::List(c) => (c, None),
        PermissionCmd::Add { common, wanted } => (common, Some((true, wanted.resolve()?))),
        PermissionCmd::Remove { common, wanted } => (common, Some((false, wanted.resolve()?))),
    };
    let s = common.open()?;
    let after = match &edit {
        None => s.rt.block_on(s.graph.required_access(&s.app.id))?,
        Some((add, (resource, ids))) => s.rt.block_on(s.graph.update_required_access(&s.app.id, |m| {
            if *add {
                m.add_access(resource, ids)
            } else {
                m.remove_access(resource, ids)
            }
        }))?,
    };
    let origin = format!("application {}", s.app.app_id);
    if edit.is_some() && !ctx.json() {
        out_line(&format!("{origin} now asks for:"));
    }
    print_access(ctx, &origin, &after.required_access()?);
    if matches!(edit, Some((true, _))) && !ctx.json() {
        out_line("an administrator must consent before tokens carry them (`keycred consent-url`)");
    }
    Ok(())
}

fn list(c: &Common, ctx: &Ctx) -> Result<()> {
    let s = c.open()?;
    let r = rows(&s.app);
    if ctx.json() {
        ctx.print_json(&r);
        return Ok(());
    }
    out_line(&format!("application {} (object id {})", s.app.app_id, s.app.id));
    for row in &r {
        out_line(&format!(
            "{}  {}  {}  {} .. {}  {}",
            row.key_id.as_deref().unwrap_or("-"),
            row.thumbprint.as_deref().unwrap_or("-"),
            row.status.name(),
            row.start.as_deref().unwrap_or("-"),
            row.end.as_deref().unwrap_or("-"),
            row.display_name.as_deref().unwrap_or("-"),
        ));
    }
    Ok(())
}

fn add(a: &AddArgs, ctx: &Ctx) -> Result<()> {
    match (&a.new_cert, &a.generate.name) {
        (Some(path), _) => add_existing(a, path, ctx),
        (None, Some(name)) => add_generated(a, name, ctx),
        (None, None) => Err(Error::input("say what to add: --new-cert FILE, or --name NAME to generate one")),
    }
}

/// The application's app management policy, or `None` when it could not be read for lack of
/// `Policy.Read.All` and `--policy-unknown-ok` says to go on without it.
fn effective_policy(s: &Session, unknown_ok: bool) -> Result<Option<Effective>> {
    match s.rt.block_on(s.graph.effective_policy(&s.app.id)) {
        Ok(p) => Ok(Some(p)),
        Err(e) if is_denied(&e) => policy_unreadable(&format!("application {}", s.app.app_id), unknown_ok, &e),
        Err(e) => Err(e),
    }
}

/// Graph refused to show the policy (no `Policy.Read.All`): an error naming the permission, or
/// with `--policy-unknown-ok` a warning and `None`.
pub(crate) fn policy_unreadable<T>(whose: &str, unknown_ok: bool, e: &Error) -> Result<Option<T>> {
    if unknown_ok {
        eprintln!(
            "keycred: warning: the app management policy could not be read (Graph refused: Policy.Read.All \
             missing); going on without checking the certificate against it"
        );
        return Ok(None);
    }
    Err(Error::remote(format!(
        "cannot read the app management policy of {whose}: reading it needs the Microsoft Graph permission \
         Policy.Read.All; nothing was generated or sent ({})",
        e.message()
    ))
    .with_hint(
        "grant Policy.Read.All (`keycred graph permission add --api graph --role Policy.Read.All`, then admin \
         consent), or pass --policy-unknown-ok to go on without checking",
    ))
}

/// Checks a certificate lasting `lifetime` against the policy; a refusal's hint names the
/// flags that fix it.
pub(crate) fn check_policy(p: &Effective, lifetime: time::Duration, self_signed: bool) -> Result<()> {
    p.check(lifetime, self_signed).map_err(|e| match p.cap().filter(|c| lifetime > *c) {
        Some(cap) => e.with_hint(format!("ask for --days {} or fewer (or leave --days out)", cap.whole_days())),
        None => e.with_hint(
            "have your CA issue the certificate, then add it with `keycred graph add --new-cert FILE` (or \
             `keycred manifest add` for a manifest file)",
        ),
    })
}

fn add_existing(a: &AddArgs, path: &Path, ctx: &Ctx) -> Result<()> {
    let new = load_file(path, None)?
        .certs
        .into_iter()
        .next()
        .ok_or_else(|| Error::input(format!("{}: no certificate in the file", path.display())))?;
    let s = a.common.open()?;
    if let Some(p) = effective_policy(&s, a.policy_unknown_ok)? {
        check_policy(&p, new.not_after() - new.not_before(), new.subject_der() == new.issuer_der())
            .map_err(|e| e.context(path.display()))?;
    }
    let change = s.rt.block_on(graph::add_certificate(
        &s.graph,
        &s.app,
        s.cred.as_deref(),
        &new,
        a.display_name.as_deref(),
        s.method,
        s.proof_aud,
    ))?;
    print_change(ctx, "added keyId", &change);
    Ok(())
}

/// Generates a self-signed certificate within the policy, writes its files, registers it; the
/// files are put back as they were when the registration fails.
fn add_generated(a: &AddArgs, name: &str, ctx: &Ctx) -> Result<()> {
    let args = a.generate.new_cert_args(name);
    // The arguments and the files in the way are checked before any request.
    args.plan()?;
    let s = a.common.open()?;
    let policy = effective_policy(&s, a.policy_unknown_ok)?;
    let plan = args.plan_with_default(policy.as_ref().map_or(DEFAULT_DAYS, Effective::default_days))?;
    if let Some(p) = &policy {
        let (start, end) = resolve_validity(plan.request().validity, dates::now())?;
        check_policy(p, end - start, true)?;
    }
    let (cert, key) = generate(ctx, &plan)?;
    let before = fsio::Snapshot::before(&plan.paths())?;
    let (files, new) = plan.write_credential(cert, key).map_err(|e| before.undo(e, ""))?;
    let change =
        s.rt.block_on(graph::add_certificate(
            &s.graph,
            &s.app,
            s.cred.as_deref(),
            &new.cert,
            a.display_name.as_deref(),
            s.method,
            s.proof_aud,
        ))
        .map_err(|e| before.undo(e, "the application is unchanged; "))?;
    if ctx.json() {
        let mut v = serde_json::to_value(&change).map_err(|e| Error::internal(e.to_string()))?;
        v["files"] = serde_json::to_value(&files).map_err(|e| Error::internal(e.to_string()))?;
        ctx.print_json(&v);
    } else {
        print_change(ctx, "added keyId", &change);
        print_pairs(&[("key file", files.key.clone()), ("cert file", files.cert.clone())]);
    }
    Ok(())
}

fn remove(common: &Common, key_id: Option<&str>, thumbprint: Option<&str>, force: bool, ctx: &Ctx) -> Result<()> {
    let s = common.open()?;
    let key_id = match (key_id, thumbprint) {
        (Some(k), _) => k.to_string(),
        (None, Some(t)) => {
            let sel = Selector::thumbprint(t)?;
            graph::key_id_of(&s.app, &sel).ok_or_else(|| {
                Error::input(format!("application {} has no certificate with {sel}; nothing was changed", s.app.app_id))
                    .with_hint("`keycred graph list` shows the application's certificates")
            })?
        }
        (None, None) => return Err(Error::input("say what to remove: --key-id or --thumbprint")),
    };
    if !force {
        graph::ensure_not_locked_out(&s.app, &key_id, dates::now())
            .map_err(|e| e.with_hint("add the new certificate first, or pass --force if that is intended"))?;
    }
    let change = s.rt.block_on(graph::remove_certificate(
        &s.graph,
        &s.app,
        s.cred.as_deref(),
        &key_id,
        s.method,
        s.proof_aud,
        force,
    ))?;
    print_change(ctx, "removed keyId", &change);
    Ok(())
}
