//! In-process benchmarks, run by `cargo xtask bench` through `cargo bench --bench bench` (which
//! passes `--quick` or `--full` and the openssl reference rate in `OPENSSL_RSA2048_SIGNS`):
//!
//! - client assertions signed per second by the library (RS256, PS256, 2048-bit key), beside
//!   `openssl speed rsa2048` signatures per second;
//! - emulator throughput: an in-process emulator (logging off) with one registered certificate,
//!   driven over loopback by a load generator on its own runtime at 1, 8 and 64 concurrent
//!   clients, v1 and v2, with valid pre-signed assertions: requests/s, p50/p99 latency, errors;
//! - the same at 8 clients (v2) with a generated tenant of 10,000 applications loaded beside the
//!   bench app (2,000 with `--quick`), against the bench app alone: the per-request cost must not
//!   grow with the tenant (target: rate with N apps ≥ x0.90 of the rate with 1 app). Both
//!   emulators run at once and are measured in interleaved rounds (5 rounds of 3 s a side;
//!   `--quick` 3 of 1 s), each round alternating the sides in 15 slices a side (A B B A A B ...,
//!   20 ms of warm-up per slice not counted), so that the shared machine's changing load falls on
//!   both sides; printed:
//!   each side's median [min..max], the ratio of medians with the per-round ratios' min..max, and
//!   a verdict: `met` when every round's ratio meets the target, `missed` when none does,
//!   `unresolved` when the rounds straddle it (the noise is larger than the margin);
//! - `--keygen N`: seconds to generate N RSA-2048 certificates on 8 threads, the floor of a
//!   fleet rotation of N applications (`cargo xtask bench` runs this binary directly, in rounds
//!   alternating with `fleet rotate`, and prints the two side by side).
//!
//! Benchmarks, not tests: they print figures and fail only when a request fails.

#[path = "support/paired.rs"]
mod paired;
use paired::Pair;

use keycred::cert::{generate, KeySize, LoadedCredential, NewCertificate, SignatureAlg, Validity};
use keycred::emulator::{start_blocking, EmulatorConfig, EndpointVersion};
use keycred::jwt::{self, AssertionParams};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

const APP_ID: &str = "6731de76-14a6-49ae-97bc-6eba6914391e";
const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const API: &str = "api://keycred-bench";
/// Distinct assertions per endpoint; the emulator accepts a re-used `jti`, as Entra does.
const POOL: usize = 64;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `--keygen N`: seconds to generate N RSA-2048 certificates on 8 threads, the floor of a
    // fleet rotation of N applications (`cargo xtask bench` compares the two).
    if let Some(n) = args.iter().position(|a| a == "--keygen").and_then(|i| args.get(i + 1)) {
        let n: usize = n.parse().expect("--keygen N");
        println!("{:.3}", keygen_seconds(n));
        return;
    }
    // `--sign SECS`: raw RS256 signatures (2048-bit key) per second of this thread's CPU time,
    // aws-lc's signing limit per core, beside which `cargo xtask bench` puts the emulator's.
    if let Some(s) = args.iter().position(|a| a == "--sign").and_then(|i| args.get(i + 1)) {
        println!("{:.1}", signs_per_cpu_second(s.parse().expect("--sign SECS")));
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let secs = if quick { 1.0 } else { 3.0 };
    let tenant_n = if quick { 2_000 } else { 10_000 };
    let rounds = if quick { 3 } else { 5 };
    // `--tenant-only` (`cargo xtask bench --fleet`): only the token rate as the tenant grows.
    if args.iter().any(|a| a == "--tenant-only") {
        if let Err(e) = tenant_scale_bench(&credential(), secs, tenant_n, rounds) {
            eprintln!("bench: {e}");
            std::process::exit(1);
        }
        return;
    }
    let openssl: Option<f64> = std::env::var("OPENSSL_RSA2048_SIGNS").ok().and_then(|s| s.parse().ok());

    let cred = credential();
    println!("{:<44} {:>12} {:>12}   ratio", "client assertions (2048-bit key)", "keycred/s", "openssl/s");
    for alg in [SignatureAlg::Rs256, SignatureAlg::Ps256] {
        let rate = signing_rate(&cred, alg, secs);
        match openssl {
            Some(o) => println!("{:<44} {rate:>12.0} {o:>12.0}   x{:.2}", format!("sign {}", alg.jose()), rate / o),
            None => println!("{:<44} {rate:>12.0} {:>12}", format!("sign {}", alg.jose()), "n/a"),
        }
    }
    println!();

    match emulator_bench(&cred, secs).and_then(|()| tenant_scale_bench(&cred, secs, tenant_n, rounds)) {
        Ok(()) => {}
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::exit(1);
        }
    }
}

