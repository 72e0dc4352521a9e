//! The emulated tenant's directory: applications (one manifest file each) and the resources
//! (APIs) they call.
//!
//! Design.
//! - **Applications** come from `--manifest FILE` (each given file) and `--apps-dir DIR` (every
//!   `*.json` regular file in it). An [`App`] keeps the whole manifest JSON (as text, [`App::json`]) for
//!   Graph, and the parts the token side needs, read once per file version: credentials, reply
//!   URLs, `requiredResourceAccess`, and its API ([`Api`]: identifier URIs, scopes, app roles,
//!   requested token version). Parsed apps are shared as `Arc`s; no request holds a lock while it
//!   verifies signatures.
//! - **Resources**: every application is a resource other apps may ask tokens for, named by its
//!   appId or any identifier URI; Microsoft's first-party APIs (Microsoft Graph, Office 365
//!   Management APIs, Microsoft Threat Protection, ...) are built in, from the catalogue
//!   `templates/resources.json`, which has no file behind it and is not a Graph application.
//! - **Indexes** by appId, application object id and identifier URI (case-insensitive, URIs
//!   without trailing `/`), so a lookup costs the same with one app or 10,000.
//! - **Freshness without scanning.** A rotation script edits a manifest and expects the next
//!   request to see it. A lookup re-checks only the file of the app it returns (a stat, and a
//!   re-read when its modification time, length or inode moved), and, with `--apps-dir`, the
//!   directory's own modification time: a file added, removed or replaced by rename (how every
//!   atomic writer, keycred included, saves) changes it, and only then is the directory
//!   re-listed. A stat cannot see a same-length rewrite made within the file system's timestamp
//!   granularity (a timer tick on older Linux kernels, 2 s on FAT); as git does for "racily
//!   clean" index entries, a file (or directory) read less than [`RACY`] after its modification
//!   time is read again on every use until it has been quiet that long.
//! - **Broken files** never take an app down: the last good version stays and the next change is
//!   picked up as usual; a broken new file in the directory is skipped until it changes.
//! - **Only regular files** are read: anything else (a FIFO, a device) is refused from its
//!   metadata, without opening it, so it cannot block the reader. The registry does blocking file
//!   I/O; the HTTP handlers call it from `spawn_blocking`, never on the async workers.
//! - Consent, users and the grants in flight are the tenant's mutable state; they live in
//!   [`super::tenant`], keyed by the appIds found here.

mod registry;

pub use registry::Registry;

use crate::manifest::{KeyCredential, Manifest};
use crate::thumbprint::sha256;
use crate::{Error, Result};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The catalogue of built-in resources.
const CATALOGUE: &str = include_str!("../../../templates/resources.json");

/// Which access token shape a resource takes (PROTOCOL.md section 5): chosen by the resource,
/// whichever endpoint was called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenVersion {
    /// `requestedAccessTokenVersion` null or 1 (the default, and Microsoft's own APIs).
    V1,
    /// `requestedAccessTokenVersion` 2.
    V2,
}

/// A delegated permission (`oauth2PermissionScopes`) or an app role (`appRoles`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permission {
    /// Its GUID, what `requiredResourceAccess` names.
    pub id: String,
    /// Its value, what tokens carry in `scp` or `roles`.
    pub value: String,
    /// Delegated scopes: `type` is "Admin" (only an administrator may consent).
    pub admin_only: bool,
}

/// What an application exposes to others: the resource side of an app.
#[derive(Clone, Debug)]
pub struct Api {
    /// The resource's appId, a v2 token's `aud`.
    pub app_id: String,
    /// Display name, for the consent page and start-up output.
    pub display_name: String,
    /// `identifierUris` (App ID URIs), as written.
    pub identifier_uris: Vec<String>,
    /// Token shape it takes.
    pub token_version: TokenVersion,
    /// Delegated permissions (enabled ones).
    pub scopes: Vec<Permission>,
    /// App roles that applications can hold (`allowedMemberTypes` has "Application").
    pub app_roles: Vec<Permission>,
    /// A built-in first-party resource (no manifest file).
    pub builtin: bool,
    /// Which of its access tokens carry the optional `idtyp` claim.
    pub idtyp: IdTyp,
}

