//! `keycred show`: the Entra values of certificates, without judging them (problems are listed).

use super::output::print_pairs;
use super::Ctx;
use crate::cert::load_file;
use crate::secret;
use crate::{dates, Error, Result};
use std::path::PathBuf;

/// Arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Certificate files: PEM, DER or PFX
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Environment variable holding the PFX or key password
    #[arg(long, value_name = "VAR")]
    pub password_env: Option<String>,
}

/// Runs `keycred show`.
pub fn run(a: &Args, ctx: &Ctx) -> Result<u8> {
    let password = a.password_env.as_deref().map(secret::from_env).transpose()?;
    let now = dates::now();
    let mut creds = Vec::new();
    for f in &a.files {
        let loaded = load_file(f, password.as_ref())?;
        let cert = loaded.certs.into_iter().next().ok_or_else(|| {
            Error::input(format!("{}: no certificate in the file", f.display()))
                .with_hint("a key file alone has no certificate: show the .cer, .pem bundle or .pfx")
        })?;
        creds.push((f, cert.credential(now)));
    }
    if ctx.json() {
        if creds.len() == 1 {
            ctx.print_json(&creds[0].1);
        } else {
            let all: Vec<_> = creds.iter().map(|(_, c)| c).collect();
            ctx.print_json(&all);
        }
    } else {
        for (i, (f, c)) in creds.iter().enumerate() {
            if creds.len() > 1 {
                if i > 0 {
                    super::output::out_line("");
                }
                super::output::out_line(&format!("# {}", f.display()));
            }
            print_pairs(&c.text_lines());
        }
    }
    Ok(crate::error::exit::OK)
}
