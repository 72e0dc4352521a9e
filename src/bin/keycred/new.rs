//! `keycred new`: generate an RSA key and a self-signed certificate, write the files, print the
//! credential.

use super::common::NewCertArgs;
use super::output::{generate, print_pairs};
use super::Ctx;
use keycred::{dates, Error, Result};

/// Arguments of `keycred new`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub new: NewCertArgs,
    /// Create the certificate in Azure Key Vault (https://NAME.vault.azure.net) with a
    /// non-exportable key, self-issued; only NAME.cer is written (sign with --key KEY_URL)
    #[arg(long, value_name = "URL", conflicts_with_all = ["days", "not_before", "not_after", "pfx", "pfx_legacy", "password_env"])]
    pub vault: Option<String>,
    /// With --vault: the key type, RSA or RSA-HSM (premium vaults)
    #[arg(long, requires = "vault", default_value = "RSA", value_parser = ["RSA", "RSA-HSM"])]
    pub kty: String,
    /// With --vault: validity in months, as Key Vault's policy counts it
    #[arg(long, requires = "vault", default_value_t = 12)]
    pub validity_months: u32,
    /// With --vault: environment variable holding a token for the vault (default: the AZURE_* identity)
    #[arg(long, value_name = "VAR", requires = "vault")]
    pub vault_token_env: Option<String>,
    #[command(flatten)]
    pub http: super::common::HttpArgs,
}

/// Runs `keycred new`: validates the arguments, generates, writes; nothing is written when
/// anything is wrong.
pub fn run(a: &Args, ctx: &Ctx) -> Result<u8> {
    if let Some(url) = &a.vault {
        return super::vault::new_in_vault(a, url, ctx);
    }
    let plan = a.new.plan()?;
    let (cert, key) = generate(ctx, &plan)?;
    let files = plan.write(&cert, &key)?;
    let cred = cert.entra_values(dates::now());
    if ctx.json() {
        let mut v = serde_json::to_value(&cred).map_err(|e| Error::internal(e.to_string()))?;
        v["files"] = serde_json::to_value(&files).map_err(|e| Error::internal(e.to_string()))?;
        ctx.print_json(&v);
    } else {
        let mut pairs = cred.text_lines();
        pairs.push(("key file", files.key.clone()));
        pairs.push(("cert file", files.cert.clone()));
        pairs.push(("bundle file", files.bundle.clone()));
        if let Some(p) = &files.pfx {
            if a.new.pfx_legacy {
                pairs.push(("pfx file", format!("{p} (legacy 3DES/SHA-1 protection: weaker, only for old consumers)")));
            } else {
                pairs.push(("pfx file", p.clone()));
            }
        }
        print_pairs(&pairs);
    }
    Ok(keycred::error::exit::OK)
}
