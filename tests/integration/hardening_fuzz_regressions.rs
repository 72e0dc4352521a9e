//! Inputs found by the fuzz targets (`cargo xtask fuzz`), kept as regression tests. Each names
//! the target that found it and what it pins.

use keycred::cert::{generate, KeySize, NewCertificate, Validity};
use keycred::manifest::{entry_for, EntryOptions, Format, Manifest};

/// manifest_roundtrip, crash-590ca65e: a manifest object without `keyCredentials` (here the
/// legacy entry template, which fuzzing mutated into a manifest). `add` creates the array and
/// `remove` leaves it empty, so the bytes differ from the original by `"keyCredentials": []`
/// only; with an existing array, add then remove gives back the exact bytes.
#[test]
fn add_then_remove_without_key_credentials_leaves_only_an_empty_array() {
    let text = include_str!("../corpus/fuzz/manifest_roundtrip-no-keycredentials.json");
    let (cert, _) = generate(&NewCertificate {
        subject: "CN=fuzz regression".into(),
        key_size: KeySize::Rsa2048,
        validity: Validity::Days(30),
    })
    .unwrap();
    let m = Manifest::parse(text, "crash.json").unwrap();
    let format = m.detect_format().unwrap_or(Format::MsGraph);
    let added = m.add_entry(entry_for(&cert, format, &EntryOptions::default()).unwrap()).unwrap();
    let idx: Vec<usize> =
        added.credentials().iter().filter(|c| c.sha1() == Some(cert.sha1())).map(|c| c.index).collect();
    assert_eq!(idx.len(), 1);
    let removed = added.remove_indices(&idx).unwrap();
    let mut want: serde_json::Value = serde_json::from_str(text).unwrap();
    want["keyCredentials"] = serde_json::json!([]);
    assert_eq!(serde_json::from_str::<serde_json::Value>(removed.text()).unwrap(), want);
    // Once the array exists, the round trip is exact.
    let again = removed.add_entry(entry_for(&cert, format, &EntryOptions::default()).unwrap()).unwrap();
    let idx: Vec<usize> =
        again.credentials().iter().filter(|c| c.sha1() == Some(cert.sha1())).map(|c| c.index).collect();
    assert_eq!(again.remove_indices(&idx).unwrap().text(), removed.text());
}

/// manifest_roundtrip, crash-f714eb3a: `"keyCredentials":[ ]` (blanks inside an empty array).
/// Add then remove gives `[]`: the same JSON, the rest of the file byte for byte.
#[test]
fn add_then_remove_on_an_empty_array_with_blanks_keeps_the_rest_of_the_file() {
    let text = include_str!("../corpus/fuzz/manifest_roundtrip-empty-array-with-space.json");
    let (cert, _) = generate(&NewCertificate {
        subject: "CN=fuzz regression 2".into(),
        key_size: KeySize::Rsa2048,
        validity: Validity::Days(30),
    })
    .unwrap();
    let m = Manifest::parse(text, "crash.json").unwrap();
    let format = m.detect_format().unwrap_or(Format::AadGraph);
    let added = m.add_entry(entry_for(&cert, format, &EntryOptions::default()).unwrap()).unwrap();
    let idx: Vec<usize> =
        added.credentials().iter().filter(|c| c.sha1() == Some(cert.sha1())).map(|c| c.index).collect();
    let removed = added.remove_indices(&idx).unwrap();
    assert_eq!(removed.text(), text.replacen("\"keyCredentials\":[ ]", "\"keyCredentials\":[]", 1));
}
