//! What the emulator keeps of a request is bounded: sign-in parameters at 8 KiB in all (Entra's
//! AADSTS90015 past that, on its own page), resource names at 2 KiB, OpenID scopes once each.
//! (Codes and refresh tokens in flight are bounded too: unit tests in `emulator::tenant`, and
//! the emulator's memory under a flood in `hardening_load.rs`.)

use crate::emulator_support::*;

use keycred::emulator::EndpointVersion;

#[tokio::test]
async fn over_long_sign_in_requests_are_refused_with_90015_on_the_emulators_page() {
    let (_dir, emu) = sign_in_emulator(true).await;
    // Entra refuses an over-long query on its own page, never redirecting: "AADSTS90015: Requested
    // query string is too long." (Microsoft's error-code reference, "QueryStringTooLong";
    // bitwarden/server issue 953 and DuendeArchive/Support issue 770, where a long `state` did it).
    let long = authorize_url(&emu, &format!("&nonce={}", "n".repeat(8 * 1024)));
    let p = browse(&long).await;
    assert_eq!(p.status, 400, "{}", p.body);
    assert!(p.redirect.is_empty(), "{:?}", p.redirect);
    assert!(p.body.contains("AADSTS90015: Requested query string is too long."), "{}", p.body);
    // The same parameters posted as a consent form.
    let (_dir2, manual) = sign_in_emulator(false).await;
    let nonce = "n".repeat(8 * 1024);
    let form = [
        ("client_id", APP_ID),
        ("response_type", "code"),
        ("redirect_uri", REPLY),
        ("scope", "openid"),
        ("nonce", &nonce),
        ("decision", "accept"),
    ];
    let p = submit(&authorize_url(&manual, ""), &form).await;
    assert_eq!(p.status, 400, "{}", p.body);
    assert!(p.body.contains("AADSTS90015"), "{}", p.body);
    // Just under the bound, the largest nonce is kept whole and comes back in the ID token.
    let head = authorize_url(&emu, "&nonce=");
    let query_len = head.len() - head.find('?').unwrap() - 1;
    let nonce = "m".repeat(8 * 1024 - query_len);
    let code = code_from(&format!("{head}{nonce}")).await;
    let (s, b) = redeem(&emu, &code, &[]).await;
    assert_eq!(s, 200, "{b}");
    let id = keycred::jwt::dangerous::decode(b["id_token"].as_str().unwrap()).unwrap();
    assert_eq!(id.claim_str("nonce"), Some(nonce.as_str()));
}

#[tokio::test]
async fn resource_names_past_two_kibibytes_name_no_resource() {
    // `--grant api://keycred-test-api=...` makes a resource known by name, matched without its
    // trailing `/`: a name padded with a thousand of them must not be kept with a token.
    let f = fixture().await;
    let a = f.assertion(&f.v1());
    let padded = format!("{API}{}", "/".repeat(3000));
    for (resource, want) in [(API.to_string(), 200), (format!("{API}/"), 200), (padded, 400)] {
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", APP_ID),
            ("resource", resource.as_str()),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", a.as_str()),
        ];
        let got = post(&f.v1(), &form).await;
        if want == 200 {
            assert_eq!(got.0, 200, "{}", got.1);
        } else {
            assert_entra_error(&got, 400, "invalid_resource", 500011);
        }
    }
}

#[tokio::test]
async fn repeated_openid_scopes_are_kept_once() {
    let (_dir, emu) = sign_in_emulator(true).await;
    let scope = "openid offline_access User.Read ".repeat(50);
    let url = format!(
        "{}?client_id={APP_ID}&response_type=code&redirect_uri={}&scope={}",
        emu.info().authorize_endpoint(EndpointVersion::V2),
        enc(REPLY),
        enc(&scope)
    );
    let code = code_from(&url).await;
    let (s, b) = redeem(&emu, &code, &[]).await;
    assert_eq!(s, 200, "{b}");
    let mut granted: Vec<&str> = b["scope"].as_str().unwrap().split(' ').collect();
    granted.sort();
    assert_eq!(granted, ["User.Read", "offline_access", "openid"], "{b}");
    // And refreshing with the scopes repeated again answers them once.
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", APP_ID),
        ("client_secret", SECRET),
        ("refresh_token", b["refresh_token"].as_str().unwrap()),
        ("scope", scope.as_str()),
    ];
    let (s, b) = post(&emu.info().token_endpoint(EndpointVersion::V2), &form).await;
    assert_eq!(s, 200, "{b}");
    let mut granted: Vec<&str> = b["scope"].as_str().unwrap().split(' ').collect();
    granted.sort();
    assert_eq!(granted, ["User.Read", "offline_access", "openid"], "{b}");
}
