//! The emulated tenant's mutable state: its names, its users, the consent given to applications,
//! and the authorization codes and refresh tokens in flight. Applications and resources are in
//! [`super::apps`]; this module keys everything by their appIds.
//!
//! Consent works as in Entra: an administrator's consent (the admin-consent endpoint, the consent
//! page with `prompt=admin_consent`, or `--consented APPID`) turns the app's
//! `requiredResourceAccess` into app role assignments (entries of type `Role`, which become
//! `roles` in its app-only tokens) and a tenant-wide delegated grant (entries of type `Scope`,
//! which become `scp` in user tokens). A user's consent on the consent page grants the scopes
//! asked, for that user only. Consent is a snapshot: permissions added to the manifest later
//! need consent again. It is held in memory, for the life of the emulator.
//!
//! Codes and refresh tokens in flight are bounded ([`MAX_CODES`], [`MAX_REFRESH_TOKENS`] and the
//! bytes they hold), so that a flood of sign-ins, even unauthenticated ones, cannot grow the
//! emulator without end: each is forgotten at its expiry, and when a bound is reached the oldest
//! goes first.

use super::apps::{AccessKind, Api, App, Registry};
use crate::wording::Input;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Mutex;

/// Most authorization codes held at once (redeemed ones count until they are forgotten).
pub const MAX_CODES: usize = 4096;
/// Most bytes the held codes may take (a code carries its request's `nonce`, PKCE challenge and
/// resource: up to some kilobytes each).
pub const MAX_CODE_BYTES: usize = 4 << 20;
/// Most refresh tokens held at once.
pub const MAX_REFRESH_TOKENS: usize = 4096;
/// Most bytes the held refresh tokens may take.
pub const MAX_REFRESH_BYTES: usize = 4 << 20;
/// A code is forgotten an hour after it expires: until then, redeeming it says "expired"
/// (70008) rather than "not valid" (70000).
const EXPIRED_CODE_GRACE: i64 = 3600;
/// Refresh tokens are forgotten after 90 days, Entra's inactivity limit for them.
const REFRESH_LIFETIME: i64 = 90 * 24 * 3600;

/// A user of the tenant (a work account).
#[derive(Clone, Debug)]
pub struct User {
    /// `userPrincipalName`, the `upn`/`preferred_username` claim.
    pub upn: String,
    /// Display name, the `name` claim.
    pub name: String,
    /// Object id, the same in every app's tokens.
    pub oid: String,
}

impl User {
    /// A user named by `UPN` or `UPN=Display Name` (as `--user` takes it).
    pub fn parse(spec: &str, default_domain: &str) -> std::result::Result<User, String> {
        let (upn, name) = match spec.split_once('=') {
            Some((u, n)) => (u.trim(), Some(n.trim())),
            None => (spec.trim(), None),
        };
        let upn = if upn.contains('@') { upn.to_string() } else { format!("{upn}@{default_domain}") };
        let (local, domain) = upn.split_once('@').unwrap_or_default();
        if local.is_empty() || domain.is_empty() || upn.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "{} '{spec}': expected UPN or UPN=Display Name, such as adele@contoso.example",
                Input::User
            ));
        }
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => n.to_string(),
            None => local
                .split(['.', '_', '-'])
                .filter(|w| !w.is_empty())
                .map(|w| {
                    let mut c = w.chars();
                    c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
                })
                .collect::<Vec<_>>()
                .join(" "),
        };
        Ok(User { oid: super::apps::derived_id("user", &upn), upn, name })
    }

    /// Given and family name, split from the display name (v1 tokens carry both).
    pub fn given_family(&self) -> (String, String) {
        match self.name.split_once(' ') {
            Some((g, f)) => (g.to_string(), f.to_string()),
            None => (self.name.clone(), String::new()),
        }
    }
}

