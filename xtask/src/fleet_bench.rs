//! The tenant-scale benchmarks of `cargo xtask bench` (issue 12), whole processes as a rotation
//! script runs them, against `keycred emulate` serving a tenant from `--generate-tenant`:
//!
//! - `fleet audit` of 10,000 applications (1,000 with `--quick`): wall time (median [min..max]
//!   of 3 runs, 1 with `--quick`) and peak memory (`/usr/bin/time`'s maximum resident set size);
//! - `fleet rotate` of 200 applications (50 with `--quick`) at `--concurrency 8`, beside the bare
//!   generation of as many RSA-2048 keys on 8 threads (`benches/bench.rs --keygen N`, its binary
//!   run directly), the floor a rotation cannot beat; 5 rounds (3 with `--quick`), each rotating
//!   its own slice of one generated tenant. The 500 apps in 5 rounds would take about
//!   12 minutes of rotation alone on a loaded 2-core machine (3 rounds, 7.5 minutes for only
//!   three ratios); 200 apps x 5 rounds (1,000 keys a side) keeps `--fleet` near 6 minutes there;
//! - `keycred token` against `emulate --tls` beside plain http: both emulators run at once, and
//!   5 rounds (3) of 5 runs (3) a side alternate the two run by run.
//!
//! Every pair is interleaved: the two sides alternate within one run of the benchmark (A B in
//! even rounds, B A in odd ones), so that a change of the shared machine's load falls on both.
//! Each side is printed as median [min..max] over its rounds; the ratio as the ratio of the
//! medians with the per-round ratios' min..max; and a verdict: `met` when every round's ratio is
//! within the target, `missed` when none is, `unresolved` when the rounds straddle it (the
//! machine's noise is larger than the margin to the target, and the run cannot tell).
//!
//! The emulator's token rate with 10,000 applications loaded is measured in-process, in the same
//! way, by `benches/bench.rs`.

#[path = "../../benches/support/paired.rs"]
pub(crate) mod paired;
use paired::{side, spread, verdict, Pair};

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const GRAPH: &str = "https://graph.microsoft.com";

