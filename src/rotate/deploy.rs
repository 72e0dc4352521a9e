//! The deploy hook (`--deploy CMD`): a command run once per application after its new credential
//! is registered and verified, to hand the new bundle to whatever uses the application.
//!
//! CMD is split into words here, never by a shell: quotes group words (`'...'` literally, `"..."`
//! with `\"` and `\\`), a backslash escapes the next character, and nothing is expanded. The
//! values travel only in the environment (`KEYCRED_APP_ID`, `KEYCRED_KEY_ID`,
//! `KEYCRED_THUMBPRINT`, `KEYCRED_BUNDLE`, and `KEYCRED_PFX` when one was written), so no value,
//! however odd, can change what runs. The command gets no stdin and a time limit; past it, it
//! and the processes it started (its process group) are killed. Its output is kept only to say
//! why it failed: the last lines of its stderr go into the report.

use crate::wording::Input;
use crate::{Error, Result};
use serde::Serialize;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Default time limit of one run of the hook.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// Output kept from the hook (its last bytes), to quote when it fails.
const KEPT_OUTPUT: usize = 4096;

/// A deploy command, split into its program and arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeployHook {
    argv: Vec<String>,
    timeout: Duration,
}

/// What the hook is told about one application's new credential.
#[derive(Clone, Debug)]
pub struct DeployTarget<'a> {
    /// The application (client) id.
    pub app_id: &'a str,
    /// The new certificate's keyId.
    pub key_id: &'a str,
    /// Its SHA-1 thumbprint (upper-case hex).
    pub thumbprint: &'a str,
    /// The key + certificate PEM bundle.
    pub bundle: &'a Path,
    /// The PFX, when one was written.
    pub pfx: Option<&'a Path>,
}

/// `deployed` or `deploy_failed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeployStatus {
    /// The hook exited 0.
    Deployed,
    /// It exited otherwise, could not start, or ran out of time.
    DeployFailed,
}

/// How the hook ended for one application. JSON field names are a contract.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeployResult {
    /// `deployed` or `deploy_failed`.
    pub result: DeployStatus,
    /// The hook's exit status, when it exited.
    pub exit_code: Option<i32>,
    /// Why it failed (the last lines of its stderr, or what stopped it).
    pub reason: Option<String>,
}

impl DeployResult {
    /// Whether the hook succeeded.
    pub fn ok(&self) -> bool {
        self.result == DeployStatus::Deployed
    }
    fn failed(exit_code: Option<i32>, reason: String) -> Self {
        DeployResult { result: DeployStatus::DeployFailed, exit_code, reason: Some(reason) }
    }
}

/// Splits `cmd` into words as described in the module documentation; `what` names the input.
pub fn split_command(cmd: &str, what: &str) -> Result<Vec<String>> {
    let mut words = Vec::new();
    let (mut cur, mut in_word) = (String::new(), false);
    let mut chars = cmd.chars();
    let unterminated = |q: char| {
        Error::input(format!("{what}: the {q} quote is not closed"))
            .with_hint("close the quote; values reach the command in KEYCRED_* variables, not on its command line")
    };
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(ch) => cur.push(ch),
                        None => return Err(unterminated('\'')),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(ch @ ('"' | '\\')) => cur.push(ch),
                            Some(ch) => {
                                cur.push('\\');
                                cur.push(ch);
                            }
                            None => return Err(unterminated('"')),
                        },
                        Some(ch) => cur.push(ch),
                        None => return Err(unterminated('"')),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(ch) = chars.next() {
                    cur.push(ch);
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    if words.is_empty() {
        return Err(Error::input(format!("{what}: no command given"))
            .with_hint(format!("give the command to run as {}, for example './deploy.sh'", Input::Deploy)));
    }
    Ok(words)
}

