//! Helpers shared by every test support module (and by test files of their own): temporary
//! directories, the keycred binary run with a clean environment, the openssl CLI, throw-away
//! credentials and Graph-format entries, an emulator configuration, form posts and directory
//! snapshots. The support modules re-export it (`pub use crate::common::*`); test modules
//! `use crate::common`.
#![allow(dead_code)]

use keycred::cert::{generate, Certificate, KeySize, LoadedCredential, NewCertificate, SignatureAlg, Validity};
use keycred::emulator::EmulatorConfig;
use keycred::jwt::{self, AssertionParams};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

pub const KEYCRED: &str = env!("CARGO_BIN_EXE_keycred");
pub const OPENSSL: &str = "/usr/bin/openssl";

pub const APP_ID: &str = "6731de76-14a6-49ae-97bc-6eba6914391e";
pub const OBJECT_ID: &str = "0b6c8e1c-2f7e-4d36-9d2a-1c3e5f7a9b0d";
pub const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
pub const API: &str = "api://keycred-test-api";
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A fresh temporary directory `keycred-TAG-UUID`, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let d = std::env::temp_dir().join(format!("keycred-{tag}-{}", uuid::Uuid::new_v4()));
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

/// `keycred` with no arguments yet, in the same clean environment as [`keycred_command`].
pub fn keycred_bare() -> Command {
    keycred_command::<&str>(&[], &[])
}

/// The keycred binary with `args`, no AZURE_* or KEYCRED_* variables (nor terminal settings)
/// from the developer's shell, and `env` added.
pub fn keycred_command<S: AsRef<OsStr>>(args: &[S], env: &[(&str, &str)]) -> Command {
    let mut c = Command::new(KEYCRED);
    c.args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("AZURE_") || k.starts_with("KEYCRED_") {
            c.env_remove(k);
        }
    }
    // The caller's terminal settings change clap's wrapping and colours; the tests pin texts.
    for k in ["COLUMNS", "LINES", "CLICOLOR_FORCE", "CLICOLOR", "NO_COLOR"] {
        c.env_remove(k);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

/// Runs `cmd` with stdin `input`; `None` if it did not end within 60 s (then it is killed): a
/// hang is the bug some tests pin (a FIFO read, an endless stream), and must fail the test
/// rather than hang the suite.
pub fn run_bounded(mut cmd: Command, input: &[u8]) -> Option<(i32, String, String)> {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = writer.join();
    let o = child.wait_with_output().unwrap();
    Some((
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    ))
}

/// keycred with `args` and `env` (see [`keycred_command`]), bounded as [`run_bounded`]: exit
/// code, stdout, stderr. Panics if it hung.
pub fn keycred_bounded(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    run_bounded(keycred_command(args, env), b"").unwrap_or_else(|| panic!("keycred {args:?} hung"))
}

/// Runs the openssl CLI with `args` (and `env`) and asserts that it succeeded.
pub fn openssl_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let out = Command::new(OPENSSL).args(args).envs(env.iter().copied()).output().expect("run openssl");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// Runs the openssl CLI with `args` and asserts that it succeeded.
pub fn openssl(args: &[&str]) -> Output {
    openssl_env(args, &[])
}

/// `openssl req -x509`: a fresh RSA-2048 key (unencrypted PKCS#8) at `key` and a self-signed
/// certificate for `subject` (openssl's `/CN=.../O=...` form) at `cert`, valid `days` days.
pub fn openssl_self_signed_days(key: &Path, cert: &Path, subject: &str, days: u32) {
    let (key, cert, days) = (key.to_str().unwrap(), cert.to_str().unwrap(), days.to_string());
    openssl(&[
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", &days, "-subj", subject,
    ]);
}

/// A CA and a leaf it issued, made by openssl in `dir`, each valid `days` days: `CA.key`,
/// `CA.pem`, `LEAF.key`, `LEAF.csr`, `LEAF.pem` for `ca = (CA, subject)`, `leaf = (LEAF, subject)`.
pub fn openssl_ca_and_leaf(dir: &Path, ca: (&str, &str), leaf: (&str, &str), days: u32) {
    let p = |name: &str, ext: &str| dir.join(format!("{name}.{ext}")).to_str().unwrap().to_string();
    openssl_self_signed_days(Path::new(&p(ca.0, "key")), Path::new(&p(ca.0, "pem")), ca.1, days);
    let (leaf_key, csr, leaf_pem) = (p(leaf.0, "key"), p(leaf.0, "csr"), p(leaf.0, "pem"));
    openssl(&["req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", &leaf_key, "-out", &csr, "-subj", leaf.1]);
    let (ca_pem, ca_key, days) = (p(ca.0, "pem"), p(ca.0, "key"), days.to_string());
    openssl(&[
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        &ca_pem,
        "-CAkey",
        &ca_key,
        "-CAcreateserial",
        "-out",
        &leaf_pem,
        "-days",
        &days,
    ]);
}

/// The hex digits of `openssl x509 -fingerprint -DIGEST` (upper-case, no colons); `extra` goes
/// before `-noout` (e.g. `["-inform", "DER"]`).
pub fn openssl_fingerprint_hex(cert: &str, extra: &[&str], digest: &str) -> String {
    let mut args = vec!["x509", "-in", cert];
    args.extend_from_slice(extra);
    let digest = format!("-{digest}");
    args.extend(["-noout", "-fingerprint", digest.as_str()]);
    let s = String::from_utf8(openssl(&args).stdout).unwrap();
    s.trim().rsplit('=').next().unwrap().replace(':', "")
}

/// A fresh RSA-2048 credential valid for `days` days.
pub fn credential_for_days(cn: &str, days: u32) -> LoadedCredential {
    let (cert, key) = generate(&NewCertificate {
        subject: format!("CN={cn}"),
        key_size: KeySize::Rsa2048,
        validity: Validity::Days(days),
    })
    .unwrap();
    LoadedCredential::new(cert, vec![], key, &PathBuf::new()).expect("the generated key is the certificate's")
}

/// A Graph-format keyCredentials entry for `cert`, with explicit dates.
pub fn entry_dated(cert: &Certificate, start: &str, end: &str) -> Value {
    json!({
        "customKeyIdentifier": cert.custom_key_identifier(),
        "displayName": cert.subject(),
        "endDateTime": end,
        "key": cert.value_b64(),
        "keyId": uuid::Uuid::new_v4().to_string(),
        "startDateTime": start,
        "type": "AsymmetricX509Cert",
        "usage": "Verify",
    })
}

/// A Graph-format entry valid over the certificate's own dates.
pub fn valid_entry(cert: &Certificate) -> Value {
    entry_dated(cert, &keycred::dates::format(cert.not_before()), &keycred::dates::format(cert.not_after()))
}

/// An emulator configuration for [`TENANT`] on these manifests with these grants, not logging.
pub fn emulator_config(manifests: Vec<PathBuf>, grants: Vec<(String, Vec<String>)>) -> EmulatorConfig {
    let mut cfg = EmulatorConfig::new(manifests);
    cfg.tenant = TENANT.into();
    cfg.grants = grants;
    cfg.log = false;
    cfg
}

/// A client assertion signed by `cred` for `client_id` and `aud` (RS256 unless `alg`).
pub fn signed_assertion(cred: &LoadedCredential, client_id: &str, aud: &str, alg: SignatureAlg) -> String {
    jwt::client_assertion(
        cred,
        &AssertionParams { client_id: client_id.into(), audience: aud.into(), alg, x5c: false, lifetime: 600 },
    )
    .unwrap()
    .expose()
    .to_string()
}

/// The form of a client-credentials request for `scope/.default` authenticated by `assertion`.
pub fn client_credentials_form<'a>(client_id: &'a str, scope: &'a str, assertion: &'a str) -> [(&'a str, &'a str); 5] {
    [
        ("grant_type", "client_credentials"),
        ("client_id", client_id),
        ("scope", scope),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion),
    ]
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(20)).no_proxy().build().unwrap()
}

