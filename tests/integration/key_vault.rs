//! Certificates whose key stays in Azure Key Vault, against the emulated vault: `keycred new
//! --vault` makes the certificate there and writes only its public part, the manifest registers
//! it, a token and a Graph rotation are signed in the vault; an app the vault does not grant gets
//! Key Vault's 403; bad and unreachable vault URLs are refused with nothing written. Certificates
//! are read back with openssl, not with keycred.

use crate::rotation_support::*;
use crate::token_support::jwt_parts;
use keycred::emulator::{start_blocking, BlockingEmulator, VaultSpec};
use keycred::secret::SecretString;
use std::path::Path;

const APP: &str = "5a1e5a1e-0000-4000-8000-00000000000a";
const APP_OBJECT: &str = "5a1e5a1e-0000-4000-8000-00000000000b";
/// The deployment identity that may use the vault (by the emulator's shared secret).
const DEPLOYER: &str = "de910e00-0000-4000-8000-00000000000c";
const STRANGER: &str = "57a4a6e4-0000-4000-8000-00000000000d";
const API: &str = "api://keycred-kv-test";

struct Setup {
    dir: TempDir,
    emu: BlockingEmulator,
}

impl Setup {
    fn port(&self) -> String {
        self.emu.info().base_url().rsplit(':').next().unwrap().to_string()
    }
    fn vault(&self, name: &str) -> String {
        format!("https://{name}.vault.localhost:{}", self.port())
    }
    fn ca(&self) -> String {
        self.emu.info().ca_file().unwrap().display().to_string()
    }
    /// The deployer's identity as azure-identity reads it, and the emulator as its authority.
    fn deployer_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AZURE_CLIENT_ID", DEPLOYER.to_string()),
            ("AZURE_CLIENT_SECRET", SECRET.to_string()),
            ("AZURE_TENANT_ID", TENANT.to_string()),
            ("AZURE_AUTHORITY_HOST", format!("https://localhost:{}", self.port())),
        ]
    }
    fn run(&self, args: &[&str]) -> Out {
        let env = self.deployer_env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        // Every command that reaches the emulator trusts its CA; `manifest` reaches nothing.
        let ca = self.ca();
        let mut all: Vec<&str> = args.to_vec();
        if args[0] != "manifest" {
            all.extend(["--ca-file", ca.as_str()]);
        }
        let mut c = keycred_command(&all, &env);
        c.current_dir(self.dir.path(""));
        run_out(c)
    }
}

