//! `cargo xtask interop`: Microsoft's own client libraries (MSAL Python, azure-identity) get
//! tokens from `keycred emulate --tls` with a certificate made by `keycred new` and registered by
//! `keycred manifest add`; Azure's Key Vault SDKs use the emulated vault (`--vault`); then the Azure CLI manages an application's certificates and
//! passwords through the emulator's Graph (`tests/interop/azure_cli.py`, which starts an
//! emulator of its own). Secretless sign-in too: the emulator plays a GitHub Actions-like issuer
//! (`--issuer github`), the app trusts it through a federated identity credential added with
//! `keycred graph fic add`, and azure-identity's WorkloadIdentityCredential and
//! ClientAssertionCredential and MSAL Python exchange its workload token
//! (`tests/interop/azure_identity_federated.py`), and so do azure-identity for JavaScript's
//! (`tests/interop/azure_identity_federated.cjs`, run by node with the npm package installed
//! under the target directory).
//!
//! The libraries are the independent reference here: they build the client assertion from the
//! discovered `token_endpoint`, pick the thumbprint and algorithm themselves, and refuse plain
//! http, so passing means the emulator speaks Entra's protocol as they expect it. They come from
//! PyPI into a virtual environment in cargo's target directory, so a fresh clone needs nothing by hand.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Granted to the app in the emulator, and checked in the tokens (scope → roles).
const GRANTS: [(&str, &str); 2] = [
    ("https://graph.microsoft.com", "Application.ReadWrite.OwnedBy"),
    ("api://keycred-interop", "Data.Read,Data.Write"),
];
const SCRIPTS: [&str; 6] = [
    "msal_client_credentials.py",
    "azure_identity.py",
    "msal_user_flows.py",
    "azure_identity_obo.py",
    "azure_identity_federated.py",
    KEYVAULT_SCRIPT,
];
/// The subject the interop app trusts from the emulated GitHub Actions issuer (secretless sign-in).
const FIC_SUBJECT: &str = "repo:keycred/interop:environment:ci";
/// Azure's Key Vault SDKs against the emulated vault; in a virtual environment of its own, since
/// azure-cli pins older releases of them.
const KEYVAULT_SCRIPT: &str = "azure_keyvault.py";
const KEYVAULT_PACKAGES: [&str; 3] =
    ["azure-identity==1.27.0", "azure-keyvault-keys==4.11.3", "azure-keyvault-certificates==4.12.0"];
/// The emulated vaults: one the interop app may use, one granted to another app only (403).
const VAULT: &str = "interop-kv";
const DENIED_VAULT: &str = "interop-denied";
const OTHER_APP: &str = "22222222-2222-2222-2222-222222222222";
/// The reply URL registered for the authorization code flow; the scripts never connect to it,
/// they read the code from the emulator's redirect.
const REDIRECT: &str = "http://localhost/interop-callback";
/// The interop app: a web API (`api://keycred-interop`, delegated scope `access_as_user`) that
/// signs users in and calls Microsoft Graph on their behalf (delegated `User.Read`, consented
/// by the administrator at start with `--consented`).
const MANIFEST: &str = r#"{
  "id": "0f5c8f0e-6a51-4d8e-9a43-5f2b1c3d4e6f",
  "appId": "11111111-1111-1111-1111-111111111111",
  "displayName": "keycred interop web API",
  "signInAudience": "AzureADMyOrg",
  "owners": ["11111111-1111-1111-1111-111111111111"],
  "identifierUris": ["api://keycred-interop"],
  "keyCredentials": [],
  "passwordCredentials": [],
  "api": {
    "requestedAccessTokenVersion": null,
    "oauth2PermissionScopes": [
      {"id": "4a1e2f3c-5b6d-4e7f-8a9b-0c1d2e3f4a5b", "value": "access_as_user", "type": "User", "isEnabled": true}
    ]
  },
  "appRoles": [],
  "requiredResourceAccess": [
    {"resourceAppId": "00000003-0000-0000-c000-000000000000",
     "resourceAccess": [{"id": "e1fe6dd8-ba31-4d61-89e7-88639da4683d", "type": "Scope"}]}
  ],
  "web": {"redirectUris": ["http://localhost/interop-callback"]}
}
"#;
/// Pinned: a new upstream release must not change what the check means between two runs.
const PACKAGES: [&str; 3] = ["msal==1.39.0", "azure-identity==1.27.0", "azure-cli==2.91.0"];
/// azure-identity for JavaScript, pinned (4.13.1 is the last release that supports Node 20),
/// installed by npm under the target directory.
const NODE_PACKAGE: &str = "@azure/identity@4.13.1";
/// Its secretless sign-in script, run by node after [`SCRIPTS`], against the same emulator.
const NODE_SCRIPT: &str = "azure_identity_federated.cjs";
/// The Azure CLI script, run after [`SCRIPTS`].
const AZURE_CLI_SCRIPT: &str = "azure_cli.py";

