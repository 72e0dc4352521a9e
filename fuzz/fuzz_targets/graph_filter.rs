//! Fuzzes the emulator's Graph query parser (`$filter`, `$select`, `$top`, `$skiptoken`) on
//! `/applications` and `/servicePrincipals`: any query string is answered with a match or one of
//! Graph's two refusal codes, never a panic, and never a stack overflow, however deep the
//! parentheses or long the `and`/`or` chains (libFuzzer reports an overflow as a crash).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Value};

fn entity() -> Map<String, Value> {
    let v = json!({"id": "0b6c8e1c-2f7e-4d36-9d2a-1c3e5f7a9b0d", "appId": "6731de76-14a6-49ae-97bc-6eba6914391e",
                   "displayName": "Payroll O'Neil", "identifierUris": ["api://pay"], "servicePrincipalNames": ["api://pay"],
                   "createdDateTime": "2024-05-01T00:00:00Z", "keyCredentials": []});
    v.as_object().cloned().unwrap_or_default()
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    // The fuzzer's bytes as the whole query string, and as the `$filter` value alone (so that
    // it need not find `$filter=` and URL encoding before reaching the expression parser).
    let filter = url::form_urlencoded::Serializer::new(String::new()).append_pair("$filter", &text).finish();
    for raw in [text.as_ref(), filter.as_str()] {
        match keycred::emulator::graph_query_matches(raw, first & 1 == 1, &entity()) {
            Ok(_) => {}
            Err(e) => assert!(matches!(e.code, "BadRequest" | "Request_UnsupportedQuery"), "{e:?}"),
        }
    }
});
