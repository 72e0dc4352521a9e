//! `keycred token`: request a token (client credentials, on-behalf-of, authorization code) and
//! show what it grants. The token itself is printed only on request (`--raw`, or `accessToken`
//! in JSON output).

use super::claims::{key_claim_pairs, rfc3339};
use super::common::{self, read_arg_or_stdin, AlgArgs, EndpointArg, HttpArgs, SecretEnvArgs};
use super::output::{out_line, print_pairs, with_spinner};
use super::{CredArgs, Ctx, TenantArgs};
use keycred::jwt::dangerous;
use keycred::secret;
use keycred::token::{ClientAuth, Grant, TokenRequest};
use keycred::{error::exit, Error, Result, TenantId};
use std::sync::Arc;

/// Requests a token and shows its type, expiry and the claims that matter.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub tenant: TenantArgs,
    #[command(flatten)]
    pub cred: CredArgs,
    #[command(flatten)]
    pub secret: SecretEnvArgs,
    /// Scope (v2); a bare resource gets /.default. Repeatable. Needed (or --resource) with
    /// --obo and --code too: the API the token is for
    #[arg(long, value_name = "SCOPE")]
    pub scope: Vec<String>,
    /// Resource URI; posts resource= to the v1 endpoint unless --endpoint v2
    #[arg(long, value_name = "URI", conflicts_with = "scope")]
    pub resource: Option<String>,
    /// Token endpoint version (default v2, or v1 with --resource)
    #[arg(long, value_enum)]
    pub endpoint: Option<EndpointArg>,
    #[command(flatten)]
    pub alg: AlgArgs,
    /// Send the certificate chain (x5c) in the assertion
    #[arg(long, env = "AZURE_CLIENT_SEND_CERTIFICATE_CHAIN", value_parser = clap::builder::FalseyValueParser::new())]
    pub x5c: bool,
    /// On-behalf-of: the incoming access token, or `-` to read it from stdin
    #[arg(long, value_name = "TOKEN|-", conflicts_with = "code")]
    pub obo: Option<String>,
    /// Authorization code to exchange (the Office 365 Management API's setup): the code, the
    /// whole URL the browser was redirected to, or `-` to read either from stdin
    #[arg(long, value_name = "CODE|URL", requires = "redirect_uri")]
    pub code: Option<String>,
    /// Redirect URI the code was issued for
    #[arg(long, value_name = "URI", requires = "code")]
    pub redirect_uri: Option<String>,
    /// With --code URL: the state the sign-in URL was built with; the redirect must echo it
    /// (exit 4 otherwise)
    #[arg(long, requires = "code")]
    pub state: Option<String>,
    /// Fail (exit 4) unless the token's roles hold ROLE; repeatable
    #[arg(long, value_name = "ROLE")]
    pub expect_role: Vec<String>,
    /// Sign in with a workload token from another issuer (GitHub Actions, a Kubernetes service
    /// account) that the app trusts through a federated identity credential: the file holding
    /// it, sent as the client assertion; AZURE_FEDERATED_TOKEN_FILE when no other credential is given
    #[arg(long, value_name = "FILE")]
    pub federated_token_file: Option<std::path::PathBuf>,
    /// Print only the access token
    #[arg(long)]
    pub raw: bool,
    #[command(flatten)]
    pub http: HttpArgs,
}

/// A redirect URL pasted whole carries the `state` the sign-in request was made with; without
/// `--state` nothing compares it, and a redirect answering someone else's request would be
/// redeemed unnoticed: say so (a warning, as the code may come from a flow without state).
fn unchecked_state(given: &keycred::secret::SecretString, expected: Option<&str>) -> Option<String> {
    let value = given.expose().trim();
    if expected.is_some() || !value.contains("://") {
        return None;
    }
    let state = keycred::consent::parse_redirect(value, "--code").ok()?.state?;
    Some(format!(
        "the redirect carries state {:?}, which was not checked: pass --state with the value the sign-in URL \
         was built with (keycred consent-url --state) so that a redirect answering another request is refused",
        crate::output::printable(&state)
    ))
}

