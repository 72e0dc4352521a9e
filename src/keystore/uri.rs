//! PKCS#11 URIs (RFC 7512): `pkcs11:token=T;object=app1;id=%01%02?module-path=/usr/lib/x.so`.
//!
//! The path (`;`-separated) names the token and the object, the query (`&`-separated) how to
//! reach it: the module and where the PIN is. Every value may be percent-encoded; `id` is bytes.
//! Unknown attributes are refused rather than ignored: a misspelt `objet=` would otherwise match
//! some other key on the token. `pin-value` (a PIN inside the URI) is refused too: URIs travel in
//! command lines, shell histories and logs, where a PIN must never be.

use crate::{Error, Result};
use std::fmt;
use std::path::PathBuf;

/// The object type an RFC 7512 `type=` attribute names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectType {
    /// `type=private`: a private key.
    Private,
    /// `type=public`: a public key.
    Public,
    /// `type=cert`: a certificate.
    Cert,
    /// `type=data` or `type=secret-key`: nothing keycred signs with.
    Other,
}

/// A parsed `pkcs11:` URI. Fields are `None` when the URI leaves them out.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Pkcs11Uri {
    /// `token`: the token's label (CKA_LABEL of the token, `softhsm2-util --label`).
    pub token: Option<String>,
    /// `manufacturer`: the token's manufacturer id.
    pub manufacturer: Option<String>,
    /// `serial`: the token's serial number.
    pub serial: Option<String>,
    /// `model`: the token's model.
    pub model: Option<String>,
    /// `slot-id`: the slot's number.
    pub slot_id: Option<u64>,
    /// `slot-description`.
    pub slot_description: Option<String>,
    /// `slot-manufacturer`.
    pub slot_manufacturer: Option<String>,
    /// `object`: the object's label (CKA_LABEL).
    pub object: Option<String>,
    /// `id`: the object's CKA_ID, as bytes.
    pub id: Option<Vec<u8>>,
    /// `type`.
    pub object_type: Option<ObjectType>,
    /// `module-path`: the PKCS#11 module (shared library) to load.
    pub module_path: Option<PathBuf>,
    /// `module-name`: a module's name, without path (kept for messages; keycred needs a path).
    pub module_name: Option<String>,
    /// `pin-source`: a `file:` URI of a file holding the PIN.
    pub pin_source: Option<PathBuf>,
}

/// The URI scheme, with its colon.
pub const SCHEME: &str = "pkcs11:";

/// Whether `spec` is a PKCS#11 URI (the scheme is case-insensitive, as RFC 3986 says).
pub fn is_pkcs11(spec: &str) -> bool {
    spec.get(..SCHEME.len()).is_some_and(|s| s.eq_ignore_ascii_case(SCHEME))
}

impl Pkcs11Uri {
    /// Parses a `pkcs11:` URI. Errors name the URI (without its query) and the attribute.
    pub fn parse(spec: &str) -> Result<Self> {
        if !is_pkcs11(spec) {
            return Err(Error::input(format!("'{spec}' is not a PKCS#11 URI (it does not start with pkcs11:)")));
        }
        let rest = &spec[SCHEME.len()..];
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let shown = format!("{SCHEME}{path}");
        let mut uri = Pkcs11Uri::default();
        let mut seen = Vec::new();
        for (part, sep) in [(path, ';'), (query, '&')] {
            for attr in part.split(sep).filter(|a| !a.is_empty()) {
                let (name, value) = attr.split_once('=').ok_or_else(|| {
                    Error::input(format!("{shown}: '{attr}' is not an attribute (name=value)"))
                        .with_hint("write attributes as pkcs11:token=NAME;object=LABEL")
                })?;
                let name = name.to_ascii_lowercase();
                if seen.contains(&name) {
                    return Err(Error::input(format!("{shown}: the attribute '{name}' is given twice")));
                }
                uri.set(&name, value, sep == '?' || sep == '&', &shown)?;
                seen.push(name);
            }
        }
        Ok(uri)
    }

