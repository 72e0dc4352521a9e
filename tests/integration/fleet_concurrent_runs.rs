//! Two `fleet rotate` runs never work on the same output directory or journal at once (two
//! concurrent runs gave an application two new certificates and lost a key): a run holds
//! `OUT_DIR/fleet-rotate.lock` and `<journal>.lock`, as manifest edits hold `<manifest>.lock`,
//! and a second run waits `KEYCRED_LOCK_TIMEOUT` seconds, then refuses with exit 2 having
//! changed nothing.

use crate::fleet_support::*;
use std::path::Path;
use std::time::{Duration, Instant};

fn rotate_args(t: &FakeTenant, out_dir: &Path, journal: Option<&Path>) -> Vec<String> {
    let mut a = fleet_args(t, "rotate");
    a.extend(["--expiring-within", "30d", "--out-dir", out_dir.to_str().unwrap()].map(String::from));
    if let Some(j) = journal {
        a.extend(["--journal".to_string(), j.display().to_string()]);
    }
    a
}

fn second_run(args: &[String]) -> (Option<i32>, String) {
    let o =
        keycred_command(args, &[("FLEET_GRAPH_TOKEN", GRAPH_TOKEN), ("KEYCRED_LOCK_TIMEOUT", "0")]).output().unwrap();
    (o.status.code(), String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn a_second_run_over_a_running_ones_directory_refuses_and_the_first_gives_one_certificate_each() {
    let apps = tenant(5);
    let t = FakeTenant::start(apps.clone(), 999);
    let dir = TempDir::new("fleet-concurrent");
    let out = dir.path("out");
    let args = rotate_args(&t, &out, None);
    // The first run is held at its first Graph request (the listing), locks taken.
    t.state.lock().unwrap().stall_at = Some(1);
    let mut first = keycred_command(&args, &[("FLEET_GRAPH_TOKEN", GRAPH_TOKEN)])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !t.state.lock().unwrap().stalled {
        assert!(first.try_wait().unwrap().is_none(), "the first run ended before its first request");
        assert!(Instant::now() < deadline, "the first run never reached Graph");
        std::thread::sleep(Duration::from_millis(2));
    }
    let (code, err) = second_run(&args);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("locked by") && err.contains("fleet-rotate.lock") && err.contains("nothing was changed"),
        "{err}"
    );
    // The same journal from another directory is refused too.
    let (code, err) = second_run(&rotate_args(&t, &dir.path("elsewhere"), Some(&out.join("fleet-journal.jsonl"))));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("fleet-journal.jsonl.lock"), "{err}");
    assert!(!dir.path("elsewhere").join("fleet-rotate.lock").exists(), "its own lock was released");
    {
        let mut s = t.state.lock().unwrap();
        s.stall_at = None;
        s.stalled = false;
    }
    let status = first.wait().unwrap();
    assert!(status.success(), "{:?}", first.stderr.take().map(std::io::read_to_string));
    // Each rotated application got exactly one new certificate, whose key is on disk.
    let thumbs = |v: &serde_json::Value| -> Vec<String> {
        let entries = v["keyCredentials"].as_array().unwrap();
        entries
            .iter()
            .filter_map(|e| keycred::manifest::read_entry(0, e.as_object().unwrap()).sha1())
            .map(|d| keycred::thumbprint::hex_upper(&d))
            .collect()
    };
    let mut rotated = 0;
    for (b, a) in apps.iter().zip(t.apps()) {
        let new: Vec<String> = thumbs(&a).into_iter().filter(|x| !thumbs(b).contains(x)).collect();
        let app_dir = out.join(b["appId"].as_str().unwrap());
        if !app_dir.exists() {
            assert_eq!(&a, b, "an application without files is unchanged");
            continue;
        }
        rotated += 1;
        let bundles: Vec<_> = std::fs::read_dir(&app_dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "pem"))
            .collect();
        assert_eq!(bundles.len(), 1, "{}", app_dir.display());
        let on_disk = keycred::cert::load_credential(&bundles[0], None, None).unwrap().cert.thumbprint();
        assert_eq!(new, vec![on_disk], "exactly one new certificate, the one on disk");
    }
    assert!(rotated > 0, "the first run rotated nothing: the test proves nothing");
    // The locks went with the run.
    assert!(!out.join("fleet-rotate.lock").exists());
    assert!(!out.join("fleet-journal.jsonl.lock").exists());
}

#[test]
fn a_held_lock_is_waited_for_then_refused_with_nothing_changed() {
    let apps = tenant(3);
    let t = FakeTenant::start(apps.clone(), 999);
    let dir = TempDir::new("fleet-held");
    let (out, journal) = (dir.path("out"), dir.path("j.jsonl"));
    std::fs::create_dir(&out).unwrap();
    for lock in [out.join("fleet-rotate.lock"), dir.path("j.jsonl.lock")] {
        // Another run (this test) holds the OS lock.
        let held = std::fs::File::create(&lock).unwrap();
        held.lock().unwrap();
        let (code, err) = second_run(&rotate_args(&t, &out, Some(&journal)));
        assert_eq!(code, Some(2), "{err}");
        assert!(err.contains(&format!("locked by {}", lock.display())), "{err}");
        assert!(!journal.exists(), "no journal was started");
        assert_eq!(t.apps(), apps, "Graph unchanged");
        assert!(lock.exists(), "the other run's lock file stays");
        std::fs::remove_file(&lock).unwrap();
    }
}
