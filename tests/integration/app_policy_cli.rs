//! The CLI within the tenant's app management policy, against the emulator's Graph serving a
//! 90-day cap that applies to applications created after 2020-01-01. `keycred graph add`: a longer certificate is refused (exit 2) before any key is
//! generated, file written or request changing the application sent; a shorter one is added; the
//! default lifetime shrinks to the cap; without Policy.Read.All the policy cannot be read and
//! that is an error unless `--policy-unknown-ok`. `keycred fleet audit` judges each credential
//! against the policy: too long on an application created before the restriction's date is
//! `grandfathered` (Graph does not restrict such applications: `restrictForAppsCreatedAfterDateTime`
//! in Microsoft's appManagementConfiguration reference), on a newer one `violates`.
//!
//! Graph's side of the cap (its 400 `CredentialInvalidLifetimeAsPerAppPolicy` on addKey) is
//! tested in `emulator_app_policy`; here keycred must refuse before Graph has to.

use crate::emulator_app_policy::{capped_policy, POLICY_ID};
use crate::rotation_support as support;

use keycred::emulator::{start_blocking, BlockingEmulator};
use serde_json::{json, Value};
use support::*;

pub(crate) struct Tenant {
    pub(crate) dir: TempDir,
    pub(crate) pem: String,
    pub(crate) manifest: std::path::PathBuf,
    pub(crate) emu: BlockingEmulator,
}

/// Writes an application created at `created` with these certificates.
pub(crate) fn write_app(path: &std::path::Path, object_id: &str, app_id: &str, created: &str, entries: &[Value]) {
    write_manifest(path, object_id, app_id, entries);
    let mut m: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    m["createdDateTime"] = json!(created);
    std::fs::write(path, serde_json::to_string_pretty(&m).unwrap()).unwrap();
}

/// An application created in 2024 (after the restriction's date) with one certificate, in a
/// tenant capped at 90 days, with `others` applications beside it; the app holds `roles` on
/// Microsoft Graph.
pub(crate) fn capped_tenant_with(tag: &str, roles: &[&str], others: &[std::path::PathBuf]) -> Tenant {
    let dir = TempDir::new(tag);
    let a = credential("policy A", 30);
    let pem = write_cred(&dir, "a", &a);
    let manifest = dir.path("app.json");
    write_app(&manifest, OBJECT_ID, APP_ID, "2024-01-01T00:00:00Z", &[entry(&a.cert)]);
    let grants = vec![(GRAPH.to_string(), roles.iter().map(|r| r.to_string()).collect())];
    let mut manifests = vec![manifest.clone()];
    manifests.extend_from_slice(others);
    let mut cfg = emulator_config(manifests, grants);
    cfg.app_policy = Some(capped_policy());
    let emu = start_blocking(cfg).unwrap();
    Tenant { dir, pem, manifest, emu }
}

fn capped_tenant(tag: &str, roles: &[&str]) -> Tenant {
    capped_tenant_with(tag, roles, &[])
}

fn add(t: &Tenant, name: &str, extra: &[&str]) -> Out {
    graph_files_as_app(t, "add", name, extra)
}

/// `keycred graph VERB` of the tenant's application, its files named `name` under `out`.
pub(crate) fn graph_files_as_app(t: &Tenant, verb: &str, name: &str, extra: &[&str]) -> Out {
    let out_dir = t.dir.s("out");
    let mut args = vec!["--name", name, "--out-dir", &out_dir];
    args.extend_from_slice(extra);
    graph_as_app(&[verb], t.emu.info().base_url(), &t.pem, &args)
}

