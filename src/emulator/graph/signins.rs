//! `GET /beta/reports/appCredentialSignInActivities` (and `/{id}`): Graph's report of when each
//! application credential last signed in, from the sign-ins the token endpoint recorded
//! ([`crate::emulator::signins`]).
//!
//! The shape is the `appCredentialSignInActivity` resource of Graph's beta reference: `id`,
//! `appId`, `appObjectId`, `createdDateTime`, `credentialOrigin` (`application`),
//! `expirationDateTime`, `keyId`, `keyType` (`certificate`, `clientSecret`), `keyUsage`
//! (`verify`, `sign`), `resourceId`, `servicePrincipalObjectId` and `signInActivity`
//! (`lastSignInDateTime`, `lastSignInRequestId`); an `id` is the base64 of `{keyId}|{origin}`,
//! as in the reference's examples. Reading it needs the application permission
//! `AuditLog.Read.All` (least privileged) or `Directory.Read.All`, the two the reference lists.
//! `$filter` takes `appId eq '...'` and `keyId eq '...'` (the reference's examples), `$top` and
//! `@odata.nextLink` page as directory collections do; `$orderby`, which Graph documents for
//! this report, is answered 501 by the emulator rather than refused as Graph would not.

use super::odata::{self, EntityType, Query};
use super::{authenticate, graph_json, Answer, Caller, GraphError};
use crate::emulator::signins::Activity;
use crate::emulator::{AppState, SharedState};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use serde_json::{json, Map, Value};

/// The permissions Graph's reference lists for this report (application and delegated).
const REPORT_ROLES: [&str; 2] = ["AuditLog.Read.All", "Directory.Read.All"];
/// Where the report lives, under the Graph base URL.
pub(super) const PATH: &str = "/beta/reports/appCredentialSignInActivities";

/// What the report's queries may name.
pub(super) const APP_CREDENTIAL_SIGN_IN_ACTIVITY: EntityType = EntityType {
    odata_name: "microsoft.graph.appCredentialSignInActivity",
    resource: "AppCredentialSignInActivity",
    properties: &[
        "id",
        "appId",
        "appObjectId",
        "createdDateTime",
        "credentialOrigin",
        "expirationDateTime",
        "keyId",
        "keyType",
        "keyUsage",
        "resourceId",
        "servicePrincipalObjectId",
        "signInActivity",
    ],
    eq: &["appId", "keyId"],
    prefix: &[],
    any: &[],
    dates: &[],
};

/// `2026-01-31T12:00:00.1234567Z`: Graph's timestamps in reports carry seven decimals.
fn report_time(t: time::OffsetDateTime) -> String {
    let base = crate::dates::format(t);
    format!("{}.{:07}Z", base.trim_end_matches('Z'), t.nanosecond() / 100)
}

/// One report entity, rendered whole.
fn render(st: &AppState, a: &Activity) -> Map<String, Value> {
    let origin = "application";
    let app = st.app(&a.app_id);
    let c = &a.credential;
    let id = base64::engine::general_purpose::STANDARD.encode(format!("{}|{origin}", c.key_id));
    let date = |t: Option<time::OffsetDateTime>| t.map(crate::dates::format);
    let mut e = Map::new();
    e.insert("id".into(), json!(id));
    e.insert("appId".into(), json!(a.app_id));
    e.insert("appObjectId".into(), json!(app.as_ref().map(|x| x.graph_id().to_string())));
    e.insert("createdDateTime".into(), json!(date(c.start)));
    e.insert("credentialOrigin".into(), json!(origin));
    e.insert("expirationDateTime".into(), json!(date(c.end)));
    e.insert("keyId".into(), json!(c.key_id));
    e.insert("keyType".into(), json!(c.kind.key_type()));
    e.insert("keyUsage".into(), json!(c.kind.key_usage()));
    e.insert("resourceId".into(), if a.resource_id.is_empty() { Value::Null } else { json!(a.resource_id) });
    e.insert("servicePrincipalObjectId".into(), json!(app.as_ref().map(|x| x.sp_object_id.clone())));
    e.insert(
        "signInActivity".into(),
        json!({ "lastSignInDateTime": report_time(a.last), "lastSignInRequestId": a.request_id }),
    );
    e
}

