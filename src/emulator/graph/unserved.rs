//! Requests Microsoft Graph serves and the emulator does not (creating or deleting applications,
//! `owners`, `/users`, `/organization`, ...). Answering them with "Resource not found for the
//! segment" or 405 would teach that Graph lacks them, so they get their own honest answer, in
//! Graph's error shape: 501 `NotImplemented`, saying that keycred's emulator does not serve the
//! request and Microsoft Graph does. The token is checked first, as for every Graph call. `/me`
//! with an app-only token gets Graph's own answer (400, only valid with delegated
//! authentication). Paths Graph does not have keep Graph's answers (the router's).
//!
//! The lists below hold only requests Graph's v1.0 reference documents; anything else falls
//! through to the router.

use super::{authenticate, blocking, with_graph_headers, Answer, GraphError};
use crate::emulator::AppState;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;

/// Entity sets Graph serves at the top level: `GET` of the collection and of one entity.
const ENTITY_SETS: [&str; 14] = [
    "users",
    "groups",
    "organization",
    "devices",
    "domains",
    "directoryroles",
    "directoryroletemplates",
    "oauth2permissiongrants",
    "subscribedskus",
    "contacts",
    "applicationtemplates",
    "subscriptions",
    "schemaextensions",
    "invitations",
];
/// Of those, the ones Graph creates with `POST` on the collection.
const CREATED_BY_POST: [&str; 6] =
    ["users", "groups", "devices", "oauth2permissiongrants", "subscriptions", "invitations"];
/// Of those, the ones Graph updates and deletes with `PATCH` and `DELETE` on an entity.
const UPDATED_AND_DELETED: [&str; 6] =
    ["users", "groups", "devices", "oauth2permissiongrants", "subscriptions", "domains"];
/// Navigation properties of an application Graph reads with `GET`.
const APP_NAVIGATION: [&str; 5] =
    ["owners", "extensionproperties", "tokenissuancepolicies", "tokenlifetimepolicies", "createdonbehalfof"];
/// ... and those it adds to with `POST`.
const APP_NAVIGATION_POST: [&str; 1] = ["extensionproperties"];
/// Actions of an application the emulator does not serve (it serves addKey, removeKey,
/// addPassword and removePassword).
const APP_ACTIONS: [&str; 7] = [
    "setverifiedpublisher",
    "unsetverifiedpublisher",
    "checkmembergroups",
    "checkmemberobjects",
    "getmembergroups",
    "getmemberobjects",
    "restore",
];
/// Navigation properties of a service principal Graph reads with `GET`.
const SP_NAVIGATION: [&str; 13] = [
    "owners",
    "approleassignments",
    "approleassignedto",
    "oauth2permissiongrants",
    "memberof",
    "transitivememberof",
    "createdobjects",
    "ownedobjects",
    "claimsmappingpolicies",
    "homerealmdiscoverypolicies",
    "tokenissuancepolicies",
    "tokenlifetimepolicies",
    "delegatedpermissionclassifications",
];
/// ... and those it adds to with `POST`.
const SP_NAVIGATION_POST: [&str; 3] = ["approleassignments", "approleassignedto", "delegatedpermissionclassifications"];
/// Actions of a service principal Graph serves (the emulator serves none of them).
const SP_ACTIONS: [&str; 10] = [
    "addkey",
    "removekey",
    "addpassword",
    "removepassword",
    "addtokensigningcertificate",
    "checkmembergroups",
    "checkmemberobjects",
    "getmembergroups",
    "getmemberobjects",
    "restore",
];

/// What a request under `/v1.0/` is, for this layer.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    /// `/me` or below it.
    Me,
    /// A request Graph serves and the emulator does not.
    NotServed,
    /// Anything else: the router answers.
    Other,
}

/// `applications(appId='...')` names one application, like `applications/{id}`.
fn split_reference(first: &str) -> Option<(&'static str, &str)> {
    let lower = first.to_ascii_lowercase();
    for set in ["applications", "serviceprincipals"] {
        if lower.starts_with(&format!("{set}(")) {
            return Some((set, &first[set.len()..]));
        }
    }
    None
}

