//! The journal of a fleet rotation: one JSON line per completed step of an application, so a run
//! killed at any moment (SIGKILL included) resumes where it stopped.
//!
//! Each record is appended with a single `write` and synced to disk before the next step
//! starts, so the journal only ever says what has really happened. A crash can at worst leave
//! the last line cut short; it is ignored when the journal is read again (the step it named is
//! then redone, and every step is safe to redo: each looks at Graph before changing it). The
//! first line records the run's settings (the certificate name, the tenant), so a resumed run
//! writes the same files and refuses a journal of another tenant.
//!
//! A journal decides which key on disk a resumed run adopts, so it is trusted only as far as it
//! can be: it must belong to the user running keycred and be writable by no one else, and its
//! certificate name must be a plain file name (the files stay inside `OUT_DIR/<appId>/`).
//! The rotation adopts a key only when the journal recorded its thumbprint, and confirms with
//! Graph what the journal says is done ([`super::rotate`]).

use crate::wording::Input;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The steps of one application, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// The new key and certificate are on disk (`OUT_DIR/<appId>/<name>.*`).
    Generated,
    /// Graph lists the new certificate.
    Added,
    /// A token was obtained as the application with the new certificate.
    Verified,
    /// The deploy hook succeeded with the new certificate (only when one was given).
    Deployed,
    /// The expiring and expired certificates are gone from Graph.
    Removed,
    /// Nothing left to do.
    Done,
}

impl Step {
    /// The step as a verb, what a run does to reach it (`generate` for [`Step::Generated`]): how
    /// an outcome names the step it stopped at.
    pub fn verb(self) -> &'static str {
        match self {
            Step::Generated => "generate",
            Step::Added => "add",
            Step::Verified => "verify",
            Step::Deployed => "deploy",
            Step::Removed => "remove",
            Step::Done => "finish",
        }
    }
}

/// The first line: what the run is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Header {
    /// Journal format version.
    pub journal: u32,
    /// Tenant.
    pub tenant: String,
    /// Graph base URL.
    pub graph_url: String,
    /// Base name of the new certificates' files.
    pub name: String,
    /// When the run started.
    pub started: String,
}

/// One step of one application.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// Application (client) id.
    pub app_id: String,
    /// The step completed.
    pub step: Step,
    /// Thumbprint of the new certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbprint: Option<String>,
    /// keyIds removed (with `removed`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<String>,
}

/// What the journal says about one application.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppState {
    /// The last step completed.
    pub step: Option<Step>,
    /// Thumbprint of its new certificate.
    pub thumbprint: Option<String>,
}

impl AppState {
    /// Checks with Graph (its listing of the application, `app`) what the journal says is done:
    /// the certificate the journal recorded is registered. A journal line is no proof on its own.
    pub fn confirm_done(&self, app: &serde_json::Value, app_id: &str) -> Result<()> {
        let recorded = self.thumbprint.as_deref().and_then(|t| crate::thumbprint::parse_sha1(t).ok());
        let entries = app.get("keyCredentials").and_then(serde_json::Value::as_array);
        let listed = entries.into_iter().flatten().enumerate().filter_map(|(i, e)| e.as_object().map(|o| (i, o)));
        if recorded.is_some() && listed.map(|(i, o)| crate::manifest::read_entry(i, o)).any(|c| c.sha1() == recorded) {
            return Ok(());
        }
        Err(Error::check(format!(
            "application {app_id}: the journal says it was rotated, but Graph does not list the certificate it recorded ({})",
            self.thumbprint.as_deref().unwrap_or("no thumbprint recorded")
        ))
        .with_hint("move the journal aside to rotate this application again"))
    }
}

/// An open journal.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    header: Header,
    /// Whether it existed before this run (a resumed run).
    resumed: bool,
    apps: Mutex<HashMap<String, AppState>>,
    file: Mutex<std::fs::File>,
}

/// Journal format version written.
pub const VERSION: u32 = 1;

/// Checks that `name` (the base name of the new certificates' files, from `--name` or a
/// journal, named by `what`) is a plain file name: the files must land in `OUT_DIR/<appId>/`,
/// not wherever a path would lead.
pub fn check_name(name: &str, what: &str) -> Result<()> {
    if name.is_empty() || name.contains(['/', '\\', '\0']) || name.starts_with('.') {
        return Err(Error::input(format!("{what} '{name}': must be a plain file name"))
            .with_hint("the files go to OUT_DIR/<appId>/NAME.key, .cer and .pem"));
    }
    Ok(())
}

