//! `cargo xtask bench [--quick]`: keycred against openssl, side by side, in one run.
//!
//! Whole-process wall times are measured here (what a user or a script waits for); library
//! signing rates and emulator throughput come from the `bench` example, which runs in-process.
//! Key generation time varies widely run to run (prime search), so medians and spreads are
//! reported, never single runs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

struct Stats {
    median_ms: f64,
    p10_ms: f64,
    p90_ms: f64,
}

fn stats(mut v: Vec<f64>) -> Stats {
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    Stats { median_ms: at(0.5), p10_ms: at(0.1), p90_ms: at(0.9) }
}

fn time_runs(runs: usize, mut f: impl FnMut(usize) -> Command) -> Result<Stats, String> {
    let mut v = Vec::with_capacity(runs);
    for i in 0..runs {
        let mut c = f(i);
        let t = Instant::now();
        let o = c.output().map_err(|e| format!("cannot run {c:?}: {e}"))?;
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        if !o.status.success() {
            return Err(format!("{c:?} failed: {}", String::from_utf8_lossy(&o.stderr)));
        }
        v.push(ms);
    }
    Ok(stats(v))
}

fn row(name: &str, ours: &Stats, reference: Option<&Stats>) {
    match reference {
        Some(r) => println!(
            "{name:<44} {:>9.2} ms [{:>7.2}..{:>7.2}]   {:>9.2} ms [{:>7.2}..{:>7.2}]   x{:.2}",
            ours.median_ms,
            ours.p10_ms,
            ours.p90_ms,
            r.median_ms,
            r.p10_ms,
            r.p90_ms,
            ours.median_ms / r.median_ms
        ),
        None => println!("{name:<44} {:>9.2} ms [{:>7.2}..{:>7.2}]", ours.median_ms, ours.p10_ms, ours.p90_ms),
    }
}

