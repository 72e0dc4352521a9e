//! `keycred manifest init|template|entry|add|list|remove|prune|permission`: a starter manifest, a
//! certificate's `keyCredentials` entry, editing an app manifest's collection of them, and (in
//! [`super::permissions`]) its API permissions. The work is in [`keycred::manifest`].

use super::common::{FormatArg, FormatArgs};
use super::output::{out_line, print_table};
use super::Ctx;
use keycred::cert::{load_file, Certificate};
use keycred::error::exit;
use keycred::manifest::{
    edit_file, entry_for, templates, EntryOptions, Format, ListRow, LockoutGuard, Manifest, Selector,
};
use keycred::{dates, fsio, Error, ErrorKind, Result};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// Subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum Cmd {
    /// Write a starter manifest (fresh ids unless given) to add certificates to
    Init(InitArgs),
    /// Print a sample manifest
    Template(TemplateArgs),
    /// Print the keyCredentials entry for a certificate
    Entry(EntryArgs),
    /// Add a certificate to a manifest's keyCredentials
    Add(AddArgs),
    /// List a manifest's keyCredentials
    List(ListArgs),
    /// Remove entries by keyId or thumbprint
    Remove(RemoveArgs),
    /// Remove expired entries
    Prune(PruneArgs),
    /// Edit the API permissions the app asks for (requiredResourceAccess)
    #[command(subcommand)]
    Permission(super::permissions::ManifestCmd),
}

/// What describes the new entry.
#[derive(clap::Args, Debug)]
pub struct EntryArgs {
    /// Certificate: PEM, DER or PFX (the private key is not needed)
    #[arg(long)]
    pub cert: PathBuf,
    /// Environment variable holding the PFX password
    #[arg(long, value_name = "VAR")]
    pub password_env: Option<String>,
    #[command(flatten)]
    pub format: FormatArgs,
    /// keyId (UUID); a fresh random one by default
    #[arg(long)]
    pub key_id: Option<String>,
    /// displayName (ms-graph only); the certificate's subject by default
    #[arg(long)]
    pub display_name: Option<String>,
    /// Start (YYYY-MM-DD or RFC 3339); the certificate's notBefore by default
    #[arg(long)]
    pub start: Option<String>,
    /// End (YYYY-MM-DD or RFC 3339); the certificate's notAfter by default
    #[arg(long)]
    pub end: Option<String>,
}

/// `manifest init`.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("init_which").multiple(true).args(["role", "scope"])))]
pub struct InitArgs {
    /// Manifest file to create (refused when it exists, unless --force)
    pub manifest: PathBuf,
    /// appId (the client id); a fresh random one by default
    #[arg(long)]
    pub app_id: Option<String>,
    /// The application's name (default: the manifest file's name without its extension, as in
    /// `daemon.json` -> `daemon`)
    #[arg(long)]
    pub display_name: Option<String>,
    /// Manifest format
    #[arg(long, value_enum, default_value = "ms-graph")]
    pub format: FormatArg,
    /// Replace an existing file
    #[arg(long)]
    pub force: bool,
    /// Ask for permissions on this API (short name, resource URI or appId), in place of the
    /// sample's Microsoft Graph one; with --role/--scope
    #[arg(long, requires = "init_which")]
    pub api: Option<String>,
    /// An application permission on --api, by name or id (repeatable)
    #[arg(long, requires = "api")]
    pub role: Vec<String>,
    /// A delegated permission on --api, by name or id (repeatable)
    #[arg(long, requires = "api")]
    pub scope: Vec<String>,
    /// A reply (redirect) URL of the web platform, replacing the sample's (repeatable)
    #[arg(long, value_name = "URL")]
    pub reply_url: Vec<String>,
}

/// `manifest template`.
#[derive(clap::Args, Debug)]
pub struct TemplateArgs {
    /// Manifest format
    #[arg(long, value_enum, default_value = "ms-graph")]
    pub format: FormatArg,
}

