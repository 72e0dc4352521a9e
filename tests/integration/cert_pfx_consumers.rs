//! The PFX files of `keycred new --pfx` and `--pfx-legacy` opened by the consumers users load
//! them into: openssl pkcs12, Java keytool, Python cryptography, NSS pk12util and (the legacy
//! one) Mono's `X509Certificate2`. Each must find the key and the certificate under one
//! friendly name, tied by the same `localKeyID` (the SHA-1 thumbprint).

use crate::common::{keycred_command, TempDir, OPENSSL};
use crate::tools_support::{self, keytool, require};
use serde_json::Value;
use std::process::Command;

const PW: &str = "correct horse battery";

fn new_pfx(t: &TempDir, name: &str, flag: &str) -> String {
    let o = keycred_command(&["new", "--name", name, flag, "--password-env", "PW", "-o", "json"], &[("PW", PW)])
        .current_dir(&t.0)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["files"]["pfx"], format!("./{name}.pfx"));
    v["thumbprint"].as_str().unwrap().to_string()
}

/// `openssl pkcs12 -info`: the algorithms (stderr) and the bag attributes (stdout).
fn openssl_info(t: &TempDir, file: &str) -> (String, String) {
    let o = Command::new(OPENSSL)
        .args(["pkcs12", "-in", file, "-passin", "env:PW", "-info", "-nodes"])
        .env("PW", PW)
        .current_dir(&t.0)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (String::from_utf8_lossy(&o.stderr).into_owned(), String::from_utf8_lossy(&o.stdout).into_owned())
}

/// `AB CD ...` as openssl prints a localKeyID, from a hex thumbprint.
fn spaced(hex: &str) -> String {
    hex.as_bytes().chunks(2).map(|c| std::str::from_utf8(c).unwrap()).collect::<Vec<_>>().join(" ")
}

fn check_bags(stdout: &str, name: &str, thumbprint: &str) {
    assert_eq!(stdout.matches("Bag Attributes").count(), 2, "{stdout}");
    assert_eq!(stdout.matches(&format!("friendlyName: {name}\n")).count(), 2, "one friendly name: {stdout}");
    assert_eq!(stdout.matches(&format!("localKeyID: {} \n", spaced(thumbprint))).count(), 2, "{stdout}");
    assert!(stdout.contains("BEGIN PRIVATE KEY") && stdout.contains("BEGIN CERTIFICATE"), "{stdout}");
}

const PYTHON_LOAD: &str = r#"
import sys
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import pkcs12
p = pkcs12.load_pkcs12(open(sys.argv[1], 'rb').read(), sys.argv[2].encode())
assert p.key is not None and p.cert is not None and not p.additional_certs
assert p.key.public_key().public_numbers() == p.cert.certificate.public_key().public_numbers()
print(p.cert.friendly_name.decode())
print(p.cert.certificate.fingerprint(hashes.SHA1()).hex().upper())
"#;

/// keytool sees one private-key entry named NAME whose certificate has THUMBPRINT.
fn check_keytool(t: &TempDir, file: &str, name: &str, thumbprint: &str) {
    let o = tools_support::run(
        &t.0,
        &keytool(),
        &["-list", "-v", "-keystore", file, "-storetype", "PKCS12", "-storepass", PW],
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("Your keystore contains 1 entry"), "{out}");
    assert!(out.contains(&format!("Alias name: {name}\n")), "{out}");
    assert!(out.contains("Entry type: PrivateKeyEntry"), "{out}");
    assert!(out.contains(&format!("SHA1: {}", spaced(thumbprint).replace(' ', ":"))), "{out}");
}

