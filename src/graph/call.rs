//! Graph requests and answers as plain values, with no I/O (PROTOCOL.md sections 7 and 8), as
//! the token client's `prepare`/`interpret` are: the calls on one application, the list calls an
//! audit pages through, what an answer means, and the ids a failure names. The client
//! (`GraphClient::send`) sends them, so every rule here is unit-tested on plain values.

use super::objects::KeyCredential;
use crate::cert::Certificate;
use crate::http::{excerpt, Method};
use crate::ids::{well_known, ClientId};
use crate::secret::SecretString;
use crate::{Error, Result};
use serde_json::{json, Value};

/// Public cloud Graph.
pub const GRAPH_URL: &str = "https://graph.microsoft.com";
/// The resource Graph tokens are issued for.
pub const GRAPH_RESOURCE: &str = "https://graph.microsoft.com";
/// Proof `aud` in the addKey/removeKey documentation (Azure AD Graph's id).
pub const PROOF_AUD_AAD_GRAPH: &str = well_known::AZURE_AD_GRAPH;
/// Proof `aud` in newer documentation (Microsoft Graph's id).
pub const PROOF_AUD_MS_GRAPH: &str = well_known::MICROSOFT_GRAPH;
/// Lifetime of a proof, seconds (the documentation's nbf + 10 minutes).
pub const PROOF_LIFETIME: i64 = 600;

/// Graph's largest page for `GET /applications` (the default is 100).
pub const MAX_PAGE: u32 = 999;
/// The application properties an audit reads; naming `keyCredentials` makes Graph return the
/// certificate bodies, which the usability rule needs.
pub const APPLICATION_SELECT: &str = "id,appId,displayName,createdDateTime,keyCredentials,passwordCredentials";
/// The service principal properties an audit reads (SAML signing certificates live there).
pub const SERVICE_PRINCIPAL_SELECT: &str =
    "id,appId,displayName,keyCredentials,passwordCredentials,preferredTokenSigningKeyThumbprint";

/// One Graph request, built without I/O: method, path under the Graph base URL, and JSON body.
/// Its `Debug` leaves the body out: addKey and removeKey bodies hold a proof of possession.
#[derive(Clone)]
pub struct GraphCall {
    /// HTTP method.
    pub method: Method,
    /// Path and query, from `/v1.0/`.
    pub path: String,
    /// JSON body.
    pub body: Option<Value>,
}

impl std::fmt::Debug for GraphCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphCall").field("method", &self.method).field("path", &self.path).finish_non_exhaustive()
    }
}

impl GraphCall {
    /// `GET /v1.0/applications(appId='{app_id}')?$select=id,appId,keyCredentials`; a quote in
    /// the id is doubled, as OData string literals escape it.
    pub fn get_by_app_id(app_id: &str) -> GraphCall {
        let app_id = app_id.replace('\'', "''");
        let path = format!("/v1.0/applications(appId='{app_id}')?$select=id,appId,keyCredentials");
        GraphCall { method: Method::GET, path, body: None }
    }
    /// `GET /v1.0/applications/{id}?$select=id,appId,keyCredentials`.
    pub fn get(id: &str) -> GraphCall {
        let path = format!("/v1.0/applications/{id}?$select=id,appId,keyCredentials");
        GraphCall { method: Method::GET, path, body: None }
    }
    /// `PATCH /v1.0/applications/{id}` with the whole `keyCredentials` array.
    pub fn patch_key_credentials(id: &str, entries: &[KeyCredential]) -> GraphCall {
        let body = json!({ "keyCredentials": entries });
        GraphCall { method: Method::PATCH, path: format!("/v1.0/applications/{id}"), body: Some(body) }
    }
    /// `POST /v1.0/applications/{id}/addKey`: the certificate as a keyCredential, and the proof.
    pub fn add_key(id: &str, cert: &Certificate, display_name: Option<&str>, proof: &SecretString) -> GraphCall {
        let mut kc = json!({ "type": "AsymmetricX509Cert", "usage": "Verify", "key": cert.value_b64() });
        if let Some(d) = display_name {
            kc["displayName"] = json!(d);
        }
        let body = json!({ "keyCredential": kc, "passwordCredential": null, "proof": proof.expose() });
        GraphCall { method: Method::POST, path: format!("/v1.0/applications/{id}/addKey"), body: Some(body) }
    }
    /// `POST /v1.0/applications/{id}/removeKey` with the proof.
    pub fn remove_key(id: &str, key_id: &str, proof: &SecretString) -> GraphCall {
        let body = json!({ "keyId": key_id, "proof": proof.expose() });
        GraphCall { method: Method::POST, path: format!("/v1.0/applications/{id}/removeKey"), body: Some(body) }
    }
}