/// Builds the library request from the arguments.
fn build_request(a: &Args) -> Result<TokenRequest> {
    a.http.timeout()?;
    let grant = match (&a.obo, &a.code, &a.redirect_uri) {
        (Some(t), _, _) => Grant::OnBehalfOf { assertion: read_arg_or_stdin(t, "--obo", 64 * 1024)? },
        (None, Some(c), Some(r)) => {
            if let Some(w) = keycred::consent::check_redirect_uri(r)? {
                eprintln!("keycred: warning: {w}");
            }
            let given = read_arg_or_stdin(c, "--code", 64 * 1024)?;
            let code = keycred::consent::authorization_code(&given, r, a.state.as_deref())?;
            if let Some(w) = unchecked_state(&given, a.state.as_deref()) {
                eprintln!("keycred: warning: {w}");
            }
            Grant::AuthorizationCode { code, redirect_uri: r.clone() }
        }
        _ => Grant::ClientCredentials,
    };
    // The Office 365 Management API's setup exchanges the code at /common, before the user's tenant is known.
    let tenant = match (&a.tenant.tenant, &grant) {
        (None, Grant::AuthorizationCode { .. }) => TenantId::common(),
        _ => a.tenant.tenant()?,
    };
    // What the token is for, before the credential is read: the commonest omission.
    let target = common::target(&a.scope, a.resource.as_deref()).map_err(|e| {
        e.with_hint(
            "pass --scope S (v2) or --resource R (v1), e.g. --scope https://graph.microsoft.com/.default; with \
             --obo or --code too, name the API the token is for",
        )
    })?;
    // A certificate from AZURE_CLIENT_CERTIFICATE_PATH yields to an explicit --secret-env; one
    // given on the command line next to it is a contradiction, not a preference to guess.
    let cert_from_env =
        a.cred.cert.as_ref().map(|c| c.as_os_str()) == std::env::var_os("AZURE_CLIENT_CERTIFICATE_PATH").as_deref();
    if a.secret.secret_env.is_some() && a.cred.given() && !cert_from_env {
        return Err(Error::input("both --secret-env and --cert given: which credential should sign in?")
            .with_hint("pass either --cert (certificate) or --secret-env (client secret)"));
    }
    let federated = federated_token_file(a)?;
    if let Some((file, _)) = &federated {
        if a.secret.secret_env.is_some() || (a.cred.given() && !cert_from_env) {
            return Err(Error::input(format!(
                "both a federated token file ({}) and a certificate or secret given: which credential should sign in?",
                file.display()
            ))
            .with_hint("pass either --federated-token-file, or --cert, or --secret-env"));
        }
    }
    let auth = match federated {
        Some((_, token)) => ClientAuth::Federated(token),
        None => certificate_or_secret(a)?,
    };
    Ok(TokenRequest {
        authority: a.tenant.authority()?,
        tenant,
        client_id: a.tenant.client_id()?,
        version: a.endpoint.map(Into::into).unwrap_or(target.default_version()),
        target,
        grant,
        auth,
    })
}

/// The certificate or the secret that signs the app in.
fn certificate_or_secret(a: &Args) -> Result<ClientAuth> {
    Ok(match a.secret.secret()? {
        Some(s) => ClientAuth::Secret(s),
        // Like the Azure SDKs' EnvironmentCredential: a secret in AZURE_CLIENT_SECRET is used
        // when no certificate is given.
        None if !a.cred.given() && std::env::var_os("AZURE_CLIENT_SECRET").is_some() => {
            ClientAuth::Secret(secret::from_env("AZURE_CLIENT_SECRET")?)
        }
        None => {
            if !a.cred.given() {
                return Err(Error::input("no credential given").with_hint(
                    "pass --cert CERT [--key KEY] (or set AZURE_CLIENT_CERTIFICATE_PATH), or --secret-env VAR (or set \
                     AZURE_CLIENT_SECRET), or --federated-token-file FILE (or set AZURE_FEDERATED_TOKEN_FILE)",
                ));
            }
            ClientAuth::Certificate { cred: Arc::new(a.cred.load_using(Some(&a.http))?), alg: a.alg.get(), x5c: a.x5c }
        }
    })
}

