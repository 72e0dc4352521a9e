//! `keycred demo`: the whole mission, offline, in a few seconds, against the embedded emulator.
//!
//! Generate a certificate, put it in a sample manifest, start the emulator on a loopback port,
//! check the credential through v1 and v2, show the token's roles, then rotate: a second
//! certificate is added and verified, the first removed, and a request signed with the first is
//! shown being refused with AADSTS700027.

use super::output::{ensure_open, out_line};
use super::Ctx;
use keycred::authority::{Authority, EndpointVersion};
use keycred::cert::files::{FileOptions, FilePaths, Plan};
use keycred::cert::{KeySize, LoadedCredential, NewCertificate, SignatureAlg, Validity};
use keycred::check::{self, CheckOptions};
use keycred::emulator::{self, EmulatorConfig};
use keycred::manifest::{self, EntryOptions, Format, Selector};
use keycred::rotate::{self, RemovePolicy, Verify};
use keycred::token::{entra_code, ClientAuth, ClientOptions, Grant, Target, TokenClient, TokenRequest};
use keycred::{dates, jwt, ClientId, Error, Result, TenantId};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The resource and roles the demo grants (the Office 365 Management APIs of seed 000).
const RESOURCE: &str = "https://manage.office.com";
const ROLES: [&str; 2] = ["ActivityFeed.Read", "ServiceHealth.Read"];
const APP_ID: &str = "3f6c2b1e-8d4a-4e7b-9c1d-2a5e6f7b8c9d";

/// Arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Work in this directory and keep it (default: a temporary directory, removed at the end)
    #[arg(long)]
    pub keep: Option<PathBuf>,
    /// With --keep: replace the files of an earlier demo in that directory
    #[arg(long, requires = "keep")]
    pub force: bool,
}

/// Base names of the credentials the demo generates.
const CREDENTIALS: [&str; 2] = ["demo-app-1", "demo-app-2"];
/// The manifest the demo writes.
const MANIFEST: &str = "manifest.json";

/// Every file the demo writes in its directory.
fn demo_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = vec![dir.join(MANIFEST)];
    for name in CREDENTIALS {
        let paths = FilePaths::new(dir, name, false);
        files.extend(paths.all().map(Path::to_path_buf));
    }
    files
}

/// Checks the `--keep` directory before anything is written: a directory (or nothing yet), and
/// without `--force` no file of an earlier demo in it.
fn check_keep(d: &Path, force: bool) -> Result<()> {
    if d.exists() && !d.is_dir() {
        return Err(Error::input(format!(
            "--keep {}: exists and is not a directory; nothing was written",
            d.display()
        ))
        .with_hint("give --keep a directory path (it is created when missing)"));
    }
    if !force && d.is_dir() {
        let existing: Vec<String> =
            demo_files(d).iter().filter(|p| p.exists()).map(|p| p.display().to_string()).collect();
        if !existing.is_empty() {
            return Err(Error::input(format!(
                "--keep {}: {} already exist(s); nothing was written",
                d.display(),
                existing.join(", ")
            ))
            .with_hint("pass --force to replace them, or give --keep another directory"));
        }
    }
    Ok(())
}

struct Out<'a> {
    ctx: &'a Ctx,
    step: usize,
    log: Vec<serde_json::Value>,
}

impl Out<'_> {
    /// Starts the next step; `Err` once stdout is closed, so the demo stops there.
    fn head(&mut self, title: &str) -> Result<()> {
        ensure_open()?;
        self.step += 1;
        if !self.ctx.json() {
            out_line("");
            out_line(&format!("== {}. {title}", self.step));
        }
        self.log.push(json!({ "step": self.step, "title": title, "lines": [] }));
        Ok(())
    }
    fn line(&mut self, s: impl Into<String>) {
        let s = s.into();
        if !self.ctx.json() {
            out_line(&format!("   {s}"));
        }
        if let Some(last) = self.log.last_mut() {
            last["lines"].as_array_mut().expect("lines is an array").push(json!(s));
        }
    }
}

/// Runs the demo.
pub fn run(a: &Args, ctx: &Ctx) -> Result<u8> {
    let tmp;
    let dir: PathBuf = match &a.keep {
        Some(d) => {
            check_keep(d, a.force)?;
            std::fs::create_dir_all(d).map_err(|e| {
                Error::io(d, "create the directory", e).with_hint("give --keep a directory path you can write to")
            })?;
            d.clone()
        }
        None => {
            tmp = tempfile::Builder::new()
                .prefix("keycred-demo-")
                .tempdir()
                .map_err(|e| Error::internal(format!("cannot create a temporary directory: {e}")))?;
            tmp.path().to_path_buf()
        }
    };
    let mut out = Out { ctx, step: 0, log: Vec::new() };
    let code = demo(&dir, a.force, &mut out)?;
    if ctx.json() {
        ctx.print_json(&json!({ "directory": dir.display().to_string(), "kept": a.keep.is_some(), "steps": out.log }));
    } else {
        out_line("");
        match &a.keep {
            Some(d) => out_line(&format!("Done. Files kept in {}", d.display())),
            None => out_line("Done. (pass --keep DIR to keep the files)"),
        }
    }
    Ok(code)
}

