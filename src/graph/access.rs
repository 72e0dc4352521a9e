//! An application's `requiredResourceAccess` through Microsoft Graph: read it, and change it by
//! `PATCH` of the whole collection (Graph replaces collection-valued properties whole), never
//! losing a concurrent change.
//!
//! The edit itself is the manifest's ([`Manifest::add_access`], [`Manifest::remove_access`]):
//! Graph's JSON for the property is the manifest's, so the collection is wrapped in a one-member
//! manifest, edited, and sent back.

use super::{GraphCall, GraphClient};
use crate::manifest::Manifest;
use crate::{Error, Result};
use serde_json::{json, Value};

impl GraphCall {
    /// `GET /v1.0/applications/{id}?$select=id,appId,requiredResourceAccess`.
    pub fn get_required_access(id: &str) -> GraphCall {
        let path = format!("/v1.0/applications/{id}?$select=id,appId,requiredResourceAccess");
        GraphCall { method: reqwest::Method::GET, path, body: None }
    }
    /// `PATCH /v1.0/applications/{id}` with the whole `requiredResourceAccess` collection.
    pub fn patch_required_access(id: &str, access: &Value) -> GraphCall {
        let body = json!({ "requiredResourceAccess": access });
        GraphCall { method: reqwest::Method::PATCH, path: format!("/v1.0/applications/{id}"), body: Some(body) }
    }
}

/// The application's `requiredResourceAccess` (object id `id`) as a one-member manifest.
fn as_manifest(id: &str, v: Option<Value>) -> Result<Manifest> {
    let access = v.as_ref().and_then(|v| v.get("requiredResourceAccess")).cloned().unwrap_or(json!([]));
    Manifest::parse(&json!({ "requiredResourceAccess": access }).to_string(), &format!("application {id}"))
}

impl GraphClient {
    /// The `requiredResourceAccess` of the application with object id `id`, as a one-member
    /// manifest ([`Manifest::required_access`] lists it).
    pub async fn required_access(&self, id: &str) -> Result<Manifest> {
        as_manifest(id, self.send(GraphCall::get_required_access(id)).await?)
    }

    /// Read-modify-write of `requiredResourceAccess`: re-read just before the PATCH and, if it
    /// changed since `change` ran, run it again (up to 5 times). Returns the collection as
    /// written (or as it was, when `change` changed nothing: no PATCH is sent then).
    pub async fn update_required_access<F>(&self, id: &str, mut change: F) -> Result<Manifest>
    where
        F: FnMut(&Manifest) -> Result<Manifest>,
    {
        for _ in 0..5 {
            let before = self.required_access(id).await?;
            let after = change(&before)?;
            if after.root() == before.root() {
                return Ok(after);
            }
            if self.required_access(id).await?.root() != before.root() {
                continue;
            }
            let access = after.root().get("requiredResourceAccess").cloned().unwrap_or(json!([]));
            self.send(GraphCall::patch_required_access(id, &access)).await?;
            return Ok(after);
        }
        Err(Error::remote(
            "the application's requiredResourceAccess kept changing while keycred updated it; nothing was written",
        )
        .with_hint("another process is editing the application: run again when it is done"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_select_and_patch_only_required_resource_access() {
        let g = GraphCall::get_required_access("obj");
        assert_eq!(g.path, "/v1.0/applications/obj?$select=id,appId,requiredResourceAccess");
        let p = GraphCall::patch_required_access("obj", &json!([]));
        assert_eq!((p.method, p.path.as_str()), (reqwest::Method::PATCH, "/v1.0/applications/obj"));
        assert_eq!(p.body, Some(json!({"requiredResourceAccess": []})));
        let m = as_manifest("obj", Some(json!({"id": "obj", "requiredResourceAccess": null}))).unwrap();
        assert_eq!(m.required_access().unwrap(), []);
    }
}
