//! `keycred permissions` (the built-in catalogue of API permissions) and `keycred manifest
//! permission add|remove|list` (a manifest's `requiredResourceAccess`). The work is in
//! [`keycred::permissions`] and [`keycred::manifest`].

use super::output::{out_line, print_table};
use super::Ctx;
use keycred::error::exit;
use keycred::manifest::{edit_file, AccessRow, Manifest};
use keycred::permissions::{self, Kind};
use keycred::{Error, Result};
use std::path::PathBuf;

/// `keycred permissions`.
#[derive(clap::Args, Debug)]
pub struct CatalogueArgs {
    /// Only this API: short name (graph, office365, threat-protection, defender-atp, aad-graph),
    /// resource URI or appId
    #[arg(long)]
    pub api: Option<String>,
}

/// The permissions to add or remove: an API and names or ids.
#[derive(clap::Args, Debug, Clone)]
#[command(group(clap::ArgGroup::new("which").required(true).multiple(true).args(["role", "scope"])))]
pub struct Wanted {
    /// The API: short name (graph, office365, threat-protection, defender-atp, aad-graph),
    /// resource URI (https://manage.office.com) or appId
    #[arg(long)]
    pub api: String,
    /// An application permission (app role), by name or id (repeatable)
    #[arg(long)]
    pub role: Vec<String>,
    /// A delegated permission (scope), by name or id (repeatable)
    #[arg(long)]
    pub scope: Vec<String>,
}

impl Wanted {
    /// The resource's appId and the permissions' ids, resolved before anything is touched.
    pub fn resolve(&self) -> Result<(String, Vec<(String, Kind)>)> {
        let resource = permissions::find_api(&self.api)?;
        let mut out = Vec::new();
        for (kind, names) in [(Kind::Role, &self.role), (Kind::Scope, &self.scope)] {
            for n in names {
                out.push((permissions::resolve(&resource, kind, n)?, kind));
            }
        }
        Ok((resource.app_id().to_string(), out))
    }
}

/// `keycred manifest permission`.
#[derive(clap::Subcommand, Debug)]
pub enum ManifestCmd {
    /// Ask for API permissions: add them to requiredResourceAccess
    Add(EditArgs),
    /// Remove API permissions from requiredResourceAccess
    Remove(EditArgs),
    /// List requiredResourceAccess with the permissions' names
    List(ListArgs),
}

/// `manifest permission add|remove`.
#[derive(clap::Args, Debug)]
pub struct EditArgs {
    /// Manifest file
    pub manifest: PathBuf,
    #[command(flatten)]
    pub wanted: Wanted,
}

/// `manifest permission list`.
#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// Manifest file
    pub manifest: PathBuf,
}

/// Runs `keycred permissions`.
pub fn catalogue(a: &CatalogueArgs, ctx: &Ctx) -> Result<u8> {
    let api = a.api.as_deref().map(permissions::find_api).transpose()?;
    let api = match &api {
        Some(r) => Some(r.api().ok_or_else(|| {
            Error::input(format!("--api '{}': keycred has no catalogue for this resource", r.app_id()))
                .with_hint("`keycred permissions` lists the APIs it knows")
        })?),
        None => None,
    };
    let rows = permissions::rows(api);
    if ctx.json() {
        ctx.print_json(&rows);
        return Ok(exit::OK);
    }
    let table: Vec<[String; 4]> =
        rows.iter().map(|r| [r.api.clone(), r.kind.name().to_string(), r.name.clone(), r.id.clone()]).collect();
    print_table(["API", "TYPE", "NAME", "ID"], &table);
    Ok(exit::OK)
}

/// Prints `requiredResourceAccess` rows.
pub fn print_access(ctx: &Ctx, origin: &str, rows: &[AccessRow]) {
    if ctx.json() {
        ctx.print_json(rows);
        return;
    }
    if rows.is_empty() {
        out_line(&format!("{origin}: no requiredResourceAccess"));
        return;
    }
    let table: Vec<[String; 4]> = rows
        .iter()
        .map(|r| {
            [
                r.api.clone().unwrap_or_else(|| r.resource_app_id.clone()),
                r.kind.name().to_string(),
                r.name.clone().unwrap_or_else(|| "-".to_string()),
                r.id.clone(),
            ]
        })
        .collect();
    print_table(["API", "TYPE", "NAME", "ID"], &table);
}

/// Runs `keycred manifest permission ...`.
pub fn run_manifest(cmd: &ManifestCmd, ctx: &Ctx) -> Result<u8> {
    let (path, after) = match cmd {
        ManifestCmd::List(a) => {
            let m = Manifest::load(&a.manifest)?;
            print_access(ctx, &a.manifest.display().to_string(), &m.required_access()?);
            return Ok(exit::OK);
        }
        ManifestCmd::Add(a) => {
            let (app_id, wanted) = a.wanted.resolve()?;
            (&a.manifest, edit_file(&a.manifest, |m| m.add_access(&app_id, &wanted))?.after)
        }
        ManifestCmd::Remove(a) => {
            let (app_id, wanted) = a.wanted.resolve()?;
            (&a.manifest, edit_file(&a.manifest, |m| m.remove_access(&app_id, &wanted))?.after)
        }
    };
    let rows = after.required_access()?;
    if !ctx.json() {
        out_line(&format!("{} now asks for:", path.display()));
    }
    print_access(ctx, &path.display().to_string(), &rows);
    if !ctx.json() && matches!(cmd, ManifestCmd::Add(_)) {
        out_line("an administrator must consent before tokens carry them (`keycred consent-url`)");
    }
    Ok(exit::OK)
}
