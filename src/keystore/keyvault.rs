//! Keys in Azure Key Vault: a [`Signer`] whose `sign` is the vault's (`POST {kid}/sign`, the
//! caller's SHA-256 digest in, the signature out; the key never leaves the vault), and the
//! creation of a self-issued certificate with a non-exportable key (`POST
//! /certificates/{name}/create`, its pending operation, then the certificate's public part).
//! Secrets (`/secrets/...`) are never asked for.
//!
//! Authentication follows Key Vault's challenge as Azure's SDKs do: the first request goes
//! without a token, the 401's `WWW-Authenticate` names the authority (with the tenant) and the
//! resource; the vault's host must lie under the resource's host (`.` + host, port included), and
//! the token is asked for `{resource}/.default`. The credential is a bearer token given as is, or
//! an application's secret or certificate (what azure-identity's `EnvironmentCredential` reads
//! from `AZURE_*`), used only with the configured authority host: a vault naming another
//! authority is refused rather than sent a secret.

use super::vault_http::{Challenge, VaultHttp};
use crate::authority::{Authority, EndpointVersion};
use crate::cert::{Certificate, SignatureAlg, Signer};
use crate::secret::SecretString;
use crate::thumbprint::sha256;
use crate::token::{ClientAuth, ClientOptions, Grant, Target, TokenClient, TokenRequest};
use crate::{ClientId, Error, Result, TenantId};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use super::vault_http::API_VERSION;

/// How keycred gets the vault's own token.
#[derive(Clone, Debug)]
pub enum VaultCredential {
    /// A bearer token for the vault, used as given.
    Token(SecretString),
    /// An application's credential, exchanged at the challenge's authority for the challenge's
    /// resource.
    App {
        /// Application (client) id.
        client_id: ClientId,
        /// A client secret or a certificate.
        auth: ClientAuth,
        /// The authority host the challenge must name.
        authority: Authority,
    },
}

impl VaultCredential {
    /// The credential azure-identity's `EnvironmentCredential` would use: `AZURE_CLIENT_ID` with
    /// `AZURE_CLIENT_SECRET`, or with `AZURE_CLIENT_CERTIFICATE_PATH` (and
    /// `AZURE_CLIENT_CERTIFICATE_PASSWORD`); else its `WorkloadIdentityCredential`'s, with
    /// `AZURE_FEDERATED_TOKEN_FILE`; `AZURE_AUTHORITY_HOST` or the public cloud's.
    pub fn from_azure_env() -> Result<VaultCredential> {
        let var = |n: &str| std::env::var(n).ok().filter(|v| !v.trim().is_empty());
        let missing = || {
            Error::input("no credential for the vault's token").with_hint(
                "set AZURE_CLIENT_ID with AZURE_CLIENT_SECRET, AZURE_CLIENT_CERTIFICATE_PATH or AZURE_FEDERATED_TOKEN_FILE (an identity that may use the vault), or give a token for the vault in an environment variable named by --vault-token-env",
            )
        };
        let client_id =
            ClientId::new(&var("AZURE_CLIENT_ID").ok_or_else(missing)?).map_err(|e| e.context("AZURE_CLIENT_ID"))?;
        let auth = if let Some(secret) = var("AZURE_CLIENT_SECRET") {
            ClientAuth::Secret(SecretString::new(secret))
        } else if let Some(path) = var("AZURE_CLIENT_CERTIFICATE_PATH") {
            let password = var("AZURE_CLIENT_CERTIFICATE_PASSWORD").map(SecretString::new);
            let cred = crate::cert::load_credential(&PathBuf::from(path), None, password.as_ref())?;
            ClientAuth::Certificate { cred: Arc::new(cred), alg: SignatureAlg::Rs256, x5c: false }
        } else if let Some(file) = var("AZURE_FEDERATED_TOKEN_FILE") {
            // As azure-identity's WorkloadIdentityCredential (in DefaultAzureCredential after the
            // environment's secret or certificate): the workload token is the client assertion.
            let bytes = crate::fsio::read_limited(std::path::Path::new(&file), 64 * 1024)
                .map_err(|e| e.context("AZURE_FEDERATED_TOKEN_FILE"))?;
            let token = String::from_utf8(bytes)
                .map_err(|_| Error::input(format!("AZURE_FEDERATED_TOKEN_FILE {file}: not a token (not text)")))?;
            ClientAuth::Federated(SecretString::new(token.trim().to_string()))
        } else {
            return Err(missing());
        };
        let authority = Authority::parse(
            &var("AZURE_AUTHORITY_HOST").unwrap_or_else(|| crate::authority::DEFAULT_AUTHORITY.into()),
        )
        .map_err(|e| e.context("AZURE_AUTHORITY_HOST"))?;
        Ok(VaultCredential::App { client_id, auth, authority })
    }
}

