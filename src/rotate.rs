//! Certificate rotation for manifest files: add the new certificate beside the old ones, prove
//! it works, and only then remove what the user asked to remove.
//!
//! The order is what keeps an application from being locked out: nothing is removed before the
//! new credential is in place (and, with verification, has obtained a token), the credential just
//! verified is never removed, and a failed verification takes the new entry out again so the
//! manifest is exactly as it was.

use crate::cert::LoadedCredential;
use crate::manifest::{edit_file, entry_for, EntryOptions, Format, ListRow, Manifest, Selector};
use crate::token::{ClientAuth, Grant, TokenClient, TokenRequest};
use crate::{dates, Error, Result};
use serde::Serialize;
use serde_json::Value;
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

/// Adds `new` to the manifest, verifies it if asked, then removes per `policy`.
pub fn apply(
    manifest: &Path,
    format: Format,
    new: &Arc<LoadedCredential>,
    entry: &EntryOptions,
    policy: &RemovePolicy,
    verify: Option<Verify<'_>>,
    force: bool,
) -> Result<RotateReport> {
    let added = entry_for(&new.cert, format, entry)?;
    let key_id = added.get("keyId").and_then(Value::as_str).unwrap_or_default().to_string();
    let new_sel = Selector::key_id(&key_id)?;
    let now = dates::now();
    // The whole rotation is first played on the manifest in memory, so that whatever would refuse
    // (a lock-out, a selection matching nothing) refuses before the file is touched.
    let current = Manifest::load(manifest)?;
    plan_removal(&current.add_entry(added.clone())?, &new_sel, policy, force, now)?;
    edit_file(manifest, |m| m.add_entry(added.clone()))?;

    let mut verified_with = None;
    if let Some(v) = verify {
        let mut req = v.request;
        req.auth = ClientAuth::Certificate { cred: new.clone(), alg: crate::cert::SignatureAlg::Rs256, x5c: false };
        req.grant = Grant::ClientCredentials;
        match v.client.request_token_blocking(&req) {
            Ok(_) => verified_with = Some(req.endpoint()),
            Err(e) => {
                // Take the new entry out again: the manifest must be as it was.
                let undo = edit_file(manifest, |m| m.remove_entries(std::slice::from_ref(&new_sel)));
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
        let (after, rows) = plan_removal(m, &new_sel, policy, force, now)?;
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
    Ok(RotateReport { added: Value::Object(added), thumbprint: new.cert.thumbprint(), removed, verified_with })
}

/// The manifest `m` (already holding the new entry `new_sel`) after the removals `policy` asks
/// for, and the entries removed. Never removes the new entry; refuses a lock-out unless `force`.
fn plan_removal(
    m: &Manifest,
    new_sel: &Selector,
    policy: &RemovePolicy,
    force: bool,
    now: time::OffsetDateTime,
) -> Result<(Manifest, Vec<ListRow>)> {
    let mut sels: Vec<Selector> = match policy {
        RemovePolicy::KeepOld => Vec::new(),
        RemovePolicy::Selected(s) => s.clone(),
        RemovePolicy::Expired => m
            .credentials()
            .iter()
            .filter(|c| c.end.is_some_and(|e| e < now))
            .filter_map(|c| c.key_id.as_deref().and_then(|k| Selector::key_id(k).ok()))
            .collect(),
    };
    // Never the credential just added (and verified), whatever the selection says.
    if let Some(new) = m.find(new_sel).first() {
        sels.retain(|s| !s.matches(new));
    }
    if sels.is_empty() {
        return Ok((m.clone(), Vec::new()));
    }
    let after = m.remove_entries(&sels)?;
    if !force {
        m.ensure_not_locked_out(&after, now)?;
    }
    let removed = sels.iter().flat_map(|s| m.find(s)).map(|c| ListRow::of(&c, now)).collect();
    Ok((after, removed))
}
