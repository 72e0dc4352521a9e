//! Crash safety of manifest writes: a crash between writing the temporary file and renaming it
//! leaves the old manifest byte for byte; processes killed at random moments leave the old or
//! the new file, never a partial one; concurrent `manifest add` runs lose no entry; a lock left
//! by a dead editor is no obstacle, a live one's is waited for, then refused.

use crate::hardening_support;

use hardening_support::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

const MANIFEST: &str = r#"{
  "id": "0b6c8e1c-2f7e-4d36-9d2a-1c3e5f7a9b0d",
  "appId": "6731de76-14a6-49ae-97bc-6eba6914391e",
  "displayName": "crash test",
  "keyCredentials": [],
  "signInAudience": "AzureADMyOrg",
  "web": { "redirectUris": [] }
}
"#;

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

/// `n` certificates made with openssl, in `dir` as `c{i}.pem`.
fn certs(dir: &Path, n: usize) {
    for i in 0..n {
        let o = std::process::Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj"])
            .arg(format!("/CN=crash{i}"))
            .arg("-keyout")
            .arg(dir.join(format!("c{i}.key")))
            .arg("-out")
            .arg(dir.join(format!("c{i}.pem")))
            .output()
            .unwrap();
        assert!(o.status.success());
    }
}

fn entries(path: &Path) -> usize {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    v["keyCredentials"].as_array().unwrap().len()
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.contains(".tmp") || n.ends_with(".lock"))
        .collect()
}

/// A directory with `app.json` (no entries) and one certificate, and the arguments adding it.
fn one_add(tag: &str) -> (TempDir, PathBuf, Vec<String>) {
    let dir = TempDir::new(tag);
    certs(&dir.0, 1);
    let m = dir.path("app.json");
    std::fs::write(&m, MANIFEST).unwrap();
    let args = vec!["manifest".into(), "add".into(), s(&m), "--cert".into(), s(&dir.path("c0.pem"))];
    (dir, m, args)
}

#[test]
#[cfg_attr(not(feature = "fault-injection"), ignore = "needs --features fault-injection (cargo xtask test enables it)")]
fn fault_before_rename_leaves_the_old_manifest_and_a_retry_succeeds() {
    let (dir, m, args) = one_add("crash-fault");
    let out = keycred(&args, &[("KEYCRED_FAULT_BEFORE_RENAME", "1")]);
    assert_eq!(out.status.code(), Some(99), "the fault hook must have fired");
    assert_eq!(std::fs::read_to_string(&m).unwrap(), MANIFEST, "the manifest must be the old file");
    // The crash left its lock file and temporary file, as a real crash would. The OS lock on the
    // lock file died with the process, so the next run does not wait: it writes the entry at
    // once, removes the lock file, and leaves no new leftovers.
    let before = leftovers(&dir.0);
    assert!(before.iter().any(|n| n == "app.json.lock"), "{before:?}");
    // KEYCRED_LOCK_TIMEOUT=0: a lock still held would be refused at once, so success proves
    // the dead editor's lock was not in the way.
    let out = keycred(&args, &[("KEYCRED_LOCK_TIMEOUT", "0")]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(entries(&m), 1);
    let after = leftovers(&dir.0);
    assert!(after.iter().all(|n| before.contains(n) && !n.ends_with(".lock")), "before {before:?} after {after:?}");
}

#[test]
fn processes_killed_mid_write_leave_the_old_or_the_new_file() {
    let dir = TempDir::new("crash-kill");
    certs(&dir.0, 2);
    let m = dir.path("app.json");
    std::fs::write(&m, MANIFEST).unwrap();
    let add =
        |c: &str| -> Vec<String> { vec!["manifest".into(), "add".into(), s(&m), "--cert".into(), s(&dir.path(c))] };
    let rm = |c: &str| -> Vec<String> {
        let tp = keycred(&["show".into(), s(&dir.path(c)), "-o".into(), "json".into()], &[]);
        let v: serde_json::Value = serde_json::from_slice(&tp.stdout).unwrap();
        let t = v.as_array().map(|a| a[0].clone()).unwrap_or(v)["thumbprint"].as_str().unwrap().to_string();
        vec!["manifest".into(), "remove".into(), s(&m), "--thumbprint".into(), t, "--force".into()]
    };
    let (add0, rm0) = (add("c0.pem"), rm("c0.pem"));
    let mut states = std::collections::BTreeSet::new();
    for i in 0..40u64 {
        let args = if entries(&m) == 0 { &add0 } else { &rm0 };
        let mut child =
            command(args, &[]).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
        // Kill at a different moment each round, from before start-up to after the rename.
        std::thread::sleep(Duration::from_micros(500 * (i % 20) * (i % 3 + 1)));
        let _ = child.kill();
        let _ = child.wait();
        let text = std::fs::read_to_string(&m).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("round {i}: partial manifest ({e}):\n{text}"));
        let n = v["keyCredentials"].as_array().unwrap().len();
        assert!(n <= 1, "round {i}: {n} entries");
        states.insert(n);
        // A killed edit may leave its lock file: the next round must go through regardless.
    }
    // Removing the entry again restores the original bytes whenever it was removed.
    if entries(&m) == 1 {
        let out = keycred(&rm0, &[]);
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(std::fs::read_to_string(&m).unwrap(), MANIFEST);
    eprintln!("states seen: {states:?}");
}

#[test]
fn concurrent_adds_never_lose_an_entry() {
    let dir = TempDir::new("crash-concurrent");
    let n = 6;
    certs(&dir.0, n);
    let m = dir.path("app.json");
    std::fs::write(&m, MANIFEST).unwrap();
    let children: Vec<_> = (0..n)
        .map(|i| {
            let args =
                vec!["manifest".into(), "add".into(), s(&m), "--cert".into(), s(&dir.path(&format!("c{i}.pem")))];
            command(&args, &[])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert_eq!(entries(&m), n, "an entry was lost");
    assert!(leftovers(&dir.0).is_empty(), "{:?}", leftovers(&dir.0));
}

#[test]
fn a_held_lock_is_waited_for_then_refused_and_a_bad_timeout_is_named() {
    let (dir, m, args) = one_add("crash-held");
    // Another editor (this test) holds the OS lock.
    let held = std::fs::File::create(dir.path("app.json.lock")).unwrap();
    held.lock().unwrap();
    let out = keycred(&args, &[("KEYCRED_LOCK_TIMEOUT", "0")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("locked by") && err.contains("app.json.lock") && err.contains("nothing was changed"), "{err}");
    assert_eq!(std::fs::read_to_string(&m).unwrap(), MANIFEST);
    assert!(dir.path("app.json.lock").exists(), "the other editor's lock file must stay");

    let out = keycred(&args, &[("KEYCRED_LOCK_TIMEOUT", "ten")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("KEYCRED_LOCK_TIMEOUT=\"ten\" is not a whole number of seconds"), "{err}");
    assert_eq!(std::fs::read_to_string(&m).unwrap(), MANIFEST);

    // Once the other editor is done (file removed, lock released), the edit goes through.
    std::fs::remove_file(dir.path("app.json.lock")).unwrap();
    drop(held);
    let out = keycred(&args, &[("KEYCRED_LOCK_TIMEOUT", "0")]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(entries(&m), 1);
    assert!(leftovers(&dir.0).is_empty(), "{:?}", leftovers(&dir.0));
}
