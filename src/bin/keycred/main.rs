//! The `keycred` binary: argument parsing and presentation only; the `keycred` library does the
//! work.
//!
//! Every subcommand lives in its own module with an `Args` struct and a `run` function returning
//! the exit code. Errors are printed once, here, with their hint.

mod claims;
mod common;
mod output;

mod assertion;
mod check;
mod consent;
mod credential;
mod csr;
mod decode;
mod demo;
mod emulate;
mod fic;
mod fic_check;
mod fleet;
mod graph;
mod keystore;
mod manifest;
mod new;
mod permissions;
mod rotate;
mod show;
mod token;
mod vault;
mod wording;

use common::{CredArgs, TenantArgs};
use output::{Ctx, OutputFormat};

use clap::{Parser, Subcommand};
use keycred::error::exit;
use keycred::Error;

/// Certificate credentials for Microsoft Entra ID app registrations.
///
/// Exit codes: 0 success; 1 unexpected failure; 2 bad usage or input (nothing changed);
/// 3 a remote service refused; 4 a check failed.
#[derive(Parser, Debug)]
#[command(name = "keycred", version, about, propagate_version = true)]
pub struct Cli {
    /// Output format.
    #[arg(short = 'o', long = "output", global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Generate an RSA key and a self-signed certificate for an app credential
    #[command(mut_arg("name", |a| a.required(true).help("Base name of the files: NAME.key, NAME.cer, NAME.pem (and NAME.pfx)")))]
    New(new::Args),
    /// Show the Entra values of certificates (thumbprint, customKeyIdentifier, x5t, ...)
    Show(show::Args),
    /// Write a certificate signing request (PKCS#10) for a key in a file or on a token
    Csr(csr::Args),
    /// Edit an app manifest's keyCredentials and API permissions
    #[command(subcommand)]
    Manifest(manifest::Cmd),
    /// Sign a client assertion (JWT) with a certificate
    Assertion(assertion::Args),
    /// Request a token (client credentials, on-behalf-of, authorization code)
    Token(token::Args),
    /// Decode a JWT's header and claims (not verified)
    Decode(decode::Args),
    /// Build or parse admin-consent URLs
    ConsentUrl(consent::Args),
    /// List the built-in catalogue of API permissions (names and ids Microsoft publishes)
    Permissions(permissions::CatalogueArgs),
    /// Run the local Entra token endpoint emulator
    Emulate(emulate::Args),
    /// Check end to end that a credential works
    Check(check::Args),
    /// Run the offline demonstration against the embedded emulator
    Demo(demo::Args),
    /// Rotate the certificate of a manifest file: add a new one (phase 1), or --retire the older ones (phase 2)
    #[command(mut_arg("force", |a| a.help("Replace existing files; with --retire, retire without evidence")))]
    Rotate(rotate::Args),
    /// Manage an application's certificates through Microsoft Graph
    #[command(subcommand)]
    Graph(graph::Cmd),
    /// Workload tokens for secretless sign-in: mint one from an emulated issuer, or check one
    /// against an application's federated identity credentials
    #[command(subcommand)]
    Fic(fic::Cmd),
    /// Audit and rotate the credentials of many applications at once (tenant scale)
    #[command(subcommand)]
    Fleet(fleet::Cmd),
    /// Print a shell completion script, e.g. `keycred completions bash >
    /// ~/.local/share/bash-completion/completions/keycred`
    Completions {
        /// The shell
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff); `cargo xtask dist` writes it with the completions
    #[command(hide = true)]
    ManPage,
}

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(run())
}

