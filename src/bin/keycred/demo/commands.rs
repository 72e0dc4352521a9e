//! The `keycred` command lines equivalent to the demo's steps, printed beside their results so
//! that a user can copy the flow: run it by hand, put it in a script, or point it at a real
//! tenant by changing `--authority` and `--tenant`.
//!
//! Each is built as its argument list (so a test parses it with keycred's own parser) and shown
//! quoted for a POSIX shell.

use super::{CREDENTIALS, DEMO_NAME, MANIFEST, REPLY_URL, RESOURCE, ROLES};
use std::path::Path;

/// What the commands name: the demo's directory, and once the emulator runs, its base URL and
/// tenant, and the application.
pub struct Flow {
    dir: String,
    pub authority: String,
    pub tenant: String,
    pub app_id: String,
}

impl Flow {
    /// The flow in `dir`; the authority and tenant are set once the emulator runs.
    pub fn new(dir: &Path, app_id: &str) -> Self {
        Flow { dir: dir.display().to_string(), authority: String::new(), tenant: String::new(), app_id: app_id.into() }
    }

    /// A file of the demo's directory.
    fn file(&self, name: &str) -> String {
        Path::new(&self.dir).join(name).display().to_string()
    }

    /// The application, tenant and authority options.
    fn app(&self) -> Vec<String> {
        args(&["--authority", &self.authority, "--tenant", &self.tenant, "--client-id", &self.app_id])
    }

    /// `keycred new` for credential `name` in the directory.
    pub fn new_cert(&self, name: &str) -> Vec<String> {
        args(&["keycred", "new", "--name", name, "--subject", &subject(name), "--out-dir", &self.dir])
    }

    /// `manifest init` and `manifest add` of the first credential.
    pub fn manifest(&self) -> Vec<Vec<String>> {
        let m = self.file(MANIFEST);
        let mut init =
            args(&["keycred", "manifest", "init", &m, "--app-id", &self.app_id, "--display-name", DEMO_NAME]);
        init.extend(args(&["--api", RESOURCE]));
        for (role, _) in ROLES {
            init.extend(args(&["--role", role]));
        }
        init.extend(args(&["--reply-url", REPLY_URL]));
        vec![init, args(&["keycred", "manifest", "add", &m, "--cert", &self.file(&format!("{}.cer", CREDENTIALS[0]))])]
    }

    /// The emulator, as the demo runs it: consent pages answered at once.
    pub fn emulate(&self, listen: &str) -> Vec<String> {
        let m = self.file(MANIFEST);
        args(&["keycred", "emulate", "--manifest", &m, "--auto-consent", "--tenant", &self.tenant, "--listen", listen])
    }

    /// A client-credentials token for the Office 365 Management API, signed with `credential`.
    pub fn token(&self, credential: &str) -> Vec<String> {
        let mut a = args(&["keycred", "token"]);
        a.extend(self.app());
        a.extend(args(&["--cert", &self.file(&format!("{credential}.pem")), "--scope", RESOURCE]));
        a
    }

    /// The v1 authorize URL with `prompt=admin_consent`, at `/common` as the Office 365 setup does.
    pub fn consent_url(&self, state: &str) -> Vec<String> {
        args(&[
            "keycred",
            "consent-url",
            "--authority",
            &self.authority,
            "--client-id",
            &self.app_id,
            "--v1",
            "--resource",
            RESOURCE,
            "--redirect-uri",
            REPLY_URL,
            "--prompt",
            "admin_consent",
            "--state",
            state,
        ])
    }

    /// The address the browser landed on, read, and its code exchanged at `/common`.
    pub fn exchange(&self, redirected: &str, state: &str) -> Vec<Vec<String>> {
        let mut token = args(&["keycred", "token", "--authority", &self.authority, "--client-id", &self.app_id]);
        token.extend(args(&[
            "--cert",
            &self.file(&format!("{}.pem", CREDENTIALS[0])),
            "--code",
            redirected,
            "--state",
            state,
            "--redirect-uri",
            REPLY_URL,
            "--resource",
            RESOURCE,
        ]));
        vec![args(&["keycred", "consent-url", "--parse", redirected, "--state", state]), token]
    }

    /// `keycred check` of the first credential, `--resource` (v1) or `--scope` (v2).
    pub fn check(&self, v1: bool) -> Vec<String> {
        let mut a = args(&["keycred", "check"]);
        a.extend(self.app());
        a.extend(args(&[
            "--cert",
            &self.file(&format!("{}.pem", CREDENTIALS[0])),
            "--manifest",
            &self.file(MANIFEST),
            if v1 { "--resource" } else { "--scope" },
            RESOURCE,
        ]));
        for (role, _) in ROLES {
            a.extend(args(&["--expect-role", role]));
        }
        a
    }

