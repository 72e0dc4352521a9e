//! `keycred show`: the Entra values of certificates, without judging them (problems are listed).
//! One certificate per file: the leaf (see [`keycred::cert::LoadedFile::certs`]).

use super::common::password_from;
use super::output::print_pairs;
use super::Ctx;
use keycred::cert::load_file;
use keycred::{dates, Result};
use std::path::PathBuf;

/// Arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Certificate files: PEM, DER or PFX
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Environment variable holding the PFX password (default: AZURE_CLIENT_CERTIFICATE_PASSWORD)
    #[arg(long, value_name = "VAR")]
    pub password_env: Option<String>,
}

/// Runs `keycred show`.
pub fn run(a: &Args, ctx: &Ctx) -> Result<u8> {
    // The same password rule as the commands that sign, so a PFX that works there shows here.
    let password = password_from(a.password_env.as_deref())?;
    let now = dates::now();
    let mut creds = Vec::new();
    for f in &a.files {
        // Only the certificate is shown: a key that cannot be read (no password) does not matter.
        let leaf = load_file(f, password.as_ref())?.certs.swap_remove(0);
        creds.push((f, leaf.entra_values(now)));
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
    Ok(keycred::error::exit::OK)
}