/// Which collection to list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Collection {
    /// `/v1.0/applications`.
    Applications,
    /// `/v1.0/servicePrincipals`.
    ServicePrincipals,
}

impl Collection {
    fn path(self) -> &'static str {
        match self {
            Collection::Applications => "/v1.0/applications",
            Collection::ServicePrincipals => "/v1.0/servicePrincipals",
        }
    }
    fn select(self) -> &'static str {
        match self {
            Collection::Applications => APPLICATION_SELECT,
            Collection::ServicePrincipals => SERVICE_PRINCIPAL_SELECT,
        }
    }
}

/// The first page of a collection: `$select` of only what the audit reads, `$top=999`, and, for
/// one application, `$filter=appId eq '...'` (one of the filters Graph supports by default).
/// Credential dates cannot be filtered on the server (Graph answers 400), so that is done here.
/// The id is quoted as an OData string literal and percent-encoded (a no-op for the GUIDs of
/// [`ClientId::guid`]), so no id can change the filter.
pub fn list_call(what: Collection, app_id: Option<&ClientId>) -> GraphCall {
    let mut path = format!("{}?$select={}&$top={MAX_PAGE}", what.path(), what.select());
    if let Some(id) = app_id {
        let literal: String =
            url::form_urlencoded::byte_serialize(id.as_str().replace('\'', "''").as_bytes()).collect();
        path.push_str(&format!("&$filter=appId%20eq%20'{literal}'"));
    }
    GraphCall { method: Method::GET, path, body: None }
}

/// Whether `path` lists a collection (`/v1.0/applications?...`, `/v1.0/servicePrincipals?...`),
/// whose pages may be far larger than one object.
pub fn is_collection(path: &str) -> bool {
    let p = path.split('?').next().unwrap_or("");
    p == Collection::Applications.path() || p == Collection::ServicePrincipals.path()
}

/// Turns Graph's answer to `method url` (status and body) into the JSON it returned (`None` for
/// an empty body) or a remote error naming Graph's code and message, with a hint for the usual
/// statuses.
pub fn interpret(method: &Method, url: &str, status: u16, text: &str) -> Result<Option<Value>> {
    if (200..300).contains(&status) {
        if text.trim().is_empty() {
            return Ok(None);
        }
        return serde_json::from_str(text).map(Some).map_err(|_| {
            Error::remote(format!("{method} {url}: HTTP {status} with a body that is not JSON: {}", excerpt(text)))
        });
    }
    let v: Option<Value> = serde_json::from_str(text).ok();
    let graph_code = graph_error_code(text);
    let (code, message) = match v.as_ref().and_then(|v| v.get("error")) {
        Some(e) => (
            graph_code.clone().unwrap_or_else(|| "unknown".into()),
            e.get("message").and_then(Value::as_str).unwrap_or("").to_string(),
        ),
        None => ("unknown".into(), excerpt(text)),
    };
    let hint = match status {
        401 => "the Graph token was refused: request it for https://graph.microsoft.com/.default",
        403 => "the app lacks permission: PATCH needs Application.ReadWrite.OwnedBy or .All; addKey/removeKey need a valid proof",
        404 => "no such application: check the application (client) id and the tenant",
        _ => "see the Graph error above",
    };
    let status = reqwest::StatusCode::from_u16(status).map_or_else(|_| status.to_string(), |s| s.to_string());
    let e = Error::remote(format!("{method} {url}: HTTP {status}: {code}: {message}")).with_hint(hint);
    Err(match graph_code {
        Some(c) => e.with_graph_code(c),
        None => e,
    })
}

/// Graph's `error.code` in an error body, when it has one.
pub fn graph_error_code(text: &str) -> Option<String> {
    let v: Value = serde_json::from_str(text).ok()?;
    v.get("error")?.get("code")?.as_str().filter(|c| !c.is_empty()).map(str::to_string)
}

