//! The rotation as a library caller meets it: a failed verification is an error that still
//! carries the refusal (its kind, hint and AADSTS code), with the manifest back as it was.
//!
//! Regression: `rotate::apply` rebuilt the error from its message, so a library caller could no
//! longer branch on `entra_code` (AADSTS700027: the new certificate is not registered).

use crate::rotation_support as support;

use keycred::authority::{Authority, EndpointVersion};
use keycred::manifest::{EntryOptions, Format, Selector};
use keycred::rotate::{self, RemovePolicy, Verify};
use keycred::token::{entra_code, ClientAuth, ClientOptions, Grant, Target, TokenClient, TokenRequest};
use std::sync::Arc;
use support::*;

#[test]
fn a_failed_verification_keeps_the_aadsts_code_and_puts_the_manifest_back() {
    let dir = TempDir::new("rotation-library");
    let current = credential("current", 365);
    // The emulator knows only `registered.json`; the rotated manifest is another file, so the new
    // certificate is never registered where the token endpoint looks and Entra's refusal follows.
    let registered = dir.path("registered.json");
    write_manifest(&registered, OBJECT_ID, APP_ID, &[entry(&current.cert)]);
    let rotated = dir.path("rotated.json");
    let lines = write_manifest(&rotated, OBJECT_ID, APP_ID, &[entry(&current.cert)]);
    let before = std::fs::read(&rotated).unwrap();
    let emu = emulator(&[&registered], &[(API, &["Data.Read"])], false);

    let new = Arc::new(credential("new", 365));
    let client = TokenClient::new(ClientOptions::default()).unwrap();
    let request = TokenRequest {
        authority: Authority::parse(emu.info().base_url()).unwrap(),
        tenant: TENANT.parse().unwrap(),
        client_id: APP_ID.parse().unwrap(),
        version: EndpointVersion::V2,
        target: Target::new(&[format!("{API}/.default")], None).unwrap(),
        grant: Grant::ClientCredentials,
        auth: ClientAuth::Certificate { cred: new.clone(), alg: keycred::cert::SignatureAlg::Rs256, x5c: false },
    };
    let key_id = lines[0].split("\"keyId\":\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let e = rotate::apply(
        &rotated,
        Format::MsGraph,
        &new,
        &EntryOptions::default(),
        &RemovePolicy::Selected(vec![Selector::key_id(&key_id).unwrap()]),
        Some(Verify { client: &client, request }),
        false,
    )
    .unwrap_err();

    assert_eq!(entra_code(&e), Some(700027), "{e:?}");
    assert_eq!(e.exit_code(), 3, "a remote refusal: {e:?}");
    assert!(e.message().starts_with("verification with the new certificate failed: "), "{}", e.message());
    assert!(e.message().contains("AADSTS700027"), "{}", e.message());
    assert!(e.message().ends_with("taken out of the manifest again and nothing was removed"), "{}", e.message());
    // The token client's hint for 700027 names the new certificate's thumbprint.
    assert!(e.hint().unwrap().contains(&new.cert.thumbprint()), "{:?}", e.hint());
    // The refusal is the source, so the chain reaches Entra's own error.
    assert!(std::error::Error::source(&e).is_some());
    assert_eq!(std::fs::read(&rotated).unwrap(), before, "the manifest is byte for byte as it was");
}
