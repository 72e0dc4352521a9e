//! Saving manifests, and read-modify-write of a manifest file that never loses a concurrent edit.
//!
//! Two `keycred manifest add` runs on the same file (a rotation script and a person, or two CI
//! jobs) would each read the old text and the second rename would drop the first entry. Edits
//! therefore hold an OS lock on `<manifest>.lock` (so a killed edit never blocks the next one),
//! and re-read the file just before the rename: if it changed under us (an editor that ignores
//! the lock), the edit is redone on the new text.

use super::Manifest;
use crate::{fsio, Error, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long to wait for another keycred to release the lock, unless `KEYCRED_LOCK_TIMEOUT`
/// (whole seconds) says otherwise.
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// The lock wait: `KEYCRED_LOCK_TIMEOUT` seconds (0 = do not wait), else [`LOCK_WAIT`].
fn lock_wait() -> Result<Duration> {
    let value = match std::env::var("KEYCRED_LOCK_TIMEOUT") {
        Err(std::env::VarError::NotPresent) => return Ok(LOCK_WAIT),
        Ok(v) => v,
        Err(std::env::VarError::NotUnicode(_)) => String::new(),
    };
    value.trim().parse::<u32>().map(|secs| Duration::from_secs(secs.into())).map_err(|_| {
        Error::input(format!("KEYCRED_LOCK_TIMEOUT={value:?} is not a whole number of seconds; nothing was changed"))
            .with_hint("set it to e.g. 30, or to 0 to fail at once when the manifest is locked")
    })
}

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

/// The lock: `<manifest>.lock`, held with an OS file lock (`flock`/`LockFileEx`) and removed on
/// drop, also on error paths. The kernel releases the OS lock when its process dies, so a
/// crashed or killed edit never blocks the next one: its leftover file is simply locked again.
struct Lock {
    path: PathBuf,
    // Held open for the OS lock; closing it (after the removal in `drop`) releases it.
    _file: fs::File,
}

impl Lock {
    fn acquire(manifest: &Path) -> Result<Lock> {
        let mut name = manifest.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        let deadline = Instant::now() + lock_wait()?;
        loop {
            let file = open_lock_file(&path)?;
            match file.try_lock() {
                // The holder before us removes the file before unlocking it: if the path no longer
                // names the file we locked, we locked a removed file and must start again.
                Ok(()) if same_file(&file, &path) => return Ok(Lock { path, _file: file }),
                Ok(()) => continue,
                Err(fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(fs::TryLockError::WouldBlock) => {
                    return Err(Error::input(format!(
                        "{}: locked by {} (another keycred is editing it); nothing was changed",
                        manifest.display(),
                        path.display()
                    ))
                    .with_hint("wait for the other edit to finish, then run the command again"))
                }
                Err(fs::TryLockError::Error(e)) => return Err(Error::io(&path, "lock", e)),
            }
        }
    }
}

/// Opens (creating it if needed) the lock file without following a symbolic link planted at its
/// path (which would create or lock whatever it points to) and without blocking on a FIFO;
/// anything but a regular file there is refused.
fn open_lock_file(path: &Path) -> Result<fs::File> {
    let refused = || {
        Error::input(format!(
            "{}: the lock file is a symbolic link or not a regular file; nothing was changed",
            path.display()
        ))
        .with_hint("remove it (keycred creates a plain empty file there while it edits), then run the command again")
    };
    let mut opts = fs::OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let file = match opts.open(path) {
        Ok(f) => f,
        #[cfg(unix)]
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(refused()),
        Err(e) => return Err(Error::io(path, "create the lock file", e)),
    };
    match file.metadata() {
        Ok(m) if m.is_file() => Ok(file),
        Ok(_) => Err(refused()),
        Err(e) => Err(Error::io(path, "create the lock file", e)),
    }
}

/// Whether `path` still names the open `file` (same device and inode).
#[cfg(unix)]
fn same_file(file: &fs::File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Whether `path` still names the open `file`. Without inode numbers, the best portable check is
/// that the lock file was not removed (a removed file the holder still had open is gone or
/// delete-pending there, and opening it again fails).
#[cfg(not(unix))]
fn same_file(_file: &fs::File, path: &Path) -> bool {
    path.exists()
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Remove before unlocking (the file closes after this), so a waiter never locks a file
        // that is about to disappear without noticing: see `same_file`.
        let _ = fs::remove_file(&self.path);
    }
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