/// Refuses a journal another user could have written: one owned by someone else, or writable
/// by its group or others. Such a journal could make a run adopt a planted key.
fn check_trusted(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).map_err(|e| Error::io(path, "read", e))?;
        // SAFETY: geteuid(2) has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        let refuse = |why: String| {
            Error::input(format!("{}: {why}: a journal decides which key files a run adopts; nothing was done", path.display()))
                .with_hint("if you wrote it, make it yours and not writable by others (chmod go-w); else move it aside and start a new run")
        };
        if m.uid() != me {
            return Err(refuse(format!("owned by uid {}, not by the user running keycred (uid {me})", m.uid())));
        }
        if m.mode() & 0o022 != 0 {
            return Err(refuse(format!("writable by its group or others (mode {:04o})", m.mode() & 0o7777)));
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

impl Journal {
    /// Opens the journal at `path`, creating it with `header` when absent. An existing journal
    /// must be of the same tenant and Graph; its certificate name wins over `header.name`, so a
    /// resumed run writes the files the interrupted one started.
    pub fn open(path: &Path, header: Header) -> Result<Journal> {
        // Read as manifests are: a regular file only (a FIFO would block the open for ever),
        // and at most MAX_JOURNAL_BYTES.
        let existing = match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            _ => Some(crate::fsio::read_regular(path, crate::fsio::MAX_JOURNAL_BYTES).map_err(|e| {
                e.with_hint(format!(
                    "give as {} the journal file this command wrote, or a new path to start a new run",
                    Input::Journal
                ))
            })?),
        };
        let mut apps = HashMap::new();
        let (header, resumed) = match existing {
            None => {
                let mut line = serde_json::to_string(&header).map_err(|e| Error::internal(e.to_string()))?;
                line.push('\n');
                crate::fsio::atomic_write(path, line.as_bytes(), Some(crate::fsio::PUBLIC_MODE))?;
                (header, false)
            }
            Some(bytes) => {
                check_trusted(path)?;
                let (old, records) = parse(path, &bytes)?;
                check_name(&old.name, &format!("{}: the journal's certificate name", path.display()))?;
                if old.tenant != header.tenant || old.graph_url != header.graph_url {
                    return Err(Error::input(format!(
                        "{}: the journal is of tenant {} at {}, not {} at {}",
                        path.display(),
                        old.tenant,
                        old.graph_url,
                        header.tenant,
                        header.graph_url
                    ))
                    .with_hint("give another journal file, or run with the journal's tenant to finish that run"));
                }
                for r in records {
                    let s: &mut AppState = apps.entry(r.app_id.clone()).or_default();
                    if s.step.is_none_or(|st| r.step > st) {
                        s.step = Some(r.step);
                    }
                    if r.thumbprint.is_some() {
                        s.thumbprint = r.thumbprint;
                    }
                }
                (old, true)
            }
        };
        let file =
            std::fs::OpenOptions::new().append(true).open(path).map_err(|e| Error::io(path, "open the journal", e))?;
        Ok(Journal { path: path.to_path_buf(), header, resumed, apps: Mutex::new(apps), file: Mutex::new(file) })
    }

    /// The run's settings (from the journal when resumed).
    pub fn header(&self) -> &Header {
        &self.header
    }
    /// Whether the journal existed before this run.
    pub fn resumed(&self) -> bool {
        self.resumed
    }
    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// What the journal says about `app_id`.
    pub fn state(&self, app_id: &str) -> AppState {
        self.apps.lock().expect("journal lock").get(app_id).cloned().unwrap_or_default()
    }
    /// Applications in the journal that are not done.
    pub fn unfinished(&self) -> Vec<String> {
        let apps = self.apps.lock().expect("journal lock");
        let mut v: Vec<String> =
            apps.iter().filter(|(_, s)| s.step != Some(Step::Done)).map(|(k, _)| k.clone()).collect();
        v.sort();
        v
    }

    /// Appends `r` and syncs it to disk before returning.
    pub fn record(&self, r: Record) -> Result<()> {
        let mut line = serde_json::to_string(&r).map_err(|e| Error::internal(e.to_string()))?;
        line.push('\n');
        {
            let mut f = self.file.lock().expect("journal lock");
            // One write call per line: a crash leaves whole lines, or a last one cut short.
            f.write_all(line.as_bytes())
                .and_then(|_| f.sync_data())
                .map_err(|e| Error::io(&self.path, "append to the journal", e))?;
        }
        let mut apps = self.apps.lock().expect("journal lock");
        let s = apps.entry(r.app_id).or_default();
        s.step = Some(r.step);
        if r.thumbprint.is_some() {
            s.thumbprint = r.thumbprint;
        }
        Ok(())
    }

    /// Moves a finished run's journal aside (`<journal>.done-<time>`), so that the next run starts
    /// afresh while the record of this one is kept. Returns where it went.
    pub fn finish(self) -> Result<PathBuf> {
        let stamp = crate::dates::format(crate::dates::now()).replace([':', '-'], "");
        let to = PathBuf::from(format!("{}.done-{stamp}", self.path.display()));
        std::fs::rename(&self.path, &to).map_err(|e| Error::io(&self.path, "move the finished journal", e))?;
        Ok(to)
    }
}

