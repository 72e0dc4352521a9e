//! No input can overflow a stack. Every reader of nested input in the crate, other than the
//! emulator's `$filter` parser (`graph_filter_limits.rs`), is either a loop (the manifest
//! splicer's scanner, the DN parser) or serde_json, whose recursion limit (128 levels) is on:
//! nothing in the crate disables it, and no dependency enables serde_json's `unbounded_depth`.
//! These tests pin that for each way nested input arrives: files, arguments, answers of remote
//! services, and requests to the emulator, each nested far beyond what a stack could recurse
//! through (a million levels where the input's size limit allows).

use crate::emulator_support::*;
use crate::token_support::{Reply, TestServer};
use std::process::Output;

/// `[[[ ... ]]]`, `depth` levels.
fn nested(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    keycred_command(args, env).stdin(std::process::Stdio::null()).output().unwrap()
}

/// Exit code `code`, not killed by a signal (a stack overflow aborts with SIGABRT or SIGSEGV),
/// and an error naming `named`.
fn assert_refused(o: &Output, code: i32, named: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(code), "{}", &err[..err.len().min(600)]);
    assert!(err.contains(named), "{}", &err[..err.len().min(600)]);
}

#[test]
fn deeply_nested_files_and_arguments_are_bad_input() {
    let dir = TempDir::new("deep-files");
    let cert = credential("deep input");
    let pem = dir.path("c.pem");
    std::fs::write(&pem, cert.cert.to_pem()).unwrap();
    // A million levels in a member keycred does not read, and in an entry it does: 2 MB, within
    // the 4 MiB manifest limit.
    let member = dir.path("deep-member.json");
    std::fs::write(&member, format!(r#"{{"keyCredentials": [], "x": {}}}"#, nested(1_000_000))).unwrap();
    let entry = dir.path("deep-entry.json");
    std::fs::write(&entry, format!(r#"{{"keyCredentials": [{{"key": {}}}]}}"#, nested(1_000_000))).unwrap();
    for m in [&member, &entry] {
        let name = m.file_name().unwrap().to_str().unwrap();
        assert_refused(&run(&["manifest", "list", m.to_str().unwrap()], &[]), 2, name);
        assert_refused(&run(&["manifest", "add", m.to_str().unwrap(), "--cert", pem.to_str().unwrap()], &[]), 2, name);
    }
    // The DN parser is a loop: 20,000 attributes (as long as one argument may be) are read
    // through to the repeated one.
    let subject = vec!["CN=a"; 20_000].join(",");
    let o = run(&["new", "--subject", &subject, "--name", "n", "--out-dir", &dir.s("out")], &[]);
    assert_refused(&o, 2, "CN appears twice");
    assert!(!dir.path("out").exists());
}

#[test]
fn deeply_nested_answers_of_remote_services_are_refused() {
    let dir = TempDir::new("deep-answers");
    let cert = credential("deep answers");
    let bundle = dir.path("b.pem");
    std::fs::write(&bundle, format!("{}{}", cert.key.exportable().unwrap().to_pem(None).unwrap(), cert.cert.to_pem()))
        .unwrap();
    // A million levels: 2 MB, over the 1 MiB answer limit, so half as many, within it.
    let server = TestServer::start(vec![Reply::json(200, nested(500_000))]);
    let token = run(
        &["token", "--cert", bundle.to_str().unwrap(), "--client-id", APP_ID, "--tenant", TENANT]
            .into_iter()
            .chain(["--scope", "api://x/.default", "--authority", &server.base])
            .collect::<Vec<_>>(),
        &[],
    );
    assert_refused(&token, 3, &server.base);
    let env = [("GT", "graph-token")];
    let graph = run(
        &[
            "graph",
            "list",
            "--app-id",
            APP_ID,
            "--tenant",
            TENANT,
            "--graph-token-env",
            "GT",
            "--graph-url",
            &server.base,
        ],
        &env,
    );
    assert_refused(&graph, 3, &server.base);
    let audit =
        run(&["fleet", "audit", "--tenant", TENANT, "--graph-token-env", "GT", "--graph-url", &server.base], &env);
    assert_refused(&audit, 3, &server.base);
}

#[tokio::test]
async fn deeply_nested_request_bodies_are_refused_by_the_emulator() {
    let dir = TempDir::new("deep-requests");
    let emu = emulate_process(&dir, "Application.ReadWrite.All");
    let token = emu.graph_token().await;
    let deep = nested(500_000);
    let send = |method: reqwest::Method, path: &str| {
        client()
            .request(method, format!("{}/v1.0/{path}", emu.base))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(deep.clone())
    };
    for (method, path) in
        [(reqwest::Method::POST, "$batch"), (reqwest::Method::PATCH, &format!("applications/{OBJECT_ID}"))]
    {
        let r = send(method, path).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 400, "{path}");
    }
    // A client assertion whose claims are nested as deep as the 16 KiB assertion limit allows
    // (the signature of a genuine one kept: the claims are read before it is checked).
    let genuine = assertion_for(&emu.cred, &emu.v2, keycred::cert::SignatureAlg::Rs256);
    let parts: Vec<&str> = genuine.split('.').collect();
    let claims = format!(r#"{{"aud":"{}","iss":"{APP_ID}","x":{}}}"#, emu.v2, nested(5_000));
    let forged = format!("{}.{}.{}", parts[0], keycred::thumbprint::b64url(claims.as_bytes()), parts[2]);
    let (s, b) = post(&emu.v2, &client_credentials_form(APP_ID, "https://graph.microsoft.com/.default", &forged)).await;
    assert_eq!(s / 100, 4, "{b}");
    // Still serving.
    assert!(!emu.graph_token().await.is_empty());
}
