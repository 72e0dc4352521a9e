//! A hint says what to do in the situation the command is in, not what the error code usually
//! means: a certificate Entra does not know (AADSTS700027) is registered through Graph for an
//! application managed there (no manifest file to add it to), and may simply have been rotated
//! away; a token for WindowsDefenderATP's name without roles needs WindowsDefenderATP's
//! permissions; `fleet audit --fail-on` sends to `fleet rotate` only what it rotates; `keycred
//! version` points to `--version`.

use crate::fleet_support::{fleet_args, run_fleet, FakeTenant};
use crate::rotation_support::{cli, credential, emulator, entry, write_cred, write_manifest, Out, TempDir};
use crate::rotation_support::{API, APP_ID, OBJECT_ID, TENANT};
use keycred::dates;
use serde_json::json;

/// The hint of the JSON error on stderr (`-o json`).
fn hint(out: &Out) -> String {
    let v: serde_json::Value = serde_json::from_str(&out.stderr).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    v["error"]["hint"].as_str().unwrap_or_default().to_string()
}

#[test]
fn an_unregistered_certificate_is_registered_where_the_application_is_managed() {
    let dir = TempDir::new("hints-700027");
    let registered = credential("registered", 365);
    write_cred(&dir, "registered", &registered);
    // As after a rotation that removed it: a certificate the application no longer has.
    let old = write_cred(&dir, "old", &credential("rotated away", 365));
    let manifest = dir.path("app.json");
    write_manifest(&manifest, OBJECT_ID, APP_ID, &[entry(&registered.cert)]);
    let emu = emulator(&[&manifest], &[(API, &["Data.Read"])], false);
    let base = emu.info().base_url();
    let app = ["--client-id", APP_ID, "--tenant", TENANT, "--authority", base, "--cert", &old, "-o", "json"];

    // Through Graph: nothing about a manifest, which a Graph-managed application does not have.
    let out = cli(&[&["graph", "list", "--graph-url", base][..], &app].concat(), &[]);
    assert_eq!(out.code, 3, "{out:?}");
    let h = hint(&out);
    assert!(out.stderr.contains("AADSTS700027"), "{}", out.stderr);
    assert!(h.contains("--new-cert ") && h.contains("keycred graph add"), "{h}");
    assert!(h.contains("if a rotation replaced it, sign with the new certificate"), "{h}");
    assert!(!h.contains("manifest"), "{h}");

    // `token` cannot know: the rotation, Graph and the manifest are all named.
    let out = cli(&[&["token", "--scope", API][..], &app].concat(), &[]);
    assert_eq!(out.code, 3, "{out:?}");
    let h = hint(&out);
    assert!(h.contains("if a rotation replaced it") && h.contains("graph add") && h.contains("manifest add"), "{h}");
    // Registering through Graph needs a proof signed by a certificate still registered: named.
    assert!(h.contains(&format!("keycred graph add --cert REGISTERED.pem --new-cert {old}")), "{h}");

    // `check --manifest` knows the manifest: it is the one named. Here the local copy holds the
    // certificate while the tenant (the manifest the emulator serves) does not: not uploaded yet.
    let local = dir.path("local.json");
    let old_cert = keycred::cert::load_credential(std::path::Path::new(&old), None, None).unwrap().cert;
    write_manifest(&local, OBJECT_ID, APP_ID, &[entry(&registered.cert), entry(&old_cert)]);
    let m = local.display().to_string();
    let out = cli(&[&["check", "--manifest", &m, "--scope", API][..], &app].concat(), &[]);
    assert_eq!(out.code, 3, "{out:?}");
    let steps = out.json();
    let token_step = steps.as_array().unwrap().iter().find(|s| s["step"] == "token request").unwrap();
    let detail = token_step["detail"].as_str().unwrap();
    assert!(detail.contains(&format!("keycred manifest add {m} --cert {old}` and upload the manifest")), "{detail}");
}

