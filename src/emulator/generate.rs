//! `keycred emulate --generate-tenant N --out DIR`: a tenant of N applications, one manifest
//! each, with the mix of credentials a real tenant has (valid, expiring, expired, not yet valid,
//! unusable certificates; client secrets; SAML signing certificates on service principals), for
//! demos, tests and benchmarks of `keycred fleet` against `keycred emulate --apps-dir DIR`.
//!
//! Generating 10,000 RSA keys would take minutes, so a few keys are generated and each
//! certificate is signed with one of them: every application still has certificates of its own
//! (own serial, so own thumbprint), and with `--with-keys` the key and certificate of each are
//! written as a PEM bundle that authenticates as that application. The first application is the
//! automation app a fleet run signs in as; its bundle is always written, with a key of its own,
//! and the other applications' manifests list it in `owners` every second application, so that
//! `Application.ReadWrite.OwnedBy` can be exercised as well as `.All`.
//!
//! `DIR/ground-truth.jsonl` holds one line per credential as the generator meant it (app id,
//! key id, kind, thumbprint, dates, status at generation time with `expiring` meaning within 30
//! days, the reason of an unusable one), so an audit can be compared with what was made rather
//! than with keycred's own reading. The directory is built under a temporary name and renamed
//! when complete: an interrupted run leaves no half tenant behind.

use super::apps::derived_id;
use crate::cert::{self, Certificate, KeySigner, KeySize, NewCertificate, PrivateKey, Validity};
use crate::thumbprint::sha256;
use crate::wording::Input;
use crate::{dates, Error, Result};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use time::{Duration, OffsetDateTime};

/// The largest tenant generated (Graph's own limits are far above; this bounds the disk use).
pub const MAX_APPS: usize = 100_000;
/// Keys shared by the generated applications' certificates.
const SHARED_KEYS: usize = 4;
/// A credential ending within this many days is `expiring`.
pub const EXPIRING_DAYS: i64 = 30;
const NAMES: [&str; 6] = ["Payroll", "Billing", "Reports", "Intranet", "Sync", "Partner API"];

/// What was generated.
#[derive(Debug, Clone)]
pub struct TenantSummary {
    /// The directory of manifests.
    pub dir: PathBuf,
    /// Applications written (the automation app included).
    pub apps: usize,
    /// The automation application's id.
    pub automation_app_id: String,
    /// The automation application's PEM bundle (private key and certificate).
    pub automation_bundle: PathBuf,
    /// Credentials by intended status (`valid`, `expiring`, `expired`, `not_yet_valid`,
    /// `unusable`), certificates and secrets together; a SAML triple counts once.
    pub by_status: BTreeMap<String, usize>,
    /// How many of them are service principals' (SAML signing certificates): `fleet audit`
    /// lists those only with `--include-service-principals`.
    pub on_service_principals: usize,
    /// The ground-truth file.
    pub ground_truth: PathBuf,
}

/// One credential of the plan.
struct Planned {
    kind: &'static str,
    status: &'static str,
    reason: Option<&'static str>,
    start: OffsetDateTime,
    end: OffsetDateTime,
    /// An entry whose `usage` or `type` Entra cannot verify with.
    defect: Option<(&'static str, &'static str)>,
}

fn cert_plan(status: &'static str, start: OffsetDateTime, end: OffsetDateTime) -> Planned {
    Planned { kind: "certificate", status, reason: None, start, end, defect: None }
}

/// The credentials of application `i` (0 is the automation app), at `now`.
fn plan(i: usize, now: OffsetDateTime) -> Vec<Planned> {
    let d = |n: i64| Duration::days(n);
    let spread = (i % 97) as i64;
    let valid = || cert_plan("valid", now - d(90), now + d(EXPIRING_DAYS + 31 + spread * 7));
    if i == 0 {
        return vec![valid()];
    }
    let expiring = || cert_plan("expiring", now - d(300), now + d(1 + spread % (EXPIRING_DAYS - 2)));
    let expired = || cert_plan("expired", now - d(400), now - d(1 + spread));
    let secret = |status: &'static str, start: OffsetDateTime, end: OffsetDateTime| Planned {
        kind: "secret",
        status,
        reason: None,
        start,
        end,
        defect: None,
    };
    match i % 20 {
        0..=9 => vec![valid()],
        10 => vec![expiring()],
        // Rotation in progress: the new certificate is already there.
        11 => vec![expiring(), valid()],
        12 => vec![expired()],
        13 => vec![expired(), secret("valid", now - d(30), now + d(700))],
        14 => vec![Planned {
            reason: Some("usage is Sign: Entra verifies client assertions with Verify keys only"),
            defect: Some(("usage", "Sign")),
            ..cert_plan("unusable", now - d(10), now + d(365))
        }],
        15 => vec![
            Planned {
                reason: Some("type is Symmetric: not a certificate Entra verifies assertions with"),
                defect: Some(("type", "Symmetric")),
                ..cert_plan("unusable", now - d(10), now + d(365))
            },
            valid(),
        ],
        16 => vec![cert_plan("not_yet_valid", now + d(10), now + d(400))],
        17 => vec![
            secret("valid", now - d(100), now + d(265 + spread)),
            secret("expiring", now - d(700), now + d(1 + spread % 20)),
        ],
        18 => vec![valid(), secret("expired", now - d(800), now - d(5 + spread))],
        // A SAML application: its signing certificate lives on the service principal.
        _ => vec![valid(), Planned { kind: "saml", ..cert_plan("valid", now - d(20), now + d(1000)) }],
    }
}

