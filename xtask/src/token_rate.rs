//! The emulator against the RSA signing limit, and its memory, as whole processes (part of
//! `cargo xtask bench`; `cargo xtask bench --emulator` runs only this):
//!
//! - **Token rate.** Two `keycred emulate --apps-dir` processes run at once, one serving a
//!   generated tenant of 1 application and one of 10,000 (2,000 with `--quick`); each is sent
//!   client-credentials token requests with valid certificate assertions (a pool of 64, made by
//!   `keycred assertion` for the tenant's automation app, re-used round-robin as a client re-uses
//!   one within its lifetime) over 8 and over 64 keep-alive connections. The load generator is
//!   plain blocking sockets on threads (one write and one read per request), the least CPU a
//!   client can spend, because it shares the machine's cores with the emulator. The reference is
//!   `openssl speed -multi N rsa2048` (N = cores), signatures per second with every core busy:
//!   the most tokens an emulator that did nothing but sign could issue. The two alternate in
//!   slices (openssl, the four cells, openssl, the four cells in reverse, ...), and each slice
//!   of a cell is judged against the mean of the openssl slices either side, so that a change in
//!   the shared machine's load falls on both. Target: every round at least x0.80.
//! - **Memory.** The resident set (`VmRSS`) of the 10,000-application emulator when it is
//!   up, after 10,000 token requests and after 1,000,000 (100,000 with `--quick`), all sent over
//!   64 connections: at most 60 MB with 10,000 applications, and the reading after the long run
//!   within 10 % of the one after 10,000.

use crate::fleet_bench::paired::{side, Pair};
use crate::fleet_bench::{serde_json_lite, Emulator};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const GRAPH: &str = "https://graph.microsoft.com";
const POOL: usize = 64;

/// One emulator serving a generated tenant, and the token request bodies for its automation app.
struct Served {
    emu: Emulator,
    addr: String,
    path: String,
    bodies: Arc<Vec<String>>,
}

fn serve(bin: &Path, dir: &Path, n: usize) -> Result<Served, String> {
    let tenant = crate::fleet_bench::generate(bin, n, dir.join(format!("rate-tenant-{n}")))?;
    let (out, app, bundle) = (tenant.dir, tenant.automation, tenant.bundle);
    let mut c = Command::new(bin);
    c.args(["emulate", "--tenant", TENANT, "--grant", &format!("{GRAPH}=Application.ReadWrite.All"), "-o", "json"]);
    c.arg("--apps-dir").arg(&out);
    let mut child = c.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().map_err(|e| format!("emulate: {e}"))?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line).map_err(|e| e.to_string())?;
    let v = serde_json_lite::parse(&line).ok_or_else(|| format!("emulate said: {line}"))?;
    let base = v.get("baseUrl").ok_or("no baseUrl")?.to_string();
    let emu = Emulator { child, base: base.clone(), ca_file: None };
    let path = format!("/{TENANT}/oauth2/v2.0/token");
    let mut bodies = Vec::with_capacity(POOL);
    for _ in 0..POOL {
        let a = Command::new(bin)
            .args(["assertion", "--client-id", &app, "--tenant", TENANT, "--cert", &bundle])
            .args(["--audience", &format!("{base}{path}")])
            .output()
            .map_err(|e| e.to_string())?;
        if !a.status.success() {
            return Err(format!("keycred assertion failed: {}", String::from_utf8_lossy(&a.stderr)));
        }
        let assertion = String::from_utf8_lossy(&a.stdout).trim().to_string();
        bodies.push(format!(
            "grant_type=client_credentials&client_id={app}&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default\
             &client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer\
             &client_assertion={assertion}"
        ));
    }
    let addr = base.trim_start_matches("http://").to_string();
    Ok(Served { emu, addr, path, bodies: Arc::new(bodies) })
}

/// Sends token requests over `conns` keep-alive connections until `stop` (or until `limit`
/// answers in all); counts tokens in `ok` once `counting` is set, failures in `bad`.
struct Load {
    stop: Arc<AtomicBool>,
    counting: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    /// Every answer, warm-up included: what the CPU time is divided by.
    all: Arc<AtomicU64>,
    bad: Arc<AtomicU64>,
    first_error: Arc<std::sync::Mutex<Option<String>>>,
}

impl Load {
    fn new() -> Load {
        Load {
            stop: Arc::new(AtomicBool::new(false)),
            counting: Arc::new(AtomicBool::new(false)),
            ok: Arc::new(AtomicU64::new(0)),
            all: Arc::new(AtomicU64::new(0)),
            bad: Arc::new(AtomicU64::new(0)),
            first_error: Default::default(),
        }
    }

