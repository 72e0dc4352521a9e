//! `keycred check`: one line per step with a mark and the reason; `-o json` gives the steps.

use super::common::{AlgArgs, HttpArgs};
use super::output::out_line;
use super::{CredArgs, Ctx, TenantArgs};
use keycred::check::{self, CheckOptions, Outcome};
use keycred::token::Registration;
use keycred::{Error, Result};
use std::path::PathBuf;
use std::sync::Arc;

/// Arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub tenant: TenantArgs,
    #[command(flatten)]
    pub cred: CredArgs,
    /// Manifest that should hold the certificate (its appId is the client id when none is given)
    #[arg(long)]
    pub manifest: Option<PathBuf>,
    /// v2 scope(s); a bare resource gets /.default
    #[arg(long, conflicts_with = "resource")]
    pub scope: Vec<String>,
    /// v1 resource URI (posts resource= to the v1 endpoint)
    #[arg(long)]
    pub resource: Option<String>,
    /// Role the token must carry (repeatable)
    #[arg(long = "expect-role")]
    pub expect_roles: Vec<String>,
    #[command(flatten)]
    pub alg: AlgArgs,
    #[command(flatten)]
    pub http: HttpArgs,
}

/// Runs `keycred check`.
pub fn run(a: &Args, ctx: &Ctx) -> Result<u8> {
    let target = super::common::target(&a.scope, a.resource.as_deref())?;
    let cert = a.cred.cert.clone().ok_or_else(|| {
        Error::input("no certificate given").with_hint("pass --cert FILE or set AZURE_CLIENT_CERTIFICATE_PATH")
    })?;
    // A key on a token is opened here, where the module and PIN options are.
    let (key, signer) = match a.cred.key_on_token() {
        Some(spec) => (None, Some(Arc::new(a.cred.token.key(spec)?) as Arc<dyn keycred::cert::Signer>)),
        None => (a.cred.key.clone(), None),
    };
    let opts = CheckOptions {
        cert,
        key,
        signer,
        password: a.cred.password()?,
        manifest: a.manifest.clone(),
        authority: a.tenant.authority()?,
        tenant: a.tenant.tenant()?,
        client_id: a.tenant.client_id_or_manifest(a.manifest.as_deref())?,
        version: target.default_version(),
        target,
        expect_roles: a.expect_roles.clone(),
        alg: a.alg.get(),
    };
    let registration = match &a.manifest {
        Some(m) => Registration::Manifest(m.display().to_string()),
        None => Registration::Unknown,
    };
    let client = a.http.client()?.with_registration(registration);
    let report = check::run(&opts, &client);
    print_report(ctx, &report);
    Ok(report.exit_code)
}

/// Prints a report: marks and reasons, or JSON.
pub fn print_report(ctx: &Ctx, report: &check::Report) {
    if ctx.json() {
        ctx.print_json(&report.steps);
        return;
    }
    let w = report.steps.iter().map(|s| s.step.len()).max().unwrap_or(0);
    for s in &report.steps {
        let mark = match s.outcome {
            Outcome::Pass => "[ ok ]",
            Outcome::Warn => "[warn]",
            Outcome::Fail => "[FAIL]",
            Outcome::Skip => "[skip]",
        };
        out_line(&format!("{mark} {:<w$}  {}", s.step, s.detail));
    }
}
