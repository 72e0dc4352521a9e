//! Safe file writes: atomic replacement, owner-only modes for secrets, no silent overwrite.
//!
//! A credential tool must never leave a half-written manifest or key behind: every write goes to
//! a temporary file in the same directory, is fsynced, then renamed over the target, and the
//! directory is fsynced so the rename survives a crash.

use crate::secret::SecretBytes;
use crate::{Error, Result};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// File mode for private keys and bundles holding one.
pub const SECRET_MODE: u32 = 0o600;
/// File mode for public material (certificates).
pub const PUBLIC_MODE: u32 = 0o644;

/// Hook for crash-safety tests: when `KEYCRED_FAULT_BEFORE_RENAME` is set, the process exits
/// after the temporary file is written and before it is renamed, as a crash would. Compiled in
/// only with the test-only `fault-injection` feature: a library must never exit its host because
/// of an environment variable.
#[cfg(feature = "fault-injection")]
fn fault_before_rename() {
    if std::env::var_os("KEYCRED_FAULT_BEFORE_RENAME").is_some() {
        std::process::exit(99);
    }
}

#[cfg(not(feature = "fault-injection"))]
fn fault_before_rename() {}

/// The file a document path stands for: the target when `path` is a symbolic link (a manifest
/// linked from a shared checkout must be updated there, the link kept), else `path` itself.
pub fn resolve_link(path: &Path) -> Result<PathBuf> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => fs::canonicalize(path)
            .map_err(|e| Error::io(path, "follow the symbolic link", e).with_hint("fix or remove the dangling link")),
        _ => Ok(path.to_path_buf()),
    }
}

