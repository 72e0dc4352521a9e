//! `fleet audit`: every credential of every application (and, when asked, service principal),
//! with its status, streamed page by page.
//!
//! Certificates are judged by the same rule as manifests ([`crate::manifest::read_entry`]): an
//! entry Entra cannot verify a signature with is `unusable`, with the reason, whatever its dates.
//! Secrets (`passwordCredentials`) are judged by their dates. On service principals a SAML
//! token-signing certificate is a triple (a `Sign` key, a `Verify` key and the password of the
//! PFX, sharing one `customKeyIdentifier`): it is reported once, as a certificate, and its
//! password is never reported as a client secret.
//!
//! An application's credentials are also judged against the tenant's default app management
//! policy, when it can be read (`Policy.Read.All`): `violates` when longer than the policy allows,
//! `grandfathered` when longer but the application was created before the restriction's
//! `restrictForAppsCreatedAfterDateTime` (Graph lets such applications keep and add them), `ok`
//! otherwise. Policies assigned to single applications are not read (one request per
//! application); the column is empty when no policy could be read, and for service principals.

use crate::fic::FederatedIdentityCredential;
use crate::graph::call::{Collection, GraphCall};
use crate::graph::federated;
use crate::graph::pager::Objects;
use crate::graph::{signins, GraphClient};
use crate::manifest::read_entry;
use crate::policy::Policy;
use crate::{dates, thumbprint, ClientId, Result};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use time::OffsetDateTime;

/// Where a credential stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CredStatus {
    /// Usable and not ending within the window.
    Valid,
    /// Usable and ending within the window.
    Expiring,
    /// Past its end.
    Expired,
    /// Before its start.
    NotYetValid,
    /// Entra cannot verify with it (see the reason).
    Unusable,
    /// It could not be read (see the reason): an application's federated identity credentials
    /// Graph refused to list.
    Unknown,
}

impl CredStatus {
    /// The name printed and serialised.
    pub fn name(self) -> &'static str {
        match self {
            CredStatus::Valid => "valid",
            CredStatus::Expiring => "expiring",
            CredStatus::Expired => "expired",
            CredStatus::NotYetValid => "not_yet_valid",
            CredStatus::Unusable => "unusable",
            CredStatus::Unknown => "unknown",
        }
    }
}

/// A credential against the app management policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyStanding {
    /// Longer than the policy allows for this application.
    Violates,
    /// Longer than the policy allows, on an application created before the restriction.
    Grandfathered,
    /// Within the policy.
    Ok,
}

impl PolicyStanding {
    /// The name printed and serialised.
    pub fn name(self) -> &'static str {
        match self {
            PolicyStanding::Violates => "violates",
            PolicyStanding::Grandfathered => "grandfathered",
            PolicyStanding::Ok => "ok",
        }
    }

    /// Where a credential of `kind` valid from `start` to `end` stands, on an application
    /// created at `created`.
    fn of(p: &Policy, kind: Kind, created: Option<OffsetDateTime>, start: OffsetDateTime, end: OffsetDateTime) -> Self {
        // An unknown creation date makes every restriction apply: what would be refused at all.
        let refused = |c| match kind {
            Kind::Certificate => p.check_key(c, start, end).is_some(),
            Kind::Secret => p.check_password(c, start, Some(end)).is_some(),
            Kind::Federated => false,
        };
        match (refused(created), refused(None)) {
            (true, _) => PolicyStanding::Violates,
            (false, true) => PolicyStanding::Grandfathered,
            (false, false) => PolicyStanding::Ok,
        }
    }
}

/// Certificate or client secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A `keyCredentials` entry (or a SAML signing triple).
    Certificate,
    /// A `passwordCredentials` entry.
    Secret,
    /// A federated identity credential: trust in another issuer's tokens (no dates, no key).
    Federated,
}

impl Kind {
    /// The name printed and serialised.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Certificate => "certificate",
            Kind::Secret => "secret",
            Kind::Federated => "federated",
        }
    }
}

