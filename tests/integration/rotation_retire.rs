//! Phase 2 for one application: `rotate --retire` on a manifest file and `graph retire` through
//! Graph remove the older certificates only on evidence (the emulator's credential sign-in
//! report read with a Graph token, a grace period, or `--force`), keep them otherwise with the
//! reason, and never remove the newest; and phase 1's deploy hook gets the new credential's
//! values in its environment.

use crate::rotation_support as support;

use keycred::cert::{generate, KeySize, LoadedCredential, NewCertificate, Validity};
use serde_json::{json, Value};
use std::path::PathBuf;
use support::*;

/// A credential valid from 30 days ago, so that a certificate made now is newer.
fn older_credential(cn: &str) -> LoadedCredential {
    let now = keycred::dates::now();
    let (cert, key) = generate(&NewCertificate {
        subject: format!("CN={cn}"),
        key_size: KeySize::Rsa2048,
        validity: Validity::Range(now - time::Duration::days(30), now + time::Duration::days(300)),
    })
    .unwrap();
    LoadedCredential::new(cert, vec![], key, &PathBuf::new()).unwrap()
}

struct App {
    dir: TempDir,
    manifest: PathBuf,
    old: LoadedCredential,
    old_key_id: String,
}

fn app() -> App {
    let dir = TempDir::new("rot-retire");
    let old = older_credential("old");
    write_cred(&dir, "old", &old);
    let e = entry(&old.cert);
    let old_key_id = e["keyId"].as_str().unwrap().to_string();
    let manifest = dir.path("app.json");
    write_manifest(&manifest, OBJECT_ID, APP_ID, &[e]);
    App { dir, manifest, old, old_key_id }
}

impl App {
    fn rotate(&self, extra: &[&str], envs: &[(&str, &str)]) -> Out {
        let m = self.manifest.display().to_string();
        let mut args = vec!["rotate", "--manifest", &m, "-o", "json"];
        args.extend_from_slice(extra);
        cli(&args, envs)
    }
    fn key_ids(&self) -> Vec<String> {
        entries_of(&self.manifest).iter().map(|e| e["keyId"].as_str().unwrap().to_string()).collect()
    }
}

#[test]
fn the_deploy_hook_gets_the_new_credentials_values_and_retiring_needs_evidence() {
    let a = app();
    let env = a.dir.path("env");
    let hook = format!(
        r#"sh -c "printf '%s|%s|%s|%s|%s' \"$KEYCRED_APP_ID\" \"$KEYCRED_KEY_ID\" \"$KEYCRED_THUMBPRINT\" \"$KEYCRED_BUNDLE\" \"$KEYCRED_PFX\" > {}""#,
        env.display()
    );
    let out_dir = a.dir.s("new");
    let args = ["--name", "next", "--out-dir", &out_dir, "--pfx", "--password-env", "PW", "--deploy", &hook];
    let out = a.rotate(&args, &[("PW", "correct horse")]);
    assert_eq!(out.code, 0, "{out:?}");
    let j = out.json();
    assert_eq!(j["deploy"], json!({"result": "deployed", "exitCode": 0, "reason": null}));
    let want = [APP_ID, j["keyId"].as_str().unwrap(), j["thumbprint"].as_str().unwrap()]
        .into_iter()
        .chain([j["files"]["bundle"].as_str().unwrap(), j["files"]["pfx"].as_str().unwrap()])
        .collect::<Vec<_>>()
        .join("|");
    assert_eq!(std::fs::read_to_string(&env).unwrap(), want);
    assert_eq!(j["removed"], json!([]));
    let new_key_id = j["keyId"].as_str().unwrap().to_string();
    assert_eq!(a.key_ids(), [a.old_key_id.clone(), new_key_id.clone()]);

    // Phase 2 without evidence: refused before anything is read, naming the ways to give it.
    let before = std::fs::read(&a.manifest).unwrap();
    let out = a.rotate(&["--retire"], &[]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("--graph-token-env") && out.stderr.contains("--after"), "{}", out.stderr);
    // A grace period not over yet: kept, saying from when.
    let out = a.rotate(&["--retire", "--after", "30d"], &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["result"], "kept");
    let reason = out.json()["kept"][0]["reason"].as_str().unwrap().to_string();
    assert!(reason.contains("the grace period allows retiring from "), "{reason}");
    assert_eq!(std::fs::read(&a.manifest).unwrap(), before);
    // Over: the older certificate goes, the newest stays.
    let out = a.rotate(&["--retire", "--after", "0s"], &[]);
    let j = out.json();
    assert_eq!((j["result"].as_str(), j["evidence"].as_str()), (Some("retired"), Some("after")), "{j}");
    assert_eq!(j["retired"][0]["keyId"], a.old_key_id.as_str());
    assert_eq!(j["newest"]["keyId"], new_key_id.as_str());
    assert_eq!(a.key_ids(), [new_key_id]);
    // Nothing older left: nothing to retire, even with --force.
    let j = a.rotate(&["--retire", "--force"], &[]).json();
    assert_eq!(j["result"], "skipped", "{j}");
    // Phase 2's options are refused in phase 1.
    let out = a.rotate(&["--name", "x", "--out-dir", &out_dir, "--after", "1d"], &[]);
    assert_eq!(out.code, 2, "{out:?}");
}

