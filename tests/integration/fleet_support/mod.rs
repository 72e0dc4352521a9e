//! A small tenant on loopback for the fleet tests: Graph's `GET /v1.0/applications` (pages of
//! `$top`, `@odata.nextLink` with `$skiptoken`, `$filter=appId eq`), `GET` and `PATCH` of one
//! application (entries re-sent with `"key": null` keep their body, as Graph does), a v2 token
//! endpoint that accepts an assertion signed by a currently registered certificate, and knobs
//! the emulator does not have: refusals (403/400) per application and a 429 with `Retry-After`
//! every N Graph requests. Every request is logged with its time and `client-request-id`.
//!
//! It runs on its own thread, so the tests can drive the keycred binary synchronously, and
//! stops on drop.
#![allow(dead_code)]

pub use crate::common::*;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use keycred::cert::{generate, Certificate, KeySize, NewCertificate, SignatureAlg, Validity};
use keycred::dates;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The bearer token the fake Graph accepts (given to keycred with --graph-token-env).
pub const GRAPH_TOKEN: &str = "fleet-test-graph-token";

/// One logged request.
#[derive(Clone, Debug)]
pub struct Logged {
    pub at: Instant,
    pub method: String,
    pub path: String,
    pub status: u16,
    pub client_request_id: Option<String>,
}

#[derive(Default)]
pub struct Tenant {
    /// By object id.
    pub apps: BTreeMap<String, Value>,
    /// Service principals (served in one page).
    pub sps: Vec<Value>,
    /// Tokens the token endpoint issued that Graph accepts (besides [`GRAPH_TOKEN`]).
    pub issued: Vec<String>,
    /// After this many Graph requests, the issued tokens expire (Graph answers 401).
    pub expire_tokens_after: Option<u64>,
    /// Token requests answered.
    pub token_requests: u64,
    /// appId -> status its PATCH answers (403 or 400).
    pub refuse: HashMap<String, u16>,
    /// Answer 429 to every Nth Graph request.
    pub throttle_every: Option<u64>,
    /// `Retry-After` of those 429s (none when `None`).
    pub retry_after: Option<u64>,
    /// Largest page served, whatever `$top` asks.
    pub page_max: usize,
    /// While above zero, every page of `GET /v1.0/applications` gives the same
    /// `@odata.nextLink` (that of the second page), as a broken Graph or proxy could; each such
    /// answer counts one down, so a client that does not notice still ends, instead of hanging
    /// its test.
    pub repeat_next_link: u64,
    pub graph_requests: u64,
    pub log: Vec<Logged>,
    /// Requests of any kind (Graph and token) answered or being answered.
    pub requests: u64,
    /// When request number N has been handled (its change applied), its answer is held back
    /// until the test clears [`Tenant::stalled`]: a process can be killed at a known point, with
    /// the server's side of that request done and the client's not.
    pub stall_at: Option<u64>,
    /// Set while an answer is held back.
    pub stalled: bool,
    /// Requests being handled now (a killed client's requests are still handled after it died).
    pub in_flight: u64,
    /// The tenant's default app management policy; without one the policy endpoints are not
    /// served (404, not logged).
    pub policy: Option<Value>,
    /// Object id -> its federated identity credentials, served one per page (none when absent).
    /// Their requests are neither logged nor throttled, so that the other tests' counts hold.
    pub fics: HashMap<String, Vec<Value>>,
    /// Object ids whose federated identity credentials Graph refuses to list (403).
    pub fics_refused: Vec<String>,
}

type Shared = Arc<Mutex<Tenant>>;

