//! A `fleet rotate` journal is trusted only as far as it can be. A tampered one must never make
//! a run register a key the run did not generate: its certificate name must be a plain file
//! name (the files stay in `OUT_DIR/<appId>/`), a key on disk is adopted only when the journal
//! recorded its thumbprint, a journal another user could have written is refused, and what it
//! says is done is confirmed with Graph before it is reported rotated.

use crate::fleet_support::*;
use serde_json::{json, Value};

/// App 1 of `tenant(2)`: one expiring certificate, so it is rotated.
const APP: &str = "a0000000-0000-4000-8000-000000000001";
const APP_OBJECT: &str = "00000000-0000-4000-8000-000000000001";

/// The first line of a journal of a run against `t`, writing files named `name`.
fn header(t: &FakeTenant, name: &str) -> String {
    json!({"journal": 1, "tenant": TENANT, "graphUrl": t.url, "name": name, "started": "2026-01-01T00:00:00Z"})
        .to_string()
}

/// A key and certificate someone else made, written as `DIR/NAME.key`, `.cer` and `.pem`; returns
/// its thumbprint.
fn plant(dir: &std::path::Path, name: &str) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let c = credential_for_days("planted", 30);
    let (key, cert) = (c.key.exportable().unwrap().to_pem(None).unwrap(), c.cert.to_pem());
    std::fs::write(dir.join(format!("{name}.key")), &key).unwrap();
    std::fs::write(dir.join(format!("{name}.cer")), &cert).unwrap();
    std::fs::write(dir.join(format!("{name}.pem")), format!("{key}{cert}")).unwrap();
    c.cert.thumbprint()
}

/// `fleet rotate --app-id APP -o json` with the journal at `journal`.
fn rotate(t: &FakeTenant, out_dir: &std::path::Path, journal: &std::path::Path) -> std::process::Output {
    let args = [
        fleet_args(t, "rotate"),
        ["--app-id", APP, "--out-dir", out_dir.to_str().unwrap(), "--journal", journal.to_str().unwrap(), "-o", "json"]
            .map(String::from)
            .to_vec(),
    ]
    .concat();
    run_fleet(&args)
}

fn registered(t: &FakeTenant) -> Vec<String> {
    t.app(APP_OBJECT)["keyCredentials"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| keycred::manifest::read_entry(0, e.as_object().unwrap()).sha1())
        .map(|d| keycred::thumbprint::hex_upper(&d))
        .collect()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn outcome(o: &std::process::Output) -> Value {
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(o)));
    v["apps"].as_array().unwrap().iter().find(|a| a["appId"] == APP).unwrap().clone()
}

#[test]
fn a_journal_whose_name_is_a_path_is_refused_and_nothing_is_registered() {
    let t = FakeTenant::start(tenant(2), 999);
    let before = t.apps();
    let dir = TempDir::new("journal-name");
    // The attacker's key where the journal's name points, outside OUT_DIR/<appId>/.
    let evil = dir.path("evil");
    plant(&evil, "k");
    let journal = dir.path("journal.jsonl");
    std::fs::write(&journal, format!("{}\n", header(&t, &evil.join("k").display().to_string()))).unwrap();
    let o = rotate(&t, &dir.path("out"), &journal);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("the journal's certificate name") && stderr(&o).contains("must be a plain file name"),
        "{}",
        stderr(&o)
    );
    assert_eq!(t.apps(), before, "Graph unchanged");
}

