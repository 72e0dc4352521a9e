//! A tenant capped at 90 days, end to end, as a user would meet it: `keycred emulate
//! --generate-tenant 6 --generate-policy-max-days 90` writes the tenant and its default policy,
//! `keycred emulate --apps-dir DIR --app-policy FILE` serves both, and then, as the automation
//! app: `graph add --days 365` exits 2 before any key is generated, naming the cap; `--days 60`
//! is added; without `--days` the certificate lasts 90 days (read back with openssl); a raw
//! Graph `addKey` of a 365-day certificate gets Graph's 400
//! `CredentialInvalidLifetimeAsPerAppPolicy`; `fleet audit` flags a pre-existing two-year
//! certificate `grandfathered` on an application created before the restriction and `violates`
//! on a newer one; `fleet rotate --dry-run` predicts the refusal, and the run refuses it.

use crate::common::*;
use crate::emulator_support::spawn_emulate;
use crate::rotation_support::{cli, post_form, Out};
use keycred::graph::{proof_of_possession, PROOF_AUD_AAD_GRAPH};
use serde_json::{json, Value};
use std::path::Path;

const GRAPH: &str = "https://graph.microsoft.com";

/// Kills the emulator process when the test ends, passed or not.
struct Emulator(std::process::Child);
impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The generated application number `i`'s manifest.
fn manifest_of(dir: &Path, i: usize) -> (std::path::PathBuf, Value) {
    let mut found: Vec<(std::path::PathBuf, Value)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json") && !p.to_string_lossy().ends_with(".policy.json"))
        .map(|p| {
            let v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            (p, v)
        })
        .collect();
    // Application i was created 400 + i days ago: newest first.
    found.sort_by(|a, b| b.1["createdDateTime"].as_str().cmp(&a.1["createdDateTime"].as_str()));
    found.remove(i)
}

