//! Developer tasks for keycred (the cargo-xtask pattern): `cargo xtask test` runs every check CI
//! runs; `cargo xtask bench` measures keycred against openssl; `cargo xtask interop` has MSAL Python
//! and azure-identity get tokens from `keycred emulate --tls`; `cargo xtask fuzz` runs the fuzz
//! targets.
//!
//! Tools the checks need (the openssl CLI, used as the independent reference) are checked for
//! here and installed when missing and possible, so a fresh clone needs nothing by hand.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

mod bench;
mod fleet_bench;
mod fuzz;
mod interop;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("bench") => bench::run(&root(), &args[1..]),
        Some("interop") => interop::run(&root()),
        Some("fuzz") => fuzz::run_all(&args[1..]),
        _ => {
            eprintln!("usage: cargo xtask <test|bench [--quick] [--fleet]|interop|fuzz [--seconds N] [TARGET...]>");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (xtask's parent directory).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

/// Runs a command in the workspace root, failing with its name when it fails.
pub fn run(cmd: &mut Command) -> Result<(), String> {
    eprintln!("xtask: running {:?}", cmd);
    let status = cmd.current_dir(root()).status().map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed with {status}"))
    }
}

/// Makes sure the openssl CLI is there: the tests compare keycred's output with it.
pub fn ensure_openssl() -> Result<(), String> {
    if Command::new("openssl").arg("version").output().map(|o| o.status.success()).unwrap_or(false) {
        return Ok(());
    }
    eprintln!("xtask: openssl CLI not found; installing it with apt-get");
    let _ = Command::new("apt-get").arg("update").status();
    let ok = Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends", "openssl"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if ok {
        Ok(())
    } else {
        Err("the openssl CLI is required by the interop tests; install it (apt-get install openssl)".into())
    }
}

/// Makes sure headless Chromium and its WebDriver are there: one test drives the emulator's
/// consent page in a real browser. Debian's packages, installed with apt-get when missing.
pub fn ensure_chromium() -> Result<(), String> {
    let present = |p: &str| std::path::Path::new(p).exists();
    if present("/usr/bin/chromium") && present("/usr/bin/chromedriver") {
        return Ok(());
    }
    eprintln!("xtask: chromium or chromedriver not found; installing them with apt-get");
    let _ = Command::new("apt-get").arg("update").status();
    let ok = Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends", "chromium", "chromium-driver"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if ok {
        Ok(())
    } else {
        Err("the consent-page test needs Chromium and chromedriver; install them \
             (apt-get install chromium chromium-driver)"
            .into())
    }
}

/// The library without its default features (`cli`, `emulator`) builds, and none of the CLI's or
/// the emulator's dependencies are in its tree: a library user compiles only the core.
fn library_alone(cargo: &str) -> Result<(), String> {
    run(Command::new(cargo).args(["build", "--package", "keycred", "--no-default-features", "--lib", "--locked"]))?;
    let tree = Command::new(cargo)
        .args(["tree", "--package", "keycred", "--no-default-features", "--edges", "normal", "--prefix", "none"])
        .args(["--format", "{p}", "--locked"])
        .current_dir(root())
        .output()
        .map_err(|e| format!("cannot run cargo tree: {e}"))?;
    if !tree.status.success() {
        return Err(format!("cargo tree failed: {}", String::from_utf8_lossy(&tree.stderr)));
    }
    let text = String::from_utf8_lossy(&tree.stdout);
    let present: Vec<&str> = ["axum", "clap", "indicatif", "tempfile"]
        .into_iter()
        .filter(|name| text.lines().any(|l| l.split_whitespace().next() == Some(*name)))
        .collect();
    if present.is_empty() {
        Ok(())
    } else {
        Err(format!("keycred without default features still depends on {}", present.join(", ")))
    }
}

fn test(args: &[String]) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    ensure_openssl()?;
    ensure_chromium()?;
    run(Command::new(&cargo).args(["fmt", "--all", "--", "--check"]))?;
    run(Command::new(&cargo).args(["clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"]))?;
    library_alone(&cargo)?;
    let mut t = Command::new(&cargo);
    // The crash-safety test needs the fault-injection hook, compiled in only for tests. `cargo
    // test` also builds every example and runs the tests of `emulator_in_test`.
    t.args(["test", "--workspace", "--locked", "--features", "keycred/fault-injection"]);
    t.args(args);
    run(&mut t)?;
    interop::run(&root())?;
    run(Command::new(&cargo).args(["doc", "--no-deps", "--package", "keycred"]).env("RUSTDOCFLAGS", "-D warnings"))?;
    eprintln!("xtask: all checks passed");
    Ok(())
}
