//! Graph's objects at the edge of the client, typed: an [`Application`] and its
//! [`KeyCredential`]s and [`PasswordCredential`]s, as Graph answers them (PROTOCOL.md section 7).
//!
//! Each keeps what keycred does not read in `rest` (`#[serde(flatten)]`), so a property Graph
//! adds tomorrow survives a read-modify-`PATCH` of the whole `keyCredentials` collection. The
//! properties keycred reads are always written back, `null` when unset, as Graph itself answers
//! them. Only the manifest splicer ([`crate::manifest`]) still reads `Value`s: it must keep the
//! file's bytes.

use crate::{Error, Result};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// An application as Graph returns it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    /// Object id.
    pub id: String,
    /// Application (client) id.
    #[serde(default)]
    pub app_id: String,
    /// Display name, when selected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The `keyCredentials` collection (empty when not selected or `null`).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub key_credentials: Vec<KeyCredential>,
    /// The `passwordCredentials` collection (empty when not selected or `null`).
    #[serde(default, deserialize_with = "null_as_empty", skip_serializing_if = "Vec::is_empty")]
    pub password_credentials: Vec<PasswordCredential>,
    /// Every other property, as Graph sent it.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

impl Application {
    /// Reads an application from Graph's answer; one without `id`, or with a property of the
    /// wrong shape, is a remote error.
    pub fn from_json(v: &Value) -> Result<Self> {
        if v.get("id").and_then(Value::as_str).is_none() {
            return Err(Error::remote("Graph answered an application without 'id'"));
        }
        Application::deserialize(v).map_err(|e| Error::remote("Graph answered an unreadable application").caused_by(e))
    }
}

/// One entry of `keyCredentials` (Graph's keyCredential resource).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KeyCredential {
    /// Base64 of the certificate's SHA-1 (Graph) or a custom value.
    pub custom_key_identifier: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
    /// End of validity (ISO 8601).
    pub end_date_time: Option<String>,
    /// The certificate, base64 DER; Graph answers `null` unless `keyCredentials` is selected.
    pub key: Option<String>,
    /// The entry's id.
    pub key_id: Option<String>,
    /// Start of validity (ISO 8601).
    pub start_date_time: Option<String>,
    /// `AsymmetricX509Cert`, `X509CertAndPassword`, ...
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// `Verify` or `Sign`.
    pub usage: Option<String>,
    /// Every other property, as Graph sent it.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

impl KeyCredential {
    /// The entry as a JSON object, as it is sent back.
    pub fn to_map(&self) -> Map<String, Value> {
        match serde_json::to_value(self) {
            Ok(Value::Object(o)) => o,
            _ => Map::new(),
        }
    }
    /// An entry built as a JSON object (a manifest entry in Graph's format).
    pub fn from_map(o: Map<String, Value>) -> Result<Self> {
        KeyCredential::deserialize(Value::Object(o))
            .map_err(|e| Error::internal("a keyCredential of the wrong shape").caused_by(e))
    }
}

/// One entry of `passwordCredentials` (Graph's passwordCredential resource). Graph never
/// answers `secretText` except when the secret is created.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PasswordCredential {
    /// Display name.
    pub display_name: Option<String>,
    /// End of validity (ISO 8601).
    pub end_date_time: Option<String>,
    /// The first characters of the secret.
    pub hint: Option<String>,
    /// The entry's id.
    pub key_id: Option<String>,
    /// Start of validity (ISO 8601).
    pub start_date_time: Option<String>,
    /// Every other property, as Graph sent it.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// A collection Graph may answer as `null`: read as empty.
fn null_as_empty<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> std::result::Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_properties_survive_a_read_and_write_back() {
        let answer = json!({
            "id": "obj", "appId": "app", "signInAudience": "AzureADMyOrg",
            "keyCredentials": [{
                "customKeyIdentifier": "AB", "displayName": null, "endDateTime": "2030-01-01T00:00:00Z",
                "key": null, "keyId": "k1", "startDateTime": "2025-01-01T00:00:00Z",
                "type": "AsymmetricX509Cert", "usage": "Verify", "futureProperty": {"x": [1, 2]}
            }],
            "passwordCredentials": null
        });
        let app = Application::from_json(&answer).unwrap();
        assert_eq!((app.key_credentials[0].key_id.as_deref(), app.password_credentials.len()), (Some("k1"), 0));
        // Sent back in a PATCH: exactly what Graph answered, the unknown property included.
        assert_eq!(Value::Object(app.key_credentials[0].to_map()), answer["keyCredentials"][0]);
        assert_eq!(app.rest.get("signInAudience"), Some(&json!("AzureADMyOrg")));
        assert!(Application::from_json(&json!({"appId": "app"})).unwrap_err().message().contains("without 'id'"));
        let bad = Application::from_json(&json!({"id": "o", "keyCredentials": [{"keyId": 7}]})).unwrap_err();
        assert_eq!(bad.exit_code(), 3);
    }
}
