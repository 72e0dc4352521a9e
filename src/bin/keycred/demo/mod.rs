//! `keycred demo`: the Office 365 Management API setup, offline, in a few seconds, against the
//! embedded emulator.
//!
//! Generate a certificate, put it in a sample manifest that asks for the Office 365 Management
//! APIs' application permissions, start the emulator on a loopback port, show that a token
//! carries no roles before an administrator consents, consent through the printed URL (the
//! emulator answers it at once, as an administrator clicking Accept would), exchange the code
//! at `/common` and read the tenant id from the token, check the credential through v1 and v2
//! with the roles now present, then rotate: a second certificate is added and verified, the
//! first removed, and a request signed with the first is shown being refused with AADSTS700027.

mod commands;

use super::output::{count, ensure_open, out_line};
use super::Ctx;
use commands::{shell_line, Flow};
use keycred::authority::{Authority, EndpointVersion};
use keycred::cert::files::{FileOptions, FilePaths, Plan};
use keycred::cert::{KeySize, LoadedCredential, NewCertificate, SignatureAlg, Validity};
use keycred::check::{self, CheckOptions};
use keycred::emulator::{self, EmulatorConfig};
use keycred::manifest::{self, EntryOptions, Format, Selector};
use keycred::rotate::{self, RemovePolicy, Verify};
use keycred::token::{entra_code, ClientAuth, ClientOptions, Grant, Registration, Target, TokenClient, TokenRequest};
use keycred::{dates, jwt, ClientId, Error, Result, TenantId};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The resource and the application permissions the demo app asks for: the Office 365
/// Management APIs (`c5393580-...`), `ActivityFeed.Read` and `ServiceHealth.Read`, by the ids
/// of the emulator's catalogue (`templates/resources.json`).
const RESOURCE: &str = "https://manage.office.com";
const RESOURCE_APP_ID: &str = keycred::ids::well_known::OFFICE_365_MANAGEMENT;
const ROLES: [(&str, &str); 2] = [
    ("ActivityFeed.Read", "594c1fb6-4f81-4475-ae41-0c394909246c"),
    ("ServiceHealth.Read", "e2cea78f-e743-4d8f-a16a-75b629a038ae"),
];
const APP_ID: &str = "3f6c2b1e-8d4a-4e7b-9c1d-2a5e6f7b8c9d";
/// The demo application's display name.
const DEMO_NAME: &str = "keycred demo";
/// The reply URL registered for the consent redirect.
const REPLY_URL: &str = "https://localhost/keycred-demo";
/// The `state` of the consent URL.
const STATE: &str = "keycred-demo";

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
                "--keep {}: {} already {}; nothing was written",
                d.display(),
                existing.join(", "),
                if existing.len() == 1 { "exists" } else { "exist" }
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
        self.log.push(json!({ "step": self.step, "title": title, "commands": [], "lines": [] }));
        Ok(())
    }
    /// The command lines that do what this step does, printed before its results.
    fn commands(&mut self, cmds: &[Vec<String>]) {
        for c in cmds {
            let line = shell_line(c);
            if !self.ctx.json() {
                out_line(&format!("   $ {line}"));
            }
            if let Some(last) = self.log.last_mut() {
                last["commands"].as_array_mut().expect("commands is an array").push(json!(line));
            }
        }
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
            // The demo's keys go inside: created 0700, and an existing one must not be writable
            // by others.
            keycred::fsio::ensure_private_dir(d, "--keep", keycred::fsio::Links::Follow)?;
            d.clone()
        }
        None => {
            tmp = tempfile::Builder::new()
                .prefix("keycred-demo-")
                .tempdir()
                .map_err(|e| Error::internal("cannot create a temporary directory").caused_by(e))?;
            tmp.path().to_path_buf()
        }
    };
    let mut out = Out { ctx, step: 0, log: Vec::new() };
    let code = demo(&dir, a.force, &mut out)?;
    let files: Vec<String> = demo_files(&dir).iter().filter(|p| p.exists()).map(|p| p.display().to_string()).collect();
    if ctx.json() {
        ctx.print_json(&json!({
            "directory": dir.display().to_string(), "kept": a.keep.is_some(),
            "files": if a.keep.is_some() { files.clone() } else { Vec::new() }, "steps": out.log,
        }));
    } else {
        out_line("");
        match &a.keep {
            Some(d) => {
                out_line(&format!("Done. The files are kept in {}:", d.display()));
                for f in &files {
                    out_line(&format!("   {f}"));
                }
                out_line(
                    "Run the commands above on them (with your tenant's --authority and --tenant, or the emulator's).",
                );
            }
            None => out_line(&format!(
                "Done. The files were written to {}, a temporary directory now removed; pass --keep DIR to keep \
                 them in DIR (created if missing) and run the commands above on them.",
                dir.display()
            )),
        }
    }
    Ok(code)
}

