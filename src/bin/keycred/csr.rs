//! `keycred csr`: a PKCS#10 certificate signing request for a key in a file or on a token, for
//! a CA to issue the certificate (then registered with `manifest add` or `graph add`).

use super::common::password_from;
use super::keystore::TokenArgs;
use super::output::print_pairs;
use super::Ctx;
use keycred::cert::csr::read_request;
use keycred::cert::{request_with, Signer};
use keycred::{fsio, Error, Result};
use std::path::PathBuf;
use std::sync::Arc;

/// Arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The key to request a certificate for: a key file, or a key on a token (pkcs11:token=T;object=LABEL)
    #[arg(long)]
    pub key: String,
    /// Subject DN of the requested certificate, e.g. 'CN=MyApp, O=Contoso, C=FR'
    #[arg(long)]
    pub subject: String,
    /// Write the request (PEM) to FILE instead of stdout
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Replace FILE if it exists
    #[arg(long)]
    pub force: bool,
    /// Environment variable holding the password of an encrypted key file
    #[arg(long, value_name = "VAR")]
    pub password_env: Option<String>,
    #[command(flatten)]
    pub token: TokenArgs,
}

/// Runs `keycred csr`.
pub fn run(a: &Args, ctx: &Ctx) -> Result<u8> {
    keycred::cert::dn::parse(&a.subject).map_err(|e| e.context("--subject"))?;
    if let (Some(out), false) = (&a.out, a.force) {
        fsio::ensure_absent([out.as_path()])
            .map_err(|e| e.with_hint("pass --force to replace it, or choose another --out"))?;
    }
    let signer: Arc<dyn Signer> = match super::keystore::on_token(Some(std::path::Path::new(&a.key))) {
        Some(spec) => Arc::new(a.token.key(spec)?),
        None => Arc::new(keycred::cert::load_key(
            std::path::Path::new(&a.key),
            password_from(a.password_env.as_deref())?.as_ref(),
        )?),
    };
    let pem = request_with(signer.as_ref(), &a.subject)?;
    let values = read_request(pem.as_bytes()).ok_or_else(|| Error::internal("the request made cannot be read back"))?;
    match &a.out {
        Some(out) => {
            let file = fsio::PlannedFile { path: out.clone(), data: pem.into_bytes(), mode: fsio::PUBLIC_MODE };
            fsio::write_set(&[file], a.force)?;
            if ctx.json() {
                let mut v = serde_json::to_value(&values).map_err(|e| Error::internal(e.to_string()))?;
                v["file"] = serde_json::Value::String(out.display().to_string());
                v["key"] = serde_json::Value::String(signer.describe());
                ctx.print_json(&v);
            } else {
                let mut pairs = values.text_lines();
                pairs.push(("key", signer.describe()));
                pairs.push(("file", out.display().to_string()));
                print_pairs(&pairs);
            }
        }
        None if ctx.json() => {
            let mut v = serde_json::to_value(&values).map_err(|e| Error::internal(e.to_string()))?;
            v["pem"] = serde_json::Value::String(pem);
            ctx.print_json(&v);
        }
        None => super::output::out_line(pem.trim_end()),
    }
    Ok(keycred::error::exit::OK)
}
