//! `fleet rotate` and `fleet retire` as phases of one lifecycle against a tenant on loopback
//! (`fleet_support`): the deploy hook is told each app's new credential, a failed deploy removes
//! nothing, keeps the app from retirement and is run again by the next run; a second rotation
//! adds no second certificate; an audit without the sign-in report says so.

use crate::fleet_support::*;
use std::path::Path;

/// Checks that each call of the hook got the app's new keyId, thumbprint and bundle, as the
/// report `v` names them.
fn hook_told_each_app_its_new_credential(v: &serde_json::Value, calls: &Path) {
    let lines = std::fs::read_to_string(calls).unwrap();
    for o in v["apps"].as_array().unwrap().iter().filter(|o| o["result"] == "rotated") {
        let s = |k: &str| o[k].as_str().unwrap().to_string();
        let line = format!("{} {} {} {}", s("appId"), s("keyId"), s("thumbprint"), s("bundle"));
        assert!(lines.lines().any(|l| l == line), "{line} in\n{lines}");
    }
}

/// Writes a deploy hook that appends each call's values to `calls` and fails (exit 9) for the
/// app named by its first argument.
fn recording_hook(script: &Path, calls: &Path) {
    std::fs::write(
        script,
        format!(
            "printf '%s %s %s %s\\n' \"$KEYCRED_APP_ID\" \"$KEYCRED_KEY_ID\" \"$KEYCRED_THUMBPRINT\" \"$KEYCRED_BUNDLE\" >> {}\n\
             if [ \"$KEYCRED_APP_ID\" = \"$1\" ]; then echo 'cannot reach the host' >&2; exit 9; fi\n",
            calls.display()
        ),
    )
    .unwrap();
}

#[test]
fn running_the_same_rotation_again_adds_no_second_certificate() {
    // Phase 1 keeps the expiring certificates, so the second run finds them again: an app that
    // already holds a certificate lasting beyond the window is left alone, not rotated twice.
    let apps = tenant(5);
    let t = FakeTenant::start(apps.clone(), 999);
    let dir = TempDir::new("fleet-twice");
    let args = [rotate_args(&t, &dir.0.display().to_string()), vec!["-o".into(), "json".into()]].concat();
    let first = stdout_json(&run_fleet(&args));
    assert_eq!(first["rotated"], selected_indices(&apps).len() as u64);
    let once = t.apps();
    let second = run_fleet(&args);
    assert!(second.status.success(), "{}", String::from_utf8_lossy(&second.stderr));
    let v = stdout_json(&second);
    assert_eq!((v["selected"].as_u64(), v["rotated"].as_u64()), (Some(0), Some(0)), "{v}");
    assert_eq!(t.apps(), once, "nothing changed");
    for i in selected_indices(&apps) {
        let o = v["apps"].as_array().unwrap().iter().find(|o| o["appId"] == apps[i]["appId"]).unwrap();
        assert!(o["reason"].as_str().unwrap().starts_with("already rotated: keyId "), "{o}");
    }
    // The text summary counts those rows as the rows read: already rotated, not merely skipped.
    // This run's own and app 4's (which held a lasting certificate from the start).
    let rotated = v["apps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["reason"].as_str().unwrap().starts_with("already rotated: "))
        .count();
    assert_eq!(rotated, selected_indices(&apps).len() + 1, "{v}");
    let dry = [rotate_args(&t, &dir.0.display().to_string()), vec!["--dry-run".into()]].concat();
    let out = run_fleet(&dry);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines().filter(|l| l.contains(" skipped ") && l.contains(" already rotated: keyId ")).count(),
        rotated,
        "{text}"
    );
    let summary = text.lines().find(|l| l.starts_with("0 selected: ")).unwrap_or_else(|| panic!("{text}"));
    assert!(summary.contains(&format!(", {rotated} already rotated, ")), "{summary}");
    assert!(summary.contains(&format!("; {} skipped; ", apps.len() - rotated)), "{summary}");
}

