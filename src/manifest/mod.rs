//! App manifests and their `keyCredentials`, in both formats of PROTOCOL.md section 2.
//!
//! Reading is done on a parsed `serde_json::Value`; editing (in `edit`) splices the original
//! text (at the byte spans `scan` finds) so that everything outside the touched entries keeps its
//! exact bytes. `entry` builds new
//! entries from certificates, `file` saves and edits manifest files safely, `access` reads and
//! edits `requiredResourceAccess` (the API permissions asked for), `templates` holds the
//! sample manifests embedded in the binary, `query` selects entries and says where each stands
//! (the `list` rows).

mod access;
mod edit;
mod entry;
mod file;
mod query;
mod scan;
pub mod templates;

pub use access::AccessRow;
pub use entry::{entry_for, entry_for_at, EntryOptions};
pub use file::{edit_file, FileEdit};
pub use query::{ListRow, Selector, Status};

use crate::cert::Certificate;
use crate::thumbprint;
use crate::wording::{Action, Input};
use crate::{dates, fsio, Error, Result};
use base64::Engine;
use serde_json::{Map, Value};
use std::path::Path;
use time::OffsetDateTime;
use uuid::Uuid;

/// The two manifest shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Microsoft Graph (today's portal manifest): `key`, `startDateTime`, `endDateTime`, `displayName`.
    MsGraph,
    /// Azure AD Graph (legacy, what the Office 365 Management API setup documents): `value`,
    /// `startDate`, `endDate`.
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
    /// SHA-1 of the body's bytes when it is base64: the certificate's thumbprint, also when
    /// the certificate itself cannot be read.
    pub body_sha1: Option<[u8; 20]>,
    /// Why Entra could not verify a signature with this entry (wrong `type` or `usage`, a body
    /// that is not a usable certificate, unreadable dates, no way to tell its validity); empty
    /// for a usable certificate entry. Such entries never count as a valid certificate.
    pub defects: Vec<String>,
    /// What looks wrong without making the entry unusable (a `customKeyIdentifier` that is not
    /// a thumbprint in base64 or hex, or that disagrees with the body).
    pub warnings: Vec<String>,
}

impl KeyCredential {
    /// SHA-1 of the certificate: computed from the body when present, else read from
    /// `customKeyIdentifier` (any form).
    pub fn sha1(&self) -> Option<[u8; 20]> {
        if let Some(c) = &self.certificate {
            return Some(c.sha1());
        }
        self.custom_key_identifier.as_deref().and_then(cki_sha1)
    }
    /// Whether the credential is usable at `at` by its own dates (and the certificate's). Looks
    /// at dates only; [`KeyCredential::counts_as_valid_at`] also requires a usable entry.
    pub fn is_valid_at(&self, at: OffsetDateTime) -> bool {
        let start = self.start.or(self.certificate.as_ref().map(|c| c.not_before()));
        let end = self.end.or(self.certificate.as_ref().map(|c| c.not_after()));
        start.is_none_or(|s| s <= at) && end.is_none_or(|e| at <= e)
    }
    /// Whether this entry is a certificate Entra can verify signatures with (no [`defects`]).
    ///
    /// [`defects`]: KeyCredential::defects
    pub fn is_usable(&self) -> bool {
        self.defects.is_empty()
    }
    /// Whether this entry is a usable certificate, valid at `at`: what the lock-out guard counts.
    pub fn counts_as_valid_at(&self, at: OffsetDateTime) -> bool {
        self.is_usable() && self.is_valid_at(at)
    }
    /// Every problem: defects first, then warnings.
    pub fn problems(&self) -> Vec<String> {
        self.defects.iter().chain(&self.warnings).cloned().collect()
    }
}

/// The SHA-1 a `customKeyIdentifier` names: base64 (the right form), hex, or base64 of the hex
/// thumbprint's text (the common mistake of PROTOCOL.md section 1).
fn cki_sha1(cki: &str) -> Option<[u8; 20]> {
    thumbprint::parse_sha1(cki).ok().or_else(|| hex_text_sha1(cki))
}

