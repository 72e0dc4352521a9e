//! Keys kept outside keycred's files, as [`Signer`]s: [`open`] takes where the key is and returns
//! what signs with it. Azure Key Vault keys are named by URL
//! (`https://NAME.vault.azure.net/keys/KEY[/VERSION]`, [`keyvault`]).

pub mod keyvault;
mod vault_http;

use crate::cert::Signer;
use crate::{Error, Result};
use std::sync::Arc;

/// Whether `spec` names a key held outside a file (a vault key URL) rather than a key file.
pub fn is_key_reference(spec: &str) -> bool {
    let s = spec.trim().to_ascii_lowercase();
    s.starts_with("https://") || s.starts_with("http://")
}

/// The signer for the key `spec` names: a Key Vault key URL, with `vault` saying how to reach
/// the vault.
pub fn open(spec: &str, vault: &keyvault::VaultOptions) -> Result<Arc<dyn Signer>> {
    if is_key_reference(spec) {
        return Ok(Arc::new(keyvault::VaultSigner::open(spec, vault.clone())?));
    }
    Err(Error::input(format!("'{spec}' names no key keycred can open"))
        .with_hint("give a Key Vault key as https://NAME.vault.azure.net/keys/KEY[/VERSION], or a key file"))
}
