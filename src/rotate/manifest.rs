//! Rotation of a manifest file: add the new certificate beside the old ones, prove it works,
//! hand it over, and only then remove what was asked; later, retire the older certificates on
//! evidence.
//!
//! The order is what keeps an application from being locked out: nothing is removed before the
//! new credential is in place (and, with verification, has obtained a token), the credential
//! just verified is never removed, and a failed verification takes the new entry out again so
//! the manifest is exactly as it was. Everything that can be checked is checked before the
//! first write ([`preflight`], [`prepare`]), and checked again under the manifest's lock.

use super::deploy::{DeployHook, DeployResult, DeployTarget};
use super::evidence::{decide, Evidence};
use super::{RemovePolicy, RetireReport, RotateReport, Stage, Verification, Verify};
use crate::cert::files::{Files, Plan};
use crate::cert::{Certificate, LoadedCredential};
use crate::graph::{signins, GraphClient};
use crate::manifest::{
    edit_file, entry_for_at, EntryOptions, Format, KeyCredential, ListRow, LockoutGuard, Manifest, Selector,
};
use crate::token::{ClientAuth, Grant};
use crate::wording::{Action, Input};
use crate::{dates, fsio, Error, Result};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Checks, before anything is generated or written, that the manifest can be rotated: it
/// parses, its format is known (or given), and every entry named for removal exists.
pub fn preflight(manifest: &Path, format: Option<Format>, policy: &RemovePolicy) -> Result<(Manifest, Format)> {
    let m = Manifest::load(manifest)?;
    let format = m.resolve_format(format)?;
    if let RemovePolicy::Selected(sels) = policy {
        for s in sels {
            if m.find(s).is_empty() {
                return Err(Error::input(format!(
                    "{}: no keyCredentials entry with {s}; nothing was changed",
                    manifest.display()
                ))
                .with_hint(format!("see {}", Action::ListEntries { manifest: Some(manifest.display().to_string()) })));
            }
        }
    }
    Ok((m, format))
}

/// A rotation checked against the manifest as it is, before anything is written: the new
/// certificate is usable, its entry fits the manifest, and the removals asked for leave a
/// currently valid certificate (unless `allow_lockout`).
#[derive(Clone, Debug)]
pub struct Prepared {
    entry: Map<String, Value>,
    key_id: String,
    new_sel: Selector,
    policy: RemovePolicy,
    allow_lockout: bool,
}

impl Prepared {
    /// The entry that will be added.
    pub fn entry(&self) -> &Map<String, Value> {
        &self.entry
    }
    /// Its `keyId`.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }
}

/// Checks the whole rotation of `manifest` to `new` on the manifest in memory; writes nothing.
/// `allow_lockout` lets the removals leave no currently valid certificate.
pub fn prepare(
    manifest: &Path,
    format: Format,
    new: &Certificate,
    entry: &EntryOptions,
    policy: &RemovePolicy,
    allow_lockout: bool,
) -> Result<Prepared> {
    let now = dates::now();
    ensure_new_usable(new, now)?;
    let added = entry_for_at(new, format, entry, now)?;
    let key_id = added.get("keyId").and_then(Value::as_str).unwrap_or_default().to_string();
    let new_sel = Selector::key_id(&key_id)?;
    let policy = match policy {
        RemovePolicy::Selected(sels) => RemovePolicy::new(sels.clone(), false),
        other => other.clone(),
    };
    let prepared = Prepared { entry: added, key_id, new_sel, policy, allow_lockout };
    let current = Manifest::load(manifest)?;
    plan_removal(&current.add_entry(prepared.entry.clone())?, &prepared, new, now)?;
    Ok(prepared)
}

/// Adds `new` to the manifest, verifies it if asked, then removes per `policy`; refuses to leave
/// no currently valid certificate unless `allow_lockout`. [`prepare`] then [`apply_prepared`].
pub fn apply(
    manifest: &Path,
    format: Format,
    new: &Arc<LoadedCredential>,
    entry: &EntryOptions,
    policy: &RemovePolicy,
    verify: Option<Verify<'_>>,
    allow_lockout: bool,
) -> Result<RotateReport> {
    let prepared = prepare(manifest, format, &new.cert, entry, policy, allow_lockout)?;
    apply_prepared(manifest, &prepared, new, verify)
}

