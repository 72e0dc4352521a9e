//! The app management policy in force for an application, read through Microsoft Graph, and
//! the checks keycred makes with it before generating a certificate: the lifetime cap (refused
//! over it, exit 2, naming the policy and the maximum) and the default lifetime (the smaller of
//! 365 days and the cap).
//!
//! The effective policy is the application's own (`/applications/{id}/appManagementPolicies`),
//! else the tenant default (`/policies/defaultAppManagementPolicy`). Both need `Policy.Read.All`;
//! Graph's 403 is returned as it is, for the caller to report or, when told to, to proceed.

use super::{GraphCall, GraphClient};
use crate::policy::Policy;
use crate::wording::{Action, Input};
use crate::{dates, Error, Result};
use serde_json::{json, Value};
use time::{Duration, OffsetDateTime};

/// The days a new certificate lasts when none are given.
pub const DEFAULT_DAYS: u32 = 365;

impl GraphCall {
    /// `GET /v1.0/applications/{id}/appManagementPolicies`.
    pub fn get_assigned_policies(id: &str) -> GraphCall {
        let path = format!("/v1.0/applications/{id}/appManagementPolicies");
        GraphCall { method: reqwest::Method::GET, path, body: None }
    }
    /// `GET /v1.0/policies/defaultAppManagementPolicy`.
    pub fn get_default_policy() -> GraphCall {
        GraphCall { method: reqwest::Method::GET, path: "/v1.0/policies/defaultAppManagementPolicy".into(), body: None }
    }
    /// `GET /v1.0/policies/appManagementPolicies`.
    pub fn list_policies() -> GraphCall {
        GraphCall { method: reqwest::Method::GET, path: "/v1.0/policies/appManagementPolicies".into(), body: None }
    }
    /// `GET /v1.0/applications/{id}?$select=id,createdDateTime`.
    pub fn get_created(id: &str) -> GraphCall {
        let path = format!("/v1.0/applications/{id}?$select=id,createdDateTime");
        GraphCall { method: reqwest::Method::GET, path, body: None }
    }
}

/// The policy in force for an application, and when the application was created (what
/// grandfathering compares).
#[derive(Clone, Debug)]
pub struct Effective {
    /// The policy.
    pub policy: Policy,
    /// The application's `createdDateTime`.
    pub created: Option<OffsetDateTime>,
}

/// Whether Graph refused a read for lack of permission (403): for policies, `Policy.Read.All`.
pub fn is_denied(e: &Error) -> bool {
    e.graph_code() == Some("Authorization_RequestDenied") || e.message().contains("HTTP 403 ")
}

/// Sends a policy read; a 404 (a Graph-compatible service without the policy endpoints) reads
/// as no policy, which restricts nothing.
async fn read_policy(g: &GraphClient, call: GraphCall) -> Result<Option<Value>> {
    match g.send(call).await {
        Err(e) if e.message().contains("HTTP 404 ") => Ok(None),
        r => r,
    }
}

/// The policy assigned to an application, from the answer of
/// `GET /applications/{id}/appManagementPolicies` (Graph assigns at most one).
fn assigned_of(answer: Option<&Value>) -> Result<Option<Policy>> {
    match answer.and_then(|v| v["value"].as_array()).and_then(|a| a.first()) {
        Some(p) => Policy::from_json(p, "the application's app management policy").map(Some),
        None => Ok(None),
    }
}

/// The tenant's side of the policies, read once for many applications (`fleet rotate`): the
/// default policy, and whether any per-app policy exists at all (when none does, no
/// application's assignment needs reading).
#[derive(Clone, Debug)]
pub struct TenantPolicies {
    /// The tenant default (`defaultAppManagementPolicy`).
    pub default: Policy,
    /// Whether `/policies/appManagementPolicies` lists any policy.
    pub any_per_app: bool,
}

impl GraphClient {
    /// The effective policy of the application with object id `id`.
    pub async fn effective_policy(&self, id: &str) -> Result<Effective> {
        let assigned = read_policy(self, GraphCall::get_assigned_policies(id)).await?;
        let policy = match assigned_of(assigned.as_ref())? {
            Some(p) => p,
            None => {
                let body = read_policy(self, GraphCall::get_default_policy()).await?.unwrap_or(json!({}));
                Policy::from_json(&body, "the tenant's app management policy")?
            }
        };
        let app = self.send(GraphCall::get_created(id)).await?;
        let created = app.as_ref().and_then(|v| v["createdDateTime"].as_str()).and_then(dates::parse_manifest);
        Ok(Effective { policy, created })
    }

    /// The tenant default policy and whether per-app policies exist: two reads for a whole run.
    pub async fn tenant_policies(&self) -> Result<TenantPolicies> {
        let body = read_policy(self, GraphCall::get_default_policy()).await?.unwrap_or(json!({}));
        let default = Policy::from_json(&body, "the tenant's default app management policy")?;
        let list = read_policy(self, GraphCall::list_policies()).await?;
        let any_per_app = list.as_ref().and_then(|v| v["value"].as_array()).is_some_and(|a| !a.is_empty());
        Ok(TenantPolicies { default, any_per_app })
    }
}

