//! `check`: prove, step by step, that a credential works, the way a setup engineer would.
//!
//! Each step says what it checked and why it passed or failed; a step that cannot mean
//! anything after an earlier failure is reported as skipped rather than as a second failure.

use crate::authority::{Authority, EndpointVersion};
use crate::cert::{
    load_credential, load_file, Certificate, LoadedCredential, SignatureAlg, EXPIRING_DAYS, MIN_RSA_BITS,
};
use crate::error::exit;
use crate::jwt::{self, AssertionParams};
use crate::manifest::Manifest;
use crate::secret::SecretString;
use crate::token::{entra_code, ClientAuth, Grant, Target, TokenClient, TokenRequest};
use crate::wording::Action;
use crate::{dates, thumbprint, ClientId, ErrorKind, TenantId};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;

/// Outcome of one step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Passed.
    Pass,
    /// Passed with a warning (for instance under 30 days left).
    Warn,
    /// Failed.
    Fail,
    /// Not run because an earlier step failed.
    Skip,
}

/// One line of the report.
#[derive(Clone, Debug, Serialize)]
pub struct Step {
    /// Stable identifier for scripts (`cert_readable`, `key_matches`, ...): see [`names::ALL`].
    pub id: &'static str,
    /// What was checked.
    pub step: String,
    /// Whether it passed (`null` when skipped).
    pub ok: Option<bool>,
    /// Why.
    pub detail: String,
    /// pass, warn, fail or skip.
    pub outcome: Outcome,
    /// Entra's AADSTS code, when the step failed on Entra's refusal (the token request).
    pub aadsts: Option<u32>,
}

/// What to check.
#[derive(Clone, Debug)]
pub struct CheckOptions {
    /// Certificate (or bundle, or PFX).
    pub cert: PathBuf,
    /// Separate key file.
    pub key: Option<PathBuf>,
    /// The private key, already opened (a key on a token): used instead of `key` or the file's.
    pub signer: Option<Arc<dyn crate::cert::Signer>>,
    /// Password of an encrypted key or PFX.
    pub password: Option<SecretString>,
    /// Manifest that should hold the certificate.
    pub manifest: Option<PathBuf>,
    /// Authority.
    pub authority: Authority,
    /// Tenant.
    pub tenant: TenantId,
    /// Client id.
    pub client_id: ClientId,
    /// Endpoint version.
    pub version: EndpointVersion,
    /// Scopes or resource.
    pub target: Target,
    /// Roles the token must carry.
    pub expect_roles: Vec<String>,
    /// Signature algorithm of the assertion.
    pub alg: SignatureAlg,
}

/// The whole report and the exit code it implies.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Steps in order.
    pub steps: Vec<Step>,
    /// 0 all passed, 4 a check failed, 3 the server refused.
    #[serde(skip)]
    pub exit_code: u8,
    /// The token obtained, when the request succeeded (never serialised).
    #[serde(skip)]
    pub access_token: Option<SecretString>,
}

struct Steps {
    steps: Vec<Step>,
    failed: bool,
    remote_refused: bool,
}

impl Steps {
    fn push(&mut self, step: &str, outcome: Outcome, detail: impl Into<String>) {
        if outcome == Outcome::Fail {
            self.failed = true;
        }
        let ok = match outcome {
            Outcome::Pass | Outcome::Warn => Some(true),
            Outcome::Fail => Some(false),
            Outcome::Skip => None,
        };
        let id = names::ALL.iter().find(|(_, n)| *n == step).map_or("unknown", |(id, _)| *id);
        self.steps.push(Step { id, step: step.to_string(), ok, detail: detail.into(), outcome, aadsts: None });
    }
    fn skip(&mut self, names: &[&str], why: &str) {
        for n in names {
            self.push(n, Outcome::Skip, format!("skipped: {why}"));
        }
    }
}