/// A random-looking but reproducible GUID for generated application `i` (`kind` "app" or
/// "object").
fn generated_id(kind: &str, i: usize) -> String {
    derived_id(&format!("generated {kind}"), &i.to_string())
}

/// Everything written for one application.
struct AppFiles {
    manifest: String,
    secrets: Option<String>,
    bundles: Vec<(String, String)>,
    truth: Vec<Value>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Builds application `i`'s manifest, secret hashes, key files and ground-truth lines.
fn build_app(
    i: usize,
    now: OffsetDateTime,
    signer: &KeySigner,
    key_pem: &str,
    automation: &str,
    with_keys: bool,
) -> Result<AppFiles> {
    let app_id = if i == 0 { automation.to_string() } else { generated_id("app", i) };
    let object_id = generated_id("object", i);
    let name =
        if i == 0 { "keycred fleet automation".to_string() } else { format!("{} {i:05}", NAMES[i % NAMES.len()]) };
    let mut keys = Vec::new();
    let mut passwords = Vec::new();
    let mut sp: Option<Value> = None;
    let mut secrets = Map::new();
    let mut bundles = Vec::new();
    let mut truth = Vec::new();
    for (n, p) in plan(i, now).into_iter().enumerate() {
        let key_id = uuid::Uuid::new_v4().to_string();
        let mut line = json!({
            "appId": app_id, "objectId": object_id, "displayName": name, "keyId": key_id,
            "kind": if p.kind == "secret" { "secret" } else { "certificate" },
            "start": dates::format(p.start), "end": dates::format(p.end), "status": p.status,
            "reason": p.reason, "servicePrincipal": p.kind == "saml",
        });
        if p.kind == "secret" {
            let secret = super::graph::passwords::new_secret();
            passwords.push(password_entry(n, &p, &secret, &key_id));
            if with_keys {
                secrets.insert(key_id.clone(), json!(hex(&sha256(secret.as_bytes()))));
                let file = format!("keys/{app_id}.{key_id}.secret");
                line["secretFile"] = json!(file);
                bundles.push((file, secret));
            }
            truth.push(line);
            continue;
        }
        let subject = format!("CN={name} {n}");
        let cert: Certificate = signer.self_signed(&subject, p.start, p.end)?;
        line["thumbprint"] = json!(cert.thumbprint());
        if p.kind == "saml" {
            sp = Some(saml_service_principal(&cert, &subject, &p, &key_id));
            truth.push(line);
            continue;
        }
        let (field, value) = p.defect.unwrap_or(("usage", "Verify"));
        let mut e = json!({
            "customKeyIdentifier": cert.thumbprint(), "displayName": subject,
            "endDateTime": dates::format(p.end), "key": cert.value_b64(), "keyId": key_id,
            "startDateTime": dates::format(p.start), "type": "AsymmetricX509Cert", "usage": "Verify",
        });
        e[field] = json!(value);
        keys.push(e);
        if (with_keys || i == 0) && p.defect.is_none() {
            let file = format!("keys/{app_id}.{key_id}.pem");
            line["bundle"] = json!(file);
            bundles.push((file, format!("{key_pem}{}", cert.to_pem())));
        }
        truth.push(line);
    }
    let mut m = app_object(i, now, &app_id, &object_id, &name, automation);
    m.insert("keyCredentials".into(), Value::Array(keys));
    m.insert("passwordCredentials".into(), Value::Array(passwords));
    if let Some(sp) = sp {
        m.insert("servicePrincipal".into(), sp);
    }
    let manifest = serde_json::to_string_pretty(&Value::Object(m))
        .map_err(|e| Error::internal("cannot encode a manifest").caused_by(e))?;
    let secrets = (!secrets.is_empty()).then(|| Value::Object(secrets).to_string());
    Ok(AppFiles { manifest, secrets, bundles, truth })
}

/// A generated password credential as Graph returns it: the secret's first three characters as its hint.
fn password_entry(n: usize, p: &Planned, secret: &str, key_id: &str) -> Value {
    json!({
        "customKeyIdentifier": null, "displayName": format!("secret {n}"),
        "endDateTime": dates::format(p.end), "hint": &secret[..3], "keyId": key_id,
        "secretText": null, "startDateTime": dates::format(p.start),
    })
}

/// A SAML app's service principal: Verify (public) and Sign (private, as PFX) keys and the PFX
/// password, sharing one customKeyIdentifier; the Sign key shares the password's keyId (PROTOCOL.md section 8).
fn saml_service_principal(cert: &Certificate, subject: &str, p: &Planned, key_id: &str) -> Value {
    let cki = cert.custom_key_identifier();
    let sign_id = uuid::Uuid::new_v4().to_string();
    let entry = |usage: &str, kind: &str, id: &str, key: Value| {
        json!({"customKeyIdentifier": cki, "displayName": subject, "endDateTime": dates::format(p.end),
               "key": key, "keyId": id, "startDateTime": dates::format(p.start), "type": kind, "usage": usage})
    };
    json!({
        "preferredSingleSignOnMode": "saml",
        "preferredTokenSigningKeyThumbprint": cert.thumbprint(),
        "keyCredentials": [
            entry("Verify", "AsymmetricX509Cert", key_id, json!(cert.value_b64())),
            entry("Sign", "X509CertAndPassword", &sign_id, Value::Null),
        ],
        "passwordCredentials": [{
            "customKeyIdentifier": cki, "displayName": subject, "endDateTime": dates::format(p.end),
            "hint": null, "keyId": sign_id, "secretText": null, "startDateTime": dates::format(p.start),
        }],
    })
}

/// Application `i`'s own properties, before its credentials: ids, name, creation date, URIs, owners.
fn app_object(
    i: usize,
    now: OffsetDateTime,
    app_id: &str,
    object_id: &str,
    name: &str,
    automation: &str,
) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".into(), json!(object_id));
    m.insert("appId".into(), json!(app_id));
    m.insert("displayName".into(), json!(name));
    m.insert("createdDateTime".into(), json!(dates::format(now - Duration::days(400 + (i % 300) as i64))));
    m.insert("identifierUris".into(), if i % 4 == 1 { json!([format!("api://{app_id}")]) } else { json!([]) });
    m.insert("signInAudience".into(), json!("AzureADMyOrg"));
    m.insert("owners".into(), if i > 0 && i.is_multiple_of(2) { json!([automation]) } else { json!([]) });
    m
}

