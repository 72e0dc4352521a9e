//! Arguments shared by several commands: the credential, the tenant and the authority, with the
//! standard `AZURE_*` environment variables as fallbacks.

use crate::authority::{Authority, DEFAULT_AUTHORITY};
use crate::cert::{load_credential, LoadedCredential};
use crate::secret::{self, SecretString};
use crate::{Error, Result};
use std::path::PathBuf;

/// The password of an encrypted key or PFX: the variable named by `--password-env`, else
/// `AZURE_CLIENT_CERTIFICATE_PASSWORD` (as the Azure SDKs read it), else none. Every command
/// reading credential files uses this one rule, so a file that works in one works in all.
pub fn password_from(password_env: Option<&str>) -> Result<Option<SecretString>> {
    match password_env {
        Some(var) => secret::from_env(var).map(Some),
        None => {
            Ok(std::env::var("AZURE_CLIENT_CERTIFICATE_PASSWORD").ok().filter(|s| !s.is_empty()).map(SecretString::new))
        }
    }
}

/// A certificate with its private key.
#[derive(clap::Args, Debug, Clone)]
pub struct CredArgs {
    /// Certificate: PEM/DER with --key, a PEM bundle (key + cert), or a PFX
    #[arg(long, env = "AZURE_CLIENT_CERTIFICATE_PATH")]
    pub cert: Option<PathBuf>,
    /// Private key file, when --cert holds only the certificate
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Environment variable holding the password of an encrypted key or PFX
    #[arg(long, value_name = "VAR")]
    pub password_env: Option<String>,
}

impl CredArgs {
    /// The password, from `--password-env` or `AZURE_CLIENT_CERTIFICATE_PASSWORD`.
    pub fn password(&self) -> Result<Option<SecretString>> {
        password_from(self.password_env.as_deref())
    }
    /// Whether a certificate was given at all.
    pub fn given(&self) -> bool {
        self.cert.is_some()
    }
    /// Loads the credential.
    pub fn load(&self) -> Result<LoadedCredential> {
        let cert = self.cert.as_ref().ok_or_else(|| {
            Error::input("no certificate given").with_hint(
                "pass --cert FILE (with --key KEY if the key is separate), or set AZURE_CLIENT_CERTIFICATE_PATH",
            )
        })?;
        let cred = load_credential(cert, self.key.as_deref(), self.password()?.as_ref())?;
        // Signing still works (useful to test refusals), but a user debugging an AADSTS700027
        // should see the cause at once.
        let (now, c) = (crate::dates::now(), &cred.cert);
        let problem = if now > c.not_after() {
            Some(format!("expired on {}", crate::dates::format(c.not_after())))
        } else if now < c.not_before() {
            Some(format!("is not valid before {}", crate::dates::format(c.not_before())))
        } else {
            None
        };
        if let Some(problem) = problem {
            eprintln!(
                "keycred: warning: {}: the certificate {problem}; Entra refuses assertions signed with it",
                cert.display()
            );
        }
        Ok(cred)
    }
}

/// Tenant, client id and authority.
#[derive(clap::Args, Debug, Clone)]
pub struct TenantArgs {
    /// Application (client) id
    #[arg(long, env = "AZURE_CLIENT_ID")]
    pub client_id: Option<String>,
    /// Tenant id (GUID) or domain
    #[arg(long, env = "AZURE_TENANT_ID")]
    pub tenant: Option<String>,
    /// Authority host (https; http only for loopback)
    #[arg(long, env = "AZURE_AUTHORITY_HOST", default_value = DEFAULT_AUTHORITY)]
    pub authority: String,
}

impl TenantArgs {
    /// The client id, or a clear error.
    pub fn client_id(&self) -> Result<&str> {
        match self.client_id.as_deref().map(str::trim) {
            Some(id) if !id.is_empty() => Ok(id),
            Some(_) => Err(Error::input("the client id (--client-id / AZURE_CLIENT_ID) is empty")
                .with_hint("pass the application (client) id GUID from the app registration")),
            None => Err(Error::input("no client id given").with_hint("pass --client-id or set AZURE_CLIENT_ID")),
        }
    }
    /// The tenant, or a clear error. The tenant becomes a URL path segment (and the assertion's
    /// `aud`), so anything but a GUID or DNS-name character is refused rather than let through
    /// to build another path (`x/../y`) or a broken URL.
    pub fn tenant(&self) -> Result<&str> {
        let t = self
            .tenant
            .as_deref()
            .ok_or_else(|| Error::input("no tenant given").with_hint("pass --tenant or set AZURE_TENANT_ID"))?;
        if t.is_empty() || !t.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')) {
            return Err(Error::input(format!("--tenant {t:?}: not a tenant id or domain name")).with_hint(
                "pass the directory (tenant) id GUID, a domain such as contoso.onmicrosoft.com, or organizations",
            ));
        }
        Ok(t)
    }
    /// The validated authority.
    pub fn authority(&self) -> Result<Authority> {
        Authority::parse(&self.authority)
    }
}

/// A secret argument's value, or with `-` the first `limit` bytes of stdin (so it stays out of
/// the shell history and `ps`); empty input is an error naming `what`.
pub fn read_arg_or_stdin(v: &str, what: &str, limit: u64) -> Result<SecretString> {
    use std::io::Read;
    if v != "-" {
        return Ok(SecretString::new(v.trim()));
    }
    let mut s = String::new();
    std::io::stdin()
        .take(limit + 1)
        .read_to_string(&mut s)
        .map_err(|e| Error::input(format!("cannot read {what} from stdin: {e}")))?;
    // Over the limit is refused, not cut: a truncated token would fail later, confusingly.
    if s.len() as u64 > limit {
        return Err(Error::input(format!("{what}: stdin holds more than {limit} bytes; nothing was read"))
            .with_hint("pipe in the value alone"));
    }
    let s = s.trim();
    if s.is_empty() {
        return Err(Error::input(format!("{what}: stdin was empty"))
            .with_hint("pipe the value into the command (`... | keycred ...`), or give it as the argument"));
    }
    Ok(SecretString::new(s))
}
