//! Issue 14 ("Hardening II"), the file and command-line points, each run on the real binary:
//! PFX iteration caps (3), owner and group kept (5), FIFOs refused (6), input size caps (7), a
//! no-follow lock file (8), unsound RSA keys (11), all-or-nothing `new` (12), escaped output
//! (13), secrets masked in usage errors (14), a symbolic link loop (exit 2) and stale
//! temporaries removed. Each test was seen failing with its fix reverted.

use crate::common;

use common::*;
use serde_json::{json, Value};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `cmd` with stdin `input`; `None` if it did not end within 60 s (then it is killed): a
/// hang is the bug some of these tests pin, and must fail the test rather than hang the suite.
fn run_bounded(mut cmd: Command, input: &[u8]) -> Option<(i32, String, String)> {
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = writer.join();
    let o = child.wait_with_output().unwrap();
    Some((
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    ))
}

fn run(args: &[&str]) -> (i32, String, String) {
    run_bounded(keycred_command(args, &[]), b"").unwrap_or_else(|| panic!("keycred {args:?} hung"))
}

fn run_env(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    run_bounded(keycred_command(args, env), b"").unwrap_or_else(|| panic!("keycred {args:?} hung"))
}

fn manifest_with(path: &Path, entries: &[Value]) {
    let doc = json!({"id": OBJECT_ID, "appId": APP_ID, "displayName": "review", "keyCredentials": entries});
    std::fs::write(path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
}

/// A manifest holding one valid certificate, and a second certificate (PEM) ready to add.
fn manifest_and_cert(d: &TempDir) -> (String, String) {
    let old = credential_for_days("registered", 30);
    manifest_with(&d.path("app.json"), &[valid_entry(&old.cert)]);
    let new = credential_for_days("to add", 30);
    std::fs::write(d.path("new.pem"), new.cert.to_pem()).unwrap();
    (d.s("app.json"), d.s("new.pem"))
}

// ---- point 3: PBKDF2 / MAC iteration counts in PFX files -------------------------------------

/// A PFX written by openssl with 100,000 iterations (MAC, certificate encryption, key
/// encryption), and the same file with one of the three counts raised to 8,388,607.
#[test]
fn pfx_iteration_counts_over_the_cap_are_refused_before_any_work() {
    let d = TempDir::new("review-pfx");
    openssl_self_signed_days(&d.path("k.pem"), &d.path("c.pem"), "/CN=pfx iterations", 30);
    let (k, c, pfx) = (d.s("k.pem"), d.s("c.pem"), d.s("a.pfx"));
    openssl(&["pkcs12", "-export", "-in", &c, "-inkey", &k, "-out", &pfx, "-passout", "pass:pw", "-iter", "100000"]);
    let good = std::fs::read(&pfx).unwrap();
    let count = [0x02, 0x03, 0x01, 0x86, 0xa0]; // INTEGER 100000
    let at: Vec<usize> = (0..good.len() - 4).filter(|&i| good[i..i + 5] == count).collect();
    assert_eq!(at.len(), 3, "expected the MAC, the certificates' and the key's counts");
    let env = [("PW", "pw")];
    let (code, out, err) = run_env(&["show", &pfx, "--password-env", "PW"], &env);
    assert_eq!(code, 0, "the genuine file is read: {out}{err}");
    for (n, i) in at.iter().enumerate() {
        let mut bad = good.clone();
        bad[i + 2..i + 5].copy_from_slice(&[0x7f, 0xff, 0xff]);
        let p = d.path(&format!("iter{n}.pfx"));
        std::fs::write(&p, &bad).unwrap();
        for with_password in [true, false] {
            let mut args = vec!["show", p.to_str().unwrap()];
            if with_password {
                args.extend(["--password-env", "PW"]);
            }
            let (code, _, err) = run_env(&args, &env);
            assert_eq!(code, 2, "count {n}: {err}");
            assert!(err.contains("8388607 iterations") && err.contains("limit"), "count {n}: {err}");
        }
    }
}

/// Point 3 for encrypted PKCS#8 keys, whose PBKDF2 count the file chooses too.
#[test]
fn encrypted_key_iteration_counts_over_the_cap_are_refused() {
    let d = TempDir::new("review-p8");
    openssl_self_signed_days(&d.path("k.pem"), &d.path("c.pem"), "/CN=p8 iterations", 30);
    let (k, c, e) = (d.s("k.pem"), d.s("c.pem"), d.s("enc.pem"));
    openssl(&[
        "pkcs8",
        "-topk8",
        "-in",
        &k,
        "-out",
        &e,
        "-v2",
        "aes-256-cbc",
        "-iter",
        "100000",
        "-passout",
        "pass:pw",
    ]);
    let pem = std::fs::read_to_string(&e).unwrap();
    let der = pem::parse(&pem).unwrap().contents().to_vec();
    let i = (0..der.len() - 4).find(|&i| der[i..i + 5] == [0x02, 0x03, 0x01, 0x86, 0xa0]).unwrap();
    let mut bad = der.clone();
    bad[i + 2..i + 5].copy_from_slice(&[0x7f, 0xff, 0xff]);
    let bad_pem = pem::encode(&pem::Pem::new("ENCRYPTED PRIVATE KEY", bad));
    std::fs::write(d.path("bad.pem"), bad_pem).unwrap();
    let args = |key: &str| {
        vec![
            "assertion",
            "--cert",
            c.as_str(),
            "--key",
            key,
            "--password-env",
            "PW",
            "--client-id",
            APP_ID,
            "--tenant",
            TENANT,
        ]
        .into_iter()
        .map(str::to_string)
        .collect::<Vec<_>>()
    };
    let good_args = args(&e);
    let (code, _, err) = run_env(&good_args.iter().map(String::as_str).collect::<Vec<_>>(), &[("PW", "pw")]);
    assert_eq!(code, 0, "{err}");
    let bad_args = args(&d.s("bad.pem"));
    let (code, _, err) = run_env(&bad_args.iter().map(String::as_str).collect::<Vec<_>>(), &[("PW", "pw")]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("8388607 iterations") && err.contains("bad.pem"), "{err}");
}

// ---- point 5: owner and group ----------------------------------------------------------------

fn is_root() -> bool {
    std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0).unwrap_or(false)
}

