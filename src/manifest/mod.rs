//! App manifests and their `keyCredentials`, in both formats of PROTOCOL.md section 2.
//!
//! Reading is done on a parsed `serde_json::Value`; editing (in `edit`) splices the original
//! text so that everything outside the touched entries keeps its exact bytes.

use crate::cert::Certificate;
use crate::thumbprint;
use crate::{dates, fsio, Error, Result};
use base64::Engine;
use serde_json::{Map, Value};
use std::path::Path;
use time::OffsetDateTime;

/// The two manifest shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Microsoft Graph (today's portal manifest): `key`, `startDateTime`, `endDateTime`, `displayName`.
    MsGraph,
    /// Azure AD Graph (legacy, seed 000): `value`, `startDate`, `endDate`.
    AadGraph,
}

impl Format {
    /// CLI name.
    pub fn name(self) -> &'static str {
        match self {
            Format::MsGraph => "ms-graph",
            Format::AadGraph => "aad-graph",
        }
    }
    /// Field holding the certificate body.
    pub fn body_field(self) -> &'static str {
        match self {
            Format::MsGraph => "key",
            Format::AadGraph => "value",
        }
    }
    /// Field holding the start date.
    pub fn start_field(self) -> &'static str {
        match self {
            Format::MsGraph => "startDateTime",
            Format::AadGraph => "startDate",
        }
    }
    /// Field holding the end date.
    pub fn end_field(self) -> &'static str {
        match self {
            Format::MsGraph => "endDateTime",
            Format::AadGraph => "endDate",
        }
    }
}

/// One `keyCredentials` entry as read from a manifest.
#[derive(Clone, Debug)]
pub struct KeyCredential {
    /// Position in the array.
    pub index: usize,
    /// `keyId`.
    pub key_id: Option<String>,
    /// `customKeyIdentifier` as written.
    pub custom_key_identifier: Option<String>,
    /// `displayName` (Graph format).
    pub display_name: Option<String>,
    /// `type`.
    pub kind: Option<String>,
    /// `usage`.
    pub usage: Option<String>,
    /// Start date.
    pub start: Option<OffsetDateTime>,
    /// End date.
    pub end: Option<OffsetDateTime>,
    /// Certificate, when the body (`key`/`value`) holds a readable one.
    pub certificate: Option<Certificate>,
    /// Whether the body field holds anything (it is `null` in downloaded manifests).
    pub has_body: bool,
}

impl KeyCredential {
    /// SHA-1 of the certificate: computed from the body when present, else read from
    /// `customKeyIdentifier` (any form).
    pub fn sha1(&self) -> Option<[u8; 20]> {
        if let Some(c) = &self.certificate {
            return Some(c.sha1());
        }
        self.custom_key_identifier.as_deref().and_then(|s| thumbprint::parse_sha1(s).ok())
    }
    /// Whether the credential is usable at `at` by its own dates (and the certificate's).
    pub fn is_valid_at(&self, at: OffsetDateTime) -> bool {
        let start = self.start.or(self.certificate.as_ref().map(|c| c.not_before()));
        let end = self.end.or(self.certificate.as_ref().map(|c| c.not_after()));
        start.is_none_or(|s| s <= at) && end.is_none_or(|e| at <= e)
    }
}

/// A parsed manifest. Holds the original text so edits can preserve it.
#[derive(Clone, Debug)]
pub struct Manifest {
    text: String,
    root: Map<String, Value>,
    origin: String,
}

impl Manifest {
    /// Reads and parses a manifest file.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = fsio::read(path)?;
        let text = String::from_utf8(bytes)
            .map_err(|_| Error::file(path, "not UTF-8 text").with_hint("save the manifest as UTF-8"))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses manifest text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self> {
        let body = text.strip_prefix('\u{feff}').unwrap_or(text);
        let value: Value = serde_json::from_str(body).map_err(|e| {
            Error::input(format!("{origin}: malformed JSON at line {} column {}: {e}", e.line(), e.column()))
                .with_hint("fix the JSON (the portal's manifest editor shows the same position)")
        })?;
        let Value::Object(root) = value else {
            return Err(Error::input(format!("{origin}: the manifest is not a JSON object")));
        };
        if let Some(kc) = root.get("keyCredentials") {
            if !kc.is_array() && !kc.is_null() {
                return Err(Error::input(format!("{origin}: keyCredentials is not an array"))
                    .with_hint("keyCredentials must be a JSON array of entries: [ {...}, {...} ]"));
            }
        }
        Ok(Manifest { text: text.to_string(), root, origin: origin.to_string() })
    }