    /// Runs the load: `warmup` not counted, then until `done` says to stop.
    fn run(
        &self,
        s: &Served,
        conns: usize,
        warmup: Duration,
        mut done: impl FnMut(u64) -> bool,
    ) -> Result<u64, String> {
        let threads: Vec<_> = (0..conns)
            .map(|i| {
                let (addr, path, bodies) = (s.addr.clone(), s.path.clone(), s.bodies.clone());
                let (stop, counting, bad) = (self.stop.clone(), self.counting.clone(), self.bad.clone());
                let (ok, all, first_error) = (self.ok.clone(), self.all.clone(), self.first_error.clone());
                std::thread::spawn(move || {
                    if let Err(e) = connection(&addr, &path, &bodies, i, &stop, &counting, [&ok, &all]) {
                        bad.fetch_add(1, Ordering::Relaxed);
                        first_error.lock().expect("not poisoned").get_or_insert(e);
                        stop.store(true, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        std::thread::sleep(warmup);
        self.counting.store(true, Ordering::Relaxed);
        let start = Instant::now();
        while !self.stop.load(Ordering::Relaxed) && !done(self.ok.load(Ordering::Relaxed)) {
            std::thread::sleep(Duration::from_millis(5));
        }
        let elapsed = start.elapsed();
        self.stop.store(true, Ordering::Relaxed);
        for t in threads {
            let _ = t.join();
        }
        if let Some(e) = self.first_error.lock().expect("not poisoned").take() {
            return Err(format!("a token request failed: {e}"));
        }
        Ok(elapsed.as_millis() as u64)
    }
}

/// One slice of load on one cell.
struct Slice {
    /// Tokens per second of wall time, warm-up excluded.
    wall: f64,
    /// CPU time (user + system) per token, µs: the emulator's process, and the load generator's.
    emulator_us: f64,
    client_us: f64,
}

/// Token requests over `conns` connections for `secs` (after 200 ms of warm-up).
fn rate(s: &Served, conns: usize, secs: f64) -> Result<Slice, String> {
    let load = Load::new();
    let deadline = Duration::from_secs_f64(secs);
    let start = std::cell::Cell::new(None::<Instant>);
    let (emu0, gen0) = (cpu_secs(s.emu.child.id())?, cpu_secs(std::process::id())?);
    let ms = load.run(s, conns, Duration::from_millis(200), |_| {
        let t = start.get().unwrap_or_else(|| {
            let now = Instant::now();
            start.set(Some(now));
            now
        });
        t.elapsed() >= deadline
    })?;
    let (emu1, gen1) = (cpu_secs(s.emu.child.id())?, cpu_secs(std::process::id())?);
    let all = load.all.load(Ordering::Relaxed).max(1) as f64;
    Ok(Slice {
        wall: load.ok.load(Ordering::Relaxed) as f64 / (ms as f64 / 1000.0),
        emulator_us: (emu1 - emu0) * 1e6 / all,
        client_us: (gen1 - gen0) * 1e6 / all,
    })
}

/// User plus system CPU time of process `pid`, seconds (`/proc/PID/stat` fields 14 and 15).
fn cpu_secs(pid: u32) -> Result<f64, String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    let rest = s.rsplit_once(')').map(|(_, r)| r).ok_or("unreadable /proc stat")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).ok_or("unreadable /proc stat");
    // After the name: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    Ok((ticks(11)? + ticks(12)?) / clock_ticks())
}

/// `getconf CLK_TCK` (100 on Linux).
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// Sends `n` token requests over `conns` connections.
fn send(s: &Served, conns: usize, n: u64) -> Result<(), String> {
    let load = Load::new();
    load.counting.store(true, Ordering::Relaxed);
    load.run(s, conns, Duration::ZERO, |ok| ok >= n).map(|_| ())
}

/// One keep-alive connection posting token requests until `stop`.
fn connection(
    addr: &str,
    path: &str,
    bodies: &[String],
    first: usize,
    stop: &AtomicBool,
    counting: &AtomicBool,
    [ok, all]: [&AtomicU64; 2],
) -> Result<(), String> {
    let w = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    w.set_nodelay(true).map_err(|e| e.to_string())?;
    w.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| e.to_string())?;
    let mut w = w;
    let mut r = BufReader::new(w.try_clone().map_err(|e| e.to_string())?);
    // Every request is written whole with one write: written piecemeal, Nagle would hold it.
    let requests: Vec<Vec<u8>> = bodies
        .iter()
        .map(|b| {
            format!(
                "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
                 Content-Length: {}\r\n\r\n{b}",
                b.len()
            )
            .into_bytes()
        })
        .collect();
    let mut k = first;
    let mut body = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        w.write_all(&requests[k % requests.len()]).map_err(|e| e.to_string())?;
        k += 1;
        let status = answer(&mut r, &mut body)?;
        if status != 200 || !body.windows(14).any(|x| x == b"\"access_token\"") {
            return Err(format!("HTTP {status}: {}", String::from_utf8_lossy(&body)));
        }
        all.fetch_add(1, Ordering::Relaxed);
        if counting.load(Ordering::Relaxed) {
            ok.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(())
}

/// Reads one answer into `body`: its status.
fn answer(r: &mut BufReader<TcpStream>, body: &mut Vec<u8>) -> Result<u16, String> {
    let mut line = String::new();
    r.read_line(&mut line).map_err(|e| e.to_string())?;
    let status: u16 = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or("no status line")?;
    let mut length = None;
    loop {
        line.clear();
        r.read_line(&mut line).map_err(|e| e.to_string())?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (name, value) = l.split_once(':').unwrap_or((l, ""));
        if name.eq_ignore_ascii_case("content-length") {
            length = value.trim().parse::<usize>().ok();
        }
    }
    body.resize(length.ok_or("an answer without Content-Length")?, 0);
    r.read_exact(body).map_err(|e| e.to_string())?;
    Ok(status)
}

/// `openssl speed -multi N -seconds S rsa2048`: signatures per second on all `n` cores.
fn openssl_limit(n: usize, secs: u32) -> Result<f64, String> {
    let o = Command::new("openssl")
        .args(["speed", "-multi", &n.to_string(), "-seconds", &secs.to_string(), "rsa2048"])
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("openssl speed: {e}"))?;
    crate::machine::parse_openssl_speed(&String::from_utf8_lossy(&o.stdout))
        .ok_or_else(|| format!("openssl speed said: {}", String::from_utf8_lossy(&o.stdout)))
}

/// aws-lc's RS256 signatures per CPU-second on one thread (`benches/bench.rs --sign`), times
/// `n` cores: the signing limit of keycred's own signer.
fn aws_lc_limit(bench: &Path, n: usize, secs: u32) -> Result<f64, String> {
    let o = Command::new(bench)
        .args(["--sign", &secs.to_string()])
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("bench --sign: {e}"))?;
    let per_core: f64 = String::from_utf8_lossy(&o.stdout)
        .trim()
        .parse()
        .map_err(|_| format!("bench --sign said: {}", String::from_utf8_lossy(&o.stdout)))?;
    Ok(per_core * n as f64)
}

/// The emulator's resident memory, MiB.
fn rss_mib(pid: u32) -> Result<f64, String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| format!("the emulator: {e}"))?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .ok_or_else(|| format!("no VmRSS in /proc/{pid}/status"))
}

