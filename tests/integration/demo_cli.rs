//! `keycred demo` as a user runs it: every headed step, the final refusal with AADSTS700027,
//! one JSON document with `-o json`, the files kept with `--keep` and said where, and each step's
//! equivalent `keycred` command line, which a user can copy.

use crate::rotation_support as support;

use support::*;

const TITLES: [&str; 10] = [
    "Generate a certificate",
    "Add it to a starter app manifest asking for the Office 365 Management API roles",
    "Start the Entra emulator",
    "Before consent: a token, but no roles",
    "An administrator consents through the consent URL",
    "keycred check through the v1",
    "keycred check through the v2",
    "Decode the access token (v1",
    "Rotate: add a second certificate, verify it, remove the first",
    "A request signed with the removed certificate is refused",
];

#[test]
fn demo_text_shows_every_step() {
    let out = cli(&["demo"], &[]);
    assert_eq!(out.code, 0, "{out:?}");
    let heads: Vec<&str> = out.stdout.lines().filter(|l| l.starts_with("== ")).collect();
    assert_eq!(heads.len(), TITLES.len(), "{}", out.stdout);
    for (i, (h, t)) in heads.iter().zip(TITLES).enumerate() {
        assert!(h.starts_with(&format!("== {}. {t}", i + 1)), "{h}");
    }
    assert!(!out.stdout.contains("[FAIL]") && !out.stdout.contains("UNEXPECTED"), "{}", out.stdout);
    let last = out.stdout.split("== 10.").nth(1).unwrap();
    assert!(last.contains("refused as expected") && last.contains("AADSTS700027"), "{last}");
    assert!(out.stdout.contains("roles       ActivityFeed.Read, ServiceHealth.Read"), "{}", out.stdout);
    assert!(out.stdout.contains("signature   valid (emulator key)"), "{}", out.stdout);
    // The Office 365 story: no roles before consent, the consent URL followed, tid read back.
    let before = out.stdout.split("== 4.").nth(1).unwrap().split("== 5.").next().unwrap();
    assert!(before.contains("roles       (none)"), "{before}");
    let consent = out.stdout.split("== 5.").nth(1).unwrap().split("== 6.").next().unwrap();
    assert!(
        consent.contains("/common/oauth2/authorize?response_type=code&resource=https%3A%2F%2Fmanage.office.com"),
        "{consent}"
    );
    assert!(consent.contains("prompt=admin_consent") && consent.contains("admin_consent True"), "{consent}");
    assert!(consent.contains("code exchanged at /common: tid "), "{consent}");
    assert!(
        out.stdout.contains("aud         https://manage.office.com") && out.stdout.contains("ver         1.0"),
        "{}",
        out.stdout
    );
}

#[test]
fn demo_json_is_one_document_and_keep_keeps_the_second_certificate() {
    let dir = TempDir::new("rot-test");
    let keep = dir.path("kept");
    let out = cli(&["demo", "-o", "json", "--keep", &keep.display().to_string()], &[]);
    assert_eq!(out.code, 0, "{out:?}");
    let j = out.json();
    assert_eq!(j["kept"], true);
    assert_eq!(j["directory"], keep.display().to_string());
    let steps = j["steps"].as_array().unwrap();
    assert_eq!(steps.len(), TITLES.len());
    for (i, (s, t)) in steps.iter().zip(TITLES).enumerate() {
        assert_eq!(s["step"], i + 1);
        assert!(s["title"].as_str().unwrap().starts_with(t), "{s}");
        assert!(!s["lines"].as_array().unwrap().is_empty(), "{s}");
    }
    assert!(steps[9]["lines"][0].as_str().unwrap().contains("AADSTS700027"), "{}", steps[9]);
    // The manifest holds exactly the second certificate, whose thumbprint openssl agrees on.
    let manifest = keep.join("manifest.json");
    let entries = entries_of(&manifest);
    assert_eq!(entries.len(), 1, "{entries:?}");
    let o = std::process::Command::new("/usr/bin/openssl")
        .args(["x509", "-in", &keep.join("demo-app-2.cer").display().to_string(), "-noout", "-fingerprint", "-sha1"])
        .output()
        .unwrap();
    let hex = String::from_utf8(o.stdout).unwrap().trim().rsplit('=').next().unwrap().replace(':', "");
    let cki = entries[0]["customKeyIdentifier"].as_str().unwrap();
    assert_eq!(keycred::thumbprint::hex_upper(&keycred::thumbprint::parse_sha1(cki).unwrap()), hex);
    for f in ["demo-app-1.key", "demo-app-1.pem", "demo-app-2.key", "demo-app-2.pem", "demo-app-2.cer"] {
        assert!(keep.join(f).is_file(), "{f} missing");
    }
    // The kept files work with the CLI: the second certificate is the manifest's.
    let m = manifest.display().to_string();
    let out = cli(&["manifest", "list", &m, "-o", "json"], &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()[0]["thumbprint"], hex);
}

