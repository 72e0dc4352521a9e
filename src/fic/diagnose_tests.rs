//! The judgement on tokens signed here, each failure produced on purpose.

use super::*;
use crate::cert::{generate, KeySize, NewCertificate, SignatureAlg, Validity};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Map};

const ISS: &str = "http://127.0.0.1:9/issuers/gh";
const SUB: &str = "repo:octo-org/octo-repo:ref:refs/heads/main";

struct Issuer {
    key: crate::cert::PrivateKey,
    jwks: Value,
}

fn issuer() -> Issuer {
    let (cert, key) = generate(&NewCertificate {
        subject: "CN=test issuer".into(),
        key_size: KeySize::Rsa2048,
        validity: Validity::Days(2),
    })
    .unwrap();
    // n and e from the certificate's RSAPublicKey (SEQUENCE { n, e }).
    let (n, e) = crate::cert::signer::rsa_numbers(cert.rsa_public_key().unwrap()).unwrap();
    let jwks =
        json!({"keys": [{"kty": "RSA", "kid": "k1", "n": URL_SAFE_NO_PAD.encode(n), "e": URL_SAFE_NO_PAD.encode(e)}]});
    Issuer { key, jwks }
}

fn token(i: &Issuer, kid: &str, claims: Value) -> String {
    let mut h = Map::new();
    h.insert("kid".into(), kid.into());
    crate::jwt::sign(&i.key, SignatureAlg::Rs256, h, &claims).unwrap()
}

fn claims(now: i64) -> Value {
    json!({"iss": ISS, "sub": SUB, "aud": "api://AzureADTokenExchange", "iat": now, "nbf": now, "exp": now + 600})
}

fn fics() -> Vec<FederatedIdentityCredential> {
    vec![FederatedIdentityCredential::new("main", ISS, SUB)]
}

#[test]
fn each_failure_gets_entras_code() {
    let i = issuer();
    let now = 1_800_000_000;
    let f = fics();
    let keys = |set: &Value| {
        let set = set.clone();
        move |_: &str| Ok(set)
    };
    let code = |t: &str, now: i64| judge(&f, t, keys(&i.jwks), now).map(|c| c.name.clone()).map_err(|r| r.code());
    assert_eq!(code(&token(&i, "k1", claims(now)), now), Ok("main".to_string()));
    assert_eq!(code("not a token", now), Err(50027));

    let mut c = claims(now);
    c["iss"] = json!(format!("{ISS}/"));
    assert_eq!(code(&token(&i, "k1", c), now), Err(700211), "a trailing slash is another issuer");
    assert_eq!(code(&token(&i, "k2", claims(now)), now), Err(7000272));
    let forged = format!("{}x", &token(&i, "k1", claims(now))[..]);
    let mut parts: Vec<&str> = forged.split('.').collect();
    let other = token(&i, "k1", json!({"iss": ISS, "sub": "x", "exp": now + 600}));
    parts[2] = other.split('.').nth(2).unwrap();
    assert_eq!(code(&parts.join("."), now), Err(900384));
    assert_eq!(code(&token(&i, "k1", claims(now)), now + 600 + 301), Err(700024));
    assert_eq!(code(&token(&i, "k1", claims(now)), now + 600 + 299), Ok("main".into()), "five minutes' skew");

    let mut c = claims(now);
    c["sub"] = json!("repo:octo-org/other:ref:refs/heads/main");
    assert_eq!(code(&token(&i, "k1", c), now), Err(700213));
    let mut c = claims(now);
    c["sub"] = json!("repo:Octo-Org/octo-repo:ref:refs/heads/main");
    assert_eq!(code(&token(&i, "k1", c), now), Err(7002138));
    let mut c = claims(now);
    c["aud"] = json!("api://AzureADMyOrg");
    assert_eq!(code(&token(&i, "k1", c), now), Err(700212));

    let unreachable = judge(&f, &token(&i, "k1", claims(now)), |_| Err("down".into()), now).unwrap_err();
    assert_eq!((unreachable.code(), unreachable.error()), (90061, "invalid_request"));
    assert_eq!(unreachable.entra_text(), "Request to External OIDC endpoint failed.");
}

#[test]
fn texts_are_entras() {
    let r = Refused::SubjectCase { subject: "repo:A/b:environment:Production".into(), credential: "c".into() };
    let t = r.entra_text();
    assert!(t.starts_with("No matching federated identity record found for presented assertion subject 'repo:A/b:environment:Production'. The subject matches with case-insensitive comparison, but not with case-sensitive comparison."), "{t}");
    assert_eq!(r.error(), "invalid_client");
    let t = Refused::UnknownIssuer { issuer: "https://x/".into() }.entra_text();
    assert!(
        t.starts_with(
            "No matching federated identity record found for presented assertion issuer 'https://x/'. Please check"
        ),
        "{t}"
    );
}
