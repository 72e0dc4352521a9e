//! `keycred graph rotate` and `keycred fleet rotate` within the tenant's app management policy,
//! against the emulator's Graph serving a 90-day cap on applications created after 2020-01-01:
//! a lifetime over the cap is refused (exit 2, naming the policy and its maximum) before any
//! key is generated; without `--days` the new certificate lasts the cap; an application's own
//! policy (`NAME.policy.json` beside its manifest, served at
//! `/applications/{id}/appManagementPolicies`) wins over the default, as Graph's "Assign
//! appManagementPolicy" reference says; `fleet rotate --dry-run` predicts each refusal. The new
//! certificates' validity is read back with openssl.

use crate::app_policy_cli::{capped_tenant_with, graph_files_as_app, lifetimes, write_app, Tenant};
use crate::emulator_app_policy::POLICY_ID;
use crate::rotation_support::*;

use serde_json::{json, Value};
use std::path::Path;

const NEW_APP: &str = "22222222-2222-4222-8222-222222222222";
const NEW_OBJECT: &str = "bbbbbbbb-2222-4222-8222-222222222222";
const OLD_APP: &str = "11111111-1111-4111-8111-111111111111";
const OLD_OBJECT: &str = "aaaaaaaa-1111-4111-8111-111111111111";
const OWN_POLICY_ID: &str = "5d1e7c3a-8b2f-4a6e-9c0d-1f3b5a7d9e2c";

/// Whether openssl says the certificate at `pem` is still valid `days` days from now.
fn valid_in(pem: &Path, days: i64) -> bool {
    let secs = (days * 86_400).to_string();
    let out = std::process::Command::new(OPENSSL)
        .args(["x509", "-in", pem.to_str().unwrap(), "-noout", "-checkend", &secs])
        .output()
        .unwrap();
    out.status.success()
}

/// Asserts, with openssl, that the certificate at `pem` lasts `days` days (from about now).
fn assert_lasts(pem: &Path, days: i64) {
    assert!(valid_in(pem, days - 1), "{} should be valid {} days from now", pem.display(), days - 1);
    assert!(!valid_in(pem, days + 1), "{} should have ended {} days from now", pem.display(), days + 1);
}

fn graph_rotate(t: &Tenant, name: &str, extra: &[&str]) -> Out {
    graph_files_as_app(t, "rotate", name, extra)
}

