//! `keycred rotate`: new certificate, added beside the old ones, optionally verified, then the
//! old ones removed as asked.

use super::output::{out_line, print_pairs};
use super::Ctx;
use crate::cert::LoadedCredential;
use crate::manifest::{EntryOptions, Format, Selector};
use crate::rotate::{self, RemovePolicy, Verify};
use crate::token::{ClientAuth, ClientOptions, Grant, TokenClient, TokenRequest};
use crate::{Error, Result};
use std::path::PathBuf;
use std::sync::Arc;

/// Arguments. The group id differs from `new::Args`' implicit "Args" group, flattened here: two
/// groups with one name make clap panic on every `keycred rotate` call in debug builds.
#[derive(clap::Args, Debug)]
#[group(id = "rotate_args")]
pub struct Args {
    /// The manifest to rotate
    #[arg(long)]
    pub manifest: PathBuf,
    #[command(flatten)]
    pub new: super::new::Args,
    /// Format when the manifest cannot tell: ms-graph or aad-graph
    #[arg(long, value_parser = ["ms-graph", "aad-graph"])]
    pub format: Option<String>,
    /// displayName of the new entry (Graph format)
    #[arg(long)]
    pub display_name: Option<String>,
    /// keyId of an entry to remove once the new one is in (repeatable)
    #[arg(long = "remove", value_name = "KEYID", conflicts_with_all = ["remove_expired", "keep_old"])]
    pub remove: Vec<String>,
    /// Remove expired entries once the new one is in
    #[arg(long, conflicts_with = "keep_old")]
    pub remove_expired: bool,
    /// Remove nothing (the default)
    #[arg(long)]
    pub keep_old: bool,
    /// Obtain a token with the new certificate before removing anything
    #[arg(long, requires_all = ["client_id", "tenant"])]
    pub verify: bool,
    /// Application (client) id, for --verify
    #[arg(long, env = "AZURE_CLIENT_ID")]
    pub client_id: Option<String>,
    /// Tenant, for --verify
    #[arg(long, env = "AZURE_TENANT_ID")]
    pub tenant: Option<String>,
    /// Authority, for --verify
    #[arg(long, env = "AZURE_AUTHORITY_HOST", default_value = crate::authority::DEFAULT_AUTHORITY)]
    pub authority: String,
    /// v2 scope for --verify
    #[arg(long, conflicts_with = "resource")]
    pub scope: Vec<String>,
    /// v1 resource for --verify
    #[arg(long)]
    pub resource: Option<String>,
    /// Extra trusted root CA (PEM) for --verify
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
}

/// Runs `keycred rotate`.
pub fn run(a: &Args, ctx: &Ctx) -> Result<u8> {
    let policy = if !a.remove.is_empty() {
        RemovePolicy::Selected(a.remove.iter().map(|k| Selector::key_id(k)).collect::<Result<_>>()?)
    } else if a.remove_expired {
        RemovePolicy::Expired
    } else {
        RemovePolicy::KeepOld
    };
    let format = match a.format.as_deref() {
        Some("aad-graph") => Some(Format::AadGraph),
        Some(_) => Some(Format::MsGraph),
        None => None,
    };
    // Everything that can be checked is checked before a key is generated or a file written.
    let (_, format) = rotate::preflight(&a.manifest, format, &policy)?;
    let verify_req = if a.verify {
        let (version, target) = super::check::target_of(&a.scope, &a.resource)?;
        Some((version, target))
    } else {
        None
    };
    let authority = crate::authority::Authority::parse(&a.authority)?;
    let created = super::new::create(&a.new, ctx)?;
    let cred = Arc::new(LoadedCredential {
        cert: created.cert,
        chain: Vec::new(),
        key: created.key,
        cert_path: PathBuf::from(&created.files.cert),
    });
    let client;
    let verify = match verify_req {
        Some((version, target)) => {
            client = TokenClient::new(ClientOptions { ca_file: a.ca_file.clone(), ..ClientOptions::default() })?;
            Some(Verify {
                client: &client,
                request: TokenRequest {
                    authority,
                    tenant: a.tenant.clone().unwrap_or_default(),
                    client_id: a.client_id.clone().unwrap_or_default(),
                    version,
                    target,
                    grant: Grant::ClientCredentials,
                    auth: ClientAuth::Certificate {
                        cred: cred.clone(),
                        alg: crate::cert::SignatureAlg::Rs256,
                        x5c: false,
                    },
                },
            })
        }
        None => None,
    };
    let entry = EntryOptions { display_name: a.display_name.clone(), ..EntryOptions::default() };
    let report = rotate::apply(&a.manifest, format, &cred, &entry, &policy, verify, a.new.force)?;
    if ctx.json() {
        let mut v = serde_json::to_value(&report).map_err(|e| Error::internal(e.to_string()))?;
        v["files"] = serde_json::to_value(&created.files).map_err(|e| Error::internal(e.to_string()))?;
        ctx.print_json(&v);
    } else {
        let key_id = report.added.get("keyId").and_then(|v| v.as_str()).unwrap_or("?").to_string();
        print_pairs(&[
            ("added keyId", key_id),
            ("thumbprint", report.thumbprint.clone()),
            ("verified with", report.verified_with.clone().unwrap_or_else(|| "not verified (no --verify)".into())),
        ]);
        if report.removed.is_empty() {
            out_line("removed:       nothing");
        }
        for r in &report.removed {
            out_line(&format!(
                "removed:       keyId {} thumbprint {}",
                r.key_id.as_deref().unwrap_or("?"),
                r.thumbprint.as_deref().unwrap_or("?")
            ));
        }
    }
    Ok(crate::error::exit::OK)
}
