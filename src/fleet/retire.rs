//! `fleet retire`, phase 2 of the lifecycle ([`crate::rotate`]) for many applications: each
//! application's older certificates removed by PATCH of its `keyCredentials` (re-read just
//! before writing) only on evidence that nothing needs them ([`crate::rotate::evidence`]): by
//! default Graph's credential sign-in report, read app by app. Without evidence an application
//! is `kept`, with the reason, and nothing of it changes; its newest certificate is never
//! removed, nor its last valid one.
//!
//! An application whose rotation is unfinished in `OUT_DIR`'s rotation journal (its deploy hook
//! failed, or the run was stopped) is kept: a failed deploy never leads to retiring. Each
//! application retired is journaled (`OUT_DIR/fleet-retire-journal.jsonl`), so a run stopped
//! at any moment and run again removes nothing twice and reports what was done as
//! `already_retired`; decisions are always made again on Graph's current state.

use super::journal::{self, Header, Journal, Record, Step, VERSION};
use super::rotate::{creds_of, JOURNAL_NAME};
use super::workers::{for_each_app, Progress};
use crate::graph::{self, signins, GraphClient};
use crate::ids::TenantId;
use crate::rotate::evidence::{decide, Evidence, Kept};
use crate::wording::{Action, Input};
use crate::{dates, fsio, ClientId, Error, Result};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Default retire journal file name, in OUT_DIR.
pub const RETIRE_JOURNAL_NAME: &str = "fleet-retire-journal.jsonl";

/// What a retire run does.
#[derive(Clone, Debug)]
pub struct RetireOptions {
    /// Tenant (for the journal).
    pub tenant: TenantId,
    /// Where the rotation's journal is, and where this run's goes.
    pub out_dir: PathBuf,
    /// Only these applications; all when empty.
    pub app_ids: Vec<ClientId>,
    /// Applications handled at a time.
    pub concurrency: usize,
    /// Say what would be retired, change nothing.
    pub dry_run: bool,
    /// The journal file (default `OUT_DIR/fleet-retire-journal.jsonl`).
    pub journal: Option<PathBuf>,
    /// What counts as evidence.
    pub evidence: Evidence,
}

impl RetireOptions {
    /// Defaults for everything but the tenant and the directory: sign-in evidence with the
    /// default quiet period, four applications at a time.
    pub fn new(tenant: TenantId, out_dir: PathBuf) -> Self {
        RetireOptions {
            tenant,
            out_dir,
            app_ids: Vec::new(),
            concurrency: 4,
            dry_run: false,
            journal: None,
            evidence: Evidence::default(),
        }
    }
    fn journal_path(&self) -> PathBuf {
        self.journal.clone().unwrap_or_else(|| self.out_dir.join(RETIRE_JOURNAL_NAME))
    }
}

/// How one application ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Retired {
    /// Every older certificate removed by this run.
    Retired,
    /// Retired by an earlier run of this journal.
    AlreadyRetired,
    /// `--dry-run`: what would be done.
    Planned,
    /// At least one older certificate stays, for want of evidence (see `kept`).
    Kept,
    /// Nothing to retire (see `reason`).
    Skipped,
    /// A step failed (see `reason`).
    Failed,
    /// Stopped by Ctrl-C before its turn.
    Interrupted,
}

/// Where one application's retirement stopped: reading it from Graph, reading its sign-ins,
/// or removing its older certificates (the journal's [`Step::Removed`]). Written as its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetireAt {
    /// Reading the application as Graph lists it.
    Read,
    /// Reading its credential sign-ins (the evidence).
    SignIns,
    /// Removing the certificates retired.
    Remove,
}

impl RetireAt {
    /// The name in reports: `read`, `sign-ins`, `remove`.
    pub fn name(self) -> &'static str {
        match self {
            RetireAt::Read => "read",
            RetireAt::SignIns => "sign-ins",
            RetireAt::Remove => Step::Removed.verb(),
        }
    }
}

