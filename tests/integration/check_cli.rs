//! `keycred check` end to end against the in-process emulator: every step's outcome and detail,
//! the exit codes (0 pass, 4 a check failed, 3 the server refused), v1 and v2.

use crate::rotation_support as support;

use serde_json::Value;
use support::*;

struct Setup {
    dir: TempDir,
    manifest: std::path::PathBuf,
    cred: keycred::cert::LoadedCredential,
    bundle: String,
    emu: keycred::emulator::BlockingEmulator,
}

/// An app registered with a 365-day certificate; the emulator grants Data.Read and Data.Write on API.
fn setup() -> Setup {
    let dir = TempDir::new("rot-test");
    let cred = credential("check test", 365);
    let bundle = write_cred(&dir, "app", &cred);
    let manifest = dir.path("app.json");
    write_manifest(&manifest, OBJECT_ID, APP_ID, &[entry(&cred.cert)]);
    let emu = emulator(&[&manifest], &[(API, &["Data.Read", "Data.Write"])], false);
    Setup { dir, manifest, cred, bundle, emu }
}

fn check(s: &Setup, extra: &[&str]) -> Out {
    let mut args =
        vec!["check", "--client-id", APP_ID, "--tenant", TENANT, "--authority", s.emu.info().base_url(), "-o", "json"];
    args.extend_from_slice(extra);
    cli(&args, &[])
}

fn step<'a>(steps: &'a Value, name: &str) -> &'a Value {
    steps.as_array().unwrap().iter().find(|s| s["step"] == name).unwrap_or_else(|| panic!("no step {name}: {steps}"))
}

const ALL: [&str; 8] = [
    "certificate readable",
    "RSA key of at least 2048 bits",
    "valid now",
    "private key matches certificate",
    "manifest holds certificate",
    "assertion signs and verifies",
    "token request",
    "expected roles present",
];

#[test]
fn all_steps_pass_v2_and_v1() {
    let s = setup();
    let m = s.manifest.display().to_string();
    for target in [["--scope", API], ["--resource", API]] {
        let out = check(
            &s,
            &[
                "--cert",
                &s.bundle,
                "--manifest",
                &m,
                target[0],
                target[1],
                "--expect-role",
                "Data.Read",
                "--expect-role",
                "Data.Write",
            ],
        );
        assert_eq!(out.code, 0, "{out:?}");
        let steps = out.json();
        let names: Vec<&str> = steps.as_array().unwrap().iter().map(|s| s["step"].as_str().unwrap()).collect();
        assert_eq!(names, ALL);
        for st in steps.as_array().unwrap() {
            assert_eq!(st["ok"], true, "{st}");
            assert_eq!(st["outcome"], "pass", "{st}");
            assert!(st["detail"].as_str().is_some_and(|d| !d.is_empty()), "{st}");
        }
        assert!(step(&steps, "certificate readable")["detail"].as_str().unwrap().contains(&s.cred.cert.thumbprint()));
        assert_eq!(step(&steps, "RSA key of at least 2048 bits")["detail"], "RSA 2048 bits");
        let endpoint = if target[0] == "--scope" { "/oauth2/v2.0/token" } else { "/oauth2/token" };
        let tok = step(&steps, "token request")["detail"].as_str().unwrap().to_string();
        assert!(tok.contains(&format!("{}/{TENANT}{endpoint}", s.emu.info().base_url())), "{tok}");
        assert_eq!(step(&steps, "expected roles present")["detail"], "token roles: [Data.Read, Data.Write]");
    }
    // Text output: one marked line per step.
    let out = cli(
        &[
            "check",
            "--client-id",
            APP_ID,
            "--tenant",
            TENANT,
            "--authority",
            s.emu.info().base_url(),
            "--cert",
            &s.bundle,
            "--scope",
            API,
        ],
        &[],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 7, "no --manifest: no manifest step\n{}", out.stdout);
    assert!(lines.iter().all(|l| l.starts_with("[ ok ]")), "{}", out.stdout);
    let _ = &s.dir;
}

