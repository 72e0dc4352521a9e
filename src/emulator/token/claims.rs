//! The tokens the emulator issues: their claims (v1 or v2, app or user), signature, lifetime and
//! the JSON bodies that carry them.

use super::{ClientProof, BACKDATE, GRAPH_APP_ID, TOKEN_LIFETIME};
use crate::cert::SignatureAlg;
use crate::emulator::apps::{Api, App, IdTyp, TokenVersion};
use crate::emulator::errors::Refusal;
use crate::emulator::tenant::User;
use crate::emulator::{AppState, EndpointVersion};
use crate::jwt::{self};
use crate::thumbprint::{b64url, sha256};
use serde::Serialize;
use serde_json::{json, Value};

/// A signed access token and its times.
pub(super) struct Minted {
    pub(super) token: String,
    /// Issue time as claimed (`iat` = `nbf`, back-dated).
    pub(super) nbf: i64,
    pub(super) exp: i64,
    /// `expires_in`: seconds from now until `exp`.
    pub(super) expires_in: i64,
}

/// Whom a token is about.
pub(super) enum Subject<'a> {
    /// The client itself (client credentials).
    App { roles: Vec<String> },
    /// A signed-in user, with the delegated scopes granted.
    User { user: &'a User, scopes: Vec<String> },
}

/// `n` random bytes, base64url: the opaque values Entra puts in `uti`, `aio`, `rh` and Graph's
/// `nonce` header.
pub(super) fn opaque(n: usize) -> String {
    use rand::RngCore;
    let mut b = vec![0u8; n];
    rand::thread_rng().fill_bytes(&mut b);
    b64url(&b)
}

pub(super) fn uti() -> String {
    opaque(16)
}

/// `sub` of user tokens: pairwise, so that two apps cannot correlate a user by it (`oid` is
/// the same everywhere).
pub(super) fn pairwise_sub(user: &User, app_id: &str) -> String {
    b64url(&sha256(format!("keycred-emulator sub {} {}", user.oid, app_id.to_ascii_lowercase()).as_bytes()))
}

pub(super) fn v1_issuer(tid: &str) -> String {
    format!("https://sts.windows.net/{tid}/")
}
pub(super) fn v2_issuer(tid: &str) -> String {
    format!("https://login.microsoftonline.com/{tid}/v2.0")
}

/// Signs `claims` with the tenant's key, header `typ`, `alg`, (`x5t` for v1,) `kid`. A Microsoft
/// Graph token (`graph`) also carries a `nonce` header and is signed over the header in which
/// that nonce is replaced by its base64url SHA-256, as Graph's own tokens are: a third party that
/// verifies it as an ordinary JWT fails, as against Entra, where Microsoft's access-token
/// documentation warns that tokens for Microsoft's APIs "can use a special format that will not
/// validate as a JWT" (and AzureAD identitymodel issue 609 shows the nonce transform).
pub(super) fn sign(st: &AppState, v1_header: bool, graph: bool, claims: &impl Serialize) -> Result<String, Refusal> {
    let header = |nonce: Option<&str>| {
        let h = Header {
            typ: "JWT",
            nonce,
            alg: SignatureAlg::Rs256.jose(),
            x5t: v1_header.then_some(&*st.kid),
            kid: &st.kid,
        };
        b64url(&serde_json::to_vec(&h).unwrap_or_default())
    };
    let nonce = graph.then(|| opaque(32));
    let hashed = nonce.as_deref().map(|n| b64url(&sha256(n.as_bytes())));
    let payload = b64url(&serde_json::to_vec(claims).unwrap_or_default());
    let first = header(hashed.as_deref());
    let mut signed = String::with_capacity(first.len() + 1 + payload.len() + 344);
    signed.push_str(&first);
    signed.push('.');
    signed.push_str(&payload);
    let signature = st
        .signing_key
        .sign(SignatureAlg::Rs256, signed.as_bytes())
        .map_err(|_| Refusal::malformed_jwt("The emulator could not sign the token."))?;
    // The header sent differs from the one signed only in a Graph token's nonce.
    if nonce.is_some() {
        signed.replace_range(..first.len(), &header(nonce.as_deref()));
    }
    signed.push('.');
    signed.push_str(&b64url(&signature));
    Ok(signed)
}

