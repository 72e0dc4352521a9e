//! Generate a certificate credential and its app-manifest entry: the key, the certificate and
//! the bundle written all or nothing, then the `keyCredentials` entry added to a manifest.
//!
//! ```text
//! cargo run --example new_credential -- DIR [MANIFEST]
//! ```
//!
//! Writes `DIR/my-daemon.{key,cer,pem}`; with MANIFEST (a manifest downloaded from the portal),
//! adds the certificate to its `keyCredentials`, keeping everything else byte for byte.

use keycred::cert::files::{FileOptions, Plan};
use keycred::cert::{KeySize, NewCertificate, Validity};
use keycred::manifest::{edit_file, entry_for, EntryOptions, Format, Manifest};
use std::path::PathBuf;

fn main() -> keycred::Result<()> {
    let mut args = std::env::args_os().skip(1).map(PathBuf::from);
    let dir = args.next().unwrap_or_else(|| PathBuf::from("."));
    let manifest = args.next();

    // Everything is checked (subject, dates, directory, files in the way) before a key exists.
    let plan = Plan::new(
        NewCertificate { subject: "CN=my-daemon".into(), key_size: KeySize::Rsa2048, validity: Validity::Days(365) },
        FileOptions { name: "my-daemon".into(), dir, pfx: None, password: None, force: false },
    )?;
    let (cert, key) = plan.generate()?;
    let files = plan.write(&cert, &key)?;
    println!("thumbprint           {}", cert.thumbprint());
    println!("customKeyIdentifier  {}", cert.custom_key_identifier());
    println!("bundle               {}", files.bundle);

    match manifest {
        // The manifest tells its own format (Microsoft Graph or the legacy Azure AD Graph).
        Some(path) => {
            let format = Manifest::load(&path)?.resolve_format(None)?;
            let entry = entry_for(&cert, format, &EntryOptions::default())?;
            edit_file(&path, |m| m.add_entry(entry.clone()))?;
            println!("added keyId {} to {}", entry["keyId"], path.display());
        }
        None => {
            let entry = entry_for(&cert, Format::MsGraph, &EntryOptions::default())?;
            println!("{}", serde_json::to_string_pretty(&entry).expect("an entry is JSON"));
        }
    }
    Ok(())
}
