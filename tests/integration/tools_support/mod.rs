//! The independent tools the interoperability tests check keycred's files with (Python
//! cryptography, Java keytool, NSS pk12util, Mono), found or the test fails.
//!
//! A test that needs a missing tool fails with the package to install rather than passing
//! silently: `cargo xtask test` installs them all first (apt packages, and Python packages in a
//! virtual environment it names in `KEYCRED_TEST_PYTHON`), so a green run means they ran.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// The python interpreter with the `cryptography` package: `KEYCRED_TEST_PYTHON` (set by
/// `cargo xtask test`), else `python3` from PATH.
pub fn python() -> String {
    let py = std::env::var("KEYCRED_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&py).args(["-c", "import cryptography"]).output().is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "{py} cannot import the cryptography package; run `cargo xtask test` (it installs it in a \
         virtual environment) or set KEYCRED_TEST_PYTHON to a python that has it"
    );
    py
}

/// Runs a Python script (argv[1..] = `args`) with [`python`]; panics with its stderr on failure.
pub fn run_python(dir: &Path, script: &str, args: &[&str]) -> String {
    let o = Command::new(python()).arg("-c").arg(script).args(args).current_dir(dir).output().unwrap();
    assert!(o.status.success(), "python script failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

/// `program` from PATH, or a failure naming the Debian package that provides it.
pub fn require(program: &str, package: &str) -> String {
    let found =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file())).unwrap_or(false);
    assert!(
        found,
        "{program} is not installed; run `cargo xtask test` (it installs it) or `apt-get install {package}`"
    );
    program.to_string()
}

/// Runs `program args` in `dir`; panics with its output on failure.
pub fn run(dir: &Path, program: &str, args: &[&str]) -> Output {
    // The tests read the tools' English output (keytool translates its own by locale).
    let o = Command::new(program).args(args).current_dir(dir).env("LC_ALL", "C.UTF-8").output().unwrap();
    assert!(
        o.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// Java's keytool (package default-jre-headless).
pub fn keytool() -> String {
    require("keytool", "default-jre-headless")
}
