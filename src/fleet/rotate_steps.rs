//! The steps of one application in `fleet rotate` ([`super::rotate`]): generate (or reuse the
//! key a crashed run left), add by PATCH, verify with a token, run the deploy hook, remove what
//! was asked. Each is journaled once done and safe to redo.

use super::journal::{AppState, Journal, Record, Step};
use super::rotate_model::{app_id_of, creds_of, AppOutcome, At, Failure, Options, Outcome, Rotation};
use crate::authority::EndpointVersion;
use crate::cert::files::{write_files, FilePaths};
use crate::cert::{self, LoadedCredential, NewCertificate, SignatureAlg, Validity};
use crate::fsio::{self, Links};
use crate::graph::policy::{is_denied, TenantPolicies};
use crate::graph::{self, Application, GraphClient};
use crate::ids::ClientId;
use crate::manifest::Selector;
use crate::rotate::deploy::{DeployResult, DeployStatus, DeployTarget};
use crate::token::{ClientAuth, Grant, Target, TokenClient, TokenRequest};
use crate::{dates, Error, Result};
use serde_json::Value;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// The key the journal recorded for `state`, from `pem`: the file must be there and hold the
/// certificate whose thumbprint the journal recorded.
fn adopt(pem: &Path, state: &AppState) -> Result<LoadedCredential> {
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
    let cred = cert::load_credential(pem, None, None)?;
    let thumb = cred.cert.thumbprint();
    if !recorded.eq_ignore_ascii_case(&thumb) {
        return Err(Error::input(format!(
            "{}: holds certificate {thumb}, but the journal recorded {recorded}",
            pem.display()
        ))
        .with_hint(restart));
    }
    Ok(cred)
}

/// One rotation run: what every application's steps share.
pub(super) struct Run {
    pub(super) g: Arc<GraphClient>,
    pub(super) tokens: Arc<TokenClient>,
    pub(super) opts: Options,
    pub(super) journal: Option<Journal>,
    /// Base name of the new files (the journal's, when resumed).
    pub(super) name: String,
    pub(super) stop: Arc<AtomicBool>,
    /// The tenant's app management policies, read once; `None` when they could not be read
    /// and the run was told to go on.
    pub(super) policies: Option<TenantPolicies>,
}

/// What the app management policy makes of an application's new certificate.
pub(super) enum Lifetime {
    /// It gets this many days.
    Days(u32),
    /// It would be refused: why, naming the policy and its maximum.
    Refused(String),
}

