//! Manifests as the portal and Graph write them (PROTOCOL.md sections 1, 2 and 8):
//!
//! - the portal's legacy editor wrote `displayName` into legacy entries; keycred then appended a
//!   Graph-shaped entry to a legacy manifest (the shape is told by date and body field names);
//! - Graph writes the upper-case hex SHA-1 as `customKeyIdentifier`; keycred flagged it, and
//!   wrote base64 in Graph-shaped entries where Graph writes hex;
//! - a manifest whose only keys occur in both shapes was guessed to be Graph-shaped.

use crate::common::{credential_for_days, keycred_command, openssl_fingerprint_hex, TempDir};
use serde_json::{json, Value};
use std::process::Output;

fn run(args: &[&str]) -> Output {
    keycred_command(args, &[]).output().unwrap()
}

fn ok_json(args: &[&str]) -> Value {
    let o = run(args);
    assert_eq!(o.status.code(), Some(0), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn entries(path: &std::path::Path) -> Vec<Value> {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["keyCredentials"].as_array().unwrap().clone()
}

#[test]
fn a_legacy_entry_with_display_name_keeps_the_manifest_legacy() {
    let t = TempDir::new("mportal-legacy");
    let old = credential_for_days("old", 200);
    std::fs::write(t.path("old.cer"), old.cert.to_pem()).unwrap();
    // As the portal's legacy editor wrote it (CRLF, a displayName inside a legacy entry).
    let manifest = format!(
        "{{\r\n\t\"appId\": \"6731de76-14a6-49ae-97bc-6eba6914391e\",\r\n\t\"keyCredentials\": [\r\n\t\t{{\r\n\t\t\t\"customKeyIdentifier\": \"{}\",\r\n\t\t\t\"displayName\": \"{}\",\r\n\t\t\t\"endDate\": \"2099-01-01T00:00:00Z\",\r\n\t\t\t\"keyId\": \"1b4e28ba-2fa1-11d2-883f-0016d3cca427\",\r\n\t\t\t\"startDate\": \"2020-01-01T00:00:00Z\",\r\n\t\t\t\"type\": \"AsymmetricX509Cert\",\r\n\t\t\t\"usage\": \"Verify\",\r\n\t\t\t\"value\": null\r\n\t\t}}\r\n\t],\r\n\t\"signInAudience\": \"AzureADMyOrg\"\r\n}}\r\n",
        old.cert.custom_key_identifier(),
        old.cert.subject()
    );
    std::fs::write(t.path("m.json"), &manifest).unwrap();
    let new = credential_for_days("new", 365);
    std::fs::write(t.path("new.cer"), new.cert.to_pem()).unwrap();
    let e = ok_json(&["manifest", "add", &t.s("m.json"), "--cert", &t.s("new.cer"), "-o", "json"]);
    // Legacy shape: value, startDate/endDate, base64 customKeyIdentifier, no displayName.
    for f in ["value", "startDate", "endDate"] {
        assert!(e.get(f).is_some(), "{f} missing: {e}");
    }
    for f in ["key", "startDateTime", "endDateTime", "displayName"] {
        assert!(e.get(f).is_none(), "{f} in a legacy entry: {e}");
    }
    assert_eq!(e["customKeyIdentifier"], new.cert.custom_key_identifier());
    let all = entries(&t.path("m.json"));
    assert_eq!(all.len(), 2);
    assert_eq!(all[1]["value"], e["value"]);
    // Asking for the other format is refused, naming the manifest's.
    let o = run(&["manifest", "add", &t.s("m.json"), "--cert", &t.s("old.cer"), "--format", "ms-graph"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("aad-graph"), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn the_hex_thumbprint_graph_writes_is_normal_and_matched_by_either_form() {
    let t = TempDir::new("mportal-hex");
    let c = credential_for_days("graph", 365);
    std::fs::write(t.path("c.cer"), c.cert.to_pem()).unwrap();
    let hex = openssl_fingerprint_hex(&t.s("c.cer"), &[], "sha1");
    assert_eq!(hex, c.cert.thumbprint());
    // What a portal download holds for a key Graph filled in: hex identifier, no body.
    let m = json!({
        "id": "0b6c8e1c-2f7e-4d36-9d2a-1c3e5f7a9b0d",
        "appId": "6731de76-14a6-49ae-97bc-6eba6914391e",
        "keyCredentials": [{
            "customKeyIdentifier": hex, "displayName": c.cert.subject(), "endDateTime": "2099-01-01T00:00:00Z",
            "key": null, "keyId": "1b4e28ba-2fa1-11d2-883f-0016d3cca427", "startDateTime": "2020-01-01T00:00:00Z",
            "type": "AsymmetricX509Cert", "usage": "Verify"
        }],
        "web": { "redirectUris": [] }
    });
    std::fs::write(t.path("m.json"), serde_json::to_string_pretty(&m).unwrap()).unwrap();
    let rows = ok_json(&["manifest", "list", &t.s("m.json"), "-o", "json"]);
    assert_eq!(rows[0]["thumbprint"], hex.as_str());
    assert_eq!(rows[0]["status"], "valid");
    assert_eq!(rows[0]["problems"], json!([]), "{rows}");
    // The same certificate is recognised whichever form names it.
    let o = run(&["manifest", "add", &t.s("m.json"), "--cert", &t.s("c.cer")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("already in keyCredentials"));
    for form in [hex.clone(), c.cert.custom_key_identifier(), c.cert.x5t()] {
        let v = ok_json(&[
            "manifest",
            "remove",
            &t.s("m.json"),
            "--thumbprint",
            &form,
            "--dry-run",
            "--force",
            "-o",
            "json",
        ]);
        assert_eq!(v[0]["keyId"], "1b4e28ba-2fa1-11d2-883f-0016d3cca427", "{form}: {v}");
    }
    // A new Graph-shaped entry carries hex, as Graph writes it.
    let other = credential_for_days("other", 365);
    std::fs::write(t.path("o.cer"), other.cert.to_pem()).unwrap();
    let e = ok_json(&["manifest", "add", &t.s("m.json"), "--cert", &t.s("o.cer"), "-o", "json"]);
    assert_eq!(e["customKeyIdentifier"], openssl_fingerprint_hex(&t.s("o.cer"), &[], "sha1"));
    assert!(e.get("key").is_some() && e.get("value").is_none(), "{e}");
}

#[test]
fn only_keys_both_shapes_have_asks_for_format() {
    let t = TempDir::new("mportal-ambiguous");
    let c = credential_for_days("c", 365);
    std::fs::write(t.path("c.cer"), c.cert.to_pem()).unwrap();
    let text = "{\n  \"id\": \"0b6c8e1c-2f7e-4d36-9d2a-1c3e5f7a9b0d\",\n  \"signInAudience\": \"AzureADMyOrg\",\n  \"requiredResourceAccess\": [],\n  \"keyCredentials\": []\n}\n";
    std::fs::write(t.path("m.json"), text).unwrap();
    let o = run(&["manifest", "add", &t.s("m.json"), "--cert", &t.s("c.cer")]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("id, signInAudience, requiredResourceAccess occur in both formats"), "{err}");
    assert!(err.contains("--format ms-graph"), "{err}");
    assert_eq!(std::fs::read_to_string(t.path("m.json")).unwrap(), text, "untouched");
    let e =
        ok_json(&["manifest", "add", &t.s("m.json"), "--cert", &t.s("c.cer"), "--format", "aad-graph", "-o", "json"]);
    assert!(e.get("value").is_some(), "{e}");
}
