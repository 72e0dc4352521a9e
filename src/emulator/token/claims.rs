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
use serde_json::{json, Map, Value};

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

/// The opaque claims Entra puts in every token it issues, access and ID tokens alike (the
/// access-token claims reference lists `aio` and `rh` as internal claims resources must not
/// use): random here, so that nothing can depend on their content.
pub(super) fn insert_opaque_claims(c: &mut Map<String, Value>) {
    c.insert("aio".into(), json!(opaque(48)));
    c.insert("rh".into(), json!(format!("0.{}.", opaque(40))));
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
pub(super) fn sign(st: &AppState, v1_header: bool, graph: bool, claims: Map<String, Value>) -> Result<String, Refusal> {
    let header = |nonce: Option<&str>| {
        let mut h = Map::new();
        h.insert("typ".into(), json!("JWT"));
        if let Some(n) = nonce {
            h.insert("nonce".into(), json!(n));
        }
        h.insert("alg".into(), json!(SignatureAlg::Rs256.jose()));
        if v1_header {
            h.insert("x5t".into(), json!(st.kid));
        }
        h.insert("kid".into(), json!(st.kid));
        b64url(&serde_json::to_vec(&Value::Object(h)).unwrap_or_default())
    };
    let nonce = graph.then(|| opaque(32));
    let hashed = nonce.as_deref().map(|n| b64url(&sha256(n.as_bytes())));
    let payload = b64url(&serde_json::to_vec(&Value::Object(claims)).unwrap_or_default());
    let signed = format!("{}.{payload}", header(hashed.as_deref()));
    let signature = st
        .signing_key
        .sign(SignatureAlg::Rs256, signed.as_bytes())
        .map_err(|_| Refusal::malformed_jwt("The emulator could not sign the token."))?;
    Ok(format!("{}.{payload}.{}", header(nonce.as_deref()), b64url(&signature)))
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
pub(super) fn unsigned(claims: Map<String, Value>) -> String {
    let header = json!({"typ": "JWT", "alg": "none"});
    let part = |v: &Value| b64url(&serde_json::to_vec(v).unwrap_or_default());
    format!("{}.{}.", part(&header), part(&Value::Object(claims)))
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
    let mut c = Map::new();
    // v1 tokens name the resource as it was asked for (URI or GUID); v2 tokens by its app id.
    let aud = if v1 { requested.to_string() } else { api.app_id.clone() };
    c.insert("aud".into(), json!(aud));
    c.insert("iss".into(), json!(if v1 { v1_issuer(tid) } else { v2_issuer(tid) }));
    c.insert("iat".into(), json!(nbf));
    c.insert("nbf".into(), json!(nbf));
    c.insert("exp".into(), json!(exp));
    insert_opaque_claims(&mut c);
    if let Some(t) = idtyp(api, &subject) {
        c.insert("idtyp".into(), json!(t));
    }
    match &subject {
        Subject::App { roles } => {
            if v1 {
                c.insert("appid".into(), json!(client.app_id));
                c.insert("appidacr".into(), json!(auth.acr()));
                c.insert("idp".into(), json!(v1_issuer(tid)));
            } else {
                c.insert("azp".into(), json!(client.app_id));
                c.insert("azpacr".into(), json!(auth.acr()));
            }
            c.insert("oid".into(), json!(client.sp_object_id));
            if !roles.is_empty() {
                c.insert("roles".into(), json!(roles));
            }
            c.insert("sub".into(), json!(client.sp_object_id));
        }
        Subject::User { user, scopes } => {
            if v1 {
                c.insert("acr".into(), json!("1"));
                c.insert("amr".into(), json!(["pwd"]));
                c.insert("appid".into(), json!(client.app_id));
                c.insert("appidacr".into(), json!(auth.acr()));
                let (given, family) = user.given_family();
                c.insert("family_name".into(), json!(family));
                c.insert("given_name".into(), json!(given));
            } else {
                c.insert("azp".into(), json!(client.app_id));
                c.insert("azpacr".into(), json!(auth.acr()));
            }
            c.insert("name".into(), json!(user.name));
            c.insert("oid".into(), json!(user.oid));
            if !v1 {
                c.insert("preferred_username".into(), json!(user.upn));
            }
            // No delegated permission (an app whose permissions on the resource are all
            // application roles, consented by an administrator): no `scp` claim, never an empty one.
            if !scopes.is_empty() {
                c.insert("scp".into(), json!(scopes.join(" ")));
            }
            c.insert("sub".into(), json!(pairwise_sub(user, &client.app_id)));
            if v1 {
                c.insert("unique_name".into(), json!(user.upn));
                c.insert("upn".into(), json!(user.upn));
            }
        }
    }
    c.insert("tid".into(), json!(tid));
    c.insert("uti".into(), json!(uti()));
    c.insert("ver".into(), json!(if v1 { "1.0" } else { "2.0" }));
    let graph = api.app_id.eq_ignore_ascii_case(GRAPH_APP_ID);
    Ok(Minted { token: sign(st, v1, graph, c)?, nbf, exp, expires_in: lifetime })
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
    let mut c = Map::new();
    c.insert("aud".into(), json!(client.app_id));
    c.insert("iss".into(), json!(if v1 { v1_issuer(tid) } else { v2_issuer(tid) }));
    c.insert("iat".into(), json!(now - BACKDATE));
    c.insert("nbf".into(), json!(now - BACKDATE));
    c.insert("exp".into(), json!(now + 3600));
    insert_opaque_claims(&mut c);
    if v1 {
        c.insert("amr".into(), json!(["pwd"]));
        let (given, family) = user.given_family();
        c.insert("family_name".into(), json!(family));
        c.insert("given_name".into(), json!(given));
    }
    c.insert("name".into(), json!(user.name));
    if let Some(n) = nonce {
        c.insert("nonce".into(), json!(n));
    }
    c.insert("oid".into(), json!(user.oid));
    if !v1 {
        c.insert("preferred_username".into(), json!(user.upn));
    }
    c.insert("sub".into(), json!(pairwise_sub(user, &client.app_id)));
    c.insert("tid".into(), json!(tid));
    if v1 {
        c.insert("unique_name".into(), json!(user.upn));
        c.insert("upn".into(), json!(user.upn));
    }
    c.insert("uti".into(), json!(uti()));
    c.insert("ver".into(), json!(if v1 { "1.0" } else { "2.0" }));
    // The v1 endpoint's ID tokens are unsigned, as Microsoft's v1 protocol documentation shows
    // them; v2's are signed.
    if v1 {
        Ok(unsigned(c))
    } else {
        sign(st, false, false, c)
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
