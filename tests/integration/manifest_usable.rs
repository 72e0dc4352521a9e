//! Only usable certificate entries count: the lock-out guard of `manifest remove`/`prune` does
//! not count a symmetric key, a signing key, a body that is not a certificate, unreadable dates or
//! an entry nothing dates; `manifest list` says `unusable` for them, with `problems`, flags a hex
//! `customKeyIdentifier`, and shows array members that are not objects.

use crate::common;

use base64::Engine;
use common::*;
use serde_json::{json, Value};

fn run(args: &[&str]) -> (i32, String, String) {
    let o = keycred_command(args, &[]).output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

fn write(path: &std::path::Path, entries: &[Value]) {
    let doc = json!({"id": OBJECT_ID, "appId": APP_ID, "keyCredentials": entries});
    std::fs::write(path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
}

/// Entries that are not certificates Entra can verify with, whatever their dates say.
fn unusable_entries() -> Vec<(Value, &'static str)> {
    let id = || uuid::Uuid::new_v4().to_string();
    vec![
        (
            json!({"keyId": id(), "type": "Symmetric", "usage": "Sign", "key": null,
                "startDateTime": "2020-01-01T00:00:00Z", "endDateTime": "2199-01-01T00:00:00Z"}),
            "type is \"Symmetric\"",
        ),
        (
            json!({"keyId": id(), "type": "AsymmetricX509Cert", "usage": "Sign", "key": null,
                "startDateTime": "2020-01-01T00:00:00Z", "endDateTime": "2199-01-01T00:00:00Z"}),
            "usage is \"Sign\"",
        ),
        (
            json!({"keyId": id(), "type": "AsymmetricX509Cert", "usage": "Verify", "key": "!!garbage"}),
            "key is not base64",
        ),
        (
            json!({"keyId": id(), "type": "AsymmetricX509Cert", "usage": "Verify",
                "key": base64::engine::general_purpose::STANDARD.encode(b"not a certificate")}),
            "DER X.509",
        ),
        (
            json!({"keyId": id(), "type": "AsymmetricX509Cert", "usage": "Verify", "key": null,
                "startDateTime": "last tuesday", "endDateTime": "2199-01-01T00:00:00Z"}),
            "startDateTime \"last tuesday\" is not a date",
        ),
        (
            json!({"keyId": id(), "type": "AsymmetricX509Cert", "usage": "Verify", "key": null}),
            "no certificate body and no dates",
        ),
    ]
}

#[test]
fn unusable_entries_do_not_count_for_the_lock_out_guard() {
    let d = TempDir::new("musable");
    let real = credential_for_days("real", 365);
    let real_entry = valid_entry(&real.cert);
    for (bad, _) in unusable_entries() {
        let m = d.path("lock.json");
        write(&m, &[real_entry.clone(), bad.clone()]);
        let before = std::fs::read(&m).unwrap();
        let thumb = real.cert.thumbprint();
        let (code, _, err) = run(&["manifest", "remove", &d.s("lock.json"), "--thumbprint", &thumb]);
        assert_eq!(code, 2, "{bad}: {err}");
        assert!(err.contains("last currently valid certificate"), "{bad}: {err}");
        assert_eq!(std::fs::read(&m).unwrap(), before, "{bad}");
        // --force still allows it (manifest remove's documented meaning).
        let (code, _, err) = run(&["manifest", "remove", &d.s("lock.json"), "--thumbprint", &thumb, "--force"]);
        assert_eq!(code, 0, "{bad}: {err}");
    }
}

#[test]
fn list_says_unusable_with_problems_and_flags_hex_identifiers() {
    let d = TempDir::new("musable");
    let real = credential_for_days("real", 365);
    let sha1 = real.cert.sha1();
    let hex = keycred::thumbprint::hex_upper(&sha1);
    let mut hex_cki = valid_entry(&real.cert);
    hex_cki["customKeyIdentifier"] = json!(hex);
    hex_cki["key"] = Value::Null;
    let mut text_cki = valid_entry(&credential_for_days("other", 365).cert);
    let other_hex = text_cki["customKeyIdentifier"]
        .as_str()
        .map(|c| keycred::thumbprint::hex_upper(&keycred::thumbprint::parse_sha1(c).unwrap()));
    // The common mistake: base64 of the hex thumbprint's text, not of the digest.
    text_cki["customKeyIdentifier"] =
        json!(base64::engine::general_purpose::STANDARD.encode(other_hex.clone().unwrap().as_bytes()));
    text_cki["key"] = Value::Null;
    let bad = unusable_entries();
    let mut entries: Vec<Value> = vec![hex_cki, text_cki];
    entries.extend(bad.iter().map(|(e, _)| e.clone()));
    entries.push(json!(42));
    let m = d.path("m.json");
    write(&m, &entries);
    let (code, out, err) = run(&["manifest", "list", &d.s("m.json"), "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let rows: Value = serde_json::from_str(&out).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), entries.len(), "every array member has a row: {out}");
    // The upper-case hex thumbprint is what Graph and the portal write: normal, not flagged.
    assert_eq!(rows[0]["status"], "valid");
    assert_eq!(rows[0]["thumbprint"], hex.as_str());
    assert_eq!(rows[0]["problems"], json!([]), "{}", rows[0]);
    assert_eq!(rows[1]["status"], "valid");
    assert_eq!(rows[1]["thumbprint"], other_hex.unwrap().as_str());
    assert!(rows[1]["problems"][0].as_str().unwrap().contains("hex thumbprint encoded as text"), "{}", rows[1]);
    for (i, (_, why)) in bad.iter().enumerate() {
        let r = &rows[i + 2];
        assert_eq!(r["status"], "unusable", "{r}");
        let problems: Vec<&str> = r["problems"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
        assert!(problems.iter().any(|p| p.contains(why)), "{why}: {problems:?}");
        // The existing fields are all still there.
        for f in ["keyId", "thumbprint", "displayName", "start", "end", "hasBody"] {
            assert!(r.get(f).is_some(), "{f} missing: {r}");
        }
    }
    let last = rows.last().unwrap();
    assert_eq!(last["status"], "unusable");
    assert!(last["problems"][0].as_str().unwrap().contains("a number, not a JSON object"), "{last}");
    // Text output shows the status and the problems.
    let (code, out, _) = run(&["manifest", "list", &d.s("m.json")]);
    assert_eq!(code, 0);
    assert!(out.contains("unusable"), "{out}");
    assert!(out.contains("is not base64"), "{out}");
}

#[test]
fn prune_does_not_count_unusable_entries_as_valid() {
    let d = TempDir::new("musable");
    let expired = json!({"keyId": uuid::Uuid::new_v4().to_string(), "type": "AsymmetricX509Cert", "usage": "Verify",
        "key": null, "customKeyIdentifier": "AAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "startDateTime": "2020-01-01T00:00:00Z", "endDateTime": "2021-01-01T00:00:00Z"});
    let (sym, _) = unusable_entries().remove(0);
    let m = d.path("m.json");
    write(&m, &[expired, sym]);
    let before = std::fs::read(&m).unwrap();
    let (code, _, err) = run(&["manifest", "prune", &d.s("m.json"), "--expired"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no currently valid certificate"), "{err}");
    assert_eq!(std::fs::read(&m).unwrap(), before);
}

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

/// Certificates no one can sign with (a public exponent of 0, 1 or 2^16, an even modulus, a
/// modulus over 8192 bits) are not valid certificates: refused by `manifest add`, listed
/// `unusable`, and not counted by the lock-out guard, so the only real certificate cannot go.
#[test]
fn rsa_keys_no_one_can_sign_with_are_unusable() {
    let d = TempDir::new("rsa-unusable");
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
        write(&d.path("one.json"), &[valid_entry(&real.cert)]);
        let before = std::fs::read(d.path("one.json")).unwrap();
        let (code, _, err) = run(&["manifest", "add", &d.s("one.json"), "--cert", pem.to_str().unwrap()]);
        assert_eq!(code, 2, "{name}: {err}");
        assert!(err.contains("unusable") && err.contains(why), "{name}: {err}");
        assert_eq!(std::fs::read(d.path("one.json")).unwrap(), before);
        entries.push(valid_entry(&cert));
    }
    let m = d.s("app.json");
    write(std::path::Path::new(&m), &entries);
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
