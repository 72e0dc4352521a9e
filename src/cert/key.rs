//! RSA private keys: reading (PKCS#8, PKCS#1, encrypted PKCS#8), writing, signing.
//!
//! The key is held as PKCS#8 DER inside a redacting wrapper; signing goes through aws-lc-rs.
//! Encrypted keys use PBES2 with PBKDF2-SHA256 and AES-256-CBC, which OpenSSL 3, .NET and
//! Python's `cryptography` all read.

use crate::secret::{SecretBytes, SecretString};
use crate::wording::{Action, Input};
use crate::{Error, Result};
use aws_lc_rs::rsa::KeyPair;
use aws_lc_rs::signature::{self, KeyPair as _};
use std::fmt;

/// Signature algorithms for client assertions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PSS with SHA-256 (salt length 32).
    Ps256,
}

impl SignatureAlg {
    /// The JOSE name.
    pub fn jose(self) -> &'static str {
        match self {
            SignatureAlg::Rs256 => "RS256",
            SignatureAlg::Ps256 => "PS256",
        }
    }
    /// Parses a JOSE name.
    pub fn from_jose(s: &str) -> Option<Self> {
        match s {
            "RS256" => Some(SignatureAlg::Rs256),
            "PS256" => Some(SignatureAlg::Ps256),
            _ => None,
        }
    }
    /// Verifies `sig` over `msg` with a PKCS#1 RSAPublicKey DER.
    pub fn verify(self, rsa_public_key: &[u8], msg: &[u8], sig: &[u8]) -> bool {
        let alg: &dyn signature::VerificationAlgorithm = match self {
            SignatureAlg::Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            SignatureAlg::Ps256 => &signature::RSA_PSS_2048_8192_SHA256,
        };
        signature::UnparsedPublicKey::new(alg, rsa_public_key).verify(msg, sig).is_ok()
    }
    /// Verifies `sig` over a SHA-256 `digest` computed elsewhere (what a vault's `verify` gets).
    pub fn verify_digest(self, rsa_public_key: &[u8], digest: &[u8], sig: &[u8]) -> bool {
        let alg: &'static signature::RsaParameters = match self {
            SignatureAlg::Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            SignatureAlg::Ps256 => &signature::RSA_PSS_2048_8192_SHA256,
        };
        let Ok(d) = aws_lc_rs::digest::Digest::import_less_safe(digest, &aws_lc_rs::digest::SHA256) else {
            return false;
        };
        signature::UnparsedPublicKey::new(alg, rsa_public_key).verify_digest(&d, sig).is_ok()
    }
}

/// The DER private key structures a key file can hold.
enum DerKey {
    Pkcs8,
    EncryptedPkcs8,
    Pkcs1,
}

impl DerKey {
    /// Recognises the structure only: a PKCS#8 of another algorithm is still PKCS#8, so that the
    /// error says what is wrong with the key rather than that the file is not a key.
    fn detect(der: &[u8]) -> Option<Self> {
        use pkcs8::der::{asn1::Any, Decode, Tag, Tagged};
        if pkcs8::PrivateKeyInfo::try_from(der).is_ok() {
            return Some(DerKey::Pkcs8);
        }
        if pkcs8::EncryptedPrivateKeyInfo::try_from(der).is_ok() {
            return Some(DerKey::EncryptedPkcs8);
        }
        // RSAPrivateKey ::= SEQUENCE { version, n, e, d, p, q, dp, dq, qinv, otherPrimeInfos OPTIONAL }
        match Vec::<Any>::from_der(der) {
            Ok(items) if items.len() >= 9 && items[..9].iter().all(|i| i.tag() == Tag::Integer) => Some(DerKey::Pkcs1),
            _ => None,
        }
    }
}

/// An RSA private key.
pub struct PrivateKey {
    pkcs8: SecretBytes,
    pair: KeyPair,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey(RSA-{}, [redacted])", self.bits())
    }
}

/// What to do about a key Entra will not take (the message already says what is wrong with it).
fn small_key_hint() -> String {
    format!(
        "make a new key and certificate with an RSA key of 2048 bits or more ({}), and register that certificate \
         instead",
        Action::NewCertificate { key_size: Some(2048) }
    )
}

/// Why an RSA private key (PKCS#1 `RSAPrivateKey` DER) that aws-lc refused is unusable: its
/// size when it can be read (aws-lc refuses keys under 2048 bits), else malformed.
fn unusable_rsa(rsa_private_key: &[u8]) -> String {
    match modulus_bits(rsa_private_key) {
        Some(bits) if bits < super::MIN_RSA_BITS => {
            format!("the RSA private key is {bits} bits; Entra requires at least {}", super::MIN_RSA_BITS)
        }
        _ => "the RSA private key is malformed".to_string(),
    }
}

