//! Who may use an emulated vault: the 401 challenge a request without a valid token gets, the
//! token checks (this tenant's signature, the vault resource as audience, lifetime), and the
//! 403 an app without access gets, in Key Vault's error shape
//! (`{"error":{"code","message","innererror"}}`).

use super::{Vault, Vaults};
use crate::emulator::state::AppState;
use crate::emulator::token::signed_by_tenant;
use crate::jwt::dangerous;
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// The app a valid token names.
pub(super) struct Caller {
    pub(super) app_id: String,
    oid: String,
    tid: String,
}

/// An error answer, boxed: it travels in `Result`s through every handler.
pub(super) type Refusal = Box<Response>;

/// A Key Vault error answer.
pub(super) fn error(status: StatusCode, code: &str, message: &str, inner: Option<&str>) -> Refusal {
    let mut body = json!({"error": {"code": code, "message": message}});
    if let Some(i) = inner {
        body["error"]["innererror"] = json!({"code": i});
    }
    Box::new((status, [(axum::http::header::CACHE_CONTROL, "no-cache")], Json(body)).into_response())
}

/// 401 with the challenge: `authorization` (authority and tenant) and `resource`, as Key Vault
/// answers a request without a token ("AKV10000: Request is missing a Bearer or PoP token.").
fn challenge(vaults: &Vaults, message: &str) -> Refusal {
    let mut r = error(StatusCode::UNAUTHORIZED, "Unauthorized", message, None);
    let value = format!("Bearer authorization=\"{}\", resource=\"{}\"", vaults.authority, vaults.resource);
    if let Ok(v) = value.parse() {
        r.headers_mut().insert(WWW_AUTHENTICATE, v);
    }
    r
}

/// The caller of a request, or the 401 to answer. The emulator's messages for a bad token are
/// its own (Key Vault's `AKV100xx` texts for them vary); the missing-token one is Key Vault's.
pub(super) fn authenticate(st: &AppState, headers: &HeaderMap) -> Result<Caller, Refusal> {
    let vaults = &st.vaults;
    let Some(token) = headers
        .get(AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
    else {
        return Err(challenge(vaults, "AKV10000: Request is missing a Bearer or PoP token."));
    };
    let invalid = |why: &str| challenge(vaults, &format!("AKV10022: Invalid token: {why}"));
    let d = dangerous::decode(token).map_err(|_| invalid("not a JWT."))?;
    if !signed_by_tenant(st, &d) {
        return Err(invalid("not signed by the tenant's token-signing key."));
    }
    let aud = d.claim_str("aud").unwrap_or_default();
    if !aud.trim_end_matches('/').eq_ignore_ascii_case(&vaults.resource) {
        return Err(challenge(
            vaults,
            &format!("AKV10022: Invalid audience. Expected {}, found: {aud}.", vaults.resource),
        ));
    }
    let now = crate::jwt::now_secs() as f64;
    match (d.claim_time("nbf"), d.claim_time("exp")) {
        (Some(nbf), Some(exp)) if nbf <= now + 300.0 && now < exp => {}
        _ => return Err(invalid("the token is expired or not yet valid.")),
    }
    let app_id = d.claim_str("appid").or_else(|| d.claim_str("azp")).unwrap_or_default().to_ascii_lowercase();
    Ok(Caller {
        app_id,
        oid: d.claim_str("oid").unwrap_or_default().to_string(),
        tid: d.claim_str("tid").unwrap_or(&st.tenant).to_string(),
    })
}

/// Whether `caller` may use `vault` for `permission` (`keys sign`, `certificates get`...): every
/// app when the vault names none, else the named ones. Otherwise Key Vault's access-policy 403.
pub(super) fn authorize(vault: &Vault, caller: &Caller, permission: &str) -> Result<(), Refusal> {
    if vault.apps.is_empty() || vault.apps.iter().any(|a| a == &caller.app_id) {
        return Ok(());
    }
    let message = format!(
        "The user, group or application 'appid={};oid={};iss=https://sts.windows.net/{}/' does not have {permission} \
         permission on key vault '{};location=keycred-emulator'. For help resolving this issue, please see \
         https://go.microsoft.com/fwlink/?linkid=2125287",
        caller.app_id, caller.oid, caller.tid, vault.name
    );
    Err(error(StatusCode::FORBIDDEN, "Forbidden", &message, Some("AccessDenied")))
}

/// `BadParameter` (400), for malformed requests.
pub(super) fn bad_parameter(message: &str) -> Refusal {
    error(StatusCode::BAD_REQUEST, "BadParameter", message, None)
}

/// A JSON body, or `BadParameter`.
pub(super) fn json_body(body: &[u8]) -> Result<Value, Refusal> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice::<Value>(body)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| bad_parameter("The request body is not a JSON object."))
}