pub struct FakeTenant {
    pub url: String,
    pub state: Shared,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for FakeTenant {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl FakeTenant {
    pub fn start(apps: Vec<Value>, page_max: usize) -> FakeTenant {
        let mut t = Tenant { page_max, ..Default::default() };
        for a in apps {
            t.apps.insert(a["id"].as_str().unwrap().to_string(), a);
        }
        let state: Shared = Arc::new(Mutex::new(t));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (url_tx, url_rx) = std::sync::mpsc::channel();
        let st = state.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let url = format!("http://{}", listener.local_addr().unwrap());
                let app = Router::new()
                    .route("/v1.0/applications", get(list))
                    .route("/v1.0/servicePrincipals", get(list_sps))
                    .route("/v1.0/applications/{id}", get(get_app).patch(patch_app))
                    .route("/{tenant}/oauth2/v2.0/token", post(token))
                    .route("/v1.0/policies/{name}", get(policy))
                    .route("/v1.0/applications/{id}/appManagementPolicies", get(assigned_policies))
                    .route("/v1.0/applications/{id}/federatedIdentityCredentials", get(fics))
                    .layer(axum::middleware::from_fn_with_state(st.clone(), stall))
                    .with_state((st, url.clone()));
                url_tx.send(url).unwrap();
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = rx.await;
                    })
                    .await
                    .unwrap();
            });
        });
        let url = url_rx.recv().unwrap();
        FakeTenant { url, state, stop: Some(tx), thread: Some(thread) }
    }

    pub fn app(&self, object_id: &str) -> Value {
        self.state.lock().unwrap().apps[object_id].clone()
    }
    pub fn apps(&self) -> Vec<Value> {
        self.state.lock().unwrap().apps.values().cloned().collect()
    }
    /// Waits (at most 10 s) until no request is being handled and none has come for 100 ms:
    /// what a killed client had already sent has then been applied.
    pub fn settle(&self) {
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        let mut seen = (u64::MAX, Instant::now());
        while Instant::now() < deadline {
            let (requests, in_flight) = {
                let t = self.state.lock().unwrap();
                (t.requests, t.in_flight)
            };
            if requests != seen.0 || in_flight > 0 {
                seen = (requests, Instant::now());
            } else if seen.1.elapsed() >= std::time::Duration::from_millis(100) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        panic!("the fake tenant is still busy 10 s after its client stopped");
    }

    pub fn log(&self) -> Vec<Logged> {
        self.state.lock().unwrap().log.clone()
    }
}

type St = State<(Shared, String)>;

