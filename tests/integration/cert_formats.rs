//! Certificates and keys load as openssl reads them (each case below was once mishandled): every
//! fixture is made by the openssl CLI, every value checked against openssl.
//!
//! - PFX files with plaintext bags, no MAC or an empty password were refused ("holds no
//!   certificate") although openssl reads them.
//! - Legacy-encrypted PEM keys, PKCS#7 files and DER keys got misleading messages.
//! - `show` of a bundle with an encrypted key needed the key's password; `show` ignored
//!   AZURE_CLIENT_CERTIFICATE_PASSWORD.
//! - A bundle with the CA before the leaf was refused ("key does not match").

use crate::common;

use base64::Engine;
use common::{
    keycred_command, openssl, openssl_ca_and_leaf, openssl_fingerprint_hex, openssl_self_signed_days, snapshot,
    TempDir, APP_ID,
};
use serde_json::Value;
use std::fs;
use std::process::Output;

const PW: &str = "correct horse battery";

/// keycred in `t`'s directory with PW set (and `env`).
fn run(t: &TempDir, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut all = vec![("PW", PW), ("WRONG", "not the password")];
    all.extend_from_slice(env);
    keycred_command(args, &all).current_dir(&t.0).output().expect("run keycred")
}

fn ok_json(o: &Output) -> Value {
    assert!(o.status.success(), "keycred failed: {}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).expect("stdout is JSON")
}

/// Exit 2, with every needle in stderr (message and hint).
fn refused(o: &Output, needles: &[&str]) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(o.stdout.is_empty());
    for n in needles {
        assert!(err.contains(n), "expected '{n}' in: {err}");
    }
}

/// A self-signed RSA-2048 key and certificate from openssl: `NAME.key` (PKCS#8), `NAME.pem`.
fn self_signed(t: &TempDir, name: &str) {
    openssl_self_signed_days(
        &t.path(&format!("{name}.key")),
        &t.path(&format!("{name}.pem")),
        &format!("/CN={name}"),
        30,
    );
}

/// A CA `ca.key`/`ca.pem` and a leaf `leaf.key`/`leaf.pem` it issued.
fn ca_and_leaf(t: &TempDir) {
    openssl_ca_and_leaf(&t.0, ("ca", "/CN=Test Root CA/O=Fabrikam"), ("leaf", "/CN=leaf app/O=Fabrikam"), 30);
}

fn cat(t: &TempDir, out: &str, parts: &[&str]) {
    let all: Vec<u8> = parts.iter().flat_map(|p| fs::read(t.path(p)).unwrap()).collect();
    fs::write(t.path(out), all).unwrap();
}

fn fingerprint(t: &TempDir, cert: &str) -> String {
    openssl_fingerprint_hex(&t.s(cert), &[], "sha1")
}

/// Signs an assertion with `cred_args` and checks it with openssl against `cert`'s public key;
/// returns the JOSE header.
fn assertion_verified_by_openssl(t: &TempDir, cred_args: &[&str], env: &[(&str, &str)], cert: &str) -> Value {
    let mut args = vec!["assertion", "--client-id", APP_ID, "--tenant", "contoso.onmicrosoft.com", "--x5c"];
    args.extend_from_slice(cred_args);
    let o = run(t, &args, env);
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    let jwt = String::from_utf8(o.stdout).unwrap();
    let jwt = jwt.trim();
    let (signed, sig) = jwt.rsplit_once('.').unwrap();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    fs::write(t.path("signed.txt"), signed).unwrap();
    fs::write(t.path("sig.bin"), b64.decode(sig).unwrap()).unwrap();
    let pubkey = openssl(&["x509", "-in", &t.s(cert), "-noout", "-pubkey"]).stdout;
    fs::write(t.path("pub.pem"), pubkey).unwrap();
    let v =
        openssl(&["dgst", "-sha256", "-verify", &t.s("pub.pem"), "-signature", &t.s("sig.bin"), &t.s("signed.txt")]);
    assert_eq!(String::from_utf8_lossy(&v.stdout).trim(), "Verified OK");
    serde_json::from_slice(&b64.decode(signed.split('.').next().unwrap()).unwrap()).unwrap()
}

