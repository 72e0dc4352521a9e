//! Loading certificates and keys from what users have: PEM (`.cer`, `.crt`, `.pem`, key+cert
//! bundles), DER, and PKCS#12 (`.pfx`, `.p12`), self-signed or CA-issued.
//!
//! The format is decided by content, not by extension: portals and tools name files freely.
//! Files that are not certificates (a lone key, PKCS#7, a CSR, legacy-encrypted PEM keys) get a
//! message saying what they are and how to convert them. Certificates never need the key's
//! password: a key that cannot be read is reported only to what signs.

use super::{pfx, Certificate, PrivateKey, Signer};
use crate::secret::SecretString;
use crate::wording::{Action, Input};
use crate::{fsio, Error, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Everything one file holds.
#[derive(Debug)]
pub struct LoadedFile {
    /// Certificates, leaf first, never empty: the one matching the file's private key, or else
    /// the one that issued none of the others; then the rest in file order.
    pub certs: Vec<Certificate>,
    /// The private key, when the file has one that could be read.
    pub key: Option<PrivateKey>,
    /// Why the file's private key could not be read (encrypted and no or the wrong password,
    /// legacy encryption, not RSA...). Reading the certificates does not need the key, so this
    /// is an error only for what signs.
    pub key_error: Option<Error>,
}

/// A certificate with its private key, checked to match: built only by [`LoadedCredential::new`]
/// or [`load_credential`], so a key that is not the certificate's never gets this far.
#[derive(Debug)]
#[non_exhaustive]
pub struct LoadedCredential {
    /// The leaf certificate.
    pub cert: Certificate,
    /// The rest of the chain, if any (for `x5c`).
    pub chain: Vec<Certificate>,
    /// What signs with the private key: a key read from a file, or a key that stays on a token
    /// or in a vault.
    pub key: Arc<dyn Signer>,
    /// Where the certificate came from.
    pub cert_path: PathBuf,
}

impl LoadedCredential {
    /// A credential from a certificate, its chain and its private key, refused when the key is
    /// not the certificate's. `cert_path` names where the certificate came from (or is written),
    /// for messages.
    pub fn new(cert: Certificate, chain: Vec<Certificate>, key: PrivateKey, cert_path: &Path) -> Result<Self> {
        Self::checked(cert, chain, Arc::new(key), cert_path, "the private key")
    }

    /// A credential whose key is held by `signer` (a token, a vault), refused when the signer's
    /// key is not the certificate's.
    pub fn with_signer(
        cert: Certificate,
        chain: Vec<Certificate>,
        signer: Arc<dyn Signer>,
        cert_path: &Path,
    ) -> Result<Self> {
        let name = signer.describe();
        Self::checked(cert, chain, signer, cert_path, &name)
    }

    /// [`LoadedCredential::new`], the refusal naming the key as `key_name`.
    fn checked(
        cert: Certificate,
        chain: Vec<Certificate>,
        key: Arc<dyn Signer>,
        cert_path: &Path,
        key_name: &str,
    ) -> Result<Self> {
        if !super::signer::matches(key.as_ref(), &cert) {
            return Err(Error::input(format!(
                "{key_name} does not match the certificate in {} (thumbprint {})",
                cert_path.display(),
                cert.thumbprint()
            ))
            .with_hint("give the key that was generated with this certificate"));
        }
        Ok(LoadedCredential { cert, chain, key, cert_path: cert_path.to_path_buf() })
    }
}

/// Reads a file of any supported format. `password` decrypts a PFX or an encrypted key; a key
/// that cannot be read is reported in [`LoadedFile::key_error`], not as a failure.
pub fn load_file(path: &Path, password: Option<&SecretString>) -> Result<LoadedFile> {
    let bytes = fsio::read_limited(path, fsio::MAX_CREDENTIAL_BYTES)?;
    load_bytes(&bytes, password, &path.display().to_string())
}

/// Same as [`load_file`], from bytes; `origin` names the input in errors.
pub fn load_bytes(bytes: &[u8], password: Option<&SecretString>, origin: &str) -> Result<LoadedFile> {
    let c = read_contents(bytes, password, origin)?;
    if c.certs.is_empty() {
        return Err(c.no_certificate(origin));
    }
    let (key, key_error) = match c.key {
        None => (None, None),
        Some(Ok(k)) => (Some(k), None),
        Some(Err(e)) => (None, Some(e)),
    };
    let certs = leaf_first(c.certs, key.as_ref());
    Ok(LoadedFile { certs, key, key_error })
}

/// What a file holds, before the leaf is chosen.
#[derive(Default)]
struct Contents {
    certs: Vec<Certificate>,
    /// A private key was found; `Err` when it could not be read.
    key: Option<Result<PrivateKey>>,
    /// What else the file was recognised as, for a precise "no certificate" message.
    other: Option<Other>,
}

enum Other {
    Pfx,
    Pkcs7,
    Csr,
}

impl Contents {
    fn no_certificate(&self, origin: &str) -> Error {
        match (&self.other, &self.key) {
            (Some(Other::Pkcs7), _) => {
                Error::input(format!("{origin}: a PKCS#7 (.p7b) file, which keycred does not read as a certificate"))
                    .with_hint(format!(
                        "extract the certificates as PEM: openssl pkcs7 -print_certs -in {origin} -out certs.pem"
                    ))
            }
            (Some(Other::Csr), _) => {
                Error::input(format!("{origin}: a certificate signing request, not a certificate")).with_hint(format!(
                    "give the certificate the CA issued for it, or create a self-signed one with {}",
                    Action::NewCertificate { key_size: None }
                ))
            }
            (Some(Other::Pfx), _) => Error::input(format!("{origin}: the PFX holds no certificate"))
                .with_hint(format!("inspect it with `openssl pkcs12 -in {origin} -info -nokeys`")),
            (None, Some(_)) => Error::input(format!("{origin}: no certificate in the file, only a private key"))
                .with_hint(format!(
                    "give the certificate (.cer), the key+cert .pem bundle or the .pfx; a key file is {}",
                    Input::Key
                )),
            (None, None) => Error::input(format!("{origin}: no certificate in the file"))
                .with_hint("give a PEM (-----BEGIN CERTIFICATE-----), DER or PFX file"),
        }
    }
}

fn read_contents(bytes: &[u8], password: Option<&SecretString>, origin: &str) -> Result<Contents> {
    if bytes.is_empty() {
        return Err(Error::input(format!("{origin}: the file is empty")));
    }
    if let Some(start) = find(bytes, b"-----BEGIN ") {
        return read_pem(&bytes[start..], password, origin);
    }
    if bytes[0] != 0x30 {
        return Err(Error::input(format!("{origin}: not a certificate (neither PEM, DER nor PFX)"))
            .with_hint("give a PEM (-----BEGIN CERTIFICATE-----), DER or PFX file"));
    }
    // DER: decided by which structure parses, since all of them start with a SEQUENCE.
    if looks_like_pfx(bytes) {
        return read_pfx(bytes, password, origin);
    }
    if let Some(key) = PrivateKey::from_der(bytes, password, origin) {
        return Ok(Contents { key: Some(key), ..Default::default() });
    }
    if is_pkcs7(bytes) {
        return Ok(Contents { other: Some(Other::Pkcs7), ..Default::default() });
    }
    let cert = Certificate::from_der(bytes, origin)?;
    Ok(Contents { certs: vec![cert], ..Default::default() })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A PFX is `SEQUENCE { INTEGER 3, ... }`; a PKCS#8 or PKCS#1 key is `SEQUENCE { INTEGER 0, ... }`
/// and a certificate `SEQUENCE { SEQUENCE ... }`.
fn looks_like_pfx(b: &[u8]) -> bool {
    let hdr = match b.get(1) {
        Some(l) if *l < 0x80 => 2,
        Some(l) => 2 + (*l & 0x7f) as usize,
        None => return false,
    };
    b.get(hdr..hdr + 3) == Some(&[0x02, 0x01, 0x03]) || (b.get(hdr) == Some(&0x02) && pfx::is_pfx(b))
}

/// `ContentInfo { contentType signedData, ... }`: what `.p7b`/`.p7c` files hold.
fn is_pkcs7(b: &[u8]) -> bool {
    use pkcs8::der::Decode;
    const SIGNED_DATA: pkcs8::ObjectIdentifier = pkcs8::ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
    cms::content_info::ContentInfo::from_der(b).is_ok_and(|ci| ci.content_type == SIGNED_DATA)
}

fn read_pem(bytes: &[u8], password: Option<&SecretString>, origin: &str) -> Result<Contents> {
    let blocks = pem::parse_many(bytes).map_err(|e| {
        Error::input(format!("{origin}: malformed PEM")).caused_by(e).with_hint("check that the file was not truncated")
    })?;
    if blocks.is_empty() {
        return Err(Error::input(format!("{origin}: malformed PEM (no complete block)"))
            .with_hint("check that the file was not truncated"));
    }
    let mut c = Contents::default();
    for block in &blocks {
        match block.tag() {
            "CERTIFICATE" | "X509 CERTIFICATE" | "TRUSTED CERTIFICATE" => {
                c.certs.push(Certificate::from_der(block.contents(), origin)?)
            }
            "PKCS7" => c.other = Some(Other::Pkcs7),
            "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST" => c.other = Some(Other::Csr),
            t if t.ends_with("PRIVATE KEY") => {
                if c.key.is_some() {
                    return Err(Error::input(format!("{origin}: more than one private key in the file"))
                        .with_hint("keep only the key of the certificate in the file"));
                }
                c.key = Some(PrivateKey::from_pem_block(block, password, origin));
            }
            _ => {}
        }
    }
    if !c.certs.is_empty() {
        c.other = None;
    }
    Ok(c)
}

fn read_pfx(bytes: &[u8], password: Option<&SecretString>, origin: &str) -> Result<Contents> {
    let p = pfx::read(bytes, password, origin)?;
    let certs = p.certs.iter().map(|der| Certificate::from_der(der, origin)).collect::<Result<Vec<_>>>()?;
    let keys: Vec<Result<PrivateKey>> = p.keys.iter().map(|k| PrivateKey::from_pkcs8_der(k.expose(), origin)).collect();
    // A PFX may carry several keys: the one of a certificate in it counts, else the first.
    let pos = keys.iter().position(|k| k.as_ref().is_ok_and(|k| certs.iter().any(|c| k.matches(c))));
    let key = match pos {
        Some(i) => keys.into_iter().nth(i),
        None => keys.into_iter().next(),
    };
    Ok(Contents { certs, key, other: Some(Other::Pfx) })
}

/// Puts the leaf first: the certificate of `key` when there is one, else the one that is the
/// issuer of no other certificate in the file (CA bundles come in any order).
fn leaf_first(mut certs: Vec<Certificate>, key: Option<&PrivateKey>) -> Vec<Certificate> {
    let by_key = key.and_then(|k| certs.iter().position(|c| k.matches(c)));
    let by_issuer = || {
        certs
            .iter()
            .enumerate()
            .position(|(i, c)| !certs.iter().enumerate().any(|(j, o)| j != i && o.issuer_der() == c.subject_der()))
    };
    let leaf = by_key.or_else(by_issuer).unwrap_or(0);
    let cert = certs.remove(leaf);
    certs.insert(0, cert);
    certs
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
    let cert = certs.next().ok_or_else(|| Error::internal("load_file returned no certificate"))?;
    let chain: Vec<Certificate> = certs.collect();
    let (key, key_origin) = match key_path {
        Some(kp) => {
            let k = load_key(kp, password)?;
            (k, kp.display().to_string())
        }
        None => match (loaded.key, loaded.key_error) {
            (Some(k), _) => (k, cert_path.display().to_string()),
            (None, Some(e)) => return Err(e),
            (None, None) => {
                return Err(Error::input(format!(
                    "{}: the file holds a certificate but no private key",
                    cert_path.display()
                ))
                .with_hint(format!("give {} too, or a PEM bundle (key + cert) or a PFX", Input::Key)))
            }
        },
    };
    LoadedCredential::checked(cert, chain, Arc::new(key), cert_path, &format!("the private key in {key_origin}"))
}

/// Reads the private key of a key file: PEM (PKCS#8, encrypted PKCS#8, PKCS#1), DER (the same)
/// or PFX.
pub fn load_key(path: &Path, password: Option<&SecretString>) -> Result<PrivateKey> {
    let bytes = fsio::read_limited(path, fsio::MAX_CREDENTIAL_BYTES)?;
    let origin = path.display().to_string();
    let c = read_contents(&bytes, password, &origin)?;
    match c.key {
        Some(key) => key,
        None if !c.certs.is_empty() => Err(Error::input(format!("{origin}: a certificate, not a private key"))
            .with_hint(format!("give the certificate as {} and its private key as {}", Input::Cert, Input::Key))),
        None => Err(Error::input(format!("{origin}: no private key in the file"))
            .with_hint(format!("give a PEM or DER private key (PKCS#8 or PKCS#1), or a PFX, as {}", Input::Key))),
    }
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
