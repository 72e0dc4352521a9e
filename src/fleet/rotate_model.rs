//! The terms of a `fleet rotate` run ([`super::rotate`]): what it is asked to do ([`Options`])
//! and what it reports of each application ([`Outcome`], [`Result_`]) and of the whole run
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
    /// Refused before any key was generated: the application's app management policy would
    /// refuse the certificate (`reason` names the policy and its maximum). With `--dry-run`,
    /// would be refused.
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
    /// keyId of the new certificate, as Graph lists it.
    pub key_id: Option<String>,
    /// keyIds removed (or, with `--dry-run`, to remove).
    pub removed: Vec<String>,
    /// The new certificate's bundle (key + certificate): what to deploy.
    pub bundle: Option<String>,
    /// How the deploy hook ended; `null` without one (or when an earlier run deployed).
    pub deploy: Option<DeployResult>,
    /// The earliest time `fleet retire` can remove the old certificates on the default evidence.
    pub retire_from: Option<String>,
    /// The step that failed or was interrupted.
    pub step: Option<At>,
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
    pub apps: Vec<Outcome>,
}

impl Summary {
    /// Whether every selected application ended with a verified valid certificate, handed
    /// over when a deploy hook was given.
    pub fn all_rotated(&self) -> bool {
        !self.interrupted && self.failed == 0 && self.refused == 0 && self.planned == 0 && self.deploy_failed == 0
    }
}

impl Outcome {
    /// Whether the application was found rotated: by an earlier run of the journal, or left
    /// alone because a certificate already lasts beyond the window.
    pub fn found_rotated(&self) -> bool {
        match self.result {
            Result_::AlreadyRotated => true,
            Result_::Skipped => self.reason.as_deref().is_some_and(|r| r.starts_with(ALREADY_ROTATED)),
            _ => false,
        }
    }
    /// A fresh outcome of `app` (as Graph listed it) with `result`.
    pub(super) fn of(app: &Value, result: Result_) -> Outcome {
        let s = |k: &str| app.get(k).and_then(Value::as_str).map(str::to_string);
        Outcome {
            app_id: s("appId").unwrap_or_default().to_ascii_lowercase(),
            display_name: s("displayName"),
            result,
            thumbprint: None,
            key_id: None,
            removed: Vec::new(),
            bundle: None,
            deploy: None,
            retire_from: None,
            step: None,
            reason: None,
            aadsts: None,
            graph_code: None,
        }
    }
}

pub(super) fn creds_of(entries: &[Value]) -> Vec<KeyCredential> {
    entries.iter().enumerate().filter_map(|(i, v)| v.as_object().map(|o| read_entry(i, o))).collect()
}