/// Posts a form; returns status and JSON body (Null when not JSON).
pub async fn post(url: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let r = client().post(url).form(form).send().await.unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// Every entry's name and content directly under `d` (`<dir>` for a directory).
pub fn snapshot(d: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut m = BTreeMap::new();
    for e in std::fs::read_dir(d).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            m.insert(p.clone(), std::fs::read(&p).unwrap());
        } else {
            m.insert(p, b"<dir>".to_vec());
        }
    }
    m
}

/// A tenant made by `keycred emulate --generate-tenant N --with-keys`, served by an in-process
/// emulator granting Graph's `Application.ReadWrite.All` and `AuditLog.Read.All` to every app.
pub struct Generated {
    pub dir: TempDir,
    /// The tenant's directory (manifests, `keys/`, `ground-truth.jsonl`).
    pub out: PathBuf,
    /// `ground-truth.jsonl`, one value a line.
    pub truth: Vec<Value>,
    /// The automation app's id and PEM bundle.
    pub automation: String,
    pub bundle: String,
    pub emu: keycred::emulator::BlockingEmulator,
}

pub fn generated(n: usize, tag: &str) -> Generated {
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
    let roles = vec!["Application.ReadWrite.All".into(), "AuditLog.Read.All".into(), "Policy.Read.All".into()];
    let cfg = emulator_config(manifests, vec![("https://graph.microsoft.com".into(), roles)]);
    let emu = keycred::emulator::start_blocking(cfg).unwrap();
    Generated {
        dir,
        out,
        truth,
        automation: summary["automationAppId"].as_str().unwrap().into(),
        bundle: summary["automationBundle"].as_str().unwrap().into(),
        emu,
    }
}

/// Says in the test output that a test (or part of one) was skipped, and why. Written to the
/// process's stderr directly, not through `eprintln!`, which the test harness captures and
/// shows only for failing tests: a skipped check must not pass silently.
pub fn skipped(test: &str, why: impl std::fmt::Display) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED {test}: {why}");
}
