//! `keycred decode --verify` checks a token as the API it is meant for would: the signature,
//! then `exp`/`nbf` with 5 minutes of clock skew, `iss` and `tid` against `--tenant`, `aud`
//! against `--audience`, each failure named and exit 4. Entra signs every tenant's tokens with
//! the same keys (Microsoft's access-token documentation tells APIs to check `iss` and `tid` for
//! that reason), so the tokens here are signed by one key and differ only in their claims. The
//! OpenID configurations and the JWKS come from a loopback server; the clock skew is
//! Microsoft.IdentityModel's `TokenValidationParameters.DefaultClockSkew` (300 s).
//!
//! And `AZURE_TENANT_ID`, which the README tells users to export, never makes `--verify`
//! required: `decode TOKEN` alone decodes.

use crate::token_support::{keycred, stderr, stdout};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use keycred::cert::{LoadedCredential, SignatureAlg};
use serde_json::{json, Value};

const TID: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const OTHER_TID: &str = "f8cdef31-a31e-4b4a-93e4-5f571e91255a";
const API: &str = "api://keycred-verify-test";

/// A key that signs tokens, and the loopback server publishing it for [`TID`].
struct Issuer {
    cred: LoadedCredential,
}

impl Issuer {
    fn new() -> Self {
        Issuer { cred: crate::common::credential_for_days("token issuer", 30) }
    }

    /// A token signed with the key (`kid` k1) holding `claims`.
    fn sign(&self, claims: Value) -> String {
        let mut header = serde_json::Map::new();
        header.insert("typ".into(), json!("JWT"));
        header.insert("kid".into(), json!("k1"));
        keycred::jwt::sign(&*self.cred.key, SignatureAlg::Rs256, header, &claims).unwrap()
    }

    /// The tenant's v2 and v1 OpenID configurations and the JWKS they name, on a loopback
    /// server of their own (stopped on drop).
    fn server(&self) -> Published {
        use pkcs8::der::{asn1::UintRef, Reader, SliceReader};
        let mut r = SliceReader::new(self.cred.cert.rsa_public_key().unwrap()).unwrap();
        let (n, e) = r
            .sequence(|r| {
                let n: UintRef<'_> = r.decode()?;
                let e: UintRef<'_> = r.decode()?;
                Ok((n.as_bytes().to_vec(), e.as_bytes().to_vec()))
            })
            .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let jwks = json!({"keys": [{"kty": "RSA", "use": "sig", "kid": "k1",
                                    "n": URL_SAFE_NO_PAD.encode(n), "e": URL_SAFE_NO_PAD.encode(e)}]});
        let v2 = json!({"issuer": format!("https://login.microsoftonline.com/{TID}/v2.0"),
                        "jwks_uri": format!("{base}/{TID}/discovery/v2.0/keys")});
        let v1 = json!({"issuer": format!("https://sts.windows.net/{TID}/"),
                        "jwks_uri": format!("{base}/common/discovery/keys")});
        let doc = |v: Value| {
            axum::routing::get(move || {
                let v = v.clone();
                async move { axum::Json(v) }
            })
        };
        let app = axum::Router::new()
            .route(&format!("/{TID}/v2.0/.well-known/openid-configuration"), doc(v2))
            .route(&format!("/{TID}/.well-known/openid-configuration"), doc(v1))
            .route(&format!("/{TID}/discovery/v2.0/keys"), doc(jwks));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let stopped = async move {
                    let _ = stopped.await;
                };
                axum::serve(listener, app).with_graceful_shutdown(stopped).await.unwrap();
            });
        });
        Published { base, stop: Some(stop), thread: Some(thread) }
    }
}

