//! Building a `keyCredentials` entry for a certificate, in either manifest format.
//!
//! The values are the certificate's own (PROTOCOL.md section 1): `customKeyIdentifier` is the
//! SHA-1 of the DER, as upper-case hex in Microsoft Graph entries (what Graph and the portal
//! write themselves) and as base64 in legacy ones (what the legacy instructions say), and
//! `key`/`value` the base64 DER. Entries are refused for certificates
//! Entra would refuse, and for dates outside the certificate's validity, which Entra rejects too.

use super::Format;
use crate::cert::Certificate;
use crate::wording::Input;
use crate::{dates, Error, Result};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use uuid::Uuid;

/// Choices for a new entry; everything defaults from the certificate.
#[derive(Clone, Debug, Default)]
pub struct EntryOptions {
    /// `keyId`; a fresh UUID v4 when `None`.
    pub key_id: Option<Uuid>,
    /// `displayName` (Graph format only); the certificate's subject when `None`.
    pub display_name: Option<String>,
    /// Start; the certificate's notBefore when `None`.
    pub start: Option<OffsetDateTime>,
    /// End; the certificate's notAfter when `None`.
    pub end: Option<OffsetDateTime>,
}

/// The entry for `cert` in `format`, checked at the current time.
pub fn entry_for(cert: &Certificate, format: Format, opts: &EntryOptions) -> Result<Map<String, Value>> {
    entry_for_at(cert, format, opts, dates::now())
}

/// [`entry_for`] at a given time (for tests and for rotation planned ahead).
pub fn entry_for_at(
    cert: &Certificate,
    format: Format,
    opts: &EntryOptions,
    now: OffsetDateTime,
) -> Result<Map<String, Value>> {
    cert.ensure_usable(&Input::Cert.to_string(), now)?;
    let start = opts.start.unwrap_or(cert.not_before());
    let end = opts.end.unwrap_or(cert.not_after());
    let validity = format!("{} to {}", dates::format(cert.not_before()), dates::format(cert.not_after()));
    if start < cert.not_before() || start > cert.not_after() {
        return Err(Error::input(format!(
            "{} {}: outside the certificate's validity ({validity})",
            Input::Start,
            dates::format(start)
        ))
        .with_hint(format!(
            "Entra refuses entry dates outside the certificate's validity; leave {} out to use notBefore",
            Input::Start
        )));
    }
    if end > cert.not_after() || end < cert.not_before() {
        return Err(Error::input(format!(
            "{} {}: outside the certificate's validity ({validity})",
            Input::End,
            dates::format(end)
        ))
        .with_hint(format!(
            "Entra refuses entry dates outside the certificate's validity; leave {} out to use notAfter",
            Input::End
        )));
    }
    if end <= start {
        return Err(Error::input(format!(
            "{} {} is not after {} {}",
            Input::End,
            dates::format(end),
            Input::Start,
            dates::format(start)
        ))
        .with_hint(format!("give {} later than {}", Input::End, Input::Start)));
    }
    let key_id = opts.key_id.unwrap_or_else(Uuid::new_v4).to_string();
    let s = |v: String| Value::String(v);
    // Field order as the portal and Graph return them (alphabetical), so an added entry looks
    // like its neighbours.
    let mut m = Map::new();
    let cki = match format {
        Format::MsGraph => cert.thumbprint().to_string(),
        Format::AadGraph => cert.custom_key_identifier().to_string(),
    };
    m.insert("customKeyIdentifier".into(), s(cki));
    match format {
        Format::MsGraph => {
            let name = opts.display_name.clone().unwrap_or_else(|| cert.subject().to_string());
            m.insert("displayName".into(), s(name));
            m.insert("endDateTime".into(), s(dates::format(end)));
            m.insert("key".into(), s(cert.value_b64()));
            m.insert("keyId".into(), s(key_id));
            m.insert("startDateTime".into(), s(dates::format(start)));
            m.insert("type".into(), s("AsymmetricX509Cert".into()));
            m.insert("usage".into(), s("Verify".into()));
        }
        Format::AadGraph => {
            if opts.display_name.is_some() {
                return Err(Error::input("displayName: the aad-graph (legacy) format has none")
                    .with_hint("leave the display name out, or build an ms-graph entry"));
            }
            m.insert("endDate".into(), s(dates::format(end)));
            m.insert("keyId".into(), s(key_id));
            m.insert("startDate".into(), s(dates::format(start)));
            m.insert("type".into(), s("AsymmetricX509Cert".into()));
            m.insert("usage".into(), s("Verify".into()));
            m.insert("value".into(), s(cert.value_b64()));
        }
    }
    Ok(m)
}
