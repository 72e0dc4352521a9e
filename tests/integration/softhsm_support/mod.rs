//! A SoftHSM2 token for the tests of keys on tokens: a configuration and token directory of its
//! own (`SOFTHSM2_CONF`), a token labelled `T` with user PIN 1234, and the environment keycred
//! reads (`KEYCRED_PKCS11_MODULE`, the PIN in `PIN`).
//!
//! Under `cargo xtask test` (which installs softhsm2 and opensc and sets
//! `KEYCRED_TEST_REQUIRE_SOFTHSM`), a missing SoftHSM2 fails the test; under a plain `cargo test`
//! the test says it was skipped.

#![allow(dead_code)]

use crate::common::TempDir;
use std::path::Path;
use std::process::{Command, Output};

/// SoftHSM2's module, as Debian installs it.
pub const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
pub const PIN: &str = "1234";
pub const SO_PIN: &str = "5678";

/// A token in a temporary directory, removed on drop.
pub struct SoftHsm {
    pub dir: TempDir,
    pub conf: String,
}

/// A fresh token `T`, or `None` (with a note) when SoftHSM2 is not installed and the run does not
/// require it.
pub fn token() -> Option<SoftHsm> {
    let installed = Path::new(MODULE).is_file() && on_path("softhsm2-util") && on_path("pkcs11-tool");
    if !installed {
        assert!(
            std::env::var_os("KEYCRED_TEST_REQUIRE_SOFTHSM").is_none(),
            "SoftHSM2 and OpenSC are required in this run (apt-get install softhsm2 opensc)"
        );
        eprintln!("skipped: softhsm2 not installed");
        return None;
    }
    let dir = TempDir::new("softhsm");
    std::fs::create_dir_all(dir.path("tokens")).unwrap();
    let conf = dir.s("softhsm2.conf");
    let text = format!("directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n", dir.s("tokens"));
    std::fs::write(&conf, text).unwrap();
    let hsm = SoftHsm { dir, conf };
    let out = hsm.run("softhsm2-util", &["--init-token", "--free", "--label", "T", "--pin", PIN, "--so-pin", SO_PIN]);
    assert!(out.status.success(), "softhsm2-util: {}", String::from_utf8_lossy(&out.stderr));
    Some(hsm)
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

impl SoftHsm {
    /// What keycred needs to reach the token: the configuration, the module, the PIN in `PIN`.
    pub fn env(&self) -> Vec<(&str, &str)> {
        vec![("SOFTHSM2_CONF", self.conf.as_str()), ("KEYCRED_PKCS11_MODULE", MODULE), ("PIN", PIN)]
    }
    /// Runs a SoftHSM2 or OpenSC tool against this token.
    pub fn run(&self, program: &str, args: &[&str]) -> Output {
        Command::new(program).args(args).env("SOFTHSM2_CONF", &self.conf).output().unwrap()
    }
    /// `pkcs11-tool --module ... ARGS`, asserted to succeed; its stdout.
    pub fn pkcs11_tool(&self, args: &[&str]) -> String {
        let mut all = vec!["--module", MODULE];
        all.extend_from_slice(args);
        let out = self.run("pkcs11-tool", &all);
        assert!(out.status.success(), "pkcs11-tool {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
    /// The token's objects as `pkcs11-tool --list-objects --login` shows them.
    pub fn objects(&self) -> String {
        self.pkcs11_tool(&["--list-objects", "--login", "--pin", PIN])
    }
}
