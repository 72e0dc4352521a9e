//! The README's examples, run in order in a fresh directory against the emulator, as a new user
//! would type them (bug: its two `new --name my-daemon` lines collided, and `manifest add
//! manifest.json` failed on a fresh machine).
//!
//! Every ```sh block runs, in order, with `sh -eu` and the keycred under test first on PATH,
//! unless its first line is a comment starting `# not run by the README test` (a real tenant or
//! the source tree is needed). A command `keycred emulate ... &` starts the emulator in the
//! background, as the shell would; in the commands after it `http://127.0.0.1:PORT` and
//! `TENANT` stand for the base URL and the tenant it printed, as the README says. One that
//! redirects its own output (`> FILE &`, the scripting pattern) runs exactly as written.

use crate::common::{openssl_fingerprint_hex, TempDir};
use std::path::Path;
use std::process::{Command, Stdio};

const SKIP: &str = "# not run by the README test";
/// A block that needs SoftHSM2: run where it is installed (and required under `cargo xtask
/// test`, which installs it).
const NEEDS_SOFTHSM: &str = "# needs SoftHSM2";

/// The ```sh blocks of `text`, in order, with the line each starts at.
fn sh_blocks(text: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (n, line) in text.lines().enumerate() {
        match &mut current {
            None if line.trim_start().starts_with("```sh") => current = Some((n + 2, String::new())),
            Some(_) if line.trim_start().starts_with("```") => blocks.push(current.take().unwrap()),
            Some((_, body)) => {
                body.push_str(line);
                body.push('\n');
            }
            None => {}
        }
    }
    assert!(current.is_none(), "an unclosed ```sh block in README.md");
    blocks
}

/// A block's commands: continuation lines joined.
fn commands(block: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in block.lines() {
        match line.strip_suffix('\\') {
            Some(head) => {
                cur.push_str(head);
                cur.push(' ');
            }
            None => {
                cur.push_str(line);
                out.push(std::mem::take(&mut cur));
            }
        }
    }
    out
}

#[test]
fn readme_examples_run_in_order_against_the_emulator() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let t = TempDir::new("readme");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_keycred")).parent().unwrap().display().to_string();
    // One shell session, as a user types the examples: exports carry from block to block.
    // The emulators' pids are kept to stop them when the script ends, however it ends (`jobs`
    // in a command substitution sees no jobs).
    let mut script = String::from("README_PIDS=\ntrap 'kill $README_PIDS 2>/dev/null || true' EXIT\n");
    let (mut ran, mut emulators, mut token_blocks) = (0, 0, 0);
    for (line, block) in sh_blocks(&readme) {
        if block.trim_start().starts_with(SKIP) {
            continue;
        }
        if block.trim_start().starts_with(NEEDS_SOFTHSM) {
            // The token is made by the block itself (softhsm2-util) in the test's directory.
            let Some(_installed) = crate::softhsm_support::token() else { continue };
            token_blocks += 1;
            emulators -= block.lines().filter(|l| l.trim_start().starts_with("keycred emulate ")).count() as i32;
        }
        ran += 1;
        script.push_str(&format!("echo '== README.md block at line {line}' >&2\n"));
        for cmd in commands(&block) {
            let trimmed = cmd.trim();
            if trimmed.starts_with("keycred emulate ") && trimmed.ends_with('&') && trimmed.contains('>') {
                // The README's own wait (a FIFO read): as written, its pid kept for the cleanup.
                script.push_str(&format!("{trimmed}\nREADME_PIDS=\"$README_PIDS $!\"\n"));
                continue;
            }
            if trimmed.starts_with("keycred emulate ") && trimmed.ends_with('&') {
                // In the background, as the shell would; its first line (-o json) gives the
                // base URL and the tenant the README calls http://127.0.0.1:PORT and TENANT.
                emulators += 1;
                let args = trimmed.trim_end_matches('&').trim_end();
                // The previous emulator's output removed first: the wait below must not read it.
                script.push_str(&format!(
                    "rm -f .emulator.out\n\
                     {args} -o json > .emulator.out 2> .emulator.log &\n\
                     README_PIDS=\"$README_PIDS $!\"\n\
                     n=0; until grep -q baseUrl .emulator.out 2>/dev/null; do n=$((n+1)); [ $n -lt 300 ]; sleep 0.1; done\n\
                     README_BASE=$(sed -n 's/.*\"baseUrl\": *\"\\([^\"]*\\)\".*/\\1/p' .emulator.out)\n\
                     README_TENANT=$(sed -n 's/.*\"tenant\": *\"\\([^\"]*\\)\".*/\\1/p' .emulator.out)\n"
                ));
                continue;
            }
            let cmd = if emulators > 0 {
                cmd.replace("http://127.0.0.1:PORT", "$README_BASE").replace("TENANT", "$README_TENANT")
            } else {
                cmd
            };
            script.push_str(&cmd);
            script.push('\n');
        }
    }
    // The quick start's, the emulator section's, the one `fleet` works on, the API permissions
    // setups' (Office 365 Management API, Threat Protection), the tenant capped by an app
    // management policy, and the secretless setup's (an emulated issuer); the commands after
    // each use it.
    // The token section starts an emulator of its own, not counted here.
    assert!(ran >= 5 && emulators == 6, "ran {ran} blocks with {emulators} emulators");
    let mut c = Command::new("sh");
    c.args(["-euc", &script]).current_dir(&t.0).stdin(Stdio::null());
    c.env("PATH", format!("{bin_dir}:{}", std::env::var("PATH").unwrap_or_default()));
    for (k, _) in std::env::vars() {
        if k.starts_with("AZURE_") || k.starts_with("KEYCRED_") {
            c.env_remove(k);
        }
    }
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "the README's examples failed (exit {:?}); the last block started is named last:\n{}\n--- stdout:\n{}\n--- script:\n{script}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout),
    );
    // What the examples made: the certificates, the manifest holding them, the rotations' new ones.
    for f in [
        "quickstart.pem",
        "my-daemon.pem",
        "my-daemon-pfx.pfx",
        "my-daemon-next.pem",
        "spare.pem",
        "my-daemon-graph.pem",
        "manifest.json",
        "o365-reader.json",
        "mtp-reader.json",
        "ci-deployer.json",
        "workload.jwt",
    ] {
        assert!(t.path(f).exists(), "{f}");
    }
    if token_blocks > 0 {
        keys_stayed_on_the_token(&t);
    }
    permissions_the_setups_wrote(&t);
    what_the_examples_made(&t);
}

