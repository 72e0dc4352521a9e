//! `keycred fleet` against the emulator's Graph and a tenant made by `emulate --generate-tenant`:
//! the audit equals the generator's own ground truth (`ground-truth.jsonl`, written by code that
//! shares nothing with the audit's reading), and a rotation (phase 1) then a retirement (phase 2)
//! leave no expiring or expired certificate behind while every new one signs in.

use crate::common::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;

const GRAPH: &str = "https://graph.microsoft.com";

fn fleet(g: &Generated, cmd: &str, extra: &[&str]) -> std::process::Output {
    let base = g.emu.info().base_url().to_string();
    let mut args: Vec<&str> = vec![
        "fleet",
        cmd,
        "--tenant",
        TENANT,
        "--authority",
        &base,
        "--graph-url",
        &base,
        "--client-id",
        &g.automation,
        "--cert",
        &g.bundle,
    ];
    args.extend_from_slice(extra);
    keycred_command(&args, &[]).output().unwrap()
}

fn json_of(o: &std::process::Output) -> Value {
    assert!(o.status.success() || o.status.code() == Some(4), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)))
}

/// Counts of (objectType, appId, kind, status), the ground truth's and the audit's.
type Counts = BTreeMap<(String, String, String, String), usize>;

fn key(object_type: &str, r: &Value) -> (String, String, String, String) {
    let s = |k: &str| r[k].as_str().unwrap().to_string();
    (object_type.to_string(), s("appId"), s("kind"), s("status"))
}

