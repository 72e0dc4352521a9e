//! `keycred graph list/add/remove/rotate` against the emulator's Graph endpoints, and the
//! emulator's proof-of-possession checks exercised with hand-built proofs.

use crate::rotation_support as support;

use keycred::cert::{LoadedCredential, SignatureAlg};
use keycred::graph::{proof_of_possession, PROOF_AUD_AAD_GRAPH, PROOF_AUD_MS_GRAPH};
use serde_json::{json, Map, Value};
use std::path::PathBuf;
use support::*;

struct App {
    dir: TempDir,
    manifest: PathBuf,
    lines: Vec<String>,
    key_ids: Vec<String>,
    a: LoadedCredential,
    a_pem: String,
}

/// An app holding certificate A (valid) and, with `portal`, a null-body entry P (as downloaded).
fn app(portal: bool) -> App {
    let dir = TempDir::new("rot-test");
    let a = credential("graph app A", 365);
    let a_pem = write_cred(&dir, "a", &a);
    let mut entries = vec![entry(&a.cert)];
    if portal {
        entries.push(null_body_entry(&credential("portal P", 365).cert));
    }
    let key_ids = entries.iter().map(|e| e["keyId"].as_str().unwrap().to_string()).collect();
    let manifest = dir.path("app.json");
    let lines = write_manifest(&manifest, OBJECT_ID, APP_ID, &entries);
    App { dir, manifest, lines, key_ids, a, a_pem }
}

fn graph(sub: &str, base: &str, app_id: &str, extra: &[&str], envs: &[(&str, &str)]) -> Out {
    let mut args = vec![
        "graph",
        sub,
        "--app-id",
        app_id,
        "--tenant",
        TENANT,
        "--authority",
        base,
        "--graph-url",
        base,
        "-o",
        "json",
    ];
    args.extend_from_slice(extra);
    cli(&args, envs)
}

fn graph_token(base: &str, client_id: &str, cred: &LoadedCredential) -> String {
    let (status, body) = token_with(base, client_id, cred, GRAPH);
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_string()
}

#[test]
fn self_rotation_list_add_remove() {
    let app = app(true);
    let emu = emulator(&[&app.manifest], &[], false);
    let base = emu.info().base_url();
    let out = graph("list", base, APP_ID, &["--cert", &app.a_pem], &[]);
    assert_eq!(out.code, 0, "{out:?}");
    let rows = out.json();
    assert_eq!(rows.as_array().unwrap().len(), 2, "{rows}");
    assert_eq!(rows[0]["keyId"], app.key_ids[0]);
    assert_eq!(rows[0]["thumbprint"], app.a.cert.thumbprint());
    assert_eq!(rows[1]["hasBody"], false);

    let b = credential("graph app B", 365);
    write_cred(&app.dir, "b", &b);
    let out = graph(
        "add",
        base,
        APP_ID,
        &["--cert", &app.a_pem, "--policy-unknown-ok", "--new-cert", &app.dir.s("b.cer")],
        &[],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let j = out.json();
    assert_eq!(j["method"], "addKey");
    // addKey without a customKeyIdentifier: Graph fills the hex thumbprint.
    assert_eq!(j["keyCredential"]["customKeyIdentifier"], b.cert.thumbprint());
    let b_key_id = j["keyCredential"]["keyId"].as_str().unwrap().to_string();
    // Persisted: A and P byte for byte, B appended.
    let text = std::fs::read_to_string(&app.manifest).unwrap();
    assert!(text.contains(&app.lines[0]) && text.contains(&app.lines[1]), "{text}");
    let entries = entries_of(&app.manifest);
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[2]["keyId"], b_key_id);
    assert_eq!(entries[2]["key"], b.cert.value_b64());
    // B gets a token now.
    assert_eq!(token_with(base, APP_ID, &b, API).0, 400, "API is unknown to this emulator");
    assert_eq!(token_with(base, APP_ID, &b, GRAPH).0, 200);

    // Adding the same certificate again is refused before any call changes anything.
    let out = graph(
        "add",
        base,
        APP_ID,
        &["--cert", &app.a_pem, "--policy-unknown-ok", "--new-cert", &app.dir.s("b.cer")],
        &[],
    );
    assert_eq!(out.code, 2, "{out:?}");
    assert_eq!(entries_of(&app.manifest).len(), 3);

    let out = graph("remove", base, APP_ID, &["--cert", &app.a_pem, "--key-id", &b_key_id], &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["method"], "removeKey");
    assert_eq!(out.json()["keyCredential"]["keyId"], b_key_id);
    let after = std::fs::read_to_string(&app.manifest).unwrap();
    assert!(after.contains(&app.lines[0]) && after.contains(&app.lines[1]), "{after}");
    assert_eq!(entries_of(&app.manifest).len(), 2);
    let (status, body) = token_with(base, APP_ID, &b, GRAPH);
    assert_eq!(status, 401);
    assert_eq!(body["error_codes"][0], 700027);

    // Removing by thumbprint (hex with colons, as openssl prints it) and a keyId that is absent.
    let missing = uuid::Uuid::new_v4().to_string();
    let out = graph("remove", base, APP_ID, &["--cert", &app.a_pem, "--key-id", &missing], &[]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains(&missing), "{}", out.stderr);
}