/// Counts every request and holds back the answer to request [`Tenant::stall_at`].
async fn stall(State(st): State<Shared>, req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    // A guard, not a decrement at the end: hyper drops the future of a request whose client
    // has gone.
    struct InFlight(Shared);
    impl Drop for InFlight {
        fn drop(&mut self) {
            self.0.lock().unwrap().in_flight -= 1;
        }
    }
    st.lock().unwrap().in_flight += 1;
    let _in_flight = InFlight(st.clone());
    let response = next.run(req).await;
    let hold = {
        let mut t = st.lock().unwrap();
        t.requests += 1;
        let hold = t.stall_at == Some(t.requests);
        if hold {
            t.stalled = true;
        }
        hold
    };
    // Bounded, so a test that forgets to release cannot hang the server's shutdown.
    let until = Instant::now() + std::time::Duration::from_secs(30);
    while hold && st.lock().unwrap().stalled && Instant::now() < until {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    response
}

fn graph_error(status: u16, code: &str, message: &str) -> Response {
    let body = json!({"error": {"code": code, "message": message, "innerError": {
        "date": "2026-12-01T10:52:24", "request-id": uuid::Uuid::new_v4().to_string(),
        "client-request-id": uuid::Uuid::new_v4().to_string()}}});
    (StatusCode::from_u16(status).unwrap(), Json(body)).into_response()
}

/// Logs the request; answers 401 without the token and 429 on the throttled turn.
fn gate(t: &mut Tenant, method: &str, path: &str, headers: &HeaderMap) -> Option<Response> {
    t.graph_requests += 1;
    let crid = headers.get("client-request-id").and_then(|v| v.to_str().ok()).map(str::to_string);
    let mut status = 200;
    let mut answer = None;
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
    if t.expire_tokens_after.is_some_and(|n| t.graph_requests > n) {
        t.expire_tokens_after = None;
        t.issued.clear();
    }
    let issued = auth.strip_prefix("Bearer ").is_some_and(|b| t.issued.iter().any(|i| i == b));
    if auth != format!("Bearer {GRAPH_TOKEN}") && !issued {
        status = 401;
        answer = Some(graph_error(401, "InvalidAuthenticationToken", "Access token is empty."));
    } else if t.throttle_every.is_some_and(|n| t.graph_requests.is_multiple_of(n)) {
        status = 429;
        let mut r = graph_error(429, "TooManyRequests", "Too many requests.");
        if let Some(s) = t.retry_after {
            r.headers_mut().insert("retry-after", s.to_string().parse().unwrap());
        }
        answer = Some(r);
    }
    t.log.push(Logged {
        at: Instant::now(),
        method: method.into(),
        path: path.into(),
        status,
        client_request_id: crid,
    });
    answer
}

async fn list(State((st, url)): St, Query(q): Query<HashMap<String, String>>, headers: HeaderMap) -> Response {
    let mut t = st.lock().unwrap();
    if let Some(r) = gate(&mut t, "GET", "/v1.0/applications", &headers) {
        return r;
    }
    let top: usize = q.get("$top").and_then(|v| v.parse().ok()).unwrap_or(100).min(t.page_max);
    let skip: usize = q.get("$skiptoken").and_then(|v| v.parse().ok()).unwrap_or(0);
    let filter = q.get("$filter").map(|f| {
        f.strip_prefix("appId eq '").and_then(|r| r.strip_suffix('\'')).expect("only appId eq filters").to_string()
    });
    let all: Vec<&Value> = t
        .apps
        .values()
        .filter(|a| filter.as_ref().is_none_or(|id| a["appId"].as_str().unwrap().eq_ignore_ascii_case(id)))
        .collect();
    let page: Vec<Value> = all.iter().skip(skip).take(top).map(|a| (*a).clone()).collect();
    let mut body = json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#applications", "value": page});
    let select = q.get("$select").cloned().unwrap_or_default();
    let link = |skip: usize| format!("{url}/v1.0/applications?$select={select}&$top={top}&$skiptoken={skip}");
    if t.repeat_next_link > 0 {
        t.repeat_next_link -= 1;
        body["@odata.nextLink"] = json!(link(top));
    } else if skip + top < all.len() {
        body["@odata.nextLink"] = json!(link(skip + top));
    }
    Json(body).into_response()
}

/// `GET /v1.0/policies/defaultAppManagementPolicy` (the tenant's policy) and
/// `/v1.0/policies/appManagementPolicies` (no per-app policy).
async fn policy(State((st, _)): St, Path(name): Path<String>, headers: HeaderMap) -> Response {
    let mut t = st.lock().unwrap();
    let Some(p) = t.policy.clone() else { return StatusCode::NOT_FOUND.into_response() };
    if let Some(r) = gate(&mut t, "GET", &format!("/v1.0/policies/{name}"), &headers) {
        return r;
    }
    match name.as_str() {
        "defaultAppManagementPolicy" => Json(p).into_response(),
        _ => Json(json!({"value": []})).into_response(),
    }
}

async fn assigned_policies(State((st, _)): St, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let mut t = st.lock().unwrap();
    if t.policy.is_none() {
        return StatusCode::NOT_FOUND.into_response();
    }
    if let Some(r) = gate(&mut t, "GET", &format!("/v1.0/applications/{id}/appManagementPolicies"), &headers) {
        return r;
    }
    Json(json!({"value": []})).into_response()
}

/// `GET /v1.0/applications/{id}/federatedIdentityCredentials`, one credential per page.
async fn fics(State((st, url)): St, Path(id): Path<String>, Query(q): Query<HashMap<String, String>>) -> Response {
    let t = st.lock().unwrap();
    if t.fics_refused.contains(&id) {
        return graph_error(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.");
    }
    let all = t.fics.get(&id).cloned().unwrap_or_default();
    let skip: usize = q.get("$skiptoken").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = json!({"value": all.iter().skip(skip).take(1).collect::<Vec<_>>()});
    if skip + 1 < all.len() {
        body["@odata.nextLink"] =
            json!(format!("{url}/v1.0/applications/{id}/federatedIdentityCredentials?$skiptoken={}", skip + 1));
    }
    Json(body).into_response()
}

async fn list_sps(State((st, _)): St, headers: HeaderMap) -> Response {
    let mut t = st.lock().unwrap();
    if let Some(r) = gate(&mut t, "GET", "/v1.0/servicePrincipals", &headers) {
        return r;
    }
    Json(json!({"value": t.sps.clone()})).into_response()
}

async fn get_app(State((st, _)): St, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let mut t = st.lock().unwrap();
    if let Some(r) = gate(&mut t, "GET", &format!("/v1.0/applications/{id}"), &headers) {
        return r;
    }
    match t.apps.get(&id) {
        Some(a) => Json(a.clone()).into_response(),
        None => graph_error(404, "Request_ResourceNotFound", "Resource does not exist."),
    }
}

async fn patch_app(
    State((st, _)): St,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let mut t = st.lock().unwrap();
    if let Some(r) = gate(&mut t, "PATCH", &format!("/v1.0/applications/{id}"), &headers) {
        return r;
    }
    let Some(app) = t.apps.get(&id).cloned() else {
        return graph_error(404, "Request_ResourceNotFound", "Resource does not exist.");
    };
    if let Some(s) = t.refuse.get(app["appId"].as_str().unwrap()) {
        return match s {
            403 => {
                graph_error(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
            }
            _ => graph_error(400, "KeyCredentialsInvalidValue", "Key credential end date is invalid."),
        };
    }
    let old = app["keyCredentials"].as_array().cloned().unwrap_or_default();
    let mut new = Vec::new();
    for e in body["keyCredentials"].as_array().unwrap() {
        let mut e = e.clone();
        if e["key"].is_null() {
            // Re-sent by keyId: keeps the registered body.
            let Some(o) = old.iter().find(|o| o["keyId"] == e["keyId"]) else {
                return graph_error(400, "KeyCredentialsInvalidValue", "Key credential key is empty.");
            };
            e["key"] = o["key"].clone();
        }
        if e.get("keyId").is_none_or(Value::is_null) {
            e["keyId"] = json!(uuid::Uuid::new_v4().to_string());
        }
        new.push(e);
    }
    t.apps.get_mut(&id).unwrap()["keyCredentials"] = json!(new);
    StatusCode::NO_CONTENT.into_response()
}

/// Accepts an assertion signed by a registered, currently valid certificate of `client_id`.
async fn token(State((st, _)): St, Form(f): Form<HashMap<String, String>>) -> Response {
    let refuse = |m: &str| {
        (StatusCode::UNAUTHORIZED, Json(json!({"error": "invalid_client", "error_description": m}))).into_response()
    };
    let mut t = st.lock().unwrap();
    t.token_requests += 1;
    let client_id = f.get("client_id").cloned().unwrap_or_default();
    let Some(app) = t.apps.values().find(|a| a["appId"].as_str() == Some(client_id.as_str())) else {
        return refuse("AADSTS700016: Application not found in the directory.");
    };
    let Ok(d) = keycred::jwt::dangerous::decode(f.get("client_assertion").map(String::as_str).unwrap_or("")) else {
        return refuse("AADSTS50027: JWT token is invalid or malformed.");
    };
    let x5t = d.header.get("x5t").and_then(Value::as_str).unwrap_or("");
    let now = dates::now();
    let ok = app["keyCredentials"].as_array().unwrap().iter().any(|e| {
        let Some(der) = e["key"].as_str().and_then(|k| base64::engine::general_purpose::STANDARD.decode(k).ok()) else {
            return false;
        };
        let Ok(c) = Certificate::from_der(&der, "entry") else { return false };
        let end = e["endDateTime"].as_str().and_then(dates::parse_manifest).unwrap_or(c.not_after());
        c.x5t() == x5t && now < end && d.verify(SignatureAlg::Rs256, c.rsa_public_key().unwrap())
    });
    if !ok {
        return refuse("AADSTS700027: Client assertion contains an invalid signature.");
    }
    let token = format!("issued-{}", uuid::Uuid::new_v4());
    t.issued.push(token.clone());
    Json(json!({"token_type": "Bearer", "expires_in": 3599, "access_token": token})).into_response()
}

/// Kinds of application in a generated tenant, by what their certificate is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mix {
    Valid,
    Expiring,
    Expired,
    /// A certificate entry with `usage: Sign`.
    Unusable,
    /// A valid certificate and an expiring one.
    ValidAndExpiring,
}

pub const MIXES: [Mix; 5] = [Mix::Valid, Mix::Expiring, Mix::Expired, Mix::Unusable, Mix::ValidAndExpiring];

/// A certificate valid from 400 days ago for 800 days, whose entry says [start, end].
pub fn cert() -> Certificate {
    let now = dates::now();
    generate(&NewCertificate {
        subject: "CN=fleet test".into(),
        key_size: KeySize::Rsa2048,
        validity: Validity::Range(now - time::Duration::days(400), now + time::Duration::days(400)),
    })
    .unwrap()
    .0
}

pub fn entry_ending_in(c: &Certificate, days: i64) -> Value {
    let now = dates::now();
    entry_dated(c, &dates::format(now - time::Duration::days(300)), &dates::format(now + time::Duration::days(days)))
}

/// The app number `i` with a certificate of `mix` and a client secret.
pub fn app(i: usize, mix: Mix, certs: &[Certificate]) -> Value {
    let c = &certs[i % certs.len()];
    let c2 = &certs[(i + 1) % certs.len()];
    let keys = match mix {
        Mix::Valid => vec![entry_ending_in(c, 200)],
        Mix::Expiring => vec![entry_ending_in(c, 10)],
        Mix::Expired => vec![entry_ending_in(c, -5)],
        Mix::Unusable => {
            let mut e = entry_ending_in(c, 200);
            e["usage"] = json!("Sign");
            vec![e]
        }
        Mix::ValidAndExpiring => vec![entry_ending_in(c, 200), entry_ending_in(c2, 10)],
    };
    let now = dates::now();
    json!({
        "id": format!("00000000-0000-4000-8000-{i:012}"),
        "appId": format!("a0000000-0000-4000-8000-{i:012}"),
        "displayName": format!("App {i}"),
        "keyCredentials": keys,
        "passwordCredentials": [{"keyId": uuid::Uuid::new_v4().to_string(), "hint": "abc", "customKeyIdentifier": null,
            "secretText": null, "displayName": "secret",
            "startDateTime": dates::format(now - time::Duration::days(10)),
            "endDateTime": dates::format(now + time::Duration::days(500))}],
    })
}

/// `n` apps cycling through the mixes, sharing a few certificates (generation is slow).
pub fn tenant(n: usize) -> Vec<Value> {
    let certs: Vec<Certificate> = (0..3).map(|_| cert()).collect();
    (0..n).map(|i| app(i, MIXES[i % MIXES.len()], &certs)).collect()
}

/// Common arguments of `keycred fleet ...` against `t`.
pub fn fleet_args(t: &FakeTenant, cmd: &str) -> Vec<String> {
    [
        "fleet",
        cmd,
        "--tenant",
        TENANT,
        "--graph-url",
        &t.url,
        "--graph-token-env",
        "FLEET_GRAPH_TOKEN",
        "--authority",
        &t.url,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

pub fn run_fleet(args: &[String]) -> std::process::Output {
    keycred_command(args, &[("FLEET_GRAPH_TOKEN", GRAPH_TOKEN)]).output().unwrap()
}

/// stdout parsed as JSON, or a panic showing both streams.
pub fn stdout_json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}\nstderr: {}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    })
}