/// How to reach a vault.
#[derive(Clone, Debug)]
pub struct VaultOptions {
    /// The vault's token.
    pub credential: VaultCredential,
    /// An extra trusted root CA (PEM), for the emulator's vaults.
    pub ca_file: Option<PathBuf>,
    /// Time limit of one exchange.
    pub timeout: Duration,
}

/// A Key Vault data-plane client for one vault (`https://NAME.vault.azure.net`).
pub struct VaultClient {
    http: VaultHttp,
    options: VaultOptions,
    /// The token in use and the challenge it answers.
    token: Mutex<Option<(Challenge, SecretString)>>,
}

impl std::fmt::Debug for VaultClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VaultClient({})", self.http.base())
    }
}

/// A certificate as the vault returns it: the public part only.
#[derive(Clone, Debug)]
pub struct VaultCertificate {
    /// `https://{vault}/certificates/{name}/{version}`.
    pub id: String,
    /// The key that signs for it: `https://{vault}/keys/{name}/{version}`.
    pub kid: String,
    /// The certificate (`cer`), checked against its `x5t`.
    pub cert: Certificate,
}

impl VaultClient {
    /// A client for the vault at `vault_url` (its base URL; a key or certificate URL is cut to
    /// it). https only; http for loopback hosts.
    pub fn new(vault_url: &str, options: VaultOptions) -> Result<VaultClient> {
        Ok(VaultClient {
            http: VaultHttp::new(vault_url, options.ca_file.as_deref(), options.timeout)?,
            options,
            token: Mutex::new(None),
        })
    }

    /// The vault's base URL, without trailing slash.
    pub fn base(&self) -> &str {
        self.http.base()
    }

    /// Sends `method path` (with `api-version`), following the challenge once; the answer's
    /// status and JSON body. Refusals (401 after a token, 403, 404, others) are remote errors
    /// quoting Key Vault's code and message.
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Result<(u16, Value)> {
        let token = self.token.lock().map(|t| t.as_ref().map(|(_, s)| s.clone())).unwrap_or(None);
        let (status, headers, answer) = self.http.send(method.clone(), path, body, token.as_ref()).await?;
        if status != 401 || token.is_some() {
            return self.checked(&method, path, status, answer);
        }
        let challenge = Challenge::parse(headers.get("www-authenticate").and_then(|v| v.to_str().ok()))
            .map_err(|e| e.context(format!("{} answered 401", self.base())))?;
        challenge.check_resource(self.base())?;
        let fresh = self.token_for(&challenge).await?;
        if let Ok(mut t) = self.token.lock() {
            *t = Some((challenge, fresh.clone()));
        }
        let (status, _, answer) = self.http.send(method.clone(), path, body, Some(&fresh)).await?;
        self.checked(&method, path, status, answer)
    }

    fn checked(&self, method: &reqwest::Method, path: &str, status: u16, answer: Value) -> Result<(u16, Value)> {
        if (200..300).contains(&status) {
            return Ok((status, answer));
        }
        let code = answer["error"]["code"].as_str().unwrap_or("").to_string();
        let message = answer["error"]["message"].as_str().unwrap_or("(no message)").to_string();
        let mut e = Error::remote(format!("{} {method} {path}: {status} {code}: {message}", self.base()));
        e = match status {
            401 => e.with_hint("the vault refused the token: check that it is for the vault's resource (the challenge's) and not expired"),
            403 => e.with_hint("grant the identity access to the vault (an access policy or an Azure RBAC role with the permission named)"),
            404 => e.with_hint("check the vault, key or certificate name in the URL"),
            _ => e,
        };
        Err(e)
    }