#[test]
fn rotate_adds_and_verifies_keeping_the_old_certificate_and_removes_only_what_is_named() {
    let app = app(true);
    let emu = emulator(&[&app.manifest], &[(GRAPH, &["Policy.Read.All"])], false);
    let base = emu.info().base_url();
    std::fs::create_dir(app.dir.path("new")).unwrap();
    // Phase 1 keeps the current certificate: running instances still hold it.
    let out =
        graph("rotate", base, APP_ID, &["--cert", &app.a_pem, "--name", "b", "--out-dir", &app.dir.s("new")], &[]);
    assert_eq!(out.code, 0, "{out:?}");
    let j = out.json();
    assert_eq!(j["methods"], json!({"added": "addKey", "removed": null}));
    assert_eq!(j["removed"], json!([]));
    let b = keycred::cert::load_credential(&app.dir.path("new/b.pem"), None, None).unwrap();
    assert_eq!(j["keyId"], j["added"]["keyId"]);
    assert_eq!(j["deploy"], Value::Null);
    assert!(j["retireFrom"].as_str().is_some(), "{j}");
    assert_eq!(entries_of(&app.manifest).len(), 3);
    assert_eq!(token_with(base, APP_ID, &app.a, GRAPH).0, 200, "the old certificate still signs in");
    assert_eq!(token_with(base, APP_ID, &b, GRAPH).0, 200);

    // Naming the old certificate removes it once the new one is verified.
    let out = graph(
        "rotate",
        base,
        APP_ID,
        &["--cert", &app.a_pem, "--name", "c", "--out-dir", &app.dir.s("new"), "--remove", &app.key_ids[0]],
        &[],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let j = out.json();
    // The shape of `keycred rotate -o json`, plus the Graph methods used.
    assert_eq!(j["methods"], json!({"added": "addKey", "removed": "removeKey"}));
    let c = keycred::cert::load_credential(&app.dir.path("new/c.pem"), None, None).unwrap();
    assert_eq!(j["added"]["customKeyIdentifier"], c.cert.thumbprint());
    assert!(j["added"].get("@odata.context").is_none(), "{j}");
    assert_eq!(j["removed"].as_array().unwrap().len(), 1);
    assert_eq!(j["removed"][0]["keyId"], app.key_ids[0]);
    assert_eq!(j["removed"][0]["thumbprint"], app.a.cert.thumbprint());
    assert_eq!(j["verifiedWith"], format!("{base}/{TENANT}/oauth2/v2.0/token"));
    assert_eq!(j["files"]["bundle"], app.dir.s("new/c.pem"));
    assert_eq!(j["thumbprint"], c.cert.thumbprint());
    // On disk: P kept byte for byte, A gone, B and C added.
    let text = std::fs::read_to_string(&app.manifest).unwrap();
    assert!(!text.contains(&app.lines[0]), "{text}");
    assert!(text.contains(&app.lines[1]), "{text}");
    assert_eq!(ckis_of(&app.manifest)[1..], [b.cert.thumbprint(), c.cert.thumbprint()]);
    // The old certificate is refused with 700027 quoting its thumbprint; the new one works.
    let (status, body) = token_with(base, APP_ID, &app.a, GRAPH);
    assert_eq!(status, 401);
    assert_eq!(body["error_codes"], json!([700027]));
    assert!(body["error_description"].as_str().unwrap().contains(&app.a.cert.thumbprint()));
    assert_eq!(token_with(base, APP_ID, &c, GRAPH).0, 200);
}

fn header(cred: &LoadedCredential) -> Map<String, Value> {
    let mut h = Map::new();
    h.insert("typ".into(), json!("JWT"));
    h.insert("x5t".into(), json!(cred.cert.x5t()));
    h
}

#[test]
fn proofs_are_checked() {
    let app = app(true);
    let emu = emulator(&[&app.manifest], &[], false);
    let base = emu.info().base_url();
    let token = graph_token(base, APP_ID, &app.a);
    let before = std::fs::read(&app.manifest).unwrap();
    let new = credential("proof test new", 365);
    let add_url = format!("{base}/v1.0/applications/{OBJECT_ID}/addKey");
    let add = |proof: &str| {
        let body = json!({
            "keyCredential": {"type": "AsymmetricX509Cert", "usage": "Verify", "key": new.cert.value_b64()},
            "passwordCredential": null,
            "proof": proof,
        });
        send_json(reqwest::Method::POST, &add_url, &token, Some(&body))
    };
    let now = keycred::jwt::now_secs();
    let sign = |cred: &LoadedCredential, claims: Value| {
        keycred::jwt::sign(&*cred.key, SignatureAlg::Rs256, header(cred), &claims).unwrap()
    };
    let stranger = credential("not registered", 365);
    let cases = [
        ("wrong aud", sign(&app.a, json!({"aud": GRAPH, "iss": OBJECT_ID, "nbf": now, "exp": now + 600})), "aud"),
        (
            "expired",
            sign(&app.a, json!({"aud": PROOF_AUD_AAD_GRAPH, "iss": OBJECT_ID, "nbf": now - 1800, "exp": now - 1200})),
            "expired",
        ),
        (
            "unregistered key",
            sign(&stranger, json!({"aud": PROOF_AUD_AAD_GRAPH, "iss": OBJECT_ID, "nbf": now, "exp": now + 600})),
            &stranger.cert.thumbprint(),
        ),
        (
            "iss = appId",
            sign(&app.a, json!({"aud": PROOF_AUD_AAD_GRAPH, "iss": APP_ID, "nbf": now, "exp": now + 600})),
            "object id",
        ),
        ("not a JWT", "not.a.jwt".to_string(), "not a JWT"),
    ];
    for (what, proof, needle) in &cases {
        let (status, body) = add(proof);
        assert_eq!(status, 400, "{what}: {body}");
        assert_eq!(body["error"]["code"], "Authorization_RequestDenied", "{what}: {body}");
        let msg = body["error"]["message"].as_str().unwrap();
        assert!(msg.starts_with("Invalid proof of possession: "), "{what}: {msg}");
        assert!(msg.contains(needle), "{what}: {msg}");
        assert_eq!(std::fs::read(&app.manifest).unwrap(), before, "{what} changed the manifest");
    }
    // A key registered but with another certificate's x5t does not verify.
    let mut forged = header(&app.a);
    forged.insert("x5t".into(), json!(app.a.cert.x5t()));
    let p = keycred::jwt::sign(
        &stranger.key,
        SignatureAlg::Rs256,
        forged,
        &json!({"aud": PROOF_AUD_AAD_GRAPH, "iss": OBJECT_ID, "nbf": now, "exp": now + 600}),
    )
    .unwrap();
    let (status, body) = add(&p);
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("signature does not verify"), "{body}");
    // removeKey checks proofs the same way.
    let rm_url = format!("{base}/v1.0/applications/{OBJECT_ID}/removeKey");
    let (status, body) =
        send_json(reqwest::Method::POST, &rm_url, &token, Some(&json!({"keyId": app.key_ids[1], "proof": cases[1].1})));
    assert_eq!(status, 400, "{body}");
    assert_eq!(std::fs::read(&app.manifest).unwrap(), before);
    // No bearer token, or one for another resource: 401.
    let (status, _) = send_json(reqwest::Method::GET, &format!("{base}/v1.0/applications/{OBJECT_ID}"), "x.y.z", None);
    assert_eq!(status, 401);
    // The correct proof, both documented audiences.
    for aud in [PROOF_AUD_AAD_GRAPH, PROOF_AUD_MS_GRAPH] {
        let p = proof_of_possession(&app.a, OBJECT_ID, aud).unwrap();
        let d = keycred::jwt::dangerous::decode(p.expose()).unwrap();
        assert_eq!(d.claims["iss"], OBJECT_ID);
        assert_eq!(d.claims["exp"].as_i64().unwrap() - d.claims["nbf"].as_i64().unwrap(), 600);
        assert!(!p.expose().contains('='));
        if aud == PROOF_AUD_AAD_GRAPH {
            let (status, body) = add(p.expose());
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["customKeyIdentifier"], new.cert.thumbprint());
        } else {
            let (status, body) = send_json(
                reqwest::Method::POST,
                &rm_url,
                &token,
                Some(&json!({"keyId": app.key_ids[1], "proof": p.expose()})),
            );
            // Real Graph refuses a proof for Microsoft Graph's own id (PROTOCOL.md section 7).
            assert_eq!(status, 401, "{body}");
            assert_eq!(body["error"]["code"], "Authentication_MissingOrMalformed", "{body}");
            let p = proof_of_possession(&app.a, OBJECT_ID, PROOF_AUD_AAD_GRAPH).unwrap();
            let (status, body) = send_json(
                reqwest::Method::POST,
                &rm_url,
                &token,
                Some(&json!({"keyId": app.key_ids[1], "proof": p.expose()})),
            );
            assert_eq!(status, 204, "{body}");
        }
    }
    let ckis = ckis_of(&app.manifest);
    assert_eq!(ckis, vec![app.a.cert.custom_key_identifier(), new.cert.thumbprint()]);
}

