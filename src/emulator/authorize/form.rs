//! The consent form's guard: a token binding the form to the sign-in request it was shown for
//! (an HMAC over the request's parameters, with an expiry), and the PKCE check of a request.

use super::{Kind, PageError, Pending, FORM_TOKEN};
use crate::emulator::errors::Refusal;
use crate::emulator::token::is_pkce_value;
use crate::emulator::AppState;
use axum::http::StatusCode;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::HashMap;

/// The sign-in request's own parameter names, sorted: without the consent form's fields.
pub(super) fn request_keys(params: &HashMap<String, String>) -> Vec<&String> {
    let mut keys: Vec<&String> =
        params.keys().filter(|k| !matches!(k.as_str(), "user" | "decision" | FORM_TOKEN)).collect();
    keys.sort();
    keys
}

/// The MAC binding a consent form to its page: the emulator's form key over the tenant and
/// endpoint as addressed, the expiry and the request's parameters (line breaks normalised, as
/// browsers send form values with CRLF).
pub(super) fn form_mac(
    st: &AppState,
    tenant: &str,
    kind: Kind,
    params: &HashMap<String, String>,
    exp: i64,
) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(&st.form_key).expect("HMAC takes keys of any length");
    let mut feed = |s: &str| {
        let s = s.replace("\r\n", "\n").replace('\r', "\n");
        mac.update(&(s.len() as u64).to_be_bytes());
        mac.update(s.as_bytes());
    };
    feed("keycred consent form");
    feed(tenant);
    feed(kind.path());
    feed(&exp.to_string());
    for k in request_keys(params) {
        feed(k);
        feed(&params[k]);
    }
    mac
}

/// `EXPIRY.MAC` for a consent page's form.
pub(super) fn form_token(
    st: &AppState,
    tenant: &str,
    kind: Kind,
    params: &HashMap<String, String>,
    exp: i64,
) -> String {
    let mac = form_mac(st, tenant, kind, params, exp).finalize().into_bytes();
    format!("{exp}.{}", crate::thumbprint::b64url(&mac))
}

/// A consent POST must carry the token of a page this emulator showed for these very
/// parameters, not yet expired: a form on another site cannot make one (it cannot read the page).
pub(super) fn check_form_token(
    st: &AppState,
    tenant: &str,
    kind: Kind,
    params: &HashMap<String, String>,
) -> Result<(), PageError> {
    let refused = || PageError {
        status: StatusCode::BAD_REQUEST,
        code: None,
        text: "This consent was not posted from the consent page this emulator showed for the request (its form \
               token is missing, altered, or over an hour old), so nothing was granted. Open the sign-in link again."
            .into(),
    };
    let (exp, mac) = params.get(FORM_TOKEN).and_then(|t| t.split_once('.')).ok_or_else(refused)?;
    let exp: i64 = exp.parse().map_err(|_| refused())?;
    let mac = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, mac).map_err(|_| refused())?;
    if exp < crate::jwt::now_secs() {
        return Err(refused());
    }
    form_mac(st, tenant, kind, params, exp).verify_slice(&mac).map_err(|_| refused())
}

/// RFC 7636 section 4.2: a `code_challenge` is 43 to 128 characters of the unreserved set (an
/// S256 one is 43); `code_challenge_method` is `S256` or `plain` (the default). Checked before a
/// code keeps them, with Entra's codes (501491, 50149).
pub(super) fn check_pkce(p: &Pending) -> Result<(), Refusal> {
    if p.kind.is_admin_consent() {
        return Ok(());
    }
    if p.param("code_challenge").is_some_and(|c| !is_pkce_value(c)) {
        return Err(Refusal::code_challenge_size());
    }
    if p.param("code_challenge_method").is_some_and(|m| m != "S256" && m != "plain") {
        return Err(Refusal::code_challenge_method());
    }
    Ok(())
}