/// The workload token of `--federated-token-file`, else of AZURE_FEDERATED_TOKEN_FILE when no
/// certificate or secret is given on the command line (as azure-identity's
/// WorkloadIdentityCredential reads it): re-read at each run, since issuers rotate the file.
fn federated_token_file(a: &Args) -> Result<Option<(std::path::PathBuf, secret::SecretString)>> {
    let from_env = || {
        let explicit = a.secret.secret_env.is_some()
            || (a.cred.given() && std::env::var_os("AZURE_CLIENT_CERTIFICATE_PATH").is_none());
        std::env::var_os("AZURE_FEDERATED_TOKEN_FILE")
            .filter(|v| !v.is_empty() && !explicit)
            .map(std::path::PathBuf::from)
    };
    let Some(file) = a.federated_token_file.clone().or_else(from_env) else { return Ok(None) };
    let bytes = keycred::fsio::read_limited(&file, 64 * 1024)?;
    let text = String::from_utf8(bytes).map_err(|_| {
        Error::file(&file, "the federated token file is not text")
            .with_hint("give the file holding the workload token (a JWT)")
    })?;
    let token = text.trim();
    if keycred::jwt::dangerous::decode(token).is_err() {
        return Err(Error::file(&file, "the federated token file does not hold a JWT")
            .with_hint("give the file your platform writes the workload token to (header.payload.signature)"));
    }
    Ok(Some((file, secret::SecretString::new(token.to_string()))))
}

/// Runs `keycred token`.
pub fn run(a: &Args, ctx: &Ctx) -> Result<u8> {
    if a.raw && ctx.json() {
        return Err(Error::input("--raw and -o json both given")
            .with_hint("--raw prints the bare token alone; -o json prints it as accessToken with the rest"));
    }
    let req = build_request(a)?;
    let client = a.http.client()?;
    let resp = with_spinner(ctx, "requesting a token", || client.request_token_blocking(&req))
        .map_err(|e| common::transport_hint(e, true))?;
    let decoded = dangerous::decode(resp.access_token.expose()).ok();
    let now = keycred::jwt::now_secs();
    let expires_on = resp.expires_on.unwrap_or(now + resp.expires_in as i64);
    let minutes_left = (expires_on - now).max(0) / 60;
    let tid = decoded.as_ref().and_then(|d| d.claim_str("tid")).map(str::to_string);
    let is_code = matches!(req.grant, Grant::AuthorizationCode { .. });

    if a.raw {
        out_line(resp.access_token.expose());
    } else if ctx.json() {
        let mut v = serde_json::json!({
            "tokenType": resp.token_type,
            "expiresIn": resp.expires_in,
            "extExpiresIn": resp.ext_expires_in,
            "expiresOn": rfc3339(expires_on),
            "resource": resp.resource,
            // Entra's v2 client-credentials answer has no `scope`: the one asked for stands in.
            "scope": resp.scope.clone().or_else(|| requested_scope(&req)),
            "endpoint": req.endpoint(),
            "tenantId": tid,
            "claims": decoded.as_ref().map(|d| serde_json::Value::Object(d.claims.clone())),
        });
        // The token goes out only in JSON, where scripts ask for it by name.
        v["accessToken"] = serde_json::Value::String(resp.access_token.expose().to_string());
        ctx.print_json(&v);
    } else {
        let mut pairs = vec![
            ("token type", resp.token_type.clone()),
            ("expires", format!("{} ({minutes_left} min left)", rfc3339(expires_on).unwrap_or_default())),
        ];
        if let Some(r) = &resp.resource {
            pairs.push(("resource", r.clone()));
        }
        // One aligned block: token facts, then the claims that matter.
        if let Some(d) = &decoded {
            pairs.extend(key_claim_pairs(d));
        }
        print_pairs(&pairs);
        if decoded.is_none() {
            out_line("(the token is not a JWT: opaque or encrypted; claims cannot be shown)");
        }
        if is_code {
            match &tid {
                Some(t) => out_line(&format!("tenant to store for client-credentials calls: {t} (--tenant {t})")),
                None => out_line("the token has no tid claim: the tenant cannot be read from it"),
            }
        }
    }
    if !a.expect_role.is_empty() {
        match &decoded {
            Some(d) => d.require_roles(&a.expect_role)?,
            None => return Err(Error::check("--expect-role: the token is not a JWT, its roles cannot be read")),
        }
    }
    Ok(exit::OK)
}

/// The scope a v2 request asked for (space-separated), as sent.
fn requested_scope(req: &keycred::token::TokenRequest) -> Option<String> {
    match (&req.version, &req.target) {
        (keycred::authority::EndpointVersion::V2, keycred::token::Target::Scopes(s)) => {
            Some(s.iter().map(|s| keycred::token::request::normalize_scope(s)).collect::<Vec<_>>().join(" "))
        }
        (keycred::authority::EndpointVersion::V2, keycred::token::Target::Resource(r)) => {
            Some(keycred::token::request::resource_to_scope(r))
        }
        _ => None,
    }
}
