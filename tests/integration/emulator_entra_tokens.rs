//! What the emulator's tokens and client-authentication refusals look like next to Entra's:
//! Microsoft Graph's access tokens that do not verify as ordinary JWTs, the v1 endpoint's
//! unsigned ID tokens, the claims the access-token reference lists (and `idtyp` only when the
//! resource asks for it), and Entra's codes and wording for an assertion made for another
//! application or signed with an unregistered certificate. Each test cites its evidence.

use crate::emulator_support::*;
use crate::emulator_tenant::{claims_of, code_for, redeem, tenant_with, v1_code_flow, SECRET};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use keycred::cert::{Certificate, SignatureAlg};
use keycred::emulator::EndpointVersion;
use serde_json::{json, Map, Value};

const GRAPH: &str = "https://graph.microsoft.com";

/// The emulator's signing key as a PEM public key, from its JWKS `x5c` through openssl.
async fn jwks_public_pem(base_jwks: &str, dir: &TempDir) -> std::path::PathBuf {
    let jwks: Value = client().get(base_jwks).send().await.unwrap().json().await.unwrap();
    let der = STANDARD.decode(jwks["keys"][0]["x5c"][0].as_str().unwrap()).unwrap();
    let cert = Certificate::from_der(&der, "x5c").unwrap();
    std::fs::write(dir.path("jwks.pem"), cert.to_pem()).unwrap();
    let out = openssl(&["x509", "-noout", "-pubkey", "-in", &dir.s("jwks.pem")]);
    std::fs::write(dir.path("pub.pem"), out.stdout).unwrap();
    dir.path("pub.pem")
}

/// Whether openssl verifies `signature` (RS256) over `input` with `key`.
fn openssl_verifies(dir: &TempDir, key: &std::path::Path, input: &str, signature: &[u8]) -> bool {
    std::fs::write(dir.path("input"), input).unwrap();
    std::fs::write(dir.path("sig"), signature).unwrap();
    let out = std::process::Command::new(OPENSSL)
        .args(["dgst", "-sha256", "-verify"])
        .arg(key)
        .arg("-signature")
        .arg(dir.path("sig"))
        .arg(dir.path("input"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == "Verified OK"
}

fn header_of(token: &str) -> Map<String, Value> {
    let h = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).unwrap()).unwrap()
}

async fn app_only(t: &crate::emulator_tenant::Tenant, scope: &str) -> String {
    let form =
        [("grant_type", "client_credentials"), ("client_id", APP_ID), ("client_secret", SECRET), ("scope", scope)];
    let (s, b) = post(&t.emu.info().token_endpoint(EndpointVersion::V2), &form).await;
    assert_eq!(s, 200, "{scope}: {b}");
    b["access_token"].as_str().unwrap().to_string()
}

/// Microsoft's access-token documentation warns that tokens for Microsoft's own APIs "can use a
/// special format that will not validate as a JWT"
/// (https://learn.microsoft.com/entra/identity-platform/access-tokens): Graph's carry a `nonce`
/// header and are signed over the header whose nonce is replaced by its base64url SHA-256
/// (AzureAD/azure-activedirectory-identitymodel-extensions-for-dotnet issue 609; the
/// transform as published, e.g. justinlettau/azure-ad-verify-token issue 5). So an API that
/// wrongly validates Graph tokens fails against the emulator as it would against Entra.
#[tokio::test]
async fn graph_tokens_do_not_verify_as_ordinary_jwts_but_do_after_graphs_nonce_transform() {
    let t = tenant_with(|c| c.grants = vec![(GRAPH.into(), vec!["Application.Read.All".into()])]).await;
    let dir = TempDir::new("graph-nonce");
    let key = jwks_public_pem(&t.emu.info().jwks_uri(), &dir).await;
    let token = app_only(&t, &format!("{GRAPH}/.default")).await;
    let d = keycred::jwt::dangerous::decode(&token).unwrap();
    let header = header_of(&token);
    let nonce = header["nonce"].as_str().expect("Graph's tokens carry a nonce header").to_string();
    assert_eq!(header["alg"], "RS256");
    assert!(!openssl_verifies(&dir, &key, &d.signing_input, &d.signature), "verified as an ordinary JWT");
    // The transform, with openssl's SHA-256: the header re-encoded with the hashed nonce.
    std::fs::write(dir.path("nonce"), &nonce).unwrap();
    let digest = openssl(&["dgst", "-sha256", "-binary", &dir.s("nonce")]).stdout;
    let mut transformed = header.clone();
    transformed.insert("nonce".into(), json!(URL_SAFE_NO_PAD.encode(digest)));
    let payload = token.split('.').nth(1).unwrap();
    let input = format!("{}.{payload}", URL_SAFE_NO_PAD.encode(serde_json::to_vec(&transformed).unwrap()));
    assert!(openssl_verifies(&dir, &key, &input, &d.signature), "Graph's transform verifies");

    // A token for another API has no nonce and verifies as it is.
    let other = app_only(&t, "api://keycred-mid/.default").await;
    assert!(header_of(&other).get("nonce").is_none());
    let o = keycred::jwt::dangerous::decode(&other).unwrap();
    assert!(openssl_verifies(&dir, &key, &o.signing_input, &o.signature));

    // The emulator's Graph checks its tokens as Graph does: this one passes, one whose nonce was
    // changed does not.
    let graph = format!("{}/v1.0/applications?$select=appId", t.emu.info().base_url());
    let r = client().get(&graph).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let mut changed = header.clone();
    changed.insert("nonce".into(), json!(format!("{nonce}x")));
    let forged = format!(
        "{}.{payload}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&changed).unwrap()),
        URL_SAFE_NO_PAD.encode(&d.signature)
    );
    let r = client().get(&graph).bearer_auth(&forged).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);

    // `keycred decode --verify` refuses it and says why.
    let args =
        vec!["decode".to_string(), token, "--verify".into(), "--authority".into(), t.emu.info().base_url().to_string()]
            .into_iter()
            .chain(["--tenant".to_string(), TENANT.to_string()])
            .collect::<Vec<_>>();
    let out = tokio::task::spawn_blocking(move || keycred_command(&args, &[]).output().unwrap()).await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("nonce") && stderr.contains("Microsoft Graph"), "{stderr}");
}

