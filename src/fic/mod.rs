//! Federated identity credentials (FICs): an application's trust in another issuer's tokens
//! (GitHub Actions, Kubernetes service accounts, another cloud), so a workload signs in with the
//! token it already has instead of a certificate or a secret.
//!
//! - [`FederatedIdentityCredential`]: Graph's `federatedIdentityCredential` resource, typed, with
//!   unknown properties kept ([`FederatedIdentityCredential::rest`]).
//! - [`rules`]: what Graph refuses when one is created or changed (at most 20 per application, a
//!   unique name, a unique issuer and subject, exactly one audience, its length limits), checked
//!   the same way by the emulator's Graph and by clients before they send.
//! - [`diagnose`]: whether Entra would accept an external token for an application, and the
//!   AADSTS code it answers when not: the one matching logic the emulator's token endpoint and
//!   the `check` side of the toolkit share.
//! - [`subjects`]: the subjects GitHub Actions and Kubernetes put in their tokens.

pub mod diagnose;
pub mod issuer;
pub mod rules;
pub mod subjects;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The audience Entra expects in external tokens (Graph's default for `audiences`).
pub const DEFAULT_AUDIENCE: &str = "api://AzureADTokenExchange";
/// At most this many federated identity credentials per application (Graph's documented limit).
pub const MAX_PER_APP: usize = 20;

/// One federated identity credential, as Graph returns it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FederatedIdentityCredential {
    /// Graph's object id (read-only; absent in a create request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Unique per application, URL-friendly, immutable; Graph's alternate key.
    #[serde(default)]
    pub name: String,
    /// The external issuer, compared with the token's `iss` exactly.
    #[serde(default)]
    pub issuer: String,
    /// The token's expected `sub` (exclusive with `claimsMatchingExpression`).
    #[serde(default)]
    pub subject: Option<String>,
    /// A flexible credential's expression (`{value, languageVersion}`), instead of `subject`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims_matching_expression: Option<Value>,
    /// Exactly one accepted `aud` value.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// Properties this version does not know (`@odata.type`, newer ones), kept as received.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

impl FederatedIdentityCredential {
    /// A credential trusting `subject` of `issuer` for the default audience.
    pub fn new(name: &str, issuer: &str, subject: &str) -> Self {
        FederatedIdentityCredential {
            id: None,
            name: name.to_string(),
            issuer: issuer.to_string(),
            subject: Some(subject.to_string()),
            claims_matching_expression: None,
            audiences: vec![DEFAULT_AUDIENCE.to_string()],
            description: None,
            rest: Map::new(),
        }
    }

    /// Reads one from JSON (Graph's answer or a manifest entry).
    pub fn from_value(v: &Value) -> Option<Self> {
        serde_json::from_value(v.clone()).ok()
    }

    /// Its JSON, as Graph renders it (`description` and `subject` present even when null).
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// The credentials of a manifest: its `federatedIdentityCredentials` array (entries that are not
/// credentials are skipped).
pub fn from_manifest(root: &Map<String, Value>) -> Vec<FederatedIdentityCredential> {
    match root.get(MANIFEST_MEMBER) {
        Some(Value::Array(a)) => a.iter().filter_map(FederatedIdentityCredential::from_value).collect(),
        _ => Vec::new(),
    }
}

/// Where a manifest keeps its federated identity credentials. Graph serves them as a navigation
/// property of the application, never inside the application entity; a manifest file (the
/// emulator's storage, and what a user hands `check`) holds them under this member.
pub const MANIFEST_MEMBER: &str = "federatedIdentityCredentials";
