//! Loading the credential `--cert`/`--key` name: a certificate with its key file, a key on a
//! PKCS#11 token, or a Key Vault key (the last two bring their certificate). Apart from
//! [`super::common`], which declares the arguments, so that the argument module does not depend
//! on the stores it names.

use super::common::{CredArgs, HttpArgs};
use keycred::cert::{load_credential, LoadedCredential};
use keycred::{Error, Result};

impl CredArgs {
    /// Whether a certificate was given at all (a key on a token brings its own).
    pub fn given(&self) -> bool {
        self.cert.is_some() || self.key_on_token().is_some() || super::vault::key_url(self).is_some()
    }
    /// The `--key` value when it names a key on a token.
    pub fn key_on_token(&self) -> Option<&str> {
        super::keystore::on_token(self.key.as_deref())
    }
    /// Loads the credential.
    pub fn load(&self) -> Result<LoadedCredential> {
        self.load_using(None)
    }
    /// Loads the credential; a Key Vault key is reached with `http`'s CA file and time limit.
    pub fn load_using(&self, http: Option<&HttpArgs>) -> Result<LoadedCredential> {
        if let Some(url) = super::vault::key_url(self) {
            return super::vault::load_credential(self, url, http);
        }
        if let Some(spec) = self.key_on_token() {
            let password = self.password()?;
            let cred = super::keystore::load_credential(self.cert.as_deref(), spec, &self.token, password.as_ref())?;
            super::output::warn_unusable(&cred);
            return Ok(cred);
        }
        let cert = self.cert.as_ref().ok_or_else(|| {
            Error::input("no certificate given").with_hint(
                "pass --cert FILE (with --key KEY if the key is separate), or set AZURE_CLIENT_CERTIFICATE_PATH",
            )
        })?;
        let cred = load_credential(cert, self.key.as_deref(), self.password()?.as_ref())?;
        super::output::warn_unusable(&cred);
        Ok(cred)
    }
}
