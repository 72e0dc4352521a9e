//! `keycred graph list|add|remove|rotate`: an application's certificates through Microsoft Graph.
//!
//! Self-rotation (addKey/removeKey with a proof signed by the app's current certificate) is the
//! default; `--patch`, or an application with no valid certificate left, PATCHes the whole
//! `keyCredentials` array with a Graph token, keeping every existing entry.

use super::output::{out_line, print_pairs};
use super::{CredArgs, Ctx};
use crate::authority::{Authority, EndpointVersion, DEFAULT_AUTHORITY};
use crate::cert::{load_file, LoadedCredential, SignatureAlg};
use crate::graph::{self, Application, GraphClient, Method, GRAPH_URL};
use crate::manifest::{ListRow, Selector};
use crate::secret::{self, SecretString};
use crate::token::{ClientAuth, ClientOptions, Grant, Target, TokenClient, TokenRequest};
use crate::{dates, Error, Result};
use std::path::PathBuf;
use std::sync::Arc;

/// Options every graph subcommand takes.
#[derive(clap::Args, Debug, Clone)]
pub struct Common {
    /// Application (client) id of the app whose certificates change
    #[arg(long, env = "AZURE_CLIENT_ID")]
    pub app_id: String,
    /// Tenant id
    #[arg(long, env = "AZURE_TENANT_ID")]
    pub tenant: String,
    /// Authority host for the Graph token (https; http only for loopback)
    #[arg(long, env = "AZURE_AUTHORITY_HOST", default_value = DEFAULT_AUTHORITY)]
    pub authority: String,
    #[command(flatten)]
    pub cred: CredArgs,
    /// Request the Graph token with this app's secret (environment variable) instead of the certificate
    #[arg(long, value_name = "VAR")]
    pub secret_env: Option<String>,
    /// Use this Graph access token (environment variable), e.g. an administrator's, for PATCH
    #[arg(long, value_name = "VAR")]
    pub graph_token_env: Option<String>,
    /// Microsoft Graph base URL (national clouds: https://graph.microsoft.us, ...)
    #[arg(long, default_value = GRAPH_URL)]
    pub graph_url: String,
    /// aud of the proof of possession: aad-graph (00000002-..., the addKey docs) or ms-graph (00000003-...)
    #[arg(long, default_value = "aad-graph", value_parser = ["aad-graph", "ms-graph"])]
    pub proof_aud: String,
    /// Always PATCH the whole keyCredentials array instead of addKey/removeKey
    #[arg(long)]
    pub patch: bool,
    /// Extra trusted root CA (PEM), e.g. the emulator's --tls CA
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// Timeout of each HTTP request, seconds
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
}

/// Subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum Cmd {
    /// List the application's certificates
    List(Common),
    /// Add a certificate (addKey with a proof, or PATCH)
    Add {
        #[command(flatten)]
        common: Common,
        /// The certificate to add (PEM, DER or PFX)
        #[arg(long = "new-cert")]
        new_cert: PathBuf,
        /// displayName of the new entry
        #[arg(long)]
        display_name: Option<String>,
    },
    /// Remove a certificate (removeKey with a proof, or PATCH)
    #[command(group(clap::ArgGroup::new("what").required(true).args(["key_id", "thumbprint"])))]
    Remove {
        #[command(flatten)]
        common: Common,
        /// keyId to remove
        #[arg(long)]
        key_id: Option<String>,
        /// Thumbprint to remove (hex, base64 or base64url)
        // base64url thumbprints start with '-' one time in 64: they are values, not flags.
        #[arg(long, allow_hyphen_values = true)]
        thumbprint: Option<String>,
        /// Allow removing the last valid certificate
        #[arg(long)]
        force: bool,
    },
    /// New certificate, added and verified, then the current one removed
    Rotate {
        #[command(flatten)]
        common: Common,
        /// Base name of the new certificate's files
        #[arg(long)]
        name: String,
        /// Directory for the new files
        #[arg(long, default_value = ".")]
        out_dir: PathBuf,
        /// Subject DN of the new certificate (default CN=NAME)
        #[arg(long)]
        subject: Option<String>,
        /// RSA key size: 2048, 3072 or 4096
        #[arg(long, default_value_t = 2048)]
        key_size: u32,
        /// Validity in days
        #[arg(long, default_value_t = 365)]
        days: u32,
        /// Replace existing files
        #[arg(long)]
        force: bool,
        /// Keep the current certificate registered
        #[arg(long)]
        keep_old: bool,
    },
}

struct Session {
    rt: tokio::runtime::Runtime,
    graph: GraphClient,
    tokens: TokenClient,
    app: Application,
    cred: Option<Arc<LoadedCredential>>,
    method: Method,
    proof_aud: &'static str,
}

