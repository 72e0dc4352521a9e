//! `keycred new`: generate an RSA key and a self-signed certificate, write the files, print the
//! credential. With `--key pkcs11:...` the key is generated on the token and never leaves it:
//! the certificate is stored beside it and written out; no key file is written.

use super::common::NewCertArgs;
use super::keystore::TokenArgs;
use super::output::{generate, print_pairs};
use super::Ctx;
use keycred::cert::{self_signed_with, Certificate, Signer};
use keycred::{dates, fsio, Error, Result};

/// Arguments of `keycred new`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub new: NewCertArgs,
    /// Generate the key on a PKCS#11 token instead of in a file (pkcs11:token=T;object=LABEL):
    /// only NAME.cer is written, and the certificate is stored on the token beside the key
    #[arg(long, value_name = "PKCS11_URI", conflicts_with = "vault")]
    pub key: Option<String>,
    #[command(flatten)]
    pub token: TokenArgs,
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
        return new_in_vault(a, url, ctx);
    }
    if let Some(spec) = &a.key {
        return on_token(a, spec, ctx);
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

/// `new --key pkcs11:...`: every argument checked first, then the key pair generated on the
/// token, the certificate self-signed there and stored beside it, and NAME.cer written. A
/// failure after generation removes what was put on the token.
fn on_token(a: &Args, spec: &str, ctx: &Ctx) -> Result<u8> {
    if !keycred::keystore::is_store(spec) {
        return Err(Error::input(format!("--key {spec}: not a PKCS#11 URI"))
            .with_hint("`keycred new` writes its own key file; --key names a token: pkcs11:token=T;object=LABEL"));
    }
    if a.new.pfx || a.new.pfx_legacy || a.new.password_env.is_some() {
        return Err(Error::input("--pfx and --password-env protect a key file; a key on a token is never written")
            .with_hint("leave them out with --key pkcs11:..."));
    }
    let plan = a.new.plan()?;
    let req = plan.request();
    let cert_path = plan.paths().into_iter().find(|p| p.extension().is_some_and(|e| e == "cer"));
    let cert_path = cert_path.ok_or_else(|| Error::internal("the plan has no certificate file"))?;
    let key = a.token.generate(spec, req.key_size.bits())?;
    let made = self_signed_with(&key, &req.subject, req.validity)
        .and_then(|cert| key.store_certificate(&cert).map(|()| cert))
        .and_then(|cert| write_cert(&cert, &cert_path, a.new.force).map(|()| cert));
    let cert = match made {
        Ok(cert) => cert,
        Err(e) => {
            return Err(match key.destroy() {
                Ok(()) => e.with_note("the new key was removed from the token"),
                Err(d) => e.with_note(format!("the new key could not be removed from the token: {d}")),
            })
        }
    };
    let cred = cert.entra_values(dates::now());
    let (name, file) = (key.describe(), cert_path.display().to_string());
    if ctx.json() {
        let mut v = serde_json::to_value(&cred).map_err(|e| Error::internal(e.to_string()))?;
        v["key"] = serde_json::Value::String(name);
        v["files"] = serde_json::json!({ "cert": file });
        ctx.print_json(&v);
    } else {
        let mut pairs = cred.text_lines();
        pairs.push(("key", format!("{name} (on the token, not extractable)")));
        pairs.push(("cert file", file));
        print_pairs(&pairs);
    }
    Ok(keycred::error::exit::OK)
}

/// Writes the certificate (PEM), creating its directory (owner-only) when missing.
fn write_cert(cert: &Certificate, path: &std::path::Path, force: bool) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        fsio::create_private_dir(dir)?;
    }
    let file =
        fsio::PlannedFile { path: path.to_path_buf(), data: cert.to_pem().into_bytes(), mode: fsio::PUBLIC_MODE };
    fsio::write_set(&[file], force)
}

/// `keycred new --vault URL --name NAME`: the vault makes the certificate and its key (not
/// exportable, self-issued); only the public certificate is written (`NAME.cer`).
pub fn new_in_vault(a: &Args, vault_url: &str, ctx: &Ctx) -> Result<u8> {
    let n = &a.new;
    let name = n.name.clone().ok_or_else(|| {
        Error::input("--vault needs --name: the certificate's name in the vault (and of NAME.cer)")
            .with_hint("for example keycred new --vault https://contoso.vault.azure.net --name app-cert")
    })?;
    if name.is_empty() || name.len() > 127 || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(Error::input(format!("--name '{name}': not a Key Vault certificate name"))
            .with_hint("use 1 to 127 letters, digits and hyphens"));
    }
    keycred::cert::KeySize::from_bits(n.key_size)?;
    if !(1..=1200).contains(&a.validity_months) {
        return Err(Error::input(format!("--validity-months {}: give 1 to 1200", a.validity_months)));
    }
    let subject = n.subject.clone().unwrap_or_else(|| format!("CN={name}"));
    keycred::cert::dn::parse(&subject).map_err(|e| e.context("--subject"))?;
    let path = n.out_dir.join(format!("{name}.cer"));
    keycred::cert::files::check_out_dir(&n.out_dir, "--out-dir")?;
    if !n.force {
        keycred::fsio::ensure_absent([path.as_path()]).map_err(|e| e.with_hint("add --force to replace it"))?;
    }
    let policy = serde_json::json!({
        "key_props": {"exportable": false, "kty": a.kty, "key_size": n.key_size, "reuse_key": false},
        "secret_props": {"contentType": "application/x-pem-file"},
        "x509_props": {"subject": subject, "validity_months": a.validity_months,
                        "key_usage": ["digitalSignature"], "ekus": ["1.3.6.1.5.5.7.3.2"]},
        "issuer": {"name": "Self"},
    });
    let client = keycred::keystore::keyvault::VaultClient::new(
        vault_url,
        super::vault::options(a.vault_token_env.as_deref(), Some(&a.http))?,
    )
    .map_err(|e| e.context("--vault"))?;
    let vc = super::output::with_spinner(ctx, "creating the certificate in the vault", || {
        keycred::keystore::keyvault::run_apart(client.create_certificate(
            &name,
            &policy,
            std::time::Duration::from_secs(120),
        ))
    })?;
    if !n.out_dir.exists() {
        keycred::fsio::create_private_dir(&n.out_dir)?;
    }
    keycred::fsio::atomic_write(&path, vc.cert.to_pem().as_bytes(), Some(0o644))?;
    let cred = vc.cert.entra_values(keycred::dates::now());
    let key_url = vc.kid.clone();
    if ctx.json() {
        let mut v = serde_json::to_value(&cred).map_err(|e| Error::internal(e.to_string()))?;
        v["files"] = serde_json::json!({"cert": path.display().to_string()});
        v["vault"] = serde_json::json!({"certificateId": vc.id, "keyId": key_url});
        ctx.print_json(&v);
    } else {
        let mut pairs = cred.text_lines();
        pairs.push(("cert file", path.display().to_string()));
        pairs.push(("vault certificate", vc.id.clone()));
        pairs.push(("vault key", format!("{key_url} (not exportable: sign with --key {key_url})")));
        super::output::print_pairs(&pairs);
    }
    Ok(keycred::error::exit::OK)
}