/// An authorization code issued by the authorize endpoint, waiting to be redeemed.
#[derive(Clone, Debug)]
pub struct CodeGrant {
    /// The client it was issued to.
    pub client_id: String,
    /// `redirect_uri` of the authorize request, `None` when a v1 request left it out.
    pub redirect_uri: Option<String>,
    /// The resource, as the authorize request named it (v1 `resource`, or the resource part of
    /// the v2 scopes).
    pub resource: String,
    /// Delegated scope values granted, on that resource.
    pub scopes: Vec<String>,
    /// OpenID scopes asked (`openid`, `profile`, `email`, `offline_access`).
    pub oidc: Vec<String>,
    /// The signed-in user's object id.
    pub user_oid: String,
    /// `nonce`, copied into the id token.
    pub nonce: Option<String>,
    /// PKCE `code_challenge` and its method (`S256` or `plain`).
    pub pkce: Option<(String, String)>,
    /// Unix time after which it is expired.
    pub expires_at: i64,
    /// Redeemed once already.
    pub redeemed: bool,
}

impl CodeGrant {
    /// Bytes it takes in memory, about.
    fn weight(&self) -> usize {
        let opt = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        std::mem::size_of::<Self>()
            + self.client_id.len()
            + opt(&self.redirect_uri)
            + self.resource.len()
            + strings_weight(&self.scopes)
            + strings_weight(&self.oidc)
            + self.user_oid.len()
            + opt(&self.nonce)
            + self.pkce.as_ref().map_or(0, |(c, m)| c.len() + m.len())
    }
}

/// Bytes a list of strings takes, about.
fn strings_weight(v: &[String]) -> usize {
    v.iter().map(|s| s.len() + std::mem::size_of::<String>()).sum()
}

/// A refresh token's grant.
#[derive(Clone, Debug)]
pub struct RefreshGrant {
    /// The client it was issued to.
    pub client_id: String,
    /// The user.
    pub user_oid: String,
    /// The resource and scopes of the original grant.
    pub resource: String,
    /// Delegated scope values.
    pub scopes: Vec<String>,
    /// OpenID scopes of the original grant.
    pub oidc: Vec<String>,
}

impl RefreshGrant {
    /// Bytes it takes in memory, about.
    fn weight(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.client_id.len()
            + self.user_oid.len()
            + self.resource.len()
            + strings_weight(&self.scopes)
            + strings_weight(&self.oidc)
    }
}

/// Grants in flight under the random tokens handed out for them, oldest first, within a count
/// and a byte budget. Every entry of one table lives as long as the others, so the oldest is
/// also the first to expire: expired entries are dropped from the front at each insertion, and
/// when the budget is still exceeded, the oldest live ones go too.
struct Bounded<T> {
    items: HashMap<String, Held<T>>,
    order: VecDeque<String>,
    bytes: usize,
    max_items: usize,
    max_bytes: usize,
}

struct Held<T> {
    value: T,
    /// Unix time from which the entry is forgotten.
    forget_at: i64,
    bytes: usize,
}

impl<T> Bounded<T> {
    fn new(max_items: usize, max_bytes: usize) -> Self {
        Bounded { items: HashMap::new(), order: VecDeque::new(), bytes: 0, max_items, max_bytes }
    }

    fn pop_oldest(&mut self) {
        if let Some(k) = self.order.pop_front() {
            if let Some(h) = self.items.remove(&k) {
                self.bytes -= h.bytes;
            }
        }
    }

    fn insert(&mut self, key: String, value: T, weight: usize, forget_at: i64, now: i64) {
        while self.order.front().is_some_and(|k| self.items.get(k).is_none_or(|h| h.forget_at <= now)) {
            self.pop_oldest();
        }
        let bytes = weight + 2 * key.len();
        while !self.order.is_empty() && (self.items.len() >= self.max_items || self.bytes + bytes > self.max_bytes) {
            self.pop_oldest();
        }
        self.bytes += bytes;
        self.order.push_back(key.clone());
        self.items.insert(key, Held { value, forget_at, bytes });
    }

    /// The live entry under `key`.
    fn get_mut(&mut self, key: &str, now: i64) -> Option<&mut T> {
        self.items.get_mut(key).filter(|h| h.forget_at > now).map(|h| &mut h.value)
    }

    /// How many entries are held, and their bytes.
    #[cfg(test)]
    fn size(&self) -> (usize, usize) {
        (self.items.len(), self.bytes)
    }
}

