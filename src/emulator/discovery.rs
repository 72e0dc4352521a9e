//! Discovery documents as Microsoft's client libraries fetch them: OpenID configuration (v1 and
//! v2), the JWKS holding the emulator's token-signing key, and instance discovery
//! (PROTOCOL.md section 6). URLs inside them use the emulator's own base URL (by the loopback
//! name the client called, `127.0.0.1` or `localhost`), never a host taken from the request.

use super::AppState;
use serde_json::{json, Value};
use x509_parser::prelude::{FromDer, X509Certificate};

/// The JWK of the token-signing certificate: `kty`, `use`, `kid`, `x5t`, `n`, `e`, `x5c`.
pub(super) fn jwk(st: &AppState) -> Value {
    let (n, e) = modulus_exponent(st.signing_cert.der()).unwrap_or_default();
    json!({
        "kty": "RSA",
        "use": "sig",
        "kid": st.kid,
        "x5t": st.kid,
        "n": crate::thumbprint::b64url(&n),
        "e": crate::thumbprint::b64url(&e),
        "x5c": [st.signing_cert.value_b64()],
        "issuer": format!("https://login.microsoftonline.com/{}/v2.0", st.tenant),
    })
}

/// Big-endian modulus and exponent of an RSA certificate, without sign-padding zeros.
pub(super) fn modulus_exponent(der: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let (_, x509) = X509Certificate::from_der(der).ok()?;
    match x509.public_key().parsed().ok()? {
        x509_parser::public_key::PublicKey::RSA(rsa) => {
            let strip = |b: &[u8]| {
                let i = b.iter().position(|&x| x != 0).unwrap_or(b.len().saturating_sub(1));
                b[i..].to_vec()
            };
            Some((strip(rsa.modulus), strip(rsa.exponent)))
        }
        _ => None,
    }
}

/// `/.well-known/openid-configuration`. `base` is the emulator's base URL, `tenant` the path
/// segment it asked for; for `common`/`organizations` the issuer keeps Entra's `{tenantid}`
/// placeholder.
pub(super) fn openid_configuration(st: &AppState, base: &str, tenant: &str, v2: bool) -> Value {
    let tid = if st.is_own_tenant(tenant) { st.tenant.as_str() } else { "{tenantid}" };
    // The v1 document publishes its keys under `common` whatever the tenant, as Entra's does.
    let (issuer, oauth, jwks_uri, scopes) = if v2 {
        (
            format!("https://login.microsoftonline.com/{tid}/v2.0"),
            "oauth2/v2.0",
            format!("{base}/{tenant}/discovery/v2.0/keys"),
            json!(["openid", "profile", "email", "offline_access"]),
        )
    } else {
        (
            format!("https://sts.windows.net/{tid}/"),
            "oauth2",
            format!("{base}/common/discovery/keys"),
            json!(["openid"]),
        )
    };
    json!({
        "token_endpoint": format!("{base}/{tenant}/{oauth}/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": jwks_uri,
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": scopes,
        "issuer": issuer,
        "request_uri_parameter_supported": false,
        "authorization_endpoint": format!("{base}/{tenant}/{oauth}/authorize"),
        "device_authorization_endpoint": format!("{base}/{tenant}/{oauth}/devicecode"),
        "end_session_endpoint": format!("{base}/{tenant}/{oauth}/logout"),
        "tenant_region_scope": "WW",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
    })
}

/// `/common/discovery/instance`: the emulator is its own (only) alias. The tenant is read from
/// the `authorization_endpoint` query parameter, as Entra does.
pub(super) fn instance_discovery(base: &str, host: &str, authorization_endpoint: Option<&str>) -> Value {
    let tenant = authorization_endpoint
        .and_then(|a| url::Url::parse(a).ok())
        .and_then(|u| u.path_segments().and_then(|mut s| s.next().map(str::to_string)))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "common".to_string());
    json!({
        "tenant_discovery_endpoint": format!("{base}/{tenant}/v2.0/.well-known/openid-configuration"),
        "api-version": "1.1",
        "metadata": [{ "preferred_network": host, "preferred_cache": host, "aliases": [host] }],
    })
}
