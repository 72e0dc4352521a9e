//! With `-o json`, every error object carries the code the remote service refused with, so that
//! scripts branch on codes rather than on the message's text: `aadsts` (Entra's number, as a
//! JSON number) and `graphCode` (Graph's `error.code`), `null` when there is none. The top-level
//! error, each failed application of `fleet rotate`, and the failed step of `check`.

use crate::rotation_support::*;
use serde_json::{json, Value};

fn error_of(out: &Out) -> Value {
    let v: Value = serde_json::from_str(out.stderr.trim()).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    v["error"].clone()
}

#[test]
fn entra_and_graph_refusals_carry_their_codes() {
    let dir = TempDir::new("json-codes");
    let registered = credential("registered", 365);
    let manifest = dir.path("app.json");
    write_manifest(&manifest, OBJECT_ID, APP_ID, &[entry(&registered.cert)]);
    let emu = emulator(&[&manifest], &[(API, &["Data.Read"])], false);
    let base = emu.info().base_url().to_string();
    let stranger = write_cred(&dir, "stranger", &credential("not registered", 365));

    // Entra: a certificate the app does not hold is AADSTS700027.
    let common = ["--client-id", APP_ID, "--tenant", TENANT, "--authority", &base, "-o", "json"];
    let token =
        cli(&[&["token", "--cert", &stranger, "--scope", &format!("{API}/.default")][..], &common].concat(), &[]);
    assert_eq!(token.code, 3, "{token:?}");
    let e = error_of(&token);
    assert_eq!((&e["aadsts"], &e["graphCode"], &e["exitCode"]), (&json!(700027), &Value::Null, &json!(3)), "{e}");

    // The same refusal in `check`: the token step carries the code.
    let check = cli(&[&["check", "--cert", &stranger, "--scope", API][..], &common].concat(), &[]);
    assert_eq!(check.code, 3, "{check:?}");
    let steps = check.json();
    let failed = steps.as_array().unwrap().iter().find(|s| s["id"] == "token_issued").unwrap();
    assert_eq!((&failed["outcome"], &failed["aadsts"]), (&json!("fail"), &json!(700027)), "{failed}");

    // Graph: a token it does not accept is InvalidAuthenticationToken.
    let graph = cli(
        &[
            "graph",
            "list",
            "--app-id",
            APP_ID,
            "--tenant",
            TENANT,
            "--graph-token-env",
            "GT",
            "--graph-url",
            &base,
            "-o",
            "json",
        ],
        &[("GT", "not-a-token")],
    );
    assert_eq!(graph.code, 3, "{graph:?}");
    let e = error_of(&graph);
    assert_eq!((&e["aadsts"], &e["graphCode"]), (&Value::Null, &json!("InvalidAuthenticationToken")), "{e}");

    // No remote service involved: both present, null.
    let local = cli(&["manifest", "list", &dir.s("missing.json"), "-o", "json"], &[]);
    assert_eq!(local.code, 2, "{local:?}");
    let e = error_of(&local);
    assert_eq!((&e["aadsts"], &e["graphCode"]), (&Value::Null, &Value::Null), "{e}");
}

#[test]
fn each_failed_application_of_fleet_rotate_carries_graphs_code() {
    use crate::fleet_support::*;
    let apps = tenant(5);
    let t = FakeTenant::start(apps.clone(), 999);
    // App 1 (expiring) refuses the PATCH with 403 Authorization_RequestDenied.
    let refused = apps[1]["appId"].as_str().unwrap().to_string();
    t.state.lock().unwrap().refuse.insert(refused.clone(), 403);
    let dir = TempDir::new("json-codes-fleet");
    let mut args = fleet_args(&t, "rotate");
    args.extend(["--expiring-within", "30d", "--out-dir", &dir.s("out"), "-o", "json"].map(String::from));
    let out = run_fleet(&args);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    for o in v["apps"].as_array().unwrap() {
        let expected = if o["appId"] == refused.as_str() { json!("Authorization_RequestDenied") } else { Value::Null };
        assert_eq!((&o["graphCode"], &o["aadsts"]), (&expected, &Value::Null), "{o}");
    }
}
