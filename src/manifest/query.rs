//! Questions asked of a manifest's entries: which ones a selector designates, where each stands
//! at a given time, and the row `keycred manifest list` shows for it.
//!
//! Reading an entry (in the parent module) records what it holds; this module judges it against a
//! time and a selection. It is apart because `list`, `remove`, rotation and the Graph key commands
//! all ask these questions, while the parent module stays about parsing and guarded edits.

use super::{cki_sha1, read_entry, KeyCredential, Manifest};
use crate::cert::EXPIRING_DAYS;
use crate::wording::{Action, Input};
use crate::{dates, thumbprint, Error, Result};
use serde::Serialize;
use serde_json::Value;
use std::fmt;
use time::OffsetDateTime;
use uuid::Uuid;

/// The row `list` shows for an array member that is not an object (a number, a string, `null`):
/// nothing can be read from it, and it is no certificate.
fn non_object_row(v: &Value) -> ListRow {
    let what = match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    ListRow {
        key_id: None,
        thumbprint: None,
        display_name: None,
        start: None,
        end: None,
        status: Status::Unusable,
        has_body: false,
        problems: vec![format!("the entry is {what}, not a JSON object: not a key credential")],
    }
}

/// Which entries an operation is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    /// By `keyId`.
    KeyId(Uuid),
    /// By the certificate's SHA-1: of its body when the entry has one, else as its
    /// `customKeyIdentifier` names it.
    Thumbprint([u8; 20]),
}

impl Selector {
    /// A `keyId` given on the command line.
    pub fn key_id(s: &str) -> Result<Selector> {
        Uuid::parse_str(s.trim()).map(Selector::KeyId).map_err(|_| {
            Error::input(format!("{} '{s}': not a UUID", Input::KeyId)).with_hint(format!(
                "give the keyId as {} shows it, e.g. 1b4e28ba-2fa1-11d2-883f-0016d3cca427",
                Action::ListEntries { manifest: None }
            ))
        })
    }
    /// A thumbprint in any form (hex with or without colons, base64, base64url).
    pub fn thumbprint(s: &str) -> Result<Selector> {
        thumbprint::parse_sha1(s).map(Selector::Thumbprint).map_err(|e| e.context(Input::Thumbprint))
    }
    /// Whether `c` is selected.
    pub fn matches(&self, c: &KeyCredential) -> bool {
        match self {
            Selector::KeyId(id) => c.key_id.as_deref().and_then(|k| Uuid::parse_str(k.trim()).ok()) == Some(*id),
            // The body is the certificate: its digest decides, whatever customKeyIdentifier
            // says (anyone may write any identifier on an entry of another certificate, so it
            // names only the entries that have no body to hash).
            Selector::Thumbprint(t) if c.has_body => c.body_sha1 == Some(*t),
            Selector::Thumbprint(t) => c.custom_key_identifier.as_deref().and_then(cki_sha1) == Some(*t),
        }
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selector::KeyId(id) => write!(f, "keyId {id}"),
            Selector::Thumbprint(t) => write!(f, "thumbprint {}", thumbprint::hex_upper(t)),
        }
    }
}

/// Where a credential stands at a given time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Status {
    /// Usable, more than [`EXPIRING_DAYS`] left.
    #[serde(rename = "valid")]
    Valid,
    /// Usable, fewer than [`EXPIRING_DAYS`] left.
    #[serde(rename = "expiring")]
    Expiring,
    /// Past its end.
    #[serde(rename = "expired")]
    Expired,
    /// Before its start.
    #[serde(rename = "not_yet_valid")]
    NotYetValid,
    /// Not a certificate Entra can verify with, whatever its dates (see the row's `problems`).
    #[serde(rename = "unusable")]
    Unusable,
}

impl Status {
    /// The name printed and serialised.
    pub fn name(self) -> &'static str {
        match self {
            Status::Valid => "valid",
            Status::Expiring => "expiring",
            Status::Expired => "expired",
            Status::NotYetValid => "not yet valid",
            Status::Unusable => "unusable",
        }
    }
}

impl KeyCredential {
    /// Start: the entry's date, else the certificate's.
    pub fn effective_start(&self) -> Option<OffsetDateTime> {
        self.start.or(self.certificate.as_ref().map(|c| c.not_before()))
    }
    /// End: the entry's date, else the certificate's.
    pub fn effective_end(&self) -> Option<OffsetDateTime> {
        self.end.or(self.certificate.as_ref().map(|c| c.not_after()))
    }
    /// Status at `now`: `Unusable` for an entry with defects; otherwise by its dates, the
    /// certificate's standing in for missing ones.
    pub fn status(&self, now: OffsetDateTime) -> Status {
        if !self.is_usable() {
            return Status::Unusable;
        }
        match (self.effective_start(), self.effective_end()) {
            (Some(s), _) if now < s => Status::NotYetValid,
            (_, Some(e)) if now > e => Status::Expired,
            (_, Some(e)) if crate::dates::days_between(now, e) < EXPIRING_DAYS => Status::Expiring,
            _ => Status::Valid,
        }
    }
}

/// One line of `keycred manifest list`. JSON field names are a contract.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ListRow {
    /// `keyId`.
    pub key_id: Option<String>,
    /// SHA-1, upper-case hex: from the body when present, else from `customKeyIdentifier`.
    pub thumbprint: Option<String>,
    /// `displayName`, else the certificate's subject.
    pub display_name: Option<String>,
    /// Start, RFC 3339 UTC.
    pub start: Option<String>,
    /// End, RFC 3339 UTC.
    pub end: Option<String>,
    /// `valid`, `expiring`, `expired`, `not_yet_valid` or `unusable` (single tokens; text
    /// output prints `not yet valid`).
    pub status: Status,
    /// Whether `key`/`value` holds the certificate.
    pub has_body: bool,
    /// What is wrong with the entry (why it is `unusable`, and warnings); empty when nothing is.
    pub problems: Vec<String>,
}

impl ListRow {
    /// The row for `c` at `now`.
    pub fn of(c: &KeyCredential, now: OffsetDateTime) -> ListRow {
        ListRow {
            key_id: c.key_id.clone(),
            thumbprint: c.sha1().map(|d| thumbprint::hex_upper(&d)),
            display_name: c.display_name.clone().or_else(|| c.certificate.as_ref().map(|x| x.subject().to_string())),
            start: c.effective_start().map(dates::format),
            end: c.effective_end().map(dates::format),
            status: c.status(now),
            has_body: c.has_body,
            problems: c.problems(),
        }
    }
}

impl Manifest {
    /// The entries `sel` designates.
    pub fn find(&self, sel: &Selector) -> Vec<KeyCredential> {
        self.credentials().into_iter().filter(|c| sel.matches(c)).collect()
    }

    /// A row per array member, for `list`: members that are not objects get a row too, so that
    /// nothing in the array goes unseen.
    pub fn list(&self, now: OffsetDateTime) -> Vec<ListRow> {
        self.raw_entries()
            .iter()
            .enumerate()
            .map(|(i, v)| match v.as_object() {
                Some(o) => ListRow::of(&read_entry(i, o), now),
                None => non_object_row(v),
            })
            .collect()
    }
}
