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

/// Hook for full-disk tests that need no root (no tmpfs to mount): with
/// `KEYCRED_FAULT_NO_SPACE_AT=N`, the Nth file this process stages fails after its data is
/// written, with the error a full disk gives. Test-only, as [`fault_before_rename`].
#[cfg(feature = "fault-injection")]
fn fault_no_space() -> std::io::Result<()> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static STAGED: AtomicUsize = AtomicUsize::new(0);
    let at = std::env::var("KEYCRED_FAULT_NO_SPACE_AT").ok().and_then(|v| v.parse::<usize>().ok());
    match at {
        Some(n) if STAGED.fetch_add(1, Ordering::SeqCst) + 1 == n => {
            Err(std::io::Error::new(std::io::ErrorKind::StorageFull, "No space left on device (injected)"))
        }
        _ => Ok(()),
    }
}

#[cfg(not(feature = "fault-injection"))]
fn fault_no_space() -> std::io::Result<()> {
    Ok(())
}

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
/// file keeps its own mode unless `mode` is given explicitly, and always keeps its owner and
/// group (as `sed -i` does), or the write is refused.
///
/// Without `mode` (editing an existing document) a symbolic link is followed and its target
/// replaced. With `mode` (a new key or certificate file) a link at `path` is replaced by the
/// file itself: a secret must never be written wherever a planted link points.
pub fn atomic_write(path: &Path, data: &[u8], mode: Option<u32>) -> Result<()> {
    let staged = stage(path, data, mode)?;
    fault_before_rename();
    staged.commit()
}

/// A file written to its temporary and fsynced, not yet renamed over its target. Dropped
/// without [`Staged::commit`], the temporary is removed.
pub struct Staged {
    tmp: PathBuf,
    path: PathBuf,
    dir: PathBuf,
    committed: bool,
}

impl Staged {
    /// Renames the temporary over the target and fsyncs the directory.
    pub fn commit(mut self) -> Result<()> {
        fs::rename(&self.tmp, &self.path).map_err(|e| Error::io(&self.path, "write", e))?;
        self.committed = true;
        if let Ok(d) = fs::File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// The temporary-file name for `name`: `.NAME.keycred-PID-UUID.tmp`, unique per process and per
/// call (two threads of one process, the emulator's handlers, may write the same file).
const TMP_MARK: &str = ".keycred-";

/// Writes `data` to a temporary next to `path` (see [`atomic_write`] for `mode` and links), with
/// the owner, group and mode the target will have, and fsyncs it. Temporaries that earlier
/// keycred runs left there when killed are removed first.
pub fn stage(path: &Path, data: &[u8], mode: Option<u32>) -> Result<Staged> {
    let path = if mode.is_none() { resolve_link(path)? } else { path.to_path_buf() };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().ok_or_else(|| Error::input(format!("{}: not a file path", path.display())))?;
    let name = name.to_string_lossy().to_string();
    remove_stale_temporaries(&dir, &name);
    // The file being replaced: its mode and owner carry over. A link replaced by a new file
    // (`mode` given) tells nothing.
    let existing = fs::symlink_metadata(&path).ok().filter(|m| m.is_file());
    let existing_mode = existing.as_ref().map(mode_of);
    let tmp = dir.join(format!(".{name}{TMP_MARK}{}-{}.tmp", std::process::id(), uuid::Uuid::new_v4().simple()));
    let staged = Staged { tmp: tmp.clone(), path: path.clone(), dir, committed: false };
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Created with the final mode so a secret is never readable by others, not even
        // between creation and chmod.
        opts.mode(mode.or(existing_mode).unwrap_or(PUBLIC_MODE));
    }
    let mut f = opts.open(&tmp).map_err(|e| Error::io(&path, "write", e))?;
    keep_owner(&f, existing.as_ref(), &path)?;
    let result = (|| -> std::io::Result<()> {
        f.write_all(data)?;
        fault_no_space()?;
        #[cfg(unix)]
        if let Some(m) = mode.or(existing_mode) {
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(fs::Permissions::from_mode(m))?;
        }
        f.sync_all()
    })();
    drop(f);
    if let Err(e) = result {
        return Err(Error::io(&path, "write", e));
    }
    Ok(staged)
}

/// Gives the temporary `f` the owner and group of the file it replaces. Only done when they
/// differ (an ordinary user editing their own file needs no privilege); when the system refuses
/// (only root may give a file away), the write is refused rather than silently changing who
/// owns the manifest.
fn keep_owner(f: &fs::File, existing: Option<&fs::Metadata>, path: &Path) -> Result<()> {
    #[cfg(unix)]
    if let Some(old) = existing {
        use std::os::unix::fs::MetadataExt;
        let new = f.metadata().map_err(|e| Error::io(path, "write", e))?;
        if (new.uid(), new.gid()) != (old.uid(), old.gid()) {
            std::os::unix::fs::fchown(f, Some(old.uid()), Some(old.gid())).map_err(|e| {
                Error::input(format!(
                    "{}: cannot keep its owner and group ({}:{}) when replacing it",
                    path.display(),
                    old.uid(),
                    old.gid()
                ))
                .caused_by(e)
                .with_note("nothing was changed")
                .with_hint("run keycred as the file's owner (or as root), or change the file's owner first")
            })?;
        }
    }
    #[cfg(not(unix))]
    let _ = (f, existing, path);
    Ok(())
}

/// Removes the temporaries of `name` that keycred processes no longer running left in `dir`
/// (killed between writing and renaming): without this, repeated kills pile them up. A
/// temporary of a live process (a concurrent writer) is left alone; where process ids cannot be
/// checked (no `/proc`), only temporaries older than an hour are removed.
fn remove_stale_temporaries(dir: &Path, name: &str) {
    let prefix = format!(".{name}{TMP_MARK}");
    let Ok(entries) = fs::read_dir(dir) else { return };
    let own = std::process::id();
    let proc_fs = Path::new("/proc/self").exists();
    for e in entries.flatten() {
        let file_name = e.file_name();
        let Some(rest) = file_name.to_str().and_then(|n| n.strip_prefix(&prefix)) else { continue };
        let Some((pid, tail)) = rest.split_once('-') else { continue };
        let Ok(pid) = pid.parse::<u32>() else { continue };
        if pid == own || !tail.ends_with(".tmp") || !e.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let stale = if proc_fs {
            !Path::new(&format!("/proc/{pid}")).exists()
        } else {
            e.metadata()
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > std::time::Duration::from_secs(3600))
        };
        if stale {
            let _ = fs::remove_file(e.path());
        }
    }
}