/// Replacing a manifest keeps its owner, group and mode (a `nobody:nogroup 0640` file became
/// `root:root`). Needs root to make a file someone else owns; skipped otherwise.
#[test]
fn manifest_edits_keep_owner_group_and_mode() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if !is_root() {
        eprintln!("skipped: needs root to give the manifest another owner");
        return;
    }
    let d = TempDir::new("review-owner");
    let (m, cert) = manifest_and_cert(&d);
    if let Err(e) = std::os::unix::fs::chown(&m, Some(65534), Some(65534)) {
        // Root in a user namespace that does not map uid 65534.
        eprintln!("skipped: cannot give the manifest to uid 65534 ({e})");
        return;
    }
    std::fs::set_permissions(&m, std::fs::Permissions::from_mode(0o640)).unwrap();
    let (code, _, err) = run(&["manifest", "add", &m, "--cert", &cert]);
    assert_eq!(code, 0, "{err}");
    let meta = std::fs::metadata(&m).unwrap();
    assert_eq!((meta.uid(), meta.gid(), meta.mode() & 0o7777), (65534, 65534, 0o640));
    assert!(std::fs::read_to_string(&m).unwrap().contains("to add"));
}

/// When the owner cannot be kept (an ordinary user may not give a file away), the edit is
/// refused and the file left as it was. Runs keycred as `nobody` on a root-owned manifest in a
/// directory nobody may write to; needs root.
#[test]
fn an_owner_that_cannot_be_kept_refuses_the_edit() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    if !is_root() {
        eprintln!("skipped: needs root to run keycred as another user");
        return;
    }
    let d = TempDir::new("review-owner-refused");
    std::fs::set_permissions(&d.0, std::fs::Permissions::from_mode(0o777)).unwrap();
    let (m, cert) = manifest_and_cert(&d);
    std::fs::set_permissions(&m, std::fs::Permissions::from_mode(0o666)).unwrap();
    std::fs::set_permissions(&cert, std::fs::Permissions::from_mode(0o644)).unwrap();
    let before = snapshot(&d.0);
    let mut cmd = keycred_command(&["manifest", "add", &m, "--cert", &cert], &[]);
    cmd.uid(65534).gid(65534);
    let (code, _, err) = run_bounded(cmd, b"").unwrap();
    if err.contains("Permission denied") && err.contains("keycred") && code != 2 {
        eprintln!("skipped: the keycred binary is not reachable for nobody: {err}");
        return;
    }
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("owner") && err.contains("nothing was changed"), "{err}");
    assert_eq!(snapshot(&d.0), before, "files changed");
}