/// Step names, stable for scripts reading `-o json`.
pub mod names {
    /// The certificate file can be read.
    pub const READABLE: &str = "certificate readable";
    /// RSA of at least 2048 bits.
    pub const KEY_TYPE: &str = "RSA key of at least 2048 bits";
    /// Valid now.
    pub const VALIDITY: &str = "valid now";
    /// The private key matches.
    pub const KEY_MATCH: &str = "private key matches certificate";
    /// The manifest holds it.
    pub const MANIFEST: &str = "manifest holds certificate";
    /// An assertion signs and verifies.
    pub const ASSERTION: &str = "assertion signs and verifies";
    /// A token is issued.
    pub const TOKEN: &str = "token request";
    /// Roles.
    pub const ROLES: &str = "expected roles present";

    /// Every step in order, with its id: ids are single tokens and never change, so scripts
    /// branch on `id` and people read `step`.
    pub const ALL: [(&str, &str); 8] = [
        ("cert_readable", READABLE),
        ("key_type", KEY_TYPE),
        ("valid_now", VALIDITY),
        ("key_matches", KEY_MATCH),
        ("manifest_holds_cert", MANIFEST),
        ("assertion_verifies", ASSERTION),
        ("token_issued", TOKEN),
        ("roles_present", ROLES),
    ];
}

/// Runs every step against `client` and returns the report.
pub fn run(o: &CheckOptions, client: &TokenClient) -> Report {
    use names::*;
    let now = dates::now();
    let mut s = Steps { steps: Vec::new(), failed: false, remote_refused: false };
    // 1. Readable.
    let Some(cert) = readable_step(&mut s, o) else {
        s.skip(
            &[KEY_TYPE, VALIDITY, KEY_MATCH, MANIFEST, ASSERTION, TOKEN, ROLES],
            "the certificate could not be read",
        );
        return finish(s, None);
    };
    // 2. Key type and size; 3. validity.
    key_type_step(&mut s, &cert);
    validity_step(&mut s, &cert, now);
    // 4. Key matches.
    let cred = key_match_step(&mut s, o);
    // 5. Manifest.
    if let Some(path) = &o.manifest {
        manifest_step(&mut s, path, &cert, &o.cert);
    }
    let Some(cred) = cred else {
        s.skip(&[ASSERTION, TOKEN, ROLES], "no usable private key");
        return finish(s, None);
    };
    let cred = Arc::new(cred);
    // 6. Assertion signs and verifies locally.
    assertion_step(&mut s, o, &cred);
    if s.failed {
        s.skip(&[TOKEN, ROLES], "an earlier check failed");
        return finish(s, None);
    }
    // 7. Token.
    let Some(token) = token_step(&mut s, o, &cred, client) else {
        s.skip(&[ROLES], "no token");
        return finish(s, None);
    };
    // 8. Roles.
    roles_step(&mut s, o, &token.access_token);
    finish(s, Some(token.access_token))
}

/// Reads the certificate (the leaf, for a chain or a PFX).
fn readable_step(s: &mut Steps, o: &CheckOptions) -> Option<Certificate> {
    let first = load_file(&o.cert, o.password.as_ref()).and_then(|f| {
        f.certs
            .into_iter()
            .next()
            .ok_or_else(|| crate::Error::input(format!("{}: no certificate in the file", o.cert.display())))
    });
    match first {
        Ok(c) => {
            s.push(names::READABLE, Outcome::Pass, format!("{} (thumbprint {})", o.cert.display(), c.thumbprint()));
            Some(c)
        }
        Err(e) => {
            s.push(names::READABLE, Outcome::Fail, e.to_string());
            None
        }
    }
}

/// RSA, of at least [`MIN_RSA_BITS`].
fn key_type_step(s: &mut Steps, cert: &Certificate) {
    use names::KEY_TYPE;
    if cert.is_rsa() && cert.key_bits() >= MIN_RSA_BITS {
        s.push(KEY_TYPE, Outcome::Pass, format!("RSA {} bits", cert.key_bits()));
    } else if cert.is_rsa() {
        s.push(
            KEY_TYPE,
            Outcome::Fail,
            format!("RSA {} bits: Entra requires at least {MIN_RSA_BITS}", cert.key_bits()),
        );
    } else {
        s.push(KEY_TYPE, Outcome::Fail, "not an RSA key: Entra certificate credentials need RSA");
    }
}