/// The SHA-1 fingerprint (upper hex) of a base64 DER certificate.
fn sha1_of_b64(der_b64: &str) -> String {
    use sha1::Digest;
    let der = base64::engine::general_purpose::STANDARD.decode(der_b64).unwrap();
    sha1::Sha1::digest(der).iter().map(|b| format!("{b:02X}")).collect()
}

/// Bug: `keycred show` refused PFX files whose bags are not encrypted ("the PFX holds no
/// certificate"), and those without a MAC or with an empty password were not all read.
#[test]
fn pfx_with_plaintext_or_encrypted_bags_mac_or_not_are_read() {
    let t = TempDir::new("cert-pfx");
    self_signed(&t, "s");
    let fp = fingerprint(&t, "s.pem");
    let (cert, key) = (t.s("s.pem"), t.s("s.key"));
    // (file, extra openssl options, password given to openssl, password variable for keycred)
    let pw_out = format!("pass:{PW}");
    let cases: &[(&str, &[&str], &str, Option<&str>)] = &[
        ("plain-nomac.pfx", &["-keypbe", "NONE", "-certpbe", "NONE", "-nomac"], "pass:", None),
        ("plain-mac-empty.pfx", &["-keypbe", "NONE", "-certpbe", "NONE"], "pass:", None),
        ("plain-mac-pw.pfx", &["-keypbe", "NONE", "-certpbe", "NONE"], &pw_out, Some("PW")),
        ("key-plain.pfx", &["-keypbe", "NONE"], &pw_out, Some("PW")),
        ("cert-plain.pfx", &["-certpbe", "NONE"], &pw_out, Some("PW")),
        ("nomac-pw.pfx", &["-nomac"], &pw_out, Some("PW")),
        ("aes-empty.pfx", &[], "pass:", None),
        (
            "legacy-3des.pfx",
            &["-certpbe", "PBE-SHA1-3DES", "-keypbe", "PBE-SHA1-3DES", "-macalg", "sha1"],
            &pw_out,
            Some("PW"),
        ),
    ];
    for (file, extra, pass, var) in cases {
        let out = t.s(file);
        let mut args = vec!["pkcs12", "-export", "-in", &cert, "-inkey", &key, "-out", &out, "-passout", pass];
        args.extend_from_slice(extra);
        openssl(&args);
        let mut show = vec!["show", *file, "-o", "json"];
        let mut cred = vec!["--cert", *file];
        if let Some(v) = var {
            show.extend(["--password-env", v]);
            cred.extend(["--password-env", v]);
        }
        let v = ok_json(&run(&t, &show, &[]));
        assert_eq!(v["thumbprint"], fp, "{file}");
        // The key is read too: the assertion verifies with openssl and names the certificate.
        let header = assertion_verified_by_openssl(&t, &cred, &[], "s.pem");
        assert_eq!(sha1_of_b64(header["x5c"][0].as_str().unwrap()), fp, "{file}");
    }
    // Without the password: the protected files say so and how to give it.
    for file in ["plain-mac-pw.pfx", "key-plain.pfx", "cert-plain.pfx", "nomac-pw.pfx", "legacy-3des.pfx"] {
        refused(
            &run(&t, &["show", file], &[]),
            &[file, "password-protected and no password was given", "--password-env"],
        );
        refused(&run(&t, &["show", file, "--password-env", "WRONG"], &[]), &[file, "wrong PFX password"]);
    }
    // A damaged PFX says what and how to look at it.
    let bytes = fs::read(t.path("key-plain.pfx")).unwrap();
    fs::write(t.path("cut.pfx"), &bytes[..bytes.len() / 2]).unwrap();
    refused(
        &run(&t, &["show", "cut.pfx", "--password-env", "PW"], &[]),
        &["cut.pfx", "not a readable PFX", "openssl pkcs12 -in cut.pfx -info"],
    );
}

