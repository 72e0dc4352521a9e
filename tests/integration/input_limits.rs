//! Inputs are bounded before any work: PBKDF2/PKCS#12 iteration counts in PFX files and
//! encrypted PKCS#8 keys are capped before any derivation, and every file, argument and stdin
//! read has a size cap. Each refusal is bad input (exit 2) naming the input, run on the real
//! binary.

use crate::common::*;

/// A PFX written by openssl with 100,000 iterations (MAC, certificate encryption, key
/// encryption), and the same file with one of the three counts raised to 8,388,607: a file
/// chooses its own work factor, so an uncapped count keeps `show` busy for minutes (the MAC is
/// checked even without a password). Each raised count is refused, exit 2, naming the count.
#[test]
fn pfx_iteration_counts_over_the_cap_are_refused_before_any_work() {
    let d = TempDir::new("pfx-iterations");
    openssl_self_signed_days(&d.path("k.pem"), &d.path("c.pem"), "/CN=pfx iterations", 30);
    let (k, c, pfx) = (d.s("k.pem"), d.s("c.pem"), d.s("a.pfx"));
    openssl(&["pkcs12", "-export", "-in", &c, "-inkey", &k, "-out", &pfx, "-passout", "pass:pw", "-iter", "100000"]);
    let good = std::fs::read(&pfx).unwrap();
    let count = [0x02, 0x03, 0x01, 0x86, 0xa0]; // INTEGER 100000
    let at: Vec<usize> = (0..good.len() - 4).filter(|&i| good[i..i + 5] == count).collect();
    assert_eq!(at.len(), 3, "expected the MAC, the certificates' and the key's counts");
    let env = [("PW", "pw")];
    let (code, out, err) = keycred_bounded(&["show", &pfx, "--password-env", "PW"], &env);
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
            let (code, _, err) = keycred_bounded(&args, &env);
            assert_eq!(code, 2, "count {n}: {err}");
            assert!(err.contains("8388607 iterations") && err.contains("limit"), "count {n}: {err}");
        }
    }
}

/// The same cap for encrypted PKCS#8 keys, whose PBKDF2 count the file chooses too: the
/// genuine key is read, the one with its count raised is refused naming the file and the count.
#[test]
fn encrypted_key_iteration_counts_over_the_cap_are_refused() {
    let d = TempDir::new("pkcs8-iterations");
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
    let (code, _, err) = keycred_bounded(&good_args.iter().map(String::as_str).collect::<Vec<_>>(), &[("PW", "pw")]);
    assert_eq!(code, 0, "{err}");
    let bad_args = args(&d.s("bad.pem"));
    let (code, _, err) = keycred_bounded(&bad_args.iter().map(String::as_str).collect::<Vec<_>>(), &[("PW", "pw")]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("8388607 iterations") && err.contains("bad.pem"), "{err}");
}

/// Every input has a size cap, counted while reading so that an endless stream stops:
/// `show /dev/zero` must not read until memory runs out. Over the cap is bad input, exit 2,
/// naming the input and the limit.
#[test]
fn inputs_are_capped() {
    let d = TempDir::new("input-caps");
    let (code, _, err) = keycred_bounded(&["show", "/dev/zero"], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("/dev/zero") && err.contains("1048576-byte limit"), "{err}");
    // A certificate file over 1 MiB (a PEM padded with comments), and a manifest over 4 MiB.
    let pem = credential_for_days("big", 30).cert.to_pem();
    std::fs::write(d.path("big.pem"), format!("{}\n{pem}", "# padding\n".repeat(110_000))).unwrap();
    let (code, _, err) = keycred_bounded(&["show", &d.s("big.pem")], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("big.pem") && err.contains("limit"), "{err}");
    let big = format!("{{\"appId\":\"{APP_ID}\",\"notes\":\"{}\",\"keyCredentials\":[]}}", "x".repeat(4 * 1024 * 1024));
    std::fs::write(d.path("big.json"), big).unwrap();
    let (code, _, err) = keycred_bounded(&["manifest", "list", &d.s("big.json")], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("big.json") && err.contains("4194304-byte limit"), "{err}");
    // A token on stdin over the limit is refused, not silently cut.
    let long = format!("{}.{}.", "e".repeat(10_000), "e".repeat(10_000));
    let (code, _, err) = run_bounded(keycred_command(&["decode", "-"], &[]), long.as_bytes()).unwrap();
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("stdin") && err.contains("more than"), "{err}");
}