/// Valid now; a warning under [`EXPIRING_DAYS`] left.
fn validity_step(s: &mut Steps, cert: &Certificate, now: time::OffsetDateTime) {
    use names::VALIDITY;
    let days = dates::days_between(now, cert.not_after());
    if now < cert.not_before() {
        s.push(VALIDITY, Outcome::Fail, format!("not valid before {}", dates::format(cert.not_before())));
    } else if now > cert.not_after() {
        s.push(VALIDITY, Outcome::Fail, format!("expired on {}", dates::format(cert.not_after())));
    } else if days < EXPIRING_DAYS {
        s.push(
            VALIDITY,
            Outcome::Warn,
            // The outcome says it is a warning; the detail says what.
            format!("expires in {days} days ({})", dates::format(cert.not_after())),
        );
    } else {
        s.push(VALIDITY, Outcome::Pass, format!("{days} days left (until {})", dates::format(cert.not_after())));
    }
}

/// The private key loads and is the certificate's.
fn key_match_step(s: &mut Steps, o: &CheckOptions) -> Option<LoadedCredential> {
    // A key under 2048 bits cannot be loaded to compare: the size step already says why, so this
    // one is skipped rather than failed under a misleading name.
    if s.steps.iter().any(|st| st.step == names::KEY_TYPE && st.outcome == Outcome::Fail) {
        s.push(names::KEY_MATCH, Outcome::Skip, format!("skipped: the key cannot be used ({})", names::KEY_TYPE));
        return None;
    }
    let loaded = match &o.signer {
        Some(signer) => load_file(&o.cert, o.password.as_ref()).and_then(|f| {
            let mut certs = f.certs.into_iter();
            let leaf = certs.next().ok_or_else(|| crate::Error::input("no certificate in the file"))?;
            LoadedCredential::with_signer(leaf, certs.collect(), signer.clone(), &o.cert)
        }),
        None => load_credential(&o.cert, o.key.as_deref(), o.password.as_ref()),
    };
    match loaded {
        Ok(c) => {
            s.push(names::KEY_MATCH, Outcome::Pass, format!("RSA-{} private key is the certificate's", c.key.bits()));
            Some(c)
        }
        Err(e) => {
            s.push(names::KEY_MATCH, Outcome::Fail, e.to_string());
            None
        }
    }
}

/// An assertion for the token endpoint signs, and verifies with the certificate's public key.
fn assertion_step(s: &mut Steps, o: &CheckOptions, cred: &LoadedCredential) {
    use names::ASSERTION;
    let params = AssertionParams {
        client_id: o.client_id.to_string(),
        audience: o.authority.token_endpoint(&o.tenant, o.version),
        alg: o.alg,
        x5c: false,
        lifetime: jwt::DEFAULT_ASSERTION_LIFETIME,
    };
    let verified = jwt::client_assertion(cred, &params).and_then(|a| jwt::dangerous::decode(a.expose()));
    match verified {
        Ok(d) if d.verify(o.alg, cred.cert.rsa_public_key().unwrap_or_default()) => s.push(
            ASSERTION,
            Outcome::Pass,
            format!("{} assertion verified with the certificate's public key", o.alg.jose()),
        ),
        Ok(_) => s.push(ASSERTION, Outcome::Fail, "the assertion's signature does not verify with the certificate"),
        Err(e) => s.push(ASSERTION, Outcome::Fail, e.to_string()),
    }
}

/// The token endpoint issues a token for the credential.
fn token_step(
    s: &mut Steps,
    o: &CheckOptions,
    cred: &Arc<LoadedCredential>,
    client: &TokenClient,
) -> Option<crate::token::TokenResponse> {
    let req = TokenRequest {
        authority: o.authority.clone(),
        tenant: o.tenant.clone(),
        client_id: o.client_id.clone(),
        version: o.version,
        target: o.target.clone(),
        grant: Grant::ClientCredentials,
        auth: ClientAuth::Certificate { cred: cred.clone(), alg: o.alg, x5c: false },
    };
    match client.request_token_blocking(&req) {
        Ok(t) => {
            s.push(
                names::TOKEN,
                Outcome::Pass,
                format!("{} token, expires in {} min ({})", t.token_type, t.expires_in / 60, req.endpoint()),
            );
            Some(t)
        }
        Err(e) => {
            let first = e.message().lines().next().unwrap_or_default().to_string();
            // Entra's own description already starts with its code: say it once.
            let code = entra_code(&e)
                .map(|c| format!("AADSTS{c}"))
                .filter(|c| !first.contains(c.as_str()))
                .map(|c| format!("{c}: "))
                .unwrap_or_default();
            let detail = match e.hint() {
                Some(h) => format!("{code}{first} (hint: {h})"),
                None => format!("{code}{first}"),
            };
            s.remote_refused = e.kind() == ErrorKind::Remote;
            s.push(names::TOKEN, Outcome::Fail, detail);
            if let Some(last) = s.steps.last_mut() {
                last.aadsts = entra_code(&e);
            }
            None
        }
    }
}