/// The optional `idtyp` claim, as a resource asks for it in `optionalClaims.accessToken`: by
/// default Entra emits it in no token; named, in app-only tokens (`app`); with the additional
/// property `include_user_token`, in user tokens too (`user`). Microsoft's optional-claims
/// reference, <https://learn.microsoft.com/entra/identity-platform/optional-claims-reference>.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IdTyp {
    /// Not asked for: no `idtyp` claim.
    #[default]
    Never,
    /// In app-only tokens only.
    AppOnly,
    /// In app-only and user tokens.
    AppAndUser,
}

impl Api {
    /// Whether `identifier` names this resource: its appId, or one of its identifier URIs
    /// (case-insensitive, trailing `/` ignored).
    pub fn is_named(&self, identifier: &str) -> bool {
        let key = uri_key(identifier);
        key == self.app_id.to_ascii_lowercase() || self.identifier_uris.iter().any(|u| uri_key(u) == key)
    }
    /// The app role with this id.
    pub fn role_by_id(&self, id: &str) -> Option<&Permission> {
        self.app_roles.iter().find(|r| r.id.eq_ignore_ascii_case(id))
    }
    /// The delegated scope with this id.
    pub fn scope_by_id(&self, id: &str) -> Option<&Permission> {
        self.scopes.iter().find(|r| r.id.eq_ignore_ascii_case(id))
    }
    /// The delegated scope with this value (scope values compare case-insensitively in Entra).
    pub fn scope_by_value(&self, value: &str) -> Option<&Permission> {
        self.scopes.iter().find(|r| r.value.eq_ignore_ascii_case(value))
    }
}

/// `Role` (application permission) or `Scope` (delegated permission).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessKind {
    /// An app role: granted by admin consent, carried in app-only tokens' `roles`.
    Role,
    /// A delegated scope: granted by user or admin consent, carried in user tokens' `scp`.
    Scope,
}

/// One `requiredResourceAccess[].resourceAccess[]` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequiredAccess {
    /// The resource's appId (`resourceAppId`).
    pub resource_app_id: String,
    /// The permission's id.
    pub id: String,
    /// Its kind.
    pub kind: AccessKind,
}

/// An application as the emulator knows it.
#[derive(Debug)]
pub struct App {
    /// `appId` (the client id).
    pub app_id: String,
    /// Object id of the application (`id` / `objectId`), when the manifest has one.
    pub object_id: Option<String>,
    /// Object id of its service principal in the emulated tenant, the `oid` of app tokens.
    pub sp_object_id: String,
    /// `displayName`, when the manifest has one.
    pub display_name: Option<String>,
    /// `keyCredentials`.
    pub credentials: Vec<KeyCredential>,
    /// Registered reply URLs (`web`, `spa`, `publicClient` redirect URIs; legacy `replyUrls` and
    /// `replyUrlsWithType`), as written.
    pub reply_urls: Vec<String>,
    /// `requiredResourceAccess`, flattened.
    pub required: Vec<RequiredAccess>,
    /// What the app exposes as a resource.
    pub api: Arc<Api>,
    /// The whole manifest as last read, as compact JSON text: Graph reads it ([`App::json`]),
    /// the token path never does, and a parsed tree costs several times its text in memory
    /// (a tenant of 10,000 applications is held at once).
    json_text: Box<str>,
    /// The certificate bodies left out of `json_text`: entry index * 2 + the field's place in
    /// [`BODY_FIELDS`].
    bodies_out: Box<[u32]>,
    /// The manifest file.
    pub path: PathBuf,
}