/// The SHA-1 when `cki` is base64 of the 40 hex digits as text (what encoding the portal's hex
/// thumbprint as UTF-8, then base64, gives).
fn hex_text_sha1(cki: &str) -> Option<[u8; 20]> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(cki.trim()).ok()?;
    let text = std::str::from_utf8(&bytes).ok()?;
    if text.len() != 40 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    thumbprint::parse_sha1(text).ok()
}

/// What a removal from a manifest may leave behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LockoutGuard {
    /// Refuse to remove the last currently valid certificate (the app could no longer sign in).
    #[default]
    KeepValid,
    /// Also refuse to leave no valid certificate when there was none to begin with (pruning a
    /// manifest that holds only expired ones).
    RequireValid,
    /// Remove whatever was asked.
    Off,
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
        Self::from_bytes(fsio::read(path)?, path)
    }

    /// Parses the bytes read from the manifest file at `path`.
    pub fn from_bytes(bytes: Vec<u8>, path: &Path) -> Result<Self> {
        if let Some(what) = certificate_like(&bytes) {
            return Err(Error::input(format!("{}: this is {what}, not an app manifest", path.display())).with_hint(
                format!(
                    "give the manifest JSON (downloaded from the portal's Manifest page, or {}); the certificate is \
                     {}",
                    Action::InitManifest,
                    Input::Cert
                ),
            ));
        }
        let text = String::from_utf8(bytes)
            .map_err(|_| Error::file(path, "not UTF-8 text").with_hint("save the manifest as UTF-8"))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses manifest text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self> {
        let body = text.strip_prefix('\u{feff}').unwrap_or(text);
        let value: Value = serde_json::from_str(body).map_err(|e| {
            // serde_json's message ends with the position: say it once.
            let full = e.to_string();
            let why = full.strip_suffix(&format!(" at line {} column {}", e.line(), e.column())).unwrap_or(&full);
            Error::input(format!("{origin}: malformed JSON at line {} column {}: {why}", e.line(), e.column()))
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
        // The legacy (Azure AD Graph) manifest names the application `name`.
        ["displayName", "name"].iter().find_map(|k| self.root.get(*k).and_then(Value::as_str))
    }

    /// The raw `keyCredentials` entries.
    pub fn raw_entries(&self) -> &[Value] {
        match self.root.get("keyCredentials") {
            Some(Value::Array(a)) => a,
            _ => &[],
        }
    }

    /// The format, decided by existing entries, else by top-level keys only one format has;
    /// `None` when undecidable (then the caller asks for `--format` rather than guess).
    pub fn detect_format(&self) -> Option<Format> {
        if let Some(f) = self.raw_entries().iter().filter_map(Value::as_object).find_map(entry_format) {
            return Some(f);
        }
        const GRAPH: [&str; 5] = ["api", "web", "spa", "publicClient", "isFallbackPublicClient"];
        const LEGACY: [&str; 7] = [
            "objectId",
            "oauth2Permissions",
            "availableToOtherTenants",
            "oauth2AllowImplicitFlow",
            "replyUrlsWithType",
            "replyUrls",
            "allowPublicClient",
        ];
        if LEGACY.iter().any(|k| self.root.contains_key(*k)) {
            return Some(Format::AadGraph);
        }
        if GRAPH.iter().any(|k| self.root.contains_key(*k)) {
            return Some(Format::MsGraph);
        }
        None
    }

    /// The top-level keys present that both formats have (`id`, `signInAudience`,
    /// `requiredResourceAccess`, ...), which tell nothing about the format: for messages.
    pub fn shared_keys(&self) -> Vec<&'static str> {
        const SHARED: [&str; 6] =
            ["id", "appId", "displayName", "signInAudience", "requiredResourceAccess", "identifierUris"];
        SHARED.into_iter().filter(|k| self.root.contains_key(*k)).collect()
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

/// What a file given as a manifest is when it is a certificate or key (PEM, or DER, which starts
/// with a SEQUENCE tag and a long length), so the message can say so instead of a JSON error.
fn certificate_like(bytes: &[u8]) -> Option<&'static str> {
    let start = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let start = &start[start.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(start.len())..];
    if start.starts_with(b"-----BEGIN ") {
        let label = start[11..].split(|b| *b == b'-').next().unwrap_or_default();
        return Some(if label.ends_with(b"PRIVATE KEY") { "a PEM private key" } else { "a PEM certificate or key" });
    }
    if start.len() > 4 && start[0] == 0x30 && matches!(start[1], 0x81..=0x84) {
        return Some("a DER (binary) certificate, key or PFX");
    }
    None
}

/// The format an entry is written in, by its date and body field names; `None` when it has
/// none of them. `displayName` tells nothing: the portal's legacy editor wrote it into legacy
/// entries too (PROTOCOL.md section 2).
pub fn entry_format(o: &Map<String, Value>) -> Option<Format> {
    if ["key", "startDateTime", "endDateTime"].iter().any(|k| o.contains_key(*k)) {
        return Some(Format::MsGraph);
    }
    if ["value", "startDate", "endDate"].iter().any(|k| o.contains_key(*k)) {
        return Some(Format::AadGraph);
    }
    None
}

/// Reads one `keyCredentials` entry leniently (also used for Graph's answers): what cannot be
/// read is left `None` and said in `defects` (or `warnings`), never an error.
pub fn read_entry(index: usize, o: &Map<String, Value>) -> KeyCredential {
    let s = |k: &str| o.get(k).and_then(Value::as_str).map(str::to_string);
    let mut defects = Vec::new();
    // Present and not null: `null` is how the portal leaves out what it does not return.
    let given = |k: &str| o.get(k).filter(|v| !v.is_null());
    match given("type") {
        None => {}
        Some(Value::String(t)) if t.eq_ignore_ascii_case("AsymmetricX509Cert") => {}
        Some(t) => defects.push(format!("type is {t}, not \"AsymmetricX509Cert\": not a certificate credential")),
    }
    match given("usage") {
        None => {}
        Some(Value::String(u)) if u.eq_ignore_ascii_case("Verify") => {}
        Some(u) => defects.push(format!("usage is {u}, not \"Verify\": Entra does not verify sign-ins with it")),
    }
    let body_field = if given("key").is_some() || !o.contains_key("value") { "key" } else { "value" };
    let body = s("key").or_else(|| s("value")).filter(|b| !b.is_empty());
    let body_sha1 = body
        .as_deref()
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b.trim()).ok())
        .map(|der| thumbprint::sha1(&der));
    let certificate = read_body(body.as_deref(), body_field, given(body_field), &mut defects);
    let mut date = |names: [&str; 2]| -> Option<OffsetDateTime> {
        let (name, v) = names.iter().find_map(|n| given(n).map(|v| (*n, v)))?;
        let parsed = v.as_str().and_then(dates::parse_manifest);
        if parsed.is_none() {
            defects.push(format!("{name} {v} is not a date (expected RFC 3339, e.g. 2026-01-31T00:00:00Z)"));
        }
        parsed
    };
    let start = date(["startDateTime", "startDate"]);
    let end = date(["endDateTime", "endDate"]);
    let dated = ["startDateTime", "startDate", "endDateTime", "endDate"].iter().any(|n| given(n).is_some());
    if certificate.is_none() && body.is_none() && !dated {
        // Nothing says when it is valid: counting it as valid could let the last real
        // certificate go, so it does not count.
        defects.push("no certificate body and no dates: its validity cannot be told".to_string());
    }
    let custom_key_identifier = s("customKeyIdentifier");
    let warnings = custom_key_identifier
        .as_deref()
        .filter(|c| !c.is_empty())
        .map(|cki| cki_warnings(cki, certificate.as_ref()))
        .unwrap_or_default();
    KeyCredential {
        index,
        key_id: s("keyId"),
        custom_key_identifier,
        display_name: s("displayName"),
        kind: s("type"),
        usage: s("usage"),
        start,
        end,
        has_body: body.is_some(),
        body_sha1,
        certificate,
        defects,
        warnings,
    }
}

