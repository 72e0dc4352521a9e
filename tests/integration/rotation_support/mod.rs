//! Fixtures shared by the check, rotate, graph and demo tests: the CLI run as a child process
//! with a time limit, an in-process emulator on 127.0.0.1:0, credentials written as PEM files,
//! and manifests written one entry per line so tests can compare entries byte for byte.
#![allow(dead_code)]

pub use crate::common::*;
use keycred::cert::{Certificate, LoadedCredential};
use keycred::emulator::{start_blocking, BlockingEmulator};
use keycred::secret::SecretString;
use serde_json::Value;
use std::io::Read;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

pub const ADMIN_APP_ID: &str = "a0a0a0a0-1111-4222-8333-944444444444";
pub const ADMIN_OBJECT_ID: &str = "b1b1b1b1-1111-4222-8333-955555555555";
pub const GRAPH: &str = "https://graph.microsoft.com";
pub const SECRET: &str = "emulator-test-secret-value";

/// What a CLI run produced.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }
}

/// `keycred graph WORDS` signed in as the test application with the certificate `pem`, against
/// the emulator at `base` (authority and Graph alike), in JSON, then `extra`.
pub fn graph_as_app(words: &[&str], base: &str, pem: &str, extra: &[&str]) -> Out {
    let mut args = vec!["graph"];
    args.extend_from_slice(words);
    args.extend_from_slice(&[
        "--app-id",
        APP_ID,
        "--tenant",
        TENANT,
        "--authority",
        base,
        "--graph-url",
        base,
        "--cert",
        pem,
        "-o",
        "json",
    ]);
    args.extend_from_slice(extra);
    cli(&args, &[])
}

/// Runs the keycred binary with `args` and extra environment, killed after 120 s.
pub fn cli(args: &[&str], envs: &[(&str, &str)]) -> Out {
    let mut cmd = keycred_command(args, envs);
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn keycred");
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t1 = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = so.read_to_string(&mut s);
        s
    });
    let t2 = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = se.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("keycred {args:?} did not finish in 120 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Out { code: status.code().unwrap_or(-1), stdout: t1.join().unwrap(), stderr: t2.join().unwrap() }
}

/// A fresh RSA-2048 credential valid for `days` days.
pub fn credential(cn: &str, days: u32) -> LoadedCredential {
    credential_for_days(cn, days)
}

/// Writes NAME.pem (key then certificate), NAME.cer and NAME.key; returns the bundle path.
pub fn write_cred(dir: &TempDir, name: &str, cred: &LoadedCredential) -> String {
    let key = cred.key.exportable().unwrap().to_pem(None).unwrap();
    std::fs::write(dir.path(&format!("{name}.key")), &key).unwrap();
    std::fs::write(dir.path(&format!("{name}.cer")), cred.cert.to_pem()).unwrap();
    std::fs::write(dir.path(&format!("{name}.pem")), format!("{key}{}", cred.cert.to_pem())).unwrap();
    dir.s(&format!("{name}.pem"))
}

/// A Graph-format entry valid over the certificate's own dates.
pub fn entry(cert: &Certificate) -> Value {
    valid_entry(cert)
}

/// An entry as the portal downloads it: no body, only the thumbprint, keyId and dates.
pub fn null_body_entry(cert: &Certificate) -> Value {
    let mut e = entry(cert);
    e["key"] = Value::Null;
    e
}

/// Writes a Graph-format manifest, one entry per line; returns each entry's line as written.
pub fn write_manifest(path: &Path, object_id: &str, app_id: &str, entries: &[Value]) -> Vec<String> {
    let lines: Vec<String> = entries.iter().map(|e| format!("    {}", serde_json::to_string(e).unwrap())).collect();
    let text = format!(
        "{{\n  \"id\": \"{object_id}\",\n  \"appId\": \"{app_id}\",\n  \"displayName\": \"keycred rotation test\",\n  \"signInAudience\": \"AzureADMyOrg\",\n  \"web\": {{ \"redirectUris\": [] }},\n  \"keyCredentials\": [\n{}\n  ],\n  \"passwordCredentials\": []\n}}\n",
        lines.join(",\n")
    );
    std::fs::write(path, text).unwrap();
    lines.iter().map(|l| l.trim().to_string()).collect()
}

/// The keyCredentials entries of a manifest file.
pub fn entries_of(path: &Path) -> Vec<Value> {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["keyCredentials"].as_array().cloned().unwrap_or_default()
}

/// The thumbprints (customKeyIdentifier) in a manifest file, in order.
pub fn ckis_of(path: &Path) -> Vec<String> {
    entries_of(path).iter().map(|e| e["customKeyIdentifier"].as_str().unwrap_or("").to_string()).collect()
}

/// Starts an emulator on these manifests with `grants` and, optionally, the shared secret.
pub fn emulator(manifests: &[&Path], grants: &[(&str, &[&str])], secret: bool) -> BlockingEmulator {
    let mut cfg = emulator_config(
        manifests.iter().map(|p| p.to_path_buf()).collect(),
        grants.iter().map(|(r, rs)| (r.to_string(), rs.iter().map(|s| s.to_string()).collect())).collect(),
    );
    if secret {
        cfg.secret = Some(SecretString::new(SECRET.to_string()));
    }
    start_blocking(cfg).unwrap()
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

/// Posts a form; returns status and JSON body.
pub fn post_form(url: &str, form: &[(&str, &str)]) -> (u16, Value) {
    block_on(post(url, form))
}

/// Sends `body` as JSON with a bearer token; returns status and JSON body (Null when empty).
pub fn send_json(method: reqwest::Method, url: &str, token: &str, body: Option<&Value>) -> (u16, Value) {
    block_on(async {
        let mut req = client().request(method, url).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let r = req.send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    })
}

/// A v2 client-credentials request signed by `cred` for `client_id`; returns status and body.
pub fn token_with(base: &str, client_id: &str, cred: &LoadedCredential, scope: &str) -> (u16, Value) {
    let aud = format!("{base}/{TENANT}/oauth2/v2.0/token");
    let assertion = signed_assertion(cred, client_id, &aud, keycred::cert::SignatureAlg::Rs256);
    post_form(&aud, &client_credentials_form(client_id, &format!("{scope}/.default"), &assertion))
}
