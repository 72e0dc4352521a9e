//! Graph's credential sign-in activity report, client side: when each credential of an
//! application last signed in (`GET /beta/reports/appCredentialSignInActivities`, Graph's beta
//! reference "appCredentialSignInActivity resource type"). Reading it needs `AuditLog.Read.All`
//! (or `Directory.Read.All`). The report is what `retire` takes as evidence that an older
//! certificate is no longer used, and what `fleet audit` shows as `lastSignIn`.
//!
//! Entra fills the report hours after the sign-ins; a credential it does not list has no sign-in
//! recorded. Only credentials of the application object (`credentialOrigin` `application`) are
//! read: a service principal's own credentials are not the app registration's certificates.

use super::pager::{next_call, page};
use super::{GraphCall, GraphClient};
use crate::Result;
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use time::OffsetDateTime;

/// The report, under the Graph base URL.
pub const REPORT_PATH: &str = "/beta/reports/appCredentialSignInActivities";

/// One row of the report (the fields keycred reads; others are ignored).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CredentialActivity {
    /// The application (client) id.
    #[serde(default)]
    pub app_id: Option<String>,
    /// The credential's keyId.
    pub key_id: String,
    /// `application`, `servicePrincipal` or `unknownFutureValue`.
    #[serde(default)]
    pub credential_origin: Option<String>,
    /// `certificate`, `clientSecret` or `unknownFutureValue`.
    #[serde(default)]
    pub key_type: Option<String>,
    /// When the credential expires.
    #[serde(default)]
    pub expiration_date_time: Option<String>,
    /// Its last sign-in.
    #[serde(default)]
    pub sign_in_activity: Option<SignInActivity>,
}

/// `signInActivity`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SignInActivity {
    /// When.
    #[serde(default)]
    pub last_sign_in_date_time: Option<String>,
    /// The sign-in's request id.
    #[serde(default)]
    pub last_sign_in_request_id: Option<String>,
}

impl CredentialActivity {
    /// The last sign-in time, when the report gives a readable one.
    pub fn last_sign_in(&self) -> Option<OffsetDateTime> {
        self.sign_in_activity
            .as_ref()
            .and_then(|s| s.last_sign_in_date_time.as_deref())
            .and_then(crate::dates::parse_manifest)
    }
    /// Whether the row is about a credential of the application object.
    pub fn of_application(&self) -> bool {
        self.credential_origin.as_deref().is_none_or(|o| o.eq_ignore_ascii_case("application"))
    }
}

/// The last sign-in of each credential of one application, by keyId.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SignIns {
    last: HashMap<String, OffsetDateTime>,
}

impl SignIns {
    /// From report rows (rows of other origins, and without a time, ignored; the latest time of
    /// a keyId listed twice kept).
    pub fn from_rows(rows: &[CredentialActivity]) -> SignIns {
        let mut last: HashMap<String, OffsetDateTime> = HashMap::new();
        for r in rows.iter().filter(|r| r.of_application()) {
            if let Some(t) = r.last_sign_in() {
                let e = last.entry(r.key_id.to_ascii_lowercase()).or_insert(t);
                *e = (*e).max(t);
            }
        }
        SignIns { last }
    }
    /// When `key_id` last signed in, if the report says.
    pub fn last(&self, key_id: &str) -> Option<OffsetDateTime> {
        self.last.get(&key_id.to_ascii_lowercase()).copied()
    }
}

/// The first page of the report for one application: `$filter=appId eq '...'`, a quote in the
/// id doubled (as OData string literals escape it) and anything but letters, digits and `-`
/// percent-encoded, as the application list's filter is written.
pub fn list_call(app_id: &str) -> GraphCall {
    let literal: String = app_id
        .replace('\'', "''")
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b == b'-' { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect();
    let path = format!("{REPORT_PATH}?$filter=appId%20eq%20%27{literal}%27");
    GraphCall { method: crate::http::Method::GET, path, body: None }
}

/// Every row of the report for `app_id`, following `@odata.nextLink` as given.
pub async fn rows_for(g: &GraphClient, app_id: &str) -> Result<Vec<CredentialActivity>> {
    rows_from(g, list_call(app_id)).await
}

/// Every row of the report, all applications together.
pub async fn all_rows(g: &GraphClient) -> Result<Vec<CredentialActivity>> {
    rows_from(g, GraphCall { method: crate::http::Method::GET, path: REPORT_PATH.to_string(), body: None }).await
}

async fn rows_from(g: &GraphClient, first: GraphCall) -> Result<Vec<CredentialActivity>> {
    let mut call = Some(first);
    let mut rows = Vec::new();
    while let Some(c) = call.take() {
        let url = g.url_of(&c);
        let body = g.send(c).await?.unwrap_or(Value::Null);
        let answer = page(&url, body)?;
        for item in answer.items {
            // A row that does not parse (no keyId) says nothing about a credential.
            if let Ok(r) = serde_json::from_value::<CredentialActivity>(item) {
                rows.push(r);
            }
        }
        call = answer.next_link.map(|n| next_call(g.base(), &n)).transpose()?;
    }
    Ok(rows)
}

/// The sign-ins of `app_id`'s credentials.
pub async fn for_app(g: &GraphClient, app_id: &str) -> Result<SignIns> {
    Ok(SignIns::from_rows(&rows_for(g, app_id).await?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_report_call_filters_by_app_id_and_rows_keep_the_latest_application_sign_in() {
        assert_eq!(
            list_call("6731de76-14a6-49ae-97bc-6eba6914391e").path,
            "/beta/reports/appCredentialSignInActivities?$filter=appId%20eq%20%276731de76-14a6-49ae-97bc-6eba6914391e%27"
        );
        assert!(list_call("a'b c").path.ends_with("%27a%27%27b%20c%27"));
        // The shape of Graph's reference example, plus a service principal's row and a row
        // without activity.
        let rows: Vec<CredentialActivity> = serde_json::from_value(json!([
            {"appId": "a", "keyId": "K1", "credentialOrigin": "application", "keyType": "certificate",
             "expirationDateTime": "2027-01-01T00:00:00Z",
             "signInActivity": {"lastSignInDateTime": "2026-03-18T00:00:00.1234567Z", "lastSignInRequestId": "r"}},
            {"appId": "a", "keyId": "k1", "credentialOrigin": "application",
             "signInActivity": {"lastSignInDateTime": "2026-03-17T00:00:00Z"}},
            {"appId": "a", "keyId": "k2", "credentialOrigin": "servicePrincipal",
             "signInActivity": {"lastSignInDateTime": "2026-03-19T00:00:00Z"}},
            {"appId": "a", "keyId": "k3", "credentialOrigin": "application", "signInActivity": null}
        ]))
        .unwrap();
        let s = SignIns::from_rows(&rows);
        assert_eq!(crate::dates::format(s.last("k1").unwrap()), "2026-03-18T00:00:00Z");
        assert_eq!(s.last("K2"), None);
        assert_eq!(s.last("k3"), None);
    }
}
