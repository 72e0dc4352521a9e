//! The emulator's Graph bounds `$filter` as Graph does, so that no query can overflow the
//! parser's stack: parentheses nested thousands deep are refused with 400 on every path that
//! reaches the parser (`/applications`, `/servicePrincipals`, and the same requests inside a
//! `$batch`), and the emulator keeps serving; a filter higher than Graph's directory allows is
//! refused with Graph's "excessive height" message.
//!
//! The tests run the real `keycred emulate`: a stack overflow aborts the process it happens in,
//! and must abort no test but these.

use crate::emulator_support::*;
use serde_json::{json, Value};

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>().replace('+', "%20")
}

async fn get(url: &str, token: &str) -> (u16, Value) {
    let r = client().get(url).bearer_auth(token).send().await.unwrap_or_else(|e| panic!("GET {:.100}...: {e:#}", url));
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// The message Graph's OData parser gives when it stops recursing ("Recursion depth exceeded
/// allowed limit.", `UriQueryExpressionParser_TooDeep` in OData/odata.net), after the "Invalid
/// filter clause: " Graph puts before the parser's messages.
const TOO_DEEP: &str = "Invalid filter clause: Recursion depth exceeded allowed limit.";

#[tokio::test]
async fn deeply_nested_filters_are_refused_on_every_path_and_the_emulator_keeps_serving() {
    let dir = TempDir::new("graph-filter-deep");
    let emu = emulate_process(&dir, "Application.Read.All");
    let (base, token) = (emu.base.clone(), emu.graph_token().await);
    let deep = format!("{}appId eq '{APP_ID}'{}", "(".repeat(2500), ")".repeat(2500));
    for collection in ["applications", "servicePrincipals"] {
        let (s, b) = get(&format!("{base}/v1.0/{collection}?$filter={}", encode(&deep)), &token).await;
        assert_eq!((s, &b["error"]["code"], &b["error"]["message"]), (400, &json!("BadRequest"), &json!(TOO_DEEP)));
    }
    let batch = json!({"requests": [
        {"id": "1", "method": "GET", "url": format!("/applications?$filter={}", encode(&deep))},
        {"id": "2", "method": "GET", "url": format!("/servicePrincipals?$filter={}", encode(&deep))},
    ]});
    let r = client().post(format!("{base}/v1.0/$batch")).bearer_auth(&token).json(&batch).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let b: Value = r.json().await.unwrap();
    for inner in b["responses"].as_array().unwrap() {
        assert_eq!((&inner["status"], &inner["body"]["error"]["message"]), (&json!(400), &json!(TOO_DEEP)), "{b}");
    }
    // Still serving, and a filter nested as deep as Graph allows still answers.
    let allowed = format!("{}appId eq '{APP_ID}'{}", "(".repeat(100), ")".repeat(100));
    let (s, b) = get(&format!("{base}/v1.0/applications?$filter={}", encode(&allowed)), &token).await;
    assert_eq!((s, b["value"][0]["appId"].as_str()), (200, Some(APP_ID)), "{b}");
}

#[tokio::test]
async fn filters_higher_than_graph_allows_are_refused_with_graphs_message() {
    let dir = TempDir::new("graph-filter-high");
    let emu = emulate_process(&dir, "Application.Read.All");
    let (base, token) = (emu.base.clone(), emu.graph_token().await);
    let q = |f: &str| format!("{base}/v1.0/applications?$filter={}", encode(f));
    // The query of microsoftgraph/microsoft-graph-docs#3641 (on groups), with application
    // properties: Graph answered 400 "Search filter expression has excessive height: 4. Max
    // allowed: 3.", and accepted the same condition written as an `or` of `and`s.
    let a = "identifierUris/any(c:c eq 'api://caller')";
    let (b, c, d) = ("displayName eq 'x'", format!("appId eq '{APP_ID}'"), "startswith(displayName,'emulate')");
    let (s, v) = get(&q(&format!("(({a} or ({b} and {c})) and {d})")), &token).await;
    assert_eq!(
        (s, &v["error"]["code"], &v["error"]["message"]),
        (
            400,
            &json!("Request_UnsupportedQuery"),
            &json!("Search filter expression has excessive height: 4. Max allowed: 3.")
        )
    );
    let (s, v) = get(&q(&format!("({a} and {d}) or ({b} and {c} and {d})")), &token).await;
    assert_eq!((s, v["value"][0]["appId"].as_str()), (200, Some(APP_ID)), "{v}");
    // A chain is one node however long: 300 alternatives are height 2.
    let chain = vec![c.as_str(); 300].join(" or ");
    let (s, v) = get(&q(&chain), &token).await;
    assert_eq!((s, v["value"].as_array().map(Vec::len)), (200, Some(1)), "{v}");
}
