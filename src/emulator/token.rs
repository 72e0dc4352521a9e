//! The token endpoints (v1 `/oauth2/token`, v2 `/oauth2/v2.0/token`): request checks, client
//! authentication (certificate assertion, or secret in the body or in `Authorization: Basic`, the
//! methods the discovery document advertises), and issuing the access token, whose `aud` is the
//! resource URI in v1 and the resource's app id in v2.
//!
//! Checks run in the order that leaks least: the assertion's key and signature are verified
//! before any of its claims is judged, so an unsigned or forged token learns nothing about what
//! else would have been accepted.

use super::errors::{EntraError, RequestLog};
use super::{AppState, EndpointVersion};
use crate::cert::SignatureAlg;
use crate::jwt::{self, dangerous};
use crate::manifest::KeyCredential;
use crate::secret::SecretString;
use crate::thumbprint::{b64url, hex_upper, sha256};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use time::OffsetDateTime;

/// Allowed clock skew for `exp` and `nbf`, seconds (Entra allows five minutes).
pub const CLOCK_SKEW: i64 = 300;
/// Lifetime of issued access tokens, seconds (Entra's usual `expires_in`).
pub const TOKEN_LIFETIME: i64 = 3599;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const GRAPH: &str = "https://graph.microsoft.com";
pub(super) const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";

/// First-party resources whose app ids are public: a v2 token for them carries this `aud`.
const WELL_KNOWN_RESOURCES: [(&str, &str); 3] = [
    (GRAPH, GRAPH_APP_ID),
    ("https://graph.windows.net", "00000002-0000-0000-c000-000000000000"),
    ("https://manage.office.com", "c5393580-f805-4401-95e8-94b7a6ef2fc2"),
];

/// How the client proved itself: decides `appidacr`/`azpacr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ClientAuth {
    Secret,
    Certificate,
}

/// Handles one token request. `endpoint` is the exact URL the request hit (scheme, Host, path),
/// the only `aud` an assertion may carry.
pub(super) fn handle(
    st: &AppState,
    tenant: &str,
    version: EndpointVersion,
    endpoint: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let form: HashMap<String, String> = {
        let mut m = HashMap::new();
        for (k, v) in url::form_urlencoded::parse(body) {
            // Entra reads the first occurrence; empty values count as missing.
            if !v.is_empty() {
                m.entry(k.into_owned()).or_insert_with(|| v.into_owned());
            }
        }
        m
    };
    let basic = basic_credentials(headers);
    let client_id = match &basic {
        Some(Ok((id, _))) => Some(id.as_str()),
        _ => form.get("client_id").map(String::as_str),
    }
    .map(|s| s.chars().take(64).collect::<String>());
    let correlation = headers
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| uuid::Uuid::parse_str(v).is_ok())
        .map(str::to_string);
    match issue(st, tenant, version, endpoint, &form, basic) {
        Ok(body) => {
            let mut resp = Json(body).into_response();
            resp.extensions_mut().insert(RequestLog { client_id, code: None });
            resp
        }
        Err(e) => e.into_response(correlation, client_id),
    }
}

