//! Distinguished names as text: printing a certificate's names unambiguously, and reading the
//! `--subject` of a new certificate.
//!
//! Names print as RFC 4514 strings: attribute names, escaping and order are what `openssl x509
//! -nameopt RFC2253` and Python cryptography's `rfc4514_string()` print, so the RDNs come last to
//! first (`CN=App, O=Contoso, C=FR` for a certificate encoded C, O, CN, as .NET and the Entra
//! portal also show it). Two presentation choices follow Windows and the portal: RDNs are
//! separated by `, ` rather than `,`, and non-ASCII characters print as themselves rather than as
//! `\XX` escapes. A `--subject` is read the same way, so the string keycred prints for a
//! certificate is the string that makes it.

use crate::wording::Input;
use crate::{Error, Result};
use rcgen::{DistinguishedName, DnType, DnValue};
use x509_parser::der_parser::asn1_rs::{Any, Tag, ToDer};
use x509_parser::x509::X509Name;

/// Attribute names, as OpenSSL (and RFC 4514 for the ones it lists) prints them.
const NAMES: &[(&str, &str)] = &[
    ("2.5.4.3", "CN"),
    ("2.5.4.6", "C"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.9", "street"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.4", "SN"),
    ("2.5.4.5", "serialNumber"),
    ("2.5.4.12", "title"),
    ("2.5.4.17", "postalCode"),
    ("2.5.4.42", "GN"),
    ("2.5.4.43", "initials"),
    ("2.5.4.44", "generationQualifier"),
    ("2.5.4.46", "dnQualifier"),
    ("2.5.4.65", "pseudonym"),
    ("2.5.4.97", "organizationIdentifier"),
    ("0.9.2342.19200300.100.1.1", "UID"),
    ("0.9.2342.19200300.100.1.25", "DC"),
    ("1.2.840.113549.1.9.1", "emailAddress"),
];

