//! The emulator's directory: one application per manifest file, re-read when the file changes.
//!
//! A rotation script edits the manifest and expects the next token request to see the change, as
//! it would after a Graph PATCH. Each request stats the files (cheap) and re-parses only those
//! whose modification time, length or inode moved; parsed applications are shared as `Arc`s so a
//! request never holds the lock while it verifies signatures.
//!
//! A stat cannot see a same-length rewrite made within the file system's timestamp granularity
//! (a timer tick on older Linux kernels, 2 s on FAT). As git does for "racily clean" index
//! entries, a file read less than [`RACY`] after its modification time is re-read (and compared,
//! not re-parsed) on every request until it has been quiet that long.

use crate::manifest::{KeyCredential, Manifest};
use crate::thumbprint::sha256;
use crate::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

/// How old a file's modification time must be, when read, for its stamp to be trusted.
const RACY: Duration = Duration::from_secs(2);

/// An application as the emulator knows it.
#[derive(Debug)]
pub struct App {
    /// `appId` (the client id).
    pub app_id: String,
    /// Object id of the application (`id` / `objectId`), when the manifest has one.
    pub object_id: Option<String>,
    /// Object id of its service principal in the emulated tenant, the `oid` of app tokens.
    pub sp_object_id: String,
    /// `keyCredentials`.
    pub credentials: Vec<KeyCredential>,
    /// The manifest file.
    pub path: PathBuf,
    /// The manifest as read, for what Graph shows of the application beyond its keys.
    pub manifest: Manifest,
}

/// What identifies a file version without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&m);
    #[cfg(not(unix))]
    let inode = 0;
    Some(Stamp { modified: m.modified().ok(), len: m.len(), inode })
}

/// What was seen of a file when it was last read.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Seen {
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

/// Reads a file, stamping it first so that a change made while reading shows up next time.
fn observe(path: &Path) -> Result<(Seen, Vec<u8>)> {
    let stamp = stamp(path);
    let read_at = SystemTime::now();
    let bytes = crate::fsio::read(path)?;
    let racy = match stamp.and_then(|s| s.modified) {
        Some(modified) => read_at.duration_since(modified).map_or(true, |age| age < RACY),
        None => true,
    };
    Ok((Seen { stamp, racy, digest: sha256(&bytes) }, bytes))
}

struct Slot {
    path: PathBuf,
    seen: Seen,
    app: Arc<App>,
}

/// All applications, by manifest file.
pub struct Registry {
    slots: RwLock<Vec<Slot>>,
    log: bool,
}

/// A stable GUID for something the emulator has to invent an id for: the first 16 bytes of
/// SHA-256 of `keycred-emulator {kind} {name in lower case}`, with the UUID version 4 and
/// variant bits set. Used for service principal object ids (`kind` "service principal", `name`
/// the appId) and the app ids of resources given by URI (`kind` "resource"), so the same input
/// gives the same id in every run and on every machine.
pub(super) fn derived_id(kind: &str, name: &str) -> String {
    let d = sha256(format!("keycred-emulator {kind} {}", name.to_ascii_lowercase()).as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    uuid::Builder::from_random_bytes(b).into_uuid().to_string()
}

/// Parses one manifest file's bytes into an [`App`].
fn read_app(path: &Path, bytes: Vec<u8>) -> Result<App> {
    let m = Manifest::from_bytes(bytes, path)?;
    let app_id = m.app_id().filter(|s| !s.trim().is_empty()).ok_or_else(|| {
        Error::file(path, "the manifest has no appId")
            .with_hint("the emulator registers apps by their appId: add \"appId\": \"<GUID>\"")
    })?;
    let sp_object_id = derived_id("service principal", app_id);
    let app_id = app_id.to_string();
    Ok(App {
        app_id,
        object_id: m.object_id().map(str::to_string),
        sp_object_id,
        credentials: m.credentials(),
        path: path.to_path_buf(),
        manifest: m,
    })
}

impl Registry {
    /// Loads every manifest; any unreadable one, or two with the same `appId`, is an input error.
    pub fn load(paths: &[PathBuf], log: bool) -> Result<Self> {
        if paths.is_empty() {
            return Err(
                Error::input("no manifest given").with_hint("pass --manifest FILE (repeatable), one per application")
            );
        }
        let mut slots: Vec<Slot> = Vec::new();
        for p in paths {
            let (seen, bytes) = observe(p)?;
            let app = read_app(p, bytes)?;
            if let Some(other) = slots.iter().find(|s| s.app.app_id.eq_ignore_ascii_case(&app.app_id)) {
                return Err(Error::input(format!(
                    "{} and {} both have appId {}",
                    other.path.display(),
                    p.display(),
                    app.app_id
                ))
                .with_hint("give each application's manifest once"));
            }
            slots.push(Slot { path: p.clone(), seen, app: Arc::new(app) });
        }
        Ok(Registry { slots: RwLock::new(slots), log })
    }

    /// The manifest paths, in the order given.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.slots.read().map(|s| s.iter().map(|s| s.path.clone()).collect()).unwrap_or_default()
    }

    /// Re-reads the manifests that changed on disk since last seen. Reading and parsing happen
    /// outside the lock; the write lock is taken only to install what changed.
    pub fn refresh(&self) {
        let candidates: Vec<(usize, PathBuf, [u8; 32])> = match self.slots.read() {
            Ok(slots) => slots
                .iter()
                .enumerate()
                .filter(|(_, s)| s.seen.outdated(&s.path))
                .map(|(i, s)| (i, s.path.clone(), s.seen.digest))
                .collect(),
            Err(_) => return,
        };
        for (i, path, digest) in candidates {
            let (seen, parsed) = match observe(&path) {
                // Same bytes and still too fresh to trust the stamp: nothing learned.
                Ok((seen, _)) if seen.digest == digest && seen.racy => continue,
                Ok((seen, _)) if seen.digest == digest => (seen, None),
                Ok((seen, bytes)) => (seen, Some(read_app(&path, bytes))),
                // Unreadable (removed, say): remember its stamp so this is reported once, and
                // read it again when it moves.
                Err(e) => (Seen { stamp: stamp(&path), racy: false, digest }, Some(Err(e))),
            };
            let Ok(mut slots) = self.slots.write() else { return };
            let slot = &mut slots[i];
            if slot.seen.digest != digest {
                continue; // another request installed a newer reading meanwhile
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
                    slot.app = Arc::new(app);
                }
                Some(Err(e)) => self.keep_previous(&path, &e),
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

    /// The application with this object id (`id`/`objectId`, or the emulator's service principal
    /// id when the manifest has none), after a refresh.
    pub fn find_by_object_id(&self, object_id: &str) -> Option<Arc<App>> {
        self.refresh();
        let slots = self.slots.read().ok()?;
        let id = object_id.trim();
        slots
            .iter()
            .find(|s| s.app.object_id.as_deref().unwrap_or(&s.app.sp_object_id).eq_ignore_ascii_case(id))
            .map(|s| s.app.clone())
    }

    /// Every application, in the order the manifests were given, after a refresh.
    pub fn all(&self) -> Vec<Arc<App>> {
        self.refresh();
        self.slots.read().map(|s| s.iter().map(|s| s.app.clone()).collect()).unwrap_or_default()
    }

    /// The application with this client id (case-insensitive), after a refresh.
    pub fn find(&self, client_id: &str) -> Option<Arc<App>> {
        self.refresh();
        let slots = self.slots.read().ok()?;
        slots.iter().find(|s| s.app.app_id.eq_ignore_ascii_case(client_id.trim())).map(|s| s.app.clone())
    }
}
