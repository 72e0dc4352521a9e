//! The built-in catalogue of Microsoft's first-party APIs and the permission ids they publish,
//! and the resolution of what a user types (`--api office365 --role ActivityFeed.Read`) to what
//! `requiredResourceAccess` holds (a resource appId, permission GUIDs and `Role`/`Scope`).
//!
//! The catalogue is `templates/resources.json`, the same file the emulator serves its built-in
//! resources from, so a permission keycred writes is one the emulator grants. Every id in it was
//! copied from Microsoft's published references (see its `_about`), never made up; ids that are
//! not in it are accepted as given, since a tenant's own APIs and Microsoft's many others have
//! ids keycred cannot know.

use crate::ids::well_known;
use crate::wording::{Action, Input};
use crate::{Error, Result};
use serde::Serialize;
use serde_json::Value;
use std::sync::OnceLock;

/// The catalogue file.
const CATALOGUE: &str = include_str!("../templates/resources.json");

/// Short names accepted for `--api`, by resource appId: what people call these APIs.
const SHORT_NAMES: [(&str, &[&str]); 5] = [
    (well_known::MICROSOFT_GRAPH, &["graph", "microsoft-graph", "msgraph"]),
    (well_known::OFFICE_365_MANAGEMENT, &["office365", "o365", "office-365-management", "manage"]),
    (well_known::THREAT_PROTECTION, &["threat-protection", "mtp", "m365-defender", "defender"]),
    (well_known::WINDOWS_DEFENDER_ATP, &["defender-atp", "wdatp", "mde", "windowsdefenderatp"]),
    (well_known::AZURE_AD_GRAPH, &["aad-graph", "azure-ad-graph", "aadgraph"]),
];

/// `Role` (an application permission, in app-only tokens' `roles`) or `Scope` (a delegated
/// permission, in user tokens' `scp`): the `type` of a `resourceAccess` entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Kind {
    /// An app role.
    Role,
    /// A delegated scope.
    Scope,
}

impl Kind {
    /// The `type` value in `requiredResourceAccess`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Role => "Role",
            Kind::Scope => "Scope",
        }
    }
    /// The kind a `type` value names (Entra compares it case-insensitively).
    pub fn parse(s: &str) -> Option<Kind> {
        [Kind::Role, Kind::Scope].into_iter().find(|k| k.name().eq_ignore_ascii_case(s))
    }
    fn flag(self) -> Input {
        match self {
            Kind::Role => Input::Role,
            Kind::Scope => Input::Scope,
        }
    }
}

/// One permission of a catalogue API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permission {
    /// Its GUID.
    pub id: String,
    /// Its name (`value`), what tokens carry.
    pub name: String,
}

/// One API of the catalogue.
#[derive(Clone, Debug)]
pub struct Api {
    /// The resource's appId (`resourceAppId`).
    pub app_id: String,
    /// Its display name.
    pub display_name: String,
    /// Its identifier URIs (what `--scope`/`--resource` name in token requests).
    pub identifier_uris: Vec<String>,
    /// Short names accepted for `--api`.
    pub short_names: Vec<&'static str>,
    /// Application permissions.
    pub roles: Vec<Permission>,
    /// Delegated permissions.
    pub scopes: Vec<Permission>,
}

impl Api {
    /// The permissions of `kind`.
    pub fn permissions(&self, kind: Kind) -> &[Permission] {
        match kind {
            Kind::Role => &self.roles,
            Kind::Scope => &self.scopes,
        }
    }
    /// The name of the permission `id` of `kind`, when the catalogue knows it.
    pub fn name_of(&self, kind: Kind, id: &str) -> Option<&str> {
        self.permissions(kind).iter().find(|p| p.id.eq_ignore_ascii_case(id)).map(|p| p.name.as_str())
    }
    /// Whether `s` names this API: appId, identifier URI (case and trailing `/` ignored), display
    /// name or short name.
    fn is_named(&self, s: &str) -> bool {
        let key = s.trim().trim_end_matches('/').to_ascii_lowercase();
        key == self.app_id
            || self.display_name.eq_ignore_ascii_case(&key)
            || self.short_names.iter().any(|n| *n == key)
            || self.identifier_uris.iter().any(|u| u.trim_end_matches('/').eq_ignore_ascii_case(&key))
    }
}

/// One line of `keycred permissions`. JSON field names are a contract.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CatalogueRow {
    /// The API's display name.
    pub api: String,
    /// The API's appId.
    pub resource_app_id: String,
    /// `Role` or `Scope`.
    #[serde(rename = "type")]
    pub kind: Kind,
    /// The permission's name.
    pub name: String,
    /// The permission's id.
    pub id: String,
}

fn read_permissions(v: Option<&Value>) -> Vec<Permission> {
    let Some(Value::Array(a)) = v else { return Vec::new() };
    a.iter()
        .filter_map(|p| {
            Some(Permission { id: p.get("id")?.as_str()?.to_string(), name: p.get("value")?.as_str()?.to_string() })
        })
        .collect()
}

