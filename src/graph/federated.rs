//! An application's federated identity credentials through Graph
//! (`/applications(appId='...')/federatedIdentityCredentials`): list, add (Graph's rules checked
//! first against the current list, so a refusal names the rule before anything is sent) and
//! remove by name (Graph's alternate key).

use super::{pager, GraphCall, GraphClient};
use crate::fic::{rules, FederatedIdentityCredential};
use crate::http::Method;
use crate::{Error, Result};
use serde_json::Value;

/// OData string literal: a quote doubled.
fn literal(s: &str) -> String {
    s.replace('\'', "''")
}

/// `/v1.0/applications(appId='{app_id}')/federatedIdentityCredentials`.
fn collection(app_id: &str) -> String {
    format!("/v1.0/applications(appId='{}')/federatedIdentityCredentials", literal(app_id))
}

/// The list call.
pub fn list_call(app_id: &str) -> GraphCall {
    GraphCall { method: Method::GET, path: collection(app_id), body: None }
}

/// The create call: the credential as Graph takes it (no `id`).
pub fn create_call(app_id: &str, c: &FederatedIdentityCredential) -> GraphCall {
    let mut body = c.to_value();
    if let Some(o) = body.as_object_mut() {
        o.remove("id");
    }
    GraphCall { method: Method::POST, path: collection(app_id), body: Some(body) }
}

/// The delete call, by name.
pub fn delete_call(app_id: &str, name: &str) -> GraphCall {
    let path = format!(
        "{}(name='{}')",
        collection(app_id),
        url::form_urlencoded::byte_serialize(literal(name).as_bytes()).collect::<String>()
    );
    GraphCall { method: Method::DELETE, path, body: None }
}

/// The application's credentials.
pub async fn list(client: &GraphClient, app_id: &str) -> Result<Vec<FederatedIdentityCredential>> {
    let v = client.send(list_call(app_id)).await?.unwrap_or(Value::Null);
    let items = v
        .get("value")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::remote("Graph's list of federated identity credentials has no \"value\" array"))?;
    Ok(items.iter().filter_map(FederatedIdentityCredential::from_value).collect())
}

/// Most pages read from one application's list: Graph holds at most
/// [`crate::fic::MAX_PER_APP`] credentials per application, so more pages than that means a
/// Graph (or a proxy) paging without end.
const MAX_LIST_PAGES: usize = crate::fic::MAX_PER_APP + 1;

/// The credentials of the application whose object id is `object_id`
/// (`GET /v1.0/applications/{id}/federatedIdentityCredentials`), following `@odata.nextLink`
/// as Graph gives it.
pub async fn list_by_object_id(client: &GraphClient, object_id: &str) -> Result<Vec<FederatedIdentityCredential>> {
    let path = format!(
        "/v1.0/applications/{}/federatedIdentityCredentials",
        url::form_urlencoded::byte_serialize(object_id.as_bytes()).collect::<String>()
    );
    let mut call = GraphCall { method: Method::GET, path, body: None };
    let mut out = Vec::new();
    for _ in 0..MAX_LIST_PAGES {
        let url = client.url_of(&call);
        let page = pager::page(&url, client.send(call).await?.unwrap_or(Value::Null))?;
        out.extend(page.items.iter().filter_map(FederatedIdentityCredential::from_value));
        match page.next_link {
            Some(next) => call = pager::next_call(client.base(), &next)?,
            None => return Ok(out),
        }
    }
    Err(Error::remote(format!(
        "Graph's list of federated identity credentials of application {object_id} still pages after \
         {MAX_LIST_PAGES} pages (an application holds at most {})",
        crate::fic::MAX_PER_APP
    )))
}

/// Adds `c` after checking Graph's rules against the current credentials; returns it as Graph
/// stored it.
pub async fn add(
    client: &GraphClient,
    app_id: &str,
    c: &FederatedIdentityCredential,
) -> Result<FederatedIdentityCredential> {
    let current = list(client, app_id).await?;
    rules::check_against(&current, c, None)
        .map_err(|b| Error::input(format!("Graph would refuse this federated identity credential: {}", b.message)))?;
    let v = client.send(create_call(app_id, c)).await?.unwrap_or(Value::Null);
    FederatedIdentityCredential::from_value(&v)
        .ok_or_else(|| Error::remote("Graph's answer to the creation is not a federated identity credential"))
}

/// Removes the credential called `name` (an input error naming the existing ones when none is).
pub async fn remove(client: &GraphClient, app_id: &str, name: &str) -> Result<()> {
    let current = list(client, app_id).await?;
    if !current.iter().any(|c| c.name.eq_ignore_ascii_case(name)) {
        let names: Vec<&str> = current.iter().map(|c| c.name.as_str()).collect();
        return Err(Error::input(format!(
            "the application has no federated identity credential named '{name}' (it has: {})",
            if names.is_empty() { "none".to_string() } else { names.join(", ") }
        )));
    }
    client.send(delete_call(app_id, name)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_address_the_collection_by_app_id_and_credentials_by_name() {
        let c = FederatedIdentityCredential::new(
            "main",
            "https://token.actions.githubusercontent.com",
            "repo:o/r:pull_request",
        );
        let call = create_call("11111111-1111-1111-1111-111111111111", &c);
        assert_eq!(
            call.path,
            "/v1.0/applications(appId='11111111-1111-1111-1111-111111111111')/federatedIdentityCredentials"
        );
        let body = call.body.unwrap();
        assert!(body.get("id").is_none());
        assert_eq!(body["audiences"], serde_json::json!(["api://AzureADTokenExchange"]));
        assert_eq!(
            delete_call("a", "it's").path,
            "/v1.0/applications(appId='a')/federatedIdentityCredentials(name='it%27%27s')"
        );
    }
}