impl Common {
    fn resource(&self) -> Result<String> {
        graph::token_resource(&self.graph_url)
    }

    fn token_request(&self, auth: ClientAuth) -> Result<TokenRequest> {
        Ok(TokenRequest {
            authority: Authority::parse(&self.authority)?,
            tenant: self.tenant.clone(),
            client_id: self.app_id.clone(),
            version: EndpointVersion::V2,
            target: Target::Scopes(vec![self.resource()?]),
            grant: Grant::ClientCredentials,
            auth,
        })
    }

    fn open(&self) -> Result<Session> {
        let cred = if self.cred.given() { Some(Arc::new(self.cred.load()?)) } else { None };
        let tokens = TokenClient::new(ClientOptions {
            timeout: std::time::Duration::from_secs(self.timeout),
            ca_file: self.ca_file.clone(),
            ..ClientOptions::default()
        })?;
        let token: SecretString =
            match (&self.graph_token_env, &self.secret_env, &cred) {
                (Some(var), _, _) => secret::from_env(var)?,
                (None, Some(var), _) => {
                    let req = self.token_request(ClientAuth::Secret(secret::from_env(var)?))?;
                    tokens.request_token_blocking(&req)?.access_token
                }
                (None, None, Some(c)) => {
                    let req = self.token_request(ClientAuth::Certificate {
                        cred: c.clone(),
                        alg: SignatureAlg::Rs256,
                        x5c: false,
                    })?;
                    tokens.request_token_blocking(&req)?.access_token
                }
                (None, None, None) => return Err(Error::input("no way to get a Graph token").with_hint(
                    "pass the app's certificate (--cert), or --secret-env VAR, or --graph-token-env VAR with a token",
                )),
            };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::internal(format!("cannot start the async runtime: {e}")))?;
        let graph = GraphClient::new(&self.graph_url, token, tokens.http_for(&self.graph_url).clone())?;
        let app = rt.block_on(graph.get_by_app_id(&self.app_id))?;
        let method = if self.patch { Method::Patch } else { Method::Auto };
        let proof_aud =
            if self.proof_aud == "ms-graph" { graph::PROOF_AUD_MS_GRAPH } else { graph::PROOF_AUD_AAD_GRAPH };
        Ok(Session { rt, graph, tokens, app, cred, method, proof_aud })
    }
}

fn rows(app: &Application) -> Vec<ListRow> {
    let now = dates::now();
    graph::credentials_of(app).iter().map(|c| ListRow::of(c, now)).collect()
}

fn print_change(ctx: &Ctx, what: &str, change: &graph::Change, extra: serde_json::Value) {
    if ctx.json() {
        let mut v = serde_json::to_value(change).unwrap_or_default();
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        ctx.print_json(&v);
    } else {
        let kc = &change.key_credential;
        print_pairs(&[
            (what, kc.get("keyId").and_then(|v| v.as_str()).unwrap_or("?").to_string()),
            ("method", change.method.to_string()),
            ("customKeyIdentifier", kc.get("customKeyIdentifier").and_then(|v| v.as_str()).unwrap_or("?").to_string()),
        ]);
    }
}

