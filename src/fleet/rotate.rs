//! `fleet rotate`, phase 1 of the lifecycle ([`crate::rotate`]) for many applications: for each
//! selected application, a new certificate generated and written to `OUT_DIR/<appId>/<name>.*`,
//! added by PATCH of the whole `keyCredentials` array (re-read just before writing,
//! [`GraphClient::update_key_credentials`]), verified by getting a token as that application
//! with it, handed over by the deploy hook, and only then what was asked removed (nothing by
//! default: the old certificates go in phase 2, `fleet retire`), never leaving the application
//! without a valid certificate.
//!
//! Each step is journaled ([`super::journal`]) once it has happened, and each is safe to redo:
//! a resumed run reuses the key already on disk instead of generating another, adds the
//! certificate only when Graph does not list it yet, runs the deploy hook again only when it has
//! not succeeded, and removes only what Graph still lists. So a run killed at any moment and run
//! again gives every selected application exactly one new certificate, verified, and removes
//! nothing twice. The steps of one application are in `super::rotate_steps`.

use super::audit::{CredStatus, DEFAULT_WINDOW};
use super::journal::{Header, Journal, VERSION};
use super::rotate_steps::Run;
use super::workers::{for_each_app, Progress};
use crate::authority::Authority;
use crate::cert::KeySize;
use crate::fsio::{self, Links};
use crate::graph::{self, GraphClient};
use crate::ids::{ClientId, TenantId};
use crate::lock::{lock_path_of, FileLock};
use crate::manifest::{read_entry, KeyCredential};
use crate::rotate::deploy::{DeployHook, DeployResult};
use crate::rotate::RemovePolicy;
use crate::token::TokenClient;
use crate::{dates, Error, Result};
use serde::Serialize;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

/// Default journal file name, in OUT_DIR.
pub const JOURNAL_NAME: &str = "fleet-journal.jsonl";
/// The lock file a run holds in OUT_DIR.
pub const OUT_DIR_LOCK: &str = "fleet-rotate.lock";

/// What a rotation run does.
#[derive(Clone, Debug)]
pub struct Options {
    /// Tenant (for the verification tokens and the journal).
    pub tenant: TenantId,
    /// Authority host of the verification tokens.
    pub authority: Authority,
    /// The scope the verification token is asked for (Graph's `.default` needs no permission).
    pub verify_scope: String,
    /// Where the new certificates go, one directory per application.
    pub out_dir: PathBuf,
    /// Base name of the new files; a name with the run's start time when `None` (a resumed
    /// run takes the journal's).
    pub name: Option<String>,
    /// RSA key size.
    pub key_size: KeySize,
    /// Validity of the new certificates, days.
    pub days: u32,
    /// Applications holding a certificate ending within it (or already ended) are rotated.
    pub window: Duration,
    /// What is removed once the new certificate is in, proven and deployed (nothing by default).
    pub remove: RemovePolicy,
    /// The deploy hook, run once per application after its new certificate is verified.
    pub deploy: Option<DeployHook>,
    /// Only these applications (rotated whatever their dates); all when empty.
    pub app_ids: Vec<ClientId>,
    /// Applications rotated at a time.
    pub concurrency: usize,
    /// Print the plan, change nothing.
    pub dry_run: bool,
    /// The journal file (default `OUT_DIR/fleet-journal.jsonl`).
    pub journal: Option<PathBuf>,
    /// Token attempts with the new certificate (Entra may take a moment to accept a new key).
    pub verify_attempts: u32,
    /// Wait before the first repeated verification; doubled each time.
    pub verify_wait: Duration,
}

impl Options {
    /// Defaults for everything but the tenant, authority and output directory.
    pub fn new(tenant: TenantId, authority: Authority, out_dir: PathBuf) -> Self {
        Options {
            tenant,
            authority,
            verify_scope: format!("{}/.default", graph::GRAPH_RESOURCE),
            out_dir,
            name: None,
            key_size: KeySize::Rsa2048,
            days: crate::rotate::DEFAULT_DAYS,
            window: DEFAULT_WINDOW,
            remove: RemovePolicy::KeepOld,
            deploy: None,
            app_ids: Vec::new(),
            concurrency: 4,
            dry_run: false,
            journal: None,
            verify_attempts: 6,
            verify_wait: Duration::from_secs(2),
        }
    }