/// Bug: a PFX with its CA certificate (no localKeyId, not marked trusted) lost it, and the
/// certificate bag order decided the leaf.
#[test]
fn pfx_with_chain_keeps_the_leaf_first_and_the_chain() {
    let t = TempDir::new("cert-pfx-chain");
    ca_and_leaf(&t);
    let fp = fingerprint(&t, "leaf.pem");
    let ca_fp = fingerprint(&t, "ca.pem");
    for (file, extra) in [("chain.pfx", &["-certpbe", "NONE", "-keypbe", "NONE"][..]), ("chain-aes.pfx", &[][..])] {
        let (leaf, key, ca, out) = (t.s("leaf.pem"), t.s("leaf.key"), t.s("ca.pem"), t.s(file));
        let mut args = vec![
            "pkcs12",
            "-export",
            "-in",
            &leaf,
            "-inkey",
            &key,
            "-certfile",
            &ca,
            "-out",
            &out,
            "-passout",
            "pass:",
        ];
        args.extend_from_slice(extra);
        openssl(&args);
        assert_eq!(ok_json(&run(&t, &["show", file, "-o", "json"], &[]))["thumbprint"], fp, "{file}");
        let h = assertion_verified_by_openssl(&t, &["--cert", file], &[], "leaf.pem");
        let x5c: Vec<String> = h["x5c"].as_array().unwrap().iter().map(|c| sha1_of_b64(c.as_str().unwrap())).collect();
        assert_eq!(x5c, vec![fp.clone(), ca_fp.clone()], "{file}");
    }
}

/// Bug: a key+cert bundle with the CA before the leaf failed with "private key does not match
/// the certificate"; without a key, the first certificate (the CA) was taken as the leaf.
#[test]
fn bundle_with_ca_before_leaf_uses_the_certificate_of_the_key() {
    let t = TempDir::new("cert-order");
    ca_and_leaf(&t);
    let fp = fingerprint(&t, "leaf.pem");
    let ca_fp = fingerprint(&t, "ca.pem");
    cat(&t, "bundle.pem", &["leaf.key", "ca.pem", "leaf.pem"]);
    let h = assertion_verified_by_openssl(&t, &["--cert", "bundle.pem"], &[], "leaf.pem");
    let x5c: Vec<String> = h["x5c"].as_array().unwrap().iter().map(|c| sha1_of_b64(c.as_str().unwrap())).collect();
    assert_eq!(x5c, vec![fp.clone(), ca_fp.clone()]);
    assert_eq!(ok_json(&run(&t, &["show", "bundle.pem", "-o", "json"], &[]))["thumbprint"], fp);
    // No key: the certificate that issued none of the others is the leaf, wherever it is.
    cat(&t, "chain.pem", &["ca.pem", "leaf.pem"]);
    assert_eq!(ok_json(&run(&t, &["show", "chain.pem", "-o", "json"], &[]))["thumbprint"], fp);
    let h = assertion_verified_by_openssl(&t, &["--cert", "chain.pem", "--key", "leaf.key"], &[], "leaf.pem");
    assert_eq!(sha1_of_b64(h["x5c"][0].as_str().unwrap()), fp);
    // Several files: one certificate each, the leaf, in order.
    let v = ok_json(&run(&t, &["show", "chain.pem", "ca.pem", "bundle.pem", "-o", "json"], &[]));
    let fps: Vec<&str> = v.as_array().unwrap().iter().map(|c| c["thumbprint"].as_str().unwrap()).collect();
    assert_eq!(fps, vec![fp.as_str(), ca_fp.as_str(), fp.as_str()]);
    // A bundle whose key belongs to no certificate in it is still refused.
    cat(&t, "wrong.pem", &["ca.key", "leaf.pem"]);
    refused(
        &run(&t, &["assertion", "--client-id", APP_ID, "--tenant", "t.example", "--cert", "wrong.pem"], &[]),
        &["does not match"],
    );
}

