//! Token requests against a loopback token endpoint that records the posted form: every field
//! is checked by value (the assertion's signature with openssl), and the server answers
//! real-shaped v1 and v2 bodies, Entra errors, retries, HTML pages, or nothing at all.

use crate::token_support;

use keycred::authority::{Authority, EndpointVersion};
use keycred::cert::{load_credential, SignatureAlg};
use keycred::token::{entra_code, ClientAuth, ClientOptions, Grant, Target, TokenClient, TokenRequest};
use std::sync::Arc;
use std::time::Duration;
use token_support::*;

const CLIENT: &str = "6731de76-14a6-49ae-97bc-6eba6914391e";
const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn v2_token() -> String {
    fake_access_token(serde_json::json!({
        "aud": "https://graph.microsoft.com", "iss": format!("https://login.microsoftonline.com/{TENANT}/v2.0"),
        "iat": 1_700_000_000, "nbf": 1_700_000_000, "exp": 1_700_003_599, "azp": CLIENT, "azpacr": "2",
        "idtyp": "app", "roles": ["Application.ReadWrite.OwnedBy", "User.Read.All"], "tid": TENANT, "ver": "2.0",
    }))
}

fn v2_body(token: &str) -> String {
    serde_json::json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token})
        .to_string()
}

fn v1_body(token: &str) -> String {
    serde_json::json!({
        "token_type": "Bearer", "expires_in": "3599", "ext_expires_in": "3599", "expires_on": "4102444799",
        "not_before": "4102441200", "resource": "https://graph.windows.net/", "access_token": token,
    })
    .to_string()
}

/// `keycred token` with the certificate and key, CLIENT and TENANT, against `authority`, then `extra`.
fn token_with_cert(
    cert: &std::path::Path,
    key: &std::path::Path,
    authority: &str,
    extra: &[&str],
) -> std::process::Output {
    let mut args = cert_args("token", cert, key, CLIENT, TENANT);
    args.extend(["--authority", authority]);
    args.extend_from_slice(extra);
    keycred(&args, &[])
}

/// `keycred token` with the secret `(VAR, value)` from the environment, CLIENT and TENANT,
/// against `authority`, then `extra`.
fn token_with_secret(secret: (&str, &str), authority: &str, extra: &[&str]) -> std::process::Output {
    let mut args =
        vec!["token", "--secret-env", secret.0, "--client-id", CLIENT, "--tenant", TENANT, "--authority", authority];
    args.extend_from_slice(extra);
    keycred(&args, &[secret])
}

fn cert_request(server: &TestServer, cert: &std::path::Path, key: &std::path::Path) -> TokenRequest {
    TokenRequest {
        authority: Authority::parse(&server.base).unwrap(),
        tenant: TENANT.parse().unwrap(),
        client_id: CLIENT.parse().unwrap(),
        version: EndpointVersion::V2,
        target: Target::Scopes(vec!["https://graph.microsoft.com".into()]),
        grant: Grant::ClientCredentials,
        auth: ClientAuth::Certificate {
            cred: Arc::new(load_credential(cert, Some(key), None).unwrap()),
            alg: SignatureAlg::Rs256,
            x5c: false,
        },
    }
}

fn fast_client() -> TokenClient {
    TokenClient::new(ClientOptions { timeout: Duration::from_secs(10), ..Default::default() }).unwrap()
}

/// Checks the certificate fields of a recorded request: type, and an assertion whose `aud` is
/// the URL it was posted to and whose signature openssl accepts.
fn check_assertion(r: &Recorded, server: &TestServer, cert: &std::path::Path, dir: &TempDir, alg: &str) {
    assert_eq!(r.field("client_assertion_type"), Some(ASSERTION_TYPE));
    assert_eq!(r.field("client_secret"), None);
    let jwt = r.field("client_assertion").unwrap();
    let (header, claims) = jwt_parts(jwt);
    assert_eq!(header["alg"], alg);
    assert_eq!(claims["aud"], format!("{}{}", server.base, r.path), "aud is the URL posted to");
    assert_eq!(claims["iss"], CLIENT);
    assert_eq!(claims["sub"], CLIENT);
    assert!(openssl_verify(jwt, cert, alg, dir));
}

