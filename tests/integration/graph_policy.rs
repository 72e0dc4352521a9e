//! `keycred graph add` within the application's app management policy, against the emulator's
//! Graph serving a 90-day cap: a longer certificate is refused (exit 2) before any key is
//! generated, file written or request changing the application sent; a shorter one is added; the
//! default lifetime shrinks to the cap; without Policy.Read.All the policy cannot be read and
//! that is an error unless `--policy-unknown-ok`.
//!
//! Graph's side of the cap (its 400 `CredentialInvalidLifetimeAsPerAppPolicy` on addKey) is
//! tested in `emulator_app_policy`; here keycred must refuse before Graph has to.

use crate::rotation_support as support;

use keycred::emulator::{start_blocking, BlockingEmulator};
use serde_json::{json, Value};
use support::*;

const POLICY_ID: &str = "2c9f8e0a-5d7b-4c1e-9a3f-6b8d0e2f4a1c";

fn capped_policy() -> (Value, keycred::policy::Policy) {
    let body = json!({
        "id": POLICY_ID,
        "displayName": "Certificates at most 90 days",
        "isEnabled": true,
        "applicationRestrictions": {"keyCredentials": [{"restrictionType": "asymmetricKeyLifetime",
            "maxLifetime": "P90D", "restrictForAppsCreatedAfterDateTime": "2020-01-01T00:00:00Z", "state": "enabled"}]}
    });
    let p = keycred::policy::Policy::from_json(&body, "test").unwrap();
    (body, p)
}

struct Tenant {
    dir: TempDir,
    pem: String,
    manifest: std::path::PathBuf,
    emu: BlockingEmulator,
}

/// An application created in 2024 (after the restriction's date) with one certificate, in a
/// tenant capped at 90 days; the app holds `roles` on Microsoft Graph.
fn capped_tenant(tag: &str, roles: &[&str]) -> Tenant {
    let dir = TempDir::new(tag);
    let a = credential("policy A", 30);
    let pem = write_cred(&dir, "a", &a);
    let manifest = dir.path("app.json");
    write_manifest(&manifest, OBJECT_ID, APP_ID, &[entry(&a.cert)]);
    let mut m: Value = serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    m["createdDateTime"] = json!("2024-01-01T00:00:00Z");
    std::fs::write(&manifest, serde_json::to_string_pretty(&m).unwrap()).unwrap();
    let grants = vec![(GRAPH.to_string(), roles.iter().map(|r| r.to_string()).collect())];
    let mut cfg = emulator_config(vec![manifest.clone()], grants);
    cfg.app_policy = Some(capped_policy());
    let emu = start_blocking(cfg).unwrap();
    Tenant { dir, pem, manifest, emu }
}

fn add(t: &Tenant, name: &str, extra: &[&str]) -> Out {
    let base = t.emu.base_url();
    let out_dir = t.dir.s("out");
    let mut args = vec![
        "graph", "add", "--app-id", APP_ID, "--tenant", TENANT, "--authority", base, "--graph-url", base, "--cert",
        &t.pem, "--name", name, "--out-dir", &out_dir, "-o", "json",
    ];
    args.extend_from_slice(extra);
    cli(&args, &[])
}

/// The registered certificates' lifetimes in days, from the application as Graph stores it.
fn lifetimes(t: &Tenant) -> Vec<i64> {
    let m: Value = serde_json::from_slice(&std::fs::read(&t.manifest).unwrap()).unwrap();
    let date = |v: &Value| keycred::dates::parse(v.as_str().unwrap(), "date").unwrap();
    let kcs = m["keyCredentials"].as_array().unwrap();
    kcs.iter().map(|k| (date(&k["endDateTime"]) - date(&k["startDateTime"])).whole_days()).collect()
}

#[test]
fn graph_add_over_the_policy_cap_exits_2_before_generating_and_changes_nothing() {
    let t = capped_tenant("policy-over", &["Policy.Read.All"]);
    let before = std::fs::read(&t.manifest).unwrap();
    let out = add(&t, "long", &["--days", "365"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains(POLICY_ID) && out.stderr.contains("at most 90 days"), "{out:?}");
    assert!(!std::path::Path::new(&t.dir.s("out")).join("long.key").exists(), "no key written");
    assert_eq!(std::fs::read(&t.manifest).unwrap(), before, "the application is unchanged");

    let out = add(&t, "short", &["--days", "60"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(std::path::Path::new(&t.dir.s("out")).join("short.key").exists());
    assert_eq!(lifetimes(&t)[1], 60);
}

#[test]
fn graph_add_without_days_lasts_the_policy_cap_when_shorter_than_a_year() {
    let t = capped_tenant("policy-default", &["Policy.Read.All"]);
    let out = add(&t, "default", &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(lifetimes(&t)[1], 90);
}

#[test]
fn graph_add_without_policy_read_all_names_the_permission_unless_told_to_go_on() {
    let t = capped_tenant("policy-403", &[]);
    let before = std::fs::read(&t.manifest).unwrap();
    let out = add(&t, "refused", &["--days", "60"]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("Policy.Read.All") && out.stderr.contains("--policy-unknown-ok"), "{out:?}");
    assert_eq!(std::fs::read(&t.manifest).unwrap(), before);
    assert!(!std::path::Path::new(&t.dir.s("out")).join("refused.key").exists());

    let out = add(&t, "unchecked", &["--days", "60", "--policy-unknown-ok"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("warning") && out.stderr.contains("Policy.Read.All"), "{out:?}");
    assert_eq!(lifetimes(&t)[1], 60);
}
