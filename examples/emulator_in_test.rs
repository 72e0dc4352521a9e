//! Start the emulator inside a test: an app registered by its manifest, a token requested with
//! its certificate over loopback, the token's roles and signature checked. No network, no tenant.
//!
//! ```text
//! cargo test --example emulator_in_test     # the test below
//! cargo run --example emulator_in_test      # the same, printing the claims
//! ```

use keycred::authority::{Authority, EndpointVersion};
use keycred::cert::{generate, KeySize, LoadedCredential, NewCertificate, SignatureAlg, Validity};
use keycred::emulator::{start_blocking, EmulatorConfig};
use keycred::manifest::{entry_for, templates, EntryOptions, Format, Manifest};
use keycred::token::{ClientAuth, ClientOptions, Grant, Target, TokenClient, TokenRequest};
use keycred::{jwt, ClientId, Result, TenantId};
use std::sync::Arc;

const APP_ID: &str = "6731de76-14a6-49ae-97bc-6eba6914391e";
const API: &str = "api://my-api";

/// Registers a fresh certificate for `APP_ID`, starts the emulator granting `Data.Read` on
/// `API`, and returns the access token's claims, its signature checked with the emulator's key.
fn token_from_emulator(dir: &std::path::Path) -> Result<serde_json::Map<String, serde_json::Value>> {
    let (cert, key) = generate(&NewCertificate {
        subject: "CN=my-daemon".into(),
        key_size: KeySize::Rsa2048,
        validity: Validity::Days(30),
    })?;
    // The app as the emulator knows it: a manifest holding the certificate.
    let manifest_path = dir.join("app.json");
    let template = templates::manifest(Format::MsGraph).replace("11111111-1111-1111-1111-111111111111", APP_ID);
    let manifest = Manifest::parse(&template, "template")?;
    manifest.add_entry(entry_for(&cert, Format::MsGraph, &EntryOptions::default())?)?.save(&manifest_path)?;

    let mut config = EmulatorConfig::new(vec![manifest_path]);
    config.grants = vec![(API.to_string(), vec!["Data.Read".to_string()])];
    config.log = false;
    // On 127.0.0.1 with a free port; stopped when dropped.
    let emu = start_blocking(config)?;
    let info = emu.info();

    let cred = Arc::new(LoadedCredential::new(cert, Vec::new(), key, &dir.join("my-daemon.pem"))?);
    let request = TokenRequest {
        authority: Authority::parse(info.base_url())?,
        tenant: TenantId::new(info.tenant())?,
        client_id: ClientId::new(APP_ID)?,
        version: EndpointVersion::V2,
        target: Target::new(&[format!("{API}/.default")], None)?,
        grant: Grant::ClientCredentials,
        auth: ClientAuth::Certificate { cred, alg: SignatureAlg::Rs256, x5c: false },
    };
    let token = TokenClient::new(ClientOptions::default())?.request_token_blocking(&request)?;
    let decoded = jwt::dangerous::decode(token.access_token.expose())?;
    assert!(decoded.verify(SignatureAlg::Rs256, info.jwks_public_key()), "signed by the emulator");
    decoded.require_roles(&["Data.Read".to_string()])?;
    Ok(decoded.claims)
}

fn main() -> Result<()> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let claims = token_from_emulator(dir.path())?;
    println!("{}", serde_json::to_string_pretty(&claims).expect("claims are JSON"));
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_emulator_issues_a_token_for_the_registered_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let claims = super::token_from_emulator(dir.path()).unwrap();
        // The resource decides the token's shape: one without a manifest asking for v2 tokens
        // gets v1 ones, which name the client in `appid` (v2 tokens in `azp`).
        assert_eq!(claims["appid"], super::APP_ID);
        assert_eq!(claims["ver"], "1.0");
        assert_eq!(claims["aud"], super::API);
        assert_eq!(claims["roles"], serde_json::json!(["Data.Read"]));
    }
}