#[test]
fn a_manifest_is_retired_on_sign_ins_once_the_app_switched_and_the_old_key_is_quiet() {
    let a = app();
    let emu = emulator(&[&a.manifest], &[(GRAPH, &["AuditLog.Read.All"])], false);
    let base = emu.info().base_url().to_string();
    assert_eq!(token_with(&base, APP_ID, &a.old, GRAPH).0, 200, "the old key in use");
    let verify =
        ["--verify", "--tenant", TENANT, "--authority", &base, "--scope", "https://graph.microsoft.com/.default"];
    let out_dir = a.dir.s("new");
    let out = a.rotate(&[&["--name", "next", "--out-dir", &out_dir][..], &verify].concat(), &[]);
    assert_eq!(out.code, 0, "{out:?}");
    let new = keycred::cert::load_credential(&a.dir.path("new/next.pem"), None, None).unwrap();
    // A Graph token allowed to read the report (the app's own here, granted AuditLog.Read.All).
    let (_, body) = token_with(&base, APP_ID, &new, GRAPH);
    let token = body["access_token"].as_str().unwrap().to_string();
    let env = [("GRAPH_TOKEN", token.as_str())];
    let retire = |extra: &[&str]| {
        let args = [&["--retire", "--graph-token-env", "GRAPH_TOKEN", "--graph-url", &base][..], extra].concat();
        let out = a.rotate(&args, &env);
        assert_eq!(out.code, 0, "{out:?}");
        out.json()
    };
    // Switched (the new key signed in last), but the old one signed in moments ago.
    let j = retire(&[]);
    assert_eq!((j["result"].as_str(), j["evidence"].as_str()), (Some("kept"), Some("sign-ins")), "{j}");
    assert!(j["kept"][0]["reason"].as_str().unwrap().contains("it must be quiet for 24h"), "{j}");
    // The old key used again: the app has not switched, whatever the quiet period.
    assert_eq!(token_with(&base, APP_ID, &a.old, GRAPH).0, 200);
    let j = retire(&["--quiet-for", "0s"]);
    let reason = j["kept"][0]["reason"].as_str().unwrap();
    assert!(reason.starts_with(&format!("still in use: keyId {} signed in at ", a.old_key_id)), "{j}");
    assert_eq!(a.key_ids().len(), 2);
    // The new key used after it: switched, and with no quiet period asked, retired.
    assert_eq!(token_with(&base, APP_ID, &new, GRAPH).0, 200);
    let j = retire(&["--quiet-for", "0s"]);
    assert_eq!(j["result"], "retired", "{j}");
    assert_eq!(a.key_ids().len(), 1);
    assert_eq!(token_with(&base, APP_ID, &a.old, GRAPH).0, 401);
}

#[test]
fn graph_retire_removes_the_old_certificate_once_the_report_shows_it_unused() {
    let a = app();
    let emu = emulator(&[&a.manifest], &[(GRAPH, &["AuditLog.Read.All", "Policy.Read.All"])], false);
    let base = emu.info().base_url().to_string();
    let old_pem = a.dir.s("old.pem");
    let common = ["--app-id", APP_ID, "--tenant", TENANT, "--authority", &base, "--graph-url", &base, "-o", "json"];
    let graph = |sub: &str, extra: &[&str]| {
        let args = [&["graph", sub][..], &common, extra].concat();
        let out = cli(&args, &[]);
        assert_eq!(out.code, 0, "{out:?}");
        out.json()
    };
    let out_dir = a.dir.s("new");
    let j = graph("rotate", &["--cert", &old_pem, "--name", "next", "--out-dir", &out_dir]);
    assert_eq!(j["removed"], json!([]));
    let new_pem = j["files"]["bundle"].as_str().unwrap().to_string();
    // The new certificate signed in last (its verification, and the Graph token retire gets
    // with it): switched; the old one's sign-in (rotate's Graph token) is seconds old.
    let j: Value = graph("retire", &["--cert", &new_pem]);
    assert_eq!(j["result"], "kept", "{j}");
    assert!(j["kept"][0]["reason"].as_str().unwrap().contains("must be quiet for 24h"), "{j}");
    let j = graph("retire", &["--cert", &new_pem, "--quiet-for", "0s"]);
    assert_eq!(
        (j["result"].as_str(), j["retired"][0]["keyId"].as_str()),
        (Some("retired"), Some(a.old_key_id.as_str()))
    );
    assert_eq!(entries_of(&a.manifest).len(), 1);
    assert_eq!(token_with(&base, APP_ID, &a.old, GRAPH).0, 401);
}