fn issue(
    st: &AppState,
    tenant: &str,
    version: EndpointVersion,
    endpoint: &str,
    form: &HashMap<String, String>,
    basic: Option<Result<(String, SecretString), EntraError>>,
) -> Result<Value, EntraError> {
    st.check_tenant(tenant)?;
    let field = |name: &str| form.get(name).map(String::as_str);
    let grant_type = field("grant_type").ok_or_else(|| EntraError::missing_parameter("grant_type"))?;
    let basic = basic.transpose()?;
    let client_id = match &basic {
        Some((id, _)) => {
            if field("client_assertion").is_some() || field("client_secret").is_some() {
                return Err(EntraError::malformed_request(
                    "The client authenticated both with an Authorization: Basic header and with a client_assertion or \
                     client_secret in the request body; use one method only.",
                ));
            }
            if field("client_id").is_some_and(|f| !f.eq_ignore_ascii_case(id)) {
                return Err(EntraError::malformed_request(
                    "The 'client_id' parameter in the request body does not match the client id in the \
                     Authorization: Basic header.",
                ));
            }
            id.as_str()
        }
        None => field("client_id").ok_or_else(|| EntraError::missing_parameter("client_id"))?,
    };
    let resource = match version {
        EndpointVersion::V1 => field("resource").ok_or_else(|| EntraError::missing_parameter("resource"))?.to_string(),
        EndpointVersion::V2 => {
            resource_from_scope(field("scope").ok_or_else(|| EntraError::missing_parameter("scope"))?)?
        }
    };
    if grant_type != "client_credentials" {
        return Err(EntraError::unsupported_grant_type(grant_type));
    }
    let app = st.registry.find(client_id).ok_or_else(|| EntraError::app_not_found(client_id, tenant))?;
    let auth = if let Some(assertion) = field("client_assertion") {
        match field("client_assertion_type") {
            Some(ASSERTION_TYPE) => {}
            Some(_) => return Err(EntraError::malformed_jwt("Invalid client_assertion_type.")),
            None => return Err(EntraError::missing_parameter("client_assertion_type")),
        }
        verify_assertion(&app.credentials, assertion, client_id, endpoint, crate::dates::now())?;
        ClientAuth::Certificate
    } else if let Some(secret) = basic.as_ref().map(|(_, s)| s.expose()).or(field("client_secret")) {
        // The emulator-wide `--secret-env` secret, or one added to this app by addPassword.
        let ok = st.secret.as_ref().is_some_and(|s| constant_time_eq(s.expose().as_bytes(), secret.as_bytes()))
            || super::graph::passwords::secret_matches(&app, secret, crate::dates::now());
        if !ok {
            return Err(EntraError::bad_secret(client_id));
        }
        ClientAuth::Secret
    } else {
        return Err(EntraError::missing_credential());
    };
    let roles =
        st.roles_for(&resource, &app.app_id).ok_or_else(|| EntraError::resource_not_found(&resource, tenant))?;

    let now = jwt::now_secs();
    let exp = now + TOKEN_LIFETIME;
    let acr = match auth {
        ClientAuth::Secret => "1",
        ClientAuth::Certificate => "2",
    };
    let tid = &st.tenant;
    let uti = {
        use rand::RngCore;
        let mut b = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut b);
        b64url(&b)
    };
    let mut header = Map::new();
    header.insert("typ".into(), json!("JWT"));
    let mut claims = Map::new();
    // v1 tokens name the resource as it was asked for; v2 tokens name it by its app id.
    let aud = match version {
        EndpointVersion::V1 => resource.clone(),
        // The emulator's own URL names Graph (see `AppState::is_graph`).
        EndpointVersion::V2 if st.is_own_url(&resource) => GRAPH_APP_ID.to_string(),
        EndpointVersion::V2 => resource_app_id(&resource),
    };
    claims.insert("aud".into(), json!(aud));
    match version {
        EndpointVersion::V1 => {
            header.insert("x5t".into(), json!(st.kid));
            header.insert("kid".into(), json!(st.kid));
            claims.insert("iss".into(), json!(format!("https://sts.windows.net/{tid}/")));
            claims.insert("iat".into(), json!(now));
            claims.insert("nbf".into(), json!(now));
            claims.insert("exp".into(), json!(exp));
            claims.insert("appid".into(), json!(app.app_id));
            claims.insert("appidacr".into(), json!(acr));
            claims.insert("idp".into(), json!(format!("https://sts.windows.net/{tid}/")));
        }
        EndpointVersion::V2 => {
            header.insert("kid".into(), json!(st.kid));
            claims.insert("iss".into(), json!(format!("https://login.microsoftonline.com/{tid}/v2.0")));
            claims.insert("iat".into(), json!(now));
            claims.insert("nbf".into(), json!(now));
            claims.insert("exp".into(), json!(exp));
            claims.insert("azp".into(), json!(app.app_id));
            claims.insert("azpacr".into(), json!(acr));
        }
    }
    claims.insert("idtyp".into(), json!("app"));
    claims.insert("oid".into(), json!(app.sp_object_id));
    if !roles.is_empty() {
        claims.insert("roles".into(), json!(roles));
    }
    claims.insert("sub".into(), json!(app.sp_object_id));
    claims.insert("tid".into(), json!(tid));
    claims.insert("uti".into(), json!(uti));
    claims.insert(
        "ver".into(),
        json!(match version {
            EndpointVersion::V1 => "1.0",
            EndpointVersion::V2 => "2.0",
        }),
    );
    let token = jwt::sign(&st.signing_key, SignatureAlg::Rs256, header, &Value::Object(claims))
        .map_err(|_| EntraError::malformed_jwt("The emulator could not sign the token."))?;
    Ok(match version {
        EndpointVersion::V1 => json!({
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME.to_string(),
            "ext_expires_in": TOKEN_LIFETIME.to_string(),
            "expires_on": exp.to_string(),
            "not_before": now.to_string(),
            "resource": resource,
            "access_token": token,
        }),
        EndpointVersion::V2 => json!({
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME,
            "ext_expires_in": TOKEN_LIFETIME,
            "access_token": token,
        }),
    })
}