impl App {
    /// The whole manifest, as last read (parsed from the text kept, with the certificate bodies
    /// left out of the text put back).
    pub fn json(&self) -> Map<String, Value> {
        let mut root: Map<String, Value> = serde_json::from_str(&self.json_text).unwrap_or_default();
        if let Some(Value::Array(entries)) = root.get_mut("keyCredentials") {
            for &at in self.bodies_out.iter() {
                let (index, field) = ((at / 2) as usize, BODY_FIELDS[(at % 2) as usize]);
                let cert = self.credentials.iter().find(|c| c.index == index).and_then(|c| c.certificate.as_ref());
                if let (Some(cert), Some(Value::Object(e))) = (cert, entries.get_mut(index)) {
                    e.insert(field.to_string(), Value::String(cert.value_b64()));
                }
            }
        }
        root
    }
    /// The object id Graph shows: `id`/`objectId`, or the service principal's when absent.
    pub fn graph_id(&self) -> &str {
        self.object_id.as_deref().unwrap_or(&self.sp_object_id)
    }
    /// The name to show: `displayName`, else the appId.
    pub fn name(&self) -> &str {
        self.display_name.as_deref().unwrap_or(&self.app_id)
    }
    /// Whether `uri` is one of its reply URLs (exact match, as Entra compares them, except that
    /// the scheme and host are case-insensitive).
    pub fn has_reply_url(&self, uri: &str) -> bool {
        self.reply_urls.iter().any(|r| same_reply_url(r, uri))
    }
}

/// Entra compares reply URLs exactly, path and query included; scheme and host are
/// case-insensitive as in every URL.
pub(super) fn same_reply_url(a: &str, b: &str) -> bool {
    match (url::Url::parse(a), url::Url::parse(b)) {
        (Ok(x), Ok(y)) => x.as_str() == y.as_str(),
        _ => a == b,
    }
}

/// A lookup key for an identifier: lower case, without trailing `/`.
fn uri_key(s: &str) -> String {
    s.trim().trim_end_matches('/').to_ascii_lowercase()
}

/// A stable GUID for something the emulator has to invent an id for: the first 16 bytes of
/// SHA-256 of `keycred-emulator {kind} {name in lower case}`, with the UUID version 4 and
/// variant bits set. Used for service principal object ids (`kind` "service principal", `name`
/// the appId), users (`kind` "user"), and the app ids of resources known only from `--grant`
/// (`kind` "resource"), so the same input gives the same id in every run and on every machine.
pub(super) fn derived_id(kind: &str, name: &str) -> String {
    let d = sha256(format!("keycred-emulator {kind} {}", name.to_ascii_lowercase()).as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    uuid::Builder::from_random_bytes(b).into_uuid().to_string()
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

fn enabled(o: &Map<String, Value>) -> bool {
    o.get("isEnabled").and_then(Value::as_bool).unwrap_or(true)
}

/// The API side of a manifest, in either shape: `api.oauth2PermissionScopes` and
/// `api.requestedAccessTokenVersion` (Graph), `oauth2Permissions` and
/// `accessTokenAcceptedVersion` (legacy); `appRoles` and `identifierUris` in both.
fn read_api(root: &Map<String, Value>, app_id: &str, display_name: &str, builtin: bool) -> Api {
    let api = root.get("api").and_then(Value::as_object);
    let version = api
        .and_then(|a| a.get("requestedAccessTokenVersion"))
        .or_else(|| root.get("accessTokenAcceptedVersion"))
        .and_then(Value::as_i64);
    let scopes_v = api.and_then(|a| a.get("oauth2PermissionScopes")).or_else(|| root.get("oauth2Permissions"));
    let scopes = match scopes_v {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_object)
            .filter(|o| enabled(o))
            .filter_map(|o| {
                Some(Permission {
                    id: o.get("id")?.as_str()?.to_string(),
                    value: o.get("value")?.as_str()?.to_string(),
                    admin_only: o.get("type").and_then(Value::as_str).is_some_and(|t| t.eq_ignore_ascii_case("Admin")),
                })
            })
            .collect(),
        _ => Vec::new(),
    };
    let app_roles = match root.get("appRoles") {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_object)
            .filter(|o| enabled(o))
            .filter(|o| strings(o.get("allowedMemberTypes")).iter().any(|t| t.eq_ignore_ascii_case("Application")))
            .filter_map(|o| {
                Some(Permission {
                    id: o.get("id")?.as_str()?.to_string(),
                    value: o.get("value")?.as_str()?.to_string(),
                    admin_only: true,
                })
            })
            .collect(),
        _ => Vec::new(),
    };
    Api {
        app_id: app_id.to_ascii_lowercase(),
        display_name: display_name.to_string(),
        identifier_uris: strings(root.get("identifierUris")),
        token_version: if version == Some(2) { TokenVersion::V2 } else { TokenVersion::V1 },
        scopes,
        app_roles,
        builtin,
        idtyp: read_idtyp(root),
    }
}