    /// The token for `challenge`: the given one, or one asked of the challenge's authority.
    async fn token_for(&self, challenge: &Challenge) -> Result<SecretString> {
        match &self.options.credential {
            VaultCredential::Token(t) => Ok(t.clone()),
            VaultCredential::App { client_id, auth, authority } => {
                if !challenge.authority.trim_end_matches('/').eq_ignore_ascii_case(authority.as_str()) {
                    return Err(Error::remote(format!(
                        "the vault {} names the authority {}, not the configured {}",
                        self.base(),
                        challenge.authority,
                        authority.as_str()
                    ))
                    .with_hint("set AZURE_AUTHORITY_HOST to the vault's authority if it is yours; keycred sends credentials to the configured authority only"));
                }
                let client = TokenClient::new(ClientOptions {
                    ca_file: self.options.ca_file.clone(),
                    timeout: self.options.timeout,
                    ..ClientOptions::default()
                })?;
                let req = TokenRequest {
                    authority: authority.clone(),
                    tenant: TenantId::new(&challenge.tenant).map_err(|e| e.context("the vault's challenge"))?,
                    client_id: client_id.clone(),
                    version: EndpointVersion::V2,
                    target: Target::Scopes(vec![format!("{}/.default", challenge.resource.trim_end_matches('/'))]),
                    grant: Grant::ClientCredentials,
                    auth: auth.clone(),
                };
                let answer = client.request_token(&req).await.map_err(|e| e.context("the vault's token"))?;
                Ok(answer.access_token)
            }
        }
    }

    /// The key at `key_url` (`{vault}/keys/{name}[/{version}]`): its versioned id and public key
    /// (PKCS#1 DER). Needs `keys/get`.
    pub async fn get_key(&self, key_url: &str) -> Result<(String, Vec<u8>)> {
        let path = self.http.path_of(key_url, "keys")?;
        let (_, v) = self.call(reqwest::Method::GET, &path, None).await?;
        let kid = v["key"]["kid"].as_str().unwrap_or_default().to_string();
        let num = |f: &str| v["key"][f].as_str().and_then(|s| URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok());
        match (v["key"]["kty"].as_str(), num("n"), num("e")) {
            (Some("RSA" | "RSA-HSM"), Some(n), Some(e)) if !kid.is_empty() => {
                Ok((kid, crate::cert::signer::rsa_public_key_der(&n, &e)?))
            }
            (kty, ..) => Err(Error::remote(format!(
                "{key_url}: the vault answered a key of type {} without its RSA public key",
                kty.unwrap_or("(none)")
            ))
            .with_hint("keycred signs with RSA keys (RSA or RSA-HSM)")),
        }
    }

    /// Signs a SHA-256 `digest` with the key `kid` (`keys/sign`).
    pub async fn sign_digest(&self, kid: &str, alg: SignatureAlg, digest: &[u8]) -> Result<Vec<u8>> {
        let path = format!("{}/sign", self.http.path_of(kid, "keys")?);
        let body = json!({"alg": alg.jose(), "value": URL_SAFE_NO_PAD.encode(digest)});
        let (_, v) = self.call(reqwest::Method::POST, &path, Some(&body)).await?;
        v["value"]
            .as_str()
            .and_then(|s| URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok())
            .ok_or_else(|| Error::remote(format!("{kid}: the vault's sign answer has no signature")))
    }