/// Who granted a delegated permission.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Principal {
    /// An administrator, for every user (`consentType` AllPrincipals).
    All,
    /// One user (`consentType` Principal).
    User(String),
}

#[derive(Default)]
struct Grants {
    /// (client appId, resource appId) -> app role ids.
    roles: HashMap<(String, String), BTreeSet<String>>,
    /// (client appId, resource appId, principal) -> scope values, lower case.
    scopes: HashMap<(String, String, Principal), BTreeSet<String>>,
    /// Clients an administrator consented to.
    admin_consented: BTreeSet<String>,
}

/// The tenant's state.
pub struct Tenant {
    /// Tenant id (lower-case GUID).
    pub id: String,
    /// Domains: the initial `{name}.onmicrosoft.com` first, then `--domain` ones.
    pub domains: Vec<String>,
    /// Users; the first is the one the consent page offers first.
    pub users: Vec<User>,
    grants: Mutex<Grants>,
    codes: Mutex<Bounded<CodeGrant>>,
    refresh: Mutex<Bounded<RefreshGrant>>,
}

fn random_token(prefix: &str) -> String {
    use rand::RngCore;
    let mut b = [0u8; 48];
    rand::thread_rng().fill_bytes(&mut b);
    format!("{prefix}{}", crate::thumbprint::b64url(&b))
}

impl Tenant {
    /// A tenant with these names and users.
    pub fn new(id: &str, domains: Vec<String>, users: Vec<User>) -> Tenant {
        Tenant {
            id: id.to_ascii_lowercase(),
            domains,
            users,
            grants: Mutex::default(),
            codes: Mutex::new(Bounded::new(MAX_CODES, MAX_CODE_BYTES)),
            refresh: Mutex::new(Bounded::new(MAX_REFRESH_TOKENS, MAX_REFRESH_BYTES)),
        }
    }

    /// Whether `t` names this tenant: its id or one of its domains (case-insensitive).
    pub fn is_named(&self, t: &str) -> bool {
        t.eq_ignore_ascii_case(&self.id) || self.domains.iter().any(|d| d.eq_ignore_ascii_case(t))
    }

    /// The user with this UPN or object id.
    pub fn user(&self, upn_or_oid: &str) -> Option<&User> {
        let k = upn_or_oid.trim();
        self.users.iter().find(|u| u.upn.eq_ignore_ascii_case(k) || u.oid.eq_ignore_ascii_case(k))
    }

    /// Admin consent for `app`: every `requiredResourceAccess` entry whose resource and
    /// permission exist becomes an assignment (Role) or a tenant-wide grant (Scope).
    pub fn admin_consent(&self, app: &App, registry: &Registry) {
        let Ok(mut g) = self.grants.lock() else { return };
        g.admin_consented.insert(app.app_id.clone());
        for r in &app.required {
            let Some(api) = registry.resource(&r.resource_app_id) else { continue };
            match r.kind {
                AccessKind::Role => {
                    if api.role_by_id(&r.id).is_some() {
                        g.roles
                            .entry((app.app_id.clone(), api.app_id.clone()))
                            .or_default()
                            .insert(r.id.to_ascii_lowercase());
                    }
                }
                AccessKind::Scope => {
                    if let Some(s) = api.scope_by_id(&r.id) {
                        g.scopes
                            .entry((app.app_id.clone(), api.app_id.clone(), Principal::All))
                            .or_default()
                            .insert(s.value.to_ascii_lowercase());
                    }
                }
            }
        }
    }

    /// A grant of delegated `scopes` on `api` to `client_id`, by `user_oid` alone or (when
    /// `None`) by an administrator for everyone.
    pub fn grant_scopes(&self, client_id: &str, api: &Api, user_oid: Option<&str>, scopes: &[String]) {
        let Ok(mut g) = self.grants.lock() else { return };
        let p = user_oid.map_or(Principal::All, |u| Principal::User(u.to_ascii_lowercase()));
        let set = g.scopes.entry((client_id.to_ascii_lowercase(), api.app_id.clone(), p)).or_default();
        set.extend(scopes.iter().map(|s| s.to_ascii_lowercase()));
    }