/// The JOSE header of the tokens the emulator signs, in Entra's order.
#[derive(Serialize)]
struct Header<'a> {
    typ: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    alg: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    x5t: Option<&'a str>,
    kid: &'a str,
}

/// Whether `d` bears this tenant's signature, as Entra and Graph check the tokens they issued:
/// over the header as sent, or, for a token with a `nonce` header (Graph's), over the header
/// whose nonce is replaced by its base64url SHA-256 (see [`sign`]).
pub(in crate::emulator) fn signed_by_tenant(st: &AppState, d: &jwt::Decoded) -> bool {
    let public = st.signing_cert.rsa_public_key().unwrap_or_default();
    if d.alg() != Some("RS256") {
        return false;
    }
    let Some(nonce) = d.header.get("nonce").and_then(Value::as_str) else {
        return d.verify(SignatureAlg::Rs256, public);
    };
    let mut header = d.header.clone();
    header.insert("nonce".into(), json!(b64url(&sha256(nonce.as_bytes()))));
    let payload = d.signing_input.split_once('.').map_or("", |(_, p)| p);
    let Ok(h) = serde_json::to_vec(&Value::Object(header)) else { return false };
    SignatureAlg::Rs256.verify(public, format!("{}.{payload}", b64url(&h)).as_bytes(), &d.signature)
}

/// Whether a token this tenant issued is app-only: `idtyp` says so when the resource asked for
/// it; otherwise a user token has a delegated `scp` or a user's name claims (a user token
/// without any delegated permission has no `scp`), and an app-only token neither.
pub(in crate::emulator) fn is_app_only(d: &jwt::Decoded) -> bool {
    match d.claim_str("idtyp") {
        Some(t) => t == "app",
        None => {
            let user_claims = ["upn", "preferred_username", "unique_name"].iter().any(|n| d.claim_str(n).is_some());
            d.claim_str("scp").is_none() && !user_claims
        }
    }
}

/// An unsigned JWT (`alg` `none`, empty signature), the v1 endpoint's ID token: Microsoft's v1
/// authorization code documentation describes it as "An unsigned JSON Web Token (JWT)" and
/// shows the header `{"typ": "JWT", "alg": "none"}`.
fn unsigned(claims: &impl Serialize) -> String {
    let header = json!({"typ": "JWT", "alg": "none"});
    let header = b64url(&serde_json::to_vec(&header).unwrap_or_default());
    format!("{header}.{}.", b64url(&serde_json::to_vec(claims).unwrap_or_default()))
}

/// The claims every token the emulator signs starts with, in Entra's order.
#[derive(Serialize)]
struct Head<'a> {
    aud: &'a str,
    iss: &'a str,
    iat: i64,
    nbf: i64,
    exp: i64,
    /// The opaque claims Entra puts in every token it issues, access and ID tokens alike (the
    /// access-token claims reference lists `aio` and `rh` as internal claims resources must not
    /// use): random here, so that nothing can depend on their content.
    aio: String,
    rh: String,
}

impl<'a> Head<'a> {
    fn new(aud: &'a str, iss: &'a str, nbf: i64, exp: i64) -> Self {
        Head { aud, iss, iat: nbf, nbf, exp, aio: opaque(48), rh: format!("0.{}.", opaque(40)) }
    }
}

/// The claims every token ends with.
#[derive(Serialize)]
struct Tail<'a> {
    tid: &'a str,
    uti: String,
    ver: &'static str,
}

impl<'a> Tail<'a> {
    fn new(tid: &'a str, v1: bool) -> Self {
        Tail { tid, uti: uti(), ver: if v1 { "1.0" } else { "2.0" } }
    }
}

/// An access token's claims: the head, `idtyp` when the resource asks for it, the body of its
/// shape, the tail.
#[derive(Serialize)]
struct AccessClaims<'a> {
    #[serde(flatten)]
    head: Head<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    idtyp: Option<&'static str>,
    #[serde(flatten)]
    body: AccessBody<'a>,
    #[serde(flatten)]
    tail: Tail<'a>,
}

