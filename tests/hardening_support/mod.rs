//! Shared helpers of the hardening tests: temporary directories and running the CLI binary with
//! a clean environment (no AZURE_* variables leaking in from the developer's shell).
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

pub const KEYCRED: &str = env!("CARGO_BIN_EXE_keycred");

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let d = std::env::temp_dir().join(format!("keycred-hardening-{tag}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The CLI with no AZURE_* variables and `env` added.
pub fn command(args: &[String], env: &[(&str, &str)]) -> Command {
    let mut c = Command::new(KEYCRED);
    c.args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("AZURE_") || k.starts_with("KEYCRED_") {
            c.env_remove(k);
        }
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

/// Runs the CLI to completion.
pub fn keycred(args: &[String], env: &[(&str, &str)]) -> Output {
    command(args, env).stdin(std::process::Stdio::null()).output().unwrap()
}
