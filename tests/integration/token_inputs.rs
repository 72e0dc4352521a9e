//! Inputs of the signing and token commands as scripts and shells give them: the standard
//! `AZURE_*` variables in their usual spellings, authorities as azure-identity names them, and
//! contradictory or empty values refused before anything is sent (exit 2, the input named).

use crate::token_support;

use token_support::*;

const CLIENT: &str = "6731de76-14a6-49ae-97bc-6eba6914391e";
const TENANT: &str = "contoso.onmicrosoft.com";

/// The assertion's decoded header for this environment.
fn assertion_header(cert: &std::path::Path, key: &std::path::Path, env: &[(&str, &str)]) -> serde_json::Value {
    let o = keycred(&cert_args("assertion", cert, key, CLIENT, TENANT), env);
    assert_eq!(o.status.code(), Some(0), "{env:?}: {}", stderr(&o));
    jwt_parts(stdout(&o).trim()).0
}

#[test]
fn send_certificate_chain_accepts_the_usual_spellings() {
    let dir = TempDir::new("inputs-x5c");
    let (cert, key) = openssl_cred(&dir, "daemon");
    let der = openssl_der_b64(&cert);
    for on in ["1", "true", "True", "yes"] {
        let h = assertion_header(&cert, &key, &[("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN", on)]);
        assert_eq!(h["x5c"], serde_json::json!([der]), "{on}");
    }
    for off in ["", "0", "false", "False", "no"] {
        let h = assertion_header(&cert, &key, &[("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN", off)]);
        assert!(h.get("x5c").is_none(), "{off:?}: {h}");
    }
}

#[test]
fn authorities_are_hosts_bare_names_mean_https() {
    let dir = TempDir::new("inputs-authority");
    let (cert, key) = openssl_cred(&dir, "daemon");
    let aud = |env: &[(&str, &str)]| {
        let o = keycred(&cert_args("assertion", &cert, &key, CLIENT, TENANT), env);
        assert_eq!(o.status.code(), Some(0), "{env:?}: {}", stderr(&o));
        jwt_parts(stdout(&o).trim()).1["aud"].as_str().unwrap().to_string()
    };
    // azure-identity's AzureAuthorityHosts constants are bare host names.
    assert_eq!(
        aud(&[("AZURE_AUTHORITY_HOST", "login.microsoftonline.us")]),
        format!("https://login.microsoftonline.us/{TENANT}/oauth2/v2.0/token")
    );
    // An MSAL-style authority with the tenant in the path would build /tenant/tenant/...
    let mut args = cert_args("assertion", &cert, &key, CLIENT, TENANT);
    args.extend(["--authority", "https://login.microsoftonline.com/contoso.onmicrosoft.com"]);
    let o = keycred(&args, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("has a path, query or fragment") && stderr(&o).contains("--tenant"), "{}", stderr(&o));
    assert!(stdout(&o).is_empty());
}

/// Arguments, environment, and what the error must say.
type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);

#[test]
fn empty_or_contradictory_inputs_are_refused_before_any_request() {
    let dir = TempDir::new("inputs-refused");
    let (cert, key) = openssl_cred(&dir, "daemon");
    // A server that would answer: nothing may reach it.
    let server = TestServer::start(vec![]);
    let (c, k) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let base = server.base.as_str();
    let scope = "https://graph.microsoft.com/.default";
    let cases: Vec<Case> = vec![
        (
            vec!["assertion", "--cert", c, "--key", k, "--tenant", TENANT],
            vec![("AZURE_CLIENT_ID", "")],
            "client id (--client-id / AZURE_CLIENT_ID) is empty",
        ),
        (
            vec!["token", "--cert", c, "--key", k, "--client-id", " ", "--tenant", TENANT, "--authority", base],
            vec![],
            "client id (--client-id / AZURE_CLIENT_ID) is empty",
        ),
        (
            vec!["token", "--cert", c, "--key", k, "--secret-env", "S", "--client-id", CLIENT, "--tenant", TENANT],
            vec![("S", "s3cret-value")],
            "both --secret-env and --cert given",
        ),
        (
            vec!["token", "--secret-env", "S", "--client-id", CLIENT, "--tenant", TENANT, "--raw", "-o", "json"],
            vec![("S", "s3cret-value")],
            "--raw and -o json",
        ),
        (
            vec!["consent-url", "--client-id", CLIENT, "--redirect-uri", "notaurl"],
            vec![],
            "--redirect-uri 'notaurl' is not an absolute URL",
        ),
        (vec!["consent-url", "--client-id", CLIENT, "--tenant", "x/../y"], vec![], "not a tenant id or domain name"),
    ];
    for (mut args, env, expected) in cases {
        if args[0] == "token" {
            args.extend(["--scope", scope]);
            if !args.contains(&"--authority") {
                args.extend(["--authority", base]);
            }
        }
        let o = keycred(&args, &env);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(expected), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("s3cret-value"), "{args:?}");
    }
    assert!(server.requests().is_empty(), "nothing was sent");
    // A certificate from AZURE_CLIENT_CERTIFICATE_PATH yields to an explicit --secret-env.
    let server = TestServer::start(vec![Reply::json(
        200,
        r#"{"token_type":"Bearer","expires_in":3599,"access_token":"x.y.z"}"#,
    )]);
    let o = keycred(
        &[
            "token",
            "--secret-env",
            "S",
            "--client-id",
            CLIENT,
            "--tenant",
            TENANT,
            "--authority",
            &server.base,
            "--scope",
            scope,
        ],
        &[("S", "s3cret-value"), ("AZURE_CLIENT_CERTIFICATE_PATH", c)],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(server.requests()[0].field("client_secret"), Some("s3cret-value"));
}

