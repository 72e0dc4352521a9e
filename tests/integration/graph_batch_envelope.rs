//! What a Graph `$batch` envelope carries: every inner answer whole (an answer over a mebibyte
//! included, as Graph puts it), an inner error where the batch cannot carry an answer, never an
//! empty success; and the envelope's authorization for every inner request, whatever
//! `Authorization` header an inner request names.

use crate::emulator_support::*;

use keycred::emulator::{start, EmulatorHandle, EndpointVersion};
use serde_json::{json, Value};

const GRAPH: &str = "https://graph.microsoft.com";

/// An emulator serving the test app, whose manifest carries `notes` of `notes_len` characters
/// (Graph returns `notes` with the application); the app's Graph token holds
/// `Application.Read.All`.
async fn graph_with_notes(notes_len: usize) -> (TempDir, EmulatorHandle, String) {
    let dir = TempDir::new("graph-batch");
    let cred = credential("batch caller");
    let manifest = dir.path("app.json");
    let m = json!({"id": OBJECT_ID, "appId": APP_ID, "displayName": "batch caller", "notes": "x".repeat(notes_len),
                   "keyCredentials": [valid_entry(&cred.cert)]});
    std::fs::write(&manifest, m.to_string()).unwrap();
    let emu = start(emulator_config(vec![manifest], vec![(GRAPH.into(), vec!["Application.Read.All".into()])]))
        .await
        .unwrap();
    let v2 = emu.info().token_endpoint(EndpointVersion::V2);
    let a = assertion_for(&cred, &v2, keycred::cert::SignatureAlg::Rs256);
    let (s, b) = post(&v2, &client_credentials_form(APP_ID, &format!("{GRAPH}/.default"), &a)).await;
    assert_eq!(s, 200, "{b}");
    (dir, emu, b["access_token"].as_str().unwrap().to_string())
}

async fn batch(emu: &EmulatorHandle, token: &str, requests: Vec<Value>) -> Vec<Value> {
    let r = client()
        .post(format!("{}/v1.0/$batch", emu.info().base_url()))
        .bearer_auth(token)
        .json(&json!({ "requests": requests }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let b: Value = r.json().await.unwrap();
    b["responses"].as_array().unwrap().clone()
}

fn get_app(id: usize) -> Value {
    json!({"id": id.to_string(), "method": "GET", "url": format!("/applications/{OBJECT_ID}")})
}

#[tokio::test]
async fn an_inner_answer_over_a_mebibyte_comes_back_whole() {
    let (_dir, emu, token) = graph_with_notes(1_200_000).await;
    let r = batch(&emu, &token, vec![get_app(1)]).await;
    assert_eq!(r[0]["status"], 200, "{}", r[0]["body"]);
    assert_eq!(r[0]["body"]["notes"].as_str().map(str::len), Some(1_200_000));
}

#[tokio::test]
async fn answers_past_what_a_batch_carries_are_inner_errors_never_empty_successes() {
    // Fifteen answers of 1.2 MB: more than the 16 MiB one batch carries.
    let (_dir, emu, token) = graph_with_notes(1_200_000).await;
    let r = batch(&emu, &token, (1..=15).map(get_app).collect()).await;
    assert_eq!(r.len(), 15);
    let mut carried = 0;
    for x in &r {
        match x["status"].as_u64() {
            Some(200) => {
                assert_eq!(x["body"]["notes"].as_str().map(str::len), Some(1_200_000), "a 200 carries its answer");
                carried += 1;
            }
            Some(500) => {
                assert_eq!(x["body"]["error"]["code"], "generalException", "{x}");
                let m = x["body"]["error"]["message"].as_str().unwrap();
                assert!(m.contains("does not fit in this batch"), "{m}");
            }
            _ => panic!("{}", x["status"]),
        }
    }
    assert_eq!(carried, 13, "16 MiB carries thirteen answers of 1.2 MB");
}

#[tokio::test]
async fn inner_requests_run_under_the_envelopes_token_whatever_header_they_name() {
    let (_dir, emu, token) = graph_with_notes(10).await;
    // Graph authorises a batch by the envelope: its SDKs send inner requests without an
    // `Authorization` header (msgraph-sdk-dotnet-core pull request 956 stopped even computing
    // one). An inner header naming another token is not the one the envelope was checked with.
    let mut req = get_app(1);
    req["headers"] = json!({"Authorization": "Bearer not-a-token-the-emulator-issued"});
    let mut lower = get_app(2);
    lower["headers"] = json!({"authorization": "Basic Zm9vOmJhcg=="});
    let r = batch(&emu, &token, vec![req, lower]).await;
    for x in &r {
        assert_eq!(x["status"], 200, "{x}");
        assert_eq!(x["body"]["appId"], APP_ID, "{x}");
    }
}
