//! X.509 certificates and their Entra values (thumbprint, customKeyIdentifier, x5t, ...).
//!
//! A [`Certificate`] is DER bytes plus what was read from them once; [`EntraValues`] is the stable,
//! serialisable view that `show`, `new` and `-o json` print (field names are a contract).

pub mod chain;
pub mod cost;
pub mod csr;
pub mod dn;
pub mod files;
pub mod generate;
mod key;
mod load;
pub mod pfx;
pub mod signer;

pub use generate::{generate, request_with, self_signed_with, KeySigner, KeySize, NewCertificate, Validity};
pub use key::{PrivateKey, SignatureAlg};
pub use load::{load_bytes, load_credential, load_file, load_key, LoadedCredential, LoadedFile};
pub use signer::Signer;

use crate::thumbprint::{b64, b64url, hex_upper, sha1, sha256};
use crate::wording::Action;
use crate::{dates, Error, Result};
use serde::Serialize;
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

/// Minimum RSA key size Entra accepts for a certificate credential ("minimum key length is 2048").
pub const MIN_RSA_BITS: usize = 2048;
/// Largest RSA key keycred accepts in a certificate credential: the largest its cryptography
/// library (aws-lc) signs and verifies with, so that a key `check` and the lock-out guard call
/// usable is one keycred can sign with and the emulator can verify. Entra documents no bound;
/// keys this large are already impractical, and without a bound a hostile certificate with a
/// megabit modulus would count as a credential.
pub const MAX_RSA_BITS: usize = 8192;
/// Under this many days left, a certificate is reported as expiring.
pub const EXPIRING_DAYS: i64 = 30;

/// Bytes of a certificate's DER, as a range of it (what the parser returns lies within it) or,
/// should a parser ever hand back a copy, those bytes.
#[derive(Clone, Debug)]
enum Part {
    In(u32, u32),
    Own(Box<[u8]>),
}

impl Part {
    fn of(der: &[u8], part: &[u8]) -> Part {
        let (start, end) = (der.as_ptr() as usize, der.as_ptr() as usize + der.len());
        let at = part.as_ptr() as usize;
        if at >= start && at + part.len() <= end {
            Part::In((at - start) as u32, (at - start + part.len()) as u32)
        } else {
            Part::Own(part.into())
        }
    }
    fn get<'a>(&'a self, der: &'a [u8]) -> &'a [u8] {
        match self {
            Part::In(a, b) => &der[*a as usize..*b as usize],
            Part::Own(bytes) => bytes,
        }
    }
}

/// A parsed certificate: the DER and the facts keycred needs from it.
#[derive(Clone, Debug)]
pub struct Certificate {
    der: Vec<u8>,
    subject: String,
    issuer: String,
    /// Raw DER of the subject and issuer names, to find which certificate issued which: where
    /// they lie in `der` (an emulator holds the certificates of a whole tenant; copies would
    /// cost a third more).
    subject_der: Part,
    issuer_der: Part,
    serial_hex: String,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    key_algorithm: String,
    key_bits: usize,
    signature_algorithm: String,
    /// PKCS#1 RSAPublicKey DER, when the key is RSA: where it lies in `der`.
    rsa_public_key: Option<Part>,
    /// Why no one can sign with this RSA key (a public exponent of 1, an even modulus...).
    key_defect: Option<String>,
}