/// A running loopback server publishing an issuer's documents.
struct Published {
    base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Published {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn now() -> i64 {
    keycred::jwt::now_secs()
}

/// An app-only v1 token of [`TID`] for [`API`], issued now as Entra issues them.
fn claims() -> Value {
    json!({"aud": API, "iss": format!("https://sts.windows.net/{TID}/"), "tid": TID, "iat": now() - 300,
           "nbf": now() - 300, "exp": now() + 3300, "appid": "6731de76-14a6-49ae-97bc-6eba6914391e",
           "roles": ["Data.Read"], "ver": "1.0"})
}

/// `claims()` with `changes` applied (`null` removes the claim).
fn claims_with(changes: Value) -> Value {
    let mut c = claims();
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

/// `decode TOKEN --verify` against a fresh server, `--tenant` TID unless `extra` or `env` name
/// it; returns (exit code, stdout, stderr).
fn verify(issuer: &Issuer, token: &str, extra: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let server = issuer.server();
    let mut args = vec!["decode", token, "--verify", "--authority", &server.base];
    if !extra.contains(&"--tenant") && env.is_empty() {
        args.extend(["--tenant", TID]);
    }
    args.extend_from_slice(extra);
    let o = keycred(&args, env);
    (o.status.code().unwrap_or(-1), stdout(&o), stderr(&o))
}

#[test]
fn a_token_of_the_tenant_within_its_lifetime_and_for_the_audience_verifies() {
    let issuer = Issuer::new();
    let token = issuer.sign(claims());
    let (code, out, err) = verify(&issuer, &token, &["--audience", API, "-o", "json"], &[]);
    assert_eq!(code, 0, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["verified"], true);
    let with = &v["verifiedWith"];
    assert_eq!(with["kid"], "k1");
    assert_eq!(with["issuer"], format!("https://sts.windows.net/{TID}/"));
    assert_eq!(with["tenant"], TID);
    assert_eq!(with["audience"], API);
    assert_eq!(with["clockSkewSeconds"], 300);
    // A v2 token (the other issuer of the tenant), expired 2 minutes ago: within the skew.
    let v2 = issuer.sign(claims_with(json!({"iss": format!("https://login.microsoftonline.com/{TID}/v2.0"),
                                            "exp": now() - 120, "ver": "2.0"})));
    let (code, out, err) = verify(&issuer, &v2, &[], &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.lines().nth(1).unwrap().starts_with("claims valid: issuer https://login.microsoftonline.com/"),
        "{out}"
    );
    assert!(out.contains("audience not checked (no --audience)"), "{out}");
}

#[test]
fn each_failed_check_is_named_and_exits_4() {
    let issuer = Issuer::new();
    let other_iss = format!("https://sts.windows.net/{OTHER_TID}/");
    let cases: [(&str, Value, &[&str], &str); 7] = [
        ("expired an hour ago", json!({"exp": now() - 3600}), &[], "the token expired at "),
        ("not yet valid for an hour", json!({"nbf": now() + 3600}), &[], "the token is not valid before "),
        ("without exp", json!({"exp": null}), &[], "the token has no expiry (exp claim)"),
        (
            "of another tenant",
            json!({"iss": other_iss, "tid": OTHER_TID}),
            &[],
            "the token's issuer (iss) is \"https://sts.windows.net/f8cdef31",
        ),
        ("with another tid", json!({"tid": OTHER_TID}), &[], "the token's tenant (tid) is \"f8cdef31"),
        ("without tid", json!({"tid": null}), &[], "the token's tenant (tid) is missing"),
        ("for another API", json!({}), &["--audience", "api://another"], "the token's audience (aud) is api://keycred"),
    ];
    for (what, changes, extra, want) in cases {
        let token = issuer.sign(claims_with(changes));
        let (code, out, err) = verify(&issuer, &token, extra, &[]);
        assert_eq!(code, 4, "{what}: {out}{err}");
        assert!(err.contains(want), "{what}: {err}");
        assert!(out.is_empty(), "{what}: nothing printed as verified: {out}");
    }
}

#[test]
fn verify_needs_a_tenant_that_names_one_directory() {
    let issuer = Issuer::new();
    let token = issuer.sign(claims());
    let server = issuer.server();
    let jwks = format!("{}/{TID}/discovery/v2.0/keys", server.base);
    let o = keycred(&["decode", &token, "--verify", "--jwks", &jwks], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--verify needs the tenant that issued the token"), "{}", stderr(&o));
    assert!(stderr(&o).contains("pass --tenant (or set AZURE_TENANT_ID)"), "{}", stderr(&o));
    let (code, _, err) = verify(&issuer, &token, &["--tenant", "common"], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--tenant common: names no tenant"), "{err}");
}

#[test]
fn azure_tenant_id_in_the_environment_never_makes_verify_required() {
    let issuer = Issuer::new();
    let token = issuer.sign(claims());
    // As the README has users export it: plain decoding still works, and says NOT VERIFIED.
    let env = [("AZURE_TENANT_ID", TID)];
    let o = keycred(&["decode", &token], &env);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("NOT VERIFIED"), "{}", stdout(&o));
    // With --verify, the variable is the tenant checked, and --jwks does not conflict with it.
    let (code, out, err) = verify(&issuer, &token, &[], &env);
    assert_eq!(code, 0, "{out}{err}");
    let server = issuer.server();
    let jwks = format!("{}/{TID}/discovery/v2.0/keys", server.base);
    let o = keycred(&["decode", &token, "--verify", "--authority", &server.base, "--jwks", &jwks], &env);
    let (code, out, err) = (o.status.code().unwrap_or(-1), stdout(&o), stderr(&o));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("tenant {TID}")), "{out}");
    let (code, _, err) = verify(&issuer, &issuer.sign(claims_with(json!({"tid": OTHER_TID}))), &[], &env);
    assert_eq!(code, 4, "{err}");
}
