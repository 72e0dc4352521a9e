//! `cargo xtask flood [--seconds N] [--debug]`: the emulator's memory under a sustained flood of
//! distinct sign-ins with the largest parameters it reads, the figure HARDENING.md records.
//!
//! `keycred emulate --auto-consent` (a release build, or the debug one with `--debug`) serves one
//! app; 16 keep-alive connections send it sign-ins for N seconds (default 60), each distinct (its
//! own `nonce` of about 7 KB, PKCE challenge of 128 characters and `state`, the query just under
//! the 8 KiB the emulator reads), each answered with a code the emulator keeps. Its resident
//! memory (`VmRSS`) is read every second. The first tenth of the run (at least 5 s) is warm-up:
//! the load starts the threads and allocator arenas it needs and fills what is kept of codes.
//! The check passes when no later reading is more than 20 % above the one at the end of warm-up,
//! and every sign-in got its code. A check with figures, not a benchmark: the rate it prints
//! depends on the machine, the verdict does not.

use crate::fleet_bench::{serde_json_lite, Emulator};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const APP_ID: &str = "6731de76-14a6-49ae-97bc-6eba6914391e";
const REPLY: &str = "http://localhost/flooded";
const CONNECTIONS: usize = 16;

pub fn run(target: &Path, args: &[String]) -> Result<(), String> {
    let mut seconds: u64 = 60;
    let mut debug = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seconds" => {
                let v = it.next().ok_or("--seconds needs a number")?;
                seconds = v.parse().ok().filter(|s| *s >= 10).ok_or(format!("--seconds {v}: at least 10"))?;
            }
            "--debug" => debug = true,
            other => return Err(format!("flood: unknown argument {other} (--seconds N, --debug)")),
        }
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(&cargo);
    build.args(["build", "--bin", "keycred"]);
    if !debug {
        build.arg("--release");
    }
    crate::run(&mut build)?;
    let bin = target.join(if debug { "debug" } else { "release" }).join("keycred");
    let dir = std::env::temp_dir().join(format!("keycred-flood-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let result = flood(&bin, &dir, seconds, debug);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// `keycred emulate --auto-consent` serving the flooded app.
fn emulate(bin: &Path, dir: &Path) -> Result<Emulator, String> {
    let manifest = dir.join("app.json");
    let m = format!(
        r#"{{"appId": "{APP_ID}", "displayName": "flooded", "web": {{"redirectUris": ["{REPLY}"]}}, "keyCredentials": []}}"#
    );
    std::fs::write(&manifest, m).map_err(|e| e.to_string())?;
    let mut child = Command::new(bin)
        .args(["-o", "json", "emulate", "--tenant", TENANT, "--auto-consent", "--manifest"])
        .arg(&manifest)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("emulate: {e}"))?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line).map_err(|e| e.to_string())?;
    let v = serde_json_lite::parse(&line).ok_or_else(|| format!("emulate said: {line}"))?;
    let base = v.get("baseUrl").ok_or("no baseUrl")?.to_string();
    Ok(Emulator { child, base, ca_file: None })
}

/// A number of the emulator's `/proc/PID/status`: `VmRSS` in kB, `Threads` a count.
fn status(pid: u32, field: &str) -> Result<u64, String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| format!("the emulator: {e}"))?;
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| format!("no {field} in /proc/{pid}/status"))
}

/// The emulator's resident memory, kB.
fn rss_kb(pid: u32) -> Result<u64, String> {
    status(pid, "VmRSS")
}

/// The request line's target for sign-in `i`: distinct nonce, challenge and state.
fn sign_in_target(i: u64, padding: &str) -> String {
    let reply: String = REPLY
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect();
    format!(
        "/{TENANT}/oauth2/v2.0/authorize?client_id={APP_ID}&response_type=code&redirect_uri={reply}&scope=openid\
         &state=s{i}&code_challenge={i:0>128}&code_challenge_method=plain&nonce={i}-{padding}"
    )
}

