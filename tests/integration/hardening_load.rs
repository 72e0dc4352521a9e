//! The emulator under load: 10,000 token requests from 64 concurrent loopback clients, a mix of
//! valid assertions and several kinds of invalid ones. Every answer must be the expected one
//! (no 5xx, no wrong accept, no wrong refusal), and the resident memory must stay flat. And a
//! flood of distinct sign-ins with the largest parameters the emulator reads: its memory after
//! 11,000 of them is that after the first 1,000 (what it keeps of them is bounded), without
//! waiting out a clock (`cargo xtask flood` runs the same flood for a minute, for figures).
//!
//! The emulator runs as a `keycred emulate` child process, so that its memory is measured alone:
//! not with the clients' buffers, nor with the other tests that run in this binary at the same
//! time.

use crate::emulator_support;

use emulator_support::*;
use keycred::cert::SignatureAlg;
use serde_json::{json, Map, Value};
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const REQUESTS: usize = 10_000;
const CLIENTS: usize = 64;

/// `keycred emulate`, killed however the test ends.
struct Emulator(Child);

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Emulator {
    /// `keycred -o json emulate --tenant TENANT ARGS... --manifest MANIFEST`, and its ready line.
    fn start(args: &[&str], manifest: &std::path::Path) -> (Emulator, Value) {
        let mut emu = Emulator(
            Command::new(KEYCRED)
                .args(["-o", "json", "emulate", "--tenant", TENANT])
                .args(args)
                .arg("--manifest")
                .arg(manifest)
                // glibc makes up to eight allocator arenas per core: fixed here, so that what
                // fragmentation adds does not depend on the machine. A leak stays resident.
                .env("MALLOC_ARENA_MAX", "2")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let mut line = String::new();
        std::io::BufReader::new(emu.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let info: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: the ready line {line:?}"));
        (emu, info)
    }

    /// A number of `/proc/<pid>/status`: kB for `VmRSS` and `VmHWM`, a count for `Threads`.
    /// Panics when it cannot be read, so that a missing reading never passes for a flat one.
    fn status(&mut self, field: &str) -> u64 {
        assert!(self.0.try_wait().unwrap().is_none(), "the emulator exited");
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.0.id())).unwrap();
        s.lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc/{}/status:\n{s}", self.0.id()))
    }
}

