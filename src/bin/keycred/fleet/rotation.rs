//! `keycred fleet rotate` (phase 1) and `keycred fleet retire` (phase 2): the flags, progress
//! on a terminal, Ctrl-C, and the summaries in text or JSON.

use super::{Apps, Auth, Select};
use crate::common::{EvidenceArgs, PhaseOneArgs};
use crate::output::{deploy_text, out_line};
use crate::Ctx;
use keycred::authority::Authority;
use keycred::cert::KeySize;
use keycred::fleet::retire::{self, RetireOptions, RetireOutcome, RetireSummary, Retired};
use keycred::fleet::rotate::{self, AppOutcome, Ended, Options, Outcome, Rotation, Summary};
use keycred::fleet::workers::{Progress, Quiet};
use keycred::graph::limiter::Limiter;
use keycred::graph::GraphClient;
use keycred::rotate::{DEFAULT_DAYS, DEFAULT_KEY_BITS};
use keycred::{Error, Result};
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Arguments of `fleet rotate`.
#[derive(clap::Args, Debug)]
pub struct RotateArgs {
    #[command(flatten)]
    auth: Auth,
    #[command(flatten)]
    select: Select,
    /// Directory for the new certificates (OUT_DIR/<appId>/NAME.key, .cer, .pem) and the journal
    #[arg(long, default_value = ".")]
    out_dir: PathBuf,
    /// Base name of the new files (default rotated-<UTC time>; a resumed run keeps its own)
    #[arg(long)]
    name: Option<String>,
    /// RSA key size: 2048, 3072 or 4096
    #[arg(long, default_value_t = DEFAULT_KEY_BITS)]
    key_size: u32,
    /// Validity of the new certificates, days [default: 365, or each application's app
    /// management policy cap when shorter]
    #[arg(long)]
    days: Option<u32>,
    /// Proceed, with a warning, when the app management policies cannot be read (no Policy.Read.All)
    #[arg(long)]
    policy_unknown_ok: bool,
    #[command(flatten)]
    phase_one: PhaseOneArgs,
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
}

/// Arguments of `fleet retire`.
#[derive(clap::Args, Debug)]
pub struct RetireArgs {
    #[command(flatten)]
    auth: Auth,
    #[command(flatten)]
    apps: Apps,
    /// The rotation's --out-dir: an unfinished rotation journal there keeps its apps out, and
    /// this run's journal goes there
    #[arg(long, default_value = ".")]
    out_dir: PathBuf,
    #[command(flatten)]
    evidence: EvidenceArgs,
    /// Retire without evidence (the newest and the last valid certificate still stay)
    #[arg(long)]
    force: bool,
    /// Applications handled at a time
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Say what would be retired and change nothing
    #[arg(long)]
    dry_run: bool,
    /// Journal file that makes the run resumable (default OUT_DIR/fleet-retire-journal.jsonl)
    #[arg(long)]
    journal: Option<PathBuf>,
}

impl RotateArgs {
    fn options(&self) -> Result<Options> {
        let ids = self.select.apps.ids()?;
        let window = self.select.window()?;
        if window.is_none() && ids.is_empty() {
            return Err(Error::input("say which applications to rotate").with_hint(
                "pass --expiring-within 30d (every app with a certificate ending within 30 days), or --app-id / --apps-file",
            ));
        }
        let a = &self.auth;
        let mut opts = Options::new(a.tenant()?, Authority::parse(&a.authority)?, self.out_dir.clone());
        opts.verify_scope = format!("{}/.default", a.access.graph.resource()?);
        opts.name = self.name.clone();
        opts.key_size = KeySize::from_bits(self.key_size)?;
        opts.days = self.days.unwrap_or(DEFAULT_DAYS);
        opts.days_given = self.days.is_some();
        opts.policy_unknown_ok = self.policy_unknown_ok;
        if let Some(w) = window {
            opts.window = w;
        }
        opts.app_ids = ids;
        opts.remove = self.phase_one.policy()?;
        opts.deploy = self.phase_one.hook()?;
        opts.concurrency = self.concurrency;
        opts.dry_run = self.dry_run;
        opts.journal = self.journal.clone();
        opts.verify_attempts = self.verify_attempts.max(1);
        opts.check()?;
        Ok(opts)
    }