/// The token carries the expected roles.
fn roles_step(s: &mut Steps, o: &CheckOptions, access_token: &SecretString) {
    use names::ROLES;
    let decoded = jwt::dangerous::decode(access_token.expose()).ok();
    let roles = decoded.as_ref().map(|d| d.roles()).unwrap_or_default();
    // A token that is not a JWT has no readable roles: every expected one is missing.
    let missing: Vec<&str> = match &decoded {
        Some(d) => d.missing_roles(&o.expect_roles),
        None => o.expect_roles.iter().map(String::as_str).collect(),
    };
    if o.expect_roles.is_empty() {
        s.push(ROLES, Outcome::Pass, format!("none expected; token roles: [{}]", roles.join(", ")));
    } else if missing.is_empty() {
        s.push(ROLES, Outcome::Pass, format!("token roles: [{}]", roles.join(", ")));
    } else {
        s.push(
            ROLES,
            Outcome::Fail,
            format!(
                "missing {}: token roles are [{}]; grant the application permission and admin consent",
                missing.join(", "),
                roles.join(", ")
            ),
        );
    }
}

fn manifest_step(s: &mut Steps, path: &std::path::Path, cert: &Certificate, cert_path: &std::path::Path) {
    let m = match Manifest::load(path) {
        Ok(m) => m,
        Err(e) => return s.push(names::MANIFEST, Outcome::Fail, e.to_string()),
    };
    let sha1 = cert.sha1();
    let entries: Vec<_> = m.credentials().into_iter().filter(|c| c.sha1() == Some(sha1)).collect();
    let Some(e) = entries.first() else {
        return s.push(
            names::MANIFEST,
            Outcome::Fail,
            format!(
                "{}: no keyCredentials entry for thumbprint {} (add it: {})",
                path.display(),
                cert.thumbprint(),
                Action::AddToManifest {
                    manifest: Some(path.display().to_string()),
                    cert: Some(cert_path.display().to_string())
                }
            ),
        );
    };
    // What makes the entry unusable (type, usage, body, dates) or wrong (a hex thumbprint in
    // customKeyIdentifier) fails the step: this is the check a setup engineer runs to find it.
    let mut problems = e.problems();
    if let Some(cki) = &e.custom_key_identifier {
        let named = problems.iter().any(|p| p.starts_with("customKeyIdentifier"));
        if !named && thumbprint::parse_sha1(cki).ok() != Some(sha1) {
            problems.push("customKeyIdentifier does not match the body".to_string());
        }
    }
    if e.has_body && e.certificate.as_ref().map(|c| c.sha1()) != Some(sha1) {
        problems.push("the entry's body is not this certificate".to_string());
    }
    if let Some(st) = e.start {
        if st < cert.not_before() {
            problems.push(format!("start {} is before the certificate's notBefore", dates::format(st)));
        }
    }
    if let Some(en) = e.end {
        if en > cert.not_after() {
            problems.push(format!("end {} is after the certificate's notAfter", dates::format(en)));
        }
    }
    if problems.is_empty() {
        s.push(
            names::MANIFEST,
            Outcome::Pass,
            format!("keyId {} in {}", e.key_id.as_deref().unwrap_or("?"), path.display()),
        );
    } else {
        s.push(names::MANIFEST, Outcome::Fail, problems.join("; "));
    }
}

fn finish(s: Steps, token: Option<SecretString>) -> Report {
    let exit_code = if !s.failed {
        exit::OK
    } else if s.remote_refused {
        exit::REMOTE
    } else {
        exit::CHECK
    };
    Report { steps: s.steps, exit_code, access_token: token }
}
