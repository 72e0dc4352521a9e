//! Library-level tests of manifest editing: add then remove gives back the original bytes on both
//! sample formats, on layout variations and on inputs the fuzz targets found (`tests/corpus/fuzz/`);
//! refusals; concurrent edits of one file.

use keycred::cert::{generate, Certificate, KeySize, NewCertificate, Validity};
use keycred::manifest::{self, edit_file, entry_for, templates, EntryOptions, Format, Manifest, Selector};
use serde_json::{json, Value};
use std::sync::OnceLock;
use uuid::Uuid;

fn cert(n: usize) -> &'static Certificate {
    static CERTS: OnceLock<Vec<Certificate>> = OnceLock::new();
    &CERTS.get_or_init(|| {
        (0..4)
            .map(|i| {
                generate(&NewCertificate {
                    subject: format!("CN=manifest-test-{i}"),
                    key_size: KeySize::Rsa2048,
                    validity: Validity::Days(365),
                })
                .unwrap()
                .0
            })
            .collect()
    })[n]
}

fn tmpdir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("keycred-manifest-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn parsed(m: &Manifest) -> Value {
    serde_json::from_str(m.text().trim_start_matches('\u{feff}')).unwrap()
}

/// Adds an entry for cert 0, checks the new document is the old one plus the entry, removes it
/// by keyId, and returns the final text.
fn add_remove(text: &str, format: Format) -> (Manifest, String) {
    let m = Manifest::parse(text, "variation").unwrap();
    assert_eq!(m.detect_format(), Some(format), "{text:.80}");
    let e = entry_for(cert(0), format, &EntryOptions::default()).unwrap();
    let added = m.add_entry(e.clone()).unwrap();
    // Semantically: the same document with one more entry.
    let mut expect = parsed(&m);
    let obj = expect.as_object_mut().unwrap();
    match obj.get_mut("keyCredentials") {
        Some(Value::Array(a)) => a.push(Value::Object(e.clone())),
        _ => {
            obj.insert("keyCredentials".into(), json!([e.clone()]));
        }
    }
    assert_eq!(parsed(&added), expect);
    // Byte level: the original text is a prefix and a suffix around the inserted bytes.
    let (t0, t1) = (m.text(), added.text());
    let p = t0.bytes().zip(t1.bytes()).take_while(|(a, b)| a == b).count();
    let s = t0.bytes().rev().zip(t1.bytes().rev()).take_while(|(a, b)| a == b).count();
    assert!(p + s >= t0.len(), "only one region changed");
    let id = Uuid::parse_str(e["keyId"].as_str().unwrap()).unwrap();
    let removed = added.remove_entries(&[Selector::KeyId(id)]).unwrap();
    (added, removed.text().to_string())
}

