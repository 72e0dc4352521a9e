//! Saving manifests, and read-modify-write of a manifest file that never loses a concurrent edit.
//!
//! Two `keycred manifest add` runs on the same file (a rotation script and a person, or two CI
//! jobs) would each read the old text and the second rename would drop the first entry. Edits
//! therefore take `<manifest>.lock` (created exclusively, removed afterwards), and re-read the
//! file just before the rename: if it changed under us (an editor that ignores the lock), the
//! edit is redone on the new text.

use super::Manifest;
use crate::{fsio, Error, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long to wait for another keycred to release the lock.
const LOCK_WAIT: Duration = Duration::from_secs(10);
/// How many times to redo an edit when the file changes under us.
const ATTEMPTS: usize = 5;

impl Manifest {
    /// Writes the text atomically (temporary file, fsync, rename), keeping the file's mode.
    pub fn save(&self, path: &Path) -> Result<()> {
        fsio::atomic_write(path, self.text.as_bytes(), None)
    }
}

/// What [`edit_file`] did.
#[derive(Debug, Clone)]
pub struct FileEdit {
    /// The manifest as read.
    pub before: Manifest,
    /// The manifest as written (equal to `before` when nothing changed).
    pub after: Manifest,
    /// Whether the file was written.
    pub written: bool,
}

/// The lock: the file exists while held, and is removed on drop, also on error paths.
struct Lock(PathBuf);

impl Lock {
    fn acquire(manifest: &Path) -> Result<Lock> {
        let mut name = manifest.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        let deadline = Instant::now() + LOCK_WAIT;
        loop {
            match fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(_) => return Ok(Lock(path)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    if Instant::now() >= deadline {
                        return Err(Error::input(format!(
                            "{}: locked by {} (another keycred is editing it); nothing was changed",
                            manifest.display(),
                            path.display()
                        ))
                        .with_hint("wait for the other edit to finish; if none is running, delete the lock file"));
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(Error::io(&path, "create the lock file", e)),
            }
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// Loads the manifest at `path`, applies `f`, and writes the result atomically only when it
/// differs. Holds `<path>.lock` throughout; if the file changed between reading and writing, the
/// edit is applied again to the new content.
pub fn edit_file(path: &Path, mut f: impl FnMut(&Manifest) -> Result<Manifest>) -> Result<FileEdit> {
    // A missing or unreadable manifest is reported as such, not as a lock-file problem.
    fs::metadata(path).map_err(|e| Error::io(path, "read", e))?;
    let _lock = Lock::acquire(path)?;
    for _ in 0..ATTEMPTS {
        let before = Manifest::load(path)?;
        let after = f(&before)?;
        if after.text == before.text {
            return Ok(FileEdit { after: before.clone(), before, written: false });
        }
        if fsio::read(path)? != before.text.as_bytes() {
            continue;
        }
        after.save(path)?;
        return Ok(FileEdit { before, after, written: true });
    }
    Err(Error::input(format!(
        "{}: the file kept changing while keycred edited it; nothing was written",
        path.display()
    ))
    .with_hint("stop the other program editing the manifest and try again"))
}
