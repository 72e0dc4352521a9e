//! Keys on a PKCS#11 token (SoftHSM2), checked with tools keycred does not include: the key
//! made by `new --key pkcs11:...` stays on the token (pkcs11-tool shows it sensitive and never
//! extractable, no file holds it), assertions signed there verify with openssl, openssl accepts
//! the certificate request, and the whole chain works against the emulator (a token with the
//! app's roles, a Graph addKey proved with the token's key). Refusals exit 2 and change nothing.

use crate::common::{keycred_command, openssl};
use crate::rotation_support::{
    credential, emulator, entries_of, write_cred, write_manifest, Out, TempDir, API, APP_ID, OBJECT_ID, TENANT,
};
use crate::softhsm_support::{self as hsm, SoftHsm, PIN};
use crate::token_support::{openssl_der_b64, openssl_verify};
use std::path::Path;

const KEY: &str = "pkcs11:token=T;object=app1";

/// keycred with the token's environment, run in `dir`.
fn keycred(h: &SoftHsm, dir: &TempDir, args: &[&str]) -> Out {
    keycred_env(dir, args, &h.env())
}

fn keycred_env(dir: &TempDir, args: &[&str], env: &[(&str, &str)]) -> Out {
    let out = keycred_command(args, env).current_dir(&dir.0).output().unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `keycred new --name app1 --key KEY` in `dir`: the certificate file's path.
fn new_on_token(h: &SoftHsm, dir: &TempDir) -> String {
    let out = keycred(h, dir, &["new", "--name", "app1", "--key", KEY, "--pin-env", "PIN", "-o", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let j = out.json();
    assert_eq!(j["files"]["cert"], "./app1.cer", "{j}");
    assert!(j["key"].as_str().unwrap().starts_with("pkcs11:token=T;object=app1;id=%"), "{j}");
    dir.s("app1.cer")
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// The `Access:` line of the private key `pkcs11-tool --list-objects` shows.
fn private_key_access(objects: &str) -> String {
    let section = objects.split("Private Key Object").nth(1).unwrap_or_else(|| panic!("no private key: {objects}"));
    section.lines().find(|l| l.trim_start().starts_with("Access:")).unwrap().to_string()
}

#[test]
fn a_key_made_on_the_token_stays_there_and_only_the_certificate_is_written() {
    let Some(h) = hsm::token() else { return };
    let dir = TempDir::new("p11-new");
    let cert = new_on_token(&h, &dir);
    // Only the certificate is on disk, and no file holds a private key.
    let files = files_under(&dir.0);
    assert_eq!(files, vec![dir.path("app1.cer")]);
    for f in &files {
        assert!(!std::fs::read_to_string(f).unwrap().contains("PRIVATE KEY"), "{}", f.display());
    }
    // pkcs11-tool: the private key is sensitive and was never extractable (CKA_NEVER_EXTRACTABLE
    // is only true while CKA_EXTRACTABLE has always been false).
    let objects = h.objects();
    assert!(objects.contains("Private Key Object; RSA"), "{objects}");
    let access = private_key_access(&objects);
    assert!(access.contains("sensitive") && access.contains("never extractable"), "{access}");
    assert!(!access.replace("never extractable", "").contains("extractable"), "{access}");
    // The certificate stored beside the key is the one written, byte for byte (openssl's DER).
    let on_token = dir.path("from-token.der");
    h.pkcs11_tool(&["--read-object", "--type", "cert", "--label", "app1", "-o", on_token.to_str().unwrap()]);
    let written = openssl(&["x509", "-in", &cert, "-outform", "DER"]).stdout;
    assert_eq!(std::fs::read(&on_token).unwrap(), written);
    // `show` reads it from the token: the thumbprint openssl computes for the file.
    let out = keycred(&h, &dir, &["show", KEY, "--pin-env", "PIN", "-o", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let fp = String::from_utf8(openssl(&["x509", "-in", &cert, "-noout", "-fingerprint", "-sha1"]).stdout).unwrap();
    assert_eq!(out.json()["thumbprint"].as_str().unwrap(), fp.trim().split('=').nth(1).unwrap().replace(':', ""));
}

#[test]
fn assertions_signed_on_the_token_verify_with_openssl_for_rs256_and_ps256() {
    let Some(h) = hsm::token() else { return };
    let dir = TempDir::new("p11-assert");
    let cert = new_on_token(&h, &dir);
    for alg in ["RS256", "PS256"] {
        // No --cert: the certificate comes from the token.
        let args =
            ["assertion", "--key", KEY, "--pin-env", "PIN", "--client-id", APP_ID, "--tenant", TENANT, "--alg", alg];
        let out = keycred(&h, &dir, &args);
        assert_eq!(out.code, 0, "{out:?}");
        assert!(openssl_verify(out.stdout.trim(), Path::new(&cert), alg, &dir), "{alg}: {}", out.stdout);
    }
}

#[test]
fn a_certificate_request_for_a_token_key_or_a_key_file_passes_openssl_req_verify() {
    let Some(h) = hsm::token() else { return };
    let dir = TempDir::new("p11-csr");
    let cert = new_on_token(&h, &dir);
    let csr = dir.s("app1.csr");
    let out =
        keycred(&h, &dir, &["csr", "--key", KEY, "--pin-env", "PIN", "--subject", "CN=app1, O=Contoso", "--out", &csr]);
    assert_eq!(out.code, 0, "{out:?}");
    let verified = openssl(&["req", "-verify", "-in", &csr, "-noout", "-subject"]);
    let text = String::from_utf8_lossy(&verified.stdout).to_string() + &String::from_utf8_lossy(&verified.stderr);
    assert!(text.contains("verify OK") && text.contains("CN = app1"), "{text}");
    // The request carries the token key's public half: the certificate's.
    let pubkey = |args: &[&str]| String::from_utf8(openssl(args).stdout).unwrap();
    assert_eq!(
        pubkey(&["req", "-in", &csr, "-noout", "-pubkey"]),
        pubkey(&["x509", "-in", &cert, "-noout", "-pubkey"])
    );
    let shown = keycred(&h, &dir, &["show", &csr, "-o", "json"]).json();
    assert_eq!((shown["type"].as_str(), shown["signatureValid"].as_bool()), (Some("certificateRequest"), Some(true)));
    assert_eq!((shown["subject"].as_str(), shown["keySize"].as_u64()), (Some("CN=app1, O=Contoso"), Some(2048)));
    // A key file works the same way, and an existing request is not overwritten.
    let cred = credential("file key", 30);
    write_cred(&dir, "file", &cred);
    let file_csr = dir.s("file.csr");
    let out = keycred(&h, &dir, &["csr", "--key", &dir.s("file.key"), "--subject", "CN=file", "--out", &file_csr]);
    assert_eq!(out.code, 0, "{out:?}");
    openssl(&["req", "-verify", "-in", &file_csr, "-noout"]);
    let before = std::fs::read(&file_csr).unwrap();
    let out = keycred(&h, &dir, &["csr", "--key", &dir.s("file.key"), "--subject", "CN=other", "--out", &file_csr]);
    assert_eq!(out.code, 2, "{out:?}");
    assert_eq!(std::fs::read(&file_csr).unwrap(), before);
}

#[test]
fn a_token_key_registered_in_a_manifest_gets_a_token_with_the_apps_roles() {
    let Some(h) = hsm::token() else { return };
    let dir = TempDir::new("p11-chain");
    let cert = new_on_token(&h, &dir);
    let manifest = dir.path("app.json");
    write_manifest(&manifest, OBJECT_ID, APP_ID, &[]);
    let m = manifest.display().to_string();
    let out = keycred(&h, &dir, &["manifest", "add", &m, "--cert", &cert]);
    assert_eq!(out.code, 0, "{out:?}");
    let emu = emulator(&[&manifest], &[(API, &["Data.Read", "Data.Write"])], false);
    let base = emu.info().base_url();
    let common = ["--authority", base, "--tenant", TENANT, "--client-id", APP_ID, "--scope", API];
    let mut args = vec!["token", "--key", KEY, "--pin-env", "PIN", "--expect-role", "Data.Read", "-o", "json"];
    args.extend(common);
    let out = keycred(&h, &dir, &args);
    assert_eq!(out.code, 0, "{out:?}");
    let mut args = vec!["check", "--cert", &cert, "--key", KEY, "--pin-env", "PIN", "--manifest", &m];
    args.extend(common);
    args.extend(["--expect-role", "Data.Write", "--alg", "PS256", "-o", "json"]);
    let out = keycred(&h, &dir, &args);
    assert_eq!(out.code, 0, "{out:?}");
    let steps = out.json();
    assert!(steps.as_array().unwrap().iter().all(|s| s["outcome"] == "pass"), "{steps}");
}

#[test]
fn graph_add_and_remove_are_proved_with_the_key_on_the_token() {
    let Some(h) = hsm::token() else { return };
    let dir = TempDir::new("p11-graph");
    let cert = new_on_token(&h, &dir);
    let manifest = dir.path("app.json");
    write_manifest(&manifest, OBJECT_ID, APP_ID, &[]);
    let out = keycred(&h, &dir, &["manifest", "add", &manifest.display().to_string(), "--cert", &cert]);
    assert_eq!(out.code, 0, "{out:?}");
    let emu = emulator(&[&manifest], &[], false);
    let base = emu.info().base_url();
    let graph = |sub: &str, extra: &[&str]| {
        let mut args = vec!["graph", sub, "--app-id", APP_ID, "--tenant", TENANT, "--authority", base];
        args.extend(["--graph-url", base, "--key", KEY, "--pin-env", "PIN", "-o", "json"]);
        args.extend_from_slice(extra);
        keycred(&h, &dir, &args)
    };
    let next = credential("next certificate", 365);
    write_cred(&dir, "next", &next);
    let out = graph("add", &["--policy-unknown-ok", "--new-cert", &dir.s("next.cer")]);
    assert_eq!(out.code, 0, "{out:?}");
    let j = out.json();
    assert_eq!(j["method"], "addKey", "{j}");
    let entries = entries_of(&manifest);
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[1]["key"], next.cert.value_b64());
    let key_id = j["keyCredential"]["keyId"].as_str().unwrap().to_string();
    let out = graph("remove", &["--key-id", &key_id]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["method"], "removeKey");
    assert_eq!(entries_of(&manifest).len(), 1);
}

/// Runs a refused command: exit 2, the message says `says`, and neither `dir` nor the token
/// changed.
fn refused(h: &SoftHsm, dir: &TempDir, args: &[&str], env: &[(&str, &str)], says: &str) -> Out {
    let (files, objects) = (files_under(&dir.0), h.objects());
    let out = keycred_env(dir, args, env);
    assert_eq!(out.code, 2, "{args:?}: {out:?}");
    assert!(out.stderr.contains(says), "{args:?}: expected '{says}' in {}", out.stderr);
    assert!(!out.stderr.contains("9999") && !out.stderr.contains(PIN), "a PIN in the message: {}", out.stderr);
    assert_eq!(files_under(&dir.0), files, "{args:?} wrote files");
    assert_eq!(h.objects(), objects, "{args:?} changed the token");
    out
}

#[test]
fn a_wrong_pin_a_missing_module_token_or_object_and_a_key_that_is_not_rsa_are_refused() {
    let Some(h) = hsm::token() else { return };
    let dir = TempDir::new("p11-refusals");
    new_on_token(&h, &dir);
    let env = h.env();
    let with = |k: &'static str, v: &'static str| -> Vec<(&str, &str)> {
        env.iter().copied().filter(|(n, _)| *n != k).chain([(k, v)]).collect()
    };
    let new2 = ["new", "--name", "app2", "--key", "pkcs11:token=T;object=app2", "--pin-env", "PIN"];
    let out = refused(&h, &dir, &new2, &with("PIN", "9999"), "refused the PIN (CKR_PIN_INCORRECT)");
    assert!(out.stderr.contains("hint: check the PIN"), "{}", out.stderr);
    refused(
        &h,
        &dir,
        &new2,
        &with("KEYCRED_PKCS11_MODULE", "/nowhere/libnone.so"),
        "/nowhere/libnone.so: no such file",
    );
    let no_module: Vec<(&str, &str)> = env.iter().copied().filter(|(n, _)| *n != "KEYCRED_PKCS11_MODULE").collect();
    let out = refused(&h, &dir, &new2, &no_module, "no PKCS#11 module named");
    assert!(out.stderr.contains("--pkcs11-module"), "{}", out.stderr);
    let out = refused(&h, &dir, &new2[..5], &env, "needs its user PIN");
    assert!(out.stderr.contains("--pin-env"), "{}", out.stderr);
    // The label is taken: the existing key is kept.
    let again = ["new", "--name", "again", "--key", KEY, "--pin-env", "PIN"];
    refused(&h, &dir, &again, &env, "already holds an object with this label");
    let sign =
        |key: &'static str| ["assertion", "--key", key, "--pin-env", "PIN", "--client-id", APP_ID, "--tenant", TENANT];
    refused(&h, &dir, &sign("pkcs11:token=T;object=nope"), &env, "no such private key on token 'T'");
    refused(&h, &dir, &sign("pkcs11:token=U;object=app1"), &env, "no such token");
    refused(&h, &dir, &sign("pkcs11:token=T;object=app1?pin-value=1234"), &env, "pin-value");
    // An EC key on the token: Entra certificate credentials need RSA.
    h.pkcs11_tool(&[
        "--login",
        "--pin",
        PIN,
        "--keypairgen",
        "--key-type",
        "EC:prime256v1",
        "--label",
        "ec1",
        "--id",
        "0e",
    ]);
    refused(&h, &dir, &sign("pkcs11:token=T;object=ec1"), &env, "not RSA");
}

#[test]
fn a_ca_issued_certificate_for_a_token_key_is_added_with_its_chain_leaf_first() {
    let Some(h) = hsm::token() else { return };
    let dir = TempDir::new("p11-ca");
    new_on_token(&h, &dir);
    // A CA (openssl) issues a certificate for the token key's request.
    let (ca_key, ca_pem, csr, leaf) = (dir.s("ca.key"), dir.s("ca.pem"), dir.s("app1.csr"), dir.s("leaf.pem"));
    crate::common::openssl_self_signed_days(Path::new(&ca_key), Path::new(&ca_pem), "/CN=Contoso Issuing CA", 30);
    let out =
        keycred(&h, &dir, &["csr", "--key", KEY, "--pin-env", "PIN", "--subject", "CN=app1 issued", "--out", &csr]);
    assert_eq!(out.code, 0, "{out:?}");
    openssl(&[
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        &ca_pem,
        "-CAkey",
        &ca_key,
        "-CAcreateserial",
        "-days",
        "30",
        "-out",
        &leaf,
    ]);
    let read = |p: &str| std::fs::read_to_string(p).unwrap();
    std::fs::write(dir.path("chain.pem"), read(&leaf) + &read(&ca_pem)).unwrap();
    std::fs::write(dir.path("reversed.pem"), read(&ca_pem) + &read(&leaf)).unwrap();
    let manifest = dir.path("app.json");
    write_manifest(&manifest, OBJECT_ID, APP_ID, &[]);
    let m = manifest.display().to_string();
    let add = |file: &str| {
        let args = ["manifest", "add", &m, "--cert", file, "--key", KEY, "--pin-env", "PIN", "-o", "json"];
        keycred(&h, &dir, &args)
    };
    let before = std::fs::read(&manifest).unwrap();
    let out = add(&dir.s("reversed.pem"));
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("not the first"), "{}", out.stderr);
    assert_eq!(std::fs::read(&manifest).unwrap(), before);
    // A file holding only the CA's certificate has none for this key.
    let out = add(&ca_pem);
    assert_eq!(out.code, 2, "{out:?}");
    let out = add(&dir.s("chain.pem"));
    assert_eq!(out.code, 0, "{out:?}");
    let entries = entries_of(&manifest);
    let leaf_b64 = openssl_der_b64(Path::new(&leaf));
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["key"].as_str().unwrap(), leaf_b64);
    // The token key signs in with the CA-issued certificate (its chain in x5c).
    let emu = emulator(&[&manifest], &[(API, &["Data.Read"])], false);
    let base = emu.info().base_url();
    let args = ["token", "--authority", base, "--tenant", TENANT, "--client-id", APP_ID, "--scope", API];
    let chain = dir.s("chain.pem");
    let mut args = args.to_vec();
    args.extend(["--cert", &chain, "--key", KEY, "--pin-env", "PIN", "--x5c", "--expect-role", "Data.Read"]);
    let out = keycred(&h, &dir, &args);
    assert_eq!(out.code, 0, "{out:?}");
}
