//! Exclusive locks between keycred processes: a lock file next to what it protects, held with an
//! OS file lock (`flock`/`LockFileEx`) and removed on drop.
//!
//! The kernel releases an OS lock when its process dies, so a crashed or killed keycred never
//! blocks the next one: its leftover lock file is simply locked again. Manifest edits lock
//! `<manifest>.lock`; `fleet rotate` locks its journal and its output directory, so two runs
//! never rotate the same applications at once. A locked resource is waited for
//! `KEYCRED_LOCK_TIMEOUT` seconds (default 10), then refused with exit 2.

use crate::{Error, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long to wait for another keycred to release a lock, unless `KEYCRED_LOCK_TIMEOUT`
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
            .with_hint("set it to e.g. 30, or to 0 to fail at once when what keycred needs is locked")
    })
}

/// `<path>.lock`: where the lock of a file lives.
pub fn lock_path_of(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// A held lock: the lock file, open and OS-locked; removed on drop, also on error paths.
#[derive(Debug)]
pub struct FileLock {
    path: PathBuf,
    // Held open for the OS lock; closing it (after the removal in `drop`) releases it.
    _file: fs::File,
}

impl FileLock {
    /// Locks `lock` (creating it), which protects `target`, waiting for another keycred to
    /// release it. `activity` says what that other keycred is doing with `target`, for the
    /// message when the wait runs out ("editing it").
    pub fn acquire(lock: PathBuf, target: &Path, activity: &str) -> Result<FileLock> {
        let deadline = Instant::now() + lock_wait()?;
        loop {
            let file = open_lock_file(&lock)?;
            match file.try_lock() {
                // The holder before us removes the file before unlocking it: if the path no longer
                // names the file we locked, we locked a removed file and must start again.
                Ok(()) if same_file(&file, &lock) => return Ok(FileLock { path: lock, _file: file }),
                Ok(()) => continue,
                Err(fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(fs::TryLockError::WouldBlock) => {
                    return Err(Error::input(format!(
                        "{}: locked by {} (another keycred is {activity}); nothing was changed",
                        target.display(),
                        lock.display()
                    ))
                    .with_hint("wait for the other keycred to finish, then run the command again"))
                }
                Err(fs::TryLockError::Error(e)) => return Err(Error::io(&lock, "lock", e)),
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
        .with_hint("remove it (keycred creates a plain empty file there while it works), then run the command again")
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

impl Drop for FileLock {
    fn drop(&mut self) {
        // Remove before unlocking (the file closes after this), so a waiter never locks a file
        // that is about to disappear without noticing: see `same_file`.
        let _ = fs::remove_file(&self.path);
    }
}
