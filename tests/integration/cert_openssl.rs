//! `keycred new` and `keycred show` checked against the openssl CLI, and their refusals.

use crate::common;
use common::keycred_bare;

use common::snapshot;
use std::fs;
use std::path::Path;
use std::process::{Command, Output};

fn keycred(dir: &Path, args: &[&str]) -> Output {
    keycred_bare()
        .args(args)
        .current_dir(dir)
        .env("PW", "correct horse battery")
        .env("WRONG", "not the password")
        .env_remove("AZURE_CLIENT_CERTIFICATE_PASSWORD")
        .output()
        .expect("run keycred")
}

fn openssl(dir: &Path, args: &[&str]) -> String {
    let o = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .env("PW", "correct horse battery")
        .output()
        .expect("openssl CLI is installed");
    assert!(o.status.success(), "openssl {args:?} failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

fn json(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "keycred failed: {}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).expect("stdout is JSON")
}

/// `sha1 Fingerprint=AB:CD:...` → `ABCD...`
fn openssl_fingerprint(dir: &Path, file: &str, form: &str) -> String {
    let out = openssl(dir, &["x509", "-in", file, "-inform", form, "-noout", "-fingerprint", "-sha1"]);
    out.trim().split('=').nth(1).unwrap().replace(':', "")
}

#[test]
fn new_agrees_with_openssl_on_every_value() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let o = keycred(
        d,
        &[
            "new",
            "--name",
            "app",
            "--subject",
            "CN=MyCompanyName MyAppName Cert, O=Contoso, C=FR",
            "--not-before",
            "2026-01-01",
            "--not-after",
            "2049-06-30T12:00:00Z",
            "--pfx",
            "--password-env",
            "PW",
            "-o",
            "json",
        ],
    );
    let v = json(&o);
    // Thumbprint and the forms derived from it.
    let fp = openssl_fingerprint(d, "app.cer", "PEM");
    assert_eq!(v["thumbprint"], fp);
    let raw: Vec<u8> = (0..20).map(|i| u8::from_str_radix(&fp[2 * i..2 * i + 2], 16).unwrap()).collect();
    use base64::Engine;
    assert_eq!(v["customKeyIdentifier"], base64::engine::general_purpose::STANDARD.encode(&raw));
    assert_eq!(v["x5t"], base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&raw));
    let fp256 = openssl(d, &["x509", "-in", "app.cer", "-noout", "-fingerprint", "-sha256"]);
    assert_eq!(v["thumbprintSha256"], fp256.trim().split('=').nth(1).unwrap().replace(':', ""));
    openssl(d, &["x509", "-in", "app.cer", "-outform", "DER", "-out", "app.der"]);
    assert_eq!(v["value"], base64::engine::general_purpose::STANDARD.encode(fs::read(d.join("app.der")).unwrap()));
    // Subject, dates, serial, key size, algorithm.
    // RFC 4514 order in the string, so C is encoded first (RFC2253,-dn_rev prints encoding order).
    let subj = openssl(d, &["x509", "-in", "app.cer", "-noout", "-subject", "-nameopt", "RFC2253"]);
    assert_eq!(subj.trim(), "subject=CN=MyCompanyName MyAppName Cert,O=Contoso,C=FR");
    let subj = openssl(d, &["x509", "-in", "app.cer", "-noout", "-subject", "-nameopt", "RFC2253,-dn_rev"]);
    assert_eq!(subj.trim(), "subject=C=FR,O=Contoso,CN=MyCompanyName MyAppName Cert");
    assert_eq!(v["subject"], "CN=MyCompanyName MyAppName Cert, O=Contoso, C=FR");
    assert_eq!(v["issuer"], v["subject"]);
    let dates = openssl(d, &["x509", "-in", "app.cer", "-noout", "-startdate", "-enddate", "-serial"]);
    assert!(dates.contains("notBefore=Jan  1 00:00:00 2026 GMT"), "{dates}");
    assert!(dates.contains("notAfter=Jun 30 12:00:00 2049 GMT"), "{dates}");
    assert_eq!(v["notBefore"], "2026-01-01T00:00:00Z");
    assert_eq!(v["notAfter"], "2049-06-30T12:00:00Z");
    assert!(dates.contains(&format!("serial={}", v["serialNumber"].as_str().unwrap())), "{dates}");
    let text = openssl(d, &["x509", "-in", "app.cer", "-noout", "-text"]);
    assert!(text.contains("Public-Key: (2048 bit)"));
    assert_eq!(v["keySize"], 2048);
    assert!(text.contains("Signature Algorithm: sha256WithRSAEncryption"));
    assert_eq!(v["signatureAlgorithm"], "sha256WithRSAEncryption");
    assert!(text.contains("Version: 3 (0x2)"));
    assert!(text.contains("CA:FALSE"), "{text}");
    assert!(text.contains("Digital Signature"), "{text}");
    assert!(text.contains("TLS Web Client Authentication"), "{text}");
    assert!(text.contains("Subject Key Identifier"), "{text}");
    // Self-signature verifies.
    assert!(openssl(d, &["verify", "-CAfile", "app.cer", "app.cer"]).contains("app.cer: OK"));
    // The encrypted key opens with the passphrase and its modulus is the certificate's.
    let key_mod = openssl(d, &["rsa", "-in", "app.key", "-passin", "env:PW", "-noout", "-modulus"]);
    let cert_mod = openssl(d, &["x509", "-in", "app.cer", "-noout", "-modulus"]);
    assert_eq!(key_mod, cert_mod);
    assert!(fs::read_to_string(d.join("app.key")).unwrap().starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    // The bundle holds key then certificate.
    let bundle = fs::read_to_string(d.join("app.pem")).unwrap();
    assert!(bundle.find("PRIVATE KEY").unwrap() < bundle.find("BEGIN CERTIFICATE").unwrap());
    // The PFX opens with openssl pkcs12 and holds the same certificate, encrypted with AES-256.
    let info = Command::new("openssl")
        .args(["pkcs12", "-in", "app.pfx", "-passin", "env:PW", "-info", "-nokeys", "-nomacver"])
        .current_dir(d)
        .env("PW", "correct horse battery")
        .output()
        .unwrap();
    let info_err = String::from_utf8_lossy(&info.stderr);
    assert!(info.status.success(), "{info_err}");
    assert!(info_err.contains("AES-256-CBC"), "{info_err}");
    assert!(String::from_utf8_lossy(&info.stdout).contains("BEGIN CERTIFICATE"));
    let pfx_cert = Command::new("openssl")
        .args(["pkcs12", "-in", "app.pfx", "-passin", "env:PW", "-nokeys", "-clcerts"])
        .current_dir(d)
        .env("PW", "correct horse battery")
        .output()
        .unwrap();
    fs::write(d.join("from-pfx.pem"), &pfx_cert.stdout).unwrap();
    assert_eq!(openssl_fingerprint(d, "from-pfx.pem", "PEM"), fp);
    // Private files are owner-only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for f in ["app.key", "app.pem", "app.pfx"] {
            assert_eq!(fs::metadata(d.join(f)).unwrap().permissions().mode() & 0o777, 0o600, "{f}");
        }
    }
    // show reads back every form with the same values.
    for f in ["app.cer", "app.der", "app.pem", "app.pfx"] {
        let s = json(&keycred(d, &["show", f, "--password-env", "PW", "-o", "json"]));
        assert_eq!(s["thumbprint"], fp, "{f}");
        assert_eq!(s["problems"], serde_json::json!([]), "{f}");
    }
}

