//! Keys on tokens from the command line: `--key pkcs11:...` wherever a key file goes, the
//! module (`--pkcs11-module`, `KEYCRED_PKCS11_MODULE`) and the PIN (`--pin-env VAR` or the URI's
//! `pin-source`; never a command-line argument, which `ps` and shell histories show).

use keycred::cert::{load_file, Certificate, LoadedCredential, Signer};
use keycred::keystore::pkcs11::{self, Needs, TokenKey};
use keycred::keystore::uri::Pkcs11Uri;
use keycred::secret::{self, SecretString};
use keycred::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How to reach a token: its module and its PIN.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TokenArgs {
    /// PKCS#11 module (the token vendor's shared library) for pkcs11: keys whose URI has no module-path
    #[arg(long, env = "KEYCRED_PKCS11_MODULE", value_name = "PATH")]
    pub pkcs11_module: Option<PathBuf>,
    /// Environment variable holding the token's user PIN, for pkcs11: keys whose URI has no pin-source
    #[arg(long, value_name = "VAR")]
    pub pin_env: Option<String>,
}

impl TokenArgs {
    /// The module and PIN given (the PIN read from its variable now).
    pub fn access(&self) -> Result<pkcs11::Access> {
        let pin = self.pin_env.as_deref().map(secret::from_env).transpose()?;
        Ok(pkcs11::Access { module: self.pkcs11_module.clone(), pin })
    }
    /// The key `spec` (a `pkcs11:` URI) names, opened on its token.
    pub fn key(&self, spec: &str) -> Result<TokenKey> {
        let uri = uri(spec)?;
        pkcs11::open_key(&uri, &self.access()?).map_err(hint)
    }
    /// A new key pair of `bits` generated on the token `spec` names.
    pub fn generate(&self, spec: &str, bits: u32) -> Result<TokenKey> {
        let uri = uri(spec)?;
        pkcs11::generate(&uri, &self.access()?, bits).map_err(hint)
    }
}

/// `spec` parsed as a `pkcs11:` URI, errors naming `--key`.
pub fn uri(spec: &str) -> Result<Pkcs11Uri> {
    Pkcs11Uri::parse(spec).map_err(|e| e.context("--key"))
}

/// The command line's way of giving what reaching a token lacked.
pub fn hint(e: Error) -> Error {
    match e.find_source::<Needs>() {
        Some(Needs::Module) => e.with_hint(
            "pass --pkcs11-module PATH or set KEYCRED_PKCS11_MODULE (or add ?module-path=PATH to the URI)",
        ),
        Some(Needs::Pin) => e.with_hint(
            "pass --pin-env VAR naming an environment variable that holds the PIN (or add ?pin-source=file:PATH to the URI)",
        ),
        None => e,
    }
}

/// The `--key` value, when it names a key on a token rather than a file.
pub fn on_token(key: Option<&Path>) -> Option<&str> {
    key.and_then(Path::to_str).filter(|k| keycred::keystore::is_store(k))
}

/// A credential whose key is on a token: the certificate (and chain) from `cert`, or without one
/// the certificate stored beside the key on the token.
pub fn load_credential(
    cert: Option<&Path>,
    spec: &str,
    args: &TokenArgs,
    password: Option<&SecretString>,
) -> Result<LoadedCredential> {
    let key = args.key(spec)?;
    let (leaf, chain, origin) = match cert {
        Some(path) => {
            let (leaf, chain) = leaf_of(load_file(path, password)?.certs, &key);
            (leaf, chain, path.to_path_buf())
        }
        None => (stored_certificate(&key)?, Vec::new(), PathBuf::from(key.describe())),
    };
    LoadedCredential::with_signer(leaf, chain, Arc::new(key), &origin)
}

/// The certificate stored beside `key` on its token.
pub fn stored_certificate(key: &TokenKey) -> Result<Certificate> {
    key.certificate()?.ok_or_else(|| {
        Error::input(format!("{}: no certificate beside the key on the token", key.describe())).with_hint(
            "pass --cert FILE (the key's certificate), or create key and certificate together with `keycred new --key pkcs11:...`",
        )
    })
}

/// The certificate of `key` first (a file's certificates come in any order), then the others.
fn leaf_of(mut certs: Vec<Certificate>, key: &dyn Signer) -> (Certificate, Vec<Certificate>) {
    let at = certs.iter().position(|c| keycred::cert::signer::matches(key, c)).unwrap_or(0);
    let leaf = certs.remove(at);
    (leaf, certs)
}
