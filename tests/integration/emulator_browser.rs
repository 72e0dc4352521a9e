//! The consent page in a real browser: headless Chromium, driven through chromedriver's W3C
//! WebDriver HTTP API over loopback, opens the admin-consent URL, clicks Accept and lands on the
//! reply URL with `admin_consent=True`; the app's token then carries the consented role.
//!
//! Chromium and chromedriver come from Debian's packages (`chromium`, `chromium-driver`);
//! `cargo xtask test` installs them when missing, as it does openssl.

use crate::emulator_support::*;

use keycred::emulator::{start, EndpointVersion};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver, killed however the test ends.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// How long chromedriver may take to start, and the page to load after the click.
const PATIENCE: Duration = Duration::from_secs(60);

/// Starts chromedriver on a port it picks itself (`--port=0`), so that no other process can
/// take the port between our choosing it and chromedriver listening on it; the port it printed.
fn start_driver(log: std::fs::File) -> (Driver, u16) {
    let mut driver = Driver(
        Command::new(CHROMEDRIVER)
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("chromedriver starts"),
    );
    // It prints "ChromeDriver was started successfully on port N." once it listens; the rest of
    // its output is read on another thread, so that chromedriver never blocks on a full pipe.
    let out = driver.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + PATIENCE;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let port = line
                    .strip_prefix("ChromeDriver was started successfully on port ")
                    .and_then(|p| p.trim_end_matches('.').parse().ok());
                if let Some(port) = port {
                    return (driver, port);
                }
                seen.push(line);
            }
            Err(e) => panic!("chromedriver did not say which port it listens on ({e}): {seen:?}"),
        }
    }
}

/// A loopback page for the browser to land on: answers every request with 200.
fn landing_server() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let body = "<!DOCTYPE html><title>landed</title><p>landed</p>";
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

async fn wd(c: &reqwest::Client, method: reqwest::Method, url: String, body: Option<Value>) -> Value {
    let mut r = c.request(method, &url);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.unwrap_or_else(|e| panic!("WebDriver {url}: {e}"));
    let status = resp.status();
    let v: Value = resp.json().await.unwrap();
    assert!(status.is_success(), "WebDriver {url}: {status} {v}");
    v["value"].clone()
}

#[tokio::test]
async fn headless_chromium_accepts_admin_consent_and_lands_on_the_reply_url() {
    for tool in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            std::path::Path::new(tool).exists(),
            "{tool} is missing: install Debian's chromium and chromium-driver (cargo xtask test does it)"
        );
    }
    let dir = TempDir::new("emu-browser");
    let reply = format!("http://127.0.0.1:{}/callback", landing_server());
    let cred = credential("browser consent app");
    let manifest = dir.path("app.json");
    let m = json!({
        "id": OBJECT_ID, "appId": APP_ID, "displayName": "Contoso Activity Reader",
        "web": {"redirectUris": [reply]},
        "requiredResourceAccess": [{"resourceAppId": "c5393580-f805-4401-95e8-94b7a6ef2fc2",
            "resourceAccess": [{"id": "594c1fb6-4f81-4475-ae41-0c394909246c", "type": "Role"}]}],
        "keyCredentials": [valid_entry(&cred.cert)],
    });
    std::fs::write(&manifest, serde_json::to_string_pretty(&m).unwrap()).unwrap();
    let emu = start(emulator_config(vec![manifest], vec![])).await.unwrap();

    let log = std::fs::File::create(dir.path("chromedriver.log")).unwrap();
    let (mut driver, port) = start_driver(log);
    let c = reqwest::Client::builder().timeout(PATIENCE).no_proxy().build().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    // Listening is not yet ready for a session: ask its status until it is, within the deadline.
    let deadline = Instant::now() + PATIENCE;
    let mut ready = false;
    while !ready && Instant::now() < deadline {
        assert!(driver.0.try_wait().unwrap().is_none(), "chromedriver exited; see {}", dir.s("chromedriver.log"));
        if let Ok(r) = c.get(format!("{base}/status")).send().await {
            ready = r.json::<Value>().await.is_ok_and(|v| v["value"]["ready"] == true);
        }
        if !ready {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert!(ready, "chromedriver was not ready within {PATIENCE:?}");

    let profile = dir.path("profile");
    let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
        "binary": CHROMIUM,
        "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--proxy-server=direct://", "--proxy-bypass-list=*",
                 format!("--user-data-dir={}", profile.display())]}}}});
    let session = wd(&c, reqwest::Method::POST, format!("{base}/session"), Some(caps)).await;
    let sid = session["sessionId"].as_str().unwrap().to_string();
    let s = format!("{base}/session/{sid}");

    let url = format!(
        "{}?client_id={APP_ID}&redirect_uri={}&state=browser-state&scope={}",
        emu.info().admin_consent_endpoint(),
        url::form_urlencoded::byte_serialize(reply.as_bytes()).collect::<String>(),
        url::form_urlencoded::byte_serialize(b"https://manage.office.com/.default").collect::<String>()
    );
    wd(&c, reqwest::Method::POST, format!("{s}/url"), Some(json!({"url": url}))).await;
    let title = wd(&c, reqwest::Method::GET, format!("{s}/title"), None).await;
    assert!(title.as_str().unwrap().contains("Permissions requested"), "{title}");
    let source = wd(&c, reqwest::Method::GET, format!("{s}/source"), None).await;
    assert!(source.as_str().unwrap().contains("ActivityFeed.Read"), "the permission is shown: {source}");
    let el = wd(
        &c,
        reqwest::Method::POST,
        format!("{s}/element"),
        Some(json!({"using": "css selector", "value": "#accept"})),
    )
    .await;
    let eid = el.as_object().unwrap().values().next().unwrap().as_str().unwrap().to_string();
    wd(&c, reqwest::Method::POST, format!("{s}/element/{eid}/click"), Some(json!({}))).await;
    // The click submits the form; the browser follows the redirect to the landing page.
    let deadline = Instant::now() + PATIENCE;
    let mut landed = String::new();
    while Instant::now() < deadline {
        landed = wd(&c, reqwest::Method::GET, format!("{s}/url"), None).await.as_str().unwrap().to_string();
        if landed.starts_with(&reply) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = c.delete(&s).send().await;
    assert!(landed.starts_with(&reply), "landed on {landed}");
    let q: std::collections::HashMap<String, String> =
        url::Url::parse(&landed).unwrap().query_pairs().into_owned().collect();
    assert_eq!(q.get("admin_consent").map(String::as_str), Some("True"), "{landed}");
    assert_eq!(q.get("tenant").map(String::as_str), Some(TENANT));
    assert_eq!(q.get("state").map(String::as_str), Some("browser-state"));

    // The consent took effect: the app's token now carries the role.
    let v2 = emu.info().token_endpoint(EndpointVersion::V2);
    let a = assertion_for(&cred, &v2, keycred::cert::SignatureAlg::Rs256);
    let (st, b) = post(&v2, &client_credentials_form(APP_ID, "https://manage.office.com/.default", &a)).await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(token_claims(&b)["roles"], json!(["ActivityFeed.Read"]));
}