/// One credential. JSON and CSV field names are a contract.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    /// `application` or `servicePrincipal`.
    pub object_type: &'static str,
    /// Application (client) id.
    pub app_id: String,
    /// The object's `displayName`.
    pub display_name: Option<String>,
    /// The credential's `keyId`.
    pub key_id: Option<String>,
    /// Certificate or secret.
    pub kind: Kind,
    /// SHA-1, upper-case hex (certificates).
    pub thumbprint: Option<String>,
    /// Start, RFC 3339 UTC.
    pub start: Option<String>,
    /// End, RFC 3339 UTC.
    pub end: Option<String>,
    /// Whole days from now to the end (negative once expired).
    pub days_left: Option<i64>,
    /// Status.
    pub status: CredStatus,
    /// Why it is unusable (empty otherwise).
    pub reason: Option<String>,
    /// Against the tenant's app management policy (empty when it could not be read).
    pub policy: Option<PolicyStanding>,
    /// When it last signed in, from Graph's sign-in report (empty when the report has no
    /// sign-in of it, or could not be read).
    pub last_sign_in: Option<String>,
    /// A federated identity credential's `name` (empty for the other kinds).
    pub name: Option<String>,
    /// A federated identity credential's `issuer`.
    pub issuer: Option<String>,
    /// A federated identity credential's `subject`, or its `claimsMatchingExpression` value.
    pub subject: Option<String>,
    /// A federated identity credential's audience (Graph allows exactly one).
    pub audience: Option<String>,
}

/// The CSV columns, in order: [`Row`]'s fields.
pub const CSV_HEADER: [&str; 17] = [
    "objectType",
    "appId",
    "displayName",
    "keyId",
    "kind",
    "thumbprint",
    "start",
    "end",
    "daysLeft",
    "status",
    "reason",
    "policy",
    "lastSignIn",
    "name",
    "issuer",
    "subject",
    "audience",
];

/// Status by dates, `window` deciding what counts as expiring.
fn by_dates(
    start: Option<OffsetDateTime>,
    end: Option<OffsetDateTime>,
    now: OffsetDateTime,
    window: Duration,
) -> CredStatus {
    match (start, end) {
        (Some(s), _) if now < s => CredStatus::NotYetValid,
        (_, Some(e)) if now > e => CredStatus::Expired,
        (_, Some(e)) if (e - now) <= window => CredStatus::Expiring,
        _ => CredStatus::Valid,
    }
}

/// What every row of one object shares, and how a row is made from a credential's facts.
struct RowMaker<'a> {
    object_type: &'static str,
    app_id: String,
    display_name: Option<String>,
    now: OffsetDateTime,
    created: Option<OffsetDateTime>,
    /// The policy, for applications only.
    policy: Option<&'a Policy>,
}

impl<'a> RowMaker<'a> {
    fn new(object: &Value, object_type: Collection, now: OffsetDateTime, policy: Option<&'a Policy>) -> Self {
        let s = |k: &str| object.get(k).and_then(Value::as_str).map(str::to_string);
        let (object_type, policy) = match object_type {
            Collection::Applications => ("application", policy),
            Collection::ServicePrincipals => ("servicePrincipal", None),
        };
        RowMaker {
            object_type,
            app_id: s("appId").unwrap_or_default(),
            display_name: s("displayName"),
            now,
            created: s("createdDateTime").as_deref().and_then(dates::parse_manifest),
            policy,
        }
    }

    fn row(
        &self,
        key_id: Option<String>,
        kind: Kind,
        thumbprint: Option<String>,
        (start, end): (Option<OffsetDateTime>, Option<OffsetDateTime>),
        status: CredStatus,
        reason: Option<String>,
    ) -> Row {
        let policy = self.policy.map(|p| match (start, end) {
            (Some(s), Some(e)) => PolicyStanding::of(p, kind, self.created, s, e),
            _ => PolicyStanding::Ok,
        });
        Row {
            object_type: self.object_type,
            app_id: self.app_id.clone(),
            display_name: self.display_name.clone(),
            key_id,
            kind,
            thumbprint,
            start: start.map(dates::format),
            end: end.map(dates::format),
            days_left: end.map(|e| dates::days_between(self.now, e)),
            status,
            reason,
            policy,
            last_sign_in: None,
            name: None,
            issuer: None,
            subject: None,
            audience: None,
        }
    }
}

