//! `--vault NAME[=APPID,...]`: an emulated Azure Key Vault data plane (keys and certificates) on
//! the emulator's own port, reached by host name: `https://NAME.vault.localhost:PORT`.
//!
//! Azure's SDKs send their first request without a token, read the 401 challenge
//! (`WWW-Authenticate: Bearer authorization="{authority}/{tenant}", resource="{resource}"`), ask
//! for `{resource}/.default`, and check that the vault's host ends with `.` + the resource's host
//! (with its port). So the challenge names `https://vault.localhost:PORT` and the token endpoint
//! mints tokens for that resource ([`Vaults::resource_api`]); a real vault names
//! `https://vault.azure.net`. Private keys stay in the emulator's memory: no answer carries one.

mod auth;
mod ops;
pub(super) mod route;
mod store;

use super::apps::{self, Api, TokenVersion};
use crate::{Error, Result};
use std::sync::Arc;

/// Key Vault's first-party application id: what its tokens' resource app is.
pub(super) const KEY_VAULT_APP_ID: &str = "cfa8b339-82a2-471a-a3c9-0fc0be7a4093";
/// The domain emulated vaults live under (`NAME.vault.localhost`).
pub const VAULT_DOMAIN: &str = "vault.localhost";

/// A vault to serve: its name and the apps allowed to use it (every app when empty).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VaultSpec {
    /// Vault name: 3-24 letters, digits and hyphens, starting with a letter (Key Vault's rule).
    pub name: String,
    /// Application (client) ids granted access; empty: every app of the tenant.
    pub apps: Vec<String>,
}

/// Parses `NAME[=APPID[,APPID...]]` (as `--vault` takes it).
pub fn parse_vault(s: &str) -> Result<VaultSpec> {
    let (name, apps) = match s.split_once('=') {
        Some((n, a)) => (n.trim(), a.split(',').map(str::trim).filter(|a| !a.is_empty()).collect::<Vec<_>>()),
        None => (s.trim(), Vec::new()),
    };
    let ok_name = (3..=24).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.ends_with('-')
        && !name.contains("--");
    if !ok_name {
        return Err(Error::input(format!("--vault '{s}': '{name}' is not a Key Vault name"))
            .with_hint("a vault name has 3 to 24 letters, digits and single hyphens and starts with a letter, for example --vault contoso-kv"));
    }
    for a in &apps {
        if uuid::Uuid::try_parse(a).is_err() {
            return Err(Error::input(format!("--vault '{s}': '{a}' is not an application id (GUID)"))
                .with_hint("name the apps allowed to use the vault by appId: --vault NAME=APPID[,APPID...]"));
        }
    }
    Ok(VaultSpec { name: name.to_ascii_lowercase(), apps: apps.iter().map(|a| a.to_ascii_lowercase()).collect() })
}

/// One served vault: who may use it, and what it holds.
pub(super) struct Vault {
    name: String,
    apps: Vec<String>,
    store: store::Store,
}

/// The served vaults, their challenge resource and authority.
#[derive(Default)]
pub struct Vaults {
    vaults: Vec<Arc<Vault>>,
    port: u16,
    /// `https://vault.localhost:PORT`: the challenge's resource, the tokens' audience.
    resource: String,
    /// `https://localhost:PORT/{tenant}`: the challenge's authority.
    authority: String,
}

impl Vaults {
    /// The vaults of `specs`, served on `port` for `tenant`.
    pub(super) fn new(specs: &[VaultSpec], port: u16, tenant: &str) -> Self {
        let vaults = specs
            .iter()
            .map(|s| Arc::new(Vault { name: s.name.clone(), apps: s.apps.clone(), store: store::Store::default() }))
            .collect();
        Vaults {
            vaults,
            port,
            resource: format!("https://{VAULT_DOMAIN}:{port}"),
            authority: format!("https://localhost:{port}/{tenant}"),
        }
    }

    /// `(name, url)` of every vault.
    pub(super) fn list(&self) -> Vec<(String, String)> {
        self.vaults.iter().map(|v| (v.name.clone(), self.url(&v.name))).collect()
    }

    pub(super) fn url(&self, name: &str) -> String {
        format!("https://{name}.{VAULT_DOMAIN}:{}", self.port)
    }

    /// The host names the TLS certificate must name.
    pub fn host_names(specs: &[VaultSpec]) -> Vec<String> {
        specs.iter().map(|s| format!("{}.{VAULT_DOMAIN}", s.name)).collect()
    }

    /// Key Vault as a resource of the token endpoint, when `identifier` is the challenge's
    /// resource (with or without trailing `/`): v1 tokens whose `aud` is the resource as asked.
    pub(super) fn resource_api(&self, identifier: &str) -> Option<Arc<Api>> {
        let r = identifier.trim_end_matches('/');
        (!self.vaults.is_empty() && r.eq_ignore_ascii_case(&self.resource)).then(|| {
            Arc::new(Api {
                app_id: KEY_VAULT_APP_ID.to_string(),
                display_name: "Azure Key Vault".to_string(),
                identifier_uris: vec![self.resource.clone()],
                token_version: TokenVersion::V1,
                scopes: Vec::new(),
                app_roles: Vec::new(),
                builtin: true,
                idtyp: apps::IdTyp::Never,
            })
        })
    }

    /// The vault a request's host names (`NAME.vault.localhost[:PORT]`), if any.
    pub(super) fn vault_of_host(&self, host: &str) -> Option<Option<Arc<Vault>>> {
        let host =
            host.rsplit_once(':').filter(|(_, p)| p.chars().all(|c| c.is_ascii_digit())).map_or(host, |(h, _)| h);
        let name = host.to_ascii_lowercase().strip_suffix(&format!(".{VAULT_DOMAIN}"))?.to_string();
        Some(self.vaults.iter().find(|v| v.name == name).cloned())
    }
}
