//! The tenant-scale benchmarks of `cargo xtask bench` (issue 12), whole processes as a rotation
//! script runs them, against `keycred emulate` serving a tenant from `--generate-tenant`:
//!
//! - `fleet audit` of 10,000 applications (1,000 with `--quick`): wall time and peak memory
//!   (`/usr/bin/time`'s maximum resident set size);
//! - `fleet rotate` of 500 applications (50) at `--concurrency 8`, beside the bare generation
//!   of as many RSA-2048 keys on 8 threads (`benches/bench.rs --keygen N`), the floor a
//!   rotation cannot beat;
//! - `keycred token` against `emulate --tls` beside plain http (median of whole-process runs).
//!
//! The emulator's token rate with 10,000 applications loaded is measured in-process by
//! `benches/bench.rs`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const GRAPH: &str = "https://graph.microsoft.com";

/// A running `keycred emulate`, stopped (SIGTERM, then waited for) on drop.
struct Emulator {
    child: Child,
    base: String,
    ca_file: Option<String>,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        // SIGTERM lets the emulator stop cleanly; if it cannot be sent, SIGKILL, so that the
        // wait below never hangs on an emulator nobody signalled.
        let term = Command::new("kill").arg(self.child.id().to_string()).status();
        if !term.is_ok_and(|s| s.success()) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// `keycred emulate --apps-dir DIR`, as a tenant of thousands of applications is served.
fn emulate(bin: &Path, apps_dir: &Path, tls: bool) -> Result<Emulator, String> {
    let mut c = Command::new(bin);
    c.args(["emulate", "--tenant", TENANT, "--grant", &format!("{GRAPH}=Application.ReadWrite.All"), "-o", "json"]);
    c.arg("--apps-dir").arg(apps_dir);
    if tls {
        c.arg("--tls");
    }
    let mut child = c.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().map_err(|e| format!("emulate: {e}"))?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line).map_err(|e| e.to_string())?;
    let v: serde_json_lite::Obj = serde_json_lite::parse(&line).ok_or_else(|| format!("emulate said: {line}"))?;
    let base = v.get("baseUrl").ok_or("no baseUrl")?.to_string();
    Ok(Emulator { child, base, ca_file: v.get("caFile").map(str::to_string) })
}

/// Just enough JSON for the emulator's ready line and the generator's summary (flat objects of
/// strings and numbers): xtask keeps to the standard library.
mod serde_json_lite {
    pub struct Obj(Vec<(String, String)>);
    impl Obj {
        pub fn get(&self, k: &str) -> Option<&str> {
            self.0.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
        }
    }
    pub fn parse(s: &str) -> Option<Obj> {
        let s = s.trim().strip_prefix('{')?;
        let mut out = Vec::new();
        let mut rest = s;
        while let Some(i) = rest.find('"') {
            rest = &rest[i + 1..];
            let end = rest.find('"')?;
            let key = rest[..end].to_string();
            rest = rest[end + 1..].trim_start().strip_prefix(':')?.trim_start();
            if let Some(r) = rest.strip_prefix('"') {
                let end = r.find('"')?;
                out.push((key, r[..end].to_string()));
                rest = &r[end + 1..];
            } else if rest.starts_with('{') {
                // Nested object: skipped.
                let end = rest.find('}')?;
                rest = &rest[end + 1..];
            } else {
                let end = rest.find([',', '}']).unwrap_or(rest.len());
                let v = rest[..end].trim();
                if v != "null" {
                    out.push((key, v.to_string()));
                }
                rest = &rest[end..];
            }
        }
        Some(Obj(out))
    }
}

struct Tenant {
    dir: PathBuf,
    app_ids: Vec<String>,
    automation: String,
    bundle: String,
}

fn generate(bin: &Path, n: usize, dir: &Path) -> Result<Tenant, String> {
    let out = dir.join(format!("tenant-{n}"));
    let o = Command::new(bin)
        .args(["emulate", "--generate-tenant", &n.to_string(), "--out"])
        .arg(&out)
        .args(["-o", "json"])
        .output()
        .map_err(|e| e.to_string())?;
    if !o.status.success() {
        return Err(format!("--generate-tenant failed: {}", String::from_utf8_lossy(&o.stderr)));
    }
    let s = serde_json_lite::parse(&String::from_utf8_lossy(&o.stdout)).ok_or("generator summary")?;
    let automation = s.get("automationAppId").ok_or("automationAppId")?.to_string();
    let bundle = s.get("automationBundle").ok_or("automationBundle")?.to_string();
    let mut app_ids = Vec::new();
    for line in std::fs::read_to_string(out.join("ground-truth.jsonl")).map_err(|e| e.to_string())?.lines() {
        if let Some(id) = serde_json_lite::parse(line).and_then(|o| o.get("appId").map(str::to_string)) {
            if id != automation && !app_ids.contains(&id) {
                app_ids.push(id);
            }
        }
    }
    Ok(Tenant { dir: out, app_ids, automation, bundle })
}

