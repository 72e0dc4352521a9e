//! What a new user meets first: `--out-dir` created, `manifest init` and `manifest template`,
//! the client id taken from the manifest, completions and the man page.

use crate::common::{keycred_command, TempDir};
use serde_json::Value;
use std::process::Output;

fn run(t: &TempDir, args: &[&str]) -> Output {
    keycred_command(args, &[]).current_dir(&t.0).output().unwrap()
}

fn ok_json(t: &TempDir, args: &[&str]) -> Value {
    let o = run(t, args);
    assert_eq!(o.status.code(), Some(0), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Bug: `new --out-dir certs` failed with "not a directory" on a fresh machine.
#[cfg(unix)]
#[test]
fn out_dir_is_created_owner_only_when_missing() {
    use std::os::unix::fs::PermissionsExt;
    let t = TempDir::new("first-outdir");
    let v = ok_json(&t, &["new", "--name", "app", "--out-dir", "certs/prod", "-o", "json"]);
    assert_eq!(v["files"]["key"], "certs/prod/app.key");
    for d in ["certs", "certs/prod"] {
        let mode = std::fs::metadata(t.path(d)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{d}");
    }
    assert!(t.path("certs/prod/app.cer").is_file());
    // An existing directory keeps its mode.
    std::fs::create_dir(t.path("open")).unwrap();
    std::fs::set_permissions(t.path("open"), std::fs::Permissions::from_mode(0o755)).unwrap();
    ok_json(&t, &["new", "--name", "app", "--out-dir", "open", "-o", "json"]);
    assert_eq!(std::fs::metadata(t.path("open")).unwrap().permissions().mode() & 0o777, 0o755);
    // Under a file: refused before anything is generated, nothing created.
    std::fs::write(t.path("file"), "x").unwrap();
    let o = run(&t, &["new", "--name", "app", "--out-dir", "file/sub"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("file is not a directory"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Bug: the README's `manifest add manifest.json` failed on a fresh machine (no manifest, and
/// `{}` is refused); `manifest init` writes one.
#[test]
fn manifest_init_writes_a_starter_that_add_and_the_emulator_accept() {
    let t = TempDir::new("first-init");
    let app = "6731de76-14a6-49ae-97bc-6eba6914391e";
    let v = ok_json(&t, &["manifest", "init", "m.json", "--app-id", app, "--display-name", "My daemon", "-o", "json"]);
    assert_eq!(v["appId"], app);
    assert_eq!(v["format"], "ms-graph");
    let m: Value = serde_json::from_str(&std::fs::read_to_string(t.path("m.json")).unwrap()).unwrap();
    assert_eq!(m["appId"], app);
    assert_eq!(m["displayName"], "My daemon");
    assert_eq!(m["id"], v["objectId"]);
    assert_eq!(m["keyCredentials"], serde_json::json!([]));
    // It exists now: refused without --force, untouched.
    let before = std::fs::read(t.path("m.json")).unwrap();
    let o = run(&t, &["manifest", "init", "m.json"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("already exists"), "{err}");
    // The hint names the flag that replaces it, in the singular for one file.
    assert!(err.contains("pass --force to replace it, or choose another name"), "{err}");
    assert_eq!(std::fs::read(t.path("m.json")).unwrap(), before);
    // A reply URL Entra would not accept on a new registration is refused before writing.
    let o = run(&t, &["manifest", "init", "r.json", "--reply-url", "http://app.example/cb"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--reply-url 'http://app.example/cb'"));
    assert!(!t.path("r.json").exists());
    // Fresh ids by default, and the legacy shape on request.
    let v = ok_json(&t, &["manifest", "init", "legacy.json", "--format", "aad-graph", "-o", "json"]);
    let legacy: Value = serde_json::from_str(&std::fs::read_to_string(t.path("legacy.json")).unwrap()).unwrap();
    assert_eq!(legacy["appId"], v["appId"]);
    assert_ne!(v["appId"], "11111111-1111-1111-1111-111111111111");
    assert_eq!(legacy["objectId"], v["objectId"]);
    // Without --display-name the app is named after its manifest, not after Microsoft's
    // placeholder, in both shapes (the legacy one keeps its name in `name`).
    assert_eq!(legacy["name"], "legacy", "{legacy}");
    ok_json(&t, &["manifest", "init", "payroll-daemon.json", "-o", "json"]);
    let named: Value = serde_json::from_str(&std::fs::read_to_string(t.path("payroll-daemon.json")).unwrap()).unwrap();
    assert_eq!(named["displayName"], "payroll-daemon");
    // A certificate goes in without --format.
    ok_json(&t, &["new", "--name", "app", "-o", "json"]);
    let e = ok_json(&t, &["manifest", "add", "m.json", "--cert", "app.cer", "-o", "json"]);
    assert!(e.get("key").is_some(), "{e}");
    let e = ok_json(&t, &["manifest", "add", "legacy.json", "--cert", "app.cer", "-o", "json"]);
    assert!(e.get("value").is_some(), "{e}");
    // A bad --app-id is named.
    let o = run(&t, &["manifest", "init", "x.json", "--app-id", "not-a-guid"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--app-id 'not-a-guid'"));
    assert!(!t.path("x.json").exists());
}

#[test]
fn manifest_template_prints_the_embedded_samples() {
    let t = TempDir::new("first-template");
    for (format, key) in [("ms-graph", "signInAudience"), ("aad-graph", "oauth2Permissions")] {
        let o = run(&t, &["manifest", "template", "--format", format]);
        assert_eq!(o.status.code(), Some(0));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert!(v.get(key).is_some(), "{format}: {v}");
        assert_eq!(v["keyCredentials"], serde_json::json!([]));
    }
}

/// User-facing text names the flow or the Microsoft document, never the project's internal
/// material (`grep -rniE 'seed[s]? ?[0-9]{3}|of the seed' src README.md templates` is empty).
#[test]
fn no_user_facing_text_refers_to_internal_documents() {
    fn walk(p: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        if p.is_dir() {
            for e in std::fs::read_dir(p).unwrap() {
                walk(&e.unwrap().path(), out);
            }
        } else {
            out.push(p.to_path_buf());
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md")];
    walk(&root.join("src"), &mut files);
    walk(&root.join("templates"), &mut files);
    let mut hits = Vec::new();
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else { continue };
        for (n, line) in text.lines().enumerate() {
            let l = line.to_lowercase();
            let numbered = l.match_indices("seed").any(|(i, _)| {
                let rest = l[i + 4..].strip_prefix('s').unwrap_or(&l[i + 4..]);
                let rest = rest.strip_prefix(' ').unwrap_or(rest);
                rest.len() >= 3 && rest.as_bytes()[..3].iter().all(u8::is_ascii_digit)
            });
            if numbered || l.contains("of the seed") {
                hits.push(format!("{}:{}: {line}", f.display(), n + 1));
            }
        }
    }
    assert!(hits.is_empty(), "{}", hits.join("\n"));
}

/// Bug: `consent-url` refused the `http://` reply URL older registrations still have; it builds
/// the URL and warns that Entra accepts new http reply URLs for localhost only.
#[test]
fn consent_url_builds_an_older_registrations_http_reply_url_with_a_warning() {
    let t = TempDir::new("first-consent");
    let app = "6731de76-14a6-49ae-97bc-6eba6914391e";
    let o = run(&t, &["consent-url", "--client-id", app, "--redirect-uri", "http://app.example/cb"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("redirect_uri=http%3A%2F%2Fapp.example%2Fcb"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.starts_with("keycred: warning: reply URL 'http://app.example/cb' uses plain http"), "{err}");
    assert!(err.contains("localhost only"), "{err}");
    let o = run(&t, &["consent-url", "--client-id", app, "--redirect-uri", "https://app.example/cb"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(o.stderr.is_empty(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Bugs: `manifest list cert.cer` reported a JSON error; a JSON error said its position twice;
/// "X.pem already exists" was said of three files.
#[test]
fn messages_say_what_the_input_is_once() {
    let t = TempDir::new("first-messages");
    ok_json(&t, &["new", "--name", "app", "-o", "json"]);
    for f in ["app.cer", "app.key"] {
        let o = run(&t, &["manifest", "list", f]);
        assert_eq!(o.status.code(), Some(2));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(&format!("{f}: this is a PEM")) && err.contains("not an app manifest"), "{err}");
    }
    std::fs::write(t.path("bad.json"), "{\n  \"appId\": \"x\",\n  \"keyCredentials\": [],\n}\n").unwrap();
    let o = run(&t, &["manifest", "list", "bad.json"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.matches("line 4 column 1").count(), 1, "{err}");
    assert!(err.contains("malformed JSON at line 4 column 1: trailing comma"), "{err}");
    let o = run(&t, &["new", "--name", "app"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("./app.key, ./app.cer, ./app.pem already exist;"), "{err}");
}

/// Completions load in bash and complete subcommands; the man page is valid roff.
#[test]
fn completions_and_man_page() {
    let t = TempDir::new("first-completions");
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let o = run(&t, &["completions", shell]);
        assert_eq!(o.status.code(), Some(0), "{shell}");
        assert!(String::from_utf8_lossy(&o.stdout).contains("keycred"), "{shell}");
        std::fs::write(t.path(shell), &o.stdout).unwrap();
    }
    let script = format!(
        "source {}; COMP_WORDS=(keycred mani); COMP_CWORD=1; _keycred keycred mani keycred; echo \"${{COMPREPLY[@]}}\"",
        t.s("bash")
    );
    let o = std::process::Command::new("bash").args(["-c", &script]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "manifest", "{}", String::from_utf8_lossy(&o.stderr));
    let o = run(&t, &["man-page"]);
    assert_eq!(o.status.code(), Some(0));
    let man = String::from_utf8(o.stdout).unwrap();
    assert!(man.contains(".TH keycred 1"), "{man}");
    std::fs::write(t.path("keycred.1"), &man).unwrap();
    let o = std::process::Command::new("groff").args(["-man", "-Tutf8", "-ww", "-z", &t.s("keycred.1")]).output();
    let o = o.expect("groff is installed (it comes with man-db)");
    assert!(o.status.success() && o.stderr.is_empty(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = run(&t, &["completions", "tcsh"]);
    assert_eq!(o.status.code(), Some(2));
}

/// Bug: `rotate`'s text output printed `removed:` out of line with the other fields.
#[test]
fn rotate_text_output_is_one_aligned_block() {
    let t = TempDir::new("first-rotate");
    ok_json(&t, &["manifest", "init", "m.json", "-o", "json"]);
    ok_json(&t, &["new", "--name", "old", "-o", "json"]);
    ok_json(&t, &["manifest", "add", "m.json", "--cert", "old.cer", "-o", "json"]);
    for extra in [&[][..], &["--remove-expired"][..]] {
        let name = if extra.is_empty() { "next" } else { "next2" };
        let mut args = vec!["rotate", "--manifest", "m.json", "--name", name];
        args.extend_from_slice(extra);
        let o = run(&t, &args);
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
        let out = String::from_utf8(o.stdout).unwrap();
        let columns: Vec<usize> = out
            .lines()
            .filter(|l| l.contains(": "))
            .map(|l| {
                l.find(": ").unwrap() + 2 + l[l.find(": ").unwrap() + 2..].chars().take_while(|c| *c == ' ').count()
            })
            .collect();
        assert!(out.contains("removed:"), "{out}");
        assert!(columns.len() >= 4 && columns.iter().all(|c| *c == columns[0]), "{columns:?}\n{out}");
    }
}