/// RS256 signatures of a token-sized message with a 2048-bit key, per second of the calling
/// thread's CPU time (so that other work on a shared machine does not count against it).
fn signs_per_cpu_second(secs: f64) -> f64 {
    let key = credential().key;
    let msg = vec![b'a'; 900];
    let cpu = || {
        let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: clock_gettime writes the timespec it is given.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
        t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
    };
    let (wall, start) = (Instant::now(), cpu());
    let mut n = 0u64;
    while wall.elapsed().as_secs_f64() < secs {
        std::hint::black_box(key.sign(SignatureAlg::Rs256, &msg).expect("sign"));
        n += 1;
    }
    n as f64 / (cpu() - start)
}

/// Seconds to generate `n` certificates on 8 threads: the threads `fleet rotate --concurrency 8`
/// generates keys on, so that both get the same share of a machine shared with other work.
fn keygen_seconds(n: usize) -> f64 {
    let threads = 8;
    let next = std::sync::atomic::AtomicUsize::new(0);
    let t = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < n {
                    credential();
                }
            });
        }
    });
    t.elapsed().as_secs_f64()
}

/// The v2 token rate at 8 clients with only the bench app loaded (A) and with `n` generated
/// applications beside it (B): the emulator must not slow down per request as the tenant grows.
/// Both emulators run side by side and are measured in rounds, each round alternating the two
/// in short slices (ABBA), so that a change of the shared machine's load falls on both sides;
/// each round gives its own ratio B/A, and the verdict holds only when every round's ratio does.
fn tenant_scale_bench(cred: &LoadedCredential, secs: f64, n: usize, rounds: usize) -> Result<(), String> {
    let dir = Dir(std::env::temp_dir().join(format!("keycred-bench-tenant-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).map_err(|e| e.to_string())?;
    let own = bench_manifest(&dir.0, cred)?;
    let generated = dir.0.join("tenant");
    keycred::emulator::generate_tenant(n, &generated, false).map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let mut sides = Vec::new();
    for apps_dir in [None, Some(generated)] {
        let mut cfg = EmulatorConfig::new(vec![own.clone()]);
        cfg.apps_dir = apps_dir;
        cfg.tenant = TENANT.into();
        cfg.grants = vec![(API.into(), vec!["Data.Read".into()])];
        cfg.log = false;
        let emu = start_blocking(cfg).map_err(|e| format!("cannot start the emulator: {e}"))?;
        let url = emu.info().token_endpoint(EndpointVersion::V2);
        let bodies = Arc::new(bodies(cred, &url, EndpointVersion::V2));
        sides.push((emu, url, bodies));
    }
    // Each round gives each side `secs` of load in SLICES short slices, alternating ABBA within
    // the round (A B B A A B ...; the next round starts with B), so that the two sides of one
    // round see the same load of the machine to within a fraction of a second.
    const SLICES: usize = 15;
    let slice = secs / SLICES as f64;
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for r in 0..rounds {
        let mut done = [0.0f64; 2];
        for k in 0..2 * SLICES {
            // ABBA: the side is the parity of ceil(k / 2), shifted by the round.
            let i = (k.div_ceil(2) + r) % 2;
            let (_, url, bodies) = &sides[i];
            let res = rt.block_on(load(url, bodies.clone(), 8, slice, Duration::from_millis(20)));
            if let Some(e) = res.first_error {
                return Err(format!("token request failed: {e}"));
            }
            done[i] += res.rps * slice;
        }
        a.push(done[0] / secs);
        b.push(done[1] / secs);
    }
    for (emu, _, _) in sides {
        emu.shutdown();
    }
    println!();
    println!(
        "{:<48} {:>24} {:>24} {:>24} {:>9}  verdict",
        format!("tenant scale, in-process ({rounds} rounds of {secs} s)"),
        "with N apps [min..max]",
        "1 app [min..max]",
        "ratio [rounds min..max]",
        "target"
    );
    let p = Pair::new(b, a);
    println!(
        "{:<48} {:>24} {:>24} {:>24} {:>9}  {}",
        format!("v2 token, 8 clients, N = {n} apps (req/s)"),
        p.side(0, 0, ""),
        p.side(1, 0, ""),
        p.ratio(),
        "≥ x0.90",
        p.verdict_at_least(0.90)
    );
    Ok(())
}

fn credential() -> LoadedCredential {
    let (cert, key) = generate(&NewCertificate {
        subject: "CN=keycred bench".into(),
        key_size: KeySize::Rsa2048,
        validity: Validity::Days(30),
    })
    .expect("generate a 2048-bit certificate");
    LoadedCredential::new(cert, vec![], key, &PathBuf::new()).expect("the generated key is the certificate's")
}

fn params(aud: &str, alg: SignatureAlg) -> AssertionParams {
    AssertionParams { client_id: APP_ID.into(), audience: aud.into(), alg, x5c: false, lifetime: 3600 }
}

/// Whole client assertions (claims, JSON, base64url, RSA signature) per second on one thread,
/// as `openssl speed` measures one thread.
fn signing_rate(cred: &LoadedCredential, alg: SignatureAlg, secs: f64) -> f64 {
    let p = params("https://login.microsoftonline.com/t/oauth2/v2.0/token", alg);
    for _ in 0..20 {
        std::hint::black_box(jwt::client_assertion(cred, &p).expect("sign"));
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        for _ in 0..10 {
            std::hint::black_box(jwt::client_assertion(cred, &p).expect("sign"));
        }
        n += 10;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

struct Dir(PathBuf);
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn emulator_bench(cred: &LoadedCredential, secs: f64) -> Result<(), String> {
    let dir = Dir(std::env::temp_dir().join(format!("keycred-bench-emu-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).map_err(|e| e.to_string())?;
    let manifest = bench_manifest(&dir.0, cred)?;
    let mut cfg = EmulatorConfig::new(vec![manifest]);
    cfg.tenant = TENANT.into();
    cfg.grants = vec![(API.into(), vec!["Data.Read".into()])];
    cfg.log = false;
    let emu = start_blocking(cfg).map_err(|e| format!("cannot start the emulator: {e}"))?;

    // The load generator gets a runtime of its own so that its work is not scheduled on the
    // emulator's workers; on a 2-core machine both still share the CPUs.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    println!(
        "{:<44} {:>10} {:>9} {:>9} {:>7}",
        "emulator token requests (loopback)", "req/s", "p50 ms", "p99 ms", "errors"
    );
    let mut failed = false;
    for version in [EndpointVersion::V1, EndpointVersion::V2] {
        let url = emu.info().token_endpoint(version);
        let bodies: Arc<Vec<String>> = Arc::new(bodies(cred, &url, version));
        for clients in [1usize, 8, 64] {
            let r = rt.block_on(load(&url, bodies.clone(), clients, secs, Duration::from_millis(200)));
            let name =
                format!("{} token, {clients} client{}", version_name(version), if clients == 1 { "" } else { "s" });
            println!("{name:<44} {:>10.0} {:>9.2} {:>9.2} {:>7}", r.rps, r.p50_ms, r.p99_ms, r.errors);
            if let Some(e) = &r.first_error {
                eprintln!("bench: first error: {e}");
            }
            failed |= r.errors > 0;
        }
    }
    drop(rt);
    emu.shutdown();
    if failed {
        Err("some token requests failed".into())
    } else {
        Ok(())
    }
}

/// The bench application's manifest, with `cred`'s certificate registered.
fn bench_manifest(dir: &std::path::Path, cred: &LoadedCredential) -> Result<PathBuf, String> {
    let manifest = dir.join("app.json");
    let c = &cred.cert;
    let m = serde_json::json!({
        "id": "0b6c8e1c-2f7e-4d36-9d2a-1c3e5f7a9b0d",
        "appId": APP_ID,
        "displayName": "keycred bench",
        "keyCredentials": [{
            "customKeyIdentifier": c.custom_key_identifier(),
            "displayName": c.subject(),
            "endDateTime": keycred::dates::format(c.not_after()),
            "key": c.value_b64(),
            "keyId": "4f1c2d3e-5a6b-4c7d-8e9f-0a1b2c3d4e5f",
            "startDateTime": keycred::dates::format(c.not_before()),
            "type": "AsymmetricX509Cert",
            "usage": "Verify",
        }],
    });
    std::fs::write(&manifest, serde_json::to_string_pretty(&m).unwrap()).map_err(|e| e.to_string())?;
    Ok(manifest)
}

/// [`POOL`] token request bodies for `url`, each with its own signed assertion.
fn bodies(cred: &LoadedCredential, url: &str, version: EndpointVersion) -> Vec<String> {
    (0..POOL)
        .map(|_| {
            let a = jwt::client_assertion(cred, &params(url, SignatureAlg::Rs256)).expect("sign");
            let mut f = url::form_urlencoded::Serializer::new(String::new());
            f.append_pair("grant_type", "client_credentials");
            f.append_pair("client_id", APP_ID);
            match version {
                EndpointVersion::V1 => f.append_pair("resource", API),
                EndpointVersion::V2 => f.append_pair("scope", &format!("{API}/.default")),
            };
            f.append_pair("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
            f.append_pair("client_assertion", a.expose());
            f.finish()
        })
        .collect()
}

fn version_name(v: EndpointVersion) -> &'static str {
    match v {
        EndpointVersion::V1 => "v1",
        EndpointVersion::V2 => "v2",
    }
}

struct LoadResult {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
    first_error: Option<String>,
}

/// `clients` tasks, each with its own keep-alive connection, post token requests back to back
/// for `secs` seconds (after a `warmup` that is not counted).
async fn load(url: &str, bodies: Arc<Vec<String>>, clients: usize, secs: f64, warmup: Duration) -> LoadResult {
    let start = Instant::now() + warmup;
    let end = start + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for i in 0..clients {
        let url = url.to_string();
        let bodies = bodies.clone();
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .pool_max_idle_per_host(1)
                .no_proxy()
                .build()
                .expect("reqwest client");
            let mut lat = Vec::new();
            let (mut errors, mut first_error) = (0u64, None);
            let mut k = i;
            loop {
                let t = Instant::now();
                if t >= end {
                    break;
                }
                let body = bodies[k % bodies.len()].clone();
                k += 1;
                let res = client
                    .post(&url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body)
                    .send()
                    .await;
                let outcome = match res {
                    Ok(r) => {
                        let status = r.status();
                        match r.bytes().await {
                            Ok(b) if status.is_success() && contains(&b, b"\"access_token\"") => Ok(()),
                            Ok(b) => Err(format!("HTTP {status}: {}", String::from_utf8_lossy(&b))),
                            Err(e) => Err(e.to_string()),
                        }
                    }
                    Err(e) => Err(e.to_string()),
                };
                let done = Instant::now();
                if t < start {
                    continue; // warm-up: connections open, caches fill
                }
                match outcome {
                    Ok(()) => lat.push((done - t).as_secs_f64() * 1000.0),
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert(e);
                    }
                }
            }
            (lat, errors, first_error)
        }));
    }
    let mut all = Vec::new();
    let (mut errors, mut first_error) = (0u64, None);
    for t in tasks {
        let (lat, e, fe) = t.await.expect("load task");
        all.extend(lat);
        errors += e;
        if first_error.is_none() {
            first_error = fe;
        }
    }
    all.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    let at = |q: f64| if all.is_empty() { f64::NAN } else { all[((all.len() - 1) as f64 * q).round() as usize] };
    LoadResult { rps: all.len() as f64 / secs, p50_ms: at(0.5), p99_ms: at(0.99), errors, first_error }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
