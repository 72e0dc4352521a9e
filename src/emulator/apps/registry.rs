//! The [`Registry`]: the served applications and resources, indexed by appId, object id and
//! identifier URI, kept fresh from their files without scanning (a file's stamp decides whether
//! it is read again), the last good version kept when a file breaks.

use super::{builtins, read_app, uri_key, Api, App};
use crate::thumbprint::sha256;
use crate::wording::Input;
use crate::{Error, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

/// How old a file's modification time must be, when read, for its stamp to be trusted.
pub(super) const RACY: Duration = Duration::from_secs(2);

/// What identifies a file version without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
    regular: bool,
}

pub(super) fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&m);
    #[cfg(not(unix))]
    let inode = 0;
    Some(Stamp { modified: m.modified().ok(), len: m.len(), inode, regular: m.is_file() })
}

pub(super) fn is_racy(modified: Option<SystemTime>, read_at: SystemTime) -> bool {
    match modified {
        Some(modified) => read_at.duration_since(modified).map_or(true, |age| age < RACY),
        None => true,
    }
}

/// What was seen of a file when it was last read.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct Seen {
    stamp: Option<Stamp>,
    /// Modified too recently, when read, for the stamp to prove the content unchanged.
    racy: bool,
    digest: [u8; 32],
}

impl Seen {
    /// Whether the file may have changed since: its stamp moved, or the stamp can't tell.
    fn outdated(&self, path: &Path) -> bool {
        self.racy || stamp(path) != self.stamp
    }
}

/// Reads a regular file, stamping it first so that a change made while reading shows up next
/// time. Anything else is refused from its metadata, before it is opened: a FIFO would block the
/// reader until someone writes to it.
pub(super) fn observe(path: &Path) -> Result<(Seen, Vec<u8>)> {
    let stamp = stamp(path);
    if stamp.is_some_and(|s| !s.regular) {
        return Err(Error::file(path, "not a regular file").with_hint("give the manifest as a plain JSON file"));
    }
    let read_at = SystemTime::now();
    // Opens without blocking (a FIFO swapped in after the stat would otherwise hang the open),
    // checks the opened file is regular, and caps the size (`fsio::MAX_DOCUMENT_BYTES`).
    let bytes = crate::fsio::read(path)?;
    let racy = is_racy(stamp.and_then(|s| s.modified), read_at);
    Ok((Seen { stamp, racy, digest: sha256(&bytes) }, bytes))
}

pub(super) struct Slot {
    seen: Seen,
    app: Arc<App>,
    /// Listed in `--apps-dir` (dropped when its file leaves the directory), not given by name.
    from_dir: bool,
}

/// The applications and their indexes. Keys are lower case; URIs without trailing `/`.
#[derive(Default)]
pub(super) struct Index {
    slots: HashMap<PathBuf, Slot>,
    by_app_id: HashMap<String, PathBuf>,
    by_object_id: HashMap<String, PathBuf>,
    by_uri: HashMap<String, PathBuf>,
    /// Directory files that could not be read, with the stamp they had: retried when it moves.
    broken: HashMap<PathBuf, Option<Stamp>>,
}

impl Index {
    fn keys(app: &App) -> (String, Option<String>, Vec<String>) {
        (
            app.app_id.to_ascii_lowercase(),
            Some(app.graph_id().to_ascii_lowercase()),
            app.api.identifier_uris.iter().map(|u| uri_key(u)).collect(),
        )
    }

    fn unindex(&mut self, path: &Path) {
        let Some(slot) = self.slots.get(path) else { return };
        let (id, oid, uris) = Self::keys(&slot.app);
        let mine = |m: &mut HashMap<String, PathBuf>, k: &str| {
            if m.get(k).is_some_and(|p| p == path) {
                m.remove(k);
            }
        };
        mine(&mut self.by_app_id, &id);
        if let Some(o) = oid {
            mine(&mut self.by_object_id, &o);
        }
        for u in uris {
            mine(&mut self.by_uri, &u);
        }
    }