/// The rows of one application or service principal object as Graph returns it, judged against
/// `policy` when there is one (applications only).
pub fn rows_of(
    object: &Value,
    object_type: Collection,
    now: OffsetDateTime,
    window: Duration,
    policy: Option<&Policy>,
) -> Vec<Row> {
    let empty = Vec::new();
    let keys = object.get("keyCredentials").and_then(Value::as_array).unwrap_or(&empty);
    let passwords = object.get("passwordCredentials").and_then(Value::as_array).unwrap_or(&empty);
    let maker = RowMaker::new(object, object_type, now, policy);
    let row = |key_id, kind, thumbprint, start, end, status, reason| {
        maker.row(key_id, kind, thumbprint, (start, end), status, reason)
    };
    let mut out = Vec::new();
    // SAML triples on service principals: one row per customKeyIdentifier, from its Verify key.
    let mut saml_ckis: HashSet<String> = HashSet::new();
    let mut sign_key_ids: HashSet<String> = HashSet::new();
    let objects: Vec<&Map<String, Value>> = keys.iter().filter_map(Value::as_object).collect();
    for (i, o) in objects.iter().enumerate() {
        let usage = o.get("usage").and_then(Value::as_str).unwrap_or("");
        let cki = o.get("customKeyIdentifier").and_then(Value::as_str).map(str::to_string);
        let is_sp = object_type == Collection::ServicePrincipals;
        if is_sp && usage.eq_ignore_ascii_case("Sign") {
            if let Some(k) = o.get("keyId").and_then(Value::as_str) {
                sign_key_ids.insert(k.to_ascii_lowercase());
            }
            if let Some(c) = &cki {
                saml_ckis.insert(c.clone());
            }
            // Reported through its Verify twin when there is one.
            let has_twin = objects.iter().any(|p| {
                p.get("usage").and_then(Value::as_str).is_some_and(|u| u.eq_ignore_ascii_case("Verify"))
                    && p.get("customKeyIdentifier").and_then(Value::as_str).map(str::to_string) == cki
            });
            if has_twin {
                continue;
            }
        }
        let c = read_entry(i, o);
        // The private half of a SAML triple is not a sign-in credential: its usage is no defect.
        let defects: Vec<&String> = c
            .defects
            .iter()
            .filter(|d| !(is_sp && usage.eq_ignore_ascii_case("Sign") && d.starts_with("usage is")))
            .collect();
        let (status, reason) = if defects.is_empty() {
            (by_dates(c.effective_start(), c.effective_end(), now, window), None)
        } else {
            (CredStatus::Unusable, Some(defects.iter().map(|d| d.as_str()).collect::<Vec<_>>().join("; ")))
        };
        out.push(row(
            c.key_id.clone(),
            Kind::Certificate,
            c.sha1().map(|d| thumbprint::hex_upper(&d)),
            c.effective_start(),
            c.effective_end(),
            status,
            reason,
        ));
    }
    for p in passwords.iter().filter_map(Value::as_object) {
        let key_id = p.get("keyId").and_then(Value::as_str).map(str::to_string);
        let cki = p.get("customKeyIdentifier").and_then(Value::as_str);
        let is_saml_password = key_id.as_deref().is_some_and(|k| sign_key_ids.contains(&k.to_ascii_lowercase()))
            || cki.is_some_and(|c| saml_ckis.contains(c));
        if is_saml_password {
            continue;
        }
        let date = |k: &str| p.get(k).and_then(Value::as_str).and_then(dates::parse_manifest);
        let (start, end) = (date("startDateTime"), date("endDateTime"));
        out.push(row(key_id, Kind::Secret, None, start, end, by_dates(start, end, now, window), None));
    }
    out
}

