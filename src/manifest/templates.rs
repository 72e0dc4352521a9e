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