/// The certificate in an entry's body (`key` or `value`, named `field`; `raw` is its JSON value),
/// with what makes it unusable pushed to `defects`.
fn read_body(body: Option<&str>, field: &str, raw: Option<&Value>, defects: &mut Vec<String>) -> Option<Certificate> {
    let Some(b) = body else {
        if let Some(v) = raw.filter(|v| !v.as_str().is_some_and(str::is_empty)) {
            defects.push(format!("{field} is {v}, not a base64 certificate"));
        }
        return None;
    };
    let Ok(der) = base64::engine::general_purpose::STANDARD.decode(b.trim()) else {
        defects.push(format!("{field} is not base64: no certificate can be read from it"));
        return None;
    };
    let Ok(c) = Certificate::from_der(&der, "keyCredentials entry") else {
        defects.push(format!("{field} does not hold a DER X.509 certificate"));
        return None;
    };
    if let Some(d) = c.key_defect() {
        defects.push(format!("{d}: no one can sign with this certificate's key"));
    } else if !c.is_rsa() || c.key_bits() < crate::cert::MIN_RSA_BITS {
        defects.push(format!(
            "the certificate's key is not RSA of at least {} bits: Entra refuses it",
            crate::cert::MIN_RSA_BITS
        ));
    }
    Some(c)
}