fn strings(v: Option<&Value>) -> Vec<String> {
    let Some(Value::Array(a)) = v else { return Vec::new() };
    a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect()
}

/// The built-in catalogue, parsed once.
pub fn catalogue() -> &'static [Api] {
    static APIS: OnceLock<Vec<Api>> = OnceLock::new();
    APIS.get_or_init(|| {
        let root: Value = serde_json::from_str(CATALOGUE).expect("the embedded catalogue is JSON");
        let Some(Value::Array(resources)) = root.get("resources") else { return Vec::new() };
        resources
            .iter()
            .map(|r| {
                let app_id = r["appId"].as_str().unwrap_or_default().to_ascii_lowercase();
                let short_names =
                    SHORT_NAMES.iter().find(|(id, _)| *id == app_id).map(|(_, n)| n.to_vec()).unwrap_or_default();
                Api {
                    display_name: r["displayName"].as_str().unwrap_or_default().to_string(),
                    identifier_uris: strings(r.get("identifierUris")),
                    roles: read_permissions(r.get("appRoles")),
                    scopes: read_permissions(r.pointer("/api/oauth2PermissionScopes")),
                    short_names,
                    app_id,
                }
            })
            .collect()
    })
}

/// The catalogue API with this appId.
pub fn api_by_app_id(app_id: &str) -> Option<&'static Api> {
    catalogue().iter().find(|a| a.app_id.eq_ignore_ascii_case(app_id.trim()))
}

/// The rows of `keycred permissions`: every permission of `api` (or of every API).
pub fn rows(api: Option<&Api>) -> Vec<CatalogueRow> {
    let apis: Vec<&Api> = match api {
        Some(a) => vec![a],
        None => catalogue().iter().collect(),
    };
    let mut out = Vec::new();
    for a in apis {
        for kind in [Kind::Role, Kind::Scope] {
            out.extend(a.permissions(kind).iter().map(|p| CatalogueRow {
                api: a.display_name.clone(),
                resource_app_id: a.app_id.clone(),
                kind,
                name: p.name.clone(),
                id: p.id.clone(),
            }));
        }
    }
    out
}

/// What `--api` named: a catalogue API, or an appId keycred does not know (a tenant's own API),
/// whose permissions can then be given by id only.
#[derive(Clone, Debug)]
pub enum Resource {
    /// An API of the catalogue.
    Known(&'static Api),
    /// Another resource, by appId.
    Other(String),
}

impl Resource {
    /// The `resourceAppId`.
    pub fn app_id(&self) -> &str {
        match self {
            Resource::Known(a) => &a.app_id,
            Resource::Other(id) => id,
        }
    }
    /// The catalogue entry, when there is one.
    pub fn api(&self) -> Option<&'static Api> {
        match self {
            Resource::Known(a) => Some(a),
            Resource::Other(_) => None,
        }
    }
}

/// The resource `--api` names: a catalogue API by appId, identifier URI, display name or short
/// name, else any other appId (a GUID) as given. Anything else is refused with the nearest names.
pub fn find_api(s: &str) -> Result<Resource> {
    if let Some(a) = catalogue().iter().find(|a| a.is_named(s)) {
        return Ok(Resource::Known(a));
    }
    if let Ok(id) = uuid::Uuid::parse_str(s.trim()) {
        return Ok(Resource::Other(id.to_string()));
    }
    let names: Vec<&str> = catalogue()
        .iter()
        .flat_map(|a| a.short_names.iter().copied().chain(a.identifier_uris.iter().map(String::as_str)))
        .collect();
    let near = nearest(s, &names);
    Err(Error::input(format!("{} '{s}': not an API keycred knows{}", Input::Api, did_you_mean(&near))).with_hint(
        format!(
            "give a short name (graph, office365, threat-protection, defender-atp, aad-graph), a resource URI, or \
             the resource's appId; {} lists it",
            Action::ListPermissions { api: None }
        ),
    ))
}

/// The id of the permission `name` of `kind` on `resource`: a GUID as given, else the catalogue's
/// id for that name (case-insensitive). An unknown name is refused with the nearest known ones.
pub fn resolve(resource: &Resource, kind: Kind, name: &str) -> Result<String> {
    if let Ok(id) = uuid::Uuid::parse_str(name.trim()) {
        return Ok(id.to_string());
    }
    let Some(api) = resource.api() else {
        return Err(Error::input(format!(
            "{} '{name}': keycred has no catalogue for the resource {}, so the permission must be given by id",
            kind.flag(),
            resource.app_id()
        ))
        .with_hint("give the permission's GUID (the API's appRoles or oauth2PermissionScopes list it)"));
    };
    if let Some(p) = api.permissions(kind).iter().find(|p| p.name.eq_ignore_ascii_case(name.trim())) {
        return Ok(p.id.clone());
    }
    let names: Vec<&str> = api.permissions(kind).iter().map(|p| p.name.as_str()).collect();
    let near = nearest(name, &names);
    let other = match kind {
        Kind::Role => Kind::Scope,
        Kind::Scope => Kind::Role,
    };
    let elsewhere = if api.permissions(other).iter().any(|p| p.name.eq_ignore_ascii_case(name.trim())) {
        format!(" ({name} is a {} of {}: use {})", other.name().to_lowercase(), api.display_name, other.flag())
    } else {
        String::new()
    };
    Err(Error::input(format!(
        "{} '{name}': {} has no such {} in keycred's catalogue{elsewhere}{}",
        kind.flag(),
        api.display_name,
        kind.name().to_lowercase(),
        did_you_mean(&near)
    ))
    .with_hint(format!(
        "{} lists the known names; a permission keycred does not know can be given by its id",
        Action::ListPermissions { api: Some(api.short_names.first().copied().unwrap_or(&api.app_id).to_string()) }
    )))
}

