//! `fleet rotate`: for each selected application, a new certificate generated and written to
//! `OUT_DIR/<appId>/<name>.*`, added by PATCH of the whole `keyCredentials` array (re-read just
//! before writing, [`GraphClient::update_key_credentials`]), verified by getting a token as that
//! application with it, and only then the certificates that were expiring or expired removed,
//! never leaving the application without a valid certificate.
//!
//! Each step is journaled ([`super::journal`]) once it has happened, and each is safe to redo:
//! a resumed run reuses the key already on disk instead of generating another, adds the
//! certificate only when Graph does not list it yet, and removes only what Graph still lists.
//! So a run killed at any moment and run again gives every selected application exactly one new
//! certificate, verified, and removes nothing twice.

use super::audit::{CredStatus, DEFAULT_WINDOW};
use super::journal::{AppState, Header, Journal, Record, Step, VERSION};
use crate::authority::{Authority, EndpointVersion};
use crate::cert::files::{write_files, FilePaths};
use crate::cert::{self, KeySize, LoadedCredential, NewCertificate, SignatureAlg, Validity};
use crate::fsio::{self, Links};
use crate::graph::call::Collection;
use crate::graph::pager::Objects;
use crate::graph::{self, Application, GraphClient};
use crate::ids::{ClientId, TenantId};
use crate::lock::{lock_path_of, FileLock};
use crate::manifest::{read_entry, KeyCredential};
use crate::token::{ClientAuth, Grant, Target, TokenClient, TokenRequest};
use crate::{dates, Error, Result};
use serde::Serialize;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
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
    /// Certificates ending within it (or already ended) are replaced.
    pub window: Duration,
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
            days: 365,
            window: DEFAULT_WINDOW,
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

    fn journal_path(&self) -> PathBuf {
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
    /// keyIds removed (or, with `--dry-run`, to remove).
    pub removed: Vec<String>,
    /// The new certificate's bundle (key + certificate).
    pub bundle: Option<String>,
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
    /// Whether every selected application ended with a verified valid certificate.
    pub fn all_rotated(&self) -> bool {
        !self.interrupted && self.failed == 0 && self.planned == 0
    }
}

/// Told as the run goes (progress bars).
pub trait Progress: Send + Sync {
    /// One more application selected.
    fn selected(&self) {}
    /// An application finished.
    fn finished(&self, _o: &Outcome) {}
}

/// No progress shown.
pub struct Quiet;
impl Progress for Quiet {}

/// The certificates `fleet rotate` replaces on `creds`: usable ones ending within `window` or
/// already ended, never `keep` (the new certificate).
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

fn creds_of(entries: &[Value]) -> Vec<KeyCredential> {
    entries.iter().enumerate().filter_map(|(i, v)| v.as_object().map(|o| read_entry(i, o))).collect()
}

/// Whether the application Graph returned is to be rotated: named explicitly, or holding a
/// certificate to replace; and it has a certificate at all (see [`skip_reason`]).
pub fn is_selected(app: &Value, explicit: bool, now: OffsetDateTime, window: Duration) -> bool {
    skip_reason(app, explicit, now, window).is_none()
}

/// Why the application Graph returned is left alone, or `None` when it is to be rotated. An
/// application with no certificate (only client secrets, or no credential at all) is always
/// left alone: there is nothing to replace, and secrets are not rotated. One named explicitly
/// is otherwise rotated whatever its dates; any other only when it holds a certificate to
/// replace.
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
    if !to_replace(&creds, now, window, None).is_empty() {
        return None;
    }
    Some(if creds.iter().any(KeyCredential::is_usable) {
        format!("no certificate to replace: none ends within {}", window_text(window))
    } else {
        "no certificate to replace: none is usable (see `keycred fleet audit`)".to_string()
    })
}

/// `window` as `--expiring-within` takes it: `30d`, `12h`, `90m` or `45s`.
fn window_text(window: Duration) -> String {
    let s = window.as_secs();
    match s {
        _ if s.is_multiple_of(86_400) => format!("{}d", s / 86_400),
        _ if s.is_multiple_of(3_600) => format!("{}h", s / 3_600),
        _ if s.is_multiple_of(60) => format!("{}m", s / 60),
        _ => format!("{s}s"),
    }
}

