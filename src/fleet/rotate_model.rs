//! The terms of a `fleet rotate` run ([`super::rotate`]): what it is asked to do ([`Options`])
//! and what it reports of each application ([`AppOutcome`], [`Outcome`]) and of the whole run
//! ([`Summary`]). They stand apart from the run itself so that the steps of one application
//! (`super::rotate_steps`) and the run that schedules them both build on them, and neither
//! imports the other's caller.

use super::audit::DEFAULT_WINDOW;
use super::journal::Step;
use crate::authority::Authority;
use crate::cert::KeySize;
use crate::fsio::{self, Links};
use crate::graph;
use crate::ids::{ClientId, TenantId};
use crate::manifest::{read_entry, KeyCredential};
use crate::rotate::deploy::{DeployHook, DeployResult};
use crate::rotate::RemovePolicy;
use crate::wording::Input;
use crate::{Error, Result};
use serde::Serialize;
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

/// How [`super::rotate::skip_reason`] starts for an application left alone because a certificate already lasts
/// beyond the window: rotated before, by hand or by a run without this journal.
pub const ALREADY_ROTATED: &str = "already rotated";

/// How a `--dry-run` outcome's reason starts for an application its policy would refuse.
pub const WOULD_BE_REFUSED: &str = "would be refused";

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
    /// Whether `days` was asked for: then an app management policy capping certificates below
    /// it refuses the application; otherwise each application's certificate lasts `days` or
    /// its policy's cap, whichever is shorter.
    pub days_given: bool,
    /// Go on (without checking) when Graph refuses to show the app management policies (no
    /// `Policy.Read.All`); otherwise the run stops before anything is generated.
    pub policy_unknown_ok: bool,
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
            days_given: false,
            policy_unknown_ok: false,
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
            super::journal::check_name(n, &Input::Name.to_string())?;
        }
        // The directory, or the nearest of its parents that exists, must be a directory: the
        // rest is created (0700) when the run starts, as `keycred new --out-dir` does.
        let out_dir = Input::OutDir.to_string();
        crate::cert::files::check_out_dir(&self.out_dir, &out_dir)?;
        fsio::check_private_dir(&self.out_dir, &out_dir, Links::Follow)?;
        if Duration::from_secs(u64::from(self.days) * 86_400) <= self.window {
            return Err(Error::input(format!(
                "{} {}: the new certificates would already be within the expiring window",
                Input::Days,
                self.days
            ))
            .with_hint(format!(
                "give {} longer than {}, or the next run rotates them again",
                Input::Days,
                Input::ExpiringWithin
            )));
        }
        if self.concurrency == 0 {
            return Err(Error::input(format!("{} 0: at least one application at a time", Input::Concurrency))
                .with_hint(format!("give {} as 1 or more (default 4)", Input::Concurrency)));
        }
        Ok(())
    }

    pub(super) fn journal_path(&self) -> PathBuf {
        self.journal.clone().unwrap_or_else(|| self.out_dir.join(JOURNAL_NAME))
    }
}

/// How one application ended, as the JSON's `result` names it: the tag of an [`Outcome`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ended {
    /// Rotated by this run.
    Rotated,
    /// Rotated by an earlier run of this journal.
    AlreadyRotated,
    /// `--dry-run`: what would be done.
    Planned,
    /// Stopped by Ctrl-C before its turn or between two steps.
    Interrupted,
    /// A step failed.
    Failed,
    /// Left alone: no certificate to replace.
    Skipped,
    /// Refused before any key was generated by the application's app management policy.
    Refused,
}

/// Where one application's rotation stopped: reading it from Graph, confirming what an earlier
/// run of the journal did, or on the way to one of the journal's steps (named by its verb,
/// `add` on the way to [`Step::Added`]). Written as that name in JSON and text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum At {
    /// Reading the application as Graph lists it now.
    Read,
    /// Confirming that Graph still lists what the journal says was done.
    Confirm,
    /// Checking the new certificate's lifetime against the app management policy.
    Policy,
    /// Reaching this step of the journal.
    Step(Step),
}