    /// Installs `app` for `path`, replacing what the path held. Refuses an appId another file
    /// already registers (the first one stays).
    fn install(&mut self, path: &Path, seen: Seen, app: App, from_dir: bool) -> std::result::Result<(), PathBuf> {
        let (id, oid, uris) = Self::keys(&app);
        if let Some(other) = self.by_app_id.get(&id).filter(|p| p.as_path() != path) {
            return Err(other.clone());
        }
        self.unindex(path);
        self.by_app_id.insert(id, path.to_path_buf());
        if let Some(o) = oid {
            self.by_object_id.entry(o).or_insert_with(|| path.to_path_buf());
        }
        for u in uris {
            self.by_uri.entry(u).or_insert_with(|| path.to_path_buf());
        }
        self.broken.remove(path);
        self.slots.insert(path.to_path_buf(), Slot { seen, app: Arc::new(app), from_dir });
        Ok(())
    }

    fn remove(&mut self, path: &Path) {
        self.unindex(path);
        self.slots.remove(path);
        self.broken.remove(path);
    }
}

/// A file of a directory listing that the index does not hold, with the stamp it had when it was
/// last found unreadable (`None` if it never was).
type Found<'a> = (&'a PathBuf, Option<Option<Stamp>>);

/// The `--apps-dir` directory and what was seen of it.
pub(super) struct AppsDir {
    path: PathBuf,
    /// Modification time at the last listing, and whether it was too fresh to trust.
    seen: Mutex<(Option<SystemTime>, bool)>,
}

/// All applications of the tenant, and the built-in resources.
pub struct Registry {
    index: RwLock<Index>,
    /// The `--manifest` files, in the order given.
    named: Vec<PathBuf>,
    dir: Option<AppsDir>,
    builtins: Vec<Arc<Api>>,
    log: bool,
}

pub(super) fn duplicate(a: &Path, b: &Path, app_id: &str) -> Error {
    Error::input(format!("{} and {} both have appId {app_id}", a.display(), b.display()))
        .with_hint("give each application's manifest once")
}

impl Registry {
    /// Loads every `--manifest` file and every `*.json` in `apps_dir`. Any unreadable named file,
    /// or two files with the same `appId`, is an input error; at least one application is needed.
    pub fn load(paths: &[PathBuf], apps_dir: Option<&Path>, log: bool) -> Result<Self> {
        if paths.is_empty() && apps_dir.is_none() {
            return Err(Error::input("no manifest given").with_hint(format!(
                "give {} (one per application) or {}",
                Input::Manifest,
                Input::AppsDir
            )));
        }
        let mut index = Index::default();
        for p in paths {
            let (seen, bytes) = observe(p)?;
            let app = read_app(p, bytes)?;
            let id = app.app_id.clone();
            index.install(p, seen, app, false).map_err(|other| duplicate(&other, p, &id))?;
        }
        let dir = match apps_dir {
            Some(d) => {
                let meta = std::fs::metadata(d).map_err(|e| Error::io(d, "read", e))?;
                if !meta.is_dir() {
                    return Err(Error::file(d, "not a directory")
                        .with_hint(format!("{} is a directory of manifests", Input::AppsDir)));
                }
                let listed_at = SystemTime::now();
                for p in list_dir(d)? {
                    if index.slots.contains_key(&p) {
                        continue;
                    }
                    let (seen, bytes) = observe(&p)?;
                    let app = read_app(&p, bytes)?;
                    let id = app.app_id.clone();
                    index.install(&p, seen, app, true).map_err(|other| duplicate(&other, &p, &id))?;
                }
                let modified = meta.modified().ok();
                Some(AppsDir { path: d.to_path_buf(), seen: Mutex::new((modified, is_racy(modified, listed_at))) })
            }
            None => None,
        };
        if index.slots.is_empty() {
            return Err(Error::input(format!(
                "{}: no manifest (*.json) in the directory",
                apps_dir.map(|d| d.display().to_string()).unwrap_or_default()
            ))
            .with_hint("put one application manifest per .json file in the directory"));
        }
        Ok(Registry { index: RwLock::new(index), named: paths.to_vec(), dir, builtins: builtins(), log })
    }

    /// The manifest paths: the named files in the order given, then the directory's, sorted.
    pub fn paths(&self) -> Vec<PathBuf> {
        let Ok(index) = self.index.read() else { return Vec::new() };
        let mut from_dir: Vec<PathBuf> =
            index.slots.iter().filter(|(_, s)| s.from_dir).map(|(p, _)| p.clone()).collect();
        from_dir.sort();
        let mut out: Vec<PathBuf> = self.named.iter().filter(|p| index.slots.contains_key(*p)).cloned().collect();
        out.extend(from_dir);
        out
    }

