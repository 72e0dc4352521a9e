//! The operations an emulated vault serves: keys (create, get, sign, verify) and certificates
//! (create with its pending operation, get, versions, policy). Every request is authenticated
//! first (401 before 404, as Key Vault does), then checked against the vault's allowed apps.
//! Requests Key Vault serves and the emulator does not are answered 501 saying so.

use super::auth::{authenticate, authorize, bad_parameter, error, json_body, Caller, Refusal};
use super::store::{self, Cert, CertVersion, KeyVersion, Store};
use super::Vault;
use crate::cert::{self, KeySize, NewCertificate, PrivateKey, SignatureAlg, Validity};
use crate::emulator::state::AppState;
use crate::thumbprint::b64url;
use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use std::sync::Arc;

/// A request to a vault host whose vault is not served: as an unknown vault's name does not
/// resolve in Azure, nothing answers; here a 404 says which vaults exist.
pub(super) fn no_such_vault(host: &str) -> Response {
    (StatusCode::NOT_FOUND, format!("no vault is served at {host}: start keycred emulate with --vault NAME"))
        .into_response()
}

/// Serves one request to `vault` (on the blocking pool: key generation takes a while).
pub(super) async fn serve(st: Arc<AppState>, vault: Arc<Vault>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, crate::emulator::MAX_BODY).await else {
        return *bad_parameter("The request body could not be read.");
    };
    crate::emulator::blocking(move || handle(&st, &vault, &parts.method, &parts.uri, &parts.headers, &body)).await
}

fn handle(
    st: &AppState,
    vault: &Vault,
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let caller = match authenticate(st, headers) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let has_api_version = uri.query().unwrap_or_default().split('&').any(|p| p.starts_with("api-version="));
    if !has_api_version {
        return *bad_parameter("The api-version query parameter is missing.");
    }
    let base = st.vaults.url(&vault.name);
    let segs: Vec<&str> = uri.path().trim_start_matches('/').split('/').collect();
    let r = Req { vault, caller: &caller, base: &base, body };
    let answer = match (method.clone(), segs.as_slice()) {
        (Method::POST, ["keys", name, "create"]) => r.create_key(name),
        (Method::GET, ["keys", name]) => r.get_key(name, ""),
        (Method::GET, ["keys", name, version]) => r.get_key(name, version),
        (Method::POST, ["keys", name, op @ ("sign" | "verify")]) => r.key_op(name, "", op),
        (Method::POST, ["keys", name, version, op @ ("sign" | "verify")]) => r.key_op(name, version, op),
        (Method::POST, ["certificates", name, "create"]) => r.create_cert(name),
        (Method::GET, ["certificates", name, "pending"]) => r.pending(name),
        (Method::GET, ["certificates", name, "versions"]) => r.cert_versions(name),
        (Method::GET, ["certificates", name, "policy"]) => r.cert_policy(name),
        (Method::GET, ["certificates", name]) => r.get_cert(name, ""),
        (Method::GET, ["certificates", name, version]) => r.get_cert(name, version),
        _ => Err(error(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            &format!("The emulated vault does not serve {method} /{}: it serves keys (create, get, sign, verify) and certificates (create, pending, get, versions, policy).", segs.join("/")),
            None,
        )),
    };
    answer.unwrap_or_else(|r| *r)
}

type Answer = Result<Response, Refusal>;

/// One authenticated request.
struct Req<'a> {
    vault: &'a Vault,
    caller: &'a Caller,
    base: &'a str,
    body: &'a [u8],
}

fn now() -> i64 {
    crate::jwt::now_secs()
}

/// Key Vault object names: 1-127 letters, digits and hyphens.
fn check_name(name: &str) -> Result<(), Refusal> {
    if !name.is_empty() && name.len() <= 127 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Ok(());
    }
    Err(bad_parameter(&format!("The name '{name}' is invalid: names have 1 to 127 letters, digits and hyphens.")))
}

fn not_found(kind: &str, code: &str, id: &str) -> Refusal {
    let message = format!(
        "A {kind} with (name/id) {id} was not found in this key vault. If you recently deleted this {kind} you may be \
         able to recover it using the correct recovery command. For help resolving this issue, please see \
         https://go.microsoft.com/fwlink/?linkid=2125182"
    );
    error(StatusCode::NOT_FOUND, code, &message, None)
}

fn named<'v, T>(list: &'v mut [(String, T)], name: &str) -> Option<&'v mut T> {
    list.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, t)| t)
}