#[test]
fn keep_refuses_to_overwrite_an_earlier_demo_unless_forced() {
    let dir = TempDir::new("rot-test");
    let keep = dir.path("kept");
    let k = keep.display().to_string();
    let out = cli(&["demo", "-o", "json", "--keep", &k], &[]);
    assert_eq!(out.code, 0, "{out:?}");
    let first = snapshot(&keep);
    // A second run would overwrite manifest.json and the keys: refused, nothing touched.
    let out = cli(&["demo", "-o", "json", "--keep", &k], &[]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("manifest.json") && out.stderr.contains("demo-app-1.key"), "{}", out.stderr);
    assert!(out.stderr.contains("--force"), "{}", out.stderr);
    assert_eq!(snapshot(&keep), first);
    // One leftover file is enough to refuse.
    let lone = dir.path("lone");
    std::fs::create_dir(&lone).unwrap();
    std::fs::write(lone.join("demo-app-2.cer"), "mine").unwrap();
    let out = cli(&["demo", "--keep", &lone.display().to_string()], &[]);
    assert_eq!(out.code, 2, "{out:?}");
    assert_eq!(std::fs::read_to_string(lone.join("demo-app-2.cer")).unwrap(), "mine");
    assert_eq!(std::fs::read_dir(&lone).unwrap().count(), 1);
    // --force replaces them: a new manifest holding a new second certificate.
    let out = cli(&["demo", "-o", "json", "--keep", &k, "--force"], &[]);
    assert_eq!(out.code, 0, "{out:?}");
    let after = snapshot(&keep);
    assert_eq!(after.keys().collect::<Vec<_>>(), first.keys().collect::<Vec<_>>());
    assert_ne!(after[&keep.join("manifest.json")], first[&keep.join("manifest.json")]);
    assert_ne!(after[&keep.join("demo-app-2.key")], first[&keep.join("demo-app-2.key")]);
}

#[test]
fn keep_on_a_file_or_force_without_keep_is_refused_with_true_hints() {
    let dir = TempDir::new("rot-test");
    let file = dir.path("somefile");
    std::fs::write(&file, "content").unwrap();
    let out = cli(&["demo", "--keep", &file.display().to_string()], &[]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("not a directory"), "{}", out.stderr);
    // --force would not help: the hint must not offer it.
    assert!(!out.stderr.contains("--force"), "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "content");
    let out = cli(&["demo", "--force"], &[]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("--keep"), "{}", out.stderr);
}

/// Regression: a closed stdout made the CLI call `process::exit(0)`, so the demo's temporary
/// directory (removed by its destructor) stayed behind. Now the demo stops at its next step and
/// returns to `main`, which exits 0.
#[test]
fn demo_piped_into_a_closed_reader_exits_0_and_removes_its_temporary_directory() {
    use std::io::{BufRead, BufReader};
    let tmp = TempDir::new("demo-pipe");
    let mut cmd = keycred_command(&["demo"], &[("TMPDIR", &tmp.s(""))]);
    cmd.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    // Read the first lines, as `keycred demo | head -3` would, then close the pipe.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    for _ in 0..3 {
        stdout.read_line(&mut first).unwrap();
    }
    assert!(first.contains("== 1. Generate a certificate"), "{first}");
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "no error for a closed pipe: {}", String::from_utf8_lossy(&out.stderr));
    let left: Vec<_> = std::fs::read_dir(tmp.path("")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "the temporary directory was removed: {left:?}");
}

/// Runs a printed command line in `sh`, with `from` (the demo's directory) replaced by `to`.
fn run_printed(line: &str, from: &str, to: &str) -> std::process::Output {
    let bin_dir = std::path::Path::new(KEYCRED).parent().unwrap().display().to_string();
    std::process::Command::new("sh")
        .args(["-euc", &line.replace(from, to)])
        .env("PATH", format!("{bin_dir}:{}", std::env::var("PATH").unwrap_or_default()))
        .output()
        .unwrap()
}

