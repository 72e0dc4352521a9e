//! Secret hygiene across the commands `token_hygiene.rs` does not cover: with a known private
//! key, key password, client secret, client assertion and issued token, `emulate` (its request
//! log), `check`, `new`, `show`, `manifest`, `rotate`, `decode`, `consent-url` and `demo` never
//! print any of them, on success or refusal. Only `assertion` prints an assertion (that is its
//! product) and `token --raw` a token.

use crate::hardening_support;

use hardening_support::*;
use std::io::{BufRead, BufReader, Read};
use std::process::{Output, Stdio};

const APP: &str = "6731de76-14a6-49ae-97bc-6eba6914391e";
const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const SECRET: &str = "Zq8~SECRET-emulator-n0t-t0-pr1nt";
const PASSWORD: &str = "PFX-passw0rd-n0t-t0-pr1nt";

struct Known {
    key_lines: Vec<String>,
    assertions: Vec<String>,
    tokens: Vec<String>,
}

impl Known {
    fn check(&self, what: &str, text: &str) {
        assert!(!text.contains(SECRET), "{what}: client secret printed");
        assert!(!text.contains(PASSWORD), "{what}: password printed");
        for l in &self.key_lines {
            assert!(!text.contains(l.as_str()), "{what}: private key material printed");
        }
        for a in self.assertions.iter().chain(&self.tokens) {
            let sig = a.rsplit('.').next().unwrap();
            assert!(!text.contains(sig), "{what}: an assertion or token signature printed");
        }
    }
    fn check_output(&self, what: &str, o: &Output) {
        self.check(&format!("{what} stdout"), &String::from_utf8_lossy(&o.stdout));
        self.check(&format!("{what} stderr"), &String::from_utf8_lossy(&o.stderr));
    }
}

