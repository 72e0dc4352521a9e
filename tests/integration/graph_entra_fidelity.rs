//! The emulator's Graph answers next to real Graph's: one `request-id` per request, in the
//! header and in an error's `innerError`, the `client-request-id` echoed or (when the client
//! sent none) the `request-id` in its place, and 400 "Invalid object identifier" for an id that
//! is not a GUID. Each test cites its evidence.

use crate::emulator_support::*;

use keycred::emulator::EndpointVersion;
use reqwest::Method;
use serde_json::Value;

const GRAPH: &str = "https://graph.microsoft.com";

async fn graph_fixture() -> (Fixture, String) {
    let f = fixture_with(|c| c.grants.push((GRAPH.into(), vec!["Application.ReadWrite.All".into()]))).await;
    let v2 = f.emu.info().token_endpoint(EndpointVersion::V2);
    let (s, b) = post(&v2, &client_credentials_form(APP_ID, &format!("{GRAPH}/.default"), &f.assertion(&v2))).await;
    assert_eq!(s, 200, "{b}");
    let token = b["access_token"].as_str().unwrap().to_string();
    (f, token)
}

async fn call(
    method: Method,
    url: &str,
    token: &str,
    client_request_id: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let write = method != Method::GET;
    let mut r = client().request(method, url).bearer_auth(token);
    if let Some(id) = client_request_id {
        r = r.header("client-request-id", id);
    }
    if write {
        r = r.json(&serde_json::json!({"keyId": uuid::Uuid::new_v4().to_string()}));
    }
    let r = r.send().await.unwrap();
    let (s, h) = (r.status().as_u16(), r.headers().clone());
    (s, h, r.json().await.unwrap_or(Value::Null))
}

/// Real Graph, asked without a `client-request-id`, answers one `request-id` in the header and
/// in `innerError`, puts the same value in `innerError.client-request-id`, and sends no
/// `client-request-id` header (the Azure CLI's recorded Graph traffic,
/// https://github.com/Azure/azure-cli/blob/dev/src/azure-cli/azure/cli/command_modules/role/tests/latest/recordings/test_app_resolution.yaml);
/// a client's own id comes back in the `client-request-id` response header (which the Graph
/// .NET SDK reads as `Error.ClientRequestId`, "the client-request-id header returned in the
/// response headers collection").
#[tokio::test]
async fn one_request_id_per_answer_and_the_client_request_id_echoed_or_replaced_by_it() {
    let (f, token) = graph_fixture().await;
    let url = format!("{}/v1.0/applications/{}", f.emu.info().base_url(), uuid::Uuid::new_v4());
    let (s, h, b) = call(Method::GET, &url, &token, None).await;
    assert_eq!((s, b["error"]["code"].as_str()), (404, Some("Request_ResourceNotFound")), "{b}");
    let inner = &b["error"]["innerError"];
    let request_id = h["request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(request_id).is_ok(), "{request_id}");
    assert_eq!(inner["request-id"], request_id);
    assert_eq!(inner["client-request-id"], request_id);
    assert!(h.get("client-request-id").is_none(), "{h:?}");

    let mine = uuid::Uuid::new_v4().to_string();
    let (s, h, b) = call(Method::GET, &url, &token, Some(&mine)).await;
    assert_eq!(s, 404, "{b}");
    let inner = &b["error"]["innerError"];
    assert_eq!(h["client-request-id"], mine.as_str());
    assert_eq!(inner["client-request-id"], mine.as_str());
    assert_eq!(inner["request-id"], h["request-id"].to_str().unwrap());
    assert_ne!(inner["request-id"], mine.as_str());
    // A success carries its request-id too.
    let (s, h, _) = call(Method::GET, &format!("{}/v1.0/applications", f.emu.info().base_url()), &token, None).await;
    assert_eq!(s, 200);
    assert!(uuid::Uuid::parse_str(h["request-id"].to_str().unwrap()).is_ok());
}

/// An object id that is not a GUID is not looked up: Graph answers 400 `Request_BadRequest`
/// "Invalid object identifier 'x'." (observed answers quoted in public code, such as a
/// `Request_BadRequest` "Invalid object identifier 'MyGroup'." for `/v1.0/groups/MyGroup`, and
/// Update-AadApplication's "Invalid object identifier 'foo'."); a GUID that names nothing is
/// 404 `Request_ResourceNotFound`.
#[tokio::test]
async fn an_object_id_that_is_not_a_guid_is_400_invalid_object_identifier() {
    let (f, token) = graph_fixture().await;
    let base = format!("{}/v1.0", f.emu.info().base_url());
    for (method, url) in [
        (Method::GET, format!("{base}/applications/not-a-guid")),
        (Method::GET, format!("{base}/servicePrincipals/not-a-guid")),
        (Method::PATCH, format!("{base}/applications/not-a-guid")),
        (Method::POST, format!("{base}/applications/not-a-guid/removePassword")),
    ] {
        let (s, _, b) = call(method.clone(), &url, &token, None).await;
        assert_eq!((s, b["error"]["code"].as_str()), (400, Some("Request_BadRequest")), "{method} {url}: {b}");
        assert_eq!(b["error"]["message"], "Invalid object identifier 'not-a-guid'.", "{method} {url}");
    }
    let (s, _, b) =
        call(Method::GET, &format!("{base}/servicePrincipals/{}", uuid::Uuid::new_v4()), &token, None).await;
    assert_eq!((s, b["error"]["code"].as_str()), (404, Some("Request_ResourceNotFound")), "{b}");
}