#[test]
fn demo_prints_each_steps_command_line_and_where_the_files_are() {
    let dir = TempDir::new("demo-commands");
    let keep = dir.s("kept");
    let out = cli(&["demo", "-o", "json", "--keep", &keep], &[]);
    assert_eq!(out.code, 0, "{out:?}");
    let j = out.json();
    let steps = j["steps"].as_array().unwrap();
    let commands = |i: usize| -> Vec<String> {
        steps[i]["commands"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect()
    };
    for (i, step) in steps.iter().enumerate() {
        let cmds = commands(i);
        assert!(!cmds.is_empty(), "step {}: no command: {step}", i + 1);
        for c in &cmds {
            assert!(c.starts_with("keycred ") || c.starts_with("TOKEN=$(keycred "), "{c}");
        }
    }
    // The files kept are listed, and exist.
    let files: Vec<&str> = j["files"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    assert_eq!(files.len(), 7, "{files:?}");
    assert!(files.iter().all(|f| f.starts_with(&keep) && std::path::Path::new(f).exists()), "{files:?}");
    // Copied into another directory, the first two steps' commands make the same application.
    let copy = dir.s("copy");
    for line in [commands(0), commands(1)].concat() {
        let o = run_printed(&line, &keep, &copy);
        assert!(o.status.success(), "{line}: {}", String::from_utf8_lossy(&o.stderr));
    }
    let read = |d: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(std::path::Path::new(d).join("manifest.json")).unwrap()).unwrap()
    };
    let (demo, copied) = (read(&keep), read(&copy));
    assert_eq!(demo["appId"], copied["appId"]);
    assert_eq!(demo["displayName"], copied["displayName"]);
    // The permissions and the reply URL too, without which a replayed consent fails
    // (AADSTS50011) and the token carries no roles: the Office 365 Management API's
    // ActivityFeed.Read and ServiceHealth.Read, the demo's reply URL, and nothing else.
    let office = serde_json::json!([{"resourceAppId": "c5393580-f805-4401-95e8-94b7a6ef2fc2", "resourceAccess": [
        {"id": "594c1fb6-4f81-4475-ae41-0c394909246c", "type": "Role"},
        {"id": "e2cea78f-e743-4d8f-a16a-75b629a038ae", "type": "Role"}]}]);
    assert_eq!(demo["requiredResourceAccess"], office, "{demo}");
    assert_eq!(copied["requiredResourceAccess"], demo["requiredResourceAccess"]);
    assert_eq!(demo["web"]["redirectUris"], serde_json::json!(["https://localhost/keycred-demo"]), "{demo}");
    assert_eq!(copied["web"]["redirectUris"], demo["web"]["redirectUris"]);
    assert!(commands(1)[0].contains(" --api https://manage.office.com --role ActivityFeed.Read "), "{:?}", commands(1));
    assert_eq!(entries_of(&std::path::Path::new(&copy).join("manifest.json")).len(), 1);
    // The rotation's command removes the entry the rotation removed.
    let removed =
        steps[8]["lines"].as_array().unwrap().iter().find_map(|l| l.as_str().unwrap().strip_prefix("removed  keyId "));
    let key_id = removed.unwrap().split(' ').next().unwrap();
    assert!(commands(8)[0].contains(&format!("--remove {key_id} ")), "{:?}", commands(8));

    // In text: `$ ` before each command, and the end says where the files are.
    let keep2 = dir.s("kept2");
    let text = cli(&["demo", "--keep", &keep2], &[]);
    assert_eq!(text.code, 0, "{text:?}");
    assert!(text.stdout.contains("\n   $ keycred new --name demo-app-1 "), "{}", text.stdout);
    assert!(
        text.stdout.contains(&format!("Done. The files are kept in {keep2}:\n   {keep2}/manifest.json\n")),
        "{}",
        text.stdout
    );
    let gone = cli(&["demo"], &[]);
    assert!(
        gone.stdout.contains("a temporary directory now removed; pass --keep DIR to keep them in DIR"),
        "{}",
        gone.stdout
    );
}

/// The refusal names the files in the way in plain English: one "already exists", several
/// "already exist", never "exist(s)".
#[test]
fn files_in_the_way_are_named_in_plain_english() {
    let dir = TempDir::new("demo-plural");
    for (files, verb) in
        [(&["demo-app-2.cer"][..], "already exists;"), (&["manifest.json", "demo-app-1.key"], "already exist;")]
    {
        let keep = dir.path(&format!("k{}", files.len()));
        std::fs::create_dir(&keep).unwrap();
        for f in files {
            std::fs::write(keep.join(f), "mine").unwrap();
        }
        let out = cli(&["demo", "--keep", &keep.display().to_string()], &[]);
        assert_eq!(out.code, 2, "{out:?}");
        assert!(out.stderr.contains(verb) && !out.stderr.contains("(s)"), "{}", out.stderr);
    }
}