/// A running `keycred emulate`, stopped (SIGTERM, then waited for) on drop.
pub(crate) struct Emulator {
    pub(crate) child: Child,
    pub(crate) base: String,
    pub(crate) ca_file: Option<String>,
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
    c.args([
        "emulate",
        "--tenant",
        TENANT,
        "--grant",
        &format!("{GRAPH}=Application.ReadWrite.All,Policy.Read.All"),
        "-o",
        "json",
    ]);
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
pub(crate) mod serde_json_lite {
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

/// A generated tenant: its apps directory, its applications, and the automation app that may
/// manage them (its certificate bundle).
pub(crate) struct Tenant {
    pub(crate) dir: PathBuf,
    pub(crate) app_ids: Vec<String>,
    pub(crate) automation: String,
    pub(crate) bundle: String,
}

/// `keycred emulate --generate-tenant n --out out`, read back.
pub(crate) fn generate(bin: &Path, n: usize, out: PathBuf) -> Result<Tenant, String> {
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

/// One paired row: keycred's side, the reference side (same rounds), the ratio of the medians
/// with the per-round ratios' range, the target and the verdict.
fn pair_row(name: &str, ours: &[f64], reference: &[f64], digits: usize, unit: &str, max: f64) {
    let p = Pair::new(ours.to_vec(), reference.to_vec());
    println!(
        "{name:<58} {:>24} {:>24} {:>20} {:>8}  {}",
        p.side(0, digits, unit),
        p.side(1, digits, unit),
        p.ratio(),
        format!("≤ x{max}"),
        p.verdict_at_most(max)
    );
}

/// One unpaired row: a figure against an absolute target "< max" (in the figure's unit; the
/// label says it as the issue does).
fn single_row(name: &str, v: &[f64], digits: usize, unit: &str, max: f64, target: &str) {
    let (_, lo, hi) = spread(v);
    let verdict = verdict(hi < max, lo >= max);
    println!("{name:<58} {:>24} {:>24} {:>20} {target:>8}  {verdict}", side(v, digits, unit), "", "");
}

/// The path of the `benches/bench.rs` binary (built if needed), so that its `--keygen` runs
/// time only key generation, never cargo's start-up or its wait for a shared target dir's lock.
pub(crate) fn bench_binary(root: &Path) -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let o = Command::new(cargo)
        .args(["bench", "--quiet", "--no-run", "--package", "keycred", "--bench", "bench"])
        .args(["--message-format", "json"])
        .current_dir(root)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| e.to_string())?;
    let out = String::from_utf8_lossy(&o.stdout);
    for line in out.lines() {
        if !line.contains("\"reason\":\"compiler-artifact\"") || !line.contains("\"kind\":[\"bench\"]") {
            continue;
        }
        if let Some(i) = line.find("\"executable\":\"") {
            let rest = &line[i + "\"executable\":\"".len()..];
            if let Some(end) = rest.find('"') {
                return Ok(PathBuf::from(&rest[..end]));
            }
        }
    }
    Err("cargo bench --no-run named no bench executable".into())
}

/// Runs the fleet benchmarks.
pub fn run(root: &Path, bin: &Path, tmp: &Path, quick: bool) -> Result<(), String> {
    let (audit_n, audit_runs) = if quick { (1_000, 1) } else { (10_000, 3) };
    let (rotate_n, rotate_rounds) = if quick { (50, 3) } else { (200, 5) };
    let (token_rounds, token_runs) = if quick { (3, 3) } else { (5, 5) };
    let bench_bin = bench_binary(root)?;
    println!();
    println!(
        "{:<58} {:>24} {:>24} {:>20} {:>8}  verdict",
        "tenant scale (emulator, whole processes)",
        "keycred [min..max]",
        "reference [min..max]",
        "ratio [rounds]",
        "target"
    );

    let big = generate(bin, audit_n, tmp.join(format!("tenant-{audit_n}")))?;
    let emu = emulate(bin, &big.dir, false)?;
    let mut walls = Vec::new();
    let mut peaks = Vec::new();
    for _ in 0..audit_runs {
        let (w, m) = timed(fleet(bin, &emu, &big, "audit"))?;
        walls.push(w);
        peaks.push(m);
    }
    single_row(&format!("fleet audit, {audit_n} apps, wall ({audit_runs} runs)"), &walls, 2, "s", 5.0, "< 5 s");
    single_row(
        &format!("fleet audit, {audit_n} apps, peak RSS ({audit_runs} runs)"),
        &peaks,
        1,
        "MiB",
        1e8 / 1048576.0,
        "< 100 MB",
    );
    drop(emu);

    // One tenant with a slice of `rotate_n` apps per round: every round rotates apps that
    // nothing has touched yet, with its own out dir and journal.
    let small_n = rotate_n * rotate_rounds + 1;
    let small = generate(bin, small_n, tmp.join(format!("tenant-{small_n}")))?;
    if small.app_ids.len() < rotate_n * rotate_rounds {
        return Err(format!("the generated tenant has only {} apps to rotate", small.app_ids.len()));
    }
    let emu = emulate(bin, &small.dir, false)?;
    let (mut rotate_s, mut keygen_s) = (Vec::new(), Vec::new());
    for (r, slice) in small.app_ids.chunks(rotate_n).take(rotate_rounds).enumerate() {
        let apps_file = tmp.join(format!("rotate-apps-{r}.txt"));
        std::fs::write(&apps_file, slice.join("\n")).map_err(|e| e.to_string())?;
        let out_dir = tmp.join(format!("rotated-{r}"));
        std::fs::create_dir_all(&out_dir).map_err(|e| e.to_string())?;
        let rotate = || {
            let mut c = fleet(bin, &emu, &small, "rotate");
            c.arg("--apps-file")
                .arg(&apps_file)
                .args(["--concurrency", "8", "--verify-attempts", "1", "--out-dir"])
                .arg(&out_dir);
            timed(c).map(|(w, _)| w)
        };
        let keygen = || -> Result<f64, String> {
            let o = Command::new(&bench_bin)
                .args(["--keygen", &slice.len().to_string()])
                .stderr(Stdio::null())
                .output()
                .map_err(|e| e.to_string())?;
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse()
                .map_err(|_| format!("bench --keygen said: {}", String::from_utf8_lossy(&o.stdout)))
        };
        if r % 2 == 0 {
            rotate_s.push(rotate()?);
            keygen_s.push(keygen()?);
        } else {
            keygen_s.push(keygen()?);
            rotate_s.push(rotate()?);
        }
    }
    drop(emu);
    pair_row(
        &format!("fleet rotate, {rotate_n} apps, --concurrency 8 vs keygen ({rotate_rounds} rds)"),
        &rotate_s,
        &keygen_s,
        2,
        "s",
        1.5,
    );

    // keycred token, whole process, https vs http, against the automation app of the small
    // tenant; both emulators up at once, the two alternating run by run.
    let plain = emulate(bin, &small.dir, false)?;
    let tls = emulate(bin, &small.dir, true)?;
    let token = |emu: &Emulator| -> Result<f64, String> {
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
        Ok(t.elapsed().as_secs_f64() * 1000.0)
    };
    let (mut https_ms, mut http_ms) = (Vec::new(), Vec::new());
    for r in 0..token_rounds {
        let (mut s, mut p) = (Vec::new(), Vec::new());
        for i in 0..token_runs {
            if (r + i) % 2 == 0 {
                p.push(token(&plain)?);
                s.push(token(&tls)?);
            } else {
                s.push(token(&tls)?);
                p.push(token(&plain)?);
            }
        }
        https_ms.push(spread(&s).0);
        http_ms.push(spread(&p).0);
    }
    pair_row(
        &format!("keycred token, https vs http ({token_rounds} rds x {token_runs} runs)"),
        &https_ms,
        &http_ms,
        2,
        "ms",
        1.5,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_is_median_min_max() {
        assert_eq!(spread(&[3.0, 1.0, 2.0]), (2.0, 1.0, 3.0));
        assert_eq!(spread(&[4.0, 1.0, 2.0, 3.0]), (2.5, 1.0, 4.0));
    }

    #[test]
    fn a_verdict_needs_every_round() {
        let at_most = |r: &[f64], t| Pair { sides: [vec![], vec![]], ratios: r.to_vec() }.verdict_at_most(t);
        assert_eq!(at_most(&[1.1, 1.4, 1.2], 1.5), "met");
        assert_eq!(at_most(&[1.1, 1.6, 1.2], 1.5), "unresolved");
        assert_eq!(at_most(&[1.6, 1.7], 1.5), "missed");
    }
}
