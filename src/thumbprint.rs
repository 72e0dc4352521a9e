//! Certificate digests in every form Entra and its tools use, and parsing of any of them back.
//!
//! Users paste thumbprints from the portal (hex), from PowerShell (hex, no colons), from openssl
//! (`AB:CD:...`), from a manifest (`customKeyIdentifier`, standard base64) or from a JWT header
//! (`x5t`, base64url). A hex string read as base64 silently becomes another value, so parsing
//! tries the forms in an order that cannot confuse them: 40 hex digits are hex.

use crate::{Error, Result};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use sha1::{Digest, Sha1};
use sha2::Sha256;

/// SHA-1 of the DER certificate.
pub fn sha1(der: &[u8]) -> [u8; 20] {
    Sha1::digest(der).into()
}

/// SHA-256 of the DER certificate.
pub fn sha256(der: &[u8]) -> [u8; 32] {
    Sha256::digest(der).into()
}

/// Upper-case hex, as the portal and `openssl x509 -fingerprint` show digests.
pub fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// Standard base64 with padding (`customKeyIdentifier`, `value`/`key`).
pub fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// base64url without padding (`x5t`, `x5t#S256`, JWT segments).
pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Parses a SHA-1 thumbprint given in any form: hex (any case, with or without `:` or spaces),
/// standard base64 (with or without padding) or base64url.
pub fn parse_sha1(input: &str) -> Result<[u8; 20]> {
    let s = input.trim();
    let hex: String = s.chars().filter(|c| !matches!(c, ':' | ' ' | '-')).collect();
    if hex.len() == 40 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        let mut out = [0u8; 20];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("checked hex");
        }
        return Ok(out);
    }
    let unpadded = s.trim_end_matches('=');
    let decoded = if unpadded.contains(['-', '_']) {
        URL_SAFE_NO_PAD.decode(unpadded)
    } else {
        base64::engine::general_purpose::STANDARD_NO_PAD.decode(unpadded)
    };
    match decoded {
        Ok(bytes) if bytes.len() == 20 => Ok(bytes.try_into().expect("checked length")),
        _ => Err(Error::input(format!("'{s}' is not a SHA-1 thumbprint")).with_hint(
            "give 40 hex digits (as the portal shows), or the 28-character base64 customKeyIdentifier, or the x5t",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_parses_to_the_same_digest() {
        // The x5t sample of the Office 365 Management API's setup document.
        let x5t = "YyfshJC3rPQ-kpGo5dUaiY5t3iU";
        let d = parse_sha1(x5t).unwrap();
        let hex = hex_upper(&d);
        assert_eq!(hex, "6327EC8490B7ACF43E9291A8E5D51A898E6DDE25");
        assert_eq!(parse_sha1(&hex.to_lowercase()).unwrap(), d);
        let colons: Vec<String> = d.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(parse_sha1(&colons.join(":")).unwrap(), d);
        assert_eq!(parse_sha1(&b64(&d)).unwrap(), d);
        assert_eq!(b64url(&d), x5t);
        assert!(parse_sha1("not a thumbprint").is_err());
        assert!(parse_sha1("ABCD").is_err());
    }
}