    /// Runs `fleet rotate`.
    pub fn run(&self, ctx: &Ctx) -> Result<u8> {
        let opts = self.options()?;
        let tokens = self.auth.tokens()?;
        let rt = super::runtime()?;
        let g = Arc::new(self.auth.graph(&tokens)?.with_limiter(Arc::new(Limiter::new(self.concurrency))));
        let progress = bar(ctx, &g);
        let (tokens, run_g) = (Arc::new(tokens), g.clone());
        let summary =
            interruptible(&rt, |stop| rotate::run(run_g, tokens, opts, stop, progress)).map_err(|e| {
                match e.message().contains("Policy.Read.All") {
                    true => e.with_hint(
                        "grant Policy.Read.All (then admin consent), or pass --policy-unknown-ok to rotate without \
                     checking",
                    ),
                    false => e,
                }
            })?;
        if !summary.policy_checked {
            eprintln!(
                "keycred: warning: the app management policies could not be read (Graph refused: Policy.Read.All \
                 missing); the certificates were not checked against them"
            );
        }
        print_rotate(ctx, &summary);
        rotate_exit(&summary, self.dry_run)
    }
}

impl RetireArgs {
    /// Runs `fleet retire`.
    pub fn run(&self, ctx: &Ctx) -> Result<u8> {
        let mut opts = RetireOptions::new(self.auth.tenant()?, self.out_dir.clone());
        opts.app_ids = self.apps.ids()?;
        opts.evidence = self.evidence.evidence(self.force)?;
        opts.concurrency = self.concurrency;
        opts.dry_run = self.dry_run;
        opts.journal = self.journal.clone();
        let tokens = self.auth.tokens()?;
        let rt = super::runtime()?;
        let g = Arc::new(self.auth.graph(&tokens)?.with_limiter(Arc::new(Limiter::new(self.concurrency))));
        let progress = bar(ctx, &g);
        let run_g = g.clone();
        let summary = interruptible(&rt, |stop| retire::run(run_g, opts, stop, progress))?;
        print_retire(ctx, &summary);
        if summary.interrupted {
            return Err(Error::internal("interrupted; the journal records what was done")
                .with_hint("run the same command again to resume"));
        }
        if summary.failed > 0 {
            return Err(Error::remote(format!("{} of {} applications failed", summary.failed, summary.selected))
                .with_hint("see each failure above; run the same command again to retry them"));
        }
        Ok(keycred::error::exit::OK)
    }
}

/// Whether an outcome is a failure, for the progress bar.
trait Failed {
    fn failed(&self) -> bool;
}

impl Failed for AppOutcome {
    fn failed(&self) -> bool {
        matches!(self.outcome, Outcome::Failed { .. })
            || self.outcome.rotation().and_then(|r| r.deploy.as_ref()).is_some_and(|d| !d.ok())
    }
}

impl Failed for RetireOutcome {
    fn failed(&self) -> bool {
        self.result == Retired::Failed
    }
}

/// Progress on a terminal: applications done out of selected, throttled waits, failures.
struct Bar {
    pb: indicatif::ProgressBar,
    limiter: Arc<Limiter>,
    failed: AtomicU64,
}

impl<T: Failed> Progress<T> for Bar {
    fn selected(&self) {
        self.pb.inc_length(1);
    }
    fn finished(&self, o: &T) {
        if o.failed() {
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

/// A progress bar on a terminal, nothing otherwise.
fn bar<T: Failed + 'static>(ctx: &Ctx, g: &GraphClient) -> Arc<dyn Progress<T>> {
    if !ctx.stderr_is_terminal() {
        return Arc::new(Quiet);
    }
    let pb = indicatif::ProgressBar::new(0);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} apps  {msg}") {
        pb.set_style(style);
    }
    Arc::new(Bar { pb, limiter: g.limiter().clone(), failed: Default::default() })
}