#[test]
fn patch_keeps_every_other_entry() {
    let app = app(true);
    let emu = emulator(&[&app.manifest], &[(GRAPH, &["Application.ReadWrite.All"])], false);
    let base = emu.info().base_url();
    let b = credential("patched B", 365);
    write_cred(&app.dir, "b", &b);
    let out = graph(
        "add",
        base,
        APP_ID,
        &["--cert", &app.a_pem, "--patch", "--policy-unknown-ok", "--new-cert", &app.dir.s("b.cer")],
        &[],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let j = out.json();
    assert_eq!(j["method"], "PATCH");
    let b_key_id = j["keyCredential"]["keyId"].as_str().unwrap().to_string();
    let text = std::fs::read_to_string(&app.manifest).unwrap();
    assert!(text.contains(&app.lines[0]), "A changed:\n{text}");
    assert!(text.contains(&app.lines[1]), "null-body P changed:\n{text}");
    let entries = entries_of(&app.manifest);
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[2]["keyId"], b_key_id);
    assert_eq!(entries[2]["key"], b.cert.value_b64());
    assert_eq!(token_with(base, APP_ID, &b, GRAPH).0, 200);

    let out = graph("remove", base, APP_ID, &["--cert", &app.a_pem, "--patch", "--key-id", &b_key_id], &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["method"], "PATCH");
    let text = std::fs::read_to_string(&app.manifest).unwrap();
    assert!(text.contains(&app.lines[0]) && text.contains(&app.lines[1]), "{text}");
    assert_eq!(entries_of(&app.manifest).len(), 2);
}