    /// The token kept in `$TOKEN`, then decoded and verified with the tenant's keys.
    pub fn decode(&self) -> Vec<Vec<String>> {
        let mut token = self.token(CREDENTIALS[0]);
        token.push("--raw".into());
        let decode = args(&["keycred", "decode", "$TOKEN", "--verify", "--authority", &self.authority, "--tenant"]);
        vec![[args(&["TOKEN=$("]), token, args(&[")"])].concat(), [decode, vec![self.tenant.clone()]].concat()]
    }

    /// `keycred rotate` to the second credential, verified, removing the first's entry.
    pub fn rotate(&self, remove_key_id: &str) -> Vec<String> {
        let name = CREDENTIALS[1];
        let mut a = args(&[
            "keycred",
            "rotate",
            "--manifest",
            &self.file(MANIFEST),
            "--name",
            name,
            "--subject",
            &subject(name),
            "--out-dir",
            &self.dir,
            "--remove",
            remove_key_id,
            "--verify",
        ]);
        a.extend(self.app());
        a.extend(args(&["--scope", RESOURCE]));
        a
    }
}

/// The subject of the demo's credential `name`.
pub fn subject(name: &str) -> String {
    format!("CN={name}, O=keycred demo")
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// A command line for a POSIX shell: each argument as it is when only safe characters make it
/// up, else in single quotes (`'` written `'\''`). `TOKEN=$(`, `)` and `$TOKEN` are shell syntax
/// of [`Flow::decode`] and stay as they are (`$TOKEN` in double quotes).
pub fn shell_line(args: &[String]) -> String {
    let safe = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
    let mut line = String::new();
    for (i, a) in args.iter().enumerate() {
        let word = match a.as_str() {
            "TOKEN=$(" | ")" => a.clone(),
            "$TOKEN" => "\"$TOKEN\"".to_string(),
            s if safe(s) => s.to_string(),
            s => format!("'{}'", s.replace('\'', r"'\''")),
        };
        if i > 0 && a != ")" && args[i - 1] != "TOKEN=$(" {
            line.push(' ');
        }
        line.push_str(&word);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// Every command the demo prints is one keycred's parser accepts, as printed.
    #[test]
    fn every_printed_command_parses() {
        let mut f = Flow::new(Path::new("/tmp/keycred demo's"), "3f6c2b1e-8d4a-4e7b-9c1d-2a5e6f7b8c9d");
        f.authority = "http://127.0.0.1:41234".into();
        f.tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47".into();
        let redirected = "https://localhost/keycred-demo?code=0.AXo&state=keycred-demo&admin_consent=True";
        let mut all = vec![f.new_cert("demo-app-1"), f.emulate("127.0.0.1:41234"), f.token("demo-app-1")];
        all.extend(f.manifest());
        all.push(f.consent_url("keycred-demo"));
        all.extend(f.exchange(redirected, "keycred-demo"));
        all.extend([f.check(true), f.check(false), f.rotate("11111111-2222-3333-4444-555555555555")]);
        let decode = f.decode();
        // `TOKEN=$( ... )`: the keycred command inside.
        all.push(decode[0][1..decode[0].len() - 1].to_vec());
        all.push(
            decode[1].iter().map(|a| if a == "$TOKEN" { "eyJ0.e30.c2ln".to_string() } else { a.clone() }).collect(),
        );
        for cmd in all {
            assert_eq!(cmd[0], "keycred");
            if let Err(e) = crate::Cli::try_parse_from(&cmd) {
                panic!("{}: {e}", shell_line(&cmd));
            }
        }
    }

    #[test]
    fn command_lines_are_quoted_for_a_posix_shell() {
        let line = shell_line(&args(&["keycred", "new", "--subject", "CN=a, O=it's", "--out-dir", "/tmp/x y"]));
        assert_eq!(line, r"keycred new --subject 'CN=a, O=it'\''s' --out-dir '/tmp/x y'");
        let line = shell_line(&args(&["TOKEN=$(", "keycred", "token", "--raw", ")"]));
        assert_eq!(line, "TOKEN=$(keycred token --raw)");
        assert_eq!(shell_line(&args(&["keycred", "decode", "$TOKEN"])), "keycred decode \"$TOKEN\"");
    }
}