/// Runs `job` on `rt`; the first Ctrl-C sets the flag it gets (the applications in flight
/// finish their current step), a second one quits at once (the journal still holds).
fn interruptible<T, F>(rt: &tokio::runtime::Runtime, job: impl FnOnce(Arc<AtomicBool>) -> F) -> Result<T>
where
    F: Future<Output = Result<T>>,
{
    let stop = Arc::new(AtomicBool::new(false));
    rt.block_on(async {
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
        job(stop.clone()).await
    })
}

/// One application's line: its id and name, what happened, what to deploy (the new
/// certificate's thumbprint, keyId and bundle), the deploy hook's result, the keyIds removed, and
/// when retiring becomes possible. A dry run's keyIds are those of the certificates it would
/// remove: the new certificate's keyId does not exist yet (Graph's entry gets it when the
/// certificate is added).
fn outcome_line(o: &AppOutcome) -> String {
    let name: String = o.display_name.as_deref().unwrap_or("-").chars().take(24).collect();
    let head = format!("{}  {name:<24}", o.app_id);
    let removed = |verb: &str, removed: &[String]| match removed.is_empty() {
        true => format!("{verb} nothing"),
        false => format!("{verb} keyId {}", removed.join(", ")),
    };
    let new = |thumbprint: Option<&str>, r: Option<&Rotation>| {
        let mut s = thumbprint.map(|t| format!("new thumbprint {t}")).unwrap_or_default();
        if let Some(k) = r.and_then(|r| r.key_id.as_ref()) {
            s.push_str(&format!(" keyId {k}"));
        }
        if let Some(r) = r {
            s.push_str(&format!(" bundle {}", r.bundle));
        }
        s
    };
    let failure = match (o.outcome.step(), o.outcome.reason()) {
        (Some(step), Some(r)) => format!("at {step}: {r}"),
        (Some(step), None) => format!("at {step}"),
        (None, r) => r.unwrap_or_default(),
    };
    let what = match &o.outcome {
        Outcome::Rotated(r) => {
            let deploy = r.deploy.as_ref().map(|d| format!("  {}", deploy_text(d))).unwrap_or_default();
            let retire = r.retire_from.as_deref().map(|t| format!("  retire from {t}")).unwrap_or_default();
            let new = new(Some(&r.thumbprint), Some(r));
            format!("rotated          {new}{deploy}{retire}  {}", removed("removed", &r.removed))
        }
        Outcome::AlreadyRotated { thumbprint } => format!("already rotated  {}", new(thumbprint.as_deref(), None)),
        Outcome::Planned { bundle, removed: r } => format!(
            "would rotate     new certificate in {bundle} (its keyId is given when it is added), then {}",
            removed("remove", r)
        ),
        Outcome::Interrupted { .. } => format!("interrupted      {failure}"),
        Outcome::Failed { .. } => format!("FAILED           {failure}"),
        Outcome::Skipped { reason } => format!("skipped          {reason}"),
        Outcome::Refused { why, dry_run: true } => format!("would be refused: {why}"),
        Outcome::Refused { dry_run: false, .. } => {
            format!("REFUSED          {}", o.outcome.reason().unwrap_or_default())
        }
    };
    format!("{head}  {what}").trim_end().to_string()
}

