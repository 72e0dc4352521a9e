//! PKCS#12 (PFX) export: key and certificate, AES-256-CBC with PBKDF2-HMAC-SHA256 and an
//! HMAC-SHA256 MAC, which OpenSSL 3 and .NET's `X509Certificate2` read.

use super::{Certificate, PrivateKey};
use crate::secret::SecretString;
use crate::{Error, Result};

/// Serialises `cert` and `key` as a PFX protected by `password`, with `alias` as friendly name.
pub fn export(cert: &Certificate, key: &PrivateKey, password: &SecretString, alias: &str) -> Result<Vec<u8>> {
    let c = p12_keystore::Certificate::from_der(cert.der())
        .map_err(|e| Error::internal(format!("cannot put the certificate in the PFX: {e}")))?;
    let local_key_id = cert.sha1();
    let chain = p12_keystore::PrivateKeyChain::new(key.pkcs8_der(), local_key_id, vec![c]);
    let mut store = p12_keystore::KeyStore::new();
    store.add_entry(alias, p12_keystore::KeyStoreEntry::PrivateKeyChain(chain));
    store
        .writer(password.expose())
        .encryption_algorithm(p12_keystore::EncryptionAlgorithm::PbeWithHmacSha256AndAes256)
        .mac_algorithm(p12_keystore::MacAlgorithm::HmacSha256)
        .encryption_iterations(10_000)
        .mac_iterations(10_000)
        .write()
        .map_err(|e| Error::internal(format!("cannot write the PFX: {e}")))
}
