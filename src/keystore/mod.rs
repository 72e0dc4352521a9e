//! Where a private key lives, named by one string: a key file's path, a `pkcs11:` URI (RFC 7512)
//! for a key on a PKCS#11 token (HSM, smart card, TPM, SoftHSM2), or an Azure Key Vault key URL
//! (`https://NAME.vault.azure.net/keys/KEY[/VERSION]`, [`keyvault`]). [`open`] turns the name
//! into a [`Signer`]; everything that signs takes that signer and never sees where the key is.
//!
//! This module sits above [`crate::cert`]: it builds signers on cert's seam, and cert never
//! imports it. Each store is one branch of [`open`]'s dispatch.

pub mod keyvault;
#[cfg(feature = "pkcs11")]
pub mod pkcs11;
pub mod uri;
mod vault_http;

use crate::cert::Signer;
use crate::secret::SecretString;
use crate::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What opening a key may need besides its name.
#[derive(Default, Debug, Clone)]
pub struct Access {
    /// Password of an encrypted key file or PFX.
    pub password: Option<SecretString>,
    /// The PKCS#11 module, when the URI has no `module-path`.
    pub pkcs11_module: Option<PathBuf>,
    /// The token's user PIN, when the URI has no `pin-source`.
    pub pin: Option<SecretString>,
    /// How to reach a vault, for a Key Vault key.
    pub vault: Option<keyvault::VaultOptions>,
}

/// Whether `spec` names a key on a PKCS#11 token, not a file.
pub fn is_store(spec: &str) -> bool {
    uri::is_pkcs11(spec)
}

/// Whether `spec` names a key held in a vault (a Key Vault key URL) rather than a key file.
pub fn is_key_reference(spec: &str) -> bool {
    let s = spec.trim().to_ascii_lowercase();
    s.starts_with("https://") || s.starts_with("http://")
}

/// The signer of the key `spec` names: a `pkcs11:` URI, a Key Vault key URL, else a key file's
/// path.
pub fn open(spec: &str, access: &Access) -> Result<Arc<dyn Signer>> {
    if uri::is_pkcs11(spec) {
        return open_pkcs11(spec, access);
    }
    if is_key_reference(spec) {
        let vault = access.vault.clone().ok_or_else(|| {
            Error::input(format!("{spec}: a Key Vault key, but no way to reach the vault was given"))
                .with_hint("give the vault's credential (the AZURE_* identity or a token variable)")
        })?;
        return Ok(Arc::new(keyvault::VaultSigner::open(spec, vault)?));
    }
    Ok(Arc::new(crate::cert::load_key(Path::new(spec), access.password.as_ref())?))
}

#[cfg(feature = "pkcs11")]
fn open_pkcs11(spec: &str, access: &Access) -> Result<Arc<dyn Signer>> {
    let uri = uri::Pkcs11Uri::parse(spec)?;
    Ok(Arc::new(pkcs11::open_key(&uri, &access.pkcs11())?))
}

#[cfg(not(feature = "pkcs11"))]
fn open_pkcs11(spec: &str, _: &Access) -> Result<Arc<dyn Signer>> {
    let uri = uri::Pkcs11Uri::parse(spec)?;
    Err(Error::input(format!("{uri}: this build of keycred has no PKCS#11 support"))
        .with_hint("build keycred with the pkcs11 feature"))
}

impl Access {
    /// What reaching a token needs.
    #[cfg(feature = "pkcs11")]
    pub fn pkcs11(&self) -> pkcs11::Access {
        pkcs11::Access { module: self.pkcs11_module.clone(), pin: self.pin.clone() }
    }
}

/// Refuses `spec` where only files are accepted, naming `what` (for stores a command cannot use).
pub fn file_only(spec: &str, what: &str) -> Result<()> {
    if is_store(spec) || is_key_reference(spec) {
        return Err(Error::input(format!("{what}: a key outside a file ({spec}) is not accepted here"))
            .with_hint("give a key file"));
    }
    Ok(())
}