/// Sends `requests` requests from `clients` concurrent tasks, going round `pool`; the mistakes
/// (at most three a task) and the counts of 5xx answers, wrong accepts and wrong refusals.
async fn run(
    http: &reqwest::Client,
    aud: &str,
    pool: &Arc<Vec<(String, u16, Option<u64>)>>,
    clients: usize,
    requests: usize,
) -> (Vec<String>, [usize; 3]) {
    let scope = format!("{API}/.default");
    let next = Arc::new(AtomicUsize::new(0));
    let counts = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0), AtomicUsize::new(0)]);
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (pool, http, aud, scope, next, counts) =
            (pool.clone(), http.clone(), aud.to_string(), scope.clone(), next.clone(), counts.clone());
        tasks.push(tokio::spawn(async move {
            let mut mistakes = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests {
                    break;
                }
                let (a, want, code) = &pool[i % pool.len()];
                let r = http.post(&aud).form(&client_credentials_form(APP_ID, &scope, a)).send().await.unwrap();
                let status = r.status().as_u16();
                let body: Value = r.json().await.unwrap_or_default();
                if status >= 500 {
                    counts[0].fetch_add(1, Ordering::Relaxed);
                }
                if status == 200 && *want != 200 {
                    counts[1].fetch_add(1, Ordering::Relaxed);
                }
                if *want == 200 && status != 200 {
                    counts[2].fetch_add(1, Ordering::Relaxed);
                }
                let right = status == *want
                    && match code {
                        Some(c) => body["error_codes"] == json!([c]),
                        None => body["access_token"].is_string(),
                    };
                if !right && mistakes.len() < 3 {
                    mistakes.push(format!("request {i}: want {want} {code:?}, got {status} {body}"));
                }
            }
            mistakes
        }));
    }
    let mut mistakes = Vec::new();
    for t in tasks {
        mistakes.extend(t.await.unwrap());
    }
    (mistakes, [0, 1, 2].map(|i| counts[i].load(Ordering::Relaxed)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_requests_from_64_clients() {
    let dir = TempDir::new("emu-load");
    let cred = credential("emulator load app");
    let manifest = dir.path("app.json");
    write_manifest(&manifest, vec![valid_entry(&cred.cert)]);
    let grant = format!("{API}=Data.Read,Data.Write");
    let (mut emu, info) = Emulator::start(&["--grant", &grant], &manifest);
    let (aud, v1) = (info["tokenEndpointV2"].as_str().unwrap(), info["tokenEndpointV1"].as_str().unwrap());

    let other = credential("load attacker");
    let header = || {
        let mut h = Map::new();
        h.insert("typ".into(), json!("JWT"));
        h.insert("x5t".into(), json!(cred.cert.x5t()));
        h
    };
    let claims = || {
        let now = keycred::jwt::now_secs();
        json!({"aud": aud, "iss": APP_ID, "sub": APP_ID, "jti": uuid::Uuid::new_v4().to_string(),
               "nbf": now, "iat": now, "exp": now + 600})
    };
    // A pool of pre-signed assertions with the answer each must get (reuse is allowed: Entra
    // does not reject a re-used jti).
    let mut pool: Vec<(String, u16, Option<u64>)> = Vec::new();
    for _ in 0..4 {
        pool.push((assertion_for(&cred, aud, SignatureAlg::Rs256), 200, None));
        pool.push((assertion_for(&cred, aud, SignatureAlg::Ps256), 200, None));
    }
    pool.push((assertion_for(&other, aud, SignatureAlg::Rs256), 401, Some(700027)));
    pool.push((keycred::jwt::sign(&other.key, SignatureAlg::Rs256, header(), &claims()).unwrap(), 401, Some(700027)));
    pool.push((assertion_for(&cred, v1, SignatureAlg::Rs256), 401, Some(700023)));
    let mut expired = claims();
    expired["exp"] = json!(keycred::jwt::now_secs() - 3600);
    expired["nbf"] = json!(keycred::jwt::now_secs() - 7200);
    pool.push((keycred::jwt::sign(&*cred.key, SignatureAlg::Rs256, header(), &expired).unwrap(), 401, Some(700024)));
    pool.push(("not.a.jwt".into(), 400, Some(50027)));
    let pool = Arc::new(pool);
    let http = reqwest::Client::builder().pool_max_idle_per_host(CLIENTS).no_proxy().build().unwrap();

    // Warm-up: the same load once, unmeasured, with every client at once. The emulator's
    // blocking threads (as many as the load makes it start), their allocator arenas, its
    // connections and caches then exist before the first reading, and the heap's fragmentation
    // has mostly settled (it grows fast over the first thousands of requests, then levels off).
    let (mistakes, _) = run(&http, aud, &pool, CLIENTS, REQUESTS).await;
    assert!(mistakes.is_empty(), "warm-up: {mistakes:?}");
    let (rss_before, hwm_before, threads_before) = (emu.status("VmRSS"), emu.status("VmHWM"), emu.status("Threads"));

    let (mistakes, [server_errors, wrong_accepts, wrong_refusals]) = run(&http, aud, &pool, CLIENTS, REQUESTS).await;
    let (rss_after, hwm_after, threads_after) = (emu.status("VmRSS"), emu.status("VmHWM"), emu.status("Threads"));
    assert_eq!(server_errors, 0, "5xx answers: {mistakes:?}");
    assert_eq!(wrong_accepts, 0, "wrong accepts: {mistakes:?}");
    assert_eq!(wrong_refusals, 0, "wrong refusals: {mistakes:?}");
    assert!(mistakes.is_empty(), "{mistakes:?}");
    // Flat: 10,000 requests may not grow the emulator by more than 64 MB (a leak of even 7 KB a
    // request would exceed it), neither what it holds at the end nor its peak on the way. What
    // does not grow with requests is bounded below that: tokio's blocking pool (at most 512
    // threads, some tens of kB each) and the heap's remaining fragmentation.
    let seen = format!(
        "emulator VmRSS {rss_before} -> {rss_after} kB, VmHWM {hwm_before} -> {hwm_after} kB, \
         threads {threads_before} -> {threads_after}"
    );
    eprintln!("{seen}");
    assert!(rss_after < rss_before + 64 * 1024, "VmRSS grew: {seen}");
    assert!(hwm_after < hwm_before + 64 * 1024, "VmHWM grew: {seen}");
}

/// `keycred emulate --auto-consent` serving one app that signs users in at `reply`, its memory
/// to be read; and its authorize endpoint.
fn sign_in_emulator_process(dir: &TempDir, reply: &str) -> (Emulator, String) {
    let manifest = dir.path("app.json");
    let m = json!({"appId": APP_ID, "displayName": "flooded", "web": {"redirectUris": [reply]}, "keyCredentials": []});
    std::fs::write(&manifest, m.to_string()).unwrap();
    let (emu, info) = Emulator::start(&["--auto-consent"], &manifest);
    let base = info["baseUrl"].as_str().unwrap();
    (emu, format!("{base}/{TENANT}/oauth2/v2.0/authorize"))
}

/// Sends sign-ins `from..to` (each distinct: its own nonce, PKCE challenge and state, the query
/// just under the 8 KiB the emulator reads) from `clients` tasks; each must be answered with a
/// code. The mistakes, at most three.
async fn sign_ins(http: &reqwest::Client, authorize: &str, reply: &str, from: usize, to: usize) -> Vec<String> {
    let next = Arc::new(AtomicUsize::new(from));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (http, next, authorize, reply) = (http.clone(), next.clone(), authorize.to_string(), reply.to_string());
        tasks.push(tokio::spawn(async move {
            let mut mistakes = Vec::new();
            let padding = "N".repeat(7 * 1024);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= to {
                    break;
                }
                let challenge = format!("{i:0>128}");
                let url = format!(
                    "{authorize}?client_id={APP_ID}&response_type=code&redirect_uri={}&scope=openid&state=s{i}\
                     &code_challenge={challenge}&code_challenge_method=plain&nonce={i}-{padding}",
                    url::form_urlencoded::byte_serialize(reply.as_bytes()).collect::<String>()
                );
                let r = http.get(&url).send().await.unwrap();
                let location = r.headers().get("location").and_then(|l| l.to_str().ok()).unwrap_or("").to_string();
                if (r.status().as_u16() != 302 || !location.contains("code=")) && mistakes.len() < 3 {
                    mistakes.push(format!("sign-in {i}: {} {location}", r.status()));
                }
            }
            mistakes
        }));
    }
    let mut mistakes = Vec::new();
    for t in tasks {
        mistakes.extend(t.await.unwrap());
    }
    mistakes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_stays_flat_under_a_flood_of_sign_ins_with_maximal_parameters() {
    let dir = TempDir::new("emu-flood");
    let reply = "http://localhost/flooded";
    let (mut emu, authorize) = sign_in_emulator_process(&dir, reply);
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(16)
        .build()
        .unwrap();
    // N sign-ins, then 10 N more. Each leaves a code holding about 7 KB of parameters: without
    // bounds, the second round would add some 80 MB. The first round fills what is kept and
    // starts the threads and arenas the load needs, as the warm-up above does.
    const N: usize = 1_000;
    let mistakes = sign_ins(&http, &authorize, reply, 0, N).await;
    assert!(mistakes.is_empty(), "{mistakes:?}");
    let (rss_before, hwm_before) = (emu.status("VmRSS"), emu.status("VmHWM"));
    let mistakes = sign_ins(&http, &authorize, reply, N, 11 * N).await;
    assert!(mistakes.is_empty(), "{mistakes:?}");
    let (rss_after, hwm_after) = (emu.status("VmRSS"), emu.status("VmHWM"));
    let seen = format!("emulator VmRSS {rss_before} -> {rss_after} kB, VmHWM {hwm_before} -> {hwm_after} kB");
    eprintln!("{seen}");
    // Flat: within 20 % of what the first N left, both at the end and at the peak.
    assert!(rss_after * 5 <= rss_before * 6, "VmRSS grew: {seen}");
    assert!(hwm_after * 5 <= hwm_before * 6, "VmHWM grew: {seen}");
}
