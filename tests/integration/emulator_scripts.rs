//! Starting the emulator from a script, without sleeping: with `-o json` its first line on stdout
//! is printed (and flushed) once the port is bound, so whoever reads that line can connect at
//! once; `--ready-file PATH` holds the same JSON for scripts that cannot read the pipe, is never
//! written over an existing file (which could be read as the new emulator's), and is removed when
//! the emulator stops. The README's pattern (a FIFO and `read`) runs here in `sh`.

use crate::rotation_support::{credential, entry, write_cred, write_manifest, TempDir, APP_ID, OBJECT_ID};
use crate::rotation_support::{keycred_command, KEYCRED, TENANT};
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

/// A manifest with one registered certificate; returns (dir, manifest, PEM bundle).
fn app() -> (TempDir, String, String) {
    let dir = TempDir::new("emu-scripts");
    let cred = credential("scripted emulator", 30);
    let pem = write_cred(&dir, "app", &cred);
    let m = dir.path("app.json");
    write_manifest(&m, OBJECT_ID, APP_ID, &[entry(&cred.cert)]);
    (dir, m.display().to_string(), pem)
}

/// The first line of `child`'s stdout, waiting at most 60 s.
fn first_line(child: &mut std::process::Child) -> String {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    rx.recv_timeout(Duration::from_secs(60)).expect("the emulator printed its first line within 60 s")
}

/// GET `url` once, no retry: the status.
fn get_status(url: &str) -> u16 {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async { crate::common::client().get(url).send().await.unwrap().status().as_u16() })
}

#[test]
fn the_first_json_line_and_the_ready_file_come_once_the_port_is_bound() {
    let (dir, m, _) = app();
    let ready = dir.path("emulator.json");
    let ready_s = ready.display().to_string();
    let args = ["emulate", "--manifest", &m, "--tenant", TENANT, "--listen", "127.0.0.1:0", "-o", "json"];
    let mut child = keycred_command(&[&args[..], &["--ready-file", &ready_s]].concat(), &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let line = first_line(&mut child);
    let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    assert_eq!(v["tenant"], TENANT);
    // Right away, no retry: the port is already listening.
    let base = v["baseUrl"].as_str().unwrap();
    assert_eq!(get_status(&format!("{base}/{TENANT}/v2.0/.well-known/openid-configuration")), 200);
    // The ready file was written before the line: the same document.
    let file: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&ready).unwrap()).unwrap();
    assert_eq!(file, v);
    // A second emulator will not take over that file (nor start).
    let second = keycred_command(&[&args[..], &["--ready-file", &ready_s]].concat(), &[]).output().unwrap();
    assert_eq!(second.status.code(), Some(2), "{}", String::from_utf8_lossy(&second.stderr));
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("--ready-file"),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert_eq!(serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(&ready).unwrap()).unwrap(), v);
    // Stopped, it removes its ready file.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) }, 0);
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert!(!ready.exists(), "the ready file is removed when the emulator stops");
}

#[test]
fn a_script_reads_the_first_line_through_a_fifo_and_gets_a_token() {
    let (dir, m, pem) = app();
    // The README's pattern, as a script runs it (`sh -eu`, no sleep); the emulator is stopped
    // by the script itself.
    let script = format!(
        "mkfifo emulator.pipe\n\
         keycred emulate --manifest {m} --tenant {TENANT} --listen 127.0.0.1:0 --grant api://scripts=Data.Read -o json > emulator.pipe &\n\
         EMULATOR_PID=$!\n\
         read -r EMULATOR < emulator.pipe\n\
         BASE=$(printf '%s' \"$EMULATOR\" | sed -n 's/.*\"baseUrl\": *\"\\([^\"]*\\)\".*/\\1/p')\n\
         keycred token --authority \"$BASE\" --tenant {TENANT} --client-id {APP_ID} --cert {pem} --scope api://scripts --expect-role Data.Read\n\
         kill $EMULATOR_PID\n\
         wait $EMULATOR_PID\n"
    );
    let bin_dir = std::path::Path::new(KEYCRED).parent().unwrap().display().to_string();
    let mut c = std::process::Command::new("sh");
    c.args(["-euc", &script]).current_dir(&dir.0).stdin(Stdio::null());
    c.env("PATH", format!("{bin_dir}:{}", std::env::var("PATH").unwrap_or_default()));
    let child = c.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let id = child.id();
    std::thread::spawn(move || {
        if rx.recv_timeout(Duration::from_secs(120)).is_err() {
            unsafe { libc::kill(id as libc::pid_t, libc::SIGKILL) };
        }
    });
    let out = child.wait_with_output().unwrap();
    let _ = tx.send(());
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("roles"), "{}", String::from_utf8_lossy(&out.stdout));
}
