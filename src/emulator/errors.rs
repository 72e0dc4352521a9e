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
/// `AADSTSnnnn: `. (The client side reads these as `keycred::token::Refusal`.)
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// OAuth `error` value (`invalid_client`, `invalid_request`, ...).
    pub error: &'static str,
    /// AADSTS code.
    pub code: u32,
    /// Message text, without the `AADSTSnnnn: ` prefix and the trace lines.
    pub text: String,
    /// `suberror` (`consent_required`, `bad_token`, ...), when Entra sends one.
    pub suberror: Option<&'static str>,
}

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
        Refusal { error, code, text: text.into(), suberror: None }
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
        let mut body = json!({
            "error": self.error,
            "error_description": self.description(&trace, &corr, &ts),
            "error_codes": [code],
            "timestamp": ts,
            "trace_id": trace,
            "correlation_id": corr,
            "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
        });
        if let Some(sub) = self.suberror {
            body["suberror"] = json!(sub);
        }
        let mut resp = (self.status(), Json(body)).into_response();
        token_response_headers(&mut resp, &trace);
        resp.extensions_mut().insert(RequestLog { client_id, code: Some(code) });
        resp
    }

    /// `AADSTSnnnn: text` and the trace lines, as in `error_description`.
    pub fn description(&self, trace: &str, correlation: &str, timestamp: &str) -> String {
        format!(
            "AADSTS{}: {}\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}\r\nTimestamp: {timestamp}",
            self.code, self.text
        )
    }

    fn with_suberror(mut self, sub: &'static str) -> Self {
        self.suberror = Some(sub);
        self
    }

    // --- Endpoints and tenants -----------------------------------------------------------------

    /// 900561: a GET on a token endpoint.
    pub fn post_only() -> Self {
        Self::new(
            "invalid_request",
            900561,
            "The endpoint only accepts POST, OPTIONS requests. Received a GET request.",
        )
    }
    /// 50059: an app-only grant at `/common` or `/organizations`, which name no tenant.
    pub fn no_tenant_information() -> Self {
        Self::new(
            "invalid_request",
            50059,
            "No tenant-identifying information found in either the request or implied by any provided credentials.",
        )
    }

    // --- Authorization code, refresh token -----------------------------------------------------

    /// 70000: a code the emulator never issued, or issued to another client.
    pub fn bad_code() -> Self {
        Self::new("invalid_grant", 70000, "The provided value for the 'code' parameter is not valid.")
    }
    /// 54005: a code redeemed twice.
    pub fn code_redeemed() -> Self {
        Self::new(
            "invalid_grant",
            54005,
            "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing \
             refresh token.",
        )
    }
    /// 70008: a code past its lifetime.
    pub fn code_expired() -> Self {
        Self::new(
            "invalid_grant",
            70008,
            "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive \
             authorization request for this user and resource.",
        )
    }
    /// 500112: the exchange's `redirect_uri` differs from the authorize request's.
    pub fn redirect_mismatch(got: &str, want: &str) -> Self {
        Self::new(
            "invalid_client",
            500112,
            format!(
                "The reply address '{got}' does not match the reply address '{want}' provided when requesting \
                 Authorization code."
            ),
        )
    }
    /// 50011: a `redirect_uri` the application does not register.
    pub fn reply_url_not_registered(uri: &str, app_id: &str) -> Self {
        Self::new(
            "invalid_client",
            50011,
            format!(
                "The redirect URI '{uri}' specified in the request does not match the redirect URIs configured for \
                 the application '{app_id}'. Make sure the redirect URI sent in the request matches one added to your \
                 application in the Azure portal. Navigate to https://aka.ms/redirectUriMismatchError to learn more \
                 about how to fix this."
            ),
        )
    }
    /// 500113: the application registers no reply URL at all.
    pub fn no_reply_url() -> Self {
        Self::new("invalid_request", 500113, "No reply address is registered for the application.")
    }
    /// 501481: the PKCE verifier does not match the challenge (or is missing).
    pub fn pkce_mismatch() -> Self {
        Self::new(
            "invalid_grant",
            501481,
            "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
        )
    }
    /// 501491: a `code_challenge` that is not 43 to 128 characters of RFC 7636's unreserved set
    /// (Microsoft's error-code reference: "InvalidCodeChallengeMethodInvalidSize - Invalid size of
    /// Code_Challenge parameter.").
    pub fn code_challenge_size() -> Self {
        Self::new("invalid_request", 501491, "Invalid size of Code_Challenge parameter.")
    }
    /// 50149: a `code_challenge_method` other than `S256` and `plain` (Microsoft's error-code
    /// reference, entra-docs pull request 1538).
    pub fn code_challenge_method() -> Self {
        Self::new("invalid_request", 50149, "Invalid Code_Challenge_method parameter.")
    }
    /// 90015: an authorize request whose query is over the emulator's bound (Entra's text as users
    /// reported it: bitwarden/server issue 953, DuendeArchive/Support issue 770).
    pub fn query_too_long(limit: usize) -> Self {
        Self::new(
            "invalid_request",
            90015,
            format!(
                "Requested query string is too long. (This emulator reads at most {limit} bytes of sign-in \
                 parameters; Entra's own limit is not documented.)"
            ),
        )
    }
    /// 9002313 for a refresh token the emulator cannot read.
    pub fn bad_refresh_token() -> Self {
        Self::new("invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.")
    }
    /// 65004: the user clicked Cancel on the consent page.
    pub fn consent_declined() -> Self {
        Self::new("access_denied", 65004, "User declined to consent to access the app.")
    }
    /// 650053: a delegated scope the resource does not expose.
    pub fn unknown_scope(app_name: &str, scope: &str, resource_app_id: &str) -> Self {
        Self::new(
            "invalid_client",
            650053,
            format!(
                "The application '{app_name}' asked for scope '{scope}' that doesn't exist on the resource \
                 '{resource_app_id}'. Contact the app vendor."
            ),
        )
    }
    /// 70011 for a request whose scopes name more than one resource.
    pub fn several_resources(scope: &str) -> Self {
        Self::new(
            "invalid_scope",
            70011,
            format!(
                "The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid. \
                     Scopes of more than one resource were requested."
            ),
        )
    }
    /// 70011: `.default` asked together with named scopes, which Entra refuses in user flows as
    /// in client credentials (observed wording, e.g. oauth2-proxy issue 2158 and MSAL.js issues
    /// 1063 and 4071).
    pub fn default_combined(scope: &str) -> Self {
        let mut r = Self::invalid_scope(scope);
        r.text.push_str(" .default scope can't be combined with resource-specific scopes.");
        r
    }
    /// 901002: `resource` sent to a v2 endpoint, which takes `scope` instead (the AADSTS
    /// reference, <https://learn.microsoft.com/entra/identity-platform/reference-error-codes>).
    pub fn resource_parameter_not_supported() -> Self {
        Self::new("invalid_request", 901002, "The 'resource' request parameter is not supported.")
    }
    /// 50058 with `error=login_required`: `prompt=none` and no signed-in user to sign in silently.
    pub fn login_required() -> Self {
        Self::new("login_required", 50058, "A silent sign-in request was sent but no user is signed in.")
    }
    /// 65001 with `error=consent_required` (OpenID Connect Core 3.1.2.6): `prompt=none` and a
    /// permission the user has not consented to, which only an interactive request can ask.
    pub fn silent_consent_required(client_id: &str, name: &str) -> Self {
        let mut r = Self::consent_required(client_id, name);
        r.error = "consent_required";
        r.suberror = None;
        r
    }
    /// 70005: a `response_type` other than `code`.
    pub fn unsupported_response_type(rt: &str) -> Self {
        Self::new(
            "unsupported_response_type",
            70005,
            format!("The provided value for the input parameter 'response_type' is not allowed for this request. \
                     Expected value: code. Received value '{rt}'. The emulator serves the authorization code flow only."),
        )
    }

    // --- On-behalf-of --------------------------------------------------------------------------

    /// 500131: the incoming token was issued for another application.
    pub fn obo_wrong_audience(aud: &str, app_id: &str, name: &str) -> Self {
        Self::new(
            "invalid_grant",
            500131,
            format!(
                "Assertion audience does not match the Client app presenting the assertion. The audience in the \
                 assertion was '{aud}' and the expected audience is '{app_id}' or one of the Application Uris of this \
                 application with App ID '{app_id}'({name})."
            ),
        )
    }
    /// 500133: the incoming token has expired.
    pub fn obo_expired(now: &str, exp: &str) -> Self {
        Self::new(
            "invalid_grant",
            500133,
            format!(
                "Assertion is not within its valid time range. Ensure that the access token is not expired before \
                 using it for user assertion, or request a new token. Current time: {now}, expiry time of assertion \
                 {exp}."
            ),
        )
    }
    /// 7000114: an app-only token given as the user assertion.
    pub fn obo_app_only(app_id: &str) -> Self {
        Self::new(
            "unauthorized_client",
            7000114,
            format!("Application '{app_id}' is not allowed to make application on-behalf-of calls."),
        )
    }
    /// 50027 for an assertion that is not a token this tenant issued.
    pub fn obo_bad_assertion() -> Self {
        Self::new(
            "invalid_grant",
            50027,
            "JWT token is invalid or malformed. The assertion is not a token issued by this tenant.",
        )
    }
    /// 50013: an incoming user token whose signature does not verify with the tenant's key, as
    /// Entra answers on-behalf-of calls (its text goes on with the key's thumbprint and dates).
    pub fn obo_bad_signature() -> Self {
        Self::new(
            "invalid_grant",
            50013,
            "Assertion failed signature validation. [Reason - The provided signature value did not match the \
             expected signature value.]",
        )
    }
    /// 65001: no consent for the downstream API.
    pub fn consent_required(client_id: &str, name: &str) -> Self {
        Self::new(
            "invalid_grant",
            65001,
            format!(
                "The user or administrator has not consented to use the application with ID '{client_id}' named \
                 '{name}'. Send an interactive authorization request for this user and resource."
            ),
        )
        .with_suberror("consent_required")
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
    /// 70003: a grant type the emulator does not serve. Entra's sentence first; what follows is the
    /// emulator's own note, named as such (Entra serves more grants than the emulator does).
    pub fn unsupported_grant_type(grant: &str) -> Self {
        Self::new(
            "unsupported_grant_type",
            70003,
            format!(
                "The app requested an unsupported grant type '{grant}'. keycred's emulator serves only \
                 client_credentials, authorization_code, refresh_token and urn:ietf:params:oauth:grant-type:jwt-bearer \
                 with requested_token_use=on_behalf_of (on-behalf-of); Microsoft Entra ID serves more."
            ),
        )
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
    /// 700027, "The key was not found.": the thumbprint matches no registered certificate, in
    /// Entra's current wording (MSAL.js issue 8339, 2026; Keycloak issue 19425, 2023).
    pub fn key_not_found(thumbprint_hex: &str, client_id: &str) -> Self {
        Self::new("invalid_client", 700027, format!(
            "The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '{thumbprint_hex}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{client_id}'. Review the documentation at https://docs.microsoft.com/en-us/graph/deployments to determine the corresponding service endpoint and https://docs.microsoft.com/en-us/graph/api/application-get?view=graph-rest-1.0&tabs=http to build a query request URL, such as 'https://graph.microsoft.com/beta/applications/{client_id}']."
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

impl Refusal {
    /// A refused federated credential: Entra's code, `error` and text for it
    /// ([`crate::fic::diagnose`] lists them with their sources).
    pub fn federated(r: &crate::fic::diagnose::Refused) -> Self {
        Self::new(r.error(), r.code(), r.entra_text())
    }
}

/// The headers Entra puts on token answers: no caching anywhere, the JSON charset, and
/// `x-ms-request-id` equal to the body's `trace_id`.
pub fn token_response_headers(resp: &mut Response, trace_id: &str) {
    use axum::http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, EXPIRES, PRAGMA};
    let h = resp.headers_mut();
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store, no-cache"));
    h.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(EXPIRES, HeaderValue::from_static("-1"));
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    if let Ok(v) = HeaderValue::from_str(trace_id) {
        h.insert("x-ms-request-id", v);
    }
}