/// One keep-alive connection sending sign-ins until `stop`; counts answers with a code in `ok`
/// and others in `bad`.
fn connection(addr: String, stop: Arc<AtomicBool>, next: Arc<AtomicU64>, ok: Arc<AtomicU64>, bad: Arc<AtomicU64>) {
    let padding = "N".repeat(7 * 1024);
    let mut conn: Option<(TcpStream, BufReader<TcpStream>)> = None;
    while !stop.load(Ordering::Relaxed) {
        if conn.is_none() {
            let Ok(s) = TcpStream::connect(&addr) else {
                bad.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(50));
                continue;
            };
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = s.set_nodelay(true);
            let r = BufReader::new(s.try_clone().expect("a TCP stream clones"));
            conn = Some((s, r));
        }
        let (w, r) = conn.as_mut().expect("connected");
        let i = next.fetch_add(1, Ordering::Relaxed);
        // One write per request: written piecemeal, Nagle's algorithm would hold each back.
        let request = format!("GET {} HTTP/1.1\r\nHost: {addr}\r\n\r\n", sign_in_target(i, &padding));
        let sent = w.write_all(request.as_bytes());
        match sent.map_err(|e| e.to_string()).and_then(|()| answer(r)) {
            Ok((302, true)) => ok.fetch_add(1, Ordering::Relaxed),
            Ok(_) => bad.fetch_add(1, Ordering::Relaxed),
            Err(_) => {
                conn = None;
                bad.fetch_add(1, Ordering::Relaxed)
            }
        };
    }
}

/// Reads one answer: its status and whether it redirects with a code.
fn answer(r: &mut BufReader<TcpStream>) -> Result<(u16, bool), String> {
    let mut line = String::new();
    r.read_line(&mut line).map_err(|e| e.to_string())?;
    let status: u16 = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or("no status line")?;
    let (mut length, mut code) = (None, false);
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
        if name.eq_ignore_ascii_case("location") {
            code = value.contains("code=");
        }
    }
    // Every answer of the sign-in endpoint has a length; without one, the connection is dropped.
    let length = length.ok_or("an answer without Content-Length")?;
    let mut body = vec![0u8; length];
    r.read_exact(&mut body).map_err(|e| e.to_string())?;
    Ok((status, code))
}

fn flood(bin: &Path, dir: &Path, seconds: u64, debug: bool) -> Result<(), String> {
    let mut emu = emulate(bin, dir)?;
    let pid = emu.child.id();
    let addr = emu.base.trim_start_matches("http://").to_string();
    let idle = rss_kb(pid)?;
    let (stop, next) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let (ok, bad) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let workers: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let (a, s, n, o, b) = (addr.clone(), stop.clone(), next.clone(), ok.clone(), bad.clone());
            std::thread::spawn(move || connection(a, s, n, o, b))
        })
        .collect();
    let warm_up = (seconds / 10).max(5);
    let start = Instant::now();
    let mut readings: Vec<(u64, u64, u64)> = Vec::new();
    println!(
        "flood: {CONNECTIONS} connections, {seconds} s ({} build); idle VmRSS {idle} kB",
        if debug { "debug" } else { "release" }
    );
    println!("{:>5} {:>12} {:>10} {:>8}", "s", "sign-ins", "VmRSS kB", "threads");
    for t in 1..=seconds {
        std::thread::sleep((start + Duration::from_secs(t)).saturating_duration_since(Instant::now()));
        if emu.child.try_wait().map_err(|e| e.to_string())?.is_some() {
            stop.store(true, Ordering::Relaxed);
            return Err("the emulator exited during the flood".into());
        }
        let r = (t, ok.load(Ordering::Relaxed), rss_kb(pid)?);
        if t == 1 || t % 5 == 0 || t == warm_up {
            println!("{:>5} {:>12} {:>10} {:>8}", r.0, r.1, r.2, status(pid, "Threads")?);
        }
        readings.push(r);
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.join();
    }
    let at_warm_up = readings[warm_up as usize - 1].2;
    let after = &readings[warm_up as usize..];
    let peak = after.iter().map(|r| r.2).max().unwrap_or(at_warm_up);
    let end = readings.last().map_or(at_warm_up, |r| r.2);
    let (done, failed) = (ok.load(Ordering::Relaxed), bad.load(Ordering::Relaxed));
    let rate = (done - readings[warm_up as usize - 1].1) as f64 / (seconds - warm_up) as f64;
    println!(
        "sign-ins {done} ({rate:.0}/s after warm-up), refused or failed {failed}; VmRSS idle {idle} kB, \
         after {warm_up} s of warm-up {at_warm_up} kB, end {end} kB, peak after warm-up {peak} kB ({:+.1} %)",
        (peak as f64 / at_warm_up as f64 - 1.0) * 100.0
    );
    if failed > 0 {
        return Err(format!("{failed} sign-ins were not answered with a code"));
    }
    if peak * 5 > at_warm_up * 6 {
        return Err(format!("the emulator's memory grew more than 20 % under the flood: {at_warm_up} -> {peak} kB"));
    }
    println!("flat: within 20 % of the reading after warm-up for {} s", seconds - warm_up);
    Ok(())
}