/// `CN=App, O=Contoso\, Inc., C=FR`: RFC 4514 names, escaping and order (RFC 4514 2.1: the
/// last RDN of the encoded sequence comes first).
pub fn format(name: &X509Name<'_>) -> String {
    let rdns: Vec<_> = name.iter().collect();
    rdns.iter()
        .rev()
        .map(|rdn| {
            rdn.iter()
                .map(|atv| {
                    let oid = atv.attr_type().to_id_string();
                    match NAMES.iter().find(|(o, _)| *o == oid) {
                        Some((_, short)) => format!("{short}={}", value(atv.attr_value())),
                        // RFC 4514 2.3/2.4: an unnamed type prints as its OID, its value as hex DER.
                        None => format!("{oid}={}", hex_der(atv.attr_value())),
                    }
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn hex_der(v: &Any<'_>) -> String {
    let der = v.to_der_vec().unwrap_or_default();
    format!("#{}", der.iter().map(|b| format!("{b:02X}")).collect::<String>())
}

fn value(v: &Any<'_>) -> String {
    let text = match v.tag() {
        Tag::Utf8String
        | Tag::PrintableString
        | Tag::Ia5String
        | Tag::T61String
        | Tag::VisibleString
        | Tag::NumericString
        | Tag::GeneralString
        | Tag::GraphicString
        | Tag::VideotexString => std::str::from_utf8(v.data).ok().map(str::to_string),
        Tag::BmpString if v.data.len().is_multiple_of(2) => {
            String::from_utf16(&v.data.chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect::<Vec<_>>()).ok()
        }
        Tag::UniversalString if v.data.len().is_multiple_of(4) => v
            .data
            .chunks(4)
            .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
            .collect::<Option<String>>(),
        _ => None,
    };
    match text {
        Some(t) => escape(&t),
        None => hex_der(v),
    }
}

/// RFC 4514 2.4: `"+,;<>\` always, `#` and space at the start, space at the end; control
/// characters as `\XX` (as OpenSSL does).
pub fn escape(v: &str) -> String {
    let n = v.chars().count();
    let mut out = String::with_capacity(v.len());
    for (i, c) in v.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == n - 1 => out.push_str("\\ "),
            c if c.is_ascii_control() => out.push_str(&format!("\\{:02X}", c as u8)),
            c => out.push(c),
        }
    }
    out
}

/// Parses a `--subject` such as `CN=MyCompanyName MyAppName Cert, O=Contoso, C=FR`: RFC 4514
/// style, `,` (or `;`) between attributes, values escaped (`O=Contoso\, Inc.`, `\2C`) or quoted
/// (`O="Contoso, Inc."`). As RFC 4514 2.1 orders a string, the first attribute is the last RDN
/// encoded: `CN=App, O=Contoso, C=FR` encodes C, then O, then CN, as openssl, .NET and
/// CertReq do. Country, serial number and DN
/// qualifier are PrintableString and domain components and e-mail addresses IA5String, as RFC
/// 5280 requires; lengths are held to RFC 5280's upper bounds.
pub fn parse(dn: &str) -> Result<DistinguishedName> {
    let bad = |why: &str| {
        Error::input(format!("{} '{dn}': {why}", Input::Subject))
            .with_hint("write the DN as TYPE=value pairs separated by commas, e.g. 'CN=My App Cert, O=Contoso, C=FR'; escape a comma in a value as \\, or quote the value: O=\"Contoso, Inc.\"")
    };
    let mut out = DistinguishedName::new();
    let mut seen = Vec::new();
    let mut pairs = split(dn).map_err(|why| bad(&why))?;
    pairs.reverse();
    for (k, v) in pairs {
        let upper = k.to_ascii_uppercase();
        if v.is_empty() {
            return Err(bad(&format!("{k} has an empty value")));
        }
        if seen.contains(&upper) {
            return Err(bad(&format!("{k} appears twice; keycred writes each attribute type once")));
        }
        seen.push(upper.clone());
        let (ty, max, kind) = match upper.as_str() {
            "CN" => (DnType::CommonName, Some(64), Kind::Utf8),
            "O" => (DnType::OrganizationName, Some(64), Kind::Utf8),
            "OU" => (DnType::OrganizationalUnitName, Some(64), Kind::Utf8),
            "C" => {
                if v.chars().count() != 2 || !v.chars().all(|c| c.is_ascii_alphabetic()) {
                    return Err(bad("C must be a two-letter country code (ISO 3166), e.g. C=FR"));
                }
                (DnType::CountryName, None, Kind::Printable)
            }
            "L" => (DnType::LocalityName, Some(128), Kind::Utf8),
            "ST" | "S" => (DnType::StateOrProvinceName, Some(128), Kind::Utf8),
            "SERIALNUMBER" => (DnType::CustomDnType(vec![2, 5, 4, 5]), Some(64), Kind::Printable),
            "DNQUALIFIER" => (DnType::CustomDnType(vec![2, 5, 4, 46]), None, Kind::Printable),
            "DC" => (DnType::CustomDnType(vec![0, 9, 2342, 19200300, 100, 1, 25]), None, Kind::Ia5),
            "E" | "EMAILADDRESS" => (DnType::CustomDnType(vec![1, 2, 840, 113549, 1, 9, 1]), Some(255), Kind::Ia5),
            other => {
                return Err(bad(&format!(
                    "unknown attribute type '{other}' (known: CN, O, OU, C, L, ST, DC, E, serialNumber, dnQualifier)"
                )))
            }
        };
        let len = v.chars().count();
        if let Some(max) = max.filter(|m| len > *m) {
            return Err(bad(&format!("{k} is {len} characters long; RFC 5280 allows at most {max}")));
        }
        let value = match kind {
            Kind::Utf8 => DnValue::Utf8String(v),
            Kind::Printable => DnValue::PrintableString(v.as_str().try_into().map_err(|_| {
                bad(&format!("{k} may only hold letters, digits, spaces and '()+,-./:=? (an ASN.1 PrintableString)"))
            })?),
            Kind::Ia5 => DnValue::Ia5String(
                v.as_str().try_into().map_err(|_| bad(&format!("{k} may only hold ASCII characters")))?,
            ),
        };
        out.push(ty, value);
    }
    Ok(out)
}

enum Kind {
    Utf8,
    Printable,
    Ia5,
}

/// Splits a DN string into (type, unescaped value) pairs.
fn split(dn: &str) -> std::result::Result<Vec<(String, String)>, String> {
    let s = dn.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < s.len() && s[*i] == b' ' {
            *i += 1;
        }
    };
    loop {
        skip_ws(&mut i);
        let start = i;
        while i < s.len() && !matches!(s[i], b'=' | b',' | b';' | b'+') {
            i += 1;
        }
        let key = dn[start..i].trim().to_string();
        if i >= s.len() || s[i] != b'=' {
            return Err(if key.is_empty() { "an attribute is missing".into() } else { format!("'{key}' has no '='") });
        }
        if key.is_empty() {
            return Err("an attribute type is missing before '='".into());
        }
        i += 1;
        skip_ws(&mut i);
        let mut val: Vec<u8> = Vec::new();
        // Length of the value without unescaped trailing spaces.
        let mut keep = 0;
        if i < s.len() && s[i] == b'"' {
            i += 1;
            loop {
                match s.get(i) {
                    None => return Err(format!("the quoted value of {key} has no closing quote")),
                    Some(b'"') => break,
                    Some(b'\\') => i = unescape(s, i, &mut val).ok_or("a value ends with a lone backslash")?,
                    Some(&c) => {
                        val.push(c);
                        i += 1;
                    }
                }
            }
            i += 1;
            keep = val.len();
            skip_ws(&mut i);
            if i < s.len() && !matches!(s[i], b',' | b';' | b'+') {
                return Err(format!("unexpected text after the quoted value of {key}"));
            }
        } else {
            while i < s.len() && !matches!(s[i], b',' | b';' | b'+') {
                if s[i] == b'\\' {
                    i = unescape(s, i, &mut val).ok_or("a value ends with a lone backslash")?;
                    keep = val.len();
                } else {
                    val.push(s[i]);
                    if s[i] != b' ' {
                        keep = val.len();
                    }
                    i += 1;
                }
            }
        }
        val.truncate(keep);
        let val =
            String::from_utf8(val).map_err(|_| format!("the value of {key} is not valid UTF-8 once unescaped"))?;
        out.push((key, val));
        match s.get(i) {
            None => return Ok(out),
            Some(b'+') => {
                return Err("multi-valued RDNs ('+') are not supported; escape a plus sign in a value as \\+".into())
            }
            Some(_) => i += 1,
        }
    }
}

/// Reads the escape at `s[i] == '\\'` into `val`: `\XX` (hex byte) or `\c`. Returns the index
/// after it, or `None` for a backslash at the end.
fn unescape(s: &[u8], i: usize, val: &mut Vec<u8>) -> Option<usize> {
    let hex = |b: u8| (b as char).to_digit(16);
    match (s.get(i + 1), s.get(i + 2)) {
        (Some(&a), Some(&b)) if hex(a).is_some() && hex(b).is_some() => {
            val.push((hex(a)? * 16 + hex(b)?) as u8);
            Some(i + 3)
        }
        (Some(&c), _) => {
            val.push(c);
            Some(i + 2)
        }
        (None, _) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(dn: &str) -> Vec<(String, String)> {
        split(dn).unwrap()
    }

    #[test]
    fn split_handles_escapes_quotes_and_spaces() {
        let p = |k: &str, v: &str| (k.to_string(), v.to_string());
        assert_eq!(pairs("CN=a\\, b"), vec![p("CN", "a, b")]);
        assert_eq!(
            pairs("CN=App, O=\"Contoso, Inc.\", C=FR"),
            vec![p("CN", "App"), p("O", "Contoso, Inc."), p("C", "FR")]
        );
        assert_eq!(pairs("O=Contoso\\2C Inc."), vec![p("O", "Contoso, Inc.")]);
        assert_eq!(pairs(" CN = x ; O=y "), vec![p("CN", "x"), p("O", "y")]);
        assert_eq!(pairs("CN=\\ padded\\ "), vec![p("CN", " padded ")]);
        assert_eq!(pairs("CN=say \\\"hi\\\""), vec![p("CN", "say \"hi\"")]);
        assert_eq!(pairs("CN=caf\\C3\\A9"), vec![p("CN", "café")]);
        assert!(split("CN=a+O=b").unwrap_err().contains("multi-valued"));
        assert!(split("CN=\"open").unwrap_err().contains("closing quote"));
        assert!(split("CN=x\\").unwrap_err().contains("backslash"));
        assert!(split("CN=\"a\" b").unwrap_err().contains("after the quoted"));
    }

    #[test]
    fn parse_checks_types_bounds_and_string_kinds() {
        assert!(parse("CN=MyCompanyName MyAppName Cert, O=Contoso, C=FR").is_ok());
        assert!(parse("no equals").is_err());
        assert!(parse("CN=").is_err());
        assert!(parse("XX=1").is_err());
        assert!(parse("C=France").is_err());
        assert!(parse("C=F1").is_err());
        assert!(parse(&format!("CN={}", "a".repeat(64))).is_ok());
        let e = parse(&format!("CN={}", "a".repeat(65))).unwrap_err();
        assert!(e.to_string().contains("65 characters long; RFC 5280 allows at most 64"), "{e}");
        assert!(parse(&format!("L={}", "a".repeat(129))).is_err());
        assert!(parse("serialNumber=AB-12").is_ok());
        assert!(parse("serialNumber=a_b").unwrap_err().to_string().contains("PrintableString"));
        assert!(parse("E=café@example.com").is_err());
        assert!(parse("DC=contoso, DC=com").unwrap_err().to_string().contains("twice"));
        let dn = parse("C=FR").unwrap();
        assert!(matches!(dn.get(&DnType::CountryName), Some(DnValue::PrintableString(_))));
    }

    #[test]
    fn parse_encodes_the_last_attribute_first() {
        let dn = parse("CN=App, O=Contoso, C=FR").unwrap();
        let order: Vec<_> = dn.iter().map(|(t, _)| t.clone()).collect();
        assert_eq!(order, vec![DnType::CountryName, DnType::OrganizationName, DnType::CommonName]);
    }

    #[test]
    fn escape_follows_rfc_4514() {
        assert_eq!(escape("Contoso, Inc."), "Contoso\\, Inc.");
        assert_eq!(escape("a+b;c<d>e\"f\\g"), "a\\+b\\;c\\<d\\>e\\\"f\\\\g");
        assert_eq!(escape("#1 "), "\\#1\\ ");
        assert_eq!(escape(" x#"), "\\ x#");
        assert_eq!(escape("tab\there"), "tab\\09here");
        assert_eq!(escape("café"), "café");
    }
}
