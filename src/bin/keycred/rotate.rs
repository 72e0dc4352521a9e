//! `keycred rotate`: a manifest file's rotation. Phase 1 adds a new certificate beside the old
//! ones, verifies it when asked, runs the deploy hook and removes only what is named; phase 2
//! (`--retire`) removes the older certificates on evidence. Parses, calls
//! [`keycred::rotate`], prints.

use super::common::{self, CaFileArgs, EvidenceArgs, FormatArgs, NewCertArgs, PhaseOneArgs, TenantArgs};
use super::output::{deploy_outcome, print_retire, print_rotation, with_stages};
use super::Ctx;
use keycred::graph::{GraphClient, GRAPH_URL};
use keycred::manifest::{EntryOptions, Manifest};
use keycred::rotate::evidence::Evidence;
use keycred::rotate::{self, ManifestRotation, Verification};
use keycred::secret;
use keycred::token::{Registration, TokenClient};
use keycred::{Error, Result};
use std::path::PathBuf;

/// Arguments. No argument group of its own: flattened groups would otherwise be checked
/// against one named `Args` too, and two groups of one name make clap panic.
#[derive(clap::Args, Debug)]
#[group(skip)]
pub struct Args {
    /// The manifest to rotate
    #[arg(long)]
    pub manifest: PathBuf,
    /// Phase 2: instead of adding a certificate, retire the older ones on evidence (the
    /// sign-in report read with --graph-token-env, --after DURATION, or --force)
    #[arg(long, conflicts_with_all = [
        "remove", "remove_expired", "deploy", "verify", "name", "subject", "days", "not_before",
        "not_after", "pfx", "pfx_legacy", "display_name", "allow_lockout", "key_size",
    ])]
    pub retire: bool,
    #[command(flatten)]
    pub new: NewCertArgs,
    #[command(flatten)]
    pub format: FormatArgs,
    /// displayName of the new entry (Graph format)
    #[arg(long)]
    pub display_name: Option<String>,
    #[command(flatten)]
    pub phase_one: PhaseOneArgs,
    /// Allow the removals to leave no currently valid certificate (e.g. the current one removed
    /// while the new one starts later); the app cannot sign in until one becomes valid
    #[arg(long)]
    pub allow_lockout: bool,
    /// Obtain a token with the new certificate before removing or deploying anything
    #[arg(long, requires = "tenant")]
    pub verify: bool,
    /// The app, tenant and authority, for --verify
    #[command(flatten)]
    pub tenant: TenantArgs,
    /// v2 scope for --verify
    #[arg(long, conflicts_with = "resource")]
    pub scope: Vec<String>,
    /// v1 resource for --verify
    #[arg(long)]
    pub resource: Option<String>,
    // --ca-file, for --verify and Graph.
    #[command(flatten)]
    pub ca: CaFileArgs,
    #[command(flatten)]
    pub evidence: EvidenceArgs,
    /// With --retire: a Graph token (in this environment variable) allowed to read the
    /// sign-in report (AuditLog.Read.All), for sign-in evidence
    #[arg(long, value_name = "VAR")]
    pub graph_token_env: Option<String>,
    /// Microsoft Graph base URL, for --graph-token-env
    #[arg(long, default_value = GRAPH_URL)]
    pub graph_url: String,
}

/// `--verify`, checked before anything is generated: the token client (its `--ca-file` read),
/// the authority and the target.
fn verification<'a>(a: &Args, client: &'a TokenClient) -> Result<Option<Verification<'a>>> {
    if !a.verify {
        return Ok(None);
    }
    let (tenant, client_id) = (a.tenant.tenant()?, a.tenant.client_id_or_manifest(Some(&a.manifest))?);
    let target = common::target(&a.scope, a.resource.as_deref())?;
    Ok(Some(Verification { client, authority: a.tenant.authority()?, tenant, client_id, target }))
}

/// Runs `keycred rotate`.
pub fn run(a: &Args, ctx: &Ctx) -> Result<u8> {
    if a.retire {
        return retire(a, ctx);
    }
    if a.evidence.after.is_some() || a.evidence.quiet_for.is_some() || a.graph_token_env.is_some() {
        return Err(Error::input("--after, --quiet-for and --graph-token-env are for --retire (phase 2)")
            .with_hint("rotate first; retire later with `keycred rotate --retire --manifest ...`"));
    }
    let policy = a.phase_one.policy()?;
    let deploy = a.phase_one.hook()?;
    // The format first, so a `--format` contradicting the manifest is refused with its hint;
    // then the selection, the token request and the new certificate's arguments, all before a
    // key is generated or a file written.
    let format = a.format.resolve(&Manifest::load(&a.manifest)?)?;
    rotate::preflight(&a.manifest, Some(format), &policy)?;
    // A refusal's hint says where the app's certificates live: this manifest.
    let client = a.ca.client()?.with_registration(Registration::Manifest(a.manifest.display().to_string()));
    let verify = verification(a, &client)?;
    let r = ManifestRotation {
        manifest: a.manifest.clone(),
        format: Some(format),
        plan: a.new.plan()?,
        entry: EntryOptions { display_name: a.display_name.clone(), ..EntryOptions::default() },
        policy,
        allow_lockout: a.allow_lockout,
        verify,
        deploy,
    };
    let report = with_stages(ctx, |progress| rotate::rotate_manifest(&r, progress))?;
    print_rotation(ctx, &report)?;
    deploy_outcome(report.deploy.as_ref())
}

/// `keycred rotate --retire`: the older certificates of the manifest, on the evidence asked for.
fn retire(a: &Args, ctx: &Ctx) -> Result<u8> {
    let evidence = a.evidence.evidence(a.new.force)?;
    let graph = match &a.graph_token_env {
        Some(var) => {
            let client = a.ca.client()?;
            let transport = client.transport();
            Some(
                GraphClient::new(&a.graph_url, secret::from_env(var)?, transport)
                    .map_err(|e| e.context("--graph-url"))?,
            )
        }
        None => None,
    };
    if matches!(evidence, Evidence::SignIns { .. }) && graph.is_none() {
        return Err(Error::input("--retire needs evidence that the older certificates are unused").with_hint(
            "give --graph-token-env VAR (a Graph token allowed to read the sign-in report, AuditLog.Read.All), \
             or --after DURATION (a grace period since the newest certificate started), or --force",
        ));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::internal("cannot start the async runtime").caused_by(e))?;
    let report = rt.block_on(rotate::retire_manifest(&a.manifest, &evidence, graph.as_ref()))?;
    print_retire(ctx, &report);
    Ok(keycred::error::exit::OK)
}