impl At {
    /// The name in reports: `read`, `confirm`, or the step's verb.
    pub fn name(self) -> &'static str {
        match self {
            At::Read => "read",
            At::Confirm => "confirm",
            At::Policy => "policy",
            At::Step(s) => s.verb(),
        }
    }
}

impl std::fmt::Display for At {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for At {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// What a rotation had done for one application when it ended: the new certificate (its
/// thumbprint, its bundle, its keyId once Graph lists it), the deploy hook's result, when
/// retiring becomes possible, and the keyIds removed.
#[derive(Clone, Debug)]
pub struct Rotation {
    /// Thumbprint of the new certificate.
    pub thumbprint: String,
    /// The new certificate's bundle (key + certificate): what to deploy.
    pub bundle: String,
    /// keyId of the new certificate, as Graph lists it (`None` before it was read back).
    pub key_id: Option<String>,
    /// How the deploy hook ended; `None` without one (or when an earlier run deployed).
    pub deploy: Option<DeployResult>,
    /// The earliest time `fleet retire` can remove the old certificates on the default
    /// evidence; `None` until the certificate is verified and deployed.
    pub retire_from: Option<String>,
    /// keyIds removed.
    pub removed: Vec<String>,
}

/// Why a step failed, with the codes of the service whose refusal made it fail.
#[derive(Clone, Debug)]
pub struct Failure {
    /// The error's message (and its hint).
    pub reason: String,
    /// Entra's AADSTS code.
    pub aadsts: Option<u32>,
    /// Graph's `error.code`.
    pub graph_code: Option<String>,
}

impl Failure {
    /// The failure `e` describes: its message, its hint, its codes.
    pub fn of(e: &Error) -> Failure {
        let reason = match e.hint() {
            Some(h) => format!("{} (hint: {h})", e.message()),
            None => e.message().to_string(),
        };
        Failure { reason, aadsts: e.aadsts(), graph_code: e.graph_code().map(str::to_string) }
    }

    /// A failure told by `reason` alone.
    pub fn reason(reason: impl Into<String>) -> Failure {
        Failure { reason: reason.into(), aadsts: None, graph_code: None }
    }
}

/// How the rotation of one application ended, each way with what it has to tell.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// Rotated by this run (a failed deploy hook included: `deploy` says so, and nothing was
    /// removed).
    Rotated(Rotation),
    /// Rotated by an earlier run of this journal, whose thumbprint it recorded.
    AlreadyRotated {
        /// The thumbprint the journal recorded.
        thumbprint: Option<String>,
    },
    /// `--dry-run`: where the new certificate would go and what would be removed.
    Planned {
        /// The bundle the new certificate would be written to.
        bundle: String,
        /// keyIds that would be removed.
        removed: Vec<String>,
    },
    /// Stopped by Ctrl-C before this step, with what was done before it.
    Interrupted {
        /// The step not started.
        step: At,
        /// What was done, once a certificate was generated.
        rotation: Option<Rotation>,
    },
    /// This step failed, with what was done before it.
    Failed {
        /// The step that failed.
        step: At,
        /// Why.
        failure: Failure,
        /// What was done, once a certificate was generated.
        rotation: Option<Rotation>,
    },
    /// Left alone, and why: no certificate to replace.
    Skipped {
        /// Why (starts with [`ALREADY_ROTATED`] when a certificate already lasts beyond the window).
        reason: String,
    },
    /// Refused by the application's app management policy before any key was generated (or,
    /// with `--dry-run`, would be).
    Refused {
        /// Why, naming the policy and its maximum.
        why: String,
        /// Whether this is a `--dry-run`'s verdict.
        dry_run: bool,
    },
}

impl Outcome {
    /// The JSON's `result`.
    pub fn ended(&self) -> Ended {
        match self {
            Outcome::Rotated(_) => Ended::Rotated,
            Outcome::AlreadyRotated { .. } => Ended::AlreadyRotated,
            Outcome::Planned { .. } => Ended::Planned,
            Outcome::Interrupted { .. } => Ended::Interrupted,
            Outcome::Failed { .. } => Ended::Failed,
            Outcome::Skipped { .. } => Ended::Skipped,
            Outcome::Refused { .. } => Ended::Refused,
        }
    }

