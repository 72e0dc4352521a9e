//! The `keycred` command line: argument parsing and presentation only; the library does the work.
//!
//! Every subcommand lives in its own module with an `Args` struct and a `run` function returning
//! the exit code. Errors are printed once, here, with their hint.

mod common;
mod output;

mod assertion;
mod check;
mod consent;
mod decode;
mod demo;
mod emulate;
mod graph;
mod manifest;
mod new;
mod rotate;
mod show;
mod token;

pub use common::{CredArgs, TenantArgs};
pub use output::{Ctx, OutputFormat};

use crate::error::exit;
use clap::{Parser, Subcommand};

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
    New(new::Args),
    /// Show the Entra values of certificates (thumbprint, customKeyIdentifier, x5t, ...)
    Show(show::Args),
    /// Edit an app manifest's keyCredentials
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
    /// Run the local Entra token endpoint emulator
    Emulate(emulate::Args),
    /// Check end to end that a credential works
    Check(check::Args),
    /// Run the offline demonstration against the embedded emulator
    Demo(demo::Args),
    /// Rotate the certificate of a manifest file
    Rotate(rotate::Args),
    /// Manage an application's certificates through Microsoft Graph
    #[command(subcommand)]
    Graph(graph::Cmd),
}

/// Parses the command line, runs the command, prints any error, and returns the exit code.
pub fn main() -> u8 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => exit::OK,
                _ => exit::INPUT,
            };
        }
    };
    let ctx = Ctx::new(cli.output);
    let result = match &cli.command {
        Command::New(a) => new::run(a, &ctx),
        Command::Show(a) => show::run(a, &ctx),
        Command::Manifest(a) => manifest::run(a, &ctx),
        Command::Assertion(a) => assertion::run(a, &ctx),
        Command::Token(a) => token::run(a, &ctx),
        Command::Decode(a) => decode::run(a, &ctx),
        Command::ConsentUrl(a) => consent::run(a, &ctx),
        Command::Emulate(a) => emulate::run(a, &ctx),
        Command::Check(a) => check::run(a, &ctx),
        Command::Demo(a) => demo::run(a, &ctx),
        Command::Rotate(a) => rotate::run(a, &ctx),
        Command::Graph(a) => graph::run(a, &ctx),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            ctx.print_error(&e);
            e.exit_code()
        }
    }
}
