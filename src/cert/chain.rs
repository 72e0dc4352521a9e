//! A CA-issued certificate with its chain, as a file lists it: the leaf first (the certificate
//! of the key that signs), then each certificate followed by the one that issued it. Entra
//! registers the leaf; a chain in the wrong order, or a leaf that is not the key's, would
//! register a certificate no one can sign for.

use super::{load_bytes, signer, Certificate, Signer};
use crate::secret::SecretString;
use crate::{Error, Result};

/// The certificates of a file in the order the file lists them (PEM), or as read (DER, PFX).
pub fn file_order(bytes: &[u8], password: Option<&SecretString>, origin: &str) -> Result<Vec<Certificate>> {
    let pem_certs: Vec<Certificate> = match pem::parse_many(bytes) {
        Ok(blocks) => blocks
            .iter()
            .filter(|b| matches!(b.tag(), "CERTIFICATE" | "X509 CERTIFICATE" | "TRUSTED CERTIFICATE"))
            .map(|b| Certificate::from_der(b.contents(), origin))
            .collect::<Result<_>>()?,
        Err(_) => Vec::new(),
    };
    if !pem_certs.is_empty() {
        return Ok(pem_certs);
    }
    Ok(load_bytes(bytes, password, origin)?.certs)
}

/// Checks that `certs` (file order) start with the certificate of `key` and that each one is
/// followed by its issuer (by name).
pub fn check(certs: &[Certificate], key: &dyn Signer, origin: &str) -> Result<()> {
    let Some(leaf) = certs.iter().position(|c| signer::matches(key, c)) else {
        return Err(Error::input(format!("{origin}: no certificate in the file is the one of {}", key.describe()))
            .with_hint("give the certificate the CA issued for this key (the request was made with it)"));
    };
    if leaf != 0 {
        return Err(Error::input(format!(
            "{origin}: the key's certificate ({}) is certificate {} of the file, not the first",
            certs[leaf].subject(),
            leaf + 1
        ))
        .with_hint("list the leaf first, then its issuer, then that one's issuer, up to the root"));
    }
    for (i, pair) in certs.windows(2).enumerate() {
        if pair[0].issuer_der() != pair[1].subject_der() {
            return Err(Error::input(format!(
                "{origin}: certificate {} ({}) is not the issuer of certificate {} (issued by {})",
                i + 2,
                pair[1].subject(),
                i + 1,
                pair[0].issuer()
            ))
            .with_hint("list the leaf first, then its issuer, then that one's issuer, up to the root"));
        }
    }
    Ok(())
}