// ---- point 6 and "also": FIFOs, symbolic link loops ----------------------------------------

/// A FIFO given as a manifest hung `manifest add/list` forever; now refused at once, exit 2.
#[test]
fn a_fifo_manifest_is_refused_without_blocking() {
    let d = TempDir::new("review-fifo");
    let fifo = d.s("app.json");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    std::fs::write(d.path("new.pem"), credential_for_days("fifo", 30).cert.to_pem()).unwrap();
    for args in [vec!["manifest", "list", &fifo], vec!["manifest", "add", &fifo, "--cert", &d.s("new.pem")]] {
        let (code, _, err) = run_bounded(keycred_command(&args, &[]), b"").expect("keycred blocked on the FIFO");
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains("FIFO") && err.contains("app.json"), "{err}");
    }
    assert!(!d.path("app.json.lock").exists());
}

/// A manifest path that is a symbolic link loop is bad input (exit 2), not an unexpected failure.
#[test]
fn a_symbolic_link_loop_is_bad_input() {
    let d = TempDir::new("review-loop");
    std::os::unix::fs::symlink(d.path("b.json"), d.path("a.json")).unwrap();
    std::os::unix::fs::symlink(d.path("a.json"), d.path("b.json")).unwrap();
    std::fs::write(d.path("new.pem"), credential_for_days("loop", 30).cert.to_pem()).unwrap();
    let a = d.s("a.json");
    for args in [vec!["manifest", "list", &a], vec!["manifest", "add", &a, "--cert", &d.s("new.pem")]] {
        let (code, _, err) = run(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains("a.json") && err.contains("symbolic link"), "{err}");
    }
}

// ---- point 7: input sizes --------------------------------------------------------------------

/// `show /dev/zero` read until memory ran out; every input now has a cap, exit 2.
#[test]
fn inputs_are_capped() {
    let d = TempDir::new("review-caps");
    let (code, _, err) = run(&["show", "/dev/zero"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("/dev/zero") && err.contains("1048576-byte limit"), "{err}");
    // A certificate file over 1 MiB (a PEM padded with comments), and a manifest over 4 MiB.
    let pem = credential_for_days("big", 30).cert.to_pem();
    std::fs::write(d.path("big.pem"), format!("{}\n{pem}", "# padding\n".repeat(110_000))).unwrap();
    let (code, _, err) = run(&["show", &d.s("big.pem")]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("big.pem") && err.contains("limit"), "{err}");
    let big = format!("{{\"appId\":\"{APP_ID}\",\"notes\":\"{}\",\"keyCredentials\":[]}}", "x".repeat(4 * 1024 * 1024));
    std::fs::write(d.path("big.json"), big).unwrap();
    let (code, _, err) = run(&["manifest", "list", &d.s("big.json")]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("big.json") && err.contains("4194304-byte limit"), "{err}");
    // A token on stdin over the limit is refused, not silently cut.
    let long = format!("{}.{}.", "e".repeat(10_000), "e".repeat(10_000));
    let (code, _, err) = run_bounded(keycred_command(&["decode", "-"], &[]), long.as_bytes()).unwrap();
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("stdin") && err.contains("more than"), "{err}");
}

// ---- point 8: the lock file -------------------------------------------------------------------

