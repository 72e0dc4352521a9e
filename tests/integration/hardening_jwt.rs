//! JWT attacks against the in-process emulator, each refused with Entra's code and status. The
//! ones already in `emulator_validation.rs` (alg none, a forged HS256 MAC, x5c of an unknown
//! certificate with kid/jku, tampered payload, expired/nbf, wrong audience URL, iss of another
//! app, oversized form) are not repeated; these are the rest of the attack list.

use crate::emulator_support;

use emulator_support::*;
use keycred::cert::SignatureAlg;
use keycred::thumbprint::b64url;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};

/// HMAC-SHA256 (RFC 2104), written out so the test depends on no MAC crate.
fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut k = if key.len() > 64 { Sha256::digest(key).to_vec() } else { key.to_vec() };
    k.resize(64, 0);
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::digest([ipad.as_slice(), msg].concat());
    Sha256::digest([opad.as_slice(), inner.as_slice()].concat()).to_vec()
}

/// Signs raw header and payload JSON texts (possibly with duplicate members) with `alg`.
fn sign_raw(f: &Fixture, alg: SignatureAlg, header: &str, payload: &str) -> String {
    let input = format!("{}.{}", b64url(header.as_bytes()), b64url(payload.as_bytes()));
    let sig = f.cred.key.sign(alg, input.as_bytes()).unwrap();
    format!("{input}.{}", b64url(&sig))
}

fn header_with(f: &Fixture, alg: &str, extra: &[(&str, Value)]) -> Map<String, Value> {
    let mut h = Map::new();
    h.insert("alg".into(), json!(alg));
    h.insert("typ".into(), json!("JWT"));
    h.insert("x5t".into(), json!(f.cred.cert.x5t()));
    for (k, v) in extra {
        h.insert((*k).into(), v.clone());
    }
    h
}

fn raw_with_header(f: &Fixture, alg: SignatureAlg, h: &Map<String, Value>, claims: &Value) -> String {
    sign_raw(f, alg, &Value::Object(h.clone()).to_string(), &claims.to_string())
}