struct Run {
    g: Arc<GraphClient>,
    tokens: Arc<TokenClient>,
    opts: Options,
    journal: Option<Journal>,
    name: String,
    stop: Arc<AtomicBool>,
}

/// Where an application's files go: `OUT_DIR/<appId>/<name>.key`, `.cer`, `.pem`.
fn files(out_dir: &Path, app_id: &str, name: &str) -> FilePaths {
    FilePaths::new(&out_dir.join(app_id), name, false)
}

impl Run {
    fn record(&self, app_id: &str, step: Step, thumbprint: Option<String>, removed: Vec<String>) -> Result<()> {
        match &self.journal {
            Some(j) => j.record(Record { app_id: app_id.to_string(), step, thumbprint, removed }),
            None => Ok(()),
        }
    }

    /// The new certificate: the one on disk when the journal recorded it (and its thumbprint,
    /// which the file must match), else a fresh one, written before Graph hears of it. A key
    /// the journal does not vouch for is never adopted: files a crash left before the journal
    /// recorded them were never registered, and are replaced in a resumed run.
    async fn credential(&self, app_id: &str, state: &AppState) -> Result<LoadedCredential> {
        // Keycred makes this directory itself (0700): a link or a shared directory there was
        // planted, and keys are neither read from nor written to it.
        fsio::check_private_dir(&self.opts.out_dir.join(app_id), "the application's directory", Links::Refuse)?;
        let paths = files(&self.opts.out_dir, app_id, &self.name);
        // The bundle is written last: its presence says the set is complete.
        let pem = paths.bundle().to_path_buf();
        let resumed = self.journal.as_ref().is_some_and(Journal::resumed);
        if state.step.is_some_and(|s| s >= Step::Generated) {
            let restart = "restore the file the journal names, or move the journal aside to start a new run";
            let Some(recorded) = &state.thumbprint else {
                return Err(Error::input(format!(
                    "{}: the journal says this certificate was written but records no thumbprint for it",
                    pem.display()
                ))
                .with_hint(restart));
            };
            if !pem.exists() {
                return Err(Error::input(format!(
                    "{}: the journal says this certificate was written, but the file is gone",
                    pem.display()
                ))
                .with_hint(restart));
            }
            let cred = cert::load_credential(&pem, None, None)?;
            let thumb = cred.cert.thumbprint();
            if !recorded.eq_ignore_ascii_case(&thumb) {
                return Err(Error::input(format!(
                    "{}: holds certificate {thumb}, but the journal recorded {recorded}",
                    pem.display()
                ))
                .with_hint(restart));
            }
            return Ok(cred);
        }
        let req = NewCertificate {
            subject: format!("CN={app_id}"),
            key_size: self.opts.key_size,
            validity: Validity::Days(self.opts.days),
        };
        // Key generation is the real cost of a rotation: off the async threads.
        let (c, k) = tokio::task::spawn_blocking(move || cert::generate(&req))
            .await
            .map_err(|e| Error::internal(format!("key generation stopped: {e}")))??;
        // `OUT_DIR/<appId>/` is created by `write_files` when missing, 0700 (the key goes inside).
        // A resumed run may find the first files of a set a crash interrupted: replaced.
        write_files(&paths, &c, &k, None, &self.name, resumed)?;
        LoadedCredential::new(c, Vec::new(), k, &pem)
    }

    async fn verify(&self, app_id: &str, cred: &Arc<LoadedCredential>) -> Result<()> {
        let req = TokenRequest {
            authority: self.opts.authority.clone(),
            tenant: self.opts.tenant.clone(),
            client_id: ClientId::new(app_id)?,
            version: EndpointVersion::V2,
            target: Target::Scopes(vec![self.opts.verify_scope.clone()]),
            grant: Grant::ClientCredentials,
            auth: ClientAuth::Certificate { cred: cred.clone(), alg: SignatureAlg::Rs256, x5c: false },
        };
        let mut wait = self.opts.verify_wait;
        let mut attempt = 1;
        loop {
            match self.tokens.request_token(&req).await {
                Ok(_) => return Ok(()),
                // Entra takes a moment to accept a key just added; a refusal may be that.
                Err(_) if attempt < self.opts.verify_attempts && !self.stop.load(Ordering::Relaxed) => {
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                    attempt += 1;
                }
                Err(e) => {
                    // Context and note keep Entra's code for the report.
                    return Err(e
                        .context(format!(
                            "the new certificate is registered but getting a token with it failed ({attempt} attempts)"
                        ))
                        .with_note("nothing was removed"));
                }
            }
        }
    }

