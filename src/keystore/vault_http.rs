//! The wire under the Key Vault client: a vault's base URL (https; http on loopback), one
//! request with `api-version` and an optional bearer token, and the 401 challenge read as
//! Azure's SDKs read it (`authorization` or `authorization_uri`, `resource` or `scope`).
//!
//! Host names under `.localhost` are loopback (RFC 6761 section 6.3, as curl and browsers treat
//! them): they are sent to 127.0.0.1 without asking a resolver that may not know them, which is
//! where the emulator's vaults (`NAME.vault.localhost`) live.

use crate::secret::SecretString;
use crate::{Error, Result};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;
use url::Url;

/// The Key Vault REST API version keycred speaks.
pub const API_VERSION: &str = "7.4";

/// Largest vault answer read (certificates with their policy are a few kilobytes).
const MAX_ANSWER: usize = 1024 * 1024;

/// One vault's base URL and the HTTP client that reaches it.
pub(super) struct VaultHttp {
    base: String,
    client: reqwest::Client,
}

fn is_localhost_name(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    h == "localhost" || h.ends_with(".localhost")
}

impl VaultHttp {
    /// Checks `url` (a vault, key or certificate URL) and keeps its scheme, host and port.
    pub(super) fn new(url: &str, ca_file: Option<&Path>, timeout: Duration) -> Result<VaultHttp> {
        let bad = |why: &str| {
            Error::input(format!("'{url}' is not a Key Vault URL: {why}"))
                .with_hint("give the vault as https://NAME.vault.azure.net, a key as https://NAME.vault.azure.net/keys/KEY[/VERSION]")
        };
        let u = Url::parse(url.trim()).map_err(|_| bad("not a URL"))?;
        let host = u.host_str().ok_or_else(|| bad("no host"))?.to_string();
        let loopback = crate::authority::is_loopback_host(&u) || is_localhost_name(&host);
        match u.scheme() {
            "https" => {}
            "http" if loopback => {}
            "http" => return Err(bad("plain http (Key Vault is https only; http is accepted for loopback hosts)")),
            other => return Err(bad(&format!("scheme '{other}'"))),
        }
        if u.query().is_some() || u.fragment().is_some() || !u.username().is_empty() {
            return Err(bad("it has a query, fragment or user name"));
        }
        let port = u.port_or_known_default().unwrap_or(443);
        let base = match u.port() {
            Some(p) => format!("{}://{host}:{p}", u.scheme()),
            None => format!("{}://{host}", u.scheme()),
        };
        let mut b = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("keycred/", env!("CARGO_PKG_VERSION")))
            // Each signature runs on a short-lived runtime of its own: no pooled connection
            // may outlive it.
            .pool_max_idle_per_host(0)
            // A redirect would resend the bearer token elsewhere.
            .redirect(reqwest::redirect::Policy::none());
        if loopback {
            b = b.no_proxy();
        }
        if is_localhost_name(&host) && host.parse::<std::net::IpAddr>().is_err() {
            b = b.resolve(&host, std::net::SocketAddr::from(([127, 0, 0, 1], port)));
        }
        if let Some(path) = ca_file {
            let pem = crate::fsio::read_limited(path, crate::fsio::MAX_CREDENTIAL_BYTES)?;
            let certs =
                reqwest::Certificate::from_pem_bundle(&pem).ok().filter(|c| !c.is_empty()).ok_or_else(|| {
                    Error::file(path, "no PEM certificate in the file")
                        .with_hint("give the CA certificate in PEM (-----BEGIN CERTIFICATE-----)")
                })?;
            b = b.tls_certs_merge(certs);
        }
        let client = b.build().map_err(|e| Error::internal("cannot set up the HTTP client").caused_by(e))?;
        Ok(VaultHttp { base, client })
    }

    pub(super) fn base(&self) -> &str {
        &self.base
    }

    /// The path of `url` on this vault, which must be an object of `collection` (`keys`):
    /// `/keys/NAME` or `/keys/NAME/VERSION`.
    pub(super) fn path_of(&self, url: &str, collection: &str) -> Result<String> {
        let bad = || {
            Error::input(format!("'{url}' is not a {collection} URL of the vault {}", self.base))
                .with_hint(format!("give it as {}/{collection}/NAME[/VERSION]", self.base))
        };
        let u = Url::parse(url.trim()).map_err(|_| bad())?;
        let segs: Vec<&str> = u.path().trim_matches('/').split('/').collect();
        let named =
            |s: &str| !s.is_empty() && s.len() <= 127 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        match segs.as_slice() {
            [c, name] if *c == collection && named(name) => Ok(format!("/{collection}/{name}/")),
            [c, name, version] if *c == collection && named(name) && named(version) => {
                Ok(format!("/{collection}/{name}/{version}"))
            }
            _ => Err(bad()),
        }
    }

    /// Sends one request; the status, headers and JSON body (`null` when empty or not JSON).
    pub(super) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        token: Option<&SecretString>,
    ) -> Result<(u16, reqwest::header::HeaderMap, Value)> {
        let url = format!("{}{path}?api-version={API_VERSION}", self.base);
        let mut b = self.client.request(method.clone(), &url).header("accept", "application/json");
        if let Some(t) = token {
            b = b.bearer_auth(t.expose());
        }
        if let Some(v) = body {
            b = b.header("content-type", "application/json").body(serde_json::to_vec(v).unwrap_or_default());
        }
        let mut r = b.send().await.map_err(|e| {
            Error::remote(format!("cannot reach the vault {}", self.base))
                .caused_by(e)
                .with_hint("check the vault's URL, the network, and --ca-file for a private CA")
        })?;
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let mut bytes = Vec::new();
        while let Some(chunk) =
            r.chunk().await.map_err(|e| Error::remote(format!("{url}: the answer broke off")).caused_by(e))?
        {
            bytes.extend_from_slice(&chunk);
            if bytes.len() > MAX_ANSWER {
                return Err(Error::remote(format!("{url}: the answer is over {MAX_ANSWER} bytes")));
            }
        }
        Ok((status, headers, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
    }
}

/// A 401 challenge: the authority host, the tenant and the resource.
#[derive(Clone, Debug)]
pub(super) struct Challenge {
    pub(super) authority: String,
    pub(super) tenant: String,
    pub(super) resource: String,
}

impl Challenge {
    /// Reads `Bearer authorization="https://login.../TENANT", resource="https://vault.azure.net"`
    /// (or `authorization_uri`, `scope="{resource}/.default"`).
    pub(super) fn parse(header: Option<&str>) -> Result<Challenge> {
        let bad = |why: &str| {
            Error::remote(format!("the vault's challenge {why}")).with_hint("the URL may not be a Key Vault: check it")
        };
        let h = header.ok_or_else(|| bad("is missing (no WWW-Authenticate header)"))?;
        let params = h.trim().strip_prefix("Bearer").ok_or_else(|| bad("is not a Bearer challenge"))?;
        let get = |name: &str| {
            params.split(',').find_map(|p| {
                let (k, v) = p.trim().split_once('=')?;
                k.trim().eq_ignore_ascii_case(name).then(|| v.trim().trim_matches('"').to_string())
            })
        };
        let authorization =
            get("authorization").or_else(|| get("authorization_uri")).ok_or_else(|| bad("names no authorization"))?;
        let resource = match get("resource") {
            Some(r) => r,
            None => get("scope")
                .map(|s| s.trim_end_matches("/.default").to_string())
                .ok_or_else(|| bad("names no resource"))?,
        };
        let u = Url::parse(&authorization).map_err(|_| bad("has an authorization that is not a URL"))?;
        let tenant = u.path().trim_matches('/').split('/').next().unwrap_or_default().to_string();
        let host = u.host_str().ok_or_else(|| bad("has an authorization without host"))?;
        let authority = match u.port() {
            Some(p) => format!("{}://{host}:{p}", u.scheme()),
            None => format!("{}://{host}", u.scheme()),
        };
        if tenant.is_empty() {
            return Err(bad("names no tenant"));
        }
        Ok(Challenge { authority, tenant, resource })
    }

    /// Azure's SDKs' check: the vault's host (with its port) ends with `.` + the resource's.
    pub(super) fn check_resource(&self, vault_base: &str) -> Result<()> {
        let authority = |u: &str| {
            Url::parse(u).ok().map(|u| match (u.host_str(), u.port()) {
                (Some(h), Some(p)) => format!("{h}:{p}").to_ascii_lowercase(),
                (Some(h), None) => h.to_ascii_lowercase(),
                _ => String::new(),
            })
        };
        let (vault, resource) =
            (authority(vault_base).unwrap_or_default(), authority(&self.resource).unwrap_or_default());
        if !resource.is_empty() && vault.ends_with(&format!(".{resource}")) {
            return Ok(());
        }
        Err(Error::remote(format!(
            "the vault {vault_base} challenges for the resource {}, whose domain it is not under",
            self.resource
        ))
        .with_hint("the URL may not be the vault's: Key Vault's SDKs refuse such a challenge too"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_read_as_the_sdks_read_them() {
        let c = Challenge::parse(Some(
            r#"Bearer authorization="https://login.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47", resource="https://vault.azure.net""#,
        ))
        .unwrap();
        assert_eq!(
            (c.authority.as_str(), c.tenant.as_str()),
            ("https://login.windows.net", "72f988bf-86f1-41af-91ab-2d7cd011db47")
        );
        assert!(c.check_resource("https://contoso.vault.azure.net").is_ok());
        assert!(c.check_resource("https://contoso.vault.evil.example").is_err());
        assert!(c.check_resource("https://vault.azure.net.evil.example").is_err());
        let c = Challenge::parse(Some(
            r#"Bearer authorization_uri="https://localhost:8443/t", scope="https://vault.localhost:8443/.default""#,
        ))
        .unwrap();
        assert_eq!(c.resource, "https://vault.localhost:8443");
        assert!(c.check_resource("https://kv.vault.localhost:8443").is_ok());
        assert!(c.check_resource("https://kv.vault.localhost:9443").is_err());
        assert!(Challenge::parse(Some("Basic realm=x")).is_err());
        assert!(Challenge::parse(None).is_err());
    }

    #[test]
    fn vault_urls_are_https_or_loopback_and_key_paths_are_checked() {
        let t = Duration::from_secs(1);
        assert!(VaultHttp::new("http://contoso.vault.azure.net", None, t).is_err());
        assert!(VaultHttp::new("ftp://contoso.vault.azure.net", None, t).is_err());
        let v = VaultHttp::new("https://contoso.vault.azure.net/keys/k/abc", None, t).unwrap();
        assert_eq!(v.base(), "https://contoso.vault.azure.net");
        assert_eq!(v.path_of("https://contoso.vault.azure.net/keys/k", "keys").unwrap(), "/keys/k/");
        assert_eq!(v.path_of("https://contoso.vault.azure.net/keys/k/0a1b", "keys").unwrap(), "/keys/k/0a1b");
        assert!(v.path_of("https://contoso.vault.azure.net/secrets/k", "keys").is_err());
        assert!(v.path_of("https://contoso.vault.azure.net/keys/k/v/extra", "keys").is_err());
        assert!(VaultHttp::new("http://kv.vault.localhost:8080", None, t).is_ok());
    }
}