#[test]
fn patch_without_write_role_is_refused_with_3() {
    let app = app(true);
    let emu = emulator(&[&app.manifest], &[], false);
    let before = std::fs::read(&app.manifest).unwrap();
    let b = credential("refused B", 365);
    write_cred(&app.dir, "b", &b);
    let out = graph(
        "add",
        emu.info().base_url(),
        APP_ID,
        &["--cert", &app.a_pem, "--patch", "--policy-unknown-ok", "--new-cert", &app.dir.s("b.cer")],
        &[],
    );
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("403") && out.stderr.contains("Authorization_RequestDenied"), "{}", out.stderr);
    assert!(out.stderr.contains("Application.ReadWrite"), "hint names the role: {}", out.stderr);
    assert_eq!(std::fs::read(&app.manifest).unwrap(), before);
}

#[test]
fn removing_the_last_valid_certificate_needs_force() {
    let app = app(false);
    let emu = emulator(&[&app.manifest], &[], false);
    let before = std::fs::read(&app.manifest).unwrap();
    let out = graph("remove", emu.info().base_url(), APP_ID, &["--cert", &app.a_pem, "--key-id", &app.key_ids[0]], &[]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("last currently valid certificate"), "{}", out.stderr);
    assert_eq!(std::fs::read(&app.manifest).unwrap(), before);
    // A base64url thumbprint may start with '-': it is a value, not an unknown flag.
    let out = graph(
        "remove",
        emu.info().base_url(),
        APP_ID,
        &["--cert", &app.a_pem, "--thumbprint", "-Ze6vZe-wCQTTnl2_zKJm3Z1ZXw"],
        &[],
    );
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("no certificate with thumbprint F997BABD97BEC024134E7976FF32899B7675657C"),
        "{}",
        out.stderr
    );
    assert_eq!(std::fs::read(&app.manifest).unwrap(), before);
    let thumb = app.a.cert.thumbprint();
    let out =
        graph("remove", emu.info().base_url(), APP_ID, &["--cert", &app.a_pem, "--thumbprint", &thumb, "--force"], &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["method"], "removeKey");
    assert_eq!(entries_of(&app.manifest).len(), 0);
}