    /// Checks the options before anything is read or written.
    pub fn check(&self) -> Result<()> {
        if let Some(n) = &self.name {
            super::journal::check_name(n, "--name")?;
        }
        // The directory, or the nearest of its parents that exists, must be a directory: the
        // rest is created (0700) when the run starts, as `keycred new --out-dir` does.
        crate::cert::files::check_out_dir(&self.out_dir, "--out-dir")?;
        fsio::check_private_dir(&self.out_dir, "--out-dir", Links::Follow)?;
        if Duration::from_secs(u64::from(self.days) * 86_400) <= self.window {
            return Err(Error::input(format!(
                "--days {}: the new certificates would already be within the expiring window",
                self.days
            ))
            .with_hint("give --days longer than --expiring-within, or the next run rotates them again"));
        }
        if self.concurrency == 0 {
            return Err(Error::input("--concurrency 0: at least one application at a time")
                .with_hint("give --concurrency 1 or more (default 4)"));
        }
        Ok(())
    }

    pub(super) fn journal_path(&self) -> PathBuf {
        self.journal.clone().unwrap_or_else(|| self.out_dir.join(JOURNAL_NAME))
    }
}

/// How one application ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Result_ {
    /// Rotated by this run.
    Rotated,
    /// Rotated by an earlier run of this journal.
    AlreadyRotated,
    /// `--dry-run`: what would be done.
    Planned,
    /// Stopped by Ctrl-C before its turn or between two steps.
    Interrupted,
    /// A step failed (see `reason`).
    Failed,
    /// Left alone (see `reason`): no certificate to replace.
    Skipped,
}

/// The report of one application. JSON field names are a contract.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// Application (client) id.
    pub app_id: String,
    /// Its display name.
    pub display_name: Option<String>,
    /// How it ended.
    pub result: Result_,
    /// Thumbprint of the new certificate.
    pub thumbprint: Option<String>,
    /// keyId of the new certificate, as Graph lists it.
    pub key_id: Option<String>,
    /// keyIds removed (or, with `--dry-run`, to remove).
    pub removed: Vec<String>,
    /// The new certificate's bundle (key + certificate): what to deploy.
    pub bundle: Option<String>,
    /// How the deploy hook ended; `null` without one (or when an earlier run deployed).
    pub deploy: Option<DeployResult>,
    /// The earliest time `fleet retire` can remove the old certificates on the default evidence.
    pub retire_from: Option<String>,
    /// The step that failed or was interrupted.
    pub step: Option<&'static str>,
    /// Why it failed, or why it was skipped.
    pub reason: Option<String>,
    /// Entra's AADSTS code, when Entra's refusal made it fail.
    pub aadsts: Option<u32>,
    /// Graph's `error.code`, when Graph's refusal made it fail.
    pub graph_code: Option<String>,
}

/// The whole run.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Applications selected.
    pub selected: u64,
    /// Rotated by this run.
    pub rotated: u64,
    /// Rotated by an earlier run of the journal.
    pub already_rotated: u64,
    /// `--dry-run` plans.
    pub planned: u64,
    /// Failed.
    pub failed: u64,
    /// Deploy hooks that succeeded.
    pub deployed: u64,
    /// Deploy hooks that failed (their applications keep their old certificates too).
    pub deploy_failed: u64,
    /// Listed but left alone, each with its reason (`result: "skipped"`): no certificate to
    /// replace. Not counted in `selected`.
    pub skipped: u64,
    /// Whether Ctrl-C stopped the run.
    pub interrupted: bool,
    /// Answers 429/503 waited out.
    pub throttled: u64,
    /// The journal: where it is (unfinished run) or where it was moved (finished run).
    pub journal: Option<String>,
    /// Per application.
    pub apps: Vec<Outcome>,
}

impl Summary {
    /// Whether every selected application ended with a verified valid certificate, handed
    /// over when a deploy hook was given.
    pub fn all_rotated(&self) -> bool {
        !self.interrupted && self.failed == 0 && self.planned == 0 && self.deploy_failed == 0
    }
}

impl Outcome {
    /// Whether the application was found rotated: by an earlier run of the journal, or left
    /// alone because a certificate already lasts beyond the window.
    pub fn found_rotated(&self) -> bool {
        match self.result {
            Result_::AlreadyRotated => true,
            Result_::Skipped => self.reason.as_deref().is_some_and(|r| r.starts_with(ALREADY_ROTATED)),
            _ => false,
        }
    }
    /// A fresh outcome of `app` (as Graph listed it) with `result`.
    pub(super) fn of(app: &Value, result: Result_) -> Outcome {
        let s = |k: &str| app.get(k).and_then(Value::as_str).map(str::to_string);
        Outcome {
            app_id: s("appId").unwrap_or_default().to_ascii_lowercase(),
            display_name: s("displayName"),
            result,
            thumbprint: None,
            key_id: None,
            removed: Vec::new(),
            bundle: None,
            deploy: None,
            retire_from: None,
            step: None,
            reason: None,
            aadsts: None,
            graph_code: None,
        }
    }
}