fn print_rotate(ctx: &Ctx, summary: &Summary) {
    if ctx.json() {
        ctx.print_json(summary);
        return;
    }
    // The applications acted on first, then those left alone, each with its reason.
    let (skipped, acted): (Vec<&AppOutcome>, Vec<&AppOutcome>) =
        summary.apps.iter().partition(|o| o.outcome.ended() == Ended::Skipped);
    for o in acted.into_iter().chain(skipped) {
        out_line(&outcome_line(o));
    }
    // The skipped rows that say "already rotated" are counted as such, as their rows read (the
    // JSON keeps them `skipped`, with that reason).
    let rotated_before =
        summary.apps.iter().filter(|o| o.outcome.ended() == Ended::Skipped && o.outcome.found_rotated()).count() as u64;
    out_line(&format!(
        "{} selected: {} rotated, {} already rotated, {} planned, {} refused by policy, {} failed{}; {} deployed, \
         {} deploy failed; {} skipped; {} throttled waits",
        summary.selected,
        summary.rotated,
        summary.already_rotated + rotated_before,
        summary.planned,
        summary.refused,
        summary.failed,
        if summary.interrupted { ", interrupted" } else { "" },
        summary.deployed,
        summary.deploy_failed,
        summary.skipped - rotated_before,
        summary.throttled
    ));
    if let Some(j) = &summary.journal {
        out_line(&format!("journal: {j}"));
    }
}

/// `fleet rotate`'s exit code: 0 when every selected app ended rotated (and deployed), 4 when
/// a deploy hook failed, 3 when an app failed.
fn rotate_exit(summary: &Summary, dry_run: bool) -> Result<u8> {
    if dry_run || summary.all_rotated() {
        return Ok(keycred::error::exit::OK);
    }
    if summary.interrupted {
        return Err(Error::internal("interrupted; the journal records what was done")
            .with_hint("run the same command again to resume"));
    }
    if summary.refused > 0 && summary.failed == 0 {
        // The lifetime asked for is what the policy refuses: bad input, exit 2.
        let caps: Vec<String> = summary
            .apps
            .iter()
            .filter(|o| o.outcome.ended() == Ended::Refused)
            .filter_map(|o| o.outcome.reason())
            .collect();
        return Err(Error::input(format!(
            "{} of {} applications were refused by their app management policy before any key was generated ({})",
            summary.refused,
            summary.selected,
            caps.first().map(String::as_str).unwrap_or_default()
        ))
        .with_hint("give --days within the policy's maximum (or leave --days out to follow it), then run the same command again"));
    }
    if summary.failed + summary.refused > 0 {
        return Err(Error::remote(format!(
            "{} of {} applications were not rotated",
            summary.failed + summary.refused,
            summary.selected
        ))
        .with_hint("see each failure above; run the same command again to retry them"));
    }
    Err(Error::check(format!(
        "the deploy hook failed for {} of {} applications; their new certificates are registered and nothing of \
         theirs was removed",
        summary.deploy_failed, summary.selected
    ))
    .with_hint("fix the hook, then run the same command again: it deploys those applications again"))
}

fn print_retire(ctx: &Ctx, summary: &RetireSummary) {
    if ctx.json() {
        ctx.print_json(summary);
        return;
    }
    for o in &summary.apps {
        let what = match o.result {
            Retired::Retired => "retired",
            Retired::AlreadyRetired => "already retired",
            Retired::Planned => "would retire",
            Retired::Kept => "kept",
            Retired::Skipped => "skipped",
            Retired::Failed => "FAILED",
            Retired::Interrupted => "interrupted",
        };
        let retired = if o.retired.is_empty() { "-".to_string() } else { o.retired.join(",") };
        let mut line = format!("{}  {what:<15}  removes {retired}", o.app_id);
        if let Some(r) = &o.reason {
            line.push_str(&format!("  {}{r}", o.step.map(|s| format!("at {s}: ")).unwrap_or_default()));
        }
        out_line(&line);
    }
    out_line(&format!(
        "{} selected: {} retired ({} certificates), {} already retired, {} planned, {} kept, {} failed{}; \
         {} skipped; evidence: {}; {} throttled waits",
        summary.selected,
        summary.retired,
        summary.certificates,
        summary.already_retired,
        summary.planned,
        summary.kept,
        summary.failed,
        if summary.interrupted { ", interrupted" } else { "" },
        summary.skipped,
        summary.evidence,
        summary.throttled
    ));
    if let Some(j) = &summary.journal {
        out_line(&format!("journal: {j}"));
    }
}
