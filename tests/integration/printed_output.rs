//! What keycred prints is safe to show on a terminal: control characters in tokens and manifests
//! are escaped in text output, and usage errors never echo an argument that looks like a key or
//! a token. Run on the real binary.

use crate::common::*;
use serde_json::{json, Value};

/// Text output escapes control characters: a hostile token's claim `\e[2J` must not clear the
/// screen (and the NOT VERIFIED banner), a newline must not forge a `roles:` line, in `decode`
/// and in `manifest list`. JSON output keeps the values.
#[test]
fn control_characters_are_escaped_in_text_output() {
    use keycred::thumbprint::b64url;
    let claims =
        json!({"aud": "api://x", "name": "\u{1b}[2J\u{1b}[H", "note": "x\n  roles:  Admin", "c1": "\u{9b}31m"});
    let token = format!("{}.{}.c2ln", b64url(br#"{"alg":"RS256","typ":"JWT"}"#), b64url(claims.to_string().as_bytes()));
    let (code, out, err) = keycred_bounded(&["decode", &token], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains('\u{1b}') && !out.contains('\u{9b}'), "{out:?}");
    assert!(out.starts_with("NOT VERIFIED"), "{out}");
    assert!(!out.lines().any(|l| l.trim_start().starts_with("roles:")), "a forged line: {out}");
    assert!(out.contains("\\x1b[2J") && out.contains("x\\n  roles:  Admin"), "{out}");
    // JSON output stays JSON with the same values.
    let (_, out, _) = keycred_bounded(&["-o", "json", "decode", &token], &[]);
    assert!(!out.contains('\u{1b}') && !out.contains('\u{9b}'), "{out:?}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["claims"]["c1"], "\u{9b}31m");

    // manifest list: a display name with escapes and a newline.
    let d = TempDir::new("escapes");
    let c = credential_for_days("escapes", 30);
    let mut e = valid_entry(&c.cert);
    e["displayName"] = json!("\u{1b}]0;owned\u{7}\nfake-row valid");
    let doc = json!({"id": OBJECT_ID, "appId": APP_ID, "keyCredentials": [e]});
    std::fs::write(d.path("app.json"), doc.to_string()).unwrap();
    let (code, out, err) = keycred_bounded(&["manifest", "list", &d.s("app.json")], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.chars().any(|c| c.is_control() && c != '\n'), "{out:?}");
    assert_eq!(out.lines().count(), 2, "header and one row only: {out}");
}

/// Usage errors mask values that look like keys or tokens, in text and in JSON: `keycred decode
/// "$(cat k.key)"` with a stray argument must not print the whole private key in clap's usage
/// error, nor a JWT (also after `Bearer `).
#[test]
fn usage_errors_never_echo_keys_or_tokens() {
    let d = TempDir::new("usage-masking");
    openssl_self_signed_days(&d.path("k.pem"), &d.path("c.pem"), "/CN=usage", 30);
    let key = std::fs::read_to_string(d.path("k.pem")).unwrap();
    let body_line = key.lines().nth(1).unwrap().to_string();
    let jwt = format!(
        "{}.{}.c2lnbmF0dXJl",
        keycred::thumbprint::b64url(b"{\"alg\":\"RS256\"}"),
        keycred::thumbprint::b64url(b"{\"aud\":\"x\"}")
    );
    for args in [
        vec!["decode", "token", key.as_str()],
        vec!["-o", "json", "decode", "token", key.as_str()],
        vec!["decode", "token", jwt.as_str()],
        vec!["manifest", "list", "app.json", &format!("Bearer {jwt}")],
    ] {
        let (code, out, err) = keycred_bounded(&args, &[]);
        assert_eq!(code, 2, "{args:?}: {err}");
        let all = format!("{out}{err}");
        assert!(!all.contains(&body_line) && !all.contains("BEGIN PRIVATE KEY"), "{all}");
        assert!(!all.contains(&jwt), "{all}");
        assert!(all.contains("looks like a key or token"), "{all}");
    }
}