/// The resource of a client-credentials `scope`: exactly one `<resource>/.default` (OIDC scopes
/// such as `openid` are ignored, as Entra does). `https://x//.default` names `https://x/`.
fn resource_from_scope(scope: &str) -> Result<String, EntraError> {
    const OIDC: [&str; 4] = ["openid", "profile", "offline_access", "email"];
    let scopes: Vec<&str> = scope.split_whitespace().filter(|s| !OIDC.contains(s)).collect();
    if let Some(bad) = scopes.iter().find(|s| !s.ends_with("/.default")) {
        return Err(EntraError::scope_not_default(bad));
    }
    match scopes.as_slice() {
        [one] => {
            let r = &one[..one.len() - "/.default".len()];
            if r.is_empty() {
                Err(EntraError::invalid_scope(scope))
            } else {
                Ok(r.to_string())
            }
        }
        _ => Err(EntraError::invalid_scope(scope)),
    }
}

/// The app id of a resource, what v2 tokens carry in `aud` (PROTOCOL.md section 5): the public
/// id of a well-known first-party resource, the GUID of `api://{guid}` or of a resource given as a
/// GUID, and for any other URI an id derived from it ([`super::apps::derived_id`] with kind
/// "resource" and the URI without trailing `/`), the same in every run. Case and a trailing `/`
/// do not matter, as for Entra's resource URIs.
pub(super) fn resource_app_id(resource: &str) -> String {
    let r = resource.trim_end_matches('/');
    let guid = |s: &str| (s.len() == 36).then(|| uuid::Uuid::try_parse(s).ok()).flatten().map(|g| g.to_string());
    if let Some(g) = guid(r) {
        return g;
    }
    if let Some(g) = r.get(..6).filter(|p| p.eq_ignore_ascii_case("api://")).and_then(|_| guid(&r[6..])) {
        return g;
    }
    if let Some((_, id)) = WELL_KNOWN_RESOURCES.iter().find(|(uri, _)| uri.eq_ignore_ascii_case(r)) {
        return id.to_string();
    }
    super::apps::derived_id("resource", r)
}

/// Whether two resource identifiers name the same resource: the same app id, so Graph's URI and
/// its GUID match, as do `api://{guid}` and the GUID.
pub(super) fn same_resource(a: &str, b: &str) -> bool {
    resource_app_id(a) == resource_app_id(b)
}

/// Whether `r` is Microsoft Graph or the app itself, which every app may ask tokens for.
pub(super) fn is_builtin_resource(r: &str, app_id: &str) -> bool {
    same_resource(r, GRAPH) || same_resource(r, app_id)
}