/// `manifest add`.
#[derive(clap::Args, Debug)]
pub struct AddArgs {
    /// Manifest file (JSON, as downloaded from the portal)
    pub manifest: PathBuf,
    #[command(flatten)]
    pub entry: EntryArgs,
    /// The certificate's private key, a key file or a key on a token (pkcs11:...): --cert must
    /// then list the key's certificate first, each certificate followed by its issuer
    #[arg(long)]
    pub key: Option<String>,
    #[command(flatten)]
    pub token: super::keystore::TokenArgs,
    /// Show what would be added; write nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// `manifest list`.
#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// Manifest file
    pub manifest: PathBuf,
}

/// `manifest remove`.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("which").required(true).multiple(true).args(["key_id", "thumbprint"])))]
pub struct RemoveArgs {
    /// Manifest file
    pub manifest: PathBuf,
    /// keyId of an entry to remove (repeatable)
    #[arg(long)]
    pub key_id: Vec<String>,
    /// Thumbprint of a certificate to remove: hex (colons optional), base64 or base64url (repeatable)
    // base64url thumbprints start with '-' one time in 64: they are values, not flags.
    #[arg(long, allow_hyphen_values = true)]
    pub thumbprint: Vec<String>,
    /// Allow removing the last currently valid certificate (turns the lock-out guard off; nothing else)
    #[arg(long)]
    pub force: bool,
    /// Show what would be removed; write nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// `manifest prune`.
#[derive(clap::Args, Debug)]
pub struct PruneArgs {
    /// Manifest file
    pub manifest: PathBuf,
    /// Remove the entries whose end date has passed
    #[arg(long, required = true)]
    pub expired: bool,
    /// Allow leaving no currently valid certificate (turns the lock-out guard off; nothing else)
    #[arg(long)]
    pub force: bool,
    /// Show what would be removed; write nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// Runs the command.
pub fn run(cmd: &Cmd, ctx: &Ctx) -> Result<u8> {
    match cmd {
        Cmd::Init(a) => init(a, ctx),
        Cmd::Template(a) => {
            // The template is JSON whatever -o says: it is meant to be saved and edited.
            for line in templates::manifest(a.format.into()).lines() {
                out_line(line);
            }
            Ok(exit::OK)
        }
        Cmd::Entry(a) => entry(a, ctx),
        Cmd::Add(a) => add(a, ctx),
        Cmd::List(a) => list(a, ctx),
        Cmd::Remove(a) => remove(a, ctx),
        Cmd::Prune(a) => prune(a, ctx),
        Cmd::Permission(c) => super::permissions::run_manifest(c, ctx),
    }
}

/// `--display-name`, else the manifest's file name without its extension (a placeholder such as
/// Microsoft's sample "MyCompanyName MyAppName" would end up in the portal unnoticed).
fn init_display_name(a: &InitArgs) -> String {
    a.display_name.clone().unwrap_or_else(|| {
        a.manifest
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| "keycred app".into())
    })
}

fn init(a: &InitArgs, ctx: &Ctx) -> Result<u8> {
    let app_id = match &a.app_id {
        Some(s) => uuid::Uuid::parse_str(s.trim()).map_err(|_| {
            Error::input(format!("--app-id '{s}': not a UUID")).with_hint(
                "give the Application (client) ID the portal shows, e.g. 6731de76-14a6-49ae-97bc-6eba6914391e",
            )
        })?,
        None => uuid::Uuid::new_v4(),
    };
    let format = Format::from(a.format);
    let starter = templates::Starter { app_id, object_id: uuid::Uuid::new_v4(), display_name: init_display_name(a) };
    let wanted = a.api.as_ref().map(|api| super::permissions::Wanted {
        api: api.clone(),
        role: a.role.clone(),
        scope: a.scope.clone(),
    });
    // Built before anything is written: an unknown name or a bad URL leaves no file behind.
    let text = starter_text(format, &starter, wanted.as_ref(), &a.reply_url)?;
    if !a.force {
        fsio::ensure_absent([a.manifest.as_path()])
            .map_err(|e| e.with_hint("pass --force to replace it, or choose another name"))?;
    }
    fsio::atomic_write(&a.manifest, text.as_bytes(), Some(fsio::PUBLIC_MODE))?;
    let summary = serde_json::json!({
        "manifest": a.manifest.display().to_string(),
        "format": format.name(),
        "appId": app_id.to_string(),
        "objectId": starter.object_id.to_string(),
    });
    if ctx.json() {
        ctx.print_json(&summary);
    } else {
        out_line(&format!(
            "wrote {} ({} format, appId {app_id}); add a certificate with `keycred manifest add {} --cert CERT`",
            a.manifest.display(),
            format.name(),
            a.manifest.display()
        ));
    }
    Ok(exit::OK)
}

/// The starter manifest of `format` asking for `wanted`'s permissions, with `reply_urls` (when
/// any) as its web reply URLs in place of the sample's. `manifest init` writes it; `keycred demo`
/// builds its manifest with it, so that the `manifest init` line it prints makes the same file.
pub fn starter_text(
    format: Format,
    starter: &templates::Starter,
    wanted: Option<&super::permissions::Wanted>,
    reply_urls: &[String],
) -> Result<String> {
    let mut m = Manifest::parse(&templates::starter(format, starter), "starter")?;
    if let Some(wanted) = wanted {
        let (app_id, ids) = wanted.resolve()?;
        // The sample's Microsoft Graph permission only shows the shape: asking for permissions
        // replaces it, so the application asks for nothing it was not told to.
        m = m.set_member("requiredResourceAccess", &Value::Array(Vec::new()))?.add_access(&app_id, &ids)?;
    }
    if !reply_urls.is_empty() {
        for url in reply_urls {
            check_reply_url(url)?;
        }
        m = match format {
            Format::MsGraph => {
                let mut web = m.root().get("web").cloned().unwrap_or_else(|| Value::Object(Map::new()));
                web["redirectUris"] = Value::from(reply_urls.to_vec());
                m.set_member("web", &web)?
            }
            Format::AadGraph => {
                let urls: Vec<Value> =
                    reply_urls.iter().map(|u| serde_json::json!({"url": u, "type": "Web"})).collect();
                m.set_member("replyUrlsWithType", &Value::Array(urls))?
            }
        };
    }
    Ok(m.text().to_string())
}

/// A reply URL Entra lets a new registration hold: absolute, and https unless on loopback.
fn check_reply_url(url: &str) -> Result<()> {
    let hint = "give an absolute https URL, such as https://localhost/callback (plain http only for localhost)";
    match keycred::consent::check_redirect_uri(url) {
        Ok(None) => Ok(()),
        Ok(Some(_)) => Err(Error::input(format!(
            "--reply-url '{url}' uses plain http: Entra accepts new http reply URLs for localhost only"
        ))
        .with_hint(hint)),
        Err(_) => Err(Error::input(format!("--reply-url '{url}' is not an absolute URL")).with_hint(hint)),
    }
}

fn load_cert(a: &EntryArgs) -> Result<Certificate> {
    let password = super::common::password_from(a.password_env.as_deref())?;
    // `load_file` refuses a file without a certificate, naming what it holds instead; the leaf
    // comes first.
    let cert = load_file(&a.cert, password.as_ref())?.certs.swap_remove(0);
    // Checked here too so the message names the file; `entry_for` checks again for library users.
    cert.ensure_usable(&a.cert.display().to_string(), dates::now())?;
    Ok(cert)
}

/// `--key`: the certificate file lists the key's certificate first, then each issuer in turn.
fn check_chain(a: &AddArgs, key: &str) -> Result<()> {
    let password = super::common::password_from(a.entry.password_env.as_deref())?;
    let signer: std::sync::Arc<dyn keycred::cert::Signer> = match super::keystore::on_token(Some(key.as_ref())) {
        Some(spec) => std::sync::Arc::new(a.token.key(spec)?),
        None => std::sync::Arc::new(keycred::cert::load_key(key.as_ref(), password.as_ref())?),
    };
    let origin = a.entry.cert.display().to_string();
    let bytes = keycred::fsio::read_limited(&a.entry.cert, keycred::fsio::MAX_CREDENTIAL_BYTES)?;
    let certs = keycred::cert::chain::file_order(&bytes, password.as_ref(), &origin)?;
    keycred::cert::chain::check(&certs, signer.as_ref(), &origin)
}

fn options(a: &EntryArgs) -> Result<EntryOptions> {
    let key_id = match &a.key_id {
        Some(s) => match Selector::key_id(s)? {
            Selector::KeyId(id) => Some(id),
            Selector::Thumbprint(_) => unreachable!("Selector::key_id builds a KeyId"),
        },
        None => None,
    };
    Ok(EntryOptions {
        key_id,
        display_name: a.display_name.clone(),
        start: a.start.as_deref().map(|s| dates::parse(s, "--start")).transpose()?,
        end: a.end.as_deref().map(|s| dates::parse(s, "--end")).transpose()?,
    })
}

fn print_entry(ctx: &Ctx, e: &Map<String, Value>) {
    // The entry is what users paste into a manifest, so text output is the JSON too.
    ctx.print_json(e);
}

/// The entry for `cert` in `format`; the refusal of a displayName in the legacy format names the
/// options.
fn build_entry(a: &EntryArgs, cert: &Certificate, format: Format, opts: &EntryOptions) -> Result<Map<String, Value>> {
    if format == Format::AadGraph && a.display_name.is_some() {
        return Err(Error::input("--display-name: the aad-graph (legacy) format has no displayName")
            .with_hint("leave --display-name out, or use --format ms-graph"));
    }
    entry_for(cert, format, opts)
}

fn entry(a: &EntryArgs, ctx: &Ctx) -> Result<u8> {
    let opts = options(a)?;
    let cert = load_cert(a)?;
    let e = build_entry(a, &cert, a.format.given().unwrap_or(Format::MsGraph), &opts)?;
    print_entry(ctx, &e);
    Ok(exit::OK)
}

fn add(a: &AddArgs, ctx: &Ctx) -> Result<u8> {
    let opts = options(&a.entry)?;
    // Everything is checked before the file is touched: manifest, certificate, entry.
    let current = Manifest::load(&a.manifest)?;
    let format = a.entry.format.resolve(&current)?;
    let cert = load_cert(&a.entry)?;
    if let Some(key) = &a.key {
        check_chain(a, key)?;
    }
    let e = build_entry(&a.entry, &cert, format, &opts)?;
    if a.dry_run {
        current.add_entry(e.clone())?;
        if !ctx.json() {
            out_line(&format!(
                "would add certificate {} to {} (dry run, nothing written):",
                cert.thumbprint(),
                a.manifest.display()
            ));
        }
        print_entry(ctx, &e);
        return Ok(exit::OK);
    }
    edit_file(&a.manifest, |m| {
        // Another edit may have happened since the checks above: check again under the lock.
        FormatArgs::resolve_as(m, Some(format))?;
        m.add_entry(e.clone())
    })?;
    if !ctx.json() {
        out_line(&format!("added certificate {} to {}:", cert.thumbprint(), a.manifest.display()));
    }
    print_entry(ctx, &e);
    Ok(exit::OK)
}

fn print_rows(ctx: &Ctx, rows: &[ListRow]) {
    if ctx.json() {
        ctx.print_json(rows);
        return;
    }
    let none = || "-".to_string();
    // `print_table` escapes the cells (a display name may hold terminal escapes or newlines).
    let table: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            [
                r.key_id.clone().unwrap_or_else(none),
                r.thumbprint.clone().unwrap_or_else(none),
                r.status.name().to_string(),
                r.start.clone().unwrap_or_else(none),
                r.end.clone().unwrap_or_else(none),
                if r.has_body { "yes" } else { "no" }.to_string(),
                r.display_name.clone().unwrap_or_else(none),
            ]
        })
        .collect();
    print_table(["KEY ID", "THUMBPRINT", "STATUS", "START", "END", "BODY", "DISPLAY NAME"], &table);
    // Problems are sentences: under the table rather than in a column.
    for r in rows {
        let which = r.key_id.as_deref().map_or_else(|| "entry without keyId".to_string(), |k| format!("keyId {k}"));
        for p in &r.problems {
            out_line(&format!("{which}: {p}"));
        }
    }
}