/// Parses the command line, runs the command, prints any error, and returns the exit code.
fn run() -> u8 {
    // Library messages name this command line's options and commands from here on.
    keycred::wording::install(&wording::Cli);
    let parsed = command().try_get_matches().and_then(|m| <Cli as clap::FromArgMatches>::from_arg_matches(&m));
    let cli = match parsed {
        Ok(c) => c,
        Err(e) => return usage_error(&e),
    };
    let ctx = Ctx::new(cli.output);
    if cli.output == OutputFormat::Csv && !matches!(cli.command, Command::Fleet(_)) {
        let e = Error::input("-o csv is only for `keycred fleet audit`").with_hint("use -o json or the default text");
        ctx.print_error(&e);
        return e.exit_code();
    }
    let result = match &cli.command {
        Command::New(a) => new::run(a, &ctx),
        Command::Show(a) => show::run(a, &ctx),
        Command::Csr(a) => csr::run(a, &ctx),
        Command::Manifest(a) => manifest::run(a, &ctx),
        Command::Assertion(a) => assertion::run(a, &ctx),
        Command::Token(a) => token::run(a, &ctx),
        Command::Decode(a) => decode::run(a, &ctx),
        Command::ConsentUrl(a) => consent::run(a, &ctx),
        Command::Permissions(a) => permissions::catalogue(a, &ctx),
        Command::Emulate(a) => emulate::run(a, &ctx),
        Command::Fic(a) => fic::run(a, &ctx),
        Command::Check(a) => check::run(a, &ctx),
        Command::Demo(a) => demo::run(a, &ctx),
        Command::Rotate(a) => rotate::run(a, &ctx),
        Command::Graph(a) => graph::run(a, &ctx),
        Command::Fleet(a) => fleet::run(a, &ctx),
        Command::Completions { shell } => {
            generated(|out| clap_complete::generate(*shell, &mut completion_command(), "keycred", out))
        }
        Command::ManPage => generated(|out| clap_mangen::Man::new(command()).render(out)),
    };
    match result {
        Ok(code) => code,
        // The reader closed stdout (`keycred ... | head`): what it read is what it wanted.
        Err(e) if output::is_closed_stdout(&e) => exit::OK,
        Err(e) => {
            ctx.print_error(&e);
            e.exit_code()
        }
    }
}

/// The command line: [`Cli`]'s, with `fleet audit`'s `-o` listing csv, which it alone takes (the
/// global `-o` hides that value from every other command's help).
fn command() -> clap::Command {
    use clap::builder::TypedValueParser;
    let output = <Cli as clap::CommandFactory>::command()
        .get_arguments()
        .find(|a| a.get_id() == "output")
        .cloned()
        .expect("Cli has -o")
        .global(false)
        .value_parser(
            clap::builder::PossibleValuesParser::new(["text", "json", "csv"])
                .map(|v| <OutputFormat as clap::ValueEnum>::from_str(&v, false).expect("a listed value")),
        );
    <Cli as clap::CommandFactory>::command().mut_subcommand("fleet", |f| f.mut_subcommand("audit", |a| a.arg(output)))
}

/// The command line as completions offer it: without the hidden subcommands (`man-page`, for
/// `cargo xtask dist`), which clap_complete would list like the others.
fn completion_command() -> clap::Command {
    let full = command();
    let mut root = clap::Command::new("keycred")
        .version(env!("CARGO_PKG_VERSION"))
        .args(full.get_arguments().cloned())
        .subcommands(full.get_subcommands().filter(|c| !c.is_hide_set()).cloned());
    if let Some(a) = full.get_about() {
        root = root.about(a.clone());
    }
    root.propagate_version(true)
}

/// Writes what `write` generates (a completion script, the man page) to stdout; a closed pipe is
/// not an error.
fn generated<R>(write: impl FnOnce(&mut dyn std::io::Write) -> R) -> keycred::Result<u8> {
    let mut out = Vec::new();
    write(&mut out);
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(&out);
    Ok(exit::OK)
}

/// Prints clap's help, version or usage error. A script that asked for `-o json` gets the usage
/// error as the same JSON document every other error is (the command line did not parse, so
/// the option is looked for in the raw arguments).
fn usage_error(e: &clap::Error) -> u8 {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return exit::OK;
    }
    if let Some(e) = misplaced_flag(e) {
        Ctx::new(if wants_json(std::env::args_os().skip(1).map(|a| a.to_string_lossy().into_owned())) {
            OutputFormat::Json
        } else {
            OutputFormat::Text
        })
        .print_error(&e);
        return exit::INPUT;
    }
    // clap quotes the offending argument (and suggests `-- VALUE`): a private key or token
    // pasted in the wrong place would be printed whole. Such values are masked.
    let secrets: Vec<String> =
        std::env::args_os().skip(1).map(|a| a.to_string_lossy().into_owned()).filter(|a| looks_secret(a)).collect();
    if wants_json(std::env::args_os().skip(1).map(|a| a.to_string_lossy().into_owned())) {
        // clap's text: the message (maybe over several lines), tips, then "Usage: ...".
        let text = redact(&e.render().to_string(), &secrets);
        let lines: Vec<&str> =
            text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with("For more information")).collect();
        let usage = lines.iter().position(|l| l.starts_with("Usage:")).unwrap_or(lines.len());
        let (tips, message): (Vec<&str>, Vec<&str>) = lines[..usage].iter().partition(|l| l.starts_with("tip:"));
        let message = message.join(" ").trim_start_matches("error: ").to_string();
        let hint = match (tips.first(), lines.get(usage)) {
            (Some(tip), _) => tip.trim_start_matches("tip:").trim().to_string(),
            (None, Some(usage)) => usage.to_string(),
            (None, None) => "see `keycred --help`".to_string(),
        };
        Ctx::new(OutputFormat::Json).print_error(&Error::input(message).with_hint(hint));
    } else if secrets.is_empty() {
        let _ = e.print();
    } else {
        eprint!("{}", redact(&e.render().to_string(), &secrets));
    }
    exit::INPUT
}