/// The rows of an application's federated identity credentials as Graph listed them: one per
/// credential, `valid` (they have no dates). When Graph refused the list (no right to read it,
/// the application gone since its page), one `unknown` row saying why, so that the audit goes
/// on; a failure to reach Graph at all ends it.
fn federated_rows(maker: &RowMaker<'_>, fics: Result<Vec<FederatedIdentityCredential>>) -> Result<Vec<Row>> {
    let fics = match fics {
        Ok(fics) => fics,
        Err(e) if e.graph_code().is_some() => {
            let why = format!("its federated identity credentials could not be read: {}", e.message());
            return Ok(vec![maker.row(None, Kind::Federated, None, (None, None), CredStatus::Unknown, Some(why))]);
        }
        Err(e) => return Err(e),
    };
    Ok(fics
        .into_iter()
        .map(|c| {
            let subject = c.subject.clone().or_else(|| {
                let e = c.claims_matching_expression.as_ref()?;
                e.get("value").and_then(Value::as_str).map(str::to_string)
            });
            Row {
                name: Some(c.name),
                issuer: Some(c.issuer),
                subject,
                audience: c.audiences.first().cloned(),
                ..maker.row(c.id, Kind::Federated, None, (None, None), CredStatus::Valid, None)
            }
        })
        .collect())
}

/// What to report.
#[derive(Clone, Debug, Default)]
pub struct Filters {
    /// What counts as expiring (default 30 days); with `only_expiring`, only credentials ending
    /// within it (or already ended) are kept.
    pub window: Option<Duration>,
    /// Keep only credentials ending within the window, or already ended.
    pub only_expiring: bool,
    /// Keep only these statuses (all when empty).
    pub statuses: Vec<CredStatus>,
    /// Only these applications (all when empty).
    pub app_ids: Vec<ClientId>,
    /// Service principals too.
    pub service_principals: bool,
    /// Keep only credentials that have not signed in for this long (or never, as far as the
    /// sign-in report says): Entra's "remove unused credentials" recommendation.
    pub unused: Option<Duration>,
}

/// Default expiring window: the 30 days of [`crate::cert::EXPIRING_DAYS`].
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(crate::cert::EXPIRING_DAYS as u64 * 86_400);

impl Filters {
    /// The expiring window in use.
    pub fn window(&self) -> Duration {
        self.window.unwrap_or(DEFAULT_WINDOW)
    }
    /// Whether federated identity credentials can be reported at all, so that they are worth a
    /// request per application: they have no dates (never expiring) and are not in the sign-in
    /// report by credential (never judged unused).
    pub fn wants_federated(&self) -> bool {
        !self.only_expiring
            && self.unused.is_none()
            && (self.statuses.is_empty()
                || self.statuses.iter().any(|s| matches!(s, CredStatus::Valid | CredStatus::Unknown)))
    }
    /// Whether `row` is reported.
    pub fn keeps(&self, row: &Row) -> bool {
        (!self.only_expiring || matches!(row.status, CredStatus::Expiring | CredStatus::Expired))
            && (self.statuses.is_empty() || self.statuses.contains(&row.status))
    }
}

/// Counts, for the summary.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Applications read.
    pub applications: u64,
    /// Service principals read.
    pub service_principals: u64,
    /// Credentials reported.
    pub credentials: u64,
    /// Reported credentials per status.
    pub valid: u64,
    /// .
    pub expiring: u64,
    /// .
    pub expired: u64,
    /// .
    pub not_yet_valid: u64,
    /// .
    pub unusable: u64,
    /// Rows saying what could not be read.
    pub unknown: u64,
    /// Graph pages read.
    pub pages: u64,
    /// Answers 429/503 waited out.
    pub throttled: u64,
    /// Why the sign-in report could not be read (`lastSignIn` is then empty); `null` when read.
    pub sign_ins_unavailable: Option<String>,
}

impl Summary {
    fn count(&mut self, s: CredStatus) {
        self.credentials += 1;
        match s {
            CredStatus::Valid => self.valid += 1,
            CredStatus::Expiring => self.expiring += 1,
            CredStatus::Expired => self.expired += 1,
            CredStatus::NotYetValid => self.not_yet_valid += 1,
            CredStatus::Unusable => self.unusable += 1,
            CredStatus::Unknown => self.unknown += 1,
        }
    }
    /// How many reported credentials have `s`.
    pub fn with_status(&self, s: CredStatus) -> u64 {
        match s {
            CredStatus::Valid => self.valid,
            CredStatus::Expiring => self.expiring,
            CredStatus::Expired => self.expired,
            CredStatus::NotYetValid => self.not_yet_valid,
            CredStatus::Unusable => self.unusable,
            CredStatus::Unknown => self.unknown,
        }
    }
}