#[test]
fn certificate_missing_from_manifest_fails_with_4() {
    let s = setup();
    let other = s.dir.path("other.json");
    write_manifest(&other, OBJECT_ID, APP_ID, &[entry(&credential("someone else", 365).cert)]);
    let out = check(&s, &["--cert", &s.bundle, "--manifest", &other.display().to_string(), "--scope", API]);
    assert_eq!(out.code, 4, "{out:?}");
    let steps = out.json();
    let m = step(&steps, "manifest holds certificate");
    assert_eq!(m["ok"], false);
    assert_eq!(m["outcome"], "fail");
    assert!(m["detail"].as_str().unwrap().contains(&s.cred.cert.thumbprint()), "{m}");
    // The token step means nothing once a check failed.
    assert_eq!(step(&steps, "token request")["outcome"], "skip");
    assert_eq!(step(&steps, "token request")["ok"], Value::Null);
    assert_eq!(step(&steps, "certificate readable")["ok"], true);
}

#[test]
fn an_entry_entra_would_not_use_fails_the_manifest_step() {
    let s = setup();
    let entry_with = |field: &str, value: Value| {
        let mut e = entry(&s.cred.cert);
        e[field] = value;
        e
    };
    let hex = s.cred.cert.thumbprint();
    let colons = hex.as_bytes().chunks(2).map(|c| std::str::from_utf8(c).unwrap()).collect::<Vec<_>>().join(":");
    // The plain hex thumbprint is what Graph writes itself: the step passes.
    let m = s.dir.path("hex.json");
    write_manifest(&m, OBJECT_ID, APP_ID, &[entry_with("customKeyIdentifier", hex.clone().into())]);
    let out = check(&s, &["--cert", &s.bundle, "--manifest", &m.display().to_string(), "--scope", API]);
    assert_eq!(out.code, 0, "hex: {out:?}");
    for (name, e, expected) in [
        ("usage", entry_with("usage", "Sign".into()), "usage is \"Sign\""),
        ("type", entry_with("type", "Symmetric".into()), "type is \"Symmetric\""),
        ("hex with colons", entry_with("customKeyIdentifier", colons.into()), "hex thumbprint with separators"),
    ] {
        let m = s.dir.path(&format!("{name}.json"));
        write_manifest(&m, OBJECT_ID, APP_ID, &[e]);
        let out = check(&s, &["--cert", &s.bundle, "--manifest", &m.display().to_string(), "--scope", API]);
        assert_eq!(out.code, 4, "{name}: {out:?}");
        let steps = out.json();
        let step = step(&steps, "manifest holds certificate");
        assert_eq!(step["ok"], false, "{name}");
        assert!(step["detail"].as_str().unwrap().contains(expected), "{name}: {step}");
    }
}

#[test]
fn missing_role_fails_with_4_naming_it() {
    let s = setup();
    let out =
        check(&s, &["--cert", &s.bundle, "--scope", API, "--expect-role", "Data.Read", "--expect-role", "Data.Admin"]);
    assert_eq!(out.code, 4, "{out:?}");
    let steps = out.json();
    assert_eq!(step(&steps, "token request")["ok"], true);
    let r = step(&steps, "expected roles present");
    assert_eq!(r["ok"], false);
    let d = r["detail"].as_str().unwrap();
    assert!(d.starts_with("missing Data.Admin:"), "{d}");
    assert!(d.contains("[Data.Read, Data.Write]"), "{d}");
}

#[test]
fn key_not_matching_certificate_fails_and_skips_later_steps() {
    let s = setup();
    let other = credential("other key", 365);
    write_cred(&s.dir, "other", &other);
    let out = check(&s, &["--cert", &s.dir.s("app.cer"), "--key", &s.dir.s("other.key"), "--scope", API]);
    assert_eq!(out.code, 4, "{out:?}");
    let steps = out.json();
    assert_eq!(step(&steps, "certificate readable")["ok"], true);
    assert_eq!(step(&steps, "valid now")["ok"], true);
    assert_eq!(step(&steps, "private key matches certificate")["ok"], false);
    for later in ["assertion signs and verifies", "token request", "expected roles present"] {
        let st = step(&steps, later);
        assert_eq!(st["outcome"], "skip", "{st}");
        assert_eq!(st["ok"], Value::Null, "{st}");
        assert!(st["detail"].as_str().unwrap().starts_with("skipped: "), "{st}");
    }
    // Cross-check the mismatch with openssl: the two public keys differ.
    let pubkey = |args: &[&str]| {
        let o = std::process::Command::new("/usr/bin/openssl").args(args).output().unwrap();
        assert!(o.status.success());
        o.stdout
    };
    assert_ne!(
        pubkey(&["x509", "-in", &s.dir.s("app.cer"), "-noout", "-pubkey"]),
        pubkey(&["pkey", "-in", &s.dir.s("other.key"), "-pubout"])
    );
}

