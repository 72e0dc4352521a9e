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
