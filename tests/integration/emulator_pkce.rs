//! PKCE as Entra and RFC 7636 have it: the challenge's shape is checked at the authorize
//! endpoint (43 to 128 characters of the unreserved set; method `S256` or `plain`), the
//! verifier's at the token endpoint, and a code issued without a challenge takes no verifier
//! (RFC 9700 section 4.8.2: otherwise an attacker who strips the challenge from a victim's
//! authorization request downgrades the flow).

use crate::emulator_support::*;

use base64::Engine;

/// The S256 challenge of `verifier`, computed by openssl.
fn s256(verifier: &str) -> String {
    let dir = TempDir::new("pkce");
    let f = dir.path("v.txt");
    std::fs::write(&f, verifier).unwrap();
    let out = openssl(&["dgst", "-sha256", "-binary", f.to_str().unwrap()]);
    assert!(out.status.success());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(out.stdout)
}

#[tokio::test]
async fn a_code_issued_without_a_challenge_takes_no_verifier() {
    let (_dir, emu) = sign_in_emulator(true).await;
    // A client that sends a verifier although it sent no challenge: Entra answers 501481
    // (get-convex/convex-auth issue 457: an authorization URL without `code_challenge`, then
    // `code_verifier=decoy` at the token endpoint, got "AADSTS501481: The Code_Verifier does
    // not match the code_challenge supplied in the authorization request.").
    let code = code_from(&authorize_url(&emu, "")).await;
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let d =
        assert_entra_error(&redeem(&emu, &code, &[("code_verifier", verifier)]).await, 400, "invalid_grant", 501481);
    assert!(d.contains("The Code_Verifier does not match the code_challenge"), "{d}");
    // Without a verifier, the same kind of code is redeemed.
    let code = code_from(&authorize_url(&emu, "")).await;
    let (s, b) = redeem(&emu, &code, &[]).await;
    assert_eq!(s, 200, "{b}");
}

#[tokio::test]
async fn authorize_refuses_challenges_outside_rfc_7636s_shape_with_entras_codes() {
    let (_dir, emu) = sign_in_emulator(true).await;
    let good = s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
    // Microsoft's error-code reference: 501491 "InvalidCodeChallengeMethodInvalidSize - Invalid
    // size of Code_Challenge parameter."; 50149 "Invalid Code_Challenge_method parameter." (added
    // to the reference in MicrosoftDocs/entra-docs pull request 1538). Both are sent to the reply
    // URL, which is trusted by then, with the state.
    let cases = [
        ("&code_challenge=abcde&code_challenge_method=S256".to_string(), 501491),
        (format!("&code_challenge={}&code_challenge_method=plain", "a".repeat(42)), 501491),
        (format!("&code_challenge={}&code_challenge_method=plain", "a".repeat(129)), 501491),
        (format!("&code_challenge={}%2B&code_challenge_method=plain", "a".repeat(42)), 501491),
        (format!("&code_challenge={good}&code_challenge_method=S512"), 50149),
        (format!("&code_challenge={good}&code_challenge_method=s256"), 50149),
    ];
    for (extra, code) in cases {
        let p = browse(&authorize_url(&emu, &extra)).await;
        assert_eq!(p.status, 302, "{extra}: {}", p.body);
        assert_eq!(p.redirect.get("error").map(String::as_str), Some("invalid_request"), "{extra}: {:?}", p.redirect);
        let d = &p.redirect["error_description"];
        assert!(d.starts_with(&format!("AADSTS{code}: ")), "{extra}: {d}");
        assert_eq!(p.redirect["state"], "st4te");
        assert!(!p.redirect.contains_key("code"), "{extra}: {:?}", p.redirect);
    }
    // The shapes RFC 7636 allows: an S256 challenge, plain ones of 43 and 128 characters, and a
    // challenge without a method (plain).
    let plain_long = format!("{}-._~", "Az9".repeat(41));
    assert_eq!(plain_long.len(), 127);
    for extra in [
        format!("&code_challenge={good}&code_challenge_method=S256"),
        format!("&code_challenge={}&code_challenge_method=plain", "a".repeat(43)),
        format!("&code_challenge={plain_long}x&code_challenge_method=plain"),
        format!("&code_challenge={}", "b".repeat(43)),
    ] {
        let code = code_from(&authorize_url(&emu, &extra)).await;
        assert!(!code.is_empty(), "{extra}");
    }
    // And the plain one of 128 is redeemed with itself.
    let code =
        code_from(&authorize_url(&emu, &format!("&code_challenge={plain_long}x&code_challenge_method=plain"))).await;
    let (s, b) = redeem(&emu, &code, &[("code_verifier", &format!("{plain_long}x"))]).await;
    assert_eq!(s, 200, "{b}");
}

#[tokio::test]
async fn verifiers_outside_rfc_7636s_shape_never_redeem_a_code() {
    let (_dir, emu) = sign_in_emulator(true).await;
    // RFC 7636 section 4.1: a verifier is 43 to 128 unreserved characters. An S256 challenge is
    // 43 characters whatever the verifier was, so a short verifier's challenge passes the
    // authorize endpoint; the verifier itself must not pass the token endpoint.
    for verifier in ["short-verifier", &"v".repeat(129), &format!("{}+/", "v".repeat(41))] {
        let challenge = s256(verifier);
        let extra = format!("&code_challenge={challenge}&code_challenge_method=S256");
        let code = code_from(&authorize_url(&emu, &extra)).await;
        assert_entra_error(&redeem(&emu, &code, &[("code_verifier", verifier)]).await, 400, "invalid_grant", 501481);
    }
}