/// Adds a certificate valid two years (from yesterday) to the manifest at `path`.
fn add_two_year_certificate(path: &Path, cert: &keycred::cert::Certificate) {
    let mut m: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    m["keyCredentials"].as_array_mut().unwrap().push(valid_entry(cert));
    std::fs::write(path, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
}

fn lasts_days(cert: &Path, days: i64) -> bool {
    let secs = (days * 86_400).to_string();
    let out = std::process::Command::new(OPENSSL)
        .args(["x509", "-in", cert.to_str().unwrap(), "-noout", "-checkend", &secs])
        .output()
        .unwrap();
    out.status.success()
}

#[test]
fn a_tenant_capped_at_90_days_refuses_before_generating_and_grandfathers_older_apps() {
    let t = TempDir::new("policy-scenario");
    let dir = t.path("tenant");
    let gen = cli(
        &[
            "emulate",
            "--generate-tenant",
            "6",
            "--out",
            dir.to_str().unwrap(),
            "--with-keys",
            "--generate-policy-max-days",
            "90",
            "-o",
            "json",
        ],
        &[],
    );
    assert_eq!(gen.code, 0, "{gen:?}");
    let g = gen.json();
    let policy_file = g["appPolicy"].as_str().unwrap().to_string();
    let policy: Value = serde_json::from_slice(&std::fs::read(&policy_file).unwrap()).unwrap();
    assert_eq!(policy["applicationRestrictions"]["keyCredentials"][0]["maxLifetime"], "P90D");
    let (automation, bundle) = (g["automationAppId"].as_str().unwrap(), g["automationBundle"].as_str().unwrap());

    // A two-year certificate already on an application created before the restriction (the
    // oldest) and on one created after it (the second newest).
    let two_years = credential_for_days("two years", 730);
    let (old_path, old) = manifest_of(&dir, 5);
    let (new_path, new) = manifest_of(&dir, 1);
    add_two_year_certificate(&old_path, &two_years.cert);
    add_two_year_certificate(&new_path, &two_years.cert);
    let (old_app, new_app) = (old["appId"].as_str().unwrap(), new["appId"].as_str().unwrap());

    let grant = format!("{GRAPH}=Application.ReadWrite.All,Policy.Read.All");
    let apps_dir = dir.to_str().unwrap();
    let (child, info) = spawn_emulate(&["--apps-dir", apps_dir, "--app-policy", &policy_file, "--grant", &grant]);
    let _emu = Emulator(child);
    let base = info["baseUrl"].as_str().unwrap().to_string();
    let tenant = info["tenant"].as_str().unwrap().to_string();
    let out_dir = t.s("out");
    let access = ["--tenant", &tenant, "--authority", &base, "--graph-url", &base];
    let graph_add = |name: &str, extra: &[&str]| -> Out {
        let mut a =
            vec!["graph", "add", "--client-id", automation, "--cert", bundle, "--name", name, "--out-dir", &out_dir];
        a.extend_from_slice(&access);
        a.extend_from_slice(extra);
        cli(&a, &[])
    };

    let out = graph_add("year", &["--days", "365"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("at most 90 days") && out.stderr.contains("--days 90"), "{out:?}");
    assert!(!Path::new(&out_dir).join("year.key").exists(), "no key generated");
    assert_eq!(graph_add("sixty", &["--days", "60"]).code, 0);
    assert_eq!(graph_add("default", &[]).code, 0);
    let default_cer = Path::new(&out_dir).join("default.cer");
    assert!(lasts_days(&default_cer, 89) && !lasts_days(&default_cer, 91), "the default lasts the cap");

    // Graph's own refusal of a 365-day certificate, by addKey with a proof.
    let cred = keycred::cert::load_credential(Path::new(bundle), None, None).unwrap();
    let (_, automation_manifest) = manifest_of(&dir, 0);
    let object_id = automation_manifest["id"].as_str().unwrap();
    let aud = format!("{base}/{tenant}/oauth2/v2.0/token");
    let assertion = signed_assertion(&cred, automation, &aud, keycred::cert::SignatureAlg::Rs256);
    let scope = format!("{GRAPH}/.default");
    let (s, tok) = post_form(&aud, &client_credentials_form(automation, &scope, &assertion));
    assert_eq!(s, 200, "{tok}");
    let year = credential_for_days("a year", 365);
    let proof = proof_of_possession(&cred, object_id, PROOF_AUD_AAD_GRAPH).unwrap();
    let body = json!({"keyCredential": {"type": "AsymmetricX509Cert", "usage": "Verify", "key": year.cert.value_b64()},
        "passwordCredential": null, "proof": proof.expose()});
    let (s, b) = crate::rotation_support::send_json(
        reqwest::Method::POST,
        &format!("{base}/v1.0/applications/{object_id}/addKey"),
        tok["access_token"].as_str().unwrap(),
        Some(&body),
    );
    assert_eq!((s, &b["error"]["code"]), (400, &json!("CredentialInvalidLifetimeAsPerAppPolicy")), "{b}");

    // The audit: the two-year certificate is grandfathered on the old app, a violation on the new.
    let fleet = |cmd: &str, extra: &[&str]| -> Out {
        let mut a = vec!["fleet", cmd, "--client-id", automation, "--cert", bundle];
        a.extend_from_slice(&access);
        a.extend_from_slice(extra);
        cli(&a, &[])
    };
    let audit = fleet("audit", &["-o", "json"]);
    assert_eq!(audit.code, 0, "{audit:?}");
    let rows = audit.json()["credentials"].as_array().unwrap().clone();
    let standing = |app: &str| {
        let thumb = two_years.cert.thumbprint();
        rows.iter().find(|r| r["appId"] == app && r["thumbprint"] == thumb.as_str()).map(|r| r["policy"].clone())
    };
    assert_eq!(standing(old_app), Some(json!("grandfathered")), "{rows:?}");
    assert_eq!(standing(new_app), Some(json!("violates")), "{rows:?}");

    // fleet rotate: the dry run predicts the refusal, the run refuses before generating.
    let rotate_dir = t.s("rotation");
    let ids = ["--app-id", old_app, "--app-id", new_app, "--days", "365", "--out-dir", &rotate_dir, "-o", "json"];
    let plan = fleet("rotate", &[&ids[..], &["--dry-run"]].concat());
    assert_eq!(plan.code, 0, "{plan:?}");
    let results: Vec<(String, String)> = plan.json()["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["appId"].as_str().unwrap().to_string(), o["result"].as_str().unwrap().to_string()))
        .collect();
    assert!(results.contains(&(new_app.to_string(), "refused".to_string())), "{results:?}");
    assert!(results.contains(&(old_app.to_string(), "planned".to_string())), "{results:?}");
    let run = fleet("rotate", &ids);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(!Path::new(&rotate_dir).join(new_app).exists(), "no key generated for the refused app");
}
