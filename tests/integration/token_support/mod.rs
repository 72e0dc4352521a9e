//! Test support for the token tests: credentials made with the openssl CLI, an independent
//! signature check with `openssl dgst`, and a scripted loopback token endpoint.

#![allow(dead_code)]

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

pub use crate::common::*;

/// A self-signed RSA 2048 certificate and key made by openssl: (cert.pem, key.pem).
pub fn openssl_cred(dir: &TempDir, name: &str) -> (PathBuf, PathBuf) {
    let cert = dir.path(&format!("{name}.pem"));
    let key = dir.path(&format!("{name}.key"));
    openssl_self_signed(&key, &cert, &format!("/CN={name}"));
    (cert, key)
}

/// A self-signed RSA 2048 certificate valid for 2 days, made by openssl: writes `key` and `cert`.
pub fn openssl_self_signed(key: &Path, cert: &Path, subject: &str) {
    openssl_self_signed_days(key, cert, subject, 2);
}

/// The certificate's fingerprint bytes as openssl computes them (`sha1` or `sha256`).
pub fn openssl_fingerprint(cert: &Path, digest: &str) -> Vec<u8> {
    let hex = openssl_fingerprint_hex(cert.to_str().unwrap(), &[], digest);
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect()
}

pub fn hex_upper(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

/// The certificate's DER as standard base64 (openssl's own conversion).
pub fn openssl_der_b64(cert: &Path) -> String {
    let out = openssl(&["x509", "-in", cert.to_str().unwrap(), "-outform", "DER"]);
    STANDARD.encode(out.stdout)
}

/// Splits a compact JWT into (header JSON, claims JSON).
pub fn jwt_parts(jwt: &str) -> (serde_json::Value, serde_json::Value) {
    let p: Vec<&str> = jwt.trim().split('.').collect();
    assert_eq!(p.len(), 3, "three segments");
    for seg in &p {
        assert!(!seg.contains('='), "no padding in JWT segments");
    }
    let dec = |s: &str| serde_json::from_slice(&URL_SAFE_NO_PAD.decode(s).unwrap()).unwrap();
    (dec(p[0]), dec(p[1]))
}

/// Verifies the JWT's signature with `openssl dgst` and the certificate's public key.
pub fn openssl_verify(jwt: &str, cert: &Path, alg: &str, dir: &TempDir) -> bool {
    let p: Vec<&str> = jwt.trim().split('.').collect();
    let input = dir.path("signing-input");
    let sig = dir.path("sig.bin");
    let pubkey = dir.path("pub.pem");
    std::fs::write(&input, format!("{}.{}", p[0], p[1])).unwrap();
    std::fs::write(&sig, URL_SAFE_NO_PAD.decode(p[2]).unwrap()).unwrap();
    let out = openssl(&["x509", "-in", cert.to_str().unwrap(), "-noout", "-pubkey"]);
    std::fs::write(&pubkey, out.stdout).unwrap();
    let mut args = vec!["dgst", "-sha256", "-verify", pubkey.to_str().unwrap(), "-signature", sig.to_str().unwrap()];
    if alg == "PS256" {
        args.extend(["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32"]);
    }
    args.push(input.to_str().unwrap());
    let out = Command::new(OPENSSL).args(&args).output().unwrap();
    out.status.success() && String::from_utf8_lossy(&out.stdout).contains("Verified OK")
}

/// An unsigned-looking access token with `claims` (the tests never verify it).
pub fn fake_access_token(claims: serde_json::Value) -> String {
    let h = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"RS256","kid":"test-kid"}"#);
    let c = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
    format!("{h}.{c}.{}", URL_SAFE_NO_PAD.encode(b"not-a-real-signature-0123456789"))
}

