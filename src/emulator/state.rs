//! The state a running emulator shares between its handlers ([`AppState`]): the directory, the
//! tenant, the signing key, and the questions every endpoint asks of them (which tenant, which
//! resource, which roles).

use super::config::MAX_RESOURCE;
use super::{apps, errors, issuers, signins, tenant, throttle, token};
use super::{Api, App, TokenVersion};
use crate::cert::{Certificate, PrivateKey};
use crate::secret::SecretString;
use apps::Registry;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use errors::Refusal;
use std::path::PathBuf;
use std::sync::Arc;
use tenant::Tenant;

/// Shared state of a running emulator: the directory (applications and resources), the tenant
/// (names, users, consent, grants in flight) and the token-signing key. Graph routes are served
/// on the same state.
pub struct AppState {
    pub(super) tenant: String,
    pub(super) registry: Registry,
    pub(super) directory: Tenant,
    pub(super) grants: Vec<(String, Vec<String>)>,
    pub(super) secret: Option<SecretString>,
    pub(super) signing_key: PrivateKey,
    pub(super) signing_cert: Certificate,
    pub(super) kid: String,
    pub(super) log: bool,
    /// `scheme://127.0.0.1:PORT`, without trailing slash: where clients reach the emulator, and
    /// a name of Microsoft Graph (the Graph resource id of a cloud registered with the emulator).
    pub(super) base_url: String,
    /// `base_url` and its other loopback spelling (`localhost` for `127.0.0.1`): the only hosts
    /// a client assertion's `aud` may name.
    pub(super) base_urls: Vec<String>,
    pub(super) auto_consent: bool,
    pub(super) code_lifetime: i64,
    pub(super) user_token_lifetime: Option<i64>,
    pub(super) throttle: Option<throttle::Throttle>,
    /// Drawn at start: the key of the tokens binding consent forms to their pages.
    pub(super) form_key: [u8; 32],
    /// The tenant's default app management policy, when one is given.
    pub(super) app_policy: Option<(serde_json::Value, crate::policy::Policy)>,
    /// Per-app policies created through Graph (`POST /policies/appManagementPolicies`); those
    /// assigned live beside the manifests (`NAME.policy.json`).
    pub(super) app_policies: std::sync::Mutex<Vec<serde_json::Value>>,
    /// Each credential's latest sign-in, for Graph's credential activity report.
    pub(super) sign_ins: signins::SignIns,
    /// The external OIDC issuers it plays (`--issuer`), and other issuers' cached keys.
    pub(super) issuers: issuers::Issuers,
    /// The emulated Key Vaults (`--vault`), none by default.
    pub(super) vaults: super::vault::Vaults,
}

impl AppState {
    /// Whether `resource` is the emulator's own base URL (with or without trailing slash; by
    /// `localhost` too, which its TLS certificate names).
    pub(super) fn is_own_url(&self, resource: &str) -> bool {
        let r = resource.trim_end_matches('/');
        self.base_urls.iter().any(|b| r.eq_ignore_ascii_case(b))
    }

    /// Whether `resource` names Microsoft Graph: its URI or app id, or the emulator's base URL.
    pub(super) fn is_graph(&self, resource: &str) -> bool {
        self.is_own_url(resource) || token::resource_app_id(resource) == token::GRAPH_APP_ID
    }

    /// The emulated tenant id.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }
    /// The manifest files backing the applications.
    pub fn manifest_paths(&self) -> Vec<PathBuf> {
        self.registry.paths()
    }

    /// The application with this client id, re-read from its manifest if the file changed.
    pub fn app(&self, client_id: &str) -> Option<Arc<App>> {
        self.registry.find(client_id)
    }