/// NSS imports the file: one certificate under NAME, with its key.
fn check_nss(t: &TempDir, file: &str, name: &str) {
    let (pk12util, certutil) = (require("pk12util", "libnss3-tools"), require("certutil", "libnss3-tools"));
    let db = format!("sql:{}", t.s(&format!("nss-{name}")));
    std::fs::create_dir(t.path(&format!("nss-{name}"))).unwrap();
    tools_support::run(&t.0, &certutil, &["-N", "-d", &db, "--empty-password"]);
    tools_support::run(&t.0, &pk12util, &["-i", file, "-d", &db, "-W", PW]);
    let certs = tools_support::run(&t.0, &certutil, &["-L", "-d", &db]);
    let certs = String::from_utf8_lossy(&certs.stdout);
    assert!(certs.lines().any(|l| l.starts_with(name) && l.trim_end().ends_with("u,u,u")), "{certs}");
    let keys = tools_support::run(&t.0, &certutil, &["-K", "-d", &db]);
    let keys = String::from_utf8_lossy(&keys.stdout);
    assert!(keys.contains(" rsa ") && keys.trim_end().ends_with(name), "{keys}");
}

#[test]
fn modern_pfx_opens_in_openssl_keytool_python_and_nss() {
    let t = TempDir::new("pfx-modern");
    let tp = new_pfx(&t, "app", "--pfx");
    let (algs, bags) = openssl_info(&t, "app.pfx");
    assert!(algs.contains("MAC: sha256"), "{algs}");
    assert_eq!(algs.matches("PBES2, PBKDF2, AES-256-CBC").count(), 2, "{algs}");
    check_bags(&bags, "app", &tp);
    check_keytool(&t, "app.pfx", "app", &tp);
    let py = tools_support::run_python(&t.0, PYTHON_LOAD, &["app.pfx", PW]);
    assert_eq!(py, format!("app\n{tp}\n"));
    check_nss(&t, "app.pfx", "app");
}

const MONO_LOAD: &str = r#"
using System;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
class Load {
  static int Main(string[] a) {
    try {
      var c = new X509Certificate2(a[0], Environment.GetEnvironmentVariable("PW"));
      var data = new byte[] { 1, 2, 3 };
      var sig = ((RSA)c.PrivateKey).SignData(data, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
      var ok = ((RSA)c.PublicKey.Key).VerifyData(data, sig, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
      Console.WriteLine(c.Thumbprint + " " + c.HasPrivateKey + " " + ok);
      return 0;
    } catch (CryptographicException e) {
      Console.WriteLine("refused: " + e.Message);
      return 1;
    }
  }
}
"#;

#[test]
fn legacy_pfx_opens_in_mono_where_the_modern_one_does_not() {
    let t = TempDir::new("pfx-legacy");
    let tp = new_pfx(&t, "old", "--pfx-legacy");
    let (algs, bags) = openssl_info(&t, "old.pfx");
    assert!(algs.contains("MAC: sha1"), "{algs}");
    assert_eq!(algs.matches("pbeWithSHA1And3-KeyTripleDES-CBC").count(), 2, "{algs}");
    check_bags(&bags, "old", &tp);
    check_keytool(&t, "old.pfx", "old", &tp);
    assert_eq!(tools_support::run_python(&t.0, PYTHON_LOAD, &["old.pfx", PW]), format!("old\n{tp}\n"));
    check_nss(&t, "old.pfx", "old");

    let (mcs, mono) = (require("mcs", "mono-mcs"), require("mono", "mono-runtime"));
    std::fs::write(t.path("load.cs"), MONO_LOAD).unwrap();
    tools_support::run(&t.0, &mcs, &["-out:load.exe", "load.cs"]);
    let mono_load =
        |file: &str| Command::new(&mono).args(["load.exe", file]).env("PW", PW).current_dir(&t.0).output().unwrap();
    let o = mono_load("old.pfx");
    assert!(o.status.success(), "{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout), format!("{tp} True True\n"));
    // The reason the legacy form exists: Mono cannot read AES-256/PBKDF2 files.
    new_pfx(&t, "new", "--pfx");
    let o = mono_load("new.pfx");
    assert!(!o.status.success(), "Mono now reads modern PFX files: {}", String::from_utf8_lossy(&o.stdout));

    // keycred reads its own legacy file back.
    let o = keycred_command(&["show", "old.pfx", "--password-env", "PW", "-o", "json"], &[("PW", PW)])
        .current_dir(&t.0)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(serde_json::from_slice::<Value>(&o.stdout).unwrap()["thumbprint"], tp);
}
