//! `cargo xtask bench`: keycred against openssl, side by side (filled in by the benchmarks work).

use std::path::Path;

/// Runs the benchmarks.
pub fn run(_root: &Path, _args: &[String]) -> Result<(), String> {
    Err("benchmarks are not implemented yet".into())
}