    /// What was done, when a certificate was generated.
    pub fn rotation(&self) -> Option<&Rotation> {
        match self {
            Outcome::Rotated(r) => Some(r),
            Outcome::Interrupted { rotation, .. } | Outcome::Failed { rotation, .. } => rotation.as_ref(),
            _ => None,
        }
    }

    /// The step it stopped at: the one that failed, was interrupted, or refused.
    pub fn step(&self) -> Option<At> {
        match self {
            Outcome::Interrupted { step, .. } | Outcome::Failed { step, .. } => Some(*step),
            Outcome::Refused { .. } => Some(At::Policy),
            _ => None,
        }
    }

    /// Why it failed, was skipped or refused, as the JSON's `reason` says it.
    pub fn reason(&self) -> Option<String> {
        match self {
            Outcome::Failed { failure, .. } => Some(failure.reason.clone()),
            Outcome::Skipped { reason } => Some(reason.clone()),
            Outcome::Refused { why, dry_run: true } => Some(format!("{WOULD_BE_REFUSED}: {why}")),
            Outcome::Refused { why, dry_run: false } => Some(format!("{why}; no key was generated")),
            _ => None,
        }
    }

    /// Whether the application was found rotated: by an earlier run of the journal, or left
    /// alone because a certificate already lasts beyond the window.
    pub fn found_rotated(&self) -> bool {
        match self {
            Outcome::AlreadyRotated { .. } => true,
            Outcome::Skipped { reason } => reason.starts_with(ALREADY_ROTATED),
            _ => false,
        }
    }
}

/// The report of one application: which it is and how it ended. Serialized flat (see `Row` below).
#[derive(Clone, Debug)]
pub struct AppOutcome {
    /// Application (client) id, lowercase.
    pub app_id: String,
    /// Its display name.
    pub display_name: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
}

impl AppOutcome {
    /// The outcome of `app` (as Graph listed it).
    pub(super) fn of(app: &Value, outcome: Outcome) -> AppOutcome {
        let display_name = app.get("displayName").and_then(Value::as_str).map(str::to_string);
        AppOutcome { app_id: app_id_of(app), display_name, outcome }
    }
}

/// The application id of `app` as Graph listed it, lowercase (empty when Graph gave none).
pub(super) fn app_id_of(app: &Value) -> String {
    app.get("appId").and_then(Value::as_str).unwrap_or_default().to_ascii_lowercase()
}

/// One application as the JSON reports it: every field present whatever the result, `null`
/// (or `[]`) when the result has no such thing. The field names and their order are a contract.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Row<'a> {
    app_id: &'a str,
    display_name: Option<&'a str>,
    result: Ended,
    thumbprint: Option<&'a str>,
    key_id: Option<&'a str>,
    removed: &'a [String],
    bundle: Option<&'a str>,
    deploy: Option<&'a DeployResult>,
    retire_from: Option<&'a str>,
    step: Option<At>,
    reason: Option<String>,
    aadsts: Option<u32>,
    graph_code: Option<&'a str>,
}