impl DeployHook {
    /// A hook running `cmd` (split by [`split_command`]) with `timeout`; `what` names the input
    /// in errors.
    pub fn parse(cmd: &str, timeout: Duration, what: &str) -> Result<DeployHook> {
        if timeout.is_zero() {
            return Err(Error::input(format!("{what}: the time limit is zero"))
                .with_hint("give the hook a time limit of at least one second"));
        }
        Ok(DeployHook { argv: split_command(cmd, what)?, timeout })
    }

    /// The program and its arguments.
    pub fn argv(&self) -> &[String] {
        &self.argv
    }

    /// Runs the hook for `t` and waits for it (at most the time limit).
    pub fn run_blocking(&self, t: &DeployTarget<'_>) -> DeployResult {
        let mut cmd = Command::new(&self.argv[0]);
        cmd.args(&self.argv[1..])
            .env("KEYCRED_APP_ID", t.app_id)
            .env("KEYCRED_KEY_ID", t.key_id)
            .env("KEYCRED_THUMBPRINT", t.thumbprint)
            .env("KEYCRED_BUNDLE", t.bundle)
            .env_remove("KEYCRED_PFX")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(p) = t.pfx {
            cmd.env("KEYCRED_PFX", p);
        }
        // Its own process group, so that a timeout ends what it started too.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => return DeployResult::failed(None, format!("cannot start {}: {e}", self.argv[0])),
        };
        // Both pipes are drained (a full pipe would block the hook); only stderr is quoted.
        let _out = child.stdout.take().map(|s| std::thread::spawn(move || tail(s)));
        let (tx, rx) = std::sync::mpsc::channel();
        if let Some(s) = child.stderr.take() {
            std::thread::spawn(move || tx.send(tail(s)));
        }
        let status = wait_with_timeout(&mut child, self.timeout);
        // Its stderr closes when it ends, unless something it started in the background keeps
        // it open: then its output is not waited for.
        let stderr = match status {
            Some(_) => rx.recv_timeout(Duration::from_secs(1)).unwrap_or_default(),
            None => Vec::new(),
        };
        match status {
            None => DeployResult::failed(None, format!("still running after {:?}; stopped", self.timeout)),
            Some(s) if s.success() => DeployResult { result: DeployStatus::Deployed, exit_code: Some(0), reason: None },
            Some(s) => {
                let why = last_lines(&stderr);
                let how = match s.code() {
                    Some(c) => format!("exited with status {c}"),
                    None => "was killed by a signal".to_string(),
                };
                DeployResult::failed(s.code(), if why.is_empty() { how } else { format!("{how}: {why}") })
            }
        }
    }

    /// [`DeployHook::run_blocking`] off the async threads.
    pub async fn run(&self, t: &DeployTarget<'_>) -> DeployResult {
        let (hook, app_id, key_id, thumbprint) =
            (self.clone(), t.app_id.to_string(), t.key_id.to_string(), t.thumbprint.to_string());
        let (bundle, pfx) = (t.bundle.to_path_buf(), t.pfx.map(Path::to_path_buf));
        tokio::task::spawn_blocking(move || {
            hook.run_blocking(&DeployTarget {
                app_id: &app_id,
                key_id: &key_id,
                thumbprint: &thumbprint,
                bundle: &bundle,
                pfx: pfx.as_deref(),
            })
        })
        .await
        .unwrap_or_else(|e| DeployResult::failed(None, format!("the hook's task stopped: {e}")))
    }
}

/// Waits for `child` at most `timeout`; past it, kills it (and its process group) and returns
/// `None`.
fn wait_with_timeout(child: &mut std::process::Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return Some(s),
            Ok(None) if std::time::Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                #[cfg(unix)]
                // SAFETY: kill(2) on the process group this child leads; no memory is involved.
                unsafe {
                    libc::kill(-(child.id() as i32), libc::SIGKILL);
                }
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// Reads `r` to its end, keeping the last [`KEPT_OUTPUT`] bytes.
fn tail(mut r: impl Read) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = r.read(&mut buf) {
        if n == 0 {
            break;
        }
        kept.extend_from_slice(&buf[..n]);
        if kept.len() > KEPT_OUTPUT {
            kept.drain(..kept.len() - KEPT_OUTPUT);
        }
    }
    kept
}

