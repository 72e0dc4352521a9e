//! Directory objects as Graph renders them: applications and their service principals, built
//! from the manifest files.
//!
//! A `$select`-less GET returns the whole entity, so every property Graph always returns is
//! present: the manifest's value when it has one, otherwise Graph's default for a new
//! registration (`[]`, `null`, or the default object). Credentials come back in Graph's shape
//! whatever the manifest's format, with certificate bodies only when `keyCredentials` is
//! selected, and `passwordCredentials` never carry the secret.
//!
//! Service principals: every application has one in the emulated tenant (its id is the `oid` of
//! the app's tokens). Graph keeps service principal credentials apart from the application's (SAML
//! signing certificates live there); the emulator reads them from an optional `servicePrincipal`
//! object in the manifest, an emulator-only section described in the README.

use super::odata::{EntityType, Query, QueryError};
use crate::emulator::App;
use serde_json::{json, Map, Value};

/// The application entity: its properties in the order Graph returns them, and what `$filter`
/// accepts on them by default.
pub const APPLICATION: EntityType = EntityType {
    odata_name: "microsoft.graph.application",
    resource: "Application",
    properties: &[
        "id",
        "deletedDateTime",
        "appId",
        "applicationTemplateId",
        "disabledByMicrosoftStatus",
        "createdDateTime",
        "displayName",
        "description",
        "groupMembershipClaims",
        "identifierUris",
        "isDeviceOnlyAuthSupported",
        "isFallbackPublicClient",
        "nativeAuthenticationApisEnabled",
        "notes",
        "publisherDomain",
        "serviceManagementReference",
        "signInAudience",
        "tags",
        "tokenEncryptionKeyId",
        "uniqueName",
        "samlMetadataUrl",
        "defaultRedirectUri",
        "certification",
        "optionalClaims",
        "servicePrincipalLockConfiguration",
        "requestSignatureVerification",
        "addIns",
        "api",
        "appRoles",
        "info",
        "keyCredentials",
        "parentalControlSettings",
        "passwordCredentials",
        "publicClient",
        "requiredResourceAccess",
        "verifiedPublisher",
        "web",
        "spa",
    ],
    eq: &["id", "appId", "displayName", "signInAudience", "publisherDomain", "uniqueName"],
    prefix: &["displayName"],
    any: &["identifierUris", "tags"],
    dates: &["createdDateTime"],
};

/// The service principal entity.
pub const SERVICE_PRINCIPAL: EntityType = EntityType {
    odata_name: "microsoft.graph.servicePrincipal",
    resource: "ServicePrincipal",
    properties: &[
        "id",
        "deletedDateTime",
        "accountEnabled",
        "appDisplayName",
        "appId",
        "appOwnerOrganizationId",
        "appRoleAssignmentRequired",
        "createdDateTime",
        "displayName",
        "preferredSingleSignOnMode",
        "preferredTokenSigningKeyThumbprint",
        "servicePrincipalNames",
        "servicePrincipalType",
        "signInAudience",
        "tags",
        "appRoles",
        "keyCredentials",
        "oauth2PermissionScopes",
        "passwordCredentials",
    ],
    eq: &["id", "appId", "displayName", "servicePrincipalType", "preferredSingleSignOnMode", "accountEnabled"],
    prefix: &["displayName"],
    any: &["servicePrincipalNames", "tags"],
    dates: &["createdDateTime"],
};

/// Whether `entity` is in the answer to the query string `raw` on `/applications`
/// (`/servicePrincipals` when `service_principals`), or Graph's refusal of the query: what the
/// emulator's Graph does with a query, without a server (the `$filter` fuzz target drives the
/// parser through it).
pub fn query_matches(raw: &str, service_principals: bool, entity: &Map<String, Value>) -> Result<bool, QueryError> {
    let types = if service_principals { &SERVICE_PRINCIPAL } else { &APPLICATION };
    Ok(Query::parse(Some(raw), types)?.matches(entity))
}

/// Graph's value of a property for a registration that never set it.
fn application_default(name: &str) -> Value {
    match name {
        "identifierUris" | "tags" | "addIns" | "appRoles" | "requiredResourceAccess" => json!([]),
        "signInAudience" => json!("AzureADMyOrg"),
        "api" => json!({
            "acceptMappedClaims": null, "knownClientApplications": [], "requestedAccessTokenVersion": null,
            "oauth2PermissionScopes": [], "preAuthorizedApplications": []
        }),
        "info" => json!({
            "logoUrl": null, "marketingUrl": null, "privacyStatementUrl": null, "supportUrl": null,
            "termsOfServiceUrl": null
        }),
        "parentalControlSettings" => json!({"countriesBlockedForMinors": [], "legalAgeGroupRule": "Allow"}),
        "publicClient" | "spa" => json!({"redirectUris": []}),
        "verifiedPublisher" => json!({"displayName": null, "verifiedPublisherId": null, "addedDateTime": null}),
        "web" => json!({
            "homePageUrl": null, "logoutUrl": null, "redirectUris": [],
            "implicitGrantSettings": {"enableAccessTokenIssuance": false, "enableIdTokenIssuance": false},
            "redirectUriSettings": []
        }),
        _ => Value::Null,
    }
}