fn fleet(bin: &Path, emu: &Emulator, t: &Tenant, cmd: &str) -> Command {
    let mut c = Command::new("/usr/bin/time");
    c.args(["-f", "%e %M"]).arg(bin).args(["fleet", cmd, "--tenant", TENANT, "--authority", &emu.base]);
    c.args(["--graph-url", &emu.base, "--client-id", &t.automation, "--cert", &t.bundle, "-o", "json"]);
    c
}

/// Runs a `/usr/bin/time`-wrapped command: (wall seconds, peak RSS MiB).
fn timed(mut c: Command) -> Result<(f64, f64), String> {
    let o = c.stdout(Stdio::null()).output().map_err(|e| e.to_string())?;
    let err = String::from_utf8_lossy(&o.stderr);
    if !o.status.success() {
        return Err(format!("{c:?} failed: {err}"));
    }
    let last = err.lines().last().unwrap_or("");
    let mut f = last.split_whitespace().map(|x| x.parse::<f64>().unwrap_or(f64::NAN));
    Ok((f.next().unwrap_or(f64::NAN), f.next().unwrap_or(f64::NAN) / 1024.0))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    v[v.len() / 2]
}

/// Runs the fleet benchmarks.
pub fn run(root: &Path, bin: &Path, tmp: &Path, quick: bool) -> Result<(), String> {
    let (audit_n, rotate_n, runs) = if quick { (1_000, 50, 1) } else { (10_000, 500, 3) };
    println!();
    println!(
        "{:<52} {:>12} {:>12} {:>10}",
        "tenant scale (emulator, whole processes)", "keycred", "reference", "ratio"
    );

    let big = generate(bin, audit_n, tmp)?;
    let emu = emulate(bin, &big.dir, false)?;
    let mut walls = Vec::new();
    let mut peak: f64 = 0.0;
    for _ in 0..runs {
        let (w, m) = timed(fleet(bin, &emu, &big, "audit"))?;
        walls.push(w);
        peak = peak.max(m);
    }
    println!("{:<52} {:>10.2} s", format!("fleet audit, {audit_n} apps, wall (median of {runs})"), median(walls));
    println!("{:<52} {:>9.1} MiB", format!("fleet audit, {audit_n} apps, peak memory"), peak);
    drop(emu);

    let small = generate(bin, rotate_n + 1, tmp)?;
    let emu = emulate(bin, &small.dir, false)?;
    let apps_file = tmp.join("rotate-apps.txt");
    std::fs::write(&apps_file, small.app_ids.join("\n")).map_err(|e| e.to_string())?;
    let out_dir = tmp.join("rotated");
    std::fs::create_dir_all(&out_dir).map_err(|e| e.to_string())?;
    let mut c = fleet(bin, &emu, &small, "rotate");
    c.arg("--apps-file")
        .arg(&apps_file)
        .args(["--concurrency", "8", "--verify-attempts", "1", "--out-dir"])
        .arg(&out_dir);
    let (rotate_s, _) = timed(c)?;
    drop(emu);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let keygen = Command::new(cargo)
        .args(["bench", "--quiet", "--package", "keycred", "--bench", "bench", "--", "--keygen"])
        .arg(small.app_ids.len().to_string())
        .current_dir(root)
        .stderr(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    let keygen_s: f64 = String::from_utf8_lossy(&keygen.stdout)
        .trim()
        .parse()
        .map_err(|_| format!("bench --keygen said: {}", String::from_utf8_lossy(&keygen.stdout)))?;
    let n = small.app_ids.len();
    println!(
        "{:<52} {:>10.2} s {:>10.2} s {:>9}",
        format!("fleet rotate, {n} apps, --concurrency 8 vs {n} bare keys"),
        rotate_s,
        keygen_s,
        format!("x{:.2}", rotate_s / keygen_s)
    );

    // keycred token, whole process, https vs http, against the automation app of the small tenant.
    let token_runs = if quick { 5 } else { 20 };
    let mut per = Vec::new();
    for tls in [false, true] {
        let emu = emulate(bin, &small.dir, tls)?;
        let mut v = Vec::new();
        for _ in 0..token_runs {
            let mut c = Command::new(bin);
            c.args(["token", "--client-id", &small.automation, "--tenant", TENANT, "--authority", &emu.base]);
            c.args(["--scope", GRAPH, "--cert", &small.bundle]);
            if let Some(ca) = &emu.ca_file {
                c.args(["--ca-file", ca]);
            }
            let t = Instant::now();
            let o = c.output().map_err(|e| e.to_string())?;
            if !o.status.success() {
                return Err(format!("keycred token failed: {}", String::from_utf8_lossy(&o.stderr)));
            }
            v.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        per.push(median(v));
    }
    println!(
        "{:<52} {:>9.2} ms {:>9.2} ms {:>9}",
        format!("keycred token, https vs http (median of {token_runs})"),
        per[1],
        per[0],
        format!("x{:.2}", per[1] / per[0])
    );
    Ok(())
}