fn new_cert(dir: &Path, name: &str, force: bool) -> Result<Arc<LoadedCredential>> {
    let plan = Plan::new(
        NewCertificate {
            subject: format!("CN={name}, O=keycred demo"),
            key_size: KeySize::Rsa2048,
            validity: Validity::Days(365),
        },
        FileOptions { name: name.to_string(), dir: dir.to_path_buf(), pfx: false, password: None, force },
    )?;
    let (cert, key) = plan.generate()?;
    let (_, cred) = plan.write_credential(cert, key)?;
    Ok(Arc::new(cred))
}

/// The emulator the demo runs against, and what a request to it needs.
struct Stage {
    emu: emulator::BlockingEmulator,
    authority: Authority,
    tenant: TenantId,
    app_id: ClientId,
    client: TokenClient,
    manifest: PathBuf,
}

/// The demo in `dir`; `force` lets it replace files of an earlier demo ([`check_keep`] has refused
/// them otherwise, and a fresh temporary directory has none).
fn demo(dir: &Path, force: bool, out: &mut Out) -> Result<u8> {
    out.head("Generate a certificate (RSA-2048, self-signed)")?;
    let first = new_cert(dir, CREDENTIALS[0], force)?;
    out.line(format!("subject              {}", first.cert.subject()));
    out.line(format!("thumbprint           {}", first.cert.thumbprint()));
    out.line(format!("customKeyIdentifier  {}", first.cert.custom_key_identifier()));
    out.line(format!("x5t                  {}", first.cert.x5t()));
    out.line(format!("files                {}/demo-app-1.{{key,cer,pem}}", dir.display()));

    out.head("Add it to the sample app manifest (templates/manifest-ms-graph.json)")?;
    let (manifest, app_id, first_key_id) = write_manifest(dir, &first, out)?;

    out.head("Start the Entra emulator on a loopback port")?;
    let stage = start(manifest, app_id, out)?;
    let mut failed = false;
    for (version, target, label) in [
        (EndpointVersion::V1, Target::Resource(RESOURCE.into()), "v1 (resource=)"),
        (EndpointVersion::V2, Target::Scopes(vec![RESOURCE.into()]), "v2 (scope=.../.default)"),
    ] {
        out.head(&format!("keycred check through the {label} endpoint"))?;
        failed |= check_through(&stage, dir, version, target, out)?;
    }

    out.head("Rotate: add a second certificate, verify it, remove the first")?;
    let second = new_cert(dir, CREDENTIALS[1], force)?;
    let req = TokenRequest {
        authority: stage.authority.clone(),
        tenant: stage.tenant.clone(),
        client_id: stage.app_id.clone(),
        version: EndpointVersion::V2,
        target: Target::Scopes(vec![RESOURCE.into()]),
        grant: Grant::ClientCredentials,
        auth: ClientAuth::Certificate { cred: second.clone(), alg: SignatureAlg::Rs256, x5c: false },
    };
    rotate_to(&stage, &second, &first_key_id, &req, out)?;

    out.head("A request signed with the removed certificate is refused")?;
    let mut old = req;
    old.auth = ClientAuth::Certificate { cred: first.clone(), alg: SignatureAlg::Rs256, x5c: false };
    failed |= !refused(&stage.client, &old, out);
    // The emulator stops here, before the temporary directory goes away.
    stage.emu.shutdown();
    Ok(if failed { keycred::error::exit::CHECK } else { keycred::error::exit::OK })
}

/// Writes the sample manifest holding `first`; returns its path, the app id and the entry's keyId.
fn write_manifest(dir: &Path, first: &LoadedCredential, out: &mut Out) -> Result<(PathBuf, ClientId, String)> {
    let manifest_path = dir.join(MANIFEST);
    let template =
        manifest::templates::manifest(Format::MsGraph).replace("00000000-0000-0000-0000-000000000000", APP_ID);
    let mut m = manifest::Manifest::parse(&template, "templates/manifest-ms-graph.json")?;
    let app_id = ClientId::new(m.app_id().unwrap_or(APP_ID))?;
    let entry = manifest::entry_for(&first.cert, Format::MsGraph, &EntryOptions::default())?;
    let first_key_id = entry["keyId"].as_str().unwrap_or_default().to_string();
    m = m.add_entry(entry)?;
    m.save(&manifest_path)?;
    out.line(format!("appId {app_id}, keyCredentials[0].keyId {first_key_id}"));
    out.line(format!("written to {}", manifest_path.display()));
    Ok((manifest_path, app_id, first_key_id))
}