/// An application whose new certificate is generated (and journaled): what the later steps need.
struct Generated {
    /// Its Graph object id.
    id: String,
    /// What the journal says was done.
    state: AppState,
    cred: Arc<LoadedCredential>,
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
    async fn credential(&self, app_id: &str, state: &AppState, days: u32) -> Result<LoadedCredential> {
        // Keycred makes this directory itself (0700): a link or a shared directory there was
        // planted, and keys are neither read from nor written to it.
        fsio::check_private_dir(&self.opts.out_dir.join(app_id), "the application's directory", Links::Refuse)?;
        let paths = files(&self.opts.out_dir, app_id, &self.name);
        // The bundle is written last: its presence says the set is complete.
        let pem = paths.bundle().to_path_buf();
        let resumed = self.journal.as_ref().is_some_and(Journal::resumed);
        if state.step.is_some_and(|s| s >= Step::Generated) {
            return adopt(&pem, state);
        }
        let req = NewCertificate {
            subject: format!("CN={app_id}"),
            key_size: self.opts.key_size,
            validity: Validity::Days(days),
        };
        // Key generation is the real cost of a rotation: off the async threads.
        let (c, k) = tokio::task::spawn_blocking(move || cert::generate(&req))
            .await
            .map_err(|e| Error::internal("key generation stopped").caused_by(e))??;
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

    /// The new certificate's lifetime under the application's effective policy (its own, else
    /// the tenant default): `--days`, refused when over the cap; or without `--days` the
    /// default, shortened to the cap. Self-signed generation is refused under a trusted-CA
    /// restriction. Graph refusing to show the application's own policy is an error unless the
    /// run goes on without policies.
    pub(super) async fn lifetime(&self, app: &Value) -> Result<Lifetime> {
        let Some(policies) = &self.policies else { return Ok(Lifetime::Days(self.opts.days)) };
        let effective = match policies.effective(&self.g, app).await {
            Ok(e) => e,
            Err(e) if self.opts.policy_unknown_ok && is_denied(&e) => return Ok(Lifetime::Days(self.opts.days)),
            Err(e) => return Err(e.context("reading the application's app management policy")),
        };
        let days = if self.opts.days_given { self.opts.days } else { effective.days_within(self.opts.days) };
        Ok(match effective.refusal(time::Duration::days(i64::from(days)), true) {
            Some(why) => Lifetime::Refused(why),
            None => Lifetime::Days(days),
        })
    }

    pub(super) async fn rotate_app(&self, app: Value) -> AppOutcome {
        let app_id = app_id_of(&app);
        // The step under way, named when it fails.
        let mut at = At::Read;
        let outcome = match self.prepare(&app, &app_id, &mut at).await {
            Ok(ControlFlow::Break(o)) => o,
            Err(e) => Outcome::Failed { step: at, failure: Failure::of(&e), rotation: None },
            Ok(ControlFlow::Continue(g)) => {
                let mut done = Rotation {
                    thumbprint: g.cred.cert.thumbprint(),
                    bundle: g.cred.cert_path.display().to_string(),
                    key_id: None,
                    deploy: None,
                    retire_from: None,
                    removed: Vec::new(),
                };
                match self.complete(&g, &app_id, &mut done, &mut at).await {
                    Ok(None) => Outcome::Rotated(done),
                    Ok(Some(step)) => Outcome::Interrupted { step, rotation: Some(done) },
                    Err(e) => Outcome::Failed { step: at, failure: Failure::of(&e), rotation: Some(done) },
                }
            }
        };
        AppOutcome::of(&app, outcome)
    }

    /// Whether Ctrl-C asked to stop.
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Up to the new certificate: confirms an application an earlier run finished, checks the
    /// policy, generates (or adopts) the key. Breaks with the outcome when there is no more to do.
    async fn prepare(&self, app: &Value, app_id: &str, at: &mut At) -> Result<ControlFlow<Outcome, Generated>> {
        let state = self.journal.as_ref().map(|j| j.state(app_id)).unwrap_or_default();
        let done = |s: Step| state.step.is_some_and(|d| d >= s);
        if done(Step::Done) {
            *at = At::Confirm;
            state.confirm_done(app, app_id)?;
            return Ok(ControlFlow::Break(Outcome::AlreadyRotated { thumbprint: state.thumbprint }));
        }
        let id = app
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::remote("Graph listed an application without 'id'"))?
            .to_string();
        if self.stopped() {
            return Ok(ControlFlow::Break(Outcome::Interrupted { step: At::Step(Step::Generated), rotation: None }));
        }
        *at = At::Policy;
        let days = match self.policy_step(app, done(Step::Generated)).await? {
            Lifetime::Days(d) => d,
            Lifetime::Refused(why) => return Ok(ControlFlow::Break(Outcome::Refused { why, dry_run: false })),
        };
        *at = At::Step(Step::Generated);
        let cred = Arc::new(self.generate_step(app_id, &state, days).await?);
        Ok(ControlFlow::Continue(Generated { id, state, cred }))
    }

    /// The steps after the new certificate: add, verify, deploy, remove, each told in `done` as
    /// it happens. The step Ctrl-C stopped before, if it did.
    async fn complete(&self, g: &Generated, app_id: &str, done: &mut Rotation, at: &mut At) -> Result<Option<At>> {
        let was_done = |s: Step| g.state.step.is_some_and(|d| d >= s);
        let cred = &g.cred;
        for step in [Step::Added, Step::Verified] {
            if was_done(step) {
                continue;
            }
            if self.stopped() {
                return Ok(Some(At::Step(step)));
            }
            *at = At::Step(step);
            match step {
                Step::Added => self.add_step(&g.id, cred).await?,
                _ => self.verify(app_id, cred).await?,
            }
            self.record(app_id, step, None, Vec::new())?;
        }
        *at = At::Read;
        let current = self.g.get(&g.id).await?;
        done.key_id = graph::key_id_of(&current, &Selector::Thumbprint(cred.cert.sha1()));
        if !was_done(Step::Deployed) && self.opts.deploy.is_some() {
            if self.stopped() {
                return Ok(Some(At::Step(Step::Deployed)));
            }
            *at = At::Step(Step::Deployed);
            let d = self.deploy_step(app_id, done.key_id.as_deref(), cred).await;
            let ok = d.ok();
            done.deploy = Some(d);
            if !ok {
                // Nothing is removed, and the step stays to do: the next run deploys again.
                return Ok(None);
            }
            self.record(app_id, Step::Deployed, None, Vec::new())?;
        }
        done.retire_from = Some(crate::rotate::retire_from(dates::now(), cred.cert.not_before()));
        if !was_done(Step::Removed) {
            if self.stopped() {
                return Ok(Some(At::Step(Step::Removed)));
            }
            *at = At::Step(Step::Removed);
            done.removed = self.remove_selected(&g.id, app_id, cred.cert.sha1(), current).await?;
            self.record(app_id, Step::Removed, None, done.removed.clone())?;
        }
        self.record(app_id, Step::Done, None, Vec::new())?;
        Ok(None)
    }

