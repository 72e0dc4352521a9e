//! `keycred fleet` against the emulator's Graph and a tenant made by `emulate --generate-tenant`:
//! the audit equals the generator's own ground truth (`ground-truth.jsonl`, written by code that
//! shares nothing with the audit's reading), and a rotation leaves no expiring or expired
//! certificate behind while every new one signs in.

use crate::common::*;
use keycred::emulator::{start_blocking, BlockingEmulator};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const GRAPH: &str = "https://graph.microsoft.com";

struct Generated {
    _dir: TempDir,
    out: PathBuf,
    truth: Vec<Value>,
    automation: String,
    bundle: String,
    emu: BlockingEmulator,
}

fn generated(n: usize, tag: &str) -> Generated {
    let dir = TempDir::new(tag);
    let out = dir.path("tenant");
    let o = keycred_command(
        &[
            "emulate",
            "--generate-tenant",
            &n.to_string(),
            "--out",
            &out.display().to_string(),
            "--with-keys",
            "-o",
            "json",
        ],
        &[],
    )
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let summary: Value = serde_json::from_slice(&o.stdout).unwrap();
    let truth = std::fs::read_to_string(out.join("ground-truth.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let manifests: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    let cfg = emulator_config(manifests, vec![(GRAPH.into(), vec!["Application.ReadWrite.All".into()])]);
    let emu = start_blocking(cfg).unwrap();
    Generated {
        _dir: dir,
        out,
        truth,
        automation: summary["automationAppId"].as_str().unwrap().into(),
        bundle: summary["automationBundle"].as_str().unwrap().into(),
        emu,
    }
}

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

#[test]
fn rotation_of_a_generated_tenant_leaves_nothing_expiring_and_every_new_certificate_signs_in() {
    let g = generated(40, "fleet-emu-rotate");
    let work = TempDir::new("fleet-emu-out");
    let out_dir = work.0.display().to_string();
    let before = json_of(&fleet(&g, "audit", &["-o", "json"]));
    let expiring_apps: std::collections::BTreeSet<String> = before["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "certificate" && (r["status"] == "expiring" || r["status"] == "expired"))
        .map(|r| r["appId"].as_str().unwrap().to_string())
        .collect();
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
    let after = json_of(&fleet(&g, "audit", &["-o", "json", "--expiring-within", "30d"]));
    let left: Vec<&Value> =
        after["credentials"].as_array().unwrap().iter().filter(|r| r["kind"] == "certificate").collect();
    assert!(left.is_empty(), "still expiring: {left:?}");
    // Each new certificate gets a token from the emulator, checked here with keycred token.
    let base = g.emu.info().base_url().to_string();
    for app in &expiring_apps {
        let dir = Path::new(&out_dir).join(app);
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