    async fn rotate_app(&self, app: Value) -> Outcome {
        let s = |k: &str| app.get(k).and_then(Value::as_str).map(str::to_string);
        let app_id = s("appId").unwrap_or_default().to_ascii_lowercase();
        let mut out = Outcome {
            app_id: app_id.clone(),
            display_name: s("displayName"),
            result: Result_::Failed,
            thumbprint: None,
            removed: Vec::new(),
            bundle: None,
            step: None,
            reason: None,
            aadsts: None,
            graph_code: None,
        };
        let mut step_name = "read";
        match self.steps(&app, &app_id, &mut out, &mut step_name).await {
            Ok(r) => out.result = r,
            Err(e) => {
                out.step = Some(step_name);
                (out.aadsts, out.graph_code) = (e.aadsts(), e.graph_code().map(str::to_string));
                out.reason = Some(match e.hint() {
                    Some(h) => format!("{} (hint: {h})", e.message()),
                    None => e.message().to_string(),
                });
            }
        }
        out
    }

    async fn steps(
        &self,
        app: &Value,
        app_id: &str,
        out: &mut Outcome,
        step_name: &mut &'static str,
    ) -> Result<Result_> {
        let state = self.journal.as_ref().map(|j| j.state(app_id)).unwrap_or_default();
        let done = |s: Step| state.step.is_some_and(|d| d >= s);
        if done(Step::Done) {
            *step_name = "confirm";
            state.confirm_done(app, app_id)?;
            out.thumbprint = state.thumbprint;
            return Ok(Result_::AlreadyRotated);
        }
        let id = app
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::remote("Graph listed an application without 'id'"))?
            .to_string();
        let interrupted = |name: &'static str, out: &mut Outcome| {
            out.step = Some(name);
            Ok(Result_::Interrupted)
        };
        if self.stop.load(Ordering::Relaxed) {
            return interrupted("generate", out);
        }

        *step_name = "generate";
        let cred = Arc::new(self.credential(app_id, &state).await?);
        let thumb = cred.cert.thumbprint();
        out.thumbprint = Some(thumb.clone());
        out.bundle = Some(cred.cert_path.display().to_string());
        if !done(Step::Generated) {
            self.record(app_id, Step::Generated, Some(thumb.clone()), Vec::new())?;
        }

        if !done(Step::Added) {
            if self.stop.load(Ordering::Relaxed) {
                return interrupted("add", out);
            }
            *step_name = "add";
            let current: Application = self.g.get(&id).await?;
            let present = graph::credentials_of(&current).iter().any(|c| c.sha1() == Some(cred.cert.sha1()));
            if !present {
                graph::add_certificate(
                    &self.g,
                    &current,
                    None,
                    &cred.cert,
                    None,
                    graph::Method::Patch,
                    graph::PROOF_AUD_AAD_GRAPH,
                )
                .await?;
            }
            self.record(app_id, Step::Added, None, Vec::new())?;
        }

        if !done(Step::Verified) {
            if self.stop.load(Ordering::Relaxed) {
                return interrupted("verify", out);
            }
            *step_name = "verify";
            self.verify(app_id, &cred).await?;
            self.record(app_id, Step::Verified, None, Vec::new())?;
        }

        if !done(Step::Removed) {
            if self.stop.load(Ordering::Relaxed) {
                return interrupted("remove", out);
            }
            *step_name = "remove";
            out.removed = self.remove_old(&id, app_id, cred.cert.sha1()).await?;
            self.record(app_id, Step::Removed, None, out.removed.clone())?;
        }
        self.record(app_id, Step::Done, None, Vec::new())?;
        Ok(Result_::Rotated)
    }

    /// Removes the certificates to replace as Graph lists them now; refuses to leave no valid
    /// certificate. Reads only when there is nothing to remove.
    async fn remove_old(&self, id: &str, app_id: &str, new_sha1: [u8; 20]) -> Result<Vec<String>> {
        let window = self.opts.window;
        let plan = |entries: &[Value]| -> Result<(Vec<Value>, Vec<String>)> {
            let now = dates::now();
            let creds = creds_of(entries);
            let gone = to_replace(&creds, now, window, Some(new_sha1));
            let keep_valid = creds.iter().any(|c| !gone.contains(&c.index) && c.counts_as_valid_at(now));
            if !gone.is_empty() && !keep_valid {
                return Err(Error::check(format!(
                    "application {app_id}: removing the expiring certificates would leave no valid one; nothing was removed"
                )));
            }
            let removed = creds.iter().filter(|c| gone.contains(&c.index)).filter_map(|c| c.key_id.clone()).collect();
            let after = entries.iter().enumerate().filter(|(i, _)| !gone.contains(i)).map(|(_, v)| v.clone()).collect();
            Ok((after, removed))
        };
        let current = self.g.get(id).await?;
        if plan(&current.key_credentials)?.1.is_empty() {
            return Ok(Vec::new());
        }
        let removed = Mutex::new(Vec::new());
        self.g
            .update_key_credentials(id, |before| {
                let (after, r) = plan(before)?;
                *removed.lock().expect("lock") = r;
                Ok(after)
            })
            .await?;
        Ok(removed.into_inner().unwrap_or_default())
    }

    fn plan_only(&self, app: &Value) -> Outcome {
        let entries = app.get("keyCredentials").and_then(Value::as_array).cloned().unwrap_or_default();
        let creds = creds_of(&entries);
        let gone = to_replace(&creds, dates::now(), self.opts.window, None);
        let s = |k: &str| app.get(k).and_then(Value::as_str).map(str::to_string);
        let app_id = s("appId").unwrap_or_default().to_ascii_lowercase();
        let pem = files(&self.opts.out_dir, &app_id, &self.name).bundle().display().to_string();
        Outcome {
            app_id,
            display_name: s("displayName"),
            result: Result_::Planned,
            thumbprint: None,
            removed: creds.iter().filter(|c| gone.contains(&c.index)).filter_map(|c| c.key_id.clone()).collect(),
            bundle: Some(pem),
            step: None,
            reason: None,
            aadsts: None,
            graph_code: None,
        }
    }
}