    /// App role values `client_id` holds on `api`.
    pub fn roles(&self, client_id: &str, api: &Api) -> Vec<String> {
        let Ok(g) = self.grants.lock() else { return Vec::new() };
        let ids = g.roles.get(&(client_id.to_ascii_lowercase(), api.app_id.clone()));
        // In the resource's own order, as Entra lists them.
        api.app_roles
            .iter()
            .filter(|r| ids.is_some_and(|ids| ids.contains(&r.id.to_ascii_lowercase())))
            .map(|r| r.value.clone())
            .collect()
    }

    /// Delegated scope values `client_id` may use on `api` for `user_oid` (tenant-wide and the
    /// user's own grants), in the resource's order.
    pub fn scopes(&self, client_id: &str, api: &Api, user_oid: &str) -> Vec<String> {
        let Ok(g) = self.grants.lock() else { return Vec::new() };
        let c = client_id.to_ascii_lowercase();
        let all = g.scopes.get(&(c.clone(), api.app_id.clone(), Principal::All));
        let mine = g.scopes.get(&(c, api.app_id.clone(), Principal::User(user_oid.to_ascii_lowercase())));
        let has = |v: &str| {
            let v = v.to_ascii_lowercase();
            all.is_some_and(|s| s.contains(&v)) || mine.is_some_and(|s| s.contains(&v))
        };
        api.scopes.iter().filter(|s| has(&s.value)).map(|s| s.value.clone()).collect()
    }

    /// Stores a code and returns it.
    pub fn issue_code(&self, grant: CodeGrant) -> String {
        let code = random_token("1.A");
        if let Ok(mut codes) = self.codes.lock() {
            let (weight, forget_at) = (grant.weight(), grant.expires_at.saturating_add(EXPIRED_CODE_GRACE));
            codes.insert(code.clone(), grant, weight, forget_at, crate::jwt::now_secs());
        }
        code
    }

    /// Takes a code for redemption: marks it redeemed and returns it as it was before (so a
    /// second redemption sees `redeemed`).
    pub fn redeem_code(&self, code: &str) -> Option<CodeGrant> {
        let mut codes = self.codes.lock().ok()?;
        let c = codes.get_mut(code, crate::jwt::now_secs())?;
        let before = c.clone();
        c.redeemed = true;
        Some(before)
    }

    /// Stores a refresh token's grant and returns the token.
    pub fn issue_refresh(&self, grant: RefreshGrant) -> String {
        let token = random_token("1.AR");
        if let Ok(mut r) = self.refresh.lock() {
            let now = crate::jwt::now_secs();
            let weight = grant.weight();
            r.insert(token.clone(), grant, weight, now.saturating_add(REFRESH_LIFETIME), now);
        }
        token
    }

    /// The grant of a refresh token (which stays valid, as in Entra).
    pub fn refresh_grant(&self, token: &str) -> Option<RefreshGrant> {
        self.refresh.lock().ok()?.get_mut(token, crate::jwt::now_secs()).map(|g| g.clone())
    }

