//! Client assertions signed on a PKCS#11 token (SoftHSM2), run by `cargo xtask bench` after the
//! other in-process benchmarks (`--quick` or `--full`), against the token's own raw signing rate
//! measured in the same run: a bare `C_Sign` loop (CKM_SHA256_RSA_PKCS, through cryptoki) over a
//! message as long as an assertion's signing input, with the same key and the same session
//! settings. The difference is what keycred adds: claims, JSON, base64url, the session's lock.
//!
//! Both sides run in interleaved rounds (each round alternating the sides in 10 slices, ABBA),
//! so that the shared machine's load falls on both; printed as median [min..max] per side, the
//! ratio of medians with the per-round ratios' range, and a verdict against the target (≥ x0.90).
//! Without SoftHSM2 installed it prints that it was skipped.

#[path = "support/paired.rs"]
mod paired;
use paired::Pair;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::session::{Session, UserType};
use keycred::cert::{self_signed_with, LoadedCredential, SignatureAlg, Validity};
use keycred::jwt::{self, AssertionParams};
use keycred::keystore::pkcs11::{generate, Access};
use keycred::keystore::uri::Pkcs11Uri;
use keycred::secret::SecretString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const PIN: &str = "1234";

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (rounds, secs) = if quick { (3, 1.0) } else { (5, 3.0) };
    if !Path::new(MODULE).is_file() {
        println!("assertions on a PKCS#11 token: skipped (softhsm2 not installed)");
        return;
    }
    let dir = Dir(std::env::temp_dir().join(format!("keycred-bench-pkcs11-{}", std::process::id())));
    if let Err(e) = run(&dir.0, rounds, secs) {
        eprintln!("bench: {e}");
        std::process::exit(1);
    }
}

fn run(dir: &Path, rounds: usize, secs: f64) -> Result<(), String> {
    init_token(dir)?;
    let uri = Pkcs11Uri::parse("pkcs11:token=B;object=bench").map_err(|e| e.to_string())?;
    let access = Access { module: Some(MODULE.into()), pin: Some(SecretString::new(PIN)) };
    let key = generate(&uri, &access, 2048).map_err(|e| e.to_string())?;
    let cert = self_signed_with(&key, "CN=bench", Validity::Days(1)).map_err(|e| e.to_string())?;
    let cred = LoadedCredential::with_signer(cert, Vec::new(), Arc::new(key), Path::new("token"))
        .map_err(|e| e.to_string())?;
    let params = AssertionParams {
        client_id: "6731de76-14a6-49ae-97bc-6eba6914391e".into(),
        audience: "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token".into(),
        alg: SignatureAlg::Rs256,
        x5c: false,
        lifetime: 600,
    };
    // The reference signs a message as long as an assertion's signing input (header.claims).
    let sample = jwt::client_assertion(&cred, &params).map_err(|e| e.to_string())?;
    let input_len = sample.expose().rfind('.').unwrap_or(0);
    let raw = raw_session()?;
    let message = vec![b'a'; input_len];

    let mut ours = vec![0.0; rounds];
    let mut reference = vec![0.0; rounds];
    let slices = 10;
    let slice = secs / slices as f64;
    for r in 0..rounds {
        let (mut n_ours, mut t_ours, mut n_ref, mut t_ref) = (0u64, 0.0, 0u64, 0.0);
        for s in 0..slices {
            // ABBA: A B B A A B ..., the next round starting with B.
            let ours_first = (s + r) % 4 == 0 || (s + r) % 4 == 3;
            for side in if ours_first { [true, false] } else { [false, true] } {
                let (n, t) = if side {
                    timed(slice, || {
                        std::hint::black_box(jwt::client_assertion(&cred, &params).expect("sign"));
                    })
                } else {
                    timed(slice, || {
                        std::hint::black_box(raw.0.sign(&Mechanism::Sha256RsaPkcs, raw.1, &message).expect("C_Sign"));
                    })
                };
                if side {
                    (n_ours, t_ours) = (n_ours + n, t_ours + t);
                } else {
                    (n_ref, t_ref) = (n_ref + n, t_ref + t);
                }
            }
        }
        ours[r] = n_ours as f64 / t_ours;
        reference[r] = n_ref as f64 / t_ref;
    }
    let pair = Pair::new(ours, reference);
    println!(
        "{:<52} {:>24} {:>24}  {:>22}  target  verdict",
        "assertions on a PKCS#11 token (SoftHSM2, RSA-2048)", "keycred/s", "raw C_Sign/s", "ratio"
    );
    println!(
        "{:<52} {:>24} {:>24}  {:>22}  ≥ x0.90  {}",
        format!("RS256 assertion vs C_Sign of {input_len} bytes, {rounds} rounds"),
        pair.side(0, 0, ""),
        pair.side(1, 0, ""),
        pair.ratio(),
        pair.verdict_at_least(0.90)
    );
    Ok(())
}

/// Runs `f` for `secs`; (calls, seconds taken).
fn timed(secs: f64, mut f: impl FnMut()) -> (u64, f64) {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        f();
        n += 1;
    }
    (n, start.elapsed().as_secs_f64())
}

/// A token `B` in its own SoftHSM2 directory; `SOFTHSM2_CONF` set for this process.
fn init_token(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir.join("tokens")).map_err(|e| e.to_string())?;
    let conf = dir.join("softhsm2.conf");
    let text = format!(
        "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
        dir.join("tokens").display()
    );
    std::fs::write(&conf, text).map_err(|e| e.to_string())?;
    std::env::set_var("SOFTHSM2_CONF", &conf);
    let out = Command::new("softhsm2-util")
        .args(["--init-token", "--free", "--label", "B", "--pin", PIN, "--so-pin", "5678"])
        .output()
        .map_err(|e| format!("softhsm2-util: {e}"))?;
    if !out.status.success() {
        return Err(format!("softhsm2-util: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(())
}

/// A session of the bench's own on the same token (the module is already initialised by
/// keycred in this process; a login applies to the whole process) and the bench key's handle.
fn raw_session() -> Result<(Session, cryptoki::object::ObjectHandle), String> {
    let ctx = Pkcs11::new(MODULE).map_err(|e| e.to_string())?;
    let _ = ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK));
    let slot = ctx
        .get_slots_with_token()
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|s| ctx.get_token_info(*s).is_ok_and(|t| t.label().trim_end() == "B"))
        .ok_or("token B not found")?;
    let session = ctx.open_rw_session(slot).map_err(|e| e.to_string())?;
    let _ = session.login(UserType::User, Some(&cryptoki::types::AuthPin::new(PIN.into())));
    let key = session
        .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY), Attribute::Label(b"bench".to_vec())])
        .map_err(|e| e.to_string())?
        .into_iter()
        .next()
        .ok_or("the bench key is not on the token")?;
    Ok((session, key))
}

struct Dir(PathBuf);
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