#[test]
fn v2_client_credentials_with_certificate_cli() {
    let dir = TempDir::new("tok-v2");
    let (cert, key) = openssl_cred(&dir, "daemon");
    let token = v2_token();
    let server = TestServer::start(vec![Reply::json(200, v2_body(&token))]);
    let o = token_with_cert(
        &cert,
        &key,
        &server.base,
        &["--scope", "https://graph.microsoft.com", "--expect-role", "User.Read.All"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("token type:  Bearer"), "{out}");
    assert!(out.contains("(59 min left)"), "{out}");
    assert!(out.contains("roles:       Application.ReadWrite.OwnedBy, User.Read.All"), "{out}");
    assert!(out.contains(&format!("tid:         {TENANT}")), "{out}");
    assert!(out.contains("idtyp:       app"), "{out}");
    assert!(out.contains(&format!("azp:         {CLIENT}")), "{out}");
    assert!(!out.contains(&token), "the token is not printed without --raw");

    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, format!("/{TENANT}/oauth2/v2.0/token"));
    assert_eq!(r.content_type, "application/x-www-form-urlencoded");
    assert_eq!(r.names(), ["grant_type", "client_id", "scope", "client_assertion_type", "client_assertion"]);
    assert_eq!(r.field("grant_type"), Some("client_credentials"));
    assert_eq!(r.field("client_id"), Some(CLIENT));
    assert_eq!(r.field("scope"), Some("https://graph.microsoft.com/.default"));
    check_assertion(r, &server, &cert, &dir, "RS256");
}

#[test]
fn v1_resource_with_string_numbers_json_output() {
    let dir = TempDir::new("tok-v1");
    let (cert, key) = openssl_cred(&dir, "daemon");
    let token = fake_access_token(serde_json::json!({"aud": "https://graph.windows.net/", "appid": CLIENT,
        "iss": format!("https://sts.windows.net/{TENANT}/"), "roles": ["Directory.Read.All"], "tid": TENANT}));
    let server = TestServer::start(vec![Reply::json(200, v1_body(&token))]);
    let o = token_with_cert(
        &cert,
        &key,
        &server.base,
        &["--resource", "https://graph.windows.net/", "--alg", "PS256", "-o", "json"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["accessToken"], token);
    assert_eq!(v["tokenType"], "Bearer");
    assert_eq!(v["expiresIn"], 3599);
    assert_eq!(v["extExpiresIn"], 3599);
    assert_eq!(v["expiresOn"], "2099-12-31T23:59:59Z");
    assert_eq!(v["resource"], "https://graph.windows.net/");
    assert_eq!(v["claims"]["appid"], CLIENT);
    assert_eq!(v["claims"]["roles"], serde_json::json!(["Directory.Read.All"]));

    let r = &server.requests()[0];
    assert_eq!(r.path, format!("/{TENANT}/oauth2/token"));
    assert_eq!(r.names(), ["grant_type", "client_id", "resource", "client_assertion_type", "client_assertion"]);
    assert_eq!(r.field("resource"), Some("https://graph.windows.net/"));
    assert_eq!(r.field("scope"), None);
    check_assertion(r, &server, &cert, &dir, "PS256");
}

#[test]
fn trailing_slash_resource_on_v2_and_raw_output() {
    let dir = TempDir::new("tok-raw");
    let (cert, key) = openssl_cred(&dir, "daemon");
    let token = v2_token();
    let server = TestServer::start(vec![Reply::json(200, v2_body(&token))]);
    let o = token_with_cert(&cert, &key, &server.base, &["--scope", "https://graph.windows.net/", "--raw"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), format!("{token}\n"), "--raw prints the token and nothing else");
    assert_eq!(server.requests()[0].field("scope"), Some("https://graph.windows.net//.default"));
}

#[test]
fn secret_auth_and_missing_role_exit_4() {
    let token = v2_token();
    let server = TestServer::start(vec![Reply::json(200, v2_body(&token))]);
    let secret = "Xy7~Q8.secret-value-0123456789abcdef";
    let o = token_with_secret(
        ("KC_TEST_SECRET", secret),
        &server.base,
        &["--scope", "api://my-api", "--expect-role", "User.Read.All", "--expect-role", "Mail.Send"],
    );
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("lacks the role Mail.Send"), "{e}");
    assert!(!e.contains("lacks the role User.Read.All"), "{e}");
    let r = &server.requests()[0];
    assert_eq!(r.names(), ["grant_type", "client_id", "scope", "client_secret"]);
    assert_eq!(r.field("client_secret"), Some(secret));
    assert_eq!(r.field("scope"), Some("api://my-api/.default"));
}