fn run_out(mut cmd: std::process::Command) -> Out {
    let o = cmd.stdin(std::process::Stdio::null()).output().unwrap();
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn setup(tag: &str) -> Setup {
    let dir = TempDir::new(tag);
    write_manifest(&dir.path("app.json"), APP_OBJECT, APP, &[]);
    write_manifest(&dir.path("deployer.json"), "de910e00-0000-4000-8000-0000000000ff", DEPLOYER, &[]);
    let mut cfg = emulator_config(
        vec![dir.path("app.json"), dir.path("deployer.json")],
        vec![(API.to_string(), vec!["Data.Read".to_string()])],
    );
    cfg.tls = true;
    cfg.secret = Some(SecretString::new(SECRET.to_string()));
    // GitHub Actions' issuer, played by the emulator: a workload identity for the vault.
    cfg.issuers = vec!["github".to_string()];
    cfg.vaults = vec![
        VaultSpec { name: "contoso-kv".into(), apps: vec![DEPLOYER.into()] },
        VaultSpec { name: "other-kv".into(), apps: vec![STRANGER.into()] },
    ];
    let emu = start_blocking(cfg).unwrap();
    Setup { dir, emu }
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[test]
fn a_vault_certificate_signs_a_token_and_a_graph_rotation_without_its_key_leaving_the_vault() {
    let s = setup("kv-chain");
    let vault = s.vault("contoso-kv");
    let out = s.run(&["new", "--vault", &vault, "--name", "app-cert", "--subject", "CN=vault app", "-o", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let created = out.json();
    let key_url = created["vault"]["keyId"].as_str().unwrap().to_string();
    assert!(key_url.starts_with(&format!("{vault}/keys/app-cert/")), "{created}");
    // Only the public certificate was written.
    assert_eq!(files_in(&s.dir.path("")), ["app-cert.cer", "app.json", "deployer.json"]);
    let cer = s.dir.s("app-cert.cer");
    assert_eq!(created["thumbprint"], openssl_fingerprint_hex(&cer, &[], "sha1"));
    let subject = openssl(&["x509", "-in", &cer, "-noout", "-subject", "-nameopt", "RFC2253"]);
    assert_eq!(String::from_utf8_lossy(&subject.stdout).trim(), "subject=CN=vault app");

    let out = s.run(&["manifest", "add", "app.json", "--cert", "app-cert.cer"]);
    assert_eq!(out.code, 0, "{out:?}");

    // The app's token: its assertion signed in the vault, checked by the emulator's token endpoint.
    let base = s.emu.info().base_url().to_string();
    let token = s.run(&[
        "token",
        "--client-id",
        APP,
        "--tenant",
        TENANT,
        "--authority",
        &base,
        "--key",
        &key_url,
        "--scope",
        &format!("{API}/.default"),
        "--expect-role",
        "Data.Read",
        "-o",
        "json",
    ]);
    assert_eq!(token.code, 0, "{token:?}");
    assert_eq!(token.json()["claims"]["appid"], APP, "{}", token.stdout);

    // A Graph rotation whose addKey proof is signed in the vault.
    let out = s.run(&[
        "graph",
        "rotate",
        "--client-id",
        APP,
        "--tenant",
        TENANT,
        "--authority",
        &base,
        "--graph-url",
        &base,
        "--key",
        &key_url,
        "--name",
        "next",
        // The app rolls its own key (addKey needs no Graph permission) and is not granted
        // Policy.Read.All: the policy goes unread, with a warning.
        "--policy-unknown-ok",
        "-o",
        "json",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    let entries = entries_of(&s.dir.path("app.json"));
    assert_eq!(entries.len(), 2, "{entries:?}");
}

#[test]
fn an_app_the_vault_does_not_grant_gets_key_vaults_403_and_nothing_is_written() {
    let s = setup("kv-denied");
    let out = s.run(&["new", "--vault", &s.vault("other-kv"), "--name", "app-cert"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("403 Forbidden"), "{}", out.stderr);
    assert!(out.stderr.contains(&format!("'appid={DEPLOYER};")), "{}", out.stderr);
    assert!(
        out.stderr.contains("does not have certificates create permission on key vault 'other-kv"),
        "{}",
        out.stderr
    );
    assert!(!s.dir.path("app-cert.cer").exists());
}

#[test]
fn bad_and_unreachable_vault_urls_are_refused_with_nothing_written() {
    let s = setup("kv-bad-url");
    let before = files_in(&s.dir.path(""));
    let out = s.run(&["new", "--vault", "http://contoso.vault.azure.net", "--name", "c"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("plain http"), "{}", out.stderr);
    let out = s.run(&["new", "--vault", "https://nowhere.vault.localhost:1", "--name", "c"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("cannot reach the vault https://nowhere.vault.localhost:1"), "{}", out.stderr);
    let base = s.emu.info().base_url().to_string();
    let out = s.run(&[
        "token",
        "--client-id",
        APP,
        "--tenant",
        TENANT,
        "--authority",
        &base,
        "--scope",
        "api://x/.default",
        "--key",
        &format!("{}/secrets/app-cert", s.vault("contoso-kv")),
    ]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("not a Key Vault key URL"), "{}", out.stderr);
    assert_eq!(files_in(&s.dir.path("")), before);
}

/// One request to the emulated vault `contoso-kv`, trusting the emulator's CA and sending the
/// vault's host name to loopback; the status, the `WWW-Authenticate` header and the JSON body.
fn vault_call(
    s: &Setup,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> (u16, String, serde_json::Value) {
    let pem = std::fs::read(s.ca()).unwrap();
    let port: u16 = s.port().parse().unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_merge(reqwest::Certificate::from_pem_bundle(&pem).unwrap())
        .resolve("contoso-kv.vault.localhost", std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .no_proxy()
        .build()
        .unwrap();
    let url = format!("{}{path}", s.vault("contoso-kv"));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut r = client.request(method, &url);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        let a = r.send().await.unwrap();
        let status = a.status().as_u16();
        let challenge =
            a.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        (status, challenge, a.json().await.unwrap_or(serde_json::Value::Null))
    })
}

fn deployer_token(s: &Setup, scope: &str) -> String {
    let endpoint = format!("{}/{TENANT}/oauth2/v2.0/token", s.emu.info().base_url());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let pem = std::fs::read(s.ca()).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_merge(reqwest::Certificate::from_pem_bundle(&pem).unwrap())
        .no_proxy()
        .build()
        .unwrap();
    let form =
        [("grant_type", "client_credentials"), ("client_id", DEPLOYER), ("client_secret", SECRET), ("scope", scope)];
    let body: serde_json::Value =
        rt.block_on(async { client.post(&endpoint).form(&form).send().await.unwrap().json().await.unwrap() });
    body["access_token"].as_str().unwrap_or_else(|| panic!("{body}")).to_string()
}

#[test]
fn the_emulated_vault_challenges_and_signs_digests_as_key_vault_does() {
    let s = setup("kv-protocol");
    let port = s.port();
    let get = reqwest::Method::GET;
    let post = reqwest::Method::POST;
    // No token: Key Vault's challenge and body.
    let (status, challenge, body) = vault_call(&s, get.clone(), "/keys/k/?api-version=7.4", None, None);
    assert_eq!(status, 401);
    assert_eq!(
        challenge,
        format!(
            "Bearer authorization=\"https://localhost:{port}/{TENANT}\", resource=\"https://vault.localhost:{port}\""
        )
    );
    assert_eq!(body["error"]["code"], "Unauthorized");
    assert_eq!(body["error"]["message"], "AKV10000: Request is missing a Bearer or PoP token.");
    // A token for another resource is refused with the challenge again.
    let graph = deployer_token(&s, "https://graph.microsoft.com/.default");
    let (status, challenge, _) = vault_call(&s, get.clone(), "/keys/k/?api-version=7.4", Some(&graph), None);
    assert_eq!((status, challenge.starts_with("Bearer authorization=")), (401, true));
    let token = deployer_token(&s, &format!("https://vault.localhost:{port}/.default"));
    let (_, claims) = jwt_parts(&token);
    assert_eq!(claims["aud"], format!("https://vault.localhost:{port}"));
    // Without api-version: BadParameter.
    let (status, _, body) = vault_call(&s, get.clone(), "/keys/k/", Some(&token), None);
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("BadParameter")));

    // A certificate; its key signs a digest, which openssl verifies with the certificate.
    let policy = serde_json::json!({"policy": {"key_props": {"exportable": false, "kty": "RSA", "key_size": 2048},
        "x509_props": {"subject": "CN=protocol", "validity_months": 1}, "issuer": {"name": "Self"}}});
    let (status, _, op) =
        vault_call(&s, post.clone(), "/certificates/c/create?api-version=7.4", Some(&token), Some(policy));
    assert_eq!((status, op["status"].as_str()), (202, Some("inProgress")), "{op}");
    let (_, _, op) = vault_call(&s, get.clone(), "/certificates/c/pending?api-version=7.4", Some(&token), None);
    assert_eq!(op["status"], "completed");
    let (_, _, cert) = vault_call(&s, get.clone(), "/certificates/c?api-version=7.4", Some(&token), None);
    assert_eq!(cert["policy"]["key_props"]["exportable"], false);
    let (_, _, key) = vault_call(&s, get.clone(), "/keys/c/?api-version=7.4", Some(&token), None);
    assert!(key["key"].get("d").is_none() && key["key"]["n"].is_string(), "{key}");
    let der =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, cert["cer"].as_str().unwrap()).unwrap();
    std::fs::write(s.dir.path("c.der"), &der).unwrap();
    let pem = openssl(&["x509", "-inform", "DER", "-in", &s.dir.s("c.der")]);
    std::fs::write(s.dir.path("c.pem"), &pem.stdout).unwrap();
    let msg = b"keycred vault protocol";
    let digest = keycred::thumbprint::sha256(msg);
    let b64url = keycred::thumbprint::b64url;
    let kid_path = cert["kid"].as_str().unwrap().trim_start_matches(&s.vault("contoso-kv")).to_string();
    let (status, _, signed) = vault_call(
        &s,
        post.clone(),
        &format!("{kid_path}/sign?api-version=7.4"),
        Some(&token),
        Some(serde_json::json!({"alg": "RS256", "value": b64url(&digest)})),
    );
    assert_eq!(status, 200, "{signed}");
    assert_eq!(signed["kid"], cert["kid"]);
    std::fs::write(s.dir.path("msg"), msg).unwrap();
    let sig =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, signed["value"].as_str().unwrap())
            .unwrap();
    std::fs::write(s.dir.path("sig"), &sig).unwrap();
    let pubkey = openssl(&["x509", "-in", &s.dir.s("c.pem"), "-noout", "-pubkey"]);
    std::fs::write(s.dir.path("pub.pem"), pubkey.stdout).unwrap();
    let v =
        openssl(&["dgst", "-sha256", "-verify", &s.dir.s("pub.pem"), "-signature", &s.dir.s("sig"), &s.dir.s("msg")]);
    assert!(String::from_utf8_lossy(&v.stdout).contains("Verified OK"), "{v:?}");
    // The vault's verify agrees, and refuses a corrupted signature.
    let mut bad = sig.clone();
    bad[0] ^= 1;
    for (s_bytes, expected) in [(sig, true), (bad, false)] {
        let body = serde_json::json!({"alg": "RS256", "digest": b64url(&digest), "value": b64url(&s_bytes)});
        let (_, _, r) =
            vault_call(&s, post.clone(), &format!("{kid_path}/verify?api-version=7.4"), Some(&token), Some(body));
        assert_eq!(r["value"], expected);
    }
    // Secrets are not served.
    let (status, _, _) = vault_call(&s, get, "/secrets/c?api-version=7.4", Some(&token), None);
    assert_eq!(status, 501);
}

/// The vault's identity from a workload token file, as azure-identity's
/// WorkloadIdentityCredential reads it (`AZURE_FEDERATED_TOKEN_FILE` with `AZURE_CLIENT_ID`, no
/// secret): a token of a trusted subject reaches the vault; another subject is Entra's 700213.
#[test]
fn a_workload_token_file_is_the_vaults_identity_as_azure_identity_reads_it() {
    let s = setup("kv-federated");
    let issuer = s.emu.info().issuers()[0].1.clone();
    let subject = "repo:contoso/deploy:environment:production";
    // The deployer trusts that subject of the issuer (the emulator re-reads a changed manifest).
    let path = s.dir.path("deployer.json");
    let mut m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    m["federatedIdentityCredentials"] = serde_json::json!([{"name": "deploy", "issuer": issuer,
        "subject": subject, "audiences": ["api://AzureADTokenExchange"]}]);
    std::fs::write(&path, serde_json::to_string_pretty(&m).unwrap()).unwrap();
    let (vault, ca, authority) = (s.vault("contoso-kv"), s.ca(), format!("https://localhost:{}", s.port()));
    for (name, sub, want) in [("fed-cert", subject, 0), ("dev-cert", "repo:contoso/deploy:ref:refs/heads/dev", 3)] {
        let minted = s.run(&["fic", "mint", "--issuer", &issuer, "--subject", sub]);
        assert_eq!(minted.code, 0, "{minted:?}");
        let file = s.dir.path(&format!("{name}.jwt"));
        std::fs::write(&file, minted.stdout.trim()).unwrap();
        let file = file.display().to_string();
        let env = [
            ("AZURE_CLIENT_ID", DEPLOYER),
            ("AZURE_TENANT_ID", TENANT),
            ("AZURE_AUTHORITY_HOST", authority.as_str()),
            ("AZURE_FEDERATED_TOKEN_FILE", file.as_str()),
        ];
        let mut c = keycred_command(&["new", "--vault", &vault, "--name", name, "--ca-file", &ca, "-o", "json"], &env);
        c.current_dir(s.dir.path(""));
        let out = run_out(c);
        assert_eq!(out.code, want, "{name}: {out:?}");
        if want == 0 {
            assert!(out.json()["vault"]["keyId"].as_str().unwrap().starts_with(&format!("{vault}/keys/{name}/")));
        } else {
            assert!(out.stderr.contains("AADSTS700213"), "{}", out.stderr);
            assert!(!s.dir.path(&format!("{name}.cer")).exists());
        }
    }
}