fn list(a: &ListArgs, ctx: &Ctx) -> Result<u8> {
    let m = Manifest::load(&a.manifest)?;
    let rows = m.list(dates::now());
    if rows.is_empty() && !ctx.json() {
        out_line(&format!("{}: no keyCredentials", a.manifest.display()));
        return Ok(exit::OK);
    }
    print_rows(ctx, &rows);
    Ok(exit::OK)
}

/// Removes `indices` (computed by `pick` on the manifest as read under the lock) as `guard`
/// allows; prints the removed rows.
fn remove_where(
    path: &Path,
    ctx: &Ctx,
    guard: LockoutGuard,
    dry_run: bool,
    pick: impl Fn(&Manifest) -> Result<Vec<usize>>,
) -> Result<u8> {
    let now = dates::now();
    let apply = |m: &Manifest| -> Result<Manifest> {
        let indices = pick(m)?;
        m.remove_guarded(&indices, guard, now).map_err(|e| match e.kind() {
            ErrorKind::Input => e.with_hint(
                "add the new certificate first (`keycred manifest add`), or pass --force if that is intended",
            ),
            _ => e,
        })
    };
    let before = if dry_run {
        let m = Manifest::load(path)?;
        apply(&m)?;
        m
    } else {
        edit_file(path, apply)?.before
    };
    let indices = pick(&before)?;
    let rows: Vec<ListRow> =
        before.credentials().iter().filter(|c| indices.contains(&c.index)).map(|c| ListRow::of(c, now)).collect();
    if ctx.json() {
        ctx.print_json(&rows);
    } else if rows.is_empty() {
        out_line(&format!("{}: nothing to remove", path.display()));
    } else {
        let verb = if dry_run { "would remove (dry run, nothing written)" } else { "removed" };
        out_line(&format!("{verb} from {}:", path.display()));
        print_rows(ctx, &rows);
    }
    Ok(exit::OK)
}

fn remove(a: &RemoveArgs, ctx: &Ctx) -> Result<u8> {
    let mut selectors = Vec::new();
    for k in &a.key_id {
        selectors.push(Selector::key_id(k)?);
    }
    for t in &a.thumbprint {
        selectors.push(Selector::thumbprint(t)?);
    }
    let guard = if a.force { LockoutGuard::Off } else { LockoutGuard::KeepValid };
    remove_where(&a.manifest, ctx, guard, a.dry_run, |m| m.select(&selectors))
}

fn prune(a: &PruneArgs, ctx: &Ctx) -> Result<u8> {
    let now = dates::now();
    let guard = if a.force { LockoutGuard::Off } else { LockoutGuard::RequireValid };
    remove_where(&a.manifest, ctx, guard, a.dry_run, |m| {
        // By end date, whatever else is wrong with the entry: an expired unusable entry goes too.
        Ok(m.credentials().iter().filter(|c| c.effective_end().is_some_and(|e| e < now)).map(|c| c.index).collect())
    })
}
