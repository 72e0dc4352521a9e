//! Sample manifests and entry templates, embedded so `keycred` works without the source tree.
//!
//! The entry templates show the shape with placeholders; real entries come from
//! [`super::entry_for`].

/// A Microsoft Graph (today's portal) application manifest with an empty `keyCredentials`.
pub const MANIFEST_MS_GRAPH: &str = include_str!("../../templates/manifest-ms-graph.json");
/// A legacy Azure AD Graph application manifest (the format the Office 365 Management API's setup document edits).
pub const MANIFEST_AAD_GRAPH: &str = include_str!("../../templates/manifest-aad-graph.json");
/// A Microsoft Graph `keyCredentials` entry with placeholders.
pub const ENTRY_MS_GRAPH: &str = include_str!("../../templates/entry-ms-graph.json");
/// A legacy `keyCredentials` entry with placeholders.
pub const ENTRY_AAD_GRAPH: &str = include_str!("../../templates/entry-aad-graph.json");

/// The identity a starter manifest is written with.
#[derive(Clone, Debug)]
pub struct Starter {
    /// `appId` (the client id).
    pub app_id: uuid::Uuid,
    /// `id` (Graph) or `objectId` (legacy): the application object's id.
    pub object_id: uuid::Uuid,
    /// `displayName` (Graph) or `name` (legacy).
    pub display_name: String,
}

/// The sample manifest of `format` with `starter`'s ids and name in place of the placeholders,
/// the rest of the text (order, indentation) as in the template.
pub fn starter(format: super::Format, starter: &Starter) -> String {
    let json = |s: &str| serde_json::to_string(s).expect("a string serialises");
    let (object_key, name_key) = match format {
        super::Format::MsGraph => ("\"id\"", "\"displayName\""),
        super::Format::AadGraph => ("\"objectId\"", "\"name\""),
    };
    manifest(format)
        .replacen(
            &format!("{object_key}: \"00000000-0000-0000-0000-000000000000\""),
            &format!("{object_key}: \"{}\"", starter.object_id),
            1,
        )
        .replacen(
            "\"appId\": \"11111111-1111-1111-1111-111111111111\"",
            &format!("\"appId\": \"{}\"", starter.app_id),
            1,
        )
        .replacen(
            &format!("{name_key}: \"MyCompanyName MyAppName\""),
            &format!("{name_key}: {}", json(&starter.display_name)),
            1,
        )
}

/// The sample manifest of `format`.
pub fn manifest(format: super::Format) -> &'static str {
    match format {
        super::Format::MsGraph => MANIFEST_MS_GRAPH,
        super::Format::AadGraph => MANIFEST_AAD_GRAPH,
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Format, Manifest};
    use super::*;

    #[test]
    fn starters_carry_the_ids_and_name() {
        let s = Starter {
            app_id: uuid::Uuid::new_v4(),
            object_id: uuid::Uuid::new_v4(),
            display_name: "My \"daemon\"".into(),
        };
        for (f, obj, name) in [(Format::MsGraph, "id", "displayName"), (Format::AadGraph, "objectId", "name")] {
            let m = Manifest::parse(&starter(f, &s), "starter").unwrap();
            assert_eq!(m.detect_format(), Some(f));
            assert_eq!(m.app_id(), Some(s.app_id.to_string().as_str()));
            assert_eq!(m.root()[obj], s.object_id.to_string());
            assert_eq!(m.root()[name], "My \"daemon\"");
        }
    }

    #[test]
    fn templates_parse_and_detect_their_format() {
        for f in [Format::MsGraph, Format::AadGraph] {
            let m = Manifest::parse(manifest(f), f.name()).unwrap();
            assert_eq!(m.detect_format(), Some(f));
            assert!(m.raw_entries().is_empty());
        }
        for (t, f) in [(ENTRY_MS_GRAPH, Format::MsGraph), (ENTRY_AAD_GRAPH, Format::AadGraph)] {
            let v: serde_json::Value = serde_json::from_str(t).unwrap();
            assert_eq!(super::super::entry_format(v.as_object().unwrap()), Some(f));
        }
    }
}