#[test]
fn show_agrees_with_openssl_on_openssl_made_certificates() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:3072",
            "-nodes",
            "-keyout",
            "o.key",
            "-out",
            "o.pem",
            "-days",
            "10",
            "-subj",
            "/CN=openssl made/O=Fabrikam",
        ],
    );
    openssl(d, &["x509", "-in", "o.pem", "-outform", "DER", "-out", "o.der"]);
    let fp = openssl_fingerprint(d, "o.pem", "PEM");
    let serial = openssl(d, &["x509", "-in", "o.pem", "-noout", "-serial"]);
    for f in ["o.pem", "o.der"] {
        let v = json(&keycred(d, &["show", f, "-o", "json"]));
        assert_eq!(v["thumbprint"], fp);
        assert_eq!(v["keySize"], 3072);
        // `-subj /CN=../O=..` encodes CN first, so RFC 4514 (and `-nameopt RFC2253`) puts O first.
        assert_eq!(v["subject"], "O=Fabrikam, CN=openssl made");
        assert_eq!(format!("serial={}\n", v["serialNumber"].as_str().unwrap()), serial);
        let problems = v["problems"].as_array().unwrap();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].as_str().unwrap().starts_with("expires in "), "{problems:?}");
    }
    // Two files: a JSON array, in order.
    let v = json(&keycred(d, &["show", "o.pem", "o.der", "-o", "json"]));
    assert_eq!(v.as_array().unwrap().len(), 2);
    // A legacy 3DES PFX made by openssl is read.
    openssl(
        d,
        &[
            "pkcs12",
            "-export",
            "-in",
            "o.pem",
            "-inkey",
            "o.key",
            "-out",
            "legacy.pfx",
            "-passout",
            "pass:correct horse battery",
            "-certpbe",
            "PBE-SHA1-3DES",
            "-keypbe",
            "PBE-SHA1-3DES",
            "-macalg",
            "sha1",
        ],
    );
    let v = json(&keycred(d, &["show", "legacy.pfx", "--password-env", "PW", "-o", "json"]));
    assert_eq!(v["thumbprint"], fp);
}

