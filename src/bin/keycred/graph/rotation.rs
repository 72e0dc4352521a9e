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
    /// Validity in days
    #[arg(long, default_value_t = DEFAULT_DAYS)]
    days: u32,
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
    let (policy, deploy) = (a.phase_one.policy()?, a.phase_one.hook()?);
    let name = a.name.clone().unwrap_or_else(|| rotate::default_name(keycred::dates::now()));
    let new = NewCertificate {
        subject: a.subject.clone().unwrap_or_else(|| format!("CN={name}")),
        key_size: KeySize::from_bits(a.key_size)?,
        validity: Validity::Days(a.days),
    };
    let files = FileOptions { name, dir: a.out_dir.clone(), pfx: None, password: None, force: a.force };
    let s = a.common.open()?;
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
        policy,
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
