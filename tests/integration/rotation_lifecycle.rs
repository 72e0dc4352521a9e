//! The rotation lifecycle on a running tenant, end to end: add, deploy, observe, retire, with
//! no failed token request.
//!
//! A tenant is generated (`emulate --generate-tenant`), served by the emulator, and every
//! application holding a usable certificate gets a running instance: a task asking for a token
//! every 100 ms with the key it currently holds, as a daemon does. `fleet rotate --deploy` hands
//! each instance its new bundle through a hook (the hook writes the bundle's path where the
//! instance looks, and returns once the instance has signed in with it), then `fleet retire`
//! reads the emulator's credential sign-in report and removes every older certificate. No
//! instance may see one failed token request.
//!
//! Without the hook the instances keep their old keys: `fleet retire` then finds them still
//! signing in with the older certificates and removes nothing; `--after 0s`, a grace period that
//! ignores the sign-ins, removes them, and every instance's next request is refused (AADSTS700027):
//! the evidence was what protected them.
//!
//! Nothing here depends on timing: each wait is for a condition (an instance's next request
//! after a given moment, its acknowledgement), with a generous deadline only against a hang,
//! and every count is derived from the generator's ground truth.

use crate::common::*;
use keycred::authority::{Authority, EndpointVersion};
use keycred::cert::{load_credential, LoadedCredential, SignatureAlg};
use keycred::token::{entra_code, ClientAuth, ClientOptions, Grant, Target, TokenClient, TokenRequest};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const GRAPH: &str = "https://graph.microsoft.com";
/// Applications generated: with the generator's mix, 20 of them hold a usable certificate
/// (besides the automation app).
const APPS: usize = 26;

/// The deploy hook: hands the new bundle over (its path, thumbprint and keyId, written
/// atomically where the instance looks), then waits for the instance to sign in with it.
const HOOK: &str = r#"set -eu
dir=$1
printf '%s\n%s\n%s\n' "$KEYCRED_BUNDLE" "$KEYCRED_THUMBPRINT" "$KEYCRED_KEY_ID" > "$dir/$KEYCRED_APP_ID.tmp"
mv "$dir/$KEYCRED_APP_ID.tmp" "$dir/$KEYCRED_APP_ID"
n=0
until [ -e "$dir/$KEYCRED_APP_ID.ack" ]; do
  n=$((n+1))
  if [ $n -gt 1200 ]; then echo "instance $KEYCRED_APP_ID never signed in with its new bundle" >&2; exit 1; fi
  sleep 0.05
done
"#;

/// A generated tenant, served, with the ground truth of its application certificates.
struct Tenant {
    g: Generated,
    /// Application certificates: (appId, keyId, bundle path when usable and started).
    certs: Vec<(String, String, Option<PathBuf>)>,
}

fn tenant(tag: &str) -> Tenant {
    let g = generated(APPS, tag);
    let mut certs = Vec::new();
    for t in &g.truth {
        if t["servicePrincipal"] == true || t["kind"] != "certificate" || t["appId"] == g.automation.as_str() {
            continue;
        }
        let usable = t["reason"].is_null() && (t["status"] == "valid" || t["status"] == "expiring");
        let bundle = t["bundle"].as_str().filter(|_| usable).map(|b| g.out.join(b));
        certs.push((t["appId"].as_str().unwrap().to_string(), t["keyId"].as_str().unwrap().to_string(), bundle));
    }
    Tenant { g, certs }
}

impl std::ops::Deref for Tenant {
    type Target = Generated;
    fn deref(&self) -> &Generated {
        &self.g
    }
}

impl Tenant {
    /// The applications an instance runs for, each with the bundle it starts with (its first
    /// usable certificate), and the keyIds of its usable certificates (what phase 2 retires).
    fn running(&self) -> BTreeMap<String, (PathBuf, BTreeSet<String>)> {
        let mut apps: BTreeMap<String, (PathBuf, BTreeSet<String>)> = BTreeMap::new();
        for (app, key_id, bundle) in &self.certs {
            if let Some(b) = bundle {
                let e = apps.entry(app.clone()).or_insert_with(|| (b.clone(), BTreeSet::new()));
                e.1.insert(key_id.clone());
            }
        }
        apps
    }