impl<'a> Row<'a> {
    fn of(a: &'a AppOutcome) -> Row<'a> {
        let o = &a.outcome;
        let failure = match o {
            Outcome::Failed { failure, .. } => Some(failure),
            _ => None,
        };
        let mut row = Row {
            app_id: &a.app_id,
            display_name: a.display_name.as_deref(),
            result: o.ended(),
            thumbprint: None,
            key_id: None,
            removed: &[],
            bundle: None,
            deploy: None,
            retire_from: None,
            step: o.step(),
            reason: o.reason(),
            aadsts: failure.and_then(|f| f.aadsts),
            graph_code: failure.and_then(|f| f.graph_code.as_deref()),
        };
        if let Some(r) = o.rotation() {
            row.thumbprint = Some(&r.thumbprint);
            row.key_id = r.key_id.as_deref();
            row.removed = &r.removed;
            row.bundle = Some(&r.bundle);
            row.deploy = r.deploy.as_ref();
            row.retire_from = r.retire_from.as_deref();
        }
        match o {
            Outcome::AlreadyRotated { thumbprint } => row.thumbprint = thumbprint.as_deref(),
            Outcome::Planned { bundle, removed } => (row.bundle, row.removed) = (Some(bundle.as_str()), removed),
            _ => {}
        }
        row
    }
}

impl Serialize for AppOutcome {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        Row::of(self).serialize(s)
    }
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
    /// Refused by (or, with `--dry-run`, that would be refused by) their app management policy.
    pub refused: u64,
    /// Whether the app management policies were read and every certificate checked against
    /// them (`false`: Graph refused to show them and the run was told to go on).
    pub policy_checked: bool,
    /// Whether Ctrl-C stopped the run.
    pub interrupted: bool,
    /// Answers 429/503 waited out.
    pub throttled: u64,
    /// The journal: where it is (unfinished run) or where it was moved (finished run).
    pub journal: Option<String>,
    /// Per application.
    pub apps: Vec<AppOutcome>,
}

impl Summary {
    /// Whether every selected application ended with a verified valid certificate, handed
    /// over when a deploy hook was given.
    pub fn all_rotated(&self) -> bool {
        !self.interrupted && self.failed == 0 && self.refused == 0 && self.planned == 0 && self.deploy_failed == 0
    }
}

pub(super) fn creds_of(entries: &[Value]) -> Vec<KeyCredential> {
    entries.iter().enumerate().filter_map(|(i, v)| v.as_object().map(|o| read_entry(i, o))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(outcome: Outcome) -> String {
        let app = json!({ "appId": "AB-CD", "displayName": "App" });
        serde_json::to_string(&AppOutcome::of(&app, outcome)).expect("serializes")
    }

    #[test]
    fn every_field_is_written_in_order_with_nulls_for_what_the_result_lacks() {
        assert_eq!(
            row(Outcome::Skipped { reason: "no certificate".into() }),
            r#"{"appId":"ab-cd","displayName":"App","result":"skipped","thumbprint":null,"keyId":null,"removed":[],"bundle":null,"deploy":null,"retireFrom":null,"step":null,"reason":"no certificate","aadsts":null,"graphCode":null}"#
        );
    }

    #[test]
    fn a_failure_after_the_new_certificate_reports_it_with_the_step_and_codes() {
        let rotation = Rotation {
            thumbprint: "T".into(),
            bundle: "b.pem".into(),
            key_id: Some("k".into()),
            deploy: None,
            retire_from: None,
            removed: Vec::new(),
        };
        let failure = Failure { reason: "refused".into(), aadsts: Some(700027), graph_code: Some("Denied".into()) };
        let failed = Outcome::Failed { step: At::Step(Step::Verified), failure, rotation: Some(rotation) };
        assert_eq!(
            row(failed),
            r#"{"appId":"ab-cd","displayName":"App","result":"failed","thumbprint":"T","keyId":"k","removed":[],"bundle":"b.pem","deploy":null,"retireFrom":null,"step":"verify","reason":"refused","aadsts":700027,"graphCode":"Denied"}"#
        );
    }

    #[test]
    fn a_refusal_says_at_policy_and_whether_it_was_only_planned() {
        let refused = |dry_run| {
            let v: Value = serde_json::from_str(&row(Outcome::Refused { why: "cap 90 days".into(), dry_run })).unwrap();
            (v["step"].clone(), v["reason"].clone())
        };
        assert_eq!(refused(true), (json!("policy"), json!("would be refused: cap 90 days")));
        assert_eq!(refused(false), (json!("policy"), json!("cap 90 days; no key was generated")));
    }
}
