//! Loading certificates and keys from what users have: PEM (`.cer`, `.crt`, `.pem`, key+cert
//! bundles), DER, and PKCS#12 (`.pfx`, `.p12`), self-signed or CA-issued.
//!
//! The format is decided by content, not by extension: portals and tools name files freely.

use super::{Certificate, PrivateKey};
use crate::secret::SecretString;
use crate::{fsio, Error, Result};
use std::path::{Path, PathBuf};

/// Everything one file holds.
#[derive(Debug)]
pub struct LoadedFile {
    /// Certificates, leaf first.
    pub certs: Vec<Certificate>,
    /// The private key, when the file has one.
    pub key: Option<PrivateKey>,
}

/// A certificate with its private key, checked to match.
#[derive(Debug)]
pub struct LoadedCredential {
    /// The leaf certificate.
    pub cert: Certificate,
    /// The rest of the chain, if any (for `x5c`).
    pub chain: Vec<Certificate>,
    /// The private key.
    pub key: PrivateKey,
    /// Where the certificate came from.
    pub cert_path: PathBuf,
}

/// Reads a file of any supported format. `password` decrypts a PFX or an encrypted key.
pub fn load_file(path: &Path, password: Option<&SecretString>) -> Result<LoadedFile> {
    let bytes = fsio::read(path)?;
    load_bytes(&bytes, password, &path.display().to_string())
}

