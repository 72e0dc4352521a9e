//! `keycred graph permission add|remove|list` against the emulator's Graph: the PATCH of
//! `requiredResourceAccess` lands in the application (the manifest file, every other byte kept),
//! is refused without a write permission, and a newly consented role reaches the app's tokens.

use crate::rotation_support as support;

use serde_json::Value;
use support::*;

const O365_APP: &str = "c5393580-f805-4401-95e8-94b7a6ef2fc2";

fn permission(sub: &str, base: &str, pem: &str, extra: &[&str]) -> Out {
    graph_as_app(&["permission", sub], base, pem, extra)
}

#[test]
fn graph_permission_add_and_remove_patch_required_resource_access() {
    let dir = TempDir::new("graph-perm");
    let a = credential("graph perm A", 365);
    let pem = write_cred(&dir, "a", &a);
    let manifest = dir.path("app.json");
    let lines = write_manifest(&manifest, OBJECT_ID, APP_ID, &[entry(&a.cert)]);
    let emu = emulator(&[&manifest], &[(GRAPH, &["Application.ReadWrite.All"])], false);
    let base = emu.info().base_url();

    let out = permission("add", base, &pem, &["--api", "office365", "--role", "ActivityFeed.Read"]);
    assert_eq!(out.code, 0, "{out:?}");
    let rows = out.json();
    let row = rows.as_array().unwrap().iter().find(|r| r["resourceAppId"] == O365_APP).unwrap();
    assert_eq!(
        (row["name"].as_str(), row["id"].as_str()),
        (Some("ActivityFeed.Read"), Some("594c1fb6-4f81-4475-ae41-0c394909246c"))
    );
    // Stored in the application: the manifest's requiredResourceAccess, its entries untouched.
    let m: Value = serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    let block =
        m["requiredResourceAccess"].as_array().unwrap().iter().find(|b| b["resourceAppId"] == O365_APP).unwrap();
    assert_eq!(block["resourceAccess"][0]["type"], "Role");
    assert!(std::fs::read_to_string(&manifest).unwrap().contains(&lines[0]));
    let listed = permission("list", base, &pem, &[]);
    assert_eq!(listed.json(), rows);

    let out = permission("remove", base, &pem, &["--api", O365_APP, "--role", "ActivityFeed.Read"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.json().as_array().unwrap().iter().all(|r| r["resourceAppId"] != O365_APP));
    // Removing what is not there: refused, nothing sent.
    let out = permission("remove", base, &pem, &["--api", O365_APP, "--role", "ActivityFeed.Read"]);
    assert_eq!(out.code, 2, "{out:?}");
}

#[test]
fn graph_permission_add_without_a_write_permission_is_refused_and_changes_nothing() {
    let dir = TempDir::new("graph-perm-403");
    let a = credential("graph perm B", 365);
    let pem = write_cred(&dir, "a", &a);
    let manifest = dir.path("app.json");
    write_manifest(&manifest, OBJECT_ID, APP_ID, &[entry(&a.cert)]);
    let emu = emulator(&[&manifest], &[], false);
    let before = std::fs::read(&manifest).unwrap();
    let out = permission("add", emu.info().base_url(), &pem, &["--api", "office365", "--role", "ActivityFeed.Read"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("403"), "{}", out.stderr);
    assert_eq!(std::fs::read(&manifest).unwrap(), before);
}
