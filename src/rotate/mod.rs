//! The credential lifecycle, one model for a manifest file ([`manifest`]), one application in
//! Microsoft Graph ([`graph_app`]) and a whole tenant (the `fleet` module, built on this one): **add, deploy,
//! observe, retire**.
//!
//! 1. *Add* (phase 1): a new certificate is generated, its files written, it is registered
//!    beside the old ones and proven with a token. Nothing is removed unless asked
//!    ([`RemovePolicy`]): an old certificate may still be what every running instance holds.
//! 2. *Deploy*: the deploy hook ([`deploy`]) hands the new bundle to whatever uses the app.
//! 3. *Observe*: Entra's credential sign-in report ([`crate::graph::signins`]) shows which
//!    certificate is used.
//! 4. *Retire* (phase 2): the older certificates are removed only on evidence ([`evidence`]).
//!
//! Each phase is one library call that tells its progress through a callback ([`Stage`]) and,
//! when a step fails before the new certificate is proven, undoes what it created; the command
//! line only parses, calls and prints. The lock-out rule holds throughout: nothing leaves an
//! application without a currently valid certificate unless the caller allows it.

pub mod deploy;
pub mod evidence;
pub mod graph_app;
pub mod manifest;

pub use graph_app::{retire_graph, rotate_graph, GraphRetirement, GraphRotation};
pub use manifest::{
    apply, apply_prepared, preflight, prepare, retire_manifest, rotate_manifest, ManifestRotation, Prepared,
};

use crate::authority::Authority;
use crate::cert::files::Files;
use crate::cert::{LoadedCredential, SignatureAlg};
use crate::ids::{ClientId, TenantId};
use crate::manifest::{KeyCredential, ListRow, Selector};
use crate::token::{ClientAuth, Grant, Target, TokenClient, TokenRequest};
use crate::{dates, Error, Result};
use deploy::DeployResult;
use evidence::{Kept, DEFAULT_QUIET_FOR};
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use time::OffsetDateTime;

/// Validity of a new certificate, days, unless told otherwise (all three rotate commands).
pub const DEFAULT_DAYS: u32 = 365;
/// RSA key size of a new certificate, unless told otherwise.
pub const DEFAULT_KEY_BITS: u32 = 2048;

/// The base name of a new certificate's files when none is given: `rotated-<UTC time>`.
pub fn default_name(now: OffsetDateTime) -> String {
    format!("rotated-{}", dates::format(now).replace([':', '-'], ""))
}

/// What phase 1 removes once the new certificate is in and proven (and deployed, when a hook
/// is given). By default nothing: clients switch first, old certificates go in phase 2.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum RemovePolicy {
    /// Remove nothing.
    #[default]
    KeepOld,
    /// Remove these entries (by keyId or thumbprint).
    Selected(Vec<Selector>),
    /// Remove entries whose end date has passed (an expired credential cannot be in use).
    Expired,
}

impl RemovePolicy {
    /// `selected` given once each (so each entry is reported once), or [`RemovePolicy::Expired`]
    /// when `expired`, else [`RemovePolicy::KeepOld`].
    pub fn new(selected: Vec<Selector>, expired: bool) -> RemovePolicy {
        if expired {
            return RemovePolicy::Expired;
        }
        let mut unique: Vec<Selector> = Vec::with_capacity(selected.len());
        for s in selected {
            if !unique.contains(&s) {
                unique.push(s);
            }
        }
        if unique.is_empty() {
            RemovePolicy::KeepOld
        } else {
            RemovePolicy::Selected(unique)
        }
    }
    /// Whether `c` is to be removed at `now` (the new certificate is excluded by the caller).
    pub fn picks(&self, c: &KeyCredential, now: OffsetDateTime) -> bool {
        match self {
            RemovePolicy::KeepOld => false,
            RemovePolicy::Selected(sels) => sels.iter().any(|s| s.matches(c)),
            RemovePolicy::Expired => c.effective_end().is_some_and(|e| e < now),
        }
    }
}

/// A credential named for removal: a keyId (a UUID), or a thumbprint in any form `manifest
/// remove` takes (hex with or without colons, base64, base64url).
pub fn removal_selector(s: &str) -> Result<Selector> {
    if uuid::Uuid::parse_str(s.trim()).is_ok() {
        return Selector::key_id(s);
    }
    crate::thumbprint::parse_sha1(s).map(Selector::Thumbprint).map_err(|_| {
        Error::input(format!("'{}': neither a keyId (UUID) nor a certificate thumbprint", s.trim()))
            .with_hint("give a keyId or a thumbprint (hex with or without colons, base64 or base64url)")
    })
}

/// How to prove the new certificate works before removing anything.
pub struct Verify<'a> {
    /// Token client.
    pub client: &'a TokenClient,
    /// The token request to make; its `auth` is replaced by the new certificate.
    pub request: TokenRequest,
}

/// The token request that proves a new certificate, before the certificate exists: where and
/// as which application to ask, and for what.
#[derive(Clone, Debug)]
pub struct Verification<'a> {
    /// Token client.
    pub client: &'a TokenClient,
    /// Authority host.
    pub authority: Authority,
    /// Tenant.
    pub tenant: TenantId,
    /// The application the certificate belongs to.
    pub client_id: ClientId,
    /// What the token is asked for.
    pub target: Target,
}

impl<'a> Verification<'a> {
    /// The client-credentials request signed with `cred` (RS256 with `x5t`).
    pub fn request(&self, cred: &Arc<LoadedCredential>) -> TokenRequest {
        TokenRequest {
            authority: self.authority.clone(),
            tenant: self.tenant.clone(),
            client_id: self.client_id.clone(),
            version: self.target.default_version(),
            target: self.target.clone(),
            grant: Grant::ClientCredentials,
            auth: ClientAuth::Certificate { cred: cred.clone(), alg: SignatureAlg::Rs256, x5c: false },
        }
    }
    /// The request for `cred` with its client, as [`apply`] takes it.
    pub fn for_credential(&self, cred: &Arc<LoadedCredential>) -> Verify<'a> {
        Verify { client: self.client, request: self.request(cred) }
    }
}