/// The caller, when it may read the report: authenticated (401), within its throttle (429),
/// holding one of [`REPORT_ROLES`] (403).
fn reader(st: &AppState, headers: &HeaderMap) -> Result<Caller, GraphError> {
    let who = authenticate(st, headers)?;
    if !REPORT_ROLES.iter().any(|r| who.roles.iter().any(|have| have == r)) {
        return Err(super::forbidden());
    }
    Ok(who)
}

/// The query, refusing `$orderby` with a 501: Graph serves it on this report, the emulator does not.
fn report_query(raw: Option<&str>) -> Result<Query, GraphError> {
    let asks_orderby = url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .any(|(k, _)| k.trim_start_matches('$').eq_ignore_ascii_case("orderby"));
    if asks_orderby {
        return Err(GraphError::new(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            "keycred's emulator does not serve $orderby on this report; Microsoft Graph does.",
        ));
    }
    Ok(Query::parse(raw, &APP_CREDENTIAL_SIGN_IN_ACTIVITY)?)
}

fn context(st: &AppState) -> String {
    format!("{}/beta/$metadata#reports/appCredentialSignInActivities", st.base_url())
}

/// `GET /beta/reports/appCredentialSignInActivities`: a page of the report.
pub(super) fn list(State(st): SharedState, RawQuery(raw): RawQuery, headers: HeaderMap) -> Answer {
    let query = reader(&st, &headers).and_then(|_| report_query(raw.as_deref()))?;
    // `appId eq` (how the report is read app by app) picks the records before any is rendered.
    let only_app = match &query.filter {
        Some(odata::Filter::Eq("appId", id)) => Some(id.to_ascii_lowercase()),
        _ => None,
    };
    let matching: Vec<Map<String, Value>> = st
        .sign_ins
        .all()
        .iter()
        .filter(|a| only_app.as_ref().is_none_or(|id| *id == a.app_id))
        .map(|a| render(&st, a))
        .filter(|e| query.matches(e))
        .collect();
    let more = matching.len() > query.skip + query.top;
    let value: Vec<Value> =
        matching.into_iter().skip(query.skip).take(query.top).map(|e| Value::Object(query.project(e))).collect();
    let mut out = Map::new();
    out.insert("@odata.context".into(), json!(context(&st)));
    if more {
        // The same query from the next position: clients follow it as given.
        let mut next = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in url::form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes()) {
            if !k.trim_start_matches('$').eq_ignore_ascii_case("skiptoken") {
                next.append_pair(&k, &v);
            }
        }
        next.append_pair("$skiptoken", &odata::encode_skiptoken(query.skip + query.top));
        out.insert("@odata.nextLink".into(), json!(format!("{}{PATH}?{}", st.base_url(), next.finish())));
    }
    out.insert("value".into(), Value::Array(value));
    Ok(graph_json(Value::Object(out)))
}

/// `GET /beta/reports/appCredentialSignInActivities/{id}`: one entity, or Graph's 404.
pub(super) fn get(State(st): SharedState, Path(id): Path<String>, headers: HeaderMap) -> Answer {
    reader(&st, &headers)?;
    let found = st.sign_ins.all().iter().map(|a| render(&st, a)).find(|e| e.get("id") == Some(&json!(id)));
    // Report ids are no directory object ids (base64, not GUIDs): what Graph answers for one it
    // does not know is undocumented; the emulator says 404, the resource not found.
    let e = found.ok_or_else(|| {
        GraphError::new(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            format!("Resource '{id}' does not exist or one of its queried reference-property objects are not present."),
        )
    })?;
    let mut out = Map::new();
    out.insert("@odata.context".into(), json!(format!("{}/$entity", context(&st))));
    out.extend(e);
    Ok(graph_json(Value::Object(out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_times_carry_seven_decimals() {
        let t = crate::dates::parse("2026-01-31T12:00:00.123456789Z", "t").unwrap();
        assert_eq!(report_time(t), "2026-01-31T12:00:00.1234567Z");
        let t = crate::dates::parse("2026-01-31T12:00:00Z", "t").unwrap();
        assert_eq!(report_time(t), "2026-01-31T12:00:00.0000000Z");
    }
}
