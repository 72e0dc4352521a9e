//! Entra app management policies (Graph's `defaultAppManagementPolicy` and
//! `appManagementPolicy`): what they restrict on an application's credentials, and whether a
//! credential passes. No I/O: the emulator enforces these rules, and keycred reads a tenant's
//! policy to refuse a certificate Graph would refuse before generating it.
//!
//! Shape (Graph's `appManagementConfiguration`): `applicationRestrictions.keyCredentials[]` and
//! `.passwordCredentials[]`, each a restriction with `restrictionType` (`asymmetricKeyLifetime`,
//! `trustedCertificateAuthority`, `passwordAddition`, `passwordLifetime`, ...), `maxLifetime`
//! (ISO 8601 duration), `state` (`enabled`/`disabled`) and `restrictForAppsCreatedAfterDateTime`:
//! applications created on or before that date are not restricted ("grandfathered").
//!
//! Graph's refusal of a too long credential is 400 `CredentialInvalidLifetimeAsPerAppPolicy`,
//! "Credential lifetime exceeds the max value allowed as per assigned policy '`<policy id>`'." (as
//! quoted from the Azure CLI's output in public setup guides, and matched on by code in
//! Microsoft's Teams Toolkit `aadAppClient`).

use crate::{dates, Error, Result};
use serde_json::Value;
use time::{Duration, OffsetDateTime};

/// Graph's error code for a credential longer than a policy allows.
pub const LIFETIME_CODE: &str = "CredentialInvalidLifetimeAsPerAppPolicy";
/// Graph's error code for a credential type a policy forbids (Teams Toolkit matches on it).
pub const TYPE_CODE: &str = "CredentialTypeNotAllowedAsPerAppPolicy";
/// The code answered for a certificate a trusted-CA restriction refuses. No public report
/// quotes Graph's refusal of a self-signed certificate under `trustedCertificateAuthority`; the
/// closest documented code of the same family is the one for a credential kind the policy does
/// not allow (README says this answer is inferred).
pub const TRUSTED_CA_CODE: &str = TYPE_CODE;

/// One restriction of a policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Restriction {
    /// `restrictionType`.
    pub kind: String,
    /// `maxLifetime`, when given and readable.
    pub max_lifetime: Option<Duration>,
    /// `maxLifetime` as written (for messages).
    pub max_lifetime_text: Option<String>,
    /// `restrictForAppsCreatedAfterDateTime`.
    pub after: Option<OffsetDateTime>,
}

impl Restriction {
    /// Whether it applies to an application created at `created` (unknown: it applies).
    pub fn applies_to(&self, created: Option<OffsetDateTime>) -> bool {
        match (self.after, created) {
            (Some(after), Some(created)) => created > after,
            _ => true,
        }
    }
}

/// A policy, as far as credentials go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// The policy's `id`.
    pub id: String,
    /// Its `displayName`, when it has one.
    pub display_name: Option<String>,
    /// Enabled restrictions on certificates.
    pub keys: Vec<Restriction>,
    /// Enabled restrictions on passwords.
    pub passwords: Vec<Restriction>,
}

/// A refusal: Graph's error code and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Graph's error code.
    pub code: &'static str,
    /// Graph's message.
    pub message: String,
}

/// Reads an ISO 8601 duration as Graph writes `maxLifetime` (`P90D`, `P1Y`, `P4DT12H30M5S`);
/// a year counts 365 days and a month 30, as Entra's lifetimes are checked in days.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let rest = s.trim().strip_prefix('P')?;
    let (date, time) = rest.split_once('T').unwrap_or((rest, ""));
    let mut total = Duration::ZERO;
    for (part, units) in [
        (date, &[('Y', 365 * 86_400), ('M', 30 * 86_400), ('W', 7 * 86_400), ('D', 86_400)][..]),
        (time, &[('H', 3_600), ('M', 60), ('S', 1)][..]),
    ] {
        let mut num = String::new();
        let mut unit_at = 0;
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' {
                num.push(c);
                continue;
            }
            let pos = units.iter().position(|(u, _)| *u == c)?;
            if pos < unit_at || num.is_empty() {
                return None;
            }
            unit_at = pos + 1;
            let n: f64 = num.parse().ok()?;
            total += Duration::seconds_f64(n * units[pos].1 as f64);
            num.clear();
        }
        if !num.is_empty() {
            return None;
        }
    }
    (!rest.is_empty() && rest != "T").then_some(total)
}

