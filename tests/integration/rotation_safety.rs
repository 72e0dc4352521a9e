//! `keycred rotate` refusals change nothing: `--force` only replaces files and never turns the
//! lock-out guard off (`--allow-lockout` does), a refused or failed rotation leaves no new key or
//! certificate file behind (and puts back files `--force` replaced), messages name rotate's own
//! options, and a keyId given twice is removed and reported once.

use crate::rotation_support as support;

use std::path::PathBuf;
use support::*;

/// A manifest holding one currently valid certificate, and an empty `new` directory.
struct One {
    dir: TempDir,
    manifest: PathBuf,
    key_id: String,
}

fn one_valid() -> One {
    let dir = TempDir::new("rot-safety");
    std::fs::create_dir(dir.path("new")).unwrap();
    let cur = credential("current", 365);
    let e = entry(&cur.cert);
    let key_id = e["keyId"].as_str().unwrap().to_string();
    let manifest = dir.path("m.json");
    write_manifest(&manifest, OBJECT_ID, APP_ID, &[e]);
    One { dir, manifest, key_id }
}

impl One {
    fn rotate(&self, name: &str, extra: &[&str]) -> Out {
        let m = self.manifest.display().to_string();
        let out_dir = self.dir.s("new");
        let mut args = vec!["rotate", "--manifest", &m, "--name", name, "--out-dir", &out_dir];
        args.extend_from_slice(extra);
        cli(&args, &[])
    }
    fn new_dir(&self) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
        snapshot(&self.dir.path("new"))
    }
}

#[test]
fn force_replaces_files_only_and_allow_lockout_allows_a_lockout() {
    let st = one_valid();
    let before = std::fs::read(&st.manifest).unwrap();
    // Files of an earlier run that --force may replace.
    for ext in ["key", "cer", "pem"] {
        std::fs::write(st.dir.path(&format!("new/fut.{ext}")), format!("earlier {ext}")).unwrap();
    }
    let files_before = st.new_dir();
    let future = ["--not-before", "2048-06-01", "--not-after", "2049-06-01", "--remove", &st.key_id];
    let out = st.rotate("fut", &[&future[..], &["--force"]].concat());
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("last currently valid certificate"), "{}", out.stderr);
    assert!(out.stderr.contains("only becomes valid on 2048-06-01T00:00:00Z"), "{}", out.stderr);
    // The hint speaks of rotate's own flags (keeping the old entries is leaving out the
    // removals), not of `manifest add` or a --force that would not help.
    assert!(out.stderr.contains("--allow-lockout") && out.stderr.contains("--remove-expired"), "{}", out.stderr);
    assert!(!out.stderr.contains("manifest add") && !out.stderr.contains("--force"), "{}", out.stderr);
    assert_eq!(std::fs::read(&st.manifest).unwrap(), before);
    assert_eq!(st.new_dir(), files_before, "a refused rotation touched the files");

    let out = st.rotate("fut", &[&future[..], &["--force", "--allow-lockout", "-o", "json"]].concat());
    assert_eq!(out.code, 0, "{out:?}");
    let j = out.json();
    assert_eq!(j["removed"][0]["keyId"], st.key_id.as_str());
    let entries = entries_of(&st.manifest);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["startDateTime"], "2048-06-01T00:00:00Z");
    // The replaced certificate is the new one, as openssl reads it.
    let cer = st.dir.s("new/fut.cer");
    assert_eq!(j["thumbprint"], openssl_fingerprint_hex(&cer, &[], "sha1"));

    let help = cli(&["rotate", "--help"], &[]);
    assert_eq!(help.code, 0);
    assert!(help.stdout.contains("--allow-lockout"), "{}", help.stdout);
    assert!(help.stdout.contains("Replace existing files"), "{}", help.stdout);
}

#[test]
fn an_expired_new_certificate_is_refused_naming_its_dates_and_writes_nothing() {
    let st = one_valid();
    let before = std::fs::read(&st.manifest).unwrap();
    let out = st.rotate("pastc", &["--not-before", "2020-06-01", "--not-after", "2021-06-01", "--keep-old"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("new certificate"), "{}", out.stderr);
    assert!(out.stderr.contains("2021-06-01T00:00:00Z"), "{}", out.stderr);
    assert!(out.stderr.contains("--not-after"), "{}", out.stderr);
    // rotate has no --cert, and `keycred new` is not what the user should run.
    assert!(!out.stderr.contains("--cert") && !out.stderr.contains("keycred new"), "{}", out.stderr);
    assert_eq!(std::fs::read(&st.manifest).unwrap(), before);
    assert!(st.new_dir().is_empty(), "{:?}", st.new_dir().keys());
}

#[test]
fn a_failed_verification_puts_back_the_files_force_replaced() {
    let st = one_valid();
    let emu = emulator(&[&st.manifest], &[(API, &["Data.Read"])], false);
    let before = std::fs::read(&st.manifest).unwrap();
    for ext in ["key", "cer", "pem"] {
        std::fs::write(st.dir.path(&format!("new/next.{ext}")), format!("earlier {ext}")).unwrap();
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(st.dir.path("new/next.cer"), std::fs::Permissions::from_mode(0o640)).unwrap();
    }
    let files_before = st.new_dir();
    // The admin app is not this manifest's app: the token request with the new certificate fails.
    let out = st.rotate(
        "next",
        &[
            "--force",
            "--remove",
            &st.key_id,
            "--verify",
            "--client-id",
            ADMIN_APP_ID,
            "--tenant",
            TENANT,
            "--authority",
            emu.info().base_url(),
            "--scope",
            API,
        ],
    );
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("the replaced files were put back"), "{}", out.stderr);
    assert_eq!(std::fs::read(&st.manifest).unwrap(), before);
    assert_eq!(st.new_dir(), files_before, "files not restored (or temporaries left)");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(st.dir.path("new/next.cer")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
    }
}

#[test]
fn a_key_id_given_twice_is_removed_and_reported_once() {
    let dir = TempDir::new("rot-safety");
    let a = credential("a", 365);
    let b = credential("b", 365);
    let entries = [entry(&a.cert), entry(&b.cert)];
    let manifest = dir.path("m.json");
    write_manifest(&manifest, OBJECT_ID, APP_ID, &entries);
    let k = entries[0]["keyId"].as_str().unwrap();
    let m = manifest.display().to_string();
    let out = cli(
        &[
            "rotate",
            "--manifest",
            &m,
            "--name",
            "n",
            "--out-dir",
            &dir.s(""),
            "--remove",
            k,
            "--remove",
            k,
            "-o",
            "json",
        ],
        &[],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let removed = out.json()["removed"].as_array().unwrap().clone();
    assert_eq!(removed.len(), 1, "{removed:?}");
    assert_eq!(removed[0]["keyId"], k);
    let left: Vec<String> = entries_of(&manifest).iter().map(|e| e["keyId"].as_str().unwrap().to_string()).collect();
    assert_eq!(left.len(), 2);
    assert_eq!(left[0], entries[1]["keyId"].as_str().unwrap());
    // Text output lists it once too.
    let k2 = entries[1]["keyId"].as_str().unwrap();
    let out = cli(
        &["rotate", "--manifest", &m, "--name", "n2", "--out-dir", &dir.s(""), "--remove", k2, "--remove", k2],
        &[],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout.matches(k2).count(), 1, "{}", out.stdout);
    // A keyId that is not a UUID names rotate's option.
    let out = cli(&["rotate", "--manifest", &m, "--name", "n3", "--out-dir", &dir.s(""), "--remove", "nope"], &[]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("--remove 'nope'"), "{}", out.stderr);
}