#[test]
fn missing_roles_for_windows_defender_atp_name_its_permissions() {
    use crate::token_support::{fake_access_token, keycred, stderr};
    // The names the threat-protection setup requests tokens for, WindowsDefenderATP's in a real
    // tenant (as the README says), and Threat Protection's own for comparison.
    for (aud, defender) in [
        ("https://api.securitycenter.windows.com", true),
        ("https://securitycenter.onmicrosoft.com/windowsatpservice", true),
        ("fc780465-2017-40d4-a0c5-307022471b92", true),
        ("https://api.security.microsoft.com", false),
    ] {
        let token = fake_access_token(json!({"aud": aud, "tid": TENANT, "idtyp": "app"}));
        let o = keycred(&["decode", &token, "--expect-role", "Alert.Read.All"], &[]);
        assert_eq!(o.status.code(), Some(4), "{aud}: {}", stderr(&o));
        let err = stderr(&o);
        assert_eq!(err.contains("WindowsDefenderATP's application permissions"), defender, "{aud}: {err}");
    }
    // The command it offers asks for the role that was expected, not a fixed example.
    let token = fake_access_token(json!({"aud": "https://api.securitycenter.windows.com", "tid": TENANT,
                                         "idtyp": "app", "roles": ["Alert.Read.All"]}));
    let o = keycred(&["decode", &token, "--expect-role", "Machine.Read.All", "--expect-role", "Alert.Read.All"], &[]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("permission add MANIFEST --api defender-atp --role Machine.Read.All`"), "{err}");
    assert!(!err.contains("--role Alert.Read.All"), "{err}");
}

/// An application with one credential of `kind` ("certificate" or "secret"), expired.
fn app_with_expired(i: usize, kind: &str) -> serde_json::Value {
    let now = dates::now();
    let (start, end) = (dates::format(now - time::Duration::days(400)), dates::format(now - time::Duration::days(5)));
    let (keys, passwords) = match kind {
        "certificate" => (vec![crate::fleet_support::entry_ending_in(&crate::fleet_support::cert(), -5)], vec![]),
        _ => (
            vec![],
            vec![json!({"keyId": uuid::Uuid::new_v4().to_string(), "hint": "abc", "displayName": "nightly job",
                        "startDateTime": start, "endDateTime": end})],
        ),
    };
    json!({"id": format!("00000000-0000-4000-8000-{i:012}"), "appId": format!("a0000000-0000-4000-8000-{i:012}"),
           "displayName": format!("App {i}"), "keyCredentials": keys, "passwordCredentials": passwords})
}

#[test]
fn fail_on_sends_to_fleet_rotate_only_what_it_rotates() {
    let run = |apps: Vec<serde_json::Value>| {
        let t = FakeTenant::start(apps, 999);
        let out = run_fleet(&[fleet_args(&t, "audit"), vec!["--fail-on".into(), "expired".into()]].concat());
        assert_eq!(out.status.code(), Some(4));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let secrets_only = run(vec![app_with_expired(1, "secret")]);
    assert!(secrets_only.contains("`fleet rotate` never rotates secrets"), "{secrets_only}");
    assert!(!secrets_only.contains("keycred fleet rotate --expiring-within"), "{secrets_only}");
    let both = run(vec![app_with_expired(1, "secret"), app_with_expired(2, "certificate")]);
    assert!(both.contains("rotate the 1 application certificate with `keycred fleet rotate"), "{both}");
    assert!(both.contains("never rotates secrets (1 secret here)"), "{both}");
}

#[test]
fn keycred_version_points_to_the_version_flag() {
    let out = cli(&["version"], &[]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("`keycred --version`"), "{}", out.stderr);
    assert!(!out.stderr.contains("assertion"), "{}", out.stderr);
    let out = cli(&["version", "-o", "json"], &[]);
    assert_eq!(hint(&out), "the version is printed by `keycred --version`");
}