impl Certificate {
    /// Parses a DER certificate. `origin` names the input in errors.
    pub fn from_der(der: &[u8], origin: &str) -> Result<Self> {
        let (rest, x509) = X509Certificate::from_der(der).map_err(|e| {
            Error::input(format!("{origin}: not a valid X.509 certificate"))
                .caused_by(e)
                .with_hint("give a PEM (-----BEGIN CERTIFICATE-----), DER or PFX file")
        })?;
        if !rest.is_empty() {
            return Err(Error::input(format!("{origin}: trailing bytes after the certificate")));
        }
        // The parser's slices lie in `der`, the input: the parts are found there, at the same
        // offsets as in the copy kept.
        let owned = der[..der.len() - rest.len()].to_vec();
        let spki = x509.public_key();
        let mut key_defect = None;
        let (key_algorithm, key_bits, rsa_public_key) = match spki.parsed() {
            Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => {
                key_defect = rsa_key_defect(&rsa);
                ("RSA".to_string(), rsa.key_size(), Some(Part::of(der, &spki.subject_public_key.data)))
            }
            Ok(x509_parser::public_key::PublicKey::EC(ec)) => ("EC".to_string(), ec.key_size(), None),
            Ok(other) => (format!("{:?}", other).split('(').next().unwrap_or("unknown").to_string(), 0, None),
            Err(_) => (oid_name(&spki.algorithm.algorithm), 0, None),
        };
        let mut serial = x509.raw_serial();
        while serial.len() > 1 && serial[0] == 0 {
            serial = &serial[1..];
        }
        Ok(Certificate {
            subject: dn::format(x509.subject()),
            issuer: dn::format(x509.issuer()),
            subject_der: Part::of(der, x509.subject().as_raw()),
            issuer_der: Part::of(der, x509.issuer().as_raw()),
            serial_hex: hex_upper(serial),
            not_before: x509.validity().not_before.to_datetime(),
            not_after: x509.validity().not_after.to_datetime(),
            key_algorithm,
            key_bits,
            signature_algorithm: oid_name(&x509.signature_algorithm.algorithm),
            rsa_public_key,
            key_defect,
            der: owned,
        })
    }

    /// Why no signature can be made or checked with this certificate's RSA key (public exponent
    /// 0, 1 or even, an even modulus, more than [`MAX_RSA_BITS`] bits); `None` for a sound key
    /// and for keys that are not RSA (reported as such elsewhere).
    pub fn key_defect(&self) -> Option<&str> {
        self.key_defect.as_deref()
    }

    /// The DER bytes.
    pub fn der(&self) -> &[u8] {
        &self.der
    }
    /// Subject DN as an RFC 4514 string, last RDN first (`CN=App, O=Contoso\, Inc.`).
    pub fn subject(&self) -> &str {
        &self.subject
    }
    /// Issuer DN.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }
    /// DER of the subject name.
    pub fn subject_der(&self) -> &[u8] {
        self.subject_der.get(&self.der)
    }
    /// DER of the issuer name.
    pub fn issuer_der(&self) -> &[u8] {
        self.issuer_der.get(&self.der)
    }
    /// Start of validity.
    pub fn not_before(&self) -> OffsetDateTime {
        self.not_before
    }
    /// End of validity.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }
    /// Key size in bits (0 when unknown).
    pub fn key_bits(&self) -> usize {
        self.key_bits
    }
    /// Whether the key is RSA.
    pub fn is_rsa(&self) -> bool {
        self.rsa_public_key.is_some()
    }
    /// PKCS#1 RSAPublicKey DER, for RSA keys.
    pub fn rsa_public_key(&self) -> Option<&[u8]> {
        self.rsa_public_key.as_ref().map(|p| p.get(&self.der))
    }
    /// SHA-1 digest of the DER.
    pub fn sha1(&self) -> [u8; 20] {
        sha1(&self.der)
    }
    /// SHA-1 thumbprint as upper-case hex (what the portal shows).
    pub fn thumbprint(&self) -> String {
        hex_upper(&self.sha1())
    }
    /// `customKeyIdentifier`: standard base64 of the SHA-1 digest.
    pub fn custom_key_identifier(&self) -> String {
        b64(&self.sha1())
    }
    /// `x5t`: base64url of the SHA-1 digest, no padding.
    pub fn x5t(&self) -> String {
        b64url(&self.sha1())
    }
    /// `x5t#S256`: base64url of the SHA-256 digest, no padding.
    pub fn x5t_s256(&self) -> String {
        b64url(&sha256(&self.der))
    }
    /// Standard base64 of the DER (`value` / `key` in a manifest, `x5c` in a JWT).
    pub fn value_b64(&self) -> String {
        b64(&self.der)
    }
    /// Whether the certificate is valid at `at`.
    pub fn is_valid_at(&self, at: OffsetDateTime) -> bool {
        self.not_before <= at && at <= self.not_after
    }
    /// PEM encoding.
    pub fn to_pem(&self) -> String {
        pem::encode(&pem::Pem::new("CERTIFICATE", self.der.clone()))
    }