/// `optionalClaims.accessToken[]` entry named `idtyp`, and its `include_user_token`.
fn read_idtyp(root: &Map<String, Value>) -> IdTyp {
    let claims = root.get("optionalClaims").and_then(|o| o.get("accessToken")).and_then(Value::as_array);
    let Some(entry) = claims.into_iter().flatten().find(|c| c.get("name").and_then(Value::as_str) == Some("idtyp"))
    else {
        return IdTyp::Never;
    };
    if strings(entry.get("additionalProperties")).iter().any(|p| p == "include_user_token") {
        IdTyp::AppAndUser
    } else {
        IdTyp::AppOnly
    }
}

fn read_required(root: &Map<String, Value>) -> Vec<RequiredAccess> {
    let mut out = Vec::new();
    let Some(Value::Array(rra)) = root.get("requiredResourceAccess") else { return out };
    for r in rra.iter().filter_map(Value::as_object) {
        let Some(resource) = r.get("resourceAppId").and_then(Value::as_str) else { continue };
        let Some(Value::Array(access)) = r.get("resourceAccess") else { continue };
        for a in access.iter().filter_map(Value::as_object) {
            let kind = match a.get("type").and_then(Value::as_str) {
                Some(t) if t.eq_ignore_ascii_case("Role") => AccessKind::Role,
                Some(t) if t.eq_ignore_ascii_case("Scope") => AccessKind::Scope,
                _ => continue,
            };
            if let Some(id) = a.get("id").and_then(Value::as_str) {
                out.push(RequiredAccess { resource_app_id: resource.to_ascii_lowercase(), id: id.to_string(), kind });
            }
        }
    }
    out
}

fn read_reply_urls(root: &Map<String, Value>) -> Vec<String> {
    let mut out = Vec::new();
    for platform in ["web", "spa", "publicClient"] {
        out.extend(strings(root.get(platform).and_then(|p| p.get("redirectUris"))));
    }
    out.extend(strings(root.get("replyUrls")));
    if let Some(Value::Array(a)) = root.get("replyUrlsWithType") {
        out.extend(a.iter().filter_map(|e| e.get("url")).filter_map(Value::as_str).map(str::to_string));
    }
    out.dedup();
    out
}

/// Parses one manifest file's bytes into an [`App`].
fn read_app(path: &Path, bytes: Vec<u8>) -> Result<App> {
    let m = Manifest::from_bytes(bytes, path)?;
    let app_id = m.app_id().filter(|s| uuid::Uuid::parse_str(s.trim()).is_ok()).ok_or_else(|| {
        Error::file(path, "the manifest has no appId GUID")
            .with_hint("the emulator registers apps by their appId: add \"appId\": \"<GUID>\"")
    })?;
    let app_id = app_id.trim().to_ascii_lowercase();
    let display_name = m.display_name().map(str::to_string);
    let root = m.root();
    // Most applications have one or two: no room kept for more (a tenant's worth is held).
    let mut credentials = m.credentials();
    credentials.shrink_to_fit();
    let api = read_api(root, &app_id, display_name.as_deref().unwrap_or(&app_id), false);
    let (json_text, bodies_out) = compact_json(root, &credentials);
    Ok(App {
        json_text,
        bodies_out,
        sp_object_id: derived_id("service principal", &app_id),
        object_id: m.object_id().map(str::to_string),
        display_name,
        credentials,
        reply_urls: read_reply_urls(root),
        required: read_required(root),
        api: Arc::new(api),
        path: path.to_path_buf(),
        app_id,
    })
}

