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

use super::audit::CredStatus;
use super::journal::{Header, Journal, VERSION};
use super::rotate_steps::Run;
use super::workers::{for_each_app, Progress};
use crate::fsio::{self, Links};
use crate::graph::policy::{is_denied, TenantPolicies};
use crate::graph::GraphClient;
use crate::lock::{lock_path_of, FileLock};
use crate::manifest::KeyCredential;
use crate::rotate::deploy::DeployResult;
use crate::token::TokenClient;
use crate::wording::{Action, Input};
use crate::{dates, Error, Result};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

use super::rotate_model::app_id_of;
pub(super) use super::rotate_model::creds_of;
pub use super::rotate_model::{
    AppOutcome, At, Ended, Failure, Options, Outcome, Rotation, Summary, ALREADY_ROTATED, JOURNAL_NAME, OUT_DIR_LOCK,
    WOULD_BE_REFUSED,
};

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

/// Whether the application Graph returned is to be rotated: named explicitly, or holding a
/// certificate to replace; and it has a certificate at all (see [`skip_reason`]).
pub fn is_selected(app: &Value, explicit: bool, now: OffsetDateTime, window: Duration) -> bool {
    skip_reason(app, explicit, now, window).is_none()
}

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
            "{ALREADY_ROTATED}: {} lasts beyond {}; retire the older certificates with {}",
            c.key_id.as_deref().map(|k| format!("keyId {k}")).unwrap_or_else(|| "a certificate".into()),
            window_text(window),
            Action::RetireFleet
        )),
        (true, _) if creds.iter().any(KeyCredential::is_usable) => {
            Some(format!("no certificate to replace: none ends within {}", window_text(window)))
        }
        (true, _) => Some(format!("no certificate to replace: none is usable (see {})", Action::Audit)),
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
    .map_err(|e| Error::internal("locking stopped").caused_by(e))?
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
    progress: Arc<dyn Progress<AppOutcome>>,
) -> Result<Summary> {
    opts.check()?;
    if !opts.dry_run {
        fsio::ensure_private_dir(&opts.out_dir, &Input::OutDir.to_string(), Links::Follow)?;
    }
    // Held until the run returns: a second run over the same directory or journal would give
    // an application two new certificates and lose a key.
    let _locks = if opts.dry_run { Vec::new() } else { lock_run(&opts, "rotating with it (fleet rotate)").await? };
    // Read once for the run, before any key is generated or the journal written.
    let policies = tenant_policies(&g, opts.policy_unknown_ok).await?;
    let policy_checked = policies.is_some();
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
    let run = Arc::new(Run { g: g.clone(), tokens, opts, journal, name, stop: stop.clone(), policies });
    let leave = |app: &Value| {
        // An application the journal knows is finished (or resumed) whatever its dates now.
        let known = run.journal.as_ref().is_some_and(|j| j.state(&app_id_of(app)).step.is_some());
        let reason = if known { None } else { skip_reason(app, explicit, now, window) }?;
        Some(AppOutcome::of(app, Outcome::Skipped { reason }))
    };
    let worker = run.clone();
    let work = move |app: Value| {
        let run = worker.clone();
        async move {
            if run.opts.dry_run {
                run.plan_only(&app).await
            } else {
                run.rotate_app(app).await
            }
        }
    };
    let listed = for_each_app(&g, &ids, concurrency, &stop, progress, leave, work).await?;
    let run = Arc::into_inner(run).ok_or_else(|| Error::internal("rotation workers still running"))?;
    let mut s = summarize(listed.outcomes, listed.selected, listed.interrupted);
    s.throttled = g.limiter().throttled_count();
    s.policy_checked = policy_checked;
    for id in &ids {
        if !s.apps.iter().any(|o| o.app_id == id.as_str()) {
            s.selected += 1;
            s.failed += 1;
            let failure = Failure::reason("Graph lists no application with this id in the tenant");
            let failed = Outcome::Failed { step: At::Read, failure, rotation: None };
            s.apps.push(AppOutcome::of(&serde_json::json!({ "appId": id.as_str() }), failed));
        }
    }
    if let Some(j) = run.journal {
        s.journal = Some(if s.all_rotated() { j.finish()? } else { j.path().to_path_buf() }.display().to_string());
    }
    Ok(s)
}

/// The tenant's app management policies (default, and whether per-app ones exist), or `None`
/// when Graph refuses to show them and `unknown_ok` says to go on without.
async fn tenant_policies(g: &GraphClient, unknown_ok: bool) -> Result<Option<TenantPolicies>> {
    match g.tenant_policies().await {
        Ok(p) => Ok(Some(p)),
        Err(e) if unknown_ok && is_denied(&e) => Ok(None),
        Err(e) if is_denied(&e) => Err(Error::remote(format!(
            "cannot read the tenant's app management policies: reading them needs the Microsoft Graph permission \
             Policy.Read.All; nothing was generated or changed ({})",
            e.message()
        ))),
        Err(e) => Err(e),
    }
}

/// The summary of these outcomes, sorted by appId.
fn summarize(mut apps: Vec<AppOutcome>, selected: u64, interrupted: bool) -> Summary {
    let mut s = Summary { selected, interrupted, ..Summary::default() };
    for o in &apps {
        match o.outcome.ended() {
            Ended::Rotated => s.rotated += 1,
            Ended::AlreadyRotated => s.already_rotated += 1,
            Ended::Planned => s.planned += 1,
            Ended::Interrupted => s.interrupted = true,
            Ended::Failed => s.failed += 1,
            Ended::Skipped => s.skipped += 1,
            Ended::Refused => s.refused += 1,
        }
        match o.outcome.rotation().and_then(|r| r.deploy.as_ref()).map(DeployResult::ok) {
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
