//! Entra-shaped error answers: the `AADSTSnnnn` codes, `error` values, HTTP statuses and texts of
//! PROTOCOL.md section 4, so that clients (and their tests) see what the real endpoint sends.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// Where Entra's messages send readers about certificate credentials.
const CERT_DOC: &str =
    "https://docs.microsoft.com/azure/active-directory/develop/active-directory-certificate-credentials";

/// One refusal the emulator sends, as Entra words it: `error`, the AADSTS code and the text after
/// `AADSTSnnnn: `. (The client side reads these as `keycred::token::EntraError`.)
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// OAuth `error` value (`invalid_client`, `invalid_request`, ...).
    pub error: &'static str,
    /// AADSTS code.
    pub code: u32,
    /// Message text, without the `AADSTSnnnn: ` prefix and the trace lines.
    pub text: String,
}

/// The former name of [`Refusal`], kept while branches written against it are merged.
#[doc(hidden)]
#[allow(dead_code)]
pub type EntraError = Refusal;

/// What the logging layer reads back from a response: never a secret, only ids and codes.
#[derive(Clone, Debug, Default)]
pub struct RequestLog {
    /// The `client_id` form field, when the request had one.
    pub client_id: Option<String>,
    /// The AADSTS code of a refusal.
    pub code: Option<u32>,
}

impl Refusal {
    fn new(error: &'static str, code: u32, text: impl Into<String>) -> Self {
        Refusal { error, code, text: text.into() }
    }

    /// `invalid_client` answers 401, everything else 400 (PROTOCOL.md section 4).
    pub fn status(&self) -> StatusCode {
        if self.error == "invalid_client" {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::BAD_REQUEST
        }
    }

    /// The JSON answer. `correlation_id` echoes the client's `client-request-id` when sent, as
    /// Entra does, so client logs can be matched with ours.
    pub fn into_response(self, correlation_id: Option<String>, client_id: Option<String>) -> Response {
        let now = time::OffsetDateTime::now_utc();
        let ts = now
            .format(time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]Z"))
            .unwrap_or_default();
        let trace = uuid::Uuid::new_v4().to_string();
        let corr = correlation_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let code = self.code;
        let body = json!({
            "error": self.error,
            "error_description": format!(
                "AADSTS{code}: {}\r\nTrace ID: {trace}\r\nCorrelation ID: {corr}\r\nTimestamp: {ts}",
                self.text
            ),
            "error_codes": [code],
            "timestamp": ts,
            "trace_id": trace,
            "correlation_id": corr,
            "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
        });
        let mut resp = (self.status(), Json(body)).into_response();
        resp.extensions_mut().insert(RequestLog { client_id, code: Some(code) });
        resp
    }

    // --- Request shape -------------------------------------------------------------------------