/// What an access token says about its subject, by token version and subject: a v1 token names
/// the client `appid` (and its issuer as `idp` in app-only tokens) and a user by `upn` and
/// `unique_name`; a v2 token names the client `azp` and a user `preferred_username`.
#[derive(Serialize)]
#[serde(untagged)]
enum AccessBody<'a> {
    AppV1 {
        appid: &'a str,
        appidacr: &'static str,
        idp: String,
        oid: &'a str,
        #[serde(skip_serializing_if = "<[String]>::is_empty")]
        roles: &'a [String],
        sub: &'a str,
    },
    AppV2 {
        azp: &'a str,
        azpacr: &'static str,
        oid: &'a str,
        #[serde(skip_serializing_if = "<[String]>::is_empty")]
        roles: &'a [String],
        sub: &'a str,
    },
    UserV1 {
        acr: &'static str,
        amr: [&'static str; 1],
        appid: &'a str,
        appidacr: &'static str,
        family_name: String,
        given_name: String,
        name: &'a str,
        oid: &'a str,
        /// No delegated permission (an app whose permissions on the resource are all application
        /// roles, consented by an administrator): no `scp` claim, never an empty one.
        #[serde(skip_serializing_if = "Option::is_none")]
        scp: Option<String>,
        sub: String,
        unique_name: &'a str,
        upn: &'a str,
    },
    UserV2 {
        azp: &'a str,
        azpacr: &'static str,
        name: &'a str,
        oid: &'a str,
        preferred_username: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        scp: Option<String>,
        sub: String,
    },
}

/// An ID token's claims (v1 ones carry the user's name parts, `unique_name` and `upn`; v2 ones
/// `preferred_username`).
#[derive(Serialize)]
struct IdClaims<'a> {
    #[serde(flatten)]
    head: Head<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    amr: Option<[&'static str; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    family_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    given_name: Option<String>,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    oid: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    preferred_username: Option<&'a str>,
    sub: String,
    tid: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    unique_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    upn: Option<&'a str>,
    uti: String,
    ver: &'static str,
}

/// Issues an access token for `api` (named `requested` in the request) to `client`, in the
/// shape the resource takes.
pub(super) fn mint(
    st: &AppState,
    client: &App,
    auth: ClientProof,
    api: &Api,
    requested: &str,
    subject: Subject,
) -> Result<Minted, Refusal> {
    let now = jwt::now_secs();
    let lifetime = lifetime(st, &subject);
    let (nbf, exp) = (now - BACKDATE, now + lifetime);
    let tid = &st.tenant;
    let v1 = api.token_version == TokenVersion::V1;
    // v1 tokens name the resource as it was asked for (URI or GUID); v2 tokens by its app id.
    let aud = if v1 { requested } else { api.app_id.as_str() };
    let iss = if v1 { v1_issuer(tid) } else { v2_issuer(tid) };
    let acr = auth.acr();
    let body = match (&subject, v1) {
        (Subject::App { roles }, true) => AccessBody::AppV1 {
            appid: &client.app_id,
            appidacr: acr,
            idp: v1_issuer(tid),
            oid: &client.sp_object_id,
            roles,
            sub: &client.sp_object_id,
        },
        (Subject::App { roles }, false) => AccessBody::AppV2 {
            azp: &client.app_id,
            azpacr: acr,
            oid: &client.sp_object_id,
            roles,
            sub: &client.sp_object_id,
        },
        (Subject::User { user, scopes }, true) => {
            let (given_name, family_name) = user.given_family();
            AccessBody::UserV1 {
                acr: "1",
                amr: ["pwd"],
                appid: &client.app_id,
                appidacr: acr,
                family_name,
                given_name,
                name: &user.name,
                oid: &user.oid,
                scp: scp(scopes),
                sub: pairwise_sub(user, &client.app_id),
                unique_name: &user.upn,
                upn: &user.upn,
            }
        }
        (Subject::User { user, scopes }, false) => AccessBody::UserV2 {
            azp: &client.app_id,
            azpacr: acr,
            name: &user.name,
            oid: &user.oid,
            preferred_username: &user.upn,
            scp: scp(scopes),
            sub: pairwise_sub(user, &client.app_id),
        },
    };
    let claims = AccessClaims {
        head: Head::new(aud, &iss, nbf, exp),
        idtyp: idtyp(api, &subject),
        body,
        tail: Tail::new(tid, v1),
    };
    let graph = api.app_id.eq_ignore_ascii_case(GRAPH_APP_ID);
    Ok(Minted { token: sign(st, v1, graph, &claims)?, nbf, exp, expires_in: lifetime })
}

