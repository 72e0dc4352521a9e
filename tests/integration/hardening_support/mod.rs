//! Shared helpers of the hardening tests: temporary directories and running the CLI binary with
//! a clean environment (no AZURE_* variables leaking in from the developer's shell). Both come
//! from the common test module.
#![allow(dead_code)]

pub use crate::common::*;
use std::process::{Command, Output};

/// The CLI with no AZURE_* variables and `env` added.
pub fn command(args: &[String], env: &[(&str, &str)]) -> Command {
    keycred_command(args, env)
}

/// Runs the CLI to completion.
pub fn keycred(args: &[String], env: &[(&str, &str)]) -> Output {
    command(args, env).stdin(std::process::Stdio::null()).output().unwrap()
}