/// Entra's error body as the real endpoint sends it.
pub fn entra_error_body(code: u32, error: &str, text: &str, extra: Option<(&str, &str)>) -> String {
    let mut v = serde_json::json!({
        "error": error,
        "error_description": format!("AADSTS{code}: {text}\r\nTrace ID: 0c1b2a39-trace\r\nCorrelation ID: 5e6f7a8b-corr\r\nTimestamp: 2024-05-01 10:00:00Z"),
        "error_codes": [code],
        "timestamp": "2024-05-01 10:00:00Z",
        "trace_id": "0c1b2a39-trace",
        "correlation_id": "5e6f7a8b-corr",
        "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
    });
    if let Some((k, val)) = extra {
        v[k] = serde_json::Value::String(val.to_string());
    }
    v.to_string()
}

/// One scripted answer.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn json(status: u16, body: impl Into<String>) -> Self {
        Reply {
            status,
            headers: vec![("content-type".into(), "application/json; charset=utf-8".into())],
            body: body.into(),
        }
    }
    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.into(), v.into()));
        self
    }
}

/// One request the server received.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub content_type: String,
    pub form: Vec<(String, String)>,
}

impl Recorded {
    pub fn field(&self, name: &str) -> Option<&str> {
        let all: Vec<&str> = self.form.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect();
        assert!(all.len() <= 1, "field {name} sent {} times", all.len());
        all.first().copied()
    }
    pub fn names(&self) -> Vec<&str> {
        self.form.iter().map(|(k, _)| k.as_str()).collect()
    }
}

#[derive(Default)]
struct State {
    replies: Vec<Reply>,
    next: usize,
    recorded: Vec<Recorded>,
}

/// A token endpoint on 127.0.0.1:0 answering a script (the last reply repeats), on its own
/// thread; shut down and joined on drop.
pub struct TestServer {
    pub base: String,
    state: Arc<Mutex<State>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    pub fn start(replies: Vec<Reply>) -> Self {
        use axum::body::Bytes;
        use axum::extract::State as AxState;
        use axum::http::{HeaderMap, Method, StatusCode, Uri};
        use axum::response::IntoResponse;

        let state = Arc::new(Mutex::new(State { replies, ..Default::default() }));
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let base = format!("http://{}", std_listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let st = state.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                async fn handler(
                    AxState(st): AxState<Arc<Mutex<State>>>,
                    method: Method,
                    uri: Uri,
                    headers: HeaderMap,
                    body: Bytes,
                ) -> axum::response::Response {
                    let form = url::form_urlencoded::parse(&body).into_owned().collect();
                    let content_type =
                        headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                    let mut s = st.lock().unwrap();
                    s.recorded.push(Recorded {
                        method: method.to_string(),
                        path: uri.path().to_string(),
                        content_type,
                        form,
                    });
                    let i = s.next.min(s.replies.len() - 1);
                    s.next += 1;
                    let r = s.replies[i].clone();
                    let mut hm = HeaderMap::new();
                    for (k, v) in &r.headers {
                        hm.insert(
                            axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                            axum::http::HeaderValue::from_str(v).unwrap(),
                        );
                    }
                    (StatusCode::from_u16(r.status).unwrap(), hm, r.body).into_response()
                }
                let app = axum::Router::new().fallback(handler).with_state(st);
                let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = rx.await;
                    })
                    .await
                    .unwrap();
            });
        });
        TestServer { base, state, shutdown: Some(tx), thread: Some(thread) }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().recorded.clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let r = t.join();
            if !std::thread::panicking() {
                r.expect("test server thread panicked");
            }
        }
    }
}

/// Runs the keycred binary with a clean AZURE_* environment plus `env`.
pub fn keycred(args: &[&str], env: &[(&str, &str)]) -> Output {
    keycred_command(args, env).stdin(std::process::Stdio::null()).output().expect("run keycred")
}

/// `SUBCOMMAND --cert CERT --key KEY --client-id CLIENT --tenant TENANT`, to extend.
pub fn cert_args<'a>(sub: &'a str, cert: &'a Path, key: &'a Path, client: &'a str, tenant: &'a str) -> Vec<&'a str> {
    vec![
        sub,
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--client-id",
        client,
        "--tenant",
        tenant,
    ]
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
