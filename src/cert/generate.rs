//! Self-signed certificate generation for app credentials.
//!
//! The certificate is what Entra expects of a client credential: RSA (2048, 3072 or 4096 bits),
//! sha256WithRSAEncryption, a random positive serial, CA:false, digitalSignature, clientAuth and
//! a subject key identifier.

use super::signer::{RcgenKey, Signer};
use super::{Certificate, PrivateKey};
use crate::wording::Input;
use crate::{dates, Error, Result};
use rcgen::{
    CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, RsaKeySize, SerialNumber,
    PKCS_RSA_SHA256,
};
use time::{Duration, OffsetDateTime};

/// RSA key sizes keycred generates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeySize {
    /// 2048 bits (default, Entra's minimum).
    Rsa2048,
    /// 3072 bits.
    Rsa3072,
    /// 4096 bits.
    Rsa4096,
}

impl KeySize {
    /// From a bit count; anything but 2048, 3072 or 4096 is refused with a clear message.
    pub fn from_bits(bits: u32) -> Result<Self> {
        match bits {
            2048 => Ok(KeySize::Rsa2048),
            3072 => Ok(KeySize::Rsa3072),
            4096 => Ok(KeySize::Rsa4096),
            b if b < 2048 => {
                Err(Error::input(format!("{} {b}: Entra requires RSA keys of at least 2048 bits", Input::KeySize))
                    .with_hint(format!("give {} as 2048, 3072 or 4096", Input::KeySize)))
            }
            b => Err(Error::input(format!("{} {b}: unsupported RSA key size", Input::KeySize))
                .with_hint(format!("give {} as 2048, 3072 or 4096", Input::KeySize))),
        }
    }
    /// Bits.
    pub fn bits(self) -> u32 {
        match self {
            KeySize::Rsa2048 => 2048,
            KeySize::Rsa3072 => 3072,
            KeySize::Rsa4096 => 4096,
        }
    }
}

/// Validity of a new certificate.
#[derive(Clone, Copy, Debug)]
pub enum Validity {
    /// From now for this many days.
    Days(u32),
    /// From a date for this many days.
    StartDays(OffsetDateTime, u32),
    /// From now until a date.
    Until(OffsetDateTime),
    /// Explicit bounds.
    Range(OffsetDateTime, OffsetDateTime),
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct NewCertificate {
    /// Subject (and issuer) DN, `CN=...` or a full DN such as `CN=App, O=Contoso, C=FR`, as
    /// [`super::dn::parse`] reads it.
    pub subject: String,
    /// Key size.
    pub key_size: KeySize,
    /// Validity.
    pub validity: Validity,
}

/// Checks the validity bounds before any work is done, and resolves them at `now`.
pub fn resolve_validity(v: Validity, now: OffsetDateTime) -> Result<(OffsetDateTime, OffsetDateTime)> {
    // Start a minute in the past so a fresh certificate is valid on a server whose clock is a
    // little behind.
    let from_now = now.replace_nanosecond(0).unwrap_or(now) - Duration::minutes(1);
    let (start, end) = match v {
        Validity::Days(d) => (from_now, from_now + days(d)?),
        Validity::StartDays(start, d) => (start, start + days(d)?),
        Validity::Until(end) => (from_now, end),
        Validity::Range(a, b) => (a, b),
    };
    if end <= start {
        let (start_name, start) = match v {
            Validity::Until(_) => ("now".to_string(), dates::format(now)),
            _ => (Input::NotBefore.to_string(), dates::format(start)),
        };
        return Err(Error::input(format!(
            "{} {} is not after {start_name} {start}",
            Input::NotAfter,
            dates::format(end)
        ))
        .with_hint(format!("give {} later than the start of validity", Input::NotAfter)));
    }
    Ok((start, end))
}

fn days(d: u32) -> Result<Duration> {
    match d {
        0 => Err(Error::input(format!("{} 0: the certificate would never be valid", Input::Days))
            .with_hint(format!("give {} as 1 or more", Input::Days))),
        d if d > 3650 * 3 => {
            Err(Error::input(format!("{} {d}: more than 30 years", Input::Days)).with_hint("use a shorter validity"))
        }
        d => Ok(Duration::days(d as i64)),
    }
}

/// Generates an RSA key and a self-signed certificate.
pub fn generate(req: &NewCertificate) -> Result<(Certificate, PrivateKey)> {
    let dn = super::dn::parse(&req.subject)?;
    let (not_before, not_after) = resolve_validity(req.validity, dates::now())?;
    let size = match req.key_size {
        KeySize::Rsa2048 => RsaKeySize::_2048,
        KeySize::Rsa3072 => RsaKeySize::_3072,
        KeySize::Rsa4096 => RsaKeySize::_4096,
    };
    let key = KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, size)
        .map_err(|e| Error::internal("RSA key generation failed").caused_by(e))?;
    let certificate = self_signed(&key, dn, not_before, not_after)?;
    let private = PrivateKey::from_generated(key.serialize_der())?;
    Ok((certificate, private))
}