/// `<manifest>.lock` followed a planted symbolic link and created its target.
#[test]
fn the_lock_file_never_follows_a_link_and_must_be_a_regular_file() {
    let d = TempDir::new("review-lock");
    let (m, cert) = manifest_and_cert(&d);
    let victim = d.path("victim");
    std::os::unix::fs::symlink(&victim, d.path("app.json.lock")).unwrap();
    let before = std::fs::read(&m).unwrap();
    let (code, _, err) = run_env(&["manifest", "add", &m, "--cert", &cert], &[("KEYCRED_LOCK_TIMEOUT", "0")]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("app.json.lock") && err.contains("symbolic link"), "{err}");
    assert!(!victim.exists(), "the link's target was created");
    assert!(d.path("app.json.lock").symlink_metadata().unwrap().file_type().is_symlink(), "the planted link is kept");
    assert_eq!(std::fs::read(&m).unwrap(), before);
    // A FIFO in its place is refused too (and does not block).
    std::fs::remove_file(d.path("app.json.lock")).unwrap();
    assert!(Command::new("mkfifo").arg(d.path("app.json.lock")).status().unwrap().success());
    let (code, _, err) = run_env(&["manifest", "add", &m, "--cert", &cert], &[("KEYCRED_LOCK_TIMEOUT", "0")]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a regular file"), "{err}");
    assert_eq!(std::fs::read(&m).unwrap(), before);
}

// ---- point 11: RSA keys no one can sign with -----------------------------------------------

/// A certificate whose SubjectPublicKeyInfo holds this PKCS#1 RSAPublicKey, issued by a
/// throw-away CA (the key has no private half; the structure is all that matters).
struct RawRsaKey(Vec<u8>);

impl rcgen::PublicKeyData for RawRsaKey {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_RSA_SHA256
    }
}

fn der_len(n: usize) -> Vec<u8> {
    if n < 0x80 {
        return vec![n as u8];
    }
    let bytes: Vec<u8> = n.to_be_bytes().iter().copied().skip_while(|&b| b == 0).collect();
    [vec![0x80 | bytes.len() as u8], bytes].concat()
}

fn der_uint(v: &[u8]) -> Vec<u8> {
    let mut v: Vec<u8> = v.iter().copied().skip_while(|&b| b == 0).collect();
    if v.is_empty() || v[0] & 0x80 != 0 {
        v.insert(0, 0);
    }
    [vec![0x02], der_len(v.len()), v].concat()
}

fn rsa_public_key(n: &[u8], e: &[u8]) -> Vec<u8> {
    let body = [der_uint(n), der_uint(e)].concat();
    [vec![0x30], der_len(body.len()), body].concat()
}

fn certificate_with_key(cn: &str, key: Vec<u8>) -> keycred::cert::Certificate {
    let mut ca = rcgen::CertificateParams::default();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let issuer = rcgen::Issuer::new(ca, rcgen::KeyPair::generate().unwrap());
    let mut params = rcgen::CertificateParams::new(vec![]).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, cn);
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(60);
    let cert = params.signed_by(&RawRsaKey(key), &issuer).unwrap();
    keycred::cert::Certificate::from_der(cert.der(), cn).unwrap()
}