/// RFC 6749 section 2.3.1 `client_secret_basic`: `Authorization: Basic base64(id:secret)` where
/// id and secret are each form-urlencoded first. `None` without a Basic header (other schemes
/// are not client authentication and are ignored, as Entra does).
fn basic_credentials(headers: &HeaderMap) -> Option<Result<(String, SecretString), EntraError>> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("Basic") {
        return None;
    }
    let bad = || {
        EntraError::malformed_request(
            "The Authorization: Basic header must hold base64(client_id:client_secret), each form-urlencoded.",
        )
    };
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).map_err(|_| bad());
    let text = decoded.and_then(|d| String::from_utf8(d).map_err(|_| bad()));
    Some(text.and_then(|t| {
        let (id, secret) = t.split_once(':').ok_or_else(bad)?;
        let (id, secret) = (form_decode(id), form_decode(secret));
        if id.is_empty() {
            return Err(EntraError::missing_parameter("client_id"));
        }
        Ok((id, SecretString::new(secret)))
    }))
}

/// Decodes one form-urlencoded component (`+` is a space, `%XX` a byte). A raw `&` or `=` in it
/// stays itself rather than splitting it.
fn form_decode(s: &str) -> String {
    let escaped = s.replace('&', "%26").replace('=', "%3D");
    url::form_urlencoded::parse(escaped.as_bytes()).map(|(k, _)| k.into_owned()).next().unwrap_or_default()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    // Compare digests so the length of the registered secret does not show in timing either.
    let (x, y) = (sha256(a), sha256(b));
    x.iter().zip(y.iter()).fold(0u8, |acc, (p, q)| acc | (p ^ q)) == 0
}

/// Entra's `Found key 'Start=MM/dd/yyyy HH:mm:ss, End=...'`.
fn found_key(c: &KeyCredential) -> String {
    let f = time::macros::format_description!("[month]/[day]/[year] [hour]:[minute]:[second]");
    let start = c.start.or(c.certificate.as_ref().map(|x| x.not_before()));
    let end = c.end.or(c.certificate.as_ref().map(|x| x.not_after()));
    let fmt = |t: Option<OffsetDateTime>| t.and_then(|t| t.format(&f).ok()).unwrap_or_default();
    format!("Start={}, End={}", fmt(start), fmt(end))
}

/// Entra's timestamp style in 700024 messages (`2024-01-31T12:00:00.0000000Z`).
fn entra_time(secs: f64) -> String {
    let t = OffsetDateTime::from_unix_timestamp(secs.floor() as i64).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].0000000Z");
    t.format(&f).unwrap_or_default()
}