#[test]
fn show_lists_problems_of_weak_certificates() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    openssl(
        d,
        &[
            "req", "-x509", "-newkey", "rsa:1024", "-nodes", "-keyout", "w.key", "-out", "w.pem", "-subj", "/CN=weak",
            "-days", "365",
        ],
    );
    openssl(d, &["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ec.key"]);
    openssl(d, &["req", "-x509", "-new", "-key", "ec.key", "-out", "ec.pem", "-subj", "/CN=ec", "-days", "100"]);
    let v = json(&keycred(d, &["show", "w.pem", "ec.pem", "-o", "json"]));
    assert_eq!(v[0]["problems"], serde_json::json!(["key smaller than 2048 bits"]));
    assert_eq!(v[0]["keySize"], 1024);
    assert_eq!(v[1]["problems"], serde_json::json!(["not an RSA key"]));
    let o =
        keycred(d, &["new", "--name", "old", "--not-before", "2020-01-01", "--not-after", "2021-01-01", "-o", "json"]);
    assert_eq!(json(&o)["problems"], serde_json::json!(["expired"]));
}

/// Each bad input: exit 2, a message naming the input, and the directory exactly as it was.
#[test]
fn bad_input_is_refused_and_nothing_changes() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    assert!(keycred(d, &["new", "--name", "keep"]).status.success());
    fs::write(d.join("garbage.cer"), b"this is not a certificate").unwrap();
    openssl(d, &["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "only.key"]);
    assert!(keycred(d, &["new", "--name", "p", "--pfx", "--password-env", "PW"]).status.success());
    let before = snapshot(d);
    let cases: &[(&[&str], &str)] = &[
        (&["new", "--name", "x", "--key-size", "1024"], "at least 2048"),
        (&["new", "--name", "x", "--key-size", "2500"], "unsupported RSA key size"),
        (&["new", "--name", "x", "--subject", "this is not a DN"], "--subject"),
        (&["new", "--name", "x", "--subject", "ZZ=1"], "unknown attribute"),
        (&["new", "--name", "x", "--not-before", "2027-01-01", "--not-after", "2026-01-01"], "not after"),
        (&["new", "--name", "x", "--not-before", "yesterday", "--not-after", "2026-01-01"], "not a date"),
        (&["new", "--name", "keep"], "already exist"),
        (&["new", "--name", "x", "--out-dir", "garbage.cer/sub"], "garbage.cer"),
        (&["new", "--name", "x", "--out-dir", "garbage.cer"], "garbage.cer"),
        (&["new", "--name", "x", "--pfx", "--password-env", "NOT_SET_ANYWHERE"], "NOT_SET_ANYWHERE"),
        (&["new", "--name", "x", "--key-size", "abc"], "abc"),
        (&["show", "garbage.cer"], "garbage.cer"),
        (&["show", "only.key"], "only.key"),
        (&["show", "missing.cer"], "missing.cer"),
        (&["show", "p.pfx", "--password-env", "WRONG"], "wrong PFX password"),
        (&["show", "p.pfx"], "password"),
        (&["show", "p.key"], "only a private key"),
    ];
    for (args, needle) in cases {
        let o = keycred(d, args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: expected '{needle}' in: {err}");
        assert!(o.stdout.is_empty(), "{args:?} printed on stdout");
        assert_eq!(snapshot(d), before, "{args:?} changed the directory");
    }
    // With -o json the error is a JSON object with the exit code.
    let o = keycred(d, &["show", "garbage.cer", "-o", "json"]);
    let e: serde_json::Value = serde_json::from_slice(&o.stderr).unwrap();
    assert_eq!(e["error"]["exitCode"], 2);
}

#[test]
fn force_replaces_existing_files() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let a = json(&keycred(d, &["new", "--name", "a", "-o", "json"]));
    let b = json(&keycred(d, &["new", "--name", "a", "--force", "-o", "json", "--key-size", "3072"]));
    assert_ne!(a["thumbprint"], b["thumbprint"]);
    assert_eq!(openssl_fingerprint(d, "a.cer", "PEM"), b["thumbprint"].as_str().unwrap());
    assert_eq!(b["files"]["cert"], d.join("a.cer").display().to_string().replace(&d.display().to_string(), "."));
}
