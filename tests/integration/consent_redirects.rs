//! Reading the address the browser lands on after consent or sign-in, and handing its code on:
//! `consent-url --parse` prints the code and compares `--state`; `token --code` takes the whole
//! redirect URL (its state checked with `--state`); a redirect with a parameter twice or a
//! tenant that is not an id is refused, since Entra sends each parameter once and names the
//! consenting tenant by its GUID (Microsoft's admin-consent documentation: "tenant: the directory
//! tenant that granted your application the permissions it requested, in GUID format").

use crate::emulator_support::{credential, follow_redirect, valid_entry, TempDir, APP_ID, OBJECT_ID, TENANT};
use crate::rotation_support::{cli, Out};
use keycred::emulator::start_blocking;
use serde_json::json;

const REPLY: &str = "https://localhost/keycred-redirects";
const OFFICE: &str = "https://manage.office.com";

/// An app asking for the Office 365 Management API's ActivityFeed.Read, served by an emulator
/// that answers its sign-in page at once; returns the emulator, the PEM bundle and the dir.
fn setup() -> (keycred::emulator::BlockingEmulator, String, TempDir) {
    let dir = TempDir::new("redirects");
    let cred = credential("redirects app");
    let pem = dir.path("app.pem");
    std::fs::write(&pem, format!("{}{}", cred.key.exportable().unwrap().to_pem(None).unwrap(), cred.cert.to_pem()))
        .unwrap();
    let m = json!({
        "id": OBJECT_ID, "appId": APP_ID, "displayName": "Redirects app",
        "web": {"redirectUris": [REPLY]},
        "requiredResourceAccess": [{"resourceAppId": "c5393580-f805-4401-95e8-94b7a6ef2fc2",
            "resourceAccess": [{"id": "594c1fb6-4f81-4475-ae41-0c394909246c", "type": "Role"}]}],
        "keyCredentials": [valid_entry(&cred.cert)],
    });
    let manifest = dir.path("app.json");
    std::fs::write(&manifest, m.to_string()).unwrap();
    let mut cfg = keycred::emulator::EmulatorConfig::new(vec![manifest]);
    cfg.tenant = TENANT.into();
    cfg.auto_consent = true;
    cfg.log = false;
    (start_blocking(cfg).unwrap(), pem.display().to_string(), dir)
}

/// The Office 365 setup's sign-in URL with `state`, followed: where the browser lands.
fn signed_in(base: &str, state: &str) -> String {
    let out = cli(
        &[
            "consent-url",
            "--authority",
            base,
            "--client-id",
            APP_ID,
            "--redirect-uri",
            REPLY,
            "--v1",
            "--resource",
            OFFICE,
            "--prompt",
            "admin_consent",
            "--state",
            state,
            "-o",
            "json",
        ],
        &[],
    );
    assert_eq!(out.code, 0, "{out:?}");
    follow_redirect(out.json()["url"].as_str().unwrap())
}

/// The message of the JSON error on stderr (`-o json`).
fn message(out: &Out) -> String {
    let v: serde_json::Value = serde_json::from_str(&out.stderr).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    v["error"]["message"].as_str().unwrap().to_string()
}

fn code_of(url: &str) -> String {
    url::Url::parse(url).unwrap().query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned()
}

/// `token --code CODE_OR_URL` for the Office 365 Management API, with `extra`.
fn exchange(base: &str, pem: &str, code: &str, extra: &[&str]) -> Out {
    let mut args = vec![
        "token",
        "--authority",
        base,
        "--client-id",
        APP_ID,
        "--cert",
        pem,
        "--code",
        code,
        "--redirect-uri",
        REPLY,
        "--resource",
        OFFICE,
        "-o",
        "json",
    ];
    args.extend_from_slice(extra);
    cli(&args, &[])
}