fn mode_of(m: &fs::Metadata) -> u32 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        m.permissions().mode() & 0o7777
    }
    #[cfg(not(unix))]
    {
        let _ = m;
        PUBLIC_MODE
    }
}

fn existing_mode(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        fs::metadata(path).ok().map(|m| mode_of(&m))
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
                    .with_hint("create it first, or choose another directory"));
            }
        }
    }
    // All or nothing: every file is written to its temporary first, and renamed only once all
    // are written, so a full disk never leaves the key without its certificate (and a rerun
    // refusing because the key exists). A failure drops the staged temporaries, removing them.
    let mut staged = Vec::with_capacity(files.len());
    for f in files {
        staged.push(stage(&f.path, &f.data, Some(f.mode))?);
    }
    fault_before_rename();
    let mut done: Vec<&Path> = Vec::new();
    for (s, f) in staged.into_iter().zip(files) {
        if let Err(e) = s.commit() {
            // Without --force the targets did not exist: take back the ones already renamed.
            if !force {
                for p in done {
                    let _ = fs::remove_file(p);
                }
            }
            return Err(e);
        }
        done.push(&f.path);
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
    let (verb, them) = if existing.len() == 1 { ("already exists", "it") } else { ("already exist", "them") };
    Err(Error::input(format!("{} {verb}; nothing was written", existing.join(", ")))
        .with_hint(format!("allow replacing {them}, or choose another name or directory")))
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

/// Mode of the directories keycred creates: private keys go inside.
pub const PRIVATE_DIR_MODE: u32 = 0o700;

/// Whether a symbolic link may stand for a directory keycred writes keys into: the directory a
/// user names may be a link they made; one keycred makes itself (`OUT_DIR/<appId>`) may not,
/// since a link there was planted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Links {
    /// A link is followed and its target checked.
    Follow,
    /// A link is refused.
    Refuse,
}

/// Checks a directory keycred is about to write private keys into, when it exists (`Ok(false)`
/// when it does not): a directory (with [`Links::Refuse`], not a symbolic link to one), and not
/// writable by its group or others, who could plant or swap the files written there. `what`
/// names it in the message (`--out-dir`).
pub fn check_private_dir(dir: &Path, what: &str, links: Links) -> Result<bool> {
    let refuse = |why: String, hint: &str| {
        Error::input(format!("{what} {}: {why}; nothing was written", dir.display())).with_hint(hint.to_string())
    };
    let m = match fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io(dir, "read", e)),
        Ok(m) if m.file_type().is_symlink() && links == Links::Refuse => {
            return Err(refuse(
                "a symbolic link, where keycred creates a directory for private keys".into(),
                "remove the link: keycred creates the directory itself",
            ))
        }
        Ok(m) if m.file_type().is_symlink() => fs::metadata(dir).map_err(|e| Error::io(dir, "follow", e))?,
        Ok(m) => m,
    };
    if !m.is_dir() {
        return Err(refuse("not a directory".into(), "give a directory (it is created when missing), not a file"));
    }
    let mode = mode_of(&m);
    if mode & 0o022 != 0 {
        return Err(refuse(
            format!("writable by its group or others (mode {mode:04o}), who could plant or swap the key files"),
            &format!("make it private first (chmod go-w {}), or give another directory", dir.display()),
        ));
    }
    Ok(true)
}

