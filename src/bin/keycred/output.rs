//! Presentation: text or JSON output, error printing, progress on terminals only.

use keycred::cert::files::Plan;
use keycred::cert::{Certificate, KeySize, PrivateKey};
use keycred::rotate::deploy::DeployResult;
use keycred::rotate::{RetireReport, RetireResult, RotateReport, Stage};
use keycred::{Error, Result};
use serde::Serialize;
use std::io::{ErrorKind, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// `-o text|json`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Human-readable text.
    Text,
    /// One JSON document on stdout, stable field names.
    Json,
    /// Comma-separated values with a header line, for spreadsheets: `fleet audit` only, so it is
    /// listed in that command's help alone.
    #[value(hide = true)]
    Csv,
}

/// What every command gets: the output format and terminal facts.
#[derive(Debug)]
pub struct Ctx {
    /// Output format.
    pub format: OutputFormat,
}

impl Ctx {
    /// New context.
    pub fn new(format: OutputFormat) -> Self {
        Ctx { format }
    }
    /// Whether JSON was asked for.
    pub fn json(&self) -> bool {
        self.format == OutputFormat::Json
    }
    /// Prints a value as pretty JSON on stdout.
    pub fn print_json<T: Serialize + ?Sized>(&self, v: &T) {
        // A value serde cannot write is still told as JSON (serde builds it, quotes escaped).
        let s = serde_json::to_string_pretty(v)
            .unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }).to_string());
        write_stdout(&json_safe(&s));
    }
    /// Prints an error: text on stderr, or a JSON object on stderr with `-o json`.
    pub fn print_error(&self, e: &Error) {
        if self.json() {
            let v = serde_json::json!({
                "error": {
                    "exitCode": e.exit_code(),
                    "message": e.message(),
                    "hint": e.hint(),
                    "aadsts": e.aadsts(),
                    "graphCode": e.graph_code(),
                }
            });
            eprintln!("{}", json_safe(&v.to_string()));
        } else {
            // Messages quote inputs (file names, values read from files): escaped like stdout.
            eprintln!("keycred: error: {}", printable(e.message()));
            if let Some(h) = e.hint() {
                eprintln!("  hint: {}", printable(h));
            }
        }
    }
    /// Whether stderr is a terminal (progress and colour only then).
    pub fn stderr_is_terminal(&self) -> bool {
        std::io::stderr().is_terminal()
    }
}

/// Set once stdout is closed (`keycred ... | head`): nothing more is written, and long commands
/// stop at their next step ([`ensure_open`]).
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes one line of text to stdout, control characters escaped (see [`printable`]). A closed
/// pipe is not an error: the reader has what it wanted, so later lines are dropped and
/// [`ensure_open`] tells long commands to stop; the command returns to `main` normally, so
/// destructors (the demo's temporary directory) run.
pub fn out_line(s: &str) {
    write_stdout(&printable(s));
}

/// Writes `s` and a newline to stdout as it is (JSON documents, already escaped).
fn write_stdout(s: &str) {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{s}").and_then(|()| out.flush()).is_err() {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
    }
}

/// `Err` once stdout is closed: a command with more steps to run returns it to `main`, which
/// exits 0 without a message ([`is_closed_stdout`]).
pub fn ensure_open() -> Result<()> {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return Err(Error::internal("stdout was closed").with_source(std::io::Error::from(ErrorKind::BrokenPipe)));
    }
    Ok(())
}

/// Whether `e` is [`ensure_open`]'s: stdout closed by its reader, which is success.
pub fn is_closed_stdout(e: &Error) -> bool {
    std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .is_some_and(|io| io.kind() == ErrorKind::BrokenPipe)
        && STDOUT_CLOSED.load(Ordering::Relaxed)
}

/// Stdout for documents written in pieces by a serializer (`fleet audit`'s JSON and CSV). A
/// failed write means the reader closed stdout, as for [`out_line`]: stdout is marked closed, so
/// the command stops at its next [`ensure_open`] and exits 0.
pub struct Stdout;

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if STDOUT_CLOSED.load(Ordering::Relaxed) {
            return Err(ErrorKind::BrokenPipe.into());
        }
        std::io::stdout().lock().write(buf).inspect_err(|_| STDOUT_CLOSED.store(true, Ordering::Relaxed))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stdout().lock().flush().inspect_err(|_| STDOUT_CLOSED.store(true, Ordering::Relaxed))
    }
}

/// A writer passing serde_json's output through [`json_safe`]. serde_json hands over each string
/// fragment whole (it splits them only at the characters it escapes itself, all ASCII), so no
/// character is ever cut between two writes.
pub struct JsonSafe<W>(pub W);

