//! Sign a client assertion with a certificate and request an app-only token, as a daemon does.
//!
//! ```text
//! AZURE_TENANT_ID=contoso.onmicrosoft.com AZURE_CLIENT_ID=<app id> \
//! AZURE_CLIENT_CERTIFICATE_PATH=my-daemon.pem \
//!     cargo run --example request_token -- https://graph.microsoft.com/.default
//! ```
//!
//! `AZURE_AUTHORITY_HOST` selects another cloud (or the emulator, `keycred emulate`).

use keycred::authority::{Authority, DEFAULT_AUTHORITY};
use keycred::cert::{load_credential, SignatureAlg};
use keycred::jwt::{self, AssertionParams, DEFAULT_ASSERTION_LIFETIME};
use keycred::token::{entra_code, ClientAuth, ClientOptions, Grant, Target, TokenClient, TokenRequest};
use keycred::{ClientId, Error, Result, TenantId};
use std::sync::Arc;

fn var(name: &str) -> Result<String> {
    std::env::var(name).map_err(|_| Error::input(format!("set {name}")))
}

fn main() -> Result<()> {
    let scope = std::env::args().nth(1).unwrap_or_else(|| "https://graph.microsoft.com/.default".into());
    // Checked once, here: the endpoint URL is built from these types only.
    let tenant = TenantId::new(&var("AZURE_TENANT_ID")?)?;
    let client_id = ClientId::new(&var("AZURE_CLIENT_ID")?)?;
    let authority = Authority::parse(&std::env::var("AZURE_AUTHORITY_HOST").unwrap_or(DEFAULT_AUTHORITY.into()))?;
    // A PEM bundle (key + certificate) or a PFX; the key must be the certificate's.
    let cred = Arc::new(load_credential(var("AZURE_CLIENT_CERTIFICATE_PATH")?.as_ref(), None, None)?);

    let target = Target::new(&[scope], None)?;
    let request = TokenRequest {
        authority,
        tenant,
        client_id,
        version: target.default_version(),
        target,
        grant: Grant::ClientCredentials,
        auth: ClientAuth::Certificate { cred: cred.clone(), alg: SignatureAlg::Rs256, x5c: false },
    };

    // The assertion the request will carry (a fresh one is signed for every attempt); shown here
    // for curl or another client.
    let assertion = jwt::client_assertion(
        &cred,
        &AssertionParams {
            client_id: request.client_id.to_string(),
            audience: request.endpoint(),
            alg: SignatureAlg::Rs256,
            x5c: false,
            lifetime: DEFAULT_ASSERTION_LIFETIME,
        },
    )?;
    eprintln!("assertion for {}: {} bytes", request.endpoint(), assertion.expose().len());

    let client = TokenClient::new(ClientOptions::default())?;
    match client.request_token_blocking(&request) {
        Ok(token) => {
            println!("{} token, expires in {} s", token.token_type, token.expires_in);
            Ok(())
        }
        // Callers branch on Entra's AADSTS code rather than on the message.
        Err(e) if entra_code(&e) == Some(700027) => {
            eprintln!("the certificate {} is not registered on the app: {}", cred.cert.thumbprint(), e);
            Err(e)
        }
        Err(e) => Err(e),
    }
}
