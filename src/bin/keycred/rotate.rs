//! `keycred rotate`: new certificate, added beside the old ones, optionally verified, then the
//! old ones removed as asked.

use super::common::{self, CaFileArgs, FormatArgs, NewCertArgs, TenantArgs};
use super::output::{generate, print_rotation};
use super::Ctx;
use keycred::authority::Authority;
use keycred::cert::{LoadedCredential, SignatureAlg};
use keycred::manifest::{EntryOptions, Manifest, Selector};
use keycred::rotate::{self, RemovePolicy, Verify};
use keycred::token::{ClientAuth, Grant, Registration, Target, TokenClient, TokenRequest};
use keycred::{fsio, ClientId, Error, Result, TenantId};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Arguments. No argument group of its own: flattened groups would otherwise be checked
/// against one named `Args` too, and two groups of one name make clap panic.
#[derive(clap::Args, Debug)]
#[group(skip)]
pub struct Args {
    /// The manifest to rotate
    #[arg(long)]
    pub manifest: PathBuf,
    #[command(flatten)]
    pub new: NewCertArgs,
    #[command(flatten)]
    pub format: FormatArgs,
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
    /// Allow the removals to leave no currently valid certificate (e.g. the current one removed
    /// while the new one starts later); the app cannot sign in until one becomes valid
    #[arg(long)]
    pub allow_lockout: bool,
    /// Obtain a token with the new certificate before removing anything
    #[arg(long, requires = "tenant")]
    pub verify: bool,
    /// The app, tenant and authority, for --verify
    #[command(flatten)]
    pub tenant: TenantArgs,
    /// v2 scope for --verify
    #[arg(long, conflicts_with = "resource")]
    pub scope: Vec<String>,
    /// v1 resource for --verify
    #[arg(long)]
    pub resource: Option<String>,
    // --ca-file, for --verify.
    #[command(flatten)]
    pub ca: CaFileArgs,
}

/// What `--remove`, `--remove-expired` and `--keep-old` ask for.
fn policy(a: &Args) -> Result<RemovePolicy> {
    if a.remove_expired {
        return Ok(RemovePolicy::Expired);
    }
    if a.remove.is_empty() {
        return Ok(RemovePolicy::KeepOld);
    }
    let mut sels: Vec<Selector> = Vec::new();
    for k in &a.remove {
        let sel = Selector::key_id(k).map_err(|_| {
            Error::input(format!("--remove '{k}': not a keyId (UUID); nothing was changed"))
                .with_hint(format!("give the keyId as `keycred manifest list {}` shows it", a.manifest.display()))
        })?;
        // `--remove K --remove K` names one entry: report it once.
        if !sels.contains(&sel) {
            sels.push(sel);
        }
    }
    Ok(RemovePolicy::Selected(sels))
}

/// `--verify`, checked before anything is generated: the client (its `--ca-file` read), the
/// authority and the target.
struct VerifyPlan {
    client: TokenClient,
    authority: Authority,
    tenant: TenantId,
    client_id: ClientId,
    target: Target,
}

impl VerifyPlan {
    fn new(a: &Args) -> Result<Option<VerifyPlan>> {
        if !a.verify {
            return Ok(None);
        }
        let (tenant, client_id) = (a.tenant.tenant()?, a.tenant.client_id_or_manifest(Some(&a.manifest))?);
        let target = common::target(&a.scope, a.resource.as_deref())?;
        let authority = a.tenant.authority()?;
        let client = a.ca.client()?.with_registration(Registration::Manifest(a.manifest.display().to_string()));
        Ok(Some(VerifyPlan { client, authority, tenant, client_id, target }))
    }

    /// The client-credentials request signed with `cred`.
    fn verify(&self, cred: &Arc<LoadedCredential>) -> Verify<'_> {
        let request = TokenRequest {
            authority: self.authority.clone(),
            tenant: self.tenant.clone(),
            client_id: self.client_id.clone(),
            version: self.target.default_version(),
            target: self.target.clone(),
            grant: Grant::ClientCredentials,
            auth: ClientAuth::Certificate { cred: cred.clone(), alg: SignatureAlg::Rs256, x5c: false },
        };
        Verify { client: &self.client, request }
    }
}

/// Runs `keycred rotate`.
pub fn run(a: &Args, ctx: &Ctx) -> Result<u8> {
    let policy = policy(a)?;
    // The format first, so a `--format` contradicting the manifest is refused with its hint.
    let format = a.format.resolve(&Manifest::load(&a.manifest)?)?;
    // Everything that can be checked is checked before a key is generated or a file written:
    // the manifest and the selection, the token request, the new certificate's arguments.
    let (_, format) = rotate::preflight(&a.manifest, Some(format), &policy)?;
    let verify = VerifyPlan::new(a)?;
    let plan = a.new.plan()?;
    let (cert, key) = generate(ctx, &plan)?;
    // Then the rotation itself, in memory: the new certificate's dates, its entry, the lock-out.
    let entry = EntryOptions { display_name: a.display_name.clone(), ..EntryOptions::default() };
    let prepared = rotate::prepare(&a.manifest, format, &cert, &entry, &policy, a.allow_lockout)?;

    let files = fsio::Snapshot::before(&plan.paths())?;
    let (created, cred) = match plan.write_credential(cert, key) {
        Ok(f) => f,
        Err(e) => return Err(files.undo(e, "")),
    };
    let cred = Arc::new(cred);
    let verify = verify.as_ref().map(|v| v.verify(&cred));
    // A --verify token request that could not reach the endpoint gets this command's options.
    let applied =
        rotate::apply_prepared(&a.manifest, &prepared, &cred, verify).map_err(|e| common::transport_hint(e, false));
    let report = match applied {
        Ok(r) => r,
        // The files stay when the manifest kept the new entry (a removal refused after the add):
        // they hold the key of a registered certificate.
        Err(e) if manifest_holds(&a.manifest, prepared.key_id()) => return Err(e),
        Err(e) => return Err(files.undo(e, "the manifest is unchanged; ")),
    };
    print_rotation(ctx, &report, &created)?;
    Ok(keycred::error::exit::OK)
}

/// Whether the manifest at `path` holds the entry `key_id` (false when it cannot be read).
fn manifest_holds(path: &Path, key_id: &str) -> bool {
    let Ok(sel) = Selector::key_id(key_id) else { return false };
    Manifest::load(path).is_ok_and(|m| !m.find(&sel).is_empty())
}
