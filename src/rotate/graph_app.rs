//! Rotation of one application through Microsoft Graph (`keycred graph rotate|retire`), in the
//! same phases as a manifest file's: the new certificate written to disk, registered (addKey
//! with a proof signed by the current certificate, or PATCH), proven with a token, handed over
//! by the deploy hook, and only then what was asked removed; later, the older certificates
//! retired on evidence from Graph's sign-in report.

use super::deploy::{DeployHook, DeployTarget};
use super::evidence::{decide, Evidence};
use super::{Methods, RemovePolicy, RetireReport, RotateReport, Stage, Verification};
use crate::cert::files::Plan;
use crate::cert::LoadedCredential;
use crate::graph::{self, signins, Application, Change, GraphClient, Method};
use crate::manifest::{ListRow, Selector};
use crate::wording::{Action, Input};
use crate::{dates, fsio, Error, Result};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;

/// One application's rotation through Graph.
pub struct GraphRotation<'a> {
    /// Graph client (with a token allowed to change the application, for PATCH).
    pub graph: &'a GraphClient,
    /// The application as read before the rotation.
    pub app: &'a Application,
    /// The application's current certificate: it signs the addKey proof.
    pub current: &'a Arc<LoadedCredential>,
    /// addKey/removeKey or PATCH.
    pub method: Method,
    /// `aud` of the proofs of possession.
    pub proof_aud: &'a str,
    /// What phase 1 removes.
    pub policy: RemovePolicy,
    /// Let the removals leave no currently valid certificate.
    pub allow_lockout: bool,
    /// The token request that proves the new certificate.
    pub verify: Verification<'a>,
    /// Hand the new certificate over once it is proven.
    pub deploy: Option<DeployHook>,
}

/// Refuses a removal naming a certificate the application does not have.
fn preflight(app: &Application, policy: &RemovePolicy) -> Result<()> {
    if let RemovePolicy::Selected(sels) = policy {
        let creds = graph::credentials_of(app);
        if let Some(s) = sels.iter().find(|s| !creds.iter().any(|c| s.matches(c))) {
            return Err(Error::input(format!(
                "application {} has no certificate with {s}; nothing was changed",
                app.app_id
            ))
            .with_hint(format!("{} shows the application's certificates", Action::ListGraphCertificates)));
        }
    }
    Ok(())
}

/// Runs a whole rotation of one application through Graph: generates the key, writes the
/// files, registers the certificate, gets a token with it, runs the deploy hook, then removes
/// what the policy asks (nothing when the hook failed). A refused registration puts the
/// directory back as it was; once registered, the new certificate and its files stay, and the
/// old ones too, whatever fails later.
pub async fn rotate_graph(r: &GraphRotation<'_>, plan: &Plan, progress: &dyn Fn(Stage)) -> Result<RotateReport> {
    preflight(r.app, &r.policy)?;
    progress(Stage::Generate);
    let (cert, key) = plan.generate()?;
    new_leaves_valid(r, &cert)?;
    progress(Stage::WriteFiles);
    // Written before the registration, so the key is on disk once Graph knows the certificate.
    let before = fsio::Snapshot::before(&plan.paths())?;
    let (files, new) = plan.write_credential(cert, key).map_err(|e| before.undo(e, ""))?;
    let new = Arc::new(new);
    progress(Stage::Register);
    let added = graph::add_certificate(r.graph, r.app, Some(r.current), &new.cert, None, r.method, r.proof_aud)
        .await
        .map_err(|e| {
        progress(Stage::Undo);
        before.undo(e, "the application is unchanged; ")
    })?;
    progress(Stage::Verify);
    let req = r.verify.request(&new);
    r.verify
        .client
        .request_token(&req)
        .await
        .map_err(|e| e.context("the new certificate was added but cannot get a token, so the old one was kept"))?;
    let key_id = added.key_credential.key_id.clone();
    let key_id = match key_id {
        Some(k) => k,
        None => key_id_of(r.graph, &r.app.id, &new).await?,
    };
    let deploy = match &r.deploy {
        Some(hook) => {
            progress(Stage::Deploy);
            let (bundle, pfx) = (PathBuf::from(&files.bundle), files.pfx.as_ref().map(PathBuf::from));
            let t = DeployTarget {
                app_id: &r.app.app_id,
                key_id: &key_id,
                thumbprint: &new.cert.thumbprint(),
                bundle: &bundle,
                pfx: pfx.as_deref(),
            };
            Some(hook.run(&t).await)
        }
        None => None,
    };
    // A failed deploy never leads to removing anything: the old certificates are still in use.
    let removed = match &deploy {
        Some(d) if !d.ok() => Vec::new(),
        _ => {
            progress(Stage::Remove);
            remove_picked(r, &new).await?
        }
    };
    let now = dates::now();
    let rows = removed.iter().map(|c| row(&c.key_credential.to_map(), now)).collect();
    Ok(RotateReport {
        added: Value::Object(added.key_credential.to_map()),
        key_id,
        thumbprint: new.cert.thumbprint(),
        removed: rows,
        verified_with: Some(req.endpoint()),
        methods: Some(Methods { added: added.method, removed: removed.first().map(|c| c.method) }),
        files: Some(files),
        deploy,
        retire_from: Some(super::retire_from(now, new.cert.not_before())),
    })
}