    /// Runs `keycred fleet CMD` as the automation app; returns its JSON report.
    fn fleet(&self, cmd: &str, extra: &[&str]) -> Value {
        let base = self.emu.info().base_url().to_string();
        let mut args: Vec<&str> = vec!["fleet", cmd, "--tenant", TENANT, "--authority", &base, "--graph-url", &base];
        args.extend_from_slice(&["--client-id", &self.automation, "--cert", &self.bundle, "-o", "json"]);
        args.extend_from_slice(extra);
        let o = keycred_command(&args, &[]).output().unwrap();
        assert!(
            o.status.success(),
            "fleet {cmd}: {}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        serde_json::from_slice(&o.stdout).unwrap()
    }

    /// The manifests' bytes.
    fn manifests(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        snapshot(&self.out).into_iter().filter(|(p, _)| p.extension().is_some_and(|x| x == "json")).collect()
    }
}

/// One running instance of an application: it asks for a token every 100 ms with the key it
/// holds, and takes a new bundle when one is handed over.
struct Instance {
    app_id: String,
    ok: AtomicU64,
    failed: AtomicU64,
    /// The AADSTS code of each failure (none for a failure without one).
    codes: Mutex<Vec<Option<u32>>>,
    /// The keyId the hook named, once the instance took its new bundle.
    new_key_id: Mutex<Option<String>>,
}

struct Fleet {
    instances: Vec<Arc<Instance>>,
    stop: Arc<AtomicBool>,
    rt: tokio::runtime::Runtime,
}

impl Fleet {
    fn start(t: &Tenant, handover: &Path) -> Fleet {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let tokens = Arc::new(TokenClient::new(ClientOptions::default()).unwrap());
        let mut instances = Vec::new();
        for (app_id, (bundle, _)) in t.running() {
            let i = Arc::new(Instance {
                app_id: app_id.clone(),
                ok: AtomicU64::new(0),
                failed: AtomicU64::new(0),
                codes: Mutex::new(Vec::new()),
                new_key_id: Mutex::new(None),
            });
            let cred = Arc::new(load_credential(&bundle, None, None).unwrap());
            let job = Job { i: i.clone(), tokens: tokens.clone(), base: t.emu.info().base_url().to_string(), cred };
            rt.spawn(job.run(handover.to_path_buf(), stop.clone()));
            instances.push(i);
        }
        Fleet { instances, stop, rt }
    }

    fn failed(&self) -> u64 {
        self.instances.iter().map(|i| i.failed.load(Ordering::SeqCst)).sum()
    }

    /// Waits until every instance has made `n` more successful requests than in `before`.
    fn each_signs_in(&self, n: u64) {
        let before: Vec<u64> = self.instances.iter().map(|i| i.ok.load(Ordering::SeqCst)).collect();
        wait_for("every instance to sign in again", || {
            self.instances.iter().zip(&before).all(|(i, b)| i.ok.load(Ordering::SeqCst) >= b + n)
        });
    }