/// The `scp` claim: the delegated scopes granted, space-separated; none when there are none.
fn scp(scopes: &[String]) -> Option<String> {
    (!scopes.is_empty()).then(|| scopes.join(" "))
}

/// How long a token lives: app-only tokens 3599 s; user tokens a random 60 to 90 minutes, as
/// Entra's do (unless the configuration fixes it, for tests of expiry).
pub(super) fn lifetime(st: &AppState, subject: &Subject) -> i64 {
    match subject {
        Subject::App { .. } => TOKEN_LIFETIME,
        Subject::User { .. } => st.user_token_lifetime.unwrap_or_else(|| {
            use rand::Rng;
            rand::thread_rng().gen_range(3600..=5400)
        }),
    }
}

/// The `idtyp` claim of a token for `api`: only when the resource asks for the optional claim
/// (`optionalClaims.accessToken`), `app` in app-only tokens and, with `include_user_token`,
/// `user` in user tokens (Microsoft's optional-claims reference).
pub(super) fn idtyp(api: &Api, subject: &Subject) -> Option<&'static str> {
    match (subject, api.idtyp) {
        (Subject::App { .. }, IdTyp::AppOnly | IdTyp::AppAndUser) => Some("app"),
        (Subject::User { .. }, IdTyp::AppAndUser) => Some("user"),
        _ => None,
    }
}

/// An ID token for `user` signed in to `client`: its version follows the endpoint (ID tokens
/// are the client's, not a resource's).
pub(super) fn id_token(
    st: &AppState,
    version: EndpointVersion,
    client: &App,
    user: &User,
    nonce: Option<&str>,
) -> Result<String, Refusal> {
    let now = jwt::now_secs();
    let tid = &st.tenant;
    let v1 = version == EndpointVersion::V1;
    let iss = if v1 { v1_issuer(tid) } else { v2_issuer(tid) };
    let (given, family) = if v1 { Some(user.given_family()) } else { None }.unzip();
    let c = IdClaims {
        head: Head::new(&client.app_id, &iss, now - BACKDATE, now + 3600),
        amr: v1.then_some(["pwd"]),
        family_name: family,
        given_name: given,
        name: &user.name,
        nonce,
        oid: &user.oid,
        preferred_username: (!v1).then_some(user.upn.as_str()),
        sub: pairwise_sub(user, &client.app_id),
        tid,
        unique_name: v1.then_some(user.upn.as_str()),
        upn: v1.then_some(user.upn.as_str()),
        uti: uti(),
        ver: if v1 { "1.0" } else { "2.0" },
    };
    // The v1 endpoint's ID tokens are unsigned, as Microsoft's v1 protocol documentation shows
    // them; v2's are signed.
    if v1 {
        Ok(unsigned(&c))
    } else {
        sign(st, false, false, &c)
    }
}

pub(super) fn app_only_body(version: EndpointVersion, m: &Minted, resource: &str) -> Value {
    match version {
        EndpointVersion::V1 => json!({
            "token_type": "Bearer",
            "expires_in": m.expires_in.to_string(),
            "ext_expires_in": m.expires_in.to_string(),
            "expires_on": m.exp.to_string(),
            "not_before": m.nbf.to_string(),
            "resource": resource,
            "access_token": m.token,
        }),
        EndpointVersion::V2 => json!({
            "token_type": "Bearer",
            "expires_in": m.expires_in,
            "ext_expires_in": m.expires_in,
            "access_token": m.token,
        }),
    }
}