fn did_you_mean(near: &[&str]) -> String {
    if near.is_empty() {
        String::new()
    } else {
        format!("; did you mean {}?", near.join(", "))
    }
}

/// Up to three of `candidates` nearest to `typed` (edit distance, case-insensitive), closest
/// first, among those close enough to be a plausible typo or a near name.
pub fn nearest<'a>(typed: &str, candidates: &[&'a str]) -> Vec<&'a str> {
    let t = typed.trim().to_ascii_lowercase();
    let mut scored: Vec<(usize, &str)> = candidates
        .iter()
        .map(|c| (distance(&t, &c.to_ascii_lowercase()), *c))
        .filter(|(d, c)| *d <= (c.len().max(t.len()) / 2).max(2))
        .collect();
    scored.sort_by_key(|(d, c)| (*d, *c));
    scored.dedup_by_key(|(_, c)| *c);
    scored.into_iter().take(3).map(|(_, c)| c).collect()
}

/// Levenshtein distance between `a` and `b` (by character).
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_well_known_app_ids_are_the_catalogue_s() {
        // Defined once in `ids::well_known`; the catalogue (templates/resources.json) must agree.
        for (id, _) in SHORT_NAMES {
            assert!(catalogue().iter().any(|a| a.app_id == id), "{id} is not in the catalogue");
        }
    }

    #[test]
    fn apis_are_found_by_uri_app_id_display_and_short_name() {
        for s in [
            "https://manage.office.com/",
            "c5393580-f805-4401-95e8-94b7a6ef2fc2",
            "Office 365 Management APIs",
            "office365",
        ] {
            assert_eq!(find_api(s).unwrap().app_id(), "c5393580-f805-4401-95e8-94b7a6ef2fc2", "{s}");
        }
        assert_eq!(
            find_api("https://api.security.microsoft.com").unwrap().app_id(),
            "8ee8fdad-f234-4243-8f3b-15c294843740"
        );
        assert!(matches!(find_api("6731de76-14a6-49ae-97bc-6eba6914391e").unwrap(), Resource::Other(_)));
        let e = find_api("ofice365").unwrap_err();
        assert!(e.message().contains("did you mean office365"), "{}", e.message());
    }

    /// Ids as Microsoft publishes them: ActivityFeed.Read from the Office 365 Management API's
    /// setup, Incident.Read.All from Microsoft 365 Defender's API documents, Policy.Read.All from
    /// the Graph permissions reference.
    #[test]
    fn names_resolve_to_the_published_ids() {
        let o365 = find_api("office365").unwrap();
        assert_eq!(resolve(&o365, Kind::Role, "activityfeed.read").unwrap(), "594c1fb6-4f81-4475-ae41-0c394909246c");
        let mtp = find_api("threat-protection").unwrap();
        assert_eq!(resolve(&mtp, Kind::Role, "Incident.Read.All").unwrap(), "a9790345-4595-42e4-971a-ccdc79f19b7c");
        let graph = find_api("graph").unwrap();
        assert_eq!(resolve(&graph, Kind::Role, "Policy.Read.All").unwrap(), "246dd0d5-5bd0-4def-940b-0421030a5b68");
        assert_eq!(
            resolve(&graph, Kind::Role, "0123ABCD-0000-0000-0000-000000000000").unwrap(),
            "0123abcd-0000-0000-0000-000000000000"
        );
    }

    #[test]
    fn unknown_names_are_refused_with_the_nearest_known_ones() {
        let o365 = find_api("office365").unwrap();
        let e = resolve(&o365, Kind::Role, "ActivityFeed.Reed").unwrap_err();
        assert!(e.message().contains("did you mean ActivityFeed.Read, ActivityFeed.ReadDlp?"), "{}", e.message());
        let mtp = find_api("mtp").unwrap();
        let e = resolve(&mtp, Kind::Scope, "Incident.Read.All").unwrap_err();
        assert!(e.message().contains("is a role of Microsoft Threat Protection: use the role"), "{}", e.message());
        let other = find_api("6731de76-14a6-49ae-97bc-6eba6914391e").unwrap();
        assert!(resolve(&other, Kind::Role, "Things.Read").unwrap_err().message().contains("by id"));
    }

    #[test]
    fn edit_distance_counts_insertions_deletions_and_substitutions() {
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("abc", "abc"), 0);
    }
}