    /// The tenant's applications and resources.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The emulator's own base URL (`http://127.0.0.1:PORT`), never the request's `Host`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub(super) fn is_own_tenant(&self, t: &str) -> bool {
        self.directory.is_named(t)
    }

    /// Accepts the emulator's tenant (its id or domains), `common` and `organizations`; refuses
    /// other GUIDs and DNS names with 90002 and anything else with 900023.
    pub(super) fn check_tenant(&self, t: &str) -> std::result::Result<(), Refusal> {
        if self.is_own_tenant(t) || is_multi_tenant(t) {
            return Ok(());
        }
        let dns = t.contains('.')
            && t.len() <= 253
            && t.split('.')
                .all(|l| !l.is_empty() && l.len() <= 63 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        if uuid::Uuid::parse_str(t).is_ok() || dns || t.eq_ignore_ascii_case("consumers") {
            Err(Refusal::tenant_not_found(t))
        } else {
            Err(Refusal::tenant_malformed(t))
        }
    }

    /// The resource `identifier` names: an app of the tenant, a built-in one (the emulator's own
    /// base URL names Microsoft Graph), or one known only from `--grant` (a v1 resource with a
    /// derived app id).
    pub fn resource(&self, identifier: &str) -> Option<Arc<Api>> {
        // Resource names are kept with codes and refresh tokens: none is longer than this (a
        // trailing run of `/` would otherwise still name a `--grant` resource).
        if identifier.len() > MAX_RESOURCE {
            return None;
        }
        if let Some(api) = self.vaults.resource_api(identifier) {
            return Some(api);
        }
        let named = if self.is_own_url(identifier) { token::GRAPH_APP_ID } else { identifier };
        if let Some(api) = self.registry.resource(named) {
            return Some(api);
        }
        self.grants.iter().any(|(r, _)| token::same_resource(r, identifier)).then(|| {
            Arc::new(Api {
                app_id: token::resource_app_id(identifier),
                display_name: identifier.trim_end_matches('/').to_string(),
                identifier_uris: vec![identifier.trim_end_matches('/').to_string()],
                token_version: TokenVersion::V1,
                scopes: Vec::new(),
                app_roles: Vec::new(),
                builtin: true,
                idtyp: apps::IdTyp::Never,
            })
        })
    }

    /// Roles `client` holds on `api`: the app role assignments consent made, then the `--grant`
    /// shortcut's roles for that resource (a grant for the emulator's own URL is one for Graph).
    pub(super) fn roles_for(&self, api: &Api, client_id: &str) -> Vec<String> {
        let mut roles = self.directory.roles(client_id, api);
        for (r, rs) in &self.grants {
            let r = if self.is_own_url(r) { token::GRAPH_APP_ID } else { r.as_str() };
            if api.is_named(r) || token::same_resource(r, &api.app_id) {
                for role in rs {
                    if !roles.contains(role) {
                        roles.push(role.clone());
                    }
                }
            }
        }
        roles
    }

    /// The base URL for discovery documents and its host: one of the emulator's own configured
    /// names, the one the client addressed (a client that called `localhost` is sent there),
    /// else the configured base URL. The `Host` header only picks among those names: a forged
    /// one never reaches a document, whose `token_endpoint` and `jwks_uri` clients trust.
    pub(super) fn request_base(&self, headers: &HeaderMap, uri: &Uri) -> (String, String) {
        let asked = uri
            .authority()
            .map(|a| a.as_str().to_string())
            .or_else(|| headers.get(axum::http::header::HOST).and_then(|h| h.to_str().ok()).map(str::to_string));
        let host_of = |b: &str| b.split_once("://").map_or(String::new(), |(_, h)| h.to_string());
        let base = asked
            .and_then(|a| self.base_urls.iter().find(|b| host_of(b).eq_ignore_ascii_case(&a)))
            .unwrap_or(&self.base_url)
            .clone();
        let host = host_of(&base);
        (base, host)
    }
}

/// `common` and `organizations`: authorities that name no tenant.
pub(super) fn is_multi_tenant(t: &str) -> bool {
    t.eq_ignore_ascii_case("common") || t.eq_ignore_ascii_case("organizations")
}

/// Validates a client assertion exactly as the token endpoint does, for an application whose
/// `keyCredentials` are `creds`, posted to `endpoint` (the only accepted `aud`). Public so that
/// fuzzing and embedders can drive the validation without HTTP.
pub fn verify_client_assertion(
    creds: &[crate::manifest::KeyCredential],
    assertion: &str,
    client_id: &str,
    endpoint: &str,
    now: time::OffsetDateTime,
) -> std::result::Result<(), Refusal> {
    token::verify_assertion(creds, assertion, client_id, endpoint, now)
}

/// What every handler extracts: the emulator's shared state.
pub(crate) type SharedState = State<Arc<AppState>>;