#[test]
fn expiring_certificate_warns_but_passes() {
    let s = setup();
    let short = credential("short lived", 10);
    let bundle = write_cred(&s.dir, "short", &short);
    let m = s.dir.path("short.json");
    write_manifest(&m, OBJECT_ID, APP_ID, &[entry(&s.cred.cert), entry(&short.cert)]);
    std::fs::copy(&m, &s.manifest).unwrap();
    let out = check(&s, &["--cert", &bundle, "--manifest", &m.display().to_string(), "--scope", API]);
    assert_eq!(out.code, 0, "{out:?}");
    let steps = out.json();
    let v = step(&steps, "valid now");
    assert_eq!(v["ok"], true);
    assert_eq!(v["outcome"], "warn");
    let d = v["detail"].as_str().unwrap();
    assert!(d.starts_with("expires in ") && d.contains(" days"), "{d}");
    let days: i64 = d.trim_start_matches("expires in ").split(' ').next().unwrap().parse().unwrap();
    assert!((9..=10).contains(&days), "{d}");
    assert_eq!(step(&steps, "token request")["ok"], true);
}

#[test]
fn token_refused_by_server_exits_3() {
    let s = setup();
    // The app's registration no longer holds the certificate (removed in the portal).
    write_manifest(&s.manifest, OBJECT_ID, APP_ID, &[entry(&credential("replacement", 365).cert)]);
    for target in [["--scope", API], ["--resource", API]] {
        let out = check(&s, &["--cert", &s.bundle, target[0], target[1]]);
        assert_eq!(out.code, 3, "{out:?}");
        let steps = out.json();
        let t = step(&steps, "token request");
        assert_eq!(t["ok"], false);
        let d = t["detail"].as_str().unwrap();
        // Entra's code once, not repeated before its own description.
        assert_eq!(d.matches("AADSTS700027").count(), 1, "{d}");
        assert!(d.contains(&s.cred.cert.thumbprint()), "{d}");
        assert_eq!(step(&steps, "expected roles present")["outcome"], "skip");
        assert_eq!(step(&steps, "assertion signs and verifies")["ok"], true);
    }
}

#[test]
fn missing_target_is_usage_error() {
    let s = setup();
    let out = check(&s, &["--cert", &s.bundle]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("--scope"), "{}", out.stderr);
}

/// Scripts read `-o json`: every step has a stable single-token id beside its text, and the
/// client id comes from the manifest's appId when none is given.
#[test]
fn steps_have_ids_and_the_client_id_comes_from_the_manifest() {
    let s = setup();
    let m = s.manifest.display().to_string();
    let args = ["check", "--tenant", TENANT, "--authority", s.emu.info().base_url(), "-o", "json"];
    let mut with = args.to_vec();
    with.extend(["--cert", &s.bundle, "--manifest", &m, "--scope", API]);
    let out = cli(&with, &[]);
    assert_eq!(out.code, 0, "{out:?}");
    let steps = out.json();
    let ids: Vec<&str> = steps.as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "cert_readable",
            "key_type",
            "valid_now",
            "key_matches",
            "manifest_holds_cert",
            "assertion_verifies",
            "token_issued",
            "roles_present"
        ]
    );
    for st in steps.as_array().unwrap() {
        let id = st["id"].as_str().unwrap();
        assert!(id.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{id}");
        assert!(["pass", "warn", "fail", "skip"].contains(&st["outcome"].as_str().unwrap()), "{st}");
    }
    // Without --manifest and --client-id: said, naming both ways.
    let mut without = args.to_vec();
    without.extend(["--cert", &s.bundle, "--scope", API]);
    let out = cli(&without, &[]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("--client-id") && out.stderr.contains("--manifest"), "{}", out.stderr);
}

