//! Developer tasks for keycred (the cargo-xtask pattern): `cargo xtask test` runs every check CI
//! runs; `cargo xtask bench` measures keycred against openssl; `cargo xtask interop` has MSAL Python
//! and azure-identity get tokens from `keycred emulate --tls`; `cargo xtask fuzz` runs the fuzz
//! targets; `cargo xtask flood` measures the emulator's memory under a minute of sign-ins.
//!
//! Tools the checks need (the openssl CLI, Java keytool, NSS pk12util and Mono, used as
//! independent references, and Python's cryptography package) are checked for here and
//! installed when missing and possible, so a fresh clone needs nothing by hand; the tests that
//! use them fail when they are missing, so a green run means they ran.
//!
//! Built binaries are looked for in cargo's target directory as `cargo metadata` reports it, so
//! a `CARGO_TARGET_DIR` (or `build.target-dir`) set elsewhere is honoured.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

mod bench;
mod dist;
mod fleet_bench;
mod flood;
mod fuzz;
mod interop;
mod machine;
mod token_rate;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("bench") => ensure_tools().and_then(|()| bench::run(&root(), &target_dir(), &args[1..])),
        Some("interop") => interop::run(&root(), &target_dir()),
        Some("fuzz") => fuzz::run_all(&args[1..]),
        Some("flood") => flood::run(&target_dir(), &args[1..]),
        Some("dist") => dist::run(&target_dir(), &args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <test|bench [--quick] [--fleet|--emulator]|interop|fuzz [--seconds N] [TARGET...]|\
                 flood [--seconds N] [--debug]|dist [--debug]>"
            );
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

/// Cargo's target directory (`CARGO_TARGET_DIR`, `build.target-dir` or `target/`), as
/// `cargo metadata` reports it.
pub fn target_dir() -> PathBuf {
    target_dir_of(&mut Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())))
}

/// [`target_dir`] with `cargo`, the command it runs `cargo metadata` with.
fn target_dir_of(cargo: &mut Command) -> PathBuf {
    let out = cargo.args(["metadata", "--format-version", "1", "--no-deps", "--offline"]).current_dir(root()).output();
    match out {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout);
            interop::json_str(&text, "target_directory").map(PathBuf::from).unwrap_or_else(|| root().join("target"))
        }
        _ => root().join("target"),
    }
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

/// The programs the tests and benchmarks use (to check keycred's files, to signal processes,
/// to run the README's examples, to render the man page, to measure peak memory), and the
/// Debian packages that have them. Slim images lack even `kill` and `/usr/bin/time`.
const TOOLS: [(&str, &str); 12] = [
    ("openssl", "openssl"),
    ("keytool", "default-jre-headless"),
    ("pk12util", "libnss3-tools"),
    ("certutil", "libnss3-tools"),
    ("mono", "mono-runtime"),
    ("mcs", "mono-mcs"),
    ("kill", "procps"),
    ("time", "time"),
    ("jq", "jq"),
    ("groff", "groff-base"),
    // Keys on a PKCS#11 token: SoftHSM2 is the token, OpenSC's pkcs11-tool the independent look at it.
    ("softhsm2-util", "softhsm2"),
    ("pkcs11-tool", "opensc"),
];
/// Python packages the tests use (pinned, as the interop ones are).
const TEST_PYTHON_PACKAGES: [&str; 1] = ["cryptography==46.0.3"];

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

/// Makes sure the test tools are there, installing the missing ones with apt-get.
pub fn ensure_tools() -> Result<(), String> {
    let mut missing: Vec<&str> = TOOLS.iter().filter(|(p, _)| !on_path(p)).map(|(_, pkg)| *pkg).collect();
    missing.dedup();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("xtask: installing {} with apt-get (the tests compare keycred's output with them)", missing.join(" "));
    let _ = Command::new("apt-get").arg("update").status();
    let ok = Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends"])
        .args(&missing)
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Ok(())
    } else {
        Err(format!("the tests need {}; install them (apt-get install {})", missing.join(", "), missing.join(" ")))
    }
}

/// Makes sure the openssl CLI is there: the interop run compares keycred's output with it.
pub fn ensure_openssl() -> Result<(), String> {
    if on_path("openssl") {
        return Ok(());
    }
    ensure_tools()
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

/// The library without its default features (`cli`, `emulator`) compiles, and none of the CLI's or
/// the emulator's dependencies are in its tree: a library user compiles only the core.
fn library_alone(cargo: &str) -> Result<(), String> {
    // `check`, not `build`: whether it compiles is the question, and code generation for a
    // crate graph of other features than the tests' would be a whole extra build in CI.
    run(Command::new(cargo).args(["check", "--package", "keycred", "--no-default-features", "--lib", "--locked"]))?;
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
    ensure_tools()?;
    ensure_chromium()?;
    let target = target_dir();
    let python = interop::venv(&target.join("test-venv"), &TEST_PYTHON_PACKAGES)?;
    run(Command::new(&cargo).args(["fmt", "--all", "--", "--check"]))?;
    run(Command::new(&cargo).args(["clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"]))?;
    library_alone(&cargo)?;
    let mut t = Command::new(&cargo);
    // The crash-safety test needs the fault-injection hook, compiled in only for tests. `cargo
    // test` also builds every example and runs the tests of `emulator_in_test`.
    t.args(["test", "--workspace", "--locked", "--features", "keycred/fault-injection"]);
    t.args(args);
    t.env("KEYCRED_TEST_PYTHON", &python);
    // softhsm2 was installed above: a test that cannot find it fails instead of skipping.
    t.env("KEYCRED_TEST_REQUIRE_SOFTHSM", "1");
    run(&mut t)?;
    interop::run_with(&root(), &target)?;
    run(Command::new(&cargo).args(["doc", "--no-deps", "--package", "keycred"]).env("RUSTDOCFLAGS", "-D warnings"))?;
    eprintln!("xtask: all checks passed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_dir_follows_cargo_target_dir() {
        let elsewhere = std::env::temp_dir().join("keycred-xtask-target");
        let got = target_dir_of(
            Command::new("cargo").env("CARGO_TARGET_DIR", &elsewhere).env_remove("CARGO_BUILD_TARGET_DIR"),
        );
        assert_eq!(got, elsewhere);
        let got =
            target_dir_of(Command::new("cargo").env_remove("CARGO_TARGET_DIR").env_remove("CARGO_BUILD_TARGET_DIR"));
        assert_eq!(got, root().join("target"));
    }
}
