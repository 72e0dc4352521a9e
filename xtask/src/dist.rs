//! `cargo xtask dist [--debug]`: builds keycred (release unless `--debug`) and writes what a
//! package ships beside the binary, as ripgrep and fd do: the man page (`keycred.1`, from the
//! clap definitions through clap_mangen) and the completion scripts for bash, zsh, fish,
//! PowerShell and elvish, in `<target>/dist/`.

use std::path::Path;
use std::process::Command;

const SHELLS: [(&str, &str); 5] = [
    ("bash", "keycred.bash"),
    ("zsh", "_keycred"),
    ("fish", "keycred.fish"),
    ("powershell", "_keycred.ps1"),
    ("elvish", "keycred.elv"),
];

pub fn run(target: &Path, args: &[String]) -> Result<(), String> {
    let debug = args.iter().any(|a| a == "--debug");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(&cargo);
    build.args(["build", "--bin", "keycred", "--locked"]);
    if !debug {
        build.arg("--release");
    }
    crate::run(&mut build)?;
    let bin = target.join(if debug { "debug" } else { "release" }).join("keycred");
    let dist = target.join("dist");
    let completions = dist.join("completions");
    std::fs::create_dir_all(&completions).map_err(|e| format!("cannot create {}: {e}", completions.display()))?;
    let generate = |args: &[&str], to: &Path| -> Result<(), String> {
        let o = Command::new(&bin).args(args).output().map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
        if !o.status.success() || o.stdout.is_empty() {
            return Err(format!("keycred {} failed: {}", args.join(" "), String::from_utf8_lossy(&o.stderr)));
        }
        std::fs::write(to, &o.stdout).map_err(|e| format!("cannot write {}: {e}", to.display()))
    };
    generate(&["man-page"], &dist.join("keycred.1"))?;
    for (shell, file) in SHELLS {
        generate(&["completions", shell], &completions.join(file))?;
    }
    std::fs::copy(&bin, dist.join("keycred")).map_err(|e| format!("cannot copy the binary: {e}"))?;
    eprintln!("xtask: wrote {} (keycred, keycred.1, completions/)", dist.display());
    Ok(())
}