    /// What is wrong with this certificate as an Entra credential, at `now`. Empty when fine.
    pub fn problems(&self, now: OffsetDateTime) -> Vec<String> {
        let mut p = Vec::new();
        if now > self.not_after {
            p.push("expired".to_string());
        } else if now < self.not_before {
            p.push("not yet valid".to_string());
        } else {
            let days = dates::days_between(now, self.not_after);
            if days < EXPIRING_DAYS {
                p.push(format!("expires in {days} days"));
            }
        }
        if !self.is_rsa() {
            p.push("not an RSA key".to_string());
        } else if let Some(d) = self.key_defect() {
            p.push(d.to_string());
        } else if self.key_bits < MIN_RSA_BITS {
            p.push(format!("key smaller than {MIN_RSA_BITS} bits"));
        }
        p
    }

    /// Refuses a certificate Entra would refuse as a credential: not RSA, under 2048 bits, or
    /// expired. `origin` names the input.
    pub fn ensure_usable(&self, origin: &str, now: OffsetDateTime) -> Result<()> {
        if !self.is_rsa() {
            return Err(Error::input(format!("{origin}: the certificate's key is {}, not RSA", self.key_algorithm))
                .with_hint(format!(
                    "Entra certificate credentials need an RSA key: create one with {}",
                    Action::NewCertificate { key_size: None }
                )));
        }
        if let Some(d) = self.key_defect() {
            return Err(Error::input(format!("{origin}: the certificate's RSA key is unusable: {d}")).with_hint(
                format!("no one can sign with this key; create {}", Action::NewCertificate { key_size: None }),
            ));
        }
        if self.key_bits < MIN_RSA_BITS {
            return Err(Error::input(format!(
                "{origin}: the certificate's RSA key has {} bits; Entra requires at least {MIN_RSA_BITS}",
                self.key_bits
            ))
            .with_hint(format!("create {} (or 3072, 4096)", Action::NewCertificate { key_size: Some(2048) })));
        }
        if now > self.not_after {
            return Err(Error::input(format!(
                "{origin}: the certificate expired on {}",
                dates::format(self.not_after)
            ))
            .with_hint(format!("create {}", Action::NewCertificate { key_size: None })));
        }
        Ok(())
    }

    /// The Entra values of this certificate at `now` (its status depends on the date).
    pub fn entra_values(&self, now: OffsetDateTime) -> EntraValues {
        EntraValues {
            subject: self.subject.clone(),
            issuer: self.issuer.clone(),
            serial_number: self.serial_hex.clone(),
            not_before: dates::format(self.not_before),
            not_after: dates::format(self.not_after),
            key_algorithm: self.key_algorithm.clone(),
            key_size: self.key_bits,
            signature_algorithm: self.signature_algorithm.clone(),
            thumbprint: self.thumbprint(),
            thumbprint_sha256: hex_upper(&sha256(&self.der)),
            custom_key_identifier: self.custom_key_identifier(),
            x5t: self.x5t(),
            x5t_s256: self.x5t_s256(),
            value: self.value_b64(),
            problems: self.problems(now),
        }
    }
}

