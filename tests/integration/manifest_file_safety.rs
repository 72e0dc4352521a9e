//! Manifest files are edited safely: a replaced manifest keeps its owner, group and mode (or the
//! edit is refused), a FIFO or a symbolic link loop given as a manifest is bad input and never
//! blocks, the lock file never follows a link, and temporaries left by killed runs are removed.
//! Each test runs the real binary.

use crate::common::*;
use serde_json::json;
use std::path::Path;
use std::process::Command;

fn run(args: &[&str]) -> (i32, String, String) {
    keycred_bounded(args, &[])
}

/// A manifest holding one valid certificate, and a second certificate (PEM) ready to add.
fn manifest_and_cert(d: &TempDir) -> (String, String) {
    let old = credential_for_days("registered", 30);
    let doc = json!({"id": OBJECT_ID, "appId": APP_ID, "displayName": "file safety", "keyCredentials": [valid_entry(&old.cert)]});
    std::fs::write(d.path("app.json"), serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    let new = credential_for_days("to add", 30);
    std::fs::write(d.path("new.pem"), new.cert.to_pem()).unwrap();
    (d.s("app.json"), d.s("new.pem"))
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0).unwrap_or(false)
}

/// Replacing a manifest keeps its owner, group and mode: a `nobody:nogroup 0640` file edited by
/// root must not become `root:root`. Needs root to make a file someone else owns, and says it
/// was skipped otherwise.
#[test]
fn manifest_edits_keep_owner_group_and_mode() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if !is_root() {
        skipped("manifest_edits_keep_owner_group_and_mode", "needs root to give the manifest another owner");
        return;
    }
    let d = TempDir::new("owner-kept");
    let (m, cert) = manifest_and_cert(&d);
    if let Err(e) = std::os::unix::fs::chown(&m, Some(65534), Some(65534)) {
        // Root in a user namespace that does not map uid 65534.
        skipped("manifest_edits_keep_owner_group_and_mode", format!("cannot give the manifest to uid 65534 ({e})"));
        return;
    }
    std::fs::set_permissions(&m, std::fs::Permissions::from_mode(0o640)).unwrap();
    let (code, _, err) = run(&["manifest", "add", &m, "--cert", &cert]);
    assert_eq!(code, 0, "{err}");
    let meta = std::fs::metadata(&m).unwrap();
    assert_eq!((meta.uid(), meta.gid(), meta.mode() & 0o7777), (65534, 65534, 0o640));
    assert!(std::fs::read_to_string(&m).unwrap().contains("to add"));
}

/// When the owner cannot be kept (an ordinary user may not give a file away), the edit is
/// refused and the file left as it was. Runs keycred as `nobody` on a root-owned manifest in a
/// world-writable directory; needs root, and says it was skipped otherwise.
#[test]
fn an_owner_that_cannot_be_kept_refuses_the_edit() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    if !is_root() {
        skipped("an_owner_that_cannot_be_kept_refuses_the_edit", "needs root to run keycred as another user");
        return;
    }
    let d = TempDir::new("owner-refused");
    std::fs::set_permissions(&d.0, std::fs::Permissions::from_mode(0o777)).unwrap();
    let (m, cert) = manifest_and_cert(&d);
    std::fs::set_permissions(&m, std::fs::Permissions::from_mode(0o666)).unwrap();
    std::fs::set_permissions(&cert, std::fs::Permissions::from_mode(0o644)).unwrap();
    let before = snapshot(&d.0);
    let mut cmd = keycred_command(&["manifest", "add", &m, "--cert", &cert], &[]);
    cmd.uid(65534).gid(65534);
    let (code, _, err) = run_bounded(cmd, b"").unwrap();
    if err.contains("Permission denied") && err.contains("keycred") && code != 2 {
        skipped(
            "an_owner_that_cannot_be_kept_refuses_the_edit",
            format!("the keycred binary is not reachable for nobody: {err}"),
        );
        return;
    }
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("owner") && err.contains("nothing was changed"), "{err}");
    assert_eq!(snapshot(&d.0), before, "files changed");
}