#[test]
fn on_behalf_of_fields_and_claims_challenge() {
    let dir = TempDir::new("tok-obo");
    let (cert, key) = openssl_cred(&dir, "api");
    let incoming = fake_access_token(serde_json::json!({"aud": CLIENT, "scp": "access_as_user"}));
    let claims = r#"{"access_token":{"polids":{"essential":true,"values":["9ab03e19-ed42-4168-b6b7-7001fb3e933a"]}}}"#;
    let body = entra_error_body(
        50079,
        "interaction_required",
        "Due to a configuration change made by your administrator, you must enroll in multi-factor authentication.",
        Some(("claims", claims)),
    );
    let server = TestServer::start(vec![Reply::json(400, body)]);
    let o = token_with_cert(
        &cert,
        &key,
        &server.base,
        &["--obo", &incoming, "--scope", "https://graph.microsoft.com/User.Read"],
    );
    assert_eq!(o.status.code(), Some(3));
    let e = stderr(&o);
    assert!(e.contains("AADSTS50079 interaction_required"), "{e}");
    assert!(e.contains(claims), "the claims challenge is shown: {e}");
    assert!(!e.contains(&incoming) && !stdout(&o).contains(&incoming));
    let r = &server.requests()[0];
    assert_eq!(
        r.names(),
        [
            "grant_type",
            "client_id",
            "scope",
            "assertion",
            "requested_token_use",
            "client_assertion_type",
            "client_assertion"
        ]
    );
    assert_eq!(r.field("grant_type"), Some("urn:ietf:params:oauth:grant-type:jwt-bearer"));
    assert_eq!(r.field("assertion"), Some(incoming.as_str()));
    assert_eq!(r.field("requested_token_use"), Some("on_behalf_of"));
    assert_eq!(r.field("scope"), Some("https://graph.microsoft.com/User.Read"));
    check_assertion(r, &server, &cert, &dir, "RS256");
}

#[test]
fn authorization_code_prints_the_tenant_to_store() {
    let token = fake_access_token(serde_json::json!({"aud": "https://graph.windows.net/", "tid": TENANT}));
    let server = TestServer::start(vec![Reply::json(200, v1_body(&token))]);
    let o = keycred(
        &[
            "token",
            "--secret-env",
            "KC_S",
            "--client-id",
            CLIENT,
            "--authority",
            &server.base,
            "--code",
            "OAQABAAIAAAB-code",
            "--redirect-uri",
            "http://localhost:8400/cb",
            "--resource",
            "https://graph.windows.net/",
        ],
        &[("KC_S", "s3cret-value")],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains(&format!("tenant to store for client-credentials calls: {TENANT}")), "{}", stdout(&o));
    let r = &server.requests()[0];
    assert_eq!(r.path, "/common/oauth2/token");
    assert_eq!(r.names(), ["grant_type", "client_id", "resource", "code", "redirect_uri", "client_secret"]);
    assert_eq!(r.field("grant_type"), Some("authorization_code"));
    assert_eq!(r.field("code"), Some("OAQABAAIAAAB-code"));
    assert_eq!(r.field("redirect_uri"), Some("http://localhost:8400/cb"));
}

