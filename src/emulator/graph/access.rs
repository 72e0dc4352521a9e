//! `requiredResourceAccess` in a `PATCH` of an application: the API permissions the app asks
//! for, replaced whole as Graph replaces a collection-valued property.
//!
//! Graph types the property as a collection of `requiredResourceAccess` (`resourceAppId`, a
//! GUID string, and `resourceAccess`, a collection of `resourceAccess`: `id`, a GUID, and `type`,
//! `Role` or `Scope`). A body that does not have that shape is refused with 400; the exact code
//! and message real Graph gives for each malformed shape was not found in public sources, so the
//! emulator answers `Request_BadRequest` naming the fault (README, emulator section, says so).

use serde_json::Value;

/// The refusal of a malformed `requiredResourceAccess`, in words.
fn fault(why: String) -> String {
    format!("Invalid value for requiredResourceAccess: {why}.")
}

fn is_guid(v: &Value) -> bool {
    v.as_str().is_some_and(|s| uuid::Uuid::parse_str(s).is_ok())
}

/// Checks `v` has the shape of Graph's `requiredResourceAccess` collection; the message of the
/// 400 otherwise.
pub(super) fn check(v: &Value) -> Result<(), String> {
    let Some(blocks) = v.as_array() else { return Err(fault("it is not an array".into())) };
    for (i, b) in blocks.iter().enumerate() {
        if !is_guid(&b["resourceAppId"]) {
            return Err(fault(format!("entry {i} has no resourceAppId GUID")));
        }
        let Some(list) = b["resourceAccess"].as_array() else {
            return Err(fault(format!("entry {i} has no resourceAccess array")));
        };
        for a in list {
            let kind = a["type"].as_str().unwrap_or_default();
            if !is_guid(&a["id"]) || !(kind.eq_ignore_ascii_case("Role") || kind.eq_ignore_ascii_case("Scope")) {
                return Err(fault(format!(
                    "entry {i} has a resourceAccess that is not {{id: GUID, type: Role|Scope}}"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_graphs_shape_of_the_collection_is_accepted() {
        let ok = json!([{"resourceAppId": "c5393580-f805-4401-95e8-94b7a6ef2fc2",
            "resourceAccess": [{"id": "594c1fb6-4f81-4475-ae41-0c394909246c", "type": "Role"}]}]);
        assert_eq!(check(&ok), Ok(()));
        assert!(check(&json!({})).is_err());
        assert!(check(&json!([{"resourceAppId": "office365", "resourceAccess": []}])).is_err());
        let bad_type = json!([{"resourceAppId": "c5393580-f805-4401-95e8-94b7a6ef2fc2",
            "resourceAccess": [{"id": "594c1fb6-4f81-4475-ae41-0c394909246c", "type": "Application"}]}]);
        assert!(check(&bad_type).unwrap_err().contains("Role|Scope"));
    }
}