/// Starts the emulator on the demo's manifest, granting the demo's roles.
fn start(manifest: PathBuf, app_id: ClientId, out: &mut Out) -> Result<Stage> {
    let mut cfg = EmulatorConfig::new(vec![manifest.clone()]);
    cfg.grants = vec![(RESOURCE.to_string(), ROLES.iter().map(|r| r.to_string()).collect())];
    cfg.log = false;
    let emu = emulator::start_blocking(cfg)?;
    let info = emu.info();
    let tenant = TenantId::new(info.tenant())?;
    let authority = Authority::parse(info.base_url())?;
    out.line(format!("authority {}  tenant {tenant}", info.base_url()));
    out.line(format!("granted {RESOURCE}: {}", ROLES.join(", ")));
    let client = TokenClient::new(ClientOptions::default())?;
    Ok(Stage { emu, authority, tenant, app_id, client, manifest })
}

/// `keycred check` of the first certificate through one endpoint; for v2 also the token decoded
/// and its signature checked. Returns whether anything failed.
fn check_through(stage: &Stage, dir: &Path, version: EndpointVersion, target: Target, out: &mut Out) -> Result<bool> {
    let report = check::run(
        &CheckOptions {
            cert: dir.join("demo-app-1.pem"),
            key: None,
            password: None,
            manifest: Some(stage.manifest.clone()),
            authority: stage.authority.clone(),
            tenant: stage.tenant.clone(),
            client_id: stage.app_id.clone(),
            version,
            target,
            expect_roles: ROLES.iter().map(|r| r.to_string()).collect(),
            alg: SignatureAlg::Rs256,
        },
        &stage.client,
    );
    for s in &report.steps {
        let mark = match s.ok {
            Some(true) => "ok  ",
            None => "skip",
            Some(false) => "FAIL",
        };
        out.line(format!("[{mark}] {}: {}", s.step, s.detail));
    }
    let mut failed = report.exit_code != 0;
    if version == EndpointVersion::V2 {
        if let Some(t) = &report.access_token {
            out.head("Decode the v2 access token (signature checked against the emulator's JWKS)")?;
            failed |= !show_token(t.expose(), stage.emu.info().jwks_public_key(), out)?;
        }
    }
    Ok(failed)
}

/// Prints the token's claims that matter; returns whether its signature is the emulator's.
fn show_token(token: &str, jwks_key: &[u8], out: &mut Out) -> Result<bool> {
    let d = jwt::dangerous::decode(token)?;
    let ok = d.verify(SignatureAlg::Rs256, jwks_key);
    out.line(format!("signature   {}", if ok { "valid (emulator key)" } else { "INVALID" }));
    for c in ["aud", "iss", "azp", "tid", "idtyp", "ver"] {
        if let Some(v) = d.claims.get(c) {
            out.line(format!("{c:<11} {}", v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())));
        }
    }
    out.line(format!("roles       {}", d.roles().join(", ")));
    if let Some(exp) = d.claim_time("exp") {
        let exp = time::OffsetDateTime::from_unix_timestamp(exp as i64).unwrap_or(dates::now());
        out.line(format!("expires     {}", dates::format(exp)));
    }
    Ok(ok)
}

/// Rotates the demo manifest to `second`, verified with `req`, removing `first_key_id`.
fn rotate_to(
    stage: &Stage,
    second: &Arc<LoadedCredential>,
    first_key_id: &str,
    req: &TokenRequest,
    out: &mut Out,
) -> Result<()> {
    let report = rotate::apply(
        &stage.manifest,
        Format::MsGraph,
        second,
        &EntryOptions::default(),
        &RemovePolicy::Selected(vec![Selector::key_id(first_key_id)?]),
        Some(Verify { client: &stage.client, request: req.clone() }),
        false,
    )?;
    out.line(format!(
        "added    keyId {} (thumbprint {})",
        report.added["keyId"].as_str().unwrap_or("?"),
        report.thumbprint
    ));
    out.line(format!("verified {}", report.verified_with.as_deref().unwrap_or("-")));
    for r in &report.removed {
        out.line(format!(
            "removed  keyId {} (thumbprint {})",
            r.key_id.as_deref().unwrap_or("?"),
            r.thumbprint.as_deref().unwrap_or("?")
        ));
    }
    let listed = manifest::Manifest::load(&stage.manifest)?.list(dates::now());
    out.line(format!(
        "manifest now holds {} certificate(s): {}",
        listed.len(),
        listed.iter().filter_map(|r| r.thumbprint.clone()).collect::<Vec<_>>().join(", ")
    ));
    Ok(())
}

/// Whether the removed certificate's request is refused with AADSTS700027, as it must be.
fn refused(client: &TokenClient, old: &TokenRequest, out: &mut Out) -> bool {
    match client.request_token_blocking(old) {
        Ok(_) => {
            out.line("UNEXPECTED: the removed certificate still obtained a token");
            false
        }
        Err(e) if entra_code(&e) == Some(700027) => {
            out.line(format!("refused as expected: {}", e.message().lines().next().unwrap_or_default()));
            true
        }
        Err(e) => {
            out.line(format!("refused, but not with AADSTS700027: {}", e.message()));
            false
        }
    }
}
