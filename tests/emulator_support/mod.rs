//! Shared fixtures for the emulator tests: throw-away certificates, manifest files written as
//! JSON, an in-process emulator on 127.0.0.1:0, and form posts.
#![allow(dead_code)]

use keycred::cert::{generate, Certificate, KeySize, LoadedCredential, NewCertificate, SignatureAlg, Validity};
use keycred::emulator::{start, EmulatorConfig, EmulatorHandle, EndpointVersion};
use keycred::jwt::{self, AssertionParams};
use serde_json::{json, Map, Value};
use std::path::PathBuf;
use std::time::Duration;

pub const APP_ID: &str = "6731de76-14a6-49ae-97bc-6eba6914391e";
pub const OBJECT_ID: &str = "0b6c8e1c-2f7e-4d36-9d2a-1c3e5f7a9b0d";
pub const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
pub const API: &str = "api://keycred-test-api";

/// A certificate with its key.
pub fn credential(cn: &str) -> LoadedCredential {
    let (cert, key) = generate(&NewCertificate {
        subject: format!("CN={cn}"),
        key_size: KeySize::Rsa2048,
        validity: Validity::Days(30),
    })
    .unwrap();
    LoadedCredential { cert, chain: vec![], key, cert_path: PathBuf::new() }
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let d = std::env::temp_dir().join(format!("keycred-emu-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A Graph-format keyCredentials entry for `cert`, with explicit dates.
pub fn entry(cert: &Certificate, start: &str, end: &str) -> Value {
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

/// An entry valid now (dates of the certificate).
pub fn valid_entry(cert: &Certificate) -> Value {
    entry(cert, &keycred::dates::format(cert.not_before()), &keycred::dates::format(cert.not_after()))
}

/// Writes a Graph-format manifest with these entries.
pub fn write_manifest(path: &std::path::Path, entries: Vec<Value>) {
    let m = json!({
        "id": OBJECT_ID,
        "appId": APP_ID,
        "displayName": "keycred emulator test",
        "signInAudience": "AzureADMyOrg",
        "keyCredentials": entries,
    });
    std::fs::write(path, serde_json::to_string_pretty(&m).unwrap()).unwrap();
}

/// An emulator serving one app registered with `cred`, granting two roles on [`API`].
pub struct Fixture {
    pub dir: TempDir,
    pub manifest: PathBuf,
    pub cred: LoadedCredential,
    pub emu: EmulatorHandle,
}

pub async fn fixture() -> Fixture {
    fixture_with(|_| {}).await
}

pub async fn fixture_with(tweak: impl FnOnce(&mut EmulatorConfig)) -> Fixture {
    let dir = TempDir::new();
    let cred = credential("emulator test app");
    let manifest = dir.path("app.json");
    write_manifest(&manifest, vec![valid_entry(&cred.cert)]);
    let mut cfg = EmulatorConfig::new(vec![manifest.clone()]);
    cfg.tenant = TENANT.into();
    cfg.grants = vec![(API.into(), vec!["Data.Read".into(), "Data.Write".into()])];
    cfg.log = false;
    tweak(&mut cfg);
    let emu = start(cfg).await.unwrap();
    Fixture { dir, manifest, cred, emu }
}

impl Fixture {
    pub fn v1(&self) -> String {
        self.emu.token_endpoint(EndpointVersion::V1)
    }
    pub fn v2(&self) -> String {
        self.emu.token_endpoint(EndpointVersion::V2)
    }
    /// A correct RS256 assertion for `aud`.
    pub fn assertion(&self, aud: &str) -> String {
        assertion_for(&self.cred, aud, SignatureAlg::Rs256)
    }
    /// Signs `claims` (completed with defaults) with the registered key and `header`.
    pub fn signed(&self, header: Map<String, Value>, claims: Value) -> String {
        jwt::sign(&self.cred.key, SignatureAlg::Rs256, header, &claims).unwrap()
    }
    /// A header with the registered certificate's x5t.
    pub fn header(&self) -> Map<String, Value> {
        let mut h = Map::new();
        h.insert("typ".into(), json!("JWT"));
        h.insert("x5t".into(), json!(self.cred.cert.x5t()));
        h
    }
    /// Standard claims for `aud`, as a JSON object to modify.
    pub fn claims(&self, aud: &str) -> Value {
        let now = jwt::now_secs();
        json!({"aud": aud, "iss": APP_ID, "sub": APP_ID, "jti": uuid::Uuid::new_v4().to_string(),
               "nbf": now, "iat": now, "exp": now + 600})
    }
    /// Posts a v2 client-credentials request with `assertion`.
    pub async fn post_v2_assertion(&self, assertion: &str) -> (u16, Value) {
        post(
            &self.v2(),
            &[
                ("grant_type", "client_credentials"),
                ("client_id", APP_ID),
                ("scope", &format!("{API}/.default")),
                ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
                ("client_assertion", assertion),
            ],
        )
        .await
    }
}

pub fn assertion_for(cred: &LoadedCredential, aud: &str, alg: SignatureAlg) -> String {
    jwt::client_assertion(
        cred,
        &AssertionParams { client_id: APP_ID.into(), audience: aud.into(), alg, x5c: false, lifetime: 600 },
    )
    .unwrap()
    .expose()
    .to_string()
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap()
}

/// Posts a form; returns status and JSON body.
pub async fn post(url: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let r = client().post(url).form(form).send().await.unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// Checks an Entra error answer: status, `error`, the single code, and that the description
/// starts with `AADSTS<code>: ` and carries the trace lines.
pub fn assert_entra_error(got: &(u16, Value), status: u16, error: &str, code: u64) -> String {
    let (s, b) = got;
    assert_eq!(*s, status, "status for {b}");
    assert_eq!(b["error"], error, "error for {b}");
    assert_eq!(b["error_codes"], json!([code]), "codes for {b}");
    let d = b["error_description"].as_str().unwrap();
    assert!(d.starts_with(&format!("AADSTS{code}: ")), "{d}");
    assert!(d.contains("\r\nTrace ID: ") && d.contains("\r\nCorrelation ID: ") && d.contains("\r\nTimestamp: "), "{d}");
    for f in ["timestamp", "trace_id", "correlation_id", "error_uri"] {
        assert!(b[f].is_string(), "{f} missing in {b}");
    }
    d.to_string()
}