impl std::fmt::Display for RetireAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for RetireAt {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// The report of one application. JSON field names are a contract.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RetireOutcome {
    /// Application (client) id.
    pub app_id: String,
    /// Its display name.
    pub display_name: Option<String>,
    /// How it ended.
    pub result: Retired,
    /// keyId of its newest certificate, which stays.
    pub newest: Option<String>,
    /// keyIds removed (with `--dry-run`, to remove).
    pub retired: Vec<String>,
    /// Older certificates kept, each with its reason.
    pub kept: Vec<Kept>,
    /// The step that failed, or was interrupted.
    pub step: Option<RetireAt>,
    /// Why it was kept, skipped or failed.
    pub reason: Option<String>,
}

impl RetireOutcome {
    fn of(app: &Value, result: Retired) -> Self {
        let s = |k: &str| app.get(k).and_then(Value::as_str).map(str::to_string);
        RetireOutcome {
            app_id: s("appId").unwrap_or_default().to_ascii_lowercase(),
            display_name: s("displayName"),
            result,
            newest: None,
            retired: Vec::new(),
            kept: Vec::new(),
            step: None,
            reason: None,
        }
    }
}

/// The whole run.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RetireSummary {
    /// Applications with older certificates to decide on.
    pub selected: u64,
    /// Retired by this run.
    pub retired: u64,
    /// Retired by an earlier run of the journal.
    pub already_retired: u64,
    /// `--dry-run` plans.
    pub planned: u64,
    /// Kept for want of evidence.
    pub kept: u64,
    /// Failed.
    pub failed: u64,
    /// Nothing to retire; not counted in `selected`.
    pub skipped: u64,
    /// Certificates removed, all applications together.
    pub certificates: u64,
    /// `sign-ins`, `after` or `force`.
    pub evidence: &'static str,
    /// Whether Ctrl-C stopped the run.
    pub interrupted: bool,
    /// Answers 429/503 waited out.
    pub throttled: u64,
    /// The journal: where it is (unfinished run) or where it was moved (finished run).
    pub journal: Option<String>,
    /// Per application.
    pub apps: Vec<RetireOutcome>,
}

impl RetireSummary {
    /// Whether nothing failed and nothing was left undone.
    pub fn finished(&self) -> bool {
        !self.interrupted && self.failed == 0 && self.planned == 0
    }
}

/// The last step of each application in the rotation journal of `out_dir`, when there is one
/// (a finished rotation moves it aside). One of another tenant or Graph is refused.
fn rotation_steps(out_dir: &Path, tenant: &str, graph_url: &str) -> Result<HashMap<String, Step>> {
    let path = out_dir.join(JOURNAL_NAME);
    if std::fs::symlink_metadata(&path).is_err() {
        return Ok(HashMap::new());
    }
    let bytes = fsio::read_regular(&path, fsio::MAX_JOURNAL_BYTES)?;
    let (header, records) = journal::parse(&path, &bytes)?;
    if header.tenant != tenant || header.graph_url != graph_url {
        return Err(Error::input(format!(
            "{}: an unfinished rotation of tenant {} at {}, not this one",
            path.display(),
            header.tenant,
            header.graph_url
        ))
        .with_hint(format!("give as {} the directory of this tenant's rotation", Input::OutDir)));
    }
    let mut last: HashMap<String, Step> = HashMap::new();
    for r in records {
        let s = last.entry(r.app_id).or_insert(r.step);
        *s = (*s).max(r.step);
    }
    Ok(last)
}

