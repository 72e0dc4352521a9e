//! Credential sign-in activity: every token the emulator issues records which credential of the
//! client signed in (a certificate's or a client secret's `keyId`) and when, as Entra records it
//! for its "application credential activity" report. Graph serves that report at
//! `/beta/reports/appCredentialSignInActivities` ([`super::graph::signins`]), and
//! `keycred fleet retire` and `fleet audit --unused` read it.
//!
//! The records live in memory for the emulator's life, as consent does: one per credential,
//! keeping the latest sign-in. Entra's report lags sign-ins by hours; the emulator's is current
//! at once (README says so), which is what a test of a rotation script needs.

use std::collections::BTreeMap;
use std::sync::Mutex;
use time::OffsetDateTime;

/// Which kind of credential signed in (`keyType` in the report).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// A `keyCredentials` entry: the client signed an assertion with its key.
    Certificate,
    /// A `passwordCredentials` entry: the client sent the secret.
    ClientSecret,
}

impl KeyKind {
    /// The report's `keyType` value.
    pub fn key_type(self) -> &'static str {
        match self {
            KeyKind::Certificate => "certificate",
            KeyKind::ClientSecret => "clientSecret",
        }
    }
    /// The report's `keyUsage` value: a certificate verifies the client's signature; Graph's
    /// own example shows `sign` for a client secret.
    pub fn key_usage(self) -> &'static str {
        match self {
            KeyKind::Certificate => "verify",
            KeyKind::ClientSecret => "sign",
        }
    }
}

/// The credential a token request authenticated with, as the token endpoint saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsedCredential {
    /// Its `keyId`.
    pub key_id: String,
    /// Certificate or secret.
    pub kind: KeyKind,
    /// Its start (the report's `createdDateTime`: the manifest records no creation time).
    pub start: Option<OffsetDateTime>,
    /// Its end (the report's `expirationDateTime`).
    pub end: Option<OffsetDateTime>,
}

/// The latest sign-in of one credential.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Activity {
    /// The client's appId (lower case).
    pub app_id: String,
    /// The credential.
    pub credential: UsedCredential,
    /// When it last signed in.
    pub last: OffsetDateTime,
    /// The request id of that sign-in (the token answer's `trace_id`).
    pub request_id: String,
    /// The resource the token was for (its app id).
    pub resource_id: String,
}

/// Every credential's latest sign-in, ordered by appId then keyId, so the report pages stably.
#[derive(Debug, Default)]
pub struct SignIns {
    latest: Mutex<BTreeMap<(String, String), Activity>>,
}

impl SignIns {
    /// Records a sign-in of `app_id` with `credential` at `at`; an earlier one is replaced.
    pub fn record(
        &self,
        app_id: &str,
        credential: UsedCredential,
        at: OffsetDateTime,
        request_id: &str,
        resource_id: &str,
    ) {
        let key = (app_id.to_ascii_lowercase(), credential.key_id.to_ascii_lowercase());
        let activity = Activity {
            app_id: key.0.clone(),
            credential,
            last: at,
            request_id: request_id.to_string(),
            resource_id: resource_id.to_string(),
        };
        let mut latest = self.latest.lock().unwrap_or_else(|p| p.into_inner());
        match latest.get(&key) {
            // Two requests finishing out of order must not move the time back.
            Some(a) if a.last > at => {}
            _ => {
                latest.insert(key, activity);
            }
        }
    }

    /// Every record, in report order.
    pub fn all(&self) -> Vec<Activity> {
        self.latest.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cred(key_id: &str) -> UsedCredential {
        UsedCredential { key_id: key_id.into(), kind: KeyKind::Certificate, start: None, end: None }
    }

    #[test]
    fn one_record_per_credential_keeps_the_latest_sign_in() {
        let s = SignIns::default();
        let t0 = OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
        s.record("APP-B", cred("k1"), t0, "r1", "res");
        s.record("app-a", cred("K2"), t0, "r2", "res");
        s.record("app-b", cred("K1"), t0 + time::Duration::seconds(5), "r3", "res");
        // An older sign-in reported late does not replace a newer one.
        s.record("app-b", cred("k1"), t0 + time::Duration::seconds(1), "r4", "res");
        let all = s.all();
        assert_eq!(all.len(), 2);
        assert_eq!((all[0].app_id.as_str(), all[0].credential.key_id.as_str()), ("app-a", "K2"));
        assert_eq!(all[1].app_id, "app-b");
        assert_eq!(all[1].request_id, "r3");
        assert_eq!(all[1].last, t0 + time::Duration::seconds(5));
    }
}
