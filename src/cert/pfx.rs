//! PKCS#12 (PFX) files. Export: key and certificate, AES-256-CBC with PBKDF2-HMAC-SHA256 and an
//! HMAC-SHA256 MAC, which OpenSSL 3 and .NET's `X509Certificate2` read. Import: whatever OpenSSL,
//! Windows, .NET, Java or Python's `cryptography` write, with encrypted or plaintext bags, with a
//! MAC or none.

use super::{Certificate, PrivateKey};
use crate::secret::{SecretBytes, SecretString};
use crate::{Error, Result};
use pkcs8::der::asn1::{ContextSpecific, ObjectIdentifier, OctetString};
use pkcs8::der::{self, Decode, Encode};

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

/// What a PFX holds: certificates in file order, and PKCS#8 DER private keys (secret).
pub(super) struct PfxContents {
    pub certs: Vec<Vec<u8>>,
    pub keys: Vec<SecretBytes>,
}

const DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
const ENCRYPTED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.6");
const KEY_BAG: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.10.1.1");
const SHROUDED_KEY_BAG: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.10.1.2");
const CERT_BAG: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.10.1.3");
const X509_CERT: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.22.1");

/// Whether `der` parses as a PFX structure (`PFX ::= SEQUENCE { version 3, authSafe, macData }`).
pub(super) fn is_pfx(der: &[u8]) -> bool {
    pkcs12::pfx::Pfx::from_der(der).is_ok()
}

/// Reads a PFX: with a MAC or none, with encrypted or plaintext bags, with `password` or the
/// empty one. `origin` names the input in errors.
///
/// p12-keystore verifies the MAC and decrypts every encrypted part (PBES2 and the legacy PKCS#12
/// schemes), so its success proves the password; but it keeps only certificates tied to a key
/// it decrypted, and ignores plaintext key bags. So the bags are also walked here, through
/// RustCrypto's `pkcs12`/`cms` types, decrypting PBES2 parts with `pkcs5`; parts under a legacy
/// scheme come from p12-keystore's result.
pub(super) fn read(bytes: &[u8], password: Option<&SecretString>, origin: &str) -> Result<PfxContents> {
    let info_hint = format!("inspect it with `openssl pkcs12 -in {origin} -info -nokeys`");
    let pfx = pkcs12::pfx::Pfx::from_der(bytes).map_err(|e| {
        Error::input(format!("{origin}: not a readable PFX ({e})")).with_hint(format!(
            "{info_hint}; if openssl reads it, re-export it: openssl pkcs12 -in {origin} -nodes | openssl pkcs12 -export -out new.pfx"
        ))
    })?;
    let pw = password.map(|p| p.expose()).unwrap_or("");
    check_cost(&pfx, pw, origin)?;
    let store = p12_keystore::KeyStore::from_pkcs12(bytes, pw).map_err(|e| keystore_error(e, password, origin))?;
    let mut out = PfxContents { certs: Vec::new(), keys: Vec::new() };
    let malformed = |what: &str, e: &dyn std::fmt::Display| {
        Error::input(format!("{origin}: malformed PFX: {what} ({e})")).with_hint(info_hint.clone())
    };
    if pfx.auth_safe.content_type != DATA {
        return Err(Error::input(format!(
            "{origin}: the PFX is protected by public-key (not password) integrity, which keycred does not read"
        ))
        .with_hint(info_hint));
    }
    let safes = OctetString::from_der(&pfx.auth_safe.content.to_der().map_err(|e| malformed("authSafe", &e))?)
        .map_err(|e| malformed("authSafe", &e))?;
    let safes = pkcs12::authenticated_safe::AuthenticatedSafe::from_der(safes.as_bytes())
        .map_err(|e| malformed("authSafe", &e))?;
    for safe in &safes {
        let content = safe.content.to_der().map_err(|e| malformed("content", &e))?;
        let plain = if safe.content_type == DATA {
            OctetString::from_der(&content).map_err(|e| malformed("content", &e))?.into_bytes()
        } else if safe.content_type == ENCRYPTED_DATA {
            let enc = cms::encrypted_data::EncryptedData::from_der(&content)
                .map_err(|e| malformed("encrypted content", &e))?;
            let info = &enc.enc_content_info;
            let Some(data) = &info.encrypted_content else { continue };
            let alg = info.content_enc_alg.to_der().map_err(|e| malformed("encryption algorithm", &e))?;
            match pkcs8::pkcs5::EncryptionScheme::try_from(alg.as_slice()) {
                // p12-keystore decrypted the same content with this password, so this cannot fail
                // on the password; a failure is a malformed file.
                Ok(scheme) => scheme.decrypt(pw, data.as_bytes()).map_err(|e| malformed("encrypted content", &e))?,
                // A legacy PKCS#12 scheme: p12-keystore's result holds what it carries.
                Err(_) => continue,
            }
        } else {
            continue;
        };
        let bags = pkcs12::safe_bag::SafeContents::from_der(&plain).map_err(|e| malformed("bags", &e))?;
        for bag in bags {
            let inner = || -> Result<Vec<u8>> {
                let cs = ContextSpecific::<der::Any>::from_der(&bag.bag_value).map_err(|e| malformed("bag", &e))?;
                cs.value.to_der().map_err(|e| malformed("bag", &e))
            };
            if bag.bag_id == CERT_BAG {
                let cs = ContextSpecific::<pkcs12::cert_type::CertBag>::from_der(&bag.bag_value)
                    .map_err(|e| malformed("certificate bag", &e))?;
                if cs.value.cert_id == X509_CERT {
                    out.certs.push(cs.value.cert_value.into_bytes());
                }
            } else if bag.bag_id == KEY_BAG {
                out.keys.push(SecretBytes::new(inner()?));
            } else if bag.bag_id == SHROUDED_KEY_BAG {
                let der = inner()?;
                // `pkcs8` reads PBES2 only (the legacy PKCS#12 schemes do not even parse): such
                // a key comes from p12-keystore's result, which decrypted this very bag.
                let info = pkcs8::EncryptedPrivateKeyInfo::try_from(der.as_slice());
                if let Ok(doc) = info.and_then(|i| i.decrypt(pw)) {
                    out.keys.push(SecretBytes::new(doc.as_bytes().to_vec()));
                }
            }
        }
    }
    for (_, entry) in store.entries() {
        match entry {
            p12_keystore::KeyStoreEntry::PrivateKeyChain(chain) => {
                if !out.keys.iter().any(|k| k.expose() == chain.key()) {
                    out.keys.push(SecretBytes::new(chain.key().to_vec()));
                }
                out.certs.extend(chain.chain().iter().map(|c| c.as_der().to_vec()));
            }
            p12_keystore::KeyStoreEntry::Certificate(c) => out.certs.push(c.as_der().to_vec()),
            _ => {}
        }
    }
    let mut seen = std::collections::HashSet::new();
    out.certs.retain(|c| seen.insert(c.clone()));
    Ok(out)
}