/// The application's object id: the manifest's `id`/`objectId`, else the one the emulator
/// derived (which is also its service principal's).
pub fn object_id(app: &App) -> String {
    app.graph_id().to_string()
}

/// The whole application entity. Certificate bodies (`key`) are included only `with_bodies`
/// (Graph returns them only when `keyCredentials` is named in `$select`).
///
/// `only` limits the properties rendered (those a `$select` and `$filter` need), to spare the
/// work of building what is thrown away.
pub fn application(app: &App, with_bodies: bool, only: Option<&[&str]>) -> Map<String, Value> {
    let root = &app.json();
    let mut out = Map::new();
    for &name in APPLICATION.properties {
        if only.is_some_and(|o| !o.contains(&name)) {
            continue;
        }
        let v = match name {
            "id" => json!(object_id(app)),
            "appId" => json!(app.app_id),
            "keyCredentials" => json!(key_credentials(root.get("keyCredentials"), with_bodies)),
            "passwordCredentials" => json!(password_credentials(root.get("passwordCredentials"))),
            // A legacy manifest's `name` is the application's display name.
            "displayName" => json!(app.display_name),
            _ => match root.get(name) {
                // A downloaded manifest holds `null` where Graph has a default collection.
                Some(Value::Null) | None => application_default(name),
                Some(v) => v.clone(),
            },
        };
        out.insert(name.to_string(), v);
    }
    out
}

/// The service principal of `app` in the emulated tenant, limited to `only` as in [`application`].
pub fn service_principal(app: &App, tenant: &str, with_bodies: bool, only: Option<&[&str]>) -> Map<String, Value> {
    let root = &app.json();
    let section = root.get("servicePrincipal").and_then(Value::as_object);
    let from = |k: &str| section.and_then(|s| s.get(k)).filter(|v| !v.is_null()).cloned();
    let mut names = vec![json!(app.app_id)];
    if let Some(Value::Array(uris)) = root.get("identifierUris") {
        names.extend(uris.iter().cloned());
    }
    let display = json!(app.display_name);
    let mut out = Map::new();
    for &name in SERVICE_PRINCIPAL.properties {
        if only.is_some_and(|o| !o.contains(&name)) {
            continue;
        }
        let v = match name {
            "id" => json!(app.sp_object_id),
            "appId" => json!(app.app_id),
            "appDisplayName" | "displayName" => display.clone(),
            "appOwnerOrganizationId" => json!(tenant),
            "keyCredentials" => json!(key_credentials(section.and_then(|s| s.get("keyCredentials")), with_bodies)),
            "passwordCredentials" => {
                json!(password_credentials(section.and_then(|s| s.get("passwordCredentials"))))
            }
            "servicePrincipalNames" => from(name).unwrap_or_else(|| json!(names)),
            "accountEnabled" => from(name).unwrap_or(json!(true)),
            "appRoleAssignmentRequired" => from(name).unwrap_or(json!(false)),
            "servicePrincipalType" => from(name).unwrap_or(json!("Application")),
            "signInAudience" => root.get("signInAudience").cloned().unwrap_or(json!("AzureADMyOrg")),
            "tags" | "appRoles" | "oauth2PermissionScopes" => from(name).unwrap_or(json!([])),
            _ => from(name).unwrap_or(Value::Null),
        };
        out.insert(name.to_string(), v);
    }
    out
}

/// The fields of a `keyCredential`, in Graph's order.
const KEY_FIELDS: [&str; 8] =
    ["customKeyIdentifier", "displayName", "endDateTime", "key", "keyId", "startDateTime", "type", "usage"];
/// The fields of a `passwordCredential`, in Graph's order.
const PASSWORD_FIELDS: [&str; 7] =
    ["customKeyIdentifier", "displayName", "endDateTime", "hint", "keyId", "secretText", "startDateTime"];

/// A manifest entry's field under its Graph name (legacy manifests say `value`, `startDate`,
/// `endDate`).
fn graph_field<'a>(o: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    let legacy = match name {
        "key" => "value",
        "startDateTime" => "startDate",
        "endDateTime" => "endDate",
        _ => name,
    };
    o.get(name).or_else(|| o.get(legacy))
}

/// Entries as Graph returns them: exactly Graph's fields, `null` where the manifest has none.
pub fn key_credentials(v: Option<&Value>, with_bodies: bool) -> Vec<Value> {
    entries(v)
        .map(|o| {
            let mut e = Map::new();
            for f in KEY_FIELDS {
                let v = if f == "key" && !with_bodies { None } else { graph_field(o, f) };
                e.insert(f.to_string(), v.cloned().unwrap_or(Value::Null));
            }
            Value::Object(e)
        })
        .collect()
}

/// Password credentials as Graph returns them: `secretText` is always `null` (Graph shows a
/// secret once, in the addPassword answer).
pub fn password_credentials(v: Option<&Value>) -> Vec<Value> {
    entries(v)
        .map(|o| {
            let mut e = Map::new();
            for f in PASSWORD_FIELDS {
                let v = if f == "secretText" { None } else { graph_field(o, f) };
                e.insert(f.to_string(), v.cloned().unwrap_or(Value::Null));
            }
            Value::Object(e)
        })
        .collect()
}

fn entries(v: Option<&Value>) -> impl Iterator<Item = &Map<String, Value>> {
    v.and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_object)
}
