//! Fixtures shared by the check, rotate, graph and demo tests: the CLI run as a child process
//! with a time limit, an in-process emulator on 127.0.0.1:0, credentials written as PEM files,
//! and manifests written one entry per line so tests can compare entries byte for byte.
#![allow(dead_code)]

use keycred::cert::{generate, Certificate, KeySize, LoadedCredential, NewCertificate, Validity};
use keycred::emulator::{start_blocking, BlockingEmulator, EmulatorConfig};
use keycred::secret::SecretString;
use serde_json::{json, Value};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const APP_ID: &str = "6731de76-14a6-49ae-97bc-6eba6914391e";
pub const OBJECT_ID: &str = "0b6c8e1c-2f7e-4d36-9d2a-1c3e5f7a9b0d";
pub const ADMIN_APP_ID: &str = "a0a0a0a0-1111-4222-8333-944444444444";
pub const ADMIN_OBJECT_ID: &str = "b1b1b1b1-1111-4222-8333-955555555555";
pub const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
pub const API: &str = "api://keycred-test-api";
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

/// Runs the keycred binary with `args` and extra environment, killed after 120 s.
pub fn cli(args: &[&str], envs: &[(&str, &str)]) -> Out {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keycred"));
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for v in ["AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_AUTHORITY_HOST", "AZURE_CLIENT_CERTIFICATE_PATH"] {
        cmd.env_remove(v);
    }
    for (k, v) in envs {
        cmd.env(k, v);
    }
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

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let d = std::env::temp_dir().join(format!("keycred-rot-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    pub fn s(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh RSA-2048 credential valid for `days` days.
pub fn credential(cn: &str, days: u32) -> LoadedCredential {
    let (cert, key) = generate(&NewCertificate {
        subject: format!("CN={cn}"),
        key_size: KeySize::Rsa2048,
        validity: Validity::Days(days),
    })
    .unwrap();
    LoadedCredential { cert, chain: vec![], key, cert_path: PathBuf::new() }
}

/// Writes NAME.pem (key then certificate), NAME.cer and NAME.key; returns the bundle path.
pub fn write_cred(dir: &TempDir, name: &str, cred: &LoadedCredential) -> String {
    let key = cred.key.to_pem(None).unwrap();
    std::fs::write(dir.path(&format!("{name}.key")), &key).unwrap();
    std::fs::write(dir.path(&format!("{name}.cer")), cred.cert.to_pem()).unwrap();
    std::fs::write(dir.path(&format!("{name}.pem")), format!("{key}{}", cred.cert.to_pem())).unwrap();
    dir.s(&format!("{name}.pem"))
}

/// A Graph-format entry valid over the certificate's own dates.
pub fn entry(cert: &Certificate) -> Value {
    json!({
        "customKeyIdentifier": cert.custom_key_identifier(),
        "displayName": cert.subject(),
        "endDateTime": keycred::dates::format(cert.not_after()),
        "key": cert.value_b64(),
        "keyId": uuid::Uuid::new_v4().to_string(),
        "startDateTime": keycred::dates::format(cert.not_before()),
        "type": "AsymmetricX509Cert",
        "usage": "Verify",
    })
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
        "{{\n  \"id\": \"{object_id}\",\n  \"appId\": \"{app_id}\",\n  \"displayName\": \"keycred rotation test\",\n  \"signInAudience\": \"AzureADMyOrg\",\n  \"keyCredentials\": [\n{}\n  ],\n  \"passwordCredentials\": []\n}}\n",
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
    let mut cfg = EmulatorConfig::new(manifests.iter().map(|p| p.to_path_buf()).collect());
    cfg.tenant = TENANT.into();
    cfg.grants = grants.iter().map(|(r, rs)| (r.to_string(), rs.iter().map(|s| s.to_string()).collect())).collect();
    if secret {
        cfg.secret = Some(SecretString::new(SECRET.to_string()));
    }
    cfg.log = false;
    start_blocking(cfg).unwrap()
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap()
}

/// Posts a form; returns status and JSON body.
pub fn post_form(url: &str, form: &[(&str, &str)]) -> (u16, Value) {
    block_on(async {
        let r = http().post(url).form(form).send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    })
}

/// Sends `body` as JSON with a bearer token; returns status and JSON body (Null when empty).
pub fn send_json(method: reqwest::Method, url: &str, token: &str, body: Option<&Value>) -> (u16, Value) {
    block_on(async {
        let mut req = http().request(method, url).bearer_auth(token);
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
    let assertion = keycred::jwt::client_assertion(
        cred,
        &keycred::jwt::AssertionParams {
            client_id: client_id.into(),
            audience: aud.clone(),
            alg: keycred::cert::SignatureAlg::Rs256,
            x5c: false,
            lifetime: 600,
        },
    )
    .unwrap();
    post_form(
        &aud,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("scope", &format!("{scope}/.default")),
            ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
            ("client_assertion", assertion.expose()),
        ],
    )
}
