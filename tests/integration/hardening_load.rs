//! The emulator under load: 10,000 token requests from 64 concurrent loopback clients, a mix of
//! valid assertions and several kinds of invalid ones. Every answer must be the expected one
//! (no 5xx, no wrong accept, no wrong refusal), and the resident memory must stay flat.

use crate::emulator_support;

use emulator_support::*;
use keycred::cert::SignatureAlg;
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const REQUESTS: usize = 10_000;
const CLIENTS: usize = 64;

fn vm_rss_kb() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_requests_from_64_clients() {
    let f = fixture().await;
    let other = credential("load attacker");
    let aud = f.v2();
    // A pool of pre-signed assertions with the answer each must get (reuse is allowed: Entra
    // does not reject a re-used jti).
    let mut pool: Vec<(String, u16, Option<u64>)> = Vec::new();
    for _ in 0..4 {
        pool.push((f.assertion(&aud), 200, None));
        pool.push((assertion_for(&f.cred, &aud, SignatureAlg::Ps256), 200, None));
    }
    pool.push((assertion_for(&other, &aud, SignatureAlg::Rs256), 401, Some(700027)));
    pool.push((
        keycred::jwt::sign(&other.key, SignatureAlg::Rs256, f.header(), &f.claims(&aud)).unwrap(),
        401,
        Some(700027),
    ));
    pool.push((f.assertion(&f.v1()), 401, Some(700023)));
    let mut expired = f.claims(&aud);
    expired["exp"] = json!(keycred::jwt::now_secs() - 3600);
    expired["nbf"] = json!(keycred::jwt::now_secs() - 7200);
    pool.push((f.signed(f.header(), expired), 401, Some(700024)));
    pool.push(("not.a.jwt".into(), 400, Some(50027)));
    let pool = Arc::new(pool);
    let http = reqwest::Client::builder().pool_max_idle_per_host(CLIENTS).no_proxy().build().unwrap();
    let scope = format!("{API}/.default");

    // Warm-up, so that allocator arenas and connection pools exist before the first reading.
    for (a, _, _) in pool.iter() {
        let _ = http.post(&aud).form(&client_credentials_form(APP_ID, &scope, a)).send().await.unwrap();
    }
    let rss_before = vm_rss_kb();

    let next = Arc::new(AtomicUsize::new(0));
    let (server_errors, wrong_accepts, wrong_refusals) =
        (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (pool, http, aud, scope, next) = (pool.clone(), http.clone(), aud.clone(), scope.clone(), next.clone());
        let (se, wa, wr) = (server_errors.clone(), wrong_accepts.clone(), wrong_refusals.clone());
        tasks.push(tokio::spawn(async move {
            let mut mistakes = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= REQUESTS {
                    break;
                }
                let (a, want, code) = &pool[i % pool.len()];
                let r = http.post(&aud).form(&client_credentials_form(APP_ID, &scope, a)).send().await.unwrap();
                let status = r.status().as_u16();
                let body: serde_json::Value = r.json().await.unwrap_or_default();
                if status >= 500 {
                    se.fetch_add(1, Ordering::Relaxed);
                }
                if status == 200 && *want != 200 {
                    wa.fetch_add(1, Ordering::Relaxed);
                }
                if *want == 200 && status != 200 {
                    wr.fetch_add(1, Ordering::Relaxed);
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
    let rss_after = vm_rss_kb();
    assert_eq!(server_errors.load(Ordering::Relaxed), 0, "5xx answers: {mistakes:?}");
    assert_eq!(wrong_accepts.load(Ordering::Relaxed), 0, "wrong accepts: {mistakes:?}");
    assert_eq!(wrong_refusals.load(Ordering::Relaxed), 0, "wrong refusals: {mistakes:?}");
    assert!(mistakes.is_empty(), "{mistakes:?}");
    // Flat: 10,000 requests may not grow the process by more than 64 MB (a leak of even 7 KB a
    // request would exceed it).
    eprintln!("VmRSS before {rss_before} kB, after {rss_after} kB");
    assert!(rss_after < rss_before + 64 * 1024, "VmRSS grew from {rss_before} kB to {rss_after} kB");
}
