//! Issue 14 ("Hardening II"), the emulator's points: NumericDate claims (1), one usability rule
//! for the keys it verifies with (2), read timeouts and a bounded shutdown (4). Each test was
//! seen failing with its fix reverted.

use crate::emulator_support;

use emulator_support::*;
use keycred::cert::SignatureAlg;
use keycred::graph::PROOF_AUD_AAD_GRAPH;
use keycred::jwt;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::time::Duration;

/// Point 1: `exp`/`nbf`/`iat` must be JSON numbers within i64 seconds. `"NaN"` used to pass every
/// time check (each comparison with NaN is false), so such an assertion never expired.
#[tokio::test]
async fn time_claims_that_are_not_numeric_dates_are_malformed() {
    let f = fixture().await;
    let aud = f.v2();
    let now = jwt::now_secs();
    let beyond_i64: Value = serde_json::from_str("1e19").unwrap();
    let cases: Vec<(&str, &str, Value)> = vec![
        ("exp NaN", "exp", json!("NaN")),
        ("exp inf", "exp", json!("inf")),
        ("exp a numeric string", "exp", json!((now + 600).to_string())),
        ("exp beyond i64 seconds", "exp", beyond_i64),
        ("exp huge unsigned", "exp", json!(u64::MAX)),
        ("nbf NaN", "nbf", json!("NaN")),
        ("nbf an object", "nbf", json!({"n": 1})),
        ("iat NaN", "iat", json!("NaN")),
    ];
    let mut failures = Vec::new();
    for (name, claim, value) in cases {
        let mut c = f.claims(&aud);
        c[claim] = value;
        let got = f.post_v2_assertion(&f.signed(f.header(), c)).await;
        let ok = got.0 == 400
            && got.1["error"] == "invalid_request"
            && got.1["error_codes"] == json!([50027])
            && got.1["error_description"].as_str().is_some_and(|d| d.contains(&format!("'{claim}'")));
        if !ok {
            failures
                .push(format!("[{name}] expected 400 invalid_request 50027 naming '{claim}', got {} {}", got.0, got.1));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Fractions are NumericDates (MSAL sends float exp/iat): still accepted.
    let mut c = f.claims(&aud);
    c["exp"] = json!(now as f64 + 600.5);
    c["iat"] = json!(now as f64 + 0.25);
    let got = f.post_v2_assertion(&f.signed(f.header(), c)).await;
    assert_eq!(got.0, 200, "{}", got.1);
}

/// Point 1 in Graph: an addKey proof with `exp: "NaN"` escaped the ten-minute rule.
#[tokio::test]
async fn add_key_proofs_need_numeric_dates() {
    let f = fixture_with(|c| {
        c.grants.push(("https://graph.microsoft.com".into(), vec!["Application.ReadWrite.OwnedBy".into()]))
    })
    .await;
    let (s, b) = v2_token_for(&f, "https://graph.microsoft.com/.default").await;
    assert_eq!(s, 200, "{b}");
    let token = b["access_token"].as_str().unwrap().to_string();
    let new = credential("rotated in");
    let url = format!("{}/v1.0/applications/{OBJECT_ID}/addKey", f.emu.info().base_url());
    let proof = |exp: Value| {
        let now = jwt::now_secs();
        let claims = json!({"aud": PROOF_AUD_AAD_GRAPH, "iss": OBJECT_ID, "nbf": now, "exp": exp});
        jwt::sign(&f.cred.key, SignatureAlg::Rs256, f.header(), &claims).unwrap()
    };
    let send = |p: String| {
        let body = json!({"keyCredential": {"type": "AsymmetricX509Cert", "usage": "Verify", "key": new.cert.value_b64()},
                          "passwordCredential": null, "proof": p});
        let (url, token) = (url.clone(), token.clone());
        async move {
            let r = client().post(&url).bearer_auth(&token).json(&body).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    for exp in [json!("NaN"), json!("Infinity"), json!("99999999999")] {
        let (s, b) = send(proof(exp.clone())).await;
        assert_eq!(s, 400, "exp {exp}: {b}");
        let msg = b["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains("'exp'") && msg.contains("NumericDate"), "exp {exp}: {msg}");
    }
    // The same proof with a numeric exp is accepted: the refusals are not a broken fixture.
    let (s, b) = send(proof(json!(jwt::now_secs() + 600))).await;
    assert_eq!(s, 200, "{b}");
}

/// Point 2: an entry Entra (and `keycred check`) call unusable (usage `Sign`, type `Symmetric`)
/// must not verify assertions; the same certificate as a `Verify` entry does.
#[tokio::test]
async fn unusable_entries_do_not_verify_assertions() {
    let f = fixture().await;
    let assertion = f.assertion(&f.v2());
    for (field, value) in [("usage", "Sign"), ("type", "Symmetric"), ("usage", "Encrypt")] {
        let mut e = valid_entry(&f.cred.cert);
        e[field] = json!(value);
        write_manifest(&f.manifest, vec![e]);
        let got = f.post_v2_assertion(&assertion).await;
        assert_entra_error(&got, 401, "invalid_client", 700027);
        assert!(
            got.1["error_description"].as_str().unwrap().contains("key was not found"),
            "{field} {value}: {}",
            got.1
        );
    }
    write_manifest(&f.manifest, vec![valid_entry(&f.cred.cert)]);
    let got = f.post_v2_assertion(&assertion).await;
    assert_eq!(got.0, 200, "{}", got.1);
}

fn connect(f: &Fixture) -> std::net::TcpStream {
    let url = url::Url::parse(f.emu.info().base_url()).unwrap();
    let s = std::net::TcpStream::connect((url.host_str().unwrap(), url.port().unwrap())).unwrap();
    // Bounds the test, far above the emulator's 1 s read timeout set below.
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s
}

/// Reads until the server closes the connection; what it sent. Panics if it never closes.
fn read_until_closed(mut s: std::net::TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the emulator did not close the connection: {e}"),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// Point 4: a client that sends five bytes and waits, or announces a body it never sends, or
/// sends nothing at all, is disconnected after the read timeout.
#[tokio::test]
async fn slow_clients_are_disconnected() {
    let f = fixture_with(|c| c.read_timeout = Duration::from_secs(1)).await;
    let path = url::Url::parse(&f.v2()).unwrap().path().to_string();
    // What each client sends is written as soon as it connects, here: the timeout runs from the
    // accept, so b's head must be complete well within its second for b to get its 408. Only
    // the reads, which wait for the emulator, go to a blocking thread, whenever it starts.
    let mut a = connect(&f);
    a.write_all(b"POST ").unwrap();
    let mut b = connect(&f);
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant"
    );
    b.write_all(head.as_bytes()).unwrap();
    let c = connect(&f);
    let answers =
        tokio::task::spawn_blocking(move || (read_until_closed(a), read_until_closed(b), read_until_closed(c)))
            .await
            .unwrap();
    assert!(!answers.0.starts_with("HTTP/1.1 200"), "{}", answers.0);
    assert!(answers.1.starts_with("HTTP/1.1 408"), "{}", answers.1);
    assert!(!answers.2.starts_with("HTTP/1.1 200"), "{}", answers.2);
    // The emulator still serves.
    assert_eq!(f.post_v2_assertion(&f.assertion(&f.v2())).await.0, 200);
}

/// Point 4: shutdown is bounded. A connected client that never completes its request no longer
/// holds the emulator open (the 60 s bound here only keeps a regression from hanging the suite).
#[tokio::test]
async fn shutdown_does_not_wait_for_idle_or_slow_clients() {
    // Read timeouts far beyond the test's bound: only the shutdown grace can end these clients.
    let f = fixture_with(|c| c.read_timeout = Duration::from_secs(600)).await;
    let mut slow = connect(&f);
    slow.write_all(b"POST ").unwrap();
    let idle: Vec<_> = (0..20).map(|_| connect(&f)).collect();
    // Let the server accept them before stopping.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let Fixture { emu, dir, .. } = f;
    let stopped = tokio::time::timeout(Duration::from_secs(60), emu.shutdown()).await;
    assert!(stopped.is_ok(), "the emulator's shutdown waited on clients that never finish a request");
    drop((slow, idle, dir));
}