/// The registered certificates' lifetimes in days, from the application as Graph stores it.
pub(crate) fn lifetimes(t: &Tenant) -> Vec<i64> {
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
fn graph_add_of_an_existing_certificate_longer_than_the_cap_is_refused_before_sending() {
    let t = capped_tenant("policy-existing", &["Policy.Read.All"]);
    let before = std::fs::read(&t.manifest).unwrap();
    let year = credential("a year", 365);
    write_cred(&t.dir, "year", &year);
    let base = t.emu.info().base_url();
    let cer = t.dir.s("year.cer");
    let args = [
        "graph",
        "add",
        "--app-id",
        APP_ID,
        "--tenant",
        TENANT,
        "--authority",
        base,
        "--graph-url",
        base,
        "--cert",
        &t.pem,
        "--new-cert",
        &cer,
    ];
    let out = cli(&args, &[]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("year.cer") && out.stderr.contains("at most 90 days"), "{out:?}");
    assert_eq!(std::fs::read(&t.manifest).unwrap(), before);
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

/// `keycred fleet audit -o FORMAT`, signed in as the tenant's application.
fn audit(t: &Tenant, format: &str) -> Out {
    let base = t.emu.info().base_url();
    let args = [
        "fleet",
        "audit",
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
        "-o",
        format,
    ];
    let out = cli(&args, &[]);
    assert_eq!(out.code, 0, "{out:?}");
    out
}

#[test]
fn fleet_audit_flags_a_two_year_certificate_grandfathered_on_an_old_app_and_violating_on_a_new_one() {
    let apps = TempDir::new("policy-audit-apps");
    let long = credential("two years", 730);
    let (old_app, new_app) = ("11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222");
    let (old, new) = (apps.path("old.json"), apps.path("new.json"));
    write_app(&old, "aaaaaaaa-1111-4111-8111-111111111111", old_app, "2019-06-01T00:00:00Z", &[entry(&long.cert)]);
    write_app(&new, "bbbbbbbb-2222-4222-8222-222222222222", new_app, "2021-06-01T00:00:00Z", &[entry(&long.cert)]);
    let t = capped_tenant_with("policy-audit", &["Application.Read.All", "Policy.Read.All"], &[old, new]);
    let v = audit(&t, "json").json();
    let policy_of = |app: &str| {
        let rows = v["credentials"].as_array().unwrap();
        rows.iter().find(|r| r["appId"] == app).unwrap()["policy"].clone()
    };
    assert_eq!(policy_of(old_app), "grandfathered");
    assert_eq!(policy_of(new_app), "violates");
    // The automation's own 30-day certificate is within the cap.
    assert_eq!(policy_of(APP_ID), "ok");
    let csv = audit(&t, "csv").stdout;
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = header.iter().position(|h| *h == "policy").unwrap();
    let cell = |app: &str| csv.lines().find(|l| l.contains(app)).unwrap().split(',').nth(col).unwrap().to_string();
    assert_eq!((cell(old_app), cell(new_app)), ("grandfathered".to_string(), "violates".to_string()));
    let text = audit(&t, "text").stdout;
    let line = text.lines().find(|l| l.starts_with(new_app)).unwrap();
    assert!(line.contains("violates"), "{text}");
}

#[test]
fn fleet_audit_leaves_the_policy_column_empty_when_the_policy_cannot_be_read() {
    let t = capped_tenant("policy-audit-403", &["Application.Read.All"]);
    let out = audit(&t, "json");
    let row = out.json()["credentials"][0].clone();
    assert_eq!((row.as_object().unwrap().contains_key("policy"), &row["policy"]), (true, &Value::Null), "{row}");
}

#[test]
fn graph_add_refuses_self_signed_generation_under_a_trusted_ca_restriction_and_takes_a_ca_issued_certificate() {
    let t = capped_tenant("policy-trusted-ca", &["Policy.Read.All"]);
    // The application's own policy (beside its manifest) wins over the tenant's 90-day cap.
    let own = json!({"id": "trusted-ca", "displayName": "CA-issued only", "isEnabled": true, "restrictions": {
        "keyCredentials": [{"restrictionType": "trustedCertificateAuthority", "state": "enabled",
            "certificateBasedApplicationConfigurationIds": ["6b2b4c8e-0f1a-4e7b-9d3c-2a5f8e1b7c40"]}]}});
    std::fs::write(t.manifest.with_file_name("app.policy.json"), own.to_string()).unwrap();
    let before = std::fs::read(&t.manifest).unwrap();
    let out = add(&t, "self-signed", &["--days", "30"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("trusted certificate authority") && out.stderr.contains("--new-cert"), "{out:?}");
    assert!(!std::path::Path::new(&t.dir.s("out")).join("self-signed.key").exists(), "no key generated");
    assert_eq!(std::fs::read(&t.manifest).unwrap(), before);

    // A certificate openssl's CA issued, valid a year: the own policy has no lifetime cap.
    openssl_ca_and_leaf(&t.dir.0, ("ca", "/CN=Test Issuing CA"), ("leaf", "/CN=ca-issued"), 365);
    let base = t.emu.info().base_url();
    let leaf = t.dir.s("leaf.pem");
    let args = [
        "graph",
        "add",
        "--app-id",
        APP_ID,
        "--tenant",
        TENANT,
        "--authority",
        base,
        "--graph-url",
        base,
        "--cert",
        &t.pem,
        "--new-cert",
        &leaf,
    ];
    let out = cli(&args, &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(lifetimes(&t).len(), 2);
}