/// The lock-out guard and `list` counted as valid certificates no one can sign with: a public
/// exponent of 0, 1 or 2^16, an even modulus, a 1,000,000-bit modulus. They are refused by
/// `manifest add`, listed `unusable`, and do not let the only real certificate go.
#[test]
fn rsa_keys_no_one_can_sign_with_are_unusable() {
    let d = TempDir::new("review-rsa");
    let real = credential_for_days("real", 90);
    let n = {
        // The real modulus: RSAPublicKey ::= SEQUENCE { n INTEGER, e INTEGER }.
        use pkcs8::der::Decode;
        let items = Vec::<pkcs8::der::asn1::Int>::from_der(real.cert.rsa_public_key().unwrap()).unwrap();
        items[0].as_bytes().to_vec()
    };
    let mut even = n.clone();
    *even.last_mut().unwrap() &= 0xfe;
    let mut huge = vec![0xffu8; 125_000];
    huge[124_999] = 0x01;
    // One byte over the bound: a modulus no aws-lc signature (so no emulator check) can use.
    let mut over = vec![0xffu8; 1025];
    over[1024] = 0x01;
    let bad = [
        ("exponent 1", rsa_public_key(&n, &[1]), "exponent is 1"),
        ("exponent 0", rsa_public_key(&n, &[0]), "exponent is 0"),
        ("exponent 65536", rsa_public_key(&n, &[1, 0, 0]), "exponent is 65536"),
        ("even modulus", rsa_public_key(&even, &[1, 0, 1]), "modulus is even"),
        ("1,000,000-bit modulus", rsa_public_key(&huge, &[1, 0, 1]), "1000000 bits"),
        ("8200-bit modulus", rsa_public_key(&over, &[1, 0, 1]), "8200 bits"),
    ];
    let mut entries = vec![valid_entry(&real.cert)];
    for (name, key, why) in &bad {
        let cert = certificate_with_key(name, key.clone());
        assert!(cert.key_defect().is_some_and(|d| d.contains(why)), "{name}: {:?}", cert.key_defect());
        let pem = d.path(&format!("{}.pem", name.replace([' ', ','], "_")));
        std::fs::write(&pem, cert.to_pem()).unwrap();
        manifest_with(&d.path("one.json"), &[valid_entry(&real.cert)]);
        let before = std::fs::read(d.path("one.json")).unwrap();
        let (code, _, err) = run(&["manifest", "add", &d.s("one.json"), "--cert", pem.to_str().unwrap()]);
        assert_eq!(code, 2, "{name}: {err}");
        assert!(err.contains("unusable") && err.contains(why), "{name}: {err}");
        assert_eq!(std::fs::read(d.path("one.json")).unwrap(), before);
        entries.push(valid_entry(&cert));
    }
    let m = d.s("app.json");
    manifest_with(Path::new(&m), &entries);
    let (code, out, err) = run(&["-o", "json", "manifest", "list", &m]);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<Value> = serde_json::from_str(&out).unwrap();
    let statuses: Vec<&str> = rows.iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["valid", "unusable", "unusable", "unusable", "unusable", "unusable", "unusable"]);
    // Removing the only real certificate is a lock-out, whatever the others' dates say.
    let before = std::fs::read(&m).unwrap();
    let (code, _, err) = run(&["manifest", "remove", &m, "--thumbprint", &real.cert.thumbprint()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("last currently valid certificate"), "{err}");
    assert_eq!(std::fs::read(&m).unwrap(), before);
}

// ---- point 12: `keycred new` all or nothing ---------------------------------------------------

/// On a full disk, the key was written and the certificate failed with ENOSPC, so the rerun
/// refused because the key existed. Runs `new` in a one-page tmpfs (the key fits, the
/// certificate does not); needs root (mount), skipped otherwise.
#[test]
fn new_on_a_full_disk_leaves_nothing_behind() {
    let d = TempDir::new("review-enospc");
    let mnt = d.path("full");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4k,mode=0755", "tmpfs"])
        .arg(&mnt)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    }
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(&mnt);
    let out = mnt.to_str().unwrap();
    let (code, _, err) = run(&["new", "--subject", "CN=full disk", "--out-dir", out, "--name", "app"]);
    assert_ne!(code, 0, "the one-page file system should be too small for key and certificate: {err}");
    let left: Vec<String> =
        std::fs::read_dir(&mnt).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(left.is_empty(), "left behind: {left:?} ({err})");
}

/// The same without root: the fault hook fails the second file `new` stages (the certificate,
/// after the key) as a full disk does. Nothing may be left: no key without its certificate, no
/// temporary.
#[test]
fn new_failing_on_its_second_file_leaves_nothing_behind() {
    let d = TempDir::new("review-nospace");
    let out = d.path("out");
    std::fs::create_dir(&out).unwrap();
    let args = ["new", "--subject", "CN=no space", "--out-dir", out.to_str().unwrap(), "--name", "app"];
    for at in ["1", "2", "3"] {
        let o = keycred_command(&args, &[("KEYCRED_FAULT_NO_SPACE_AT", at)]).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "file {at} failing (an I/O failure): {err}");
        assert!(err.contains("No space left on device"), "file {at}: {err}");
        let left: Vec<String> =
            std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert!(left.is_empty(), "file {at} failing left behind: {left:?} ({err})");
    }
    // And with no fault, the same command writes its three files.
    let o = keycred_command(&args, &[]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 3);
}

// ---- "also": stale temporaries -------------------------------------------------------------

