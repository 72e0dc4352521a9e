//! A tenant that would build another URL path is refused by every command that takes one.
//!
//! Regression: `keycred graph` declared its own `--tenant` and skipped the check `keycred token`
//! made, so `graph list --tenant 'x/../evil?q=' --authority http://127.0.0.1:9` posted the
//! client assertion to `http://127.0.0.1:9/evil?q=/oauth2/v2.0/token`. The tenant is now a
//! checked type that the URL builders require.

use crate::token_support;

use keycred::manifest::{templates, Format};
use token_support::*;

const CLIENT: &str = "6731de76-14a6-49ae-97bc-6eba6914391e";
const BAD_TENANT: &str = "x/../evil?q=";

#[test]
fn every_command_refuses_a_tenant_that_is_not_one_path_segment() {
    let dir = TempDir::new("tenant-refused");
    let (cert, key) = openssl_cred(&dir, "daemon");
    let (c, k) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let manifest = dir.path("manifest.json");
    std::fs::write(&manifest, templates::manifest(Format::MsGraph)).unwrap();
    let manifest_before = std::fs::read(&manifest).unwrap();
    let m = manifest.to_str().unwrap();
    let out_dir = dir.path("new");
    std::fs::create_dir(&out_dir).unwrap();
    let o = out_dir.to_str().unwrap();
    // A server that would answer anything: nothing may reach it.
    let server = TestServer::start(vec![]);
    let base = server.base.as_str();
    let who = ["--client-id", CLIENT, "--tenant", BAD_TENANT, "--authority", base];
    let graph = |sub: &str, extra: &[&str]| -> Vec<String> {
        let head = ["graph", sub, "--cert", c, "--key", k, "--graph-url", base];
        head.iter().chain(extra).chain(&who).map(|s| s.to_string()).collect()
    };
    let plain = |args: &[&str]| -> Vec<String> { args.iter().chain(&who).map(|s| s.to_string()).collect() };
    let scope = "https://graph.microsoft.com/.default";
    let cases: Vec<Vec<String>> = vec![
        plain(&["assertion", "--cert", c, "--key", k]),
        plain(&["token", "--cert", c, "--key", k, "--scope", scope]),
        plain(&["check", "--cert", c, "--key", k, "--scope", scope]),
        plain(&["consent-url"]),
        plain(&[
            "rotate",
            "--manifest",
            m,
            "--format",
            "ms-graph",
            "--name",
            "n",
            "--out-dir",
            o,
            "--verify",
            "--scope",
            scope,
        ]),
        graph("list", &[]),
        graph("add", &["--new-cert", c]),
        graph("remove", &["--key-id", "9d1c9a3e-6f4b-4d55-9a57-0cf1d8a7e5b2"]),
        graph("rotate", &["--name", "n", "--out-dir", o]),
        plain(&["fleet", "audit", "--cert", c, "--key", k, "--graph-url", base]),
        plain(&[
            "fleet",
            "rotate",
            "--cert",
            c,
            "--key",
            k,
            "--graph-url",
            base,
            "--out-dir",
            o,
            "--expiring-within",
            "30d",
        ]),
    ];
    for args in cases {
        for json in [false, true] {
            let mut args = args.clone();
            if json {
                args.extend(["-o".to_string(), "json".to_string()]);
            }
            let argv: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = keycred(&argv, &[]);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
            assert!(err.contains("--tenant") && err.contains("not a tenant id or domain name"), "{args:?}: {err}");
            assert!(stdout(&out).is_empty(), "{args:?}");
            if json {
                let v: serde_json::Value = serde_json::from_str(err.trim()).expect("the error is one JSON document");
                assert_eq!(v["error"]["exitCode"], 2, "{args:?}");
            }
        }
    }
    assert!(server.requests().is_empty(), "nothing was sent: {:?}", server.requests().len());
    assert_eq!(std::fs::read(&manifest).unwrap(), manifest_before, "the manifest is unchanged");
    assert_eq!(std::fs::read_dir(&out_dir).unwrap().count(), 0, "no credential file was written");
}