/// The certificates that make `fleet rotate` select an application: usable ones ending within
/// `window` or already ended, never `keep` (the new certificate).
pub fn to_replace(
    creds: &[KeyCredential],
    now: OffsetDateTime,
    window: Duration,
    keep: Option<[u8; 20]>,
) -> Vec<usize> {
    creds
        .iter()
        .filter(|c| c.is_usable() && (keep.is_none() || c.sha1() != keep))
        .filter(|c| c.effective_end().is_some_and(|e| e < now || (e - now) <= window))
        .map(|c| c.index)
        .collect()
}

pub(super) fn creds_of(entries: &[Value]) -> Vec<KeyCredential> {
    entries.iter().enumerate().filter_map(|(i, v)| v.as_object().map(|o| read_entry(i, o))).collect()
}

/// Whether the application Graph returned is to be rotated: named explicitly, or holding a
/// certificate to replace; and it has a certificate at all (see [`skip_reason`]).
pub fn is_selected(app: &Value, explicit: bool, now: OffsetDateTime, window: Duration) -> bool {
    skip_reason(app, explicit, now, window).is_none()
}

/// How [`skip_reason`] starts for an application left alone because a certificate already lasts
/// beyond the window: rotated before, by hand or by a run without this journal.
pub const ALREADY_ROTATED: &str = "already rotated";

/// Why the application Graph returned is left alone, or `None` when it is to be rotated. An
/// application with no certificate (only client secrets, or no credential at all) is always
/// left alone: there is nothing to replace, and secrets are not rotated. One named explicitly
/// is otherwise rotated whatever its dates; any other only when it holds a certificate to
/// replace and none that already lasts beyond the window (a rotation in progress, or done by
/// an earlier run: its older certificates are for `fleet retire`, and rotating again would add
/// a second new one).
pub fn skip_reason(app: &Value, explicit: bool, now: OffsetDateTime, window: Duration) -> Option<String> {
    let empty = Vec::new();
    let entries = app.get("keyCredentials").and_then(Value::as_array).unwrap_or(&empty);
    let secrets = app.get("passwordCredentials").and_then(Value::as_array).map_or(0, Vec::len);
    if entries.is_empty() {
        return Some(if secrets > 0 {
            "no certificate to replace: only client secrets, which fleet rotate does not rotate".to_string()
        } else {
            "no certificate to replace: the application has no credential".to_string()
        });
    }
    if explicit {
        return None;
    }
    let creds = creds_of(entries);
    let lasting = creds.iter().filter(|c| c.is_usable()).find(|c| c.effective_end().is_some_and(|e| e - now > window));
    match (to_replace(&creds, now, window, None).is_empty(), lasting) {
        (false, None) => None,
        (false, Some(c)) => Some(format!(
            "{ALREADY_ROTATED}: {} lasts beyond {}; retire the older certificates with `fleet retire`",
            c.key_id.as_deref().map(|k| format!("keyId {k}")).unwrap_or_else(|| "a certificate".into()),
            window_text(window)
        )),
        (true, _) if creds.iter().any(KeyCredential::is_usable) => {
            Some(format!("no certificate to replace: none ends within {}", window_text(window)))
        }
        (true, _) => Some("no certificate to replace: none is usable (see `keycred fleet audit`)".to_string()),
    }
}

/// `window` as `--expiring-within` takes it: `30d`, `12h`, `90m` or `45s`.
fn window_text(window: Duration) -> String {
    crate::rotate::evidence::duration_text(window)
}

/// Locks the output directory (`OUT_DIR/fleet-rotate.lock`) and the journal (`<journal>.lock`),
/// waiting as manifest edits do (`KEYCRED_LOCK_TIMEOUT`), off the async threads. `fleet
/// retire` takes the directory's lock too: it must not decide while a rotation is under way.
pub(super) async fn lock_run_at(out_dir: PathBuf, journal: PathBuf, activity: &'static str) -> Result<Vec<FileLock>> {
    tokio::task::spawn_blocking(move || {
        Ok(vec![
            FileLock::acquire(out_dir.join(OUT_DIR_LOCK), &out_dir, activity)?,
            FileLock::acquire(lock_path_of(&journal), &journal, activity)?,
        ])
    })
    .await
    .map_err(|e| Error::internal(format!("locking stopped: {e}")))?
}