#[test]
fn audit_of_a_generated_tenant_equals_its_ground_truth() {
    let g = generated(1100, "fleet-emu-audit");
    let out = fleet(&g, "audit", &["--include-service-principals", "-o", "json"]);
    let v = json_of(&out);
    let mut want = Counts::new();
    for t in &g.truth {
        let ot = if t["servicePrincipal"] == true { "servicePrincipal" } else { "application" };
        *want.entry(key(ot, t)).or_default() += 1;
    }
    let mut got = Counts::new();
    for r in v["credentials"].as_array().unwrap() {
        *got.entry(key(r["objectType"].as_str().unwrap(), r)).or_default() += 1;
    }
    assert_eq!(got.len(), want.len());
    for (k, n) in &want {
        assert_eq!(got.get(k), Some(n), "{k:?}");
    }
    assert_eq!(got, want);
    // Over 999 applications: two pages of $top=999 (then the service principals' own pages).
    assert_eq!(v["summary"]["applications"], 1100);
    let sp_pages = v["summary"]["servicePrincipals"].as_u64().unwrap().div_ceil(999).max(1);
    assert_eq!(v["summary"]["pages"], 2 + sp_pages, "{}", v["summary"]);
    // Application credentials by keyId too: the same entries, not just the same counts.
    let ids = |rows: &mut dyn Iterator<Item = (String, String)>| rows.collect::<std::collections::BTreeSet<_>>();
    let want_ids = ids(&mut g
        .truth
        .iter()
        .filter(|t| t["servicePrincipal"] == false)
        .map(|t| (t["appId"].as_str().unwrap().into(), t["keyId"].as_str().unwrap().to_ascii_lowercase())));
    let got_ids = ids(&mut v["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["objectType"] == "application")
        .map(|r| (r["appId"].as_str().unwrap().into(), r["keyId"].as_str().unwrap().to_ascii_lowercase())));
    assert_eq!(got_ids, want_ids);
    let _ = &g.out;
}

/// Certificate keyIds an audit reports expiring or expired.
fn expiring(audit: &Value) -> Vec<String> {
    audit["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "certificate" && (r["status"] == "expiring" || r["status"] == "expired"))
        .map(|r| r["keyId"].as_str().unwrap().to_string())
        .collect()
}

/// The apps `fleet rotate --expiring-within 30d` rotates, from an audit: a certificate ending
/// within 30 days (or ended) and none lasting beyond; one holding both is in the middle of a
/// rotation already (left for phase 2).
fn to_rotate(audit: &Value) -> std::collections::BTreeSet<String> {
    let mut statuses: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in audit["credentials"].as_array().unwrap().iter().filter(|r| r["kind"] == "certificate") {
        statuses.entry(r["appId"].as_str().unwrap().into()).or_default().push(r["status"].as_str().unwrap().into());
    }
    statuses
        .into_iter()
        .filter(|(_, s)| s.iter().any(|x| x == "expiring" || x == "expired"))
        .filter(|(_, s)| !s.iter().any(|x| x == "valid" || x == "not_yet_valid"))
        .map(|(a, _)| a)
        .collect()
}

/// (apps, certificates) a retirement without evidence removes once `rotated` have their new
/// certificate: the usable certificates that have started, from the generator's ground truth,
/// but the newest of each app.
fn to_retire(truth: &[Value], rotated: &std::collections::BTreeSet<String>) -> (u64, u64) {
    let mut started: BTreeMap<String, u64> = BTreeMap::new();
    for t in truth.iter().filter(|t| t["servicePrincipal"] != true && t["kind"] == "certificate") {
        if t["reason"].is_null() && t["status"] != "not_yet_valid" {
            *started.entry(t["appId"].as_str().unwrap().into()).or_default() += 1;
        }
    }
    for a in rotated {
        *started.entry(a.clone()).or_default() += 1;
    }
    started.values().filter(|n| **n > 1).fold((0, 0), |(apps, certs), n| (apps + 1, certs + n - 1))
}

#[test]
fn rotation_then_retirement_of_a_generated_tenant_leaves_nothing_expiring_and_every_new_certificate_signs_in() {
    let g = generated(40, "fleet-emu-rotate");
    let work = TempDir::new("fleet-emu-out");
    let out_dir = work.0.display().to_string();
    let before = json_of(&fleet(&g, "audit", &["-o", "json"]));
    let expiring_apps = to_rotate(&before);
    assert!(!expiring_apps.is_empty());
    let o =
        fleet(&g, "rotate", &["--expiring-within", "30d", "--out-dir", &out_dir, "--concurrency", "4", "-o", "json"]);
    assert!(o.status.success(), "{}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["selected"], expiring_apps.len() as u64);
    assert_eq!(v["rotated"], expiring_apps.len() as u64);
    assert_eq!(v["failed"], 0);
    // Every other application of the tenant is reported left alone, with its reason.
    assert_eq!(v["skipped"], before["summary"]["applications"].as_u64().unwrap() - expiring_apps.len() as u64);
    // Phase 1 removed nothing: every expiring or expired certificate is still there.
    let during = json_of(&fleet(&g, "audit", &["-o", "json", "--expiring-within", "30d"]));
    assert_eq!(expiring(&during), expiring(&before));

    // Phase 2 on a grace period of zero: every app holding more than one usable certificate that
    // has started keeps only its newest.
    let (apps, certificates) = to_retire(&g.truth, &expiring_apps);
    assert!(apps > expiring_apps.len() as u64, "the tenant has rotations in progress too");
    let o = fleet(&g, "retire", &["--after", "0s", "--out-dir", &out_dir, "-o", "json"]);
    let r = json_of(&o);
    assert!(o.status.success(), "{r}");
    assert_eq!((r["retired"].as_u64(), r["certificates"].as_u64()), (Some(apps), Some(certificates)), "{r}");
    assert_eq!((r["kept"].as_u64(), r["failed"].as_u64(), r["evidence"].as_str()), (Some(0), Some(0), Some("after")));
    let after = json_of(&fleet(&g, "audit", &["-o", "json", "--expiring-within", "30d"]));
    let left: Vec<&Value> =
        after["credentials"].as_array().unwrap().iter().filter(|r| r["kind"] == "certificate").collect();
    assert!(left.is_empty(), "still expiring: {left:?}");
    // The verification was a sign-in of each new certificate, which the audit shows.
    let all = json_of(&fleet(&g, "audit", &["-o", "json"]));
    let new_rows: Vec<&Value> = all["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| expiring_apps.contains(r["appId"].as_str().unwrap()) && r["kind"] == "certificate")
        .collect();
    assert_eq!(new_rows.len(), expiring_apps.len(), "one certificate left per rotated app");
    assert!(new_rows.iter().all(|r| r["lastSignIn"].is_string()), "{new_rows:?}");
    signs_in_with_new_certificates(&g, &out_dir, &expiring_apps);
}

/// Each new certificate gets a token from the emulator, checked here with `keycred token`.
fn signs_in_with_new_certificates(g: &Generated, out_dir: &str, apps: &std::collections::BTreeSet<String>) {
    let base = g.emu.info().base_url().to_string();
    for app in apps {
        let dir = Path::new(out_dir).join(app);
        let pem = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|x| x == "pem"))
            .unwrap();
        let t = keycred_command(
            &[
                "token",
                "--client-id",
                app,
                "--tenant",
                TENANT,
                "--authority",
                &base,
                "--scope",
                GRAPH,
                "--cert",
                &pem.display().to_string(),
            ],
            &[],
        )
        .output()
        .unwrap();
        assert!(t.status.success(), "{app}: {}", String::from_utf8_lossy(&t.stderr));
    }
}

#[test]
fn unused_lists_every_credential_but_those_signed_in_within_the_duration() {
    let g = generated(12, "fleet-emu-unused");
    let ids = |v: &Value| -> std::collections::BTreeSet<String> {
        v["credentials"].as_array().unwrap().iter().map(|r| r["keyId"].as_str().unwrap().to_string()).collect()
    };
    // One application signs in with one of its certificates (its bundle from the ground truth).
    let used = g
        .truth
        .iter()
        .find(|t| t["appId"] != g.automation.as_str() && t["bundle"].is_string() && t["status"] == "valid")
        .unwrap();
    let bundle = g.out.join(used["bundle"].as_str().unwrap());
    let cred = keycred::cert::load_credential(&bundle, None, None).unwrap();
    let url = format!("{}/{TENANT}/oauth2/v2.0/token", g.emu.info().base_url());
    let assertion = signed_assertion(&cred, used["appId"].as_str().unwrap(), &url, keycred::cert::SignatureAlg::Rs256);
    let app = used["appId"].as_str().unwrap();
    let (status, _) = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(post(&url, &client_credentials_form(app, &format!("{GRAPH}/.default"), &assertion)));
    assert_eq!(status, 200);
    let all = json_of(&fleet(&g, "audit", &["-o", "json"]));
    // Signed in: that certificate, and the automation app's (each audit gets a Graph token).
    let automation_key: String = g
        .truth
        .iter()
        .find(|t| t["appId"] == g.automation.as_str())
        .map(|t| t["keyId"].as_str().unwrap().to_string())
        .unwrap();
    let signed: std::collections::BTreeSet<String> = all["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["lastSignIn"].is_string())
        .map(|r| r["keyId"].as_str().unwrap().to_string())
        .collect();
    let want: std::collections::BTreeSet<String> =
        [automation_key, used["keyId"].as_str().unwrap().to_string()].into_iter().collect();
    assert_eq!(signed, want);
    let unused = json_of(&fleet(&g, "audit", &["-o", "json", "--unused", "1h"]));
    assert_eq!(ids(&unused), ids(&all).difference(&want).cloned().collect());
    assert_eq!(ids(&json_of(&fleet(&g, "audit", &["-o", "json", "--unused", "0s"]))), ids(&all));
}

#[test]
fn audit_lists_a_federated_credential_added_through_the_emulators_graph() {
    let g = generated(6, "fleet-emu-fic");
    let target = g.truth.iter().find(|t| t["appId"] != g.automation.as_str()).unwrap()["appId"].as_str().unwrap();
    let base = g.emu.info().base_url().to_string();
    let subject = "system:serviceaccount:payroll:exporter";
    // The automation app's Graph token (Application.ReadWrite.All), for `graph fic add` on another app.
    let cred = keycred::cert::load_credential(std::path::Path::new(&g.bundle), None, None).unwrap();
    let url = format!("{base}/{TENANT}/oauth2/v2.0/token");
    let assertion = signed_assertion(&cred, &g.automation, &url, keycred::cert::SignatureAlg::Rs256);
    let scope = format!("{GRAPH}/.default");
    let form = client_credentials_form(&g.automation, &scope, &assertion);
    let (status, body) = tokio::runtime::Runtime::new().unwrap().block_on(post(&url, &form));
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap().to_string();
    let add = keycred_command(
        &[
            "graph",
            "fic",
            "add",
            "--app-id",
            target,
            "--tenant",
            TENANT,
            "--authority",
            &base,
            "--graph-url",
            &base,
            "--graph-token-env",
            "FIC_GRAPH_TOKEN",
            "--name",
            "aks-exporter",
            "--issuer",
            "https://oidc.prod-aks.azure.com/0d2a3c4e/",
            "--k8s-service-account",
            "payroll/exporter",
            "-o",
            "json",
        ],
        &[("FIC_GRAPH_TOKEN", &token)],
    )
    .output()
    .unwrap();
    assert!(add.status.success(), "{}", String::from_utf8_lossy(&add.stderr));
    let added: Value = serde_json::from_slice(&add.stdout).unwrap();
    let v = json_of(&fleet(&g, "audit", &["-o", "json"]));
    let rows: Vec<&Value> = v["credentials"].as_array().unwrap().iter().filter(|r| r["kind"] == "federated").collect();
    assert_eq!(rows.len(), 1, "{rows:#?}");
    let r = rows[0];
    assert_eq!(r["appId"], target);
    assert_eq!(r["keyId"], added["id"]);
    assert_eq!(r["name"], "aks-exporter");
    assert_eq!(r["issuer"], "https://oidc.prod-aks.azure.com/0d2a3c4e/");
    assert_eq!(r["subject"], subject);
    assert_eq!(r["audience"], "api://AzureADTokenExchange");
    assert_eq!((&r["status"], &r["reason"]), (&json!("valid"), &Value::Null));
    // The generated credentials are all still there, each once.
    let others = v["credentials"].as_array().unwrap().iter().filter(|r| r["kind"] != "federated").count();
    assert_eq!(others, g.truth.iter().filter(|t| t["servicePrincipal"] == false).count());
}
