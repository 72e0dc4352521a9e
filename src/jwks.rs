//! JSON Web Key Sets (RFC 7517) and verifying a token's signature with one, as Entra's own
//! validators do: the key is the set's entry whose `kid` (else `x5t`) the token's header names,
//! an RSA key (`kty` `RSA`, `n`, `e`), and the algorithm is the header's `alg` (RS256 or PS256).
//!
//! Where the set comes from (a JWKS URL, or an authority's OpenID configuration `jwks_uri`) is
//! the caller's business; [`crate::token::TokenClient::get_json_blocking`] fetches either.

use crate::cert::SignatureAlg;
use crate::jwt::Decoded;
use crate::{Error, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;

/// What a successful verification used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The key's `kid` (or `x5t`).
    pub kid: String,
    /// The algorithm, `RS256` or `PS256`.
    pub alg: &'static str,
}

/// Verifies `token`'s signature with the key of `jwks` it names. `origin` names the set in
/// errors. A bad signature, an unknown key or an algorithm other than RS256/PS256 is an error.
pub fn verify(token: &Decoded, jwks: &Value, origin: &str) -> Result<Verified> {
    let alg = match token.header.get("alg").and_then(Value::as_str) {
        Some("RS256") => SignatureAlg::Rs256,
        Some("PS256") => SignatureAlg::Ps256,
        other => {
            return Err(Error::input(format!(
                "the token's alg is {}, not RS256 or PS256: keycred verifies only the algorithms Entra signs with",
                other.map_or("missing".to_string(), |a| format!("{a:?}"))
            )))
        }
    };
    let named = ["kid", "x5t"].iter().find_map(|k| token.header.get(*k).and_then(Value::as_str).map(|v| (*k, v)));
    let Some((field, id)) = named else {
        return Err(Error::input("the token's header names no key (no kid, no x5t)"));
    };
    let keys = jwks.get("keys").and_then(Value::as_array).ok_or_else(|| {
        Error::input(format!("{origin}: not a JSON Web Key Set (no \"keys\" array)"))
            .with_hint("give the JWKS URL (jwks_uri of the OpenID configuration), e.g. https://login.microsoftonline.com/TENANT/discovery/v2.0/keys")
    })?;
    let key = keys.iter().find(|k| k.get(field).and_then(Value::as_str) == Some(id)).ok_or_else(|| {
        Error::input(format!("{origin}: no key with {field} {id}, the key the token was signed with")).with_hint(
            "the token was issued by another tenant or authority (check its iss claim), or the keys rolled over",
        )
    })?;
    let part = |name: &str| -> Result<Vec<u8>> {
        key.get(name)
            .and_then(Value::as_str)
            .and_then(|s| URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok())
            .filter(|b| !b.is_empty())
            .ok_or_else(|| Error::input(format!("{origin}: key {id} has no usable RSA {name}")))
    };
    if key.get("kty").and_then(Value::as_str) != Some("RSA") {
        return Err(Error::input(format!("{origin}: key {id} is not an RSA key")));
    }
    let (n, e) = (part("n")?, part("e")?);
    let params: &aws_lc_rs::signature::RsaParameters = match alg {
        SignatureAlg::Rs256 => &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
        SignatureAlg::Ps256 => &aws_lc_rs::signature::RSA_PSS_2048_8192_SHA256,
    };
    aws_lc_rs::signature::RsaPublicKeyComponents { n: &n, e: &e }
        .verify(params, token.signing_input.as_bytes(), &token.signature)
        .map_err(|_| {
            let e = Error::check(format!(
                "the signature does not verify with key {id} of {origin}: do not trust this token"
            ));
            if token.header.contains_key("nonce") {
                // Microsoft Graph's access tokens are signed over a transformed header and are
                // meant to be checked by Graph alone; the usual reason such a token "fails".
                e.with_hint(
                    "this token's header has a nonce, as Microsoft Graph's access tokens do: those are checked by \
                     Graph alone and do not verify elsewhere; verify tokens issued for your own API instead",
                )
            } else {
                e
            }
        })?;
    Ok(Verified { kid: id.to_string(), alg: alg.jose() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::dangerous;

    /// `RSAPublicKey ::= SEQUENCE { modulus, publicExponent }` as unsigned big-endian bytes.
    fn rsa_components(der: &[u8]) -> (Vec<u8>, Vec<u8>) {
        crate::cert::signer::rsa_numbers(der).unwrap()
    }

    #[test]
    fn verifies_with_the_named_key_and_refuses_others() {
        let cred = crate::cert::generate(&crate::cert::NewCertificate {
            subject: "CN=jwks".into(),
            key_size: crate::cert::KeySize::Rsa2048,
            validity: crate::cert::Validity::Days(2),
        })
        .unwrap();
        let (cert, key) = cred;
        let mut header = serde_json::Map::new();
        header.insert("kid".into(), "k1".into());
        let token = crate::jwt::sign(&key, SignatureAlg::Rs256, header, &serde_json::json!({"aud": "x"})).unwrap();
        let d = dangerous::decode(&token).unwrap();
        let spki = cert.rsa_public_key().unwrap();
        // n and e from the certificate's RSAPublicKey, as a JWKS carries them.
        let (n, e) = rsa_components(spki);
        let jwk = |kid: &str| serde_json::json!({"kty": "RSA", "kid": kid, "n": URL_SAFE_NO_PAD.encode(&n), "e": URL_SAFE_NO_PAD.encode(&e)});
        let set = serde_json::json!({"keys": [jwk("other"), jwk("k1")]});
        assert_eq!(verify(&d, &set, "set").unwrap(), Verified { kid: "k1".into(), alg: "RS256" });
        let e = verify(&d, &serde_json::json!({"keys": [jwk("other")]}), "set").unwrap_err();
        assert!(e.to_string().contains("no key with kid k1"), "{e}");
        let mut forged = dangerous::decode(&token).unwrap();
        forged.signing_input.push('x');
        let refused = verify(&forged, &set, "set").unwrap_err();
        assert_eq!(refused.exit_code(), 4);
        assert!(refused.hint().is_none(), "{refused:?}");
        // A header with a nonce (Microsoft Graph's tokens) gets the hint that says why.
        let mut header = serde_json::Map::new();
        header.insert("kid".into(), "k1".into());
        header.insert("nonce".into(), "abc".into());
        let graph = crate::jwt::sign(&key, SignatureAlg::Rs256, header, &serde_json::json!({"aud": "x"})).unwrap();
        let mut graph = dangerous::decode(&graph).unwrap();
        graph.signing_input.push('x');
        let e = verify(&graph, &set, "set").unwrap_err();
        assert!(e.hint().unwrap().contains("Microsoft Graph"), "{e:?}");
    }
}