/// Carries out a [`Prepared`] rotation: adds the entry, verifies the new certificate when asked
/// (taking the entry out again when that fails), then removes what the policy says.
pub fn apply_prepared(
    manifest: &Path,
    p: &Prepared,
    new: &Arc<LoadedCredential>,
    verify: Option<Verify<'_>>,
) -> Result<RotateReport> {
    register(manifest, p, new)?;
    let verified_with = verify.map(|v| verify_new(manifest, p, new, v)).transpose()?;
    let removed = remove_planned(manifest, p, new)?;
    Ok(report(p, new, removed, verified_with))
}

fn report(p: &Prepared, new: &LoadedCredential, removed: Vec<ListRow>, verified_with: Option<String>) -> RotateReport {
    RotateReport {
        added: Value::Object(p.entry.clone()),
        key_id: p.key_id.clone(),
        thumbprint: new.cert.thumbprint(),
        removed,
        verified_with,
        methods: None,
        files: None,
        deploy: None,
        retire_from: Some(super::retire_from(dates::now(), new.cert.not_before())),
    }
}

/// Adds the entry, the whole rotation checked again on the manifest as it is now, under its
/// lock: it may have changed since [`prepare`].
fn register(manifest: &Path, p: &Prepared, new: &LoadedCredential) -> Result<()> {
    let now = dates::now();
    edit_file(manifest, |m| {
        let with_new = m.add_entry(p.entry.clone())?;
        plan_removal(&with_new, p, &new.cert, now)?;
        Ok(with_new)
    })?;
    Ok(())
}

/// Gets a token with the new certificate; when that fails, takes the new entry out again so the
/// manifest is as it was. Returns the endpoint that answered.
fn verify_new(manifest: &Path, p: &Prepared, new: &Arc<LoadedCredential>, v: Verify<'_>) -> Result<String> {
    let mut req = v.request;
    req.auth = ClientAuth::Certificate { cred: new.clone(), alg: crate::cert::SignatureAlg::Rs256, x5c: false };
    req.grant = Grant::ClientCredentials;
    let e = match v.client.request_token_blocking(&req) {
        Ok(_) => return Ok(req.endpoint()),
        Err(e) => e,
    };
    let undo = edit_file(manifest, |m| m.remove_entries(std::slice::from_ref(&p.new_sel)));
    let note = match undo {
        Ok(_) => "the new certificate was taken out of the manifest again and nothing was removed".to_string(),
        Err(u) => format!("and taking the new entry out again failed too ({u}); remove keyId {} by hand", p.key_id),
    };
    // The refusal itself stays the error (its kind, hint and AADSTS code).
    let hint = e.hint().is_none().then_some("check the token request: client id, tenant, authority, scope");
    let e = e.context("verification with the new certificate failed").with_note(note);
    Err(match hint {
        Some(h) => e.with_hint(h),
        None => e,
    })
}

/// Removes what the policy picks from the manifest as it is now.
fn remove_planned(manifest: &Path, p: &Prepared, new: &LoadedCredential) -> Result<Vec<ListRow>> {
    let mut removed = Vec::new();
    edit_file(manifest, |m| {
        let (after, rows) = plan_removal(m, p, &new.cert, dates::now())?;
        removed = rows;
        Ok(after)
    })
    .map_err(|e| e.with_note(format!("the new certificate (keyId {}) stays in the manifest", p.key_id)))?;
    Ok(removed)
}

