//! `keycred fic check TOKEN`: whether Entra would accept an external workload token for an
//! application, and why not, with the AADSTS code Entra answers. The application's federated
//! identity credentials come from Graph (the emulator's or the real one) or from a manifest
//! file; the issuer's keys from its discovery document (https, or http on loopback).

use super::common::{read_arg_or_stdin, HttpArgs};
use super::output::print_pairs;
use super::Ctx;
use keycred::fic::diagnose::{explain, judge};
use keycred::fic::{issuer, FederatedIdentityCredential};
use keycred::{error::exit, Error, Result};
use serde_json::json;
use std::path::PathBuf;

/// `keycred fic check`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The workload token, or `-` to read it from stdin
    #[arg(value_name = "TOKEN|-")]
    pub token: String,
    /// Read the federated identity credentials from this manifest (its federatedIdentityCredentials)
    /// instead of Graph
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// With Graph: the application, its tenant, and how to reach Graph
    #[command(flatten)]
    pub graph: super::graph::FicCommon,
}

/// The application's credentials, from the manifest or Graph, and its app id.
fn credentials(a: &Args) -> Result<(String, Vec<FederatedIdentityCredential>)> {
    if let Some(path) = &a.manifest {
        let m = keycred::manifest::Manifest::load(path)?;
        let app_id = m.app_id().unwrap_or_default().to_string();
        if let Some(given) = a.graph.tenant.client_id.as_deref() {
            if !given.eq_ignore_ascii_case(&app_id) {
                return Err(Error::input(format!(
                    "--app-id {given}: the manifest {} is application {app_id}",
                    path.display()
                ))
                .with_hint("give the manifest of the application the token signs in to"));
            }
        }
        return Ok((app_id, keycred::fic::from_manifest(m.root())));
    }
    super::graph::list_federated(&a.graph)
}

/// Runs `keycred fic check`.
pub fn run(a: &Args, ctx: &Ctx) -> Result<u8> {
    let token = read_arg_or_stdin(&a.token, "TOKEN", 64 * 1024)?;
    let (app_id, fics) = credentials(a)?;
    let http: &HttpArgs = &a.graph.access.http;
    let (t, rt) = http.transport()?;
    let now = keycred::jwt::now_secs();
    let verdict = judge(&fics, token.expose(), |iss| rt.block_on(issuer::fetch_keys(&t, iss, false)), now);
    match verdict {
        Ok(c) => {
            if ctx.json() {
                ctx.print_json(&json!({"accepted": true, "appId": app_id, "credential": c.name}));
            } else {
                print_pairs(&[
                    ("accepted", format!("yes, by federated identity credential '{}'", c.name)),
                    ("application", app_id),
                ]);
            }
            Ok(exit::OK)
        }
        Err(r) => {
            let why = explain(&r, &fics);
            if ctx.json() {
                ctx.print_json(&json!({
                    "accepted": false, "appId": app_id, "code": r.code(), "error": r.error(),
                    "entraMessage": format!("AADSTS{}: {}", r.code(), r.entra_text()), "explanation": why,
                }));
            } else {
                print_pairs(&[
                    ("accepted", "no".to_string()),
                    ("application", app_id),
                    ("Entra answers", format!("AADSTS{} ({}): {}", r.code(), r.error(), r.entra_text())),
                    ("why", why),
                ]);
            }
            Ok(exit::CHECK)
        }
    }
}