    /// Creates (or renews: a new version of) the certificate `name` with `policy`, follows the
    /// pending operation until it ends (within `wait`), and returns the certificate.
    pub async fn create_certificate(&self, name: &str, policy: &Value, wait: Duration) -> Result<VaultCertificate> {
        let path = format!("/certificates/{name}/create");
        let (_, mut op) = self.call(reqwest::Method::POST, &path, Some(&json!({"policy": policy}))).await?;
        let deadline = tokio::time::Instant::now() + wait;
        let mut pause = Duration::from_millis(200);
        while op["status"].as_str().is_some_and(|s| s.eq_ignore_ascii_case("inProgress")) {
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::remote(format!(
                    "the vault's creation of {name} is still in progress after {}s",
                    wait.as_secs()
                ))
                .with_hint(
                    "run the command again later, or look at the certificate's pending operation in the vault",
                ));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(5));
            op = self.call(reqwest::Method::GET, &format!("/certificates/{name}/pending"), None).await?.1;
        }
        if !op["status"].as_str().is_some_and(|s| s.eq_ignore_ascii_case("completed")) {
            let detail = op["error"]["message"].as_str().or(op["status_details"].as_str()).unwrap_or("");
            return Err(Error::remote(format!(
                "the vault's creation of {name} ended {}: {detail}",
                op["status"].as_str().unwrap_or("without a status")
            )));
        }
        self.get_certificate(name).await
    }

    /// The latest version of certificate `name` (`certificates/get`): `cer` checked against `x5t`.
    pub async fn get_certificate(&self, name: &str) -> Result<VaultCertificate> {
        let (_, v) = self.call(reqwest::Method::GET, &format!("/certificates/{name}/"), None).await?;
        let bad = |what: &str| Error::remote(format!("{}: the vault's certificate {name} {what}", self.base()));
        let der = v["cer"].as_str().and_then(|s| STANDARD.decode(s).ok()).ok_or_else(|| bad("has no cer"))?;
        let cert = Certificate::from_der(&der, &format!("the vault's certificate {name}"))?;
        if v["x5t"].as_str() != Some(cert.x5t().as_str()) {
            return Err(bad("has an x5t that is not its cer's SHA-1"));
        }
        Ok(VaultCertificate {
            id: v["id"].as_str().unwrap_or_default().to_string(),
            kid: v["kid"].as_str().ok_or_else(|| bad("has no kid"))?.to_string(),
            cert,
        })
    }
}

/// Runs `f` to completion on a thread of its own with its own runtime: [`Signer::sign`] is
/// synchronous and may be called from async code (Graph proofs), where blocking on the caller's
/// runtime would panic.
pub fn run_apart<T: Send>(f: impl std::future::Future<Output = Result<T>> + Send) -> Result<T> {
    std::thread::scope(|s| {
        s.spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| Error::internal("cannot start the async runtime").caused_by(e))?;
            rt.block_on(f)
        })
        .join()
        .unwrap_or_else(|_| Err(Error::internal("the vault request's thread panicked")))
    })
}

/// A key in Key Vault, as a [`Signer`]: `sign` hashes and asks the vault to sign the digest.
pub struct VaultSigner {
    client: Arc<VaultClient>,
    kid: String,
    public: Vec<u8>,
}

impl VaultSigner {
    /// The key at `key_url` (`https://{vault}/keys/{name}[/{version}]`), its public half read
    /// from the vault (`keys/get`).
    pub fn open(key_url: &str, options: VaultOptions) -> Result<VaultSigner> {
        let client = Arc::new(VaultClient::new(key_url, options)?);
        let (kid, public) = run_apart(client.get_key(key_url))?;
        Ok(VaultSigner { client, kid, public })
    }

    /// A signer for `kid` whose public key is already known (a certificate the vault returned).
    pub fn with_public_key(client: Arc<VaultClient>, kid: &str, rsa_public_key: &[u8]) -> VaultSigner {
        VaultSigner { client, kid: kid.to_string(), public: rsa_public_key.to_vec() }
    }

    /// The versioned key id it signs with.
    pub fn kid(&self) -> &str {
        &self.kid
    }
}

impl Signer for VaultSigner {
    fn describe(&self) -> String {
        format!("the Key Vault key {}", self.kid)
    }
    fn rsa_public_key(&self) -> &[u8] {
        &self.public
    }
    fn sign(&self, alg: SignatureAlg, msg: &[u8]) -> Result<Vec<u8>> {
        let digest = sha256(msg);
        let sig = run_apart(self.client.sign_digest(&self.kid, alg, &digest))?;
        // The vault's answer is checked here: a wrong key or a corrupted answer fails now, not
        // later at Entra or Graph.
        if !alg.verify(&self.public, msg, &sig) {
            return Err(Error::remote(format!(
                "{}: the vault's signature does not verify with the key's public half",
                self.kid
            )));
        }
        Ok(sig)
    }
}