    /// 900144: a required form field is missing.
    pub fn missing_parameter(name: &str) -> Self {
        Self::new(
            "invalid_request",
            900144,
            format!("The request body must contain the following parameter: '{name}'."),
        )
    }
    /// 9002313, Entra's code for a request it cannot make sense of: used for a malformed
    /// `Authorization: Basic` header, for client authentication sent both in that header and in
    /// the body, and for a body `client_id` that contradicts the header.
    pub fn malformed_request(detail: &str) -> Self {
        Self::new("invalid_request", 9002313, format!("Invalid request. Request is malformed or invalid. {detail}"))
    }
    /// 7000218: neither `client_assertion` nor `client_secret`.
    pub fn missing_credential() -> Self {
        Self::new(
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        )
    }
    /// 70003: a grant type the emulator does not serve.
    pub fn unsupported_grant_type(grant: &str) -> Self {
        Self::new("unsupported_grant_type", 70003, format!("The app requested an unsupported grant type '{grant}'."))
    }
    /// 1002012: client credentials with a scope that does not end in `/.default`.
    pub fn scope_not_default(scope: &str) -> Self {
        Self::new(
            "invalid_scope",
            1002012,
            format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value \
                 with /.default suffixed to the resource identifier (application ID URI)."
            ),
        )
    }
    /// 70011: a scope naming several resources, or none.
    pub fn invalid_scope(scope: &str) -> Self {
        Self::new(
            "invalid_scope",
            70011,
            format!("The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."),
        )
    }

    // --- Tenant, application, resource ---------------------------------------------------------

    /// 90002: a well-formed tenant that is not the emulator's.
    pub fn tenant_not_found(tenant: &str) -> Self {
        Self::new(
            "invalid_tenant",
            90002,
            format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into \
                 the correct cloud. Check with your subscription administrator, this may happen if there are no \
                 active subscriptions for the tenant."
            ),
        )
    }
    /// 900023: the tenant segment is neither a GUID nor a DNS name.
    pub fn tenant_malformed(tenant: &str) -> Self {
        Self::new(
            "invalid_request",
            900023,
            format!("Specified tenant identifier '{tenant}' is neither a valid DNS name, nor a valid external domain."),
        )
    }
    /// 700016: no manifest has this `appId`.
    pub fn app_not_found(client_id: &str, tenant: &str) -> Self {
        Self::new(
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen \
                 if the application has not been installed by the administrator of the tenant or consented to by any \
                 user in the tenant. You may have sent your authentication request to the wrong tenant."
            ),
        )
    }
    /// 500011: a resource that is neither granted, nor Graph, nor the app itself.
    pub fn resource_not_found(resource: &str, tenant: &str) -> Self {
        Self::new(
            "invalid_resource",
            500011,
            format!(
                "The resource principal named {resource} was not found in the tenant named {tenant}. This can happen \
                 if the application has not been installed by the administrator of the tenant or consented to by any \
                 user in the tenant. You might have sent your authentication request to the wrong tenant."
            ),
        )
    }

    // --- Client authentication -----------------------------------------------------------------

    /// 7000215: wrong (or no registered) client secret.
    pub fn bad_secret(client_id: &str) -> Self {
        Self::new(
            "invalid_client",
            7000215,
            format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret \
                 value, not the client secret ID, for a secret added to app '{client_id}'."
            ),
        )
    }
    /// 50027: the assertion is not a readable JWT (or misses what every assertion has).
    pub fn malformed_jwt(detail: &str) -> Self {
        Self::new("invalid_request", 50027, format!("JWT token is invalid or malformed. {detail}").trim().to_string())
    }
    /// 50027: no `x5t` / `x5t#S256` in the assertion header.
    pub fn no_thumbprint() -> Self {
        Self::new("invalid_request", 50027, "Invalid JWT token. No certificate thumbprint specified in token header.")
    }
    /// 5002738: an algorithm Entra does not accept for client assertions (`none`, HS256, ES256...).
    pub fn unsupported_alg(alg: &str) -> Self {
        Self::new(
            "invalid_request",
            5002738,
            format!("Invalid JWT token. '{alg}' is not a supported signature algorithm. Supported signing algorithms are: 'RS256,PS256'"),
        )
    }
    /// 700027, "The key was not found.": the thumbprint matches no registered certificate.
    pub fn key_not_found(thumbprint_hex: &str, client_id: &str) -> Self {
        Self::new("invalid_client", 700027, format!(
            "Client assertion contains an invalid signature. [Reason - The key was not found., Thumbprint of key used by client: '{thumbprint_hex}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{client_id}'. Review the documentation at https://docs.microsoft.com/en-us/graph/deployments to determine the corresponding service endpoint and https://docs.microsoft.com/en-us/graph/api/application-get?view=graph-rest-1.0&tabs=http to build a query request URL, such as 'https://graph.microsoft.com/beta/applications/{client_id}']."
        ))
    }
    /// 700027 for a registered key used outside its start/end dates.
    pub fn key_out_of_dates(thumbprint_hex: &str, found: &str, expired: bool) -> Self {
        let reason = if expired { "The key used is expired." } else { "The key used is not yet valid." };
        Self::new(
            "invalid_client",
            700027,
            format!(
                "Client assertion contains an invalid signature. [Reason - {reason}, Thumbprint of key used by client: '{thumbprint_hex}', Found key '{found}']"
            ),
        )
    }
    /// 700027 for a signature that the registered key does not verify.
    pub fn bad_signature(thumbprint_hex: &str, found: &str) -> Self {
        Self::new(
            "invalid_client",
            700027,
            format!(
                "Client assertion contains an invalid signature. [Reason - The provided signature value did not match the expected signature value., Thumbprint of key used by client: '{thumbprint_hex}', Found key '{found}']"
            ),
        )
    }
    /// 700023: `aud` is not the token endpoint that was called.
    pub fn bad_audience() -> Self {
        Self::new(
            "invalid_client",
            700023,
            format!(
                "Client assertion audience claim does not match Realm issuer. Review the documentation at {CERT_DOC} ."
            ),
        )
    }
    /// 5002741: `aud` is an array of more than one value (a one-element array is its element).
    pub fn multiple_audiences() -> Self {
        Self::new(
            "invalid_client",
            5002741,
            format!("Client assertion contains more than one audience value. Review the documentation at {CERT_DOC} ."),
        )
    }
    /// 50048: `sub` differs from `iss`.
    pub fn subject_mismatch(client_id: &str) -> Self {
        Self::new(
            "invalid_client",
            50048,
            format!("Subject mismatches Issuer claim in the client assertion for application '{client_id}'."),
        )
    }
    /// 700021: `iss` differs from the `client_id` form field.
    pub fn issuer_not_client() -> Self {
        Self::new(
            "invalid_client",
            700021,
            format!(
                "Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at {CERT_DOC} ."
            ),
        )
    }
    /// 700024: `exp` past or `nbf` future, beyond the allowed skew.
    pub fn outside_time_range(now: &str, nbf: &str, exp: &str) -> Self {
        Self::new(
            "invalid_client",
            700024,
            format!(
                "Client assertion is not within its valid time range. Current time: {now}, assertion valid from {nbf}, expiry time of assertion {exp}. Review the documentation at {CERT_DOC} ."
            ),
        )
    }
}