/// What a failure quotes for support: our `client-request-id`, and Graph's `request-id` from
/// the error's `innerError` when there is one.
pub fn ids(client_request_id: &str, body: &str) -> String {
    let v: Option<Value> = serde_json::from_str(body).ok();
    match v.as_ref().and_then(|v| v.pointer("/error/innerError/request-id")).and_then(Value::as_str) {
        Some(r) => format!("client-request-id {client_request_id}, request-id {r}"),
        None => format!("client-request-id {client_request_id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://graph.microsoft.com/v1.0/applications/x";

    #[test]
    fn answers_become_json_or_errors_naming_graphs_code() {
        let get = Method::GET;
        assert_eq!(interpret(&get, URL, 200, r#"{"id":"x"}"#).unwrap(), Some(json!({"id": "x"})));
        assert_eq!(interpret(&get, URL, 204, "").unwrap(), None);
        let e = interpret(&get, URL, 200, "<html>").unwrap_err();
        assert_eq!(e.exit_code(), 3);
        assert!(e.message().contains("not JSON") && e.message().contains("<html>"), "{e}");
        let body = r#"{"error":{"code":"Request_ResourceNotFound","message":"Resource 'x' does not exist."}}"#;
        let e = interpret(&get, URL, 404, body).unwrap_err();
        assert_eq!(
            e.message(),
            format!("GET {URL}: HTTP 404 Not Found: Request_ResourceNotFound: Resource 'x' does not exist.")
        );
        assert!(e.hint().unwrap().contains("application (client) id"), "{:?}", e.hint());
        let e = interpret(&Method::PATCH, URL, 403, "denied").unwrap_err();
        assert!(e.message().contains("HTTP 403 Forbidden: unknown: denied"), "{e}");
        assert!(e.hint().unwrap().contains("Application.ReadWrite"));
    }

    #[test]
    fn calls_are_built_without_io_and_never_show_the_proof() {
        let c = GraphCall::get_by_app_id("a'b");
        assert_eq!(c.path, "/v1.0/applications(appId='a''b')?$select=id,appId,keyCredentials");
        let proof = SecretString::new("eyJ.proof.sig");
        let c = GraphCall::remove_key("obj", "kid", &proof);
        assert_eq!(c.method, Method::POST);
        assert_eq!(c.body, Some(json!({"keyId": "kid", "proof": "eyJ.proof.sig"})));
        assert!(!format!("{c:?}").contains("eyJ"), "{c:?}");
        let kc = KeyCredential { key_id: Some("k".into()), ..Default::default() };
        let c = GraphCall::patch_key_credentials("obj", &[kc]);
        let sent = json!({"keyCredentials": [{
            "customKeyIdentifier": null, "displayName": null, "endDateTime": null, "key": null, "keyId": "k",
            "startDateTime": null, "type": null, "usage": null
        }]});
        assert_eq!((c.path.as_str(), c.body), ("/v1.0/applications/obj", Some(sent)));
    }

    #[test]
    fn list_calls_select_only_what_is_read_and_ask_for_the_largest_page() {
        let c = list_call(Collection::Applications, None);
        assert_eq!(c.method, Method::GET);
        assert_eq!(
            c.path,
            "/v1.0/applications?$select=id,appId,displayName,createdDateTime,keyCredentials,passwordCredentials&$top=999"
        );
        let id = ClientId::guid("0A6F6F3C-0E1B-4C53-9E35-1A3C1E5C1D11", "--app-id").unwrap();
        let c = list_call(Collection::ServicePrincipals, Some(&id));
        assert!(c.path.starts_with("/v1.0/servicePrincipals?$select="), "{}", c.path);
        assert!(c.path.contains("preferredTokenSigningKeyThumbprint"), "{}", c.path);
        assert!(c.path.ends_with("&$filter=appId%20eq%20'0a6f6f3c-0e1b-4c53-9e35-1a3c1e5c1d11'"), "{}", c.path);
        // An id taken as given cannot close the literal or add to the filter.
        let c = list_call(Collection::Applications, Some(&ClientId::new("x'or&$top=1").unwrap()));
        assert!(c.path.ends_with("&$filter=appId%20eq%20'x%27%27or%26%24top%3D1'"), "{}", c.path);
    }

    #[test]
    fn only_collection_pages_are_collections() {
        assert!(is_collection(&list_call(Collection::Applications, None).path));
        assert!(is_collection("/v1.0/servicePrincipals?$top=999&$skiptoken=x"));
        assert!(!is_collection("/v1.0/applications/abc?$select=id"));
        assert!(!is_collection("/v1.0/applications(appId='x')?$select=id"));
    }

    #[test]
    fn a_failure_names_both_request_ids() {
        let body = r#"{"error":{"code":"Authorization_RequestDenied","message":"Insufficient privileges to complete the operation.","innerError":{"date":"2025-02-20T10:52:24","request-id":"r-1","client-request-id":"c-1"}}}"#;
        assert_eq!(ids("mine", body), "client-request-id mine, request-id r-1");
        assert_eq!(ids("mine", "<html>bad gateway</html>"), "client-request-id mine");
    }
}