impl TenantPolicies {
    /// The effective policy of `app` as Graph listed it (its `id` and `createdDateTime`): its
    /// own policy when one is assigned (read only when per-app policies exist), else the default.
    pub async fn effective(&self, g: &GraphClient, app: &Value) -> Result<Effective> {
        let created = app.get("createdDateTime").and_then(Value::as_str).and_then(dates::parse_manifest);
        let own = match (self.any_per_app, app.get("id").and_then(Value::as_str)) {
            (true, Some(id)) => assigned_of(read_policy(g, GraphCall::get_assigned_policies(id)).await?.as_ref())?,
            _ => None,
        };
        Ok(Effective { policy: own.unwrap_or_else(|| self.default.clone()), created })
    }
}

impl Effective {
    /// The certificate lifetime cap for this application, if any.
    pub fn cap(&self) -> Option<Duration> {
        self.policy.key_cap(self.created)
    }
    /// The days a new certificate gets when none are given: 365, or the cap when shorter.
    pub fn default_days(&self) -> u32 {
        self.days_within(DEFAULT_DAYS)
    }
    /// `days`, or the cap when shorter.
    pub fn days_within(&self, days: u32) -> u32 {
        self.cap().map_or(days, |c| days.min(u32::try_from(c.whole_days()).unwrap_or(u32::MAX)))
    }
    /// Why a certificate lasting `lifetime` (self-signed or not) would be refused, naming the
    /// policy and its maximum; `None` when it passes.
    pub fn refusal(&self, lifetime: Duration, self_signed: bool) -> Option<String> {
        if let Some(cap) = self.cap().filter(|c| lifetime > *c) {
            return Some(format!(
                "the app management policy {} allows certificates of at most {} days; this one would last {} days",
                self.policy.name(),
                cap.whole_days(),
                lifetime.whole_days()
            ));
        }
        (self_signed && self.policy.requires_trusted_ca(self.created)).then(|| {
            format!(
                "the app management policy {} requires certificates issued by a trusted certificate authority; a \
                 self-signed one would be refused",
                self.policy.name()
            )
        })
    }
    /// Refuses (exit 2) a certificate lasting `lifetime`, over the cap, before anything is
    /// generated or sent; and a self-signed one when the policy requires a trusted CA.
    pub fn check(&self, lifetime: Duration, self_signed: bool) -> Result<()> {
        match self.refusal(lifetime, self_signed) {
            None => Ok(()),
            Some(why) => {
                let hint = match self.cap().filter(|c| lifetime > *c) {
                    Some(cap) => format!("ask for {} of {} or fewer (or leave it out)", Input::Days, cap.whole_days()),
                    None => format!(
                        "have a certificate authority the tenant trusts issue the certificate, then add it with {}",
                        Action::AddThroughGraph { new_cert: None, proof: false }
                    ),
                };
                Err(Error::input(format!("{why}; nothing was generated or sent")).with_hint(hint))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn capped(days: &str, after: &str, created: &str) -> Effective {
        let body = json!({"id": "p90", "displayName": "90 days", "applicationRestrictions": {"keyCredentials": [
            {"restrictionType": "asymmetricKeyLifetime", "maxLifetime": days, "restrictForAppsCreatedAfterDateTime": after},
            {"restrictionType": "trustedCertificateAuthority", "restrictForAppsCreatedAfterDateTime": "2030-01-01T00:00:00Z"}]}});
        Effective { policy: Policy::from_json(&body, "t").unwrap(), created: dates::parse_manifest(created) }
    }

    #[test]
    fn over_the_cap_is_refused_naming_the_policy_and_maximum_and_the_default_shrinks() {
        let e = capped("P90D", "2020-01-01T00:00:00Z", "2024-01-01T00:00:00Z");
        let err = e.check(Duration::days(365), true).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.message().contains("'90 days' (p90) allows certificates of at most 90 days"), "{}", err.message());
        assert!(e.check(Duration::days(60), true).is_ok());
        assert_eq!(e.default_days(), 90);
        assert_eq!(capped("P2Y", "2020-01-01T00:00:00Z", "2024-01-01T00:00:00Z").default_days(), 365);
        // Created before the restriction date: grandfathered.
        let old = capped("P90D", "2020-01-01T00:00:00Z", "2019-01-01T00:00:00Z");
        assert_eq!((old.default_days(), old.check(Duration::days(730), true).is_ok()), (365, true));
    }

    #[test]
    fn a_trusted_ca_restriction_refuses_self_signed_generation() {
        let e = capped("P90D", "2020-01-01T00:00:00Z", "2031-01-01T00:00:00Z");
        let err = e.check(Duration::days(30), true).unwrap_err();
        assert!(err.message().contains("trusted certificate authority"), "{}", err.message());
        assert!(e.check(Duration::days(30), false).is_ok());
    }
}
