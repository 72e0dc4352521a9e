//! Fuzzes the emulator's client-assertion validation: arbitrary tokens, and tokens made from a
//! valid assertion with fuzzed header or claims JSON, must be refused with an Entra error or
//! accepted only when genuinely signed by the registered key; never a panic.
#![no_main]

use keycred::cert::{generate, KeySize, LoadedCredential, NewCertificate, Validity};
use keycred::manifest::{entry_for, EntryOptions, Format, KeyCredential, Manifest};
use keycred::thumbprint::b64url;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const APP: &str = "6731de76-14a6-49ae-97bc-6eba6914391e";
const EP: &str = "http://127.0.0.1:1/t/oauth2/v2.0/token";

struct Fixture {
    creds: Vec<KeyCredential>,
    valid: String,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let (cert, key) = generate(&NewCertificate {
            subject: "CN=fuzz".into(),
            key_size: KeySize::Rsa2048,
            validity: Validity::Days(3650),
        })
        .unwrap();
        let entry = entry_for(&cert, Format::MsGraph, &EntryOptions::default()).unwrap();
        let m = Manifest::parse(&format!("{{\"appId\":\"{APP}\",\"keyCredentials\":[]}}"), "fuzz.json")
            .unwrap()
            .add_entry(entry)
            .unwrap();
        let cred = LoadedCredential::new(cert, vec![], key, std::path::Path::new("fuzz.pem")).unwrap();
        let valid = keycred::jwt::client_assertion(
            &cred,
            &keycred::jwt::AssertionParams {
                client_id: APP.into(),
                audience: EP.into(),
                alg: keycred::cert::SignatureAlg::Rs256,
                x5c: false,
                lifetime: 600,
            },
        )
        .unwrap()
        .expose()
        .to_string();
        Fixture { creds: m.credentials(), valid }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let now = keycred::dates::now();
    let Ok(s) = std::str::from_utf8(data) else { return };
    // 1. The input as a whole token.
    let _ = keycred::emulator::verify_client_assertion(&f.creds, s, APP, EP, now);
    // 2. The input as the header, then as the claims, of the valid assertion (signature kept):
    //    a changed signing input must never be accepted.
    let parts: Vec<&str> = f.valid.split('.').collect();
    let enc = b64url(s.as_bytes());
    for t in [format!("{enc}.{}.{}", parts[1], parts[2]), format!("{}.{enc}.{}", parts[0], parts[2])] {
        if t != f.valid {
            let r = keycred::emulator::verify_client_assertion(&f.creds, &t, APP, EP, now);
            assert!(r.is_err(), "a token with a changed signing input was accepted: {t}");
        }
    }
});