/// Last sign-ins from Graph's report, by credential origin, appId and keyId (lower case).
type LastSignIns = HashMap<(&'static str, String, String), OffsetDateTime>;

/// Reads the whole sign-in report (it needs AuditLog.Read.All).
async fn last_sign_ins(g: &GraphClient) -> Result<LastSignIns> {
    let mut m = LastSignIns::new();
    for r in signins::all_rows(g).await? {
        let (Some(t), Some(app)) = (r.last_sign_in(), r.app_id.as_deref()) else { continue };
        let origin = if r.of_application() { "application" } else { "servicePrincipal" };
        let e = m.entry((origin, app.to_ascii_lowercase(), r.key_id.to_ascii_lowercase())).or_insert(t);
        *e = (*e).max(t);
    }
    Ok(m)
}

/// Lists every application (then service principal, when asked) and hands each reported
/// credential to `sink` as soon as its page is read, with its last sign-in from the report.
/// The report is read first, all of it (one entry per credential that signed in); when it
/// cannot be read, `lastSignIn` stays empty and the summary says why, unless `unused` was
/// asked for, which needs it.
pub async fn run(g: &GraphClient, f: &Filters, mut sink: impl FnMut(&Row) -> Result<()>) -> Result<Summary> {
    let now = dates::now();
    // Not readable (no Policy.Read.All, or no policy): the column stays empty.
    let policy = g
        .send(GraphCall::get_default_policy())
        .await
        .ok()
        .flatten()
        .and_then(|v| Policy::from_json(&v, "the tenant's default app management policy").ok());
    let mut sum = Summary::default();
    let last = match last_sign_ins(g).await {
        Ok(m) => m,
        Err(e) if f.unused.is_none() => {
            sum.sign_ins_unavailable = Some(e.message().to_string());
            LastSignIns::new()
        }
        Err(e) => return Err(e.context("reading the sign-in report, which the unused filter needs")),
    };
    let mut collections = vec![Collection::Applications];
    if f.service_principals {
        collections.push(Collection::ServicePrincipals);
    }
    for what in collections {
        let mut objects = Objects::new(g, what, &f.app_ids);
        while let Some(o) = objects.next().await? {
            match what {
                Collection::Applications => sum.applications += 1,
                Collection::ServicePrincipals => sum.service_principals += 1,
            }
            let mut rows = rows_of(&o, what, now, f.window(), policy.as_ref());
            if what == Collection::Applications && f.wants_federated() {
                let object_id = o.get("id").and_then(Value::as_str).unwrap_or_default();
                let fics = federated::list_by_object_id(g, object_id).await;
                rows.extend(federated_rows(&RowMaker::new(&o, what, now, None), fics)?);
            }
            for mut r in rows {
                if r.kind == Kind::Federated {
                    // Not in the sign-in report by credential: nothing to look up, nothing unused.
                    if f.keeps(&r) {
                        sum.count(r.status);
                        sink(&r)?;
                    }
                    continue;
                }
                let key = (
                    r.object_type,
                    r.app_id.to_ascii_lowercase(),
                    r.key_id.clone().unwrap_or_default().to_ascii_lowercase(),
                );
                let t = last.get(&key).copied();
                r.last_sign_in = t.map(dates::format);
                let unused = f.unused.is_none_or(|d| t.is_none_or(|t| now - t >= d));
                if f.keeps(&r) && unused {
                    sum.count(r.status);
                    sink(&r)?;
                }
            }
        }
        sum.pages += objects.pages;
    }
    sum.throttled = g.limiter().throttled_count();
    Ok(sum)
}

#[cfg(test)]
#[path = "audit_tests.rs"]
mod tests;
