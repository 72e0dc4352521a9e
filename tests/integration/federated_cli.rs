//! The secretless commands against the emulator: `fic mint` from an emulated issuer, `graph fic
//! add|list|remove` with the subject built from a repository, `token --federated-token-file` (and
//! AZURE_FEDERATED_TOKEN_FILE), and `fic check` giving, for each failure produced on purpose, the
//! AADSTS code the emulator's token endpoint answers for the same token.

use crate::rotation_support as support;

use keycred::emulator::{start_blocking, BlockingEmulator};
use serde_json::{json, Value};
use support::*;

const SUBJECT: &str = "repo:octo-org/octo-repo:environment:Production";

struct Setup {
    dir: TempDir,
    manifest: std::path::PathBuf,
    pem: String,
    emu: BlockingEmulator,
    issuer: String,
}

/// An app owning itself (so it may write its own credentials through Graph), served by an
/// emulator that plays the issuer `gh`.
fn setup() -> Setup {
    let dir = TempDir::new("fic-cli");
    let a = credential("fic app", 365);
    let pem = write_cred(&dir, "a", &a);
    let manifest = dir.path("app.json");
    write_manifest(&manifest, OBJECT_ID, APP_ID, &[entry(&a.cert)]);
    let mut m: Value = serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    m["owners"] = json!([APP_ID]);
    std::fs::write(&manifest, serde_json::to_string_pretty(&m).unwrap()).unwrap();
    let mut cfg =
        emulator_config(vec![manifest.clone()], vec![(GRAPH.into(), vec!["Application.ReadWrite.OwnedBy".into()])]);
    cfg.issuers = vec!["gh".into()];
    let emu = start_blocking(cfg).unwrap();
    let issuer = emu.info().issuers()[0].1.clone();
    Setup { dir, manifest, pem, emu, issuer }
}

impl Setup {
    fn base(&self) -> &str {
        self.emu.info().base_url()
    }
    fn mint(&self, extra: &[&str]) -> String {
        let mut args = vec!["fic", "mint", "--issuer", &self.issuer];
        args.extend_from_slice(extra);
        let out = cli(&args, &[]);
        assert_eq!(out.code, 0, "{out:?}");
        out.stdout.trim().to_string()
    }
    fn graph_fic(&self, sub: &str, extra: &[&str]) -> Out {
        graph_as_app(&["fic", sub], self.base(), &self.pem, extra)
    }
    fn check_manifest(&self, token: &str) -> Out {
        cli(&["fic", "check", token, "--manifest", self.manifest.to_str().unwrap(), "-o", "json"], &[])
    }
    /// The emulator's answer to the token as a client assertion: its AADSTS code (0 for a token).
    fn emulator_code(&self, token: &str) -> u64 {
        let v2 = format!("{}/{TENANT}/oauth2/v2.0/token", self.base());
        let (status, body) =
            post_form(&v2, &client_credentials_form(APP_ID, "https://graph.microsoft.com/.default", token));
        if status == 200 {
            return 0;
        }
        body["error_codes"][0].as_u64().unwrap()
    }
}

#[test]
fn a_secretless_setup_runs_from_the_command_line() {
    let s = setup();
    let token = s.mint(&["--subject", SUBJECT]);
    let claims = keycred::jwt::dangerous::decode(&token).unwrap().claims;
    assert_eq!((claims["iss"].as_str(), claims["sub"].as_str()), (Some(s.issuer.as_str()), Some(SUBJECT)));
    assert_eq!(claims["repository"], "octo-org/octo-repo");

    // The subject built from the repository and environment, as GitHub writes it.
    let out = s.graph_fic(
        "add",
        &[
            "--name",
            "prod",
            "--github-repo",
            "octo-org/octo-repo",
            "--environment",
            "Production",
            "--issuer",
            &s.issuer,
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["subject"], SUBJECT);
    assert!(out.stderr.contains("upper-case"), "a letter-case warning: {out:?}");
    // Graph's rule checked before sending: same issuer and subject under another name.
    let again = s.graph_fic("add", &["--name", "prod2", "--issuer", &s.issuer, "--subject", SUBJECT]);
    assert_eq!(again.code, 2, "{again:?}");
    assert!(again.stderr.contains("The combination of issuer and subject must be unique"), "{again:?}");
    let list = s.graph_fic("list", &[]).json();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["audiences"], json!(["api://AzureADTokenExchange"]));

    // The workload token as the credential, from a file and from the variable azure-identity reads.
    let file = s.dir.path("token.jwt");
    std::fs::write(&file, format!("{token}\n")).unwrap();
    let base = s.base().to_string();
    let common =
        ["token", "--app-id", APP_ID, "--tenant", TENANT, "--authority", &base, "--scope", GRAPH, "-o", "json"];
    let mut args = common.to_vec();
    args.extend_from_slice(&["--federated-token-file", file.to_str().unwrap()]);
    let out = cli(&args, &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["claims"]["appid"], APP_ID);
    let out = cli(&common, &[("AZURE_FEDERATED_TOKEN_FILE", file.to_str().unwrap())]);
    assert_eq!(out.code, 0, "{out:?}");

    // fic check through Graph: accepted, by which credential.
    let out = cli(
        &[
            "fic",
            "check",
            &token,
            "--app-id",
            APP_ID,
            "--tenant",
            TENANT,
            "--authority",
            &base,
            "--graph-url",
            &base,
            "--cert",
            &s.pem,
            "-o",
            "json",
        ],
        &[],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["credential"], "prod");

    let out = s.graph_fic("remove", &["--name", "prod"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(s.graph_fic("list", &[]).json(), json!([]));
}

#[test]
fn fic_check_gives_the_code_the_emulator_answers_for_each_failure() {
    let s = setup();
    let out = s.graph_fic("add", &["--name", "prod", "--issuer", &s.issuer, "--subject", SUBJECT]);
    assert_eq!(out.code, 0, "{out:?}");
    let cases: Vec<(&str, String, u64)> = vec![
        ("accepted", s.mint(&["--subject", SUBJECT]), 0),
        ("other subject", s.mint(&["--subject", "repo:octo-org/octo-repo:environment:Staging"]), 700213),
        ("letter case", s.mint(&["--subject", "repo:Octo-Org/octo-repo:environment:Production"]), 7002138),
        ("audience", s.mint(&["--subject", SUBJECT, "--audience", "api://AzureADMyOrg"]), 700212),
        ("expired", s.mint(&["--subject", SUBJECT, "--lifetime", "-400"]), 700024),
        ("issuer", s.mint(&["--subject", SUBJECT, "--claim", &format!("iss={}/", s.issuer)]), 700211),
    ];
    for (what, token, code) in cases {
        assert_eq!(s.emulator_code(&token), code, "emulator, {what}");
        let out = s.check_manifest(&token);
        let j = out.json();
        if code == 0 {
            assert_eq!((out.code, j["accepted"].clone()), (0, json!(true)), "{what}: {out:?}");
        } else {
            assert_eq!((out.code, j["code"].as_u64()), (4, Some(code)), "{what}: {out:?}");
            assert!(j["entraMessage"].as_str().unwrap().starts_with(&format!("AADSTS{code}: ")), "{j}");
            assert!(!j["explanation"].as_str().unwrap().is_empty());
        }
    }
}