/// The fields of a `keyCredentials` entry that hold the certificate (Graph's `key`, the legacy
/// `value`).
const BODY_FIELDS: [&str; 2] = ["key", "value"];

/// The manifest as compact JSON text, without the certificate bodies that are exactly the base64
/// of the certificate read from them (what Graph and keycred write): the certificate already
/// holds those bytes, and bodies are most of a manifest's size. Returns the text and where the
/// bodies were ([`App::json`] puts them back).
fn compact_json(root: &Map<String, Value>, credentials: &[KeyCredential]) -> (Box<str>, Box<[u32]>) {
    let mut root = root.clone();
    let mut out = Vec::new();
    if let Some(Value::Array(entries)) = root.get_mut("keyCredentials") {
        for c in credentials {
            let Some(cert) = &c.certificate else { continue };
            let Some(Value::Object(e)) = entries.get_mut(c.index) else { continue };
            let body = cert.value_b64();
            for (i, f) in BODY_FIELDS.iter().enumerate() {
                if e.get(*f).and_then(Value::as_str) == Some(body.as_str()) {
                    e.insert(f.to_string(), Value::Null);
                    out.push(c.index as u32 * 2 + i as u32);
                }
            }
        }
    }
    (Value::Object(root).to_string().into_boxed_str(), out.into_boxed_slice())
}