/// Why `app` is left alone before any sign-in is read, or `None` to decide on it.
fn leave(app: &Value, rotations: &HashMap<String, Step>, done: bool) -> Option<RetireOutcome> {
    if done {
        return Some(RetireOutcome::of(app, Retired::AlreadyRetired));
    }
    let mut o = RetireOutcome::of(app, Retired::Skipped);
    if let Some(step) = rotations.get(&o.app_id).filter(|s| **s != Step::Done) {
        o.result = Retired::Kept;
        o.reason = Some(format!(
            "its rotation is not finished (last step done: {}); run {} again first",
            serde_json::to_value(step).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default(),
            Action::RotateFleet
        ));
        return Some(o);
    }
    let entries = app.get("keyCredentials").and_then(Value::as_array).cloned().unwrap_or_default();
    let d = decide(&creds_of(&entries), &Evidence::Force, None, dates::now());
    o.reason = Some(d.nothing?);
    Some(o)
}

/// Runs a retirement. `stop` (set by Ctrl-C) starts no new application.
pub async fn run(
    g: Arc<GraphClient>,
    opts: RetireOptions,
    stop: Arc<AtomicBool>,
    progress: Arc<dyn Progress<RetireOutcome>>,
) -> Result<RetireSummary> {
    if opts.concurrency == 0 {
        return Err(Error::input(format!("{} 0: at least one application at a time", Input::Concurrency))
            .with_hint(format!("give {} as 1 or more (default 4)", Input::Concurrency)));
    }
    let rotations = rotation_steps(&opts.out_dir, opts.tenant.as_str(), g.base())?;
    if !opts.dry_run {
        fsio::ensure_private_dir(&opts.out_dir, &Input::OutDir.to_string(), fsio::Links::Follow)?;
    }
    // Held until the run returns: no rotation of this directory, nor another retirement with
    // this journal, while this one decides.
    let _locks = if opts.dry_run {
        Vec::new()
    } else {
        super::rotate::lock_run_at(opts.out_dir.clone(), opts.journal_path(), "retiring with it (fleet retire)").await?
    };
    let journal = if opts.dry_run {
        None
    } else {
        let header = Header {
            journal: VERSION,
            tenant: opts.tenant.to_string(),
            graph_url: g.base().to_string(),
            name: "retire".into(),
            started: dates::format(dates::now()),
        };
        Some(Journal::open(&opts.journal_path(), header)?)
    };
    let run = Arc::new(RetireRun { g: g.clone(), opts: opts.clone(), journal, stop: stop.clone() });
    let left = |app: &Value| {
        let app_id = app.get("appId").and_then(Value::as_str).unwrap_or("").to_ascii_lowercase();
        let done = run.journal.as_ref().is_some_and(|j| j.state(&app_id).step == Some(Step::Done));
        leave(app, &rotations, done)
    };
    let worker = run.clone();
    let work = move |app: Value| {
        let run = worker.clone();
        async move { run.retire_app(&app).await }
    };
    let listed = for_each_app(&g, &opts.app_ids, opts.concurrency, &stop, progress, left, work).await?;
    let run = Arc::into_inner(run).ok_or_else(|| Error::internal("retire workers still running"))?;
    let mut s = summarize(listed.outcomes, listed.selected, listed.interrupted);
    s.evidence = crate::rotate::evidence_name(&opts.evidence);
    s.throttled = g.limiter().throttled_count();
    if let Some(j) = run.journal {
        s.journal = Some(if s.finished() { j.finish()? } else { j.path().to_path_buf() }.display().to_string());
    }
    Ok(s)
}

fn summarize(mut apps: Vec<RetireOutcome>, selected: u64, interrupted: bool) -> RetireSummary {
    let mut s = RetireSummary { selected, interrupted, ..RetireSummary::default() };
    for o in &apps {
        match o.result {
            Retired::Retired => s.retired += 1,
            Retired::AlreadyRetired => s.already_retired += 1,
            Retired::Planned => s.planned += 1,
            Retired::Kept => s.kept += 1,
            Retired::Skipped => s.skipped += 1,
            Retired::Failed => s.failed += 1,
            Retired::Interrupted => s.interrupted = true,
        }
        if o.result != Retired::Planned {
            s.certificates += o.retired.len() as u64;
        }
    }
    apps.sort_by(|a, b| a.app_id.cmp(&b.app_id));
    s.apps = apps;
    s
}

