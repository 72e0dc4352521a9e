//! Secret hygiene: with a known private key, client secret, incoming token and issued token, no
//! command prints any of them (stdout or stderr, text or JSON, success or refusal), except the
//! issued token under `--raw` (and `accessToken` in JSON, which scripts ask for by name).

use crate::token_support;

use std::process::Output;
use token_support::*;

const CLIENT: &str = "6731de76-14a6-49ae-97bc-6eba6914391e";
const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const SECRET: &str = "Kq8~u.SECRET-d0n0tpr1nt-zz91";

struct Secrets {
    key_lines: Vec<String>,
    token: String,
    incoming: String,
}

impl Secrets {
    fn assert_absent(&self, what: &str, o: &Output, token_allowed: bool) {
        for (stream, text) in [("stdout", stdout(o)), ("stderr", stderr(o))] {
            assert!(!text.contains(SECRET), "{what}: client secret on {stream}");
            assert!(!text.contains(&self.incoming), "{what}: incoming token on {stream}");
            let sig = self.token.rsplit('.').next().unwrap();
            if !token_allowed {
                assert!(!text.contains(&self.token) && !text.contains(sig), "{what}: token on {stream}");
            }
            for l in &self.key_lines {
                assert!(!text.contains(l.as_str()), "{what}: private key material on {stream}");
            }
        }
    }
}

#[test]
fn no_secret_in_any_output() {
    let dir = TempDir::new("hygiene");
    let (cert, key) = openssl_cred(&dir, "daemon");
    let key_pem = std::fs::read_to_string(&key).unwrap();
    let key_lines: Vec<String> =
        key_pem.lines().filter(|l| !l.starts_with("-----") && l.len() >= 16).map(str::to_string).collect();
    assert!(key_lines.len() > 10);
    let token = fake_access_token(serde_json::json!({"aud": "https://graph.microsoft.com", "tid": TENANT,
        "roles": ["User.Read.All"], "azp": CLIENT, "exp": 4_102_444_799_i64}));
    let incoming = fake_access_token(serde_json::json!({"aud": CLIENT, "scp": "access_as_user", "n": "incoming"}));
    let s = Secrets { key_lines, token: token.clone(), incoming: incoming.clone() };
    let ok_body = serde_json::json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
        "access_token": token})
    .to_string();
    let ok = TestServer::start(vec![Reply::json(200, ok_body)]);
    let refused = TestServer::start(vec![Reply::json(
        401,
        entra_error_body(7000215, "invalid_client", "Invalid client secret provided.", None),
    )]);
    let (c, k) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let env = [("KC_SECRET", SECRET)];
    let run = |base: &str, extra: &[&str]| {
        let mut a = vec!["token", "--client-id", CLIENT, "--tenant", TENANT, "--authority", base, "--scope"];
        a.push("https://graph.microsoft.com/.default");
        a.extend_from_slice(extra);
        keycred(&a, &env)
    };

    let cases: Vec<(&str, Output, bool)> = vec![
        ("cert text", run(&ok.base, &["--cert", c, "--key", k]), false),
        ("secret text", run(&ok.base, &["--secret-env", "KC_SECRET"]), false),
        ("secret json", run(&ok.base, &["--secret-env", "KC_SECRET", "-o", "json"]), true),
        ("missing role", run(&ok.base, &["--secret-env", "KC_SECRET", "--expect-role", "Nope"]), false),
        ("refused secret", run(&refused.base, &["--secret-env", "KC_SECRET"]), false),
        ("refused secret json", run(&refused.base, &["--secret-env", "KC_SECRET", "-o", "json"]), false),
        ("refused cert", run(&refused.base, &["--cert", c, "--key", k]), false),
        ("obo", run(&ok.base, &["--cert", c, "--key", k, "--obo", &incoming]), false),
        ("decode", keycred(&["decode", &token], &[]), false),
        ("decode json", keycred(&["decode", &token, "-o", "json"], &[]), false),
    ];
    for (what, o, token_allowed) in &cases {
        assert!(o.status.code().is_some(), "{what}: exited");
        s.assert_absent(what, o, *token_allowed);
    }
    // The decoded claims are shown, the token is not.
    assert!(stdout(&cases[8].1).contains("NOT VERIFIED"));
    assert!(stdout(&cases[8].1).contains("User.Read.All"));

    // The assertions the server received never reach the output either.
    let assertions: Vec<String> =
        ok.requests().iter().filter_map(|r| r.field("client_assertion").map(str::to_string)).collect();
    assert!(!assertions.is_empty());
    for (what, o, _) in &cases {
        for a in &assertions {
            let sig = a.rsplit('.').next().unwrap();
            assert!(!stdout(o).contains(sig) && !stderr(o).contains(sig), "{what}: assertion printed");
        }
    }

    // Positive control: --raw prints the token, and only it.
    let raw = run(&ok.base, &["--secret-env", "KC_SECRET", "--raw"]);
    assert_eq!(stdout(&raw), format!("{token}\n"));
    s.assert_absent("raw", &raw, true);
}

#[test]
fn debug_output_of_requests_redacts() {
    use keycred::authority::{Authority, EndpointVersion};
    use keycred::secret::SecretString;
    use keycred::token::{ClientAuth, Grant, Target, TokenRequest};
    let req = TokenRequest {
        authority: Authority::parse("https://login.microsoftonline.com").unwrap(),
        tenant: TENANT.parse().unwrap(),
        client_id: CLIENT.parse().unwrap(),
        version: EndpointVersion::V2,
        target: Target::Scopes(vec!["https://graph.microsoft.com".into()]),
        grant: Grant::OnBehalfOf { assertion: SecretString::new("incoming-token-value") },
        auth: ClientAuth::Secret(SecretString::new(SECRET)),
    };
    let prepared = req.prepare().unwrap();
    for text in [format!("{req:?}"), format!("{prepared:?}")] {
        assert!(!text.contains(SECRET) && !text.contains("incoming-token-value"), "{text}");
        assert!(text.contains("[redacted]"));
    }
    assert!(prepared.encode_body().contains("client_secret=Kq8%7Eu.SECRET-d0n0tpr1nt-zz91"));
}