fn classify(method: &Method, path: &str) -> Target {
    let Some(rest) = path.strip_prefix("/v1.0/") else { return Target::Other };
    let raw: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let Some(first) = raw.first() else { return Target::Other };
    let mut segs: Vec<String> = Vec::with_capacity(raw.len() + 1);
    match split_reference(first) {
        Some((set, key)) => {
            segs.push(set.to_string());
            segs.push(key.to_string());
        }
        None => segs.push(first.to_ascii_lowercase()),
    }
    segs.extend(raw[1..].iter().map(|s| s.to_ascii_lowercase()));
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let m = |x: &Method| method == x;
    let served_elsewhere = match s.as_slice() {
        ["me", ..] => return Target::Me,
        ["applications"] => m(&Method::POST),
        ["applications", "delta" | "delta()"] => m(&Method::GET),
        ["applications", _] => m(&Method::DELETE),
        ["applications", _, nav] if APP_NAVIGATION.contains(nav) => {
            m(&Method::GET) || (m(&Method::POST) && APP_NAVIGATION_POST.contains(nav))
        }
        ["applications", _, action] => m(&Method::POST) && APP_ACTIONS.contains(action),
        ["applications", _, "owners", "$ref"] => m(&Method::POST),
        ["applications", _, "extensionproperties", _] => m(&Method::GET) || m(&Method::DELETE),
        ["serviceprincipals"] => m(&Method::POST),
        ["serviceprincipals", "delta" | "delta()"] => m(&Method::GET),
        ["serviceprincipals", _] => m(&Method::PATCH) || m(&Method::DELETE),
        ["serviceprincipals", _, nav] if SP_NAVIGATION.contains(nav) => {
            m(&Method::GET) || (m(&Method::POST) && SP_NAVIGATION_POST.contains(nav))
        }
        ["serviceprincipals", _, action] => m(&Method::POST) && SP_ACTIONS.contains(action),
        ["serviceprincipals", _, "approleassignments" | "approleassignedto", _] => m(&Method::DELETE),
        ["directoryobjects", "getbyids"] => m(&Method::POST),
        ["directoryobjects", _] => m(&Method::GET),
        [set] if ENTITY_SETS.contains(set) => m(&Method::GET) || (m(&Method::POST) && CREATED_BY_POST.contains(set)),
        [set, _] if ENTITY_SETS.contains(set) => {
            m(&Method::GET)
                || ((m(&Method::PATCH) || m(&Method::DELETE)) && UPDATED_AND_DELETED.contains(set))
                || (m(&Method::PATCH) && *set == "organization")
        }
        _ => false,
    };
    if served_elsewhere {
        Target::NotServed
    } else {
        Target::Other
    }
}

/// The layer: answers what [`classify`] picks out, passes everything else on.
pub(in crate::emulator) async fn layer(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let target = classify(req.method(), req.uri().path());
    if target == Target::Other {
        return next.run(req).await;
    }
    let (method, path, headers) = (req.method().clone(), req.uri().path().to_string(), req.headers().clone());
    let outer = headers.clone();
    with_graph_headers(&outer, blocking(move || answer(&st, target, &method, &path, &headers))).await
}

fn answer(st: &AppState, target: Target, method: &Method, path: &str, headers: &axum::http::HeaderMap) -> Answer {
    let who = authenticate(st, headers)?;
    if target == Target::Me && !who.delegated {
        return Err(GraphError::new(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "/me request is only valid with delegated authentication flow.",
        ));
    }
    Err(GraphError::new(
        StatusCode::NOT_IMPLEMENTED,
        "NotImplemented",
        format!(
            "keycred's emulator does not serve {method} {path}; Microsoft Graph does. The emulator serves the \
             application and service principal requests that credential rotation and audits use."
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_emulator_serves_is_never_picked_out() {
        for (m, p) in [
            (Method::GET, "/v1.0/applications"),
            (Method::GET, "/v1.0/applications/abc"),
            (Method::PATCH, "/v1.0/applications/abc"),
            (Method::POST, "/v1.0/applications/abc/addKey"),
            (Method::POST, "/v1.0/applications/abc/removePassword"),
            (Method::GET, "/v1.0/applications(appId='x')"),
            (Method::PATCH, "/v1.0/applications(appId='x')"),
            (Method::POST, "/v1.0/applications(appId='x')/addKey"),
            (Method::GET, "/v1.0/servicePrincipals"),
            (Method::GET, "/v1.0/servicePrincipals/abc"),
            (Method::POST, "/v1.0/$batch"),
            (Method::POST, "/v1.0/applications/abc/nosuchAction"),
            (Method::GET, "/v1.0/nosuchset"),
            (Method::PUT, "/v1.0/applications/abc"),
            (Method::POST, "/tenant/oauth2/v2.0/token"),
        ] {
            assert_eq!(classify(&m, p), Target::Other, "{m} {p}");
        }
        for (m, p) in [
            (Method::POST, "/v1.0/applications"),
            (Method::DELETE, "/v1.0/applications/abc"),
            (Method::DELETE, "/v1.0/applications(appId='x')"),
            (Method::GET, "/v1.0/applications/abc/owners"),
            (Method::GET, "/v1.0/users"),
            (Method::GET, "/v1.0/organization"),
            (Method::POST, "/v1.0/servicePrincipals/abc/addPassword"),
        ] {
            assert_eq!(classify(&m, p), Target::NotServed, "{m} {p}");
        }
        assert_eq!(classify(&Method::GET, "/v1.0/me"), Target::Me);
    }
}
