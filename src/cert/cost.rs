//! Bounds on the work a password-protected input may demand before keycred decrypts it.
//!
//! PKCS#12 MACs, PBES1/PBES2 encryption and encrypted PKCS#8 keys all carry their own iteration
//! count (or scrypt cost), chosen by whoever wrote the file. Unchecked, a 2.5 KB PFX saying
//! 2^31-1 iterations keeps `keycred show` busy for minutes, and the MAC is checked even without a
//! password. Every count is read from the structure and checked against these caps before any
//! key derivation runs.

use crate::{Error, Result};
use pkcs8::der::asn1::Any;
use pkcs8::der::{Decode, Encode};

/// Most PBKDF2 or PKCS#12 KDF iterations accepted (MAC and encryption alike). Real tools write
/// far fewer: OpenSSL 2,048, Windows 2,000, .NET 2,000 (and .NET refuses more than 600,000 on
/// import); a million already costs about half a second per use.
pub const MAX_ITERATIONS: u64 = 1_000_000;

/// Largest scrypt memory accepted (128 · N · r bytes): OpenSSL's own default limit is 32 MiB.
pub const MAX_SCRYPT_MEMORY: u64 = 64 * 1024 * 1024;

const PBES2: &str = "1.2.840.113549.1.5.13";

/// Refuses a DER `AlgorithmIdentifier` of password-based encryption whose cost is over the caps:
/// PBES2 (PBKDF2 iterations, scrypt memory), and PBES1 or the PKCS#12 PBE schemes, whose
/// parameters are `SEQUENCE { salt OCTET STRING, iterations INTEGER }`. Algorithms with no
/// count are left to the decryption, which refuses what it does not know.
pub(crate) fn check_encryption(alg_der: &[u8], what: &str, origin: &str) -> Result<()> {
    let items = match Vec::<Any>::from_der(alg_der) {
        Ok(items) if !items.is_empty() => items,
        _ => return Ok(()),
    };
    let is_pbes2 = items[0].decode_as::<pkcs8::ObjectIdentifier>().is_ok_and(|o| o.to_string() == PBES2);
    if is_pbes2 {
        let Ok(pkcs8::pkcs5::EncryptionScheme::Pbes2(params)) = pkcs8::pkcs5::EncryptionScheme::try_from(alg_der)
        else {
            return Ok(());
        };
        return match &params.kdf {
            pkcs8::pkcs5::pbes2::Kdf::Pbkdf2(p) => check_count(p.iteration_count.into(), what, origin),
            pkcs8::pkcs5::pbes2::Kdf::Scrypt(p) => {
                let memory = 128u64.saturating_mul(p.cost_parameter).saturating_mul(p.block_size.into());
                if memory > MAX_SCRYPT_MEMORY || p.parallelization > 16 {
                    return Err(too_costly(what, origin, &format!("scrypt needing {memory} bytes of memory")));
                }
                Ok(())
            }
            _ => Ok(()),
        };
    }
    let Some(params) = items.get(1) else { return Ok(()) };
    let Ok(params) = params.to_der().map(|d| Vec::<Any>::from_der(&d)) else { return Ok(()) };
    match params {
        Ok(p) if p.len() == 2 && p[0].decode_as::<pkcs8::der::asn1::OctetString>().is_ok() => {
            // A count that does not even fit in 64 bits is over the cap too.
            let count = p[1].decode_as::<u64>().unwrap_or(u64::MAX);
            check_count(count, what, origin)
        }
        _ => Ok(()),
    }
}

/// Refuses an iteration count over [`MAX_ITERATIONS`].
pub(crate) fn check_count(count: u64, what: &str, origin: &str) -> Result<()> {
    if count > MAX_ITERATIONS {
        return Err(too_costly(what, origin, &format!("{count} iterations")));
    }
    Ok(())
}

fn too_costly(what: &str, origin: &str, cost: &str) -> Error {
    Error::input(format!(
        "{origin}: the {what} asks for {cost}, over keycred's limit ({MAX_ITERATIONS} iterations, \
         {MAX_SCRYPT_MEMORY} bytes of scrypt memory); nothing was decrypted"
    ))
    .with_hint(format!(
        "re-export the file with ordinary settings: openssl pkcs12 -in {origin} -nodes | openssl pkcs12 -export -out new.pfx"
    ))
}