/// A FIFO given as a manifest is refused at once, exit 2, naming it: opening it for reading
/// would block `manifest add/list` forever.
#[test]
fn a_fifo_manifest_is_refused_without_blocking() {
    let d = TempDir::new("fifo-manifest");
    let fifo = d.s("app.json");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    std::fs::write(d.path("new.pem"), credential_for_days("fifo", 30).cert.to_pem()).unwrap();
    for args in [vec!["manifest", "list", &fifo], vec!["manifest", "add", &fifo, "--cert", &d.s("new.pem")]] {
        let (code, _, err) = run_bounded(keycred_command(&args, &[]), b"").expect("keycred blocked on the FIFO");
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains("FIFO") && err.contains("app.json"), "{err}");
    }
    assert!(!d.path("app.json.lock").exists());
}

/// A manifest path that is a symbolic link loop is bad input (exit 2) naming the path, not an
/// unexpected failure (exit 1).
#[test]
fn a_symbolic_link_loop_is_bad_input() {
    let d = TempDir::new("link-loop");
    std::os::unix::fs::symlink(d.path("b.json"), d.path("a.json")).unwrap();
    std::os::unix::fs::symlink(d.path("a.json"), d.path("b.json")).unwrap();
    std::fs::write(d.path("new.pem"), credential_for_days("loop", 30).cert.to_pem()).unwrap();
    let a = d.s("a.json");
    for args in [vec!["manifest", "list", &a], vec!["manifest", "add", &a, "--cert", &d.s("new.pem")]] {
        let (code, _, err) = run(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains("a.json") && err.contains("symbolic link"), "{err}");
    }
}

/// `<manifest>.lock` is opened without following links and must be a regular file: a planted
/// symbolic link must not make keycred create its target, and a FIFO must not block it.
#[test]
fn the_lock_file_never_follows_a_link_and_must_be_a_regular_file() {
    let d = TempDir::new("lock-file");
    let (m, cert) = manifest_and_cert(&d);
    let victim = d.path("victim");
    std::os::unix::fs::symlink(&victim, d.path("app.json.lock")).unwrap();
    let before = std::fs::read(&m).unwrap();
    let (code, _, err) = keycred_bounded(&["manifest", "add", &m, "--cert", &cert], &[("KEYCRED_LOCK_TIMEOUT", "0")]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("app.json.lock") && err.contains("symbolic link"), "{err}");
    assert!(!victim.exists(), "the link's target was created");
    assert!(d.path("app.json.lock").symlink_metadata().unwrap().file_type().is_symlink(), "the planted link is kept");
    assert_eq!(std::fs::read(&m).unwrap(), before);
    // A FIFO in its place is refused too (and does not block).
    std::fs::remove_file(d.path("app.json.lock")).unwrap();
    assert!(Command::new("mkfifo").arg(d.path("app.json.lock")).status().unwrap().success());
    let (code, _, err) = keycred_bounded(&["manifest", "add", &m, "--cert", &cert], &[("KEYCRED_LOCK_TIMEOUT", "0")]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a regular file"), "{err}");
    assert_eq!(std::fs::read(&m).unwrap(), before);
}

/// The next write removes temporaries left by keycred runs killed mid-write (so they do not pile
/// up), and leaves a live writer's and other programs' files alone.
#[test]
fn stale_temporaries_are_removed_on_the_next_write() {
    let d = TempDir::new("stale-temporaries");
    let (m, cert) = manifest_and_cert(&d);
    // A process id that is not running (above every pid in use), and this test's own (alive).
    let dead = (4_000_000..4_194_304).find(|p| !Path::new(&format!("/proc/{p}")).exists()).unwrap();
    let stale = d.path(&format!(".app.json.keycred-{dead}-0123456789abcdef0123456789abcdef.tmp"));
    let live = d.path(&format!(".app.json.keycred-{}-fedcba9876543210fedcba9876543210.tmp", std::process::id()));
    let other = d.path(".app.json.editor.tmp");
    for p in [&stale, &live, &other] {
        std::fs::write(p, b"{").unwrap();
    }
    let (code, _, err) = run(&["manifest", "add", &m, "--cert", &cert]);
    assert_eq!(code, 0, "{err}");
    assert!(!stale.exists(), "the dead run's temporary is still there");
    assert!(live.exists() && other.exists(), "a live writer's or another program's file was removed");
}