/// The v1 endpoint's ID token is "An unsigned JSON Web Token (JWT)" whose header is
/// `{"typ": "JWT", "alg": "none"}` (Authorize access to Azure Active Directory web applications
/// using the OAuth 2.0 code grant flow, v1.0,
/// https://learn.microsoft.com/previous-versions/azure/active-directory/azuread-dev/v1-protocols-oauth-code;
/// the Office 365 Management API's sample answer starts its id_token with that header too). The
/// v2 endpoint's ID tokens are signed.
#[tokio::test]
async fn v1_id_tokens_are_unsigned_and_v2_id_tokens_signed() {
    let t = tenant_with(|_| {}).await;
    let (s, b) = v1_code_flow(&t.emu, APP_ID, GRAPH, "").await;
    assert_eq!(s, 200, "{b}");
    let id = b["id_token"].as_str().unwrap();
    let parts: Vec<&str> = id.split('.').collect();
    assert_eq!(parts.len(), 3, "{id}");
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header, json!({"typ": "JWT", "alg": "none"}));
    assert_eq!(parts[2], "", "no signature");
    let c = claims_of(&b["id_token"]);
    assert_eq!((c["tid"].as_str(), c["aud"].as_str(), c["ver"].as_str()), (Some(TENANT), Some(APP_ID), Some("1.0")));

    let code = code_for(&t.emu, APP_ID, "openid User.Read", "").await;
    let (s, b) = redeem(&t.emu, APP_ID, &code, &[]).await;
    assert_eq!(s, 200, "{b}");
    let v2 = keycred::jwt::dangerous::decode(b["id_token"].as_str().unwrap()).unwrap();
    assert_eq!(v2.alg(), Some("RS256"));
    assert!(v2.verify(SignatureAlg::Rs256, t.emu.info().jwks_public_key()), "the v2 ID token is signed");
}

