//! Fuzzes certificate loading (PEM, DER, PFX detection and parsing) with and without a password:
//! any input must give a certificate or an input error, never a panic.
#![no_main]

use keycred::secret::SecretString;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let password = SecretString::new("fuzz".to_string());
    for pw in [None, Some(&password)] {
        if let Ok(f) = keycred::cert::load_bytes(data, pw, "fuzz-input") {
            // Everything computed from a loaded certificate must be computable.
            for c in &f.certs {
                let _ = (c.thumbprint(), c.custom_key_identifier(), c.x5t(), c.x5t_s256(), c.key_bits());
                let _ = c.entra_values(keycred::dates::now());
            }
        }
    }
});