fn row(o: &serde_json::Map<String, Value>, now: time::OffsetDateTime) -> ListRow {
    ListRow::of(&crate::manifest::read_entry(0, o), now)
}

/// The keyId Graph lists for `new` (an addKey answer always carries it; a PATCH may not say).
async fn key_id_of(g: &GraphClient, id: &str, new: &LoadedCredential) -> Result<String> {
    let app = g.get(id).await?;
    graph::key_id_of(&app, &Selector::Thumbprint(new.cert.sha1()))
        .ok_or_else(|| Error::remote(format!("Graph does not list the new certificate {}", new.cert.thumbprint())))
}

/// Refuses, before anything is written, removals that would leave no currently valid
/// certificate beside the new one (unless allowed).
fn new_leaves_valid(r: &GraphRotation<'_>, new: &crate::cert::Certificate) -> Result<()> {
    let now = dates::now();
    let creds = graph::credentials_of(r.app);
    let left = creds.iter().filter(|c| !r.policy.picks(c, now)).any(|c| c.counts_as_valid_at(now));
    let removes_valid = creds.iter().any(|c| r.policy.picks(c, now) && c.counts_as_valid_at(now));
    if r.allow_lockout || !removes_valid || left || (new.not_before() <= now && now <= new.not_after()) {
        return Ok(());
    }
    Err(Error::input(format!(
        "application {}: the removals would leave no currently valid certificate; nothing was changed",
        r.app.app_id
    ))
    .with_note(format!("the new certificate only becomes valid on {}", dates::format(new.not_before())))
    .with_hint(format!(
        "keep the old certificates for now (leave out {} and {}) and retire them once the new certificate is valid, \
         or give {} if that is intended",
        Input::Remove,
        Input::RemoveExpired,
        Input::AllowLockout
    )))
}

/// Removes what the policy picks, as Graph lists the application now, one at a time; the new
/// certificate signs the proofs once it is valid.
async fn remove_picked(r: &GraphRotation<'_>, new: &Arc<LoadedCredential>) -> Result<Vec<Change>> {
    let mut removed = Vec::new();
    loop {
        let app = r.graph.get(&r.app.id).await?;
        let now = dates::now();
        let next = graph::credentials_of(&app)
            .into_iter()
            .find(|c| c.sha1() != Some(new.cert.sha1()) && r.policy.picks(c, now))
            .and_then(|c| c.key_id);
        let Some(key_id) = next else { return Ok(removed) };
        let signer = if graph::can_prove(&app, Some(new)) { new.as_ref() } else { r.current.as_ref() };
        let change =
            graph::remove_certificate(r.graph, &app, Some(signer), &key_id, r.method, r.proof_aud, r.allow_lockout)
                .await?;
        removed.push(change);
    }
}

/// One application's retirement through Graph.
pub struct GraphRetirement<'a> {
    /// Graph client allowed to change the application (addKey/removeKey proofs, or PATCH).
    pub graph: &'a GraphClient,
    /// The application as read.
    pub app: &'a Application,
    /// A currently valid certificate of the application, to sign removeKey proofs.
    pub cred: Option<&'a LoadedCredential>,
    /// removeKey or PATCH.
    pub method: Method,
    /// `aud` of the proofs of possession.
    pub proof_aud: &'a str,
    /// What counts as evidence.
    pub evidence: Evidence,
}

/// Retires the application's older certificates on the evidence asked for (for sign-ins, the
/// report read with `r.graph`'s token, which needs AuditLog.Read.All). Each removal keeps the
/// lock-out rule; the newest certificate is never removed.
pub async fn retire_graph(r: &GraphRetirement<'_>, progress: &dyn Fn(Stage)) -> Result<RetireReport> {
    let sign_ins = match r.evidence {
        Evidence::SignIns { .. } => Some(signins::for_app(r.graph, &r.app.app_id).await.map_err(|e| e.to_string())),
        _ => None,
    };
    let d = decide(&graph::credentials_of(r.app), &r.evidence, sign_ins.as_ref(), dates::now());
    let mut retired = Vec::new();
    if !d.retire.is_empty() {
        progress(Stage::Remove);
    }
    for c in &d.retire {
        let Some(key_id) = &c.key_id else { continue };
        let app = r.graph.get(&r.app.id).await?;
        let change = graph::remove_certificate(r.graph, &app, r.cred, key_id, r.method, r.proof_aud, false).await?;
        retired.push(row(&change.key_credential.to_map(), dates::now()));
    }
    Ok(RetireReport::of(&d, &r.evidence, retired, dates::now()))
}
