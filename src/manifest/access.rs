//! A manifest's `requiredResourceAccess`: the API permissions the app asks for, read and edited.
//!
//! Both manifest shapes write it the same way (`resourceAppId`, `resourceAccess[]` of `id` and
//! `type`), so one edit serves both. Only that member is rewritten (in the file's style, through
//! [`Manifest::set_member`]); every other byte of the file stays as it was.

use super::Manifest;
use crate::permissions::{self, Kind};
use crate::{Error, Result};
use serde::Serialize;
use serde_json::{json, Value};

/// One permission the manifest asks for. JSON field names are a contract.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AccessRow {
    /// The resource's appId.
    pub resource_app_id: String,
    /// The resource's display name, when keycred's catalogue knows it.
    pub api: Option<String>,
    /// `Role` or `Scope`.
    #[serde(rename = "type")]
    pub kind: Kind,
    /// The permission's id.
    pub id: String,
    /// Its name, when keycred's catalogue knows it.
    pub name: Option<String>,
}

/// The entries of `requiredResourceAccess`, refusing a member that is not an array of objects.
fn blocks(m: &Manifest) -> Result<Vec<Value>> {
    match m.root().get("requiredResourceAccess") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) if a.iter().all(Value::is_object) => Ok(a.clone()),
        Some(_) => Err(Error::input(format!(
            "{}: requiredResourceAccess is not an array of objects; nothing was changed",
            m.origin()
        ))
        .with_hint(
            "fix it to [ {\"resourceAppId\": ..., \"resourceAccess\": [ {\"id\": ..., \"type\": \"Role\"} ]} ]",
        )),
    }
}

fn same_id(a: &Value, b: &str) -> bool {
    a.as_str().is_some_and(|a| a.eq_ignore_ascii_case(b))
}

fn is_access(v: &Value, id: &str, kind: Kind) -> bool {
    same_id(&v["id"], id) && v["type"].as_str().and_then(Kind::parse) == Some(kind)
}

impl Manifest {
    /// What `requiredResourceAccess` asks for, one row per permission (entries that cannot be read
    /// are skipped).
    pub fn required_access(&self) -> Result<Vec<AccessRow>> {
        let mut rows = Vec::new();
        for b in blocks(self)? {
            let Some(app_id) = b["resourceAppId"].as_str() else { continue };
            let api = permissions::api_by_app_id(app_id);
            for a in b["resourceAccess"].as_array().into_iter().flatten() {
                let (Some(id), Some(kind)) = (a["id"].as_str(), a["type"].as_str().and_then(Kind::parse)) else {
                    continue;
                };
                rows.push(AccessRow {
                    resource_app_id: app_id.to_string(),
                    api: api.map(|a| a.display_name.clone()),
                    kind,
                    id: id.to_string(),
                    name: api.and_then(|a| a.name_of(kind, id)).map(str::to_string),
                });
            }
        }
        Ok(rows)
    }

    /// Returns the manifest asking also for `wanted` (ids and kinds) on `resource_app_id`;
    /// permissions already asked for are left as they are (adding is idempotent).
    pub fn add_access(&self, resource_app_id: &str, wanted: &[(String, Kind)]) -> Result<Manifest> {
        let mut all = blocks(self)?;
        let pos = match all.iter().position(|b| same_id(&b["resourceAppId"], resource_app_id)) {
            Some(p) => p,
            None => {
                all.push(json!({"resourceAppId": resource_app_id, "resourceAccess": []}));
                all.len() - 1
            }
        };
        let block = all[pos].as_object_mut().expect("blocks are objects");
        let list = block.entry("resourceAccess").or_insert_with(|| json!([]));
        if !list.is_array() {
            *list = json!([]);
        }
        let list = list.as_array_mut().expect("made an array");
        let mut added = false;
        for (id, kind) in wanted {
            if !list.iter().any(|v| is_access(v, id, *kind)) {
                list.push(json!({"id": id, "type": kind.name()}));
                added = true;
            }
        }
        if !added {
            return Ok(self.clone());
        }
        self.set_member("requiredResourceAccess", &Value::Array(all))
    }

    /// Returns the manifest no longer asking for `unwanted` on `resource_app_id` (a resource left
    /// with nothing is removed). Refuses to remove what is not there.
    pub fn remove_access(&self, resource_app_id: &str, unwanted: &[(String, Kind)]) -> Result<Manifest> {
        let mut all = blocks(self)?;
        for (id, kind) in unwanted {
            let found = all.iter_mut().filter(|b| same_id(&b["resourceAppId"], resource_app_id)).find_map(|b| {
                let list = b["resourceAccess"].as_array_mut()?;
                let at = list.iter().position(|v| is_access(v, id, *kind))?;
                list.remove(at);
                Some(())
            });
            if found.is_none() {
                return Err(Error::input(format!(
                    "{}: requiredResourceAccess has no {} {id} for the resource {resource_app_id}; nothing was changed",
                    self.origin(),
                    kind.name()
                ))
                .with_hint("the manifest's requiredResourceAccess lists what it asks for"));
            }
        }
        all.retain(|b| {
            !same_id(&b["resourceAppId"], resource_app_id)
                || b["resourceAccess"].as_array().is_none_or(|l| !l.is_empty())
        });
        self.set_member("requiredResourceAccess", &Value::Array(all))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const O365: &str = "c5393580-f805-4401-95e8-94b7a6ef2fc2";
    const FEED: &str = "594c1fb6-4f81-4475-ae41-0c394909246c";

    fn m(t: &str) -> Manifest {
        Manifest::parse(t, "test").unwrap()
    }

    #[test]
    fn adding_touches_only_required_resource_access_and_is_idempotent() {
        let t = "{\r\n    \"big\": 12345678901234567890,\r\n    \"keyCredentials\": [],\r\n    \"z\": \"\\u00e9\"\r\n}";
        let out = m(t).add_access(O365, &[(FEED.into(), Kind::Role)]).unwrap();
        assert!(out.text().starts_with("{\r\n    \"big\": 12345678901234567890,\r\n    \"keyCredentials\": [],\r\n    \"z\": \"\\u00e9\",\r\n    \"requiredResourceAccess\": ["));
        let rows = out.required_access().unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].name.as_deref(), rows[0].kind), (Some("ActivityFeed.Read"), Kind::Role));
        assert_eq!(out.add_access(O365, &[(FEED.into(), Kind::Role)]).unwrap().text(), out.text());
        // The same id as a Scope is another permission (the Office 365 Management APIs publish both).
        assert_eq!(out.add_access(O365, &[(FEED.into(), Kind::Scope)]).unwrap().required_access().unwrap().len(), 2);
    }

    #[test]
    fn removing_the_last_permission_of_a_resource_removes_its_block() {
        let t = r#"{"requiredResourceAccess": [{"resourceAppId": "00000003-0000-0000-c000-000000000000", "resourceAccess": [{"id": "e1fe6dd8-ba31-4d61-89e7-88639da4683d", "type": "Scope"}]}]}"#;
        let added = m(t).add_access(O365, &[(FEED.into(), Kind::Role)]).unwrap();
        let back = added.remove_access(O365, &[(FEED.into(), Kind::Role)]).unwrap();
        assert_eq!(back.root()["requiredResourceAccess"], m(t).root()["requiredResourceAccess"]);
        let e = back.remove_access(O365, &[(FEED.into(), Kind::Role)]).unwrap_err();
        assert!(e.message().contains("has no Role 594c1fb6"), "{}", e.message());
        assert!(m(r#"{"requiredResourceAccess": 3}"#).add_access(O365, &[]).is_err());
    }
}