fn write(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    use std::io::Write;
    opts.open(path).and_then(|mut f| f.write_all(data)).map_err(|e| Error::io(path, "write", e))
}

fn new_key() -> Result<PrivateKey> {
    let (_, key) = cert::generate(&NewCertificate {
        subject: "CN=keycred generated tenant".into(),
        key_size: KeySize::Rsa2048,
        validity: Validity::Days(1),
    })?;
    Ok(key)
}

/// Refuses an application count out of range and an `--out` that exists and is not an empty directory.
fn check_tenant_args(n: usize, out: &Path) -> Result<()> {
    if n == 0 || n > MAX_APPS {
        return Err(Error::input(format!("{} {n}: not between 1 and {MAX_APPS}", Input::GenerateTenant)).with_hint(
            format!("give the number of applications to generate as {}, for example 1000", Input::GenerateTenant),
        ));
    }
    if out.exists() {
        let empty = out.is_dir() && std::fs::read_dir(out).map_err(|e| Error::io(out, "read", e))?.next().is_none();
        if !empty {
            return Err(Error::input(format!("{} {}: already exists", Input::Out, out.display()))
                .with_hint("give a new directory; generated tenants are never written over existing files"));
        }
    }
    Ok(())
}

/// The hidden sibling directory the tenant is written into before it is renamed to `out`.
fn partial_dir(out: &Path) -> Result<PathBuf> {
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = out
        .file_name()
        .ok_or_else(|| Error::input(format!("{} {}: not a directory path", Input::Out, out.display())))?;
    Ok(parent.join(format!(".{}.keycred-{}.partial", name.to_string_lossy(), uuid::Uuid::new_v4().simple())))
}

