//! Regression tests for `keycred new` subjects and dates and for how names print, checked with
//! the openssl CLI:
//!
//! - `C=FR` was a UTF8String; RFC 5280 wants PrintableString for countryName.
//! - A CN over 64 characters (ub-common-name) was accepted.
//! - `show` printed `O=Contoso, Inc.` unescaped; `--subject` did not accept quoted values.
//! - `--not-after` alone failed with clap's "required --not-before".

use crate::common;

use common::{keycred_bounded, keycred_command, openssl, openssl_ca_and_leaf, snapshot, TempDir};
use serde_json::Value;
use std::process::Output;

fn run(t: &TempDir, args: &[&str]) -> Output {
    keycred_command(args, &[]).current_dir(&t.0).output().expect("run keycred")
}

fn ok_json(o: &Output) -> Value {
    assert!(o.status.success(), "keycred failed: {}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).expect("stdout is JSON")
}

/// `openssl x509 -noout -subject -nameopt RFC2253,-esc_msb` (RDNs last to first, `,` between
/// them, UTF-8 as itself), without the `subject=` prefix.
fn openssl_rfc2253(t: &TempDir, cert: &str, which: &str) -> String {
    let o = openssl(&["x509", "-in", &t.s(cert), "-noout", which, "-nameopt", "RFC2253,-esc_msb"]);
    let s = String::from_utf8(o.stdout).unwrap();
    s.trim().split_once('=').unwrap().1.to_string()
}

/// keycred's form (RFC 4514 order, `, ` between RDNs) with OpenSSL's `,` separators: split at
/// the separators, which are the commas no backslash escapes.
fn keycred_as_rfc2253(dn: &str) -> String {
    let mut rdns = Vec::new();
    let (mut cur, mut escaped) = (String::new(), false);
    for c in dn.chars() {
        if c == ',' && !escaped {
            rdns.push(std::mem::take(&mut cur));
            continue;
        }
        escaped = c == '\\' && !escaped;
        cur.push(c);
    }
    rdns.push(cur);
    let rdns: Vec<&str> = rdns.iter().map(|r| r.strip_prefix(' ').unwrap_or(r)).collect();
    rdns.join(",")
}

/// ASN.1 string type of the value after `attr` in `openssl asn1parse` output.
fn string_type(t: &TempDir, cert: &str, attr: &str) -> String {
    let out = String::from_utf8(openssl(&["asn1parse", "-in", &t.s(cert)]).stdout).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    let i = lines.iter().position(|l| l.ends_with(&format!(":{attr}"))).unwrap_or_else(|| panic!("{attr}: {out}"));
    lines[i + 1].split("prim:").nth(1).unwrap().split_whitespace().next().unwrap().to_string()
}

/// Bug: names printed unescaped (`O=Contoso, Inc.` read as two attributes); `--subject` took
/// no quoted values; C was a UTF8String.
#[test]
fn subjects_print_escaped_as_openssl_does_and_use_rfc_5280_string_types() {
    let t = TempDir::new("cert-dn");
    let subject = r#"CN=\#App\+1 \"x\"\;<y>, O="Contoso, Inc.", OU=a\\b\ , L=Zürich, C=FR, serialNumber=AB-12"#;
    let v = ok_json(&run(&t, &["new", "--name", "dn", "--subject", subject, "-o", "json"]));
    let printed = v["subject"].as_str().unwrap();
    assert_eq!(printed, r#"CN=\#App\+1 \"x\"\;\<y\>, O=Contoso\, Inc., OU=a\\b\ , L=Zürich, C=FR, serialNumber=AB-12"#);
    assert_eq!(keycred_as_rfc2253(printed), openssl_rfc2253(&t, "dn.cer", "-subject"));
    assert_eq!(v["issuer"], v["subject"]);
    // What openssl sees in the certificate, attribute by attribute.
    let multiline =
        openssl(&["x509", "-in", &t.s("dn.cer"), "-noout", "-subject", "-nameopt", "multiline,-esc_msb,utf8"]);
    let multiline = String::from_utf8(multiline.stdout).unwrap();
    assert!(multiline.contains("organizationName          = Contoso, Inc."), "{multiline}");
    assert!(multiline.contains("commonName                = #App+1 \"x\";<y>"), "{multiline}");
    // (openssl escapes a backslash even in this form: the value is `a\b ` with one backslash.)
    assert!(multiline.contains("organizationalUnitName    = a\\\\b \n"), "{multiline}");
    let ou = String::from_utf8(openssl(&["asn1parse", "-in", &t.s("dn.cer")]).stdout).unwrap();
    assert!(ou.contains("UTF8STRING        :a\\b \n"), "{ou}");
    assert_eq!(string_type(&t, "dn.cer", "countryName"), "PRINTABLESTRING");
    assert_eq!(string_type(&t, "dn.cer", "serialNumber"), "PRINTABLESTRING");
    assert_eq!(string_type(&t, "dn.cer", "commonName"), "UTF8STRING");
    // The printed form is accepted back as --subject, and gives the same name.
    let again = ok_json(&run(&t, &["new", "--name", "again", "--subject", printed, "-o", "json"]));
    assert_eq!(again["subject"], printed);
    // An escaped comma and a quoted value are the same name.
    let a = ok_json(&run(&t, &["new", "--name", "a", "--subject", r"CN=x, O=Contoso\, Inc.", "-o", "json"]));
    let b = ok_json(&run(&t, &["new", "--name", "b", "--subject", r#"CN=x, O="Contoso, Inc.""#, "-o", "json"]));
    assert_eq!(a["subject"], r"CN=x, O=Contoso\, Inc.");
    assert_eq!(a["subject"], b["subject"]);
    assert_eq!(openssl_rfc2253(&t, "a.cer", "-subject"), r"CN=x,O=Contoso\, Inc.");

    // A CA-issued certificate made by openssl: subject and issuer both agree.
    let ca = ("ca", r"/C=US/O=Fabrikam, Ltd./CN=Root \+ CA");
    openssl_ca_and_leaf(&t.0, ca, ("l", r"/CN=leaf; one/OU=\ spaced/O=Fabrikam, Ltd."), 5);
    let v = ok_json(&run(&t, &["show", "l.pem", "-o", "json"]));
    // `-subj` lists RDNs in encoding order; RFC 4514 reads them last to first.
    assert_eq!(v["issuer"], r"CN=Root \+ CA, O=Fabrikam\, Ltd., C=US");
    assert_eq!(keycred_as_rfc2253(v["subject"].as_str().unwrap()), openssl_rfc2253(&t, "l.pem", "-subject"));
    assert_eq!(keycred_as_rfc2253(v["issuer"].as_str().unwrap()), openssl_rfc2253(&t, "l.pem", "-issuer"));
}

/// Bug: a CN of 65 characters was accepted; bad subjects must leave the directory untouched.
#[test]
fn subjects_over_rfc_5280_bounds_or_malformed_are_refused() {
    let t = TempDir::new("cert-dn-bad");
    let before = snapshot(&t.0);
    let long_cn = format!("CN={}", "a".repeat(65));
    let long_o = format!("CN=x, O={}", "o".repeat(65));
    let cases: &[(&str, &str)] = &[
        (&long_cn, "CN is 65 characters long; RFC 5280 allows at most 64"),
        (&long_o, "O is 65 characters long"),
        ("CN=x, C=FRA", "two-letter country code"),
        ("CN=x, C=F1", "two-letter country code"),
        ("CN=x, serialNumber=a_b", "PrintableString"),
        ("CN=x, O=\"open", "no closing quote"),
        ("CN=a+O=b", "multi-valued"),
        ("DC=contoso, DC=com", "twice"),
    ];
    for (subject, needle) in cases {
        let o = run(&t, &["new", "--name", "x", "--subject", subject]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{subject}: {err}");
        assert!(err.contains(needle), "{subject}: expected '{needle}' in {err}");
        assert_eq!(snapshot(&t.0), before, "{subject}");
    }
    // 64 is the limit, not over it.
    let cn64 = format!("CN={}", "a".repeat(64));
    ok_json(&run(&t, &["new", "--name", "cn64", "--subject", &cn64, "-o", "json"]));
    let subj = String::from_utf8(openssl(&["x509", "-in", &t.s("cn64.cer"), "-noout", "-subject"]).stdout).unwrap();
    assert_eq!(subj.trim(), format!("subject=CN = {}", "a".repeat(64)));
}

fn openssl_dates(t: &TempDir, cert: &str) -> (String, String) {
    let out =
        String::from_utf8(openssl(&["x509", "-in", &t.s(cert), "-noout", "-startdate", "-enddate"]).stdout).unwrap();
    let get = |k: &str| out.lines().find_map(|l| l.strip_prefix(k)).unwrap().to_string();
    (get("notBefore="), get("notAfter="))
}

/// Bug: `--not-after` alone failed with clap's "required --not-before"; `--not-before` alone
/// likewise.
#[test]
fn not_after_or_not_before_alone_and_days_with_a_start() {
    let t = TempDir::new("cert-dates");
    let before_run = keycred::dates::now();
    let v = ok_json(&run(&t, &["new", "--name", "until", "--not-after", "2049-06-30", "-o", "json"]));
    let after_run = keycred::dates::now();
    assert_eq!(v["notAfter"], "2049-06-30T00:00:00Z");
    assert_eq!(openssl_dates(&t, "until.cer").1, "Jun 30 00:00:00 2049 GMT");
    // The start is now (backdated a minute for clock skew, like --days).
    let start = keycred::dates::parse(v["notBefore"].as_str().unwrap(), "notBefore").unwrap();
    assert!(start <= after_run && start >= before_run - time::Duration::minutes(2), "{start}");

    let v = ok_json(&run(&t, &["new", "--name", "from", "--not-before", "2026-01-01", "-o", "json"]));
    assert_eq!(
        (v["notBefore"].as_str().unwrap(), v["notAfter"].as_str().unwrap()),
        ("2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z")
    );
    assert_eq!(openssl_dates(&t, "from.cer"), ("Jan  1 00:00:00 2026 GMT".into(), "Jan  1 00:00:00 2027 GMT".into()));
    let v = ok_json(&run(
        &t,
        &["new", "--name", "from10", "--not-before", "2048-02-25T12:00:00Z", "--days", "10", "-o", "json"],
    ));
    assert_eq!(v["notAfter"], "2048-03-06T12:00:00Z");
    assert_eq!(openssl_dates(&t, "from10.cer").1, "Mar  6 12:00:00 2048 GMT");

    let before = snapshot(&t.0);
    let cases: &[(&[&str], &str)] = &[
        (&["--not-before", "2026-01-01", "--not-after", "2027-01-01", "--days", "3"], "cannot be used with"),
        (&["--not-after", "2027-01-01", "--days", "3"], "cannot be used with"),
        (&["--not-after", "2001-01-01"], "is not after now"),
        (&["--not-before", "2026-01-01", "--days", "0"], "--days 0"),
    ];
    for (args, needle) in cases {
        let mut all = vec!["new", "--name", "x"];
        all.extend_from_slice(args);
        let o = run(&t, &all);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: expected '{needle}' in {err}");
        assert_eq!(snapshot(&t.0), before, "{args:?}");
    }
    // --help says what each date defaults to.
    let help = String::from_utf8(run(&t, &["new", "--help"]).stdout).unwrap();
    assert!(help.contains("from --not-before or from now [default: 365]"), "{help}");
    assert!(help.contains("[default: now]"), "{help}");
    assert!(help.contains("[default: start + --days]"), "{help}");
}

/// `new` writes all its files or none: on a full disk, a key written without its certificate
/// would make the rerun refuse because the key exists. Runs `new` in a one-page tmpfs (the key
/// fits, the certificate does not); needs root (mount), and says it was skipped otherwise.
#[test]
fn new_on_a_full_disk_leaves_nothing_behind() {
    let d = TempDir::new("new-full-disk");
    let mnt = d.path("full");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4k,mode=0755", "tmpfs"])
        .arg(&mnt)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        common::skipped("new_on_a_full_disk_leaves_nothing_behind", "cannot mount a tmpfs here (needs root)");
        return;
    }
    struct Unmount<'a>(&'a std::path::Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(&mnt);
    let out = mnt.to_str().unwrap();
    let (code, _, err) = keycred_bounded(&["new", "--subject", "CN=full disk", "--out-dir", out, "--name", "app"], &[]);
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
    let d = TempDir::new("new-no-space");
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