/// Each frequent AADSTS code gets its hint (in the library's own words: the command line names
/// its options and commands, as `hints_fit_the_situation` checks); the message carries the code, the error, the first
/// line of the description and both ids, never the timestamp line.
#[test]
fn each_hint_code_shows_its_hint() {
    let dir = TempDir::new("tok-hints");
    let (cert, key) = openssl_cred(&dir, "daemon");
    let thumb = hex_upper(&openssl_fingerprint(&cert, "sha1"));
    let cases: Vec<(u32, &str, &str, u16, Vec<String>)> = vec![
        (
            700027,
            "invalid_client",
            "Client assertion contains an invalid signature. [Reason - The key was not found.]",
            401,
            vec![thumb.clone(), format!("a keyCredentials entry for {} in the manifest", cert.display())],
        ),
        (700024, "invalid_client", "Client assertion is not within its valid time range.", 401, vec!["clock".into()]),
        (
            7000215,
            "invalid_client",
            "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID",
            401,
            vec!["Value".into(), "Secret ID".into()],
        ),
        (70011, "invalid_scope", "The provided value for the input parameter 'scope' is not valid.", 400, vec!["/.default".into()]),
        (1002012, "invalid_scope", "The provided value for scope User.Read is not valid.", 400, vec!["/.default".into()]),
        (
            700016,
            "unauthorized_client",
            "Application with identifier 'x' was not found in the directory 'y'.",
            400,
            vec!["check the tenant and the client id".into(), format!("{}/{TENANT}/adminconsent?client_id={CLIENT}", server_placeholder())],
        ),
        (
            65001,
            "invalid_grant",
            "The user or administrator has not consented to use the application.",
            400,
            vec!["consent".into(), format!("adminconsent?client_id={CLIENT}")],
        ),
        (50079, "interaction_required", "You must use multi-factor authentication.", 400, vec!["claims challenge".into()]),
    ];
    for (code, error, text, status, expect) in cases {
        let extra = (code == 50079).then_some(("claims", r#"{"access_token":{"capolids":{"essential":true}}}"#));
        let server = TestServer::start(vec![Reply::json(status, entra_error_body(code, error, text, extra))]);
        let err = fast_client().request_token_blocking(&cert_request(&server, &cert, &key)).unwrap_err();
        assert_eq!(err.exit_code(), 3);
        assert_eq!(entra_code(&err), Some(code));
        let m = err.message();
        assert!(m.contains(&format!("AADSTS{code} {error}: {text}")), "{code}: {m}");
        assert!(m.contains(&format!("HTTP {status}")), "{m}");
        assert!(m.contains("trace ID 0c1b2a39-trace") && m.contains("correlation ID 5e6f7a8b-corr"), "{m}");
        assert!(!m.contains("Timestamp"), "only the first line of the description: {m}");
        let hint =
            err.hint().unwrap_or_else(|| panic!("{code} has a hint")).replace(&server.base, &server_placeholder());
        for e in expect {
            assert!(hint.contains(&e), "{code}: hint {hint:?} lacks {e:?}");
        }
        assert_eq!(server.requests().len(), 1, "4xx is not retried");
    }
}

fn server_placeholder() -> String {
    "SERVER".into()
}

#[test]
fn entra_error_through_cli_exits_3_with_hint() {
    let dir = TempDir::new("tok-cli-err");
    let (cert, key) = openssl_cred(&dir, "daemon");
    let thumb = hex_upper(&openssl_fingerprint(&cert, "sha1"));
    let body = entra_error_body(700027, "invalid_client", "Client assertion contains an invalid signature.", None);
    let server = TestServer::start(vec![Reply::json(401, body)]);
    let o = token_with_cert(&cert, &key, &server.base, &["--scope", "https://graph.microsoft.com/.default"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stdout(&o).is_empty());
    let e = stderr(&o);
    assert!(e.starts_with("keycred: error: the token endpoint refused (HTTP 401): AADSTS700027 invalid_client"), "{e}");
    assert!(e.contains(&thumb) && e.contains("keycred manifest add MANIFEST --cert"), "{e}");
}

#[test]
fn retries_503_then_succeeds_with_a_fresh_assertion() {
    let dir = TempDir::new("tok-retry");
    let (cert, key) = openssl_cred(&dir, "daemon");
    let unavailable = Reply::json(503, r#"{"error":"temporarily_unavailable"}"#).header("Retry-After", "0");
    let server = TestServer::start(vec![unavailable.clone(), unavailable, Reply::json(200, v2_body(&v2_token()))]);
    let t = fast_client().request_token_blocking(&cert_request(&server, &cert, &key)).unwrap();
    assert_eq!(t.expires_in, 3599);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 3);
    let jtis: Vec<String> = reqs
        .iter()
        .map(|r| jwt_parts(r.field("client_assertion").unwrap()).1["jti"].as_str().unwrap().to_string())
        .collect();
    assert!(jtis[0] != jtis[1] && jtis[1] != jtis[2], "each attempt signs a new assertion");
}

#[test]
fn gives_up_after_three_retries_of_429() {
    let dir = TempDir::new("tok-429");
    let (cert, key) = openssl_cred(&dir, "daemon");
    let body = entra_error_body(50196, "temporarily_unavailable", "The server is busy.", None);
    let server = TestServer::start(vec![Reply::json(429, body).header("Retry-After", "0")]);
    let err = fast_client().request_token_blocking(&cert_request(&server, &cert, &key)).unwrap_err();
    assert_eq!(server.requests().len(), 4, "one attempt and three retries");
    assert_eq!(err.exit_code(), 3);
    assert_eq!(entra_code(&err), Some(50196));
}

#[test]
fn html_body_is_reported_with_status_and_excerpt() {
    let dir = TempDir::new("tok-html");
    let (cert, key) = openssl_cred(&dir, "daemon");
    let html = format!(
        "<!DOCTYPE html><html><head><title>Access denied</title></head><body>{}</body></html>",
        "x".repeat(400)
    );
    let server = TestServer::start(vec![Reply {
        status: 403,
        headers: vec![("content-type".into(), "text/html".into())],
        body: html,
    }]);
    let o = token_with_cert(&cert, &key, &server.base, &["--scope", "https://graph.microsoft.com/.default"]);
    assert_eq!(o.status.code(), Some(3));
    let e = stderr(&o);
    assert!(
        e.contains("answered HTTP 403 with a body that is not JSON: <!DOCTYPE html><html><head><title>Access denied"),
        "{e}"
    );
    assert!(!e.contains(&"x".repeat(200)), "only the start of the body: {e}");
    assert!(e.contains("HTML page"), "{e}");
}

#[test]
fn timeout_against_a_server_that_never_answers() {
    // The kernel accepts the connection into the backlog; nobody ever reads or answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", silent.local_addr().unwrap());
    let o = token_with_secret(
        ("KC_S", "s3cret-value"),
        &base,
        &["--scope", "https://graph.microsoft.com/.default", "--timeout", "1"],
    );
    drop(silent);
    assert_eq!(o.status.code(), Some(3));
    let e = stderr(&o);
    assert!(e.contains("no answer from the token endpoint") && e.contains("within 1 s"), "{e}");
    assert!(e.contains("--timeout"), "{e}");
}

#[test]
fn loopback_endpoints_are_reached_directly_whatever_the_proxy_variables_say() {
    // A corporate shell exports proxies; the emulator and local servers are on our loopback,
    // which the proxy cannot reach. Here the "proxy" refuses connections, so any use of it fails.
    let token = v2_token();
    let server = TestServer::start(vec![Reply::json(200, v2_body(&token))]);
    let dead = "http://127.0.0.1:9";
    let mut env = vec![("KC_S", "s3cret-value"), ("NO_PROXY", ""), ("no_proxy", "")];
    for var in ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"] {
        env.push((var, dead));
    }
    let mut args = vec!["token", "--secret-env", "KC_S", "--client-id", CLIENT, "--tenant", TENANT];
    args.extend(["--authority", &server.base, "--scope", "https://graph.microsoft.com/.default"]);
    let o = keycred(&args, &env);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn connection_refused_is_remote_error() {
    // A port bound but not listening: connecting to it is refused, and while the socket is held
    // no other process (another test's server) can listen on it.
    let bound = tokio::net::TcpSocket::new_v4().unwrap();
    bound.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = bound.local_addr().unwrap().port();
    let o = token_with_secret(
        ("KC_S", "s3cret-value"),
        &format!("http://127.0.0.1:{port}"),
        &["--scope", "https://graph.microsoft.com/.default"],
    );
    drop(bound);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("cannot reach the token endpoint"), "{}", stderr(&o));
}