fn reindent(text: &str, from: &str, to: &str) -> String {
    text.lines()
        .map(|l| {
            let n = l.len() - l.trim_start_matches(' ').len();
            format!("{}{}", to.repeat(n / from.len()), &l[n..])
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn downloaded_graph() -> String {
    // As the portal gives it: bodies null, dates with 7 fractional digits, large numbers, escapes.
    templates::MANIFEST_MS_GRAPH.replace(
        "  \"keyCredentials\": [],",
        r#"  "keyCredentials": [
    {
      "customKeyIdentifier": "0bTDJXIUvUkOwTLSNixNdCaJFb8=",
      "displayName": "CN=Caf\u00e9 \"old\" \u2713 é",
      "endDateTime": "2099-01-01T00:00:00.0000000Z",
      "key": null,
      "keyId": "1b4e28ba-2fa1-41d2-883f-0016d3cca427",
      "startDateTime": "2020-01-01T00:00:00Z",
      "type": "AsymmetricX509Cert",
      "usage": "Verify"
    }
  ],
  "big": 12345678901234567890,
  "bigger": 123456789012345678901234567890,
  "float": 1.0E+2,"#,
    )
}

#[test]
fn add_then_remove_is_byte_identical_on_templates_and_variations() {
    let g = templates::MANIFEST_MS_GRAPH;
    let a = templates::MANIFEST_AAD_GRAPH;
    let null_bodies = downloaded_graph();
    let many = {
        let entries: Vec<String> = (0..200)
            .map(|i| {
                format!(
                    "        {{\n            \"customKeyIdentifier\": \"{}\",\n            \"keyId\": \"{}\",\n            \"value\": null\n        }}",
                    keycred::thumbprint::b64(&[i as u8; 20]),
                    Uuid::new_v4()
                )
            })
            .collect();
        a.replace("\"keyCredentials\": [],", &format!("\"keyCredentials\": [\n{}\n    ],", entries.join(",\n")))
    };
    let cases: Vec<(&str, String, Format)> = vec![
        ("ms-graph template", g.to_string(), Format::MsGraph),
        ("aad-graph template", a.to_string(), Format::AadGraph),
        ("null bodies, big numbers, escapes", null_bodies.clone(), Format::MsGraph),
        ("CRLF", null_bodies.replace('\n', "\r\n"), Format::MsGraph),
        ("BOM", format!("\u{feff}{g}"), Format::MsGraph),
        ("BOM + CRLF", format!("\u{feff}{}", a.replace('\n', "\r\n")), Format::AadGraph),
        ("tabs", reindent(&null_bodies, "  ", "\t"), Format::MsGraph),
        ("4 spaces", reindent(&null_bodies, "  ", "    "), Format::MsGraph),
        ("200 entries", many, Format::AadGraph),
        ("minified", serde_json::to_string(&serde_json::from_str::<Value>(g).unwrap()).unwrap(), Format::MsGraph),
    ];
    for (name, text, format) in cases {
        let (added, back) = add_remove(&text, format);
        assert_eq!(back, text, "{name}: add then remove must give back the original bytes");
        let t = added.text();
        if text.contains("\r\n") {
            assert_eq!(t.matches('\n').count(), t.matches("\r\n").count(), "{name}: only CRLF line ends");
        }
        if text.starts_with('\u{feff}') {
            assert!(t.starts_with('\u{feff}'), "{name}: BOM kept");
        }
        if name == "tabs" {
            assert!(t.contains("\n\t\t\t\"customKeyIdentifier\": \""), "{name}: entry indented with tabs");
            assert!(!t.contains("\n  "), "{name}: no space indentation introduced");
        }
        if name == "4 spaces" {
            assert!(t.contains("\n            \"keyId\": \""), "{name}: entry fields at 12 spaces");
        }
        if name.starts_with("null bodies") {
            // The portal's entry survives byte for byte.
            assert!(t.contains(r#""displayName": "CN=Caf\u00e9 \"old\" \u2713 é","#));
            assert!(t.contains("\"big\": 12345678901234567890,\n  \"bigger\": 123456789012345678901234567890,"));
            assert!(t.contains("\"float\": 1.0E+2,"));
        }
    }
}

#[test]
fn missing_key_credentials_gets_the_array_and_removal_leaves_it_empty() {
    let g = templates::MANIFEST_MS_GRAPH.replace("  \"keyCredentials\": [],\n", "");
    let m = Manifest::parse(&g, "no-kc").unwrap();
    let e = entry_for(cert(0), Format::MsGraph, &EntryOptions::default()).unwrap();
    let added = m.add_entry(e.clone()).unwrap();
    assert_eq!(added.raw_entries(), &[Value::Object(e.clone())]);
    assert!(added.text().contains("  },\n  \"keyCredentials\": [\n    {\n      \"customKeyIdentifier\": "));
    // An empty array is what Graph holds for an app without certificates: removal keeps it, as
    // it does for manifests that had `[]` to begin with.
    let id = Uuid::parse_str(e["keyId"].as_str().unwrap()).unwrap();
    let back = added.remove_entries(&[Selector::KeyId(id)]).unwrap();
    let expect = g.trim_end().trim_end_matches('}').trim_end().to_string() + ",\n  \"keyCredentials\": []\n}\n";
    assert_eq!(back.text(), expect);
}

#[test]
fn entries_carry_the_certificate_values_and_refuse_bad_dates() {
    let c = cert(1);
    let id = Uuid::new_v4();
    let e = entry_for(c, Format::AadGraph, &EntryOptions { key_id: Some(id), ..Default::default() }).unwrap();
    let keys: Vec<&str> = e.keys().map(String::as_str).collect();
    assert_eq!(keys, ["customKeyIdentifier", "endDate", "keyId", "startDate", "type", "usage", "value"]);
    assert_eq!(e["keyId"], json!(id.to_string()));
    assert_eq!(e["value"], json!(keycred::thumbprint::b64(c.der())));
    assert_eq!(e["startDate"], json!(keycred::dates::format(c.not_before())));
    let e = entry_for(c, Format::MsGraph, &EntryOptions::default()).unwrap();
    assert_eq!(e["displayName"], json!("CN=manifest-test-1"));
    assert_eq!(Uuid::parse_str(e["keyId"].as_str().unwrap()).unwrap().get_version_num(), 4);
    let before = c.not_before() - time::Duration::days(1);
    let err = entry_for(c, Format::MsGraph, &EntryOptions { start: Some(before), ..Default::default() }).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    // The library names the input in its own words (the command line names its option).
    assert!(
        err.message().contains("the entry's start date")
            && err.message().contains("outside the certificate's validity")
    );
    let after = c.not_after() + time::Duration::seconds(1);
    let err = entry_for(c, Format::AadGraph, &EntryOptions { end: Some(after), ..Default::default() }).unwrap_err();
    assert!(err.message().contains("the entry's end date"));
    let expired = generate(&NewCertificate {
        subject: "CN=expired".into(),
        key_size: KeySize::Rsa2048,
        validity: Validity::Range(
            keycred::dates::parse("2020-01-01", "t").unwrap(),
            keycred::dates::parse("2021-01-01", "t").unwrap(),
        ),
    })
    .unwrap()
    .0;
    let err = entry_for(&expired, Format::MsGraph, &EntryOptions::default()).unwrap_err();
    assert!(err.message().contains("expired on 2021-01-01T00:00:00Z"), "{}", err.message());
}

#[test]
fn duplicates_and_format_mismatches_are_refused() {
    let m = Manifest::parse(&downloaded_graph(), "m").unwrap();
    let e = entry_for(cert(2), Format::MsGraph, &EntryOptions::default()).unwrap();
    let m2 = m.add_entry(e.clone()).unwrap();
    // Same certificate, new keyId.
    let again = entry_for(cert(2), Format::MsGraph, &EntryOptions::default()).unwrap();
    assert!(m2.add_entry(again).unwrap_err().message().contains("already in keyCredentials"));
    // Same keyId as the portal's null-body entry, other certificate.
    let id = Uuid::parse_str("1b4e28ba-2fa1-41d2-883f-0016d3cca427").unwrap();
    let dup = entry_for(cert(3), Format::MsGraph, &EntryOptions { key_id: Some(id), ..Default::default() }).unwrap();
    assert!(m.add_entry(dup).unwrap_err().message().contains("keyId 1b4e28ba-2fa1-41d2-883f-0016d3cca427"));
    // The null-body entry is found by its customKeyIdentifier in any thumbprint form.
    let hex = "d1:b4:c3:25:72:14:bd:49:0e:c1:32:d2:36:2c:4d:74:26:89:15:bf";
    assert_eq!(m.find(&Selector::thumbprint(hex).unwrap()).len(), 1);
    assert_eq!(m.find(&Selector::thumbprint("0bTDJXIUvUkOwTLSNixNdCaJFb8").unwrap()).len(), 1);
    // Legacy entry into a Graph manifest.
    let legacy = entry_for(cert(3), Format::AadGraph, &EntryOptions::default()).unwrap();
    assert!(m.add_entry(legacy).unwrap_err().message().contains("ms-graph format"));
    // Absent entries.
    let err = m.remove_entries(&[Selector::KeyId(Uuid::new_v4())]).unwrap_err();
    assert_eq!(err.exit_code(), 2);
}

#[test]
fn list_rows_have_statuses_and_stable_names() {
    let now = keycred::dates::parse("2026-06-01", "t").unwrap();
    let entry = |id: u8, start: &str, end: &str| {
        json!({"customKeyIdentifier": keycred::thumbprint::b64(&[id; 20]), "keyId": Uuid::from_bytes([id; 16]).to_string(),
               "startDate": start, "endDate": end, "value": null})
    };
    let m = Manifest::parse("{\"objectId\": \"x\", \"keyCredentials\": []}", "m").unwrap();
    let m = m
        .replace_key_credentials(&[
            entry(1, "2025-01-01T00:00:00Z", "2027-01-01T00:00:00Z"),
            entry(2, "2025-01-01T00:00:00Z", "2026-01-01T00:00:00Z"),
            entry(3, "2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z"),
            entry(4, "2025-01-01T00:00:00Z", "2026-06-20T00:00:00Z"),
        ])
        .unwrap();
    let rows = serde_json::to_value(m.list(now)).unwrap();
    let status: Vec<&str> = rows.as_array().unwrap().iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(status, ["valid", "expired", "not_yet_valid", "expiring"]);
    assert_eq!(
        rows[0],
        json!({"keyId": "01010101-0101-0101-0101-010101010101", "thumbprint": "0101010101010101010101010101010101010101",
               "displayName": null, "start": "2025-01-01T00:00:00Z", "end": "2027-01-01T00:00:00Z",
               "status": "valid", "hasBody": false, "problems": []})
    );
    // Removing both valid entries (one is expiring) is a lock-out; removing an expired one is not.
    let only_valid = m
        .remove_entries(&[Selector::KeyId(Uuid::from_bytes([1; 16])), Selector::KeyId(Uuid::from_bytes([4; 16]))])
        .unwrap();
    assert_eq!(only_valid.raw_entries().len(), 2);
    assert!(m.ensure_not_locked_out(&only_valid, now).is_err());
    let expired_gone = m.remove_indices(&[1]).unwrap();
    assert!(m.ensure_not_locked_out(&expired_gone, now).is_ok());
    assert_eq!(manifest::entry_format(m.raw_entries()[0].as_object().unwrap()), Some(Format::AadGraph));
}

#[test]
fn concurrent_edits_of_one_file_keep_every_entry() {
    let dir = tmpdir();
    let path = dir.join("m.json");
    std::fs::write(&path, templates::MANIFEST_AAD_GRAPH).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let path = path.clone();
            std::thread::spawn(move || {
                let e = entry_for(cert(i), Format::AadGraph, &EntryOptions::default()).unwrap();
                edit_file(&path, |m| m.add_entry(e.clone())).unwrap().written
            })
        })
        .collect();
    for t in threads {
        assert!(t.join().unwrap());
    }
    let m = Manifest::load(&path).unwrap();
    let mut got: Vec<String> = m.credentials().iter().map(|c| c.custom_key_identifier.clone().unwrap()).collect();
    let mut want: Vec<String> = (0..4).map(|i| cert(i).custom_key_identifier()).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    // Lock released, no temporary files left.
    let names: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["m.json"]);
    // An edit that changes nothing does not write.
    let before = std::fs::metadata(&path).unwrap().modified().unwrap();
    assert!(!edit_file(&path, |m| Ok(m.clone())).unwrap().written);
    assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), before);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A manifest object without `keyCredentials` (the legacy entry template, which the
/// manifest_roundtrip fuzz target mutated into a manifest: crash-590ca65e in
/// `tests/corpus/fuzz/`). `add` creates the array and `remove` leaves it empty, so the bytes
/// differ from the original by `"keyCredentials": []` only, which remove cannot know it should
/// undo; with an existing array, add then remove gives back the exact bytes.
#[test]
fn add_then_remove_without_key_credentials_leaves_only_an_empty_array() {
    let text = include_str!("../corpus/fuzz/manifest_roundtrip-no-keycredentials.json");
    let cert = cert(0);
    let m = Manifest::parse(text, "crash.json").unwrap();
    let format = m.detect_format().unwrap_or(Format::MsGraph);
    let added = m.add_entry(entry_for(cert, format, &EntryOptions::default()).unwrap()).unwrap();
    let idx: Vec<usize> =
        added.credentials().iter().filter(|c| c.sha1() == Some(cert.sha1())).map(|c| c.index).collect();
    assert_eq!(idx.len(), 1);
    let removed = added.remove_indices(&idx).unwrap();
    let mut want: Value = serde_json::from_str(text).unwrap();
    want["keyCredentials"] = json!([]);
    assert_eq!(serde_json::from_str::<Value>(removed.text()).unwrap(), want);
    // Once the array exists, the round trip is exact.
    let again = removed.add_entry(entry_for(cert, format, &EntryOptions::default()).unwrap()).unwrap();
    let idx: Vec<usize> =
        again.credentials().iter().filter(|c| c.sha1() == Some(cert.sha1())).map(|c| c.index).collect();
    assert_eq!(again.remove_indices(&idx).unwrap().text(), removed.text());
}

/// `"keyCredentials":[ ]`, blanks inside an empty array (found by the manifest_roundtrip fuzz
/// target, crash-f714eb3a).
/// Add then remove gives `[]`: the same JSON, the rest of the file byte for byte.
#[test]
fn add_then_remove_on_an_empty_array_with_blanks_keeps_the_rest_of_the_file() {
    let text = include_str!("../corpus/fuzz/manifest_roundtrip-empty-array-with-space.json");
    let cert = cert(0);
    let m = Manifest::parse(text, "crash.json").unwrap();
    let format = m.detect_format().unwrap_or(Format::AadGraph);
    let added = m.add_entry(entry_for(cert, format, &EntryOptions::default()).unwrap()).unwrap();
    let idx: Vec<usize> =
        added.credentials().iter().filter(|c| c.sha1() == Some(cert.sha1())).map(|c| c.index).collect();
    let removed = added.remove_indices(&idx).unwrap();
    assert_eq!(removed.text(), text.replacen("\"keyCredentials\":[ ]", "\"keyCredentials\":[]", 1));
}