/// What is wrong with a (non-empty) `customKeyIdentifier`: a hex thumbprint where base64 of the
/// SHA-1 belongs, something that is no thumbprint, or one that is not the body's certificate.
fn cki_warnings(cki: &str, certificate: Option<&Certificate>) -> Vec<String> {
    let mut warnings = Vec::new();
    let hex: String = cki.chars().filter(|c| !matches!(c, ':' | ' ' | '-')).collect();
    let named = if hex.len() == 40 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        // The hex thumbprint is what Graph and the portal write themselves (PROTOCOL.md sections
        // 1 and 8): normal. Only separators make it something Graph would refuse (the field is
        // Binary, so its JSON text must be base64).
        if hex.len() != cki.len() {
            warnings.push(
                "customKeyIdentifier is a hex thumbprint with separators, which Graph refuses (the field is \
                 base64): write the 40 hex digits alone, as Graph does"
                    .to_string(),
            );
        }
        thumbprint::parse_sha1(&hex).ok()
    } else if let Some(d) = hex_text_sha1(cki) {
        warnings.push(
            "customKeyIdentifier is the hex thumbprint encoded as text, not the SHA-1 itself: write base64 of the SHA-1"
                .to_string(),
        );
        Some(d)
    } else {
        let d = thumbprint::parse_sha1(cki).ok();
        if d.is_none() {
            warnings.push("customKeyIdentifier is not a SHA-1 thumbprint in base64".to_string());
        }
        d
    };
    if let (Some(d), Some(c)) = (named, certificate) {
        if d != c.sha1() {
            warnings.push(format!(
                "customKeyIdentifier names thumbprint {}, but the body's certificate is {}",
                thumbprint::hex_upper(&d),
                c.thumbprint()
            ));
        }
    }
    warnings
}

impl Manifest {
    /// The entries that are usable certificates valid at `now` (what the lock-out guard counts).
    pub fn valid_at(&self, now: OffsetDateTime) -> Vec<KeyCredential> {
        self.credentials().into_iter().filter(|c| c.counts_as_valid_at(now)).collect()
    }

