//! Directories that hold private keys are private whatever the umask, and keycred never writes
//! keys where someone else could plant or swap them: every directory it creates is 0700 (under
//! `umask 000` too: `emulate --generate-tenant --out D` and `D/keys`, `demo --keep D`, the
//! `--tls` CA directory, `fleet rotate`'s OUT_DIR and `OUT_DIR/<appId>`), a symbolic link
//! planted at `OUT_DIR/<appId>` is refused, and so is an existing output directory writable by
//! its group or others.
#![cfg(unix)]

use crate::fleet_support::*;
use serde_json::Value;
use std::io::BufRead;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// Runs the command under `umask 000`, the setting that made keycred's directories 0777.
fn umask_000(mut c: Command) -> Command {
    // SAFETY: umask(2) is async-signal-safe, and nothing else runs in the child before exec.
    unsafe {
        c.pre_exec(|| {
            libc::umask(0);
            Ok(())
        });
    }
    c
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).permissions().mode() & 0o7777
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn every_directory_keycred_creates_is_0700_under_umask_000() {
    let dir = TempDir::new("private-dirs");
    let tenant_dir = dir.path("tenant");
    let o = umask_000(keycred_command(
        &["emulate", "--generate-tenant", "3", "--out", tenant_dir.to_str().unwrap(), "--with-keys"],
        &[],
    ))
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!((mode(&tenant_dir), mode(&tenant_dir.join("keys"))), (0o700, 0o700));
    let key = std::fs::read_dir(tenant_dir.join("keys")).unwrap().next().unwrap().unwrap().path();
    assert_eq!(mode(&key), 0o600, "{}", key.display());

    let kept = dir.path("demo/kept");
    let o = umask_000(keycred_command(&["demo", "--keep", kept.to_str().unwrap()], &[])).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!((mode(&kept), mode(&dir.path("demo"))), (0o700, 0o700), "--keep and its missing parent");

    // `--tls`: the CA file's directory, while the emulator runs.
    let manifest = dir.path("app.json");
    crate::emulator_support::write_manifest(&manifest, vec![]);
    let mut c = keycred_command(&["-o", "json", "emulate", "--tls", "--manifest", manifest.to_str().unwrap()], &[]);
    c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = umask_000(c).spawn().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let info: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    let ca = std::path::PathBuf::from(info["caFile"].as_str().unwrap());
    let ca_dir_mode = mode(ca.parent().unwrap());
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(ca_dir_mode, 0o700, "{}", ca.display());

    let t = FakeTenant::start(tenant(2), 999);
    let out = dir.path("rotation/tonight");
    let mut args = fleet_args(&t, "rotate");
    args.extend(
        ["--app-id", "a0000000-0000-4000-8000-000000000001", "--out-dir", out.to_str().unwrap()].map(String::from),
    );
    let o = umask_000(keycred_command(&args, &[("FLEET_GRAPH_TOKEN", GRAPH_TOKEN)])).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let app_dir = out.join("a0000000-0000-4000-8000-000000000001");
    assert_eq!([mode(&dir.path("rotation")), mode(&out), mode(&app_dir)], [0o700; 3]);
}

#[test]
fn fleet_refuses_a_planted_link_and_a_shared_output_directory() {
    let t = FakeTenant::start(tenant(2), 999);
    let before = t.apps();
    let app = "a0000000-0000-4000-8000-000000000001";
    let dir = TempDir::new("private-refused");
    let rotate = |out: &Path| {
        let mut args = fleet_args(&t, "rotate");
        args.extend(["--app-id", app, "--out-dir", out.to_str().unwrap(), "-o", "json"].map(String::from));
        run_fleet(&args)
    };
    // An existing OUT_DIR anyone may write to: refused before anything is read or written.
    let shared = dir.path("shared");
    std::fs::create_dir(&shared).unwrap();
    for m in [0o777, 0o775, 0o1777] {
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(m)).unwrap();
        let o = rotate(&shared);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(stderr(&o).contains(&format!("writable by its group or others (mode {m:04o})")), "{}", stderr(&o));
        assert_eq!(std::fs::read_dir(&shared).unwrap().count(), 0, "nothing written in it");
    }
    // `OUT_DIR/<appId>` planted as a link to a directory of the attacker's: the app fails,
    // nothing is written there, nothing is registered.
    let out = dir.path("out");
    let theirs = dir.path("theirs");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::create_dir_all(&theirs).unwrap();
    std::os::unix::fs::symlink(&theirs, out.join(app)).unwrap();
    let o = rotate(&out);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let reason = v["apps"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("the application's directory") && reason.contains("a symbolic link"), "{reason}");
    assert_eq!(std::fs::read_dir(&theirs).unwrap().count(), 0, "nothing written through the link");
    assert_eq!(t.apps(), before, "Graph unchanged");
    // `demo --keep` into a directory others may write to: refused.
    let kept = dir.path("kept");
    std::fs::create_dir(&kept).unwrap();
    std::fs::set_permissions(&kept, std::fs::Permissions::from_mode(0o777)).unwrap();
    let o = keycred_command(&["demo", "--keep", kept.to_str().unwrap()], &[]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--keep") && stderr(&o).contains("writable by its group or others"), "{}", stderr(&o));
    assert_eq!(std::fs::read_dir(&kept).unwrap().count(), 0);
}