/// The modulus size of an `RSAPrivateKey ::= SEQUENCE { version, modulus, ... }`.
fn modulus_bits(der: &[u8]) -> Option<usize> {
    use pkcs8::der::{asn1::UintRef, Reader, SliceReader};
    let mut r = SliceReader::new(der).ok()?;
    let n = r
        .sequence(|r| {
            let _version: u8 = r.decode()?;
            let n: UintRef<'_> = r.decode()?;
            // The rest (exponents, primes) is not needed for the size.
            r.read_slice(r.remaining_len())?;
            Ok(n.as_bytes().to_vec())
        })
        .ok()?;
    let first = *n.first()?;
    Some(n.len() * 8 - first.leading_zeros() as usize)
}

impl PrivateKey {
    /// From PKCS#8 DER. `origin` names the input in errors.
    pub fn from_pkcs8_der(der: &[u8], origin: &str) -> Result<Self> {
        match KeyPair::from_pkcs8(der) {
            Ok(pair) => Ok(PrivateKey { pkcs8: SecretBytes::new(der.to_vec()), pair }),
            Err(_) => {
                // Tell a non-RSA key from a broken one: the former deserves its own message.
                let msg = match pkcs8::PrivateKeyInfo::try_from(der) {
                    Ok(info) if info.algorithm.oid != pkcs8::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1") => {
                        "the private key is not an RSA key".to_string()
                    }
                    Ok(info) => unusable_rsa(info.private_key),
                    Err(_) => "not a valid PKCS#8 private key".to_string(),
                };
                Err(Error::input(format!("{origin}: {msg}")).with_hint(small_key_hint()))
            }
        }
    }

    /// From a PKCS#1 `RSA PRIVATE KEY` DER.
    fn from_pkcs1_der(der: &[u8], origin: &str) -> Result<Self> {
        let pair = KeyPair::from_der(der)
            .map_err(|_| Error::input(format!("{origin}: {}", unusable_rsa(der))).with_hint(small_key_hint()))?;
        use aws_lc_rs::encoding::AsDer;
        let pkcs8 =
            pair.as_der().map_err(|_| Error::internal("cannot encode the private key as PKCS#8"))?.as_ref().to_vec();
        Ok(PrivateKey { pkcs8: SecretBytes::new(pkcs8), pair })
    }

    /// From one PEM block: `PRIVATE KEY`, `RSA PRIVATE KEY` or `ENCRYPTED PRIVATE KEY` (which
    /// needs `password`).
    pub fn from_pem_block(block: &pem::Pem, password: Option<&SecretString>, origin: &str) -> Result<Self> {
        if block.tag() == "EC PRIVATE KEY" {
            return Err(Error::input(format!("{origin}: the private key is an EC key, not RSA")).with_hint(format!(
                "Entra certificate credentials need an RSA key: create one with {}",
                Action::NewCertificate { key_size: None }
            )));
        }
        // OpenSSL's "traditional" encryption (`openssl genrsa -aes256`): MD5-based key derivation
        // that no maintained Rust crate implements, so it is converted rather than read.
        if block.headers().get("Proc-Type").is_some_and(|v| v.contains("ENCRYPTED")) {
            let cipher = block.headers().get("DEK-Info").and_then(|v| v.split(',').next()).unwrap_or("unknown");
            return Err(Error::input(format!(
                "{origin}: the private key is a legacy-encrypted PEM key (Proc-Type: 4,ENCRYPTED, {cipher}), \
                 which keycred does not decrypt"
            ))
            .with_hint(format!(
                "convert it to encrypted PKCS#8 and give its passphrase through {}: \
                 openssl pkcs8 -topk8 -in {origin} -out key-pkcs8.pem",
                Input::PasswordEnv
            )));
        }
        match block.tag() {
            "PRIVATE KEY" => Self::from_pkcs8_der(block.contents(), origin),
            "RSA PRIVATE KEY" => Self::from_pkcs1_der(block.contents(), origin),
            "ENCRYPTED PRIVATE KEY" => Self::from_encrypted_pkcs8_der(block.contents(), password, origin),
            other => Err(Error::input(format!("{origin}: unsupported PEM block '{other}'"))),
        }
    }

    fn from_encrypted_pkcs8_der(der: &[u8], password: Option<&SecretString>, origin: &str) -> Result<Self> {
        let password = password.ok_or_else(|| {
            Error::input(format!("{origin}: the private key is encrypted and no password was given"))
                .with_hint(format!("give the passphrase through {}", Input::PasswordEnv))
        })?;
        let info = pkcs8::EncryptedPrivateKeyInfo::try_from(der)
            .map_err(|e| Error::input(format!("{origin}: malformed encrypted private key")).caused_by(e))?;
        // The file chooses the key derivation's cost: bounded before any work is done.
        if let Ok(alg) = pkcs8::der::Encode::to_der(&info.encryption_algorithm) {
            super::cost::check_encryption(&alg, "encrypted private key", origin)?;
        }
        let doc = info.decrypt(password.expose()).map_err(|_| {
            Error::input(format!("{origin}: wrong password for the encrypted private key"))
                .with_hint(format!("check {}", Input::PasswordEnv))
        })?;
        Self::from_pkcs8_der(doc.as_bytes(), origin)
    }

    /// From a DER key file: PKCS#8, encrypted PKCS#8 (which needs `password`) or PKCS#1.
    /// `None` when `der` is none of these.
    pub fn from_der(der: &[u8], password: Option<&SecretString>, origin: &str) -> Option<Result<Self>> {
        Some(match DerKey::detect(der)? {
            DerKey::Pkcs8 => Self::from_pkcs8_der(der, origin),
            DerKey::EncryptedPkcs8 => Self::from_encrypted_pkcs8_der(der, password, origin),
            DerKey::Pkcs1 => Self::from_pkcs1_der(der, origin),
        })
    }

    /// Wraps a freshly generated key.
    pub(crate) fn from_generated(pkcs8: Vec<u8>) -> Result<Self> {
        Self::from_pkcs8_der(&pkcs8, "generated key")
    }

    /// PKCS#8 DER (secret).
    pub fn pkcs8_der(&self) -> &[u8] {
        self.pkcs8.expose()
    }

    /// Key size in bits.
    pub fn bits(&self) -> usize {
        self.pair.public_modulus_len() * 8
    }

    /// PKCS#1 RSAPublicKey DER of the public half.
    pub fn rsa_public_key(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }

    /// Whether this key is the private half of `cert`'s public key.
    pub fn matches(&self, cert: &super::Certificate) -> bool {
        cert.rsa_public_key() == Some(self.rsa_public_key())
    }

    /// PEM `PRIVATE KEY` (unencrypted PKCS#8), or `ENCRYPTED PRIVATE KEY` with `password`.
    pub fn to_pem(&self, password: Option<&SecretString>) -> Result<String> {
        match password {
            None => Ok(pem::encode(&pem::Pem::new("PRIVATE KEY", self.pkcs8.expose().to_vec()))),
            Some(pw) => {
                use rand::RngCore;
                let mut salt = [0u8; 16];
                let mut iv = [0u8; 16];
                rand::thread_rng().fill_bytes(&mut salt);
                rand::thread_rng().fill_bytes(&mut iv);
                let params = pkcs8::pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(600_000, &salt, &iv)
                    .map_err(|e| Error::internal(format!("cannot set up key encryption: {e}")))?;
                let info = pkcs8::PrivateKeyInfo::try_from(self.pkcs8.expose())
                    .map_err(|e| Error::internal("cannot re-read the private key").caused_by(e))?;
                let doc = info
                    .encrypt_with_params(params, pw.expose())
                    .map_err(|e| Error::internal("cannot encrypt the private key").caused_by(e))?;
                Ok(pem::encode(&pem::Pem::new("ENCRYPTED PRIVATE KEY", doc.as_bytes().to_vec())))
            }
        }
    }

    /// Signs `msg` with `alg`.
    pub fn sign(&self, alg: SignatureAlg, msg: &[u8]) -> Result<Vec<u8>> {
        let padding: &'static dyn signature::RsaEncoding = match alg {
            SignatureAlg::Rs256 => &signature::RSA_PKCS1_SHA256,
            SignatureAlg::Ps256 => &signature::RSA_PSS_SHA256,
        };
        let mut sig = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign(padding, &aws_lc_rs::rand::SystemRandom::new(), msg, &mut sig)
            .map_err(|_| Error::internal("RSA signing failed"))?;
        Ok(sig)
    }

    /// Signs a SHA-256 `digest` computed elsewhere with `alg`, as a vault or token signs what its
    /// caller hashed.
    pub fn sign_digest(&self, alg: SignatureAlg, digest: &[u8]) -> Result<Vec<u8>> {
        let padding: &'static dyn signature::RsaEncoding = match alg {
            SignatureAlg::Rs256 => &signature::RSA_PKCS1_SHA256,
            SignatureAlg::Ps256 => &signature::RSA_PSS_SHA256,
        };
        let d = aws_lc_rs::digest::Digest::import_less_safe(digest, &aws_lc_rs::digest::SHA256)
            .map_err(|_| Error::input(format!("a SHA-256 digest is 32 bytes, not {}", digest.len())))?;
        let mut sig = vec![0u8; self.pair.public_modulus_len()];
        self.pair.sign_digest(padding, &d, &mut sig).map_err(|_| Error::internal("RSA signing failed"))?;
        Ok(sig)
    }
}