    /// Every application, sorted by appId, after re-listing the directory if it changed.
    /// Individual files are not re-checked here (that would stat every file): each is re-read
    /// when a request looks it up ([`Registry::find`] and the other lookups).
    pub fn list(&self) -> Vec<Arc<App>> {
        self.check_dir();
        let Ok(index) = self.index.read() else { return Vec::new() };
        let mut apps: Vec<Arc<App>> = index.slots.values().map(|s| s.app.clone()).collect();
        apps.sort_by(|a, b| a.app_id.cmp(&b.app_id));
        apps
    }

    /// How many applications the tenant has.
    pub fn len(&self) -> usize {
        self.index.read().map(|i| i.slots.len()).unwrap_or(0)
    }

    /// Whether the tenant has no application.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The built-in resources.
    pub fn builtins(&self) -> &[Arc<Api>] {
        &self.builtins
    }

    /// The application with this client id (case-insensitive), its file re-read if it changed.
    pub fn find(&self, client_id: &str) -> Option<Arc<App>> {
        self.lookup(|i| i.by_app_id.get(&client_id.trim().to_ascii_lowercase()).cloned())
    }

    /// The application with this object id (`id`/`objectId`, or the emulator's service principal
    /// id when the manifest has none), its file re-read if it changed.
    pub fn find_by_object_id(&self, object_id: &str) -> Option<Arc<App>> {
        self.lookup(|i| i.by_object_id.get(&object_id.trim().to_ascii_lowercase()).cloned())
    }

    /// The application with this identifier URI (App ID URI), its file re-read if it changed.
    pub fn find_by_identifier_uri(&self, uri: &str) -> Option<Arc<App>> {
        self.lookup(|i| i.by_uri.get(&uri_key(uri)).cloned())
    }

    /// The resource `identifier` names: an application of the tenant (by appId or identifier
    /// URI) or a built-in one. `api://{appId}` names an app only when it lists that URI, as in
    /// Entra.
    pub fn resource(&self, identifier: &str) -> Option<Arc<Api>> {
        let key = uri_key(identifier);
        if let Some(b) = self.builtins.iter().find(|b| b.is_named(&key)) {
            return Some(b.clone());
        }
        let app = if uuid::Uuid::parse_str(&key).is_ok() { self.find(&key) } else { self.find_by_identifier_uri(&key) };
        app.map(|a| a.api.clone())
    }

    /// Looks a path up in the index, re-checks that one file, and answers from the result.
    fn lookup(&self, key: impl Fn(&Index) -> Option<PathBuf>) -> Option<Arc<App>> {
        self.check_dir();
        let path = key(&*self.index.read().ok()?)?;
        self.refresh_file(&path);
        let index = self.index.read().ok()?;
        // The file may now hold another app; answer only if the key still leads to it.
        let again = key(&index)?;
        index.slots.get(&again).map(|s| s.app.clone())
    }

    /// Re-reads one file if it may have changed since last seen. Reading and parsing happen
    /// outside the lock; the write lock is taken only to install what changed.
    fn refresh_file(&self, path: &Path) {
        let (digest, from_dir) = match self.index.read() {
            Ok(i) => match i.slots.get(path) {
                Some(s) if s.seen.outdated(path) => (s.seen.digest, s.from_dir),
                _ => return,
            },
            Err(_) => return,
        };
        let (seen, parsed) = match observe(path) {
            // Same bytes and still too fresh to trust the stamp: nothing learned.
            Ok((seen, _)) if seen.digest == digest && seen.racy => return,
            Ok((seen, _)) if seen.digest == digest => (seen, None),
            Ok((seen, bytes)) => (seen, Some(read_app(path, bytes))),
            // Unreadable (removed, say): remember its stamp so this is reported once, and read it
            // again when it moves.
            Err(e) => (Seen { stamp: stamp(path), racy: false, digest }, Some(Err(e))),
        };
        let Ok(mut index) = self.index.write() else { return };
        let Some(slot) = index.slots.get_mut(path) else { return };
        if slot.seen.digest != digest {
            return; // another request installed a newer reading meanwhile
        }
        slot.seen = seen;
        match parsed {
            None => {}
            Some(Ok(app)) => {
                if self.log {
                    eprintln!(
                        "keycred emulate: reloaded {} ({} key credentials)",
                        path.display(),
                        app.credentials.len()
                    );
                }
                let id = app.app_id.clone();
                if let Err(other) = index.install(path, seen, app, from_dir) {
                    self.keep_previous(path, &duplicate(&other, path, &id));
                }
            }
            Some(Err(e)) => self.keep_previous(path, &e),
        }
    }

