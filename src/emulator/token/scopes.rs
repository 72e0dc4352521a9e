//! Reading what a request asks for: the resource and scopes of `scope` (or `resource`), the
//! OpenID scopes, and the app id a resource name stands for.

use super::{GRAPH, GRAPH_APP_ID, OIDC_SCOPES};
use crate::emulator::apps::{Api, App};
use crate::emulator::errors::Refusal;
use crate::emulator::tenant::User;
use crate::emulator::AppState;

/// What a user-flow request asks for: one resource (as named), its delegated scope values (or
/// `.default`), and the OpenID scopes.
#[derive(Debug, PartialEq, Eq)]
pub(in crate::emulator) struct Asked {
    /// The resource as named: a URI or GUID, or Graph's GUID for bare scope names.
    pub resource: String,
    /// Scope values asked on it; empty with `.default`.
    pub scopes: Vec<String>,
    /// `.default` was asked: every permission consented.
    pub default: bool,
    /// `openid`, `profile`, `email`, `offline_access` as asked.
    pub oidc: Vec<String>,
}

impl Asked {
    /// Whether the `scope` parameter of a v2 answer shows the scopes with a resource prefix.
    pub(super) fn prefix(&self) -> Option<&str> {
        (!self.resource.eq_ignore_ascii_case(GRAPH_APP_ID)).then_some(self.resource.as_str())
    }
}

/// The OpenID scopes of a `scope` parameter, once each (they are kept with the refresh token).
pub(super) fn oidc_scopes(scope: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for o in scope.split_whitespace().filter_map(|s| OIDC_SCOPES.iter().find(|o| o.eq_ignore_ascii_case(s))) {
        if !out.iter().any(|x| x == o) {
            out.push(o.to_string());
        }
    }
    out
}

/// Splits a v2 `scope` parameter into what it asks of each resource, in the order they are
/// first named (PROTOCOL.md section 5b): `{resource}/{value}`, `{resource}/.default`, bare values
/// (Microsoft Graph's), and OpenID scopes (kept with every resource). `.default` beside any
/// named scope is 70011, as Entra answers (".default scope can't be combined with
/// resource-specific scopes": oauth2-proxy issue 2158, MSAL.js issues 1063 and 4071). With only
/// OpenID scopes, the resource is Microsoft Graph, as Entra does. The authorize leg may name
/// several resources (Microsoft's authorization code documentation: "For the /authorize leg of
/// the request, this parameter can cover multiple resources"); the token leg takes one
/// ([`parse_user_scope`]).
pub(in crate::emulator) fn parse_scope_resources(scope: &str) -> Result<Vec<Asked>, Refusal> {
    let mut groups: Vec<Asked> = Vec::new();
    let mut oidc = Vec::new();
    for s in scope.split_whitespace() {
        if let Some(o) = OIDC_SCOPES.iter().find(|o| o.eq_ignore_ascii_case(s)) {
            // Once each: what is asked is kept with the code and the refresh token.
            if !oidc.iter().any(|x| x == o) {
                oidc.push(o.to_string());
            }
            continue;
        }
        let (r, value) = match s.rfind('/') {
            // `https://x//.default` names `https://x/`.
            Some(i) => (&s[..i], &s[i + 1..]),
            None => (GRAPH_APP_ID, s),
        };
        if r.is_empty() || value.is_empty() {
            return Err(Refusal::invalid_scope(scope));
        }
        let same = |g: &Asked| {
            same_resource(&g.resource, r)
                || g.resource.trim_end_matches('/').eq_ignore_ascii_case(r.trim_end_matches('/'))
        };
        let group = match groups.iter().position(same) {
            Some(i) => &mut groups[i],
            None => {
                groups.push(Asked { resource: r.to_string(), scopes: Vec::new(), default: false, oidc: Vec::new() });
                groups.last_mut().expect("just pushed")
            }
        };
        if value == ".default" {
            group.default = true;
        } else {
            group.scopes.push(value.to_string());
        }
    }
    if groups.iter().any(|g| g.default) && groups.iter().any(|g| !g.scopes.is_empty()) {
        return Err(Refusal::default_combined(scope));
    }
    if groups.is_empty() {
        // Only OpenID scopes: a Microsoft Graph token carrying them.
        let scopes = oidc.iter().filter(|o| *o != "offline_access").cloned().collect();
        groups.push(Asked { resource: GRAPH_APP_ID.to_string(), scopes, default: false, oidc: Vec::new() });
    }
    for g in &mut groups {
        g.oidc = oidc.clone();
    }
    Ok(groups)
}

/// The `scope` of a token request (code, refresh, on-behalf-of): one resource (70011 when it
/// names several, the token leg being single-resource), as [`parse_scope_resources`] reads it.
pub(in crate::emulator) fn parse_user_scope(scope: &str) -> Result<Asked, Refusal> {
    let mut groups = parse_scope_resources(scope)?;
    if groups.len() > 1 {
        return Err(Refusal::several_resources(scope));
    }
    Ok(groups.remove(0))
}

/// The scopes a user token carries: with `.default` every scope consented; otherwise the
/// asked ones, each of which must be consented (65001 otherwise). Unknown scope values: 650053.
pub(super) fn consented_scopes(
    st: &AppState,
    client: &App,
    api: &Api,
    user: &User,
    asked: &Asked,
) -> Result<Vec<String>, Refusal> {
    let granted = st.directory.scopes(&client.app_id, api, &user.oid);
    if asked.default {
        if granted.is_empty() {
            return Err(Refusal::consent_required(&client.app_id, client.name()));
        }
        return Ok(granted);
    }
    let mut out = Vec::new();
    for s in &asked.scopes {
        let known = api.scope_by_value(s).ok_or_else(|| Refusal::unknown_scope(client.name(), s, &api.app_id))?;
        if !granted.iter().any(|g| g.eq_ignore_ascii_case(&known.value)) {
            return Err(Refusal::consent_required(&client.app_id, client.name()));
        }
        if !out.contains(&known.value) {
            out.push(known.value.clone());
        }
    }
    Ok(out)
}