/// The last three non-empty lines of `bytes`, joined with ` / `, control characters escaped.
fn last_lines(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let start = lines.len().saturating_sub(3);
    let joined = lines[start..].join(" / ");
    joined.chars().flat_map(|c| if c.is_control() { c.escape_default().collect::<Vec<_>>() } else { vec![c] }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_split_into_words_without_a_shell() {
        let s = |c: &str| split_command(c, "--deploy").unwrap();
        assert_eq!(s("./deploy.sh --to prod"), ["./deploy.sh", "--to", "prod"]);
        assert_eq!(s("sh -c 'echo \"$KEYCRED_APP_ID\"'"), ["sh", "-c", "echo \"$KEYCRED_APP_ID\""]);
        assert_eq!(s(r#"a "b \"c\" \\ \d" e\ f '' "#), ["a", r#"b "c" \ \d"#, "e f", ""]);
        assert_eq!(s("$HOME/x;rm"), ["$HOME/x;rm"]);
        for bad in ["", "   ", "a 'b", "a \"b"] {
            let e = split_command(bad, "--deploy").unwrap_err();
            assert!(e.to_string().starts_with("--deploy: "), "{bad}: {e}");
            assert_eq!(e.exit_code(), 2);
        }
    }

    #[cfg(unix)]
    #[test]
    fn the_hook_gets_the_values_in_its_environment_and_its_status_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("seen");
        let bundle = dir.path().join("b.pem");
        let t = DeployTarget { app_id: "app", key_id: "kid", thumbprint: "AB", bundle: &bundle, pfx: None };
        let script = format!(
            "printf '%s|%s|%s|%s|%s' \"$KEYCRED_APP_ID\" \"$KEYCRED_KEY_ID\" \"$KEYCRED_THUMBPRINT\" \"$KEYCRED_BUNDLE\" \"${{KEYCRED_PFX-none}}\" > {}",
            out.display()
        );
        let hook = DeployHook { argv: vec!["sh".into(), "-c".into(), script], timeout: DEFAULT_TIMEOUT };
        let r = hook.run_blocking(&t);
        assert_eq!(r, DeployResult { result: DeployStatus::Deployed, exit_code: Some(0), reason: None });
        assert_eq!(std::fs::read_to_string(&out).unwrap(), format!("app|kid|AB|{}|none", bundle.display()));

        let fail = DeployHook {
            argv: vec!["sh".into(), "-c".into(), "echo one >&2; echo 'two\x1b' >&2; exit 7".into()],
            timeout: DEFAULT_TIMEOUT,
        };
        let r = fail.run_blocking(&t);
        assert_eq!(r.result, DeployStatus::DeployFailed);
        assert_eq!(r.exit_code, Some(7));
        assert_eq!(r.reason.as_deref(), Some("exited with status 7: one / two\\u{1b}"));

        let missing =
            DeployHook { argv: vec![dir.path().join("nope").display().to_string()], timeout: DEFAULT_TIMEOUT };
        let r = missing.run_blocking(&t);
        assert!(r.reason.as_deref().unwrap().starts_with("cannot start "), "{r:?}");
        assert_eq!(r.exit_code, None);
    }

    #[cfg(unix)]
    #[test]
    fn a_hook_past_its_time_limit_is_stopped_with_what_it_started() {
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path().join("b.pem");
        let t = DeployTarget { app_id: "a", key_id: "k", thumbprint: "T", bundle: &bundle, pfx: None };
        // The hook waits for a child of its own far longer than its limit.
        let script = "sleep 600 & wait".to_string();
        let hook = DeployHook { argv: vec!["sh".into(), "-c".into(), script], timeout: Duration::from_millis(200) };
        let r = hook.run_blocking(&t);
        assert_eq!(r.result, DeployStatus::DeployFailed);
        assert_eq!(r.exit_code, None);
        assert!(r.reason.as_deref().unwrap().starts_with("still running after "), "{r:?}");
    }
}
