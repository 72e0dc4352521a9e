//! PKCS#12 (PFX) files. Export: key and certificate in the layout OpenSSL, Windows and Java
//! write (an encrypted certificate safe, a shrouded key bag, both bags carrying the same
//! `localKeyID` and `friendlyName`), protected either the modern way (AES-256-CBC with
//! PBKDF2-HMAC-SHA256, HMAC-SHA256 MAC: OpenSSL 3, .NET, Java, NSS) or, on request, the legacy
//! way (PBE-SHA1-3DES, HMAC-SHA1 MAC) that Windows before Server 2019, Mono and some appliances
//! need, and which is weaker. Import: whatever OpenSSL, Windows, .NET, Java or Python's
//! `cryptography` write, with encrypted or plaintext bags, with a MAC or none.
//!
//! The file is assembled from RustCrypto's PKCS#12/CMS types with its PBES2, PKCS#12 KDF,
//! 3DES-CBC and HMAC implementations: p12-keystore (used to read) names the certificate bag after
//! the subject, not the key's friendly name, and offers no way to change it.

use super::{Certificate, PrivateKey};
use crate::secret::{SecretBytes, SecretString};
use crate::wording::Input;
use crate::{Error, Result};
use cms::cert::x509::attr::{Attribute, Attributes};
use cms::cert::x509::spki::AlgorithmIdentifierOwned;
use pkcs8::der::asn1::{BmpString, ContextSpecific, ObjectIdentifier, OctetString, SetOfVec};
use pkcs8::der::{self, Any, Decode, Encode};

/// How an exported PFX is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protection {
    /// AES-256-CBC, PBKDF2-HMAC-SHA256 (10,000 iterations), HMAC-SHA256 MAC.
    Modern,
    /// PBE-SHA1-3DES for key and certificates, HMAC-SHA1 MAC (2,048 iterations, as OpenSSL's
    /// `-legacy` and Windows' "TripleDES-SHA1" export). Weaker: only for consumers that cannot
    /// read the modern form.
    Legacy,
}

const MODERN_ITERATIONS: u32 = 10_000;
const LEGACY_ITERATIONS: u32 = 2_048;
const FRIENDLY_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.20");
const LOCAL_KEY_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.21");
const PBE_SHA1_3DES: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.1.3");
const SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");

/// Serialises `cert` and `key` as a PFX protected by `password`; both bags carry `friendly_name`
/// and the certificate's SHA-1 thumbprint as `localKeyID`.
pub fn export(
    cert: &Certificate,
    key: &PrivateKey,
    password: &SecretString,
    friendly_name: &str,
    protection: Protection,
) -> Result<Vec<u8>> {
    let failed = |e: &dyn std::fmt::Display| Error::internal(format!("cannot write the PFX: {e}"));
    let pw = password.expose();
    let attrs = bag_attributes(friendly_name, &cert.sha1()).map_err(|e| failed(&e))?;
    let cert_bag = pkcs12::cert_type::CertBag {
        cert_id: X509_CERT,
        cert_value: OctetString::new(cert.der()).map_err(|e| failed(&e))?,
    };
    // `SafeBag` adds the `[0]` around `bag_value` when encoding.
    let cert_safe = vec![pkcs12::safe_bag::SafeBag {
        bag_id: CERT_BAG,
        bag_value: cert_bag.to_der().map_err(|e| failed(&e))?,
        bag_attributes: Some(attrs.clone()),
    }];
    let (alg, sealed) =
        encrypt(protection, pw, &cert_safe.to_der().map_err(|e| failed(&e))?).map_err(|e| failed(&e))?;
    let encrypted = cms::encrypted_data::EncryptedData {
        version: cms::content_info::CmsVersion::V0,
        enc_content_info: cms::enveloped_data::EncryptedContentInfo {
            content_type: DATA,
            content_enc_alg: alg,
            encrypted_content: Some(OctetString::new(sealed).map_err(|e| failed(&e))?),
        },
        unprotected_attrs: None,
    };
    let (alg, sealed) = encrypt(protection, pw, key.pkcs8_der()).map_err(|e| failed(&e))?;
    let shrouded = pkcs12::pbe_params::EncryptedPrivateKeyInfo {
        encryption_algorithm: alg,
        encrypted_data: OctetString::new(sealed).map_err(|e| failed(&e))?,
    };
    let key_safe = vec![pkcs12::safe_bag::SafeBag {
        bag_id: SHROUDED_KEY_BAG,
        bag_value: shrouded.to_der().map_err(|e| failed(&e))?,
        bag_attributes: Some(attrs),
    }];
    let safes = vec![
        content_info(ENCRYPTED_DATA, &encrypted).map_err(|e| failed(&e))?,
        content_info(DATA, &OctetString::new(key_safe.to_der().map_err(|e| failed(&e))?).map_err(|e| failed(&e))?)
            .map_err(|e| failed(&e))?,
    ];
    let auth_safe = safes.to_der().map_err(|e| failed(&e))?;
    let mac_data = mac(protection, pw, &auth_safe).map_err(|e| failed(&e))?;
    let pfx = pkcs12::pfx::Pfx {
        version: pkcs12::pfx::Version::V3,
        auth_safe: content_info(DATA, &OctetString::new(auth_safe).map_err(|e| failed(&e))?).map_err(|e| failed(&e))?,
        mac_data: Some(mac_data),
    };
    pfx.to_der().map_err(|e| failed(&e))
}

