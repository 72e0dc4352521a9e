//! Shared fixtures for the emulator tests: throw-away certificates, manifest files written as
//! JSON, an in-process emulator on 127.0.0.1:0, and form posts.
#![allow(dead_code)]

mod browser;

pub use crate::common::*;
pub use browser::*;
use keycred::cert::{LoadedCredential, SignatureAlg};
use keycred::emulator::{start, EmulatorConfig, EmulatorHandle, EndpointVersion};
use keycred::jwt;
use serde_json::{json, Map, Value};
use std::path::PathBuf;

/// A certificate with its key, valid for 30 days.
pub fn credential(cn: &str) -> LoadedCredential {
    credential_for_days(cn, 30)
}

/// A Graph-format keyCredentials entry for `cert`, with explicit dates.
pub fn entry(cert: &keycred::cert::Certificate, start: &str, end: &str) -> Value {
    entry_dated(cert, start, end)
}

/// Writes a Graph-format manifest with these entries.
pub fn write_manifest(path: &std::path::Path, entries: Vec<Value>) {
    let m = json!({
        "id": OBJECT_ID,
        "appId": APP_ID,
        "displayName": "keycred emulator test",
        "signInAudience": "AzureADMyOrg",
        "web": { "redirectUris": [] },
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
    let dir = TempDir::new("emu-test");
    let cred = credential("emulator test app");
    let manifest = dir.path("app.json");
    write_manifest(&manifest, vec![valid_entry(&cred.cert)]);
    let mut cfg =
        emulator_config(vec![manifest.clone()], vec![(API.into(), vec!["Data.Read".into(), "Data.Write".into()])]);
    tweak(&mut cfg);
    let emu = start(cfg).await.unwrap();
    Fixture { dir, manifest, cred, emu }
}

impl Fixture {
    pub fn v1(&self) -> String {
        self.emu.info().token_endpoint(EndpointVersion::V1)
    }
    pub fn v2(&self) -> String {
        self.emu.info().token_endpoint(EndpointVersion::V2)
    }
    /// A correct RS256 assertion for `aud`.
    pub fn assertion(&self, aud: &str) -> String {
        assertion_for(&self.cred, aud, SignatureAlg::Rs256)
    }
    /// Signs `claims` (completed with defaults) with the registered key and `header`.
    pub fn signed(&self, header: Map<String, Value>, claims: Value) -> String {
        jwt::sign(&*self.cred.key, SignatureAlg::Rs256, header, &claims).unwrap()
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
        post(&self.v2(), &client_credentials_form(APP_ID, &format!("{API}/.default"), assertion)).await
    }
}

pub fn assertion_for(cred: &LoadedCredential, aud: &str, alg: SignatureAlg) -> String {
    signed_assertion(cred, APP_ID, aud, alg)
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

/// The app id the emulator derives for a resource URI (the `aud` of its v2 tokens), computed
/// here with openssl: SHA-256 of `keycred-emulator resource {uri, lower case, no trailing /}`,
/// first 16 bytes, UUID version 4 and RFC 4122 variant bits set.
pub fn derived_resource_id(uri: &str) -> String {
    let dir = TempDir::new("emu-derive");
    let input = dir.path("in.txt");
    let name = uri.trim_end_matches('/').to_ascii_lowercase();
    std::fs::write(&input, format!("keycred-emulator resource {name}")).unwrap();
    let out = openssl(&["dgst", "-sha256", "-r", input.to_str().unwrap()]);
    let hex = String::from_utf8(out.stdout).unwrap();
    let mut b: Vec<u8> = (0..16).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap()).collect();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// Posts a v2 client-credentials request for `scope` with a correct assertion.
pub async fn v2_token_for(f: &Fixture, scope: &str) -> (u16, Value) {
    post(&f.v2(), &client_credentials_form(APP_ID, scope, &f.assertion(&f.v2()))).await
}

/// The claims of the access token in a successful token answer.
pub fn token_claims(body: &Value) -> serde_json::Map<String, Value> {
    keycred::jwt::dangerous::decode(body["access_token"].as_str().unwrap()).unwrap().claims
}

/// Reads a token answer that must have succeeded: HTTP 200, a Bearer token, issued to
/// `client_id` (v1's `appid` or v2's `azp`); returns its claims. A 200 alone proves nothing
/// about the token.
pub async fn issued_to(r: reqwest::Response, client_id: &str) -> serde_json::Map<String, Value> {
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer", "{body}");
    let claims = token_claims(&body);
    let to = claims.get("azp").or(claims.get("appid")).and_then(Value::as_str).unwrap_or_default();
    assert_eq!(to, client_id, "{claims:?}");
    claims
}

/// The token a consent page's form carries (its hidden `form_token` field), which the page's
/// POST must send back.
pub fn form_token(html: &str) -> String {
    let at = html.find("name=\"form_token\" value=\"").unwrap_or_else(|| panic!("no form token in {html}"));
    let rest = &html[at + "name=\"form_token\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

/// `keycred emulate` as a child process, killed on drop: for attacks that could crash the
/// process they hit (a stack overflow aborts it), which must abort no other test.
pub struct EmulateProcess {
    child: std::process::Child,
    /// Its base URL.
    pub base: String,
    /// Its v2 token endpoint.
    pub v2: String,
    /// The app it serves (APP_ID) and that app's certificate.
    pub cred: LoadedCredential,
}

impl Drop for EmulateProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `keycred emulate` serving one app (APP_ID, with `api://caller` as identifier URI)
/// granted `roles` on Microsoft Graph.
pub fn emulate_process(dir: &TempDir, roles: &str) -> EmulateProcess {
    let cred = credential("emulate process app");
    let manifest = dir.path("app.json");
    let m = json!({"id": OBJECT_ID, "appId": APP_ID, "displayName": "emulate process app", "identifierUris": ["api://caller"],
                   "signInAudience": "AzureADMyOrg", "keyCredentials": [valid_entry(&cred.cert)]});
    std::fs::write(&manifest, m.to_string()).unwrap();
    let grant = format!("https://graph.microsoft.com={roles}");
    let manifest = manifest.display().to_string();
    let (child, info) = spawn_emulate(&["--tenant", TENANT, "--grant", &grant, "--manifest", &manifest]);
    let s = |k: &str| info[k].as_str().unwrap().to_string();
    EmulateProcess { base: s("baseUrl"), v2: s("tokenEndpointV2"), cred, child }
}

impl EmulateProcess {
    /// A Graph token of the app.
    pub async fn graph_token(&self) -> String {
        let a = assertion_for(&self.cred, &self.v2, SignatureAlg::Rs256);
        let (s, b) = post(&self.v2, &client_credentials_form(APP_ID, "https://graph.microsoft.com/.default", &a)).await;
        assert_eq!(s, 200, "{b}");
        b["access_token"].as_str().unwrap().to_string()
    }
}

/// Follows a URL once (as a browser would) and returns the `Location` it redirects to.
pub fn follow_redirect(url: &str) -> String {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let c = reqwest::Client::builder().no_proxy().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let r = c.get(url).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 302, "{url}: {}", r.text().await.unwrap());
        r.headers()["location"].to_str().unwrap().to_string()
    })
}

/// `keycred emulate ARGS -o json` started, with its first line (printed once it listens) parsed.
pub fn spawn_emulate(args: &[&str]) -> (std::process::Child, Value) {
    use std::io::BufRead;
    let mut child = keycred_bare()
        .args(["-o", "json", "emulate"])
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let info = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: the ready line {line:?}"));
    (child, info)
}

/// `keycred emulate ARGS -o json`'s first line, parsed (the emulator is stopped once it is read).
pub fn emulate_announcement(args: &[&str]) -> Value {
    let (mut child, info) = spawn_emulate(args);
    let _ = child.kill();
    let _ = child.wait();
    info
}