/// A whole rotation of a manifest file, as `keycred rotate` runs it.
pub struct ManifestRotation<'a> {
    /// The manifest.
    pub manifest: PathBuf,
    /// Its format, when the caller knows it (else the manifest's own).
    pub format: Option<Format>,
    /// The new certificate and its files, checked.
    pub plan: Plan,
    /// The new entry's options (its displayName).
    pub entry: EntryOptions,
    /// What phase 1 removes.
    pub policy: RemovePolicy,
    /// Let the removals leave no currently valid certificate.
    pub allow_lockout: bool,
    /// Prove the new certificate with a token before removing anything.
    pub verify: Option<Verification<'a>>,
    /// Hand the new certificate over once it is in (and proven).
    pub deploy: Option<DeployHook>,
}

/// Runs a whole rotation of a manifest file: checks everything, generates the key, writes the
/// files, adds the entry, verifies it, runs the deploy hook, then removes what the policy asks
/// (nothing when the hook failed). A failure before the new certificate is proven puts the
/// files and the manifest back as they were; `progress` hears each step as it starts.
pub fn rotate_manifest(r: &ManifestRotation<'_>, progress: &dyn Fn(Stage)) -> Result<RotateReport> {
    // Everything that can be checked is checked before a key is generated or a file written.
    let (_, format) = preflight(&r.manifest, r.format, &r.policy)?;
    progress(Stage::Generate);
    let (cert, key) = r.plan.generate()?;
    // Then the rotation itself, in memory: the new certificate's dates, its entry, the lock-out.
    let prepared = prepare(&r.manifest, format, &cert, &r.entry, &r.policy, r.allow_lockout)?;
    progress(Stage::WriteFiles);
    let snapshot = fsio::Snapshot::before(&r.plan.paths())?;
    let (files, cred) = r.plan.write_credential(cert, key).map_err(|e| snapshot.undo(e, ""))?;
    let cred = Arc::new(cred);
    let undo = |e: Error| {
        // The files stay when the manifest kept the new entry (a removal refused after the add):
        // they hold the key of a registered certificate.
        if manifest_holds(&r.manifest, prepared.key_id()) {
            return e;
        }
        progress(Stage::Undo);
        snapshot.undo(e, "the manifest is unchanged; ")
    };
    progress(Stage::Register);
    register(&r.manifest, &prepared, &cred).map_err(undo)?;
    let verified_with = match &r.verify {
        Some(v) => {
            progress(Stage::Verify);
            Some(verify_new(&r.manifest, &prepared, &cred, v.for_credential(&cred)).map_err(undo)?)
        }
        None => None,
    };
    let deploy = r.deploy.as_ref().map(|hook| {
        progress(Stage::Deploy);
        deploy_new(hook, &r.manifest, &prepared, &cred, &files)
    });
    // A failed deploy never leads to removing anything: the old certificates are still in use.
    let removed = match &deploy {
        Some(d) if !d.ok() => Vec::new(),
        _ => {
            progress(Stage::Remove);
            remove_planned(&r.manifest, &prepared, &cred)?
        }
    };
    let mut report = report(&prepared, &cred, removed, verified_with);
    report.files = Some(files);
    report.deploy = deploy;
    Ok(report)
}

/// Runs the deploy hook for the new certificate: the manifest's appId (empty when it has
/// none), the new keyId and thumbprint, and its files.
fn deploy_new(
    hook: &DeployHook,
    manifest: &Path,
    p: &Prepared,
    cred: &LoadedCredential,
    files: &Files,
) -> DeployResult {
    let app_id = Manifest::load(manifest).ok().and_then(|m| m.app_id().map(str::to_string)).unwrap_or_default();
    let (bundle, pfx) = (PathBuf::from(&files.bundle), files.pfx.as_ref().map(PathBuf::from));
    hook.run_blocking(&DeployTarget {
        app_id: &app_id,
        key_id: &p.key_id,
        thumbprint: &cred.cert.thumbprint(),
        bundle: &bundle,
        pfx: pfx.as_deref(),
    })
}

/// Whether the manifest at `path` holds the entry `key_id` (false when it cannot be read).
fn manifest_holds(path: &Path, key_id: &str) -> bool {
    let Ok(sel) = Selector::key_id(key_id) else { return false };
    Manifest::load(path).is_ok_and(|m| !m.find(&sel).is_empty())
}