/// Refuses a PFX whose MAC or encryption asks for more work than [`super::cost`] allows, before
/// p12-keystore (which verifies the MAC even without a password) derives a single key. Counts
/// are read from the MAC data, every encrypted part, and the key bags of the plaintext parts and
/// of the PBES2-encrypted ones (decrypted here, once their own count has passed). Bags inside a
/// part under a legacy PKCS#12 scheme cannot be seen before p12-keystore decrypts them.
fn check_cost(pfx: &pkcs12::pfx::Pfx, pw: &str, origin: &str) -> Result<()> {
    if let Some(mac) = &pfx.mac_data {
        // A negative count is malformed; p12-keystore refuses it.
        super::cost::check_count(u64::try_from(mac.iterations).unwrap_or(0), "PFX integrity MAC", origin)?;
    }
    if pfx.auth_safe.content_type != DATA {
        return Ok(());
    }
    let Ok(safes) = pfx.auth_safe.content.to_der().and_then(|d| OctetString::from_der(&d)) else { return Ok(()) };
    let Ok(safes) = pkcs12::authenticated_safe::AuthenticatedSafe::from_der(safes.as_bytes()) else { return Ok(()) };
    for safe in &safes {
        let Ok(content) = safe.content.to_der() else { continue };
        let plain = if safe.content_type == DATA {
            match OctetString::from_der(&content) {
                Ok(o) => o.into_bytes(),
                Err(_) => continue,
            }
        } else if safe.content_type == ENCRYPTED_DATA {
            let Ok(enc) = cms::encrypted_data::EncryptedData::from_der(&content) else { continue };
            let info = &enc.enc_content_info;
            let Ok(alg) = info.content_enc_alg.to_der() else { continue };
            super::cost::check_encryption(&alg, "PFX encryption", origin)?;
            let Some(data) = &info.encrypted_content else { continue };
            match pkcs8::pkcs5::EncryptionScheme::try_from(alg.as_slice()).map(|s| s.decrypt(pw, data.as_bytes())) {
                Ok(Ok(plain)) => plain,
                _ => continue,
            }
        } else {
            continue;
        };
        let Ok(bags) = pkcs12::safe_bag::SafeContents::from_der(&plain) else { continue };
        for bag in bags.iter().filter(|b| b.bag_id == SHROUDED_KEY_BAG) {
            let Ok(cs) = ContextSpecific::<der::Any>::from_der(&bag.bag_value) else { continue };
            // EncryptedPrivateKeyInfo ::= SEQUENCE { encryptionAlgorithm, encryptedData }
            let Ok(fields) = cs.value.to_der().map(|d| Vec::<der::Any>::from_der(&d)) else { continue };
            if let Some(alg) = fields.ok().and_then(|f| f.first().and_then(|a| a.to_der().ok())) {
                super::cost::check_encryption(&alg, "PFX key encryption", origin)?;
            }
        }
    }
    Ok(())
}

/// Says what is wrong when p12-keystore refuses a PFX, and how to fix it.
fn keystore_error(e: p12_keystore::error::Error, password: Option<&SecretString>, origin: &str) -> Error {
    use p12_keystore::error::Error as E;
    let info_hint = format!("inspect it with `openssl pkcs12 -in {origin} -info -nokeys`");
    match e {
        E::MacError(_) | E::UnpadError | E::Pkcs5Error(_) if password.is_none() => {
            Error::input(format!("{origin}: the PFX is password-protected and no password was given")).with_hint(
                "name the variable holding the password with --password-env VAR (or set AZURE_CLIENT_CERTIFICATE_PASSWORD)",
            )
        }
        E::MacError(_) | E::UnpadError | E::Pkcs5Error(_) => Error::input(format!("{origin}: wrong PFX password"))
            .with_hint("check the variable named by --password-env (or AZURE_CLIENT_CERTIFICATE_PASSWORD)"),
        E::UnsupportedEncryptionScheme | E::UnsupportedMacAlgorithm => {
            Error::input(format!("{origin}: the PFX uses an encryption keycred cannot read ({e})")).with_hint(format!(
                "{info_hint}; re-export it with AES-256: openssl pkcs12 -in {origin} -nodes | openssl pkcs12 -export -out new.pfx"
            ))
        }
        other => Error::input(format!("{origin}: not a readable PFX ({other})")).with_hint(info_hint),
    }
}
