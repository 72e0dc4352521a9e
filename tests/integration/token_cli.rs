//! `keycred decode` and `keycred consent-url` from the command line: values, the NOT VERIFIED
//! marking, times cross-checked with GNU `date`, and exit codes.

use crate::token_support;

use std::io::Write;
use std::process::{Command, Stdio};
use token_support::*;

fn gnu_date(secs: i64) -> String {
    let o = Command::new("date").args(["-u", "-d", &format!("@{secs}"), "+%Y-%m-%dT%H:%M:%SZ"]).output().unwrap();
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

#[test]
fn decode_shows_header_claims_and_times_not_verified() {
    let token = fake_access_token(serde_json::json!({
        "aud": "api://x", "exp": 1_735_689_600, "iat": 1_735_686_000.5, "nbf": "1735686000", "roles": ["A", "B"]
    }));
    let o = keycred(&["decode", &token, "-o", "json"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["verified"], false);
    assert_eq!(v["header"], serde_json::json!({"typ": "JWT", "alg": "RS256", "kid": "test-kid"}));
    assert_eq!(v["claims"]["roles"], serde_json::json!(["A", "B"]));
    assert_eq!(v["times"]["exp"], gnu_date(1_735_689_600));
    assert_eq!(v["times"]["iat"], gnu_date(1_735_686_000));
    assert_eq!(v["times"]["nbf"], gnu_date(1_735_686_000));

    // Text, from stdin.
    let mut child = keycred_bare()
        .args(["decode", "-", "--expect-role", "A", "--expect-role", "C"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(format!("{token}\n").as_bytes()).unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(4), "role C is missing");
    let out = stdout(&o);
    assert!(out.starts_with("NOT VERIFIED"), "{out}");
    assert!(out.contains(&format!("exp:    1735689600 ({})", gnu_date(1_735_689_600))), "{out}");
    assert!(out.contains("roles:  A, B"), "{out}");
    assert!(stderr(&o).contains("lacks the role C (roles: A, B)"), "{}", stderr(&o));

    let o = keycred(&["decode", "not-a-jwt"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("TOKEN: not a JWT"), "{}", stderr(&o));
}

#[test]
fn consent_url_build_and_parse() {
    let o = keycred(
        &[
            "consent-url",
            "--client-id",
            "cid-1",
            "--tenant",
            "contoso.onmicrosoft.com",
            "--redirect-uri",
            "https://app.example/cb",
            "--state",
            "xyz",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o).trim(),
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/adminconsent?client_id=cid-1\
         &redirect_uri=https%3A%2F%2Fapp.example%2Fcb&state=xyz"
    );
    let o = keycred(
        &[
            "consent-url",
            "--client-id",
            "cid-1",
            "--redirect-uri",
            "http://localhost/cb",
            "--v1",
            "--resource",
            "https://graph.windows.net/",
            "--prompt",
            "admin_consent",
            "--authority",
            "https://login.windows.net",
        ],
        &[],
    );
    assert_eq!(
        stdout(&o).trim(),
        "https://login.windows.net/common/oauth2/authorize?response_type=code\
         &resource=https%3A%2F%2Fgraph.windows.net%2F&client_id=cid-1&redirect_uri=http%3A%2F%2Flocalhost%2Fcb\
         &prompt=admin_consent"
    );
    let o = keycred(
        &[
            "consent-url",
            "--parse",
            "https://app.example/cb?tenant=9188040d-6c67-4c5b-b112-36a304b66dad&admin_consent=True&state=xyz",
            "-o",
            "json",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"tenant": "9188040d-6c67-4c5b-b112-36a304b66dad", "adminConsent": true, "state": "xyz",
                           "stateChecked": false, "hasCode": false, "code": null})
    );
    let o = keycred(
        &[
            "consent-url",
            "--parse",
            "https://app.example/cb?error=consent_required&error_description=AADSTS65001%3A+no+consent",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("consent_required: AADSTS65001: no consent"), "{}", stderr(&o));
}