#[test]
fn a_failed_deploy_removes_nothing_keeps_the_app_from_retirement_and_is_deployed_again_next_run() {
    let apps = tenant(10);
    let t = FakeTenant::start(apps.clone(), 999);
    let dir = TempDir::new("fleet-deploy");
    let selected = selected_indices(&apps);
    // The app that fails holds an expired certificate, which --remove-expired would remove.
    let expired = *selected.iter().find(|i| MIXES[*i % MIXES.len()] == Mix::Expired).unwrap();
    let failing = apps[expired]["appId"].as_str().unwrap().to_string();
    let (calls, script) = (dir.path("calls"), dir.path("hook.sh"));
    recording_hook(&script, &calls);
    let out_dir = dir.s("out");
    let deploy = format!("sh {} {failing}", script.display());
    let args = [rotate_args(&t, &out_dir), vec!["--remove-expired".into(), "--deploy".into(), deploy]].concat();
    let out = run_fleet(&[args.clone(), vec!["-o".into(), "json".into()]].concat());
    assert_eq!(out.status.code(), Some(4), "{}", String::from_utf8_lossy(&out.stderr));
    let v = stdout_json(&out);
    let n = selected.len() as u64;
    assert_eq!(
        (v["rotated"].as_u64(), v["deployed"].as_u64(), v["deployFailed"].as_u64()),
        (Some(n), Some(n - 1), Some(1))
    );
    let o = v["apps"].as_array().unwrap().iter().find(|o| o["appId"] == failing.as_str()).unwrap().clone();
    assert_eq!(
        o["deploy"],
        serde_json::json!({"result": "deploy_failed", "exitCode": 9, "reason": "exited with status 9: cannot reach the host"})
    );
    assert_eq!(o["removed"], serde_json::json!([]), "a failed deploy removes nothing: {o}");
    hook_told_each_app_its_new_credential(&v, &calls);
    // Its expired certificate stays (the others' are gone), and the journal keeps the step to do.
    let before = apps.iter().find(|a| a["appId"] == failing.as_str()).unwrap();
    let after = t.apps().into_iter().find(|a| a["appId"] == failing.as_str()).unwrap();
    assert!(thumbs(before).iter().all(|x| thumbs(&after).contains(x)), "{after}");
    assert!(Path::new(&out_dir).join("fleet-journal.jsonl").exists());

    // Retiring without evidence still keeps that app: its rotation is not finished.
    let retire = [
        fleet_args(&t, "retire"),
        vec![
            "--force".into(),
            "--app-id".into(),
            failing.clone(),
            "--out-dir".into(),
            out_dir.clone(),
            "-o".into(),
            "json".into(),
        ],
    ]
    .concat();
    let r = stdout_json(&run_fleet(&retire));
    let ro = r["apps"].as_array().unwrap().iter().find(|o| o["appId"] == failing.as_str()).unwrap().clone();
    assert_eq!(ro["result"], "kept", "{ro}");
    assert!(
        ro["reason"].as_str().unwrap().starts_with("its rotation is not finished (last step done: verified)"),
        "{ro}"
    );
    assert_eq!(t.apps().into_iter().find(|a| a["appId"] == failing.as_str()).unwrap(), after);

    // The next run, hook fixed, deploys that app alone and finishes the journal.
    std::fs::write(&calls, "").unwrap();
    let fixed = [
        rotate_args(&t, &out_dir),
        vec![
            "--remove-expired".into(),
            "--deploy".into(),
            format!("sh {} none", script.display()),
            "-o".into(),
            "json".into(),
        ],
    ]
    .concat();
    let out = run_fleet(&fixed);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v = stdout_json(&out);
    assert_eq!(
        (v["rotated"].as_u64(), v["alreadyRotated"].as_u64(), v["deployed"].as_u64()),
        (Some(1), Some(n - 1), Some(1)),
        "{v}"
    );
    assert_eq!(std::fs::read_to_string(&calls).unwrap().lines().count(), 1);
    assert!(!Path::new(&out_dir).join("fleet-journal.jsonl").exists());
}

#[test]
fn an_audit_without_the_sign_in_report_says_so_and_unused_needs_it() {
    // The fake tenant serves no sign-in report (as a tenant whose automation app lacks
    // AuditLog.Read.All): the audit still lists every credential, lastSignIn empty, and says why.
    let apps = tenant(4);
    let t = FakeTenant::start(apps.clone(), 999);
    let out = run_fleet(&[fleet_args(&t, "audit"), vec!["-o".into(), "json".into()]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v = stdout_json(&out);
    assert_eq!(v["credentials"].as_array().unwrap().len(), ground_truth(&apps).len());
    assert!(v["credentials"].as_array().unwrap().iter().all(|r| r["lastSignIn"].is_null()));
    assert!(v["summary"]["signInsUnavailable"]
        .as_str()
        .unwrap()
        .contains("/beta/reports/appCredentialSignInActivities"));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("lastSignIn is empty"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run_fleet(&[fleet_args(&t, "audit"), vec!["--unused".into(), "90d".into()]].concat());
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the unused filter needs"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
