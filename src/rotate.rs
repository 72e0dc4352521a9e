//! Certificate rotation for manifest files: add the new certificate beside the old ones, prove
//! it works, and only then remove what the user asked to remove.
//!
//! The order is what keeps an application from being locked out: nothing is removed before the
//! new credential is in place (and, with verification, has obtained a token), the credential just
//! verified is never removed, and a failed verification takes the new entry out again so the
//! manifest is exactly as it was.
//!
//! [`rotate_graph`] follows the same order against an application in Microsoft Graph, and
//! reports in the same [`RotateReport`].

use crate::cert::files::{Files, Plan};
use crate::cert::{Certificate, LoadedCredential, PrivateKey};
use crate::graph::{self, Application, GraphClient, Method};
use crate::manifest::{edit_file, entry_for_at, EntryOptions, Format, KeyCredential, ListRow, Manifest, Selector};
use crate::token::{ClientAuth, Grant, TokenClient, TokenRequest};
use crate::{dates, fsio, Error, Result};
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
    /// How Graph was changed (addKey, removeKey or PATCH); absent for a manifest file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub methods: Option<Methods>,
}

/// How a Graph rotation changed the application.
#[derive(Clone, Debug, Serialize)]
pub struct Methods {
    /// How the new certificate was added.
    pub added: &'static str,
    /// How the old one was removed (`None` when it was kept or was not registered).
    pub removed: Option<&'static str>,
}

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
                // The refusal itself stays the error (its kind, hint and AADSTS code).
                let hint = e.hint().is_none().then_some("check the token request: client id, tenant, authority, scope");
                let e = e.context("verification with the new certificate failed").with_note(note);
                return Err(match hint {
                    Some(h) => e.with_hint(h),
                    None => e,
                });
            }
        }
    }

    let mut removed = Vec::new();
    edit_file(manifest, |m| {
        let (after, rows) = plan_removal(m, p, &new.cert, now)?;
        removed = rows;
        Ok(after)
    })
    .map_err(|e| e.with_note(format!("the new certificate (keyId {key_id}) stays in the manifest")))?;
    Ok(RotateReport {
        added: Value::Object(p.entry.clone()),
        thumbprint: new.cert.thumbprint(),
        removed,
        verified_with,
        methods: None,
    })
}

/// The application side of a Graph rotation.
pub struct GraphRotation<'a> {
    /// Graph client (with a token allowed to change the application, for PATCH).
    pub graph: &'a GraphClient,
    /// The application as read before the rotation.
    pub app: &'a Application,
    /// The application's current certificate: it signs the addKey proof and is the one replaced.
    pub current: &'a Arc<LoadedCredential>,
    /// addKey/removeKey or PATCH.
    pub method: Method,
    /// `aud` of the proofs of possession.
    pub proof_aud: &'a str,
    /// Keep the current certificate registered.
    pub keep_old: bool,
}

/// Rotates an application's certificate in Graph: writes the new credential's files (`cert` and
/// `key`, generated from `plan`), registers the certificate, obtains a token with it, and only
/// then removes the current one (unless `keep_old`). When the registration fails the directory is
/// put back as it was; when the verification fails the old certificate stays registered beside
/// the new one, whose files stay too.
pub async fn rotate_graph(
    r: &GraphRotation<'_>,
    plan: &Plan,
    cert: Certificate,
    key: PrivateKey,
    verify: Verify<'_>,
) -> Result<(RotateReport, Files)> {
    // Written before the registration, so the key is on disk once Graph knows the certificate.
    let before = fsio::Snapshot::before(&plan.paths())?;
    let (files, new) = plan.write_credential(cert, key).map_err(|e| before.undo(e, ""))?;
    let new = Arc::new(new);
    let added = graph::add_certificate(r.graph, r.app, Some(r.current), &new.cert, None, r.method, r.proof_aud)
        .await
        .map_err(|e| before.undo(e, "the application is unchanged; "))?;
    // Prove the new certificate works before anything is removed.
    let mut req = verify.request;
    req.auth = ClientAuth::Certificate { cred: new.clone(), alg: crate::cert::SignatureAlg::Rs256, x5c: false };
    req.grant = Grant::ClientCredentials;
    verify
        .client
        .request_token(&req)
        .await
        .map_err(|e| e.context("the new certificate was added but cannot get a token, so the old one was kept"))?;
    let mut removed = None;
    if !r.keep_old {
        let app = r.graph.get(&r.app.id).await?;
        let old_key_id = graph::credentials_of(&app)
            .into_iter()
            .find(|c| c.sha1() == Some(r.current.cert.sha1()))
            .and_then(|c| c.key_id);
        if let Some(k) = old_key_id {
            removed =
                Some(graph::remove_certificate(r.graph, &app, Some(&new), &k, r.method, r.proof_aud, false).await?);
        }
    }
    let now = dates::now();
    let removed_rows: Vec<ListRow> = removed
        .iter()
        .filter_map(|c| c.key_credential.as_object())
        .map(|o| ListRow::of(&crate::manifest::read_entry(0, o), now))
        .collect();
    let report = RotateReport {
        added: added.key_credential,
        thumbprint: new.cert.thumbprint(),
        removed: removed_rows,
        verified_with: Some(req.endpoint()),
        methods: Some(Methods { added: added.method, removed: removed.as_ref().map(|c| c.method) }),
    };
    Ok((report, files))
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
            e.with_note(format!("{when}; nothing was changed")).with_hint(
                "keep the old entries for now (rotate with --keep-old) and remove them once the new certificate \
                 is valid, or pass --allow-lockout if leaving no valid certificate is intended",
            )
        })?;
    }
    let removed = picked.iter().map(|c| ListRow::of(c, now)).collect();
    Ok((after, removed))
}
