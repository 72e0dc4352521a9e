//! `keycred fleet audit|rotate` against a tenant on loopback (`fleet_support`): an audit over
//! several pages equals the tenant's ground truth in every output format, refusals are reported
//! and change nothing else, throttled runs wait as told and finish, and a rotation killed with
//! SIGKILL at random points and resumed ends with exactly one new verified certificate per
//! selected application, having lost no valid credential.

use crate::fleet_support::*;
use keycred::dates;
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;

#[test]
fn audit_over_several_pages_equals_the_tenants_ground_truth() {
    let apps = tenant(23);
    let t = FakeTenant::start(apps.clone(), 5);
    let out = run_fleet(&[fleet_args(&t, "audit"), vec!["-o".into(), "json".into()]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v = stdout_json(&out);
    let rows = v["credentials"].as_array().unwrap();
    let got: BTreeSet<(String, String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["appId"].as_str().unwrap().into(),
                r["kind"].as_str().unwrap().into(),
                r["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(got, ground_truth(&apps));
    // Duplicates would hide in a set: count too (23 apps, 5 of them with two certificates, all with a secret).
    assert_eq!(rows.len(), 23 + 23 / 5 + 23);
    assert_eq!(v["summary"]["applications"], 23);
    assert_eq!(v["summary"]["pages"], 5, "23 apps in pages of 5");
    let unusable = rows.iter().find(|r| r["status"] == "unusable").unwrap();
    assert!(unusable["reason"].as_str().unwrap().contains("usage is \"Sign\""), "{unusable}");
    let expiring = rows.iter().find(|r| r["status"] == "expiring").unwrap();
    assert!((9..=10).contains(&expiring["daysLeft"].as_i64().unwrap()), "{expiring}");
    // Pages followed by nextLink, each request with its own client-request-id.
    let log = t.log();
    assert_eq!(log.len(), 5);
    let ids: BTreeSet<_> = log.iter().map(|l| l.client_request_id.clone().expect("client-request-id sent")).collect();
    assert_eq!(ids.len(), 5);
}

#[test]
fn csv_parses_with_a_header_and_holds_the_same_rows_as_json() {
    let apps = tenant(12);
    let t = FakeTenant::start(apps.clone(), 999);
    let out = run_fleet(&[fleet_args(&t, "audit"), vec!["-o".into(), "csv".into()]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows = csv_rows(&out.stdout);
    // Python's dict keeps the header's order, and serde_json (preserve_order) keeps Python's.
    let fields: Vec<&str> = rows[0].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        fields,
        [
            "objectType",
            "appId",
            "displayName",
            "keyId",
            "kind",
            "thumbprint",
            "start",
            "end",
            "daysLeft",
            "status",
            "reason",
            "policy",
            "lastSignIn",
            "name",
            "issuer",
            "subject",
            "audience"
        ]
    );
    let got: BTreeSet<(String, String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["appId"].as_str().unwrap().into(),
                r["kind"].as_str().unwrap().into(),
                r["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(got, ground_truth(&apps));
    // A reason holding quotes and a comma-free message survives quoting.
    let unusable = rows.iter().find(|r| r["status"] == "unusable").unwrap();
    assert!(unusable["reason"].as_str().unwrap().contains("usage is \"Sign\""), "{unusable}");
}

#[test]
fn filters_and_fail_on_select_what_a_scheduled_job_asks_about() {
    let apps = tenant(10);
    let t = FakeTenant::start(apps.clone(), 999);
    let json = vec!["-o".to_string(), "json".to_string()];
    let out =
        run_fleet(&[fleet_args(&t, "audit"), json.clone(), vec!["--expiring-within".into(), "30d".into()]].concat());
    assert!(out.status.success());
    let v = stdout_json(&out);
    let statuses: BTreeSet<&str> =
        v["credentials"].as_array().unwrap().iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, BTreeSet::from(["expiring", "expired"]));
    // Within 5 days the certificates ending in 10 are not expiring.
    let out =
        run_fleet(&[fleet_args(&t, "audit"), json.clone(), vec!["--expiring-within".into(), "5d".into()]].concat());
    let v = stdout_json(&out);
    assert!(v["credentials"].as_array().unwrap().iter().all(|r| r["status"] == "expired"), "{v}");
    let one = apps[3]["appId"].as_str().unwrap().to_string();
    let out = run_fleet(
        &[
            fleet_args(&t, "audit"),
            json.clone(),
            vec!["--app-id".into(), one.clone(), "--status".into(), "unusable".into()],
        ]
        .concat(),
    );
    let v = stdout_json(&out);
    let rows = v["credentials"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{v}");
    assert_eq!(rows[0]["appId"], one.as_str());
    // --fail-on: exit 4 when something matches, 0 when nothing does.
    let out = run_fleet(&[fleet_args(&t, "audit"), vec!["--fail-on".into(), "expired".into()]].concat());
    assert_eq!(out.status.code(), Some(4), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--fail-on: 2 expired credentials"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // One credential is one, not "credentials".
    let out = run_fleet(
        &[
            fleet_args(&t, "audit"),
            vec!["--app-id".into(), one.clone(), "--status".into(), "unusable".into()],
            vec!["--fail-on".into(), "unusable".into()],
        ]
        .concat(),
    );
    assert_eq!(out.status.code(), Some(4), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--fail-on: 1 unusable credential") && !err.contains("1 unusable credentials"), "{err}");
    let out = run_fleet(
        &[
            fleet_args(&t, "audit"),
            vec!["--status".into(), "valid".into(), "--fail-on".into(), "expired,unusable".into()],
        ]
        .concat(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("APP ID "), "{text}");
    // Bad input: exit 2 naming it, and -o csv elsewhere refused.
    let out = run_fleet(&[fleet_args(&t, "audit"), vec!["--expiring-within".into(), "30 days".into()]].concat());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--expiring-within '30 days'"));
    let out = run_fleet(&["show".to_string(), "x.pem".into(), "-o".into(), "csv".into()]);
    assert_eq!(out.status.code(), Some(2));
    // The help of the command that takes -o csv lists it; the others' do not offer it.
    let help =
        |cmd: &str| String::from_utf8_lossy(&run_fleet(&["fleet".into(), cmd.into(), "-h".into()]).stdout).into_owned();
    assert!(help("audit").contains("[possible values: text, json, csv]"), "{}", help("audit"));
    assert!(help("rotate").contains("[possible values: text, json]"), "{}", help("rotate"));
}

/// Whether an app has a certificate entry valid now (the lock-out invariant).
fn has_valid(app: &Value) -> bool {
    let now = dates::now();
    app["keyCredentials"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| keycred::manifest::read_entry(0, e.as_object().unwrap()).counts_as_valid_at(now))
}

/// After a rotation (phase 1): every app that had an expiring or expired certificate has exactly
/// one new certificate, whose key is on disk, and all its old ones, but for the expired ones
/// when `remove_expired`; every other app is as it was.
fn assert_rotated_removing(before: &[Value], after: &[Value], dir: &TempDir, selected: &[usize], remove_expired: bool) {
    for (i, (b, a)) in before.iter().zip(after).enumerate() {
        let app_id = b["appId"].as_str().unwrap();
        if !selected.contains(&i) {
            assert_eq!(b, a, "app {i} is not selected and must be unchanged");
            continue;
        }
        let (tb, ta) = (thumbs(b), thumbs(a));
        let new: Vec<&String> = ta.iter().filter(|t| !tb.contains(t)).collect();
        assert_eq!(new.len(), 1, "app {i}: exactly one new certificate: {ta:?} after {tb:?}");
        let on_disk = std::fs::read_dir(dir.0.join(app_id))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "pem"))
            .collect::<Vec<_>>();
        assert_eq!(on_disk.len(), 1, "app {i}: one bundle on disk");
        let cred = keycred::cert::load_credential(&on_disk[0].path(), None, None).unwrap();
        assert_eq!(&cred.cert.thumbprint(), new[0], "app {i}: the registered certificate is the one on disk");
        // Old ones: all kept (phase 1 removes nothing unless asked), but for the expired ones
        // with --remove-expired.
        let now = dates::now();
        for e in b["keyCredentials"].as_array().unwrap() {
            let c = keycred::manifest::read_entry(0, e.as_object().unwrap());
            let t = keycred::thumbprint::hex_upper(&c.sha1().unwrap());
            let expired = c.effective_end().unwrap() < now;
            assert_eq!(ta.contains(&t), !(remove_expired && expired), "app {i}: old certificate {t}");
        }
        assert!(has_valid(a), "app {i} has a valid certificate");
    }
}

/// [`assert_rotated_removing`] with nothing asked to be removed: every old certificate stays.
fn assert_rotated(before: &[Value], after: &[Value], dir: &TempDir, selected: &[usize]) {
    assert_rotated_removing(before, after, dir, selected, false)
}

#[test]
fn rotation_reports_refusing_apps_and_changes_nothing_else() {
    let apps = tenant(10);
    let t = FakeTenant::start(apps.clone(), 4);
    let selected = selected_indices(&apps);
    // Two of the selected apps refuse the PATCH.
    let (r403, r400) = (selected[0], selected[3]);
    {
        let mut s = t.state.lock().unwrap();
        s.refuse.insert(apps[r403]["appId"].as_str().unwrap().into(), 403);
        s.refuse.insert(apps[r400]["appId"].as_str().unwrap().into(), 400);
    }
    let dir = TempDir::new("fleet-refuse");
    let out = run_fleet(&[rotate_args(&t, &dir.0.display().to_string()), vec!["-o".into(), "json".into()]].concat());
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let v = stdout_json(&out);
    assert_eq!(v["selected"], selected.len() as u64);
    assert_eq!(v["failed"], 2);
    assert_eq!(v["rotated"], selected.len() as u64 - 2);
    for (i, code) in [(r403, "Authorization_RequestDenied"), (r400, "KeyCredentialsInvalidValue")] {
        let o = v["apps"].as_array().unwrap().iter().find(|o| o["appId"] == apps[i]["appId"]).unwrap();
        assert_eq!(o["result"], "failed");
        assert_eq!(o["step"], "add");
        let reason = o["reason"].as_str().unwrap();
        assert!(reason.contains(code) && reason.contains("client-request-id "), "{reason}");
    }
    let after: Vec<Value> = t.apps();
    let ok: Vec<usize> = selected.iter().copied().filter(|i| *i != r403 && *i != r400).collect();
    assert_eq!(after[r403], apps[r403]);
    assert_eq!(after[r400], apps[r400]);
    let mut before_ok = apps.clone();
    before_ok[r403] = after[r403].clone();
    before_ok[r400] = after[r400].clone();
    assert_rotated(&before_ok, &after, &dir, &ok);
    // The journal stays (the run is unfinished) and a second run retries only what failed.
    assert!(dir.path("fleet-journal.jsonl").exists());
    t.state.lock().unwrap().refuse.clear();
    let out = run_fleet(&[rotate_args(&t, &dir.0.display().to_string()), vec!["-o".into(), "json".into()]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v = stdout_json(&out);
    assert_eq!(v["rotated"], 2);
    assert_eq!(v["alreadyRotated"], selected.len() as u64 - 2);
    assert_rotated(&apps, &t.apps(), &dir, &selected);
    assert!(!dir.path("fleet-journal.jsonl").exists(), "a finished journal is moved aside");
}

#[test]
fn dry_run_prints_the_plan_and_changes_nothing() {
    let apps = tenant(6);
    let t = FakeTenant::start(apps.clone(), 999);
    let dir = TempDir::new("fleet-dry");
    let dry = vec!["--dry-run".into(), "--remove-expired".into(), "-o".into(), "json".into()];
    let out = run_fleet(&[rotate_args(&t, &dir.0.display().to_string()), dry].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v = stdout_json(&out);
    let selected = selected_indices(&apps);
    assert_eq!(v["planned"], selected.len() as u64);
    // Every selected app planned with what it removes (its expired certificates, as asked);
    // every other one skipped, with a reason.
    assert_eq!(v["skipped"], (apps.len() - selected.len()) as u64);
    for (i, a) in apps.iter().enumerate() {
        let o = v["apps"].as_array().unwrap().iter().find(|o| o["appId"] == a["appId"]).unwrap();
        if selected.contains(&i) {
            let expired: Vec<&Value> = a["keyCredentials"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| dates::parse(e["endDateTime"].as_str().unwrap(), "end").unwrap() < dates::now())
                .map(|e| &e["keyId"])
                .collect();
            assert_eq!(MIXES[i % MIXES.len()] == Mix::Expired, !expired.is_empty(), "app {i}");
            assert_eq!(o["result"], "planned", "{o}");
            assert_eq!(o["removed"].as_array().unwrap().iter().collect::<Vec<_>>(), expired, "{o}");
        } else {
            assert!(o["result"] == "skipped" && o["reason"].as_str().is_some_and(|r| !r.is_empty()), "{o}");
        }
    }
    assert_eq!(v["apps"].as_array().unwrap().len(), apps.len());
    assert_eq!(t.apps(), apps);
    assert_eq!(std::fs::read_dir(&dir.0).unwrap().count(), 0, "nothing written");
    assert!(t.log().iter().all(|l| l.method == "GET"));
}

#[test]
fn an_audit_stops_with_exit_3_naming_a_next_link_graph_gives_again() {
    let apps = tenant(6);
    let t = FakeTenant::start(apps, 2);
    t.state.lock().unwrap().repeat_next_link = 1000;
    let out = run_fleet(&[fleet_args(&t, "audit"), vec!["-o".into(), "json".into()]].concat());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    let e: Value = serde_json::from_str(err.trim()).unwrap();
    let link = format!(
        "{}/v1.0/applications?$select=id,appId,displayName,createdDateTime,keyCredentials,passwordCredentials&$top=2&$skiptoken=2",
        t.url
    );
    let message = e["error"]["message"].as_str().unwrap();
    assert!(message.contains(&format!("@odata.nextLink {link} was given before")), "{message}");
    // Stopped at the first repeat: the first page, then the page its link names, which gives
    // the same link again.
    assert_eq!(t.log().iter().filter(|l| l.path == "/v1.0/applications").count(), 2);
}

#[test]
fn an_audit_into_a_closed_pipe_stops_reading_pages_and_exits_0_quietly() {
    // 23 applications in pages of two: a whole audit reads twelve pages.
    let t = FakeTenant::start(tenant(23), 2);
    for format in ["text", "json", "csv"] {
        let before = t.log().len();
        // stdout is a pipe whose reader is gone before keycred starts: its first write fails.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let args = [fleet_args(&t, "audit"), vec!["-o".into(), format.into()]].concat();
        let out = keycred_command(&args, &[("FLEET_GRAPH_TOKEN", GRAPH_TOKEN)]).stdout(writer).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{format}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(
            out.stderr.is_empty(),
            "{format}: no error for a closed pipe: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pages = t.log()[before..].iter().filter(|l| l.path == "/v1.0/applications").count();
        // At most the page whose first row found stdout closed (JSON finds it at its opening brace).
        assert!(pages <= 1, "{format}: {pages} pages read for nobody");
    }
}

#[test]
fn a_throttled_run_waits_as_told_and_finishes() {
    // End to end, once: the binary honours a real Retry-After and goes on. A run sends about 13
    // Graph requests (3 pages, then 5 for each of the 2 apps rotated): one of them is refused.
    // Many refusals, concurrent workers and the pause they share are unit-tested on a paused
    // clock (`graph::client`), not waited out here.
    let apps = tenant(5);
    let t = FakeTenant::start(apps.clone(), 2);
    {
        let mut s = t.state.lock().unwrap();
        s.throttle_every = Some(10);
        s.retry_after = Some(1);
    }
    let dir = TempDir::new("fleet-throttle");
    let out = run_fleet(
        &[
            rotate_args(&t, &dir.0.display().to_string()),
            vec!["-o".into(), "json".into(), "--concurrency".into(), "3".into()],
        ]
        .concat(),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v = stdout_json(&out);
    let log = t.log();
    let throttled: Vec<usize> = (0..log.len()).filter(|i| log[*i].status == 429).collect();
    assert!(!throttled.is_empty(), "{log:?}");
    assert_eq!(v["throttled"], throttled.len() as u64);
    // The throttled request is sent again, with its client-request-id, no sooner than Retry-After.
    for i in throttled {
        let id = log[i].client_request_id.clone().unwrap();
        let retry = log[i + 1..].iter().find(|l| l.client_request_id.as_deref() == Some(id.as_str())).expect("retried");
        assert!(retry.at - log[i].at >= Duration::from_millis(1000), "retried {:?} after a 429", retry.at - log[i].at);
    }
    assert_rotated(&apps, &t.apps(), &dir, &selected_indices(&apps));
}

#[test]
fn sigkill_at_random_points_then_resume_gives_one_verified_certificate_per_app() {
    use rand::Rng;
    let apps = tenant(10);
    let t = FakeTenant::start(apps.clone(), 3);
    let dir = TempDir::new("fleet-kill");
    // With removals, so that a kill can land between the add and the removal too.
    let extra = vec!["--concurrency".into(), "3".into(), "--remove-expired".into()];
    let args = [rotate_args(&t, &dir.0.display().to_string()), extra].concat();
    let mut rng = rand::thread_rng();
    let mut kills = 0;
    for round in 0..12 {
        // The kill point is a request count, not a time: the tenant holds back the answer to
        // that request (its change is applied), and the process is killed while it waits. A
        // fast machine cannot finish a run before the kill; the first round kills early in the
        // listing, later rounds anywhere in what is left.
        {
            let mut s = t.state.lock().unwrap();
            let ahead = if round == 0 { rng.gen_range(1..=3) } else { rng.gen_range(1..=25) };
            s.stall_at = Some(s.requests + ahead);
            s.stalled = false;
        }
        let mut child = keycred_command(&args, &[("FLEET_GRAPH_TOKEN", GRAPH_TOKEN)])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let exited = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if t.state.lock().unwrap().stalled {
                break None;
            }
            assert!(std::time::Instant::now() < deadline, "the run neither finished nor reached its kill point");
            std::thread::sleep(Duration::from_millis(2));
        };
        if exited.is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        let _ = child.wait();
        {
            let mut s = t.state.lock().unwrap();
            s.stall_at = None;
            s.stalled = false; // releases the held answer, to a process that is gone
        }
        // Requests the killed process had sent are still being handled: let them land first,
        // so that they are checked here and cannot overtake the next run.
        t.settle();
        // Between runs: nobody locked out, nobody with two new certificates.
        for (i, (b, a)) in apps.iter().zip(t.apps()).enumerate() {
            assert!(has_valid(&a) || !has_valid(b), "after a kill, app {i} lost its valid certificate");
            let new = thumbs(&a).into_iter().filter(|x| !thumbs(b).contains(x)).count();
            assert!(new <= 1, "after a kill, app {i} has {new} new certificates");
        }
        if exited.is_some() {
            break;
        }
    }
    eprintln!("killed {kills} times");
    assert!(kills >= 1, "no run was killed: the test proves nothing");
    let out = run_fleet(&[args.clone(), vec!["-o".into(), "json".into()]].concat());
    assert!(out.status.success(), "after {kills} kills: {}", String::from_utf8_lossy(&out.stderr));
    assert_rotated_removing(&apps, &t.apps(), &dir, &selected_indices(&apps), true);
    // Every new certificate was verified: the token endpoint accepted each app's new key.
    let v = stdout_json(&out);
    assert_eq!(v["failed"], 0);
}

#[test]
fn service_principals_report_a_saml_triple_once_and_never_its_password() {
    let apps = tenant(2);
    let t = FakeTenant::start(apps, 999);
    let c = cert();
    let mut verify = entry_ending_in(&c, 20);
    let sign_id = "5a1e0000-0000-4000-8000-00000000000a";
    let mut sign = verify.clone();
    sign["usage"] = serde_json::json!("Sign");
    sign["keyId"] = serde_json::json!(sign_id);
    sign["key"] = Value::Null;
    verify["keyId"] = serde_json::json!("5a1e0000-0000-4000-8000-00000000000b");
    t.state.lock().unwrap().sps.push(serde_json::json!({
        "id": "sp-1", "appId": "b0000000-0000-4000-8000-000000000001", "displayName": "SAML app",
        "preferredTokenSigningKeyThumbprint": c.thumbprint().to_lowercase(),
        "keyCredentials": [sign, verify],
        "passwordCredentials": [{"keyId": sign_id, "customKeyIdentifier": c.custom_key_identifier(),
            "startDateTime": "2026-01-01T00:00:00Z", "endDateTime": "2030-01-01T00:00:00Z"}]
    }));
    let out = run_fleet(
        &[fleet_args(&t, "audit"), vec!["--include-service-principals".into(), "-o".into(), "json".into()]].concat(),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v = stdout_json(&out);
    let sp: Vec<&Value> =
        v["credentials"].as_array().unwrap().iter().filter(|r| r["objectType"] == "servicePrincipal").collect();
    assert_eq!(sp.len(), 1, "{sp:?}");
    assert_eq!(sp[0]["kind"], "certificate");
    assert_eq!(sp[0]["status"], "expiring");
    assert_eq!(sp[0]["thumbprint"], c.thumbprint().as_str());
    assert_eq!(v["summary"]["servicePrincipals"], 1);
    // Without the flag, no service principal is read.
    let out = run_fleet(&[fleet_args(&t, "audit"), vec!["-o".into(), "json".into()]].concat());
    assert!(stdout_json(&out)["credentials"].as_array().unwrap().iter().all(|r| r["objectType"] == "application"));
    assert!(t.log().iter().filter(|l| l.path == "/v1.0/servicePrincipals").count() == 1);
}

#[test]
fn an_expired_graph_token_is_renewed_once_and_the_run_goes_on() {
    // The automation app: one of the tenant's apps, signing in with its certificate.
    let auto = keycred::cert::generate(&keycred::cert::NewCertificate {
        subject: "CN=automation".into(),
        key_size: keycred::cert::KeySize::Rsa2048,
        validity: keycred::cert::Validity::Days(30),
    })
    .unwrap();
    let mut apps = tenant(9);
    apps[0]["keyCredentials"] = serde_json::json!([valid_entry(&auto.0)]);
    let t = FakeTenant::start(apps, 2);
    t.state.lock().unwrap().expire_tokens_after = Some(2);
    let dir = TempDir::new("fleet-renew");
    let bundle = dir.path("automation.pem");
    std::fs::write(&bundle, format!("{}{}", auto.1.to_pem(None).unwrap(), auto.0.to_pem())).unwrap();
    let args: Vec<String> = [
        "fleet",
        "audit",
        "--tenant",
        TENANT,
        "--graph-url",
        &t.url,
        "--authority",
        &t.url,
        "--client-id",
        apps_first_id(),
        "--cert",
        &bundle.display().to_string(),
        "-o",
        "json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = keycred_command(&args, &[]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout_json(&out)["summary"]["applications"], 9);
    let log = t.log();
    assert_eq!(log.iter().filter(|l| l.status == 401).count(), 1, "{log:?}");
    assert_eq!(t.state.lock().unwrap().token_requests, 2, "one token, then one renewal");
}

fn apps_first_id() -> &'static str {
    "a0000000-0000-4000-8000-000000000000"
}

#[cfg(unix)]
fn mode_of(p: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).permissions().mode() & 0o777
}

#[cfg(unix)]
#[test]
fn a_missing_out_dir_is_created_and_every_directory_holding_keys_is_private() {
    let apps = tenant(5);
    let t = FakeTenant::start(apps.clone(), 999);
    let dir = TempDir::new("fleet-mkdir");
    // Two levels missing, as `keycred new --out-dir` accepts.
    let out_dir = dir.path("rotation/tonight");
    let out = run_fleet(&[rotate_args(&t, &out_dir.display().to_string()), vec!["-o".into(), "json".into()]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(mode_of(&out_dir), 0o700, "OUT_DIR holds keys: 0700");
    let selected = selected_indices(&apps);
    for i in &selected {
        let app_dir = out_dir.join(apps[*i]["appId"].as_str().unwrap());
        assert_eq!(mode_of(&app_dir), 0o700, "{}: 0700", app_dir.display());
    }
    assert_rotated(&apps, &t.apps(), &TempDir(out_dir.clone()), &selected);
    // A file in the way is still refused, before anything is read or written.
    let file = dir.path("a-file");
    std::fs::write(&file, "x").unwrap();
    let out = run_fleet(&rotate_args(&t, &file.join("sub").display().to_string()));
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not a directory"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[cfg(unix)]
#[test]
fn a_fifo_as_journal_is_refused_at_once_with_exit_2() {
    let apps = tenant(3);
    let t = FakeTenant::start(apps.clone(), 999);
    let dir = TempDir::new("fleet-fifo");
    let fifo = dir.path("journal.fifo");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success(), "mkfifo failed");
    let args =
        [rotate_args(&t, &dir.0.display().to_string()), vec!["--journal".into(), fifo.display().to_string()]].concat();
    let mut child = keycred_command(&args, &[("FLEET_GRAPH_TOKEN", GRAPH_TOKEN)])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            let _ = child.wait();
            panic!("a FIFO given as --journal hung the run (opened for reading, waiting for a writer)");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("FIFO") && err.contains("journal.fifo"), "{err}");
    assert_eq!(t.apps(), apps, "nothing changed");
    assert!(t.log().iter().all(|l| l.method == "GET"), "nothing written to Graph");
}

#[test]
fn apps_with_nothing_to_replace_are_reported_skipped_with_their_reason() {
    let mut apps = tenant(5);
    // One with only a client secret, one with no credential at all.
    let mut secrets_only = app(5, Mix::Valid, &[cert()]);
    secrets_only["keyCredentials"] = serde_json::json!([]);
    let mut bare = app(6, Mix::Valid, &[cert()]);
    bare["keyCredentials"] = serde_json::json!([]);
    bare["passwordCredentials"] = serde_json::json!([]);
    apps.push(secrets_only);
    apps.push(bare);
    let t = FakeTenant::start(apps.clone(), 999);
    let dir = TempDir::new("fleet-skip");
    let out = run_fleet(&[rotate_args(&t, &dir.0.display().to_string()), vec!["-o".into(), "json".into()]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v = stdout_json(&out);
    let selected = selected_indices(&apps[..5]);
    assert_eq!(v["selected"], selected.len() as u64);
    assert_eq!(v["rotated"], selected.len() as u64);
    assert_eq!(v["skipped"], 5);
    let of = |i: usize| v["apps"].as_array().unwrap().iter().find(|o| o["appId"] == apps[i]["appId"]).unwrap().clone();
    // apps 0 (valid), 3 (unusable), 4 (a valid and an expiring one: rotated already), 5 (secrets
    // only), 6 (nothing), each with its reason.
    for (i, why) in [
        (0, "none ends within 30d"),
        (3, "none is usable"),
        (4, "already rotated: keyId "),
        (5, "only client secrets"),
        (6, "no credential"),
    ] {
        let o = of(i);
        assert_eq!(o["result"], "skipped", "app {i}: {o}");
        assert!(o["reason"].as_str().unwrap().contains(why), "app {i}: {o}");
        assert_eq!(o["displayName"], apps[i]["displayName"], "app {i}");
    }
    assert_eq!(t.apps()[5], apps[5]);
    assert_eq!(t.apps()[6], apps[6]);
    assert_rotated(&apps, &t.apps(), &dir, &selected);

    // Named explicitly: an app with certificates is rotated whatever their dates, one with
    // only a secret is still skipped (a certificate is never added where there was none).
    let t = FakeTenant::start(apps.clone(), 999);
    let dir = TempDir::new("fleet-skip-named");
    let out = run_fleet(
        &[
            fleet_args(&t, "rotate"),
            vec![
                "--app-id".into(),
                apps[0]["appId"].as_str().unwrap().into(),
                "--app-id".into(),
                apps[5]["appId"].as_str().unwrap().into(),
                "--out-dir".into(),
                dir.0.display().to_string(),
            ],
        ]
        .concat(),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let line = text.lines().find(|l| l.starts_with(apps[5]["appId"].as_str().unwrap())).unwrap();
    assert!(line.contains("skipped") && line.contains("only client secrets"), "{text}");
    assert!(text.contains("1 selected: 1 rotated") && text.contains("; 1 skipped;"), "{text}");
    assert_eq!(t.apps()[5], apps[5]);
    assert_eq!(thumbs(&t.apps()[0]).len(), 2, "app 0 got its new certificate and kept its valid one");
}

#[test]
fn hostile_display_names_are_escaped_in_csv_and_the_table_and_never_formulas() {
    let mut apps = tenant(5);
    // Anyone who owns an app sets its display name: a terminal escape, a C1 control (NEL), and
    // formulas a spreadsheet would run.
    let hostile = "red \u{1b}[31m and \u{85} next";
    apps[3]["displayName"] = serde_json::json!(hostile); // the unusable one: its row has a reason
    let formulas = ["=HYPERLINK(\"x\")", "+1", "-1+2", "@SUM(A1)"];
    for (i, f) in [0, 1, 2, 4].into_iter().zip(formulas) {
        apps[i]["displayName"] = serde_json::json!(f);
    }
    let t = FakeTenant::start(apps.clone(), 999);
    let escaped = "red \\x1b[31m and \\x85 next";

    let out = run_fleet(&[fleet_args(&t, "audit"), vec!["-o".into(), "csv".into()]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let raw = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(!raw.contains('\u{1b}') && !raw.contains('\u{85}'), "raw control characters in the CSV: {raw:?}");
    let rows = csv_rows(&out.stdout);
    let of = |i: usize| -> Vec<&Value> { rows.iter().filter(|r| r["appId"] == apps[i]["appId"]).collect() };
    for r in of(3) {
        assert_eq!(r["displayName"], escaped, "{r}");
    }
    for (i, f) in [0, 1, 2, 4].into_iter().zip(formulas) {
        let rs = of(i);
        assert!(!rs.is_empty());
        for r in rs {
            assert_eq!(r["displayName"].as_str().unwrap(), format!("'{f}"), "app {i}: {r}");
        }
    }
    // Only free text is prefixed: ids, thumbprints, dates and numbers stay data.
    let expired = of(2).into_iter().find(|r| r["kind"] == "certificate").unwrap();
    assert!(expired["daysLeft"].as_str().unwrap().parse::<i64>().unwrap() < 0, "{expired}");
    for r in &rows {
        for k in ["appId", "keyId", "thumbprint", "start", "end", "daysLeft"] {
            assert!(!r[k].as_str().unwrap().starts_with('\''), "{k}: {r}");
        }
    }

    // The table: escaped too, and escaped before padding, so the REASON column stays in place.
    let out = run_fleet(&fleet_args(&t, "audit"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains('\u{1b}') && !text.contains('\u{85}'), "{text:?}");
    let lines: Vec<&str> = text.lines().collect();
    let col = |name: &str| lines[0].find(name).unwrap();
    let (name_col, reason_col) = (col("NAME"), col("REASON"));
    let row = lines
        .iter()
        .find(|l| l.starts_with(apps[3]["appId"].as_str().unwrap()) && l.contains(" certificate "))
        .unwrap();
    // Columns counted in characters: a name longer than its column ends with an ellipsis.
    let row: Vec<char> = row.chars().collect();
    let from = |col: usize| row[col..].iter().collect::<String>();
    assert!(row.iter().all(|c| !c.is_control()), "{row:?}");
    let shown = if escaped.chars().count() > 24 { format!("{}…", &escaped[..23]) } else { escaped.to_string() };
    assert!(from(name_col).starts_with(&shown), "{}", from(0));
    assert!(from(reason_col).starts_with("usage is"), "the REASON column moved:\n{}\n{}", lines[0], from(0));

    // JSON too: no raw C1 control (serde_json leaves them as they are).
    let out = run_fleet(&[fleet_args(&t, "audit"), vec!["-o".into(), "json".into()]].concat());
    let raw = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(!raw.contains('\u{85}'), "{raw:?}");
    let v = stdout_json(&out);
    let r = v["credentials"].as_array().unwrap().iter().find(|r| r["appId"] == apps[3]["appId"]).unwrap();
    assert_eq!(r["displayName"], hostile, "JSON keeps the name itself, escaped as JSON");
}