fn a(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

#[test]
fn no_secret_in_any_command_or_the_emulator_log() {
    let dir = TempDir::new("hygiene");
    let d = dir.0.to_str().unwrap().to_string();
    let env = [("KC_SECRET", SECRET), ("KC_PW", PASSWORD)];
    // A credential made by `new` (PEM key + cert) and a PFX with a password.
    let o = keycred(&a(&format!("new --name app --out-dir {d} --subject CN=hygiene")), &env);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let o2 = keycred(&a(&format!("new --name pfx --out-dir {d} --pfx --password-env KC_PW")), &env);
    assert_eq!(o2.status.code(), Some(0), "{}", String::from_utf8_lossy(&o2.stderr));
    let key_pem = std::fs::read_to_string(dir.path("app.key")).unwrap();
    let key_lines: Vec<String> =
        key_pem.lines().filter(|l| !l.starts_with("-----") && l.len() >= 16).map(str::to_string).collect();
    assert!(key_lines.len() > 10);
    let mut known = Known { key_lines, assertions: vec![], tokens: vec![] };
    known.check_output("new", &o);
    known.check_output("new --pfx", &o2);
    let manifest = dir.path("app.json");
    std::fs::write(
        &manifest,
        format!("{{\"id\":\"0b6c8e1c-2f7e-4d36-9d2a-1c3e5f7a9b0d\",\"appId\":\"{APP}\",\"web\":{{\"redirectUris\":[]}},\"keyCredentials\":[]}}"),
    )
    .unwrap();
    let m = manifest.to_str().unwrap().to_string();
    let o = keycred(&a(&format!("manifest add {m} --cert {d}/app.cer")), &env);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    known.check_output("manifest add", &o);

    // The emulator, as a process, logging every request on stderr.
    let mut emu = command(
        &a(&format!(
            "emulate --manifest {m} --tenant {TENANT} --grant api://hygiene=Data.Read --secret-env KC_SECRET -o json"
        )),
        &env,
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut line = String::new();
    BufReader::new(emu.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    let info: serde_json::Value = serde_json::from_str(&line).unwrap();
    let base = info["baseUrl"].as_str().unwrap().to_string();
    let v2 = info["tokenEndpointV2"].as_str().unwrap().to_string();

    // Assertions the commands will send: the `assertion` command's output (allowed there).
    let o = keycred(
        &a(&format!(
            "assertion --cert {d}/app.cer --key {d}/app.key --client-id {APP} --tenant {TENANT} --authority {base}"
        )),
        &env,
    );
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let assertion = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert_eq!(assertion.split('.').count(), 3, "{assertion}");
    known.assertions.push(assertion.clone());

    // Tokens by secret and by certificate (with --raw, to learn them).
    let tok = |auth: &str| {
        let o = keycred(
            &a(&format!("token --client-id {APP} --tenant {TENANT} --authority {base} --scope api://hygiene/.default --raw {auth}")),
            &env,
        );
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    known.tokens.push(tok("--secret-env KC_SECRET"));
    known.tokens.push(tok(&format!("--cert {d}/app.cer --key {d}/app.key")));

    // The assertion posted by hand, and refused requests (wrong secret, replayed elsewhere).
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    for form in [
        vec![
            ("client_assertion", assertion.as_str()),
            ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
        ],
        vec![("client_secret", "Zq8~SECRET-emulator-n0t-t0-pr1nt-WRONG")],
        vec![("client_secret", SECRET)],
    ] {
        let mut f = vec![("grant_type", "client_credentials"), ("client_id", APP), ("scope", "api://hygiene/.default")];
        f.extend(form);
        let body = rt.block_on(async { client.post(&v2).form(&f).send().await.unwrap().text().await.unwrap() });
        // The answer carries a fresh token (that is its job), never what the client sent.
        assert!(!body.contains("SECRET-emulator"), "emulator answer echoes a secret: {body}");
        assert!(!body.contains(assertion.rsplit('.').next().unwrap()), "emulator answer echoes the assertion");
    }

    // Every other command, on success and refusal.
    let runs = vec![
        ("show", a(&format!("show {d}/app.cer -o json"))),
        ("show pfx", a(&format!("show {d}/pfx.pfx --password-env KC_PW"))),
        ("show pfx wrong password", a(&format!("show {d}/pfx.pfx --password-env KC_SECRET"))),
        ("show key as cert", a(&format!("show {d}/app.key"))),
        ("manifest list", a(&format!("manifest list {m} -o json"))),
        ("manifest add again", a(&format!("manifest add {m} --cert {d}/app.cer"))),
        ("check", a(&format!("check --cert {d}/app.cer --key {d}/app.key --client-id {APP} --tenant {TENANT} --authority {base} --manifest {m} --scope api://hygiene/.default -o json"))),
        ("check text", a(&format!("check --cert {d}/pfx.pfx --password-env KC_PW --client-id {APP} --tenant {TENANT} --authority {base} --scope api://hygiene/.default"))),
        ("token json", a(&format!("token --client-id {APP} --tenant {TENANT} --authority {base} --scope api://hygiene/.default --secret-env KC_SECRET"))),
        ("token wrong aud", a(&format!("token --client-id {APP} --tenant 11111111-2222-4333-8444-555555555555 --authority {base} --scope api://hygiene/.default --cert {d}/app.cer --key {d}/app.key"))),
        ("decode token", vec!["decode".into(), known.tokens[0].clone()]),
        ("decode assertion", vec!["decode".into(), assertion.clone(), "-o".into(), "json".into()]),
        ("rotate", a(&format!("rotate --manifest {m} --name rot --out-dir {d} --pfx --password-env KC_PW"))),
        ("consent-url", a(&format!("consent-url --client-id {APP} --tenant {TENANT}"))),
    ];
    for (what, args) in &runs {
        let o = keycred(args, &env);
        assert_ne!(o.status.code(), Some(101), "{what} panicked");
        assert!(!String::from_utf8_lossy(&o.stderr).contains("panicked"), "{what} panicked");
        known.check_output(what, &o);
    }

    // Stop the emulator and read its whole log.
    emu.kill().unwrap();
    let mut log = String::new();
    emu.stderr.take().unwrap().read_to_string(&mut log).unwrap();
    let _ = emu.wait();
    assert!(log.contains("POST") && log.contains("AADSTS7000215"), "the log should have the requests:\n{log}");
    known.check("emulator log", &log);
}
