//! `keycred rotate` end to end: a manifest holding an expired, a valid and a null-body entry,
//! rotated with verification against the in-process emulator. Kept entries keep their bytes; a
//! failed verification leaves the manifest byte-identical; bad input changes nothing.

use crate::rotation_support as support;

use serde_json::Value;
use std::path::PathBuf;
use support::*;

struct Setup {
    dir: TempDir,
    manifest: PathBuf,
    /// Lines of the expired, valid and null-body entries as written.
    lines: Vec<String>,
    key_ids: Vec<String>,
    valid: keycred::cert::LoadedCredential,
    emu: keycred::emulator::BlockingEmulator,
}

fn setup() -> Setup {
    let dir = TempDir::new("rot-test");
    std::fs::create_dir(dir.path("old")).unwrap();
    std::fs::create_dir(dir.path("new")).unwrap();
    // The expired certificate, made by keycred itself.
    let out = cli(
        &[
            "new",
            "--name",
            "expired",
            "--out-dir",
            &dir.s("old"),
            "--not-before",
            "2020-01-01",
            "--not-after",
            "2021-01-01",
            "-o",
            "json",
        ],
        &[],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let pem = std::fs::read(dir.path("old/expired.cer")).unwrap();
    let expired = keycred::cert::load_file(&dir.path("old/expired.cer"), None).unwrap().certs.remove(0);
    assert!(!pem.is_empty());
    assert_eq!(keycred::dates::format(expired.not_after()), "2021-01-01T00:00:00Z");
    let valid = credential("current", 365);
    write_cred(&dir, "old/current", &valid);
    let portal = credential("portal entry", 365);
    let entries = vec![entry(&expired), entry(&valid.cert), null_body_entry(&portal.cert)];
    let key_ids = entries.iter().map(|e| e["keyId"].as_str().unwrap().to_string()).collect();
    let manifest = dir.path("app.json");
    let lines = write_manifest(&manifest, OBJECT_ID, APP_ID, &entries);
    let emu = emulator(&[&manifest], &[(API, &["Data.Read"])], false);
    Setup { dir, manifest, lines, key_ids, valid, emu }
}

impl Setup {
    fn rotate(&self, extra: &[&str]) -> Out {
        let m = self.manifest.display().to_string();
        let out_dir = self.dir.s("new");
        let mut args = vec!["rotate", "--manifest", &m, "--name", "next", "--out-dir", &out_dir, "-o", "json"];
        args.extend_from_slice(extra);
        cli(&args, &[])
    }
    fn verify_args(&self) -> Vec<String> {
        [
            "--verify",
            "--client-id",
            APP_ID,
            "--tenant",
            TENANT,
            "--authority",
            self.emu.info().base_url(),
            "--scope",
            API,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }
    fn text(&self) -> String {
        std::fs::read_to_string(&self.manifest).unwrap()
    }
    fn new_files(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.dir.path("new"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        v.sort();
        v
    }
}

fn s(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// The thumbprint of the PEM certificate `path`, as openssl computes it (upper-case hex).
fn openssl_sha1(path: &std::path::Path) -> String {
    openssl_fingerprint_hex(&path.display().to_string(), &[], "sha1")
}

#[test]
fn remove_expired_with_verify_keeps_valid_and_null_body_entries() {
    let st = setup();
    let v = st.verify_args();
    let mut args = vec!["--remove-expired"];
    args.extend(s(&v));
    let out = st.rotate(&args);
    assert_eq!(out.code, 0, "{out:?}");
    let j = out.json();
    let new_thumb = openssl_sha1(&st.dir.path("new/next.cer"));
    assert_eq!(j["thumbprint"], new_thumb);
    assert_eq!(j["verifiedWith"], format!("{}/{TENANT}/oauth2/v2.0/token", st.emu.info().base_url()));
    let removed = j["removed"].as_array().unwrap();
    assert_eq!(removed.len(), 1, "{j}");
    assert_eq!(removed[0]["keyId"], st.key_ids[0]);
    assert_eq!(j["files"]["bundle"], st.dir.s("new/next.pem"));

    let text = st.text();
    assert!(!text.contains(&st.lines[0]), "expired entry still there:\n{text}");
    assert!(text.contains(&st.lines[1]), "valid entry changed:\n{text}");
    assert!(text.contains(&st.lines[2]), "null-body entry changed:\n{text}");
    let entries = entries_of(&st.manifest);
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[2]["keyId"], j["added"]["keyId"]);
    assert_eq!(entries[1]["key"], Value::Null);
    // The new certificate gets a token from the emulator; so does the old valid one.
    let new_cred = keycred::cert::load_credential(&st.dir.path("new/next.pem"), None, None).unwrap();
    assert_eq!(token_with(st.emu.info().base_url(), APP_ID, &new_cred, API).0, 200);
    assert_eq!(token_with(st.emu.info().base_url(), APP_ID, &st.valid, API).0, 200);
}

#[test]
fn remove_named_entry() {
    let st = setup();
    let v = st.verify_args();
    let mut args = vec!["--remove", &st.key_ids[1]];
    args.extend(s(&v));
    let out = st.rotate(&args);
    assert_eq!(out.code, 0, "{out:?}");
    let j = out.json();
    assert_eq!(j["removed"].as_array().unwrap().len(), 1);
    assert_eq!(j["removed"][0]["keyId"], st.key_ids[1]);
    let text = st.text();
    assert!(text.contains(&st.lines[0]) && text.contains(&st.lines[2]), "{text}");
    assert!(!text.contains(&st.lines[1]), "{text}");
    // The removed certificate is now refused.
    let (status, body) = token_with(st.emu.info().base_url(), APP_ID, &st.valid, API);
    assert_eq!(status, 401);
    assert_eq!(body["error_codes"][0], 700027);
}

#[test]
fn keep_old_removes_nothing() {
    let st = setup();
    let before = st.text();
    let out = st.rotate(&["--keep-old"]);
    assert_eq!(out.code, 0, "{out:?}");
    let j = out.json();
    assert_eq!(j["removed"], serde_json::json!([]));
    assert_eq!(j["verifiedWith"], Value::Null);
    let after = st.text();
    for l in &st.lines {
        assert!(after.contains(l.as_str()));
    }
    assert_eq!(entries_of(&st.manifest).len(), 4);
    assert!(after.len() > before.len());
    // Without any removal option, nothing is removed either.
    let out = cli(
        &[
            "rotate",
            "--manifest",
            &st.manifest.display().to_string(),
            "--name",
            "third",
            "--out-dir",
            &st.dir.s("new"),
            "-o",
            "json",
        ],
        &[],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(entries_of(&st.manifest).len(), 5);
}

#[test]
fn failing_verify_leaves_manifest_byte_identical() {
    let st = setup();
    let before = std::fs::read(&st.manifest).unwrap();
    let base = st.emu.info().base_url().to_string();
    // (client, target option, target): a client the app is not, an unknown scope, an unknown v1 resource.
    let attempts = [
        (ADMIN_APP_ID, "--scope", API),
        (APP_ID, "--scope", "api://no-such-resource"),
        (APP_ID, "--resource", "api://nothing"),
    ];
    for (i, (client, target_opt, target)) in attempts.into_iter().enumerate() {
        let args = [
            "--remove-expired",
            "--verify",
            "--client-id",
            client,
            "--tenant",
            TENANT,
            "--authority",
            &base,
            target_opt,
            target,
        ];
        let mut a = args.to_vec();
        let name = format!("attempt{i}");
        a.extend(["--name", &name]);
        let m = st.manifest.display().to_string();
        let out_dir = st.dir.s("new");
        let mut full = vec!["rotate", "--manifest", &m, "--out-dir", &out_dir];
        full.extend(a);
        let out = cli(&full, &[]);
        assert_eq!(out.code, 3, "{out:?}");
        assert!(out.stderr.contains("verification with the new certificate failed"), "{}", out.stderr);
        assert!(out.stderr.contains("nothing was removed"), "{}", out.stderr);
        assert_eq!(std::fs::read(&st.manifest).unwrap(), before, "manifest changed by {args:?}");
        // Exit 3 means nothing changed: the new key and certificate are gone too.
        assert_eq!(st.new_files(), Vec::<String>::new(), "files left by {args:?}");
        assert!(out.stderr.contains("the new files were removed"), "{}", out.stderr);
    }
}

#[test]
fn bad_input_generates_and_writes_nothing() {
    let st = setup();
    let before = std::fs::read(&st.manifest).unwrap();
    // A keyId that is not in the manifest.
    let missing = uuid::Uuid::new_v4().to_string();
    let out = st.rotate(&["--remove", &missing]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains(&missing), "{}", out.stderr);
    assert_eq!(std::fs::read(&st.manifest).unwrap(), before);
    assert_eq!(st.new_files(), Vec::<String>::new());
    // A keyId that is not a UUID.
    let out = st.rotate(&["--remove", "not-a-key-id"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert_eq!(st.new_files(), Vec::<String>::new());
    // --verify without a target.
    let out =
        st.rotate(&["--verify", "--client-id", APP_ID, "--tenant", TENANT, "--authority", st.emu.info().base_url()]);
    assert_eq!(out.code, 2, "{out:?}");
    assert_eq!(st.new_files(), Vec::<String>::new());
    assert_eq!(std::fs::read(&st.manifest).unwrap(), before);
    // A malformed manifest.
    let bad = st.dir.path("bad.json");
    std::fs::write(&bad, "{\"keyCredentials\": [ {\"keyId\": ").unwrap();
    let out = cli(
        &[
            "rotate",
            "--manifest",
            &bad.display().to_string(),
            "--name",
            "x",
            "--out-dir",
            &st.dir.s("new"),
            "--keep-old",
        ],
        &[],
    );
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("bad.json"), "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(&bad).unwrap(), "{\"keyCredentials\": [ {\"keyId\": ");
    assert_eq!(st.new_files(), Vec::<String>::new());
}

#[test]
fn removing_every_old_entry_keeps_the_new_one() {
    // Removing the only other valid entry is fine: the new one stays valid.
    let st = setup();
    let v = st.verify_args();
    let mut args = vec!["--remove", &st.key_ids[1], "--remove", &st.key_ids[0]];
    args.extend(s(&v));
    let out = st.rotate(&args);
    assert_eq!(out.code, 0, "{out:?}");
    let entries = entries_of(&st.manifest);
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries[0]["keyId"], st.key_ids[2]);
    assert_eq!(entries[1]["keyId"], out.json()["added"]["keyId"]);
}

#[test]
fn lock_out_is_refused_before_the_manifest_is_touched() {
    // A new certificate not valid yet cannot replace the valid ones (the null-body entry counts:
    // it stands for a certificate registered in the tenant).
    let st = setup();
    let before = std::fs::read(&st.manifest).unwrap();
    let args = [
        "--not-before",
        "2048-01-01",
        "--not-after",
        "2049-01-01",
        "--remove",
        &st.key_ids[1],
        "--remove",
        &st.key_ids[2],
    ];
    let out = st.rotate(&args);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("last currently valid certificate"), "{}", out.stderr);
    assert_eq!(std::fs::read(&st.manifest).unwrap(), before);
    assert_eq!(st.new_files(), Vec::<String>::new(), "a refused rotation left files");
    // --force only replaces files: it does not turn the guard off.
    let out = st.rotate(&[&args[..], &["--force"]].concat());
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("last currently valid certificate"), "{}", out.stderr);
    assert_eq!(std::fs::read(&st.manifest).unwrap(), before);
    // --allow-lockout allows it.
    let out = st.rotate(&[&args[..], &["--allow-lockout"]].concat());
    assert_eq!(out.code, 0, "{out:?}");
    let entries = entries_of(&st.manifest);
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["keyId"], st.key_ids[0]);
    assert_eq!(entries[1]["startDateTime"], "2048-01-01T00:00:00Z");
}
