//! What a new user meets first: `--out-dir` created, `manifest init` and `manifest template`,
//! the client id taken from the manifest, completions and the man page.

use crate::common::{keycred_command, TempDir};
use serde_json::Value;
use std::process::Output;

fn run(t: &TempDir, args: &[&str]) -> Output {
    keycred_command(args, &[]).current_dir(&t.0).output().unwrap()
}

fn ok_json(t: &TempDir, args: &[&str]) -> Value {
    let o = run(t, args);
    assert_eq!(o.status.code(), Some(0), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Bug: `new --out-dir certs` failed with "not a directory" on a fresh machine.
#[cfg(unix)]
#[test]
fn out_dir_is_created_owner_only_when_missing() {
    use std::os::unix::fs::PermissionsExt;
    let t = TempDir::new("first-outdir");
    let v = ok_json(&t, &["new", "--name", "app", "--out-dir", "certs/prod", "-o", "json"]);
    assert_eq!(v["files"]["key"], "certs/prod/app.key");
    for d in ["certs", "certs/prod"] {
        let mode = std::fs::metadata(t.path(d)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{d}");
    }
    assert!(t.path("certs/prod/app.cer").is_file());
    // An existing directory keeps its mode.
    std::fs::create_dir(t.path("open")).unwrap();
    std::fs::set_permissions(t.path("open"), std::fs::Permissions::from_mode(0o755)).unwrap();
    ok_json(&t, &["new", "--name", "app", "--out-dir", "open", "-o", "json"]);
    assert_eq!(std::fs::metadata(t.path("open")).unwrap().permissions().mode() & 0o777, 0o755);
    // Under a file: refused before anything is generated, nothing created.
    std::fs::write(t.path("file"), "x").unwrap();
    let o = run(&t, &["new", "--name", "app", "--out-dir", "file/sub"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("file is not a directory"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