/// Runs the token-rate and memory benchmarks.
pub fn run(root: &Path, bin: &Path, tmp: &Path, quick: bool) -> Result<(), String> {
    let bench_bin = crate::fleet_bench::bench_binary(root)?;
    let n = if quick { 2_000 } else { 10_000 };
    let (rounds, secs) = if quick { (2, 1u32) } else { (4, 2u32) };
    let long_run: u64 = if quick { 100_000 } else { 1_000_000 };
    let cores = std::thread::available_parallelism().map(|c| c.get()).unwrap_or(1);
    let one = serve(bin, tmp, 1)?;
    let many = serve(bin, tmp, n)?;

    // Memory first, on the fresh emulator.
    let memory = measure_memory(&many, long_run)?;

    // Token rate: openssl slices between passes over the four cells, forwards then backwards.
    let cells: [(&Served, usize, String); 4] = [
        (&one, 8, "1 app, 8 connections".to_string()),
        (&one, 64, "1 app, 64 connections".to_string()),
        (&many, 8, format!("{n} apps, 8 connections")),
        (&many, 64, format!("{n} apps, 64 connections")),
    ];
    let mut limits = vec![openssl_limit(cores, secs)?];
    let mut own_limits = vec![aws_lc_limit(&bench_bin, cores, secs)?];
    let mut slices: Vec<Vec<Slice>> = (0..cells.len()).map(|_| Vec::new()).collect();
    for r in 0..rounds {
        let order: Vec<usize> = if r % 2 == 0 { (0..cells.len()).collect() } else { (0..cells.len()).rev().collect() };
        for i in order {
            let (s, conns, _) = &cells[i];
            slices[i].push(rate(s, *conns, secs as f64)?);
        }
        limits.push(openssl_limit(cores, secs)?);
        own_limits.push(aws_lc_limit(&bench_bin, cores, secs)?);
    }
    // Each round's reference: the mean of the openssl slices before and after it.
    let reference: Vec<f64> = limits.windows(2).map(|w| (w[0] + w[1]) / 2.0).collect();
    let own_reference: Vec<f64> = own_limits.windows(2).map(|w| (w[0] + w[1]) / 2.0).collect();
    print_rates(&cells, &slices, &reference, &own_reference, cores, (rounds, secs));
    print_memory(n, long_run, memory);
    Ok(())
}