#[test]
fn no_valid_certificate_left_falls_back_to_patch() {
    let dir = TempDir::new("rot-test");
    // The app's only certificate expired.
    let out = cli(
        &["new", "--name", "old", "--out-dir", &dir.s(""), "--not-before", "2020-01-01", "--not-after", "2021-01-01"],
        &[],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let old = keycred::cert::load_file(&dir.path("old.cer"), None).unwrap().certs.remove(0);
    let manifest = dir.path("app.json");
    let lines = write_manifest(&manifest, OBJECT_ID, APP_ID, &[entry(&old)]);
    // An administrator app with a secret.
    let admin_manifest = dir.path("admin.json");
    write_manifest(&admin_manifest, ADMIN_OBJECT_ID, ADMIN_APP_ID, &[entry(&credential("admin", 365).cert)]);
    let emu = emulator(&[&manifest, &admin_manifest], &[(GRAPH, &["Application.ReadWrite.All"])], true);
    let base = emu.info().base_url();
    let out = cli(
        &[
            "token",
            "--client-id",
            ADMIN_APP_ID,
            "--tenant",
            TENANT,
            "--authority",
            base,
            "--secret-env",
            "KC_TEST_SECRET",
            "--scope",
            GRAPH,
            "--raw",
        ],
        &[("KC_TEST_SECRET", SECRET)],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let admin_token = out.stdout.trim().to_string();
    assert_eq!(admin_token.split('.').count(), 3);

    let new = credential("recovery", 365);
    write_cred(&dir, "new", &new);
    // With the expired certificate given (it cannot sign a proof) and without any.
    for with_cert in [true, false] {
        let m = if with_cert { vec!["--cert", "old.pem"] } else { vec![] };
        let old_pem = dir.s("old.pem");
        let mut extra: Vec<&str> = m.iter().map(|s| if *s == "old.pem" { old_pem.as_str() } else { s }).collect();
        let new_cer = dir.s("new.cer");
        extra.extend(["--graph-token-env", "KC_TEST_GRAPH_TOKEN", "--policy-unknown-ok", "--new-cert", &new_cer]);
        let out = graph("add", base, APP_ID, &extra, &[("KC_TEST_GRAPH_TOKEN", &admin_token)]);
        if !with_cert {
            // Already added by the first round: refused as a duplicate, nothing changed.
            assert_eq!(out.code, 2, "{out:?}");
            assert!(out.stderr.contains("already registered"), "{}", out.stderr);
            continue;
        }
        assert_eq!(out.code, 0, "{out:?}");
        assert_eq!(out.json()["method"], "PATCH");
    }
    let text = std::fs::read_to_string(&manifest).unwrap();
    assert!(text.contains(&lines[0]), "expired entry changed:\n{text}");
    assert_eq!(ckis_of(&manifest), vec![old.custom_key_identifier(), new.cert.thumbprint()]);
    assert_eq!(token_with(base, APP_ID, &new, GRAPH).0, 200);
    // addKey itself is refused for such an app: a proof signed by the expired certificate.
    let old_cred = keycred::cert::load_credential(&dir.path("old.pem"), None, None).unwrap();
    let p = proof_of_possession(&old_cred, OBJECT_ID, PROOF_AUD_AAD_GRAPH).unwrap();
    let (status, body) = send_json(
        reqwest::Method::POST,
        &format!("{base}/v1.0/applications/{OBJECT_ID}/addKey"),
        &admin_token,
        Some(
            &json!({"keyCredential": {"type": "AsymmetricX509Cert", "usage": "Verify", "key": old.value_b64()}, "passwordCredential": null, "proof": p.expose()}),
        ),
    );
    assert_eq!(status, 400, "{body}");
}

#[test]
fn get_returns_key_bodies_only_when_key_credentials_are_selected() {
    // Graph: `key` is "returned only on $select for a single object [...]; otherwise, it's always null".
    let app = app(false);
    let emu = emulator(&[&app.manifest], &[], false);
    let base = emu.info().base_url();
    let token = graph_token(base, APP_ID, &app.a);
    let body_b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, app.a.cert.der());
    let get = |query: &str| {
        let (status, body) =
            send_json(reqwest::Method::GET, &format!("{base}/v1.0/applications/{OBJECT_ID}{query}"), &token, None);
        assert_eq!(status, 200, "{body}");
        body
    };
    let all = get("");
    assert_eq!(all["id"], OBJECT_ID);
    assert_eq!(all["appId"], APP_ID);
    assert_eq!(all["displayName"], "keycred rotation test");
    assert_eq!(all["keyCredentials"][0]["keyId"], app.key_ids[0]);
    assert_eq!(all["keyCredentials"][0]["key"], Value::Null);
    let selected = get("?$select=id,appId,keyCredentials");
    let keys: Vec<&str> = selected.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["@odata.context", "id", "appId", "keyCredentials"]);
    assert_eq!(selected["keyCredentials"][0]["key"], body_b64.as_str());
    // By the alternate key too, with names in any case.
    let (status, by_app_id) = send_json(
        reqwest::Method::GET,
        &format!("{base}/v1.0/applications(appId='{APP_ID}')?$select=KEYCREDENTIALS"),
        &token,
        None,
    );
    assert_eq!(status, 200, "{by_app_id}");
    assert!(by_app_id.get("id").is_none(), "{by_app_id}");
    assert_eq!(by_app_id["keyCredentials"][0]["key"], body_b64.as_str());
}