/// Writes `data` to `path` atomically. `mode` sets the permissions of a new file; an existing
/// file keeps its own mode unless `mode` is given explicitly.
///
/// Without `mode` (editing an existing document) a symbolic link is followed and its target
/// replaced. With `mode` (a new key or certificate file) a link at `path` is replaced by the
/// file itself: a secret must never be written wherever a planted link points.
pub fn atomic_write(path: &Path, data: &[u8], mode: Option<u32>) -> Result<()> {
    let resolved;
    let path = if mode.is_none() {
        resolved = resolve_link(path)?;
        resolved.as_path()
    } else {
        path
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().ok_or_else(|| Error::input(format!("{}: not a file path", path.display())))?;
    let existing_mode = existing_mode(path);
    // Unique per process and per call: two threads of one process (the emulator's handlers)
    // may write the same file, and each needs its own temporary.
    let tmp = dir.join(format!(
        ".{}.keycred-{}-{}.tmp",
        name.to_string_lossy(),
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    let result = (|| -> std::io::Result<()> {
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            // Created with the final mode so a secret is never readable by others, not even
            // between creation and chmod.
            opts.mode(mode.or(existing_mode).unwrap_or(PUBLIC_MODE));
        }
        let mut f = opts.open(&tmp)?;
        f.write_all(data)?;
        #[cfg(unix)]
        if let Some(m) = mode.or(existing_mode) {
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(fs::Permissions::from_mode(m))?;
        }
        f.sync_all()?;
        drop(f);
        fault_before_rename();
        fs::rename(&tmp, path)?;
        if let Ok(d) = fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io(path, "write", e));
    }
    Ok(())
}

fn existing_mode(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).ok().map(|m| m.permissions().mode() & 0o7777)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// One file of a set to be written together.
pub struct PlannedFile {
    /// Target path.
    pub path: PathBuf,
    /// Content.
    pub data: Vec<u8>,
    /// Mode for the file.
    pub mode: u32,
}

/// Writes a set of files, all or nothing with respect to existing files: when any target exists
/// and `force` is false, nothing at all is written.
pub fn write_set(files: &[PlannedFile], force: bool) -> Result<()> {
    if !force {
        ensure_absent(files.iter().map(|f| f.path.as_path()))?;
    }
    for f in files {
        if let Some(dir) = f.path.parent() {
            if !dir.as_os_str().is_empty() && !dir.is_dir() {
                return Err(Error::input(format!("{}: directory does not exist", dir.display()))
                    .with_hint("create it first or choose another --out-dir"));
            }
        }
    }
    for f in files {
        atomic_write(&f.path, &f.data, Some(f.mode))?;
    }
    Ok(())
}

/// Refuses when any of `paths` exists, naming them all: nothing may be overwritten without
/// `--force`. Callers check before expensive work (key generation); [`write_set`] checks again.
pub fn ensure_absent<'a>(paths: impl IntoIterator<Item = &'a Path>) -> Result<()> {
    let existing: Vec<String> = paths.into_iter().filter(|p| p.exists()).map(|p| p.display().to_string()).collect();
    if existing.is_empty() {
        return Ok(());
    }
    Err(Error::input(format!("{} already exists; nothing was written", existing.join(", ")))
        .with_hint("allow replacing them, or choose another name or directory"))
}

/// Files about to be written, as they were before: absent, or (with `--force`) their bytes and
/// mode, so that a command failing after writing them (a rotation whose registration or
/// verification fails) leaves the directory as it found it.
pub struct Snapshot {
    files: Vec<(PathBuf, Option<(SecretBytes, u32)>)>,
}

impl Snapshot {
    /// Records `paths` as they are now.
    pub fn before(paths: &[PathBuf]) -> Result<Snapshot> {
        let mut files = Vec::new();
        for p in paths {
            let old = if p.exists() {
                let mode = existing_mode(p).unwrap_or(SECRET_MODE);
                Some((SecretBytes::new(read(p)?), mode))
            } else {
                None
            };
            files.push((p.clone(), old));
        }
        Ok(Snapshot { files })
    }

    /// Removes the files this run created and puts back those it replaced; returns `e` saying so.
    pub fn undo(&self, e: Error, prefix: &str) -> Error {
        let mut failed = Vec::new();
        let mut removed = Vec::new();
        let mut restored = Vec::new();
        for (path, old) in &self.files {
            let r = match old {
                None => match std::fs::remove_file(path) {
                    Ok(()) => {
                        removed.push(path.display().to_string());
                        Ok(())
                    }
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    Err(err) => Err(err.to_string()),
                },
                Some((bytes, mode)) => match atomic_write(path, bytes.expose(), Some(*mode)) {
                    Ok(()) => {
                        restored.push(path.display().to_string());
                        Ok(())
                    }
                    Err(err) => Err(err.message().to_string()),
                },
            };
            if let Err(why) = r {
                failed.push(format!("{} ({why})", path.display()));
            }
        }
        let mut note = prefix.to_string();
        if !removed.is_empty() {
            note.push_str(&format!("the new files were removed ({})", removed.join(", ")));
        }
        if !restored.is_empty() {
            let sep = if removed.is_empty() { "" } else { "; " };
            note.push_str(&format!("{sep}the replaced files were put back ({})", restored.join(", ")));
        }
        if !failed.is_empty() {
            let sep = if removed.is_empty() && restored.is_empty() { "" } else { "; " };
            note.push_str(&format!("{sep}could not undo {}: remove or restore them by hand", failed.join(", ")));
        }
        let note = note.trim_end_matches("; ").to_string();
        if note.is_empty() {
            return e;
        }
        e.with_note(note)
    }
}

/// Reads a whole file, with an error naming it.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|e| Error::io(path, "read", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_sets_mode_and_keeps_existing_mode() {
        let dir = std::env::temp_dir().join(format!("keycred-fsio-{}", uuid::Uuid::new_v4()));
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join("k.key");
        atomic_write(&p, b"one", Some(SECRET_MODE)).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
            atomic_write(&p, b"two", None).unwrap();
            assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let err = write_set(&[PlannedFile { path: p.clone(), data: b"x".to_vec(), mode: 0o600 }], false).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert_eq!(fs::read(&p).unwrap(), b"two");
        // No temporary file left behind.
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }
}