/// Kills the emulator however the run ends.
struct Emulator(Child);

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the interop scripts; fails with the first script's failure or a setup problem.
pub fn run(root: &Path, target: &Path) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    crate::run(Command::new(&cargo).args(["build", "--quiet", "--bin", "keycred"]))?;
    run_with(root, target)
}

/// Runs the interop scripts with the debug `keycred` already in `target` (`cargo xtask test`
/// runs them after `cargo test`, which built it: building it again without the tests' features
/// would compile the crate a second time).
pub fn run_with(root: &Path, target: &Path) -> Result<(), String> {
    let python = venv(&target.join("interop-venv"), &PACKAGES)?;
    let node_modules = npm_install(&target.join("interop-node"), NODE_PACKAGE)?;
    let kv_python = venv(&target.join("interop-keyvault-venv"), &KEYVAULT_PACKAGES)?;
    let bin = target.join("debug/keycred");

    let dir = target.join("interop-run");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    keycred(&bin, &dir, &["new", "--name", "interop", "--days", "30"])?;
    let manifest = dir.join("manifest.json");
    std::fs::write(&manifest, MANIFEST).map_err(|e| format!("cannot write the interop manifest: {e}"))?;
    keycred(&bin, &dir, &["manifest", "add", "manifest.json", "--cert", "interop.cer"])?;
    let app_id = json_str(&std::fs::read_to_string(&manifest).map_err(|e| e.to_string())?, "appId")
        .ok_or("the manifest template has no appId")?;

    let mut cmd = Command::new(&bin);
    cmd.args(["emulate", "--tls", "--manifest"]).arg(&manifest);
    for (resource, roles) in GRANTS {
        cmd.arg("--grant").arg(format!("{resource}={roles}"));
    }
    // The user flows: the consent page answers at once, and the administrator has consented to
    // the app's delegated Graph permission (what on-behalf-of needs downstream).
    cmd.args(["--auto-consent", "--consented", &app_id]);
    // Secretless sign-in: the emulator also plays GitHub Actions' issuer.
    cmd.args(["--issuer", "github"]);
    cmd.arg("--vault").arg(format!("{VAULT}={app_id}"));
    cmd.arg("--vault").arg(format!("{DENIED_VAULT}={OTHER_APP}"));
    cmd.args(["-o", "json"]).current_dir(&dir).stdout(Stdio::piped()).stderr(Stdio::inherit());
    eprintln!("xtask: running {cmd:?}");
    let mut child = Emulator(cmd.spawn().map_err(|e| format!("cannot start keycred emulate: {e}"))?);
    let mut line = String::new();
    let stdout = child.0.stdout.take().ok_or("no stdout from keycred emulate")?;
    BufReader::new(stdout).read_line(&mut line).map_err(|e| format!("cannot read keycred emulate's output: {e}"))?;
    let field = |k: &str| json_str(&line, k).ok_or_else(|| format!("keycred emulate printed no {k}: {line:?}"));
    let (base, tenant, ca) = (field("baseUrl")?, field("tenant")?, field("caFile")?);
    // The issuers are the announcement's only "url" fields.
    let issuer = field("url")?;
    // The app trusts the emulated issuer's tokens for one subject: it owns itself and holds
    // Application.ReadWrite.OwnedBy, so it adds the credential through the emulator's Graph.
    keycred(
        &bin,
        &dir,
        &[
            "graph",
            "fic",
            "add",
            "--app-id",
            &app_id,
            "--tenant",
            &tenant,
            "--authority",
            &base,
            "--graph-url",
            &base,
            "--cert",
            "interop.pem",
            "--ca-file",
            &ca,
            "--name",
            "interop-ci",
            "--issuer",
            &issuer,
            "--subject",
            FIC_SUBJECT,
        ],
    )?;
    // MSAL and azure-identity refuse IP-address authorities in places; the emulator's TLS
    // certificate names localhost too.
    let authority = base.replace("://127.0.0.1:", "://localhost:");
    let port = base.rsplit(':').next().unwrap_or_default().to_string();
    let vault_url = |name: &str| format!("https://{name}.vault.localhost:{port}");
    let expect = GRANTS
        .iter()
        .map(|(r, roles)| {
            let roles: Vec<String> = roles.split(',').map(|r| format!("\"{r}\"")).collect();
            format!("\"{r}/.default\": [{}]", roles.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ");

    let mut failed = Vec::new();
    for script in SCRIPTS {
        eprintln!("xtask: interop {script} against {authority}");
        let py = if script == KEYVAULT_SCRIPT { &kv_python } else { &python };
        let status = Command::new(py)
            .arg(root.join("tests/interop").join(script))
            .current_dir(root.join("tests/interop"))
            .env("KEYCRED_AUTHORITY", &authority)
            .env("KEYCRED_TENANT", &tenant)
            .env("KEYCRED_CLIENT_ID", &app_id)
            .env("KEYCRED_BUNDLE", dir.join("interop.pem"))
            .env("KEYCRED_EXPECT", format!("{{{expect}}}"))
            .env("KEYCRED_REDIRECT", REDIRECT)
            .env("KEYCRED_FIC_ISSUER", &issuer)
            .env("KEYCRED_FIC_SUBJECT", FIC_SUBJECT)
            .env("KEYCRED_VAULT_URL", vault_url(VAULT))
            .env("KEYCRED_DENIED_VAULT_URL", vault_url(DENIED_VAULT))
            .env("REQUESTS_CA_BUNDLE", &ca)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            // The emulator is on our loopback: a proxy from the developer's shell can't reach it,
            // and a region setting would send MSAL to a regional host instead.
            .env("NO_PROXY", "localhost,127.0.0.1,.localhost")
            .env("no_proxy", "localhost,127.0.0.1,.localhost")
            .env_remove("AZURE_REGIONAL_AUTHORITY_NAME")
            .env_remove("MSAL_FORCE_REGION")
            .status()
            .map_err(|e| format!("cannot run {script}: {e}"))?;
        if !status.success() {
            failed.push(script);
        }
    }
    eprintln!("xtask: interop {NODE_SCRIPT} (node, {NODE_PACKAGE}) against {authority}");
    let status = Command::new("node")
        .arg(root.join("tests/interop").join(NODE_SCRIPT))
        .current_dir(root.join("tests/interop"))
        .env("NODE_PATH", &node_modules)
        // Node's own trust store plus the emulator's CA, for every connection of the process.
        .env("NODE_EXTRA_CA_CERTS", &ca)
        .env("KEYCRED_BIN", &bin)
        .env("KEYCRED_AUTHORITY", &authority)
        .env("KEYCRED_TENANT", &tenant)
        .env("KEYCRED_CLIENT_ID", &app_id)
        .env("KEYCRED_EXPECT", format!("{{{expect}}}"))
        .env("KEYCRED_FIC_ISSUER", &issuer)
        .env("KEYCRED_FIC_SUBJECT", FIC_SUBJECT)
        .env("NO_PROXY", "localhost,127.0.0.1,.localhost")
        .env("no_proxy", "localhost,127.0.0.1,.localhost")
        // The script sets the workload identity variables itself; none may come from the shell.
        .env_remove("AZURE_CLIENT_SECRET")
        .env_remove("AZURE_CLIENT_CERTIFICATE_PATH")
        .env_remove("AZURE_REGIONAL_AUTHORITY_NAME")
        .status()
        .map_err(|e| format!("cannot run node {NODE_SCRIPT} (the tests need Node.js 20 or later): {e}"))?;
    if !status.success() {
        failed.push(NODE_SCRIPT);
    }
    drop(child);

    eprintln!("xtask: interop {AZURE_CLI_SCRIPT} (the Azure CLI against its own keycred emulate --tls)");
    let az = python.parent().map(|d| d.join("az")).ok_or("the virtual environment has no bin directory")?;
    let status = Command::new(&python)
        .arg(root.join("tests/interop").join(AZURE_CLI_SCRIPT))
        .current_dir(root.join("tests/interop"))
        .env("KEYCRED_BIN", &bin)
        .env("KEYCRED_AZ", &az)
        .env("KEYCRED_TEMPLATE", root.join("templates/manifest-ms-graph.json"))
        .env("KEYCRED_WORK", dir.join("azure-cli"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .status()
        .map_err(|e| format!("cannot run {AZURE_CLI_SCRIPT}: {e}"))?;
    if !status.success() {
        failed.push(AZURE_CLI_SCRIPT);
    }
    let _ = std::fs::remove_dir_all(&dir);
    if failed.is_empty() {
        eprintln!("xtask: interop passed ({}, {NODE_SCRIPT}, {AZURE_CLI_SCRIPT})", SCRIPTS.join(", "));
        Ok(())
    } else {
        Err(format!("interop failed: {}", failed.join(", ")))
    }
}

/// The python of the virtual environment `venv` (created when missing), with `packages`
/// installed (pip is a no-op when they are).
pub fn venv(venv: &Path, packages: &[&str]) -> Result<PathBuf, String> {
    let python = venv.join("bin/python");
    if !python.exists() {
        let ok = Command::new("python3").arg("-m").arg("venv").arg(venv).status().is_ok_and(|s| s.success());
        if !ok {
            return Err(format!(
                "cannot create a Python virtual environment at {}: the tests need python3 with \
                 the venv module (apt-get install python3-venv)",
                venv.display()
            ));
        }
    }
    let ok = Command::new(&python)
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
        .args(packages)
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        return Err(format!(
            "pip could not install {} into {}: the tests need PyPI (check the network or a \
             PIP_INDEX_URL mirror), then run the task again",
            packages.join(" and "),
            venv.display()
        ));
    }
    Ok(python)
}

/// The `node_modules` directory of `dir`, with `package` (pinned, `name@version`) installed by
/// npm (a no-op when it is).
pub fn npm_install(dir: &Path, package: &str) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let ok = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--loglevel=error", package])
        .current_dir(dir)
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        return Err(format!(
            "npm could not install {package} into {}: the tests need Node.js with npm and the npm \
             registry (check the network or an npm registry mirror), then run the task again",
            dir.display()
        ));
    }
    Ok(dir.join("node_modules"))
}

fn keycred(bin: &Path, dir: &Path, args: &[&str]) -> Result<(), String> {
    let o = Command::new(bin).args(args).current_dir(dir).output().map_err(|e| format!("cannot run keycred: {e}"))?;
    if o.status.success() {
        Ok(())
    } else {
        Err(format!("keycred {} failed: {}", args.join(" "), String::from_utf8_lossy(&o.stderr)))
    }
}

/// The string value of `"key": "..."` in a JSON text (xtask has no JSON parser; keycred's values
/// here are URLs, GUIDs and paths, with `\\` and `\"` the only escapes that may occur).
pub fn json_str(text: &str, key: &str) -> Option<String> {
    let at = text.find(&format!("\"{key}\""))? + key.len() + 2;
    let rest = text[at..].trim_start().strip_prefix(':')?.trim_start().strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => out.push(chars.next()?),
            c => out.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::json_str;

    #[test]
    fn reads_string_fields() {
        let line = r#"{"baseUrl":"https://127.0.0.1:4443","caFile":"/tmp/a \"b\"/ca.pem","n":1}"#;
        assert_eq!(json_str(line, "baseUrl").unwrap(), "https://127.0.0.1:4443");
        assert_eq!(json_str(line, "caFile").unwrap(), "/tmp/a \"b\"/ca.pem");
        assert_eq!(json_str(line, "n"), None);
        assert_eq!(json_str(line, "missing"), None);
    }
}