#[test]
fn graph_url_is_a_host_a_trailing_version_is_dropped() {
    let app = app(false);
    let emu = emulator(&[&app.manifest], &[], false);
    let base = emu.info().base_url();
    let list = |graph_url: &str| {
        let mut args = vec!["graph", "list", "--app-id", APP_ID, "--tenant", TENANT, "--authority", base];
        args.extend(["--graph-url", graph_url, "--cert", &app.a_pem, "-o", "json"]);
        cli(&args, &[])
    };
    // As copied from Graph Explorer.
    let out = list(&format!("{base}/v1.0/"));
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()[0]["keyId"], app.key_ids[0]);
    let out = list(&format!("{base}/beta"));
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("has a path, query or fragment"), "{}", out.stderr);
}

#[test]
fn remove_takes_exactly_one_of_key_id_and_thumbprint() {
    let app = app(true);
    let emu = emulator(&[&app.manifest], &[], false);
    let before = std::fs::read(&app.manifest).unwrap();
    let thumb = app.a.cert.thumbprint();
    let both: [&str; 4] = ["--key-id", &app.key_ids[0], "--thumbprint", &thumb];
    for extra in [&both[..], &[]] {
        let mut args = vec!["--cert", app.a_pem.as_str(), "--force"];
        args.extend_from_slice(extra);
        let out = graph("remove", emu.info().base_url(), APP_ID, &args, &[]);
        assert_eq!(out.code, 2, "{out:?}");
        assert!(out.stderr.contains("--key-id") && out.stderr.contains("--thumbprint"), "{}", out.stderr);
    }
    assert_eq!(std::fs::read(&app.manifest).unwrap(), before);
}