/// Bug: with a 1024-bit key, `check` reported "not usable (under 2048 bits, or malformed)" under
/// "private key matches certificate", and the manifest hint printed the placeholder CERT.
#[test]
fn a_small_key_is_named_by_its_size_under_the_size_step() {
    let s = setup();
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:1024",
        "-nodes",
        "-keyout",
        &s.dir.s("small.key"),
        "-out",
        &s.dir.s("small.cer"),
        "-days",
        "5",
        "-subj",
        "/CN=small",
    ]);
    let bundle = s.dir.path("small.pem");
    let text = std::fs::read_to_string(s.dir.path("small.key")).unwrap()
        + &std::fs::read_to_string(s.dir.path("small.cer")).unwrap();
    std::fs::write(&bundle, text).unwrap();
    let b = bundle.display().to_string();
    let m = s.manifest.display().to_string();
    let out = check(&s, &["--cert", &b, "--manifest", &m, "--scope", API]);
    assert_eq!(out.code, 4, "{out:?}");
    let steps = out.json();
    assert_eq!(step(&steps, "RSA key of at least 2048 bits")["detail"], "RSA 1024 bits: Entra requires at least 2048");
    assert_eq!(step(&steps, "private key matches certificate")["outcome"], "skip");
    let detail = step(&steps, "manifest holds certificate")["detail"].as_str().unwrap().to_string();
    assert!(detail.ends_with(&format!("--cert {b}`)")), "{detail}");
    // `assertion` says the size too.
    let out = cli(&["assertion", "--client-id", APP_ID, "--tenant", TENANT, "--cert", &b], &[]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("is 1024 bits; Entra requires at least 2048"), "{}", out.stderr);
}

/// Bug: `token -o json` printed `"scope": null` for a v2 request that named one (Entra's v2
/// client-credentials answer carries no scope).
#[test]
fn token_json_names_the_scope_asked_for() {
    let s = setup();
    let base = ["token", "--client-id", APP_ID, "--tenant", TENANT, "--authority", s.emu.info().base_url(), "--cert"];
    let mut args = base.to_vec();
    args.extend([s.bundle.as_str(), "--scope", API, "-o", "json"]);
    let out = cli(&args, &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["scope"], format!("{API}/.default"));
    let mut args = base.to_vec();
    args.extend([s.bundle.as_str(), "-o", "json"]);
    let out = cli(&args, &[]);
    assert_eq!(out.code, 2, "{out:?}");
    for flag in ["--scope", "--resource", "--obo", "--code"] {
        assert!(out.stderr.contains(flag), "{flag}: {}", out.stderr);
    }
}

/// `decode --verify` checks a token's signature against the issuer's keys (the emulator's
/// JWKS, found through its OpenID configuration, or given); without it output stays NOT
/// VERIFIED, and a tampered token fails with 4.
#[test]
fn decode_verify_checks_the_signature_with_the_issuers_keys() {
    let s = setup();
    let base = s.emu.info().base_url().to_string();
    let out = cli(
        &[
            "token",
            "--client-id",
            APP_ID,
            "--tenant",
            TENANT,
            "--authority",
            &base,
            "--cert",
            &s.bundle,
            "--scope",
            API,
            "--raw",
        ],
        &[],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let token = out.stdout.trim().to_string();
    let out = cli(&["decode", &token, "--verify", "--authority", &base, "--tenant", TENANT, "-o", "json"], &[]);
    assert_eq!(out.code, 0, "{out:?}");
    let v = out.json();
    assert_eq!(v["verified"], true);
    let jwks = v["verifiedWith"]["jwks"].as_str().unwrap().to_string();
    assert!(jwks.starts_with(&base), "{jwks}");
    assert_eq!(v["verifiedWith"]["alg"], "RS256");
    let text = cli(&["decode", &token, "--verify", "--jwks", &jwks, "--authority", &base, "--tenant", TENANT], &[]);
    assert_eq!(text.code, 0, "{text:?}");
    assert!(text.stdout.starts_with("signature valid: RS256 with key "), "{}", text.stdout);
    // Unverified unless asked.
    let plain = cli(&["decode", &token, "-o", "json"], &[]);
    assert_eq!(plain.json()["verified"], false);
    // Another payload under the same signature: refused, 4.
    let parts: Vec<&str> = token.split('.').collect();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut claims: serde_json::Value = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    claims["roles"] = serde_json::json!(["Everything.All"]);
    let forged = format!("{}.{}.{}", parts[0], b64.encode(claims.to_string()), parts[2]);
    let out = cli(&["decode", &forged, "--verify", "--jwks", &jwks, "--authority", &base, "--tenant", TENANT], &[]);
    assert_eq!(out.code, 4, "{out:?}");
    assert!(out.stderr.contains("does not verify"), "{}", out.stderr);
}