/// Temporaries of keycred runs killed mid-write piled up; the next write removes those of dead
/// processes and leaves a live writer's alone.
#[test]
fn stale_temporaries_are_removed_on_the_next_write() {
    let d = TempDir::new("review-stale");
    let (m, cert) = manifest_and_cert(&d);
    // A process id that is not running (above every pid in use), and this test's own (alive).
    let dead = (4_000_000..4_194_304).find(|p| !Path::new(&format!("/proc/{p}")).exists()).unwrap();
    let stale = d.path(&format!(".app.json.keycred-{dead}-0123456789abcdef0123456789abcdef.tmp"));
    let live = d.path(&format!(".app.json.keycred-{}-fedcba9876543210fedcba9876543210.tmp", std::process::id()));
    let other = d.path(".app.json.editor.tmp");
    for p in [&stale, &live, &other] {
        std::fs::write(p, b"{").unwrap();
    }
    let (code, _, err) = run(&["manifest", "add", &m, "--cert", &cert]);
    assert_eq!(code, 0, "{err}");
    assert!(!stale.exists(), "the dead run's temporary is still there");
    assert!(live.exists() && other.exists(), "a live writer's or another program's file was removed");
}

// ---- point 13: control characters in text output ----------------------------------------------

/// A hostile token's claim `\e[2J` cleared the screen (and the NOT VERIFIED banner); a newline
/// forged a `roles:` line. Text output now escapes control characters.
#[test]
fn control_characters_are_escaped_in_text_output() {
    use keycred::thumbprint::b64url;
    let claims =
        json!({"aud": "api://x", "name": "\u{1b}[2J\u{1b}[H", "note": "x\n  roles:  Admin", "c1": "\u{9b}31m"});
    let token = format!("{}.{}.c2ln", b64url(br#"{"alg":"RS256","typ":"JWT"}"#), b64url(claims.to_string().as_bytes()));
    let (code, out, err) = run(&["decode", &token]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains('\u{1b}') && !out.contains('\u{9b}'), "{out:?}");
    assert!(out.starts_with("NOT VERIFIED"), "{out}");
    assert!(!out.lines().any(|l| l.trim_start().starts_with("roles:")), "a forged line: {out}");
    assert!(out.contains("\\x1b[2J") && out.contains("x\\n  roles:  Admin"), "{out}");
    // JSON output stays JSON with the same values.
    let (_, out, _) = run(&["-o", "json", "decode", &token]);
    assert!(!out.contains('\u{1b}') && !out.contains('\u{9b}'), "{out:?}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["claims"]["c1"], "\u{9b}31m");

    // manifest list: a display name with escapes and a newline.
    let d = TempDir::new("review-escapes");
    let c = credential_for_days("escapes", 30);
    let mut e = valid_entry(&c.cert);
    e["displayName"] = json!("\u{1b}]0;owned\u{7}\nfake-row valid");
    manifest_with(&d.path("app.json"), &[e]);
    let (code, out, err) = run(&["manifest", "list", &d.s("app.json")]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.chars().any(|c| c.is_control() && c != '\n'), "{out:?}");
    assert_eq!(out.lines().count(), 2, "header and one row only: {out}");
}

// ---- point 14: secrets in usage errors --------------------------------------------------------

/// `keycred decode "$(cat k.key)"` with a stray argument printed the whole private key in clap's
/// usage error. Values that look like keys or tokens are masked, in text and in JSON.
#[test]
fn usage_errors_never_echo_keys_or_tokens() {
    let d = TempDir::new("review-usage");
    openssl_self_signed_days(&d.path("k.pem"), &d.path("c.pem"), "/CN=usage", 30);
    let key = std::fs::read_to_string(d.path("k.pem")).unwrap();
    let body_line = key.lines().nth(1).unwrap().to_string();
    let jwt = format!(
        "{}.{}.c2lnbmF0dXJl",
        keycred::thumbprint::b64url(b"{\"alg\":\"RS256\"}"),
        keycred::thumbprint::b64url(b"{\"aud\":\"x\"}")
    );
    for args in [
        vec!["decode", "token", key.as_str()],
        vec!["-o", "json", "decode", "token", key.as_str()],
        vec!["decode", "token", jwt.as_str()],
        vec!["manifest", "list", "app.json", &format!("Bearer {jwt}")],
    ] {
        let (code, out, err) = run(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        let all = format!("{out}{err}");
        assert!(!all.contains(&body_line) && !all.contains("BEGIN PRIVATE KEY"), "{all}");
        assert!(!all.contains(&jwt), "{all}");
        assert!(all.contains("looks like a key or token"), "{all}");
    }
}
