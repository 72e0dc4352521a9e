//! `keycred manifest ...` end to end: entries checked against openssl, every refusal leaves the
//! file byte-identical with exit 2, concurrent `add` processes keep every entry.

use crate::common;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use common::keycred_command;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;
use uuid::Uuid;

const MS_GRAPH: &str = include_str!("../../templates/manifest-ms-graph.json");
const AAD_GRAPH: &str = include_str!("../../templates/manifest-aad-graph.json");

struct Dir(PathBuf);
impl Dir {
    fn new() -> Dir {
        let d = std::env::temp_dir().join(format!("keycred-mcli-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
    fn p(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.p(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(args: &[&str]) -> Output {
    keycred_command(args, &[]).output().unwrap()
}

fn ok_json(args: &[&str]) -> Value {
    let o = run(args);
    assert_eq!(o.status.code(), Some(0), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `keycred new` in `dir`; returns the certificate path.
fn new_cert(dir: &Dir, name: &str, extra: &[&str]) -> PathBuf {
    let mut args = vec!["new", "--name", name, "--out-dir", s(&dir.0)];
    args.extend_from_slice(extra);
    let o = run(&args);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    dir.p(&format!("{name}.cer"))
}

fn openssl(args: &[&str]) -> Vec<u8> {
    common::openssl(args).stdout
}

/// base64 of the bytes of `openssl x509 -fingerprint -sha1`.
fn openssl_cki(cert: &Path) -> String {
    let out = String::from_utf8(openssl(&["x509", "-in", s(cert), "-noout", "-fingerprint", "-sha1"])).unwrap();
    let hex = out.trim().split('=').nth(1).unwrap().replace(':', "");
    let bytes: Vec<u8> = (0..20).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap()).collect();
    STANDARD.encode(bytes)
}

fn openssl_hex(cert: &Path) -> String {
    let out = String::from_utf8(openssl(&["x509", "-in", s(cert), "-noout", "-fingerprint", "-sha1"])).unwrap();
    out.trim().split('=').nth(1).unwrap().to_string()
}

fn openssl_der_b64(cert: &Path) -> String {
    STANDARD.encode(openssl(&["x509", "-in", s(cert), "-outform", "DER"]))
}

/// Runs a command expected to be refused: exit 2, message containing `needle`, file untouched.
fn refused(file: &Path, args: &[&str], needle: &str) {
    let before = std::fs::read(file).unwrap();
    let o = run(args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    assert!(err.contains(needle), "{args:?}: expected '{needle}' in: {err}");
    assert_eq!(std::fs::read(file).unwrap(), before, "{args:?} changed the file");
    assert!(!Path::new(&format!("{}.lock", file.display())).exists(), "lock left behind");
}

#[test]
fn added_entries_match_openssl_and_remove_restores_the_bytes() {
    let d = Dir::new();
    let cert = new_cert(&d, "app", &[]);
    for (name, template, body, start) in
        [("g.json", MS_GRAPH, "key", "startDateTime"), ("a.json", AAD_GRAPH, "value", "startDate")]
    {
        let m = d.write(name, template);
        let e = ok_json(&["manifest", "add", s(&m), "--cert", s(&cert), "-o", "json"]);
        // Hex in Graph entries (as Graph writes it), base64 of the SHA-1 in legacy ones.
        let cki = if body == "key" { openssl_hex(&cert).replace(':', "") } else { openssl_cki(&cert) };
        assert_eq!(e["customKeyIdentifier"].as_str().unwrap(), cki);
        assert_eq!(e[body].as_str().unwrap(), openssl_der_b64(&cert));
        assert_eq!(e["type"], "AsymmetricX509Cert");
        assert_eq!(e["usage"], "Verify");
        let key_id = Uuid::parse_str(e["keyId"].as_str().unwrap()).unwrap();
        assert_eq!(key_id.get_version_num(), 4);
        // The start is the certificate's notBefore as openssl prints it.
        let nb = String::from_utf8(openssl(&["x509", "-in", s(&cert), "-noout", "-startdate", "-dateopt", "iso_8601"]))
            .unwrap();
        assert_eq!(e[start].as_str().unwrap(), nb.trim().strip_prefix("notBefore=").unwrap().replace(' ', "T"));
        // The file holds exactly that entry.
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&m).unwrap()).unwrap();
        assert_eq!(doc["keyCredentials"], Value::Array(vec![e.clone()]));
        let rows = ok_json(&["manifest", "list", s(&m), "-o", "json"]);
        assert_eq!(rows[0]["thumbprint"].as_str().unwrap(), openssl_hex(&cert).replace(':', ""));
        assert_eq!(rows[0]["keyId"].as_str().unwrap(), key_id.to_string());
        assert_eq!(rows[0]["status"], "valid");
        assert_eq!(rows[0]["hasBody"], true);
        // Removing the only valid certificate needs --force.
        refused(&m, &["manifest", "remove", s(&m), "--key-id", &key_id.to_string()], "last currently valid");
        let removed = ok_json(&["manifest", "remove", s(&m), "--key-id", &key_id.to_string(), "--force", "-o", "json"]);
        assert_eq!(removed[0]["keyId"].as_str().unwrap(), key_id.to_string());
        assert_eq!(std::fs::read_to_string(&m).unwrap(), template);
    }
}

#[test]
fn thumbprints_in_any_form_select_entries() {
    let d = Dir::new();
    let certs: Vec<PathBuf> = (0..3).map(|i| new_cert(&d, &format!("c{i}"), &[])).collect();
    let original = MS_GRAPH.replace('\n', "\r\n");
    let m = d.write("m.json", &original);
    let mut ids = Vec::new();
    for c in &certs {
        ids.push(ok_json(&["manifest", "add", s(&m), "--cert", s(c), "-o", "json"])["keyId"].clone());
    }
    let hex_lower_colons = openssl_hex(&certs[0]).to_lowercase();
    let x5t = openssl_cki(&certs[1]).trim_end_matches('=').replace('+', "-").replace('/', "_");
    let removed =
        ok_json(&["manifest", "remove", s(&m), "--thumbprint", &hex_lower_colons, "--thumbprint", &x5t, "-o", "json"]);
    let got: Vec<&Value> = removed.as_array().unwrap().iter().map(|r| &r["keyId"]).collect();
    assert_eq!(got, [&ids[0], &ids[1]]);
    let cki = openssl_cki(&certs[2]);
    ok_json(&["manifest", "remove", s(&m), "--thumbprint", &cki, "--force", "-o", "json"]);
    assert_eq!(std::fs::read_to_string(&m).unwrap(), original);
}

#[test]
fn every_refusal_leaves_the_file_untouched() {
    let d = Dir::new();
    let cert = new_cert(&d, "app", &[]);
    let c = s(&cert).to_string();
    let expired = new_cert(&d, "old", &["--not-before", "2020-01-01", "--not-after", "2021-01-01"]);
    openssl(
        &["req", "-x509", "-newkey", "rsa:1024", "-nodes", "-subj", "/CN=weak", "-days", "30", "-keyout"]
            .into_iter()
            .chain([s(&d.p("weak.key")), "-out", s(&d.p("weak.cer"))])
            .collect::<Vec<_>>(),
    );
    openssl(
        &["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=ec"]
            .into_iter()
            .chain(["-days", "30", "-keyout", s(&d.p("ec.key")), "-out", s(&d.p("ec.cer"))])
            .collect::<Vec<_>>(),
    );
    let m = d.write("m.json", MS_GRAPH);
    let mp = s(&m).to_string();
    let e = ok_json(&["manifest", "add", &mp, "--cert", &c, "-o", "json"]);
    let id = e["keyId"].as_str().unwrap().to_string();
    let other = new_cert(&d, "other", &[]);
    let o = s(&other).to_string();

    refused(&m, &["manifest", "add", &mp, "--cert", &c], "already in keyCredentials");
    refused(&m, &["manifest", "add", &mp, "--cert", &o, "--key-id", &id], "already used");
    refused(&m, &["manifest", "add", &mp, "--cert", s(&expired)], "expired on 2021-01-01");
    refused(&m, &["manifest", "add", &mp, "--cert", s(&d.p("weak.cer"))], "1024 bits");
    refused(&m, &["manifest", "add", &mp, "--cert", s(&d.p("ec.cer"))], "not RSA");
    refused(&m, &["manifest", "add", &mp, "--cert", &o, "--start", "2000-01-01"], "outside the certificate's validity");
    refused(&m, &["manifest", "add", &mp, "--cert", &o, "--end", "2199-01-01"], "outside the certificate's validity");
    refused(&m, &["manifest", "add", &mp, "--cert", &o, "--key-id", "nope"], "not a UUID");
    refused(&m, &["manifest", "add", &mp, "--cert", &o, "--format", "aad-graph"], "ms-graph format");
    refused(&m, &["manifest", "remove", &mp, "--key-id", &Uuid::new_v4().to_string()], "no keyCredentials entry");
    refused(&m, &["manifest", "remove", &mp, "--thumbprint", "ABCD"], "not a SHA-1 thumbprint");
    // A base64url thumbprint may start with '-': it is a value, not an unknown flag.
    refused(
        &m,
        &["manifest", "remove", &mp, "--thumbprint", "-Ze6vZe-wCQTTnl2_zKJm3Z1ZXw"],
        "F997BABD97BEC024134E7976FF32899B7675657C",
    );
    refused(&m, &["manifest", "remove", &mp, "--key-id", &id], "last currently valid");

    let bad = d.write("bad.json", "{\n  \"appId\": \"x\",\n  \"keyCredentials\": [\n}\n");
    refused(&bad, &["manifest", "add", s(&bad), "--cert", &o, "--format", "ms-graph"], "line 4 column 1");
    let obj = d.write("obj.json", "{\"id\": \"x\", \"keyCredentials\": {}}");
    refused(&obj, &["manifest", "add", s(&obj), "--cert", &o], "keyCredentials is not an array");
    let unknown = d.write("unknown.json", "{\"appId\": \"x\"}");
    refused(&unknown, &["manifest", "add", s(&unknown), "--cert", &o], "--format");
    // With --format it works and creates the array.
    let e = ok_json(&["manifest", "add", s(&unknown), "--cert", &o, "--format", "aad-graph", "-o", "json"]);
    assert!(e.get("value").is_some());
    let doc: Value = serde_json::from_slice(&std::fs::read(&unknown).unwrap()).unwrap();
    assert_eq!(doc["keyCredentials"][0], e);

    let missing = d.p("missing.json");
    let out = run(&["manifest", "remove", s(&missing), "--key-id", &id]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.json"));
    assert!(!missing.exists() && !d.p("missing.json.lock").exists());

    // --dry-run writes nothing but says what it would add.
    let before = std::fs::read(&m).unwrap();
    let out = run(&["manifest", "add", &mp, "--cert", &o, "--dry-run"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("would add certificate"));
    assert_eq!(std::fs::read(&m).unwrap(), before);
}

#[test]
fn prune_removes_expired_entries_only() {
    let d = Dir::new();
    let cert = new_cert(&d, "app", &[]);
    let expired_entry = r#"{
      "customKeyIdentifier": "AAAAAAAAAAAAAAAAAAAAAAAAAAA=",
      "endDate": "2021-01-01T00:00:00Z",
      "keyId": "00000000-0000-4000-8000-000000000001",
      "startDate": "2020-01-01T00:00:00Z",
      "type": "AsymmetricX509Cert",
      "usage": "Verify",
      "value": null
    }"#;
    let only_expired = AAD_GRAPH
        .replace("\"keyCredentials\": [],", &format!("\"keyCredentials\": [\n        {expired_entry}\n    ],"));
    let m = d.write("m.json", &only_expired);
    // Nothing valid would be left: refused without --force.
    refused(&m, &["manifest", "prune", s(&m), "--expired"], "no currently valid certificate");
    ok_json(&["manifest", "add", s(&m), "--cert", s(&cert), "-o", "json"]);
    let with_new = std::fs::read(&m).unwrap();
    let dry = ok_json(&["manifest", "prune", s(&m), "--expired", "--dry-run", "-o", "json"]);
    assert_eq!(dry[0]["status"], "expired");
    assert_eq!(std::fs::read(&m).unwrap(), with_new);
    let pruned = ok_json(&["manifest", "prune", s(&m), "--expired", "-o", "json"]);
    assert_eq!(pruned.as_array().unwrap().len(), 1);
    assert_eq!(pruned[0]["keyId"], "00000000-0000-4000-8000-000000000001");
    let rows = ok_json(&["manifest", "list", s(&m), "-o", "json"]);
    assert_eq!(rows.as_array().unwrap().len(), 1);
    assert_eq!(rows[0]["thumbprint"].as_str().unwrap(), openssl_hex(&cert).replace(':', ""));
    // Nothing left to prune: success, nothing written.
    let after = std::fs::read(&m).unwrap();
    assert_eq!(ok_json(&["manifest", "prune", s(&m), "--expired", "-o", "json"]), Value::Array(vec![]));
    assert_eq!(std::fs::read(&m).unwrap(), after);
}

#[test]
fn entry_command_prints_both_formats() {
    let d = Dir::new();
    let cert = new_cert(&d, "app", &["--subject", "CN=MyCompanyName MyAppName Cert, O=Contoso, C=FR"]);
    let id = Uuid::new_v4().to_string();
    let g = ok_json(&["manifest", "entry", "--cert", s(&cert), "--key-id", &id, "-o", "json"]);
    let keys: Vec<&str> = g.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["customKeyIdentifier", "displayName", "endDateTime", "key", "keyId", "startDateTime", "type", "usage"]
    );
    assert_eq!(g["keyId"], id.as_str());
    assert_eq!(g["key"].as_str().unwrap(), openssl_der_b64(&cert));
    assert!(g["displayName"].as_str().unwrap().contains("CN=MyCompanyName MyAppName Cert"));
    let a = ok_json(&["manifest", "entry", "--cert", s(&cert), "--format", "aad-graph", "-o", "json"]);
    assert_eq!(a["customKeyIdentifier"].as_str().unwrap(), openssl_cki(&cert));
    assert_eq!(a["value"].as_str().unwrap(), openssl_der_b64(&cert));
    assert!(a.get("displayName").is_none());
}

#[test]
fn concurrent_add_processes_keep_every_entry_and_the_mode() {
    let d = Dir::new();
    let certs: Vec<PathBuf> = (0..4).map(|i| new_cert(&d, &format!("c{i}"), &[])).collect();
    let m = d.write("m.json", MS_GRAPH);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&m, std::fs::Permissions::from_mode(0o640)).unwrap();
    }
    // One after the other on `m` (mode check), all at once on `m2` (lock check).
    for c in &certs {
        ok_json(&["manifest", "add", s(&m), "--cert", s(c), "-o", "json"]);
    }
    let m2 = d.write("m2.json", MS_GRAPH);
    let spawned: Vec<_> = certs
        .iter()
        .map(|c| {
            keycred_command(&["manifest", "add", s(&m2), "--cert", s(c), "-o", "json"], &[])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in spawned {
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    }
    for file in [&m, &m2] {
        let rows = ok_json(&["manifest", "list", s(file), "-o", "json"]);
        let mut got: Vec<String> =
            rows.as_array().unwrap().iter().map(|r| r["thumbprint"].as_str().unwrap().to_string()).collect();
        let mut want: Vec<String> = certs.iter().map(|c| openssl_hex(c).replace(':', "")).collect();
        got.sort();
        want.sort();
        assert_eq!(got, want);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&m).unwrap().permissions().mode() & 0o777, 0o640);
    }
    assert!(!d.p("m2.json.lock").exists());
}