/// A self-signed certificate for the key `signer` holds (on a token, in a vault, or a key file),
/// made as [`generate`] makes them: only the signature goes through the signer.
pub fn self_signed_with(signer: &dyn Signer, subject: &str, validity: Validity) -> Result<Certificate> {
    let dn = super::dn::parse(subject)?;
    let (not_before, not_after) = resolve_validity(validity, dates::now())?;
    let key = RcgenKey::new(signer);
    let params = credential_params(dn, not_before, not_after);
    let cert = params.self_signed(&key).map_err(|e| key.error("certificate signing", e))?;
    Certificate::from_der(cert.der(), "generated certificate")
}

/// A PKCS#10 certificate signing request (PEM) for the key `signer` holds, asking for what
/// [`generate`] puts in its certificates (subject, clientAuth, digitalSignature), for a CA to
/// issue the certificate.
pub fn request_with(signer: &dyn Signer, subject: &str) -> Result<String> {
    let dn = super::dn::parse(subject)?;
    let key = RcgenKey::new(signer);
    let mut params = CertificateParams::default();
    params.distinguished_name = dn;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let csr = params.serialize_request(&key).map_err(|e| key.error("certificate request signing", e))?;
    csr.pem().map_err(|e| Error::internal("cannot encode the certificate request").caused_by(e))
}

fn self_signed(
    key: &KeyPair,
    dn: rcgen::DistinguishedName,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<Certificate> {
    let params = credential_params(dn, not_before, not_after);
    let cert = params.self_signed(key).map_err(|e| Error::internal("certificate signing failed").caused_by(e))?;
    Certificate::from_der(cert.der(), "generated certificate")
}

/// What an Entra client certificate carries (see the module header).
fn credential_params(
    dn: rcgen::DistinguishedName,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = dn;
    params.not_before = not_before;
    params.not_after = not_after;
    params.serial_number = Some(SerialNumber::from_slice(&random_serial()));
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params
}

/// Self-signed certificates for one existing key, read once: each certificate costs a signature,
/// not a key generation. For making many test certificates quickly (`keycred emulate
/// --generate-tenant`); every certificate has its own serial, so its own thumbprint.
pub struct KeySigner {
    pair: KeyPair,
}

impl KeySigner {
    /// For `key` (RSA, signing sha256WithRSAEncryption).
    pub fn new(key: &PrivateKey) -> Result<Self> {
        let pair = KeyPair::try_from(key.pkcs8_der())
            .map_err(|e| Error::internal("cannot use the private key for signing certificates").caused_by(e))?;
        Ok(KeySigner { pair })
    }

    /// A certificate for `subject` (as [`super::dn::parse`] reads it) valid over the given bounds.
    pub fn self_signed(
        &self,
        subject: &str,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<Certificate> {
        if not_after <= not_before {
            return Err(Error::input(format!(
                "validity {} to {}: the end is not after the start",
                dates::format(not_before),
                dates::format(not_after)
            )));
        }
        self_signed(&self.pair, super::dn::parse(subject)?, not_before, not_after)
    }
}

/// 16 random bytes, positive and without a leading zero byte (RFC 5280: at most 20 octets,
/// positive).
fn random_serial() -> Vec<u8> {
    use rand::RngCore;
    let mut s = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut s);
    s[0] = (s[0] & 0x7f) | 0x40;
    s.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_sizes() {
        assert!(KeySize::from_bits(1024).unwrap_err().to_string().contains("at least 2048"));
        assert!(KeySize::from_bits(2500).is_err());
        assert_eq!(KeySize::from_bits(4096).unwrap().bits(), 4096);
    }
}