/// Same as [`load_file`], from bytes; `origin` names the input in errors.
pub fn load_bytes(bytes: &[u8], password: Option<&SecretString>, origin: &str) -> Result<LoadedFile> {
    if bytes.is_empty() {
        return Err(Error::input(format!("{origin}: the file is empty")));
    }
    if let Some(start) = find(bytes, b"-----BEGIN ") {
        return load_pem(&bytes[start..], password, origin);
    }
    if bytes[0] != 0x30 {
        return Err(Error::input(format!("{origin}: not a certificate (neither PEM, DER nor PFX)"))
            .with_hint("give a PEM (-----BEGIN CERTIFICATE-----), DER or PFX file"));
    }
    if looks_like_pfx(bytes) {
        return load_pfx(bytes, password, origin);
    }
    let cert = Certificate::from_der(bytes, origin)?;
    Ok(LoadedFile { certs: vec![cert], key: None })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A PFX is `SEQUENCE { INTEGER 3, ... }`; a certificate is `SEQUENCE { SEQUENCE ... }`.
fn looks_like_pfx(b: &[u8]) -> bool {
    let hdr = match b.get(1) {
        Some(l) if *l < 0x80 => 2,
        Some(l) => 2 + (*l & 0x7f) as usize,
        None => return false,
    };
    b.get(hdr) == Some(&0x02)
}

fn load_pem(bytes: &[u8], password: Option<&SecretString>, origin: &str) -> Result<LoadedFile> {
    let blocks = pem::parse_many(bytes).map_err(|e| {
        Error::input(format!("{origin}: malformed PEM ({e})")).with_hint("check that the file was not truncated")
    })?;
    if blocks.is_empty() {
        return Err(Error::input(format!("{origin}: malformed PEM (no complete block)"))
            .with_hint("check that the file was not truncated"));
    }
    let mut certs = Vec::new();
    let mut key = None;
    for block in &blocks {
        match block.tag() {
            "CERTIFICATE" | "X509 CERTIFICATE" | "TRUSTED CERTIFICATE" => {
                certs.push(Certificate::from_der(block.contents(), origin)?)
            }
            t if t.ends_with("PRIVATE KEY") => {
                if key.is_some() {
                    return Err(Error::input(format!("{origin}: more than one private key in the file")));
                }
                key = Some(PrivateKey::from_pem_block(block, password, origin)?);
            }
            _ => {}
        }
    }
    Ok(LoadedFile { certs, key })
}

fn load_pfx(bytes: &[u8], password: Option<&SecretString>, origin: &str) -> Result<LoadedFile> {
    let pw = password.map(|p| p.expose()).unwrap_or("");
    let store = p12_keystore::KeyStore::from_pkcs12(bytes, pw).map_err(|e| match e {
        p12_keystore::error::Error::MacError(_) if password.is_none() => {
            Error::input(format!("{origin}: the PFX is password-protected and no password was given"))
                .with_hint("name the variable holding the password with --password-env VAR")
        }
        p12_keystore::error::Error::MacError(_) | p12_keystore::error::Error::UnpadError => {
            Error::input(format!("{origin}: wrong PFX password"))
                .with_hint("check the variable named by --password-env")
        }
        p12_keystore::error::Error::UnsupportedEncryptionScheme
        | p12_keystore::error::Error::UnsupportedMacAlgorithm => {
            Error::input(format!("{origin}: the PFX uses an encryption keycred cannot read ({e})")).with_hint(
                "re-export it with AES-256: openssl pkcs12 -in old.pfx -nodes | openssl pkcs12 -export -out new.pfx",
            )
        }
        other => Error::input(format!("{origin}: not a readable PFX ({other})")),
    })?;
    let mut certs = Vec::new();
    let mut key = None;
    if let Some((_, chain)) = store.private_key_chain() {
        key = Some(PrivateKey::from_pkcs8_der(chain.key(), origin)?);
        for c in chain.chain() {
            certs.push(Certificate::from_der(c.as_der(), origin)?);
        }
    }
    for (_, entry) in store.entries() {
        if let p12_keystore::KeyStoreEntry::Certificate(c) = entry {
            certs.push(Certificate::from_der(c.as_der(), origin)?);
        }
    }
    if certs.is_empty() {
        return Err(Error::input(format!("{origin}: the PFX holds no certificate")));
    }
    Ok(LoadedFile { certs, key })
}

/// Loads a certificate and its private key: from one file holding both (PEM bundle or PFX), or
/// from a certificate file and a key file. The key must match the certificate.
pub fn load_credential(
    cert_path: &Path,
    key_path: Option<&Path>,
    password: Option<&SecretString>,
) -> Result<LoadedCredential> {
    let loaded = load_file(cert_path, password)?;
    let mut certs = loaded.certs.into_iter();
    let cert = certs.next().ok_or_else(|| {
        Error::input(format!("{}: no certificate in the file", cert_path.display()))
            .with_hint("give the certificate (.cer/.pem) with --cert, and the key with --key")
    })?;
    let chain: Vec<Certificate> = certs.collect();
    let (key, key_origin) = match key_path {
        Some(kp) => {
            let k = load_file_key(kp, password)?;
            (k, kp.display().to_string())
        }
        None => match loaded.key {
            Some(k) => (k, cert_path.display().to_string()),
            None => {
                return Err(Error::input(format!(
                    "{}: the file holds a certificate but no private key",
                    cert_path.display()
                ))
                .with_hint("add --key KEY, or give a PEM bundle (key + cert) or a PFX"))
            }
        },
    };
    if !key.matches(&cert) {
        return Err(Error::input(format!(
            "the private key in {key_origin} does not match the certificate in {} (thumbprint {})",
            cert_path.display(),
            cert.thumbprint()
        ))
        .with_hint("give the key that was generated with this certificate"));
    }
    Ok(LoadedCredential { cert, chain, key, cert_path: cert_path.to_path_buf() })
}

fn load_file_key(path: &Path, password: Option<&SecretString>) -> Result<PrivateKey> {
    let bytes = fsio::read(path)?;
    let origin = path.display().to_string();
    if find(&bytes, b"-----BEGIN ").is_some() {
        let f = load_pem(&bytes, password, &origin)?;
        return f.key.ok_or_else(|| Error::input(format!("{origin}: no private key in the file")));
    }
    if looks_like_pfx(&bytes) {
        let f = load_pfx(&bytes, password, &origin)?;
        return f.key.ok_or_else(|| Error::input(format!("{origin}: no private key in the PFX")));
    }
    PrivateKey::from_pkcs8_der(&bytes, &origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_and_empty_are_refused_with_the_name() {
        let e = load_bytes(b"hello world", None, "x.cer").unwrap_err();
        assert!(e.to_string().starts_with("x.cer:"));
        assert_eq!(e.exit_code(), 2);
        assert!(load_bytes(b"", None, "e.cer").is_err());
        let e = load_bytes(b"-----BEGIN CERTIFICATE-----\nMIIB\n", None, "t.pem").unwrap_err();
        assert!(e.to_string().contains("t.pem"));
    }
}