fn content_info(content_type: ObjectIdentifier, content: &impl Encode) -> der::Result<cms::content_info::ContentInfo> {
    Ok(cms::content_info::ContentInfo { content_type, content: Any::from_der(&content.to_der()?)? })
}

/// `friendlyName` (a BMPString) and `localKeyID`, as OpenSSL and Windows put them on both bags.
fn bag_attributes(friendly_name: &str, local_key_id: &[u8]) -> der::Result<Attributes> {
    let one = |v: Any| SetOfVec::try_from(vec![v]);
    let mut attrs = Attributes::new();
    attrs.insert(Attribute {
        oid: FRIENDLY_NAME,
        values: one(Any::encode_from(&BmpString::from_utf8(friendly_name)?)?)?,
    })?;
    attrs.insert(Attribute { oid: LOCAL_KEY_ID, values: one(Any::encode_from(&OctetString::new(local_key_id)?)?)? })?;
    Ok(attrs)
}

fn random<const N: usize>() -> [u8; N] {
    use rand::RngCore;
    let mut b = [0u8; N];
    rand::thread_rng().fill_bytes(&mut b);
    b
}

/// Encrypts `data` under `password`: PBES2 (the password as UTF-8, RFC 9579) or PKCS#12's
/// PBE-SHA1-3DES (the password as a BMPString, RFC 7292 appendix B).
fn encrypt(
    protection: Protection,
    password: &str,
    data: &[u8],
) -> std::result::Result<(AlgorithmIdentifierOwned, Vec<u8>), String> {
    match protection {
        Protection::Modern => {
            let (salt, iv) = (random::<32>(), random::<16>());
            let params = pkcs8::pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(MODERN_ITERATIONS, &salt, &iv)
                .map_err(|e| e.to_string())?;
            let sealed = params.encrypt(password, data).map_err(|e| e.to_string())?;
            let alg = pkcs8::pkcs5::EncryptionScheme::Pbes2(params).to_der().map_err(|e| e.to_string())?;
            Ok((AlgorithmIdentifierOwned::from_der(&alg).map_err(|e| e.to_string())?, sealed))
        }
        Protection::Legacy => {
            use cbc::cipher::{BlockEncryptMut, KeyIvInit};
            use pkcs12::kdf::{derive_key_utf8, Pkcs12KeyType};
            let salt = random::<20>();
            let derive = |ty, len| {
                derive_key_utf8::<sha1::Sha1>(password, &salt, ty, LEGACY_ITERATIONS as i32, len)
                    .map_err(|e| e.to_string())
            };
            let key = zeroize::Zeroizing::new(derive(Pkcs12KeyType::EncryptionKey, 24)?);
            let iv = derive(Pkcs12KeyType::Iv, 8)?;
            let sealed = cbc::Encryptor::<des::TdesEde3>::new_from_slices(&key, &iv)
                .map_err(|e| e.to_string())?
                .encrypt_padded_vec_mut::<cbc::cipher::block_padding::Pkcs7>(data);
            let params = pkcs12::pbe_params::Pkcs12PbeParams {
                salt: OctetString::new(salt).map_err(|e| e.to_string())?,
                iterations: LEGACY_ITERATIONS as i32,
            };
            let alg = AlgorithmIdentifierOwned {
                oid: PBE_SHA1_3DES,
                parameters: Some(Any::encode_from(&params).map_err(|e| e.to_string())?),
            };
            Ok((alg, sealed))
        }
    }
}

