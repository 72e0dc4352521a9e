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
use serde_json::Value;
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

impl GraphClient {
    /// The effective policy of the application with object id `id`.
    pub async fn effective_policy(&self, id: &str) -> Result<Effective> {
        let assigned = self.send(GraphCall::get_assigned_policies(id)).await?;
        let own = assigned.as_ref().and_then(|v| v["value"].as_array()).and_then(|a| a.first()).cloned();
        let body = match own {
            Some(p) => p,
            None => self.send(GraphCall::get_default_policy()).await?.unwrap_or(Value::Null),
        };
        let policy = Policy::from_json(&body, "the tenant's app management policy")?;
        let app = self.send(GraphCall::get_created(id)).await?;
        let created = app.as_ref().and_then(|v| v["createdDateTime"].as_str()).and_then(dates::parse_manifest);
        Ok(Effective { policy, created })
    }
}

impl Effective {
    /// The certificate lifetime cap for this application, if any.
    pub fn cap(&self) -> Option<Duration> {
        self.policy.key_cap(self.created)
    }
    /// The days a new certificate gets when none are given: 365, or the cap when shorter.
    pub fn default_days(&self) -> u32 {
        self.cap().map_or(DEFAULT_DAYS, |c| DEFAULT_DAYS.min(u32::try_from(c.whole_days()).unwrap_or(u32::MAX)))
    }
    /// Refuses (exit 2) a certificate lasting `lifetime`, over the cap, before anything is
    /// generated or sent; and a self-signed one when the policy requires a trusted CA.
    pub fn check(&self, lifetime: Duration, self_signed: bool) -> Result<()> {
        if let Some(cap) = self.cap().filter(|c| lifetime > *c) {
            return Err(Error::input(format!(
                "the app management policy {} allows certificates of at most {} days; this one would last {} \
                 days; nothing was generated or sent",
                self.policy.name(),
                cap.whole_days(),
                lifetime.whole_days()
            ))
            .with_hint(format!(
                "ask for {} of {} or fewer (or leave it out)",
                Input::Days,
                cap.whole_days()
            )));
        }
        if self_signed && self.policy.requires_trusted_ca(self.created) {
            return Err(Error::input(format!(
                "the app management policy {} requires certificates issued by a trusted certificate authority; a \
                 self-signed one would be refused",
                self.policy.name()
            ))
            .with_hint(format!(
                "have your CA issue the certificate, then add it with {}",
                Action::AddThroughGraph { new_cert: None, proof: false }
            )));
        }
        Ok(())
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