#[test]
fn decode_takes_a_pasted_authorization_header_and_a_single_string_role() {
    let token = fake_access_token(serde_json::json!({"aud": "api://x", "roles": "Data.Read"}));
    let o = keycred(&["decode", &format!("Bearer {token}"), "--expect-role", "Data.Read", "-o", "json"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["claims"]["roles"], "Data.Read");
    let o = keycred(&["decode", &format!("bearer {token}"), "--expect-role", "Data.Write"], &[]);
    assert_eq!(o.status.code(), Some(4));
    assert!(stderr(&o).contains("lacks the role Data.Write (roles: Data.Read)"), "{}", stderr(&o));
}

#[test]
fn every_command_reading_a_pfx_takes_the_standard_password_variable() {
    let dir = TempDir::new("inputs-pfx");
    let d = dir.0.to_str().unwrap();
    let o = keycred(&["new", "--name", "app", "--out-dir", d, "--pfx", "--password-env", "PW"], &[("PW", "pfx-pass")]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let pfx = dir.path("app.pfx");
    let p = pfx.to_str().unwrap();
    let fp = hex_upper(&openssl_fingerprint(&dir.path("app.cer"), "sha1"));
    let env = [("AZURE_CLIENT_CERTIFICATE_PASSWORD", "pfx-pass")];
    for args in [vec!["show", p, "-o", "json"], vec!["manifest", "entry", "--cert", p, "-o", "json"]] {
        let o = keycred(&args, &env);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        let cki = v.get("thumbprint").cloned().unwrap_or_else(|| v["customKeyIdentifier"].clone());
        let got = match cki.as_str().unwrap() {
            t if t.len() == 40 => t.to_string(),
            b64 => hex_upper(&base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64).unwrap()),
        };
        assert_eq!(got, fp, "{args:?}");
        // Without it, the PFX's password is asked for by name.
        let o = keycred(&args, &[]);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stderr(&o).contains("AZURE_CLIENT_CERTIFICATE_PASSWORD"), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn usage_errors_under_json_output_are_json_too() {
    for (args, needle) in [
        (vec!["token", "--client-id", CLIENT, "--tenant", TENANT, "-o", "json"], "--scope"),
        (vec!["token", "--bogus", "--output", "json"], "unexpected argument '--bogus'"),
        (vec!["-ojson", "new", "--name", "a", "--days", "x"], "invalid value 'x' for '--days"),
    ] {
        let o = keycred(&args, &[]);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stdout(&o).is_empty(), "{args:?}");
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "one document: {err}");
        let v: serde_json::Value = serde_json::from_str(&err).unwrap_or_else(|e| panic!("{args:?}: {e}: {err}"));
        assert_eq!(v["error"]["exitCode"], 2);
        assert!(v["error"]["message"].as_str().unwrap().contains(needle), "{args:?}: {v}");
        assert!(v["error"]["hint"].is_string(), "{v}");
    }
    // Text mode keeps clap's own text.
    let o = keycred(&["token", "--bogus"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).starts_with("error: unexpected argument '--bogus'"), "{}", stderr(&o));
    // A value read from a closed stdin is named, not parsed.
    let o = keycred(&["decode", "-"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("TOKEN: stdin was empty"), "{}", stderr(&o));
}