fn restrictions(v: Option<&Value>) -> Vec<Restriction> {
    let Some(Value::Array(a)) = v else { return Vec::new() };
    a.iter()
        .filter(|r| r["state"].as_str().is_none_or(|s| !s.eq_ignore_ascii_case("disabled")))
        .filter_map(|r| {
            let text = r["maxLifetime"].as_str().map(str::to_string);
            Some(Restriction {
                kind: r["restrictionType"].as_str()?.to_string(),
                max_lifetime: text.as_deref().and_then(parse_duration),
                max_lifetime_text: text,
                after: r["restrictForAppsCreatedAfterDateTime"].as_str().and_then(dates::parse_manifest),
            })
        })
        .collect()
}

impl Policy {
    /// Reads a policy body (`defaultAppManagementPolicy` or an `appManagementPolicy`); `origin`
    /// names it in errors. A policy with `isEnabled: false` restricts nothing.
    pub fn from_json(v: &Value, origin: &str) -> Result<Policy> {
        let Some(o) = v.as_object() else {
            return Err(Error::input(format!("{origin}: an app management policy must be a JSON object")));
        };
        let restr = o.get("applicationRestrictions").or_else(|| o.get("restrictions"));
        if o.get("isEnabled").and_then(Value::as_bool) == Some(false) {
            return Ok(Policy {
                id: o.get("id").and_then(Value::as_str).unwrap_or_default().to_string(),
                display_name: None,
                keys: Vec::new(),
                passwords: Vec::new(),
            });
        }
        let policy = Policy {
            id: o.get("id").and_then(Value::as_str).unwrap_or("00000000-0000-0000-0000-000000000000").to_string(),
            display_name: o.get("displayName").and_then(Value::as_str).map(str::to_string),
            keys: restrictions(restr.and_then(|r| r.get("keyCredentials"))),
            passwords: restrictions(restr.and_then(|r| r.get("passwordCredentials"))),
        };
        if let Some(r) = policy
            .keys
            .iter()
            .chain(&policy.passwords)
            .find(|r| r.max_lifetime_text.is_some() && r.max_lifetime.is_none())
        {
            return Err(Error::input(format!(
                "{origin}: maxLifetime {:?} of {} is not an ISO 8601 duration",
                r.max_lifetime_text.as_deref().unwrap_or_default(),
                r.kind
            ))
            .with_hint("write it as Graph does, e.g. P90D or P1Y"));
        }
        Ok(policy)
    }

    /// The policy's name for messages: display name and id.
    pub fn name(&self) -> String {
        match &self.display_name {
            Some(d) => format!("'{d}' ({})", self.id),
            None => self.id.clone(),
        }
    }

    /// The longest certificate lifetime allowed for an application created at `created`.
    pub fn key_cap(&self, created: Option<OffsetDateTime>) -> Option<Duration> {
        self.keys
            .iter()
            .filter(|r| r.kind.eq_ignore_ascii_case("asymmetricKeyLifetime") && r.applies_to(created))
            .filter_map(|r| r.max_lifetime)
            .min()
    }

    /// Whether a trusted-CA restriction applies to an application created at `created`.
    pub fn requires_trusted_ca(&self, created: Option<OffsetDateTime>) -> bool {
        self.keys.iter().any(|r| r.kind.eq_ignore_ascii_case("trustedCertificateAuthority") && r.applies_to(created))
    }

    fn lifetime_violation(&self) -> Violation {
        Violation {
            code: LIFETIME_CODE,
            message: format!("Credential lifetime exceeds the max value allowed as per assigned policy '{}'.", self.id),
        }
    }

    /// Graph's refusal of a certificate valid from `start` to `end` on an application created at
    /// `created`, if any. Only the lifetime is checked here: a trusted-CA restriction needs the
    /// tenant's certificate authorities, which the emulator does not model.
    pub fn check_key(
        &self,
        created: Option<OffsetDateTime>,
        start: OffsetDateTime,
        end: OffsetDateTime,
    ) -> Option<Violation> {
        let cap = self.key_cap(created)?;
        (end - start > cap).then(|| self.lifetime_violation())
    }

    /// Graph's refusal of a certificate valid from `start` to `end`, self-signed or not, on an
    /// application created at `created`: its lifetime first, then a trusted-CA restriction,
    /// which refuses a self-signed certificate (the emulator does not model the tenant's
    /// certificate authorities, so any other certificate passes it).
    pub fn check_certificate(
        &self,
        created: Option<OffsetDateTime>,
        start: OffsetDateTime,
        end: OffsetDateTime,
        self_signed: bool,
    ) -> Option<Violation> {
        if let Some(v) = self.check_key(created, start, end) {
            return Some(v);
        }
        (self_signed && self.requires_trusted_ca(created)).then(|| Violation {
            code: TRUSTED_CA_CODE,
            message: format!(
                "Certificates not issued by a trusted certificate authority are not allowed as per assigned policy '{}'.",
                self.id
            ),
        })
    }