/// A new RSA private key of `bits`, generated here and never shown.
fn new_rsa_key(bits: u64) -> Result<(PrivateKey, KeySize), Refusal> {
    let size = match bits {
        2048 => KeySize::Rsa2048,
        3072 => KeySize::Rsa3072,
        4096 => KeySize::Rsa4096,
        _ => return Err(bad_parameter(&format!("Invalid key size {bits}: RSA keys are 2048, 3072 or 4096 bits."))),
    };
    let req = NewCertificate { subject: "CN=key".into(), key_size: size, validity: Validity::Days(1) };
    let (_, key) = cert::generate(&req)
        .map_err(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", "Key generation failed.", None))?;
    Ok((key, size))
}

/// `RSA` or `RSA-HSM` (a premium vault's); the emulator makes no EC or symmetric keys.
fn rsa_kty(v: Option<&Value>) -> Result<String, Refusal> {
    match v.and_then(Value::as_str).unwrap_or("RSA") {
        k @ ("RSA" | "RSA-HSM") => Ok(k.to_string()),
        other => {
            Err(bad_parameter(&format!("Key type '{other}': the emulated vault makes RSA and RSA-HSM keys only.")))
        }
    }
}

fn json_ok(status: StatusCode, v: Value) -> Answer {
    Ok((status, [(axum::http::header::CACHE_CONTROL, "no-cache")], Json(v)).into_response())
}

impl Req<'_> {
    fn allow(&self, permission: &str) -> Result<(), Refusal> {
        authorize(self.vault, self.caller, permission)
    }

    fn store(&self) -> &Store {
        &self.vault.store
    }

    fn create_key(&self, name: &str) -> Answer {
        self.allow("keys create")?;
        check_name(name)?;
        let body = json_body(self.body)?;
        let kty = rsa_kty(body.get("kty"))?;
        let (key, _) = new_rsa_key(body.get("key_size").and_then(Value::as_u64).unwrap_or(2048))?;
        let key_ops = match body.get("key_ops").and_then(Value::as_array) {
            Some(ops) => ops.iter().filter_map(Value::as_str).map(str::to_string).collect(),
            None => store::RSA_KEY_OPS.iter().map(|s| s.to_string()).collect(),
        };
        let attrs = body.get("attributes");
        let k = KeyVersion {
            version: store::new_version(),
            key,
            kty,
            key_ops,
            created: now(),
            managed: false,
            nbf: attrs.and_then(|a| a.get("nbf")).and_then(Value::as_i64),
            exp: attrs.and_then(|a| a.get("exp")).and_then(Value::as_i64),
        };
        let answer = store::key_bundle(self.base, name, &k);
        self.add_key_version(name, k);
        json_ok(StatusCode::OK, answer)
    }

    fn add_key_version(&self, name: &str, k: KeyVersion) {
        let mut keys = self.store().keys.lock().unwrap_or_else(|p| p.into_inner());
        match named(&mut keys, name) {
            Some(versions) => versions.push(k),
            None => keys.push((name.to_string(), vec![k])),
        }
    }

    /// Runs `f` on the version asked (the latest for an empty version), or answers 404.
    fn with_key<R>(&self, name: &str, version: &str, f: impl FnOnce(&str, &KeyVersion) -> R) -> Result<R, Refusal> {
        let mut keys = self.store().keys.lock().unwrap_or_else(|p| p.into_inner());
        let id = if version.is_empty() { name.to_string() } else { format!("{name}/{version}") };
        let (stored, versions) = keys
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .ok_or_else(|| not_found("key", "KeyNotFound", &id))?;
        let k = if version.is_empty() { versions.last() } else { versions.iter().find(|k| k.version == version) };
        let k = k.ok_or_else(|| not_found("key", "KeyNotFound", &id))?;
        Ok(f(stored, k))
    }

    fn get_key(&self, name: &str, version: &str) -> Answer {
        self.allow("keys get")?;
        let bundle = self.with_key(name, version, |stored, k| store::key_bundle(self.base, stored, k))?;
        json_ok(StatusCode::OK, bundle)
    }

    /// `sign` (`{alg, value}` → `{kid, value}`) and `verify` (`{alg, digest, value}` → `{value}`):
    /// the value is the caller's digest; the emulator signs it without hashing again.
    fn key_op(&self, name: &str, version: &str, op: &str) -> Answer {
        self.allow(&format!("keys {op}"))?;
        let body = json_body(self.body)?;
        let alg_name = body.get("alg").and_then(Value::as_str).unwrap_or_default();
        let alg = SignatureAlg::from_jose(alg_name).ok_or_else(|| {
            bad_parameter(&format!("Algorithm '{alg_name}': the emulated vault signs with RS256 and PS256 only."))
        })?;
        let b64 = |field: &str| {
            body.get(field)
                .and_then(Value::as_str)
                .and_then(|v| URL_SAFE_NO_PAD.decode(v.trim_end_matches('=')).ok())
                .ok_or_else(|| bad_parameter(&format!("The '{field}' field is missing or not base64url.")))
        };
        let digest = b64(if op == "sign" { "value" } else { "digest" })?;
        if digest.len() != 32 {
            return Err(bad_parameter(&format!(
                "Invalid digest length {} for {alg_name}: SHA-256 digests are 32 bytes.",
                digest.len()
            )));
        }
        let signature = if op == "verify" { Some(b64("value")?) } else { None };
        let done = self.with_key(name, version, |stored, k| {
            if !k.key_ops.iter().any(|o| o == op) {
                return Err(bad_parameter(&format!("Operation {op} is not permitted on this key.")));
            }
            let kid = format!("{}/keys/{stored}/{}", self.base, k.version);
            match &signature {
                Some(sig) => Ok(json!({"value": alg.verify_digest(k.key.rsa_public_key(), &digest, sig)})),
                None => k
                    .key
                    .sign_digest(alg, &digest)
                    .map(|sig| json!({"kid": kid, "value": b64url(&sig)}))
                    .map_err(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", "Signing failed.", None)),
            }
        })??;
        json_ok(StatusCode::OK, done)
    }

    fn create_cert(&self, name: &str) -> Answer {
        self.allow("certificates create")?;
        check_name(name)?;
        let body = json_body(self.body)?;
        let policy = complete_policy(body.get("policy").unwrap_or(&Value::Null))?;
        let subject = policy["x509_props"]["subject"].as_str().unwrap_or_default().to_string();
        let months = policy["x509_props"]["validity_months"].as_u64().unwrap_or(12);
        let bits = policy["key_props"]["key_size"].as_u64().unwrap_or(2048);
        let kty = policy["key_props"]["kty"].as_str().unwrap_or("RSA").to_string();
        let (_, size) = new_rsa_key(bits)?;
        let created = now();
        let (nbf, exp) = (created - 600, add_months(created, months));
        let range =
            |t: i64| time::OffsetDateTime::from_unix_timestamp(t).map_err(|_| bad_parameter("Invalid validity."));
        let req = NewCertificate {
            subject: subject.clone(),
            key_size: size,
            validity: Validity::Range(range(nbf)?, range(exp)?),
        };
        let (certificate, key) = cert::generate(&req)
            .map_err(|e| bad_parameter(&format!("The policy's subject '{subject}' is invalid: {}", e.message())))?;
        let csr = cert::request_with(&key, &subject).unwrap_or_default();
        let csr_b64: String = csr.lines().filter(|l| !l.starts_with("-----")).collect();
        let version = store::new_version();
        let request_id = store::new_version();
        self.add_key_version(
            name,
            KeyVersion {
                version: version.clone(),
                key,
                kty,
                key_ops: vec!["sign".into(), "verify".into()],
                created,
                managed: true,
                nbf: Some(nbf),
                exp: Some(exp),
            },
        );
        let v = CertVersion { version, der: certificate.der().to_vec(), created, nbf, exp };
        let completed = store::operation(self.base, name, &csr_b64, &request_id, true);
        {
            let mut certs = self.store().certs.lock().unwrap_or_else(|p| p.into_inner());
            match named(&mut certs, name) {
                Some(c) => {
                    c.versions.push(v);
                    c.policy = policy;
                    c.operation = completed;
                }
                None => certs.push((
                    name.to_string(),
                    Cert { versions: vec![v], policy, policy_created: created, operation: completed },
                )),
            }
        }
        // Key Vault answers 202 with the operation in progress and where to follow it.
        let op = store::operation(self.base, name, &csr_b64, &request_id, false);
        let location = format!("{}/certificates/{name}/pending?api-version=7.4&request_id={request_id}", self.base);
        Ok((StatusCode::ACCEPTED, [("location", location), ("retry-after", "0".to_string())], Json(op)).into_response())
    }

    fn with_cert<R>(&self, name: &str, f: impl FnOnce(&str, &Cert) -> Result<R, Refusal>) -> Result<R, Refusal> {
        let certs = self.store().certs.lock().unwrap_or_else(|p| p.into_inner());
        let (stored, c) = certs
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .ok_or_else(|| not_found("certificate", "CertificateNotFound", name))?;
        f(stored, c)
    }

    fn pending(&self, name: &str) -> Answer {
        self.allow("certificates get")?;
        json_ok(StatusCode::OK, self.with_cert(name, |_, c| Ok(c.operation.clone()))?)
    }

    fn cert_versions(&self, name: &str) -> Answer {
        self.allow("certificates list")?;
        let items = self.with_cert(name, |stored, c| {
            Ok(c.versions.iter().map(|v| store::cert_item(self.base, stored, v)).collect::<Vec<_>>())
        })?;
        json_ok(StatusCode::OK, json!({"value": items, "nextLink": null}))
    }

    fn cert_policy(&self, name: &str) -> Answer {
        self.allow("certificates get")?;
        json_ok(StatusCode::OK, self.with_cert(name, |stored, c| Ok(store::policy_json(self.base, stored, c)))?)
    }

    fn get_cert(&self, name: &str, version: &str) -> Answer {
        self.allow("certificates get")?;
        let bundle = self.with_cert(name, |stored, c| {
            let v =
                if version.is_empty() { c.versions.last() } else { c.versions.iter().find(|v| v.version == version) };
            let v = v.ok_or_else(|| not_found("certificate", "CertificateNotFound", &format!("{name}/{version}")))?;
            Ok(store::cert_bundle(self.base, stored, c, v))
        })?;
        json_ok(StatusCode::OK, bundle)
    }
}

/// The policy as Key Vault completes it: defaults for what the request left out (exportable
/// keys, RSA 2048, PKCS#12 secrets, 12 months, server and client authentication). Only
/// self-issued certificates (`issuer.name` `Self`) are made.
fn complete_policy(given: &Value) -> Result<Value, Refusal> {
    let issuer = given["issuer"]["name"].as_str().unwrap_or("Self");
    if !issuer.eq_ignore_ascii_case("Self") {
        return Err(bad_parameter(&format!(
            "Issuer '{issuer}': the emulated vault makes self-issued certificates only (issuer Self)."
        )));
    }
    let subject = given["x509_props"]["subject"].as_str().unwrap_or_default();
    if subject.is_empty() {
        return Err(bad_parameter("The policy has no x509_props.subject."));
    }
    let kp = &given["key_props"];
    let kty = rsa_kty(kp.get("kty"))?;
    let x = &given["x509_props"];
    let or = |v: &Value, d: Value| if v.is_null() { d } else { v.clone() };
    Ok(json!({
        "key_props": {
            "exportable": or(&kp["exportable"], json!(true)),
            "kty": kty,
            "key_size": or(&kp["key_size"], json!(2048)),
            "reuse_key": or(&kp["reuse_key"], json!(false)),
        },
        "secret_props": {"contentType": or(&given["secret_props"]["contentType"], json!("application/x-pkcs12"))},
        "x509_props": {
            "subject": subject,
            "sans": or(&x["sans"], json!({})),
            "ekus": or(&x["ekus"], json!(["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"])),
            "key_usage": or(&x["key_usage"], json!(["digitalSignature", "keyEncipherment"])),
            "validity_months": or(&x["validity_months"], json!(12)),
            "basic_constraints": {"ca": false},
        },
        "lifetime_actions": or(&given["lifetime_actions"], json!([{"trigger": {"lifetime_percentage": 80}, "action": {"action_type": "AutoRenew"}}])),
        "issuer": {"name": "Self"},
    }))
}

/// `t` plus `months` calendar months (the day clamped to the month's end).
fn add_months(t: i64, months: u64) -> i64 {
    let Ok(d) = time::OffsetDateTime::from_unix_timestamp(t) else { return t };
    let total = d.year() as i64 * 12 + (d.month() as i64 - 1) + months.min(1200) as i64;
    let (year, month) = ((total / 12) as i32, (total % 12 + 1) as u8);
    let Ok(month) = time::Month::try_from(month) else { return t };
    let day = d.day().min(month.length(year));
    time::Date::from_calendar_date(year, month, day).map(|date| d.replace_date(date).unix_timestamp()).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_calendar_months() {
        let t = time::macros::datetime!(2024-01-31 10:00 UTC).unix_timestamp();
        assert_eq!(add_months(t, 1), time::macros::datetime!(2024-02-29 10:00 UTC).unix_timestamp());
        assert_eq!(add_months(t, 12), time::macros::datetime!(2025-01-31 10:00 UTC).unix_timestamp());
    }

    #[test]
    fn a_policy_is_completed_with_key_vaults_defaults_and_refuses_other_issuers() {
        let p =
            complete_policy(&json!({"key_props": {"exportable": false}, "x509_props": {"subject": "CN=a"}})).unwrap();
        assert_eq!(p["key_props"]["exportable"], json!(false));
        assert_eq!(p["key_props"]["key_size"], json!(2048));
        assert_eq!(p["x509_props"]["validity_months"], json!(12));
        assert_eq!(p["issuer"]["name"], json!("Self"));
        assert!(complete_policy(&json!({"x509_props": {"subject": "CN=a"}, "issuer": {"name": "DigiCert"}})).is_err());
        assert!(complete_policy(&json!({"x509_props": {}})).is_err());
    }
}
