//! The signer seam: everything keycred signs (client assertions, Graph `addKey`/`removeKey`
//! proofs, self-signed certificates, certificate requests) goes through a [`Signer`], never
//! through key bytes.
//!
//! A key file is one signer ([`PrivateKey`]); a key on a PKCS#11 token or in Azure Key Vault is
//! another, implemented above this module (it only needs the trait). The trait is small on
//! purpose: the public half, to match certificates and to build them, and one `sign` over the
//! message, so that a token can hash inside (`CKM_SHA256_RSA_PKCS`) and a vault can be handed the
//! digest. Signing may block (a network round trip or a token's PIN-guarded session): callers in
//! async code run it where blocking is allowed.

use super::{Certificate, PrivateKey, SignatureAlg};
use crate::{Error, Result};
use std::fmt;
use std::sync::Mutex;

/// Something that holds an RSA private key and signs with it, wherever the key lives.
pub trait Signer: Send + Sync {
    /// Where the key is, for messages: a file name, a `pkcs11:` URI, a vault key URL. Never key
    /// material, never a PIN.
    fn describe(&self) -> String;

    /// The public half, PKCS#1 `RSAPublicKey` DER.
    fn rsa_public_key(&self) -> &[u8];

    /// Signs `msg` (the whole message, not a digest) with `alg`. May block.
    fn sign(&self, alg: SignatureAlg, msg: &[u8]) -> Result<Vec<u8>>;

    /// Key size in bits.
    fn bits(&self) -> usize {
        modulus_bits(self.rsa_public_key()).unwrap_or(0)
    }

    /// The key itself, when it lives in memory and may be written out (a key file); `None` for
    /// keys that never leave their token or vault.
    fn exportable(&self) -> Option<&PrivateKey> {
        None
    }
}

impl fmt::Debug for dyn Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signer({}, RSA-{})", self.describe(), self.bits())
    }
}

impl Signer for PrivateKey {
    fn describe(&self) -> String {
        format!("RSA-{} private key", PrivateKey::bits(self))
    }
    fn rsa_public_key(&self) -> &[u8] {
        PrivateKey::rsa_public_key(self)
    }
    fn sign(&self, alg: SignatureAlg, msg: &[u8]) -> Result<Vec<u8>> {
        PrivateKey::sign(self, alg, msg)
    }
    fn bits(&self) -> usize {
        PrivateKey::bits(self)
    }
    fn exportable(&self) -> Option<&PrivateKey> {
        Some(self)
    }
}

/// A shared signer signs as the one it shares, so `&Arc<dyn Signer>` goes wherever a signer does.
impl<S: Signer + ?Sized> Signer for std::sync::Arc<S> {
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn rsa_public_key(&self) -> &[u8] {
        (**self).rsa_public_key()
    }
    fn sign(&self, alg: SignatureAlg, msg: &[u8]) -> Result<Vec<u8>> {
        (**self).sign(alg, msg)
    }
    fn bits(&self) -> usize {
        (**self).bits()
    }
    fn exportable(&self) -> Option<&PrivateKey> {
        (**self).exportable()
    }
}

/// Whether `signer` holds the private half of `cert`'s public key.
pub fn matches(signer: &dyn Signer, cert: &Certificate) -> bool {
    cert.rsa_public_key() == Some(signer.rsa_public_key())
}

/// A [`Signer`] as rcgen sees a key: certificates and requests built by rcgen are signed through
/// the seam (sha256WithRSAEncryption, the signature Entra's certificates carry).
pub(crate) struct RcgenKey<'a> {
    signer: &'a dyn Signer,
    /// The signer's own error: rcgen's has no room for it.
    failure: Mutex<Option<Error>>,
}

impl<'a> RcgenKey<'a> {
    pub(crate) fn new(signer: &'a dyn Signer) -> Self {
        RcgenKey { signer, failure: Mutex::new(None) }
    }

    /// The error to report for a failed rcgen call: the signer's, when signing is what failed.
    pub(crate) fn error(&self, what: &str, e: rcgen::Error) -> Error {
        match self.failure.lock().ok().and_then(|mut f| f.take()) {
            Some(failure) => failure.context(format!("{what} with {}", self.signer.describe())),
            None => Error::internal(format!("{what} failed")).caused_by(e),
        }
    }
}

impl rcgen::PublicKeyData for RcgenKey<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.signer.rsa_public_key()
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_RSA_SHA256
    }
}

impl rcgen::SigningKey for RcgenKey<'_> {
    fn sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, rcgen::Error> {
        self.signer.sign(SignatureAlg::Rs256, msg).map_err(|e| {
            if let Ok(mut f) = self.failure.lock() {
                *f = Some(e);
            }
            rcgen::Error::RemoteKeyError
        })
    }
}

/// PKCS#1 `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }`.
#[derive(der::Sequence)]
struct RsaPublicKey<'a> {
    modulus: der::asn1::UintRef<'a>,
    public_exponent: der::asn1::UintRef<'a>,
}

/// The modulus and public exponent of a PKCS#1 `RSAPublicKey` (DER), as unsigned big-endian
/// bytes without leading zeros: what a JSON Web Key's `n` and `e` hold.
pub fn rsa_numbers(rsa_public_key: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    use der::Decode;
    let k = RsaPublicKey::from_der(rsa_public_key).ok()?;
    Some((k.modulus.as_bytes().to_vec(), k.public_exponent.as_bytes().to_vec()))
}