/// (appId, kind, status) of every credential, from the tenant as generated.
pub fn ground_truth(apps: &[Value]) -> BTreeSet<(String, String, String)> {
    let mut s = BTreeSet::new();
    for (i, a) in apps.iter().enumerate() {
        let id = a["appId"].as_str().unwrap().to_string();
        let certs: &[&str] = match MIXES[i % MIXES.len()] {
            Mix::Valid => &["valid"],
            Mix::Expiring => &["expiring"],
            Mix::Expired => &["expired"],
            Mix::Unusable => &["unusable"],
            Mix::ValidAndExpiring => &["valid", "expiring"],
        };
        for c in certs {
            s.insert((id.clone(), "certificate".into(), c.to_string()));
        }
        s.insert((id, "secret".into(), "valid".into()));
    }
    s
}

/// `fleet rotate` of every app with a certificate ending within 30 days, into `out_dir`.
pub fn rotate_args(t: &FakeTenant, out_dir: &str) -> Vec<String> {
    [fleet_args(t, "rotate"), vec!["--expiring-within".into(), "30d".into(), "--out-dir".into(), out_dir.into()]]
        .concat()
}

/// The apps `--expiring-within 30d` rotates: a certificate ending within 30 days (or ended) and
/// none lasting beyond (an app holding both is already rotated: phase 2 is for it).
pub fn selected_indices(apps: &[Value]) -> Vec<usize> {
    (0..apps.len()).filter(|i| matches!(MIXES[i % MIXES.len()], Mix::Expiring | Mix::Expired)).collect()
}

/// Thumbprints of an app's certificate entries.
pub fn thumbs(app: &Value) -> Vec<String> {
    app["keyCredentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            keycred::manifest::read_entry(0, e.as_object().unwrap())
                .sha1()
                .map(|d| keycred::thumbprint::hex_upper(&d))
                .unwrap()
        })
        .collect()
}

/// The rows of `fleet audit -o csv` output, read by Python's csv module (a reader we did not
/// write), each as a JSON object keyed by the header.
pub fn csv_rows(csv: &[u8]) -> Vec<Value> {
    let dir = TempDir::new("fleet-csv");
    let f = dir.path("audit.csv");
    std::fs::write(&f, csv).unwrap();
    let py = std::process::Command::new("python3")
        .args([
            "-c",
            "import csv,json,sys; print(json.dumps(list(csv.DictReader(open(sys.argv[1], newline='')))))",
            &f.display().to_string(),
        ])
        .output()
        .unwrap();
    assert!(py.status.success(), "{}", String::from_utf8_lossy(&py.stderr));
    serde_json::from_slice(&py.stdout).unwrap()
}
