//! `manifest remove --thumbprint T` removes the certificate whose body hashes to T: an entry with
//! a body is matched by the body's SHA-1 only, whatever its `customKeyIdentifier` says (anyone
//! may write any identifier on an entry of another certificate), and `customKeyIdentifier` names
//! only the entries without a body (a portal download's `"key": null`).

use crate::common::*;
use serde_json::{json, Value};

fn key_ids(path: &std::path::Path) -> Vec<String> {
    let m: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    m["keyCredentials"].as_array().unwrap().iter().map(|e| e["keyId"].as_str().unwrap().to_string()).collect()
}

fn remove(path: &std::path::Path, thumbprint: &str) -> std::process::Output {
    keycred_command(&["manifest", "remove", path.to_str().unwrap(), "--thumbprint", thumbprint], &[]).output().unwrap()
}

#[test]
fn a_thumbprint_selects_bodies_by_their_digest_and_only_bodiless_entries_by_identifier() {
    let dir = TempDir::new("remove-by-thumbprint");
    let (a, b, d) = (credential_for_days("A", 30), credential_for_days("B", 30), credential_for_days("D", 30));
    let (ta, td) = (a.cert.thumbprint(), d.cert.thumbprint());
    let entry_a = valid_entry(&a.cert);
    // B's certificate, with an identifier naming A's thumbprint.
    let mut entry_b = valid_entry(&b.cert);
    entry_b["customKeyIdentifier"] = json!(ta);
    // No body (as the portal downloads it), identified as D.
    let mut entry_c = valid_entry(&d.cert);
    entry_c["key"] = Value::Null;
    let ids: Vec<String> = [&entry_a, &entry_b, &entry_c].iter().map(|e| e["keyId"].as_str().unwrap().into()).collect();
    let m = dir.path("app.json");
    std::fs::write(
        &m,
        serde_json::to_string_pretty(&json!({"appId": APP_ID, "keyCredentials": [entry_a, entry_b, entry_c]})).unwrap(),
    )
    .unwrap();

    let o = remove(&m, &ta);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(key_ids(&m), vec![ids[1].clone(), ids[2].clone()], "only A's own entry goes; B's names A but is B");
    // B's identifier still says A: it does not make B removable as A.
    let o = remove(&m, &ta);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains(&format!("no keyCredentials entry with thumbprint {ta}")));
    assert_eq!(key_ids(&m), vec![ids[1].clone(), ids[2].clone()]);
    // The bodiless entry is named by its identifier.
    let o = remove(&m, &td);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(key_ids(&m), vec![ids[1].clone()]);
    // B by its body's digest (the last valid one: the lock-out guard needs --force).
    let o = keycred_command(
        &["manifest", "remove", m.to_str().unwrap(), "--thumbprint", &b.cert.thumbprint(), "--force"],
        &[],
    )
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(key_ids(&m).is_empty());
}