#[test]
fn parse_prints_the_code_and_compares_the_state() {
    let (emu, _pem, _dir) = setup();
    let landed = signed_in(emu.info().base_url(), "s-42");
    let out = cli(&["consent-url", "--parse", &landed, "--state", "s-42", "-o", "json"], &[]);
    assert_eq!(out.code, 0, "{out:?}");
    let v = out.json();
    assert_eq!(v["code"], code_of(&landed), "{v}");
    assert_eq!((v["hasCode"].as_bool(), v["stateChecked"].as_bool()), (Some(true), Some(true)), "{v}");
    let text = cli(&["consent-url", "--parse", &landed], &[]);
    assert!(text.stdout.contains(&format!("code:           {}", code_of(&landed))), "{}", text.stdout);
    for other in ["s-43", ""] {
        let out = cli(&["consent-url", "--parse", &landed, "--state", other], &[]);
        assert_eq!(out.code, 4, "{out:?}");
        assert!(out.stderr.contains("the redirect's state is \"s-42\""), "{}", out.stderr);
    }
    let no_state = landed.replace("state=s-42", "x=1");
    let out = cli(&["consent-url", "--parse", &no_state, "--state", "s-42"], &[]);
    assert_eq!(out.code, 4, "{out:?}");
    assert!(out.stderr.contains("the redirect's state is missing"), "{}", out.stderr);
}

#[test]
fn parse_refuses_a_parameter_twice_and_a_tenant_that_is_not_an_id() {
    for (url, want) in [
        (
            format!("https://app.example/cb?tenant={TENANT}&admin_consent=True&admin_consent=False"),
            "the parameter 'admin_consent' appears more than once",
        ),
        (format!("https://app.example/cb?tenant={TENANT}&tenant=x&admin_consent=True"), "'tenant' appears"),
        ("https://app.example/cb?tenant=evil.example&admin_consent=True".to_string(), "tenant=\"evil.example\" is not"),
    ] {
        let out = cli(&["consent-url", "--parse", &url, "-o", "json"], &[]);
        assert_eq!(out.code, 2, "{url}: {out:?}");
        assert!(out.stdout.is_empty(), "{url}: {}", out.stdout);
        assert!(message(&out).contains(want), "{url}: {}", out.stderr);
    }
}

#[test]
fn token_code_takes_the_whole_redirect_url_and_checks_its_state() {
    let (emu, pem, _dir) = setup();
    let base = emu.info().base_url().to_string();
    // A state that does not match: refused before anything is sent, so the code stays unused.
    let landed = signed_in(&base, "s-7");
    let out = exchange(&base, &pem, &landed, &["--state", "s-8"]);
    assert_eq!(out.code, 4, "{out:?}");
    assert!(message(&out).contains("the redirect's state is \"s-7\", not \"s-8\""), "{}", out.stderr);
    let out = exchange(&base, &pem, &landed, &["--state", "s-7"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["tenantId"], TENANT);
    // Without --state, the URL alone, with a warning that its state went unchecked; and a bare
    // code still works with --state refused on it.
    let out = exchange(&base, &pem, &signed_in(&base, "s-9"), &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("warning: the redirect carries state \"s-9\", which was not checked"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("pass --state"), "{}", out.stderr);
    assert!(!exchange(&base, &pem, &signed_in(&base, "s-12"), &["--state", "s-12"]).stderr.contains("warning"));
    let code = code_of(&signed_in(&base, "s-10"));
    let out = exchange(&base, &pem, &code, &["--state", "s-10"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(message(&out).contains("--state needs the whole redirect URL in --code"), "{}", out.stderr);
    assert_eq!(exchange(&base, &pem, &code, &[]).code, 0);
    // A URL of another reply address: the code would be refused (500112); said before sending.
    let elsewhere = signed_in(&base, "s-11").replace(REPLY, "https://localhost/other");
    let out = exchange(&base, &pem, &elsewhere, &[]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(message(&out).contains("the browser was sent to https://localhost/other"), "{}", out.stderr);
}