/// The MAC over the authenticated safe: HMAC with a key from the PKCS#12 KDF (RFC 7292
/// appendix B, with SHA-256 for the modern form as OpenSSL 3 and .NET do).
fn mac(protection: Protection, password: &str, data: &[u8]) -> std::result::Result<pkcs12::mac_data::MacData, String> {
    use hmac::{Hmac, Mac};
    use pkcs12::kdf::{derive_key_utf8, Pkcs12KeyType};
    let e = |e: &dyn std::fmt::Display| e.to_string();
    let (oid, salt, iterations, digest) = match protection {
        Protection::Modern => {
            let salt = random::<32>().to_vec();
            let key =
                derive_key_utf8::<sha2::Sha256>(password, &salt, Pkcs12KeyType::Mac, MODERN_ITERATIONS as i32, 32)
                    .map_err(|x| e(&x))?;
            let mut m = Hmac::<sha2::Sha256>::new_from_slice(&key).map_err(|x| e(&x))?;
            m.update(data);
            (SHA256, salt, MODERN_ITERATIONS, m.finalize().into_bytes().to_vec())
        }
        Protection::Legacy => {
            let salt = random::<20>().to_vec();
            let key = derive_key_utf8::<sha1::Sha1>(password, &salt, Pkcs12KeyType::Mac, LEGACY_ITERATIONS as i32, 20)
                .map_err(|x| e(&x))?;
            let mut m = Hmac::<sha1::Sha1>::new_from_slice(&key).map_err(|x| e(&x))?;
            m.update(data);
            (SHA1, salt, LEGACY_ITERATIONS, m.finalize().into_bytes().to_vec())
        }
    };
    Ok(pkcs12::mac_data::MacData {
        mac: pkcs12::digest_info::DigestInfo {
            algorithm: AlgorithmIdentifierOwned { oid, parameters: Some(Any::null()) },
            digest: OctetString::new(digest).map_err(|x| e(&x))?,
        },
        mac_salt: OctetString::new(salt).map_err(|x| e(&x))?,
        iterations: iterations as i32,
    })
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
        Error::input(format!("{origin}: not a readable PFX")).caused_by(e).with_hint(format!(
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
        if let Some(plain) = safe_plaintext(safe, pw, &malformed)? {
            read_bags(&plain, pw, &malformed, &mut out)?;
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

/// Makes a `malformed PFX` error naming what could not be read.
type Malformed<'a> = dyn Fn(&str, &dyn std::fmt::Display) -> Error + 'a;

/// The plaintext of one safe of the authSafe: as is, or decrypted (PBES2) with `pw`; `None` for
/// a safe keycred does not read itself (legacy PKCS#12 encryption, other content types), whose
/// certificates and key come from p12-keystore's result.
fn safe_plaintext(safe: &cms::content_info::ContentInfo, pw: &str, malformed: &Malformed) -> Result<Option<Vec<u8>>> {
    let content = safe.content.to_der().map_err(|e| malformed("content", &e))?;
    if safe.content_type == DATA {
        return Ok(Some(OctetString::from_der(&content).map_err(|e| malformed("content", &e))?.into_bytes()));
    }
    if safe.content_type != ENCRYPTED_DATA {
        return Ok(None);
    }
    let enc = cms::encrypted_data::EncryptedData::from_der(&content).map_err(|e| malformed("encrypted content", &e))?;
    let info = &enc.enc_content_info;
    let Some(data) = &info.encrypted_content else { return Ok(None) };
    let alg = info.content_enc_alg.to_der().map_err(|e| malformed("encryption algorithm", &e))?;
    match pkcs8::pkcs5::EncryptionScheme::try_from(alg.as_slice()) {
        // p12-keystore decrypted the same content with this password, so this cannot fail on the
        // password; a failure is a malformed file.
        Ok(scheme) => Ok(Some(scheme.decrypt(pw, data.as_bytes()).map_err(|e| malformed("encrypted content", &e))?)),
        // A legacy PKCS#12 scheme: p12-keystore's result holds what it carries.
        Err(_) => Ok(None),
    }
}

/// Reads the certificate and key bags of one safe's plaintext into `out`, plaintext key bags and
/// certificates without a key id included (p12-keystore skips them).
fn read_bags(plain: &[u8], pw: &str, malformed: &Malformed, out: &mut PfxContents) -> Result<()> {
    let bags = pkcs12::safe_bag::SafeContents::from_der(plain).map_err(|e| malformed("bags", &e))?;
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
            // `pkcs8` reads PBES2 only (the legacy PKCS#12 schemes do not even parse): such a key
            // comes from p12-keystore's result, which decrypted this very bag.
            let info = pkcs8::EncryptedPrivateKeyInfo::try_from(der.as_slice());
            if let Ok(doc) = info.and_then(|i| i.decrypt(pw)) {
                out.keys.push(SecretBytes::new(doc.as_bytes().to_vec()));
            }
        }
    }
    Ok(())
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
                format!("give the password through {} (or set AZURE_CLIENT_CERTIFICATE_PASSWORD)", Input::PasswordEnv),
            )
        }
        E::MacError(_) | E::UnpadError | E::Pkcs5Error(_) => Error::input(format!("{origin}: wrong PFX password"))
            .with_hint(format!("check {} (or AZURE_CLIENT_CERTIFICATE_PASSWORD)", Input::PasswordEnv)),
        E::UnsupportedEncryptionScheme | E::UnsupportedMacAlgorithm => {
            Error::input(format!("{origin}: the PFX uses an encryption keycred cannot read")).caused_by(e).with_hint(format!(
                "{info_hint}; re-export it with AES-256: openssl pkcs12 -in {origin} -nodes | openssl pkcs12 -export -out new.pfx"
            ))
        }
        other => Error::input(format!("{origin}: not a readable PFX ({other})")).with_hint(info_hint),
    }
}