/// Validates a client assertion for the app whose `keyCredentials` are `creds`.
pub(super) fn verify_assertion(
    creds: &[KeyCredential],
    assertion: &str,
    client_id: &str,
    endpoint: &str,
    now: OffsetDateTime,
) -> Result<(), EntraError> {
    let d = dangerous::decode(assertion).map_err(|_| EntraError::malformed_jwt(""))?;
    let alg = match d.header.get("alg") {
        Some(Value::String(a)) => a.as_str(),
        _ => return Err(EntraError::malformed_jwt("The token header has no 'alg'.")),
    };
    let alg = SignatureAlg::from_jose(alg).ok_or_else(|| EntraError::unsupported_alg(alg))?;

    // Key selection by thumbprint only: `kid`, `jku`, `x5u` are ignored and `x5c` never adds a
    // key (subject-name/issuer trust is not emulated), so a certificate must be registered.
    let header_str = |n: &str| d.header.get(n).and_then(Value::as_str);
    let (thumb, s256) = match (header_str("x5t"), header_str("x5t#S256")) {
        (Some(t), _) => (t, false),
        (None, Some(t)) => (t, true),
        (None, None) => return Err(EntraError::no_thumbprint()),
    };
    let thumb = URL_SAFE_NO_PAD.decode(thumb.trim_end_matches('=')).map_err(|_| EntraError::no_thumbprint())?;
    let matches = |c: &KeyCredential| {
        c.certificate.as_ref().is_some_and(|x| {
            if s256 {
                sha256(x.der())[..] == thumb[..]
            } else {
                x.sha1()[..] == thumb[..]
            }
        })
    };
    let thumb_hex = hex_upper(&thumb);
    let candidates: Vec<&KeyCredential> = creds.iter().filter(|c| matches(c)).collect();
    if candidates.is_empty() {
        return Err(EntraError::key_not_found(&thumb_hex, client_id));
    }
    let Some(cred) = candidates.iter().find(|c| c.is_valid_at(now)) else {
        let c = candidates[0];
        let end = c.end.or(c.certificate.as_ref().map(|x| x.not_after()));
        let expired = end.is_some_and(|e| now > e);
        return Err(EntraError::key_out_of_dates(&thumb_hex, &found_key(c), expired));
    };
    let public = cred.certificate.as_ref().and_then(|c| c.rsa_public_key()).unwrap_or_default();
    if !d.verify(alg, public) {
        return Err(EntraError::bad_signature(&thumb_hex, &found_key(cred)));
    }

    // RFC 7519 allows `aud` as a string or an array; a one-element array names one audience and
    // is judged as that string. Only a longer array is "more than one audience value".
    let aud = match d.claims.get("aud") {
        Some(Value::Array(a)) if a.len() > 1 => return Err(EntraError::multiple_audiences()),
        Some(Value::Array(a)) => a.first(),
        other => other,
    };
    match aud {
        Some(Value::String(a)) if a.trim_end_matches('/').eq_ignore_ascii_case(endpoint.trim_end_matches('/')) => {}
        _ => return Err(EntraError::bad_audience()),
    }
    let iss = d.claim_str("iss").unwrap_or_default();
    if d.claim_str("sub") != Some(iss) {
        return Err(EntraError::subject_mismatch(client_id));
    }
    if !iss.eq_ignore_ascii_case(client_id) {
        return Err(EntraError::issuer_not_client());
    }
    let exp = d.claim_time("exp").ok_or_else(|| EntraError::malformed_jwt("The token has no valid 'exp' claim."))?;
    let nbf = d.claim_time("nbf");
    let now_s = now.unix_timestamp() as f64;
    if exp + (CLOCK_SKEW as f64) < now_s || nbf.is_some_and(|n| n - (CLOCK_SKEW as f64) > now_s) {
        return Err(EntraError::outside_time_range(
            &entra_time(now_s),
            &entra_time(nbf.unwrap_or(now_s)),
            &entra_time(exp),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_name_exactly_one_default_resource() {
        assert_eq!(resource_from_scope("https://graph.microsoft.com/.default").unwrap(), GRAPH);
        assert_eq!(resource_from_scope("https://x.example/api//.default").unwrap(), "https://x.example/api/");
        assert_eq!(resource_from_scope("openid api://a/.default").unwrap(), "api://a");
        assert_eq!(resource_from_scope("https://graph.microsoft.com/User.Read").unwrap_err().code, 1002012);
        assert_eq!(resource_from_scope("api://a/.default api://b/.default").unwrap_err().code, 70011);
        assert_eq!(resource_from_scope("openid").unwrap_err().code, 70011);
    }

    #[test]
    fn resources_compare_loosely() {
        assert!(same_resource("https://graph.microsoft.com/", "https://Graph.microsoft.com"));
        assert!(same_resource(GRAPH_APP_ID, GRAPH));
        assert!(!same_resource("api://a", "api://b"));
        assert!(is_builtin_resource(
            "api://11111111-1111-1111-1111-111111111111",
            "11111111-1111-1111-1111-111111111111"
        ));
        assert!(!is_builtin_resource("https://other.example", "x"));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
    }
}