    /// Sets one attribute; `query` tells whether it came after `?`.
    fn set(&mut self, name: &str, raw: &str, query: bool, shown: &str) -> Result<()> {
        let text = || decode_text(raw, name, shown);
        let misplaced = |want_query: bool| -> Result<()> {
            if want_query != query {
                let (is, goes) = if want_query { ("path", "query (after ?)") } else { ("query", "path (before ?)") };
                return Err(Error::input(format!(
                    "{shown}: '{name}' is in the URI's {is}; RFC 7512 puts it in the {goes}"
                )));
            }
            Ok(())
        };
        match name {
            "token"
            | "manufacturer"
            | "serial"
            | "model"
            | "object"
            | "id"
            | "type"
            | "slot-id"
            | "slot-description"
            | "slot-manufacturer"
            | "library-manufacturer"
            | "library-description"
            | "library-version" => misplaced(false)?,
            "module-path" | "module-name" | "pin-source" | "pin-value" => misplaced(true)?,
            _ => {}
        }
        match name {
            "token" => self.token = Some(text()?),
            "manufacturer" => self.manufacturer = Some(text()?),
            "serial" => self.serial = Some(text()?),
            "model" => self.model = Some(text()?),
            "object" => self.object = Some(text()?),
            "id" => self.id = Some(percent_decode(raw, name, shown)?),
            "slot-description" => self.slot_description = Some(text()?),
            "slot-manufacturer" => self.slot_manufacturer = Some(text()?),
            "slot-id" => {
                let t = text()?;
                self.slot_id = Some(t.parse().map_err(|_| {
                    Error::input(format!("{shown}: slot-id '{t}' is not a number (a slot number in decimal)"))
                })?)
            }
            "type" => {
                self.object_type = Some(match text()?.as_str() {
                    "private" => ObjectType::Private,
                    "public" => ObjectType::Public,
                    "cert" => ObjectType::Cert,
                    "data" | "secret-key" => ObjectType::Other,
                    other => {
                        return Err(Error::input(format!("{shown}: type '{other}' is not an RFC 7512 object type"))
                            .with_hint("use type=private (or leave type out)"))
                    }
                })
            }
            // Library attributes describe the module, which keycred loads by path: accepted, checked
            // by the module itself being the one given.
            "library-manufacturer" | "library-description" | "library-version" => {}
            "module-path" => self.module_path = Some(PathBuf::from(text()?)),
            "module-name" => self.module_name = Some(text()?),
            "pin-source" => self.pin_source = Some(pin_file(&text()?, shown)?),
            "pin-value" => {
                return Err(Error::input(format!("{shown}: a PIN inside the URI (pin-value) is refused"))
                    .with_hint("URIs end up in shell histories and process lists: give the PIN in a file (pin-source=file:/path) or in an environment variable"))
            }
            other => {
                return Err(Error::input(format!("{shown}: unknown attribute '{other}'")).with_hint(
                    "RFC 7512 attributes: token, manufacturer, serial, model, object, id, type, slot-id; \
                     after ?: module-path, pin-source",
                ))
            }
        }
        Ok(())
    }

    /// The URI without its query (no module path, no PIN source): how keys are named in messages.
    pub fn key_name(&self) -> String {
        let mut parts = Vec::new();
        let mut push = |name: &str, v: &Option<String>| {
            if let Some(v) = v {
                parts.push(format!("{name}={}", encode(v.as_bytes())));
            }
        };
        push("token", &self.token);
        push("manufacturer", &self.manufacturer);
        push("serial", &self.serial);
        push("model", &self.model);
        push("object", &self.object);
        if let Some(id) = &self.id {
            parts.push(format!("id={}", id.iter().map(|b| format!("%{b:02X}")).collect::<String>()));
        }
        if let Some(s) = self.slot_id {
            parts.push(format!("slot-id={s}"));
        }
        format!("{SCHEME}{}", parts.join(";"))
    }

    /// Whether the URI names an object (a label or an id), not only a token.
    pub fn names_object(&self) -> bool {
        self.object.is_some() || self.id.is_some()
    }
}

impl fmt::Debug for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pkcs11Uri({})", self.key_name())
    }
}

impl fmt::Display for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key_name())
    }
}