/// Bug: `show` of a bundle holding an encrypted key failed ("the private key is encrypted")
/// although only the certificate is shown; `show` ignored AZURE_CLIENT_CERTIFICATE_PASSWORD.
#[test]
fn show_needs_no_key_password_and_honours_the_azure_password_variable() {
    let t = TempDir::new("cert-show-pw");
    self_signed(&t, "s");
    let fp = fingerprint(&t, "s.pem");
    let pw_out = format!("pass:{PW}");
    openssl(&["pkcs8", "-topk8", "-in", &t.s("s.key"), "-out", &t.s("enc.key"), "-passout", &pw_out]);
    openssl(&["rsa", "-in", &t.s("s.key"), "-traditional", "-aes256", "-out", &t.s("legacy.key"), "-passout", &pw_out]);
    cat(&t, "enc-bundle.pem", &["enc.key", "s.pem"]);
    cat(&t, "legacy-bundle.pem", &["legacy.key", "s.pem"]);
    for f in ["enc-bundle.pem", "legacy-bundle.pem"] {
        assert_eq!(ok_json(&run(&t, &["show", f, "-o", "json"], &[]))["thumbprint"], fp, "{f}");
    }
    // A manifest entry needs only the certificate too.
    let e = ok_json(&run(&t, &["manifest", "entry", "--cert", "enc-bundle.pem", "--format", "ms-graph"], &[]));
    assert_eq!(sha1_of_b64(e["key"].as_str().unwrap()), fp);
    // Signing still needs the password, and says so.
    let sign = ["assertion", "--client-id", APP_ID, "--tenant", "t.example", "--cert", "enc-bundle.pem"];
    refused(&run(&t, &sign, &[]), &["enc-bundle.pem", "encrypted and no password"]);
    assertion_verified_by_openssl(&t, &["--cert", "enc-bundle.pem", "--password-env", "PW"], &[], "s.pem");
    // The PFX password from the variable `assertion` uses.
    openssl(&[
        "pkcs12",
        "-export",
        "-in",
        &t.s("s.pem"),
        "-inkey",
        &t.s("s.key"),
        "-out",
        &t.s("s.pfx"),
        "-passout",
        &pw_out,
    ]);
    let v = ok_json(&run(&t, &["show", "s.pfx", "-o", "json"], &[("AZURE_CLIENT_CERTIFICATE_PASSWORD", PW)]));
    assert_eq!(v["thumbprint"], fp);
    // --password-env still wins over it.
    refused(
        &run(&t, &["show", "s.pfx", "--password-env", "WRONG"], &[("AZURE_CLIENT_CERTIFICATE_PASSWORD", PW)]),
        &["wrong PFX password"],
    );
}