/// The resource of a client-credentials `scope`: exactly one `<resource>/.default` (OIDC scopes
/// such as `openid` are ignored, as Entra does). `https://x//.default` names `https://x/`.
pub(super) fn resource_from_scope(scope: &str) -> Result<String, Refusal> {
    let scopes: Vec<&str> = scope.split_whitespace().filter(|s| !OIDC_SCOPES.contains(s)).collect();
    if let Some(bad) = scopes.iter().find(|s| !s.ends_with("/.default")) {
        return Err(Refusal::scope_not_default(bad));
    }
    match scopes.as_slice() {
        [one] => {
            let r = &one[..one.len() - "/.default".len()];
            if r.is_empty() {
                Err(Refusal::invalid_scope(scope))
            } else {
                Ok(r.to_string())
            }
        }
        _ => Err(Refusal::invalid_scope(scope)),
    }
}

/// The app id of a resource known only by name (from `--grant`): the GUID itself, the GUID of
/// `api://{guid}`, and for any other URI an id derived from it ([`crate::emulator::apps::derived_id`]
/// with kind "resource" and the URI without trailing `/`), the same in every run. Case and a
/// trailing `/` do not matter, as for Entra's resource URIs.
pub(in crate::emulator) fn resource_app_id(resource: &str) -> String {
    let r = resource.trim().trim_end_matches('/');
    let guid = |s: &str| (s.len() == 36).then(|| uuid::Uuid::try_parse(s).ok()).flatten().map(|g| g.to_string());
    if let Some(g) = guid(r) {
        return g;
    }
    if let Some(g) = r.get(..6).filter(|p| p.eq_ignore_ascii_case("api://")).and_then(|_| guid(&r[6..])) {
        return g;
    }
    if r.eq_ignore_ascii_case(GRAPH) {
        return GRAPH_APP_ID.to_string();
    }
    crate::emulator::apps::derived_id("resource", r)
}

/// Whether two resource names given on the command line or in a request name the same
/// resource: the same app id, so `api://{guid}` and the GUID match.
pub(in crate::emulator) fn same_resource(a: &str, b: &str) -> bool {
    resource_app_id(a) == resource_app_id(b)
}

#[cfg(test)]
mod tests {
    use super::super::client_auth::constant_time_eq;
    use super::super::{GRAPH, GRAPH_APP_ID};
    use super::*;

    #[test]
    fn scopes_name_exactly_one_default_resource() {
        assert_eq!(resource_from_scope("https://graph.microsoft.com/.default").unwrap(), GRAPH);
        assert_eq!(resource_from_scope("https://x.example/api//.default").unwrap(), "https://x.example/api/");
        assert_eq!(resource_from_scope("openid api://a/.default").unwrap(), "api://a");
        assert_eq!(resource_from_scope("https://graph.microsoft.com/User.Read").unwrap_err().code, 1002012);
        assert_eq!(resource_from_scope("api://a/.default api://b/.default").unwrap_err().code, 70011);
        assert_eq!(resource_from_scope("openid").unwrap_err().code, 70011);
    }

    #[test]
    fn resources_compare_loosely() {
        assert!(same_resource("https://graph.microsoft.com/", "https://Graph.microsoft.com"));
        assert!(same_resource(GRAPH_APP_ID, GRAPH));
        assert!(!same_resource("api://a", "api://b"));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
    }

    #[test]
    fn user_scopes_name_one_resource() {
        let a = parse_user_scope("openid offline_access User.Read").unwrap();
        assert_eq!(
            (a.resource.as_str(), a.scopes.clone(), a.default),
            (GRAPH_APP_ID, vec!["User.Read".to_string()], false)
        );
        assert_eq!(a.oidc, ["openid", "offline_access"]);
        let a = parse_user_scope("api://mid/access_as_user").unwrap();
        assert_eq!((a.resource.as_str(), a.scopes.clone()), ("api://mid", vec!["access_as_user".to_string()]));
        let a = parse_user_scope("https://manage.office.com/.default openid").unwrap();
        assert!(a.default && a.scopes.is_empty() && a.resource == "https://manage.office.com");
        assert_eq!(parse_user_scope("User.Read api://mid/x").unwrap_err().code, 70011);
        assert_eq!(parse_user_scope("openid profile").unwrap().scopes, ["openid", "profile"]);
        // `.default` beside a named scope, of the same resource or another: 70011.
        for s in ["https://graph.microsoft.com/.default User.Read", "api://mid/x https://graph.microsoft.com/.default"]
        {
            let e = parse_scope_resources(s).unwrap_err();
            assert!(e.code == 70011 && e.text.ends_with("can't be combined with resource-specific scopes."), "{e:?}");
        }
        // The authorize leg's several resources, in the order named, each with the OpenID scopes.
        let groups = parse_scope_resources("User.Read openid api://mid/x api://mid/y").unwrap();
        let got: Vec<(&str, Vec<String>)> = groups.iter().map(|g| (g.resource.as_str(), g.scopes.clone())).collect();
        assert_eq!(got, [(GRAPH_APP_ID, vec!["User.Read".into()]), ("api://mid", vec!["x".into(), "y".into()])]);
        assert!(groups.iter().all(|g| g.oidc == ["openid"]));
    }
}
