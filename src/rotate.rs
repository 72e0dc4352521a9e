//! Certificate rotation for manifest files: add the new certificate beside the old ones, prove
//! it works, and only then remove what the user asked to remove.
//!
//! The order is what keeps an application from being locked out: nothing is removed before the
//! new credential is in place (and, with verification, has obtained a token), the credential just
//! verified is never removed, and a failed verification takes the new entry out again so the
//! manifest is exactly as it was.

use crate::cert::{Certificate, LoadedCredential};
use crate::manifest::{edit_file, entry_for_at, EntryOptions, Format, KeyCredential, ListRow, Manifest, Selector};
use crate::token::{ClientAuth, Grant, TokenClient, TokenRequest};
use crate::{dates, Error, Result};
use serde::Serialize;
use serde_json::{Map, Value};
use std::path::Path;
use std::sync::Arc;

/// What to remove once the new certificate is in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemovePolicy {
    /// Remove nothing (the default: clients switch first, old entries go later).
    KeepOld,
    /// Remove these entries.
    Selected(Vec<Selector>),
    /// Remove entries whose end date has passed.
    Expired,
}

/// How to prove the new certificate works before removing anything.
pub struct Verify<'a> {
    /// Token client.
    pub client: &'a TokenClient,
    /// The token request to make; its `auth` is replaced by the new certificate.
    pub request: TokenRequest,
}

/// What a rotation did.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RotateReport {
    /// The entry added.
    pub added: Value,
    /// The thumbprint (hex) of the new certificate.
    pub thumbprint: String,
    /// Entries removed.
    pub removed: Vec<ListRow>,
    /// The token endpoint that accepted the new certificate, when verified.
    pub verified_with: Option<String>,
}

/// Checks, before anything is generated or written, that the manifest can be rotated: it
/// parses, its format is known (or given), and every entry named for removal exists.
pub fn preflight(manifest: &Path, format: Option<Format>, policy: &RemovePolicy) -> Result<(Manifest, Format)> {
    let m = Manifest::load(manifest)?;
    let format = m.detect_format().or(format).ok_or_else(|| {
        Error::input(format!("{}: cannot tell the manifest's format (no entries, no telling keys)", manifest.display()))
            .with_hint("pass --format ms-graph or --format aad-graph")
    })?;
    if let RemovePolicy::Selected(sels) = policy {
        for s in sels {
            if m.find(s).is_empty() {
                return Err(Error::input(format!(
                    "{}: no keyCredentials entry with {s}; nothing was changed",
                    manifest.display()
                ))
                .with_hint(format!("list the entries with `keycred manifest list {}`", manifest.display())));
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
    let prepared = Prepared { entry: added, key_id, new_sel, policy: dedup(policy), allow_lockout };
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
    let now = dates::now();
    let key_id = &p.key_id;
    // Checked again on the manifest as it is now, under the lock: it may have changed since.
    edit_file(manifest, |m| {
        let with_new = m.add_entry(p.entry.clone())?;
        plan_removal(&with_new, p, &new.cert, now)?;
        Ok(with_new)
    })?;

    let mut verified_with = None;
    if let Some(v) = verify {
        let mut req = v.request;
        req.auth = ClientAuth::Certificate { cred: new.clone(), alg: crate::cert::SignatureAlg::Rs256, x5c: false };
        req.grant = Grant::ClientCredentials;
        match v.client.request_token_blocking(&req) {
            Ok(_) => verified_with = Some(req.endpoint()),
            Err(e) => {
                // Take the new entry out again: the manifest must be as it was.
                let undo = edit_file(manifest, |m| m.remove_entries(std::slice::from_ref(&p.new_sel)));
                let note = match undo {
                    Ok(_) => {
                        "the new certificate was taken out of the manifest again and nothing was removed".to_string()
                    }
                    Err(u) => {
                        format!("and taking the new entry out again failed too ({u}); remove keyId {key_id} by hand")
                    }
                };
                return Err(Error::new(
                    e.kind(),
                    format!("verification with the new certificate failed: {}; {note}", e.message()),
                )
                .with_hint(
                    e.hint()
                        .unwrap_or("check the token request options (--client-id, --tenant, --authority, --scope)")
                        .to_string(),
                ));
            }
        }
    }

    let mut removed = Vec::new();
    edit_file(manifest, |m| {
        let (after, rows) = plan_removal(m, p, &new.cert, now)?;
        removed = rows;
        Ok(after)
    })
    .map_err(|e| {
        let msg = format!("{}; the new certificate (keyId {key_id}) stays in the manifest", e.message());
        let err = Error::new(e.kind(), msg);
        match e.hint() {
            Some(h) => err.with_hint(h.to_string()),
            None => err,
        }
    })?;
    Ok(RotateReport {
        added: Value::Object(p.entry.clone()),
        thumbprint: new.cert.thumbprint(),
        removed,
        verified_with,
    })
}

/// Refuses a new certificate that cannot serve, naming its dates rather than an input file: the
/// rotation generated it from `--not-before`/`--not-after` (or `--days`).
fn ensure_new_usable(new: &Certificate, now: time::OffsetDateTime) -> Result<()> {
    if now > new.not_after() {
        return Err(Error::input(format!(
            "the new certificate would be valid from {} to {}, which has already ended; nothing was changed",
            dates::format(new.not_before()),
            dates::format(new.not_after())
        ))
        .with_hint("give --not-before/--not-after dates that end in the future, or --days N"));
    }
    new.ensure_usable("the new certificate", now)
}

/// The policy with repeated selectors given once, so each entry is reported once.
fn dedup(policy: &RemovePolicy) -> RemovePolicy {
    match policy {
        RemovePolicy::Selected(sels) => {
            let mut unique: Vec<Selector> = Vec::with_capacity(sels.len());
            for s in sels {
                if !unique.contains(s) {
                    unique.push(s.clone());
                }
            }
            RemovePolicy::Selected(unique)
        }
        other => other.clone(),
    }
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
        .filter(|c| !p.new_sel.matches(c))
        .filter(|c| match &p.policy {
            RemovePolicy::KeepOld => false,
            RemovePolicy::Selected(sels) => sels.iter().any(|s| s.matches(c)),
            RemovePolicy::Expired => c.effective_end().is_some_and(|e| e < now),
        })
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
            Error::new(e.kind(), format!("{}; {when}; nothing was changed", e.message())).with_hint(
                "keep the old entries for now (rotate with --keep-old) and remove them once the new certificate \
                 is valid, or pass --allow-lockout if leaving no valid certificate is intended",
            )
        })?;
    }
    let removed = picked.iter().map(|c| ListRow::of(c, now)).collect();
    Ok((after, removed))
}