impl<W: Write> Write for JsonSafe<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match std::str::from_utf8(buf) {
            Ok(s) => self.0.write_all(json_safe(s).as_bytes())?,
            Err(_) => self.0.write_all(buf)?,
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// The error a failed write to stdout ends a command with: [`ensure_open`]'s when the reader
/// closed it (success), else an unexpected failure naming `what` and keeping the cause.
pub fn write_failed(what: &str, e: impl std::error::Error + Send + Sync + 'static) -> Error {
    ensure_open().err().unwrap_or_else(|| Error::internal(format!("cannot write {what}")).caused_by(e))
}

/// `s` safe to print on a terminal: control characters (C0, DEL, C1: `\e[2J` would clear the
/// screen, a newline would forge a line such as `roles: ...`) and the bidirectional overrides
/// that reorder what is shown become visible escapes (`\x1b`, `\n`, `\u{202e}`). Every line of
/// text output goes through it, whatever the data came from (a token's claims, a manifest).
/// Prints a table: a head, then rows, columns padded to their widest cell. Cells are escaped
/// ([`printable`]) before the widths are measured: a cell with terminal escapes or a newline must
/// neither act on the terminal nor forge a row.
pub fn print_table<const N: usize>(head: [&str; N], rows: &[[String; N]]) {
    let head = head.map(String::from);
    let rows: Vec<[String; N]> = rows.iter().map(|r| r.clone().map(|c| printable(&c).into_owned())).collect();
    let mut widths = [0usize; N];
    for row in std::iter::once(&head).chain(&rows) {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    for row in std::iter::once(&head).chain(&rows) {
        let cells: Vec<String> = row.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out_line(cells.join("  ").trim_end());
    }
}

pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    let bidi = |c: char| matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if !s.chars().any(|c| c.is_control() || bidi(c)) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() && (c as u32) < 0x100 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() || bidi(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// serde_json output with DEL and the C1 controls (which it leaves raw, and which some terminals
/// obey) written as `\u00XX` escapes; they only occur inside strings, so the JSON stays the same.
pub fn json_safe(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t' | ' ')) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push('\n'),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// `n` with the noun agreeing with it: `1 certificate`, `2 certificates`.
pub fn count(n: u64, singular: &str, plural: &str) -> String {
    format!("{n} {}", if n == 1 { singular } else { plural })
}

/// Aligned `name: value` lines, names and values escaped (see [`printable`]).
pub fn print_pairs(pairs: &[(&str, String)]) {
    let pairs: Vec<(String, String)> =
        pairs.iter().map(|(k, v)| (printable(k).into_owned(), printable(v).into_owned())).collect();
    let w = pairs.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0);
    for (k, v) in pairs {
        out_line(&format!("{:<w$}  {v}", format!("{k}:"), w = w + 1));
    }
}

/// Runs `f` with a spinner on stderr when it is a terminal; silent otherwise.
pub fn with_spinner<T>(ctx: &Ctx, message: &str, f: impl FnOnce() -> T) -> T {
    if !ctx.stderr_is_terminal() {
        return f();
    }
    let pb = indicatif::ProgressBar::new_spinner();
    pb.set_message(message.to_string());
    pb.enable_steady_tick(std::time::Duration::from_millis(100));
    let r = f();
    pb.finish_and_clear();
    r
}

/// Generates a planned key and certificate, with a spinner for the slow key sizes.
pub fn generate(ctx: &Ctx, plan: &Plan) -> Result<(Certificate, PrivateKey)> {
    let size = plan.request().key_size;
    if size == KeySize::Rsa2048 {
        plan.generate()
    } else {
        with_spinner(ctx, &format!("generating an RSA-{} key", size.bits()), || plan.generate())
    }
}

/// Runs `f` with a spinner on stderr (a terminal only) that names each rotation stage as it
/// starts; `f` gets the progress callback the library calls.
pub fn with_stages<T>(ctx: &Ctx, f: impl FnOnce(&dyn Fn(Stage)) -> T) -> T {
    if !ctx.stderr_is_terminal() {
        return f(&|_| {});
    }
    let pb = indicatif::ProgressBar::new_spinner();
    pb.enable_steady_tick(std::time::Duration::from_millis(100));
    let r = f(&|stage: Stage| pb.set_message(stage.describe()));
    pb.finish_and_clear();
    r
}

/// The exit code of a rotation whose deploy hook ran: 4 when it failed (the new certificate is
/// registered and verified; nothing was removed).
pub fn deploy_outcome(d: Option<&DeployResult>) -> Result<u8> {
    match d {
        Some(d) if !d.ok() => Err(Error::check(format!(
            "the deploy hook failed: {}; the new certificate is registered and nothing was removed",
            d.reason.as_deref().unwrap_or("no reason given")
        ))
        .with_hint("fix the hook and deploy the new bundle; retire the old certificates once it is in use")),
        _ => Ok(keycred::error::exit::OK),
    }
}

/// How a deploy hook ended, in a word and its reason.
pub fn deploy_text(d: &DeployResult) -> String {
    match (d.ok(), &d.reason) {
        (true, _) => "deployed".to_string(),
        (false, Some(r)) => format!("deploy_failed ({r})"),
        (false, None) => "deploy_failed".to_string(),
    }
}

/// Prints what a rotation did (`keycred rotate`, `keycred graph rotate`): the report in JSON;
/// in text the added entry, the verification, the removals, what to deploy and when retiring
/// becomes possible.
pub fn print_rotation(ctx: &Ctx, report: &RotateReport) -> Result<()> {
    if ctx.json() {
        ctx.print_json(report);
        return Ok(());
    }
    let mut pairs = vec![("added keyId", report.key_id.clone())];
    if let Some(m) = &report.methods {
        pairs.push(("method", m.added.to_string()));
    }
    pairs.push(("thumbprint", report.thumbprint.clone()));
    pairs.push(("verified with", report.verified_with.clone().unwrap_or_else(|| "not verified (no --verify)".into())));
    // One aligned block: the removed entries line up with the rest.
    if report.removed.is_empty() {
        pairs.push(("removed", "nothing".into()));
    }
    for r in &report.removed {
        let how = report.methods.as_ref().and_then(|m| m.removed).map(|m| format!(" ({m})")).unwrap_or_default();
        pairs.push((
            "removed",
            format!(
                "keyId {} thumbprint {}{how}",
                r.key_id.as_deref().unwrap_or("?"),
                r.thumbprint.as_deref().unwrap_or("?")
            ),
        ));
    }
    if let Some(f) = &report.files {
        pairs.push(("bundle", f.bundle.clone()));
        if let Some(p) = &f.pfx {
            pairs.push(("pfx", p.clone()));
        }
    }
    if let Some(d) = &report.deploy {
        pairs.push(("deploy", deploy_text(d)));
    }
    if let (Some(t), true) = (&report.retire_from, report.deploy.as_ref().is_none_or(DeployResult::ok)) {
        pairs.push(("retire from", format!("{t} (once the old certificates have not signed in for 24h)")));
    }
    print_pairs(&pairs);
    Ok(())
}

/// Prints what retiring one application did (`rotate --retire`, `graph retire`).
pub fn print_retire(ctx: &Ctx, r: &RetireReport) {
    if ctx.json() {
        ctx.print_json(r);
        return;
    }
    let result = match r.result {
        RetireResult::Retired => "retired",
        RetireResult::Kept => "kept",
        RetireResult::Skipped => "nothing to retire",
    };
    let mut pairs = vec![("result", result.to_string()), ("evidence", r.evidence.to_string())];
    if let Some(n) = &r.newest {
        pairs.push(("newest", format!("keyId {} (stays)", n.key_id.as_deref().unwrap_or("?"))));
    }
    for row in &r.retired {
        let (k, t) = (row.key_id.as_deref().unwrap_or("?"), row.thumbprint.as_deref().unwrap_or("?"));
        pairs.push(("retired", format!("keyId {k} thumbprint {t}")));
    }
    for k in &r.kept {
        pairs.push(("kept", format!("keyId {}: {}", k.key_id.as_deref().unwrap_or("?"), k.reason)));
    }
    if let Some(why) = &r.reason {
        pairs.push(("reason", why.clone()));
    }
    print_pairs(&pairs);
}

/// Warns about a credential Entra would refuse: signing still works (useful to test refusals),
/// but a user debugging an AADSTS700027 should see the cause at once.
pub fn warn_unusable(cred: &keycred::cert::LoadedCredential) {
    let (now, c) = (keycred::dates::now(), &cred.cert);
    let problem = if now > c.not_after() {
        Some(format!("expired on {}", keycred::dates::format(c.not_after())))
    } else if now < c.not_before() {
        Some(format!("is not valid before {}", keycred::dates::format(c.not_before())))
    } else {
        None
    };
    if let Some(problem) = problem {
        eprintln!(
            "keycred: warning: {}: the certificate {problem}; Entra refuses assertions signed with it",
            printable(&cred.cert_path.display().to_string())
        );
    }
}

#[cfg(test)]
mod tests {
    use super::{count, json_safe, printable};

    #[test]
    fn counted_nouns_agree_with_their_number() {
        assert_eq!(count(1, "file", "files"), "1 file");
        assert_eq!(count(0, "file", "files"), "0 files");
        assert_eq!(count(2, "secret", "secrets"), "2 secrets");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable("plain é ☃"), "plain é ☃");
        assert_eq!(printable("a\u{1b}[2Jb"), "a\\x1b[2Jb");
        assert_eq!(printable("x\nroles: Admin"), "x\\nroles: Admin");
        assert_eq!(printable("\u{9b}31m \u{202e}abc"), "\\x9b31m \\u{202e}abc");
        let j = json_safe("{\n  \"a\": \"\u{9b}x\u{7f}\"\n}");
        let mut through = super::JsonSafe(Vec::new());
        serde_json::to_writer(&mut through, &serde_json::json!({"a": "\u{9b}x\u{7f}"})).unwrap();
        assert_eq!(String::from_utf8(through.0).unwrap(), "{\"a\":\"\\u009bx\\u007f\"}");
        assert_eq!(j, "{\n  \"a\": \"\\u009bx\\u007f\"\n}");
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(v["a"], "\u{9b}x\u{7f}");
    }
}