    /// Re-lists `--apps-dir` when its modification time moved (or was too fresh to trust).
    fn check_dir(&self) {
        let Some(dir) = &self.dir else { return };
        let Ok(mut seen) = dir.seen.lock() else { return };
        let modified = std::fs::metadata(&dir.path).ok().and_then(|m| m.modified().ok());
        if !seen.1 && seen.0 == modified {
            return;
        }
        let listed_at = SystemTime::now();
        let Ok(listed) = list_dir(&dir.path) else {
            *seen = (modified, false);
            return;
        };
        *seen = (modified, is_racy(modified, listed_at));
        // Holding the directory's mutex while listing keeps two requests from re-listing at once.
        // Only the differences are copied out of the index (files gone, files new with the stamp
        // they had when they were found broken): while the directory is too fresh to trust, every
        // request re-lists it, and copies of a tenant's worth of paths each time would be
        // garbage the allocator keeps.
        let listed_set: std::collections::HashSet<&Path> = listed.iter().map(PathBuf::as_path).collect();
        let (gone, new): (Vec<PathBuf>, Vec<Found>) = match self.index.read() {
            Ok(i) => (
                i.slots
                    .iter()
                    .filter(|(p, s)| s.from_dir && !listed_set.contains(p.as_path()))
                    .map(|(p, _)| p.clone())
                    .collect(),
                listed.iter().filter(|p| !i.slots.contains_key(*p)).map(|p| (p, i.broken.get(p).copied())).collect(),
            ),
            Err(_) => return,
        };
        if !gone.is_empty() {
            if let Ok(mut index) = self.index.write() {
                for gone in &gone {
                    if self.log {
                        eprintln!("keycred emulate: {} left the apps directory", gone.display());
                    }
                    index.remove(gone);
                }
            }
        }
        for (p, was_broken) in new {
            // A known file is re-checked when a request uses it: a re-listing costs a directory
            // read, not a stat of every file (Graph writes re-list often under load).
            let now = stamp(p);
            if was_broken.is_some_and(|s| s == now) {
                continue;
            }
            let loaded = observe(p).and_then(|(seen, bytes)| Ok((seen, read_app(p, bytes)?)));
            let Ok(mut index) = self.index.write() else { return };
            if index.slots.contains_key(p) {
                continue;
            }
            match loaded {
                Ok((seen, app)) => {
                    let id = app.app_id.clone();
                    match index.install(p, seen, app, true) {
                        Ok(()) => {
                            if self.log {
                                eprintln!("keycred emulate: loaded {} (application {id})", p.display());
                            }
                        }
                        Err(other) => {
                            index.broken.insert(p.clone(), now);
                            self.keep_previous(p, &duplicate(&other, p, &id));
                        }
                    }
                }
                Err(e) => {
                    index.broken.insert(p.clone(), now);
                    if self.log {
                        eprintln!("keycred emulate: {e}; skipping {} until it changes", p.display());
                    }
                }
            }
        }
    }

    /// A half-written or broken file must not take the app down: the last good version stays,
    /// and the next change is picked up as usual.
    fn keep_previous(&self, path: &Path, e: &Error) {
        if self.log {
            eprintln!("keycred emulate: {e}; keeping the previous version of {}", path.display());
        }
    }
}

/// The `*.json` entries of a directory, sorted. Temporary files of atomic writers
/// (`.name.json.tmp...`) and hidden files are skipped.
pub(super) fn list_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io(dir, "read", e))?;
    let mut out: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            // `NAME.policy.json` is the app management policy assigned to `NAME.json`.
            let lower = name.to_ascii_lowercase();
            !name.starts_with('.') && lower.ends_with(".json") && !lower.ends_with(".policy.json")
        })
        .map(|e| e.path())
        .collect();
    out.sort();
    Ok(out)
}
