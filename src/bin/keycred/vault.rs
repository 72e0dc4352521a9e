//! Keys in Azure Key Vault on the command line: `--key https://NAME.vault.azure.net/keys/KEY`
//! makes a credential whose key stays in the vault (its certificate from `--cert`, else the
//! vault's certificate of the same name), and the options saying how to reach the vault
//! (`--vault-token-env`, else the `AZURE_*` identity; `--ca-file`, `--timeout`).

use super::common::{CredArgs, HttpArgs};
use keycred::cert::{self, LoadedCredential};
use keycred::keystore::keyvault::{run_apart, VaultClient, VaultCredential, VaultOptions, VaultSigner};
use keycred::{secret, Error, Result};
use std::path::Path;
use std::sync::Arc;

/// How to reach a vault: the token from `--vault-token-env VAR`, else the `AZURE_*` identity.
pub fn options(token_env: Option<&str>, http: Option<&HttpArgs>) -> Result<VaultOptions> {
    let credential = match token_env {
        Some(var) => VaultCredential::Token(secret::from_env(var).map_err(|e| e.context("--vault-token-env"))?),
        None => VaultCredential::from_azure_env()?,
    };
    Ok(VaultOptions {
        credential,
        ca_file: http.and_then(|h| h.ca.ca_file.clone()),
        timeout: match http {
            Some(h) => h.timeout()?,
            None => keycred::token::DEFAULT_TIMEOUT,
        },
    })
}

/// The credential of `--key KEY_URL`: the certificate from `--cert` (unless it only came from
/// `AZURE_CLIENT_CERTIFICATE_PATH`, the vault identity's) or the vault's certificate named as
/// the key, and the vault key as signer.
pub fn load_credential(a: &CredArgs, key_url: &str, http: Option<&HttpArgs>) -> Result<LoadedCredential> {
    let opts = options(a.vault_token_env.as_deref(), http)?;
    let client = Arc::new(VaultClient::new(key_url, opts.clone()).map_err(|e| e.context("--key"))?);
    let from_env =
        a.cert.as_ref().map(|c| c.as_os_str()) == std::env::var_os("AZURE_CLIENT_CERTIFICATE_PATH").as_deref();
    let given = a.cert.as_ref().filter(|_| !from_env);
    if let Some(path) = given {
        let loaded = cert::load_file(path, None)?;
        let cert =
            loaded.certs.into_iter().next().ok_or_else(|| Error::internal("load_file returned no certificate"))?;
        let signer = VaultSigner::open(key_url, opts)?;
        return LoadedCredential::with_signer(cert, Vec::new(), Arc::new(signer), path);
    }
    let name = key_name(key_url)?;
    // The vault's certificate of the key's name; a key without one needs --cert.
    let vc = run_apart(client.get_certificate(&name))?;
    let public = vc.cert.rsa_public_key().unwrap_or_default().to_vec();
    let signer = VaultSigner::with_public_key(client, &vc.kid, &public);
    LoadedCredential::with_signer(vc.cert, Vec::new(), Arc::new(signer), Path::new(&vc.id))
}

/// The Key Vault key URL `--key` gives, if it gives one (a key file's path otherwise).
pub fn key_url(a: &CredArgs) -> Option<&str> {
    a.key.as_deref().and_then(|k| k.to_str()).filter(|k| keycred::keystore::is_key_reference(k))
}

/// The key's name in `https://VAULT/keys/NAME[/VERSION]`.
fn key_name(key_url: &str) -> Result<String> {
    let u = url::Url::parse(key_url).map_err(|_| Error::input(format!("--key '{key_url}': not a URL")))?;
    let segs: Vec<&str> = u.path().trim_matches('/').split('/').collect();
    match segs.as_slice() {
        ["keys", name, ..] if !name.is_empty() => Ok(name.to_string()),
        _ => Err(Error::input(format!("--key '{key_url}': not a Key Vault key URL"))
            .with_hint("give it as https://NAME.vault.azure.net/keys/KEY[/VERSION]")),
    }
}