    /// Refuses an edit that leaves no valid credential when there was one: the app could no
    /// longer authenticate, and Graph's addKey needs a valid one to recover. Only usable
    /// certificate entries count (see [`KeyCredential::defects`]). Callers add how to allow it.
    pub fn ensure_not_locked_out(&self, after: &Manifest, now: OffsetDateTime) -> Result<()> {
        if !self.valid_at(now).is_empty() && after.valid_at(now).is_empty() {
            return Err(Error::input(format!(
                "{}: this would remove the last currently valid certificate; the app could no longer sign in",
                self.origin
            ))
            .with_hint("add the new certificate first"));
        }
        Ok(())
    }

    /// The format to write in: the manifest's own, else `given`; refuses a `given` format that
    /// contradicts the manifest's, and a manifest that cannot tell when none is given.
    pub fn resolve_format(&self, given: Option<Format>) -> Result<Format> {
        match (self.detect_format(), given) {
            (Some(have), Some(want)) if have != want => Err(Error::input(format!(
                "{}: the manifest is in {} format, not {}",
                self.origin,
                have.name(),
                want.name()
            ))
            .with_hint(format!("leave the format out, or give {}", have.name()))),
            (Some(have), _) => Ok(have),
            (None, Some(want)) => Ok(want),
            (None, None) => Err(Error::input(format!(
                "{}: cannot tell whether the manifest is in ms-graph or aad-graph format ({})",
                self.origin,
                match self.shared_keys() {
                    k if k.is_empty() => "no entries, no telling keys".to_string(),
                    k => format!("no entries, and {} occur in both formats", k.join(", ")),
                }
            ))
            .with_hint("give the format: ms-graph (today's portal) or aad-graph (legacy)")),
        }
    }

    /// Returns the manifest without the entries at `indices`, refusing what `guard` forbids: by
    /// default ([`LockoutGuard::KeepValid`]) leaving no valid certificate when there was one.
    pub fn remove_guarded(&self, indices: &[usize], guard: LockoutGuard, now: OffsetDateTime) -> Result<Manifest> {
        if indices.is_empty() {
            return Ok(self.clone());
        }
        let after = self.remove_indices(indices)?;
        if guard == LockoutGuard::Off {
            return Ok(after);
        }
        self.ensure_not_locked_out(&after, now)?;
        if guard == LockoutGuard::RequireValid && after.valid_at(now).is_empty() {
            return Err(Error::input(format!(
                "{}: no currently valid certificate would be left; nothing was changed",
                self.origin
            ))
            .with_hint("add a new certificate first"));
        }
        Ok(after)
    }

    /// Returns the manifest with `entry` appended to `keyCredentials` (created when missing).
    /// Refuses an entry in the other format, or whose certificate or `keyId` is already present.
    pub fn add_entry(&self, entry: Map<String, Value>) -> Result<Manifest> {
        if let (Some(have), Some(new)) = (self.detect_format(), entry_format(&entry)) {
            if have != new {
                return Err(Error::input(format!(
                    "{}: the manifest is in {} format but the entry is {}",
                    self.origin,
                    have.name(),
                    new.name()
                ))
                .with_hint(format!("build the entry in {} format", have.name())));
            }
        }
        let new = read_entry(0, &entry);
        let existing = self.credentials();
        if let Some(d) = new.sha1() {
            if let Some(c) = existing.iter().find(|c| Selector::Thumbprint(d).matches(c)) {
                return Err(Error::input(format!(
                    "{}: the certificate {} is already in keyCredentials (keyId {})",
                    self.origin,
                    thumbprint::hex_upper(&d),
                    c.key_id.as_deref().unwrap_or("none")
                ))
                .with_hint(format!("nothing to do; {} shows the entries", Action::ListEntries { manifest: None })));
            }
        }
        if let Some(id) = new.key_id.as_deref().and_then(|k| Uuid::parse_str(k).ok()) {
            if existing.iter().any(|c| Selector::KeyId(id).matches(c)) {
                return Err(Error::input(format!("{}: keyId {id} is already used in keyCredentials", self.origin))
                    .with_hint(format!("leave {} out to get a fresh one", Input::KeyId)));
            }
        }
        self.append_unchecked(&entry)
    }
}