/// Parses a journal: its header, then its records; a last line cut short by a crash is dropped,
/// anything else unreadable is an error naming the line.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<(Header, Vec<Record>)> {
    let text = String::from_utf8_lossy(bytes);
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    let n = lines.len();
    let bad = |i: usize, e: serde_json::Error| {
        Error::file(path, format!("line {}: not a keycred journal record", i + 1)).caused_by(e).with_hint(format!(
            "give as {} the journal this command wrote, or another path to start a new run",
            Input::Journal
        ))
    };
    let header: Header = match lines.first() {
        Some(l) => serde_json::from_str(l).map_err(|e| bad(0, e))?,
        None => {
            return Err(Error::file(path, "empty: not a keycred journal")
                .with_hint(format!("remove it, or give another path as {}", Input::Journal)))
        }
    };
    if header.journal != VERSION {
        return Err(Error::file(path, format!("journal version {} is not {VERSION}", header.journal)));
    }
    let mut records = Vec::new();
    for (i, l) in lines.iter().enumerate().skip(1) {
        match serde_json::from_str::<Record>(l) {
            Ok(r) => records.push(r),
            Err(_) if i == n - 1 && !complete => break,
            Err(e) => return Err(bad(i, e)),
        }
    }
    Ok((header, records))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(tenant: &str, name: &str) -> Header {
        Header {
            journal: VERSION,
            tenant: tenant.into(),
            graph_url: "http://127.0.0.1:1".into(),
            name: name.into(),
            started: "2026-12-01T00:00:00Z".into(),
        }
    }

    fn rec(app: &str, step: Step) -> Record {
        Record { app_id: app.into(), step, thumbprint: Some(format!("T-{app}")), removed: vec![] }
    }

    #[test]
    fn a_resumed_journal_knows_each_apps_last_step_and_keeps_the_first_runs_name() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j.jsonl");
        let j = Journal::open(&p, header("t", "first")).unwrap();
        assert!(!j.resumed());
        j.record(rec("a", Step::Generated)).unwrap();
        j.record(rec("a", Step::Added)).unwrap();
        j.record(rec("b", Step::Generated)).unwrap();
        j.record(rec("b", Step::Done)).unwrap();
        drop(j);
        // A crash in the middle of a line: the torn line is ignored.
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(br#"{"appId":"a","step":"veri"#).unwrap();
        drop(f);
        let j = Journal::open(&p, header("t", "second")).unwrap();
        assert!(j.resumed());
        assert_eq!(j.header().name, "first");
        assert_eq!(j.state("a"), AppState { step: Some(Step::Added), thumbprint: Some("T-a".into()) });
        assert_eq!(j.state("b").step, Some(Step::Done));
        assert_eq!(j.state("c"), AppState::default());
        assert_eq!(j.unfinished(), vec!["a".to_string()]);
    }

    #[test]
    fn another_tenants_or_a_corrupt_journal_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j.jsonl");
        drop(Journal::open(&p, header("t", "n")).unwrap());
        let e = Journal::open(&p, header("other", "n")).unwrap_err();
        assert!(e.to_string().contains("not other at"), "{e}");
        assert_eq!(e.exit_code(), 2);
        let text = std::fs::read_to_string(&p).unwrap();
        std::fs::write(&p, format!("{text}garbage\n{}\n", serde_json::to_string(&rec("a", Step::Done)).unwrap()))
            .unwrap();
        let e = Journal::open(&p, header("t", "n")).unwrap_err();
        assert!(e.to_string().contains("line 2: not a keycred journal record"), "{e}");
        // A line nested a million deep is an unreadable line, not a stack overflow.
        let deep = format!("{}{}", "[".repeat(1_000_000), "]".repeat(1_000_000));
        std::fs::write(&p, format!("{text}{deep}\n")).unwrap();
        let e = Journal::open(&p, header("t", "n")).unwrap_err();
        assert!(e.to_string().contains("line 2: not a keycred journal record"), "{e}");
    }

    #[test]
    fn names_are_plain_file_names() {
        for ok in ["fleet-20261201T000000Z", "k", "a.b"] {
            check_name(ok, "--name").unwrap();
        }
        for bad in ["", "/tmp/evil/k", "../k", "a/b", "a\\b", ".hidden", "a\0b"] {
            let e = check_name(bad, "--name").unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}");
            assert!(e.to_string().contains("must be a plain file name"), "{e}");
        }
    }
}
