//! `cargo xtask fuzz --seconds N [TARGET...]`: runs every cargo-fuzz target of `fuzz/` for N
//! seconds each (default 60), installing cargo-fuzz when missing.
//!
//! The toolchain is stable; cargo-fuzz needs nightly-only flags (`-Zsanitizer`), so the run sets
//! `RUSTC_BOOTSTRAP=1`. Each target keeps its corpus in `fuzz/corpus/<target>/` and starts from
//! the seeds in `fuzz/seeds/<target>/` when present; a crash makes the task fail with the
//! artifact path, to be turned into a regression test under `tests/hardening_*.rs`.

use crate::{root, run};
use std::process::Command;

/// The fuzz targets, in the order they run.
pub const TARGETS: &[&str] =
    &["cert_load", "manifest_roundtrip", "assertion_validate", "token_response", "graph_filter"];

pub fn run_all(args: &[String]) -> Result<(), String> {
    let mut seconds: u64 = 60;
    let mut only = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seconds" => {
                let v = it.next().ok_or("--seconds needs a number")?;
                seconds = v.parse().map_err(|_| format!("--seconds {v}: not a number of seconds"))?;
            }
            t if TARGETS.contains(&t) => only.push(t.to_string()),
            other => return Err(format!("unknown argument {other}; targets are {}", TARGETS.join(", "))),
        }
    }
    ensure_cargo_fuzz()?;
    let targets: Vec<String> = if only.is_empty() { TARGETS.iter().map(|s| s.to_string()).collect() } else { only };
    let fuzz_dir = root().join("fuzz");
    for t in &targets {
        let corpus = fuzz_dir.join("corpus").join(t);
        std::fs::create_dir_all(&corpus).map_err(|e| format!("cannot create {}: {e}", corpus.display()))?;
        let mut cmd = Command::new("cargo");
        cmd.env("RUSTC_BOOTSTRAP", "1").args(["fuzz", "run", "-O", "--fuzz-dir"]).arg(&fuzz_dir).arg(t).arg(&corpus);
        let seeds = fuzz_dir.join("seeds").join(t);
        if seeds.is_dir() {
            cmd.arg(&seeds);
        }
        cmd.args(["--", &format!("-max_total_time={seconds}"), "-max_len=65536", "-timeout=10", "-rss_limit_mb=4096"]);
        run(&mut cmd).map_err(|e| format!("fuzz target {t}: {e} (see fuzz/artifacts/{t}/)"))?;
    }
    eprintln!("xtask: {} fuzz target(s) ran {seconds} s each without a crash", targets.len());
    Ok(())
}

fn ensure_cargo_fuzz() -> Result<(), String> {
    if Command::new("cargo").args(["fuzz", "--version"]).output().map(|o| o.status.success()).unwrap_or(false) {
        return Ok(());
    }
    eprintln!("xtask: cargo-fuzz not found; installing it");
    run(Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]))
}
