//! Saving manifests, and read-modify-write of a manifest file that never loses a concurrent edit.
//!
//! Two `keycred manifest add` runs on the same file (a rotation script and a person, or two CI
//! jobs) would each read the old text and the second rename would drop the first entry. Edits
//! therefore hold an OS lock on `<manifest>.lock` ([`crate::lock`]: a killed edit never blocks
//! the next one), and re-read the file just before the rename: if it changed under us (an editor
//! that ignores the lock), the edit is redone on the new text.

use super::Manifest;
use crate::lock::{lock_path_of, FileLock};
use crate::{fsio, Error, Result};
use std::fs;
use std::path::Path;

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

/// Loads the manifest at `path`, applies `f`, and writes the result atomically only when it
/// differs. Holds `<path>.lock` throughout; if the file changed between reading and writing, the
/// edit is applied again to the new content.
pub fn edit_file(path: &Path, mut f: impl FnMut(&Manifest) -> Result<Manifest>) -> Result<FileEdit> {
    // A missing or unreadable manifest is reported as such, not as a lock-file problem.
    fs::metadata(path).map_err(|e| Error::io(path, "read", e))?;
    // Through a symbolic link, lock and write the target: editors using either name exclude
    // each other, and the link stays a link.
    let target = fsio::resolve_link(path)?;
    let path = target.as_path();
    let _lock = FileLock::acquire(lock_path_of(path), path, "editing it")?;
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