    /// Codes and refresh tokens held: `((codes, bytes), (refresh tokens, bytes))`.
    #[cfg(test)]
    fn in_flight(&self) -> ((usize, usize), (usize, usize)) {
        let codes = self.codes.lock().map(|c| c.size()).unwrap_or_default();
        let refresh = self.refresh.lock().map(|r| r.size()).unwrap_or_default();
        (codes, refresh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_parse_with_and_without_names() {
        let u = User::parse("adele.vance@contoso.example", "x.onmicrosoft.com").unwrap();
        assert_eq!((u.upn.as_str(), u.name.as_str()), ("adele.vance@contoso.example", "Adele Vance"));
        assert_eq!(u.given_family(), ("Adele".to_string(), "Vance".to_string()));
        let u = User::parse("megan=Megan Bowen", "x.onmicrosoft.com").unwrap();
        assert_eq!((u.upn.as_str(), u.name.as_str()), ("megan@x.onmicrosoft.com", "Megan Bowen"));
        assert_eq!(u.oid, User::parse("MEGAN@x.onmicrosoft.com", "y").unwrap().oid, "oid ignores case");
        assert!(User::parse("@x", "d").is_err());
        assert!(User::parse("a b@x", "d").is_err());
    }

    fn tenant() -> Tenant {
        Tenant::new("72f988bf-86f1-41af-91ab-2d7cd011db47", vec!["x.onmicrosoft.com".into()], Vec::new())
    }

    /// A code as a sign-in with the largest parameters leaves it: an 8 KB `nonce`.
    fn code(nonce_len: usize, expires_at: i64) -> CodeGrant {
        CodeGrant {
            client_id: "6731de76-14a6-49ae-97bc-6eba6914391e".into(),
            redirect_uri: Some("http://localhost/callback".into()),
            resource: "00000003-0000-0000-c000-000000000000".into(),
            scopes: vec!["User.Read".into()],
            oidc: vec!["openid".into()],
            user_oid: "0d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6".into(),
            nonce: Some("n".repeat(nonce_len)),
            pkce: Some(("c".repeat(128), "S256".into())),
            expires_at,
            redeemed: false,
        }
    }

    fn refresh() -> RefreshGrant {
        RefreshGrant {
            client_id: "6731de76-14a6-49ae-97bc-6eba6914391e".into(),
            user_oid: "0d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6".into(),
            resource: "00000003-0000-0000-c000-000000000000".into(),
            scopes: vec!["User.Read".into()],
            oidc: vec!["openid".into(), "offline_access".into()],
        }
    }

    #[test]
    fn codes_in_flight_stay_within_their_budget_however_many_are_issued() {
        let t = tenant();
        let later = crate::jwt::now_secs() + 600;
        let fill = |n: usize| {
            let mut last = String::new();
            for _ in 0..n {
                last = t.issue_code(code(8 * 1024, later));
            }
            last
        };
        fill(1_000);
        let after_n = t.in_flight().0;
        let newest = fill(10_000);
        let after_10n = t.in_flight().0;
        // Large codes meet the byte budget first: the same number held after N and after 10N.
        assert!(after_n.1 <= MAX_CODE_BYTES && after_10n.1 <= MAX_CODE_BYTES, "{after_n:?} {after_10n:?}");
        assert_eq!(after_n, after_10n);
        assert!(after_10n.0 > 100, "the budget still holds hundreds of sign-ins: {after_10n:?}");
        // The newest is redeemable; the oldest went first.
        assert!(t.redeem_code(&newest).is_some());
        // Small codes meet the count bound.
        for _ in 0..MAX_CODES + 500 {
            t.issue_code(code(36, later));
        }
        assert_eq!(t.in_flight().0 .0, MAX_CODES);
    }

    #[test]
    fn codes_are_forgotten_an_hour_after_they_expire() {
        let t = tenant();
        let now = crate::jwt::now_secs();
        let old = t.issue_code(code(36, now - EXPIRED_CODE_GRACE - 1));
        assert!(t.redeem_code(&old).is_none(), "past the grace hour: forgotten");
        // Expired, but within the hour: still known, so that redeeming it says "expired".
        let recent = t.issue_code(code(36, now - 60));
        assert!(t.redeem_code(&recent).is_some());
        // The forgotten one is gone from memory too, not only hidden.
        assert_eq!(t.in_flight().0 .0, 1, "{:?}", t.in_flight());
    }

    #[test]
    fn refresh_tokens_in_flight_are_bounded() {
        let t = tenant();
        let first = t.issue_refresh(refresh());
        for _ in 0..MAX_REFRESH_TOKENS {
            t.issue_refresh(refresh());
        }
        let last = t.issue_refresh(refresh());
        let (n, bytes) = t.in_flight().1;
        assert_eq!(n, MAX_REFRESH_TOKENS);
        assert!(bytes <= MAX_REFRESH_BYTES, "{bytes}");
        assert!(t.refresh_grant(&first).is_none(), "the oldest went first");
        assert!(t.refresh_grant(&last).is_some());
    }
}