    fn shutdown(self) {
        self.stop.store(true, Ordering::SeqCst);
        self.rt.shutdown_timeout(Duration::from_secs(10));
    }
}

/// Polls `done` until it holds; a hang fails the test after a minute.
fn wait_for(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An instance's loop.
struct Job {
    i: Arc<Instance>,
    tokens: Arc<TokenClient>,
    base: String,
    cred: Arc<LoadedCredential>,
}

impl Job {
    fn request(&self) -> TokenRequest {
        TokenRequest {
            authority: Authority::parse(&self.base).unwrap(),
            tenant: TENANT.parse().unwrap(),
            client_id: self.i.app_id.parse().unwrap(),
            version: EndpointVersion::V2,
            target: Target::new(&[format!("{GRAPH}/.default")], None).unwrap(),
            grant: Grant::ClientCredentials,
            auth: ClientAuth::Certificate { cred: self.cred.clone(), alg: SignatureAlg::Rs256, x5c: false },
        }
    }

    /// Takes the bundle the hook handed over, if a new one is there; the instance must then
    /// acknowledge it after its next successful request.
    fn take_handover(&mut self, handover: &Path) -> bool {
        let Ok(text) = std::fs::read_to_string(handover.join(&self.i.app_id)) else { return false };
        let lines: Vec<&str> = text.lines().collect();
        if lines.len() != 3 || Path::new(lines[0]) == self.cred.cert_path {
            return false;
        }
        let cred = load_credential(Path::new(lines[0]), None, None).unwrap();
        assert_eq!(cred.cert.thumbprint(), lines[1], "the hook's KEYCRED_THUMBPRINT is the bundle's");
        *self.i.new_key_id.lock().unwrap() = Some(lines[2].to_string());
        self.cred = Arc::new(cred);
        true
    }

    async fn run(mut self, handover: PathBuf, stop: Arc<AtomicBool>) {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ack = false;
        while !stop.load(Ordering::SeqCst) {
            tick.tick().await;
            ack |= self.take_handover(&handover);
            match self.tokens.request_token(&self.request()).await {
                Ok(_) => {
                    self.i.ok.fetch_add(1, Ordering::SeqCst);
                    if std::mem::take(&mut ack) {
                        std::fs::write(handover.join(format!("{}.ack", self.i.app_id)), b"").unwrap();
                    }
                }
                Err(e) => {
                    self.i.failed.fetch_add(1, Ordering::SeqCst);
                    self.i.codes.lock().unwrap().push(entra_code(&e));
                }
            }
        }
    }
}

/// The ids of the running applications, one a line, for `--apps-file`.
fn apps_file(t: &Tenant) -> String {
    let f = t.dir.path("apps.txt");
    std::fs::write(&f, t.running().keys().map(|a| format!("{a}\n")).collect::<String>()).unwrap();
    f.display().to_string()
}

/// The report's entry for each application, by appId.
fn by_app(report: &Value) -> BTreeMap<String, Value> {
    report["apps"].as_array().unwrap().iter().map(|o| (o["appId"].as_str().unwrap().to_string(), o.clone())).collect()
}

#[test]
fn a_rotation_with_a_deploy_hook_then_retirement_on_sign_ins_fails_no_instance_request() {
    let t = tenant("lifecycle-deploy");
    let running = t.running();
    assert!(running.len() >= 20, "{} running instances", running.len());
    let n = running.len() as u64;
    let handover = t.dir.path("handover");
    std::fs::create_dir(&handover).unwrap();
    let hook = t.dir.path("hook.sh");
    std::fs::write(&hook, HOOK).unwrap();
    let fleet = Fleet::start(&t, &handover);
    fleet.each_signs_in(1);

    // Phase 1: every app gets a new certificate, verified, handed to its instance.
    let (apps, out_dir) = (apps_file(&t), t.dir.s("rotation"));
    let deploy = format!("sh {} {}", hook.display(), handover.display());
    let rotated = t.fleet(
        "rotate",
        &[
            "--apps-file",
            &apps,
            "--out-dir",
            &out_dir,
            "--deploy",
            &deploy,
            "--deploy-timeout",
            "2m",
            "--concurrency",
            "4",
        ],
    );
    let counts = ["selected", "rotated", "deployed", "deployFailed", "failed"].map(|k| rotated[k].as_u64().unwrap());
    assert_eq!(counts, [n, n, n, 0, 0], "{rotated}");
    for (app, o) in by_app(&rotated) {
        let i = fleet.instances.iter().find(|i| i.app_id == app).unwrap();
        assert_eq!(o["deploy"]["result"], "deployed", "{o}");
        assert_eq!(o["keyId"].as_str(), i.new_key_id.lock().unwrap().as_deref(), "the hook named the new keyId: {o}");
        assert_eq!(o["removed"], serde_json::json!([]), "phase 1 removes nothing: {o}");
    }

    // Phase 2: the report shows each app switched, so every older certificate goes.
    let retired = t.fleet("retire", &["--apps-file", &apps, "--out-dir", &out_dir, "--quiet-for", "0s"]);
    let older: u64 = running.values().map(|(_, keys)| keys.len() as u64).sum();
    let counts = ["selected", "retired", "kept", "failed", "certificates"].map(|k| retired[k].as_u64().unwrap());
    assert_eq!(counts, [n, n, 0, 0, older], "{retired}");
    assert_eq!(retired["evidence"], "sign-ins");
    for (app, o) in by_app(&retired) {
        let got: BTreeSet<String> =
            o["retired"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().into()).collect();
        assert_eq!(got, running[&app].1, "app {app}: every older certificate retired");
        assert_eq!(o["newest"].as_str(), by_app(&rotated)[&app]["keyId"].as_str(), "{o}");
    }
    // The instances go on with their new keys: still no failure, before or after.
    fleet.each_signs_in(2);
    assert_eq!(fleet.failed(), 0, "failed token requests during the rotation");
    fleet.shutdown();
}

#[test]
fn without_deploying_retirement_keeps_every_old_certificate_until_a_grace_period_overrides_the_evidence() {
    let t = tenant("lifecycle-no-deploy");
    let running = t.running();
    assert!(running.len() >= 20, "{} running instances", running.len());
    let n = running.len() as u64;
    let handover = t.dir.path("handover");
    std::fs::create_dir(&handover).unwrap();
    let fleet = Fleet::start(&t, &handover);
    fleet.each_signs_in(1);
    let (apps, out_dir) = (apps_file(&t), t.dir.s("rotation"));
    let rotated = t.fleet("rotate", &["--apps-file", &apps, "--out-dir", &out_dir, "--concurrency", "4"]);
    assert_eq!((rotated["rotated"].as_u64(), rotated["deployed"].as_u64()), (Some(n), Some(0)), "{rotated}");
    // Every instance signs in with its old key after the rotation verified the new one.
    fleet.each_signs_in(1);

    let before = t.manifests();
    let kept = t.fleet("retire", &["--apps-file", &apps, "--out-dir", &out_dir, "--quiet-for", "0s"]);
    let counts = ["selected", "retired", "kept", "failed", "certificates"].map(|k| kept[k].as_u64().unwrap());
    assert_eq!(counts, [n, 0, n, 0, 0], "{kept}");
    for (app, o) in by_app(&kept) {
        assert_eq!(o["result"], "kept", "{o}");
        assert!(o["reason"].as_str().unwrap().starts_with("still in use: keyId "), "app {app}: {o}");
        assert_eq!(o["kept"].as_array().unwrap().len(), running[&app].1.len(), "{o}");
    }
    assert_eq!(t.manifests(), before, "retiring without evidence changed a manifest");
    fleet.each_signs_in(1);
    assert_eq!(fleet.failed(), 0, "the instances failed before any certificate was retired");

    // A grace period of zero ignores the sign-ins: every older certificate goes, and every
    // instance, still holding its old key, is refused from its next request on.
    let forced = t.fleet("retire", &["--apps-file", &apps, "--out-dir", &out_dir, "--after", "0s"]);
    let older: u64 = running.values().map(|(_, keys)| keys.len() as u64).sum();
    assert_eq!((forced["retired"].as_u64(), forced["certificates"].as_u64()), (Some(n), Some(older)), "{forced}");
    wait_for("every instance to be refused", || fleet.instances.iter().all(|i| i.failed.load(Ordering::SeqCst) > 0));
    for i in &fleet.instances {
        let codes = i.codes.lock().unwrap().clone();
        assert!(codes.iter().all(|c| *c == Some(700027)), "{}: {codes:?}", i.app_id);
    }
    fleet.shutdown();
}