/// The token section wrote the certificate and the request, and no file holds a private key
/// of its own (the other sections' key files are theirs).
fn keys_stayed_on_the_token(t: &TempDir) {
    for f in ["token-app.cer", "token-app.csr", "token-app.json"] {
        assert!(t.path(f).exists(), "{f}");
    }
    for f in ["token-app.key", "token-app.pem", "token-app.pfx"] {
        assert!(!t.path(f).exists(), "{f} was written");
    }
}

/// The permissions setups wrote the ids Microsoft publishes: ActivityFeed.Read and
/// ServiceHealth.Read in the Office 365 Management API's setup document, Incident.Read.All and
/// AdvancedHunting.Read.All in Microsoft 365 Defender's API documents.
fn permissions_the_setups_wrote(t: &TempDir) {
    for (file, resource, ids) in [
        (
            "o365-reader.json",
            "c5393580-f805-4401-95e8-94b7a6ef2fc2",
            ["594c1fb6-4f81-4475-ae41-0c394909246c", "e2cea78f-e743-4d8f-a16a-75b629a038ae"],
        ),
        (
            "mtp-reader.json",
            "8ee8fdad-f234-4243-8f3b-15c294843740",
            ["a9790345-4595-42e4-971a-ccdc79f19b7c", "7734e8e5-8dde-42fc-b5ae-6eafea078693"],
        ),
    ] {
        let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(t.path(file)).unwrap()).unwrap();
        let block = m["requiredResourceAccess"].as_array().unwrap().iter().find(|b| b["resourceAppId"] == resource);
        let got: Vec<(&str, &str)> = block.unwrap()["resourceAccess"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| (a["id"].as_str().unwrap(), a["type"].as_str().unwrap()))
            .collect();
        assert_eq!(got, ids.map(|i| (i, "Role")), "{file}");
    }
}

/// The manifest the emulator served and the fleet's two phases, as the examples left them.
fn what_the_examples_made(t: &TempDir) {
    // The manifest the emulator served: `rotate` added my-daemon-next; through Graph, spare came
    // and went, `graph rotate` added my-daemon-graph (its deploy hook copied the bundle) and
    // `graph retire --after 0s` removed the two older ones. Thumbprints by openssl.
    assert_eq!(std::fs::read(t.path("deployed.pem")).unwrap(), std::fs::read(t.path("my-daemon-graph.pem")).unwrap());
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(t.path("manifest.json")).unwrap()).unwrap();
    let got: Vec<String> = m["keyCredentials"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let der =
                base64::Engine::decode(&base64::engine::general_purpose::STANDARD, e["key"].as_str().unwrap()).unwrap();
            let f = t.path(&format!("entry-{i}.der"));
            std::fs::write(&f, der).unwrap();
            openssl_fingerprint_hex(&f.display().to_string(), &["-inform", "DER"], "sha1")
        })
        .collect();
    let want = vec![openssl_fingerprint_hex(&t.s("my-daemon-graph.cer"), &[], "sha1")];
    assert_eq!(got, want, "{m}");
    // The fleet's phase 2: every rotated app retired but the one rotating already, kept with
    // its reason; every app rotated got its bundle from the deploy hook.
    let retired: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(t.path("retired.json")).unwrap()).unwrap();
    assert_eq!((retired["kept"].as_u64(), retired["failed"].as_u64()), (Some(1), Some(0)), "{retired}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(t.path("report.json")).unwrap()).unwrap();
    for o in report["apps"].as_array().unwrap().iter().filter(|o| o["result"] == "rotated") {
        let deployed = t.path(&format!("deployed/{}.pem", o["appId"].as_str().unwrap()));
        assert!(deployed.exists(), "{o}");
    }
    assert_eq!(retired["retired"], report["rotated"], "{retired}");
}