/// The steps of a rotation, told to the progress callback as each starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Generating the new key (seconds for large keys).
    Generate,
    /// Writing the new credential's files.
    WriteFiles,
    /// Registering the new certificate (manifest or Graph).
    Register,
    /// Getting a token with it.
    Verify,
    /// Running the deploy hook.
    Deploy,
    /// Removing what phase 1 was asked to remove (or, retiring, the older certificates).
    Remove,
    /// Putting back what a failed step changed.
    Undo,
}

impl Stage {
    /// What the stage does, for a spinner.
    pub fn describe(self) -> &'static str {
        match self {
            Stage::Generate => "generating the new key",
            Stage::WriteFiles => "writing the new credential's files",
            Stage::Register => "registering the new certificate",
            Stage::Verify => "getting a token with the new certificate",
            Stage::Deploy => "running the deploy hook",
            Stage::Remove => "removing the old certificates",
            Stage::Undo => "putting back what was changed",
        }
    }
}

/// What a rotation did. JSON field names are a contract.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RotateReport {
    /// The entry added.
    pub added: Value,
    /// Its keyId.
    pub key_id: String,
    /// The thumbprint (hex) of the new certificate.
    pub thumbprint: String,
    /// Entries removed.
    pub removed: Vec<ListRow>,
    /// The token endpoint that accepted the new certificate, when verified.
    pub verified_with: Option<String>,
    /// How Graph was changed (addKey, removeKey or PATCH); absent for a manifest file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub methods: Option<Methods>,
    /// The new credential's files: what to deploy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<Files>,
    /// How the deploy hook ended; `null` without one.
    pub deploy: Option<DeployResult>,
    /// The earliest time the older certificates can be retired on the default evidence (the
    /// sign-in report, a quiet period after the last use of the old ones).
    pub retire_from: Option<String>,
}

/// When phase 2 can first retire the old certificates on the default evidence, phase 1 having
/// ended at `now` with a certificate that starts at `start`.
pub fn retire_from(now: OffsetDateTime, start: OffsetDateTime) -> String {
    dates::format(now.max(start) + DEFAULT_QUIET_FOR)
}

/// How a Graph rotation changed the application.
#[derive(Clone, Debug, Serialize)]
pub struct Methods {
    /// How the new certificate was added.
    pub added: &'static str,
    /// How the old ones were removed (`None` when nothing was).
    pub removed: Option<&'static str>,
}

/// `retired`, `kept` or `skipped`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RetireResult {
    /// Every older certificate was removed.
    Retired,
    /// At least one older certificate stays (see `kept`).
    Kept,
    /// Nothing to retire (see `reason`).
    Skipped,
}

/// What retiring one application did. JSON field names are a contract.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RetireReport {
    /// The outcome.
    pub result: RetireResult,
    /// The newest certificate, which stays.
    pub newest: Option<ListRow>,
    /// The older certificates removed.
    pub retired: Vec<ListRow>,
    /// The older certificates kept, each with its reason.
    pub kept: Vec<Kept>,
    /// The evidence asked for: `sign-ins`, `after` or `force`.
    pub evidence: &'static str,
    /// Why nothing was retired, when `skipped`.
    pub reason: Option<String>,
}

impl RetireReport {
    /// The report of `d`, once `retired` are gone.
    pub fn of(d: &evidence::Decision, e: &evidence::Evidence, retired: Vec<ListRow>, now: OffsetDateTime) -> Self {
        let result = match (&d.nothing, d.keep.is_empty()) {
            (Some(_), _) => RetireResult::Skipped,
            (None, true) => RetireResult::Retired,
            (None, false) => RetireResult::Kept,
        };
        RetireReport {
            result,
            newest: d.newest.as_ref().map(|c| ListRow::of(c, now)),
            retired,
            kept: d.keep.clone(),
            evidence: evidence_name(e),
            reason: d.nothing.clone(),
        }
    }
}

/// `sign-ins`, `after` or `force`.
pub fn evidence_name(e: &evidence::Evidence) -> &'static str {
    match e {
        evidence::Evidence::SignIns { .. } => "sign-ins",
        evidence::Evidence::After(_) => "after",
        evidence::Evidence::Force => "force",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removals_are_named_by_key_id_or_any_thumbprint_form() {
        let k = "1b4e28ba-2fa1-11d2-883f-0016d3cca427";
        assert_eq!(removal_selector(k).unwrap(), Selector::key_id(k).unwrap());
        let hex = "5F:A8:B8:6B:5F:E0:1B:11:34:EC:1B:B2:08:27:3A:4C:67:2B:26:E6";
        assert_eq!(removal_selector(hex).unwrap(), Selector::thumbprint(hex).unwrap());
        let e = removal_selector("nope").unwrap_err();
        assert_eq!(e.to_string(), "'nope': neither a keyId (UUID) nor a certificate thumbprint");
        assert_eq!(e.exit_code(), 2);
        let twice = RemovePolicy::new(vec![Selector::key_id(k).unwrap(), Selector::key_id(k).unwrap()], false);
        assert_eq!(twice, RemovePolicy::Selected(vec![Selector::key_id(k).unwrap()]));
        assert_eq!(RemovePolicy::new(vec![], false), RemovePolicy::KeepOld);
        assert_eq!(RemovePolicy::new(vec![Selector::key_id(k).unwrap()], true), RemovePolicy::Expired);
    }
}