/// The built-in resources, from the catalogue.
fn builtins() -> Vec<Arc<Api>> {
    let v: Value = serde_json::from_str(CATALOGUE).unwrap_or(Value::Null);
    let list = v.get("resources").and_then(Value::as_array).cloned().unwrap_or_default();
    list.iter()
        .filter_map(Value::as_object)
        .filter_map(|o| {
            let id = o.get("appId")?.as_str()?;
            let name = o.get("displayName").and_then(Value::as_str).unwrap_or(id);
            Some(Arc::new(read_api(o, id, name, true)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_has_the_first_party_resources() {
        let b = builtins();
        let find = |id: &str| b.iter().find(|a| a.is_named(id)).unwrap_or_else(|| panic!("{id} missing"));
        let graph = find("https://graph.microsoft.com/");
        assert_eq!(graph.app_id, "00000003-0000-0000-c000-000000000000");
        assert_eq!(graph.token_version, TokenVersion::V1);
        assert_eq!(
            graph.role_by_id("18a4783c-866b-4cc7-a460-3d5e5662c884").unwrap().value,
            "Application.ReadWrite.OwnedBy"
        );
        let o365 = find("https://manage.office.com");
        assert_eq!(o365.app_id, "c5393580-f805-4401-95e8-94b7a6ef2fc2");
        assert_eq!(o365.role_by_id("594c1fb6-4f81-4475-ae41-0c394909246c").unwrap().value, "ActivityFeed.Read");
        let mtp = find("https://api.security.microsoft.com");
        assert_eq!(mtp.app_id, "8ee8fdad-f234-4243-8f3b-15c294843740");
        assert!(mtp.app_roles.iter().any(|r| r.value == "Incident.Read.All"));
        assert!(mtp.app_roles.iter().any(|r| r.value == "AdvancedHunting.Read.All"));
        assert_eq!(find("https://securitycenter.onmicrosoft.com/windowsatpservice").display_name, "WindowsDefenderATP");
        assert!(b.iter().all(|a| a.token_version == TokenVersion::V1 && a.builtin));
    }

    #[test]
    fn the_manifest_kept_is_the_manifest_read() {
        use crate::cert::{generate, KeySize, NewCertificate, Validity};
        let new =
            |cn: &str| NewCertificate { subject: cn.into(), key_size: KeySize::Rsa2048, validity: Validity::Days(3) };
        let (a, _) = generate(&new("CN=a")).unwrap();
        let (b, _) = generate(&new("CN=b")).unwrap();
        // A Graph body, a legacy one, a body that is not the base64 the certificate gives (line
        // breaks), a junk `true` beside a good body, and entries without a certificate.
        let wrapped = format!("{}\n{}", &a.value_b64()[..64], &a.value_b64()[64..]);
        let text = serde_json::json!({
            "appId": "11111111-1111-1111-1111-111111111111",
            "keyCredentials": [
                {"keyId": "1", "key": a.value_b64(), "type": "AsymmetricX509Cert", "usage": "Verify"},
                "not an object",
                {"keyId": "2", "value": b.value_b64(), "type": "AsymmetricX509Cert", "usage": "Verify"},
                {"keyId": "3", "key": wrapped, "type": "AsymmetricX509Cert", "usage": "Verify"},
                {"keyId": "4", "key": true, "value": b.value_b64()},
                {"keyId": "5", "key": null},
                {"keyId": "6", "key": "bm90IGEgY2VydGlmaWNhdGU="}
            ],
            "passwordCredentials": [{"keyId": "p", "displayName": "s"}]
        });
        let root = text.as_object().unwrap().clone();
        let app = read_app(Path::new("app.json"), text.to_string().into_bytes()).unwrap();
        assert_eq!(app.json(), root);
        // The bodies equal to their certificate's base64 are not kept twice.
        assert!(app.json_text.len() < text.to_string().len() - 2 * a.value_b64().len());
    }

    #[test]
    fn both_manifest_shapes_expose_their_api() {
        let graph: Map<String, Value> = serde_json::from_str(
            r#"{"appId":"11111111-1111-1111-1111-111111111111","identifierUris":["api://x"],
                "api":{"requestedAccessTokenVersion":2,"oauth2PermissionScopes":[{"id":"a","value":"read","type":"User"}]},
                "appRoles":[{"id":"r","value":"Jobs.Run","allowedMemberTypes":["Application"]},
                            {"id":"u","value":"Users.Only","allowedMemberTypes":["User"]}],
                "requiredResourceAccess":[{"resourceAppId":"c5393580-f805-4401-95e8-94b7a6ef2fc2",
                    "resourceAccess":[{"id":"594c1fb6-4f81-4475-ae41-0c394909246c","type":"Role"}]}],
                "web":{"redirectUris":["https://app.example/cb"]}}"#,
        )
        .unwrap();
        let api = read_api(&graph, "11111111-1111-1111-1111-111111111111", "x", false);
        assert_eq!(api.token_version, TokenVersion::V2);
        assert_eq!(api.scopes.len(), 1);
        assert_eq!(api.app_roles.iter().map(|r| r.value.as_str()).collect::<Vec<_>>(), ["Jobs.Run"]);
        assert!(api.is_named("API://x/"));
        assert_eq!(read_required(&graph)[0].kind, AccessKind::Role);
        assert_eq!(read_reply_urls(&graph), ["https://app.example/cb"]);

        let legacy: Map<String, Value> = serde_json::from_str(
            r#"{"appId":"1","accessTokenAcceptedVersion":null,"oauth2Permissions":[{"id":"a","value":"user_impersonation","type":"Admin","isEnabled":true}],
                "replyUrlsWithType":[{"url":"http://localhost/cb","type":"Web"}]}"#,
        )
        .unwrap();
        let api = read_api(&legacy, "1", "y", false);
        assert_eq!(api.token_version, TokenVersion::V1);
        assert!(api.scopes[0].admin_only);
        assert_eq!(read_reply_urls(&legacy), ["http://localhost/cb"]);
    }
}
