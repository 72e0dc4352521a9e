//! Client authentication at the token endpoint: a certificate assertion, or the secret in the
//! body or in `Authorization: Basic` (the methods the discovery document advertises).

use super::assertion::verify_assertion_at;
use super::{ClientProof, Req, ASSERTION_TYPE};
use crate::emulator::apps::App;
use crate::emulator::errors::Refusal;
use crate::emulator::signins::{KeyKind, UsedCredential};
use crate::secret::SecretString;
use crate::thumbprint::sha256;
use axum::http::HeaderMap;
use base64::Engine;
use std::sync::Arc;

/// Authenticates the client: the app must exist, and prove itself with a certificate assertion
/// or the secret.
pub(super) fn authenticate(
    req: &Req,
    client_id: &str,
    basic_secret: Option<&str>,
) -> Result<(Arc<App>, ClientProof), Refusal> {
    let st = req.st;
    let app = st.registry.find(client_id).ok_or_else(|| Refusal::app_not_found(client_id, req.tenant))?;
    let auth = if let Some(assertion) = req.field("client_assertion") {
        match req.field("client_assertion_type") {
            Some(ASSERTION_TYPE) => {}
            Some(_) => return Err(Refusal::malformed_jwt("Invalid client_assertion_type.")),
            None => return Err(Refusal::missing_parameter("client_assertion_type")),
        }
        if let Some(proof) = federated(req, &app, assertion)? {
            return Ok((app, proof));
        }
        let now = crate::dates::now();
        let key = verify_assertion_at(&app.credentials, assertion, client_id, &req.endpoints, now)?;
        *req.signed_in.borrow_mut() = key.key_id.clone().map(|key_id| {
            let used = UsedCredential {
                key_id,
                kind: KeyKind::Certificate,
                start: key.effective_start(),
                end: key.effective_end(),
            };
            (app.app_id.clone(), used)
        });
        ClientProof::Certificate
    } else if let Some(secret) = basic_secret.or(req.field("client_secret")) {
        // The emulator-wide `--secret-env` secret (no credential of the app: nothing recorded),
        // or one added to this app by addPassword.
        let shared = st.secret.as_ref().is_some_and(|s| constant_time_eq(s.expose().as_bytes(), secret.as_bytes()));
        let own = if shared {
            None
        } else {
            let used = crate::emulator::graph::passwords::matching_secret(&app, secret, crate::dates::now());
            Some(used.ok_or_else(|| Refusal::bad_secret(client_id))?)
        };
        *req.signed_in.borrow_mut() = own.map(|used| (app.app_id.clone(), used));
        ClientProof::Secret
    } else {
        return Err(Refusal::missing_credential());
    };
    Ok((app, auth))
}

/// A federated assertion: a token whose `iss` is an issuer URL (a certificate assertion's is the
/// client id), judged against the app's federated identity credentials with the issuer's keys.
/// `None` for any other assertion. Entra's tokens for such a sign-in are assertion-based, so they
/// say so as a certificate's do (`appidacr` 2).
fn federated(req: &Req, app: &App, assertion: &str) -> Result<Option<ClientProof>, Refusal> {
    let iss = crate::jwt::dangerous::decode(assertion).ok().and_then(|d| d.claim_str("iss").map(str::to_string));
    let is_url =
        iss.as_deref().and_then(|i| url::Url::parse(i).ok()).is_some_and(|u| matches!(u.scheme(), "https" | "http"));
    if !is_url {
        return Ok(None);
    }
    let fics = crate::fic::from_manifest(&app.json());
    let st = req.st;
    let now = crate::dates::now().unix_timestamp();
    crate::fic::diagnose::judge(&fics, assertion, |iss| st.issuers.keys_for(&st.base_urls, iss), now).map_err(|r| {
        if st.log {
            if let crate::fic::diagnose::Refused::IssuerUnreachable { detail, .. } = &r {
                eprintln!("keycred emulate: federated issuer unreachable: {detail}");
            }
        }
        Refusal::federated(&r)
    })?;
    Ok(Some(ClientProof::Certificate))
}

/// RFC 6749 section 2.3.1 `client_secret_basic`: `Authorization: Basic base64(id:secret)` where
/// id and secret are each form-urlencoded first. `None` without a Basic header (other schemes
/// are not client authentication and are ignored, as Entra does).
pub(super) fn basic_credentials(headers: &HeaderMap) -> Option<Result<(String, SecretString), Refusal>> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("Basic") {
        return None;
    }
    let bad = || {
        Refusal::malformed_request(
            "The Authorization: Basic header must hold base64(client_id:client_secret), each form-urlencoded.",
        )
    };
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).map_err(|_| bad());
    let text = decoded.and_then(|d| String::from_utf8(d).map_err(|_| bad()));
    Some(text.and_then(|t| {
        let (id, secret) = t.split_once(':').ok_or_else(bad)?;
        let (id, secret) = (form_decode(id), form_decode(secret));
        if id.is_empty() {
            return Err(Refusal::missing_parameter("client_id"));
        }
        Ok((id, SecretString::new(secret)))
    }))
}

/// Decodes one form-urlencoded component (`+` is a space, `%XX` a byte). A raw `&` or `=` in it
/// stays itself rather than splitting it.
pub(super) fn form_decode(s: &str) -> String {
    let escaped = s.replace('&', "%26").replace('=', "%3D");
    url::form_urlencoded::parse(escaped.as_bytes()).map(|(k, _)| k.into_owned()).next().unwrap_or_default()
}

pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    // Compare digests so the length of the registered secret does not show in timing either.
    let (x, y) = (sha256(a), sha256(b));
    x.iter().zip(y.iter()).fold(0u8, |acc, (p, q)| acc | (p ^ q)) == 0
}