async fn lock_run(opts: &Options, activity: &'static str) -> Result<Vec<FileLock>> {
    lock_run_at(opts.out_dir.clone(), opts.journal_path(), activity).await
}

/// Runs a rotation. `stop` (set by Ctrl-C) lets the applications in flight finish their current
/// step and starts no new one.
pub async fn run(
    g: Arc<GraphClient>,
    tokens: Arc<TokenClient>,
    opts: Options,
    stop: Arc<AtomicBool>,
    progress: Arc<dyn Progress<Outcome>>,
) -> Result<Summary> {
    opts.check()?;
    if !opts.dry_run {
        fsio::ensure_private_dir(&opts.out_dir, "--out-dir", Links::Follow)?;
    }
    // Held until the run returns: a second run over the same directory or journal would give
    // an application two new certificates and lose a key.
    let _locks = if opts.dry_run { Vec::new() } else { lock_run(&opts, "rotating with it (fleet rotate)").await? };
    let started = dates::now();
    let fresh_name = crate::rotate::default_name(started);
    let journal = if opts.dry_run {
        None
    } else {
        Some(Journal::open(
            &opts.journal_path(),
            Header {
                journal: VERSION,
                tenant: opts.tenant.to_string(),
                graph_url: g.base().to_string(),
                name: opts.name.clone().unwrap_or(fresh_name.clone()),
                started: dates::format(started),
            },
        )?)
    };
    let name = match &journal {
        Some(j) => j.header().name.clone(),
        None => opts.name.clone().unwrap_or(fresh_name),
    };
    let (explicit, now) = (!opts.app_ids.is_empty(), dates::now());
    let (ids, concurrency, window) = (opts.app_ids.clone(), opts.concurrency, opts.window);
    let run = Arc::new(Run { g: g.clone(), tokens, opts, journal, name, stop: stop.clone() });
    let leave = |app: &Value| {
        let app_id = app.get("appId").and_then(Value::as_str).unwrap_or("").to_ascii_lowercase();
        // An application the journal knows is finished (or resumed) whatever its dates now.
        let known = run.journal.as_ref().is_some_and(|j| j.state(&app_id).step.is_some());
        let reason = if known { None } else { skip_reason(app, explicit, now, window) }?;
        Some(Outcome { reason: Some(reason), ..Outcome::of(app, Result_::Skipped) })
    };
    let worker = run.clone();
    let work = move |app: Value| {
        let run = worker.clone();
        async move {
            if run.opts.dry_run {
                run.plan_only(&app)
            } else {
                run.rotate_app(app).await
            }
        }
    };
    let listed = for_each_app(&g, &ids, concurrency, &stop, progress, leave, work).await?;
    let run = Arc::into_inner(run).ok_or_else(|| Error::internal("rotation workers still running"))?;
    let mut s = summarize(listed.outcomes, listed.selected, listed.interrupted);
    s.throttled = g.limiter().throttled_count();
    for id in &ids {
        if !s.apps.iter().any(|o| o.app_id == id.as_str()) {
            s.selected += 1;
            s.failed += 1;
            let mut o = Outcome::of(&serde_json::json!({ "appId": id.as_str() }), Result_::Failed);
            o.step = Some("read");
            o.reason = Some("Graph lists no application with this id in the tenant".into());
            s.apps.push(o);
        }
    }
    if let Some(j) = run.journal {
        s.journal = Some(if s.all_rotated() { j.finish()? } else { j.path().to_path_buf() }.display().to_string());
    }
    Ok(s)
}

/// The summary of these outcomes, sorted by appId.
fn summarize(mut apps: Vec<Outcome>, selected: u64, interrupted: bool) -> Summary {
    let mut s = Summary { selected, interrupted, ..Summary::default() };
    for o in &apps {
        match o.result {
            Result_::Rotated => s.rotated += 1,
            Result_::AlreadyRotated => s.already_rotated += 1,
            Result_::Planned => s.planned += 1,
            Result_::Interrupted => s.interrupted = true,
            Result_::Failed => s.failed += 1,
            Result_::Skipped => s.skipped += 1,
        }
        match o.deploy.as_ref().map(DeployResult::ok) {
            Some(true) => s.deployed += 1,
            Some(false) => s.deploy_failed += 1,
            None => {}
        }
    }
    apps.sort_by(|a, b| a.app_id.cmp(&b.app_id));
    s.apps = apps;
    s
}

/// The statuses that make `fleet rotate` select an application, for messages.
pub const REPLACED: [CredStatus; 2] = [CredStatus::Expiring, CredStatus::Expired];