    /// The original text.
    pub fn text(&self) -> &str {
        &self.text
    }
    /// The name of the input, for messages.
    pub fn origin(&self) -> &str {
        &self.origin
    }
    /// The parsed top-level object.
    pub fn root(&self) -> &Map<String, Value> {
        &self.root
    }
    /// `appId` (Graph) or `appId` (legacy manifests carry it too).
    pub fn app_id(&self) -> Option<&str> {
        self.root.get("appId").and_then(Value::as_str)
    }
    /// Object id: `id` (Graph) or `objectId` (legacy).
    pub fn object_id(&self) -> Option<&str> {
        self.root.get("id").or_else(|| self.root.get("objectId")).and_then(Value::as_str)
    }
    /// Display name of the app.
    pub fn display_name(&self) -> Option<&str> {
        self.root.get("displayName").and_then(Value::as_str)
    }

    /// The raw `keyCredentials` entries.
    pub fn raw_entries(&self) -> &[Value] {
        match self.root.get("keyCredentials") {
            Some(Value::Array(a)) => a,
            _ => &[],
        }
    }

    /// The format, decided by existing entries, else by top-level keys; `None` when undecidable.
    pub fn detect_format(&self) -> Option<Format> {
        for e in self.raw_entries() {
            if let Value::Object(o) = e {
                if o.contains_key("key")
                    || o.contains_key("startDateTime")
                    || o.contains_key("endDateTime")
                    || o.contains_key("displayName")
                {
                    return Some(Format::MsGraph);
                }
                if o.contains_key("value") || o.contains_key("startDate") || o.contains_key("endDate") {
                    return Some(Format::AadGraph);
                }
            }
        }
        const GRAPH: [&str; 5] = ["id", "signInAudience", "api", "web", "requiredResourceAccess"];
        const LEGACY: [&str; 5] = [
            "objectId",
            "oauth2Permissions",
            "availableToOtherTenants",
            "oauth2AllowImplicitFlow",
            "replyUrlsWithType",
        ];
        if LEGACY.iter().any(|k| self.root.contains_key(*k)) {
            return Some(Format::AadGraph);
        }
        if GRAPH.iter().any(|k| self.root.contains_key(*k)) {
            return Some(Format::MsGraph);
        }
        None
    }

    /// The entries, read leniently: what cannot be read is left `None`.
    pub fn credentials(&self) -> Vec<KeyCredential> {
        self.raw_entries()
            .iter()
            .enumerate()
            .filter_map(|(index, v)| v.as_object().map(|o| read_entry(index, o)))
            .collect()
    }
}

fn read_entry(index: usize, o: &Map<String, Value>) -> KeyCredential {
    let s = |k: &str| o.get(k).and_then(Value::as_str).map(str::to_string);
    let body = s("key").or_else(|| s("value"));
    let certificate = body.as_deref().and_then(|b| {
        let der = base64::engine::general_purpose::STANDARD.decode(b.trim()).ok()?;
        Certificate::from_der(&der, "keyCredentials entry").ok()
    });
    let date = |a: &str, b: &str| s(a).or_else(|| s(b)).and_then(|d| dates::parse_manifest(&d));
    KeyCredential {
        index,
        key_id: s("keyId"),
        custom_key_identifier: s("customKeyIdentifier"),
        display_name: s("displayName"),
        kind: s("type"),
        usage: s("usage"),
        start: date("startDateTime", "startDate"),
        end: date("endDateTime", "endDate"),
        has_body: body.is_some_and(|b| !b.is_empty()),
        certificate,
    }
}
