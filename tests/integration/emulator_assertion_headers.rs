//! The client assertion's JOSE header: a `crit` parameter makes the assertion invalid unless the
//! recipient processes every extension it lists (RFC 7515 section 4.1.11), and `[]` is forbidden.
//! The emulator processes none, so any `crit` is refused, with 50027 (`invalid_request`, "JWT
//! token is invalid or malformed"), Entra's code for an assertion that is not a valid JWT
//! (Microsoft's error-code reference: AADSTS50027 InvalidJwtToken, "token format isn't proper").
//! Entra's own handling of `crit` is not documented; see the README's emulator section.

use crate::emulator_support::*;

use serde_json::{json, Value};

#[tokio::test]
async fn assertions_with_a_critical_header_parameter_are_refused_as_malformed() {
    let f = fixture().await;
    let aud = f.v2();
    let with = |extra: &[(&str, Value)]| {
        let mut h = f.header();
        for (k, v) in extra {
            h.insert(k.to_string(), v.clone());
        }
        f.signed(h, f.claims(&aud))
    };
    let cases: [(&str, Vec<(&str, Value)>); 5] = [
        ("an unknown extension", vec![("crit", json!(["foo"])), ("foo", json!(1))]),
        ("an empty list", vec![("crit", json!([]))]),
        ("RFC 7797's b64, which the emulator does not implement", vec![("crit", json!(["b64"])), ("b64", json!(true))]),
        ("a name RFC 7515 defines", vec![("crit", json!(["alg"]))]),
        ("not a list", vec![("crit", json!("foo"))]),
    ];
    for (what, extra) in cases {
        let got = f.post_v2_assertion(&with(&extra)).await;
        let d = assert_entra_error(&got, 400, "invalid_request", 50027);
        assert!(d.contains("'crit'"), "{what}: {d}");
    }
    // The same assertion without `crit` gets its token.
    let (s, b) = f.post_v2_assertion(&with(&[])).await;
    assert_eq!(s, 200, "{b}");
}