/// Bug: legacy-encrypted PEM keys were "not usable (under 2048 bits, or malformed)"; PKCS#7
/// files "held no certificate, a key file alone..."; DER keys were "not a readable PFX".
#[test]
fn keys_and_pkcs7_get_messages_that_say_what_they_are_and_how_to_fix() {
    let t = TempDir::new("cert-msgs");
    self_signed(&t, "s");
    let fp = fingerprint(&t, "s.pem");
    let pw_out = format!("pass:{PW}");
    let pw_in = pw_out.clone();
    openssl(&["rsa", "-in", &t.s("s.key"), "-traditional", "-aes256", "-out", &t.s("legacy.key"), "-passout", &pw_out]);
    assert!(fs::read_to_string(t.path("legacy.key")).unwrap().contains("Proc-Type: 4,ENCRYPTED"));
    cat(&t, "legacy-bundle.pem", &["legacy.key", "s.pem"]);
    let sign = |cert: &str, key: Option<&str>| {
        let mut a = vec!["assertion", "--client-id", APP_ID, "--tenant", "t.example", "--cert", cert];
        if let Some(k) = key {
            a.extend(["--key", k]);
        }
        a.extend(["--password-env", "PW"]);
        run(&t, &a, &[])
    };
    let before = snapshot(&t.0);
    refused(
        &sign("legacy-bundle.pem", None),
        &["legacy-encrypted PEM key", "openssl pkcs8 -topk8 -in legacy-bundle.pem -out key-pkcs8.pem"],
    );
    refused(
        &sign("s.pem", Some("legacy.key")),
        &["legacy.key", "legacy-encrypted PEM key", "openssl pkcs8 -topk8 -in legacy.key"],
    );
    assert_eq!(snapshot(&t.0), before);
    // The conversion the hint gives works.
    openssl(&[
        "pkcs8",
        "-topk8",
        "-in",
        &t.s("legacy.key"),
        "-passin",
        &pw_in,
        "-out",
        &t.s("key-pkcs8.pem"),
        "-passout",
        &pw_out,
    ]);
    assertion_verified_by_openssl(
        &t,
        &["--cert", "s.pem", "--key", "key-pkcs8.pem", "--password-env", "PW"],
        &[],
        "s.pem",
    );

    // PKCS#7, PEM and DER.
    openssl(&["crl2pkcs7", "-nocrl", "-certfile", &t.s("s.pem"), "-out", &t.s("c.p7b")]);
    openssl(&["pkcs7", "-in", &t.s("c.p7b"), "-outform", "DER", "-out", &t.s("c-der.p7b")]);
    for f in ["c.p7b", "c-der.p7b"] {
        let hint = format!("openssl pkcs7 -print_certs -in {f} -out certs.pem");
        refused(&run(&t, &["show", f], &[]), &[f, "PKCS#7", &hint]);
    }
    // The command the hint gives yields a file keycred reads.
    openssl(&["pkcs7", "-print_certs", "-in", &t.s("c.p7b"), "-out", &t.s("certs.pem")]);
    assert_eq!(ok_json(&run(&t, &["show", "certs.pem", "-o", "json"], &[]))["thumbprint"], fp);

    // DER keys: PKCS#8, PKCS#1 and encrypted PKCS#8 are keys, usable with --key.
    openssl(&["pkcs8", "-topk8", "-nocrypt", "-in", &t.s("s.key"), "-outform", "DER", "-out", &t.s("k8.der")]);
    openssl(&["rsa", "-in", &t.s("s.key"), "-traditional", "-outform", "DER", "-out", &t.s("k1.der")]);
    openssl(&[
        "pkcs8",
        "-topk8",
        "-in",
        &t.s("s.key"),
        "-outform",
        "DER",
        "-out",
        &t.s("k8e.der"),
        "-passout",
        &pw_out,
    ]);
    for k in ["k8.der", "k1.der", "k8e.der"] {
        refused(&run(&t, &["show", k], &[]), &[k, "no certificate in the file, only a private key", "--key"]);
        refused(&sign(k, None), &[k, "only a private key"]);
        assertion_verified_by_openssl(&t, &["--cert", "s.pem", "--key", k, "--password-env", "PW"], &[], "s.pem");
    }
    // A certificate given as the key says so.
    refused(&sign("s.pem", Some("s.pem")), &["s.pem: a certificate, not a private key"]);
}

/// Bug: a PFX from Python's `cryptography` with `NoEncryption()` (key and certificate bags,
/// unencrypted, in one SafeContents) held "no certificate". Fails where the package is absent
/// (`cargo xtask test` installs it).
#[test]
fn pfx_from_python_cryptography_without_encryption_is_read() {
    let t = TempDir::new("cert-pfx-py");
    self_signed(&t, "s");
    let script = r#"
import sys
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12, NoEncryption, BestAvailableEncryption, load_pem_private_key
key = load_pem_private_key(open(sys.argv[1], 'rb').read(), None)
cert = x509.load_pem_x509_certificate(open(sys.argv[2], 'rb').read())
open(sys.argv[3], 'wb').write(pkcs12.serialize_key_and_certificates(b"app", key, cert, None, NoEncryption()))
open(sys.argv[4], 'wb').write(pkcs12.serialize_key_and_certificates(b"app", key, cert, None, BestAvailableEncryption(sys.argv[5].encode())))
"#;
    crate::tools_support::run_python(
        &t.0,
        script,
        &[&t.s("s.key"), &t.s("s.pem"), &t.s("none.pfx"), &t.s("best.pfx"), PW],
    );
    let fp = fingerprint(&t, "s.pem");
    assert_eq!(ok_json(&run(&t, &["show", "none.pfx", "-o", "json"], &[]))["thumbprint"], fp);
    assert_eq!(ok_json(&run(&t, &["show", "best.pfx", "--password-env", "PW", "-o", "json"], &[]))["thumbprint"], fp);
    assertion_verified_by_openssl(&t, &["--cert", "none.pfx"], &[], "s.pem");
    assertion_verified_by_openssl(&t, &["--cert", "best.pfx", "--password-env", "PW"], &[], "s.pem");
}