/// Creates `dir` and its missing parents, each exactly [`PRIVATE_DIR_MODE`] whatever the umask
/// (set again after creation: a umask can only take bits away, and one such as 0277 would leave
/// the owner unable to write). Existing directories are left as they are.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    let missing: Vec<&Path> = dir.ancestors().take_while(|d| !d.as_os_str().is_empty() && !d.exists()).collect();
    for d in missing.into_iter().rev() {
        let mut b = fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, PRIVATE_DIR_MODE);
        match b.create(d) {
            Ok(()) => {
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    fs::set_permissions(d, fs::Permissions::from_mode(PRIVATE_DIR_MODE))
                        .map_err(|e| Error::io(d, "make private", e))?;
                }
            }
            // Made by someone else meanwhile: the caller checks it ([`check_private_dir`]).
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(Error::file(d, "cannot create the directory")
                    .caused_by(e)
                    .with_hint("check the parent directory's permissions"))
            }
        }
    }
    Ok(())
}

/// [`check_private_dir`], then [`create_private_dir`] when it is missing.
pub fn ensure_private_dir(dir: &Path, what: &str, links: Links) -> Result<()> {
    if !check_private_dir(dir, what, links)? {
        create_private_dir(dir)?;
        check_private_dir(dir, what, links)?;
    }
    Ok(())
}

/// Largest manifest (or other document keycred edits) read, in bytes. Portal manifests are a few
/// kilobytes; a hundred certificates with their bodies stay far below this.
pub const MAX_DOCUMENT_BYTES: u64 = 4 * 1024 * 1024;
/// Largest certificate, key or PFX file read, in bytes (a PEM bundle of a thousand certificates
/// fits).
pub const MAX_CREDENTIAL_BYTES: u64 = 1024 * 1024;

/// Largest `fleet rotate` journal read, in bytes: a few hundred bytes per application, so a
/// run over a hundred thousand applications fits.
pub const MAX_JOURNAL_BYTES: u64 = 64 * 1024 * 1024;

/// Reads a document (a manifest) with an error naming it: a regular file of at most
/// [`MAX_DOCUMENT_BYTES`]. Anything else (a FIFO, a device, a socket) is refused without
/// being opened for reading, since opening a FIFO blocks until a writer comes.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    read_regular(path, MAX_DOCUMENT_BYTES)
}

/// [`read`] with another size limit (a `fleet rotate` journal: [`MAX_JOURNAL_BYTES`]): a
/// regular file of at most `limit` bytes, anything else refused without being opened for
/// reading.
pub fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let m = fs::metadata(path).map_err(|e| Error::io(path, "read", e))?;
    // A directory goes on to the read, whose "Is a directory" names the mistake.
    if !m.is_file() && !m.is_dir() {
        return Err(not_regular(path, &m));
    }
    let mut opts = fs::OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Swapped for a FIFO between the stat and the open, it still does not block.
        opts.custom_flags(libc::O_NONBLOCK);
    }
    let f = opts.open(path).map_err(|e| Error::io(path, "read", e))?;
    let m = f.metadata().map_err(|e| Error::io(path, "read", e))?;
    if !m.is_file() && !m.is_dir() {
        return Err(not_regular(path, &m));
    }
    if m.is_file() && m.len() > limit {
        return Err(too_big(path, limit));
    }
    read_capped(f, path, limit)
}

/// Reads a certificate, key or other input file of at most `limit` bytes, with an error naming
/// it. Pipes are allowed (`<(openssl ...)`, `/dev/stdin`); an endless stream (`/dev/zero`) is
/// refused once past `limit`.
pub fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let f = fs::File::open(path).map_err(|e| Error::io(path, "read", e))?;
    if let Ok(m) = f.metadata() {
        if m.is_file() && m.len() > limit {
            return Err(too_big(path, limit));
        }
    }
    read_capped(f, path, limit)
}

fn read_capped(f: fs::File, path: &Path, limit: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = Vec::new();
    f.take(limit + 1).read_to_end(&mut buf).map_err(|e| Error::io(path, "read", e))?;
    if buf.len() as u64 > limit {
        return Err(too_big(path, limit));
    }
    Ok(buf)
}

fn too_big(path: &Path, limit: u64) -> Error {
    Error::input(format!("{}: over the {limit}-byte limit for this input; nothing was read", path.display()))
        .with_hint("give the right file (keycred's README lists the size limits)")
}

fn not_regular(path: &Path, m: &fs::Metadata) -> Error {
    #[cfg(unix)]
    let what = {
        use std::os::unix::fs::FileTypeExt;
        let t = m.file_type();
        if t.is_fifo() {
            "a FIFO (named pipe)"
        } else if t.is_socket() {
            "a socket"
        } else if t.is_char_device() || t.is_block_device() {
            "a device"
        } else {
            "a special file"
        }
    };
    #[cfg(not(unix))]
    let what = {
        let _ = m;
        "a special file"
    };
    // The hint says why: keycred reads each input whole, and a pipe or device may never end.
    Error::input(format!("{}: {what}, not a regular file; nothing was read", path.display())).with_hint(
        "give the path of a regular file: inputs are read whole, and a pipe or device may block or never end",
    )
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