#[tokio::test]
async fn jwt_attacks_are_refused_with_entra_codes() {
    let f = fixture().await;
    let other = credential("attacker");
    let aud = f.v2();
    let claims = f.claims(&aud);
    let cert_pub = f.cred.cert.rsa_public_key().unwrap().to_vec();

    // (name, token, status, error, code, text the description must contain)
    let mut attacks: Vec<(&str, String, u16, &str, u64, &str)> = Vec::new();

    // HS256 with the certificate's public key (DER and PEM) as the HMAC secret: the classic
    // algorithm-confusion attack on verifiers that take the key type from the header.
    for (name, key) in [
        ("HS256 keyed with the public key DER", cert_pub.clone()),
        ("HS256 keyed with the PEM", f.cred.cert.to_pem().into_bytes()),
    ] {
        let h = Value::Object(header_with(&f, "HS256", &[])).to_string();
        let input = format!("{}.{}", b64url(h.as_bytes()), b64url(claims.to_string().as_bytes()));
        let t = format!("{input}.{}", b64url(&hmac_sha256(&key, input.as_bytes())));
        attacks.push((name, t, 400, "invalid_request", 5002738, "'HS256' is not a supported signature algorithm"));
    }
    for alg in ["RS384", "RS512", "ES256", "PS512", "rs256", "NONE"] {
        let t = raw_with_header(&f, SignatureAlg::Rs256, &header_with(&f, alg, &[]), &claims);
        attacks.push((
            "other or miscased alg",
            t,
            400,
            "invalid_request",
            5002738,
            "is not a supported signature algorithm",
        ));
    }
    // RS256/PS256 confusion: the header names one, the signature is the other.
    let t = raw_with_header(&f, SignatureAlg::Rs256, &header_with(&f, "PS256", &[]), &claims);
    attacks.push(("PS256 header, PKCS#1 signature", t, 401, "invalid_client", 700027, "did not match"));
    let t = raw_with_header(&f, SignatureAlg::Ps256, &header_with(&f, "RS256", &[]), &claims);
    attacks.push(("RS256 header, PSS signature", t, 401, "invalid_client", 700027, "did not match"));
    // Key pointers other than the thumbprint are never followed.
    for (name, k, v) in [
        ("x5u pointing elsewhere", "x5u", json!("https://attacker.example/cert.pem")),
        ("jku pointing elsewhere", "jku", json!("https://attacker.example/jwks")),
        ("kid naming the registered cert", "kid", json!(f.cred.cert.x5t())),
        ("jwk embedding the attacker key", "jwk", json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"})),
    ] {
        let h = header_with(&f, "RS256", &[(k, v)]);
        let t = keycred::jwt::sign(&other.key, SignatureAlg::Rs256, h, &claims).unwrap();
        attacks.push((name, t, 401, "invalid_client", 700027, "did not match"));
    }
    // kid alone (no x5t) is not a thumbprint.
    let mut h = Map::new();
    h.insert("alg".into(), json!("RS256"));
    h.insert("kid".into(), json!(f.cred.cert.x5t()));
    attacks.push((
        "kid without x5t",
        raw_with_header(&f, SignatureAlg::Rs256, &h, &claims),
        400,
        "invalid_request",
        50027,
        "No certificate thumbprint",
    ));
    // x5c carrying the registered certificate, signed by another key under the attacker's x5t.
    let h = {
        let mut h = header_with(&f, "RS256", &[("x5c", json!([f.cred.cert.value_b64()]))]);
        h.insert("x5t".into(), json!(other.cert.x5t()));
        h
    };
    let t = keycred::jwt::sign(&other.key, SignatureAlg::Rs256, h, &claims).unwrap();
    attacks.push((
        "x5c of the registered cert, x5t of the attacker",
        t,
        401,
        "invalid_client",
        700027,
        "The key was not found.",
    ));
    // Audience of another tenant on the same host, and of another endpoint of this one.
    for a in [
        aud.replace(TENANT, "11111111-2222-4333-8444-555555555555"),
        aud.replace("/oauth2/v2.0/token", "/oauth2/v2.0/authorize"),
    ] {
        let mut c = claims.clone();
        c["aud"] = json!(a);
        attacks.push((
            "aud of another tenant or endpoint",
            f.signed(f.header(), c),
            401,
            "invalid_client",
            700023,
            "audience",
        ));
    }
    // iss = sub = another app (the registered key signs it): 700021.
    let mut c = claims.clone();
    c["iss"] = json!("0d9a8f1e-0000-4000-8000-000000000000");
    c["sub"] = json!("0d9a8f1e-0000-4000-8000-000000000000");
    attacks.push(("iss of another app", f.signed(f.header(), c), 401, "invalid_client", 700021, "client_id"));
    // Signature stripped: empty third segment, and no third segment.
    let good = f.assertion(&aud);
    let (input, _) = good.rsplit_once('.').unwrap();
    attacks.push(("signature emptied", format!("{input}."), 401, "invalid_client", 700027, "did not match"));
    attacks.push(("signature segment removed", input.to_string(), 400, "invalid_request", 50027, "malformed"));
    // Duplicate member names: a verifier reading the first and a validator reading the last
    // would disagree; both are refused before anything is judged.
    let hdr = format!(r#"{{"alg":"RS256","typ":"JWT","x5t":"{}","alg":"none"}}"#, f.cred.cert.x5t());
    attacks.push((
        "duplicate alg in header",
        sign_raw(&f, SignatureAlg::Rs256, &hdr, &claims.to_string()),
        400,
        "invalid_request",
        50027,
        "malformed",
    ));
    let good_hdr = format!(r#"{{"alg":"RS256","typ":"JWT","x5t":"{}"}}"#, f.cred.cert.x5t());
    let payload = claims.to_string().replacen('{', r#"{"aud":"https://attacker.example/token","#, 1);
    attacks.push((
        "duplicate aud in payload",
        sign_raw(&f, SignatureAlg::Rs256, &good_hdr, &payload),
        400,
        "invalid_request",
        50027,
        "malformed",
    ));
    // A validly signed token over 16 KB.
    let mut c = claims.clone();
    c["pad"] = json!("p".repeat(17 * 1024));
    attacks.push(("token over 16 KB", f.signed(f.header(), c), 400, "invalid_request", 50027, "malformed"));
    // Non-numeric or absent exp.
    let mut c = claims.clone();
    c["exp"] = json!("tomorrow");
    attacks.push(("exp a string", f.signed(f.header(), c), 400, "invalid_request", 50027, "exp"));

    let mut failures = Vec::new();
    for (name, token, status, error, code, text) in &attacks {
        let (s, b) = f.post_v2_assertion(token).await;
        let ok = s == *status
            && b["error"] == *error
            && b["error_codes"] == json!([code])
            && b["error_description"].as_str().is_some_and(|d| d.contains(text));
        if !ok {
            failures.push(format!("[{name}] expected {status} {error} {code} ~{text:?}, got {s} {b}"));
        }
        if s == 200 {
            failures.push(format!("[{name}] WAS ACCEPTED"));
        }
    }
    assert!(failures.is_empty(), "{} of {} attacks misjudged:\n{}", failures.len(), attacks.len(), failures.join("\n"));
    // The same genuine assertion is still accepted: the refusals are not a broken fixture.
    assert_eq!(f.post_v2_assertion(&f.assertion(&aud)).await.0, 200);
}

/// A body over 1 MB sent chunked (no Content-Length to refuse up front) is cut off with 413.
#[tokio::test]
async fn chunked_body_over_one_megabyte_is_413() {
    let f = fixture().await;
    let url = url::Url::parse(&f.v2()).unwrap();
    let addr = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
    let path = url.path().to_string();
    let status = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
        s.write_all(head.as_bytes()).unwrap();
        let chunk = format!("10000\r\n{}\r\n", "a".repeat(0x10000));
        for _ in 0..20 {
            if s.write_all(chunk.as_bytes()).is_err() {
                break;
            }
        }
        let _ = s.write_all(b"0\r\n\r\n");
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).to_string()
    })
    .await
    .unwrap();
    assert!(status.starts_with("HTTP/1.1 413"), "{status}");
}