/// Runs `keycred graph ...`.
pub fn run(cmd: &Cmd, ctx: &Ctx) -> Result<u8> {
    match cmd {
        Cmd::List(c) => {
            let s = c.open()?;
            let r = rows(&s.app);
            if ctx.json() {
                ctx.print_json(&r);
            } else {
                out_line(&format!("application {} (object id {})", s.app.app_id, s.app.id));
                for row in &r {
                    out_line(&format!(
                        "{}  {}  {}  {} .. {}  {}",
                        row.key_id.as_deref().unwrap_or("-"),
                        row.thumbprint.as_deref().unwrap_or("-"),
                        row.status.name(),
                        row.start.as_deref().unwrap_or("-"),
                        row.end.as_deref().unwrap_or("-"),
                        row.display_name.as_deref().unwrap_or("-"),
                    ));
                }
            }
        }
        Cmd::Add { common, new_cert, display_name } => {
            let new = load_file(new_cert, None)?
                .certs
                .into_iter()
                .next()
                .ok_or_else(|| Error::input(format!("{}: no certificate in the file", new_cert.display())))?;
            let s = common.open()?;
            let change = s.rt.block_on(graph::add_certificate(
                &s.graph,
                &s.app,
                s.cred.as_deref(),
                &new,
                display_name.as_deref(),
                s.method,
                s.proof_aud,
            ))?;
            print_change(ctx, "added keyId", &change, serde_json::json!({}));
        }
        Cmd::Remove { common, key_id, thumbprint, force } => {
            let s = common.open()?;
            let key_id = match (key_id, thumbprint) {
                (Some(k), _) => k.clone(),
                (None, Some(t)) => {
                    let sel = Selector::thumbprint(t)?;
                    graph::credentials_of(&s.app)
                        .into_iter()
                        .find(|c| sel.matches(c))
                        .and_then(|c| c.key_id)
                        .ok_or_else(|| {
                            Error::input(format!(
                                "application {} has no certificate with {sel}; nothing was changed",
                                s.app.app_id
                            ))
                            .with_hint("`keycred graph list` shows the application's certificates")
                        })?
                }
                (None, None) => return Err(Error::input("say what to remove: --key-id or --thumbprint")),
            };
            let change = s.rt.block_on(graph::remove_certificate(
                &s.graph,
                &s.app,
                s.cred.as_deref(),
                &key_id,
                s.method,
                s.proof_aud,
                *force,
            ))?;
            print_change(ctx, "removed keyId", &change, serde_json::json!({}));
        }
        Cmd::Rotate { common, name, out_dir, subject, key_size, days, force, keep_old } => {
            let s = common.open()?;
            let old = s.cred.clone().ok_or_else(|| {
                Error::input("graph rotate needs the current certificate (--cert)")
                    .with_hint("it signs the proofs and is the one replaced")
            })?;
            let new_args = super::new::Args {
                name: name.clone(),
                out_dir: out_dir.clone(),
                subject: subject.clone(),
                key_size: *key_size,
                days: Some(*days),
                not_before: None,
                not_after: None,
                pfx: false,
                password_env: None,
                force: *force,
            };
            let plan = super::new::plan(&new_args)?;
            let (cert, key) = plan.generate(ctx)?;
            // Written before the registration, so the key is on disk once Graph knows the
            // certificate; if the registration fails, the directory is put back as it was.
            let before = crate::fsio::Snapshot::before(&plan.paths())?;
            let files = plan.write(&cert, &key).map_err(|e| before.undo(e, ""))?;
            let new =
                Arc::new(LoadedCredential { cert, chain: Vec::new(), key, cert_path: PathBuf::from(&files.bundle) });
            let added = s
                .rt
                .block_on(graph::add_certificate(&s.graph, &s.app, Some(&old), &new.cert, None, s.method, s.proof_aud))
                .map_err(|e| before.undo(e, "the application is unchanged; "))?;
            // Prove the new certificate works before anything is removed.
            let req = common.token_request(ClientAuth::Certificate {
                cred: new.clone(),
                alg: SignatureAlg::Rs256,
                x5c: false,
            })?;
            s.tokens.request_token_blocking(&req).map_err(|e| {
                Error::new(
                    e.kind(),
                    format!(
                        "the new certificate was added but cannot get a token, so the old one was kept: {}",
                        e.message()
                    ),
                )
            })?;
            let mut removed = None;
            if !keep_old {
                let app = s.rt.block_on(s.graph.get(&s.app.id))?;
                let old_key_id = graph::credentials_of(&app)
                    .into_iter()
                    .find(|c| c.sha1() == Some(old.cert.sha1()))
                    .and_then(|c| c.key_id);
                if let Some(k) = old_key_id {
                    removed = Some(s.rt.block_on(graph::remove_certificate(
                        &s.graph,
                        &app,
                        Some(&new),
                        &k,
                        s.method,
                        s.proof_aud,
                        false,
                    ))?);
                }
            }
            if ctx.json() {
                // The shape of `keycred rotate -o json`, plus how Graph was changed.
                let now = dates::now();
                let removed_rows: Vec<ListRow> = removed
                    .iter()
                    .filter_map(|r| r.key_credential.as_object())
                    .map(|o| ListRow::of(&crate::manifest::read_entry(0, o), now))
                    .collect();
                ctx.print_json(&serde_json::json!({
                    "added": added.key_credential,
                    "thumbprint": new.cert.thumbprint(),
                    "removed": removed_rows,
                    "verifiedWith": req.endpoint(),
                    "methods": { "added": added.method, "removed": removed.as_ref().map(|r| r.method) },
                    "files": files,
                }));
            } else {
                print_change(ctx, "added keyId", &added, serde_json::json!({}));
                out_line(&format!("verified:            token obtained with the new certificate ({})", req.endpoint()));
                match &removed {
                    Some(r) => print_change(ctx, "removed keyId", r, serde_json::json!({})),
                    None => out_line("removed:             nothing"),
                }
            }
        }
    }
    Ok(crate::error::exit::OK)
}