    /// The new certificate's days, checked against the policy before any key is generated (a
    /// key already generated was checked then).
    async fn policy_step(&self, app: &Value, generated: bool) -> Result<Lifetime> {
        if generated {
            return Ok(Lifetime::Days(self.opts.days));
        }
        self.lifetime(app).await
    }

    /// The new credential (the one the journal recorded, or a fresh one, then journaled).
    async fn generate_step(&self, app_id: &str, state: &AppState, days: u32) -> Result<LoadedCredential> {
        let cred = self.credential(app_id, state, days).await?;
        if state.step.is_none_or(|s| s < Step::Generated) {
            self.record(app_id, Step::Generated, Some(cred.cert.thumbprint()), Vec::new())?;
        }
        Ok(cred)
    }

    /// Adds the new certificate by PATCH, unless Graph lists it already (a resumed run).
    async fn add_step(&self, id: &str, cred: &LoadedCredential) -> Result<()> {
        let current: Application = self.g.get(id).await?;
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
        Ok(())
    }

    /// Runs the deploy hook with the new credential's values.
    async fn deploy_step(&self, app_id: &str, key_id: Option<&str>, cred: &LoadedCredential) -> DeployResult {
        let Some(hook) = &self.opts.deploy else {
            return DeployResult { result: DeployStatus::Deployed, exit_code: None, reason: None };
        };
        let Some(key_id) = key_id else {
            return DeployResult {
                result: DeployStatus::DeployFailed,
                exit_code: None,
                reason: Some("Graph does not list the new certificate; the hook was not run".into()),
            };
        };
        let t =
            DeployTarget { app_id, key_id, thumbprint: &cred.cert.thumbprint(), bundle: &cred.cert_path, pfx: None };
        hook.run(&t).await
    }

    /// Removes what the policy picks as Graph lists the application now (never the new
    /// certificate); refuses to leave no valid certificate. Writes nothing when nothing is picked.
    async fn remove_selected(
        &self,
        id: &str,
        app_id: &str,
        new_sha1: [u8; 20],
        current: Application,
    ) -> Result<Vec<String>> {
        let policy = &self.opts.remove;
        let plan = |entries: &[graph::KeyCredential]| -> Result<(Vec<graph::KeyCredential>, Vec<String>)> {
            let now = dates::now();
            let creds = graph::read_credentials(entries);
            let gone: Vec<usize> =
                creds.iter().filter(|c| c.sha1() != Some(new_sha1) && policy.picks(c, now)).map(|c| c.index).collect();
            let keep_valid = creds.iter().any(|c| !gone.contains(&c.index) && c.counts_as_valid_at(now));
            if !gone.is_empty() && !keep_valid {
                return Err(Error::check(format!(
                    "application {app_id}: removing those certificates would leave no valid one; nothing was removed"
                )));
            }
            let removed = creds.iter().filter(|c| gone.contains(&c.index)).filter_map(|c| c.key_id.clone()).collect();
            let after = entries.iter().enumerate().filter(|(i, _)| !gone.contains(i)).map(|(_, v)| v.clone()).collect();
            Ok((after, removed))
        };
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

    /// What a run would do to `app`: the policy's verdict first (refused, naming the policy
    /// and its maximum), then the certificates it would remove and where the new one would go.
    pub(super) async fn plan_only(&self, app: &Value) -> AppOutcome {
        let outcome = match self.lifetime(app).await {
            Ok(Lifetime::Days(_)) => {
                let entries = app.get("keyCredentials").and_then(Value::as_array).cloned().unwrap_or_default();
                let now = dates::now();
                let removed = creds_of(&entries)
                    .iter()
                    .filter(|c| self.opts.remove.picks(c, now))
                    .filter_map(|c| c.key_id.clone())
                    .collect();
                let bundle = files(&self.opts.out_dir, &app_id_of(app), &self.name).bundle().display().to_string();
                Outcome::Planned { bundle, removed }
            }
            Ok(Lifetime::Refused(why)) => Outcome::Refused { why, dry_run: true },
            Err(e) => Outcome::Failed { step: At::Policy, failure: Failure::reason(e.message()), rotation: None },
        };
        AppOutcome::of(app, outcome)
    }
}
