//! The reads of applications and service principals: collections with `$filter`, `$select`,
//! `$top` and paging, and single entities by id or by `appId`, with `$select`.

use super::caller::{authenticate, Caller};
use super::{find_app, forbidden, graph_json, not_found};
use super::{objects, odata};
use super::{Answer, GraphError};
use crate::emulator::{App, AppState, SharedState};
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use odata::{EntityType, Query};
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// `{base}/v1.0/$metadata#{what}`.
pub(super) fn context(st: &AppState, what: &str) -> String {
    format!("{}/v1.0/$metadata#{what}", st.base_url)
}

/// One page of a collection: the entities that pass `$filter`, from `$skiptoken`'s position, at
/// most `$top`, and the link to the next page when there are more. `render` gives the whole
/// entity (before `$select`).
pub(super) fn page(
    st: &AppState,
    collection: &str,
    raw_query: Option<&str>,
    query: &Query,
    apps: Vec<Arc<App>>,
    render: impl Fn(&App) -> Map<String, Value>,
) -> Response {
    let mut value = Vec::new();
    let mut more = false;
    let mut index = 0;
    for app in apps {
        // Without a filter every application counts, so earlier pages need no rendering.
        if query.filter.is_none() && index < query.skip {
            index += 1;
            continue;
        }
        // Each application shown is re-checked, as a lookup does, so a listing shows the latest
        // change to its file; the ones skipped or filtered out cost no file access.
        let app = st.registry.find(&app.app_id).unwrap_or(app);
        let entity = render(&app);
        if !query.matches(&entity) {
            continue;
        }
        if index < query.skip {
            index += 1;
            continue;
        }
        if value.len() == query.top {
            more = true;
            break;
        }
        value.push(Value::Object(query.project(entity)));
        index += 1;
    }
    let mut out = Map::new();
    out.insert("@odata.context".into(), json!(context(st, &format!("{collection}{}", query.context_suffix()))));
    if more {
        // The same query, from the next position: clients follow it as given.
        let mut next = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in url::form_urlencoded::parse(raw_query.unwrap_or("").as_bytes()) {
            if !k.trim_start_matches('$').eq_ignore_ascii_case("skiptoken") {
                next.append_pair(&k, &v);
            }
        }
        next.append_pair("$skiptoken", &odata::encode_skiptoken(index));
        out.insert("@odata.nextLink".into(), json!(format!("{}/v1.0/{collection}?{}", st.base_url, next.finish())));
    }
    out.insert("value".into(), Value::Array(value));
    graph_json(Value::Object(out))
}

/// The applications a query can match: one index lookup for `appId eq '...'` and
/// `identifierUris/any(...)` (what scripts and the Azure CLI send to resolve an app), else all
/// of them. The filter is still applied to what the lookup returns.
pub(super) fn candidates(st: &AppState, query: &Query) -> Vec<Arc<App>> {
    match &query.filter {
        Some(odata::Filter::Eq("appId", id)) => st.app(id).into_iter().collect(),
        Some(odata::Filter::Any("identifierUris", uri)) => {
            st.registry.find_by_identifier_uri(uri).into_iter().collect()
        }
        _ => st.registry.list(),
    }
}

/// The prologue of every GET, in Graph's order: the caller is authenticated before the query
/// is looked at (a bad token is 401 even when the query is also bad).
pub(super) fn caller_and_query(
    st: &AppState,
    headers: &HeaderMap,
    raw: Option<&str>,
    entity: &EntityType,
) -> Result<(Caller, Query), GraphError> {
    let who = authenticate(st, headers)?;
    let query = Query::parse(raw, entity)?;
    Ok((who, query))
}

/// A single-entity GET: prologue, then the application `found` (404 when none), then 403
/// unless the caller may read it, then the entity rendered by `render`.
pub(super) fn get_one(
    st: &AppState,
    (raw, q, headers): (&str, Option<&str>, &HeaderMap),
    entity_type: &EntityType,
    found: impl FnOnce() -> Option<Arc<App>>,
    render: impl FnOnce(&App, &Query) -> (&'static str, Map<String, Value>),
) -> Answer {
    let (who, query) = caller_and_query(st, headers, q, entity_type)?;
    let app = found().ok_or_else(|| not_found(raw))?;
    if !who.can_read(&app) {
        return Err(forbidden());
    }
    let (collection, e) = render(&app, &query);
    Ok(entity(st, collection, &query, e))
}

pub(super) fn list_applications(State(st): SharedState, RawQuery(raw): RawQuery, headers: HeaderMap) -> Answer {
    list(&st, raw.as_deref(), &headers, &objects::APPLICATION, "applications", objects::application)
}

pub(super) fn list_service_principals(State(st): SharedState, RawQuery(raw): RawQuery, headers: HeaderMap) -> Answer {
    let tenant = st.tenant().to_string();
    list(&st, raw.as_deref(), &headers, &objects::SERVICE_PRINCIPAL, "servicePrincipals", |a, bodies, only| {
        objects::service_principal(a, &tenant, bodies, only)
    })
}

/// A collection GET: the caller authenticated first, then the query parsed, then the page of
/// the applications the caller may read, each rendered by `render(app, with_bodies, only)`.
pub(super) fn list(
    st: &AppState,
    raw: Option<&str>,
    headers: &HeaderMap,
    entity: &EntityType,
    collection: &str,
    render: impl Fn(&App, bool, Option<&[&str]>) -> Map<String, Value>,
) -> Answer {
    let (who, query) = caller_and_query(st, headers, raw, entity)?;
    let mut apps = candidates(st, &query);
    if !who.can_read_all() {
        // An application without a directory role sees itself only.
        apps.retain(|a| who.can_read(a));
    }
    let bodies = query.selects("keyCredentials");
    let only = query.needed();
    Ok(page(st, collection, raw, &query, apps, |a| render(a, bodies, only.as_deref())))
}

/// One entity with `$select` applied and its `@odata.context`.
pub(super) fn entity(st: &AppState, collection: &str, query: &Query, e: Map<String, Value>) -> Response {
    let mut out = Map::new();
    out.insert("@odata.context".into(), json!(context(st, &format!("{collection}{}/$entity", query.context_suffix()))));
    out.extend(query.project(e));
    graph_json(Value::Object(out))
}

pub(super) fn get_application(
    State(st): SharedState,
    Path(raw): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Answer {
    get_one(
        &st,
        (&raw, q.as_deref(), &headers),
        &objects::APPLICATION,
        || find_app(&st, &raw),
        |app, query| ("applications", objects::application(app, query.selects("keyCredentials"), None)),
    )
}

pub(super) fn get_service_principal(
    State(st): SharedState,
    Path(raw): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Answer {
    let found = || match raw.strip_prefix("servicePrincipals(appId='").and_then(|r| r.strip_suffix("')")) {
        Some(id) => st.app(id),
        None => st
            .registry
            .list()
            .into_iter()
            .find(|a| a.sp_object_id.eq_ignore_ascii_case(raw.trim()))
            .and_then(|a| st.registry.find(&a.app_id)),
    };
    get_one(&st, (&raw, q.as_deref(), &headers), &objects::SERVICE_PRINCIPAL, found, |app, query| {
        ("servicePrincipals", objects::service_principal(app, st.tenant(), query.selects("keyCredentials"), None))
    })
}