/// Builds and writes the `n` applications into `work` on several threads; returns each one's
/// ground-truth lines, by application index, in no particular order.
fn write_apps(
    work: &Path,
    n: usize,
    now: OffsetDateTime,
    shared: &[PrivateKey],
    automation_key: &PrivateKey,
    automation: &str,
    with_keys: bool,
) -> Result<Vec<(usize, Vec<Value>)>> {
    let threads = std::thread::available_parallelism().map_or(2, |p| p.get()).clamp(1, 8);
    let chunks: Vec<Vec<usize>> = (0..threads).map(|t| (t..n).step_by(threads).collect()).collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .iter()
            .map(|chunk| {
                s.spawn(move || -> Result<Vec<(usize, Vec<Value>)>> {
                    let signers: Vec<(KeySigner, String)> =
                        shared.iter().map(|k| Ok((KeySigner::new(k)?, k.to_pem(None)?))).collect::<Result<_>>()?;
                    let own = (KeySigner::new(automation_key)?, automation_key.to_pem(None)?);
                    let mut out = Vec::new();
                    for &i in chunk {
                        let (signer, pem) = if i == 0 { &own } else { &signers[i % signers.len()] };
                        let files = build_app(i, now, signer, pem, automation, with_keys)?;
                        write_app(work, &files)?;
                        out.push((i, files.truth));
                    }
                    Ok(out)
                })
            })
            .collect();
        let mut all = Vec::new();
        for h in handles {
            all.extend(h.join().map_err(|_| Error::internal("a generator thread panicked"))??);
        }
        Ok::<_, Error>(all)
    })
}

/// Writes one application's manifest, its secret hashes and its key files into `work`.
fn write_app(work: &Path, files: &AppFiles) -> Result<()> {
    let app_id = files.truth.first().and_then(|t| t["appId"].as_str()).unwrap_or_default().to_string();
    let manifest = work.join(format!("{app_id}.json"));
    write(&manifest, files.manifest.as_bytes(), 0o644)?;
    if let Some(s) = &files.secrets {
        write(&super::graph::passwords::hashes_path(&manifest), s.as_bytes(), 0o600)?;
    }
    for (file, data) in &files.bundles {
        write(&work.join(file), data.as_bytes(), 0o600)?;
    }
    Ok(())
}

/// Writes `ground-truth.jsonl` (sorted truths) into `work`; returns the count of each status, of
/// those on service principals, and the automation app's key file as it will be named under `out`.
fn write_ground_truth(
    work: &Path,
    out: &Path,
    truths: &[(usize, Vec<Value>)],
) -> Result<(BTreeMap<String, usize>, usize, PathBuf)> {
    let mut by_status = BTreeMap::new();
    let mut on_service_principals = 0;
    let mut lines = String::new();
    let mut automation_bundle = PathBuf::new();
    for (i, t) in truths.iter() {
        for line in t {
            *by_status.entry(line["status"].as_str().unwrap_or_default().to_string()).or_insert(0) += 1;
            on_service_principals += usize::from(line["servicePrincipal"] == true);
            if *i == 0 {
                if let Some(b) = line["bundle"].as_str() {
                    automation_bundle = out.join(b);
                }
            }
            lines.push_str(&line.to_string());
            lines.push('\n');
        }
    }
    write(&work.join("ground-truth.jsonl"), lines.as_bytes(), 0o644)?;
    Ok((by_status, on_service_principals, automation_bundle))
}

/// Writes a tenant of `n` applications into `out`, which must not exist yet (or be empty).
pub fn generate_tenant(n: usize, out: &Path, with_keys: bool) -> Result<TenantSummary> {
    check_tenant_args(n, out)?;
    let work = partial_dir(out)?;
    let result = (|| -> Result<TenantSummary> {
        // 0700 whatever the umask: `keys/` holds private keys, and the tenant's directory is
        // this one renamed.
        crate::fsio::create_private_dir(&work.join("keys"))?;
        let now = dates::now().replace_nanosecond(0).unwrap_or(dates::now());
        let automation_key = new_key()?;
        let shared: Vec<PrivateKey> = (0..SHARED_KEYS.min(n)).map(|_| new_key()).collect::<Result<_>>()?;
        let automation = generated_id("app", 0);
        let mut truths = write_apps(&work, n, now, &shared, &automation_key, &automation, with_keys)?;
        truths.sort_by_key(|(i, _)| *i);
        let (by_status, on_service_principals, automation_bundle) = write_ground_truth(&work, out, &truths)?;
        if out.exists() {
            std::fs::remove_dir(out).map_err(|e| Error::io(out, "replace", e))?;
        }
        std::fs::rename(&work, out).map_err(|e| Error::io(out, "create", e))?;
        Ok(TenantSummary {
            dir: out.to_path_buf(),
            apps: n,
            automation_app_id: automation,
            automation_bundle,
            by_status,
            on_service_principals,
            ground_truth: out.join("ground-truth.jsonl"),
        })
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&work);
    }
    result
}

