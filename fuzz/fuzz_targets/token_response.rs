//! Fuzzes token-response parsing: any status and body gives a token or an error (remote for a
//! refusal or an unreadable body), never a panic, and every failure is a remote error (exit 3).
#![no_main]

use keycred::token::error::HintContext;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let status = u16::from_le_bytes([data[0], data[1]]) % 600;
    let body = String::from_utf8_lossy(&data[2..]);
    match keycred::token::response::interpret(status, &body, "http://127.0.0.1/t/oauth2/v2.0/token", &HintContext::default())
    {
        Ok(r) => assert!(!r.access_token.expose().is_empty()),
        // Whatever the server says, a failure is the remote's (exit 3), not ours.
        Err(e) => assert_eq!(e.exit_code(), 3, "{e}"),
    }
});