/// What makes an RSA public key one no one holds a private key for: RSA needs an odd modulus
/// (a product of two odd primes) and an odd public exponent of at least 3 (0 and 1 make every
/// "signature" trivial, an even one has no inverse). Exponents over 33 bits are refused too, as
/// BoringSSL and aws-lc do for verification. Sizes are bounded by [`MAX_RSA_BITS`].
fn rsa_key_defect(rsa: &x509_parser::public_key::RSAPublicKey) -> Option<String> {
    let strip = |b: &[u8]| -> Vec<u8> { b.iter().copied().skip_while(|&x| x == 0).collect() };
    if rsa.modulus.first().is_some_and(|b| b & 0x80 != 0) || rsa.exponent.first().is_some_and(|b| b & 0x80 != 0) {
        return Some("the RSA modulus or exponent is negative".into());
    }
    let (n, e) = (strip(rsa.modulus), strip(rsa.exponent));
    let bits = |v: &[u8]| v.first().map_or(0, |b| v.len() * 8 - b.leading_zeros() as usize);
    if bits(&n) > MAX_RSA_BITS {
        return Some(format!("the RSA key has {} bits, over the {MAX_RSA_BITS}-bit bound keycred accepts", bits(&n)));
    }
    if n.last().is_none_or(|b| b & 1 == 0) {
        return Some("the RSA modulus is even (or zero): it is not a product of two primes".into());
    }
    if bits(&e) > 33 {
        return Some(format!("the RSA public exponent has {} bits; at most 33 are accepted", bits(&e)));
    }
    let e_value = e.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    if e_value < 3 || e_value % 2 == 0 {
        return Some(format!("the RSA public exponent is {e_value}; it must be odd and at least 3"));
    }
    None
}

fn oid_name(oid: &x509_parser::der_parser::oid::Oid) -> String {
    x509_parser::objects::oid2sn(oid, x509_parser::objects::oid_registry())
        .map(str::to_string)
        .unwrap_or_else(|_| oid.to_id_string())
}

/// The values of a certificate as Entra and its tools use them. JSON field names are stable.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct EntraValues {
    /// Subject DN as an RFC 4514 string, last RDN first.
    pub subject: String,
    /// Issuer DN, likewise.
    pub issuer: String,
    /// Serial number, upper-case hex.
    pub serial_number: String,
    /// Start of validity, RFC 3339 UTC.
    pub not_before: String,
    /// End of validity, RFC 3339 UTC.
    pub not_after: String,
    /// `RSA` (or what else the key is).
    pub key_algorithm: String,
    /// Key size in bits.
    pub key_size: usize,
    /// Signature algorithm name (`sha256WithRSAEncryption`).
    pub signature_algorithm: String,
    /// SHA-1, upper-case hex.
    pub thumbprint: String,
    /// SHA-256, upper-case hex.
    pub thumbprint_sha256: String,
    /// Standard base64 of SHA-1.
    pub custom_key_identifier: String,
    /// base64url SHA-1, no padding.
    pub x5t: String,
    /// base64url SHA-256, no padding.
    #[serde(rename = "x5tS256")]
    pub x5t_s256: String,
    /// Standard base64 of the DER.
    pub value: String,
    /// What is wrong, empty when fine.
    pub problems: Vec<String>,
}

impl EntraValues {
    /// `name: value` lines, aligned, for text output.
    pub fn text_lines(&self) -> Vec<(&'static str, String)> {
        vec![
            ("subject", self.subject.clone()),
            ("issuer", self.issuer.clone()),
            ("serialNumber", self.serial_number.clone()),
            ("notBefore", self.not_before.clone()),
            ("notAfter", self.not_after.clone()),
            ("keyAlgorithm", self.key_algorithm.clone()),
            ("keySize", self.key_size.to_string()),
            ("signatureAlgorithm", self.signature_algorithm.clone()),
            ("thumbprint", self.thumbprint.clone()),
            ("thumbprintSha256", self.thumbprint_sha256.clone()),
            ("customKeyIdentifier", self.custom_key_identifier.clone()),
            ("x5t", self.x5t.clone()),
            ("x5tS256", self.x5t_s256.clone()),
            ("value", self.value.clone()),
            ("problems", if self.problems.is_empty() { "none".into() } else { self.problems.join("; ") }),
        ]
    }
}
