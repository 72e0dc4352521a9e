//! Redacting newtypes for secrets: private keys, passwords, client secrets, assertions, tokens.
//!
//! Their `Debug` and `Display` never show the content, so a secret that ends up in a log line,
//! an error or a `{:?}` stays secret. Reading the value takes an explicit `expose()`.

use std::fmt;
use zeroize::Zeroize;

/// A secret string (password, client secret, signed assertion, access token).
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        SecretString(s.into())
    }
    /// The secret value; call only where the value must leave the process (a request body,
    /// stdout when the user asked for it).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl Drop for SecretString {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Secret bytes (private key DER).
#[derive(Clone, PartialEq, Eq)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Wraps secret bytes.
    pub fn new(b: Vec<u8>) -> Self {
        SecretBytes(b)
    }
    /// The secret bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Drop for SecretBytes {
    fn drop(&mut self) {
        // Do not leave key material in freed memory; `zeroize`'s writes are not optimised away,
        // where a plain loop over memory about to be freed may be.
        self.0.zeroize();
    }
}

/// Reads a secret from the environment variable `var`, as `--password-env` and `--secret-env`
/// do: the value never goes through the command line, where `ps` would show it.
pub fn from_env(var: &str) -> crate::Result<SecretString> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Ok(SecretString(v)),
        Ok(_) => Err(crate::Error::input(format!("environment variable {var} is empty"))
            .with_hint(format!("export {var} with the secret before running keycred"))),
        Err(_) => Err(crate::Error::input(format!("environment variable {var} is not set"))
            .with_hint(format!("export {var} with the secret before running keycred"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = SecretString::new("hunter2-very-secret");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(format!("{s}"), "[redacted]");
        let b = SecretBytes::new(b"key material".to_vec());
        assert_eq!(format!("{b:?}"), "[redacted]");
        assert_eq!(s.expose(), "hunter2-very-secret");
    }
}
