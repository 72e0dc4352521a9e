//! `keycred graph rotate` (phase 1: a new certificate added beside the current one, verified,
//! deployed; only what is named removed) and `keycred graph retire` (phase 2: the older
//! certificates removed on evidence). Parses, calls [`keycred::rotate`], prints.

use super::Common;
use crate::common::{plan_files, EvidenceArgs, PhaseOneArgs};
use crate::output::{deploy_outcome, print_retire, print_rotation, with_stages};
use crate::Ctx;
use keycred::cert::files::FileOptions;
use keycred::cert::{KeySize, NewCertificate, Validity};
use keycred::rotate::{self, GraphRetirement, GraphRotation, Verification, DEFAULT_DAYS, DEFAULT_KEY_BITS};
use keycred::token::Target;
use keycred::{Error, Result};
use std::path::PathBuf;

/// Arguments of `graph rotate`.
#[derive(clap::Args, Debug)]
pub struct RotateArgs {
    #[command(flatten)]
    common: Common,
    /// Base name of the new certificate's files (default rotated-<UTC time>)
    #[arg(long)]
    name: Option<String>,
    /// Directory for the new files
    #[arg(long, default_value = ".")]
    out_dir: PathBuf,
    /// Subject DN of the new certificate (default CN=NAME)
    #[arg(long)]
    subject: Option<String>,
    /// RSA key size: 2048, 3072 or 4096
    #[arg(long, default_value_t = DEFAULT_KEY_BITS)]
    key_size: u32,
    /// Validity in days [default: 365, or the app management policy's cap when shorter]
    #[arg(long)]
    days: Option<u32>,
    /// Proceed, with a warning, when the app management policy cannot be read (no Policy.Read.All)
    #[arg(long)]
    policy_unknown_ok: bool,
    /// Replace existing files
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    phase_one: PhaseOneArgs,
    /// Allow the removals to leave no currently valid certificate
    #[arg(long)]
    allow_lockout: bool,
}

/// Arguments of `graph retire`.
#[derive(clap::Args, Debug)]
pub struct RetireArgs {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    evidence: EvidenceArgs,
    /// Retire without evidence (the newest and the last valid certificate still stay)
    #[arg(long)]
    force: bool,
}

/// Runs `graph rotate`: exit 4 when the deploy hook failed.
pub(super) fn rotate(a: &RotateArgs, ctx: &Ctx) -> Result<u8> {
    let (removal, deploy) = (a.phase_one.policy()?, a.phase_one.hook()?);
    let name = a.name.clone().unwrap_or_else(|| rotate::default_name(keycred::dates::now()));
    let key_size = KeySize::from_bits(a.key_size)?;
    let s = a.common.open()?;
    // The policy is read, and the lifetime checked against it, before any key is generated.
    let policy = super::effective_policy(&s, a.policy_unknown_ok)?;
    let days = match (a.days, &policy) {
        (Some(d), _) => d,
        (None, Some(p)) => p.default_days(),
        (None, None) => DEFAULT_DAYS,
    };
    if let Some(p) = &policy {
        super::check_policy(p, time::Duration::days(i64::from(days)), true)?;
    }
    let new = NewCertificate {
        subject: a.subject.clone().unwrap_or_else(|| format!("CN={name}")),
        key_size,
        validity: Validity::Days(days),
    };
    let files = FileOptions { name, dir: a.out_dir.clone(), pfx: None, password: None, force: a.force };
    let current = s.cred.clone().ok_or_else(|| {
        Error::input("graph rotate needs the current certificate (--cert)")
            .with_hint("it signs the proofs of possession")
    })?;
    let plan = plan_files(new, files)?;
    let verify = Verification {
        client: &s.tokens,
        authority: a.common.tenant.authority()?,
        tenant: a.common.tenant.tenant()?,
        client_id: a.common.tenant.client_id()?,
        target: Target::new(&[a.common.access.graph.resource()?], None)?,
    };
    let r = GraphRotation {
        graph: &s.graph,
        app: &s.app,
        current: &current,
        method: s.method,
        proof_aud: s.proof_aud,
        policy: removal,
        allow_lockout: a.allow_lockout,
        verify,
        deploy,
    };
    let report = with_stages(ctx, |progress| s.rt.block_on(rotate::rotate_graph(&r, &plan, progress)))?;
    print_rotation(ctx, &report)?;
    deploy_outcome(report.deploy.as_ref())
}

/// Runs `graph retire`.
pub(super) fn retire(a: &RetireArgs, ctx: &Ctx) -> Result<()> {
    let evidence = a.evidence.evidence(a.force)?;
    let s = a.common.open()?;
    let r = GraphRetirement {
        graph: &s.graph,
        app: &s.app,
        cred: s.cred.as_deref(),
        method: s.method,
        proof_aud: s.proof_aud,
        evidence,
    };
    let report = with_stages(ctx, |progress| s.rt.block_on(rotate::retire_graph(&r, progress)))?;
    print_retire(ctx, &report);
    Ok(())
}
