//! `keycred show`: the Entra values of certificates, without judging them (problems are listed).
//! One certificate per file: the leaf (see [`keycred::cert::LoadedFile::certs`]). A `pkcs11:`
//! URI shows the certificate stored beside that key on the token; a certificate request (CSR)
//! shows what a CA will see, and whether its signature holds.

use super::common::password_from;
use super::keystore::{stored_certificate, TokenArgs};
use super::output::print_pairs;
use super::Ctx;
use keycred::cert::csr::{read_request, RequestValues};
use keycred::cert::{load_bytes, EntraValues};
use keycred::{dates, fsio, Result};
use std::path::PathBuf;

/// Arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Certificate files (PEM, DER or PFX), certificate requests (CSR), or keys on a token
    /// (pkcs11:token=T;object=LABEL), whose stored certificate is shown
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Environment variable holding the PFX password (default: AZURE_CLIENT_CERTIFICATE_PASSWORD)
    #[arg(long, value_name = "VAR")]
    pub password_env: Option<String>,
    #[command(flatten)]
    pub token: TokenArgs,
}

/// What one input shows.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum Shown {
    Certificate(Box<EntraValues>),
    Request(RequestValues),
}

impl Shown {
    fn text_lines(&self) -> Vec<(&'static str, String)> {
        match self {
            Shown::Certificate(c) => c.text_lines(),
            Shown::Request(r) => r.text_lines(),
        }
    }
}

/// Runs `keycred show`.
pub fn run(a: &Args, ctx: &Ctx) -> Result<u8> {
    // The same password rule as the commands that sign, so a PFX that works there shows here.
    let password = password_from(a.password_env.as_deref())?;
    let now = dates::now();
    let mut shown = Vec::new();
    for f in &a.files {
        let value = if let Some(spec) = super::keystore::on_token(Some(f)) {
            Shown::Certificate(Box::new(stored_certificate(&a.token.key(spec)?)?.entra_values(now)))
        } else {
            let bytes = fsio::read_limited(f, fsio::MAX_CREDENTIAL_BYTES)?;
            match read_request(&bytes) {
                Some(csr) => Shown::Request(csr),
                // Only the certificate is shown: a key that cannot be read (no password) does not matter.
                None => {
                    let mut certs = load_bytes(&bytes, password.as_ref(), &f.display().to_string())?.certs;
                    Shown::Certificate(Box::new(certs.swap_remove(0).entra_values(now)))
                }
            }
        };
        shown.push((f, value));
    }
    if ctx.json() {
        if shown.len() == 1 {
            ctx.print_json(&shown[0].1);
        } else {
            let all: Vec<_> = shown.iter().map(|(_, c)| c).collect();
            ctx.print_json(&all);
        }
    } else {
        for (i, (f, v)) in shown.iter().enumerate() {
            if shown.len() > 1 {
                if i > 0 {
                    super::output::out_line("");
                }
                super::output::out_line(&format!("# {}", f.display()));
            }
            print_pairs(&v.text_lines());
        }
    }
    Ok(keycred::error::exit::OK)
}