/// Retires the older certificates of a manifest file on `evidence`: for sign-in evidence, the
/// report is read from `graph` for the manifest's appId (none given: no sign-in evidence). The
/// decision is made again on the manifest as it is under its lock, and the lock-out rule holds.
pub async fn retire_manifest(
    manifest: &Path,
    evidence: &Evidence,
    graph: Option<&GraphClient>,
) -> Result<RetireReport> {
    let m = Manifest::load(manifest)?;
    let sign_ins = match (evidence, graph) {
        (Evidence::SignIns { .. }, Some(g)) => {
            let app_id = m.app_id().filter(|a| !a.trim().is_empty()).ok_or_else(|| {
                Error::input(format!("{}: no appId, so no sign-in report to read", manifest.display()))
                    .with_hint("add the appId to the manifest, or retire on a grace period or without evidence")
            })?;
            Some(signins::for_app(g, app_id).await.map_err(|e| e.to_string()))
        }
        _ => None,
    };
    let (path, evidence) = (manifest.to_path_buf(), evidence.clone());
    // File I/O under the manifest's lock, off the async threads.
    tokio::task::spawn_blocking(move || -> Result<RetireReport> {
        let mut report = None;
        edit_file(&path, |m| {
            let now = dates::now();
            let d = decide(&m.credentials(), &evidence, sign_ins.as_ref(), now);
            let indices: Vec<usize> = d.retire.iter().map(|c| c.index).collect();
            let after = m.remove_guarded(&indices, LockoutGuard::KeepValid, now)?;
            report = Some(RetireReport::of(&d, &evidence, d.retire_rows(now), now));
            Ok(after)
        })?;
        report.ok_or_else(|| Error::internal("the manifest was not read"))
    })
    .await
    .map_err(|e| Error::internal("the retire task stopped").caused_by(e))?
}

/// Refuses a new certificate that cannot serve, naming its dates rather than an input file: the
/// rotation generated it from the requested dates.
fn ensure_new_usable(new: &Certificate, now: time::OffsetDateTime) -> Result<()> {
    if now > new.not_after() {
        return Err(Error::input(format!(
            "the new certificate would be valid from {} to {}, which has already ended; nothing was changed",
            dates::format(new.not_before()),
            dates::format(new.not_after())
        ))
        .with_hint(format!(
            "give {} and {} dates that end in the future, or {}",
            Input::NotBefore,
            Input::NotAfter,
            Input::Days
        )));
    }
    new.ensure_usable("the new certificate", now)
}

/// The manifest `m` (already holding the new entry) after the removals the policy asks for, and
/// the entries removed, each once. Never removes the new entry; refuses a lock-out unless allowed.
fn plan_removal(
    m: &Manifest,
    p: &Prepared,
    new: &Certificate,
    now: time::OffsetDateTime,
) -> Result<(Manifest, Vec<ListRow>)> {
    let picked: Vec<KeyCredential> = m
        .credentials()
        .into_iter()
        // Never the credential just added (and verified), whatever the selection says.
        .filter(|c| !p.new_sel.matches(c) && p.policy.picks(c, now))
        .collect();
    if picked.is_empty() {
        return Ok((m.clone(), Vec::new()));
    }
    let after = m.remove_indices(&picked.iter().map(|c| c.index).collect::<Vec<_>>())?;
    if !p.allow_lockout {
        m.ensure_not_locked_out(&after, now).map_err(|e| {
            let when = if new.not_before() > now {
                format!("the new certificate only becomes valid on {}", dates::format(new.not_before()))
            } else {
                "the new certificate does not count as valid".to_string()
            };
            e.with_note(format!("{when}; nothing was changed")).with_hint(format!(
                "keep the old entries for now (leave out {} and {}) and retire them once the new certificate is \
                 valid, or give {} if leaving no valid certificate is intended",
                Input::Remove,
                Input::RemoveExpired,
                Input::AllowLockout
            ))
        })?;
    }
    let removed = picked.iter().map(|c| ListRow::of(c, now)).collect();
    Ok((after, removed))
}