fn new_cert(dir: &Path, name: &str, force: bool) -> Result<Arc<LoadedCredential>> {
    let plan = Plan::new(
        NewCertificate { subject: commands::subject(name), key_size: KeySize::Rsa2048, validity: Validity::Days(365) },
        FileOptions { name: name.to_string(), dir: dir.to_path_buf(), pfx: None, password: None, force },
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
    /// The command lines of the steps.
    flow: Flow,
}

/// The demo in `dir`; `force` lets it replace files of an earlier demo ([`check_keep`] has refused
/// them otherwise, and a fresh temporary directory has none).
fn demo(dir: &Path, force: bool, out: &mut Out) -> Result<u8> {
    let flow = Flow::new(dir, APP_ID);
    out.head("Generate a certificate (RSA-2048, self-signed)")?;
    out.commands(&[flow.new_cert(CREDENTIALS[0])]);
    let first = new_cert(dir, CREDENTIALS[0], force)?;
    out.line(format!("subject              {}", first.cert.subject()));
    out.line(format!("thumbprint           {}", first.cert.thumbprint()));
    out.line(format!("customKeyIdentifier  {}", first.cert.custom_key_identifier()));
    out.line(format!("x5t                  {}", first.cert.x5t()));
    out.line(format!("files                {}/demo-app-1.{{key,cer,pem}}", dir.display()));

    out.head("Add it to a starter app manifest asking for the Office 365 Management API roles")?;
    out.commands(&flow.manifest());
    let (manifest, app_id, first_key_id) = write_manifest(dir, &first, out)?;

    out.head("Start the Entra emulator on a loopback port")?;
    let stage = start(manifest, app_id, flow, out)?;
    let cert_auth = |cred: &Arc<LoadedCredential>| ClientAuth::Certificate {
        cred: cred.clone(),
        alg: SignatureAlg::Rs256,
        x5c: false,
    };
    let app_only = TokenRequest {
        authority: stage.authority.clone(),
        tenant: stage.tenant.clone(),
        client_id: stage.app_id.clone(),
        version: EndpointVersion::V2,
        target: Target::Scopes(vec![RESOURCE.into()]),
        grant: Grant::ClientCredentials,
        auth: cert_auth(&first),
    };

    out.head("Before consent: a token, but no roles (the API would refuse it)")?;
    out.commands(&[stage.flow.token(CREDENTIALS[0])]);
    let mut failed = !no_roles_yet(&stage, &app_only, out)?;

    out.head(
        "An administrator consents through the consent URL (v1 authorize at /common, as the Office 365 setup does)",
    )?;
    failed |= !consent(&stage, &app_only, out)?;
    for (version, target, label) in [
        (EndpointVersion::V1, Target::Resource(RESOURCE.into()), "v1 (resource=)"),
        (EndpointVersion::V2, Target::Scopes(vec![RESOURCE.into()]), "v2 (scope=.../.default)"),
    ] {
        out.head(&format!("keycred check through the {label} endpoint"))?;
        failed |= check_through(&stage, dir, version, target, out)?;
    }

    out.head("Rotate: add a second certificate, verify it, remove the first")?;
    out.commands(&[stage.flow.rotate(&first_key_id)]);
    let second = new_cert(dir, CREDENTIALS[1], force)?;
    let req = TokenRequest { auth: cert_auth(&second), ..app_only.clone() };
    rotate_to(&stage, &second, &first_key_id, &req, out)?;

    out.head("A request signed with the removed certificate is refused")?;
    out.commands(&[stage.flow.token(CREDENTIALS[0])]);
    let mut old = req;
    old.auth = cert_auth(&first);
    failed |= !refused(&stage.client, &old, out);
    // The emulator stops here, before the temporary directory goes away.
    stage.emu.shutdown();
    Ok(if failed { keycred::error::exit::CHECK } else { keycred::error::exit::OK })
}

/// Writes the sample manifest holding `first`; returns its path, the app id and the entry's keyId.
fn write_manifest(dir: &Path, first: &LoadedCredential, out: &mut Out) -> Result<(PathBuf, ClientId, String)> {
    let manifest_path = dir.join(MANIFEST);
    // What the `keycred manifest init` line of [`Flow::manifest`] writes.
    let starter = manifest::templates::Starter {
        app_id: uuid::Uuid::parse_str(APP_ID).map_err(|e| Error::internal(e.to_string()))?,
        object_id: uuid::Uuid::new_v4(),
        display_name: DEMO_NAME.into(),
    };
    let wanted = super::permissions::Wanted {
        api: RESOURCE.into(),
        role: ROLES.map(|(r, _)| r.to_string()).to_vec(),
        scope: Vec::new(),
    };
    let text = super::manifest::starter_text(Format::MsGraph, &starter, Some(&wanted), &[REPLY_URL.into()])?;
    let mut m = manifest::Manifest::parse(&text, "the demo's starter manifest")?;
    let app_id = ClientId::new(m.app_id().unwrap_or(APP_ID))?;
    let entry = manifest::entry_for(&first.cert, Format::MsGraph, &EntryOptions::default())?;
    let first_key_id = entry["keyId"].as_str().unwrap_or_default().to_string();
    m = m.add_entry(entry)?;
    m.save(&manifest_path)?;
    out.line(format!("appId {app_id}, keyCredentials[0].keyId {first_key_id}"));
    out.line(format!(
        "requiredResourceAccess: {RESOURCE} ({RESOURCE_APP_ID}) {} (type Role)",
        ROLES.map(|(r, _)| r).join(", ")
    ));
    out.line(format!("reply URL {REPLY_URL}"));
    out.line(format!("written to {}", manifest_path.display()));
    Ok((manifest_path, app_id, first_key_id))
}

/// Starts the emulator on the demo's manifest; its consent page answers at once, as an
/// administrator clicking Accept would.
fn start(manifest: PathBuf, app_id: ClientId, mut flow: Flow, out: &mut Out) -> Result<Stage> {
    let mut cfg = EmulatorConfig::new(vec![manifest.clone()]);
    cfg.auto_consent = true;
    cfg.log = false;
    let emu = emulator::start_blocking(cfg)?;
    let info = emu.info();
    let tenant = TenantId::new(info.tenant())?;
    let authority = Authority::parse(info.base_url())?;
    (flow.authority, flow.tenant) = (info.base_url().to_string(), tenant.to_string());
    let listen = info.base_url().trim_start_matches("http://");
    out.commands(&[flow.emulate(listen)]);
    out.line(format!("authority {}  tenant {tenant}", info.base_url()));
    let client = TokenClient::new(ClientOptions::default())?
        .with_registration(Registration::Manifest(manifest.display().to_string()));
    Ok(Stage { emu, authority, tenant, app_id, client, manifest, flow })
}

/// `keycred check` of the first certificate through one endpoint; for v2 also the token decoded
/// and its signature checked. Returns whether anything failed.
fn check_through(stage: &Stage, dir: &Path, version: EndpointVersion, target: Target, out: &mut Out) -> Result<bool> {
    out.commands(&[stage.flow.check(version == EndpointVersion::V1)]);
    let report = check::run(
        &CheckOptions {
            cert: dir.join("demo-app-1.pem"),
            key: None,
            signer: None,
            password: None,
            manifest: Some(stage.manifest.clone()),
            authority: stage.authority.clone(),
            tenant: stage.tenant.clone(),
            client_id: stage.app_id.clone(),
            version,
            target,
            expect_roles: ROLES.iter().map(|(r, _)| r.to_string()).collect(),
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
            out.head("Decode the access token (v1: Office 365 takes v1 tokens, whichever endpoint)")?;
            out.commands(&stage.flow.decode());
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
    for c in ["aud", "iss", "appid", "tid", "idtyp", "ver"] {
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
        "manifest now holds {}: {}",
        count(listed.len() as u64, "certificate", "certificates"),
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

/// Before consent Entra issues the token without `roles`; returns whether that is so.
fn no_roles_yet(stage: &Stage, app_only: &TokenRequest, out: &mut Out) -> Result<bool> {
    let before = stage.client.request_token_blocking(app_only)?;
    let roles = jwt::dangerous::decode(before.access_token.expose())?.roles();
    out.line(format!("roles       {}", if roles.is_empty() { "(none)".to_string() } else { roles.join(", ") }));
    Ok(roles.is_empty())
}

/// The Office 365 Management API setup's consent: the v1 authorize URL with
/// `prompt=admin_consent` at `/common`, the code from its redirect exchanged at `/common`, the
/// tenant id read from the token. Returns whether consent was given and the tenant id is the
/// emulator's.
fn consent(stage: &Stage, app_only: &TokenRequest, out: &mut Out) -> Result<bool> {
    let url = keycred::consent::authorize_url_v1(
        &stage.authority,
        None,
        &stage.app_id,
        RESOURCE,
        REPLY_URL,
        Some(keycred::consent::Prompt::AdminConsent),
        Some(STATE),
    );
    out.commands(&[stage.flow.consent_url(STATE)]);
    out.line(format!("open        {url}"));
    let redirected = follow_consent(&url)?;
    out.line(format!("redirected  {redirected}"));
    out.commands(&stage.flow.exchange(&redirected, STATE));
    let reply = keycred::consent::parse_redirect(&redirected, "the consent redirect")?;
    out.line(format!("admin_consent {}", if reply.admin_consent { "True" } else { "missing" }));
    let code = reply.code.clone().ok_or_else(|| Error::internal("the consent redirect carries no code"))?;
    let exchange = TokenRequest {
        tenant: TenantId::common(),
        version: EndpointVersion::V1,
        target: Target::Resource(RESOURCE.into()),
        grant: Grant::AuthorizationCode { code, redirect_uri: REPLY_URL.into() },
        ..app_only.clone()
    };
    let user = stage.client.request_token_blocking(&exchange)?;
    let d = jwt::dangerous::decode(user.access_token.expose())?;
    let tid = d.claim_str("tid").unwrap_or_default().to_string();
    out.line(format!("code exchanged at /common: tid {tid} (keep it for the client-credentials calls)"));
    out.line(format!("signed in as {}", d.claim_str("upn").unwrap_or("?")));
    Ok(reply.admin_consent && tid == stage.tenant.as_str())
}

/// Opens the consent URL as a browser would and returns where the emulator redirects it.
fn follow_consent(url: &str) -> Result<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::internal("cannot start the async runtime").caused_by(e))?;
    rt.block_on(async {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| Error::internal("HTTP client").caused_by(e))?;
        let r = http.get(url).send().await.map_err(|e| Error::internal("consent URL").caused_by(e))?;
        r.headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| Error::internal(format!("the consent URL answered {} without a redirect", r.status())))
    })
}