/// The PKCS#1 `RSAPublicKey` (DER) of a modulus and public exponent given as unsigned big-endian
/// bytes (a token's `CKA_MODULUS`, a vault key's `n`): what [`Signer::rsa_public_key`] returns.
pub fn rsa_public_key_der(n: &[u8], e: &[u8]) -> Result<Vec<u8>> {
    use der::Encode;
    let bad = |e: der::Error| Error::input("an RSA public key whose numbers cannot be encoded").caused_by(e);
    let key = RsaPublicKey {
        modulus: der::asn1::UintRef::new(n).map_err(bad)?,
        public_exponent: der::asn1::UintRef::new(e).map_err(bad)?,
    };
    key.to_der().map_err(bad)
}

/// The bit length of the modulus of a PKCS#1 `RSAPublicKey ::= SEQUENCE { modulus, exponent }`.
pub fn modulus_bits(rsa_public_key: &[u8]) -> Option<usize> {
    let (n, _) = rsa_numbers(rsa_public_key)?;
    let first = *n.first()?;
    Some(n.len() * 8 - first.leading_zeros() as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cert::{generate, KeySize, NewCertificate, Validity};

    #[test]
    fn a_key_file_signs_through_the_seam_and_matches_its_certificate_only() {
        let req = NewCertificate { subject: "CN=seam".into(), key_size: KeySize::Rsa2048, validity: Validity::Days(1) };
        let (cert, key) = generate(&req).unwrap();
        let (other, _) = generate(&req).unwrap();
        let signer: &dyn Signer = &key;
        assert_eq!(signer.bits(), 2048);
        assert_eq!(modulus_bits(cert.rsa_public_key().unwrap()), Some(2048));
        assert!(matches(signer, &cert));
        assert!(!matches(signer, &other));
        let sig = signer.sign(SignatureAlg::Ps256, b"msg").unwrap();
        assert!(SignatureAlg::Ps256.verify(cert.rsa_public_key().unwrap(), b"msg", &sig));
        assert!(!SignatureAlg::Ps256.verify(cert.rsa_public_key().unwrap(), b"other", &sig));
        assert!(signer.exportable().is_some());
        assert!(!format!("{signer:?}").contains("BEGIN"));
    }

    #[test]
    fn certificates_and_requests_are_signed_through_the_seam_for_the_signers_key() {
        let req = NewCertificate { subject: "CN=seam".into(), key_size: KeySize::Rsa2048, validity: Validity::Days(1) };
        let (_, key) = generate(&req).unwrap();
        let cert = crate::cert::self_signed_with(&key, "CN=on-a-token, O=Contoso", Validity::Days(30)).unwrap();
        assert!(matches(&key, &cert));
        assert_eq!(cert.subject(), cert.issuer());
        assert!(cert.subject().contains("on-a-token"));
        let csr = crate::cert::request_with(&key, "CN=for-a-ca").unwrap();
        assert!(csr.starts_with("-----BEGIN CERTIFICATE REQUEST-----"));
    }

    /// A signer that always fails, as a token with a wrong PIN would.
    struct Refusing(Vec<u8>);
    impl Signer for Refusing {
        fn describe(&self) -> String {
            "pkcs11:token=T;object=o".into()
        }
        fn rsa_public_key(&self) -> &[u8] {
            &self.0
        }
        fn sign(&self, _: SignatureAlg, _: &[u8]) -> Result<Vec<u8>> {
            Err(Error::input("CKR_PIN_INCORRECT"))
        }
    }

    #[test]
    fn a_signer_failing_inside_certificate_building_is_reported_with_its_own_error_and_name() {
        let req = NewCertificate { subject: "CN=seam".into(), key_size: KeySize::Rsa2048, validity: Validity::Days(1) };
        let (_, key) = generate(&req).unwrap();
        let refusing = Refusing(key.rsa_public_key().to_vec());
        let e = crate::cert::self_signed_with(&refusing, "CN=x", Validity::Days(1)).unwrap_err().to_string();
        assert!(e.contains("CKR_PIN_INCORRECT") && e.contains("pkcs11:token=T"), "{e}");
        let e = crate::cert::request_with(&refusing, "CN=x").unwrap_err().to_string();
        assert!(e.contains("CKR_PIN_INCORRECT"), "{e}");
    }

    #[test]
    fn rsa_numbers_and_their_der_go_both_ways() {
        let req = NewCertificate { subject: "CN=seam".into(), key_size: KeySize::Rsa2048, validity: Validity::Days(1) };
        let (cert, _) = generate(&req).unwrap();
        let der = cert.rsa_public_key().unwrap();
        let (n, e) = rsa_numbers(der).unwrap();
        assert_eq!((n.len(), e.as_slice()), (256, &[1u8, 0, 1][..]));
        assert_eq!(rsa_public_key_der(&n, &e).unwrap(), der);
        // Leading zeros are not part of the number; a high bit gets DER's 0x00.
        assert_eq!(rsa_public_key_der(&[0, 0x7f], &[1, 0, 1]).unwrap(), [0x30, 8, 2, 1, 0x7f, 2, 3, 1, 0, 1]);
        assert_eq!(rsa_public_key_der(&[0x80], &[3]).unwrap(), [0x30, 7, 2, 2, 0, 0x80, 2, 1, 3]);
        assert_eq!(rsa_numbers(b"not der"), None);
    }
}