#[test]
fn a_key_on_disk_is_adopted_only_when_the_journal_recorded_its_thumbprint() {
    let t = FakeTenant::start(tenant(2), 999);
    let dir = TempDir::new("journal-adopt");
    let out = dir.path("out");
    // A journal with its header only (a resumed run, as far as it says) and a key planted where
    // the run writes its own: a fresh key is made and the planted files replaced.
    let planted = plant(&out.join(APP), "fleet-a");
    let journal = dir.path("journal.jsonl");
    std::fs::write(&journal, format!("{}\n", header(&t, "fleet-a"))).unwrap();
    let o = rotate(&t, &out, &journal);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let rotated = outcome(&o);
    assert_eq!(rotated["result"], "rotated");
    let new = rotated["thumbprint"].as_str().unwrap().to_string();
    assert_ne!(new, planted);
    assert!(registered(&t).contains(&new) && !registered(&t).contains(&planted), "{:?}", registered(&t));
    let on_disk = keycred::cert::load_credential(&out.join(APP).join("fleet-a.pem"), None, None).unwrap();
    assert_eq!(on_disk.cert.thumbprint(), new, "the planted files were replaced by the run's own");

    // A line saying the key was generated, without its thumbprint: not adopted, the app fails.
    let t = FakeTenant::start(tenant(2), 999);
    let before = t.apps();
    let planted = plant(&out.join(APP), "fleet-b");
    let line = json!({"appId": APP, "step": "generated"});
    std::fs::write(&journal, format!("{}\n{line}\n", header(&t, "fleet-b"))).unwrap();
    let o = rotate(&t, &out, &journal);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let failed = outcome(&o);
    assert_eq!((&failed["result"], &failed["step"]), (&json!("failed"), &json!("generate")), "{failed}");
    assert!(failed["reason"].as_str().unwrap().contains("records no thumbprint"), "{failed}");
    assert_eq!(t.apps(), before, "Graph unchanged");
    assert!(!registered(&t).contains(&planted));
}

#[cfg(unix)]
#[test]
fn a_journal_another_user_could_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let t = FakeTenant::start(tenant(2), 999);
    let before = t.apps();
    let dir = TempDir::new("journal-owner");
    let journal = dir.path("journal.jsonl");
    std::fs::write(&journal, format!("{}\n", header(&t, "fleet-c"))).unwrap();
    for mode in [0o664, 0o646] {
        std::fs::set_permissions(&journal, std::fs::Permissions::from_mode(mode)).unwrap();
        let o = rotate(&t, &dir.path("out"), &journal);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(stderr(&o).contains(&format!("writable by its group or others (mode {mode:04o})")), "{}", stderr(&o));
    }
    std::fs::set_permissions(&journal, std::fs::Permissions::from_mode(0o644)).unwrap();
    // SAFETY: geteuid(2) has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        // Given to nobody (uid 65534): only root can do that, so only then is this tested.
        std::os::unix::fs::chown(&journal, Some(65534), None).unwrap();
        let o = rotate(&t, &dir.path("out"), &journal);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(stderr(&o).contains("owned by uid 65534, not by the user running keycred"), "{}", stderr(&o));
    } else {
        crate::common::skipped(
            "a_journal_another_user_could_write_is_refused",
            "the check of a journal owned by another user needs root to chown it",
        );
    }
    assert_eq!(t.apps(), before, "Graph unchanged");
}

#[test]
fn a_done_line_is_confirmed_with_graph_before_the_app_is_reported_rotated() {
    let t = FakeTenant::start(tenant(2), 999);
    let before = t.apps();
    let dir = TempDir::new("journal-done");
    let journal = dir.path("journal.jsonl");
    // "Done" with a certificate Graph does not list, and "done" with none at all.
    let unknown = "0123456789ABCDEF0123456789ABCDEF01234567";
    for line in [json!({"appId": APP, "step": "done", "thumbprint": unknown}), json!({"appId": APP, "step": "done"})] {
        std::fs::write(&journal, format!("{}\n{line}\n", header(&t, "fleet-d"))).unwrap();
        let o = rotate(&t, &dir.path("out"), &journal);
        let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(&o)));
        assert_eq!(v["alreadyRotated"], 0, "{v}");
        let failed = outcome(&o);
        assert_eq!((&failed["result"], &failed["step"]), (&json!("failed"), &json!("confirm")), "{failed}");
        assert!(
            failed["reason"].as_str().unwrap().contains("Graph does not list the certificate it recorded"),
            "{failed}"
        );
        assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
        assert_eq!(t.apps(), before, "Graph unchanged");
    }
}