struct RetireRun {
    g: Arc<GraphClient>,
    opts: RetireOptions,
    journal: Option<Journal>,
    stop: Arc<AtomicBool>,
}

impl RetireRun {
    async fn retire_app(&self, app: &Value) -> RetireOutcome {
        let mut o = RetireOutcome::of(app, Retired::Failed);
        if self.stop.load(Ordering::Relaxed) {
            o.result = Retired::Interrupted;
            return o;
        }
        let mut step = RetireAt::Read;
        match self.decide_and_remove(app, &mut o, &mut step).await {
            Ok(r) => o.result = r,
            Err(e) => {
                o.step = Some(step);
                o.reason = Some(match e.hint() {
                    Some(h) => format!("{} (hint: {h})", e.message()),
                    None => e.message().to_string(),
                });
            }
        }
        o
    }

    async fn decide_and_remove(&self, app: &Value, o: &mut RetireOutcome, step: &mut RetireAt) -> Result<Retired> {
        let id = app
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::remote("Graph listed an application without 'id'"))?
            .to_string();
        *step = RetireAt::SignIns;
        let sign_ins = match self.opts.evidence {
            Evidence::SignIns { .. } => Some(signins::for_app(&self.g, &o.app_id).await.map_err(|e| e.to_string())),
            _ => None,
        };
        let evidence = &self.opts.evidence;
        let entries = app.get("keyCredentials").and_then(Value::as_array).cloned().unwrap_or_default();
        let d = decide(&creds_of(&entries), evidence, sign_ins.as_ref(), dates::now());
        o.newest = d.newest.as_ref().and_then(|c| c.key_id.clone());
        o.kept = d.keep.clone();
        o.reason = d.keep.first().map(|k| k.reason.clone()).or(d.nothing.clone());
        let ids = |v: &[crate::manifest::KeyCredential]| v.iter().filter_map(|c| c.key_id.clone()).collect::<Vec<_>>();
        if self.opts.dry_run {
            o.retired = ids(&d.retire);
            return Ok(Retired::Planned);
        }
        if d.retire.is_empty() {
            return Ok(if d.nothing.is_some() { Retired::Skipped } else { Retired::Kept });
        }
        *step = RetireAt::Remove;
        // Decided again on the entries as they are just before the PATCH.
        let decided = Mutex::new(d);
        self.g
            .update_key_credentials(&id, |before| {
                let now = dates::now();
                let creds = graph::read_credentials(before);
                let again = decide(&creds, evidence, sign_ins.as_ref(), now);
                let gone: Vec<usize> = again.retire.iter().map(|c| c.index).collect();
                let left_valid = creds.iter().any(|c| !gone.contains(&c.index) && c.counts_as_valid_at(now));
                if !gone.is_empty() && !left_valid {
                    return Err(Error::check("retiring would leave no valid certificate; nothing was removed"));
                }
                let after = before.iter().enumerate().filter(|(i, _)| !gone.contains(i)).map(|(_, v)| v.clone());
                *decided.lock().expect("decision lock") = again;
                Ok(after.collect())
            })
            .await?;
        let d = decided.into_inner().unwrap_or_default();
        o.retired = ids(&d.retire);
        o.kept = d.keep.clone();
        o.reason = d.keep.first().map(|k| k.reason.clone());
        // Journaled once nothing older is left: a certificate kept is decided again next run.
        if let (Some(j), true) = (&self.journal, d.keep.is_empty()) {
            j.record(Record {
                app_id: o.app_id.clone(),
                step: Step::Done,
                thumbprint: None,
                removed: o.retired.clone(),
            })?;
        }
        Ok(if d.keep.is_empty() { Retired::Retired } else { Retired::Kept })
    }
}