/// Runs the benchmarks.
pub fn run(root: &Path, target: &Path, args: &[String]) -> Result<(), String> {
    let quick = args.iter().any(|a| a == "--quick");
    // `--fleet`: only the tenant-scale figures (issue 12), for a run that concerns them alone.
    let fleet_only = args.iter().any(|a| a == "--fleet");
    crate::ensure_openssl()?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    crate::run(Command::new(&cargo).args(["build", "--release", "--bin", "keycred"]))?;
    let bin = target.join("release/keycred");
    let tmp = std::env::temp_dir().join(format!("keycred-bench-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).map_err(|e| e.to_string())?;
    let gen_runs = if quick { 3 } else { 21 };
    let fast_runs = if quick { 5 } else { 50 };

    println!("machine: {}; load average {}", machine(), crate::machine::load_average());
    // `--emulator`: only the emulator's token rate against the signing limit, and its memory.
    if args.iter().any(|a| a == "--emulator") {
        let result = crate::token_rate::run(root, &bin, &tmp, quick);
        let _ = std::fs::remove_dir_all(&tmp);
        return result;
    }
    if fleet_only {
        let mut ex = Command::new(&cargo);
        ex.args(["bench", "--package", "keycred", "--bench", "bench", "--"]).current_dir(root);
        ex.args([if quick { "--quick" } else { "--full" }, "--tenant-only"]);
        let status = ex.status().map_err(|e| e.to_string())?;
        let fleet = if status.success() {
            crate::fleet_bench::run(root, &bin, &tmp, quick)
        } else {
            Err("the in-process benchmarks failed".into())
        };
        let _ = std::fs::remove_dir_all(&tmp);
        return fleet;
    }
    println!("runs: {gen_runs} per key size, {fast_runs} per fast command; median [p10..p90]");
    println!();
    println!("{:<44} {:>30}   {:>30}   ratio", "", "keycred", "openssl");
    for bits in [2048u32, 3072, 4096] {
        let ours = time_runs(gen_runs, |i| {
            let mut c = Command::new(&bin);
            c.args(["new", "--name", &format!("k{bits}-{i}"), "--key-size", &bits.to_string(), "--force"]);
            c.current_dir(&tmp);
            c
        })?;
        let reference = time_runs(gen_runs, |i| {
            let mut c = Command::new("openssl");
            c.args(["req", "-x509", "-newkey", &format!("rsa:{bits}"), "-nodes", "-subj", "/CN=bench", "-days", "365"]);
            c.args(["-keyout", &format!("o{bits}-{i}.key"), "-out", &format!("o{bits}-{i}.cer")]);
            c.current_dir(&tmp);
            c
        })?;
        row(&format!("new RSA-{bits} (key + self-signed cert)"), &ours, Some(&reference));
    }
    let cert = tmp.join("k2048-0.cer");
    let ours = time_runs(fast_runs, |_| {
        let mut c = Command::new(&bin);
        c.arg("show").arg(&cert);
        c
    })?;
    let reference = time_runs(fast_runs, |_| {
        let mut c = Command::new("openssl");
        c.args(["x509", "-noout", "-fingerprint", "-sha1", "-in"]).arg(&cert);
        c
    })?;
    row("show vs x509 -fingerprint -sha1", &ours, Some(&reference));

    let manifest = big_manifest(&tmp)?;
    let ours = time_runs(fast_runs, |i| {
        let copy = tmp.join(format!("m-{i}.json"));
        std::fs::copy(&manifest, &copy).expect("copy manifest");
        let mut c = Command::new(&bin);
        c.args(["manifest", "add"]).arg(&copy).arg("--cert").arg(&cert);
        c
    })?;
    row("manifest add (200 entries)", &ours, None);
    let ours = time_runs(fast_runs, |_| {
        let mut c = Command::new(&bin);
        c.args(["manifest", "list"]).arg(&manifest);
        c
    })?;
    row("manifest list (200 entries)", &ours, None);
    let bundle = tmp.join("k2048-0.pem");
    let ours = time_runs(fast_runs, |_| {
        let mut c = Command::new(&bin);
        c.args([
            "assertion",
            "--client-id",
            "11111111-1111-1111-1111-111111111111",
            "--tenant",
            "contoso.onmicrosoft.com",
        ]);
        c.arg("--cert").arg(&bundle);
        c
    })?;
    row("assertion (RS256, 2048)", &ours, None);
    let token = Command::new(&bin)
        .args(["assertion", "--client-id", "11111111-1111-1111-1111-111111111111", "--tenant", "t"])
        .arg("--cert")
        .arg(&bundle)
        .output()
        .map_err(|e| e.to_string())?;
    let token = String::from_utf8_lossy(&token.stdout).trim().to_string();
    let ours = time_runs(fast_runs, |_| {
        let mut c = Command::new(&bin);
        c.args(["decode", &token]);
        c
    })?;
    row("decode", &ours, None);

    println!();
    let speed = Command::new("openssl")
        .args(["speed", "-seconds", if quick { "1" } else { "3" }, "rsa2048"])
        .output()
        .map_err(|e| e.to_string())?;
    let openssl_signs = crate::machine::parse_openssl_speed(&String::from_utf8_lossy(&speed.stdout));
    // benches/bench.rs: its own harness, given --quick or --full after cargo's arguments.
    let mut ex = Command::new(&cargo);
    ex.args(["bench", "--package", "keycred", "--bench", "bench", "--"]).current_dir(root);
    ex.arg(if quick { "--quick" } else { "--full" });
    if let Some(s) = openssl_signs {
        ex.env("OPENSSL_RSA2048_SIGNS", format!("{s}"));
    }
    let status = ex.status().map_err(|e| e.to_string())?;
    // benches/pkcs11.rs: assertions signed on a SoftHSM2 token against its raw C_Sign rate.
    let mut p11 = Command::new(&cargo);
    p11.args(["bench", "--package", "keycred", "--bench", "pkcs11", "--"]).current_dir(root);
    p11.arg(if quick { "--quick" } else { "--full" });
    let p11_status = p11.status().map_err(|e| e.to_string())?;
    if !status.success() || !p11_status.success() {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err("the in-process benchmarks failed".into());
    }
    let result =
        crate::fleet_bench::run(root, &bin, &tmp, quick).and_then(|()| crate::token_rate::run(root, &bin, &tmp, quick));
    println!("load average at the end: {}", crate::machine::load_average());
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

fn big_manifest(dir: &Path) -> Result<PathBuf, String> {
    let mut entries = Vec::new();
    for i in 0..200u32 {
        let digest: Vec<u8> = (0..20u32).map(|j| ((i * 31 + j * 7) % 251) as u8).collect();
        entries.push(format!(
            "    {{\n      \"customKeyIdentifier\": \"{}\",\n      \"displayName\": \"CN=old-{i}\",\n      \"endDateTime\": \"2030-01-01T00:00:00Z\",\n      \"key\": null,\n      \"keyId\": \"{:08x}-0000-4000-8000-000000000000\",\n      \"startDateTime\": \"2025-01-01T00:00:00Z\",\n      \"type\": \"AsymmetricX509Cert\",\n      \"usage\": \"Verify\"\n    }}",
            b64(&digest),
            i
        ));
    }
    let text = format!(
        "{{\n  \"id\": \"0d5a1b2c-3e4f-4a5b-8c6d-7e8f9a0b1c2d\",\n  \"appId\": \"11111111-1111-1111-1111-111111111111\",\n  \"displayName\": \"bench\",\n  \"keyCredentials\": [\n{}\n  ],\n  \"signInAudience\": \"AzureADMyOrg\"\n}}\n",
        entries.join(",\n")
    );
    let p = dir.join("manifest-200.json");
    std::fs::write(&p, text).map_err(|e| e.to_string())?;
    Ok(p)
}

fn b64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for k in 0..4 {
            if k <= c.len() {
                s.push(T[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    format!("{cpu}, {cores} cores")
}