/// The file of a generated tenant's default app management policy, in its directory (the
/// `.policy.json` ending keeps it out of the manifests).
pub const POLICY_FILE: &str = "tenant-default.policy.json";

/// Writes `DIR/tenant-default.policy.json`: a default app management policy (Graph's
/// `defaultAppManagementPolicy` shape) capping new certificates at `max_days` days. Application
/// `i` of the `apps` generated was created `400 + i % 300` days ago; the restriction applies to
/// those created after the middle one (the automation app, the newest, among them), so about
/// half are restricted and half grandfathered, as in a tenant that adopted a policy after years
/// of use. Returns the file, for `--app-policy`.
pub fn write_default_policy(dir: &Path, max_days: u32, apps: usize, now: OffsetDateTime) -> Result<PathBuf> {
    if max_days == 0 {
        return Err(Error::input("--generate-policy-max-days 0: a policy allows at least one day")
            .with_hint("give the largest certificate lifetime the tenant allows, in days (e.g. 180)"));
    }
    let middle = (apps.min(300) / 2) as i64;
    let after =
        dates::format(now.replace_nanosecond(0).unwrap_or(now) - Duration::days(400 + middle) - Duration::hours(12));
    let body = json!({
        "id": "00000000-0000-0000-0000-000000000000",
        "displayName": "Default app management tenant policy",
        "description": "Default tenant policy that enforces app management restrictions on applications and service principals.",
        "isEnabled": true,
        "applicationRestrictions": {
            "passwordCredentials": [],
            "keyCredentials": [{"restrictionType": "asymmetricKeyLifetime", "maxLifetime": format!("P{max_days}D"),
                "restrictForAppsCreatedAfterDateTime": after, "state": "enabled"}]
        },
        "servicePrincipalRestrictions": {"passwordCredentials": [], "keyCredentials": []}
    });
    let path = dir.join(POLICY_FILE);
    let text = serde_json::to_vec_pretty(&body).map_err(|e| Error::internal(e.to_string()))?;
    crate::fsio::atomic_write(&path, &text, None)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Manifest, Status};

    #[test]
    fn the_mix_is_what_the_ground_truth_says() {
        let dir = std::env::temp_dir().join(format!("keycred-gen-{}", uuid::Uuid::new_v4()));
        let out = dir.join("tenant");
        std::fs::create_dir_all(&dir).unwrap();
        let s = generate_tenant(40, &out, true).unwrap();
        assert_eq!(s.apps, 40);
        let manifests = std::fs::read_dir(&out)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "json"))
            .count();
        assert_eq!(manifests, 40);
        for status in ["valid", "expiring", "expired", "not_yet_valid", "unusable"] {
            assert!(s.by_status.get(status).copied().unwrap_or(0) > 0, "{status}: {:?}", s.by_status);
        }
        // keycred's own reading of each certificate agrees with the plan.
        let now = dates::now();
        for line in std::fs::read_to_string(&s.ground_truth).unwrap().lines() {
            let t: Value = serde_json::from_str(line).unwrap();
            if t["kind"] != "certificate" || t["servicePrincipal"] == true {
                continue;
            }
            let m = Manifest::load(&out.join(format!("{}.json", t["appId"].as_str().unwrap()))).unwrap();
            let c = m.credentials().into_iter().find(|c| c.key_id.as_deref() == t["keyId"].as_str()).unwrap();
            let status = c.status(now);
            match t["status"].as_str().unwrap() {
                "unusable" => assert!(!c.is_usable(), "{line}"),
                "expired" => assert!(matches!(status, Status::Expired), "{line}"),
                "not_yet_valid" => assert!(matches!(status, Status::NotYetValid), "{line}"),
                "expiring" => assert!(matches!(status, Status::Expiring), "{line}"),
                _ => assert!(matches!(status, Status::Valid), "{line}"),
            }
            if let Some(b) = t["bundle"].as_str() {
                let bundle = cert::load_file(&out.join(b), None).unwrap();
                assert!(bundle.key.is_some());
            }
        }
        assert!(s.automation_bundle.exists());
        assert!(generate_tenant(3, &out, false).unwrap_err().to_string().contains("already exists"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