    /// Graph's refusal of a password valid from `start` to `end` (`None`: Graph's default of two
    /// years is not checked here) on an application created at `created`, if any.
    pub fn check_password(
        &self,
        created: Option<OffsetDateTime>,
        start: OffsetDateTime,
        end: Option<OffsetDateTime>,
    ) -> Option<Violation> {
        let applies = |k: &'static str| {
            self.passwords.iter().filter(move |r| r.kind.eq_ignore_ascii_case(k) && r.applies_to(created))
        };
        if applies("passwordAddition").next().is_some() {
            return Some(Violation {
                code: TYPE_CODE,
                message: format!("Password credentials are not allowed as per assigned policy '{}'.", self.id),
            });
        }
        let cap = applies("passwordLifetime").filter_map(|r| r.max_lifetime).min()?;
        let end = end.unwrap_or(start + Duration::days(730));
        (end - start > cap).then(|| self.lifetime_violation())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy() -> Policy {
        Policy::from_json(
            &json!({"id": "p1", "isEnabled": true, "applicationRestrictions": {
                "keyCredentials": [{"restrictionType": "asymmetricKeyLifetime", "maxLifetime": "P90D",
                    "restrictForAppsCreatedAfterDateTime": "2020-01-01T00:00:00Z", "state": "enabled"}],
                "passwordCredentials": [{"restrictionType": "passwordLifetime", "maxLifetime": "P30D", "state": "enabled"},
                    {"restrictionType": "passwordAddition", "state": "disabled"}]}}),
            "test",
        )
        .unwrap()
    }

    #[test]
    fn durations_read_as_graph_writes_them() {
        assert_eq!(parse_duration("P90D"), Some(Duration::days(90)));
        assert_eq!(parse_duration("P1Y"), Some(Duration::days(365)));
        assert_eq!(parse_duration("P4DT12H30M5S"), Some(Duration::seconds(4 * 86_400 + 12 * 3600 + 30 * 60 + 5)));
        assert_eq!(parse_duration("90 days"), None);
        assert_eq!(parse_duration("P"), None);
        assert_eq!(parse_duration("PD"), None);
    }

    #[test]
    fn a_lifetime_over_the_cap_gets_graphs_400_body_and_old_apps_are_grandfathered() {
        let p = policy();
        let now = dates::now();
        let young = Some(now);
        let v = p.check_key(young, now, now + Duration::days(365)).unwrap();
        assert_eq!(v.code, "CredentialInvalidLifetimeAsPerAppPolicy");
        assert_eq!(v.message, "Credential lifetime exceeds the max value allowed as per assigned policy 'p1'.");
        assert_eq!(p.check_key(young, now, now + Duration::days(60)), None);
        let old = dates::parse_manifest("2019-06-01T00:00:00Z");
        assert_eq!(p.check_key(old, now, now + Duration::days(730)), None);
        assert_eq!(p.key_cap(young), Some(Duration::days(90)));
        assert_eq!(p.key_cap(old), None);
    }

    #[test]
    fn password_lifetime_applies_and_disabled_restrictions_do_not() {
        let p = policy();
        let now = dates::now();
        assert_eq!(p.check_password(None, now, Some(now + Duration::days(10))), None);
        assert_eq!(p.check_password(None, now, Some(now + Duration::days(31))).unwrap().code, LIFETIME_CODE);
        assert_eq!(p.check_password(None, now, None).unwrap().code, LIFETIME_CODE);
        let off = Policy::from_json(&json!({"id": "x", "isEnabled": false, "applicationRestrictions": {"keyCredentials": [{"restrictionType": "asymmetricKeyLifetime", "maxLifetime": "P1D"}]}}), "t").unwrap();
        assert_eq!(off.key_cap(None), None);
        assert!(Policy::from_json(&json!({"applicationRestrictions": {"keyCredentials": [{"restrictionType": "asymmetricKeyLifetime", "maxLifetime": "90d"}]}}), "t").is_err());
    }

    #[test]
    fn a_trusted_ca_restriction_refuses_self_signed_certificates_only() {
        let p = Policy::from_json(
            &json!({"id": "ca", "restrictions": {"keyCredentials": [{"restrictionType": "trustedCertificateAuthority",
                "certificateBasedApplicationConfigurationIds": ["6b2b4c8e-0f1a-4e7b-9d3c-2a5f8e1b7c40"], "state": "enabled"}]}}),
            "t",
        )
        .unwrap();
        let now = dates::now();
        let v = p.check_certificate(None, now, now + Duration::days(30), true).unwrap();
        assert_eq!(v.code, TRUSTED_CA_CODE);
        assert!(v.message.ends_with("as per assigned policy 'ca'."), "{}", v.message);
        assert_eq!(p.check_certificate(None, now, now + Duration::days(3000), false), None);
    }
}