/// Locks the output directory (`OUT_DIR/fleet-rotate.lock`) and the journal (`<journal>.lock`),
/// waiting as manifest edits do (`KEYCRED_LOCK_TIMEOUT`), off the async threads.
async fn lock_run(opts: &Options) -> Result<Vec<FileLock>> {
    let (out_dir, journal) = (opts.out_dir.clone(), opts.journal_path());
    tokio::task::spawn_blocking(move || {
        let activity = "rotating with it (fleet rotate)";
        Ok(vec![
            FileLock::acquire(out_dir.join(OUT_DIR_LOCK), &out_dir, activity)?,
            FileLock::acquire(lock_path_of(&journal), &journal, activity)?,
        ])
    })
    .await
    .map_err(|e| Error::internal(format!("locking stopped: {e}")))?
}

/// Runs a rotation. `stop` (set by Ctrl-C) lets the applications in flight finish their current
/// step and starts no new one.
pub async fn run(
    g: Arc<GraphClient>,
    tokens: Arc<TokenClient>,
    opts: Options,
    stop: Arc<AtomicBool>,
    progress: Arc<dyn Progress>,
) -> Result<Summary> {
    opts.check()?;
    if !opts.dry_run {
        fsio::ensure_private_dir(&opts.out_dir, "--out-dir", Links::Follow)?;
    }
    // Held until the run returns: a second run over the same directory or journal would give
    // an application two new certificates and lose a key.
    let _locks = if opts.dry_run { Vec::new() } else { lock_run(&opts).await? };
    let started = dates::now();
    let fresh_name = format!("fleet-{}", dates::format(started).replace([':', '-'], ""));
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
    let explicit = !opts.app_ids.is_empty();
    let concurrency = opts.concurrency;
    let run = Arc::new(Run { g: g.clone(), tokens, opts, journal, name, stop: stop.clone() });
    let summary = Arc::new(Mutex::new(Summary::default()));

    let (tx, rx) = tokio::sync::mpsc::channel::<Value>(concurrency * 2);
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (run, rx, summary, progress) = (run.clone(), rx.clone(), summary.clone(), progress.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let next = rx.lock().await.recv().await;
                let Some(app) = next else { break };
                let o = if run.opts.dry_run { run.plan_only(&app) } else { run.rotate_app(app).await };
                progress.finished(&o);
                let mut s = summary.lock().expect("summary lock");
                match o.result {
                    Result_::Rotated => s.rotated += 1,
                    Result_::AlreadyRotated => s.already_rotated += 1,
                    Result_::Planned => s.planned += 1,
                    Result_::Interrupted => s.interrupted = true,
                    Result_::Failed => s.failed += 1,
                    Result_::Skipped => s.skipped += 1,
                }
                s.apps.push(o);
            }
        }));
    }

    // Streamed: one page of applications in memory, and at most 2 x concurrency queued.
    let listing: Result<()> = async {
        let mut objects = Objects::new(&g, Collection::Applications, &run.opts.app_ids);
        let now = dates::now();
        while let Some(app) = objects.next().await? {
            if stop.load(Ordering::Relaxed) {
                summary.lock().expect("summary lock").interrupted = true;
                break;
            }
            let app_id = app.get("appId").and_then(Value::as_str).unwrap_or("").to_ascii_lowercase();
            // An application the journal knows is finished (or resumed) whatever its dates now.
            let known = run.journal.as_ref().is_some_and(|j| j.state(&app_id).step.is_some());
            if !known {
                if let Some(reason) = skip_reason(&app, explicit, now, run.opts.window) {
                    let o = Outcome {
                        display_name: app.get("displayName").and_then(Value::as_str).map(str::to_string),
                        app_id,
                        result: Result_::Skipped,
                        thumbprint: None,
                        removed: Vec::new(),
                        bundle: None,
                        step: None,
                        reason: Some(reason),
                        aadsts: None,
                        graph_code: None,
                    };
                    let mut s = summary.lock().expect("summary lock");
                    s.skipped += 1;
                    s.apps.push(o);
                    continue;
                }
            }
            summary.lock().expect("summary lock").selected += 1;
            progress.selected();
            if tx.send(app).await.is_err() {
                break;
            }
        }
        Ok(())
    }
    .await;
    drop(tx);
    for w in workers {
        w.await.map_err(|e| Error::internal(format!("a rotation worker stopped: {e}")))?;
    }
    listing?;
    let run = Arc::into_inner(run).ok_or_else(|| Error::internal("rotation workers still running"))?;
    let mut s = std::mem::take(&mut *summary.lock().expect("summary lock"));
    s.apps.sort_by(|a, b| a.app_id.cmp(&b.app_id));
    s.throttled = g.limiter().throttled_count();
    if explicit {
        for id in &run.opts.app_ids {
            if !s.apps.iter().any(|o| o.app_id == id.as_str()) {
                s.selected += 1;
                s.failed += 1;
                s.apps.push(Outcome {
                    app_id: id.to_string(),
                    display_name: None,
                    result: Result_::Failed,
                    thumbprint: None,
                    removed: Vec::new(),
                    bundle: None,
                    step: Some("read"),
                    reason: Some("Graph lists no application with this id in the tenant".into()),
                    aadsts: None,
                    graph_code: None,
                });
            }
        }
    }
    if let Some(j) = run.journal {
        s.journal = Some(if s.all_rotated() { j.finish()? } else { j.path().to_path_buf() }.display().to_string());
    }
    Ok(s)
}

/// The statuses `fleet rotate` replaces, for messages.
pub const REPLACED: [CredStatus; 2] = [CredStatus::Expiring, CredStatus::Expired];