#[test]
fn graph_rotate_over_the_cap_exits_2_before_generating_and_without_days_lasts_the_cap() {
    let t = capped_tenant_with("policy-rotate", &["Policy.Read.All"], &[]);
    let before = std::fs::read(&t.manifest).unwrap();
    let out = graph_rotate(&t, "long", &["--days", "365"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains(POLICY_ID) && out.stderr.contains("at most 90 days"), "{out:?}");
    assert!(out.stderr.contains("--days 90"), "the hint names the flag that fixes it: {out:?}");
    assert!(!Path::new(&t.dir.s("out")).join("long.key").exists(), "no key generated");
    assert_eq!(std::fs::read(&t.manifest).unwrap(), before, "the application is unchanged");

    let out = graph_rotate(&t, "capped", &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(lifetimes(&t)[1], 90);
    assert_lasts(&Path::new(&t.dir.s("out")).join("capped.cer"), 90);
}

#[test]
fn graph_rotate_without_policy_read_all_stops_unless_told_to_go_on() {
    let t = capped_tenant_with("policy-rotate-403", &[], &[]);
    let before = std::fs::read(&t.manifest).unwrap();
    let out = graph_rotate(&t, "refused", &["--days", "60"]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("Policy.Read.All") && out.stderr.contains("--policy-unknown-ok"), "{out:?}");
    assert_eq!(std::fs::read(&t.manifest).unwrap(), before);
    assert!(!Path::new(&t.dir.s("out")).join("refused.key").exists());
    let out = graph_rotate(&t, "unchecked", &["--days", "60", "--policy-unknown-ok"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("warning"), "{out:?}");
}

/// A tenant capped at 90 days (for applications created after 2020-01-01) holding, beside the
/// automation app, one application created in 2021 and one created in 2019, each with a
/// certificate ending in 10 days. With `own_policy`, the 2019 one has its own 60-day policy.
fn fleet_tenant(tag: &str, own_policy: bool) -> (Tenant, TempDir) {
    let apps = TempDir::new(&format!("{tag}-apps"));
    let expiring = credential("expiring", 10);
    let (new, old) = (apps.path("new.json"), apps.path("old.json"));
    write_app(&new, NEW_OBJECT, NEW_APP, "2021-06-01T00:00:00Z", &[entry(&expiring.cert)]);
    write_app(&old, OLD_OBJECT, OLD_APP, "2019-06-01T00:00:00Z", &[entry(&expiring.cert)]);
    if own_policy {
        let p = json!({"id": OWN_POLICY_ID, "displayName": "Legacy apps: 60 days", "isEnabled": true,
            "restrictions": {"passwordCredentials": [], "keyCredentials": [
                {"restrictionType": "asymmetricKeyLifetime", "maxLifetime": "P60D", "state": "enabled"}]}});
        std::fs::write(apps.path("old.policy.json"), serde_json::to_vec_pretty(&p).unwrap()).unwrap();
    }
    let roles = ["Application.ReadWrite.All", "Policy.Read.All"];
    (capped_tenant_with(tag, &roles, &[new, old]), apps)
}

fn fleet_rotate(t: &Tenant, extra: &[&str]) -> Out {
    let base = t.emu.info().base_url();
    let out_dir = t.dir.s("fleet");
    let mut args = vec![
        "fleet",
        "rotate",
        "--tenant",
        TENANT,
        "--authority",
        base,
        "--graph-url",
        base,
        "--client-id",
        APP_ID,
        "--cert",
        &t.pem,
        "--app-id",
        NEW_APP,
        "--app-id",
        OLD_APP,
        "--out-dir",
        &out_dir,
        "-o",
        "json",
    ];
    args.extend_from_slice(extra);
    cli(&args, &[])
}

fn outcome(v: &Value, app_id: &str) -> Value {
    v["apps"].as_array().unwrap().iter().find(|o| o["appId"] == app_id).cloned().unwrap_or(Value::Null)
}

/// The days each certificate registered on the application at `manifest` lasts.
fn days_of(manifest: &Path) -> Vec<i64> {
    let date = |v: &Value| keycred::dates::parse(v.as_str().unwrap(), "date").unwrap();
    entries_of(manifest).iter().map(|k| (date(&k["endDateTime"]) - date(&k["startDateTime"])).whole_days()).collect()
}

#[test]
fn fleet_rotate_refuses_apps_over_their_cap_before_generating_and_dry_run_predicts_it() {
    let (t, apps) = fleet_tenant("policy-fleet", false);
    let (new_manifest, old_manifest) = (apps.path("new.json"), apps.path("old.json"));

    // The dry run predicts: the 2021 application would be refused, the 2019 one is grandfathered.
    let out = fleet_rotate(&t, &["--days", "365", "--dry-run"]);
    assert_eq!(out.code, 0, "{out:?}");
    let v = out.json();
    let new = outcome(&v, NEW_APP);
    assert_eq!(new["result"], "refused", "{v}");
    let why = new["reason"].as_str().unwrap();
    assert!(why.starts_with("would be refused") && why.contains(POLICY_ID) && why.contains("at most 90 days"), "{why}");
    assert_eq!(outcome(&v, OLD_APP)["result"], "planned", "{v}");
    assert_eq!(
        (v["refused"].as_u64(), v["planned"].as_u64(), v["policyChecked"].as_bool()),
        (Some(1), Some(1), Some(true))
    );

    // The run refuses the same application before generating its key, and rotates the other.
    let before = std::fs::read(&new_manifest).unwrap();
    let out = fleet_rotate(&t, &["--days", "365"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("at most 90 days"), "{out:?}");
    let v = out.json();
    let new = outcome(&v, NEW_APP);
    assert_eq!((&new["result"], &new["step"]), (&json!("refused"), &json!("policy")), "{v}");
    assert!(!Path::new(&t.dir.s("fleet")).join(NEW_APP).exists(), "no key generated for the refused app");
    assert_eq!(std::fs::read(&new_manifest).unwrap(), before);
    assert_eq!(outcome(&v, OLD_APP)["result"], "rotated", "{v}");
    assert_eq!(days_of(&old_manifest)[1], 365);

    // Without --days, the refused application gets a certificate lasting its cap.
    let out = fleet_rotate(&t, &[]);
    assert_eq!(out.code, 0, "{out:?}");
    let v = out.json();
    assert_eq!(outcome(&v, NEW_APP)["result"], "rotated", "{v}");
    assert_eq!(days_of(&new_manifest)[1], 90);
    let bundle = outcome(&v, NEW_APP)["bundle"].as_str().unwrap().to_string();
    assert_lasts(Path::new(&bundle), 90);
}

#[test]
fn fleet_rotate_follows_an_applications_own_policy_over_the_tenant_default() {
    let (t, apps) = fleet_tenant("policy-fleet-own", true);
    let out = fleet_rotate(&t, &["--days", "365", "--dry-run"]);
    assert_eq!(out.code, 0, "{out:?}");
    let v = out.json();
    // The 2019 application is grandfathered by the default, but its own policy caps it.
    let old = outcome(&v, OLD_APP);
    assert_eq!(old["result"], "refused", "{v}");
    let why = old["reason"].as_str().unwrap();
    assert!(why.contains(OWN_POLICY_ID) && why.contains("at most 60 days"), "{why}");
    assert!(outcome(&v, NEW_APP)["reason"].as_str().unwrap().contains(POLICY_ID), "{v}");

    let out = fleet_rotate(&t, &[]);
    assert_eq!(out.code, 0, "{out:?}");
    let v = out.json();
    assert_eq!((days_of(&apps.path("old.json"))[1], days_of(&apps.path("new.json"))[1]), (60, 90), "{v}");
}

#[test]
fn fleet_rotate_reads_the_tenant_policy_once_for_the_whole_run() {
    use crate::fleet_support::{fleet_args, run_fleet, stdout_json, tenant, FakeTenant};
    let t = FakeTenant::start(tenant(10), 4);
    t.state.lock().unwrap().policy = Some(json!({"id": POLICY_ID, "isEnabled": true, "applicationRestrictions": {
        "passwordCredentials": [], "keyCredentials": [{"restrictionType": "asymmetricKeyLifetime",
            "maxLifetime": "P90D", "state": "enabled"}]}}));
    let dir = TempDir::new("policy-fleet-once");
    let mut args = fleet_args(&t, "rotate");
    args.extend(["--expiring-within", "30d", "--out-dir", &dir.s("out"), "-o", "json"].map(String::from));
    let out = run_fleet(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v = stdout_json(&out);
    let rotated: Vec<&Value> = v["apps"].as_array().unwrap().iter().filter(|o| o["result"] == "rotated").collect();
    assert!(rotated.len() >= 4, "{v}");
    for o in &rotated {
        assert_lasts(Path::new(o["bundle"].as_str().unwrap()), 90);
    }
    let log = t.log();
    let count = |p: &str| log.iter().filter(|l| l.path == p).count();
    assert_eq!(count("/v1.0/policies/defaultAppManagementPolicy"), 1, "read once, not per application");
    assert_eq!(count("/v1.0/policies/appManagementPolicies"), 1);
    // No per-app policy exists: no application's assignment is read.
    assert!(!log
        .iter()
        .any(|l| l.path.ends_with("/appManagementPolicies") && l.path.starts_with("/v1.0/applications/")));
}