/// The token-rate tables: each cell against openssl's limit (judged), then against aws-lc's.
fn print_rates(
    cells: &[(&Served, usize, String)],
    slices: &[Vec<Slice>],
    reference: &[f64],
    own_reference: &[f64],
    cores: usize,
    (rounds, secs): (usize, u32),
) {
    let sign_us: Vec<f64> = reference.iter().map(|r| cores as f64 * 1e6 / r).collect();
    let own_us: Vec<f64> = own_reference.iter().map(|r| cores as f64 * 1e6 / r).collect();
    println!();
    println!(
        "emulator token rate vs `openssl speed -multi {cores} rsa2048` ({rounds} rounds of {secs} s a cell; \
         load average {})",
        crate::machine::load_average()
    );
    println!("  openssl signs/s on {cores} cores (CPU time): {}", side(reference, 0, "/s"));
    println!("  openssl CPU per signature: {}", side(&sign_us, 1, "µs"));
    println!(
        "  aws-lc (keycred's signer) signs/s on {cores} cores (CPU time): {}; CPU per signature {}",
        side(own_reference, 0, "/s"),
        side(&own_us, 1, "µs")
    );
    println!(
        "{:<36} {:>20} {:>20} {:>17} {:>20} {:>20} {:>8}  verdict",
        "v2 client credentials",
        "wall tokens/s",
        "emulator CPU/token",
        "client CPU/token",
        "tokens/s, N cores",
        "ratio [rounds]",
        "target"
    );
    for (i, (_, _, name)) in cells.iter().enumerate() {
        let col = |f: fn(&Slice) -> f64| slices[i].iter().map(f).collect::<Vec<f64>>();
        // What the emulator and its client would serve with every core theirs: the cores over
        // the CPU time a token costs both, against openssl's signatures on the same cores.
        let ideal: Vec<f64> = slices[i].iter().map(|x| cores as f64 * 1e6 / (x.emulator_us + x.client_us)).collect();
        let p = Pair::new(ideal, reference.to_vec());
        println!(
            "{name:<36} {:>20} {:>20} {:>17} {:>20} {:>20} {:>8}  {}",
            side(&col(|x| x.wall), 0, ""),
            side(&col(|x| x.emulator_us), 0, "µs"),
            side(&col(|x| x.client_us), 0, "µs"),
            p.side(0, 0, ""),
            p.ratio(),
            "≥ x0.80",
            p.verdict_at_least(0.80)
        );
    }
    println!(
        "{:<36} {:>20} {:>20} {:>8}  (against aws-lc's own signatures: the share of a token's CPU that is its signature)",
        "", "tokens/s, N cores", "ratio [rounds]", ""
    );
    for (i, (_, _, name)) in cells.iter().enumerate() {
        let ideal: Vec<f64> = slices[i].iter().map(|x| cores as f64 * 1e6 / (x.emulator_us + x.client_us)).collect();
        let p = Pair::new(ideal, own_reference.to_vec());
        println!("{name:<36} {:>20} {:>20}", p.side(0, 0, ""), p.ratio());
    }
}

/// The emulator's resident memory when up, after 10,000 requests and after `long_run`, and the
/// seconds the long run took.
struct Memory {
    up: f64,
    after_short: f64,
    after_long: f64,
    long_secs: f64,
}

fn measure_memory(many: &Served, long_run: u64) -> Result<Memory, String> {
    let pid = many.emu.child.id();
    let up = rss_mib(pid)?;
    send(many, 64, 10_000)?;
    let after_short = rss_mib(pid)?;
    let t = Instant::now();
    send(many, 64, long_run - 10_000)?;
    let long_secs = t.elapsed().as_secs_f64();
    Ok(Memory { up, after_short, after_long: rss_mib(pid)?, long_secs })
}

fn print_memory(n: usize, long_run: u64, m: Memory) {
    let Memory { up, after_short, after_long, long_secs } = m;
    let growth = after_long / after_short;
    println!();
    println!("emulator memory, {n} apps (VmRSS; load average {})", crate::machine::load_average());
    let within = |mib: f64| if mib * 1048576.0 <= 60e6 { "met" } else { "missed" };
    println!("{:<52} {:>10.1} MiB  ≤ 60 MB: {}", "up, before any request", up, within(up));
    println!(
        "{:<52} {:>10.1} MiB  ≤ 60 MB: {}",
        "after 10,000 token requests (64 connections)",
        after_short,
        within(after_short)
    );
    println!(
        "{:<52} {:>10.1} MiB  x{growth:.3} of after 10,000 (≤ x1.10: {}), {long_secs:.0} s",
        format!("after {long_run} token requests"),
        after_long,
        if growth <= 1.10 { "met" } else { "missed" }
    );
}