/// Claims follow Microsoft's references. `idtyp` is an optional claim: "By default it's only
/// emitted for app-only tokens" once the resource names it in `optionalClaims.accessToken`, and
/// in user tokens with `include_user_token`
/// (https://learn.microsoft.com/entra/identity-platform/optional-claims-reference). Microsoft
/// Graph's own tokens carry it (`app`, and `user` in delegated tokens, in decoded Graph tokens
/// published in public repositories). `aio` and `rh` are internal claims every token carries
/// (https://learn.microsoft.com/entra/identity-platform/access-token-claims-reference); `sid`,
/// `wids` and the `xms_*` claims are optional or configured, absent by default.
#[tokio::test]
async fn idtyp_only_when_the_resource_asks_and_the_reference_claims_are_there() {
    const TYPED: &str = "3a4b5c6d-7e8f-4a1b-9c2d-3e4f5a6b7c8d";
    const APP_TYPED: &str = "4b5c6d7e-8f9a-4b2c-8d3e-4f5a6b7c8d9e";
    let dir = TempDir::new("emu-idtyp");
    let resource = |id: &str, uri: &str, user_too: bool| {
        let props = if user_too { json!(["include_user_token"]) } else { json!([]) };
        json!({
            "appId": id, "displayName": uri, "identifierUris": [uri],
            "api": {"requestedAccessTokenVersion": null, "oauth2PermissionScopes": [
                {"id": "5c6d7e8f-9a0b-4c3d-8e4f-5a6b7c8d9e0f", "value": "read", "type": "User"}]},
            "optionalClaims": {"accessToken": [{"name": "idtyp", "additionalProperties": props}]},
            "keyCredentials": [],
        })
    };
    let paths = [
        (dir.path("typed.json"), resource(TYPED, "api://keycred-typed", true)),
        (dir.path("app-typed.json"), resource(APP_TYPED, "api://keycred-app-typed", false)),
    ];
    for (p, m) in &paths {
        std::fs::write(p, serde_json::to_string_pretty(m).unwrap()).unwrap();
    }
    let t = tenant_with(|c| c.manifests.extend(paths.iter().map(|(p, _)| p.clone()))).await;

    let idtyp = |token: &str| keycred::jwt::dangerous::decode(token).unwrap().claims.get("idtyp").cloned();
    for (scope, want) in [
        ("api://keycred-typed/.default", Some(json!("app"))),
        ("api://keycred-app-typed/.default", Some(json!("app"))),
        ("api://keycred-mid/.default", None),
        ("https://graph.microsoft.com/.default", Some(json!("app"))),
    ] {
        let token = app_only(&t, scope).await;
        assert_eq!(idtyp(&token), want, "app-only token for {scope}");
        let c = keycred::jwt::dangerous::decode(&token).unwrap().claims;
        for opaque in ["aio", "rh", "uti"] {
            assert!(c[opaque].as_str().is_some_and(|v| !v.is_empty()), "{opaque} in {scope}: {c:?}");
        }
        for absent in ["sid", "wids", "xms_cc", "xms_tcdt"] {
            assert!(c.get(absent).is_none(), "{absent} in {scope}");
        }
    }
    for (scope, want) in [
        ("api://keycred-typed/read", Some(json!("user"))),
        ("api://keycred-app-typed/read", None),
        ("User.Read", Some(json!("user"))),
    ] {
        let code = code_for(&t.emu, APP_ID, &format!("openid {scope}"), "").await;
        let (s, b) = redeem(&t.emu, APP_ID, &code, &[]).await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(idtyp(b["access_token"].as_str().unwrap()), want, "user token for {scope}");
        let id = claims_of(&b["id_token"]);
        assert!(id["aio"].is_string() && id["rh"].is_string() && id["uti"].is_string(), "{id:?}");
        assert!(id.get("idtyp").is_none(), "{id:?}");
    }
}

/// An assertion whose `iss`/`sub` name another application than `client_id` is AADSTS700021
/// "Client assertion application identifier doesn't match 'client_id' parameter.", whatever key
/// signed it: azure-identity's troubleshooting guides list it for ClientAssertionCredential
/// (e.g. https://github.com/Azure/azure-sdk-for-python/blob/main/sdk/identity/azure-identity/TROUBLESHOOTING.md),
/// and MSAL.NET's tests keep Entra's answer (`IdentifierMismatchError700021`, invalid_client).
#[tokio::test]
async fn an_assertion_for_another_application_is_700021_whatever_key_signed_it() {
    let f = fixture().await;
    let other_app = "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a";
    let stranger = credential("another application's certificate");
    for cred in [&stranger, &f.cred] {
        let assertion = signed_assertion(cred, other_app, &f.v2(), SignatureAlg::Rs256);
        let got = post(&f.v2(), &client_credentials_form(APP_ID, &format!("{API}/.default"), &assertion)).await;
        let d = assert_entra_error(&got, 401, "invalid_client", 700021);
        assert!(
            d.starts_with("AADSTS700021: Client assertion application identifier doesn't match 'client_id' parameter."),
            "{d}"
        );
    }
}

/// Entra's current wording for a certificate it does not know: "AADSTS700027: The certificate
/// with identifier used to sign the client assertion is not registered on application. [Reason
/// - The key was not found., Thumbprint of key used by client: '...', Please visit the Azure
/// Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '...'."
/// (MSAL.js issue 8339, https://github.com/AzureAD/microsoft-authentication-library-for-js/issues/8339;
/// Keycloak issue 19425).
#[tokio::test]
async fn an_unregistered_certificate_is_700027_in_entras_current_wording() {
    let f = fixture().await;
    let dir = TempDir::new("emu-700027");
    let stranger = credential("a certificate nobody registered");
    std::fs::write(dir.path("stranger.pem"), stranger.cert.to_pem()).unwrap();
    let hex = openssl_fingerprint_hex(&dir.s("stranger.pem"), &[], "sha1");
    let assertion = signed_assertion(&stranger, APP_ID, &f.v2(), SignatureAlg::Rs256);
    let got = post(&f.v2(), &client_credentials_form(APP_ID, &format!("{API}/.default"), &assertion)).await;
    let d = assert_entra_error(&got, 401, "invalid_client", 700027);
    let want = format!(
        "AADSTS700027: The certificate with identifier used to sign the client assertion is not registered on \
         application. [Reason - The key was not found., Thumbprint of key used by client: '{hex}', Please visit the \
         Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{APP_ID}'."
    );
    assert!(d.starts_with(&want), "{d}");
}