/// A subcommand that is one of the global flags (`keycred version`): clap would suggest the
/// subcommand whose name looks closest (`assertion`), while the user wants the flag.
fn misplaced_flag(e: &clap::Error) -> Option<Error> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if e.kind() != ErrorKind::InvalidSubcommand {
        return None;
    }
    match e.get(ContextKind::InvalidSubcommand) {
        Some(ContextValue::String(s)) if s == "version" => Some(
            Error::input("unrecognized subcommand 'version'")
                .with_hint("the version is printed by `keycred --version`"),
        ),
        _ => None,
    }
}

/// Shown instead of an argument that looks like a key or token.
const REDACTED: &str = "[value hidden: it looks like a key or token]";

/// Whether a command-line argument looks like a secret: a PEM block (a private key pasted
/// whole), a JWT (an access token or assertion, possibly after `Bearer `), or a long base64 run
/// (a DER key or client secret pasted as text).
fn looks_secret(arg: &str) -> bool {
    if arg.contains("-----BEGIN") {
        return true;
    }
    let b64url = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    arg.split_whitespace().any(|word| {
        let parts: Vec<&str> = word.split('.').collect();
        let jwt = parts.len() >= 2 && parts[0].starts_with("eyJ") && parts[..2].iter().all(|p| b64url(p));
        let base64 = word.len() >= 64 && word.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=_-".contains(&b));
        jwt || base64
    })
}

/// `text` with every occurrence of the `secrets` replaced by [`REDACTED`], and whatever PEM block
/// remains (clap may show an argument cut or re-quoted) cut from its BEGIN line to its END line.
fn redact(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        if !s.is_empty() {
            out = out.replace(s.as_str(), REDACTED);
        }
    }
    while let Some(start) = out.find("-----BEGIN") {
        let end = match out[start..].find("-----END") {
            Some(e) => {
                let after = start + e + "-----END".len();
                out[after..].find("-----").map_or(out.len(), |d| after + d + "-----".len())
            }
            None => out.len(),
        };
        out.replace_range(start..end, REDACTED);
    }
    out
}

/// Whether the raw arguments ask for JSON output (`-o json`, `-ojson`, `--output json`,
/// `--output=json`).
fn wants_json(args: impl Iterator<Item = String>) -> bool {
    let mut prev_is_flag = false;
    for a in args {
        if a == "--" {
            return false;
        }
        if (prev_is_flag && a == "json") || a == "-ojson" || a == "--output=json" || a == "-o=json" {
            return true;
        }
        prev_is_flag = a == "-o" || a == "--output";
    }
    false
}

#[cfg(test)]
mod tests {
    use super::{looks_secret, redact, wants_json, REDACTED};

    /// Issue 14, point 14: clap echoed a pasted private key in its usage error.
    #[test]
    fn secrets_are_masked_in_usage_errors() {
        let key = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n";
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJ4In0.c2lnbmF0dXJl";
        for s in [key, jwt, &format!("Bearer {jwt}"), &"QUJD".repeat(20)] {
            assert!(looks_secret(s), "{s}");
        }
        for s in ["app.json", "--cert", "6731de76-14a6-49ae-97bc-6eba6914391e", "https://graph.microsoft.com/.default"]
        {
            assert!(!looks_secret(s), "{s}");
        }
        let text = format!("error: unexpected argument '{key}' found\n\n  tip: use '-- {key}'\n");
        let shown = redact(&text, &[key.to_string()]);
        assert!(!shown.contains("MIIE") && shown.contains(REDACTED), "{shown}");
        // A block clap re-quoted (not the exact argument) is still cut.
        let shown = redact("x '-----BEGIN RSA PRIVATE KEY-----\\nMIIB\\n-----END RSA PRIVATE KEY-----' y", &[]);
        assert_eq!(shown, format!("x '{REDACTED}' y"));
    }

    #[test]
    fn json_output_is_found_in_raw_arguments() {
        let args = |s: &str| s.split_whitespace().map(str::to_string).collect::<Vec<_>>().into_iter();
        for yes in ["token -o json --bogus", "-ojson token", "token --output json", "x --output=json"] {
            assert!(wants_json(args(yes)), "{yes}");
        }
        for no in ["token --bogus", "decode json", "token -o text", "token -- -o json"] {
            assert!(!wants_json(args(no)), "{no}");
        }
    }
}
