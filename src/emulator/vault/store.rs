//! What an emulated vault holds, and its JSON as Key Vault's REST API (7.4) shapes it: keys
//! (`KeyBundle`), certificates (`CertificateBundle`, with their policy) and the pending
//! operation of a certificate's creation (`CertificateOperation`). Shapes follow Key Vault's
//! REST reference and recorded Key Vault traffic (azure-sdk-for-js test recordings).

use crate::cert::PrivateKey;
use crate::thumbprint::{b64, b64url, sha1};
use serde_json::{json, Value};
use std::sync::Mutex;

/// Key operations a new RSA key permits when the request names none (what Key Vault answers).
pub(super) const RSA_KEY_OPS: [&str; 6] = ["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"];

/// One version of a key. The private half never leaves this struct.
pub(super) struct KeyVersion {
    pub(super) version: String,
    pub(super) key: PrivateKey,
    /// `RSA` or `RSA-HSM`.
    pub(super) kty: String,
    pub(super) key_ops: Vec<String>,
    pub(super) created: i64,
    /// Backs a certificate: the key is managed by the certificate (`managed: true`).
    pub(super) managed: bool,
    pub(super) nbf: Option<i64>,
    pub(super) exp: Option<i64>,
}

/// One version of a certificate.
pub(super) struct CertVersion {
    pub(super) version: String,
    pub(super) der: Vec<u8>,
    pub(super) created: i64,
    pub(super) nbf: i64,
    pub(super) exp: i64,
}

/// A certificate: its versions, its policy (as given, completed), its latest operation.
pub(super) struct Cert {
    pub(super) versions: Vec<CertVersion>,
    pub(super) policy: Value,
    pub(super) policy_created: i64,
    pub(super) operation: Value,
}

/// Everything one vault holds, by name (names are case-insensitive in Key Vault).
#[derive(Default)]
pub(super) struct Store {
    pub(super) keys: Mutex<Vec<(String, Vec<KeyVersion>)>>,
    pub(super) certs: Mutex<Vec<(String, Cert)>>,
}

/// A fresh version id: 32 lower-case hex digits, as Key Vault's.
pub(super) fn new_version() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// `{key, attributes}` of a key version: the public JSON Web Key only (`n`, `e`), never `d`.
pub(super) fn key_bundle(base: &str, name: &str, k: &KeyVersion) -> Value {
    let (n, e) = crate::cert::signer::rsa_numbers(k.key.rsa_public_key()).unwrap_or_default();
    let mut attributes = json!({
        "enabled": true,
        "created": k.created,
        "updated": k.created,
        "recoveryLevel": "Recoverable+Purgeable",
        "recoverableDays": 90,
        "exportable": false,
    });
    if let Some(nbf) = k.nbf {
        attributes["nbf"] = json!(nbf);
    }
    if let Some(exp) = k.exp {
        attributes["exp"] = json!(exp);
    }
    let mut bundle = json!({
        "key": {
            "kid": format!("{base}/keys/{name}/{}", k.version),
            "kty": k.kty,
            "key_ops": k.key_ops,
            "n": b64url(&n),
            "e": b64url(&e),
        },
        "attributes": attributes,
    });
    if k.managed {
        bundle["managed"] = json!(true);
    }
    bundle
}

/// The attributes of a certificate version.
fn cert_attributes(v: &CertVersion) -> Value {
    json!({
        "enabled": true,
        "nbf": v.nbf,
        "exp": v.exp,
        "created": v.created,
        "updated": v.created,
        "recoveryLevel": "Recoverable+Purgeable",
        "recoverableDays": 90,
    })
}

/// A certificate version as `GET /certificates/{name}[/{version}]` answers it.
pub(super) fn cert_bundle(base: &str, name: &str, c: &Cert, v: &CertVersion) -> Value {
    json!({
        "id": format!("{base}/certificates/{name}/{}", v.version),
        "kid": format!("{base}/keys/{name}/{}", v.version),
        "sid": format!("{base}/secrets/{name}/{}", v.version),
        "x5t": b64url(&sha1(&v.der)),
        "cer": b64(&v.der),
        "attributes": cert_attributes(v),
        "policy": policy_json(base, name, c),
        "pending": {"id": format!("{base}/certificates/{name}/pending")},
    })
}

/// A version in `GET /certificates/{name}/versions` (a `CertificateItem`).
pub(super) fn cert_item(base: &str, name: &str, v: &CertVersion) -> Value {
    json!({
        "id": format!("{base}/certificates/{name}/{}", v.version),
        "x5t": b64url(&sha1(&v.der)),
        "attributes": cert_attributes(v),
    })
}

/// The policy as stored, with its id and attributes.
pub(super) fn policy_json(base: &str, name: &str, c: &Cert) -> Value {
    let mut p = c.policy.clone();
    p["id"] = json!(format!("{base}/certificates/{name}/policy"));
    p["attributes"] = json!({"enabled": true, "created": c.policy_created, "updated": c.policy_created});
    p
}

/// The pending operation of a self-issued certificate: `inProgress` when created, `completed`
/// (with its `target`) once the certificate exists.
pub(super) fn operation(base: &str, name: &str, csr_b64: &str, request_id: &str, completed: bool) -> Value {
    let mut op = json!({
        "id": format!("{base}/certificates/{name}/pending"),
        "issuer": {"name": "Self"},
        "csr": csr_b64,
        "cancellation_requested": false,
    });
    if completed {
        op["status"] = json!("completed");
        op["target"] = json!(format!("{base}/certificates/{name}"));
    } else {
        op["status"] = json!("inProgress");
        op["status_details"] = json!("Pending certificate created. Certificate request is in progress. This may take some time based on the issuer provider. Please check again later.");
    }
    op["request_id"] = json!(request_id);
    op
}
