//! Symbolic links: a manifest edited through a link updates the link's target and keeps the
//! link; a key written over a planted link replaces the link and never writes where it points.

use crate::common;

use common::*;
use std::os::unix::fs::{symlink, PermissionsExt};

const MANIFEST: &str = include_str!("../../templates/manifest-ms-graph.json");

#[test]
fn a_linked_manifest_is_edited_at_its_target() {
    let d = TempDir::new("links-manifest");
    std::fs::create_dir(d.path("shared")).unwrap();
    let target = d.path("shared/app.json");
    std::fs::write(&target, MANIFEST).unwrap();
    let link = d.path("app.json");
    symlink(&target, &link).unwrap();
    let out_dir = d.0.to_str().unwrap();
    let o = keycred_command(&["new", "--name", "c", "--out-dir", out_dir], &[]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let cer = d.path("c.cer");
    let o = keycred_command(
        &["manifest", "add", link.to_str().unwrap(), "--cert", cer.to_str().unwrap(), "-o", "json"],
        &[],
    )
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let added: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link stays a link");
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&target).unwrap()).unwrap();
    assert_eq!(doc["keyCredentials"].as_array().unwrap().last().unwrap()["keyId"], added["keyId"]);
    let names: Vec<String> =
        std::fs::read_dir(d.path("shared")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(names, ["app.json"], "no lock or temporary file left");
}

#[test]
fn a_key_is_never_written_through_a_planted_link() {
    let d = TempDir::new("links-key");
    let victim = d.path("victim.txt");
    std::fs::write(&victim, "precious\n").unwrap();
    symlink(&victim, d.path("app.key")).unwrap();
    let out_dir = d.0.to_str().unwrap();
    // Without --force the existing name is refused...
    let o = keycred_command(&["new", "--name", "app", "--out-dir", out_dir], &[]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("app.key"));
    // ...and with it the link itself is replaced by the key file.
    let o = keycred_command(&["new", "--name", "app", "--out-dir", out_dir, "--force"], &[]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    let meta = std::fs::symlink_metadata(d.path("app.key")).unwrap();
    assert!(meta.file_type().is_file());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert!(std::fs::read_to_string(d.path("app.key")).unwrap().starts_with("-----BEGIN PRIVATE KEY-----"));
}