#[test]
fn entries_that_cannot_verify_do_not_count_as_valid_certificates() {
    // A symmetric key and a signing-usage entry are no certificate Entra verifies assertions
    // with: removing A would still lock the app out.
    let dir = TempDir::new("rot-test");
    let a = credential("graph app A", 365);
    let a_pem = write_cred(&dir, "a", &a);
    let mut symmetric = entry(&credential("sym", 365).cert);
    symmetric["type"] = json!("Symmetric");
    let mut signing = entry(&credential("sign", 365).cert);
    signing["usage"] = json!("Sign");
    let entries = vec![entry(&a.cert), symmetric, signing];
    let manifest = dir.path("app.json");
    write_manifest(&manifest, OBJECT_ID, APP_ID, &entries);
    let emu = emulator(&[&manifest], &[], false);
    let before = std::fs::read(&manifest).unwrap();
    let key_a = entries[0]["keyId"].as_str().unwrap();
    let out = graph("remove", emu.info().base_url(), APP_ID, &["--cert", &a_pem, "--key-id", key_a], &[]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("last currently valid certificate"), "{}", out.stderr);
    assert_eq!(std::fs::read(&manifest).unwrap(), before);
}

#[test]
fn rotate_refused_by_graph_leaves_no_new_files() {
    let app = app(true);
    let emu = emulator(&[&app.manifest], &[(GRAPH, &["Policy.Read.All"])], false);
    let before = std::fs::read(&app.manifest).unwrap();
    let out_dir = app.dir.path("new");
    std::fs::create_dir(&out_dir).unwrap();
    // PATCH without Application.ReadWrite.*: Graph refuses the registration.
    let args = ["--cert", app.a_pem.as_str(), "--patch", "--name", "c", "--out-dir", out_dir.to_str().unwrap()];
    let out = graph("rotate", emu.info().base_url(), APP_ID, &args, &[]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("the application is unchanged; the new files were removed"), "{}", out.stderr);
    assert_eq!(std::fs::read_dir(&out_dir).unwrap().count(), 0, "no key or certificate file left");
    assert_eq!(std::fs::read(&app.manifest).unwrap(), before);
}