/// A `pin-source` value: a `file:` URI (`file:/p`, `file:///p`, `file://localhost/p`).
fn pin_file(v: &str, shown: &str) -> Result<PathBuf> {
    let path = v
        .strip_prefix("file://localhost/")
        .map(|p| format!("/{p}"))
        .or_else(|| v.strip_prefix("file://").map(str::to_string))
        .or_else(|| v.strip_prefix("file:").map(str::to_string));
    match path {
        Some(p) if !p.is_empty() => Ok(PathBuf::from(p)),
        _ => Err(Error::input(format!("{shown}: pin-source '{v}' is not a file: URI"))
            .with_hint("give the file holding the PIN as pin-source=file:/path/to/pin")),
    }
}

/// Percent-decodes `raw` to UTF-8 text.
fn decode_text(raw: &str, name: &str, shown: &str) -> Result<String> {
    String::from_utf8(percent_decode(raw, name, shown)?)
        .map_err(|_| Error::input(format!("{shown}: the value of '{name}' is not UTF-8 text once decoded")))
}

/// Percent-decodes `raw` to bytes; a `%` not followed by two hex digits is refused.
fn percent_decode(raw: &str, name: &str, shown: &str) -> Result<Vec<u8>> {
    let b = raw.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            let byte = hex.and_then(|h| u8::from_str_radix(h, 16).ok()).ok_or_else(|| {
                Error::input(format!("{shown}: bad percent-encoding in '{name}'"))
                    .with_hint("each % must be followed by two hex digits, e.g. id=%01%A2")
            })?;
            out.push(byte);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// Percent-encodes what RFC 7512 does not allow unencoded in a path value.
fn encode(v: &[u8]) -> String {
    v.iter()
        .map(|&b| match b {
            b'a'..=b'z'
            | b'A'..=b'Z'
            | b'0'..=b'9'
            | b'-'
            | b'.'
            | b'_'
            | b'~'
            | b':'
            | b'['
            | b']'
            | b'@'
            | b'!'
            | b'$'
            | b'\''
            | b'('
            | b')'
            | b'*'
            | b'+'
            | b','
            | b'&' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_and_query_attributes_are_read_and_decoded() {
        let u = Pkcs11Uri::parse(
            "pkcs11:token=My%20Token;object=app1;id=%01%a2;type=private?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:///run/pin",
        )
        .unwrap();
        assert_eq!(u.token.as_deref(), Some("My Token"));
        assert_eq!(u.object.as_deref(), Some("app1"));
        assert_eq!(u.id.as_deref(), Some(&[0x01, 0xa2][..]));
        assert_eq!(u.object_type, Some(ObjectType::Private));
        assert_eq!(u.module_path, Some(PathBuf::from("/usr/lib/softhsm/libsofthsm2.so")));
        assert_eq!(u.pin_source, Some(PathBuf::from("/run/pin")));
        assert_eq!(u.key_name(), "pkcs11:token=My%20Token;object=app1;id=%01%A2");
        assert_eq!(Pkcs11Uri::parse("PKCS11:object=x?pin-source=file:/p").unwrap().pin_source, Some("/p".into()));
    }

    #[test]
    fn a_pin_in_the_uri_unknown_misplaced_or_repeated_attributes_are_refused() {
        for (bad, says) in [
            ("pkcs11:token=T?pin-value=1234", "pin-value"),
            ("pkcs11:token=T;objet=app1", "unknown attribute 'objet'"),
            ("pkcs11:token=T;module-path=/x.so", "query"),
            ("pkcs11:token=T?object=o", "path"),
            ("pkcs11:token=T;token=U", "twice"),
            ("pkcs11:id=%G1", "percent"),
            ("pkcs11:token", "not an attribute"),
            ("pkcs11:object=o?pin-source=https://x/pin", "file:"),
            ("pkcs11:slot-id=one", "not a number"),
            ("file.key", "not a PKCS#11 URI"),
        ] {
            let e = Pkcs11Uri::parse(bad).unwrap_err();
            assert!(e.to_string().contains(says), "{bad}: {e}");
            assert_eq!(e.exit_code(), 2);
            assert!(!e.to_string().contains("1234"), "{e}");
        }
    }
}
